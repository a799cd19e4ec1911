"""Profiles, experiment sizes, device choice and seeding: the one place every notebook reads its settings from.

Introduced in notebook 00 (setup and tour); used by every later notebook.

A *profile* says how much compute a run may use:

* ``smoke``  -- CI: seconds per notebook on 2 CPU cores, tiny sizes, every code path still runs;
* ``laptop`` -- CPU, the default without a GPU: a few minutes per notebook, results worth reading;
* ``gpu``    -- the default when CUDA is present: the full experiments.

It is read from the environment variable ``DCNN_PROFILE``. All experiment sizes live in
:data:`dcnn_helpers.sizes.SIZES`, one entry per notebook and profile, so notebooks never branch on the profile
themselves.
"""

from __future__ import annotations

import os
import platform
import random
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterable

import numpy as np
import torch

from . import validation
from .sizes import SIZES

__all__ = ["profile", "sizes", "device", "seed_everything", "data_dir", "progress", "describe", "PROFILES",
           "PROFILE_ENV", "DEVICE_ENV", "DATA_ENV", "REPO_ROOT"]

PROFILES = ("smoke", "laptop", "gpu")
PROFILE_ENV = "DCNN_PROFILE"
DEVICE_ENV = "DCNN_DEVICE"
DATA_ENV = "DCNN_DATA"
REPO_ROOT = Path(__file__).resolve().parent.parent


def profile() -> str:
    """The active profile: ``DCNN_PROFILE`` if set, else ``gpu`` when CUDA is available, else ``laptop``."""
    value = os.environ.get(PROFILE_ENV, "").strip().lower()
    if not value:
        return "gpu" if torch.cuda.is_available() else "laptop"
    if value not in PROFILES:
        raise ValueError(
            f"{PROFILE_ENV}={os.environ[PROFILE_ENV]!r} is not a profile; valid values are {', '.join(PROFILES)}"
        )
    return value


def sizes(notebook: str, profile_name: str | None = None) -> SimpleNamespace:
    """The experiment sizes of ``notebook`` (its file stem, e.g. ``"01_linear_regions"``, or just ``"01"``).

    Returns a fresh namespace, so a notebook may change a value for an exercise without affecting others.
    """
    name = profile() if profile_name is None else validation.choice("profile_name", profile_name, PROFILES)
    if not isinstance(notebook, str):
        raise TypeError(f"notebook must be a notebook's name such as '03', got {type(notebook).__name__}")
    matches = [key for key in SIZES if key == notebook or key.split("_", 1)[0] == notebook]
    if len(matches) != 1:
        raise KeyError(f"notebook={notebook!r} has no sizes; known notebooks: {', '.join(SIZES)}")
    return SimpleNamespace(**SIZES[matches[0]][name])


def device(prefer: str | None = None) -> torch.device:
    """The device to compute on: ``prefer`` or ``DCNN_DEVICE`` if given, else CUDA, then Apple MPS, then CPU.

    Like d2l's ``try_gpu``: asking for a device that is not there raises, so a typo is not silently ignored.
    """
    if prefer is not None and not isinstance(prefer, (str, torch.device)):
        raise TypeError(f"prefer must be a device name such as 'cpu' or 'cuda', got {type(prefer).__name__}")
    wanted = prefer or os.environ.get(DEVICE_ENV, "").strip() or None
    if wanted is not None:
        try:
            dev = torch.device(wanted)
        except RuntimeError:  # torch lists two dozen device types; name the setting and the usual ones
            source = "prefer" if prefer else DEVICE_ENV
            raise ValueError(f"{source}={str(wanted)!r} is not a device; use cpu, cuda, cuda:N or mps") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {wanted!r} was asked for, but CUDA is not available here; use 'cpu'")
        if dev.type == "mps" and not _mps_available():
            raise RuntimeError(f"device {wanted!r} was asked for, but Apple MPS is not available here; use 'cpu'")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def seed_everything(seed: int, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); with ``deterministic`` also pin cuDNN to deterministic kernels.

    Returns a ``torch.Generator`` seeded with ``seed`` for code that prefers an explicit generator.
    """
    seed = validation.integer("seed", seed, 0)
    if not isinstance(deterministic, bool):
        raise TypeError(f"deterministic must be True or False, got {deterministic!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic
    return torch.Generator().manual_seed(seed)


def data_dir(root: str | os.PathLike | None = None) -> Path:
    """Where data lives: ``root`` if given, else ``DCNN_DATA``, else the repository's ``data/`` folder."""
    if root is not None:
        return validation.path("root", root).expanduser()
    env = os.environ.get(DATA_ENV, "").strip()
    return Path(env).expanduser() if env else REPO_ROOT / "data"


def progress(iterable: Iterable | None = None, **kwargs: Any):
    """A ``tqdm.auto`` progress bar, silent in the smoke profile (so CI logs and saved notebooks stay short)."""
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", profile() == "smoke")
    kwargs.setdefault("leave", False)
    return tqdm(iterable, **kwargs)


def describe() -> str:
    """One line for notebook headers: Python, torch and CUDA versions, the device and the profile."""
    dev = device()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    return (
        f"Python {sys.version.split()[0]} | torch {torch.__version__} | device {dev} ({name}) | "
        f"threads {torch.get_num_threads()} | profile {profile()}"
    )
