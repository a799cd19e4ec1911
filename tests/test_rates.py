"""dcnn_helpers.rates: rate formulas, slopes with 95% intervals, reference slopes at the nets trained, verdicts,
claim status and paired error ratios, on constructed data with known answers."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from dcnn_helpers import dcnn, rates


def test_rate_formulas():
    assert math.isclose(float(rates.approximation_rate(4, 1.0, 2)), (16 / math.log(4)) ** -1)
    assert math.isclose(float(rates.learning_rate(64, 1.0, 2)), 64 ** -0.5)
    assert rates.depth_for_samples(4096, 1.0, 2) == 8  # 4096 ** (2 / 8)
    with pytest.raises(ValueError, match="depth"):
        rates.approximation_axis(1)


def test_fit_slopes_recovers_a_power_law_and_skips_nan():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    errors = np.stack([3 * x**-1.5, 5 * x**-1.5])
    errors[1, 2] = np.nan
    result = rates.fit_slopes(x, errors)
    assert np.allclose(result.slopes, -1.5) and result.ci95 < 1e-9


def test_fit_slopes_interval_is_the_t_interval_of_the_seed_slopes():
    rng = np.random.default_rng(0)
    x = np.array([2.0, 3.0, 5.0, 8.0, 13.0])
    true_slopes = rng.normal(-1.0, 0.3, 4)
    errors = np.stack([np.exp(0.1 * rng.normal()) * x**a for a in true_slopes])
    result = rates.fit_slopes(x, errors)
    assert np.allclose(result.slopes, true_slopes)
    low, high = scipy_stats.t.interval(0.95, 3, loc=true_slopes.mean(), scale=scipy_stats.sem(true_slopes))
    assert result.low == pytest.approx(low) and result.high == pytest.approx(high)
    assert str(result) == f"{true_slopes.mean():.2f} ± {(high - low) / 2:.2f}"


def test_one_seed_gives_no_interval():
    result = rates.fit_slopes([1.0, 2.0, 4.0], [1.0, 0.5, 0.25])
    assert result.mean == pytest.approx(-1.0) and math.isnan(result.ci95)
    assert "no interval" in str(result) and "±" not in str(result)
    assert rates.slope_verdict(result, {"a": -1.0}) == "one seed: no interval, no verdict"


def test_slope_difference_is_paired_over_seeds():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    slopes_a, slopes_b = np.array([-1.0, -1.4, -0.8]), np.array([-1.1, -1.3, -1.0])
    errors_a = np.stack([x**a for a in slopes_a])
    errors_b = np.stack([7 * x**b for b in slopes_b])
    mean, half = rates.slope_difference(x, errors_a, errors_b)
    assert (mean, half) == pytest.approx(tuple(np.array(
        [(slopes_a - slopes_b).mean(), scipy_stats.t.ppf(0.975, 2) * scipy_stats.sem(slopes_a - slopes_b)])))


def test_reference_slope_of_a_power_of_the_axis_is_its_exponent():
    depths = np.array([2, 3, 4, 6, 8])
    axis = rates.approximation_axis(depths)
    assert rates.reference_slope(axis**-0.7, axis) == pytest.approx(-0.7, abs=1e-12)
    assert rates.reference_slope(rates.approximation_rate(depths, 1.0, 2), axis) == pytest.approx(-1.0, abs=1e-12)


def test_reference_slope_is_what_fit_slopes_measures_on_constructed_errors():
    """Errors that follow N^-a exactly, N an affine function of depth (as for our eDCNNs), fitted on L^2/log L."""
    depths = np.array([2, 3, 4, 6, 8])
    n_params = 52 * depths - 23
    axis = rates.approximation_axis(depths)
    errors = np.stack([c * n_params**-2.0 for c in (0.5, 1.0, 3.0)])
    measured = rates.fit_slopes(axis, errors)
    expected = -2.0 * np.polyfit(np.log(axis), np.log(n_params), 1)[0]
    assert measured.mean == pytest.approx(rates.reference_slope(n_params**-2.0, axis)) == pytest.approx(expected)
    # N a power of the axis: the classical rate's slope is exactly the product of the exponents
    beta = 0.6
    assert rates.reference_slope((axis**beta) ** -2.0, axis) == pytest.approx(-2.0 * beta, abs=1e-12)


def test_classical_reference_approaches_half_only_for_very_deep_nets():
    """N proportional to L: on L^2/log L the classical N^-a has slope -a / (2 - 1/log L), far from -a/2 at L = 2..8."""
    deep = np.geomspace(1e6, 1e7, 6)
    refs = rates.rate_references(deep, deep, r=1.0, d=2)  # N = L
    local = 2 - 1 / np.log(np.sqrt(1e6 * 1e7))
    assert refs.classical_vs_depth == pytest.approx(-1.0 / local, rel=1e-3)
    assert refs.lin_vs_params == pytest.approx(-1.0 * local, rel=1e-3)
    shallow = np.array([2, 3, 4, 6, 8])
    assert rates.rate_references(shallow, shallow, 1.0, 2).classical_vs_depth < -0.6  # nowhere near -0.5


def test_rate_references_at_the_notebook_nets():
    """The eDCNNs of notebook 03 (s = 2, 4 channels, max-pool 2 after every 2nd layer), depths 2..8, d = 1."""
    depths = [2, 3, 4, 6, 8]
    params = [dcnn.count_params(dcnn.EDCNN(1, L, 2, pooling=2, channels=4, pool_every=2)) for L in depths]
    assert params == [81, 141, 189, 293, 397]
    refs = rates.rate_references(depths, params, r=1.0, d=2)
    assert refs.lin_vs_depth == pytest.approx(-1.0) and refs.classical_vs_params == pytest.approx(-1.0)
    assert refs.classical_vs_depth == pytest.approx(-0.91, abs=0.005)  # not the asymptotic -r/d = -0.5
    assert refs.lin_vs_params == pytest.approx(-1.07, abs=0.005)  # not the asymptotic -4r/d = -2
    with pytest.raises(ValueError, match="at least 2 nets"):
        rates.rate_references([2], [81], 1.0, 2)
    with pytest.raises(ValueError, match="params="):
        rates.rate_references([2, 3], [0, 81], 1.0, 2)


@pytest.mark.parametrize(
    "mean, half, expected",
    [
        (-1.0, 0.2, "consistent with Lin and classical: cannot tell them apart"),
        (-1.15, 0.1, "consistent with Lin only"),
        (-0.85, 0.1, "consistent with classical only"),
        (-0.5, 0.2, "shallower than Lin and classical"),
        (-1.6, 0.2, "steeper than Lin and classical"),
    ],
)
def test_slope_verdicts(mean, half, expected):
    fit = rates.SlopeFit(np.array([mean - 0.1, mean + 0.1]), mean, half)
    assert rates.slope_verdict(fit, {"Lin": -1.1, "classical": -0.9}) == expected


def test_slope_verdict_between_two_far_references():
    fit = rates.SlopeFit(np.array([-1.4, -1.6]), -1.5, 0.1)
    assert rates.slope_verdict(fit, {"A": -2.0, "B": -1.0}) == "between A and B, consistent with neither"
    assert rates.slope_verdict(fit, {"A": -1.5}) == "consistent with A"


def test_separates_needs_an_interval_narrower_than_the_gap():
    refs = {"Lin": -1.0, "classical": -0.91}
    narrow = rates.SlopeFit(np.array([-1.0, -1.0]), -1.0, 0.04)
    wide = rates.SlopeFit(np.array([-1.0, -1.0]), -1.0, 0.05)
    assert rates.separates(narrow, refs) and not rates.separates(wide, refs)
    assert not rates.separates(narrow, {"Lin": -1.0})
    assert not rates.separates(rates.SlopeFit(np.array([-1.0]), -1.0, math.nan), refs)


@pytest.mark.parametrize(
    "mean, half, expected",
    [
        (-1.0, 0.2, "reproduced"),  # contains -1, excludes 0, narrower than the gap of 1
        (-0.9, 0.6, "measured differently"),  # contains -1 but is too wide to exclude 0
        (-0.3, 0.1, "not reproduced"),  # misses the claim
        (-0.1, math.nan, "measured differently"),  # one seed: nothing decided
    ],
)
def test_claim_status(mean, half, expected):
    fit = rates.SlopeFit(np.array([mean, mean]), mean, half)
    assert rates.claim_status(fit, claimed=-1.0, alternative=0.0) == expected


def test_error_ratios_are_paired_t_intervals_on_log_errors():
    rng = np.random.default_rng(2)
    b = rng.uniform(0.01, 1.0, (4, 3))
    a = 2.0 * b * np.exp(rng.normal(0, 0.2, (4, 3)))
    ratios = rates.error_ratios(a, b)
    for i, ratio in enumerate(ratios):
        logs = np.log(a[:, i] / b[:, i])
        low, high = scipy_stats.t.interval(0.95, 3, loc=logs.mean(), scale=scipy_stats.sem(logs))
        assert (ratio.ratio, ratio.low, ratio.high, ratio.pairs) == pytest.approx(
            (math.exp(logs.mean()), math.exp(low), math.exp(high), 4))
    per_seed = np.log(a / b).mean(axis=1)
    pooled = rates.pooled_error_ratio(a, b)
    assert pooled.ratio == pytest.approx(math.exp(per_seed.mean())) and pooled.pairs == 4
    assert pooled.low < 2.0 < pooled.high and str(pooled).startswith(f"{pooled.ratio:.2f} [")


def test_error_ratios_leave_out_nan_and_check_shapes():
    a, b = np.array([[1.0, 2.0], [np.nan, 4.0], [1.0, 8.0]]), np.ones((3, 2))
    first, second = rates.error_ratios(a, b)
    assert first.pairs == 2 and second.pairs == 3
    one = rates.error_ratios(a[:2], b[:2])[0]
    assert one.pairs == 1 and math.isnan(one.low) and "no interval" in str(one)
    with pytest.raises(ValueError, match="shape"):
        rates.error_ratios(a, b[:2])
    with pytest.raises(ValueError, match="positive"):
        rates.error_ratios(-a, b)
