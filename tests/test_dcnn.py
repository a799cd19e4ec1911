"""dcnn_helpers.dcnn: widths, parameter counts, Toeplitz equivalence, pooling, targets, fitting, rates, the analysis of
measured rates (slopes with intervals, reference slopes at the nets trained, verdicts, paired ratios), bad input."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats as scipy_stats

from dcnn_helpers import dcnn


def test_widths_grow_with_padding_and_shrink_without():
    assert dcnn.EDCNN(4, 3, 2).widths == [4, 6, 8, 10]
    assert dcnn.PlainDCNN(7, 3, 2).widths == [7, 5, 3, 1]
    assert dcnn.EDCNN(1, 2, 3).widths == [1, 4, 7]  # a scalar input is a signal of length 1
    # pooling window 2 after every second layer: 4 -> 6 -> 8 -> 4 -> 6 -> 8 -> 4
    assert dcnn.EDCNN(4, 6, 2, pooling=2, pool_every=2).widths == [4, 6, 4, 6, 4, 6, 4]
    assert dcnn.conv_widths(5, 1, 2, pooling=3) == [5, 3]  # ceil(7 / 3)


def test_parameter_counts_by_hand():
    # 3 layers of 3 taps + 1 bias, read-out from width 10: 3 * 4 + 10 + 1
    assert dcnn.count_params(dcnn.EDCNN(4, 3, 2)) == 23
    # 2 channels: first layer 2*1*3 + 2, second 2*2*3 + 2, read-out 2 * 8 + 1
    assert dcnn.count_params(dcnn.EDCNN(4, 2, 2, channels=2)) == 8 + 14 + 17
    net = dcnn.FCNet(3, 5, hidden_layers=2)
    assert dcnn.count_params(net) == (3 * 5 + 5) + (5 * 5 + 5) + (5 + 1) == dcnn.fc_params(3, 5, 2)


def test_matched_fc_is_closest_in_parameter_count():
    for target in (50, 200, 1000):
        width = dcnn.matched_fc(2, target).hidden[0].out_features
        gap = abs(dcnn.fc_params(2, width, 2) - target)
        assert gap <= abs(dcnn.fc_params(2, width - 1, 2) - target)
        assert gap <= abs(dcnn.fc_params(2, width + 1, 2) - target)


def test_toeplitz_matrix_by_hand():
    t = dcnn.toeplitz_matrix(torch.tensor([1.0, 2.0, 3.0]), 2)
    assert torch.equal(t, torch.tensor([[1.0, 0.0], [2.0, 1.0], [3.0, 2.0], [0.0, 3.0]]))


def test_padded_layer_is_the_toeplitz_matrix():
    torch.manual_seed(0)
    net = dcnn.EDCNN(5, 1, 3).double()
    x = torch.rand(7, 5, dtype=torch.float64)
    matrix = dcnn.toeplitz_matrix(net.filters(0)[0, 0], 5)
    expected = torch.relu(x @ matrix.T + net.convs[0].bias)
    assert torch.allclose(net.features(x)[:, 0], expected, atol=1e-12)
    plain = dcnn.PlainDCNN(5, 1, 3).double()
    rows = dcnn.toeplitz_matrix(plain.filters(0)[0, 0], 5)[3:5]  # the rows where every tap meets the input
    assert torch.allclose(plain.features(x)[:, 0], torch.relu(x @ rows.T + plain.convs[0].bias), atol=1e-12)


def test_pooling_shapes_and_values():
    net = dcnn.EDCNN(3, 4, 2, pooling=2, channels=3, pool_every=2)
    x = torch.rand(6, 3)
    assert net.features(x).shape == (6, 3, net.widths[-1])
    assert net(x).shape == (6,)
    one = dcnn.EDCNN(3, 1, 2, pooling=2)
    h = F.relu(one.convs[0](x.unsqueeze(1)))  # width 5, pooled with ceil mode to 3
    assert torch.equal(one.features(x)[..., 2], h[..., 4]) and torch.equal(one.features(x)[..., 0], h[..., :2].amax(-1))


def test_bump_series_levels_have_the_stated_energy():
    x = torch.linspace(0, 1, 4_001, dtype=torch.float64)[:, None]
    level = dcnn.BumpSeries(1, 0.5, 0)  # a single sin^2 bump of unit L2 norm
    assert math.isclose(float((level(x) ** 2).mean()), 1.0, rel_tol=1e-3)
    norms = [float((dcnn.BumpSeries(1, 0.5, 3, seed=k)(x) ** 2).mean()) for k in range(100)]
    expected = 1 + 1 / 2 + 1 / 4 + 1 / 8
    assert math.isclose(dcnn.BumpSeries(1, 0.5, 3).expected_sq_norm(), expected)
    assert abs(np.mean(norms) - expected) < 4 * np.std(norms) / np.sqrt(len(norms))
    assert math.isclose(dcnn.BumpSeries(1, 0.5, 3).expected_tail(1), 1 / 4 + 1 / 8)
    assert dcnn.BumpSeries(3, 1.0, 2).coefficients(2) == 1 + 8 + 64


def test_sample_shapes_and_noise():
    target = dcnn.BumpSeries(2, 1.0, 2)
    x, y = dcnn.sample(target, 50, seed=3)
    assert x.shape == (50, 2) and y.shape == (50,) and torch.allclose(y, target(x.double()).float(), atol=1e-5)
    _, noisy = dcnn.sample(target, 50, noise=1.0, seed=3)
    assert not torch.allclose(noisy, y)


def test_tiny_fit_reduces_the_error():
    torch.manual_seed(0)
    target = dcnn.BumpSeries(1, 1.0, 2)
    x, y = dcnn.sample(target, 128)
    net = dcnn.EDCNN(1, 3, 2, pooling=2, channels=4, pool_every=2)
    with torch.no_grad():
        before = float(((net(x) - y) ** 2).mean())
    history = dcnn.fit([net], x, y, steps=150, lr=1e-2, progress=False)
    assert history.shape == (150, 1)
    assert history[-1, 0] < 0.5 * before


def test_sweep_reports_errors_and_parameter_counts():
    target = dcnn.BumpSeries(1, 1.0, 2)
    result = dcnn.sweep([2, 3], lambda L: dcnn.EDCNN(1, L, 2, channels=2), target, samples=32, seeds=2, steps=3,
                        test_samples=64)
    assert result.errors.shape == result.collapsed.shape == result.train_errors.shape == (2, 2)
    assert np.all(result.train_errors > 0)
    assert result.params == [dcnn.count_params(dcnn.EDCNN(1, L, 2, channels=2)) for L in (2, 3)]


def test_sweep_results_do_not_depend_on_the_number_of_workers():
    target = dcnn.BumpSeries(1, 1.0, 2)
    runs = [dcnn.sweep([2, 3], lambda L: dcnn.EDCNN(1, L, 2, channels=2), target, samples=32, seeds=2, steps=3,
                       test_samples=64, workers=workers) for workers in (1, 2)]
    assert np.array_equal(runs[0].errors, runs[1].errors) and runs[0].params == runs[1].params
    assert np.array_equal(runs[0].train_errors, runs[1].train_errors)
    with pytest.raises(ValueError, match="workers=0"):
        dcnn.sweep([2], lambda L: dcnn.EDCNN(1, L, 2), target, samples=8, seeds=1, steps=1, workers=0)


def test_rate_formulas():
    assert math.isclose(float(dcnn.approximation_rate(4, 1.0, 2)), (16 / math.log(4)) ** -1)
    assert math.isclose(float(dcnn.learning_rate(64, 1.0, 2)), 64 ** -0.5)
    assert dcnn.depth_for_samples(4096, 1.0, 2) == 8  # 4096 ** (2 / 8)
    with pytest.raises(ValueError, match="depth"):
        dcnn.approximation_axis(1)


def test_fit_slopes_recovers_a_power_law_and_skips_nan():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    errors = np.stack([3 * x**-1.5, 5 * x**-1.5])
    errors[1, 2] = np.nan
    result = dcnn.fit_slopes(x, errors)
    assert np.allclose(result.slopes, -1.5) and result.ci95 < 1e-9


def test_fit_slopes_interval_is_the_t_interval_of_the_seed_slopes():
    rng = np.random.default_rng(0)
    x = np.array([2.0, 3.0, 5.0, 8.0, 13.0])
    true_slopes = rng.normal(-1.0, 0.3, 4)
    errors = np.stack([np.exp(0.1 * rng.normal()) * x**a for a in true_slopes])
    result = dcnn.fit_slopes(x, errors)
    assert np.allclose(result.slopes, true_slopes)
    low, high = scipy_stats.t.interval(0.95, 3, loc=true_slopes.mean(), scale=scipy_stats.sem(true_slopes))
    assert result.low == pytest.approx(low) and result.high == pytest.approx(high)
    assert str(result) == f"{true_slopes.mean():.2f} ± {(high - low) / 2:.2f}"


def test_one_seed_gives_no_interval():
    result = dcnn.fit_slopes([1.0, 2.0, 4.0], [1.0, 0.5, 0.25])
    assert result.mean == pytest.approx(-1.0) and math.isnan(result.ci95)
    assert "no interval" in str(result) and "±" not in str(result)
    assert dcnn.slope_verdict(result, {"a": -1.0}) == "one seed: no interval, no verdict"


def test_slope_difference_is_paired_over_seeds():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    slopes_a, slopes_b = np.array([-1.0, -1.4, -0.8]), np.array([-1.1, -1.3, -1.0])
    errors_a = np.stack([x**a for a in slopes_a])
    errors_b = np.stack([7 * x**b for b in slopes_b])
    mean, half = dcnn.slope_difference(x, errors_a, errors_b)
    assert (mean, half) == pytest.approx(tuple(np.array(
        [(slopes_a - slopes_b).mean(), scipy_stats.t.ppf(0.975, 2) * scipy_stats.sem(slopes_a - slopes_b)])))


def test_reference_slope_of_a_power_of_the_axis_is_its_exponent():
    depths = np.array([2, 3, 4, 6, 8])
    axis = dcnn.approximation_axis(depths)
    assert dcnn.reference_slope(axis**-0.7, axis) == pytest.approx(-0.7, abs=1e-12)
    assert dcnn.reference_slope(dcnn.approximation_rate(depths, 1.0, 2), axis) == pytest.approx(-1.0, abs=1e-12)


def test_reference_slope_is_what_fit_slopes_measures_on_constructed_errors():
    """Errors that follow N^-a exactly, N an affine function of depth (as for our eDCNNs), fitted on L^2/log L."""
    depths = np.array([2, 3, 4, 6, 8])
    n_params = 52 * depths - 23
    axis = dcnn.approximation_axis(depths)
    errors = np.stack([c * n_params**-2.0 for c in (0.5, 1.0, 3.0)])
    measured = dcnn.fit_slopes(axis, errors)
    expected = -2.0 * np.polyfit(np.log(axis), np.log(n_params), 1)[0]
    assert measured.mean == pytest.approx(dcnn.reference_slope(n_params**-2.0, axis)) == pytest.approx(expected)
    # N a power of the axis: the classical rate's slope is exactly the product of the exponents
    beta = 0.6
    assert dcnn.reference_slope((axis**beta) ** -2.0, axis) == pytest.approx(-2.0 * beta, abs=1e-12)


def test_classical_reference_approaches_half_only_for_very_deep_nets():
    """N proportional to L: on L^2/log L the classical N^-a has slope -a / (2 - 1/log L), far from -a/2 at L = 2..8."""
    deep = np.geomspace(1e6, 1e7, 6)
    refs = dcnn.rate_references(deep, deep, r=1.0, d=2)  # N = L
    local = 2 - 1 / np.log(np.sqrt(1e6 * 1e7))
    assert refs.classical_vs_depth == pytest.approx(-1.0 / local, rel=1e-3)
    assert refs.lin_vs_params == pytest.approx(-1.0 * local, rel=1e-3)
    shallow = np.array([2, 3, 4, 6, 8])
    assert dcnn.rate_references(shallow, shallow, 1.0, 2).classical_vs_depth < -0.6  # nowhere near -0.5


def test_rate_references_at_the_notebook_nets():
    """The eDCNNs of notebook 03 (s = 2, 4 channels, max-pool 2 after every 2nd layer), depths 2..8, d = 1."""
    depths = [2, 3, 4, 6, 8]
    params = [dcnn.count_params(dcnn.EDCNN(1, L, 2, pooling=2, channels=4, pool_every=2)) for L in depths]
    assert params == [81, 141, 189, 293, 397]
    refs = dcnn.rate_references(depths, params, r=1.0, d=2)
    assert refs.lin_vs_depth == pytest.approx(-1.0) and refs.classical_vs_params == pytest.approx(-1.0)
    assert refs.classical_vs_depth == pytest.approx(-0.91, abs=0.005)  # not the asymptotic -r/d = -0.5
    assert refs.lin_vs_params == pytest.approx(-1.07, abs=0.005)  # not the asymptotic -4r/d = -2
    with pytest.raises(ValueError, match="at least 2 nets"):
        dcnn.rate_references([2], [81], 1.0, 2)
    with pytest.raises(ValueError, match="params="):
        dcnn.rate_references([2, 3], [0, 81], 1.0, 2)


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
    fit = dcnn.SlopeFit(np.array([mean - 0.1, mean + 0.1]), mean, half)
    assert dcnn.slope_verdict(fit, {"Lin": -1.1, "classical": -0.9}) == expected


def test_slope_verdict_between_two_far_references():
    fit = dcnn.SlopeFit(np.array([-1.4, -1.6]), -1.5, 0.1)
    assert dcnn.slope_verdict(fit, {"A": -2.0, "B": -1.0}) == "between A and B, consistent with neither"
    assert dcnn.slope_verdict(fit, {"A": -1.5}) == "consistent with A"


def test_separates_needs_an_interval_narrower_than_the_gap():
    refs = {"Lin": -1.0, "classical": -0.91}
    narrow = dcnn.SlopeFit(np.array([-1.0, -1.0]), -1.0, 0.04)
    wide = dcnn.SlopeFit(np.array([-1.0, -1.0]), -1.0, 0.05)
    assert dcnn.separates(narrow, refs) and not dcnn.separates(wide, refs)
    assert not dcnn.separates(narrow, {"Lin": -1.0})
    assert not dcnn.separates(dcnn.SlopeFit(np.array([-1.0]), -1.0, math.nan), refs)


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
    fit = dcnn.SlopeFit(np.array([mean, mean]), mean, half)
    assert dcnn.claim_status(fit, claimed=-1.0, alternative=0.0) == expected


def test_error_ratios_are_paired_t_intervals_on_log_errors():
    rng = np.random.default_rng(2)
    b = rng.uniform(0.01, 1.0, (4, 3))
    a = 2.0 * b * np.exp(rng.normal(0, 0.2, (4, 3)))
    ratios = dcnn.error_ratios(a, b)
    for i, ratio in enumerate(ratios):
        logs = np.log(a[:, i] / b[:, i])
        low, high = scipy_stats.t.interval(0.95, 3, loc=logs.mean(), scale=scipy_stats.sem(logs))
        assert (ratio.ratio, ratio.low, ratio.high, ratio.pairs) == pytest.approx(
            (math.exp(logs.mean()), math.exp(low), math.exp(high), 4))
    per_seed = np.log(a / b).mean(axis=1)
    pooled = dcnn.pooled_error_ratio(a, b)
    assert pooled.ratio == pytest.approx(math.exp(per_seed.mean())) and pooled.pairs == 4
    assert pooled.low < 2.0 < pooled.high and str(pooled).startswith(f"{pooled.ratio:.2f} [")


def test_error_ratios_leave_out_nan_and_check_shapes():
    a, b = np.array([[1.0, 2.0], [np.nan, 4.0], [1.0, 8.0]]), np.ones((3, 2))
    first, second = dcnn.error_ratios(a, b)
    assert first.pairs == 2 and second.pairs == 3
    one = dcnn.error_ratios(a[:2], b[:2])[0]
    assert one.pairs == 1 and math.isnan(one.low) and "no interval" in str(one)
    with pytest.raises(ValueError, match="shape"):
        dcnn.error_ratios(a, b[:2])
    with pytest.raises(ValueError, match="positive"):
        dcnn.error_ratios(-a, b)


def test_mean_readout_equalises_parameters_and_initial_weights():
    """With the mean read-out, padding and pooling change neither the parameter count nor (same seed) the weights."""
    nets = {}
    for name, build in [
        ("plain", lambda: dcnn.PlainDCNN(4, 3, 1, channels=3, readout="mean")),
        ("padded", lambda: dcnn.EDCNN(4, 3, 1, channels=3, readout="mean")),
        ("pooled", lambda: dcnn.EDCNN(4, 3, 1, pooling=2, channels=3, readout="mean")),
    ]:
        torch.manual_seed(5)
        nets[name] = build()
    counts = {name: dcnn.count_params(net) for name, net in nets.items()}
    assert len(set(counts.values())) == 1 and counts["plain"] == (2 * 3 + 3) + 2 * (9 * 2 + 3) + 3 + 1
    for name in ("padded", "pooled"):
        for p, q in zip(nets["plain"].parameters(), nets[name].parameters()):
            assert torch.equal(p, q)
    x = torch.rand(5, 4)
    assert all(net(x).shape == (5,) for net in nets.values())
    h = nets["padded"].features(x).mean(-1)
    assert torch.allclose(nets["padded"](x), nets["padded"].readout(h).squeeze(-1))


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: dcnn.EDCNN(4, 2, 0), "filter_size=0"),
        (lambda: dcnn.EDCNN(4, 0, 2), "depth=0"),
        (lambda: dcnn.EDCNN(4, 2, 2, pooling=1), "pooling=1"),
        (lambda: dcnn.PlainDCNN(4, 2, 2), "too deep for a plain"),
        (lambda: dcnn.EDCNN(4, 2.0, 2), "depth must be an integer"),
        (lambda: dcnn.BumpSeries(2, 2.5, 3), "smoothness=2.5"),
        (lambda: dcnn.EDCNN(4, 2, 2, readout="sum"), "readout"),
    ],
)
def test_bad_arguments(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


def test_wrong_input_dimension():
    with pytest.raises(ValueError, match="input_dim=4"):
        dcnn.EDCNN(4, 2, 2)(torch.rand(3, 5))
    with pytest.raises(ValueError, match="input_dim=2"):
        dcnn.FCNet(2, 3)(torch.rand(3))
