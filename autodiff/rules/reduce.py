"""Reduction rules: sum, prod, max, min, cumsum."""
from .. import primitives as P
from .base import constant, defjvp, defvjp


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


# prod: d prod / d x_i = prod / x_i (inputs with zeros give nan here, as in autograd)
def _prod_partial(ans, x, axis, keepdims):
    return _kept(ans, x, axis, keepdims) / x


defjvp(P.prod, lambda t, ans, x, axis, keepdims=False:
       P.sum(t * _prod_partial(ans, x, axis, keepdims), axis=_shift(axis), keepdims=keepdims))
defvjp(P.prod, lambda g, ans, x, axis, keepdims=False:
       _expand(g, x, axis, keepdims) * _prod_partial(ans, x, axis, keepdims))


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
