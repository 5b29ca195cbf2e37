"""Hyperoptimizer towers: "Gradient Descent: The Ultimate Optimizer".

Chandra, Xie, Ragan-Kelley and Meijer (NeurIPS 2022) let the hyperparameters
of an optimizer be optimized, online, by another optimizer, whose own
hyperparameters may be optimized by a third, and so on.  A stack is built with
the ``optimizer=`` argument of the optimizers of `hyperopt.optim`::

    stack = Adam(1e-3, optimizer=SGD(1e-5, optimizer=SGD(1e-4)))
    describe(stack)   # "adam / sgd / sgd": Adam, tuned by SGD, tuned by SGD

`describe` names the levels bottom first (the model's optimizer first, the
fixed top last), Chandra's "Adam / SGD" reading "Adam optimized by SGD".

Levels and spaces
-----------------
Level 0 is the model's optimizer; its parameters ``P_0`` are the model's
parameters θ.  The tuned hyperparameters of level k are ``u_k`` (a dict
``{name: value}``); they are the parameters ``P_{k+1}`` of level k + 1.  The
top level n (the height) has fixed hyperparameters.  ``u_k`` lives in the
unconstrained space of `hyperopt.transforms` (``space="unconstrained"``, the
default: log lr, logit momentum / betas, so an lr cannot become negative and a
beta cannot reach 1) or, with ``space="raw"``, is the hyperparameter itself
(then a hyper-step may leave the valid range: see ``on_invalid``).  In the
unconstrained space the hyper-optimizer's step size means something different:
SGD on log α moves α by a factor, ``u -= κ α ∂L/∂α``.

One step
--------
With model gradient ``g_t = ∇L(θ_{t-1})`` (a step of the tower is a step of
the model)::

    h_t = g_t · ∂θ_{t-1}/∂(u_0, ..., u_{n-1})        (all levels, one product)
    for k = n, ..., 1:                                top down
        u_{k-1} <- update_k(h_t[u_{k-1}], state_k, u_{k-1}; hyperparameters u_k)
    θ_t = update_0(g_t, state_0, θ_{t-1}; hyperparameters u_0)

Each update is one step of the level's optimizer on primal (cut) parameters,
state and gradients; only its hyperparameters carry derivatives.  So
``∂θ_t/∂u_0`` is the derivative of the last model step with respect to the
hyperparameters it used, and ``∂θ_t/∂u_k`` (k ≥ 1) the chain through the last
update of each level in between: ``∂θ_t/∂u_{k-1} · ∂u_{k-1}/∂u_k``, one step
per level.  This is exactly the gradient that Chandra et al. obtain by reverse
mode with every level's previous value detached.  It is computed here by
forward mode: every tuned hyperparameter (K scalars over all levels) is a
`Dual` direction; ``u_k``'s Dual has a one-hot tangent in its own directions
plus the tangent its last update gave it in the directions of the levels
above.  Only θ's tangents (K × the model's size) are kept to the next step,
where ``h_t`` is their dot product with the gradient; parameters, optimizer
states and tangents are replaced at every step, so nothing grows and no
gradient tape survives a step.

Level k ≥ 1 takes its first step at model step k + 1: before that its
hypergradient is identically zero (the levels below have not yet used the
value it sets), and a step on a zero gradient would only advance an
Adam-like hyper-optimizer's bias correction.  The model takes a step every
time.

Which hyperparameters
---------------------
By default (Chandra's choice) each tuned level tunes ``lr``, ``momentum`` if
it has one and it is > 0, and ``beta1`` / ``beta2`` if it has them.
``wrt`` selects others: one tuple of names for every level, or one
entry per tuned level (bottom first; None for the default), or a dict
``{level: names}``; ``"betas"`` stands for ``("beta1", "beta2")``.
``per_parameter=True`` (or one flag per tuned level) gives one value of each
tuned hyperparameter per leaf (tensor) of the level's parameters.

Training
--------
::

    tower = Tower(Adam(1e-3, optimizer=SGD(1e-5)), params)
    for batch in batches:
        loss = tower.step(loss_fn, batch)        # loss_fn(params, batch) -> scalar
    tower.params, tower.hparams, tower.history

`tower_init` / `tower_update` are the pure functions under `Tower`.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import numpy as np

from autodiff import basis_tangents, dual, stop_gradient, value_and_grad
from autodiff.core import Box
from autodiff.dual import Dual, ForwardTrace
from autodiff.tree import tree_flatten, tree_map, tree_unflatten

from . import transforms
from ._checks import check_choice, check_range, fmt, renamed_attribute, renamed_kwargs, scalar_loss
from ._state import Stateful, check_like
from .hd import _ON_INVALID, LearningRateWarning
from .optim import Optimizer, flatten_matching

__all__ = ["Tower", "TowerSpec", "TowerState", "HyperparameterWarning", "describe", "stack_levels",
           "default_hyperparams", "tower_init", "tower_update"]

SPACES = ("raw", "unconstrained")
_MAX_HEIGHT = 1000


class HyperparameterWarning(LearningRateWarning):
    """A hyper-step (raw space) moved a hyperparameter out of its valid range."""


class TowerState(NamedTuple):
    """Everything a tower carries from one step to the next.

    params:     the model's parameters θ (plain arrays).
    hparams:    tuple of n dicts, ``u_k`` for k = 0..n-1, in the tower's space;
                each value a Python float or (per-parameter) a pytree of them.
    opt_states: tuple of n + 1 optimizer states, level 0 first (plain values).
    tangents:   ∂θ/∂(all tuned hyperparameters): one ``(K,) + leaf.shape``
                array per leaf of θ (None where θ does not depend on them),
                or None before the first step.
    hypergrad:  the last ``h`` (K,) (zeros before the second step).
    step:       steps taken (``count`` is a deprecated alias).
    """
    params: Any
    hparams: tuple
    opt_states: tuple
    tangents: Any
    hypergrad: np.ndarray
    step: int

    count = renamed_attribute("count", "step")


# -- stacks ------------------------------------------------------------------------

def stack_levels(stack: Optimizer) -> list:
    """The optimizers of a stack, level 0 (the model's) first, the fixed top last."""
    if not isinstance(stack, Optimizer):
        raise TypeError(f"expected an Optimizer of hyperopt.optim, got {type(stack).__name__}")
    levels = [stack]
    while levels[-1].optimizer is not None:
        nxt = levels[-1].optimizer
        if not isinstance(nxt, Optimizer):
            raise TypeError(f"the hyper-optimizer of {type(levels[-1]).__name__} is a "
                            f"{type(nxt).__name__}, not an Optimizer")
        if any(nxt is o for o in levels) or len(levels) > _MAX_HEIGHT:
            raise ValueError("the stack of optimizers is cyclic")
        levels.append(nxt)
    return levels


def _short(v) -> str:
    """A hyperparameter for `describe`: numbers to 6 digits, per-parameter trees spelled out."""
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_short(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_short(x) for x in v) + "]"
    x = stop_gradient(v)
    return f"{float(x):.6g}" if np.ndim(x) == 0 else fmt(v)


def _name_with_values(opt: Optimizer, values: dict | None) -> str:
    h = opt.resolve(values)
    return f"{opt.name}({', '.join(f'{k}={_short(v)}' for k, v in h.items())})"


def describe(obj, values: bool = False) -> str:
    """``"adam / sgd / sgd"``: the levels of a stack, a `Tower` or an `HD`, the
    model's optimizer first and the fixed top last ("adam / sgd" is Adam
    optimized by SGD, as in Chandra et al.).  ``values=True`` adds every
    hyperparameter: the current ones for a Tower / HD, the constructor's for
    a stack."""
    spec = getattr(obj, "spec", None)
    if isinstance(spec, TowerSpec):
        if not values:
            return " / ".join(o.name for o in spec.levels)
        cur = [spec.natural_floats(k, u) for k, u in enumerate(obj.state.hparams)]
        return " / ".join(_name_with_values(o, cur[k] if k < len(cur) else None)
                          for k, o in enumerate(spec.levels))
    levels = stack_levels(obj)
    if not values:
        return " / ".join(o.name for o in levels)
    return " / ".join(_name_with_values(o, None) for o in levels)


def default_hyperparams(opt: Optimizer) -> tuple:
    """Chandra et al.'s choice: lr; momentum if present and > 0; beta1, beta2 if present."""
    names = [k for k in ("lr",) if k in opt.defaults]
    if "momentum" in opt.defaults and all(np.all(stop_gradient(m) > 0)
                                          for m in tree_flatten(opt.defaults["momentum"])[0]):
        names.append("momentum")
    names += [k for k in ("beta1", "beta2") if k in opt.defaults]
    return tuple(names)


def _normalize_names(opt: Optimizer, names, level: int, space: str) -> tuple:
    if names is None:
        names = default_hyperparams(opt)
    if isinstance(names, str):
        names = (names,)
    out = []
    for n in names:
        if not isinstance(n, str):
            raise ValueError(f"hyperparameter names must be strings, got {n!r}")
        for m in (("beta1", "beta2") if n == "betas" else (n,)):
            if m not in opt.defaults:
                raise ValueError(f"level {level} ({type(opt).__name__}) has no hyperparameter "
                                 f"{m!r}; its hyperparameters are {list(opt.defaults)}")
            if space == "unconstrained" and m not in opt.constraints:
                raise ValueError(f"level {level} ({type(opt).__name__}): no constraint known "
                                 f"for {m!r}, so it has no unconstrained space; use space='raw'")
            if m not in out:
                out.append(m)
    if not out:
        raise ValueError(f"level {level} ({type(opt).__name__}) tunes no hyperparameter; "
                         "a level without tuned hyperparameters must be the top")
    return tuple(out)


def _per_level(value, n: int, what: str, is_single) -> list:
    """``value`` for each of n levels: one value for all, a sequence, or a dict {level: value}."""
    if isinstance(value, dict):
        bad = [k for k in value if not (isinstance(k, int) and 0 <= k < n)]
        if bad:
            raise ValueError(f"{what}: level {bad[0]!r} is not a tuned level (0..{n - 1})")
        return [value.get(k) for k in range(n)]
    if is_single(value):
        return [value] * n
    value = list(value)
    if len(value) != n:
        raise ValueError(f"{what} needs one entry per tuned level ({n}), got {len(value)}")
    return value


def _check_value(opt: Optimizer, level: int, name: str, value, space: str) -> None:
    """The optimizers' own range check (ValueError naming the argument), plus: in the
    unconstrained space a value on a closed end (0 for lr, momentum, weight decay)
    cannot move."""
    c = opt.constraints.get(name)
    label = f"{name} (level {level}, {type(opt).__name__})"
    if c in ("positive", "nonnegative"):
        check_range(label, value)
    elif c == "unit_closed_open":
        check_range(label, value, 0.0, 1.0)
    elif c == "unit":
        check_range(label, value, 0.0, 1.0, lo_open=True)
    else:
        check_range(label, value, -math.inf, math.inf)
    if space == "unconstrained":
        u = transforms.forward(c, value)
        if not all(np.all(np.isfinite(x)) for x in tree_flatten(u)[0]):
            raise ValueError(f"{label} = {fmt(value)} is on the closed end of its range, where "
                             "the unconstrained space puts it at -inf: a hypergradient step "
                             "cannot move it; start at a small positive value or use space='raw'")


# -- the tower, as pure functions ---------------------------------------------------

def _float(x) -> float:
    x = stop_gradient(x)
    if np.ndim(x) != 0:
        raise ValueError(f"a tuned hyperparameter must be a scalar per parameter leaf, got shape "
                         f"{np.shape(x)}")
    return float(x)


def _split(x, tag):
    """(primal, tangents or None) of ``x`` with respect to ``tag``."""
    if type(x) is Dual and x._trace is tag:
        return x.primal, x.tangents
    return x, None


def _weak(x, tag):
    """A scalar Dual with a Python-float primal: numpy keeps Python floats weakly typed,
    so a float32 model stays float32 after ``exp`` / ``sigmoid`` of a tuned value."""
    if type(x) is Dual and x._trace is tag and type(x.primal) is not float \
            and not isinstance(x.primal, Box) and np.ndim(x.primal) == 0:
        return Dual(float(x.primal), x.tangents, tag)
    return x


def _cast(x, like):
    """``x`` in the floating dtype of ``like``.  The optimizers keep a float32 model
    float32 with Python-float hyperparameters, but arithmetic on a Dual's primal
    returns numpy float64 scalars, which promote; the result is cast back."""
    dt = getattr(like, "dtype", None)
    if dt is not None and np.issubdtype(dt, np.floating) and getattr(x, "dtype", dt) != dt \
            and not isinstance(x, Box):
        return np.asarray(x).astype(dt)
    return x


def _cast_like(tree, like):
    leaves, td = tree_flatten(tree)
    old = tree_flatten(like)[0]
    if len(old) != len(leaves):
        return tree
    return tree_unflatten(td, [_cast(x, o) for x, o in zip(leaves, old)])


def _strip(tree, tag):
    return tree_map(lambda x: _split(x, tag)[0], tree)


class TowerSpec:
    """The fixed part of a tower: its optimizers, what each level tunes, the space.

    ``init(params)`` and ``update(grads, state)`` are pure: ``update`` returns
    a new `TowerState` and leaves the one it was given untouched.
    """

    @renamed_kwargs(hyperparams="wrt")
    def __init__(self, stack, wrt=None, space: str = "unconstrained",
                 per_parameter=False, on_invalid: str = "warn"):
        levels = stack_levels(stack) if isinstance(stack, Optimizer) else list(stack)
        if not levels or not all(isinstance(o, Optimizer) for o in levels):
            raise TypeError("a tower is built from Optimizers of hyperopt.optim")
        check_choice("space", space, SPACES)
        check_choice("on_invalid", on_invalid, _ON_INVALID)
        self.levels = levels
        self.space = space
        self.on_invalid = on_invalid
        n = self.height = len(levels) - 1

        def single_names(v):
            return v is None or isinstance(v, str) or (
                isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v) and len(v) > 0)

        names = _per_level(wrt, n, "wrt", single_names)
        self.names = tuple(_normalize_names(levels[k], names[k], k, space) for k in range(n))
        per = _per_level(per_parameter, n, "per_parameter",
                         lambda v: isinstance(v, (bool, np.bool_)))
        self.per_parameter = tuple(bool(p) for p in per)

    # -- helpers ---------------------------------------------------------------
    def natural(self, k: int, u: dict) -> dict:
        """Level k's tuned hyperparameters from their values ``u`` in the tower's space."""
        if self.space == "raw":
            return dict(u)
        return {name: transforms.inverse(self.levels[k].constraints[name], v)
                for name, v in u.items()}

    def natural_floats(self, k: int, u: dict) -> dict:
        return {name: tree_map(_float, v) for name, v in self.natural(k, u).items()}

    def _u_init(self, k: int, p_tree) -> dict:
        opt = self.levels[k]
        _, treedef = tree_flatten(p_tree)
        u = {}
        for name in self.names[k]:
            v = opt.defaults[name]
            _check_value(opt, k, name, v, self.space)
            if isinstance(v, (dict, list, tuple)):      # given per parameter already
                leaves, td = tree_flatten(v)
                if td != treedef:
                    raise ValueError(f"{name} (level {k}) has structure {td}, but the level's "
                                     f"parameters have structure {treedef}")
                v = tree_unflatten(treedef, [_float(x) for x in leaves])
            elif self.per_parameter[k]:
                v = tree_unflatten(treedef, [_float(v)] * treedef.n_leaves)
            else:
                v = _float(v)
            if self.space == "unconstrained":
                v = tree_map(float, transforms.forward(opt.constraints[name], v))
            u[name] = v
        return u

    # -- init / update -----------------------------------------------------------
    def init(self, params) -> TowerState:
        """The state before the first step."""
        params = tree_map(_as_float_array, params)
        us, p = [], params
        for k in range(self.height):
            u = self._u_init(k, p)
            us.append(u)
            p = u
        states = [self.levels[0].init(params)] + [self.levels[k + 1].init(us[k])
                                                  for k in range(self.height)]
        K = sum(len(tree_flatten(u)[0]) for u in us)
        return TowerState(params, tuple(us), tuple(states), None, np.zeros(K), 0)

    def sizes(self, state: TowerState) -> list:
        return [len(tree_flatten(u)[0]) for u in state.hparams]

    def update(self, grads, state: TowerState):
        """One step of the whole tower: ``(new_state, info)``; ``info["invalid"]``
        lists ``(level, name, value)`` for tuned values a step moved out of range
        (warnings and errors are `report_invalid`'s job, so this stays pure)."""
        params = state.params
        p_leaves, g_leaves, treedef = flatten_matching(params, grads)
        n = self.height
        sizes = self.sizes(state)
        K = sum(sizes)
        offsets = [0]
        for s in sizes:
            offsets.append(offsets[-1] + s)

        # the hypergradient of every tuned hyperparameter: g_t · ∂θ_{t-1}/∂u
        h = np.zeros(K)
        if state.tangents is not None and K:
            for T, g in zip(state.tangents, g_leaves):
                if T is not None:
                    h = h + np.asarray(T.reshape(K, -1) @ np.ravel(stop_gradient(g)),
                                       dtype=np.float64)
        tag = ForwardTrace()
        new_us = list(state.hparams)
        new_states = list(state.opt_states)
        invalid = []
        hp = None  # the Dual hyperparameters handed to the level below
        for k in range(n, -1, -1):
            opt = self.levels[k]
            if k == 0:
                new_p, new_s = opt.update(grads, state.opt_states[0], params, hp)
                new_states[0] = _cast_like(_strip(new_s, tag), state.opt_states[0])
                split = [_split(x, tag) for x in tree_flatten(new_p)[0]]
                new_params = tree_unflatten(treedef, [_cast(s[0], p)
                                                      for s, p in zip(split, p_leaves)])
                tangents = [None if s[1] is None else _cast(s[1], p)
                            for s, p in zip(split, p_leaves)] if K else None
                break
            # level k updates u_{k-1}
            u = state.hparams[k - 1]
            u_leaves, u_def = tree_flatten(u)
            lo, hi = offsets[k - 1], offsets[k]
            if state.step >= k:
                g_u = tree_unflatten(u_def, [float(x) for x in h[lo:hi]])
                new_u, new_s = opt.update(g_u, state.opt_states[k], u, hp)
                new_states[k] = _strip(new_s, tag)
                split = [_split(x, tag) for x in tree_flatten(new_u)[0]]
                prim = [_float(s[0]) for s in split]
                chain = [s[1] for s in split]
                new_us[k - 1] = tree_unflatten(u_def, prim)
                if self.on_invalid != "ignore":
                    invalid += self._invalid(k - 1, new_us[k - 1])
            else:
                prim, chain = u_leaves, [None] * len(u_leaves)
            # u_{k-1}'s own directions lo .. hi-1 (one-hot), plus its chain through the update
            seeds = basis_tangents(list(prim), 0, K, offset=lo)
            duals = [dual(x, t if c is None else t + np.asarray(c, dtype=np.float64).reshape(K), tag=tag)
                     for x, t, c in zip(prim, seeds, chain)]
            hp = tree_map(lambda x: _weak(x, tag), self.natural(k - 1, tree_unflatten(u_def, duals)))
        new_state = TowerState(new_params, tuple(new_us), tuple(new_states), tangents, h,
                               state.step + 1)
        return new_state, {"invalid": invalid}

    def _invalid(self, k: int, u: dict) -> list:
        bad = []
        opt = self.levels[k]
        for name, v in self.natural_floats(k, u).items():
            if not transforms.is_valid(opt.constraints.get(name), v):
                bad.append((k, name, v))
        return bad

    def report_invalid(self, invalid: list, stacklevel: int = 2) -> None:
        if not invalid or self.on_invalid == "ignore":
            return
        k, name, v = invalid[0]
        opt = self.levels[k]
        msg = (f"hyperparameter {name!r} of level {k} ({type(opt).__name__}) became {fmt(v)}, "
               f"outside its range {opt.constraints.get(name)!r}, after a hypergradient step")
        if self.space == "raw":
            msg += ("; lower the hyper-optimizer's step size, or use space='unconstrained' "
                    "(where it cannot leave its range)")
        else:
            msg += "; the hypergradient was not finite: lower the hyper-optimizer's step size"
        if self.on_invalid == "raise":
            raise ValueError(msg)
        warnings.warn(msg, HyperparameterWarning, stacklevel=stacklevel + 1)

    def hypergrads(self, state: TowerState) -> list:
        """The last hypergradient of each tuned level, ``{name: ∂L/∂u_k[name]}`` (tower space)."""
        out, lo = [], 0
        for u in state.hparams:
            leaves, td = tree_flatten(u)
            out.append(tree_unflatten(td, [float(x) for x in state.hypergrad[lo:lo + len(leaves)]]))
            lo += len(leaves)
        return out


def _as_float_array(x):
    if isinstance(x, float):
        return np.asarray(x)
    a = x if isinstance(x, np.ndarray) else np.asarray(x)
    return a if np.issubdtype(a.dtype, np.inexact) else a.astype(np.float64)


def tower_init(stack, params, **options) -> tuple:
    """``(spec, state)`` for a stack; options as for `Tower`."""
    spec = TowerSpec(stack, **options)
    return spec, spec.init(params)


def _check_finite(grads) -> None:
    """A NaN or inf gradient stops the step with a clear error, not a NaN hyperparameter."""
    bad = [i for i, g in enumerate(tree_flatten(grads)[0]) if not np.all(np.isfinite(g))]
    if bad:
        raise FloatingPointError(f"the gradient has NaN or inf entries (leaves {bad}); "
                                 "the hyperparameters and parameters were not updated")


def tower_update(spec: TowerSpec, grads, state: TowerState) -> TowerState:
    """One step of the tower (pure); raw-space range violations follow ``spec.on_invalid``."""
    _check_finite(grads)
    new_state, info = spec.update(grads, state)
    spec.report_invalid(info["invalid"])
    return new_state


# -- the stateful shell ---------------------------------------------------------------

class _Stateful(Stateful):
    """Shared by `Tower` and `hd_auto.HD`: state, params, hparams, state_dict."""

    spec: TowerSpec
    state: TowerState

    def _commit(self, grads, stacklevel: int):
        _check_finite(grads)
        new_state, info = self.spec.update(grads, self.state)
        self.spec.report_invalid(info["invalid"], stacklevel + 1)  # may raise: nothing changed
        self.state = new_state
        if self._history is not None:
            for k, u in enumerate(new_state.hparams):
                for name, v in self.spec.natural_floats(k, u).items():
                    self._history[k][name].append(v)
        return new_state.params

    @property
    def params(self):
        """The current model parameters."""
        return self.state.params

    count = renamed_attribute("count", "state.step")

    # state_dict / load_state_dict (`_state.Stateful`)
    def _state(self) -> dict:
        s = self.state
        return {"describe": describe(self), "space": self.spec.space, "names": self.spec.names,
                "params": s.params, "hparams": s.hparams, "opt_states": s.opt_states,
                "tangents": s.tangents, "hypergrad": s.hypergrad, "step": int(s.step)}

    def _load(self, d: dict) -> None:
        """``d`` must be the state of a tower with the same levels, names, space and
        parameter structure."""
        if d.get("describe") != describe(self) or tuple(d.get("names", ())) != self.spec.names \
                or d.get("space") != self.spec.space:
            raise ValueError(f"the state dict is for {d.get('describe')!r} tuning "
                             f"{d.get('names')} in the {d.get('space')!r} space; this is "
                             f"{describe(self)!r} tuning {self.spec.names} in the "
                             f"{self.spec.space!r} space")
        check_like(d["params"], self.state.params, "parameters")
        check_like(d["hparams"], self.state.hparams, "hyperparameters")
        self.state = TowerState(d["params"], d["hparams"], tuple(d["opt_states"]), d["tangents"],
                                d["hypergrad"], int(d["step"] if "step" in d else d["count"]))


def _scalar_loss_fn(loss_fn):
    """``loss_fn`` with its value reduced to shape () when it has one element; a
    ValueError naming ``loss_fn`` and the shape otherwise (rather than grad's
    TypeError from deep inside the step)."""
    name = getattr(loss_fn, "__qualname__", type(loss_fn).__name__)

    def scalar(*args, **kwargs):
        return scalar_loss(loss_fn(*args, **kwargs), f"Tower.step: loss_fn ({name})")
    return scalar


class Tower(_Stateful):
    """Train a model with a hyperoptimizer tower.

    ``Tower(stack, params, wrt=None, space="unconstrained",
    per_parameter=False, history=True, on_invalid="warn")``

    stack:         an optimizer of `hyperopt.optim`, its hyper-optimizer given
                   by ``optimizer=`` (any height; height 0 is the plain
                   optimizer, a useful baseline).  The top has fixed
                   hyperparameters.
    params:        the model's parameters, a pytree of float arrays.
    wrt:           which hyperparameters each tuned level tunes (module
                   docstring); default lr, momentum (if > 0), beta1, beta2.
                   (``hyperparams=``, its old name, still works and warns.)
    space:         "unconstrained" (default): tuned values live in the
                   unconstrained space of `hyperopt.transforms` and never leave
                   their range; "raw": they are the values themselves (a
                   height-1 SGD tower then is exactly `hd.SGDHD`).
    per_parameter: one value per parameter leaf (bool, or one per level).
    history:       record each step's loss and tuned hyperparameters.
    on_invalid:    a hyper-step that leaves a hyperparameter's range (raw
                   space) or makes it non-finite (either space) "warn"s
                   (`HyperparameterWarning`, the default), "raise"s
                   ValueError (the tower is left as before the step) or is
                   "ignore"d.

    ``step(loss_fn, *args)`` computes ``loss_fn(params, *args)`` and its
    gradient (reverse mode), takes one step of every level and returns the
    loss (at the parameters before the step).  ``update(grads)`` does the
    same from gradients computed elsewhere and returns the new parameters.
    """

    @renamed_kwargs(hyperparams="wrt")
    def __init__(self, stack: Optimizer, params, wrt=None, space: str = "unconstrained",
                 per_parameter=False, history: bool = True, on_invalid: str = "warn"):
        self.spec = TowerSpec(stack, wrt, space, per_parameter, on_invalid)
        self.state = self.spec.init(params)
        self._history = ([{name: [] for name in names} for names in self.spec.names]
                         if history else None)
        self.losses = [] if history else None

    @property
    def stack(self) -> Optimizer:
        return self.spec.levels[0]

    @property
    def height(self) -> int:
        return self.spec.height

    def step(self, loss_fn, *args, **kwargs) -> float:
        """One training step on ``loss_fn(params, *args, **kwargs)``; returns the loss.

        ``loss_fn`` must return one number: shape (), or (1,) / (1, 1) (taken
        as that number); any other shape raises ValueError."""
        loss, g = value_and_grad(_scalar_loss_fn(loss_fn))(self.state.params, *args, **kwargs)
        loss = float(np.asarray(stop_gradient(loss)).reshape(()))
        self._commit(g, stacklevel=2)
        if self.losses is not None:
            self.losses.append(loss)
        return loss

    def update(self, grads):
        """One step with given model gradients; returns the new parameters."""
        return self._commit(grads, stacklevel=2)

    @property
    def hparams(self) -> list:
        """The current hyperparameters of every level, level 0 first (the top's
        are fixed): ``[{name: value}, ...]`` in their natural (not unconstrained)
        form, tuned values as Python floats (pytrees of them per parameter)."""
        out = []
        for k, opt in enumerate(self.spec.levels):
            cur = self.spec.natural_floats(k, self.state.hparams[k]) if k < self.height else {}
            out.append({**opt.defaults, **cur})
        return out

    @property
    def hypergrads(self) -> list:
        """The last hypergradient of each tuned level, ``{name: ∂L/∂u}`` in the tower's space."""
        return self.spec.hypergrads(self.state)

    @property
    def history(self) -> list:
        """Per tuned level, ``{name: [value after step 1, after step 2, ...]}``
        (natural form); None when built with ``history=False``."""
        return self._history

    def __repr__(self) -> str:
        return (f"Tower({describe(self)!r}, height={self.height}, space={self.spec.space!r}, "
                f"tuning={list(self.spec.names)}, steps={self.state.step})")
