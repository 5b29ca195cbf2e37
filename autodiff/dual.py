"""Forward mode: `Dual` arrays carrying K tangent directions in one pass.

A `Dual` is a primal array plus a tangent array of shape ``(K,) + primal.shape``
(ForwardDiff.jl's "chunk": K directions share every primal computation), and a
tag: the trace it belongs to.  Derivative rules see tangents with that leading
K axis; they live in `autodiff.rules`, not here.
"""
from __future__ import annotations

import weakref

import numpy as np

from . import primitives as _P
from .arraybox import ArrayBox
from .core import (Box, Trace, as_rule_arg, dtype_of, is_complex, is_weak, keep_weak, match_dtype, primal_value,
                   refuse_complex)

# primitives whose answer is a view of their argument: the tangent is the same view
_VIEWS = frozenset({_P.getitem, _P.reshape, _P.transpose, _P.broadcast_to})


class ForwardTrace(Trace):
    """A forward-mode differentiation: pushes tangents through each primitive."""

    __slots__ = ()

    def process(self, prim, args, params):
        primals, tangents, weak, boxed = [], [], False, False
        for a in args:
            if type(a) is Dual and a._trace is self:
                p = a.primal
                primals.append(p)
                tangents.append(a.tangents)
                if type(p) is not np.ndarray:
                    weak = weak or is_weak(p)
                    boxed = boxed or isinstance(p, Box)
            else:
                primals.append(a)
                tangents.append(None)
                boxed = boxed or isinstance(a, Box)
        if prim.fused is not None and not params:  # a backend kernel, when it applies
            r = prim.fused(primals, tangents)
            if r is not None:
                return Dual(r[0], r[1], self)
        # plain primals: the implementation itself (the primitive's dispatch would find no box)
        ans = prim(*primals, **params) if boxed or prim.nondiff else prim.impl(*primals, **params)
        if not prim.complex:
            refuse_complex(prim, ans, primals)
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
        dt = getattr(ans, "dtype", None)  # a complex value's tangent is complex (x + 1j has x's real tangent)
        if weak or (dt.kind == "c" if dt is not None else type(ans) is complex):
            t = match_dtype(t, ans)
        d = Dual(out, t, self)
        if prim in _VIEWS:  # a view of a Dual whose tangents are shared is tracked (see _own)
            base = next(a for a in args if type(a) is Dual and a._trace is self)
            if base._shared:
                d._shared, d._base = True, (base, prim, params)
                base._views = (base._views or []) + [weakref.ref(d)]
            elif isinstance(base.primal, Box) and not isinstance(base.tangents, Box):
                # nested: a later write may have to box base's tangents (_holding), which its views
                # could not follow; remember them so that such a write refuses
                base._views = (base._views or []) + [weakref.ref(d)]
        elif _shares(t, tangents):
            d._shared = True  # e.g. x + c: x's tangent itself; copied on the first write (_own)
        return d

    def write(self, d, idx, value):
        """``d[idx] = value`` in place, primal and all K tangents (a value that is
        not a Dual of this trace writes zero tangents).  Views share memory with
        their base in both, so a write through a view reaches the base."""
        if isinstance(value, Box) and value._trace.level > self.level:
            raise TypeError("cannot write a value of an inner differentiation into an array of an outer one "
                            "(it would carry the inner derivative out); return it instead")
        if _tape_below(self.level) and not (isinstance(d.primal, Box) and isinstance(d.tangents, Box)):
            raise NotImplementedError(
                "writing into a forward-mode value inside a reverse-mode differentiation of it (grad or vjp "
                "of a jvp/jacfwd) is not supported: the tape may hold the arrays the write would change. "
                "Differentiate the other way round (jvp of grad, e.g. autodiff.hvp), or write functionally")
        mine = type(value) is Dual and value._trace is self
        if d._shared:
            _own(d)
        vp = value.primal if mine else value
        d.primal = _holding(d.primal, vp, d)
        d.primal[idx] = vp
        sel = len(_P.selection_shape(np.shape(primal_value(d.primal)), idx))  # rank of d[idx]
        t = value.tangents if mine else 0.0
        if mine:
            missing = sel - (t.ndim - 1)
            if missing > 0:  # the value's tangent broadcasts against the selection after K
                t = t.reshape(t.shape[:1] + (1,) * missing + t.shape[1:])
            d.tangents = _holding(d.tangents, t, d)
        if _P.is_basic_index(idx):
            d.tangents[(slice(None),) + idx] = t
        else:  # advanced indices: with K moved last, as in the getitem rule
            tail = (slice(None),) if any(i is Ellipsis for i in idx) else (Ellipsis, slice(None))
            t = t if not mine else t.transpose(tuple(range(1, t.ndim)) + (0,))
            n = d.tangents.ndim
            if isinstance(d.tangents, Box):  # a traced tangent: one functional update, written back
                new = _P.index_update(d.tangents.transpose(tuple(range(1, n)) + (0,)), t, idx=idx + tail)
                d.tangents[...] = new.transpose((n - 1,) + tuple(range(n - 1)))
            else:
                d.tangents.transpose(tuple(range(1, n)) + (0,))[idx + tail] = t

    def constant(self, value, like):
        k = like.tangents.shape[0]
        # zeros_like of the value: recorded under autodiff.jit when the value is
        return Dual(value, np.zeros_like(value, shape=(k,) + np.shape(value)), self)


def _holding(container, value, d):
    """``container`` (d's primal or tangents), able to hold ``value``: a plain
    array that is written a value of a differentiation becomes a box of it
    (zero derivative) first.  The box is a new object, which views of d taken
    before could not follow: that case raises."""
    if isinstance(value, Box) and not (isinstance(container, Box) and container._trace.level >= value._trace.level):
        if getattr(container, "base", None) is not None or any(r() is not None for r in d._views or ()):
            raise NotImplementedError(
                "writing a value that carries an outer derivative (nested jvp) into a view of a Dual, or "
                "into a Dual with live views, is not supported: its storage cannot hold that derivative "
                "in place; write into a copy (x.copy()) made before taking views")
        if not hasattr(container, "__setitem__"):
            raise TypeError(f"cannot write into a {type(container).__name__}")
        return value._trace.constant(container, value)
    if not hasattr(container, "__setitem__"):
        raise TypeError(f"cannot write into a Dual whose primal is a {type(container).__name__}")
    return container


def _tape_below(level) -> bool:
    from .tape import RECORDING
    return any(t.level < level for t in RECORDING)


def _own(d):
    """Give d tangents of its own before a write: a root copies them; a view is
    re-taken from its base once the base owns its own.  Live views of d are
    re-taken from the new storage, so they keep seeing d's writes."""
    if d._base is not None:
        base, prim, params = d._base
        if base._shared:
            _own(base)  # re-takes d too (d is one of base's views)
            return
        d.tangents = prim.jvp_rule(0)(base.tangents, d.primal, base.primal, **params)
    else:
        d.tangents = d.tangents.copy()
    d._shared, d._base = False, None
    _retake_views(d)


def _retake_views(d):
    for ref in d._views or ():
        w = ref()
        if w is not None and w._base is not None and w._base[0] is d:
            _, prim, params = w._base
            w.tangents = prim.jvp_rule(0)(d.tangents, w.primal, d.primal, **params)
            w._shared, w._base = False, None
            _retake_views(w)
    d._views = None


def _shares(t, tangents) -> bool:
    """Whether a rule's tangent is (a view of) an argument's tangent, or read-only:
    e.g. ``x + c`` returns x's tangent itself.  Cheap identity tests, no memory scan."""
    flags = getattr(t, "flags", None)
    if flags is not None and not flags.writeable:
        return True
    base = getattr(t, "base", None)
    for ti in tangents:
        if ti is not None and (t is ti or (base is not None and (base is ti or base is getattr(ti, "base", 0)))):
            return True
    return False


# The tag of Duals made by hand with `dual(x, t)`: level 0, below every transform.
DEFAULT_TAG = ForwardTrace(level=0)


class Dual(ArrayBox):
    """A primal value with K tangent directions, belonging to one forward trace."""

    __slots__ = ("primal", "tangents", "_shared", "_base", "_views", "__weakref__")

    def __init__(self, primal, tangents, tag: ForwardTrace = DEFAULT_TAG):
        self.primal = primal
        self.tangents = tangents
        self._trace = tag
        self._shared = False  # tangents may be another Dual's: copy before writing (_own)
        self._base = self._views = None  # views of a shared Dual, tracked for _own

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
    if is_complex(primal_value(tangent)) and not is_complex(primal):
        raise TypeError("the tangent given to dual() is complex but the primal is real: the tangent of a "
                        "real value is real (make the primal complex, e.g. x.astype(complex), to move it off "
                        "the real line)")
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
