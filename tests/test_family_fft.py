"""The fft family (autodiff/families/fft.py): values equal numpy's on every
argument form, derivatives checked three ways (forward mode and reverse mode
against central differences, reverse against forward by the dot-product test),
the transposes against the real Jacobian of each transform, second
derivatives exactly zero, float32 kept, unsupported arguments refused."""
from __future__ import annotations

import numpy as np
import pytest

from autodiff import check_grads, dual, grad, hvp, jacfwd, jacrev, jvp, vjp
from autodiff.core import Box

F = np.fft
RNG = np.random.default_rng(3)
NORMS = [None, "backward", "ortho", "forward"]


def cz(*shape):
    return RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)


def rz(*shape):
    return RNG.standard_normal(shape)


# (name, function, input): every numpy argument form we accept
FORMS = []
for _norm in NORMS:
    FORMS += [
        ("fft", lambda a, nm=_norm: F.fft(a, norm=nm), cz(6)),
        ("fft-n-pad-axis0", lambda a, nm=_norm: F.fft(a, 7, 0, nm), cz(4, 3)),
        ("fft-n-crop", lambda a, nm=_norm: F.fft(a, n=3, norm=nm), cz(2, 5)),
        ("fft-real-input", lambda a, nm=_norm: F.fft(a, axis=-2, norm=nm), rz(3, 4)),
        ("ifft", lambda a, nm=_norm: F.ifft(a, norm=nm), cz(5)),
        ("ifft-n-axis", lambda a, nm=_norm: F.ifft(a, n=6, axis=1, norm=nm), cz(2, 4, 3)),
        ("rfft-even", lambda a, nm=_norm: F.rfft(a, norm=nm), rz(8)),
        ("rfft-odd", lambda a, nm=_norm: F.rfft(a, norm=nm), rz(7)),
        ("rfft-n-pad-axis0", lambda a, nm=_norm: F.rfft(a, n=9, axis=0, norm=nm), rz(5, 2)),
        ("rfft-n-crop", lambda a, nm=_norm: F.rfft(a, n=4, norm=nm), rz(3, 7)),
        ("irfft", lambda a, nm=_norm: F.irfft(a, norm=nm), cz(5)),
        ("irfft-odd-n", lambda a, nm=_norm: F.irfft(a, n=9, norm=nm), cz(5)),
        ("irfft-n-pad-axis0", lambda a, nm=_norm: F.irfft(a, n=12, axis=0, norm=nm), cz(3, 2)),
        ("irfft-n-crop", lambda a, nm=_norm: F.irfft(a, n=4, norm=nm), cz(2, 6)),
        ("irfft-real-input", lambda a, nm=_norm: F.irfft(a, norm=nm), rz(2, 4)),
        ("hfft", lambda a, nm=_norm: F.hfft(a, n=7, norm=nm), cz(4)),
        ("ihfft", lambda a, nm=_norm: F.ihfft(a, norm=nm), rz(6)),
        ("fft2", lambda a, nm=_norm: F.fft2(a, norm=nm), cz(3, 4)),
        ("fft2-s-axes", lambda a, nm=_norm: F.fft2(a, s=(2, 5), axes=(0, 2), norm=nm), cz(3, 2, 4)),
        ("ifft2", lambda a, nm=_norm: F.ifft2(a, norm=nm), cz(2, 3, 4)),
        ("fftn", lambda a, nm=_norm: F.fftn(a, norm=nm), cz(2, 3, 2)),
        ("fftn-s-minus-one", lambda a, nm=_norm: F.fftn(a, s=(-1, 5), axes=(-1, 0), norm=nm), cz(3, 4)),
        ("fftn-repeated-axes", lambda a, nm=_norm: F.fftn(a, axes=(1, 1, 0), norm=nm), cz(3, 2)),
        ("ifftn", lambda a, nm=_norm: F.ifftn(a, s=(3, 5), axes=(2, 0), norm=nm), cz(2, 3, 4)),
        ("rfftn", lambda a, nm=_norm: F.rfftn(a, norm=nm), rz(2, 3, 4)),
        ("rfftn-s-axes", lambda a, nm=_norm: F.rfftn(a, s=(3, 5), axes=(0, 2), norm=nm), rz(2, 3, 4)),
        ("rfft2", lambda a, nm=_norm: F.rfft2(a, norm=nm), rz(3, 5)),
        ("irfftn", lambda a, nm=_norm: F.irfftn(a, norm=nm), cz(2, 3, 3)),
        ("irfftn-s-axes", lambda a, nm=_norm: F.irfftn(a, s=(4, 5), axes=(1, 2), norm=nm), cz(2, 3, 3)),
        ("irfft2", lambda a, nm=_norm: F.irfft2(a, s=(3, 3), norm=nm), cz(3, 4)),
    ]
FORMS += [
    ("fftshift", lambda a: F.fftshift(a), cz(5, 4)),
    ("fftshift-axes", lambda a: F.fftshift(a, axes=1), cz(5, 4)),
    ("ifftshift", lambda a: F.ifftshift(a, axes=(0,)), cz(5, 4)),
    ("fftshift-of-fft", lambda a: F.fftshift(F.fft(a)), rz(6)),
]
IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(FORMS)]


@pytest.mark.parametrize("name,f,a", FORMS, ids=IDS)
def test_values_equal_numpys(name, f, a):
    expected = f(a)
    t = cz(*a.shape) if np.iscomplexobj(a) else rz(*a.shape)
    out, tan = jvp(f, (a,), (t,))
    assert not isinstance(out, Box) and out.dtype == expected.dtype and out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(tan, f(t))  # linear: the tangent is the transform of the tangent
    out_r, _ = vjp(f, a)
    np.testing.assert_array_equal(out_r, expected)


@pytest.mark.parametrize("name,f,a", FORMS, ids=IDS)
def test_three_way_to_order_two(name, f, a):
    check_grads(f, (a,), order=2)


def _pairs(z):
    return np.concatenate([np.real(z).ravel(), np.imag(z).ravel()])


@pytest.mark.parametrize("name,f,a", FORMS, ids=IDS)
def test_vjp_is_the_transpose_of_the_real_jacobian(name, f, a):
    """The transform as a real matrix J_R on (re, im) pairs, column by column from
    jvp; the vjp of a cotangent u must be c with (re c, -im c) = J_R^T (re u, -im u),
    i.e. re(sum(u J v)) = re(sum(c v)) for every v (the pairing of the convention)."""
    complex_in = np.iscomplexobj(a)
    directions = [e.reshape(a.shape) for e in np.eye(a.size)]
    if complex_in:
        directions += [1j * e for e in directions]
    out = f(a)
    cols = [_pairs(jvp(f, (a,), (d.astype(a.dtype),))[1] + 0 * out) for d in directions]
    jr = np.stack(cols, axis=1)  # rows: (re, im) of the output; columns: input directions
    u = cz(*out.shape) if np.iscomplexobj(out) else rz(*out.shape)
    c = vjp(f, a)[1](u)[0]
    paired = jr.T @ _pairs(np.conj(u) if np.iscomplexobj(out) else u)
    expected = paired[:a.size] - 1j * paired[a.size:] if complex_in else paired
    np.testing.assert_allclose(c.ravel(), expected, rtol=1e-10, atol=1e-12)
    # and against central differences of the real Jacobian
    h = 1e-6
    fd = np.stack([_pairs((f(a + h * d) - f(a - h * d)) / (2 * h)) for d in directions], axis=1)
    np.testing.assert_allclose(jr, fd, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("norm", NORMS)
def test_transpose_formulas(norm):
    """The closed forms of the rules: fft's transpose is fft (the DFT matrix is
    symmetric); its conjugate transpose (the adjoint under re<u, v>) is n ifft
    for norm=backward, and so on."""
    n, g, a = 6, cz(6), cz(6)
    c = vjp(lambda z: F.fft(z, norm=norm), a)[1](g)[0]
    np.testing.assert_allclose(c, F.fft(g, norm=norm), rtol=1e-12, atol=1e-12)
    scale = {None: n, "backward": n, "ortho": n ** 0.5, "forward": 1.0}[norm]
    adjoint = np.conj(vjp(lambda z: F.fft(z, norm=norm), a)[1](np.conj(g))[0])
    np.testing.assert_allclose(adjoint, scale * F.ifft(g), rtol=1e-12, atol=1e-12)
    # rfft: re(fft(zero-padded g)); irfft: the edge bins once, the paired bins twice
    x, gr = rz(n), cz(n // 2 + 1)
    c = vjp(lambda x: F.rfft(x, norm=norm), x)[1](gr)[0]
    np.testing.assert_allclose(c, np.real(F.fft(np.concatenate([gr, np.zeros(n - n // 2 - 1)]), norm=norm)),
                               rtol=1e-12, atol=1e-12)
    u = rz(n)
    c = vjp(lambda z: F.irfft(z, n, norm=norm), gr)[1](u)[0]
    inv_scale = {None: 1 / n, "backward": 1 / n, "ortho": n ** -0.5, "forward": 1.0}[norm]
    weights = np.array([1.0, 2.0, 2.0, 1.0])
    np.testing.assert_allclose(c, inv_scale * weights * np.conj(F.rfft(u)), rtol=1e-12, atol=1e-12)


def test_second_derivatives_are_exactly_zero():
    x, z = rz(6), cz(5)
    f = lambda x: np.real(np.sum(F.fft(x) * (1 - 2j)) + np.sum(F.irfft(F.rfft(x), n=6) * x[::-1]))
    v = rz(6)
    h = hvp(lambda x: np.real(np.sum(F.fft(x) * (1 - 2j))), x, v)
    np.testing.assert_array_equal(h, np.zeros(6))
    # the second derivative of a linear map through vjp and jvp: exactly zero, no error
    u = cz(5)
    _, tt = jvp(lambda z: vjp(lambda z: F.ifft(z, norm="ortho"), z)[1](u)[0], (z,), (cz(5),))
    np.testing.assert_array_equal(tt, np.zeros(5))
    jj = jacfwd(lambda x: jacrev(lambda x: F.irfft(F.rfft(x) * 2.0, n=6))(x))(x)
    np.testing.assert_array_equal(jj, np.zeros((6, 6, 6)))
    # a quadratic through the transforms has the constant Hessian of the quadratic
    hq = hvp(lambda x: np.sum(np.abs(F.rfft(x, norm="ortho")) ** 2), x, v)
    check_grads(f, (x,), order=2)
    check_grads(lambda x: np.sum(np.abs(F.rfft(x, norm="ortho")) ** 2), (x,), order=2)
    np.testing.assert_allclose(hq, jacfwd(grad(lambda x: np.sum(np.abs(F.rfft(x, norm="ortho")) ** 2)))(x) @ v,
                               rtol=1e-12, atol=1e-12)


def test_real_losses_of_spectra():
    """A spectral loss of real parameters: gradients real, equal to central differences."""
    x, k = rz(8), rz(8)

    def loss(x):
        y = F.irfft(F.rfft(x) * F.rfft(k), n=8)  # circular convolution
        return np.sum((y - 1.0) ** 2) + np.sum(np.abs(F.fft(x, norm="ortho")[1:3]))

    g = grad(loss)(x)
    assert g.dtype == np.float64
    h = 1e-6
    fd = np.array([(loss(x + h * e) - loss(x - h * e)) / (2 * h) for e in np.eye(8)])
    np.testing.assert_allclose(g, fd, rtol=1e-6)
    circ = np.stack([np.roll(k, i) for i in range(8)], axis=1)  # the same convolution as a matrix
    np.testing.assert_allclose(F.irfft(F.rfft(x) * F.rfft(k), n=8), circ @ x, rtol=1e-10)


def test_float32_stays_float32():
    x = rz(3, 6).astype(np.float32)
    z = (x + 1j * x[::-1]).astype(np.complex64)
    for f, a in [(F.fft, z), (F.ifft, x), (F.rfft, x), (lambda a: F.irfft(a, n=6), z),
                 (lambda a: F.fftn(a, norm="ortho"), z), (F.rfftn, x), (F.irfftn, z), (F.hfft, z), (F.ihfft, x)]:
        expected = f(a)
        t = np.ones_like(a)
        out, tan = jvp(f, (a,), (t,))
        assert out.dtype == expected.dtype == tan.dtype, f
        np.testing.assert_array_equal(out, expected)
        ct = vjp(f, a)[1](np.ones_like(expected))[0]
        assert ct.dtype == a.dtype, f
        _, tt = jvp(lambda a: vjp(f, a)[1](np.ones_like(expected))[0], (a,), (t,))
        assert tt.dtype == a.dtype, f


def test_duals_and_batched_directions():
    z = cz(2, 5)
    t = cz(3, 2, 5)
    d = F.fft(dual(z, t), n=4, axis=-1, norm="ortho")
    np.testing.assert_allclose(d.tangents, F.fft(t, n=4, axis=-1, norm="ortho"), rtol=1e-14)
    x = rz(4, 3)
    j = jacfwd(lambda x: F.rfft(x, axis=0))(x)
    jr = jacrev(lambda x: np.real(F.rfft(x, axis=0)))(x) + 1j * jacrev(lambda x: np.imag(F.rfft(x, axis=0)))(x)
    np.testing.assert_allclose(j, jr, rtol=1e-12, atol=1e-12)


ERRORS = [
    (lambda a: F.fft(a, out=np.zeros(4, complex)), NotImplementedError, r"np\.fft\.fft\(\.\.\., out=\)"),
    (lambda a: F.rfftn(a, out=np.zeros(3, complex)), NotImplementedError, r"np\.fft\.rfftn"),
    (lambda a: F.rfft(a * 1j), TypeError, r"np\.fft\.rfft needs real input"),
    (lambda a: F.rfftn(a * 1j), TypeError, r"np\.fft\.rfftn needs real input"),
    (lambda a: F.fft(a, norm="unitary"), ValueError, "Invalid norm value"),
    (lambda a: F.ifft(a, n=0), ValueError, "Invalid number of FFT data points"),
    (lambda a: F.fft(a, axis=3), np.exceptions.AxisError, "axis 3"),
    (lambda a: F.fftn(a, s=(4, 4), axes=(0,)), ValueError, "Shape and axes have different lengths"),
]


@pytest.mark.parametrize("f,err,match", ERRORS)
def test_unsupported_arguments_are_refused(f, err, match):
    a = rz(4)
    with pytest.raises(err, match=match):
        grad(lambda a: np.sum(np.abs(f(a))))(a)
    with pytest.raises(err, match=match):
        jvp(f, (a,), (a,))


def test_s_without_axes_warns_as_numpy():
    a = cz(3, 4)
    with pytest.warns(DeprecationWarning):
        out, _ = jvp(lambda a: F.fftn(a, s=(3, 2)), (a,), (a,))
    with pytest.warns(DeprecationWarning):
        expected = F.fftn(a, s=(3, 2))
    np.testing.assert_array_equal(out, expected)


def test_plain_arrays_are_untouched():
    a = rz(5)
    for f in (F.fft, F.rfft, F.irfft, F.fftn, F.fftshift):
        assert type(f(a)) is np.ndarray
    out, _ = jvp(lambda x: F.fft(a) * x, (2.0,), (1.0,))  # a plain transform inside a traced function
    np.testing.assert_array_equal(out, F.fft(a) * 2.0)
