"""Writing files safely: every file the project writes goes through :func:`atomic_write`.

Ground floor of the course (imports nothing from the package). A write goes to a temporary file in the target's
folder, is flushed to disk (``fsync``), then renamed over the target (``os.replace`` is atomic on POSIX and
Windows): a reader, a crash or a Ctrl-C sees the old file or the new one, never half of one. The new file gets the
permissions a plain ``open(path, "w")`` would give (``0o666`` minus the umask), so a workshop's accounts that share
a data folder can read each other's caches. Temporaries left by a killed writer are removed on the next write of
the same file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

__all__ = ["atomic_write", "write_bytes", "write_text", "write_json", "check_writable"]

TEMP_SUFFIX = ".part"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    except OSError:  # no signals on this platform: assume alive, keep the file
        return True
    return True


def _remove_stale_temporaries(path: Path) -> None:
    """Delete ``.NAME.PID.*.part`` files beside ``path`` whose writing process no longer exists."""
    for stale in path.parent.glob(f".{path.name}.*{TEMP_SUFFIX}"):
        pid = stale.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            stale.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> Path:
    """Call ``write(binary_file)`` on a temporary file beside ``path``, fsync it, then rename it to ``path``.

    Creates missing parent folders. On any failure (including KeyboardInterrupt) the temporary file is removed and
    ``path`` is untouched. Returns ``path`` as a ``Path``.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions instead
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda handle: handle.write(data))


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON (UTF-8, trailing newline) to ``path`` atomically."""
    return write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def check_writable(path: str | os.PathLike, what: str = "output") -> Path:
    """Make sure ``path`` can be written later (before long work starts): not a folder, its folder writable.

    Creates the missing parent folders (as the write would). Raises ValueError with a one-line reason.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} path {path} is a folder; give a file name")
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{what} path {path}: cannot create its folder ({exc.strerror or exc})") from None
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{what} path {path}: its folder {parent} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{what} path {path} exists and is read-only")
    return path
