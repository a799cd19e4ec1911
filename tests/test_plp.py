"""Tests of dcnn_helpers.plp: the PLP rule, the optimiser wrapper's contract, the 2-D trajectory helpers."""

from __future__ import annotations

import copy
import io
import math

import numpy as np
import pytest
import torch

from dcnn_helpers import plp
from dcnn_helpers.plp import PLP


def scalar_run(gradients, lr=1.0, prediction_step=1.0, cycle=3, momentum=0.0):
    """Feed the given gradients to PLP(SGD) on one float64 scalar starting at 0; return the iterates."""
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = PLP(torch.optim.SGD([x], lr=lr, momentum=momentum), prediction_step=prediction_step, cycle=cycle)
    out = []
    for g in gradients:
        x.grad = torch.tensor([float(g)], dtype=torch.float64)
        opt.step()
        out.append(x.item())
    return out


def test_checked_example_from_the_spec():
    # [checked] plain SGD, lr 1, from 0, gradients 1, 2, 4: -1, -3, then the prediction -8; gradient 1 then gives -9
    assert scalar_run([1, 2, 4, 1]) == [-1.0, -3.0, -8.0, -9.0]


def test_hand_computed_prediction_step_and_long_cycle():
    # theta = -1, -3, -7: (θ2+θ3)/2 + p(θ3-θ1)/2 = -5 - 3p
    assert scalar_run([1, 2, 4], prediction_step=0.5)[-1] == -6.5
    assert scalar_run([1, 2, 4], prediction_step=0.0)[-1] == -5.0
    # cycle 5 uses the last three iterates: -1, -2, -3, -5, -9 -> (-5-9)/2 + (-9+3)/2 = -10
    assert scalar_run([1, 1, 1, 2, 4], cycle=5) == [-1.0, -2.0, -3.0, -5.0, -10.0]
    # and a second cycle restarts from the prediction: -10 -1 per step until the next prediction
    assert scalar_run([1, 1, 1, 2, 4, 1, 1], cycle=5)[-2:] == [-11.0, -12.0]


@pytest.mark.parametrize("p", [1.0, 0.5, 2.0, -0.5])
def test_constant_velocity_extrapolates_to_time_2_5_plus_p(p):
    # constant gradient g, lr η: θ_t = θ0 - t·η·g, so the prediction is θ at t = 2.5 + p (3.5 for p = 1)
    theta0 = torch.tensor([0.3, -1.2], dtype=torch.float64)
    velocity = torch.tensor([-0.25, 0.5], dtype=torch.float64)
    thetas = [theta0 + t * velocity for t in (1, 2, 3)]
    torch.testing.assert_close(plp.predict(*thetas, prediction_step=p), theta0 + (2.5 + p) * velocity)
    lr, g = 0.125, 2.0
    assert scalar_run([g, g, g], lr=lr, prediction_step=p)[-1] == pytest.approx(-(2.5 + p) * lr * g, abs=1e-15)


def make_model(seed: int = 0, dtype=torch.float32) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).to(dtype)


def batches(n: int, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(16, 4, generator=gen), torch.randint(0, 3, (16,), generator=gen)) for _ in range(n)]


def sgd(model, **kwargs):
    kwargs = {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4, **kwargs}
    return torch.optim.SGD(model.parameters(), **kwargs)


def train_steps(model, opt, data, scaler=None):
    for x, y in data:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x.to(next(model.parameters()).dtype)), y)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()


def flat(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_equivalent_to_base_between_predictions_and_momentum_kept():
    data = batches(10)
    model, ref = make_model(), make_model()
    opt, ref_opt = PLP(sgd(model), prediction_step=0.7), sgd(ref)
    for k, (x, y) in enumerate(data, start=1):
        train_steps(model, opt, [(x, y)])
        train_steps(ref, ref_opt, [(x, y)])
        if k % 3 == 1:
            theta1 = [p.detach().clone() for p in ref.parameters()]
        if k % 3 == 2:
            theta2 = [p.detach().clone() for p in ref.parameters()]
        if k % 3 == 0:  # the reference does the prediction by hand and leaves its momentum alone
            with torch.no_grad():
                for p, a, b in zip(ref.parameters(), theta1, theta2):
                    p.copy_(plp.predict(a, b, p, 0.7))
        assert torch.equal(flat(model), flat(ref)), f"parameters differ after step {k}"
        for p, q in zip(model.parameters(), ref.parameters()):
            assert torch.equal(opt.base.state[p]["momentum_buffer"], ref_opt.state[q]["momentum_buffer"])
    assert opt.step_in_cycle == 1


def test_prediction_leaves_momentum_buffer_and_moves_parameters():
    data = batches(3)
    model, ref = make_model(), make_model()
    opt, ref_opt = PLP(sgd(model)), sgd(ref)
    train_steps(model, opt, data)
    train_steps(ref, ref_opt, data)
    assert not torch.equal(flat(model), flat(ref))  # the prediction moved the parameters ...
    for p, q in zip(model.parameters(), ref.parameters()):  # ... and left the momentum exactly as plain SGD has it
        assert torch.equal(opt.base.state[p]["momentum_buffer"], ref_opt.state[q]["momentum_buffer"])


def test_closure_evaluated_once_per_step_and_loss_returned():
    model = make_model()
    opt = PLP(sgd(model))
    (x, y), calls = batches(1)[0], []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    losses = [opt.step(closure) for _ in range(6)]
    assert len(calls) == 6 and all(isinstance(loss, torch.Tensor) for loss in losses)
    assert opt.step() is None  # without a closure, like the base optimiser


def test_scheduler_acts_through_shared_param_groups():
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = PLP(torch.optim.SGD([x], lr=1.0))
    assert opt.param_groups is opt.base.param_groups
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(3):  # lr 1, 0.5, 0.25 with gradient 1: -1, -1.5, -1.75, prediction -1.625 - 0.375 = -2
        x.grad = torch.ones(1, dtype=torch.float64)
        opt.step()
        sched.step()
    assert x.item() == -2.0
    assert opt.base.param_groups[0]["lr"] == 0.125


def test_deepcopy_keeps_groups_shared_with_its_own_base():
    opt = PLP(sgd(make_model()), prediction_step=0.5)
    clone = copy.deepcopy(opt)
    assert clone.param_groups is clone.base.param_groups and clone.base is not opt.base
    assert (clone.prediction_step, clone.cycle) == (0.5, 3)


def test_add_param_group_and_zero_grad_reach_the_base():
    model = make_model()
    extra = torch.nn.Parameter(torch.ones(2))
    opt = PLP(sgd(model))
    opt.add_param_group({"params": [extra], "lr": 0.5})
    assert len(opt.base.param_groups) == 2 and opt.base.param_groups[-1]["lr"] == 0.5
    train_steps(model, opt, batches(1))
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_grad_scaler_skipped_step_does_not_advance_the_cycle():
    model = make_model()
    opt = PLP(sgd(model))
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    train_steps(model, opt, batches(2), scaler=scaler)
    assert opt.step_in_cycle == 2
    before = flat(model)
    x, y = batches(1)[0]
    x[0, 0] = float("inf")  # an inf gradient: the scaler skips the step
    train_steps(model, opt, [(x, y)], scaler=scaler)
    assert opt.step_in_cycle == 2 and torch.equal(flat(model), before)
    train_steps(model, opt, batches(1, seed=3), scaler=scaler)
    assert opt.step_in_cycle == 0


@pytest.mark.parametrize("stop", [0, 1, 2, 3, 4, 5, 7])
def test_resume_mid_cycle_is_bit_identical(stop):
    data = batches(9)
    model = make_model()
    opt = PLP(sgd(model), prediction_step=0.8)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=9)
    for batch in data:
        train_steps(model, opt, [batch])
        sched.step()

    first = make_model()
    opt1 = PLP(sgd(first), prediction_step=0.8)
    sched1 = torch.optim.lr_scheduler.CosineAnnealingLR(opt1, T_max=9)
    for batch in data[:stop]:
        train_steps(first, opt1, [batch])
        sched1.step()
    buffer = io.BytesIO()
    torch.save({"model": first.state_dict(), "opt": opt1.state_dict(), "sched": sched1.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)

    resumed = make_model(seed=5)  # different weights, fresh optimiser: everything must come from the checkpoint
    opt2 = PLP(sgd(resumed), prediction_step=0.1, cycle=4)
    sched2 = torch.optim.lr_scheduler.CosineAnnealingLR(opt2, T_max=9)
    resumed.load_state_dict(checkpoint["model"])
    opt2.load_state_dict(checkpoint["opt"])
    sched2.load_state_dict(checkpoint["sched"])
    assert (opt2.prediction_step, opt2.cycle, opt2.step_in_cycle) == (0.8, 3, stop % 3)
    for batch in data[stop:]:
        train_steps(resumed, opt2, [batch])
        sched2.step()
    assert torch.equal(flat(resumed), flat(model))


def test_frozen_and_unused_parameters_stay_exactly_in_place():
    model = make_model()
    unused = torch.nn.Parameter(torch.randn(5))
    opt = PLP(torch.optim.SGD([*model.parameters(), unused], lr=0.1), prediction_step=0.37)
    before = unused.detach().clone()
    train_steps(model, opt, batches(6))
    assert torch.equal(unused.detach(), before)


def devices():
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_devices_and_dtypes(device, dtype):
    x = torch.zeros(3, device=device, dtype=dtype, requires_grad=True)
    opt = PLP(torch.optim.SGD([x], lr=1.0), prediction_step=0.5)
    for g in (1.0, 2.0, 4.0):
        x.grad = torch.full((3,), g, device=device, dtype=dtype)
        opt.step()
    assert x.dtype == dtype and x.device.type == device
    assert torch.equal(x.detach().float().cpu(), torch.full((3,), -6.5))  # -6.5 is exact in bf16
    # a bf16 prediction is computed in float32 and rounded once
    thetas = [torch.tensor([1.0, -3.0], dtype=dtype, device=device) / 3 * k for k in (1, 2, 3)]
    y = thetas[2].clone().requires_grad_()
    opt = PLP(torch.optim.SGD([y], lr=0.0), prediction_step=0.3)
    opt.state[y]["theta1"], opt.state[y]["theta2"] = thetas[0], thetas[1]
    opt.step_in_cycle = 2
    y.grad = torch.zeros_like(y)
    opt.step()
    expected = plp.predict(*(t.float() for t in thetas), prediction_step=0.3).to(dtype)
    assert torch.equal(y.detach(), expected)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -math.inf])
def test_prediction_step_must_be_finite(value):
    with pytest.raises(ValueError, match="prediction_step"):
        PLP(sgd(make_model()), prediction_step=value)


@pytest.mark.parametrize("value", ["1", None, True])
def test_prediction_step_must_be_a_number(value):
    with pytest.raises(TypeError, match="prediction_step"):
        PLP(sgd(make_model()), prediction_step=value)


@pytest.mark.parametrize("value, error", [(2, ValueError), (0, ValueError), (-3, ValueError), (3.0, TypeError),
                                          (True, TypeError)])
def test_cycle_must_be_an_integer_at_least_3(value, error):
    with pytest.raises(error, match="cycle"):
        PLP(sgd(make_model()), cycle=value)


@pytest.mark.parametrize("base", [None, "SGD", [torch.zeros(2)], torch.nn.Linear(2, 2)])
def test_base_must_be_an_optimizer(base):
    with pytest.raises(TypeError, match="base_optimizer"):
        PLP(base)


def test_param_group_added_mid_cycle_joins_at_the_next_cycle():
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    y = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = PLP(torch.optim.SGD([x], lr=1.0))
    visited = []
    for k, g in enumerate((1.0, 2.0, 4.0, 1.0, 2.0, 4.0)):
        if k == 1:
            opt.add_param_group({"params": [y]})
        for t in (x, y):
            t.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        visited.append((x.item(), y.item()))
    # y misses θ1 of the first cycle, so it takes plain steps (-2, -6) until its first full cycle: -7, -9, then
    # the prediction (-9 - 13)/2 + (-13 + 7)/2 = -14
    assert visited == [(-1, 0), (-3, -2), (-8, -6), (-9, -7), (-11, -9), (-16, -14)]


def test_load_state_dict_rejects_foreign_or_inconsistent_state():
    model = make_model()
    opt = PLP(sgd(model))
    with pytest.raises(ValueError, match="missing keys"):
        opt.load_state_dict(sgd(make_model()).state_dict())
    state = opt.state_dict()
    state["step_in_cycle"] = 3
    with pytest.raises(ValueError, match="step_in_cycle"):
        opt.load_state_dict(state)
    train_steps(model, opt, batches(2))
    state = opt.state_dict()
    assert sorted(state["snapshots"][0]) == ["theta1", "theta2"]
    state["snapshots"][0]["theta1"] = torch.zeros(3)
    with pytest.raises(ValueError, match="shape"):
        opt.load_state_dict(state)
    state["step_in_cycle"] = 1  # θ2 is not part of the state after one step
    with pytest.raises(ValueError, match="does not fit"):
        opt.load_state_dict(state)


def test_trajectory_plain_sgd_on_quadratic_and_prediction_marks():
    # gradient of 0.5(x² + 25y²) is (x, 25y): SGD with lr η multiplies x by (1-η) and y by (1-25η) each step
    run = plp.trajectory(plp.quadratic_valley, (-4.0, 1.0), steps=6, lr=0.02)
    np.testing.assert_allclose(run.points[:, 0], -4.0 * 0.98 ** np.arange(7))
    np.testing.assert_allclose(run.points[:, 1], 0.5 ** np.arange(7))
    assert run.predicted_at.size == 0
    pred = plp.trajectory(plp.quadratic_valley, (-4.0, 1.0), steps=7, lr=0.02, plp={"cycle": 3})
    np.testing.assert_array_equal(pred.predicted_at, [3, 6])
    np.testing.assert_allclose(pred.points[3], plp.predict(*map(torch.tensor, run.points[1:4])).numpy())
    with pytest.raises(ValueError, match="steps"):
        plp.trajectory(plp.rosenbrock, (0.0, 0.0), steps=0, lr=0.1)


def test_trajectory_repeats_are_independent_rows():
    one = plp.trajectory(plp.rosenbrock, (-1.2, 1.0), steps=9, lr=1e-3, momentum=0.9, plp={})
    many = plp.trajectory(plp.rosenbrock, (-1.2, 1.0), steps=9, lr=1e-3, momentum=0.9, plp={}, repeats=3)
    np.testing.assert_array_equal(many.points, one.points)
    np.testing.assert_allclose(many.mean_losses, one.losses, rtol=1e-15)
    noisy = plp.trajectory(plp.noisy_bowl, (0.0, 0.0), steps=5, lr=0.1, grad_noise=1.0, repeats=4)
    assert not np.allclose(noisy.mean_losses, noisy.losses)


def test_surfaces_minima_and_summary():
    assert plp.rosenbrock(torch.tensor([1.0, 1.0])).item() == 0.0
    assert plp.quadratic_valley(torch.zeros(2)).item() == 0.0
    assert plp.summarise_seeds([1.0, 3.0]) == (2.0, math.sqrt(2.0))
    assert plp.summarise_seeds([0.5]) == (0.5, 0.0)
    with pytest.raises(ValueError, match="values"):
        plp.summarise_seeds([])


def test_cycle_factor_matches_simulation_and_has_hand_derived_zeros():
    # p = 1: ρ(r) = r(2r − 1)(r + 1)/2 vanishes at r = 1/2, 0, −1, i.e. ηλ = 0.5, 1, 2
    np.testing.assert_allclose(plp.cycle_factor(np.array([0.5, 1.0, 2.0]), 1.0), 0.0, atol=1e-15)
    assert plp.cycle_factor(0.1, None) == pytest.approx(0.9**3)
    for eta_lambda, p in [(0.1, 1.0), (0.7, 0.5), (1.9, 2.0)]:  # 1-D quadratic λθ²/2 with λ = 1, lr = ηλ
        x = torch.ones(1, dtype=torch.float64, requires_grad=True)
        opt = PLP(torch.optim.SGD([x], lr=eta_lambda), prediction_step=p)
        for _ in range(6):
            x.grad = x.detach().clone()
            opt.step()
        assert x.item() == pytest.approx(plp.cycle_factor(eta_lambda, p) ** 2, rel=1e-12, abs=1e-15)
    # slow directions: one cycle is worth 2.5 + p SGD steps
    eps = 1e-6
    assert (1 - plp.cycle_factor(eps, 1.0)) / eps == pytest.approx(3.5, rel=1e-5)


@pytest.mark.parametrize("p", [None, -1.0, 0.0, 0.5, 1.0, 2.0, 6.0])
def test_max_stable_lr_is_the_first_crossing(p):
    limit = plp.max_stable_lr(p)
    grid = np.linspace(1e-6, limit - 1e-6, 20001)
    assert np.abs(plp.cycle_factor(grid, p)).max() < 1
    assert abs(plp.cycle_factor(limit + 1e-4, p)) > 1
    assert plp.max_stable_lr(-3.0) == 0.0


def _batches(steps, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(16, 4, generator=gen), torch.randint(0, 3, (16,), generator=gen)) for _ in range(steps)]


def test_update_cosines_match_a_hand_computed_run():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    reference = copy.deepcopy(net)
    batches = _batches(6)
    result = plp.update_cosines(net, batches, lr=0.1, momentum=0.9)
    opt = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    points = [torch.cat([p.detach().flatten() for p in reference.parameters()]).double()]
    for x, y in batches:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(reference(x), y).backward()
        opt.step()
        points.append(torch.cat([p.detach().flatten() for p in reference.parameters()]).double())
    steps = [b - a for a, b in zip(points, points[1:])]
    cos = lambda u, v: float(u @ v / (u.norm() * v.norm()))  # noqa: E731
    assert result.lag1 == pytest.approx([cos(steps[t], steps[t + 1]) for t in range(5)])
    assert result.lag2 == pytest.approx([cos(steps[t], steps[t + 2]) for t in range(4)])
    assert result.norms == pytest.approx([float(s.norm()) for s in steps])
    expected = [float((steps[t] - steps[t + 2]).norm() / steps[t].norm()) for t in range(4)]
    assert result.jump_errors() == pytest.approx(expected)
    assert len(result.losses) == 6 and result.every == 1


class _Linear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight


def test_update_cosines_straight_path_and_windows():
    # loss -sum(x . w) has the constant gradient -2 per coordinate: a straight line at constant speed
    batches = [(torch.ones(2, 3, dtype=torch.float64), torch.zeros(2))] * 9
    result = plp.update_cosines(_Linear(), batches, lr=0.1, loss_fn=lambda out, target: -out.sum(), every=3)
    assert result.lag1 == pytest.approx([1.0, 1.0]) and result.lag2 == pytest.approx([1.0])
    assert result.norms == pytest.approx([0.6 * math.sqrt(3)] * 3)  # 3 steps of 0.2 per coordinate
    assert result.jump_errors() == pytest.approx([0.0], abs=1e-9)
    assert len(result.losses) == 9 and result.every == 3


def test_update_cosines_rejects_bad_settings():
    net = torch.nn.Linear(4, 3)
    with pytest.raises(ValueError, match="lr=0"):
        plp.update_cosines(net, _batches(3), lr=0)
    with pytest.raises(ValueError, match="momentum=1"):
        plp.update_cosines(net, _batches(3), lr=0.1, momentum=1)
    with pytest.raises(ValueError, match="every=0"):
        plp.update_cosines(net, _batches(3), lr=0.1, every=0)
    with pytest.raises(ValueError, match="at least 3"):
        plp.update_cosines(net, _batches(2), lr=0.1)
