"""Writing files safely: every file the project writes goes through :func:`atomic_write`.

Ground floor of the course (imports nothing from the package). A write goes to a temporary file in the target's
folder, is flushed to disk (``fsync``), then renamed over the target (``os.replace`` is atomic on POSIX and
Windows): a reader, a crash or a Ctrl-C sees the old file or the new one, never half of one. The new file gets the
permissions a plain ``open(path, "w")`` would give (``0o666`` minus the umask), so a workshop's accounts that share
a data folder can read each other's caches. Temporaries left by a killed writer are removed on the next write of
the same file. Rewriting an existing file keeps its permissions, writes through a symbolic link to its target,
and refuses a read-only file (as a plain ``open(path, "w")`` would).

:func:`write_folder` does the same for a whole generated folder (student copies, the static site): built under a
temporary name, renamed into place when complete, and never put over a folder it did not write itself.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

__all__ = ["atomic_write", "write_bytes", "write_text", "write_json", "check_writable", "check_folder", "write_folder",
           "FOLDER_MARKER"]

TEMP_SUFFIX = ".part"
FOLDER_MARKER = ".dcnn-generated"  # in every folder write_folder makes: only such folders are ever replaced
MARKER_TEXT = "Written by a dcnn_helpers command; the next run of that command replaces what is here.\n"


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
    """Delete ``.NAME.PID.*.part`` files (and folders) beside ``path`` whose writing process no longer exists."""
    for stale in path.parent.glob(f".{path.name}.*{TEMP_SUFFIX}"):
        pid = stale.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)


def _target(path: Path) -> tuple[Path, int]:
    """Where a write of ``path`` goes (a symbolic link's target) and the permissions the new file gets."""
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder")
    if not path.exists():
        return path, 0o666 & ~_umask()
    if not os.access(path, os.W_OK):
        raise PermissionError(f"cannot write {path}: the file is read-only")
    return path, stat.S_IMODE(path.stat().st_mode)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> Path:
    """Call ``write(binary_file)`` on a temporary file beside ``path``, fsync it, then rename it to ``path``.

    Creates missing parent folders. On any failure (including KeyboardInterrupt) the temporary file is removed and
    ``path`` is untouched. A new file gets ``0o666`` minus the umask, a replaced one keeps its permissions; a
    read-only file raises PermissionError. Returns ``path`` as a ``Path``.
    """
    path = Path(path)
    target, mode = _target(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(target)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.{os.getpid()}.", suffix=TEMP_SUFFIX)
    except OSError as exc:  # e.g. a read-only folder: name the file asked for, not the temporary
        raise OSError(exc.errno, f"cannot write {path}: {exc.strerror or exc} in its folder") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)  # mkstemp makes 0600 files; give the usual permissions instead
        os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        cause = _os_error(exc)
        if cause is not None:  # a full disk, a file-size limit: say which file
            raise OSError(cause.errno, f"cannot write {path}: {cause.strerror or cause} ({path.name} left as it was)"
                          ) from exc
        raise
    return path


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError with an errno that ``exc`` is or was raised while handling (torch.save turns a full disk into a
    RuntimeError about its zip container); None for anything else, and for a Ctrl-C."""
    seen = set()
    while isinstance(exc, Exception) and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno is not None:
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


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


def _owned(path: Path, owned: Callable[[Path], bool] | None) -> bool:
    """May ``path`` (an existing folder) be replaced: empty, marked by :func:`write_folder`, or ``owned`` says so."""
    return not any(path.iterdir()) or (path / FOLDER_MARKER).is_file() or (owned is not None and owned(path))


def check_folder(path: str | os.PathLike, owned: Callable[[Path], bool] | None = None) -> Path:
    """``path`` (symbolic links resolved) if :func:`write_folder` may replace it, else FileExistsError saying why.

    Call it before long work, so that a refusal comes before the work, not after.
    """
    path = Path(os.path.realpath(path))
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} is a file, not a folder; give a folder to write into")
    if path.is_dir() and not _owned(path, owned):
        raise FileExistsError(f"{path} holds files this command did not write; give a new or empty folder "
                              "(nothing was changed)")
    return path


def write_folder(path: str | os.PathLike, fill: Callable[[Path], Any],
                 owned: Callable[[Path], bool] | None = None) -> Path:
    """Build a folder with ``fill(folder)`` under a temporary name beside ``path``, then rename it to ``path``.

    ``path`` may be missing, an empty folder, or a folder an earlier call wrote (it holds :data:`FOLDER_MARKER`, or
    ``owned(path)`` recognises it): only then is it replaced, as a whole, once ``fill`` has succeeded. Anything else
    raises FileExistsError before ``fill`` runs, so nothing the user owns is deleted or overwritten. On a failure the
    half-built folder is removed and ``path`` is left as it was. Returns ``path`` (symbolic links resolved).
    """
    path = check_folder(path, owned)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    build = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=TEMP_SUFFIX))
    old = build.with_name(build.name[: -len(TEMP_SUFFIX)] + ".old" + TEMP_SUFFIX)
    try:
        os.chmod(build, 0o777 & ~_umask())  # mkdtemp makes 0700 folders
        write_text(build / FOLDER_MARKER, MARKER_TEXT)
        fill(build)
        if path.exists():
            os.rename(path, old)
        os.rename(build, path)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        if old.exists() and not path.exists():
            os.rename(old, path)  # put the previous output back
        raise
    shutil.rmtree(old, ignore_errors=True)
    return path
