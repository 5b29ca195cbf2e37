"""scipy.special functions on traced values.

``scipy.special.gammaln(x)`` on a `Dual` or tape value arrives through
``__array_ufunc__`` like any numpy ufunc; ``UFUNCS`` maps the scipy ufunc
objects to the differentiable functions below.  scipy is optional at run time:
without it this module registers nothing and its tables are empty.

Primitives (implemented with the scipy ufuncs, so values are scipy's):

    gammaln    d = digamma(x)
    polygamma  (static integer order n >= 0; n = 0 is digamma)  d = polygamma(n + 1, x)
    gamma      d = gamma(x) digamma(x)
    erf        d = 2/sqrt(pi) exp(-x^2)
    erfc       d = -2/sqrt(pi) exp(-x^2)   (its own primitive: 1 - erf(x) is 0 for x > 6)
    erfinv     d = sqrt(pi)/2 exp(erfinv(x)^2)
    i0e        d = i1e(x) - sign(x) i0e(x)
    i1e        d = i0e(x) - i1e(x) (1/x + sign(x)), with i1e(x)/x = 1/2 at x = 0

Composites: digamma/psi (polygamma of order 0), expit, logit, xlogy, xlog1py,
and `polygamma(n, x)` with an array of orders.

``scipy.special.polygamma`` is a Python function that calls ``np.asarray`` on
its arguments, which a traced value refuses: call `polygamma` from this module
on traced values instead.
"""
from __future__ import annotations

import math

import numpy as np

from .. import ops
from .. import primitives as P
from ..core import Box, dtype_of, primal_value
from ..rules.base import constant, defelementwise, defjvp, defvjp, fill_out, lift, shape_of, unbroadcast

try:
    import scipy.special as sc
except ImportError:  # scipy is optional: the family is then empty
    sc = None

UFUNCS: dict = {}
FUNCTIONS: dict = {}

__all__ = ["gammaln", "digamma", "psi", "polygamma", "gamma", "erf", "erfc", "erfinv", "expit",
           "logit", "xlogy", "xlog1py", "i0e", "i1e"]

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SQRT_PI_OVER_TWO = math.sqrt(math.pi) / 2.0


def _order(n) -> int:
    """A polygamma order given as a plain number: a non-negative integer."""
    if isinstance(n, Box):
        raise TypeError("polygamma: the order n is an integer and carries no derivative; "
                        "pass a plain integer (or integer array), not a traced value")
    v = float(n)
    if v != v or v < 0 or v != math.floor(v):
        raise ValueError(f"polygamma: the order n must be a non-negative integer, got {n!r}")
    return int(v)


def _polygamma_impl(x, n):
    if n == 0:
        return sc.psi(x)
    # psi^(n)(x) = (-1)^(n+1) n! zeta(n+1, x), as scipy.special.polygamma computes it; the
    # factor is a Python float, so float32 stays float32 (zeta has an 'ff->f' loop)
    return (-1.0) ** (n + 1) * float(sc.gamma(n + 1.0)) * sc.zeta(float(n + 1), x)


def _strong(v):
    """A Python scalar operand as a float64 value: scipy's binary ufuncs treat
    Python numbers as float64 (xlogy(float32 array, 0.5) is float64), unlike
    numpy's weak promotion.  Lists become arrays, as numpy reads them."""
    if isinstance(v, Box):
        return v * np.float64(1.0) if type(primal_value(v)) in (int, float) else v
    if type(v) in (int, float, bool):
        return np.float64(v)
    return v if hasattr(v, "dtype") else np.asarray(v)


def _quiet():
    """scipy's ufuncs return inf and nan without numpy's floating-point warnings;
    so do the composites here (their values; derivatives follow numpy's rules)."""
    return np.errstate(divide="ignore", invalid="ignore")


def _plain(v):
    """A non-traced operand as an array (numpy takes lists and scalars)."""
    return v if isinstance(v, Box) or hasattr(v, "dtype") or type(v) in (int, float) else np.asarray(v)


if sc is not None:
    gammaln_p = P.primitive("gammaln", sc.gammaln)
    polygamma_p = P.primitive("polygamma", _polygamma_impl)
    gamma_p = P.primitive("gamma", sc.gamma)
    erf_p = P.primitive("erf", sc.erf)
    erfc_p = P.primitive("erfc", sc.erfc)
    erfinv_p = P.primitive("erfinv", sc.erfinv)
    i0e_p = P.primitive("i0e", sc.i0e)
    i1e_p = P.primitive("i1e", sc.i1e)

    # -- rules (primitives only, so they differentiate again) ----------------------
    defelementwise(gammaln_p, lambda ans, x: polygamma_p(x, n=0))
    defelementwise(gamma_p, lambda ans, x: ans * polygamma_p(x, n=0))
    defelementwise(erf_p, lambda ans, x: _TWO_OVER_SQRT_PI * P.exp(-(x * x)))
    defelementwise(erfc_p, lambda ans, x: -_TWO_OVER_SQRT_PI * P.exp(-(x * x)))
    defelementwise(erfinv_p, lambda ans, x: _SQRT_PI_OVER_TWO * P.exp(ans * ans))
    defelementwise(i0e_p, lambda ans, x: i1e_p(x) - P.sign(x) * ans)

    def _di1e(ans, x):
        # i1e(x)/x -> 1/2 as x -> 0: divide where x != 0 only (no 0/0)
        zero = constant(x) == 0
        ratio = P.where(zero, 0.5, ans / P.where(zero, 1.0, x))
        return i0e_p(x) - ratio - P.sign(x) * ans

    defelementwise(i1e_p, _di1e)

    # polygamma carries its order as a static parameter, so its rules take **params
    def _polygamma_jvp(t, ans, x, n):
        return fill_out(lift(t, len(shape_of(ans))) * polygamma_p(x, n=n + 1), ans)

    def _polygamma_vjp(g, ans, x, n):
        return unbroadcast(g * polygamma_p(x, n=n + 1), shape_of(x))

    defjvp(polygamma_p, _polygamma_jvp)
    defvjp(polygamma_p, _polygamma_vjp)
else:
    def _needs_scipy(*args, **params):
        raise ModuleNotFoundError("autodiff.families.special: gammaln, digamma, polygamma, gamma, erf, "
                                  "erfc, erfinv, i0e and i1e need scipy (expit, logit, xlogy and "
                                  "xlog1py do not)")

    gammaln_p = polygamma_p = gamma_p = erf_p = erfc_p = erfinv_p = i0e_p = i1e_p = _needs_scipy


# -- numpy-compatible functions ------------------------------------------------------
def gammaln(x):
    """log|Gamma(x)|."""
    return gammaln_p(x)


def digamma(x):
    """psi(x) = d/dx log Gamma(x) (scipy.special.psi)."""
    return polygamma_p(x, n=0)


psi = digamma


def polygamma(n, x):
    """The n-th derivative of digamma, ``scipy.special.polygamma(n, x)``.

    ``n`` is a plain non-negative integer or integer array (broadcast with x);
    it is not differentiable.  As in scipy, the result is at least float64: a
    float32 ``x`` gives digamma computed in float32 for n = 0 and the order-n
    function computed in float64 for n >= 1, both returned as float64.
    """
    if isinstance(n, Box):
        _order(n)
    x = _plain(x)
    d = dtype_of(x)
    narrow = d.kind == "f" and d.itemsize < 8 and not (isinstance(x, Box) and type(primal_value(x)) is float)
    wide = (ops.astype(x, np.float64) if isinstance(x, Box) else np.asarray(x, np.float64)) if narrow else x

    def one(k):
        if k == 0 and narrow:
            v = polygamma_p(x, n=0)
            return ops.astype(v, np.float64) if isinstance(v, Box) else np.asarray(v, np.float64)
        return polygamma_p(wide, n=k)

    n_arr = np.asarray(n)
    if n_arr.ndim == 0:
        return one(_order(n_arr.item()))
    orders = sorted({_order(k) for k in n_arr.ravel().tolist()}) or [0]
    shape = np.broadcast_shapes(n_arr.shape, np.shape(primal_value(x)))
    out = ops.broadcast_to(one(orders[0]), shape)
    for k in orders[1:]:
        out = P.where(n_arr == k, one(k), out)
    return out


def gamma(x):
    return gamma_p(x)


def erf(x):
    return erf_p(x)


def erfc(x):
    return erfc_p(x)


def erfinv(x):
    return erfinv_p(x)


def i0e(x):
    """exp(-|x|) I0(x)."""
    return i0e_p(x)


def i1e(x):
    """exp(-|x|) I1(x)."""
    return i1e_p(x)


def expit(x):
    """The logistic function 1 / (1 + exp(-x)), without overflow: with
    e = exp(-|x|) it is 1/(1 + e) for x >= 0 and e/(1 + e) for x < 0, each
    branch exact with exact derivatives (no inf/inf in the far tails)."""
    x = _plain(x)
    nonneg = constant(x) >= 0
    e = P.exp(P.where(nonneg, -x, x))
    return P.where(nonneg, 1.0, e) / (1.0 + e)


def logit(x):
    """log(x / (1 - x)), as scipy computes it: near x = 1/2 (0.3 <= x <= 0.65)
    as log1p(s) - log1p(-s) with s = 2x - 1, which keeps its relative accuracy
    around the zero at 1/2."""
    x = _plain(x)
    xv = constant(x)
    mid = (xv >= 0.3) & (xv <= 0.65)
    with _quiet():  # scipy gives -inf, inf at 0, 1 and nan outside [0, 1] without warnings
        s = P.where(mid, 2.0 * x - 1.0, 0.0)  # 0 where unused: log1p(+-s) stays finite
        return P.where(mid, P.log1p(s) - P.log1p(-s), P.log(x / (1.0 - x)))


def xlogy(x, y):
    """x log(y), and 0 where x == 0 (unless y is nan), as scipy.special.xlogy.

    Where x == 0 and y > 0 it is still x * log(y): the derivative in x is log(y)
    and in y it is x / y = 0 exactly.  Where x == 0 and y is 0, negative or inf
    (where x log(y) would be nan), y is replaced by 1, so the value is 0 and the
    derivative in y is 0.
    """
    x, y = _strong(x), _strong(y)
    yv = constant(y)
    bad = (constant(x) == 0) & ((yv <= 0) | (yv == np.inf))
    with _quiet():
        return x * P.log(P.where(bad, 1.0, y))


def xlog1py(x, y):
    """x log1p(y), and 0 where x == 0 (unless y is nan), as scipy.special.xlog1py
    (see xlogy: the same conventions with y + 1 for y)."""
    x, y = _strong(x), _strong(y)
    yv = constant(y)
    bad = (constant(x) == 0) & ((yv <= -1) | (yv == np.inf))
    with _quiet():
        return x * P.log1p(P.where(bad, 0.0, y))


if sc is not None:
    UFUNCS = {
        sc.gammaln: gammaln, sc.psi: digamma, sc.gamma: gamma, sc.erf: erf, sc.erfc: erfc,
        sc.erfinv: erfinv, sc.i0e: i0e, sc.i1e: i1e, sc.expit: expit, sc.logit: logit,
        sc.xlogy: xlogy, sc.xlog1py: xlog1py,
    }
