"""dcnn_helpers.dcnn: widths, parameter counts, Toeplitz equivalence, pooling, targets, fitting, sweeps, bad input.
The rates and their analysis are tested in test_rates.py."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

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


def test_bad_numbers_are_refused_with_the_argument_named():
    target = dcnn.BumpSeries(1, 1.0, 2)
    with pytest.raises(ValueError, match="noise=nan must be a finite number"):
        dcnn.sample(target, 4, noise=float("nan"))
    with pytest.raises(ValueError, match="noise=-0.1 must lie in"):
        dcnn.sample(target, 4, noise=-0.1)
    x, y = dcnn.sample(target, 8)
    with pytest.raises(ValueError, match="batch_size=0 must be at least 1"):
        dcnn.fit([dcnn.FCNet(1, 2)], x, y, steps=1, batch_size=0)
    with pytest.raises(ValueError, match="lr=inf must be a finite number"):
        dcnn.fit([dcnn.FCNet(1, 2)], x, y, steps=1, lr=float("inf"))
    with pytest.raises(ValueError, match="smoothness=2.0 must lie in"):
        dcnn.BumpSeries(1, 2.0, 2)
    with pytest.raises(TypeError, match="target must be a BumpSeries"):
        dcnn.sample("f", 4)
    x, y = dcnn.sample(target, np.int64(4), noise=np.float32(0.1), seed=np.int64(1))
    assert x.shape == (4, 1)
