"""The GPU check: execute the notebooks in the gpu profile and the speed run, on a bare CUDA machine, in one command.

Maintainer tooling (``make gpu-check OUT=DIR``). Made for an offline machine that has only ``python3`` with torch:
no venv, no jupyter, no internet. The notebook packages (nbclient, ipykernel, ...) come as wheels, installed by
the Makefile target into a folder on ``PYTHONPATH``. Every result is written into ``--out`` as soon as it exists
(atomically): each executed notebook, ``speedrun.json``, ``summary.json`` (one row per task: status, seconds, the
error if any) and, with ``--archive``, a tar of all of it, rewritten after each task, so that a run cut short still
leaves everything finished so far. A failing notebook is saved with its error and the check goes on.

    python -m dcnn_helpers.tools.gpucheck --out DIR [--tasks speedrun 07 00 01 ...] [--seeds 5] [--against airbench]
        [--measured-dir notebooks/measured] [--archive FILE.tar] [--profile gpu]
"""

from __future__ import annotations

import argparse
import io
import os
import re
import sys
import tarfile
import time
import traceback
from pathlib import Path
from typing import Any, Sequence

import torch

from .. import bench, config, data, fileio, validation

__all__ = ["notebook_paths", "execute_notebook", "run_tasks", "format_rows", "main"]

NOTEBOOK_DIR = config.REPO_ROOT / "notebooks"


def notebook_paths() -> dict[str, Path]:
    """The course notebooks by number: ``{"00": .../00_setup_and_tour.ipynb, ...}``."""
    return {path.name[:2]: path for path in sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))}


def execute_notebook(path: Path, out: Path, cell_timeout: float) -> dict[str, Any]:
    """Execute ``path`` in a fresh kernel (the profile comes from the environment) and save it as ``out``.

    Returns a row: ``task``, ``status`` (``ok`` or ``error``), ``seconds`` and ``error`` (the exception's last line).
    The notebook is saved also when a cell fails, with the outputs up to the failure.
    """
    import nbformat  # from the wheels: imported here so that the speed run needs nothing but torch
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    started, error = time.perf_counter(), None
    try:
        client.execute()
    except Exception as exc:  # a failing cell, a timeout, a dead kernel: recorded, and the check goes on
        error = str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else type(exc).__name__
    seconds = time.perf_counter() - started
    fileio.write_text(out, nbformat.writes(nb))
    return dict(task=path.name[:2], name=path.stem, status="error" if error else "ok", seconds=seconds, error=error)


def _speedrun(out: Path, seeds: int, against: str | None, measured_dir: Path | None) -> dict[str, Any]:
    started = time.perf_counter()
    ds = data.course_cifar10(None, None, "full")
    result = bench.speedrun(ds, range(seeds), against_airbench=against == "airbench", progress=False)
    fileio.write_json(out / "speedrun.json", result)
    if measured_dir is not None:  # where notebook 07 reads it from, named after the GPU
        slug = re.sub(r"[^a-z0-9]+", "-", result["device"].lower()).strip("-")
        fileio.write_json(measured_dir / f"speedrun-{slug}.json", result)
    print(bench.format_summary(result["summary"], "method"), flush=True)
    return dict(task="speedrun", name="speed run", status="ok", seconds=time.perf_counter() - started, error=None)


def _archive(folder: Path, archive: Path) -> None:
    """A tar of every file of ``folder`` (written atomically, so a kill mid-write leaves the previous one)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                tar.add(path, arcname=path.name)
    fileio.write_bytes(archive, buffer.getvalue())


def run_tasks(tasks: Sequence[str], out: Path, seeds: int = 5, against: str | None = None,
              cell_timeout: float = 900, archive: Path | None = None, measured_dir: Path | None = None
              ) -> list[dict[str, Any]]:
    """Run each task (``"speedrun"`` or a notebook number) in order; write results into ``out`` as they come.

    ``measured_dir``: also keep the speed run's JSON there (``notebooks/measured``, which notebook 07 shows).
    """
    notebooks, rows = notebook_paths(), []
    for task in tasks:
        try:
            if task == "speedrun":
                row = _speedrun(out, seeds, against, measured_dir)
            else:
                row = execute_notebook(notebooks[task], out / notebooks[task].name, cell_timeout)
        except Exception as exc:  # the speed run failed: keep its traceback, go on with the notebooks
            fileio.write_text(out / f"{task}.error.txt", traceback.format_exc())
            row = dict(task=task, name=task, status="error", seconds=0.0, error=f"{type(exc).__name__}: {exc}"[:300])
        rows.append(row)
        fileio.write_json(out / "summary.json", dict(environment=config.describe(), rows=rows))
        if archive is not None:
            _archive(out, archive)
        print(format_rows(rows[-1:], header=len(rows) == 1), flush=True)
    return rows


def format_rows(rows: Sequence[dict[str, Any]], header: bool = True) -> str:
    """Rows of :func:`run_tasks` as a markdown table (task, status, seconds, error)."""
    lines = ["| task | status | seconds | error |", "| --- | --- | --- | --- |"] if header else []
    lines += [f"| {r['name']} | {r['status']} | {r['seconds']:.1f} | {r['error'] or ''} |" for r in rows]
    return "\n".join(lines)


def _check_tasks(tasks: Sequence[str]) -> list[str]:
    known = ["speedrun", *notebook_paths()]
    unknown = [t for t in tasks if t not in known]
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; choose from {', '.join(known)}")
    return list(tasks)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring); returns 0 when every task succeeded, 1 otherwise."""
    parser = argparse.ArgumentParser(prog="python -m dcnn_helpers.tools.gpucheck", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True,
                        help="folder for the results: new, empty, or the --out of an earlier check (its files are replaced)")
    parser.add_argument("--tasks", nargs="+", default=None,
                        help="speedrun and/or notebook numbers, in the order to run (default: speedrun, then all)")
    parser.add_argument("--seeds", type=int, default=5, help="runs of each recipe in the speed run")
    parser.add_argument("--against", choices=("airbench",), default=None, help="also run airbench94 (needs it)")
    parser.add_argument("--cell-timeout", type=float, default=900, help="seconds a notebook cell may run")
    parser.add_argument("--archive", default=None, help="also keep a tar of the results here, after every task")
    parser.add_argument("--profile", default="gpu", choices=config.PROFILES, help="profile of the notebooks")
    parser.add_argument("--measured-dir", default=None,
                        help="also write the speed run's JSON here (notebooks/measured: notebook 07 shows it)")
    args = parser.parse_args(argv)
    try:
        tasks = _check_tasks(args.tasks or ["speedrun", *notebook_paths()])
        validation.integer("--seeds", args.seeds, 1)
        validation.real("--cell-timeout", args.cell_timeout, 0, low_open=True)
        out = fileio.check_folder(args.out)  # new, empty, or written by an earlier check: never the user's files
        fileio.write_text(out / fileio.FOLDER_MARKER, fileio.MARKER_TEXT)
        fileio.check_writable(out / "summary.json", "--out")
        if args.archive is not None:
            fileio.check_writable(args.archive, "--archive")
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    os.environ[config.PROFILE_ENV] = args.profile  # the kernels inherit it
    print(config.describe(), f"| CUDA {torch.version.cuda}", flush=True)
    rows = run_tasks(tasks, out, args.seeds, args.against, args.cell_timeout,
                     Path(args.archive) if args.archive else None,
                     Path(args.measured_dir) if args.measured_dir else None)
    print(f"\n{format_rows(rows)}\ntotal {sum(r['seconds'] for r in rows):.0f} s")
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
