"""NaN-safe singular points: a zero tangent or cotangent contributes exactly zero.

Where a partial derivative is infinite or undefined at a finite input (sqrt,
log, 1/y at 0, fractional powers at 0, arcsin/arccos/arctanh at +-1, log1p at
-1), a direction that is exactly zero there gives exactly 0 instead of
0 * inf = nan, in forward and reverse mode, per direction (K > 1), and at
second order; a nonzero direction through the singularity still gives inf or
nan.  `autodiff.rules.base.NAN_SAFE = False` gives back the plain products.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from autodiff import check_grads, dual, grad, hvp, jacfwd, jacrev, jit, jvp, vjp
from autodiff.backend import kernels_enabled, numba_available, set_kernels
from autodiff.rules import base
from autodiff.rules.base import nan_safe, nansafe_mul

# the partials themselves are still computed (1 / 0 warns, as numpy does)
pytestmark = pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning",
                                        "ignore:invalid value:RuntimeWarning")


@pytest.fixture(autouse=True)
def _safe_mode():
    """Every test starts in the default mode, and a failing test cannot leak its mode."""
    before = base.NAN_SAFE
    base.NAN_SAFE = True
    yield
    base.NAN_SAFE = before


# -- the guarded ops at their singular points ---------------------------------------------------
# (id, f, x): f elementwise in x; x holds singular points and ordinary ones
Y = np.array([0.5, 0.3, 1.5, 2.0])
UNARY = [
    ("sqrt", np.sqrt, [0.0, 0.0, 1.0, 4.0]),
    ("pow-0.5", lambda x: x ** 0.5, [0.0, 0.0, 1.0, 4.0]),
    ("pow-0.3", lambda x: x ** 0.3, [0.0, 0.0, 1.0, 4.0]),
    ("pow-neg", lambda x: x ** -0.5, [0.0, 0.0, 1.0, 4.0]),
    ("pow-array-exponent", lambda x: x ** Y, [0.0, 0.0, 0.0, 4.0]),
    ("power-fn", lambda x: np.power(x, 0.25), [0.0, 0.0, 1.0, 4.0]),
    ("log", np.log, [0.0, 0.0, 1.0, 2.0]),
    ("log1p", np.log1p, [-1.0, -1.0, 0.0, 1.0]),
    ("reciprocal", lambda y: 1.0 / y, [0.0, 0.0, 1.0, 2.0]),
    ("div-by-x", lambda y: 3.0 / y, [0.0, -0.0, 1.0, 2.0]),
    ("div-by-constant-zero", lambda x: x / np.array([0.0, 0.0, 1.0, 2.0]), [1.0, 0.0, 1.0, 2.0]),
    ("div-by-python-zero", lambda x: x / 0.0, [1.0, 0.0, 1.0, 2.0]),
    ("x-over-x-squared", lambda x: x / (x * x), [0.0, 0.0, 1.0, 2.0]),
    ("arcsin", np.arcsin, [1.0, -1.0, 0.5, 0.0]),
    ("arccos", np.arccos, [1.0, -1.0, 0.5, 0.0]),
    ("arctanh", np.arctanh, [1.0, -1.0, 0.5, 0.0]),
]
UNARY_IDS = [u[0] for u in UNARY]


def _unguarded(fn):
    with nan_safe(False):
        return fn()


def _check_guarded(safe, plain, T):
    """Exactly 0 where the direction is 0; elsewhere what the plain products give,
    and not finite where they are not (inf or nan, honestly)."""
    T = np.broadcast_to(T, safe.shape)
    bad = ~np.isfinite(plain)
    assert bad.any(), "the case must hit a singular partial"
    assert np.isnan(plain[T == 0]).any(), "without the guard a zero direction is nan here"
    assert np.all(safe[T == 0] == 0)
    np.testing.assert_array_equal(safe[(T != 0) & ~bad], plain[(T != 0) & ~bad])
    assert not np.isfinite(safe[(T != 0) & bad]).any()


def _directions(n, K=4):
    """K directions: every entry zero in some direction, nonzero in others."""
    T = np.zeros((K, n))
    T[0] = 1.0                         # all nonzero
    T[1, ::2] = 2.0                    # alternate
    T[2, 1::2] = -0.5
    return T                           # T[3] all zero


@pytest.mark.parametrize("name, f, x", UNARY, ids=UNARY_IDS)
def test_forward_zero_directions_give_zero(name, f, x):
    x = np.array(x)
    T = _directions(x.size)
    safe = f(dual(x, T)).tangents
    plain = _unguarded(lambda: f(dual(x, T)).tangents)
    _check_guarded(safe, plain, T)
    # K = 1 through jvp agrees with each row
    for k in range(T.shape[0]):
        np.testing.assert_array_equal(jvp(f, (x,), (T[k],))[1], safe[k])


@pytest.mark.parametrize("name, f, x", UNARY, ids=UNARY_IDS)
def test_reverse_zero_cotangents_give_zero(name, f, x):
    x = np.array(x)
    for u in _directions(x.size):
        (safe,) = vjp(f, x)[1](u)
        (plain,) = _unguarded(lambda: vjp(f, x)[1](u))
        assert np.all(safe[u == 0] == 0)
        np.testing.assert_array_equal(safe[u != 0], plain[u != 0])


@pytest.mark.parametrize("name, f, x", UNARY, ids=UNARY_IDS)
def test_jacobians_have_exact_zeros_off_the_diagonal(name, f, x):
    """jacfwd pushes K = n one-hot directions, jacrev pulls n one-hot cotangents:
    every entry off the diagonal is a zero direction through the singularity."""
    x = np.array(x)
    jf, jr = jacfwd(f)(x), jacrev(f)(x)
    off = ~np.eye(x.size, dtype=bool)
    assert np.all(jf[off] == 0) and np.all(jr[off] == 0)
    finite = np.isfinite(np.diag(jf))
    assert not finite.all()
    np.testing.assert_array_equal(finite, np.isfinite(np.diag(jr)))
    np.testing.assert_allclose(np.diag(jf)[finite], np.diag(jr)[finite], rtol=1e-15)


@pytest.mark.parametrize("name, f, x", UNARY, ids=UNARY_IDS)
def test_a_nonzero_direction_through_the_singularity_is_not_finite(name, f, x):
    x = np.array(x)
    t = jvp(f, (x,), (np.ones_like(x),))[1]
    g = grad(lambda x: np.sum(f(x)))(x)
    plain = _unguarded(lambda: jvp(f, (x,), (np.ones_like(x),))[1])
    bad = ~np.isfinite(plain)
    assert bad.any()
    # nothing changes where the plain products are finite; where they are not, the
    # answer is not finite either (the same inf or nan, except where a term whose own
    # tangent is exactly 0 no longer adds a nan: x / x**2 gives inf rather than nan)
    for r in (t, g):
        np.testing.assert_array_equal(r[~bad], plain[~bad])
        assert not np.isfinite(r[bad]).any()
    if name != "x-over-x-squared":
        np.testing.assert_array_equal(t, plain)
        np.testing.assert_array_equal(g, plain)


# -- binary rules: each argument's partial ------------------------------------------------------
BINARY = [  # (id, f(a, b), a, b): a and b both traced
    ("div", lambda a, b: a / b, [0.0, 1.0, 2.0, 3.0], [0.0, 0.0, 1.0, 2.0]),
    ("pow", lambda a, b: a ** b, [0.0, 0.0, 1.0, 2.0], [0.5, -0.5, 0.3, 1.5]),
    ("pow-zero-exponent", lambda a, b: a ** b, [0.0, 0.0, 1.0, 2.0], [0.0, 0.5, 0.0, 1.0]),
]


@pytest.mark.parametrize("name, f, a, b", BINARY, ids=[c[0] for c in BINARY])
def test_binary_rules_both_arguments(name, f, a, b):
    a, b = np.array(a), np.array(b)
    Ta, Tb = _directions(a.size), _directions(b.size)[::-1].copy()
    run = lambda: f(dual(a, Ta), dual(b, Tb)).tangents
    safe, plain = run(), _unguarded(run)
    # each argument's term separately: a zero direction of that argument adds exactly 0
    ta = f(dual(a, Ta), b).tangents
    tb = f(a, dual(b, Tb)).tangents
    pa = _unguarded(lambda: f(dual(a, Ta), b).tangents)
    pb = _unguarded(lambda: f(a, dual(b, Tb)).tangents)
    np.testing.assert_array_equal(ta, np.where(Ta == 0, 0.0, pa))
    np.testing.assert_array_equal(tb, np.where(Tb == 0, 0.0, pb))
    np.testing.assert_array_equal(safe, ta + tb)
    assert np.isnan(plain).any() or np.isnan(pa).any() or np.isnan(pb).any()
    # reverse: zero cotangents give zero in both arguments
    u = np.array([0.0, 1.0, 0.0, 1.0])
    ga, gb = vjp(f, a, b)[1](u)
    assert np.all(ga[u == 0] == 0) and np.all(gb[u == 0] == 0)


def test_pow_keeps_its_zero_exponent_conventions():
    """x**0 at x = 0: d/dx is exactly 0 (as before), d/dy is 0 where x <= 0."""
    x, y = np.array([0.0, 2.0]), np.array([0.0, 0.0])
    ga, gb = grad(lambda a, b: np.sum(a ** b), argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(ga, [0.0, 0.0])
    np.testing.assert_allclose(gb, [0.0, np.log(2.0)])


# -- second order -----------------------------------------------------------------------------
def test_second_derivative_partial_of_x_to_the_1_5():
    """d/dx x**1.5 = 1.5 x**0.5 is finite at 0; d2/dx2 = 0.75 x**-0.5 is not."""
    f = lambda x: np.sum(x ** 1.5)
    x = np.array([0.0, 1.0, 4.0])
    np.testing.assert_array_equal(grad(f)(x), [0.0, 1.5, 3.0])
    v = np.array([0.0, 1.0, 1.0])
    np.testing.assert_allclose(hvp(f, x, v), [0.0, 0.75, 0.375], rtol=1e-15)
    assert np.isinf(hvp(f, x, np.ones(3))[0])
    # forward over forward and reverse over reverse agree
    t2 = jvp(lambda x: jvp(f, (x,), (v,))[1], (x,), (v,))[1]
    np.testing.assert_allclose(t2, v @ (np.diag([0.0, 0.75, 0.375]) @ v), rtol=1e-15)
    gg = grad(lambda x: np.sum(grad(f)(x) * v))(x)
    np.testing.assert_allclose(gg, [0.0, 0.75, 0.375], rtol=1e-15)
    with nan_safe(False):
        assert np.isnan(hvp(f, x, v)[0])


@pytest.mark.parametrize("f, x", [
    (np.sqrt, [0.0, 1.0]), (np.log, [0.0, 1.0]), (np.arcsin, [1.0, 0.5]), (np.arctanh, [-1.0, 0.5]),
    (lambda x: 1.0 / x, [0.0, 2.0]), (lambda x: x ** 0.5, [0.0, 2.0]), (np.log1p, [-1.0, 0.5]),
], ids=["sqrt", "log", "arcsin", "arctanh", "reciprocal", "pow", "log1p"])
def test_second_order_zero_directions(f, x):
    """Hessians of sum(f) with a direction that is zero at the singular entry: the
    zero reaches the partial's own derivative (0.5/ans differentiated is -0.5/ans**2 ...)."""
    x, v = np.array(x), np.array([0.0, 1.0])
    s = lambda x: np.sum(f(x))
    h = hvp(s, x, v)
    assert h[0] == 0.0 and np.isfinite(h[1])
    eps = 1e-5
    fd = (jvp(f, (x + eps * v,), (v,))[1] - jvp(f, (x - eps * v,), (v,))[1]) / (2 * eps)
    np.testing.assert_allclose(h[1], fd[1], rtol=1e-6)
    assert not np.isfinite(hvp(s, x, np.array([1.0, 0.0]))[0])


def test_mixed_partials_stay_honest_and_symmetric():
    """y sqrt(x) at x = y = 0: the gradient is 0 (y's zero cotangent makes d/dx exact),
    d2/dx dy = 1/(2 sqrt x) is inf from either side, d2/dx2 = 0 (y is 0 along x)."""
    f = lambda z: z[1] * np.sqrt(z[0])
    z = np.zeros(2)
    np.testing.assert_array_equal(grad(f)(z), [0.0, 0.0])
    expected = np.array([[0.0, np.inf], [np.inf, 0.0]])
    np.testing.assert_array_equal(jacfwd(grad(f))(z), expected)     # forward over reverse
    np.testing.assert_array_equal(jacrev(grad(f))(z), expected)     # reverse over reverse
    np.testing.assert_array_equal(hvp(f, z, np.array([1.0, 0.0])), expected[0])
    np.testing.assert_array_equal(hvp(f, z, np.array([0.0, 1.0])), expected[1])


# -- the pairwise-distance example -----------------------------------------------------------
def _pairwise(X):
    d = X[:, None, :] - X[None, :, :]          # zero on the diagonal: x_i - x_i
    return np.sqrt(np.sum(d * d, axis=-1))


def energy_kernel(X):
    """sum_ij exp(-r_ij**2): smooth in X, the diagonal terms are constant."""
    r = _pairwise(X)
    return np.sum(np.exp(-r ** 2))


def energy_masked(X):
    """sum over i != j of 1 / (1 + r_ij) + r_ij**2, the diagonal removed by a mask."""
    r = _pairwise(X)
    mask = 1.0 - np.eye(len(X))
    return np.sum(mask * (1.0 / (1.0 + r) + r * r))


def energy_norm(X):
    """The same distances through np.linalg.norm (a composite over sqrt)."""
    d = X[:, None, :] - X[None, :, :]
    r = np.linalg.norm(d, axis=-1)
    return np.sum(np.exp(-0.5 * r * r) * (1.0 + r * r))


ENERGIES = [energy_kernel, energy_masked, energy_norm]


def _central(f, x, v, eps=1e-5):
    return (f(x + eps * v) - f(x - eps * v)) / (2 * eps)


@pytest.mark.parametrize("E", ENERGIES, ids=lambda E: E.__name__)
def test_pairwise_distances_have_finite_exact_derivatives(E):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 2))
    v = rng.standard_normal(X.shape)
    val, t = jvp(E, (X,), (v,))
    g = grad(E)(X)
    h = hvp(E, X, v)
    for d in (t, g, h):
        assert np.all(np.isfinite(d))
    np.testing.assert_allclose(t, _central(E, X, v), rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(np.sum(g * v), t, rtol=1e-12)
    np.testing.assert_allclose(h, _central(grad(E), X, v), rtol=1e-6, atol=1e-7)
    # K > 1 directions in one pass (forward over reverse: a Hessian block)
    V = rng.standard_normal((3,) + X.shape)
    HV = grad(E)(dual(X, V)).tangents
    for k in range(3):
        np.testing.assert_allclose(HV[k], hvp(E, X, V[k]), rtol=1e-12, atol=1e-12)
    # reverse vs forward vs central differences, to order 2
    check_grads(E, (X,), order=2)
    # without the guard the diagonal poisons every derivative
    with nan_safe(False):
        assert np.isnan(grad(E)(X)).all()
        assert np.isnan(jvp(E, (X,), (v,))[1])


def test_pairwise_reverse_over_reverse():
    rng = np.random.default_rng(1)
    X, v = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    hv = grad(lambda X: np.sum(grad(energy_kernel)(X) * v))(X)
    np.testing.assert_allclose(hv, hvp(energy_kernel, X, v), rtol=1e-10, atol=1e-12)


def test_pairwise_distance_to_itself_with_a_moving_partner():
    """r_ij with particles i and j at the same place but moving apart: the zero is not
    exact there (X_i - X_j changes), so the honest answer is not finite."""
    X = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    v = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]])
    r01 = lambda X: _pairwise(X)[0, 1]
    assert jvp(r01, (X,), (0.0 * v,))[1] == 0.0   # a zero direction
    g = grad(r01)(X)
    assert not np.any(np.isfinite(g[:2])) and np.all(g[2] == 0)
    # The limit of the convention: r = |X_0 - X_1| has no derivative at 0, but the
    # tangent of r**2 = |d|**2 is 2 d.dd = 0 there, an exact zero to first order, so
    # forward mode answers 0 for every direction (reverse mode, whose cotangent of r
    # is 1, gives nan).  Without the guard both gave nan.
    assert jvp(r01, (X,), (v,))[1] == 0.0


# -- the switch ---------------------------------------------------------------------------------
def test_switch_is_read_when_rules_run():
    x, t = np.array([0.0, 1.0]), np.array([0.0, 1.0])
    assert jvp(np.sqrt, (x,), (t,))[1][0] == 0.0
    base.NAN_SAFE = False
    assert np.isnan(jvp(np.sqrt, (x,), (t,))[1][0])
    base.NAN_SAFE = True
    assert jvp(np.sqrt, (x,), (t,))[1][0] == 0.0
    with nan_safe(False):
        assert np.isnan(grad(lambda x: np.sum(np.sqrt(x) * t))(x)[0])
        with nan_safe(True):
            assert grad(lambda x: np.sum(np.sqrt(x) * t))(x)[0] == 0.0
        assert base.NAN_SAFE is False
    assert base.NAN_SAFE is True
    with pytest.raises(RuntimeError):
        with nan_safe(False):
            raise RuntimeError
    assert base.NAN_SAFE is True


def test_jit_bakes_in_the_mode_it_recorded():
    f = lambda x: np.sqrt(x)
    x = dual(np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    safe = jit(f)
    assert safe(x).tangents[0, 0] == 0.0                  # recorded NaN-safe
    with nan_safe(False):
        assert safe(x).tangents[0, 0] == 0.0              # replayed as recorded
        plain = jit(f)
        assert np.isnan(plain(x).tangents[0, 0])          # recorded plain
    assert np.isnan(plain(x).tangents[0, 0])
    assert jit(f)(x).tangents[0, 0] == 0.0


@pytest.mark.parametrize("name, f, x", UNARY, ids=UNARY_IDS)
def test_jit_replays_the_guard(name, f, x):
    """The mask is recorded: new zeros in new places are honoured by the replay."""
    x = np.array(x)
    T = _directions(x.size)
    forward = jit(f)
    pullback = jit(lambda x, u: vjp(f, x)[1](u))
    for T_ in (T, T[::-1].copy()):
        want_t, want_g = f(dual(x, T_)).tangents, vjp(f, x)[1](T_[1])
        for _ in range(2):  # recording run, then a replay
            np.testing.assert_array_equal(forward(dual(x, T_)).tangents, want_t)
            np.testing.assert_array_equal(pullback(x, T_[1]), want_g)


# -- the NaN-safe product itself ------------------------------------------------------------------
def test_nansafe_mul_values():
    a = np.array([0.0, -0.0, 1.0, 2.0, 0.0, -1.0])
    b = np.array([np.inf, np.nan, np.inf, 3.0, 5.0, np.nan])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # makes no nan from 0 * inf, so numpy warns of none
        r = nansafe_mul(a, b)
    np.testing.assert_array_equal(r, [0.0, 0.0, np.inf, 6.0, 0.0, np.nan])
    # only the first factor's zeros are exact: an infinite tangent times a zero partial is nan
    assert np.isnan(nansafe_mul(np.array([np.inf]), np.array([0.0]))[0])
    assert nansafe_mul(0.0, np.inf) == 0.0 and nansafe_mul(2.0, 3.0) == 6.0
    # broadcasting, and a Python number keeps its weak type
    a32 = np.zeros((3, 1, 2), np.float32)
    assert nansafe_mul(a32, np.ones((4, 1))).shape == (3, 4, 2)
    assert nansafe_mul(a32, float("inf")).dtype == np.float32
    assert nansafe_mul(a32, 2.0).dtype == np.float32
    assert nansafe_mul(np.ones(2, np.float32), np.ones(2, np.float64)).dtype == np.float64
    assert nansafe_mul(0.0, np.ones(2, np.float32)).dtype == np.float32


@pytest.mark.parametrize("sa, sb", [((3,), (3,)), ((2, 3), (3,)), ((3,), (2, 3)), ((2, 1), (1, 3)), ((), (3,))])
def test_nansafe_mul_grads_to_order_2(sa, sb):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    check_grads(lambda a, b: nansafe_mul(a, b), (a, b), order=2)
    np.testing.assert_allclose(jacfwd(lambda a, b: nansafe_mul(a, b), argnums=(0, 1))(a, b)[1],
                               jacrev(lambda a, b: nansafe_mul(a, b), argnums=(0, 1))(a, b)[1], rtol=1e-14)


def test_nansafe_mul_rules_at_its_zeros():
    """At a == 0 the product is constant in b (even with an infinite b) and moves like
    t_a * b in a."""
    a, b = np.array([0.0, 0.0, 2.0]), np.array([np.inf, 1.0, np.inf])
    _, ta = jvp(lambda a: nansafe_mul(a, b), (a,), (np.array([1.0, 0.0, 0.0]),))
    np.testing.assert_array_equal(ta, [np.inf, 0.0, 0.0])
    _, tb = jvp(lambda b: nansafe_mul(a, b), (b,), (np.array([np.inf, 1.0, 1.0]),))
    np.testing.assert_array_equal(tb, [0.0, 0.0, 2.0])
    ga, gb = vjp(lambda a, b: nansafe_mul(a, b), a, b)[1](np.array([0.0, 1.0, 0.0]))
    np.testing.assert_array_equal(ga, [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(gb, [0.0, 0.0, 0.0])


def test_float32_stays_float32():
    for f, x in [(np.sqrt, [0.0, 1.0]), (np.log, [0.0, 1.0]), (lambda x: x ** 0.5, [0.0, 1.0]),
                 (lambda x: 1.0 / x, [0.0, 1.0]), (lambda x: x / 0.0, [0.0, 1.0]), (np.arcsin, [1.0, 0.5]),
                 (np.arctanh, [-1.0, 0.5]), (np.log1p, [-1.0, 0.5])]:
        x = np.array(x, np.float32)
        t = np.array([0.0, 1.0], np.float32)
        _, tt = jvp(f, (x,), (t,))
        (g,) = vjp(f, x)[1](t)
        hv = jvp(lambda x: vjp(f, x)[1](t)[0], (x,), (t,))[1]
        for r in (tt, g, hv):
            assert r.dtype == np.float32 and r[0] == 0.0


def test_boxed_tangents_and_cotangents():
    """Tangents that are themselves differentiated values (jvp of a jvp)."""
    x = np.array([0.0, 1.0, 4.0])
    f = lambda s: jvp(np.sqrt, (x,), (s * np.array([0.0, 1.0, 1.0]),))[1]
    np.testing.assert_array_equal(jvp(f, (1.0,), (1.0,))[1], [0.0, 0.5, 0.25])
    g = lambda s: vjp(np.sqrt, x)[1](s * np.array([0.0, 1.0, 1.0]))[0]
    np.testing.assert_array_equal(jvp(g, (1.0,), (1.0,))[1], [0.0, 0.5, 0.25])


# -- the numba kernels of the forward trace -----------------------------------------------------
_KERNELS = numba_available() and kernels_enabled()


ONES = np.ones(20000)


def _large_case(op):
    x = np.zeros(20000)
    x[1::2] = 1.0
    t = np.zeros((2, x.size))
    t[0, 1::2] = 1.0
    return op(dual(x, t)).tangents


@pytest.mark.parametrize("op", [np.sqrt, np.log, lambda x: ONES / x], ids=["sqrt", "log", "div"])
def test_large_arrays_without_kernels(op):
    before = set_kernels(False)
    try:
        t = _large_case(op)
    finally:
        set_kernels(before)
    assert np.all(t[:, ::2] == 0) and np.all(np.isfinite(t))


@pytest.mark.skipif(not _KERNELS, reason="numba kernels are off")
@pytest.mark.parametrize("op", [np.sqrt, np.log, lambda x: ONES / x], ids=["sqrt", "log", "div"])
def test_large_arrays_with_kernels(op):
    t = _large_case(op)
    assert np.all(t[:, ::2] == 0) and np.all(np.isfinite(t))
