"""dcnn_helpers.regions: exact 1-D pieces and 2-D regions, the grid estimate, the bounds, bad input."""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.optimize import linprog
from torch import nn

from dcnn_helpers import regions

BOX = (-1.0, 1.0, -1.0, 1.0)


def torch_patterns(model: nn.Sequential, x: np.ndarray) -> np.ndarray:
    """Activation patterns from the torch forward pass itself: the input of every activation layer, > 0."""
    seen = []
    hooks = [
        layer.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0] > 0))
        for layer in model
        if isinstance(layer, (nn.ReLU, nn.LeakyReLU))
    ]
    with torch.no_grad():
        model(torch.as_tensor(x, dtype=torch.float64))
    for hook in hooks:
        hook.remove()
    return torch.cat(seen, dim=1).numpy()


def torch_output(model: nn.Sequential, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.as_tensor(x, dtype=torch.float64)).numpy()


def set_weights(model: nn.Sequential, *tensors) -> nn.Sequential:
    linears = [layer for layer in model if isinstance(layer, nn.Linear)]
    with torch.no_grad():
        for layer, (weight, bias) in zip(linears, zip(tensors[::2], tensors[1::2])):
            layer.weight.copy_(torch.tensor(weight, dtype=torch.float64))
            layer.bias.copy_(torch.tensor(bias, dtype=torch.float64))
    return model


def random_points_in(partition, rng, per_region: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Random convex combinations of each region's vertices (strictly inside), and their region index."""
    weights = rng.dirichlet(np.ones(partition.vertices.shape[1]), size=(len(partition), per_region))
    valid = np.arange(partition.vertices.shape[1]) < partition.n_vertices[:, None]
    weights = weights * valid[:, None, :]
    weights /= weights.sum(axis=2, keepdims=True)
    points = np.einsum("rpk,rkc->rpc", weights, partition.vertices).reshape(-1, 2)
    return points, np.repeat(np.arange(len(partition)), per_region)


# --- one layer: Zaslavsky ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 5, 30])
def test_one_layer_in_general_position_gives_zaslavsky_count(n):
    model = regions.he_network([n], seed=n)
    w, b = model[0].weight.detach().numpy(), model[0].bias.detach().numpy()
    corners = [np.linalg.solve(w[[i, j]], -b[[i, j]]) for i, j in itertools.combinations(range(n), 2)]
    half = 1.0 + 1.1 * max([np.abs(c).max() for c in corners], default=0.0)  # every crossing inside the box
    partition = regions.linear_regions_2d(model, (-half, half, -half, half))
    assert len(partition) == regions.zaslavsky(n) == 1 + n + math.comb(n, 2)
    assert regions.zaslavsky(30) == 466


# --- the partition is exact -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deep_partition():
    model = regions.he_network([8, 8, 8], seed=3)
    return model, regions.linear_regions_2d(model, BOX)


def test_polygons_tile_the_box_and_are_convex_counterclockwise(deep_partition):
    _, partition = deep_partition
    assert partition.areas.sum() == pytest.approx(4.0, rel=1e-10)
    assert partition.areas.min() > 0
    for poly in partition.polygons:
        edges = np.roll(poly, -1, axis=0) - poly
        turns = edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1] - edges[:, 1] * np.roll(edges, -1, axis=0)[:, 0]
        assert turns.min() > -1e-12


def test_interior_points_reproduce_patterns_and_affine_maps(deep_partition):
    model, partition = deep_partition
    points, owner = random_points_in(partition, np.random.default_rng(0))
    assert np.array_equal(torch_patterns(model, partition.interior_points), partition.patterns)
    assert np.array_equal(torch_patterns(model, points), partition.patterns[owner])
    predicted = np.einsum("rok,rk->ro", partition.maps[owner, :, :2], points) + partition.maps[owner, :, 2]
    np.testing.assert_allclose(predicted, torch_output(model, points), rtol=1e-9, atol=1e-12)
    assert len({row.tobytes() for row in partition.patterns}) == len(partition), "patterns must be distinct"
    assert np.array_equal(partition.locate(points), owner)


def test_merged_pieces_have_one_map_and_join_only_equal_neighbours(deep_partition):
    _, partition = deep_partition
    labels = partition.pieces
    assert partition.n_pieces <= len(partition)
    for piece in np.unique(labels):
        maps = partition.maps[labels == piece]
        np.testing.assert_allclose(maps, np.broadcast_to(maps[0], maps.shape), atol=1e-9 * np.abs(maps).max())


def test_grid_never_exceeds_exact_and_reaches_it_once_finer_than_every_region():
    model = regions.he_network([5, 5], seed=1)
    partition = regions.linear_regions_2d(model, BOX)
    # Chebyshev radius of every region (largest inscribed disc), by linear programming on its edges.
    radii = []
    for poly in partition.polygons:
        edges = np.roll(poly, -1, axis=0) - poly
        normals = np.stack([edges[:, 1], -edges[:, 0]], axis=1)
        lengths = np.linalg.norm(normals, axis=1)
        a_ub = np.column_stack([normals, lengths])
        res = linprog([0, 0, -1], A_ub=a_ub, b_ub=(normals * poly).sum(axis=1), bounds=[(None, None)] * 3)
        radii.append(res.x[2])
    # A grid of spacing h has a point in every disc of radius h / sqrt(2).
    resolution = int(np.ceil(2.0 * np.sqrt(0.5) / min(radii))) + 2
    assert resolution < 3000, "pick a seed whose regions are not tiny"
    counts = [regions.grid_regions(model, BOX, res) for res in (5, 17, 65, resolution)]
    assert all(c <= len(partition) for c in counts)
    assert counts[-1] == len(partition)
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 65), np.linspace(-1, 1, 65)), -1).reshape(-1, 2)
    found = {row.tobytes() for row in regions.activation_patterns(model, grid)}
    assert found <= {row.tobytes() for row in partition.patterns}


# --- hand-built networks ----------------------------------------------------------------------------------------


def test_three_lines_with_a_silent_unit_give_seven_regions_four_pieces():
    # Lines x = 0, y = 0, x + y = 1/2 all cross inside [-1, 1]^2: 7 regions; the third unit's output weight is 0,
    # so its line does not bend the function: 4 linear pieces.
    model = set_weights(
        nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)),
        [[1, 0], [0, 1], [1, 1]], [0, 0, -0.5], [[1, 1, 0]], [0],
    )
    partition = regions.linear_regions_2d(model, BOX)
    assert (len(partition), partition.n_pieces) == (7, 4)
    assert partition.areas.sum() == pytest.approx(4.0)


def test_units_sharing_a_line_count_once():
    # |x| + |y| from four units on two lines: 4 regions, 4 pieces; along a line through 0: 2 pieces, kink at 0.
    model = set_weights(
        nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1)),
        [[1, 0], [-1, 0], [0, 1], [0, -1]], [0, 0, 0, 0], [[1, 1, 1, 1]], [0],
    )
    partition = regions.linear_regions_2d(model, BOX)
    assert (len(partition), partition.n_pieces) == (4, 4)
    pieces = regions.pieces_1d(model, [-1.0, -0.5], [1.0, 0.5])
    assert len(pieces) == 2
    np.testing.assert_allclose(pieces.breakpoints, [[0.0, 0.0]], atol=1e-12)


def tent_net(k: int) -> nn.Sequential:
    """The k-fold composition of the tent map t(x) = 2 ReLU(x) - 4 ReLU(x - 1/2)."""
    layers = []
    for _ in range(k):
        layers += [nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1)]
    return set_weights(nn.Sequential(*layers), *([[[1], [1]], [0, -0.5], [[2, -4]], [0]] * k))


@pytest.mark.parametrize("k", [1, 2, 5, 10])
def test_sawtooth_has_two_to_the_k_pieces_at_dyadic_breakpoints(k):
    pieces = regions.pieces_1d(tent_net(k), 0.0, 1.0)
    assert len(pieces) == 2**k
    np.testing.assert_allclose(pieces.breakpoints, np.arange(1, 2**k) / 2**k, atol=1e-12)


def test_hat_function_has_four_pieces():
    hat = set_weights(nn.Sequential(nn.Linear(1, 3), nn.ReLU(), nn.Linear(3, 1)), [[1], [1], [1]], [1, 0, -1],
                      [[1, -2, 1]], [0])
    pieces = regions.pieces_1d(hat, -2.0, 2.0)
    assert len(pieces) == 4
    np.testing.assert_allclose(pieces.breakpoints, [-1.0, 0.0, 1.0])


def test_pieces_1d_of_a_deep_narrow_net_match_the_forward_pass():
    model = regions.he_network([3] * 8, n_in=1, seed=4, bias_std=0.5)
    pieces = regions.pieces_1d(model, -3.0, 3.0)
    assert len(pieces) > 3, "this check needs a net whose function is not collapsed"
    ends = pieces.piece_t
    t = np.random.default_rng(0).uniform(0, 1, 2000)
    np.testing.assert_allclose(pieces(t), torch_output(model, (-3 + 6 * t)[:, None]), rtol=1e-9, atol=1e-12)
    # affine between consecutive ends: the midpoint value is the mean of the end values
    mids = 0.5 * (ends[:-1] + ends[1:])
    at = lambda s: torch_output(model, (-3 + 6 * s)[:, None])[:, 0]  # noqa: E731
    np.testing.assert_allclose(at(mids), 0.5 * (at(ends[:-1]) + at(ends[1:])), rtol=1e-9, atol=1e-12)
    assert len(pieces) <= pieces.n_intervals


# --- LeakyReLU and planes ---------------------------------------------------------------------------------------


def test_leaky_relu_regions_patterns_and_maps():
    model = regions.he_network([6, 6], seed=2, activation="leaky_relu", negative_slope=0.2)
    partition = regions.linear_regions_2d(model, BOX)
    points, owner = random_points_in(partition, np.random.default_rng(1))
    assert np.array_equal(torch_patterns(model, points), partition.patterns[owner])
    predicted = np.einsum("rok,rk->ro", partition.maps[owner, :, :2], points) + partition.maps[owner, :, 2]
    np.testing.assert_allclose(predicted, torch_output(model, points), rtol=1e-9, atol=1e-12)
    relu = regions.he_network([6, 6], seed=2)  # same weights; the first layer's lines are the same
    one_layer = lambda m: nn.Sequential(*list(m)[:2], nn.Linear(6, 1).double())  # noqa: E731
    assert len(regions.linear_regions_2d(one_layer(model), BOX)) == len(regions.linear_regions_2d(one_layer(relu), BOX))


def test_plane_slice_of_a_5d_network_equals_the_folded_2d_network():
    model = regions.he_network([8, 8], n_in=5, seed=4)
    rng = np.random.default_rng(4)
    origin, u, v = rng.normal(size=(3, 5))
    partition = regions.linear_regions_2d(model, BOX, plane=(origin, u, v))
    folded = regions.he_network([8, 8], seed=4)
    with torch.no_grad():
        w, b = model[0].weight.numpy(), model[0].bias.numpy()
        folded[0].weight.copy_(torch.tensor(w @ np.stack([u, v], 1)))
        folded[0].bias.copy_(torch.tensor(w @ origin + b))
        for i in range(2, len(model)):
            if isinstance(model[i], nn.Linear):
                folded[i].load_state_dict(model[i].state_dict())
    assert len(partition) == len(regions.linear_regions_2d(folded, BOX))
    inputs = partition.to_input(partition.interior_points)
    assert np.array_equal(torch_patterns(model, inputs), partition.patterns)


# --- bounds -----------------------------------------------------------------------------------------------------


def test_bounds_checked_values_and_consistency():
    assert regions.serra_upper(2, [16, 16]) == 18_769
    assert regions.montufar2014_lower(2, [16, 16]) == 8_768
    for n in (3, 10, 30):  # one layer: the upper bounds are Zaslavsky's exact count
        assert regions.serra_upper(2, [n]) == regions.montufar2017_upper(2, [n]) == regions.zaslavsky(n)
    for widths in ([6, 6], [8, 7, 9], [12, 12, 12, 12]):
        assert regions.serra_lower(1, widths) == regions.max_pieces_1d(widths) == math.prod(w + 1 for w in widths)
        lower, upper = regions.montufar2014_lower(2, widths), regions.serra_upper(2, widths)
        assert lower <= regions.serra_lower(2, widths) <= upper <= regions.montufar2017_upper(2, widths)


@pytest.mark.parametrize("n0, widths", [(2, [3, 5, 4]), (3, [4, 2, 6]), (1, [3, 3])])
def test_serra_upper_matches_brute_force_enumeration(n0, widths):
    total = 0
    for js in itertools.product(*(range(n0 + 1) for _ in widths)):
        caps = [min([n0, *(w - j for w, j in zip(widths[:l], js[:l])), widths[l]]) for l in range(len(widths))]
        if all(j <= cap for j, cap in zip(js, caps)):
            total += math.prod(math.comb(w, j) for w, j in zip(widths, js))
    assert regions.serra_upper(n0, widths) == total


# --- bad input --------------------------------------------------------------------------------------------------


def test_bad_models_are_rejected_with_a_reason():
    with pytest.raises(TypeError, match="Tanh"):
        regions.linear_regions_2d(nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)))
    with pytest.raises(TypeError, match="Sequential"):
        regions.linear_regions_2d(nn.Linear(2, 1))
    with pytest.raises(ValueError, match="dimension 5.*plane"):
        regions.linear_regions_2d(regions.he_network([4], n_in=5))
    broken = regions.he_network([4])
    with torch.no_grad():
        broken[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        regions.linear_regions_2d(broken)
    with pytest.raises(ValueError, match="non-finite"):
        regions.pieces_1d(broken, [0, 0], [1, 1])


@pytest.mark.parametrize("box", [(1, -1, -1, 1), (-1, 1, 0, 0), (-1, 1, -1), (-1, float("inf"), -1, 1), "box"])
def test_bad_boxes_are_rejected(box):
    with pytest.raises(ValueError, match="box"):
        regions.linear_regions_2d(regions.he_network([4]), box)


def test_other_bad_arguments():
    model = regions.he_network([4])
    with pytest.raises(ValueError, match="resolution"):
        regions.grid_regions(model, BOX, 1)
    with pytest.raises(ValueError, match="independent"):
        regions.linear_regions_2d(regions.he_network([4], n_in=3), BOX, plane=([0, 0, 0], [1, 0, 0], [2, 0, 0]))
    with pytest.raises(ValueError, match="differ"):
        regions.pieces_1d(model, [0.5, 0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match="input size 2"):
        regions.pieces_1d(model, 0.0, 1.0)
    with pytest.raises(ValueError, match="widths"):
        regions.serra_upper(2, [])
    with pytest.raises(ValueError, match="3 \\* n0"):
        regions.serra_lower(2, [4, 4])
    with pytest.raises(ValueError, match="color"):
        regions.plot_partition(None, regions.linear_regions_2d(model, BOX), color="rainbow")


def test_bench_reports_regions_per_second(monkeypatch, capsys):
    (row,) = regions.bench([[4, 4]], repeat=1)
    assert row["regions"] == len(regions.linear_regions_2d(regions.he_network([4, 4]), BOX))
    assert row["regions_per_s"] == pytest.approx(row["regions"] / row["seconds"])
    monkeypatch.setattr(regions, "BENCH_WIDTHS", ([4, 4],))
    regions.main(["bench", "--repeat", "1"])
    assert f"[4, 4] {row['regions']:>9}" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        regions.main([])


# --- helpers used by the notebook -------------------------------------------------------------------------------


def test_activation_patterns_leave_a_float32_model_untouched():
    model = regions.he_network([4, 4]).float()
    points = np.random.default_rng(0).uniform(-1, 1, (50, 2))
    patterns = regions.activation_patterns(model, points)
    assert patterns.shape == (50, 8)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_decision_boundary_segments_lie_on_the_zero_set(deep_partition):
    model, partition = deep_partition
    segments = partition.boundary_segments()
    assert len(segments) > 0
    ends = segments.reshape(-1, 2)
    assert np.abs(torch_output(model, ends)).max() < 1e-9
    assert np.all(np.abs(ends) <= 1 + 1e-12)


def test_counting_during_training_records_every_checkpoint_and_learns():
    x, y = regions.two_spirals(64, seed=0)
    assert x.shape == (64, 2) and set(y.tolist()) == {0.0, 1.0}
    model = regions.he_network([8, 8], seed=0)
    history = regions.count_during_training(model, x, y, steps=30, checkpoints=[0, 10, 30], lr=1e-2)
    assert history["step"] == [0, 10, 30]
    assert history["regions"][-1] == len(regions.linear_regions_2d(model, BOX))
    assert all(p <= r for p, r in zip(history["pieces"], history["regions"]))
    assert history["loss"][-1] < history["loss"][0]
    with pytest.raises(ValueError, match="checkpoints"):
        regions.count_during_training(model, x, y, steps=5, checkpoints=[9])


def test_drawing_functions_draw_what_was_computed():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    partition = regions.linear_regions_2d(regions.he_network([4, 4], seed=3), BOX)
    fig, ax = plt.subplots()
    assert regions.plot_partition(ax, partition, color="piece") is ax
    assert ax.get_title() == f"{partition.n_pieces} linear pieces"
    pieces = regions.pieces_1d(tent_net(2), 0.0, 1.0)
    assert regions.plot_pieces(ax, pieces).get_title() == "4 linear pieces"
    with pytest.raises(TypeError, match="Partition2D"):
        regions.plot_partition(ax, pieces)
    with pytest.raises(TypeError, match="Pieces1D"):
        regions.plot_pieces(ax, partition)
    plt.close(fig)


def test_absurd_requests_are_refused_before_allocating():
    model = regions.he_network([4])
    with pytest.raises(ValueError, match=r"grid_regions\(resolution=1000000\) would need about [\d.]+ TiB"):
        regions.grid_regions(model, BOX, 10**6)
    with pytest.raises(ValueError, match="would need about"):
        regions.he_network([10**6, 10**6])
    with pytest.raises(ValueError, match="bias_std=nan must be a finite number"):
        regions.he_network([4], bias_std=float("nan"))
    with pytest.raises(ValueError, match=r"box\[1\]=inf must be a finite number"):
        regions.linear_regions_2d(model, (-1, float("inf"), -1, 1))
    assert regions.grid_regions(model, BOX, np.int64(5)) <= len(regions.linear_regions_2d(model, BOX))
