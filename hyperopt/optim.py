"""Differentiable optimizers: pure updates whose hyperparameters are inputs.

Each optimizer is an optax-style ``init`` / ``update`` pair behind a class with
torch.optim's name and constructor::

    opt = Adam(lr=1e-3, weight_decay=1e-4)
    state = opt.init(params)                          # a NamedTuple
    params, state = opt.update(grads, state, params)  # uses opt.defaults
    params, state = opt.update(grads, state, params, {"lr": lr_dual})

``hparams`` overrides ``opt.defaults`` key by key.  A value may be a Python
float, a 0-d array, a `Dual`, a tape value, or a pytree with the structure of
``params`` (one value, or one array, per parameter leaf).  Updates use plain
numpy arithmetic on them and nothing else (no ``float()``, no Python branch on
their values), so a tangent attached to a hyperparameter, or a tape recording
it, flows through any number of steps: ``jvp`` of a training loop gives
d(final params)/d(hyperparameter) and ``grad`` of it gives the same number by
reverse mode.  Where an optimizer must choose between two formulas on a value
(RAdam's rectification test, SGD's "momentum == 0"), the choice is made on the
primal value and the chosen formula's derivative is kept (`select`).  The step
counter in the state is a Python int (an int array also works) and carries no
tangent.

An update keeps each parameter leaf's dtype (float32 in, float32 out, as
with Python-float hyperparameters, which numpy keeps weakly typed): a
hyperparameter that is a wider numpy value (a 0-d float64 array, a Dual of
one) is cast to the leaf's dtype, and so is each scalar coefficient computed
from the step counter (bias corrections, dampening) where it meets the
leaf's arrays (`keep_dtype`).  Such coefficients are computed in float64, as
Python would, and rounded once.  With an int-array step counter (what
`hyperopt.hypergrad.Setup` passes, so that `autodiff.jit` records one program
for every step) they are 0-d float64 arrays, which numpy would otherwise let
promote a float32 update to float64.  In a float64 run nothing is cast.

Every constructor validates its arguments (negative, out-of-range, NaN or inf
values raise ValueError naming the argument) and takes ``optimizer=None``: the
hyper-optimizer of a hyperoptimizer tower, stored and not used here.

``constraints`` says which range each continuous hyperparameter lives in, for
the transforms of `hyperopt.transforms`:

* ``"positive"``        (0, inf): step sizes, eps (the constructors accept 0,
                        as torch does; the transform maps 0 to -inf);
* ``"nonnegative"``     [0, inf): weight decay, lr decay, accumulator start;
* ``"unit_closed_open"`` [0, 1): momentum, dampening, betas, alpha;
* ``"unit"``            (0, 1);
* ``None``              unconstrained.

Second-moment square roots use `safe_sqrt`: the same values as ``np.sqrt``,
but a zero derivative (instead of 0/0 = nan) where the moment is exactly 0,
e.g. for a weight whose gradient is always 0.  Without it one dead weight
would turn every hypergradient into nan.  With ``eps=0`` such a weight's
update itself is 0/0: where torch returns nan parameters (and the next step
gets the blame), ``update`` raises FloatingPointError naming eps, the
optimizer, the parameter leaf and the step (`check_denominator`; values being
recorded by `autodiff.jit` cannot be looked at, so `hypergrad.Setup` checks
such runs after each step).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from autodiff import stop_gradient
from autodiff.tree import TreeDef, tree_flatten, tree_leaves, tree_unflatten

from ._checks import fmt, _is_tree, check_range

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RAdam", "RMSprop", "Adagrad",
           "SGDState", "AdamState", "RAdamState", "RMSpropState", "AdagradState",
           "select", "safe_sqrt", "to_dtype", "keep_dtype", "l2_gradient", "sgd_direction",
           "adam_moments", "adam_direction", "descend", "CONSTRAINTS"]

CONSTRAINTS = ("positive", "nonnegative", "unit", "unit_closed_open", None)


def flatten_matching(params, grads):
    """The leaves of params and grads, and params' structure; a ValueError when
    the gradient's structure or a leaf's shape does not match."""
    p_leaves, treedef = tree_flatten(params)
    g_leaves, g_def = tree_flatten(grads)
    if g_def != treedef:
        raise ValueError(f"grads have structure {g_def}, but params have structure {treedef}")
    for p, g in zip(p_leaves, g_leaves):
        if np.shape(g) != np.shape(p):
            raise ValueError(f"a gradient of shape {np.shape(g)} for a parameter of shape "
                             f"{np.shape(p)}")
    return p_leaves, g_leaves, treedef


# -- helpers -------------------------------------------------------------------

def select(cond, if_true: Callable[[], Any], if_false: Callable[[], Any]):
    """``if_true()`` where ``cond`` holds, else ``if_false()``.

    ``cond`` is computed from primal values.  A Python / numpy bool picks one
    branch in Python (only it is evaluated, and Python floats stay Python
    floats); an array (per-parameter hyperparameters, or values recorded by
    `autodiff.jit`) selects elementwise with ``np.where``, which passes the
    chosen branch's tangent and cotangent.
    """
    if isinstance(cond, (bool, np.bool_)):
        return if_true() if cond else if_false()
    return np.where(cond, if_true(), if_false())


def _dtype_of(x):
    """The dtype of ``x``'s primal value; None for a Python number (weakly typed:
    numpy gives it the dtype of the array it meets) or a non-numeric value."""
    x = stop_gradient(x)
    if type(x) in (bool, int, float):  # not isinstance: np.float64 is a float subclass
        return None
    d = getattr(x, "dtype", None)
    return d if isinstance(d, np.dtype) else None


def to_dtype(x, dtype):
    """``x`` cast to the float dtype ``dtype`` if numpy would otherwise promote a
    ``dtype`` array that meets it to a wider type; else ``x`` itself.

    This is what keeps a float32 run in float32 when a scalar reaches it as a
    strongly typed numpy value (NEP 50): a 0-d float64 array or numpy scalar
    (a hyperparameter, ``b1 ** t`` with an integer-array step counter), an
    integer array, or a `Dual` / tape value of one (cast differentiably: its
    tangents too).  Python numbers are returned as they are: numpy already
    gives them the array's dtype.  Narrower values (float32 in a float64 run)
    are left alone, and so is everything in a float64 run.
    """
    d = _dtype_of(x)
    if d is None or dtype is None or d.kind not in "biuf":  # (never drop an imaginary part)
        return x
    dtype = np.dtype(dtype)
    if dtype.kind != "f" or np.result_type(d, dtype) == dtype:
        return x
    return x.astype(dtype)


def keep_dtype(x, like):
    """``x`` in the float dtype of the array ``like`` where it would otherwise
    promote it (`to_dtype`): a scalar coefficient, cast where it meets a
    parameter-shaped array, so that the result keeps that array's dtype."""
    return to_dtype(x, _dtype_of(like))


def safe_sqrt(x):
    """``np.sqrt(x)`` for ``x >= 0``, with derivative 0 (not nan) where ``x == 0``."""
    pos = stop_gradient(x) > 0
    return np.where(pos, np.sqrt(np.where(pos, x, 1.0)), 0.0)


def _zeros(p):
    return np.zeros_like(stop_gradient(p))


class _ZeroDenominator(FloatingPointError):
    """Raised by `check_denominator`; `Optimizer.update` names the optimizer and leaf."""


def _concrete(x) -> bool:
    """A plain number or array (not a value being recorded by `autodiff.jit`)."""
    return isinstance(x, (np.ndarray, np.generic, float, int))


def check_denominator(denom, eps, where=None) -> None:
    """Raise `_ZeroDenominator` if ``denom`` (``sqrt(second moment) + eps``) has an
    entry that is exactly 0 (where ``where`` holds, if given).

    That happens only with ``eps <= 0`` (the constructors accept 0, as torch
    does) on a second moment that is 0, i.e. a gradient entry that has been
    exactly 0 so far (a dead unit, an unused input), and it would turn the
    parameter into 0/0 = nan (or x/0 = inf) silently, to be blamed on a later
    step.  Checked on primal values, and only when they are concrete: a step
    being recorded by `autodiff.jit` cannot look at its values
    (`hypergrad.Setup.train` checks such runs step by step when eps is 0).
    """
    e = stop_gradient(eps)
    if (type(e) is float and e > 0) or not _concrete(e) or np.all(np.asarray(e) > 0):
        return
    d = stop_gradient(denom)
    if not _concrete(d):
        return
    zero = np.asarray(d) == 0
    if where is not None:
        zero = zero & np.asarray(stop_gradient(where), dtype=bool)
    if np.any(zero):
        raise _ZeroDenominator(fmt(eps))


def _leaves_as(tree, treedef: TreeDef, what: str) -> list:
    leaves, td = tree_flatten(tree)
    if td != treedef:
        raise ValueError(f"{what} has structure {td}, but params have structure {treedef}")
    return leaves


def _per_leaf(value, treedef: TreeDef, name: str) -> list:
    if _is_tree(value):
        return _leaves_as(value, treedef, f"hyperparameter {name!r}")
    return [value] * treedef.n_leaves


def _check_betas(betas) -> tuple:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    for i, b in enumerate(betas):
        check_range(f"betas[{i}]", b, 0.0, 1.0)
    return tuple(betas)


# -- the base class ---------------------------------------------------------------

class Optimizer:
    """An ``init`` / ``update`` pair with named, overridable hyperparameters.

    Subclasses set ``name``, ``constraints``, ``State`` (a NamedTuple whose
    first field is ``step`` and whose other fields are per-parameter buffers)
    and implement ``_buffers`` (the buffer fields in use) and ``_leaf``, the
    update of one parameter leaf.
    """

    name: str = "optimizer"
    constraints: dict = {}
    State: type = NamedTuple
    _arg_defaults: dict = {}
    # what eps is added to the square root of, for messages
    _second_moment: str = ("second-moment estimate (a gradient entry that has been exactly 0 "
                           "so far)")

    def __init__(self, defaults: dict, args: dict, optimizer: "Optimizer | None" = None):
        self.defaults = dict(defaults)
        self.optimizer = optimizer
        self._args = args  # constructor arguments, for __repr__

    # -- public API -------------------------------------------------------------
    def init(self, params) -> NamedTuple:
        """The state before the first step: step 0 and zero buffers."""
        leaves, treedef = tree_flatten(params)
        used = self._buffers()
        bufs = {f: tree_unflatten(treedef, [_zeros(p) for p in leaves]) if f in used else None
                for f in self.State._fields[1:]}
        return self.State(0, **bufs)

    def update(self, grads, state: NamedTuple, params, hparams: dict | None = None):
        """One step: ``(new_params, new_state)``."""
        h = self.resolve(hparams)
        p_leaves, treedef = tree_flatten(params)
        g_leaves = _leaves_as(grads, treedef, "grads")
        fields = self.State._fields[1:]
        bufs = {f: None if getattr(state, f) is None else _leaves_as(getattr(state, f), treedef, f)
                for f in fields}
        h_leaves = {k: _per_leaf(v, treedef, k) for k, v in h.items()}
        t = state.step + 1
        new_p = []
        new_b = {f: [] for f in fields if bufs[f] is not None}
        for i, (p, g) in enumerate(zip(p_leaves, g_leaves)):
            b = {f: bufs[f][i] for f in new_b}
            hi = {k: keep_dtype(v[i], p) for k, v in h_leaves.items()}
            try:
                p, b = self._leaf(p, g, b, hi, t)
            except _ZeroDenominator as e:
                raise FloatingPointError(
                    f"{type(self).__name__}: eps={e} with a zero {self._second_moment} gives 0/0 "
                    f"in the update of parameter leaf {i} at step {stop_gradient(t)}; use eps > 0 "
                    f"(the default is {self._arg_defaults.get('eps', 1e-8)!r}). Nothing was "
                    "updated") from None
            new_p.append(p)
            for f in new_b:
                new_b[f].append(b[f])
        new_state = self.State(t, **{f: tree_unflatten(treedef, new_b[f]) if f in new_b else None
                                     for f in fields})
        return tree_unflatten(treedef, new_p), new_state

    def resolve(self, hparams: dict | None = None) -> dict:
        """``defaults`` overridden by ``hparams`` (unknown names raise ValueError)."""
        if not hparams:
            return dict(self.defaults)
        unknown = [k for k in hparams if k not in self.defaults]
        if unknown:
            raise ValueError(f"{type(self).__name__} has no hyperparameter {unknown[0]!r}; "
                             f"its hyperparameters are {list(self.defaults)}")
        return {**self.defaults, **hparams}

    def describe(self) -> str:
        """The short lowercase name; for a tower, each level's joined by " / "."""
        if self.optimizer is None:
            return self.name
        return f"{self.name} / {self.optimizer.describe()}"

    def __repr__(self) -> str:
        parts = []
        for k, v in self._args.items():
            default = self._arg_defaults.get(k, _REQUIRED)
            if k == "lr" or not _same(v, default):
                parts.append(f"{k}={fmt(v)}")
        if self.optimizer is not None:
            parts.append(f"optimizer={self.optimizer!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    # -- for subclasses -----------------------------------------------------------
    def _buffers(self) -> tuple:
        return self.State._fields[1:]

    def _leaf(self, p, g, bufs: dict, h: dict, t):  # pragma: no cover - abstract
        raise NotImplementedError


_REQUIRED = object()


def _same(a, b) -> bool:
    """Whether a constructor argument equals its default (plain numbers only)."""
    plain = (bool, int, float, tuple)
    if not (isinstance(a, plain) and isinstance(b, plain)):
        return False
    if (type(a) is bool) != (type(b) is bool):  # 0 is not False here
        return False
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


# -- the update rules, one parameter leaf at a time ----------------------------------
#
# An update is a direction d (with the buffers it keeps) and a step ``p - lr * d``.
# The classes below and the hypergradient-descent optimizers of `hyperopt.hd`
# (whose hypergradient is ``-g · d_prev``) build their updates from these.

def l2_gradient(g, p, weight_decay):
    """The gradient of the loss plus the coupled L2 term: ``g + weight_decay * p``."""
    return g + weight_decay * p


def descend(p, lr, d):
    """The step: ``p - lr * d``."""
    return p - lr * d


def sgd_direction(g, buf, momentum, dampening, nesterov: bool, t):
    """torch.optim.SGD's direction and momentum buffer at step ``t`` (1-based):
    ``(d, new_buf)``.

    ``b_t = momentum * b_{t-1} + (1 - dampening) * g``, with ``b_1 = g`` (no
    dampening on the first step, as in torch): a zero buffer at t = 1 gives
    that, and so does ``buf=None`` (a buffer that does not exist yet, torch's
    own representation), which returns ``g`` itself as the new buffer.
    ``d = g + momentum * b_t`` (Nesterov) or ``b_t``; with ``momentum == 0`` and
    ``dampening != 0``, ``d = g``.
    """
    if buf is None:
        buf = g
    else:
        # the buffer starts at 0, so at t == 1 this is g (no dampening), as in torch
        buf = momentum * buf + keep_dtype(1 - dampening * (t > 1), g) * g
    use_buf = (stop_gradient(momentum) != 0) | (stop_gradient(dampening) == 0)
    d = select(use_buf, lambda: buf, lambda: g)
    if nesterov:
        d = g + momentum * d
    return d, buf


def adam_moments(g, m, v, beta1, beta2):
    """Adam's raw (not bias-corrected) moment estimates after the gradient ``g``:
    ``(beta1 m + (1 - beta1) g,  beta2 v + (1 - beta2) g²)``."""
    return beta1 * m + (1 - beta1) * g, beta2 * v + (1 - beta2) * (g * g)


def adam_direction(m, v, beta1, beta2, eps, t):
    """torch.optim.Adam's direction at step ``t`` (1-based) and its first-moment
    bias correction: ``(d, c)`` with ``d = m / (sqrt(v) / sqrt(1 - beta2^t) + eps)``
    and ``c = 1 - beta1^t``; the step is ``p - (lr / c) * d``.

    eps is added to the bias-corrected ``sqrt(v_hat)``; the square root is
    `safe_sqrt`.  A denominator entry that is exactly 0 (``eps <= 0`` on a zero
    second moment) raises `_ZeroDenominator` (`check_denominator`).
    """
    bc1, bc2 = 1 - beta1 ** t, 1 - beta2 ** t
    denom = safe_sqrt(v) / keep_dtype(bc2 ** 0.5, v) + eps
    check_denominator(denom, eps)
    return m / denom, bc1


# -- SGD ---------------------------------------------------------------------------

class SGDState(NamedTuple):
    step: Any
    momentum_buffer: Any


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov momentum
    and L2 weight decay, exactly as torch.optim.SGD::

        g   = grad + weight_decay * p
        b_1 = g;  b_t = momentum * b_{t-1} + (1 - dampening) * g   (t > 1)
        d   = g + momentum * b_t   (nesterov)   else   d = b_t
        p   = p - lr * d

    As in torch, with ``momentum == 0`` and ``dampening != 0`` no buffer is
    applied (d = g); with both 0 the buffer equals g and is used, so the
    derivative with respect to momentum at 0 is the right-sided one.
    Nesterov needs momentum > 0 and dampening 0 (torch's rule).
    """

    name = "sgd"
    constraints = {"lr": "positive", "momentum": "unit_closed_open",
                   "dampening": "unit_closed_open", "weight_decay": "nonnegative"}
    State = SGDState
    _arg_defaults = {"momentum": 0.0, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0}

    def __init__(self, lr=1e-3, momentum=0.0, dampening=0.0, nesterov: bool = False,
                 weight_decay=0.0, *, optimizer: Optimizer | None = None):
        check_range("lr", lr)
        check_range("momentum", momentum, 0.0, 1.0)
        check_range("dampening", dampening, 0.0, 1.0)
        check_range("weight_decay", weight_decay)
        if nesterov and (any(np.any(stop_gradient(m) <= 0) for m in tree_leaves(momentum))
                         or any(np.any(stop_gradient(d) != 0) for d in tree_leaves(dampening))):
            raise ValueError("nesterov momentum requires momentum > 0 and dampening == 0, "
                             f"got momentum={fmt(momentum)}, dampening={fmt(dampening)}")
        self.nesterov = bool(nesterov)
        super().__init__({"lr": lr, "momentum": momentum, "dampening": dampening,
                          "weight_decay": weight_decay},
                         {"lr": lr, "momentum": momentum, "dampening": dampening,
                          "nesterov": nesterov, "weight_decay": weight_decay}, optimizer)

    def _leaf(self, p, g, bufs, h, t):
        g = l2_gradient(g, p, h["weight_decay"])
        d, buf = sgd_direction(g, bufs["momentum_buffer"], h["momentum"], h["dampening"],
                               self.nesterov, t)
        return descend(p, h["lr"], d), {"momentum_buffer": buf}


# -- Adam / AdamW ----------------------------------------------------------------

class AdamState(NamedTuple):
    step: Any
    exp_avg: Any
    exp_avg_sq: Any
    max_exp_avg_sq: Any  # None unless amsgrad


class Adam(Optimizer):
    """Adam (Kingma & Ba) in torch.optim.Adam's form, L2 weight decay::

        g = grad + weight_decay * p
        m = beta1 m + (1 - beta1) g;      v = beta2 v + (1 - beta2) g^2
        v' = max(v', v) (amsgrad, on the raw v, as torch) else v' = v
        p = p - lr / (1 - beta1^t) * m / (sqrt(v') / sqrt(1 - beta2^t) + eps)

    eps is added to the bias-corrected sqrt(v_hat), as in torch and the paper.
    Hyperparameter names: lr, beta1, beta2, eps, weight_decay.
    """

    name = "adam"
    constraints = {"lr": "positive", "beta1": "unit_closed_open", "beta2": "unit_closed_open",
                   "eps": "positive", "weight_decay": "nonnegative"}
    State = AdamState
    _decoupled = False
    _arg_defaults = {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False}

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad: bool = False, *, optimizer: Optimizer | None = None):
        check_range("lr", lr)
        betas = _check_betas(betas)
        check_range("eps", eps)
        check_range("weight_decay", weight_decay)
        self.amsgrad = bool(amsgrad)
        super().__init__({"lr": lr, "beta1": betas[0], "beta2": betas[1], "eps": eps,
                          "weight_decay": weight_decay},
                         {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                          "amsgrad": amsgrad}, optimizer)

    def _buffers(self):
        return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if self.amsgrad else ())

    def _leaf(self, p, g, bufs, h, t):
        lr, b1, b2, wd = h["lr"], h["beta1"], h["beta2"], h["weight_decay"]
        if self._decoupled:
            p = p * (1 - lr * wd)
        else:
            g = l2_gradient(g, p, wd)
        m, v = adam_moments(g, bufs["exp_avg"], bufs["exp_avg_sq"], b1, b2)
        out = {"exp_avg": m, "exp_avg_sq": v}
        if self.amsgrad:
            v = out["max_exp_avg_sq"] = np.maximum(bufs["max_exp_avg_sq"], v)
        d, bc1 = adam_direction(m, v, b1, b2, h["eps"], t)
        return descend(p, keep_dtype(lr / bc1, p), d), out


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter): Adam with decoupled weight decay, as
    torch.optim.AdamW: ``p = p * (1 - lr * weight_decay)`` before the Adam
    step, which then sees the raw gradient.  The decay is multiplied by lr
    (torch's convention; the paper scales it by the schedule multiplier only)."""

    name = "adamw"
    _decoupled = True
    _arg_defaults = {**Adam._arg_defaults, "weight_decay": 1e-2}

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad: bool = False, *, optimizer: Optimizer | None = None):
        super().__init__(lr, betas, eps, weight_decay, amsgrad, optimizer=optimizer)


# -- RAdam -----------------------------------------------------------------------

class RAdamState(NamedTuple):
    step: Any
    exp_avg: Any
    exp_avg_sq: Any


class RAdam(Optimizer):
    """Rectified Adam (Liu et al., 2020), decoupled weight decay::

        m = beta1 m + (1 - beta1) g;   v = beta2 v + (1 - beta2) g^2
        rho_inf = 2 / (1 - beta2) - 1
        rho_t   = rho_inf - 2 t beta2^t / (1 - beta2^t)
        r_t     = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
        rho_t >= 5:  p = p (1 - lr wd) - lr r_t sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps)
        else:        p = p (1 - lr wd) - lr m / (1 - beta1^t)    (degenerated_to_sgd)
                     p unchanged, decay included                   (not degenerated_to_sgd)

    Normalization: r_t above is the paper's rectification term; the bias
    corrections sqrt(1 - beta2^t) / (1 - beta1^t) multiply it, and eps is added
    to sqrt(v) *before* bias correction, as in the authors' reference code and
    torch.optim.RAdam (the paper's algorithm has no eps).  The rectified step
    is taken while rho_t >= 5 (the reference code's test; the paper writes
    rho_t > 4, torch rho_t > 5).  The moments are updated on every step; with
    ``degenerated_to_sgd=False`` a skipped step also skips the decay, as in the
    reference code.  torch.optim.RAdam(decoupled_weight_decay=True) is this
    optimizer with degenerated_to_sgd=True.

    rho_t depends only on t and beta2; the branch is chosen on their primal
    values (`select`), so tangents with respect to beta2 follow the branch
    taken.  The branch not taken is evaluated at safe values when beta2 is an
    array, so it cannot put a nan into a reverse sweep.
    """

    name = "radam"
    constraints = {"lr": "positive", "beta1": "unit_closed_open", "beta2": "unit_closed_open",
                   "eps": "positive", "weight_decay": "nonnegative"}
    State = RAdamState
    _arg_defaults = {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
                     "degenerated_to_sgd": True}

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 degenerated_to_sgd: bool = True, *, optimizer: Optimizer | None = None):
        check_range("lr", lr)
        betas = _check_betas(betas)
        check_range("eps", eps)
        check_range("weight_decay", weight_decay)
        self.degenerated_to_sgd = bool(degenerated_to_sgd)
        super().__init__({"lr": lr, "beta1": betas[0], "beta2": betas[1], "eps": eps,
                          "weight_decay": weight_decay},
                         {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                          "degenerated_to_sgd": degenerated_to_sgd}, optimizer)

    def _leaf(self, p, g, bufs, h, t):
        lr, b1, b2, eps = h["lr"], h["beta1"], h["beta2"], h["eps"]
        m, v = adam_moments(g, bufs["exp_avg"], bufs["exp_avg_sq"], b1, b2)
        bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 * t * b2 ** t / bc2
        adaptive = stop_gradient(rho_t) >= 5
        decayed = p * (1 - lr * h["weight_decay"])

        def rectified():
            rt, ri = rho_t, rho_inf
            if not isinstance(adaptive, (bool, np.bool_)):  # elementwise: keep the other side finite
                rt, ri = np.where(adaptive, rho_t, 5.0), np.where(adaptive, rho_inf, 6.0)
            r = ((rt - 4) * (rt - 2) * ri / ((ri - 4) * (ri - 2) * rt)) ** 0.5
            denom = safe_sqrt(v) + eps
            check_denominator(denom, eps, None if isinstance(adaptive, (bool, np.bool_))
                              else adaptive)
            return decayed - keep_dtype(lr * r * bc2 ** 0.5 / bc1, p) * (m / denom)

        def unadapted():
            return decayed - keep_dtype(lr / bc1, p) * m if self.degenerated_to_sgd else p

        return select(adaptive, rectified, unadapted), {"exp_avg": m, "exp_avg_sq": v}


# -- RMSprop ---------------------------------------------------------------------

class RMSpropState(NamedTuple):
    step: Any
    square_avg: Any
    grad_avg: Any         # None unless centered
    momentum_buffer: Any


class RMSprop(Optimizer):
    """RMSprop (Hinton) in torch.optim.RMSprop's form::

        g = grad + weight_decay * p
        v = alpha v + (1 - alpha) g^2
        centered:  a = alpha a + (1 - alpha) g;   s = sqrt(v - a^2) + eps
        else:      s = sqrt(v) + eps
        b = momentum b + g / s;   p = p - lr b

    eps outside the square root, no bias correction (torch's choices).  With
    momentum 0, b = g / s: torch's momentum-free step, with the derivative in
    momentum kept.  A centered variance that rounds below 0 gives s = eps
    where torch would give nan.
    """

    name = "rmsprop"
    constraints = {"lr": "positive", "alpha": "unit_closed_open", "eps": "positive",
                   "momentum": "unit_closed_open", "weight_decay": "nonnegative"}
    State = RMSpropState
    _arg_defaults = {"alpha": 0.99, "eps": 1e-8, "momentum": 0.0, "centered": False,
                     "weight_decay": 0.0}

    def __init__(self, lr=1e-2, alpha=0.99, eps=1e-8, momentum=0.0, centered: bool = False,
                 weight_decay=0.0, *, optimizer: Optimizer | None = None):
        check_range("lr", lr)
        check_range("alpha", alpha, 0.0, 1.0)
        check_range("eps", eps)
        check_range("momentum", momentum, 0.0, 1.0)
        check_range("weight_decay", weight_decay)
        self.centered = bool(centered)
        super().__init__({"lr": lr, "alpha": alpha, "eps": eps, "momentum": momentum,
                          "weight_decay": weight_decay},
                         {"lr": lr, "alpha": alpha, "eps": eps, "momentum": momentum,
                          "centered": centered, "weight_decay": weight_decay}, optimizer)

    def _buffers(self):
        return ("square_avg", "momentum_buffer") + (("grad_avg",) if self.centered else ())

    def _leaf(self, p, g, bufs, h, t):
        alpha = h["alpha"]
        g = l2_gradient(g, p, h["weight_decay"])
        v = alpha * bufs["square_avg"] + (1 - alpha) * (g * g)
        out = {"square_avg": v}
        if self.centered:
            a = out["grad_avg"] = alpha * bufs["grad_avg"] + (1 - alpha) * g
            v = v - a * a
        denom = safe_sqrt(v) + h["eps"]
        check_denominator(denom, h["eps"])
        b = h["momentum"] * bufs["momentum_buffer"] + g / denom
        out["momentum_buffer"] = b
        return p - h["lr"] * b, out


# -- Adagrad ---------------------------------------------------------------------

class AdagradState(NamedTuple):
    step: Any
    sum: Any  # the sum of squared gradients, without initial_accumulator_value


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.) in torch.optim.Adagrad's form::

        g = grad + weight_decay * p
        clr = lr / (1 + (t - 1) lr_decay)
        S = S + g^2
        p = p - clr g / (sqrt(initial_accumulator_value + S) + eps)

    eps outside the square root (torch).  The state keeps S without the
    initial accumulator value, which is added at each step instead, so it is
    a hyperparameter like the others (overridable, differentiable).
    """

    name = "adagrad"
    _second_moment = ("sum of squared gradients (a gradient entry that has been exactly 0 so "
                      "far, and initial_accumulator_value=0)")
    constraints = {"lr": "positive", "lr_decay": "nonnegative", "weight_decay": "nonnegative",
                   "initial_accumulator_value": "nonnegative", "eps": "positive"}
    State = AdagradState
    _arg_defaults = {"lr_decay": 0.0, "weight_decay": 0.0, "initial_accumulator_value": 0.0,
                     "eps": 1e-10}

    def __init__(self, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                 eps=1e-10, *, optimizer: Optimizer | None = None):
        check_range("lr", lr)
        check_range("lr_decay", lr_decay)
        check_range("weight_decay", weight_decay)
        check_range("initial_accumulator_value", initial_accumulator_value)
        check_range("eps", eps)
        hp = {"lr": lr, "lr_decay": lr_decay, "weight_decay": weight_decay,
              "initial_accumulator_value": initial_accumulator_value, "eps": eps}
        super().__init__(hp, dict(hp), optimizer)

    def _leaf(self, p, g, bufs, h, t):
        g = l2_gradient(g, p, h["weight_decay"])
        clr = h["lr"] / (1 + (t - 1) * h["lr_decay"])
        s = bufs["sum"] + g * g
        denom = safe_sqrt(h["initial_accumulator_value"] + s) + h["eps"]
        check_denominator(denom, h["eps"])
        return p - keep_dtype(clr, p) * (g / denom), {"sum": s}
