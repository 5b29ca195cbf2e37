"""Argument checks shared by hyperopt's modules.

* `check_range`: every number a constructor or a function takes (a Python
  number, an array, a `Dual`, a pytree of them) is checked by it, so a bad
  value raises the same ValueError, naming the argument, everywhere;
* `check_choice`: a setting that is one of a few strings;
* `float_dtype`, `scalar_loss`: dtypes and loss values;
* `renamed`, `renamed_kwargs` and `renamed_attribute`: an argument, attribute
  or value that has a new name keeps working under the old one, with a
  DeprecationWarning the first time it is used.
"""
from __future__ import annotations

import functools
import math
import operator
import os
import sys
import warnings
from typing import Any

import numpy as np

from autodiff import stop_gradient
from autodiff.tree import tree_leaves

__all__ = ["check_range", "check_choice", "float_dtype", "scalar_loss", "renamed",
           "renamed_kwargs", "renamed_attribute", "outside_stacklevel"]


def _is_tree(value) -> bool:
    """A per-parameter hyperparameter is given as a container (dict, list, tuple)."""
    return isinstance(value, (dict, list, tuple))


def fmt(x) -> str:
    """A hyperparameter for messages and repr: numbers as Python numbers, Duals by their primal."""
    if _is_tree(x):
        return repr(x)
    x = stop_gradient(x)
    if isinstance(x, (np.generic, np.ndarray)) and np.ndim(x) == 0:
        return repr(x.item())
    return repr(x)


def _is_real_number(x) -> bool:
    return not isinstance(x, (bool, np.bool_)) and isinstance(
        x, (int, float, np.integer, np.floating))


def check_range(name: str, value, lo: float = 0.0, hi: float = math.inf,
                lo_open: bool = False, hi_open: bool = True, *, finite: bool = True,
                scalar: bool = False):
    """Raise ValueError naming ``name`` unless every leaf of ``value`` is a real
    number (or an array or `Dual` of them) in the interval from ``lo`` to
    ``hi`` (``lo_open`` / ``hi_open`` exclude the ends) and finite (nan is
    never accepted; ``finite=False`` lets ±inf through to the range test).

    ``scalar=True`` accepts only a single real number (a Python or numpy int
    or float, not a bool, an array or a container) and returns it as a Python
    float; otherwise ``value`` is returned unchanged.
    """
    if scalar and not _is_real_number(value):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    for leaf in tree_leaves(value):
        try:
            x = np.asarray(stop_gradient(leaf), dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a real number, got {fmt(value)}") from None
        if np.any(np.isnan(x)) or (finite and not np.all(np.isfinite(x))):
            raise ValueError(f"{name} must be finite, got {fmt(value)}")
        bad_lo = np.any(x <= lo) if lo_open else np.any(x < lo)
        bad_hi = np.any(x >= hi) if hi_open else np.any(x > hi)
        if bad_lo or bad_hi:
            if hi == math.inf:
                what = f"> {lo:g}" if lo_open else f">= {lo:g}"
            else:
                what = f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
            raise ValueError(f"{name} must be {what}, got {fmt(value)}")
    return float(value) if scalar else value


def check_choice(name: str, value, choices: tuple):
    """Raise ValueError naming ``name`` unless ``value`` is one of ``choices``; returns it."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def float_dtype(dtype: Any, what: str = "dtype") -> np.dtype:
    """``dtype`` as an ``np.dtype`` if it is float32 or float64; otherwise a
    ValueError naming ``what``.  ``None`` means float64, as in numpy.
    (Integer and bool values cannot carry a derivative; float16 underflows
    Adam's eps and small squared gradients to 0; complex and object arrays are
    not what the models and optimizers compute in.)"""
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be float32 or float64 (np.float32 / np.float64), "
                         f"got {dtype!r}") from None
    if dt.kind != "f" or dt.itemsize not in (4, 8):
        raise ValueError(f"{what} must be float32 or float64 (np.float32 / np.float64), "
                         f"got {dt.name}")
    return np.dtype(dt.name)  # native byte order


def scalar_loss(value, what: str = "model.loss"):
    """``value`` as a 0-d scalar (of whatever number type it is).

    A loss of shape (1,) or (1, 1) is accepted, as `autodiff.grad` accepts it,
    and reshaped to () (the same number, the same derivative), so everything
    downstream sees one shape.  A loss with another number of elements (a
    per-example loss, say) raises ValueError naming ``what`` and the shape.
    """
    if value is None:
        raise ValueError(f"{what} must return a scalar (one element), got None")
    shape = np.shape(value)
    if int(np.prod(shape)) != 1:
        raise ValueError(f"{what} must return a scalar (one element), got shape {shape}; "
                         "reduce it with np.mean")
    return value if shape == () else np.reshape(value, ())


# -- renamed arguments ---------------------------------------------------------------

_warned: set = set()
_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def outside_stacklevel() -> int:
    """The ``stacklevel`` with which a warning issued by the caller of this
    function points at the first frame outside hyperopt: the user's line,
    however many of hyperopt's functions lie in between."""
    f, level = sys._getframe(1), 1
    while f is not None and os.path.abspath(f.f_code.co_filename).startswith(_PACKAGE):
        f, level = f.f_back, level + 1
    return level


def renamed(old: str, new: str, where: str) -> None:
    """Say, once per process for each ``(where, old)``, that ``old`` is now ``new``
    (a DeprecationWarning pointing at the user's line)."""
    if (where, old) in _warned:
        return
    _warned.add((where, old))
    warnings.warn(f"{where}: {old} is deprecated, use {new} (same meaning)",
                  DeprecationWarning, stacklevel=outside_stacklevel())


def renamed_kwargs(**renames: str):
    """Decorator: each keyword ``old=`` of ``renames`` (``old="new"``) still works as
    ``new=``, with `renamed`'s warning; giving both raises TypeError."""
    def wrap(fn):
        where = fn.__qualname__.replace(".__init__", "")

        @functools.wraps(fn)
        def inner(*args, **kwargs):
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{where}: got both {new}= and its old name {old}=")
                    renamed(f"{old}=", f"{new}=", where)
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)
        return inner
    return wrap


def renamed_attribute(old: str, new: str) -> property:
    """A read-only property ``old`` that returns the attribute ``new`` (a dotted
    path such as ``"state.step"`` works), with `renamed`'s warning."""
    get_new = operator.attrgetter(new)

    def get(self):
        renamed(old, new, type(self).__name__)
        return get_new(self)
    return property(get, doc=f"Deprecated name of ``{new}``.")
