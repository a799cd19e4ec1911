"""The exact region engine behind :mod:`dcnn_helpers.regions` (private): convex polygons cut by units' zero lines.

Introduced in notebook 01 (linear regions).

Starting from a box, every unit (layer by layer) cuts all current polygons by its zero line at once, vectorised over
polygons. Each decision -- on which side of a line a vertex lies, whether a unit is active on a polygon -- is taken
in float64 when its margin exceeds a bound on the rounding error (of the unit's affine map, of the evaluation, and of
the vertex itself, tracked per vertex); otherwise it is settled in exact rational arithmetic by
:class:`ExactJudge`, which recomputes the vertex as the intersection of its two edges' exact lines. So the regions
found are exactly those of the network whatever the size of the box; a box so large that float64 cannot certify
most decisions is refused rather than counted slowly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dcnn_helpers._region_network import (
    UNIT_ROUNDOFF,
    Activation,
    Affine,
    SAFETY,
    ExactLines,
    Network,
    activate,
    affine_error,
    apply_affine,
    dyadic,
)

# Beyond this many exact decisions float64 is clearly not resolving the box: refuse instead of crawling.
MAX_EXACT_DECISIONS = 200_000
BOX_EDGES = (-1, -2, -3, -4)  # labels of the box's bottom, right, top and left edges


class TooManyExactDecisions(ValueError):
    """float64 cannot resolve this box; the message says what to do."""


def _evaluation_band(coef: np.ndarray, points: np.ndarray, point_error: np.ndarray, coef_error) -> np.ndarray:
    """Bound on |computed - exact| value of lines ``coef`` (..., 3), whose coefficients are off by at most
    ``coef_error`` (...), at float ``points`` (..., 2) within ``point_error`` (...) of their exact positions:
    coefficient error, evaluation rounding, and the point's own error."""
    x, y = np.abs(points[..., 0]), np.abs(points[..., 1])
    a, b, c = np.abs(coef[..., 0]), np.abs(coef[..., 1]), np.abs(coef[..., 2])
    return coef_error * (x + y + 1) + 4 * UNIT_ROUNDOFF * (a * x + b * y + c) + (a + b) * point_error


def next_vertex(counts: np.ndarray, width: int) -> np.ndarray:
    """(R, width): index of the vertex after vertex i in polygons with ``counts`` vertices (wrapping around)."""
    index = np.arange(width)
    return np.where(index + 1 < counts[:, None], index + 1, 0)


def centroids(vertices: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean of each polygon's vertices, (R, 2): a point strictly inside a convex polygon."""
    valid = np.arange(vertices.shape[1]) < counts[:, None]
    return (vertices * valid[..., None]).sum(axis=1) / counts[:, None]


def box_lines(box: tuple[float, float, float, float]) -> np.ndarray:
    """The lines (4, 3) of the box's bottom, right, top and left edges (exact in float64)."""
    xmin, xmax, ymin, ymax = box
    return np.array([[0.0, 1.0, -ymin], [1.0, 0.0, -xmax], [0.0, 1.0, -ymax], [1.0, 0.0, -xmin]])


class PolygonStore:
    """Growable padded storage of convex polygons: ``vertices`` (R, K, 2) counter-clockwise, ``counts`` (R,),
    ``edge_labels`` (R, K) (the unit whose zero line holds the edge from vertex i to i + 1, or a box edge),
    ``edge_lines`` (R, K, 3) (that line's float64 coefficients on the polygon), ``vertex_errors`` (R, K)
    (bounds on each vertex's distance from its exact position, 1-norm) and ``parent`` (R,) (the polygon each one
    was cut from since the layer started). The float data of a vertex sit side by side in one array, ``table``
    (R, K, 6) = [x, y, error, a, b, c], so that a cut moves them together."""

    def __init__(self, box: tuple[float, float, float, float]) -> None:
        xmin, xmax, ymin, ymax = box
        self.capacity, self.width, self.n = 64, 8, 1
        self.table = np.zeros((self.capacity, self.width, 6))
        self.table[0, :4, :2] = [[xmin, ymin], [xmax, ymin], [xmax, ymax], [xmin, ymax]]
        self.table[0, :4, 3:] = box_lines(box)
        self.edge_labels = np.full((self.capacity, self.width), BOX_EDGES[0], np.int64)
        self.edge_labels[0, :4] = BOX_EDGES
        self.counts = np.zeros(self.capacity, np.int64)
        self.counts[0] = 4
        self.parent = np.zeros(self.capacity, np.int64)

    @property
    def vertices(self) -> np.ndarray:
        return self.table[..., :2]

    @property
    def vertex_errors(self) -> np.ndarray:
        return self.table[..., 2]

    @property
    def edge_lines(self) -> np.ndarray:
        return self.table[..., 3:]

    def reserve(self, rows: int, width: int) -> None:
        """Make room for ``rows`` polygons of up to ``width`` vertices (capacity doubles, so appends are cheap)."""
        if rows <= self.capacity and width <= self.width:
            return
        capacity, wide = (2 * rows if rows > self.capacity else self.capacity), max(self.width, width + 4)
        n, old = self.n, self.width
        table, labels = np.zeros((capacity, wide, 6)), np.full((capacity, wide), BOX_EDGES[0], np.int64)
        table[:n, :old], labels[:n, :old] = self.table[:n], self.edge_labels[:n]
        self.table, self.edge_labels = table, labels
        for name in ("counts", "parent"):
            array = np.zeros(capacity, np.int64)
            array[:n] = getattr(self, name)[:n]
            setattr(self, name, array)
        self.capacity, self.width = capacity, wide

    def start_layer(self) -> None:
        self.parent[: self.n] = np.arange(self.n)

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Each polygon's centroid and a bound on its error (its vertices' largest error plus rounding)."""
        n = self.n
        centre = centroids(self.vertices[:n], self.counts[:n])
        error = self.vertex_errors[:n].max(axis=1) + 4 * UNIT_ROUNDOFF * np.abs(centre).sum(axis=1)
        return centre, error

    def _value_and_bound(self, maps: np.ndarray, coef_error: np.ndarray):
        """The units' values at the centroids (R, d), the centroids with their errors, and a bound (R, d) on each
        value's error (with one magnitude for all maps: cheaper than each unit's own bound, which it exceeds; NaN
        when the maps overflowed, so that nothing is decided on them). ``coef_error`` (R, d) bounds the maps'."""
        centre, error = self.centres()
        value = maps[:, 0] * centre[:, 0:1] + maps[:, 1] * centre[:, 1:2] + maps[:, 2]
        size = np.abs(centre).sum(axis=1)
        magnitude = max(maps.max(initial=0.0), -maps.min(initial=0.0))  # one number: no copy of the maps
        bound = coef_error * (size + 1)[:, None] + ((4 * UNIT_ROUNDOFF * (size + 1) + 2 * error) * magnitude)[:, None]
        return value, centre, error, bound

    def maybe_crossed(self, maps: np.ndarray, coef_error: np.ndarray) -> np.ndarray:
        """(R, d): whether unit j's line ``maps[r, :, j] . (x, y, 1) = 0`` may cross polygon r (a superset)."""
        value, centre, error, bound = self._value_and_bound(maps, coef_error)
        valid = np.arange(self.width) < self.counts[: self.n, None]
        offsets = np.abs(self.vertices[: self.n] - centre[:, None]).sum(axis=2)
        radius = np.where(valid, offsets, 0.0).max(axis=1) + error
        reach = (np.abs(maps[:, 0]) + np.abs(maps[:, 1])) * radius[:, None] + bound
        return ~(np.abs(value) > reach)  # NaN-safe: an overflowed value may cross

    def split(self, rows: np.ndarray, coef: np.ndarray, unit: int, errors: tuple[np.ndarray, float],
              judge: ExactJudge) -> None:
        """Cut polygons ``rows`` by the lines ``coef[r] . (x, y, 1) = 0`` of ``unit`` (coef: (len(rows), 3)).

        ``errors``: bounds on the error of each line's coefficients (len(rows),) and on that of any edge's line.

        Polygons the line crosses keep their positive part in place; their negative part is appended.
        """
        coef_error, edge_error = errors
        _, sides, valid = self._sides(rows, coef, unit, coef_error, judge)
        hit = ((sides > 0) & valid).any(axis=1) & ((sides < 0) & valid).any(axis=1)
        if not hit.any():
            return
        rows, sides, valid, coef, coef_error = rows[hit], sides[hit], valid[hit], coef[hit], coef_error[hit]
        following = np.take_along_axis(sides, next_vertex(self.counts[rows], self.width), axis=1)
        crossing = valid & (sides * following < 0)
        cut, cut_error = self._cut_points(rows, coef, (coef_error, edge_error), crossing)
        n = self.n
        parts = [self._part(rows, coef, sides, following, valid, cut, cut_error, unit, sign) for sign in (1, -1)]
        self.reserve(n + len(rows), max(int(part[0].sum(axis=1).max()) for part in parts))
        for part, target in zip(parts, (rows, np.arange(n, n + len(rows)))):
            self._write(target, *part)
        self.parent[n : n + len(rows)] = self.parent[rows]
        self.n = n + len(rows)

    def _sides(self, rows, coef, unit, coef_error, judge):
        """Values of the lines at the vertices and their certain sides (+1, 0 on the line, -1)."""
        points, errors = self.vertices[rows], self.vertex_errors[rows]
        values = points[..., 0] * coef[:, 0:1] + points[..., 1] * coef[:, 1:2] + coef[:, 2:3]
        valid = np.arange(self.width) < self.counts[rows, None]
        # one bound per polygon first (cheap); each vertex's own bound only where that one is not enough
        size = np.abs(points).sum(axis=2).max(axis=1)
        magnitude = np.abs(coef).max(axis=1)
        bound = coef_error * (size + 1) + (4 * UNIT_ROUNDOFF * (size + 1) + 2 * errors.max(axis=1)) * magnitude
        sides = np.sign(values).astype(np.int64)
        near_r, near_k = np.nonzero(valid & ~(np.abs(values) > bound[:, None]))
        if near_r.size:
            band = _evaluation_band(coef[near_r], points[near_r, near_k], errors[near_r, near_k],
                                    coef_error[near_r])
            unsure = ~(np.abs(values[near_r, near_k]) > band)
            if unsure.any():
                r, k = near_r[unsure], near_k[unsure]
                sides[r, k] = judge.vertex_sides(rows[r], k, unit)
        return values, sides, valid

    def _cut_points(self, rows, coef, errors, crossing):
        """Where the crossed edges meet the line: the intersection of the edge's line with it (so errors do not
        pile up cut after cut), with a bound on its error; the edge's midpoint, with the edge's length as error,
        where the two lines are too close to parallel for that."""
        r, k = np.nonzero(crossing)
        coef_error, edge_error = errors[0][r], errors[1]
        a1, b1, c1 = np.moveaxis(self.edge_lines[rows[r], k], -1, 0)
        a2, b2, c2 = np.moveaxis(coef[r], -1, 0)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            det = a1 * b2 - a2 * b1
            x, y = (b1 * c2 - b2 * c1) / det, (c1 * a2 - c2 * a1) / det
            edge_error = np.where(self.edge_labels[rows[r], k] < 0, 0.0, edge_error)
            size = np.abs(x) + np.abs(y)
            error = (((np.abs(a2) + np.abs(b2)) * edge_error + (np.abs(a1) + np.abs(b1)) * coef_error) * (size + 1)
                     + 4 * UNIT_ROUNDOFF * (np.abs(b1 * c2) + np.abs(b2 * c1) + np.abs(c1 * a2) + np.abs(c2 * a1)
                                            + (np.abs(a1 * b2) + np.abs(a2 * b1)) * size)) / np.abs(det)
        following = next_vertex(self.counts[rows], self.width)[r, k]
        start, end = self.vertices[rows[r], k], self.vertices[rows[r], following]
        length = np.abs(end - start).sum(axis=1)
        fallback = ~(np.isfinite(error) & (error < length))
        point = np.where(fallback[:, None], 0.5 * (start + end), np.stack([x, y], axis=1))
        errors = self.vertex_errors[rows[r]]
        error = np.where(fallback, np.maximum(errors[np.arange(len(r)), k], errors[np.arange(len(r)), following])
                         + length, error)
        cut, cut_error = np.zeros((len(rows), self.width, 2)), np.zeros((len(rows), self.width))
        cut[r, k], cut_error[r, k] = point, error
        return cut, cut_error

    def _part(self, rows, coef, sides, following, valid, cut, cut_error, unit, sign):
        """The vertices (with edge labels, lines and errors) of the ``sign`` side of the cut polygons."""
        labels, kept = self.edge_labels[rows], self.table[rows]
        crossing = valid & (sides * following < 0)
        keep = valid & (sign * sides >= 0)
        starts_cut = (sides == 0) & (sign * following < 0)  # a vertex on the line, its edge now along the line
        cut_keeps = sign * following > 0  # a cut point whose edge continues the old one
        vertex_labels, cut_labels = np.where(starts_cut, unit, labels), np.where(cut_keeps, labels, unit)
        coef = np.broadcast_to(coef[:, None, :], (len(rows), self.width, 3))
        added = np.concatenate([cut, cut_error[..., None], np.where(cut_keeps[..., None], kept[..., 3:], coef)],
                               axis=2)
        kept[..., 3:] = np.where(starts_cut[..., None], coef, kept[..., 3:])
        interleave = lambda a, b: np.stack([a, b], axis=2).reshape(len(rows), 2 * self.width, *a.shape[2:])  # noqa
        return interleave(keep, crossing), interleave(kept, added), interleave(vertex_labels, cut_labels)

    def _write(self, target, mask, table, labels):
        slot = np.cumsum(mask, axis=1) - 1
        r_idx, c_idx = np.nonzero(mask)
        out_rows, out_cols = target[r_idx], slot[r_idx, c_idx]
        self.table[target] = 0.0
        self.edge_labels[target] = BOX_EDGES[0]
        self.table[out_rows, out_cols] = table[r_idx, c_idx]
        self.edge_labels[out_rows, out_cols] = labels[r_idx, c_idx]
        self.counts[target] = mask.sum(axis=1)

    def unit_bits(self, maps: np.ndarray, coef_error: np.ndarray, first_unit: int, judge: ExactJudge) -> np.ndarray:
        """(R, d): whether each unit is active (positive) on each polygon; no unit's line crosses any polygon now."""
        value, centre, error, bound = self._value_and_bound(maps, coef_error)
        on = value > 0
        rows, units = np.nonzero(~(np.abs(value) > bound))
        if rows.size:
            coef = maps[rows, :, units]
            band = _evaluation_band(coef, centre[rows], error[rows], coef_error[rows, units])
            unsure = ~(np.abs(value[rows, units]) > band)
            for r, j in zip(rows[unsure], units[unsure]):
                on[r, j] = judge.region_sign(int(r), first_unit + int(j)) > 0
        return on


class ExactJudge:
    """Settles, in exact arithmetic, the decisions whose float64 margin is below the rounding-error bound.

    ``prefix`` holds the activation bits of the earlier layers for every polygon the current layer started from
    (polygons map to those through ``store.parent``). ``decisions`` counts the decisions settled exactly.
    """

    def __init__(self, lines: ExactLines, store: PolygonStore, box: tuple[float, float, float, float]) -> None:
        self.box_lines = {label: tuple(dyadic(line)[0]) for label, line in zip(BOX_EDGES, box_lines(box))}
        self.lines, self.store = lines, store
        self.prefix = np.zeros((1, 0), bool)
        self.decisions = 0

    def _line(self, label: int, row: int) -> tuple[int, int, int]:
        if label < 0:
            return self.box_lines[label]
        return self.lines.line(label, self.prefix[self.store.parent[row]])

    def vertex(self, row: int, k: int) -> tuple[int, int, int]:
        """Vertex ``k`` of polygon ``row`` exactly, as ``(X, Y, D)`` with the point ``(X / D, Y / D)``."""
        count = int(self.store.counts[row])
        before, after = self.store.edge_labels[row, (k - 1) % count], self.store.edge_labels[row, k]
        a1, b1, c1 = self._line(int(before), row)
        a2, b2, c2 = self._line(int(after), row)
        det = a1 * b2 - a2 * b1
        if det == 0:
            raise RuntimeError(f"internal error: polygon {row} has parallel edges at vertex {k}")
        return b1 * c2 - b2 * c1, c1 * a2 - c2 * a1, det

    def _sign_at(self, line: tuple[int, int, int], point: tuple[int, int, int]) -> int:
        (a, b, c), (x, y, d) = line, point
        value = (a * x + b * y + c * d) * (1 if d > 0 else -1)
        return (value > 0) - (value < 0)

    def _count(self, n: int) -> None:
        self.decisions += n
        if self.decisions > MAX_EXACT_DECISIONS:
            raise TooManyExactDecisions(
                f"more than {MAX_EXACT_DECISIONS:,} decisions fell below float64's resolution: the box is too large "
                "(or the network too finely balanced) for an exact count in reasonable time; use a smaller box"
            )

    def vertex_sides(self, rows: np.ndarray, ks: np.ndarray, unit: int) -> np.ndarray:
        """Exact side (+1, 0, -1) of vertex ``ks[i]`` of polygon ``rows[i]`` relative to ``unit``'s line."""
        self._count(len(rows))
        return np.array([self._sign_at(self._line(unit, int(r)), self.vertex(int(r), int(k)))
                         for r, k in zip(rows, ks)], dtype=np.int64)

    def region_sign(self, row: int, unit: int) -> int:
        """Exact sign of ``unit`` on polygon ``row`` (0: the unit vanishes on the whole polygon)."""
        self._count(1)
        line = self._line(unit, row)
        signs = {self._sign_at(line, self.vertex(row, k)) for k in range(int(self.store.counts[row]))} - {0}
        if len(signs) > 1:
            raise RuntimeError(f"internal error: unit {unit}'s line crosses polygon {row} after its layer was cut")
        return signs.pop() if signs else 0


@dataclass
class BoxPartition:
    """What :func:`partition_box` found: padded polygons, their labels, patterns and output maps (R, 3, d_out)."""

    vertices: np.ndarray
    counts: np.ndarray
    edge_labels: np.ndarray
    patterns: np.ndarray
    maps: np.ndarray
    layer_slices: list[slice]
    exact_decisions: int


def partition_box(network: Network, input_map: np.ndarray, box: tuple[float, float, float, float]) -> BoxPartition:
    """The activation regions of ``network`` on ``box``, in the coordinates of ``input_map`` (n_in, 3)."""
    store = PolygonStore(box)
    judge = ExactJudge(ExactLines(network, input_map), store, box)
    maps = input_map.T[None].copy()  # (R, 3, d): the current layer's values as affine maps of the coordinates
    errors = np.zeros((1, maps.shape[2]))  # bounds on the maps' rounding errors, by region and unit
    bits = np.zeros((1, 0), bool)
    slices, unit, edge_error = [], 0, 0.0
    for op in network.ops:
        if isinstance(op, Affine):
            maps, errors = apply_affine(op, maps), affine_error(op, maps, errors)
            continue
        width, unit_errors = maps.shape[2], SAFETY * errors  # (R, d)
        edge_error = max(edge_error, float(unit_errors.max(initial=0.0)))  # bounds every edge's line so far
        store.start_layer()
        judge.prefix = bits
        maybe = store.maybe_crossed(maps, unit_errors).T.copy()  # (units, layer-start polygons)
        for j in range(width):
            rows = np.flatnonzero(maybe[j][store.parent[: store.n]])
            if rows.size:
                parents = store.parent[rows]
                store.split(rows, maps[parents, :, j], unit + j, (unit_errors[parents, j], edge_error), judge)
        parent = store.parent[: store.n].copy()
        maps, errors, bits = maps[parent], errors[parent], bits[parent]
        unit_errors = SAFETY * errors
        store.start_layer()
        judge.prefix = bits
        on = store.unit_bits(maps, unit_errors, unit, judge)
        bits = np.concatenate([bits, on], axis=1)
        maps = activate(maps, on, op.slope)
        errors = errors * (on if op.slope == 0.0 else np.where(on, 1.0, abs(op.slope)))
        slices.append(slice(unit, unit + width))
        unit += width
    n, width = store.n, int(store.counts[: store.n].max())
    return BoxPartition(store.vertices[:n, :width].copy(), store.counts[:n].copy(),
                       store.edge_labels[:n, :width].copy(), bits, maps, slices, judge.decisions)


def patterns_at(network: Network, input_map: np.ndarray, points: np.ndarray, rel_tol: float) -> np.ndarray:
    """Activation patterns (n, N) at ``points`` (n, k-1) in float64: a unit is active where its value exceeds
    ``rel_tol`` times the magnitude of the terms that make it (so a unit vanishing on a region counts as off)."""
    maps = np.broadcast_to(input_map.T, (len(points), *input_map.T.shape)).copy()
    bits = []
    for op in network.ops:
        if isinstance(op, Affine):
            maps = apply_affine(op, maps)
            continue
        value = np.einsum("rkd,rk->rd", maps[:, :-1], points) + maps[:, -1]
        scale = np.einsum("rkd,rk->rd", np.abs(maps[:, :-1]), np.abs(points)) + np.abs(maps[:, -1])
        on = value > rel_tol * scale
        bits.append(on)
        maps = activate(maps, on, op.slope)
    return np.concatenate(bits, axis=1) if bits else np.zeros((len(points), 0), bool)


def maps_for_patterns(network: Network, input_map: np.ndarray, patterns: np.ndarray) -> np.ndarray:
    """Float64 output maps (R, k, d_out) of the regions with the given activation patterns (R, N)."""
    maps = np.broadcast_to(input_map.T, (len(patterns), *input_map.T.shape)).copy()
    unit = 0
    for op in network.ops:
        if isinstance(op, Activation):
            width = maps.shape[2]
            maps = activate(maps, patterns[:, unit : unit + width], op.slope)
            unit += width
        else:
            maps = apply_affine(op, maps)
    return maps


# ----------------------------------------------------------------------------------------------------------------
# Questions about a finished partition
# ----------------------------------------------------------------------------------------------------------------


def pattern_keys(bits: np.ndarray) -> np.ndarray:
    """One sortable key per row of a boolean matrix (the row packed into bytes, as a void scalar)."""
    packed = np.packbits(bits, axis=1) if bits.shape[1] else np.zeros((len(bits), 1), np.uint8)
    packed = np.ascontiguousarray(packed)
    return packed.view(np.dtype((np.void, packed.shape[1]))).ravel()


def contains(vertices: np.ndarray, counts: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Whether each point lies in (or, to rounding, on the boundary of) the matching convex polygon."""
    width = vertices.shape[1]
    edge = np.take_along_axis(vertices, next_vertex(counts, width)[..., None], axis=1) - vertices
    rel = points[:, None, :] - vertices
    cross = edge[..., 0] * rel[..., 1] - edge[..., 1] * rel[..., 0]
    size = np.abs(edge[..., 0] * rel[..., 1]) + np.abs(edge[..., 1] * rel[..., 0])
    valid = np.arange(width) < counts[:, None]
    return np.all(~valid | (cross >= -1e-9 * size), axis=1)


def inner_edges(vertices, counts, edge_units, patterns, find, locate, probe_step):
    """Every inner edge as (segments (E, 2, 2), owner region, region across it or -1).

    The region across an edge on unit u's line is the one whose pattern differs in bit u (``find`` maps pattern
    keys to regions), confirmed by a probe point ``probe_step`` times the edge's length across it; where that fails
    (units sharing a line in hand-built nets) the probe is located by a forward pass (``locate``).
    """
    width = vertices.shape[1]
    rows, cols = np.nonzero((np.arange(width) < counts[:, None]) & (edge_units >= 0))
    following = np.where(cols + 1 < counts[rows], cols + 1, 0)
    p, q = vertices[rows, cols], vertices[rows, following]
    normal = np.stack([q[:, 1] - p[:, 1], p[:, 0] - q[:, 0]], axis=1)  # outward: counter-clockwise polygons
    probes = 0.5 * (p + q) + probe_step * normal
    flipped = patterns[rows].copy()
    flipped[np.arange(len(rows)), edge_units[rows, cols]] ^= True
    other = find(pattern_keys(flipped))
    ok = other >= 0
    ok[ok] = contains(vertices[other[ok]], counts[other[ok]], probes[ok])
    other[~ok] = locate(probes[~ok])
    return np.stack([p, q], axis=1), rows, other


def join_equal_maps(maps: np.ndarray, rows: np.ndarray, other: np.ndarray, rel_tol: float) -> np.ndarray:
    """Connected components of regions joined across edges (``rows`` to ``other``) where their output maps
    agree to ``rel_tol`` times the largest map entry: the linear pieces."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    keep = (other >= 0) & (other != rows)
    a, b = rows[keep], other[keep]
    scale = rel_tol * max(np.abs(maps).max(), 1e-300)
    same = np.all(np.abs(maps[a] - maps[b]) <= scale, axis=(1, 2))
    graph = coo_matrix((np.ones(int(same.sum())), (a[same], b[same])), shape=(len(maps), len(maps)))
    return connected_components(graph, directed=False)[1]


def zero_segments(vertices: np.ndarray, counts: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Where each polygon's own line ``lines[r] . (x, y, 1)`` is zero, as segments (m, 2, 2)."""
    width = vertices.shape[1]
    s = vertices[..., 0] * lines[:, 0:1] + vertices[..., 1] * lines[:, 1:2] + lines[:, 2:3]
    valid = np.arange(width) < counts[:, None]
    following = next_vertex(counts, width)
    s_next = np.take_along_axis(s, following, axis=1)
    cross = valid & (np.sign(s) != np.sign(s_next)) & (s != 0)
    fraction = s / np.where(cross, s - s_next, 1.0)
    points = vertices + fraction[..., None] * (np.take_along_axis(vertices, following[..., None], axis=1) - vertices)
    rows = np.flatnonzero(cross.sum(axis=1) == 2)
    first = np.argmax(cross[rows], axis=1)
    last = width - 1 - np.argmax(cross[rows, ::-1], axis=1)
    return np.stack([points[rows, first], points[rows, last]], axis=1)
