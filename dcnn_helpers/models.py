"""CIFAR networks by name: the speed-run network :class:`FastNet`, and the ResNet / DMRNet / inception-like
networks of notebook 06.

Introduced in notebook 07 (CIFAR-10 training on a GPU). Names: ``resnet-DEPTH``, ``dmrnet-DEPTH``,
``inception-DEPTH`` (from :mod:`dcnn_helpers.merge_run`, depth ``6n + 2``), each optionally widened with ``-wK``
(``dmrnet-32-w4``), and ``fast`` (or ``fast-wK``).
"""

from __future__ import annotations

import re

import torch
from torch import nn

from . import merge_run, validation

__all__ = ["ConvGroup", "FastNet", "MODEL_HELP", "build_model"]


class ConvGroup(nn.Sequential):
    """conv3x3 -> max-pool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU: one resolution stage of :class:`FastNet`.

    Introduced in notebook 07.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.MaxPool2d(2),  # pooling right after the first conv: the second conv runs on 4x fewer pixels
            nn.BatchNorm2d(out_channels, eps=1e-12, momentum=0.4),  # fast-moving running statistics for short runs
            nn.GELU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels, eps=1e-12, momentum=0.4),
            nn.GELU(),
        )
        for conv in (self[0], self[4]):
            # Identity-like start: output channel i begins as a copy of input channel i (the other output channels
            # keep their random start), so the deep stack starts close to a shallow one.
            with torch.no_grad():
                nn.init.dirac_(conv.weight[: conv.in_channels])


class FastNet(nn.Module):
    """The course's speed-run network, after Keller Jordan's airbench94 (arXiv:2404.00498, Sec. 3.1): ~2M parameters.

    A frozen 2x2 *patch-whitening* convolution (its filters are the eigenvectors of the covariance of 2x2 image
    patches, set from the data by :meth:`init_from_data`; only its bias learns), three :class:`ConvGroup` stages of
    widths ``(64, 256, 256) * widen``, a global max-pool and a linear layer whose output is scaled by 1/9 (small
    logits at the start suit large learning rates and label smoothing). Introduced in notebook 07.
    """

    def __init__(self, num_classes: int = 10, widen: int = 1) -> None:
        super().__init__()
        widths = tuple(w * validation.integer("widen", widen, 1) for w in (64, 256, 256))
        num_classes = validation.integer("num_classes", num_classes, 1)
        weights = sum(9 * a * b + 9 * b * b for a, b in zip((24, *widths[:2]), widths)) + widths[2] * num_classes
        validation.memory(f"FastNet(widen={widen}, num_classes={num_classes})", 4 * weights)
        self.whiten = nn.Conv2d(3, 24, kernel_size=2, bias=True)  # 12 eigen-directions of 2x2x3 patches, +/- each
        self.whiten.weight.requires_grad_(False)  # set from the data, then frozen
        nn.init.zeros_(self.whiten.bias)
        self.body = nn.Sequential(
            nn.GELU(),
            ConvGroup(24, widths[0]),  # 31x31 -> 15x15
            ConvGroup(widths[0], widths[1]),  # -> 7x7
            ConvGroup(widths[1], widths[2]),  # -> 3x3
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
            nn.Linear(widths[2], num_classes, bias=False),
        )
        self.logit_scale = 1 / 9

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.whiten(x)) * self.logit_scale

    @torch.no_grad()
    def init_from_data(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the (frozen) whitening filters from normalised training images (N x 3 x H x W).

        With C the covariance of all 2x2x3 patches and ``C = V diag(lam) V^T``, filter k is ``v_k / sqrt(lam_k +
        eps)`` and its negative (so that the GELU after it keeps both signs): the stem outputs decorrelated,
        unit-variance patch features from the first step on. The trainer calls this before training (and counts
        its time as training time).
        """
        patches = images.double().unfold(2, 2, 1).unfold(3, 2, 1)  # N x 3 x 31 x 31 x 2 x 2
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, 12)  # one row per patch, ordered (c, dy, dx)
        patches = patches - patches.mean(0)
        eigenvalues, eigenvectors = torch.linalg.eigh(patches.T @ patches / len(patches))
        filters = (eigenvectors / torch.sqrt(eigenvalues + eps)).T.reshape(12, 3, 2, 2)
        self.whiten.weight.copy_(torch.cat([filters, -filters]).to(self.whiten.weight))


MODEL_PATTERN = re.compile(r"(?:(?P<kind>resnet|dmrnet|inception)-(?P<depth>\d+)|fast)(?:-w(?P<widen>\d+))?")
MODEL_HELP = (
    "resnet-DEPTH, dmrnet-DEPTH or inception-DEPTH (DEPTH = 6n + 2: 8, 14, 20, ...), or fast; "
    "each with an optional -wK (widen by K)"
)
BUILDERS = {"resnet": merge_run.resnet, "dmrnet": merge_run.dmrnet, "inception": merge_run.inception_like}


def build_model(name: str, num_classes: int = 10) -> nn.Module:
    """The network called ``name`` (see the module docstring) with ``num_classes`` outputs. Introduced in notebook 07.

    ``resnet-56``, ``dmrnet-32-w4``, ``inception-20``, ``fast``, ``fast-w2``. Raises ValueError for an unknown
    name or an invalid depth.
    """
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string like 'resnet-20', got {type(name).__name__}")
    match = MODEL_PATTERN.fullmatch(name.strip().lower())
    if match is None:
        raise ValueError(f"model={name!r} is not a known model; use {MODEL_HELP}")
    widen = int(match["widen"] or 1)
    if widen < 1:
        raise ValueError(f"model={name!r}: the widen factor K of -wK must be at least 1")
    if match["kind"] is None:
        return FastNet(num_classes, widen=widen)
    return BUILDERS[match["kind"]](int(match["depth"]), num_classes=num_classes, widen=widen)
