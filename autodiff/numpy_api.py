"""numpy's override protocols for boxed values: which numpy call goes where.

``np.tanh(x)`` on a `Dual` or tape value arrives here through
``__array_ufunc__``; ``np.sum(x, axis=0)`` through ``__array_function__``.
Each is mapped to a differentiable function in `autodiff.ops`, or, for
functions of the primal alone (comparisons, argmax, shape queries), evaluated
on the primal.  Anything else raises NotImplementedError naming the function:
nothing is ever differentiated as a silent zero.
"""
from __future__ import annotations

import numpy as np

from . import ops
from .core import Box, primal_value


def _on_primal(f):
    def g(*args, **kwargs):
        return f(*[primal_value(a) for a in args], **{k: primal_value(v) for k, v in kwargs.items()})
    return g


UFUNCS = {
    np.add: ops.add, np.subtract: ops.subtract, np.multiply: ops.multiply,
    np.divide: ops.divide, np.power: ops.power, np.negative: ops.negative,
    np.positive: ops.copy, np.exp: ops.exp, np.log: ops.log, np.log1p: ops.log1p,
    np.expm1: ops.expm1, np.sqrt: ops.sqrt, np.square: ops.square,
    np.reciprocal: ops.reciprocal, np.sin: ops.sin, np.cos: ops.cos, np.tan: ops.tan,
    np.tanh: ops.tanh, np.sinh: ops.sinh, np.cosh: ops.cosh, np.arctan: ops.arctan,
    np.arcsin: ops.arcsin, np.arccos: ops.arccos, np.arctanh: ops.arctanh,
    np.absolute: ops.abs, np.maximum: ops.maximum, np.minimum: ops.minimum,
    np.matmul: ops.matmul, np.exp2: ops.exp2, np.log2: ops.log2, np.log10: ops.log10,
    np.logaddexp: ops.logaddexp, np.sign: ops.sign, np.floor: ops.floor,
    np.ceil: ops.ceil, np.rint: ops.rint, np.conjugate: ops.conj,
}
for _u in (np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal,
           np.isfinite, np.isnan, np.isinf, np.signbit, np.logical_and, np.logical_or,
           np.logical_not, np.logical_xor, np.trunc):
    UFUNCS[_u] = _on_primal(_u)

REDUCTIONS = {np.add: ops.sum, np.multiply: ops.prod, np.maximum: ops.max, np.minimum: ops.min}


def array_ufunc(ufunc, method, inputs, kwargs):
    out = kwargs.pop("out", None)
    if out is not None:  # np.add(a, b, out=d): compute, then write into d as d[...] = result
        out = out[0] if isinstance(out, tuple) and len(out) == 1 else out
        if not isinstance(out, Box):
            raise TypeError(f"np.{ufunc.__name__}(..., out=plain): " + ops._PLAIN_WRITE)
        out[...] = array_ufunc(ufunc, method, inputs, kwargs)
        return out
    if method == "__call__" and not kwargs:
        f = UFUNCS.get(ufunc)
        if f is not None:
            return f(*inputs)
    elif method == "reduce" and ufunc in REDUCTIONS:
        return REDUCTIONS[ufunc](*inputs, **kwargs)
    elif method == "accumulate" and ufunc is np.add:
        return ops.cumsum(*inputs, axis=kwargs.get("axis", 0))
    elif method == "accumulate" and ufunc is np.multiply and np.cumprod in FUNCTIONS:
        return FUNCTIONS[np.cumprod](*inputs, axis=kwargs.get("axis", 0))
    elif method == "at" and ufunc in (np.add, np.subtract) and not kwargs:
        return ops.scatter_at(ufunc is np.add, *inputs)
    name = f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
    raise NotImplementedError(
        f"no derivative rule for {name}" + (f" with arguments {sorted(kwargs)}" if kwargs else "")
    )


FUNCTIONS = {
    np.sum: ops.sum, np.prod: ops.prod, np.max: ops.max, np.amax: ops.max,
    np.min: ops.min, np.amin: ops.min, np.mean: ops.mean, np.var: ops.var, np.std: ops.std,
    np.cumsum: ops.cumsum, np.reshape: ops.reshape, np.ravel: ops.ravel,
    np.transpose: ops.transpose, np.swapaxes: ops.swapaxes, np.moveaxis: ops.moveaxis,
    np.expand_dims: ops.expand_dims, np.squeeze: ops.squeeze, np.broadcast_to: ops.broadcast_to,
    np.concatenate: ops.concatenate, np.stack: ops.stack, np.vstack: ops.vstack,
    np.hstack: ops.hstack, np.split: ops.split, np.pad: ops.pad, np.take: ops.take,
    np.take_along_axis: ops.take_along_axis, np.where: ops.where, np.clip: ops.clip,
    np.dot: ops.dot, np.vdot: ops.vdot, np.inner: ops.inner, np.outer: ops.outer,
    np.tensordot: ops.tensordot, np.einsum: ops.einsum, np.trace: ops.trace, np.sort: ops.sort,
    np.atleast_1d: ops.atleast_1d, np.atleast_2d: ops.atleast_2d,
    np.linalg.solve: ops.solve, np.linalg.inv: ops.inv, np.linalg.slogdet: ops.slogdet,
    np.linalg.det: ops.det, np.linalg.cholesky: ops.cholesky, np.linalg.norm: ops.norm,
    np.copy: ops.copy, np.real: ops.real, np.imag: ops.imag, np.unique: ops.unique,
    np.zeros_like: ops.zeros_like, np.ones_like: ops.ones_like, np.empty_like: ops.empty_like,
    np.full_like: ops.full_like, np.copyto: ops.copyto,
}
for _f in (np.argmax, np.argmin, np.argsort, np.shape, np.ndim, np.size, np.result_type,
           np.isclose, np.allclose,
           np.array_equal, np.all, np.any, np.nonzero, np.count_nonzero, np.isscalar,
           np.iscomplexobj, np.isrealobj, np.iscomplex, np.isreal, np.searchsorted, np.argwhere):
    FUNCTIONS[_f] = _on_primal(_f)


def _merge_families():
    from . import families
    for module in families.load():
        UFUNCS.update(getattr(module, "UFUNCS", {}))
        FUNCTIONS.update(getattr(module, "FUNCTIONS", {}))


_merge_families()


def _constant(x):
    """numpy takes a Python list as an array constant; a list holding boxes is a
    sequence of operands (np.concatenate, np.stack), whose lists are constants."""
    if type(x) is not list:
        return x
    parts = [_constant(e) for e in x]
    return parts if any(isinstance(p, (Box, list)) for p in parts) else np.asarray(x)


def array_function(func, args, kwargs):
    f = FUNCTIONS.get(func)
    if f is None:
        raise NotImplementedError(
            f"no derivative rule for {func.__module__}.{func.__name__}; use the supported numpy "
            "functions (see autodiff.numpy_api.FUNCTIONS) or apply it to .primal for a constant"
        )
    return f(*[_constant(a) for a in args], **kwargs)
