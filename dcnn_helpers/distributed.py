"""Data-parallel training with PyTorch's own machinery: ``torchrun``, ``torch.distributed`` and DDP.

Ground floor of the course, explained in notebook 07 (section "More than one GPU"): :mod:`dcnn_helpers.train`
calls these helpers, so the course trainer runs unchanged under ``torchrun``. Nothing here launches processes, meets other processes or moves
gradients: ``torchrun`` starts one process per device and sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``;
``torch.distributed.init_process_group`` connects them (NCCL between GPUs, gloo on CPU); ``DistributedDataParallel``
all-reduces (averages) the gradients during ``backward``. This module only decides, per process, which device it
uses, which images it trains on and what it evaluates, and keeps printing and writing files on rank 0.

One machine, 4 GPUs; a cluster of 2 nodes (same command on each; ``$HEAD`` is the first node's host name)::

    torchrun --standalone --nproc_per_node 4 -m dcnn_helpers.bench train --data DIR --model dmrnet-56 --epochs 40 \\
        --batch-size 512 --checkpoint runs/dmr.pt --resume --json runs/dmr.json
    torchrun --nnodes 2 --nproc_per_node 4 --rdzv-backend c10d --rdzv-endpoint $HEAD:29500 --rdzv-id dmr \\
        --max-restarts 3 -m dcnn_helpers.bench train ... --checkpoint /shared/runs/dmr.pt --resume

Faults: the process group has a timeout (``--dist-timeout``), so when one rank dies or hangs the others raise
instead of waiting for ever, and ``torchrun`` stops the whole job. With ``--max-restarts K`` torchrun starts it
again (up to K times); ``--resume`` then continues from the last checkpoint, written by rank 0 after every epoch
(on a cluster it must lie on a file system that every node sees). A checkpoint records the number of processes;
resuming with another number is refused, with the reason.

Benchmark (images per second with 1 and 2 gloo processes on CPU, each run a ``torchrun`` job)::

    python -m dcnn_helpers.distributed bench [--model fast] [--processes 1 2] [--n-train 1024] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from . import config, data, validation

__all__ = [
    "LAUNCH_VARIABLES",
    "Launch",
    "launch_from_env",
    "backend_for",
    "rank_device",
    "process_group",
    "world",
    "is_main",
    "local_batch",
    "shard_epoch",
    "shard_range",
    "sum_over_ranks",
    "sharded_accuracy",
    "broadcast_state",
    "convert_sync_bn",
    "wrap",
    "check_resume_world",
    "bench",
    "main",
]

LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
BACKENDS = ("gloo", "nccl")
DEFAULT_TIMEOUT_S = 300.0


@dataclasses.dataclass(frozen=True)
class Launch:
    """Where this process stands in a ``torchrun`` job: its global ``rank``, the ``world_size`` and its
    ``local_rank`` on its machine (the GPU it takes). Introduced in notebook 07."""

    rank: int
    world_size: int
    local_rank: int


def launch_from_env(environ: Mapping[str, str] | None = None) -> Launch | None:
    """The :class:`Launch` that ``torchrun`` (or Slurm's ``srun`` with these variables set) describes in the
    environment; None when none of ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` is set (a plain single process).

    Raises ValueError when only some are set or the values are inconsistent. Introduced in notebook 07.
    """
    env = os.environ if environ is None else environ
    if not isinstance(env, Mapping):
        raise TypeError(f"environ must be a mapping of variable names to values, got {type(env).__name__}")
    present = [name for name in LAUNCH_VARIABLES if name in env]
    if not present:
        return None
    missing = [name for name in LAUNCH_VARIABLES if name not in env]
    if missing:
        raise ValueError(
            f"{', '.join(present)} set but {', '.join(missing)} not: start the job with torchrun, which sets all of "
            f"{', '.join(LAUNCH_VARIABLES)}"
        )
    try:
        rank, world_size, local_rank = (int(env[name]) for name in LAUNCH_VARIABLES)
    except ValueError:
        raise ValueError(f"{', '.join(f'{n}={env[n]!r}' for n in LAUNCH_VARIABLES)} must be integers") from None
    if not (world_size >= 1 and 0 <= rank < world_size and local_rank >= 0):
        raise ValueError(
            f"RANK={rank}, WORLD_SIZE={world_size}, LOCAL_RANK={local_rank}: need WORLD_SIZE >= 1, "
            "0 <= RANK < WORLD_SIZE and LOCAL_RANK >= 0"
        )
    return Launch(rank, world_size, local_rank)


def backend_for(device: torch.device, backend: str | None = None) -> str:
    """The process-group backend for ``device``: ``backend`` if given (checked), else NCCL on CUDA, gloo otherwise.

    NCCL exchanges tensors between GPUs only, so asking for it on a process without a GPU is a ValueError.
    Introduced in notebook 07.
    """
    if isinstance(device, str):
        device = config.device(device)
    if not isinstance(device, torch.device):
        raise TypeError(f"device must be a torch.device or a device name, got {type(device).__name__}")
    if backend is None:
        return "nccl" if device.type == "cuda" else "gloo"
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is not supported; use one of {', '.join(BACKENDS)} (or None: automatic)")
    if backend == "nccl" and device.type != "cuda":
        raise ValueError(
            f"backend 'nccl' needs one CUDA GPU per process, but this process trains on {device.type} "
            f"(CUDA available: {torch.cuda.is_available()}); use gloo on CPU, or --device cuda on a machine with GPUs"
        )
    return backend


def rank_device(prefer: str | None, launch: Launch) -> torch.device:
    """This process's device: CUDA GPU number ``local_rank`` (made current) if CUDA is used, else ``prefer``'s
    device as :func:`dcnn_helpers.config.device` resolves it. Introduced in notebook 07."""
    device = config.device(prefer)
    if device.type != "cuda":
        return device
    count = torch.cuda.device_count()
    if launch.local_rank >= count:
        raise ValueError(
            f"LOCAL_RANK={launch.local_rank} has no GPU: this machine has {count}; start at most one process per GPU "
            f"(torchrun --nproc_per_node {count})"
        )
    device = torch.device("cuda", launch.local_rank)
    torch.cuda.set_device(device)
    return device


@contextlib.contextmanager
def process_group(
    device: str | None = None, backend: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> Iterator[torch.device]:
    """Join the ``torchrun`` job this process belongs to for the duration of the ``with`` block; yields the device.

    Started without a launcher it only yields ``config.device(device)``: nothing else changes. Under torchrun it
    picks this rank's device (:func:`rank_device`), initialises the default process group (:func:`backend_for`)
    with a ``timeout_s`` limit on every collective, so a dead peer makes the survivors fail instead of hang, and
    destroys the group on the way out, also after an error. Inside an enclosing ``process_group`` block it reuses
    that group. Introduced in notebook 07.
    """
    if not timeout_s > 0:
        raise ValueError(f"timeout_s={timeout_s!r} must be a positive number of seconds")
    launch = launch_from_env()
    if launch is None:
        yield config.device(device)
        return
    where = rank_device(device, launch)
    name = backend_for(where, backend)
    if dist.is_initialized():  # joined already (by the caller): use that group and leave it to its owner
        yield where
        return
    extra = {"device_id": where} if name == "nccl" else {}  # NCCL: connect eagerly, bound to this rank's GPU
    dist.init_process_group(name, timeout=timedelta(seconds=timeout_s), **extra)
    try:
        yield where
        dist.barrier()  # leave together: a rank that exits early must not cut the connections of one still working
    finally:
        dist.destroy_process_group()


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised default process group, ``(0, 1)`` without one.

    Introduced in notebook 07."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """True on rank 0 (and in a single process): the one process that prints and writes files.

    Introduced in notebook 07."""
    return world()[0] == 0


def local_batch(batch_size: int, world_size: int) -> int:
    """Each rank's share of the global ``batch_size``; ValueError naming both numbers if it does not divide.

    Keeping the *global* batch fixed keeps the learning rate and schedule meaningful at any number of processes.
    Introduced in notebook 07.
    """
    world_size = validation.integer("world_size", world_size, 1)
    batch_size = validation.integer("batch_size", batch_size, 1)
    if batch_size % world_size:
        raise ValueError(
            f"batch size {batch_size} is not divisible by the {world_size} processes: the global batch is split into "
            f"equal shares; use a multiple of {world_size} (e.g. {batch_size // world_size * world_size or world_size})"
        )
    return batch_size // world_size


def shard_epoch(plan: Any, steps: int, batch_size: int, rank: int | None = None, world_size: int | None = None):
    """This rank's part of one epoch's ``plan`` (a dataclass of tensors indexed by position: order, crops, flips).

    Step ``s`` of the single-process run uses positions ``s*B .. (s+1)*B - 1`` (``B = batch_size``, global); rank
    ``r`` takes the ``r``-th of the ``world_size`` equal slices of each of them, in step order. So every image of
    the first ``steps * B`` positions is used exactly once per epoch, by one rank, and a step of N ranks together
    sees exactly the images of the single-process step. Rank and size default to :func:`world`; with one process
    the plan is returned as it is. Introduced in notebook 07.
    """
    here, size = world()
    rank = here if rank is None else rank
    size = size if world_size is None else world_size
    if size == 1:
        return plan
    share = local_batch(batch_size, size)
    positions = torch.arange(steps * batch_size).view(steps, size, share)[:, rank].reshape(-1)
    return dataclasses.replace(plan, **{f.name: getattr(plan, f.name)[positions] for f in dataclasses.fields(plan)})


def shard_range(n: int, rank: int, world_size: int) -> slice:
    """Rank ``rank``'s contiguous part of ``n`` items: sizes differ by at most one, the parts cover each item
    exactly once. Introduced in notebook 07."""
    n = validation.integer("n", n, 0)
    world_size = validation.integer("world_size", world_size, 1)
    rank = validation.integer("rank", rank, 0, world_size - 1)
    bounds = np.linspace(0, n, world_size + 1).round().astype(int)
    return slice(int(bounds[rank]), int(bounds[rank + 1]))


def sum_over_ranks(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """All-reduce (sum) each tensor in place over the ranks; unchanged in a single process. Introduced in notebook 07."""
    if world()[1] > 1:
        for tensor in tensors:
            dist.all_reduce(tensor)
    return tensors


def sharded_accuracy(accuracy_of: Callable[[slice], float], n: int, device: torch.device) -> float:
    """Accuracy over ``n`` test images, each evaluated exactly once: every rank calls ``accuracy_of(part)`` on its
    :func:`shard_range`, and the correct counts are summed over the ranks. Introduced in notebook 07."""
    rank, size = world()
    if size == 1:
        return accuracy_of(slice(0, n))
    part = shard_range(n, rank, size)
    count = part.stop - part.start
    correct = torch.tensor(round(accuracy_of(part) * count) if count else 0, dtype=torch.int64, device=device)
    sum_over_ranks(correct)
    return correct.item() / n


@torch.no_grad()
def broadcast_state(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank (a no-op in a single process). Introduced in notebook 07.

    DDP does this once when it wraps a model; the trainer calls it again before evaluating, because BatchNorm's
    running statistics (buffers, not gradients) are updated by each rank from its own share of the batch.
    """
    if world()[1] > 1:
        for tensor in (*module.parameters(), *module.buffers()):
            dist.broadcast(tensor, src=0)


def convert_sync_bn(model: nn.Module, device: torch.device) -> nn.Module:
    """Turn every BatchNorm into ``nn.SyncBatchNorm`` (statistics over the global batch, not each rank's share).

    PyTorch synchronises BatchNorm on GPUs only, so several CPU processes get a ValueError that says so.
    Introduced in notebook 07.
    """
    if world()[1] > 1 and device.type != "cuda":
        raise ValueError(
            "--sync-bn needs CUDA: PyTorch's SyncBatchNorm synchronises GPU tensors only; on CPU train without it, "
            "or with a model without BatchNorm"
        )
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(model)`` under a process group of more than one rank, else ``model`` itself.

    DDP copies rank 0's weights to all ranks, and during ``backward`` all-reduces the gradients in buckets,
    overlapped with the rest of the backward pass, so every rank applies the same averaged gradient.
    Introduced in notebook 07.
    """
    if world()[1] == 1:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def check_resume_world(saved: int, world_size: int, checkpoint: str | os.PathLike) -> None:
    """Refuse to resume a checkpoint written by ``saved`` processes in a job of ``world_size``, saying why.

    Another number of ranks splits every batch differently and sums gradients in another order, so the run would
    not end where the interrupted one would have. Introduced in notebook 07.
    """
    if saved != world_size:
        raise ValueError(
            f"checkpoint {checkpoint} was written by a job of {saved} process(es), this job has {world_size}: each "
            "step's batch would be split differently and its gradients summed in another order, so the run would not "
            f"continue exactly; resume with torchrun --nproc_per_node {saved} (in total), or start afresh without "
            "--resume"
        )


# ---------------------------------------------------------------------------------------------------------------
# Benchmark: images per second against the number of processes


def _synthetic_cache(folder: Path, n_train: int, n_test: int) -> Path:
    """Random uint8 images in the cache layout (throughput does not depend on the pictures)."""
    rng = np.random.default_rng(0)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int64)

    return data.write_cache(folder / "cifar10", split(n_train), split(n_test), tuple(f"c{i}" for i in range(10)))


def _failure(stderr: str) -> str:
    """The line of a failed run's stderr that says why: the trainer's own error line if there is one."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    said = [line for line in lines if ": error: " in line or line.startswith(("ValueError", "RuntimeError"))]
    return (said or lines or ["no error output"])[0]


def bench(
    processes: Sequence[int] = (1, 2),
    model: str = "fast",
    n_train: int = 1024,
    batch_size: int = 128,
    epochs: int = 2,
    data_folder: str | os.PathLike | None = None,
    cores: int | None = None,
    timeout_s: float = 600,
) -> list[dict[str, Any]]:
    """Training images per second (all ranks together) for each number of gloo processes on CPU.

    Each entry runs ``torchrun --standalone --nproc_per_node N -m dcnn_helpers.bench train --device cpu`` on ``n_train``
    images (random ones unless ``data_folder``, a cache folder, is given), with the ``cores`` CPU cores (default: all)
    split evenly between the processes as threads. Returns one dict per N: ``processes``, ``threads``,
    ``images_per_second``, ``speedup`` (against the first entry) and ``test_acc``. Introduced in notebook 07.
    """
    processes = validation.integers("processes", processes, 1)
    if not isinstance(model, str):
        raise TypeError(f"model must be a model name such as 'fast', got {type(model).__name__}")
    for name, value in (("n_train", n_train), ("batch_size", batch_size), ("epochs", epochs)):
        validation.integer(name, value, 1)
    cores = os.cpu_count() or 1 if cores is None else validation.integer("cores", cores, 1)
    validation.real("timeout_s", timeout_s, 0, low_open=True)
    if data_folder is not None:
        validation.path("data_folder", data_folder)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(data_folder) if data_folder is not None else _synthetic_cache(Path(tmp), n_train, 200)
        for n in processes:
            out = Path(tmp) / f"bench-{n}.json"
            threads = max(cores // n, 1)
            command = [
                sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n),
                "-m", "dcnn_helpers.bench", "train", "--data", str(folder), "--model", model, "--epochs", str(epochs),
                "--batch-size", str(batch_size), "--limit-train", str(n_train), "--limit-test", "200",
                "--device", "cpu", "--quiet", "--json", str(out),
            ]
            env = os.environ | {"OMP_NUM_THREADS": str(threads)}
            run = subprocess.run(command, capture_output=True, text=True, env=env, cwd=config.REPO_ROOT,
                                 timeout=timeout_s)
            if run.returncode != 0:
                raise RuntimeError(f"the run with {n} process(es) failed: {_failure(run.stderr)}\n"
                                   f"{' '.join(command)}:\n{run.stderr[-2000:]}")
            result = json.loads(out.read_text())
            rows.append(dict(processes=n, threads=threads, images_per_second=result["images_per_second"],
                             test_acc=result["test_acc"]))
    for row in rows:
        row["speedup"] = row["images_per_second"] / rows[0]["images_per_second"]
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dcnn_helpers.distributed bench ...``: print the table of :func:`bench`. Introduced in notebook 07."""
    parser = argparse.ArgumentParser(prog="python -m dcnn_helpers.distributed",
                                     description="Benchmark the course trainer under torchrun on CPU (gloo).")
    commands = parser.add_subparsers(dest="command", required=True)
    sub = commands.add_parser("bench", help="images per second against the number of gloo processes")
    sub.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    sub.add_argument("--model", default="fast")
    sub.add_argument("--n-train", type=int, default=1024)
    sub.add_argument("--batch-size", type=int, default=128)
    sub.add_argument("--epochs", type=int, default=2)
    sub.add_argument("--data", default=None, help="a CIFAR cache folder (default: random images)")
    sub.add_argument("--cores", type=int, default=None, help="CPU cores to share between the processes")
    args = parser.parse_args(argv)
    try:
        rows = bench(args.processes, args.model, args.n_train, args.batch_size, args.epochs, args.data, args.cores)
    except (TypeError, ValueError, RuntimeError) as exc:  # RuntimeError: a run failed; its first line says why
        parser.error(str(exc).splitlines()[0])
    print(f"{args.model}, global batch {args.batch_size}, {args.n_train} images x {args.epochs} epochs, CPU + gloo")
    print(f"{'processes':>9} {'threads each':>12} {'images/s':>9} {'speed-up':>8}")
    for row in rows:
        print(f"{row['processes']:>9} {row['threads']:>12} {row['images_per_second']:>9.1f} {row['speedup']:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
