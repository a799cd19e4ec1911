"""dcnn_helpers.merge_run: parameter counts, shapes, the merge algebra, path lengths, the identity merge, bad input."""

from fractions import Fraction

import numpy as np
import pytest
import torch

from dcnn_helpers import merge_run as mr


@pytest.mark.parametrize(
    ("builder", "depth", "expected"),
    [(mr.dmrnet, 56, 1_710_426), (mr.resnet, 110, 1_730_714)],  # spec [checked]: 1,710k and 1,731k
)
def test_parameter_counts_of_the_spec(builder, depth, expected):
    assert mr.count_parameters(builder(depth)) == expected


@pytest.mark.parametrize("n", [1, 2, 9])
def test_equal_parameter_families_differ_only_at_transitions(n):
    depths = mr.matched_depths(n)
    counts = {kind: mr.count_parameters(mr.BUILDERS[kind](depth)) for kind, depth in depths.items()}
    projections = (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)  # 1x1 conv + BN at the two stride-2 transitions
    assert counts["dmrnet"] - counts["inception"] == projections  # DMRNet: one projection per stream
    # ResNet: per transition one in->out branch and one out->out branch; DMRNet: two in->out branches, two projections
    assert counts["resnet"] - counts["dmrnet"] == (32 - 16) * 32 * 9 + (64 - 32) * 64 * 9 - projections


@pytest.mark.parametrize("builder", [mr.resnet, mr.inception_like, mr.dmrnet])
@pytest.mark.parametrize("widen", [1, 2])
def test_output_shapes(builder, widen):
    torch.manual_seed(0)
    model = builder(8, num_classes=7, widen=widen)
    out = model(torch.randn(3, 3, 32, 32))
    assert out.shape == (3, 7)
    assert model.head[-1].in_features == 64 * widen


def test_block_shapes_at_a_transition():
    block = mr.MergeRunBlock(16, 32, stride=2)
    x, y = torch.randn(2, 16, 8, 8), torch.randn(2, 16, 8, 8)
    out_x, out_y = block((x, y))
    assert out_x.shape == out_y.shape == (2, 32, 4, 4)
    assert mr.MergeRunBlock(16, 32, stride=2, last=True)((x, y)).shape == (2, 32, 4, 4)


def test_merge_matrix_is_idempotent_projection():
    m = mr.merge_matrix(5)
    assert m.shape == (10, 10) and m.dtype == torch.float64
    torch.testing.assert_close(m @ m, m, rtol=0, atol=1e-15)
    assert torch.equal(m, m.T)
    eig = torch.linalg.eigvalsh(m)
    torch.testing.assert_close(eig, torch.tensor([0.0] * 5 + [1.0] * 5, dtype=torch.float64), rtol=0, atol=1e-12)


def test_unrolled_form_matches_the_loop():
    torch.manual_seed(1)
    dim, steps = 6, 7
    weights = [torch.randn(2 * dim, 2 * dim, dtype=torch.float64) / dim for _ in range(steps)]
    branches = [lambda z, w=w: torch.tanh(w @ z) for w in weights]  # any maps work: the identity uses only M^2 = M
    z0 = torch.randn(2 * dim, dtype=torch.float64)
    m = mr.merge_matrix(dim)
    loop, unrolled = mr.linear_run(z0, branches, m), mr.unrolled_run(z0, branches, m)
    assert len(loop) == len(unrolled) == steps + 1
    for a, b in zip(loop, unrolled):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    # the unrolled form needs idempotence: with a non-idempotent mixing matrix it fails
    not_idempotent = 0.9 * m
    wrong = mr.unrolled_run(z0, branches, not_idempotent)[-1]
    assert (wrong - mr.linear_run(z0, branches, not_idempotent)[-1]).abs().max() > 1e-3


@pytest.mark.parametrize(("kind", "expected"), [("resnet", Fraction(2)), ("inception", Fraction(4, 3)),
                                                ("dmrnet", Fraction(2, 3))])
def test_average_path_length_per_block(kind, expected):
    lengths = mr.enumerate_path_lengths(mr.unit_edges(kind))
    assert Fraction(int(lengths.sum()), len(lengths)) == expected
    assert mr.average_path_length(mr.path_length_counts(mr.unit_edges(kind))) == expected


@pytest.mark.parametrize("kind", mr.KINDS)
def test_counting_equals_enumerating_whole_networks(kind):
    blocks = mr.network_edges(kind, 20)
    lengths = mr.enumerate_path_lengths(blocks)
    counts = mr.path_length_counts(blocks)
    assert list(counts) == list(np.bincount(lengths, minlength=len(counts)))


def test_whole_network_path_lengths_by_hand():
    n = 9  # ResNet-110: 54 residual blocks, each path takes each branch or not: Binomial(54, 1/2) * 2 layers
    counts = mr.path_length_counts(mr.network_edges("resnet", 12 * n + 2))
    assert sum(counts) == 2**54 and mr.average_path_length(counts) == 54
    counts = mr.path_length_counts(mr.network_edges("inception", 6 * n + 2))
    assert sum(counts) == 3**27 and mr.average_path_length(counts) == 36
    # DMRNet: 26 merge-and-run blocks (each stream has 3 ways on, one through a branch) then the last block
    counts = mr.path_length_counts(mr.network_edges("dmrnet", 6 * n + 2))
    assert sum(counts) == 2 * 3**26 * 2 and mr.average_path_length(counts) == Fraction(2, 3) * 26 + 1


def test_identity_merge_gives_two_independent_residual_streams():
    torch.manual_seed(2)
    block = mr.MergeRunBlock(8, 16, stride=2, merge="identity").double().eval()
    res_a, res_b = mr.ResidualBlock(8, 16, stride=2).double().eval(), mr.ResidualBlock(8, 16, stride=2).double().eval()
    for res, branch, shortcut in ((res_a, block.branch_a, block.shortcut_a), (res_b, block.branch_b, block.shortcut_b)):
        res.branch.load_state_dict(branch.state_dict())
        res.shortcut.load_state_dict(shortcut.state_dict())
    x, y = torch.randn(2, 8, 8, 8, dtype=torch.float64), torch.randn(2, 8, 8, 8, dtype=torch.float64)
    out_x, out_y = block((x, y))
    torch.testing.assert_close(out_x, res_a(x), rtol=0, atol=1e-12)
    torch.testing.assert_close(out_y, res_b(y), rtol=0, atol=1e-12)
    # ...and the x output no longer depends on y, unlike with the average merge
    y2 = torch.randn_like(y)
    torch.testing.assert_close(block((x, y2))[0], out_x, rtol=0, atol=0)
    block.merge = "average"
    assert not torch.allclose(block((x, y2))[0], block((x, y))[0])


def test_average_merge_block_matches_its_equations():
    torch.manual_seed(3)
    block = mr.MergeRunBlock(4, 4).double().eval()
    x, y = torch.randn(1, 4, 6, 6, dtype=torch.float64), torch.randn(1, 4, 6, 6, dtype=torch.float64)
    m = (x + y) / 2
    out_x, out_y = block((x, y))
    torch.testing.assert_close(out_x, torch.relu(block.branch_a(x) + m), rtol=0, atol=1e-12)
    torch.testing.assert_close(out_y, torch.relu(block.branch_b(y) + m), rtol=0, atol=1e-12)
    block.last = True
    torch.testing.assert_close(block((x, y)), torch.relu(m + block.branch_a(x) + block.branch_b(y)), rtol=0, atol=1e-12)


def test_gradient_norms_one_per_block():
    torch.manual_seed(4)
    model = mr.dmrnet(8)
    norms = mr.block_gradient_norms(model, torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]))
    assert norms.shape == (3,) and bool((norms > 0).all())
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize(("depth", "nearest"), [(57, "56 or 62"), (110.0, "integer"), (2, "8"), (50, None)])
def test_bad_depth_suggests_nearest_valid(depth, nearest):
    if nearest is None:
        assert mr.blocks_per_stage(depth) == 8
        return
    error = TypeError if isinstance(depth, float) else ValueError
    with pytest.raises(error, match=nearest):
        mr.dmrnet(depth)


@pytest.mark.parametrize(("widen", "error"), [(0, ValueError), (-1, ValueError), (1.5, TypeError)])
def test_bad_widen(widen, error):
    with pytest.raises(error, match="widen"):
        mr.resnet(14, widen=widen)


def test_bad_merge_and_kind():
    with pytest.raises(ValueError, match="merge='sum'"):
        mr.MergeRunBlock(4, 4, merge="sum")
    with pytest.raises(ValueError, match="kind='densenet'"):
        mr.block_edges("densenet")


def test_absurd_widths_are_refused_with_an_estimate():
    with pytest.raises(ValueError, match=r"resnet\(depth=8, widen=10000\) would need about [\d.]+ TiB"):
        mr.resnet(8, widen=10**4)
    assert mr.count_parameters(mr.dmrnet(np.int64(8), num_classes=np.int32(3))) > 0


@pytest.mark.parametrize("training", [False, True])
def test_merge_and_run_block_is_one_wider_block_with_grouped_convolutions(training):
    torch.manual_seed(0)
    block = mr.MergeRunBlock(8, 8).double()
    for bn in (m for m in block.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.normal_(), bn.running_var.uniform_(0.5, 2.0), bn.weight.data.normal_(), bn.bias.data.normal_()
    block.train(training)
    wide = mr.as_wide_block(block)
    x, y = torch.randn(3, 8, 6, 6, dtype=torch.float64), torch.randn(3, 8, 6, 6, dtype=torch.float64)
    assert torch.equal(wide(torch.cat([x, y], 1)), torch.cat(block((x, y)), 1))
    assert mr.count_parameters(wide) == mr.count_parameters(block)
    assert all(conv.groups == 2 for conv in wide.modules() if isinstance(conv, torch.nn.Conv2d))


def test_as_wide_block_refuses_blocks_that_change_shape_or_do_not_merge():
    for block in (mr.MergeRunBlock(8, 16, stride=2), mr.MergeRunBlock(8, 8, last=True),
                  mr.MergeRunBlock(8, 8, merge="identity"), mr.ResidualBlock(8, 8)):
        with pytest.raises(ValueError, match="block must"):
            mr.as_wide_block(block)
