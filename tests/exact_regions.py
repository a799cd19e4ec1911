"""An independent exact region counter for the tests: rational arithmetic, one polygon and one unit at a time.

Shares no code with dcnn_helpers: every weight becomes a ``fractions.Fraction`` (float64 values are exact
rationals), polygons are clipped by the Sutherland-Hodgman rule, and a piece counts when its exact area is positive.
Slow (pure Python), so only for small networks.
"""

from __future__ import annotations

from fractions import Fraction

from torch import nn


def _layers(model: nn.Sequential):
    for layer in model:
        if isinstance(layer, nn.Linear):
            weight = [[Fraction(float(w)) for w in row] for row in layer.weight.detach().double().tolist()]
            bias = [Fraction(float(b)) for b in layer.bias.detach().double().tolist()]
            yield "linear", (weight, bias)
        elif isinstance(layer, (nn.ReLU, nn.LeakyReLU)):
            yield "activation", Fraction(float(getattr(layer, "negative_slope", 0.0)))


def _area(polygon):
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(polygon, polygon[1:] + polygon[:1])) / 2


def _clip(polygon, line, sign):
    """The part of ``polygon`` where ``sign * line >= 0``."""
    a, b, c = line
    value = [sign * (a * x + b * y + c) for x, y in polygon]
    out = []
    for i, point in enumerate(polygon):
        j = (i + 1) % len(polygon)
        if value[i] >= 0:
            out.append(point)
        if (value[i] > 0 > value[j]) or (value[i] < 0 < value[j]):
            f = value[i] / (value[i] - value[j])
            out.append((point[0] + f * (polygon[j][0] - point[0]), point[1] + f * (polygon[j][1] - point[1])))
    return out


def exact_regions(model: nn.Sequential, box) -> list[tuple[bool, ...]]:
    """Activation patterns of the regions of ``model`` (2 inputs) on ``box``, one per region, exactly."""
    xmin, xmax, ymin, ymax = (Fraction(float(v)) for v in box)
    one, zero = Fraction(1), Fraction(0)
    square = [(xmin, ymin), (xmax, ymin), (xmax, ymax), (xmin, ymax)]
    regions = [(square, [(one, zero, zero), (zero, one, zero)], ())]  # polygon, unit maps (a, b, c), pattern
    for kind, layer in _layers(model):
        if kind == "linear":
            weight, bias = layer
            regions = [(poly, [tuple(sum(w * m[k] for w, m in zip(row, maps)) + (bias[i] if k == 2 else 0)
                                     for k in range(3)) for i, row in enumerate(weight)], pattern)
                       for poly, maps, pattern in regions]
            continue
        for j in range(len(regions[0][1])):
            split = []
            for poly, maps, pattern in regions:
                for sign in (1, -1):
                    part = _clip(poly, maps[j], sign)
                    if len(part) >= 3 and _area(part) > 0:
                        split.append((part, maps, pattern))
            regions = split
        activated = []
        for poly, maps, pattern in regions:
            cx = sum(x for x, _ in poly) / len(poly)
            cy = sum(y for _, y in poly) / len(poly)
            bits = tuple(a * cx + b * cy + c > 0 for a, b, c in maps)
            scaled = [m if on else tuple(layer * v for v in m) for m, on in zip(maps, bits)]
            activated.append((poly, scaled, pattern + bits))
        regions = activated
    return [pattern for _, _, pattern in regions]


def exact_pieces_1d(model: nn.Sequential, a: float, b: float) -> int:
    """The number of linear pieces of a network with one input and one output on [a, b], exactly."""
    intervals = [(Fraction(a), Fraction(b), [(Fraction(1), Fraction(0))])]  # (lo, hi, unit maps (slope, const))
    for kind, layer in _layers(model):
        if kind == "linear":
            weight, bias = layer
            intervals = [(lo, hi, [(sum(w * m[0] for w, m in zip(row, maps)),
                                    sum(w * m[1] for w, m in zip(row, maps)) + bias[i])
                                   for i, row in enumerate(weight)]) for lo, hi, maps in intervals]
            continue
        refined = []
        for lo, hi, maps in intervals:
            roots = sorted({-c / s for s, c in maps if s != 0 and lo < -c / s < hi})
            points = [lo, *roots, hi]
            for p, q in zip(points[:-1], points[1:]):
                mid = (p + q) / 2
                refined.append((p, q, [m if m[0] * mid + m[1] > 0 else (layer * m[0], layer * m[1]) for m in maps]))
        intervals = refined
    slopes = [maps[0][0] for _, _, maps in intervals]
    return 1 + sum(s != t for s, t in zip(slopes[:-1], slopes[1:]))
