"""Depth separation and exact training of one-hidden-layer ReLU networks (Arora, Basu, Mianjy, Mukherjee 2018).

Introduced in notebook 02 (depth separation).

Conventions of Arora et al.: a network with ``k`` hidden layers has depth ``k + 1``; its *width* is the largest
hidden layer and its *size* the total number of hidden units. Every network here is a ``torch.nn.Sequential`` of
``Linear`` and ``ReLU`` modules that starts and ends with ``Linear``, in float64 unless said otherwise, so notebook
01's exact piece counter applies to all of them.

What is here:

* constructions: the tent map and its ``k``-fold composition (:func:`sawtooth_net`), the zig-zag family ``h_a``
  (:func:`zigzag_net`), composition of networks with the joining ``Linear`` layers fused (:func:`compose`),
  Thm 2.2's one-hidden-layer network of a piecewise-linear function (:func:`shallow_from_pieces`), Thm 2.1's
  maximum of ``n`` numbers (:func:`max_net`) and the zonotope family of Thm 3.9 (:func:`zonotope_net`);
* the counting bounds (Lemmas D.5, D.6) and the gap theorems' size lower bounds (:func:`gap_table`);
* Arora's Algorithm 1, exact empirical risk minimisation for one hidden layer
  (:func:`exact_erm_one_hidden_layer`), and vectorised many-restart training to compare it with
  (:func:`train_restarts`, :func:`deep_vs_shallow`).
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

import numpy as np
import torch
from torch import nn

from dcnn_helpers import config, regions, validation
from dcnn_helpers._erm_programs import (
    best_program,
    hyperplane_geometry,
    sign_split_pairs,
    splits_from_geometry,
    standardise,
)

__all__ = [
    "mlp",
    "compose",
    "hidden_widths",
    "num_parameters",
    "mse",
    "sawtooth_net",
    "zigzag_net",
    "shallow_from_pieces",
    "shallow_equivalent",
    "max_net",
    "support_function_net",
    "zonotope_net",
    "pieces_upper_bound",
    "pieces_upper_bound_size",
    "min_size_for_pieces",
    "gap_table",
    "zonotope_pieces_formula",
    "num_splits_general_position",
    "hyperplane_splits",
    "ExactERMResult",
    "exact_erm_one_hidden_layer",
    "RestartsResult",
    "train_restarts",
    "FitRun",
    "deep_vs_shallow",
]

# --------------------------------------------------------------------------------------------------------------
# Building and inspecting networks


def _tensor(values: Sequence | np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.tensor(np.asarray(values, dtype=np.float64), dtype=dtype)


def _linear(weight: Sequence | torch.Tensor, bias: Sequence | torch.Tensor, dtype: torch.dtype) -> nn.Linear:
    weight = torch.as_tensor(weight, dtype=dtype)
    bias = torch.as_tensor(bias, dtype=dtype)
    with warnings.catch_warnings():  # a layer of 0 units (a constant function) is fine; torch warns on its init
        warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
        layer = nn.Linear(weight.shape[1], weight.shape[0], dtype=dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    return layer


def _from_affine(maps: list[tuple[torch.Tensor, torch.Tensor]]) -> nn.Sequential:
    """A Sequential ``Linear, ReLU, Linear, ..., Linear`` from a list of (weight, bias) pairs."""
    layers: list[nn.Module] = []
    for i, (weight, bias) in enumerate(maps):
        if i:
            layers.append(nn.ReLU())
        layers.append(_linear(weight, bias, weight.dtype))
    return nn.Sequential(*layers)


def _affine_maps(net: nn.Module, name: str = "net") -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The (weight, bias) pairs of a Sequential that alternates Linear and ReLU, starting and ending with Linear."""
    if not isinstance(net, nn.Sequential):
        raise TypeError(f"{name} must be a torch.nn.Sequential of Linear and ReLU modules, got {type(net).__name__}")
    modules = list(net)
    pattern_ok = len(modules) % 2 == 1 and all(
        isinstance(m, nn.Linear) if i % 2 == 0 else isinstance(m, nn.ReLU) for i, m in enumerate(modules)
    )
    if not pattern_ok:
        kinds = [type(m).__name__ for m in modules]
        raise ValueError(f"{name} must alternate Linear and ReLU, starting and ending with Linear; got {kinds}")
    maps = []
    for layer in modules[::2]:
        bias = layer.bias if layer.bias is not None else torch.zeros(layer.out_features, dtype=layer.weight.dtype)
        maps.append((layer.weight.detach().clone(), bias.detach().clone()))
    return maps


def mlp(widths: Sequence[int], dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """A fully connected ReLU network with layer widths ``[n_in, h_1, ..., h_k, n_out]`` and PyTorch's default init.

    Introduced in notebook 02.
    """
    widths = validation.integers("widths", widths, minimum=1, min_length=2)
    size = torch.finfo(dtype).bits // 8 if dtype.is_floating_point else 8
    validation.memory(f"mlp(widths={list(widths)})", size * sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:])))
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(fan_in, fan_out, dtype=dtype))
    return nn.Sequential(*layers)


def compose(*nets: nn.Sequential) -> nn.Sequential:
    """The network of ``nets[-1] ∘ ... ∘ nets[0]`` (``nets[0]`` is applied first), fusing the Linear layers that meet.

    Hidden layers add up and no unit is added: composing ``k`` one-hidden-layer nets of width ``w`` gives ``k``
    hidden layers of width ``w``. Introduced in notebook 02.
    """
    if not nets:
        raise ValueError("compose needs at least one network")
    maps = _affine_maps(nets[0], "nets[0]")
    for i, net in enumerate(nets[1:], start=1):
        nxt = _affine_maps(net, f"nets[{i}]")
        (w1, b1), (w2, b2) = maps[-1], nxt[0]
        if w2.shape[1] != w1.shape[0]:
            raise ValueError(f"nets[{i}] takes {w2.shape[1]} inputs but nets[{i - 1}] gives {w1.shape[0]} outputs")
        maps = maps[:-1] + [(w2 @ w1, w2 @ b1 + b2)] + nxt[1:]
    return _from_affine(maps)


def hidden_widths(net: nn.Sequential) -> list[int]:
    """The hidden layer widths ``[h_1, ..., h_k]`` (its size is their sum, its depth ``k + 1``). Introduced in 02."""
    return [w.shape[0] for w, _ in _affine_maps(net)[:-1]]


def num_parameters(net: nn.Module) -> int:
    """Number of trainable numbers (weights and biases). Introduced in notebook 02."""
    return sum(p.numel() for p in net.parameters())


def mse(model: nn.Module, X: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray) -> float:
    """Mean squared error of ``model`` on inputs ``X`` (shape ``(D, n)``) and targets ``y`` (``D`` values), float64.

    Introduced in notebook 02. A model that is not float64 on the CPU is evaluated as a float64 copy.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    X_t = torch.as_tensor(np.asarray(X, dtype=np.float64))
    y_t = torch.as_tensor(np.asarray(y, dtype=np.float64)).reshape(-1)
    if any(p.dtype != torch.float64 or p.device.type != "cpu" for p in model.parameters()):
        model = copy.deepcopy(model).to("cpu", torch.float64)  # the caller's model stays as it is
    with torch.no_grad():
        pred = model(X_t).reshape(-1)
    return float(torch.mean((pred - y_t) ** 2))


# --------------------------------------------------------------------------------------------------------------
# Constructions


def sawtooth_net(k: int, dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """The ``k``-fold tent map ``t∘...∘t``, ``t(x) = 2 ReLU(x) − 4 ReLU(x − 1/2)``: width 2, ``k`` hidden layers.

    On ``[0, 1]`` it has exactly ``2^k`` linear pieces, with breakpoints at ``j / 2^k``. Introduced in notebook 02.
    """
    k = validation.integer("k", k, 1)
    tent = _from_affine(
        [
            (torch.tensor([[1.0], [1.0]], dtype=dtype), torch.tensor([0.0, -0.5], dtype=dtype)),
            (torch.tensor([[2.0, -4.0]], dtype=dtype), torch.tensor([0.0], dtype=dtype)),
        ]
    )
    return compose(*[tent] * k)


def _as_knots(breakpoints: Sequence[float], values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(breakpoints, dtype=np.float64).reshape(-1)
    y = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"breakpoints and values need the same length, got {x.size} and {y.size}")
    if x.size < 2:
        raise ValueError(f"need at least 2 breakpoints (knots), got {x.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("breakpoints and values must be finite")
    if np.any(np.diff(x) <= 0):
        raise ValueError("breakpoints must be strictly increasing")
    return x, y


def shallow_from_pieces(
    breakpoints: Sequence[float], values: Sequence[float], dtype: torch.dtype = torch.float64
) -> nn.Sequential:
    """Thm 2.2: the one-hidden-layer ReLU network of a continuous piecewise-linear function ``R -> R``.

    The function is the linear interpolant of the knots ``(breakpoints[i], values[i])`` (strictly increasing
    breakpoints), continued beyond the first and last knot with the slopes of the first and last segment. With
    ``p`` pieces (knots where the slope does not change are not kinks), the network has ``p`` units, or ``p − 1``
    when an end piece is flat; Arora et al. show that ``p − 1`` is necessary. An affine function (``p = 1``) takes
    2 units (``x = ReLU(x) − ReLU(−x)``), or none when it is constant. Introduced in notebook 02.
    """
    x, y = _as_knots(breakpoints, values)
    slopes = np.diff(y) / np.diff(x)
    is_kink = slopes[1:] != slopes[:-1]
    kinks = x[1:-1][is_kink]
    kink_values = y[1:-1][is_kink]
    piece_slopes = np.concatenate([slopes[:1], slopes[1:][is_kink]])  # slope of piece j, j = 0..p-1
    jumps = np.diff(piece_slopes)  # slope change at each kink
    if kinks.size == 0:  # affine: c + s*x = c + s*ReLU(x) - s*ReLU(-x)
        s, c = piece_slopes[0], y[0] - piece_slopes[0] * x[0]
        if s == 0:
            w_in, b_in, w_out = np.zeros((0, 1)), np.zeros(0), np.zeros((1, 0))
        else:
            w_in, b_in, w_out = np.array([[1.0], [-1.0]]), np.zeros(2), np.array([[s, -s]])
    elif piece_slopes[0] == 0 or piece_slopes[-1] != 0:
        # f(t_1) + [left piece: -s_0 ReLU(t_1 - x), dropped when flat] + s_1 ReLU(x - t_1) + sum_i jump_i ReLU(x - t_i)
        c = kink_values[0]
        w_in = np.concatenate([[-1.0], np.ones(kinks.size)])[:, None]
        b_in = np.concatenate([[kinks[0]], -kinks])
        w_out = np.concatenate([[-piece_slopes[0]], [piece_slopes[1]], jumps[1:]])[None, :]
        if piece_slopes[0] == 0:  # flat left end: the first unit has output weight 0 and is dropped
            w_in, b_in, w_out = w_in[1:], b_in[1:], w_out[:, 1:]
    else:  # flat right end, sloped left end: mirror image, f(t_last) + sum_i jump_i ReLU(t_i - x)
        c = kink_values[-1]
        w_in, b_in, w_out = -np.ones((kinks.size, 1)), kinks.copy(), jumps[None, :]
    return _from_affine([(_tensor(w_in, dtype), _tensor(b_in, dtype)), (_tensor(w_out, dtype), _tensor([c], dtype))])


def shallow_equivalent(net: nn.Sequential, lo: float, hi: float) -> nn.Sequential:
    """The one-hidden-layer network (Thm 2.2) equal to the 1-input, 1-output ``net`` on all of ``R``.

    Its kinks are read off exactly by notebook 01's :func:`dcnn_helpers.regions.pieces_1d` on ``[lo, hi]``, which
    must contain every kink of ``net`` (outside it, ``net`` is taken to be affine). Introduced in notebook 02.
    """
    lo, hi = validation.real("lo", lo), validation.real("hi", hi)
    if not lo < hi:
        raise ValueError(f"lo={lo!r} must be smaller than hi={hi!r}")
    pieces = regions.pieces_1d(net, lo, hi)
    knots = np.concatenate([[lo], pieces.breakpoints, [hi]])
    with torch.no_grad():
        values = net(torch.as_tensor(knots, dtype=torch.float64)[:, None].to(net[0].weight.dtype))[:, 0]
    return shallow_from_pieces(knots, values.double().numpy())


def zigzag_net(a: Sequence[float], M: float, dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """Arora's ``h_a`` (Def. 8): 0 left of 0, then zig-zag 0 → M → 0 → ... through ``0 < a_1 < ... < a_p < M``.

    On ``[0, M]`` it has ``w = p + 1`` pieces, each mapping its interval onto ``[0, M]``, so composing ``k`` such
    functions gives ``w^k`` pieces on ``[0, M]`` (Thm 3.2). Beyond ``M`` the last piece continues (the end-piece
    convention is a reconstruction; the count on ``[0, M]`` does not depend on it). One hidden layer of ``w``
    units. Introduced in notebook 02.
    """
    a_arr = np.asarray(a, dtype=np.float64).reshape(-1)
    M = validation.real("M", M, 0.0, low_open=True)
    if a_arr.size == 0 or a_arr[0] <= 0 or a_arr[-1] >= M or np.any(np.diff(a_arr) <= 0):
        raise ValueError(f"a={a_arr.tolist()} must be a non-empty strictly increasing sequence inside (0, M={M})")
    knots = np.concatenate([[-float(M), 0.0], a_arr, [float(M)]])
    peaks = np.where(np.arange(a_arr.size + 1) % 2 == 0, float(M), 0.0)  # h(a_1) = M, h(a_2) = 0, ...
    return shallow_from_pieces(knots, np.concatenate([[0.0, 0.0], peaks]), dtype=dtype)


def max_net(n: int, dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """Thm 2.1's building block: ``max(x_1, ..., x_n)`` with ``ceil(log2 n)`` hidden layers.

    Pairs are merged with ``max(a, b) = ReLU(a − b) + ReLU(b) − ReLU(−b)`` (3 units); an unpaired number passes
    through as ``ReLU(x) − ReLU(−x)`` (2 units). All weights are 0 or ±1 and all biases 0, so on integer inputs the
    network computes the maximum exactly. Introduced in notebook 02.
    """
    n = validation.integer("n", n, 1)
    validation.memory(f"max_net(n={n})", 3 * n * n * torch.finfo(dtype).bits // 8)
    maps: list[tuple[torch.Tensor, torch.Tensor]] = []
    readout = torch.eye(n, dtype=dtype)  # current values = readout @ (previous layer's units or the input)
    while readout.shape[0] > 1:
        m = readout.shape[0]
        units, merged = [], []  # units: rows over current values; merged: rows over units
        for i in range(0, m - 1, 2):
            a, b = torch.zeros(m, dtype=dtype), torch.zeros(m, dtype=dtype)
            a[i], b[i + 1] = 1.0, 1.0
            units += [a - b, b, -b]
            merged.append((len(units) - 3, [1.0, 1.0, -1.0]))
        if m % 2:
            e = torch.zeros(m, dtype=dtype)
            e[m - 1] = 1.0
            units += [e, -e]
            merged.append((len(units) - 2, [1.0, -1.0]))
        unit_rows = torch.stack(units) @ readout
        maps.append((unit_rows, torch.zeros(len(units), dtype=dtype)))
        readout = torch.zeros(len(merged), len(units), dtype=dtype)
        for row, (start, coeffs) in enumerate(merged):
            readout[row, start : start + len(coeffs)] = torch.tensor(coeffs, dtype=dtype)
    maps.append((readout, torch.zeros(1, dtype=dtype)))
    return _from_affine(maps)


def support_function_net(generators: Sequence[Sequence[float]], dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """The support function ``γ_Z(r) = Σ_i |<r, b_i>|`` of the zonotope ``Z = Σ_i [−b_i, b_i]``: ``2m`` units.

    ``generators`` has shape ``(m, n)``. Introduced in notebook 02.
    """
    b = torch.as_tensor(np.asarray(generators, dtype=np.float64), dtype=dtype)
    if b.ndim != 2 or b.shape[0] < 1:
        raise ValueError(f"generators must have shape (m, n) with m >= 1, got {tuple(b.shape)}")
    m = b.shape[0]
    hidden = (torch.cat([b, -b]), torch.zeros(2 * m, dtype=dtype))
    return _from_affine([hidden, (torch.ones(1, 2 * m, dtype=dtype), torch.zeros(1, dtype=dtype))])


def zonotope_net(
    generators: Sequence[Sequence[float]], a: Sequence[float], M: float, k: int, dtype: torch.dtype = torch.float64
) -> nn.Sequential:
    """Thm 3.9's family: ``h_a ∘ ... ∘ h_a ∘ γ_Z`` (``k`` zig-zags after the zonotope's support function).

    Depth ``k + 2`` and size ``2m + wk`` with ``w = len(a) + 1``. Introduced in notebook 02.
    """
    k = validation.integer("k", k, 1)
    return compose(support_function_net(generators, dtype), *[zigzag_net(a, M, dtype)] * k)


# --------------------------------------------------------------------------------------------------------------
# Counting bounds


def pieces_upper_bound(widths: Sequence[int]) -> int:
    """Lemma D.5: a ReLU net ``R -> R`` with hidden widths ``w_1..w_k`` has at most ``2^(k−1)(w_1+1) w_2⋯w_k`` pieces.

    Introduced in notebook 02.
    """
    widths = validation.integers("widths", widths, minimum=1)
    return 2 ** (len(widths) - 1) * (widths[0] + 1) * math.prod(widths[1:])


def pieces_upper_bound_size(size: int, hidden_layers: int) -> float:
    """Lemma D.6: a ReLU net ``R -> R`` of size ``s`` and ``k`` hidden layers has at most ``(2s/k)^k`` pieces.

    Introduced in notebook 02.
    """
    size = validation.integer("size", size, 1)
    k = validation.integer("hidden_layers", hidden_layers, 1)
    return (2 * size / k) ** k


def _root_power(base: int, num: int, den: int) -> float:
    """``base ** (num / den)``, exact when ``den`` divides ``num``."""
    frac = Fraction(num, den)
    return float(base**frac.numerator) if frac.denominator == 1 else base ** float(frac)


def min_size_for_pieces(pieces: int, hidden_layers: int) -> float:
    """Lemma D.6 turned round: ``p`` pieces with ``k`` hidden layers need size at least ``½·k·p^(1/k) − 1``.

    Introduced in notebook 02.
    """
    p = validation.integer("pieces", pieces, 1)
    k = validation.integer("hidden_layers", hidden_layers, 1)
    return 0.5 * k * _root_power(p, 1, k) - 1


def gap_table(hidden_layers: int, w: int) -> list[dict[str, float | int]]:
    """Thm 3.1's gap: ``k`` hidden layers of width ``w`` (size ``wk``) realise ``w^k`` pieces; one row per ``k' ≤ k``.

    Each row gives the smallest size a net with ``k'`` hidden layers could have and still realise ``w^k`` pieces,
    ``½·k'·w^(k/k') − 1``. With ``w = k0`` and ``hidden_layers = k0²`` the row ``k' = k0`` is Cor. 3.4's
    ``½·k0^(k0+1) − 1``. Introduced in notebook 02.
    """
    k = validation.integer("hidden_layers", hidden_layers, 1)
    w = validation.integer("w", w, 2)
    return [
        {
            "hidden layers k'": kp,
            "depth k'+1": kp + 1,
            "pieces w^k": w**k,
            "size needed >=": 0.5 * kp * _root_power(w, k, kp) - 1,
            "deep construction size wk": w * k,
        }
        for kp in range(1, k + 1)
    ]


def zonotope_pieces_formula(n: int, m: int, w: int, k: int) -> int:
    """Thm 3.9's piece count for the zonotope family on ``R^n`` (``m`` generators, ``k`` zig-zags of width ``w``).

    ``(m − 1)^(n − 1) · w^k`` (form reconstructed; present it as a lower bound). Introduced in notebook 02.
    """
    n, m, w, k = (validation.integer(name, v, 1) for name, v in (("n", n), ("m", m), ("w", w), ("k", k)))
    return (m - 1) ** (n - 1) * w**k


# --------------------------------------------------------------------------------------------------------------
# Exact empirical risk minimisation (Arora et al., Algorithm 1)


def num_splits_general_position(D: int, n: int) -> int:
    """Number of splits of ``D`` points in general position in ``R^n`` by an affine hyperplane: ``2 Σ_{k≤n} C(D−1,k)``.

    Introduced in notebook 02.
    """
    D = validation.integer("D", D, 1)
    n = validation.integer("n", n, 1)
    return 2 * sum(math.comb(D - 1, k) for k in range(n + 1))


def _as_data(X: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray | None = None):
    X_np = np.asarray(X.detach().cpu() if isinstance(X, torch.Tensor) else X, dtype=np.float64)
    if X_np.ndim == 1:
        X_np = X_np[:, None]
    if X_np.ndim != 2 or X_np.shape[0] == 0:
        raise ValueError(f"X must have shape (D, n) with D >= 1 points, got {X_np.shape}")
    if not np.all(np.isfinite(X_np)):
        raise ValueError("X must be finite")
    if y is None:
        return X_np, None
    y_np = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y, dtype=np.float64)
    if y_np.size != X_np.shape[0] or (y_np.ndim == 2 and y_np.shape[1] != 1) or y_np.ndim > 2:
        raise ValueError(f"y must hold one target per row of X: X has shape {X_np.shape}, y has shape {y_np.shape}")
    if not np.all(np.isfinite(y_np)):
        raise ValueError("y must be finite")
    return X_np, y_np.reshape(-1)


def hyperplane_splits(X: torch.Tensor | np.ndarray) -> np.ndarray:
    """All splits of the rows of ``X`` (shape ``(D, n)``, general position) by an affine hyperplane.

    Returns a boolean array ``(S, D)``: row ``i`` marks the points on the non-negative side of one hyperplane (the
    empty and the full split included). Every split is realised by a hyperplane through ``n`` of the points, moved
    slightly, so it suffices to try those. Introduced in notebook 02.
    """
    X_np, _ = _as_data(X)
    _, subsets, _, values = hyperplane_geometry(X_np)
    return splits_from_geometry(subsets, values)


@dataclass
class ExactERMResult:
    """What :func:`exact_erm_one_hidden_layer` found. Introduced in notebook 02.

    ``loss``: mean squared error of ``model`` on the data; ``objective``: the best convex program's optimum divided
    by ``D`` (equal to ``loss`` to ``ERM_TOL``, checked before returning); ``programs``: convex programs solved;
    ``programs_algorithm1``: ``2^w S^w``, what Algorithm 1 enumerates before removing unit permutations;
    ``splits``: ``S``.
    """

    loss: float
    objective: float
    model: nn.Sequential
    programs: int
    programs_algorithm1: int
    splits: int
    seconds: float


# loss and objective must agree to ERM_TOL times the targets' mean square (they differ only by rounding)
ERM_TOL = 1e-9


def exact_erm_one_hidden_layer(
    X: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    width: int,
    max_programs: int = 1_000_000,
) -> ExactERMResult:
    """Arora et al.'s Algorithm 1: the global minimum of the squared loss over ``Linear(n, w) → ReLU → Linear(w, 1)``.

    For every unit, guess the sign ``s_i`` of its output weight and the split ``P_i`` of the data it is active on
    (a split realisable by a hyperplane). Scaling ``|a_i|`` into the unit, the prediction on point ``j`` is
    ``c + Σ_i s_i <θ_i, (x_j, 1)> [j ∈ P_i]`` with ``<θ_i, (x_j, 1)> ≥ 0`` on ``P_i`` and ``≤ 0`` off it: a least
    squares problem over a product of polyhedral cones, solved exactly as a non-negative least squares problem in
    the cones' extreme rays. Units are interchangeable and a repeated (sign, split) is never better than one, so
    each *set* of ``w`` distinct (sign, split) pairs is solved once: ``C(2S − 1, w)`` programs (the empty split
    counted once). Needs the points in general position and at least ``n + 1`` of them. Raises ``ValueError`` when
    that count exceeds ``max_programs``. Introduced in notebook 02.

    The programs are solved on standardised data (each input coordinate and the targets centred and scaled to unit
    spread): the class of networks is closed under affine changes of the input and output, so the optimum is the
    same, and translated or rescaled data (``X + 1000``, ``1e-4 X``) give the same answer. The result's ``loss``
    (recomputed from ``model`` on the original data) equals its ``objective`` to ``ERM_TOL``; that is checked.
    """
    start = time.perf_counter()
    X_np, y_np = _as_data(X, y)
    width = validation.integer("width", width, 1)
    max_programs = validation.integer("max_programs", max_programs, 1)
    D, n = X_np.shape
    splits_expected = num_splits_general_position(D, n)
    programs_expected = math.comb(2 * splits_expected - 1, width)
    if programs_expected > max_programs:
        raise ValueError(
            f"exact ERM with width={width} on D={D} points in R^{n} needs {programs_expected:,} convex programs "
            f"({splits_expected:,} hyperplane splits); that is more than max_programs={max_programs:,}. "
            "Use fewer points, a smaller width, or raise max_programs."
        )
    Z, x_centre, x_scale = standardise(X_np)
    y_centre, y_scale = float(y_np.mean()), float(y_np.std()) or 1.0
    t = (y_np - y_centre) / y_scale
    pairs, n_splits = sign_split_pairs(Z)
    units = min(width, len(pairs))
    rnorm, combo, coef = best_program(pairs, t, units)
    model = _erm_network(pairs, combo, coef, width, n, (x_centre, x_scale), (y_centre, y_scale))
    objective = float(rnorm**2 / D) * y_scale**2
    loss = mse(model, X_np, y_np)
    if abs(loss - objective) > ERM_TOL * max(float(np.mean(y_np**2)), np.finfo(float).tiny):
        raise RuntimeError(f"exact ERM lost accuracy: the model's loss {loss!r} differs from the optimum {objective!r}")
    return ExactERMResult(loss=loss, objective=objective, model=model, programs=math.comb(len(pairs), units),
                          programs_algorithm1=2**width * n_splits**width, splits=n_splits,
                          seconds=time.perf_counter() - start)


def _erm_network(pairs, combo, coef, width, n, x_transform, y_transform) -> nn.Sequential:
    """The network of the best program, mapped back from standardised to original coordinates:
    ``f(x) = y_scale * g((x - x_centre) / x_scale) + y_centre``."""
    (x_centre, x_scale), (y_centre, y_scale) = x_transform, y_transform
    W, b, out = np.zeros((width, n)), np.zeros(width), np.zeros((1, width))
    offset = 0
    for i, p in enumerate(combo):
        sign, rays, _ = pairs[p]
        theta = rays.T @ coef[offset : offset + len(rays)]
        offset += len(rays)
        W[i] = y_scale * theta[:n] / x_scale
        b[i] = y_scale * (theta[n] - theta[:n] @ (x_centre / x_scale))
        out[0, i] = sign
    c = y_scale * (coef[offset] - coef[offset + 1]) + y_centre
    return _from_affine([(_tensor(W), _tensor(b)), (_tensor(out), _tensor([c]))])


# --------------------------------------------------------------------------------------------------------------
# Gradient-based training, many restarts at once


@dataclass
class RestartsResult:
    """Final mean squared errors (one per restart, in order) and the trained models. Introduced in notebook 02."""

    losses: np.ndarray
    models: list[nn.Sequential]


def train_restarts(
    widths: Sequence[int],
    X: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    restarts: int,
    steps: int,
    lr: float = 1e-2,
    seed: int = 0,
    progress: bool = True,
) -> RestartsResult:
    """Train ``restarts`` independent ReLU nets of layer widths ``widths`` by full-batch Adam on the squared loss.

    Each restart starts from PyTorch's default initialisation (``mlp(widths)`` after ``seed_everything(seed)``,
    built one after the other); all are trained at once with batched matrix products, which is the same as training
    them one by one. ``progress`` shows a progress bar over the steps. Introduced in notebook 02.
    """
    restarts = validation.integer("restarts", restarts, 1)
    steps = validation.integer("steps", steps, 0)
    lr = validation.real("lr", lr, 0.0, low_open=True)
    seed = validation.integer("seed", seed, 0)
    X_np, y_np = _as_data(X, y)
    widths = list(validation.integers("widths", widths, minimum=1, min_length=2))
    validation.memory(f"train_restarts(restarts={restarts}, widths={widths})",
                      8 * 4 * restarts * sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:])))
    if widths[0] != X_np.shape[1] or widths[-1] != 1:
        raise ValueError(f"widths={widths} must start with the input dimension {X_np.shape[1]} and end with 1")
    config.seed_everything(seed)
    models = [mlp(widths) for _ in range(restarts)]
    layers = [[m[i] for m in models] for i in range(0, len(models[0]), 2)]
    weights = [torch.stack([l.weight.detach() for l in ls]).requires_grad_() for ls in layers]  # (R, out, in)
    biases = [torch.stack([l.bias.detach() for l in ls])[:, None, :].requires_grad_() for ls in layers]  # (R, 1, out)
    Xb = torch.as_tensor(X_np).expand(restarts, *X_np.shape)
    yb = torch.as_tensor(y_np)
    optimizer = torch.optim.Adam(weights + biases, lr=lr)
    quiet = {} if progress else {"disable": True}  # else config.progress decides (silent in the smoke profile)
    for _ in config.progress(range(steps), desc=f"training {restarts} nets {widths}", **quiet):
        h = Xb
        for i, (w, b) in enumerate(zip(weights, biases)):
            h = torch.baddbmm(b, h, w.transpose(1, 2))
            if i < len(weights) - 1:
                h = torch.relu(h)
        loss = ((h[..., 0] - yb) ** 2).mean(dim=1).sum()  # sum of independent losses: independent gradients
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        for ls, w, b in zip(layers, weights, biases):
            for r, layer in enumerate(ls):
                layer.weight.copy_(w[r])
                layer.bias.copy_(b[r, 0])
    return RestartsResult(losses=np.array([mse(m, X_np, y_np) for m in models]), models=models)


@dataclass
class FitRun:
    """One trained network of :func:`deep_vs_shallow`. Introduced in notebook 02."""

    family: str
    hidden_layers: int
    width: int
    params: int
    restart: int
    mse: float
    model: nn.Sequential


def deep_vs_shallow(
    k: int, layers: Sequence[int], restarts: int, steps: int, points: int, lr: float = 1e-2, seed: int = 0
) -> list[FitRun]:
    """Fit the ``k``-fold sawtooth on ``points`` grid points of ``[0, 1]`` with equal-parameter deep and shallow nets.

    For each ``L`` in ``layers``: a deep narrow net (``L`` hidden layers of width 2) and a shallow wide one (one
    hidden layer of ``2L`` units), both with ``6L + 1`` parameters, ``restarts`` random initialisations each, trained
    by :func:`train_restarts`. The deep net with ``L = k`` can represent the target exactly (:func:`sawtooth_net`);
    no shallow one of this size can (it has at most ``2L + 1`` pieces). Introduced in notebook 02.
    """
    k = validation.integer("k", k, 1)
    points = validation.integer("points", points, 2)
    restarts, steps = validation.integer("restarts", restarts, 1), validation.integer("steps", steps, 0)
    lr, seed = validation.real("lr", lr, 0.0, low_open=True), validation.integer("seed", seed, 0)
    x = torch.linspace(0, 1, points, dtype=torch.float64)[:, None]
    with torch.no_grad():
        target = sawtooth_net(k)(x)[:, 0]
    layers = validation.integers("layers", layers, minimum=1)
    configs = [(L, "deep", [1] + [2] * L + [1]) for L in layers] + [(L, "shallow", [1, 2 * L, 1]) for L in layers]
    runs: list[FitRun] = []
    for L, family, widths in config.progress(configs, desc="deep vs shallow"):
        result = train_restarts(widths, x, target, restarts, steps, lr=lr, seed=seed + L, progress=False)
        for r, (loss, model) in enumerate(zip(result.losses, result.models)):
            hidden = widths[1:-1]
            runs.append(FitRun(family, len(hidden), max(hidden), num_parameters(model), r, float(loss), model))
    return runs
