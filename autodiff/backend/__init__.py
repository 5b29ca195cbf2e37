"""Backend selection: which array module and which kernels run an operation.

numpy is the reference implementation.  `numba_cpu` holds fused dual kernels
for the CPU: large elementwise ops (unary functions, mul, div) computing f(x)
and the tangents of all K directions in one pass, each tested against its
numpy reference; `engine` installs them as fast paths of the forward trace.

On the GPU there are no custom kernels: the engine's code is generic over the
array module (its numpy calls dispatch to cupy for cupy arrays), so on cupy
arrays every operation is cupy's own, cuBLAS does the matmuls, and nothing
leaves the device.

The backend is chosen from the arrays an operation is given (like
``cupy.get_array_module``), never by a global that moves data.  The one global
here is a debugging switch: ``set_kernels(False)`` (or the environment variable
``AUTODIFF_DISABLE_NUMBA=1``) makes every kernel entry point run its numpy
reference instead, so a suspected kernel bug can be bisected in one line.
"""
from __future__ import annotations

import os
import sys
from types import ModuleType

__all__ = ["get_array_module", "set_kernels", "kernels_enabled", "numba_available"]

_TRUE = ("1", "true", "yes", "on")
_switch = os.environ.get("AUTODIFF_DISABLE_NUMBA", "").strip().lower() not in _TRUE
_numba_ok: bool | None = None  # None: not probed yet


def get_array_module(*arrays) -> ModuleType:
    """``cupy`` if any argument is a cupy array, else ``numpy``.

    cupy is never imported here: a cupy array can only exist once cupy has been
    imported, so looking in ``sys.modules`` is enough, and a machine without
    cupy never pays for (or fails at) importing it.
    """
    cupy = sys.modules.get("cupy")
    if cupy is not None:
        ndarray = getattr(cupy, "ndarray", None)
        if ndarray is not None and any(isinstance(a, ndarray) for a in arrays):
            return cupy
    import numpy
    return numpy


def numba_available() -> bool:
    """Whether numba imports (probed once, on first call; importing it takes ~0.5 s)."""
    global _numba_ok
    if _numba_ok is None:
        try:
            import numba  # noqa: F401
        except Exception:  # not installed, or broken against this numpy
            _numba_ok = False
        else:
            _numba_ok = True
    return _numba_ok


def set_kernels(enabled: bool) -> bool:
    """Turn the numba kernels on or off for the whole process; returns the previous setting.

    Off, every kernel entry point (``numba_cpu.unary_jvp`` and friends) runs its
    numpy reference: the switch for debugging a suspected kernel.
    """
    global _switch
    previous, _switch = _switch, bool(enabled)
    return previous


def kernels_enabled() -> bool:
    """Whether numba kernels will run: the switch is on and numba imports."""
    return _switch and numba_available()
