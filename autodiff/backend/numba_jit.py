"""Compile a `jit` recording into one numba function.

`autodiff.jit` records a function's numpy calls once (a straight-line program
over numbered slots, shapes and dtypes all known).  This module turns such a
program into the source of a single ``@numba.njit`` function, so a replay is
one call from Python instead of one numpy call per operation:

* **Elementwise chains are fused.**  A ufunc result read once, by another
  elementwise operation (or a reduction) of the same shape, is not stored: it
  becomes part of its reader's expression, so a chain like
  ``(1 - tanh(z)**2) * g`` is one loop reading ``z`` and ``g``.
* **Views cost nothing.**  Every stored value is a flat run of a 1-D buffer
  plus a shape, element strides and an offset; reshape, transpose,
  broadcast_to, basic indexing and the like are computed by numpy itself on an
  array of element indices and become new strides (numpy's own rules, so no
  copy semantics are re-implemented here).  Loops index buffers with constant
  strides, which LLVM vectorizes.
* **GEMMs go to BLAS** (numba's ``np.dot`` with ``out=``, C or Fortran order
  operands, so transposed operands are not copied).  A batched matmul whose
  left operand is contiguous, ``(K, m, n) @ (n, p)`` (the K tangents of a dual
  matmul), is one stacked GEMM ``(K m, n) @ (n, p)``.
* **Buffers are owned.**  Intermediates live at fixed offsets of one workspace
  array per dtype, allocated once per program and reused by liveness; only the
  program's outputs are allocated per call.

Anything outside this set (value-dependent shapes and their guards, writes
into the function's inputs, linalg, FFTs, fancy indexing that numpy would not
express as a view, ...) raises `Unsupported` with the reason, and `jit` keeps
its Python replay for that program.

The generated source is written to an on-disk cache directory
(``$AUTODIFF_CACHE_DIR``, else ``$XDG_CACHE_HOME/autodiff/jit``, else
``~/.cache/autodiff/jit``) under a name made from its hash and compiled with
numba's ``cache=True``, so a second process loads the machine code instead of
compiling it again.

Numerics: elementwise results are those of numba's (LLVM/libm) scalar
functions, which may differ from numpy's SIMD ufuncs in the last bit;
reductions sum in loop order, where numpy sums pairwise; GEMMs run through
the BLAS scipy ships (numba's), which may block differently from numpy's.
So a compiled program agrees with the Python replay to rounding (a few ulps
per operation), not bit for bit.
"""
from __future__ import annotations

import hashlib
import importlib.util
import operator
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np


class Unsupported(Exception):
    """The program uses something the compiler does not handle (the message says what)."""


# -- elementwise operations: numpy ufunc -> scalar expression template ----------------------
# {0}, {1}, {2} are the operands' element expressions; each appears exactly once, so a
# fused operand is never computed twice.  {one}/{zero} are 1 and 0 in the result's dtype.
_EW = {
    np.add: "({0} + {1})", np.subtract: "({0} - {1})", np.multiply: "({0} * {1})",
    np.divide: "({0} / {1})", np.negative: "(-{0})", np.positive: "(+{0})",
    np.maximum: "_max({0}, {1})", np.minimum: "_min({0}, {1})",
    np.fmax: "_fmax({0}, {1})", np.fmin: "_fmin({0}, {1})",
    np.equal: "({0} == {1})", np.not_equal: "({0} != {1})", np.less: "({0} < {1})",
    np.less_equal: "({0} <= {1})", np.greater: "({0} > {1})", np.greater_equal: "({0} >= {1})",
    np.exp: "np.exp({0})", np.exp2: "np.exp2({0})", np.log: "np.log({0})", np.log2: "np.log2({0})",
    np.log10: "np.log10({0})", np.log1p: "np.log1p({0})", np.expm1: "np.expm1({0})",
    np.sqrt: "np.sqrt({0})", np.tanh: "np.tanh({0})", np.sinh: "np.sinh({0})", np.cosh: "np.cosh({0})",
    np.sin: "np.sin({0})", np.cos: "np.cos({0})", np.tan: "np.tan({0})", np.arcsin: "np.arcsin({0})",
    np.arccos: "np.arccos({0})", np.arctan: "np.arctan({0})", np.arcsinh: "np.arcsinh({0})",
    np.arccosh: "np.arccosh({0})", np.arctanh: "np.arctanh({0})", np.arctan2: "np.arctan2({0}, {1})",
    np.absolute: "abs({0})", np.square: "_sq({0})", np.reciprocal: "({one} / {0})",
    np.sign: "_sign({0}, {one})", np.isfinite: "np.isfinite({0})", np.isnan: "np.isnan({0})",
    np.isinf: "np.isinf({0})", np.floor: "np.floor({0})", np.ceil: "np.ceil({0})",
    np.logical_not: "(not {0})", np.logical_and: "({0} and {1})", np.logical_or: "({0} or {1})",
    np.copysign: "np.copysign({0}, {1})", np.hypot: "np.hypot({0}, {1})",
    np.bitwise_and: "({0} & {1})", np.bitwise_or: "({0} | {1})", np.bitwise_xor: "({0} ^ {1})",
    np.invert: "(~{0})", np.logical_xor: "({0} != {1})",
}
_FAST = {np.exp: "_exp64({0})", np.tanh: "_tanh64({0})"}
_OPERATOR_UFUNC = {
    operator.add: np.add, operator.sub: np.subtract, operator.mul: np.multiply,
    operator.truediv: np.divide, operator.neg: np.negative, operator.pos: np.positive,
    operator.pow: np.power, operator.matmul: np.matmul, operator.abs: np.absolute,
    operator.eq: np.equal, operator.ne: np.not_equal, operator.lt: np.less, operator.le: np.less_equal,
    operator.gt: np.greater, operator.ge: np.greater_equal, operator.and_: np.bitwise_and,
    operator.or_: np.bitwise_or, operator.xor: np.bitwise_xor, operator.invert: np.invert,
}
_REDUCE_UFUNC = {np.add: "add", np.multiply: "multiply", np.maximum: "maximum", np.minimum: "minimum"}
_REDUCE_FN = {np.sum: np.add, np.prod: np.multiply, np.max: np.maximum, np.min: np.minimum,
              np.amax: np.maximum, np.amin: np.minimum}
_REDUCE_METHOD = {"sum": np.add, "prod": np.multiply, "max": np.maximum, "min": np.minimum}
_COMBINE = {"add": "({0} + {1})", "multiply": "({0} * {1})", "maximum": "_max({0}, {1})",
            "minimum": "_min({0}, {1})"}
_FILL = {np.zeros_like: 0, np.ones_like: 1}
_VIEW_FNS = {np.reshape, np.transpose, np.broadcast_to, np.squeeze, np.expand_dims, np.swapaxes,
             np.moveaxis, np.ravel, np.atleast_1d, np.atleast_2d}
_VIEW_METHODS = {"reshape", "transpose", "squeeze", "swapaxes", "ravel"}
_COPY_METHODS = {"copy", "flatten"}
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _ufunc(fn):
    if isinstance(fn, np.ufunc):
        return fn
    return _OPERATOR_UFUNC.get(fn)


def _c_strides(shape) -> tuple:
    st, acc = [], 1
    for n in reversed(shape):
        st.append(acc)
        acc *= n
    return tuple(reversed(st))


def _same_strides(shape, a, b) -> bool:
    """Strides equal on every axis longer than 1 (the others are never stepped)."""
    return all(n == 1 or x == y for n, x, y in zip(shape, a, b))


# -- what a slot is at generation time ---------------------------------------------------------
class Strided:
    """Elements ``base[off + sum(i_d * strides[d])]`` of a 1-D numba array named ``base``."""

    __slots__ = ("base", "shape", "strides", "off", "dtype", "storage")

    def __init__(self, base, shape, strides, off, dtype, storage):
        self.base, self.shape, self.strides, self.off = base, tuple(shape), tuple(strides), off
        self.dtype, self.storage = np.dtype(dtype), storage

    def elem(self, idx) -> str:
        if isinstance(idx, str):  # a flat index: only for C-ordered values
            return f"{self.base}[{_lin(self.off, [idx], [1])}]"
        return f"{self.base}[{_lin(self.off, idx, [s if n != 1 else 0 for n, s in zip(self.shape, self.strides)])}]"

    def flat_ok(self) -> bool:
        return _same_strides(self.shape, self.strides, _c_strides(self.shape))

    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


class Lazy:
    """A fused elementwise value: ``template`` over operands of its own shape."""

    __slots__ = ("template", "operands", "shape", "dtype")

    def __init__(self, template, operands, shape, dtype):
        self.template, self.operands, self.shape, self.dtype = template, operands, tuple(shape), np.dtype(dtype)

    def elem(self, idx) -> str:
        return self.template.format(*[op.elem(idx) for op in self.operands])

    def flat_ok(self) -> bool:
        return all(op.flat_ok() for op in self.operands)


class Literal:
    """A Python scalar of the program (already typed in the source)."""

    __slots__ = ("text", "shape")

    def __init__(self, text):
        self.text, self.shape = text, ()

    def elem(self, idx) -> str:
        return self.text

    def flat_ok(self) -> bool:
        return True


def _lin(off, idx, strides) -> str:
    terms = [str(off)] if off else []
    for i, s in zip(idx, strides):
        if s == 1:
            terms.append(i)
        elif s != 0:
            terms.append(f"{i} * {s}")
    return " + ".join(terms) or "0"


def _literal(value, dtype) -> str:
    """A Python number as source, in the dtype numpy would compute with (NEP 50:
    a Python float meets a float32 array as float32)."""
    dtype = np.dtype(dtype)
    if isinstance(value, (bool, np.bool_)):
        return repr(bool(value))
    if isinstance(value, (int, np.integer)) and dtype.kind in "iub":
        return repr(int(value))
    v = float(value)
    text = repr(v) if np.isfinite(v) else ("np.nan" if np.isnan(v) else ("np.inf" if v > 0 else "-np.inf"))
    if dtype.kind == "f":
        return f"np.{dtype.name}({text})"
    return text


# -- the compiler --------------------------------------------------------------------------------
class _Workspace:
    """Offsets in one 1-D array per dtype, reused once every view of a value is dead."""

    ALIGN = 8

    def __init__(self):
        self.live: dict = {}  # dtype -> list of (off, size, end)
        self.size: dict = {}

    def alloc(self, dtype, n, now, end) -> int:
        n = max(1, -(-int(n) // self.ALIGN) * self.ALIGN)
        blocks = self.live.setdefault(dtype, [])
        blocks[:] = [b for b in blocks if b[2] >= now]
        off = 0
        for b_off, b_size, _ in sorted(blocks):
            if off + n <= b_off:
                break
            off = max(off, b_off + b_size)
        blocks.append((off, n, end))
        self.size[dtype] = max(self.size.get(dtype, 0), off + n)
        return off


def _ws_name(dtype) -> str:
    return f"ws_{np.dtype(dtype).str[1:]}"


class _Compiler:
    def __init__(self, code, meta, input_slots, output_slots):
        self.code, self.meta = code, meta
        self.inputs, self.outputs = list(input_slots), list(output_slots)
        self.desc: dict = {}
        self.lines: list = []        # loops being emitted: they become one kernel function
        self.main_lines: list = []   # the program: GEMMs and kernel calls
        self.fresh: list = []        # (name, size, dtype) of the outputs' buffers: arguments, see Compiled
        self.kernels: list = []
        self.consts: list = []   # arrays passed as arguments after the inputs
        self.const_ids: dict = {}
        self.ws = _Workspace()
        self.n_tmp = 0

    # -- analysis -----------------------------------------------------------------------------
    def analyse(self):
        code = self.code
        if any(m[2] is not None and np.dtype(m[2]).kind == "c" for m in self.meta):
            raise Unsupported("complex values (the scalar helpers follow numpy for real ones only)")
        self.kinds = [self.classify(ins) for ins in code]
        uses: dict = {}
        user: dict = {}
        for i, ins in enumerate(code):
            for s in _slots(ins):
                uses[s] = uses.get(s, 0) + 1
                user[s] = i
        for s in self.outputs:
            uses[s] = uses.get(s, 0) + 2
        self.uses, self.user = uses, user
        writes = [i for i, k in enumerate(self.kinds) if k in ("setitem", "scatter")]
        # a value is fused into its one reader when that reader is an elementwise op or a
        # reduction over the same shape, and nothing is written in between
        self.lazy = set()
        for i, (ins, kind) in enumerate(zip(code, self.kinds)):
            out = ins[5]
            if kind not in ("ew", "fill", "gather") or out is None or uses.get(out, 0) != 1:
                continue
            j = user[out]
            if self.kinds[j] not in ("ew", "reduce"):
                continue
            if self.kinds[j] == "ew" and self.meta[code[j][5]][1] != self.meta[out][1]:
                continue
            if any(i < w < j for w in writes):
                continue
            self.lazy.add(out)
        # when each instruction's reads happen: a fused one reads where its reader runs
        self.when = list(range(len(code)))
        for i in reversed(range(len(code))):
            out = code[i][5]
            if out in self.lazy:
                self.when[i] = self.when[user[out]]
        # storage: alias classes through views, their last read, whether they escape
        root = {}

        def find(s):
            while root.get(s, s) != s:
                s = root[s]
            return s
        for ins, kind in zip(code, self.kinds):
            if kind == "view" and ins[5] is not None:
                src = ins[2] if ins[0] == "method" else ins[3][0]
                root[find(ins[5])] = find(src.slot)
        self.find = find
        self.end: dict = {}
        for i, ins in enumerate(code):
            t = self.when[i]
            for s in _slots(ins):
                r = find(s)
                self.end[r] = max(self.end.get(r, -1), t)
        self.escapes = {find(s) for s in self.outputs}

    def classify(self, ins) -> str:
        kind, fn, target, args, kwargs, out = ins
        if kind == "guard":
            raise Unsupported("the program checks a value-dependent shape or value")
        if kind == "const":
            return "const"
        if kind == "setitem":
            return "setitem"
        if (kind == "call" and out is None and getattr(fn, "__name__", None) == "at"
                and getattr(fn, "__self__", None) is np.add):
            return "scatter"
        t = self.meta[out][0] if out is not None else None
        if not (t is np.ndarray or (isinstance(t, type) and issubclass(t, np.generic))):
            raise Unsupported(f"{_name(fn)} returns {'nothing' if t is None else 'a ' + t.__name__}")
        if kind == "method":
            if fn in _VIEW_METHODS:
                return "view"
            if fn in _COPY_METHODS or fn == "astype":
                return "ew"
            if fn in _REDUCE_METHOD or fn == "mean":
                return "reduce"
            raise Unsupported(f"the ndarray method .{fn}()")
        if fn is operator.getitem:
            return "gather" if _flat_recs(args[1]) else "view"
        u = _ufunc(fn)
        if fn is np.dot and not (len(args) == 2 and not kwargs and all(
                type(a).__name__ == "Rec" and 1 <= len(self.meta[a.slot][1] or ()) <= 2 for a in args)):
            raise Unsupported("np.dot other than of two 1-D or 2-D arrays")
        if u is np.matmul or fn is np.dot:
            return "matmul"
        if u is not None:
            if u in _EW or u is np.power:
                if kwargs:
                    raise Unsupported(f"np.{u.__name__} with keyword arguments {sorted(kwargs)}")
                return "ew"
            raise Unsupported(f"np.{u.__name__}")
        if getattr(fn, "__name__", None) == "reduce" and getattr(fn, "__self__", None) in _REDUCE_UFUNC:
            return "reduce"
        if fn in _REDUCE_FN or fn is np.mean:
            return "reduce"
        if fn in _VIEW_FNS:
            return "view"
        if fn is np.take_along_axis:
            return "gather"
        if fn in (np.concatenate, np.stack):
            return "concat"
        if fn is np.where and len(args) == 3 and not kwargs:
            return "ew"
        if fn in _FILL or fn is np.full_like or fn is np.copy or fn is np.empty_like:
            return "fill" if fn is not np.copy else "ew"
        raise Unsupported(_name(fn))

    # -- operands -----------------------------------------------------------------------------
    def operand(self, x, dtype):
        """The descriptor of an argument: a slot, a Python number or a constant array."""
        from ..record import Rec
        if type(x) is Rec:
            return self.desc[x.slot]
        if isinstance(x, (bool, int, float, np.bool_, np.integer, np.floating)):
            return Literal(_literal(x, dtype))
        if isinstance(x, np.ndarray):
            return self.const_array(x)
        raise Unsupported(f"an argument of type {type(x).__name__}")

    def const_array(self, a):
        key = id(a)
        if key not in self.const_ids:
            name = f"c{len(self.consts)}"
            self.consts.append(np.ascontiguousarray(a).reshape(-1))
            self.const_ids[key] = Strided(name, a.shape, _c_strides(a.shape), 0, a.dtype, ("const", name))
        return self.const_ids[key]

    @staticmethod
    def broadcast(d, shape):
        """``d`` read as an operand of a loop over ``shape``."""
        if isinstance(d, Literal) or d.shape == tuple(shape):
            return d
        if isinstance(d, Lazy):
            raise Unsupported("internal: a fused value read under broadcasting")
        nd = len(shape) - len(d.shape)
        if nd < 0:
            raise Unsupported("internal: broadcasting to fewer dimensions")
        strides = [0] * nd + [0 if n == 1 else s for n, s in zip(d.shape, d.strides)]
        return Strided(d.base, shape, strides, d.off, d.dtype, d.storage)

    # -- storage --------------------------------------------------------------------------------
    def storage(self, i, shape, dtype) -> Strided:
        """Where instruction ``i``'s result is written: a fresh array if it escapes to the
        outputs, else the workspace."""
        out = self.code[i][5]
        n = int(np.prod(shape, dtype=np.int64))
        r = self.find(out)
        if r in self.escapes:
            name = f"o{out}"
            self.fresh.append((name, max(n, 1), np.dtype(dtype)))
            return Strided(name, shape, _c_strides(shape), 0, dtype, ("fresh", name))
        off = self.ws.alloc(np.dtype(dtype), n, self.when[i], self.end.get(r, self.when[i]))
        return Strided(_ws_name(dtype), shape, _c_strides(shape), off, dtype, ("ws",))

    def flush(self) -> None:
        """Emitted loops go into the program; with _KERNELS = "instruction" (a profiling
        aid) each instruction's loops become a kernel function of the arrays they touch,
        which can be timed on its own."""
        if _KERNELS == "inline":
            self.main_lines.extend(self.lines)
            self.lines = []
            return
        if not self.lines:
            return
        body = "\n".join(self.lines)
        names = sorted(set(re.findall(r"\b(ws_\w+|[iocr]\d+)\b", body)))
        name = f"_k{len(self.kernels)}"
        self.kernels.append(f"@numba.njit({_FLAGS})\ndef {name}({', '.join(names)}):\n{body}\n")
        self.main_lines.append(f"    {name}({', '.join(names)})")
        self.lines = []

    def tmp(self) -> str:
        self.n_tmp += 1
        return f"t{self.n_tmp}"

    def open_loops(self, sizes, ind: str):
        """Nested loops over ``sizes`` (an axis of length 1 gets index "0" and no loop):
        the index of each axis, and the indentation inside."""
        idx = []
        for m in sizes:
            v = self.tmp() if m > 1 else "0"
            idx.append(v)
            if m > 1:
                self.lines.append(f"{ind}for {v} in range({m}):")
                ind += "    "
        return idx, ind

    # -- loops -----------------------------------------------------------------------------------
    def loop_assign(self, dst: Strided, src, indent="    ", mask=None):
        """``dst[...] = src[...]`` over dst's shape (src fused/broadcast to it)."""
        shape = dst.shape
        n = dst.size()
        if n == 0:
            return
        ops = [src] + ([mask] if mask is not None else [])
        if all(o.flat_ok() for o in ops) and dst.flat_ok():
            i = self.tmp()
            self.lines.append(f"{indent}for {i} in range({n}):")
            body = f"{indent}    {dst.elem(i)} = {src.elem(i)}"
            if mask is not None:
                body = f"{indent}    if {mask.elem(i)}:\n{indent}        {dst.elem(i)} = {src.elem(i)}"
            self.lines.append(body)
            return
        idx, ind = self.open_loops(shape, indent)
        if mask is not None:
            self.lines.append(f"{ind}if {mask.elem(idx)}:")
            ind += "    "
        self.lines.append(f"{ind}{dst.elem(idx)} = {src.elem(idx)}")

    def materialize(self, i, d) -> Strided:
        if isinstance(d, Strided):
            return d
        shape, dtype = self.meta[self.code[i][5]][1], self.meta[self.code[i][5]][2]
        dst = self.storage(i, shape, dtype)
        self.loop_assign(dst, d)
        return dst

    # -- instructions ----------------------------------------------------------------------------
    def emit(self, i, ins):
        kind, fn, target, args, kwargs, out = ins
        k = self.kinds[i]
        if k == "const":
            self.desc[out] = self.const_array(fn)
            return
        if k == "setitem":
            return self.setitem(target, args[0], args[1])
        if k == "scatter":
            return self.scatter(args, kwargs)
        shape, dtype = self.meta[out][1], np.dtype(self.meta[out][2])
        if k in ("ew", "fill"):
            d = self.elementwise(kind, fn, target, args, kwargs, shape, dtype)
            if out not in self.lazy:
                d = self.materialize(i, d)
        elif k == "view":
            d = self.view(i, kind, fn, target, args, kwargs)
        elif k == "concat":
            d = self.concat(i, fn, args, kwargs, shape, dtype)
        elif k == "gather" and fn is np.take_along_axis:
            d = self.take_along_axis(args, kwargs, shape, dtype)
            if out not in self.lazy:
                d = self.materialize(i, d)
        elif k == "gather":
            d = self.gather(self.desc[args[0].slot], args[1], shape, dtype)
            if out not in self.lazy:
                d = self.materialize(i, d)
        elif k == "reduce":
            d = self.reduce(i, kind, fn, target, args, kwargs, shape, dtype)
        else:
            d = self.matmul(i, args, kwargs, shape, dtype)
        if tuple(d.shape) != tuple(shape):
            raise Unsupported(f"internal: {_name(fn)} gave shape {d.shape}, recorded {shape}")
        self.desc[out] = d

    def elementwise(self, kind, fn, target, args, kwargs, shape, dtype):
        one, zero = _literal(1, dtype), _literal(0, dtype)
        if kind == "method":  # copy / flatten / astype
            src = self.broadcast(self.desc[target.slot], shape) if fn != "flatten" else None
            if fn == "flatten":
                src = self.flat_view(self.desc[target.slot], shape)
            return Lazy(self.cast(src.dtype if not isinstance(src, Literal) else dtype, dtype), [src],
                        shape, dtype)
        if fn in _FILL:
            return Lazy(_literal(_FILL[fn], dtype), [], shape, dtype)
        if fn is np.full_like:
            v = args[1] if len(args) > 1 else kwargs.get("fill_value")
            lit = self.operand(v, dtype)
            if not isinstance(lit, Literal):
                return Lazy(self.cast(lit.dtype, dtype), [self.broadcast(lit, shape)], shape, dtype)
            return Lazy(lit.text.replace("{", "{{").replace("}", "}}"), [], shape, dtype)
        if fn is np.empty_like:
            return Lazy(zero, [], shape, dtype)
        if fn is np.copy:
            return Lazy("{0}", [self.broadcast(self.desc[args[0].slot], shape)], shape, dtype)
        if fn is np.where:
            ops = [self.broadcast(self.operand(a, dtype), shape) for a in args]
            return Lazy("_where({0}, {1}, {2})", ops, shape, dtype)
        u = _ufunc(fn)
        in_dtype = self.compute_dtype(args, dtype)
        ops = [self.broadcast(self.operand(a, in_dtype), shape) for a in args]
        if u is np.power:
            return self.power(ops, args, shape, dtype)
        if u.nin != len(ops):
            raise Unsupported(f"np.{u.__name__} with {len(ops)} arguments")
        tpl = _EW[u].replace("{one}", one).replace("{zero}", zero)
        if u in _FAST and dtype in _FLOATS:  # SIMD-friendly versions (see _nb_scalar)
            tpl = _FAST[u] if dtype == np.float64 else f"np.float32({_FAST[u].format('np.float64({0})')})"
        if u is np.invert and dtype.kind == "b":
            tpl = "(not {0})"
        if u in (np.absolute, np.sign, np.negative) and dtype.kind == "b":
            raise Unsupported(f"np.{u.__name__} of booleans")
        return Lazy(tpl, ops, shape, dtype)

    def compute_dtype(self, args, out_dtype):
        """The dtype Python numbers meet in an operation: the arrays' common dtype (a
        comparison's result is bool, its operands are not)."""
        from ..record import Rec
        arrays = [self.meta[a.slot][2] for a in args if type(a) is Rec]
        arrays += [a.dtype for a in args if isinstance(a, np.ndarray)]
        return np.result_type(*arrays) if arrays else out_dtype

    def power(self, ops, args, shape, dtype):
        base, ex = ops
        if isinstance(args[1], (int, float)) and not isinstance(args[1], bool):
            e = float(args[1])
            if e == 2.0:
                return Lazy("_sq({0})", [base], shape, dtype)
            if e == 1.0:
                return Lazy("{0}", [base], shape, dtype)
        if dtype.kind != "f":
            raise Unsupported("np.power on integers")
        return Lazy("({0} ** {1})", [base, ex], shape, dtype)

    @staticmethod
    def cast(src_dtype, dtype):
        src_dtype, dtype = np.dtype(src_dtype), np.dtype(dtype)
        if src_dtype == dtype:
            return "{0}"
        if src_dtype.kind == "b":
            return f"_select({{0}}, {_literal(1, dtype)}, {_literal(0, dtype)})"
        if dtype.kind == "b":
            return "({0} != 0)"
        if dtype.kind in "fiu":
            return f"np.{dtype.name}({{0}})"
        raise Unsupported(f"a cast to {dtype}")

    def flat_view(self, d, shape):
        if isinstance(d, Strided) and d.flat_ok():
            return Strided(d.base, shape, _c_strides(shape), d.off, d.dtype, d.storage)
        raise Unsupported("flatten of a non-contiguous value")

    def view(self, i, kind, fn, target, args, kwargs, src=None):
        """A view op, computed by numpy on an array of element indices."""
        from ..record import Rec, _concrete
        if src is None:
            src = self.desc[target.slot] if kind == "method" else self.operand(args[0], None)
        rest = args if kind == "method" else args[1:]
        if isinstance(src, Literal) or any(type(a) is Rec for a in _flatten_args((rest, kwargs))):
            raise Unsupported(f"{_name(fn)} with array-valued arguments")
        if not isinstance(src, Strided):
            src = self.materialize_value(i, src)
        anchor, ids = _element_ids(src)
        if kind == "method":
            r = getattr(ids, fn)(*_concrete(rest), **_concrete(kwargs))
        else:
            r = fn(ids, *_concrete(rest), **_concrete(kwargs))
        r = np.asarray(r)
        out = self.code[i][5]
        if (r.size and not np.shares_memory(r, anchor) and r.ndim == 2 and len(src.shape) >= 3
                and r.shape == (int(np.prod(src.shape[:-1])), src.shape[-1]) and self.uses.get(out) == 1
                and self.kinds[self.user[out]] == "matmul" and _is_rec_slot(self.code[self.user[out]][3][0], out)
                and _blas_op(src, *src.shape[-2:], check=True) is not None):
            # (K, m, n) -> (K m, n) read only as a matmul's left operand: K GEMMs on the K
            # matrices as they lie (a transposed tangent stack needs no copy)
            return _Stacked(src)
        if r.size and not np.shares_memory(r, anchor) and fn is not operator.getitem and not src.flat_ok():
            # numpy copied (a reshape of a non-contiguous value): copy in C order (a strided
            # loop, which vectorizes; an index gather would not), then view that copy
            copy = self.storage(i, src.shape, src.dtype)   # lives as long as the view does
            self.loop_assign(copy, src)
            return self.view(i, kind, fn, target, args, kwargs, src=copy)
        if r.size and not np.shares_memory(r, anchor):
            # numpy copied (fancy indexing): a gather
            dst = self.storage(i, r.shape, src.dtype)
            g = self.const_array(np.ascontiguousarray(r))
            n = dst.size()
            v = self.tmp()
            self.lines.append(f"    for {v} in range({n}):")
            self.lines.append(f"        {dst.elem(v)} = {src.base}[{g.base}[{v}]]")
            return dst
        if r.size == 0:
            return Strided(src.base, r.shape, _c_strides(r.shape), src.off, src.dtype, src.storage)
        off = int(r.reshape(-1)[0]) if r.ndim else int(r)
        return Strided(src.base, r.shape, [s // 8 for s in r.strides], off, src.dtype, src.storage)

    def materialize_value(self, i, d):
        shape = d.shape
        n = int(np.prod(shape, dtype=np.int64))
        off = self.ws.alloc(d.dtype, n, self.when[i], self.when[i])
        dst = Strided(_ws_name(d.dtype), shape, _c_strides(shape), off, d.dtype, ("ws",))
        self.loop_assign(dst, d)
        return dst

    def reduce(self, i, kind, fn, target, args, kwargs, shape, dtype):
        from ..record import _concrete
        if kind == "method":
            src, rest, name = self.desc[target.slot], args, fn
            u = _REDUCE_METHOD.get(fn)
        else:
            src, rest, name = self.desc[args[0].slot], args[1:], getattr(fn, "__name__", "")
            u = fn.__self__ if name == "reduce" else _REDUCE_FN.get(fn)
        mean = name == "mean" or fn is np.mean
        kw = dict(kwargs)
        if rest:
            kw["axis"] = rest[0]
            if len(rest) > 1:
                if name != "reduce" or any(a is not None for a in rest[1:3]) or len(rest) > 4:
                    raise Unsupported(f"{_name(fn)} with dtype/out arguments")
                if len(rest) > 3:
                    kw["keepdims"] = rest[3]
        kw = _concrete(kw)
        if set(kw) - {"axis", "keepdims"}:
            raise Unsupported(f"{_name(fn)} with {sorted(set(kw) - {'axis', 'keepdims'})}")
        if dtype.kind != "f" or src.dtype != dtype:
            raise Unsupported(f"{_name(fn)} of {src.dtype} to {dtype}")
        nd = len(src.shape)
        axis = kw.get("axis")
        axes = tuple(range(nd)) if axis is None else tuple(
            sorted(a % nd for a in (axis if isinstance(axis, tuple) else (axis,))))
        if any(src.shape[a] == 0 for a in axes):
            raise Unsupported("a reduction over an empty axis")
        cnt = int(np.prod([src.shape[a] for a in axes], dtype=np.int64))
        op = "add" if mean else _REDUCE_UFUNC[u]
        init = {"add": 0, "multiply": 1, "maximum": -np.inf, "minimum": np.inf}[op]
        dst = self.storage(i, shape, dtype)
        kept = [d for d in range(nd) if d not in axes]
        red_shape = tuple(src.shape[d] for d in kept)
        # the result, indexed by the kept axes
        res = Strided(dst.base, red_shape, dst.strides if len(dst.shape) == len(red_shape) else
                      [s for d, s in enumerate(dst.strides) if d not in axes], dst.off, dtype, dst.storage)
        if all(d < min(axes) for d in kept):  # reduced axes trailing: accumulate in a register
            idx = [None] * nd
            outer, ind = self.open_loops([src.shape[d] for d in kept], "    ")
            acc = self.tmp()
            self.lines.append(f"{ind}{acc} = {_literal(init, dtype)}")
            inner, ind2 = self.open_loops([src.shape[d] for d in axes], ind)
            for d, v in zip(kept + list(axes), outer + inner):
                idx[d] = v
            self.lines.append(f"{ind2}{acc} = {_COMBINE[op].format(acc, src.elem(idx))}")
            val = f"{acc} / {_literal(cnt, dtype)}" if mean else acc
            self.lines.append(f"{ind}{res.elem([idx[d] for d in kept])} = {val}")
        else:  # accumulate into the result, in the input's loop order
            self.loop_assign(res, Literal(_literal(init, dtype)))
            idx, ind = self.open_loops(src.shape, "    ")
            tgt = res.elem([idx[d] for d in kept])
            self.lines.append(f"{ind}{tgt} = {_COMBINE[op].format(tgt, src.elem(idx))}")
            if mean:
                self.loop_assign(res, Lazy(f"({{0}} / {_literal(cnt, dtype)})", [res], red_shape, dtype))
        return dst

    def matmul(self, i, args, kwargs, shape, dtype):
        if kwargs or len(args) != 2:
            raise Unsupported("matmul with keyword arguments")
        a, b = (self.operand(x, dtype) for x in args)
        if isinstance(a, _Stacked):
            return self.stacked_matmul(i, a.src, b, shape, dtype)
        if isinstance(a, Literal) or isinstance(b, Literal):
            raise Unsupported("matmul with a scalar")
        if dtype not in _FLOATS or a.dtype != dtype or b.dtype != dtype:
            raise Unsupported(f"matmul of {a.dtype} and {b.dtype} (BLAS takes float32/float64 pairs)")
        a = a if isinstance(a, Strided) else self.materialize_value(i, a)
        b = b if isinstance(b, Strided) else self.materialize_value(i, b)
        dst = self.storage(i, shape, dtype)
        # 1-D operands as a row / a column
        if len(a.shape) == 1:
            a = Strided(a.base, (1,) + a.shape, (0,) + a.strides, a.off, a.dtype, a.storage)
        if len(b.shape) == 1:
            b = Strided(b.base, b.shape + (1,), b.strides + (0,), b.off, b.dtype, b.storage)
        m, n = a.shape[-2:]
        p = b.shape[-1]
        if b.shape[-2] != n:
            raise Unsupported("internal: matmul shapes")
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        out_full = (*batch, m, p)
        o = Strided(dst.base, out_full, _c_strides(out_full), dst.off, dtype, dst.storage)
        nb = int(np.prod(batch, dtype=np.int64))
        if nb == 0 or m * n * p == 0:
            if m * p * nb:
                self.loop_assign(o, Literal(_literal(0, dtype)))
            return dst
        from ._nb_scalar import HAVE_NUMPY_BLAS
        if not HAVE_NUMPY_BLAS:
            raise Unsupported("numpy's BLAS has no cblas_dgemm/cblas_sgemm this compiler can call")
        a = self.blas_ready(i, self.broadcast_batch(a, batch))
        b = self.blas_ready(i, self.broadcast_batch(b, batch))
        # (K, m, n) @ (n, p) with a contiguous left operand: one stacked GEMM
        if len(batch) and all(s == 0 for s in b.strides[:-2]) and _same_strides(
                a.shape, a.strides, _c_strides(a.shape)):
            self.gemm(a, "0", nb * m, n, b, "0", p, o, "0")
            return dst
        if not batch:
            self.gemm(a, "0", m, n, b, "0", p, o, "0")
            return dst
        # a loop over the batch: the batch axes of each operand step by their strides
        v = self.tmp()
        bst = _c_strides(batch)
        offs = []
        for x in (a, b, o):
            terms = []
            for d, (nd_, s) in enumerate(zip(batch, x.strides[:-2])):
                if nd_ > 1 and s:
                    terms.append(f"(({v} // {bst[d]}) % {nd_}) * {s}")
            offs.append(" + ".join(terms) or "0")
        self.lines.append(f"    for {v} in range({nb}):")
        self.gemm(a, offs[0], m, n, b, offs[1], p, o, offs[2], indent="        ")
        return dst

    def stacked_matmul(self, i, src, b, shape, dtype):
        """(K m, n) @ (n, p) where the left operand is K matrices (m, n) in any BLAS layout."""
        from ._nb_scalar import HAVE_NUMPY_BLAS
        if not HAVE_NUMPY_BLAS or not isinstance(b, Strided) or len(b.shape) != 2 or b.dtype != dtype \
                or src.dtype != dtype or dtype not in _FLOATS:
            raise Unsupported("internal: a stacked matmul of this kind")
        b = self.blas_ready(i, b)
        dst = self.storage(i, shape, dtype)
        m, n = src.shape[-2:]
        p = b.shape[1]
        batch = src.shape[:-2]
        nb = int(np.prod(batch, dtype=np.int64))
        v = self.tmp()
        bst = _c_strides(batch)
        terms = [f"(({v} // {bst[d]}) % {nd}) * {st}" for d, (nd, st) in enumerate(zip(batch, src.strides[:-2]))
                 if nd > 1 and st]
        self.lines.append(f"    for {v} in range({nb}):")
        self.gemm(src, " + ".join(terms) or "0", m, n, b, "0", p, dst, f"{v} * {m * p}", indent="        ")
        return dst

    def gemm(self, a, ea, m, n, b, eb, p, o, eo, indent="    "):
        """o (m x p) = a (m x n) @ b (n x p) at extra offsets ea, eb, eo: one cblas call."""
        ta, lda = _blas_op(a, m, n)
        tb, ldb = _blas_op(b, n, p)
        off = lambda x, e: str(x.off) if e == "0" else f"{x.off} + {e}"
        self.lines.append(f"{indent}_gemm({ta}, {tb}, {m}, {p}, {n}, {a.base}, {off(a, ea)}, {lda}, "
                          f"{b.base}, {off(b, eb)}, {ldb}, {o.base}, {off(o, eo)}, {p})")

    @staticmethod
    def broadcast_batch(x, batch):
        nd = len(batch) - (len(x.shape) - 2)
        lead = [0] * nd + [0 if n == 1 else s for n, s in zip(x.shape[:-2], x.strides[:-2])]
        return Strided(x.base, (*batch, *x.shape[-2:]), (*lead, *x.strides[-2:]), x.off, x.dtype, x.storage)

    def blas_ready(self, i, x):
        """x, copied to contiguous storage unless each matrix of it is C or Fortran ordered."""
        if _blas_op(x, *x.shape[-2:], check=True) is not None:
            return x
        nb = x.shape[:-2]
        shape = x.shape
        dense = tuple(n for n in shape)
        n = int(np.prod(dense, dtype=np.int64))
        off = self.ws.alloc(x.dtype, n, self.when[i], self.when[i])
        dst = Strided(_ws_name(x.dtype), dense, _c_strides(dense), off, x.dtype, ("ws",))
        self.loop_assign(dst, Strided(x.base, shape, [0 if (d < len(nb) and s == 0) else s for d, s in
                                                    enumerate(x.strides)], x.off, x.dtype, x.storage))
        return Strided(dst.base, shape, [0 if (d < len(nb) and x.strides[d] == 0) else s for d, s in
                                         enumerate(dst.strides)], dst.off, x.dtype, dst.storage)

    def address(self, src, idx):
        """numpy's integer-array indexing ``src[idx]`` with leading index arrays (program
        values or constants) and full slices after them: (template of the element's address
        in src's base array, its operands, the result's shape)."""
        from ..record import Rec
        idx = idx if type(idx) is tuple else (idx,)
        arrays = []
        for j, v in enumerate(idx):
            is_arr = type(v) is Rec or isinstance(v, np.ndarray)
            if not is_arr:
                break
            dt = self.meta[v.slot][2] if type(v) is Rec else v.dtype
            if np.dtype(dt).kind not in "iu":
                raise Unsupported("indexing with a boolean or float array")
            arrays.append(v)
        rest = idx[len(arrays):]
        full = lambda r: type(r) is slice and r == slice(None)
        if any(r is Ellipsis for r in rest):
            e = next(j for j, r in enumerate(rest) if r is Ellipsis)
            rest = rest[:e] + (slice(None),) * (len(src.shape) - len(arrays) - (len(rest) - 1)) + rest[e + 1:]
        if not arrays or not all(full(r) for r in rest) or len(arrays) + len(rest) > len(src.shape):
            raise Unsupported("integer-array indexing other than leading index arrays and full slices")
        tail = src.shape[len(arrays):]
        lead = np.broadcast_shapes(*[self.operand(v, None).shape for v in arrays])
        shape = tuple(lead) + tuple(tail)
        ops, terms = [], []
        for j, v in enumerate(arrays):
            d = self.operand(v, None)
            d = Strided(d.base, d.shape + (1,) * len(tail), d.strides + (0,) * len(tail), d.off, d.dtype, d.storage)
            ops.append(self.broadcast(d, shape))
            terms.append(f"_wrap({{{j}}}, {src.shape[j]}) * {src.strides[j]}")
        for t in range(len(tail)):
            if tail[t] > 1:
                ops.append(_Axis(shape, len(lead) + t, src.strides[len(arrays) + t]))
                terms.append(f"{{{len(ops) - 1}}}")
        return f"{src.off} + " + " + ".join(terms), ops, shape

    def gather(self, src, idx, shape, dtype):
        if not isinstance(src, Strided):
            raise Unsupported("internal: indexing a fused value")
        addr, ops, got = self.address(src, idx)
        return Lazy(f"{src.base}[{addr}]", ops, got, dtype)

    def concat(self, i, fn, args, kwargs, shape, dtype):
        """np.concatenate / np.stack: each piece copied into its slice of the result."""
        from ..record import _concrete
        if set(kwargs) - {"axis"} or len(args) > 2 or not isinstance(args[0], (list, tuple)):
            raise Unsupported(f"{_name(fn)} with out=, dtype= or casting=")
        axis = _concrete(args[1] if len(args) > 1 else kwargs.get("axis", 0))
        if not isinstance(axis, (int, np.integer)):
            raise Unsupported(f"{_name(fn)} with axis={axis!r}")
        axis = int(axis) % len(shape)
        dst = self.storage(i, shape, dtype)
        pos = 0
        for piece in args[0]:
            d = self.operand(piece, dtype)
            if isinstance(d, Literal):
                raise Unsupported(f"{_name(fn)} of a Python number")
            if fn is np.stack:
                sub = self.view_of(dst, operator.getitem, ((slice(None),) * axis + (pos,),))
                pos += 1
            else:
                n = d.shape[axis]
                sub = self.view_of(dst, operator.getitem, ((slice(None),) * axis + (slice(pos, pos + n),),))
                pos += n
            if not isinstance(d, Strided):
                raise Unsupported(f"internal: {_name(fn)} of a fused value")
            self.loop_assign(sub, Lazy(self.cast(d.dtype, dtype), [self.broadcast(d, sub.shape)], sub.shape, dtype))
        if pos != shape[axis]:
            raise Unsupported(f"internal: {_name(fn)} pieces do not fill the result")
        return dst

    def take_along_axis(self, args, kwargs, shape, dtype):
        from ..record import _concrete
        kw = dict(zip(("arr", "indices", "axis"), args), **kwargs)
        src, ids, axis = self.operand(kw["arr"], None), self.operand(kw["indices"], None), _concrete(kw.get("axis"))
        if not isinstance(src, Strided) or axis is None or not isinstance(axis, int) or ids.dtype.kind not in "iu":
            raise Unsupported("np.take_along_axis other than along one axis")
        axis %= len(src.shape)
        ops = [self.broadcast(ids, shape)]
        terms = [f"_wrap({{0}}, {src.shape[axis]}) * {src.strides[axis]}"]
        for d in range(len(shape)):
            if d != axis and shape[d] > 1 and src.shape[d] > 1:
                ops.append(_Axis(shape, d, src.strides[d]))
                terms.append(f"{{{len(ops) - 1}}}")
        return Lazy(f"{src.base}[{src.off} + {' + '.join(terms)}]", ops, shape, dtype)

    def scatter(self, args, kwargs):
        """np.add.at(target, idx, values): target[idx] += values, repeated indices adding up."""
        if kwargs or len(args) != 3:
            raise Unsupported("np.add.at with keyword arguments")
        t = self.desc[args[0].slot] if type(args[0]).__name__ == "Rec" else None
        if not isinstance(t, Strided) or t.storage[0] not in ("ws", "fresh"):
            raise Unsupported("np.add.at into an input, a constant or a fused value")
        addr, ops, shape = self.address(t, args[1])
        val = self.broadcast(self.operand(args[2], t.dtype), shape)
        ops.append(val)
        idx, ind = self.open_loops(shape, "    ")
        a = self.tmp()
        self.lines.append(f"{ind}{a} = {addr.format(*[o.elem(idx) for o in ops[:-1]])}")
        self.lines.append(f"{ind}{t.base}[{a}] = {t.base}[{a}] + {val.elem(idx)}")

    def setitem(self, target, idx, value):
        from ..record import Rec, _concrete
        t = self.desc[target.slot]
        if not isinstance(t, Strided) or t.storage[0] not in ("ws", "fresh"):
            raise Unsupported("a write into an input, a constant or a fused value")
        if type(idx) is Rec:
            m = self.desc[idx.slot]
            if m.dtype != np.bool_ or m.shape != t.shape:
                raise Unsupported("indexed assignment other than a full-shape boolean mask or basic indexing")
            val = self.broadcast(self.operand(value, t.dtype), t.shape)
            self.loop_assign(t, Lazy(self.cast(_dtype_of(val, t.dtype), t.dtype), [val], t.shape, t.dtype),
                             mask=m)
            return
        if _flatten_args(idx) and any(type(a) is Rec for a in _flatten_args(idx)):
            raise Unsupported("indexed assignment with array indices")
        sub = self.view_of(t, operator.getitem, (_concrete(idx),))
        val = self.broadcast(self.operand(value, t.dtype), sub.shape)
        self.loop_assign(sub, Lazy(self.cast(_dtype_of(val, t.dtype), t.dtype), [val], sub.shape, t.dtype))

    def view_of(self, src, fn, rest):
        anchor, ids = _element_ids(src)
        r = np.asarray(fn(ids, *rest))
        if r.size and not np.shares_memory(r, anchor):
            raise Unsupported("indexed assignment through a copy")
        off = int(r.reshape(-1)[0]) if r.size else src.off
        return Strided(src.base, r.shape, [s // 8 for s in r.strides], off, src.dtype, src.storage)

    # -- the function ----------------------------------------------------------------------------
    def build(self) -> str:
        self.analyse()
        for k, s in enumerate(self.inputs):  # (passed flat: see Compiled)
            shape, dtype = self.meta[s][1], np.dtype(self.meta[s][2])
            self.desc[s] = Strided(f"i{k}", shape, _c_strides(shape), 0, dtype, ("input", k))
        for i, ins in enumerate(self.code):
            self.emit(i, ins)
            if _KERNELS == "instruction":
                self.flush()
        rets = []
        for s in self.outputs:
            d = self.desc[s]
            shape = self.meta[s][1]
            if isinstance(d, Strided) and d.storage[0] == "input" and d.off == 0 and d.flat_ok():
                rets.append(f"i{d.storage[1]}.reshape({shape!r})")
                continue
            if not (isinstance(d, Strided) and d.storage[0] == "fresh" and d.off == 0 and d.flat_ok()
                    and d.size() == int(np.prod(shape, dtype=np.int64))):
                name = f"r{s}"
                n = int(np.prod(shape, dtype=np.int64))
                self.fresh.append((name, max(n, 1), np.dtype(self.meta[s][2])))
                dst = Strided(name, shape, _c_strides(shape), 0, self.meta[s][2], ("fresh", name))
                self.loop_assign(dst, self.broadcast(d, shape))
                d = dst
            rets.append(f"{d.base}[:{d.size()}].reshape({shape!r})" if shape else f"{d.base}.reshape(())")
        self.flush()
        ws = sorted(self.ws.size, key=lambda t: t.str)
        self.ws_specs = [(dt, self.ws.size[dt]) for dt in ws]
        params = [_ws_name(dt) for dt in ws] + [f"i{k}" for k in range(len(self.inputs))] + [
            f"c{k}" for k in range(len(self.consts))] + [name for name, _, _ in self.fresh]
        head = [f"@numba.njit({_FLAGS})", "def step(" + ", ".join(params) + "):"]
        return "\n\n".join(self.kernels + ["\n".join(head + self.main_lines + [
            f"    return ({''.join(r + ', ' for r in rets)})"])])


def _blas_op(x, r, c, check=False):
    """How BLAS reads x's last two axes as an (r, c) matrix: (0, leading dimension) for row
    major, (1, ld) for the transpose of a row-major one; None (check) or an error if neither."""
    sr, sc = x.strides[-2:]
    if (sc == 1 or c == 1) and (r == 1 or sr >= c):
        return 0, max(sr if r > 1 else c, c, 1)
    if (sr == 1 or r == 1) and (c == 1 or sc >= r):
        return 1, max(sc if c > 1 else r, r, 1)
    if check:
        return None
    raise Unsupported("internal: a GEMM operand BLAS cannot read")


def _element_ids(src):
    """An int64 array laid out like ``src`` (shape, strides, offset) whose elements are
    their own indices into src's base, and the array it views: numpy applied to it
    computes a view op's strides and offset (or, when it copies, a gather)."""
    span = [0, 0]
    for n, st in zip(src.shape, src.strides):
        if n > 1:
            span[st > 0] += (n - 1) * st
    anchor = np.arange(src.off + span[0], src.off + span[1] + 1, dtype=np.int64)
    ids = np.lib.stride_tricks.as_strided(anchor[-span[0]:] if span[0] else anchor, src.shape,
                                          [8 * st for st in src.strides], writeable=False)
    return anchor, ids


class _Stacked:
    """A (K m, n) reshape of K matrices that numpy would copy, read by a matmul only."""

    __slots__ = ("src", "shape", "dtype")

    def __init__(self, src):
        self.src, self.dtype = src, src.dtype
        self.shape = (int(np.prod(src.shape[:-1], dtype=np.int64)), src.shape[-1])


def _is_rec_slot(x, slot) -> bool:
    return type(x).__name__ == "Rec" and x.slot == slot


class _Axis:
    """The index along one axis of a loop, times a stride: an operand of an address."""

    __slots__ = ("shape", "axis", "stride", "dtype")

    def __init__(self, shape, axis, stride):
        self.shape, self.axis, self.stride, self.dtype = tuple(shape), axis, stride, np.dtype(np.int64)

    def elem(self, idx) -> str:
        return f"{idx[self.axis]} * {self.stride}"

    def flat_ok(self) -> bool:
        return False


def _flat_recs(x) -> bool:
    """Whether an index holds program values (index arrays computed or passed at run time)."""
    return any(type(v).__name__ == "Rec" for v in _flatten_args(x))


def _dtype_of(d, default):
    return default if isinstance(d, Literal) else d.dtype


def _flatten_args(x) -> list:
    out = []

    def visit(v):
        if type(v) in (tuple, list):
            for w in v:
                visit(w)
        elif type(v) is dict:
            for w in v.values():
                visit(w)
        elif type(v) is slice:
            visit((v.start, v.stop, v.step))
        else:
            out.append(v)
    visit(x)
    return out


def _slots(ins) -> list:
    from ..record import _slots_in
    kind, fn, target, args, kwargs, out = ins
    return _slots_in((target, args, kwargs), [])


def _name(fn) -> str:
    from ..record import _fn_name
    return _fn_name(fn) if callable(fn) else f".{fn}()"


# -- on-disk modules and the callable --------------------------------------------------------------
_HEADER = "import numpy as np\nfrom autodiff.backend._nb_scalar import _max, _min, _fmax, _fmin, _sq, _sign, _where, _select, _exp64, _tanh64, _gemm, _wrap\n"
_KERNELS = "inline"  # loops: all in the program ("inline"), or a kernel per "instruction" (for profiling)
_FLAGS = "nogil=True, cache=True, error_model='numpy', boundscheck=False"


def cache_dir() -> Path:
    """Where compiled programs live ($AUTODIFF_CACHE_DIR, else the user cache directory)."""
    env = os.environ.get("AUTODIFF_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "autodiff" / "jit"


def _helpers_hash() -> str:
    src = Path(__file__).with_name("_nb_scalar.py").read_bytes()
    return hashlib.sha1(src).hexdigest()[:12]


_modules: dict = {}


def _load(source: str):
    import numba
    text = (f"# generated by autodiff.jit (numba {numba.__version__}, numpy {np.__version__}, "
            f"helpers {_helpers_hash()})\n" + _HEADER + "import numba\n\n\n" + source + "\n")
    digest = hashlib.sha1(text.encode()).hexdigest()[:20]
    if digest in _modules:
        return _modules[digest]
    name = f"autodiff_jit_{digest}"
    for d in (cache_dir(), Path(tempfile.gettempdir()) / "autodiff-jit"):
        try:
            d.mkdir(parents=True, exist_ok=True)
            path = d / f"{name}.py"
            if not path.exists() or path.read_text() != text:
                tmp = d / f".{name}.{os.getpid()}.tmp"
                tmp.write_text(text)
                os.replace(tmp, path)
            break
        except OSError:
            continue
    else:
        raise Unsupported("no writable cache directory for compiled programs")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    _modules[digest] = mod.step
    return mod.step


class Compiled:
    """A compiled program: call it with the input arrays, get the output arrays.

    The outputs' buffers are passed in.  A buffer returned by an earlier call is
    reused once nothing outside this object refers to it any more (its reference
    count says so: the caller dropped the arrays, and every view of them), so a
    training loop that rebinds ``params = step(params, ...)`` writes each step into
    the memory of the step before last, as JAX does with donated buffers, instead
    of faulting in fresh pages for every parameter-sized output.
    """

    POOL = 3  # buffers kept per output: the caller usually holds one or two generations

    def __init__(self, fn, ws_specs, consts, source, scalars, fresh):
        self.fn, self.source, self.consts = fn, source, tuple(consts)
        self.workspace = tuple(np.empty(max(n, 1), dt) for dt, n in ws_specs)
        self.scalars = tuple(i for i, s in enumerate(scalars) if s)  # outputs recorded as numpy scalars
        self.fresh = [(n, dt) for _, n, dt in fresh]
        self.pools = [[] for _ in self.fresh]
        probe = [np.empty(1)]
        self._free = sys.getrefcount(probe[0])  # the count of a buffer only a pool holds

    def _buffer(self, k):
        pool = self.pools[k]
        for j in range(len(pool)):
            if sys.getrefcount(pool[j]) == self._free:
                return pool.pop(j)
        n, dt = self.fresh[k]
        return np.empty(n, dt)

    def __call__(self, *arrays):
        bufs = [self._buffer(k) for k in range(len(self.fresh))]
        out = self.fn(*self.workspace, *[(a if a.flags.c_contiguous else np.ascontiguousarray(a)).reshape(-1)
                                         for a in arrays], *self.consts, *bufs)
        for pool, b in zip(self.pools, bufs):
            pool.append(b)
            if len(pool) > self.POOL:
                del pool[0]
        if self.scalars:
            out = list(out)
            for i in self.scalars:
                out[i] = out[i][()]
        return out


def compile_program(code, meta, input_slots, output_slots) -> Compiled:
    """The program as one compiled function; raises Unsupported when it cannot be."""
    c = _Compiler(code, meta, input_slots, output_slots)
    source = c.build()
    fn = _load(source)
    return Compiled(fn, c.ws_specs, c.consts, source,
                    [meta[s][0] is not np.ndarray for s in output_slots], c.fresh)
