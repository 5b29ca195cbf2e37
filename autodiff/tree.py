"""Pytrees: nested dict / list / tuple / NamedTuple containers of array leaves.

``None`` is an empty subtree.  Dicts keep their insertion order.
"""
from __future__ import annotations

from typing import Any, Callable

_EMPTY = object()


class TreeDef:
    """The structure of a pytree, without its leaves."""

    __slots__ = ("kind", "meta", "children", "n_leaves")

    def __init__(self, kind, meta, children):
        self.kind, self.meta, self.children = kind, meta, children
        self.n_leaves = 1 if kind == "leaf" else sum(c.n_leaves for c in children)

    def __eq__(self, other):
        return (isinstance(other, TreeDef) and self.kind == other.kind and self.meta == other.meta
                and self.children == other.children)

    def __hash__(self):
        return hash((self.kind, self.meta, tuple(self.children)))

    def __repr__(self):
        if self.kind == "leaf":
            return "*"
        if self.kind == "none":
            return "None"
        inner = ", ".join(map(repr, self.children))
        if self.kind == "dict":
            inner = ", ".join(f"{k!r}: {c!r}" for k, c in zip(self.meta, self.children))
            return "{" + inner + "}"
        return f"{self.kind}({inner})"


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _flatten(x, leaves: list) -> TreeDef:
    if x is None:
        return TreeDef("none", None, ())
    if isinstance(x, dict):
        keys = tuple(x)
        return TreeDef("dict", keys, tuple(_flatten(x[k], leaves) for k in keys))
    if _is_namedtuple(x):
        return TreeDef("namedtuple", type(x), tuple(_flatten(v, leaves) for v in x))
    if isinstance(x, (list, tuple)):
        return TreeDef(type(x).__name__, type(x), tuple(_flatten(v, leaves) for v in x))
    leaves.append(x)
    return TreeDef("leaf", None, ())


def tree_flatten(tree) -> tuple[list, TreeDef]:
    """The leaves of ``tree`` in order, and its structure."""
    leaves: list = []
    return leaves, _flatten(tree, leaves)


def _unflatten(d: TreeDef, it):
    # (module level, not a closure: a recursive closure is a reference cycle
    # that would keep every leaf alive until the cyclic garbage collector runs)
    if d.kind == "leaf":
        return next(it)
    if d.kind == "none":
        return None
    kids = [_unflatten(c, it) for c in d.children]
    if d.kind == "dict":
        return dict(zip(d.meta, kids))
    if d.kind == "namedtuple":
        return d.meta(*kids)
    return d.meta(kids)


def tree_unflatten(treedef: TreeDef, leaves) -> Any:
    it = iter(leaves)
    out = _unflatten(treedef, it)
    if next(it, _EMPTY) is not _EMPTY:
        raise ValueError("too many leaves for the tree structure")
    return out


def tree_leaves(tree) -> list:
    return tree_flatten(tree)[0]


def tree_structure(tree) -> TreeDef:
    return tree_flatten(tree)[1]


def tree_map(f: Callable, tree, *rest) -> Any:
    """Apply ``f`` leafwise; ``rest`` are trees of the same structure."""
    leaves, treedef = tree_flatten(tree)
    others = []
    for r in rest:
        rl, rd = tree_flatten(r)
        if rd != treedef:
            raise ValueError(f"tree structures differ: {treedef} vs {rd}")
        others.append(rl)
    return tree_unflatten(treedef, [f(*xs) for xs in zip(leaves, *others)])
