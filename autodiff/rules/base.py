"""Helpers for writing derivative rules.

Tangents carry a leading axis of K directions: a tangent of an argument of
shape ``s`` has shape ``(K,) + s``.  Cotangents have the shape of the value.
Rules use only primitives and array operators, so they run on any number type.

NaN-safe singular points: where a partial derivative is infinite or undefined
at a finite input (sqrt and log at 0, 1/y at y = 0, arcsin at 1, ...), a
tangent or cotangent that is exactly zero contributes exactly zero, so a
direction that does not move through the singularity is not poisoned by
0 * inf = nan; a nonzero direction still gives inf or nan.  Rules mark such
partials with `singular` and multiply them with `nansafe_mul` (see `NAN_SAFE`).
"""
from __future__ import annotations

import cmath
import contextlib

import numpy as np

from .. import primitives as P
from ..core import Box, primal_value

# Whether rules guard their singular partials (see `singular`).  Read when a
# rule runs, so it may be toggled at any time, e.g. for A/B timing in one
# process: ``autodiff.rules.base.NAN_SAFE = False`` (or ``with nan_safe(False):``)
# gives back plain ``t * d``: 0 * inf = nan.  `autodiff.jit` records the numpy
# calls the rules make, so a recorded program keeps the mode that was active
# when it was recorded, whatever NAN_SAFE says when it replays; record (call the
# jitted function for the first time with those input shapes) under the mode
# you want, or make a new `jit(f)`.
NAN_SAFE = True


@contextlib.contextmanager
def nan_safe(enabled: bool = True):
    """Set `NAN_SAFE` inside a ``with`` block (restored on exit)."""
    global NAN_SAFE
    before, NAN_SAFE = NAN_SAFE, bool(enabled)
    try:
        yield
    finally:
        NAN_SAFE = before


def complex_rules(*prims):
    """Mark primitives whose rules hold for complex values; the others refuse
    them (core.refuse_complex).  The convention is JAX's: tangents are the
    R-linear derivative, vjps its transpose under <u, v> = Re(sum(u * v)), so a
    holomorphic op's real rules hold as they are (autodiff/families/complex.py).
    A vjp rule gives a real argument a real cotangent when the result is real
    (np.imag of a real value); of a complex result, the tape takes the real part."""
    for p in prims:
        p.complex = True


def defjvp(prim, *rules):
    """Per-argument jvp rules: ``rule(t, ans, *args, **params)``; None = no rule.
    They replace any joint rule (`defjvp_all`) the primitive had, which the trace
    would otherwise prefer."""
    prim.jvps = tuple(rules)
    prim.jvp = None


def defjvp_all(prim, rule):
    """One jvp rule for all arguments: ``rule(ans, tangents, *args, **params)``,
    where missing tangents are None (zero)."""
    prim.jvp = rule


def defvjp(prim, *rules):
    """Per-argument vjp rules: ``rule(g, ans, *args, **params)``; None = no rule."""
    prim.vjps = tuple(rules)


class PerArgument:
    """Rules for a primitive with any number of array arguments: ``rules[i]``
    is made on demand by ``make(i)``."""

    def __init__(self, make):
        self.make = make

    def __getitem__(self, i):
        return self.make(i)

    def __len__(self):
        return 1 << 30


def deflinear(prim, batched, transpose):
    """A linear unary op: its jvp applies the op to the tangent (``batched``
    says how, given the leading K axis) and its vjp is ``transpose``."""
    defjvp(prim, batched)
    defvjp(prim, transpose)


def lift(t, ndim: int):
    """Insert axes after K so the tangent ``t`` broadcasts against an ndim-array."""
    missing = ndim - (t.ndim - 1)
    if missing <= 0:
        return t
    shape = t.shape
    return P.reshape(t, shape=shape[:1] + (1,) * missing + shape[1:])


def fill_out(t, ans):
    """Broadcast a tangent term to the full ``(K,) + ans.shape``."""
    full = t.shape[:1] + _shape(ans)
    return t if t.shape == full else P.broadcast_to(t, shape=full)


def unbroadcast(g, shape: tuple):
    """Sum a cotangent back to ``shape`` after numpy broadcasting."""
    gs = _shape(g)
    if gs == shape:
        return g
    lead = len(gs) - len(shape)
    if lead:
        g = P.sum(g, axis=tuple(range(lead)), keepdims=False)
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and gs[lead + i] != 1)
    if axes:
        g = P.sum(g, axis=axes, keepdims=True)
    return g


def _shape(x):
    return x.shape if hasattr(x, "shape") else ()


def shape_of(x):
    return _shape(x)


ONE = "one"
MINUS_ONE = "minus_one"


# -- NaN-safe products ------------------------------------------------------------
# `P.nansafe_mul(a, b)` is ``a * b``, exactly 0 wherever ``a == 0`` (even where b
# is inf or nan).  Its own rules are NaN-safe products again, so every order
# keeps the convention.  At the point a == 0 the product is the constant 0 in b
# (its derivative in b is exactly 0) and moves like t_a * b in a.
nansafe_mul = P.nansafe_mul
_nansafe_mul = P.nansafe_mul.impl


def _nsm_jvp_a(t, ans, a, b):
    return fill_out(nansafe_mul(lift(t, len(_shape(ans))), b), ans)


def _nsm_jvp_b(t, ans, a, b):
    return fill_out(nansafe_mul(a, lift(t, len(_shape(ans)))), ans)


def _nsm_vjp_a(g, ans, a, b):
    return unbroadcast(nansafe_mul(g, b), _shape(a))


def _nsm_vjp_b(g, ans, a, b):
    return unbroadcast(nansafe_mul(a, g), _shape(b))


defjvp(nansafe_mul, _nsm_jvp_a, _nsm_jvp_b)
defvjp(nansafe_mul, _nsm_vjp_a, _nsm_vjp_b)
nansafe_mul.complex = True  # bilinear: its rules hold for complex values (see complex_rules)


def guarded_mul(t, d):
    """``t * d`` for a (co)tangent ``t`` and a partial ``d`` that may be inf or
    nan: a zero of ``t`` contributes exactly 0 (`nansafe_mul`), unless
    `NAN_SAFE` is off."""
    if not NAN_SAFE or (type(d) in (float, int, complex) and cmath.isfinite(d)):  # a finite constant: 1 / n
        return t * d
    if type(d) is complex:  # an infinite Python complex (1 / 0j): as a numpy scalar, nansafe_mul takes it
        d = np.complex128(d)
    if isinstance(t, Box) or isinstance(d, Box):
        return nansafe_mul(t, d)
    return _nansafe_mul(t, d)  # plain arrays: what nansafe_mul would call, without its dispatch


class singular:
    """Marks a partial of `defelementwise` that may be inf or nan at a finite
    input (``singular(lambda ans, x: 0.5 / ans)`` for sqrt): its tangents and
    cotangents are multiplied with `guarded_mul`.  Partials that are finite
    wherever the inputs are finite need no mark (and cost nothing more)."""

    __slots__ = ("partial",)

    def __init__(self, partial):
        self.partial = partial


def defelementwise(prim, *partials):
    """An elementwise (broadcasting) op from its partial derivatives.

    ``partials[i](ans, *args)`` is d ans / d arg_i as an array (or ONE,
    MINUS_ONE for linear arguments, or None for no rule; wrapped in `singular`
    when it may be inf or nan at a finite input).  Tangents are lifted and
    multiplied; cotangents are multiplied and summed back to the shape of the
    argument.
    """

    def make(i, d):
        if d is None:
            return None, None
        guard = isinstance(d, singular)
        if guard:
            d = d.partial

        def jvp(t, ans, *args, _fill=True):
            t = lift(t, len(_shape(ans)))
            if d is ONE:
                term = t
            elif d is MINUS_ONE:
                term = -t
            elif guard:
                term = guarded_mul(t, d(ans, *args))
            else:
                term = t * d(ans, *args)
            return fill_out(term, ans) if _fill else term

        def vjp(g, ans, *args):
            if d is ONE:
                c = g
            elif d is MINUS_ONE:
                c = -g
            elif guard:
                c = guarded_mul(g, d(ans, *args))
            else:
                c = g * d(ans, *args)
            return unbroadcast(c, _shape(args[i]))

        return jvp, vjp

    made = [make(i, d) for i, d in enumerate(partials)]
    defjvp(prim, *[m[0] for m in made])
    defvjp(prim, *[m[1] for m in made])
    if len(partials) > 1:
        defjvp_all(prim, _joint_jvp(prim.name, [m[0] for m in made]))


def _joint_jvp(name, rules):
    """The jvp of a many-argument elementwise op: the terms of the arguments
    that carry tangents, summed as they broadcast, filled out to ``(K,) +
    ans.shape`` once (one `fill_out` instead of one per term)."""

    def jvp(ans, tangents, *args):
        t = None
        for i, ti in enumerate(tangents):
            if ti is not None:
                rule = rules[i]
                if rule is None:
                    raise NotImplementedError(f"no jvp rule for '{name}' with respect to argument {i}")
                term = rule(ti, ans, *args, _fill=False)
                t = term if t is None else t + term
        return None if t is None else fill_out(t, ans)
    return jvp


def constant(x):
    """The primal of x as a plain array: for masks and other constants."""
    v = primal_value(x)
    return np.float64(v) if type(v) is float else v
