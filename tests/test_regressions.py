"""Wrong answers and silent drops found by probing the engine, each pinned down.

Every case checks the value against plain numpy and the derivative against
central differences (float64), or checks that the engine refuses loudly.
(The jit cases live in test_jit.py.)
"""
import copy
import pickle
import warnings

import numpy as np
import pytest

from autodiff import check_grads, dual, grad, hvp, jacfwd, jacrev, jvp, value_and_grad, vjp


def central(f, x, eps=1e-6):
    """d f / d x by central differences, for a scalar f of a float64 array x."""
    x = np.asarray(x, dtype=np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


def agree(f, x, expected=None, atol=1e-6):
    """grad, jacfwd, jacrev and central differences agree (and equal ``expected``)."""
    g = grad(f)(x)
    fd = central(f, x)
    np.testing.assert_allclose(g, fd, atol=atol, rtol=1e-6)
    np.testing.assert_allclose(jacfwd(f)(x), g, atol=1e-12, rtol=1e-10)
    np.testing.assert_allclose(jacrev(f)(x), g, atol=1e-12, rtol=1e-10)
    if expected is not None:
        np.testing.assert_allclose(g, expected, atol=1e-12, rtol=1e-12)
    return g


# -- 1. norm: every ord is the right norm, or it raises -------------------------------------
def test_matrix_2_norm_is_the_largest_singular_value_not_frobenius():
    a = np.array([[3.0, 0.0], [4.0, 5.0]])
    u, s, vt = np.linalg.svd(a)
    for kw in [dict(ord=2, axis=(0, 1)), dict(ord=2)]:
        v, g = value_and_grad(lambda a: np.linalg.norm(a, **kw))(a)
        assert np.isclose(v, 6.708203932499369, rtol=1e-14)
        np.testing.assert_allclose(g, np.outer(u[:, 0], vt[0]), atol=1e-12)   # u1 v1^T
        np.testing.assert_allclose(g, central(lambda a: np.linalg.norm(a, **kw), a), atol=1e-6)
    v, g = value_and_grad(lambda a: np.linalg.norm(a, ord=2, axis=(1, 0)))(a)
    np.testing.assert_allclose(g, np.outer(u[:, 0], vt[0]), atol=1e-12)


@pytest.mark.parametrize("shape, kw", [
    ((5,), {}), ((5,), dict(ord=1)), ((5,), dict(ord=np.inf)), ((5,), dict(ord=-np.inf)),
    ((5,), dict(ord=3)), ((5,), dict(ord=0.5)), ((5,), dict(ord=-2)), ((5,), dict(ord=0)),
    ((3, 4), {}), ((3, 4), dict(ord="fro")), ((3, 4), dict(ord=1)), ((3, 4), dict(ord=-1)),
    ((3, 4), dict(ord=np.inf)), ((3, 4), dict(ord=-np.inf)),
    ((2, 3, 4), dict(axis=(2, 0), ord=1)), ((2, 3, 4), dict(axis=(0, 2), ord=np.inf)),
    ((2, 3, 4), dict(axis=(-1, 1), ord=-np.inf)), ((2, 3, 4), dict(axis=-1, ord=3, keepdims=True)),
    ((2, 3, 4), dict(axis=(1, 2), keepdims=True)), ((2, 3, 4), dict(keepdims=True)), ((2, 3, 4), {}),
])
def test_norm_matches_numpy_and_central_differences(shape, kw):
    x = np.random.standard_normal(shape)
    f = lambda x: np.linalg.norm(x, **kw)
    out = vjp(f, x)[0]
    expected = np.linalg.norm(x, **kw)
    assert np.shape(out) == np.shape(expected)
    np.testing.assert_allclose(out, expected, rtol=1e-13)
    check_grads(f, (x,), order=2)


def test_norm_bad_arguments_are_numpys_errors():
    x = dual(np.ones((2, 2, 2)), np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="Improper number of dimensions"):
        np.linalg.norm(x, ord=1)
    with pytest.raises(ValueError, match="Invalid norm order"):
        np.linalg.norm(x, ord="fro", axis=0)


# -- 4. deepcopy keeps the derivative; pickle refuses ------------------------------------------
def test_deepcopy_of_a_traced_value_keeps_its_derivative():
    x = np.array([1.0, 2.0])
    np.testing.assert_array_equal(grad(lambda x: np.sum(copy.deepcopy(x) ** 2))(x), 2 * x)
    np.testing.assert_array_equal(grad(lambda x: np.sum(copy.copy(x) ** 2))(x), 2 * x)
    np.testing.assert_array_equal(grad(lambda x: np.sum(x.copy() ** 2) + np.sum(np.copy(x)))(x), 2 * x + 1)
    # a training loop that keeps the best parameters keeps their hypergradient
    def best_after(lr):
        w, best = np.array([3.0, -1.0]), None
        for _ in range(3):
            w = w - lr * 2 * w
            best = copy.deepcopy({"w": w})
        return np.sum(best["w"] ** 2)
    g = grad(best_after)(0.1)
    assert np.isclose(g, central(lambda lr: best_after(float(lr)), 0.1), rtol=1e-6)
    _, t = jvp(best_after, (0.1,), (1.0,))
    assert np.isclose(t, g, rtol=1e-12)


def test_deepcopy_of_a_dual_is_a_dual_with_the_same_tag():
    d = dual(np.array([1.0, 2.0]), np.array([[1.0, 0.0], [0.0, 1.0]]))
    c = copy.deepcopy(d)
    assert c.tag is d.tag and c.primal is not d.primal and c.tangents is not d.tangents
    np.testing.assert_array_equal(c.tangents, d.tangents)


def test_pickling_a_traced_value_refuses():
    with pytest.raises(TypeError, match="pickling a Var would drop its derivative"):
        grad(lambda x: np.sum(pickle.loads(pickle.dumps(x)) ** 2))(np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="pickling a Dual would drop its derivative"):
        jvp(lambda x: pickle.loads(pickle.dumps(x)), (np.ones(2),), (np.ones(2),))
    # a Dual made by hand has no transform to lose: it round-trips
    d = pickle.loads(pickle.dumps(dual(np.array([1.0, 2.0]), np.array([0.5, 0.25]))))
    np.testing.assert_array_equal(d.tangent, [0.5, 0.25])


# -- 5. jvp with integer primals ---------------------------------------------------------------
def test_jvp_python_int_primal_is_promoted_and_int_arrays_refuse():
    assert jvp(lambda lr: lr * 2.0, (1,), (1.0,)) == (2.0, 2.0)
    with pytest.raises(TypeError, match="integer or boolean primal"):
        jvp(lambda lr: lr * 2.0, (np.array([1, 2]),), (np.ones(2),))
    with pytest.raises(TypeError, match="integer or boolean primal"):
        jvp(lambda b: b * 2.0, (True,), (1.0,))
    for transform in (grad, jacfwd, jacrev):
        with pytest.raises(TypeError, match="floating-point"):
            transform(lambda x: np.sum(x * 2.0))(np.array([1, 2]))


# -- 6. prod with exact zeros -------------------------------------------------------------------
@pytest.mark.parametrize("x, expected", [
    ([0.0, 2.0, 3.0], [6.0, 0.0, 0.0]),
    ([2.0, 0.0, 3.0, 0.0], [0.0, 0.0, 0.0, 0.0]),
    ([0.0], [1.0]),
    ([-1.5, 4.0, 0.0, 2.0, 0.5], [0.0, 0.0, -6.0, 0.0, 0.0]),
])
def test_prod_with_exact_zeros(x, expected):
    x = np.array(x)
    agree(np.prod, x, expected)
    check_grads(np.prod, (x,), order=2)  # the Hessian at zeros too: prod is a polynomial


def test_prod_with_zeros_along_axes_second_order():
    x = np.random.standard_normal((3, 4, 2))
    x[0, 1, 0] = x[2, 2, 1] = x[2, 3, 1] = 0.0
    for axis in [None, 0, 1, (0, 2), (1, 2)]:
        check_grads(lambda x: np.prod(x, axis=axis), (x,), order=2)
        check_grads(lambda x: np.prod(x, axis=axis, keepdims=True), (x,), order=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 0/0 anywhere
        jacfwd(lambda x: np.prod(x, axis=1))(x)
        jacrev(lambda x: np.prod(x, axis=1))(x)


# -- 7. primal-only evaluation hid derivatives ----------------------------------------------
def test_unique_carries_the_derivative_of_its_values():
    x = np.array([3.0, 1.0, 2.5, 1.5])
    f = lambda x: np.sum(np.unique(x) * np.array([1.0, 2.0, 3.0, 4.0]))
    agree(f, x)
    vals, first, inverse, counts = np.unique(dual(x, np.ones(4)), return_index=True, return_inverse=True,
                                             return_counts=True)
    np.testing.assert_array_equal(vals.primal, np.unique(x))
    np.testing.assert_array_equal(inverse, np.unique(x, return_inverse=True)[1])
    # at a tie the derivative is that of the first occurrence (the documented convention)
    np.testing.assert_array_equal(grad(lambda x: np.sum(np.unique(x)))(np.array([1.0, 2.0, 2.0])), [1, 1, 0])


def test_full_like_with_a_traced_fill_value():
    x = np.array([1.5, 2.0, -3.0])
    g = agree(lambda x: np.sum(np.full_like(x, x[0]) * np.array([1.0, 2.0, 4.0])), x)
    np.testing.assert_array_equal(g, [7.0, 0.0, 0.0])
    out = np.full_like(dual(x, np.ones(3)), dual(2.0, 1.0))
    np.testing.assert_array_equal(out.primal, [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(out.tangent, [1.0, 1.0, 1.0])


def test_conversions_that_would_drop_a_derivative_refuse():
    x = np.array([1.0, 2.0])
    with pytest.raises(TypeError, match="astype"):
        grad(lambda x: np.sum(x.astype(object)))(x)
    with pytest.raises(TypeError, match="plain array"):
        grad(lambda x: np.sum(np.full_like(np.zeros(3), x[0])))(x)
    with pytest.raises(TypeError, match="plain array"):
        grad(lambda x: np.copyto(np.zeros(2), x))(x)

    def set_item(x):
        p = np.zeros(3)
        p[0] = x[0]
        return np.sum(p)

    def fill(x):
        p = np.zeros(3)
        p.fill(x[0])
        return np.sum(p)

    for f in (set_item, fill):
        with pytest.raises(ValueError) as info:  # numpy's own error, caused by ours
            grad(f)(x)
        assert "plain array" in str(info.value.__cause__) and "drop its derivative" in str(info.value.__cause__)


# -- 8. complex values: differentiated where the rules hold, refused (naming the op) elsewhere -------
def test_complex_values_differentiate_where_rules_hold():
    x = np.array([1.0, 2.0])
    # a real input through a complex computation gets the real part of its cotangent
    np.testing.assert_array_equal(grad(lambda x: np.sum(np.real(x * (1 + 1j))))(x), [1.0, 1.0])
    # JAX's convention: grad of a real f of z = x + iy is df/dx - i df/dy; d|z| = conj(z) / |z|
    np.testing.assert_allclose(grad(np.abs)(np.array(3 + 4j)), 0.6 - 0.8j)
    out, t = jvp(np.sin, (np.ones(2) + 0j,), (np.ones(2),))
    assert t.dtype == np.complex128
    np.testing.assert_allclose(t, np.cos(1.0) * np.ones(2))
    d = dual(np.ones(2) + 0j, np.ones(2))  # a complex primal's tangent is complex
    assert d.tangents.dtype == np.complex128


def test_complex_values_refuse_where_no_rule():
    x = np.array([1.0, 2.0])
    z = np.array([1.0 + 2.0j, -0.5 + 1.0j])
    with pytest.raises(TypeError, match="tangent of a real value is real"):
        jvp(np.sin, (np.ones(2),), (np.ones(2) * 1j,))
    with pytest.raises(TypeError, match="tangent of a real value is real"):
        dual(np.ones(2), np.ones(2) + 1j)
    with pytest.raises(TypeError, match="real-valued output"):
        grad(lambda x: np.sum(x.astype(complex)))(x)
    with pytest.raises(TypeError, match="complex cotangent for a real output"):
        vjp(np.sin, x)[1](np.ones(2) + 1j)
    for f, name in [(lambda z: np.maximum(z, 0.5), "'maximum'"), (lambda z: np.max(z), "'max'"),
                    (lambda z: np.minimum(z, 0.5), "'minimum'"), (lambda z: np.min(z), "'min'"),
                    (lambda z: np.linalg.solve(np.eye(2), z), "'solve'"),
                    (lambda z: np.linalg.inv(np.outer(z, z) + np.eye(2)), "'inv'"),
                    (lambda z: np.linalg.det(np.outer(z, z) + np.eye(2)), "'det'")]:
        for transform in (lambda f: grad(lambda z: np.sum(np.abs(f(z)))), lambda f: lambda z: jvp(f, (z,), (z,))):
            with pytest.raises(NotImplementedError, match=name + ".*complex"):
                transform(f)(z)
    with pytest.raises(NotImplementedError, match="np.sort of complex"):
        grad(lambda z: np.sum(np.abs(np.sort(z))))(z)
    with pytest.raises(TypeError, match="holomorphic=True"):
        jacfwd(np.sin)(z)
    with pytest.raises(TypeError, match="holomorphic=True"):
        jacrev(np.sin)(z)
    np.testing.assert_allclose(jacfwd(np.sin, holomorphic=True)(z), np.diag(np.cos(z)))
    np.testing.assert_allclose(jacrev(np.sin, holomorphic=True)(z), np.diag(np.cos(z)))


def test_real_imag_and_conj_of_real_values():
    x = np.array([1.0, -2.0])
    g = grad(lambda x: np.sum(np.real(x) * 3.0 + x.real + np.conj(x) + x.conj() + np.imag(x) + x.imag))(x)
    np.testing.assert_array_equal(g, [6.0, 6.0])


# -- 9. repeated argnums ------------------------------------------------------------------------
def test_repeated_argnums_answer_each_position():
    f = lambda x, y: x * y
    assert grad(f, argnums=(0, 0))(3.0, 1.5) == (1.5, 1.5)
    assert grad(f, argnums=(1, 0, 1))(3.0, 1.5) == (3.0, 1.5, 3.0)
    v, g = value_and_grad(f, argnums=(0, 0))(3.0, 1.5)
    assert v == 4.5 and g == (1.5, 1.5)
    ja, jb = jacrev(f, argnums=(0, 0))(np.array([3.0]), np.array([1.5]))
    np.testing.assert_array_equal(ja, [[1.5]]) and np.testing.assert_array_equal(jb, [[1.5]])
    ja, jb = jacfwd(f, argnums=(0, 0))(np.array([3.0]), np.array([1.5]))
    np.testing.assert_array_equal(ja, [[1.5]]) and np.testing.assert_array_equal(jb, [[1.5]])
    with pytest.raises(TypeError, match="argnums must be integers"):
        grad(f, argnums=(0.0,))(1.0, 2.0)


# -- 10. division by zero follows numpy ---------------------------------------------------------
def test_division_by_zero_inside_rules_follows_numpy():
    with pytest.warns(RuntimeWarning, match="divide by zero"):
        assert grad(lambda x: x / 0.0)(1.0) == np.inf
    with pytest.warns(RuntimeWarning):
        v, g = value_and_grad(lambda x: np.var(x, ddof=1))(np.array([1.0]))
    assert np.isnan(v) and np.isnan(g).all()
    with pytest.warns(RuntimeWarning):
        v, g = value_and_grad(lambda x: np.mean(x[x > 5]))(np.array([1.0, 2.0]))
    assert np.isnan(v)
    np.testing.assert_array_equal(g, [0.0, 0.0])  # no element was selected
    with pytest.warns(RuntimeWarning, match="divide by zero"):
        _, t = jvp(lambda x: 2.0 / x, (0.0,), (1.0,))
    assert t == -np.inf


# -- 11. det and slogdet at singular matrices ------------------------------------------------
@pytest.mark.parametrize("a, expected", [
    ([[1.0, 2.0], [2.0, 4.0]], [[4.0, -2.0], [-2.0, 1.0]]),
    ([[0.0]], [[1.0]]),
    ([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]], [[-3.0, 6.0, -3.0], [6.0, -12.0, 6.0], [-3.0, 6.0, -3.0]]),
    (np.zeros((3, 3)), np.zeros((3, 3))),
])
def test_det_derivative_at_singular_matrices_is_the_adjugate(a, expected):
    a = np.array(a)
    g = agree(np.linalg.det, a)
    np.testing.assert_allclose(g, expected, atol=1e-12)
    check_grads(np.linalg.det, (a,), order=2)
    # forward-over-reverse: the Hessian of det along a direction, by central differences of grad
    v = np.random.standard_normal(a.shape)
    fd = (grad(np.linalg.det)(a + 1e-6 * v) - grad(np.linalg.det)(a - 1e-6 * v)) / 2e-6
    np.testing.assert_allclose(hvp(np.linalg.det, a, v), fd, atol=1e-6)


def test_slogdet_at_a_singular_matrix_gives_numpys_value_and_no_linalg_error():
    a = np.array([[0.0]])
    sign, logdet = np.linalg.slogdet(a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        v, g = value_and_grad(lambda a: np.linalg.slogdet(a)[1])(a)
    assert v == logdet == -np.inf
    assert not np.isfinite(g).any()  # d log|det| is infinite there: a true singularity


def test_det_batched_and_nonsingular_agree_with_numpy():
    a = np.random.standard_normal((2, 3, 3))
    v, g = value_and_grad(lambda a: np.sum(np.linalg.det(a)))(a)
    np.testing.assert_allclose(v, np.sum(np.linalg.det(a)), rtol=1e-13)
    np.testing.assert_allclose(g, np.linalg.det(a)[:, None, None] * np.swapaxes(np.linalg.inv(a), -1, -2),
                               rtol=1e-10)


# -- clearer errors and numpy's keyword forms ---------------------------------------------------
def test_ndarray_methods_take_numpys_keywords():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    g = grad(lambda x: x.sum(dtype=np.float64) + x.reshape(shape=(4,)).sum(axis=0)
             + x.mean(axis=0, keepdims=True).sum() + x.max(axis=1).sum())(x)
    np.testing.assert_allclose(g, central(lambda x: x.sum() * 2 + x.mean(axis=0).sum() + x.max(axis=1).sum(), x),
                               atol=1e-6)


def test_format_spec_formats_the_primal_number():
    d = dual(0.123456, 1.0)
    assert f"{d:.3f}" == "0.123" and f"{d:8.2e}" == "1.23e-01"
    seen = []
    grad(lambda x: (seen.append(f"{x:.2f}"), x * 2.0)[1])(3.0)
    assert seen == ["3.00"]
    assert f"{d}" == str(d)
    with pytest.raises(TypeError, match="format its elements"):
        f"{dual(np.ones(2), np.ones(2)):.3f}"


# -- found by the random-program test ------------------------------------------------------------
def test_power_keeps_the_mixed_second_derivative_at_exponent_zero():
    f = lambda p: p[0] ** p[1]
    x = np.array([2.0, 0.0])
    h = jacfwd(grad(f))(x)
    fd = np.stack([(grad(f)(x + e) - grad(f)(x - e)) / 2e-6 for e in 1e-6 * np.eye(2)])
    np.testing.assert_allclose(h, fd, atol=1e-6)
    np.testing.assert_allclose(h, h.T, atol=1e-12)            # d2/dxdy x^y = 1/x at y = 0
    assert h[0, 1] == 0.5
    np.testing.assert_array_equal(grad(lambda x: np.sum(x ** 0.0))(np.array([0.0, 1.0])), [0.0, 0.0])


@pytest.mark.parametrize("f, x, expected", [
    (lambda x: np.logaddexp(x, 0.0), 0.0, 0.25),
    (lambda x: np.logaddexp(x, -x), 0.0, 1.0),
    (lambda x: np.logaddexp(x, x), 0.3, 0.0),
])
def test_logaddexp_is_smooth_at_a_tie(f, x, expected):
    assert np.isclose(hvp(f, np.array(x), np.array(1.0)), expected, atol=1e-15)
    fd = (grad(f)(np.array(x + 1e-6)) - grad(f)(np.array(x - 1e-6))) / 2e-6
    assert np.isclose(fd, expected, atol=1e-6)


def test_softplus_is_smooth_at_zero_and_matches_numpy():
    from autodiff import nn
    assert hvp(nn.softplus, np.array(0.0), np.array(1.0)) == 0.25
    x = np.linspace(-40.0, 40.0, 81)
    np.testing.assert_allclose(nn.softplus(x), np.logaddexp(x, 0.0), rtol=4e-16, atol=0)
    np.testing.assert_allclose(vjp(lambda a: np.logaddexp(a, x[::-1]), x)[0], np.logaddexp(x, x[::-1]),
                               rtol=4e-16, atol=0)


def test_hstack_and_vstack_take_python_numbers():
    x = np.array([1.0, 2.0])
    out, t = jvp(lambda x: np.hstack([x, 1.0]), (x,), (x,))
    np.testing.assert_array_equal(out, [1.0, 2.0, 1.0]) and np.testing.assert_array_equal(t, [1.0, 2.0, 0.0])
    out, t = jvp(lambda x: np.vstack([x[0], 1.0]), (x,), (x,))
    np.testing.assert_array_equal(out, [[1.0], [1.0]]) and np.testing.assert_array_equal(t, [[1.0], [0.0]])


def test_slogdet_returns_numpys_named_tuple():
    a = np.array([[2.0, 1.0], [1.0, 3.0]])
    g = grad(lambda a: np.linalg.slogdet(a).logabsdet * np.linalg.slogdet(a).sign)(a)
    np.testing.assert_allclose(g, np.linalg.inv(a).T, rtol=1e-12)
    sign, logdet = vjp(lambda a: np.linalg.slogdet(a), a)[0]
    assert sign == 1.0 and np.isclose(logdet, np.log(5.0))
