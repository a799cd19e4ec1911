"""Exact linear regions of ReLU networks: 1-D pieces, 2-D region partitions, grid estimates and classical bounds.

Introduced in notebook 01 (linear regions); notebook 02 reuses :func:`pieces_1d` to count sawtooth pieces exactly.

A network built from ``Linear`` and ``ReLU``/``LeakyReLU`` layers is continuous and piecewise linear. Fixing which
units are active (the *activation pattern*) makes it affine, and the inputs sharing a pattern form a convex
*activation region*. This module finds these regions exactly:

* :func:`pieces_1d` propagates a piecewise-linear function of one variable layer by layer along a segment;
* :func:`linear_regions_2d` splits convex polygons by each unit's zero line, for all polygons at once
  (vectorised over regions, one Python step per unit), carrying every region's affine map;
* :func:`grid_regions` is the sampling estimate (distinct patterns on a grid), which undercounts;
* :func:`zaslavsky`, :func:`montufar2014_lower`, :func:`montufar2017_upper`, :func:`serra_upper`,
  :func:`serra_lower` and :func:`max_pieces_1d` are the classical bounds;
* :func:`plot_partition` and :func:`plot_pieces` draw what the counters found.

Exactness. The counters work in float64 and check every decision against a bound on its rounding error; the few
that float64 cannot certify are settled in exact rational arithmetic (float64 weights are exact rationals). So
region counts, activation patterns and 1-D piece counts are exact on any box or segment (a box so large that most
decisions would need exact arithmetic is refused with an error). Two approximations remain, both stated where they
are used: ``Partition2D.pieces`` joins neighbouring regions whose affine maps agree to ``MAP_TOL`` (relative), and
``Partition2D.locate`` classifies points within ``PATTERN_TOL`` of a unit's zero line as inactive.

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

from dcnn_helpers import config, validation
from dcnn_helpers._region_engine import (centroids, inner_edges, join_equal_maps, next_vertex, partition_box,
                                         pattern_keys, patterns_at, zero_segments)
from dcnn_helpers._region_network import Network, activation_layers, plane_map
from dcnn_helpers._region_segment import Segment, Undecided, piece_labels, segment_exact, segment_float

__all__ = [
    "Pieces1D",
    "pieces_1d",
    "Partition2D",
    "linear_regions_2d",
    "activation_patterns",
    "grid_regions",
    "plot_pieces",
    "plot_partition",
    "zaslavsky",
    "montufar2014_lower",
    "montufar2017_upper",
    "serra_upper",
    "serra_lower",
    "max_pieces_1d",
    "he_network",
    "two_spirals",
    "count_during_training",
    "bench",
    "main",
    "BENCH_WIDTHS",
    "MAP_TOL",
    "PATTERN_TOL",
]

# Neighbouring regions whose output maps agree to MAP_TOL (relative to the largest map entry) form one linear piece
# of a 2-D partition; `locate` counts a unit within PATTERN_TOL (relative to the terms that make its value) as off.
MAP_TOL = 1e-9
PATTERN_TOL = 1e-12
PROBE_STEP = 1e-8  # a probe across an edge steps this fraction of the edge's length into the neighbour

Box = Sequence[float]  # (xmin, xmax, ymin, ymax)
Plane = tuple  # (origin, u, v): three vectors of the model's input size


# ----------------------------------------------------------------------------------------------------------------
# 1-D: exact pieces along a segment
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class Pieces1D:
    """The exact linear pieces of a network along the segment from ``a`` to ``b``.

    Introduced in notebook 01. ``len()`` is the number of linear pieces (maximal intervals on which the output is
    affine). Positions along the segment are ``s`` with ``x(s) = origin + s * direction`` (for a network with one
    input, ``s`` is the input itself). ``positions`` holds the ends of the activation intervals (one per activation
    pattern met along the segment), ``patterns`` their patterns and ``slopes``/``intercepts`` the output's affine
    map in ``s`` on each; ``t`` gives the same ends as fractions of the segment, from 0 at ``a`` to 1 at ``b``.
    """

    a: np.ndarray
    b: np.ndarray
    positions: np.ndarray  # (m + 1,) ends of activation intervals, in s
    patterns: np.ndarray  # (m, N) bool
    slopes: np.ndarray  # (m, d_out) d output / d s
    intercepts: np.ndarray  # (m, d_out) output at s = 0
    origin: np.ndarray
    direction: np.ndarray
    piece_of_interval: np.ndarray = field(repr=False)  # (m,) index of the linear piece holding each interval
    exact_arithmetic: bool = False  # whether float64 could not certify a decision and exact arithmetic was used

    def __len__(self) -> int:
        return int(self.piece_of_interval[-1]) + 1

    @property
    def n_intervals(self) -> int:
        """Number of activation intervals (activation regions met along the segment); at least ``len(self)``."""
        return len(self.positions) - 1

    @property
    def t(self) -> np.ndarray:
        """Ends of the activation intervals as fractions of the segment (0 at ``a``, 1 at ``b``)."""
        s_a, s_b = self.positions[0], self.positions[-1]
        return (self.positions - s_a) / (s_b - s_a)

    @property
    def piece_positions(self) -> np.ndarray:
        """Ends of the linear pieces in ``s`` (length ``len(self) + 1``)."""
        starts = np.flatnonzero(np.diff(self.piece_of_interval)) + 1
        return np.concatenate([[self.positions[0]], self.positions[starts], [self.positions[-1]]])

    @property
    def piece_t(self) -> np.ndarray:
        """Ends of the linear pieces as fractions of the segment (length ``len(self) + 1``)."""
        s_a, s_b = self.positions[0], self.positions[-1]
        return (self.piece_positions - s_a) / (s_b - s_a)

    @property
    def breakpoints(self) -> np.ndarray:
        """The kinks inside the segment: scalars ``x`` for a 1-D input, else points of shape (k, n0)."""
        inner = self.piece_positions[1:-1]
        points = self.origin + inner[:, None] * self.direction
        return points[:, 0] if self.a.size == 1 else points

    def at(self, s: np.ndarray) -> np.ndarray:
        """The network output at positions ``s`` (evaluated from the pieces), shape (len(s), d_out)."""
        s = np.asarray(s, dtype=np.float64)
        idx = np.clip(np.searchsorted(self.positions, s, side="right") - 1, 0, self.n_intervals - 1)
        return self.slopes[idx] * s[:, None] + self.intercepts[idx]

    def __call__(self, t: np.ndarray) -> np.ndarray:
        """The network output at fractions ``t`` of the segment, shape (len(t), d_out)."""
        s_a, s_b = self.positions[0], self.positions[-1]
        return self.at(s_a + np.asarray(t, dtype=np.float64) * (s_b - s_a))


def pieces_1d(model: nn.Module, a: float | Sequence[float], b: float | Sequence[float]) -> Pieces1D:
    """The exact linear pieces of ``model`` on the segment from ``a`` to ``b``.

    Introduced in notebook 01. ``a`` and ``b`` are scalars for a network with one input, vectors otherwise. The
    piecewise-linear function is propagated layer by layer: each layer's units add their zero crossings inside the
    current intervals as new breakpoints (all intervals and units of a layer at once, in float64 with every decision
    checked against its rounding error; in exact rational arithmetic when one cannot be certified).
    """
    network = Network.from_model(model)
    segment = Segment.between(a, b, network.n_in)
    try:
        ends, patterns, exact = *segment_float(network, segment), False
    except Undecided:
        ends, patterns, exact = *segment_exact(network, segment), True
    maps, piece_of_interval = piece_labels(network, segment, patterns)
    origin, direction = segment.input_map[:, 1], segment.input_map[:, 0]
    return Pieces1D(segment.a, segment.b, ends, patterns, maps[:, 0], maps[:, 1], origin, direction,
                    piece_of_interval, exact)


def plot_pieces(ax, pieces: Pieces1D, output: int = 0, **kwargs):
    """Plot output ``output`` along the segment (against ``x`` for scalar input, else ``t``), kinks marked.

    Introduced in notebook 01. ``ax=None`` draws on a new figure; further keyword arguments go to ``ax.plot``.
    """
    import matplotlib.pyplot as plt

    if not isinstance(pieces, Pieces1D):
        raise TypeError(f"pieces must be a Pieces1D (from regions.pieces_1d), got {type(pieces).__name__}")
    output = validation.integer("output", output, 0, pieces.slopes.shape[1] - 1)
    ax = ax if ax is not None else plt.subplots()[1]
    ends = pieces.piece_positions
    values = pieces.at(ends)[:, output]
    scalar = pieces.a.size == 1
    xs = ends if scalar else pieces.piece_t
    ax.plot(xs, values, lw=kwargs.pop("lw", 1.5), **kwargs)
    ax.plot(xs[1:-1], values[1:-1], ".", color="k", ms=3)
    ax.set(xlabel="x" if scalar else "t along the segment", ylabel="output", title=f"{len(pieces)} linear pieces")
    return ax


# ----------------------------------------------------------------------------------------------------------------
# 2-D: exact activation regions of a box (or of a box in a 2-D affine plane)
# ----------------------------------------------------------------------------------------------------------------


def _check_box(box: Box) -> tuple[float, float, float, float]:
    if isinstance(box, (str, bytes)) or not isinstance(box, Sequence | np.ndarray) or len(box) != 4:
        raise ValueError(f"box must be 4 finite numbers (xmin, xmax, ymin, ymax), got {box!r}")
    values = tuple(validation.real(f"box[{i}]", v) for i, v in enumerate(box))
    xmin, xmax, ymin, ymax = values
    if not (xmin < xmax and ymin < ymax):
        raise ValueError(f"box={box!r} is empty or inverted: need xmin < xmax and ymin < ymax")
    return values


@dataclass
class Partition2D:
    """The activation regions of a network on a box (in input coordinates, or in plane coordinates ``(s, t)``).

    Introduced in notebook 01. ``len()`` is the number of activation regions. Region ``i`` has the convex polygon
    ``polygons[i]`` (counter-clockwise vertices), the activation pattern ``patterns[i]`` (one bit per unit, layer by
    layer; ``layer_slices`` tells which bits belong to which layer) and the affine map ``affine_map(i)`` of the
    network's output. ``pieces``/``n_pieces`` merge adjacent regions whose maps agree into linear pieces.
    ``exact_decisions`` counts the decisions float64 could not certify and exact arithmetic settled.
    """

    box: tuple[float, float, float, float]
    vertices: np.ndarray  # (R, K, 2) padded with zeros
    n_vertices: np.ndarray  # (R,)
    edge_units: np.ndarray  # (R, K): unit whose zero line holds edge i (from vertex i to i+1); -1 on the box
    patterns: np.ndarray  # (R, N) bool
    maps: np.ndarray  # (R, d_out, 3): output = maps[..., :2] @ (s, t) + maps[..., 2]
    layer_slices: list[slice]
    plane: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    exact_decisions: int = 0
    _network: Network | None = field(default=None, repr=False)
    _input: np.ndarray | None = field(default=None, repr=False)
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
        w = np.take_along_axis(v, next_vertex(self.n_vertices, k)[..., None], axis=1)
        valid = np.arange(k) < self.n_vertices[:, None]
        return 0.5 * np.where(valid, v[..., 0] * w[..., 1] - v[..., 1] * w[..., 0], 0.0).sum(axis=1)

    @property
    def interior_points(self) -> np.ndarray:
        """One point strictly inside each region (the mean of its vertices), shape (R, 2)."""
        return centroids(self.vertices, self.n_vertices)

    def to_input(self, points: np.ndarray) -> np.ndarray:
        """Map box coordinates (n, 2) to the network's input space (the identity without a plane)."""
        points = np.asarray(points, dtype=np.float64)
        return points @ self._input[:, :2].T + self._input[:, 2]

    def affine_map(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(A, c)`` with output ``A @ (s, t) + c`` on region ``i``; ``A`` is (d_out, 2)."""
        i = validation.integer("i", i, 0, len(self) - 1)
        return self.maps[i, :, :2].copy(), self.maps[i, :, 2].copy()

    def locate(self, points: np.ndarray) -> np.ndarray:
        """Index of the region holding each of ``points`` (n, 2) (box coordinates), or -1 (outside the box).

        A point within ``PATTERN_TOL`` (relative) of a unit's zero line counts as on its inactive side.
        """
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        if points.ndim != 2 or points.shape[1] != 2:
            raise ValueError(f"points must have shape (n, 2), got {points.shape}")
        if len(points) == 0:
            return np.zeros(0, np.int64)
        patterns = patterns_at(self._network, self._input, points, PATTERN_TOL)
        xmin, xmax, ymin, ymax = self.box
        inside = (points[:, 0] >= xmin) & (points[:, 0] <= xmax) & (points[:, 1] >= ymin) & (points[:, 1] <= ymax)
        return np.where(inside, self._find(pattern_keys((patterns))), -1)

    @property
    def pieces(self) -> np.ndarray:
        """Linear-piece label of each region: regions joined across an edge where their affine maps agree (to
        ``MAP_TOL``, relative to the largest map entry)."""
        if self._pieces is None:
            self._pieces = self._merge_pieces()
        return self._pieces

    @property
    def n_pieces(self) -> int:
        """Number of linear pieces (at most ``len(self)``)."""
        return int(self.pieces.max()) + 1

    def _neighbours(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every inner edge as (segments (E, 2, 2), owner region, region across it or -1)."""
        if self._edges is None:
            self._edges = inner_edges(self.vertices, self.n_vertices, self.edge_units, self.patterns, self._find,
                                      self.locate, PROBE_STEP)
        return self._edges

    def _merge_pieces(self) -> np.ndarray:
        """Join regions across edges where the affine maps agree to MAP_TOL (connected components)."""
        _, rows, other = self._neighbours()
        return join_equal_maps(self.maps, rows, other, MAP_TOL)

    def piece_boundaries(self) -> np.ndarray:
        """Segments (m, 2, 2) of region edges that separate different linear pieces (box edges excluded)."""
        segments, rows, other = self._neighbours()
        pieces = self.pieces
        return segments[(other < 0) | (pieces[rows] != pieces[np.maximum(other, 0)])]

    def _find(self, keys: np.ndarray) -> np.ndarray:
        """Index of the region with each packed pattern key, or -1."""
        if self._key_index is None:
            own = pattern_keys((self.patterns))
            order = np.argsort(own, kind="stable")
            self._key_index = (order, own[order])
        order, sorted_keys = self._key_index
        pos = np.clip(np.searchsorted(sorted_keys, keys), 0, len(sorted_keys) - 1)
        return np.where(sorted_keys[pos] == keys, order[pos], -1)

    def boundary_segments(self, level: float = 0.0) -> np.ndarray:
        """The decision boundary as segments (m, 2, 2): where output - level = 0 (one output) or f0 = f1 (two)."""
        level = validation.real("level", level)
        if self.maps.shape[1] == 1:
            g = self.maps[:, 0].copy()
            g[:, 2] -= level
        elif self.maps.shape[1] == 2:
            g = self.maps[:, 0] - self.maps[:, 1]
        else:
            raise ValueError(f"a decision boundary needs 1 or 2 outputs; the model has {self.maps.shape[1]}")
        return zero_segments(self.vertices, self.n_vertices, g)


def linear_regions_2d(model: nn.Module, box: Box = (-1.0, 1.0, -1.0, 1.0), plane: Plane | None = None) -> Partition2D:
    """The exact activation regions of ``model`` on ``box = (xmin, xmax, ymin, ymax)``.

    Introduced in notebook 01. The model is a ``torch.nn.Sequential`` of ``Linear``, ``ReLU``/``LeakyReLU``
    (``Identity``, ``Flatten`` are skipped) with 2 inputs; for more inputs pass ``plane=(origin, u, v)`` and the box
    is in the plane coordinates ``(s, t)`` of ``origin + s u + t v``. Starting from the box, every unit (layer by
    layer) cuts all current polygons by its zero line at once; each region carries its affine map. Every decision is
    certified against its float64 rounding error or settled in exact arithmetic, so the count is exact.
    """
    box = _check_box(box)
    network = Network.from_model(model)
    input_map = plane_map(network.n_in, plane)
    found = partition_box(network, input_map, box)
    plane_arrays = None if plane is None else tuple(np.asarray(p, dtype=np.float64).reshape(-1) for p in plane)
    return Partition2D(
        box=box,
        vertices=found.vertices,
        n_vertices=found.counts,
        edge_units=np.maximum(found.edge_labels, -1),
        patterns=found.patterns,
        maps=np.ascontiguousarray(found.maps.transpose(0, 2, 1)),
        layer_slices=found.layer_slices,
        plane=plane_arrays,
        exact_decisions=found.exact_decisions,
        _network=network,
        _input=input_map,
    )


def plot_partition(ax, partition: Partition2D, color: str = "region", boundary: bool = True, edges: bool = True,
                   seed: int = 0):
    """Draw the regions (``color="region"``) or merged linear pieces (``"piece"``, with edges only between
    pieces) and the decision boundary (``boundary``, for models with 1 or 2 outputs).

    Introduced in notebook 01. ``ax=None`` draws on a new figure; ``seed`` shuffles the colours.
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection, PolyCollection

    if not isinstance(partition, Partition2D):
        raise TypeError(f"partition must be a Partition2D (from regions.linear_regions_2d), got "
                        f"{type(partition).__name__}")
    color = validation.choice("color", color, ("region", "piece"))
    seed = validation.integer("seed", seed, 0)
    ax = ax if ax is not None else plt.subplots(figsize=(4.5, 4.5))[1]
    labels = np.arange(len(partition)) if color == "region" else partition.pieces
    palette = plt.get_cmap("tab20")(np.arange(20))[:, :3]
    shuffled = np.random.default_rng(seed).permutation(int(labels.max()) + 1)
    faces = palette[shuffled[labels] % 20] * 0.6 + 0.4
    edge_colour = "0.35" if edges and color == "region" else faces  # face-coloured edges hide seams
    ax.add_collection(PolyCollection(partition.polygons, facecolors=faces, edgecolors=edge_colour, linewidths=0.2))
    if edges and color == "piece":
        ax.add_collection(LineCollection(partition.piece_boundaries(), colors="0.35", linewidths=0.4))
    if boundary and partition.maps.shape[1] <= 2:
        ax.add_collection(LineCollection(partition.boundary_segments(), colors="k", linewidths=1.5))
    xmin, xmax, ymin, ymax = partition.box
    ax.set(xlim=(xmin, xmax), ylim=(ymin, ymax), aspect="equal")
    in_plane = partition.plane is not None
    ax.set(xlabel="s" if in_plane else "$x_1$", ylabel="t" if in_plane else "$x_2$")
    ax.grid(False)
    ax.set_title(f"{len(partition)} regions" if color == "region" else f"{partition.n_pieces} linear pieces")
    return ax


# ----------------------------------------------------------------------------------------------------------------
# Sampling estimate
# ----------------------------------------------------------------------------------------------------------------


def activation_patterns(model: nn.Module, points: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Activation patterns (n, N) of ``model`` at input ``points`` (n, n0) from its own torch forward pass (float64):
    bit = the input of each ReLU/LeakyReLU unit is > 0.

    Introduced in notebook 01.
    """
    n_in = Network.from_model(model).n_in
    chunk = validation.integer("chunk", chunk, 1)
    points = torch.as_tensor(np.asarray(points, dtype=np.float64))
    if points.ndim != 2 or points.shape[1] != n_in:
        raise ValueError(f"points must have shape (n, {n_in}), got {tuple(points.shape)}")
    if any(p.dtype != torch.float64 or p.device.type != "cpu" for p in model.parameters()):
        model = copy.deepcopy(model).to("cpu", torch.float64)
    seen: list[torch.Tensor] = []
    hooks = [
        layer.register_forward_hook(lambda _layer, inputs, _output: seen.append(inputs[0] > 0))
        for layer in activation_layers(model)
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
    resolution = validation.integer("resolution", resolution, 2)
    network = Network.from_model(model)
    units = sum(network.widths)
    per_point = 8 * (2 + network.n_in + max([network.n_in, *network.widths])) + units // 8 + 1
    validation.memory(f"grid_regions(resolution={resolution})", resolution**2 * per_point)
    input_map = plane_map(network.n_in, plane)
    xs = np.linspace(box[0], box[1], resolution)
    ys = np.linspace(box[2], box[3], resolution)
    grid = np.stack(np.meshgrid(xs, ys, indexing="xy"), axis=-1).reshape(-1, 2)
    patterns = activation_patterns(model, grid @ input_map[:, :2].T + input_map[:, 2])
    return int(len(np.unique(pattern_keys((patterns)))))


# ----------------------------------------------------------------------------------------------------------------
# Bounds
# ----------------------------------------------------------------------------------------------------------------


def _dimension_and_widths(n0: int, widths: Sequence[int]) -> tuple[int, list[int]]:
    return validation.integer("n0", n0, 1), list(validation.integers("widths", widths, minimum=1))


def _sum_binomials(n: int, k: int) -> int:
    return sum(math.comb(n, j) for j in range(min(n, k) + 1))


def zaslavsky(n_hyperplanes: int, dim: int = 2) -> int:
    """Regions of ``n_hyperplanes`` hyperplanes in general position in R^dim: sum_{j<=dim} C(n, j) (Zaslavsky).

    Introduced in notebook 01. It is the exact count for one hidden layer of ``n`` units in general position.
    """
    n_hyperplanes = validation.integer("n_hyperplanes", n_hyperplanes, 0)
    return _sum_binomials(n_hyperplanes, validation.integer("dim", dim, 1))


def montufar2014_lower(n0: int, widths: Sequence[int]) -> int:
    """Montúfar et al. 2014 lower bound on the maximal number of regions:
    prod_{l<L} floor(n_l/n0)^n0 * sum_{j<=n0} C(n_L, j).

    Introduced in notebook 01.
    """
    n0, widths = _dimension_and_widths(n0, widths)
    return math.prod((w // n0) ** n0 for w in widths[:-1]) * _sum_binomials(widths[-1], n0)


def montufar2017_upper(n0: int, widths: Sequence[int]) -> int:
    """Montúfar 2017 upper bound: prod_l sum_{j<=d_l} C(n_l, j), d_l = min(n0, n_1, ..., n_l).

    Introduced in notebook 01.
    """
    n0, widths = _dimension_and_widths(n0, widths)
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
    n0, widths = _dimension_and_widths(n0, widths)
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
    n0, widths = _dimension_and_widths(n0, widths)
    if min(widths) < 3 * n0:
        raise ValueError(f"serra_lower needs every width >= 3 * n0 = {3 * n0}; got widths {widths}")
    return math.prod((w // n0 + 1) ** n0 for w in widths[:-1]) * _sum_binomials(widths[-1], n0)


def max_pieces_1d(widths: Sequence[int]) -> int:
    """The maximal number of linear pieces of a ReLU net R -> R with widths n_l >= 3: prod (n_l + 1) (Serra Thm 5).

    Introduced in notebook 01.
    """
    _, widths = _dimension_and_widths(1, widths)
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
    n_in, widths = _dimension_and_widths(n_in, widths)
    n_out = validation.integer("n_out", n_out, 1)
    seed = validation.integer("seed", seed, 0)
    bias_std = validation.real("bias_std", bias_std, 0.0)
    activation = validation.choice("activation", activation, ("relu", "leaky_relu"))
    negative_slope = validation.real("negative_slope", negative_slope)
    sizes = [n_in, *widths, n_out]
    validation.memory(f"he_network(widths={widths})", 16 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:])))
    gen = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
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
    n = validation.integer("n", n, 2)
    noise = validation.real("noise", noise, 0.0)
    turns = validation.real("turns", turns, 0.0, low_open=True)
    gen = torch.Generator().manual_seed(validation.integer("seed", seed, 0))
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
    steps = validation.integer("steps", steps, 1)
    lr = validation.real("lr", lr, 0.0, low_open=True)
    box = _check_box(box)
    default = np.linspace(0, steps, 21).round().astype(int).tolist()
    marks = set(validation.integers("checkpoints", list(default if checkpoints is None else checkpoints), 0))
    if max(marks) > steps:
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
    repeat = validation.integer("repeat", repeat, 1)
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
    try:
        rows = bench(BENCH_WIDTHS, seed=args.seed, repeat=args.repeat)
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    print(f"exact 2-D regions on [-1,1]^2, He init (bias std 0.1), seed {args.seed}, best of {args.repeat}")
    print(f"{'widths':>22} {'regions':>9} {'wall s':>8} {'CPU s':>8} {'regions/s':>11}")
    for row in rows:
        print(f"{str(row['widths']):>22} {row['regions']:>9} {row['seconds']:>8.3f} {row['cpu_seconds']:>8.3f} "
              f"{row['regions_per_s']:>11,.0f}")


if __name__ == "__main__":
    main()
