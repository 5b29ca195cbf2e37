"""Registry sweep: every primitive through `check_grads`, to second order.

`TABLE` maps every registered primitive name to test cases: a function of
float64 arrays that applies the primitive (through the numpy API where numpy
has a spelling for it) and generators for inputs that respect the primitive's
domain (positive logs, no ties for maximum/sort, well-conditioned matrices).
Every case runs forward and reverse mode at order 2; a test asserts that the
table covers exactly the registered primitives, so no primitive ships
untested.  Beyond check_grads (one tangent direction), each case is also run
with K > 1 directions (jacfwd against jacrev), with tangents and cotangents
that are themselves differentiated values, and in float32 (no upcast).  The
composites in `autodiff.ops` get the same treatment, and the checker itself is
tested: a deliberately wrong rule must make it fail.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest

from autodiff import check_grads, grad, jacfwd, jacrev, jvp, vjp
from autodiff import ops
from autodiff import primitives as P
from autodiff.core import Box, primal_value
from autodiff.rules.base import constant
from autodiff.tape import ReverseTrace
from autodiff.tree import tree_flatten, tree_map


# -- input generators: each returns a maker drawing from numpy's global RNG -------------
# (conftest seeds it before every test, so each case sees the same inputs every run)
def normal(shape):
    return lambda: np.random.standard_normal(shape)


def uniform(shape, lo, hi):
    return lambda: np.random.uniform(lo, hi, shape)


def positive(shape):
    return uniform(shape, 0.5, 2.0)


def unit(shape):  # inside the domain of arcsin, arccos, arctanh
    return uniform(shape, -0.9, 0.9)


def away0(shape, lo=0.3, hi=1.5):
    """Random sign, magnitude in [lo, hi]: away from the kink of abs and the pole of 1/x."""
    return lambda: np.where(np.random.uniform(size=shape) < 0.5, -1.0, 1.0) * np.random.uniform(lo, hi, shape)


def distinct(*shapes, lo=-2.0, hi=2.0):
    """Arrays whose entries, all together, are pairwise well apart: no ties for
    maximum/minimum/max/min/sort, so central differences see a smooth function."""
    def make():
        sizes = [math.prod(s) for s in shapes]
        n = sum(sizes)
        vals = np.random.permutation(np.linspace(lo, hi, max(n, 2)))[:n]
        vals = vals + np.random.uniform(-0.01, 0.01, n)
        out, i = [], 0
        for s, k in zip(shapes, sizes):
            out.append(vals[i:i + k].reshape(s))
            i += k
        return tuple(out)
    return make


def nonsingular(shape, negate_row=False):
    """A = random + n I: well conditioned."""
    def make():
        n = shape[-1]
        a = 0.5 * np.random.standard_normal(shape) + n * np.eye(n)
        if negate_row:  # negative determinant
            a[..., 0, :] *= -1
        return a
    return make


def spd(shape):
    """A = B B^T + n I: symmetric positive definite."""
    def make():
        n = shape[-1]
        b = np.random.standard_normal(shape)
        return b @ np.swapaxes(b, -1, -2) + n * np.eye(n)
    return make


def fixed(value):
    return lambda: np.array(value, dtype=np.float64)


def sid(shape) -> str:
    return "x".join(map(str, shape)) if shape else "0d"


# -- the table ---------------------------------------------------------------------------
@dataclass
class Case:
    prim: str | None
    id: str
    f: Callable
    makers: tuple
    order: int = 2
    tol: dict = field(default_factory=dict)
    marks: tuple = ()

    def args(self) -> tuple:
        out = []
        for m in self.makers:
            v = m() if callable(m) else m
            out.extend(v if isinstance(v, tuple) else (v,))
        return tuple(a if isinstance(a, float) or (isinstance(a, np.ndarray) and a.dtype.kind == "f")
                     else np.asarray(a, dtype=np.float64) for a in out)


TABLE: dict[str, list[Case]] = {}


def case(prim, id, f, *makers, order=2, marks=(), **tol):
    TABLE.setdefault(prim, []).append(Case(prim, id, f, makers, order, tol, tuple(marks)))


COMPOSITES: list[Case] = []


def comp(id, f, *makers, order=2, marks=(), **tol):
    COMPOSITES.append(Case(None, id, f, makers, order, tol, tuple(marks)))


NONDIFF = ("sign", "floor", "ceil", "rint")

# elementwise, unary: (), (2,), (3,2), (1,2)
UNARY = {
    "neg": (np.negative, normal),
    "exp": (np.exp, normal),
    "log": (np.log, positive),
    "log1p": (np.log1p, lambda s: uniform(s, -0.5, 2.0)),
    "expm1": (np.expm1, normal),
    "sqrt": (np.sqrt, positive),
    "sin": (np.sin, normal),
    "cos": (np.cos, normal),
    "tan": (np.tan, lambda s: uniform(s, -1.2, 1.2)),
    "tanh": (np.tanh, normal),
    "sinh": (np.sinh, normal),
    "cosh": (np.cosh, normal),
    "arctan": (np.arctan, normal),
    "arcsin": (np.arcsin, unit),
    "arccos": (np.arccos, unit),
    "arctanh": (np.arctanh, unit),
    "abs": (np.abs, away0),
}
UNARY_SHAPES = [(), (2,), (3, 2), (1, 2)]
for _name, (_fn, _gen) in UNARY.items():
    for _s in UNARY_SHAPES:
        case(_name, sid(_s), _fn, _gen(_s))
    case(_name, "bcast1x2*3x2", lambda x, y, fn=_fn: fn(x) * y, _gen((1, 2)), normal((3, 2)))
case("neg", "operator", lambda x: -x, normal((3, 2)))
case("abs", "operator", lambda x: abs(x), away0((3, 2)))
case("sin", "python-float", np.sin, 0.7)
case("exp", "python-float", np.exp, -0.3)

# elementwise, binary: equal shapes, broadcasting both ways, 0-d and Python scalars
BIN_SHAPES = [((), ()), ((2,), (2,)), ((3, 2), (3, 2)), ((3, 2), (1, 2)), ((1, 2), (3, 2)),
              ((2,), (3, 2)), ((3, 2), (2,)), ((), (3, 2)), ((3, 2), ())]


def _pair(gx, gy):
    return lambda sx, sy: (gx(sx), gy(sy))


def _distinct_pair(sx, sy):
    return (distinct(sx, sy),)


BINARY = {  # name: (ufunc, makers for (sx, sy), python scalar, x-maker for f(x, s), y-maker for f(s, y))
    "add": (np.add, _pair(normal, normal), 1.7, normal, normal),
    "sub": (np.subtract, _pair(normal, normal), 1.7, normal, normal),
    "mul": (np.multiply, _pair(normal, normal), 1.7, normal, normal),
    "div": (np.divide, _pair(normal, away0), 1.7, normal, away0),
    "pow": (np.power, _pair(positive, lambda s: uniform(s, -2.0, 2.0)), 1.7, positive,
            lambda s: uniform(s, -2.0, 2.0)),
    "maximum": (np.maximum, _distinct_pair, 0.0, away0, away0),
    "minimum": (np.minimum, _distinct_pair, 0.0, away0, away0),
}
for _name, (_fn, _makers, _c, _gx, _gy) in BINARY.items():
    for _sx, _sy in BIN_SHAPES:
        case(_name, f"{sid(_sx)},{sid(_sy)}", _fn, *_makers(_sx, _sy))
    case(_name, "3x2,python-scalar", lambda x, fn=_fn, c=_c: fn(x, c), _gx((3, 2)))
    case(_name, "python-scalar,3x2", lambda y, fn=_fn, c=_c: fn(c, y), _gy((3, 2)))
case("add", "operator", lambda x, y: x + y + 1.0, normal((3, 2)), normal((1, 2)))
case("sub", "operator", lambda x, y: 2.0 - x - y, normal((3, 2)), normal((2,)))
case("mul", "operator", lambda x, y: 3.0 * x * y, normal((3, 2)), normal(()))
case("mul", "same-operand", lambda x: x * x, normal((3, 2)))
case("div", "operator", lambda x, y: 1.0 / x + x / y, away0((3, 2)), away0((1, 2)))
case("pow", "operator", lambda x, y: x ** y + 2.0 ** y, positive((3, 2)), normal((2,)))
case("pow", "int-exponent-negative-base", lambda x: x ** 3, normal((3, 2)))
case("pow", "exponent-minus-one", lambda x: x ** -1, away0((3, 2)))
case("pow", "exponent-zero", lambda x: x ** 0.0 + x, normal((3, 2)))
case("pow", "square-root-exponent", lambda x: x ** 0.5, positive((3, 2)))
case("maximum", "relu", lambda x: np.maximum(x, 0.0) + np.maximum(0.0, 2 * x), away0((3, 2)))

MASK = np.array([[True, False], [False, True], [True, True]])
case("where", "3x2", lambda x, y: np.where(MASK, x, y), normal((3, 2)), normal((3, 2)))
case("where", "0d", lambda x, y: np.where(np.bool_(True), x, y), normal(()), normal(()))
case("where", "2", lambda x, y: np.where(MASK[0], x, y), normal((2,)), normal((2,)))
case("where", "cond3x2,x1x2,y0d", lambda x, y: np.where(MASK, x, y), normal((1, 2)), normal(()))
case("where", "cond2,x3x2,y1x2", lambda x, y: np.where(MASK[1], x, y), normal((3, 2)), normal((1, 2)))
case("where", "python-scalar-branch", lambda x: np.where(MASK, x, 0.5) + np.where(MASK, -1.0, x),
     normal((3, 2)))
case("where", "leaky-relu", lambda x: np.where(x > 0, x, 0.1 * x), away0((3, 2)))
case("where", "inf-in-branch-not-taken",  # the double-where idiom must keep the gradient finite
     lambda x: np.where(x > 0, np.sqrt(np.where(x > 0, x, 1.0)), 0.0), away0((3, 2)))

# cast: exact round trips (the checker's float64 tangents would be rounded by float32)
_F32 = dict(eps=1e-2, atol=1e-4, rtol=1e-4)
for _s in [(), (2,), (3, 2)]:
    case("cast", f"f32->f64->f32-{sid(_s)}", lambda x: x.astype(np.float64).astype(np.float32),
         lambda s=_s: np.random.standard_normal(s).astype(np.float32), **_F32)
for _id, _sa, _sb in [("3x2", (3, 2), (3, 2)), ("broadcast", (3, 1), (1, 2)), ("0d", (), (3,)), ("row", (2,), (3, 2))]:
    case("nansafe_mul", _id, lambda a, b: P.nansafe_mul(a, b), normal(_sa), normal(_sb))
case("nansafe_mul", "zeros-in-a", lambda b: P.nansafe_mul(np.array([0.0, 1.5, 0.0]), b), normal((3,)))
case("copy", "3x2", np.copy, normal((3, 2)))
case("copy", "method-0d", lambda x: x.copy() * 2.0, normal(()))
case("copy", "deepcopy", lambda x: copy.deepcopy(x) ** 2, normal((2, 3)))
case("cast", "f64->f32->f64-fwd", lambda x: x.astype(np.float32).astype(np.float64), normal((3, 2)),
     modes=("fwd",), **_F32)
case("cast", "f64->f32->f64-rev", lambda x: x.astype(np.float32).astype(np.float64), normal((3, 2)),
     modes=("rev",), **_F32)
case("cast", "f32*f32-product", lambda x, y: (x.astype(np.float32) * y).astype(np.float64),
     lambda: np.array([0.5, -1.25, 2.0]), lambda: np.array([1.5, 0.75, -2.0], np.float32),
     modes=("rev",), **_F32)


# nondifferentiable elementwise: inputs away from the jumps (checked separately below)
def _off_grid(shape):  # k + u, u in [0.15, 0.35] or [0.65, 0.85]: away from integers and halves
    def make():
        u = np.random.uniform(0.15, 0.35, shape) + 0.5 * (np.random.uniform(size=shape) < 0.5)
        return np.random.randint(-3, 3, shape) + u
    return make


for _name, _fn in [("sign", np.sign), ("floor", np.floor), ("ceil", np.ceil), ("rint", np.rint)]:
    for _s in [(), (2,), (3, 2)]:
        case(_name, sid(_s), _fn, _off_grid(_s))

# reductions: axis None, int, negative, tuple; keepdims
REDUCE_AXES = [((), None, False), ((2,), None, False), ((2,), 0, False), ((2,), -1, True),
               ((3, 2), None, False), ((3, 2), 0, False), ((3, 2), 1, False), ((3, 2), -1, False),
               ((3, 2), (0, 1), False), ((3, 2), 0, True), ((3, 2), None, True),
               ((1, 2), 0, False), ((2, 3, 4), (0, 2), False), ((2, 3, 4), -2, True),
               ((2, 3, 4), (-1, 0), True)]
_REDUCE = {"sum": (np.sum, normal), "prod": (np.prod, lambda s: away0(s, 0.5, 1.5)),
           "max": (np.max, lambda s: distinct(s)), "min": (np.min, lambda s: distinct(s))}
for _name, (_fn, _gen) in _REDUCE.items():
    for _s, _ax, _kd in REDUCE_AXES:
        case(_name, f"{sid(_s)}-axis{_ax}" + ("-keepdims" if _kd else ""),
             lambda x, fn=_fn, ax=_ax, kd=_kd: fn(x, axis=ax, keepdims=kd), _gen(_s))
case("sum", "method", lambda x: x.sum(axis=0) + x.sum(), normal((3, 2)))
case("prod", "method", lambda x: x.prod(axis=-1), away0((3, 2), 0.5, 1.5))
case("max", "method", lambda x: x.max(axis=1, keepdims=True), distinct((3, 2)))
case("min", "method", lambda x: x.min(), distinct((3, 2)))

for _s, _ax in [((), None), ((2,), None), ((2,), 0), ((3, 2), None), ((3, 2), 0), ((3, 2), 1),
                ((3, 2), -1), ((1, 2), 0), ((2, 3, 4), 1)]:
    case("cumsum", f"{sid(_s)}-axis{_ax}", lambda x, ax=_ax: np.cumsum(x, axis=ax), normal(_s))
case("cumsum", "method", lambda x: x.cumsum(axis=0), normal((3, 2)))

# shapes
for _s, _new in [((3, 2), (6,)), ((3, 2), (2, 3)), ((3, 2), (2, -1, 1)), ((), (1, 1)), ((2,), (1, 2)),
                 ((1, 2), (2,)), ((2, 3, 4), (4, 6))]:
    case("reshape", f"{sid(_s)}->{_new}", lambda x, n=_new: np.reshape(x, n), normal(_s))
case("reshape", "method", lambda x: x.reshape(2, 3), normal((3, 2)))
case("reshape", "ravel", lambda x: x.ravel(), normal((3, 2)))

case("transpose", "0d-direct", lambda x: P.transpose(x, axes=()), normal(()))
case("transpose", "2-direct", lambda x: P.transpose(x, axes=(0,)), normal((2,)))
case("transpose", "3x2-T", lambda x: x.T, normal((3, 2)))
case("transpose", "1x2-T", lambda x: x.T, normal((1, 2)))
case("transpose", "2x3x4-axes", lambda x: np.transpose(x, (1, 2, 0)), normal((2, 3, 4)))
case("transpose", "2x3x4-negative-axes", lambda x: np.transpose(x, (-1, 0, -2)), normal((2, 3, 4)))
case("transpose", "2x3x4-default", lambda x: x.transpose(), normal((2, 3, 4)))

for _s, _to in [((), (3, 2)), ((2,), (3, 2)), ((1, 2), (3, 2)), ((3, 1), (2, 3, 4)), ((), ())]:
    case("broadcast_to", f"{sid(_s)}->{sid(_to)}",
         (lambda x, to=_to: P.broadcast_to(x, shape=to)) if _s == _to else
         (lambda x, to=_to: np.broadcast_to(x, to)), normal(_s))

case("concatenate", "2+2", lambda x, y: np.concatenate([x, y]), normal((2,)), normal((2,)))
case("concatenate", "3x2+1x2-axis0", lambda x, y: np.concatenate([x, y], axis=0), normal((3, 2)),
     normal((1, 2)))
case("concatenate", "3x2+3x1-axis-1", lambda x, y: np.concatenate((x, y), axis=-1), normal((3, 2)),
     normal((3, 1)))
case("concatenate", "three-operands", lambda x, y, z: np.concatenate([x, y, z]), normal((2,)),
     normal((3,)), normal((1,)))
case("concatenate", "with-constant", lambda x: np.concatenate([x, np.ones((2, 2)), 2 * x], axis=0),
     normal((3, 2)))
case("concatenate", "axis-None", lambda x, y: np.concatenate([x, y], axis=None), normal((3, 2)),
     normal((2,)))

case("pad", "2-int", lambda x: np.pad(x, 1), normal((2,)))
case("pad", "3x2-pairs", lambda x: np.pad(x, ((1, 0), (0, 2))), normal((3, 2)))
case("pad", "1x2-constant-values", lambda x: np.pad(x, ((0, 1), (1, 1)), constant_values=0.5),
     normal((1, 2)))
case("pad", "0d", lambda x: np.pad(x, 1), normal(()))
case("pad", "2x3x4", lambda x: np.pad(x, ((0, 0), (2, 1), (1, 0))), normal((2, 3, 4)))

# indexing
_IDX = np.array([2, 0])
_REP = np.array([0, 2, 0, 0, 1])  # repeated: the scatter-add must accumulate
for _id, _s, _fn in [
    ("0d-empty-tuple", (), lambda x: x[()]),
    ("0d-None", (), lambda x: x[None]),
    ("0d-Ellipsis", (), lambda x: x[...]),
    ("2-int", (2,), lambda x: x[1]),
    ("2-negative", (2,), lambda x: x[-1]),
    ("3x2-int", (3, 2), lambda x: x[1]),
    ("3x2-negative-pair", (3, 2), lambda x: x[-1, -2]),
    ("3x2-column", (3, 2), lambda x: x[:, 1]),
    ("5-slice-step", (5,), lambda x: x[1::2]),
    ("5-reverse", (5,), lambda x: x[::-1]),
    ("3x2-slices-step", (3, 2), lambda x: x[::2, ::-1]),
    ("2x3x4-Ellipsis-None", (2, 3, 4), lambda x: x[..., None, 1]),
    ("2x3x4-None-slice", (2, 3, 4), lambda x: x[None, :, 1:, ::3]),
    ("1x2-int-array", (1, 2), lambda x: x[:, np.array([1, 0, 1])]),
    ("3-int-array", (3,), lambda x: x[_IDX]),
    ("3x2-int-array", (3, 2), lambda x: x[_IDX]),
    ("3x2-list", (3, 2), lambda x: x[[0, 2], [1, 1]]),
    ("3-repeated", (3,), lambda x: x[_REP]),
    ("3x2-repeated-2d", (3, 2), lambda x: x[np.array([[0, 0], [2, 0]]), np.array([1, 1])]),
    ("3x2-bool-mask", (3, 2), lambda x: x[MASK]),
    ("3x2-bool-rows", (3, 2), lambda x: x[np.array([True, False, True])]),
    ("3x2-bool-mask-from-values", (3, 2), lambda x: x[x > 0]),
    ("2x3x4-mixed-separated", (2, 3, 4), lambda x: x[np.array([1, 0, 1]), :, np.array([3, 3, 0])]),
    ("2x3x4-mixed-adjacent", (2, 3, 4), lambda x: x[:, np.array([2, 2]), np.array([0, 3])]),
    ("2x3x4-advanced-Ellipsis", (2, 3, 4), lambda x: x[..., _REP[:3]]),
    ("2x3x4-int-and-array", (2, 3, 4), lambda x: x[1, :, np.array([0, 0, 2])]),
    ("3x2-negative-array", (3, 2), lambda x: x[np.array([-1, -3, -1])]),
]:
    case("getitem", _id, _fn, away0(_s) if "from-values" in _id else normal(_s))

for _id, _xs, _vs, _idx in [
    ("int", (3, 2), (2,), (1,)), ("slice", (4,), (2,), (slice(1, 3),)), ("scalar-value", (4,), (), (slice(None, None, 2),)),
    ("Ellipsis", (2, 3), (3,), (Ellipsis,)), ("repeated", (3,), (4,), (_REP[:4],)),
    ("bool-mask", (3, 2), (4,), (MASK,)), ("mixed", (2, 3, 4), (3, 3), (np.array([1, 0, 1]), slice(None), np.array([3, 3, 0]))),
]:
    case("index_update", _id, lambda x, v, idx=_idx: P.index_update(x, v, idx=idx), normal(_xs), normal(_vs))
for _id, _as, _bs, _idx in [("repeated", (4,), (3,), (np.array([0, 2, 0]),)), ("slice", (4, 2), (2,), (slice(1, 3),)),
                             ("mixed", (2, 3, 2), (3, 3), (np.array([1, 0, 1]), slice(None), np.array([0, 1, 0]))),
                             ("scalar", (3,), (), (np.array([1, 1]),))]:
    case("add_at", _id, lambda a, b, idx=_idx: P.add_at(a, b, idx=idx), normal(_as), normal(_bs))
case("index_update", "setitem-copy", lambda x, v: _setitem(x, v), normal((4, 3)), normal((3,)), order=1)  # (grad of jvp through a write is refused)
case("index_add", "0d-into-3", lambda g: P.index_add(g, idx=(1,), shape=(3,)), normal(()))
case("index_add", "slice", lambda g: P.index_add(g, idx=(slice(1, 3),), shape=(4,)), normal((2,)))
case("index_add", "step-and-None", lambda g: P.index_add(g, idx=(None, slice(None, None, 2)), shape=(3, 2)),
     normal((1, 2, 2)))
case("index_add", "repeated", lambda g: P.index_add(g, idx=(_REP,), shape=(3,)), normal((5,)))
case("index_add", "repeated-rows", lambda g: P.index_add(g, idx=(_REP,), shape=(3, 2)), normal((5, 2)))
case("index_add", "bool-mask", lambda g: P.index_add(g, idx=(MASK,), shape=(3, 2)), normal((4,)))
case("index_add", "mixed-separated",
     lambda g: P.index_add(g, idx=(np.array([1, 0, 1]), slice(None), np.array([3, 3, 0])), shape=(2, 3, 4)),
     normal((3, 3)))

def _setitem(x, v):
    y = x.copy()
    y[1:3] = v * 2.0
    y[0] += v
    return y


# products
for _id, _sa, _sb in [("1d.1d", (3,), (3,)), ("2d.1d", (2, 3), (3,)), ("1d.2d", (3,), (3, 2)),
                      ("2d.2d", (2, 3), (3, 4)), ("3d.2d-batched", (2, 3, 4), (4, 2)),
                      ("2d.3d-batched", (3, 4), (2, 4, 2)), ("3d.3d", (2, 3, 4), (2, 4, 2)),
                      ("broadcast-batch", (2, 1, 3, 4), (5, 4, 2)), ("1d.3d", (4,), (2, 4, 3)),
                      ("3d.1d", (2, 3, 4), (4,)), ("1x1", (1, 1), (1, 1))]:
    case("matmul", _id, lambda a, b: a @ b, normal(_sa), normal(_sb))
case("matmul", "np.matmul", np.matmul, normal((2, 3)), normal((3, 2)))
case("matmul", "rmatmul-constant", lambda b: np.ones((2, 3)) @ b, normal((3, 2)))
case("matmul", "same-operand", lambda a: a @ a.T, normal((3, 2)))

for _spec, _shapes in [("ij,jk->ik", [(2, 3), (3, 4)]), ("bi,io->bo", [(2, 3), (3, 2)]),
                       ("bhwc,oc->bhwo", [(2, 2, 3, 3), (2, 3)]), ("ij->j", [(3, 2)]),
                       ("ij->", [(3, 2)]), ("i,i->", [(3,), (3,)]), ("i,j->ij", [(2,), (3,)]),
                       ("ij,jk,kl->il", [(2, 3), (3, 2), (2, 2)]), ("ij,jk", [(2, 3), (3, 2)]),
                       ("ji", [(2, 3)]), ("...ij,jk->...ik", [(2, 2, 3), (3, 2)]),
                       ("...ij,jk->...ik", [(2, 3), (3, 2)]),
                       ("ij,j->i", [(3, 2), (2,)]), ("ij,ij->i", [(3, 2), (3, 2)]),
                       (",ij->ij", [(), (3, 2)]), ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)])]:
    case("einsum", "_".join([_spec] + [sid(sh) for sh in _shapes]),
         lambda *xs, spec=_spec: np.einsum(spec, *xs), *[normal(s) for s in _shapes])
case("einsum", "with-constant", lambda x: np.einsum("ij,jk->ik", x, np.ones((2, 3))), normal((3, 2)))
case("einsum", "tensordot", lambda x, y: np.tensordot(x, y, axes=1), normal((2, 3)), normal((3, 2)))

# linear algebra: 2x2, 3x3, batched (2,3,3)
for _id, _sa, _sb in [("2x2,vector", (2, 2), (2,)), ("2x2,2x1", (2, 2), (2, 1)),
                      ("3x3,matrix", (3, 3), (3, 2)), ("batched", (2, 3, 3), (2, 3, 2)),
                      ("batched,vector", (2, 3, 3), (3,)), ("broadcast-a", (3, 3), (2, 3, 2)),
                      ("broadcast-b", (2, 3, 3), (3, 2))]:
    case("solve", _id, np.linalg.solve, nonsingular(_sa), normal(_sb))
for _s in [(2, 2), (3, 3), (2, 3, 3)]:
    case("inv", sid(_s), np.linalg.inv, nonsingular(_s))
    case("logabsdet", sid(_s), lambda a: np.linalg.slogdet(a)[1], nonsingular(_s))
    case("cholesky", sid(_s), np.linalg.cholesky, spd(_s))
for _s in [(1, 1), (2, 2), (3, 3), (2, 3, 3), (4, 4)]:
    case("det", sid(_s), np.linalg.det, normal(_s))
    case("adjugate", sid(_s), lambda a: P.adjugate(a), normal(_s))
for _id, _a in [("rank1-2x2", [[1.0, 2.0], [2.0, 4.0]]), ("zero-1x1", [[0.0]]),
                ("rank2-3x3", [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]),
                ("rank1-3x3", np.outer([1.0, 2.0, -1.0], [0.5, -1.0, 2.0])), ("zero-3x3", np.zeros((3, 3)))]:
    case("det", "singular-" + _id, np.linalg.det, fixed(_a))
    case("adjugate", "singular-" + _id, lambda a: P.adjugate(a), fixed(_a))
case("logabsdet", "negative-det", lambda a: np.linalg.slogdet(a)[1], nonsingular((3, 3), negate_row=True))
case("cholesky", "of-symmetrized", lambda a: np.linalg.cholesky(0.5 * (a + a.T)), spd((3, 3)))


# cases of the primitives and composites of each family (autodiff/families/<name>.py)
# live in tests/cases_<name>.py: ``add_cases(case, comp, makers)`` registers them
# with the same helpers as the cases above.
def _family_cases():
    import importlib
    from autodiff import families
    makers = dict(normal=normal, uniform=uniform, positive=positive, unit=unit, away0=away0,
                  distinct=distinct, nonsingular=nonsingular, spd=spd, fixed=fixed, sid=sid, F32=_F32)
    for name in families.FAMILIES:
        try:
            module = importlib.import_module(f"cases_{name}")
        except ModuleNotFoundError:
            continue
        module.add_cases(case, comp, makers)


def _params(cases):
    return [pytest.param(c, id=f"{c.prim}-{c.id}" if c.prim else c.id, marks=c.marks) for c in cases]


_family_cases()
SWEEP = _params([c for name, cs in TABLE.items() if name not in NONDIFF for c in cs])
NONDIFF_CASES = _params([c for name in NONDIFF for c in TABLE[name]])


# -- the sweep --------------------------------------------------------------------------
def test_table_covers_exactly_the_registry():
    assert set(TABLE) == set(P.REGISTRY), (
        f"primitives without a test case: {sorted(set(P.REGISTRY) - set(TABLE))}; "
        f"table entries that are not primitives: {sorted(set(TABLE) - set(P.REGISTRY))}")
    assert all(TABLE[name] for name in TABLE)
    assert {name for name, p in P.REGISTRY.items() if p.nondiff} == set(NONDIFF)


@pytest.mark.parametrize("c", SWEEP)
def test_primitive_grads(c):
    check_grads(c.f, c.args(), order=c.order, **c.tol)


@pytest.mark.parametrize("c", SWEEP)
def test_case_applies_its_primitive(c):
    """Each case really records its primitive, and the boxed run's value is numpy's."""
    args = c.args()
    trace = ReverseTrace()
    out = c.f(*[trace.new_input(a) for a in args])
    assert P.REGISTRY[c.prim] in {node.prim for node in trace.tape}
    expected = c.f(*args)
    got_leaves, exp_leaves = tree_flatten(out)[0], tree_flatten(expected)[0]
    assert len(got_leaves) == len(exp_leaves)
    for g, e in zip(got_leaves, exp_leaves):
        g = primal_value(g)
        assert np.shape(g) == np.shape(e)
        assert np.result_type(g) == np.result_type(e)
        np.testing.assert_allclose(g, e, rtol=1e-13, atol=1e-13)


def _plain(y):
    return isinstance(y, (np.ndarray, np.generic)) and not isinstance(y, Box)


@pytest.mark.parametrize("c", SWEEP)
def test_primitive_jacobians_many_directions(c):
    """K > 1 tangents at once (jacfwd) against one reverse sweep per output (jacrev):
    check_grads pushes one direction, so this is what exercises the rules' K axis."""
    if "modes" in c.tol:
        pytest.skip("float32 round trip: only one mode is exact")
    args = c.args()
    nums = tuple(range(len(args)))
    jf = tree_flatten(jacfwd(c.f, argnums=nums)(*args))[0]
    jr = tree_flatten(jacrev(c.f, argnums=nums)(*args))[0]
    assert len(jf) == len(jr)
    for a, b in zip(jf, jr):
        assert np.shape(a) == np.shape(b)
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("c", SWEEP)
def test_rules_take_boxed_tangents_and_cotangents(c):
    """Tangents and cotangents that are themselves differentiated values (a tangent
    that depends on the input; a cotangent computed from the output)."""
    if c.prim == "cast":
        pytest.skip("float32 arithmetic on the directions is not exact")
    args = c.args()
    check_grads(lambda *a: jvp(c.f, a, tuple(1.3 * x + 0.7 for x in a))[1], args, **c.tol)
    check_grads(lambda *a: vjp(c.f, *a)[1](1.5 * c.f(*a) + 0.3), args, **c.tol)


def check_float32(c: Case):
    """No silent upcast: where numpy keeps float32, tangents and cotangents do
    too, to second order (forward over reverse)."""
    args = tuple(np.float32(a) if isinstance(a, float) else a.astype(np.float32) for a in c.args())
    expected = tree_flatten(c.f(*args))[0]
    if c.prim == "cast" or any(np.result_type(e) != np.float32 for e in expected):
        pytest.skip("numpy itself does not keep float32 here")
    tangents = tuple(np.ones_like(a) for a in args)
    out, t = jvp(c.f, args, tangents)
    for leaf in tree_flatten(out)[0] + tree_flatten(t)[0]:
        assert np.result_type(leaf) == np.float32
    out, pullback = vjp(c.f, *args)
    ct = tree_map(np.ones_like, out)
    assert [np.result_type(g) for g in pullback(ct)] == [np.float32] * len(args)
    _, tt = jvp(lambda *a: vjp(c.f, *a)[1](ct), args, tangents)
    assert [np.result_type(g) for g in tt] == [np.float32] * len(args)


@pytest.mark.parametrize("c", SWEEP)
def test_float32_in_float32_out(c):
    check_float32(c)


@pytest.mark.parametrize("c", NONDIFF_CASES)
def test_nondiff_primitive(c):
    """sign/floor/ceil/rint: plain outputs, zero derivatives in both modes."""
    (x,) = c.args()
    v = np.random.standard_normal(x.shape)
    out, t = jvp(c.f, (x,), (v,))
    assert _plain(out) and _plain(t)
    np.testing.assert_array_equal(out, c.f(x))
    np.testing.assert_array_equal(t, np.zeros_like(x))
    out, pullback = vjp(c.f, x)
    assert not isinstance(out, Box)
    np.testing.assert_array_equal(pullback(np.ones_like(x))[0], np.zeros_like(x))

    seen = []

    def spy(x):
        y = c.f(x)
        seen.append(y)
        return x * y

    # the op contributes no derivative: d/dx [x * op(x)] = op(x), in both modes
    np.testing.assert_array_equal(grad(lambda x: np.sum(spy(x)))(x), c.f(x))
    np.testing.assert_array_equal(jvp(spy, (x,), (v,))[1], v * c.f(x))
    assert seen and all(_plain(y) for y in seen)
    check_grads(spy, (x,), order=2)
    # called directly on a box, the primitive gives a plain array too
    prim = P.REGISTRY[c.prim]
    boxed = []
    jvp(lambda x: boxed.append(prim(x)) or x, (x,), (v,))
    assert _plain(boxed[0])


# -- value checks that finite differences cannot make (non-smooth points) ----------------
def test_max_ties_share_the_derivative():
    x = np.array([1.0, 3.0, 3.0, 0.0])
    np.testing.assert_allclose(grad(lambda x: np.max(x))(x), [0, 0.5, 0.5, 0])
    np.testing.assert_allclose(jvp(lambda x: np.max(x), (x,), (np.array([0, 1.0, 3.0, 5.0]),))[1], 2.0)
    np.testing.assert_allclose(grad(lambda x: np.sum(np.maximum(x, 1.0)))(x), [0.5, 1, 1, 0])
    np.testing.assert_allclose(grad(lambda x: np.sum(np.abs(x)))(x), [1, 1, 1, 0])


def test_repeated_index_accumulates():
    x = np.arange(3.0)
    np.testing.assert_array_equal(grad(lambda x: np.sum(x[_REP]))(x), [3.0, 1.0, 1.0])
    g = P.index_add(np.ones(5), idx=(_REP,), shape=(3,))
    np.testing.assert_array_equal(g, [3.0, 1.0, 1.0])


def test_cast_keeps_dtypes():
    x = np.random.standard_normal((3, 2))
    g = grad(lambda x: np.sum(x.astype(np.float32)))(x)
    assert g.dtype == np.float64
    np.testing.assert_array_equal(g, np.ones_like(x))
    out, t = jvp(lambda x: x.astype(np.float32), (x,), (np.ones_like(x),))
    assert out.dtype == np.float32 and t.dtype == np.float32
    x32 = x.astype(np.float32)
    g = grad(lambda x: np.sum(x.astype(np.float64) ** 2))(x32)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, 2 * x32, rtol=1e-6)


# -- test the tester -------------------------------------------------------------------
class swapped_rules:
    """Temporarily replace a primitive's jvp/vjp rules; always restore them."""

    def __init__(self, prim, jvps=None, vjps=None):
        self.prim, self.jvps, self.vjps = prim, jvps, vjps

    def __enter__(self):
        self.saved = (self.prim.jvps, self.prim.jvp, self.prim.vjps)
        if self.jvps is not None:
            self.prim.jvps = self.jvps(self.saved[0])
        if self.vjps is not None:
            self.prim.vjps = self.vjps(self.saved[2])
        return self

    def __exit__(self, *exc):
        self.prim.jvps, self.prim.jvp, self.prim.vjps = self.saved
        return False


def _scaled_sin_jvp(saved):
    return (lambda t, ans, x: 1.01 * saved[0](t, ans, x),)


def _negated_exp_vjp(saved):
    return (lambda g, ans, x: -saved[0](g, ans, x),)


def test_checker_catches_wrong_jvp():
    x = np.random.standard_normal((3, 2))
    saved = P.sin.jvps
    try:
        P.sin.jvps = _scaled_sin_jvp(saved)
        with pytest.raises(AssertionError):
            check_grads(np.sin, (x,))
        with pytest.raises(AssertionError):  # forward mode alone sees it against differences
            check_grads(np.sin, (x,), modes=("fwd",))
        check_grads(np.sin, (x,), modes=("rev",))  # the vjp is still right
    finally:
        P.sin.jvps = saved
    check_grads(np.sin, (x,), order=2)


def test_checker_catches_wrong_vjp():
    x = np.random.standard_normal((3, 2))
    saved = P.exp.vjps
    try:
        P.exp.vjps = _negated_exp_vjp(saved)
        with pytest.raises(AssertionError):
            check_grads(np.exp, (x,))
        with pytest.raises(AssertionError):  # the dot-product test against differences sees it
            check_grads(np.exp, (x,), modes=("rev",))
        check_grads(np.exp, (x,), modes=("fwd",))
    finally:
        P.exp.vjps = saved
    check_grads(np.exp, (x,), order=2)


def test_checker_catches_small_errors_and_broadcasting_errors():
    x, y = np.random.standard_normal((3, 2)), np.random.standard_normal((1, 2))
    # a 1e-3 relative error in a jvp
    with swapped_rules(P.tanh, jvps=lambda s: (lambda t, ans, x: (1 + 1e-3) * s[0](t, ans, x),)):
        with pytest.raises(AssertionError):
            check_grads(np.tanh, (x,))
    # a vjp that forgets to sum a broadcast cotangent back (takes row 0 instead)
    with swapped_rules(P.add, vjps=lambda s: (s[0], lambda g, ans, x, y: g[0:1])):
        with pytest.raises(AssertionError):
            check_grads(np.add, (x, y))
    check_grads(np.add, (x, y))
    check_grads(np.tanh, (x,))


def test_order_two_catches_rules_that_are_not_differentiable():
    """First-order-correct rules built from constants: only order 2 can tell."""
    x = np.random.uniform(-1, 1, (3, 2))
    # jvp of sin as t * cos(constant x): right value, but its own derivative in x is lost
    with swapped_rules(P.sin, jvps=lambda s: (lambda t, ans, x: t * P.cos(constant(x)),)):
        check_grads(np.sin, (x,), order=1)
        with pytest.raises(AssertionError):
            check_grads(np.sin, (x,), order=2)
        with pytest.raises(AssertionError):
            check_grads(np.sin, (x,), order=2, modes=("fwd",))
    # vjp of exp as g * constant(ans): reverse-over-anything sees a zero second derivative
    with swapped_rules(P.exp, vjps=lambda s: (lambda g, ans, x: g * constant(ans),)):
        check_grads(np.exp, (x,), order=1)
        with pytest.raises(AssertionError):
            check_grads(np.exp, (x,), order=2)
    check_grads(np.sin, (x,), order=2)
    check_grads(np.exp, (x,), order=2)


def test_checker_accepts_a_zero_derivative():
    x = np.random.uniform(0.5, 2.0, (3, 2))
    check_grads(lambda x: np.sin(x) ** 2 + np.cos(x) ** 2, (x,))


def test_swapped_rules_are_restored():
    before = {name: (p.jvps, p.jvp, p.vjps) for name, p in P.REGISTRY.items()}
    with pytest.raises(ZeroDivisionError):
        with swapped_rules(P.cos, jvps=lambda s: (None,), vjps=lambda s: (None,)):
            1 / 0
    assert before == {name: (p.jvps, p.jvp, p.vjps) for name, p in P.REGISTRY.items()}


# -- composites in autodiff.ops, through the numpy API -----------------------------------


comp("mean", lambda x: np.mean(x), normal((3, 2)))
comp("mean-axis-keepdims", lambda x: np.mean(x, axis=-1, keepdims=True) + x.mean(axis=0).sum(), normal((3, 2)))
comp("mean-tuple-axis", lambda x: np.mean(x, axis=(0, 2)), normal((2, 3, 4)))
comp("var", lambda x: np.var(x), normal((3, 2)))
comp("var-axis-ddof", lambda x: np.var(x, axis=0, ddof=1), normal((3, 2)))
comp("var-keepdims", lambda x: x.var(axis=1, keepdims=True), normal((3, 2)))
comp("std", lambda x: np.std(x), normal((3, 2)))
comp("std-ddof", lambda x: np.std(x, axis=0, ddof=1) + x.std(ddof=1), normal((3, 2)))
comp("clip", lambda x: np.clip(x, -0.5, 0.5),
     lambda: np.array([[-1.2, -0.3], [0.1, 0.8], [-0.7, 0.35]]) + np.random.uniform(-0.05, 0.05, (3, 2)))
comp("clip-one-sided", lambda x: np.clip(x, None, 0.2) + np.clip(x, -0.1, None) + x.clip(-0.3, 0.4),
     distinct((3, 2), lo=-1.05, hi=0.95))
comp("clip-min-max-keywords", lambda x: np.clip(x, min=-0.1, max=0.2) + x.clip(max=0.4),  # numpy >= 2.1 names
     distinct((3, 2), lo=-1.05, hi=0.95))
comp("square", np.square, normal((3, 2)))
comp("reciprocal", np.reciprocal, away0((3, 2)))
comp("exp2-log2-log10", lambda x: np.exp2(x) + np.log2(x) + np.log10(x), positive((3, 2)))
comp("logaddexp", np.logaddexp, distinct((3, 2), (1, 2)))
comp("logaddexp-huge", np.logaddexp, lambda: 1000 + np.random.standard_normal((3, 2)), normal((3, 2)))
comp("sigmoid", ops.sigmoid, normal((3, 2)))
comp("sigmoid-huge", ops.sigmoid, fixed([-1000.0, -30.0, 0.3, 30.0, 1000.0]))
comp("softplus", ops.softplus, away0((3, 2)))
comp("softplus-huge", ops.softplus, fixed([-1000.0, -30.0, 0.3, 30.0, 1000.0]))
comp("logsumexp", ops.logsumexp, normal((3, 2)))
comp("logsumexp-axis", lambda x: ops.logsumexp(x, axis=-1), normal((3, 2)))
comp("logsumexp-axis-keepdims", lambda x: ops.logsumexp(x, axis=0, keepdims=True), normal((3, 2)))
comp("logsumexp-huge", lambda x: ops.logsumexp(x, axis=1), lambda: 1000 + np.random.standard_normal((3, 2)))
comp("softmax", ops.softmax, normal((3, 2)))
comp("softmax-axis0", lambda x: ops.softmax(x, axis=0), normal((3, 4)))
comp("softmax-huge", ops.softmax, lambda: 1000 * np.random.standard_normal((2, 3)) / 1000 + 1000)
comp("log_softmax", ops.log_softmax, normal((3, 2)))
comp("log_softmax-huge", ops.log_softmax, lambda: 1000 + np.random.standard_normal((3, 2)))
comp("swapaxes", lambda x: np.swapaxes(x, 0, -1) + 0 * x.swapaxes(0, 2), normal((2, 3, 2)))
comp("moveaxis", lambda x: np.moveaxis(x, 0, -1), normal((2, 3, 4)))
comp("moveaxis-multi", lambda x: np.moveaxis(x, [0, 1], [-1, 0]), normal((2, 3, 4)))
comp("expand_dims", lambda x: np.expand_dims(x, 1), normal((3, 2)))
comp("expand_dims-tuple", lambda x: np.expand_dims(x, (0, -1)), normal((3, 2)))
comp("squeeze", lambda x: np.squeeze(x), normal((1, 3, 1)))
comp("squeeze-axis", lambda x: np.squeeze(x, axis=-1) + x.squeeze(2), normal((1, 3, 1)))
comp("ravel", lambda x: np.ravel(x), normal((3, 2)))
comp("flatten", lambda x: x.flatten(), normal((3, 2)))
comp("stack", lambda x, y: np.stack([x, y]), normal((3, 2)), normal((3, 2)))
comp("stack-axis-1", lambda x, y: np.stack([x, y, x], axis=-1), normal((3, 2)), normal((3, 2)))
comp("stack-0d", lambda x, y: np.stack([x, y]), normal(()), normal(()))
comp("split", lambda x: np.split(x, 3), normal((3, 2)))
comp("split-indices-axis", lambda x: np.split(x, [1, 3], axis=1), normal((2, 4)))
comp("take", lambda x: np.take(x, [2, 0, 2]), normal((3, 2)))
comp("take-axis", lambda x: np.take(x, np.array([1, 1, 0]), axis=1), normal((3, 2)))
comp("take-negative-axis", lambda x: np.take(x, [[0, 2], [2, 2]], axis=-2), normal((3, 2)))
comp("take_along_axis", lambda x: np.take_along_axis(x, np.array([[1], [0], [1]]), axis=1), normal((3, 2)))
comp("take_along_axis-axis0", lambda x: np.take_along_axis(x, np.array([[2, 0], [2, 2]]), axis=0),
     normal((3, 2)))
comp("take_along_axis-broadcast", lambda x: np.take_along_axis(x, np.array([[1, 0, 1]]), axis=1),
     normal((3, 2)))
comp("sort", lambda x: np.sort(x), distinct((3, 4)))
comp("sort-axis0", lambda x: np.sort(x, axis=0), distinct((3, 4)))
comp("sort-1d", np.sort, distinct((5,)))
for _id, _sa, _sb in [("scalar", (), (3,)), ("array-scalar", (3, 2), ()), ("1d.1d", (3,), (3,)),
                      ("2d.1d", (2, 3), (3,)), ("1d.2d", (3,), (3, 2)), ("2d.2d", (2, 3), (3, 4)),
                      ("3d.1d", (2, 3, 4), (4,)), ("3d.2d", (2, 3, 4), (4, 2)),
                      ("1d.3d", (4,), (2, 4, 3)), ("3d.3d", (2, 3, 4), (2, 4, 3))]:
    comp(f"dot-{_id}", np.dot, normal(_sa), normal(_sb))
comp("dot-method", lambda a, b: a.dot(b), normal((2, 3)), normal((3,)))
comp("vdot", np.vdot, normal((3, 2)), normal((3, 2)))
comp("inner", np.inner, normal((2, 3)), normal((4, 3)))
comp("inner-1d", np.inner, normal((3,)), normal((3,)))
comp("inner-0d", np.inner, normal(()), normal((3,)))
comp("tensordot-int0", lambda a, b: np.tensordot(a, b, axes=0), normal((2,)), normal((3,)))
comp("tensordot-int1", lambda a, b: np.tensordot(a, b, axes=1), normal((2, 3)), normal((3, 2)))
comp("tensordot-int2", lambda a, b: np.tensordot(a, b), normal((2, 3, 4)), normal((3, 4, 2)))
comp("tensordot-pairs", lambda a, b: np.tensordot(a, b, axes=([0, 2], [1, 0])), normal((2, 3, 4)),
     normal((4, 2, 5)))
comp("tensordot-negative-pairs", lambda a, b: np.tensordot(a, b, axes=([-1], [-2])), normal((2, 3)),
     normal((4, 3, 2)))
comp("tensordot-int-pair", lambda a, b: np.tensordot(a, b, axes=(1, 0)), normal((2, 3)), normal((3, 2)))
comp("outer", np.outer, normal((3,)), normal((2,)))
comp("outer-ravels", np.outer, normal((3, 2)), normal(()))
comp("trace", np.trace, normal((3, 3)))
comp("trace-rectangular", np.trace, normal((3, 2)))
comp("slogdet", lambda a: np.linalg.slogdet(a), nonsingular((3, 3), negate_row=True))
comp("det", np.linalg.det, nonsingular((3, 3)))
comp("det-negative", np.linalg.det, nonsingular((3, 3), negate_row=True))
comp("det-batched", np.linalg.det, nonsingular((2, 3, 3)))
comp("norm-vector", np.linalg.norm, normal((3,)))
comp("norm-frobenius", np.linalg.norm, normal((3, 2)))
comp("norm-axis", lambda x: np.linalg.norm(x, axis=1), normal((3, 2)))
comp("norm-keepdims", lambda x: np.linalg.norm(x, axis=0, keepdims=True), normal((3, 2)))
comp("vstack", lambda x, y: np.vstack([x, y]), normal((3, 2)), normal((2,)))
comp("vstack-1d", lambda x, y: np.vstack([x, y]), normal((2,)), normal((2,)))
comp("hstack", lambda x, y: np.hstack([x, y]), normal((3, 2)), normal((3, 1)))
comp("hstack-1d", lambda x, y: np.hstack([x, y]), normal((2,)), normal(()))
comp("T", lambda x: x.T @ x, normal((3, 2)))
comp("mT", lambda x: x.mT, normal((2, 3, 2)))
comp("atleast_2d", lambda x: np.atleast_2d(x), normal((3,)))
comp("astype-f32-roundtrip", lambda x: x.astype(np.float32).astype(np.float64),
     lambda: np.random.standard_normal((3, 2)), modes=("fwd",), **_F32)
comp("astype-f32-roundtrip-rev", lambda x: x.astype(np.float32).astype(np.float64),
     lambda: np.random.standard_normal((3, 2)), modes=("rev",), **_F32)
comp("astype-same-dtype", lambda x: x.astype(np.float64) * 2, normal((3, 2)))
comp("linalg-chain", lambda a, b: np.sum(np.linalg.inv(a) @ np.linalg.solve(a, b)), nonsingular((3, 3)),
     normal((3, 2)))
comp("mlp-layer", lambda w, x: ops.softmax(np.tanh(x @ w)), normal((3, 4)), normal((2, 3)))


# numpy accepts Python lists as constant operands; so must differentiable code
comp("list-add", lambda x: x + [1.0, 2.0] - [[0.5], [1.0], [2.0]], normal((3, 2)))
comp("list-where", lambda x: np.where(MASK, x, [1.0, 2.0]), normal((3, 2)))
comp("list-maximum", lambda x: np.maximum(x, [5.0, -5.0]), normal((3, 2)))
comp("list-divide", lambda x: [1.5, 2.0] / x, away0((3, 2)))
comp("list-einsum", lambda x: np.einsum("ij,j->i", x, [1.0, 2.0]), normal((3, 2)))
comp("list-tensordot", lambda x: np.tensordot(x, [1.0, 2.0], 1), normal((3, 2)))
comp("list-concatenate", lambda x: np.concatenate([x, [[1.0, 2.0]]]), normal((3, 2)))
comp("list-stack", lambda x: np.stack([x, [1.0, 2.0]]), normal((2,)))
comp("list-matmul", lambda x: x @ [[1.0], [2.0]], normal((3, 2)))
comp("list-rmatmul", lambda x: [[1.0, 2.0, 3.0]] @ x, normal((3, 2)))
comp("list-dot", lambda x: np.dot(x, [1.0, 2.0]), normal((3, 2)))
comp("list-outer", lambda x: np.outer(x, [1.0, 2.0]), normal((3,)))
comp("list-solve-rhs", lambda a: np.linalg.solve(a, [1.0, 2.0]), nonsingular((2, 2)))
comp("list-solve-matrix", lambda b: np.linalg.solve([[3.0, 1.0], [0.5, 2.0]], b), normal((2,)))
comp("list-power-base", lambda y: np.power([1.5, 2.0], y), normal((3, 2)))


@pytest.mark.parametrize("c", _params(COMPOSITES))
def test_composite_grads(c):
    args = c.args()
    check_grads(c.f, args, order=c.order, **c.tol)
    # the boxed run computes what numpy computes
    out, _ = jvp(c.f, args, tuple(np.zeros_like(a) for a in args))
    expected = c.f(*args)
    for g, e in zip(tree_flatten(out)[0], tree_flatten(expected)[0]):
        assert np.shape(g) == np.shape(e)
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("c", _params(COMPOSITES))
def test_composite_float32_in_float32_out(c):
    check_float32(c)


def test_logsumexp_is_stable():
    x = 1000 + np.random.standard_normal((3, 2))
    out = ops.logsumexp(x, axis=1)
    ref = x.max(axis=1) + np.log(np.sum(np.exp(x - x.max(axis=1, keepdims=True)), axis=1))
    np.testing.assert_allclose(out, ref, rtol=1e-14)
    g = grad(lambda x: np.sum(ops.logsumexp(x, axis=1)))(x)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, ops.softmax(x, axis=1), rtol=1e-12)
    np.testing.assert_allclose(g.sum(axis=1), 1.0, rtol=1e-12)
    x = np.array([1000.0, -1000.0, 1000.0])
    assert np.isfinite(ops.logsumexp(x))
    np.testing.assert_allclose(grad(ops.logsumexp)(x), [0.5, 0.0, 0.5])
    np.testing.assert_allclose(grad(ops.softplus)(np.array(1000.0)), 1.0)
    np.testing.assert_allclose(grad(ops.sigmoid)(np.array(-1000.0)), 0.0)
    assert np.all(np.isfinite(jvp(lambda x: np.logaddexp(x, 0.0), (x,), (np.ones(3),))[1]))


def test_per_argument_jvp_rules_replace_a_joint_rule():
    """defelementwise gives a two-argument op a joint jvp; per-argument rules defined
    later (defjvp) must be the ones the forward trace uses, not the stale joint one."""
    from autodiff import jvp
    from autodiff.core import Primitive
    from autodiff.rules.base import ONE, defelementwise, defjvp
    p = Primitive("test_joint_then_per_argument", np.add)
    defelementwise(p, ONE, ONE)
    x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    _, t = jvp(lambda a, b: p(a, b), (x, y), (np.ones(2), np.ones(2)))
    assert np.array_equal(t, [2.0, 2.0])
    defjvp(p, lambda t, ans, a, b: 3.0 * t, lambda t, ans, a, b: 5.0 * t)
    _, t = jvp(lambda a, b: p(a, b), (x, y), (np.ones(2), np.ones(2)))
    assert np.array_equal(t, [8.0, 8.0])
