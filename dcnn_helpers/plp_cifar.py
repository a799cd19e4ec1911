"""Notebook 05's CIFAR-10 experiments: a tiny CNN, and a grid of runs (learning rate x prediction step x seed).

Introduced in notebook 05 (parameters linear prediction). Every run goes through the course trainer
(:func:`dcnn_helpers.train.fit`) with PLP switched on by its ``plp`` setting (:class:`dcnn_helpers.plp.PLP`).
"""

from __future__ import annotations

import re
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import config, data, train, validation

__all__ = ["tiny_cnn", "cifar_model", "trainer_batches", "run_grid", "paired_difference"]


def tiny_cnn(width: int = 16, num_classes: int = 10) -> nn.Sequential:
    """Three conv3x3-BN-ReLU-maxpool stages of ``width, 2·width, 4·width`` channels, global average pool, linear.

    About 24k parameters at width 16: small enough to train on a CPU in seconds. Introduced in notebook 05.
    """
    width = validation.integer("width", width, 1)
    layers: list[nn.Module] = []
    channels = 3
    for out in (width, 2 * width, 4 * width):
        layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(), nn.MaxPool2d(2)]
        channels = out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))


def cifar_model(name: str, num_classes: int = 10) -> nn.Sequential:
    """``"tiny-W"``: :func:`tiny_cnn` of width W. Introduced in notebook 05."""
    match = re.fullmatch(r"tiny-(\d+)", name) if isinstance(name, str) else None
    if match is None:
        raise ValueError(f"model={name!r} is not a notebook-05 model; use 'tiny-W' with W a positive integer")
    return tiny_cnn(int(match[1]), num_classes)


def trainer_batches(split: train.DeviceData, steps: int, batch_size: int,
                    seed: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The first ``steps`` augmented batches ``(images, labels)`` that :func:`dcnn_helpers.train.fit` would draw
    from ``split`` (random crops and flips, a new order each epoch, all from one generator seeded with ``seed``).

    Introduced in notebook 05, which measures how straight the training path is on them.
    """
    steps, batch_size = validation.integer("steps", steps, 1), validation.integer("batch_size", batch_size, 1)
    gen = torch.Generator().manual_seed(validation.integer("seed", seed, 0))
    per_epoch = train.steps_per_epoch(len(split), batch_size)
    for k in range(steps):
        if k % per_epoch == 0:
            plan = train.epoch_plan(len(split), gen, epoch=k // per_epoch).to(split.images.device)
        index, shifts, flips = train.step_batch(plan, k % per_epoch, batch_size)
        yield train.augment_batch(split.normalised(index), shifts, flips), split.labels[index]


def run_grid(
    model: str,
    ds: data.ImageData,
    *,
    lrs: Sequence[float],
    prediction_steps: Sequence[float | None],
    seeds: Sequence[int],
    epochs: int,
    **settings: Any,
) -> pd.DataFrame:
    """Train ``model`` (a :func:`cifar_model` name) on ``ds`` for every learning rate x prediction step x seed.

    A prediction step of ``None`` is plain SGD; every other value wraps it in PLP. For one seed, all runs start
    from the same weights and see the same batches and augmentations, so differences are paired. ``settings``:
    further :class:`dcnn_helpers.train.TrainConfig` fields (batch_size, momentum, weight_decay, ...). Returns one
    row per run: ``lr, prediction_step, seed, test_acc, train_loss, seconds``, and ``curve`` (test accuracy per
    epoch). Introduced in notebook 05.
    """
    rows = []
    grid = [(lr, p, seed) for lr in lrs for p in prediction_steps for seed in seeds]
    for lr, p, seed in config.progress(grid, desc="CIFAR runs"):
        cfg = train.TrainConfig(model=model, epochs=epochs, lr=lr, plp=p, seed=seed, **settings)
        config.seed_everything(seed)
        result = train.fit(cifar_model(model, ds.num_classes), ds, cfg, progress=False)
        rows.append(dict(
            lr=lr, prediction_step=p, seed=seed, test_acc=result.test_acc,
            train_loss=result.history[-1]["train_loss"], seconds=result.seconds,
            curve=[h["test_acc"] for h in result.history],
        ))
    return pd.DataFrame(rows)


def paired_difference(runs: pd.DataFrame, prediction_step: float, lr: float | None = None) -> np.ndarray:
    """Per seed, test accuracy with PLP (``prediction_step``) minus without, from :func:`run_grid` rows.

    ``lr`` picks one learning rate when the grid holds several. Introduced in notebook 05.
    """
    if lr is not None:
        runs = runs[runs["lr"] == lr]
    sgd = runs[runs["prediction_step"].isna()].set_index("seed")["test_acc"]
    plp_runs = runs[runs["prediction_step"] == prediction_step].set_index("seed")["test_acc"]
    if sgd.index.has_duplicates or plp_runs.index.has_duplicates:
        raise ValueError("runs hold several learning rates: pass lr to pick one")
    seeds = sgd.index.intersection(plp_runs.index)
    if seeds.empty:
        raise ValueError(f"runs have no seed with both plain SGD and prediction_step={prediction_step}")
    return (plp_runs[seeds] - sgd[seeds]).to_numpy()
