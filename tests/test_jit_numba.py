"""jit's numba backend: a recorded program compiled into one numba function.

The compiled program must agree with the Python replay (and so with the
engine run directly) to rounding: its elementwise functions, summation order
and BLAS differ from numpy's in the last bits, so comparisons here use a
relative tolerance, never equality, except where the same compiled kernels
run on both sides (a plain step's primal against a dual step's primal).
"""
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

pytest.importorskip("numba")

from autodiff import dual, grad, jvp  # noqa: E402
from autodiff.dual import Dual  # noqa: E402
from autodiff.jit import COMPILE_AFTER, JitFallbackWarning, jit  # noqa: E402
from autodiff.ops import logsumexp  # noqa: E402

import test_jit as TJ  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    """Compiled programs go to a directory of this test session (shared by its tests)."""
    monkeypatch.setenv("AUTODIFF_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "jit-cache"))


def _close(a, b, rtol):
    la, lb = TJ._leaves(a), TJ._leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == y.shape and x.dtype == y.dtype, (x.shape, y.shape, x.dtype, y.dtype)
        # (the inputs are O(1): differences of an ulp of 1 in near-zero results are rounding)
        scale = max(float(np.max(np.abs(y), initial=0.0)), 1.0)
        np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * scale)


def _compiled(j):
    (prog,) = j.programs.values()
    assert prog.compiled is not None, prog.note
    return prog


# -- the vectorizable exp and tanh ---------------------------------------------------------------
def _ulps(got, want):
    got, want = np.asarray(got), np.asarray(want)
    both_nan = np.isnan(got) & np.isnan(want)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.array_equal(np.signbit(got[~both_nan]), np.signbit(want[~both_nan]))
    fin = np.isfinite(want)
    assert np.array_equal(got[~fin & ~both_nan], want[~fin & ~both_nan])
    d = np.abs(got[fin] - want[fin]) / np.spacing(np.maximum(np.abs(want[fin]), np.finfo(float).tiny))
    return float(d.max(initial=0.0))


@pytest.fixture(scope="module")
def fast_math():
    import numba
    from autodiff.backend._nb_scalar import _exp64, _tanh64

    @numba.njit(error_model="numpy")
    def apply(which, x):
        out = np.empty_like(x)
        for i in range(x.size):
            out[i] = _exp64(x[i]) if which == 0 else _tanh64(x[i])
        return out
    return apply


SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e-310, 1e-300, 0.3465,
                    0.34657359027997264, 0.3466, 1.0, -1.0, 19.0, 20.0, 30.0, 709.78, 709.79, 710.0,
                    -708.4, -720.0, -745.1, -745.2, -746.0, -1e300, 1e300])


def test_fast_exp_is_within_one_ulp_of_numpy(fast_math):
    rng = np.random.default_rng(1)
    for x in (rng.uniform(-745.0, 709.0, 200_000), rng.uniform(-1, 1, 200_000),
              rng.standard_normal(200_000) * 1e-8, SPECIAL):
        with np.errstate(over="ignore"):
            assert _ulps(fast_math(0, x), np.exp(x)) <= 1.0


def test_fast_tanh_is_within_three_ulps_of_numpy(fast_math):
    rng = np.random.default_rng(2)
    for x in (rng.uniform(-25.0, 25.0, 200_000), rng.uniform(-1, 1, 200_000),
              rng.standard_normal(200_000) * 1e-3, rng.standard_normal(200_000) * 1e-12, SPECIAL):
        assert _ulps(fast_math(1, x), np.tanh(x)) <= 3.0


# -- whole training steps ----------------------------------------------------------------------------
def _loss(params, x, y):
    h = x
    for i in range(0, len(params) - 2, 2):
        h = np.tanh(h @ params[i] + params[i + 1])
    logits = h @ params[-2] + params[-1]
    return np.mean(logsumexp(logits, axis=1) - np.sum(logits * y, axis=1))


def _step(params, vel, x, y):
    g = grad(_loss)(params, x, y)
    vel = [0.9 * v + gi for v, gi in zip(vel, g)]
    return [p - 0.05 * v for p, v in zip(params, vel)], vel


def _mlp(dtype, K, sizes=(12, 16, 16, 5), batch=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, sizes[0])).astype(dtype)
    y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], batch)]
    params, vel = [], []
    for m, n in zip(sizes[:-1], sizes[1:]):
        params += [(rng.standard_normal((m, n)) / np.sqrt(m)).astype(dtype), (0.1 * rng.standard_normal(n)).astype(dtype)]
    vel = [(0.01 * rng.standard_normal(p.shape)).astype(dtype) for p in params]
    if K:
        tan = lambda p: rng.standard_normal(((K,) if K > 1 else ()) + p.shape).astype(dtype)
        params = [dual(p, tan(p)) for p in params]
        vel = [dual(v, tan(v)) for v in vel]
    return params, vel, x, y


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("K", [0, 1, 4])
def test_compiled_training_step_matches_the_python_replay(dtype, K):
    args = _mlp(dtype, K)
    py, nb = jit(_step, backend="python"), jit(_step, backend="numba")
    want = py(*args)
    nb(*args)                       # records
    got = nb(*args)                 # runs compiled
    _compiled(nb)
    _close(got, want, 1e-12 if dtype == np.float64 else 2e-5)
    assert type(got[0][0]) is (Dual if K else np.ndarray)
    # and over many steps: the compiled program fed its own outputs
    p, v = args[0], args[1]
    q, w = p, v
    for _ in range(20):
        p, v = py(p, v, *args[2:])
        q, w = nb(q, w, *args[2:])
    _close((q, w), (p, v), 1e-11 if dtype == np.float64 else 1e-4)


def test_a_dual_steps_primal_is_the_plain_steps_bit_for_bit():
    """The same compiled kernels compute the primal with and without tangents."""
    plain, tangent = _mlp(np.float64, 0), _mlp(np.float64, 1)
    j0, j1 = jit(_step, backend="numba"), jit(_step, backend="numba")
    j0(*plain), j1(*tangent)
    for _ in range(3):
        p0, v0 = j0(*plain)
        p1, v1 = j1(*tangent)
        for a, b in zip(p0 + v0, p1 + v1):
            np.testing.assert_array_equal(a, b.primal)
        plain, tangent = (p0, v0) + plain[2:], (p1, v1) + tangent[2:]


def test_forward_hypergradient_through_a_compiled_step():
    params, vel, x, y = _mlp(np.float64, 0)
    lr_step = lambda lr, p, v: _step_lr(p, v, lr, x, y)
    step = jit(lr_step, backend="numba")

    def train(lr, jitted):
        p, v = params, vel
        for _ in range(6):
            p, v = (step if jitted else lr_step)(lr, p, v)
        return _loss(p, x, y)
    want = jvp(lambda lr: train(lr, False), (np.float64(0.05),), (1.0,))
    got = jvp(lambda lr: train(lr, True), (np.float64(0.05),), (1.0,))
    assert any(prog.compiled is not None for prog in step.programs.values())
    np.testing.assert_allclose(got, want, rtol=1e-12)


def _step_lr(params, vel, lr, x, y):
    g = grad(_loss)(params, x, y)
    vel = [0.9 * v + gi for v, gi in zip(vel, g)]
    return [p - lr * v for p, v in zip(params, vel)], vel


def test_outputs_of_earlier_calls_are_not_overwritten():
    args = _mlp(np.float64, 1)
    j = jit(_step, backend="numba")
    j(*args)
    first = j(*args)
    keep = [np.array(a.primal) for a in first[0]]
    j(*first, *args[2:])
    for a, b in zip(first[0], keep):
        np.testing.assert_array_equal(a.primal, b)


def test_output_buffers_are_reused_only_once_nothing_refers_to_them():
    f = lambda x: (np.tanh(x) * 2.0, x + 1.0)
    j = jit(f, backend="numba")
    x = np.random.standard_normal((4, 5))
    j(x)
    kept = j(x)                       # held whole
    part = j(x + 1.0)[0][1:]          # a view of one output held
    snapshots = [np.array(kept[0]), np.array(kept[1]), np.array(part)]
    ids = set()
    for i in range(8):                # the rest is dropped at once: those buffers come back
        a, b = j(x * i)
        ids.add(id(a.base) if a.base is not None else id(a))
        np.testing.assert_allclose(a, np.tanh(x * i) * 2.0, rtol=1e-15)
        del a, b
    for got, want in zip((kept[0], kept[1], part), snapshots):
        np.testing.assert_array_equal(got, want)
    (prog,) = j.programs.values()
    assert all(len(pool) <= prog.compiled.POOL for pool in prog.compiled.pools)


def test_auto_backend_compiles_after_a_few_replays():
    args = _mlp(np.float64, 0, sizes=(3, 4, 2), batch=2)
    j = jit(_step, backend="auto")
    j(*args)                                   # records
    (prog,) = j.programs.values()
    for _ in range(COMPILE_AFTER):
        j(*args)
        assert prog.compiled is None
    j(*args)
    assert prog.compiled is not None


def test_python_backend_never_compiles():
    args = _mlp(np.float64, 0, sizes=(3, 4, 2), batch=2)
    j = jit(_step, backend="python")
    for _ in range(COMPILE_AFTER + 3):
        j(*args)
    (prog,) = j.programs.values()
    assert prog.compiled is None and prog.run is prog.replay


def test_bad_backend_is_refused():
    with pytest.raises(ValueError, match="backend"):
        jit(_step, backend="cuda")


def test_cross_entropy_with_integer_labels_compiles():
    """take_along_axis forward, np.add.at backward: the indices are a run-time input."""
    from autodiff import nn
    rng = np.random.default_rng(3)
    w, x = rng.standard_normal((5, 4)), rng.standard_normal((6, 5))
    f = lambda w, x, y: grad(lambda w: nn.softmax_cross_entropy(x @ w, y))(w)
    j = jit(f, backend="numba")
    y1, y2 = rng.integers(0, 4, 6), rng.integers(0, 4, 6)
    j(w, x, y1)
    _close(j(w, x, y2), f(w, x, y2), 1e-12)
    _compiled(j)
    with pytest.raises(IndexError):
        j(w, x, np.array([0, 1, 2, 3, 4, 0]))


def test_unsupported_program_stays_in_python_and_says_why():
    def f(x):
        return np.sort(x) * 2.0        # no compiled sort: a Python replay
    j = jit(f, backend="numba")
    x = np.random.standard_normal(5)
    j(x)
    with pytest.warns(JitFallbackWarning, match="sort"):
        got = j(x)
    np.testing.assert_array_equal(got, np.sort(x) * 2.0)
    (prog,) = j.programs.values()
    assert prog.compiled is None and "sort" in prog.note


def test_complex_values_stay_in_python():
    f = lambda a: np.maximum(a * (1 + 2j), 0.5j) * 2.0   # numpy orders complex numbers lexicographically
    j = jit(f, backend="numba")
    a = np.random.standard_normal(4)
    j(a)
    with pytest.warns(JitFallbackWarning, match="complex"):
        got = j(a)
    np.testing.assert_array_equal(got, f(a))


def test_a_compiler_bug_falls_back_to_the_replay_and_says_so(monkeypatch):
    from autodiff.backend import numba_jit

    def broken(*a, **k):
        raise RuntimeError("boom")
    monkeypatch.setattr(numba_jit, "compile_program", broken)
    j = jit(lambda x: np.exp(x) + 1.0, backend="auto")
    x = np.random.standard_normal(3)
    for _ in range(COMPILE_AFTER + 1):
        j(x)
    with pytest.warns(JitFallbackWarning, match="internal error.*boom"):
        got = j(x)
    np.testing.assert_array_equal(got, np.exp(x) + 1.0)


# -- individual operations, against numpy -----------------------------------------------------------
A = np.random.default_rng(5).standard_normal((3, 4))
B = np.random.default_rng(6).standard_normal((4, 5))
S3 = np.random.default_rng(7).standard_normal((2, 3, 4))

OPS = {
    "chain": (lambda a: np.exp(np.tanh(a) * 2.0 - 1.0) / (1.0 + a * a), (A,)),
    "broadcast-row": (lambda a, b: a + b[0, :4], (A, B)),
    "transpose-add": (lambda a, b: a.T @ a + b[:, :4], (A, B)),
    "matmul-2d": (lambda a, b: a @ b, (A, B)),
    "matmul-1d-left": (lambda a, b: a[0] @ b, (A, B)),
    "matmul-1d-right": (lambda a, b: a @ b[:, 0], (A, B)),
    "matmul-batched-left": (lambda s, b: s @ b, (S3, B)),
    "matmul-batched-right": (lambda s, a: a.T @ s, (S3, A)),
    "matmul-batched-both": (lambda s: s @ np.swapaxes(s, 1, 2), (S3,)),
    "matmul-transposed-batch": (lambda s, b: np.transpose(s, (0, 2, 1)) @ s, (S3, B)),
    "matmul-stacked-transposes": (lambda s, b: np.transpose(s, (0, 2, 1)).reshape(8, 3) @ b[:3, :], (S3, B)),
    "sum-axes": (lambda s: np.sum(s, axis=(0, 2)) + np.sum(s, axis=1, keepdims=True).sum(), (S3,)),
    "sum-all": (lambda s: np.sum(s * s), (S3,)),
    "mean-max-min": (lambda s: np.mean(s, axis=0) + np.max(s, axis=2, keepdims=True)[0] + np.min(s, axis=0),
                     (S3,)),
    "max-with-nan": (lambda a: np.max(a, axis=1), (np.where(A > 1.0, np.nan, A),)),
    "maximum-minimum": (lambda a, b: np.maximum(a, 0.0) - np.minimum(a, b[:3, :4]), (A, B)),
    "where-compare": (lambda a: np.where(a > 0, a, 0.1 * a) + (a == 0), (A,)),
    "reshape-slices": (lambda s: s.reshape(6, 4)[::2, 1:3] * 3.0, (S3,)),
    "broadcast_to": (lambda a: np.broadcast_to(a[:, :1], (3, 4)) + a, (A,)),
    "setitem-mask": (lambda a: _masked(a), (A,)),
    "setitem-slice": (lambda a: _sliced(a), (A,)),
    "astype-bool": (lambda a: (a > 0).astype(np.float64) * a, (A,)),
    "unary-zoo": (lambda a: np.sqrt(np.abs(a)) + np.log1p(np.abs(a)) + np.expm1(a) + np.sin(a) * np.cos(a)
                  + np.square(a) + np.sign(a) + np.reciprocal(a) + a ** 2 + a ** 3.0 + np.arctan(a), (A,)),
    "float32": (lambda a, b: np.tanh(a @ b) * np.float32(0.5) + 1.5, (A.astype(np.float32), B.astype(np.float32))),
    "numpy-scalar-output": (lambda a: np.sum(a), (A,)),
    "gather-dynamic-ids": (lambda a, ids: a[np.arange(3), ids] * 2.0 + a[ids[1:]].sum(), (A, np.array([3, 0, -1]))),
    "take-along-axis": (lambda a, ids: np.take_along_axis(a, ids[:, None], axis=1)[:, 0], (A, np.array([1, 3, 2]))),
    "scatter-add": (lambda a, ids: _scattered(a, ids), (A, np.array([1, 1, 0]))),
    "bool-ops": (lambda a: np.where(((a > 0) | (a < -1)) & ~(a > 2) ^ (a == 0), a, -a), (A,)),
    "concatenate-stack": (lambda a, b: np.concatenate([a, b[:3, :2] * 2.0, a.T[:3]], axis=1).sum(0)
                          + np.stack([a[0], a[1] * 2.0, a[2]], axis=1).sum(1).sum()
                          + np.concatenate((a, a + 1.0)).sum(1)[:1], (A, B)),
    "zeros-ones-like": (lambda a: np.ones_like(a) * 2 - np.zeros_like(a) + np.full_like(a, 3.0), (A,)),
}


def _scattered(a, ids):
    z = np.zeros_like(a)
    np.add.at(z, (np.arange(3), ids), a[:, 0])
    np.add.at(z, ids, 1.0)
    return z


def _masked(a):
    b = a * 2.0
    b[a > 0.5] = 0.0
    return b


def _sliced(a):
    b = a + 1.0
    b[1:, ::2] = a[:2, :2] * 3.0
    return b


@pytest.mark.parametrize("name", sorted(OPS))
def test_operation_compiles_and_matches_numpy(name):
    f, args = OPS[name]
    j = jit(f, backend="numba")
    with np.errstate(all="ignore"):
        want = f(*args)
        j(*args)
        got = j(*args)
    _compiled(j)
    assert type(got) is type(want)
    np.testing.assert_allclose(got, want, rtol=1e-6 if np.result_type(want) == np.float32 else 1e-13,
                               atol=1e-14, equal_nan=True)


def _sweep(every):
    return TJ.ALL[::every]


def _sweep_case(c):
    args, pullback, duals = TJ.sweep_inputs(c)
    compiled = 0
    for fn, inputs in [(c.f, args), (pullback, duals)]:
        j = jit(fn, backend="numba")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", JitFallbackWarning)
            want = fn(*inputs)
            j(*inputs)
            got = j(*inputs)
        _close(got, want, 1e-9)
        assert not any("internal error" in (p.note or "") for p in j.programs.values())
        compiled += all(p.compiled is not None for p in j.programs.values())
    return compiled


_EVERY = 15


@pytest.mark.parametrize("c", _sweep(_EVERY))
def test_registry_sweep_sample_compiled_matches(c):
    """Every 15th case of the primitive sweep, value and forward-over-reverse pullback:
    compiled (or, where the compiler declines, the Python replay) equals the engine."""
    _sweep_case(c)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("AUTODIFF_NUMBA_SWEEP") != "1",
                    reason="the rest of the sweep compiles ~1,700 programs (~6 min): AUTODIFF_NUMBA_SWEEP=1")
@pytest.mark.parametrize("c", [c for i, c in enumerate(TJ.ALL) if i % _EVERY])
def test_registry_sweep_rest_compiled_matches(c):
    _sweep_case(c)


# -- processes: the disk cache, and importing autodiff without numba -----------------------------------
_CACHE_SCRIPT = textwrap.dedent("""
    import sys, numpy as np
    sys.path.insert(0, {tests!r})
    from test_jit_numba import _mlp, _step
    from autodiff.jit import jit
    j = jit(_step, backend="numba")
    args = _mlp(np.float64, 1)
    j(*args); j(*args)
    (prog,) = j.programs.values()
    st = prog.compiled.fn.stats
    print("hits", sum(st.cache_hits.values()), "misses", sum(st.cache_misses.values()))
""")


def test_second_process_loads_the_compiled_program_from_disk(tmp_path):
    env = dict(os.environ, AUTODIFF_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=ROOT)
    script = _CACHE_SCRIPT.format(tests=HERE)
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
            for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    assert runs[0].stdout.split()[-1] != "0"          # the first process compiled
    assert runs[1].stdout.split() == ["hits", "1", "misses", "0"]


def test_importing_autodiff_and_a_python_replay_do_not_import_numba():
    code = ("import sys, numpy as np, autodiff; from autodiff.jit import jit; "
            "j = jit(lambda x: np.tanh(x) * 2.0, backend='python'); [j(np.ones(3)) for _ in range(9)]; "
            "print('numba' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
