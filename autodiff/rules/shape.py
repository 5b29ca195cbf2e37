"""Shape and indexing rules: reshape, transpose, broadcast_to, concatenate,
pad, getitem and its transpose index_add (scatter-add)."""
import numpy as np

from .. import primitives as P
from .base import (PerArgument, complex_rules, constant, defjvp_all, deflinear, defvjp, lift, shape_of,
                   unbroadcast)

deflinear(P.reshape,
          lambda t, ans, x, shape: P.reshape(t, shape=t.shape[:1] + shape),
          lambda g, ans, x, shape: P.reshape(g, shape=x.shape))

deflinear(P.transpose,
          lambda t, ans, x, axes: P.transpose(t, axes=(0,) + tuple(a + 1 for a in axes)),
          lambda g, ans, x, axes: P.transpose(g, axes=tuple(int(i) for i in np.argsort(axes))))

deflinear(P.broadcast_to,
          lambda t, ans, x, shape: P.broadcast_to(lift(t, len(shape)), shape=t.shape[:1] + shape),
          lambda g, ans, x, shape: unbroadcast(g, x.shape))


def _concatenate_jvp(ans, tangents, *xs, axis):
    k = next(t.shape[0] for t in tangents if t is not None)
    parts = [t if t is not None else np.zeros((k,) + x.shape, dtype=ans.dtype)
             for t, x in zip(tangents, xs)]
    return P.concatenate(*parts, axis=axis + 1)


def _concatenate_vjp(i):
    def vjp(g, ans, *xs, axis):
        start = sum(x.shape[axis] for x in xs[:i])
        return P.getitem(g, idx=(slice(None),) * axis + (slice(start, start + xs[i].shape[axis]),))
    return vjp


defjvp_all(P.concatenate, _concatenate_jvp)
P.concatenate.vjps = PerArgument(_concatenate_vjp)


def _unpad(g, pad_width):
    return P.getitem(g, idx=tuple(slice(lo, s - hi) for (lo, hi), s in zip(pad_width, shape_of(g))))


deflinear(P.pad,
          lambda t, ans, x, pad_width: P.pad(t, pad_width=((0, 0),) + pad_width),
          lambda g, ans, x, pad_width: _unpad(g, pad_width))


# -- indexing ------------------------------------------------------------------------
# Tangents have a leading K axis.  Basic indices just skip it; advanced indices
# are applied with K moved last, since numpy may move advanced dimensions to
# the front and would separate K from its place.
def _k_last(t):
    return P.transpose(t, axes=tuple(range(1, t.ndim)) + (0,))


def _k_first(t):
    return P.transpose(t, axes=(t.ndim - 1,) + tuple(range(t.ndim - 1)))


def _k_last_index(idx):
    return idx + ((slice(None),) if any(i is Ellipsis for i in idx) else (Ellipsis, slice(None)))


def _getitem_jvp(t, ans, x, idx):
    if P.is_basic_index(idx):
        return P.getitem(t, idx=(slice(None),) + idx)
    return _k_first(P.getitem(_k_last(t), idx=_k_last_index(idx)))


def _index_add_jvp(t, ans, g, idx, shape):
    k = t.shape[0]
    if P.is_basic_index(idx):
        return P.index_add(t, idx=(slice(None),) + idx, shape=(k,) + shape)
    return _k_first(P.index_add(_k_last(t), idx=_k_last_index(idx), shape=shape + (k,)))


deflinear(P.getitem, _getitem_jvp, lambda g, ans, x, idx: P.index_add(g, idx=idx, shape=x.shape))
deflinear(P.index_add, _index_add_jvp, lambda ct, ans, g, idx, shape: P.getitem(ct, idx=idx))


# index_update(x, v, idx) = x with v written at idx.  Linear in (x, v) jointly:
# the tangent is the same write applied to the tangents; the cotangent of x is
# g with the written entries zeroed, that of v is g at idx -- where an advanced
# index repeats a position, only the write numpy keeps (the last) gets it.
def _index_update_jvp(ans, tangents, x, v, idx):
    tx, tv = tangents
    k = (tx if tx is not None else tv).shape[0]
    if tx is None:
        tx = np.zeros((k,) + shape_of(x), dtype=constant(ans).dtype)
    sel = P.selection_shape(shape_of(x), idx)
    tv = 0.0 if tv is None else lift(tv, len(sel))
    if P.is_basic_index(idx):
        return P.index_update(tx, tv, idx=(slice(None),) + idx)
    tv = tv if isinstance(tv, float) else _k_last(tv)
    return _k_first(P.index_update(_k_last(tx), tv, idx=_k_last_index(idx)))


def _winners(idx, shape):
    """For x[idx] = v with repeated positions in an advanced index: which
    elements of the selection numpy keeps (the last write to each position)."""
    sel = P.selection_shape(shape, idx)
    ids = np.arange(int(np.prod(sel, dtype=np.int64)))
    slots = np.full(shape, -1, dtype=np.int64)
    slots[idx] = ids.reshape(sel)
    return slots[idx] == ids.reshape(sel)


def _index_update_vjp_v(g, ans, x, v, idx):
    gv = P.getitem(g, idx=idx)
    if not P.is_basic_index(idx) and not all(getattr(i, "dtype", None) == bool for i in idx
                                             if not (i is None or i is Ellipsis or isinstance(i, slice))):
        keep = _winners(idx, shape_of(x))
        if not keep.all():
            gv = P.where(keep, gv, 0.0)
    return unbroadcast(gv, shape_of(v))


defjvp_all(P.index_update, _index_update_jvp)
defvjp(P.index_update, lambda g, ans, x, v, idx: P.index_update(g, 0.0, idx=idx), _index_update_vjp_v)

# linear or multilinear: the rules hold for complex values (see rules.base.complex_rules)
complex_rules(P.reshape, P.transpose, P.broadcast_to, P.concatenate, P.pad, P.getitem, P.index_add,
              P.index_update)


# add_at(a, b, idx) = a with b added at idx (repeats accumulate).  Linear in
# (a, b): the tangent is the same scatter on the tangents; the cotangent of a
# is g, that of b is g at idx.
def _add_at_jvp(ans, tangents, a, b, idx):
    ta, tb = tangents
    k = (ta if ta is not None else tb).shape[0]
    if ta is None:
        ta = np.zeros((k,) + shape_of(a), dtype=constant(ans).dtype)
    if tb is None:
        return ta
    sel = P.selection_shape(shape_of(a), idx)
    tb = lift(tb, len(sel))
    if P.is_basic_index(idx):
        return P.add_at(ta, tb, idx=(slice(None),) + idx)
    return _k_first(P.add_at(_k_last(ta), _k_last(tb), idx=_k_last_index(idx)))


defjvp_all(P.add_at, _add_at_jvp)
defvjp(P.add_at, lambda g, ans, a, b, idx: g,
       lambda g, ans, a, b, idx: unbroadcast(P.getitem(g, idx=idx), shape_of(b)))
