"""Maintainer tooling, apart from the course API: workshop kit, Colab stamping, notebook cleaning, GPU check."""
