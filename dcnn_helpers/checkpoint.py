"""Checkpoints of training runs: written atomically, loaded safely, refused with one clear line when they do not fit.

Ground floor of the course; the trainer (:mod:`dcnn_helpers.train`, notebooks 05 and 07) writes one after every
epoch. A checkpoint is a dict of tensors and plain containers saved with ``torch.save`` through
:func:`dcnn_helpers.fileio.atomic_write` (a Ctrl-C or a kill during the write leaves the previous checkpoint
intact), and loaded with ``torch.load(weights_only=True)``: no code runs on load. It records the settings that
decide the run (a :class:`dcnn_helpers.train.TrainConfig` as a dict, the model name included) and the data sizes,
so that resuming another model or other settings is refused before any work, naming what differs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch

from . import fileio

__all__ = ["CheckpointError", "FORMAT", "save", "load", "check_compatible", "rng_state", "set_rng_state"]

FORMAT = 2  # bumped when the layout changes; older checkpoints are refused with a clear message
REQUIRED = ("format", "settings", "data", "model", "optimizer", "scheduler", "rng", "epoch", "step", "history")


class CheckpointError(ValueError):
    """A checkpoint cannot be used: missing, truncated, not a checkpoint, or written by another run."""


def save(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write ``state`` (with ``format`` added) to ``path`` atomically. Introduced in notebook 07."""
    return fileio.atomic_write(path, lambda handle: torch.save({"format": FORMAT, **state}, handle))


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save`, or raise :class:`CheckpointError` with one line naming the cause.

    ``weights_only=True``: only tensors and plain containers are unpickled. Introduced in notebook 07.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds (RuntimeError, EOFError, UnpicklingError, KeyError, ...)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"checkpoint {path} cannot be read: it is truncated or not a checkpoint ({reason[:120]}); "
            "delete it or start without resuming"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or any(k not in state for k in REQUIRED):
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"checkpoint {path} is not a checkpoint of this course's trainer (format {found!r}, expected {FORMAT}); "
            "start without resuming"
        )
    return state


def check_compatible(state: Mapping[str, Any], settings: Mapping[str, Any], data_sizes: Mapping[str, int],
                     path: str | os.PathLike) -> None:
    """Refuse to resume ``state`` with other ``settings`` or data: one line naming the model or what differs."""
    saved = state["settings"]
    if saved.get("model") != settings.get("model"):
        raise CheckpointError(
            f"checkpoint {path} belongs to model {saved.get('model')!r}, not {settings.get('model')!r}; "
            "use another checkpoint path or start without resuming"
        )
    keys = settings.keys() | saved.keys()
    changed = {k: (saved.get(k), settings.get(k)) for k in keys if saved.get(k) != settings.get(k)}
    changed |= {k: (state["data"].get(k), v) for k, v in data_sizes.items() if state["data"].get(k) != v}
    if changed:
        listed = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in sorted(changed.items()))
        raise CheckpointError(f"checkpoint {path} was written with other settings ({listed}); resume with the same "
                              "settings, or start afresh without resuming")


def rng_state() -> dict[str, Any]:
    """The global torch random states (CPU and every CUDA device), for :func:`save`."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
