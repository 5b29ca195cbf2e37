"""The primitive vocabulary: name -> implementation on plain arrays.

Each primitive is a `Primitive` object.  Its derivative rules are attached by
`autodiff.rules`; this module only says what each operation computes.  Static
settings (axis, shape, index, subscripts) are keyword parameters, already
normalized by `autodiff.ops` (axes are tuples of non-negative ints, shapes are
tuples, indices are tuples).

The implementations call numpy functions, which dispatch to cupy for cupy
arrays, so the same vocabulary serves both backends.
"""
from __future__ import annotations

import cmath
import math

import numpy as np

from .core import Primitive

REGISTRY: dict[str, Primitive] = {}


def primitive(name: str, impl, nondiff: bool = False) -> Primitive:
    if name in REGISTRY:
        raise ValueError(f"primitive {name!r} is already registered")
    p = REGISTRY[name] = Primitive(name, impl, nondiff)
    return p


# -- elementwise ---------------------------------------------------------------
neg = primitive("neg", np.negative)
add = primitive("add", np.add)
sub = primitive("sub", np.subtract)
mul = primitive("mul", np.multiply)
div = primitive("div", np.divide)
pow = primitive("pow", np.power)
maximum = primitive("maximum", np.maximum)
minimum = primitive("minimum", np.minimum)
exp = primitive("exp", np.exp)
log = primitive("log", np.log)
log1p = primitive("log1p", np.log1p)
expm1 = primitive("expm1", np.expm1)
sqrt = primitive("sqrt", np.sqrt)
sin = primitive("sin", np.sin)
cos = primitive("cos", np.cos)
tan = primitive("tan", np.tan)
tanh = primitive("tanh", np.tanh)
sinh = primitive("sinh", np.sinh)
cosh = primitive("cosh", np.cosh)
arctan = primitive("arctan", np.arctan)
arcsin = primitive("arcsin", np.arcsin)
arccos = primitive("arccos", np.arccos)
arctanh = primitive("arctanh", np.arctanh)
abs = primitive("abs", np.abs)
where = primitive("where", np.where)  # (cond, x, y); cond is a plain boolean array
cast = primitive("cast", lambda x, dtype: x.astype(dtype))
copy = primitive("copy", np.copy)  # a fresh array: what x.copy() and copy.deepcopy(x) give

def _nansafe_mul(a, b):
    """``a * b``, exactly 0 wherever ``a == 0`` (even where b is inf or nan).

    Multiplies, then writes 0 where ``a == 0``: one compare and a masked store
    that touches only the zeros, about 1.5x a plain product on large arrays
    (``a * where(a == 0, 0, b)`` makes no nan but costs 3x).  The product's
    0 * inf is computed and overwritten, so numpy's 'invalid value' warning is
    silenced for it (under `autodiff.jit` the replayed program still warns:
    errstate is not recorded).  The result has the dtype and shape of ``a * b``."""
    if not hasattr(a, "dtype"):  # a Python number (static under jit)
        if a != 0:
            return a * b
        return a * (np.zeros_like(b) if hasattr(b, "dtype") else 0.0)
    if not hasattr(b, "dtype") and cmath.isfinite(b):  # a finite Python number: no 0 * inf
        return a * b
    with np.errstate(invalid="ignore"):
        r = a * b
    zero = a == 0
    if not r.ndim:  # numpy gives a scalar, which cannot be written into
        return np.where(zero, 0, r)[()]
    if zero.shape != r.shape:
        zero = np.broadcast_to(zero, r.shape)
    r[zero] = 0
    return r


# a * b, exactly 0 where a == 0 even where b is inf or nan: how derivative rules
# multiply a (co)tangent by a partial that may be infinite (autodiff.rules.base)
nansafe_mul = primitive("nansafe_mul", _nansafe_mul)

# zero-derivative operations: they act on the primal and return plain arrays
sign = primitive("sign", np.sign, nondiff=True)
floor = primitive("floor", np.floor, nondiff=True)
ceil = primitive("ceil", np.ceil, nondiff=True)
rint = primitive("rint", np.rint, nondiff=True)

# -- reductions ------------------------------------------------------------------
sum = primitive("sum", lambda x, axis, keepdims=False: np.sum(x, axis=axis, keepdims=keepdims))
prod = primitive("prod", lambda x, axis, keepdims=False: np.prod(x, axis=axis, keepdims=keepdims))
max = primitive("max", lambda x, axis, keepdims=False: np.max(x, axis=axis, keepdims=keepdims))
min = primitive("min", lambda x, axis, keepdims=False: np.min(x, axis=axis, keepdims=keepdims))
cumsum = primitive("cumsum", lambda x, axis: np.cumsum(x, axis=axis))

# -- shape and indexing ---------------------------------------------------------
reshape = primitive("reshape", lambda x, shape: np.reshape(x, shape))
transpose = primitive("transpose", lambda x, axes: np.transpose(x, axes))
broadcast_to = primitive("broadcast_to", lambda x, shape: np.broadcast_to(x, shape))
concatenate = primitive("concatenate", lambda *xs, axis: np.concatenate(xs, axis=axis))
# pad_width is a tuple of (before, after) pairs; () for a 0-d x, which np.pad only takes as 0
pad = primitive("pad", lambda x, pad_width: np.pad(x, pad_width or 0))



def is_basic_index(idx: tuple) -> bool:
    """True when ``idx`` selects each element at most once (no index arrays)."""
    return all(i is None or i is Ellipsis or isinstance(i, (slice, int, np.integer)) for i in idx)


def selection_shape(shape: tuple, idx: tuple) -> tuple:
    """The shape of ``x[idx]`` for an x of ``shape`` (without touching x's data)."""
    return np.empty(shape, dtype=bool)[idx].shape


def _adopt(x, idx: tuple):
    """Let an index array that is being recorded (autodiff.jit) adopt a plain
    array it indexes, so the indexing is recorded too: numpy gives no hook for
    ``ndarray[recorded_index]``."""
    for i in idx:
        adopt = getattr(i, "adopt_constant", None)
        if adopt is not None:
            return x if hasattr(x, "adopt_constant") else adopt(x)
    return x


def _getitem(x, idx):
    return x[idx] if is_basic_index(idx) else _adopt(x, idx)[idx]


getitem = primitive("getitem", _getitem)


def _index_add(g, idx, shape):
    basic = is_basic_index(idx)
    if not basic:
        g = _adopt(g, idx)
    z = np.zeros_like(g, shape=shape)
    if basic:
        z[idx] = g
    else:
        np.add.at(z, idx, g)
    return z


# scatter-add: zeros of `shape` with g added at idx (the transpose of getitem)
index_add = primitive("index_add", _index_add)


def _writable_like(x, v, idx):
    """A fresh copy of x that can receive v at idx: recorded (autodiff.jit) when
    v or an index is, since a recorded value written into a plain array would
    be lost to the recording."""
    if not is_basic_index(idx):
        x = _adopt(x, idx)
    adopt = getattr(v, "adopt_constant", None)
    if adopt is not None and not hasattr(x, "adopt_constant"):
        x = adopt(np.asarray(x))
    return x.copy()


def _index_update(x, v, idx):
    out = _writable_like(x, v, idx)
    out[idx] = v
    return out


def _add_at(a, b, idx):
    out = _writable_like(a, b, idx)
    np.add.at(out, idx, b)
    return out


# a copy of a with b added at idx, unbuffered (numpy's np.add.at, as a function):
# repeated positions accumulate, in numpy's order, so the result is numpy's bit for bit
add_at = primitive("add_at", _add_at)


# a copy of x with v written at idx (numpy's x[idx] = v, as a function): how a
# write into a tape value is recorded
index_update = primitive("index_update", _index_update)

# -- products -------------------------------------------------------------------------
matmul = primitive("matmul", np.matmul)
einsum = primitive("einsum", lambda *xs, subscripts: np.einsum(subscripts, *xs, optimize=len(xs) > 2))

# -- linear algebra (matrices in the last two axes) -------------------------------------
solve = primitive("solve", np.linalg.solve)  # b is (..., n, k): vector b is handled in ops


def _inv(a, strict=True):
    """numpy's inverse; with ``strict=False`` (derivative rules) a singular
    matrix gives inf/nan entries instead of LinAlgError, as 1/0 does."""
    if strict:
        return np.linalg.inv(a)
    try:
        return np.linalg.inv(a)
    except np.linalg.LinAlgError:
        u, s, vt = np.linalg.svd(a)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.matmul(np.swapaxes(vt, -1, -2) / s[..., None, :], np.swapaxes(u, -1, -2))


def _adjugate(a):
    """adj(A) = det(A) A^-1, defined for every square A (singular included):
    with A = U S V^T, adj(A) = det(U) det(V) V adj(S) U^T, where adj(S) is
    diagonal with the products of all singular values but one."""
    if a.shape[-1] == 1:
        return np.ones_like(a)
    u, s, vt = np.linalg.svd(a)
    ones = np.ones_like(s[..., :1])
    before = np.cumprod(np.concatenate([ones, s[..., :-1]], axis=-1), axis=-1)
    after = np.cumprod(np.concatenate([ones, s[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    sign = np.linalg.det(u) * np.linalg.det(vt)
    return sign[..., None, None] * np.matmul(np.swapaxes(vt, -1, -2) * (before * after)[..., None, :],
                                             np.swapaxes(u, -1, -2))


inv = primitive("inv", _inv)
det = primitive("det", np.linalg.det)
adjugate = primitive("adjugate", _adjugate)
logabsdet = primitive("logabsdet", lambda a: np.linalg.slogdet(a)[1])
cholesky = primitive("cholesky", np.linalg.cholesky)
