"""dcnn_helpers.checkpoint: atomic writes, safe loads, and one-line refusals."""

import pytest
import torch

from dcnn_helpers import checkpoint, fileio

STATE = dict(settings={"model": "m", "lr": 0.1}, data={"n_train": 10, "n_test": 5}, model={"w": torch.ones(2)},
             optimizer={}, scheduler={}, rng=checkpoint.rng_state(), epoch=1, step=4, history=[])


def test_save_and_load(tmp_path):
    path = checkpoint.save(tmp_path / "a.pt", STATE)
    state = checkpoint.load(path)
    assert state["format"] == checkpoint.FORMAT and torch.equal(state["model"]["w"], torch.ones(2))
    checkpoint.check_compatible(state, STATE["settings"], STATE["data"], path)


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.unlink(), "does not exist"),
    (lambda p: p.write_bytes(p.read_bytes()[:100]), "truncated or not a checkpoint"),
    (lambda p: p.write_text("hello"), "truncated or not a checkpoint"),
    (lambda p: torch.save({"weights": 1}, p), "is not a checkpoint of this course's trainer"),
    (lambda p: torch.save([1, 2], p), "is not a checkpoint of this course's trainer"),
])
def test_unusable_files_are_refused_in_one_line(tmp_path, damage, message):
    path = checkpoint.save(tmp_path / "a.pt", STATE)
    damage(path)
    with pytest.raises(checkpoint.CheckpointError, match=message) as error:
        checkpoint.load(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_code_in_a_pickle_is_not_run(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    path = tmp_path / "evil.pt"
    fileio.atomic_write(path, lambda handle: torch.save({"format": checkpoint.FORMAT, "x": Evil()}, handle))
    with pytest.raises(checkpoint.CheckpointError, match="cannot be read"):
        checkpoint.load(path)


def test_other_model_settings_or_data_are_named(tmp_path):
    state = checkpoint.load(checkpoint.save(tmp_path / "a.pt", STATE))
    with pytest.raises(checkpoint.CheckpointError, match="belongs to model 'm', not 'n'"):
        checkpoint.check_compatible(state, {"model": "n", "lr": 0.1}, STATE["data"], "a.pt")
    with pytest.raises(checkpoint.CheckpointError, match=r"lr: 0.1 -> 0.2"):
        checkpoint.check_compatible(state, {"model": "m", "lr": 0.2}, STATE["data"], "a.pt")
    with pytest.raises(checkpoint.CheckpointError, match=r"n_train: 10 -> 11"):
        checkpoint.check_compatible(state, STATE["settings"], {"n_train": 11, "n_test": 5}, "a.pt")
