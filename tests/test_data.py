"""dcnn_helpers.data: the cache format, checksums, atomic writes, the offline message, the committed sample."""

import urllib.error

import numpy as np
import pytest
import torch

from dcnn_helpers import data


def _fake_split(n, num_classes, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, num_classes, n).astype(np.int64)


@pytest.fixture
def cache(tmp_path):
    train, test = _fake_split(50, 10, 0), _fake_split(20, 10, 1)
    classes = [f"class{i}" for i in range(10)]
    return data.write_cache(tmp_path / "cifar10", train, test, classes), train, test, classes


def test_round_trip(cache):
    folder, train, test, classes = cache
    assert data.cache_problems(folder) == []
    ds = data.load_cifar(folder)
    assert ds.train_images.dtype == torch.uint8 and ds.train_images.shape == (50, 32, 32, 3)
    assert ds.train_labels.dtype == torch.int64
    assert np.array_equal(ds.train_images.numpy(), train[0]) and np.array_equal(ds.test_labels.numpy(), test[1])
    assert ds.classes == tuple(classes) and ds.num_classes == 10


def test_any_number_of_classes(tmp_path):
    classes = [f"c{i}" for i in range(100)]
    data.write_cache(tmp_path, _fake_split(30, 100, 2), _fake_split(10, 100, 3), classes)
    assert data.load_cifar(tmp_path).num_classes == 100


def test_truncated_and_corrupt_files_are_reported(cache):
    folder = cache[0]
    raw = (folder / "data_batch_3.npz").read_bytes()
    (folder / "data_batch_3.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(data.DataError, match="data_batch_3.npz is corrupt or truncated"):
        data.load_cifar(folder)
    (folder / "test_batch.npz").unlink()
    assert data.cache_problems(folder) == ["missing test_batch.npz"]


def test_failed_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "x.npz"

    def explode(handle):
        handle.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        data.fileio.atomic_write(target, explode)
    assert list(tmp_path.iterdir()) == []


def test_offline_message_names_missing_files(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(data.DataError) as info:
        data.prepare_cifar10(tmp_path)
    message = str(info.value)
    assert "could not download" in message and "missing data_batch_1.npz" in message
    assert "DCNN_DATA" in message and str(tmp_path / "cifar10") in message
    assert [p.name for p in (tmp_path / "cifar10").iterdir()] == [], "no scratch download left behind"
    with pytest.raises(data.DataError, match="not ready"):
        data.prepare_cifar10(tmp_path, download=False)


def test_prepare_uses_env_root_and_converts_download(tmp_path, monkeypatch):
    class FakeCIFAR10:
        classes = [f"k{i}" for i in range(10)]

        def __init__(self, root, train, download):
            self.data, targets = _fake_split(40 if train else 10, 10, int(train))
            self.targets = targets.tolist()

    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    monkeypatch.setenv("DCNN_DATA", str(tmp_path))
    folder = data.prepare_cifar10()
    assert folder == tmp_path / "cifar10" and data.cache_problems(folder) == []
    assert len(data.load_cifar(folder).train_labels) == 40
    assert sorted(p.name for p in folder.iterdir()) == sorted(data.CACHE_FILES + (data.CHECKSUMS,))


def test_committed_sample_is_real_and_split():
    ds = data.load_sample()
    assert len(ds.train_labels) == data.SAMPLE_TRAIN and len(ds.test_labels) == 1000 - data.SAMPLE_TRAIN
    assert ds.classes[:2] == ("airplane", "automobile") and ds.num_classes == 10
    assert len(torch.unique(ds.train_labels)) == 10


def test_course_cifar10_subsets_and_bad_arguments():
    ds = data.course_cifar10(100, 50, source="sample")
    assert len(ds.train_labels) == 100 and len(ds.test_labels) == 50
    with pytest.raises(ValueError, match="source='web'"):
        data.course_cifar10(10, 10, source="web")
    with pytest.raises(ValueError, match="n_train=5000 must be at most 800"):
        data.course_cifar10(5000, 10, source="sample")


def _fake_tarball(path, n_train_per_batch=4, n_test=6):
    """A small archive in the layout of torchvision's cifar-10-python.tar.gz: pickled batches with CHW rows."""
    import io
    import pickle
    import tarfile

    rng = np.random.default_rng(7)
    batches = {f"data_batch_{i}": n_train_per_batch for i in range(1, 6)} | {"test_batch": n_test}
    with tarfile.open(path, "w:gz") as tar:
        contents = {
            name: {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": rng.integers(0, 10, n).tolist()}
            for name, n in batches.items()
        }
        contents["batches.meta"] = {"label_names": [f"name{i}" for i in range(10)]}
        for name, content in contents.items():
            raw = pickle.dumps(content)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return contents


def _no_download(monkeypatch):
    import torchvision.datasets

    def refuse(*args, **kwargs):
        raise AssertionError("downloaded although a verified tarball was on disk")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", refuse)


@pytest.mark.parametrize("where", ["root", "cache folder"])
def test_prepare_uses_a_verified_tarball_without_downloading(tmp_path, monkeypatch, where):
    import hashlib

    (tmp_path / "cifar10").mkdir()
    tarball = (tmp_path if where == "root" else tmp_path / "cifar10") / data.TARBALL
    contents = _fake_tarball(tarball)
    monkeypatch.setattr(data, "TARBALL_MD5", hashlib.md5(tarball.read_bytes()).hexdigest())
    _no_download(monkeypatch)
    folder = data.prepare_cifar10(tmp_path, download=False)
    assert data.cache_problems(folder) == []
    ds = data.load_cifar(folder)
    assert ds.classes == tuple(f"name{i}" for i in range(10))
    assert len(ds.train_labels) == 20 and len(ds.test_labels) == 6
    first = contents["data_batch_1"]["data"][0].reshape(3, 32, 32).transpose(1, 2, 0)  # CHW row -> HWC image
    assert np.array_equal(ds.train_images[0].numpy(), first)
    assert ds.test_labels.tolist() == contents["test_batch"]["labels"]
    assert tarball.is_file(), "the learner's archive is left where it was"


def test_tarball_with_wrong_md5_is_reported_and_kept(tmp_path, monkeypatch):
    tarball = tmp_path / data.TARBALL
    _fake_tarball(tarball)  # the real published MD5 cannot match this small archive
    with pytest.raises(data.DataError) as info:
        data.prepare_cifar10(tmp_path, download=False)
    assert f"does not match the published MD5 {data.TARBALL_MD5}" in str(info.value)
    assert tarball.is_file() and not (tmp_path / "cifar10").exists()

    import torchvision.datasets

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(data.DataError, match="could not download.*does not match the published MD5"):
        data.prepare_cifar10(tmp_path)
    assert tarball.is_file()


def test_tarball_without_the_expected_batches_is_reported(tmp_path, monkeypatch):
    import hashlib
    import tarfile

    tarball = tmp_path / data.TARBALL
    with tarfile.open(tarball, "w:gz"):
        pass  # an empty archive with the right name
    monkeypatch.setattr(data, "TARBALL_MD5", hashlib.md5(tarball.read_bytes()).hexdigest())
    with pytest.raises(data.DataError, match="has no file cifar-10-batches-py/data_batch_1"):
        data.prepare_cifar10(tmp_path, download=False)
    assert not (tmp_path / "cifar10").exists(), "no partial cache"


def test_subset_sizes_accept_numpy_integers_and_refuse_other_kinds():
    sample = data.course_cifar10(np.int64(10), np.int32(5), source="sample")
    assert (len(sample.train_labels), len(sample.test_labels)) == (10, 5)
    with pytest.raises(TypeError, match="n_test must be an integer"):
        data.course_cifar10(10, 2.5, source="sample")
    with pytest.raises(TypeError, match="verify must be True or False"):
        data.load_cifar(".", verify="yes")
