"""Helpers for writing derivative rules.

Tangents carry a leading axis of K directions: a tangent of an argument of
shape ``s`` has shape ``(K,) + s``.  Cotangents have the shape of the value.
Rules use only primitives and array operators, so they run on any number type.
"""
from __future__ import annotations

import numpy as np

from .. import primitives as P
from ..core import primal_value


def defjvp(prim, *rules):
    """Per-argument jvp rules: ``rule(t, ans, *args, **params)``; None = no rule."""
    prim.jvps = tuple(rules)


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


def defelementwise(prim, *partials):
    """An elementwise (broadcasting) op from its partial derivatives.

    ``partials[i](ans, *args)`` is d ans / d arg_i as an array (or ONE,
    MINUS_ONE for linear arguments, or None for no rule).  Tangents are lifted
    and multiplied; cotangents are multiplied and summed back to the shape of
    the argument.
    """

    def make(i, d):
        if d is None:
            return None, None

        def jvp(t, ans, *args):
            t = lift(t, len(_shape(ans)))
            if d is ONE:
                term = t
            elif d is MINUS_ONE:
                term = -t
            else:
                term = t * d(ans, *args)
            return fill_out(term, ans)

        def vjp(g, ans, *args):
            if d is ONE:
                c = g
            elif d is MINUS_ONE:
                c = -g
            else:
                c = g * d(ans, *args)
            return unbroadcast(c, _shape(args[i]))

        return jvp, vjp

    made = [make(i, d) for i, d in enumerate(partials)]
    defjvp(prim, *[m[0] for m in made])
    defvjp(prim, *[m[1] for m in made])


def constant(x):
    """The primal of x as a plain array: for masks and other constants."""
    v = primal_value(x)
    return np.float64(v) if type(v) is float else v
