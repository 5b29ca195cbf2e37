"""Coordinates of the hyperparameters: unconstrained values, K flat directions, columns.

A `Setup` tunes each continuous hyperparameter in an unconstrained space (`u`:
log for a positive lr, logit for a momentum in [0, 1); `hyperopt.transforms`),
where a gradient step cannot leave the valid range.  Its K tangent directions
are the entries of ``{name: u[name]}`` flattened in order (a per-layer lr is
several entries), and the history tables give each entry its own column.
These helpers map between the three; `hypergrad`, `tune` and `online` use them.
They read only ``setup.constraints`` and ``setup.dtype``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from autodiff.core import primal_value
from autodiff.dual import dual
from autodiff.tree import tree_flatten, tree_leaves, tree_map, tree_unflatten

from . import transforms

__all__ = ["to_unconstrained", "from_unconstrained", "d_value_d_u", "flat_hypergrad", "unflatten_like",
           "columns", "columns_of"]


def to_unconstrained(setup, h: dict, names) -> dict:
    """``{name: u}`` for ``names`` of the hyperparameters ``h`` (arrays of the setup's dtype)."""
    u = {}
    for k in names:
        v = tree_map(lambda a: np.asarray(a, dtype=setup.dtype), h[k])
        u[k] = transforms.forward(setup.constraints[k], v)
    return u


def from_unconstrained(setup, u: dict) -> dict:
    """The hyperparameters ``{name: value}`` of unconstrained values ``u`` (of any number type)."""
    return {k: transforms.inverse(setup.constraints[k], v) for k, v in u.items()}


def d_value_d_u(setup, u: dict) -> dict:
    """d(value)/d(unconstrained value), elementwise, for each hyperparameter."""
    out = {}
    for k, v in u.items():
        c = setup.constraints[k]
        out[k] = tree_map(lambda a, c=c: np.asarray(primal_value(
            transforms.inverse(c, dual(np.asarray(a, dtype=float), np.ones_like(a, dtype=float)))
            .tangents)).reshape(np.shape(a)), v)
    return out


def flat_hypergrad(values: dict, names) -> tuple[list, Any, list]:
    """The leaves of ``{name: values[name]}``, its structure and their sizes: the K
    directions are the leaves' entries, in order."""
    leaves, treedef = tree_flatten({k: values[k] for k in names})
    return leaves, treedef, [int(np.size(primal_value(x))) for x in leaves]


def unflatten_like(flat: np.ndarray, leaves: list, treedef) -> dict:
    """K flat values back into the structure `flat_hypergrad` gave."""
    out, o = [], 0
    for x in leaves:
        n = int(np.size(primal_value(x)))
        out.append(np.asarray(flat[o:o + n]).reshape(np.shape(primal_value(x))))
        o += n
    return tree_unflatten(treedef, out)


def columns(name: str, value) -> dict:
    """``{column: float}`` for one hyperparameter: ``name``, or ``name[i]`` for each
    entry of a pytree of several entries."""
    leaves = [np.ravel(np.asarray(primal_value(x), dtype=float)) for x in tree_leaves(value)]
    flat = np.concatenate(leaves) if leaves else np.zeros(0)
    if flat.size == 1:
        return {name: float(flat[0])}
    return {f"{name}[{i}]": float(v) for i, v in enumerate(flat)}


def columns_of(h: dict, names) -> dict:
    """`columns` of each of ``names``, in order."""
    out = {}
    for k in names:
        out.update(columns(k, h[k]))
    return out
