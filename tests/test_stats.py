import numpy as np
import pytest
from scipy import stats as scipy_stats

from dcnn_helpers import stats


def test_mean_ci95_matches_scipy_t_interval():
    values = np.random.default_rng(0).normal(3.0, 2.0, 7)
    mean, half = stats.mean_ci95(values)
    low, high = scipy_stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=scipy_stats.sem(values))
    assert mean == pytest.approx(values.mean()) and half == pytest.approx((high - low) / 2)


def test_paired_ci95_is_the_interval_of_the_differences():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=5), rng.normal(size=5)
    assert stats.paired_ci95(a, b) == stats.mean_ci95(a - b)
    with pytest.raises(ValueError, match="one value per seed"):
        stats.paired_ci95(a, b[:4])


@pytest.mark.parametrize("values", [[1.0], [], [1.0, float("nan")]])
def test_too_few_or_non_finite_values_are_refused(values):
    with pytest.raises(ValueError):
        stats.mean_ci95(values)
