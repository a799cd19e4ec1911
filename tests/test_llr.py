"""dcnn_helpers.llr: model ranks, embeddings, optimistic sample sizes, the recovery experiment, bad inputs."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from dcnn_helpers import llr

D, M = 5, 50


def _inputs(n, d=D, seed=1):
    return torch.randn(n, d, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def two_layer():
    """Ranks of the width-50 two-layer tanh net (300 parameters) at 1..4-neuron targets, on 360 samples."""
    return {k: llr.two_layer_ranks(D, M, k, n=360) for k in range(1, 5)}


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_zero_neuron_embedding_has_rank_k_times_d_plus_1(two_layer, k):
    assert two_layer[k]["zero"].rank == k * (D + 1) == llr.optimistic_sample_size((D, k, 1))


def test_generic_rank_is_full(two_layer):
    assert two_layer[1]["generic"].rank == M * (D + 1) == llr.param_count((D, M, 1)) == 300


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_other_embeddings_of_the_same_target(two_layer, k):
    # copies of a neuron have proportional tangent functions: splitting adds nothing
    assert two_layer[k]["split"].rank == k * (D + 1)
    # each extra neuron with a_j = 0 and a random w_j adds one tangent function, tanh(w_j . x)
    assert two_layer[k]["random"].rank == k * (D + 1) + (M - k)


@pytest.mark.parametrize("m", [4, 10, 30])
def test_zero_embedding_rank_does_not_depend_on_width(m):
    assert llr.two_layer_ranks(D, m, 2, n=40)["zero"].rank == 12


@pytest.mark.parametrize(
    ("activation", "bias", "per_neuron"), [("tanh", False, D + 1), ("tanh", True, D + 2), ("relu", False, D),
                                           ("relu", True, D + 1)]
)
def test_biases_and_relu(activation, bias, per_neuron):
    for k in (1, 3):
        ranks = llr.two_layer_ranks(D, 12, k, n=150, activation=activation, bias=bias)
        assert ranks["zero"].rank == k * per_neuron == llr.optimistic_sample_size((D, k, 1), activation, bias)


def test_sample_jacobian_rank_is_min_of_n_and_model_rank():
    wide = llr.embed(llr.random_target((D, 2, 1)), (D, M, 1), "zero")
    x = _inputs(20)
    for n in range(9, 16):
        assert llr.model_rank(wide, x[:n]).rank == min(n, 12), n


def test_deep_target_of_widths_3_2_has_rank_23():
    target = llr.random_target((D, 3, 2, 1), seed=4)
    x = _inputs(200)
    for how in ("zero", "split"):
        wide = llr.embed(target, (D, 20, 20, 1), how)
        assert llr.model_rank(wide, x).rank == 23 == llr.param_count((D, 3, 2, 1))


@pytest.mark.parametrize("how", llr.EMBEDDINGS)
@pytest.mark.parametrize(
    ("widths", "wide", "bias"), [((D, 3, 1), (D, 9, 1), False), ((D, 3, 2, 1), (D, 7, 6, 1), True)]
)
def test_embeddings_compute_the_target_function(how, widths, wide, bias):
    target = llr.random_target(widths, bias=bias, seed=2)
    model = llr.embed(target, wide, how, seed=3)
    x = _inputs(50)
    assert llr.param_count(wide, bias) == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        assert torch.allclose(model(x), target(x), atol=1e-12, rtol=0)


@pytest.mark.parametrize(("r", "rank"), [(1, 9), (2, 16), (3, 21), (5, 25)])
def test_matrix_factorisation_rank(r, rank):
    model = llr.MatrixFactorisation(5, r)
    assert llr.model_rank(model, llr.entry_inputs(5)).rank == rank == llr.matrix_factorisation_rank(5, r)
    assert torch.linalg.matrix_rank(model.matrix()) == r


def test_entry_inputs_read_matrix_entries():
    model = llr.MatrixFactorisation(3, 2)
    with torch.no_grad():
        assert torch.allclose(model(llr.entry_inputs(3)), model.matrix().reshape(-1))


@pytest.mark.parametrize("out", [1, 3])
def test_linear_model_rank_is_its_parameter_count(out):
    model = nn.Linear(4, out).double()
    assert llr.model_rank(model, _inputs(12, 4)).rank == 5 * out


class _Mixed(nn.Module):
    """The same model, parameterised by phi with theta = A phi for a fixed invertible A."""

    def __init__(self, model, mix):
        super().__init__()
        self.model, self.mix = model, mix
        self.names = [name for name, _ in model.named_parameters()]
        self.shapes = [p.shape for _, p in model.named_parameters()]
        theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        self.phi = nn.Parameter(torch.linalg.solve(mix, theta))

    def forward(self, x):
        chunks = torch.split(self.mix @ self.phi, [s.numel() for s in self.shapes])
        params = {n: c.reshape(s) for n, c, s in zip(self.names, chunks, self.shapes)}
        return functional_call(self.model, params, (x,))


@pytest.mark.parametrize(("how", "rank"), [("zero", 12), ("random", 12 + 8)])
def test_rank_is_invariant_under_reparameterisation(how, rank):
    model = llr.embed(llr.random_target((D, 2, 1)), (D, 10, 1), how)
    x = _inputs(150)
    mix = torch.eye(60, dtype=torch.float64) + 0.3 * _inputs(60, 60, seed=7)
    permuted = llr.fully_connected((D, 10, 1))
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        permuted[0].weight.copy_(model[0].weight[perm])
        permuted[2].weight.copy_(model[2].weight[:, perm])
    assert llr.model_rank(model, x).rank == rank
    assert llr.model_rank(_Mixed(model, mix), x).rank == rank
    assert llr.model_rank(permuted, x).rank == rank


def test_vectorised_jacobian_matches_the_loop_and_has_the_documented_layout():
    model = llr.fully_connected((3, 4, 1), bias=True)
    x = _inputs(7, 3)
    jac = llr.jacobian(model, x)
    assert jac.shape == (7, 3 * 4 + 4 + 4) and jac.dtype == torch.float64
    assert torch.allclose(jac, llr.loop_jacobian(model, x), atol=1e-14, rtol=0)
    with torch.no_grad():  # derivative with respect to the output weights is the hidden activation
        assert torch.allclose(jac[:, -4:], torch.tanh(x @ model[0].weight.T + model[0].bias))


def test_spectral_rank_and_tolerance():
    eye = torch.eye(4, dtype=torch.float64)
    assert llr.spectral_rank(eye).rank == 4 and llr.spectral_rank(torch.zeros(3, 2)).rank == 0
    scaled = torch.diag(torch.tensor([1.0, 1e-3, 1e-9], dtype=torch.float64))
    result = llr.spectral_rank(scaled, rtol=1e-6)
    assert result.rank == 2 and result.threshold == pytest.approx(1e-6) and result.gap == pytest.approx(1e6)
    assert llr.spectral_rank(scaled).rank == 3
    assert llr.default_rtol((4000, 300)) == pytest.approx(4000 * 2.220446049250313e-16)


def test_recovery_experiment_layout_and_normalisation():
    result = llr.recovery_experiment(3, 6, (1, 2), (1.0, 2.0), seeds=2, steps=1, init_scale=1e-8, n_test=50)
    assert result.n_values.tolist() == [[4, 8], [8, 16]]
    assert result.test_error.shape == result.train_error.shape == (2, 2, 2)
    # a student of size 1e-8 predicts ~1e-16: its relative error is 1
    assert np.allclose(result.test_error, 1.0, atol=1e-6) and np.allclose(result.train_error, 1.0, atol=1e-6)
    assert result.n_params == 24 and result.optimistic(2) == 8
    trained = llr.recovery_experiment(3, 6, (1,), (3.0,), seeds=1, steps=300, n_test=50)
    assert trained.train_error[0, 0, 0] < 0.1
    assert torch.get_num_threads() >= 1


def test_benchmark_entry_point(capsys):
    assert llr.main(["bench", "--n", "40", "--m", "6", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "36 parameters x 40 samples" in out and "speed-up" in out


def test_bad_inputs():
    model = llr.fully_connected((D, 4, 1))
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        llr.model_rank("net", _inputs(3))
    with pytest.raises(ValueError, match="model has no parameters"):
        llr.model_rank(nn.Tanh(), _inputs(3))
    with pytest.raises(ValueError, match=r"inputs must have shape \(n, 5\)"):
        llr.model_rank(model, _inputs(3, 4))
    with pytest.raises(ValueError, match="inputs must have shape"):
        llr.model_rank(model, torch.zeros(D, dtype=torch.float64))
    with pytest.raises(TypeError, match="inputs must be floating point"):
        llr.model_rank(model, torch.zeros(3, D, dtype=torch.int64))
    with pytest.raises(ValueError, match="NaN"):
        llr.model_rank(model, torch.full((3, D), float("nan")))
    with pytest.raises(ValueError, match="rtol"):
        llr.model_rank(model, _inputs(3), rtol=2.0)
    with pytest.raises(ValueError, match="activation='gelu'"):
        llr.fully_connected((D, 4, 1), "gelu")
    with pytest.raises(ValueError, match="how='copy'"):
        llr.embed(llr.random_target((D, 2, 1)), (D, 4, 1), "copy")
    with pytest.raises(ValueError, match="at least the target's widths"):
        llr.embed(llr.random_target((D, 5, 1)), (D, 4, 1))
    with pytest.raises(ValueError, match="activation='sigmoid'"):
        llr.optimistic_sample_size((D, 2, 1), "sigmoid")
    with pytest.raises(ValueError, match="r=4 must be at most 3"):
        llr.matrix_factorisation_rank(3, 4)


@pytest.mark.parametrize("argument, value, error, message", [
    ("lr", float("nan"), ValueError, "lr=nan must be a finite number"),
    ("lr", float("inf"), ValueError, "lr=inf must be a finite number"),
    ("init_scale", float("nan"), ValueError, "init_scale=nan must be a finite number"),
    ("momentum", 1.0, ValueError, r"momentum=1.0 must lie in \[0.0, 1.0\)"),
    ("seeds", 0, ValueError, "seeds=0 must be at least 1"),
    ("steps", 2.5, TypeError, "steps must be an integer"),
    ("ks", [5], ValueError, r"ks\[0\]=5 must be at most 4"),
    ("n_ratios", [0.5, -1.0], ValueError, r"n_ratios\[1\]=-1.0 must lie in \(0.0, inf\)"),
    ("dtype", torch.int32, ValueError, "dtype=torch.int32 is not allowed"),
])
def test_recovery_experiment_refuses_bad_arguments_before_training(argument, value, error, message):
    arguments = dict(d=2, m=4, ks=[1], n_ratios=[1.0], seeds=1, steps=1)
    arguments[argument] = value
    with pytest.raises(error, match=message):
        llr.recovery_experiment(**arguments)


def test_recovery_experiment_accepts_numpy_numbers():
    result = llr.recovery_experiment(np.int64(2), np.int64(3), [np.int64(1)], [np.float32(1.0)], seeds=np.int32(1),
                                     steps=np.int64(2), lr=np.float64(0.1))
    assert result.test_error.shape == (1, 1, 1)


def test_jacobian_refuses_batchnorm_or_dropout_in_training_mode():
    model = nn.Sequential(nn.Linear(D, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Dropout(0.1), nn.Linear(4, 1)).double()
    with pytest.raises(ValueError, match="BatchNorm1d, Dropout layers in training mode; call model.eval"):
        llr.jacobian(model, _inputs(3))
    assert llr.jacobian(model.eval(), _inputs(3)).shape == (3, sum(p.numel() for p in model.parameters()))


def test_float32_model_warns_and_is_not_changed():
    model = llr.embed(llr.random_target((D, 2, 1)), (D, 8, 1)).float()
    with pytest.warns(UserWarning, match="float64 copies"):
        result = llr.model_rank(model, _inputs(60).float())
    assert result.rank == 12
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_recovery_experiment_dropout_is_training_only_and_validated():
    common = dict(seeds=1, steps=200, n_test=50)
    plain = llr.recovery_experiment(3, 6, (1,), (3.0,), **common)
    none_dropped = llr.recovery_experiment(3, 6, (1,), (3.0,), dropout=0.5, dropout_steps=0, **common)
    assert np.array_equal(plain.test_error, none_dropped.test_error)  # no dropout step: the same run
    dropped = llr.recovery_experiment(3, 6, (1,), (3.0,), dropout=0.5, **common)
    assert np.all(np.isfinite(dropped.test_error)) and not np.array_equal(plain.test_error, dropped.test_error)
    # dropout noise keeps the training fit away from an exact interpolation
    assert dropped.train_error[0, 0, 0] > plain.train_error[0, 0, 0]
    with pytest.raises(ValueError, match="dropout=1.0"):
        llr.recovery_experiment(3, 6, (1,), (1.0,), dropout=1.0)
    with pytest.raises(ValueError, match="dropout_steps=7"):
        llr.recovery_experiment(3, 6, (1,), (1.0,), steps=5, dropout=0.1, dropout_steps=7)
