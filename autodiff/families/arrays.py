"""Array manipulation and discrete calculus on traced values.

np.roll, np.repeat, np.tile, np.tril/np.triu, np.diag/np.diagflat,
np.diagonal, np.trace (any offset and axes), np.cumprod, np.diff,
np.gradient, np.kron, np.cross, np.convolve/np.correlate, np.interp, the
ufuncs np.remainder (np.mod) and np.fmod, and np.einsum's interleaved
(operand, sublist) form and repeated indices within one operand.

Two primitives: ``remainder`` and ``fmod`` (numpy's own values, which a
composite x - q y would only approximate).  They are piecewise linear, so
their rules multiply by constants: 1 in x, -q in y with q the quotient numpy
used (floor for remainder, truncation for fmod).  Everything else is a
composite of core primitives (getitem, index_add, concatenate, pad, reshape,
broadcast_to, where, matmul, mul, ...), exact and differentiable to any order
by construction.  In particular cumprod is a scan of multiplications (log2 n
doubling steps), so an exact zero gets the exact derivative (the product of
the others), never 0/0.
"""
from __future__ import annotations

import builtins
import string
import warnings

import numpy as np
from numpy.lib.array_utils import normalize_axis_index, normalize_axis_tuple

from .. import ops
from .. import primitives as P
from ..core import Box, is_complex, primal_value
from ..primitives import primitive
from ..rules.base import ONE, constant, defelementwise
from .complex import conj

_arrayish = ops._arrayish
_NO_VALUE = np._NoValue


def _take(x, axis, sl):
    """x[..., sl, ...] with ``sl`` (a slice or index array) at ``axis``."""
    return P.getitem(x, idx=(slice(None),) * axis + (sl,))


def _reverse(x):
    return P.getitem(x, idx=(slice(None, None, -1),))


def _float64(x):
    x = _arrayish(x)
    if isinstance(x, Box):
        return ops.astype(x, np.float64)
    return np.asarray(x, dtype=np.float64)


# -- remainder, fmod: primitives -------------------------------------------------------
remainder_p = primitive("remainder", np.remainder)
fmod_p = primitive("fmod", np.fmod)


def _like_ans(q, ans):
    return q.astype(np.result_type(constant(ans)))


def _d_remainder_dy(ans, x, y):
    # remainder(x, y) = x - q y with q = floor_divide(x, y), the quotient numpy's value uses
    return -_like_ans(np.floor_divide(constant(x), constant(y)), ans)


def _d_fmod_dy(ans, x, y):
    # fmod(x, y) = x - q y with q the truncated quotient; taken from the value itself,
    # (x - fmod) / y rounded, so that q agrees with numpy's rounding of the value
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.rint((constant(x) - constant(ans)) / constant(y))
    return -_like_ans(q, ans)


defelementwise(remainder_p, ONE, _d_remainder_dy)
defelementwise(fmod_p, ONE, _d_fmod_dy)


def remainder(x1, x2):
    return remainder_p(x1, x2)


def fmod(x1, x2):
    return fmod_p(x1, x2)


# -- roll, repeat, tile ------------------------------------------------------------------
def roll(a, shift, axis=None):
    a = _arrayish(a)
    if axis is None:
        return ops.reshape(roll(ops.ravel(a), shift, 0), a.shape)
    axes = normalize_axis_tuple(axis, a.ndim, allow_duplicate=True)
    pairs = np.broadcast(primal_value(shift), axes)
    if pairs.ndim > 1:
        raise ValueError("'shift' and 'axis' should be scalars or 1D sequences")
    shifts = [0] * a.ndim
    for sh, ax in pairs:
        shifts[ax] += int(sh)
    out = a
    for ax, s in enumerate(shifts):
        n = a.shape[ax]
        s %= n or 1
        if s:
            out = P.concatenate(_take(out, ax, slice(n - s, n)), _take(out, ax, slice(0, n - s)), axis=ax)
    return out


def repeat(a, repeats, axis=None):
    a = _arrayish(a)
    if axis is None:
        a, axis = ops.ravel(a), 0
    axis = normalize_axis_index(axis, a.ndim)
    n = a.shape[axis]
    r = np.asarray(primal_value(repeats))
    index = np.repeat(np.arange(n), r)  # numpy's own checks (negative, length mismatch)
    if r.size != 1:
        return _take(a, axis, index)
    k = int(r.reshape(-1)[0])
    shape = a.shape
    x = ops.reshape(a, shape[:axis + 1] + (1,) + shape[axis + 1:])
    x = ops.broadcast_to(x, shape[:axis + 1] + (k,) + shape[axis + 1:])
    return ops.reshape(x, shape[:axis] + (n * k,) + shape[axis + 1:])


def tile(A, reps):
    A = _arrayish(A)
    reps = primal_value(reps)
    tup = (int(reps),) if np.ndim(reps) == 0 else tuple(int(t) for t in reps)
    shape = (1,) * builtins.max(0, len(tup) - A.ndim) + A.shape
    tup = (1,) * (len(shape) - len(tup)) + tup
    if builtins.min(tup, default=0) < 0:
        raise ValueError("negative dimensions are not allowed")
    if all(t == 1 for t in tup):
        return ops.reshape(A, shape)
    interleaved = tuple(d for s in shape for d in (1, s))
    big = tuple(d for t, s in zip(tup, shape) for d in (t, s))
    out = ops.broadcast_to(ops.reshape(A, interleaved), big)
    return ops.reshape(out, tuple(t * s for t, s in zip(tup, shape)))


# -- triangles and diagonals ---------------------------------------------------------------
def _zero(m):
    return np.zeros((), dtype=np.result_type(primal_value(m)))


def tril(m, k=0):
    m = _arrayish(m)
    mask = np.tri(*m.shape[-2:], k=int(k), dtype=bool)
    return P.where(mask, m, _zero(m))


def triu(m, k=0):
    m = _arrayish(m)
    mask = np.tri(*m.shape[-2:], k=int(k) - 1, dtype=bool)
    return P.where(mask, _zero(m), m)


def diagonal(a, offset=0, axis1=0, axis2=1):
    a = _arrayish(a)
    nd = a.ndim
    if nd < 2:
        raise ValueError("diag requires an array of at least two dimensions")
    ax1, ax2 = normalize_axis_index(axis1, nd), normalize_axis_index(axis2, nd)
    if ax1 == ax2:
        raise ValueError("axis1 and axis2 cannot be the same")
    x = ops.moveaxis(a, (ax1, ax2), (-2, -1))
    n1, n2 = x.shape[-2:]
    offset = int(offset)
    length = builtins.max(0, builtins.min(n1 - builtins.max(0, -offset), n2 - builtins.max(0, offset)))
    i = np.arange(length)
    return P.getitem(x, idx=(Ellipsis, i + builtins.max(0, -offset), i + builtins.max(0, offset)))


def diag(v, k=0):
    v = _arrayish(v)
    k = int(k)
    if v.ndim == 1:
        n = v.shape[0]
        i = np.arange(n)
        rows, cols = (i, i + k) if k >= 0 else (i - k, i)
        return P.index_add(v, idx=(rows, cols), shape=(n + abs(k),) * 2)
    if v.ndim == 2:
        return diagonal(v, k)
    raise ValueError("Input must be 1- or 2-d.")


def diagflat(v, k=0):
    return diag(ops.ravel(_arrayish(v)), k)


def trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    ops._reject(out=out)
    a = _arrayish(a)
    if dtype is not None:
        a = ops.astype(a, dtype)
    return P.sum(diagonal(a, offset, axis1, axis2), axis=(a.ndim - 2,), keepdims=False)


# -- cumulative product, differences, gradient ------------------------------------------------
def cumprod(a, axis=None, dtype=None, out=None):
    """Inclusive scan of multiplications in ceil(log2 n) doubling steps
    (y[k] *= y[k - s] for s = 1, 2, 4, ...): products only, so the derivative
    is exact at zeros.  Values equal numpy's up to the order of rounding."""
    ops._reject(out=out)
    a = _arrayish(a)
    if dtype is not None:
        a = ops.astype(a, dtype)
    if axis is None:
        a, axis = ops.ravel(a), 0
    axis = normalize_axis_index(axis, a.ndim)
    n = a.shape[axis]
    y, s = a, 1
    while s < n:
        y = P.concatenate(_take(y, axis, slice(0, s)),
                          _take(y, axis, slice(s, n)) * _take(y, axis, slice(0, n - s)), axis=axis)
        s *= 2
    return y


def diff(a, n=1, axis=-1, prepend=_NO_VALUE, append=_NO_VALUE):
    if n == 0:
        return a
    if n < 0:
        raise ValueError("order must be non-negative but got " + repr(n))
    a = _arrayish(a)
    if a.ndim == 0:
        raise ValueError("diff requires input that is at least one dimensional")
    axis = normalize_axis_index(axis, a.ndim)
    parts = []
    for extra in (prepend, a, append):
        if extra is _NO_VALUE:
            continue
        extra = _arrayish(extra)
        if extra is not a and extra.ndim == 0:
            extra = ops.broadcast_to(extra, a.shape[:axis] + (1,) + a.shape[axis + 1:])
        parts.append(extra)
    if len(parts) > 1:
        a = ops.concatenate(parts, axis)
    for _ in range(n):
        m = a.shape[axis]
        a = _take(a, axis, slice(1, m)) - _take(a, axis, slice(0, builtins.max(m - 1, 0)))
    return a


def gradient(f, *varargs, axis=None, edge_order=1):
    """np.gradient, with numpy's formulas in numpy's order of operations.
    Spacings may be scalars or coordinate arrays, plain or traced; traced
    coordinates always use the non-uniform formula (numpy's shortcut for
    evenly spaced coordinates has the right value but not the right
    derivative in the coordinates)."""
    f = _arrayish(f)
    nd = f.ndim
    axes = tuple(range(nd)) if axis is None else normalize_axis_tuple(axis, nd)
    n = len(varargs)
    if n == 0:
        dx = [1.0] * len(axes)
    elif n == 1 and np.ndim(primal_value(varargs[0])) == 0:
        dx = [varargs[0]] * len(axes)
    elif n == len(axes):
        dx = []
        for ax, d in zip(axes, varargs):
            d = _arrayish(d)
            if d.ndim == 0:
                dx.append(d)
                continue
            if d.ndim != 1:
                raise ValueError("distances must be either scalars or 1d")
            if d.shape[0] != f.shape[ax]:
                raise ValueError("when 1d, distances must match the length of the corresponding dimension")
            if not isinstance(d, Box) and np.issubdtype(d.dtype, np.integer):
                d = d.astype(np.float64)
            step = diff(d)
            if not isinstance(d, Box) and (step == step[0]).all():
                step = step[0]
            dx.append(step)
    else:
        raise TypeError("invalid number of arguments")
    if edge_order > 2:
        raise ValueError("'edge_order' greater than 2 not supported")
    otype = np.result_type(primal_value(f))
    if not np.issubdtype(otype, np.inexact):
        f, otype = _float64(f), np.dtype(np.float64)

    outs = []
    for ax, h in zip(axes, dx):
        if f.shape[ax] < edge_order + 1:
            raise ValueError("Shape of array too small to calculate a numerical gradient, "
                             "at least (edge_order + 1) elements are required.")
        m = f.shape[ax]

        def at(lo, hi, ax=ax):
            return _take(f, ax, slice(lo, hi))

        uniform = np.ndim(primal_value(h)) == 0
        if uniform:
            interior = (at(2, m) - at(0, m - 2)) / (2. * h)
        else:
            dx1, dx2 = h[0:-1], h[1:]
            a = -(dx2) / (dx1 * (dx1 + dx2))
            b = (dx2 - dx1) / (dx1 * dx2)
            c = dx1 / (dx2 * (dx1 + dx2))
            shape = (1,) * ax + (-1,) + (1,) * (nd - ax - 1)
            a, b, c = (ops.reshape(w, shape) for w in (a, b, c))
            interior = a * at(0, m - 2) + b * at(1, m - 1) + c * at(2, m)
        if edge_order == 1:
            first = (at(1, 2) - at(0, 1)) / (h if uniform else h[0])
            last = (at(m - 1, m) - at(m - 2, m - 1)) / (h if uniform else h[-1])
        else:
            if uniform:
                a, b, c = -1.5 / h, 2. / h, -0.5 / h
            else:
                dx1, dx2 = h[0], h[1]
                a = -(2. * dx1 + dx2) / (dx1 * (dx1 + dx2))
                b = (dx1 + dx2) / (dx1 * dx2)
                c = - dx1 / (dx2 * (dx1 + dx2))
            first = a * at(0, 1) + b * at(1, 2) + c * at(2, 3)
            if uniform:
                a, b, c = 0.5 / h, -2. / h, 1.5 / h
            else:
                dx1, dx2 = h[-2], h[-1]
                a = (dx2) / (dx1 * (dx1 + dx2))
                b = - (dx2 + dx1) / (dx1 * dx2)
                c = (2. * dx2 + dx1) / (dx2 * (dx1 + dx2))
            last = a * at(m - 3, m - 2) + b * at(m - 2, m - 1) + c * at(m - 1, m)
        out = ops.concatenate([first, interior, last], ax)
        if np.result_type(primal_value(out)) != otype:  # numpy writes into an array of f's dtype
            out = ops.astype(out, otype)
        outs.append(out)
    return outs[0] if len(outs) == 1 else tuple(outs)


# -- products ---------------------------------------------------------------------------------
def kron(a, b):
    a, b = _arrayish(a), _arrayish(b)
    nda, ndb = a.ndim, b.ndim
    if nda == 0 or ndb == 0:
        return P.mul(a, b)
    nd = builtins.max(nda, ndb)
    sa = (1,) * (nd - nda) + a.shape
    sb = (1,) * (nd - ndb) + b.shape
    prod = P.mul(ops.reshape(a, tuple(d for s in sa for d in (s, 1))),
                 ops.reshape(b, tuple(d for s in sb for d in (1, s))))
    return ops.reshape(prod, tuple(p * q for p, q in zip(sa, sb)))


def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    if axis is not None:
        axisa, axisb, axisc = (axis,) * 3
    a, b = _arrayish(a), _arrayish(b)
    if a.ndim < 1 or b.ndim < 1:
        raise ValueError("At least one array has zero dimension")
    a = ops.moveaxis(a, normalize_axis_index(axisa, a.ndim, msg_prefix="axisa"), -1)
    b = ops.moveaxis(b, normalize_axis_index(axisb, b.ndim, msg_prefix="axisb"), -1)
    na, nb = a.shape[-1], b.shape[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise ValueError("incompatible dimensions for cross product\n(dimension must be 2 or 3)")
    if na == 2 or nb == 2:
        warnings.warn("Arrays of 2-dimensional vectors are deprecated. Use arrays of "
                      "3-dimensional vectors instead. (deprecated in NumPy 2.0)",
                      DeprecationWarning, stacklevel=3)
    a0, a1, b0, b1 = (P.getitem(x, idx=(Ellipsis, i)) for x, i in ((a, 0), (a, 1), (b, 0), (b, 1)))
    if na == 2 and nb == 2:
        return a0 * b1 - a1 * b0
    a2 = P.getitem(a, idx=(Ellipsis, 2)) if na == 3 else None
    b2 = P.getitem(b, idx=(Ellipsis, 2)) if nb == 3 else None
    if na == 2:
        c0, c1 = a1 * b2, -(a0 * b2)
    elif nb == 2:
        c0, c1 = -(a2 * b1), a2 * b0
    else:
        c0, c1 = a1 * b2 - a2 * b1, a2 * b0 - a0 * b2
    c2 = a0 * b1 - a1 * b0
    shape = np.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    cp = ops.stack([ops.broadcast_to(c, shape) for c in (c0, c1, c2)], axis=-1)
    return ops.moveaxis(cp, -1, normalize_axis_index(axisc, len(shape) + 1, msg_prefix="axisc"))


# -- convolution ---------------------------------------------------------------------------------
_MODES = {"valid": 0, "same": 1, "full": 2}


def _mode(mode) -> int:
    if isinstance(mode, str):
        if mode in _MODES:
            return _MODES[mode]
        if mode[:1].lower() in ("v", "s", "f"):
            raise ValueError("Use one of 'valid', 'same', or 'full' for convolve/correlate mode")
        raise ValueError(f"mode must be one of 'valid', 'same', or 'full' (got {mode!r})")
    if not isinstance(mode, (int, np.integer)):
        raise TypeError("convolve/correlate mode not understood")
    if mode not in (0, 1, 2):
        raise ValueError("integer convolve/correlate mode must be 0, 1, or 2")
    return int(mode)


def _windows(p, m):
    """W[r, c] = p[r + c] for r < m, c < len(p) - m + 1, from basic operations
    only: the rows of p broadcast to (m, N), laid out with a row stride of N + 1."""
    n = p.shape[0]
    flat = P.reshape(P.broadcast_to(p, shape=(m, n)), shape=(m * n,))
    skewed = P.reshape(P.pad(flat, pad_width=((0, m),)), shape=(m, n + 1))
    return P.getitem(skewed, idx=(slice(None), slice(0, n - m + 1)))


def _full_correlation(long, kernel):
    """out[i] = sum_r kernel[r] long[i + r - (m - 1)], i < n + m - 1 (zero padded);
    ``kernel`` is not longer than ``long``."""
    m = kernel.shape[0]
    if m == 1:
        return long * kernel
    return P.matmul(kernel, _windows(P.pad(long, pad_width=((m - 1, m - 1),)), m))


def _vectors(a, v, fn):
    a, v = _arrayish(a), _arrayish(v)
    if fn == "convolve":
        a, v = ops.atleast_1d(a), ops.atleast_1d(v)
    elif a.ndim < 1 or v.ndim < 1:
        raise ValueError("object of too small depth for desired array")
    if a.ndim > 1 or v.ndim > 1:
        raise ValueError("object too deep for desired array")
    if a.shape[0] == 0:
        raise ValueError("a cannot be empty" if fn == "convolve" else "first array argument cannot be empty")
    if v.shape[0] == 0:
        raise ValueError("v cannot be empty" if fn == "convolve" else "second array argument cannot be empty")
    return a, v


def convolve(a, v, mode="full"):
    a, v = _vectors(a, v, "convolve")
    mode = _mode(mode)
    if v.shape[0] > a.shape[0]:
        a, v = v, a
    return _crop(_full_correlation(a, _reverse(v)), a.shape[0], v.shape[0], mode)


def correlate(a, v, mode="valid"):
    """np.correlate(a, v) = np.convolve(a, conj(v)[::-1]) in every mode (numpy
    conjugates the second argument; a real one is taken as it is)."""
    if is_complex(v):
        v = conj(v)
    a, v = _vectors(a, v, "correlate")
    mode = _mode(mode)
    if v.shape[0] > a.shape[0]:  # slide rev(a) over rev(v); numpy centres 'same' one place later
        full = _full_correlation(_reverse(v), _reverse(a))
        return _crop(full, v.shape[0], a.shape[0], mode, same_start=a.shape[0] // 2)
    return _crop(_full_correlation(a, v), a.shape[0], v.shape[0], mode)


def _crop(full, n, m, mode, same_start=None):
    """numpy's 'same' (length n) or 'valid' (length n - m + 1) part of a full
    result, n >= m."""
    if mode == 2:
        return full
    if mode == 1:
        start, length = ((m - 1) // 2 if same_start is None else same_start), n
    else:
        start, length = m - 1, n - m + 1
    return P.getitem(full, idx=(slice(start, start + length),))


# -- interpolation ---------------------------------------------------------------------------------
def interp(x, xp, fp, left=None, right=None, period=None):
    """np.interp, differentiable in x, fp, xp, left and right (and period).

    The segment of each x is chosen on the values; inside it the value is
    numpy's slope * (x - xp[j]) + fp[j].  At a knot the derivative in x is the
    slope of the segment to its right; outside [xp[0], xp[-1]] (and at
    xp[-1]) it is 0.  Results are float64, as numpy's."""
    if any(np.iscomplexobj(primal_value(v)) for v in (x, xp, fp)):
        raise TypeError("np.interp of complex values is not differentiable here; interpolate the real "
                        "and imaginary parts separately")
    x, xp, fp = _float64(x), _float64(xp), _float64(fp)
    if xp.ndim != 1 or fp.ndim != 1:
        if period is not None:
            raise ValueError("Data points must be 1-D sequences")
        raise ValueError("object too deep for desired array" if builtins.max(xp.ndim, fp.ndim) > 1
                         else "object of too small depth for desired array")
    if xp.shape[0] != fp.shape[0]:
        raise ValueError("fp and xp are not of the same length.")
    if xp.shape[0] == 0:
        raise ValueError("array of sample points is empty")
    if period is not None:
        if period == 0:
            raise ValueError("period must be a non-zero value")
        period = abs(period)
        left = right = None
        x, xp = remainder(x, period), remainder(xp, period)
        order = np.argsort(primal_value(xp))
        xp, fp = P.getitem(xp, idx=(order,)), P.getitem(fp, idx=(order,))
        xp = ops.concatenate([P.getitem(xp, idx=(slice(-1, None),)) - period, xp,
                              P.getitem(xp, idx=(slice(0, 1),)) + period])
        fp = ops.concatenate([P.getitem(fp, idx=(slice(-1, None),)), fp, P.getitem(fp, idx=(slice(0, 1),))])
    n = xp.shape[0]
    left = P.getitem(fp, idx=(0,)) if left is None else _float64(left)
    right = P.getitem(fp, idx=(n - 1,)) if right is None else _float64(right)
    xv, xpv = primal_value(x), primal_value(xp)
    below, above = xv < xpv[0], xv > xpv[n - 1]
    if n == 1:
        return P.where(below, left, P.where(above, right, P.getitem(fp, idx=(0,))))
    j = np.clip(np.searchsorted(xpv, xv, side="right") - 1, 0, n - 2)
    x_j, x_j1 = P.getitem(xp, idx=(j,)), P.getitem(xp, idx=(j + 1,))
    f_j, f_j1 = P.getitem(fp, idx=(j,)), P.getitem(fp, idx=(j + 1,))
    at_end = xv == xpv[n - 1]
    sloped = ~(below | above | at_end)
    # the slope only where it is used: no 0/0 from a clipped segment of repeated points
    slope = (f_j1 - f_j) / P.where(sloped, x_j1 - x_j, np.float64(1.0))
    val = slope * (x - x_j) + f_j  # at a knot, exactly f_j (with the right segment's slope)
    # where that gives nan (infinite fp), numpy retries from the right end, then takes f_j;
    # at a knot numpy takes f_j whatever the slope
    bad = sloped & np.isnan(primal_value(val)) & ~np.isnan(xv)  # a nan x stays nan
    val = P.where(bad, slope * (x - x_j1) + f_j1, val)
    val = P.where(bad & np.isnan(primal_value(val)) & (primal_value(f_j) == primal_value(f_j1)), f_j, val)
    val = P.where((xv == primal_value(x_j)) & (primal_value(val) != primal_value(f_j)), f_j, val)
    return P.where(below, left, P.where(above, right, P.where(at_end, P.getitem(fp, idx=(n - 1,)), val)))


# -- einsum: sublists and repeated indices ----------------------------------------------------------
_LABELS = string.ascii_uppercase + string.ascii_lowercase  # numpy's order for sublist integers


def _sublist(s) -> str:
    items = s.tolist() if isinstance(s, np.ndarray) else list(s)
    out = []
    for i in items:
        if i is Ellipsis:
            out.append("...")
        elif isinstance(i, (int, np.integer)) and 0 <= i < len(_LABELS):
            out.append(_LABELS[int(i)])
        else:
            raise ValueError(f"subscript is not within the valid range [0, {len(_LABELS)})")
    return "".join(out)


def _from_sublists(args):
    args = list(args)
    operands, terms = args[0::2], args[1::2]
    out = None
    if len(operands) > len(terms):  # a trailing output sublist
        out = operands.pop()
    spec = ",".join(_sublist(t) for t in terms)
    if out is not None:
        spec += "->" + _sublist(out)
    return spec, operands


def einsum(*args, optimize=False, **kwargs):
    """np.einsum: the string form goes to autodiff.ops.einsum unchanged; the
    interleaved form einsum(a, [0, 1], b, [1, 2], [0, 2]) is turned into
    subscripts first.  An index repeated within one operand ('ii->i', 'ii')
    takes that operand's diagonal first."""
    if not args:
        raise TypeError("einsum() requires at least one operand")
    if isinstance(args[0], str):
        subscripts, operands = args[0], list(args[1:])
    else:
        subscripts, operands = _from_sublists(args)
    terms = subscripts.replace(" ", "").partition("->")[0].split(",")
    if all(len(set(t.replace("...", ""))) == len(t.replace("...", "")) for t in terms):
        return ops.einsum(subscripts, *operands, optimize=optimize, **kwargs)
    operands = [_arrayish(o) for o in operands]
    terms, out = ops.expand_einsum(subscripts, [o.shape for o in operands])
    for i, t in enumerate(terms):
        while len(set(t)) != len(t):
            c = next(c for c in t if t.count(c) > 1)
            p = t.index(c)
            q = t.index(c, p + 1)
            if operands[i].shape[p] != operands[i].shape[q]:
                raise ValueError(f"dimensions in operand {i} for collapsing index {c!r} don't match "
                                 f"({operands[i].shape[p]} != {operands[i].shape[q]})")
            operands[i] = diagonal(operands[i], 0, p, q)
            t = t[:p] + t[p + 1:q] + t[q + 1:] + c
        terms[i] = t
    return ops.einsum(",".join(terms) + "->" + out, *operands, optimize=optimize, **kwargs)


UFUNCS = {np.remainder: remainder, np.fmod: fmod}

FUNCTIONS = {
    np.roll: roll, np.repeat: repeat, np.tile: tile, np.tril: tril, np.triu: triu,
    np.diag: diag, np.diagflat: diagflat, np.diagonal: diagonal, np.trace: trace,
    np.cumprod: cumprod, np.diff: diff, np.gradient: gradient, np.kron: kron, np.cross: cross,
    np.convolve: convolve, np.correlate: correlate, np.interp: interp, np.einsum: einsum,
}
