"""Sweep cases of the "complex" family (autodiff/families/complex.py): real,
imag, conj and angle, registered into tests/test_primitives.py's tables by
``add_cases``.

The sweep draws real inputs, so each case builds its complex values inside
(z = x + 1j y: the real and imaginary directions are separate inputs, so
check_grads' differences move them separately) and returns real values (the
real and imaginary parts of a complex result, stacked): jacrev needs real outputs.
Complex inputs and outputs are checked directly in tests/test_complex.py.
"""
from __future__ import annotations

import numpy as np

C = 0.7 - 1.3j  # a complex constant, so that the tangents are complex


def parts(w):
    """A complex result as one real array of its parts (jacrev and the float32 check need real outputs)."""
    return np.stack([np.real(w), np.imag(w)])


def right_half(shape):
    """Real parts in [0.4, 1.5]: z stays away from 0 and from angle's cut on the negative axis."""
    return lambda: np.random.uniform(0.4, 1.5, shape)


def add_cases(case, comp, makers):
    normal, sid = makers["normal"], makers["sid"]
    shapes = [(), (2,), (3, 2)]

    for s in shapes:
        case("real", sid(s), lambda x, y: np.real((x + 1j * y) * C), normal(s), normal(s))
        case("imag", sid(s), lambda x, y: np.imag((x + 1j * y) * C), normal(s), normal(s))
        case("conj", sid(s), lambda x, y, u, v: parts(np.conj(x + 1j * y) * (u + 1j * v)),
             normal(s), normal(s), normal(s), normal(s))
        case("angle", sid(s), lambda x, y: np.angle(x + 1j * y), right_half(s), normal(s))
    # (the .real and .imag attributes are checked in tests/test_complex.py: autodiff.jit's
    # recording arrays, which replay every case here, have no such attributes)
    case("real", "broadcast", lambda x, y: np.real(x + 1j * y) * x, normal((3, 2)), normal((1, 2)))
    case("imag", "of-product", lambda x, y: np.imag((x + 1j * y) ** 2), normal((3, 2)), normal((3, 2)))
    case("imag", "of-real-times-constant", lambda x: np.imag(x * C) + np.real(x * C), normal((3, 2)))
    case("conj", "method", lambda x, y: parts((x + 1j * y).conj() * C), normal((3, 2)), normal((3, 2)))
    case("conj", "np.conjugate-abs2", lambda x, y: np.real((x + 1j * y) * np.conjugate(x + 1j * y)),
         normal((3, 2)), normal((3, 2)))
    case("angle", "deg", lambda x, y: np.angle(x + 1j * y, deg=True), right_half((3, 2)), normal((3, 2)))
    case("angle", "of-product", lambda x, y: np.angle((x + 1j * y) * (x - 0.5j)), right_half((3,)), normal((3,)))

    # composites and core primitives on complex values
    comp("complex-abs", lambda x, y: np.abs(x + 1j * y), normal((3, 2)), normal((3, 2)))
    comp("complex-abs-squared", lambda x, y: np.abs((x + 1j * y) * C) ** 2, normal((3, 2)), normal((3, 2)))
    comp("complex-mul-div", lambda x, y, u: parts((x + 1j * y) * u / (u + 1j * x)),
         normal((3, 2)), normal((3, 2)), right_half((3, 2)))
    for name, fn in [("exp", np.exp), ("sin", np.sin), ("cos", np.cos), ("tanh", np.tanh)]:
        comp(f"complex-{name}", lambda x, y, fn=fn: parts(fn(0.5 * (x + 1j * y))), normal((3, 2)), normal((3, 2)))
    for name, fn in [("log", np.log), ("sqrt", np.sqrt)]:  # right half plane: away from the branch cut
        comp(f"complex-{name}", lambda x, y, fn=fn: parts(fn(x + 1j * y)), right_half((3, 2)), normal((3, 2)))
    comp("complex-pow-real-exponent", lambda x, y, p: parts((x + 1j * y) ** p),
         right_half((3, 2)), normal((3, 2)), normal((1, 2)))
    comp("complex-matmul-einsum",
         lambda x, y, u: parts((x + 1j * y) @ u + np.einsum("ij,jk->ik", x + 1j * y, u * C)),
         normal((3, 2)), normal((3, 2)), normal((2, 2)))
    comp("complex-sum-mean-var", lambda x, y: np.real(np.sum(x + 1j * y, axis=0) * C) + np.var(x + 1j * y, axis=0)
         + np.imag(np.mean((x + 1j * y) ** 2)), normal((3, 2)), normal((3, 2)))
    comp("complex-index-concat", lambda x, y: parts(np.concatenate([(x + 1j * y)[::-1], (x * C)[[0]]], axis=0).T),
         normal((3, 2)), normal((3, 2)))
    comp("complex-norm-vdot", lambda x, y: np.linalg.norm(x + 1j * y) * np.real(np.vdot(x + 1j * y, x * C)),
         normal((3, 2)), normal((3, 2)))
    comp("complex-sign", lambda x, y: parts(np.sign(x + 1j * y)), right_half((3, 2)), normal((3, 2)))
    comp("complex-cast", lambda x: parts(x.astype(np.complex128) * C), normal((3, 2)))
    comp("complex-correlate-conjugates", lambda x, y: parts(np.correlate(x + 1j * y, (y - 0.5j * x)[:2], "full")),
         normal((4,)), normal((4,)))
