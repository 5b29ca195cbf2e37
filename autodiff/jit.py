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
* Writing a recorded value into a plain numpy array made inside the function
  (``z = np.zeros(3); z += x``, ``np.add(z, x, out=z)``, ``np.add.at(z, i, x)``,
  ``np.copyto(z, x)``) raises a RecordError: the function keeps its own
  reference to ``z``, which the recording cannot follow.  Allocate the buffer
  from an input (``z = np.zeros_like(x)``, which is recorded) or write
  ``z = z + x``.  Plain values written into plain arrays are fine.
* Shapes that depend on array values (``x[x > 0]``, ``np.nonzero``,
  ``np.unique``, one-argument ``np.where``, ...) and numpy integers used as
  slice bounds (``x[:n]`` with ``n = np.int64(2)``) are guarded, and so are the
  Python bools and ints numpy functions return (``np.allclose``): the replay
  checks the shape (or the value) right after computing it, and when
  it differs from the recording, the function is recorded again on the new
  inputs (the new program replaces the old one).  If the failing check comes
  after an in-place write that may have reached the caller's arrays, running
  the function again would apply that write twice, so that raises a
  RecordError instead.
* Each jit-ed function keeps at most ``max_programs`` programs (32 by
  default; least recently used first out), and warns once (UserWarning) when
  it has been recorded ``_WARN_AFTER`` (8) times for arguments of the same
  shapes, naming what keeps changing: usually a Python scalar argument with a
  new value each call (pass it as a numpy scalar or a 0-d array to make it an
  input), or a guarded shape, slice bound or value.  (New shapes, dtypes or
  Dual structures are new signatures and do not count.)
* The tags of Duals in the outputs must be tags of Duals in the inputs, so
  a `jit`-ed step composes with an outer `jvp` (its Duals come back with the
  caller's tag).

The call that records returns the values computed while recording (so a
function that writes into its inputs applies each write once); later calls
run the compiled replay.
"""
from __future__ import annotations

import collections
import functools
import operator
import os
import warnings
from typing import Any, Callable

import numpy as np

from .core import Box
from .dual import Dual
from .record import (_FRESH, Rec, Recorder, RecordError, _plain_arrays, _shapes, _slots_in, _Stale,  # noqa: F401
                     _written)
from .tree import tree_flatten, tree_unflatten


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


def _alias_classes(code: list, n_slots: int):
    """A union-find over slots that may share memory (views made by reshape,
    transpose, indexing, ``out=``, ...): returns its ``find``."""
    root = list(range(n_slots))

    def find(a):
        while root[a] != a:
            root[a] = root[root[a]]
            a = root[a]
        return a

    for kind, fn, target, args, kwargs, out in code:
        if out is None:
            continue
        if kind == "call" and _as_ufunc(fn) is not None:
            linked = _slots_in(kwargs.get("out"), [])  # a ufunc's result is new, or its out=
        elif kind == "const" or (kind == "call" and fn in _FRESH) or (kind == "method" and fn == "copy"):
            linked = []
        else:  # out may be a view of any of its arguments
            linked = _slots_in((target, args, kwargs), [])
        for s in linked:
            root[find(s)] = find(out)
    return find


def _layout(shape, dtype, strides):
    """The axis order (outermost first) of an array's memory, when it is a
    permutation of a contiguous layout (as numpy allocates ufunc results: in
    the memory order of their inputs); else None."""
    order = sorted(range(len(shape)), key=lambda a: (-abs(strides[a]), a))
    step = np.dtype(dtype).itemsize
    for a in reversed(order):
        if shape[a] > 1 and strides[a] != step:
            return None
        step *= shape[a]
    return tuple(order)


def _empty(shape, dtype, order):
    """An uninitialised array with the memory layout (`_layout`) of the recorded
    value, so that what reads it (a reduction's summation order) runs as when
    recorded."""
    if order == tuple(range(len(order))):
        return np.empty(shape, dtype)
    return np.empty([shape[a] for a in order], dtype).transpose(np.argsort(order))


def _plan_buffers(recorder: Recorder, last: dict, keep: set, find) -> dict:
    """Which ufunc results can be written into buffers the program owns.

    Returns {instruction index: buffer number}.  A buffer is reused once every
    value that may share its memory (views made from it by reshape, transpose,
    indexing, ...) is dead; a result whose memory may reach the program's
    outputs gets no buffer.  Reusing buffers avoids the page faults of fresh
    large temporaries on every step.
    """
    code, meta = recorder.code, recorder.meta
    end, escapes = {}, {find(s) for s in keep} | {find(s) for s in recorder.mutated}
    for s in range(recorder.n_slots):
        r = find(s)
        end[r] = max(end.get(r, -1), last.get(s, -1))
    plan, free, release, n_buffers = {}, {}, {}, 0
    for i, (kind, fn, target, args, kwargs, out) in enumerate(code):
        if (kind == "call" and out is not None and not kwargs and _as_ufunc(fn) is not None
                and meta[out][0] is np.ndarray and find(out) not in escapes
                and _layout(*meta[out][1:]) is not None):
            shape, dtype, strides = meta[out][1:]
            key = (shape, dtype, _layout(shape, dtype, strides))
            buf = free.get(key, []).pop() if free.get(key) else None
            if buf is None:
                buf, n_buffers = n_buffers, n_buffers + 1
            plan[i] = (buf, key)
            release.setdefault(max(end[find(out)], i), []).append((buf, key))
        for buf, key in release.pop(i, []):
            free.setdefault(key, []).append(buf)
    return plan


def _mark_unsafe_guards(code: list, input_slots, find) -> None:
    """Flag each guard that comes after an in-place write into memory the caller
    may see (an input, or a view of one or of a plain constant): if it fails,
    running the function again would apply that write a second time."""
    external = {find(s) for s in input_slots}
    for kind, fn, target, args, kwargs, out in code:
        if (kind == "call" and out is not None and _as_ufunc(fn) is None and fn not in _FRESH
                and _plain_arrays(args[:1] if fn is operator.getitem else (args, kwargs), [])):
            external.add(find(out))  # may be a view of a constant of the program
    wrote = False
    for ins in code:
        if ins[0] == "guard":
            ins[1].unsafe = wrote
        elif not wrote and any(find(s) in external for s in _written(ins)):
            wrote = True


_PURE_METHODS = {"reshape", "transpose", "astype", "sum", "prod", "max", "min", "mean", "copy", "ravel",
                 "flatten", "squeeze", "swapaxes", "cumsum", "dot", "clip", "any", "all", "argmax",
                 "argmin", "argsort", "conj", "round", "std", "var", "take", "nonzero", "repeat"}


def _eliminate_dead_code(code: list, output_slots, find) -> list:
    """Drop instructions whose results are never used (e.g. the tangent of a
    loss value that only its gradient was wanted for).  A write is kept when
    it may reach (through views) a value used later.  Guards stay, and so
    does what they check: the recording may have read that value's shape."""
    needed, kept = set(output_slots), []
    needed_roots = {find(s) for s in needed}
    for ins in reversed(code):
        kind, fn, target, args, kwargs, out = ins
        if kind == "guard" or (kind == "method" and fn not in _PURE_METHODS):
            live = True
        else:
            live = out in needed or any(find(s) in needed_roots for s in _written(ins))
        if live:
            kept.append(ins)
            used = _slots_in((target, args, kwargs), [])
            needed.update(used)
            needed_roots.update(find(s) for s in used)
    return kept[::-1]


def _compile(recorder: Recorder, input_slots, output_slots) -> Callable:
    """The recorded program as one Python function of the input arrays."""
    code = recorder.code = _eliminate_dead_code(recorder.code, output_slots,
                                                _alias_classes(recorder.code, recorder.n_slots))
    # liveness: the last instruction reading (or writing into) each slot
    last = {}
    for i, (kind, fn, target, args, kwargs, out) in enumerate(code):
        for s in _slots_in((target, args, kwargs), []):
            last[s] = i
    keep = set(output_slots)
    find = _alias_classes(code, recorder.n_slots)
    plan = _plan_buffers(recorder, last, keep, find)
    _mark_unsafe_guards(code, input_slots, find)
    buffers, guards = {}, []
    src = _Source()
    src.env.update(_Stale=_Stale, _shapes=_shapes)
    lines = [f"def replay({''.join(f's{s}, ' for s in input_slots)}):"]
    for i, (kind, fn, target, args, kwargs, out) in enumerate(code):
        lhs = f"s{out} = " if out is not None else ""
        if i in plan:
            buf, layout = plan[i]
            if buf not in buffers:
                buffers[buf] = _empty(*layout)
            ufunc = src.const(_as_ufunc(fn))
            lines.append(f"    {lhs}{ufunc}({src.call_args(args, {})}, out={src.const(buffers[buf])})")
        elif kind == "call":
            lines.append(f"    {lhs}{_direct(src, fn, args, kwargs)}")
        elif kind == "const":  # a copy: the program may write into it
            lines.append(f"    {lhs}{src.const(fn)}.copy()")
        elif kind == "method":
            lines.append(f"    {lhs}{src.expr(target)}.{fn}({src.call_args(args, kwargs)})")
        elif kind == "guard":
            v = src.expr(target)
            lines.append(f"    if {fn.test(v)}: raise _Stale({len(guards)}, {v})")
            guards.append(fn)
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
    replay.guards = guards
    replay.code, replay.meta = code, recorder.meta
    replay.input_slots, replay.output_slots = list(input_slots), list(output_slots)
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


def _skeleton(x, tags, out_recs):
    """Replace Recs in an output leaf by slot markers; tags by their input index."""
    if type(x) is Dual:
        if x._trace not in tags:
            raise TypeError("a Dual returned from a jit-ed function must carry the tag of an input Dual")
        return ("dual", tags.index(x._trace), _skeleton(x.primal, tags, out_recs),
                _skeleton(x.tangents, tags, out_recs))
    if isinstance(x, Box):
        raise TypeError("a jit-ed function cannot return tape values")
    if type(x) is Rec:
        out_recs.append(x)
        return ("slot", len(out_recs) - 1)
    return ("const", x)


def _build(sk, tags, values):
    kind = sk[0]
    if kind == "dual":
        return Dual(_build(sk[2], tags, values), _build(sk[3], tags, values), tags[sk[1]])
    if kind == "slot":
        return values[sk[1]]
    return sk[1]


_STATIC_TYPES = (bool, int, float, complex, str)


def _scan(x, parts: list, arrays: list, tags: list) -> bool:
    """One pass over a call's arguments for the common case (lists, tuples,
    NamedTuples, dicts, None, arrays, Duals, numpy and Python scalars): appends a description of
    every node to ``parts`` (the call's cache key, with structure) and the input
    arrays in program order; False for anything else (the general path runs)."""
    t = type(x)
    if t is np.ndarray:
        parts.append((x.shape, x.dtype.str))
        arrays.append(x)
    elif t is Dual:
        tag = x._trace
        if tag not in tags:
            tags.append(tag)
        parts.append(("D", tags.index(tag)))
        return _scan(x.primal, parts, arrays, tags) and _scan(x.tangents, parts, arrays, tags)
    elif t is list or t is tuple or (issubclass(t, tuple) and hasattr(t, "_fields")):  # (NamedTuples too)
        parts.append((t, len(x)))
        for v in x:
            if not _scan(v, parts, arrays, tags):
                return False
    elif t is dict:
        parts.append((dict, tuple(x)))
        for v in x.values():
            if not _scan(v, parts, arrays, tags):
                return False
    elif x is None:
        parts.append(None)
    elif t in _STATIC_TYPES:
        parts.append(("s", t, x))
    elif _numpy_number(x):
        parts.append(("n", x.dtype.str))
        arrays.append(np.asarray(x))
    else:
        return False
    return True


def _builder(skeletons, treedef):
    """A function (values, tags) -> the program's outputs, generated once per program
    (rebuilding Duals and containers without walking skeletons each call)."""
    env = {"_Dual": Dual}

    def const(v):
        name = f"c{len(env)}"
        env[name] = v
        return name

    def leaf(sk):
        if sk[0] == "dual":
            return f"_Dual({leaf(sk[2])}, {leaf(sk[3])}, tags[{sk[1]}])"
        if sk[0] == "slot":
            return f"v[{sk[1]}]"
        return const(sk[1])

    it = iter(skeletons)

    def node(d):
        if d.kind == "leaf":
            return leaf(next(it))
        if d.kind == "none":
            return "None"
        kids = [node(c) for c in d.children]
        if d.kind == "dict":
            return f"dict(zip({const(d.meta)}, ({''.join(k + ', ' for k in kids)})))"
        if d.kind == "list":
            return "[" + ", ".join(kids) + "]"
        if d.kind == "tuple" and d.meta is tuple:
            return "(" + "".join(k + ", " for k in kids) + ")"
        return f"{const(d.meta)}({'[' if d.kind != 'namedtuple' else ''}{', '.join(kids)}{']' if d.kind != 'namedtuple' else ''})"

    body = node(treedef)
    exec(compile(f"def build(v, tags):\n    return {body}\n", "<autodiff.jit outputs>", "exec"), env)
    return env["build"]


class _Program:
    """A recorded program: ``run`` is its replay, the Python one until (and unless) the
    compiled one takes over; ``note`` says why a program stays in Python."""

    def __init__(self, replay, skeletons, treedef):
        self.replay, self.skeletons, self.treedef = replay, skeletons, treedef
        self.run, self.calls, self.compiled, self.note = replay, 0, None, None
        self.build = _builder(skeletons, treedef)

    def compile(self, name: str, warn: bool) -> None:
        """Swap in the numba-compiled replay; on failure keep Python and note why (once)."""
        self.calls = -1  # never again
        from .backend import numba_available
        if not numba_available():
            self.note = "numba is not importable"
        else:
            from .backend import numba_jit
            r = self.replay
            try:
                self.compiled = numba_jit.compile_program(r.code, r.meta, r.input_slots, r.output_slots)
            except numba_jit.Unsupported as e:
                self.note = str(e)
            except Exception as e:  # a compiler bug must not cost the user the (correct) replay
                self.note = f"internal error in the compiler, please report: {type(e).__name__}: {e}"
                warn = True
            else:
                self.run = self.compiled
                return
        if warn or _VERBOSE:
            warnings.warn(f"jit: {name} runs as a Python replay ({self.note})", JitFallbackWarning, stacklevel=3)


class JitFallbackWarning(UserWarning):
    """A program jit could not compile with numba runs as a Python replay (the message says why)."""


_BACKENDS = ("auto", "numba", "python")
_VERBOSE = os.environ.get("AUTODIFF_JIT_VERBOSE", "").strip().lower() in ("1", "true", "yes", "on")
COMPILE_AFTER = 100  # backend "auto": replays in Python before a program is compiled (a program run
# only a few dozen times, such as an evaluation per hyper-iteration, never pays ~1-8 s of compiling)


def _backend_setting(backend):
    """The backend a jit-ed function uses: its own, else $AUTODIFF_JIT_BACKEND, else "auto"."""
    if backend is None:
        backend = os.environ.get("AUTODIFF_JIT_BACKEND", "").strip().lower() or "auto"
    if backend not in _BACKENDS:
        raise ValueError(f"jit backend must be one of {', '.join(map(repr, _BACKENDS))}, got {backend!r}")
    return backend


_WARN_AFTER = 8  # recordings of one jit-ed function before it warns (once) that it keeps recording


def jit(f: Callable, *, max_programs: int = 32, backend: str | None = None) -> Callable:
    """Record ``f``'s numpy calls on the first call for each input signature and
    replay them afterwards (see module docs).

    ``backend`` chooses how a program is replayed: ``"python"`` runs it as
    straight-line Python (one numpy call per operation); ``"numba"`` compiles it
    into one numba function (`autodiff.backend.numba_jit`) before its first
    replay; ``"auto"`` (the default, or $AUTODIFF_JIT_BACKEND) replays in Python
    ``COMPILE_AFTER`` (100) times first, so a function called a few dozen times never pays
    for compiling.  A program the compiler does not handle stays in Python
    (``jit(f).programs[key].note`` says why; with backend "numba" or
    AUTODIFF_JIT_VERBOSE=1 a `JitFallbackWarning` says it too).  Compiled
    programs are cached on disk, so another process loads them in milliseconds.

    ``f`` takes and returns pytrees of arrays, Duals (of any nesting) and static
    Python values.  ``jit(f).programs`` holds the recorded programs (at most
    ``max_programs``, the least recently used dropped first); each has a
    ``.replay.source`` to read.  ``jit(f).n_recordings`` counts the recordings.
    """
    if not isinstance(max_programs, (int, np.integer)) or max_programs < 1:
        raise ValueError(f"max_programs must be a positive integer, got {max_programs!r}")
    backend = _backend_setting(backend)
    after = 0 if backend == "numba" else COMPILE_AFTER
    programs: collections.OrderedDict = collections.OrderedDict()
    # per signature (the cache key with static values left out): [recordings, last key]
    churn: dict = {}

    fast: dict = {}  # the key of _scan's description -> the program's key

    @functools.wraps(f)
    def jitted(*args):
        nonlocal churn
        parts, arrays, tags = [], [], []
        leaves = treedef = None
        fast_key = tuple(parts) if _scan(args, parts, arrays, tags) else None
        key = fast.get(fast_key) if fast_key is not None else None
        prog = programs.get(key) if key is not None else None
        if prog is None:  # the general path: any pytree
            leaves, treedef = tree_flatten(args)
            tags = []
            key = (treedef, tuple(_describe(x, tags) for x in leaves))
            prog = programs.get(key)
            if fast_key is not None:
                if len(fast) > 4096:
                    fast.clear()
                fast[fast_key] = key
            if prog is not None:
                arrays = []
                for x in leaves:
                    _arrays_of(x, arrays)
        stale = None
        if prog is not None:
            if backend != "python" and prog.calls >= 0:
                prog.calls += 1
                if prog.calls > after:
                    prog.compile(_name(f), warn=backend == "numba")
            try:
                values = prog.run(*arrays)
            except _Stale as e:
                guard = prog.replay.guards[e.guard]
                stale = guard.describe(e.value)
                if guard.unsafe:
                    raise RecordError(
                        f"jit: {stale}, so {_name(f)} would have to be recorded again, but this replay "
                        "had already written in place into an input (or a view of one) before that "
                        "check, and recording runs the function again: the write would be applied "
                        "twice. Do the in-place update after the value-dependent operation, or "
                        "write `a = a + b` instead") from None
                prog = None
            else:
                if len(programs) > 1:
                    programs.move_to_end(key)
        if prog is None:  # record; the recording's own results are this call's results
            if leaves is None:
                leaves, treedef = tree_flatten(args)
            prog, values = _record(f, leaves, treedef, tags)
            programs[key] = prog
            programs.move_to_end(key)
            while len(programs) > max_programs:
                programs.popitem(last=False)
            jitted.n_recordings += 1
            if churn is not None:
                sig = (treedef, tuple(d[:2] if d[0] == "static" else d for d in key[1]))
                seen = churn.setdefault(sig, [0, key])
                seen[0] += 1
                if seen[0] >= _WARN_AFTER:
                    warnings.warn(_rerecord_message(f, seen[0], stale, seen[1], key, args),
                                  UserWarning, stacklevel=2)
                    churn = None  # once
                elif len(churn) > 4096:
                    churn.clear()
                else:
                    seen[1] = key
        return prog.build(values, tags)

    jitted.programs = programs
    jitted.n_recordings = 0
    return jitted


def _record(f, leaves, treedef, tags):
    """A program for ``f`` on these inputs, and the outputs of the recording run."""
    recorder = Recorder()
    in_slots: list = []
    rec_leaves = [_to_recs(x, recorder, in_slots) for x in leaves]
    out = f(*tree_unflatten(treedef, rec_leaves))
    out_leaves, out_def = tree_flatten(out)
    out_recs: list = []
    skeletons = [_skeleton(x, tags, out_recs) for x in out_leaves]
    replay = _compile(recorder, in_slots, [r.slot for r in out_recs])
    return _Program(replay, skeletons, out_def), tuple(r.value for r in out_recs)


# -- the warning for a function that keeps recording --------------------------------------------
def _name(f) -> str:
    return getattr(f, "__qualname__", None) or getattr(f, "__name__", None) or repr(f)


def _leaf_paths(x, path: str, acc: list) -> list:
    """The path of each leaf of a pytree, in tree_flatten's order."""
    if x is None:
        return acc
    if isinstance(x, dict):
        for k, v in x.items():
            _leaf_paths(v, f"{path}[{k!r}]", acc)
    elif isinstance(x, (list, tuple)):
        for i, v in enumerate(x):
            _leaf_paths(v, f"{path}[{i}]", acc)
    else:
        acc.append(path)
    return acc


def _show(d) -> str:
    if d[0] == "static":
        return repr(d[2])
    if d[0] == "array":
        return f"an array of shape {d[1]} and dtype {np.dtype(d[2])}"
    return "a Dual" if d[0] == "dual" else repr(d)


def _rerecord_message(f, n, stale, old_key, new_key, args) -> str:
    head = f"jit: {_name(f)} has been recorded {n} times for arguments of the same shapes"
    if stale is not None:
        return (f"{head}; the recording keeps changing because of value-dependent shapes / slice "
                f"bounds ({stale}), and each change records the function again. Recording is slow: "
                "avoid shapes that depend on array values (e.g. np.where(mask, x, 0) instead of "
                "x[mask]) and slice bounds that change from call to call")
    old, new = old_key[1], new_key[1]
    i = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), None)
    if i is None:  # the same key again: its program had been dropped from the cache
        return (f"{head}; it is called with more than max_programs different argument signatures, "
                "so programs are dropped and recorded again (raise max_programs, or make the "
                "changing arguments inputs: numpy scalars or arrays)")
    where = f"args{_leaf_paths(args, '', [])[i]}"
    try:
        import inspect
        params = [p for p in inspect.signature(f).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        pos = int(where[5:where.index("]")])
        if pos < len(params):
            where += f" (parameter {params[pos].name!r})"
    except (TypeError, ValueError):
        pass
    return (f"{head}; the static argument {where} keeps changing (from {_show(old[i])} to "
            f"{_show(new[i])}): Python scalars and other non-array arguments are part of a "
            "program, so each new value records a new one. Pass it as a numpy scalar or a 0-d "
            "array (np.float64(v), np.asarray(v)) so that it is an input of one program")
