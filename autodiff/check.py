"""check_grads: reverse vs forward vs central finite differences.

For a random tangent direction v and a random output cotangent u:

* forward: the jvp J v against a central difference (f(x + eps v) - f(x - eps v)) / 2 eps;
* reverse: the dot-product test <u, J v> = <J^T u, v>, with J^T u from vjp, once
  against the finite difference (loose) and once against forward mode (tight);
* order 2 and up: the same checks, recursively, on the functions x -> J(x) v
  and x -> J(x)^T u, which differentiates the rules' own derivatives.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .api import jvp, vjp
from .core import primal_value
from .tree import tree_flatten, tree_map


def _as64(x):
    """x as float64, or complex128 if it is complex."""
    x = primal_value(x)
    return np.asarray(x, np.complex128 if np.iscomplexobj(x) else np.float64)


def _vdot(a, b) -> float:
    """The pairing of cotangents with tangents: re(sum(a * b)), no conjugate (the
    convention of autodiff/families/complex.py; for real values, the dot product)."""
    la, lb = tree_flatten(a)[0], tree_flatten(b)[0]
    return float(sum(np.real(np.vdot(np.conj(_as64(x)), _as64(y))) for x, y in zip(la, lb)))


def _norm(a) -> float:
    la = tree_flatten(a)[0]
    return float(np.sqrt(sum(np.real(np.vdot(_as64(x), _as64(x))) for x in la)))


def _random_like(tree, rng):
    def draw(x):
        x = primal_value(x)
        dtype = np.result_type(x)
        if not np.issubdtype(dtype, np.inexact):
            return np.zeros_like(x)
        if dtype.kind == "c":  # both real and imaginary directions
            return (rng.standard_normal(np.shape(x)) + 1j * rng.standard_normal(np.shape(x))).astype(dtype)
        return rng.standard_normal(np.shape(x)).astype(dtype)
    return tree_map(draw, tree)


def _close(name, a, b, atol, rtol):
    la, lb = tree_flatten(a)[0], tree_flatten(b)[0]
    for x, y in zip(la, lb):
        x, y = _as64(x), _as64(y)
        if x.shape != y.shape or not np.allclose(x, y, atol=atol, rtol=rtol, equal_nan=False):
            err = np.max(np.abs(x - y)) if x.shape == y.shape else "shape mismatch"
            raise AssertionError(f"check_grads: {name} disagree (max abs error {err}):\n{x}\nvs\n{y}")


def check_grads(f: Callable, args: Sequence, order: int = 1, modes: Sequence[str] = ("fwd", "rev"),
                eps: float = 1e-5, atol: float = 1e-6, rtol: float = 1e-5, seed: int = 0) -> None:
    """Raise AssertionError unless reverse, forward and central differences agree.

    ``args`` is a tuple of (pytrees of) float64 or complex128 arrays; ``order``
    2 also checks the derivatives of the derivative rules.  Complex inputs get
    complex directions (real and imaginary parts at once), and the dot-product
    test pairs cotangents with tangents by re(sum(u * v)) (see
    autodiff/families/complex.py).
    """
    args = tuple(args)
    rng = np.random.default_rng(seed)
    v = _random_like(args, rng)

    def shifted(s):
        return tree_map(lambda x, d: x + s * d if np.issubdtype(np.result_type(primal_value(x)), np.inexact)
                        else x, args, v)

    out, out_dot = jvp(f, args, v)
    fd = tree_map(lambda a, b: (_as64(a) - _as64(b)) / (2 * eps), f(*shifted(eps)), f(*shifted(-eps)))
    if "fwd" in modes:
        _close("forward mode and central differences", out_dot, fd, atol, rtol)
    u = _random_like(out, rng)
    if "rev" in modes:
        out_r, pullback = vjp(f, *args)
        _close("reverse-mode and plain outputs", out_r, out, 1e-12, 1e-12)
        ct = pullback(u)
        lhs_fd, lhs_fwd, rhs = _vdot(u, fd), _vdot(u, out_dot), _vdot(ct, v)
        scale_fd = _norm(u) * _norm(fd) + _norm(ct) * _norm(v)
        if abs(lhs_fd - rhs) > atol + rtol * scale_fd * 10:
            raise AssertionError(f"check_grads: reverse mode fails the dot-product test against central "
                                 f"differences: <u, J v> = {lhs_fd} but <J^T u, v> = {rhs}")
        # tight, with a floor far below atol: a zero Jacobian comes out as rounding noise
        if "fwd" in modes and abs(lhs_fwd - rhs) > 1e-9 * scale_fd + 1e-6 * atol:
            raise AssertionError(f"check_grads: forward and reverse mode disagree: <u, J v> = {lhs_fwd} "
                                 f"but <J^T u, v> = {rhs}")
    if order > 1:
        if "fwd" in modes:
            check_grads(lambda *a: jvp(f, a, v)[1], args, order - 1, modes, eps, atol, rtol, seed + 1)
        if "rev" in modes:
            check_grads(lambda *a: vjp(f, *a)[1](u), args, order - 1, modes, eps, atol, rtol, seed + 2)
