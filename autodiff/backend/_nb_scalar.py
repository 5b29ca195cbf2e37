"""Scalar helpers the compiled jit programs (`autodiff.backend.numba_jit`) call.

Each is a small numba function that LLVM inlines into the program's loops;
each follows numpy's ufunc of the same name on one element (NaN propagation
of maximum/minimum, sign of zero and NaN, ...).  This module imports numba:
only the compiler imports it.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

_jit = numba.njit(inline="always", error_model="numpy")


@_jit
def _max(a, b):  # np.maximum: NaN if either is NaN
    return a if (a >= b or a != a) else b


@_jit
def _min(a, b):  # np.minimum
    return a if (a <= b or a != a) else b


@_jit
def _fmax(a, b):  # np.fmax: the other one if one is NaN
    return a if (a >= b or b != b) else b


@_jit
def _fmin(a, b):
    return a if (a <= b or b != b) else b


@_jit
def _sq(a):
    return a * a


@_jit
def _sign(a, one):  # one: 1 in a's dtype
    if a > 0:
        return one
    if a < 0:
        return -one
    return a  # zeros keep theirs; NaN stays NaN


@_jit
def _where(c, a, b):
    return a if c else b


@_jit
def _select(c, one, zero):  # a bool as a number: one or zero (typed by the caller)
    return one if c else zero


# -- exp and tanh that vectorize -----------------------------------------------------------------
# numba calls libm for np.exp / np.tanh: one scalar call per element, which LLVM cannot
# vectorize (numpy's own ufuncs are SIMD, 3-6x faster).  These use only arithmetic,
# selects and a bit cast, so a loop over them becomes SIMD code: range reduction
# x = k ln2 + r (Cody-Waite, |r| <= ln2/2), the Taylor polynomial of e^r - 1 (degree 17,
# truncation < 1e-19 relative for |r| <= 0.7), and 2^k built from exponent bits in two
# halves, so results that underflow to subnormals round once.  tanh(x) is
# expm1(2|x|) / (expm1(2|x|) + 2) below ln2/2 and 1 - 2 / (e^{2|x|} + 1) above.
# Accuracy against numpy is measured in tests/test_jit_numba.py.
_INV_FACT = tuple(1.0 / math.factorial(n) for n in range(19))
_P17, _P16, _P15, _P14, _P13, _P12, _P11, _P10, _P9, _P8, _P7, _P6, _P5, _P4, _P3, _P2 = (
    _INV_FACT[17], _INV_FACT[16], _INV_FACT[15], _INV_FACT[14], _INV_FACT[13], _INV_FACT[12],
    _INV_FACT[11], _INV_FACT[10], _INV_FACT[9], _INV_FACT[8], _INV_FACT[7], _INV_FACT[6],
    _INV_FACT[5], _INV_FACT[4], _INV_FACT[3], _INV_FACT[2])
_LN2_HI = 6.93147180369123816490e-01   # ln 2 with trailing zero bits: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_LOG2E = 1.4426950408889634
_SHIFTER = 6755399441055744.0           # 1.5 * 2**52: adding it rounds to an integer
_HALF_LN2 = 0.34657359027997264


@intrinsic
def _bits_to_f64(typingctx, i):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


_mjit = numba.njit(error_model="numpy", fastmath={"contract"})  # FMAs in the polynomials; LLVM inlines


@_mjit
def _expm1_poly(r):
    """e^r - 1 for |r| <= ln2/2: r + r^2 (1/2! + r (1/3! + ... r / 13!)), truncation < 1e-17."""
    p = _P13 * r + _P12
    p = p * r + _P11
    p = p * r + _P10
    p = p * r + _P9
    p = p * r + _P8
    p = p * r + _P7
    p = p * r + _P6
    p = p * r + _P5
    p = p * r + _P4
    p = p * r + _P3
    p = p * r + _P2
    return r + (r * r) * p


@_mjit
def _exp64(x):
    xc = min(max(x, -746.0), 710.0)
    k = (xc * _LOG2E + _SHIFTER) - _SHIFTER
    r = (xc - k * _LN2_HI) - k * _LN2_LO
    q = _expm1_poly(r)
    ki = np.int64(k)
    k1 = ki >> 1
    y = ((1.0 + q) * _bits_to_f64((k1 + 1023) << 52)) * _bits_to_f64((ki - k1 + 1023) << 52)
    return y if x == x else x


@_mjit
def _tanh64(x):
    u = 2.0 * min(abs(x), 20.0)        # tanh(20) rounds to 1
    k = (u * _LOG2E + _SHIFTER) - _SHIFTER
    r = (u - k * _LN2_HI) - k * _LN2_LO
    q = _expm1_poly(r)
    s = _bits_to_f64((np.int64(k) + 1023) << 52)
    em = s * q + (s - 1.0)             # expm1(u): exactly q when k = 0, no cancellation otherwise
    t = np.copysign(em / (em + 2.0), x)
    return t if x == x else x


# -- GEMM through the BLAS numpy itself uses -----------------------------------------------------
# numba's own np.dot goes through scipy's BLAS: a second OpenBLAS with its own thread pool,
# whose spinning threads fight numpy's for the cores whenever compiled and eager code
# alternate (measured: a Python replay ran 8x slower right after a compiled step).  So
# compiled programs call numpy's cblas_?gemm, found through numpy's extension module, by
# a symbol registered with LLVM (a cached program refers to it by name, not address).
def _numpy_cblas():
    """{"d": address of cblas_dgemm, "s": cblas_sgemm}, and the bits of its integers; or None."""
    import ctypes
    from numpy._core import _multiarray_umath as mu
    try:
        lib = ctypes.CDLL(mu.__file__)
    except OSError:
        return None
    for prefix, suffix, bits in (("scipy_cblas_", "64_", 64), ("cblas_", "64_", 64), ("scipy_cblas_", "", 32),
                                 ("cblas_", "", 32)):
        try:
            d, s = getattr(lib, f"{prefix}dgemm{suffix}"), getattr(lib, f"{prefix}sgemm{suffix}")
        except AttributeError:
            continue
        return {"d": ctypes.cast(d, ctypes.c_void_p).value, "s": ctypes.cast(s, ctypes.c_void_p).value}, bits
    return None


_CBLAS = _numpy_cblas()
HAVE_NUMPY_BLAS = _CBLAS is not None
if HAVE_NUMPY_BLAS:
    import llvmlite.binding as _llvm
    _llvm.add_symbol("autodiff_numpy_cblas_dgemm", _CBLAS[0]["d"])
    _llvm.add_symbol("autodiff_numpy_cblas_sgemm", _CBLAS[0]["s"])
    _BLAS_INT = ir.IntType(_CBLAS[1])


@intrinsic
def _gemm(typingctx, ta, tb, m, n, k, a, a_off, lda, b, b_off, ldb, c, c_off, ldc):
    """C[c_off:] (m x n, row-major, leading dimension ldc) = op(A) op(B), where op(X) is X
    (t = 0) or its transpose (t = 1), A and B read at offsets of 1-D arrays; numpy's BLAS."""
    if not HAVE_NUMPY_BLAS or a.dtype not in (types.float64, types.float32):
        return None
    double = a.dtype == types.float64
    sig = types.void(ta, tb, m, n, k, a, a_off, lda, b, b_off, ldb, c, c_off, ldc)

    def codegen(context, builder, signature, args):
        ta_, tb_, m_, n_, k_, a_, ao, lda_, b_, bo, ldb_, c_, co, ldc_ = args
        fp = ir.DoubleType() if double else ir.FloatType()
        i32 = ir.IntType(32)

        def ptr(aty, val, off):
            data = context.make_array(aty)(context, builder, val).data
            return builder.gep(data, [builder.sext(off, ir.IntType(64)) if off.type.width < 64 else off])

        def blasint(v):
            w = v.type.width
            return v if w == _BLAS_INT.width else (builder.trunc(v, _BLAS_INT) if w > _BLAS_INT.width
                                                   else builder.sext(v, _BLAS_INT))

        def trans(t):
            return builder.add(ir.Constant(i32, 111), builder.trunc(t, i32) if t.type.width > 32 else t)
        fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, _BLAS_INT, _BLAS_INT, _BLAS_INT, fp, fp.as_pointer(),
                                               _BLAS_INT, fp.as_pointer(), _BLAS_INT, fp, fp.as_pointer(), _BLAS_INT])
        name = "autodiff_numpy_cblas_dgemm" if double else "autodiff_numpy_cblas_sgemm"
        fn = builder.module.globals.get(name) or ir.Function(builder.module, fnty, name)
        builder.call(fn, [ir.Constant(i32, 101), trans(ta_), trans(tb_), blasint(m_), blasint(n_), blasint(k_),
                          ir.Constant(fp, 1.0), ptr(signature.args[5], a_, ao), blasint(lda_),
                          ptr(signature.args[8], b_, bo), blasint(ldb_), ir.Constant(fp, 0.0),
                          ptr(signature.args[11], c_, co), blasint(ldc_)])
        return context.get_dummy_value()
    return sig, codegen


@_jit
def _wrap(v, n):
    """An index into an axis of length n, numpy's way (negative counts from the end);
    out of range raises, as numpy's indexing does."""
    if v < 0:
        v += n
    if v < 0 or v >= n:
        raise IndexError("index out of bounds in a jit-compiled program")
    return v
