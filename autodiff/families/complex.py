"""Complex numbers: np.real, np.imag, np.conj, np.angle on traced values.

Four primitives, the non-holomorphic functions every complex computation
needs (``real``, ``imag``, ``conj``, ``angle``); the holomorphic ones (+, *,
/, exp, log, sqrt, sin, tanh, matmul, einsum, sum, ...) are the core
primitives, whose rules hold for complex values as they are (see below).

The convention is JAX's.  A tangent is the R-linear derivative: for f(z)
with z = x + iy, df = f_x dx + f_y dy (f'(z) dz when f is holomorphic).  A
vjp is the transpose of that map under the bilinear pairing
<u, v> = Re(sum(u * v)) (no conjugate), so a holomorphic f has vjp
g -> g * f'(z), the same formula as for real values: the core rules need no
conjugate anywhere.  For a real-valued f, ``grad(f)(z) = df/dx - i df/dy``
(= 2 df/dz, the conjugate of the steepest-ascent direction: gradient descent
steps along ``-conj(grad(f)(z))``).  Non-holomorphic rules (this module, abs,
the complex <-> real casts):

    real   jvp re(t)        vjp g          (g real: the embedding of R in C)
    imag   jvp im(t)        vjp -i g
    conj   jvp conj(t)      vjp conj(g)
    angle  jvp im(t / z)    vjp -i g / z   (inf/nan at z = 0, a true singularity)
    abs    jvp re(conj(s) t)  vjp g conj(s), s = z / |z| (0 at z = 0)

A real value used in a complex computation gets the real part of its
cotangent (the transpose of R -> C); the tape does this (tape.real_part).
On real values np.real and np.conj are the value itself, np.imag is zero and
np.angle is a constant (0 or pi), as before.
"""
from __future__ import annotations

import numpy as np

from ..core import is_complex, primal_value
from ..primitives import primitive
from ..rules.base import complex_rules, defjvp, defvjp

real_p = primitive("real", np.real)
imag_p = primitive("imag", np.imag)
conj_p = primitive("conj", np.conjugate)
angle_p = primitive("angle", np.angle)

defjvp(real_p, lambda t, ans, x: real_p(t))
defvjp(real_p, lambda g, ans, x: g)
defjvp(imag_p, lambda t, ans, x: imag_p(t))
defvjp(imag_p, lambda g, ans, x: g * -1j if is_complex(x) else g * 0.0)  # a real x: imag is 0
defjvp(conj_p, lambda t, ans, x: conj_p(t))
defvjp(conj_p, lambda g, ans, x: conj_p(g))
defjvp(angle_p, lambda t, ans, x: imag_p(t / x))
defvjp(angle_p, lambda g, ans, x: g * -1j / x if is_complex(x) else g * 0.0)  # a real x: 0 or pi
complex_rules(real_p, imag_p, conj_p, angle_p)


def real(val):
    return real_p(val) if is_complex(val) else val


def imag(val):
    return imag_p(val) if is_complex(val) else np.zeros_like(primal_value(val))


def conj(x):
    return conj_p(x) if is_complex(x) else x


def angle(z, deg=False):
    if not is_complex(z):  # 0 or pi: a constant
        return np.angle(primal_value(z), deg)
    a = angle_p(z)
    return a * (180.0 / np.pi) if deg else a


UFUNCS = {np.conjugate: conj}

FUNCTIONS = {np.real: real, np.imag: imag, np.angle: angle}
