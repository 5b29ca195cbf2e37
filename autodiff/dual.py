"""Forward mode: `Dual` arrays carrying K tangent directions in one pass.

A `Dual` is a primal array plus a tangent array of shape ``(K,) + primal.shape``
(ForwardDiff.jl's "chunk": K directions share every primal computation), and a
tag: the trace it belongs to.  Derivative rules see tangents with that leading
K axis; they live in `autodiff.rules`, not here.
"""
from __future__ import annotations

import numpy as np

from .core import Box, Trace, as_rule_arg, dtype_of, is_weak, keep_weak, match_dtype, primal_value, refuse_complex


class ForwardTrace(Trace):
    """A forward-mode differentiation: pushes tangents through each primitive."""

    __slots__ = ()

    def process(self, prim, args, params):
        primals, tangents, weak = [], [], False
        for a in args:
            if type(a) is Dual and a._trace is self:
                primals.append(a.primal)
                tangents.append(a.tangents)
                weak = weak or is_weak(a.primal)
            else:
                primals.append(a)
                tangents.append(None)
        if prim.fused is not None and not params:  # a backend kernel, when it applies
            r = prim.fused(primals, tangents)
            if r is not None:
                return Dual(r[0], r[1], self)
        ans = refuse_complex(prim(*primals, **params), prim)
        out = keep_weak(ans, primals) if weak else ans  # see core.is_weak
        if weak:
            primals = [p if t is None else as_rule_arg(p) for p, t in zip(primals, tangents)]
        if prim.jvp is not None:
            t = prim.jvp(ans, tangents, *primals, **params)
        else:
            t = None
            for i, ti in enumerate(tangents):
                if ti is not None:
                    term = prim.jvp_rule(i)(ti, ans, *primals, **params)
                    t = term if t is None else t + term
        if t is None:
            return out
        return Dual(out, match_dtype(t, ans) if weak else t, self)


# The tag of Duals made by hand with `dual(x, t)`: level 0, below every transform.
DEFAULT_TAG = ForwardTrace(level=0)


class Dual(Box):
    """A primal value with K tangent directions, belonging to one forward trace."""

    __slots__ = ("primal", "tangents")

    def __init__(self, primal, tangents, tag: ForwardTrace = DEFAULT_TAG):
        self.primal = primal
        self.tangents = tangents
        self._trace = tag

    _inner = property(lambda self: self.primal)
    tag = property(lambda self: self._trace)

    @property
    def K(self) -> int:
        """The number of tangent directions."""
        return self.tangents.shape[0]

    @property
    def tangent(self):
        """The tangent: shaped like the primal when K == 1, else ``(K,) + shape``."""
        return self.tangents[0] if self.K == 1 else self.tangents

    def __repr__(self):
        return f"Dual(primal={self.primal!r}, tangent={self.tangent!r}, K={self.K})"

    def __reduce_ex__(self, protocol):
        if self._trace is not DEFAULT_TAG:  # a transform's Dual: its tag cannot be pickled
            return super().__reduce_ex__(protocol)
        return Dual, (self.primal, self.tangents)  # made by hand with dual(): the default tag


def is_float(x) -> bool:
    return np.issubdtype(np.result_type(x), np.inexact)


def dual(primal, tangent, tag: ForwardTrace | None = None) -> Dual:
    """Make a Dual: ``tangent.shape == primal.shape`` gives one direction,
    ``tangent.shape == (K,) + primal.shape`` gives K directions.

    Integer and boolean primals carry no tangent: they raise TypeError.
    """
    if type(primal) is int:  # Python numbers stay weakly typed (see core.is_weak)
        primal = float(primal)
    refuse_complex(primal, "the primal given to dual()")
    refuse_complex(primal_value(tangent), "the tangent given to dual()")
    if not is_float(primal):
        raise TypeError(
            f"integer and boolean arrays carry no tangent (got dtype {np.result_type(primal)}); "
            "cast to a float dtype first"
        )
    shape = np.shape(primal)
    t = tangent if isinstance(tangent, Box) else np.asarray(tangent)
    if t.shape == shape:
        t = t[None] if not isinstance(t, Box) else t.reshape((1,) + shape)
    elif t.shape[1:] != shape or t.ndim != len(shape) + 1:
        raise ValueError(
            f"tangent shape {t.shape} does not match primal shape {shape}: "
            f"expected {shape} for one direction or (K,) + {shape} for K directions"
        )
    if not isinstance(t, Box) and t.dtype != dtype_of(primal):
        t = t.astype(dtype_of(primal))
    return Dual(primal, t, DEFAULT_TAG if tag is None else tag)
