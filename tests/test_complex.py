"""Complex numbers through the engine (autodiff/families/complex.py has the convention).

JAX's convention: a tangent is the R-linear derivative (f'(z) dz for a
holomorphic f); a vjp is its transpose under <u, v> = re(sum(u * v)), so for a
real-valued f of z = x + iy, grad(f)(z) = df/dx - i df/dy.  Each closed form
below is also checked against central differences taken separately along the
real and the imaginary direction.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from autodiff import check_grads, dual, grad, hvp, jacfwd, jacrev, jit, jvp, value_and_grad, vjp
from autodiff.core import primal_value

RNG = np.random.default_rng(7)
Z = np.array([0.8 + 0.6j, -1.1 + 0.4j, 0.3 - 1.2j])
W = np.array([0.5 + 1.0j, -1.0 + 0.3j, 0.7 - 0.2j])


def cz(*shape, rng=RNG):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def fd_grad(f, z, h=1e-6):
    """df/dx - i df/dy, entry by entry, from central differences along each direction."""
    z = np.asarray(z, dtype=complex)
    g = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        e = np.zeros_like(z)
        e[i] = 1.0
        dx = (f(z + h * e) - f(z - h * e)) / (2 * h)
        dy = (f(z + 1j * h * e) - f(z - 1j * h * e)) / (2 * h)
        g[i] = dx - 1j * dy
    return g


# -- the convention: grad of real-valued functions of complex inputs ------------------------------
CLOSED_FORMS = {
    "|z|^2": (lambda z: np.sum(np.abs(z) ** 2), lambda z: 2 * np.conj(z)),
    "z conj(z)": (lambda z: np.sum(np.real(z * np.conj(z))), lambda z: 2 * np.conj(z)),
    "re(z conj(w))": (lambda z: np.sum(np.real(z * np.conj(W))), lambda z: np.conj(W)),
    "im(z conj(w))": (lambda z: np.sum(np.imag(z * np.conj(W))), lambda z: -1j * np.conj(W)),
    "re(z)": (lambda z: np.sum(np.real(z)), lambda z: np.ones_like(z)),
    "im(z)": (lambda z: np.sum(np.imag(z)), lambda z: -1j * np.ones_like(z)),
    "|z|": (lambda z: np.sum(np.abs(z)), lambda z: np.conj(z) / np.abs(z)),
    "angle(z)": (lambda z: np.sum(np.angle(z)), lambda z: -1j / z),
    "re(exp z) (holomorphic: f'(z))": (lambda z: np.sum(np.real(np.exp(z))), np.exp),
    "im(z^2) (holomorphic: -i f'(z))": (lambda z: np.sum(np.imag(z ** 2)), lambda z: -2j * z),
    "|sin z|^2": (lambda z: np.sum(np.abs(np.sin(z)) ** 2), lambda z: 2 * np.conj(np.sin(z)) * np.cos(z)),
    "|z - w|^2 / 2": (lambda z: 0.5 * np.sum(np.abs(z - W) ** 2), lambda z: np.conj(z - W)),
}


@pytest.mark.parametrize("name", CLOSED_FORMS)
def test_grad_of_real_function_is_df_dx_minus_i_df_dy(name):
    f, closed = CLOSED_FORMS[name]
    g = grad(f)(Z)
    assert g.dtype == np.complex128
    np.testing.assert_allclose(g, closed(Z), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g, fd_grad(f, Z), rtol=1e-6, atol=1e-7)
    # the other modes agree: jacrev (rows are gradients) and vjp with a cotangent of 1
    np.testing.assert_allclose(jacrev(f)(Z), g, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(vjp(f, Z)[1](1.0)[0], g, rtol=1e-12, atol=1e-12)
    # forward mode: the directional derivative along dz is re(grad * dz)
    dz = cz(3)
    np.testing.assert_allclose(jvp(f, (Z,), (dz,))[1], np.real(np.sum(g * dz)), rtol=1e-10, atol=1e-12)


def test_gradient_descent_steps_along_minus_conj_grad():
    f = CLOSED_FORMS["|z - w|^2 / 2"][0]
    z = np.zeros(3, dtype=complex)
    for _ in range(50):
        z = z - 0.2 * np.conj(grad(f)(z))
    np.testing.assert_allclose(z, W, atol=1e-4)


def test_python_complex_scalar_input():
    g = grad(lambda z: abs(z) ** 2)(3 + 4j)
    np.testing.assert_allclose(g, 6 - 8j)
    v, g = value_and_grad(lambda z: np.real(z * z))(1 + 2j)
    np.testing.assert_allclose(v, -3.0)
    np.testing.assert_allclose(g, 2 * (1 + 2j))


# -- forward mode: the R-linear derivative ------------------------------------------------------------
TANGENTS = {
    "exp (f'(z) dz)": (np.exp, lambda z, dz: np.exp(z) * dz),
    "z^3": (lambda z: z ** 3, lambda z, dz: 3 * z ** 2 * dz),
    "1/z": (lambda z: 1 / z, lambda z, dz: -dz / z ** 2),
    "sqrt": (np.sqrt, lambda z, dz: dz / (2 * np.sqrt(z))),
    "log": (np.log, lambda z, dz: dz / z),
    "tanh": (np.tanh, lambda z, dz: (1 - np.tanh(z) ** 2) * dz),
    "abs": (np.abs, lambda z, dz: np.real(np.conj(z) * dz) / np.abs(z)),
    "real": (np.real, lambda z, dz: np.real(dz)),
    "imag": (np.imag, lambda z, dz: np.imag(dz)),
    "conj": (np.conj, lambda z, dz: np.conj(dz)),
    "angle": (np.angle, lambda z, dz: np.imag(dz / z)),
    "z conj(z)": (lambda z: z * np.conj(z), lambda z, dz: 2 * np.real(np.conj(z) * dz) + 0j),
}


@pytest.mark.parametrize("name", TANGENTS)
def test_jvp_is_the_real_linear_derivative(name):
    f, closed = TANGENTS[name]
    dz = cz(3)
    out, t = jvp(f, (Z,), (dz,))
    np.testing.assert_allclose(out, f(Z), rtol=1e-14)
    np.testing.assert_allclose(t, closed(Z, dz), rtol=1e-12, atol=1e-12)
    h = 1e-6
    np.testing.assert_allclose(t, (f(Z + h * dz) - f(Z - h * dz)) / (2 * h), rtol=1e-6, atol=1e-8)
    assert t.dtype == np.result_type(out)


def test_vjp_rules_follow_the_convention():
    """Holomorphic: g * f'(z), the real formula unchanged.  Non-holomorphic: the transpose under re(sum(u v))."""
    g = cz(3)
    np.testing.assert_allclose(vjp(lambda z: z * W, Z)[1](g)[0], g * W)
    np.testing.assert_allclose(vjp(np.exp, Z)[1](g)[0], g * np.exp(Z))
    np.testing.assert_allclose(vjp(np.conj, Z)[1](g)[0], np.conj(g))
    gr = RNG.standard_normal(3)
    np.testing.assert_allclose(vjp(np.real, Z)[1](gr)[0], gr)
    np.testing.assert_allclose(vjp(np.imag, Z)[1](gr)[0], -1j * gr)
    np.testing.assert_allclose(vjp(np.abs, Z)[1](gr)[0], gr * np.conj(Z) / np.abs(Z))
    # the pairing: <u, J v> = <J^T u, v> with <a, b> = re(sum(a b))
    for f in (lambda z: z * np.conj(z) * W, np.abs, lambda z: np.angle(z) * z, lambda z: np.fft.fft(z)):
        v, u = cz(3), cz(3) if np.iscomplexobj(f(Z)) else RNG.standard_normal(3)
        jv = jvp(f, (Z,), (v,))[1]
        jtu = vjp(f, Z)[1](u)[0]
        np.testing.assert_allclose(np.real(np.sum(u * jv)), np.real(np.sum(jtu * v)), rtol=1e-12)


# -- check_grads on complex inputs and outputs, to order 2 ---------------------------------------------
C2 = lambda *s: cz(*s)
FUNCTIONS = {
    "mul-div": (lambda a, b: a * b / (b + 2.0), (C2(3, 2), C2(3, 2))),
    "pow-real-exponent": (lambda a, p: a ** p, (C2(3, 2), RNG.uniform(-1.5, 2.5, (3, 2)))),
    "pow-python-exponent": (lambda a: a ** 2.5 + a ** -1, (C2(3, 2),)),
    "pow-complex-exponent": (lambda a, p: a ** p, (C2(3, 2), 0.3 * C2(3, 2))),
    "exp-log-sqrt": (lambda a: np.exp(a) + np.log(a) * np.sqrt(a), (C2(3, 2),)),
    "trig": (lambda a: np.sin(a) * np.cos(a) + np.tanh(0.5 * a) + np.tan(0.3 * a), (C2(3, 2),)),
    "hyperbolic": (lambda a: np.sinh(a) - np.cosh(a) + np.expm1(a) + np.log1p(0.3 * a), (C2(3, 2),)),
    "inverse-trig": (lambda a: np.arctan(0.3 * a) + np.arcsin(0.3 * a) + np.arccos(0.3 * a)
                     + np.arctanh(0.3 * a), (C2(3, 2),)),
    "abs-angle-real-imag-conj": (lambda a: np.abs(a) * np.angle(a) + np.real(a) * np.imag(a) + np.conj(a) ** 2,
                                 (C2(3, 2),)),
    "matmul-einsum": (lambda a, b: a @ b.T + np.einsum("ij,jk->ik", a, np.conj(b).T), (C2(3, 2), C2(3, 2))),
    "reductions": (lambda a: np.sum(a, axis=0) * np.mean(a) + np.prod(a, axis=1)[:2] + np.cumsum(a)[-2:],
                   (C2(3, 2),)),
    "shapes-indexing": (lambda a, b: np.concatenate([a.reshape(2, 3).T, b[[0, 2, 2]]], axis=1)[::-1, 1:],
                        (C2(3, 2), C2(3, 2))),
    "where-pad-broadcast": (lambda a, b: np.pad(np.where(Z.real[:2, None] > 0, a, b), 1) * b[0, 0],
                            (C2(2, 3), C2(2, 3))),
    "var-norm-vdot": (lambda a: np.var(a, axis=0) * np.linalg.norm(a) + np.vdot(a, a * 1j), (C2(3, 2),)),
    "sign-square-reciprocal": (lambda a: np.sign(a) + np.square(a) + np.reciprocal(a), (C2(3, 2),)),
    "real-and-complex-mixed": (lambda x, a: x * a + np.real(a) * x ** 2 + np.abs(x * a),
                               (RNG.standard_normal((3, 2)), C2(3, 2))),
    "astype": (lambda x: x.astype(np.complex128) * (1 + 2j) + np.real(x.astype(complex)),
               (RNG.standard_normal(3),)),
    "python-complex-constants": (lambda a: a / 2j + 1j * a - (1 + 1j) ** a, (C2(3, 2),)),
    "fft-family": (lambda a: np.fft.ifft(np.fft.fft(a, n=5) * a[0]), (C2(4),)),
}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_check_grads_complex_order_two(name):
    f, args = FUNCTIONS[name]
    check_grads(f, args, order=2)


B = np.array([0.4 - 0.9j, 1.2 + 0.1j, -0.3 + 0.5j])
COMPOSITES = {  # numpy functions built from the core primitives: numpy's values on complex inputs
    "correlate (conjugates v)": lambda a: np.correlate(a, B, "full") + np.correlate(B, a, "same")[0],
    "convolve": lambda a: np.convolve(a, B),
    "cumprod": lambda a: np.cumprod(a),
    "diff-gradient": lambda a: np.diff(a, prepend=0.5j) + np.gradient(a),
    "kron-outer-tensordot": lambda a: np.kron(a, B) + np.outer(a, B).ravel() + np.tensordot(a, a, 1),
    "roll-repeat-tile": lambda a: np.roll(a, 2) + np.repeat(a, 2)[::2] + np.tile(a, 2)[1:4],
    "trace-diag-tril": lambda a: np.trace(np.outer(a, a)) + np.diag(a).sum(0) + np.tril(np.outer(a, B)).sum(1),
    "cross-dot-inner-vdot": lambda a: np.cross(a, B) * np.dot(a, B) + np.inner(a, a) + np.vdot(a, B),
    "norms": lambda a: np.linalg.norm(a) + np.linalg.norm(a, 1) + np.linalg.norm(a, np.inf)
    + np.linalg.norm(a, 3) + np.linalg.norm(np.outer(a, B), "fro"),
    "var-std-mean-prod": lambda a: np.var(a) + np.std(a) + np.mean(a) * np.prod(a),
    "exp2-log2-log10-power": lambda a: np.exp2(a) + np.log2(a) * np.log10(a) + a ** 3 + 2.0 ** a,
    "einsum-sublists-stack-split": lambda a: np.einsum(a, [0], B, [1], [0, 1]).sum(0)
    + np.stack([a, a])[1] + np.split(a, 3)[1],
    "multi_dot-matrix_power": lambda a: np.linalg.multi_dot([np.outer(a, a), np.outer(a, B), a])
    + np.linalg.matrix_power(np.outer(a, B), 2)[0],
    "fft-shifts": lambda a: np.fft.fftshift(np.fft.fft(a)) * np.fft.ifftshift(a),
}


@pytest.mark.parametrize("name", COMPOSITES)
def test_composites_on_complex_values(name):
    f = COMPOSITES[name]
    out, _ = jvp(f, (Z,), (np.zeros(3, complex),))
    expected = f(Z)
    assert np.result_type(out) == np.result_type(expected)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    check_grads(f, (Z,), order=2)


def test_complex_to_real_cast_keeps_the_real_part():
    x = RNG.standard_normal(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)  # numpy's own warning, as in the plain run
        check_grads(lambda a: (a * (1 + 2j)).astype(float) * a, (x,), order=2)
        g = grad(lambda a: np.sum((a * (3 - 1j)).astype(float)))(x)
    np.testing.assert_allclose(g, 3 * np.ones(3))


def test_real_inputs_get_real_gradients_through_complex_intermediates():
    x = RNG.standard_normal(4)

    def f(x):  # a real loss of real parameters that goes through complex values
        spectrum = np.fft.fft(x * np.exp(1j * x))
        return np.sum(np.abs(spectrum) ** 2) + np.real(np.sum(spectrum * (0.5 - 1j)))

    g = grad(f)(x)
    assert g.dtype == np.float64
    h = 1e-6
    fd = np.array([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(4)])
    np.testing.assert_allclose(g, fd, rtol=1e-6)
    np.testing.assert_allclose(jacfwd(f)(x), g, rtol=1e-12)
    check_grads(f, (x,), order=2)


def test_second_order_hvp_and_nesting():
    f = lambda z: np.sum(np.abs(np.sin(z)) ** 2 + np.real(z ** 3))
    v = cz(3)
    h = 1e-5
    fd = (grad(f)(Z + h * v) - grad(f)(Z - h * v)) / (2 * h)
    np.testing.assert_allclose(hvp(f, Z, v), fd, rtol=1e-6, atol=1e-8)
    # reverse over reverse: grad of a real function of the gradient
    gg = grad(lambda z: np.sum(np.abs(grad(f)(z)) ** 2))(Z)
    fd2 = fd_grad(lambda z: np.sum(np.abs(grad(f)(z)) ** 2), Z)
    np.testing.assert_allclose(gg, fd2, rtol=1e-5, atol=1e-6)
    # nesting with complex values: the inner gradient is x + 2 conj(y) = x - 2i at y = i, and
    # grad of re(x (x - 2i)) = re(x)^2 - im(x)^2 + 2 im(x) is 2 re(x) - i (2 - 2 im(x)) = 4 - 2i at x = 2
    d = grad(lambda x: np.real(x * grad(lambda y: np.real(x * y + y * np.conj(y)))(1j)))(2.0 + 0j)
    np.testing.assert_allclose(d, 4.0 - 2.0j)


def test_holomorphic_jacobians():
    f = lambda z: np.exp(z) * z[::-1]
    jf = jacfwd(f, holomorphic=True)(Z)
    jr = jacrev(f, holomorphic=True)(Z)
    expected = np.diag(np.exp(Z) * Z[::-1]) + np.exp(Z)[:, None] * np.eye(3)[::-1]
    np.testing.assert_allclose(jf, expected, rtol=1e-12)
    np.testing.assert_allclose(jr, expected, rtol=1e-12)
    # real inputs, complex outputs: forward mode needs no promise
    x = RNG.standard_normal(3)
    np.testing.assert_allclose(jacfwd(lambda x: np.exp(1j * x))(x), np.diag(1j * np.exp(1j * x)), rtol=1e-12)
    with pytest.raises(TypeError, match="holomorphic=True"):
        jacfwd(np.abs)(Z)
    with pytest.raises(TypeError, match="holomorphic=True"):
        jacrev(lambda x: np.exp(1j * x))(x)


def test_complex64_stays_complex64():
    z = Z.astype(np.complex64)
    g = grad(lambda z: np.sum(np.abs(z * np.complex64(1 - 1j)) ** 2))(z)
    assert g.dtype == np.complex64
    out, t = jvp(lambda z: np.fft.fft(np.exp(z)), (z,), (np.ones(3, np.complex64),))
    assert out.dtype == np.complex64 and t.dtype == np.complex64
    x = np.ones(3, np.float32)
    g = grad(lambda x: np.sum(np.abs(np.fft.rfft(x * np.float32(2))) ** 2))(x)
    assert g.dtype == np.float32
    _, tt = jvp(lambda z: vjp(lambda z: np.exp(z) * z, z)[1](np.ones(3, np.complex64))[0], (z,),
                (np.ones(3, np.complex64),))
    assert tt.dtype == np.complex64


def test_duals_by_hand_and_writes():
    d = dual(Z, np.ones(3))  # a real tangent for a complex primal becomes complex
    assert d.tangents.dtype == np.complex128
    y = np.exp(d)
    np.testing.assert_allclose(y.tangent, np.exp(Z))

    def f(x):
        z = x + 0j  # complex, with x's tangent
        z[1] = x[0] * (2 + 1j)  # a complex write into it
        z[2] *= 1j
        return z

    x = RNG.standard_normal(3)
    v = RNG.standard_normal(3)
    out, t = jvp(f, (x,), (v,))
    np.testing.assert_allclose(t, [v[0], v[0] * (2 + 1j), 1j * v[2]])
    check_grads(lambda x: np.real(f(x) * W), (x,), order=1)
    g = grad(lambda x: np.sum(np.abs(f(x)) ** 2))(x)
    h = 1e-6
    fd = [(np.sum(np.abs(f(x + h * e)) ** 2) - np.sum(np.abs(f(x - h * e)) ** 2)) / (2 * h) for e in np.eye(3)]
    np.testing.assert_allclose(g, fd, rtol=1e-6)


def test_jit_replays_complex_programs():
    f = lambda z, x: np.sum(np.abs(np.fft.fft(z * x)) ** 2)
    g = jit(grad(f))
    for s in range(3):
        z, x = cz(4, rng=np.random.default_rng(s)), np.random.default_rng(s).standard_normal(4)
        np.testing.assert_allclose(g(z, x), grad(f)(z, x), rtol=1e-13)


def test_attributes_and_methods():
    x, y = RNG.standard_normal((3, 2)), RNG.standard_normal((1, 2))
    check_grads(lambda x, y: (x + 1j * y).real * x + ((x + 1j * y) ** 2).imag, (x, y), order=2)
    check_grads(lambda z: z.conj() * z.conjugate().real + z.imag, (cz(3, 2),), order=2)
    for modes in (("fwd",), ("rev",)):  # complex64 rounding: each mode alone against differences
        check_grads(lambda z: z.astype(np.complex64).astype(np.complex128) * 2j, (cz(3),), modes=modes,
                    eps=1e-2, atol=1e-4, rtol=1e-4)  # linear, so a large step is exact


def test_values_and_real_behaviour_unchanged():
    x = RNG.standard_normal(3)
    d = dual(x, np.ones(3))
    assert d.real is d and d.conj() is d and np.conj(d) is d and np.real(d) is d
    assert not np.any(np.imag(d)) and type(np.imag(d)) is np.ndarray
    np.testing.assert_array_equal(np.angle(d), np.angle(x))
    assert type(np.angle(d)) is np.ndarray  # a constant: 0 or pi


REFUSED = {  # ops without complex rules: NotImplementedError naming the op, in both modes
    "maximum": lambda z: np.maximum(z, 0.5),
    "clip (maximum)": lambda z: np.clip(z, 0, 1),
    "minimum": lambda z: np.minimum(z, 0.5),
    "max": lambda z: np.max(z),
    "min": lambda z: np.min(z, axis=0),
    "solve": lambda z: np.linalg.solve(np.eye(3) * 2, z),
    "inv": lambda z: np.linalg.inv(np.outer(z, z) + np.eye(3)),
    "det": lambda z: np.linalg.det(np.outer(z, z) + np.eye(3)),
    "cholesky": lambda z: np.linalg.cholesky(np.outer(z, np.conj(z)) + np.eye(3)),
    "np.sort": lambda z: np.sort(z),
}


@pytest.mark.parametrize("name", REFUSED)
def test_ops_without_complex_rules_refuse(name):
    f = REFUSED[name]
    op = name.split("(")[-1].rstrip(")")  # the primitive a composite reaches
    match = (op if op.startswith("np.") else f"'{op}'") + ".*complex"
    with pytest.raises(NotImplementedError, match=match):
        grad(lambda z: np.sum(np.abs(f(z))))(Z)
    with pytest.raises(NotImplementedError, match=match):
        jvp(f, (Z,), (np.ones(3, complex),))
    # a real value made complex inside is refused the same way
    with pytest.raises(NotImplementedError, match=match):
        grad(lambda x: np.sum(np.abs(f(x * (1 + 1j)))))(np.ones(3))


def test_refusals_of_mixed_real_and_complex():
    with pytest.raises(TypeError, match="tangent of a real value is real"):
        jvp(np.exp, (np.ones(2),), (np.ones(2) * 1j,))
    with pytest.raises(TypeError, match="real-valued output"):
        grad(lambda z: np.sum(z))(Z)
    with pytest.raises(TypeError, match="complex cotangent"):
        vjp(np.abs, Z)[1](np.ones(3) + 1j)
    out, pullback = vjp(np.exp, Z)  # a real cotangent of a complex output is fine
    np.testing.assert_allclose(pullback(np.ones(3))[0], np.exp(Z))
    assert primal_value(out) is not None
