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

from .core import Box, Trace, as_rule_arg, is_weak, keep_weak, match_dtype, refuse_complex


class Node:
    """One recorded primitive application (or, with ``prim=None``, an input)."""

    __slots__ = ("prim", "args", "params", "ans", "parents", "weak")

    def __init__(self, prim, args, params, ans, parents, weak=False):
        self.prim = prim
        self.args = args
        self.params = params
        self.ans = ans
        self.parents = parents  # [(argument position, parent Node)]
        self.weak = weak  # a parent is a Python float (see core.is_weak)


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
        ans = refuse_complex(prim(*vals, **params), prim)
        out = keep_weak(ans, vals) if weak else ans  # see core.is_weak
        if weak:
            vals = [as_rule_arg(v) if is_var_of(a, self) else v for a, v in zip(args, vals)]
        node = Node(prim, vals, params, ans, parents, weak)
        self.tape.append(node)
        return Var(out, self, node)

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
                    if node.weak:
                        c = match_dtype(c, parent.ans)
                    cts[parent] = c if parent not in cts else cts[parent] + c
            if free:
                node.args = node.ans = node.parents = None
        if free:
            self.tape = []
        return cts


class Var(Box):
    """A value recorded on a tape."""

    __slots__ = ("value", "_node")

    def __init__(self, value, trace: ReverseTrace, node: Node):
        self.value = value
        self._trace = trace
        self._node = node

    _inner = property(lambda self: self.value)
    primal = property(lambda self: self.value)  # the value one level down, as for Dual

    def __repr__(self):
        return f"Var({self.value!r})"


def is_var_of(x, trace) -> bool:
    return type(x) is Var and x._trace is trace


__all__ = ["Box", "Node", "ReverseTrace", "Var", "is_var_of"]
