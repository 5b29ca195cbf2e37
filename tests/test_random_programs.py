"""Differential test on random straight-line numpy programs of about 20 ops.

A seeded generator (numpy's default_rng, no hypothesis) writes plain numpy user
code -- ``v3 = np.maximum(v1, np.where(MASK, v1, x2))``, ``v7 = np.linalg.det(x1)``,
``v9 = v4[[0, 2, 0]]`` -- over a few float64 inputs of small random shapes, and
runs it as source text, so a failure prints a program that can be pasted.
For each program, with L = sum_k <W_k, out_k> for fixed random weights W_k:

* primal values: every line, evaluated by numpy on the engine's values of its
  operands, equals the engine's value (1e-12); the loss of reverse mode equals
  that of forward mode;
* reverse mode <grad L, v> == forward mode (jvp of L along v) == central
  differences of L along v (eps 1e-6);
* forward-over-reverse (autodiff.hvp) == central differences of grad L.

Tolerances are relative to scale, plus what rounding and truncation can explain,
measured rather than guessed: the noise of L, grad L and the jvp one step of 1e-13
away, and the truncation error of each difference from the same difference at
twice the step.

Special points that found real bugs appear by design, not by chance: inputs with
exact zeros (fed to np.prod and np.abs), inputs with the maximum and the minimum
duplicated (ties in np.maximum and in max/min reductions), exactly singular
matrices ([[1, 2], [2, 4]]-like, [[0.]], rank-deficient 3x3) fed to det, ties
with clip bounds, exponents exactly 0, and ddof.  Each is a point where the
function is either smooth (prod and det are polynomials) or where the engine's
documented convention equals what central differences measure (a 2-way tie of
maximum/max shares the derivative evenly, abs'(0) = 0).

Kinks are tracked, never guessed: each kink op (abs, maximum, max, sort, where on
a data-dependent condition, norm, ...) records a signature (sign pattern, winner
mask, order and ties) that is evaluated on the plain runs at x and x +- k eps v.
A program whose finite differences would step over a kink (a near tie), or whose
kinks at x are not of the kind central differences can measure (a tie of three, a
tie fed by another tie, a tie in sort), is regenerated -- counted, never silently
skipped; the test asserts that at least 95% of seeds were checked.  For second
order, a direction is sought along which no kink moves (switching off the inputs
that feed one); at least 90% of programs must get one.

Op families can be switched off in ENABLED.  ``python tests/test_random_programs.py
--help`` runs a survey by family (see main()).
"""
from __future__ import annotations

import copy
import re
import traceback
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pytest

from autodiff import grad, hvp, jvp, value_and_grad

EPS = 1e-6             # central differences, on inputs of scale ~1
DELTA = 1e-13          # a step that changes only the rounding: measures the noise in L and grad
MAX_SIZE = 48          # elements per intermediate
MAX_ABS = 1e3          # |value| of any intermediate
MAX_ATTEMPTS = 30      # regenerations of one seed before it counts as unchecked
NAME = re.compile(r"\b[xv]\d+\b")
NS = {"np": np, "copy": copy}  # what program source sees


# -- small helpers -------------------------------------------------------------------------

def lit(a) -> str:
    """Source text for a constant array (exact: Python float repr round-trips)."""
    a = np.asarray(a)
    if a.ndim == 0:
        return f"np.array({a.item()!r})"
    return f"np.array({a.tolist()!r})"


def fmt_num(x: float) -> str:
    return repr(float(x))


def _size(shape) -> int:
    return int(np.prod(shape)) if shape else 1


def _bshape(*shapes):
    try:
        s = np.broadcast_shapes(*shapes)
    except ValueError:
        return None
    return s if _size(s) <= MAX_SIZE and len(s) <= 3 else None


def _has_zero(v) -> bool:
    return bool(np.any(np.asarray(v) == 0.0))


def _has_dups(v) -> bool:
    v = np.asarray(v).ravel()
    return v.size >= 2 and np.unique(v).size < v.size


def _ok_value(v) -> bool:
    if not isinstance(v, (np.ndarray, np.floating)):
        return False
    v = np.asarray(v)
    return (v.dtype == np.float64 and 1 <= v.size <= MAX_SIZE and v.ndim <= 3
            and bool(np.all(np.isfinite(v))) and float(np.max(np.abs(v))) <= MAX_ABS)


# -- the generator state -----------------------------------------------------------------------

@dataclass
class Kink:
    """A point of non-differentiability; ``sig`` is source evaluated on all variables.

    kind: 'tie'    elementwise sign pattern (maximum, minimum, clip, abs): a tie at x is
                   fine to first order (even split / abs'(0) = 0 equal central differences);
          'ext'    winner mask of a max/min reduction over ``axis`` (2-way ties fine);
          'strict' anything else (sort order, where's condition, unique's grouping, a
                   norm's sign pattern): must not change at x +- eps v at all.
    """
    id: int
    kind: str
    sig: str
    axis: tuple | None
    upstream: frozenset       # kinks upstream of this one
    inputs: frozenset         # inputs this one depends on


class Gen:
    def __init__(self, rng):
        self.rng = rng
        self.env: dict = {}
        self.pool: list = []
        self.uses = Counter()
        self.lines: list = []
        self.kinks: list = []
        self.anc: dict = {}       # name -> kinks upstream
        self.inp: dict = {}       # name -> inputs upstream
        self.tags: dict = {}      # input name -> 'zeros' | 'dups' | 'singular' | 'generic'
        self.events = Counter()   # special situations that occurred (coverage)
        self.families = Counter()
        self.gen_errors = Counter()
        self.n = 0

    # random choices
    def choice(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def coin(self, p=0.5) -> bool:
        return bool(self.rng.random() < p)

    def num(self, lo=-2.0, hi=2.0, nd=2) -> str:
        return fmt_num(round(float(self.rng.uniform(lo, hi)), nd))

    def const(self, shape, scale=1.0) -> str:
        return lit(np.round(self.rng.standard_normal(shape) * scale, 2))

    # variables
    def val(self, n):
        return self.env[n]

    def shape(self, n):
        return np.shape(self.env[n])

    def ev(self, expr):
        return eval(expr, NS, {n: self.env[n] for n in set(NAME.findall(expr))})

    def pick(self, pred=None, prefer=None, exclude=()):
        names = [n for n in self.pool if n not in exclude and (pred is None or pred(self.env[n]))]
        if not names:
            return None
        w = np.array([(4.0 if self.uses[n] == 0 else 1.0) * (1.0 + i / len(names))
                      for i, n in enumerate(names)])
        if prefer is not None:
            w *= np.array([8.0 if prefer(n) else 1.0 for n in names])
        return names[int(self.rng.choice(len(names), p=w / w.sum()))]

    def add_input(self, name, value, tag):
        self.env[name] = value
        self.pool.append(name)
        self.anc[name] = frozenset()
        self.inp[name] = frozenset([name])
        self.tags[name] = tag

    def emit(self, expr, kink=None, events=()):
        deps = sorted(set(NAME.findall(expr)))
        try:
            with np.errstate(all="ignore"):
                value = eval(expr, NS, {n: self.env[n] for n in deps})
        except Exception as e:  # a generator choice numpy refuses: count it, try another op
            self.gen_errors[type(e).__name__] += 1
            return False
        if isinstance(value, float) and not isinstance(value, np.floating):
            return False
        if not _ok_value(value):
            return False
        name = f"v{self.n}"
        self.n += 1
        upstream = frozenset().union(*[self.anc[d] for d in deps])
        inputs = frozenset().union(*[self.inp[d] for d in deps])
        anc = upstream
        if kink is not None:
            kind, sig, axis = kink
            k = Kink(len(self.kinks), kind, sig, axis, upstream, inputs)
            self.kinks.append(k)
            anc = anc | {k.id}
        self.anc[name] = anc
        self.inp[name] = inputs
        for d in deps:
            self.uses[d] += 1
        self.env[name] = value
        self.pool.append(name)
        self.lines.append(f"{name} = {expr}")
        self.events.update(events)
        return True

    # operand helpers
    def partner(self, a, same_shape=False):
        """A second operand broadcast-compatible with variable a (a variable, a Python
        float or a constant array)."""
        sa = self.shape(a)
        if same_shape:
            cands = [n for n in self.pool if n != a and self.shape(n) == sa]
        else:
            cands = [n for n in self.pool if n != a and _bshape(sa, self.shape(n)) is not None]
        r = self.rng.random()
        if cands and r < 0.75:
            return self.pick(lambda v: True, exclude=[n for n in self.pool if n not in cands])
        if not same_shape and r < 0.87:
            return self.num()
        k = 0 if same_shape else int(self.rng.integers(0, len(sa) + 1))
        shp = tuple(1 if (not same_shape and self.coin(0.3)) else s for s in sa[k:])
        return self.const(shp)

    def pos(self, a):
        """An expression of a that is positive (>= 0.2)."""
        v = self.val(a)
        if np.min(v) > 0.2:
            return a
        return self.choice([f"({a} * {a} + 0.5)", f"np.exp(np.tanh({a}))"])

    def nonzero(self, b):
        """b itself if safely away from 0, else a positive expression of b."""
        v = self.val(b) if NAME.fullmatch(b) else self.ev(b)
        return b if np.min(np.abs(v)) > 0.3 else f"(1.0 + {b} * {b})"

    def bounded(self, a, lim):
        return a if np.max(np.abs(self.val(a))) <= lim else f"np.tanh({a})"

    def axis_arg(self, nd, allow_tuple=True, allow_none=True):
        """(source for axis=..., normalized tuple of axes)."""
        opts = []
        if allow_none:
            opts.append(None)
        opts += list(range(-nd, nd))
        if allow_tuple and nd >= 2:
            opts.append("tuple")
        ax = self.choice(opts)
        if ax is None:
            return "None", tuple(range(nd))
        if ax == "tuple":
            k = int(self.rng.integers(2, nd + 1))
            axes = tuple(sorted(self.rng.choice(nd, size=k, replace=False).tolist()))
            return repr(axes), axes
        return repr(ax), (ax % nd,)

    def square(self, n=None):
        """(expression of a square matrix built from the variables, n) or None."""
        sq = lambda v: np.ndim(v) == 2 and v.shape[0] == v.shape[1] and (n is None or v.shape[0] == n)
        m = self.pick(sq)
        if m is not None and self.coin(0.7):
            return m, self.shape(m)[0]
        need = 4 if n is None else n * n
        a = self.pick(lambda v: np.size(v) >= need)
        if a is None:
            return (m, self.shape(m)[0]) if m is not None else None
        k = n or (3 if np.size(self.val(a)) >= 9 and self.coin() else 2)
        if np.ndim(self.val(a)) == 1 and np.size(self.val(a)) == k * k:
            return f"{a}.reshape({k}, {k})", k
        return f"np.reshape(np.ravel({a})[:{k * k}], ({k}, {k}))", k

    def wellcond(self, m, k):
        """m itself when well conditioned, else m plus a dominant diagonal."""
        v = self.ev(m)
        if np.linalg.cond(v) < 50:
            return m
        c = round(float(np.abs(v).sum(axis=1).max()) + 1.0, 1)
        return f"({m} + {fmt_num(c)} * np.eye({k}))"


# -- inputs: generic values and the designed special points ---------------------------------------

SHAPES = [(), (3,), (4,), (2, 2), (2, 3), (3, 2), (3, 3), (1, 3), (2, 1, 3)]
SPECIAL_SHAPES = [(3,), (4,), (5,), (2, 2), (2, 3), (3, 3), (2, 4)]


def make_input(rng, kind):
    """(value, respect) where respect(v) maps a direction to one that keeps the point's
    special structure (zeros stay zero, duplicated values stay tied)."""
    if kind == "singular":
        n = int(rng.choice([1, 2, 2, 3]))
        if n == 1:
            return np.array([[0.0]]), lambda v: v
        if n == 2:
            if rng.random() < 0.3:
                return np.array([[1.0, 2.0], [2.0, 4.0]]), lambda v: v
            row = rng.integers(-4, 5, size=2) / 2.0
            while not row.any():
                row = rng.integers(-4, 5, size=2) / 2.0
            k = float(rng.choice([2.0, -0.5, 1.5, 3.0]))
            return np.stack([row, k * row]) if rng.random() < 0.5 else np.stack([row, k * row]).T, lambda v: v
        u, w = rng.integers(-3, 4, size=(2, 3)) / 2.0
        while not u.any() or not w.any():
            u, w = rng.integers(-3, 4, size=(2, 3)) / 2.0
        if rng.random() < 0.5:
            return np.outer(u, w), lambda v: v                           # rank 1: det' = 0, det'' != 0
        r1, r2 = rng.integers(-3, 4, size=(2, 3)) / 2.0
        return np.stack([r1, r2, r1 + 2.0 * r2])[rng.permutation(3)], lambda v: v   # rank <= 2, exact
    shape = SHAPES[int(rng.integers(len(SHAPES)))] if kind == "generic" else \
        SPECIAL_SHAPES[int(rng.integers(len(SPECIAL_SHAPES)))]
    x = rng.uniform(-1.5, 1.5, size=shape)
    if kind == "generic":
        return x, lambda v: v
    flat = x.reshape(-1)
    if kind == "zeros":
        k = int(rng.choice([1, 1, 2]))
        zs = rng.choice(flat.size, size=k, replace=False)
        flat[zs] = 0.0

        def respect(v):
            v = np.array(v)
            v.reshape(-1)[zs] = 0.0
            return v
        return x, respect
    # dups: the maximum and the minimum duplicated, in the same row when there are rows
    pairs = []
    for extreme in (np.argmax, np.argmin):
        i = int(extreme(flat))
        if x.ndim == 2 and rng.random() < 0.6:
            r, c = divmod(i, x.shape[1])
            others = [r * x.shape[1] + j for j in range(x.shape[1]) if j != c]
        else:
            others = [j for j in range(flat.size) if j != i]
        others = [j for j in others if all(j not in p for p in pairs)]
        if not others:
            continue
        j = int(rng.choice(others))
        flat[j] = flat[i]
        pairs.append((i, j))

    def respect(v):
        v = np.array(v)
        f = v.reshape(-1)
        for i, j in pairs:
            f[j] = f[i]
        return v
    return x, respect


# -- op families ---------------------------------------------------------------------------------
# Each returns an expression (str), or (expr, kink, events), or None when it does not apply.

def fam_arith(g):
    a = g.pick()
    form = g.choice(["+", "-", "*", "neg", "scale", "rsub", "np.add", "np.subtract", "np.multiply", "pos"])
    if form in ("+", "-", "*"):
        return f"{a} {form} {g.partner(a)}"
    if form == "neg":
        return f"-{a}"
    if form == "pos":
        return f"np.positive({a}) + {g.num()}"
    if form == "scale":
        return f"{g.num()} * {a}"
    if form == "rsub":
        return f"{g.num()} - {a}"
    return f"{form}({a}, {g.partner(a)})"


def fam_div(g):
    a = g.pick()
    form = g.choice(["a/b", "a/c", "c/b", "np.divide", "recip", "a/b-same"])
    if form == "a/c":
        return f"{a} / {g.choice(['2.5', '-0.75', '3.0', '0.5'])}"
    b = g.partner(a)
    try:
        b = g.nonzero(b)
    except Exception:
        return None
    if form == "a/b":
        return f"{a} / {b}"
    if form == "np.divide":
        return f"np.divide({a}, {b})"
    if form == "c/b":
        return f"{g.num()} / {g.nonzero(a)}"
    if form == "recip":
        return f"np.reciprocal({g.nonzero(a)})"
    return f"{a} / {g.nonzero(a)}"


def fam_power(g):
    a = g.pick()
    form = g.choice(["int", "square", "real", "array_exp", "rpow", "zero_exp", "np.power"])
    if form == "int":
        return f"{g.bounded(a, 3.0)} ** {g.choice(['2', '3', '2.0', '1'])}"
    if form == "square":
        return f"np.square({g.bounded(a, 5.0)})"
    if form == "real":
        return f"{g.pos(a)} ** {g.choice(['0.5', '1.5', '-1.3', '2.5', '-0.5'])}"
    if form == "zero_exp":  # exponent exactly 0: derivative in the base is exactly 0
        return f"{a} ** 0.0 + {a}", None, ["pow_zero_exponent"]
    if form == "rpow":
        return f"{g.choice(['2.0', '0.5', '1.7'])} ** {g.bounded(a, 3.0)}"
    e = g.partner(a)
    if e[0].isdigit() or e[0] == "-":
        e = g.num(-2, 2)
    base = g.pos(a)
    fn = "np.power({}, {})" if form == "np.power" else "{} ** {}"
    try:
        ev = g.ev(e)
    except Exception:
        return None
    if np.max(np.abs(ev)) > 3:
        e = f"np.tanh({e})"
    return fn.format(base, e)


def fam_explog(g):
    a = g.pick()
    form = g.choice(["exp", "log", "log1p", "expm1", "sqrt", "exp_tanh"])
    if form == "exp":
        return f"np.exp({g.bounded(a, 4.0)})"
    if form == "exp_tanh":
        return f"np.exp(2.0 * np.tanh({a}))"
    if form == "log":
        return f"np.log({g.pos(a)})"
    if form == "log1p":
        v = g.val(a)
        return f"np.log1p({a})" if np.min(v) > -0.8 else f"np.log1p({a} * {a})"
    if form == "expm1":
        return f"np.expm1({g.bounded(a, 4.0)})"
    v = g.val(a)
    return f"np.sqrt({a})" if np.min(v) > 0.05 else f"np.sqrt({a} * {a} + 0.1)"


def fam_trig(g):
    a = g.pick()
    f = g.choice(["tanh", "sin", "cos", "arctan"])
    return f"np.{f}({a})"


def fam_elementwise_extra(g):
    """Elementwise functions beyond the core set: the rest of numpy_api's ufuncs."""
    a = g.pick()
    v = g.val(a)
    form = g.choice(["sinh", "cosh", "tan", "arcsin", "arccos", "arctanh", "exp2", "log2", "log10",
                     "logaddexp", "sign", "floor", "rint", "builtin_abs_pow", "method_T"])
    if form in ("sinh", "cosh"):
        return f"np.{form}({g.bounded(a, 3.0)})"
    if form == "tan":
        return f"np.tan({a})" if np.max(np.abs(v)) < 1.2 else f"np.tan(np.tanh({a}))"
    if form in ("arcsin", "arccos", "arctanh"):
        return f"np.{form}({a})" if np.max(np.abs(v)) < 0.9 else f"np.{form}(0.9 * np.tanh({a}))"
    if form == "exp2":
        return f"np.exp2({g.bounded(a, 4.0)})"
    if form in ("log2", "log10"):
        return f"np.{form}({g.pos(a)})"
    if form == "logaddexp":
        return f"np.logaddexp({a}, {g.partner(a)})"
    if form in ("sign", "floor", "rint"):
        # piecewise constant: derivative 0, and a strict kink where it jumps
        shift = g.num(-1, 1)
        e = f"(2.0 * {a} + {shift})"
        return f"np.{form}({e}) * {a} + {a}", ("strict", f"np.{form}({e})", None), []
    if form == "builtin_abs_pow":
        return f"pow({g.pos(a)}, 2.5)"
    return f"{a}.T * 1.5" if np.ndim(v) >= 2 else f"{a} * 1.5"


def fam_abs(g):
    a = g.pick(prefer=lambda n: _has_zero(g.val(n)))
    form = g.choice(["np.abs", "abs", "np.absolute", "method"])
    e = {"np.abs": f"np.abs({a})", "abs": f"abs({a})", "np.absolute": f"np.absolute({a})",
         "method": f"{a}.__abs__()"}[form]
    return e, ("tie", f"np.sign({a})", None), ["abs_zero"] if _has_zero(g.val(a)) else []


def fam_maxmin(g):
    fn = g.choice(["np.maximum", "np.minimum"])
    form = g.choice(["pair", "pair", "relu", "where_tie", "self_tie", "value_tie"])
    if form == "value_tie":  # positions holding equal values, with different tangents
        a = g.pick(lambda v: _has_dups(v) or _has_zero(v) and np.size(v) >= 2,
                   prefer=lambda n: g.tags.get(n) in ("dups", "zeros"))
        if a is None:
            return None
        flat = np.ravel(g.val(a))
        vals, inv, counts = np.unique(flat, return_inverse=True, return_counts=True)
        dup = np.flatnonzero(counts >= 2)
        if dup.size:
            idx = np.flatnonzero(inv == dup[0])[:2]
            i, j = int(idx[0]), int(idx[1])
            p, q = (int(t) for t in g.rng.integers(flat.size, size=2))
            A, B = f"np.ravel({a})[[{i}, {p}]]", f"np.ravel({a})[[{j}, {q}]]"
        else:  # a single exact zero: tie with a scaled copy of itself
            A, B = a, f"(2.0 * {a})"
        return f"{fn}({A}, {B})", ("tie", f"np.sign({A} - {B})", None), ["tie_maximum"]
    a = g.pick(prefer=lambda n: _has_zero(g.val(n)))
    if form == "pair":
        b = g.partner(a)
        if NAME.fullmatch(b) and np.any(np.asarray(g.val(a)) == np.asarray(g.val(b))):
            ev = ["tie_maximum"]
        else:
            ev = []
        return f"{fn}({a}, {b})", ("tie", f"np.sign({a} - {b})", None), ev
    if form == "relu":
        return f"{fn}({a}, 0.0)", ("tie", f"np.sign({a})", None), ["tie_maximum"] if _has_zero(g.val(a)) else []
    if form == "self_tie":
        return f"{fn}({a}, {a}) * 2.0", ("tie", f"np.sign({a} - {a})", None), ["tie_structural"]
    b = g.partner(a)
    sa = g.shape(a)
    mask = g.rng.random(sa) < 0.5
    B = f"np.where({lit(mask)}, {a}, {b})"
    return f"{fn}({a}, {B})", ("tie", f"np.sign({a} - {B})", None), ["tie_structural"]


def fam_where(g):
    a = g.pick()
    b = g.partner(a)
    form = g.choice(["mask", "mask", "cond", "leaky"])
    if form == "mask":
        sa = _bshape(g.shape(a), g.ev(b).shape if NAME.fullmatch(b) or b.startswith("np.") else ())
        if sa is None:
            return None
        mshape = sa[int(g.rng.integers(0, len(sa) + 1)):] if sa else ()
        mask = g.rng.random(mshape) < 0.5
        return f"np.where({lit(mask)}, {a}, {b})"
    v = np.ravel(g.val(a))
    if form == "leaky":
        return f"np.where({a} > 0, {a}, 0.1 * {a})", ("strict", f"np.sign({a})", None), []
    t = round(float(g.rng.choice(v)) + float(g.rng.uniform(-0.1, 0.1)), 2)
    return f"np.where({a} > {fmt_num(t)}, {a}, {b})", ("strict", f"({a} > {fmt_num(t)})", None), []


def _reduce_call(g, fname, a, method_ok=True):
    nd = np.ndim(g.ev(a))
    ax_src, axes = g.axis_arg(nd)
    kd = g.coin(0.3)
    kw = "" if ax_src == "None" and g.coin() else f", axis={ax_src}"
    kw += ", keepdims=True" if kd else ""
    if method_ok and g.coin(0.3):
        return f"{a}.{fname}({kw[2:]})", axes
    return f"np.{fname}({a}{kw})", axes


def fam_sum_mean(g):
    a = g.pick(lambda v: np.ndim(v) >= 1)
    if a is None:
        return None
    fname = g.choice(["sum", "mean", "sum"])
    if g.coin(0.15):
        return f"np.add.reduce({a}, axis={g.choice(['0', '-1'])})"
    return _reduce_call(g, fname, a)[0]


def fam_prod(g):
    a = g.pick(lambda v: np.ndim(v) >= 1 and np.size(v) <= 12, prefer=lambda n: _has_zero(g.val(n)))
    if a is None:
        return None
    v = g.val(a)
    e = a if np.max(np.abs(v)) <= 2.0 else f"np.tanh({a})"
    zeros = int(np.sum(np.asarray(g.ev(e)) == 0.0))
    ev = ["prod_zero"] if zeros == 1 else (["prod_two_zeros"] if zeros >= 2 else [])
    if g.coin(0.15):
        return f"np.multiply.reduce({e}, axis=0)", None, ev
    if NAME.fullmatch(e):
        return _reduce_call(g, "prod", e)[0], None, ev
    return _reduce_call(g, "prod", e, method_ok=False)[0], None, ev


def fam_max_reduce(g):
    a = g.pick(lambda v: np.ndim(v) >= 1, prefer=lambda n: _has_dups(g.val(n)))
    if a is None:
        return None
    fname = g.choice(["max", "min", "amax", "amin"])
    real = {"amax": "max", "amin": "min"}.get(fname, fname)
    if g.coin(0.2):  # structural ties: each element twice
        A = f"np.concatenate([{a}, {a}], axis=0)"
        e = f"np.{real}({A})"
        return e, ("ext", f"({A} == np.{real}({A}, keepdims=True))", tuple(range(np.ndim(g.val(a))))), \
            ["tie_structural"]
    if g.coin(0.15):
        uf = "np.maximum" if real == "max" else "np.minimum"
        e, axes = f"{uf}.reduce({a}, axis=0)", (0,)
    else:
        e, axes = _reduce_call(g, fname, a, method_ok=fname in ("max", "min"))
    v = np.asarray(g.val(a))
    ext = getattr(np, real)(v, axis=axes, keepdims=True)
    ties = bool(np.any(np.sum(v == ext, axis=axes) >= 2))
    return e, ("ext", f"({a} == np.{real}({a}, axis={axes!r}, keepdims=True))", axes), \
        ["tie_reduce"] if ties else []


def fam_var_std(g):
    a = g.pick(lambda v: np.size(v) >= 2)
    if a is None:
        return None
    fname = g.choice(["var", "std"])
    nd = np.ndim(g.val(a))
    ax_src, axes = g.axis_arg(nd)
    n = _size([g.shape(a)[i] for i in axes])
    ddof = int(g.rng.choice([0, 1])) if n >= 2 else 0
    kd = g.coin(0.3)
    kw = f", axis={ax_src}" + (f", ddof={ddof}" if ddof else "") + (", keepdims=True" if kd else "")
    e = f"{a}.{fname}({kw[2:]})" if g.coin(0.3) else f"np.{fname}({a}{kw})"
    vv = np.var(np.asarray(g.val(a)), axis=axes)
    if fname == "std" and np.min(vv) < 1e-3:  # sqrt at 0 (a single element along the axis)
        return None
    return e, None, ["ddof"] if ddof else []


def fam_cumsum(g):
    a = g.pick(lambda v: np.ndim(v) >= 1)
    if a is None:
        return None
    nd = np.ndim(g.val(a))
    form = g.choice(["axis", "flat", "method", "accumulate"])
    k = int(g.rng.integers(-nd, nd))
    if form == "flat":
        return f"np.cumsum({a})"
    if form == "method":
        return f"{a}.cumsum(axis={k})"
    if form == "accumulate":
        return f"np.add.accumulate({a}, axis={k})"
    return f"np.cumsum({a}, axis={k})"


def _factorizations(n):
    out = [(n,)]
    for d in range(2, n):
        if n % d == 0:
            out.append((d, n // d))
            for e in range(2, n // d):
                if (n // d) % e == 0:
                    out.append((d, e, n // d // e))
    return out


def fam_shape(g):
    a = g.pick()
    sa = g.shape(a)
    nd = len(sa)
    form = g.choice(["reshape", "reshape_m1", "transpose", "T", "swapaxes", "moveaxis", "expand_dims",
                     "squeeze", "ravel", "flatten", "broadcast_to", "atleast_2d"])
    if form in ("reshape", "reshape_m1"):
        shp = g.choice(_factorizations(_size(sa)))
        if form == "reshape_m1" and len(shp) >= 1:
            i = int(g.rng.integers(len(shp)))
            shp = tuple(-1 if j == i else s for j, s in enumerate(shp))
            return f"{a}.reshape{shp!r}" if len(shp) > 1 else f"{a}.reshape(-1)"
        return f"np.reshape({a}, {shp!r})"
    if form == "transpose" and nd >= 2:
        perm = tuple(g.rng.permutation(nd).tolist())
        return f"np.transpose({a}, {perm!r})" if g.coin() else f"{a}.transpose()"
    if form == "T" and nd >= 2:
        return f"{a}.T"
    if form == "swapaxes" and nd >= 2:
        i, j = g.rng.choice(nd, 2, replace=False).tolist()
        return f"np.swapaxes({a}, {i}, {j - nd})"
    if form == "moveaxis" and nd >= 2:
        return f"np.moveaxis({a}, {int(g.rng.integers(nd))}, {int(g.rng.integers(-nd, nd))})"
    if form == "expand_dims":
        return f"np.expand_dims({a}, {int(g.rng.integers(-nd - 1, nd + 1))})"
    if form == "squeeze" and 1 in sa:
        return f"np.squeeze({a})" if g.coin() else f"{a}.squeeze({sa.index(1)})"
    if form == "ravel":
        return f"np.ravel({a})" if g.coin() else f"{a}.ravel()"
    if form == "flatten":
        return f"{a}.flatten()"
    if form == "broadcast_to":
        if 1 in sa and g.coin():
            shp = tuple(3 if s == 1 else s for s in sa)
        elif nd < 3:
            shp = (2,) + sa
        else:
            return None
        return f"np.broadcast_to({a}, {shp!r})"
    if form == "atleast_2d":
        return f"np.atleast_2d({a})"
    return None


def fam_join(g):
    a = g.pick()
    sa = g.shape(a)
    nd = len(sa)
    form = g.choice(["concatenate", "stack", "vstack", "hstack", "pad", "pad", "split"])
    same = [n for n in g.pool if g.shape(n) == sa]
    b = g.pick(exclude=[n for n in g.pool if n not in same]) if g.coin(0.8) else a
    if form == "concatenate" and nd >= 1:
        k = int(g.rng.integers(-nd, nd))
        cands = [n for n in g.pool if len(g.shape(n)) == nd
                 and all(s == t for i, (s, t) in enumerate(zip(sa, g.shape(n))) if i != k % nd)]
        c = g.pick(exclude=[n for n in g.pool if n not in cands])
        return f"np.concatenate([{a}, {c}], axis={k})" if k != 0 or g.coin() else f"np.concatenate(({a}, {c}))"
    if form == "stack":
        return f"np.stack([{a}, {b}], axis={int(g.rng.integers(-nd - 1, nd + 1))})"
    if form == "vstack" and nd <= 2:
        return f"np.vstack([{a}, {b}])"
    if form == "hstack" and nd <= 2:
        return f"np.hstack([{a}, {b}])"
    if form == "pad" and nd >= 1:
        width = [(int(g.rng.integers(0, 2)), int(g.rng.integers(0, 2))) for _ in range(nd)]
        if g.coin(0.3):
            return f"np.pad({a}, 1)"
        cv = "" if g.coin() else f", constant_values={g.num()}"
        return f"np.pad({a}, {width!r}{cv})"
    if form == "split" and nd >= 1:
        k = int(g.rng.integers(nd))
        n = sa[k]
        parts = [p for p in (2, 3) if n % p == 0]
        if parts:
            p = g.choice(parts)
            return f"np.split({a}, {p}, axis={k})[{int(g.rng.integers(p))}]"
        if n >= 2:
            return f"np.split({a}, [1], axis={k})[{int(g.rng.integers(2))}]"
    return None


def _slice_src(n, rng):
    forms = ["int", "slice", "colon", "rev"]
    f = forms[int(rng.integers(len(forms)))]
    if f == "int":
        return str(int(rng.integers(-n, n)))
    if f == "colon":
        return ":"
    if f == "rev":
        return "::-1"
    lo = int(rng.integers(0, n))
    hi = int(rng.integers(lo + 1, n + 1))
    step = int(rng.choice([1, 1, 2]))
    return f"{lo}:{hi}" + (f":{step}" if step != 1 else "")


def fam_index_basic(g):
    a = g.pick(lambda v: np.ndim(v) >= 1)
    if a is None:
        return None
    sa = g.shape(a)
    parts = [_slice_src(n, g.rng) for n in sa[:int(g.rng.integers(1, len(sa) + 1))]]
    r = g.rng.random()
    if r < 0.15:
        parts = ["..."] + parts[1:] if len(parts) < len(sa) else ["...", parts[-1]]
    elif r < 0.25:
        parts.insert(int(g.rng.integers(len(parts) + 1)), "None")
    return f"{a}[{', '.join(parts)}]"


def fam_index_adv(g):
    a = g.pick(lambda v: np.ndim(v) >= 1)
    if a is None:
        return None
    sa = g.shape(a)
    nd = len(sa)
    form = g.choice(["list", "list_axis", "two", "mask", "mask0", "mixed", "take", "take_flat",
                     "take_along", "negative"])
    m = int(g.rng.integers(1, 5))
    ids = lambda n, k=m: g.rng.integers(0, n, size=k).tolist()   # duplicates on purpose
    if form == "list":
        return f"{a}[{ids(sa[0])!r}]"
    if form == "negative":
        return f"{a}[{[-1 - i for i in ids(sa[0])]!r}]"
    if form == "list_axis" and nd >= 2:
        k = int(g.rng.integers(1, nd))
        return f"{a}[{', '.join([':'] * k)}, {ids(sa[k])!r}]"
    if form == "two" and nd >= 2:
        return f"{a}[{lit(np.array(ids(sa[0])))}, {lit(np.array(ids(sa[1])))}]"
    if form == "mask":
        mask = g.rng.random(sa) < 0.5
        mask.reshape(-1)[int(g.rng.integers(mask.size))] = True
        return f"{a}[{lit(mask)}]"
    if form == "mask0":
        mask = g.rng.random(sa[0]) < 0.5
        mask[int(g.rng.integers(sa[0]))] = True
        return f"{a}[{lit(mask)}]"
    if form == "mixed" and nd >= 2:
        return f"{a}[{_slice_src(sa[0], g.rng)}, {ids(sa[1])!r}]"
    if form == "take":
        k = int(g.rng.integers(-nd, nd))
        return f"np.take({a}, {ids(sa[k])!r}, axis={k})"
    if form == "take_flat":
        return f"np.take({a}, {ids(_size(sa))!r})"
    if form == "take_along":
        k = int(g.rng.integers(nd))
        shp = list(sa)
        shp[k] = m
        idx = g.rng.integers(0, sa[k], size=shp)
        return f"np.take_along_axis({a}, {lit(idx)}, axis={k})"
    return None


def fam_matmul(g):
    a = g.pick(lambda v: np.ndim(v) >= 1)
    if a is None:
        return None
    sa = g.shape(a)
    form = g.choice(["right", "right", "left", "matmul", "dot", "outer", "inner", "vdot"])
    k = int(g.rng.integers(1, 4))

    def operand(shape):
        b = g.pick(lambda v: np.shape(v) == shape, exclude=[a]) if g.coin(0.7) else None
        return b if b is not None else g.const(shape)

    if form in ("right", "matmul", "dot"):
        shp = (sa[-1], k) if g.coin(0.7) else (sa[-1],)
        if form == "dot" and len(sa) == 3:
            shp = (sa[-1], k)
        b = operand(shp)
        return {"right": f"{a} @ {b}", "matmul": f"np.matmul({a}, {b})", "dot": f"np.dot({a}, {b})"}[form]
    if form == "left":
        inner_dim = sa[0] if len(sa) == 1 else sa[-2]
        return f"{operand((k, inner_dim))} @ {a}"
    if form == "outer" and _size(sa) <= 6:
        return f"np.outer({a}, {operand((int(g.rng.integers(1, 5)),))})"
    if form == "inner":
        return f"np.inner({a}, {operand((k, sa[-1]) if g.coin() else (sa[-1],))})"
    if form == "vdot":
        return f"np.vdot({a}, {operand(sa)})"
    return None


def fam_einsum(g):
    a = g.pick(lambda v: np.ndim(v) >= 1)
    if a is None:
        return None
    sa = g.shape(a)
    nd = len(sa)
    k = int(g.rng.integers(1, 4))

    def operand(shape):
        b = g.pick(lambda v: np.shape(v) == shape) if g.coin(0.7) else None
        return b if b is not None else g.const(shape)

    if nd == 1:
        n = sa[0]
        spec, shapes = g.choice([("i,i->", [(n,)]), ("i,j->ij", [(k,)]), ("i->", []), ("i,ij->j", [(n, k)]),
                                 ("i,i", [(n,)]), ("i,ij,j->", [(n, k), (k,)])])
    elif nd == 2:
        n, m = sa
        spec, shapes = g.choice([("ij->ji", []), ("ij->i", []), ("ij,jk->ik", [(m, k)]), ("ij,ij->i", [(n, m)]),
                                 ("ij,j->i", [(m,)]), ("...j,j->...", [(m,)]), ("ij,kj->ik", [(k, m)]),
                                 ("ij,jk", [(m, k)]), ("ij->", []), ("tensordot1", [(m, k)]),
                                 ("tensordot2", [(n, m)]), ("tensordot0", [(2,)]), ("tensordot_ax", [(n, k)]),
                                 ("trace", [])])
    else:
        spec, shapes = g.choice([("...i->...", []), ("ijk->kj", []), ("ijk,k->ij", [(sa[-1],)])])
    ops = [operand(s) for s in shapes]
    if spec.startswith("tensordot"):
        axes = {"tensordot1": "1", "tensordot2": "2", "tensordot0": "0", "tensordot_ax": "([0], [0])"}[spec]
        return f"np.tensordot({a}, {ops[0]}, axes={axes})"
    if spec == "trace":
        return f"np.trace({a})"
    return f"np.einsum({spec!r}, {', '.join([a] + ops)})"


def _sort_sig(a, axis):
    """Sort's derivative is a permutation: which element lands where, and which are tied
    (a tie between elements with different tangents is not differentiable at all)."""
    a = np.asarray(a)
    if axis is None:
        a, axis = a.ravel(), 0
    order = np.argsort(a, axis=axis, kind="stable")
    ties = np.diff(np.sort(a, axis=axis), axis=axis) == 0
    return np.concatenate([order.ravel(), ties.ravel()])


def fam_sort(g):
    a = g.pick(lambda v: np.size(v) >= 2)
    if a is None:
        return None
    nd = np.ndim(g.val(a))
    form = g.choice(["last", "axis", "none"])
    if form == "none":
        return f"np.sort({a}, axis=None)", ("strict", f"_sort_sig({a}, None)", None), []
    k = -1 if form == "last" else int(g.rng.integers(-nd, nd))
    e = f"np.sort({a})" if k == -1 and g.coin() else f"np.sort({a}, axis={k})"
    return e, ("strict", f"_sort_sig({a}, {k})", None), []


def fam_clip(g):
    a = g.pick(prefer=lambda n: _has_zero(g.val(n)) or _has_dups(g.val(n)))
    v = np.ravel(g.val(a))
    form = g.choice(["both", "lo", "hi", "tie", "zero", "method", "array"])
    lo, hi = sorted(round(float(t), 2) for t in g.rng.uniform(-1.5, 1.5, size=2))
    ev = []
    if form == "tie":   # a bound equal to one of the values exactly
        t = float(g.rng.choice(v))
        lo, hi = (t, max(t + 0.5, hi)) if g.coin() else (min(t - 0.5, lo), t)
        ev = ["clip_tie"]
    if form == "zero":
        lo, hi = (0.0, None) if g.coin() else (None, 0.0)
        ev = ["clip_tie"] if 0.0 in v else []
    if form == "lo":
        hi = None
    if form == "hi":
        lo = None
    if form == "array":
        b = g.partner(a)
        e = f"np.clip({a}, {b}, None)" if g.coin() else f"np.clip({a}, None, {b})"
        return e, ("tie", f"np.sign({a} - {b})", None), ev
    L = "None" if lo is None else fmt_num(lo)
    H = "None" if hi is None else fmt_num(hi)
    e = f"{a}.clip({L}, {H})" if form == "method" else f"np.clip({a}, {L}, {H})"
    sig = [f"np.sign({a} - {x})" for x in (L, H) if x != "None"]
    return e, ("tie", f"np.stack([{', '.join(sig)}])", None), ev


def fam_linalg(g):
    sq = g.square()
    if sq is None:
        return None
    m, n = sq
    form = g.choice(["solve", "solve_mat", "inv", "det", "slogdet", "slogdet_sign", "cholesky",
                     "cholesky_dot", "batched_inv", "batched_det"])
    try:
        A = g.wellcond(m, n)
    except Exception:
        return None
    if form in ("solve", "solve_mat"):
        shp = (n,) if form == "solve" else (n, int(g.rng.integers(1, 4)))
        b = g.pick(lambda v: np.shape(v) == shp)
        b = b if b is not None else g.const(shp)
        return f"np.linalg.solve({A}, {b})"
    if form == "inv":
        return f"np.linalg.inv({A})"
    if form == "det":
        return f"np.linalg.det({A})"
    if form == "slogdet":
        return f"np.linalg.slogdet({A})[1]"
    if form == "slogdet_sign":
        return f"np.linalg.slogdet({A})[0] * np.linalg.slogdet({A})[1]"
    if form == "cholesky":
        return f"np.linalg.cholesky({m} @ {m}.T + np.eye({n}))"
    if form == "cholesky_dot":
        return f"np.linalg.cholesky(np.dot({m}.T, {m}) + 0.5 * np.eye({n}))"
    other = g.square(n)
    if other is None:
        return None
    B = g.wellcond(other[0], n)
    S = f"np.stack([{A}, {B}])"
    return f"np.linalg.inv({S})" if form == "batched_inv" else f"np.linalg.det({S})"


def fam_det_singular(g):
    form = g.choice(["input", "input", "scaled", "transposed", "outer", "equal_rows", "rank2"])
    if form in ("input", "scaled", "transposed"):
        s = g.pick(lambda v: np.ndim(v) == 2 and v.shape[0] == v.shape[1] and abs(np.linalg.det(v)) < 1e-12,
                   prefer=lambda n: g.tags.get(n) == "singular")
        if s is None:
            return None
        e = {"input": s, "scaled": f"(2.0 * {s})", "transposed": f"{s}.T"}[form]
    else:
        n = g.choice([2, 3])
        a = g.pick(lambda v: np.shape(v) == (n,))
        b = g.pick(lambda v: np.shape(v) == (n,))
        if a is None:
            return None
        b = b if b is not None else g.const((n,))
        if form == "outer":
            e = f"np.outer({a}, {b})"
        elif form == "equal_rows":
            e = f"np.stack([{a}, {a}])" if n == 2 else f"np.stack([{a}, {b}, {a}])"
        else:
            e = f"np.stack([{a}, {b}, {a} + {b}])" if n == 3 else f"np.stack([{a}, 2.0 * {a}])"
    return f"np.linalg.det({e})", None, ["det_singular"]


def _norm_sig(a, ord, axis):
    """What a norm's derivative depends on: the signs, and which row/column wins."""
    a = np.asarray(a)
    sign = np.sign(a).ravel()
    axis = tuple(range(a.ndim)) if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
    if len(axis) == 1 and ord in (np.inf, -np.inf):
        s, red = np.abs(a), axis[0]
    elif len(axis) == 2 and ord in (1, -1):        # max/min column sum
        s, red = np.sum(np.abs(a), axis=axis[0], keepdims=True), axis[1]
    elif len(axis) == 2 and ord in (np.inf, -np.inf):  # max/min row sum
        s, red = np.sum(np.abs(a), axis=axis[1], keepdims=True), axis[0]
    else:
        return sign
    ext = np.max(s, axis=red, keepdims=True) if ord > 0 else np.min(s, axis=red, keepdims=True)
    return np.concatenate([sign, (s == ext).ravel().astype(float)])


# The matrix 2-norm (and -2, 'nuc') needs singular values; the engine refuses them with
# NotImplementedError (since c51b744: it used to return the Frobenius norm).  Add 2 here
# when it has a rule.
VECTOR_NORM_ORDS = [None, 1, 2, np.inf, -np.inf, 3, 0.5, -1]
MATRIX_NORM_ORDS = [None, "fro", 1, -1, np.inf, -np.inf]


def fam_norm(g):
    a = g.pick(lambda v: np.ndim(v) >= 1 and np.size(v) >= 2)
    if a is None:
        return None
    v = np.asarray(g.val(a))
    nd = v.ndim
    kd = g.coin(0.25)
    r = g.rng.random()
    if nd == 1 or r < 0.35:   # vector norms
        ordv = g.choice(VECTOR_NORM_ORDS)
        axis = None if nd == 1 and g.coin() else int(g.rng.integers(-nd, nd))
    elif nd == 2 or r < 0.7:  # matrix norms
        ordv = g.choice(MATRIX_NORM_ORDS)
        if nd == 2 and g.coin():
            axis = None
        else:
            i, j = g.rng.choice(nd, 2, replace=False).tolist()
            axis = (i, j - nd if g.coin() else j)
    else:
        ordv, axis = None, None
    ord_src = {None: "None", "fro": "'fro'", np.inf: "np.inf", -np.inf: "-np.inf"}.get(ordv, repr(ordv))
    args = ([] if ordv is None and g.coin() else [f"ord={ord_src}"]) + \
        ([] if axis is None else [f"axis={axis!r}"]) + (["keepdims=True"] if kd else [])
    e = f"np.linalg.norm({', '.join([a] + args)})"
    try:
        with np.errstate(all="ignore"):
            val = np.asarray(np.linalg.norm(v, ord=ordv, axis=axis))
    except Exception:
        return None
    if np.min(val) < 1e-2:
        return None
    if ordv in (0.5, -1) and np.min(np.abs(v)) < 0.05:  # |x|^p, p < 1, at 0: no derivative
        return None
    ev = [f"norm_{ord_src}_{'vec' if axis is None and nd == 1 or isinstance(axis, int) else 'mat'}"]
    if ordv == 2 and (isinstance(axis, tuple) or (axis is None and nd == 2)):
        ax = axis if axis is not None else (0, 1)
        sv = np.linalg.svd(np.moveaxis(v, ax, (-2, -1)), compute_uv=False)
        if sv.shape[-1] >= 2 and np.min(sv[..., 0] - sv[..., 1]) < 1e-2 * np.max(sv):
            return None  # the largest singular value is not simple: not differentiable
        return e, None, ev
    if ordv in (1, -1, np.inf, -np.inf) or ordv == 0.5:
        return e, ("strict", f"_norm_sig({a}, {ord_src}, {axis!r})", None), ev
    if ordv == 3:  # |x|^3 is twice differentiable at 0, but grad's central differences are O(eps) there
        return e, ("tie", f"np.sign({a})", None), ev
    return e, None, ev


def fam_unique(g):
    a = g.pick(lambda v: np.size(v) >= 2, prefer=lambda n: _has_dups(g.val(n)))
    if a is None:
        return None
    ev = ["unique_dups"] if _has_dups(g.val(a)) else []
    return f"np.unique({a})", ("strict", f"np.unique({a}, return_inverse=True)[1]", None), ev


def fam_full_like(g):
    a = g.pick(lambda v: np.ndim(v) >= 1)
    if a is None:
        return None
    nd = np.ndim(g.val(a))
    form = g.choice(["first", "first", "scalar_of_other", "zeros_like", "ones_like"])
    if form == "first":
        return f"np.full_like({a}, {a}[{', '.join(['0'] * nd)}])"
    if form == "scalar_of_other":
        b = g.pick()
        return f"np.full_like({a}, np.mean({b}))"
    return f"{a} * np.{form}({a}) + {a}"


def fam_deepcopy(g):
    a = g.pick()
    return g.choice([f"copy.deepcopy({a})", f"copy.copy({a})", f"np.copy({a})", f"{a}.copy()"])


def fam_methods(g):
    """ndarray methods and Python protocols on the values (what numpy user code also does)."""
    a = g.pick()
    v = g.val(a)
    nd = np.ndim(v)
    forms = ["astype", "astype_float", "dunder_pow", "float64_scale", "rpow_scalar"]
    if nd >= 1:
        forms += ["sum", "mean", "prod", "max", "min", "var", "std", "cumsum", "dot", "builtin_sum",
                  "iter_stack", "len"]
    if nd >= 2:
        forms += ["mT", "swapaxes", "reshape_args"]
    form = g.choice(forms)
    k = int(g.rng.integers(-nd, nd)) if nd else 0
    if form == "astype":
        return f"{a}.astype(np.float64) * 1.5"
    if form == "astype_float":
        return f"{a}.astype(float) + {a}"
    if form == "dunder_pow":
        return f"{g.pos(a)}.__pow__(1.5)"
    if form == "float64_scale":
        return f"np.float64(1.25) * {a} + np.float64(0.5)"
    if form == "rpow_scalar":
        return f"np.float64(1.5) ** {g.bounded(a, 3.0)}"
    if form in ("sum", "mean", "cumsum"):
        return f"{a}.{form}(axis={k})" if g.coin() else f"{a}.{form}({k})"
    if form == "prod":
        e = a if np.max(np.abs(v)) <= 2 else f"np.tanh({a})"
        return f"{e}.prod(axis={k}, keepdims={g.coin()})", None, ["prod_zero"] if _has_zero(g.ev(e)) else []
    if form in ("max", "min"):
        axes = (k % nd,)
        ext = getattr(np, form)(v, axis=axes, keepdims=True)
        ties = bool(np.any(np.sum(v == ext, axis=axes) >= 2))
        return f"{a}.{form}(axis={k})", ("ext", f"({a} == np.{form}({a}, axis={axes!r}, keepdims=True))", axes), \
            ["tie_reduce"] if ties else []
    if form in ("var", "std"):
        if v.shape[k] < 2 or (form == "std" and np.min(np.var(v, axis=k)) < 1e-3):
            return None
        return f"{a}.{form}(axis={k}, ddof=1)", None, ["ddof"]
    if form == "dot":
        b = g.pick(lambda w: np.ndim(w) >= 1 and np.shape(w)[0] == v.shape[-1] and np.ndim(w) <= 2, exclude=[a])
        return f"{a}.dot({b if b is not None else g.const((v.shape[-1],))})"
    if form == "builtin_sum":  # Python's sum iterates over the first axis
        return f"sum({a})" if v.shape[0] <= 4 else None
    if form == "iter_stack":
        return f"np.stack([r * 1.5 for r in {a}])" if v.shape[0] <= 4 else None
    if form == "len":
        return f"{a} * len({a})"
    if form == "mT":
        return f"{a}.mT"
    if form == "swapaxes":
        return f"{a}.swapaxes(0, -1)"
    if form == "reshape_args":
        return f"{a}.reshape({_size(v.shape)}, 1)" if g.coin() else f"{a}.reshape(-1, {v.shape[-1]})"
    return None


def fam_dynamic_index(g):
    """Indices computed from the values (argmax, argsort, comparisons): constants to the
    derivative, kinks where they change."""
    a = g.pick(lambda v: np.size(v) >= 2)
    if a is None:
        return None
    v = np.asarray(g.val(a))
    nd = v.ndim
    form = g.choice(["argmax", "argmin_axis", "argsort", "take_along", "mask", "nonzero", "where1"])
    if form == "argmax":
        return f"{a}.ravel()[np.argmax({a})]", ("strict", f"_sort_sig({a}, None)", None), []
    if form == "argmin_axis":
        return (f"np.take_along_axis({a}, np.expand_dims(np.argmin({a}, axis=-1), -1), axis=-1)",
                ("strict", f"_sort_sig({a}, -1)", None), [])
    if form == "argsort":
        return f"{a}.ravel()[np.argsort({a}, axis=None)]", ("strict", f"_sort_sig({a}, None)", None), []
    if form == "take_along":
        k = int(g.rng.integers(nd))
        return (f"np.take_along_axis({a}, np.argsort({a}, axis={k}), axis={k})",
                ("strict", f"_sort_sig({a}, {k})", None), [])
    t = fmt_num(round(float(np.median(v)) + 0.01, 2))
    if form == "mask":
        if not np.any(v > float(t)):
            return None
        return f"{a}[{a} > {t}]", ("strict", f"({a} > {t})", None), []
    if form == "nonzero":
        if not np.any(v > float(t)):
            return None
        return f"{a}[np.nonzero({a} > {t})]", ("strict", f"({a} > {t})", None), []
    return f"np.where({a} > {t}, {a} * 2.0, -{a})", ("strict", f"({a} > {t})", None), []


def fam_misc_api(g):
    """The rest of numpy_api's table: conjugate/real/imag, trunc/ceil (zero derivative),
    atleast_1d, expand/squeeze combinations, split by indices."""
    a = g.pick()
    v = g.val(a)
    form = g.choice(["conjugate", "real", "imag", "trunc", "ceil", "atleast_1d", "split_idx", "hstack1",
                     "vstack1", "squeeze_expand"])
    if form == "conjugate":
        return f"np.conjugate({a}) + np.conj({a})"
    if form == "real":
        return f"np.real({a}) * 2.0"
    if form == "imag":
        return f"np.imag({a}) + {a}"
    if form in ("trunc", "ceil"):
        e = f"(2.0 * {a} + {g.num(-1, 1)})"
        return f"np.{form}({e}) + {a}", ("strict", f"np.{form}({e})", None), []
    if form == "atleast_1d":
        return f"np.atleast_1d({a})"
    if form == "split_idx" and np.ndim(v) >= 1 and np.shape(v)[0] >= 3:
        return f"np.split({a}, [1, 2])[{int(g.rng.integers(3))}]"
    if form == "hstack1" and np.ndim(v) <= 1:
        return f"np.hstack([{a}, {a} * 2.0, 1.0])" if np.ndim(v) == 1 else f"np.hstack([{a}, 1.0])"
    if form == "vstack1" and np.ndim(v) == 1:
        return f"np.vstack([{a}, {a}])"
    if form == "squeeze_expand":
        return f"np.squeeze(np.expand_dims({a}, 0), axis=0)"
    return None


FAMILIES = {
    "arith": fam_arith, "div": fam_div, "power": fam_power, "explog": fam_explog, "trig": fam_trig,
    "elementwise_extra": fam_elementwise_extra, "abs": fam_abs, "maxmin": fam_maxmin, "where": fam_where,
    "sum_mean": fam_sum_mean, "prod": fam_prod, "max_reduce": fam_max_reduce, "var_std": fam_var_std,
    "cumsum": fam_cumsum, "shape": fam_shape, "join": fam_join, "index_basic": fam_index_basic,
    "index_adv": fam_index_adv, "matmul": fam_matmul, "einsum": fam_einsum, "sort": fam_sort,
    "clip": fam_clip, "linalg": fam_linalg, "det_singular": fam_det_singular, "norm": fam_norm,
    "unique": fam_unique, "full_like": fam_full_like, "deepcopy": fam_deepcopy,
    "methods": fam_methods, "dynamic_index": fam_dynamic_index, "misc_api": fam_misc_api,
}
# Switch a family off by removing it here; WEIGHTS makes the core families more frequent.
ENABLED = list(FAMILIES)
WEIGHTS = {"arith": 3, "trig": 2, "explog": 2, "sum_mean": 1.5, "shape": 1.5, "matmul": 1.5}
NS["_norm_sig"], NS["_sort_sig"] = _norm_sig, _sort_sig


# -- programs --------------------------------------------------------------------------------------

@dataclass
class Program:
    seed: int
    attempt: int
    inputs: tuple
    names: list
    lines: list
    outputs: list
    weights: list
    kinks: list
    v1: tuple
    v2: tuple | None            # None: no direction avoids the kinks (second order not checked)
    families: Counter
    events: Counter
    active: set = field(default_factory=set)   # kinks sitting exactly at a tie at x (first order)
    gen_errors: Counter = field(default_factory=Counter)   # generator choices numpy refused

    @property
    def source(self):
        body = "\n".join("    " + ln for ln in self.lines)
        return (f"def program({', '.join(self.names)}):\n{body}\n"
                f"    return ({', '.join(self.outputs)},)\n")

    def compile(self):
        ns = dict(NS)
        exec(self.source, ns)
        all_src = self.source.rsplit("    return", 1)[0] + "    return locals()\n"
        ns2 = dict(NS)
        exec(all_src.replace("def program(", "def program_all("), ns2)
        self.fn, self.fn_all = ns["program"], ns2["program_all"]
        return self

    def loss(self, xs):
        outs = self.fn(*xs)
        total = np.sum(self.weights[0] * outs[0])
        for w, o in zip(self.weights[1:], outs[1:]):
            total = total + np.sum(w * o)
        return total

    def describe(self):
        ins = "\n".join(f"{n} = {lit(x)}" for n, x in zip(self.names, self.inputs))
        w = ", ".join(lit(w) for w in self.weights)
        v1 = ", ".join(lit(v) for v in self.v1)
        v2 = "None" if self.v2 is None else "(" + ", ".join(lit(v) for v in self.v2) + ",)"
        ties = "".join(f"# at a tie at x (first order: the even-split convention): {self.kinks[k].sig}\n"
                       for k in sorted(self.active))
        return (f"# seed {self.seed}, attempt {self.attempt}; families {dict(self.families)}\n{ties}"
                f"import numpy as np, copy, autodiff\n{self.source}{ins}\nW = [{w}]\n"
                f"loss = lambda xs: sum(np.sum(w * o) for w, o in zip(W, program(*xs)))\n"
                f"xs = ({', '.join(self.names)},)\nv1 = ({v1},)\nv2 = {v2}\n")


def generate(seed, attempt, enabled=None, n_ops=None):
    """One program (or None when this attempt hit a domain issue or a kink)."""
    enabled = list(ENABLED if enabled is None else enabled)
    rng = np.random.default_rng([seed, attempt])
    g = Gen(rng)
    n_inputs = int(rng.integers(2, 5))
    kinds = ["generic"] + [str(rng.choice(["generic", "zeros", "dups", "singular"], p=[0.3, 0.3, 0.25, 0.15]))
                           for _ in range(n_inputs - 1)]
    respects = []
    for i, kind in enumerate(kinds):
        x, respect = make_input(rng, kind)
        g.add_input(f"x{i}", x, kind)
        respects.append(respect)
    w = np.array([WEIGHTS.get(f, 1.0) for f in enabled])
    n_ops = int(rng.integers(16, 25)) if n_ops is None else n_ops
    done = 0
    for _ in range(n_ops * 8):
        if done == n_ops:
            break
        fam = enabled[int(rng.choice(len(enabled), p=w / w.sum()))]
        try:
            with np.errstate(all="ignore"):
                op = FAMILIES[fam](g)
        except Exception as e:  # a generator bug shows up in gen_errors, not as a silent skip
            g.gen_errors[f"{fam}:{type(e).__name__}"] += 1
            continue
        if op is None:
            continue
        expr, kink, events = (op, None, []) if isinstance(op, str) else op
        if g.emit(expr, kink, events):
            g.families[fam] += 1
            done += 1
    if done < n_ops // 2:
        return None
    outputs = [n for n in g.pool if g.uses[n] == 0]
    weights = [np.round(rng.standard_normal(np.shape(g.env[n])), 2) for n in outputs]
    names = [f"x{i}" for i in range(n_inputs)]
    inputs = tuple(g.env[n] for n in names)
    v1 = tuple(rng.standard_normal(np.shape(x)) for x in inputs)
    v2 = tuple(rng.standard_normal(np.shape(x)) for x in inputs)
    prog = Program(seed, attempt, inputs, names, g.lines, outputs, weights, g.kinks, v1, None,
                   g.families, g.events).compile()
    ok, active, _ = kink_status(prog, v1, first_order=True)
    if not ok or not same_kinks_in_engine(prog):
        return None
    prog.active = active
    prog.gen_errors = g.gen_errors
    # second order: a direction along which no kink changes.  Try a generic one, then one
    # that keeps the inputs' zeros and ties, then switch off the inputs feeding a kink
    # that still moves (a designed tie inside the program), one kink at a time.
    ok, _, broken = kink_status(prog, v2, first_order=False)
    if not ok:
        v2 = tuple(r(v) for r, v in zip(respects, v2))
        for _ in range(len(prog.kinks) + 1):
            ok, _, broken = kink_status(prog, v2, first_order=False)
            if ok or not broken or not any(np.any(t) for t in v2):
                break
            off = prog.kinks[broken[0]].inputs
            v2 = tuple(np.zeros_like(t) if n in off else t for n, t in zip(names, v2))
    if ok and any(np.any(t) for t in v2):
        prog.v2 = v2
    return prog


def _sig(k, env):
    with np.errstate(all="ignore"):
        return np.asarray(eval(k.sig, NS, env))


def same_kinks_in_engine(prog):
    """The engine's primal run may differ from numpy's by rounding (np.vdot is BLAS, the
    engine's is a sum of products): a tie in one run must be a tie in the other, or the
    derivative conventions are applied at different points."""
    x = prog.inputs
    try:
        with np.errstate(all="ignore"):
            plain = prog.fn_all(*x)
            engine = jvp(lambda xs: prog.fn_all(*xs), (x,), (prog.v1,))[0]
        return all(np.array_equal(_sig(k, plain), _sig(k, engine)) for k in prog.kinks)
    except Exception:  # the engine fails on this program: let the check report it
        return True


def kink_status(prog, v, first_order):
    """Can central differences along v measure what the engine computes?  Returns
    (ok, active kinks, kinks that moved).  First order allows ties at x that central
    differences see as the convention (2-way, not fed by another tie), checked at
    x +- eps v, x +- 2 eps v and x +- 4 eps v (the points of the extrapolated
    differences); second order allows none."""
    x = prog.inputs
    steps = (1, -1, 2, -2, 4, -4) if first_order else (1, -1, 2, -2)
    try:
        with np.errstate(all="ignore"):
            envs = [prog.fn_all(*x)] + [prog.fn_all(*[a + s * EPS * t for a, t in zip(x, v)]) for s in steps]
    except Exception:  # a value-dependent shape (np.unique) changed
        return False, set(), []
    for env in envs[1:]:  # the domain: finite at the finite-difference points too
        for val in env.values():
            if not np.all(np.isfinite(val)):
                return False, set(), []
    active, moved = set(), []
    for k in prog.kinks:
        try:
            s0, *ss = (_sig(k, e) for e in envs)
        except Exception:
            return False, set(), []
        if any(t.shape != s0.shape for t in ss):
            return False, set(), []
        if all(np.array_equal(s0, t) for t in ss):
            continue
        if not first_order:
            moved.append(k.id)
            continue
        if k.kind == "strict":
            return False, set(), []
        sp, sm = ss[0], ss[1]
        if not all(np.array_equal(t, ss[i % 2]) for i, t in enumerate(ss)):  # not one-sided yet
            return False, set(), []
        if k.kind == "tie":
            changed = (sp != s0) | (sm != s0)
            if np.any(changed & (s0 != 0)):   # crossed a near tie
                return False, set(), []
        else:  # 'ext': winners at +eps and -eps must split the tie at x into two equal halves
            s0, sp, sm = s0.astype(bool), sp.astype(bool), sm.astype(bool)
            ax = k.axis
            if np.any(sp & ~s0) or np.any(sm & ~s0):
                return False, set(), []
            changed = np.any((sp != s0) | (sm != s0), axis=ax)
            bad = (np.any(sp & sm, axis=ax) | np.any((sp | sm) != s0, axis=ax)
                   | (np.sum(sp, axis=ax) != np.sum(sm, axis=ax)))
            if np.any(changed & bad):
                return False, set(), []
        active.add(k.id)
    for kid in active:  # a tie fed by another tie: one-sided derivatives compose, averages do not
        if prog.kinks[kid].upstream & active:
            return False, set(), []
    return not moved, active, moved


def build(seed, enabled=None, n_ops=None):
    """(program, attempts) for a seed; program None when every attempt failed."""
    for attempt in range(MAX_ATTEMPTS):
        prog = generate(seed, attempt, enabled, n_ops)
        if prog is not None:
            return prog, attempt + 1
    return None, MAX_ATTEMPTS


# -- the checks --------------------------------------------------------------------------------------

class Mismatch(AssertionError):
    pass


def _tree_dot(a, b):
    return sum(float(np.sum(np.asarray(x) * np.asarray(y))) for x, y in zip(a, b))


def _amax(a):
    return float(np.max(np.abs(np.asarray(a)), initial=0.0))


def _central(f, xs, v, eps):
    fp = f(tuple(x + eps * t for x, t in zip(xs, v)))
    fm = f(tuple(x - eps * t for x, t in zip(xs, v)))
    return float((fp - fm) / (2 * eps))


def check(prog):
    """Raise Mismatch (or the engine's exception) if the modes disagree."""
    xs = prog.inputs
    v1 = prog.v1
    with np.errstate(all="ignore"):
        plain = prog.fn(*xs)
        plain_loss = prog.loss(xs)
        # abs-scale of the loss: what rounding in a finite difference is relative to
        fscale = sum(float(np.sum(np.abs(w * o))) for w, o in zip(prog.weights, plain)) + 1e-300

        # 1. primal values.  Op by op: each line, evaluated by numpy on the engine's own
        # values of its operands, gives the engine's value (to rounding: the engine's
        # tensordot is an einsum, its var a composite).  End to end the runs can differ by
        # more than 1e-12 through no fault of the engine: an ulp upstream turns numpy's
        # det of an exactly singular matrix from 0.0 into 5e-9.
        env, tangents = jvp(lambda xs: prog.fn_all(*xs), (xs,), (v1,))
        for line in prog.lines:
            name, expr = line.split(" = ", 1)
            deps = set(NAME.findall(expr))
            ref = eval(expr, NS, {d: env[d] for d in deps})
            o = env[name]
            m = max([_amax(env[d]) for d in deps], default=0.0)
            if np.shape(o) != np.shape(ref) or not np.allclose(o, ref, rtol=1e-12, atol=1e-12 * (1 + m) ** 2):
                raise Mismatch(f"primal of {name} = {expr}: forward mode {np.asarray(o)!r} != numpy on the "
                               f"same operands {ref!r}")
        outs_dot = [tangents[n] for n in prog.outputs]
        engine_loss = sum(float(np.sum(w * np.asarray(env[n]))) for w, n in zip(prog.weights, prog.outputs))
        value, g = value_and_grad(prog.loss)(xs)
        if not np.isclose(value, engine_loss, rtol=1e-13, atol=1e-13 * fscale):
            raise Mismatch(f"primal of the loss: reverse mode {value!r} != forward mode {engine_loss!r}")
        if not np.isclose(value, plain_loss, rtol=1e-6, atol=1e-6 * fscale):
            raise Mismatch(f"primal of the loss: reverse mode {value!r} != plain numpy {plain_loss!r}")
        for n, gi, x in zip(prog.names, g, xs):
            if np.shape(gi) != np.shape(x):
                raise Mismatch(f"grad wrt {n} has shape {np.shape(gi)}, input {np.shape(x)}")

        # 2. reverse == forward == central differences, along v1
        rev = _tree_dot(g, v1)
        fwd = sum(float(np.sum(w * np.asarray(t))) for w, t in zip(prog.weights, outs_dot))
        scale = sum(float(np.sum(np.abs(np.asarray(gi) * vi))) for gi, vi in zip(g, v1)) + abs(fwd) + 1e-300
        # rounding in the jvp, measured one step of 1e-13 away (cancellation inside the program)
        jnoise = abs(float(jvp(prog.loss, (tuple(x + DELTA * t for x, t in zip(xs, v1)),), (v1,))[1]) - fwd)
        if not abs(rev - fwd) <= 1e-9 * scale + 1e-13 * fscale + 10 * jnoise:
            raise Mismatch(f"reverse != forward: <grad, v1> = {rev!r}, jvp = {fwd!r}, diff {rev - fwd:.3e}")
        f1, f2, f4 = (_central(prog.loss, xs, v1, k * EPS) for k in (1, 2, 4))
        if prog.active:
            # at a kink f(x + s v) has different curvatures for s > 0 and s < 0, so the
            # central difference is off by O(eps); extrapolating from 2 eps removes that
            fd, fd_coarse = 2.0 * f1 - f2, 2.0 * f2 - f4
        else:
            fd, fd_coarse = f1, f2
        # truncation error, estimated from the same difference at twice the step (O(eps^2))
        trunc = abs(fd_coarse - fd) / 3.0
        # rounding in L, measured: L one step of 1e-13 away, less the linear change
        noise = abs(float(prog.loss(tuple(x + DELTA * t for x, t in zip(xs, v1)))) - plain_loss - DELTA * fwd)
        tol = 1e-5 * scale + 1e-9 * fscale + 10 * noise / EPS + 3 * trunc
        if not abs(fwd - fd) <= tol:
            raise Mismatch(f"forward != central differences: jvp = {fwd!r}, fd = {fd!r}, "
                           f"<grad, v1> = {rev!r}, diff {fwd - fd:.3e} > tol {tol:.3e}")

        # 3. forward-over-reverse == central differences of the gradient, along v2
        if prog.v2 is None:
            return
        v2 = prog.v2
        h = hvp(prog.loss, xs, v2)
        gs = {k: grad(prog.loss)(tuple(x + k * EPS * t for x, t in zip(xs, v2))) for k in (1, -1, 2, -2)}
        gscale = max(_amax(gi) for gi in g) + 1e-300
        hscale = max(_amax(hi) for hi in h) + 1e-300
        # rounding in grad, measured: grad one step of 1e-13 away, less the linear change
        gd = grad(prog.loss)(tuple(x + DELTA * t for x, t in zip(xs, v2)))
        gnoise = max(_amax(np.asarray(a) - np.asarray(b) - DELTA * np.asarray(c)) for a, b, c in zip(gd, g, h))
        for n, hi, a, b, a2, b2 in zip(prog.names, h, gs[1], gs[-1], gs[2], gs[-2]):
            hi = np.asarray(hi)
            fdh = (np.asarray(a) - np.asarray(b)) / (2 * EPS)
            trunc = np.abs((np.asarray(a2) - np.asarray(b2)) / (4 * EPS) - fdh) / 3.0
            if hi.shape != fdh.shape:
                raise Mismatch(f"hvp wrt {n} has shape {hi.shape}, expected {fdh.shape}")
            err = np.abs(hi - fdh)
            # (the 1e-9 floor: below it the derivative formulas themselves round differently,
            # e.g. tanh' = 1 - tanh(x)^2 is exactly 0 for x > 19 where the true value is 1e-16)
            allowed = 1e-5 * (np.abs(fdh) + hscale) + 1e-8 * gscale + 10 * gnoise / EPS + 3 * trunc + 1e-9
            if not np.all(err <= allowed):
                i = int(np.argmax(err - allowed))
                raise Mismatch(f"hvp != central differences of grad, wrt {n}: hvp {hi!r}, fd {fdh!r}; "
                               f"worst element {i}: {hi.reshape(-1)[i]!r} vs {fdh.reshape(-1)[i]!r}")


def run_seed(seed, enabled=None):
    """('ok' | 'unchecked' | 'fail', program, message, second_order_checked)."""
    prog, attempts = build(seed, enabled)
    if prog is None:
        return "unchecked", None, f"seed {seed}: no valid program in {attempts} attempts", False
    try:
        check(prog)
    except Exception as e:
        kind = "mismatch" if isinstance(e, Mismatch) else f"{type(e).__name__}"
        msg = str(e) if isinstance(e, Mismatch) else \
            f"{type(e).__name__}: {e}\n" + "".join(traceback.format_exception(e)[-6:])
        return "fail", prog, f"seed {seed} [{kind}]: {msg}", prog.v2 is not None
    return "ok", prog, "", prog.v2 is not None


def run_block(seeds, enabled=None, min_checked=0.95, min_second_order=0.9):
    results = [run_seed(s, enabled) for s in seeds]
    fails = [(p, m) for status, p, m, _ in results if status == "fail"]
    unchecked = [m for status, _, m, _ in results if status == "unchecked"]
    n = len(results)
    checked = n - len(unchecked)
    second = sum(1 for status, _, _, s2 in results if status != "unchecked" and s2)
    if fails:
        head = "\n".join(m.splitlines()[0][:300] for _, m in fails)
        detail = "\n\n".join(f"{m}\n{p.describe()}" for p, m in fails[:2])
        pytest.fail(f"{len(fails)} of {n} programs failed:\n{head}\n\nfirst failures in full:\n\n{detail}",
                    pytrace=False)
    assert checked >= min_checked * n, f"only {checked} of {n} seeds gave a checkable program: {unchecked}"
    assert second >= min_second_order * checked, \
        f"second order checked on only {second} of {checked} programs"
    return results


# -- the tests ----------------------------------------------------------------------------------------

BLOCK = 25
DEFAULT_BLOCKS = 20          # 500 programs
SLOW_BLOCKS = 160            # 4000 more


@pytest.mark.parametrize("block", range(DEFAULT_BLOCKS))
def test_random_programs(block):
    run_block(range(block * BLOCK, (block + 1) * BLOCK))


@pytest.mark.slow
@pytest.mark.parametrize("block", range(SLOW_BLOCKS))
def test_random_programs_many(block):
    start = 100_000 + block * BLOCK
    run_block(range(start, start + BLOCK))


def test_generator_covers_every_family_and_special_point():
    """The default seeds use every enabled family, and the designed special points occur."""
    fams, events, attempts, second = Counter(), Counter(), [], 0
    for seed in range(DEFAULT_BLOCKS * BLOCK):
        prog, n = build(seed)
        assert prog is not None, f"seed {seed}: no valid program"
        fams.update(prog.families)
        events.update(prog.events)
        attempts.append(n)
        second += prog.v2 is not None
    for f in ENABLED:
        assert fams[f] >= 20, f"family {f} used only {fams[f]} times"
    for e in ["prod_zero", "prod_two_zeros", "tie_maximum", "tie_structural", "tie_reduce", "det_singular",
              "abs_zero", "ddof", "clip_tie", "unique_dups", "pow_zero_exponent"]:
        assert events[e] >= 10, f"special point {e} occurred only {events[e]} times: {dict(events)}"
    assert second >= 0.9 * len(attempts)


def test_programs_are_plain_numpy_and_deterministic():
    a, _ = build(7)
    b, _ = build(7)
    assert a.source == b.source and all(np.array_equal(x, y) for x, y in zip(a.inputs, b.inputs))
    outs = a.fn(*a.inputs)
    assert all(isinstance(o, (np.ndarray, np.floating)) for o in outs)


def test_the_checks_catch_a_wrong_rule():
    """A reverse-mode rule off by 0.1% (forward right) fails the programs that use it."""
    from autodiff import primitives as P
    saved = P.tanh.vjps
    P.tanh.vjps = (lambda g, ans, x: g * (1.0 - ans * ans) * 1.001,)
    try:
        bad = [run_seed(s, ["arith", "trig", "sum_mean"])[0] for s in range(10)]
    finally:
        P.tanh.vjps = saved
    assert bad.count("fail") >= 5, bad


# -- a survey by family, from the command line ------------------------------------------------------

BASE = ["arith", "trig", "sum_mean", "shape"]


def main(argv=None):
    import argparse
    import time
    p = argparse.ArgumentParser(description="run random programs, grouped by op family")
    p.add_argument("--families", default=None, help="comma-separated families to survey one by one "
                   "(each mixed with the base families %s); default: all" % BASE)
    p.add_argument("--n", type=int, default=40, help="programs per family")
    p.add_argument("--all", action="store_true", help="instead: the default run, all families mixed")
    p.add_argument("--seeds", default=None, help="with --all: a range lo:hi")
    p.add_argument("--show", type=int, default=1, help="full programs shown per failure kind")
    a = p.parse_args(argv)
    if a.all:
        lo, hi = (int(s) for s in (a.seeds or f"0:{DEFAULT_BLOCKS * BLOCK}").split(":"))
        surveys = [("all", None, range(lo, hi))]
    else:
        fams = a.families.split(",") if a.families else list(FAMILIES)
        surveys = [(f, sorted(set(BASE + [f])), range(500_000, 500_000 + a.n)) for f in fams]
    for label, enabled, seeds in surveys:
        t = time.time()
        kinds, shown, counts, gen_errors = Counter(), Counter(), Counter(), Counter()
        for s in seeds:
            status, prog, msg, s2 = run_seed(s, enabled)
            counts[status] += 1
            counts["second_order"] += s2
            if prog is not None:
                gen_errors.update(prog.gen_errors)
            if status == "fail":
                first = msg.splitlines()[0]
                key = re.sub(r"[-+]?\d[\d.e+-]*", "#", first.split(": ", 1)[1])[:90]
                kinds[key] += 1
                if shown[key] < a.show:
                    shown[key] += 1
                    print(f"--- {label}: {msg}\n{prog.describe()}")
        print(f"=== {label}: {dict(counts)} in {time.time() - t:.1f}s; generator choices numpy "
              f"refused: {dict(gen_errors)}")
        for k, c in kinds.most_common():
            print(f"    {c:4d}  {k}")


if __name__ == "__main__":
    main()
