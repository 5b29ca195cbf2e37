"""Product rules: matmul (1-D, 2-D, batched) and n-operand einsum."""
import string

import numpy as np

from .. import primitives as P
from .base import PerArgument, complex_rules, defjvp, defvjp, lift, shape_of, unbroadcast


def mT(x):
    n = x.ndim
    return P.transpose(x, axes=tuple(range(n - 2)) + (n - 1, n - 2))


# -- matmul: vectors are promoted to matrices, as numpy does -----------------------------
def _as_matrix(x, first: bool, batched: bool = False):
    """Promote a 1-D operand (after an optional leading K axis) to 2-D."""
    s = x.shape[1:] if batched else x.shape
    if len(s) > 1:
        return x
    k = x.shape[:1] if batched else ()
    return P.reshape(x, shape=k + ((1,) + s if first else s + (1,)))


def _mm_shape(a2, b2):
    return np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]) + (a2.shape[-2], b2.shape[-1])


def _matmul_jvp_a(t, ans, a, b):
    if a.ndim == 2 and b.ndim == 2:  # all K directions in one GEMM over the stacked rows
        k, n = t.shape[0], a.shape[0]
        return P.reshape(P.matmul(P.reshape(t, shape=(k * n, a.shape[1])), b), shape=(k, n, b.shape[1]))
    b2 = _as_matrix(b, False)
    t2 = lift(_as_matrix(t, True, batched=True), b2.ndim)
    return P.reshape(P.matmul(t2, b2), shape=t.shape[:1] + shape_of(ans))


def _matmul_jvp_b(t, ans, a, b):
    a2 = _as_matrix(a, True)
    t2 = lift(_as_matrix(t, False, batched=True), a2.ndim)
    return P.reshape(P.matmul(a2, t2), shape=t.shape[:1] + shape_of(ans))


def _matmul_vjp_a(g, ans, a, b):
    a2, b2 = _as_matrix(a, True), _as_matrix(b, False)
    g2 = P.reshape(g, shape=_mm_shape(a2, b2))
    return P.reshape(unbroadcast(P.matmul(g2, mT(b2)), a2.shape), shape=a.shape)


def _matmul_vjp_b(g, ans, a, b):
    a2, b2 = _as_matrix(a, True), _as_matrix(b, False)
    g2 = P.reshape(g, shape=_mm_shape(a2, b2))
    return P.reshape(unbroadcast(P.matmul(mT(a2), g2), b2.shape), shape=b.shape)


defjvp(P.matmul, _matmul_jvp_a, _matmul_jvp_b)
defvjp(P.matmul, _matmul_vjp_a, _matmul_vjp_b)


# -- einsum (explicit subscripts, no repeated index within an operand) ----------------------
def _split(subscripts):
    ins, out = subscripts.split("->")
    return ins.split(","), out


def _einsum_jvp(i):
    def jvp(t, ans, *xs, subscripts):
        terms, out = _split(subscripts)
        z = next(c for c in string.ascii_letters if c not in subscripts)
        terms = list(terms)
        terms[i] = z + terms[i]
        operands = list(xs)
        operands[i] = t
        return P.einsum(*operands, subscripts=",".join(terms) + "->" + z + out)
    return jvp


def _einsum_vjp(i):
    def vjp(g, ans, *xs, subscripts):
        terms, out = _split(subscripts)
        target = terms[i]
        others = [s for j, s in enumerate(terms) if j != i]
        present = set(out).union(*others)
        kept = "".join(c for c in target if c in present)
        spec = ",".join([out] + others) + "->" + kept
        r = P.einsum(g, *[x for j, x in enumerate(xs) if j != i], subscripts=spec)
        shape = xs[i].shape
        if kept != target:  # indices summed within this operand alone: broadcast back
            r = P.reshape(r, shape=tuple(s if c in present else 1 for c, s in zip(target, shape)))
            r = P.broadcast_to(r, shape=shape)
        return unbroadcast(r, shape)
    return vjp


P.einsum.jvps = PerArgument(_einsum_jvp)
P.einsum.vjps = PerArgument(_einsum_vjp)

# linear or multilinear: the rules hold for complex values (see rules.base.complex_rules)
complex_rules(P.matmul, P.einsum)
