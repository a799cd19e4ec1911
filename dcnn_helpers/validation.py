"""Argument checks shared by every public function: one clear message that names the argument and what is allowed.

Ground floor of the course (imports nothing from the package). Each check returns the value converted to a plain
Python type, so numpy scalars (``np.int64(3)``, ``np.float32(0.1)``) are accepted wherever ints and floats are,
and raises ``TypeError`` for a value of the wrong kind, ``ValueError`` for one of the right kind out of range.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path
from typing import Any, Collection, Sequence, TypeVar

__all__ = ["integer", "real", "choice", "integers", "path", "memory", "MEMORY_LIMIT_BYTES"]

T = TypeVar("T")

# Requests whose estimated allocation exceeds this are refused before anything is allocated (see :func:`memory`).
MEMORY_LIMIT_BYTES = 64 * 2**30


def integer(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an ``int`` in ``[minimum, maximum]`` (either bound may be None); bools and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={value} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}={value} must be at most {maximum}")
    return value


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    return f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"


def real(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite ``float`` in the interval from ``low`` to ``high`` (open ends on request).

    NaN and infinities are always refused: they make every later result NaN without an error.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}={value} must be a finite number")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        raise ValueError(f"{name}={value!r} must lie in {_interval(low, high, low_open, high_open)}")
    return value


def choice(name: str, value: T, allowed: Collection[T]) -> T:
    """``value`` if it is one of ``allowed``, else a ValueError listing them."""
    try:
        ok = value in allowed
    except TypeError:  # unhashable value against a set
        ok = False
    if not ok:
        listed = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name}={value!r} is not allowed; choose one of {listed}")
    return value


def integers(name: str, values: Any, minimum: int | None = None, min_length: int = 1) -> tuple[int, ...]:
    """A sequence of integers (each at least ``minimum``), at least ``min_length`` long, as a tuple of ints."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a sequence of integers, got {type(values).__name__}")
    if len(values) < min_length:
        raise ValueError(f"{name} must hold at least {min_length} integer(s), got {len(values)}")
    return tuple(integer(f"{name}[{i}]", v, minimum) for i, v in enumerate(values))


def path(name: str, value: Any) -> Path:
    """``value`` (a ``str`` or path-like, not empty) as a ``Path``; TypeError for anything else."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or pathlib.Path), got {type(value).__name__} {value!r}")
    if not isinstance(os.fspath(value), str):
        raise TypeError(f"{name} must be a text path, got {os.fspath(value)!r}")
    if not os.fspath(value).strip():
        raise ValueError(f"{name}={str(value)!r} is empty; give a file or folder")
    return Path(value)


def memory(what: str, n_bytes: float, limit: float = MEMORY_LIMIT_BYTES) -> None:
    """Refuse, before allocating, a request whose estimated size ``n_bytes`` exceeds ``limit`` (ValueError)."""
    if n_bytes > limit:
        raise ValueError(
            f"{what} would need about {_human(n_bytes)} of memory (more than the {_human(limit)} allowed); "
            "ask for something smaller"
        )


def _human(n_bytes: float) -> str:
    """``n_bytes`` with a binary unit: 3.5 GiB."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    power = min(int(math.log(max(n_bytes, 1), 1024)), len(units) - 1)
    return f"{n_bytes / 1024**power:.3g} {units[power]}"
