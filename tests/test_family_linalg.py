"""The linalg family beyond the sweep: values against numpy on many argument
forms, refusals, dtypes, the one-triangle convention of eigh, repeated
eigenvalues / singular values, rank-deficient pinv and lstsq, and 3-way checks
(reverse vs forward vs central differences, float64) of the composites."""
import warnings

import numpy as np
import pytest

from autodiff import check_grads, grad, jacfwd, jacrev, jvp, vjp
from autodiff import numpy_api
from autodiff.families import linalg as L
from autodiff.tree import tree_flatten, tree_map

from cases_linalg import _orthogonal, with_eigs, with_svals


def traced(f, *args):
    """f run on Duals (zero tangents): the values the boxed run computes."""
    return jvp(f, args, tuple(np.zeros_like(a) for a in args))[0]


def assert_same_values(f, *args, rtol=1e-12, atol=1e-12, same_type=True):
    got, expected = traced(f, *args), f(*args)
    if same_type:  # namedtuples (SVDResult, ...) too
        assert type(got) is type(expected) or isinstance(expected, np.ndarray) or np.isscalar(expected)
    gl, el = tree_flatten(got)[0], tree_flatten(expected)[0]
    assert len(gl) == len(el)
    for g, e in zip(gl, el):
        assert np.shape(g) == np.shape(e)
        assert np.result_type(g) == np.result_type(e)
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol)


def test_functions_are_routed():
    for name in ["svd", "eigh", "eigvalsh", "qr", "pinv", "lstsq", "matrix_power", "norm", "cond",
                 "multi_dot", "matrix_rank"] + [n for n in ("svdvals", "matrix_norm", "vector_norm")
                                                  if hasattr(np.linalg, n)]:
        assert numpy_api.FUNCTIONS[getattr(np.linalg, name)] is getattr(L, name), name


# -- values against numpy ------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3, 3), (4, 2), (2, 4), (1, 1), (2, 4, 3), (2, 2, 3, 2)])
def test_svd_values(shape):
    a = np.random.standard_normal(shape)
    assert_same_values(lambda a: np.linalg.svd(a, full_matrices=False), a)
    assert_same_values(lambda a: np.linalg.svd(a, False, False), a)
    assert_same_values(lambda a: np.linalg.svd(a, compute_uv=False, full_matrices=True), a)
    if hasattr(np.linalg, "svdvals"):
        assert_same_values(np.linalg.svdvals, a)
    if shape[-1] == shape[-2]:
        assert_same_values(np.linalg.svd, a)
        assert_same_values(lambda a: np.linalg.svd(a, full_matrices=True), a)
        s = a + np.swapaxes(a, -1, -2)
        assert_same_values(lambda a: np.linalg.svd(a, hermitian=True), s)
        assert_same_values(lambda a: np.linalg.svd(a, compute_uv=False, hermitian=True), s)


def test_svd_namedtuple_fields():
    a = with_svals((4, 3))()
    out = traced(lambda a: np.linalg.svd(a, full_matrices=False), a)
    ref = np.linalg.svd(a, full_matrices=False)
    assert type(out) is type(ref)
    for name in ("U", "S", "Vh"):
        np.testing.assert_array_equal(getattr(out, name), getattr(ref, name))
    check_grads(lambda a: np.linalg.svd(a, full_matrices=False).U[:, 0] * np.linalg.svd(a, False).Vh[0, 1],
                (a,), order=2)
    w = traced(lambda a: np.linalg.eigh(a).eigenvalues, with_eigs((3, 3))())
    assert w.shape == (3,)
    q = traced(lambda a: np.linalg.qr(a).Q, a)
    np.testing.assert_array_equal(q, np.linalg.qr(a).Q)


@pytest.mark.parametrize("uplo", ["L", "U", "l", "u"])
@pytest.mark.parametrize("shape", [(3, 3), (1, 1), (2, 4, 4)])
def test_eigh_values(shape, uplo):
    a = np.random.standard_normal(shape)  # not symmetric: numpy reads one triangle
    assert_same_values(lambda a: np.linalg.eigh(a, UPLO=uplo), a)
    assert_same_values(lambda a: np.linalg.eigh(a, uplo), a)
    assert_same_values(lambda a: np.linalg.eigvalsh(a, UPLO=uplo), a)
    assert_same_values(np.linalg.eigh, a)
    assert_same_values(np.linalg.eigvalsh, a)


@pytest.mark.parametrize("shape", [(3, 3), (4, 2), (2, 4), (1, 3), (3, 1), (2, 4, 3), (2, 3, 5)])
def test_qr_values(shape):
    a = np.random.standard_normal(shape)
    assert_same_values(np.linalg.qr, a)
    assert_same_values(lambda a: np.linalg.qr(a, mode="reduced"), a)
    assert_same_values(lambda a: np.linalg.qr(a, "r"), a)
    if shape[-2] <= shape[-1]:
        assert_same_values(lambda a: np.linalg.qr(a, mode="complete"), a)


@pytest.mark.parametrize("shape", [(3, 3), (4, 2), (2, 4), (2, 4, 3)])
def test_pinv_values(shape):
    a = np.random.standard_normal(shape)
    assert_same_values(np.linalg.pinv, a)
    assert_same_values(lambda a: np.linalg.pinv(a, 1e-3), a)
    assert_same_values(lambda a: np.linalg.pinv(a, rcond=0.5), a)
    assert_same_values(lambda a: np.linalg.pinv(a, rtol=0.5), a)
    assert_same_values(lambda a: np.linalg.pinv(a, rtol=None), a)
    if len(shape) == 3:
        assert_same_values(lambda a: np.linalg.pinv(a, rcond=np.array([0.1, 0.6])), a)
    if shape[-1] == shape[-2]:
        assert_same_values(lambda a: np.linalg.pinv(a, hermitian=True), a)


@pytest.mark.parametrize("ab", [((5, 3), (5,)), ((5, 3), (5, 2)), ((3, 3), (3,)), ((2, 4), (2,)),
                                ((2, 4), (2, 3)), ((4, 1), (4,))])
def test_lstsq_values(ab):
    a, b = np.random.standard_normal(ab[0]), np.random.standard_normal(ab[1])
    for rcond in [None, -1, 1e-10, 0.5]:
        assert_same_values(lambda a, b: np.linalg.lstsq(a, b, rcond=rcond), a, b)
        assert_same_values(lambda a: np.linalg.lstsq(a, b, rcond), a)
        assert_same_values(lambda b: np.linalg.lstsq(a, b, rcond=rcond), b)
    # rank-deficient: no residuals, numpy's rank
    p = np.random.standard_normal((ab[0][0], 1)) @ np.random.standard_normal((1, ab[0][1]))
    assert_same_values(lambda p, b: np.linalg.lstsq(p, b), p, b)
    x, res, rank, sv = traced(lambda p, b: np.linalg.lstsq(p, b), p, b)
    assert rank == 1 and res.shape == ((0,) if min(ab[0]) > 1 else (1,))


def test_lstsq_mixed_dtypes():
    a = np.random.standard_normal((5, 3)).astype(np.float32)
    b = np.random.standard_normal(5)
    assert_same_values(lambda a: np.linalg.lstsq(a, b), a, rtol=1e-5, atol=1e-6)
    assert_same_values(lambda a: np.linalg.lstsq(a, np.arange(5)), a, rtol=1e-5, atol=1e-6)
    assert_same_values(lambda b: np.linalg.lstsq(a, b), b.astype(np.float32), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 8, 13, -1, -2, -3, -6, np.int64(3)])
def test_matrix_power_values(n):
    a = np.random.standard_normal((2, 3, 3)) + 2 * np.eye(3)
    assert_same_values(lambda a: np.linalg.matrix_power(a, n), a, rtol=1e-13, atol=1e-13)
    out, t = jvp(lambda a: np.linalg.matrix_power(a, n), (a,), (np.ones_like(a),))
    np.testing.assert_array_equal(out, np.linalg.matrix_power(a, n))  # numpy's own sequence of products


_MATRIX_ORDS = [None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf]
_VECTOR_ORDS = [None, 0, 1, -1, 2, -2, 3, 0.5, np.inf, -np.inf]


@pytest.mark.parametrize("ord", _MATRIX_ORDS)
def test_matrix_norm_values(ord):
    x = np.random.standard_normal((2, 3, 4))
    for axis in [(1, 2), (2, 1), (0, 2), (-1, -3), (-2, -1)]:
        for keepdims in [False, True]:
            assert_same_values(lambda x: np.linalg.norm(x, ord, axis, keepdims), x)
            assert_same_values(lambda x: np.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims), x)
    assert_same_values(lambda x: np.linalg.norm(x, ord), x[0])
    assert_same_values(lambda x: np.linalg.norm(x, ord, keepdims=True), x[0])
    if hasattr(np.linalg, "matrix_norm") and ord is not None:
        assert_same_values(lambda x: np.linalg.matrix_norm(x, ord=ord), x)
        assert_same_values(lambda x: np.linalg.matrix_norm(x, ord=ord, keepdims=True), x)


@pytest.mark.parametrize("ord", _VECTOR_ORDS)
def test_vector_norm_values(ord):
    x = np.random.standard_normal((2, 3, 4))
    for axis in [0, -1, 1]:
        assert_same_values(lambda x: np.linalg.norm(x, ord, axis), x)
        assert_same_values(lambda x: np.linalg.norm(x, ord, axis, keepdims=True), x)
    assert_same_values(lambda x: np.linalg.norm(x, ord), x[0, 0])
    if hasattr(np.linalg, "vector_norm") and ord is not None:
        for axis in [None, 1, (0, 2), (2, 0), (-1,)]:
            for keepdims in [False, True]:
                assert_same_values(lambda x: np.linalg.vector_norm(x, axis=axis, keepdims=keepdims, ord=ord), x)
    assert_same_values(lambda x: np.linalg.norm(x), x)
    assert_same_values(lambda x: np.linalg.norm(x, keepdims=True), x)


@pytest.mark.parametrize("p", [None, 2, -2, 1, -1, np.inf, -np.inf, "fro", "nuc"])
def test_cond_values(p):
    a = np.random.standard_normal((2, 3, 3))
    assert_same_values(lambda a: np.linalg.cond(a, p), a)
    if p in (None, 2, -2):
        assert_same_values(lambda a: np.linalg.cond(a, p), np.random.standard_normal((4, 2)))


def test_multi_dot_and_matrix_rank_values():
    a, b, c, d = (np.random.standard_normal(s) for s in [(3,), (3, 4), (4, 5), (5,)])
    assert_same_values(lambda a, b, c, d: np.linalg.multi_dot([a, b, c, d]), a, b, c, d)
    assert_same_values(lambda b, c: np.linalg.multi_dot([b, c, c.T]), b, c)
    assert_same_values(lambda b, c: np.linalg.multi_dot((b.T, b, c, d)), b, c)
    assert_same_values(lambda b, c: np.linalg.multi_dot([a, b, c]), b, c)
    p = np.random.standard_normal((4, 2)) @ np.random.standard_normal((2, 3))
    out = traced(lambda p: np.linalg.matrix_rank(p) * p, p)
    np.testing.assert_allclose(out, 2 * p)
    assert grad(lambda p: np.linalg.matrix_rank(p) * np.sum(p))(p)[0, 0] == 2.0


# -- refusals and numpy's errors -----------------------------------------------------------------
def _raises(exc, match, f, *args):
    with pytest.raises(exc, match=match):
        jvp(f, args, tuple(np.ones_like(a) for a in args))
    with pytest.raises(exc, match=match):
        grad(lambda *a: np.sum(tree_flatten(f(*a))[0][0]))(*args)


def test_refusals():
    tall, wide = np.random.standard_normal((4, 3)), np.random.standard_normal((3, 4))
    for a in (tall, wide, tall[None]):
        _raises(NotImplementedError, r"np\.linalg\.svd\(a, full_matrices=True\).*full_matrices=False",
                np.linalg.svd, a)
        _raises(NotImplementedError, r"full_matrices=False", lambda a: np.linalg.svd(a, True, True), a)
    _raises(NotImplementedError, r"np\.linalg\.qr\(a, mode='complete'\).*mode='reduced'",
            lambda a: np.linalg.qr(a, mode="complete"), tall)
    for mode in ("raw", "economic", "e"):
        _raises(NotImplementedError, rf"np\.linalg\.qr\(a, mode='{mode}'\).*Householder",
                lambda a: np.linalg.qr(a, mode=mode), tall)
    _raises(ValueError, "Unrecognized mode 'bad'", lambda a: np.linalg.qr(a, mode="bad"), tall)
    with pytest.warns(DeprecationWarning):  # numpy's own deprecated spelling still works
        np.testing.assert_allclose(traced(lambda a: np.linalg.qr(a, mode="full")[1], tall), np.linalg.qr(tall)[1])


def test_numpy_errors_on_traced_values():
    v, tall = np.random.standard_normal(3), np.random.standard_normal((4, 3))
    for f in (np.linalg.svd, np.linalg.eigh, np.linalg.eigvalsh, np.linalg.qr, np.linalg.pinv,
              lambda a: np.linalg.matrix_power(a, 2)):
        _raises(np.linalg.LinAlgError, "1-dimensional array given", f, v)
        with pytest.raises(np.linalg.LinAlgError):
            f(v)  # numpy's error too
    for f in (np.linalg.eigh, np.linalg.eigvalsh, lambda a: np.linalg.matrix_power(a, 2),
              lambda a: np.linalg.svd(a, hermitian=True)):
        _raises(np.linalg.LinAlgError, "must be square", f, tall)
    _raises(ValueError, "UPLO argument must be 'L' or 'U'", lambda a: np.linalg.eigh(a, "X"), tall[:3])
    _raises(ValueError, "UPLO argument must be 'L' or 'U'", lambda a: np.linalg.eigvalsh(a, UPLO="Q"), tall[:3])
    _raises(TypeError, "exponent must be an integer", lambda a: np.linalg.matrix_power(a, 2.0), tall[:3])
    _raises(ValueError, "can't be both set", lambda a: np.linalg.pinv(a, 0.1, rtol=0.1), tall)
    _raises(np.linalg.LinAlgError, "Incompatible dimensions", lambda a: np.linalg.lstsq(a, np.ones(3)), tall)
    _raises(np.linalg.LinAlgError, "must be two-dimensional",
            lambda a: np.linalg.lstsq(a[None], np.ones(4)), tall)
    _raises(np.linalg.LinAlgError, "Singular matrix", lambda a: np.linalg.matrix_power(a, -2), np.zeros((3, 3)))
    _raises(ValueError, "Invalid norm order 'nuc' for vectors", lambda a: np.linalg.norm(a, "nuc"), v)
    _raises(ValueError, "Duplicate axes", lambda a: np.linalg.norm(a, 2, axis=(1, -1)), tall)
    _raises(ValueError, "Improper number of dimensions", lambda a: np.linalg.norm(a, 2), tall[None])
    _raises(ValueError, "Invalid norm order", lambda a: np.linalg.norm(a, 3, axis=(0, 1)), tall)
    _raises(ValueError, "Expecting at least two arrays", lambda a: np.linalg.multi_dot([a]), tall)


# -- dtypes -------------------------------------------------------------------------------------------
F32_FUNCS = [
    lambda a: np.linalg.svd(a, full_matrices=False),
    lambda a: np.linalg.svd(a, compute_uv=False),
    lambda a: np.linalg.eigh(a[:3] + a[:3].T),
    lambda a: np.linalg.eigvalsh(a[:3], "U"),
    np.linalg.qr,
    lambda a: np.linalg.qr(a.T),
    np.linalg.pinv,
    lambda a: np.linalg.pinv(a[:3] + a[:3].T, hermitian=True),
    lambda a: np.linalg.lstsq(a, np.ones(4, np.float32))[0],
    lambda a: np.linalg.lstsq(a, a[:, 0])[3],
    lambda a: np.linalg.matrix_power(a[:3], -3),
    lambda a: np.linalg.norm(a, 2) + np.linalg.norm(a, "nuc", keepdims=True) + np.linalg.norm(a, -2),
    lambda a: np.linalg.cond(a),
    lambda a: np.linalg.svd(a[:3] + a[:3].T, hermitian=True),
]


@pytest.mark.parametrize("i", range(len(F32_FUNCS)))
def test_float32_in_float32_out(i):
    f = F32_FUNCS[i]
    a = with_svals((4, 3))().astype(np.float32)
    expected = tree_flatten(f(a))[0]
    assert all(np.result_type(e) == np.float32 for e in expected)
    out, t = jvp(f, (a,), (np.ones_like(a),))
    for leaf in tree_flatten(out)[0] + tree_flatten(t)[0]:
        assert np.result_type(leaf) == np.float32
    out, pullback = vjp(f, a)
    ct = tree_map(np.ones_like, out)
    (g,) = pullback(ct)
    assert g.dtype == np.float32
    (gg,) = jvp(lambda a: vjp(f, a)[1](ct), (a,), (np.ones_like(a),))[1]
    assert gg.dtype == np.float32
    # and the float32 derivative is the float64 one, rounded
    (g64,) = vjp(f, a.astype(np.float64))[1](tree_map(lambda c: c.astype(np.float64), ct))
    np.testing.assert_allclose(g, g64, rtol=2e-3, atol=2e-3 * np.max(np.abs(g64)))


# -- derivatives: exactness, conventions and 3-way checks --------------------------------------------------
def test_eigh_reads_one_triangle():
    a = with_eigs((3, 3))()
    lower = np.tri(3, dtype=bool)
    for uplo, read in [("L", lower), ("U", lower.T)]:
        unread = ~read
        for f in (lambda a: np.sum(np.linalg.eigh(a, uplo)[1] ** 3) + np.sum(np.linalg.eigh(a, uplo)[0] ** 3),
                  lambda a: np.sum(np.linalg.eigvalsh(a, uplo) ** 3)):
            g = grad(f)(a)
            assert np.all(g[unread] == 0) and np.any(g[read] != 0)
            t = np.where(unread, np.random.standard_normal((3, 3)), 0.0)
            assert np.all(jvp(f, (a,), (t,))[1] == 0)
            # the derivative of numpy's function, which symmetrizes the read triangle
            strict = read & ~np.eye(3, dtype=bool)
            sym = lambda a: np.where(read, a, 0.0) + np.where(strict, a, 0.0).T  # noqa: E731
            np.testing.assert_allclose(g, grad(lambda a: f(sym(a)))(a), rtol=1e-12, atol=1e-12)
        check_grads(lambda a: np.linalg.eigh(a, uplo), (np.random.standard_normal((3, 3)) * [[1], [2], [4]],),
                    order=2)


def test_sign_invariant_functions_of_vectors():
    """Functions that do not depend on numpy's sign choices: the derivative of
    U diag(s) V^T is the identity, of V diag(w) V^T the symmetrization of the read triangle."""
    a = with_svals((2, 4, 3))()
    t = np.random.standard_normal(a.shape)
    recon = lambda a: (lambda u, s, vt: (u * s[..., None, :]) @ vt)(*np.linalg.svd(a, full_matrices=False))  # noqa
    np.testing.assert_allclose(jvp(recon, (a,), (t,))[1], t, atol=1e-12)
    np.testing.assert_allclose(jacrev(recon)(a), jacfwd(lambda a: a * 1.0)(a), atol=1e-12)
    s = with_eigs((3, 3))()
    recon = lambda a: (lambda w, v: (v * w) @ v.T)(*np.linalg.eigh(a))  # noqa: E731
    t = np.random.standard_normal((3, 3))
    tl = np.tril(t)
    np.testing.assert_allclose(jvp(recon, (s,), (t,))[1], tl + np.tril(t, -1).T, atol=1e-12)
    qr = lambda a: (lambda q, r: q @ r)(*np.linalg.qr(a))  # noqa: E731
    for shape in [(4, 3), (3, 4)]:
        a, t = with_svals(shape)(), np.random.standard_normal(shape)
        np.testing.assert_allclose(jvp(qr, (a,), (t,))[1], t, atol=1e-12)


def test_raw_vectors_match_central_differences_at_several_points():
    """numpy's signs are locally constant at these inputs: the raw vectors'
    derivative is the central difference of numpy's own output."""
    for seed in range(5):
        np.random.seed(seed)
        a = with_svals((3, 4))()
        check_grads(lambda a: np.linalg.svd(a, full_matrices=False), (a,), order=1)
        check_grads(lambda a: np.linalg.eigh(a), (with_eigs((4, 4))(),), order=1)
        check_grads(lambda a: np.linalg.qr(a), (a.T,), order=1)


def test_repeated_singular_values_and_eigenvalues():
    """Values alone: the derivative of a symmetric function of them exists at
    repeated values, in both modes (first order); eigh's values too when its
    vectors are unused.  The vectors themselves get inf/nan there, honestly."""
    q = _orthogonal(3)
    a = 2.0 * q  # all singular values 2
    np.testing.assert_allclose(grad(lambda a: np.sum(np.linalg.svd(a, compute_uv=False)))(a), q, atol=1e-12)
    np.testing.assert_allclose(grad(lambda a: np.linalg.norm(a, "nuc"))(a), q, atol=1e-12)
    np.testing.assert_allclose(grad(lambda a: np.sum(np.linalg.svd(a)[1]))(a), q, atol=1e-12)
    check_grads(lambda a: np.sum(np.linalg.svd(a, compute_uv=False) ** 2), (a,), order=1)
    check_grads(lambda a: np.linalg.norm(a, "nuc"), (_orthogonal(3)[:, :2] * 1.5 @ _orthogonal(2),), order=1)
    s = (q * [1.0, 1.0, 2.0]) @ q.T
    for f in (lambda a: np.sum(np.linalg.eigvalsh(a) ** 2), lambda a: np.sum(np.linalg.eigh(a)[0] ** 2)):
        check_grads(f, (s,), order=1, modes=("rev",))
        np.testing.assert_allclose(grad(f)(s), 2 * np.tril(s + s.T - np.diag(np.diag(s))), atol=1e-12)
    check_grads(lambda a: np.sum(np.linalg.eigvalsh(a) ** 2), (s,), order=1)
    with warnings.catch_warnings():  # exactly repeated values (as LAPACK returns them here)
        warnings.simplefilter("ignore", RuntimeWarning)
        g = grad(lambda a: np.sum(np.linalg.eigh(a)[1]))(np.diag([1.0, 1.0, 2.0]))
        assert not np.all(np.isfinite(g))
        _, t = jvp(lambda a: np.linalg.svd(a)[0], (2 * np.eye(3),), (np.random.standard_normal((3, 3)),))
        assert not np.all(np.isfinite(t))
        np.testing.assert_allclose(grad(lambda a: np.sum(np.linalg.eigh(a)[0] ** 2))(np.diag([1.0, 1.0, 2.0])),
                                   np.diag([2.0, 2.0, 4.0]))


def test_pinv_rank_deficient_and_full_rank():
    b, c = np.random.standard_normal((5, 2)), np.random.standard_normal((2, 3))
    check_grads(lambda b, c: np.linalg.pinv(b @ c), (b, c), order=2)
    check_grads(lambda b, c: np.linalg.lstsq(b @ c, np.arange(5.0))[0], (b, c), order=2)
    # full column rank: pinv = (A^T A)^-1 A^T, lstsq = the normal equations
    a, y = with_svals((5, 3))(), np.random.standard_normal(5)
    normal_pinv = lambda a: np.linalg.solve(a.T @ a, a.T)  # noqa: E731
    for f, g in [(np.linalg.pinv, normal_pinv),
                 (lambda a: np.linalg.lstsq(a, y)[0], lambda a: normal_pinv(a) @ y),
                 (lambda a: np.linalg.lstsq(a, y)[1],
                  lambda a: np.sum((y - a @ normal_pinv(a) @ y) ** 2, keepdims=True))]:
        np.testing.assert_allclose(jacrev(f)(a), jacrev(g)(a), rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(jacfwd(f)(a), jacfwd(g)(a), rtol=1e-9, atol=1e-10)
    # a symmetric matrix with hermitian=True: the general pinv's derivative on the read triangle
    s = with_eigs((3, 3))()
    s = np.tril(s) + np.tril(s, -1).T
    t = np.tril(np.random.standard_normal((3, 3)))
    np.testing.assert_allclose(jvp(lambda a: np.linalg.pinv(a, hermitian=True), (s,), (t,))[1],
                               jvp(np.linalg.pinv, (s,), (t + np.tril(t, -1).T,))[1], atol=1e-12)


def test_lstsq_three_way():
    a, b = with_svals((5, 3))(), np.random.standard_normal((5, 2))
    check_grads(lambda a, b: np.linalg.lstsq(a, b), (a, b), order=2)
    check_grads(lambda a, b: np.linalg.lstsq(a.T, b[:3]), (a, b), order=2)
    check_grads(lambda a: np.linalg.lstsq(a, b[:, 0], rcond=-1)[:2], (a,), order=2)


def test_norms_three_way():
    x = with_svals((2, 3, 4))()
    for ord_ in (2, -2, "nuc"):
        check_grads(lambda x: np.linalg.norm(x, ord_, axis=(2, 1), keepdims=True), (x,), order=2)
        check_grads(lambda x: np.linalg.norm(x[1], ord_), (x,), order=2)
    check_grads(lambda x: np.linalg.norm(np.moveaxis(x, 0, -1), "nuc", axis=(0, 2)), (x,), order=2)
    for ord_ in (None, "fro", 1, -1, np.inf, -np.inf):  # delegated: still correct
        check_grads(lambda x: np.linalg.norm(x, ord_, axis=(1, 2)), (x,), order=2)
    check_grads(lambda x: np.linalg.norm(x, 3, axis=1), (x,), order=2)
    check_grads(lambda x: np.linalg.cond(x) + np.linalg.cond(x, -2), (x,), order=2)
    # the 2-norm's derivative is u1 v1^T
    a = with_svals((4, 3))()
    u, s, vt = np.linalg.svd(a)
    np.testing.assert_allclose(grad(lambda a: np.linalg.norm(a, 2))(a), np.outer(u[:, 0], vt[0]), atol=1e-12)
    np.testing.assert_allclose(grad(lambda a: np.linalg.norm(a, -2))(a), np.outer(u[:, 2], vt[2]), atol=1e-12)
    np.testing.assert_allclose(grad(lambda a: np.linalg.norm(a, "nuc"))(a), u[:, :3] @ vt, atol=1e-12)


def test_matrix_power_three_way():
    a = np.random.standard_normal((2, 3, 3)) + 2 * np.eye(3)
    for n in (0, 1, 2, 3, 5, 12, -1, -4):
        check_grads(lambda a: np.linalg.matrix_power(a, n) * 1.0, (a,), order=2)
    np.testing.assert_array_equal(grad(lambda a: np.sum(np.linalg.matrix_power(a, 0)))(a), np.zeros_like(a))


def test_qr_wide_and_tall_three_way():
    for shape in [(5, 3), (3, 5), (2, 3, 3), (1, 4), (4, 1)]:
        a = with_svals(shape)()
        check_grads(np.linalg.qr, (a,), order=2)
        check_grads(lambda a: np.linalg.qr(a, "r"), (a,), order=2)


def test_singular_inputs_give_inf_or_nan_not_exceptions():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = np.array([[1.0, 2.0], [0.0, 0.0], [0.0, 0.0]])  # rank 1: R[1, 1] == 0 exactly
        _, t = jvp(np.linalg.qr, (r,), (np.ones_like(r),))
        assert not np.all(np.isfinite(t[0]))
        (g,) = vjp(lambda a: np.linalg.qr(a)[0], r)[1](np.ones((3, 2)))
        assert not np.all(np.isfinite(g))
        z = np.zeros((3, 2))  # zero singular values: the vectors' derivative divides by them
        (g,) = vjp(lambda a: np.linalg.svd(a, full_matrices=False)[0], z)[1](np.ones((3, 2)))
        assert not np.all(np.isfinite(g))


@pytest.mark.parametrize("shape", [(2, 3, 3), (2, 2, 3, 3), (3, 1, 1)])
def test_batched_det_and_slogdet(shape):
    a = np.random.standard_normal(shape) + 1.5 * np.eye(shape[-1])
    a[0, ..., 0, :] *= -1  # a negative determinant in the batch
    assert_same_values(np.linalg.det, a)
    assert_same_values(np.linalg.slogdet, a, same_type=False)  # the core gives a plain tuple
    check_grads(np.linalg.det, (a,), order=2)
    check_grads(lambda a: np.linalg.slogdet(a)[1], (a,), order=2)
    inv_t = np.swapaxes(np.linalg.inv(a), -1, -2)
    np.testing.assert_allclose(grad(lambda a: np.sum(np.linalg.slogdet(a)[1]))(a), inv_t, rtol=1e-10)
    np.testing.assert_allclose(grad(lambda a: np.sum(np.linalg.det(a)))(a),
                               np.linalg.det(a)[..., None, None] * inv_t, rtol=1e-10)
    np.testing.assert_allclose(jacfwd(np.linalg.det)(a), jacrev(np.linalg.det)(a), rtol=1e-10, atol=1e-12)
