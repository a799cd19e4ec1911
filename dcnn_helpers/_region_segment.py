"""Exact linear pieces of a ReLU network along a segment (private to :mod:`dcnn_helpers.regions`).

Introduced in notebook 01 (linear regions).

The segment is parametrised as ``origin + s * direction``. For a network with one input ``s`` is the input itself;
otherwise ``origin`` is (close to) the point of the segment nearest 0, so kinks near the origin keep full float64
precision however long the segment. Layer by layer, each unit adds its zero crossings inside the current intervals.

:func:`segment_float` does this vectorised in float64 and gives up (:class:`Undecided`) as soon as a decision -- a
crossing at an interval's end, two crossings that may coincide, a unit that may vanish on an interval -- falls below
its rounding-error bound; :func:`segment_exact` then does the same in exact rational arithmetic. Whether two
neighbouring intervals carry the same affine map (one linear piece) is settled exactly where float64 cannot tell
(:func:`piece_labels`).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from dcnn_helpers._region_engine import maps_for_patterns
from dcnn_helpers._region_network import UNIT_ROUNDOFF, Affine, ExactLines, Network, activate, apply_affine, dyadic

TAU_BITS = 30  # the origin's position along the segment is rounded to a multiple of 2**-30, so it is exact


class Undecided(Exception):
    """A float64 decision could not be certified; use :func:`segment_exact`."""


@dataclass
class Segment:
    """A parametrised segment: float and exact dyadic input maps (n_in, 2) = [direction | origin], the range of
    ``s``, and a bound on the float map's rounding error."""

    a: np.ndarray
    b: np.ndarray
    input_map: np.ndarray
    exact_map: tuple[np.ndarray, int]
    s_a: float
    s_b: float
    input_error: float

    @classmethod
    def between(cls, a, b, n_in: int) -> Segment:
        """The segment from ``a`` to ``b`` (scalars for a network with one input, else vectors of size ``n_in``)."""
        a, b = _as_point(a, "a"), _as_point(b, "b")
        if a.shape != (n_in,) or b.shape != (n_in,):
            raise ValueError(f"a and b must have the model's input size {n_in}; got shapes {a.shape}, {b.shape}")
        if np.array_equal(a, b):
            raise ValueError("a and b must differ (the segment is empty)")
        if a.size == 1:
            if a[0] > b[0]:
                raise ValueError(f"a={a[0]!r} must be smaller than b={b[0]!r} for a network with one input")
            identity = np.array([[1.0, 0.0]])
            return cls(a, b, identity, dyadic(identity), float(a[0]), float(b[0]), 0.0)
        direction = b - a
        tau = float(np.clip(-(a @ direction) / (direction @ direction), 0.0, 1.0))
        tau_int = round(tau * 2**TAU_BITS)
        ends, e = dyadic(np.stack([a, b]))
        exact_direction = ends[1] - ends[0]
        exact_origin = ends[0] * (1 << TAU_BITS) + tau_int * exact_direction
        exact = (np.stack([exact_direction * (1 << TAU_BITS), exact_origin], axis=1), e - TAU_BITS)
        tau = tau_int / 2**TAU_BITS
        error = 4 * UNIT_ROUNDOFF * float(max(np.abs(a).max(), np.abs(b).max(), np.abs(direction).max()))
        return cls(a, b, np.stack([direction, a + tau * direction], axis=1), exact, -tau, 1.0 - tau, error)


def _as_point(value, name: str) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if arr.ndim != 1 or not np.isfinite(arr).all():
        raise ValueError(f"{name} must be a finite scalar or 1-D vector, got {value!r}")
    return arr


def _band(maps: np.ndarray, position: np.ndarray, position_error: np.ndarray, coef_error: float) -> np.ndarray:
    """Bound on the error of the units' values (R, d) at float positions (R,) known to ``position_error``."""
    slope, const, where = np.abs(maps[:, 0]), np.abs(maps[:, 1]), np.abs(position)[:, None]
    return coef_error * (where + 1) + 4 * UNIT_ROUNDOFF * (slope * where + const) + slope * position_error[:, None]


def _crossings(maps, ends, end_errors, coef_error):
    """Zero crossings strictly inside the intervals, with error bounds; Undecided if a sign at an end is unsure."""
    values, bands = [], []
    for position, error in ((ends[:-1], end_errors[:-1]), (ends[1:], end_errors[1:])):
        values.append(maps[:, 0] * position[:, None] + maps[:, 1])
        bands.append(_band(maps, position, error, coef_error))
        if not (np.abs(values[-1]) > bands[-1]).all():  # unsure, or overflowed
            raise Undecided
    interval, unit = np.nonzero(np.sign(values[0]) != np.sign(values[1]))
    lo, hi = ends[interval], ends[interval + 1]
    v_lo, v_hi = values[0][interval, unit], values[1][interval, unit]
    b_lo, b_hi = bands[0][interval, unit], bands[1][interval, unit]
    gap = np.abs(v_lo) + np.abs(v_hi)
    root = lo + np.clip(np.abs(v_lo) / gap, 0.0, 1.0) * (hi - lo)
    slack = np.minimum(1.0, (b_lo / gap) * (np.abs(v_hi) / gap) + (b_hi / gap) * (np.abs(v_lo) / gap))
    error = (np.maximum(end_errors[interval], end_errors[interval + 1]) + slack * (hi - lo)
             + 4 * UNIT_ROUNDOFF * (np.abs(lo) + np.abs(hi)))
    if not (np.isfinite(root).all() and np.isfinite(error).all()):
        raise Undecided
    return root, error


def segment_float(network: Network, segment: Segment) -> tuple[np.ndarray, np.ndarray]:
    """Ends (m + 1,) and patterns (m, N) of the activation intervals in float64, every decision certified."""
    network.bound_errors(float(np.abs(segment.input_map).max()), segment.input_error)
    ends, end_errors = np.array([segment.s_a, segment.s_b]), np.zeros(2)
    maps = segment.input_map.T[None].copy()  # (intervals, 2, d): slope and constant in s
    bits = np.zeros((1, 0), bool)
    layer = 0
    for op in network.ops:
        if isinstance(op, Affine):
            maps = apply_affine(op, maps)
            continue
        coef_error = network.coef_error[layer]
        roots, root_errors = _crossings(maps, ends, end_errors, coef_error)
        starts = ends[:-1]
        order = np.argsort(np.concatenate([ends, roots]), kind="stable")
        ends = np.concatenate([ends, roots])[order]
        end_errors = np.concatenate([end_errors, root_errors])[order]
        if (np.diff(ends) <= end_errors[:-1] + end_errors[1:]).any():
            raise Undecided  # two crossings that may coincide
        mid = 0.5 * (ends[:-1] + ends[1:])
        parent = np.clip(np.searchsorted(starts, mid, side="right") - 1, 0, len(starts) - 1)
        maps, bits = maps[parent], bits[parent]
        value = maps[:, 0] * mid[:, None] + maps[:, 1]
        mid_error = np.maximum(end_errors[:-1], end_errors[1:]) + 2 * UNIT_ROUNDOFF * np.abs(mid)
        if not (np.abs(value) > _band(maps, mid, mid_error, coef_error)).all():
            raise Undecided  # a unit that may vanish on a whole interval
        on = value > 0
        bits = np.concatenate([bits, on], axis=1)
        maps = activate(maps, on, op.slope)
        layer += 1
    return ends, bits


def segment_exact(network: Network, segment: Segment) -> tuple[np.ndarray, np.ndarray]:
    """The same intervals in exact rational arithmetic (slower; ends rounded to float64 at the very end)."""
    lines = ExactLines(network, segment.exact_map)
    intervals = [(Fraction(segment.s_a), Fraction(segment.s_b), np.zeros(0, bool))]
    for layer in range(len(network.widths)):
        refined = []
        for lo, hi, bits in intervals:
            units = [(int(m), int(c)) for m, c in lines.layer_maps(layer, bits)[0]]
            roots = sorted(_open(lo, hi, units))
            points = [lo, *roots, hi]
            for p, q in zip(points[:-1], points[1:]):
                mid = (p + q) / 2
                on = np.array([m * mid + c > 0 for m, c in units], dtype=bool)
                refined.append((p, q, np.concatenate([bits, on])))
        intervals = refined
    ends = np.array([float(lo) for lo, _, _ in intervals] + [float(intervals[-1][1])])
    return ends, np.array([bits for _, _, bits in intervals]).reshape(len(intervals), -1)


def _open(lo: Fraction, hi: Fraction, units: list[tuple[int, int]]) -> set[Fraction]:
    """The units' roots strictly between ``lo`` and ``hi``."""
    return {Fraction(-c, m) for m, c in units if m != 0 and lo < Fraction(-c, m) < hi}


def piece_labels(network: Network, segment: Segment, patterns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float output maps (m, 2, d_out) of the intervals and the linear piece (0, 1, ...) each belongs to:
    neighbours join where their slopes are equal, decided exactly wherever float64 cannot tell them apart."""
    maps = maps_for_patterns(network, segment.input_map, patterns)
    slopes = maps[:, 0]
    band = 2 * network.output_error + 4 * UNIT_ROUNDOFF * (np.abs(slopes[1:]) + np.abs(slopes[:-1]))
    same = ~(np.abs(slopes[1:] - slopes[:-1]) > band).any(axis=1)
    if same.any():
        lines = ExactLines(network, segment.exact_map)
        for i in np.flatnonzero(same):
            (left, e1), (right, e2) = lines.output(patterns[i]), lines.output(patterns[i + 1])
            shift = min(e1, e2)
            same[i] = all(p * (1 << (e1 - shift)) == q * (1 << (e2 - shift)) for p, q in zip(left[:, 0], right[:, 0]))
    return maps, np.concatenate([[0], np.cumsum(~same)])
