"""One plotting style for the whole course and the few plot helpers every notebook shares.

Introduced in notebook 00 (setup and tour). Figures are drawn as PNG at a modest dpi so saved notebooks stay small.
"""

from __future__ import annotations

from typing import Sequence

from IPython.display import Markdown

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from . import validation

__all__ = ["set_theme", "subplots", "loglog_slope", "plot_loglog_fit", "claims_table", "CLAIM_COLUMNS", "CLAIM_STATUSES", "FIGURE_DPI"]

FIGURE_DPI = 80


def set_theme() -> None:
    """Apply the course style (seaborn ``whitegrid``, colourblind palette) and a small PNG figure size."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    matplotlib.rcParams.update(
        {
            "figure.dpi": FIGURE_DPI,
            "savefig.dpi": FIGURE_DPI,
            "figure.figsize": (6.0, 3.6),
            "axes.titlesize": "medium",
            "figure.autolayout": True,
        }
    )
    try:  # inside IPython: keep figures PNG (not SVG/retina), which are compact in a saved notebook
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("png")
    except ImportError:  # plain Python: nothing to configure
        pass


def subplots(ncols: int = 1, nrows: int = 1, size: float = 3.6, **kwargs):
    """``plt.subplots`` with panels of ``size`` inches squared-ish; returns ``(fig, axes)`` with axes a flat array."""
    ncols, nrows = validation.integer("ncols", ncols, 1), validation.integer("nrows", nrows, 1)
    size = validation.real("size", size, 0.0, low_open=True)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * 1.3 * ncols, size * nrows), squeeze=False, **kwargs)
    return fig, axes.ravel()


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Least-squares fit of ``log y = slope * log x + intercept``; returns ``(slope, intercept)`` (natural logs)."""
    x_arr, y_arr = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x_arr.shape != y_arr.shape or x_arr.size < 2:
        raise ValueError(f"x and y need the same shape and at least 2 points, got {x_arr.shape} and {y_arr.shape}")
    if not (np.all(np.isfinite(x_arr)) and np.all(np.isfinite(y_arr))):
        raise ValueError("x and y must be finite for a log-log fit")
    if np.any(x_arr <= 0) or np.any(y_arr <= 0):
        raise ValueError("x and y must be positive for a log-log fit")
    slope, intercept = np.polyfit(np.log(x_arr), np.log(y_arr), 1)
    return float(slope), float(intercept)


def plot_loglog_fit(ax, x: Sequence[float], y: Sequence[float], label: str, **kwargs) -> float:
    """Plot ``y`` against ``x`` on log-log axes with its fitted line; the legend shows the slope, which is returned."""
    slope, intercept = loglog_slope(x, y)
    x_arr = np.asarray(x, dtype=float)
    (points,) = ax.loglog(x_arr, y, "o", label=f"{label} (slope {slope:.2f})", **kwargs)
    grid = np.geomspace(x_arr.min(), x_arr.max(), 50)
    ax.loglog(grid, np.exp(intercept) * grid**slope, "--", color=points.get_color(), lw=1)
    return slope


CLAIM_COLUMNS = ("claim", "source", "paper states", "measured here", "status")
CLAIM_STATUSES = {
    "reproduced": "our measurement agrees with what the paper states",
    "measured differently": "we measured it, in another setting or with another result than the paper's",
    "not reproduced": "we tested it and it did not hold here",
    "stated only": "quoted from the paper, not tested here",
}


def claims_table(rows: Sequence[Sequence[str]]) -> Markdown:
    """Every notebook's table "What the paper states, what we measured", as markdown (the claims ledger reads it).

    Each row: claim, source (paper and place, or "computed here"), what the paper states, what we measured, and a
    status from ``CLAIM_STATUSES``. A ``|`` inside a cell is escaped. Introduced in notebook 01.
    """
    lines = ["| " + " | ".join(CLAIM_COLUMNS) + " |", "|" + " --- |" * len(CLAIM_COLUMNS)]
    for i, row in enumerate(rows):
        if len(row) != len(CLAIM_COLUMNS):
            raise ValueError(f"rows[{i}] has {len(row)} cells; a claim has {len(CLAIM_COLUMNS)}: {CLAIM_COLUMNS}")
        validation.choice(f"rows[{i}] status", row[-1], CLAIM_STATUSES)
        lines.append("| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |")
    return Markdown("\n".join(lines))
