"""float32 in, float32 out: a float32 `Setup` computes in float32 on every path.

Under NEP 50 (numpy 2) a 0-d float64 array or numpy scalar is strongly typed:
``lr * g`` with a float32 ``g`` is float64, and so is ``b1 ** t`` with an
int64 step counter.  A jit-ed step gets its step counter as a 0-d int array
(a Python int would be a constant of the recording, recorded anew every
step), and hyperparameters may arrive as 0-d float64 arrays (the tuner, the
online methods, a user), so each path is checked here: the parameters and
tangents that come out, and every value the recorded jit programs compute
(nothing float64 but scalars and the K-vector tangents of scalars).

Also: jit-ed and eager runs are the same numbers bit for bit, in float32 and
float64; the number of recorded programs does not grow with the run; a
hypergradient's primal value is the plain run's.
"""
import sys

import numpy as np
import pytest

from autodiff import grad, jit
from autodiff.core import primal_value
from autodiff.dual import Dual, dual
from autodiff.tree import tree_leaves
from hyperopt.data import digits
from hyperopt.coords import from_unconstrained as _from_u, to_unconstrained as _to_u
from hyperopt.hypergrad import Setup, _as_step_array, hypergradient
from hyperopt.models import MLP
from hyperopt.online import MARTHE, RTHO
from hyperopt.optim import SGD, Adagrad, Adam, AdamW, RAdam, RMSprop
from hyperopt.schedules import (CosineWarmRestarts, ExponentialDecay, LinearWarmup, Sequential,
                                StepDecay, scheduled)
from hyperopt.tune import Tuner

JIT = sys.modules["autodiff.jit"]  # the module (autodiff.jit the attribute is the function)

OPTIMIZERS = {
    "sgd-momentum": lambda: SGD(lr=0.01, momentum=0.9),
    "sgd-dampening-wd": lambda: SGD(lr=0.05, momentum=0.5, dampening=0.1, weight_decay=1e-3),
    "sgd-nesterov": lambda: SGD(lr=0.05, momentum=0.5, nesterov=True),
    "adam": lambda: Adam(lr=1e-3),
    "adamw-amsgrad": lambda: AdamW(lr=1e-3, amsgrad=True),
    "radam": lambda: RAdam(lr=1e-3),
    "radam-no-sgd": lambda: RAdam(lr=1e-3, degenerated_to_sgd=False),
    "rmsprop-centered": lambda: RMSprop(lr=1e-3, centered=True, momentum=0.5),
    "adagrad": lambda: Adagrad(lr=1e-2, lr_decay=0.01),
    "exp-schedule": lambda: scheduled(SGD(lr=0.05, momentum=0.5), ExponentialDecay(0.95)),
    "warmup-cosine": lambda: scheduled(Adam(lr=1e-3), Sequential(
        [LinearWarmup(5, 0.1), CosineWarmRestarts(4, 2, eta_min=1e-4)], [5])),
    "step-schedule": lambda: scheduled(Adagrad(lr=1e-2), StepDecay(3, 0.5)),
}


@pytest.fixture(scope="module")
def data32():
    return digits(seed=0, dtype=np.float32)


@pytest.fixture(scope="module")
def data64():
    return digits(seed=0)


@pytest.fixture
def recorded(monkeypatch):
    """Every value a jit recording computes (or is given), as (shape, dtype)."""
    seen = []
    new = JIT.Recorder.new

    def spy(self, value):
        seen.append((np.shape(value), getattr(value, "dtype", None)))
        return new(self, value)

    monkeypatch.setattr(JIT.Recorder, "new", spy)
    return seen


def _setup(data, opt, dtype, jit=True, steps=12, sizes=(64, 16, 10), **kw):
    return Setup(MLP(sizes), data, opt, steps=steps, batch_size=32, dtype=dtype, jit=jit, **kw)


def _assert_dtype(tree, dtype):
    for x in tree_leaves(tree):
        if isinstance(x, Dual):
            assert x.primal.dtype == dtype and x.tangents.dtype == dtype, (x.primal.dtype,
                                                                             x.tangents.dtype)
        else:
            assert np.asarray(x).dtype == dtype, np.asarray(x).dtype


def _assert_identical(a, b):
    la, lb = tree_leaves(a), tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        for u, v in ([(x.primal, y.primal), (x.tangents, y.tangents)] if isinstance(x, Dual)
                     else [(x, y)]):
            u, v = np.asarray(u), np.asarray(v)
            assert u.dtype == v.dtype and np.array_equal(u, v), np.max(np.abs(u - v))


def _assert_no_float64_arrays(seen, K=0):
    """No recorded float64 value but 0-d ones (scalar coefficients: bias corrections
    computed in float64, then cast) and K-vectors (their tangents)."""
    wide = [s for s, d in seen if d == np.float64 and len(s) > 0 and int(np.prod(s)) > K]
    assert not wide, f"float64 arrays in a float32 program: {wide[:5]}"
    assert any(d == np.float32 for s, d in seen)  # (the spy did see the recording)


# -- the training run -------------------------------------------------------------------------

def test_the_reported_run_stays_float32(data32):
    """The reproducer of the bug: float64 parameters with jit=True."""
    for opt in (Adam(lr=1e-3), SGD(lr=0.01, momentum=0.9)):
        for use_jit in (True, False):
            s = Setup(MLP((64, 16, 10)), data32, opt, steps=5, dtype=np.float32, jit=use_jit)
            _assert_dtype(s.train({}), np.float32)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_train_float32_jit_equals_eager_and_programs_are_float32(data32, recorded, name):
    s = _setup(data32, OPTIMIZERS[name](), np.float32)
    a = s.train({})
    _assert_dtype(a, np.float32)
    _assert_no_float64_arrays(recorded)
    assert s._steppers["jit"].n_recordings == 1
    for p in s._steppers["jit"].programs.values():   # the buffers the programs own
        bufs = [v for v in p.replay.__globals__.values() if isinstance(v, np.ndarray)]
        assert all(b.dtype != np.float64 or b.ndim == 0 for b in bufs)
    b = _setup(data32, OPTIMIZERS[name](), np.float32, jit=False).train({})
    _assert_identical(a, b)


@pytest.mark.parametrize("name", ["sgd-momentum", "adam", "radam", "warmup-cosine"])
def test_train_float64_jit_equals_eager_bit_for_bit(data64, name):
    a = _setup(data64, OPTIMIZERS[name](), np.float64).train({})
    b = _setup(data64, OPTIMIZERS[name](), np.float64, jit=False).train({})
    _assert_dtype(a, np.float64)
    _assert_identical(a, b)


@pytest.mark.parametrize("name", ["sgd-momentum", "adam", "exp-schedule"])
def test_one_program_however_long_the_run(data32, name):
    counts = []
    for steps in (3, 25):
        s = _setup(data32, OPTIMIZERS[name](), np.float32, steps=steps)
        s.train({})
        counts.append((s._steppers["jit"].n_recordings, len(s._steppers["jit"].programs)))
    assert counts == [(1, 1), (1, 1)]


def test_float64_numpy_hyperparameters_are_cast_to_the_setup_dtype(data32, recorded):
    """0-d float64 arrays and numpy scalars (what the tuner hands back, or a user) for the
    optimizer, the model (init_scale, label_smoothing) and example_weights."""
    h64 = {"lr": np.asarray(2e-3), "beta1": np.float64(0.8), "init_scale": np.asarray(1.2),
           "label_smoothing": np.asarray(0.1),
           "example_weights": np.linspace(0.2, 0.9, len(data32.train.x))}
    h32 = {k: np.asarray(v, dtype=np.float32) for k, v in h64.items()}
    runs = []
    for h in (h64, h32):
        for use_jit in (True, False):
            p = _setup(data32, Adam(lr=1e-3), np.float32, jit=use_jit).train(h)
            _assert_dtype(p, np.float32)
            runs.append(p)
    _assert_no_float64_arrays(recorded)
    for p in runs[1:]:
        _assert_identical(runs[0], p)


def test_cast_hparams_leaves_python_floats_and_float64_setups_alone(data32, data64):
    s32 = _setup(data32, SGD(lr=0.1), np.float32)
    h = s32.cast_hparams({"lr": 0.1, "momentum": np.asarray(0.5), "weight_decay": np.float32(0.0),
                          "example_weights": None})
    assert type(h["lr"]) is float and h["momentum"].dtype == np.float32
    assert h["weight_decay"].dtype == np.float32 and h["example_weights"] is None
    d = s32.cast_hparams({"lr": dual(np.asarray(0.1), np.ones(2))})["lr"]
    assert d.primal.dtype == np.float32 and d.tangents.dtype == np.float32
    s64 = _setup(data64, SGD(lr=0.1), np.float64)
    x = np.asarray(0.5)
    assert s64.cast_hparams({"momentum": x})["momentum"] is x


# -- hypergradients ----------------------------------------------------------------------------

HYPER = [
    ("sgd", lambda: SGD(lr=0.05, momentum=0.5),
     {"lr": 0.05, "momentum": 0.5, "weight_decay": 1e-3, "init_scale": 1.1,
      "label_smoothing": 0.05}),
    ("adam", lambda: Adam(lr=0.01), {"lr": 0.01, "beta1": 0.9}),
    ("schedule", lambda: scheduled(SGD(lr=0.05, momentum=0.5), ExponentialDecay(0.9)),
     {"lr": 0.05, "gamma": 0.9}),
]


def _duals(setup, h, names):
    """The hyperparameters as `hypergradient` makes them: Duals in the unconstrained
    coordinates, one direction per name."""
    u = _to_u(setup, setup.resolve(h), names)
    K = len(names)
    seeded = {k: dual(u[k], np.eye(K, dtype=u[k].dtype)[i]) for i, k in enumerate(names)}
    return {**setup.resolve(h), **_from_u(setup, seeded)}


@pytest.mark.parametrize("name,make,h", HYPER, ids=[c[0] for c in HYPER])
def test_forward_mode_run_is_float32_with_float32_tangents(data32, recorded, name, make, h):
    names = list(h)
    s = _setup(data32, make(), np.float32, sizes=(64, 12, 10), steps=8)
    params = s.train(_duals(s, h, names))
    _assert_dtype(params, np.float32)
    assert all(isinstance(p, Dual) for p in tree_leaves(params))
    _assert_no_float64_arrays(recorded, K=len(names))
    # a program per kind of input (plain params at step 1, then Duals in params, then in
    # every buffer too), none per step
    n = s._steppers["jit"].n_recordings
    assert n <= 3
    longer = _setup(data32, make(), np.float32, sizes=(64, 12, 10), steps=30)
    longer.train(_duals(longer, h, names))
    assert longer._steppers["jit"].n_recordings == n
    eager = _setup(data32, make(), np.float32, sizes=(64, 12, 10), steps=8, jit=False)
    _assert_identical(params, eager.train(_duals(eager, h, names)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,make,h", HYPER, ids=[c[0] for c in HYPER])
def test_hypergradient_jit_equals_eager_and_primal_is_the_plain_run(data32, data64, dtype, name,
                                                                    make, h):
    data = data32 if dtype == np.float32 else data64
    mk = lambda use_jit: _setup(data, make(), dtype, sizes=(64, 12, 10), steps=8, jit=use_jit)
    fwd = hypergradient(mk(True), h, mode="forward")
    fwd_eager = hypergradient(mk(False), h, mode="forward")
    assert fwd.value == fwd_eager.value
    for k in h:
        assert np.array_equal(fwd.grads[k], fwd_eager.grads[k]), k
    rev = hypergradient(mk(True), h, mode="reverse")
    for k in h:
        assert np.asarray(rev.grads[k]).dtype == dtype
        np.testing.assert_allclose(fwd.grads[k], rev.grads[k],
                                   rtol=2e-4 if dtype == np.float32 else 1e-8, atol=1e-7)
    # differentiating does not change the run: the plain run at the same values
    s = mk(True)
    at = {k: np.asarray(primal_value(v)) for k, v in _duals(s, h, list(h)).items() if k in h}
    assert all(v.dtype == dtype for v in at.values())
    loss, _ = s.evaluate(s.train({**h, **at}))
    assert np.asarray(loss).dtype == dtype
    assert fwd.value == rev.value == float(loss)


def test_reverse_mode_tape_is_float32(data32):
    s = _setup(data32, Adam(lr=0.01), np.float32, sizes=(64, 12, 10), steps=4, jit=False)
    lr32 = np.asarray(0.01, dtype=np.float32)

    def final_w(lr):
        p = s.train({"lr": lr})
        assert primal_value(p["w0"]).dtype == np.float32
        return np.sum(p["w0"])

    g = grad(final_w)(lr32)
    assert np.asarray(g).dtype == np.float32 and np.isfinite(g)
    g64 = grad(final_w)(np.asarray(0.01))     # a float64 hyperparameter: cast, differentiably
    assert np.asarray(g64).dtype == np.float64 and np.isfinite(g64)


def test_tuner_iterations_and_evaluation_stay_float32(data32, recorded):
    s = _setup(data32, SGD(lr=0.05, momentum=0.5), np.float32, sizes=(64, 12, 10), steps=6)
    t = Tuner(s, {"lr": 0.05, "momentum": 0.5}, mode="forward")
    for _ in range(2):
        t.step()
    h = t.hparams()       # the hyper-optimizer's float64 values
    p = s.train(h)
    _assert_dtype(p, np.float32)
    _assert_no_float64_arrays(recorded, K=2)


# -- online methods ----------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["rtho", "marthe"])
def test_online_float32_jit_equals_eager(data32, recorded, method):
    def run(use_jit, steps=10):
        if method == "rtho":
            s = _setup(data32, SGD(lr=0.05, momentum=0.5), np.float32, sizes=(64, 12, 10),
                       steps=steps, jit=use_jit)
            return s, RTHO(s, {"lr": 0.05, "momentum": 0.5}, wrt=("lr", "momentum"),
                           hypergrad_lr=1e-2).run()
        s = _setup(data32, Adam(lr=1e-3), np.float32, sizes=(64, 12, 10), steps=steps,
                   jit=use_jit)
        return s, MARTHE(s, {"lr": 1e-3}, hypergrad_lr=1e-2).run()

    s, a = run(True)
    _assert_dtype(a.params, np.float32)
    _assert_no_float64_arrays(recorded, K=2)
    n = s._steppers["jit"].n_recordings
    assert n <= 2
    assert run(True, steps=25)[0]._steppers["jit"].n_recordings == n
    _, b = run(False)
    _assert_identical(a.params, b.params)
    assert [r["h0"] for r in a.history] == [r["h0"] for r in b.history]
    assert a.hparams["lr"] != (0.05 if method == "rtho" else 1e-3)  # it did adapt


def test_online_tangents_are_float32(data32):
    """Z_t (the tangents carried by parameters and buffers) stays float32: seen from
    inside the step by a callback-like spy on the jit-ed step's outputs."""
    s = _setup(data32, SGD(lr=0.05, momentum=0.5), np.float32, sizes=(64, 12, 10), steps=4)
    step = s._stepper(True)
    outs = []

    def spy(*args):
        out = step(*args)
        outs.append(out)
        return out

    s._steppers["jit"] = spy
    RTHO(s, {"lr": 0.05}, hypergrad_lr=1e-2).run()
    assert len(outs) == 4
    for params, state in outs:
        _assert_dtype(params, np.float32)
        _assert_dtype([state.momentum_buffer], np.float32)


# -- the optimizers and schedules on their own --------------------------------------------------

def test_schedules_keep_base_lr_dtype_with_an_array_step():
    t = np.asarray(7)
    for sched in (StepDecay(3, 0.5), ExponentialDecay(0.9), CosineWarmRestarts(4, 2, 1e-4),
                  LinearWarmup(10, 0.1), Sequential([LinearWarmup(5), CosineWarmRestarts(4)], [5])):
        lr32 = sched(t, np.float32(0.1))
        assert np.asarray(lr32).dtype == np.float32, sched
        assert np.asarray(sched(t, np.asarray(0.1))).dtype == np.float64
        # as with a Python-int step, up to float32 rounding
        np.testing.assert_allclose(lr32, sched(7, np.float32(0.1)), rtol=1e-6)
        assert np.asarray(sched(7, np.float32(0.1))).dtype == np.float32


def test_jit_of_a_float32_update_with_an_array_counter():
    """The optimizers alone, as `Setup` runs them: int-array step counter, jit-ed."""
    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((5, 4)).astype(np.float32)}
    grads = [{"w": rng.standard_normal((5, 4)).astype(np.float32)} for _ in range(6)]
    for name, make in OPTIMIZERS.items():
        opt = make()
        step = jit(lambda g, s, p: opt.update(g, s, p))
        p, s, p_int, s_int = params, _as_step_array(opt.init(params)), params, opt.init(params)
        for g in grads:
            p, s = step(g, s, p)
            p_int, s_int = opt.update(g, s_int, p_int)
        _assert_dtype(p, np.float32)
        _assert_dtype([b for b in tree_leaves(s) if np.ndim(b) > 0], np.float32)
        assert step.n_recordings == 1, name
        np.testing.assert_allclose(p["w"], p_int["w"], rtol=1e-5, atol=1e-7, err_msg=name)


def test_forward_hypergradient_wrt_beta2_is_the_same_with_and_without_jit():
    import hyperopt.data as data
    from hyperopt.hypergrad import Setup, hypergradient
    from hyperopt.models import MLP
    from hyperopt.optim import Adam
    grads = []
    for jit in (True, False):
        s = Setup(MLP((64, 16, 10)), data.digits(), Adam(lr=1e-3), steps=10, jit=jit)
        g = hypergradient(s, {"lr": 1e-3, "beta2": 0.999}, mode="forward")
        grads.append((float(g.grads["beta2"]), float(g.grads["lr"])))
    assert grads[0] == grads[1]   # bit for bit: a numpy-scalar base takes the array path of pow's rules
