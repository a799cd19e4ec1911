"""Exact linear regions of ReLU networks: 1-D pieces, 2-D region partitions, grid estimates and classical bounds.

Introduced in notebook 01 (linear regions); notebook 02 reuses :func:`pieces_1d` to count sawtooth pieces exactly.

A network built from ``Linear`` and ``ReLU``/``LeakyReLU`` layers is continuous and piecewise linear. Fixing which
units are active (the *activation pattern*) makes it affine, and the inputs sharing a pattern form a convex
*activation region*. This module finds these regions exactly, in float64:

* :func:`pieces_1d` propagates a piecewise-linear function of one variable layer by layer along a segment;
* :func:`linear_regions_2d` splits convex polygons by each unit's zero line, for all polygons at once
  (vectorised over regions, one Python step per unit), carrying every region's affine map;
* :func:`grid_regions` is the sampling estimate (distinct patterns on a grid), which undercounts;
* :func:`zaslavsky`, :func:`montufar2014_lower`, :func:`montufar2017_upper`, :func:`serra_upper`,
  :func:`serra_lower` and :func:`max_pieces_1d` are the classical bounds.

``python -m dcnn_helpers.regions bench`` prints regions per second for a fixed set of random networks.
"""

from __future__ import annotations

import argparse
import copy
import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import nn

from dcnn_helpers import config

# Relative tolerances (times the scale of the quantity compared): a vertex closer than SPLIT_TOL to a unit's zero
# line counts as on it; a pre-activation below PATTERN_TOL counts as zero (inactive); maps closer than MAP_TOL are
# equal; a probe across an edge steps PROBE_STEP into the neighbour.
SPLIT_TOL = 1e-11
PATTERN_TOL = 1e-12
MAP_TOL = 1e-9
PROBE_STEP = 1e-8
ROOT_TOL = 1e-12

SUPPORTED_LAYERS = "Linear, ReLU, LeakyReLU, Identity, Flatten (and nested Sequential)"
Box = Sequence[float]  # (xmin, xmax, ymin, ymax)
Plane = tuple  # (origin, u, v): three vectors of the model's input size


# ----------------------------------------------------------------------------------------------------------------
# The network as a list of float64 operations
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Affine:
    weight: np.ndarray  # (out, in)
    bias: np.ndarray  # (out,)


@dataclass(frozen=True)
class _Activation:
    slope: float  # slope of the inactive side: 0 for ReLU, negative_slope for LeakyReLU


def _flatten_layers(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    layers = []
    for name, layer in model.named_children():
        if isinstance(layer, nn.Sequential):
            layers += _flatten_layers(layer, f"{prefix}{name}.")
        else:
            layers.append((f"{prefix}{name}", layer))
    return layers


def _network_ops(model: nn.Module) -> tuple[list[_Affine | _Activation], int]:
    """The model as float64 affine maps and activations (consecutive affine layers composed); and its input size."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be a torch.nn.Sequential of {SUPPORTED_LAYERS}; got {type(model).__name__}")
    ops: list[_Affine | _Activation] = []
    n_in: int | None = None
    width: int | None = None
    for name, layer in _flatten_layers(model):
        if isinstance(layer, nn.Linear):
            weight = layer.weight.detach().to("cpu", torch.float64).numpy().copy()
            bias = (
                layer.bias.detach().to("cpu", torch.float64).numpy().copy()
                if layer.bias is not None
                else np.zeros(layer.out_features)
            )
            if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
                raise ValueError(f"model layer {name} (Linear) has a non-finite weight or bias")
            if width is not None and layer.in_features != width:
                raise ValueError(f"model layer {name} expects {layer.in_features} inputs but receives {width}")
            n_in = layer.in_features if n_in is None else n_in
            width = layer.out_features
            if ops and isinstance(ops[-1], _Affine):
                prev = ops.pop()
                weight, bias = weight @ prev.weight, weight @ prev.bias + bias
            ops.append(_Affine(weight, bias))
        elif isinstance(layer, nn.ReLU):
            ops.append(_Activation(0.0))
        elif isinstance(layer, nn.LeakyReLU):
            ops.append(_Activation(float(layer.negative_slope)))
        elif isinstance(layer, (nn.Identity, nn.Flatten)):
            continue
        else:
            kind = type(layer).__name__
            raise TypeError(f"model layer {name} ({kind}) is not supported; allowed: {SUPPORTED_LAYERS}")
    if n_in is None:
        raise ValueError("model has no Linear layer, so its input dimension is unknown")
    return ops, n_in


# Affine maps of many regions are stored as arrays (R, k, d): row i < k-1 holds the coefficients of coordinate i
# and row k-1 the constants, for the d units of a layer. Rows are contiguous, so composing with a layer is one GEMM.


def _apply_affine(op: _Affine, maps: np.ndarray) -> np.ndarray:
    """Compose the affine layer ``op`` with maps (R, k, d_in): returns (R, k, d_out)."""
    r, k, d = maps.shape
    out = (maps.reshape(r * k, d) @ op.weight.T).reshape(r, k, -1)
    out[:, -1] += op.bias
    return out


def _values(maps: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Values (R, d) of maps (R, m+1, d) at points (R, m)."""
    value = maps[:, -1].copy()
    for i in range(points.shape[1]):
        value += maps[:, i] * points[:, i : i + 1]
    return value


def _active(maps: np.ndarray, points: np.ndarray, scale_len: float) -> np.ndarray:
    """Activation bits (R, d) at ``points`` (R, m) of units with local maps (R, m+1, d).

    A unit is active when its value exceeds PATTERN_TOL * (|gradient|_1 * scale_len + |constant|), so a unit that
    vanishes on a whole region (hand-built nets) counts as inactive whatever the rounding.
    """
    value = _values(maps, points)
    on = value > 0
    bound = PATTERN_TOL * max(maps.max(initial=0.0), -maps.min(initial=0.0)) * (points.shape[1] * scale_len + 1)
    r, j = np.nonzero(on & (value <= bound))
    if r.size:
        tol = PATTERN_TOL * (np.abs(maps[r, :-1, j]).sum(axis=1) * scale_len + np.abs(maps[r, -1, j]))
        small = value[r, j] <= tol
        on[r[small], j[small]] = False
    return on


def _activate(maps: np.ndarray, on: np.ndarray, slope: float) -> np.ndarray:
    """Apply the activation with inactive-side ``slope`` to maps (R, k, d), in place, given the bits (R, d)."""
    maps *= (on if slope == 0.0 else np.where(on, 1.0, slope))[:, None, :]
    return maps


def _patterns_at(ops, maps: np.ndarray, points: np.ndarray, scale_len: float) -> np.ndarray:
    """Activation patterns (n, N) at ``points`` (n, m), propagating local maps from the input maps (n, m+1, n0)."""
    bits = []
    for op in ops:
        if isinstance(op, _Affine):
            maps = _apply_affine(op, maps)
        else:
            on = _active(maps, points, scale_len)
            bits.append(on)
            maps = _activate(maps.copy(), on, op.slope)
    return np.concatenate(bits, axis=1) if bits else np.zeros((len(points), 0), bool)


# ----------------------------------------------------------------------------------------------------------------
# 1-D: exact pieces along a segment
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class Pieces1D:
    """The exact linear pieces of a network along the segment ``x(t) = a + t (b - a)``, ``t`` in [0, 1].

    Introduced in notebook 01. ``len()`` is the number of linear pieces (maximal intervals on which the output is
    affine). ``t`` holds the ends of the activation intervals (one per activation pattern met along the segment),
    ``patterns`` their activation patterns and ``slopes``/``intercepts`` the output's affine map in ``t`` on each.
    """

    a: np.ndarray
    b: np.ndarray
    t: np.ndarray  # (m + 1,) ends of activation intervals
    patterns: np.ndarray  # (m, N) bool
    slopes: np.ndarray  # (m, d_out) d output / d t
    intercepts: np.ndarray  # (m, d_out)
    piece_of_interval: np.ndarray = field(repr=False)  # (m,) index of the linear piece holding each interval

    def __len__(self) -> int:
        return int(self.piece_of_interval[-1]) + 1

    @property
    def n_intervals(self) -> int:
        """Number of activation intervals (activation regions met along the segment); at least ``len(self)``."""
        return len(self.t) - 1

    @property
    def piece_t(self) -> np.ndarray:
        """Ends of the linear pieces in ``t`` (length ``len(self) + 1``)."""
        starts = np.flatnonzero(np.diff(self.piece_of_interval)) + 1
        return np.concatenate([[self.t[0]], self.t[starts], [self.t[-1]]])

    @property
    def breakpoints(self) -> np.ndarray:
        """The kinks inside the segment: scalars ``x`` for a 1-D input, else points of shape (k, n0)."""
        inner = self.piece_t[1:-1]
        points = self.a + inner[:, None] * (self.b - self.a)
        return points[:, 0] if self.a.size == 1 else points

    def __call__(self, t: np.ndarray) -> np.ndarray:
        """The network output at parameters ``t`` (evaluated from the pieces), shape (len(t), d_out)."""
        t = np.asarray(t, dtype=np.float64)
        idx = np.clip(np.searchsorted(self.t, t, side="right") - 1, 0, self.n_intervals - 1)
        return self.slopes[idx] * t[:, None] + self.intercepts[idx]

    def plot(self, ax=None, output: int = 0, **kwargs):
        """Plot output ``output`` along the segment (against ``x`` for scalar input, else ``t``), kinks marked."""
        import matplotlib.pyplot as plt

        ax = ax if ax is not None else plt.subplots()[1]
        ends = self.piece_t
        values = self(ends)[:, output]
        scalar = self.a.size == 1
        xs = self.a[0] + ends * (self.b[0] - self.a[0]) if scalar else ends
        ax.plot(xs, values, lw=kwargs.pop("lw", 1.5), **kwargs)
        ax.plot(xs[1:-1], values[1:-1], ".", color="k", ms=3)
        ax.set(xlabel="x" if scalar else "t along the segment", ylabel="output",
               title=f"{len(self)} linear pieces")
        return ax


def _as_point(value, name: str) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if arr.ndim != 1 or not np.isfinite(arr).all():
        raise ValueError(f"{name} must be a finite scalar or 1-D vector, got {value!r}")
    return arr


def pieces_1d(model: nn.Module, a: float | Sequence[float], b: float | Sequence[float]) -> Pieces1D:
    """The exact linear pieces of ``model`` on the segment from ``a`` to ``b``.

    Introduced in notebook 01. ``a`` and ``b`` are scalars for a network with one input, vectors otherwise. The
    piecewise-linear function is propagated layer by layer in float64: each layer's units add their zero crossings
    inside the current intervals as new breakpoints (all intervals and units of a layer at once).
    """
    ops, n_in = _network_ops(model)
    a_arr, b_arr = _as_point(a, "a"), _as_point(b, "b")
    if a_arr.shape != (n_in,) or b_arr.shape != (n_in,):
        raise ValueError(f"a and b must have the model's input size {n_in}; got shapes {a_arr.shape}, {b_arr.shape}")
    if np.array_equal(a_arr, b_arr):
        raise ValueError("a and b must differ (the segment is empty)")
    t = np.array([0.0, 1.0])
    maps = np.stack([b_arr - a_arr, a_arr])[None]  # (intervals, 2, d): slope and intercept in t
    bits: list[np.ndarray] = []
    for op in ops:
        if isinstance(op, _Affine):
            maps = _apply_affine(op, maps)
            continue
        slope, const = maps[:, 0], maps[:, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            roots = -const / slope
        lo, hi = t[:-1, None], t[1:, None]
        inside = np.isfinite(roots) & (roots > lo + ROOT_TOL) & (roots < hi - ROOT_TOL)
        t = np.unique(np.concatenate([t, roots[inside]]))
        t = t[np.concatenate([[True], np.diff(t) > ROOT_TOL])]
        mid = 0.5 * (t[:-1] + t[1:])
        parent = np.clip(np.searchsorted(lo[:, 0], mid, side="right") - 1, 0, len(lo) - 1)
        maps = maps[parent]
        bits = [layer[parent] for layer in bits]
        on = _active(maps, mid[:, None], 1.0)
        bits.append(on)
        maps = _activate(maps, on, op.slope)
    patterns = np.concatenate(bits, axis=1) if bits else np.zeros((len(t) - 1, 0), bool)
    slopes, intercepts = maps[:, 0], maps[:, 1]
    scale = MAP_TOL * max(np.abs(maps).max(), 1e-300)
    same = np.all(np.abs(np.diff(slopes, axis=0)) <= scale, axis=1)
    piece_of_interval = np.concatenate([[0], np.cumsum(~same)])
    return Pieces1D(a_arr, b_arr, t, patterns, slopes, intercepts, piece_of_interval)


# ----------------------------------------------------------------------------------------------------------------
# 2-D: exact activation regions of a box (or of a box in a 2-D affine plane)
# ----------------------------------------------------------------------------------------------------------------


def _check_box(box: Box) -> tuple[float, float, float, float]:
    try:
        values = tuple(float(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"box must be (xmin, xmax, ymin, ymax), got {box!r}") from None
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ValueError(f"box must be 4 finite numbers (xmin, xmax, ymin, ymax), got {box!r}")
    xmin, xmax, ymin, ymax = values
    if not (xmin < xmax and ymin < ymax):
        raise ValueError(f"box={box!r} is empty or inverted: need xmin < xmax and ymin < ymax")
    return values


def _box_scale(box: tuple[float, float, float, float]) -> float:
    """A length scale of the box (for relative tolerances): its largest coordinate or side."""
    xmin, xmax, ymin, ymax = box
    return max(abs(xmin), abs(xmax), abs(ymin), abs(ymax), xmax - xmin, ymax - ymin)


def _input_map(n_in: int, plane: Plane | None) -> np.ndarray:
    """The input as an affine function of plane coordinates (s, t): shape (n_in, 3) = [u | v | origin]."""
    if plane is None:
        if n_in != 2:
            raise ValueError(f"model input has dimension {n_in}, not 2; pass plane=(origin, u, v) to slice it")
        return np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    try:
        origin, u, v = (np.asarray(p, dtype=np.float64).reshape(-1) for p in plane)
    except (TypeError, ValueError):
        raise ValueError("plane must be (origin, u, v): three vectors of the model's input size") from None
    if not all(p.shape == (n_in,) for p in (origin, u, v)):
        raise ValueError(f"plane vectors must have the model's input size {n_in}")
    if not all(np.isfinite(p).all() for p in (origin, u, v)):
        raise ValueError("plane vectors must be finite")
    if np.linalg.matrix_rank(np.stack([u, v]), tol=1e-12 * max(np.abs(u).max(), np.abs(v).max(), 1e-300)) < 2:
        raise ValueError("plane directions u and v must be linearly independent")
    return np.stack([u, v, origin], axis=1)


class _Polygons:
    """Growable padded storage of convex polygons: vertices (R, K, 2), counts (R,), edge labels (R, K), parent (R,)."""

    def __init__(self, vertices: np.ndarray, labels: np.ndarray):
        self.cap, self.k = 64, vertices.shape[1] + 4
        self.v = np.zeros((self.cap, self.k, 2))
        self.lab = np.full((self.cap, self.k), -1, np.int64)
        self.nv = np.zeros(self.cap, np.int64)
        self.parent = np.zeros(self.cap, np.int64)
        self.n = len(vertices)
        self.v[: self.n, : vertices.shape[1]] = vertices
        self.lab[: self.n, : vertices.shape[1]] = labels
        self.nv[: self.n] = vertices.shape[1]

    def reserve(self, rows: int, width: int) -> None:
        """Make room for ``rows`` polygons of up to ``width`` vertices (capacity doubles, so appends are cheap)."""
        if rows > self.cap or width > self.k:
            cap, k = (2 * rows if rows > self.cap else self.cap), max(self.k, width + 4)
            v, lab = np.zeros((cap, k, 2)), np.full((cap, k), -1, np.int64)
            nv, parent = np.zeros(cap, np.int64), np.zeros(cap, np.int64)
            v[: self.n, : self.k], lab[: self.n, : self.k] = self.v[: self.n], self.lab[: self.n]
            nv[: self.n], parent[: self.n] = self.nv[: self.n], self.parent[: self.n]
            self.cap, self.k, self.v, self.lab, self.nv, self.parent = cap, k, v, lab, nv, parent

    def maybe_crossed(self, maps: np.ndarray) -> np.ndarray:
        """(R, d): whether unit j's line ``maps[r, :, j] . (x, y, 1) = 0`` may cross polygon r (all polygons).

        A superset of the true crossings: the line's value at the centroid is at most |gradient|_1 times the radius.
        """
        n, k = self.n, self.k
        centre = _centroids(self.v[:n], self.nv[:n])
        valid = np.arange(k) < self.nv[:n, None]
        radius = np.where(valid, np.linalg.norm(self.v[:n] - centre[:, None], axis=2), 0.0).max(axis=1)
        reach = (np.abs(maps[:, 0]) + np.abs(maps[:, 1])) * radius[:, None]
        return np.abs(_values(maps, centre)) <= reach

    def split(self, rows: np.ndarray, coef: np.ndarray, label: int, scale_len: float) -> None:
        """Cut polygons ``rows`` by the lines ``coef[r] . (x, y, 1) = 0`` (coef has shape (len(rows), 3)).

        Polygons a line crosses keep their positive part in place; their negative part is appended.
        """
        n, k = self.n, self.k
        v = self.v[rows]
        s = v[..., 0] * coef[:, 0:1] + v[..., 1] * coef[:, 1:2] + coef[:, 2:3]
        tol = SPLIT_TOL * (np.hypot(coef[:, 0], coef[:, 1]) * scale_len + np.abs(coef[:, 2]))
        valid = np.arange(k) < self.nv[rows, None]
        pos = (valid & (s > tol[:, None])).any(axis=1)
        neg = (valid & (s < -tol[:, None])).any(axis=1)
        hit = pos & neg
        if not hit.any():
            return
        rows, sc, validc, tol = rows[hit], s[hit], valid[hit], tol[hit]
        vc, nvc, labc = self.v[rows], self.nv[rows], self.lab[rows]
        sc = np.where(np.abs(sc) <= tol[:, None], 0.0, sc)
        nxt = _next_vertex(nvc, k)
        s_next = np.take_along_axis(sc, nxt, axis=1)
        v_next = np.take_along_axis(vc, nxt[..., None], axis=1)
        cross = validc & (np.sign(sc) * np.sign(s_next) < 0)
        frac = sc / np.where(cross, sc - s_next, 1.0)
        cut = vc + frac[..., None] * (v_next - vc)
        cand = np.stack([vc, cut], axis=2).reshape(len(rows), 2 * k, 2)
        parts = []
        for sign in (1.0, -1.0):
            keep = validc & (sign * sc >= 0)
            lab_v = np.where((sc == 0) & (sign * s_next < 0), label, labc)
            lab_c = np.where(sign * s_next > 0, labc, label)
            mask = np.stack([keep, cross], axis=2).reshape(len(rows), 2 * k)
            lab = np.stack([lab_v, lab_c], axis=2).reshape(len(rows), 2 * k)
            slot = np.cumsum(mask, axis=1) - 1
            parts.append((mask, slot, lab))
        width = max(int(m.sum(axis=1).max()) for m, _, _ in parts)
        self.reserve(n + len(rows), width)
        targets = (rows, np.arange(n, n + len(rows)))
        for (mask, slot, lab), target in zip(parts, targets):
            r_idx, c_idx = np.nonzero(mask)
            out_rows = target[r_idx]
            self.v[target] = 0.0
            self.lab[target] = -1
            self.v[out_rows, slot[r_idx, c_idx]] = cand[r_idx, c_idx]
            self.lab[out_rows, slot[r_idx, c_idx]] = lab[r_idx, c_idx]
            self.nv[target] = mask.sum(axis=1)
        self.parent[n : n + len(rows)] = self.parent[rows]
        self.n = n + len(rows)


def _next_vertex(counts: np.ndarray, k: int) -> np.ndarray:
    """(R, k): index of the vertex after vertex i in polygons with ``counts`` vertices (wrapping around)."""
    idx = np.arange(k)
    return np.where(idx + 1 < counts[:, None], idx + 1, 0)


def _centroids(vertices: np.ndarray, counts: np.ndarray) -> np.ndarray:
    valid = np.arange(vertices.shape[1]) < counts[:, None]
    return (vertices * valid[..., None]).sum(axis=1) / counts[:, None]


@dataclass
class Partition2D:
    """The activation regions of a network on a box (in input coordinates, or in plane coordinates ``(s, t)``).

    Introduced in notebook 01. ``len()`` is the number of activation regions. Region ``i`` has the convex polygon
    ``polygons[i]`` (counter-clockwise vertices), the activation pattern ``patterns[i]`` (one bit per unit, layer by
    layer; ``layer_slices`` tells which bits belong to which layer) and the affine map ``affine_map(i)`` of the
    network's output. ``pieces``/``n_pieces`` merge adjacent regions whose maps agree into linear pieces.
    """

    box: tuple[float, float, float, float]
    vertices: np.ndarray  # (R, K, 2) padded with zeros
    n_vertices: np.ndarray  # (R,)
    edge_units: np.ndarray  # (R, K): unit whose zero line holds edge i (from vertex i to i+1); -1 on the box
    patterns: np.ndarray  # (R, N) bool
    maps: np.ndarray  # (R, d_out, 3): output = maps[..., :2] @ (s, t) + maps[..., 2]
    layer_slices: list[slice]
    plane: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    _ops: list = field(default=None, repr=False)
    _input: np.ndarray = field(default=None, repr=False)
    _pieces: np.ndarray | None = field(default=None, repr=False)
    _key_index: tuple | None = field(default=None, repr=False)
    _edges: tuple | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.n_vertices)

    @property
    def polygons(self) -> list[np.ndarray]:
        """Each region's vertices, an array (n_i, 2) in counter-clockwise order."""
        return [self.vertices[i, :n] for i, n in enumerate(self.n_vertices)]

    @property
    def areas(self) -> np.ndarray:
        """Region areas (shoelace formula, vectorised); they sum to the box area."""
        k = self.vertices.shape[1]
        v = self.vertices
        w = np.take_along_axis(v, _next_vertex(self.n_vertices, k)[..., None], axis=1)
        valid = np.arange(k) < self.n_vertices[:, None]
        return 0.5 * np.where(valid, v[..., 0] * w[..., 1] - v[..., 1] * w[..., 0], 0.0).sum(axis=1)

    @property
    def interior_points(self) -> np.ndarray:
        """One point strictly inside each region (the mean of its vertices), shape (R, 2)."""
        return _centroids(self.vertices, self.n_vertices)

    def to_input(self, points: np.ndarray) -> np.ndarray:
        """Map box coordinates (n, 2) to the network's input space (the identity without a plane)."""
        points = np.asarray(points, dtype=np.float64)
        return points @ self._input[:, :2].T + self._input[:, 2]

    def affine_map(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(A, c)`` with output ``A @ (s, t) + c`` on region ``i``; ``A`` is (d_out, 2)."""
        return self.maps[i, :, :2].copy(), self.maps[i, :, 2].copy()

    @property
    def _scale_len(self) -> float:
        return _box_scale(self.box)

    def locate(self, points: np.ndarray) -> np.ndarray:
        """Index of the region holding each of ``points`` (n, 2) (box coordinates), or -1 (outside the box)."""
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        if len(points) == 0:
            return np.zeros(0, np.int64)
        start = np.broadcast_to(self._input.T, (len(points), *self._input.T.shape))
        patterns = _patterns_at(self._ops, start, points, self._scale_len)
        xmin, xmax, ymin, ymax = self.box
        inside = (points[:, 0] >= xmin) & (points[:, 0] <= xmax) & (points[:, 1] >= ymin) & (points[:, 1] <= ymax)
        return np.where(inside, self._find(_row_keys(_packed(patterns))), -1)

    @property
    def pieces(self) -> np.ndarray:
        """Linear-piece label of each region: regions joined across an edge where their affine maps agree."""
        if self._pieces is None:
            self._pieces = self._merge_pieces()
        return self._pieces

    @property
    def n_pieces(self) -> int:
        """Number of linear pieces (at most ``len(self)``)."""
        return int(self.pieces.max()) + 1

    def _neighbours(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every inner edge as (segments (E, 2, 2), owner region, region across it or -1).

        The region across an edge on unit u's line is the one whose pattern differs in bit u, confirmed by a probe
        point just across the edge; where that fails (units sharing a line in hand-built nets) the probe is located
        by a forward pass.
        """
        if self._edges is None:
            k = self.vertices.shape[1]
            rows, cols = np.nonzero((np.arange(k) < self.n_vertices[:, None]) & (self.edge_units >= 0))
            nxt = np.where(cols + 1 < self.n_vertices[rows], cols + 1, 0)
            p, q = self.vertices[rows, cols], self.vertices[rows, nxt]
            normal = np.stack([q[:, 1] - p[:, 1], p[:, 0] - q[:, 0]], axis=1)  # outward: counter-clockwise polygons
            normal /= np.linalg.norm(normal, axis=1, keepdims=True)
            probes = 0.5 * (p + q) + PROBE_STEP * self._scale_len * normal
            units = self.edge_units[rows, cols]
            flipped = _packed(self.patterns)[rows]
            flipped[np.arange(len(rows)), units // 8] ^= (1 << (7 - units % 8)).astype(np.uint8)
            other = self._find(_row_keys(flipped))
            ok = other >= 0
            ok[ok] = self._contains(other[ok], probes[ok])
            other[~ok] = self.locate(probes[~ok])
            self._edges = (np.stack([p, q], axis=1), rows, other)
        return self._edges

    def _merge_pieces(self) -> np.ndarray:
        """Join regions across edges where the affine maps agree (connected components)."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        _, rows, other = self._neighbours()
        keep = (other >= 0) & (other != rows)
        a, b = rows[keep], other[keep]
        scale = MAP_TOL * max(np.abs(self.maps).max(), 1e-300)
        same = np.all(np.abs(self.maps[a] - self.maps[b]) <= scale, axis=(1, 2))
        graph = coo_matrix((np.ones(int(same.sum())), (a[same], b[same])), shape=(len(self), len(self)))
        return connected_components(graph, directed=False)[1]

    def piece_boundaries(self) -> np.ndarray:
        """Segments (m, 2, 2) of region edges that separate different linear pieces (box edges excluded)."""
        segments, rows, other = self._neighbours()
        pieces = self.pieces
        return segments[(other < 0) | (pieces[rows] != pieces[np.maximum(other, 0)])]

    def _contains(self, regions: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Whether each point lies in (or on the boundary of) the matching region's polygon."""
        v, nv, k = self.vertices[regions], self.n_vertices[regions], self.vertices.shape[1]
        edge = np.take_along_axis(v, _next_vertex(nv, k)[..., None], axis=1) - v
        rel = points[:, None, :] - v
        cross = edge[..., 0] * rel[..., 1] - edge[..., 1] * rel[..., 0]
        valid = np.arange(k) < nv[:, None]
        return np.all(~valid | (cross >= -1e-12 * self._scale_len**2), axis=1)

    def _find(self, keys: np.ndarray) -> np.ndarray:
        """Index of the region with each packed pattern key, or -1."""
        if self._key_index is None:
            own = _row_keys(_packed(self.patterns))
            order = np.argsort(own, kind="stable")
            self._key_index = (order, own[order])
        order, sorted_keys = self._key_index
        pos = np.clip(np.searchsorted(sorted_keys, keys), 0, len(sorted_keys) - 1)
        return np.where(sorted_keys[pos] == keys, order[pos], -1)

    def boundary_segments(self, level: float = 0.0) -> np.ndarray:
        """The decision boundary as segments (m, 2, 2): where output - level = 0 (one output) or f0 = f1 (two)."""
        if self.maps.shape[1] == 1:
            g = self.maps[:, 0].copy()
            g[:, 2] -= level
        elif self.maps.shape[1] == 2:
            g = self.maps[:, 0] - self.maps[:, 1]
        else:
            raise ValueError(f"a decision boundary needs 1 or 2 outputs; the model has {self.maps.shape[1]}")
        v, nv, k = self.vertices, self.n_vertices, self.vertices.shape[1]
        s = v[..., 0] * g[:, 0:1] + v[..., 1] * g[:, 1:2] + g[:, 2:3]
        valid = np.arange(k) < nv[:, None]
        nxt = _next_vertex(nv, k)
        s_next = np.take_along_axis(s, nxt, axis=1)
        cross = valid & (np.sign(s) != np.sign(s_next)) & (s != 0)
        frac = s / np.where(cross, s - s_next, 1.0)
        pts = v + frac[..., None] * (np.take_along_axis(v, nxt[..., None], axis=1) - v)
        rows = np.flatnonzero(cross.sum(axis=1) == 2)
        first = np.argmax(cross[rows], axis=1)
        last = k - 1 - np.argmax(cross[rows, ::-1], axis=1)
        return np.stack([pts[rows, first], pts[rows, last]], axis=1)

    def plot(self, ax=None, color: str = "region", boundary: bool = True, edges: bool = True, seed: int = 0):
        """Draw the regions (``color="region"``) or merged linear pieces (``"piece"``, with edges only between
        pieces) and the decision boundary (``boundary``, for models with 1 or 2 outputs)."""
        import matplotlib.pyplot as plt
        from matplotlib.collections import LineCollection, PolyCollection

        if color not in ("region", "piece"):
            raise ValueError(f"color must be 'region' or 'piece', got {color!r}")
        ax = ax if ax is not None else plt.subplots(figsize=(4.5, 4.5))[1]
        labels = np.arange(len(self)) if color == "region" else self.pieces
        palette = plt.get_cmap("tab20")(np.arange(20))[:, :3]
        shuffled = np.random.default_rng(seed).permutation(int(labels.max()) + 1)
        faces = palette[shuffled[labels] % 20] * 0.6 + 0.4
        edge_colour = "0.35" if edges and color == "region" else faces  # face-coloured edges hide seams
        ax.add_collection(PolyCollection(self.polygons, facecolors=faces, edgecolors=edge_colour, linewidths=0.2))
        if edges and color == "piece":
            ax.add_collection(LineCollection(self.piece_boundaries(), colors="0.35", linewidths=0.4))
        if boundary and self.maps.shape[1] <= 2:
            ax.add_collection(LineCollection(self.boundary_segments(), colors="k", linewidths=1.5))
        xmin, xmax, ymin, ymax = self.box
        ax.set(xlim=(xmin, xmax), ylim=(ymin, ymax), aspect="equal")
        ax.set(xlabel="s" if self.plane is not None else "$x_1$", ylabel="t" if self.plane is not None else "$x_2$")
        ax.grid(False)
        count = f"{len(self)} regions" if color == "region" else f"{self.n_pieces} linear pieces"
        ax.set_title(count)
        return ax


def _packed(bits: np.ndarray) -> np.ndarray:
    """Rows of a boolean matrix packed into bytes (at least one byte per row)."""
    return np.packbits(bits, axis=1) if bits.shape[1] else np.zeros((len(bits), 1), np.uint8)


def _row_keys(packed: np.ndarray) -> np.ndarray:
    """One sortable key per row of packed bytes (the row as a void scalar)."""
    packed = np.ascontiguousarray(packed)
    return packed.view(np.dtype((np.void, packed.shape[1]))).ravel()


def linear_regions_2d(model: nn.Module, box: Box = (-1.0, 1.0, -1.0, 1.0), plane: Plane | None = None) -> Partition2D:
    """The exact activation regions of ``model`` on ``box = (xmin, xmax, ymin, ymax)``.

    Introduced in notebook 01. The model is a ``torch.nn.Sequential`` of ``Linear``, ``ReLU``/``LeakyReLU``
    (``Identity``, ``Flatten`` are skipped) with 2 inputs; for more inputs pass ``plane=(origin, u, v)`` and the box
    is in the plane coordinates ``(s, t)`` of ``origin + s u + t v``. Starting from the box, every unit (layer by
    layer) cuts all current polygons by its zero line at once; each region carries its affine map, float64.
    """
    box = _check_box(box)
    ops, n_in = _network_ops(model)
    input_map = _input_map(n_in, plane)
    xmin, xmax, ymin, ymax = box
    scale_len = _box_scale(box)
    square = np.array([[[xmin, ymin], [xmax, ymin], [xmax, ymax], [xmin, ymax]]])
    poly = _Polygons(square, np.full((1, 4), -1))
    maps = input_map.T[None].copy()  # (R, 3, d): the current layer's values as affine maps of (s, t)
    bits: list[np.ndarray] = []
    slices, unit = [], 0
    for op in ops:
        if isinstance(op, _Affine):
            maps = _apply_affine(op, maps)
            continue
        width = maps.shape[2]
        poly.parent[: poly.n] = np.arange(poly.n)
        maybe = poly.maybe_crossed(maps).T.copy()  # (units, layer-start polygons)
        for j in range(width):
            rows = np.flatnonzero(maybe[j][poly.parent[: poly.n]])
            if rows.size:
                poly.split(rows, maps[poly.parent[rows], :, j], unit + j, scale_len)
        parent = poly.parent[: poly.n].copy()
        maps = maps[parent]
        bits = [layer[parent] for layer in bits]
        on = _active(maps, _centroids(poly.v[: poly.n], poly.nv[: poly.n]), scale_len)
        bits.append(on)
        maps = _activate(maps, on, op.slope)
        slices.append(slice(unit, unit + width))
        unit += width
    n, width = poly.n, int(poly.nv[: poly.n].max())
    patterns = np.concatenate(bits, axis=1) if bits else np.zeros((n, 0), bool)
    plane_arrays = None if plane is None else tuple(np.asarray(p, dtype=np.float64).reshape(-1) for p in plane)
    return Partition2D(
        box=box,
        vertices=poly.v[:n, :width].copy(),
        n_vertices=poly.nv[:n].copy(),
        edge_units=poly.lab[:n, :width].copy(),
        patterns=patterns,
        maps=np.ascontiguousarray(maps.transpose(0, 2, 1)),
        layer_slices=slices,
        plane=plane_arrays,
        _ops=ops,
        _input=input_map,
    )


# ----------------------------------------------------------------------------------------------------------------
# Sampling estimate
# ----------------------------------------------------------------------------------------------------------------


def activation_patterns(model: nn.Module, points: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Activation patterns (n, N) of ``model`` at input ``points`` (n, n0) from its own torch forward pass (float64):
    bit = the input of each ReLU/LeakyReLU unit is > 0.

    Introduced in notebook 01.
    """
    _, n_in = _network_ops(model)
    points = torch.as_tensor(np.asarray(points, dtype=np.float64))
    if points.ndim != 2 or points.shape[1] != n_in:
        raise ValueError(f"points must have shape (n, {n_in}), got {tuple(points.shape)}")
    if any(p.dtype != torch.float64 or p.device.type != "cpu" for p in model.parameters()):
        model = copy.deepcopy(model).to("cpu", torch.float64)
    seen: list[torch.Tensor] = []
    hooks = [
        layer.register_forward_hook(lambda _layer, inputs, _output: seen.append(inputs[0] > 0))
        for _, layer in _flatten_layers(model)
        if isinstance(layer, (nn.ReLU, nn.LeakyReLU))
    ]
    out = []
    try:
        with torch.no_grad():
            for batch in torch.split(points, chunk):
                seen.clear()
                model(batch)
                out.append(torch.cat(seen, dim=1).numpy() if seen else np.zeros((len(batch), 0), bool))
    finally:
        for hook in hooks:
            hook.remove()
    return np.concatenate(out) if out else np.zeros((0, 0), bool)


def grid_regions(
    model: nn.Module, box: Box = (-1.0, 1.0, -1.0, 1.0), resolution: int = 300, plane: Plane | None = None
) -> int:
    """The sampling estimate: distinct activation patterns on a ``resolution`` x ``resolution`` grid of the box.

    Introduced in notebook 01. Every pattern found belongs to a true region, so this never exceeds the exact count;
    regions smaller than the grid spacing are missed.
    """
    box = _check_box(box)
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or resolution < 2:
        raise ValueError(f"resolution must be an integer >= 2, got {resolution!r}")
    _, n_in = _network_ops(model)
    input_map = _input_map(n_in, plane)
    xs = np.linspace(box[0], box[1], int(resolution))
    ys = np.linspace(box[2], box[3], int(resolution))
    grid = np.stack(np.meshgrid(xs, ys, indexing="xy"), axis=-1).reshape(-1, 2)
    patterns = activation_patterns(model, grid @ input_map[:, :2].T + input_map[:, 2])
    return int(len(np.unique(_row_keys(_packed(patterns)))))


# ----------------------------------------------------------------------------------------------------------------
# Bounds
# ----------------------------------------------------------------------------------------------------------------


def _check_widths(n0: int, widths: Sequence[int]) -> list[int]:
    if isinstance(n0, bool) or not isinstance(n0, (int, np.integer)) or n0 < 1:
        raise ValueError(f"n0 (input dimension) must be a positive integer, got {n0!r}")
    widths = list(widths)
    if not widths or not all(isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w >= 1 for w in widths):
        raise ValueError(f"widths must be a non-empty sequence of positive integers, got {widths!r}")
    return [int(w) for w in widths]


def _sum_binomials(n: int, k: int) -> int:
    return sum(math.comb(n, j) for j in range(min(n, k) + 1))


def zaslavsky(n_hyperplanes: int, dim: int = 2) -> int:
    """Regions of ``n_hyperplanes`` hyperplanes in general position in R^dim: sum_{j<=dim} C(n, j) (Zaslavsky).

    Introduced in notebook 01. It is the exact count for one hidden layer of ``n`` units in general position.
    """
    if isinstance(n_hyperplanes, bool) or not isinstance(n_hyperplanes, (int, np.integer)) or n_hyperplanes < 0:
        raise ValueError(f"n_hyperplanes must be a non-negative integer, got {n_hyperplanes!r}")
    _check_widths(dim, [1])
    return _sum_binomials(int(n_hyperplanes), dim)


def montufar2014_lower(n0: int, widths: Sequence[int]) -> int:
    """Montúfar et al. 2014 lower bound on the maximal number of regions:
    prod_{l<L} floor(n_l/n0)^n0 * sum_{j<=n0} C(n_L, j).

    Introduced in notebook 01.
    """
    widths = _check_widths(n0, widths)
    return math.prod((w // n0) ** n0 for w in widths[:-1]) * _sum_binomials(widths[-1], n0)


def montufar2017_upper(n0: int, widths: Sequence[int]) -> int:
    """Montúfar 2017 upper bound: prod_l sum_{j<=d_l} C(n_l, j), d_l = min(n0, n_1, ..., n_l).

    Introduced in notebook 01.
    """
    widths = _check_widths(n0, widths)
    total, d = 1, n0
    for w in widths:
        d = min(d, w)
        total *= _sum_binomials(w, d)
    return total


def serra_upper(n0: int, widths: Sequence[int]) -> int:
    """Serra, Tjandraatmadja, Ramalingam 2018 upper bound (exact for one layer).

    Introduced in notebook 01. Sum over (j_1..j_L), 0 <= j_l <= min(n0, n_1 - j_1, ..., n_{l-1} - j_{l-1}, n_l), of
    prod_l C(n_l, j_l); computed by dynamic programming over the running minimum (exact integers).
    """
    widths = _check_widths(n0, widths)
    states = {n0: 1}  # running min(n0, n_1 - j_1, ...) -> summed products
    for w in widths:
        nxt: dict[int, int] = {}
        for cap, weight in states.items():
            for j in range(min(cap, w) + 1):
                key = min(cap, w - j)
                nxt[key] = nxt.get(key, 0) + weight * math.comb(w, j)
        states = nxt
    return sum(states.values())


def serra_lower(n0: int, widths: Sequence[int]) -> int:
    """Serra et al. 2018 lower bound for n_l >= 3 n0: prod_{l<L} (floor(n_l/n0) + 1)^n0 * sum_{j<=n0} C(n_L, j).

    Introduced in notebook 01. For n0 = 1 it equals :func:`max_pieces_1d`.
    """
    widths = _check_widths(n0, widths)
    if min(widths) < 3 * n0:
        raise ValueError(f"serra_lower needs every width >= 3 * n0 = {3 * n0}; got widths {widths}")
    return math.prod((w // n0 + 1) ** n0 for w in widths[:-1]) * _sum_binomials(widths[-1], n0)


def max_pieces_1d(widths: Sequence[int]) -> int:
    """The maximal number of linear pieces of a ReLU net R -> R with widths n_l >= 3: prod (n_l + 1) (Serra Thm 5).

    Introduced in notebook 01.
    """
    widths = _check_widths(1, widths)
    if min(widths) < 3:
        raise ValueError(f"max_pieces_1d holds for widths >= 3; got {widths}")
    return math.prod(w + 1 for w in widths)


# ----------------------------------------------------------------------------------------------------------------
# Random networks and the benchmark
# ----------------------------------------------------------------------------------------------------------------


def he_network(
    widths: Sequence[int],
    n_in: int = 2,
    n_out: int = 1,
    seed: int = 0,
    bias_std: float = 0.1,
    activation: str = "relu",
    negative_slope: float = 0.1,
) -> nn.Sequential:
    """A float64 ``Sequential`` with He-normal weights (variance 2/fan_in) and N(0, bias_std^2) biases.

    Introduced in notebook 01. ``activation`` is ``"relu"`` or ``"leaky_relu"`` (with ``negative_slope``).
    """
    widths = _check_widths(n_in, widths)
    if activation not in ("relu", "leaky_relu"):
        raise ValueError(f"activation must be 'relu' or 'leaky_relu', got {activation!r}")
    gen = torch.Generator().manual_seed(int(seed))
    layers: list[nn.Module] = []
    sizes = [n_in, *widths, n_out]
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = nn.Linear(fan_in, fan_out).double()
        with torch.no_grad():
            weight = torch.randn(fan_out, fan_in, generator=gen, dtype=torch.float64) * math.sqrt(2 / fan_in)
            linear.weight.copy_(weight)
            linear.bias.copy_(torch.randn(fan_out, generator=gen, dtype=torch.float64) * bias_std)
        layers.append(linear)
        if i < len(widths):
            layers.append(nn.ReLU() if activation == "relu" else nn.LeakyReLU(negative_slope))
    return nn.Sequential(*layers)


def two_spirals(
    n: int = 400, noise: float = 0.05, turns: float = 1.5, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A small 2-D task inside [-1, 1]^2: two interleaved spirals, labels 0/1 (float64 tensors (n, 2) and (n,)).

    Introduced in notebook 01.
    """
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    gen = torch.Generator().manual_seed(int(seed))
    label = torch.arange(n) % 2
    radius = torch.rand(n, generator=gen, dtype=torch.float64) * 0.85 + 0.05
    angle = 2 * math.pi * turns * radius + math.pi * label
    x = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)
    x = x + noise * torch.randn(n, 2, generator=gen, dtype=torch.float64)
    return x.clamp(-1, 1), label.to(torch.float64)


def count_during_training(
    model: nn.Sequential,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    checkpoints: Sequence[int] | None = None,
    lr: float = 3e-3,
    box: Box = (-1.0, 1.0, -1.0, 1.0),
) -> dict[str, list]:
    """Train ``model`` (one logit output) full-batch with Adam on the binary cross-entropy for ``steps`` steps and
    count its exact regions on ``box`` at the ``checkpoints`` (steps; default: 21 evenly spaced, 0 and ``steps``
    included). Returns lists ``step``, ``regions``, ``pieces``, ``loss``, ``accuracy``.

    Introduced in notebook 01. Runs on one CPU thread: for networks this small, more threads only add overhead
    (and on a busy machine, much more).
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    marks = set(np.linspace(0, steps, 21).round().astype(int).tolist() if checkpoints is None else checkpoints)
    if not all(0 <= int(m) <= steps for m in marks):
        raise ValueError(f"checkpoints must lie in [0, steps={steps}], got {sorted(marks)}")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history: dict[str, list] = {"step": [], "regions": [], "pieces": [], "loss": [], "accuracy": []}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for step in config.progress(range(steps + 1), desc="training"):
            logits = model(x)[:, 0]
            loss = nn.functional.binary_cross_entropy_with_logits(logits, y)
            if step in marks:
                partition = linear_regions_2d(model, box)
                history["step"].append(step)
                history["regions"].append(len(partition))
                history["pieces"].append(partition.n_pieces)
                history["loss"].append(loss.item())
                history["accuracy"].append(((logits > 0).to(y.dtype) == y).to(torch.float64).mean().item())
            if step < steps:
                opt.zero_grad()
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    return history


BENCH_WIDTHS = ([16, 16], [32, 32, 32], [64, 64, 64], [128, 128, 128], [120, 120, 120, 120])


def bench(widths_list: Sequence[Sequence[int]] = BENCH_WIDTHS, seed: int = 0, repeat: int = 3) -> list[dict]:
    """Time :func:`linear_regions_2d` on He-initialised nets over [-1, 1]^2; best of ``repeat`` runs each.

    Introduced in notebook 01 (and run by ``python -m dcnn_helpers.regions bench``). Reports wall-clock and CPU
    seconds (the CPU time of this process is less sensitive to other work on a shared machine).
    """
    rows = []
    for widths in widths_list:
        model = he_network(widths, seed=seed)
        wall, cpu, count = math.inf, math.inf, 0
        for _ in range(repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            count = len(linear_regions_2d(model, (-1.0, 1.0, -1.0, 1.0)))
            wall = min(wall, time.perf_counter() - start)
            cpu = min(cpu, time.process_time() - start_cpu)
        rows.append({"widths": list(widths), "regions": count, "seconds": wall, "cpu_seconds": cpu,
                     "regions_per_s": count / wall})
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m dcnn_helpers.regions bench [--repeat R] [--seed S]``. Introduced in notebook 01."""
    parser = argparse.ArgumentParser(prog="python -m dcnn_helpers.regions", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    bench_parser = sub.add_parser("bench", help="regions per second for a fixed set of He-initialised networks")
    bench_parser.add_argument("--repeat", type=int, default=3)
    bench_parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"exact 2-D regions on [-1,1]^2, He init (bias std 0.1), seed {args.seed}, best of {args.repeat}")
    print(f"{'widths':>22} {'regions':>9} {'wall s':>8} {'CPU s':>8} {'regions/s':>11}")
    for row in bench(BENCH_WIDTHS, seed=args.seed, repeat=args.repeat):
        print(f"{str(row['widths']):>22} {row['regions']:>9} {row['seconds']:>8.3f} {row['cpu_seconds']:>8.3f} "
              f"{row['regions_per_s']:>11,.0f}")


if __name__ == "__main__":
    main()
