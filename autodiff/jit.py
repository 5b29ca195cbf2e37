"""jit: record a function's numpy calls once, then replay them as straight-line code.

A training step of a small model spends most of its time in Python: every
primitive goes through one or two traces (a `Dual` and a tape) before numpy
does a few microseconds of arithmetic.  `jit(f)` removes that.  On the first
call for a given input signature it runs ``f`` with every array inside the
inputs (the arrays inside Duals included) replaced by a `Rec`: a recording
array that logs each numpy call made on it and computes the real result
alongside.  Everything above numpy (traces, tapes, rules, pytrees) runs once
and leaves behind only the list of numpy calls it made.  That list is turned
into the source of one Python function (one line per call, with ``del`` after
each value's last use) and compiled; later calls run it directly.

Rules for the recorded function, checked where possible:

* Python control flow must not depend on array values (``bool(x)``,
  ``float(x)`` raise a RecordError while recording); use ``np.where``.
* Python scalars and other non-array inputs are static: a new value records a
  new program (so pass a changing learning rate as an array or a Dual).
  numpy scalars (``np.float64(0.1)``) are inputs, like 0-d arrays.
* The tags of Duals in the outputs must be tags of Duals in the inputs, so
  a `jit`-ed step composes with an outer `jvp` (its Duals come back with the
  caller's tag).
"""
from __future__ import annotations

import functools
import operator
from typing import Any, Callable

import numpy as np

from .core import Box
from .dual import Dual
from .tree import tree_flatten, tree_unflatten


class RecordError(TypeError):
    """An operation that would let an array value escape a recording."""


_STATIC = {np.shape, np.ndim, np.size, np.result_type, np.iscomplexobj, np.isrealobj, np.isscalar}


class Rec:
    """An array being recorded: ``value`` is its concrete value, ``slot`` its
    variable in the recorded program."""

    __slots__ = ("value", "slot", "recorder")
    __array_priority__ = 500.0

    def __init__(self, value, slot, recorder):
        self.value, self.slot, self.recorder = value, slot, recorder

    shape = property(lambda s: np.shape(s.value))
    dtype = property(lambda s: s.value.dtype)
    ndim = property(lambda s: np.ndim(s.value))
    size = property(lambda s: np.size(s.value))
    T = property(lambda s: s.recorder.method(s, "transpose", (), {}))
    mT = property(lambda s: s.recorder.call(np.swapaxes, (s, -1, -2), {}))

    def __len__(self):
        return len(self.value)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    # A Rec is the lowest level: when a Dual or tape value takes part, its
    # handler must run first, so the Rec steps aside (NotImplemented).
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if _has_box(inputs):
            return NotImplemented
        fn = ufunc if method == "__call__" else getattr(ufunc, method)
        return self.recorder.call(fn, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        if any(issubclass(t, Box) for t in types):
            return NotImplemented
        if func in _STATIC:
            return func(*_concrete(args), **_concrete(kwargs))
        return self.recorder.call(func, args, kwargs)

    def adopt_constant(self, c):
        """A plain array this value indexes becomes a slot of the program."""
        return self.recorder.constant(c)

    def __getitem__(self, idx):
        return self.recorder.call(operator.getitem, (self, idx), {})

    def __setitem__(self, idx, value):
        self.recorder.setitem(self, idx, value)

    def __getattr__(self, name):  # ndarray methods: astype, reshape, sum, ...
        if name.startswith("__") or not callable(getattr(np.ndarray, name, None)):
            raise AttributeError(name)
        return functools.partial(self.recorder.method_call, self, name)

    def _refuse(self, *args, **kwargs):
        raise RecordError(
            "jit cannot record Python code that depends on an array's value (bool, float, int, "
            "np.asarray, .item); use numpy operations such as np.where instead"
        )

    __bool__ = __float__ = __int__ = __index__ = __complex__ = __array__ = _refuse
    __hash__ = None


def _has_box(args) -> bool:
    return any(isinstance(a, Box) or (type(a) in (tuple, list) and _has_box(a)) for a in args)


def _binary(fn, reflected=False):
    def op(s, o):
        if isinstance(o, Box):
            return NotImplemented
        return s.recorder.call(fn, (o, s) if reflected else (s, o), {})
    return op


for _name, _fn in [("add", operator.add), ("sub", operator.sub), ("mul", operator.mul),
                   ("truediv", operator.truediv), ("pow", operator.pow), ("matmul", operator.matmul),
                   ("floordiv", operator.floordiv), ("mod", operator.mod), ("and", operator.and_),
                   ("or", operator.or_), ("xor", operator.xor)]:
    setattr(Rec, f"__{_name}__", _binary(_fn))
    setattr(Rec, f"__r{_name}__", _binary(_fn, reflected=True))
for _name, _fn in [("lt", operator.lt), ("le", operator.le), ("gt", operator.gt), ("ge", operator.ge),
                   ("eq", operator.eq), ("ne", operator.ne)]:
    setattr(Rec, f"__{_name}__", _binary(_fn))
for _name, _fn in [("neg", operator.neg), ("pos", operator.pos), ("abs", operator.abs),
                   ("invert", operator.invert)]:
    setattr(Rec, f"__{_name}__", (lambda fn: lambda s: s.recorder.call(fn, (s,), {}))(_fn))


def _concrete(x):
    """x with every Rec replaced by its value (through tuples, lists and dicts)."""
    if type(x) is Rec:
        return x.value
    if type(x) in (tuple, list):
        return type(x)(_concrete(v) for v in x)
    if type(x) is dict:
        return {k: _concrete(v) for k, v in x.items()}
    if type(x) is slice and any(type(v) is Rec for v in (x.start, x.stop, x.step)):
        raise RecordError("slice bounds must not depend on array values under jit")
    return x


def _key(x):
    """A hashable identity for an instruction argument (for common subexpressions)."""
    t = type(x)
    if t is Rec:
        return ("s", x.slot)
    if t in (tuple, list):
        return (t.__name__,) + tuple(_key(v) for v in x)
    if t is dict:
        return ("dict",) + tuple((k, _key(v)) for k, v in x.items())
    if t in (bool, int, float, str) or x is None or x is Ellipsis:
        return (t.__name__, x)
    if t is slice:
        return ("slice", _key(x.start), _key(x.stop), _key(x.step))
    return ("id", id(x))


def _pure(fn) -> bool:
    """Functions whose repeated application to the same arguments may be shared."""
    return isinstance(fn, np.ufunc) or getattr(fn, "__module__", None) in ("_operator", "operator") or (
        getattr(fn, "__self__", None).__class__ is np.ufunc and fn.__name__ == "reduce")


class Recorder:
    """Builds the program: instructions over numbered slots."""

    def __init__(self):
        self.n_slots = 0
        self.code = []  # (kind, fn_or_name, target, args, kwargs, out_slot)
        self.seen: dict = {}  # pure instruction -> its Rec (common subexpressions)
        self.mutated: set = set()  # slots written in place
        self.meta: list = []  # per slot: (type, shape, dtype) of its recorded value

    def new(self, value) -> Rec:
        r = Rec(value, self.n_slots, self)
        self.meta.append((type(value), getattr(value, "shape", None), getattr(value, "dtype", None)))
        self.n_slots += 1
        return r

    def call(self, fn, args, kwargs):
        pure = _pure(fn) and "out" not in kwargs
        if pure:
            key = (id(fn), _key(args), _key(kwargs))
            hit = self.seen.get(key)
            if hit is not None and not (set(_slots_in((args, kwargs), [])) & self.mutated):
                return hit
        out = fn(*_concrete(args), **_concrete(kwargs))
        if out is None:  # an in-place operation (np.add.at, out=)
            self.mutated.update(_slots_in(args[:1], []) + _slots_in(kwargs.get("out"), []))
            self.code.append(("call", fn, None, args, kwargs, None))
            return None
        wrapped = self._wrap_root(out)
        if pure and type(wrapped) is Rec:
            self.seen[key] = wrapped
        self.code.append(("call", fn, None, args, kwargs, wrapped.slot if type(wrapped) is Rec else None))
        return wrapped

    def _wrap_root(self, out):
        # arrays, numpy scalars and tuples of them (np.linalg.slogdet) become slots
        return self.new(out) if isinstance(out, (np.ndarray, np.generic, tuple, list)) else out

    def constant(self, c) -> Rec:
        r = self.new(c)
        self.code.append(("const", c, None, (), {}, r.slot))
        return r

    def method_call(self, obj, name, *args, **kwargs):
        out = getattr(obj.value, name)(*_concrete(args), **_concrete(kwargs))
        r = self._wrap_root(out)
        self.code.append(("method", name, obj, args, kwargs, r.slot if type(r) is Rec else None))
        return r

    def method(self, obj, name, args, kwargs):
        return self.method_call(obj, name, *args, **kwargs)

    def setitem(self, obj, idx, value):
        self.mutated.add(obj.slot)
        obj.value[_concrete(idx)] = _concrete(value)
        self.code.append(("setitem", None, obj, (idx, value), {}, None))


class _Source:
    """Turns recorded instructions into Python source."""

    def __init__(self):
        self.env: dict[str, Any] = {"_np": np}
        self._ids: dict[int, str] = {}

    def const(self, obj) -> str:
        key = id(obj)
        if key not in self._ids:
            name = f"k{len(self._ids)}"
            self._ids[key] = name
            self.env[name] = obj
        return self._ids[key]

    def expr(self, x) -> str:
        t = type(x)
        if t is Rec:
            return f"s{x.slot}"
        if x is None or t is bool or t is int or t is str:
            return repr(x)
        if t is float:
            return repr(x) if np.isfinite(x) else self.const(x)
        if x is Ellipsis:
            return "..."
        if t is tuple:
            return "(" + "".join(self.expr(v) + ", " for v in x) + ")"
        if t is list:
            return "[" + ", ".join(self.expr(v) for v in x) + "]"
        if t is dict:
            return "{" + ", ".join(f"{k!r}: {self.expr(v)}" for k, v in x.items()) + "}"
        if t is slice:
            return f"slice({self.expr(x.start)}, {self.expr(x.stop)}, {self.expr(x.step)})"
        return self.const(x)

    def call_args(self, args, kwargs) -> str:
        parts = [self.expr(a) for a in args] + [f"{k}={self.expr(v)}" for k, v in kwargs.items()]
        return ", ".join(parts)


def _slots_in(x, acc):
    t = type(x)
    if t is Rec:
        acc.append(x.slot)
    elif t in (tuple, list):
        for v in x:
            _slots_in(v, acc)
    elif t is dict:
        for v in x.values():
            _slots_in(v, acc)
    elif t is slice:
        _slots_in((x.start, x.stop, x.step), acc)
    return acc


_REDUCE = {np.sum: "add", np.prod: "multiply", np.max: "maximum", np.min: "minimum"}


def _direct(src: _Source, fn, args, kwargs) -> str:
    """The call as source, skipping numpy's Python-level wrappers where that is exact."""
    if fn is np.reshape and len(args) == 2 and not kwargs and type(args[0]) is Rec:
        return f"{src.expr(args[0])}.reshape({src.expr(args[1])})"
    if fn is np.transpose and len(args) == 2 and not kwargs and type(args[0]) is Rec:
        return f"{src.expr(args[0])}.transpose({src.expr(args[1])})"
    if (fn in _REDUCE and len(args) == 1 and set(kwargs) <= {"axis", "keepdims"} and type(args[0]) is Rec
            and np.issubdtype(args[0].dtype, np.inexact)):
        axis, keepdims = kwargs.get("axis"), kwargs.get("keepdims", False)
        return (f"_np.{_REDUCE[fn]}.reduce({src.expr(args[0])}, {src.expr(axis)}, None, None, "
                f"{src.expr(keepdims)})")
    return f"{src.const(fn)}({src.call_args(args, kwargs)})"


_UFUNC_OF = {operator.add: np.add, operator.sub: np.subtract, operator.mul: np.multiply,
             operator.truediv: np.divide, operator.pow: np.power, operator.neg: np.negative,
             operator.matmul: np.matmul}


def _as_ufunc(fn):
    return fn if isinstance(fn, np.ufunc) else _UFUNC_OF.get(fn)


def _plan_buffers(recorder: Recorder, last: dict, keep: set) -> dict:
    """Which ufunc results can be written into buffers the program owns.

    Returns {instruction index: buffer number}.  A buffer is reused once every
    value that may share its memory (views made from it by reshape, transpose,
    indexing, ...) is dead; a result whose memory may reach the program's
    outputs gets no buffer.  Reusing buffers avoids the page faults of fresh
    large temporaries on every step.
    """
    code, meta = recorder.code, recorder.meta
    root = list(range(recorder.n_slots))

    def find(a):
        while root[a] != a:
            root[a] = root[root[a]]
            a = root[a]
        return a

    for kind, fn, target, args, kwargs, out in code:
        if out is not None and not (kind == "call" and _as_ufunc(fn) is not None):
            for s in _slots_in((target, args, kwargs), []):  # out may be a view of s
                root[find(s)] = find(out)
    end, escapes = {}, {find(s) for s in keep} | {find(s) for s in recorder.mutated}
    for s in range(recorder.n_slots):
        r = find(s)
        end[r] = max(end.get(r, -1), last.get(s, -1))
    plan, free, release, n_buffers = {}, {}, {}, 0
    for i, (kind, fn, target, args, kwargs, out) in enumerate(code):
        if (kind == "call" and out is not None and not kwargs and _as_ufunc(fn) is not None
                and meta[out][0] is np.ndarray and find(out) not in escapes):
            key = meta[out][1:]
            buf = free.get(key, []).pop() if free.get(key) else None
            if buf is None:
                buf, n_buffers = n_buffers, n_buffers + 1
            plan[i] = (buf, key)
            release.setdefault(max(end[find(out)], i), []).append((buf, key))
        for buf, key in release.pop(i, []):
            free.setdefault(key, []).append(buf)
    return plan


_PURE_METHODS = {"reshape", "transpose", "astype", "sum", "prod", "max", "min", "mean", "copy", "ravel",
                 "flatten", "squeeze", "swapaxes", "cumsum", "dot", "clip", "any", "all", "argmax",
                 "argmin", "argsort", "conj", "round", "std", "var", "take", "nonzero", "repeat"}


def _eliminate_dead_code(code: list, output_slots) -> list:
    """Drop instructions whose results are never used (e.g. the tangent of a
    loss value that only its gradient was wanted for)."""
    needed, kept = set(output_slots), []
    for ins in reversed(code):
        kind, fn, target, args, kwargs, out = ins
        if kind == "setitem" or (kind == "call" and out is None):  # writes into a slot
            written = _slots_in(target if kind == "setitem" else (args[:1], kwargs.get("out")), [])
            live = bool(set(written) & needed)
        elif kind == "method" and fn not in _PURE_METHODS:
            live = True
        else:
            live = out in needed
        if live:
            kept.append(ins)
            needed.update(_slots_in((target, args, kwargs), []))
    return kept[::-1]


def _compile(recorder: Recorder, input_slots, output_slots) -> Callable:
    """The recorded program as one Python function of the input arrays."""
    code = recorder.code = _eliminate_dead_code(recorder.code, output_slots)
    # liveness: the last instruction reading (or writing into) each slot
    last = {}
    for i, (kind, fn, target, args, kwargs, out) in enumerate(code):
        for s in _slots_in((target, args, kwargs), []):
            last[s] = i
    keep = set(output_slots)
    plan = _plan_buffers(recorder, last, keep)
    buffers = {}
    src = _Source()
    lines = [f"def replay({''.join(f's{s}, ' for s in input_slots)}):"]
    for i, (kind, fn, target, args, kwargs, out) in enumerate(code):
        lhs = f"s{out} = " if out is not None else ""
        if i in plan:
            buf, (shape, dtype) = plan[i]
            if buf not in buffers:
                buffers[buf] = np.empty(shape, dtype)
            ufunc = src.const(_as_ufunc(fn))
            lines.append(f"    {lhs}{ufunc}({src.call_args(args, {})}, out={src.const(buffers[buf])})")
        elif kind == "call":
            lines.append(f"    {lhs}{_direct(src, fn, args, kwargs)}")
        elif kind == "const":  # a copy: the program may write into it
            lines.append(f"    {lhs}{src.const(fn)}.copy()")
        elif kind == "method":
            lines.append(f"    {lhs}{src.expr(target)}.{fn}({src.call_args(args, kwargs)})")
        else:  # setitem
            idx, value = args
            lines.append(f"    {src.expr(target)}[{src.expr(idx)}] = {src.expr(value)}")
        dead = sorted(s for s in set(_slots_in((target, args, kwargs), [])) if last.get(s) == i and s not in keep)
        if out is not None and out not in last and out not in keep:
            dead.append(out)  # computed but never used
        if dead:
            lines.append("    del " + ", ".join(f"s{s}" for s in dead))
    lines.append(f"    return ({''.join(f's{s}, ' for s in output_slots)})")
    source = "\n".join(lines)
    namespace = dict(src.env)
    exec(compile(source, "<autodiff.jit>", "exec"), namespace)
    replay = namespace["replay"]
    replay.source = source
    replay.n_buffers = len(buffers)
    return replay


# -- inputs and outputs: arrays inside (possibly nested) Duals ------------------------------
def _describe(x, tags: list):
    """A hashable description of an input leaf; collects Dual tags in order."""
    if type(x) is Dual:
        if x._trace not in tags:
            tags.append(x._trace)
        return ("dual", tags.index(x._trace), _describe(x.primal, tags), _describe(x.tangents, tags))
    if isinstance(x, Box):
        raise TypeError("jit takes arrays and Duals as inputs; call jit inside grad, not grad inside jit")
    if isinstance(x, np.ndarray) or _numpy_number(x):
        return ("array", np.shape(x), x.dtype.str)
    if isinstance(x, (bool, int, float, complex, str, type(None), np.generic)):
        return ("static", type(x).__name__, x)
    raise TypeError(f"jit cannot take an input of type {type(x).__name__}")


def _numpy_number(x) -> bool:
    """A numpy scalar (np.float64(0.1), np.int64(3)): an input value like a 0-d
    array, not a constant of the program.  numpy returns these from arithmetic
    on 0-d arrays (``np.exp(log_lr)``, ``step + 1``), so treating them as
    constants would record a new program for every new value."""
    return isinstance(x, np.generic) and isinstance(x, (np.number, np.bool_))


def _arrays_of(x, acc):
    if type(x) is Dual:
        _arrays_of(x.primal, acc)
        _arrays_of(x.tangents, acc)
    elif isinstance(x, np.ndarray):
        acc.append(x)
    elif _numpy_number(x):
        acc.append(np.asarray(x))
    return acc


def _to_recs(x, recorder, slots):
    if type(x) is Dual:
        return Dual(_to_recs(x.primal, recorder, slots), _to_recs(x.tangents, recorder, slots), x._trace)
    if isinstance(x, np.ndarray) or _numpy_number(x):
        r = recorder.new(np.asarray(x))
        slots.append(r.slot)
        return r
    return x


def _skeleton(x, tags, out_slots):
    """Replace Recs in an output leaf by slot markers; tags by their input index."""
    if type(x) is Dual:
        if x._trace not in tags:
            raise TypeError("a Dual returned from a jit-ed function must carry the tag of an input Dual")
        return ("dual", tags.index(x._trace), _skeleton(x.primal, tags, out_slots),
                _skeleton(x.tangents, tags, out_slots))
    if isinstance(x, Box):
        raise TypeError("a jit-ed function cannot return tape values")
    if type(x) is Rec:
        out_slots.append(x.slot)
        return ("slot", len(out_slots) - 1)
    return ("const", x)


def _build(sk, tags, values):
    kind = sk[0]
    if kind == "dual":
        return Dual(_build(sk[2], tags, values), _build(sk[3], tags, values), tags[sk[1]])
    if kind == "slot":
        return values[sk[1]]
    return sk[1]


class _Program:
    def __init__(self, replay, skeletons, treedef):
        self.replay, self.skeletons, self.treedef = replay, skeletons, treedef


def jit(f: Callable) -> Callable:
    """Record ``f``'s numpy calls on the first call for each input signature and
    replay them as compiled straight-line Python afterwards (see module docs).

    ``f`` takes and returns pytrees of arrays, Duals (of any nesting) and static
    Python values.  ``jit(f).programs`` holds the recorded programs; each has a
    ``.replay.source`` to read.
    """
    programs: dict = {}

    @functools.wraps(f)
    def jitted(*args):
        leaves, treedef = tree_flatten(args)
        tags: list = []
        key = (treedef, tuple(_describe(x, tags) for x in leaves))
        prog = programs.get(key)
        if prog is None:
            prog = programs[key] = _record(f, leaves, treedef, tags)
        arrays = []
        for x in leaves:
            _arrays_of(x, arrays)
        values = prog.replay(*arrays)
        outs = [_build(sk, tags, values) for sk in prog.skeletons]
        return tree_unflatten(prog.treedef, outs)

    jitted.programs = programs
    return jitted


def _record(f, leaves, treedef, tags) -> _Program:
    recorder = Recorder()
    in_slots: list = []
    rec_leaves = [_to_recs(x, recorder, in_slots) for x in leaves]
    out = f(*tree_unflatten(treedef, rec_leaves))
    out_leaves, out_def = tree_flatten(out)
    out_slots: list = []
    skeletons = [_skeleton(x, tags, out_slots) for x in out_leaves]
    return _Program(_compile(recorder, in_slots, out_slots), skeletons, out_def)
