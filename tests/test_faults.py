"""Bad input and faults, in one table: what every public function and command refuses, and what survives a crash.

* ``BAD_INPUTS``: one row per bad input, ``(call, exception type, pattern)``. The call must raise exactly that
  type (or a subclass) with a one-line message in which the pattern (a regular expression, usually the argument's
  name) is found, before any work is done.
* ``COMMANDS``: bad input to every ``python -m dcnn_helpers.X`` command. Each must exit non-zero with one error
  line per failure on stderr and no traceback, after processing the rest of a batch. All of them run in one child
  process (importing torch once), as ``python -m`` would run them.
* Faults: a writer killed in the middle of a large write, a full disk (a file-size limit), and damaged or foreign
  checkpoints: nothing the user had is lost, and the error names the file.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from dcnn_helpers import (checkpoint, config, data, dcnn, depth, distributed, envcheck, fileio, llr, merge_run, models,
                          plp, rates, regions, stats, train, validation)
from dcnn_helpers.tools import colab, gpucheck, nbclean, workshop

ROOT = Path(__file__).resolve().parents[1]
NAN, INF = math.nan, math.inf
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0  # root may write read-only files: those rows cannot fail


# ----------------------------------------------------------------------------------------------------------------
# Small things the rows need (built once; every row gets its own empty folder as ``c.tmp``)

def _split(n: int, seed: int, dtype=np.uint8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3)).astype(dtype), rng.integers(0, 10, n).astype(np.int64)


CLASSES = tuple(f"class{i}" for i in range(10))
TRAIN, TEST = _split(10, 0), _split(4, 1)


def _notebook(nbformat: int = 4, **extra) -> dict:
    cell = {"cell_type": "code", "id": "a", "execution_count": 1, "source": "1", "outputs": [],
            "metadata": {"scrolled": True}}
    return {"nbformat": nbformat, "nbformat_minor": 5, "metadata": {}, "cells": [cell], **extra}


def _checkpoint_state(model_name: str = "fast") -> dict:
    return dict(settings={"model": model_name}, data={"n_train": 10, "n_test": 4}, model={"w": torch.ones(2)},
                optimizer={}, scheduler={}, rng=checkpoint.rng_state(), epoch=1, step=1, history=[])


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A valid cache, a tiny data set and the models and targets the rows feed bad arguments alongside."""
    folder = data.write_cache(tmp_path_factory.mktemp("cache") / "cifar10", TRAIN, TEST, CLASSES)
    bn = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Tanh(), nn.Linear(3, 1)).double()
    tensors = [torch.from_numpy(a) for a in (*TRAIN, *TEST)]
    return SimpleNamespace(
        cache=folder, ds=data.ImageData(*tensors, CLASSES), bn_train=bn.train(),
        target=dcnn.BumpSeries(4, 1.0, 1), net=depth.mlp([2, 3, 1]), relu=regions.he_network([4, 4]),
        model=nn.Linear(3, 10), cfg=train.TrainConfig(model="fast", epochs=1),
        x=torch.zeros(6, 4), y=torch.zeros(6), X2=np.zeros((5, 2)), y2=np.zeros(5),
    )


@pytest.fixture
def c(shared, tmp_path):
    """``shared`` plus an empty folder for this row, and a few files in it made on request."""
    c = SimpleNamespace(**vars(shared), tmp=tmp_path)
    c.file = lambda name, text="x": fileio.write_text(tmp_path / name, text)
    return c


def _cache_copy(c, damage) -> Path:
    """A copy of the shared cache in ``c.tmp`` with ``damage(folder)`` applied."""
    folder = c.tmp / "cifar10"
    folder.mkdir()
    for path in c.cache.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    damage(folder)
    return folder


def _append_sum_line(folder: Path) -> None:
    with open(folder / data.CHECKSUMS, "a") as handle:
        handle.write("# a comment is fine\n\nnot a checksum line\n")


def _user_folder(c) -> Path:
    mine = c.tmp / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    return mine


def _with_checkpoint(c, write) -> Path:
    path = c.tmp / "run.pt"
    write(path)
    return path


def _resume(c, path: Path, cfg: train.TrainConfig | None = None):
    return train.fit(c.model, c.ds, cfg or c.cfg, device="cpu", progress=False, checkpoint_path=path, resume=True)


def _garbage_checkpoint(c):
    return _with_checkpoint(c, lambda p: p.write_bytes(b"PK\x03\x04 not really a zip" * 10))


def _truncated_checkpoint(c):
    def write(p):
        checkpoint.save(p, _checkpoint_state())
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return _with_checkpoint(c, write)


# ----------------------------------------------------------------------------------------------------------------
# The table: (id, call, exception type, pattern the one-line message must contain)

def R(name, call, error, pattern, *marks):
    return pytest.param(call, error, pattern, id=name, marks=marks)


ROOT_SKIP = pytest.mark.skipif(AS_ROOT, reason="root can write read-only files")
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")

BAD_INPUTS = [
    # validation: the ground floor every other row relies on
    R("validation.integer-bool", lambda c: validation.integer("epochs", True), TypeError,
      r"^epochs must be an integer"),
    R("validation.real-nan-numpy", lambda c: validation.real("lr", np.float32("nan")), ValueError, r"^lr=nan"),
    R("validation.path-bytes", lambda c: validation.path("out", b"x"), TypeError, r"^out must be a path"),
    R("validation.path-blank", lambda c: validation.path("out", "  "), ValueError, r"^out=.* is empty"),
    R("validation.memory-huge", lambda c: validation.memory("a table", 1e20), ValueError, r"a table would need about"),
    # config
    R("config.sizes-int", lambda c: config.sizes(3), TypeError, r"notebook must be"),
    R("config.sizes-unknown", lambda c: config.sizes("99"), KeyError, r"notebook='99' has no sizes"),
    R("config.sizes-profile", lambda c: config.sizes("03", "turbo"), ValueError, r"profile_name='turbo'"),
    R("config.device-int", lambda c: config.device(0), TypeError, r"prefer must be a device name"),
    R("config.device-unknown", lambda c: config.device("tpu"), ValueError, r"'tpu' is not a device"),
    R("config.device-no-cuda", lambda c: config.device("cuda"), RuntimeError, r"CUDA is not available", NO_CUDA),
    R("config.seed-negative", lambda c: config.seed_everything(-1), ValueError, r"^seed=-1"),
    R("config.seed-float", lambda c: config.seed_everything(1.5), TypeError, r"^seed must be an integer"),
    R("config.seed-deterministic", lambda c: config.seed_everything(0, deterministic="yes"), TypeError,
      r"deterministic must be True or False"),
    R("config.data_dir-empty", lambda c: config.data_dir(""), ValueError, r"^root=.* is empty"),
    R("config.data_dir-int", lambda c: config.data_dir(5), TypeError, r"^root must be a path"),
    # fileio
    R("fileio.write-onto-folder", lambda c: fileio.write_text(c.tmp, "x"), IsADirectoryError, r"it is a folder"),
    R("fileio.write-under-a-file", lambda c: fileio.write_text(c.file("f") / "a.txt", "x"), OSError,
      r"cannot write .*f/a\.txt"),
    R("fileio.write-read-only", lambda c: (c.file("ro").chmod(0o444), fileio.write_text(c.tmp / "ro", "y")),
      PermissionError, r"ro: the file is read-only", ROOT_SKIP),
    R("fileio.write_json-unserialisable", lambda c: fileio.write_json(c.tmp / "a.json", {"x": object()}), TypeError,
      r"not JSON serializable"),
    R("fileio.check_writable-folder", lambda c: fileio.check_writable(c.tmp, "--json"), ValueError,
      r"--json path .* is a folder"),
    R("fileio.check_writable-under-a-file", lambda c: fileio.check_writable(c.file("f") / "o.json", "--json"),
      ValueError, r"--json path .*o\.json: cannot create its folder"),
    R("fileio.check_folder-users-files", lambda c: fileio.check_folder(_user_folder(c)), FileExistsError,
      r"mine holds files this command did not write"),
    R("fileio.write_folder-onto-a-file", lambda c: fileio.write_folder(c.file("f"), lambda f: None),
      FileExistsError, r"f is a file, not a folder"),
    # data: checked on write and on load, every message names the file or the field
    R("data.sha256-int", lambda c: data.sha256(5), TypeError, r"^path must be a path"),
    R("data.write_cache-empty-folder", lambda c: data.write_cache("", TRAIN, TEST, CLASSES), ValueError,
      r"^folder=.* is empty"),
    R("data.write_cache-float-images", lambda c: data.write_cache(c.tmp, _split(10, 0, np.float32), TEST, CLASSES),
      TypeError, r"train images are float32"),
    R("data.write_cache-channels-first", lambda c: data.write_cache(
        c.tmp, (TRAIN[0].transpose(0, 3, 1, 2), TRAIN[1]), TEST, CLASSES), ValueError, r"train images have shape"),
    R("data.write_cache-pixels-out-of-range", lambda c: data.write_cache(
        c.tmp, (TRAIN[0].astype(np.int64) + 1000, TRAIN[1]), TEST, CLASSES), ValueError, r"pixels must lie in 0-255"),
    R("data.write_cache-label-out-of-range", lambda c: data.write_cache(
        c.tmp, TRAIN, (TEST[0], TEST[1] + 10), CLASSES), ValueError, r"test labels hold 1\d, outside 0-9"),
    R("data.write_cache-labels-disagree", lambda c: data.write_cache(c.tmp, (TRAIN[0], TRAIN[1][:3]), TEST, CLASSES),
      ValueError, r"train labels have shape \(3,\).*\(10,\)"),
    R("data.write_cache-float-labels", lambda c: data.write_cache(c.tmp, (TRAIN[0], TRAIN[1] + 0.5), TEST, CLASSES),
      TypeError, r"train labels must be integer class indices"),
    R("data.write_cache-duplicate-classes", lambda c: data.write_cache(c.tmp, TRAIN, TEST, ("a",) * 10), ValueError,
      r"classes must be distinct"),
    R("data.write_cache-classes-not-names", lambda c: data.write_cache(c.tmp, TRAIN, TEST, list(range(10))),
      TypeError, r"classes must be class names"),
    R("data.write_cache-split-not-a-pair", lambda c: data.write_cache(c.tmp, TRAIN[0], TEST, CLASSES), TypeError,
      r"train must be a pair"),
    R("data.write_cache-too-few-images", lambda c: data.write_cache(c.tmp, _split(3, 0), TEST, CLASSES), ValueError,
      r"train holds 3 images"),
    R("data.load_cifar-missing-folder", lambda c: data.load_cifar(c.tmp / "nowhere"), data.DataError,
      r"nowhere is not usable: missing data_batch_1"),
    R("data.load_cifar-verify-string", lambda c: data.load_cifar(c.cache, verify="yes"), TypeError,
      r"verify must be True or False"),
    R("data.load_cifar-malformed-sum-line", lambda c: data.load_cifar(_cache_copy(c, _append_sum_line)),
      data.DataError, r"SHA256SUMS line 9 is not a SHA-256 line"),
    R("data.load_cifar-corrupt-file", lambda c: data.load_cifar(_cache_copy(
        c, lambda f: (f / "test_batch.npz").write_bytes(b"x" * 100))), data.DataError,
      r"test_batch\.npz is corrupt or truncated"),
    R("data.load_cifar-unverified-garbage", lambda c: data.load_cifar(_cache_copy(
        c, lambda f: (f / "test_batch.npz").write_bytes(b"x" * 100)), verify=False), data.DataError,
      r"test_batch\.npz cannot be read as a cache file"),
    R("data.load_cifar-bad-labels-on-load", lambda c: data.load_cifar(_cache_copy(c, lambda f: np.savez(
        f / "test_batch.npz", images=TEST[0], labels=TEST[1] + 10, classes=np.asarray(CLASSES))), verify=False),
      data.DataError, r"test_batch\.npz: its labels hold 1\d"),
    R("data.course_cifar10-source", lambda c: data.course_cifar10(source="web"), ValueError, r"^source='web'"),
    R("data.prepare_cifar10-download", lambda c: data.prepare_cifar10(c.tmp, download="no"), TypeError,
      r"download must be True or False"),
    R("data.ImageData-int32-labels", lambda c: data.ImageData(
        c.ds.train_images, c.ds.train_labels.int(), c.ds.test_images, c.ds.test_labels, CLASSES), TypeError,
      r"train_labels must be int64"),
    R("data.ImageData-list-images", lambda c: data.ImageData(
        [1], c.ds.train_labels, c.ds.test_images, c.ds.test_labels, CLASSES), TypeError,
      r"train_images must be a torch.Tensor"),
    R("data.subset-too-many", lambda c: c.ds.subset(n_train=11), ValueError, r"^n_train=11 must be at most 10"),
    R("data.subset-zero", lambda c: c.ds.subset(n_test=0), ValueError, r"^n_test=0 must be at least 1"),
    # checkpoint
    R("checkpoint.load-missing", lambda c: checkpoint.load(c.tmp / "none.pt"), checkpoint.CheckpointError,
      r"none\.pt does not exist"),
    R("checkpoint.load-folder", lambda c: checkpoint.load(c.tmp), checkpoint.CheckpointError, r"\(it is a folder\)"),
    R("checkpoint.load-garbage", lambda c: checkpoint.load(_garbage_checkpoint(c)), checkpoint.CheckpointError,
      r"run\.pt cannot be read: it is truncated or not a checkpoint"),
    R("checkpoint.load-truncated", lambda c: checkpoint.load(_truncated_checkpoint(c)), checkpoint.CheckpointError,
      r"run\.pt cannot be read: it is truncated"),
    R("checkpoint.load-old-format", lambda c: checkpoint.load(_with_checkpoint(
        c, lambda p: torch.save({**_checkpoint_state(), "format": 1}, p))), checkpoint.CheckpointError,
      r"run\.pt is not a checkpoint of this course's trainer \(format 1, expected 2\)"),
    # train: settings checked when made, checkpoints before any work
    R("train.TrainConfig-lr-nan", lambda c: train.TrainConfig(lr=NAN), ValueError, r"^lr=nan must be a finite"),
    R("train.TrainConfig-lr-inf", lambda c: train.TrainConfig(lr=INF), ValueError, r"^lr=inf must be a finite"),
    R("train.TrainConfig-epochs-zero", lambda c: train.TrainConfig(epochs=0), ValueError, r"^epochs=0"),
    R("train.TrainConfig-batch-zero", lambda c: train.TrainConfig(batch_size=0), ValueError, r"^batch_size=0"),
    R("train.TrainConfig-batch-float", lambda c: train.TrainConfig(batch_size=128.0), TypeError, r"^batch_size must"),
    R("train.TrainConfig-momentum-one", lambda c: train.TrainConfig(momentum=1.0), ValueError, r"^momentum=1.0"),
    R("train.TrainConfig-weight-decay-negative", lambda c: train.TrainConfig(weight_decay=-1e-4), ValueError,
      r"^weight_decay="),
    R("train.TrainConfig-label-smoothing-one", lambda c: train.TrainConfig(label_smoothing=1), ValueError,
      r"^label_smoothing=1"),
    R("train.TrainConfig-translate-huge", lambda c: train.TrainConfig(translate=17), ValueError, r"^translate=17"),
    R("train.TrainConfig-schedule", lambda c: train.TrainConfig(schedule="cosine"), ValueError, r"^schedule='cosine'"),
    R("train.TrainConfig-flip", lambda c: train.TrainConfig(flip="sometimes"), ValueError, r"^flip='sometimes'"),
    R("train.TrainConfig-tta", lambda c: train.TrainConfig(tta="crop"), ValueError, r"^tta='crop'"),
    R("train.TrainConfig-nesterov-string", lambda c: train.TrainConfig(nesterov="yes"), TypeError, r"^nesterov must"),
    R("train.TrainConfig-model-blank", lambda c: train.TrainConfig(model=" "), TypeError, r"^model must be"),
    R("train.TrainConfig-plp-inf", lambda c: train.TrainConfig(plp=INF), ValueError, r"^plp=inf"),
    R("train.fit-model-not-a-module", lambda c: train.fit("fast", c.ds, c.cfg), TypeError, r"^model must be"),
    R("train.fit-cfg-a-dict", lambda c: train.fit(c.model, c.ds, {"lr": 0.1}), TypeError, r"^cfg must be"),
    R("train.fit-target-acc", lambda c: train.fit(c.model, c.ds, c.cfg, target_acc=94), ValueError,
      r"^target_acc=94"),
    R("train.fit-resume-no-path", lambda c: train.fit(c.model, c.ds, c.cfg, resume=True), ValueError,
      r"resume=True needs a checkpoint_path"),
    R("train.fit-checkpoint-a-folder", lambda c: train.fit(c.model, c.ds, c.cfg, checkpoint_path=c.tmp), ValueError,
      r"checkpoint path .* is a folder"),
    R("train.fit-resume-garbage", lambda c: _resume(c, _garbage_checkpoint(c)), checkpoint.CheckpointError,
      r"run\.pt cannot be read"),
    R("train.fit-resume-truncated", lambda c: _resume(c, _truncated_checkpoint(c)), checkpoint.CheckpointError,
      r"run\.pt cannot be read: it is truncated"),
    R("train.fit-resume-other-model", lambda c: _resume(c, _with_checkpoint(
        c, lambda p: checkpoint.save(p, _checkpoint_state("resnet-20")))), checkpoint.CheckpointError,
      r"run\.pt belongs to model 'resnet-20', not 'fast'"),
    R("train.fit-resume-other-settings", lambda c: _resume(c, _with_checkpoint(
        c, lambda p: checkpoint.save(p, {**_checkpoint_state(), "settings": c.cfg.to_dict()})),
        train.TrainConfig(model="fast", epochs=1, lr=0.2)), checkpoint.CheckpointError,
      r"run\.pt was written with other settings \(lr: 0\.1 -> 0\.2\)"),
    R("train.schedule_factor-schedule", lambda c: train.schedule_factor(1, 10, schedule="cosine"), ValueError,
      r"schedule='cosine'"),
    # regions
    R("regions.grid_regions-huge-resolution", lambda c: regions.grid_regions(c.relu, resolution=10**6), ValueError,
      r"grid_regions\(resolution=1000000\) would need about"),
    R("regions.grid_regions-resolution-one", lambda c: regions.grid_regions(c.relu, resolution=1), ValueError,
      r"^resolution=1"),
    R("regions.grid_regions-inverted-box", lambda c: regions.grid_regions(c.relu, box=(1, -1, -1, 1)), ValueError,
      r"box=.* is empty or inverted"),
    R("regions.grid_regions-nan-box", lambda c: regions.grid_regions(c.relu, box=(NAN, 1, -1, 1)), ValueError,
      r"box\[0\]=nan"),
    R("regions.linear_regions_2d-short-box", lambda c: regions.linear_regions_2d(c.relu, box=(0, 1)), ValueError,
      r"box must be 4 finite numbers"),
    R("regions.he_network-zero-width", lambda c: regions.he_network([4, 0]), ValueError, r"widths\[1\]=0"),
    R("regions.he_network-activation", lambda c: regions.he_network([4], activation="tanh"), ValueError,
      r"^activation='tanh'"),
    R("regions.he_network-bias-std-nan", lambda c: regions.he_network([4], bias_std=NAN), ValueError, r"^bias_std=nan"),
    R("regions.two_spirals-noise-negative", lambda c: regions.two_spirals(noise=-0.1), ValueError, r"^noise=-0.1"),
    R("regions.two_spirals-turns-inf", lambda c: regions.two_spirals(turns=INF), ValueError, r"^turns=inf"),
    R("regions.zaslavsky-negative", lambda c: regions.zaslavsky(-1), ValueError, r"^n_hyperplanes=-1"),
    R("regions.serra_lower-narrow", lambda c: regions.serra_lower(2, [3]), ValueError, r"every width >= 3 \* n0"),
    R("regions.max_pieces_1d-narrow", lambda c: regions.max_pieces_1d([2]), ValueError, r"widths >= 3"),
    R("regions.montufar-widths-string", lambda c: regions.montufar2017_upper(2, "44"), TypeError,
      r"^widths must be a sequence"),
    R("regions.count_during_training-lr-nan", lambda c: regions.count_during_training(
        c.relu, torch.zeros(4, 4), torch.zeros(4), steps=1, lr=NAN), ValueError, r"^lr=nan"),
    R("regions.activation_patterns-shape", lambda c: regions.activation_patterns(c.relu, np.zeros((3, 5))),
      ValueError, r"points must have shape \(n, 2\)"),
    R("regions.activation_patterns-chunk", lambda c: regions.activation_patterns(c.relu, np.zeros((3, 2)), chunk=0),
      ValueError, r"^chunk=0"),
    # depth
    R("depth.mlp-one-width", lambda c: depth.mlp([3]), ValueError, r"widths must hold at least 2"),
    R("depth.mlp-huge", lambda c: depth.mlp([10**6, 10**6, 1]), ValueError, r"mlp\(widths=.*\) would need about"),
    R("depth.mlp-numpy-float-width", lambda c: depth.mlp([2, np.float64(3.0), 1]), TypeError,
      r"widths\[1\] must be an integer"),
    R("depth.mse-not-a-model", lambda c: depth.mse("net", c.X2, c.y2), TypeError, r"^model must be a torch"),
    R("depth.train_restarts-lr-nan", lambda c: depth.train_restarts([2, 3, 1], c.X2, c.y2, 1, 1, lr=NAN),
      ValueError, r"^lr=nan"),
    R("depth.train_restarts-lr-inf", lambda c: depth.train_restarts([2, 3, 1], c.X2, c.y2, 1, 1, lr=INF),
      ValueError, r"^lr=inf"),
    R("depth.train_restarts-restarts-zero", lambda c: depth.train_restarts([2, 3, 1], c.X2, c.y2, 0, 1), ValueError,
      r"^restarts=0"),
    R("depth.train_restarts-input-width", lambda c: depth.train_restarts([3, 3, 1], c.X2, c.y2, 1, 1), ValueError,
      r"widths=\[3, 3, 1\] must start with the input dimension 2"),
    R("depth.sawtooth_net-zero", lambda c: depth.sawtooth_net(0), ValueError, r"^k=0"),
    R("depth.max_net-zero", lambda c: depth.max_net(0), ValueError, r"^n=0"),
    R("depth.zigzag_net-decreasing", lambda c: depth.zigzag_net([0.6, 0.3], 1.0), ValueError,
      r"a=\[0\.6, 0\.3\] must be a non-empty strictly increasing"),
    R("depth.gap_table-zero-layers", lambda c: depth.gap_table(0, 2), ValueError, r"^hidden_layers=0"),
    R("depth.exact_erm-width-zero", lambda c: depth.exact_erm_one_hidden_layer(c.X2, c.y2, 0), ValueError,
      r"^width=0"),
    # dcnn
    R("dcnn.conv_widths-depth-zero", lambda c: dcnn.conv_widths(8, 0, 3), ValueError, r"^depth=0"),
    R("dcnn.DCNN1d-filter-float", lambda c: dcnn.DCNN1d(8, 2, 2.5), TypeError, r"^filter_size must be an integer"),
    R("dcnn.BumpSeries-smoothness-nan", lambda c: dcnn.BumpSeries(4, NAN, 1), ValueError, r"^smoothness=nan"),
    R("dcnn.sample-noise-nan", lambda c: dcnn.sample(c.target, 8, noise=NAN), ValueError, r"^noise=nan"),
    R("dcnn.sample-noise-inf", lambda c: dcnn.sample(c.target, 8, noise=INF), ValueError, r"^noise=inf"),
    R("dcnn.sample-noise-negative", lambda c: dcnn.sample(c.target, 8, noise=-1.0), ValueError, r"^noise=-1.0"),
    R("dcnn.sample-m-zero", lambda c: dcnn.sample(c.target, 0), ValueError, r"^m=0"),
    R("dcnn.sample-huge", lambda c: dcnn.sample(c.target, 10**12), ValueError, r"sample\(m=\d+\) would need about"),
    R("dcnn.sample-not-a-target", lambda c: dcnn.sample("bumps", 8), TypeError, r"^target must be a BumpSeries"),
    R("dcnn.fit-batch-zero", lambda c: dcnn.fit([nn.Linear(4, 1)], c.x, c.y, steps=1, batch_size=0), ValueError,
      r"^batch_size=0"),
    R("dcnn.fit-lr-nan", lambda c: dcnn.fit([nn.Linear(4, 1)], c.x, c.y, steps=1, lr=NAN), ValueError, r"^lr=nan"),
    R("dcnn.fit-no-models", lambda c: dcnn.fit([], c.x, c.y, steps=1), TypeError, r"^models must be a non-empty"),
    R("dcnn.fit-shapes", lambda c: dcnn.fit([nn.Linear(4, 1)], c.x, c.y[:3], steps=1), ValueError,
      r"x must be \(n, d\)"),
    R("dcnn.matched_fc-too-few-params", lambda c: dcnn.matched_fc(8, 3), ValueError, r"^n_params=3"),
    # llr
    R("llr.recovery_experiment-lr-nan", lambda c: llr.recovery_experiment(2, 2, [1], [1.0], lr=NAN), ValueError,
      r"^lr=nan"),
    R("llr.recovery_experiment-init-scale-inf", lambda c: llr.recovery_experiment(2, 2, [1], [1.0], init_scale=INF),
      ValueError, r"^init_scale=inf"),
    R("llr.recovery_experiment-momentum-one", lambda c: llr.recovery_experiment(2, 2, [1], [1.0], momentum=1),
      ValueError, r"^momentum=1"),
    R("llr.recovery_experiment-k-above-m", lambda c: llr.recovery_experiment(2, 2, [3], [1.0]), ValueError,
      r"^ks\[0\]=3 must be at most 2"),
    R("llr.recovery_experiment-ratio-zero", lambda c: llr.recovery_experiment(2, 2, [1], [0.0]), ValueError,
      r"^n_ratios\[0\]=0.0"),
    R("llr.recovery_experiment-no-ks", lambda c: llr.recovery_experiment(2, 2, [], [1.0]), ValueError, r"ks"),
    R("llr.recovery_experiment-dropout-one", lambda c: llr.recovery_experiment(2, 2, [1], [1.0], dropout=1.0),
      ValueError, r"^dropout=1.0"),
    R("llr.recovery_experiment-dtype", lambda c: llr.recovery_experiment(2, 2, [1], [1.0], dtype=torch.float16),
      ValueError, r"^dtype=torch.float16"),
    R("llr.jacobian-train-mode-batchnorm", lambda c: llr.jacobian(c.bn_train, torch.zeros(4, 2, dtype=torch.float64)),
      ValueError, r"^model has BatchNorm1d layers in training mode; call model.eval\(\)"),
    R("llr.spectral_rank-rtol-nan", lambda c: llr.spectral_rank(torch.eye(3), rtol=NAN), ValueError, r"^rtol=nan"),
    R("llr.fully_connected-activation", lambda c: llr.fully_connected([2, 3, 1], activation="gelu"), ValueError,
      r"^activation='gelu'"),
    R("llr.two_layer_ranks-d-zero", lambda c: llr.two_layer_ranks(0, 2, 1), ValueError, r"^d=0"),
    R("llr.matrix_factorisation_rank-r", lambda c: llr.matrix_factorisation_rank(3, 4), ValueError,
      r"^r=4 must be at most 3"),
    # plp
    R("plp.trajectory-lr-nan", lambda c: plp.trajectory(plp.rosenbrock, (0.0, 0.0), 3, lr=NAN), ValueError,
      r"^lr=nan"),
    R("plp.trajectory-lr-negative", lambda c: plp.trajectory(plp.rosenbrock, (0.0, 0.0), 3, lr=-0.1), ValueError,
      r"^lr=-0.1"),
    R("plp.trajectory-grad-noise-nan", lambda c: plp.trajectory(plp.rosenbrock, (0.0, 0.0), 3, 0.01, grad_noise=NAN),
      ValueError, r"^grad_noise=nan"),
    R("plp.trajectory-grad-noise-inf", lambda c: plp.trajectory(plp.rosenbrock, (0.0, 0.0), 3, 0.01, grad_noise=INF),
      ValueError, r"^grad_noise=inf"),
    R("plp.trajectory-momentum-nan", lambda c: plp.trajectory(plp.rosenbrock, (0.0, 0.0), 3, 0.01, momentum=NAN),
      ValueError, r"^momentum=nan"),
    R("plp.trajectory-steps-zero", lambda c: plp.trajectory(plp.rosenbrock, (0.0, 0.0), np.int64(0), 0.01),
      ValueError, r"^steps=0"),
    R("plp.trajectory-start-nan", lambda c: plp.trajectory(plp.rosenbrock, (NAN, 0.0), 3, 0.01), ValueError,
      r"^start\[0\]=nan"),
    R("plp.PLP-not-an-optimiser", lambda c: plp.PLP(c.net), TypeError, r"^base_optimizer must be"),
    R("plp.PLP-prediction-step-nan", lambda c: plp.PLP(torch.optim.SGD(c.net.parameters(), 0.1), NAN), ValueError,
      r"^prediction_step=nan"),
    R("plp.PLP-cycle-two", lambda c: plp.PLP(torch.optim.SGD(c.net.parameters(), 0.1), cycle=2), ValueError,
      r"^cycle=2"),
    R("plp.cycle_factor-prediction-step-inf", lambda c: plp.cycle_factor(0.5, INF), ValueError,
      r"^prediction_step=inf"),
    R("plp.update_cosines-lr-nan", lambda c: plp.update_cosines(c.net, [], lr=NAN), ValueError, r"^lr=nan"),
    R("plp.update_cosines-weight-decay-nan", lambda c: plp.update_cosines(c.net, [], lr=0.1, weight_decay=NAN),
      ValueError, r"^weight_decay=nan"),
    R("plp.surface_grid-huge", lambda c: plp.surface_grid(plp.rosenbrock, (-1, 1, -1, 1), points=10**6), ValueError,
      r"surface_grid\(points=1000000\) would need about"),
    R("plp.summarise_seeds-empty", lambda c: plp.summarise_seeds([]), ValueError, r"^values must be a non-empty"),
    # merge_run, models
    R("merge_run.resnet-huge-widen", lambda c: merge_run.resnet(20, widen=10**4), ValueError,
      r"resnet\(depth=20, widen=10000\) would need about"),
    R("merge_run.resnet-depth", lambda c: merge_run.resnet(21), ValueError, r"^depth=21"),
    R("merge_run.dmrnet-merge", lambda c: merge_run.dmrnet(8, merge="max"), ValueError, r"^merge='max'"),
    R("merge_run.merge_matrix-huge", lambda c: merge_run.merge_matrix(10**6), ValueError,
      r"merge_matrix\(dim=1000000\) would need about"),
    R("merge_run.block_edges-kind", lambda c: merge_run.block_edges("vgg"), ValueError, r"^kind='vgg'"),
    R("merge_run.matched_depths-zero", lambda c: merge_run.matched_depths(0), ValueError, r"^n=0"),
    R("merge_run.average_path_length-empty", lambda c: merge_run.average_path_length(np.zeros(3)), ValueError,
      r"counts holds no paths"),
    R("models.build_model-int", lambda c: models.build_model(20), TypeError, r"^model name must be a string"),
    R("models.build_model-unknown", lambda c: models.build_model("vgg-16"), ValueError, r"^model='vgg-16'"),
    R("models.build_model-widen-zero", lambda c: models.build_model("fast-w0"), ValueError, r"-wK must be at least 1"),
    R("models.FastNet-widen-huge", lambda c: models.FastNet(widen=10**4), ValueError, r"would need about"),
    # rates, stats, distributed
    R("rates.approximation_axis-depth-one", lambda c: rates.approximation_axis(1), ValueError, r"^depth=1"),
    R("rates.approximation_rate-r-nan", lambda c: rates.approximation_rate(4, NAN, 2), ValueError, r"^r=nan"),
    R("rates.depth_for_samples-scale-zero", lambda c: rates.depth_for_samples(10, 1.0, 2, scale=0), ValueError,
      r"^scale=0"),
    R("rates.fit_slopes-shape", lambda c: rates.fit_slopes([1, 2, 3], np.ones((2, 2))), ValueError,
      r"errors must have shape \(seeds, 3\)"),
    R("rates.error_ratios-negative", lambda c: rates.error_ratios(-np.ones((2, 2)), np.ones((2, 2))), ValueError,
      r"errors must be positive"),
    R("stats.mean_ci95-one-value", lambda c: stats.mean_ci95([1.0]), ValueError, r"^values must be a 1-D sequence"),
    R("stats.mean_ci95-nan", lambda c: stats.mean_ci95([1.0, NAN]), ValueError, r"^values must all be finite"),
    R("stats.mean_ci95-words", lambda c: stats.mean_ci95(["a", "b"]), TypeError, r"^values must be numbers"),
    R("stats.paired_ci95-lengths", lambda c: stats.paired_ci95([1, 2, 3], [1, 2]), ValueError,
      r"a and b must hold one value per seed"),
    R("distributed.local_batch-indivisible", lambda c: distributed.local_batch(10, 3), ValueError,
      r"batch size 10 is not divisible by the 3 processes"),
    R("distributed.shard_range-rank", lambda c: distributed.shard_range(10, 2, 2), ValueError, r"^rank=2"),
    R("distributed.launch_from_env-not-a-mapping", lambda c: distributed.launch_from_env(["RANK=0"]), TypeError,
      r"environ must be a mapping"),
    R("distributed.launch_from_env-bad-rank", lambda c: distributed.launch_from_env(
        {"RANK": "x", "WORLD_SIZE": "2", "LOCAL_RANK": "0"}), ValueError, r"RANK"),
    R("distributed.backend_for-unknown", lambda c: distributed.backend_for(torch.device("cpu"), "mpi"), ValueError,
      r"backend='mpi'"),
    R("distributed.check_resume_world", lambda c: distributed.check_resume_world(2, 1, "run.pt"), ValueError,
      r"run\.pt"),
    # envcheck and the tools
    R("envcheck.requirements-string", lambda c: envcheck.requirements("test"), TypeError, r"^extras must be a tuple"),
    R("envcheck.check_requirement-string", lambda c: envcheck.check_requirement("numpy"), TypeError, r"^req must be"),
    R("envcheck.run_checks-runtime-string", lambda c: envcheck.run_checks("no"), TypeError, r"^runtime must be"),
    R("nbclean.check_notebook-list", lambda c: nbclean.check_notebook([]), TypeError, r"^nb must be a notebook"),
    R("nbclean.check_notebook-nbformat-3", lambda c: nbclean.check_notebook({"nbformat": 3, "worksheets": []}),
      ValueError, r"^nb: an nbformat 3 notebook"),
    R("nbclean.read_notebook-invalid-json", lambda c: nbclean.read_notebook(c.file("a.ipynb", "{")), ValueError,
      r"a\.ipynb: not valid JSON"),
    R("nbclean.read_notebook-binary", lambda c: nbclean.read_notebook(fileio.write_bytes(c.tmp / "b.ipynb", b"\xff")),
      ValueError, r"b\.ipynb: not UTF-8"),
    R("nbclean.read_notebook-bad-cells", lambda c: nbclean.read_notebook(c.file(
        "c.ipynb", json.dumps({"nbformat": 4, "cells": [1]}))), ValueError, r"c\.ipynb: .*cells are .*malformed"),
    R("nbclean.clean-bad-metadata", lambda c: nbclean.clean(c.file(
        "d.ipynb", json.dumps(_notebook(metadata=["widgets"])))), ValueError, r"d\.ipynb: .*metadata is not an object"),
    R("nbclean.clean-bad-output-data", lambda c: nbclean.clean(c.file("e.ipynb", json.dumps(_notebook(cells=[
        {"cell_type": "code", "metadata": {}, "source": "", "outputs": [{"output_type": "x", "data": 5}]}])))),
      ValueError, r"e\.ipynb: .*malformed"),
    R("colab.parse_repository", lambda c: colab.parse_repository("gitlab.com/a/b"), ValueError,
      r"^repository must be a GitHub URL"),
    R("colab.stamp-old-minor", lambda c: colab.stamp({**_notebook(), "nbformat_minor": 2}, "https://github.com/a/b",
                                                     "01_x.ipynb"), ValueError, r"^nb must be in nbformat 4\.5"),
    R("colab.badge-branch", lambda c: colab.badge_cell("https://github.com/a/b", "01_x.ipynb", branch="a b"),
      ValueError, r"^branch must be a plain git branch"),
    R("workshop.out-inside-notebooks", lambda c: workshop.check_output_folder(workshop.NOTEBOOK_DIR / "student"),
      ValueError, r"^out=.* is inside the notebooks' folder"),
    R("workshop.out-is-notebooks", lambda c: workshop.check_output_folder(workshop.NOTEBOOK_DIR), ValueError,
      r"^out=.* is inside the notebooks' folder"),
    R("workshop.out-contains-notebooks", lambda c: workshop.check_output_folder(ROOT), ValueError,
      r"^out=.* contains the notebooks' folder"),
    R("workshop.out-int", lambda c: workshop.check_output_folder(5), TypeError, r"^out must be a folder path"),
    R("workshop.student-into-users-folder", lambda c: workshop.write_student_copies(_user_folder(c)), FileExistsError,
      r"mine holds files this command did not write"),
    R("workshop.html-into-users-folder", lambda c: workshop.build_site(_user_folder(c)), FileExistsError,
      r"mine holds files this command did not write"),
    R("workshop.time_notebooks-profile", lambda c: workshop.time_notebooks("bogus"), ValueError,
      r"profile must be one of"),
    R("gpucheck.tasks-unknown", lambda c: gpucheck._check_tasks(["99"]), ValueError, r"unknown tasks \['99'\]"),
]


@pytest.mark.parametrize("call, error, pattern", BAD_INPUTS)
def test_bad_input_is_refused_in_one_line_naming_it(c, call, error, pattern):
    with pytest.raises(error) as raised:
        call(c)
    message = str(raised.value.args[0]) if isinstance(raised.value, KeyError) else str(raised.value)
    assert re.search(pattern, message), f"{message!r} does not match {pattern!r}"
    assert "\n" not in message.strip(), f"not one line: {message!r}"


def test_the_table_holds_at_least_100_bad_inputs_across_the_package():
    names = [p.id for p in BAD_INPUTS]
    assert len(set(names)) == len(names) >= 100, len(names)
    assert len({name.split(".")[0] for name in names}) >= 20, "rows for every module"


# ----------------------------------------------------------------------------------------------------------------
# What must hold alongside the refusals: nothing converted, nothing deleted, numpy scalars welcome

def test_guarantees_that_are_not_refusals(shared, tmp_path, monkeypatch):
    model = depth.mlp([2, 3, 1], dtype=torch.float32)
    assert depth.mse(model, np.zeros((4, 2)), np.zeros(4)) >= 0
    assert next(model.parameters()).dtype == torch.float32, "depth.mse left the caller's model as it was"
    assert len(plp.trajectory(plp.quadratic_valley, (np.float32(1), 0.5), np.int64(2), np.float32(0.1)).losses) == 3
    assert dcnn.sample(shared.target, np.int64(4), noise=np.float64(0.1))[0].shape == (4, 4)
    old = os.umask(0o027)
    try:
        assert fileio.write_json(tmp_path / "a.json", {}).stat().st_mode & 0o777 == 0o640, "files get the umask"
    finally:
        os.umask(old)
    monkeypatch.setenv(config.PROFILE_ENV, "bogus")
    monkeypatch.setenv("DCNN_DEVICE", "cuda" if not torch.cuda.is_available() else "tpu")
    checks = envcheck.run_checks(runtime=True)  # never raises: each problem is a failed check
    failed = " ".join(check.line() for check in checks if not check.ok)
    assert "bogus" in failed and re.search("cuda|tpu", failed), failed


# ----------------------------------------------------------------------------------------------------------------
# Commands: each as `python -m` runs it, all in one child process

DRIVER = textwrap.dedent("""
    import contextlib, io, json, os, runpy, sys, traceback, warnings
    warnings.filterwarnings("ignore", category=RuntimeWarning, message=".*found in sys.modules")
    import torch  # noqa: F401  (imported once for all commands)
    results = []
    for module, argv, env in json.load(sys.stdin):
        saved = dict(os.environ)
        os.environ.update(env)
        out, err, code = io.StringIO(), io.StringIO(), 0
        sys.argv = [module, *argv]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                runpy.run_module(module, run_name="__main__", alter_sys=True)
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
            except BaseException:  # what the interpreter would print for an uncaught exception
                traceback.print_exc()
                code = 1
        os.environ.clear()
        os.environ.update(saved)
        results.append(dict(code=code, stdout=out.getvalue(), stderr=err.getvalue()))
    json.dump(results, sys.__stdout__)
""")

HELP = ["dcnn_helpers.bench", "dcnn_helpers.distributed", "dcnn_helpers.envcheck", "dcnn_helpers.llr",
        "dcnn_helpers.regions", "dcnn_helpers.tools.claims", "dcnn_helpers.tools.colab", "dcnn_helpers.tools.gpucheck",
        "dcnn_helpers.tools.nbclean", "dcnn_helpers.tools.workshop"]


def _command_cases(tmp: Path, cache: Path) -> dict[str, tuple]:
    """id -> (module, argv, env, errors expected on stderr, a check of what must survive or None)."""
    good, other = (fileio.write_json(tmp / name, _notebook()) for name in ("good.ipynb", "other.ipynb"))
    bad_json = fileio.write_text(tmp / "bad.ipynb", "{ not json")
    v3 = fileio.write_json(tmp / "v3.ipynb", {"nbformat": 3, "nbformat_minor": 0, "worksheets": []})
    mine = tmp / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    garbage = fileio.write_bytes(tmp / "garbage.pt", b"not a checkpoint")
    missing = tmp / "missing.ipynb"
    blocker = fileio.write_text(tmp / "blocker", "a file where a folder should be")
    untouched = lambda path, text: lambda: path.read_text() == text  # noqa: E731
    train_args = ["train", "--data", str(cache), "--model", "fast", "--epochs", "1", "--quiet", "--device", "cpu"]
    return {
        "nbclean-batch": ("dcnn_helpers.tools.nbclean", [str(bad_json), str(v3), str(missing), str(good)], {}, 3,
                          lambda: "scrolled" not in good.read_text()),  # the good notebook was cleaned all the same
        "colab-nbformat-3": ("dcnn_helpers.tools.colab", ["--repo", "https://github.com/a/b", str(v3)], {}, 1,
                             untouched(v3, v3.read_text())),
        "colab-bad-repo": ("dcnn_helpers.tools.colab", ["--repo", "gitlab:a/b", str(other)], {}, 1,
                           untouched(other, other.read_text())),
        "workshop-out-users-folder": ("dcnn_helpers.tools.workshop", ["student", str(mine)], {}, 1,
                                      untouched(mine / "thesis.tex", "years of work")),
        "workshop-out-in-notebooks": ("dcnn_helpers.tools.workshop",
                                      ["html", str(workshop.NOTEBOOK_DIR / "site")], {}, 1,
                                      lambda: not (workshop.NOTEBOOK_DIR / "site").exists()),
        "workshop-unknown-what": ("dcnn_helpers.tools.workshop", ["pdf"], {}, 1, None),
        "gpucheck-out-users-folder": ("dcnn_helpers.tools.gpucheck", ["--out", str(mine), "--tasks", "01"], {}, 1,
                                      lambda: sorted(p.name for p in mine.iterdir()) == ["thesis.tex"]),
        "bench-missing-data": ("dcnn_helpers.bench", ["train", "--data", str(tmp / "nowhere"), "--model", "fast",
                                                      "--epochs", "1"], {}, 1, None),
        "bench-json-under-a-file": ("dcnn_helpers.bench", [*train_args, "--json", str(blocker / "r.json")], {}, 1,
                                    None),
        "bench-lr-nan": ("dcnn_helpers.bench", [*train_args, "--lr", "nan"], {}, 1, None),
        "bench-resume-garbage": ("dcnn_helpers.bench", [*train_args, "--checkpoint", str(garbage), "--resume"], {}, 1,
                                 untouched(garbage, "not a checkpoint")),
        "llr-threads-zero": ("dcnn_helpers.llr", ["bench", "--threads", "0"], {}, 1, None),
        "regions-repeat-zero": ("dcnn_helpers.regions", ["bench", "--repeat", "0"], {}, 1, None),
        "distributed-processes-zero": ("dcnn_helpers.distributed", ["bench", "--processes", "0"], {}, 1, None),
        "envcheck-bogus-profile": ("dcnn_helpers.envcheck", ["--runtime"], {"DCNN_PROFILE": "bogus"}, 0, None),
        **{f"help-{module.split('.')[-1]}": (module, ["--help"], {}, 0, None) for module in HELP},
    }


@pytest.fixture(scope="module")
def command_runs(shared, tmp_path_factory):
    """Every command case run once: id -> (case, result)."""
    cases = _command_cases(tmp_path_factory.mktemp("commands"), shared.cache)
    assert sorted(cases) == sorted(COMMAND_NAMES)
    jobs = json.dumps([case[:3] for case in cases.values()])
    run = subprocess.run([sys.executable, "-c", DRIVER], input=jobs, capture_output=True, text=True, cwd=ROOT,
                         timeout=600, env={**os.environ, "DCNN_PROFILE": "smoke"})
    assert run.returncode == 0, run.stderr[-3000:]
    return {name: (case, result) for (name, case), result in zip(cases.items(), json.loads(run.stdout))}


USAGE_LINE = re.compile(r"^(usage: |\s)")  # argparse prints its usage (possibly over lines) before the error


COMMAND_NAMES = [
    "nbclean-batch", "colab-nbformat-3", "colab-bad-repo", "workshop-out-users-folder", "workshop-out-in-notebooks",
    "workshop-unknown-what", "gpucheck-out-users-folder", "bench-missing-data", "bench-json-under-a-file",
    "bench-lr-nan", "bench-resume-garbage", "llr-threads-zero", "regions-repeat-zero", "distributed-processes-zero",
    "envcheck-bogus-profile", *[f"help-{module.split('.')[-1]}" for module in HELP]]


@pytest.mark.parametrize("name", COMMAND_NAMES)
def test_commands_fail_in_one_line_per_problem_without_a_traceback(command_runs, name):
    (module, argv, env, errors, survived), result = command_runs[name]
    assert "Traceback" not in result["stderr"] + result["stdout"], result["stderr"]
    lines = [line for line in result["stderr"].splitlines() if line.strip() and not USAGE_LINE.match(line)]
    if argv == ["--help"]:
        assert result["code"] == 0 and "usage:" in result["stdout"]
    elif name.startswith("envcheck"):  # a report, not an error: the bogus profile is a failed check, then exit 1
        assert result["code"] == 1 and "bogus" in result["stdout"]
    else:
        assert result["code"] != 0
        assert len(lines) == errors, result["stderr"]
        assert all("error:" in line for line in lines), result["stderr"]
    if survived is not None:
        assert survived(), "what the user had is intact"


# ----------------------------------------------------------------------------------------------------------------
# Faults: nothing is lost when a writer is killed or the disk is full

KILLED_WRITER = textwrap.dedent("""
    import os, sys, time
    from dcnn_helpers import fileio
    target, how = sys.argv[1], sys.argv[2]
    if how == "before-rename":  # everything written and synced, then killed before the rename
        real_fsync = os.fsync
        def fsync(fd):
            real_fsync(fd)
            print("ready", flush=True)
            time.sleep(60)
        fileio.os.fsync = fsync
        fileio.write_json(target, {"rows": list(range(2_000_000))})
    else:  # killed while the payload is still streaming out
        def write(handle):
            for chunk in range(10_000):
                handle.write(b"x" * 1_000_000)
                if chunk == 2:
                    handle.flush()
                    print("ready", flush=True)
                time.sleep(0.01)
        fileio.atomic_write(target, write)
""")


@pytest.mark.parametrize("how", ["mid-stream", "before-rename"])
def test_a_writer_killed_mid_write_loses_nothing_and_its_temporary_is_cleaned(tmp_path, how):
    target = fileio.write_json(tmp_path / "results.json", {"kept": True})
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target), how], stdout=subprocess.PIPE,
                             text=True, cwd=ROOT)
    try:
        assert child.stdout.readline() == "ready\n"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert json.loads(target.read_text()) == {"kept": True}, "the old file is intact"
    stale = list(tmp_path.glob(".results.json.*.part"))
    assert len(stale) == 1 and stale[0].stat().st_size >= 3_000_000, "the kill came mid-write"
    fileio.write_json(target, {"kept": False})
    assert json.loads(target.read_text()) == {"kept": False}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"], "the next write removed the stale temporary"


FULL_DISK = textwrap.dedent("""
    import json, resource, signal, sys
    import torch
    from dcnn_helpers import checkpoint, fileio
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
    errors = {}
    for name, write in (("json", lambda: fileio.write_json(sys.argv[1], {"rows": list(range(100_000))})),
                        ("checkpoint", lambda: checkpoint.save(sys.argv[2], {"w": torch.zeros(100_000)}))):
        try:
            write()
            errors[name] = None
        except OSError as exc:
            errors[name] = str(exc)
    print(json.dumps(errors))
""")


def test_a_full_disk_leaves_every_file_as_it_was_and_names_it(tmp_path):
    results = fileio.write_json(tmp_path / "results.json", {"kept": True})
    saved = checkpoint.save(tmp_path / "run.pt", _checkpoint_state())
    before = saved.read_bytes()
    run = subprocess.run([sys.executable, "-c", FULL_DISK, str(results), str(saved)], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    errors = json.loads(run.stdout)
    assert errors["json"] and "results.json" in errors["json"] and "left as it was" in errors["json"], errors
    assert errors["checkpoint"] and "run.pt" in errors["checkpoint"], errors
    assert "\n" not in errors["json"] + errors["checkpoint"]
    assert json.loads(results.read_text()) == {"kept": True} and saved.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json", "run.pt"], "no temporary left behind"
    checkpoint.load(saved)  # and the old checkpoint still loads
