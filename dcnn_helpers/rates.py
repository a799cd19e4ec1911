"""The rates of Lin (2023) and their measurement: formulas, slopes with 95% intervals over seeds, the slope each
reference rate has at the networks actually trained, verdicts, paired error ratios, and the sweep plot.

Introduced in notebook 03 (approximation by deep CNNs), next to :mod:`dcnn_helpers.dcnn`, whose sweeps it analyses.
A rate is a curve, not a slope: to compare a measured log-log slope with a rate, evaluate the rate at the nets that
were trained (their depths and parameter counts) and fit it on the same axis by the same least squares
(:func:`reference_slope`). Intervals are Student-t intervals over seeds (:mod:`dcnn_helpers.stats`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import matplotlib.ticker
import numpy as np

from . import plotting, stats, validation

__all__ = ["approximation_axis", "approximation_rate", "learning_rate", "depth_for_samples", "SlopeFit", "fit_slopes",
           "slope_difference", "reference_slope", "RateReferences", "rate_references", "slope_verdict", "separates",
           "claim_status", "Ratio", "error_ratios", "pooled_error_ratio", "plot_sweep", "log_ticks"]


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
