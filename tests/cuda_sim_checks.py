"""The numba.cuda kernels (autodiff.backend.cuda_kernels) under numba's CUDA simulator.

Not a test module: tests/test_backend_cuda_sim.py runs it in a child process,
because the simulator must be switched on before numba is first imported and
must not leak into the pytest process, where numba is already imported.

    python tests/cuda_sim_checks.py unary|sgd|adam

Compares each kernel with the numpy references of autodiff.backend.numba_cpu
(themselves tested against the engine in tests/test_backend_numba.py): 1e-12
in float64, 1e-5 in float32.  Exit status 0: passed; 1: a check failed;
77: numba.cuda cannot be imported here (the caller skips).
"""
import os
import sys

os.environ["NUMBA_ENABLE_CUDASIM"] = "1"  # before numba is imported, by anything

try:
    from numba import cuda  # noqa: F401
except Exception as exc:  # pragma: no cover - depends on the numba build
    print(f"numba.cuda cannot be imported: {exc!r}")
    sys.exit(77)

import numpy as np  # noqa: E402

from autodiff.backend import cuda_kernels as ck  # noqa: E402
from autodiff.backend import numba_cpu as nc  # noqa: E402

TOL = {np.float64: dict(rtol=1e-12, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-5)}
rng = np.random.default_rng(0)


def close(got, want, dtype):
    assert got.dtype == want.dtype == dtype, (got.dtype, want.dtype, dtype)
    np.testing.assert_allclose(got, want, **TOL[dtype])


def in_domain(name, shape, dtype):
    r = rng.random(shape)
    lo, hi = {"log": (0.05, 3), "sqrt": (0.05, 3), "arcsin": (-0.95, 0.95), "arccos": (-0.95, 0.95),
              "arctanh": (-0.95, 0.95), "log1p": (-0.9, 2), "tan": (-1.4, 1.4)}.get(name, (-3, 3))
    return np.asarray(lo + (hi - lo) * r, dtype)


def check_unary():
    for dtype in (np.float64, np.float32):
        for name in nc.UNARY_OPS:
            for shape, K in (((3, 7), 2), ((), 1)):
                x = in_domain(name, shape, dtype)
                t = np.asarray(rng.standard_normal((K,) + shape), dtype)
                y, ty = ck.unary_jvp(name, x, t)
                yr, tyr = nc.unary_jvp_reference(name, x, t)
                close(y, np.asarray(yr), dtype)
                close(ty, tyr, dtype)
    x = in_domain("tanh", (5, 4), np.float64)
    y, ty = ck.unary_jvp("tanh", x, None)
    assert ty is None
    close(y, np.tanh(x), np.float64)
    xt = in_domain("exp", (6, 8), np.float64)[:, ::2]  # non-contiguous: made contiguous first
    tt = rng.standard_normal((2, 6, 8))[..., ::2]
    close(ck.unary_jvp("exp", xt, tt)[1], np.exp(xt) * tt, np.float64)


def check_sgd():
    for dtype in (np.float64, np.float32):
        for nesterov in (False, True):
            for wd in (0.0, 0.05):
                for present in ("pvgLM", "g", "pM"):
                    shape, K = (3, 11), 2
                    p, v, g = (np.asarray(rng.standard_normal(shape), dtype) for _ in range(3))
                    tp, tv, tg = (np.asarray(rng.standard_normal((K,) + shape), dtype)
                                  if c in present else None for c in "pvg")
                    tlr, tmu = (rng.standard_normal(K) if c in present else None for c in "LM")
                    got = ck.sgd_momentum_jvp(p, tp, v, tv, g, tg, 0.1, tlr, 0.9, tmu,
                                              weight_decay=wd, nesterov=nesterov)
                    want = nc.sgd_momentum_jvp_reference(p, tp, v, tv, g, tg, 0.1, tlr, 0.9, tmu,
                                                         wd, nesterov)
                    for a, b in zip(got, want):
                        close(a, b, dtype)
    # in place
    p, v, g = rng.standard_normal((3, 4, 5))
    tp, tv, tg = rng.standard_normal((3, 1, 4, 5))
    want = nc.sgd_momentum_jvp_reference(p, tp, v, tv, g, tg, 0.1, [0.5], 0.9, [1.0], 0.0, False)
    args = [a.copy() for a in (p, tp, v, tv, g, tg)]
    got = ck.sgd_momentum_jvp(*args, 0.1, [0.5], 0.9, [1.0], inplace=True)
    assert got[0] is args[0] and got[1] is args[1]
    for a, b in zip(got, want):
        close(a, b, np.float64)


def check_adam():
    for dtype in (np.float64, np.float32):
        for step in (1, 7):
            for wd in (0.0, 0.01):
                for present in ("pmvgLAB", "g", "B"):
                    shape, K = (3, 11), 2
                    p, m, g = (np.asarray(rng.standard_normal(shape), dtype) for _ in range(3))
                    v = np.asarray(rng.random(shape) + 0.1, dtype)
                    tp, tm, tv, tg = (np.asarray(rng.standard_normal((K,) + shape), dtype)
                                      if c in present else None for c in "pmvg")
                    tlr, tb1, tb2 = (rng.standard_normal(K) if c in present else None for c in "LAB")
                    args = (p, tp, m, tm, v, tv, g, tg, 1e-3, tlr, 0.9, tb1, 0.999, tb2, 1e-8, step)
                    got = ck.adam_jvp(*args, weight_decay=wd)
                    want = nc.adam_jvp_reference(*args, weight_decay=wd)
                    for a, b in zip(got, want):
                        close(a, b, dtype)
    # an unused parameter (g = v = m = 0): finite tangents, as on the CPU
    p, m, g, v = rng.standard_normal((4, 2, 6))
    v = v * v
    g[0], m[0], v[0] = 0.0, 0.0, 0.0
    tp, tm, tv, tg = rng.standard_normal((4, 1, 2, 6))
    tv[0, 0] = 0.0
    args = (p, tp, m, tm, v, tv, g, tg, 1e-3, [1.0], 0.9, [0.1], 0.999, [0.01], 1e-8, 3)
    got = ck.adam_jvp(*args)
    assert all(np.isfinite(a).all() for a in got)
    for a, b in zip(got, nc.adam_jvp_reference(*args)):
        close(a, b, np.float64)


CHECKS = {"unary": check_unary, "sgd": check_sgd, "adam": check_adam}

if __name__ == "__main__":
    assert ck.cuda_available(), "the CUDA simulator should be available"
    for which in sys.argv[1:] or list(CHECKS):
        CHECKS[which]()
        print(f"{which}: ok")
