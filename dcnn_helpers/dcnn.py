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
a fitting routine (Adam with a progress bar), the rate formulas, and the analysis of measured rates: slopes with
95% intervals over seeds, the slope each reference rate has at the nets actually trained, and paired error ratios.
"""

from __future__ import annotations

import math
import multiprocessing
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import matplotlib.ticker
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import config, plotting, stats, validation

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
    n = config.check_int("input_dim", input_dim, 1)
    depth = config.check_int("depth", depth, 1)
    s = config.check_int("filter_size", filter_size, 1)
    if pooling is not None:
        config.check_int("pooling", pooling, 2)
    pool_every = config.check_int("pool_every", pool_every, 1)
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
    n = config.check_int("n", n, 1)
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
        self.channels = config.check_int("channels", channels, 1)
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
        self.input_dim = config.check_int("input_dim", input_dim, 1)
        width, hidden_layers = config.check_int("width", width, 1), config.check_int("hidden_layers", hidden_layers, 1)
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
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def fc_params(input_dim: int, width: int, hidden_layers: int) -> int:
    """Parameter count of :class:`FCNet`: ``(d + 1) w + (h - 1)(w + 1) w + w + 1``. Introduced in notebook 03."""
    return (input_dim + 1) * width + (hidden_layers - 1) * (width + 1) * width + width + 1


def matched_fc(input_dim: int, n_params: int, hidden_layers: int = 2) -> FCNet:
    """The :class:`FCNet` whose parameter count is closest to ``n_params``. Introduced in notebook 03."""
    n_params = config.check_int("n_params", n_params, fc_params(input_dim, 1, hidden_layers))
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
        self.input_dim = config.check_int("input_dim", input_dim, 1)
        self.levels = config.check_int("levels", levels, 0)
        if not 0 < smoothness < 2:
            raise ValueError(f"smoothness={smoothness} is not allowed; the sin^2 bump supports 0 < r < 2")
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
    m = config.check_int("m", m, 1)
    if noise < 0:
        raise ValueError(f"noise={noise} must be >= 0")
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
    steps, k = config.check_int("steps", steps, 1), len(models)
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
    seeds = config.check_int("seeds", seeds, 1)
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


def approximation_axis(depth: np.ndarray | Sequence[float] | float) -> np.ndarray:
    """The depth axis of Lin's rate, ``L^2 / log L`` (needs ``L >= 2``). Introduced in notebook 03."""
    depth = np.asarray(depth, dtype=float)
    if np.any(depth < 2):
        raise ValueError(f"depth={depth} must be >= 2 (L^2 / log L is undefined or infinite below)")
    return depth**2 / np.log(depth)


def approximation_rate(depth: np.ndarray | Sequence[float] | float, r: float, d: int) -> np.ndarray:
    """Lin (2023): squared approximation error of depth-``L`` DCNNs, ``(L^2 / log L)^{-2r/d}`` (up to constants).

    Introduced in notebook 03."""
    return approximation_axis(depth) ** (-2 * r / d)


def learning_rate(m: np.ndarray | Sequence[float] | float, r: float, d: int) -> np.ndarray:
    """The (almost) optimal learning rate of ERM with ``m`` samples, ``m^{-2r/(2r+d)}``. Introduced in notebook 03."""
    return np.asarray(m, dtype=float) ** (-2 * r / (2 * r + d))


def depth_for_samples(m: int, r: float, d: int, scale: float = 1.0) -> int:
    """The depth the theory suggests for ``m`` samples, ``L = ceil(scale * m^{d / (2(2r + d))})``, at least 2.

    It balances the approximation error ``L^{-4r/d}`` against the estimation error ``~ L^2 / m``.
    Introduced in notebook 03."""
    m = config.check_int("m", m, 1)
    return max(2, math.ceil(scale * m ** (d / (2 * (2 * r + d)))))


@dataclass
class SlopeFit:
    """Log-log slopes fitted per seed, their mean, and the half-width ``ci95`` of the mean's 95% t-interval over
    seeds (``nan`` with one seed: a single seed gives no interval). Printed as ``mean ± ci95``."""

    slopes: np.ndarray
    mean: float
    ci95: float

    @property
    def low(self) -> float:
        return self.mean - self.ci95

    @property
    def high(self) -> float:
        return self.mean + self.ci95

    def __str__(self) -> str:
        if len(self.slopes) < 2:
            return f"{self.mean:.2f} (1 seed, no interval)"
        return f"{self.mean:.2f} ± {self.ci95:.2f}"


def _row_slopes(x: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """One log-log slope per row of ``errors`` against ``x``, skipping NaN entries; NaN for rows with < 2 points."""
    return np.array([plotting.loglog_slope(x[np.isfinite(row)], row[np.isfinite(row)])[0]
                     if np.isfinite(row).sum() >= 2 else np.nan for row in errors])


def _as_rows(x: Sequence[float], errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float)
    errors = np.atleast_2d(np.asarray(errors, dtype=float))
    if errors.ndim != 2 or errors.shape[-1] != x.size:
        raise ValueError(f"errors must have shape (seeds, {x.size}), got {errors.shape}")
    return x, errors


def fit_slopes(x: Sequence[float], errors: np.ndarray) -> SlopeFit:
    """Fit ``log error = slope * log x + c`` separately for each row (seed) of ``errors`` (shape ``(seeds, len(x))``).

    NaN entries (e.g. collapsed fits) are skipped; a row with fewer than 2 points left is dropped. The uncertainty
    is the 95% t-interval of the mean slope over seeds (none with one seed). Introduced in notebook 03."""
    x, errors = _as_rows(x, errors)
    slopes = _row_slopes(x, errors)
    slopes = slopes[np.isfinite(slopes)]
    if slopes.size == 0:
        raise ValueError("no seed has 2 or more finite errors to fit a slope to")
    if slopes.size == 1:
        return SlopeFit(slopes, float(slopes[0]), math.nan)
    return SlopeFit(slopes, *stats.mean_ci95(slopes))


def slope_difference(x: Sequence[float], errors_a: np.ndarray, errors_b: np.ndarray) -> tuple[float, float]:
    """Mean and 95% half-width of the per-seed difference of slopes, ``slope(a) - slope(b)``, for two sweeps run on
    the same seeds (row ``k`` of both used seed ``k``). Seeds where either slope cannot be fitted are left out.
    Introduced in notebook 03."""
    x, errors_a = _as_rows(x, errors_a)
    _, errors_b = _as_rows(x, errors_b)
    if errors_a.shape != errors_b.shape:
        raise ValueError(f"errors_a and errors_b must have the same shape, got {errors_a.shape} and {errors_b.shape}")
    a, b = _row_slopes(x, errors_a), _row_slopes(x, errors_b)
    both = np.isfinite(a) & np.isfinite(b)
    return stats.paired_ci95(a[both], b[both])


def reference_slope(curve: Sequence[float], axis: Sequence[float]) -> float:
    """The slope :func:`fit_slopes` reports for errors proportional to ``curve``, fitted against ``axis``: the
    least-squares slope of ``log curve`` on ``log axis``.

    A rate is a curve, not a slope. Evaluated at the nets actually trained (their depths and parameter counts), it
    has exactly this slope on the axis the measurements are fitted on, and that is the number to compare a measured
    slope with. For ``curve = axis ** -a`` it is ``-a``; for ``curve = N ** -a`` on the axis ``L^2 / log L`` it is
    ``-a`` times the slope of ``log N`` on that axis. Introduced in notebook 03."""
    return plotting.loglog_slope(axis, curve)[0]


@dataclass(frozen=True)
class RateReferences:
    """Slopes of Lin's rate ``(L^2/log L)^{-2r/d}`` and of the classical rate ``N^{-2r/d}``, evaluated at the depths
    ``L`` and parameter counts ``N`` of the nets trained, on the depth axis ``L^2/log L`` and on the parameter axis
    ``N``. Asymptotically (``N`` proportional to ``L``, ``L`` large) they tend to ``-2r/d, -r/d`` and ``-4r/d, -2r/d``.
    Introduced in notebook 03."""

    lin_vs_depth: float
    classical_vs_depth: float
    lin_vs_params: float
    classical_vs_params: float


def rate_references(depths: Sequence[int], params: Sequence[int], r: float, d: int) -> RateReferences:
    """The :class:`RateReferences` of nets with these ``depths`` and parameter counts ``params`` (same order), for
    smoothness ``r`` in dimension ``d``. Introduced in notebook 03."""
    depths, params = np.asarray(depths, dtype=float), np.asarray(params, dtype=float)
    if depths.shape != params.shape or depths.ndim != 1 or depths.size < 2:
        raise ValueError(f"depths and params need one entry per net and at least 2 nets, got {depths.shape} and "
                         f"{params.shape}")
    if np.any(params < 1):
        raise ValueError(f"params={params.tolist()} must be parameter counts (>= 1)")
    validation.real("r", r, 0, low_open=True)
    validation.integer("d", d, 1)
    axis, lin, classical = approximation_axis(depths), approximation_rate(depths, r, d), params ** (-2 * r / d)
    return RateReferences(reference_slope(lin, axis), reference_slope(classical, axis), reference_slope(lin, params),
                          reference_slope(classical, params))


def slope_verdict(fit: SlopeFit, references: dict[str, float]) -> str:
    """Which of the ``references`` (name -> slope) the 95% interval of ``fit`` contains, in words: "consistent with
    A and B: cannot tell them apart", "consistent with A only", "shallower than A and B", "steeper than A and B",
    "between A and B, consistent with neither", or "one seed: no interval, no verdict". Introduced in notebook 03."""
    if not references:
        raise ValueError("references must name at least one reference slope")
    if not math.isfinite(fit.ci95):
        return "one seed: no interval, no verdict"
    names = " and ".join(references)
    inside = [name for name, slope in references.items() if fit.low <= slope <= fit.high]
    if len(inside) == len(references):
        return f"consistent with {names}" + (": cannot tell them apart" if len(references) > 1 else "")
    if inside:
        return f"consistent with {' and '.join(inside)} only"
    if fit.low > max(references.values()):
        return f"shallower than {names}"
    if fit.high < min(references.values()):
        return f"steeper than {names}"
    return f"between {names}, consistent with neither"


def separates(fit: SlopeFit, references: dict[str, float]) -> bool:
    """Whether the 95% interval of ``fit`` is narrower than the spread of the ``references`` (name -> slope), so that
    it cannot contain all of them: only then can the measurement tell them apart. Introduced in notebook 03."""
    slopes = list(references.values())
    return math.isfinite(fit.ci95) and len(slopes) > 1 and 2 * fit.ci95 < max(slopes) - min(slopes)


def claim_status(fit: SlopeFit, claimed: float, alternative: float) -> str:
    """The status of a claimed slope against one alternative (another rate, or 0 for "no decrease"):
    "reproduced" if the 95% interval contains the claim, not the alternative, and is narrower than their gap;
    "measured differently" if it contains the claim but is too wide to tell the two apart; else "not reproduced".
    Introduced in notebook 03."""
    references = {"claimed": claimed, "alternative": alternative}
    if not math.isfinite(fit.ci95) or not fit.low <= claimed <= fit.high:
        return "not reproduced" if math.isfinite(fit.ci95) else "measured differently"
    return "reproduced" if separates(fit, references) else "measured differently"


@dataclass(frozen=True)
class Ratio:
    """A geometric-mean error ratio with its 95% interval ``[low, high]`` from ``pairs`` paired seeds."""

    ratio: float
    low: float
    high: float
    pairs: int

    def __str__(self) -> str:
        if self.pairs < 2:
            return f"{self.ratio:.2f} ({self.pairs} pair, no interval)"
        return f"{self.ratio:.2f} [{self.low:.2f}, {self.high:.2f}]"


def _ratio(log_ratios: np.ndarray) -> Ratio:
    """The geometric-mean ratio and its 95% t-interval from per-seed log ratios (NaN entries left out)."""
    kept = log_ratios[np.isfinite(log_ratios)]
    if kept.size < 2:
        return Ratio(math.exp(kept[0]) if kept.size else math.nan, math.nan, math.nan, int(kept.size))
    mean, half = stats.mean_ci95(kept)
    return Ratio(math.exp(mean), math.exp(mean - half), math.exp(mean + half), int(kept.size))


def _log_ratios(errors_a: np.ndarray, errors_b: np.ndarray) -> np.ndarray:
    """``log(errors_a / errors_b)``, shape ``(seeds, values)``; NaN where either error is NaN."""
    a, b = np.atleast_2d(np.asarray(errors_a, dtype=float)), np.atleast_2d(np.asarray(errors_b, dtype=float))
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"errors_a and errors_b must both have shape (seeds, values), got {a.shape} and {b.shape}")
    if np.any(a <= 0) or np.any(b <= 0):
        raise ValueError("errors must be positive (NaN marks a fit to leave out)")
    return np.log(a) - np.log(b)


def error_ratios(errors_a: np.ndarray, errors_b: np.ndarray) -> list[Ratio]:
    """For each value (column), the geometric mean over seeds (rows) of ``errors_a / errors_b`` with the paired 95%
    t-interval, computed on log errors. Row ``k`` of both must come from seed ``k`` (same sample, and the same
    initial weights where the shapes agree); pairs with a NaN are left out. Introduced in notebook 03."""
    logs = _log_ratios(errors_a, errors_b)
    return [_ratio(logs[:, i]) for i in range(logs.shape[1])]


def pooled_error_ratio(errors_a: np.ndarray, errors_b: np.ndarray) -> Ratio:
    """One ratio for a whole sweep: per seed, the mean over values of ``log(errors_a / errors_b)`` (values where both
    are finite), then its mean over seeds with the 95% t-interval; returned as a ratio. Introduced in notebook 03."""
    logs = _log_ratios(errors_a, errors_b)
    return _ratio(np.array([np.nanmean(row) for row in logs if np.isfinite(row).any()]))


def plot_sweep(
    ax, x: Sequence[float], errors: np.ndarray, label: str, references: dict[str, Sequence[float]] | None = None
) -> SlopeFit:
    """Errors against ``x`` on log axes: geometric mean over seeds with the seed range as error bars, the fitted
    line (mean slope over seeds) and, dotted, each reference curve (name -> its values at ``x``, any scale) drawn
    through the first point, labelled with its :func:`reference_slope`. Returns the fit. Introduced in notebook 03."""
    x, errors = _as_rows(x, errors)
    result = fit_slopes(x, errors)
    centre = np.exp(np.nanmean(np.log(errors), axis=0))
    spread = [centre - np.nanmin(errors, axis=0), np.nanmax(errors, axis=0) - centre]
    bars = ax.errorbar(x, centre, yerr=spread, fmt="o", capsize=3, label=f"{label}: slope {result}")
    color = bars[0].get_color()
    grid = np.geomspace(x.min(), x.max(), 50)
    finite = np.isfinite(centre)
    intercept = np.mean(np.log(centre[finite]) - result.mean * np.log(x[finite]))
    ax.plot(grid, np.exp(intercept) * grid**result.mean, "-", color=color, lw=1)
    first = np.flatnonzero(finite)[0]
    for (name, curve), style in zip((references or {}).items(), (":", "-.", "--")):
        curve = np.asarray(curve, dtype=float)
        ax.plot(x, centre[first] * curve / curve[first], style, color=color, lw=1.5,
                label=f"{name}: slope {reference_slope(curve, x):.2f}")
    log_ticks(ax)
    return result


def log_ticks(ax) -> None:
    """Log scale on both axes with readable ticks at 1, 2 and 5 times powers of ten, printed as plain numbers.

    Introduced in notebook 03."""
    for axis, scale in ((ax.xaxis, ax.set_xscale), (ax.yaxis, ax.set_yscale)):
        scale("log")
        axis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
