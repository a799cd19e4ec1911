"""Local linear recovery: model ranks, optimistic sample sizes and a recovery experiment (Zhang et al. 2024).

Introduced in notebook 04 (local linear recovery).

A model :math:`f_\\theta` with :math:`M` parameters has at :math:`\\theta` the tangent space
:math:`T_\\theta = \\mathrm{span}\\{\\partial f_\\theta / \\partial \\theta_j\\}` (a space of functions of the input);
its dimension is the *model rank* :math:`R(\\theta)`. Evaluated on samples :math:`x_1..x_n`, the tangent functions
form the :math:`n \\times M` sample Jacobian; for generic samples its rank is :math:`\\min(n, R(\\theta))`. The
*optimistic sample size* of a target :math:`f^*` is the smallest rank over the parameters that realise it.

What is here:

* :func:`jacobian` and :func:`model_rank` -- the sample Jacobian of any ``torch.nn.Module`` in float64 with
  ``torch.func`` (``vmap`` of ``jacrev`` over samples) and its rank from the singular values, with a stated relative
  tolerance; :func:`loop_jacobian` is the slow per-sample autograd reference and :func:`benchmark` compares the two
  (``python -m dcnn_helpers.llr bench``);
* :func:`fully_connected`, :func:`random_target`, :func:`embed` -- networks, narrow targets, and three ways of
  realising a narrow target with a wider network (zero neurons, neuron splitting, random input weights);
* :func:`optimistic_sample_size`, :func:`param_count`, :class:`MatrixFactorisation` and
  :func:`matrix_factorisation_rank` -- the formulas the ranks are compared with;
* :func:`recovery_experiment` -- train many wide networks at once from small initialisation on ``n`` samples of a
  narrow target and report their test errors.
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from . import config, validation

__all__ = ["ACTIVATIONS", "EMBEDDINGS", "DTYPE", "RankResult", "default_rtol", "spectral_rank", "jacobian",
           "loop_jacobian", "model_rank", "benchmark", "fully_connected", "param_count", "random_target", "embed",
           "two_layer_ranks", "optimistic_sample_size", "matrix_factorisation_rank", "MatrixFactorisation",
           "entry_inputs", "RecoveryResult", "two_layer_target", "recovery_experiment", "main"]

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}
EMBEDDINGS = ("zero", "split", "random")
DTYPE = torch.float64


# ----------------------------------------------------------------------------------------------------------------
# Jacobians and ranks
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RankResult:
    """The rank of a matrix read off its singular values.

    ``rank`` counts the singular values above ``threshold = rtol * singular_values[0]``; ``singular_values`` are in
    descending order (float64), ``shape`` is the shape of the matrix (rows = samples x outputs, columns =
    parameters). Introduced in notebook 04.
    """

    rank: int
    singular_values: torch.Tensor
    rtol: float
    threshold: float
    shape: tuple[int, int]

    @property
    def gap(self) -> float:
        """Ratio of the last kept to the first dropped singular value (``inf`` when none is dropped or it is 0)."""
        s = self.singular_values
        if self.rank == 0 or self.rank >= len(s) or s[self.rank] == 0:
            return float("inf")
        return float(s[self.rank - 1] / s[self.rank])

    def __int__(self) -> int:
        return self.rank


def default_rtol(shape: tuple[int, int]) -> float:
    """The default relative tolerance ``max(shape) * eps(float64)`` (as in ``numpy.linalg.matrix_rank``).

    Introduced in notebook 04.
    """
    return max(shape) * float(torch.finfo(DTYPE).eps)


def spectral_rank(matrix: torch.Tensor, rtol: float | None = None) -> RankResult:
    """Rank of ``matrix`` (2-D) from its float64 singular values: those above ``rtol * s_max`` count.

    ``rtol=None`` uses :func:`default_rtol`. An all-zero matrix has rank 0. Introduced in notebook 04.
    """
    if not isinstance(matrix, torch.Tensor):
        raise TypeError(f"matrix must be a torch.Tensor, got {type(matrix).__name__}")
    if matrix.ndim != 2:
        raise ValueError(f"matrix must be 2-D, got shape {tuple(matrix.shape)}")
    shape = (int(matrix.shape[0]), int(matrix.shape[1]))
    if rtol is None:
        rtol = default_rtol(shape)
    rtol = validation.real("rtol", rtol, 0.0, 1.0, low_open=True, high_open=True)
    s = torch.linalg.svdvals(matrix.detach().to(DTYPE))
    threshold = float(rtol) * float(s[0]) if len(s) else 0.0
    rank = int((s > threshold).sum()) if threshold > 0 else 0
    return RankResult(rank, s, float(rtol), threshold, shape)


def _float64_state(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Detached float64 copies of the model's parameters and floating buffers; warns if a copy changed dtype."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    params = dict(model.named_parameters())
    if not params:
        raise ValueError(f"model has no parameters: a {type(model).__name__} without parameters has no Jacobian")
    other = sorted({str(p.dtype) for p in params.values() if p.dtype != DTYPE})
    if other:
        warnings.warn(
            f"model parameters are {', '.join(other)}; the Jacobian is computed with float64 copies "
            "(the model itself is not changed). Call model.double() to silence this warning.",
            UserWarning,
            stacklevel=3,
        )
    params = {name: p.detach().to(DTYPE) for name, p in params.items()}
    buffers = {name: b.to(DTYPE) if b.is_floating_point() else b for name, b in model.named_buffers()}
    return params, buffers


def _in_features(model: nn.Module) -> int | None:
    """The input width the model expects: its ``in_features`` attribute, else that of its first ``nn.Linear``."""
    width = getattr(model, "in_features", None)
    if isinstance(width, int):
        return width
    first = next((mod for mod in model.modules() if isinstance(mod, nn.Linear)), None)
    return None if first is None else first.in_features


def _check_inputs(model: nn.Module, inputs: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``inputs`` as a float64 tensor of shape (n, in_features), or a clear error."""
    if isinstance(inputs, np.ndarray):
        inputs = torch.from_numpy(inputs)
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"inputs must be a torch.Tensor or numpy array, got {type(inputs).__name__}")
    if not inputs.is_floating_point():
        raise TypeError(f"inputs must be floating point (float32 or float64), got {inputs.dtype}")
    width = _in_features(model)
    if inputs.ndim != 2 or inputs.shape[0] < 1 or (width is not None and inputs.shape[1] != width):
        wanted = f"(n, {width})" if width is not None else "(n, in_features)"
        raise ValueError(f"inputs must have shape {wanted} with n >= 1 samples, got {tuple(inputs.shape)}")
    if not torch.isfinite(inputs).all():
        raise ValueError("inputs contain NaN or infinite values")
    return inputs.detach().to(DTYPE)


def _check_eval_mode(model: nn.Module) -> None:
    """Refuse a model whose BatchNorm or Dropout layers are in training mode: per-sample calls would see batch
    statistics of one sample (or random masks), so the Jacobian would not be that of the model as evaluated."""
    stateful = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)
    training = sorted({type(m).__name__ for m in model.modules() if m.training and isinstance(m, stateful)})
    if training:
        raise ValueError(
            f"model has {', '.join(training)} layers in training mode; call model.eval() first (the Jacobian is that "
            "of the model as evaluated, sample by sample)"
        )


def jacobian(model: nn.Module, inputs: torch.Tensor | np.ndarray) -> torch.Tensor:
    """The float64 sample Jacobian: rows = samples (x outputs), columns = all parameters in ``named_parameters`` order.

    Computed with ``torch.func``: ``jacrev`` of the one-sample output with respect to the parameters, ``vmap``-ed
    over the samples, so memory and time scale with ``n x M``. Parameters that are not float64 are copied to
    float64 with a ``UserWarning`` (the model is not changed). The model is evaluated as it is (no batch
    statistics: per-sample calls). Introduced in notebook 04.
    """
    params, buffers = _float64_state(model)
    _check_eval_mode(model)
    x = _check_inputs(model, inputs)
    n_params = sum(p.numel() for p in params.values())
    validation.memory(f"the Jacobian of {n_params:,} parameters at {x.shape[0]:,} samples", 16 * x.shape[0] * n_params)

    def one_sample(p: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
        return functional_call(model, (p, buffers), (xi.unsqueeze(0),)).reshape(-1)

    jac = vmap(jacrev(one_sample), in_dims=(None, 0))(params, x)  # name -> (n, outputs, *param_shape)
    rows = x.shape[0] * next(iter(jac.values())).shape[1]
    return torch.cat([jac[name].reshape(rows, -1) for name in params], dim=1)


def loop_jacobian(model: nn.Module, inputs: torch.Tensor | np.ndarray) -> torch.Tensor:
    """The same Jacobian as :func:`jacobian` for single-output models, by one ``autograd.grad`` call per sample.

    Runs on a float64 copy of the model. The slow reference the benchmark compares against. Introduced in notebook 04.
    """
    _float64_state(model)  # the same checks and warning as jacobian()
    _check_eval_mode(model)
    x = _check_inputs(model, inputs)
    twin = copy.deepcopy(model).to(DTYPE)
    params = list(twin.parameters())
    rows = []
    for xi in x:
        out = twin(xi.unsqueeze(0)).reshape(-1)
        if out.numel() != 1:
            raise ValueError(f"loop_jacobian handles single-output models only; this one has {out.numel()} outputs")
        rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(out[0], params)]))
    return torch.stack(rows)


def model_rank(model: nn.Module, inputs: torch.Tensor | np.ndarray, rtol: float | None = None) -> RankResult:
    """Rank of the sample Jacobian of ``model`` at its current parameters over ``inputs`` (shape (n, in_features)).

    With ``n`` at least the number of parameters and generic inputs this is the model rank :math:`R(\\theta)`;
    with fewer samples it is :math:`\\min(n, R)`. Singular values above ``rtol * s_max`` count; ``rtol=None`` uses
    ``max(n, M) * eps(float64)`` (about 1e-12 for 4,000 x 300), the ``numpy.linalg.matrix_rank`` convention. The
    returned :class:`RankResult` holds the singular values, for plotting the spectrum and its gap.
    Introduced in notebook 04.
    """
    return spectral_rank(jacobian(model, inputs), rtol)


def benchmark(d: int = 5, m: int = 50, n: int = 4000, repeats: int = 3, seed: int = 0) -> dict[str, float]:
    """Time :func:`jacobian` against :func:`loop_jacobian` for a two-layer tanh net (``m * (d + 1)`` parameters).

    Returns the best-of-``repeats`` seconds of the vectorised Jacobian, one timing of the loop, their ratio, the
    largest difference between the two Jacobians, and the sizes. Introduced in notebook 04.
    """
    d, m, n = (validation.integer(name, v, 1) for name, v in (("d", d), ("m", m), ("n", n)))
    repeats = validation.integer("repeats", repeats, 1)
    gen = config.seed_everything(validation.integer("seed", seed, 0))
    model = fully_connected((d, m, 1))
    x = torch.randn(n, d, dtype=DTYPE, generator=gen)
    fast = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        jac = jacobian(model, x)
        fast.append(time.perf_counter() - start)
    start = time.perf_counter()
    ref = loop_jacobian(model, x)
    slow = time.perf_counter() - start
    return {
        "params": float(param_count((d, m, 1))),
        "samples": float(n),
        "vmap_seconds": min(fast),
        "loop_seconds": slow,
        "speedup": slow / min(fast),
        "max_abs_difference": float((jac - ref).abs().max()),
    }


# ----------------------------------------------------------------------------------------------------------------
# Networks, targets and embeddings
# ----------------------------------------------------------------------------------------------------------------


def fully_connected(widths: Sequence[int], activation: str = "tanh", bias: bool = False) -> nn.Sequential:
    """A float64 fully connected net ``Linear -> act -> ... -> Linear`` with the given layer widths.

    ``widths = (d, m, 1)`` is the two-layer net :math:`f(x) = \\sum_i a_i \\sigma(w_i \\cdot x)`. ``bias`` adds
    biases to the hidden layers (never to the output layer). Weights use PyTorch's default initialisation.
    Introduced in notebook 04.
    """
    widths = validation.integers("widths", widths, minimum=1, min_length=2)
    act = ACTIVATIONS[validation.choice("activation", activation, tuple(ACTIVATIONS))]
    layers: list[nn.Module] = []
    for index, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        last = index == len(widths) - 2
        layers.append(nn.Linear(fan_in, fan_out, bias=bias and not last))
        if not last:
            layers.append(act())
    return nn.Sequential(*layers).to(DTYPE)


def param_count(widths: Sequence[int], bias: bool = False) -> int:
    """Number of parameters of :func:`fully_connected` with these widths. Introduced in notebook 04."""
    widths = validation.integers("widths", widths, minimum=1, min_length=2)
    weights = sum(a * b for a, b in zip(widths[:-1], widths[1:]))
    return weights + (sum(widths[1:-1]) if bias else 0)


def _structure(model: nn.Module) -> tuple[list[nn.Linear], str, bool]:
    """The Linear layers, activation name and bias flag of a net built by :func:`fully_connected`."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential built by fully_connected, got {type(model).__name__}")
    linears = [mod for mod in model if isinstance(mod, nn.Linear)]
    acts = [name for mod in model for name, cls in ACTIVATIONS.items() if type(mod) is cls]
    if not linears or len(acts) != len(linears) - 1 or len(set(acts)) > 1:
        raise TypeError("model must alternate Linear layers and one kind of activation, as fully_connected builds")
    return linears, (acts[0] if acts else "tanh"), linears[0].bias is not None


def random_target(widths: Sequence[int], activation: str = "tanh", bias: bool = False, seed: int = 0) -> nn.Sequential:
    """A narrow target net with i.i.d. Gaussian weights of variance 1/fan_in (biases: variance 1/fan_in too).

    Generic parameters: with probability one no weight is zero and no two neurons coincide.
    Introduced in notebook 04.
    """
    model = fully_connected(widths, activation, bias)
    gen = torch.Generator().manual_seed(validation.integer("seed", seed, 0))
    with torch.no_grad():
        for layer in (mod for mod in model if isinstance(mod, nn.Linear)):
            std = layer.in_features ** -0.5
            layer.weight.copy_(torch.randn(layer.weight.shape, dtype=DTYPE, generator=gen) * std)
            if layer.bias is not None:
                layer.bias.copy_(torch.randn(layer.bias.shape, dtype=DTYPE, generator=gen) * std)
    return model


def embed(target: nn.Sequential, widths: Sequence[int], how: str = "zero", seed: int = 0) -> nn.Sequential:
    """A wider net with layer ``widths`` that computes exactly the same function as the narrow ``target``.

    ``how`` picks the point of the target set :math:`\\Theta^*`:

    * ``"zero"``: the target's neurons, then extra neurons with zero input and zero output weights (and biases);
    * ``"split"``: every wide neuron copies a target neuron (round robin); copies share the input weights and split
      the output weights in random positive fractions that sum to one;
    * ``"random"``: like ``"zero"``, but extra neurons get random input weights (and biases) from the target's
      neurons of the layer below; their output weights stay zero.

    Introduced in notebook 04.
    """
    linears, activation, bias = _structure(target)
    narrow = (linears[0].in_features,) + tuple(layer.out_features for layer in linears)
    widths = validation.integers("widths", widths, minimum=1, min_length=2)
    if len(widths) != len(narrow) or widths[0] != narrow[0] or widths[-1] != narrow[-1]:
        raise ValueError(f"widths={widths} must have the target's depth, input and output widths {narrow}")
    if any(w < k for w, k in zip(widths, narrow)):
        raise ValueError(f"widths={widths} must be at least the target's widths {narrow} in every layer")
    validation.choice("how", how, EMBEDDINGS)
    gen = torch.Generator().manual_seed(validation.integer("seed", seed, 0))

    # parent[l][i]: the target neuron that wide neuron i of layer l copies (-1: an extra neuron); share[l][i]: the
    # fraction of that neuron's output weights it carries. Layer 0 is the input, the last layer the output.
    parent, share = [], []
    for layer_index, (wide, k) in enumerate(zip(widths, narrow)):
        hidden = 0 < layer_index < len(widths) - 1
        if how == "split" and hidden:
            p = torch.arange(wide) % k
            raw = torch.rand(wide, dtype=DTYPE, generator=gen) + 0.5
            s = raw / torch.zeros(k, dtype=DTYPE).index_add_(0, p, raw)[p]
        else:
            p = torch.cat([torch.arange(k), torch.full((wide - k,), -1)])
            s = (p >= 0).to(DTYPE)
        parent.append(p)
        share.append(s)

    model = fully_connected(widths, activation, bias)
    wide_linears = [mod for mod in model if isinstance(mod, nn.Linear)]
    with torch.no_grad():
        for index, (small, big) in enumerate(zip(linears, wide_linears)):
            rows, cols = parent[index + 1], parent[index]
            std = small.in_features ** -0.5
            r, c = rows.clamp(min=0), cols.clamp(min=0)
            weight = small.weight[r][:, c] * share[index][None, :]
            weight[rows < 0] = 0.0
            weight[:, cols < 0] = 0.0
            extra = (rows < 0)[:, None] & (cols >= 0)[None, :]
            if how == "random" and extra.any():
                weight[extra] = torch.randn(int(extra.sum()), dtype=DTYPE, generator=gen) * std
            big.weight.copy_(weight)
            if big.bias is not None:
                b = small.bias[r].clone()
                b[rows < 0] = 0.0
                if how == "random" and (rows < 0).any():
                    b[rows < 0] = torch.randn(int((rows < 0).sum()), dtype=DTYPE, generator=gen) * std
                big.bias.copy_(b)
    return model


def two_layer_ranks(d: int, m: int, k: int, n: int | None = None, activation: str = "tanh", bias: bool = False,
                    seed: int = 0, rtol: float | None = None) -> dict[str, RankResult]:
    """Model ranks of a width-``m`` two-layer net at a ``k``-neuron target (each embedding) and at a generic point.

    Uses ``n`` standard normal samples (default: ``2 * m * (d + 2)``, enough for every rank here). Returns
    ``{"zero": ..., "split": ..., "random": ..., "generic": ...}``. Introduced in notebook 04.
    """
    d, m = validation.integer("d", d, 1), validation.integer("m", m, 1)
    k = validation.integer("k", k, 1, m)
    n = None if n is None else validation.integer("n", n, 1)
    seed = validation.integer("seed", seed, 0)
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(n or 2 * m * (d + 2), d, dtype=DTYPE, generator=gen)
    target = random_target((d, k, 1), activation, bias, seed)
    results = {how: model_rank(embed(target, (d, m, 1), how, seed), x, rtol) for how in EMBEDDINGS}
    results["generic"] = model_rank(random_target((d, m, 1), activation, bias, seed + 2), x, rtol)
    return results


# ----------------------------------------------------------------------------------------------------------------
# Optimistic sample sizes and matrix factorisation
# ----------------------------------------------------------------------------------------------------------------


def optimistic_sample_size(target_widths: Sequence[int], activation: str = "tanh", bias: bool = False) -> int:
    """The optimistic sample size of a generic target that the narrow net ``target_widths`` represents.

    ``tanh``: the narrow net's parameter count -- Zhang et al.'s upper bound, attained for two-layer tanh nets
    (``k * (d + 1)`` for ``(d, k, 1)``, ``k * (d + 2)`` with biases) and, as notebook 04 checks, by the deep
    ``(5, 3, 2, 1)`` example. ``relu``: one less per hidden neuron, because ``a * relu(w.x + b)`` is unchanged by
    ``(a, w, b) -> (a / c, c w, c b)``, ``c > 0``. This is our derivation of the rank at the zero-neuron embedding, an
    upper bound: ReLU nets are not analytic, so the paper's theorem does not cover them, and degenerate targets (a
    neuron that is never active, for instance) have lower ranks. Introduced in notebook 04.
    """
    widths = validation.integers("target_widths", target_widths, minimum=1, min_length=2)
    if activation == "tanh":
        return param_count(widths, bias)
    if activation == "relu":
        return param_count(widths, bias) - sum(widths[1:-1])
    raise ValueError(f"activation={activation!r}: the formula is known here for 'tanh' and 'relu' only")


def matrix_factorisation_rank(d: int, r: int) -> int:
    """Model rank ``2 d r - r^2`` of ``U V^T`` (``U, V`` in R^{d x d}) at a rank-``r`` matrix; ``d^2`` for ``r = d``.

    Introduced in notebook 04.
    """
    d = validation.integer("d", d, 1)
    r = validation.integer("r", r, 0, d)
    return 2 * d * r - r * r


class MatrixFactorisation(nn.Module):
    """The model :math:`f_{U,V}(u, v) = u^T U V^T v` with ``U, V`` in R^{d x d}: input ``x = (u, v)`` in R^{2d}.

    With one-hot ``u = e_i, v = e_j`` it returns the entry ``(U V^T)_{ij}``, so samples are observed entries, as in
    matrix completion. Introduced in notebook 04.
    """

    def __init__(self, d: int, r: int | None = None, seed: int = 0) -> None:
        super().__init__()
        d = validation.integer("d", d, 1)
        r = d if r is None else validation.integer("r", r, 0, d)
        validation.memory(f"MatrixFactorisation(d={d})", 16 * d * d)
        gen = torch.Generator().manual_seed(validation.integer("seed", seed, 0))
        u, v = torch.zeros(d, d, dtype=DTYPE), torch.zeros(d, d, dtype=DTYPE)
        u[:, :r] = torch.randn(d, r, dtype=DTYPE, generator=gen)
        v[:, :r] = torch.randn(d, r, dtype=DTYPE, generator=gen)
        self.d, self.in_features = d, 2 * d
        self.U, self.V = nn.Parameter(u), nn.Parameter(v)

    def matrix(self) -> torch.Tensor:
        """The matrix ``U V^T``."""
        return self.U @ self.V.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x[:, : self.d] @ self.U) * (x[:, self.d :] @ self.V)).sum(dim=1)


def entry_inputs(d: int) -> torch.Tensor:
    """One-hot inputs ``(e_i, e_j)`` for all ``d^2`` entries of a d x d matrix, row by row (float64, (d^2, 2d)).

    Introduced in notebook 04.
    """
    d = validation.integer("d", d, 1)
    validation.memory(f"entry_inputs(d={d})", 16 * d**3)
    eye = torch.eye(d, dtype=DTYPE)
    i, j = torch.meshgrid(torch.arange(d), torch.arange(d), indexing="ij")
    return torch.cat([eye[i.reshape(-1)], eye[j.reshape(-1)]], dim=1)


# ----------------------------------------------------------------------------------------------------------------
# The recovery experiment
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecoveryResult:
    """Test and train errors of wide two-layer tanh nets trained on ``n`` samples of ``k``-neuron targets.

    ``n_values[i, j] = round(n_ratios[j] * k (d + 1))`` for ``k = ks[i]``; ``test_error[i, j, s]`` and
    ``train_error[i, j, s]`` belong to that ``k``, that ``n`` and seed ``s``. Both errors are relative mean squared
    errors (squared error / mean square of the target, on the test or training points). Introduced in notebook 04.
    """

    d: int
    m: int
    ks: tuple[int, ...]
    n_ratios: tuple[float, ...]
    n_values: np.ndarray
    test_error: np.ndarray
    train_error: np.ndarray

    @property
    def n_params(self) -> int:
        """Parameters of the trained width-``m`` net, ``m (d + 1)``."""
        return param_count((self.d, self.m, 1))

    def optimistic(self, k: int) -> int:
        """The optimistic sample size ``k (d + 1)`` of a ``k``-neuron target."""
        return optimistic_sample_size((self.d, k, 1))

    def transition(self, k: int, level: float = 1e-3) -> int | None:
        """Smallest ``n`` from which the median test error over seeds stays below ``level`` (None if it never does)."""
        i = self.ks.index(k)
        below = np.median(self.test_error[i], axis=-1) < level
        return next((int(self.n_values[i, j]) for j in range(len(below)) if below[j:].all()), None)


def two_layer_target(d: int, k: int, seed: int = 0) -> nn.Sequential:
    """The recovery experiment's target: ``sum_i a_i tanh(w_i . x)`` with unit-norm random ``w_i`` and ``a_i = +-1``.

    Normalised so that no target neuron is accidentally tiny. Introduced in notebook 04.
    """
    k = validation.integer("k", k, 1)
    target = random_target((validation.integer("d", d, 1), k, 1), "tanh", seed=seed)
    with torch.no_grad():
        weight = target[0].weight
        weight.div_(weight.norm(dim=1, keepdim=True))
        target[2].weight.copy_(torch.where(target[2].weight < 0, -1.0, 1.0))
    return target


def _non_empty(name: str, values) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ValueError(f"{name} must be a non-empty sequence, got {values!r}")
    return list(values)


def _recovery_data(d: int, ks: tuple[int, ...], seeds: int, n_values: np.ndarray, n_test: int,
                   dev: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """Inputs, targets and sample weights of :func:`recovery_experiment`, one row per student (k, seed, n)."""
    n_max = int(n_values.max())
    # One target, one nested pool of training inputs and one test set per (k, seed); one student per (k, seed, n).
    x_train, y_train, x_test, y_test, weights = [], [], [], [], []
    for i, k in enumerate(ks):
        for seed in range(seeds):
            gen = torch.Generator().manual_seed(1000 * seed + k)
            target = two_layer_target(d, k, seed=1000 * seed + k)
            pool = torch.randn(n_max, d, dtype=DTYPE, generator=gen)
            test = torch.randn(n_test, d, dtype=DTYPE, generator=gen)
            with torch.no_grad():
                for n in n_values[i]:
                    x_train.append(pool), y_train.append(target(pool)[:, 0])
                    x_test.append(test), y_test.append(target(test)[:, 0])
                    weights.append((torch.arange(n_max) < n).to(DTYPE) / n)  # mean over the first n samples
    return tuple(
        torch.stack(t).to(device=dev, dtype=dtype) for t in (x_train, y_train, x_test, y_test, weights)
    )


def recovery_experiment(d: int, m: int, ks: Sequence[int], n_ratios: Sequence[float], seeds: int = 3,
                        steps: int = 6000, lr: float = 0.2, momentum: float = 0.9, init_scale: float = 1e-3,
                        n_test: int = 1000, dropout: float = 0.0, dropout_steps: int | None = None,
                        dtype: torch.dtype = torch.float32,
                        device: str | torch.device | None = None, threads: int | None = 1) -> RecoveryResult:
    """Train width-``m`` two-layer tanh nets (no biases) on ``n`` samples of ``k``-neuron targets and test them.

    For every ``k`` in ``ks``, sample size ``n = round(ratio * k (d + 1))`` for ``ratio`` in ``n_ratios``, and seed:
    the target is :func:`two_layer_target` (one per ``k`` and seed), inputs are standard normal (the training sets of
    one target are nested in ``n``), the student starts from i.i.d. ``N(0, init_scale^2)`` weights (small
    initialisation) and is trained full batch by gradient descent with momentum on the mean squared error.
    ``dropout = p > 0`` drops each hidden neuron for each training sample with probability ``p`` at every step (the
    kept ones are scaled by ``1/(1-p)``, PyTorch's convention) during the first ``dropout_steps`` steps (None: all of
    them); errors are measured without dropout.

    All ``len(ks) * len(n_ratios) * seeds`` students train at once as one batched tensor program (the loss is the
    sum of the students' losses and SGD acts coordinate-wise, so each student follows its own run); a progress bar
    follows the steps. ``device=None`` uses CUDA when present, else the CPU. Training runs in ``dtype`` (float32
    resolves test errors far below the 1e-3 level that marks recovery and is twice as fast as float64 on a CPU).
    ``threads`` limits torch's CPU threads during training and restores them afterwards: the tensors are small, so
    one thread is about as fast as several and does not stall on a busy machine; ``None`` keeps the setting.
    Introduced in notebook 04.
    """
    d, m = validation.integer("d", d, 1), validation.integer("m", m, 1)
    ks = tuple(validation.integer(f"ks[{i}]", k, 1, m) for i, k in enumerate(_non_empty("ks", ks)))
    n_ratios = tuple(validation.real(f"n_ratios[{i}]", r, 0.0, low_open=True)
                     for i, r in enumerate(_non_empty("n_ratios", n_ratios)))
    seeds, steps = validation.integer("seeds", seeds, 1), validation.integer("steps", steps, 1)
    n_test = validation.integer("n_test", n_test, 1)
    lr, init_scale = validation.real("lr", lr, 0.0, low_open=True), validation.real("init_scale", init_scale, 0.0,
                                                                                       low_open=True)
    momentum = validation.real("momentum", momentum, 0.0, 1.0, high_open=True)
    threads = None if threads is None else validation.integer("threads", threads, 1)
    validation.choice("dtype", dtype, (torch.float32, torch.float64))
    dropout = validation.real("dropout", dropout, 0.0, 1.0, high_open=True)
    dropout_steps = validation.integer("dropout_steps", steps if dropout_steps is None else dropout_steps, 0, steps)
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    n_values = np.array([[max(1, round(r * optimistic_sample_size((d, k, 1)))) for r in n_ratios] for k in ks])

    x_train, y_train, x_test, y_test, weights = _recovery_data(d, ks, seeds, n_values, n_test, dev, dtype)
    runs = len(weights)
    gen = torch.Generator().manual_seed(12345)
    w = (torch.randn(runs, m, d, dtype=DTYPE, generator=gen) * init_scale).to(dev, dtype).requires_grad_(True)
    a = (torch.randn(runs, m, dtype=DTYPE, generator=gen) * init_scale).to(dev, dtype).requires_grad_(True)

    def predict(x: torch.Tensor, drop: bool = False) -> torch.Tensor:  # (runs, points, d) -> (runs, points)
        hidden = torch.tanh(torch.bmm(x, w.transpose(1, 2)))
        if drop:  # inverted dropout on the hidden neurons, a fresh mask per sample and step
            keep = torch.rand(hidden.shape, generator=mask_gen, device=dev, dtype=dtype) >= dropout
            hidden = hidden * keep / (1 - dropout)
        return (hidden * a.unsqueeze(1)).sum(-1)

    mask_gen = torch.Generator(device=dev).manual_seed(54321)

    optimiser = torch.optim.SGD([w, a], lr=lr, momentum=momentum)
    saved_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        for step in config.progress(range(steps), desc=f"training {runs} nets", mininterval=1.0):
            optimiser.zero_grad(set_to_none=True)
            loss = (((predict(x_train, drop=dropout > 0 and step < dropout_steps) - y_train) ** 2) * weights).sum()
            loss.backward()
            optimiser.step()
        with torch.no_grad():
            train = (((predict(x_train) - y_train) ** 2) * weights).sum(1) / ((y_train**2) * weights).sum(1)
            test = ((predict(x_test) - y_test) ** 2).mean(1) / (y_test**2).mean(1)
    finally:
        torch.set_num_threads(saved_threads)
    # runs are ordered (k, seed, n); the result is indexed (k, n, seed)
    test, train = (t.double().cpu().numpy().reshape(len(ks), seeds, len(n_ratios)).transpose(0, 2, 1)
                   for t in (test, train))
    return RecoveryResult(d, m, ks, n_ratios, n_values, test, train)


# ----------------------------------------------------------------------------------------------------------------
# Command line: python -m dcnn_helpers.llr bench
# ----------------------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dcnn_helpers.llr bench [--d 5 --m 50 --n 4000 --threads 1]``: time the Jacobian against a loop."""
    parser = argparse.ArgumentParser(prog="python -m dcnn_helpers.llr", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser("bench", help="vectorised Jacobian vs per-sample autograd loop")
    bench.add_argument("--d", type=int, default=5)
    bench.add_argument("--m", type=int, default=50)
    bench.add_argument("--n", type=int, default=4000)
    bench.add_argument("--repeats", type=int, default=3)
    bench.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    try:
        if args.threads is not None:
            torch.set_num_threads(validation.integer("--threads", args.threads, 1))
        result = benchmark(args.d, args.m, args.n, args.repeats)
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    print(
        f"Jacobian of {int(result['params'])} parameters x {int(result['samples'])} samples "
        f"(float64, {torch.get_num_threads()} threads):\n"
        f"  torch.func vmap(jacrev): {result['vmap_seconds'] * 1e3:8.1f} ms\n"
        f"  per-sample autograd loop: {result['loop_seconds'] * 1e3:8.1f} ms\n"
        f"  speed-up: {result['speedup']:.0f}x   max |difference|: {result['max_abs_difference']:.1e}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
