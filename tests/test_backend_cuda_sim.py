"""The GPU kernels (autodiff.backend.cuda_kernels), testable without a GPU.

The numba.cuda kernels run under numba's CUDA simulator in a child process
(tests/cuda_sim_checks.py): NUMBA_ENABLE_CUDASIM=1 must be set before numba is
imported, and this pytest process has numba imported already, with the real
CUDA target, which the other tests keep using.  The cupy paths, and the
numba.cuda kernels on real device arrays, need cupy and a CUDA device and are
skipped without them.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKS = Path(__file__).with_name("cuda_sim_checks.py")


@pytest.mark.parametrize("which", ["unary", "sgd", "adam"])
def test_cuda_kernels_under_the_simulator(which):
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    run = subprocess.run([sys.executable, str(CHECKS), which], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    if run.returncode == 77:
        pytest.skip(run.stdout.strip() or "numba.cuda cannot be imported")
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{which}: ok" in run.stdout


def test_simulator_stays_in_the_child_process():
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        pytest.skip("this whole run is under the simulator")
    from numba import config
    assert not config.ENABLE_CUDASIM


def _cupy_device():
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
    except Exception:
        return None
    return cupy


needs_gpu = pytest.mark.skipif(_cupy_device() is None, reason="cupy and a CUDA device are required")


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cupy_unary_jvp_matches_numpy(dtype):
    cupy = _cupy_device()
    from autodiff.backend import cuda_kernels as ck
    from autodiff.backend import numba_cpu as nc
    tol = dict(rtol=1e-12, atol=1e-12) if dtype is np.float64 else dict(rtol=1e-5, atol=1e-5)
    rng = np.random.default_rng(0)
    for name in nc.UNARY_OPS:
        x = np.asarray(rng.uniform(0.05, 0.9, (33, 17)), dtype)
        t = np.asarray(rng.standard_normal((3, 33, 17)), dtype)
        yr, tyr = nc.unary_jvp_reference(name, x, t)
        for fn in (ck.cupy_unary_jvp, ck.unary_jvp):
            y, ty = fn(name, cupy.asarray(x), cupy.asarray(t))
            assert isinstance(y, cupy.ndarray) and isinstance(ty, cupy.ndarray)  # stayed on the GPU
            np.testing.assert_allclose(cupy.asnumpy(y), yr, **tol)
            np.testing.assert_allclose(cupy.asnumpy(ty), tyr, **tol)


@pytest.mark.gpu
@needs_gpu
def test_cuda_optimizer_kernels_on_cupy_arrays():
    cupy = _cupy_device()
    from autodiff.backend import cuda_kernels as ck
    from autodiff.backend import numba_cpu as nc
    rng = np.random.default_rng(1)
    p, m, g = rng.standard_normal((3, 64, 33))
    v = rng.random((64, 33)) + 0.1
    tp, tm, tv, tg = rng.standard_normal((4, 2, 64, 33))
    tlr, tb1, tb2 = rng.standard_normal((3, 2))
    host = (p, tp, m, tm, v, tv, g, tg)
    dev = [cupy.asarray(a) for a in host]
    want = nc.adam_jvp_reference(*host, 1e-3, tlr, 0.9, tb1, 0.999, tb2, 1e-8, 4)
    got = ck.adam_jvp(*dev, 1e-3, tlr, 0.9, tb1, 0.999, tb2, 1e-8, 4)
    for a, b in zip(got, want):
        assert isinstance(a, cupy.ndarray)
        np.testing.assert_allclose(cupy.asnumpy(a), b, rtol=1e-12, atol=1e-12)
    want = nc.sgd_momentum_jvp_reference(p, tp, v, tv, g, tg, 0.1, tlr, 0.9, tb1, 0.01, True)
    got = ck.sgd_momentum_jvp(dev[0], dev[1], dev[4], dev[5], dev[6], dev[7], 0.1, tlr, 0.9, tb1,
                              weight_decay=0.01, nesterov=True)
    for a, b in zip(got, want):
        np.testing.assert_allclose(cupy.asnumpy(a), b, rtol=1e-12, atol=1e-12)
