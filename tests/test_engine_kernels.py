"""The numba fast paths in the forward trace give the rules' answers, and leave primals unchanged."""
import numpy as np
import pytest

from autodiff import dual, grad
from autodiff.backend import engine, numba_available, set_kernels

pytestmark = pytest.mark.skipif(not numba_available(), reason="numba is not installed")

N = engine.MIN_SIZE + 7
DOMAIN = {"log": (0.1, 2.0), "log1p": (-0.5, 2.0), "sqrt": (0.1, 2.0), "arcsin": (-0.9, 0.9),
          "arccos": (-0.9, 0.9), "arctanh": (-0.9, 0.9)}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", engine.UNARY)
def test_unary_fast_path_matches_rules(name, dtype):
    rng = np.random.default_rng(0)
    lo, hi = DOMAIN.get(name, (-1.0, 1.0))
    x = rng.uniform(lo, hi, N).astype(dtype)
    t = rng.standard_normal((3, N)).astype(dtype)
    f = getattr(np, "abs" if name == "abs" else name)
    fast = f(dual(x, t))
    previous = set_kernels(False)
    try:
        slow = f(dual(x, t))
    finally:
        set_kernels(previous)
    np.testing.assert_array_equal(fast.primal, f(x))  # the primal is numpy's, bit for bit
    tol = 1e-13 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(fast.tangents, slow.tangents, rtol=tol, atol=tol)
    assert fast.tangents.dtype == dtype


@pytest.mark.parametrize("op", [np.multiply, np.divide])
def test_binary_fast_path_matches_rules(op):
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.5, 2.0, (2, N))
    ta, tb = rng.standard_normal((2, 2, N))
    for args in [(dual(a, ta), dual(b, tb)), (dual(a, ta), b), (a, dual(b, tb))]:
        fast = op(*args)
        previous = set_kernels(False)
        try:
            slow = op(*args)
        finally:
            set_kernels(previous)
        np.testing.assert_array_equal(fast.primal, op(a, b))
        np.testing.assert_allclose(fast.tangents, slow.tangents, rtol=1e-13, atol=1e-13)


def test_forward_over_reverse_with_kernels():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((256, 128)) / 16
    x = rng.standard_normal((128, 256))
    loss = lambda w: np.mean(np.tanh(x @ w) ** 2)
    d = dual(w, rng.standard_normal((2,) + w.shape))
    fast = grad(loss)(d)
    previous = set_kernels(False)
    try:
        slow = grad(loss)(d)
    finally:
        set_kernels(previous)
    np.testing.assert_array_equal(fast.primal, grad(loss)(w))
    np.testing.assert_allclose(fast.tangents, slow.tangents, rtol=1e-12, atol=1e-15)
