"""Maintainer tooling, apart from the course API: ``workshop`` (student copies, the static site, run times),
``colab`` (Open-in-Colab badges and set-up cell), ``nbclean`` (volatile metadata stripped from saved notebooks),
``gpucheck`` (every notebook and the speed run on a bare CUDA machine) and ``claims`` (the claims ledger).

Run them as ``python -m dcnn_helpers.tools.<name>``; the Makefile's ``student``, ``html``, ``timings``, ``colab`` and
``course`` targets do. Learners never need to import them.
"""
