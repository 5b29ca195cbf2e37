"""The public transforms: grad, value_and_grad, vjp, jvp, jacfwd, jacrev, hvp.

Each call opens its own trace (so nesting is tagged correctly) and closes it
when it returns: the reverse-mode tape of a `grad` call is freed before the
call returns, which is what keeps a forward hypergradient through a training
loop flat in memory.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import numpy as np

from .core import Box, is_complex, match_dtype, primal_value
from .dual import Dual, ForwardTrace
from .tape import RECORDING, ReverseTrace, is_var_of
from .tree import tree_flatten, tree_map, tree_unflatten


def _float_leaf(x, where: str):
    if type(x) is float:  # stays a Python float: weakly typed, as in the plain run
        return x
    if isinstance(x, Box):
        dtype = x.dtype
    else:
        x = x if hasattr(x, "dtype") and hasattr(x, "shape") else np.asarray(x)
        dtype = x.dtype
    if not np.issubdtype(dtype, np.inexact):
        raise TypeError(
            f"{where}: differentiation needs floating-point or complex inputs, got dtype {dtype}; "
            "cast it with .astype(float), or leave it out of argnums"
        )
    return x


def _argnums(argnums, nargs: int) -> tuple:
    """The positions to differentiate, in order; a position may repeat
    (``argnums=(0, 0)``), and each occurrence gets its own answer."""
    nums = (argnums,) if isinstance(argnums, (int, np.integer)) else tuple(argnums)
    for n in nums:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
            raise TypeError(f"argnums must be integers, got {argnums!r}")
        if not -nargs <= n < nargs:
            raise ValueError(f"argnums={argnums} but the function was called with {nargs} positional arguments")
    return tuple(int(n) % nargs for n in nums)


def _unique(nums: tuple) -> tuple:
    return tuple(dict.fromkeys(nums))


def _zeros(x):
    return np.zeros_like(primal_value(x))


def _box_inputs(trace, args, nums):
    """Replace args[n] (n in nums) by trees of input Vars; return them too."""
    args = list(args)
    inputs = []
    for n in nums:
        leaves, treedef = tree_flatten(args[n])
        boxed = [trace.new_input(_float_leaf(x, f"argument {n}")) for x in leaves]
        inputs.append((boxed, treedef))
        args[n] = tree_unflatten(treedef, boxed)
    return args, inputs


def _unbox(tree, trace):
    """The values of ``trace``'s Vars in ``tree``: nothing of a closed tape escapes."""
    return tree_map(lambda o: o.value if is_var_of(o, trace) else o, tree)


def _collect(cts, inputs):
    out = []
    for boxed, treedef in inputs:
        leaves = []
        for b in boxed:
            g = cts.get(b._node)
            leaves.append(_zeros(b.value) if g is None else match_dtype(g, b.value))
        out.append(tree_unflatten(treedef, leaves))
    return out


def value_and_grad(f: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
    """``f`` and its reverse-mode gradient in one pass.

    ``f`` must return a single-element array (or ``(value, aux)`` with
    ``has_aux``).  The gradient has the pytree structure of the argument(s).
    """

    @functools.wraps(f)
    def value_and_grad_f(*args, **kwargs):
        nums = _argnums(argnums, len(args))
        uniq = _unique(nums)
        trace = ReverseTrace()
        args, inputs = _box_inputs(trace, args, uniq)
        RECORDING.append(trace)
        try:
            out = f(*args, **kwargs)
        finally:
            RECORDING.remove(trace)
        if has_aux:
            out, aux = out
        value = out.value if is_var_of(out, trace) else out
        shape = np.shape(primal_value(value)) if hasattr(value, "shape") or np.isscalar(value) else None
        if shape is None or int(np.prod(shape)) != 1:
            what = f"shape {shape}" if shape is not None else f"a {type(value).__name__}"
            raise TypeError(
                f"grad needs a function with a single-element output, got {what}; "
                "use vjp or jacrev for non-scalar outputs"
            )
        if is_complex(primal_value(value)):
            raise TypeError(
                "grad needs a real-valued output, got a complex one; differentiate np.real(f), np.abs(f) "
                "or another real function of it, or use vjp (with a cotangent of 1.0 it gives the "
                "derivative of a holomorphic f)"
            )
        seeds = [(out._node, np.ones_like(primal_value(value)))] if is_var_of(out, trace) else []
        cts = trace.backward(seeds, free=True)
        grads = _collect(cts, inputs)
        grads = [grads[uniq.index(n)] for n in nums]
        g = grads[0] if isinstance(argnums, (int, np.integer)) else tuple(grads)
        return ((value, _unbox(aux, trace)), g) if has_aux else (value, g)

    return value_and_grad_f


def grad(f: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
    """The reverse-mode gradient of a scalar-valued ``f`` (see value_and_grad)."""
    vg = value_and_grad(f, argnums, has_aux)

    @functools.wraps(f)
    def grad_f(*args, **kwargs):
        value, g = vg(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return grad_f


def vjp(f: Callable, *primals, has_aux: bool = False):
    """``(f(*primals), vjp_fn)``; ``vjp_fn(cotangent)`` returns one cotangent per primal."""
    trace = ReverseTrace()
    args, inputs = _box_inputs(trace, primals, range(len(primals)))
    RECORDING.append(trace)
    try:
        out = f(*args)
    finally:
        RECORDING.remove(trace)
    if has_aux:
        out, aux = out
    out_leaves, out_def = tree_flatten(out)
    out_value = _unbox(out, trace)

    def vjp_fn(cotangent):
        ct_leaves, ct_def = tree_flatten(cotangent)
        if ct_def != out_def:
            raise ValueError(f"cotangent structure {ct_def} does not match the output's {out_def}")
        seeds = []
        for o, c in zip(out_leaves, ct_leaves):
            if np.shape(c) != np.shape(primal_value(o)):
                raise ValueError(f"cotangent shape {np.shape(c)} does not match output shape "
                                 f"{np.shape(primal_value(o))}")
            if is_complex(primal_value(c)) and not is_complex(primal_value(o)):
                raise TypeError("a complex cotangent for a real output: the cotangent of a real value is real")
            if is_var_of(o, trace):
                seeds.append((o._node, c))
        return tuple(_collect(trace.backward(seeds), inputs))

    return (out_value, vjp_fn, _unbox(aux, trace)) if has_aux else (out_value, vjp_fn)


def _complex_like(t, primal):
    """A tangent of a complex value is complex (a rule may give a real one: x + 1j)."""
    return match_dtype(t, primal) if is_complex(primal) and not is_complex(t) else t


def _forward(f, primals, tangent_leaves, trace):
    """Run f with the float leaves of ``primals`` made Duals of ``trace``.

    ``tangent_leaves[i]`` holds the batched tangent ((K,) + shape) of the i-th
    leaf, or None for no tangent."""
    args, i = [], 0
    for p in primals:
        leaves, treedef = tree_flatten(p)
        boxed = []
        for x in leaves:
            t = tangent_leaves[i]
            boxed.append(x if t is None else Dual(x, t, trace))
            i += 1
        args.append(tree_unflatten(treedef, boxed))
    return f(*args)


def jvp(f: Callable, primals: Sequence, tangents: Sequence):
    """Forward mode: ``(f(*primals), directional derivative along tangents)``."""
    if len(primals) != len(tangents):
        raise ValueError(f"jvp got {len(primals)} primals but {len(tangents)} tangents")
    t_leaves, new_primals = [], []
    for n, (p, t) in enumerate(zip(primals, tangents)):
        pl, pd = tree_flatten(p)
        tl, td = tree_flatten(t)
        if pd != td:
            raise ValueError(f"tangent structure {td} does not match primal structure {pd} (argument {n})")
        for i, (x, tx) in enumerate(zip(pl, tl)):
            xs, ts = np.shape(primal_value(x)), np.shape(primal_value(tx))
            if xs != ts:
                raise ValueError(f"tangent shape {ts} does not match primal shape {xs} (argument {n})")
            if is_complex(primal_value(tx)) and not is_complex(primal_value(x)):
                raise TypeError(f"jvp: argument {n} is real but its tangent is complex: the tangent of a real "
                                "value is real (make the primal complex to move it off the real line)")
            if type(x) is int and np.any(primal_value(tx)):  # a number with a derivative, as in `dual`
                x = pl[i] = float(x)  # (with a zero tangent it stays an int: a count, a slice bound)
            if not np.issubdtype(np.result_type(primal_value(x)), np.inexact):
                if np.any(primal_value(tx)):
                    raise TypeError(
                        f"jvp: argument {n} has an integer or boolean primal (dtype "
                        f"{np.result_type(primal_value(x))}) with a nonzero tangent; integers carry no "
                        "derivative: cast the primal to a float dtype, or give it a zero tangent")
                t_leaves.append(None)
                continue
            if not isinstance(tx, Box):
                tx = np.asarray(tx, dtype=x.dtype if hasattr(x, "dtype") else complex if type(x) is complex
                                else float)
            t_leaves.append(tx[None] if not isinstance(tx, Box) else tx.reshape((1,) + xs))
        new_primals.append(tree_unflatten(pd, pl))
    primals = new_primals
    trace = ForwardTrace()
    out = _forward(f, primals, t_leaves, trace)
    leaves, treedef = tree_flatten(out)
    ps = [o.primal if type(o) is Dual and o._trace is trace else o for o in leaves]
    ts = [_complex_like(o.tangents[0], o.primal) if type(o) is Dual and o._trace is trace else _zeros(o)
          for o in leaves]
    return tree_unflatten(treedef, ps), tree_unflatten(treedef, ts)


_HOLOMORPHIC = ("the Jacobian of a function of complex {what} is a complex matrix only if the function is "
                "holomorphic: pass holomorphic=True if it is (the answer is then f'(z)), or split the values "
                "into real and imaginary parts")


def jacfwd(f: Callable, argnums: int | Sequence[int] = 0, chunk_size: int | None = None,
           holomorphic: bool = False) -> Callable:
    """The Jacobian by forward mode: all N input directions in one batched pass
    (or in passes of ``chunk_size`` directions).  For an input of shape ``s``
    and an output of shape ``o`` the Jacobian has shape ``o + s``.  Complex
    inputs need ``holomorphic=True`` (each direction is then 1 + 0i, which
    gives f'(z) for a holomorphic f); complex outputs of real inputs are fine."""

    @functools.wraps(f)
    def jac_f(*args):
        nums = _argnums(argnums, len(args))
        args = [tree_map(lambda x: _float_leaf(x, f"argument {n}"), a) if n in nums else a
                for n, a in enumerate(args)]
        if not holomorphic and any(is_complex(primal_value(x)) for n in nums for x in tree_flatten(args[n])[0]):
            raise TypeError("jacfwd: " + _HOLOMORPHIC.format(what="inputs"))
        flat = [tree_flatten(a) for a in args]
        slots, n_total = [], 0  # per leaf: (offset, size, shape, dtype) or None
        for n, (leaves, _) in enumerate(flat):
            for x in leaves:
                if n in nums:
                    shape = np.shape(primal_value(x))
                    size = int(np.prod(shape))
                    slots.append((n_total, size, shape, np.result_type(primal_value(x))))
                    n_total += size
                else:
                    slots.append(None)
        k = max(1, min(chunk_size or n_total, n_total))
        seeded = [x for n, (leaves, _) in enumerate(flat) if n in nums for x in leaves]
        chunks = []
        for start in range(0, n_total, k):
            stop = min(start + k, n_total)
            seeds = iter(basis_tangents(seeded, start, stop, sparse=True))
            t_leaves = [None if slot is None else next(seeds) for slot in slots]
            trace = ForwardTrace()
            out_leaves, out_def = tree_flatten(_forward(f, args, t_leaves, trace))
            chunks.append([_complex_like(o.tangents, o.primal) if type(o) is Dual and o._trace is trace else
                           np.zeros((stop - start,) + np.shape(primal_value(o)),
                                    dtype=np.result_type(primal_value(o)))
                           for o in out_leaves])
        cols = [np.concatenate(c, axis=0) for c in zip(*chunks)]  # each (N,) + out shape

        def block(col, n):
            """d out / d args[n], as a tree shaped like args[n] of (out shape + leaf shape)."""
            first = sum(len(flat[m][0]) for m in range(n))
            parts = []
            for off, size, shape, _ in slots[first:first + len(flat[n][0])]:
                j = np.moveaxis(col[off:off + size], 0, -1)
                parts.append(j.reshape(col.shape[1:] + shape))
            return tree_unflatten(flat[n][1], parts)

        per_out = [block(c, nums[0]) if isinstance(argnums, int) else tuple(block(c, n) for n in nums)
                   for c in cols]
        return tree_unflatten(out_def, per_out)

    return jac_f


def basis_tangents(tree, start: int = 0, stop: int | None = None, *, offset: int = 0,
                   sparse: bool = False):
    """One-hot tangent directions over the entries of a pytree, for forward mode.

    The entries of ``tree``'s leaves are numbered ``offset, offset + 1, ...``,
    leaf by leaf in flattening order, each leaf in C order.  Direction ``d``, for
    ``start <= d < stop``, is 1 at entry ``d`` and 0 everywhere else.  The result
    is a pytree like ``tree`` whose leaves have shape ``(stop - start,) +
    leaf.shape`` and the leaf's float dtype (float64 for Python numbers), ready
    for `dual` or `jvp`; ``stop`` defaults to the last entry plus one.  With
    ``sparse=True`` a leaf with no entry among the directions gets None (a
    constant) instead of zeros.

    >>> basis_tangents({"lr": 0.1, "w": np.zeros(2)})["w"]   # directions 1 and 2
    array([[0., 0.],
           [1., 0.],
           [0., 1.]])
    """
    leaves, treedef = tree_flatten(tree)
    shapes = [np.shape(primal_value(x)) for x in leaves]
    sizes = [int(np.prod(s)) for s in shapes]
    stop = offset + sum(sizes) if stop is None else stop
    if not 0 <= start <= stop:
        raise ValueError(f"basis_tangents: need 0 <= start <= stop, got start={start}, stop={stop}")
    out, off = [], offset
    for x, shape, size in zip(leaves, shapes, sizes):
        lo, hi = max(start, off), min(stop, off + size)
        if sparse and lo >= hi:
            out.append(None)
        else:
            dtype = np.result_type(primal_value(x))
            t = np.zeros((stop - start, size), dtype=dtype if dtype.kind in "fc" else np.float64)
            if lo < hi:
                t[np.arange(lo, hi) - start, np.arange(lo, hi) - off] = 1
            out.append(t.reshape((stop - start,) + shape))
        off += size
    return tree_unflatten(treedef, out)


def jacrev(f: Callable, argnums: int | Sequence[int] = 0, holomorphic: bool = False) -> Callable:
    """The Jacobian by reverse mode: one backward sweep per output element.
    Complex outputs need ``holomorphic=True`` (each sweep is seeded with 1 + 0i,
    which gives f'(z) for a holomorphic f); complex inputs of real outputs are
    fine (each row is then a gradient, as `grad` gives it)."""

    @functools.wraps(f)
    def jac_f(*args):
        nums = _argnums(argnums, len(args))
        uniq = _unique(nums)
        fixed = list(args)

        def g(*xs):
            a = list(fixed)
            for n, x in zip(uniq, xs):
                a[n] = x
            return f(*a)

        out, pullback_uniq = vjp(g, *[args[n] for n in uniq])

        def pullback(ct):
            cts = pullback_uniq(ct)
            return tuple(cts[uniq.index(n)] for n in nums)

        leaves, out_def = tree_flatten(out)
        if not holomorphic and any(is_complex(primal_value(o)) for o in leaves):
            raise TypeError("jacrev: " + _HOLOMORPHIC.format(what="outputs"))
        per_out = []
        for i, o in enumerate(leaves):
            shape = np.shape(primal_value(o))
            rows = []
            for e in range(int(np.prod(shape))):
                cts = [np.zeros_like(primal_value(l)) for l in leaves]
                cts[i] = np.zeros(shape, dtype=np.result_type(primal_value(o))).ravel()
                cts[i][e] = 1.0
                cts[i] = cts[i].reshape(shape)
                rows.append(pullback(tree_unflatten(out_def, cts)))
            per_arg = []
            for k in range(len(nums)):
                arg_rows = [r[k] for r in rows]
                per_arg.append(tree_map(lambda *rs: np.stack(rs).reshape(shape + np.shape(rs[0])), *arg_rows)
                               if arg_rows else tree_map(lambda x: np.zeros(shape + np.shape(x)), args[nums[k]]))
            per_out.append(per_arg[0] if isinstance(argnums, int) else tuple(per_arg))
        return tree_unflatten(out_def, per_out)

    return jac_f


def hvp(f: Callable, x: Any, v: Any):
    """Hessian-vector product H(x) v of a scalar f, by forward-over-reverse."""
    return jvp(grad(f), (x,), (v,))[1]
