"""Maintainer tooling, apart from the course API: ``workshop`` (student copies, the static site, run times),
``colab`` (Open-in-Colab badges and set-up cell) and ``nbclean`` (volatile metadata stripped from saved notebooks).

Run them as ``python -m dcnn_helpers.tools.<name>``; the Makefile's ``student``, ``html``, ``timings``, ``colab`` and
``course`` targets do. Learners never need to import them.
"""
