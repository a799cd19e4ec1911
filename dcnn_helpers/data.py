"""CIFAR data for the course: a checksummed cache of uint8 arrays, filled once from torchvision or copied in offline.

Introduced in notebook 07 (CIFAR-10 on a GPU); notebooks 05 and 06 use it for their small CIFAR-10 experiments.

The cache is a folder of ``data_batch_1.npz`` ... ``data_batch_5.npz`` and ``test_batch.npz``; each file holds
``images`` (uint8, N x 32 x 32 x 3, HWC, RGB), ``labels`` (int64) and ``classes`` (the class names in label order),
plus ``SHA256SUMS`` in the format of ``sha256sum``. Any number of classes works (CIFAR-100 in the same layout too).
Every file is written to a temporary name and renamed into place, so a failure never leaves a partial file.
The cache is built from torchvision's ``cifar-10-python.tar.gz`` when one is on disk (checked against its published
MD5), else downloaded through torchvision.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import config, validation

__all__ = ["ImageData", "DataError", "sha256", "write_cache", "cache_problems", "load_cifar", "prepare_cifar10",
           "sample_path", "load_sample", "course_cifar10", "CACHE_FILES", "CHECKSUMS", "CIFAR10_FOLDER", "SOURCES"]

TRAIN_FILES = tuple(f"data_batch_{i}.npz" for i in range(1, 6))
TEST_FILE = "test_batch.npz"
CACHE_FILES = TRAIN_FILES + (TEST_FILE,)
CHECKSUMS = "SHA256SUMS"
CIFAR10_FOLDER = "cifar10"
SAMPLE_FILE = "cifar10_sample.npz"
SAMPLE_TRAIN = 800  # the sample's first 800 images serve as a training set, the last 200 as a test set
SOURCES = ("sample", "full")
TARBALL = "cifar-10-python.tar.gz"  # the archive torchvision downloads, as published by its authors
TARBALL_MD5 = "c58f30108f718f92721af3b95e74349a"  # its published MD5 (the one torchvision checks too)


@dataclass
class ImageData:
    """Images as uint8 tensors (N x 32 x 32 x 3), labels as int64 tensors, and the class names."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> ImageData:
        """The first ``n_train`` training and ``n_test`` test images (``None``: all). Files are pre-shuffled."""
        for name, wanted, have in (("n_train", n_train, len(self.train_labels)), ("n_test", n_test, len(self.test_labels))):
            if wanted is not None:
                validation.integer(name, wanted, 1, have)  # at most the images available
        return ImageData(
            self.train_images[:n_train], self.train_labels[:n_train],
            self.test_images[:n_test], self.test_labels[:n_test], self.classes,
        )


class DataError(RuntimeError):
    """The data cache is missing, corrupt or cannot be downloaded; the message says what to do."""


def sha256(path: Path) -> str:
    """Hex SHA-256 digest of a file."""
    return _digest(path, hashlib.sha256())


def _digest(path: Path, digest) -> str:
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write(path: Path, write) -> None:
    """Call ``write(file_object)`` on a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_npz(path: Path, images: np.ndarray, labels: np.ndarray, classes) -> None:
    images = np.ascontiguousarray(images, dtype=np.uint8)
    if images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(f"images must be N x H x W x 3 uint8, got shape {images.shape}")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (len(images),):
        raise ValueError(f"labels must have shape ({len(images)},), got {labels.shape}")
    classes = np.asarray(list(classes), dtype=str)
    _atomic_write(path, lambda f: np.savez_compressed(f, images=images, labels=labels, classes=classes))


def write_cache(
    folder: str | os.PathLike,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    classes,
) -> Path:
    """Write ``train=(images, labels)`` split over five files and ``test`` into the cache layout, with checksums."""
    folder = Path(folder)
    chunks = np.array_split(np.arange(len(train[1])), len(TRAIN_FILES))
    for name, index in zip(TRAIN_FILES, chunks):
        _write_npz(folder / name, train[0][index], train[1][index], classes)
    _write_npz(folder / TEST_FILE, test[0], test[1], classes)
    sums = "".join(f"{sha256(folder / name)}  {name}\n" for name in CACHE_FILES)
    _atomic_write(folder / CHECKSUMS, lambda f: f.write(sums.encode()))
    return folder


def cache_problems(folder: str | os.PathLike) -> list[str]:
    """What is wrong with the cache in ``folder``: missing files, no checksums, checksum mismatches; [] when fine."""
    folder = Path(folder)
    missing = [name for name in CACHE_FILES if not (folder / name).is_file()]
    if missing:
        return [f"missing {name}" for name in missing]
    if not (folder / CHECKSUMS).is_file():
        return [f"missing {CHECKSUMS}"]
    expected = _read_checksums(folder / CHECKSUMS)
    return [
        f"{name} is corrupt or truncated (SHA-256 differs from {CHECKSUMS})"
        for name in CACHE_FILES
        if expected.get(name) != sha256(folder / name)
    ]


def _read_checksums(path: Path) -> dict[str, str]:
    """File name -> hex digest, from a file in ``sha256sum`` format."""
    pairs = (line.split(maxsplit=1) for line in path.read_text().splitlines() if line.strip())
    return {name.strip().lstrip("*"): digest for digest, name in pairs}


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    with np.load(path, allow_pickle=False) as npz:
        return npz["images"], npz["labels"], tuple(str(c) for c in npz["classes"])


def load_cifar(folder: str | os.PathLike, verify: bool = True) -> ImageData:
    """Load a cache folder (CIFAR-10, CIFAR-100 or any class count) into uint8/int64 tensors.

    With ``verify`` the files are checked against ``SHA256SUMS`` first (about a second for CIFAR-10); without,
    only their presence (for a folder :func:`prepare_cifar10` has just verified).
    """
    if not isinstance(verify, bool):
        raise TypeError(f"verify must be True or False, got {verify!r}")
    folder = Path(folder)
    problems = cache_problems(folder) if verify else [f"missing {n}" for n in CACHE_FILES if not (folder / n).is_file()]
    if problems:
        raise DataError(f"the CIFAR cache in {folder} is not usable: {'; '.join(problems)}. {_how_to_provide(folder)}")
    parts = [_read_npz(folder / name) for name in TRAIN_FILES]
    test_images, test_labels, classes = _read_npz(folder / TEST_FILE)
    return ImageData(
        torch.from_numpy(np.concatenate([p[0] for p in parts])),
        torch.from_numpy(np.concatenate([p[1] for p in parts])),
        torch.from_numpy(test_images),
        torch.from_numpy(test_labels),
        classes,
    )


def _how_to_provide(folder: Path) -> str:
    return (
        f"With internet access, run dcnn_helpers.data.prepare_cifar10() (it downloads through torchvision). "
        f"Offline, copy the files {', '.join(CACHE_FILES)} and {CHECKSUMS} into {folder}, or torchvision's "
        f"{TARBALL} into {folder} or {folder.parent}, or point the DCNN_DATA environment variable at a folder "
        f"whose '{CIFAR10_FOLDER}' subfolder holds them."
    )


def find_tarball(folder: Path) -> tuple[Path | None, list[str]]:
    """An intact ``cifar-10-python.tar.gz`` in the cache ``folder`` or its parent (the data root), and the problems
    with any copy found that does not match the published MD5 (such a copy is left where it is, never deleted)."""
    problems = []
    for candidate in (folder / TARBALL, folder.parent / TARBALL):
        if candidate.is_file():
            if _digest(candidate, hashlib.md5(usedforsecurity=False)) == TARBALL_MD5:
                return candidate, problems
            problems.append(f"{candidate} does not match the published MD5 {TARBALL_MD5} (incomplete or another file)")
    return None, problems


def _read_tarball(path: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], list[str]]:
    """Train and test ``(images, labels)`` and the class names from the python-format CIFAR-10 archive at ``path``.

    The batches are pickles, read only from an archive whose MD5 was verified (as torchvision does).
    """

    def load(tar: tarfile.TarFile, name: str) -> dict:
        try:
            member = tar.extractfile(f"cifar-10-batches-py/{name}")
        except KeyError:
            member = None
        if member is None:
            raise DataError(f"{path} has no file cifar-10-batches-py/{name}: not the python version of CIFAR-10")
        with member:
            return pickle.load(member, encoding="latin1")

    def split(batches: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        images = np.concatenate([b["data"] for b in batches]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return images, np.concatenate([b["labels"] for b in batches]).astype(np.int64)

    with tarfile.open(path, "r:gz") as tar:
        train = split([load(tar, f"data_batch_{i}") for i in range(1, len(TRAIN_FILES) + 1)])
        test = split([load(tar, "test_batch")])
        classes = load(tar, "batches.meta")["label_names"]
    return train, test, classes


def prepare_cifar10(root: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Make sure the CIFAR-10 cache exists and is intact in ``<root>/cifar10``; returns that folder.

    ``root`` resolves as: the argument, else ``DCNN_DATA``, else the repository's ``data/``. A missing or corrupt
    cache is rebuilt, each file replaced atomically, from the first of: torchvision's ``cifar-10-python.tar.gz``
    found in ``<root>/cifar10`` or ``<root>`` and matching its published MD5 (no network needed; the archive is left
    in place); ``torchvision.datasets.CIFAR10(download=True)`` when ``download`` is true. Otherwise, or when the
    download fails, a :class:`DataError` says what is missing and how to provide it.
    """
    if not isinstance(download, bool):
        raise TypeError(f"download must be True or False, got {download!r}")
    folder = config.data_dir(root) / CIFAR10_FOLDER
    problems = cache_problems(folder)
    if not problems:
        return folder
    tarball, tarball_problems = find_tarball(folder)
    problems += tarball_problems
    if tarball is not None:
        train, test, classes = _read_tarball(tarball)
    elif not download:
        raise DataError(f"CIFAR-10 is not ready in {folder}: {'; '.join(problems)}. {_how_to_provide(folder)}")
    else:
        train, test, classes = _download_cifar10(folder, problems)
    write_cache(folder, train, test, classes)
    return folder


def _download_cifar10(folder: Path, problems: list[str]):
    """Train and test ``(images, labels)`` and the class names, downloaded by torchvision into a scratch folder."""
    from torchvision.datasets import CIFAR10

    folder.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=folder, prefix=".download-"))
    try:
        train = CIFAR10(scratch, train=True, download=True)
        test = CIFAR10(scratch, train=False, download=True)
    except Exception as exc:  # no network, blocked host, interrupted download
        raise DataError(
            f"could not download CIFAR-10 ({type(exc).__name__}: {exc}); the cache in {folder} has: "
            f"{'; '.join(problems)}. {_how_to_provide(folder)}"
        ) from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return (train.data, np.array(train.targets)), (test.data, np.array(test.targets)), train.classes


def sample_path() -> Path:
    """The small real CIFAR-10 sample committed with the course (see ``data/README.md``)."""
    return config.REPO_ROOT / "data" / SAMPLE_FILE


def load_sample() -> ImageData:
    """The committed sample: its first 800 images as a training set, the other 200 as a test set. No download."""
    path = sample_path()
    if not path.is_file() or _read_checksums(path.parent / CHECKSUMS).get(SAMPLE_FILE) != sha256(path):
        raise DataError(f"the CIFAR-10 sample {path} is missing or corrupt; restore it with `git checkout -- data/`")
    images, labels, classes = _read_npz(path)
    images, labels = torch.from_numpy(images), torch.from_numpy(labels)
    return ImageData(images[:SAMPLE_TRAIN], labels[:SAMPLE_TRAIN], images[SAMPLE_TRAIN:], labels[SAMPLE_TRAIN:], classes)


def course_cifar10(n_train: int | None = None, n_test: int | None = None, source: str = "full") -> ImageData:
    """CIFAR-10 for a notebook: ``source="sample"`` (committed, offline) or ``"full"`` (the cache, prepared once).

    ``n_train`` and ``n_test`` take the first images of each split (``None``: all of them).
    """
    validation.choice("source", source, SOURCES)
    full = load_sample() if source == "sample" else load_cifar(prepare_cifar10(), verify=False)
    return full.subset(n_train, n_test)
