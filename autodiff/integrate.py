"""Differentiable simulation: ODE integrators written in plain numpy.

The steppers only add, scale and call the user's right-hand side, so `Dual`
values (forward mode) and tape values (reverse mode) flow through them like
any other numpy code: differentiate a simulation with `jvp`, `jacfwd`, `grad`,
or `sensitivity` below.  The state may be an array, a Python float or a pytree
(dict / list / tuple / NamedTuple of arrays).

* `odeint(f, y0, t_span, params, ...)` for y' = f(y, t, params): explicit
  Euler and classic RK4 with a fixed step, and adaptive Dormand-Prince 5(4)
  ("rk45").
* `symplectic(accel, q0, v0, dt, steps, params, ...)` for
  q'' = accel(q, t, params): velocity Verlet (leapfrog) and semi-implicit
  (symplectic) Euler.
* `sensitivity(f, y0, t_span, params, ...)`: y(t1) with d y(t1) / d y0 and
  d y(t1) / d params, from one batched forward-mode pass.

The calling convention, the same for all three: the right-hand side is
called as ``f(y, t, params)``, where ``params`` is one argument, any pytree
(a float, an array, a tuple, a dict of arrays...), passed as given; it may
carry derivatives, and it is what `sensitivity` differentiates.  With
``params=None`` (the default) it is called as ``f(y, t)``.  The keyword
``args=(a, b, ...)`` appends extra positional arguments after params:
``f(y, t, params, a, b, ...)``, or ``f(y, t, a, b, ...)`` without params
(so an ``f(y, t, *args)`` written for the old convention of `odeint` and
`symplectic`, whose fourth / sixth positional argument was ``args``, is
called with ``args=...``).  `sensitivity` does not differentiate ``args``.

By default only the final state is returned and nothing of the past steps is
kept, so forward mode runs in memory flat in the number of steps.  With
``save_every=k`` a trajectory is returned instead, and memory grows with the
number of saved points (steps / k).  Reverse mode (`grad` over a run) records
every step on its tape, so its memory grows with the number of steps.
"""
from __future__ import annotations

import math
import operator
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from .api import jacfwd
from .core import Box, primal_value
from .dual import Dual
from .tree import tree_flatten, tree_unflatten

__all__ = ["odeint", "symplectic", "sensitivity", "Sensitivity", "IntegrationError",
           "ODE_METHODS", "SYMPLECTIC_METHODS"]

ODE_METHODS = ("euler", "rk4", "rk45")
SYMPLECTIC_METHODS = ("verlet", "leapfrog", "symplectic_euler")


class IntegrationError(RuntimeError):
    """An adaptive integration could not reach the end of its interval."""


# -- the state as a flat list of leaves ------------------------------------------


def _state_leaf(x, where: str):
    if isinstance(x, Box) or type(x) is float:
        return x
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return float(x)
    a = np.asarray(x)
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.float64)
    if not np.issubdtype(a.dtype, np.inexact):
        raise TypeError(f"{where}: the state must hold numbers, got dtype {a.dtype}")
    return a


def _flatten_state(y0, where: str):
    leaves, treedef = tree_flatten(y0)
    if not leaves:
        raise ValueError(f"{where} holds no arrays")
    return [_state_leaf(x, where) for x in leaves], treedef


def _call_args(params, args, where: str) -> tuple:
    """The arguments after (y, t): ``(params, *args)``, or ``args`` without params."""
    if not isinstance(args, (tuple, list)):
        raise TypeError(f"{where}: args must be a tuple of extra positional arguments "
                        f"(passed after params), got {type(args).__name__}; the parameters "
                        "themselves go in params")
    return tuple(args) if params is None else (params, *args)


class _Field:
    """The right-hand side as a function of the flat list of state leaves.

    The first call checks that the output has the state's structure and
    shapes; later calls only check the number of leaves (cheap)."""

    __slots__ = ("f", "args", "treedef", "shapes", "single", "name", "checked")

    def __init__(self, f, args, treedef, leaves, name):
        if not callable(f):
            raise TypeError(f"{name} must be callable, got {type(f).__name__}")
        self.f, self.args, self.treedef, self.name = f, tuple(args), treedef, name
        self.shapes = [np.shape(x) for x in leaves]
        self.single = treedef.kind == "leaf"
        self.checked = False

    def __call__(self, leaves, t):
        y = leaves[0] if self.single else tree_unflatten(self.treedef, leaves)
        if self.checked:
            out = self.f(y, t, *self.args)
        else:
            try:
                out = self.f(y, t, *self.args)
            except TypeError as e:
                # a tuple of parameters in the place of the old ``args``: say what changed
                if type(e) is TypeError and len(self.args) == 1 \
                        and isinstance(self.args[0], (tuple, list)):
                    raise TypeError(
                        f"{e}; note: {self.name} is called as {self.name}(y, t, params) with "
                        f"params as one argument (here a {type(self.args[0]).__name__}); to "
                        "pass several arguments, use args=(...) instead of params, or unpack "
                        f"params inside {self.name}") from e
                raise
        out_leaves, out_def = tree_flatten(out)
        if out_def != self.treedef:
            raise ValueError(f"{self.name} returned a value structured as {out_def} for a state "
                             f"structured as {self.treedef}; return the same structure as the state "
                             "(build arrays with np.stack or np.concatenate)")
        if not self.checked:
            for o, s in zip(out_leaves, self.shapes):
                if np.shape(o) != s:
                    raise ValueError(f"{self.name} returned shape {np.shape(o)} for a state of shape "
                                     f"{s}; it must return the derivative with the state's shape")
            self.checked = True
        return out_leaves


def _combine(y, h, ks, coefs):
    """y + h * sum_j coefs[j] * ks[j], leafwise (zero coefficients skipped)."""
    out = []
    for i, yi in enumerate(y):
        acc = None
        for c, k in zip(coefs, ks):
            if c == 0:
                continue
            term = k[i] if c == 1 else c * k[i]
            acc = term if acc is None else acc + term
        out.append(yi if acc is None else yi + h * acc)
    return out


def _as_step(x):
    """A step or time: a Python float when it carries no derivative (weakly
    typed, so float32 states stay float32), else the value itself."""
    return x if isinstance(x, Box) else float(x)


def _check_method(method, known):
    if method not in known:
        raise ValueError(f"unknown method {method!r}; known methods: {', '.join(known)}")


def _check_steps(steps, name="steps"):
    try:
        n = operator.index(steps)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {steps!r}") from None
    if n <= 0 or isinstance(steps, bool):
        raise ValueError(f"{name} must be a positive integer, got {steps!r}")
    return n


def _check_save_every(save_every):
    return None if save_every is None else _check_steps(save_every, "save_every")


def _stack(per_leaf_saved, treedef):
    """Saved states (one list per leaf) stacked along a new leading axis."""
    leaves = []
    for saved in per_leaf_saved:
        if any(isinstance(s, Box) for s in saved):
            leaves.append(np.stack([s if isinstance(s, Box) else np.asarray(s) for s in saved]))
        else:
            leaves.append(np.stack(saved))
    return tree_unflatten(treedef, leaves)


# -- fixed-step first-order methods ---------------------------------------------


def _euler_step(F, y, t, h):
    return _combine(y, h, (F(y, t),), (1,))


def _rk4_step(F, y, t, h):
    half = 0.5 * h
    k1 = F(y, t)
    k2 = F(_combine(y, half, (k1,), (1,)), t + half)
    k3 = F(_combine(y, half, (k2,), (1,)), t + half)
    k4 = F(_combine(y, h, (k3,), (1,)), t + h)
    return _combine(y, h / 6.0, (k1, k2, k3, k4), (1, 2.0, 2.0, 1))


_FIXED = {"euler": _euler_step, "rk4": _rk4_step}


# -- Dormand-Prince 5(4) ------------------------------------------------------------
# J. R. Dormand and P. J. Prince, "A family of embedded Runge-Kutta formulae",
# J. Comput. Appl. Math. 6 (1980) 19-26; also Hairer, Norsett & Wanner, Solving
# Ordinary Differential Equations I, Table II.5.2.  The 5th-order solution is
# propagated (local extrapolation); its last stage is f at the new point
# (first same as last), so an accepted step costs six evaluations of f.

_DP_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_DP_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
)
_DP_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84)           # order 5
_DP_B4 = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)
_DP_E = tuple(b - b4 for b, b4 in zip(_DP_B + (0.0,), _DP_B4))  # y5 - y4 = h * sum E_j k_j

_SAFETY, _FAC_MIN, _FAC_MAX = 0.9, 0.2, 10.0


def _dopri_step(F, y, k1, t, h):
    """One Dormand-Prince step from (t, y) with f(y, t) = k1: the new state,
    f at the new point, and all seven stages (for the error estimate)."""
    ks = [k1]
    for i in range(1, 6):
        ks.append(F(_combine(y, h, ks, _DP_A[i]), t + _DP_C[i] * h))
    y_new = _combine(y, h, ks, _DP_B)
    ks.append(F(y_new, t + h))
    return y_new, ks[-1], ks


def _rms_norm(leaves, scales) -> float:
    total, count = 0.0, 0
    for x, s in zip(leaves, scales):
        r = np.asarray(x, dtype=np.float64) / s
        total += float(np.sum(r * r))
        count += r.size
    return math.sqrt(total / max(count, 1))


def _error_norm(y, y_new, ks, h: float, rtol, atol) -> float:
    """Hairer's scaled RMS norm of the embedded error estimate, on primal values only."""
    errs, scales = [], []
    for i in range(len(y)):
        e = None
        for c, k in zip(_DP_E, ks):
            if c:
                term = c * np.asarray(primal_value(k[i]), dtype=np.float64)
                e = term if e is None else e + term
        errs.append(h * e)
        y_p = np.abs(np.asarray(primal_value(y[i]), dtype=np.float64))
        yn_p = np.abs(np.asarray(primal_value(y_new[i]), dtype=np.float64))
        scales.append(atol + rtol * np.maximum(y_p, yn_p))
    return _rms_norm(errs, scales)


def _initial_step(F, y, k1, t0: float, direction: float, length: float, rtol, atol) -> float:
    """Hairer, Norsett & Wanner I, II.4 ("starting step size"), on primal values."""
    y_p = [np.asarray(primal_value(x), dtype=np.float64) for x in y]
    f0 = [np.asarray(primal_value(k), dtype=np.float64) for k in k1]
    scales = [atol + rtol * np.abs(x) for x in y_p]
    d0, d1 = _rms_norm(y_p, scales), _rms_norm(f0, scales)
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    h0 = min(h0, length)
    y1 = [x + direction * h0 * k for x, k in zip(y_p, f0)]
    f1 = [np.asarray(primal_value(k), dtype=np.float64) for k in F(y1, t0 + direction * h0)]
    d2 = _rms_norm([a - b for a, b in zip(f1, f0)], scales) / h0
    big = max(d1, d2)
    h1 = max(1e-6, 1e-3 * h0) if big <= 1e-15 else (0.01 / big) ** 0.2
    return min(100 * h0, h1, length)


def _rk45(F, y, t0, t1, rtol, atol, max_steps, first_step, save_every):
    span = t1 - t0
    t0_p, span_p = float(primal_value(t0)), float(primal_value(span))
    length, direction = abs(span_p), (1.0 if span_p >= 0 else -1.0)
    t_end_p = t0_p + span_p
    k1 = F(y, t0)
    saved_t, saved = ([t0_p], [[x] for x in y]) if save_every else (None, None)
    if length == 0:
        return y, saved_t, saved
    if first_step is None:
        h = _initial_step(F, y, k1, t0_p, direction, length, rtol, atol)
    else:
        h = min(float(first_step), length)
    s, attempts, accepted, rejected_last = 0.0, 0, 0, False
    while True:
        if attempts >= max_steps:
            raise IntegrationError(
                f"rk45: max_steps={max_steps} step attempts exceeded at t={t0_p + direction * s:.17g} "
                f"(integrating to t={t_end_p:.17g}, {accepted} steps accepted); raise max_steps, "
                "loosen rtol/atol, or check the problem for stiffness or a blow-up")
        t_p = t0_p + direction * s
        min_step = 10 * float(np.spacing(max(abs(t_p), abs(t_end_p))))
        if h < min_step:
            raise IntegrationError(
                f"rk45: step size underflow at t={t_p:.17g} (step {h:.3g} < {min_step:.3g}); "
                "the solution may blow up or f may return non-finite values there")
        attempts += 1
        last = s + h >= length * (1 - 4 * np.finfo(float).eps)
        if last:
            h = length - s
            step = span - direction * s if isinstance(span, Box) else direction * h
        else:
            step = direction * h
        t = t0 + direction * s if isinstance(t0, Box) else t_p
        y_new, k_new, ks = _dopri_step(F, y, k1, t, step)
        err = _error_norm(y, y_new, ks, h, rtol, atol)
        if err <= 1.0:  # accept (False for nan)
            y, k1 = y_new, k_new
            s = length if last else s + h
            accepted += 1
            if save_every and (accepted % save_every == 0 or last):
                saved_t.append(t0_p + direction * s)
                for lst, x in zip(saved, y):
                    lst.append(x)
            if last:
                return y, saved_t, saved
            fac = _FAC_MAX if err == 0 else min(_FAC_MAX, _SAFETY * err ** -0.2)
            h *= min(fac, 1.0) if rejected_last else fac
            rejected_last = False
        else:
            fac = max(_FAC_MIN, _SAFETY * err ** -0.2) if np.isfinite(err) else _FAC_MIN
            h *= min(fac, 1.0)
            rejected_last = True


# -- public API -----------------------------------------------------------------------


def odeint(f: Callable[..., Any], y0: Any, t_span: Sequence, params: Any = None, *,
           args: Sequence = (), method: str = "rk4", steps: int | None = None,
           dt: float | None = None, save_every: int | None = None, rtol: float = 1e-6,
           atol: float = 1e-9, max_steps: int = 100_000, first_step: float | None = None):
    """Integrate y' = f(y, t, params) from t_span[0] to t_span[1].

    ``y0`` is an array, a float or a pytree of arrays; ``f`` returns the
    derivative with the same structure and shapes.  ``params`` is passed to
    ``f`` as one argument, as given (any pytree); ``params=None`` calls
    ``f(y, t)``.  ``args=(a, b, ...)`` (keyword only) appends extra
    arguments: ``f(y, t, params, a, b, ...)``, or ``f(y, t, a, b, ...)``
    without params (the module docstring states this convention, shared
    with `symplectic` and `sensitivity`).  Anything may carry derivatives
    (Duals or tape values): ``y0``, ``params``, ``args`` and the end points
    of ``t_span``.

    Methods:

    * ``"euler"`` (order 1), ``"rk4"`` (classic Runge-Kutta, order 4): fixed
      steps; give exactly one of ``steps`` (step (t1 - t0) / steps) or ``dt``
      (> 0; the last step is shortened to end exactly at t1 when dt does not
      divide the interval).
    * ``"rk45"``: adaptive Dormand-Prince 5(4) with local extrapolation,
      options ``rtol``, ``atol`` (error per step measured in Hairer's scaled
      RMS norm, ``atol + rtol * |y|``), ``max_steps`` (attempted steps,
      rejected ones included) and ``first_step`` (by default chosen by Hairer's
      starting-step algorithm).  Raises `IntegrationError` when max_steps is
      exceeded or the step size underflows.

      Derivatives through rk45: the step sizes are chosen from the primal
      values alone (the error estimate and step control see
      ``stop_gradient`` of every stage), and the accepted step sequence is
      then treated as constant.  Tangents and gradients are therefore the
      exact derivatives of the computed map y0, params -> y_N on that frozen
      step sequence (derivatives of the discretized solution, not of the
      exact solution; not of the step-size choice either, which would be
      noise).  They approximate the true sensitivity with the accuracy of
      the integration itself and converge to it as rtol, atol -> 0.  A
      finite difference of rk45 (which re-chooses steps for each perturbed
      input) agrees with them only to about the integration tolerance.

    Returns the state at t1 (nothing of the past steps is kept, so forward
    mode runs in memory flat in the number of steps).  With ``save_every=k``
    it returns ``(ts, ys)`` instead: the primal times (a float64 array) and
    the states after steps 0, k, 2k, ... and at t1, each leaf of ``ys``
    stacked along a new leading axis; memory then grows with the number of
    saved points.  For rk45, "steps" are accepted steps.
    """
    _check_method(method, ODE_METHODS)
    save_every = _check_save_every(save_every)
    if len(t_span) != 2:
        raise ValueError(f"t_span must be (t0, t1), got {len(t_span)} values")
    t0, t1 = (_as_step(t) for t in t_span)
    y, treedef = _flatten_state(y0, "y0")
    F = _Field(f, _call_args(params, args, "odeint"), treedef, y, "f")

    if method == "rk45":
        if steps is not None or dt is not None:
            raise ValueError("rk45 chooses its own steps: use rtol, atol, first_step and max_steps, "
                             "not steps or dt")
        if not (rtol > 0 and atol >= 0):
            raise ValueError(f"rk45 needs rtol > 0 and atol >= 0, got rtol={rtol}, atol={atol}")
        max_steps = _check_steps(max_steps, "max_steps")
        if first_step is not None and not first_step > 0:
            raise ValueError(f"first_step must be positive, got {first_step}")
        y, saved_t, saved = _rk45(F, y, t0, t1, float(rtol), float(atol), max_steps, first_step,
                                  save_every)
        if save_every:
            return np.array(saved_t), _stack(saved, treedef)
        return tree_unflatten(treedef, y)

    if first_step is not None:
        raise ValueError(f"first_step applies to rk45 only, not {method!r}")
    step_fn = _FIXED[method]
    span = t1 - t0
    if (steps is None) == (dt is None):
        raise ValueError(f"method {method!r} takes exactly one of steps or dt")
    if steps is not None:
        n = _check_steps(steps)
        h = h_last = _as_step(span / n)
    else:
        dt_p = float(primal_value(dt))
        if not dt_p > 0:
            raise ValueError(f"dt must be positive, got {dt_p}; the direction of integration "
                             "comes from t_span")
        span_p = float(primal_value(span))
        n = max(0, math.ceil(abs(span_p) / dt_p - 1e-9))
        h = _as_step(dt) if span_p >= 0 else -_as_step(dt)
        h_last = span - (n - 1) * h if n else h
    t0_p, h_p = float(primal_value(t0)), float(primal_value(h))
    saved_t, saved = ([t0_p], [[x] for x in y]) if save_every else (None, None)
    for i in range(n):
        t = t0 + i * h
        y = step_fn(F, y, t, h if i < n - 1 else h_last)
        if save_every and ((i + 1) % save_every == 0 or i == n - 1):
            saved_t.append(float(primal_value(t1)) if i == n - 1 else t0_p + (i + 1) * h_p)
            for lst, x in zip(saved, y):
                lst.append(x)
    if save_every:
        return np.array(saved_t), _stack(saved, treedef)
    return tree_unflatten(treedef, y)


def symplectic(accel: Callable[..., Any], q0: Any, v0: Any, dt: float, steps: int,
               params: Any = None, *, args: Sequence = (), method: str = "verlet",
               t0: float = 0.0, save_every: int | None = None):
    """Integrate q'' = accel(q, t, params) with a symplectic method, fixed step dt.

    For a separable Hamiltonian H = |p|^2 / 2m + V(q), accel = -grad V / m and
    v = p / m.  ``q0`` and ``v0`` are arrays or pytrees of the same structure;
    ``accel`` returns the structure of q.  ``params`` and ``args`` follow
    `odeint`'s convention: ``accel(q, t, params, *args)``, or
    ``accel(q, t, *args)`` with ``params=None``.  Anything may carry
    derivatives, ``dt`` included.

    * ``"verlet"`` (alias ``"leapfrog"``): velocity Verlet, kick-drift-kick,
      order 2, one evaluation of accel per step (the last one is reused).
    * ``"symplectic_euler"``: semi-implicit Euler, v first then q with the
      new v, order 1.

    Both keep the energy error bounded over long runs (no drift), unlike
    explicit Euler.  Returns ``(q, v)`` after ``steps`` steps; with
    ``save_every=k``, ``(ts, qs, vs)``: primal times and the states after
    steps 0, k, 2k, ... and the last, stacked along a new leading axis
    (memory then grows with the number of saved points).
    """
    _check_method(method, SYMPLECTIC_METHODS)
    n = _check_steps(steps)
    save_every = _check_save_every(save_every)
    dt_p = float(primal_value(dt))
    if not dt_p > 0:
        raise ValueError(f"dt must be positive, got {dt_p}")
    h, t0 = _as_step(dt), _as_step(t0)
    q, treedef = _flatten_state(q0, "q0")
    v, v_def = _flatten_state(v0, "v0")
    if v_def != treedef or [np.shape(x) for x in v] != [np.shape(x) for x in q]:
        raise ValueError(f"v0 must have the structure and shapes of q0: got {v_def} "
                         f"{[np.shape(x) for x in v]} for {treedef} {[np.shape(x) for x in q]}")
    A = _Field(accel, _call_args(params, args, "symplectic"), treedef, q, "accel")
    t0_p = float(primal_value(t0))
    saved_t, saved_q, saved_v = ([t0_p], [[x] for x in q], [[x] for x in v]) if save_every else (None,) * 3
    half = 0.5 * h
    a = A(q, t0) if method != "symplectic_euler" else None
    for i in range(n):
        t = t0 + i * h
        if method == "symplectic_euler":
            v = _combine(v, h, (A(q, t),), (1,))
            q = _combine(q, h, (v,), (1,))
        else:
            v = _combine(v, half, (a,), (1,))
            q = _combine(q, h, (v,), (1,))
            a = A(q, t + h)
            v = _combine(v, half, (a,), (1,))
        if save_every and ((i + 1) % save_every == 0 or i == n - 1):
            saved_t.append(t0_p + (i + 1) * dt_p)
            for lst, x in zip(saved_q, q):
                lst.append(x)
            for lst, x in zip(saved_v, v):
                lst.append(x)
    if save_every:
        return np.array(saved_t), _stack(saved_q, treedef), _stack(saved_v, treedef)
    return tree_unflatten(treedef, q), tree_unflatten(treedef, v)


class Sensitivity(NamedTuple):
    """y(t1) and its Jacobians.  For a state leaf of shape o and an input
    leaf of shape s the Jacobian block has shape o + s (as `jacfwd`)."""
    y: Any
    dy0: Any
    dparams: Any


def sensitivity(f: Callable[..., Any], y0: Any, t_span: Sequence, params: Any = None, *,
                args: Sequence = (), method: str = "rk4", chunk_size: int | None = None,
                **options) -> Sensitivity:
    """y(t1) of y' = f(y, t, params) and its derivatives in one forward pass.

    The calling convention is `odeint`'s: ``f(y, t, params, *args)``, or
    ``f(y, t, *args)`` with ``params=None``.  Runs `odeint` once with all
    directions of ``y0`` and ``params`` (a pytree, or None for an ``f``
    without parameters) carried together by `jacfwd` (``chunk_size``
    directions per pass for large inputs), so memory stays flat in the
    number of steps.  ``args`` are extra arguments that are not
    differentiated.  ``options`` go to `odeint` (steps, dt, rtol, atol, ...;
    see its docstring for what derivatives through rk45 mean).  Returns ``Sensitivity(y, dy0, dparams)``: for an array state,
    ``dy0`` is d y(t1) / d y0 and ``dparams`` is shaped like ``params`` with
    blocks d y(t1) / d leaf (None without params); for a pytree state, each
    leaf of y maps to such a block or tree.
    """
    if "save_every" in options:
        raise ValueError("sensitivity returns the final state only; use jacfwd over odeint for "
                         "the sensitivities of a trajectory")
    _call_args(params, args, "sensitivity")   # checks args
    out: dict = {}
    with_params = params is not None

    def run(y0, *p):
        y_final = odeint(f, y0, t_span, p[0] if p else None, args=args, method=method,
                         **options)
        tags = [x._trace for x in tree_flatten((y0, p))[0] if type(x) is Dual]
        tag = tags[0] if tags else None
        out["y"] = tree_unflatten(tree_flatten(y_final)[1],
                                  [x.primal if type(x) is Dual and x._trace is tag else x
                                   for x in tree_flatten(y_final)[0]])
        return y_final

    if with_params:
        jac = jacfwd(run, argnums=(0, 1), chunk_size=chunk_size)(y0, params)
    else:
        jac = jacfwd(run, argnums=0, chunk_size=chunk_size)(y0)
    y = out["y"]
    leaves, y_def = tree_flatten(y)
    if not with_params:
        return Sensitivity(y, jac, None)
    # jac has y's structure with each leaf replaced by (d/dy0 tree, d/dparams tree)
    n0, n_p = len(tree_flatten(y0)[0]), len(tree_flatten(params)[0])
    flat = tree_flatten(jac)[0]
    per = n0 + n_p
    d0_def, dp_def = tree_flatten(y0)[1], tree_flatten(params)[1]
    dy0 = [tree_unflatten(d0_def, flat[j * per:j * per + n0]) for j in range(len(leaves))]
    dp = [tree_unflatten(dp_def, flat[j * per + n0:(j + 1) * per]) for j in range(len(leaves))]
    return Sensitivity(y, tree_unflatten(y_def, dy0), tree_unflatten(y_def, dp))
