"""Sweep cases of the "arrays" family (autodiff/families/arrays.py): its two
primitives (remainder, fmod) and its composites, registered into
tests/test_primitives.py's tables by ``add_cases``."""
from __future__ import annotations

import warnings

import numpy as np


def quotient_pair(sx, sy, lo=0.2, hi=0.8):
    """(x, y) with x / y = k + u, k an integer in [-3, 2] and u in [lo, hi]:
    away from the jumps of remainder and fmod, so differences see a smooth function."""
    def make():
        shape = np.broadcast_shapes(sx, sy)
        q = np.random.randint(-3, 3, shape) + np.random.uniform(lo, hi, shape)
        sign = lambda s: np.where(np.random.uniform(size=s) < 0.5, -1.0, 1.0)
        if tuple(sx) == shape:
            y = sign(sy) * np.random.uniform(0.5, 2.0, sy)
            return y * q, y
        x = sign(sx) * np.random.uniform(0.5, 2.0, sx)
        return x, x / q
    return make


def scaled_quotient(c, shape, divide=False):
    """x with x / c away from integers (or c / y, for ``divide``)."""
    def make():
        q = np.random.randint(-3, 3, shape) + np.random.uniform(0.2, 0.8, shape)
        return c / q if divide else c * q
    return make


def quiet_cross(*args, **kwargs):
    with warnings.catch_warnings():  # 2-vectors are deprecated in numpy 2
        warnings.simplefilter("ignore", DeprecationWarning)
        return np.cross(*args, **kwargs)


def add_cases(case, comp, makers):
    normal, fixed, sid, away0 = makers["normal"], makers["fixed"], makers["sid"], makers["away0"]

    # -- primitives: remainder (np.remainder, np.mod), fmod ------------------------------------
    for name, fn in [("remainder", np.remainder), ("fmod", np.fmod)]:
        for sx, sy in [((), ()), ((2,), (2,)), ((3, 2), (3, 2)), ((3, 2), (1, 2)), ((1, 2), (3, 2)),
                       ((2,), (3, 2)), ((3, 2), ()), ((), (3, 2))]:
            case(name, f"{sid(sx)},{sid(sy)}", fn, quotient_pair(sx, sy))
        case(name, "3x2,python-scalar", lambda x, fn=fn: fn(x, 1.7), scaled_quotient(1.7, (3, 2)))
        case(name, "python-scalar,3x2", lambda y, fn=fn: fn(-2.3, y), scaled_quotient(-2.3, (3, 2), True))
        case(name, "2x3x4,4", fn, quotient_pair((2, 3, 4), (4,)))
        case(name, "composed", lambda x, y, fn=fn: fn(np.sin(x) * 3.0, y) * y, quotient_pair((3, 2), (3, 2)))
    case("remainder", "np.mod", np.mod, quotient_pair((3, 2), (3, 2)))
    case("remainder", "negative-divisor", lambda x: np.remainder(x, -0.9), scaled_quotient(-0.9, (4,)))

    # -- roll, repeat, tile ------------------------------------------------------------------------
    comp("roll-flat", lambda x: np.roll(x, 1), normal((3, 2)))
    comp("roll-negative-axis0", lambda x: np.roll(x, -1, axis=0), normal((3, 2)))
    comp("roll-tuple", lambda x: np.roll(x, (1, -2), axis=(0, 2)), normal((2, 3, 4)))
    comp("roll-same-axis-twice", lambda x: np.roll(x, (1, 4), axis=(1, 1)), normal((2, 3, 4)))
    comp("roll-large-shift", lambda x: np.roll(x, 7, axis=-1), normal((3, 2)))
    comp("roll-0d", lambda x: np.roll(x, 3), normal(()))
    comp("repeat-scalar-flat", lambda x: np.repeat(x, 2), normal((3, 2)))
    comp("repeat-scalar-axis", lambda x: np.repeat(x, 3, axis=-1), normal((3, 2)))
    comp("repeat-per-element", lambda x: np.repeat(x, [1, 0, 2], axis=0), normal((3, 2)))
    comp("repeat-per-element-flat", lambda x: np.repeat(x, [2, 1, 1, 3]), normal((2, 2)))
    comp("repeat-one-element-list", lambda x: np.repeat(x, [2], axis=1), normal((2, 3, 2)))
    comp("repeat-0d", lambda x: np.repeat(x, 3), normal(()))
    comp("tile-int", lambda x: np.tile(x, 2), normal((3, 2)))
    comp("tile-longer-reps", lambda x: np.tile(x, (2, 1, 3)), normal((3, 2)))
    comp("tile-shorter-reps", lambda x: np.tile(x, (2,)), normal((2, 3, 2)))
    comp("tile-0d", lambda x: np.tile(x, (2, 2)), normal(()))
    comp("tile-ones", lambda x: np.tile(x, (1, 1, 1)), normal((3, 2)))

    # -- triangles, diagonals, trace ------------------------------------------------------------------
    comp("tril", np.tril, normal((3, 3)))
    comp("tril-k", lambda x: np.tril(x, 1) + np.tril(x, k=-1), normal((3, 4)))
    comp("triu", np.triu, normal((3, 3)))
    comp("triu-k-batched", lambda x: np.triu(x, -1) * np.triu(x, 2), normal((2, 3, 4)))
    comp("tril-1d", np.tril, normal((3,)))
    comp("diag-vector", np.diag, normal((3,)))
    comp("diag-vector-k", lambda v: np.diag(v, 2) + np.diag(v, -2), normal((3,)))
    comp("diag-matrix", np.diag, normal((3, 4)))
    comp("diag-matrix-k", lambda x: np.diag(x, 1) + np.diag(x, -1)[:2], normal((3, 3)))
    comp("diag-roundtrip", lambda v: np.diag(np.diag(v)) * v, normal((4,)))
    comp("diagflat", lambda x: np.diagflat(x, -1), normal((2, 2)))
    comp("diagonal", np.diagonal, normal((3, 4)))
    comp("diagonal-offset", lambda x: np.diagonal(x, -1), normal((4, 3)))
    comp("diagonal-axes", lambda x: np.diagonal(x, 1, axis1=2, axis2=0), normal((3, 2, 4)))
    comp("diagonal-negative-axes", lambda x: np.diagonal(x, 0, -1, -2), normal((2, 3, 3)))
    comp("diagonal-empty", lambda x: np.diagonal(x, 5), normal((3, 2)))
    comp("trace-offset", lambda x: np.trace(x, 1) + np.trace(x, offset=-2), normal((3, 4)))
    comp("trace-axes", lambda x: np.trace(x, 0, 2, 1), normal((2, 3, 3)))
    comp("trace-axes-offset", lambda x: np.trace(x, -1, axis1=-1, axis2=0), normal((3, 2, 4)))
    comp("trace-2d-square", np.trace, normal((4, 4)))

    # -- cumprod, diff, gradient ------------------------------------------------------------------------
    comp("cumprod-flat", np.cumprod, away0((3, 2), 0.5, 1.5))
    comp("cumprod-axis0", lambda x: np.cumprod(x, axis=0), away0((3, 2), 0.5, 1.5))
    comp("cumprod-axis-1-long", lambda x: np.cumprod(x, axis=-1), away0((2, 9), 0.5, 1.5))
    comp("cumprod-3d", lambda x: np.cumprod(x, axis=1), away0((2, 5, 3), 0.5, 1.5))
    comp("cumprod-with-zeros", lambda x: np.cumprod(x, axis=1),
         fixed([[2.0, 0.0, 3.0, -1.5, 0.5], [0.0, 0.0, 1.5, 2.0, 0.0]]))
    comp("cumprod-0d", np.cumprod, normal(()))
    comp("cumprod-length-1", lambda x: np.cumprod(x, axis=0), normal((1, 3)))
    comp("diff", np.diff, normal((5,)))
    comp("diff-n2-axis0", lambda x: np.diff(x, 2, axis=0), normal((4, 3)))
    comp("diff-n-too-large", lambda x: np.diff(x, 3, axis=0), normal((2, 3)))
    comp("diff-prepend-append", lambda x: np.diff(x, prepend=0.5, append=x[:, :1] * 2), normal((3, 4)))
    comp("diff-traced-prepend", lambda x, p: np.diff(x, axis=0, prepend=p), normal((3, 2)), normal(()))
    comp("gradient-1d", np.gradient, normal((5,)))
    comp("gradient-2d", lambda x: np.gradient(x), normal((3, 4)))
    comp("gradient-spacing-axis", lambda x: np.gradient(x, 0.5, axis=-1), normal((3, 4)))
    comp("gradient-edge-order-2", lambda x: np.gradient(x, 0.3, 2.0, edge_order=2), normal((3, 4)))
    comp("gradient-coordinates", lambda x: np.gradient(x, np.array([0.0, 0.4, 1.5, 1.7, 3.0])), normal((5,)))
    comp("gradient-coordinates-edge2", lambda x: np.gradient(x, [0.0, 1.0, 3.0], [0.0, 0.5, 1.0, 2.5],
                                                             edge_order=2), normal((3, 4)))
    comp("gradient-uniform-coordinates", lambda x: np.gradient(x, np.array([1.0, 3.0, 5.0, 7.0]), axis=0),
         normal((4, 2)))
    comp("gradient-length-2", lambda x: np.gradient(x, axis=0), normal((2, 3)))
    comp("gradient-traced-spacing", lambda x, h: np.gradient(x, h, edge_order=2), normal((4,)),
         lambda: np.random.uniform(0.5, 2.0))
    comp("gradient-traced-coordinates",
         lambda x, t: np.gradient(x, t, edge_order=2), normal((5,)),
         lambda: np.cumsum(np.random.uniform(0.5, 1.5, 5)))
    comp("gradient-traced-coordinates-uniform", lambda t: np.gradient(np.sin(t), t),
         fixed([0.0, 0.5, 1.0, 1.5]))

    # -- kron, cross ----------------------------------------------------------------------------------------
    comp("kron-1d", np.kron, normal((3,)), normal((2,)))
    comp("kron-2d", np.kron, normal((2, 3)), normal((3, 2)))
    comp("kron-2d-1d", np.kron, normal((2, 3)), normal((2,)))
    comp("kron-1d-3d", np.kron, normal((2,)), normal((2, 1, 3)))
    comp("kron-0d", np.kron, normal(()), normal((2, 2)))
    comp("kron-constant", lambda x: np.kron(np.eye(2), x), normal((2, 2)))
    comp("cross-3", np.cross, normal((3,)), normal((3,)))
    comp("cross-batched-broadcast", np.cross, normal((4, 3)), normal((3,)))
    comp("cross-axes", lambda a, b: np.cross(a, b, axisa=0, axisb=1, axisc=0), normal((3, 2)), normal((2, 3)))
    comp("cross-axis", lambda a, b: np.cross(a, b, axis=0), normal((3, 2, 2)), normal((3, 1, 2)))
    comp("cross-2x2", quiet_cross, normal((3, 2)), normal((2,)))
    comp("cross-2x3", quiet_cross, normal((2,)), normal((4, 3)))
    comp("cross-3x2", quiet_cross, normal((4, 3)), normal((4, 2)))

    # -- convolve, correlate ---------------------------------------------------------------------------------
    for mode in ("full", "same", "valid"):
        for na, nv in [(5, 3), (3, 5), (4, 4), (4, 1), (1, 3), (6, 2)]:
            comp(f"convolve-{mode}-{na},{nv}", lambda a, v, m=mode: np.convolve(a, v, m), normal((na,)),
                 normal((nv,)))
            comp(f"correlate-{mode}-{na},{nv}", lambda a, v, m=mode: np.correlate(a, v, m), normal((na,)),
                 normal((nv,)))
    comp("convolve-default", np.convolve, normal((5,)), normal((2,)))
    comp("correlate-default", np.correlate, normal((5,)), normal((2,)))
    comp("convolve-constant-kernel", lambda a: np.convolve(a, [0.25, 0.5, 0.25], "same"), normal((6,)))
    comp("correlate-constant-signal", lambda v: np.correlate([1.0, -2.0, 0.5, 3.0], v, "full"), normal((2,)))
    comp("convolve-int-mode", lambda a, v: np.convolve(a, v, 1), normal((5,)), normal((3,)))
    comp("convolve-0d", np.convolve, normal(()), normal((3,)))

    # -- interp: queries away from the knots ----------------------------------------------------------------
    knots = np.array([-1.0, 0.0, 0.5, 2.0, 3.0])
    queries = lambda shape: lambda: np.random.choice([-1.6, -0.6, 0.2, 0.35, 1.2, 1.7, 2.6, 3.4],
                                                     shape) + np.random.uniform(-0.05, 0.05, shape)
    comp("interp-in-x", lambda x: np.interp(x, knots, [1.0, -2.0, 0.5, 3.0, 2.0]), queries((6,)))
    comp("interp-in-fp", lambda fp: np.interp(np.array([-2.0, -0.3, 0.7, 2.5, 5.0]), knots, fp), normal((5,)))
    comp("interp-in-x-fp", lambda x, fp: np.interp(x, knots, fp), queries((2, 3)), normal((5,)))
    comp("interp-in-xp", lambda x, xp, fp: np.interp(x, xp, fp), queries((7,)),
         fixed(knots), normal((5,)))
    comp("interp-left-right", lambda x, fp, l, r: np.interp(x, knots, fp, left=l, right=r),
         queries((8,)), normal((5,)), normal(()), normal(()))
    comp("interp-scalar-x", lambda x, fp: np.interp(x, knots, fp), lambda: 1.3, normal((5,)))
    comp("interp-period", lambda x, fp: np.interp(x, [0.1, 1.0, 2.3, 3.5], fp, period=4.0),
         lambda: np.array([-3.7, -1.0, 0.5, 1.9, 3.0, 3.8, 4.6, 9.3]), normal((4,)))
    comp("interp-one-point", lambda x, fp: np.interp(x, [0.5], fp), fixed([-1.0, 2.0]), normal((1,)))

    # -- einsum: the interleaved (operand, sublist) form, repeated indices ------------------------------
    comp("einsum-sublist", lambda a, b: np.einsum(a, [0, 1], b, [1, 2], [0, 2]), normal((2, 3)),
         normal((3, 4)))
    comp("einsum-sublist-implicit", lambda a, b: np.einsum(a, [1, 0], b, [0, 2]), normal((2, 3)),
         normal((3, 4)))
    comp("einsum-sublist-ellipsis", lambda a, b: np.einsum(a, [Ellipsis, 0], b, [0], [Ellipsis]),
         normal((2, 3, 4)), normal((4,)))
    comp("einsum-sublist-three", lambda a, b, c: np.einsum(a, [0, 1], b, [1, 2], c, [2], [0]),
         normal((2, 3)), normal((3, 4)), normal((4,)))
    comp("einsum-diagonal", lambda a: np.einsum("ii->i", a), normal((3, 3)))
    comp("einsum-trace", lambda a: np.einsum("ii", a), normal((3, 3)))
    comp("einsum-diagonal-times-vector", lambda a, v: np.einsum("ij,jj->i", a, v), normal((2, 3)),
         normal((3, 3)))
    comp("einsum-diagonal-ellipsis", lambda a: np.einsum("...ii->...i", a), normal((2, 3, 3)))
    comp("einsum-triple-repeat", lambda a: np.einsum("iii->i", a), normal((2, 2, 2)))
    comp("einsum-sublist-trace", lambda a: np.einsum(a, [0, 0]), normal((3, 3)))
