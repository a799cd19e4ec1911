"""Maintainer tooling: not used by the notebooks."""
