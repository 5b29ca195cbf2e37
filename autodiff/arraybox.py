"""`ArrayBox`: a traced value that behaves like a numpy array.

`autodiff.core.Box` is the trace-generic part of a traced value (its trace,
shape and dtype, comparisons on the primal, refused conversions), and knows
nothing of the numpy vocabulary.  `ArrayBox` adds numpy's operators, its
``__array_ufunc__`` / ``__array_function__`` protocols and the ndarray methods,
all routed to `autodiff.ops`; `Dual` and the tape's `Var` are ArrayBoxes.
(HIPS autograd splits its ``Box`` and ``ArrayBox`` the same way.)  Keeping
this next to the vocabulary lets `core` import nothing of it.
"""
from __future__ import annotations

import numpy as np

from . import numpy_api, ops
from .core import Box, primal_value


class ArrayBox(Box):
    """A `Box` with numpy's operators, protocols and ndarray methods.

    Arithmetic, numpy ufuncs and numpy functions dispatch to the primitives
    (`autodiff.ops`); writes (``x[i] = v``, ``x += v``) go to the trace.
    """

    __slots__ = ()

    real = property(lambda self: ops.real(self))
    imag = property(lambda self: ops.imag(self))
    T = property(lambda self: ops.transpose(self))
    mT = property(lambda self: ops.swapaxes(self, -1, -2))

    # -- arithmetic ---------------------------------------------------------
    __add__ = lambda s, o: ops.add(s, o)
    __radd__ = lambda s, o: ops.add(o, s)
    __sub__ = lambda s, o: ops.subtract(s, o)
    __rsub__ = lambda s, o: ops.subtract(o, s)
    __mul__ = lambda s, o: ops.multiply(s, o)
    __rmul__ = lambda s, o: ops.multiply(o, s)
    __truediv__ = lambda s, o: ops.divide(s, o)
    __rtruediv__ = lambda s, o: ops.divide(o, s)
    __pow__ = lambda s, o: ops.power(s, o)
    __rpow__ = lambda s, o: ops.power(o, s)
    __mod__ = lambda s, o: np.remainder(s, o)
    __rmod__ = lambda s, o: np.remainder(o, s)
    __matmul__ = lambda s, o: ops.matmul(s, o)
    __rmatmul__ = lambda s, o: ops.matmul(o, s)
    __neg__ = lambda s: ops.negative(s)
    __pos__ = lambda s: ops.copy(s)  # numpy's +x is a new array
    __abs__ = lambda s: ops.abs(s)
    __getitem__ = lambda s, idx: ops.getitem(s, idx)

    # -- writes: a box is as mutable as an ndarray (each trace says how) -------
    def __setitem__(self, idx, value):
        self._trace.write(self, ops.normalize_index(idx), value)

    def fill(self, value):
        self._trace.write(self, (Ellipsis,), value)

    def _update(self, fn, other):  # x op= y writes x op y into x, as numpy does
        result = fn(self, other)
        if not isinstance(primal_value(self), np.ndarray):  # a scalar (x[i, j]): rebinds, as in numpy
            return result
        self._trace.write(self, (Ellipsis,), result)
        return self

    __iadd__ = lambda s, o: s._update(ops.add, o)
    __isub__ = lambda s, o: s._update(ops.subtract, o)
    __imul__ = lambda s, o: s._update(ops.multiply, o)
    __itruediv__ = lambda s, o: s._update(ops.divide, o)
    __ipow__ = lambda s, o: s._update(ops.power, o)
    __imatmul__ = lambda s, o: s._update(ops.matmul, o)
    __imod__ = lambda s, o: s._update(np.remainder, o)

    # -- numpy protocols ---------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return numpy_api.array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return numpy_api.array_function(func, args, kwargs)

    # -- ndarray methods --------------------------------------------------------
    def reshape(self, *args, order="C", shape=None, copy=None):
        if shape is None:
            shape = args[0] if len(args) == 1 else args
        return ops.reshape(self, shape, order=order)

    def transpose(self, *axes):
        return ops.transpose(self, axes[0] if len(axes) == 1 else (axes or None))

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        return ops.astype(self, dtype, copy)

    conj = conjugate = lambda self: ops.conj(self)

    def copy(self, order="C"):
        return ops.copy(self)

    # copy.copy / copy.deepcopy give a copy on the same trace (its derivative kept)
    __copy__ = copy
    __deepcopy__ = lambda self, memo: ops.copy(self)

    # ndarray methods take numpy's arguments, positional or keyword
    ravel = lambda s, order="C": ops.ravel(s, order=order)
    flatten = ravel
    squeeze = lambda s, axis=None: ops.squeeze(s, axis)
    swapaxes = lambda s, a, b: ops.swapaxes(s, a, b)
    sum = lambda s, *args, **kwargs: ops.sum(s, *args, **kwargs)
    mean = lambda s, *args, **kwargs: ops.mean(s, *args, **kwargs)
    prod = lambda s, *args, **kwargs: ops.prod(s, *args, **kwargs)
    max = lambda s, *args, **kwargs: ops.max(s, *args, **kwargs)
    min = lambda s, *args, **kwargs: ops.min(s, *args, **kwargs)
    var = lambda s, *args, **kwargs: ops.var(s, *args, **kwargs)
    std = lambda s, *args, **kwargs: ops.std(s, *args, **kwargs)
    cumsum = lambda s, *args, **kwargs: ops.cumsum(s, *args, **kwargs)
    dot = lambda s, *args, **kwargs: ops.dot(s, *args, **kwargs)
    clip = lambda s, *args, **kwargs: ops.clip(s, *args, **kwargs)
    # ndarray methods that are numpy functions of a family (autodiff/families)
    diagonal = lambda s, *args, **kwargs: np.diagonal(s, *args, **kwargs)
    trace = lambda s, *args, **kwargs: np.trace(s, *args, **kwargs)
    repeat = lambda s, *args, **kwargs: np.repeat(s, *args, **kwargs)
    cumprod = lambda s, *args, **kwargs: np.cumprod(s, *args, **kwargs)
    argmax = lambda s, axis=None, keepdims=False: np.argmax(primal_value(s), axis=axis, keepdims=keepdims)
    argmin = lambda s, axis=None, keepdims=False: np.argmin(primal_value(s), axis=axis, keepdims=keepdims)
    argsort = lambda s, axis=-1: np.argsort(primal_value(s), axis=axis)
