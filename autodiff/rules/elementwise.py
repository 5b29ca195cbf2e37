"""Elementwise rules: arithmetic, transcendental functions, maximum/minimum, where.

Partials that can be inf or nan at a finite input are marked `singular`, so a
zero tangent or cotangent contributes exactly zero there (base.NAN_SAFE):

  div      1/y and -x/y**2 at y = 0
  pow      y x**(y-1) at x = 0 with y < 1, y != 0 (and nan for x < 0, fractional y)
  log      1/x at 0;  log1p  1/(1+x) at -1;  sqrt  1/(2 sqrt x) at 0
  arcsin, arccos  1/sqrt(1-x**2) at +-1;  arctanh  1/(1-x**2) at +-1

The others are finite wherever their inputs are finite, except where the value
itself overflows (exp, expm1, sinh, cosh of |x| > ~710; pow's partial in the
exponent when x**y overflows): an overflowed value is not a singular point and
is left unguarded.  Higher derivatives go through the same rules (the partials
are written with guarded primitives, and `nansafe_mul`'s own rules are
NaN-safe), so the convention holds at every order.
"""
import cmath
import math

import numpy as np

from .. import primitives as P
from ..core import is_complex
from .base import (MINUS_ONE, ONE, complex_rules, constant, defelementwise, defjvp, deflinear, defvjp, fill_out,
                   lift, shape_of, singular, unbroadcast)

defelementwise(P.add, ONE, ONE)
defelementwise(P.sub, ONE, MINUS_ONE)
defelementwise(P.neg, MINUS_ONE)
defelementwise(P.mul, lambda ans, x, y: y, lambda ans, x, y: x)


def _reciprocal(y):
    """1 / y; a Python number stays one, and 1 / 0 is inf as in numpy (the primal
    already warned), not ZeroDivisionError."""
    if type(y) in (int, float, complex):
        with np.errstate(divide="ignore", invalid="ignore"):
            return complex(np.divide(1.0, y)) if type(y) is complex else float(np.divide(1.0, y))
    return 1.0 / y


defelementwise(P.div, singular(lambda ans, x, y: _reciprocal(y)), singular(lambda ans, x, y: -ans / y))


def _dpow_dx(ans, x, y):
    # y * x**(y-1); where y == 0 and x == 0 the base is replaced by 1, so the
    # value is exactly 0 (not 0 * inf) and y's own derivative is kept elsewhere
    # (d2/dx dy x**y = 1/x at y == 0)
    base_zero = constant(x) == 0
    if type(x) in (int, float):  # a Python base stays weakly typed
        if not base_zero:
            return y * x ** (y - 1.0)
        yv = constant(y)
        base = P.where(yv == 0, 1.0, 0.0)
        if hasattr(yv, "dtype"):
            base = base.astype(yv.dtype)
    else:
        base = P.where(base_zero & (constant(y) == 0), 1.0, x)
    return y * base ** (y - 1.0)


def _dpow_dy(ans, x, y):
    # ans * log(x) where x > 0; 0 elsewhere (x**y with x <= 0 is not smooth in y)
    if is_complex(ans):  # x**y = exp(y log x), principal log: ans * log(x), 0 at x = 0
        if isinstance(x, (int, float, complex)):
            return ans * cmath.log(x) if x != 0 else ans * 0.0
        nz = constant(x) != 0
        if not is_complex(x):  # a negative real base: the complex log
            x = P.cast(x, dtype=np.result_type(constant(ans)))
        return P.where(nz, ans * P.log(P.where(nz, x, 1.0)), 0.0)
    if type(x) in (int, float):  # a Python base: keep it weakly typed (no float32 -> float64)
        return ans * math.log(x) if x > 0 else ans * 0.0
    return P.where(constant(x) > 0, ans * P.log(P.where(constant(x) > 0, x, 1.0)), 0.0)


# the partial in x is inf at x = 0 for y < 1 (y != 0); the one in y is finite
# wherever x**y is (0 where x <= 0)
defelementwise(P.pow, singular(_dpow_dx), _dpow_dy)

defelementwise(P.exp, lambda ans, x: ans)
defelementwise(P.log, singular(lambda ans, x: 1.0 / x))
defelementwise(P.log1p, singular(lambda ans, x: 1.0 / (x + 1.0)))
defelementwise(P.expm1, lambda ans, x: ans + 1.0)
defelementwise(P.sqrt, singular(lambda ans, x: 0.5 / ans))
defelementwise(P.sin, lambda ans, x: P.cos(x))
defelementwise(P.cos, lambda ans, x: -P.sin(x))
defelementwise(P.tan, lambda ans, x: 1.0 + ans * ans)
defelementwise(P.tanh, lambda ans, x: 1.0 - ans * ans)
defelementwise(P.sinh, lambda ans, x: P.cosh(x))
defelementwise(P.cosh, lambda ans, x: P.sinh(x))
defelementwise(P.arctan, lambda ans, x: 1.0 / (1.0 + x * x))
defelementwise(P.arcsin, singular(lambda ans, x: 1.0 / P.sqrt(1.0 - x * x)))
defelementwise(P.arccos, singular(lambda ans, x: -1.0 / P.sqrt(1.0 - x * x)))
defelementwise(P.arctanh, singular(lambda ans, x: 1.0 / (1.0 - x * x)))
defelementwise(P.abs, lambda ans, x: P.sign(x))
_abs_jvp_real, _abs_vjp_real = P.abs.jvps[0], P.abs.vjps[0]


def _phase(ans, x):
    """z / |z| of a complex z (0 at z = 0, as sign(0) = 0 for real abs)."""
    zero = constant(x) == 0
    return P.where(zero, 0.0, x / P.where(zero, 1.0, ans))


def _abs_jvp(t, ans, x):  # complex z: d|z| = re(conj(z) dz) / |z|
    if not is_complex(x):
        return _abs_jvp_real(t, ans, x)
    from ..families.complex import conj_p, real_p
    return real_p(t * conj_p(_phase(ans, x)))


def _abs_vjp(g, ans, x):  # its transpose under re(sum(u v)): g conj(z) / |z|
    if not is_complex(x):
        return _abs_vjp_real(g, ans, x)
    from ..families.complex import conj_p
    return g * conj_p(_phase(ans, x))


defjvp(P.abs, _abs_jvp)
defvjp(P.abs, _abs_vjp)


def _pick(first: bool):
    """d maximum(x, y)/dx: 1 where x wins, 1/2 at ties (JAX's convention)."""
    def d(ans, x, y):
        xv, yv = constant(x), constant(y)
        wins = (xv > yv) if first else (yv > xv)
        return (wins + 0.5 * (xv == yv)).astype(ans.dtype)
    return d


def _pick_min(first: bool):
    def d(ans, x, y):
        xv, yv = constant(x), constant(y)
        wins = (xv < yv) if first else (yv < xv)
        return (wins + 0.5 * (xv == yv)).astype(ans.dtype)
    return d


defelementwise(P.maximum, _pick(True), _pick(False))
defelementwise(P.minimum, _pick_min(True), _pick_min(False))


# where(cond, x, y): the condition is a constant; select tangents, not multiply,
# so an inf or nan in the branch not taken stays out.
def _where_jvp(branch):
    def jvp(t, ans, c, x, y):
        t = lift(t, len(shape_of(ans)))
        return fill_out(P.where(c, t, 0.0) if branch else P.where(c, 0.0, t), ans)
    return jvp


def _where_vjp(branch, i):
    def vjp(g, ans, c, x, y):
        return unbroadcast(P.where(c, g, 0.0) if branch else P.where(c, 0.0, g), shape_of((c, x, y)[i]))
    return vjp


defjvp(P.where, None, _where_jvp(True), _where_jvp(False))
defvjp(P.where, None, _where_vjp(True, 1), _where_vjp(False, 2))

deflinear(P.copy, lambda t, ans, x: P.copy(t), lambda g, ans, x: g)


def _cast_jvp(t, ans, x, dtype):
    if np.dtype(dtype).kind != "c" and is_complex(t):  # complex -> real keeps the real part, as numpy
        from ..families.complex import real_p
        t = real_p(t)
    return P.cast(t, dtype=dtype)


def _cast_vjp(g, ans, x, dtype):
    if is_complex(g) and not is_complex(x):  # real -> complex: the transpose takes the real part
        from ..families.complex import real_p
        g = real_p(g)
    return P.cast(g, dtype=x.dtype)


defjvp(P.cast, _cast_jvp)
defvjp(P.cast, _cast_vjp)

# holomorphic (or real-linear) ops: their rules hold for complex values as they are;
# abs and cast check for complex values themselves (see autodiff/families/complex.py)
complex_rules(P.add, P.sub, P.neg, P.mul, P.div, P.pow, P.exp, P.log, P.log1p, P.expm1, P.sqrt,
              P.sin, P.cos, P.tan, P.tanh, P.sinh, P.cosh, P.arctan, P.arcsin, P.arccos, P.arctanh,
              P.abs, P.where, P.copy, P.cast)
