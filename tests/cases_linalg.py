"""Sweep cases of the linalg family (autodiff/families/linalg.py).

Inputs have well-separated singular values / eigenvalues (gaps of at least
~0.5, none near zero), so the vectors' derivatives are finite and central
differences see a smooth function; numpy's sign choice for the vectors is
locally constant at these inputs, so the raw vectors are checked too.
"""
import numpy as np


SVALS = (3.1, 2.2, 1.4, 0.7)
EIGS = (-1.6, -0.5, 0.6, 1.9)


def _orthogonal(n):
    q, r = np.linalg.qr(np.random.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def with_svals(shape, svals=SVALS):
    """Random (..., m, n) matrices U diag(s) V^T with singular values near ``svals``."""
    def make():
        *batch, m, n = shape
        k = min(m, n)
        out = np.empty(shape)
        for i in np.ndindex(*batch):
            s = np.asarray(svals[:k]) * np.random.uniform(0.97, 1.03, k)
            out[i] = (_orthogonal(m)[:, :k] * s) @ _orthogonal(n)[:, :k].T
        return out
    return make


def with_eigs(shape, uplo="L", eigs=EIGS):
    """Random (..., n, n) matrices whose ``uplo`` triangle holds Q diag(w) Q^T, and
    whose other triangle is noise (numpy never reads it)."""
    def make():
        *batch, n, _ = shape
        out = np.empty(shape)
        for i in np.ndindex(*batch):
            w = np.asarray(eigs[:n]) + np.random.uniform(-0.1, 0.1, n)
            q = _orthogonal(n)
            s = (q * w) @ q.T
            noise = np.random.standard_normal((n, n))
            out[i] = np.where(np.tri(n, dtype=bool) == (uplo == "L"), s, noise)
        return out
    return make


def flat(*outs):
    """One array of every output (the sweep's cases return a single array)."""
    return np.concatenate([np.ravel(x) for x in outs])


def add_cases(case, comp, makers):
    sid, normal, nonsingular = makers["sid"], makers["normal"], makers["nonsingular"]

    # -- svd (packed U, s, V): the raw outputs and sign-invariant functions of them
    reduced = lambda a: np.linalg.svd(a, full_matrices=False)  # noqa: E731
    svd_flat = lambda a: flat(*reduced(a))  # noqa: E731
    for s in [(3, 3), (4, 3), (3, 4), (3, 1), (1, 3), (1, 1), (2, 4, 3), (2, 3, 4), (2, 1, 3, 3)]:
        case("svd", sid(s), svd_flat, with_svals(s))
    case("svd", "default-full-matrices-square", lambda a: flat(*np.linalg.svd(a)), with_svals((3, 3)))
    case("svd", "reconstruct-4x3", lambda a: (lambda u, s, vt: (u * s[..., None, :]) @ vt)(*reduced(a)),
         with_svals((4, 3)))
    case("svd", "projectors-3x4", lambda a: (lambda u, s, vt: flat(u @ u.T, vt.T @ vt))(*reduced(a)),
         with_svals((3, 4)))
    case("svd", "values-only-used", lambda a: reduced(a)[1] ** 2, with_svals((4, 3)))

    # -- svdvals (no vectors; repeated singular values: tests/test_family_linalg.py)
    for s in [(3, 2), (2, 3), (3, 3), (1, 1), (2, 4, 3)]:
        case("svdvals", sid(s), lambda a: np.linalg.svd(a, compute_uv=False), with_svals(s))
    if hasattr(np.linalg, "svdvals"):
        case("svdvals", "np.linalg.svdvals", np.linalg.svdvals, with_svals((3, 4)))
    comp("svd-hermitian", lambda a: np.linalg.svd(a, hermitian=True), with_eigs((3, 3), eigs=(-2.0, 0.7, 1.3)))
    comp("svd-hermitian-batched-values", lambda a: np.linalg.svd(a, compute_uv=False, hermitian=True),
         with_eigs((2, 3, 3), eigs=(-2.0, 0.7, 1.3)))

    # -- eigh (packed w, V), reading one triangle
    for s in [(3, 3), (2, 2), (1, 1), (4, 4), (2, 3, 3)]:
        case("eigh", sid(s), lambda a: flat(*np.linalg.eigh(a)), with_eigs(s))
    case("eigh", "UPLO-U-3x3", lambda a: flat(*np.linalg.eigh(a, UPLO="U")), with_eigs((3, 3), "U"))
    case("eigh", "UPLO-u-lowercase", lambda a: flat(*np.linalg.eigh(a, "u")), with_eigs((2, 3, 3), "U"))
    case("eigh", "reconstruct", lambda a: (lambda w, v: (v * w[..., None, :]) @ np.swapaxes(v, -1, -2))(
        *np.linalg.eigh(a)), with_eigs((2, 3, 3)))
    case("eigh", "projector", lambda a: (lambda v: np.outer(v, v))(np.linalg.eigh(a)[1][:, 1]),
         with_eigs((3, 3)))
    case("eigh", "of-symmetrized", lambda a: np.linalg.eigh(0.5 * (a + a.T))[1],
         with_eigs((3, 3)))
    for s in [(3, 3), (1, 1), (2, 3, 3)]:
        case("eigvalsh", sid(s), np.linalg.eigvalsh, with_eigs(s))
    case("eigvalsh", "UPLO-U", lambda a: np.linalg.eigvalsh(a, UPLO="U"), with_eigs((4, 4), "U"))

    # -- qr (packed Q^T, R)
    for s in [(3, 3), (4, 3), (3, 1), (1, 1), (3, 4), (2, 5), (2, 4, 3), (2, 3, 4)]:
        case("qr", sid(s), lambda a: flat(*np.linalg.qr(a)), with_svals(s))
    case("qr", "mode-r", lambda a: np.linalg.qr(a, mode="r"), with_svals((4, 3)))
    case("qr", "mode-complete-square", lambda a: flat(*np.linalg.qr(a, mode="complete")), with_svals((3, 3)))
    case("qr", "mode-complete-wide", lambda a: flat(*np.linalg.qr(a, "complete")), with_svals((2, 4)))
    case("qr", "reconstruct", lambda a: (lambda q, r: q @ r)(*np.linalg.qr(a)), with_svals((4, 3)))
    case("qr", "nonsingular-square", lambda a: np.linalg.qr(a)[0], nonsingular((3, 3)))

    # -- pinv (a rank that stays constant under the perturbation)
    for s in [(3, 3), (4, 3), (3, 4), (1, 1), (2, 4, 3)]:
        case("pinv", sid(s), np.linalg.pinv, with_svals(s))
    case("pinv", "hermitian", lambda a: np.linalg.pinv(a, hermitian=True), with_eigs((3, 3)))
    case("pinv", "hermitian-batched", lambda a: np.linalg.pinv(a, hermitian=True), with_eigs((2, 3, 3)))
    case("pinv", "rank2-product-4x3", lambda b, c: np.linalg.pinv(b @ c), normal((4, 2)), normal((2, 3)))
    case("pinv", "rank1-product-3x4", lambda b, c: np.linalg.pinv(b @ c, rcond=1e-12), normal((3, 1)),
         normal((1, 4)))
    case("pinv", "rank2-rcond", lambda b, c: np.linalg.pinv(b @ c, rcond=1e-8), normal((3, 2)), normal((2, 3)))
    case("pinv", "rtol", lambda a: np.linalg.pinv(a, rtol=1e-10), with_svals((3, 4)))

    # -- lstsq, matrix_power, norms, cond, multi_dot: composites
    comp("lstsq-tall-vector", lambda a, b: np.linalg.lstsq(a, b), with_svals((5, 3)), normal((5,)))
    comp("lstsq-tall-matrix", lambda a, b: np.linalg.lstsq(a, b, rcond=None), with_svals((5, 3)),
         normal((5, 2)))
    comp("lstsq-square", lambda a, b: np.linalg.lstsq(a, b), with_svals((3, 3)), normal((3, 2)))
    comp("lstsq-wide", lambda a, b: np.linalg.lstsq(a, b), with_svals((2, 4)), normal((2,)))
    comp("lstsq-x-only", lambda a, b: np.linalg.lstsq(a, b)[0], with_svals((4, 3)), normal((4,)))
    comp("lstsq-rank-deficient", lambda p, q, b: np.linalg.lstsq(p @ q, b)[0], normal((4, 2)), normal((2, 3)),
         normal((4,)))
    comp("lstsq-constant-a", lambda b: np.linalg.lstsq(np.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]]), b),
         normal((3,)))
    for n in [0, 1, 2, 3, 4, 5, 6, 11, -1, -2, -5]:
        comp(f"matrix_power-{n}", lambda a, n=n: np.linalg.matrix_power(a, n) * 1.0, nonsingular((3, 3)))
    comp("matrix_power-batched", lambda a: np.linalg.matrix_power(a, 7), nonsingular((2, 3, 3)))
    comp("matrix_power-batched-negative", lambda a: np.linalg.matrix_power(a, -3), nonsingular((2, 2, 2)))
    for ord_ in [2, -2, "nuc", 2.0]:
        comp(f"norm-matrix-{ord_}", lambda a, o=ord_: np.linalg.norm(a, o), with_svals((4, 3)))
    comp("norm-2-axes-swapped", lambda a: np.linalg.norm(a, 2, axis=(1, 0)), with_svals((3, 4)))
    comp("norm-nuc-3d-axes", lambda a: np.linalg.norm(np.moveaxis(a, 1, 2), "nuc", axis=(0, 2)),
         with_svals((2, 3, 4)))
    comp("norm-2-negative-axes-keepdims", lambda a: np.linalg.norm(a, -2, axis=(-1, -2), keepdims=True),
         with_svals((2, 3, 4)))
    comp("norm-delegated-fro-vector-inf", lambda a: (np.linalg.norm(a, "fro"), np.linalg.norm(a, 1),
                                                     np.linalg.norm(a[0], 2), np.linalg.norm(a, 2, axis=0)),
         with_svals((3, 4)))
    if hasattr(np.linalg, "matrix_norm"):
        comp("matrix_norm-nuc-batched", lambda a: np.linalg.matrix_norm(a, ord="nuc"), with_svals((2, 3, 4)))
        comp("matrix_norm-fro", lambda a: np.linalg.matrix_norm(a, keepdims=True), with_svals((2, 3, 4)))
        comp("vector_norm", lambda a: np.linalg.vector_norm(a) + np.linalg.vector_norm(a, axis=(0, 2), ord=3),
             with_svals((2, 3, 4)))
        comp("vector_norm-keepdims", lambda a: np.linalg.vector_norm(a, axis=1, keepdims=True, ord=1),
             with_svals((2, 3, 4)))
    comp("cond", np.linalg.cond, with_svals((4, 3)))
    comp("cond-minus-2-batched", lambda a: np.linalg.cond(a, -2), with_svals((2, 3, 4)))
    comp("cond-fro", lambda a: np.linalg.cond(a, "fro"), nonsingular((3, 3)))
    comp("cond-1", lambda a: np.linalg.cond(a, 1), with_svals((3, 3)))
    comp("multi_dot", lambda a, b, c: np.linalg.multi_dot([a, b, c]), normal((3,)), normal((3, 4)),
         normal((4, 2)))
    comp("multi_dot-vectors", lambda a, b, c: np.linalg.multi_dot([a, b, c]), normal((3,)), normal((3, 4)),
         normal((4,)))
    comp("multi_dot-with-constant", lambda a, b: np.linalg.multi_dot([a, np.ones((2, 3)), b]),
         normal((4, 2)), normal((3, 2)))

    # a chain of decompositions
    def chain(a):
        q, r = np.linalg.qr(a)
        return np.linalg.eigvalsh(r @ r.T).sum() + np.linalg.svd(q * [3.0, 2.0, 1.0], compute_uv=False).sum()
    comp("svd-eigh-qr-chain", chain, with_svals((4, 3)))
