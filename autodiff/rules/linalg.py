"""Linear-algebra rules: solve, inv, log|det|, cholesky (matrices in the last two axes)."""
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
defjvp(P.inv, lambda t, ans, a: -P.matmul(P.matmul(ans, lift(t, a.ndim)), ans))
defvjp(P.inv, lambda g, ans, a: -P.matmul(P.matmul(mT(ans), g), mT(ans)))


# log|det A|:  d = tr(A^-1 dA);  gA = g A^-T
def _logabsdet_jvp(t, ans, a):
    return P.sum(lift(t, a.ndim) * mT(P.inv(a)), axis=(t.ndim - 2, t.ndim - 1), keepdims=False)


def _logabsdet_vjp(g, ans, a):
    return P.reshape(g, shape=shape_of(g) + (1, 1)) * mT(P.inv(a))


defjvp(P.logabsdet, _logabsdet_jvp)
defvjp(P.logabsdet, _logabsdet_vjp)


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
