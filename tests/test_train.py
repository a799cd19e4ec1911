"""dcnn_helpers.train: TrainConfig validation, exact resume, PLP and the recipe's pieces through the trainer."""

import dataclasses
import inspect

import pytest
import torch
from torch import nn

from dcnn_helpers import checkpoint, config, models, plp, train


def tiny_net():
    config.seed_everything(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(4),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10),
    )


CFG = train.TrainConfig(model="tiny", epochs=3, batch_size=16, lr=0.05)  # 64 images: 4 steps per epoch
RUN = dict(device="cpu", progress=False)


@pytest.mark.parametrize(
    "change, error, message",
    [
        (dict(epochs=0), ValueError, "epochs=0.0 must lie in"),
        (dict(epochs=float("nan")), ValueError, "epochs=nan must be a finite number"),
        (dict(batch_size=0), ValueError, "batch_size=0 must be at least 1"),
        (dict(batch_size=2.0), TypeError, "batch_size must be an integer"),
        (dict(lr=0.0), ValueError, "lr=0.0 must lie in"),
        (dict(lr=float("inf")), ValueError, "lr=inf must be a finite number"),
        (dict(momentum=1.0), ValueError, "momentum=1.0"),
        (dict(label_smoothing=1.0), ValueError, "label_smoothing=1.0"),
        (dict(schedule="cosine"), ValueError, "schedule='cosine' is not allowed"),
        (dict(tta="mirror"), ValueError, "tta='mirror' is not allowed"),
        (dict(flip="sometimes"), ValueError, "flip='sometimes'"),
        (dict(ema=1), TypeError, "ema must be True or False"),
        (dict(plp="1"), TypeError, "plp must be a real number"),
        (dict(whiten_bias_epochs=-1), ValueError, "whiten_bias_epochs=-1"),
        (dict(model=""), TypeError, "model must be a non-empty name"),
    ],
)
def test_config_validates_every_setting(change, error, message):
    with pytest.raises(error, match=message):
        dataclasses.replace(CFG, **change)


def test_config_is_frozen_and_round_trips_through_a_dict():
    with pytest.raises(dataclasses.FrozenInstanceError):
        CFG.lr = 1.0
    assert train.TrainConfig.from_dict(CFG.to_dict()) == CFG
    with pytest.raises(ValueError, match="unknown training settings"):
        train.TrainConfig.from_dict(CFG.to_dict() | {"lr_max": 1})
    import numpy as np

    assert train.TrainConfig(batch_size=np.int64(8), lr=np.float32(0.5)).batch_size == 8


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(target_acc=94), ValueError, "target_acc=94.0 must lie in"),
        (dict(resume=True), ValueError, "resume=True needs a checkpoint_path"),
    ],
)
def test_fit_rejects_bad_arguments(fake_ds, kwargs, error, message):
    with pytest.raises(error, match=message):
        train.fit(tiny_net(), fake_ds, CFG, **RUN, **kwargs)


def test_fit_checks_types_and_the_checkpoint_path_before_any_work(fake_ds, tmp_path):
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        train.fit("resnet-8", fake_ds, CFG, **RUN)
    with pytest.raises(TypeError, match="cfg must be a dcnn_helpers.train.TrainConfig"):
        train.fit(tiny_net(), fake_ds, {"epochs": 1}, **RUN)
    with pytest.raises(ValueError, match="is a folder"):
        train.fit(tiny_net(), fake_ds, CFG, checkpoint_path=tmp_path, **RUN)


def test_history_times_and_result(fake_ds):
    result = train.fit(tiny_net(), fake_ds, CFG, target_acc=0.01, **RUN)
    assert [h["epoch"] for h in result.history] == [1, 2, 3] and result.epochs == 3
    assert all(h["test_acc"] is not None for h in result.history)
    assert result.test_acc == result.history[-1]["test_acc"]
    assert result.total_seconds == result.seconds + result.eval_seconds
    assert result.time_to_target == result.history[0]["seconds"] + result.eval_seconds
    assert result.config == CFG.to_dict() and result.warmup_seconds == 0.0  # no warm-up on CPU
    assert result.to_dict()["total_seconds"] == result.total_seconds


def test_fractional_epochs_stop_inside_the_last_epoch(fake_ds, monkeypatch):
    steps = []
    real = train.step_batch
    monkeypatch.setattr(train, "step_batch", lambda *a: steps.append(1) or real(*a))
    result = train.fit(tiny_net(), fake_ds, dataclasses.replace(CFG, epochs=1.5, eval_every_epoch=False), **RUN)
    assert len(steps) == 6 and result.epochs == 1.5  # 4 + 2 steps
    assert [h["test_acc"] is None for h in result.history] == [True, False]  # only the final evaluation


def test_resume_after_ctrl_c_is_bit_identical(fake_ds, tmp_path, monkeypatch):
    """Interrupt in the middle of epoch 3 (PLP mid-cycle, look-ahead on), resume, end where a clean run ends."""
    cfg = dataclasses.replace(CFG, epochs=4, plp=1.0, label_smoothing=0.1, ema=True, flip="alternate")
    clean_model = tiny_net()
    clean = train.fit(clean_model, fake_ds, cfg, checkpoint_path=tmp_path / "clean.pt", **RUN)

    calls, real_step_batch = [], train.step_batch

    def ctrl_c_in_epoch_3(*args):
        calls.append(1)
        if len(calls) == 10:  # steps 1-8 are epochs 1-2; the 10th is inside epoch 3
            raise KeyboardInterrupt
        return real_step_batch(*args)

    path = tmp_path / "run.pt"
    monkeypatch.setattr(train, "step_batch", ctrl_c_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train.fit(tiny_net(), fake_ds, cfg, checkpoint_path=path, **RUN)
    monkeypatch.setattr(train, "step_batch", real_step_batch)
    saved = checkpoint.load(path)
    assert saved["epoch"] == 2 and saved["step"] == 8 and saved["optimizer"]["step_in_cycle"] == 8 % 3
    assert saved["settings"]["model"] == "tiny" and saved["data"] == {"n_train": 64, "n_test": 24}
    assert not list(tmp_path.glob(".*.part")), "no temporary file is left behind"

    resumed_model = tiny_net()
    resumed = train.fit(resumed_model, fake_ds, cfg, checkpoint_path=path, resume=True, **RUN)
    assert [h["test_acc"] for h in resumed.history] == [h["test_acc"] for h in clean.history]
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in clean.history]
    for (name, a), b in zip(clean_model.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(lr=0.2), r"other settings \(lr: 0.05 -> 0.2\)"),
        (dict(model="other"), "belongs to model 'tiny', not 'other'"),
    ],
)
def test_resume_refuses_another_model_or_other_settings_in_one_line(fake_ds, tmp_path, change, message):
    path = tmp_path / "run.pt"
    one_epoch = dataclasses.replace(CFG, epochs=1)
    train.fit(tiny_net(), fake_ds, one_epoch, checkpoint_path=path, **RUN)
    with pytest.raises(checkpoint.CheckpointError, match=message):
        train.fit(tiny_net(), fake_ds, dataclasses.replace(one_epoch, **change), checkpoint_path=path, resume=True,
                  **RUN)


def test_plp_runs_through_the_trainer(fake_ds, monkeypatch):
    predictions, real_predict = [], plp.PLP._predict

    def counting_predict(self):
        predictions.append(self.step_in_cycle)
        real_predict(self)

    monkeypatch.setattr(plp.PLP, "_predict", counting_predict)
    plain_model, plp_model = tiny_net(), tiny_net()
    train.fit(plain_model, fake_ds, CFG, **RUN)
    assert predictions == []
    train.fit(plp_model, fake_ds, dataclasses.replace(CFG, plp=1.0), **RUN)
    assert len(predictions) == 12 // 3  # 12 steps, one prediction per cycle of 3
    assert not torch.equal(plain_model[-1].weight, plp_model[-1].weight)


def test_optimizer_groups_bias_learning_rate_and_decoupled_decay():
    net = tiny_net()
    cfg = dataclasses.replace(CFG, bn_bias_lr_scale=64.0, weight_decay=1e-3, decoupled_weight_decay=True,
                              freeze_bn_scales=True)
    sgd = train.build_optimizer(net, cfg)
    others, biases = sgd.param_groups
    assert biases["params"] == [net[1].bias] and not net[1].weight.requires_grad
    assert biases["lr"] == 64 * others["lr"]
    assert biases["lr"] * biases["weight_decay"] == pytest.approx(others["lr"] * others["weight_decay"])
    coupled = train.build_optimizer(tiny_net(), dataclasses.replace(cfg, decoupled_weight_decay=False))
    assert coupled.param_groups[1]["weight_decay"] == coupled.param_groups[0]["weight_decay"]
    assert isinstance(train.build_optimizer(tiny_net(), dataclasses.replace(CFG, plp=1.0)), plp.PLP)


def test_linear_schedule_warms_up_then_decays():
    factors = [train.schedule_factor(step, 10, "linear", warmup=0.2) for step in range(10)]
    assert factors[:3] == [0.5, 1.0, 1.0] and factors[-1] == 1 / 8
    assert all(a > b for a, b in zip(factors[2:], factors[3:]))


def test_triangle_schedule_matches_airbench94():
    total = 476  # airbench94: ceil(48 steps x 9.9 epochs)
    factors = [train.schedule_factor(step, total, "triangle", warmup=0.23) for step in range(total + 1)]
    peak = int(0.23 * total)
    assert factors[0] == pytest.approx(0.2) and factors[peak] == pytest.approx(1.0)
    assert factors[total] == pytest.approx(0.07) and max(factors) == pytest.approx(1.0)


def test_lookahead_averages_and_ends_on_the_average():
    net = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(0.0)
    ahead = train.LookAhead(net)
    with torch.no_grad():
        net.weight.fill_(1.0)
    ahead.update(0.75)  # average = 0.75 * 0 + 0.25 * 1
    assert net.weight.item() == 0.25
    assert train.LookAhead.decay(0, 100) == 0 and train.LookAhead.decay(100, 100) == 1.0
    assert train.LookAhead.decay(50, 100) == pytest.approx(0.95**5 / 8)


def test_alternate_flips_show_each_image_both_ways_every_two_epochs():
    n = 100
    plans = [train.epoch_plan(n, torch.Generator().manual_seed(e), 2, "alternate", epoch=e, seed=3)
             for e in range(2)]
    by_image = [torch.empty(n, dtype=torch.bool).index_put_((p.order,), p.flips) for p in plans]
    assert torch.equal(by_image[0], ~by_image[1])
    assert 20 < int(by_image[0].sum()) < 80
    assert not train.epoch_plan(n, torch.Generator(), 2, "none").flips.any()


def test_augment_batch_crops_and_flips():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).view(2, 3, 32, 32)
    centre = torch.full((2, 2), 4)
    assert torch.equal(train.augment_batch(x, centre, torch.tensor([False, False])), x)
    assert torch.equal(train.augment_batch(x, centre, torch.tensor([True, False]))[0], x[0].flip(2))
    shifted = train.augment_batch(x, torch.tensor([[4, 6], [0, 4]]), torch.tensor([False, False]))
    assert torch.equal(shifted[0, :, :, :30], x[0, :, :, 2:])  # 2 columns to the left
    assert torch.equal(shifted[1, :, 4:, :], x[1, :, :28, :])  # 4 rows down
    assert torch.equal(shifted[1, :, 3, :], x[1, :, 1, :])  # reflect padding mirrors row 1 above row 0
    assert torch.equal(train.augment_batch(x, torch.zeros(2, 2, dtype=torch.long), torch.tensor([False] * 2), 0), x)


def test_tta_modes():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(2))
    x = torch.randn(5, 3, 32, 32)
    net(x)
    mirrored = (net(x) + net(x.flip(3))) / 2
    assert torch.allclose(train.tta_logits(net, x, "none"), net(x))
    assert torch.allclose(train.tta_logits(net, x, "flip"), mirrored)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    shifts = [padded[:, :, :32, :32], padded[:, :, 2:, 2:]]
    expected = 0.5 * mirrored + 0.25 * sum((net(s) + net(s.flip(3))) / 2 for s in shifts)
    assert torch.allclose(train.tta_logits(net, x, "flip-translate"), expected, atol=1e-6)


def test_train_one_epoch_is_short_enough_to_read_whole():
    assert len(inspect.getsource(train.train_one_epoch).splitlines()) <= 40
    assert len(inspect.getsource(train.fit).splitlines()) <= 60


def test_flops_of_a_linear_model():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    assert train.train_flops_per_image(model, torch.device("cpu")) == 3 * 2 * 3072 * 10


def test_whitening_bias_learns_only_in_the_first_epochs(fake_ds):
    config.seed_everything(0)
    net = models.build_model("fast")
    cfg = dataclasses.replace(CFG, model="fast", epochs=2, whiten_bias_epochs=1, freeze_bn_scales=True)
    snapshots = []
    real = train.train_one_epoch

    def record(run, epoch):
        out = real(run, epoch)
        snapshots.append(run.net.whiten.bias.detach().clone())
        return out

    import unittest.mock

    with unittest.mock.patch.object(train, "train_one_epoch", record):
        train.fit(net, fake_ds, cfg, **RUN)
    assert not torch.equal(snapshots[0], torch.zeros_like(snapshots[0]))  # learnt in epoch 1
    assert torch.equal(snapshots[0], snapshots[1])  # frozen in epoch 2


def test_warm_up_leaves_weights_statistics_and_random_state_unchanged(fake_ds):
    net = tiny_net()
    run = train._start(net, fake_ds, CFG, torch.device("cpu"), compile=False, sync_bn=False, progress=False)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng = torch.get_rng_state()
    assert train._warm_up(run) > 0
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters()) and torch.equal(rng, torch.get_rng_state())
