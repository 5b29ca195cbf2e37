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
