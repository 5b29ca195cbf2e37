"""Fused dual kernels on the CPU: numba loops where numpy would make temporaries.

A forward-mode `Dual` holds ``primal`` (shape S) and ``tangents`` (shape
``(K,) + S``).  Today an elementwise op runs as ``y = f(x)``, ``d = f'(x)``,
``ty = d[None] * t``: several full-size temporaries and passes over memory.
The kernels here compute the tangents of all K directions in one pass, reading
each input once.  Every entry point checks its arguments and falls back to the
numpy reference (the ``*_reference`` functions, which mirror the derivative
rules in `autodiff.rules`) for anything the kernels do not cover: dtypes other
than float32/float64, non-C-contiguous or overlapping arrays, broadcasting, or
kernels switched off (`autodiff.backend.set_kernels`, AUTODIFF_DISABLE_NUMBA=1).

API (all return new arrays unless ``out``/``inplace`` say otherwise)::

    unary_jvp(name, x, t, out=None, out_t=None, strategy=None) -> (y, ty)
    binary_jvp(name, a, ta, b, tb, out=None, out_t=None) -> (y, ty)   # mul, div
    matmul_jvp(a, ta, b, tb, strategy=None) -> (y, ty)
    sgd_momentum_jvp(p, tp, v, tv, g, tg, lr, tlr, mu, tmu,
                     weight_decay=0.0, nesterov=False, inplace=False) -> (p, tp, v, tv)
    adam_jvp(p, tp, m, tm, v, tv, g, tg, lr, tlr, b1, tb1, b2, tb2, eps, step,
             weight_decay=0.0, inplace=False) -> (p, tp, m, tm, v, tv)

Kernels are compiled lazily (first call per dtype) with ``cache=True``,
``fastmath=False`` and ``error_model='numpy'`` (a division by zero gives inf or
nan, as in numpy, instead of raising).  Numbers below are from
``benchmarks/kernels.py`` on this project's 2-vCPU Xeon (AVX-512, ~15 GB/s per
core); the full run, with every op, is ``benchmarks/KERNELS_draft.md``.

* Elementwise ops, two strategies.  numba has no SVML here (the pip build of
  llvmlite is compiled without it), so inside a numba loop exp/tanh/... are
  scalar libm calls, 3-10x slower than numpy's AVX-512 SIMD ufuncs.
  "hybrid" therefore lets numpy compute ``y = f(x)`` (one SIMD pass, no
  temporary) and one numba pass computes ``f'`` from ``(x, y)`` with plain
  arithmetic, for all K tangents; "fused" does everything in one numba pass
  and wins where f is an instruction (sqrt, abs) or where numpy has no SIMD
  version either (sin, cos in float64).  `UNARY_STRATEGY` holds the measured
  choice per op and dtype.  At 1e6 elements: tanh 1.6-1.9x, arcsin 1.8-2.4x,
  log 1.3-2.0x, sqrt 1.3-2.2x, abs 1.5-2.3x, sin/cos (float64) 1.5-1.6x,
  exp 0.9-1.9x; at 128x128 (engine-sized) 0.9-1.7x, where numba's ~3 us
  dispatch counts.
* Why not 2x everywhere: the ops are memory-bound, and the tangent stream
  (read t, write ty: 2K arrays) is the same for both; the kernels only remove
  f'(x)'s temporaries.  neg and exp have none (their numpy composition is
  already minimal: neg keeps the numpy path); sinh/cosh (and sin/cos in
  float32) need a second transcendental for f', which numpy computes with
  SIMD and numba only with scalar libm, so they keep the numpy path.
* mul/div with both tangents: 2.7-3.7x.  SGD-momentum: 2.7-3.6x over its
  numpy composition, 3.3-3.5x over the engine (Duals through the update);
  Adam: 4-6x over numpy, 5-7.6x over the engine.
* Loops are blocked (512 elements): ``f'`` of a block goes into an L1 buffer,
  then one vectorized loop per tangent direction, over block views indexed
  from 0 (see the note at the unary kernels).
* ``parallel=True`` is not used.  Measured on 1e6 elements, K=4 (tanh): 1.71x
  for the compute-bound fused kernel and 1.30x for the memory-bound tangent
  pass on an idle machine, but 1.05x / 1.21x with a neighbour process on the
  other vCPU, and the engine's arrays (~1e4 elements) cannot amortize the
  thread wake-ups; a size threshold (n >= ~1e6) would be the way to add it.
* The dual matmul is BLAS either way: the four strategies in
  ``MATMUL_STRATEGIES`` are within 5% of each other at K=1; "flat" (one GEMM
  over ``ta.reshape(K n, k)``) wins by 4-13% at K=4 when a carries a
  tangent, so it is `MATMUL_DEFAULT`.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from . import kernels_enabled, numba_available

__all__ = [
    "UNARY_OPS", "BINARY_OPS", "MATMUL_STRATEGIES",
    "unary_jvp", "unary_jvp_reference", "binary_jvp", "binary_jvp_reference",
    "matmul_jvp", "sgd_momentum_jvp", "sgd_momentum_jvp_reference",
    "adam_jvp", "adam_jvp_reference",
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


# --------------------------------------------------------------------------
# the dual matmul (BLAS; strategies measured in benchmarks/kernels.py)
# --------------------------------------------------------------------------

MATMUL_STRATEGIES = ("broadcast", "loop", "stacked", "flat")
MATMUL_DEFAULT = "flat"
_workspaces: dict = {}


def _workspace(shape, dtype):
    """A reusable scratch buffer for the stacked strategy (a few kept, by shape)."""
    key = (shape, np.dtype(dtype))
    buf = _workspaces.get(key)
    if buf is None:
        if len(_workspaces) >= 8:
            _workspaces.pop(next(iter(_workspaces)))
        buf = _workspaces[key] = np.empty(shape, dtype)
    return buf


def _add_a_tb(a, tb, ty, tmp):
    """ty[k] += a @ tb[k] for each k, through one reused temporary."""
    for k in range(tb.shape[0]):
        np.matmul(a, tb[k], out=tmp)
        ty[k] += tmp


def matmul_jvp(a, ta, b, tb, strategy: Optional[str] = None):
    """``(a @ b, ta @ b + a @ tb)`` for 2-D ``a`` (n, k), ``b`` (k, m); ``ta`` (K, n, k)
    and ``tb`` (K, k, m) may be None (a missing tangent costs no GEMM).

    Strategies (all BLAS):

    * "broadcast": numpy's stacked matmul, ``ta @ b + a @ tb``;
    * "loop": a Python loop of 2-D GEMMs over K, written into one output;
    * "stacked": one GEMM of the stacked rows ``[a; ta_1; ...; ta_K] @ b``
      (through a reused buffer; y and ty are views of one result), plus a loop
      for ``a @ tb``;
    * "flat": ``a @ b`` and one GEMM ``ta.reshape(K n, k) @ b`` (no copy: ta
      is contiguous), plus a loop for ``a @ tb``.

    The default, `MATMUL_DEFAULT`, is the measured winner (benchmarks/kernels.py).
    """
    strategy = strategy or MATMUL_DEFAULT
    if strategy not in MATMUL_STRATEGIES:
        raise ValueError(f"matmul_jvp: unknown strategy {strategy!r}; one of {MATMUL_STRATEGIES}")
    if np.ndim(a) != 2 or np.ndim(b) != 2:
        raise ValueError("matmul_jvp: a and b must be 2-D")
    n, k = a.shape
    m = b.shape[1]
    if ta is None and tb is None:
        return a @ b, None
    K = (ta if ta is not None else tb).shape[0]
    if ta is not None and ta.shape != (K, n, k) or tb is not None and tb.shape != (K, k, m):
        raise ValueError(f"matmul_jvp: tangent shapes {np.shape(ta)}, {np.shape(tb)} do not fit "
                         f"a {a.shape} @ b {b.shape} with K={K}")
    dtype = np.result_type(a, b, *(x for x in (ta, tb) if x is not None))
    if strategy == "broadcast":
        ty = ta @ b if ta is not None else None
        if tb is not None:
            ty = a @ tb if ty is None else ty + a @ tb
        return a @ b, ty
    if strategy == "stacked" and ta is not None:
        buf = _workspace(((K + 1) * n, k), dtype)
        buf[:n] = a
        buf[n:] = ta.reshape(K * n, k)
        res = buf @ b
        y, ty = res[:n], res[n:].reshape(K, n, m)
    elif strategy == "loop":
        y = a @ b
        ty = np.empty((K, n, m), dtype)
        if ta is not None:
            for i in range(K):
                np.matmul(ta[i], b, out=ty[i])
        else:
            for i in range(K):
                np.matmul(a, tb[i], out=ty[i])
            return y, ty
    else:  # "flat", and "stacked" without ta
        y = a @ b
        if ta is None:
            ty = np.empty((K, n, m), dtype)
            for i in range(K):
                np.matmul(a, tb[i], out=ty[i])
            return y, ty
        ty = (np.ascontiguousarray(ta).reshape(K * n, k) @ b).reshape(K, n, m)
    if tb is not None:
        _add_a_tb(a, tb, ty, np.empty((n, m), dtype))
    return y, ty


# --------------------------------------------------------------------------
# fused optimizer updates on Dual parameters
# --------------------------------------------------------------------------
# Each update is written out with its exact tangent: the derivative of every
# output w.r.t. every input (parameters, state, gradient, hyperparameters).

def _tangent_count(*ts) -> int:
    ks = {np.shape(x)[0] for x in ts if x is not None}
    if len(ks) > 1:
        raise ValueError(f"tangents disagree on the number of directions K: {sorted(ks)}")
    return ks.pop() if ks else 0


def _hyper_tangent(t, K):
    """A hyperparameter's K tangents as a float64 (K,) array (zeros if None)."""
    return np.zeros(K) if t is None else np.asarray(t, dtype=np.float64).reshape(K)


def sgd_momentum_jvp_reference(p, tp, v, tv, g, tg, lr, tlr, mu, tmu,
                               weight_decay=0.0, nesterov=False):
    """numpy composition of `sgd_momentum_jvp` (the fallback and the benchmark baseline)."""
    K = _tangent_count(tp, tv, tg, tlr, tmu)
    dt = p.dtype
    lr_, mu_, wd = dt.type(lr), dt.type(mu), dt.type(weight_decay)
    ge = g + wd * p if weight_decay else g
    vn = mu_ * v + ge
    step = ge + mu_ * vn if nesterov else vn
    pn = p - lr_ * step
    if K == 0:
        return pn, None, vn, None
    ex = (slice(None),) + (None,) * p.ndim
    tlr_, tmu_ = (_hyper_tangent(x, K).astype(dt)[ex] for x in (tlr, tmu))
    zero = np.zeros((K,) + p.shape, dt)
    tp_ = zero if tp is None else tp
    tge = (zero if tg is None else tg) + (wd * tp_ if weight_decay else 0)
    tvn = tmu_ * v + mu_ * (zero if tv is None else tv) + tge
    tstep = tge + tmu_ * vn + mu_ * tvn if nesterov else tvn
    tpn = tp_ - tlr_ * step - lr_ * tstep
    return pn, tpn, vn, tvn


@_kernel
def _sgd_kernel(p, v, g, tp, tv, tg, has_tp, has_tv, has_tg, hs, hk, nesterov, po, vo, tpo, tvo):
    """hs = (lr, mu, wd); hk rows: tangents of lr, mu.  Outputs may alias their inputs.

    Per block: the primal update, then per direction k a few branch-free loops
    over L1 buffers (a missing tangent skips its loop), so every loop vectorizes.
    """
    n = p.size
    K = tpo.shape[0]
    lr, mu, wd = hs[0], hs[1], hs[2]
    vold = np.empty(_B, p.dtype)
    vnew = np.empty(_B, p.dtype)
    step = np.empty(_B, p.dtype)
    tge = np.empty(_B, p.dtype)
    tvn = np.empty(_B, p.dtype)
    tpd = np.empty(_B, p.dtype)
    for blk in range((n + _B - 1) // _B):
        s = blk * _B
        m = min(_B, n - s)
        pb, vb, gb, pob, vob = p[s:s + m], v[s:s + m], g[s:s + m], po[s:s + m], vo[s:s + m]
        for i in range(m):
            vi = vb[i]
            ge = gb[i] + wd * pb[i]
            vn = mu * vi + ge
            st = ge + mu * vn if nesterov else vn
            pob[i] = pb[i] - lr * st
            vob[i] = vn
            vold[i] = vi
            vnew[i] = vn
            step[i] = st
        for k in range(K):
            tlr, tmu = hk[0, k], hk[1, k]
            # d(g + wd p)
            if has_tg:
                tgk = tg[k, s:s + m]
                for i in range(m):
                    tge[i] = tgk[i]
            else:
                tge[:m] = 0
            if has_tp and wd != 0:
                tpk = tp[k, s:s + m]
                for i in range(m):
                    tge[i] += wd * tpk[i]
            # d(v_new) = d(mu) v + mu dv + d(g + wd p)
            for i in range(m):
                tvn[i] = tmu * vold[i] + tge[i]
            if has_tv:
                tvk = tv[k, s:s + m]
                for i in range(m):
                    tvn[i] += mu * tvk[i]
            tvok = tvo[k, s:s + m]
            for i in range(m):
                tvok[i] = tvn[i]
            # d(p_new) = dp - d(lr) step - lr d(step)
            if nesterov:
                for i in range(m):
                    tpd[i] = -tlr * step[i] - lr * (tge[i] + tmu * vnew[i] + mu * tvn[i])
            else:
                for i in range(m):
                    tpd[i] = -tlr * step[i] - lr * tvn[i]
            tpok = tpo[k, s:s + m]
            if has_tp:
                tpk = tp[k, s:s + m]
                for i in range(m):
                    tpok[i] = tpk[i] + tpd[i]
            else:
                for i in range(m):
                    tpok[i] = tpd[i]


def _outputs(inplace, arrays, shape, dtype):
    return [a if inplace and a is not None else np.empty(shape, dtype) for a in arrays]


def sgd_momentum_jvp(p, tp, v, tv, g, tg, lr, tlr, mu, tmu,
                     weight_decay: float = 0.0, nesterov: bool = False, inplace: bool = False):
    """One torch.optim.SGD step with momentum on Duals, tangents of everything in one pass.

    ``v <- mu v + (g + wd p)``; ``p <- p - lr v`` (Nesterov: ``p <- p - lr (g + wd p + mu v)``),
    torch's conventions with dampening 0 (torch's first step sets ``v = g``,
    which is this update from ``v = 0``).  ``p, v, g`` have one shape S;
    ``tp, tv, tg`` are their tangents ((K,) + S) or None; ``lr, mu`` are
    scalars with tangents ``tlr, tmu`` of shape (K,) or None; ``weight_decay``
    is a constant.  Returns ``(p, tp, v, tv)``; the tangents are None when
    every input tangent is.  ``inplace=True`` writes into the given arrays.
    """
    K = _tangent_count(tp, tv, tg, tlr, tmu)
    dt = p.dtype
    arrs = (p, v, g) + tuple(x for x in (tp, tv, tg) if x is not None)
    if (K == 0 or not kernels_enabled() or p.size == 0 or not all(_plain(x, dt) for x in arrs)
            or v.shape != p.shape or g.shape != p.shape
            or not all(x.shape == (K,) + p.shape for x in (tp, tv, tg) if x is not None)):
        out = sgd_momentum_jvp_reference(p, tp, v, tv, g, tg, lr, tlr, mu, tmu, weight_decay, nesterov)
        return _store_inplace(inplace, (p, tp, v, tv), out)
    po, vo = _outputs(inplace, (p, v), p.shape, dt)
    tpo, tvo = _outputs(inplace, (tp, tv), (K,) + p.shape, dt)
    hs = np.array([lr, mu, weight_decay], dtype=dt)
    hk = np.stack([_hyper_tangent(tlr, K), _hyper_tangent(tmu, K)]).astype(dt)
    dummy = np.empty((0, 0), dt)
    flat = lambda x: dummy if x is None else x.reshape(K, -1)  # noqa: E731
    _sgd_kernel(p.reshape(-1), v.reshape(-1), g.reshape(-1), flat(tp), flat(tv), flat(tg),
                tp is not None, tv is not None, tg is not None, hs, hk, bool(nesterov),
                po.reshape(-1), vo.reshape(-1), tpo.reshape(K, -1), tvo.reshape(K, -1))
    return po, tpo, vo, tvo


def _store_inplace(inplace, targets, results):
    """For the reference path with inplace=True: copy results into the given arrays."""
    if not inplace:
        return results
    out = []
    for tgt, res in zip(targets, results):
        if tgt is not None and res is not None:
            tgt[...] = res
            res = tgt
        out.append(res)
    return tuple(out)


def _adam_scalars(b1, tb1, b2, tb2, step, K):
    """Bias corrections 1/(1 - b^t) and their tangents, in float64."""
    t = int(step)
    if t < 1:
        raise ValueError(f"adam: step counts from 1 (torch's convention), got {step}")
    b1, b2 = float(b1), float(b2)
    bc1, bc2 = 1.0 - b1 ** t, 1.0 - b2 ** t
    # d(1/bc)/db = -(1/bc^2) d(bc)/db = t b^(t-1) / bc^2
    dibc1 = _hyper_tangent(tb1, K) * (t * b1 ** (t - 1) / bc1 ** 2)
    dibc2 = _hyper_tangent(tb2, K) * (t * b2 ** (t - 1) / bc2 ** 2)
    return 1.0 / bc1, 1.0 / bc2, dibc1, dibc2


def adam_jvp_reference(p, tp, m, tm, v, tv, g, tg, lr, tlr, b1, tb1, b2, tb2, eps, step,
                       weight_decay=0.0):
    """numpy composition of `adam_jvp` (the fallback and the benchmark baseline)."""
    K = _tangent_count(tp, tm, tv, tg, tlr, tb1, tb2)
    dt = p.dtype
    ibc1, ibc2, dibc1, dibc2 = _adam_scalars(b1, tb1, b2, tb2, step, K)
    lr_, b1_, b2_, eps_, wd = (dt.type(x) for x in (lr, b1, b2, eps, weight_decay))
    one = dt.type(1)
    ge = g + wd * p if weight_decay else g
    mn = b1_ * m + (one - b1_) * ge
    vn = b2_ * v + (one - b2_) * (ge * ge)
    mhat = mn * dt.type(ibc1)
    s = np.sqrt(vn * dt.type(ibc2))
    den = s + eps_
    u = mhat / den
    pn = p - lr_ * u
    if K == 0:
        return pn, None, mn, None, vn, None
    ex = (slice(None),) + (None,) * p.ndim
    tlr_, tb1_, tb2_, dibc1_, dibc2_ = (np.asarray(x, dt)[ex] for x in (
        _hyper_tangent(tlr, K), _hyper_tangent(tb1, K), _hyper_tangent(tb2, K), dibc1, dibc2))
    zero = np.zeros((K,) + p.shape, dt)
    tp_ = zero if tp is None else tp
    tge = (zero if tg is None else tg) + (wd * tp_ if weight_decay else 0)
    tmn = tb1_ * (m - ge) + b1_ * (zero if tm is None else tm) + (one - b1_) * tge
    tvn = tb2_ * (v - ge * ge) + b2_ * (zero if tv is None else tv) + (one - b2_) * 2 * ge * tge
    tmhat = tmn * dt.type(ibc1) + mn * dibc1_
    tvhat = tvn * dt.type(ibc2) + vn * dibc2_
    with np.errstate(divide="ignore", invalid="ignore"):
        ts = np.where(s > 0, tvhat / (2 * s), 0)
    tu = (tmhat - u * ts) / den
    tpn = tp_ - tlr_ * u - lr_ * tu
    return pn, tpn, mn, tmn, vn, tvn


@_kernel
def _adam_kernel(p, m, v, g, tp, tm, tv, tg, has_tp, has_tm, has_tv, has_tg, hs, hk,
                 po, mo, vo, tpo, tmo, tvo):
    """hs = (lr, b1, b2, eps, wd, 1/bc1, 1/bc2); hk rows: tangents of lr, b1, b2, 1/bc1, 1/bc2.

    Per block: the primal update, keeping what the tangents need in L1 buffers,
    then per direction k branch-free loops (as in _sgd_kernel).  Outputs may
    alias their inputs.
    """
    n = p.size
    K = tpo.shape[0]
    lr, b1, b2, eps, wd, ibc1, ibc2 = hs[0], hs[1], hs[2], hs[3], hs[4], hs[5], hs[6]
    one = p.dtype.type(1)
    zero = one - one
    c1, c2 = one - b1, one - b2
    two = one + one
    dm = np.empty(_B, p.dtype)    # m - g: d(m_new)/d(b1)
    dv = np.empty(_B, p.dtype)    # v - g^2: d(v_new)/d(b2)
    g2 = np.empty(_B, p.dtype)    # 2 (1 - b2) g: d(v_new)/dg
    mnb = np.empty(_B, p.dtype)   # m_new
    vnb = np.empty(_B, p.dtype)   # v_new
    i2s = np.empty(_B, p.dtype)   # 1 / (2 sqrt(v_hat)), 0 where v_hat == 0
    idn = np.empty(_B, p.dtype)   # 1 / (sqrt(v_hat) + eps)
    ub = np.empty(_B, p.dtype)    # the step direction m_hat / (sqrt(v_hat) + eps)
    tge = np.empty(_B, p.dtype)
    tmn = np.empty(_B, p.dtype)
    tvn = np.empty(_B, p.dtype)
    tpd = np.empty(_B, p.dtype)
    for blk in range((n + _B - 1) // _B):
        s = blk * _B
        L = min(_B, n - s)
        pb, mb, vb, gb = p[s:s + L], m[s:s + L], v[s:s + L], g[s:s + L]
        pob, mob, vob = po[s:s + L], mo[s:s + L], vo[s:s + L]
        for i in range(L):
            ge = gb[i] + wd * pb[i]
            mi, vi = mb[i], vb[i]
            mn = b1 * mi + c1 * ge
            vn = b2 * vi + c2 * (ge * ge)
            sq = math.sqrt(vn * ibc2)
            den = sq + eps
            u = (mn * ibc1) / den
            pob[i] = pb[i] - lr * u
            mob[i] = mn
            vob[i] = vn
            dm[i] = mi - ge
            dv[i] = vi - ge * ge
            g2[i] = c2 * two * ge
            mnb[i] = mn
            vnb[i] = vn
            i2s[i] = one / (two * sq) if sq > zero else zero
            idn[i] = one / den
            ub[i] = u
        for k in range(K):
            tlr, tb1, tb2, dibc1, dibc2 = hk[0, k], hk[1, k], hk[2, k], hk[3, k], hk[4, k]
            if has_tg:
                tgk = tg[k, s:s + L]
                for i in range(L):
                    tge[i] = tgk[i]
            else:
                tge[:L] = 0
            if has_tp and wd != 0:
                tpk = tp[k, s:s + L]
                for i in range(L):
                    tge[i] += wd * tpk[i]
            for i in range(L):
                tmn[i] = tb1 * dm[i] + c1 * tge[i]
                tvn[i] = tb2 * dv[i] + g2[i] * tge[i]
            if has_tm:
                tmk = tm[k, s:s + L]
                for i in range(L):
                    tmn[i] += b1 * tmk[i]
            if has_tv:
                tvk = tv[k, s:s + L]
                for i in range(L):
                    tvn[i] += b2 * tvk[i]
            tmok, tvok = tmo[k, s:s + L], tvo[k, s:s + L]
            for i in range(L):
                tmok[i] = tmn[i]
                tvok[i] = tvn[i]
                tmhat = tmn[i] * ibc1 + mnb[i] * dibc1
                tvhat = tvn[i] * ibc2 + vnb[i] * dibc2
                tu = (tmhat - ub[i] * (tvhat * i2s[i])) * idn[i]
                tpd[i] = -tlr * ub[i] - lr * tu
            tpok = tpo[k, s:s + L]
            if has_tp:
                tpk = tp[k, s:s + L]
                for i in range(L):
                    tpok[i] = tpk[i] + tpd[i]
            else:
                for i in range(L):
                    tpok[i] = tpd[i]


def adam_jvp(p, tp, m, tm, v, tv, g, tg, lr, tlr, b1, tb1, b2, tb2, eps, step,
             weight_decay: float = 0.0, inplace: bool = False):
    """One torch.optim.Adam step on Duals, tangents of everything in one pass.

    ``m <- b1 m + (1-b1) g``; ``v <- b2 v + (1-b2) g^2``; ``p <- p - lr m_hat /
    (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - b1^t)``, ``v_hat = v / (1 -
    b2^t)``, ``t = step`` (>= 1, after torch's increment); ``weight_decay``
    adds ``wd p`` to g (torch's Adam, not AdamW).  ``tp, tm, tv, tg`` are
    tangents ((K,) + S) or None; ``lr, b1, b2`` scalars with tangents
    ``tlr, tb1, tb2`` of shape (K,) or None; ``eps``, ``step`` and
    ``weight_decay`` are constants.  Where ``v_hat == 0`` (g and v exactly 0)
    the tangent of sqrt(v_hat) is taken as 0 rather than 0/0 = nan (the engine's
    own jvp of the same formula gives nan there).  Returns ``(p, tp, m, tm, v, tv)``.
    """
    K = _tangent_count(tp, tm, tv, tg, tlr, tb1, tb2)
    dt = p.dtype
    arrs = (p, m, v, g) + tuple(x for x in (tp, tm, tv, tg) if x is not None)
    if (K == 0 or not kernels_enabled() or p.size == 0 or not all(_plain(x, dt) for x in arrs)
            or not all(x.shape == p.shape for x in (m, v, g))
            or not all(x.shape == (K,) + p.shape for x in (tp, tm, tv, tg) if x is not None)):
        out = adam_jvp_reference(p, tp, m, tm, v, tv, g, tg, lr, tlr, b1, tb1, b2, tb2, eps, step,
                                 weight_decay)
        return _store_inplace(inplace, (p, tp, m, tm, v, tv), out)
    ibc1, ibc2, dibc1, dibc2 = _adam_scalars(b1, tb1, b2, tb2, step, K)
    po, mo, vo = _outputs(inplace, (p, m, v), p.shape, dt)
    tpo, tmo, tvo = _outputs(inplace, (tp, tm, tv), (K,) + p.shape, dt)
    hs = np.array([lr, b1, b2, eps, weight_decay, ibc1, ibc2], dtype=dt)
    hk = np.stack([_hyper_tangent(tlr, K), _hyper_tangent(tb1, K), _hyper_tangent(tb2, K),
                   dibc1, dibc2]).astype(dt)
    dummy = np.empty((0, 0), dt)
    flat = lambda x: dummy if x is None else x.reshape(K, -1)  # noqa: E731
    _adam_kernel(p.reshape(-1), m.reshape(-1), v.reshape(-1), g.reshape(-1),
                 flat(tp), flat(tm), flat(tv), flat(tg),
                 tp is not None, tm is not None, tv is not None, tg is not None, hs, hk,
                 po.reshape(-1), mo.reshape(-1), vo.reshape(-1),
                 tpo.reshape(K, -1), tmo.reshape(K, -1), tvo.reshape(K, -1))
    return po, tpo, mo, tmo, vo, tvo
