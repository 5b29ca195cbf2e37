"""Learning-rate schedules as pure functions, and `scheduled` to attach one to an optimizer.

A schedule maps a step (or epoch) count ``t`` and a base learning rate to the
learning rate at ``t``::

    lr_t = schedule(t, base_lr, hparams=None)

Its integer settings (step_size, T_0, warmup_steps, ...) are fixed at
construction; its continuous parameters (``gamma``, ``eta_min``,
``start_factor``) are in ``schedule.defaults`` and may be overridden through
``hparams`` by Duals or tape values, so a forward (or reverse) hypergradient
can tune a schedule.  ``t`` is a Python int (the factors stay Python floats,
which numpy keeps weakly typed, so a float32 model stays float32) or an int
array (what `hyperopt.hypergrad.Setup` passes, so that `autodiff.jit` records
one program for every step); it carries no derivative.  With an int array the
factors of ``t`` (``gamma ** t``, the cosine, the warmup fraction) are 0-d
float64 values; each is cast to the dtype of what it multiplies when that is
a numpy value (a float32 ``base_lr``), as a Python float would be, so a
schedule keeps ``base_lr``'s dtype either way.  ``base_lr`` may be a per-parameter
pytree.  Every schedule here equals the closed form of its
torch.optim.lr_scheduler counterpart at epoch ``t``:

* `StepDecay`          StepLR
* `ExponentialDecay`   ExponentialLR
* `CosineWarmRestarts` CosineAnnealingWarmRestarts (SGDR)
* `LinearWarmup`       LinearLR(start_factor, end_factor=1, total_iters=warmup_steps)
* `Sequential`         SequentialLR (switch at milestones, each later schedule restarts at 0)
* `chain`              composition: ``s_n(t, ... s_1(t, base_lr))``; a product of
                       factors for multiplicative schedules (ChainedScheduler)

`scheduled(optimizer, schedule)` returns an `Optimizer` whose lr follows the
schedule; it counts steps in its own state.
"""
from __future__ import annotations

import bisect
import math
from typing import Any, NamedTuple, Sequence

import numpy as np

from ._checks import _is_tree, check_range, renamed_attribute
from .optim import Optimizer, keep_dtype, select

__all__ = ["Schedule", "StepDecay", "ExponentialDecay", "CosineWarmRestarts", "LinearWarmup",
           "Sequential", "Chain", "chain", "scheduled", "Scheduled", "ScheduledState"]


def _is_int(t) -> bool:
    return isinstance(t, (int, np.integer))


def _python_int(t) -> bool:
    """A step given as a Python int takes the Python-number path.  A numpy integer
    (what arithmetic on an int-array counter returns) takes the array path, as
    it does under `autodiff.jit`, so that an eager step computes what the
    replayed one does, bit for bit."""
    return isinstance(t, int)


def _check_int(name: str, value, lo: int) -> int:
    if not _is_int(value) or isinstance(value, bool) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


class Schedule:
    """A learning-rate schedule: ``schedule(t, base_lr, hparams=None) -> lr_t``.

    Subclasses set ``defaults`` / ``constraints`` (their continuous
    parameters) and implement ``_lr(t, base_lr, h)`` for one base value.
    """

    defaults: dict
    constraints: dict

    def __call__(self, t, base_lr, hparams: dict | None = None):
        h = self.resolve(hparams)
        if _is_tree(base_lr):  # a per-parameter learning rate
            from autodiff.tree import tree_map
            return tree_map(lambda b: self._lr(t, b, h), base_lr)
        return self._lr(t, base_lr, h)

    def resolve(self, hparams: dict | None = None) -> dict:
        if not hparams:
            return dict(self.defaults)
        unknown = [k for k in hparams if k not in self.defaults]
        if unknown:
            raise ValueError(f"{type(self).__name__} has no parameter {unknown[0]!r}; "
                             f"its parameters are {list(self.defaults)}")
        return {**self.defaults, **hparams}

    def _lr(self, t, base_lr, h):  # pragma: no cover - abstract
        raise NotImplementedError

    def _repr_args(self) -> list:
        return [f"{k}={v!r}" for k, v in self.defaults.items()]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self._repr_args())})"


class StepDecay(Schedule):
    """``base_lr * gamma ** floor(t / step_size)`` (torch's StepLR; staircase)."""

    constraints = {"gamma": "positive"}

    def __init__(self, step_size: int, gamma=0.1):
        self.step_size = _check_int("step_size", step_size, 1)
        check_range("gamma", gamma, lo_open=True)
        self.defaults = {"gamma": gamma}

    def _lr(self, t, base_lr, h):
        return base_lr * keep_dtype(h["gamma"] ** (t // self.step_size), base_lr)

    def _repr_args(self):
        return [f"step_size={self.step_size}"] + super()._repr_args()


class ExponentialDecay(Schedule):
    """``base_lr * gamma ** t`` (torch's ExponentialLR)."""

    constraints = {"gamma": "positive"}

    def __init__(self, gamma):
        check_range("gamma", gamma, lo_open=True)
        self.defaults = {"gamma": gamma}

    def _lr(self, t, base_lr, h):
        return base_lr * keep_dtype(h["gamma"] ** t, base_lr)


class CosineWarmRestarts(Schedule):
    """SGDR (Loshchilov & Hutter), as torch's CosineAnnealingWarmRestarts::

        lr_t = eta_min + (base_lr - eta_min) (1 + cos(pi T_cur / T_i)) / 2

    where the i-th cycle has length T_i = T_0 T_mult^i and T_cur counts steps
    since the last restart.  The cycle is found with exact integer arithmetic
    (torch's closed form takes a floating-point log, which can land one cycle
    off exactly at a restart).  Differentiable in base_lr and eta_min.
    """

    constraints = {"eta_min": "nonnegative"}

    def __init__(self, T_0: int, T_mult: int = 1, eta_min=0.0):
        self.T_0 = _check_int("T_0", T_0, 1)
        self.T_mult = _check_int("T_mult", T_mult, 1)
        check_range("eta_min", eta_min)
        self.defaults = {"eta_min": eta_min}

    def cycle(self, t):
        """``(T_cur, T_i)``: steps since the last restart, and the current cycle length."""
        T_0, T_mult = self.T_0, self.T_mult
        if _python_int(t):
            t, T_i = int(t), T_0
            if T_mult == 1:
                return t % T_0, T_0
            while t >= T_i:
                t, T_i = t - T_i, T_i * T_mult
            return t, T_i
        if T_mult == 1:
            return t % T_0, T_0
        # arrays: the float estimate of the cycle index, then an exact integer correction
        n = np.floor(np.log1p(t * (T_mult - 1) / T_0) / math.log(T_mult)).astype(np.int64)
        n = np.maximum(n, 0)

        def start(k):  # the first step of cycle k
            return T_0 * (T_mult ** k - 1) // (T_mult - 1)

        n = np.where(start(n + 1) <= t, n + 1, n)
        n = np.where(start(n) > t, n - 1, n)
        return t - start(n), T_0 * T_mult ** n

    def _lr(self, t, base_lr, h):
        T_cur, T_i = self.cycle(t)
        if _python_int(T_cur):
            c = (1 + math.cos(math.pi * T_cur / T_i)) / 2
        else:
            c = (1 + np.cos(np.pi * T_cur / T_i)) / 2
        eta_min = h["eta_min"]
        diff = base_lr - eta_min
        return eta_min + diff * keep_dtype(c, diff)

    def _repr_args(self):
        return [f"T_0={self.T_0}", f"T_mult={self.T_mult}"] + super()._repr_args()


class LinearWarmup(Schedule):
    """``base_lr * (start_factor + (1 - start_factor) min(t, warmup_steps) / warmup_steps)``:
    torch's LinearLR(start_factor, end_factor=1.0, total_iters=warmup_steps),
    with start_factor = 0 allowed (torch requires > 0).  Differentiable in
    start_factor."""

    constraints = {"start_factor": "nonnegative"}

    def __init__(self, warmup_steps: int, start_factor=0.0):
        self.warmup_steps = _check_int("warmup_steps", warmup_steps, 0)
        check_range("start_factor", start_factor)
        self.defaults = {"start_factor": start_factor}

    def _lr(self, t, base_lr, h):
        W = self.warmup_steps
        if W == 0:
            return base_lr
        frac = min(int(t), W) / W if _python_int(t) else np.minimum(t, W) / W
        s = h["start_factor"]
        factor = s + (1 - s) * keep_dtype(frac, s)
        return base_lr * keep_dtype(factor, base_lr)

    def _repr_args(self):
        return [f"warmup_steps={self.warmup_steps}"] + super()._repr_args()


def _merge(schedules: Sequence[Schedule]) -> tuple[dict, dict, list]:
    """Merged defaults / constraints, and per child a map merged name -> child name.

    A parameter name used by one child only keeps its name; names shared by
    several children become ``"{i}.{name}"`` (i the child's position)."""
    counts: dict = {}
    for s in schedules:
        for k in s.defaults:
            counts[k] = counts.get(k, 0) + 1
    defaults, constraints, maps = {}, {}, []
    for i, s in enumerate(schedules):
        m = {}
        for k, v in s.defaults.items():
            key = k if counts[k] == 1 else f"{i}.{k}"
            defaults[key], constraints[key], m[key] = v, s.constraints[k], k
        maps.append(m)
    return defaults, constraints, maps


def _child_h(h: dict, m: dict) -> dict:
    return {child_key: h[key] for key, child_key in m.items()}


class Sequential(Schedule):
    """Schedule ``i`` from milestone ``i - 1`` on, restarted at 0 there (torch's
    SequentialLR): ``schedules[i](t - milestones[i-1], base_lr)`` for
    ``milestones[i-1] <= t < milestones[i]``.  Typical: warmup then cosine,
    ``Sequential([LinearWarmup(W), CosineWarmRestarts(T)], milestones=[W])``.
    Parameter names shared by several schedules are prefixed "i." (see `chain`).
    """

    def __init__(self, schedules: Sequence[Schedule], milestones: Sequence[int]):
        self.schedules = list(schedules)
        self.milestones = [_check_int("milestones[i]", m, 1) for m in milestones]
        if len(self.milestones) != len(self.schedules) - 1:
            raise ValueError(f"milestones needs {len(self.schedules) - 1} entries for "
                             f"{len(self.schedules)} schedules, got {len(self.milestones)}")
        if self.milestones != sorted(set(self.milestones)):
            raise ValueError(f"milestones must be strictly increasing, got {self.milestones}")
        self.defaults, self.constraints, self._maps = _merge(self.schedules)

    def _lr(self, t, base_lr, h):
        subs = [_child_h(h, m) for m in self._maps]
        if _python_int(t):
            i = bisect.bisect_right(self.milestones, int(t))
            start = self.milestones[i - 1] if i else 0
            return self.schedules[i]._lr(int(t) - start, base_lr, subs[i])
        lr = self.schedules[0]._lr(t, base_lr, subs[0])
        for m, s, sub in zip(self.milestones, self.schedules[1:], subs[1:]):
            lr = select(t >= m, lambda: s._lr(np.maximum(t - m, 0), base_lr, sub), lambda: lr)
        return lr

    def __repr__(self):
        return f"Sequential({self.schedules!r}, milestones={self.milestones!r})"


class Chain(Schedule):
    """Composition ``s_n(t, ... s_2(t, s_1(t, base_lr)))``: for multiplicative
    schedules (step, exponential, warmup, cosine with eta_min = 0) the product
    of their factors, like torch's ChainedScheduler.  Parameter names shared
    by several schedules are prefixed with the schedule's position, "0.gamma"."""

    def __init__(self, *schedules: Schedule):
        if not schedules:
            raise ValueError("chain needs at least one schedule")
        self.schedules = list(schedules)
        self.defaults, self.constraints, self._maps = _merge(self.schedules)

    def _lr(self, t, base_lr, h):
        lr = base_lr
        for s, m in zip(self.schedules, self._maps):
            lr = s._lr(t, lr, _child_h(h, m))
        return lr

    def __repr__(self):
        return f"chain({', '.join(map(repr, self.schedules))})"


def chain(*schedules: Schedule) -> Chain:
    """``chain(warmup, cosine)``: see `Chain`."""
    return Chain(*schedules)


# -- an optimizer whose lr follows a schedule ----------------------------------------

class ScheduledState(NamedTuple):
    step: Any    # updates taken so far (a Python int); ``count`` is a deprecated alias
    inner: Any   # the wrapped optimizer's state

    count = renamed_attribute("count", "step")


class Scheduled(Optimizer):
    """``inner`` with ``lr = schedule(t, lr, ...)`` at each update.

    ``t`` is the number of updates taken so far (``every="step"``) or that
    count // steps_per_epoch (``every="epoch"``), so the first update uses
    the schedule's value at 0, like a torch scheduler stepped after each
    optimizer step (or epoch).  ``defaults`` / ``constraints`` are the inner
    optimizer's plus the schedule's; ``hparams`` may override any of them and
    derivatives flow through both.  ``optimizer`` (the hyper-optimizer) is the
    inner one's.
    """

    def __init__(self, inner: Optimizer, schedule: Schedule, every: str = "step",
                 steps_per_epoch: int | None = None):
        if "lr" not in inner.defaults:
            raise ValueError(f"{inner!r} has no 'lr' to schedule")
        if every not in ("step", "epoch"):
            raise ValueError(f"every must be 'step' or 'epoch', got {every!r}")
        if every == "epoch":
            steps_per_epoch = _check_int("steps_per_epoch", steps_per_epoch, 1)
        clash = set(inner.defaults) & set(schedule.defaults)
        if clash:
            raise ValueError(f"the schedule's parameter(s) {sorted(clash)} clash with "
                             f"{type(inner).__name__}'s hyperparameters")
        self.inner, self.schedule = inner, schedule
        self.every, self.steps_per_epoch = every, steps_per_epoch
        self.name = inner.name
        self.constraints = {**inner.constraints, **schedule.constraints}
        super().__init__({**inner.defaults, **schedule.defaults}, {}, inner.optimizer)

    def init(self, params) -> ScheduledState:
        return ScheduledState(0, self.inner.init(params))

    def _t(self, step):
        return step if self.every == "step" else step // self.steps_per_epoch

    def lr_at(self, state: ScheduledState, hparams: dict | None = None):
        """The learning rate the next update will use."""
        h = self.resolve(hparams)
        return self.schedule(self._t(state.step), h["lr"],
                             {k: h[k] for k in self.schedule.defaults})

    def update(self, grads, state: ScheduledState, params, hparams: dict | None = None):
        h = self.resolve(hparams)
        inner_h = {k: h[k] for k in self.inner.defaults}
        inner_h["lr"] = self.schedule(self._t(state.step), h["lr"],
                                      {k: h[k] for k in self.schedule.defaults})
        params, inner_state = self.inner.update(grads, state.inner, params, inner_h)
        return params, ScheduledState(state.step + 1, inner_state)

    def describe(self) -> str:
        return self.inner.describe()

    def __repr__(self) -> str:
        extra = f", steps_per_epoch={self.steps_per_epoch}" if self.every == "epoch" else ""
        return f"scheduled({self.inner!r}, {self.schedule!r}, every={self.every!r}{extra})"


def scheduled(optimizer: Optimizer, schedule: Schedule, every: str = "step",
              steps_per_epoch: int | None = None) -> Scheduled:
    """``optimizer`` with its lr following ``schedule`` per step or per epoch."""
    return Scheduled(optimizer, schedule, every, steps_per_epoch)
