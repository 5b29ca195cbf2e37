"""The numba CPU kernels (autodiff.backend.numba_cpu) against numpy and the engine.

Each kernel is compared with its numpy reference (f(x), f'(x) t) and with the
engine's own forward mode on the same computation, to 1e-12 in float64 and
1e-5 in float32.
Arrays are small: the cost of this file is numba's compile time (cached after
the first run).
"""
import os
import subprocess
import sys
import types

import numpy as np
import pytest

import autodiff
from autodiff import backend
from autodiff.backend import numba_cpu as nc

pytestmark = pytest.mark.skipif(not backend.numba_available(), reason="numba is not installed")

TOL = {np.float64: dict(rtol=1e-12, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-5)}
DTYPES = (np.float64, np.float32)
SHAPES = [(), (7,), (3, 5), (2, 3, 300)]  # the last spans two 512-element blocks, unevenly


def close(actual, expected, dtype):
    np.testing.assert_allclose(actual, expected, **TOL[dtype])


@pytest.fixture(autouse=True)
def kernels_on():
    previous = backend.set_kernels(True)
    yield
    backend.set_kernels(previous)


# ---------------------------------------------------------------- backend helpers

def test_get_array_module_is_numpy_for_numpy_and_never_imports_cupy():
    assert backend.get_array_module(np.ones(2), 1.0, None) is np
    assert backend.get_array_module() is np
    if "cupy" not in sys.modules:
        backend.get_array_module(np.ones(2))
        assert "cupy" not in sys.modules


def test_get_array_module_finds_cupy_arrays(monkeypatch):
    fake = types.ModuleType("cupy")

    class ndarray:  # noqa: N801  (cupy's class name)
        pass

    fake.ndarray = ndarray
    monkeypatch.setitem(sys.modules, "cupy", fake)
    assert backend.get_array_module(np.ones(2), ndarray()) is fake
    assert backend.get_array_module(np.ones(2)) is np


def test_switch_turns_kernels_off(monkeypatch):
    assert backend.kernels_enabled()
    assert backend.set_kernels(False) is True
    assert not backend.kernels_enabled()

    def boom(*args):
        raise AssertionError("kernel called while kernels are off")

    monkeypatch.setattr(nc, "_unary_fused_kernel", boom)
    monkeypatch.setitem(nc._BINARY, "mul", boom)
    x, t = np.random.rand(4), np.random.rand(2, 4)
    y, ty = nc.unary_jvp("abs", x, t)
    np.testing.assert_array_equal(ty, np.sign(x) * t)
    a, b = np.random.rand(2, 4)
    y, ty = nc.binary_jvp("mul", a, t, b, None)
    np.testing.assert_array_equal(ty, t * b)
    backend.set_kernels(True)
    with pytest.raises(AssertionError, match="kernel called"):
        nc.unary_jvp("abs", x, t)


def test_environment_variable_disables_kernels():
    code = ("from autodiff import backend; import sys; "
            "print(backend.kernels_enabled(), 'numba' in sys.modules)")
    env = dict(os.environ, AUTODIFF_DISABLE_NUMBA="1", PYTHONPATH=os.getcwd())
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "False"]  # and numba was not even imported


# ---------------------------------------------------------------- unary ops

def domain(name, shape, dtype):
    """Inputs inside the op's domain, away from poles."""
    r = np.random.rand(*shape)
    if name in ("log", "sqrt"):
        x = 0.05 + 3 * r
    elif name in ("arcsin", "arccos", "arctanh"):
        x = 1.9 * r - 0.95
    elif name == "log1p":
        x = -0.9 + 3 * r
    elif name == "tan":
        x = 2.8 * r - 1.4
    else:
        x = 6 * r - 3
    return np.asarray(x, dtype=dtype)


def strategies(name):
    return ["fused", "hybrid"] if name in nc._HYBRID else ["fused"]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("name", nc.UNARY_OPS)
def test_unary_kernels_match_numpy_and_the_engine(name, dtype):
    for strategy in strategies(name) + [None]:
        for shape in SHAPES:
            for K in (1, 3):
                x = domain(name, shape, dtype)
                t = np.random.randn(K, *shape).astype(dtype)
                y, ty = nc.unary_jvp(name, x, t, strategy=strategy)
                assert y.dtype == dtype and ty.dtype == dtype
                assert y.shape == shape and ty.shape == (K,) + shape
                yr, tyr = nc.unary_jvp_reference(name, x, t)
                close(y, yr, dtype)
                close(ty, tyr, dtype)
                # the engine's own forward mode on np.<f>: ties the reference to the rules
                f = getattr(np, {"neg": "negative"}.get(name, name))
                out = f(autodiff.dual(x, t))
                close(y, out.primal, dtype)
                close(ty, out.tangents, dtype)


SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-300, 750.0, -750.0])


@pytest.mark.parametrize("name", nc.UNARY_OPS)
def test_unary_kernels_special_values_as_numpy(name):
    t = np.stack([np.ones_like(SPECIAL), -2.0 * np.ones_like(SPECIAL)])
    with np.errstate(all="ignore"):
        yr, tyr = nc.unary_jvp_reference(name, SPECIAL, t)
        for strategy in strategies(name):
            y, ty = nc.unary_jvp(name, SPECIAL, t, strategy=strategy)
            np.testing.assert_allclose(y, yr, rtol=1e-12, equal_nan=True)
            np.testing.assert_allclose(ty, tyr, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("strategy", ["fused", "hybrid"])
def test_unary_outputs_preallocated_and_in_place(strategy):
    x = domain("tanh", (4, 130), np.float64)
    t = np.random.randn(2, 4, 130)
    yr, tyr = nc.unary_jvp_reference("tanh", x, t)
    out, out_t = np.empty_like(x), np.empty_like(t)
    y, ty = nc.unary_jvp("tanh", x, t, out=out, out_t=out_t, strategy=strategy)
    assert y is out and ty is out_t
    close(y, yr, np.float64)
    close(ty, tyr, np.float64)
    for name in ("log", "tanh"):  # the derivative reads x (log) or y (tanh)
        x = domain(name, (4, 130), np.float64)
        yr, tyr = nc.unary_jvp_reference(name, x, t)
        y, ty = nc.unary_jvp(name, x, t, out=x, out_t=t, strategy=strategy)
        assert y is x and ty is t
        close(y, yr, np.float64)
        close(ty, tyr, np.float64)
        t = np.random.randn(2, 4, 130)


def test_unary_falls_back_for_non_contiguous_and_other_dtypes(monkeypatch):
    x = domain("exp", (6, 8), np.float64)[:, ::2]
    t = np.random.randn(3, 6, 8)[..., ::2]
    y, ty = nc.unary_jvp("exp", x, t)
    close(ty, np.exp(x) * t, np.float64)
    y, ty = nc.unary_jvp("exp", x.astype(np.float16), t.astype(np.float16))
    assert ty.dtype == np.float16
    y, ty = nc.unary_jvp("exp", x.copy(), None)
    assert ty is None


def test_unary_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown op"):
        nc.unary_jvp("sigmoid", np.ones(3), np.ones((1, 3)))
    with pytest.raises(ValueError, match=r"expected \(K,\)"):
        nc.unary_jvp("exp", np.ones(3), np.ones((1, 4)))
    with pytest.raises(ValueError, match="strategy"):
        nc.unary_jvp("exp", np.ones(3), np.ones((1, 3)), strategy="gpu")


# ---------------------------------------------------------------- mul and div

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("name", nc.BINARY_OPS)
def test_binary_kernels_match_numpy_and_the_engine(name, dtype):
    op = np.multiply if name == "mul" else np.divide
    for shape in SHAPES:
        a = np.asarray(np.random.randn(*shape), dtype)
        b = np.asarray(np.random.rand(*shape) + 0.5, dtype)
        for which in ("a", "b", "ab"):
            K = 3
            ta = np.random.randn(K, *shape).astype(dtype) if "a" in which else None
            tb = np.random.randn(K, *shape).astype(dtype) if "b" in which else None
            y, ty = nc.binary_jvp(name, a, ta, b, tb)
            assert y.dtype == dtype and ty.dtype == dtype
            yr, tyr = nc.binary_jvp_reference(name, a, ta, b, tb)
            close(y, yr, dtype)
            close(ty, tyr, dtype)
            da = a if ta is None else autodiff.dual(a, ta)
            db = b if tb is None else autodiff.dual(b, tb)
            out = op(da, db)
            close(y, out.primal, dtype)
            close(ty, out.tangents, dtype)


@pytest.mark.parametrize("name", nc.BINARY_OPS)
def test_binary_in_place_and_fallbacks(name):
    a, b = np.random.randn(3, 600), np.random.rand(3, 600) + 0.5
    ta, tb = np.random.randn(2, 3, 600), np.random.randn(2, 3, 600)
    yr, tyr = nc.binary_jvp_reference(name, a, ta, b, tb)
    y, ty = nc.binary_jvp(name, a.copy(), ta.copy(), b, tb)
    close(ty, tyr, np.float64)
    a2, ta2 = a.copy(), ta.copy()
    y, ty = nc.binary_jvp(name, a2, ta2, b, tb, out=a2, out_t=ta2)  # a *= b on a Dual
    assert y is a2 and ty is ta2
    close(y, yr, np.float64)
    close(ty, tyr, np.float64)
    # broadcasting and non-contiguous operands take the numpy path
    yb, tyb = nc.binary_jvp(name, a, ta, b[:1], tb[:, :1])
    yr, tyr = nc.binary_jvp_reference(name, a, ta, b[:1], tb[:, :1])
    close(tyb, tyr, np.float64)
    assert nc.binary_jvp(name, a, None, b, None)[1] is None
