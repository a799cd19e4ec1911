"""dcnn_helpers.plotting: the shared figure helpers and their argument checks."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dcnn_helpers import plotting  # noqa: E402


def test_loglog_slope_recovers_a_power_law():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    slope, intercept = plotting.loglog_slope(x, 3 * x**-1.5)
    assert slope == pytest.approx(-1.5) and np.exp(intercept) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="finite"):
        plotting.loglog_slope(x, [1.0, np.nan, 1.0, 1.0])
    with pytest.raises(ValueError, match="positive"):
        plotting.loglog_slope(x, [1.0, -1.0, 1.0, 1.0])


def test_subplots_returns_a_flat_array_and_checks_its_arguments():
    fig, axes = plotting.subplots(np.int64(3), 2, size=2.0)
    assert axes.shape == (6,)
    plt.close(fig)
    with pytest.raises(ValueError, match="ncols=0 must be at least 1"):
        plotting.subplots(0)
    with pytest.raises(ValueError, match="size=nan must be a finite number"):
        plotting.subplots(1, size=float("nan"))


def test_claims_table_is_the_ledger_format():
    table = plotting.claims_table([("x | y", "computed here", "1", "1", "reproduced")]).data.splitlines()
    assert table[0] == "| claim | source | paper states | measured here | status |"
    assert table[2] == "| x \\| y | computed here | 1 | 1 | reproduced |"
    with pytest.raises(ValueError, match="rows\\[0\\] has 2 cells"):
        plotting.claims_table([("a", "b")])
    with pytest.raises(ValueError, match="status='maybe' is not allowed"):
        plotting.claims_table([("a", "b", "c", "d", "maybe")])
