"""A ReLU network as the region counters see it (private to :mod:`dcnn_helpers.regions`).

Introduced in notebook 01 (linear regions). Two views of one ``torch.nn.Sequential``:

* :class:`Network` -- float64 affine maps and activations, with bounds on the rounding error of every unit's
  affine map, which tell the counters when a float64 decision is certain;
* :class:`ExactLines` -- the same network in exact arithmetic: float64 weights are dyadic rationals, so every unit's
  zero line on a given activation region is a triple of Python integers (up to a positive power of two, which
  changes neither signs nor intersections). The counters call it only for decisions float64 cannot certify.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

SUPPORTED_LAYERS = "Linear, ReLU, LeakyReLU, Identity, Flatten (and nested Sequential)"
UNIT_ROUNDOFF = 2.0**-53
SAFETY = 4.0  # the rounding-error bounds below are first-order; they are used four times over


@dataclass(frozen=True)
class Affine:
    weight: np.ndarray  # (out, in), float64
    bias: np.ndarray  # (out,)


@dataclass(frozen=True)
class Activation:
    slope: float  # slope of the inactive side: 0 for ReLU, negative_slope for LeakyReLU


def _gamma(n: int) -> float:
    """The classical bound n u / (1 - n u) on the relative error of an n-term dot product."""
    return n * UNIT_ROUNDOFF / (1 - n * UNIT_ROUNDOFF)


def _flatten_layers(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    layers = []
    for name, layer in model.named_children():
        if isinstance(layer, nn.Sequential):
            layers += _flatten_layers(layer, f"{prefix}{name}.")
        else:
            layers.append((f"{prefix}{name}", layer))
    return layers


def activation_layers(model: nn.Module) -> list[nn.Module]:
    """The model's ReLU/LeakyReLU modules in order (nested Sequentials flattened)."""
    return [layer for _, layer in _flatten_layers(model) if isinstance(layer, (nn.ReLU, nn.LeakyReLU))]


def _linear_arrays(name: str, layer: nn.Linear) -> Affine:
    weight = layer.weight.detach().to("cpu", torch.float64).numpy().copy()
    bias = (
        layer.bias.detach().to("cpu", torch.float64).numpy().copy()
        if layer.bias is not None
        else np.zeros(layer.out_features)
    )
    if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
        raise ValueError(f"model layer {name} (Linear) has a non-finite weight or bias")
    return Affine(weight, bias)


def _layers(model: nn.Module) -> tuple[list[Affine | Activation], int]:
    """The model as unfused float64 layers, checked, and its input size."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be a torch.nn.Sequential of {SUPPORTED_LAYERS}; got {type(model).__name__}")
    layers: list[Affine | Activation] = []
    n_in = width = None
    for name, layer in _flatten_layers(model):
        if isinstance(layer, nn.Linear):
            if width is not None and layer.in_features != width:
                raise ValueError(f"model layer {name} expects {layer.in_features} inputs but receives {width}")
            n_in = layer.in_features if n_in is None else n_in
            width = layer.out_features
            layers.append(_linear_arrays(name, layer))
        elif isinstance(layer, (nn.ReLU, nn.LeakyReLU)):
            layers.append(Activation(float(getattr(layer, "negative_slope", 0.0))))
        elif not isinstance(layer, (nn.Identity, nn.Flatten)):
            kind = type(layer).__name__
            raise TypeError(f"model layer {name} ({kind}) is not supported; allowed: {SUPPORTED_LAYERS}")
    if n_in is None:
        raise ValueError("model has no Linear layer, so its input dimension is unknown")
    return layers, n_in


@dataclass
class Network:
    """The model as float64 operations, plus what exactness needs.

    ``coef_error[l]`` bounds, for the whole network at once, the absolute rounding error of every coefficient of the
    affine maps (in the coordinates of ``input_map``) that feed activation layer ``l`` (filled by
    :meth:`bound_errors`; :func:`affine_error` gives tighter bounds region by region); ``units_before[l]`` counts
    the units of earlier activation layers.
    """

    ops: list[Affine | Activation]
    n_in: int
    widths: list[int]  # units per activation layer
    coef_error: list[float] = field(default_factory=list)
    output_error: float = 0.0

    @classmethod
    def from_model(cls, model: nn.Module) -> Network:
        ops, n_in = _layers(model)
        widths, width = [], n_in
        for op in ops:
            if isinstance(op, Affine):
                width = op.weight.shape[0]
            else:
                widths.append(width)
        return cls(ops, n_in, widths)

    @property
    def units_before(self) -> list[int]:
        return [0, *np.cumsum(self.widths).tolist()]

    def layer_of(self, unit: int) -> int:
        return int(np.searchsorted(self.units_before, unit, side="right") - 1)

    def bound_errors(self, input_magnitude: float, input_error: float = 0.0) -> None:
        """Fill ``coef_error`` for input maps whose coefficients are at most ``input_magnitude`` in size and off
        by at most ``input_error``: each layer multiplies both by its largest absolute row sum and adds one dot
        product's rounding."""
        magnitude, error, self.coef_error = input_magnitude, input_error, []
        for layer in self.ops:
            if isinstance(layer, Affine):
                norm = float(np.abs(layer.weight).sum(axis=1).max(initial=0.0))
                bias = float(np.abs(layer.bias).max(initial=0.0))
                rounding = _gamma(layer.weight.shape[1] + 1) * (norm * magnitude + bias)
                magnitude, error = norm * magnitude + bias, norm * error + rounding
            else:
                self.coef_error.append(SAFETY * error)
                stretch = max(1.0, abs(layer.slope))
                magnitude, error = stretch * magnitude, stretch * error
        self.output_error = SAFETY * error


def plane_map(n_in: int, plane: tuple | None) -> np.ndarray:
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


def apply_affine(op: Affine, maps: np.ndarray) -> np.ndarray:
    """Compose the affine layer ``op`` with maps (R, k, d_in) -- rows are coefficients, the last row constants."""
    r, k, d = maps.shape
    out = (maps.reshape(r * k, d) @ op.weight.T).reshape(r, k, -1)
    out[:, -1] += op.bias
    return out


def affine_error(op: Affine, maps: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """Bounds (R, d_out), one per region and unit, on the rounding error of every coefficient of
    ``apply_affine(op, maps)``, given such bounds ``errors`` (R, d_in) for ``maps`` (R, k, d_in): the earlier errors
    carried through ``|W|`` plus one dot product's rounding."""
    gamma = _gamma(op.weight.shape[1] + 1)
    largest = np.abs(maps).max(axis=1)  # (R, d_in): each unit's largest coefficient
    return (errors + gamma * largest) @ np.abs(op.weight).T + gamma * np.abs(op.bias)


def activate(maps: np.ndarray, on: np.ndarray, slope: float) -> np.ndarray:
    """Apply the activation with inactive-side ``slope`` to maps (R, k, d), in place, given the bits (R, d)."""
    maps *= (on if slope == 0.0 else np.where(on, 1.0, slope))[:, None, :]
    return maps


# ----------------------------------------------------------------------------------------------------------------
# Exact arithmetic: dyadic rationals as (integers, power of two)
# ----------------------------------------------------------------------------------------------------------------


def dyadic(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Finite float64 ``values`` as ``(integers, e)`` with ``values == integers * 2**e`` exactly (object array)."""
    values = np.asarray(values, dtype=np.float64)
    parts = [math.frexp(v) for v in values.ravel()]
    exponent = min((e - 53 for m, e in parts if m != 0.0), default=0)
    ints = [int(m * 2**53) << (e - 53 - exponent) if m != 0.0 else 0 for m, e in parts]
    return np.array(ints, dtype=object).reshape(values.shape), exponent


def _align(a: tuple[np.ndarray, int], b: tuple[np.ndarray, int]) -> tuple[np.ndarray, np.ndarray, int]:
    """Two dyadic arrays on a common power of two."""
    (ia, ea), (ib, eb) = a, b
    e = min(ea, eb)
    return ia * (1 << (ea - e)), ib * (1 << (eb - e)), e


class ExactLines:
    """Exact zero lines of every unit, on the activation region fixed by the bits of the earlier layers.

    ``input_map`` (n_in, k), float64 or already dyadic ``(integers, e)``, gives the network's input as affine
    functions of k - 1 coordinates (the last column is the constant). Lines are integer arrays (units, k); results
    are cached by layer and bit prefix.
    """

    def __init__(self, network: Network, input_map: np.ndarray | tuple[np.ndarray, int]) -> None:
        self.network = network
        self.input = input_map if isinstance(input_map, tuple) else dyadic(input_map)
        self.exact_layers = [(dyadic(op.weight), dyadic(op.bias)) if isinstance(op, Affine) else op.slope
                             for op in network.ops]
        self.cache: dict[tuple[int, bytes], tuple[np.ndarray, int]] = {}

    def layer_maps(self, layer: int, prefix: np.ndarray) -> tuple[np.ndarray, int]:
        """Dyadic pre-activation maps (units, k) of activation layer ``layer``, given the earlier layers' bits."""
        prefix = np.asarray(prefix[: self.network.units_before[layer]], dtype=bool)
        key = (layer, np.packbits(prefix).tobytes())
        if key not in self.cache:
            self.cache[key] = self._compute(layer, prefix)
        return self.cache[key]

    def _compute(self, layer: int, prefix: np.ndarray) -> tuple[np.ndarray, int]:
        ints, e = self._after(layer - 1, prefix) if layer > 0 else self.input
        ints, e, _ = self._affine_run(ints, e, self._position(layer - 1) + 1)
        return ints, e

    def _after(self, layer: int, bits: np.ndarray) -> tuple[np.ndarray, int]:
        """Dyadic maps after activation layer ``layer`` (its pre-activations with the bits applied)."""
        ints, e = self.layer_maps(layer, bits)
        before = self.network.units_before
        slope = self.network.ops[self._position(layer)].slope
        return self._activate(ints, e, np.asarray(bits[before[layer] : before[layer + 1]], dtype=bool), slope)

    def _affine_run(self, ints: np.ndarray, e: int, start: int) -> tuple[np.ndarray, int, int]:
        """Apply the affine layers from ``network.ops[start]`` up to the next activation (or the end)."""
        index = start
        layers = self.exact_layers
        while index < len(layers) and isinstance(layers[index], tuple):
            weight, bias = layers[index]
            ints, bias_ints, e = _align((weight[0].dot(ints), weight[1] + e), bias)
            ints[:, -1] += bias_ints
            index += 1
        return ints, e, index

    def _position(self, activation: int) -> int:
        """Index in ``network.ops`` of activation layer ``activation`` (-1 before the first)."""
        if activation < 0:
            return -1
        return [i for i, op in enumerate(self.network.ops) if isinstance(op, Activation)][activation]

    @staticmethod
    def _activate(ints: np.ndarray, e: int, bits: np.ndarray, slope: float) -> tuple[np.ndarray, int]:
        if slope == 0.0:
            return ints * bits[:, None].astype(object), e
        (slope_int,), slope_e = dyadic(np.array([slope]))
        on = ints * (1 << max(0, -slope_e)) if slope_e < 0 else ints
        off = ints * slope_int * (1 << max(0, slope_e))
        return np.where(bits[:, None], on, off), e + min(slope_e, 0)

    def line(self, unit: int, prefix: np.ndarray) -> tuple[int, ...]:
        """The exact line of ``unit`` (a global unit index) given the bits of the layers before its own."""
        layer = self.network.layer_of(unit)
        ints, _ = self.layer_maps(layer, prefix)
        return tuple(ints[unit - self.network.units_before[layer]])

    def output(self, bits: np.ndarray) -> tuple[np.ndarray, int]:
        """Dyadic output maps (outputs, k) on the region with activation pattern ``bits`` (all layers)."""
        last = len(self.network.widths) - 1
        ints, e = self._after(last, bits) if last >= 0 else self.input
        ints, e, _ = self._affine_run(ints, e, self._position(last) + 1)
        return ints, e
