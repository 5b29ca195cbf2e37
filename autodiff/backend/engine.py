"""Install the numba kernels as fast paths of the forward trace.

A primitive's ``fused(primals, tangents)`` returns ``(ans, tangent)`` when a
kernel applies, or None to let the trace apply the derivative rules.  Kernels
apply only to plain, C-contiguous float arrays large enough to amortize a
numba call (about 3 us), and only where the kernel computes the primal with
numpy's own ufunc or exactly (sqrt, abs), so differentiating never changes
the primal values of a run.  numba is imported, and each kernel compiled, on
first use; `set_kernels(False)` or AUTODIFF_DISABLE_NUMBA=1 turns this off.
"""
from __future__ import annotations

import numpy as np

from . import kernels_enabled, numba_available

MIN_SIZE = 16384  # elements of the primal; below this numpy's composition is as fast

# ops whose kernel computes the primal with numpy's ufunc ("hybrid") or exactly
UNARY = ("exp", "log", "log1p", "expm1", "sqrt", "tan", "tanh", "arctan", "arcsin", "arccos",
         "arctanh", "abs")
BINARY = {"mul": "mul", "div": "div"}


def _plain(a) -> bool:
    return type(a) is np.ndarray and a.dtype.kind == "f" and a.flags.c_contiguous


def _unary(name):
    def fused(primals, tangents):
        if len(primals) != 1:
            return None
        x, t = primals[0], tangents[0]
        if not (_plain(x) and _plain(t) and x.size >= MIN_SIZE and t.dtype == x.dtype
                and kernels_enabled() and numba_available()):
            return None
        from . import numba_cpu
        return numba_cpu.unary_jvp(name, x, t, strategy="fused" if name in ("sqrt", "abs") else "hybrid")
    return fused


def _binary(name):
    def fused(primals, tangents):
        if len(primals) != 2:
            return None
        (a, b), (ta, tb) = primals, tangents
        if not (_plain(a) and _plain(b) and a.shape == b.shape and a.dtype == b.dtype
                and a.size >= MIN_SIZE and kernels_enabled() and numba_available()):
            return None
        if (ta is not None and not (_plain(ta) and ta.dtype == a.dtype)) or (
                tb is not None and not (_plain(tb) and tb.dtype == a.dtype)):
            return None
        from . import numba_cpu
        return numba_cpu.binary_jvp(name, a, ta, b, tb)
    return fused


def install() -> None:
    from .. import primitives as P
    for name in UNARY:
        P.REGISTRY[name].fused = _unary(name)
    for prim, name in BINARY.items():
        P.REGISTRY[prim].fused = _binary(name)
