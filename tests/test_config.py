"""dcnn_helpers.config: profiles, sizes, device fallback, seeding."""

import random

import numpy as np
import pytest
import torch

from dcnn_helpers import config, sizes


@pytest.mark.parametrize("value", ["smoke", "laptop", "gpu", " Laptop "])
def test_profile_reads_environment(monkeypatch, value):
    monkeypatch.setenv("DCNN_PROFILE", value)
    assert config.profile() == value.strip().lower()


def test_profile_default_follows_cuda(monkeypatch):
    monkeypatch.delenv("DCNN_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert config.profile() == "laptop"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.profile() == "gpu"


def test_unknown_profile_lists_valid_values(monkeypatch):
    monkeypatch.setenv("DCNN_PROFILE", "huge")
    with pytest.raises(ValueError, match="DCNN_PROFILE='huge'.*smoke, laptop, gpu"):
        config.profile()


def test_every_notebook_has_the_same_keys_in_every_profile():
    for notebook, by_profile in sizes.SIZES.items():
        assert set(by_profile) == set(config.PROFILES), notebook
        keys = {name: set(values) for name, values in by_profile.items()}
        assert len({frozenset(k) for k in keys.values()}) == 1, f"{notebook}: {keys}"


def test_every_notebook_file_has_sizes():
    stems = {path.stem for path in (config.REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert stems <= set(sizes.SIZES), stems - set(sizes.SIZES)


def test_sizes_by_prefix_and_errors():
    assert config.sizes("00", "smoke") == config.sizes("00_setup_and_tour", "smoke")
    first, second = config.sizes("00", "smoke"), config.sizes("00", "smoke")
    first.hidden_units = -1
    assert second.hidden_units != -1, "sizes() must return a fresh copy"
    with pytest.raises(KeyError, match="notebook='99'"):
        config.sizes("99")
    with pytest.raises(ValueError, match="profile_name='tiny'"):
        config.sizes("00", "tiny")


def test_device_fallback_and_override(monkeypatch):
    monkeypatch.delenv("DCNN_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(config, "_mps_available", lambda: False)
    assert config.device() == torch.device("cpu")
    monkeypatch.setattr(config, "_mps_available", lambda: True)
    assert config.device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.device() == torch.device("cuda")
    monkeypatch.setenv("DCNN_DEVICE", "cpu")
    assert config.device() == torch.device("cpu")


def test_asking_for_missing_cuda_is_an_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        config.device("cuda")


def test_seed_everything_reproduces_all_generators():
    def draw():
        return random.random(), np.random.rand(), torch.rand(3).tolist()

    config.seed_everything(123)
    first = draw()
    config.seed_everything(123)
    assert draw() == first
    config.seed_everything(124)
    assert draw() != first


@pytest.mark.parametrize("bad, error, message", [(-1, ValueError, "seed=-1 must be at least 0"),
                                                 (1.5, TypeError, "seed must be an integer"),
                                                 ("7", TypeError, "seed must be an integer"),
                                                 (True, TypeError, "seed must be an integer")])
def test_seed_must_be_a_non_negative_integer(bad, error, message):
    with pytest.raises(error, match=message):
        config.seed_everything(bad)
    assert isinstance(config.seed_everything(np.int64(3)), torch.Generator)


def test_data_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("DCNN_DATA", raising=False)
    assert config.data_dir() == config.REPO_ROOT / "data"
    monkeypatch.setenv("DCNN_DATA", str(tmp_path))
    assert config.data_dir() == tmp_path
    assert config.data_dir(tmp_path / "x") == tmp_path / "x"


def test_describe_names_versions_device_and_profile(monkeypatch):
    monkeypatch.setenv("DCNN_PROFILE", "smoke")
    line = config.describe()
    assert torch.__version__ in line and "profile smoke" in line and "device" in line
    assert "\n" not in line


def test_progress_is_silent_in_smoke(monkeypatch):
    monkeypatch.setenv("DCNN_PROFILE", "smoke")
    assert config.progress(range(3)).disable
    monkeypatch.setenv("DCNN_PROFILE", "laptop")
    bar = config.progress(range(3))
    assert not bar.disable
    bar.close()
