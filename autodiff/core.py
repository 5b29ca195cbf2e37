"""The engine's core: traces, boxed values, primitives and dispatch.

Every differentiation (one call of `grad`, `jvp`, `vjp`, ...) opens a *trace*
with a fresh, increasing level.  Values that belong to a trace are *boxes*
(`Dual` for forward mode, `Var` for the reverse-mode tape).  A primitive
applied to arguments looks for the box of the highest level among them and
lets that trace process the call; every other argument, including boxes of
lower levels, is a constant to that trace.  The trace calls the primitive again
on the unboxed values, so lower levels process it in turn.  This is the whole
nesting mechanism (Autodidax's interpreter levels, autograd's trace ids): it
makes ``d/dx [x * d/dy (x + y)]`` come out 1, not 2, in every combination of
forward and reverse mode.

This module holds no calculus: derivative rules live in `autodiff.rules`.
"""
from __future__ import annotations

import itertools

import numpy as np

_levels = itertools.count(1)


class Trace:
    """One differentiation.  Inner (later) differentiations get higher levels."""

    __slots__ = ("level", "__weakref__")

    def __init__(self, level: int | None = None):
        self.level = next(_levels) if level is None else level

    def process(self, prim, args, params):  # pragma: no cover - abstract
        raise NotImplementedError

    def write(self, box, idx, value):  # pragma: no cover - abstract
        """``box[idx] = value`` in place (idx normalized by ops.normalize_index)."""
        raise NotImplementedError

    def constant(self, value, like):  # pragma: no cover - abstract
        """``value`` as a box of this trace with a zero derivative, shaped like ``like``."""
        raise NotImplementedError


class Primitive:
    """A named operation: an implementation on plain arrays plus derivative rules.

    ``jvps[i](t, ans, *args, **params)`` returns the tangent contribution of
    argument ``i`` (tangents carry a leading axis of K directions);
    ``jvp(ans, tangents, *args, **params)`` may replace them all at once.
    ``vjps[i](g, ans, *args, **params)`` returns the cotangent of argument ``i``.
    A ``None`` rule means "no rule": using it raises NotImplementedError.
    """

    __slots__ = ("name", "impl", "jvps", "jvp", "vjps", "nondiff", "fused", "complex")

    def __init__(self, name: str, impl, nondiff: bool = False):
        self.name = name
        self.impl = impl
        self.jvps = ()
        self.jvp = None
        self.vjps = ()
        self.nondiff = nondiff
        # whether the rules hold for complex values (see rules.base.complex_rules);
        # a primitive without complex rules refuses complex arguments and results
        self.complex = False
        # optional backend fast path: fused(primals, tangents) -> (ans, tangent) or None
        self.fused = None

    def __call__(self, *args, **params):
        if self.nondiff:
            return self.impl(*[primal_value(a) for a in args], **params)
        top = None
        for a in args:
            if isinstance(a, Box) and (top is None or a._trace.level > top.level):
                top = a._trace
        if top is None:
            return self.impl(*args, **params)
        if list in map(type, args):  # numpy takes a Python list as an array constant
            args = tuple(np.asarray(a) if type(a) is list else a for a in args)
        return top.process(self, args, params)

    def jvp_rule(self, i: int):
        rule = self.jvps[i] if i < len(self.jvps) else None
        if rule is None:
            raise NotImplementedError(f"no jvp rule for '{self.name}' with respect to argument {i}")
        return rule

    def vjp_rule(self, i: int):
        rule = self.vjps[i] if i < len(self.vjps) else None
        if rule is None:
            raise NotImplementedError(f"no vjp rule for '{self.name}' with respect to argument {i}")
        return rule

    def __repr__(self):
        return f"<primitive {self.name}>"


def dtype_of(x):
    """The dtype of an array, a box or a Python scalar."""
    d = getattr(x, "dtype", None)
    return d if d is not None else np.result_type(x)


# A Python float given as an input to differentiate (a learning rate, say) stays
# a Python float inside its box, so numpy keeps it weakly typed and
# ``float32_array * lr`` stays float32, as in the plain run.  The traces show
# derivative rules a 0-d float64 instead (rules may ask for .shape or .dtype)
# and cast what the rules return to the dtype of the value it belongs to.
def is_weak(x) -> bool:
    return type(x) is float


def keep_weak(ans, args):
    """numpy turns arithmetic on Python floats into a float64 scalar, which is
    strongly typed (it would upcast float32 arrays); give it back as a Python
    float when every argument was a Python number."""
    if type(ans) is np.float64 and all(type(a) in (float, int) for a in args):
        return float(ans)
    return ans


def as_rule_arg(x):
    return np.float64(x) if type(x) is float else x


def match_dtype(t, like):
    """``t`` with the dtype of ``like`` (a tangent or cotangent has its primal's dtype)."""
    d = getattr(like, "dtype", None)
    return t if d is None or getattr(t, "dtype", d) == d else t.astype(d)


def is_complex(x) -> bool:
    """Whether x (an array, a box or a Python number) holds complex numbers."""
    d = getattr(x, "dtype", None)
    return d.kind == "c" if d is not None else type(x) is complex


def refuse_complex(prim, ans, args):
    """A primitive without complex rules (``prim.complex`` false) applied to a
    complex argument, or giving a complex result, raises NotImplementedError
    naming it, rather than differentiate it with real-valued conventions."""
    if is_complex(ans) or any(map(is_complex, args)):
        raise NotImplementedError(
            f"'{prim.name}' has no derivative rule for complex values (the complex functions with rules "
            "are listed in docs/design.md); apply it to the real and imaginary parts (np.real, np.imag), "
            "or to .primal for a constant")


def primal_value(x):
    """Strip every level of boxing: the plain array underneath."""
    while isinstance(x, Box):
        x = x._inner
    return x


def _refuse(what, fix):
    def method(self, *args, **kwargs):
        raise TypeError(
            f"{what} on a {type(self).__name__} would silently drop its derivative; {fix}"
        )
    return method


class Box:
    """A value belonging to a trace: the part that needs no numpy vocabulary.

    Its shape and dtype are the primal's; comparisons and ``bool`` act on the
    primal.  Conversions that numpy cannot hook (``np.asarray``, ``float``,
    ``.item()``) are refused with an error that names the fix.  Operators,
    numpy's protocols and ndarray methods are `autodiff.arraybox.ArrayBox`'s.
    """

    __slots__ = ("_trace",)
    __array_priority__ = 1000.0

    @property
    def _inner(self):  # the value one level down
        raise NotImplementedError

    # -- array attributes (from the primal) --------------------------------
    shape = property(lambda self: np.shape(self._inner))
    dtype = property(lambda self: dtype_of(self._inner))
    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: int(np.prod(self.shape)))

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    # -- comparisons act on the primal --------------------------------------
    __lt__ = lambda s, o: primal_value(s) < primal_value(o)
    __le__ = lambda s, o: primal_value(s) <= primal_value(o)
    __gt__ = lambda s, o: primal_value(s) > primal_value(o)
    __ge__ = lambda s, o: primal_value(s) >= primal_value(o)
    __eq__ = lambda s, o: primal_value(s) == primal_value(o)
    __ne__ = lambda s, o: primal_value(s) != primal_value(o)
    __hash__ = None
    __bool__ = lambda s: bool(primal_value(s))

    # -- conversions numpy cannot hook: refuse loudly -------------------------
    __array__ = _refuse("np.asarray/np.array (or writing it into a plain array: plain[i] = x)",
                        "build arrays with np.stack or np.concatenate; allocate arrays you write into "
                        "from a traced value (np.zeros_like(x), x.copy()); or take .primal / "
                        "autodiff.stop_gradient(x) if you mean a constant")
    __float__ = _refuse("float() (or writing it into a plain array: plain[i] = x, plain.fill(x))",
                        "use .primal or autodiff.stop_gradient(x) for a constant, or build the array "
                        "from traced values (np.stack, np.where, np.full_like(traced, x))")
    __int__ = _refuse("int()", "use .primal or autodiff.stop_gradient(x)")
    __complex__ = _refuse("complex()", "use .primal")
    item = _refuse(".item()", "use .primal or autodiff.stop_gradient(x)")
    tolist = _refuse(".tolist()", "use .primal or autodiff.stop_gradient(x)")

    def __format__(self, spec):
        """``f"{loss:.3f}"`` formats the primal number: printing drops nothing
        from the computation.  A format spec on an array is numpy's error, with the fix."""
        v = primal_value(self)
        if not spec:
            return str(self)
        if np.ndim(v) == 0:
            return format(v.item() if hasattr(v, "item") else v, spec)
        raise TypeError(f"format spec {spec!r} on a {type(self).__name__} of shape {np.shape(v)}: "
                        "format its elements, or np.array2string(x.primal, ...) for the values")

    def __reduce_ex__(self, protocol):
        raise TypeError(
            f"pickling a {type(self).__name__} would drop its derivative (its trace cannot be "
            "pickled); pickle .primal (and .tangents), or use copy.deepcopy inside the computation"
        )
