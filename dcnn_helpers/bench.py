"""Notebook 07's measurements and the trainer's command line: the speed-run recipe and its ablation, a speed run
side by side with airbench94, the compute ceiling, and plots.

Introduced in notebook 07 (CIFAR-10 training on a GPU). Command line (``--help`` on each lists every option)::

    python -m dcnn_helpers.bench train --data DIR --model NAME --epochs E [--batch-size B] [--lr LR] [--plp P]
        [--recipe fast] [--checkpoint PATH --resume] [--target-acc A] [--json PATH] [--compile] ...
    python -m dcnn_helpers.bench speedrun --data DIR --seeds N [--against airbench] [--json PATH]
    python -m dcnn_helpers.bench ablation --data DIR --seeds N [--json PATH]

Every :class:`dcnn_helpers.train.TrainConfig` field is an option of ``train`` (``--label-smoothing 0.1``,
``--no-ema``, ``--whiten-bias-epochs none``). Under ``torchrun --nproc_per_node N -m dcnn_helpers.bench train
...`` the same command trains on N GPUs (see :mod:`dcnn_helpers.distributed`).

The speed run compares with ``airbench`` 0.1.8 (Jordan 2024, arXiv:2404.00498; ``pip install airbench==0.1.8``,
an optional extra, needs CUDA): its ``train94`` runs the same number of times, on the same device, in the same
process, after its own warm-up, and its time is the one it reports itself (whitening initialisation, training and
the final test-time-augmented evaluation).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import io
import math
import os
import platform
import sys
import tempfile
import time
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F

from . import checkpoint, config, data, distributed, fileio, models, stats, train, validation

__all__ = [
    "fast_config",
    "ABLATIONS",
    "fast_runs",
    "ablation",
    "airbench_runs",
    "summarise",
    "format_summary",
    "speedrun",
    "matmul_tflops",
    "image_grid",
    "plot_curves",
    "main",
]

TARGET = 0.94


# ---------------------------------------------------------------------------------------------------------------
# The recipe and its ablation


def fast_config(batch_size: int = 1024, **changes: Any) -> train.TrainConfig:
    """The course's speed-run recipe: airbench94's settings (Jordan 2024, Sec. 3 and its ``airbench`` source) in the
    trainer's terms. ``changes`` override any :class:`~dcnn_helpers.train.TrainConfig` field. Introduced in notebook 07.

    airbench94 states its learning rate (11.5) and weight decay (0.0153) per 1024 images, for a summed loss and
    decoupled from the momentum; for the mean loss and PyTorch's SGD that is ``lr = 11.5 / (1 + 1 / (1 - 0.85))
    = 1.5`` at batch 1024, growing linearly with the batch, and a weight-decay coefficient ``0.0153 / 11.5``, so
    the decay per step (lr x coefficient) also grows with the batch: decay per image stays the same.
    """
    batch_size = validation.integer("batch_size", batch_size, 1)
    momentum = 0.85
    cfg = train.TrainConfig(
        model="fast", epochs=9.9, batch_size=batch_size, momentum=momentum, nesterov=True,
        lr=11.5 / (1 + 1 / (1 - momentum)) * batch_size / 1024,  # 1.5 at batch 1024
        weight_decay=0.0153 / 11.5, decoupled_weight_decay=True,
        bn_bias_lr_scale=64.0, freeze_bn_scales=True,  # BatchNorm: scales fixed at 1, biases learn 64x faster
        label_smoothing=0.2, schedule="triangle", warmup=0.23,  # 0.2 -> 1 at 23% of the steps -> 0.07
        translate=2, flip="alternate", tta="flip-translate", ema=True, whiten_bias_epochs=3,
        eval_every_epoch=False,
    )
    return dataclasses.replace(cfg, **changes)


# Each technique of the recipe, removed: its name -> the settings that remove it (the first row keeps them all).
ABLATIONS: dict[str, dict[str, Any]] = {
    "full recipe": {},
    "no look-ahead (EMA) of the weights": {"ema": False},
    "flip-only test-time augmentation": {"tta": "flip"},
    "no test-time augmentation": {"tta": "none"},
    "whitening bias trained throughout": {"whiten_bias_epochs": None},
    "BatchNorm scales trained, one learning rate": {"freeze_bn_scales": False, "bn_bias_lr_scale": 1.0},
    "coupled weight decay (biases decay 64x harder)": {"decoupled_weight_decay": False},
    "linear warm-up and decay schedule": {"schedule": "linear", "warmup": 0.2},
    "random flips instead of alternating ones": {"flip": "random"},
}


def _record(seed: int, result: train.TrainResult) -> dict[str, Any]:
    return dict(seed=seed, test_acc=result.test_acc, seconds=result.seconds, eval_seconds=result.eval_seconds,
                total_seconds=result.total_seconds, warmup_seconds=result.warmup_seconds)


def fast_runs(ds: data.ImageData, cfg: train.TrainConfig, seeds: Sequence[int],
              device: torch.device | str | None = None, progress: bool = False, keep: list | None = None
              ) -> list[dict[str, Any]]:
    """Train ``cfg`` once per seed (model built by name after seeding); one record per run. Introduced in notebook 07.

    ``keep``: a list that receives each trained model (still on the device), for evaluations afterwards.
    """
    records = []
    for seed in seeds:
        run_cfg = dataclasses.replace(cfg, seed=seed)
        config.seed_everything(seed, deterministic=False)  # cuDNN may pick its fastest kernels
        model = models.build_model(run_cfg.model, ds.num_classes)
        records.append(_record(seed, train.fit(model, ds, run_cfg, device=device, progress=progress)))
        if keep is not None:
            keep.append(model)
    return records


def _timed_evaluation(model: torch.nn.Module, split: train.DeviceData, tta: str) -> tuple[float, float]:
    device = split.images.device
    train._synchronize(device)
    started = time.perf_counter()
    accuracy = train.evaluate(model, split, tta)
    train._synchronize(device)
    return accuracy, time.perf_counter() - started


def ablation(ds: data.ImageData, seeds: Sequence[int], device: torch.device | str | None = None,
             rows: Mapping[str, Mapping[str, Any]] = ABLATIONS, base: train.TrainConfig | None = None,
             progress: bool = True) -> list[dict[str, Any]]:
    """Train the recipe with each technique removed (``rows``, the first the full recipe), once per seed.

    Rows that change only the test-time augmentation re-evaluate the full recipe's models instead of training
    again (same weights, other evaluation). Returns one record per run, with its ``technique``.
    Introduced in notebook 07.
    """
    base = base or fast_config()
    device = config.device(str(device) if device is not None else None)
    names = list(rows)
    if rows[names[0]]:
        raise ValueError("the first row of rows must be the full recipe ({}), the reference of the others")
    full_models: list[torch.nn.Module] = []
    test_split = train.to_device(ds, device)[1]
    records: list[dict[str, Any]] = []
    for name in config.progress(names, desc="ablation", disable=not progress):
        change = dict(rows[name])
        if change and set(change) == {"tta"}:
            full = [r for r in records if r["technique"] == names[0]]
            for model, ref in zip(full_models, full):
                acc, secs = _timed_evaluation(model, test_split, change["tta"])
                records.append(ref | dict(technique=name, test_acc=acc, eval_seconds=secs,
                                          total_seconds=ref["seconds"] + secs))
            continue
        cfg = dataclasses.replace(base, **change)
        runs = fast_runs(ds, cfg, seeds, device, keep=full_models if not change else None)
        records += [record | dict(technique=name) for record in runs]
    return records


def summarise(records: Sequence[Mapping[str, Any]], by: str = "technique", target: float = TARGET
              ) -> list[dict[str, Any]]:
    """Per group of ``records``: runs, accuracy and time (mean, 95% interval, min, max), and the time to ``target``
    (the mean time when the mean accuracy reaches it: both recipes are fixed-length runs). Introduced in notebook 07.
    """
    rows = []
    for key in dict.fromkeys(r[by] for r in records):
        group = [r for r in records if r[by] == key]
        acc = [r["test_acc"] for r in group]
        secs = [r["total_seconds"] for r in group]
        acc_mean, acc_ci = stats.mean_ci95(acc) if len(acc) > 1 else (acc[0], math.nan)
        time_mean, time_ci = stats.mean_ci95(secs) if len(secs) > 1 else (secs[0], math.nan)
        rows.append({by: key, "runs": len(group), "acc_mean": acc_mean, "acc_ci95": acc_ci, "acc_min": min(acc),
                     "acc_max": max(acc), "time_mean": time_mean, "time_ci95": time_ci, "time_min": min(secs),
                     "time_max": max(secs), "time_to_target": time_mean if acc_mean >= target else None})
    return rows


# ---------------------------------------------------------------------------------------------------------------
# airbench94, run side by side


def _airbench_version(module: Any) -> str:
    try:
        return metadata.version("airbench")
    except metadata.PackageNotFoundError:
        return getattr(module, "__version__", "unknown")


def _write_airbench_data(ds: data.ImageData, folder: Path) -> None:
    """The files airbench's ``CifarLoader`` reads: ``train.pt`` and ``test.pt`` (uint8 NHWC images, labels, classes)."""
    folder.mkdir(parents=True)
    for name, images, labels in (("train.pt", ds.train_images, ds.train_labels),
                                 ("test.pt", ds.test_images, ds.test_labels)):
        payload = {"images": images.contiguous(), "labels": labels, "classes": list(ds.classes)}
        fileio.atomic_write(folder / name, lambda handle, p=payload: torch.save(p, handle))


def _parse_airbench(printed: str) -> tuple[float, float]:
    """``(tta_val_acc, total_time_seconds)`` from the last row (``eval``) of the table ``train94`` prints."""
    rows = [line for line in printed.splitlines() if "eval" in line and "|" in line]
    if not rows:
        raise RuntimeError(f"airbench printed no final 'eval' row; it printed:\n{printed[-1000:]}")
    cells = [cell.strip() for cell in rows[-1].strip().strip("|").split("|")]
    return float(cells[-2]), float(cells[-1])


@contextlib.contextmanager
def _working_directory(path: Path):
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def airbench_runs(ds: data.ImageData, seeds: Sequence[int], module: str = "airbench") -> tuple[str, list[dict]]:
    """Run airbench94's ``train94`` once per seed (after its ``warmup94``) on ``ds``; ``(version, records)``.

    Each record holds the accuracy and time airbench reports for itself. Needs CUDA and the ``airbench`` package.
    Introduced in notebook 07.
    """
    try:
        airbench = importlib.import_module(module)
    except ImportError:
        raise RuntimeError(
            f"the {module!r} package is not installed: pip install airbench==0.1.8 (it needs CUDA)") from None
    records = []
    with tempfile.TemporaryDirectory() as tmp, _working_directory(Path(tmp)):
        _write_airbench_data(ds, Path(tmp) / "cifar10")
        with contextlib.redirect_stdout(io.StringIO()):
            airbench.warmup94()  # stops after one step: cuDNN's kernel search, not counted
        for seed in seeds:
            torch.manual_seed(seed)
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                airbench.train94()
            accuracy, seconds = _parse_airbench(printed.getvalue())
            records.append(dict(seed=seed, test_acc=accuracy, total_seconds=seconds))
    return _airbench_version(airbench), records


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()


def speedrun(ds: data.ImageData, seeds: Sequence[int], device: torch.device | str | None = None,
             against_airbench: bool = False, progress: bool = True) -> dict[str, Any]:
    """The fast recipe once per seed and, with ``against_airbench``, airbench94 as often, on the same device.

    Returns a JSON-ready dict: the device, versions, each run's record and :func:`summarise`'s rows per method.
    Introduced in notebook 07.
    """
    device = config.device(str(device) if device is not None else None)
    runs = [r | dict(method="fast (this course)") for r in fast_runs(ds, fast_config(), seeds, device, progress)]
    result: dict[str, Any] = dict(
        date=date.today().isoformat(), device=_device_name(device), torch=torch.__version__,
        n_train=len(ds.train_labels), n_test=len(ds.test_labels), config=fast_config().to_dict(),
    )
    if against_airbench:
        version, records = airbench_runs(ds, seeds)
        result["airbench_version"] = version
        runs += [r | dict(method=f"airbench {version} train94") for r in records]
    result["runs"] = runs
    result["summary"] = summarise(runs, by="method")
    return result


def format_summary(rows: Sequence[Mapping[str, Any]], by: str) -> str:
    """A plain-text table of :func:`summarise`'s rows: accuracy and time as mean ± 95% interval [min, max]."""
    lines = [f"{by:<48} {'runs':>4}  {'accuracy % (95% CI) [min, max]':<34} {'seconds (95% CI) [min, max]':<30} "
             f"to {TARGET:.0%}"]
    for row in rows:
        reached = "not reached" if row["time_to_target"] is None else f"{row['time_to_target']:.2f} s"
        lines.append(
            f"{row[by]:<48} {row['runs']:>4}  {100 * row['acc_mean']:6.2f} ± {100 * row['acc_ci95']:4.2f} "
            f"[{100 * row['acc_min']:.2f}, {100 * row['acc_max']:.2f}]{'':<4} {row['time_mean']:6.2f} ± "
            f"{row['time_ci95']:4.2f} [{row['time_min']:.2f}, {row['time_max']:.2f}]{'':<4} {reached}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# The hardware ceiling, image grids, learning curves


def matmul_tflops(device: str | torch.device | None = None, size: int = 4096, repeats: int = 10) -> float:
    """Achieved TFLOP/s of a large square matmul (bf16 on CUDA, float32 elsewhere): a practical compute ceiling.

    The best of ``repeats`` timed products of two ``size x size`` matrices (``2 size^3`` FLOP each), after one
    warm-up, with the device synchronised. Introduced in notebook 07.
    """
    device = config.device(str(device) if device is not None else None)
    size = validation.integer("size", size, 1)
    validation.memory(f"matmul_tflops(size={size})", 3 * 4 * size**2)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    best = math.inf
    for attempt in range(validation.integer("repeats", repeats, 1) + 1):
        train._synchronize(device)
        started = time.perf_counter()
        a @ b
        train._synchronize(device)
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


def plot_curves(axes, runs: Mapping[str, Sequence[train.TrainResult]]) -> None:
    """Test accuracy per epoch (``axes[0]``) and against training seconds (``axes[1]``: time-to-accuracy), one line
    per run label, mean over its seeds. Introduced in notebook 07."""
    for label, results in runs.items():
        acc = torch.tensor([[h["test_acc"] for h in r.history] for r in results]).mean(0)
        secs = torch.tensor([[h["seconds"] for h in r.history] for r in results]).mean(0)
        style = "--" if "PLP" in label else "-"
        (line,) = axes[0].plot(range(1, len(acc) + 1), acc, style, marker="o", ms=3, label=label)
        axes[1].plot(secs, acc, style, marker="o", ms=3, color=line.get_color(), label=label)
    axes[0].set(xlabel="epoch", ylabel="test accuracy")
    axes[0].xaxis.get_major_locator().set_params(integer=True)
    axes[1].set(xlabel="training seconds (device synchronised)", ylabel="test accuracy", title="time to accuracy")
    axes[0].legend(fontsize="small")


# ---------------------------------------------------------------------------------------------------------------
# Command line

FIELD_HELP = {
    "epochs": "epochs to train (may be fractional: the last epoch stops early)",
    "lr": "peak learning rate (mean loss of a batch)",
    "plp": "wrap SGD in parameters linear prediction with this prediction step (notebook 05); 'none': plain SGD",
    "whiten-bias-epochs": "train the whitening layer's bias only for this many epochs ('none': always)",
    "schedule": "learning-rate schedule",
    "warmup": "fraction of the steps over which the learning rate rises",
    "translate": "pixels of reflect padding for random crops (0: none)",
    "flip": "horizontal flips of training images",
    "tta": "test-time augmentation",
}


def _optional(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return None if text.strip().lower() == "none" else kind(text)
    parse.__name__ = kind.__name__
    return parse


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """One option per :class:`~dcnn_helpers.train.TrainConfig` field; those not given keep the recipe's value."""
    group = parser.add_argument_group("training settings (dcnn_helpers.train.TrainConfig)")
    choices = {"schedule": train.SCHEDULES, "flip": train.FLIPS, "tta": train.TTA_MODES}
    kinds = {"whiten_bias_epochs": _optional(int), "plp": _optional(float), "epochs": float}
    for f in dataclasses.fields(train.TrainConfig):
        flag, default = "--" + f.name.replace("_", "-"), f.default
        options: dict[str, Any] = dict(default=argparse.SUPPRESS, help=FIELD_HELP.get(flag[2:]))
        if isinstance(default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **options)
        else:
            kind = kinds.get(f.name, type(default))
            group.add_argument(flag, type=kind, choices=choices.get(f.name), **options)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dcnn_helpers.bench",
                                     description="Train and benchmark CIFAR networks with the course trainer.")
    commands = parser.add_subparsers(dest="command", required=True)
    data_help = "folder of the CIFAR cache (data_batch_*.npz, test_batch.npz), or its parent"
    sub = commands.add_parser("train", help="train one network (every TrainConfig field is an option)",
                              usage="python -m dcnn_helpers.bench train --data DIR --model NAME --epochs E [options]")
    sub.add_argument("--data", required=True, help=data_help)
    sub.add_argument("--recipe", choices=("plain", "fast"), default="plain",
                     help="start from the trainer's defaults (plain) or the speed-run recipe (fast)")
    _add_config_options(sub)
    sub.add_argument("--limit-train", type=int, default=None, metavar="N", help="use the first N training images")
    sub.add_argument("--limit-test", type=int, default=None, metavar="N", help="use the first N test images")
    sub.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda if available")
    sub.add_argument("--compile", nargs="?", const=True, default=False, metavar="MODE",
                     help="torch.compile the model, optionally in a mode (max-autotune, reduce-overhead: CUDA graphs); "
                          "the compilation is part of the reported warm-up")
    sub.add_argument("--checkpoint", default=None, metavar="PATH", help="write a checkpoint after every epoch")
    sub.add_argument("--resume", action="store_true", help="continue from --checkpoint if it exists")
    sub.add_argument("--target-acc", type=float, default=None, metavar="A", help="report the time to accuracy A")
    sub.add_argument("--json", default=None, metavar="PATH", help="write the result as JSON")
    sub.add_argument("--quiet", action="store_true", help="no progress bar")
    sub.add_argument("--sync-bn", action="store_true", help="under torchrun: BatchNorm over the global batch (GPU)")
    sub.add_argument("--dist-backend", choices=distributed.BACKENDS, default=None,
                     help="under torchrun: process-group backend (default: nccl on CUDA, gloo on CPU)")
    sub.add_argument("--dist-timeout", type=float, default=distributed.DEFAULT_TIMEOUT_S, metavar="SECONDS",
                     help="under torchrun: how long a rank waits for the others before failing (default: 300)")
    for name, text in (("speedrun", "the fast recipe over several seeds, optionally against airbench94"),
                       ("ablation", "the fast recipe with each of its techniques removed")):
        sub = commands.add_parser(name, help=text, usage=f"python -m dcnn_helpers.bench {name} --data DIR [options]")
        sub.add_argument("--data", required=True, help=data_help)
        sub.add_argument("--seeds", type=int, default=5, help="runs per recipe (seeds 0..N-1)")
        sub.add_argument("--device", choices=("cpu", "cuda"), default=None)
        sub.add_argument("--limit-train", type=int, default=None, metavar="N")
        sub.add_argument("--json", default=None, metavar="PATH", help="write every run and the summary as JSON")
        sub.add_argument("--quiet", action="store_true", help="no progress bar")
        if name == "speedrun":
            sub.add_argument("--against", choices=("airbench",), default=None,
                             help="also run airbench94's train94 as often (needs CUDA and airbench==0.1.8)")
    return parser


def _cache_folder(folder: Path) -> Path:
    """``folder`` itself if it holds the cache files, else its ``cifar10`` subfolder if that does."""
    nested = folder / data.CIFAR10_FOLDER
    return nested if not (folder / data.TEST_FILE).exists() and (nested / data.TEST_FILE).exists() else folder


def _train_command(args: argparse.Namespace, parser: argparse.ArgumentParser, group: contextlib.ExitStack) -> int:
    settings = {f.name: getattr(args, f.name) for f in dataclasses.fields(train.TrainConfig) if hasattr(args, f.name)}
    try:
        if args.recipe == "fast":
            cfg = fast_config(**settings)
        else:
            if "model" not in settings or "epochs" not in settings:
                raise ValueError("--model and --epochs are needed (or --recipe fast)")
            cfg = train.TrainConfig(**settings)
        for path, what in ((args.json, "--json"), (args.checkpoint, "--checkpoint")):
            if path is not None:
                fileio.check_writable(path, what)  # refuse now, not after an hour of training
        if args.resume and args.checkpoint is None:
            raise ValueError("--resume needs --checkpoint PATH")
        device = group.enter_context(distributed.process_group(args.device, args.dist_backend, args.dist_timeout))
        config.seed_everything(cfg.seed, deterministic=False)  # lets cuDNN choose its fastest kernels
        ds = data.load_cifar(_cache_folder(Path(args.data))).subset(args.limit_train, args.limit_test)
        model = models.build_model(cfg.model, ds.num_classes)
        result = train.fit(model, ds, cfg, device=device, target_acc=args.target_acc, progress=not args.quiet,
                           compile=args.compile, checkpoint_path=args.checkpoint, resume=args.resume,
                           sync_bn=args.sync_bn)
    except (ValueError, TypeError, RuntimeError, data.DataError) as exc:
        parser.error(str(exc).splitlines()[0] if isinstance(exc, checkpoint.CheckpointError) else str(exc))
    except KeyboardInterrupt:
        return 130
    if not distributed.is_main():  # only rank 0 prints and writes the JSON
        return 0
    ttt = "not reached" if result.time_to_target is None else f"{result.time_to_target:.2f} s"
    print(f"{cfg.model}: test accuracy {result.test_acc:.4f} after {result.epochs:g} epochs; {result.seconds:.2f} s "
          f"training + {result.eval_seconds:.2f} s final evaluation ({result.images_per_second:.0f} img/s, "
          f"{result.tflops:.3f} TFLOP/s); time to target: {ttt}")
    print(f"warm-up{' and compilation' if args.compile else ''} (not counted): {result.warmup_seconds:.2f} s")
    if args.json is not None:
        fileio.write_json(args.json, result.to_dict())
    return 0


def _measure_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        validation.integer("--seeds", args.seeds, 1)
        if args.json is not None:
            fileio.check_writable(args.json, "--json")
        ds = data.load_cifar(_cache_folder(Path(args.data))).subset(args.limit_train, None)
        seeds = range(args.seeds)
        if args.command == "speedrun":
            result = speedrun(ds, seeds, args.device, args.against == "airbench", progress=not args.quiet)
            table = format_summary(result["summary"], "method")
        else:
            records = ablation(ds, seeds, args.device, progress=not args.quiet)
            result = dict(date=date.today().isoformat(), device=_device_name(config.device(args.device)),
                          n_train=len(ds.train_labels), runs=records, summary=summarise(records))
            table = format_summary(result["summary"], "technique")
    except (ValueError, TypeError, RuntimeError, data.DataError) as exc:
        parser.error(str(exc))
    print(f"{result['device']}, {result['n_train']} training images, seeds 0-{args.seeds - 1}")
    print(table)
    if args.json is not None:
        fileio.write_json(args.json, result)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring); returns the exit status. Introduced in notebook 07."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command != "train":
        return _measure_command(args, parser)
    with contextlib.ExitStack() as group:  # under torchrun: the process group, destroyed on every way out
        return _train_command(args, parser, group)


if __name__ == "__main__":
    sys.exit(main())
