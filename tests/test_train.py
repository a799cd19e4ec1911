"""dcnn_helpers.train: the CLI on a tiny fixture cache, exact resume, PLP through the trainer, bad arguments."""

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from dcnn_helpers import config, data, plp, train




@pytest.fixture(scope="module")
def cache(make_fake_cache):
    return make_fake_cache(64, 24)


@pytest.fixture(scope="module")
def ds(cache):
    return data.load_cifar(cache)


def tiny_net():
    config.seed_everything(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(4),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10),
    )


FIT = dict(epochs=3, batch_size=16, lr=0.05, device="cpu", progress=False)  # 64 images: 4 steps per epoch


def test_cli_writes_the_json(cache, tmp_path, capsys):
    out = tmp_path / "run.json"
    argv = ["--data", str(cache.parent), "--model", "resnet-8", "--epochs", "2", "--batch-size", "32",
            "--device", "cpu", "--target-acc", "0.1", "--json", str(out), "--quiet"]
    assert train.main(argv) == 0
    result = json.loads(out.read_text())
    assert {"test_acc", "seconds", "epochs", "history", "time_to_target", "tflops", "model"} <= set(result)
    assert result["epochs"] == 2 and [h["epoch"] for h in result["history"]] == [1, 2]
    assert all({"train_loss", "train_acc", "test_acc", "seconds"} <= set(h) for h in result["history"])
    assert 0 <= result["test_acc"] <= 1 and result["test_acc"] == result["history"][-1]["test_acc"]
    reached = [h["seconds"] for h in result["history"] if h["test_acc"] >= 0.1]
    assert result["time_to_target"] == (reached[0] if reached else None)
    assert result["settings"]["n_train"] == 64 and result["parameters"] > 0 and result["tflops"] > 0
    assert "resnet-8: test accuracy" in capsys.readouterr().out


def test_module_runs_as_a_command():
    run = subprocess.run([sys.executable, "-m", "dcnn_helpers.train", "--help"], capture_output=True, text=True,
                         cwd=config.REPO_ROOT, timeout=60)
    assert run.returncode == 0 and "--target-acc" in run.stdout and "dmrnet-DEPTH" in run.stdout


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "vgg-16"], "not a known model"),
        (["--model", "resnet-7"], "6n + 2"),
        (["--model", "dmrnet-0"], "6n + 2"),
        (["--model", "fast", "--resume"], "--resume needs --checkpoint"),
    ],
)
def test_bad_arguments_exit_with_a_message(cache, capsys, extra, message):
    argv = ["--data", str(cache), "--epochs", "1", "--device", "cpu"]
    if "--model" not in extra:
        argv += ["--model", "fast"]
    with pytest.raises(SystemExit) as exit_info:
        train.main(argv + extra)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_missing_data_says_which_files(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train.main(["--data", str(tmp_path), "--model", "fast", "--epochs", "1"])
    assert "missing data_batch_1.npz" in capsys.readouterr().err


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(epochs=0), ValueError),
        (dict(epochs=1, batch_size=0), ValueError),
        (dict(epochs=1, lr=0.0), ValueError),
        (dict(epochs=1, label_smoothing=1.0), ValueError),
        (dict(epochs=1, target_acc=94), ValueError),
        (dict(epochs=1, plp=3), TypeError),
        (dict(epochs=1, resume=True), ValueError),
    ],
)
def test_fit_rejects_bad_settings(ds, kwargs, error):
    with pytest.raises(error):
        train.fit(tiny_net(), ds, **kwargs)


def test_model_names():
    assert isinstance(train.build_model("fast-w2"), train.FastNet)
    assert train.build_model("fast", num_classes=100).body[-1].out_features == 100
    wide = sum(p.numel() for p in train.build_model("resnet-8-w2").parameters())
    assert wide > sum(p.numel() for p in train.build_model("resnet-8").parameters())


def test_resume_after_ctrl_c_is_bit_identical(ds, tmp_path, monkeypatch):
    """Interrupt in the middle of epoch 3 (PLP mid-cycle), resume, and end exactly where a clean run ends."""
    options = FIT | dict(epochs=4, plp={"prediction_step": 1.0, "cycle": 3}, label_smoothing=0.1)
    clean_model = tiny_net()
    clean = train.fit(clean_model, ds, checkpoint=tmp_path / "clean.pt", **options)

    calls, real_step_batch = [], train.step_batch

    def ctrl_c_in_epoch_3(*args):
        calls.append(1)
        if len(calls) == 10:  # steps 1-8 are epochs 1-2; the 10th is inside epoch 3
            raise KeyboardInterrupt
        return real_step_batch(*args)

    path = tmp_path / "run.pt"
    monkeypatch.setattr(train, "step_batch", ctrl_c_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train.fit(tiny_net(), ds, checkpoint=path, **options)
    monkeypatch.setattr(train, "step_batch", real_step_batch)
    saved = train.load_checkpoint(path)
    assert saved["epoch"] == 2 and saved["optimizer"]["step_in_cycle"] == 8 % 3
    assert not list(tmp_path.glob(".*.part")), "no temporary file is left behind"

    resumed_model = tiny_net()
    resumed = train.fit(resumed_model, ds, checkpoint=path, resume=True, **options)
    assert [h["test_acc"] for h in resumed.history] == [h["test_acc"] for h in clean.history]
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in clean.history]
    for (name, a), b in zip(clean_model.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), name


def test_resume_refuses_other_settings(ds, tmp_path):
    path = tmp_path / "run.pt"
    train.fit(tiny_net(), ds, checkpoint=path, **FIT | dict(epochs=1))
    with pytest.raises(ValueError, match="other settings"):
        train.fit(tiny_net(), ds, checkpoint=path, resume=True, **FIT | dict(epochs=1, lr=0.2))


def test_plp_runs_through_the_trainer(ds, monkeypatch):
    predictions, real_predict = [], plp.PLP._predict

    def counting_predict(self):
        predictions.append(self.step_in_cycle)
        real_predict(self)

    monkeypatch.setattr(plp.PLP, "_predict", counting_predict)
    plain_model, plp_model = tiny_net(), tiny_net()
    train.fit(plain_model, ds, **FIT)
    assert predictions == []
    train.fit(plp_model, ds, plp={"cycle": 4}, **FIT)
    assert len(predictions) == 3 * 4 // 4  # 12 steps, one prediction per cycle of 4
    assert not torch.equal(plain_model[-1].weight, plp_model[-1].weight)


def test_augment_batch_crops_and_flips():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).view(2, 3, 32, 32)
    centre = torch.full((2, 2), 4)
    assert torch.equal(train.augment_batch(x, centre, torch.tensor([False, False])), x)
    assert torch.equal(train.augment_batch(x, centre, torch.tensor([True, False]))[0], x[0].flip(2))
    shifted = train.augment_batch(x, torch.tensor([[4, 6], [0, 4]]), torch.tensor([False, False]))
    assert torch.equal(shifted[0, :, :, :30], x[0, :, :, 2:])  # 2 columns to the left
    assert torch.equal(shifted[1, :, 4:, :], x[1, :, :28, :])  # 4 rows down
    assert torch.equal(shifted[1, :, 3, :], x[1, :, 1, :])  # reflect padding mirrors row 1 above row 0


def test_lr_schedule_warms_up_then_decays():
    factors = [train.lr_factor(step, 10, warmup=0.2) for step in range(10)]
    assert factors[:3] == [0.5, 1.0, 1.0] and factors[-1] == 1 / 8
    assert all(a > b for a, b in zip(factors[2:], factors[3:]))


def test_flops_of_a_linear_model():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    assert train.train_flops_per_image(model, torch.device("cpu")) == 3 * 2 * 3072 * 10


def test_fastnet_whitening_decorrelates_patches():
    torch.manual_seed(0)
    images = torch.randn(64, 3, 32, 32) @ torch.randn(32, 32) * 0.2  # correlated pixels
    net = train.FastNet()
    trainable = [name for name, p in net.named_parameters() if p.requires_grad]
    net.init_from_data(images, eps=1e-9)
    # the optimiser of a resumed run (which skips init_from_data) must see the same parameters
    assert [name for name, p in net.named_parameters() if p.requires_grad] == trainable
    features = net.whiten(images.double().float())[:, :12] - net.whiten.bias[:12].view(1, 12, 1, 1)
    features = features.permute(0, 2, 3, 1).reshape(-1, 12).double()
    covariance = torch.cov(features.T)
    assert torch.allclose(covariance, torch.eye(12, dtype=torch.float64), atol=1e-3)
    assert not net.whiten.weight.requires_grad


def test_image_grid_places_images_row_by_row():
    images = torch.arange(6, dtype=torch.uint8).view(6, 1, 1, 1).expand(6, 2, 2, 3)
    grid = train.image_grid(images, ncols=3)
    assert grid.shape == (2 * 3, 3 * 3, 3)
    assert grid[0, 0, 0] == 0 and grid[0, 3, 0] == 1 and grid[3, 0, 0] == 3 and grid[2, 0, 0] == 255
    with pytest.raises(ValueError, match="ncols"):
        train.image_grid(images, ncols=4)
