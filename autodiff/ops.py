"""Differentiable numpy: numpy-compatible functions built on the primitives.

These are what ``np.<name>`` calls on a `Dual` or tape value dispatch to (see
`autodiff.numpy_api`), and what derivative rules and composites are written
with.  They normalize numpy's many calling conventions (negative axes, ``-1``
in shapes, implicit einsum outputs, vector right-hand sides) into the static
parameters the primitives expect, and they build composites (mean, var,
logsumexp, softmax, stack, take, ...) from primitives.
"""
from __future__ import annotations

import builtins
import math
import string

import numpy as np

from . import primitives as P
from .core import Box, is_complex, primal_value

stop_gradient = primal_value

# -- elementwise ----------------------------------------------------------------
add, subtract, multiply, divide, power = P.add, P.sub, P.mul, P.div, P.pow
negative, exp, log, log1p, expm1, sqrt = P.neg, P.exp, P.log, P.log1p, P.expm1, P.sqrt
sin, cos, tan, tanh, sinh, cosh = P.sin, P.cos, P.tan, P.tanh, P.sinh, P.cosh
arctan, arcsin, arccos, arctanh = P.arctan, P.arcsin, P.arccos, P.arctanh
abs, floor, ceil, rint = P.abs, P.floor, P.ceil, P.rint
maximum, minimum, matmul = P.maximum, P.minimum, P.matmul
inv, cholesky = P.inv, P.cholesky

LN2 = math.log(2.0)
LN10 = math.log(10.0)


def sign(x):
    """Piecewise constant on real values; z / |z| (0 at 0) on complex ones, as numpy."""
    if not is_complex(x):
        return P.sign(x)
    zero = primal_value(x) == 0
    return P.where(zero, 0.0, x / P.where(zero, 1.0, abs(x)))


def square(x):
    return x * x


def reciprocal(x):
    return 1.0 / x


def exp2(x):
    return exp(x * LN2)


def log2(x):
    return log(x) / LN2


def log10(x):
    return log(x) / LN10


def logaddexp(x, y):
    """log(exp(x) + exp(y)) = hi + log1p(exp(lo - hi)), with hi the larger
    argument (chosen on primal values): smooth at x == y to every order (a
    form with maximum and abs loses the curvature there), no overflow."""
    first = primal_value(x) > primal_value(y)
    hi, lo = P.where(first, x, y), P.where(first, y, x)
    return hi + log1p(exp(lo - hi))


def sigmoid(x):
    """The logistic function, 0.5 (1 + tanh(x/2)): no overflow for any x."""
    return 0.5 * (tanh(0.5 * x) + 1.0)


def softplus(x):
    """log(1 + exp(x)), stable for large |x| and smooth at 0 (see logaddexp)."""
    return logaddexp(x, 0.0)


def clip(x, a_min=None, a_max=None, out=None, *, min=None, max=None):
    _reject(out=out)
    a_min = min if a_min is None else a_min  # numpy >= 2.1 also names them min=, max=
    a_max = max if a_max is None else a_max
    if a_min is not None:
        x = maximum(x, a_min)
    if a_max is not None:
        x = minimum(x, a_max)
    return x


def where(condition, x=None, y=None):
    if x is None and y is None:
        return np.where(primal_value(condition))
    c = primal_value(condition)
    if not hasattr(c, "dtype"):
        c = np.asarray(c)
    return P.where(c if c.dtype == bool else c.astype(bool), x, y)


def copy(a, order="K", subok=False):
    """A fresh array with the same derivative (an immutable Python float is its own copy)."""
    return a if type(primal_value(a)) is float else P.copy(a)


# complex numbers: the primitives live in autodiff/families/complex.py (with the
# convention); on a real value real and conj are the value, imag is zero
def real(x):
    return _complex().real(x)


def imag(x):
    return _complex().imag(x)


def conj(x):
    return _complex().conj(x)


def _complex():
    from .families import complex as c
    return c


def _abs2(x):
    """|x|**2: x * x, or re(x * conj(x)) for complex x."""
    return x * x if not is_complex(x) else real(x * conj(x))


def astype(x, dtype, copy_=True):
    dtype = np.dtype(dtype)
    if dtype.kind not in "biufc":
        raise TypeError(f"astype({dtype}) would drop the derivative: only numeric dtypes are differentiable")
    if not np.issubdtype(dtype, np.inexact):  # integers and booleans carry no tangent
        return primal_value(x).astype(dtype)
    if dtype == x.dtype:
        return copy(x) if copy_ else x
    return P.cast(x, dtype=dtype)


# -- axis and shape normalization ----------------------------------------------
def _ndim(x):
    return np.ndim(x) if not isinstance(x, Box) else x.ndim


def normalize_axes(axis, ndim) -> tuple:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    out = []
    for a in axis:
        if not -ndim <= a < builtins.max(ndim, 1):
            raise np.exceptions.AxisError(a, ndim)
        out.append(int(a) % builtins.max(ndim, 1))
    return tuple(sorted(out))


def _one_axis(axis, ndim) -> int:
    return normalize_axes(axis, ndim)[0]


def _reject(**kwargs):
    for k, v in kwargs.items():
        if v is not None and v is not False:
            raise NotImplementedError(f"the {k}= argument is not supported on differentiable arrays")


# -- reductions -------------------------------------------------------------------
def sum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    _reject(out=out, initial=initial, where=where)
    if dtype is not None:
        a = astype(a, dtype, copy_=False)
    return P.sum(a, axis=normalize_axes(axis, _ndim(a)), keepdims=keepdims)


def prod(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    _reject(out=out, initial=initial, where=where)
    if dtype is not None:
        a = astype(a, dtype, copy_=False)
    return P.prod(a, axis=normalize_axes(axis, _ndim(a)), keepdims=keepdims)


def max(a, axis=None, out=None, keepdims=False, initial=None, where=None):
    _reject(out=out, initial=initial, where=where)
    return P.max(a, axis=normalize_axes(axis, _ndim(a)), keepdims=keepdims)


def min(a, axis=None, out=None, keepdims=False, initial=None, where=None):
    _reject(out=out, initial=initial, where=where)
    return P.min(a, axis=normalize_axes(axis, _ndim(a)), keepdims=keepdims)


def _count(a, axis):
    shape = np.shape(primal_value(a))
    return math.prod(shape[i] for i in normalize_axes(axis, len(shape)))


def mean(a, axis=None, dtype=None, out=None, keepdims=False, where=None):
    return sum(a, axis, dtype, out, keepdims, where=where) / _count(a, axis)


_mean = mean


def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, where=None, mean=None, correction=None):
    _reject(out=out, where=where, mean=mean, correction=correction)
    d = a - _mean(a, axis, dtype, keepdims=True)
    return sum(_abs2(d), axis, keepdims=keepdims) / (_count(a, axis) - ddof)


def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, where=None, mean=None, correction=None):
    return sqrt(var(a, axis, dtype, out, ddof, keepdims, where, mean, correction))


def cumsum(a, axis=None, dtype=None, out=None):
    _reject(out=out)
    if dtype is not None:
        a = astype(a, dtype, copy_=False)
    if axis is None:
        a, axis = ravel(a), 0
    return P.cumsum(a, axis=_one_axis(axis, _ndim(a)))


def logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) along `axis`, shifted by the (constant) maximum for stability."""
    m = stop_gradient(max(x, axis, keepdims=True))
    m = np.where(np.isfinite(m), m, 0.0).astype(m.dtype)
    out = log(sum(exp(x - m), axis, keepdims=True)) + m
    return out if keepdims else squeeze(out, normalize_axes(axis, _ndim(x)))


def softmax(x, axis=-1):
    e = exp(x - stop_gradient(max(x, axis, keepdims=True)))
    return e / sum(e, axis, keepdims=True)


def log_softmax(x, axis=-1):
    return x - logsumexp(x, axis, keepdims=True)


# -- shapes -----------------------------------------------------------------------------
def _resolve_shape(shape, size) -> tuple:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        shape = tuple(size // known if s == -1 else s for s in shape)
    if math.prod(shape) != size:
        raise ValueError(f"cannot reshape array of size {size} into shape {shape}")
    return shape


def reshape(a, newshape=None, order="C", shape=None):
    if order != "C":
        raise NotImplementedError("only order='C' reshapes are differentiable")
    shape = _resolve_shape(newshape if shape is None else shape, math.prod(np.shape(primal_value(a))))
    return a if shape == a.shape else P.reshape(a, shape=shape)


def ravel(a, order="C"):
    return reshape(a, (-1,), order)


def transpose(a, axes=None):
    n = _ndim(a)
    axes = tuple(reversed(range(n))) if axes is None else tuple(int(i) % n for i in axes)
    return a if axes == tuple(range(n)) else P.transpose(a, axes=axes)


def swapaxes(a, axis1, axis2):
    n = _ndim(a)
    perm = list(range(n))
    i, j = axis1 % n, axis2 % n
    perm[i], perm[j] = perm[j], perm[i]
    return transpose(a, perm)


def moveaxis(a, source, destination):
    n = _ndim(a)
    src = [s % n for s in np.atleast_1d(source)]
    dst = [d % n for d in np.atleast_1d(destination)]
    order = [i for i in range(n) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(a, order)


def _arrayish(a):
    """``a`` itself if it is a box or an array, else an array: ``np.asarray(a)``
    for Python numbers and lists of them, ``np.stack`` for a list holding boxes
    (``np.hstack(([traced_scalar], arr))``)."""
    if isinstance(a, Box) or hasattr(a, "shape"):
        return a
    if isinstance(a, (list, tuple)) and any(isinstance(e, (Box, list, tuple)) for e in a):
        return stack([_arrayish(e) for e in a])
    return np.asarray(a)


def expand_dims(a, axis):
    a = _arrayish(a)
    shape = list(a.shape)
    for ax in normalize_axes(axis, len(shape) + len(np.atleast_1d(axis))):
        shape.insert(ax, 1)
    return reshape(a, shape)


def squeeze(a, axis=None):
    a = _arrayish(a)
    shape = a.shape
    axes = tuple(i for i, s in enumerate(shape) if s == 1) if axis is None else normalize_axes(axis, len(shape))
    for i in axes:
        if shape[i] != 1:
            raise ValueError("cannot select an axis to squeeze out which has size not equal to one")
    return reshape(a, tuple(s for i, s in enumerate(shape) if i not in axes))


def atleast_1d(a):
    a = _arrayish(a)
    return a if _ndim(a) >= 1 else reshape(a, (1,))


def atleast_2d(a):
    a = _arrayish(a)
    return a if _ndim(a) >= 2 else reshape(a, (1,) * (2 - _ndim(a)) + tuple(np.shape(primal_value(a))))


def broadcast_to(a, shape, subok=False):
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return a if np.shape(primal_value(a)) == shape else P.broadcast_to(a, shape=shape)


def concatenate(arrays, axis=0, out=None, dtype=None, casting=None):
    _reject(out=out, dtype=dtype, casting=casting)
    arrays = list(arrays)
    if axis is None:
        arrays, axis = [ravel(a) for a in arrays], 0
    if len(arrays) == 1:
        return arrays[0]
    return P.concatenate(*arrays, axis=_one_axis(axis, _ndim(arrays[0])))


def stack(arrays, axis=0, out=None, dtype=None, casting=None):
    arrays = list(arrays)
    axis = _one_axis(axis, _ndim(arrays[0]) + 1)
    return concatenate([expand_dims(a, axis) for a in arrays], axis, out, dtype, casting)


def vstack(tup, dtype=None, casting=None):
    return concatenate([atleast_2d(a) for a in tup], 0, dtype=dtype, casting=casting)


def hstack(tup, dtype=None, casting=None):
    arrays = [atleast_1d(a) for a in tup]
    return concatenate(arrays, 0 if _ndim(arrays[0]) == 1 else 1, dtype=dtype, casting=casting)


def split(ary, indices_or_sections, axis=0):
    axis = _one_axis(axis, _ndim(ary))
    n = ary.shape[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        if n % indices_or_sections:
            raise ValueError("array split does not result in an equal division")
        bounds = list(range(0, n + 1, n // indices_or_sections))
    else:
        bounds = [0, *indices_or_sections, n]
    pre = (slice(None),) * axis
    return [getitem(ary, pre + (slice(lo, hi),)) for lo, hi in zip(bounds[:-1], bounds[1:])]


def pad(array, pad_width, mode="constant", constant_values=0):
    if mode != "constant":
        raise NotImplementedError(f"np.pad mode={mode!r} has no derivative rule (only 'constant')")
    n = _ndim(array)
    widths = tuple(tuple(int(w) for w in row) for row in np.broadcast_to(np.asarray(pad_width), (n, 2)))
    out = P.pad(array, pad_width=widths)
    if np.any(constant_values):
        mask = np.pad(np.zeros(array.shape, dtype=array.dtype), widths, constant_values=1)
        out = out + mask * constant_values
    return out


# -- indexing ---------------------------------------------------------------------------
def _index_part(i):
    if isinstance(i, Box):
        if np.issubdtype(i.dtype, np.inexact):
            raise TypeError("arrays used as indices must be of integer or boolean type")
        return primal_value(i)
    if isinstance(i, list):
        return np.asarray(i)
    return i


def normalize_index(idx) -> tuple:
    """An index as a tuple of plain parts (lists become arrays, boxes their primal)."""
    return tuple(_index_part(i) for i in (idx if isinstance(idx, tuple) else (idx,)))


def getitem(a, idx):
    return P.getitem(a, idx=normalize_index(idx))


def take(a, indices, axis=None, out=None, mode=None):
    _reject(out=out, mode=mode)
    if axis is None:
        return getitem(ravel(a), np.asarray(indices))
    return getitem(a, (slice(None),) * _one_axis(axis, _ndim(a)) + (np.asarray(indices),))


def _full_index(indices, axis, ndim):
    """An advanced index equal to numpy's take_along_axis(..., indices, axis)."""
    idx = []
    for d in range(ndim):
        if d == axis:
            idx.append(indices)
        else:
            shape = [1] * ndim
            shape[d] = indices.shape[d]
            idx.append(np.arange(indices.shape[d]).reshape(shape))
    return tuple(idx)


def take_along_axis(arr, indices, axis=-1):
    if axis is None:
        arr, axis = ravel(arr), 0
    axis = _one_axis(axis, _ndim(arr))
    indices = primal_value(indices)
    if not hasattr(indices, "shape"):
        indices = np.asarray(indices)
    full = np.broadcast_shapes(tuple(1 if d == axis else s for d, s in enumerate(arr.shape)),
                               tuple(1 if d == axis else s for d, s in enumerate(indices.shape)))
    indices = np.broadcast_to(indices, full[:axis] + indices.shape[axis:axis + 1] + full[axis + 1:])
    arr = broadcast_to(arr, full[:axis] + arr.shape[axis:axis + 1] + full[axis + 1:])
    return getitem(arr, _full_index(indices, axis, _ndim(arr)))


def unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None, *,
           equal_nan=True, **kwargs):
    """np.unique: the sorted distinct values, each with the derivative of its
    first occurrence (at a tie the function is not differentiable; this is the
    convention)."""
    if axis is not None:
        raise NotImplementedError("differentiable np.unique supports axis=None only")
    flat = primal_value(ravel(ar))
    vals, first, inverse, counts = np.unique(flat, return_index=True, return_inverse=True,
                                             return_counts=True, equal_nan=equal_nan, **kwargs)
    out = getitem(ravel(ar), first)
    extra = [x for x, want in [(first, return_index), (inverse.reshape(np.shape(primal_value(ar)))
                                                       if np.ndim(primal_value(ar)) else inverse,
                                                       return_inverse), (counts, return_counts)] if want]
    return (out, *extra) if extra else out


def full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None):
    """np.full_like: a traced array (of every level of ``a``) with the fill's
    derivative in every entry (zero for a plain fill)."""
    if not isinstance(fill_value, Box):
        return _like(fill_value)(a, dtype, order, subok, shape)
    shape = np.shape(primal_value(a)) if shape is None else shape
    dtype = np.dtype(dtype if dtype is not None else np.result_type(primal_value(a)))
    fill = astype(fill_value, dtype, copy_=False)
    if not isinstance(fill, Box):  # an integer dtype: no derivative to carry
        return np.full_like(primal_value(a), fill, dtype, order, subok, shape)
    return P.copy(broadcast_to(fill, shape))


_PLAIN_WRITE = ("writing a derivative-carrying value into a plain array (np.copyto, "
                "np.full_like(plain, traced), plain[...] = traced, plain.fill(traced), out=plain) "
                "would drop its derivative; allocate the array from a traced value instead: "
                "np.zeros_like(traced), np.empty_like(traced), np.full_like(traced, v), traced.copy()")


def copyto(dst, src, casting="same_kind", where=True):
    if not isinstance(dst, Box):
        raise TypeError(_PLAIN_WRITE)
    if where is not True:
        src = P.where(np.asarray(primal_value(where), dtype=bool), src, dst)
    dst[...] = src


def scatter_at(add: bool, a, indices, b=None):
    """np.add.at / np.subtract.at: unbuffered, so repeated indices accumulate."""
    if b is None:
        raise TypeError("np.add.at needs a value to add")
    if not isinstance(a, Box):
        raise TypeError(_PLAIN_WRITE)
    idx = normalize_index(indices)
    a[...] = P.add_at(a, b if add else negative(b), idx=idx)  # numpy's order of additions: bit for bit


# -- allocation: from a traced value, a traced value ------------------------------------
def _allocate(a, make, dtype, shape):
    """A box of every level of ``a``, with zero derivative, around make(plain)."""
    inner = a._inner
    value = _allocate(inner, make, dtype, shape) if isinstance(inner, Box) else make(inner, dtype, shape)
    return a._trace.constant(value, a)


def _like(fill):
    def like(a, dtype=None, order="K", subok=True, shape=None, **kwargs):
        make = lambda p, dt, sh: (np.empty_like(p, dt, order, subok, sh) if fill is None
                                  else np.full_like(p, fill, dt, order, subok, sh))
        if not isinstance(a, Box) or not np.issubdtype(np.dtype(dtype or a.dtype), np.inexact):
            return make(primal_value(a), dtype, shape)  # no derivative to carry (integers)
        return _allocate(a, make, dtype, shape)
    return like


zeros_like, ones_like, empty_like = _like(0), _like(1), _like(None)


def sort(a, axis=-1, kind=None, order=None):
    if is_complex(a):
        raise NotImplementedError("np.sort of complex values has no derivative rule (numpy orders them "
                                  "lexicographically); sort np.real, np.imag or np.abs of them instead")
    return take_along_axis(a, np.argsort(primal_value(a), axis=axis, kind=kind), axis)


# -- products -----------------------------------------------------------------------------
def expand_einsum(subscripts: str, shapes) -> tuple[list, str]:
    """Explicit, ellipsis-free terms and output ('ij,jk->ik' gives (['ij', 'jk'], 'ik'))
    for operands of the given shapes; '...' becomes letters, right-aligned."""
    subscripts = subscripts.replace(" ", "")
    ins, arrow, out = subscripts.partition("->")
    terms = ins.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: {len(terms)} subscripts for {len(shapes)} operands")
    free = iter(c for c in string.ascii_letters if c not in subscripts)
    n_ell = builtins.max([len(s) - len(t.replace("...", "")) for t, s in zip(terms, shapes) if "..." in t],
                         default=0)
    ell = "".join(next(free) for _ in range(n_ell))
    expanded = []
    for t, s in zip(terms, shapes):
        if "..." in t:
            k = len(s) - len(t.replace("...", ""))
            t = t.replace("...", ell[n_ell - k:])
        if len(t) != len(s):
            raise ValueError(f"einsum: subscripts {t!r} do not match an operand of shape {s}")
        expanded.append(t)
    if not arrow:
        letters = "".join(expanded)
        out = ell + "".join(sorted(c for c in set(letters) - set(ell) if letters.count(c) == 1))
    else:
        out = out.replace("...", ell)
    return expanded, out


def einsum(subscripts, *operands, optimize=None, **kwargs):
    _reject(**kwargs)
    if not isinstance(subscripts, str):
        raise NotImplementedError("einsum's interleaved (operand, sublist) form is not supported")
    terms, out = expand_einsum(subscripts, [np.shape(primal_value(o)) for o in operands])
    for t in terms:
        if len(set(t)) != len(t):
            raise NotImplementedError(f"einsum with a repeated index within one operand ({t!r}) "
                                      "has no derivative rule")
    return P.einsum(*operands, subscripts=",".join(terms) + "->" + out)


def tensordot(a, b, axes=2):
    na, nb = _ndim(a), _ndim(b)
    if isinstance(axes, (int, np.integer)):
        ax_a, ax_b = list(range(na - axes, na)), list(range(axes))
    else:
        ax_a, ax_b = [list(np.atleast_1d(x)) for x in axes]
    ax_a, ax_b = [x % na for x in ax_a], [x % nb for x in ax_b]
    letters = iter(string.ascii_letters)
    sa = [next(letters) for _ in range(na)]
    sb = [next(letters) for _ in range(nb)]
    for i, j in zip(ax_a, ax_b):
        sb[j] = sa[i]
    out = [c for i, c in enumerate(sa) if i not in ax_a] + [c for j, c in enumerate(sb) if j not in ax_b]
    return P.einsum(a, b, subscripts=f"{''.join(sa)},{''.join(sb)}->{''.join(out)}")


def dot(a, b, out=None):
    _reject(out=out)
    if _ndim(a) == 0 or _ndim(b) == 0:
        return a * b
    if _ndim(b) <= 2:
        return matmul(a, b)
    return tensordot(a, b, axes=([-1], [-2]))


def vdot(a, b):
    return sum(conj(ravel(a)) * ravel(b))  # numpy's vdot conjugates its first argument


def inner(a, b):
    return a * b if _ndim(a) == 0 or _ndim(b) == 0 else tensordot(a, b, axes=([-1], [-1]))


def outer(a, b, out=None):
    _reject(out=out)
    return reshape(a, (-1, 1)) * reshape(b, (1, -1))


def trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    _reject(out=out, dtype=dtype)
    if offset or (axis1, axis2) != (0, 1) or _ndim(a) != 2:
        raise NotImplementedError("differentiable trace supports 2-D arrays with offset=0 only")
    n = builtins.min(a.shape)
    return sum(getitem(a, (np.arange(n), np.arange(n))))


# -- linear algebra ---------------------------------------------------------------------
def solve(a, b):
    if _ndim(b) == 1:
        return getitem(P.solve(a, reshape(b, (-1, 1))), (Ellipsis, 0))
    return P.solve(a, b)


_SlogdetResult = type(np.linalg.slogdet(np.eye(1)))  # numpy's named tuple (sign, logabsdet)


def slogdet(a):
    """(sign, log|det a|) as numpy's named tuple: the sign is a constant, log|det|
    is differentiable."""
    return _SlogdetResult(np.linalg.slogdet(primal_value(a))[0], P.logabsdet(a))


def det(a):
    return P.det(a)


def _keep(r, x, axes, keepdims):
    if not keepdims:
        return r
    return reshape(r, tuple(1 if i in axes else n for i, n in enumerate(x.shape)))


def _vector_norm(x, ord, axis):
    if ord is None or ord == 2:
        return sqrt(sum(_abs2(x), axis=axis))
    if isinstance(ord, str):
        raise ValueError(f"Invalid norm order {ord!r} for vectors")
    if ord == np.inf:
        return max(abs(x), axis=axis)
    if ord == -np.inf:
        return min(abs(x), axis=axis)
    if ord == 0:  # the number of nonzeros: piecewise constant, derivative 0
        return np.linalg.norm(primal_value(x), 0, axis=axis)
    if ord == 1:
        return sum(abs(x), axis=axis)
    return sum(abs(x) ** ord, axis=axis) ** (1.0 / ord)


def norm(x, ord=None, axis=None, keepdims=False):
    """np.linalg.norm.  Vector norms: any ord; matrix norms: 'fro', 1, -1, inf,
    -inf.  The matrix 2-norm, -2 and 'nuc' need singular values and raise
    NotImplementedError (they never fall back to another norm)."""
    nd = _ndim(x)
    if axis is None:
        if ord is None:  # the 2-norm of the flattened array, whatever its rank
            r = sqrt(sum(_abs2(x)))
            return reshape(r, (1,) * nd) if keepdims else r
        if nd not in (1, 2):
            raise ValueError("Improper number of dimensions to norm.")
        axis = tuple(range(nd))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    axes = tuple(normalize_axes(a, nd)[0] for a in axes)
    if len(axes) == 1:
        return _keep(_vector_norm(x, ord, axes[0]), x, axes, keepdims)
    if len(axes) != 2:
        raise ValueError("Improper number of dimensions to norm.")
    row, col = axes
    if row == col:
        raise ValueError("Duplicate axes given.")
    if ord is None or ord == "fro":
        r = sqrt(sum(_abs2(x), axis=axes))
    elif ord in (1, -1):
        ext = max if ord == 1 else min
        r = ext(sum(abs(x), axis=row), axis=col - (col > row))
    elif ord in (np.inf, -np.inf):
        ext = max if ord == np.inf else min
        r = ext(sum(abs(x), axis=col), axis=row - (row > col))
    elif ord in (2, -2, "nuc"):
        raise NotImplementedError(
            f"np.linalg.norm with ord={ord!r} on a matrix needs its singular values, which have no "
            "derivative rule yet; use ord='fro', 1 or inf, or apply it to .primal for a constant")
    else:
        raise ValueError(f"Invalid norm order {ord!r} for matrices")
    return _keep(r, x, axes, keepdims)
