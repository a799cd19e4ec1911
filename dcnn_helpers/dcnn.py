"""Deep convolutional networks on vectors: zero-padding, max-pooling, smooth targets and the rates of Lin (2023).

Introduced in notebook 03 (approximation by deep CNNs).

A vector ``x`` in ``[0, 1]^d`` is read as a 1-D signal of length ``d``. Each layer convolves it with a filter of
``filter_size + 1`` taps (support ``0..s`` with ``s = filter_size``):

* with **zero-padding** (a *full* convolution) the length grows from ``n`` to ``n + s``: the expanding eDCNN;
* without padding (a *valid* convolution) it shrinks to ``n - s``: the plain DCNN, whose depth is capped.

The body of Lin's paper was not available; these choices are this course's [reconstructed]:
``channels`` (the paper's nets are single-channel, ours may have more), one bias per channel and layer,
max-pooling with window = stride = ``pooling`` after every ``pool_every`` layers, and a linear read-out (of the
flattened last layer, or of its mean over positions, which makes the parameter count independent of the width).

The module also holds the smooth targets (random-sign bump series with known smoothness ``r``), data generators,
a fitting routine (Adam with a progress bar) and sweeps over depth or sample size; the rate formulas and the
analysis of measured rates are in :mod:`dcnn_helpers.rates`.
"""

from __future__ import annotations

import math
import multiprocessing
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import config, validation

__all__ = ["READOUTS", "conv_widths", "toeplitz_matrix", "DCNN1d", "EDCNN", "PlainDCNN", "FCNet", "count_params",
           "fc_params", "matched_fc", "BumpSeries", "sample", "sample_many", "fit", "Sweep", "sweep"]

READOUTS = ("flatten", "mean")


def conv_widths(
    input_dim: int,
    depth: int,
    filter_size: int,
    *,
    zero_padding: bool = True,
    pooling: int | None = None,
    pool_every: int = 1,
) -> list[int]:
    """Signal length after each layer, starting with ``input_dim`` (``depth + 1`` entries).

    A layer maps length ``n`` to ``n + filter_size`` (zero-padded) or ``n - filter_size`` (plain); after every
    ``pool_every``-th layer a max-pool with window and stride ``pooling`` maps ``n`` to ``ceil(n / pooling)``.
    Introduced in notebook 03.
    """
    n = validation.integer("input_dim", input_dim, 1)
    depth = validation.integer("depth", depth, 1)
    s = validation.integer("filter_size", filter_size, 1)
    if pooling is not None:
        validation.integer("pooling", pooling, 2)
    pool_every = validation.integer("pool_every", pool_every, 1)
    if not isinstance(zero_padding, bool):
        raise TypeError(f"zero_padding must be True or False, got {zero_padding!r}")
    widths = [n]
    for layer in range(1, depth + 1):
        n = n + s if zero_padding else n - s
        if n < 1:
            raise ValueError(
                f"depth={depth} is too deep for a plain (unpadded) DCNN with input_dim={input_dim} and "
                f"filter_size={s}: the signal would have length {n} after layer {layer}; "
                f"use depth <= {(input_dim - 1) // s} or zero-padding"
            )
        if pooling is not None and layer % pool_every == 0:
            n = math.ceil(n / pooling)
        widths.append(n)
    return widths


def toeplitz_matrix(filt: torch.Tensor, n: int) -> torch.Tensor:
    """The ``(n + s) x n`` matrix of the full convolution with ``filt`` (``s + 1`` taps): ``T[i, k] = filt[i - k]``.

    ``T @ v`` is the zero-padded convolution ``filt * v`` of Zhou (2020). Introduced in notebook 03.
    """
    if filt.dim() != 1 or filt.numel() < 2:
        raise ValueError(f"filt must be a 1-D tensor with at least 2 taps, got shape {tuple(filt.shape)}")
    n = validation.integer("n", n, 1)
    s = filt.numel() - 1
    offset = torch.arange(n + s)[:, None] - torch.arange(n)[None, :]
    inside = (offset >= 0) & (offset <= s)
    return torch.where(inside, filt[offset.clamp(0, s)], torch.zeros((), dtype=filt.dtype))


class DCNN1d(nn.Module):
    """A deep CNN on ``(B, input_dim)`` vectors read as 1-D signals; returns ``(B,)``.

    ``zero_padding=True`` gives the expanding eDCNN, ``False`` the plain shrinking DCNN. Each layer is
    ``ReLU(conv(h) + bias)`` followed, after every ``pool_every`` layers, by max-pooling; a linear read-out maps the
    last layer to a number: the flattened layer (``readout="flatten"``, ``channels * widths[-1] + 1`` parameters) or
    its mean over positions (``readout="mean"``, ``channels + 1`` parameters, so that nets of equal depth and
    channels have equal parameter counts with or without padding and pooling). ``.widths`` lists the signal length
    after each layer, starting with ``input_dim``. Introduced in notebook 03.
    """

    def __init__(
        self,
        input_dim: int,
        depth: int,
        filter_size: int,
        *,
        zero_padding: bool = True,
        pooling: int | None = None,
        pool_every: int = 1,
        channels: int = 1,
        readout: str = "flatten",
    ) -> None:
        super().__init__()
        self.readout_kind = validation.choice("readout", readout, READOUTS)
        self.widths = conv_widths(
            input_dim, depth, filter_size, zero_padding=zero_padding, pooling=pooling, pool_every=pool_every
        )
        self.input_dim, self.depth, self.filter_size = int(input_dim), int(depth), int(filter_size)
        self.channels = validation.integer("channels", channels, 1)
        self.zero_padding, self.pooling, self.pool_every = zero_padding, pooling, int(pool_every)
        self.convs = nn.ModuleList(
            nn.Conv1d(1 if layer == 0 else channels, channels, filter_size + 1, padding=filter_size * zero_padding)
            for layer in range(depth)
        )
        self.readout = nn.Linear(channels * (self.widths[-1] if readout == "flatten" else 1), 1)
        for conv in self.convs:  # He initialisation keeps the signal's scale through many ReLU layers
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last convolutional layer's output, shape ``(B, channels, widths[-1])``."""
        if x.dim() != 2 or x.shape[-1] != self.input_dim:
            raise ValueError(f"x must have shape (batch, input_dim={self.input_dim}), got {tuple(x.shape)}")
        h = x.unsqueeze(1)
        for layer, conv in enumerate(self.convs, start=1):
            h = F.relu(conv(h))
            if self.pooling is not None and layer % self.pool_every == 0:
                h = F.max_pool1d(h, self.pooling, self.pooling, ceil_mode=True)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        h = h.flatten(1) if self.readout_kind == "flatten" else h.mean(-1)
        return self.readout(h).squeeze(-1)

    def filters(self, layer: int) -> torch.Tensor:
        """Filters of ``layer`` (0-based) in convolution order, shape ``(out, in, s + 1)``: torch's ``conv1d``
        correlates, so the convolution filter is its weight reversed."""
        return self.convs[layer].weight.flip(-1)


class EDCNN(DCNN1d):
    """The expanding deep CNN: full zero-padded convolutions, width ``input_dim + l * filter_size`` after layer ``l``
    (before any pooling). Introduced in notebook 03."""

    def __init__(
        self,
        input_dim: int,
        depth: int,
        filter_size: int,
        pooling: int | None = None,
        channels: int = 1,
        *,
        pool_every: int = 1,
        readout: str = "flatten",
    ) -> None:
        super().__init__(
            input_dim, depth, filter_size, zero_padding=True, pooling=pooling, pool_every=pool_every,
            channels=channels, readout=readout,
        )


class PlainDCNN(DCNN1d):
    """The plain deep CNN without padding: width ``input_dim - l * filter_size`` after layer ``l``, so its depth is at
    most ``(input_dim - 1) // filter_size``. Introduced in notebook 03."""

    def __init__(
        self, input_dim: int, depth: int, filter_size: int, channels: int = 1, *, readout: str = "flatten"
    ) -> None:
        super().__init__(input_dim, depth, filter_size, zero_padding=False, channels=channels, readout=readout)


class FCNet(nn.Module):
    """A fully connected ReLU net with ``hidden_layers`` layers of ``width`` units; ``(B, input_dim) -> (B,)``.

    Introduced in notebook 03 as the baseline for the eDCNN.
    """

    def __init__(self, input_dim: int, width: int, hidden_layers: int = 2) -> None:
        super().__init__()
        self.input_dim = validation.integer("input_dim", input_dim, 1)
        width = validation.integer("width", width, 1)
        hidden_layers = validation.integer("hidden_layers", hidden_layers, 1)
        validation.memory(f"FCNet(width={width}, hidden_layers={hidden_layers})",
                          4 * (input_dim + 1 + hidden_layers * (width + 1)) * width)
        sizes = [input_dim] + [width] * hidden_layers
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.readout = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[-1] != self.input_dim:
            raise ValueError(f"x must have shape (batch, input_dim={self.input_dim}), got {tuple(x.shape)}")
        for layer in self.hidden:
            x = F.relu(layer(x))
        return self.readout(x).squeeze(-1)


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters. Introduced in notebook 03."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def fc_params(input_dim: int, width: int, hidden_layers: int) -> int:
    """Parameter count of :class:`FCNet`: ``(d + 1) w + (h - 1)(w + 1) w + w + 1``. Introduced in notebook 03."""
    input_dim, width = validation.integer("input_dim", input_dim, 1), validation.integer("width", width, 1)
    hidden_layers = validation.integer("hidden_layers", hidden_layers, 1)
    return (input_dim + 1) * width + (hidden_layers - 1) * (width + 1) * width + width + 1


def matched_fc(input_dim: int, n_params: int, hidden_layers: int = 2) -> FCNet:
    """The :class:`FCNet` whose parameter count is closest to ``n_params``. Introduced in notebook 03."""
    n_params = validation.integer("n_params", n_params, fc_params(input_dim, 1, hidden_layers))
    width = 1
    while fc_params(input_dim, width + 1, hidden_layers) <= n_params:
        width += 1
    below, above = fc_params(input_dim, width, hidden_layers), fc_params(input_dim, width + 1, hidden_layers)
    return FCNet(input_dim, width + (above - n_params < n_params - below), hidden_layers)


class BumpSeries:
    """A random smooth target on ``[0, 1]^d`` with smoothness ``r`` (Hölder/Besov ``B^r_{inf,inf}``, ``0 < r < 2``):

    ``f(x) = sum_{j=0}^{levels} 2^{-j r} sum_k eps_{jk} psi(2^j x - k)``, with random signs ``eps_{jk}`` on the
    ``2^{j d}`` cubes of level ``j`` and ``psi(t) = prod_i sin^2(pi t_i) / sqrt(3/8)`` (unit L2 norm, C^{1,1}).

    Level ``j`` has ``2^{j d}`` independent coefficients and squared L2 norm exactly ``4^{-j r}``; over the random
    signs, levels are uncorrelated, so resolving ``N`` coefficients leaves an expected squared error ``~ N^{-2r/d}``,
    the worst-case rate of the smoothness class.
    Introduced in notebook 03.
    """

    def __init__(self, input_dim: int, smoothness: float, levels: int, seed: int = 0) -> None:
        self.input_dim = validation.integer("input_dim", input_dim, 1)
        self.levels = validation.integer("levels", levels, 0)
        smoothness = validation.real("smoothness", smoothness, 0.0, 2.0, low_open=True, high_open=True)
        seed = validation.integer("seed", seed, 0)
        if 2 ** (self.levels * self.input_dim) > 2**22:
            raise ValueError(f"levels={levels} with input_dim={input_dim} needs more than 2^22 signs per level")
        self.smoothness = float(smoothness)
        gen = torch.Generator().manual_seed(seed)
        self.signs = [
            torch.randint(0, 2, (2 ** (j * self.input_dim),), generator=gen, dtype=torch.float64) * 2 - 1
            for j in range(self.levels + 1)
        ]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[-1] != self.input_dim:
            raise ValueError(f"x must have shape (batch, input_dim={self.input_dim}), got {tuple(x.shape)}")
        x = x.to(torch.float64)
        out = torch.zeros(x.shape[0], dtype=torch.float64)
        for j, signs in enumerate(self.signs):
            cells = 2**j
            scaled = x * cells
            cube = scaled.floor().clamp(0, cells - 1)
            bump = (torch.sin(math.pi * (scaled - cube)) ** 2 / math.sqrt(3 / 8)).prod(-1)
            place = cells ** torch.arange(self.input_dim - 1, -1, -1, dtype=torch.float64)
            out += 2.0 ** (-j * self.smoothness) * signs[(cube * place).sum(-1).long()] * bump
        return out

    def expected_sq_norm(self) -> float:
        """``E ||f||^2`` over the random signs (uniform measure on ``[0, 1]^d``): ``sum_j 4^{-j r}``."""
        return self.expected_tail(-1)

    def expected_tail(self, kept_levels: int) -> float:
        """Expected squared L2 norm of the levels above ``kept_levels``: ``sum_{j > kept_levels} 4^{-j r}``."""
        return float(sum(4.0 ** (-j * self.smoothness) for j in range(kept_levels + 1, self.levels + 1)))

    def coefficients(self, kept_levels: int) -> int:
        """Number of coefficients in levels ``0..kept_levels``: ``sum_j 2^{j d}``."""
        return sum(2 ** (j * self.input_dim) for j in range(kept_levels + 1))


def sample(
    target: BumpSeries, m: int, noise: float = 0.0, seed: int = 0, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """``m`` points uniform on ``[0, 1]^d`` and labels ``f(x) + noise * N(0, 1)``. Introduced in notebook 03."""
    if not isinstance(target, BumpSeries):
        raise TypeError(f"target must be a BumpSeries, got {type(target).__name__}")
    m = validation.integer("m", m, 1)
    noise = validation.real("noise", noise, 0.0)
    seed = validation.integer("seed", seed, 0)
    validation.memory(f"sample(m={m})", 8 * m * (target.input_dim + 3))
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(m, target.input_dim, generator=gen, dtype=torch.float64)
    y = target(x) + noise * torch.randn(m, generator=gen, dtype=torch.float64)
    return x.to(dtype), y.to(dtype)


def sample_many(
    target: BumpSeries, m: int, seeds: Sequence[int], noise: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """One independent sample per seed, stacked: ``x`` of shape ``(len(seeds), m, d)``, ``y`` of ``(len(seeds), m)``.

    Introduced in notebook 03.
    """
    seeds = validation.integers("seeds", seeds, minimum=0)
    pairs = [sample(target, m, noise, seed) for seed in seeds]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


def fit(
    models: Sequence[nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    lr: float = 3e-3,
    batch_size: int | None = None,
    seed: int = 0,
    desc: str = "fit",
    progress: bool = True,
) -> np.ndarray:
    """Train each of ``models`` by Adam on the squared loss; one progress bar counts the steps of all of them.

    ``x`` is ``(n, d)`` (shared) or ``(k, n, d)`` (one data set per model), ``y`` likewise ``(n,)`` or ``(k, n)``.
    The learning rate decays to 1% on a cosine; ``batch_size=None`` means full batch. Models are trained in place;
    ``progress=False`` hides the bar (for callers that show their own).
    Returns the training losses, shape ``(steps, k)``. Introduced in notebook 03.
    """
    models = list(models)
    if not models or not all(isinstance(m, nn.Module) for m in models):
        raise TypeError("models must be a non-empty sequence of torch.nn.Module")
    steps, k = validation.integer("steps", steps, 1), len(models)
    lr = validation.real("lr", lr, 0.0, low_open=True)
    seed = validation.integer("seed", seed, 0)
    if batch_size is not None:
        batch_size = validation.integer("batch_size", batch_size, 1)
    if x.dim() not in (2, 3) or (x.dim() == 3 and x.shape[0] != k) or y.shape != x.shape[:-1]:
        raise ValueError(
            f"x must be (n, d) or ({k}, n, d) and y (n,) or ({k}, n); got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    gen = torch.Generator().manual_seed(seed)
    history = np.empty((steps, k))
    bar = config.progress(total=steps * k, desc=desc, disable=not progress or config.profile() == "smoke")
    for i, model in enumerate(models):
        xi, yi = (x, y) if x.dim() == 2 else (x[i], y[i])
        optimiser = torch.optim.Adam(model.parameters(), lr=lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps, eta_min=lr / 100)
        losses = torch.empty(steps, device=xi.device)  # kept on the device: no synchronisation per step
        for step in range(steps):
            if batch_size is None or batch_size >= len(xi):
                xb, yb = xi, yi
            else:
                idx = torch.randint(0, len(xi), (batch_size,), generator=gen)
                xb, yb = xi[idx], yi[idx]
            loss = ((model(xb) - yb) ** 2).mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            losses[step] = loss.detach()
            bar.update()
        history[:, i] = losses.cpu().numpy()
        bar.set_postfix(loss=f"{history[-1, i]:.2e}")
    bar.close()
    return history


@dataclass
class Sweep:
    """Relative squared test errors ``||model - f||^2 / ||f||^2`` (on the test points) of a sweep, ``errors[seed, i]``
    for ``values[i]``.

    ``params[i]`` is the parameter count at ``values[i]``; ``collapsed[seed, i]`` marks fits whose output ended up
    constant (all ReLUs of some layer dead): an optimisation failure, not an approximation result.
    ``train_errors[seed, i]`` is the mean squared error on the fit's own (possibly noisy) training labels after
    training, divided by the same ``||f||^2``: next to ``errors`` it tells underfitting from overfitting.
    """

    values: list
    errors: np.ndarray
    params: list[int]
    collapsed: np.ndarray
    train_errors: np.ndarray

    def kept_errors(self) -> np.ndarray:
        """``errors`` with collapsed fits replaced by NaN (which :func:`fit_slopes` skips)."""
        return np.where(self.collapsed, np.nan, self.errors)


def sweep(
    values: Sequence,
    make_model: Callable[[Any], nn.Module],
    target: BumpSeries,
    *,
    samples: int | Callable[[Any], int],
    seeds: int,
    steps: int,
    lr: float = 1e-2,
    noise: float = 0.0,
    test_samples: int = 8192,
    device: torch.device | str = "cpu",
    desc: str = "sweep",
    workers: int = 1,
) -> Sweep:
    """For each value and seed: build ``make_model(value)``, fit it to fresh samples of ``target`` (``samples`` or
    ``samples(value)`` points, labels with ``noise``), and measure its relative squared L2 error on a noise-free test
    set. Seed ``k`` fixes the initialisation (``config.seed_everything(k)``) and the training sample. Models and
    data live on ``device``.

    ``workers > 1`` trains that many fits at once in forked processes of one thread each (Linux, CPU only; elsewhere
    the fits run one after another). Each fit is seeded on its own, so the results do not depend on ``workers``.
    Introduced in notebook 03."""
    seeds = validation.integer("seeds", seeds, 1)
    steps = validation.integer("steps", steps, 1)
    lr, noise = validation.real("lr", lr, 0.0, low_open=True), validation.real("noise", noise, 0.0)
    test_samples = validation.integer("test_samples", test_samples, 1)
    workers = validation.integer("workers", workers, 1)
    values = list(values)
    x_test, y_test = (t.to(device) for t in sample(target, test_samples, seed=10_000))
    norm = float((y_test**2).mean())  # ||f||^2 estimated on the test points

    def one_fit(i: int, k: int) -> tuple[int, int, float, float, bool, int]:
        m = samples(values[i]) if callable(samples) else samples
        x, y = (t.to(device) for t in sample(target, m, noise=noise, seed=1_000 * (k + 1) + i))
        config.seed_everything(k)
        model = make_model(values[i]).to(device)
        fit([model], x, y, steps=steps, lr=lr, seed=k, progress=False)
        with torch.no_grad():
            prediction = model(x_test)
            train_error = float(((model(x) - y) ** 2).mean()) / norm
        collapsed = bool(prediction.std() < 1e-6)  # a constant function: some layer is dead
        return i, k, float(((prediction - y_test) ** 2).mean()) / norm, train_error, collapsed, count_params(model)

    shape = (seeds, len(values))
    errors, train_errors, collapsed = np.empty(shape), np.empty(shape), np.zeros(shape, dtype=bool)
    params = [0] * len(values)
    jobs = [(i, k) for i in reversed(range(len(values))) for k in range(seeds)]  # the last values, usually the
    # costliest fits (deepest nets, most samples), start first, so that parallel workers finish together
    parallel = workers > 1 and torch.device(device).type == "cpu"
    with config.progress(total=len(jobs), desc=desc) as bar:
        for i, k, error, train_error, dead, n_params in _run_jobs(one_fit, jobs, workers if parallel else 1):
            errors[k, i], train_errors[k, i], collapsed[k, i], params[i] = error, train_error, dead, n_params
            bar.update()
    return Sweep(values, errors, params, collapsed, train_errors)


_JOB: Callable[..., Any] | None = None  # the function the forked workers of _run_jobs call (inherited, not pickled)


def _start_worker() -> None:
    """Set up a forked worker: one thread, and no CUDA. A forked child cannot use the CUDA its parent may have
    started (on a GPU machine the notebook's header does), and torch's optimisers ask ``torch.cuda.is_available()``
    before every step, so the worker is told that there is none."""
    torch.set_num_threads(1)
    torch.cuda.is_available = lambda: False


def _call_job(args: tuple) -> Any:
    return _JOB(*args)


def _run_jobs(job: Callable[..., Any], arguments: list[tuple], workers: int) -> Iterator[Any]:
    """``job(*a)`` for each ``a`` in ``arguments``, in any order: in ``workers`` forked processes where the platform
    forks safely (Linux), else one after another. The job itself is inherited by the fork, so it may be a closure."""
    global _JOB
    if workers <= 1 or sys.platform != "linux" or len(arguments) <= 1:
        yield from (job(*a) for a in arguments)
        return
    _JOB = job
    try:
        with multiprocessing.get_context("fork").Pool(min(workers, len(arguments)), _start_worker) as pool:
            yield from pool.imap_unordered(_call_job, arguments)
    finally:
        _JOB = None
