"""The course trainer: one readable, fast training loop for every CIFAR experiment, configured by one dataclass.

Introduced in notebook 05 (its first CIFAR runs), walked through line by line in notebook 07 (CIFAR-10 on a GPU);
notebook 06 uses it too. Models are passed in as modules; :mod:`dcnn_helpers.models` (notebook 07) builds them by
name and :mod:`dcnn_helpers.bench` is the command line.

The pieces, in the order a batch meets them (each trick is commented where it happens):

* :class:`TrainConfig` -- every setting that decides what a run computes, validated in one place; it is what a
  checkpoint and the JSON result store, and what the command line fills in.
* :func:`to_device` -- the whole data set on the device as uint8 (CIFAR-10 is 150 MB): no DataLoader, no worker
  processes, no host-to-device copy per step.
* :func:`epoch_plan` / :func:`augment_batch` -- an epoch's order, crops and flips drawn up front from one seeded
  CPU generator, then applied to whole batches on the device.
* :func:`build_optimizer` -- Nesterov SGD with its parameter groups (BatchNorm biases may get their own learning
  rate), optionally wrapped by PLP (:class:`dcnn_helpers.plp.PLP`); :func:`schedule_factor` its per-step schedule.
* :class:`LookAhead` -- an exponential moving average of the weights, copied back into the model every few steps.
* :func:`train_one_epoch`, :func:`evaluate` and :func:`fit` -- the loop itself, test-time augmentation, and the
  run around them: timing with the device synchronised, a checkpoint after every epoch, exact resume.

Timing follows the speed-run convention (Jordan 2024, arXiv:2404.00498, Sec. 3): a warm-up on a throw-away copy
of the model (cuDNN's kernel search, compilation) is not counted; training time is the data-dependent
initialisation plus the training steps, with the device synchronised; evaluations after each epoch are not
counted, the final test-time-augmented pass is (``eval_seconds``).

Several GPUs: the same loop runs under ``torchrun`` (see :mod:`dcnn_helpers.distributed`): each process trains on
its share of every global batch, DistributedDataParallel averages the gradients, and only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from . import checkpoint, config, data, distributed, fileio, validation
from .plp import PLP

__all__ = ["SCHEDULES", "FLIPS", "TTA_MODES", "TrainConfig", "DeviceData", "to_device", "EpochPlan", "epoch_plan",
    "steps_per_epoch", "step_batch", "augment_batch", "prepare_model", "build_optimizer", "schedule_factor",
    "LookAhead", "Run", "train_one_epoch", "tta_logits", "evaluate", "train_flops_per_image", "TrainResult", "fit"]

SCHEDULES = ("linear", "triangle")
FLIPS = ("random", "alternate", "none")
TTA_MODES = ("none", "flip", "flip-translate")
LOOKAHEAD_EVERY = 5  # steps between two look-ahead updates (airbench94's choice)


# ---------------------------------------------------------------------------------------------------------------
# Settings


@dataclass(frozen=True)
class TrainConfig:
    """Every setting that decides what a training run computes; validated when it is made. Introduced in notebook 05.

    The optimiser: Nesterov SGD with peak learning rate ``lr`` for the mean loss of a batch, ``momentum``, and
    ``weight_decay`` (PyTorch's coupled form, applied to the gradient). ``decoupled_weight_decay`` keeps the decay
    per step the same for every parameter group, whatever its learning rate. ``bn_bias_lr_scale`` multiplies the
    learning rate of BatchNorm biases; ``freeze_bn_scales`` keeps BatchNorm's scales at 1.

    The schedule: ``"linear"`` rises linearly for the first ``warmup`` fraction of the steps, then falls to 0;
    ``"triangle"`` (airbench94) rises from 0.2 to 1 at the ``warmup`` fraction, then falls to 0.07.
    ``epochs`` may be fractional: the last epoch stops early (airbench94 trains 9.9 epochs).

    The data: crops after reflect-padding by ``translate`` pixels (0: none), and flips ``"random"`` (each image,
    each epoch), ``"alternate"`` (a random half flipped in even epochs, the other half in odd ones) or ``"none"``.
    ``tta``: test-time augmentation, ``"none"``, ``"flip"`` or ``"flip-translate"``.

    The rest: ``ema`` keeps a look-ahead average of the weights (:class:`LookAhead`); ``whiten_bias_epochs`` trains
    the bias of a model's frozen whitening layer (``model.whiten``) only for that many epochs (None: always);
    ``plp`` wraps SGD in parameters linear prediction with that prediction step (None: plain SGD);
    ``label_smoothing``; ``seed`` fixes the data order and augmentation; ``eval_every_epoch`` evaluates after
    every epoch (else only after the last). ``model`` names the model: checkpoints refuse to resume another.
    """

    model: str = "model"
    epochs: float = 10
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    decoupled_weight_decay: bool = False
    bn_bias_lr_scale: float = 1.0
    freeze_bn_scales: bool = False
    label_smoothing: float = 0.0
    schedule: str = "linear"
    warmup: float = 0.2
    translate: int = 4
    flip: str = "random"
    tta: str = "flip"
    ema: bool = False
    whiten_bias_epochs: int | None = None
    plp: float | None = None
    seed: int = 0
    eval_every_epoch: bool = True

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731  (frozen dataclass)
        if not isinstance(self.model, str) or not self.model.strip():
            raise TypeError(f"model must be a non-empty name, got {self.model!r}")
        set_("epochs", validation.real("epochs", self.epochs, 0, None, low_open=True))
        set_("batch_size", validation.integer("batch_size", self.batch_size, 1))
        set_("lr", validation.real("lr", self.lr, 0, None, low_open=True))
        set_("momentum", validation.real("momentum", self.momentum, 0, 1, high_open=True))
        set_("weight_decay", validation.real("weight_decay", self.weight_decay, 0))
        set_("bn_bias_lr_scale", validation.real("bn_bias_lr_scale", self.bn_bias_lr_scale, 0, None, low_open=True))
        set_("label_smoothing", validation.real("label_smoothing", self.label_smoothing, 0, 1, high_open=True))
        set_("warmup", validation.real("warmup", self.warmup, 0, 1, high_open=True))
        set_("translate", validation.integer("translate", self.translate, 0, 16))
        set_("seed", validation.integer("seed", self.seed, 0))
        validation.choice("schedule", self.schedule, SCHEDULES)
        validation.choice("flip", self.flip, FLIPS)
        validation.choice("tta", self.tta, TTA_MODES)
        for name in ("nesterov", "decoupled_weight_decay", "freeze_bn_scales", "ema", "eval_every_epoch"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.whiten_bias_epochs is not None:
            set_("whiten_bias_epochs", validation.integer("whiten_bias_epochs", self.whiten_bias_epochs, 0))
        if self.plp is not None:
            set_("plp", validation.real("plp", self.plp))

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (what checkpoints and JSON results store)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any]) -> TrainConfig:
        """A config from :meth:`to_dict`'s output; unknown keys are an error that names them."""
        unknown = set(settings) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            known = [f.name for f in dataclasses.fields(cls)]
            raise ValueError(f"unknown training settings {sorted(unknown)}; known: {known}")
        return cls(**settings)


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

    def normalised(self, index: torch.Tensor | slice) -> torch.Tensor:
        """Images ``index`` as float32, normalised per channel; gathered and converted on the device."""
        return (self.images[index].float() - self.mean) / self.std


def to_device(ds: data.ImageData, device: torch.device) -> tuple[DeviceData, DeviceData]:
    """Move both splits of ``ds`` to ``device`` once, as uint8 (4x smaller than float32). Introduced in notebook 05.

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
    shifts: torch.Tensor  # N x 2 crop offsets (dy, dx) in 0..2*translate
    flips: torch.Tensor  # N booleans

    def to(self, device: torch.device) -> EpochPlan:
        return EpochPlan(self.order.to(device), self.shifts.to(device), self.flips.to(device))


def epoch_plan(n: int, generator: torch.Generator, translate: int = 4, flip: str = "random", epoch: int = 0,
               seed: int = 0) -> EpochPlan:
    """Draw one epoch's order and augmentation from a CPU ``generator`` (identical on every device and on resume).

    ``flip="alternate"`` (airbench94): a fixed random half of the images (drawn from ``seed``) is flipped in even
    epochs and the other half in odd ones, so every image is seen both ways every two epochs. Introduced in
    notebook 05.
    """
    order = torch.randperm(n, generator=generator)
    shifts = torch.randint(0, 2 * translate + 1, (n, 2), generator=generator)
    if flip == "random":
        flips = torch.rand(n, generator=generator) < 0.5
    elif flip == "alternate":
        half = torch.rand(n, generator=torch.Generator().manual_seed(seed)) < 0.5  # by image, fixed for the run
        flips = half[order] ^ bool(epoch % 2)
    else:
        flips = torch.zeros(n, dtype=torch.bool)
    return EpochPlan(order, shifts, flips)


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Full batches per epoch: the last partial batch is dropped (steady shapes), unless there is only one."""
    return max(n // batch_size, 1)


def step_batch(plan: EpochPlan, step: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The image indices, crop offsets and flips of step ``step`` of an epoch. Introduced in notebook 05.

    The one place that decides which images a step sees (a data-parallel run gives each process a slice).
    """
    positions = slice(step * batch_size, (step + 1) * batch_size)
    return plan.order[positions], plan.shifts[positions], plan.flips[positions]


def augment_batch(x: torch.Tensor, shifts: torch.Tensor, flips: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Random crop after reflect-padding by ``pad`` and horizontal flip, for a whole batch on its device.

    ``x`` is N x C x H x W; image i is cropped at offset ``shifts[i] = (dy, dx)`` of the padded image and mirrored
    where ``flips[i]``. One gather, no Python loop over images. Introduced in notebook 05.
    """
    n, c, h, w = x.shape
    if pad > 0:
        padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")  # mirrored borders instead of black ones
        rows = (shifts[:, 0, None] + torch.arange(h, device=x.device)).view(n, 1, h, 1)
        cols = (shifts[:, 1, None] + torch.arange(w, device=x.device)).view(n, 1, 1, w)
        batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
        channel = torch.arange(c, device=x.device).view(1, c, 1, 1)
        x = padded[batch, channel, rows, cols]  # advanced indexing: x[i, c, r, s] = padded[i, c, dy+r, dx+s]
    return torch.where(flips.view(n, 1, 1, 1), x.flip(3), x)


# ---------------------------------------------------------------------------------------------------------------
# Model, optimiser, schedule, look-ahead


def _memory_format(device: torch.device) -> torch.memory_format:
    """channels_last on CUDA (the layout cuDNN's fastest convolutions use), the usual layout elsewhere."""
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format


def prepare_model(model: nn.Module, device: torch.device, compile: bool | str = False, sync_bn: bool = False
                  ) -> tuple[nn.Module, nn.Module]:
    """Move ``model`` to ``device`` (channels_last on CUDA); returns ``(model, step_model)``. Introduced in notebook 05.

    ``step_model`` is what the training step calls: the model itself, wrapped in DistributedDataParallel under
    torchrun, and ``torch.compile``-d with ``compile`` (True, or a mode such as ``"max-autotune"`` or
    ``"reduce-overhead"``: CUDA graphs). Checkpoints always store the plain model's weights.
    ``sync_bn`` turns BatchNorm into SyncBatchNorm (:func:`dcnn_helpers.distributed.convert_sync_bn`).
    """
    model = model.to(device, memory_format=_memory_format(device))
    if sync_bn:
        model = distributed.convert_sync_bn(model, device)
    step_model = distributed.wrap(model, device)
    if not compile:
        return model, step_model
    return model, torch.compile(step_model, mode=None if compile is True else compile)


def _batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Nesterov SGD over the trainable parameters, in two groups, optionally wrapped by PLP. Introduced in notebook 05.

    BatchNorm biases get learning rate ``lr * bn_bias_lr_scale``. With ``decoupled_weight_decay`` their weight-decay
    coefficient is divided by the same factor, so that the decay per step (learning rate x coefficient) is the same
    in both groups: the large bias learning rate speeds up the biases without decaying them 64 times harder.
    """
    if cfg.freeze_bn_scales:
        for bn in _batchnorms(model):  # BatchNorm scales stay at 1: the next conv can scale instead
            if bn.weight is not None:
                bn.weight.requires_grad_(False)
    bn_biases = {id(bn.bias) for bn in _batchnorms(model) if bn.bias is not None and bn.bias.requires_grad}
    biases = [p for p in model.parameters() if id(p) in bn_biases]
    others = [p for p in model.parameters() if p.requires_grad and id(p) not in bn_biases]
    bias_decay = cfg.weight_decay / cfg.bn_bias_lr_scale if cfg.decoupled_weight_decay else cfg.weight_decay
    groups = [dict(params=others, lr=cfg.lr, weight_decay=cfg.weight_decay)]
    if biases:
        groups.append(dict(params=biases, lr=cfg.lr * cfg.bn_bias_lr_scale, weight_decay=bias_decay))
    sgd = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    return PLP(sgd, prediction_step=cfg.plp) if cfg.plp is not None else sgd


def schedule_factor(step: int, total_steps: int, schedule: str = "linear", warmup: float = 0.2) -> float:
    """Learning-rate multiplier at ``step`` (0-based) of ``total_steps``. Introduced in notebook 05.

    ``"linear"``: rises as ``(step + 1) / W`` for ``W = ceil(warmup * total_steps)`` steps to 1, then falls
    linearly, reaching ``1 / (total_steps - W)`` at the last step (never 0 while training). ``"triangle"``
    (airbench94): piecewise linear through 0.2 at step 0, 1 at ``int(warmup * total_steps)`` and 0.07 at
    ``total_steps``.
    """
    if validation.choice("schedule", schedule, SCHEDULES) == "triangle":
        peak = int(warmup * total_steps)
        if step < peak:
            return 0.2 + 0.8 * step / peak
        return 1.0 - 0.93 * (step - peak) / max(total_steps - peak, 1)
    warm = min(math.ceil(warmup * total_steps), total_steps - 1)
    if step < warm:
        return (step + 1) / warm
    return max(total_steps - step, 1) / (total_steps - warm)


class LookAhead:
    """An exponential moving average of the weights, copied back into the model (airbench94's "lookahead").

    Every few steps ``update(decay)`` moves the average towards the current weights, ``avg = decay * avg + (1 -
    decay) * weights``, and then sets the weights to the average: the model continues from a point that smooths
    out the last steps' noise. The decay grows as ``0.95^5 * (step / total)^3``, so early training is left alone
    and the end of training averages strongly; at the last step ``decay = 1`` makes the model the average.
    All floating-point tensors of the state dict take part (BatchNorm's running statistics too). Introduced in
    notebook 07.
    """

    def __init__(self, model: nn.Module) -> None:
        self.tensors = [t for t in model.state_dict().values() if t.is_floating_point()]
        self.average = [t.detach().clone() for t in self.tensors]

    @staticmethod
    def decay(step: int, total_steps: int) -> float:
        """The decay at ``step``: ``0.95^5 * (step / total_steps)^3``, and 1 at the last step."""
        return 1.0 if step >= total_steps else 0.95**5 * (step / total_steps) ** 3

    @torch.no_grad()
    def update(self, decay: float) -> None:
        for average, tensor in zip(self.average, self.tensors):
            average.lerp_(tensor, 1.0 - decay)
            tensor.copy_(average)

    def state_dict(self) -> list[torch.Tensor]:
        return [a.clone() for a in self.average]

    def load_state_dict(self, state: Sequence[torch.Tensor]) -> None:
        for average, saved in zip(self.average, state, strict=True):
            average.copy_(saved)


def _autocast(device: torch.device):
    """bf16 autocast on CUDA (matmuls and convolutions in bfloat16, reductions in float32); nothing on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _synchronize(device: torch.device) -> None:
    """Wait for the device: GPU work is asynchronous, so a clock read without this measures only the launches."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------------------------------------------
# The training loop


@dataclass
class Run:
    """Everything one training run carries from step to step. Made by :func:`fit`. Introduced in notebook 05."""

    cfg: TrainConfig
    net: nn.Module  # the model (checkpoints store its weights)
    step_model: nn.Module  # what the step calls: the model, DDP-wrapped or compiled
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    lookahead: LookAhead | None
    train: DeviceData
    test: DeviceData
    generator: torch.Generator  # draws every epoch's plan
    batch: int  # global batch size
    share: int  # this process's part of it
    steps_per_epoch: int
    total_steps: int
    step: int = 0  # steps taken so far
    memory_format: torch.memory_format = torch.contiguous_format  # channels_last on CUDA
    bar: Any = None  # the progress bar


def train_one_epoch(run: Run, epoch: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Train for one epoch (fewer steps if the run ends inside it); returns summed loss, correct count, images.

    The sums stay on the device: reading a number back after every step would make the CPU wait for the GPU.
    Introduced in notebook 05, read line by line in notebook 07.
    """
    cfg, device = run.cfg, run.train.images.device
    plan = epoch_plan(len(run.train), run.generator, cfg.translate, cfg.flip, epoch, cfg.seed)
    plan = distributed.shard_epoch(plan, run.steps_per_epoch, run.batch).to(device)  # this process's slice
    if hasattr(run.net, "whiten"):  # the whitening layer's bias learns only in the first epochs
        run.net.whiten.bias.requires_grad_(cfg.whiten_bias_epochs is None or epoch < cfg.whiten_bias_epochs)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    steps = min(run.steps_per_epoch, run.total_steps - run.step)
    run.net.train()
    for i in range(steps):
        index, shifts, flips = step_batch(plan, i, run.share)
        x = augment_batch(run.train.normalised(index), shifts, flips, cfg.translate)  # crop + flip on the device
        y = run.train.labels[index]
        with _autocast(device):  # bf16 on CUDA
            logits = run.step_model(x.contiguous(memory_format=run.memory_format))
        loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()  # SGD (+ PLP's prediction at the end of each cycle)
        run.scheduler.step()  # per-step schedule: smooth even for a two-epoch run
        run.step += 1
        if run.lookahead is not None and (run.step % LOOKAHEAD_EVERY == 0 or run.step == run.total_steps):
            run.lookahead.update(LookAhead.decay(run.step, run.total_steps))
        loss_sum += loss.detach() * len(y)
        correct += (logits.argmax(1) == y).sum()
        if run.bar is not None:
            run.bar.update()
    return loss_sum, correct, steps * run.batch


def tta_logits(model: nn.Module, x: torch.Tensor, tta: str = "flip") -> torch.Tensor:
    """Logits of ``x`` averaged over test-time augmentations. Introduced in notebook 07.

    ``"flip"``: the image and its mirror image. ``"flip-translate"`` (airbench94): half that, plus half the mean
    over the image shifted one pixel up-left and one pixel down-right (reflect padding), each with its mirror.
    """
    def mirrored(images: torch.Tensor) -> torch.Tensor:
        logits = model(images).float()
        return logits if tta == "none" else (logits + model(images.flip(3)).float()) / 2

    logits = mirrored(x)
    if tta == "flip-translate":
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        h, w = x.shape[2:]
        shifted = (mirrored(padded[:, :, :h, :w]) + mirrored(padded[:, :, 2:, 2:])) / 2
        logits = (logits + shifted) / 2
    return logits


@torch.no_grad()
def evaluate(model: nn.Module, split: DeviceData, tta: str = "flip", batch_size: int | None = None) -> float:
    """Accuracy (a fraction) on ``split`` with test-time augmentation ``tta`` (see :func:`tta_logits`).

    ``batch_size`` None: 2000 images at a time on a GPU, 250 on a CPU (whose caches prefer small batches: 250 is
    1.2 to 2.4 times faster there than 2000, measured here). Introduced in notebook 05.
    """
    validation.choice("tta", tta, TTA_MODES)
    device = split.images.device
    if batch_size is None:
        batch_size = 2000 if device.type == "cuda" else 250
    batch_size = validation.integer("batch_size", batch_size, 1)
    layout = _memory_format(device)
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=device)
    for start in range(0, len(split), batch_size):
        x = split.normalised(slice(start, start + batch_size)).contiguous(memory_format=layout)
        with _autocast(device):
            logits = tta_logits(model, x, tta)
        correct += (logits.argmax(1) == split.labels[start : start + batch_size]).sum()
    model.train(was_training)
    return correct.item() / len(split)


def train_flops_per_image(model: nn.Module, device: torch.device, image_shape: Sequence[int] = (3, 32, 32)) -> float:
    """Floating-point operations to train on one image: 3x a forward pass (the backward pass costs about twice the
    forward), with the forward counted by ``FlopCounterMode`` (convolutions and matmuls; one multiply-add = 2 FLOP).

    Counted in eval mode, so BatchNorm statistics are not touched. Introduced in notebook 07.
    """
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, *image_shape, device=device))
    model.train(was_training)
    return 3.0 * counter.get_total_flops()


@dataclass
class TrainResult:
    """What :func:`fit` returns. Introduced in notebook 05.

    ``test_acc``: the final test accuracy (a fraction, with the config's TTA). ``seconds``: training time with the
    device synchronised (data-dependent initialisation and training steps; evaluations and checkpoint writes
    excluded); ``eval_seconds``: the final evaluation; ``total_seconds``: both, the time a speed run reports.
    ``history``: one dict per epoch (``epoch``, ``train_loss``, ``train_acc``, ``test_acc`` or None when not
    evaluated, ``seconds`` so far). ``time_to_target``: training seconds at the end of the first evaluated epoch
    whose accuracy reached ``target_acc``, plus one final evaluation (None if never). ``warmup_seconds``: the
    uncounted warm-up (cuDNN's kernel search, compilation).
    """

    test_acc: float
    seconds: float
    eval_seconds: float
    epochs: float
    history: list[dict[str, Any]]
    time_to_target: float | None
    target_acc: float | None
    parameters: int  # trainable ones
    flops_per_image: float  # training FLOPs per image (forward + backward)
    tflops: float  # achieved TFLOP/s over the training time
    images_per_second: float  # all processes together
    device: str
    config: dict[str, Any] = field(default_factory=dict)
    world_size: int = 1  # processes that trained together (torchrun)
    warmup_seconds: float = 0.0

    @property
    def total_seconds(self) -> float:
        return self.seconds + self.eval_seconds

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``--json`` writes), ``total_seconds`` included."""
        return asdict(self) | {"total_seconds": self.total_seconds}


def _start(model: nn.Module, ds: data.ImageData, cfg: TrainConfig, device: torch.device, compile: bool | str,
           sync_bn: bool, progress: bool) -> Run:
    """Set up a run: data on the device, model prepared, optimiser, schedule and look-ahead built."""
    rank, world_size = distributed.world()
    batch = min(cfg.batch_size, len(ds.train_labels))
    share = distributed.local_batch(batch, world_size)  # this process's part of each batch (checked first)
    train_split, test_split = to_device(ds, device)
    net, step_model = prepare_model(model, device, compile, sync_bn)
    per_epoch = steps_per_epoch(len(train_split), batch)
    total = max(math.ceil(cfg.epochs * per_epoch), 1)
    optimizer = build_optimizer(net, cfg)
    base = optimizer.base if isinstance(optimizer, PLP) else optimizer  # the schedule acts on the base SGD
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        base, lambda step: schedule_factor(min(step, total - 1), total, cfg.schedule, cfg.warmup))
    bar = config.progress(total=total, desc=f"training {cfg.model} on {device.type}",
                          **({} if progress and rank == 0 else {"disable": True}))
    return Run(cfg, net, step_model, optimizer, scheduler, LookAhead(net) if cfg.ema else None, train_split,
               test_split, torch.Generator().manual_seed(cfg.seed), batch, share, per_epoch, total,
               memory_format=_memory_format(device), bar=bar)


def _warm_up(run: Run) -> float:
    """Seconds of an uncounted warm-up: two steps at learning rate 0 and one evaluation, then the weights and
    BatchNorm statistics are restored (:func:`fit` runs it on CUDA only).

    cuDNN picks its kernels per shape on first use, and ``torch.compile`` compiles on the first call: both would
    otherwise be counted as training time of the first epoch.
    """
    device = run.train.images.device
    _synchronize(device)
    started = time.perf_counter()
    saved = {name: tensor.clone() for name, tensor in run.net.state_dict().items()}
    idle = torch.optim.SGD([p for p in run.net.parameters() if p.requires_grad], lr=0.0)  # steps that change nothing
    index = torch.arange(run.share, device=device) % len(run.train)
    for _ in range(2):
        with _autocast(device):
            loss = run.step_model(run.train.normalised(index).contiguous(memory_format=run.memory_format)).float().sum()
        loss.backward()
        idle.step()
        idle.zero_grad(set_to_none=True)
    _evaluate_sharded(run)
    run.net.load_state_dict(saved)
    _synchronize(device)
    return time.perf_counter() - started


def _checkpoint_state(run: Run, epoch: int, seconds: float, history: list, data_sizes: dict) -> dict[str, Any]:
    return dict(
        settings=run.cfg.to_dict(), data=data_sizes, model=run.net.state_dict(),
        optimizer=run.optimizer.state_dict(), scheduler=run.scheduler.state_dict(),
        lookahead=run.lookahead.state_dict() if run.lookahead is not None else None,
        rng=checkpoint.rng_state() | {"data": run.generator.get_state()}, epoch=epoch, step=run.step,
        seconds=seconds, history=history, world_size=distributed.world()[1],
    )


def _resume(run: Run, state: dict[str, Any]) -> tuple[int, float, list]:
    """Load a checkpoint's state into ``run``; returns (epochs done, seconds so far, history)."""
    run.net.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    if run.lookahead is not None:
        run.lookahead.load_state_dict(state["lookahead"])
    run.generator.set_state(state["rng"]["data"])
    checkpoint.set_rng_state(state["rng"])
    run.step = state["step"]
    run.bar.update(run.step)
    return state["epoch"], state["seconds"], state["history"]


def fit(model: nn.Module, ds: data.ImageData, cfg: TrainConfig, *, device: str | torch.device | None = None,
        target_acc: float | None = None, progress: bool = True, compile: bool | str = False,
        checkpoint_path: str | os.PathLike | None = None, resume: bool = False, sync_bn: bool = False) -> TrainResult:
    """Train ``model`` on ``ds`` as ``cfg`` says; evaluate after every epoch (or the last). Introduced in notebook 05.

    ``checkpoint_path``: written after every epoch; with ``resume`` training continues from it (a missing file
    starts afresh; another model or other settings are refused before any work). Under ``torchrun`` the batch
    size is the global batch. ``compile`` uses ``torch.compile``; its compilation is part of the warm-up.
    """
    _check_run_arguments(model, ds, cfg, target_acc, checkpoint_path, resume)
    device = config.device(str(device) if device is not None else None)
    data_sizes = {"n_train": len(ds.train_labels), "n_test": len(ds.test_labels)}
    state = None
    if resume and Path(checkpoint_path).is_file():
        state = checkpoint.load(checkpoint_path)  # refused with one line before any work if it does not fit
        checkpoint.check_compatible(state, cfg.to_dict(), data_sizes, checkpoint_path)
        distributed.check_resume_world(state.get("world_size", 1), distributed.world()[1], checkpoint_path)
    run = _start(model, ds, cfg, device, compile, sync_bn, progress)
    warmup_seconds = _warm_up(run) if device.type == "cuda" else 0.0
    first_epoch, seconds, history = _resume(run, state) if state is not None else (0, 0.0, [])
    if state is None:
        _synchronize(device)
        started = time.perf_counter()
        if hasattr(run.net, "init_from_data"):  # data-dependent initialisation (FastNet's whitening filters)
            run.net.init_from_data(run.train.normalised(slice(0, 5000)))
        distributed.broadcast_state(run.net)  # every rank starts from rank 0's weights
        _synchronize(device)
        seconds += time.perf_counter() - started
    epochs, eval_seconds = math.ceil(run.total_steps / run.steps_per_epoch), 0.0
    try:
        for epoch in range(first_epoch, epochs):
            _synchronize(device)
            started = time.perf_counter()
            loss_sum, correct, seen = train_one_epoch(run, epoch)
            _synchronize(device)
            seconds += time.perf_counter() - started
            distributed.sum_over_ranks(loss_sum, correct)
            distributed.broadcast_state(run.net)  # BatchNorm statistics: each rank updated its own; use rank 0's
            last = epoch == epochs - 1
            started = time.perf_counter()
            test_acc = _evaluate_sharded(run) if cfg.eval_every_epoch or last else None
            eval_seconds = time.perf_counter() - started  # the last one is the final, counted evaluation
            history.append(dict(epoch=epoch + 1, train_loss=loss_sum.item() / seen, train_acc=correct.item() / seen,
                                test_acc=test_acc, seconds=seconds))
            run.bar.set_postfix(epoch=epoch + 1, loss=f"{history[-1]['train_loss']:.3f}", test_acc=test_acc)
            if checkpoint_path is not None and distributed.is_main():
                checkpoint.save(checkpoint_path, _checkpoint_state(run, epoch + 1, seconds, history, data_sizes))
    except KeyboardInterrupt:
        run.bar.close()
        if distributed.is_main():
            where = f"; the checkpoint {checkpoint_path} holds epoch {len(history)}" if checkpoint_path else ""
            print(f"interrupted during epoch {len(history) + 1}{where}", file=sys.stderr)
        raise
    run.bar.close()
    return _result(run, cfg, history, seconds, eval_seconds, warmup_seconds, target_acc, device)


def _evaluate_sharded(run: Run) -> float:
    """Test accuracy, each test image evaluated once by one process (:func:`distributed.sharded_accuracy`)."""
    def part_accuracy(part: slice) -> float:
        split = dataclasses.replace(run.test, images=run.test.images[part], labels=run.test.labels[part])
        return evaluate(run.net, split, run.cfg.tta)

    result = distributed.sharded_accuracy(part_accuracy, len(run.test), run.test.images.device)
    _synchronize(run.test.images.device)
    return result


def _result(run: Run, cfg: TrainConfig, history: list, seconds: float, eval_seconds: float, warmup_seconds: float,
            target_acc: float | None, device: torch.device) -> TrainResult:
    reached = [h["seconds"] for h in history if target_acc is not None and (h["test_acc"] or 0) >= target_acc]
    images = run.total_steps * run.batch
    flops = train_flops_per_image(run.net, device)
    return TrainResult(
        test_acc=history[-1]["test_acc"], seconds=seconds, eval_seconds=eval_seconds,
        epochs=run.total_steps / run.steps_per_epoch, history=history,
        time_to_target=reached[0] + eval_seconds if reached else None, target_acc=target_acc,
        parameters=sum(p.numel() for p in run.net.parameters() if p.requires_grad), flops_per_image=flops,
        tflops=flops * images / seconds / 1e12 if seconds > 0 else 0.0,
        images_per_second=images / seconds if seconds > 0 else 0.0, device=str(device), config=cfg.to_dict(),
        world_size=distributed.world()[1], warmup_seconds=warmup_seconds,
    )


def _check_run_arguments(model: Any, ds: Any, cfg: Any, target_acc: Any, checkpoint_path: Any, resume: bool) -> None:
    """Everything :func:`fit` checks before any work: types, the target, and that the checkpoint can be written."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (build one by name with dcnn_helpers.models.build_model), "
                        f"got {type(model).__name__}")
    if not isinstance(ds, data.ImageData):
        raise TypeError(f"ds must be a dcnn_helpers.data.ImageData, got {type(ds).__name__}")
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"cfg must be a dcnn_helpers.train.TrainConfig, got {type(cfg).__name__}")
    if target_acc is not None:
        validation.real("target_acc", target_acc, 0, 1, low_open=True)
    if resume and checkpoint_path is None:
        raise ValueError("resume=True needs a checkpoint_path")
    if checkpoint_path is not None:
        fileio.check_writable(checkpoint_path, "checkpoint")
