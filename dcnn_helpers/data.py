"""CIFAR data for the course: a checksummed cache of uint8 arrays, filled once from torchvision or copied in offline.

Introduced in notebook 07 (CIFAR-10 on a GPU); notebooks 05 and 06 use it for their small CIFAR-10 experiments.

The cache is a folder of ``data_batch_1.npz`` ... ``data_batch_5.npz`` and ``test_batch.npz``; each file holds
``images`` (uint8, N x 32 x 32 x 3, HWC, RGB), ``labels`` (int64) and ``classes`` (the class names in label order),
plus ``SHA256SUMS`` in a format ``sha256sum -c`` reads. Any number of classes works (CIFAR-100 in the same layout too).
Every file is written atomically (:mod:`dcnn_helpers.fileio`), so a failure never leaves a partial file. The data are
checked, not only checksummed: on writing and on loading, images must be uint8 N x H x W x 3, labels one class index
per image, and every file must name the same classes; a problem is reported with the file and what is wrong.
The cache is built from torchvision's ``cifar-10-python.tar.gz`` when one is on disk (checked against its published
MD5), else downloaded through torchvision.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from . import config, fileio, validation

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
    """Images as uint8 tensors (N x 32 x 32 x 3), labels as int64 tensors, and the class names.

    Checked when made: uint8 images with three channels last, one int64 label per image below the number of
    classes, training and test images of one size (TypeError or ValueError naming the field otherwise).
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        self.classes = _check_classes("classes", self.classes)
        for split in ("train", "test"):
            images, labels = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
            for name, value in ((f"{split}_images", images), (f"{split}_labels", labels)):
                if not isinstance(value, torch.Tensor):
                    raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
            _check_images(f"{split}_images", images)
            _check_labels(f"{split}_labels", labels, len(images), len(self.classes))
            if labels.dtype != torch.int64:
                raise TypeError(f"{split}_labels must be int64, got {labels.dtype}")
        if self.train_images.shape[1:] != self.test_images.shape[1:]:
            raise ValueError(f"test_images are {tuple(self.test_images.shape[1:])} but train_images "
                             f"{tuple(self.train_images.shape[1:])}: both splits need one image size")

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
    return _digest(validation.path("path", path), hashlib.sha256())


def _digest(path: Path, digest) -> str:
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _as_array(what: str, value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if not isinstance(value, (np.ndarray, list, tuple)):
        raise TypeError(f"{what} must be an array, got {type(value).__name__}")
    return np.asarray(value)


def _shape_hint(shape: tuple[int, ...]) -> str:
    if len(shape) == 4 and shape[1] == 3:
        return "channels first? use images.transpose(0, 2, 3, 1) for N x H x W x 3"
    if len(shape) == 3 or (len(shape) == 4 and shape[3] == 1):
        return "grey images? the cache holds colour images, N x H x W x 3"
    return "the cache holds colour images, N x H x W x 3 (channels last), at least one"


def _check_images(what: str, images: Any) -> np.ndarray:
    """``images`` as a uint8 N x H x W x 3 array (N >= 1); TypeError or ValueError naming ``what`` otherwise."""
    images = _as_array(what, images)
    if images.dtype.kind == "f":
        raise TypeError(f"{what} are {images.dtype}; the cache holds uint8 pixels 0-255 (floats in [0, 1]: "
                        "(images * 255).round().astype(np.uint8))")
    if images.dtype.kind not in "ui":
        raise TypeError(f"{what} must hold uint8 pixels 0-255, got dtype {images.dtype}")
    if images.ndim != 4 or images.shape[3] != 3 or min(images.shape) == 0:
        raise ValueError(f"{what} have shape {images.shape}: {_shape_hint(images.shape)}")
    if images.dtype != np.uint8 and (images.min() < 0 or images.max() > 255):
        raise ValueError(f"{what} hold values from {images.min()} to {images.max()}; pixels must lie in 0-255")
    return images.astype(np.uint8, copy=False)


def _check_labels(what: str, labels: Any, n_images: int, n_classes: int) -> np.ndarray:
    """``labels`` as int64, one per image, each in ``0 .. n_classes - 1``; TypeError or ValueError otherwise."""
    labels = _as_array(what, labels)
    if labels.dtype.kind not in "ui":
        raise TypeError(f"{what} must be integer class indices, got dtype {labels.dtype}")
    if labels.shape != (n_images,):
        raise ValueError(f"{what} have shape {labels.shape}, but one label per image needs ({n_images},)")
    outside = labels[(labels < 0) | (labels >= n_classes)]
    if outside.size:
        raise ValueError(f"{what} hold {outside[0]}, outside 0-{n_classes - 1} (there are {n_classes} classes)")
    return labels.astype(np.int64, copy=False)


def _check_classes(what: str, classes: Any) -> tuple[str, ...]:
    """``classes`` as a tuple of distinct, non-empty names (at least one)."""
    if isinstance(classes, (str, bytes)) or not isinstance(classes, (Sequence, np.ndarray)) or np.ndim(classes) != 1:
        raise TypeError(f"{what} must be a sequence of class names, got {type(classes).__name__}")
    names = tuple(classes)
    if not all(isinstance(name, str) for name in names):
        raise TypeError(f"{what} must be class names (strings), got {names[:3]!r}")
    if not names or not all(name.strip() for name in names) or len(set(names)) < len(names):
        raise ValueError(f"{what} must be distinct, non-empty names (at least one), got {names[:12]!r}")
    return tuple(str(name) for name in names)


def _check_split(what: str, split: Any, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(split, (tuple, list)) or len(split) != 2:
        raise TypeError(f"{what} must be a pair (images, labels), got {type(split).__name__}")
    images = _check_images(f"{what} images", split[0])
    return images, _check_labels(f"{what} labels", split[1], len(images), n_classes)


def _write_npz(path: Path, images: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]) -> None:
    arrays = dict(images=np.ascontiguousarray(images), labels=labels, classes=np.asarray(classes, dtype=str))
    fileio.atomic_write(path, lambda f: np.savez_compressed(f, **arrays))


def write_cache(
    folder: str | os.PathLike,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    classes,
) -> Path:
    """Write ``train=(images, labels)`` split over five files and ``test`` into the cache layout, with checksums.

    Images must be uint8 (or integers in 0-255) N x H x W x 3, labels integer class indices below ``len(classes)``,
    one per image; everything is checked before the first file is written.
    """
    folder = validation.path("folder", folder)
    classes = _check_classes("classes", classes)
    train = _check_split("train", train, len(classes))
    test = _check_split("test", test, len(classes))
    if train[0].shape[1:] != test[0].shape[1:]:
        raise ValueError(f"test images are {test[0].shape[1:]} but train images {train[0].shape[1:]}: one size, please")
    if len(train[1]) < len(TRAIN_FILES):
        raise ValueError(f"train holds {len(train[1])} images; the cache spreads them over {len(TRAIN_FILES)} files")
    chunks = np.array_split(np.arange(len(train[1])), len(TRAIN_FILES))
    for name, index in zip(TRAIN_FILES, chunks):
        _write_npz(folder / name, train[0][index], train[1][index], classes)
    _write_npz(folder / TEST_FILE, test[0], test[1], classes)
    fileio.write_text(folder / CHECKSUMS, "".join(f"{sha256(folder / name)}  {name}\n" for name in CACHE_FILES))
    return folder


def cache_problems(folder: str | os.PathLike) -> list[str]:
    """What is wrong with the cache in ``folder``: missing files, no checksums, checksum mismatches; [] when fine."""
    folder = validation.path("folder", folder)
    missing = [name for name in CACHE_FILES if not (folder / name).is_file()]
    if missing:
        return [f"missing {name}" for name in missing]
    if not (folder / CHECKSUMS).is_file():
        return [f"missing {CHECKSUMS}"]
    try:
        expected = _read_checksums(folder / CHECKSUMS)
        return [
            f"{name} is corrupt or truncated (SHA-256 differs from {CHECKSUMS})"
            for name in CACHE_FILES
            if expected.get(name) != sha256(folder / name)
        ]
    except (DataError, OSError) as exc:
        return [_error_line(exc)]


def _error_line(exc: BaseException) -> str:
    """``exc`` in one line: an OSError as ``file: reason``."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc)


_SUM_LINE = re.compile(r"(?P<escaped>\\?)(?P<digest>[0-9a-fA-F]{64})[ \t][ *]?(?P<name>.+)")
_TAG_LINE = re.compile(r"(?P<escaped>\\?)SHA256 \((?P<name>.+)\) = (?P<digest>[0-9a-fA-F]{64})")


def _read_checksums(path: Path) -> dict[str, str]:
    """File name -> lower-case hex digest, from a file that ``sha256sum -c`` accepts.

    Lines ``DIGEST  NAME``, ``DIGEST *NAME`` (binary mark) or ``SHA256 (NAME) = DIGEST`` (``--tag``), digests in
    either case, blank and ``#`` lines skipped; a malformed line raises DataError with its line number.
    """
    sums = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        line = line.rstrip("\r").lstrip()
        if not line or line.startswith("#"):
            continue
        match = _SUM_LINE.fullmatch(line) or _TAG_LINE.fullmatch(line)
        if match is None:
            raise DataError(f"{path} line {number} is not a SHA-256 line ('<64 hex digits>  <file name>' or "
                            f"'SHA256 (<file name>) = <64 hex digits>'): {line[:80]!r}")
        name = match["name"]
        if match["escaped"]:  # sha256sum escapes names holding a backslash or a newline
            name = re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m[1], m[1]), name)
        sums[name] = match["digest"].lower()
    return sums


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Images, labels and class names of one cache file, checked; DataError naming the file and the problem."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [key for key in ("images", "labels", "classes") if key not in npz.files]
            if missing:
                raise DataError(f"{path} has no array {missing[0]!r}: not a cache file")
            images, labels, classes = npz["images"], npz["labels"], npz["classes"]
    except DataError:
        raise
    except Exception as exc:  # not a zip, truncated, a pickle, a bare .npy: numpy raises many kinds
        raise DataError(f"{path} cannot be read as a cache file ({type(exc).__name__}: {exc})") from None
    try:
        classes = _check_classes("classes", classes.tolist() if classes.ndim == 1 else classes)  # numpy str -> str
        images = _check_images("images", images)
        return images, _check_labels("labels", labels, len(images), len(classes)), classes
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: its {exc}. Rewrite the cache with dcnn_helpers.data.write_cache") from None


def _read_cache(folder: Path) -> list[tuple[np.ndarray, np.ndarray, tuple[str, ...]]]:
    """Every file of the cache, checked one by one and against the first (same classes, same image size)."""
    parts = [_read_npz(folder / name) for name in CACHE_FILES]
    first = parts[0]
    for name, (images, _, classes) in zip(CACHE_FILES, parts):
        if classes != first[2]:
            raise DataError(f"{folder / name} names the classes {classes[:4]}... but {CACHE_FILES[0]} "
                            f"{first[2][:4]}...: every file of a cache needs the same classes, in the same order")
        if images.shape[1:] != first[0].shape[1:]:
            raise DataError(f"{folder / name} holds {images.shape[1:]} images but {CACHE_FILES[0]} "
                            f"{first[0].shape[1:]}: every file of a cache needs one image size")
    return parts


def load_cifar(folder: str | os.PathLike, verify: bool = True) -> ImageData:
    """Load a cache folder (CIFAR-10, CIFAR-100 or any class count) into uint8/int64 tensors.

    With ``verify`` the files are checked against ``SHA256SUMS`` first (about a second for CIFAR-10); without,
    only their presence (for a folder :func:`prepare_cifar10` has just verified).
    """
    if not isinstance(verify, bool):
        raise TypeError(f"verify must be True or False, got {verify!r}")
    folder = validation.path("folder", folder)
    problems = cache_problems(folder) if verify else [f"missing {n}" for n in CACHE_FILES if not (folder / n).is_file()]
    if problems:
        raise DataError(f"the CIFAR cache in {folder} is not usable: {'; '.join(problems)}. {_how_to_provide(folder)}")
    *parts, (test_images, test_labels, classes) = _read_cache(folder)
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
    sums = path.parent / CHECKSUMS
    if not path.is_file() or not sums.is_file() or _read_checksums(sums).get(SAMPLE_FILE) != sha256(path):
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
