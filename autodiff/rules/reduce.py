"""Reduction rules: sum, prod, max, min, cumsum."""
import numpy as np

from .. import primitives as P
from .base import complex_rules, constant, defjvp, defvjp, shape_of


def _shift(axis):
    return tuple(a + 1 for a in axis)


def _keepdims_shape(shape, axis):
    return tuple(1 if i in axis else s for i, s in enumerate(shape))


def _expand(g, x, axis, keepdims):
    """Bring a reduced value back to x's shape (reshape to keepdims, broadcast)."""
    if not keepdims:
        g = P.reshape(g, shape=_keepdims_shape(x.shape, axis))
    return P.broadcast_to(g, shape=x.shape)


def _kept(ans, x, axis, keepdims):
    return ans if keepdims else P.reshape(ans, shape=_keepdims_shape(x.shape, axis))


defjvp(P.sum, lambda t, ans, x, axis, keepdims=False: P.sum(t, axis=_shift(axis), keepdims=keepdims))
defvjp(P.sum, lambda g, ans, x, axis, keepdims=False: _expand(g, x, axis, keepdims))


# prod: the product is taken as a balanced tree of multiplications and
# differentiated by the product rule through it, so an exact zero among the
# inputs gives the exact derivative (the product of the others), never 0/0.
def _prod_layout(x, axis):
    """x with the reduced axes moved first and merged: shape (n,) + kept shape."""
    nd = len(shape_of(x))
    kept = tuple(i for i in range(nd) if i not in axis)
    perm = axis + kept
    n = 1
    for a in axis:
        n *= x.shape[a]
    return perm, (n,) + tuple(x.shape[i] for i in kept)


def _halves(v, lead=0):
    """Split v along axis ``lead`` into halves; an odd length is padded with ones."""
    n = v.shape[lead]
    pre = (slice(None),) * lead
    if n % 2:
        v = P.concatenate(v, np.ones(v.shape[:lead] + (1,) + v.shape[lead + 1:], dtype=constant(v).dtype),
                          axis=lead)
        n += 1
    return P.getitem(v, idx=pre + (slice(0, n // 2),)), P.getitem(v, idx=pre + (slice(n // 2, n),))


def _prod_jvp(t, ans, x, axis, keepdims=False):
    perm, shape = _prod_layout(x, axis)
    k = t.shape[0]
    v = P.reshape(P.transpose(x, axes=perm), shape=shape)
    dv = P.reshape(P.transpose(t, axes=(0,) + tuple(a + 1 for a in perm)), shape=(k,) + shape)
    if shape[0] == 0:
        return np.zeros((k,) + shape_of(ans), dtype=ans.dtype)
    while v.shape[0] > 1:
        if v.shape[0] % 2:  # pad the tangent with zeros where the value is padded with ones
            dv = P.concatenate(dv, np.zeros((k, 1) + shape[1:], dtype=constant(v).dtype), axis=1)
        a, b = _halves(v)
        da, db = _halves(dv, 1)
        v, dv = a * b, da * b + a * db
    return P.reshape(dv, shape=(k,) + shape_of(ans))


def _prod_vjp(g, ans, x, axis, keepdims=False):
    perm, shape = _prod_layout(x, axis)
    v = P.reshape(P.transpose(x, axes=perm), shape=shape)
    if shape[0] == 0:
        return g * np.zeros(x.shape, dtype=constant(x).dtype)
    levels = []
    while v.shape[0] > 1:
        levels.append((v.shape[0],) + _halves(v))
        a, b = levels[-1][1:]
        v = a * b
    ct = P.reshape(g, shape=(1,) + shape[1:])
    for n, a, b in reversed(levels):
        ct = P.concatenate(ct * b, ct * a, axis=0)
        if n % 2:
            ct = P.getitem(ct, idx=(slice(0, n),))
    moved = tuple(x.shape[i] for i in perm)
    return P.transpose(P.reshape(ct, shape=moved), axes=tuple(int(i) for i in np.argsort(perm)))


defjvp(P.prod, _prod_jvp)
defvjp(P.prod, _prod_vjp)


# max/min: the derivative is shared equally among the elements that attain it
def _argext_weights(ans, x, axis, keepdims):
    ext = constant(ans)
    if not keepdims:
        ext = ext.reshape(_keepdims_shape(x.shape, axis))
    hit = (constant(x) == ext).astype(x.dtype)
    return hit / hit.sum(axis=axis, keepdims=True)


for _p in (P.max, P.min):
    defjvp(_p, lambda t, ans, x, axis, keepdims=False:
           P.sum(t * _argext_weights(ans, x, axis, keepdims), axis=_shift(axis), keepdims=keepdims))
    defvjp(_p, lambda g, ans, x, axis, keepdims=False:
           _expand(g, x, axis, keepdims) * _argext_weights(ans, x, axis, keepdims))


def _flip(x, axis):
    return P.getitem(x, idx=(slice(None),) * axis + (slice(None, None, -1),))


defjvp(P.cumsum, lambda t, ans, x, axis: P.cumsum(t, axis=axis + 1))
defvjp(P.cumsum, lambda g, ans, x, axis: _flip(P.cumsum(_flip(g, axis), axis=axis), axis))

# linear or multilinear: the rules hold for complex values (see rules.base.complex_rules)
complex_rules(P.sum, P.prod, P.cumsum)
