"""Parameters linear prediction (PLP, Ying et al. 2023) as a drop-in ``torch.optim.Optimizer`` wrapper.

Introduced in notebook 05 (parameters linear prediction); the course trainer (:mod:`dcnn_helpers.train`) wraps
SGD in it when asked. A leaf of the course: it imports only the ground floor (argument checks).

The rule: run a base optimiser (SGD, with or without momentum, or any other) as usual and group its steps into
cycles. With :math:`\\theta_1, \\theta_2, \\theta_3` the parameters after the last three base steps of a cycle,
the midpoints :math:`m_{12} = (\\theta_1+\\theta_2)/2` and :math:`m_{23} = (\\theta_2+\\theta_3)/2` sit at times
1.5 and 2.5, :math:`s = m_{23} - m_{12}` is the displacement per step, and the parameters are overwritten with

.. math:: \\theta_{pred} = m_{23} + p\\,s = \\tfrac12(\\theta_2+\\theta_3) + \\tfrac p2(\\theta_3-\\theta_1),

an extrapolation to time :math:`2.5 + p` (3.5 for the default :math:`p = 1`). The next cycle starts from
:math:`\\theta_{pred}`. No gradient is evaluated for the prediction.

Choice for the base optimiser's state (momentum buffers, Adam moments, step counts): it is left **unchanged** by a
prediction. The momentum buffer is an average of recent gradients, which is still the best estimate of the descent
direction at the predicted point; zeroing it would throw that away, and adding the prediction jump to it would
count the same displacement twice. So between predictions, PLP is bit-identical to the base optimiser.

The module also holds the notebook's small experiments: the exact per-cycle factor on a quadratic, 2-D loss
surfaces and trajectories, and how straight a real network's trajectory is (:func:`update_cosines`). The CIFAR
runs of notebook 05 are in :mod:`dcnn_helpers.plp_cifar`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

from . import validation

__all__ = [
    "PLP",
    "predict",
    "cycle_factor",
    "max_stable_lr",
    "quadratic_valley",
    "rosenbrock",
    "noisy_bowl",
    "SURFACES",
    "Trajectory",
    "trajectory",
    "UpdateCosines",
    "update_cosines",
    "surface_grid",
    "plot_trajectories",
    "summarise_seeds",
]


def predict(theta1: torch.Tensor, theta2: torch.Tensor, theta3: torch.Tensor, prediction_step: float = 1.0):
    """The PLP prediction from three consecutive iterates: ``(θ2+θ3)/2 + p·(θ3−θ1)/2``.

    Written as ``θ3 + ((θ2−θ3) + p·(θ3−θ1))/2``, which is algebraically the same and leaves a parameter that did
    not move (θ1 = θ2 = θ3) exactly where it is. Introduced in notebook 05.
    """
    return theta3 + ((theta2 - theta3) + prediction_step * (theta3 - theta1)) / 2


def cycle_factor(eta_lambda: np.ndarray | float, prediction_step: float | None = 1.0) -> np.ndarray:
    """What one cycle of three plain-SGD steps (+ PLP) multiplies a coordinate by on the quadratic ``λθ²/2``.

    One SGD step multiplies ``θ`` by ``r = 1 − ηλ``, so three give ``r³``; with the prediction (``θ_k = r^k θ_0``)
    the cycle multiplies by ``ρ = ((r² + r³) + p·(r³ − r)) / 2``. ``prediction_step=None`` returns SGD's ``r³``.
    Introduced in notebook 05.
    """
    r = 1.0 - np.asarray(eta_lambda, dtype=np.float64)
    if prediction_step is None:
        return r**3
    return ((r**2 + r**3) + _check_prediction_step(prediction_step) * (r**3 - r)) / 2


def max_stable_lr(prediction_step: float | None = 1.0) -> float:
    """The largest ``ηλ`` up to which plain SGD (+ PLP) converges on a quadratic: ``|cycle_factor| < 1`` on (0, it).

    2 for SGD. For PLP, the smallest ``ηλ > 0`` where ``ρ = ±1``: a root ``r < 1`` of ``2ρ(r) ∓ 2 = (1 + p) r³ +
    r² − p r ∓ 2``; 0 when ``p ≤ −2.5`` (then ``ρ > 1`` already for small ``ηλ``). Introduced in notebook 05.
    """
    if prediction_step is None:
        return 2.0
    p = _check_prediction_step(prediction_step)
    if p <= -2.5:
        return 0.0
    roots = np.concatenate([np.roots([1.0 + p, 1.0, -p, sign * 2.0]) for sign in (-1.0, 1.0)])
    real = roots[np.abs(roots.imag) < 1e-9].real
    return float(1.0 - real[real < 1.0 - 1e-9].max())


def _check_prediction_step(prediction_step: Any) -> float:
    if isinstance(prediction_step, bool) or not isinstance(prediction_step, (int, float, np.integer, np.floating)):
        raise TypeError(f"prediction_step must be a real number, got {type(prediction_step).__name__}")
    if not math.isfinite(prediction_step):
        raise ValueError(f"prediction_step={prediction_step!r} must be finite")
    return float(prediction_step)


def _check_cycle(cycle: Any) -> int:
    if isinstance(cycle, bool) or not isinstance(cycle, (int, np.integer)):
        raise TypeError(f"cycle must be an integer >= 3, got {type(cycle).__name__}")
    if cycle < 3:
        raise ValueError(f"cycle={cycle!r} must be >= 3: the prediction needs three iterates")
    return int(cycle)


class PLP(torch.optim.Optimizer):
    """Wrap ``base_optimizer`` so that the last of every ``cycle`` steps ends with a parameters linear prediction.

    * ``step(closure=None)`` runs one base step (the closure, if any, is evaluated once, by the base optimiser) and
      returns its loss; after the last step of a cycle the parameters jump to ``θ_pred`` (see :func:`predict`).
      With ``cycle > 3`` the prediction uses the last three iterates of the cycle.
    * ``param_groups`` *is* the base optimiser's list, so learning-rate schedulers, ``torch.amp.GradScaler`` and
      ``add_param_group`` act on both. A step skipped by the gradient scaler does not advance the cycle.
    * The base optimiser's state is not touched by a prediction (see the module docstring).
    * ``state_dict()`` holds the base optimiser's state dict, the position in the cycle and the stored iterates,
      so that a run resumed mid-cycle is bit-identical to an uninterrupted one.
    * Memory: two snapshots of the parameters (θ1 and θ2), as many bytes as Adam's two moments.

    Introduced in notebook 05.
    """

    def __init__(self, base_optimizer: torch.optim.Optimizer, prediction_step: float = 1.0, cycle: int = 3) -> None:
        if not isinstance(base_optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"base_optimizer must be a torch.optim.Optimizer (e.g. torch.optim.SGD), "
                f"got {type(base_optimizer).__name__}"
            )
        self.prediction_step = _check_prediction_step(prediction_step)
        self.cycle = _check_cycle(cycle)
        # Optimizer.__init__ sets up the hook machinery and validates copies of the groups; from then on
        # ``param_groups`` reads and writes the base optimiser's list (see the property below).
        super().__init__([dict(group) for group in base_optimizer.param_groups], base_optimizer.defaults)
        self.base = base_optimizer
        del self.__dict__["_groups_during_init"]
        self.step_in_cycle = 0  # base steps taken since the last prediction (0 .. cycle-1)

    @property
    def param_groups(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """The base optimiser's ``param_groups`` (the same list, also after ``base.load_state_dict``)."""
        base = self.__dict__.get("base")
        return base.param_groups if base is not None else self.__dict__["_groups_during_init"]

    @param_groups.setter
    def param_groups(self, groups: list[dict[str, Any]]) -> None:
        base = self.__dict__.get("base")
        if base is not None:
            base.param_groups = groups
        else:
            self.__dict__["_groups_during_init"] = groups

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__.copy()  # keep ``base`` (Optimizer's own version drops it), so deepcopy/pickle work

    def __repr__(self) -> str:
        return (
            f"PLP(prediction_step={self.prediction_step}, cycle={self.cycle}, "
            f"step_in_cycle={self.step_in_cycle}, base={self.base!r})"
        )

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    @torch.no_grad()
    def _snapshot(self, key: str) -> None:
        for p in self._params():
            self.state[p][key] = p.detach().clone()  # exact: same dtype as the parameter

    @torch.no_grad()
    def _predict(self) -> None:
        for p in self._params():
            state = self.state[p]
            if "theta1" not in state or "theta2" not in state:  # added by add_param_group mid-cycle: wait a cycle
                continue
            compute = torch.promote_types(p.dtype, torch.float32)  # bf16/fp16 parameters: predict in float32
            theta1, theta2 = state["theta1"].to(compute), state["theta2"].to(compute)
            p.copy_(predict(theta1, theta2, p.to(compute), self.prediction_step))

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One base step (the closure is evaluated once, by the base optimiser); a prediction ends each cycle."""
        loss = self.base.step(closure) if closure is not None else self.base.step()
        self.step_in_cycle += 1
        if self.step_in_cycle == self.cycle - 2:
            self._snapshot("theta1")
        elif self.step_in_cycle == self.cycle - 1:
            self._snapshot("theta2")
        elif self.step_in_cycle == self.cycle:
            self._predict()
            self.step_in_cycle = 0
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """The base optimiser's ``zero_grad``."""
        self.base.zero_grad(set_to_none=set_to_none)

    @staticmethod
    def _live_snapshots_at(step_in_cycle: int, cycle: int) -> tuple[str, ...]:
        """Which stored iterates the rest of a cycle still needs after ``step_in_cycle`` of its steps."""
        if step_in_cycle == cycle - 1:
            return ("theta1", "theta2")
        if step_in_cycle == cycle - 2:
            return ("theta1",)
        return ()

    def _live_snapshots(self) -> tuple[str, ...]:
        return self._live_snapshots_at(self.step_in_cycle, self.cycle)

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        """``{"base_optimizer", "prediction_step", "cycle", "step_in_cycle", "snapshots"}``; the snapshots are
        keyed like the base optimiser's state (parameter index over all groups) and only those still needed."""
        live = self._live_snapshots()
        snapshots = {}
        for index, p in enumerate(self._params()):
            stored = {key: self.state[p][key].clone() for key in live if key in self.state[p]}
            if stored:
                snapshots[index] = stored
        return {
            "base_optimizer": self.base.state_dict(),
            "prediction_step": self.prediction_step,
            "cycle": self.cycle,
            "step_in_cycle": self.step_in_cycle,
            "snapshots": snapshots,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # type: ignore[override]
        """Restore a :meth:`state_dict`: the base optimiser, ``prediction_step``, ``cycle`` and the cycle position."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict from PLP.state_dict(), got {type(state_dict).__name__}")
        missing = {"base_optimizer", "prediction_step", "cycle", "step_in_cycle", "snapshots"} - set(state_dict)
        if missing:
            raise ValueError(f"state_dict is not from PLP.state_dict(): missing keys {sorted(missing)}")
        prediction_step = _check_prediction_step(state_dict["prediction_step"])
        cycle = _check_cycle(state_dict["cycle"])
        step_in_cycle = state_dict["step_in_cycle"]
        if isinstance(step_in_cycle, bool) or not isinstance(step_in_cycle, int) or not 0 <= step_in_cycle < cycle:
            raise ValueError(f"state_dict['step_in_cycle']={step_in_cycle!r} must be an integer in [0, {cycle})")
        params = self._params()
        snapshots = state_dict["snapshots"]
        live = set(self._live_snapshots_at(step_in_cycle, cycle))
        for index, stored in snapshots.items():
            if not (isinstance(index, int) and 0 <= index < len(params)) or not set(stored) <= live:
                raise ValueError(f"state_dict['snapshots'] entry {index!r}: {sorted(stored)} does not fit "
                                 f"{len(params)} parameters at step {step_in_cycle} of a cycle of {cycle}")
            for key, saved in stored.items():
                if saved.shape != params[index].shape:
                    raise ValueError(f"snapshot {key} of parameter {index} has shape {tuple(saved.shape)}, "
                                     f"the parameter {tuple(params[index].shape)}")
        self.base.load_state_dict(state_dict["base_optimizer"])
        self.prediction_step, self.cycle, self.step_in_cycle = prediction_step, cycle, step_in_cycle
        for p in params:  # iterates of an earlier cycle must not be mistaken for this one's
            for key in ("theta1", "theta2"):
                self.state[p].pop(key, None)
        for index, stored in snapshots.items():
            p = params[index]
            for key, saved in stored.items():
                self.state[p][key] = saved.detach().to(device=p.device, dtype=p.dtype, copy=True)


# ---------------------------------------------------------------------------------------------------------------
# 2-D loss surfaces and trajectories (notebook 05, section "What a prediction does to a trajectory")


def quadratic_valley(xy: torch.Tensor) -> torch.Tensor:
    """An ill-conditioned quadratic ``0.5·(x² + 25·y²)`` (condition number 25); minimum 0 at the origin.

    ``xy`` has shape ``(..., 2)``. Introduced in notebook 05.
    """
    return 0.5 * (xy[..., 0] ** 2 + 25.0 * xy[..., 1] ** 2)


def rosenbrock(xy: torch.Tensor) -> torch.Tensor:
    """The Rosenbrock banana ``(1−x)² + 100·(y−x²)²``; minimum 0 at (1, 1). Introduced in notebook 05."""
    return (1.0 - xy[..., 0]) ** 2 + 100.0 * (xy[..., 1] - xy[..., 0] ** 2) ** 2


def noisy_bowl(xy: torch.Tensor) -> torch.Tensor:
    """A bowl ``0.5·(x² + 4·y²)`` with small ripples ``0.3·sin(5x)·sin(5y)``: many shallow local minima.

    Introduced in notebook 05.
    """
    x, y = xy[..., 0], xy[..., 1]
    return 0.5 * (x**2 + 4.0 * y**2) + 0.3 * torch.sin(5.0 * x) * torch.sin(5.0 * y)


#: name -> (loss function, start point, plotting box (xmin, xmax, ymin, ymax), plain-SGD learning rate)
SURFACES: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], tuple[float, float], tuple[float, ...], float]] = {
    "quadratic valley": (quadratic_valley, (-4.0, 1.0), (-4.5, 1.5, -1.5, 1.5), 0.07),
    "Rosenbrock": (rosenbrock, (-1.2, 1.0), (-1.6, 1.4, -0.6, 1.6), 1.5e-3),
    "noisy bowl": (noisy_bowl, (-2.5, 1.8), (-3.0, 1.5, -2.2, 2.2), 0.05),
}


@dataclass
class Trajectory:
    """One run's iterates ``points`` (steps+1, 2) and ``losses`` (steps+1,), the step indices that ended with a
    prediction, and ``mean_losses`` (steps+1,), the loss averaged over all repeats (noise draws)."""

    points: np.ndarray
    losses: np.ndarray
    predicted_at: np.ndarray
    mean_losses: np.ndarray


def trajectory(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    start: tuple[float, float],
    steps: int,
    lr: float,
    momentum: float = 0.0,
    plp: dict[str, Any] | None = None,
    grad_noise: float = 0.0,
    seed: int = 0,
    repeats: int = 1,
) -> Trajectory:
    """Run SGD (optionally with momentum, PLP and Gaussian gradient noise of std ``grad_noise``) on a 2-D loss.

    ``repeats`` independent runs (different noise draws) go through one optimiser at once, as the rows of a
    ``(repeats, 2)`` tensor: every update is elementwise, so the rows do not interact. Computed in float64.
    ``plp`` is ``None`` (plain SGD) or keyword arguments of :class:`PLP`. Introduced in notebook 05.
    """
    steps, repeats = validation.integer("steps", steps, 1), validation.integer("repeats", repeats, 1)
    lr, grad_noise = validation.real("lr", lr, 0.0, low_open=True), validation.real("grad_noise", grad_noise, 0.0)
    momentum = validation.real("momentum", momentum, 0.0, 1.0, high_open=True)
    seed = validation.integer("seed", seed, 0)
    if isinstance(start, (str, bytes)) or not isinstance(start, Sequence) or len(start) != 2:
        raise ValueError(f"start must be a point (x, y), got {start!r}")
    start = tuple(validation.real(f"start[{i}]", v) for i, v in enumerate(start))
    xy = torch.tensor([start] * repeats, dtype=torch.float64, requires_grad=True)
    base = torch.optim.SGD([xy], lr=lr, momentum=momentum)
    opt = PLP(base, **plp) if plp is not None else base
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(steps, repeats, 2, dtype=torch.float64, generator=generator) * grad_noise
    points, losses, predicted = [xy.detach().clone()], [loss_fn(xy).detach()], []
    for k in range(steps):
        opt.zero_grad()
        loss_fn(xy).sum().backward()
        xy.grad += noise[k]
        opt.step()
        if plp is not None and opt.step_in_cycle == 0:
            predicted.append(k + 1)
        with torch.no_grad():
            points.append(xy.detach().clone())
            losses.append(loss_fn(xy))
    path, loss = torch.stack(points).numpy(), torch.stack(losses).numpy()
    return Trajectory(path[:, 0], loss[:, 0], np.asarray(predicted, dtype=int), loss.mean(axis=1))


@dataclass
class UpdateCosines:
    """How straight a training run moved, from its updates ``Δ_t = θ_{t+1} − θ_t`` (t = 0 .. T−1).

    An "update" spans ``every`` optimiser steps (1: single steps). ``lag1[t] = cos(Δ_t, Δ_{t+1})`` (T−1 values),
    ``lag2[t] = cos(Δ_t, Δ_{t+2})`` (T−2 values), ``norms[t] = |Δ_t|``, and ``losses``: the loss of every batch
    before its step. Introduced in notebook 05.
    """

    lag1: np.ndarray
    lag2: np.ndarray
    norms: np.ndarray
    losses: np.ndarray
    every: int

    def jump_errors(self) -> np.ndarray:
        """PLP's relative prediction error (p = 1) on this trajectory, one value per start ``t``.

        A cycle over the iterates ``θ_t, θ_{t+1}, θ_{t+2}`` jumps by ``(θ_{t+1} − θ_t)/2 = Δ_t/2``; a path of
        constant velocity would be at ``θ_{t+2} + Δ_{t+2}/2`` instead. The error ``(Δ_t − Δ_{t+2})/2`` relative
        to the jump is ``|Δ_t − Δ_{t+2}| / |Δ_t|``: 0 on a straight line at constant speed, about √2 when the
        updates are unrelated steps of equal length.
        """
        ratio = self.norms[2:] / self.norms[:-2]
        return np.sqrt(np.maximum(1.0 + ratio**2 - 2.0 * ratio * self.lag2, 0.0))


def update_cosines(
    model: torch.nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    lr: float,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    every: int = 1,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = torch.nn.functional.cross_entropy,
) -> UpdateCosines:
    """Train ``model`` in place with SGD, one step per ``(inputs, targets)`` batch, and measure its updates.

    The regularity PLP relies on: cosines between successive updates of all trainable parameters, each update
    spanning ``every`` steps (see :class:`UpdateCosines`). Only three flattened parameter vectors are kept,
    whatever the number of steps. The model is put in training mode. Introduced in notebook 05.
    """
    lr = validation.real("lr", lr, 0.0, low_open=True)
    momentum = validation.real("momentum", momentum, 0.0, 1.0, high_open=True)
    weight_decay = validation.real("weight_decay", weight_decay, 0.0)
    every = validation.integer("every", every, 1)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)

    def flat() -> torch.Tensor:
        return torch.cat([p.detach().flatten() for p in params]).double()

    model.train()
    previous, updates, losses, lag1, lag2, norms = flat(), [], [], [], [], []
    for step, (inputs, targets) in enumerate(batches, start=1):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % every:
            continue
        current = flat()
        updates = (updates + [current - previous])[-3:]
        previous = current
        norms.append(updates[-1].norm().item())
        for lag, store in ((1, lag1), (2, lag2)):
            if len(updates) > lag:
                store.append(torch.nn.functional.cosine_similarity(updates[-1 - lag], updates[-1], dim=0).item())
    if len(norms) < 3:
        raise ValueError(f"batches gave {len(norms)} updates of {every} step(s); at least 3 are needed")
    return UpdateCosines(np.array(lag1), np.array(lag2), np.array(norms), np.array(losses), every)


def surface_grid(
    loss_fn: Callable[[torch.Tensor], torch.Tensor], box: tuple[float, ...], points: int = 200
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, Y, Z)`` on a ``points × points`` grid over ``box = (xmin, xmax, ymin, ymax)``, for contour plots.

    Introduced in notebook 05.
    """
    if isinstance(box, (str, bytes)) or not isinstance(box, Sequence) or len(box) != 4:
        raise ValueError(f"box must be 4 numbers (xmin, xmax, ymin, ymax), got {box!r}")
    box = tuple(validation.real(f"box[{i}]", v) for i, v in enumerate(box))
    points = validation.integer("points", points, 2)
    validation.memory(f"surface_grid(points={points})", 5 * 8 * points**2)  # X, Y, the stacked grid, Z
    xs = torch.linspace(box[0], box[1], points, dtype=torch.float64)
    ys = torch.linspace(box[2], box[3], points, dtype=torch.float64)
    grid_x, grid_y = torch.meshgrid(xs, ys, indexing="xy")
    z = loss_fn(torch.stack([grid_x, grid_y], dim=-1))
    return grid_x.numpy(), grid_y.numpy(), z.numpy()


def plot_trajectories(
    ax, loss_fn, box, runs: dict[str, Trajectory], points: int = 200, log_levels: bool = True, marks: int = 25
):
    """Contours of ``loss_fn`` over ``box`` with each run's path; the first ``marks`` predicted iterates are dots.

    Introduced in notebook 05.
    """
    grid_x, grid_y, z = surface_grid(loss_fn, box, points)
    z_plot = np.log10(z - z.min() + 1e-3) if log_levels else z
    ax.contour(grid_x, grid_y, z_plot, levels=20, cmap="Greys", linewidths=0.6)
    for (label, run), colour, width in zip(runs.items(), ("C0", "C3", "C2", "C1"), (2.4, 1.2, 1.2, 1.2)):
        ax.plot(run.points[:, 0], run.points[:, 1], "-", color=colour, lw=width, label=label, alpha=0.8)
        if run.predicted_at.size:
            pred = run.points[run.predicted_at[:marks]]
            ax.plot(pred[:, 0], pred[:, 1], "o", color=colour, ms=3)
    ax.set_xlim(box[0], box[1])
    ax.set_ylim(box[2], box[3])
    ax.set_aspect("equal")
    return ax


def summarise_seeds(values: np.ndarray | list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value) over seeds. Introduced in notebook 05."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"values must be a non-empty 1-D sequence, got shape {arr.shape}")
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0
