"""Linear-algebra family: decompositions and what is built on them.

Primitives (matrices in the last two axes, batched over leading axes):

* ``svd``: numpy's reduced SVD packed in one array ``[U; s; V]`` of shape
  (..., m + 1 + n, k), k = min(m, n) (a primitive has one output; the numpy
  functions below slice it);
* ``svdvals``: the singular values alone: ds_i = u_i^T dA v_i needs no gap
  to the other singular values, so symmetric functions of them (the nuclear
  norm, sums) differentiate at repeated values too (first order; the second
  derivative goes through the vectors);
* ``eigh``: ``[w; V]`` of shape (..., n + 1, n), reading one triangle (UPLO) as
  numpy does; ``eigvalsh``: the eigenvalues alone;
* ``qr``: numpy's reduced QR packed as ``[Q^T, R]`` of shape (..., k, m + n);
* ``pinv``: the pseudo-inverse.  Its derivative (Golub & Pereyra's) is exact
  wherever the rank is locally constant and the singular values that rcond
  discards are zero (a rank-deficient matrix: derivative along perturbations
  that keep the rank).  When rcond discards singular values that are not
  zero, the rule treats them as zero: it is off by O(discarded / kept).

Composites: ``np.linalg.svd`` (every argument form but a non-square
full_matrices=True with vectors), ``svdvals``, ``eigh``, ``eigvalsh``, ``qr``
(modes 'reduced', 'r', and 'complete' where it equals 'reduced'; m < n too),
``pinv``, ``lstsq``, ``matrix_power``, ``matrix_rank`` (a constant), ``cond``,
``multi_dot``, ``matrix_norm``, ``vector_norm`` and ``norm`` (matrix ord 2, -2
and 'nuc' through the singular values; every other form is `autodiff.ops.norm`).

Derivatives are those of numpy's own outputs, sign conventions included:
the vectors' rules keep U^T dU (V^T dV) skew with zero diagonal, which is the
derivative of LAPACK's locally continuous choice of signs.  The vectors'
derivatives divide by s_j^2 - s_i^2 (SVD), w_j - w_i (eigh), the singular
values (rectangular SVD) and R (QR): equal singular values or eigenvalues, a
zero singular value or a rank-deficient QR give inf/nan there (with numpy's
warnings), never an exception.  Only where the vectors are used: a reverse
sweep skips the vectors' terms when their cotangent is a plain zero array
(nobody used them), so ``eigh(a)[0]`` differentiates like ``eigvalsh(a)``;
forward mode computes the unused vectors' (inf/nan) tangents and drops them.

References: M. Giles, "An extended collection of matrix derivative results for
forward and reverse mode AD" (2008); J. Townsend, "Differentiating the singular
value decomposition" (2016); M. Seeger et al., "Auto-differentiating linear
algebra" (2017); S. Walter & L. Lehmann, "Algorithmic differentiation of linear
algebra functions with application in optimum experimental design" (2010);
G. Golub & V. Pereyra, "The differentiation of pseudo-inverses" (1973).
"""
from __future__ import annotations

import functools
import operator
import warnings

import numpy as np

from .. import ops
from .. import primitives as P
from ..core import Box, primal_value
from ..primitives import primitive
from ..rules.base import constant, defjvp, defvjp
from ..rules.products import mT

_SVDResult = type(np.linalg.svd(np.eye(1)))
_EighResult = type(np.linalg.eigh(np.eye(1)))
_QRResult = type(np.linalg.qr(np.eye(1)))
_NOVALUE = object()


# -- primitives ---------------------------------------------------------------------
def _svd_impl(a):
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    return np.concatenate([u, s[..., None, :], np.swapaxes(vt, -1, -2)], axis=-2)


def _eigh_impl(a, uplo):
    w, v = np.linalg.eigh(a, UPLO=uplo)
    return np.concatenate([w[..., None, :], v], axis=-2)


def _qr_impl(a):
    q, r = np.linalg.qr(a)
    return np.concatenate([np.swapaxes(q, -1, -2), r], axis=-1)


svd_p = primitive("svd", _svd_impl)
svdvals_p = primitive("svdvals", lambda a: np.linalg.svd(a, compute_uv=False))
eigh_p = primitive("eigh", _eigh_impl)
eigvalsh_p = primitive("eigvalsh", lambda a, uplo: np.linalg.eigvalsh(a, UPLO=uplo))
qr_p = primitive("qr", _qr_impl)
pinv_p = primitive("pinv", lambda a, rcond, hermitian: np.linalg.pinv(a, rcond=rcond, hermitian=hermitian))


# -- helpers for the rules (primitives only, so rules differentiate again) ------------
def _dtype(x):
    return constant(x).dtype


def _rows(x, start, stop):
    return P.getitem(x, idx=(Ellipsis, slice(start, stop), slice(None)))


def _cols(x, start, stop):
    return P.getitem(x, idx=(Ellipsis, slice(start, stop)))


def _as_row(v):  # (..., k) -> (..., 1, k)
    return P.reshape(v, shape=v.shape[:-1] + (1, v.shape[-1]))


def _as_col(v):  # (..., k) -> (..., k, 1)
    return P.reshape(v, shape=v.shape + (1,))


def _cat(parts, axis):
    """Concatenate along ``axis`` counted from the end (-1 or -2)."""
    return P.concatenate(*parts, axis=parts[0].ndim + axis)


def _diag_part(m):
    k = m.shape[-1]
    return P.getitem(m, idx=(Ellipsis, np.arange(k), np.arange(k)))


def _diag(v):
    """(..., k) -> diagonal matrices (..., k, k) (selection: no inf * 0)."""
    k = v.shape[-1]
    return P.where(np.eye(k, dtype=bool), _as_row(v), 0.0)


def _gap_inverse(d):
    """1 / d off the diagonal, 0 on it (d has a zero diagonal)."""
    k = d.shape[-1]
    return P.where(~np.eye(k, dtype=bool), 1.0 / (d + np.eye(k, dtype=_dtype(d))), 0.0)


def _tri_masks(n, uplo):
    """(read, strict): the triangle numpy reads (with the diagonal) and its strict part."""
    strict = np.tri(n, k=-1, dtype=bool)
    if uplo == "U":
        strict = strict.T
    return strict | np.eye(n, dtype=bool), strict


def _symmetric_from(t, uplo):
    """The symmetric matrix numpy sees when it reads one triangle of t."""
    read, strict = _tri_masks(t.shape[-1], uplo)
    return P.where(read, t, 0.0) + mT(P.where(strict, t, 0.0))


def _fold(g, uplo):
    """The transpose of `_symmetric_from`: a cotangent on the triangle numpy reads."""
    read, strict = _tri_masks(g.shape[-1], uplo)
    return P.where(strict, g + mT(g), P.where(read, g, 0.0))


def _unused(g):
    """True for a plain all-zero cotangent: an output nobody used, with no
    derivative at any level, so its terms are skipped (a symbolic zero); the
    vectors' terms would otherwise turn equal eigenvalues into 0 * inf = nan
    in the values' gradient.  A box is never skipped."""
    return not isinstance(g, Box) and np.allclose(g, 0.0, rtol=0.0, atol=0.0)


def _mm(*xs):
    return functools.reduce(P.matmul, xs)


# -- svd -------------------------------------------------------------------------------
def _svd_parts(packed, m):
    return _rows(packed, 0, m), P.getitem(packed, idx=(Ellipsis, m, slice(None))), _rows(packed, m + 1, None)


def _svd_gaps(s):
    """F_ij = 1 / (s_j^2 - s_i^2) off the diagonal."""
    r, c = _as_row(s), _as_col(s)
    return _gap_inverse((r - c) * (r + c))


def _svd_jvp(t, ans, a):
    m, n = a.shape[-2:]
    k = min(m, n)
    u, s, v = _svd_parts(ans, m)
    sr, sc = _as_row(s), _as_col(s)
    tv = P.matmul(t, v)                                  # dA V
    dp = P.matmul(mT(u), tv)                             # U^T dA V
    f = _svd_gaps(s)
    du = P.matmul(u, f * (dp * sr + sc * mT(dp)))
    dv = P.matmul(v, f * (sc * dp + mT(dp) * sr))
    if m > k:   # (I - U U^T) dA V S^-1
        du = du + (tv - P.matmul(u, dp)) / sr
    if n > k:   # (I - V V^T) dA^T U S^-1
        dv = dv + (P.matmul(mT(t), u) - P.matmul(v, mT(dp))) / sr
    return _cat([du, _as_row(_diag_part(dp)), dv], -2)


def _svd_vjp(g, ans, a):
    m, n = a.shape[-2:]
    k = min(m, n)
    u, s, v = _svd_parts(ans, m)
    gu, gs, gv = _svd_parts(g, m)
    use_u, use_v = not _unused(gu), not _unused(gv)
    sr, sc = _as_row(s), _as_col(s)
    inner = _diag(gs)
    if use_u or use_v:
        f = _svd_gaps(s)
    if use_u:
        utgu = P.matmul(mT(u), gu)
        inner = inner + (f * (utgu - mT(utgu))) * sr
    if use_v:
        vtgv = P.matmul(mT(v), gv)
        inner = inner + sc * (f * (vtgv - mT(vtgv)))
    right = P.matmul(inner, mT(v))                       # (k, n)
    if use_v and n > k:   # S^-1 gV^T (I - V V^T)
        right = right + mT(gv - P.matmul(v, vtgv)) / sc
    ga = P.matmul(u, right)
    if use_u and m > k:   # (I - U U^T) gU S^-1 V^T
        ga = ga + P.matmul((gu - P.matmul(u, utgu)) / sr, mT(v))
    return ga


defjvp(svd_p, _svd_jvp)
defvjp(svd_p, _svd_vjp)


def _svdvals_vectors(a):
    u, _, v = _svd_parts(svd_p(a), a.shape[-2])
    return u, v


def _svdvals_jvp(t, ans, a):   # ds_i = u_i^T dA v_i
    u, v = _svdvals_vectors(a)
    return P.sum(u * P.matmul(t, v), axis=(t.ndim - 2,))


def _svdvals_vjp(g, ans, a):   # U diag(g) V^T
    u, v = _svdvals_vectors(a)
    return P.matmul(u * _as_row(g), mT(v))


defjvp(svdvals_p, _svdvals_jvp)
defvjp(svdvals_p, _svdvals_vjp)


# -- eigh ---------------------------------------------------------------------------------
def _eigh_parts(packed):
    return P.getitem(packed, idx=(Ellipsis, 0, slice(None))), _rows(packed, 1, None)


def _eigh_jvp(t, ans, a, uplo):
    w, v = _eigh_parts(ans)
    m = _mm(mT(v), _symmetric_from(t, uplo), v)          # V^T dS V
    f = _gap_inverse(_as_row(w) - _as_col(w))            # 1 / (w_j - w_i)
    return _cat([_as_row(_diag_part(m)), P.matmul(v, f * m)], -2)


def _eigh_vjp(g, ans, a, uplo):
    w, v = _eigh_parts(ans)
    gw, gv = _eigh_parts(g)
    inner = _diag(gw)
    if not _unused(gv):
        inner = inner + _gap_inverse(_as_row(w) - _as_col(w)) * P.matmul(mT(v), gv)
    return _fold(_mm(v, inner, mT(v)), uplo)


defjvp(eigh_p, _eigh_jvp)
defvjp(eigh_p, _eigh_vjp)


def _eigvalsh_jvp(t, ans, a, uplo):   # dw_i = v_i^T dS v_i
    _, v = _eigh_parts(eigh_p(a, uplo=uplo))
    return P.sum(v * P.matmul(_symmetric_from(t, uplo), v), axis=(t.ndim - 2,))


def _eigvalsh_vjp(g, ans, a, uplo):   # V diag(g) V^T on the triangle read
    _, v = _eigh_parts(eigh_p(a, uplo=uplo))
    return _fold(P.matmul(v * _as_row(g), mT(v)), uplo)


defjvp(eigvalsh_p, _eigvalsh_jvp)
defvjp(eigvalsh_p, _eigvalsh_vjp)


# -- qr -------------------------------------------------------------------------------------
# A = Q R, Q (m, k), R (k, n), k = min(m, n); A1, R1 the first k columns.  With
# X = dA1 R1^-1, C = Q^T X and Omega = tril(C, -1) - tril(C, -1)^T (= Q^T dQ):
#   dR = Q^T dA - Omega R,   dQ = Q Omega + (I - Q Q^T) X   (the last term only when m > k).
def _qr_parts(packed, m):
    return mT(_cols(packed, 0, m)), _cols(packed, m, None)


def _strict_lower(x):
    k = x.shape[-1]
    return P.where(np.tri(k, k=-1, dtype=bool), x, 0.0)


def _qr_jvp(t, ans, a):
    m, n = a.shape[-2:]
    k = min(m, n)
    q, r = _qr_parts(ans, m)
    r1_inv = P.inv(_cols(r, 0, k), strict=False)
    x = P.matmul(_cols(t, 0, k) if n > k else t, r1_inv)
    c = P.matmul(mT(q), x)
    low = _strict_lower(c)
    omega = low - mT(low)
    dr = P.matmul(mT(q), t) - P.matmul(omega, r)
    dq = P.matmul(q, omega)
    if m > k:
        dq = dq + x - P.matmul(q, c)
    return _cat([mT(dq), dr], -1)


def _qr_vjp(g, ans, a):
    m, n = a.shape[-2:]
    k = min(m, n)
    q, r = _qr_parts(ans, m)
    gq, gr = _qr_parts(g, m)
    r1_inv = P.inv(_cols(r, 0, k), strict=False)
    qtgq = P.matmul(mT(q), gq)
    mm = qtgq - P.matmul(gr, mT(r))                      # the cotangent of Omega
    gx = P.matmul(q, _strict_lower(mm - mT(mm)))
    if m > k:
        gx = gx + gq - P.matmul(q, qtgq)
    ga1 = P.matmul(gx, mT(r1_inv))
    if n > k:
        ga1 = P.pad(ga1, pad_width=((0, 0),) * (ga1.ndim - 1) + ((0, n - k),))
    return P.matmul(q, gr) + ga1


defjvp(qr_p, _qr_jvp)
defvjp(qr_p, _qr_vjp)


# -- pinv ------------------------------------------------------------------------------------
# X = A^+ (n, m):  dX = -X dA X + X X^T dA^T (I - A X) + (I - X A) dA^T X^T X
# (Golub & Pereyra), valid wherever the rank of A is locally constant.  With
# hermitian=True numpy reads the lower triangle of A only.
def _pinv_setup(ans, a, hermitian):
    if hermitian:
        a = _symmetric_from(a, "L")
    m, n = a.shape[-2:]
    dt = _dtype(ans)
    p_out = np.eye(m, dtype=dt) - P.matmul(a, ans)       # I - A X  (m, m)
    p_in = np.eye(n, dtype=dt) - P.matmul(ans, a)        # I - X A  (n, n)
    return p_out, p_in


def _pinv_jvp(t, ans, a, rcond, hermitian):
    if hermitian:
        t = _symmetric_from(t, "L")
    p_out, p_in = _pinv_setup(ans, a, hermitian)
    tt = mT(t)
    return (-_mm(ans, t, ans) + _mm(ans, mT(ans), tt, p_out)
            + _mm(p_in, tt, mT(ans), ans))


def _pinv_vjp(g, ans, a, rcond, hermitian):
    p_out, p_in = _pinv_setup(ans, a, hermitian)
    gt = mT(g)
    ga = (-_mm(mT(ans), g, mT(ans)) + _mm(p_out, gt, ans, mT(ans))
          + _mm(mT(ans), ans, gt, p_in))
    return _fold(ga, "L") if hermitian else ga


defjvp(pinv_p, _pinv_jvp)
defvjp(pinv_p, _pinv_vjp)


# -- numpy-compatible functions -----------------------------------------------------------------
def _shape(a):
    return np.shape(primal_value(a))


def _assert_stacked_2d(a):
    nd = len(_shape(a))
    if nd < 2:
        raise np.linalg.LinAlgError(f"{nd}-dimensional array given. Array must be at least two-dimensional")


def _assert_stacked_square(a):
    m, n = _shape(a)[-2:]
    if m != n:
        raise np.linalg.LinAlgError("Last 2 dimensions of the array must be square")


def _uplo(UPLO):
    uplo = UPLO.upper() if isinstance(UPLO, str) else UPLO
    if uplo not in ("L", "U"):
        raise ValueError("UPLO argument must be 'L' or 'U'")
    return uplo


def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    """np.linalg.svd.  With vectors (compute_uv=True) on a non-square matrix,
    full_matrices=False is required: the extra columns numpy returns with
    full_matrices=True are not determined by the matrix (any orthonormal
    completion will do), so they have no derivative."""
    _assert_stacked_2d(a)
    if hermitian:
        return _svd_hermitian(a, compute_uv)
    if not compute_uv:
        return svdvals_p(a)
    m, n = _shape(a)[-2:]
    if full_matrices and m != n:
        raise NotImplementedError(
            f"np.linalg.svd(a, full_matrices=True) (numpy's default) of a non-square {m}x{n} matrix: the "
            f"last {abs(m - n)} columns of {'u' if m > n else 'vh (rows)'} are an arbitrary orthonormal "
            "completion with no derivative; pass full_matrices=False, or compute_uv=False "
            "(np.linalg.svdvals) for the singular values alone")
    u, s, v = _svd_parts(svd_p(a), m)
    return _SVDResult(u, s, mT(v))


def _svd_hermitian(a, compute_uv):
    """numpy's hermitian SVD: from eigh of the lower triangle, |w| sorted descending."""
    _assert_stacked_square(a)
    if not compute_uv:
        s = ops.abs(eigvalsh(a))
        return ops.getitem(ops.sort(s, axis=-1), (Ellipsis, slice(None, None, -1)))
    w, v = eigh(a)
    wp = primal_value(w)
    sgn = np.copysign(np.ones((), dtype=wp.dtype), wp)
    order = np.argsort(np.abs(wp), axis=-1)[..., ::-1]
    s = ops.take_along_axis(ops.abs(w), order, axis=-1)
    u = ops.take_along_axis(v, order[..., None, :], axis=-1)
    vt = mT(u * np.take_along_axis(sgn, order, axis=-1)[..., None, :])
    return _SVDResult(u, s, vt)


def svdvals(x, /):
    _assert_stacked_2d(x)
    return svdvals_p(x)


def eigh(a, UPLO="L"):
    _assert_stacked_2d(a)
    _assert_stacked_square(a)
    w, v = _eigh_parts(eigh_p(a, uplo=_uplo(UPLO)))
    return _EighResult(w, v)


def eigvalsh(a, UPLO="L"):
    _assert_stacked_2d(a)
    _assert_stacked_square(a)
    return eigvalsh_p(a, uplo=_uplo(UPLO))


def qr(a, mode="reduced"):
    """np.linalg.qr: modes 'reduced' (default), 'r', and 'complete' where it
    equals 'reduced' (m <= n).  The derivative needs A's first min(m, n)
    columns to have full rank (inf/nan otherwise)."""
    if mode in ("f", "full"):  # numpy's deprecated spelling
        warnings.warn("The 'full' option is deprecated in favor of 'reduced'.\n"
                      "For backward compatibility let mode default.", DeprecationWarning, stacklevel=2)
        mode = "reduced"
    if mode not in ("reduced", "complete", "r", "raw", "e", "economic"):
        raise ValueError(f"Unrecognized mode '{mode}'")
    _assert_stacked_2d(a)
    m, n = _shape(a)[-2:]
    if mode in ("raw", "e", "economic"):
        raise NotImplementedError(
            f"np.linalg.qr(a, mode={mode!r}) returns LAPACK's Householder reflectors, which have no "
            "derivative rule; use mode='reduced' (or 'r')")
    if mode == "complete" and m > n:
        raise NotImplementedError(
            f"np.linalg.qr(a, mode='complete') of a tall {m}x{n} matrix: the last {m - n} columns of q are "
            "an arbitrary orthonormal completion with no derivative; use mode='reduced' (or 'r')")
    q, r = _qr_parts(qr_p(a), m)
    return r if mode == "r" else _QRResult(q, r)


def pinv(a, rcond=None, hermitian=False, *, rtol=_NOVALUE):
    """np.linalg.pinv; its derivative holds where the rank is locally constant
    (a perturbation that changes the rank makes pinv jump) and treats the
    singular values rcond discards as zero (see the module docstring)."""
    rcond, rtol = primal_value(rcond), primal_value(rtol)
    if rcond is None:
        if rtol is _NOVALUE:
            rcond = 1e-15
        elif rtol is None:
            rcond = max(_shape(a)[-2:]) * np.finfo(primal_value(a).dtype).eps
        else:
            rcond = rtol
    elif rtol is not _NOVALUE:
        raise ValueError("`rtol` and `rcond` can't be both set.")
    _assert_stacked_2d(a)
    if np.ndim(rcond):
        rcond = np.asarray(rcond)
    return pinv_p(a, rcond=rcond, hermitian=bool(hermitian))


def lstsq(a, b, rcond=None):
    """np.linalg.lstsq: (x, residuals, rank, sv).  x = pinv(a, rcond) @ b (the
    minimum-norm solution numpy's gelsd computes); residuals |b - a x|^2 where
    numpy gives them (rank == n < m), else numpy's empty array; rank is a
    constant; sv are the singular values (differentiable).  Derivatives hold
    where the rank is locally constant.  numpy's own lstsq runs on the primal
    values for its checks, the rank and the shape of the residuals."""
    ap, bp = primal_value(a), primal_value(b)
    _, resid_p, rank, _ = np.linalg.lstsq(ap, bp, rcond=primal_value(rcond))
    m, n = np.shape(ap)
    rcond = primal_value(rcond)
    eps = np.finfo(np.float64).eps  # numpy computes in double whatever the input
    if rcond is None:
        rcond = eps * max(m, n)
    elif rcond < 0:
        rcond = eps  # LAPACK: machine precision
    x = P.matmul(pinv_p(a, rcond=float(rcond), hermitian=False), b)
    if np.shape(resid_p)[0]:
        res = b - P.matmul(a, x)
        resids = ops.sum(res * res, axis=0)
        if np.ndim(bp) == 1:
            resids = ops.reshape(resids, (1,))
        resids = _cast(resids, resid_p.dtype)
    else:
        resids = resid_p
    return _cast(x, np.result_type(*_float_types(ap, bp))), resids, rank, _cast(svdvals_p(a), resid_p.dtype)


def _float_types(*arrays):
    """numpy.linalg's result types: integers count as float64."""
    return [d if np.issubdtype(d, np.inexact) else np.float64 for d in map(np.result_type, arrays)]


def _cast(x, dtype):
    return x if np.result_type(primal_value(x)) == dtype else P.cast(x, dtype=dtype)


def matrix_power(a, n):
    """np.linalg.matrix_power: numpy's own sequence of products (negative n through inv)."""
    _assert_stacked_2d(a)
    _assert_stacked_square(a)
    try:
        n = operator.index(n)
    except TypeError as e:
        raise TypeError("exponent must be an integer") from e
    if n == 0:
        ap = primal_value(a)
        return np.broadcast_to(np.eye(ap.shape[-1], dtype=ap.dtype), ap.shape).copy()
    if n < 0:
        a, n = P.inv(a), -n
    if n == 1:
        return a
    if n == 2:
        return P.matmul(a, a)
    if n == 3:
        return P.matmul(P.matmul(a, a), a)
    z = result = None
    while n > 0:
        z = a if z is None else P.matmul(z, z)
        n, bit = divmod(n, 2)
        if bit:
            result = z if result is None else P.matmul(result, z)
    return result


def matrix_rank(A, tol=None, hermitian=False, *, rtol=None):
    """A constant (piecewise constant in A)."""
    return np.linalg.matrix_rank(primal_value(A), tol=primal_value(tol), hermitian=hermitian,
                                 rtol=primal_value(rtol))


def cond(x, p=None):
    """np.linalg.cond: s_max / s_min for p None, 2, -2; numpy's norm products otherwise."""
    _assert_stacked_2d(x)
    if p is None or p == 2 or p == -2:
        s = svdvals_p(x)
        big, small = ops.getitem(s, (Ellipsis, 0)), ops.getitem(s, (Ellipsis, -1))
        return small / big if p == -2 else big / small
    _assert_stacked_square(x)
    return norm(x, p, axis=(-2, -1)) * norm(P.inv(x, strict=False), p, axis=(-2, -1))


def multi_dot(arrays, *, out=None):
    """np.linalg.multi_dot: left-to-right products (the order changes only rounding)."""
    ops._reject(out=out)
    arrays = list(arrays)
    if len(arrays) < 2:
        raise ValueError("Expecting at least two arrays.")
    first, last = _shape(arrays[0]), _shape(arrays[-1])
    if len(first) == 1:
        arrays[0] = ops.reshape(arrays[0], (1, -1))
    if len(last) == 1:
        arrays[-1] = ops.reshape(arrays[-1], (-1, 1))
    out_ = functools.reduce(ops.matmul, arrays)
    if len(first) == 1 and len(last) == 1:
        return ops.reshape(out_, ())
    if len(first) == 1:
        return ops.reshape(out_, (-1,))
    if len(last) == 1:
        return ops.reshape(out_, (-1,))
    return out_


def norm(x, ord=None, axis=None, keepdims=False):
    """np.linalg.norm: the matrix norms ord 2, -2 and 'nuc' from the singular
    values; every other form is `autodiff.ops.norm`."""
    nd = len(_shape(x))
    if isinstance(ord, str) and ord != "nuc" or not (isinstance(ord, str) or ord in (2, -2)):
        return ops.norm(x, ord=ord, axis=axis, keepdims=keepdims)
    if axis is None and nd == 2:
        axes = (0, 1)
    elif isinstance(axis, tuple) and len(axis) == 2:
        axes = tuple(ops.normalize_axes(int(i), nd)[0] for i in axis)
    else:
        return ops.norm(x, ord=ord, axis=axis, keepdims=keepdims)
    row, col = axes
    if row == col:
        raise ValueError("Duplicate axes given.")
    s = svdvals_p(ops.moveaxis(x, (row, col), (-2, -1)))
    r = {2: ops.max, -2: ops.min, "nuc": ops.sum}[ord](s, axis=-1)
    if keepdims:
        r = ops.reshape(r, tuple(1 if i in axes else d for i, d in enumerate(_shape(x))))
    return r


def matrix_norm(x, /, *, keepdims=False, ord="fro"):
    return norm(x, ord=ord, axis=(-2, -1), keepdims=keepdims)


def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):
    """np.linalg.vector_norm: the flattened array when axis is None (any ord)."""
    shape = _shape(x)
    if axis is None:
        r = norm(ops.ravel(x), ord=ord)
        return ops.reshape(r, (1,) * len(shape)) if keepdims else r
    if isinstance(axis, tuple) and len(axis) > 1:  # several axes: flatten them into one
        axes = ops.normalize_axes(axis, len(shape))
        rest = [i for i in range(len(shape)) if i not in axes]
        y = ops.reshape(ops.transpose(x, rest + list(axes)), tuple(shape[i] for i in rest) + (-1,))
        r = norm(y, ord=ord, axis=-1)
        if keepdims:
            r = ops.reshape(r, tuple(1 if i in axes else d for i, d in enumerate(shape)))
        return r
    return norm(x, ord=ord, axis=axis, keepdims=keepdims)


UFUNCS: dict = {}
FUNCTIONS = {
    np.linalg.svd: svd, np.linalg.eigh: eigh, np.linalg.eigvalsh: eigvalsh, np.linalg.qr: qr,
    np.linalg.pinv: pinv, np.linalg.lstsq: lstsq, np.linalg.matrix_power: matrix_power,
    np.linalg.matrix_rank: matrix_rank, np.linalg.cond: cond, np.linalg.multi_dot: multi_dot,
    np.linalg.norm: norm,
}
for _name, _fn in (("svdvals", svdvals), ("matrix_norm", matrix_norm), ("vector_norm", vector_norm)):
    if hasattr(np.linalg, _name):  # numpy >= 2.0
        FUNCTIONS[getattr(np.linalg, _name)] = _fn
