"""Linear-algebra rules: solve, inv, det, adjugate, log|det|, cholesky (matrices in
the last two axes)."""
import numpy as np

from .. import primitives as P
from .base import constant, defjvp, defvjp, lift, shape_of, unbroadcast
from .products import mT


def _bt(t, *others):
    """Lift a K-batched tangent to broadcast against the other operands."""
    return lift(t, max(o.ndim for o in others))


# X = solve(A, B):  dX = A^-1 (dB - dA X);  gB = A^-T g,  gA = -gB X^T
defjvp(P.solve,
       lambda t, ans, a, b: -P.solve(a, P.matmul(_bt(t, a, ans), ans)),
       lambda t, ans, a, b: P.solve(a, _bt(t, a, b)))


def _solve_vjp_b(g, ans, a, b):
    return unbroadcast(P.solve(mT(a), g), b.shape)


defvjp(P.solve,
       lambda g, ans, a, b: unbroadcast(-P.matmul(P.solve(mT(a), g), mT(ans)), a.shape),
       _solve_vjp_b)

# inv:  d inv = -inv dA inv
defjvp(P.inv, lambda t, ans, a, strict=True: -P.matmul(P.matmul(ans, lift(t, a.ndim)), ans))
defvjp(P.inv, lambda g, ans, a, strict=True: -P.matmul(P.matmul(mT(ans), g), mT(ans)))


def _trace_with(t, m):
    """tr(m^T t) over the last two axes, for a K-batched tangent t."""
    prod = lift(t, m.ndim) * m
    return P.sum(prod, axis=(prod.ndim - 2, prod.ndim - 1), keepdims=False)


def _scale(g, m):
    """Each matrix of m times the matching scalar of g."""
    return P.reshape(g, shape=shape_of(g) + (1, 1)) * m


# log|det A|:  d = tr(A^-1 dA);  gA = g A^-T  (inf or nan at a singular A: a true singularity)
defjvp(P.logabsdet, lambda t, ans, a: _trace_with(t, mT(P.inv(a, strict=False))))
defvjp(P.logabsdet, lambda g, ans, a: _scale(g, mT(P.inv(a, strict=False))))

# det A:  d = tr(adj(A) dA);  gA = g adj(A)^T.  adj(A) exists at every A, so
# the derivative of det is finite at singular matrices too.
defjvp(P.det, lambda t, ans, a: _trace_with(t, mT(P.adjugate(a))))
defvjp(P.det, lambda g, ans, a: _scale(g, mT(P.adjugate(a))))


# adjugate: adj(A)[j, i] = (-1)^(i+j) det(M_ij), M_ij = A without row i and column j.
# Its derivative goes through the minors (exact at singular matrices too; it
# costs n^2 determinants of (n-1)-matrices, so only second derivatives of det
# pay it).  A 1x1 adjugate is the constant 1.
def _minors(n, dtype):
    """Index arrays picking every minor: A[..., R, C] has shape (..., n, n, n-1, n-1);
    and the cofactor signs."""
    keep = np.array([[m for m in range(n) if m != i] for i in range(n)])  # (n, n-1)
    rows = keep[:, None, :, None]
    cols = keep[None, :, None, :]
    sign = ((-1.0) ** np.add.outer(np.arange(n), np.arange(n))).astype(dtype)
    return rows, cols, sign


def _adjugate_jvp(t, ans, a):
    n = a.shape[-1]
    if n == 1:
        return t * 0.0
    rows, cols, sign = _minors(n, constant(a).dtype)
    minors = P.getitem(a, idx=(Ellipsis, rows, cols))
    d_minors = P.getitem(t, idx=(Ellipsis, rows, cols))
    d_det = _trace_with(d_minors, mT(P.adjugate(minors)))      # (K, ..., n, n): d det(M_ij)
    return mT(d_det * sign)


def _adjugate_vjp(g, ans, a):
    n = a.shape[-1]
    if n == 1:
        return g * 0.0
    rows, cols, sign = _minors(n, constant(a).dtype)
    minors = P.getitem(a, idx=(Ellipsis, rows, cols))
    g_det = mT(g) * sign                                        # cotangent of det(M_ij)
    return P.index_add(_scale(g_det, mT(P.adjugate(minors))), idx=(Ellipsis, rows, cols), shape=a.shape)


defjvp(P.adjugate, _adjugate_jvp)
defvjp(P.adjugate, _adjugate_vjp)


# cholesky reads the lower triangle of A only:  A = L L^T with A symmetric
# built from tril(A).  dL = L Phi(L^-1 dS L^-T), Phi = lower triangle with
# half diagonal, dS = tril(dA) + tril(dA, -1)^T.
def _masks(n, dtype):
    lower = np.tril(np.ones((n, n), dtype=dtype), -1)
    diag = np.eye(n, dtype=dtype)
    return lower, diag


def _cholesky_jvp(t, ans, a):
    n = a.shape[-1]
    lower, diag = _masks(n, constant(ans).dtype)
    t = lift(t, a.ndim)
    ds = t * (lower + diag) + mT(t * lower)
    m = P.solve(ans, ds)                  # L^-1 dS
    m = mT(P.solve(ans, mT(m)))           # L^-1 dS L^-T
    return P.matmul(ans, m * (lower + 0.5 * diag))


def _cholesky_vjp(g, ans, a):
    n = a.shape[-1]
    lower, diag = _masks(n, constant(ans).dtype)
    p = P.matmul(mT(ans), g) * (lower + 0.5 * diag)   # Phi(L^T g)
    s = P.solve(mT(ans), p)                           # L^-T P
    s = mT(P.solve(mT(ans), mT(s)))                   # L^-T P L^-1
    return (s + mT(s)) * lower + s * diag


defjvp(P.cholesky, _cholesky_jvp)
defvjp(P.cholesky, _cholesky_vjp)
