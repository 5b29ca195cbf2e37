"""The scipy.special family (autodiff/families/special.py): values against
scipy on many argument forms and dtypes, derivatives against their formulas
and three ways (reverse vs forward vs central differences) to order 2, the
conventions at exceptional points, float32, refusals, and the family being
empty without scipy.  The registry sweep (tests/test_primitives.py, through
tests/cases_special.py) runs the same functions through check_grads too.
"""
from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

sc = pytest.importorskip("scipy.special")

from autodiff import check_grads, dual, grad, hvp, jacfwd, jacrev, jit, jvp, vjp  # noqa: E402
from autodiff.core import primal_value  # noqa: E402
from autodiff.families import special as S  # noqa: E402

UNARY = {  # scipy ufunc: inputs inside the domain, away from kinks and poles
    "gammaln": (sc.gammaln, lambda s: np.random.uniform(0.2, 8.0, s)),
    "digamma": (sc.digamma, lambda s: np.random.uniform(0.2, 8.0, s)),
    "gamma": (sc.gamma, lambda s: np.random.uniform(0.2, 5.0, s)),
    "erf": (sc.erf, lambda s: np.random.uniform(-3.0, 3.0, s)),
    "erfc": (sc.erfc, lambda s: np.random.uniform(-3.0, 5.0, s)),
    "erfinv": (sc.erfinv, lambda s: np.random.uniform(-0.95, 0.95, s)),
    "expit": (sc.expit, lambda s: np.random.uniform(-8.0, 8.0, s)),
    "logit": (sc.logit, lambda s: np.random.uniform(0.02, 0.98, s)),
    "i0e": (sc.i0e, lambda s: np.random.choice([-1.0, 1.0], s) * np.random.uniform(0.1, 6.0, s)),
    "i1e": (sc.i1e, lambda s: np.random.choice([-1.0, 1.0], s) * np.random.uniform(0.1, 6.0, s)),
}
BINARY = {
    "xlogy": (sc.xlogy, lambda s: np.random.standard_normal(s), lambda s: np.random.uniform(0.1, 3.0, s)),
    "xlog1py": (sc.xlog1py, lambda s: np.random.standard_normal(s), lambda s: np.random.uniform(-0.9, 3.0, s)),
}
COMPOSITES = {"expit", "logit", "xlogy", "xlog1py"}
SHAPES = [(), (1,), (3,), (2, 3), (2, 1, 3)]


def _tol(name, dtype):
    """Primitives run scipy itself: exact.  Composites are scipy's formulas up
    to a few ulps."""
    if name not in COMPOSITES:
        return dict(rtol=0, atol=0)
    return dict(rtol=1e-14, atol=1e-300) if dtype == np.float64 else dict(rtol=4e-7, atol=1e-38)


def _boxed_value(f, args):
    """f's value computed on Duals (the numpy calls go through __array_ufunc__)."""
    out, _ = jvp(f, args, tuple(np.zeros_like(a) for a in args))
    return out


# -- values against scipy ---------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_values_match_scipy(name, shape, dtype):
    fn, gen = UNARY[name]
    x = np.asarray(gen(shape), dtype=dtype)
    expected = fn(x)
    for got in (_boxed_value(fn, (x,)), getattr(S, name)(x), vjp(fn, x)[0]):
        got = primal_value(got)
        assert np.shape(got) == np.shape(expected)
        assert np.result_type(got) == np.result_type(expected) == dtype
        np.testing.assert_allclose(got, expected, **_tol(name, dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sx,sy", [((), ()), ((3,), (3,)), ((2, 3), (3,)), ((3,), (2, 3)),
                                   ((2, 1), (1, 3)), ((), (2, 3)), ((2, 3), ())], ids=str)
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_values_match_scipy(name, sx, sy, dtype):
    fn, gx, gy = BINARY[name]
    x, y = np.asarray(gx(sx), dtype), np.asarray(gy(sy), dtype)
    expected = fn(x, y)
    for got in (_boxed_value(fn, (x, y)), getattr(S, name)(x, y), vjp(fn, x, y)[0],
                vjp(lambda x: fn(x, y), x)[0], vjp(lambda y: fn(x, y), y)[0]):
        got = primal_value(got)
        assert np.shape(got) == np.shape(expected)
        assert np.result_type(got) == np.result_type(expected) == dtype
        np.testing.assert_allclose(got, expected, **_tol(name, dtype))


@pytest.mark.parametrize("name", sorted(UNARY))
def test_python_floats_and_lists(name):
    fn, gen = UNARY[name]
    v = float(gen(()))
    np.testing.assert_allclose(primal_value(_boxed_value(fn, (v,))), fn(v), **_tol(name, np.float64))
    np.testing.assert_allclose(getattr(S, name)(v), fn(v), **_tol(name, np.float64))
    lst = [float(gen(())) for _ in range(3)]
    np.testing.assert_allclose(getattr(S, name)(lst), fn(lst), **_tol(name, np.float64))
    # a Python float as the differentiated input: the derivative is a number
    g = grad(fn)(v)
    assert np.ndim(g) == 0 and np.isfinite(g)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_scalar_operands_follow_scipy_dtypes(name):
    """scipy's binary ufuncs read a Python number as float64 (xlogy(float32
    array, 0.5) is float64), unlike numpy's weak scalars; the traced run agrees."""
    fn, gx, gy = BINARY[name]
    x32, y32 = gx((3,)).astype(np.float32), gy((3,)).astype(np.float32)
    for f, args in [(lambda x: fn(x, 0.5), (x32,)), (lambda y: fn(2.0, y), (y32,)),
                    (lambda x: fn(x, np.float32(0.5)), (x32,)), (lambda y: fn(2, y), (y32,)),
                    (lambda x: fn(x, [0.5, 1.5, 2.5]), (x32,)), (lambda x: fn(x, y32), (x32,))]:
        expected = f(*args)
        out, t = jvp(f, args, tuple(np.ones_like(a) for a in args))
        assert out.dtype == np.result_type(expected) and t.dtype == out.dtype
        np.testing.assert_allclose(out, expected, rtol=1e-6)
        (g,) = vjp(f, *args)[1](np.ones_like(expected))
        assert g.dtype == args[0].dtype
    # both Python numbers: scipy's float64 scalar
    assert primal_value(_boxed_value(lambda x: fn(x, 0.5), (1.5,))) == pytest.approx(fn(1.5, 0.5), rel=1e-15)


def test_polygamma_values_match_scipy():
    x = np.random.uniform(0.2, 6.0, (2, 3))
    neg = -np.random.uniform(0.2, 0.8, (2, 3)) - np.random.randint(0, 3, (2, 3))
    for n in range(6):
        for v in (x, neg, 1.7, x[0, 0]):
            expected = sc.polygamma(n, v)
            np.testing.assert_allclose(S.polygamma(n, v), expected, rtol=1e-14)
            np.testing.assert_allclose(primal_value(_boxed_value(lambda x: S.polygamma(n, x), (np.asarray(v),))),
                                       expected, rtol=1e-14)
    np.testing.assert_array_equal(S.polygamma(0, x), sc.digamma(x))
    # an array of orders broadcasts against x, as in scipy
    for n in (np.array([0, 1, 2]), [[3], [0]], np.array([[1, 1, 1]]), np.zeros((0, 1), int)):
        np.testing.assert_allclose(S.polygamma(n, x[0]), sc.polygamma(n, x[0]), rtol=1e-14)
        np.testing.assert_allclose(_boxed_value(lambda x: S.polygamma(n, x), (x[0],)), sc.polygamma(n, x[0]),
                                   rtol=1e-14)
    # integral floats and numpy integers are orders too
    np.testing.assert_allclose(S.polygamma(2.0, x), sc.polygamma(2, x), rtol=1e-14)
    np.testing.assert_allclose(S.polygamma(np.int32(3), x), sc.polygamma(3, x), rtol=1e-14)
    # float32: scipy answers in float64, computed from the float32 inputs
    x32 = x.astype(np.float32)
    for n in (0, 1, 3):
        expected = sc.polygamma(n, x32)
        out, t = jvp(lambda x: S.polygamma(n, x), (x32,), (np.ones_like(x32),))
        assert out.dtype == expected.dtype == np.float64 and t.dtype == np.float64
        np.testing.assert_allclose(out, expected, rtol=1e-14)
        assert grad(lambda x: np.sum(S.polygamma(n, x)))(x32).dtype == np.float32
    # the primitive itself keeps float32, as scipy.special.digamma does
    assert S.polygamma_p(x32, n=2).dtype == np.float32
    np.testing.assert_allclose(S.polygamma_p(x32, n=2), sc.polygamma(2, x32), rtol=2e-6)


def test_accuracy_where_naive_formulas_fail():
    # erfc has its own primitive: 1 - erf(x) is 0 beyond x ~ 6
    x = np.array([6.0, 10.0, 26.0])
    np.testing.assert_array_equal(primal_value(_boxed_value(sc.erfc, (x,))), sc.erfc(x))
    assert np.all(_boxed_value(sc.erfc, (x,)) > 0)
    np.testing.assert_allclose(grad(lambda x: np.sum(sc.erfc(x)))(x), -2 / np.sqrt(np.pi) * np.exp(-x * x),
                               rtol=1e-14)
    # expit's tails keep their relative accuracy (0.5 (1 + tanh(x/2)) gives 0 at x = -40)
    x = np.array([-700.0, -300.0, -40.0, -20.0, 0.0, 20.0, 40.0, 300.0])
    np.testing.assert_allclose(S.expit(x), sc.expit(x), rtol=1e-15, atol=0)
    # below -709 scipy's 1/(1 + exp(-x)) underflows to 0; exp(x)/(1 + exp(x)) gives the subnormal
    assert 0 < S.expit(-740.0) < 1e-320 and sc.expit(-740.0) == 0
    np.testing.assert_allclose(grad(lambda x: np.sum(sc.expit(x)))(x), sc.expit(x) * sc.expit(-x),
                               rtol=1e-14, atol=0)
    # and never overflow into nan, to second order
    x = np.array([-1000.0, 1000.0, -np.inf, np.inf])
    np.testing.assert_array_equal(S.expit(x), [0.0, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal(grad(lambda x: np.sum(sc.expit(x)))(x), np.zeros(4))
    np.testing.assert_array_equal(hvp(lambda x: np.sum(sc.expit(x)), x, np.ones(4)), np.zeros(4))
    # logit keeps its relative accuracy around its zero at 1/2
    x = 0.5 + np.array([1e-12, -3e-9, 1e-5, 0.1, -0.15])
    np.testing.assert_allclose(S.logit(x), sc.logit(x), rtol=1e-14, atol=0)
    np.testing.assert_allclose(grad(lambda x: np.sum(sc.logit(x)))(x), 1 / (x * (1 - x)), rtol=1e-14)
    # scipy's edge values, without warnings, as scipy
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = np.array([0.0, 1.0, 1.5, -0.5])
        np.testing.assert_array_equal(S.logit(x), sc.logit(x))
        np.testing.assert_array_equal(_boxed_value(sc.logit, (x,)), sc.logit(x))
        x, y = np.array([1.0, -2.0, 1.0, 0.0]), np.array([0.0, 0.0, -1.0, 0.0])
        np.testing.assert_array_equal(_boxed_value(sc.xlogy, (x, y)), sc.xlogy(x, y))
        np.testing.assert_array_equal(_boxed_value(sc.xlog1py, (x, y - 1)), sc.xlog1py(x, y - 1))


# -- derivatives against their formulas -----------------------------------------------
def _d(fn, x):
    """f'(x) by reverse and forward mode (which must agree)."""
    g = grad(lambda x: np.sum(fn(x)))(x)
    _, t = jvp(fn, (x,), (np.ones_like(x),))
    np.testing.assert_allclose(g, t, rtol=1e-13, atol=1e-300)
    return g


def _d2(fn, x):
    h = hvp(lambda x: np.sum(fn(x)), x, np.ones_like(x))
    h2 = jvp(lambda x: jvp(fn, (x,), (np.ones_like(x),))[1], (x,), (np.ones_like(x),))[1]
    np.testing.assert_allclose(h, h2, rtol=1e-12, atol=1e-300)
    return h


def test_derivative_formulas():
    x = np.random.uniform(0.3, 6.0, 7)
    np.testing.assert_allclose(_d(sc.gammaln, x), sc.digamma(x), rtol=1e-14)
    np.testing.assert_allclose(_d2(sc.gammaln, x), sc.polygamma(1, x), rtol=1e-14)
    np.testing.assert_allclose(_d(sc.digamma, x), sc.polygamma(1, x), rtol=1e-14)
    np.testing.assert_allclose(_d2(sc.psi, x), sc.polygamma(2, x), rtol=1e-14)
    for n in range(4):
        np.testing.assert_allclose(_d(lambda x: S.polygamma(n, x), x), sc.polygamma(n + 1, x), rtol=1e-14)
        np.testing.assert_allclose(_d2(lambda x: S.polygamma(n, x), x), sc.polygamma(n + 2, x), rtol=1e-14)
    np.testing.assert_allclose(_d(sc.gamma, x), sc.gamma(x) * sc.digamma(x), rtol=1e-14)
    np.testing.assert_allclose(_d2(sc.gamma, x), sc.gamma(x) * (sc.digamma(x) ** 2 + sc.polygamma(1, x)),
                               rtol=1e-13)
    z = np.random.uniform(-2.5, 2.5, 7)
    np.testing.assert_allclose(_d(sc.erf, z), 2 / np.sqrt(np.pi) * np.exp(-z * z), rtol=1e-14)
    np.testing.assert_allclose(_d2(sc.erf, z), -4 * z / np.sqrt(np.pi) * np.exp(-z * z), rtol=1e-13)
    np.testing.assert_allclose(_d(sc.erfc, z), -2 / np.sqrt(np.pi) * np.exp(-z * z), rtol=1e-14)
    u = np.random.uniform(-0.99, 0.99, 7)
    w = sc.erfinv(u)
    np.testing.assert_allclose(_d(sc.erfinv, u), np.sqrt(np.pi) / 2 * np.exp(w * w), rtol=1e-14)
    np.testing.assert_allclose(_d2(sc.erfinv, u), np.pi / 2 * w * np.exp(2 * w * w), rtol=1e-13)
    np.testing.assert_allclose(_d(sc.expit, z), sc.expit(z) * (1 - sc.expit(z)), rtol=1e-14)
    p = np.random.uniform(0.01, 0.99, 7)
    np.testing.assert_allclose(_d(sc.logit, p), 1 / (p * (1 - p)), rtol=1e-13)
    np.testing.assert_allclose(_d2(sc.logit, p), (2 * p - 1) / (p * (1 - p)) ** 2, rtol=1e-12)
    # i0e' = i1e - sign(x) i0e; i1e' = i0e - i1e (1/x + sign(x))
    s = np.random.choice([-1.0, 1.0], 9) * np.random.uniform(1e-6, 30.0, 9)
    np.testing.assert_allclose(_d(sc.i0e, s), sc.i1e(s) - np.sign(s) * sc.i0e(s), rtol=1e-13)
    np.testing.assert_allclose(_d(sc.i1e, s), sc.i0e(s) - sc.i1e(s) * (1 / s + np.sign(s)), rtol=1e-13)


def test_bessel_at_zero():
    """i0e has a kink at 0 (its derivative jumps from 1 to -1): like abs, it
    gets 0 there; i1e is differentiable at 0 with derivative 1/2 (the limit of
    i1e(x)/x), computed without 0/0."""
    x = np.array([0.0, -0.0, 1e-300, -1e-300, 1e-8])
    with np.errstate(all="raise"):
        d1 = _d(sc.i1e, x)
        d0 = _d(sc.i0e, x)
    np.testing.assert_allclose(d1[:4], 0.5, rtol=1e-15)
    np.testing.assert_allclose(d1[4], 0.5 - 1e-8, rtol=1e-12)
    np.testing.assert_array_equal(d0[:2], 0.0)
    np.testing.assert_allclose(d0[2:4], [-1.0, 1.0], rtol=1e-15)  # one-sided, beside the kink
    assert np.all(np.isfinite(_d2(sc.i1e, x)))
    # central differences agree with the value at 0 for i1e
    h = 1e-6
    np.testing.assert_allclose((sc.i1e(h) - sc.i1e(-h)) / (2 * h), d1[0], rtol=1e-5)  # O(h): a kink in i1e''


def test_xlogy_at_x_zero():
    """xlogy(0, y) = 0: the derivative in x is log(y) (x log y is linear in x),
    the derivative in y is 0 exactly, and both keep their second derivatives."""
    y = np.array([0.5, 1.0, 2.0, 7.0])
    x = np.zeros_like(y)
    gx, gy = grad(lambda x, y: np.sum(sc.xlogy(x, y)), argnums=(0, 1))(x, y)
    np.testing.assert_allclose(gx, np.log(y), rtol=1e-15)
    np.testing.assert_array_equal(gy, 0.0)
    _, tx = jvp(lambda x: sc.xlogy(x, y), (x,), (np.ones_like(x),))
    _, ty = jvp(lambda y: sc.xlogy(x, y), (y,), (np.ones_like(y),))
    np.testing.assert_allclose(tx, np.log(y), rtol=1e-15)
    np.testing.assert_array_equal(ty, 0.0)
    # d2/dxdy = 1/y, d2/dy2 = -x/y^2 = 0
    hxy = jacfwd(lambda x: grad(lambda y: np.sum(sc.xlogy(x, y)))(y))(x)
    np.testing.assert_allclose(np.diag(hxy), 1 / y, rtol=1e-15)
    np.testing.assert_array_equal(hvp(lambda y: np.sum(sc.xlogy(x, y)), y, np.ones_like(y)), 0.0)
    # the same for xlog1py, with y + 1
    gx, gy = grad(lambda x, y: np.sum(sc.xlog1py(x, y)), argnums=(0, 1))(x, y - 0.9)
    np.testing.assert_allclose(gx, np.log1p(y - 0.9), rtol=1e-15)
    np.testing.assert_array_equal(gy, 0.0)
    # where x log y is nan (y <= 0 or inf) the value is scipy's 0, and d/dy stays 0
    y = np.array([0.0, -1.0, np.inf, -np.inf, np.nan])
    x = np.zeros_like(y)
    with np.errstate(all="ignore"):
        expected = sc.xlogy(x, y)
        np.testing.assert_array_equal(_boxed_value(sc.xlogy, (x, y)), expected)
        np.testing.assert_array_equal(S.xlogy(x, y), expected)
        gy = grad(lambda y: np.sum(sc.xlogy(x, y)))(y)
        np.testing.assert_array_equal(gy[:4], 0.0)
        yl = np.array([-1.0, -2.0, np.inf, np.nan])
        np.testing.assert_array_equal(S.xlog1py(np.zeros(4), yl), sc.xlog1py(np.zeros(4), yl))
        np.testing.assert_array_equal(grad(lambda y: np.sum(sc.xlog1py(np.zeros(4), y)))(yl)[:3], 0.0)


# -- three ways, to order 2 -------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_three_ways(name):
    fn, gen = UNARY[name]
    x = gen((2, 3))
    check_grads(fn, (x,), order=2)
    check_grads(lambda x: fn(0.5 * x) * x, (x,), order=2)
    jf, jr = jacfwd(fn)(x), jacrev(fn)(x)
    np.testing.assert_allclose(jf, jr, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_three_ways(name):
    fn, gx, gy = BINARY[name]
    for sx, sy in [((2, 3), (2, 3)), ((2, 3), (3,)), ((1, 3), (2, 1)), ((), (2, 3))]:
        check_grads(fn, (gx(sx), gy(sy)), order=2)
    check_grads(lambda x: fn(x, x), (np.random.uniform(0.1, 2.0, (2, 3)),), order=2)


def test_polygamma_three_ways():
    x = np.random.uniform(0.3, 4.0, (2, 3))
    for n in range(5):
        check_grads(lambda x: S.polygamma(n, x), (x,), order=2)
    check_grads(lambda x: S.polygamma(np.array([[0], [2]]), x), (x,), order=2)
    neg = -np.random.uniform(0.2, 0.8, (2, 3)) - np.random.randint(0, 3, (2, 3))
    check_grads(lambda x: S.polygamma(1, x) + sc.psi(x), (neg,), order=2)


def test_order_three_and_nesting():
    x = np.random.uniform(0.5, 3.0, (3,))
    check_grads(sc.gammaln, (x,), order=3)
    check_grads(sc.i1e, (x,), order=3)
    check_grads(lambda x: sc.xlogy(x, x + 1.0), (x,), order=3)
    # x * d/dy gammaln(x y) at y = 1 is x^2 digamma(x): its derivative 2x digamma(x) + x^2 polygamma(1, x)
    # (the inner derivative sees x as a constant: perturbation confusion would change it)
    f = lambda x: x * grad(lambda y: sc.gammaln(x * y))(1.0)
    expected = 2 * 1.7 * sc.digamma(1.7) + 1.7 ** 2 * sc.polygamma(1, 1.7)
    np.testing.assert_allclose(grad(f)(1.7), expected, rtol=1e-13)
    np.testing.assert_allclose(jvp(f, (1.7,), (1.0,))[1], expected, rtol=1e-13)


def test_float32_stays_float32_to_second_order():
    x32 = np.random.uniform(0.2, 0.8, (2, 3)).astype(np.float32)
    fns = [fn for fn, _ in UNARY.values()] + [lambda x: sc.xlogy(x, x + 1), lambda x: sc.xlog1py(x, x)]
    for fn in fns:
        assert fn(x32).dtype == np.float32
        out, t = jvp(fn, (x32,), (np.ones_like(x32),))
        assert out.dtype == t.dtype == np.float32
        (g,) = vjp(fn, x32)[1](np.ones_like(x32))
        assert g.dtype == np.float32
        _, tt = jvp(lambda x: vjp(fn, x)[1](np.ones_like(x32))[0], (x32,), (np.ones_like(x32),))
        assert tt.dtype == np.float32
        np.testing.assert_allclose(g, grad(lambda x: np.sum(fn(x)))(x32.astype(np.float64)), rtol=2e-3)


def test_jit_replays_the_family():
    x = np.random.uniform(0.3, 3.0, (2, 3))
    f = lambda x: np.sum(sc.gammaln(x) * sc.expit(x) + sc.xlogy(x, x) + S.polygamma([[1], [2]], x)
                         + sc.i1e(x) + sc.erfc(x))
    g = jit(grad(f))
    for _ in range(2):
        np.testing.assert_allclose(g(x), grad(f)(x), rtol=1e-14)
    # forward over reverse: the gradient's tangent is the Hessian-vector product
    v = np.random.standard_normal(x.shape)
    for _ in range(2):
        out = g(dual(x, v))
        np.testing.assert_allclose(out.primal, grad(f)(x), rtol=1e-14)
        np.testing.assert_allclose(out.tangent, hvp(f, x, v), rtol=1e-13)


# -- refusals ---------------------------------------------------------------------------
def test_refusals_name_the_function():
    x = np.random.uniform(0.5, 2.0, 3)
    d = dual(x, np.ones(3))
    with pytest.raises(ValueError, match="polygamma: the order n must be a non-negative integer"):
        S.polygamma(0.5, d)
    with pytest.raises(ValueError, match="polygamma: the order n must be a non-negative integer"):
        S.polygamma(-1, x)
    with pytest.raises(ValueError, match="polygamma: the order n must be a non-negative integer"):
        S.polygamma([1, 2.5], d)
    with pytest.raises(TypeError, match="polygamma: the order n is an integer and carries no derivative"):
        S.polygamma(dual(1.0, 1.0), x)
    # scipy.special.polygamma calls np.asarray on its arguments: the box refuses (use S.polygamma)
    with pytest.raises(TypeError, match="np.asarray"):
        sc.polygamma(1, d)
    # ufunc keywords and methods, and scipy ufuncs without rules
    with pytest.raises(TypeError, match="out="):
        sc.gammaln(d, out=np.empty(3))
    with pytest.raises(NotImplementedError, match="gammaln"):
        sc.gammaln(d, dtype=np.float64)
    with pytest.raises(NotImplementedError, match="xlogy.reduce"):
        sc.xlogy.reduce(d)
    with pytest.raises(NotImplementedError, match="i0"):
        sc.i0(d)


# -- without scipy ----------------------------------------------------------------------
def test_without_scipy_the_family_is_empty():
    code = (
        "import sys\n"
        "sys.modules['scipy'] = None\n"
        "sys.modules['scipy.special'] = None\n"
        "import autodiff\n"
        "from autodiff import primitives as P\n"
        "from autodiff.families import special as S\n"
        "import cases_special\n"
        "added = []\n"
        "cases_special.add_cases(lambda *a, **k: added.append(a), lambda *a, **k: added.append(a), {})\n"
        "assert S.UFUNCS == {} and S.FUNCTIONS == {}, S.UFUNCS\n"
        "assert not {'gammaln', 'polygamma', 'gamma', 'erf', 'erfc', 'erfinv', 'i0e', 'i1e'} & set(P.REGISTRY)\n"
        "assert added == []\n"
        "try:\n"
        "    S.gammaln(1.5)\n"
        "except ModuleNotFoundError as e:\n"
        "    assert 'need scipy' in str(e)\n"
        "else:\n"
        "    raise AssertionError('no error')\n"
        "assert abs(S.expit(0.0) - 0.5) < 1e-15 and S.xlogy(0.0, 0.0) == 0\n"
        "print('ok')\n"
    )
    here = os.path.dirname(os.path.abspath(__file__))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=here,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])})
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
