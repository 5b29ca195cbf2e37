"""Behaviour of the "arrays" family (autodiff/families/arrays.py) beyond the
registry sweep: values against numpy over many argument forms, numpy's errors,
refusals, float32, derivatives checked three ways (reverse, forward, central
differences) on larger and special inputs, and the exactness of cumprod's
derivative at zeros."""
from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

from autodiff import check_grads, grad, hvp, jacfwd, jacrev, jvp, vjp
from autodiff import numpy_api
from autodiff.core import primal_value
from autodiff.families import arrays


def rand(*shape):
    return np.random.standard_normal(shape)


def traced_values(f, *args):
    """f's value computed on traced inputs: forward (Duals) and reverse (tape)."""
    out_f, _ = jvp(f, args, tuple(np.zeros_like(a) for a in args))
    out_r, _ = vjp(f, *args)
    return out_f, out_r


def assert_same_as_numpy(f, *args, rtol=1e-13):
    expected = f(*args)
    for got in traced_values(f, *args):
        exp_leaves = expected if isinstance(expected, tuple) else (expected,)
        got_leaves = got if isinstance(got, tuple) else (got,)
        assert len(got_leaves) == len(exp_leaves)
        for g, e in zip(got_leaves, exp_leaves):
            g = primal_value(g)
            assert np.shape(g) == np.shape(e)
            assert np.result_type(g) == np.result_type(e)
            np.testing.assert_allclose(g, e, rtol=rtol, atol=rtol)


# -- values against numpy over many argument forms --------------------------------------------
X234 = rand(2, 3, 4)


@pytest.mark.parametrize("shift,axis", [(0, None), (1, None), (-5, None), (25, None), (1, 0), (-1, -1),
                                        ((1, 2), (0, 2)), ((1, -1), (1, 1)), (2, (0, 1, 2)),
                                        ([3, 1], 2), (np.int64(2), 1)])
def test_roll_values(shift, axis):
    assert_same_as_numpy(lambda x: np.roll(x, shift, axis), X234)


@pytest.mark.parametrize("repeats,axis", [(2, None), (0, None), (1, 0), (3, -1), ([2], 1),
                                          ([1, 0, 2], 1), ([0, 0], 0), (np.array([1, 2, 0, 1]), 2),
                                          (list(range(24)), None)])
def test_repeat_values(repeats, axis):
    assert_same_as_numpy(lambda x: np.repeat(x, repeats, axis), X234)


@pytest.mark.parametrize("reps", [1, 2, (2,), (1, 1, 1), (2, 1), (1, 2, 1, 3), (2, 0, 1), [3, 1], ()])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
def test_tile_values(reps, shape):
    assert_same_as_numpy(lambda x: np.tile(x, reps), rand(*shape))


@pytest.mark.parametrize("k", [-4, -1, 0, 1, 2, 5])
@pytest.mark.parametrize("shape", [(4,), (3, 4), (4, 2), (2, 3, 4)])
def test_tril_triu_values(k, shape):
    x = rand(*shape)
    assert_same_as_numpy(lambda x: np.tril(x, k), x)
    assert_same_as_numpy(lambda x: np.triu(x, k=k), x)


@pytest.mark.parametrize("k", [-3, -1, 0, 1, 2, 4])
def test_diag_values(k):
    assert_same_as_numpy(lambda v: np.diag(v, k), rand(3))
    assert_same_as_numpy(lambda v: np.diag(v, k), rand(1))
    assert_same_as_numpy(lambda a: np.diag(a, k), rand(3, 4))
    assert_same_as_numpy(lambda a: np.diag(a, k), rand(4, 2))
    assert_same_as_numpy(lambda a: np.diagflat(a, k), rand(2, 2))


@pytest.mark.parametrize("offset", [-3, -1, 0, 1, 2, 6])
@pytest.mark.parametrize("axis1,axis2", [(0, 1), (1, 0), (0, 2), (2, 1), (-1, 0), (-2, -3)])
def test_diagonal_and_trace_values(offset, axis1, axis2):
    assert_same_as_numpy(lambda x: np.diagonal(x, offset, axis1, axis2), X234)
    assert_same_as_numpy(lambda x: np.trace(x, offset, axis1, axis2), X234)
    assert_same_as_numpy(lambda x: np.trace(x, offset=offset, axis1=axis1, axis2=axis2, dtype=np.float32),
                         X234, rtol=1e-6)


def test_trace_of_a_matrix_and_its_table_entry():
    assert numpy_api.FUNCTIONS[np.trace] is arrays.trace
    for shape in [(3, 3), (3, 5), (5, 2), (1, 1)]:
        assert_same_as_numpy(np.trace, rand(*shape))
    check_grads(lambda x: np.trace(x, 1, 0, 2), (X234,), order=2)


@pytest.mark.parametrize("shape,axis", [(s, a) for s in [(1,), (2,), (7,), (16,), (17,), (3, 5), (6, 1)]
                                        for a in [None, 0, -1, 1][:len(s) + 2]])
def test_cumprod_values(axis, shape):
    x = np.random.uniform(0.5, 1.5, shape) * np.sign(rand(*shape))
    assert_same_as_numpy(lambda x: np.cumprod(x, axis=axis), x, rtol=1e-12)


def test_cumprod_dtype_argument():
    x = rand(3, 4)
    assert_same_as_numpy(lambda x: np.cumprod(x, axis=1, dtype=np.float32), x, rtol=1e-6)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5])
@pytest.mark.parametrize("axis", [0, -1, 1])
def test_diff_values(n, axis):
    x = rand(4, 3)
    assert_same_as_numpy(lambda x: np.diff(x, n, axis), x)
    assert_same_as_numpy(lambda x: np.diff(x, n, axis, prepend=0.5), x)
    pre = rand(4, 3)[:1] if axis == 0 else rand(4, 2)
    assert_same_as_numpy(lambda x: np.diff(x, n, axis, append=pre, prepend=pre), x)


def test_diff_with_only_the_appended_value_traced():
    x = rand(3, 4)
    assert_same_as_numpy(lambda p: np.diff(x, axis=1, append=p), rand(3, 1))
    check_grads(lambda p: np.diff(x, 2, axis=1, append=p, prepend=p), (rand(3, 2),), order=2)


COORDS = [np.array([0.0, 0.3, 1.0, 1.2, 2.0]), np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.arange(5)]


@pytest.mark.parametrize("edge_order", [1, 2])
@pytest.mark.parametrize("spacing", ["none", "scalar", "per-axis", "coords", "int-coords", "uniform-coords"])
def test_gradient_values(edge_order, spacing):
    x = rand(5, 3)
    args = {"none": (), "scalar": (0.7,), "per-axis": (0.5, np.float64(2.0)),
            "coords": (COORDS[0], [0.0, 0.5, 2.0]), "int-coords": (COORDS[2], 1.0),
            "uniform-coords": (COORDS[1], np.array([0.0, 2.0, 4.0]))}[spacing]
    assert_same_as_numpy(lambda x: np.gradient(x, *args, edge_order=edge_order), x)
    one = args[:1]
    assert_same_as_numpy(lambda x: np.gradient(x, *one, axis=0, edge_order=edge_order), x)
    assert_same_as_numpy(lambda x: np.gradient(x, *one, axis=(0,), edge_order=edge_order), x)
    assert_same_as_numpy(lambda x: np.gradient(x[:, 0], *one, edge_order=edge_order), x)


def test_gradient_keeps_f_dtype_like_numpy():
    x = rand(5).astype(np.float32)
    for args in [(), (0.5,), (np.float64(0.5),), (COORDS[0],)]:
        out = jvp(lambda x: np.gradient(x, *args), (x,), (np.ones_like(x),))
        assert np.gradient(x, *args).dtype == np.float32
        assert out[0].dtype == np.float32 and out[1].dtype == np.float32


@pytest.mark.parametrize("sa,sb", [((3,), (2,)), ((2, 3), (3, 2)), ((2, 3), (2,)), ((2,), (2, 1, 3)),
                                   ((), (2, 2)), ((2, 2), ()), ((1, 2, 3), (2, 1)), ((2, 0), (3,))])
def test_kron_values(sa, sb):
    assert_same_as_numpy(np.kron, rand(*sa), rand(*sb))


@pytest.mark.parametrize("sa,sb,kw", [((3,), (3,), {}), ((4, 3), (3,), {}), ((2, 1, 3), (4, 3), {}),
                                      ((3, 2), (2, 3), dict(axisa=0, axisb=1)),
                                      ((3, 2), (2, 3), dict(axisa=0, axisb=-1, axisc=0)),
                                      ((3, 4, 2), (3, 1, 2), dict(axis=0)),
                                      ((4, 2), (2,), {}), ((2,), (4, 3), {}), ((4, 3), (4, 2), {}),
                                      ((2, 5), (5, 2), dict(axisa=0, axisb=1, axisc=0))])
def test_cross_values(sa, sb, kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert_same_as_numpy(lambda a, b: np.cross(a, b, **kw), rand(*sa), rand(*sb))


def test_cross_of_2_vectors_warns_as_numpy_does():
    with pytest.warns(DeprecationWarning, match="2-dimensional vectors are deprecated"):
        jvp(lambda a: np.cross(a, np.ones(2)), (rand(2),), (rand(2),))


@pytest.mark.parametrize("mode", ["full", "same", "valid", 0, 1, 2])
@pytest.mark.parametrize("n,m", [(1, 1), (1, 4), (4, 1), (5, 3), (3, 5), (4, 4), (7, 2), (2, 7), (6, 5)])
def test_convolve_correlate_values(mode, n, m):
    a, v = rand(n), rand(m)
    assert_same_as_numpy(lambda a, v: np.convolve(a, v, mode), a, v)
    assert_same_as_numpy(lambda a, v: np.correlate(a, v, mode), a, v)
    assert_same_as_numpy(lambda a: np.convolve(a, v, mode=mode), a)
    assert_same_as_numpy(lambda v: np.correlate(a, v, mode=mode), v)


def test_convolve_and_correlate_promote_like_numpy():
    a32, v = rand(5).astype(np.float32), rand(3)
    assert_same_as_numpy(np.convolve, a32, v.astype(np.float32), rtol=1e-6)
    assert_same_as_numpy(np.correlate, a32, v, rtol=1e-6)


XP = np.array([-1.0, 0.0, 0.5, 0.5, 2.0, 3.0])  # a repeated knot at 0.5
FP = np.array([1.0, -2.0, 0.3, 0.7, 3.0, 2.0])
XQ = np.array([-2.0, -1.0, -0.3, 0.0, 0.25, 0.5, 1.1, 2.0, 2.99, 3.0, 3.5, np.nan])


@pytest.mark.parametrize("kw", [{}, dict(left=-7.0), dict(right=9.0), dict(left=-7.0, right=np.float64(9.0)),
                                dict(period=2.5), dict(period=-2.5, left=3.0)])
def test_interp_values(kw):
    assert_same_as_numpy(lambda x: np.interp(x, XP, FP, **kw), XQ)
    assert_same_as_numpy(lambda f: np.interp(XQ, XP, f, **kw), FP)
    assert_same_as_numpy(lambda x, p, f: np.interp(x, p, f, **kw), XQ, XP, FP)
    assert_same_as_numpy(lambda x: np.interp(x, XP, FP, **kw), XQ.reshape(3, 4))
    assert_same_as_numpy(lambda x: np.interp(x, XP, FP, **kw), np.array(0.7))
    assert_same_as_numpy(lambda f: np.interp(1.3, XP, f, **kw), FP)
    assert_same_as_numpy(lambda f: np.interp([0.2, 5.0], list(XP), f, **kw), FP)


def test_interp_single_point_infinite_values_and_float32():
    assert_same_as_numpy(lambda x: np.interp(x, [0.5], [2.0], left=-1.0), np.array([0.0, 0.5, 1.0]))
    fp = np.array([0.0, np.inf, 1.0, 1.0, np.inf])
    with np.errstate(invalid="ignore"):
        assert_same_as_numpy(lambda x: np.interp(x, [0.0, 1.0, 2.0, 3.0, 4.0], fp),
                             np.array([0.5, 1.5, 2.5, 3.5, 1.0]))
    flat_end = np.array([0.0, 1.0, 2.0, 2.0])  # a nan query stays nan even between equal values
    assert_same_as_numpy(lambda f: np.interp(np.array([np.nan, 0.5]), [0.0, 1.0, 2.0, 3.0], f), flat_end)
    x32 = np.array([0.2, 1.7], np.float32)
    out, t = jvp(lambda x: np.interp(x, XP, FP), (x32,), (np.ones_like(x32),))
    assert out.dtype == np.float64 == t.dtype  # numpy interpolates in float64


def test_remainder_and_fmod_values():
    x = np.array([-3.7, -1.2, -0.0, 0.4, 2.6, 5.0, -5.0, 7.25])
    y = np.array([1.5, -0.7, 2.2, -1.1, 2.6, -2.5, 2.5, 0.5])
    for f in [np.remainder, np.mod, np.fmod, lambda x, y: np.remainder(x, 1.5),
              lambda x, y: np.fmod(-2.0, y)]:
        assert_same_as_numpy(f, x, y)
    assert numpy_api.UFUNCS[np.mod] is arrays.remainder and numpy_api.UFUNCS[np.fmod] is arrays.fmod


@pytest.mark.parametrize("f,sign", [(np.remainder, np.floor), (np.fmod, np.trunc)])
def test_remainder_fmod_derivatives(f, sign):
    """d/dx = 1; d/dy = -q, with q the floor (remainder) or truncated (fmod) quotient."""
    x = np.array([-3.7, -1.2, 0.4, 2.6, 7.3, -7.3])
    y = np.array([1.5, -0.7, 2.2, -1.1, 2.0, 2.0])
    gx, gy = grad(lambda x, y: np.sum(f(x, y)), argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(gx, np.ones_like(x))
    np.testing.assert_array_equal(gy, -sign(x / y))
    _, t = jvp(lambda y: f(x, y), (y,), (np.ones_like(y),))
    np.testing.assert_array_equal(t, -sign(x / y))
    check_grads(f, (x, y), order=2)
    # the quotient is the one numpy's value used, even where x / y rounds to an integer
    g = grad(lambda y: f(1.0, y))(np.array(0.1))
    assert g == -9.0 and f(1.0, 0.1) == pytest.approx(0.1, abs=1e-15)


def test_remainder_by_zero_is_nan_not_an_exception():
    with np.errstate(all="ignore"):
        out, t = jvp(lambda y: np.remainder(np.array([1.0, 2.0]), y), (np.array([0.0, 1.5]),),
                     (np.ones(2),))
        assert np.isnan(out[0]) and not np.isfinite(t[0]) and t[1] == -1.0


def test_einsum_sublists_and_repeated_indices_values():
    a, b, c = rand(2, 3), rand(3, 4), rand(4)
    sq, cube, batch = rand(3, 3), rand(2, 2, 2), rand(2, 3, 3)
    for f, args in [
        (lambda a, b: np.einsum(a, [0, 1], b, [1, 2], [0, 2]), (a, b)),
        (lambda a, b: np.einsum(a, [0, 1], b, [1, 2]), (a, b)),
        (lambda a, b: np.einsum(a, [30, 1], b, [1, 2], [2, 30]), (a, b)),
        (lambda a, b, c: np.einsum(a, [0, 1], b, [1, 2], c, [2], [0]), (a, b, c)),
        (lambda a, c: np.einsum(a, [Ellipsis, 0], c[:3], [0], [Ellipsis]), (batch, c)),
        (lambda a: np.einsum(a, [0, 0]), (sq,)),
        (lambda a: np.einsum(a, [0, 0], [0]), (sq,)),
        (lambda a: np.einsum("ii->i", a), (sq,)),
        (lambda a: np.einsum("ii", a), (sq,)),
        (lambda a: np.einsum("i i", a), (sq,)),
        (lambda a: np.einsum("iii->i", a), (cube,)),
        (lambda a: np.einsum("iij->ji", a), (cube,)),
        (lambda a: np.einsum("...ii->...i", a), (batch,)),
        (lambda a: np.einsum("i...i", a), (np.moveaxis(batch, 0, 1),)),
        (lambda a, s: np.einsum("ij,jj->i", a, s), (a, sq)),
        (lambda a, b: np.einsum("ij,jk->ik", a, b), (a, b)),
        (lambda a, b: np.einsum("ij,jk", a, b, optimize=True), (a, b)),
    ]:
        assert_same_as_numpy(f, *args)
        check_grads(f, args, order=2)


# -- derivatives three ways on larger and special inputs ------------------------------------------
@pytest.mark.parametrize("f,shapes", [
    (lambda x: np.roll(x, (2, -3), axis=(0, 1)) * x, [(4, 5)]),
    (lambda x: np.repeat(x, [1, 3, 0, 2], axis=1) ** 2, [(3, 4)]),
    (lambda x: np.tile(x, (2, 1, 2)) * np.tile(x, (2, 2)).sum(), [(2, 3)]),
    (lambda x: np.tril(x @ x.T, -1) + np.triu(x @ x.T), [(4, 3)]),
    (lambda x: np.diag(np.diag(x) ** 2, 1) @ np.diag(x[:, 0], 1), [(4, 4)]),
    (lambda x: np.trace(x @ x.T) + np.trace(x, 1), [(3, 3)]),
    (lambda x: np.cumprod(x, axis=0) * np.cumprod(x[::-1], axis=1), [(5, 4)]),
    (lambda x: np.diff(np.sin(x), 2, axis=0, prepend=x[:1]), [(5, 3)]),
    (lambda x: sum(np.gradient(x ** 2, 0.5, 1.5, edge_order=2)), [(4, 5)]),
    (lambda a, b: np.kron(a, b) ** 2, [(2, 3), (2, 2)]),
    (lambda a, b: np.cross(np.cross(a, b), a), [(4, 3), (4, 3)]),
    (lambda a, v: np.convolve(np.tanh(a), v, "same") * np.correlate(a, v ** 2, "same"), [(9,), (4,)]),
    (lambda x, f: np.interp(x, [-2.0, -0.5, 0.1, 1.3, 2.0], f) ** 2, [(6,), (5,)]),
    (lambda a, b: np.einsum(a, [0, 1], b, [1, 0]) * np.einsum("ii", a @ b), [(3, 3), (3, 3)]),
])
def test_derivatives_three_ways(f, shapes):
    args = tuple(rand(*s) for s in shapes)
    if len(shapes) == 2 and shapes[0] == (6,) and shapes[1] == (5,):  # interp: queries off the knots
        args = (np.array([-2.5, -1.2, -0.2, 0.6, 1.7, 2.4]), args[1])
    check_grads(f, args, order=2)
    nums = tuple(range(len(args)))
    for a, b in zip(jacfwd(f, argnums=nums)(*args), jacrev(f, argnums=nums)(*args)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_interp_derivative_conventions():
    xp, fp = np.array([0.0, 1.0, 3.0]), np.array([0.0, 2.0, 3.0])
    x = np.array([-1.0, 0.5, 1.0, 2.0, 3.0, 4.0])
    # slope of the segment, that to the right at a knot; 0 outside and at the last knot
    np.testing.assert_array_equal(jvp(lambda x: np.interp(x, xp, fp), (x,), (np.ones(6),))[1],
                                  [0.0, 2.0, 0.5, 0.5, 0.0, 0.0])
    # in fp: the hat functions
    jac = jacrev(lambda f: np.interp(x, xp, f))(fp)
    np.testing.assert_allclose(jac, [[1, 0, 0], [0.5, 0.5, 0], [0, 1, 0], [0, 0.5, 0.5], [0, 0, 1],
                                     [0, 0, 1]])
    # in xp: d/dxp of fp[j] + (fp[j+1] - fp[j]) (x - xp[j]) / (xp[j+1] - xp[j])
    g = grad(lambda p: np.interp(2.0, p, fp))(xp)
    np.testing.assert_allclose(g, [0.0, -0.25, -0.25])
    # traced left/right enter only outside the range
    total = lambda l, r, f: np.sum(np.interp(x, xp, f, left=l, right=r))
    gl, gr, _ = grad(total, argnums=(0, 1, 2))(0.0, 0.0, fp)
    assert gl == 1.0 and gr == 1.0


def test_interp_with_only_left_traced_is_refused_loudly():
    """numpy's dispatcher for np.interp looks at x, xp and fp only: with those
    plain and a traced left, numpy's own code runs and converts left with float(),
    which the traced value refuses (rather than dropping its derivative)."""
    with pytest.raises(TypeError, match="float()"):
        grad(lambda l: np.interp(np.array([-1.0]), [0.0, 1.0], [0.0, 1.0], left=l))(0.5)


def test_gradient_in_traced_coordinates_matches_differences():
    t = np.cumsum(np.random.uniform(0.5, 1.5, 6))
    f = np.sin(t)
    check_grads(lambda t: np.gradient(f, t), (t,), order=2)
    check_grads(lambda t: np.gradient(f, t, edge_order=2), (t,), order=2)
    check_grads(lambda h: np.gradient(f, h), (np.array(0.7),), order=2)
    # evenly spaced traced coordinates: the non-uniform formula's derivative, not the shortcut's
    u = np.arange(5.0)
    check_grads(lambda t: np.gradient(u ** 2, t, edge_order=2), (u,), order=2)


# -- cumprod: exact derivatives at zeros --------------------------------------------------------------
def _cumprod_jacobian(x):
    n = len(x)
    jac = np.zeros((n, n))
    for k in range(n):
        for j in range(k + 1):
            jac[k, j] = np.prod([x[i] for i in range(k + 1) if i != j])
    return jac


@pytest.mark.parametrize("x", [[2.0, 0.0, 3.0, 4.0], [0.0, 0.0, 1.5, -2.0, 3.0], [1.5, -2.0, 0.0],
                               [0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                               [3.0, 0.5, -1.0, 2.0, 0.0, 1.5, 0.0, 2.5, 1.0, -0.5, 2.0]])
def test_cumprod_is_exact_at_zeros(x):
    x = np.array(x)
    expected = _cumprod_jacobian(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 0/0 anywhere
        np.testing.assert_allclose(jacfwd(np.cumprod)(x), expected, rtol=1e-14, atol=0)
        np.testing.assert_allclose(jacrev(np.cumprod)(x), expected, rtol=1e-14, atol=0)
        # second order: d2/dx_i dx_j of sum(u * cumprod(x)), exact too
        u = np.random.standard_normal(len(x))
        v = np.random.standard_normal(len(x))
        h = hvp(lambda x: np.sum(u * np.cumprod(x)), x, v)
    n = len(x)
    hess = np.zeros((n, n))
    for k in range(n):
        for i, j in itertools.combinations(range(k + 1), 2):
            p = np.prod([x[m] for m in range(k + 1) if m not in (i, j)])
            hess[i, j] += u[k] * p
            hess[j, i] += u[k] * p
    np.testing.assert_allclose(h, hess @ v, rtol=1e-13, atol=1e-13)
    check_grads(np.cumprod, (x,), order=2)


# -- errors: numpy's, and the refusals ---------------------------------------------------------------------
@pytest.mark.parametrize("f,exc,match", [
    (lambda x: np.roll(x, [[1]], 0), ValueError, "'shift' and 'axis'"),
    (lambda x: np.roll(x, 1, axis=3), np.exceptions.AxisError, "axis 3"),
    (lambda x: np.repeat(x, [1, 2], axis=0), ValueError, "broadcast"),
    (lambda x: np.repeat(x, -1), ValueError, "negative"),
    (lambda x: np.tile(x, (-1, 1)), ValueError, "negative"),
    (lambda x: np.diag(x[None]), ValueError, "1- or 2-d"),
    (lambda x: np.diagonal(x[0]), ValueError, "at least two dimensions"),
    (lambda x: np.diagonal(x, 0, 1, -1), ValueError, "cannot be the same"),
    (lambda x: np.trace(x, axis1=2), np.exceptions.AxisError, "axis 2"),
    (lambda x: np.cumprod(x, axis=2), np.exceptions.AxisError, "axis 2"),
    (lambda x: np.diff(x, -1), ValueError, "non-negative"),
    (lambda x: np.diff(x[0, 0]), ValueError, "at least one dimensional"),
    (lambda x: np.gradient(x, 1.0, 2.0, 3.0), TypeError, "invalid number of arguments"),
    (lambda x: np.gradient(x, edge_order=3), ValueError, "'edge_order'"),
    (lambda x: np.gradient(x[:2], edge_order=2), ValueError, "too small"),
    (lambda x: np.gradient(x, [0.0, 1.0], 1.0), ValueError, "must match the length"),
    (lambda x: np.gradient(x, np.ones((3, 2)), 1.0), ValueError, "scalars or 1d"),
    (lambda x: np.cross(x, x), ValueError, "incompatible dimensions"),
    (lambda x: np.cross(x[0], x[0, :3], axisa=1), np.exceptions.AxisError, "axisa"),
    (lambda x: np.convolve(x, x[0]), ValueError, "too deep"),
    (lambda x: np.convolve(x[0, :0], x[0]), ValueError, "a cannot be empty"),
    (lambda x: np.correlate(x[0], x[0, :0]), ValueError, "second array argument cannot be empty"),
    (lambda x: np.correlate(x[0, 0], x[0]), ValueError, "too small depth"),
    (lambda x: np.convolve(x[0], x[1], "v"), ValueError, "'valid', 'same', or 'full'"),
    (lambda x: np.convolve(x[0], x[1], "x"), ValueError, "'valid', 'same', or 'full'"),
    (lambda x: np.convolve(x[0], x[1], None), TypeError, "mode not understood"),
    (lambda x: np.convolve(x[0], x[1], 3), ValueError, "must be 0, 1, or 2"),
    (lambda x: np.interp(x[0], [0.0, 1.0], [1.0, 2.0, 3.0]), ValueError, "same length"),
    (lambda x: np.interp(x[0], [], []), ValueError, "empty"),
    (lambda x: np.interp(x[0], [[0.0, 1.0]], [[0.0, 1.0]]), ValueError, "too deep"),
    (lambda x: np.interp(x[0], [[0.0, 1.0]], [[0.0, 1.0]], period=1.0), ValueError, "1-D"),
    (lambda x: np.interp(x[0], [0.0, 1.0], [1.0, 2.0], period=0), ValueError, "non-zero"),
    (lambda x: np.einsum(x, [0, 60]), ValueError, "valid range"),
    (lambda x: np.einsum("ii", x), ValueError, "don't match"),
])
def test_errors(f, exc, match):
    x = rand(3, 4)
    with pytest.raises(exc, match=match):
        f(x)  # numpy itself
    with pytest.raises(exc, match=match):  # ... and on traced values, in both modes
        jvp(f, (x,), (x,))
    with pytest.raises(exc, match=match):
        vjp(f, x)


@pytest.mark.parametrize("f,exc,match", [
    (lambda x: np.trace(x, out=np.zeros(())), NotImplementedError, "out="),
    (lambda x: np.cumprod(x, out=np.zeros(12)), NotImplementedError, "out="),
    (lambda x: np.interp(x[0], [0.0, 1.0], np.array([1.0, 2.0j])), TypeError, "complex"),
    (lambda x: np.remainder(x, 2.0, dtype=np.float32), NotImplementedError, "np.remainder"),
])
def test_refusals_on_traced_values(f, exc, match):
    """numpy accepts these; on traced values they would drop or mangle the derivative."""
    x = rand(3, 4)
    f(x)
    with pytest.raises(exc, match=match):
        jvp(f, (x,), (x,))
    with pytest.raises(exc, match=match):
        vjp(f, x)


# -- float32 in, float32 out -------------------------------------------------------------------------
@pytest.mark.parametrize("f", [
    lambda x: np.roll(x, 1, 0), lambda x: np.repeat(x, [1, 2, 0], axis=0), lambda x: np.tile(x, 2),
    np.tril, lambda x: np.triu(x, 1), lambda x: np.diag(x[0], 1), np.diagonal, np.trace,
    lambda x: np.cumprod(x, axis=1), lambda x: np.diff(x, 2), lambda x: np.gradient(x, 0.5)[0],
    lambda x: np.kron(x, x), lambda x: np.cross(x, x[::-1]), lambda x: np.convolve(x[0], x[1]),
    lambda x: np.correlate(x[0], x[1, :2], "same"), lambda x: np.remainder(x, 0.7),
    lambda x: np.fmod(x, x[::-1] + 3.0), lambda x: np.einsum(x, [0, 1], x, [0, 1]),
    lambda x: np.einsum("ii->i", x),
])
def test_float32_stays_float32(f):
    x = np.random.uniform(0.5, 1.5, (3, 3)).astype(np.float32)
    assert np.result_type(f(x)) == np.float32
    out, t = jvp(f, (x,), (np.ones_like(x),))
    assert out.dtype == np.float32 and t.dtype == np.float32
    out, pullback = vjp(f, x)
    (g,) = pullback(np.ones_like(out))
    assert g.dtype == np.float32
    _, tt = jvp(lambda x: vjp(f, x)[1](np.ones_like(f(x)))[0], (x,), (np.ones_like(x),))
    assert tt.dtype == np.float32


def test_only_the_plain_spacing_path_takes_numpys_uniform_shortcut():
    # evenly spaced plain coordinates: numpy's value, numpy's formula
    t = np.array([0.0, 1.0, 2.0, 3.0])
    x = rand(4)
    out = traced_values(lambda x: np.gradient(x, t, edge_order=2), x)[0]
    np.testing.assert_array_equal(primal_value(out), np.gradient(x, t, edge_order=2))


def test_results_are_boxes_when_only_a_constant_operand_is_plain():
    a, v = rand(5), rand(3)
    out, t = jvp(lambda v: np.convolve(a, v), (v,), (np.ones(3),))
    np.testing.assert_allclose(t, np.convolve(a, np.ones(3)), rtol=1e-13)
    _, t = jvp(lambda a: np.convolve(a, v), (a,), (np.ones(5),))
    np.testing.assert_allclose(t, np.convolve(np.ones(5), v), rtol=1e-13)


def test_ndarray_methods_and_operators_reach_the_family():
    from autodiff import check_grads
    x = np.array([[1.5, -2.0], [0.5, 3.0]])

    def f(x):
        y = x.copy()
        y %= 0.7
        return (np.sum(x % 0.7) + np.sum(1.3 % x) + x.diagonal().sum() + x.trace() + x.repeat(2).sum()
                + x.cumprod().sum() + np.sum(np.multiply.accumulate(x, axis=1)) + y.sum())
    check_grads(f, (x,), order=1)
    check_grads(lambda x: np.sum(x % 0.7) + x.cumprod().sum() + x.trace(), (x,), order=2)
