"""dcnn_helpers.depth: exact constructions (counted with notebook 01's exact counter), bounds, exact ERM."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from scipy.optimize import linprog

from dcnn_helpers import depth, regions


def dyadic_inputs(n: int, lo: int, hi: int, bits: int = 12, seed: int = 0) -> torch.Tensor:
    """Random inputs j / 2^bits in [lo, hi): float64 arithmetic on them is exact in the constructions below."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(lo * 2**bits, hi * 2**bits, (n, 1), generator=g).double() / 2**bits


# --- constructions -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", range(1, 11))
def test_sawtooth_has_2_to_the_k_pieces_at_dyadic_breakpoints(k):
    net = depth.sawtooth_net(k)
    assert depth.hidden_widths(net) == [2] * k
    pieces = regions.pieces_1d(net, 0.0, 1.0)
    assert len(pieces) == 2**k
    np.testing.assert_allclose(pieces.breakpoints, np.arange(1, 2**k) / 2**k, rtol=0, atol=1e-12)
    ends = torch.arange(2**k + 1, dtype=torch.float64)[:, None] / 2**k
    assert torch.equal(net(ends)[:, 0], (torch.arange(2**k + 1) % 2).double())  # 0, 1, 0, 1, ... exactly


@pytest.mark.parametrize(("w", "k", "pieces"), [(2, 3, 8), (3, 3, 27), (4, 2, 16), (3, 4, 81)])
def test_composed_zigzags_have_w_to_the_k_pieces(w, k, pieces):
    rng = np.random.default_rng(w * 10 + k)
    M = 2.0
    nets = [depth.zigzag_net(np.sort(rng.uniform(0.1, 1.9, w - 1)), M) for _ in range(k)]  # a different a per layer
    for net in nets:
        assert depth.hidden_widths(net) == [w]
        assert len(regions.pieces_1d(net, 0.0, M)) == w
    composed = depth.compose(*nets)
    assert depth.hidden_widths(composed) == [w] * k  # depth k + 1, size wk
    # float64 weights let a peak overshoot M by ~1e-16; the exact counter sees the slivers that makes
    lengths = np.diff(regions.pieces_1d(composed, 0.0, M).piece_positions)
    assert (lengths > 1e-12).sum() == pieces and (lengths[lengths <= 1e-12] < 1e-14).all()
    x = torch.linspace(-1, 3, 101, dtype=torch.float64)[:, None]
    expected = x
    for net in nets:
        expected = net(expected)
    torch.testing.assert_close(composed(x), expected, rtol=0, atol=1e-12)


def test_zigzag_is_zero_left_of_zero_and_zigzags_between_0_and_M():
    net = depth.zigzag_net([1.0, 2.0], 3.0)
    x = torch.tensor([[-5.0], [-1.0], [0.0], [1.0], [2.0], [3.0]], dtype=torch.float64)
    assert net(x)[:, 0].tolist() == [0.0, 0.0, 0.0, 3.0, 0.0, 3.0]


def test_tent_map_is_a_zigzag():
    x = dyadic_inputs(500, -1, 1)
    assert torch.equal(depth.zigzag_net([0.5], 1.0)(x), depth.sawtooth_net(1)(x))


def _interpolant(xs, ys, x: Fraction) -> Fraction:
    """Exact value of the linear interpolant of integer knots, continued linearly beyond both ends."""
    i = min(max(np.searchsorted(xs, float(x)) - 1, 0), len(xs) - 2)
    slope = Fraction(int(ys[i + 1] - ys[i]), int(xs[i + 1] - xs[i]))
    return Fraction(int(ys[i])) + slope * (x - int(xs[i]))


@pytest.mark.parametrize(
    ("values", "units"),
    [
        ([1, 0, 2, 2, 5, 1], 5),  # 5 pieces, no flat end -> p units
        ([0, 0, 2, 2, 5, 1], 4),  # flat left end -> p - 1
        ([1, 0, 2, 2, 5, 5], 4),  # flat right end -> p - 1
        ([3, 3, 2, 2, 5, 5], 4),  # both ends flat -> p - 1
        ([0, 1, 2, 4, 6, 8], 3),  # collinear knots are not kinks: 3 pieces, 3 units
        ([0, 1, 2, 4, 5, 7], 2),  # affine: ReLU(x) - ReLU(-x)
        ([7, 7, 7, 7, 7, 7], 0),  # constant: no unit
    ],
)
def test_shallow_from_pieces_is_exact_with_p_or_p_minus_1_units(values, units):
    xs = np.array([-2, -1, 0, 2, 3, 5])
    ys = np.array(values)
    net = depth.shallow_from_pieces(xs, ys)
    assert depth.hidden_widths(net) == [units]
    x = dyadic_inputs(300, -6, 9)
    expected = torch.tensor([float(_interpolant(xs, ys, Fraction(v))) for v in x[:, 0].tolist()], dtype=torch.float64)
    assert torch.equal(net(x)[:, 0], expected)
    p = len(regions.pieces_1d(net, -10.0, 10.0))
    flat_end = ys[0] == ys[1] or ys[-1] == ys[-2]
    assert units == (p - 1 if flat_end else p) or p == 1


def test_shallow_from_pieces_random_float_knots():
    rng = np.random.default_rng(3)
    xs = np.sort(rng.uniform(-3, 3, 9))
    ys = rng.normal(size=9)
    net = depth.shallow_from_pieces(xs, ys)
    assert depth.hidden_widths(net) == [8]  # 8 pieces, no flat end
    assert len(regions.pieces_1d(net, -5.0, 5.0)) == 8
    x = np.linspace(-5, 5, 401)
    inside = np.interp(x, xs, ys)
    left = ys[0] + (ys[1] - ys[0]) / (xs[1] - xs[0]) * (x - xs[0])
    right = ys[-1] + (ys[-1] - ys[-2]) / (xs[-1] - xs[-2]) * (x - xs[-1])
    expected = np.where(x < xs[0], left, np.where(x > xs[-1], right, inside))
    np.testing.assert_allclose(net(torch.as_tensor(x)[:, None]).detach().numpy()[:, 0], expected, atol=1e-12)


@pytest.mark.parametrize("k", [1, 3, 6])
def test_shallow_equivalent_of_the_sawtooth(k):
    deep = depth.sawtooth_net(k)
    shallow = depth.shallow_equivalent(deep, -1.0, 2.0)
    # on R the sawtooth has 2^k + 2 pieces for k >= 2 (flat on both sides), 3 for k = 1: p - 1 units (Thm 2.2)
    p = len(regions.pieces_1d(deep, -1.0, 2.0))
    assert p == (3 if k == 1 else 2**k + 2)
    assert depth.hidden_widths(shallow) == [p - 1]
    x = dyadic_inputs(1000, -2, 3)
    assert torch.equal(shallow(x), deep(x))


@pytest.mark.parametrize("n", range(1, 10))
def test_max_net_is_exact_with_log_depth(n):
    net = depth.max_net(n)
    assert len(depth.hidden_widths(net)) == math.ceil(math.log2(n))
    x = torch.randint(-1000, 1000, (500, n), generator=torch.Generator().manual_seed(n)).double()
    assert torch.equal(net(x)[:, 0], x.max(dim=1).values)


def test_max_of_affine_functions_needs_ceil_log2_n_plus_1_hidden_layers():
    # Thm 2.1 for a convex piecewise-linear function on R^3: max of 4 affine maps, 2 hidden layers
    affine = torch.nn.Sequential(torch.nn.Linear(3, 4, dtype=torch.float64))
    with torch.no_grad():
        affine[0].weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [-1, -1, -1]]))
        affine[0].bias.copy_(torch.tensor([0.0, 1, 2, 3]))
    net = depth.compose(affine, depth.max_net(4))
    assert len(depth.hidden_widths(net)) == math.ceil(math.log2(3 + 1))
    x = torch.randint(-50, 50, (300, 3), generator=torch.Generator().manual_seed(0)).double()
    assert torch.equal(net(x)[:, 0], affine(x).max(dim=1).values)


def test_compose_fuses_layers_and_checks_shapes():
    torch.manual_seed(0)
    a, b = depth.mlp([2, 5, 3]), depth.mlp([3, 4, 4, 1])
    ab = depth.compose(a, b)
    assert depth.hidden_widths(ab) == [5, 4, 4]
    x = torch.randn(50, 2, dtype=torch.float64)
    torch.testing.assert_close(ab(x), b(a(x)), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="takes 3 inputs but nets\\[0\\] gives 1"):
        depth.compose(depth.mlp([2, 1]), depth.mlp([3, 1]))
    with pytest.raises(ValueError, match="alternate Linear and ReLU"):
        depth.compose(torch.nn.Sequential(torch.nn.ReLU()))
    with pytest.raises(TypeError, match="Sequential"):
        depth.compose(torch.nn.Linear(2, 2))


def test_construction_inputs_are_checked():
    with pytest.raises(ValueError, match="strictly increasing"):
        depth.shallow_from_pieces([0, 1, 1], [0, 1, 2])
    with pytest.raises(ValueError, match="same length"):
        depth.shallow_from_pieces([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="inside \\(0, M"):
        depth.zigzag_net([0.5, 1.5], 1.0)
    with pytest.raises(ValueError, match="M=0"):
        depth.zigzag_net([0.5], 0)
    with pytest.raises(ValueError, match="k=0"):
        depth.sawtooth_net(0)
    with pytest.raises(TypeError, match="n must be an integer"):
        depth.max_net(2.0)


def test_zonotope_family_architecture_and_count_above_the_formula():
    gens = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -2.0]])
    m, w, k = len(gens), 3, 2
    net = depth.zonotope_net(gens, [0.4, 0.7], 1.0, k)
    assert depth.hidden_widths(net) == [2 * m] + [w] * k  # depth k + 2, size 2m + wk
    part = regions.linear_regions_2d(net, (-1.0, 1.0, -1.0, 1.0))
    # inside {gamma_Z <= M} each of the 2m cones where gamma_Z is linear holds w^k bands
    assert part.n_pieces >= 2 * m * w**k > depth.zonotope_pieces_formula(2, m, w, k)


# --- bounds ---------------------------------------------------------------------------------------------------


def test_bounds_by_hand():
    assert depth.pieces_upper_bound([3, 2]) == 2 * 4 * 2  # 2^(k-1) (w1+1) w2
    assert depth.pieces_upper_bound([5]) == 6
    assert depth.pieces_upper_bound_size(6, 2) == 36.0  # (2s/k)^k
    assert depth.min_size_for_pieces(16, 2) == 3.0  # 1/2 * 2 * 16^(1/2) - 1
    assert depth.zonotope_pieces_formula(2, 4, 2, 3) == 3 * 8
    rows = depth.gap_table(3, 2)
    assert [r["size needed >="] for r in rows] == [0.5 * 8 - 1, 0.5 * 2 * 8**0.5 - 1, 0.5 * 3 * 2 - 1]
    assert all(r["pieces w^k"] == 8 and r["deep construction size wk"] == 6 for r in rows)


@pytest.mark.parametrize("k0", [2, 3, 4, 5])
def test_corollary_3_4(k0):
    row = depth.gap_table(k0**2, k0)[k0 - 1]  # k' = k0 hidden layers against k0^2 layers of width k0
    assert row["size needed >="] == 0.5 * k0 ** (k0 + 1) - 1
    assert row["deep construction size wk"] == k0**3


@pytest.mark.parametrize(("w", "k"), [(2, 3), (3, 3), (4, 2), (2, 6)])
def test_constructions_respect_the_upper_bounds(w, k):
    """The deep zig-zag realises w^k pieces with size wk: the lemmas must allow that at its own depth."""
    assert depth.pieces_upper_bound([w] * k) >= w**k
    assert depth.pieces_upper_bound_size(w * k, k) >= w**k
    assert depth.min_size_for_pieces(w**k, k) <= w * k


# --- exact ERM ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("D", "n", "expected"), [(5, 1, 10), (9, 1, 18), (10, 2, 92), (7, 2, 44)])
def test_split_count_matches_general_position_formula(D, n, expected):
    assert depth.num_splits_general_position(D, n) == expected
    X = np.random.default_rng(D * n).uniform(-1, 1, (D, n))
    splits = depth.hyperplane_splits(X)
    assert splits.shape == (expected, D)
    assert len({s.tobytes() for s in splits}) == expected


def test_splits_in_1d_are_prefixes_and_suffixes():
    X = np.array([[0.3], [-1.0], [2.0], [0.0], [1.5]])
    order = np.argsort(X[:, 0])
    expected = set()
    for j in range(len(X) + 1):
        low = np.zeros(len(X), bool)
        low[order[:j]] = True
        expected |= {low.tobytes(), (~low).tobytes()}
    assert {s.tobytes() for s in depth.hyperplane_splits(X)} == expected


def test_splits_in_2d_are_separable_by_a_line():
    X = np.random.default_rng(1).uniform(-1, 1, (8, 2))
    G = np.hstack([X, np.ones((8, 1))])
    for split in depth.hyperplane_splits(X):
        sign = np.where(split, 1.0, -1.0)
        # find theta with sign_j * <g_j, theta> >= 1 (strict separation, scaled)
        res = linprog(np.zeros(3), A_ub=-(sign[:, None] * G), b_ub=-np.ones(8), bounds=[(None, None)] * 3)
        assert res.status == 0, split


def _net_data(widths, D, n, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (D, n))
    torch.manual_seed(seed)
    net = depth.mlp(widths)
    with torch.no_grad():
        y = net(torch.as_tensor(X))[:, 0].numpy()
    return X, y


@pytest.mark.parametrize(("n", "width", "D"), [(1, 1, 7), (1, 2, 9), (2, 2, 6)])
def test_exact_erm_recovers_data_from_the_architecture(n, width, D):
    X, y = _net_data([n, width, 1], D, n, seed=D)
    result = depth.exact_erm_one_hidden_layer(X, y, width)
    assert result.loss < 1e-20


@pytest.mark.parametrize(("n", "width", "D", "seed"), [(1, 2, 8, 0), (2, 1, 6, 1), (2, 2, 5, 2)])
def test_exact_erm_never_worse_than_sgd_and_its_model_has_its_loss(n, width, D, seed):
    rng = np.random.default_rng(seed)
    X, y = rng.uniform(-1, 1, (D, n)), rng.normal(size=D)
    result = depth.exact_erm_one_hidden_layer(X, y, width)
    assert result.programs == math.comb(2 * result.splits - 1, width)
    assert result.programs_algorithm1 == 2**width * result.splits**width
    assert depth.hidden_widths(result.model) == [width]
    assert abs(result.loss - depth.mse(result.model, X, y)) < 1e-12
    assert abs(result.loss - result.objective) < 1e-10
    sgd = depth.train_restarts([n, width, 1], X, y, restarts=16, steps=400, lr=0.03, seed=seed)
    assert result.loss <= sgd.losses.min() + 1e-10


TRANSFORMS = {
    "translated by 1000": (lambda X: X + 1000.0, lambda y: y),
    "scaled by 1e-4": (lambda X: X * 1e-4, lambda y: y),
    "scaled by 1e4 and moved": (lambda X: X * 1e4 - 7.0, lambda y: y),
    "targets scaled by 1e-4 and moved": (lambda X: X, lambda y: 1e-4 * y + 5.0),
}


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize(("n", "width", "D", "seed"), [(1, 1, 6, 3), (1, 2, 6, 4), (2, 1, 5, 5), (2, 2, 5, 6)])
def test_exact_erm_gives_the_same_optimum_for_translated_and_rescaled_data(transform, n, width, D, seed):
    rng = np.random.default_rng(seed)
    X, y = rng.uniform(0, 1, (D, n)), rng.normal(size=D)
    move_x, move_y = TRANSFORMS[transform]
    base = depth.exact_erm_one_hidden_layer(X, y, width)
    moved = depth.exact_erm_one_hidden_layer(move_x(X), move_y(y), width)
    y_factor = (move_y(np.array([1.0])) - move_y(np.array([0.0])))[0] ** 2  # the squared loss scales with y
    assert moved.objective == pytest.approx(base.objective * y_factor, rel=1e-7, abs=1e-15 * y_factor)
    for result, targets in ((base, y), (moved, move_y(y))):
        assert abs(result.loss - result.objective) <= depth.ERM_TOL * np.mean(targets**2)
        assert result.loss == pytest.approx(depth.mse(result.model, *((X, y) if result is base else
                                                                       (move_x(X), move_y(y)))))


def test_exact_erm_d12_width2_is_fast():
    rng = np.random.default_rng(12)
    X, y = rng.uniform(-1, 1, (12, 1)), rng.normal(size=12)
    result = depth.exact_erm_one_hidden_layer(X, y, 2)
    assert (result.splits, result.programs, result.programs_algorithm1) == (24, math.comb(47, 2), 4 * 24**2)
    assert result.seconds < 10


def test_exact_erm_bad_inputs():
    X, y = np.random.default_rng(0).uniform(-1, 1, (6, 1)), np.zeros(6)
    with pytest.raises(ValueError, match="one target per row"):
        depth.exact_erm_one_hidden_layer(X, y[:5], 2)
    with pytest.raises(ValueError, match="width=0 must be at least 1"):
        depth.exact_erm_one_hidden_layer(X, y, 0)
    with pytest.raises(TypeError, match="width must be an integer"):
        depth.exact_erm_one_hidden_layer(X, y, 2.0)
    with pytest.raises(ValueError, match="needs 5,071,628,121 convex programs"):
        depth.exact_erm_one_hidden_layer(np.random.default_rng(0).uniform(-1, 1, (40, 2)), np.zeros(40), 3)
    with pytest.raises(ValueError, match="general position"):
        depth.exact_erm_one_hidden_layer(np.array([[0.0], [1.0], [1.0]]), np.zeros(3), 1)
    with pytest.raises(ValueError, match="at least n \\+ 1 = 3"):
        depth.exact_erm_one_hidden_layer(np.zeros((2, 2)), np.zeros(2), 1)
    with pytest.raises(ValueError, match="X must have shape"):
        depth.exact_erm_one_hidden_layer(np.zeros((2, 2, 2)), np.zeros(2), 1)


# --- training -------------------------------------------------------------------------------------------------


def test_train_restarts_equals_training_each_net_alone():
    rng = np.random.default_rng(0)
    X, y = rng.uniform(-1, 1, (10, 2)), rng.normal(size=10)
    widths, steps, lr = [2, 3, 2, 1], 25, 0.05
    batched = depth.train_restarts(widths, X, y, restarts=3, steps=steps, lr=lr, seed=7)
    torch.manual_seed(7)
    nets = [depth.mlp(widths) for _ in range(3)]
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    for net, trained, loss in zip(nets, batched.models, batched.losses):
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        for _ in range(steps):
            opt.zero_grad()
            ((net(Xt)[:, 0] - yt) ** 2).mean().backward()
            opt.step()
        for p, q in zip(net.parameters(), trained.parameters()):
            torch.testing.assert_close(p, q, rtol=0, atol=1e-10)
        assert loss == pytest.approx(depth.mse(net, X, y), abs=1e-12)
    with pytest.raises(ValueError, match="must start with the input dimension 2 and end with 1"):
        depth.train_restarts([1, 3, 1], X, y, restarts=1, steps=1)


def test_deep_vs_shallow_matches_parameter_counts():
    runs = depth.deep_vs_shallow(2, [1, 3], restarts=2, steps=5, points=33)
    assert len(runs) == 2 * 2 * 2
    for run in runs:
        L = run.hidden_layers if run.family == "deep" else run.width // 2
        assert run.params == 6 * L + 1
        assert run.width == (2 if run.family == "deep" else 2 * L)


# --- arguments ------------------------------------------------------------------------------------------------


def test_mse_leaves_the_callers_model_as_it_is():
    model = depth.mlp([1, 3, 1], dtype=torch.float32)
    x = np.linspace(0, 1, 5)[:, None]
    loss = depth.mse(model, x, np.zeros(5))
    assert all(p.dtype == torch.float32 for p in model.parameters())
    with torch.no_grad():
        assert loss == pytest.approx(float((model(torch.as_tensor(x, dtype=torch.float32)) ** 2).mean()), rel=1e-6)


@pytest.mark.parametrize("lr", [float("nan"), float("inf"), 0.0, -1.0])
def test_train_restarts_refuses_a_bad_learning_rate(lr):
    X, y = np.linspace(0, 1, 4)[:, None], np.zeros(4)
    with pytest.raises(ValueError, match="^lr="):
        depth.train_restarts([1, 2, 1], X, y, restarts=2, steps=1, lr=lr)


def test_numpy_numbers_are_accepted_and_absurd_sizes_refused_before_allocating():
    X, y = np.linspace(0, 1, 4)[:, None], np.zeros(4)
    result = depth.train_restarts([1, np.int64(2), 1], X, y, restarts=np.int32(2), steps=np.int64(1),
                                  lr=np.float32(0.01), progress=False)
    assert len(result.losses) == 2
    with pytest.raises(ValueError, match=r"mlp\(widths=\[1, 100000, 100000, 1\]\) would need about 74.5 GiB"):
        depth.mlp([1, 10**5, 10**5, 1])
    with pytest.raises(ValueError, match="would need about"):
        depth.max_net(10**6)
    with pytest.raises(ValueError, match=r"M=nan must be a finite number"):
        depth.zigzag_net([0.5], float("nan"))
    with pytest.raises(ValueError, match=r"widths\[1\]=0 must be at least 1"):
        depth.pieces_upper_bound([2, 0])
