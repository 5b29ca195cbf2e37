"""Fused dual kernels on the CPU: numba loops where numpy would make temporaries.

A forward-mode `Dual` holds ``primal`` (shape S) and ``tangents`` (shape
``(K,) + S``).  The numpy composition of an elementwise op is ``y = f(x)``,
``d = f'(x)``, ``ty = d[None] * t``: several full-size temporaries and passes
over memory.  The kernels here compute the tangents of all K directions in one
pass, reading each input once.  `autodiff.backend.engine` installs them as
fast paths of the forward trace.  Every entry point checks its arguments and
falls back to the numpy reference (the ``*_reference`` functions, which mirror
the derivative rules in `autodiff.rules`) for anything the kernels do not
cover: dtypes other than float32/float64, non-C-contiguous or overlapping
arrays, broadcasting, or kernels switched off (`autodiff.backend.set_kernels`,
AUTODIFF_DISABLE_NUMBA=1).

API (both return new arrays unless ``out``/``out_t`` are given)::

    unary_jvp(name, x, t, out=None, out_t=None, strategy=None) -> (y, ty)   # UNARY_OPS
    binary_jvp(name, a, ta, b, tb, out=None, out_t=None) -> (y, ty)        # mul, div

Kernels are compiled lazily (first call per dtype) with ``cache=True``,
``fastmath=False`` and ``error_model='numpy'`` (a division by zero gives inf or
nan, as in numpy, instead of raising).

* Unary ops, two strategies.  The pip build of llvmlite has no SVML, so inside
  a numba loop exp/tanh/... are scalar libm calls, slower than numpy's SIMD
  ufuncs.  "hybrid" lets numpy compute ``y = f(x)`` (one SIMD pass, no
  temporary) and one numba pass computes ``f'`` from ``(x, y)`` with plain
  arithmetic, for all K tangents; "fused" does everything in one numba pass,
  for ops where f is an instruction (sqrt, abs) or where numpy has no SIMD
  version either (sin, cos in float64).  `UNARY_STRATEGY` holds the measured
  choice per op and dtype (benchmarks/kernels.py; BENCHMARKS.md, Kernels).
* The ops are memory-bound and the tangent stream (read t, write ty: 2K
  arrays) is the same either way; the kernels only remove f'(x)'s
  temporaries.  neg and exp have none, and sinh/cosh (and sin/cos in float32)
  need a second transcendental for f', so they keep the numpy path.
* Loops are blocked (512 elements): ``f'`` of a block goes into an L1 buffer,
  then one vectorized loop per tangent direction, over block views indexed
  from 0 (see the note at the unary kernels).
* ``parallel=True`` is not used: the engine's arrays (~1e4 elements) cannot
  amortize the thread wake-ups, and a neighbour process on the other core
  takes most of its gain at 1e6 elements.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from . import kernels_enabled, numba_available

__all__ = [
    "UNARY_OPS", "BINARY_OPS",
    "unary_jvp", "unary_jvp_reference", "binary_jvp", "binary_jvp_reference",
]

if numba_available():
    from numba import njit as _numba_njit

    def _kernel(fn):
        return _numba_njit(cache=True, fastmath=False, error_model="numpy", nogil=True)(fn)

    def _inline(fn):
        return _numba_njit(inline="always", fastmath=False, error_model="numpy")(fn)
else:  # the module still imports; every entry point then runs its numpy reference
    def _kernel(fn):
        return fn

    _inline = _kernel

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_B = 512  # block length: a block's f'(x) stays in L1 while the K tangents stream past


# --------------------------------------------------------------------------
# numpy references: the same formulas as the rules in autodiff/rules/elementwise.py
# --------------------------------------------------------------------------

_UNARY_NUMPY = {  # name: (f, f' from (x, y = f(x)))
    "neg": (np.negative, lambda x, y: -1.0),
    "exp": (np.exp, lambda x, y: y),
    "log": (np.log, lambda x, y: 1.0 / x),
    "log1p": (np.log1p, lambda x, y: 1.0 / (x + 1.0)),
    "expm1": (np.expm1, lambda x, y: y + 1.0),
    "sqrt": (np.sqrt, lambda x, y: 0.5 / y),
    "sin": (np.sin, lambda x, y: np.cos(x)),
    "cos": (np.cos, lambda x, y: -np.sin(x)),
    "tan": (np.tan, lambda x, y: 1.0 + y * y),
    "tanh": (np.tanh, lambda x, y: 1.0 - y * y),
    "sinh": (np.sinh, lambda x, y: np.cosh(x)),
    "cosh": (np.cosh, lambda x, y: np.sinh(x)),
    "arctan": (np.arctan, lambda x, y: 1.0 / (1.0 + x * x)),
    "arcsin": (np.arcsin, lambda x, y: 1.0 / np.sqrt(1.0 - x * x)),
    "arccos": (np.arccos, lambda x, y: -1.0 / np.sqrt(1.0 - x * x)),
    "arctanh": (np.arctanh, lambda x, y: 1.0 / (1.0 - x * x)),
    "abs": (np.abs, lambda x, y: np.sign(x)),
}
UNARY_OPS = tuple(_UNARY_NUMPY)
BINARY_OPS = ("mul", "div")


def unary_jvp_reference(name: str, x, t, out=None, out_t=None):
    """numpy reference: ``y = f(x)``, ``ty = f'(x)[None] * t`` (the rule's formula)."""
    f, df = _UNARY_NUMPY[name]
    y = f(x, out=out) if out is not None else f(x)
    if t is None:
        return y, None
    d = df(x, y)
    d = d[None] if np.ndim(d) else d
    with np.errstate(invalid="ignore"):  # NaN-safe, as the kernels: a zero tangent gives 0
        ty = np.where(t == 0, t, d * t)
    if out_t is not None:
        out_t[...] = ty
        return y, out_t
    return y, ty.astype(np.result_type(x, t), copy=False)


def binary_jvp_reference(name: str, a, ta, b, tb, out=None, out_t=None):
    """numpy reference for mul and div (the rules' formulas; either tangent may be None)."""
    if name == "mul":
        y = np.multiply(a, b, out=out)
        terms = [None if ta is None else ta * b, None if tb is None else a * tb]
    elif name == "div":
        y = np.divide(a, b, out=out)
        with np.errstate(invalid="ignore", divide="ignore"):  # NaN-safe, as the kernel
            terms = [None if ta is None else np.where(ta == 0, ta, ta * (1.0 / b)),
                     None if tb is None else np.where(tb == 0, tb, tb * (-y / b))]
    else:
        raise ValueError(f"binary_jvp: unknown op {name!r}; one of {BINARY_OPS}")
    terms = [s for s in terms if s is not None]
    if not terms:
        return y, None
    ty = terms[0] if len(terms) == 1 else terms[0] + terms[1]
    if out_t is not None:
        out_t[...] = ty
        ty = out_t
    return y, ty


# --------------------------------------------------------------------------
# elementwise kernels
# --------------------------------------------------------------------------
# Per op: _f_<op>(x) the value, _d_<op>(x, y, one) the derivative from x and y.
# Constants come as `one` (typed like the data) so float32 stays float32.

@_inline
def _f_neg(x):
    return -x


@_inline
def _d_neg(x, y, one):
    return -one


@_inline
def _f_exp(x):
    return math.exp(x)


@_inline
def _d_exp(x, y, one):
    return y


@_inline
def _f_log(x):
    return math.log(x)


@_inline
def _d_log(x, y, one):
    return one / x


@_inline
def _f_log1p(x):
    return math.log1p(x)


@_inline
def _d_log1p(x, y, one):
    return one / (x + one)


@_inline
def _f_expm1(x):
    return math.expm1(x)


@_inline
def _d_expm1(x, y, one):
    return y + one


@_inline
def _f_sqrt(x):
    return math.sqrt(x)


@_inline
def _d_sqrt(x, y, one):
    return (one / (one + one)) / y


@_inline
def _f_sin(x):
    return math.sin(x)


@_inline
def _d_sin(x, y, one):
    return math.cos(x)


@_inline
def _f_cos(x):
    return math.cos(x)


@_inline
def _d_cos(x, y, one):
    return -math.sin(x)


@_inline
def _f_tan(x):
    return math.tan(x)


@_inline
def _d_tan(x, y, one):
    return one + y * y


@_inline
def _f_tanh(x):
    return math.tanh(x)


@_inline
def _d_tanh(x, y, one):
    return one - y * y


@_inline
def _f_sinh(x):
    return math.sinh(x)


@_inline
def _d_sinh(x, y, one):
    return math.cosh(x)


@_inline
def _f_cosh(x):
    return math.cosh(x)


@_inline
def _d_cosh(x, y, one):
    return math.sinh(x)


@_inline
def _f_arctan(x):
    return math.atan(x)


@_inline
def _d_arctan(x, y, one):
    return one / (one + x * x)


@_inline
def _f_arcsin(x):
    return math.asin(x)


@_inline
def _d_arcsin(x, y, one):
    return one / math.sqrt(one - x * x)


@_inline
def _f_arccos(x):
    return math.acos(x)


@_inline
def _d_arccos(x, y, one):
    return -one / math.sqrt(one - x * x)


@_inline
def _f_arctanh(x):
    return math.atanh(x)


@_inline
def _d_arctanh(x, y, one):
    return one / (one - x * x)


@_inline
def _f_abs(x):
    return abs(x)


@_inline
def _d_abs(x, y, one):
    # numpy's sign: 1, -1, 0 at 0, nan at nan
    if x > 0:
        return one
    if x < 0:
        return -one
    return x * (one - one)


@_inline
def _fused_block(f, d, x, y, buf, m, one):
    for i in range(m):
        xi = x[i]
        yi = f(xi)
        y[i] = yi
        buf[i] = d(xi, yi, one)


@_inline
def _deriv_block(d, x, y, buf, m, one):
    for i in range(m):
        buf[i] = d(x[i], y[i], one)


@_inline
def _scale_block(buf, t, ty, s, m):
    for k in range(t.shape[0]):
        tk = t[k, s:s + m]
        tyk = ty[k, s:s + m]
        for i in range(m):  # NaN-safe: a zero tangent gives 0 even where f' is inf (a select: vectorizes)
            v = buf[i] * tk[i]
            tyk[i] = v if tk[i] != 0 else tk[i]


# Two kernels, switching on an op code once per block of _B elements (so each
# inner loop is op-specific and vectorizes).  Blocks are taken as views and
# indexed from 0: with `for i in range(s, e)` numba's negative-index
# wraparound checks stay in the loop and stop LLVM vectorizing it (5x slower).  One kernel per op would compile
# each op separately, ~0.7 s apiece (~40 s for every op in both dtypes), where
# these two take ~2 s per dtype; numba caches only top-level functions, so
# the ops cannot be closures over a shared loop either.

@_kernel
def _unary_fused_kernel(op, x, t, y, ty):
    """One pass: y = f(x) and ty[k] = f'(x) t[k] for all k (flat x, y; (K, n) t, ty)."""
    n = x.size
    one = x.dtype.type(1)
    buf = np.empty(_B, x.dtype)
    for b in range((n + _B - 1) // _B):
        s = b * _B
        m = min(_B, n - s)
        xb = x[s:s + m]
        yb = y[s:s + m]
        if op == 0:
            _fused_block(_f_neg, _d_neg, xb, yb, buf, m, one)
        elif op == 1:
            _fused_block(_f_exp, _d_exp, xb, yb, buf, m, one)
        elif op == 2:
            _fused_block(_f_log, _d_log, xb, yb, buf, m, one)
        elif op == 3:
            _fused_block(_f_log1p, _d_log1p, xb, yb, buf, m, one)
        elif op == 4:
            _fused_block(_f_expm1, _d_expm1, xb, yb, buf, m, one)
        elif op == 5:
            _fused_block(_f_sqrt, _d_sqrt, xb, yb, buf, m, one)
        elif op == 6:
            _fused_block(_f_sin, _d_sin, xb, yb, buf, m, one)
        elif op == 7:
            _fused_block(_f_cos, _d_cos, xb, yb, buf, m, one)
        elif op == 8:
            _fused_block(_f_tan, _d_tan, xb, yb, buf, m, one)
        elif op == 9:
            _fused_block(_f_tanh, _d_tanh, xb, yb, buf, m, one)
        elif op == 10:
            _fused_block(_f_sinh, _d_sinh, xb, yb, buf, m, one)
        elif op == 11:
            _fused_block(_f_cosh, _d_cosh, xb, yb, buf, m, one)
        elif op == 12:
            _fused_block(_f_arctan, _d_arctan, xb, yb, buf, m, one)
        elif op == 13:
            _fused_block(_f_arcsin, _d_arcsin, xb, yb, buf, m, one)
        elif op == 14:
            _fused_block(_f_arccos, _d_arccos, xb, yb, buf, m, one)
        elif op == 15:
            _fused_block(_f_arctanh, _d_arctanh, xb, yb, buf, m, one)
        else:
            _fused_block(_f_abs, _d_abs, xb, yb, buf, m, one)
        _scale_block(buf, t, ty, s, m)


@_kernel
def _unary_tangent_kernel(op, x, y, t, ty):
    """One pass over the tangents, y = f(x) already computed: ty[k] = f'(x, y) t[k]."""
    n = x.size
    one = x.dtype.type(1)
    buf = np.empty(_B, x.dtype)
    for b in range((n + _B - 1) // _B):
        s = b * _B
        m = min(_B, n - s)
        xb = x[s:s + m]
        yb = y[s:s + m]
        if op == 1:
            _deriv_block(_d_exp, xb, yb, buf, m, one)
        elif op == 2:
            _deriv_block(_d_log, xb, yb, buf, m, one)
        elif op == 3:
            _deriv_block(_d_log1p, xb, yb, buf, m, one)
        elif op == 4:
            _deriv_block(_d_expm1, xb, yb, buf, m, one)
        elif op == 5:
            _deriv_block(_d_sqrt, xb, yb, buf, m, one)
        elif op == 8:
            _deriv_block(_d_tan, xb, yb, buf, m, one)
        elif op == 9:
            _deriv_block(_d_tanh, xb, yb, buf, m, one)
        elif op == 12:
            _deriv_block(_d_arctan, xb, yb, buf, m, one)
        elif op == 13:
            _deriv_block(_d_arcsin, xb, yb, buf, m, one)
        elif op == 14:
            _deriv_block(_d_arccos, xb, yb, buf, m, one)
        else:
            _deriv_block(_d_arctanh, xb, yb, buf, m, one)
        _scale_block(buf, t, ty, s, m)


_OPCODE = {name: i for i, name in enumerate(UNARY_OPS)}  # the order of the branches above
# "hybrid" ops: numpy's SIMD ufunc for y, then the numba tangent pass
_HYBRID = ("exp", "log", "log1p", "expm1", "sqrt", "tan", "tanh",
           "arctan", "arcsin", "arccos", "arctanh")

# The default strategy per op as (float64, float32), measured by benchmarks/kernels.py
# (see the module docstring).  "numpy" where no kernel wins: neg (the composition
# is already two passes with no temporary), sinh/cosh (f' needs a second
# transcendental, which numpy computes with SIMD), sin/cos in float32 (same).
UNARY_STRATEGY = {name: ("hybrid", "hybrid") for name in _HYBRID}
UNARY_STRATEGY.update({
    "neg": ("numpy", "numpy"), "sqrt": ("fused", "fused"), "abs": ("fused", "fused"),
    "sin": ("fused", "numpy"), "cos": ("fused", "numpy"),
    "sinh": ("numpy", "numpy"), "cosh": ("numpy", "numpy"),
})


def _plain(a, dtype=None) -> bool:
    """A C-contiguous float32/float64 ndarray (of ``dtype`` if given)."""
    return (type(a) is np.ndarray and a.flags.c_contiguous and a.dtype in _FLOATS
            and (dtype is None or a.dtype == dtype))


def _fresh(out, ins) -> bool:
    """``out`` is None, or overlaps no input except by being exactly that input."""
    if out is None:
        return True
    for a in ins:
        if a is not None and a is not out and np.may_share_memory(out, a):
            return False
    return True


def _check_out(out, shape, dtype, what):
    if out is not None and (out.shape != shape or out.dtype != dtype):
        raise ValueError(f"{what} has shape {out.shape} and dtype {out.dtype}; "
                         f"expected {shape} and {dtype}")


def unary_jvp(name: str, x, t, out=None, out_t=None, strategy: Optional[str] = None):
    """``(f(x), f'(x) * t)`` for a Dual's primal ``x`` (shape S) and tangents ``t`` ((K,) + S).

    ``name`` is one of `UNARY_OPS`; ``t`` may be None (no tangent: returns
    ``(f(x), None)``).  ``out`` / ``out_t`` are optional preallocated outputs
    (they may be ``x`` / ``t`` themselves, for in-place updates).  ``strategy``
    overrides `UNARY_STRATEGY` (a default per op and dtype): "fused" (one numba
    pass), "hybrid" (numpy's ufunc for y, one numba pass for all tangents) or
    "numpy" (the reference).
    """
    if name not in _UNARY_NUMPY:
        raise ValueError(f"unary_jvp: unknown op {name!r}; one of {UNARY_OPS}")
    if t is None:
        f = _UNARY_NUMPY[name][0]
        return (f(x, out=out) if out is not None else f(x)), None
    shape = np.shape(x)
    if np.shape(t)[1:] != shape or np.ndim(t) != len(shape) + 1:
        raise ValueError(f"unary_jvp: tangents of shape {np.shape(t)} do not fit a primal "
                         f"of shape {shape}; expected (K,) + {shape}")
    if strategy is None:
        strategy = UNARY_STRATEGY[name][getattr(x, "dtype", None) == np.float32]
    if (strategy == "numpy" or not kernels_enabled() or not _plain(x) or not _plain(t, x.dtype)
            or x.size == 0 or (strategy == "hybrid" and name not in _HYBRID)):
        return unary_jvp_reference(name, x, t, out, out_t)
    _check_out(out, shape, x.dtype, "out")
    _check_out(out_t, t.shape, x.dtype, "out_t")
    if not (_fresh(out, (x, t)) and _fresh(out_t, (x, t, out))
            and (out is None or _plain(out)) and (out_t is None or _plain(out_t))):
        return unary_jvp_reference(name, x, t, out, out_t)
    y = np.empty(shape, x.dtype) if out is None else out
    ty = np.empty(t.shape, x.dtype) if out_t is None else out_t
    K = t.shape[0]
    xf, yf, tf, tyf = x.reshape(-1), y.reshape(-1), t.reshape(K, -1), ty.reshape(K, -1)
    if strategy == "hybrid" and out is not x:  # y = f(x) in place of x would lose x
        _UNARY_NUMPY[name][0](x, out=y)
        _unary_tangent_kernel(_OPCODE[name], xf, yf, tf, tyf)
    elif strategy in ("hybrid", "fused"):
        _unary_fused_kernel(_OPCODE[name], xf, tf, yf, tyf)
    else:
        raise ValueError(f"unary_jvp: unknown strategy {strategy!r}; 'fused', 'hybrid' or 'numpy'")
    return y, ty


# --------------------------------------------------------------------------
# binary kernels: mul and div on same-shape operands
# --------------------------------------------------------------------------

@_kernel
def _mul_kernel(a, b, ta, tb, has_ta, has_tb, y, ty):
    """y = a b, ty[k] = ta[k] b + a tb[k]; a block's y is written last, so y may be a or b."""
    n = a.size
    K = ty.shape[0]
    for blk in range((n + _B - 1) // _B):
        s = blk * _B
        m = min(_B, n - s)
        ab, bb, yb = a[s:s + m], b[s:s + m], y[s:s + m]
        for k in range(K):
            tyk = ty[k, s:s + m]
            if has_ta and has_tb:
                tak, tbk = ta[k, s:s + m], tb[k, s:s + m]
                for i in range(m):
                    tyk[i] = tak[i] * bb[i] + ab[i] * tbk[i]
            elif has_ta:
                tak = ta[k, s:s + m]
                for i in range(m):
                    tyk[i] = tak[i] * bb[i]
            else:
                tbk = tb[k, s:s + m]
                for i in range(m):
                    tyk[i] = ab[i] * tbk[i]
        for i in range(m):
            yb[i] = ab[i] * bb[i]


@_kernel
def _div_kernel(a, b, ta, tb, has_ta, has_tb, y, ty):
    """y = a / b, ty[k] = ta[k] (1/b) + tb[k] (-y/b) (the rule's factors); y written last."""
    n = a.size
    K = ty.shape[0]
    one = a.dtype.type(1)
    yq = np.empty(_B, a.dtype)
    r = np.empty(_B, a.dtype)  # 1 / b
    q = np.empty(_B, a.dtype)  # -y / b
    for blk in range((n + _B - 1) // _B):
        s = blk * _B
        m = min(_B, n - s)
        ab, bb, yb = a[s:s + m], b[s:s + m], y[s:s + m]
        for i in range(m):
            yi = ab[i] / bb[i]
            yq[i] = yi
            r[i] = one / bb[i]
            q[i] = -yi / bb[i]
        for k in range(K):
            tyk = ty[k, s:s + m]
            if has_ta and has_tb:  # NaN-safe: a zero tangent contributes 0 at b == 0
                tak, tbk = ta[k, s:s + m], tb[k, s:s + m]
                for i in range(m):
                    u = tak[i] * r[i]
                    w = tbk[i] * q[i]
                    tyk[i] = (u if tak[i] != 0 else tak[i]) + (w if tbk[i] != 0 else tbk[i])
            elif has_ta:
                tak = ta[k, s:s + m]
                for i in range(m):
                    u = tak[i] * r[i]
                    tyk[i] = u if tak[i] != 0 else tak[i]
            else:
                tbk = tb[k, s:s + m]
                for i in range(m):
                    w = tbk[i] * q[i]
                    tyk[i] = w if tbk[i] != 0 else tbk[i]
        for i in range(m):
            yb[i] = yq[i]


_BINARY = {"mul": _mul_kernel, "div": _div_kernel}


def binary_jvp(name: str, a, ta, b, tb, out=None, out_t=None):
    """``(a op b, its tangents)`` for op "mul" or "div"; ``ta``/``tb`` ((K,) + shape) may be None.

    The kernel covers same-shape C-contiguous float operands; broadcasting and
    everything else runs the numpy reference.  add/sub have no kernel: numpy's
    ``ta + tb`` is already one pass.
    """
    if name not in _BINARY:
        raise ValueError(f"binary_jvp: unknown op {name!r}; one of {BINARY_OPS}")
    if ta is None and tb is None:
        return binary_jvp_reference(name, a, ta, b, tb, out, out_t)
    dtype = getattr(a, "dtype", None)
    ts = [x for x in (ta, tb) if x is not None]
    if (not kernels_enabled() or not _plain(a) or not _plain(b, dtype) or a.shape != b.shape
            or a.size == 0 or not all(_plain(x, dtype) and x.shape[1:] == a.shape
                                       and x.ndim == a.ndim + 1 for x in ts)
            or (len(ts) == 2 and ta.shape[0] != tb.shape[0])):
        return binary_jvp_reference(name, a, ta, b, tb, out, out_t)
    K = ts[0].shape[0]
    _check_out(out, a.shape, dtype, "out")
    _check_out(out_t, (K,) + a.shape, dtype, "out_t")
    if not (_fresh(out, (a, b, ta, tb)) and _fresh(out_t, (a, b, ta, tb, out))
            and (out is None or _plain(out)) and (out_t is None or _plain(out_t))):
        return binary_jvp_reference(name, a, ta, b, tb, out, out_t)
    y = np.empty(a.shape, dtype) if out is None else out
    ty = np.empty((K,) + a.shape, dtype) if out_t is None else out_t
    dummy = np.empty((0, 0), dtype)
    _BINARY[name](a.reshape(-1), b.reshape(-1),
                  dummy if ta is None else ta.reshape(K, -1),
                  dummy if tb is None else tb.reshape(K, -1),
                  ta is not None, tb is not None, y.reshape(-1), ty.reshape(K, -1))
    return y, ty
