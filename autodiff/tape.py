"""Reverse mode: a tape of primitive applications and the backward sweep.

A `ReverseTrace` records, for each primitive applied to its `Var` values, the
arguments and the answer.  It never looks at their type: they may be ndarrays,
cupy arrays, `Dual` arrays (forward-over-reverse) or values of an outer tape
(reverse-over-reverse).  The backward sweep calls each primitive's vjp rules,
which are themselves written with primitives, so it runs unchanged on any of
those number types.  The tape belongs to the call that made it and is freed
with it.
"""
from __future__ import annotations

import weakref

import numpy as np

from . import primitives as P
from .arraybox import ArrayBox
from .core import (Box, Trace, as_rule_arg, is_complex, is_weak, keep_weak, match_dtype, primal_value,
                   refuse_complex)


class Node:
    """One recorded primitive application (or, with ``prim=None``, an input)."""

    __slots__ = ("prim", "args", "params", "ans", "parents", "weak", "cplx")

    def __init__(self, prim, args, params, ans, parents, weak=False):
        self.prim = prim
        self.args = args
        self.params = params
        self.ans = ans
        self.parents = parents  # [(argument position, parent Node)]
        self.weak = weak  # a parent is a Python float (see core.is_weak)
        d = getattr(ans, "dtype", None)  # (core.is_complex, inlined: one node per primitive applied)
        self.cplx = d.kind == "c" if d is not None else type(ans) is complex  # (see real_part)


# reverse traces whose function is running (innermost last): a forward-mode
# write must not mutate an array an enclosing tape may have recorded
RECORDING: list = []


class ReverseTrace(Trace):
    """A reverse-mode differentiation: records a tape, then sweeps it backward."""

    __slots__ = ("tape",)

    def __init__(self):
        super().__init__()
        self.tape: list[Node] = []

    def new_input(self, value) -> "Var":
        return Var(value, self, Node(None, (), None, value, ()))

    def process(self, prim, args, params):
        vals, parents, weak = [], [], False
        for i, a in enumerate(args):
            if type(a) is Var and a._trace is self:
                prim.vjp_rule(i)  # fail now, not in the backward sweep
                vals.append(a.value)
                parents.append((i, a._node))
                weak = weak or is_weak(a.value)
            else:
                vals.append(a)
        ans = prim(*vals, **params)
        if not prim.complex:
            refuse_complex(prim, ans, vals)
        out = keep_weak(ans, vals) if weak else ans  # see core.is_weak
        if weak:
            vals = [as_rule_arg(v) if is_var_of(a, self) else v for a, v in zip(args, vals)]
        node = Node(prim, vals, params, ans, parents, weak)
        self.tape.append(node)
        out = Var(out, self, node)
        if prim in _VIEWS and parents and (prim is not P.getitem or P.is_basic_index(params["idx"])):
            base = args[0]  # out is a view of base: writes go through, and base's writes reach it
            out._view = (base, prim, params)  # a strong reference, as an ndarray view keeps its base
            _add_view(base, out)
        return out

    def constant(self, value, like) -> "Var":
        """A value of this tape with no derivative of its own (np.zeros_like(x)):
        only what is written into it later is differentiated."""
        return Var(value, self, Node(None, (), None, value, ()))

    def write(self, var, idx, value, _via=None):
        """``var[idx] = value``, recorded as ``var = index_update(var, value, idx)``:
        the Var now stands for the new value, and the tape keeps the old one for
        the rules that read it.  numpy's aliasing is followed: a write through a
        view (``v = u[1:]``, a reshape, a transpose) reaches its base, and live
        views of the written array that overlap the write are re-taken from the
        new value, so later reads see it (with the right derivative)."""
        new = P.index_update(var, value, idx=idx)
        plain = primal_value(var.value)
        region = plain[_as_slices(idx)] if P.is_basic_index(idx) else plain  # a view: its bounds are what was written
        view = var._view
        base = view[0] if view is not None else None
        if base is not None:
            prim, params = view[1], view[2]
            if prim is P.getitem:
                self.write(base, params["idx"], new, _via=var)
            elif prim is P.reshape:
                self.write(base, (Ellipsis,), P.reshape(new, shape=np.shape(primal_value(base.value))), _via=var)
            elif prim is P.transpose:
                inverse = tuple(int(i) for i in np.argsort(params["axes"]))
                self.write(base, (Ellipsis,), P.transpose(new, axes=inverse), _via=var)
            else:
                raise ValueError("assignment destination is read-only (a broadcast view)")
            _retake(var, base)
        else:
            var.value, var._node = new.value, new._node
        _refresh_views(var, region, _via)

    def backward(self, seeds, free: bool = False) -> dict:
        """Sweep the tape backward from ``seeds`` ([(Node, cotangent)]).

        Returns the cotangents left at nodes that are not on the tape (the
        inputs), keyed by node.  With ``free`` the tape is consumed as it goes,
        so memory falls during the sweep.
        """
        cts: dict = {}
        for node, ct in seeds:
            cts[node] = ct if node not in cts else cts[node] + ct
        for node in reversed(self.tape):
            g = cts.pop(node, None)
            if g is not None:
                for i, parent in node.parents:
                    c = node.prim.vjps[i](g, node.ans, *node.args, **node.params)
                    if node.cplx and not parent.cplx:  # a real value used in a complex result
                        c = real_part(c)
                    if node.weak:
                        c = match_dtype(c, parent.ans)
                    cts[parent] = c if parent not in cts else cts[parent] + c
            if free:
                node.args = node.ans = node.parents = None
        if free:
            self.tape = []
        return cts


class Var(ArrayBox):
    """A value recorded on a tape."""

    __slots__ = ("value", "_node", "_view", "_views", "__weakref__")

    def __init__(self, value, trace: ReverseTrace, node: Node):
        self.value = value
        self._trace = trace
        self._node = node
        self._view = self._views = None

    _inner = property(lambda self: self.value)
    primal = property(lambda self: self.value)  # the value one level down, as for Dual

    def __repr__(self):
        return f"Var({self.value!r})"


def real_part(c):
    """The cotangent of a real value from a complex one: its real part (the
    transpose of the embedding x -> x + 0i); a real cotangent is its own."""
    if not is_complex(c):
        return c
    from .families.complex import real_p
    return real_p(c)


def is_var_of(x, trace) -> bool:
    return type(x) is Var and x._trace is trace


_VIEWS = frozenset({P.getitem, P.reshape, P.transpose, P.broadcast_to})


def _add_view(base, view):
    """Remember a view of base (weakly: a dead view costs nothing)."""
    views = base._views
    if views is None:
        views = base._views = []
    elif len(views) >= 16 and len(views) & (len(views) - 1) == 0:  # prune now and then
        views[:] = [r for r in views if r() is not None]
    views.append(weakref.ref(view))


def _as_slices(idx):
    """A basic index with each integer made a length-1 slice: x[...] is then a view."""
    return tuple(slice(i, i + 1 if i != -1 else None) if isinstance(i, (int, np.integer)) else i for i in idx)


def _retake(view, base):
    """Re-take ``view`` from its base's current value (recorded), in place."""
    _, prim, params = view._view
    r = prim(base, **params)
    view.value, view._node = r.value, r._node


def _refresh_views(var, region, via=None):
    """After a write into ``region`` (of var's old value), re-take the live views
    of var that overlap it (and, in turn, their views)."""
    if not var._views:
        return
    for ref in list(var._views):
        w = ref()
        if w is None or w is via or not np.may_share_memory(primal_value(w.value), region):
            continue
        old = primal_value(w.value)
        _retake(w, var)
        _refresh_views(w, old)
