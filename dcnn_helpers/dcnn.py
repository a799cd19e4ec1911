"""Deep convolutional networks on vectors: zero-padding, max-pooling, smooth targets and the rates of Lin (2023).

Introduced in notebook 03 (approximation by deep CNNs).

A vector ``x`` in ``[0, 1]^d`` is read as a 1-D signal of length ``d``. Each layer convolves it with a filter of
``filter_size + 1`` taps (support ``0..s`` with ``s = filter_size``):

* with **zero-padding** (a *full* convolution) the length grows from ``n`` to ``n + s``: the expanding eDCNN;
* without padding (a *valid* convolution) it shrinks to ``n - s``: the plain DCNN, whose depth is capped.

The body of Lin's paper was not available; these choices are this course's [reconstructed]:
``channels`` (the paper's nets are single-channel, ours may have more), one bias per channel and layer,
max-pooling with window = stride = ``pooling`` after every ``pool_every`` layers, and a linear read-out.

The module also holds the smooth targets (random-sign bump series with known smoothness ``r``), data generators,
a fitting routine (Adam with a progress bar) and the rate formulas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import matplotlib.ticker
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import config, plotting, validation

__all__ = ["conv_widths", "toeplitz_matrix", "DCNN1d", "EDCNN", "PlainDCNN", "FCNet", "count_params", "fc_params",
           "matched_fc", "BumpSeries", "sample", "sample_many", "fit", "Sweep", "sweep", "approximation_axis",
           "approximation_rate", "learning_rate", "depth_for_samples", "SlopeFit", "fit_slopes", "plot_sweep",
           "log_ticks"]


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
    flattened last layer to a number. ``.widths`` lists the signal length after each layer, starting with
    ``input_dim``. Introduced in notebook 03.
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
    ) -> None:
        super().__init__()
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
        self.readout = nn.Linear(channels * self.widths[-1], 1)
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
        return self.readout(self.features(x).flatten(1)).squeeze(-1)

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
    ) -> None:
        super().__init__(
            input_dim, depth, filter_size, zero_padding=True, pooling=pooling, pool_every=pool_every, channels=channels
        )


class PlainDCNN(DCNN1d):
    """The plain deep CNN without padding: width ``input_dim - l * filter_size`` after layer ``l``, so its depth is at
    most ``(input_dim - 1) // filter_size``. Introduced in notebook 03."""

    def __init__(self, input_dim: int, depth: int, filter_size: int, channels: int = 1) -> None:
        super().__init__(input_dim, depth, filter_size, zero_padding=False, channels=channels)


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
    """

    values: list
    errors: np.ndarray
    params: list[int]
    collapsed: np.ndarray

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
) -> Sweep:
    """For each value and seed: build ``make_model(value)``, fit it to fresh samples of ``target`` (``samples`` or
    ``samples(value)`` points, labels with ``noise``), and measure its relative squared L2 error on a noise-free test
    set. Seed ``k`` fixes the initialisation (``config.seed_everything(k)``) and the training sample. Models and
    data live on ``device``. Introduced in notebook 03."""
    seeds = validation.integer("seeds", seeds, 1)
    steps = validation.integer("steps", steps, 1)
    lr, noise = validation.real("lr", lr, 0.0, low_open=True), validation.real("noise", noise, 0.0)
    test_samples = validation.integer("test_samples", test_samples, 1)
    values = list(values)
    x_test, y_test = (t.to(device) for t in sample(target, test_samples, seed=10_000))
    norm = float((y_test**2).mean())  # ||f||^2 estimated on the test points
    errors, collapsed = np.empty((seeds, len(values))), np.zeros((seeds, len(values)), dtype=bool)
    params = []
    bar = config.progress(total=seeds * len(values), desc=desc)
    for i, value in enumerate(values):
        m = samples(value) if callable(samples) else samples
        for k in range(seeds):
            x, y = (t.to(device) for t in sample(target, m, noise=noise, seed=1_000 * (k + 1) + i))
            config.seed_everything(k)
            model = make_model(value).to(device)
            fit([model], x, y, steps=steps, lr=lr, seed=k, progress=False)
            with torch.no_grad():
                prediction = model(x_test)
            errors[k, i] = float(((prediction - y_test) ** 2).mean()) / norm
            collapsed[k, i] = bool(prediction.std() < 1e-6)  # a constant function: some layer is dead
            bar.update()
        params.append(count_params(model))
    bar.close()
    return Sweep(values, errors, params, collapsed)


def approximation_axis(depth: np.ndarray | Sequence[float] | float) -> np.ndarray:
    """The depth axis of Lin's rate, ``L^2 / log L`` (needs ``L >= 2``). Introduced in notebook 03."""
    depth = np.asarray(depth, dtype=float)
    if not np.all(np.isfinite(depth)) or np.any(depth < 2):
        raise ValueError(f"depth={depth} must be >= 2 (L^2 / log L is undefined or infinite below)")
    return depth**2 / np.log(depth)


def approximation_rate(depth: np.ndarray | Sequence[float] | float, r: float, d: int) -> np.ndarray:
    """Lin (2023): squared approximation error of depth-``L`` DCNNs, ``(L^2 / log L)^{-2r/d}`` (up to constants).

    Introduced in notebook 03."""
    r, d = validation.real("r", r, 0.0, low_open=True), validation.integer("d", d, 1)
    return approximation_axis(depth) ** (-2 * r / d)


def learning_rate(m: np.ndarray | Sequence[float] | float, r: float, d: int) -> np.ndarray:
    """The (almost) optimal learning rate of ERM with ``m`` samples, ``m^{-2r/(2r+d)}``. Introduced in notebook 03."""
    r, d = validation.real("r", r, 0.0, low_open=True), validation.integer("d", d, 1)
    return np.asarray(m, dtype=float) ** (-2 * r / (2 * r + d))


def depth_for_samples(m: int, r: float, d: int, scale: float = 1.0) -> int:
    """The depth the theory suggests for ``m`` samples, ``L = ceil(scale * m^{d / (2(2r + d))})``, at least 2.

    It balances the approximation error ``L^{-4r/d}`` against the estimation error ``~ L^2 / m``.
    Introduced in notebook 03."""
    m = validation.integer("m", m, 1)
    r, d = validation.real("r", r, 0.0, low_open=True), validation.integer("d", d, 1)
    scale = validation.real("scale", scale, 0.0, low_open=True)
    return max(2, math.ceil(scale * m ** (d / (2 * (2 * r + d)))))


@dataclass
class SlopeFit:
    """Log-log slopes fitted per seed, with their mean and standard deviation over seeds."""

    slopes: np.ndarray
    mean: float
    sd: float

    def __str__(self) -> str:
        return f"{self.mean:.2f} ± {self.sd:.2f}"


def fit_slopes(x: Sequence[float], errors: np.ndarray) -> SlopeFit:
    """Fit ``log error = slope * log x + c`` separately for each row (seed) of ``errors`` (shape ``(seeds, len(x))``).

    NaN entries (e.g. collapsed fits) are skipped; a row with fewer than 2 points left is dropped. The uncertainty
    reported is the spread over seeds (sample standard deviation; 0 with one seed). Introduced in notebook 03."""
    x = np.asarray(x, dtype=float)
    errors = np.atleast_2d(np.asarray(errors, dtype=float))
    if errors.shape[-1] != x.size:
        raise ValueError(f"errors must have shape (seeds, {x.size}), got {errors.shape}")
    slopes = np.array([plotting.loglog_slope(x[np.isfinite(r)], r[np.isfinite(r)])[0]
                       for r in errors if np.isfinite(r).sum() >= 2])
    if slopes.size == 0:
        raise ValueError("no seed has 2 or more finite errors to fit a slope to")
    sd = float(slopes.std(ddof=1)) if len(slopes) > 1 else 0.0
    return SlopeFit(slopes, float(slopes.mean()), sd)


def plot_sweep(ax, x: Sequence[float], errors: np.ndarray, label: str, theory_slope: float | None = None) -> SlopeFit:
    """Errors against ``x`` on log axes: geometric mean over seeds with the seed range as error bars, the fitted
    line (mean slope over seeds) and, dotted, the slope ``theory_slope`` through the first point. Returns the fit.
    Introduced in notebook 03."""
    x = np.asarray(x, dtype=float)
    errors = np.atleast_2d(np.asarray(errors, dtype=float))
    result = fit_slopes(x, errors)
    centre = np.exp(np.nanmean(np.log(errors), axis=0))
    spread = [centre - np.nanmin(errors, axis=0), np.nanmax(errors, axis=0) - centre]
    bars = ax.errorbar(x, centre, yerr=spread, fmt="o", capsize=3, label=f"{label}: slope {result}")
    color = bars[0].get_color()
    grid = np.geomspace(x.min(), x.max(), 50)
    finite = np.isfinite(centre)
    intercept = np.mean(np.log(centre[finite]) - result.mean * np.log(x[finite]))
    ax.plot(grid, np.exp(intercept) * grid**result.mean, "-", color=color, lw=1)
    if theory_slope is not None:
        first = np.flatnonzero(finite)[0]
        ax.plot(grid, centre[first] * (grid / x[first]) ** theory_slope, ":", color=color, lw=1.5,
                label=f"theory slope {theory_slope:.2f}")
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
