"""One readable, fast trainer for every CIFAR experiment of the course, and its command line.

Introduced in notebook 07 (CIFAR-10 training on a GPU); notebooks 05 and 06 call :func:`fit` for their CIFAR runs.

Where the speed comes from, in the order a batch meets it (each trick is commented where it happens):

1. The whole data set lives on the device as uint8 (CIFAR-10 is 150 MB): no DataLoader, no worker processes, no
   host-to-device copy per step. Each step gathers its images by index, converts to float and normalises there.
2. Augmentation (random crop after padding by 4, horizontal flip) is done on the device, for the whole batch at
   once. The random numbers for an epoch come from one seeded CPU generator, so every device sees the same run.
3. On CUDA: bf16 autocast (tensor cores, half the memory traffic) and channels_last tensors (the layout cuDNN's
   fast convolution kernels use); ``torch.compile`` on request (``compile=True``), for networks where it helps.
4. Nesterov SGD, label smoothing, and a per-step learning rate that warms up linearly and then decays linearly to 0.
5. Evaluation averages the logits of each test image and its mirror image (flip test-time augmentation).
6. Time is measured with the device synchronised, and the floating-point work is counted with
   ``torch.utils.flop_counter.FlopCounterMode``, so the achieved TFLOP/s can be compared with the hardware's peak.

Robustness: a checkpoint after every epoch (model, optimiser including PLP state, scheduler, RNG states, epoch),
written to a temporary file and renamed, so Ctrl-C never leaves a broken one; resuming from it ends bit-identical
(on CPU) to a run that was never interrupted.

Command line (``--help`` lists every option)::

    python -m dcnn_helpers.train --data DIR --model NAME --epochs E [--batch-size B] [--lr LR] [--plp]
        [--limit-train N] [--seed S] [--device cpu|cuda] [--checkpoint PATH] [--resume] [--target-acc A]
        [--json PATH] [--sync-bn] [--dist-backend gloo|nccl] [--dist-timeout SECONDS]

Models by name: ``resnet-DEPTH``, ``dmrnet-DEPTH``, ``inception-DEPTH`` (from :mod:`dcnn_helpers.merge_run`,
depth ``6n + 2``), each optionally widened with ``-wK`` (``dmrnet-32-w4``), and ``fast`` (or ``fast-wK``), the
speed-run network of this module, :class:`FastNet`.

Several GPUs or machines: the same command runs under ``torchrun --nproc_per_node N -m dcnn_helpers.train ...``
(one process per GPU, DistributedDataParallel; :mod:`dcnn_helpers.distributed` has the commands, faults and
restarts). ``--batch-size`` stays the global batch: each rank takes an equal slice of every step's images
(:func:`dcnn_helpers.distributed.shard_epoch`) and keeps the whole uint8 data set on its own device; only rank 0
prints and writes files. Started without torchrun, nothing of this happens.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import config, data, distributed

__all__ = [
    "FastNet",
    "build_model",
    "DeviceData",
    "to_device",
    "EpochPlan",
    "epoch_plan",
    "step_batch",
    "augment_batch",
    "prepare_model",
    "lr_factor",
    "train_flops_per_image",
    "evaluate",
    "save_checkpoint",
    "load_checkpoint",
    "TrainResult",
    "fit",
    "matmul_tflops",
    "image_grid",
    "plot_curves",
    "main",
]

# ---------------------------------------------------------------------------------------------------------------
# Models


class ConvGroup(nn.Sequential):
    """conv3x3 -> max-pool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU: one resolution stage of :class:`FastNet`."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.MaxPool2d(2),  # pooling right after the first conv: the second conv runs on 4x fewer pixels
            nn.BatchNorm2d(out_channels, momentum=0.4),  # fast-moving running statistics suit short runs
            nn.GELU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels, momentum=0.4),
            nn.GELU(),
        )
        for conv in (self[0], self[4]):
            # Identity-like start: channel i of the output begins as a copy of input channel i (plus the default
            # random init on the other channels), so the deep stack starts close to a shallow one.
            with torch.no_grad():
                nn.init.dirac_(conv.weight[: conv.in_channels])


class FastNet(nn.Module):
    """The course's speed-run network, in the spirit of Keller Jordan's airbench94 (about 2M parameters at w1).

    A frozen 2x2 *patch-whitening* convolution (its filters are the eigenvectors of the covariance of 2x2 image
    patches, set from the data by :meth:`init_from_data`), three :class:`ConvGroup` stages of widths
    ``(64, 256, 256) * widen``, a global max-pool and a linear layer whose output is scaled by 1/9 (small logits
    at the start, which works well with large learning rates and label smoothing). Introduced in notebook 07.
    """

    def __init__(self, num_classes: int = 10, widen: int = 1) -> None:
        super().__init__()
        widths = (64 * widen, 256 * widen, 256 * widen)
        self.whiten = nn.Conv2d(3, 24, kernel_size=2, bias=True)  # 12 eigen-directions of 2x2x3 patches, +/- each
        self.whiten.weight.requires_grad_(False)  # set from the data, then frozen: only its biases are trained
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
        unit-variance patch features from the first step on. :func:`fit` calls this before training.
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
    if match["kind"] is None:
        if widen < 1:
            raise ValueError(f"model={name!r}: the widen factor K of -wK must be at least 1")
        return FastNet(num_classes, widen=widen)
    from . import merge_run

    builders = {"resnet": merge_run.resnet, "dmrnet": merge_run.dmrnet, "inception": merge_run.inception_like}
    return builders[match["kind"]](int(match["depth"]), num_classes=num_classes, widen=widen)


# ---------------------------------------------------------------------------------------------------------------
# Data on the device


@dataclass
class DeviceData:
    """A split held on the device: ``images`` uint8 N x 3 x 32 x 32, ``labels`` int64, and the normalisation."""

    images: torch.Tensor
    labels: torch.Tensor
    mean: torch.Tensor  # per channel, shape 1 x 3 x 1 x 1, in pixel units (0..255)
    std: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def normalised(self, index: torch.Tensor | slice, memory_format=torch.contiguous_format) -> torch.Tensor:
        """Images ``index`` as float32, normalised per channel; gathered and converted on the device."""
        x = self.images[index].float()
        return ((x - self.mean) / self.std).contiguous(memory_format=memory_format)


def to_device(ds: data.ImageData, device: torch.device) -> tuple[DeviceData, DeviceData]:
    """Move both splits of ``ds`` to ``device`` once, as uint8 (4x smaller than float32). Introduced in notebook 07.

    The normalisation (mean and standard deviation per channel) is computed from the training images.
    """
    train = ds.train_images.to(device).permute(0, 3, 1, 2).contiguous()  # HWC files -> NCHW tensors
    test = ds.test_images.to(device).permute(0, 3, 1, 2).contiguous()
    pixels = train.double().transpose(0, 1).reshape(3, -1)
    mean = pixels.mean(1).float().view(1, 3, 1, 1)
    std = pixels.std(1).float().view(1, 3, 1, 1)
    return (
        DeviceData(train, ds.train_labels.to(device), mean, std),
        DeviceData(test, ds.test_labels.to(device), mean, std),
    )


@dataclass
class EpochPlan:
    """Everything random about one epoch, drawn up front: the image order, crop offsets and flips per position."""

    order: torch.Tensor  # a permutation of the training indices
    shifts: torch.Tensor  # N x 2 crop offsets (dy, dx) in 0..2*pad
    flips: torch.Tensor  # N booleans

    def to(self, device: torch.device) -> EpochPlan:
        return EpochPlan(self.order.to(device), self.shifts.to(device), self.flips.to(device))


def epoch_plan(n: int, generator: torch.Generator, pad: int = 4) -> EpochPlan:
    """Draw one epoch's order and augmentation from a CPU ``generator`` (identical on every device and on resume).

    Introduced in notebook 07.
    """
    order = torch.randperm(n, generator=generator)
    shifts = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5
    return EpochPlan(order, shifts, flips)


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Full batches per epoch: the last partial batch is dropped (steady shapes), unless there is only one."""
    return max(n // batch_size, 1)


def step_batch(plan: EpochPlan, step: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The image indices, crop offsets and flips of step ``step`` of an epoch. Introduced in notebook 07.

    The one place that decides which images a step sees (a data-parallel version gives each process a slice).
    """
    positions = slice(step * batch_size, (step + 1) * batch_size)
    return plan.order[positions], plan.shifts[positions], plan.flips[positions]


def augment_batch(x: torch.Tensor, shifts: torch.Tensor, flips: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Random crop after reflect-padding by ``pad`` and horizontal flip, for a whole batch on its device.

    ``x`` is N x C x H x W; image i is cropped at offset ``shifts[i] = (dy, dx)`` of the padded image and mirrored
    where ``flips[i]``. One gather, no Python loop over images. Introduced in notebook 07.
    """
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")  # mirrored borders instead of black ones
    rows = (shifts[:, 0, None] + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = (shifts[:, 1, None] + torch.arange(w, device=x.device)).view(n, 1, 1, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    channel = torch.arange(c, device=x.device).view(1, c, 1, 1)
    cropped = padded[batch, channel, rows, cols]  # advanced indexing: cropped[i, c, r, s] = padded[i, c, dy+r, dx+s]
    return torch.where(flips.view(n, 1, 1, 1), cropped.flip(3), cropped)


# ---------------------------------------------------------------------------------------------------------------
# Model, optimiser, schedule, FLOPs, evaluation


def prepare_model(
    model: nn.Module, device: torch.device, compile: bool = False, sync_bn: bool = False
) -> tuple[nn.Module, nn.Module]:
    """Move ``model`` to ``device`` (channels_last on CUDA); returns ``(model, step_model)``. Introduced in notebook 07.

    ``step_model`` is what the training step calls: the model itself, wrapped in DistributedDataParallel under
    torchrun, and ``torch.compile``-d with ``compile`` (checkpoints always store the plain model's weights).
    ``sync_bn`` turns BatchNorm into SyncBatchNorm (:func:`dcnn_helpers.distributed.convert_sync_bn`).
    """
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    if sync_bn:
        model = distributed.convert_sync_bn(model, device)
    step_model = distributed.wrap(model, device)
    return model, (torch.compile(step_model) if compile else step_model)


def lr_factor(step: int, total_steps: int, warmup: float) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up over the first ``warmup`` fraction, then linear decay.

    Rises as ``(step + 1) / W`` for ``W = ceil(warmup * total_steps)`` steps to 1, then falls linearly, reaching
    ``1 / (total_steps - W)`` at the last step (never 0 while training). Introduced in notebook 07.
    """
    warm = min(math.ceil(warmup * total_steps), total_steps - 1)
    if step < warm:
        return (step + 1) / warm
    return max(total_steps - step, 1) / (total_steps - warm)


def _autocast(device: torch.device):
    """bf16 autocast on CUDA (matmuls and convolutions in bfloat16, reductions in float32); nothing on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_flops_per_image(model: nn.Module, device: torch.device, image_shape: Sequence[int] = (3, 32, 32)) -> float:
    """Floating-point operations to train on one image: 3x a forward pass (the backward pass costs about twice the
    forward), with the forward counted by ``FlopCounterMode`` (convolutions and matmuls; one multiply-add = 2 FLOP).

    Counted in eval mode, so BatchNorm statistics are not touched. Introduced in notebook 07.
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, *image_shape, device=device))
    model.train(was_training)
    return 3.0 * counter.get_total_flops()


@torch.no_grad()
def evaluate(model: nn.Module, split: DeviceData, tta: bool = True, batch_size: int = 1000) -> float:
    """Accuracy (a fraction) on ``split``; with ``tta`` the logits of each image and its mirror image are averaged.

    Introduced in notebook 07.
    """
    was_training = model.training
    model.eval()
    device = split.images.device
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    correct = torch.zeros((), dtype=torch.int64, device=device)
    for start in range(0, len(split), batch_size):
        x = split.normalised(slice(start, start + batch_size), fmt)
        with _autocast(device):
            logits = model(x).float()
            if tta:  # flip test-time augmentation: a free ~0.3-0.5 points on CIFAR-10
                logits = logits + model(x.flip(3)).float()
        correct += (logits.argmax(1) == split.labels[start : start + batch_size]).sum()
    model.train(was_training)
    return correct.item() / len(split)


def _synchronize(device: torch.device) -> None:
    """Wait for the device: GPU work is asynchronous, so a clock read without this measures only the launches."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename: an interrupted save never breaks ``path``.

    Introduced in notebook 07.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(state, handle)
        os.replace(tmp, path)  # atomic on POSIX and Windows: readers see the old file or the new one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (tensors and plain containers only: no code runs on load).

    Introduced in notebook 07.
    """
    return torch.load(path, map_location="cpu", weights_only=True)


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------------------------------------------
# The training loop


@dataclass
class TrainResult:
    """What :func:`fit` returns. Introduced in notebook 07.

    ``test_acc`` is the final test accuracy (a fraction, with flip TTA); ``seconds`` the training time with the
    device synchronised (evaluation and checkpoint writes excluded); ``history`` one dict per epoch (``epoch``,
    ``train_loss``, ``train_acc``, ``test_acc``, ``seconds`` so far); ``time_to_target`` the training seconds at
    the end of the first epoch whose test accuracy reached ``target_acc`` (None if never, or no target).
    """

    test_acc: float
    seconds: float
    epochs: int
    history: list[dict[str, float]]
    time_to_target: float | None
    target_acc: float | None
    parameters: int  # trainable ones
    flops_per_image: float  # training FLOPs per image (forward + backward)
    tflops: float  # achieved TFLOP/s over the training time
    images_per_second: float  # all processes together
    device: str
    settings: dict[str, Any] = field(default_factory=dict)
    world_size: int = 1  # processes that trained together (torchrun)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``--json`` writes)."""
        return asdict(self)


def _check_settings(epochs, batch_size, lr, momentum, weight_decay, label_smoothing, plp, target_acc, warmup) -> None:
    def positive_int(name, value):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive integer")

    positive_int("epochs", epochs)
    positive_int("batch_size", batch_size)
    for name, value, low, high in (
        ("lr", lr, 0.0, math.inf),
        ("momentum", momentum, 0.0, 1.0),
        ("weight_decay", weight_decay, 0.0, math.inf),
        ("label_smoothing", label_smoothing, 0.0, 1.0),
        ("warmup", warmup, 0.0, 1.0),
    ):
        if not isinstance(value, (int, float)) or not low <= value < high or (name == "lr" and value == 0):
            extra = " and > 0" if name == "lr" else ""
            raise ValueError(f"{name}={value!r} must be a number in [{low}, {high}){extra}")
    if target_acc is not None and not (isinstance(target_acc, (int, float)) and 0 < target_acc <= 1):
        raise ValueError(f"target_acc={target_acc!r} must be None or a fraction in (0, 1]")
    if plp is not None and not isinstance(plp, dict):
        raise TypeError(
            f"plp must be None or a dict of PLP keyword arguments (prediction_step, cycle), got {type(plp).__name__}"
        )


def fit(
    model: nn.Module | str,
    ds: data.ImageData,
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 0.1,
    momentum: float = 0.9,
    nesterov: bool = True,
    weight_decay: float = 5e-4,
    label_smoothing: float = 0.0,
    plp: dict[str, Any] | None = None,
    augment: bool = True,
    seed: int = 0,
    device: str | torch.device | None = None,
    target_acc: float | None = None,
    progress: bool = True,
    warmup: float = 0.2,
    compile: bool = False,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    sync_bn: bool = False,
) -> TrainResult:
    """Train ``model`` on ``ds`` and evaluate it after every epoch; the trainer of notebooks 05, 06 and 07.

    ``model`` is a module (initialised by the caller: seed before building it) or a name for :func:`build_model`
    (built after seeding with ``seed``). ``plp``: None, or keyword arguments of :class:`dcnn_helpers.plp.PLP`
    (``prediction_step``, ``cycle``) to wrap the SGD optimiser. ``seed`` fixes the data order and augmentation.
    ``warmup`` is the fraction of steps with a rising learning rate. ``checkpoint``: a file written after every
    epoch; with ``resume`` training continues from it (a missing file starts afresh). Inside a process group
    (``torchrun``, see :mod:`dcnn_helpers.distributed`) ``batch_size`` is the global batch, split over the ranks;
    ``sync_bn`` uses SyncBatchNorm there. Introduced in notebook 07.
    """
    _check_settings(epochs, batch_size, lr, momentum, weight_decay, label_smoothing, plp, target_acc, warmup)
    if not isinstance(ds, data.ImageData):
        raise TypeError(f"ds must be a dcnn_helpers.data.ImageData, got {type(ds).__name__}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path")
    device = config.device(str(device) if device is not None else None)
    rank, world_size = distributed.world()
    share = distributed.local_batch(min(batch_size, len(ds.train_labels)), world_size)  # each rank's part of a batch
    if isinstance(model, str):
        # Not deterministic: cuDNN may then pick its fastest kernels (bit-exact runs are promised on CPU only).
        config.seed_everything(seed, deterministic=False)
        model = build_model(model, ds.num_classes)
    settings = dict(
        epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum, nesterov=nesterov,
        weight_decay=weight_decay, label_smoothing=label_smoothing, plp=plp, augment=augment, seed=seed,
        warmup=warmup, n_train=len(ds.train_labels), n_test=len(ds.test_labels),
    )

    train_split, test_split = to_device(ds, device)
    net, step_model = prepare_model(model, device, compile, sync_bn)
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    steps = steps_per_epoch(len(train_split), batch_size)
    batch = min(batch_size, len(train_split))

    # Nesterov SGD over the trainable parameters, optionally wrapped by PLP; the schedule acts on the base SGD.
    base = torch.optim.SGD(
        [p for p in net.parameters() if p.requires_grad], lr=lr, momentum=momentum, nesterov=nesterov,
        weight_decay=weight_decay,
    )
    if plp is not None:
        from .plp import PLP

        optimizer = PLP(base, **plp)
    else:
        optimizer = base
    scheduler = torch.optim.lr_scheduler.LambdaLR(base, lambda step: lr_factor(step, epochs * steps, warmup))
    generator = torch.Generator().manual_seed(seed)

    start_epoch, seconds, history = 0, 0.0, []
    state = load_checkpoint(checkpoint) if resume and Path(checkpoint).is_file() else None
    if state is not None:
        distributed.check_resume_world(state.get("world_size", 1), world_size, checkpoint)
        changed = {k: (state["settings"].get(k), v) for k, v in settings.items() if state["settings"].get(k) != v}
        if changed:
            raise ValueError(f"checkpoint {checkpoint} was written with other settings (saved, now): {changed}")
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["rng"]["data"])
        _set_rng_state(state["rng"])
        start_epoch, seconds, history = state["epoch"], state["seconds"], state["history"]
    elif hasattr(net, "init_from_data"):  # data-dependent initialisation (FastNet's whitening filters)
        net.init_from_data(train_split.normalised(slice(0, 5000)))
    distributed.broadcast_state(net)  # every rank starts from rank 0's weights

    flops_per_image = train_flops_per_image(net, device)
    bar = config.progress(
        total=epochs * steps, initial=start_epoch * steps, desc=f"training on {device.type}",
        **({} if progress and rank == 0 else {"disable": True}),
    )
    try:
        for epoch in range(start_epoch, epochs):
            plan = distributed.shard_epoch(epoch_plan(len(train_split), generator), steps, batch).to(device)
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), dtype=torch.int64, device=device)
            net.train()
            _synchronize(device)
            started = time.perf_counter()
            for step in range(steps):
                index, shifts, flips = step_batch(plan, step, share)
                x = train_split.normalised(index)
                if augment:
                    x = augment_batch(x, shifts, flips)
                x = x.contiguous(memory_format=fmt)  # channels_last on CUDA
                y = train_split.labels[index]
                with _autocast(device):
                    logits = step_model(x)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()  # per-step schedule: warm-up and decay are smooth even for few epochs
                # Running sums stay on the device: reading them each step would stall the GPU pipeline.
                loss_sum += loss.detach() * len(y)
                correct += (logits.argmax(1) == y).sum()
                bar.update()
                if step % 20 == 0:
                    bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
            _synchronize(device)
            seconds += time.perf_counter() - started
            distributed.sum_over_ranks(loss_sum, correct)
            distributed.broadcast_state(net)  # BatchNorm statistics: each rank updated its own; use rank 0's
            test_acc = distributed.sharded_accuracy(
                lambda part: evaluate(net, dataclasses.replace(
                    test_split, images=test_split.images[part], labels=test_split.labels[part])),
                len(test_split), device,
            )
            seen = steps * batch
            history.append(dict(
                epoch=epoch + 1, train_loss=loss_sum.item() / seen, train_acc=correct.item() / seen,
                test_acc=test_acc, seconds=seconds,
            ))
            bar.set_postfix(epoch=epoch + 1, loss=f"{history[-1]['train_loss']:.3f}",
                            train_acc=f"{history[-1]['train_acc']:.3f}", test_acc=f"{test_acc:.3f}")
            if checkpoint is not None and rank == 0:
                save_checkpoint(checkpoint, dict(
                    model=net.state_dict(), optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                    rng=dict(_rng_state(), data=generator.get_state()), epoch=epoch + 1, seconds=seconds,
                    history=history, settings=settings, world_size=world_size,
                ))
    except KeyboardInterrupt:
        bar.close()
        where = f"; the checkpoint {checkpoint} holds epoch {len(history)}" if checkpoint is not None else ""
        if rank == 0:
            print(f"interrupted during epoch {len(history) + 1}{where}", file=sys.stderr)
        raise
    bar.close()

    reached = [h["seconds"] for h in history if target_acc is not None and h["test_acc"] >= target_acc]
    images = epochs * steps * batch
    return TrainResult(
        test_acc=history[-1]["test_acc"], seconds=seconds, epochs=epochs, history=history,
        time_to_target=reached[0] if reached else None, target_acc=target_acc,
        parameters=sum(p.numel() for p in net.parameters() if p.requires_grad), flops_per_image=flops_per_image,
        tflops=flops_per_image * images / seconds / 1e12 if seconds > 0 else 0.0,
        images_per_second=images / seconds if seconds > 0 else 0.0, device=str(device), settings=settings,
        world_size=world_size,
    )


# ---------------------------------------------------------------------------------------------------------------
# Notebook helpers: the hardware ceiling, image grids, learning curves


def matmul_tflops(device: str | torch.device | None = None, size: int = 4096, repeats: int = 10) -> float:
    """Achieved TFLOP/s of a large square matmul (bf16 on CUDA, float32 elsewhere): a practical compute ceiling.

    The best of ``repeats`` timed products of two ``size x size`` matrices (``2 size^3`` FLOP each), after one
    warm-up, with the device synchronised. Introduced in notebook 07.
    """
    device = config.device(str(device) if device is not None else None)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    best = math.inf
    for attempt in range(repeats + 1):
        _synchronize(device)
        started = time.perf_counter()
        a @ b
        _synchronize(device)
        if attempt > 0:  # the first product pays for kernel selection and allocation
            best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e12


def image_grid(images: torch.Tensor, ncols: int) -> torch.Tensor:
    """Tile uint8 images (N x H x W x 3, N a multiple of ``ncols``) into one image with 1-pixel white gaps.

    Introduced in notebook 07.
    """
    n, h, w, c = images.shape
    if n % ncols:
        raise ValueError(f"ncols={ncols} must divide the number of images {n}")
    padded = F.pad(images.permute(0, 3, 1, 2), (0, 1, 0, 1), value=255).permute(0, 2, 3, 1)
    rows = padded.view(n // ncols, ncols, h + 1, w + 1, c).permute(0, 2, 1, 3, 4)
    return rows.reshape(n // ncols * (h + 1), ncols * (w + 1), c)


def plot_curves(axes, runs: dict[str, list[TrainResult]]) -> None:
    """Test accuracy per epoch (``axes[0]``) and against training seconds (``axes[1]``: time-to-accuracy), one line
    per run label, mean over its seeds. Introduced in notebook 07."""
    for label, results in runs.items():
        acc = torch.tensor([[h["test_acc"] for h in r.history] for r in results]).mean(0)
        secs = torch.tensor([[h["seconds"] for h in r.history] for r in results]).mean(0)
        style = "--" if "PLP" in label else "-"
        (line,) = axes[0].plot(range(1, len(acc) + 1), acc, style, marker="o", ms=3, label=label)
        axes[1].plot(secs, acc, style, marker="o", ms=3, color=line.get_color(), label=label)
    axes[0].set(xlabel="epoch", ylabel="test accuracy (flip TTA)")
    axes[0].xaxis.get_major_locator().set_params(integer=True)
    axes[1].set(xlabel="training seconds (device synchronised)", ylabel="test accuracy", title="time to accuracy")
    axes[0].legend(fontsize="small")


# ---------------------------------------------------------------------------------------------------------------
# Command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dcnn_helpers.train",
        description="Train a CIFAR network with the course trainer (notebook 07).",
    )
    parser.add_argument(
        "--data", required=True, help="folder of the CIFAR cache (data_batch_*.npz, test_batch.npz), or its parent"
    )
    parser.add_argument("--model", required=True, help=MODEL_HELP)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--warmup", type=float, default=0.2, help="fraction of steps with a rising learning rate")
    parser.add_argument("--plp", action="store_true", help="wrap SGD in parameters linear prediction (notebook 05)")
    parser.add_argument("--no-augment", action="store_true", help="train without crop and flip")
    parser.add_argument("--limit-train", type=int, default=None, metavar="N", help="use the first N training images")
    parser.add_argument("--limit-test", type=int, default=None, metavar="N", help="use the first N test images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda if available")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (pays off for long runs)")
    parser.add_argument("--checkpoint", default=None, metavar="PATH", help="write a checkpoint after every epoch")
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint if it exists")
    parser.add_argument(
        "--target-acc", type=float, default=None, metavar="A", help="report the time to test accuracy A (a fraction)"
    )
    parser.add_argument("--json", default=None, metavar="PATH", help="write the result as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--sync-bn", action="store_true", help="under torchrun: BatchNorm over the global batch (GPU)")
    parser.add_argument("--dist-backend", choices=distributed.BACKENDS, default=None,
                        help="under torchrun: process-group backend (default: nccl on CUDA, gloo on CPU)")
    parser.add_argument("--dist-timeout", type=float, default=distributed.DEFAULT_TIMEOUT_S, metavar="SECONDS",
                        help="under torchrun: how long a rank waits for the others before failing (default: 300)")
    return parser


def _cache_folder(folder: Path) -> Path:
    """``folder`` itself if it holds the cache files, else its ``cifar10`` subfolder if that does."""
    nested = folder / data.CIFAR10_FOLDER
    return nested if not (folder / data.TEST_FILE).exists() and (nested / data.TEST_FILE).exists() else folder


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring); returns the exit status. Introduced in notebook 07."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.resume and args.checkpoint is None:
        parser.error("--resume needs --checkpoint PATH")
    group = contextlib.ExitStack()  # under torchrun: the process group, destroyed on every way out
    with group:
        try:
            device = group.enter_context(
                distributed.process_group(args.device, args.dist_backend, args.dist_timeout)
            )
            config.seed_everything(args.seed, deterministic=False)  # lets cuDNN choose its fastest kernels
            ds = data.load_cifar(_cache_folder(Path(args.data))).subset(args.limit_train, args.limit_test)
            model = build_model(args.model, ds.num_classes)
        except (ValueError, TypeError, RuntimeError, data.DataError) as exc:
            parser.error(str(exc))
        try:
            result = fit(
                model, ds, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
                weight_decay=args.weight_decay, label_smoothing=args.label_smoothing,
                plp={} if args.plp else None, augment=not args.no_augment, seed=args.seed, device=device,
                target_acc=args.target_acc, progress=not args.quiet, warmup=args.warmup, compile=args.compile,
                checkpoint=args.checkpoint, resume=args.resume, sync_bn=args.sync_bn,
            )
        except (ValueError, TypeError) as exc:
            parser.error(str(exc))
        except KeyboardInterrupt:
            return 130
        if not distributed.is_main():  # only rank 0 prints and writes the JSON
            return 0
    summary = result.to_dict() | {"model": args.model}
    ttt = "not reached" if result.time_to_target is None else f"{result.time_to_target:.1f} s"
    print(
        f"{args.model}: test accuracy {result.test_acc:.4f} after {result.epochs} epochs, {result.seconds:.1f} s "
        f"training ({result.images_per_second:.0f} img/s, {result.tflops:.3f} TFLOP/s); time to target: {ttt}"
    )
    if args.json is not None:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
