"""Fixtures shared by the tests: tiny CIFAR-shaped caches of random images."""

import numpy as np
import pytest

from dcnn_helpers import data


def _fake_split(n: int, num_classes: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random uint8 32x32x3 images and int64 labels below ``num_classes``."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, num_classes, n).astype(np.int64)


@pytest.fixture(scope="session")
def make_fake_cache(tmp_path_factory):
    """A function writing a 10-class cache of ``n_train`` + ``n_test`` random images; returns its folder."""

    def make(n_train: int, n_test: int):
        folder = tmp_path_factory.mktemp("data") / "cifar10"
        classes = tuple(f"class{i}" for i in range(10))
        return data.write_cache(folder, _fake_split(n_train, seed=0), _fake_split(n_test, seed=1), classes)

    return make


@pytest.fixture(scope="session")
def fake_cache(make_fake_cache):
    """One shared cache of 64 training and 24 test images, for the trainer's and the bench's tests."""
    return make_fake_cache(64, 24)


@pytest.fixture(scope="session")
def fake_ds(fake_cache):
    """``fake_cache`` loaded as :class:`dcnn_helpers.data.ImageData`."""
    return data.load_cifar(fake_cache)
