"""Fused dual kernels for NVIDIA GPUs: numba.cuda kernels and cupy ElementwiseKernels.

The same operations as `numba_cpu` (elementwise jvp, SGD-momentum and Adam
updates on Duals), one GPU thread per element looping over the K tangent
directions (for a fixed k, neighbouring threads touch neighbouring addresses:
coalesced).  The numba.cuda kernels launch on anything exposing
``__cuda_array_interface__`` (cupy arrays on a real GPU, outputs then
allocated with cupy so nothing leaves the device) and on numpy arrays under
numba's CUDA simulator, which is how CI tests their logic without a GPU
(``NUMBA_ENABLE_CUDASIM=1`` set before numba is first imported; see
tests/test_backend_cuda_sim.py).  Under the simulator each thread is Python:
correct, slow, and Python's ``math`` raises outside a function's domain where
the GPU would return nan, so keep simulated inputs small and in the domain.

API (results live where the inputs live)::

    unary_jvp(name, x, t, out=None, out_t=None) -> (y, ty)
    sgd_momentum_jvp(p, tp, v, tv, g, tg, lr, tlr, mu, tmu,
                     weight_decay=0.0, nesterov=False, inplace=False) -> (p, tp, v, tv)
    adam_jvp(p, tp, m, tm, v, tv, g, tg, lr, tlr, b1, tb1, b2, tb2, eps, step,
             weight_decay=0.0, inplace=False) -> (p, tp, m, tm, v, tv)
    cupy_unary_jvp(name, x, t, out=None, out_t=None) -> (y, ty)   # cupy.ElementwiseKernel

Conventions (argument shapes, the Adam tangent at v_hat == 0) are those of
`numba_cpu`, whose numpy references the tests compare against.  Nothing
here imports numba.cuda or cupy until a kernel is first used.
"""
from __future__ import annotations

import math
import sys

import numpy as np

from . import get_array_module
from .numba_cpu import UNARY_OPS, _OPCODE, _adam_scalars, _hyper_tangent, _tangent_count

__all__ = ["unary_jvp", "sgd_momentum_jvp", "adam_jvp", "cupy_unary_jvp", "cuda_available"]

THREADS_PER_BLOCK = 256
_kernels = None  # built on first use
cuda = None  # numba.cuda, imported by _build; a module global so the simulator can swap it per thread


def cuda_available() -> bool:
    """Whether numba.cuda can launch kernels: a CUDA device, or the simulator."""
    try:
        from numba import cuda
    except Exception:
        return False
    return bool(cuda.is_available())


def _build():
    """Define the numba.cuda kernels (imports numba.cuda, once)."""
    global _kernels, cuda
    if _kernels is not None:
        return _kernels
    from numba import cuda as numba_cuda
    cuda = numba_cuda

    @cuda.jit(device=True)
    def value(op, x):
        if op == 0:
            return -x
        elif op == 1:
            return math.exp(x)
        elif op == 2:
            return math.log(x)
        elif op == 3:
            return math.log1p(x)
        elif op == 4:
            return math.expm1(x)
        elif op == 5:
            return math.sqrt(x)
        elif op == 6:
            return math.sin(x)
        elif op == 7:
            return math.cos(x)
        elif op == 8:
            return math.tan(x)
        elif op == 9:
            return math.tanh(x)
        elif op == 10:
            return math.sinh(x)
        elif op == 11:
            return math.cosh(x)
        elif op == 12:
            return math.atan(x)
        elif op == 13:
            return math.asin(x)
        elif op == 14:
            return math.acos(x)
        elif op == 15:
            return math.atanh(x)
        return abs(x)

    @cuda.jit(device=True)
    def deriv(op, x, y, one):
        # the formulas of the rules (and of numba_cpu), from x and y = f(x)
        if op == 0:
            return -one
        elif op == 1:
            return y
        elif op == 2:
            return one / x
        elif op == 3:
            return one / (x + one)
        elif op == 4:
            return y + one
        elif op == 5:
            return (one / (one + one)) / y
        elif op == 6:
            return math.cos(x)
        elif op == 7:
            return -math.sin(x)
        elif op == 8:
            return one + y * y
        elif op == 9:
            return one - y * y
        elif op == 10:
            return math.cosh(x)
        elif op == 11:
            return math.sinh(x)
        elif op == 12:
            return one / (one + x * x)
        elif op == 13:
            return one / math.sqrt(one - x * x)
        elif op == 14:
            return -one / math.sqrt(one - x * x)
        elif op == 15:
            return one / (one - x * x)
        if x > 0:
            return one
        if x < 0:
            return -one
        return x * (one - one)

    @cuda.jit
    def unary(op, x, t, y, ty, one):
        # op: the same op codes as numba_cpu; a uniform branch, all threads take it
        i = cuda.grid(1)
        stride = cuda.gridsize(1)
        n = x.size
        K = t.shape[0]
        while i < n:
            xi = x[i]
            yi = value(op, xi)
            d = deriv(op, xi, yi, one)
            y[i] = yi
            for k in range(K):
                tki = t[k, i]
                ty[k, i] = d * tki if tki != 0 else tki  # NaN-safe, as the CPU kernels
            i += stride

    @cuda.jit
    def sgd(p, v, g, tp, tv, tg, has_tp, has_tv, has_tg, hs, hk, nesterov, po, vo, tpo, tvo):
        # hs = (lr, mu, wd, 0); hk rows: tangents of lr, mu.  Outputs may alias inputs.
        i = cuda.grid(1)
        stride = cuda.gridsize(1)
        n = p.size
        K = tpo.shape[0]
        lr, mu, wd, zero = hs[0], hs[1], hs[2], hs[3]
        while i < n:
            vi = v[i]
            ge = g[i] + wd * p[i]
            vn = mu * vi + ge
            st = ge + mu * vn if nesterov else vn
            po[i] = p[i] - lr * st
            vo[i] = vn
            for k in range(K):
                tpi = tp[k, i] if has_tp else zero
                tge = (tg[k, i] if has_tg else zero) + wd * tpi
                tvn = hk[1, k] * vi + (mu * tv[k, i] if has_tv else zero) + tge
                tst = tge + hk[1, k] * vn + mu * tvn if nesterov else tvn
                tpo[k, i] = tpi - hk[0, k] * st - lr * tst
                tvo[k, i] = tvn
            i += stride

    @cuda.jit
    def adam(p, m, v, g, tp, tm, tv, tg, has_tp, has_tm, has_tv, has_tg, hs, hk,
             po, mo, vo, tpo, tmo, tvo):
        # hs = (lr, b1, b2, eps, wd, 1/bc1, 1/bc2, 0, 1);
        # hk rows: tangents of lr, b1, b2, 1/bc1, 1/bc2
        i = cuda.grid(1)
        stride = cuda.gridsize(1)
        n = p.size
        K = tpo.shape[0]
        lr, b1, b2, eps, wd, ibc1, ibc2 = hs[0], hs[1], hs[2], hs[3], hs[4], hs[5], hs[6]
        zero, one = hs[7], hs[8]
        two = one + one
        while i < n:
            ge = g[i] + wd * p[i]
            mi, vi = m[i], v[i]
            mn = b1 * mi + (one - b1) * ge
            vn = b2 * vi + (one - b2) * (ge * ge)
            sq = math.sqrt(vn * ibc2)
            den = sq + eps
            u = (mn * ibc1) / den
            po[i] = p[i] - lr * u
            mo[i] = mn
            vo[i] = vn
            for k in range(K):
                tpi = tp[k, i] if has_tp else zero
                tge = (tg[k, i] if has_tg else zero) + wd * tpi
                tmn = hk[1, k] * (mi - ge) + (b1 * tm[k, i] if has_tm else zero) + (one - b1) * tge
                tvn = (hk[2, k] * (vi - ge * ge) + (b2 * tv[k, i] if has_tv else zero)
                       + (one - b2) * two * ge * tge)
                tmhat = tmn * ibc1 + mn * hk[3, k]
                tvhat = tvn * ibc2 + vn * hk[4, k]
                ts = tvhat / (two * sq) if sq > zero else zero
                tu = (tmhat - u * ts) / den
                tpo[k, i] = tpi - hk[0, k] * u - lr * tu
                tmo[k, i] = tmn
                tvo[k, i] = tvn
            i += stride

    _kernels = {"unary": unary, "sgd": sgd, "adam": adam, "cuda": cuda}
    return _kernels


# ---------------------------------------------------------------- array plumbing

def _as_device(x, cuda):
    """cupy and numpy arrays as they are; any other ``__cuda_array_interface__`` object
    as a numba device array (which can be reshaped)."""
    if x is None or isinstance(x, np.ndarray) or get_array_module(x) is not np:
        return x
    if hasattr(x, "__cuda_array_interface__"):
        return cuda.as_cuda_array(x)
    return np.asarray(x)


def _contiguous(x):
    if x is None:
        return None
    if isinstance(x, np.ndarray) or get_array_module(x) is not np:  # numpy or cupy
        return x if x.flags.c_contiguous else x.copy(order="C")  # (ascontiguousarray makes 0-d 1-d)
    if not x.is_c_contiguous():  # a numba device array: no device-side copy to make one contiguous
        raise ValueError("cuda_kernels: non-contiguous device arrays other than cupy's are not supported")
    return x


def _empty(like, shape, dtype, cuda):
    xp = get_array_module(like)
    if xp is not np or isinstance(like, np.ndarray):
        return xp.empty(shape, dtype)
    return cuda.device_array(shape, dtype)


def _small(values, like, dtype):
    """A small parameter array, on the device of ``like`` (cupy) or on the host."""
    xp = get_array_module(like)
    return xp.asarray(np.asarray(values, dtype=dtype))


def _launch(kernel, n, *args):
    from numba import config
    if config.ENABLE_CUDASIM:  # Python threads: a few, and the grid-stride loop does the rest
        blocks, threads = 2, 4
    else:
        threads = min(THREADS_PER_BLOCK, max(32, -(-n // 32) * 32))
        blocks = min(-(-n // threads), 65535)
    kernel[blocks, threads](*args)


def _prepare(arrays, cuda):
    return [_contiguous(_as_device(a, cuda)) for a in arrays]


# ---------------------------------------------------------------- entry points

def unary_jvp(name: str, x, t, out=None, out_t=None):
    """``(f(x), f'(x) * t)`` on the GPU (or the simulator); see `numba_cpu.unary_jvp`."""
    if name not in _OPCODE:
        raise ValueError(f"unary_jvp: unknown op {name!r}; one of {UNARY_OPS}")
    k = _build()
    x, t = _prepare((x, t), k["cuda"])
    shape = tuple(x.shape)
    n = int(np.prod(shape))
    if t is not None and tuple(t.shape[1:]) != shape:
        raise ValueError(f"unary_jvp: tangents of shape {t.shape} do not fit a primal of shape {shape}")
    K = 0 if t is None else t.shape[0]
    y = _empty(x, shape, x.dtype, k["cuda"]) if out is None else out
    ty = _empty(x, (K, n), x.dtype, k["cuda"]) if out_t is None else out_t
    if n:
        tf = _empty(x, (0, n), x.dtype, k["cuda"]) if t is None else t.reshape(K, n)
        _launch(k["unary"], n, _OPCODE[name], x.reshape(n), tf, y.reshape(n), ty.reshape(K, n),
                np.dtype(x.dtype).type(1))
    return y, (ty.reshape((K,) + shape) if t is not None else None)


def _flat_tangent(x, K, dummy):
    return dummy if x is None else x.reshape(K, -1)


def sgd_momentum_jvp(p, tp, v, tv, g, tg, lr, tlr, mu, tmu,
                     weight_decay: float = 0.0, nesterov: bool = False, inplace: bool = False):
    """One SGD-momentum step on Duals on the GPU; see `numba_cpu.sgd_momentum_jvp`."""
    k = _build()
    cuda = k["cuda"]
    K = _tangent_count(tp, tv, tg, tlr, tmu)
    p, v, g, tp, tv, tg = _prepare((p, v, g, tp, tv, tg), cuda)
    dt = np.dtype(p.dtype)
    n = int(np.prod(p.shape))
    tshape = (K,) + tuple(p.shape)
    po, vo = [a if inplace else _empty(p, p.shape, dt, cuda) for a in (p, v)]
    tpo, tvo = [a if inplace and a is not None else _empty(p, tshape, dt, cuda) for a in (tp, tv)]
    hs = _small([lr, mu, weight_decay, 0.0], p, dt)
    hk = _small(np.stack([_hyper_tangent(tlr, K), _hyper_tangent(tmu, K)]), p, dt)
    dummy = _empty(p, (0, 0), dt, cuda)
    if n:
        _launch(k["sgd"], n, p.reshape(-1), v.reshape(-1), g.reshape(-1),
                _flat_tangent(tp, K, dummy), _flat_tangent(tv, K, dummy), _flat_tangent(tg, K, dummy),
                tp is not None, tv is not None, tg is not None, hs, hk, bool(nesterov),
                po.reshape(-1), vo.reshape(-1), tpo.reshape(K, -1), tvo.reshape(K, -1))
    if K == 0:
        return po, None, vo, None
    return po, tpo, vo, tvo


def adam_jvp(p, tp, m, tm, v, tv, g, tg, lr, tlr, b1, tb1, b2, tb2, eps, step,
             weight_decay: float = 0.0, inplace: bool = False):
    """One Adam step on Duals on the GPU; see `numba_cpu.adam_jvp`."""
    k = _build()
    cuda = k["cuda"]
    K = _tangent_count(tp, tm, tv, tg, tlr, tb1, tb2)
    ibc1, ibc2, dibc1, dibc2 = _adam_scalars(b1, tb1, b2, tb2, step, K)
    p, m, v, g, tp, tm, tv, tg = _prepare((p, m, v, g, tp, tm, tv, tg), cuda)
    dt = np.dtype(p.dtype)
    n = int(np.prod(p.shape))
    tshape = (K,) + tuple(p.shape)
    po, mo, vo = [a if inplace else _empty(p, p.shape, dt, cuda) for a in (p, m, v)]
    tpo, tmo, tvo = [a if inplace and a is not None else _empty(p, tshape, dt, cuda)
                     for a in (tp, tm, tv)]
    hs = _small([lr, b1, b2, eps, weight_decay, ibc1, ibc2, 0.0, 1.0], p, dt)
    hk = _small(np.stack([_hyper_tangent(tlr, K), _hyper_tangent(tb1, K), _hyper_tangent(tb2, K),
                          dibc1, dibc2]), p, dt)
    dummy = _empty(p, (0, 0), dt, cuda)
    if n:
        _launch(k["adam"], n, p.reshape(-1), m.reshape(-1), v.reshape(-1), g.reshape(-1),
                *(_flat_tangent(x, K, dummy) for x in (tp, tm, tv, tg)),
                tp is not None, tm is not None, tv is not None, tg is not None, hs, hk,
                po.reshape(-1), mo.reshape(-1), vo.reshape(-1),
                tpo.reshape(K, -1), tmo.reshape(K, -1), tvo.reshape(K, -1))
    if K == 0:
        return po, None, mo, None, vo, None
    return po, tpo, mo, tmo, vo, tvo


# ---------------------------------------------------------------- cupy ElementwiseKernels

# name: (y from xi, f' from xi and yi), CUDA C++ with T the element type
_CUDA_C = {
    "neg": ("-xi", "T(-1)"),
    "exp": ("exp(xi)", "yi"),
    "log": ("log(xi)", "T(1) / xi"),
    "log1p": ("log1p(xi)", "T(1) / (xi + T(1))"),
    "expm1": ("expm1(xi)", "yi + T(1)"),
    "sqrt": ("sqrt(xi)", "T(0.5) / yi"),
    "sin": ("sin(xi)", "cos(xi)"),
    "cos": ("cos(xi)", "-sin(xi)"),
    "tan": ("tan(xi)", "T(1) + yi * yi"),
    "tanh": ("tanh(xi)", "T(1) - yi * yi"),
    "sinh": ("sinh(xi)", "cosh(xi)"),
    "cosh": ("cosh(xi)", "sinh(xi)"),
    "arctan": ("atan(xi)", "T(1) / (T(1) + xi * xi)"),
    "arcsin": ("asin(xi)", "T(1) / sqrt(T(1) - xi * xi)"),
    "arccos": ("acos(xi)", "T(-1) / sqrt(T(1) - xi * xi)"),
    "arctanh": ("atanh(xi)", "T(1) / (T(1) - xi * xi)"),
    "abs": ("fabs(xi)", "(xi > T(0) ? T(1) : (xi < T(0) ? T(-1) : xi * T(0)))"),
}
_cupy_kernels: dict = {}


def _cupy_kernel(name):
    kern = _cupy_kernels.get(name)
    if kern is None:
        import cupy
        value, deriv = _CUDA_C[name]
        # One thread per tangent element (k, j): j = i % n; the thread with k == 0
        # also writes y[j].  f is recomputed K times, which costs nothing next to
        # the memory traffic of a memory-bound kernel.
        kern = _cupy_kernels[name] = cupy.ElementwiseKernel(
            "raw T x, T t, int64 n", "T ty, raw T y",
            f"const ptrdiff_t j = i % n; const T xi = x[j]; const T yi = {value}; "
            f"if (i < n) y[j] = yi; ty = (t == 0) ? t : ({deriv}) * t;",
            f"autodiff_unary_jvp_{name}")
    return kern


def cupy_unary_jvp(name: str, x, t, out=None, out_t=None):
    """``(f(x), f'(x) * t)`` for cupy arrays, in one cupy.ElementwiseKernel launch."""
    if name not in _CUDA_C:
        raise ValueError(f"cupy_unary_jvp: unknown op {name!r}; one of {UNARY_OPS}")
    cupy = sys.modules.get("cupy")
    if cupy is None:
        import cupy
    x, t = _contiguous(x), _contiguous(t)
    if t.shape[1:] != x.shape:
        raise ValueError(f"cupy_unary_jvp: tangents of shape {t.shape} do not fit a primal of shape {x.shape}")
    y = cupy.empty_like(x) if out is None else out
    ty = cupy.empty_like(t) if out_t is None else out_t
    if x.size and t.shape[0]:
        _cupy_kernel(name)(x, t, x.size, ty, y)
    elif x.size:  # K == 0: just the value
        y[...] = cupy.negative(x) if name == "neg" else getattr(cupy, name)(x)
    return y, ty
