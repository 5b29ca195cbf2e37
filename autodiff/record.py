"""Recording: `Rec`, the array that logs the numpy calls made on it, and the
`Recorder` that keeps the log.

`autodiff.jit` runs a function once on Recs and turns the log into a program
(a Python replay, or a numba function through `autodiff.backend.numba_jit`);
both read the recorded instructions with the helpers here.
"""
from __future__ import annotations

import functools
import operator

import numpy as np

from .core import Box

class RecordError(TypeError):
    """An operation that would let an array value escape a recording."""


class _Stale(Exception):
    """Raised by a replay whose guard failed: ``guard`` numbers the guard in
    ``replay.guards``, ``value`` is what it saw."""

    def __init__(self, guard: int, value):
        super().__init__(guard)
        self.guard, self.value = guard, value


_STATIC = {np.shape, np.ndim, np.size, np.result_type, np.iscomplexobj, np.isrealobj, np.isscalar}

# functions (and ndarray methods) whose result's shape depends on the values of
# their arguments: their results get a shape guard in the replay
_VALUE_SHAPED = {f for f in (getattr(np, n, None) for n in (
    "nonzero", "argwhere", "flatnonzero", "unique", "unique_values", "unique_counts",
    "unique_inverse", "unique_all", "extract", "compress", "trim_zeros", "bincount", "setdiff1d",
    "intersect1d", "union1d", "setxor1d", "histogram", "histogram_bin_edges")) if f is not None} | {
    np.linalg.lstsq}
# ... when an argument after the first is recorded (np.split(x, recorded_indices))
_VALUE_SHAPED_BY_ARGS = {np.split, np.array_split, np.delete, np.repeat}
_VALUE_SHAPED_METHODS = {"nonzero", "compress"}

# functions writing into their first argument (np.copyto(dst, src), ...): the
# keyword name of that argument
_WRITES_FIRST = {np.copyto: "dst", np.put: "a", np.place: "arr", np.putmask: "a",
                 np.put_along_axis: "arr", np.fill_diagonal: "a"}
# ndarray methods writing into the array they are called on
_MUTATING_METHODS = {"fill", "sort", "put", "partition", "itemset", "resize", "setfield", "setflags"}
# functions whose result never shares memory with their arguments
_FRESH = {np.zeros_like, np.ones_like, np.empty_like, np.full_like, np.copy}


def _is_ufunc_at(fn) -> bool:
    return getattr(fn, "__name__", None) == "at" and isinstance(getattr(fn, "__self__", None), np.ufunc)


def _fn_name(fn) -> str:
    if fn is operator.getitem:
        return "indexing with a boolean mask (x[mask])"
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, np.ufunc):
        return f"np.{owner.__name__}.{fn.__name__}"
    name = getattr(fn, "__name__", repr(fn))
    return f"np.{name}" if isinstance(fn, np.ufunc) or getattr(np, name, None) is fn else name


_PLAIN_WRITE_FIX = (
    "allocate the buffer from an input instead (e.g. `z = np.zeros_like(x)`, which is recorded), "
    "or write `z = z + x` instead of an in-place update")


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
    real = property(lambda s: s.recorder.call(np.real, (s,), {}))
    imag = property(lambda s: s.recorder.call(np.imag, (s,), {}))
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

    def __copy__(self):  # copy.copy / copy.deepcopy: a recorded copy, on this recording
        return self.recorder.method_call(self, "copy")

    def __deepcopy__(self, memo):
        return self.recorder.method_call(self, "copy")

    def __getattr__(self, name):  # ndarray methods: astype, reshape, sum, ...
        if name.startswith("__") or not callable(getattr(np.ndarray, name, None)):
            raise AttributeError(name)
        return functools.partial(self.recorder.method_call, self, name)

    def _refuse(self, *args, **kwargs):
        raise RecordError(
            "jit cannot record Python code that depends on an array's value (bool, float, int, "
            "np.asarray, .item); use numpy operations such as np.where instead. (Writing a recorded "
            "value into a plain numpy array, `z[i] = x`, is refused too: " + _PLAIN_WRITE_FIX + ")"
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
        return slice(_slice_bound(x.start), _slice_bound(x.stop), _slice_bound(x.step))
    return x


def _slice_bound(v):
    """A recorded integer used as a slice bound: its value, guarded in the replay."""
    if type(v) is not Rec:
        return v
    value = v.value
    if np.ndim(value) != 0 or not np.issubdtype(np.result_type(value), np.integer):
        raise RecordError("under jit, a slice bound that is an array must be a numpy integer "
                          "(a 0-d integer array); slice bounds must not depend on other array values")
    v.recorder.guard_value(v)
    return int(value)


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


class _Guard:
    """A check emitted into the replay right after a value whose shape (kind
    "shape") or value (kind "value", a slice bound) the recording depends on."""

    __slots__ = ("kind", "expected", "what", "seq", "unsafe")

    def __init__(self, kind, expected, what, seq=False):
        self.kind, self.expected, self.what, self.seq = kind, expected, what, seq
        self.unsafe = False  # an in-place write that may reach the caller's arrays comes before it

    def test(self, v: str) -> str:
        if self.kind == "value":
            return f"{v} != {self.expected!r}"
        return f"_shapes({v}) != {self.expected!r}" if self.seq else f"{v}.shape != {self.expected!r}"

    def describe(self, seen) -> str:
        if self.kind == "value":
            return f"{self.what} was {self.expected!r} when recorded, now {_py(seen)!r}"
        return f"the shape of {self.what} was {self.expected!r} when recorded, now {_shape_sig(seen)!r}"


def _py(v):
    return v.item() if isinstance(v, (np.ndarray, np.generic)) and np.ndim(v) == 0 else v


def _shape_sig(value):
    """The shape of a value, or the tuple of shapes of a tuple of arrays."""
    if isinstance(value, (tuple, list)):
        return tuple(np.shape(v) for v in value)
    return np.shape(value)


def _shapes(t):
    return tuple(np.shape(v) for v in t)


def _plain_arrays(x, acc):
    """The plain ndarrays (not Recs) among arguments (through tuples and lists)."""
    t = type(x)
    if t is np.ndarray:
        acc.append(x)
    elif t in (tuple, list):
        for v in x:
            _plain_arrays(v, acc)
    elif t is dict:
        for v in x.values():
            _plain_arrays(v, acc)
    return acc


def _as_tuple(o):
    return () if o is None else o if type(o) is tuple else (o,)


def _write_targets(fn, args, kwargs) -> tuple:
    """The objects a call writes into: its ``out=`` and, for np.copyto, ufunc.at
    and the like, its first argument."""
    targets = _as_tuple(kwargs.get("out"))
    if fn in _WRITES_FIRST or _is_ufunc_at(fn):
        first = args[0] if args else kwargs.get(_WRITES_FIRST.get(fn, "a"))
        targets = targets + (first,)
    return targets


def _refuse_plain_write(what):
    raise RecordError(
        f"jit: {what} would write a recorded value into a plain numpy array created inside the "
        "function; the function keeps its own reference to that array, which the recording cannot "
        "follow, so the replay would silently reuse or freeze its contents. " + _PLAIN_WRITE_FIX[0].upper()
        + _PLAIN_WRITE_FIX[1:])


def _value_shaped(fn, args, kwargs) -> bool:
    """Whether a call's result shape depends on array values."""
    if fn is operator.getitem:
        idx = args[1]
        return any(r.value.dtype == np.bool_ for r in _recs_in(idx if type(idx) is tuple else (idx,)))
    if fn in _VALUE_SHAPED:
        return True
    if fn is np.where:
        return len(args) + len(kwargs) == 1
    if fn in _VALUE_SHAPED_BY_ARGS:
        return bool(_slots_in((args[1:], kwargs), []))
    return False


def _values_in(x) -> list:
    """The values of the Recs among arguments."""
    acc = []

    def visit(v):
        t = type(v)
        if t is Rec:
            acc.append(v.value)
        elif t in (tuple, list):
            for w in v:
                visit(w)
        elif t is dict:
            for w in v.values():
                visit(w)
    visit(x)
    return acc


def _recs_in(x):
    return [v for v in x if type(v) is Rec and isinstance(v.value, np.ndarray)]


class Recorder:
    """Builds the program: instructions over numbered slots."""

    def __init__(self):
        self.n_slots = 0
        # (kind, fn_or_name, target, args, kwargs, out_slot); kind is "call", "method",
        # "setitem", "const" or "guard" (fn a _Guard, target the Rec it checks)
        self.code = []
        self.seen: dict = {}  # pure instruction -> its Rec (common subexpressions)
        self.mutated: set = set()  # slots written in place
        self.value_guarded: set = set()  # slots whose value a guard checks
        self.meta: list = []  # per slot: (type, shape, dtype, strides) of its recorded value

    def new(self, value) -> Rec:
        r = Rec(value, self.n_slots, self)
        self.meta.append((type(value), getattr(value, "shape", None), getattr(value, "dtype", None),
                          getattr(value, "strides", None)))
        self.n_slots += 1
        return r

    def _append(self, ins):
        self.code.append(ins)
        written = _written(ins)
        if written:
            self.mutated.update(written)
            self.value_guarded.clear()  # (the write may reach a guarded value through a view)
            # shared results computed from memory this write may reach are stale
            arrays = [a for a in _values_in(_written_args(ins)) if isinstance(a, np.ndarray)]
            for key, (hit, used) in list(self.seen.items()):
                if any(np.may_share_memory(u, a) for u in used for a in arrays):
                    del self.seen[key]

    def call(self, fn, args, kwargs):
        pure = _pure(fn) and kwargs.get("out") is None
        if pure:
            key = (id(fn), _key(args), _key(kwargs))
            hit = self.seen.get(key)
            if hit is not None and not (set(_slots_in((args, kwargs), [])) & self.mutated):
                return hit[0]
        if any(type(t) is np.ndarray for t in _write_targets(fn, args, kwargs)):
            _refuse_plain_write(f"{_fn_name(fn)}(..., out=...)" if kwargs.get("out") is not None
                                else f"{_fn_name(fn)}(...)")
        out = fn(*_concrete(args), **_concrete(kwargs))
        if type(out) is np.ndarray and any(out is a for a in _plain_arrays((args, kwargs), [])):
            _refuse_plain_write(f"{_fn_name(fn)}(...)")  # a positional out (np.dot(a, b, out))
        if out is None:  # an in-place operation (np.add.at, np.copyto)
            self._append(("call", fn, None, args, kwargs, None))
            return None
        if type(out) in (bool, int):  # a Python value computed from arrays (np.allclose): guarded
            r = self.new(out)
            self._append(("call", fn, None, args, kwargs, r.slot))
            self.code.append(("guard", _Guard("value", out, f"the value of {_fn_name(fn)}(...)"), r, (), {},
                              None))
            return out
        wrapped = self._wrap_root(out)
        if pure and type(wrapped) is Rec:
            self.seen[key] = (wrapped, [a for a in _values_in((args, kwargs)) if isinstance(a, np.ndarray)])
        self._append(("call", fn, None, args, kwargs, wrapped.slot if type(wrapped) is Rec else None))
        if type(wrapped) is Rec and _value_shaped(fn, args, kwargs):
            self.guard_shape(wrapped, _fn_name(fn))
        return wrapped

    def _wrap_root(self, out):
        # arrays, numpy scalars and tuples of them (np.linalg.slogdet) become slots
        return self.new(out) if isinstance(out, (np.ndarray, np.generic, tuple, list)) else out

    def constant(self, c) -> Rec:
        r = self.new(c)
        self._append(("const", c, None, (), {}, r.slot))
        return r

    def method_call(self, obj, name, *args, **kwargs):
        if any(type(t) is np.ndarray for t in _as_tuple(kwargs.get("out"))):
            _refuse_plain_write(f".{name}(..., out=...)")
        out = getattr(obj.value, name)(*_concrete(args), **_concrete(kwargs))
        r = self._wrap_root(out)
        self._append(("method", name, obj, args, kwargs, r.slot if type(r) is Rec else None))
        if type(r) is Rec and (name in _VALUE_SHAPED_METHODS or (name == "repeat" and any(
                type(a) is Rec for a in (*args[:1], kwargs.get("repeats"))))):
            self.guard_shape(r, f".{name}()")
        return r

    def method(self, obj, name, args, kwargs):
        return self.method_call(obj, name, *args, **kwargs)

    def setitem(self, obj, idx, value):
        obj.value[_concrete(idx)] = _concrete(value)
        self._append(("setitem", None, obj, (idx, value), {}, None))

    def guard_shape(self, r: Rec, what: str):
        if isinstance(r.value, (np.ndarray, tuple, list)):
            self.code.append(("guard", _Guard("shape", _shape_sig(r.value), f"the result of {what}",
                                              seq=not isinstance(r.value, np.ndarray)), r, (), {}, None))

    def guard_value(self, r: Rec):
        if r.slot not in self.value_guarded:
            self.value_guarded.add(r.slot)
            self.code.append(("guard", _Guard("value", int(r.value), "a numpy integer slice bound"),
                              r, (), {}, None))


def _written_args(ins) -> tuple:
    """The arguments (Recs among them) an instruction writes into."""
    kind, fn, target, args, kwargs, out = ins
    if kind == "setitem":
        return (target,)
    if kind == "call":
        first = fn in _WRITES_FIRST or _is_ufunc_at(fn)
        return (kwargs.get("out"),) + (args[:1] if first else ())
    if kind == "method":
        return (kwargs.get("out"),) + ((target,) if fn in _MUTATING_METHODS or kwargs.get("inplace") else ())
    return ()


def _written(ins) -> list:
    """The slots an instruction writes into."""
    return _slots_in(_written_args(ins), [])


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
