import json
import os
import subprocess
import sys

import pytest

from dcnn_helpers import fileio


def test_write_text_and_json_replace_the_file(tmp_path):
    target = tmp_path / "sub" / "a.json"
    fileio.write_json(target, {"x": 1})
    assert json.loads(target.read_text()) == {"x": 1}
    fileio.write_text(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["a.json"]


def test_new_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = fileio.write_text(tmp_path / "shared.txt", "x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_failing_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = fileio.write_text(tmp_path / "a.txt", "old")

    def explode(handle):
        handle.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fileio.atomic_write(target, explode)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_a_killed_writer_leaves_the_old_file_and_its_temporary_is_cleaned_up(tmp_path):
    target = fileio.write_text(tmp_path / "a.txt", "old")
    code = (
        "import os, signal, sys\n"
        "from dcnn_helpers import fileio\n"
        "def write(handle):\n"
        "    handle.write(b'partial')\n"
        "    handle.flush()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        f"fileio.atomic_write({str(target)!r}, write)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert run.returncode == -9
    assert target.read_text() == "old"
    assert len(list(tmp_path.glob(".a.txt.*.part"))) == 1  # what a SIGKILL leaves behind ...
    fileio.write_text(target, "new")
    assert target.read_text() == "new"
    assert not list(tmp_path.glob(".a.txt.*.part"))  # ... is removed by the next write


def test_full_disk_leaves_the_old_file(tmp_path):
    target = fileio.write_text(tmp_path / "a.txt", "old")
    code = (
        "import resource, sys\n"
        "from dcnn_helpers import fileio\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))\n"
        "import signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "try:\n"
        f"    fileio.write_bytes({str(target)!r}, b'x' * 100_000)\n"
        "except OSError as exc:\n"
        "    sys.exit(3)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert run.returncode == 3, run.stderr
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_writing_onto_a_folder_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        fileio.write_text(tmp_path, "x")


def test_check_writable(tmp_path):
    assert fileio.check_writable(tmp_path / "new" / "out.json") == tmp_path / "new" / "out.json"
    with pytest.raises(ValueError, match="is a folder"):
        fileio.check_writable(tmp_path, "--json")
    blocker = fileio.write_text(tmp_path / "file", "x")
    with pytest.raises(ValueError, match="cannot create its folder"):
        fileio.check_writable(blocker / "out.json", "--json")


def test_a_replaced_file_keeps_its_permissions_and_a_link_its_target(tmp_path):
    target = fileio.write_text(tmp_path / "notes.txt", "old")
    target.chmod(0o640)
    fileio.write_text(target, "new")
    assert target.stat().st_mode & 0o777 == 0o640
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    fileio.write_text(link, "through the link")
    assert link.is_symlink() and target.read_text() == "through the link"


def test_write_folder_replaces_only_its_own_folders(tmp_path):
    out = tmp_path / "out"
    fileio.write_folder(out, lambda folder: (folder / "a.txt").write_text("1"))
    fileio.write_folder(out, lambda folder: (folder / "b.txt").write_text("2"))
    assert sorted(p.name for p in out.iterdir()) == [fileio.FOLDER_MARKER, "b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "no temporary folder left"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(FileExistsError, match="did not write"):
        fileio.write_folder(mine, lambda folder: None)
    with pytest.raises(FileExistsError, match="is a file"):
        fileio.write_folder(mine / "thesis.tex", lambda folder: None)
    assert (mine / "thesis.tex").read_text() == "years of work"


def test_write_folder_keeps_the_old_output_when_building_fails(tmp_path):
    out = tmp_path / "out"
    fileio.write_folder(out, lambda folder: (folder / "a.txt").write_text("1"))

    def explode(folder):
        (folder / "half.txt").write_text("x")
        raise RuntimeError("render failed")

    with pytest.raises(RuntimeError, match="render failed"):
        fileio.write_folder(out, explode)
    assert (out / "a.txt").read_text() == "1" and not (out / "half.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
