"""The numba CPU kernels (autodiff.backend.numba_cpu) against numpy and the engine.

Each kernel is compared with its numpy reference (f(x), f'(x) t) and with the
engine's own forward mode on the same computation, to 1e-12 in float64 and
1e-5 in float32; the optimizer kernels are also checked against a central
finite difference of the update along a random direction of every input.
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
    monkeypatch.setattr(nc, "_sgd_kernel", boom)
    x, t = np.random.rand(4), np.random.rand(2, 4)
    y, ty = nc.unary_jvp("abs", x, t)
    np.testing.assert_array_equal(ty, np.sign(x) * t)
    p, v, g = np.random.rand(3, 4)
    nc.sgd_momentum_jvp(p, t, v, None, g, None, 0.1, None, 0.9, None)
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


# ---------------------------------------------------------------- matmul

@pytest.mark.parametrize("strategy", nc.MATMUL_STRATEGIES)
def test_matmul_strategies_match_the_engine(strategy):
    for dtype in DTYPES:
        n, k, m = 5, 4, 3
        a, b = np.random.randn(n, k).astype(dtype), np.random.randn(k, m).astype(dtype)
        for K in (1, 3):
            ta, tb = np.random.randn(K, n, k).astype(dtype), np.random.randn(K, k, m).astype(dtype)
            for ta_, tb_ in ((ta, None), (None, tb), (ta, tb)):
                y, ty = nc.matmul_jvp(a, ta_, b, tb_, strategy=strategy)
                da = a if ta_ is None else autodiff.dual(a, ta_)
                db = b if tb_ is None else autodiff.dual(b, tb_)
                out = da @ db
                assert y.dtype == dtype and ty.dtype == dtype and ty.shape == (K, n, m)
                close(y, out.primal, dtype)
                close(ty, out.tangents, dtype)
    assert nc.matmul_jvp(a, None, b, None)[1] is None


# ---------------------------------------------------------------- optimizers

def sgd_update(p, v, g, lr, mu, weight_decay, nesterov):
    """torch.optim.SGD's step, in plain numpy: what the engine differentiates."""
    ge = g + weight_decay * p
    vn = mu * v + ge
    step = ge + mu * vn if nesterov else vn
    return p - lr * step, vn


def adam_update(p, m, v, g, lr, b1, b2, eps, step, weight_decay):
    """torch.optim.Adam's step, in plain numpy."""
    ge = g + weight_decay * p
    mn = b1 * m + (1 - b1) * ge
    vn = b2 * v + (1 - b2) * ge * ge
    mhat = mn / (1 - b1 ** step)
    vhat = vn / (1 - b2 ** step)
    return p - lr * mhat / (np.sqrt(vhat) + eps), mn, vn


def engine_jvp(fn, primals, tangents):
    """The engine's forward mode of ``fn`` with K directions: Duals for the inputs with tangents.

    An output that depends on no input with a tangent comes back as a plain
    array; its tangent is then zeros (the kernels return zeros there)."""
    K = next(np.shape(t)[0] for t in tangents if t is not None)
    args = [x if t is None else autodiff.dual(x, t) for x, t in zip(primals, tangents)]
    outs = fn(*args)
    return ([o.primal if isinstance(o, autodiff.Dual) else o for o in outs],
            [o.tangents if isinstance(o, autodiff.Dual) else np.zeros((K,) + np.shape(o))
             for o in outs])


SGD_CASES = [(nesterov, wd) for nesterov in (False, True) for wd in (0.0, 0.05)]


def sgd_inputs(shape, K, dtype, present="pvgLM"):
    p, v, g = (np.asarray(np.random.randn(*shape), dtype) for _ in range(3))
    lr, mu = 0.1, 0.9
    tp, tv, tg = (np.random.randn(K, *shape).astype(dtype) if c in present else None
                  for c in "pvg")
    tlr, tmu = (np.random.randn(K) if c in present else None for c in "LM")
    return p, tp, v, tv, g, tg, lr, tlr, mu, tmu


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("nesterov,wd", SGD_CASES)
def test_sgd_kernel_matches_the_engine(dtype, nesterov, wd):
    for shape, K in (((3, 5), 1), ((2, 700), 3), ((), 2)):
        for present in ("pvgLM", "g", "L", "pM"):
            p, tp, v, tv, g, tg, lr, tlr, mu, tmu = sgd_inputs(shape, K, dtype, present)
            res = nc.sgd_momentum_jvp(p, tp, v, tv, g, tg, lr, tlr, mu, tmu,
                                      weight_decay=wd, nesterov=nesterov)
            ref = nc.sgd_momentum_jvp_reference(p, tp, v, tv, g, tg, lr, tlr, mu, tmu, wd, nesterov)
            up = lambda p, v, g, lr, mu: sgd_update(p, v, g, lr, mu, wd, nesterov)  # noqa: E731
            f64 = [np.float64(x) if np.ndim(x) == 0 else x.astype(np.float64) for x in (p, v, g)]
            (pe, ve), (tpe, tve) = engine_jvp(up, f64 + [np.float64(lr), np.float64(mu)],
                                              [tp, tv, tg, tlr, tmu])
            for got, want in zip(res, (pe, tpe, ve, tve)):
                assert got.dtype == dtype
                close(got, want, dtype)
            for got, want in zip(res, ref):
                close(got, want, dtype)


@pytest.mark.parametrize("nesterov,wd", SGD_CASES)
def test_sgd_kernel_against_finite_differences(nesterov, wd):
    p, tp, v, tv, g, tg, lr, tlr, mu, tmu = sgd_inputs((4, 6), 1, np.float64)
    _, tpn, _, tvn = nc.sgd_momentum_jvp(p, tp, v, tv, g, tg, lr, tlr, mu, tmu,
                                         weight_decay=wd, nesterov=nesterov)

    def at(h):
        return sgd_update(p + h * tp[0], v + h * tv[0], g + h * tg[0], lr + h * tlr[0],
                          mu + h * tmu[0], wd, nesterov)

    h = 1e-6
    (pp, vp), (pm, vm) = at(h), at(-h)
    np.testing.assert_allclose(tpn[0], (pp - pm) / (2 * h), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(tvn[0], (vp - vm) / (2 * h), rtol=1e-6, atol=1e-8)


def test_sgd_in_place_and_fallback():
    p, tp, v, tv, g, tg, lr, tlr, mu, tmu = sgd_inputs((3, 40), 2, np.float64)
    ref = nc.sgd_momentum_jvp_reference(p, tp, v, tv, g, tg, lr, tlr, mu, tmu, 0.01, True)
    args = [x.copy() if isinstance(x, np.ndarray) else x for x in (p, tp, v, tv, g, tg)]
    res = nc.sgd_momentum_jvp(*args, lr, tlr, mu, tmu, weight_decay=0.01, nesterov=True, inplace=True)
    assert res[0] is args[0] and res[1] is args[1] and res[2] is args[2] and res[3] is args[3]
    for got, want in zip(res, ref):
        close(got, want, np.float64)
    # non-contiguous parameters: the numpy path, same answer
    res = nc.sgd_momentum_jvp(p.T, tp.transpose(0, 2, 1), v.T, tv.transpose(0, 2, 1), g.T,
                              tg.transpose(0, 2, 1), lr, tlr, mu, tmu, weight_decay=0.01, nesterov=True)
    close(res[1], ref[1].transpose(0, 2, 1), np.float64)
    assert nc.sgd_momentum_jvp(p, None, v, None, g, None, lr, None, mu, None)[1] is None


ADAM_CASES = [(step, wd) for step in (1, 7) for wd in (0.0, 0.01)]


def adam_inputs(shape, K, dtype, present="pmvgLAB"):
    p, m, g = (np.asarray(np.random.randn(*shape), dtype) for _ in range(3))
    v = np.asarray(np.random.rand(*shape) + 0.1, dtype)
    tp, tm, tv, tg = (np.random.randn(K, *shape).astype(dtype) if c in present else None
                      for c in "pmvg")
    tlr, tb1, tb2 = (np.random.randn(K) if c in present else None for c in "LAB")
    return p, tp, m, tm, v, tv, g, tg, 1e-3, tlr, 0.9, tb1, 0.999, tb2


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("step,wd", ADAM_CASES)
def test_adam_kernel_matches_the_engine(dtype, step, wd):
    eps = 1e-8
    for shape, K in (((3, 5), 1), ((2, 700), 3), ((), 2)):
        for present in ("pmvgLAB", "g", "B", "pL"):
            (p, tp, m, tm, v, tv, g, tg, lr, tlr, b1, tb1, b2, tb2) = adam_inputs(shape, K, dtype, present)
            res = nc.adam_jvp(p, tp, m, tm, v, tv, g, tg, lr, tlr, b1, tb1, b2, tb2, eps, step,
                              weight_decay=wd)
            ref = nc.adam_jvp_reference(p, tp, m, tm, v, tv, g, tg, lr, tlr, b1, tb1, b2, tb2, eps,
                                        step, wd)
            up = lambda p, m, v, g, lr, b1, b2: adam_update(p, m, v, g, lr, b1, b2, eps, step, wd)  # noqa: E731
            f64 = [np.float64(x) if np.ndim(x) == 0 else x.astype(np.float64) for x in (p, m, v, g)]
            (pe, me, ve), (tpe, tme, tve) = engine_jvp(
                up, f64 + [np.float64(lr), np.float64(b1), np.float64(b2)], [tp, tm, tv, tg, tlr, tb1, tb2])
            for got, want in zip(res, (pe, tpe, me, tme, ve, tve)):
                assert got.dtype == dtype
                close(got, want, dtype)
            for got, want in zip(res, ref):
                close(got, want, dtype)


@pytest.mark.parametrize("step,wd", ADAM_CASES)
def test_adam_kernel_against_finite_differences(step, wd):
    (p, tp, m, tm, v, tv, g, tg, lr, tlr, b1, tb1, b2, tb2) = adam_inputs((4, 6), 1, np.float64)
    res = nc.adam_jvp(p, tp, m, tm, v, tv, g, tg, lr, tlr, b1, tb1, b2, tb2, 1e-8, step,
                      weight_decay=wd)

    def at(h):
        return adam_update(p + h * tp[0], m + h * tm[0], v + h * tv[0], g + h * tg[0],
                           lr + h * tlr[0], b1 + h * tb1[0], b2 + h * tb2[0], 1e-8, step, wd)

    h = 1e-7
    for got, plus, minus in zip(res[1::2], at(h), at(-h)):
        np.testing.assert_allclose(got[0], (plus - minus) / (2 * h), rtol=1e-5, atol=1e-6)


def test_adam_zero_second_moment_gives_finite_tangents():
    (p, tp, m, tm, v, tv, g, tg, lr, tlr, b1, tb1, b2, tb2) = adam_inputs((2, 8), 2, np.float64)
    g[0, :3] = v[0, :3] = m[0, :3] = tv[:, 0, :3] = 0.0  # an unused parameter: g = v = 0
    res = nc.adam_jvp(p, tp, m, tm, v, tv, g, tg, lr, tlr, b1, tb1, b2, tb2, 1e-8, 3)
    ref = nc.adam_jvp_reference(p, tp, m, tm, v, tv, g, tg, lr, tlr, b1, tb1, b2, tb2, 1e-8, 3)
    assert all(np.isfinite(x).all() for x in res)
    for got, want in zip(res, ref):
        close(got, want, np.float64)


def test_adam_in_place_and_rejects_step_zero():
    (p, tp, m, tm, v, tv, g, tg, lr, tlr, b1, tb1, b2, tb2) = adam_inputs((3, 40), 2, np.float64)
    ref = nc.adam_jvp_reference(p, tp, m, tm, v, tv, g, tg, lr, tlr, b1, tb1, b2, tb2, 1e-8, 2)
    args = [x.copy() for x in (p, tp, m, tm, v, tv, g, tg)]
    res = nc.adam_jvp(*args, lr, tlr, b1, tb1, b2, tb2, 1e-8, 2, inplace=True)
    assert all(r is a for r, a in zip(res, args[:6]))
    for got, want in zip(res, ref):
        close(got, want, np.float64)
    with pytest.raises(ValueError, match="step counts from 1"):
        nc.adam_jvp(p, tp, m, tm, v, tv, g, tg, lr, tlr, b1, tb1, b2, tb2, 1e-8, 0)
