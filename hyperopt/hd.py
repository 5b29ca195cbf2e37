"""Online hypergradient descent: SGD-HD, SGDN-HD and Adam-HD.

Baydin et al., "Online Learning Rate Adaptation with Hypergradient Descent"
(ICLR 2018).  The learning rate α is adapted during training, with no extra
gradient evaluations, by gradient descent on α itself.  An optimizer step is
``θ_t = θ_{t-1} + u_t`` with an update ``u_t = -α_t d_t`` whose *direction*
``d_t`` does not depend on α_t.  Because ``θ_{t-1} = θ_{t-2} - α d_{t-1}``, the
derivative of the current loss with respect to the learning rate of the
previous step is available in closed form::

    g_t = ∇f(θ_{t-1})
    h_t = ∂f(θ_{t-1})/∂α = g_t · ∇_α u_{t-1} = -g_t · d_{t-1}     (hypergradient)
    α_t = α_{t-1} - β h_t                                          (β = hypergrad_lr)
    θ_t = θ_{t-1} - α_t d_t

with ``d_0 = 0`` (the first step leaves α unchanged).  The directions:

=========  ===========================================  =====================
optimizer  d_t                                          h_t
=========  ===========================================  =====================
SGD        g_t                                          -g_t · g_{t-1}
momentum   v_t = μ v_{t-1} + (1 - dampening) g_t        -g_t · v_{t-1}
Nesterov   g_t + μ v_t                                  -g_t · (g + μv)_{t-1}
Adam       m̂_t / (√v̂_t + ε) (bias-corrected moments)    -g_t · d_{t-1}
=========  ===========================================  =====================

The momentum buffer follows torch.optim.SGD: on the first step ``v_1 = g_1``
(no dampening).  ``g_t`` includes the L2 term ``weight_decay · θ_{t-1}`` (the
coupled, torch-``SGD``/``Adam`` style), so α is tuned for the regularized
objective that the step actually descends.

Differences from the reference implementations of the paper
-----------------------------------------------------------
* **One learning rate per parameter group.**  ``h_t`` is the dot product over
  *all* tensors of the group (the hypergradient of the group's α, which is one
  scalar); α is updated once per step and group, not once per tensor.
* **Several parameter groups**, each with its own α and hyperparameters, as in
  torch.optim.
* **A multiplicative, normalized variant**, ``hypergrad_mode="multiplicative"``
  (a multiplicative rule driven by the normalized hypergradient, an
  alternative to the paper's main, additive algorithm)::

      α_t = α_{t-1} (1 - β h_t / (‖g_t‖ ‖∇_α u_{t-1}‖ + hypergrad_eps))
          = α_{t-1} (1 + β cos(g_t, d_{t-1}))            (hypergrad_eps → 0)

  The normalized hypergradient is a cosine, in [-1, 1] whatever the scale of
  the gradients, so β is a dimensionless relative rate and, with ``β < 1``
  (enforced), α stays positive: each step multiplies it by a factor in
  ``[1 - β, 1 + β]``.  The normalizer is ‖∇_α u_{t-1}‖ = ‖d_{t-1}‖ (not ‖u_{t-1}‖
  = α‖d_{t-1}‖, which would make the ratio blow up as α → 0).  An α that is
  exactly 0 stays 0 in this mode, so ``lr=0`` needs the additive rule (or a
  positive lower bound in ``lr_bounds``).
* ``hypergrad_clip=c`` clips the hypergradient used by the rule to [-c, c]:
  ``h_t`` in the additive mode, the normalized ``h_t / (‖g‖‖d‖ + eps)`` in the
  multiplicative one.  So one step changes α by at most ``β c`` (additive) or
  by a factor within ``[1 - β c, 1 + β c]`` (multiplicative).
* ``lr_bounds=(lo, hi)`` clamps α after each update (``0 ≤ lo ≤ hi``).
* ``eps=0`` is accepted (as in torch), but a step where a coordinate's
  second moment is exactly 0 (its gradient has been 0 so far) would be 0/0
  in Adam-HD's direction: it raises FloatingPointError naming eps, and
  nothing changes, instead of silently making the parameters nan.
* An α that becomes negative or non-finite raises a `LearningRateWarning`
  (``on_invalid="warn"``, the default; the step still uses that α), a
  ValueError (``"raise"``; the optimizer is left as it was before the step),
  or nothing (``"ignore"``).  The check runs after clipping and bounds.

The pure functions ``sgdhd_init`` / ``sgdhd_update`` and ``adamhd_init`` /
``adamhd_update`` take and return NamedTuple states; `SGDHD`, `SGDNHD` and
`AdamHD` are torch.optim-style stateful shells over them.  Every step runs in
the dtype of the parameters (float32 stays float32); α and h are Python floats.
The directions and their buffers are `hyperopt.optim`'s, the same code as
`optim.SGD` and `optim.Adam` (`optim.sgd_direction`, `optim.adam_moments`,
`optim.adam_direction`, `optim.l2_gradient`, the step `optim.descend`), so
with ``hypergrad_lr=0`` a float64 run gives the numbers of `optim.SGD`'s or
`optim.Adam`'s; this module adds only ``h_t`` and the update of α.

Names shared with `hd_auto.HD`, `towers.Tower` and `online`: ``hypergrad_lr``
is β, ``on_invalid`` says what an invalid α does, and the step counter of
every state is ``step``.  The older spellings ``on_invalid_lr=`` (also as a
param-group key) and ``state.count`` still work, with a DeprecationWarning.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple, Optional, Sequence

import numpy as np

from autodiff.tree import tree_flatten, tree_map, tree_unflatten

from ._checks import (check_choice, check_range, outside_stacklevel, renamed, renamed_attribute,
                      renamed_kwargs)
from ._state import Stateful, check_like
from .optim import (_ZeroDenominator, adam_direction, adam_moments, descend, flatten_matching,
                    l2_gradient, sgd_direction)

__all__ = ["LearningRateWarning", "SGDHDState", "AdamHDState", "sgdhd_init", "sgdhd_update",
           "adamhd_init", "adamhd_update", "SGDHD", "SGDNHD", "AdamHD"]

Pytree = Any

_MODES = ("additive", "multiplicative")
_ON_INVALID = ("warn", "raise", "ignore")


class LearningRateWarning(UserWarning):
    """A hypergradient step made the learning rate negative or non-finite."""


# ----------------------------------------------------------------------------
# pure functions
# ----------------------------------------------------------------------------

class SGDHDState(NamedTuple):
    """State of SGD-HD for one parameter group.

    lr:              α_t, the learning rate the last step used (the initial α
                     before the first step).
    hypergrad:       h_t of the last step, raw (before normalization or
                     clipping); 0.0 before the first step.
    direction:       d_t = -∇_α u_t, a pytree like the parameters (zeros
                     before the first step).
    momentum_buffer: v_t, a pytree like the parameters, or None until a step
                     with momentum has run.
    step:            number of steps taken (``count`` is a deprecated alias).
    """
    lr: Any
    hypergrad: Any
    direction: Pytree
    momentum_buffer: Optional[Pytree]
    step: int

    count = renamed_attribute("count", "step")


class AdamHDState(NamedTuple):
    """State of Adam-HD for one parameter group.

    lr, hypergrad, direction, step: as in `SGDHDState`; here
    d_t = m̂_t / (√v̂_t + ε).
    exp_avg, exp_avg_sq: the raw (not bias-corrected) moments m_t and v_t.
    """
    lr: Any
    hypergrad: Any
    direction: Pytree
    exp_avg: Pytree
    exp_avg_sq: Pytree
    step: int

    count = renamed_attribute("count", "step")


def _scalar(x):
    """A 0-d numpy value as a Python float; anything else (a Dual) unchanged."""
    if isinstance(x, (np.generic, np.ndarray)) and np.ndim(x) == 0:
        return float(x)
    return x


def _vdot(a, b):
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return np.vdot(a, b)
    return np.sum(a * b)


def _leaves_dot(xs, ys):
    """Σ over the leaves of ⟨x, y⟩: one number for the whole group."""
    total = 0.0
    for x, y in zip(xs, ys):
        total = total + _vdot(x, y)
    return total


def _check_lr(lr, h, on_invalid: str) -> None:
    if on_invalid == "ignore" or (lr >= 0 and np.isfinite(lr)):
        return
    what = "non-finite" if not np.isfinite(lr) else "negative"
    msg = (f"the learning rate became {what} ({_scalar(lr)!r}) after a hypergradient step "
           f"(hypergradient {_scalar(h)!r}); lower hypergrad_lr, or use lr_bounds=(0, hi), "
           f"hypergrad_clip or hypergrad_mode='multiplicative'")
    if on_invalid == "raise":
        raise ValueError(msg)
    warnings.warn(msg, LearningRateWarning, stacklevel=outside_stacklevel())


def _hd_lr(lr, g_leaves, d_leaves, *, hypergrad_lr, hypergrad_mode, hypergrad_clip,
           hypergrad_eps, lr_bounds, on_invalid):
    """(α_t, h_t) from α_{t-1}, the gradient g_t and the last direction d_{t-1}."""
    h = -_leaves_dot(g_leaves, d_leaves)
    if not np.isfinite(h):  # a NaN or inf gradient: stop, rather than carry on with a NaN lr
        bad = [i for i, g in enumerate(g_leaves) if not np.all(np.isfinite(g))]
        raise FloatingPointError(
            f"hypergradient descent got a non-finite hypergradient ({_scalar(h)!r})"
            + (f": the gradient has NaN or inf entries (leaves {bad})" if bad else "")
            + "; the learning rate was not updated")
    if hypergrad_mode == "additive":
        s = h
    elif hypergrad_mode == "multiplicative":
        denom = (np.sqrt(_leaves_dot(g_leaves, g_leaves)) * np.sqrt(_leaves_dot(d_leaves, d_leaves))
                 + hypergrad_eps)
        s = h / denom if denom > 0 else 0.0 * h
    else:
        raise ValueError(f"hypergrad_mode must be one of {_MODES}, got {hypergrad_mode!r}")
    if hypergrad_clip is not None:
        s = np.clip(s, -hypergrad_clip, hypergrad_clip)
    if hypergrad_mode == "additive":
        lr = lr - hypergrad_lr * s
    else:
        lr = lr * (1.0 - hypergrad_lr * s)
    if lr_bounds is not None:
        lr = np.clip(lr, lr_bounds[0], lr_bounds[1])
    lr, h = _scalar(lr), _scalar(h)
    _check_lr(lr, h, on_invalid)
    return lr, h


def _zeros_like(tree):
    return tree_map(np.zeros_like, tree)


def sgdhd_init(params: Pytree, lr: float) -> SGDHDState:
    """The state before the first step: α = lr, d_0 = 0, no momentum buffer."""
    return SGDHDState(lr=lr, hypergrad=0.0, direction=_zeros_like(params), momentum_buffer=None,
                      step=0)


@renamed_kwargs(on_invalid_lr="on_invalid")
def sgdhd_update(params: Pytree, grads: Pytree, state: SGDHDState, *, hypergrad_lr: float = 1e-3,
                 momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False, hypergrad_mode: str = "additive",
                 hypergrad_clip: Optional[float] = None, hypergrad_eps: float = 1e-16,
                 lr_bounds: Optional[Sequence[float]] = None,
                 on_invalid: str = "warn") -> tuple[Pytree, SGDHDState]:
    """One SGD-HD step (plain, momentum or Nesterov): ``(new_params, new_state)``.

    ``h_t = -g_t · d_{t-1}`` summed over every leaf of ``params``; α is updated
    first (``α_t = α_{t-1} - β h_t``, or the multiplicative rule), then the
    parameters move by ``-α_t d_t``.  See the module docstring for the
    directions, the variants and the options.  The hypergradient learning rate
    β (``hypergrad_lr``) defaults to 1e-3, the paper's value for SGD-HD and
    SGDN-HD.  Arguments are not validated here (the classes do that).
    """
    p_leaves, g_leaves, treedef = flatten_matching(params, grads)
    if weight_decay != 0:
        g_leaves = [l2_gradient(g, p, weight_decay) for p, g in zip(p_leaves, g_leaves)]
    d_prev = tree_flatten(state.direction)[0]
    lr, h = _hd_lr(state.lr, g_leaves, d_prev, hypergrad_lr=hypergrad_lr,
                   hypergrad_mode=hypergrad_mode, hypergrad_clip=hypergrad_clip,
                   hypergrad_eps=hypergrad_eps, lr_bounds=lr_bounds, on_invalid=on_invalid)
    t = state.step + 1
    buf = state.momentum_buffer
    if momentum != 0:  # optim.SGD's direction; no buffer is kept while momentum is 0
        bufs = [None] * len(g_leaves) if buf is None else tree_flatten(buf)[0]
        d, v = zip(*[sgd_direction(g, b, momentum, dampening, nesterov, t)
                     for g, b in zip(g_leaves, bufs)]) if g_leaves else ((), ())
        d, buf = list(d), tree_unflatten(treedef, list(v))
    else:
        d = g_leaves
    new_params = tree_unflatten(treedef, [descend(p, lr, di) for p, di in zip(p_leaves, d)])
    return new_params, SGDHDState(lr=lr, hypergrad=h, direction=tree_unflatten(treedef, d),
                                  momentum_buffer=buf, step=t)


def adamhd_init(params: Pytree, lr: float) -> AdamHDState:
    """The state before the first step: α = lr, d_0 = m_0 = v_0 = 0."""
    return AdamHDState(lr=lr, hypergrad=0.0, direction=_zeros_like(params),
                       exp_avg=_zeros_like(params), exp_avg_sq=_zeros_like(params), step=0)


@renamed_kwargs(on_invalid_lr="on_invalid")
def adamhd_update(params: Pytree, grads: Pytree, state: AdamHDState, *,
                  hypergrad_lr: float = 1e-8, betas: Sequence[float] = (0.9, 0.999),
                  eps: float = 1e-8, weight_decay: float = 0.0, hypergrad_mode: str = "additive",
                  hypergrad_clip: Optional[float] = None, hypergrad_eps: float = 1e-16,
                  lr_bounds: Optional[Sequence[float]] = None,
                  on_invalid: str = "warn") -> tuple[Pytree, AdamHDState]:
    """One Adam-HD step: ``(new_params, new_state)``.

    ``h_t = -g_t · m̂_{t-1}/(√v̂_{t-1} + ε)`` over every leaf, ``α_t = α_{t-1} - β h_t``
    (or the multiplicative rule), then the Adam step with α_t and bias-corrected
    moments.  ``hypergrad_lr`` defaults to 1e-8: Adam's direction is O(1) per
    coordinate whatever the gradient's scale, so h is much larger than for SGD,
    and the paper recommends β ≈ 1e-7 to 1e-8 for Adam-HD.
    """
    p_leaves, g_leaves, treedef = flatten_matching(params, grads)
    if weight_decay != 0:
        g_leaves = [l2_gradient(g, p, weight_decay) for p, g in zip(p_leaves, g_leaves)]
    lr, h = _hd_lr(state.lr, g_leaves, tree_flatten(state.direction)[0], hypergrad_lr=hypergrad_lr,
                   hypergrad_mode=hypergrad_mode, hypergrad_clip=hypergrad_clip,
                   hypergrad_eps=hypergrad_eps, lr_bounds=lr_bounds, on_invalid=on_invalid)
    b1, b2 = betas
    t = state.step + 1
    m, v, d, steps = [], [], [], []
    for i, (p, g, mi, vi) in enumerate(zip(p_leaves, g_leaves, tree_flatten(state.exp_avg)[0],
                                           tree_flatten(state.exp_avg_sq)[0])):
        mi, vi = adam_moments(g, mi, vi, b1, b2)
        try:
            di, bc1 = adam_direction(mi, vi, b1, b2, eps, t)
        except _ZeroDenominator:  # 0/0 would make the parameters nan, blamed on the next step
            raise FloatingPointError(
                f"AdamHD: eps={eps!r} with a zero second-moment estimate (a gradient entry that "
                f"has been exactly 0 so far) gives 0/0 in the update of parameter leaf {i} at "
                f"step {t}; use eps > 0 (the default is 1e-08). Nothing was updated") from None
        m.append(mi), v.append(vi)
        steps.append(descend(p, lr / bc1, di))   # optim.Adam's step, α_t / (1 - β1^t) times d'
        d.append(di / bc1)                       # -∂u_t/∂α = m̂_t / (√v̂_t + ε)
    new_params = tree_unflatten(treedef, steps)
    return new_params, AdamHDState(lr=lr, hypergrad=h, direction=tree_unflatten(treedef, d),
                                   exp_avg=tree_unflatten(treedef, m),
                                   exp_avg_sq=tree_unflatten(treedef, v), step=t)


# ----------------------------------------------------------------------------
# argument checks
# ----------------------------------------------------------------------------

def _check_group(group: dict, adam: bool) -> None:
    """Validate (and normalize, in place) the hyperparameters of a param group."""
    mode = check_choice("hypergrad_mode", group["hypergrad_mode"], _MODES)
    check_choice("on_invalid", group["on_invalid"], _ON_INVALID)
    group["lr"] = check_range("lr", group["lr"], scalar=True)
    mult = mode == "multiplicative"
    group["hypergrad_lr"] = check_range("hypergrad_lr", group["hypergrad_lr"],
                                        hi=1.0 if mult else math.inf, scalar=True)
    group["weight_decay"] = check_range("weight_decay", group["weight_decay"], scalar=True)
    group["hypergrad_eps"] = check_range("hypergrad_eps", group["hypergrad_eps"], scalar=True)
    if group["hypergrad_clip"] is not None:
        group["hypergrad_clip"] = check_range("hypergrad_clip", group["hypergrad_clip"],
                                              lo_open=True, scalar=True)
    bounds = group["lr_bounds"]
    if bounds is not None:
        if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
            raise ValueError(f"lr_bounds must be a pair (lo, hi), got {bounds!r}")
        lo = check_range("lr_bounds", bounds[0], scalar=True)
        hi = check_range("lr_bounds", bounds[1], lo=lo, hi_open=False, finite=False, scalar=True)
        group["lr_bounds"] = (lo, hi)
    if adam:
        group["eps"] = check_range("eps", group["eps"], scalar=True)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        group["betas"] = tuple(check_range("betas", b, hi=1.0, scalar=True) for b in betas)
    else:
        group["momentum"] = check_range("momentum", group["momentum"], scalar=True)
        group["dampening"] = check_range("dampening", group["dampening"], hi=1.0, hi_open=False,
                                         scalar=True)
        group["nesterov"] = bool(group["nesterov"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires momentum > 0 and dampening = 0 "
                             f"(got momentum={group['momentum']}, dampening={group['dampening']})")
    stuck_at_zero = bounds is None or group["lr_bounds"][0] == 0
    if mult and group["lr"] == 0 and stuck_at_zero:
        raise ValueError("lr must be > 0 with hypergrad_mode='multiplicative': 0.0 would stay 0 "
                         "forever (use the additive mode, a positive lr, or lr_bounds with lo > 0)")


def _as_float_array(x):
    a = np.asarray(x)
    return a if np.issubdtype(a.dtype, np.inexact) else a.astype(np.float64)


_GROUP_KEYS = {"on_invalid_lr": "on_invalid"}   # old name -> name, in a param group
_STATE_KEYS = {"count": "step"}                 # ... in a saved state


def _renamed_keys(d: dict, renames: dict, where: Optional[str] = None) -> dict:
    """``d`` with its keys' old names (``renames``) replaced by the new ones; with
    ``where`` (a param group a user gave), `renamed`'s warning."""
    if not any(k in d for k in renames):
        return d
    out = {}
    for k, v in d.items():
        if k in renames and renames[k] not in d:
            if where is not None:
                renamed(f"param group key {k!r}", repr(renames[k]), where)
            k = renames[k]
        out[k] = v
    return out


def _is_group_list(params) -> bool:
    return (isinstance(params, (list, tuple)) and len(params) > 0
            and all(isinstance(g, dict) and "params" in g for g in params))


# ----------------------------------------------------------------------------
# torch.optim-style shells
# ----------------------------------------------------------------------------

class _HDOptimizer(Stateful):
    """Shared shell: param groups, ``step``, ``state_dict``."""

    _adam = False

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self.param_groups: list[dict] = []
        self.state: list = []           # one State NamedTuple per group
        self._grouped = _is_group_list(params)
        if isinstance(params, (list, tuple)) and len(params) == 0:
            raise ValueError("params is empty")
        for group in (params if self._grouped else [{"params": params}]):
            self._add_group(group)

    # the pure functions of the subclass
    @staticmethod
    def _init(params, lr):
        raise NotImplementedError

    @staticmethod
    def _update(params, grads, state, **hp):
        raise NotImplementedError

    def _add_group(self, group: dict) -> None:
        if not isinstance(group, dict) or "params" not in group:
            raise ValueError("a param group is a dict with a 'params' entry")
        group = _renamed_keys(group, _GROUP_KEYS, type(self).__name__)
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise ValueError(f"unknown hyperparameters in param group: {sorted(unknown)}")
        full = {"params": tree_map(_as_float_array, group["params"])}
        full.update({k: group.get(k, v) for k, v in self.defaults.items()})
        _check_group(full, self._adam)
        self.param_groups.append(full)
        self.state.append(self._init(full["params"], full["lr"]))

    def add_param_group(self, group: dict) -> None:
        """Add a group (only for an optimizer built from a list of groups)."""
        if not self._grouped:
            raise ValueError("add_param_group needs an optimizer constructed from a list of "
                             "param groups (step and params then work with lists)")
        self._add_group(group)

    @staticmethod
    def _hyper(group: dict) -> dict:
        return {k: v for k, v in group.items() if k not in ("params", "lr")}

    def step(self, grads):
        """Update α, then the parameters; returns the new parameters.

        ``grads`` has the structure of the parameters (one tree), or, for an
        optimizer built from param groups, is a list with one tree per group.
        If a step raises (``on_invalid="raise"``), nothing is changed.
        """
        per_group = grads if self._grouped else [grads]
        n = len(self.param_groups)
        if self._grouped and (not isinstance(grads, (list, tuple)) or len(grads) != n):
            raise ValueError(f"expected a list of {n} gradient trees, one per param group")
        results = []
        for group, state, g in zip(self.param_groups, self.state, per_group):
            state = state._replace(lr=group["lr"])
            results.append(self._update(group["params"], g, state, **self._hyper(group)))
        for i, (params, state) in enumerate(results):
            self.param_groups[i]["params"] = params
            self.param_groups[i]["lr"] = state.lr
            self.state[i] = state
        return self.params

    @property
    def params(self):
        """The current parameters: one tree, or a list of trees for param groups."""
        trees = [g["params"] for g in self.param_groups]
        return trees if self._grouped else trees[0]

    @property
    def lr(self):
        """The current learning rate α of the first group."""
        return self.param_groups[0]["lr"]

    @property
    def hypergrad(self):
        """The last raw hypergradient h_t of the first group (0.0 before a step)."""
        return self.state[0].hypergrad

    # state_dict / load_state_dict (`_state.Stateful`).  Unlike torch, the
    # optimizer owns the parameters here (``step`` returns them), so they are
    # part of the state.
    def _state(self) -> dict:
        return {"param_groups": [dict(g) for g in self.param_groups],
                "state": [s._asdict() for s in self.state]}

    def _load(self, d: dict) -> None:
        """The parameters in ``d`` must have the structure and shapes of this
        optimizer's groups."""
        groups, states = d["param_groups"], d["state"]
        if len(groups) != len(self.param_groups) or len(states) != len(groups):
            raise ValueError(f"the state dict has {len(groups)} param groups, this optimizer "
                             f"has {len(self.param_groups)}")
        state_cls = type(self.state[0])
        new_groups, new_states = [], []
        for mine, g, s in zip(self.param_groups, groups, states):
            g, s = _renamed_keys(g, _GROUP_KEYS), _renamed_keys(s, _STATE_KEYS)  # older names
            check_like(g["params"], mine["params"], "parameters")
            unknown = set(g) - set(self.defaults) - {"params"}
            if unknown:
                raise ValueError(f"unknown hyperparameters in the state dict: {sorted(unknown)}")
            _check_group(g, self._adam)
            if set(s) != set(state_cls._fields):
                raise ValueError(f"the state dict's state is not a {state_cls.__name__}")
            new_groups.append(g)
            new_states.append(state_cls(**s))
        self.param_groups, self.state = new_groups, new_states

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"  group {i}: " + ", ".join(f"{k}={v!r}" for k, v in g.items()
                                                      if k != "params"))
        return "\n".join(lines + [")"])


class SGDHD(_HDOptimizer):
    """SGD with online hypergradient descent on the learning rate (SGD-HD).

    ``SGDHD(params, lr=1e-3, hypergrad_lr=1e-3, momentum=0, dampening=0,
    weight_decay=0, nesterov=False, hypergrad_mode="additive",
    hypergrad_clip=None, hypergrad_eps=1e-16, lr_bounds=None,
    on_invalid="warn")``.

    ``params`` is a pytree of arrays, or a list of param-group dicts
    (``[{"params": tree, "lr": 0.1}, {"params": tree2}]``) whose missing
    entries take the constructor's values.  ``step(grads)`` returns the new
    parameters; ``opt.lr`` / ``opt.param_groups[i]["lr"]`` are the current
    learning rates.  ``lr=0`` is a valid start: α grows while successive
    gradients agree.

    hypergrad_lr (β) defaults to 1e-3, the value the paper recommends for
    SGD-HD and SGDN-HD.  In
    the multiplicative mode β is a dimensionless relative rate and must be < 1.
    The equations, the momentum convention and the options are in the module
    docstring.
    """

    @staticmethod
    def _init(params, lr):
        return sgdhd_init(params, lr)

    @staticmethod
    def _update(params, grads, state, **hp):
        return sgdhd_update(params, grads, state, **hp)

    @renamed_kwargs(on_invalid_lr="on_invalid")
    def __init__(self, params, lr: float = 1e-3, hypergrad_lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False, *,
                 hypergrad_mode: str = "additive", hypergrad_clip: Optional[float] = None,
                 hypergrad_eps: float = 1e-16, lr_bounds: Optional[Sequence[float]] = None,
                 on_invalid: str = "warn"):
        super().__init__(params, dict(
            lr=lr, hypergrad_lr=hypergrad_lr, momentum=momentum, dampening=dampening,
            weight_decay=weight_decay, nesterov=nesterov, hypergrad_mode=hypergrad_mode,
            hypergrad_clip=hypergrad_clip, hypergrad_eps=hypergrad_eps, lr_bounds=lr_bounds,
            on_invalid=on_invalid))


class SGDNHD(SGDHD):
    """SGD with Nesterov momentum and hypergradient descent (SGDN-HD).

    As `SGDHD` with ``nesterov=True``: ``v_t = μ v_{t-1} + g_t``, direction
    ``d_t = g_t + μ v_t``, ``h_t = -g_t · d_{t-1}``.  ``momentum`` defaults to
    0.9 (the paper's setting; Nesterov needs μ > 0 and no dampening), and
    ``hypergrad_lr`` to 1e-3 as recommended by the paper for SGDN-HD.
    """

    @renamed_kwargs(on_invalid_lr="on_invalid")
    def __init__(self, params, lr: float = 1e-3, hypergrad_lr: float = 1e-3, momentum: float = 0.9,
                 dampening: float = 0.0, weight_decay: float = 0.0, **kwargs):
        super().__init__(params, lr=lr, hypergrad_lr=hypergrad_lr, momentum=momentum,
                         dampening=dampening, weight_decay=weight_decay, nesterov=True, **kwargs)


class AdamHD(_HDOptimizer):
    """Adam with online hypergradient descent on the learning rate (Adam-HD).

    ``AdamHD(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
    hypergrad_lr=1e-8, hypergrad_mode="additive", hypergrad_clip=None,
    hypergrad_eps=1e-16, lr_bounds=None, on_invalid="warn")``.

    ``h_t = -g_t · m̂_{t-1}/(√v̂_{t-1} + ε)``.  hypergrad_lr (β) defaults to
    1e-8: the paper suggests about 1e-7..1e-8 for Adam-HD, because Adam's
    direction has O(1) entries, so h scales with ‖g‖₁ rather than ‖g‖².  In
    the multiplicative mode (β a relative rate, < 1) a value like 1e-3..1e-2
    is the analogue; 1e-8 would barely move α.  ``weight_decay`` is the
    coupled L2 term of torch's Adam.  API as `SGDHD`.
    """

    _adam = True

    @staticmethod
    def _init(params, lr):
        return adamhd_init(params, lr)

    @staticmethod
    def _update(params, grads, state, **hp):
        return adamhd_update(params, grads, state, **hp)

    @renamed_kwargs(on_invalid_lr="on_invalid")
    def __init__(self, params, lr: float = 1e-3, betas: Sequence[float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, hypergrad_lr: float = 1e-8, *,
                 hypergrad_mode: str = "additive", hypergrad_clip: Optional[float] = None,
                 hypergrad_eps: float = 1e-16, lr_bounds: Optional[Sequence[float]] = None,
                 on_invalid: str = "warn"):
        super().__init__(params, dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, hypergrad_lr=hypergrad_lr,
            hypergrad_mode=hypergrad_mode, hypergrad_clip=hypergrad_clip,
            hypergrad_eps=hypergrad_eps, lr_bounds=lr_bounds, on_invalid=on_invalid))
