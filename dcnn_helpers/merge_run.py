"""Merge-and-run mappings (Zhao et al., arXiv 1611.07718): blocks, networks, their algebra and their paths.

Introduced in notebook 06 (merge-and-run); notebook 07 trains the networks built here.

A merge-and-run block runs two residual branches side by side. With streams ``x`` and ``y`` and their average
``m = (x + y) / 2`` it computes ``x' = ReLU(H^a(x) + m)`` and ``y' = ReLU(H^b(y) + m)``. Three families of
CIFAR networks share one skeleton (stem, three stages of widths 16, 32, 64 times ``widen``, global average
pooling and a linear layer) and differ only in their blocks:

* :func:`resnet` -- basic post-activation residual blocks ``ReLU(x + H(x))``;
* :func:`inception_like` -- two branches on one stream, ``ReLU(x + H^a(x) + H^b(x))``;
* :func:`dmrnet` -- merge-and-run blocks on two streams; the last block outputs ``ReLU(m + H^a(x) + H^b(y))``.

Depth counts weighted layers along the network as the papers do: ``depth = 6 n + 2`` with ``n`` blocks per stage
(each block's branches are two conv layers deep). At equal parameters a DMRNet of depth ``6 n + 2`` matches a
ResNet of depth ``12 n + 2``: one merge-and-run block holds the weights of two residual blocks.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dcnn_helpers import validation

__all__ = ["STAGE_WIDTHS", "STEM_WIDTH", "KINDS", "MERGES", "LAYERS_PER_BRANCH", "Edge", "Branch", "projection",
           "ResidualBlock", "InceptionBlock", "MergeRunBlock", "WideBlock", "as_wide_block", "CifarNet", "blocks_per_stage", "resnet",
           "inception_like", "dmrnet", "count_parameters", "matched_depths", "BUILDERS", "merge_matrix", "BranchMap",
           "linear_run", "unrolled_run", "block_edges", "unit_edges", "network_edges", "enumerate_path_lengths",
           "path_length_counts", "average_path_length", "block_gradient_norms", "draw_blocks"]

STAGE_WIDTHS = (16, 32, 64)
STEM_WIDTH = 16
KINDS = ("resnet", "inception", "dmrnet")
MERGES = ("average", "identity")
LAYERS_PER_BRANCH = 2  # a residual branch is conv3x3-BN-ReLU-conv3x3-BN: two weighted layers

Edge = tuple[int, int, int]  # (input stream, output stream, weighted layers on the way)


# --------------------------------------------------------------------------------------------- building blocks


class Branch(nn.Sequential):
    """A residual branch H: conv3x3(stride)-BN-ReLU-conv3x3-BN. Introduced in notebook 06."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )


def projection(in_channels: int, out_channels: int, stride: int = 1) -> nn.Module:
    """The shortcut: identity when shapes agree, else a 1x1 conv (with ``stride``) + BN. Introduced in notebook 06."""
    if in_channels == out_channels and stride == 1:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
    )


class ResidualBlock(nn.Module):
    """Basic post-activation residual block ``ReLU(P(x) + H(x))``. Introduced in notebook 06."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.branch = Branch(in_channels, out_channels, stride)
        self.shortcut = projection(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.shortcut(x) + self.branch(x))


class InceptionBlock(nn.Module):
    """Inception-like block ``ReLU(P(x) + H^a(x) + H^b(x))``: two branches on one stream. Introduced in notebook 06."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.branch_a = Branch(in_channels, out_channels, stride)
        self.branch_b = Branch(in_channels, out_channels, stride)
        self.shortcut = projection(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.shortcut(x) + self.branch_a(x) + self.branch_b(x))


class MergeRunBlock(nn.Module):
    """Merge-and-run block on two streams. Introduced in notebook 06.

    ``merge="average"`` (the paper): ``x' = ReLU(H^a(x) + m)``, ``y' = ReLU(H^b(y) + m)`` with ``m`` the average of
    the two (projected) streams. ``merge="identity"`` skips the merge, leaving two independent residual streams.
    Each stream has its own projection ``P^a``, ``P^b`` at a stage transition. With ``last=True`` the block
    returns one tensor, ``ReLU(m + H^a(x) + H^b(y))``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, last: bool = False, merge: str = "average"
    ) -> None:
        super().__init__()
        validation.choice("merge", merge, MERGES)
        self.branch_a = Branch(in_channels, out_channels, stride)
        self.branch_b = Branch(in_channels, out_channels, stride)
        self.shortcut_a = projection(in_channels, out_channels, stride)
        self.shortcut_b = projection(in_channels, out_channels, stride)
        self.last, self.merge = last, merge

    def forward(self, streams: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        x, y = streams
        px, py = self.shortcut_a(x), self.shortcut_b(y)
        m = (px + py) / 2
        if self.last:
            return F.relu(m + self.branch_a(x) + self.branch_b(y))
        skip_x, skip_y = (m, m) if self.merge == "average" else (px, py)
        return F.relu(self.branch_a(x) + skip_x), F.relu(self.branch_b(y) + skip_y)


class WideBlock(nn.Module):
    """One residual block on a single stream of ``2c`` channels, read off a merge-and-run block (Zhao et al., Fig. 5).

    Its branch is conv3x3-BN-ReLU-conv3x3-BN with **grouped** convolutions (``groups=2``: the first ``c`` channels
    see only the first ``c``, the others only the others), and its skip connection is the linear idempotent map
    ``M`` that replaces both halves by their average: ``z' = ReLU(H(z) + M z)``. Built by :func:`as_wide_block`.
    Introduced in notebook 06.
    """

    def __init__(self, branch: nn.Sequential) -> None:
        super().__init__()
        self.branch = branch

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        half = z.shape[1] // 2
        mean = (z[:, :half] + z[:, half:]) / 2
        return F.relu(self.branch(z) + torch.cat([mean, mean], dim=1))


def as_wide_block(block: MergeRunBlock) -> WideBlock:
    """The same function as ``block`` (inside a stage: no stride, not the last block, averaging merge) written as
    one residual block of twice the width: the two branches become grouped convolutions, the merge its skip.

    ``WideBlock(cat(x, y)) == cat(*block((x, y)))``, in training mode as in eval mode (BatchNorm is per channel).
    Introduced in notebook 06.
    """
    if not isinstance(block, MergeRunBlock) or block.last or block.merge != "average":
        raise ValueError("block must be a MergeRunBlock inside a stage (last=False, merge='average')")
    conv_a = block.branch_a[0]
    if conv_a.stride != (1, 1) or conv_a.in_channels != conv_a.out_channels:
        raise ValueError("block must keep its shape (no stride, in_channels == out_channels): not a transition block")
    c = conv_a.out_channels
    wide = nn.Sequential(
        nn.Conv2d(2 * c, 2 * c, 3, padding=1, groups=2, bias=False), nn.BatchNorm2d(2 * c), nn.ReLU(inplace=True),
        nn.Conv2d(2 * c, 2 * c, 3, padding=1, groups=2, bias=False), nn.BatchNorm2d(2 * c),
    ).to(device=conv_a.weight.device, dtype=conv_a.weight.dtype)
    with torch.no_grad():
        for index in (0, 1, 3, 4):
            a, b, target = block.branch_a[index], block.branch_b[index], wide[index]
            for name, tensor in list(target.named_parameters()) + list(target.named_buffers()):
                if name != "num_batches_tracked":
                    tensor.copy_(torch.cat([getattr(a, name), getattr(b, name)]))
    wide.train(block.training)
    return WideBlock(wide)


# --------------------------------------------------------------------------------------------- networks


class CifarNet(nn.Module):
    """Stem (conv3x3-BN-ReLU), a list of blocks, global average pooling and a linear layer. Introduced in notebook 06.

    ``streams=2`` feeds the stem output into both streams of merge-and-run blocks.
    """

    def __init__(self, blocks: Sequence[nn.Module], width: int, num_classes: int, streams: int = 1) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, STEM_WIDTH, 3, padding=1, bias=False), nn.BatchNorm2d(STEM_WIDTH), nn.ReLU(inplace=True)
        )
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))
        self.streams = streams
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        state = self.stem(images)
        if self.streams == 2:
            state = (state, state)
        for block in self.blocks:
            state = block(state)
        return self.head(state)


def blocks_per_stage(depth: int) -> int:
    """``n`` for ``depth = 6 n + 2``; otherwise an error naming the nearest valid depths.

    Introduced in notebook 06.
    """
    depth = validation.integer("depth", depth)
    if depth >= 8 and (depth - 2) % 6 == 0:
        return (int(depth) - 2) // 6
    below = 6 * ((depth - 2) // 6) + 2
    nearest = [d for d in (below, below + 6) if d >= 8] or [8]
    raise ValueError(
        f"depth={depth} is not of the form 6n + 2 with n >= 1; nearest valid depths: "
        f"{' or '.join(map(str, nearest))}"
    )


def _build(kind: str, depth: int, num_classes: int, widen: int, merge: str = "average") -> CifarNet:
    n, widen = blocks_per_stage(depth), validation.integer("widen", widen, 1)
    num_classes = validation.integer("num_classes", num_classes, 1)
    branches = 1 if kind == "resnet" else 2
    weights = sum(2 * 9 * branches * n * (base * widen) ** 2 for base in STAGE_WIDTHS)  # the 3x3 convolutions
    validation.memory(f"{kind}(depth={depth}, widen={widen})", 4 * weights)
    blocks: list[nn.Module] = []
    in_channels = STEM_WIDTH
    for stage, base in enumerate(STAGE_WIDTHS):
        out_channels = base * widen
        for i in range(n):
            stride = 2 if stage > 0 and i == 0 else 1
            if kind == "dmrnet":
                last = stage == len(STAGE_WIDTHS) - 1 and i == n - 1
                blocks.append(MergeRunBlock(in_channels, out_channels, stride, last=last, merge=merge))
            elif kind == "inception":
                blocks.append(InceptionBlock(in_channels, out_channels, stride))
            else:
                blocks.append(ResidualBlock(in_channels, out_channels, stride))
            in_channels = out_channels
    return CifarNet(blocks, in_channels, int(num_classes), streams=2 if kind == "dmrnet" else 1)


def resnet(depth: int, num_classes: int = 10, widen: int = 1) -> CifarNet:
    """ResNet for 32x32 images: ``(depth - 2) / 6`` basic residual blocks per stage. Introduced in notebook 06."""
    return _build("resnet", depth, num_classes, widen)


def inception_like(depth: int, num_classes: int = 10, widen: int = 1) -> CifarNet:
    """Inception-like network: ``(depth - 2) / 6`` two-branch blocks per stage. Introduced in notebook 06."""
    return _build("inception", depth, num_classes, widen)


def dmrnet(depth: int, num_classes: int = 10, widen: int = 1, merge: str = "average") -> CifarNet:
    """DMRNet: ``(depth - 2) / 6`` merge-and-run blocks per stage on two streams. Introduced in notebook 06.

    ``merge="identity"`` drops the merge (two independent residual streams joined only at the end).
    """
    return _build("dmrnet", depth, num_classes, widen, merge)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters. Introduced in notebook 06."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def matched_depths(n: int) -> dict[str, int]:
    """Depths of equal-parameter ResNet, inception-like and DMRNet with ``n`` two-branch blocks per stage.

    One inception-like or merge-and-run block has the weights of two residual blocks. Introduced in notebook 06.
    """
    n = validation.integer("n", n, 1)
    return {"resnet": 12 * n + 2, "inception": 6 * n + 2, "dmrnet": 6 * n + 2}


BUILDERS: dict[str, Callable[..., CifarNet]] = {"resnet": resnet, "inception": inception_like, "dmrnet": dmrnet}


# --------------------------------------------------------------------------------------------- linear algebra


def merge_matrix(dim: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``M = 1/2 [[I, I], [I, I]]`` of size ``2 dim``: it replaces both streams by their average.

    Introduced in notebook 06.
    """
    dim = validation.integer("dim", dim, 1)
    validation.memory(f"merge_matrix(dim={dim})", 4 * dim * dim * 8)
    eye = torch.eye(dim, dtype=dtype)
    return 0.5 * torch.cat([torch.cat([eye, eye], 1), torch.cat([eye, eye], 1)], 0)


BranchMap = Callable[[torch.Tensor], torch.Tensor]


def linear_run(z0: torch.Tensor, branches: Sequence[BranchMap], merge: torch.Tensor) -> list[torch.Tensor]:
    """States of the ReLU-free recursion ``z_{t+1} = H_t(z_t) + M z_t`` by a direct loop. Introduced in notebook 06.

    ``z0`` is a vector (both streams stacked), each ``H_t`` maps such a vector to one, ``merge`` is ``M``.
    """
    states = [z0]
    for branch in branches:
        states.append(branch(states[-1]) + merge @ states[-1])
    return states


def unrolled_run(z0: torch.Tensor, branches: Sequence[BranchMap], merge: torch.Tensor) -> list[torch.Tensor]:
    """The same states from the unrolled form ``z_T = H_{T-1}(z_{T-1}) + M sum_{t<=T-2} H_t(z_t) + M z_0``.

    Valid because ``M`` is idempotent: a product of merges ``M^k`` collapses to ``M``, so every earlier branch
    output reaches ``z_T`` averaged once. Introduced in notebook 06.
    """
    states, earlier = [z0], torch.zeros_like(z0)  # earlier: sum of H_t(z_t) for t <= T - 2
    for branch in branches:
        newest = branch(states[-1])
        states.append(newest + merge @ (earlier + z0))
        earlier = earlier + newest
    return states


# --------------------------------------------------------------------------------------------- path lengths


def block_edges(kind: str, last: bool = False, layers: int = LAYERS_PER_BRANCH) -> list[Edge]:
    """The paths through one block as edges ``(input stream, output stream, weighted layers)``.

    ``resnet``: skip and branch; ``inception``: skip and two branches; ``dmrnet``: each stream reaches both outputs
    through the merge, and its own output through its branch; ``last`` DMRNet block: one output stream.
    Introduced in notebook 06.
    """
    validation.choice("kind", kind, KINDS)
    layers = validation.integer("layers", layers, 0)
    if kind == "resnet":
        return [(0, 0, 0), (0, 0, layers)]
    if kind == "inception":
        return [(0, 0, 0), (0, 0, layers), (0, 0, layers)]
    if last:
        return [(0, 0, 0), (1, 0, 0), (0, 0, layers), (1, 0, layers)]
    return [(0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0), (0, 0, layers), (1, 1, layers)]


def unit_edges(kind: str) -> list[list[Edge]]:
    """One equal-parameter unit: two residual blocks, one inception-like or one merge-and-run block.

    Introduced in notebook 06.
    """
    return [block_edges(kind)] * (2 if kind == "resnet" else 1)


def network_edges(kind: str, depth: int) -> list[list[Edge]]:
    """The block-by-block edges of a whole network (stem and head excluded). Introduced in notebook 06."""
    n = 3 * blocks_per_stage(depth)
    validation.choice("kind", kind, KINDS)
    if kind == "dmrnet":
        return [block_edges(kind)] * (n - 1) + [block_edges(kind, last=True)]
    return [block_edges(kind)] * n


def _streams(edges: Sequence[Edge], side: int) -> int:
    return 1 + max(edge[side] for edge in edges)


def enumerate_path_lengths(blocks: Sequence[Sequence[Edge]]) -> np.ndarray:
    """Every path from any input stream of the first block to any output of the last, listed one by one.

    Returns the length (weighted layers) of each path. Exponential in the number of blocks: for small networks and
    for checking :func:`path_length_counts`. Introduced in notebook 06.
    """
    if not blocks:
        raise ValueError("blocks must hold at least one block")
    frontier = [(s, 0) for s in range(_streams(blocks[0], 0))]  # (current stream, length so far), one per path
    for edges in blocks:
        frontier = [(out, length + extra) for stream, length in frontier for src, out, extra in edges if src == stream]
    return np.array([length for _, length in frontier], dtype=np.int64)


def path_length_counts(blocks: Sequence[Sequence[Edge]]) -> np.ndarray:
    """``counts[L]``: how many paths of ``L`` weighted layers the network has (exact Python integers).

    Dynamic programming over blocks: the same paths :func:`enumerate_path_lengths` lists, counted without listing
    them. Introduced in notebook 06.
    """
    if not blocks:
        raise ValueError("blocks must hold at least one block")
    longest = sum(max(edge[2] for edge in edges) for edges in blocks)
    counts = np.zeros((_streams(blocks[0], 0), longest + 1), dtype=object)
    counts[:, 0] = 1
    for edges in blocks:
        new = np.zeros((_streams(edges, 1), longest + 1), dtype=object)
        for src, out, extra in edges:
            new[out, extra:] += counts[src, : longest + 1 - extra]
        counts = new
    return counts.sum(axis=0)


def average_path_length(counts: np.ndarray) -> Fraction:
    """The exact mean length of the paths counted in ``counts`` (from :func:`path_length_counts`).

    Introduced in notebook 06.
    """
    total = sum(int(c) for c in counts)
    if total == 0:
        raise ValueError("counts holds no paths")
    return Fraction(sum(length * int(c) for length, c in enumerate(counts)), total)


# --------------------------------------------------------------------------------------------- gradients


def block_gradient_norms(model: CifarNet, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The norm of the loss gradient with respect to each block's parameters, first block first.

    One forward and backward pass of the cross-entropy loss on ``images`` (BatchNorm in training mode, as at the
    first step of training). Introduced in notebook 06.
    """
    if images.ndim != 4 or labels.shape != images.shape[:1]:
        raise ValueError(f"images must be N x 3 x H x W and labels N, got {tuple(images.shape)}, {tuple(labels.shape)}")
    model.train()
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(images), labels).backward()
    norms = [torch.sqrt(sum(p.grad.pow(2).sum() for p in block.parameters())) for block in model.blocks]
    model.zero_grad(set_to_none=True)
    return torch.stack(norms).detach()


# --------------------------------------------------------------------------------------------- picture


def draw_blocks(axes: Sequence) -> None:
    """Draw two residual blocks, an inception-like block and a merge-and-run block on three axes (input at the
    bottom, output at the top; boxes are residual branches, circles additions). Introduced in notebook 06."""
    if len(axes) != 3:
        raise ValueError(f"axes must hold 3 axes, got {len(axes)}")

    def node(ax, xy, text, box=True):
        style = dict(boxstyle="round,pad=0.35", fc="#dbe9f6", ec="#31688e") if box else dict(
            boxstyle="circle,pad=0.15", fc="white", ec="black")
        ax.text(*xy, text, ha="center", va="center", fontsize=11, bbox=style, zorder=3)

    def arrow(ax, start, end, color="black"):
        ax.annotate("", xy=end, xytext=start, zorder=2,
                    arrowprops=dict(arrowstyle="->", color=color, lw=1.4, shrinkA=11, shrinkB=11))

    skip = "#888888"
    ax = axes[0]  # two residual blocks in sequence
    x0, x1, x2 = (0.35, 0.04), (0.35, 0.47), (0.35, 0.9)
    for lo, hi, label, h in ((x0, x1, "$H_1$", (0.7, 0.25)), (x1, x2, "$H_2$", (0.7, 0.68))):
        node(ax, h, label)
        arrow(ax, lo, h), arrow(ax, h, hi), arrow(ax, lo, hi, skip)
    node(ax, x1, "+", box=False), node(ax, x2, "+", box=False)
    ax.text(0.35, -0.04, "$x$", ha="center")
    ax.set_title("two residual blocks")
    ax = axes[1]  # inception-like: two branches on one stream
    source, total = (0.5, 0.04), (0.5, 0.9)
    for h in ((0.18, 0.47), (0.82, 0.47)):
        arrow(ax, source, h), arrow(ax, h, total)
    node(ax, (0.18, 0.47), "$H^a$"), node(ax, (0.82, 0.47), "$H^b$")
    arrow(ax, source, total, skip), node(ax, total, "+", box=False)
    ax.text(0.5, -0.04, "$x$", ha="center")
    ax.set_title("inception-like block")
    ax = axes[2]  # merge-and-run: two streams, each adds the average of both
    xs, ys, merge = (0.2, 0.04), (0.8, 0.04), (0.5, 0.4)
    xa, yb = (0.2, 0.9), (0.8, 0.9)
    arrow(ax, xs, (0.15, 0.55)), arrow(ax, (0.15, 0.55), xa), arrow(ax, ys, (0.85, 0.55)), arrow(ax, (0.85, 0.55), yb)
    node(ax, (0.15, 0.55), "$H^a$"), node(ax, (0.85, 0.55), "$H^b$")
    for end in (xs, ys):
        arrow(ax, end, merge, skip)
    arrow(ax, merge, xa, skip), arrow(ax, merge, yb, skip)
    node(ax, merge, "$m$", box=False)
    node(ax, xa, "+", box=False), node(ax, yb, "+", box=False)
    ax.text(0.2, -0.04, "$x$", ha="center"), ax.text(0.8, -0.04, "$y$", ha="center")
    ax.set_title("merge-and-run block, $m = (x + y) / 2$")
    for ax in axes:
        ax.set(xlim=(0, 1), ylim=(-0.08, 1.02))
        ax.axis("off")
