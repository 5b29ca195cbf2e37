"""Range transforms: hyperparameters <-> unconstrained reals.

A hypergradient step taken on the unconstrained value ``u`` can never leave
the hyperparameter's range, because the hyperparameter is ``forward(u)``:

=====================  ==========================  ==============================
constraint             to_unconstrained            from_unconstrained
=====================  ==========================  ==============================
"positive" (0, inf)    log x                       exp u
"nonnegative" [0, inf) log(expm1 x)  (= x + log(-expm1(-x)))   softplus u
"unit" (0, 1)          logit x = log x - log1p(-x)  sigmoid u
"unit_closed_open"     logit x                     sigmoid u
None                   x                           u
=====================  ==========================  ==============================

[0, 1) uses the same logit / sigmoid pair as (0, 1): no smooth bijection maps
the real line onto a half-open interval, so the closed end is reached only in
the limit: 0 maps to -inf and -inf maps back to exactly 0 (and likewise 0 for
"nonnegative" and "positive").  A hyperparameter at 0 round-trips exactly but
a finite hypergradient step cannot move it off 0; start a tuned momentum or
weight decay at a small positive value instead.

The images are clipped to the representable part of each range (at most the
largest double below 1 for the unit intervals, at least the smallest normal
number for the open lower ends, at most the largest finite number), so even
an enormous step in floating point gives a valid value.  Clipping only acts
where exp / sigmoid would otherwise round onto a boundary, so values and
derivatives elsewhere are exact.

Everything is numpy arithmetic on the values (Python floats, arrays, Duals,
tape values, per-parameter pytrees of them), hence differentiable.  The
sigmoid is evaluated from exp(u) for u < 0 and from exp(-u) for u >= 0 (each
side on a guarded input), so it neither overflows nor loses the relative
accuracy of small values.
"""
from __future__ import annotations

import numpy as np

from autodiff import stop_gradient
from autodiff.ops import softplus
from autodiff.tree import tree_leaves, tree_map

__all__ = ["to_unconstrained", "from_unconstrained", "forward", "inverse", "sigmoid", "logit",
           "softplus", "softplus_inverse", "is_valid"]


def _finfo(x):
    dt = np.result_type(stop_gradient(x))
    return np.finfo(dt if np.issubdtype(dt, np.floating) else np.float64)


def sigmoid(u):
    """1 / (1 + exp(-u)), accurate for large |u| in both directions."""
    neg = stop_gradient(u) < 0
    e_neg = np.exp(np.where(neg, u, 0.0))      # exp(u) on the negative side
    e_pos = np.exp(-np.where(neg, 0.0, u))     # exp(-u) on the other
    return np.where(neg, e_neg / (1.0 + e_neg), 1.0 / (1.0 + e_pos))


def logit(x):
    """log(x / (1 - x)), accurate near 0 and near 1."""
    return np.log(x) - np.log1p(-x)


def softplus_inverse(x):
    """log(exp(x) - 1), without overflow for large x."""
    return x + np.log(-np.expm1(-x))


def _exp(u):
    fi = _finfo(u)
    return np.clip(np.exp(u), fi.tiny, fi.max)


def _softplus(u):
    return np.minimum(softplus(u), _finfo(u).max)


def _sigmoid_open(u):
    fi = _finfo(u)
    return np.clip(sigmoid(u), fi.tiny, 1.0 - fi.epsneg)


def _sigmoid_closed_open(u):
    return np.minimum(sigmoid(u), 1.0 - _finfo(u).epsneg)


def _identity(x):
    return x


# constraint -> (to unconstrained, from unconstrained)
TRANSFORMS = {
    "positive": (np.log, _exp),
    "nonnegative": (softplus_inverse, _softplus),
    "unit": (logit, _sigmoid_open),
    "unit_closed_open": (logit, _sigmoid_closed_open),
    None: (_identity, _identity),
}


def forward(constraint, x):
    """One hyperparameter value (or pytree of them) -> its unconstrained value."""
    f = TRANSFORMS[constraint][0]
    with np.errstate(divide="ignore"):  # a value on the closed end maps to -inf
        return tree_map(f, x)


def inverse(constraint, u):
    """An unconstrained value (or pytree) -> the hyperparameter value."""
    with np.errstate(over="ignore", under="ignore"):
        return tree_map(TRANSFORMS[constraint][1], u)


def _constraints(opt) -> dict:
    c = getattr(opt, "constraints", None)
    if c is None:
        raise TypeError(f"{opt!r} has no `constraints` dict")
    for name, kind in c.items():
        if kind not in TRANSFORMS:
            raise ValueError(f"unknown constraint {kind!r} for {name!r}; "
                             f"expected one of {list(TRANSFORMS)}")
    return c


def _check_names(opt, values: dict, constraints: dict) -> None:
    unknown = [k for k in values if k not in constraints]
    if unknown:
        raise ValueError(f"{type(opt).__name__} has no hyperparameter {unknown[0]!r} "
                         f"with a constraint; known: {list(constraints)}")


def to_unconstrained(opt, hparams: dict | None = None) -> dict:
    """``{name: unconstrained value}`` for ``hparams`` (default: ``opt.defaults``).

    ``opt`` is anything with a ``constraints`` dict: an optimizer, a schedule,
    a scheduled optimizer.  Only the names given are transformed.
    """
    constraints = _constraints(opt)
    values = dict(opt.defaults) if hparams is None else hparams
    _check_names(opt, values, constraints)
    return {k: forward(constraints[k], v) for k, v in values.items()}


def from_unconstrained(opt, raw: dict) -> dict:
    """The inverse of `to_unconstrained`: ``{name: hyperparameter value}``."""
    constraints = _constraints(opt)
    _check_names(opt, raw, constraints)
    return {k: inverse(constraints[k], u) for k, u in raw.items()}


def is_valid(constraint, x) -> bool:
    """Whether every value of ``x`` (a pytree) is finite and inside ``constraint``'s range."""
    for leaf in tree_leaves(x):
        v = np.asarray(stop_gradient(leaf), dtype=float)
        if not np.all(np.isfinite(v)):
            return False
        inside = {"positive": v > 0, "nonnegative": v >= 0, "unit": (v > 0) & (v < 1),
                  "unit_closed_open": (v >= 0) & (v < 1), None: True}[constraint]
        if not np.all(inside):
            return False
    return True
