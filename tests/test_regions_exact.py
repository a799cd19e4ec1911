"""The region counters are exact: against an independent rational counter, on huge boxes and segments, on
hand-built nets with exactly concurrent lines, and (for a deep net) against an independent float64 re-check."""

import numpy as np
import pytest
import torch
from exact_regions import exact_pieces_1d, exact_regions
from torch import nn

from dcnn_helpers import regions


def patterns_of(partition) -> set[tuple[bool, ...]]:
    return {tuple(row) for row in partition.patterns.tolist()}


@pytest.mark.parametrize("widths, activation, seed", [([5, 5], "relu", 1), ([6, 6, 6], "relu", 2),
                                                      ([4, 4], "leaky_relu", 3)])
@pytest.mark.parametrize("half", [1.0, 1e3, 1e10, 1e100])
def test_regions_equal_the_rational_counter_on_boxes_of_any_size(widths, activation, seed, half):
    model = regions.he_network(widths, seed=seed, activation=activation)
    box = (-half, half, -half, half)
    partition = regions.linear_regions_2d(model, box)
    truth = exact_regions(model, box)
    assert len(partition) == len(truth)
    assert patterns_of(partition) == set(truth)


def test_a_larger_box_never_has_fewer_regions():
    model = regions.he_network([8, 8], seed=0)
    counts = [len(regions.linear_regions_2d(model, (-h, h, -h, h))) for h in (1.0, 1e3, 1e6, 1e10, 1e100, 1e300)]
    assert counts == sorted(counts) and counts[1] == counts[-1], counts  # every kink lies within 1e3 here


def test_a_translated_box_counts_the_regions_of_the_translated_network():
    shift = np.array([1e6, -3e7])
    moved = regions.he_network([6, 6], seed=4)
    with torch.no_grad():  # moved(x) = model(x - shift)
        moved[0].bias.sub_(moved[0].weight @ torch.as_tensor(shift))
    box = (-1.0, 1.0, -1.0, 1.0)
    far = (box[0] + shift[0], box[1] + shift[0], box[2] + shift[1], box[3] + shift[1])
    assert len(regions.linear_regions_2d(moved, far)) == len(exact_regions(moved, far))


def set_weights(model, *tensors):
    linears = [layer for layer in model if isinstance(layer, nn.Linear)]
    with torch.no_grad():
        for layer, (weight, bias) in zip(linears, zip(tensors[::2], tensors[1::2])):
            layer.weight.copy_(torch.tensor(weight, dtype=torch.float64))
            layer.bias.copy_(torch.tensor(bias, dtype=torch.float64))
    return model.double()


@pytest.mark.parametrize("half", [1.0, 1e8, 1e100])
def test_exactly_concurrent_lines_are_not_split_into_slivers(half):
    # x = 0, y = 0, x + y = 0 and x - y = 0 all pass through the origin: 8 regions, whatever the box
    model = set_weights(nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1)),
                        [[1, 0], [0, 1], [1, 1], [1, -1]], [0, 0, 0, 0], [[1, 2, 3, 4]], [0])
    partition = regions.linear_regions_2d(model, (-half, half, -half, half))
    assert len(partition) == 8 == len(exact_regions(model, (-half, half, -half, half)))


@pytest.mark.parametrize("gap", [1e-10, 1e-13, 1e-17])
def test_nearly_concurrent_lines_keep_their_tiny_triangle(gap):
    # the third line misses the crossing of the first two by `gap`: a triangle of area ~gap^2 exists and counts
    model = set_weights(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)),
                        [[1, 0], [0, 1], [1, 1]], [0, 0, gap], [[1, 1, 1]], [0])
    partition = regions.linear_regions_2d(model, (-1.0, 1.0, -1.0, 1.0))
    assert len(partition) == 7 == len(exact_regions(model, (-1.0, 1.0, -1.0, 1.0)))
    if gap < 1e-15:
        assert partition.exact_decisions > 0, "below float64's resolution: settled in exact arithmetic"


@pytest.mark.parametrize("half", [1.0, 1e10, 1e100, 1e300])
def test_pieces_1d_are_exact_on_long_segments(half):
    model = regions.he_network([10, 10], n_in=1, seed=0)
    assert len(regions.pieces_1d(model, -half, half)) == exact_pieces_1d(model, -half, half)


def test_pieces_1d_on_a_long_segment_of_a_2d_network():
    model = regions.he_network([8, 8], seed=0)
    near = regions.pieces_1d(model, [-1e3, -300.0], [1e3, 300.0])
    far = regions.pieces_1d(model, [-1e100, -3e99], [1e100, 3e99])
    assert len(near) == len(far) > 5
    np.testing.assert_allclose(far.breakpoints, near.breakpoints, rtol=1e-9, atol=1e-12)


def test_huge_boxes_that_float64_cannot_resolve_are_refused(monkeypatch):
    from dcnn_helpers import _region_engine

    monkeypatch.setattr(_region_engine, "MAX_EXACT_DECISIONS", 0)
    model = set_weights(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)),
                        [[1, 0], [0, 1], [1, 1]], [0, 0, 1e-17], [[1, 1, 1]], [0])
    with pytest.raises(ValueError, match="below float64's resolution.*smaller box"):
        regions.linear_regions_2d(model, (-1.0, 1.0, -1.0, 1.0))


def test_a_deep_partition_passes_an_independent_float64_recheck():
    """Every region's pattern, recomputed from the torch weights, keeps each unit on one side of the polygon."""
    model = regions.he_network([32] * 4, seed=0)
    partition = regions.linear_regions_2d(model, (-1.0, 1.0, -1.0, 1.0))
    linears = [m for m in model if isinstance(m, nn.Linear)]
    k = partition.vertices.shape[1]
    valid = np.arange(k) < partition.n_vertices[:, None]
    maps = np.zeros((len(partition), 3, 2))
    maps[:, 0, 0] = maps[:, 1, 1] = 1.0
    for layer, linear in enumerate(linears[:-1]):
        weight, bias = linear.weight.detach().numpy(), linear.bias.detach().numpy()
        pre = maps @ weight.T
        pre[:, 2] += bias
        bits = partition.patterns[:, partition.layer_slices[layer]]
        value = np.einsum("rkc,rcu->rku", partition.vertices, pre[:, :2]) + pre[:, 2][:, None, :]
        scale = np.einsum("rkc,rcu->rku", np.abs(partition.vertices), np.abs(pre[:, :2])) + np.abs(pre[:, 2])[:, None]
        rel = np.where(valid[..., None], value / scale, np.nan)
        assert not (bits & (np.nanmin(rel, axis=1) < -1e-9)).any(), f"layer {layer}: an active unit is negative"
        assert not (~bits & (np.nanmax(rel, axis=1) > 1e-9)).any(), f"layer {layer}: an inactive unit is positive"
        maps = pre * bits[:, None, :]
    assert len(np.unique(partition.patterns, axis=0)) == len(partition)
    assert partition.areas.sum() == pytest.approx(4.0, rel=1e-12) and partition.areas.min() > 0
