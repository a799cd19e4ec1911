"""Means over seeds with 95% confidence intervals: how the course compares two methods.

Ground floor: used from notebook 03 on. With n values (one per seed) the interval is the Student-t interval
``mean ± t_{0.975, n-1} · s / sqrt(n)``; for two methods run on the same seeds, the paired interval of the
per-seed differences is the right one (the seeds' shared luck cancels).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import stats as scipy_stats

__all__ = ["mean_ci95", "paired_ci95"]


def _numbers(name: str, values: object) -> np.ndarray:
    """``values`` as a float array; TypeError naming ``name`` for text or anything not numeric."""
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{name} must be numbers (one per seed), got {type(values).__name__} {values!r}")
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be numbers (one per seed), got {values!r:.80}") from None


def mean_ci95(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean of ``values`` and the half-width of its 95% t-interval; at least 2 finite values are needed."""
    arr = _numbers("values", values)
    if arr.ndim != 1 or arr.size < 2:
        raise ValueError(f"values must be a 1-D sequence of at least 2 numbers (one per seed), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("values must all be finite")
    half = scipy_stats.t.ppf(0.975, arr.size - 1) * arr.std(ddof=1) / np.sqrt(arr.size)
    return float(arr.mean()), float(half)


def paired_ci95(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean of the per-seed differences ``a - b`` and the half-width of its 95% t-interval."""
    a, b = _numbers("a", a), _numbers("b", b)
    if a.shape != b.shape:
        raise ValueError(f"a and b must hold one value per seed each, got shapes {a.shape} and {b.shape}")
    return mean_ci95(a - b)
