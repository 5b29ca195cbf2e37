"""hyperopt.towers: hyperoptimizer towers (Chandra et al., NeurIPS 2022).

References: hd.SGDHD for the height-1 SGD tower; the recurrence written out by
hand for the height-2 SGD tower; reverse mode (`autodiff.grad` through one
update of each level, with everything else cut) for the hypergradients of any
tower in the unconstrained space.
"""
import gc
import math
import pickle
import tracemalloc
import weakref

import numpy as np
import pytest
from sklearn.datasets import load_digits

from autodiff import grad
from autodiff.core import Box
from autodiff.ops import logsumexp
from autodiff.tree import tree_flatten
from hyperopt.hd import SGDHD
from hyperopt.optim import SGD, Adam, RMSprop
from hyperopt.towers import (HyperparameterWarning, Tower, TowerSpec, describe, stack_levels,
                             tower_init, tower_update)
from hyperopt.transforms import from_unconstrained

TOL = 1e-12


def _max_diff(a, b):
    la, lb = tree_flatten(a)[0], tree_flatten(b)[0]
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(la, lb))


# a small regression model and a fixed sequence of minibatches
_rng = np.random.default_rng(0)
X = _rng.standard_normal((80, 6))
Y = np.tanh(X @ _rng.standard_normal((6, 2))) + 0.1 * _rng.standard_normal((80, 2))
P0 = {"w": 0.3 * _rng.standard_normal((6, 2)), "b": np.zeros(2)}
BATCHES = [(X[i:i + 16], Y[i:i + 16]) for i in range(0, 64, 4)]   # 16 overlapping batches


def mse(params, batch):
    x, y = batch
    return np.mean((np.tanh(x @ params["w"] + params["b"]) - y) ** 2)


# -- exactness -------------------------------------------------------------------------

def test_height_one_sgd_tower_is_sgdhd():
    kappa = 0.05
    tower = Tower(SGD(0.2, optimizer=SGD(kappa)), P0, wrt=("lr",), space="raw")
    ref = SGDHD(P0, lr=0.2, hypergrad_lr=kappa)
    for batch in BATCHES:
        loss = tower.step(mse, batch)
        assert loss == pytest.approx(mse(ref.params, batch), abs=1e-12)
        ref.step(grad(mse)(ref.params, batch))
        assert _max_diff(tower.params, ref.params) <= TOL
        assert abs(tower.hparams[0]["lr"] - ref.lr) <= TOL
    assert abs(ref.lr - 0.2) > 1e-3


def test_height_two_sgd_tower_follows_the_recurrence():
    """θ_t = θ - α g_t;  α_t = α - κ h_t, h_t = -g_t·g_{t-1};  κ_t = κ - ν h'_t with
    h'_t = ∂L/∂κ = h_t · ∂α_{t-1}/∂κ = h_t · (-h_{t-1}) (one step per level)."""
    a, k, nu = 0.2, 0.05, 1e-3
    tower = Tower(SGD(a, optimizer=SGD(k, optimizer=SGD(nu))), P0, ("lr",), space="raw")
    theta, g_prev, h_prev = P0, None, 0.0
    for batch in BATCHES:
        tower.step(mse, batch)
        g = grad(mse)(theta, batch)
        h = 0.0 if g_prev is None else -sum(float(np.vdot(g[n], g_prev[n])) for n in g)
        k = k - nu * (h * -h_prev)
        a = a - k * h
        theta = {n: theta[n] - a * g[n] for n in g}
        g_prev, h_prev = g, h
        assert _max_diff(tower.params, theta) <= TOL
        assert abs(tower.hparams[0]["lr"] - a) <= TOL and abs(tower.hparams[1]["lr"] - k) <= TOL
    assert k != 0.05


def test_hypergradients_equal_reverse_mode_through_one_step_per_level():
    """Adam / Adam / SGD in the unconstrained space: h for level 0's (lr, beta1, beta2) and
    level 1's lr equal `grad` of the loss at the new parameters through the last update
    of level 0 (and of level 1), every other input cut."""
    stack = Adam(0.01, betas=(0.8, 0.95), optimizer=Adam(0.05, optimizer=SGD(1e-3)))
    tower = Tower(stack, P0, wrt=[("lr", "betas"), ("lr",)])
    adam0, adam1 = stack_levels(stack)[:2]
    for batch in BATCHES[:4]:
        tower.step(mse, batch)
    before = tower.state                                   # state after step t - 1
    g_t = grad(mse)(before.params, BATCHES[4])
    tower.step(mse, BATCHES[4])                            # step t
    mid = tower.state
    h_t0 = tower.hypergrads[0]                             # level 0's hypergradient at step t
    tower.step(mse, BATCHES[5])                            # step t + 1: h = ∂L(θ_t)/∂u
    h = tower.hypergrads

    def theta_t(u0):
        return adam0.update(g_t, before.opt_states[0], before.params,
                            from_unconstrained(adam0, u0))[0]

    ref0 = grad(lambda u0: mse(theta_t(u0), BATCHES[5]))(dict(mid.hparams[0]))

    def u0_t(u1):
        return adam1.update(h_t0, before.opt_states[1], dict(before.hparams[0]),
                            from_unconstrained(adam1, u1))[0]

    ref1 = grad(lambda u1: mse(theta_t(u0_t(u1)), BATCHES[5]))(dict(mid.hparams[1]))
    for name in ("lr", "beta1", "beta2"):
        assert math.isclose(h[0][name], float(ref0[name]), rel_tol=1e-9, abs_tol=1e-15), name
    assert math.isclose(h[1]["lr"], float(ref1["lr"]), rel_tol=1e-9, abs_tol=1e-15)
    assert h[1]["lr"] != 0.0


def test_height_zero_is_the_plain_optimizer():
    opt = Adam(0.01)
    tower = Tower(opt, P0)
    params, state = P0, opt.init(P0)
    for batch in BATCHES[:5]:
        tower.step(mse, batch)
        params, state = opt.update(grad(mse)(params, batch), state, params)
    assert _max_diff(tower.params, params) == 0
    assert tower.height == 0 and tower.hparams == [opt.defaults] and tower.history == []


@pytest.mark.parametrize("space", ["raw", "unconstrained"])
def test_float32_tower_stays_float32(space):
    """float32 in, float32 out: parameters, every level's optimizer state and the
    tangents carried to the next step (the tuned values stay Python floats)."""
    p32 = {k: v.astype(np.float32) for k, v in P0.items()}
    b32 = [(x.astype(np.float32), y.astype(np.float32)) for x, y in BATCHES[:6]]
    tower = Tower(Adam(0.01, optimizer=SGD(1e-4, momentum=0.5, optimizer=SGD(1e-6))), p32,
                  space=space)
    for batch in b32:
        tower.step(mse, batch)
    st = tower.state
    assert all(v.dtype == np.float32 for v in tree_flatten(st.params)[0])
    assert all(t.dtype == np.float32 for t in st.tangents if t is not None)
    bufs = [b for b in tree_flatten(st.opt_states[0])[0] if np.ndim(b) > 0]
    assert bufs and all(b.dtype == np.float32 for b in bufs)
    assert all(type(v) is float for level in tower.hparams[:2] for v in level.values())
    # height 0 on float32: the plain optimizer's float32 run, bit for bit
    plain = Tower(Adam(0.01), p32)
    params, state = p32, Adam(0.01).init(p32)
    for batch in b32:
        plain.step(mse, batch)
        params, state = Adam(0.01).update(grad(mse)(params, batch), state, params)
    assert all(np.array_equal(plain.params[k], params[k]) and params[k].dtype == np.float32
               for k in params)


def test_levels_start_once_their_hypergradient_exists():
    """Level k (k >= 1) first moves its parameters at model step k + 1."""
    tower = Tower(SGD(0.1, optimizer=SGD(0.01, optimizer=SGD(1e-3, optimizer=SGD(1e-4)))), P0,
                  ("lr",), space="raw")
    for batch in BATCHES[:5]:
        tower.step(mse, batch)
    for k in range(3):
        lrs = tower.history[k]["lr"]
        first_move = next(i for i, v in enumerate(lrs) if v != (0.1, 0.01, 1e-3)[k])
        assert first_move == k + 1           # index i holds the value after step i + 1


# -- the API -------------------------------------------------------------------------

def test_describe_and_repr():
    stack = Adam(1e-3, optimizer=SGD(1e-5, optimizer=RMSprop(1e-4)))
    assert describe(stack) == "adam / sgd / rmsprop" == stack.describe()
    tower = Tower(stack, P0)
    assert describe(tower) == "adam / sgd / rmsprop"
    assert describe(tower, values=True).startswith("adam(lr=0.001, beta1=0.9, beta2=0.999")
    assert "sgd(lr=1e-05" in describe(stack, values=True)
    assert repr(tower) == ("Tower('adam / sgd / rmsprop', height=2, space='unconstrained', "
                           "tuning=[('lr', 'beta1', 'beta2'), ('lr',)], steps=0)")


def test_training_loop_hparams_history_and_defaults():
    tower = Tower(Adam(1e-2, optimizer=SGD(1e-3, momentum=0.5, optimizer=Adam(1e-3))), P0)
    assert tower.spec.names == (("lr", "beta1", "beta2"), ("lr", "momentum"))
    first = mse(P0, (X, Y))
    for batch in BATCHES * 3:
        loss = tower.step(mse, batch)
    assert isinstance(loss, float) and mse(tower.params, (X, Y)) < first
    assert len(tower.hparams) == 3 and tower.hparams[2] == tower.spec.levels[2].defaults
    assert set(tower.hparams[0]) == {"lr", "beta1", "beta2", "eps", "weight_decay"}
    assert len(tower.losses) == len(tower.history[0]["lr"]) == 48
    assert tower.history[1]["momentum"][-1] == tower.hparams[1]["momentum"] != 0.5
    assert tower.hparams[0]["lr"] != 1e-2 and 0 < tower.hparams[0]["beta2"] < 1
    assert set(tower.hypergrads[0]) == {"lr", "beta1", "beta2"}


def test_per_parameter_hyperparameters():
    tower = Tower(SGD(0.1, optimizer=Adam(0.02, optimizer=SGD(1e-4))), P0,
                  wrt=("lr",), per_parameter=[True, False])
    for batch in BATCHES:
        tower.step(mse, batch)
    lr = tower.hparams[0]["lr"]
    assert set(lr) == {"w", "b"} and lr["w"] != lr["b"]
    assert isinstance(tower.hparams[1]["lr"], float)
    assert tower.state.hypergrad.shape == (3,)


def test_pure_functions_match_the_class():
    stack = Adam(1e-2, optimizer=SGD(1e-3))
    spec, state = tower_init(stack, P0)
    tower = Tower(stack, P0)
    for batch in BATCHES[:6]:
        state = tower_update(spec, grad(mse)(state.params, batch), state)
        tower.step(mse, batch)
    assert _max_diff(state.params, tower.params) == 0


def test_state_dict_round_trip():
    stack = Adam(1e-2, optimizer=Adam(1e-3, optimizer=SGD(1e-4)))
    a = Tower(stack, P0)
    for batch in BATCHES[:6]:
        a.step(mse, batch)
    saved = pickle.loads(pickle.dumps(a.state_dict()))
    for batch in BATCHES[6:]:
        a.step(mse, batch)
    b = Tower(stack, P0)
    b.load_state_dict(saved)
    for batch in BATCHES[6:]:
        b.step(mse, batch)
    assert _max_diff(a.params, b.params) == 0 and a.hparams == b.hparams
    with pytest.raises(ValueError, match="state dict"):
        Tower(Adam(1e-2, optimizer=SGD(1e-3)), P0).load_state_dict(saved)


def test_raw_space_warns_when_a_hyperparameter_leaves_its_range():
    g = grad(mse)(P0, BATCHES[0])
    flipping = [g, {k: -v for k, v in g.items()}] * 3     # h_t = -g_t·g_{t-1} > 0: α falls
    tower = Tower(SGD(0.1, optimizer=SGD(100.0)), P0, space="raw")
    with pytest.warns(HyperparameterWarning, match="'lr' of level 0"):
        for gt in flipping:
            tower.update(gt)
    assert tower.hparams[0]["lr"] < 0
    safe = Tower(SGD(0.1, optimizer=SGD(100.0)), P0)      # unconstrained: log lr
    for gt in flipping:
        safe.update(gt)
    assert 0 < safe.hparams[0]["lr"] < 0.1
    strict = Tower(SGD(0.1, optimizer=SGD(100.0)), P0, space="raw", on_invalid="raise")
    strict.update(flipping[0])
    with pytest.raises(ValueError, match="'lr' of level 0"):
        strict.update(flipping[1])
    assert strict.state.step == 1 and strict.hparams[0]["lr"] == 0.1


# -- bad input -------------------------------------------------------------------------

@pytest.mark.parametrize("make,match", [
    (lambda: SGD(-1.0, optimizer=SGD(1e-3)), "lr"),
    (lambda: SGD(0.1, optimizer=SGD(float("nan"))), "lr"),
    (lambda: Adam(0.1, betas=(0.9, -0.1), optimizer=SGD(1e-3)), r"betas\[1\]"),
    (lambda: SGD(0.1, momentum=1.5, optimizer=SGD(1e-3)), "momentum"),
])
def test_bad_hyperparameters_raise_value_error_naming_them(make, match):
    with pytest.raises(ValueError, match=match):
        Tower(make(), P0)


def test_bad_tower_arguments_raise_value_error_naming_them():
    stack = Adam(1e-2, optimizer=SGD(1e-3))
    stack.defaults["lr"] = float("nan")          # changed after construction
    with pytest.raises(ValueError, match=r"lr \(level 0, Adam\) must be finite"):
        Tower(stack, P0)
    stack.defaults["lr"] = -1.0
    with pytest.raises(ValueError, match=r"lr \(level 0, Adam\) must be >= 0"):
        Tower(stack, P0)
    stack = Adam(1e-2, optimizer=SGD(1e-3))
    with pytest.raises(ValueError, match="'momentum'"):
        Tower(stack, P0, wrt=("lr", "momentum"))
    with pytest.raises(ValueError, match="one entry per tuned level"):
        Tower(stack, P0, wrt=[("lr",), ("lr",)])
    with pytest.raises(ValueError, match="space"):
        Tower(stack, P0, space="log")
    with pytest.raises(ValueError, match="on_invalid"):
        Tower(stack, P0, on_invalid="sometimes")
    with pytest.raises(ValueError, match="weight_decay"):   # 0 cannot move in log space
        Tower(stack, P0, wrt=("lr", "weight_decay"))
    Tower(stack, P0, wrt=("lr", "weight_decay"), space="raw")   # fine in raw space
    with pytest.raises(TypeError):
        Tower("adam", P0)


# -- memory ----------------------------------------------------------------------------

def test_no_tape_or_dual_survives_a_step():
    refs = []

    def loss(params, batch):
        refs.append(weakref.ref(params["w"]._trace))   # the step's reverse-mode trace
        return mse(params, batch)

    tower = Tower(Adam(1e-2, optimizer=SGD(1e-3, optimizer=SGD(1e-4))), P0)
    for batch in BATCHES[:5]:
        tower.step(loss, batch)
        assert refs[-1]() is None        # freed without the cyclic garbage collector
    leaves = tree_flatten(tower.state)[0]
    assert leaves and not any(isinstance(x, Box) for x in leaves)


def _fill_tuple_free_lists():
    """CPython keeps up to 2,000 freed tuples of each length below 20 for reuse, and
    tracemalloc counts them as allocated.  A traced run fills those lists slowly (the
    optimizer states are NamedTuples), over thousands of steps, which reads as growth:
    fill them at once, traced, before measuring (tests/test_memory.py has the same
    issue)."""
    junk = [[tuple([i] * n) for i in range(2000)] for n in range(1, 20)]
    del junk


def test_memory_is_flat_over_repeated_steps():
    """200 steps, then 200 more: the same memory.  Keeping each step's tangents
    (2 x 14 numbers) would add 200 x 224 B = 45 KB here; a gradient tape far more."""
    tower = Tower(Adam(1e-2, optimizer=Adam(1e-3, optimizer=SGD(1e-4))), P0, ("lr",),
                  history=False)
    gc.collect()
    tracemalloc.start()
    try:
        _fill_tuple_free_lists()
        for i in range(200):
            tower.step(mse, BATCHES[i % len(BATCHES)])
        first = tracemalloc.get_traced_memory()[0]
        for i in range(200):
            tower.step(mse, BATCHES[i % len(BATCHES)])
        second = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert sum(t.nbytes for t in tower.state.tangents) == 2 * 14 * 8
    assert abs(second - first) < 8_000, f"memory grew by {second - first} B over 200 steps"


# -- sensitivity to the initial learning rate ----------------------------------------------

def _spread(losses):
    """Standard deviation of the log of the final losses over the initial lrs."""
    return float(np.std(np.log(losses)))


def _stack(lr, height):
    """SGD(lr) / Adam(0.01) / Adam(0.01) / ...: only lr tuned, in log space."""
    top = None
    for _ in range(height):
        top = Adam(0.01, optimizer=top)
    return SGD(lr, optimizer=top)


INITIAL_LRS = (1e-3, 1e-2, 1e-1, 1.0)     # three orders of magnitude


def _sensitivity(run):
    spreads, finals = [], []
    for height in range(4):
        losses = [run(_stack(lr, height)) for lr in INITIAL_LRS]
        assert all(np.isfinite(losses))
        spreads.append(_spread(losses))
        finals.append(losses)
    return spreads, finals


def _check_spreads(spreads):
    s0, s1, s2, s3 = spreads
    assert s1 < s0                       # tuning the lr at all helps
    assert s2 < 0.6 * s1 and s3 < 0.6 * s1   # tuning the tuner helps more
    assert s2 < 0.3 * s0 and s3 < 0.3 * s0


def test_taller_towers_are_less_sensitive_on_a_noisy_quadratic():
    curvature = np.logspace(-1, 0, 20)

    def run(stack, steps=300):
        rng = np.random.default_rng(0)
        tower = Tower(stack, np.zeros(20), wrt=("lr",), history=False)
        loss = lambda p, noise: 0.5 * np.sum(curvature * (p - 1.0) ** 2) + np.sum(noise * p)
        for _ in range(steps):
            tower.step(loss, 0.1 * rng.standard_normal(20))
        return 0.5 * np.sum(curvature * (tower.params - 1.0) ** 2)

    spreads, finals = _sensitivity(run)
    print("noisy quadratic, std of log final loss by height:", np.round(spreads, 3))
    print("final losses:", np.round(finals, 4).tolist())
    _check_spreads(spreads)


def test_taller_towers_are_less_sensitive_on_digits():
    d = load_digits()
    x_all, y_all = d.data / 16.0, np.eye(10)[d.target]

    def loss(p, x, y):
        z = x @ p["w"] + p["b"]
        return np.mean(logsumexp(z, axis=1) - np.sum(z * y, axis=1))

    def run(stack, steps=300, batch=64):
        rng = np.random.default_rng(0)
        tower = Tower(stack, {"w": np.zeros((64, 10)), "b": np.zeros(10)}, wrt=("lr",),
                      history=False)
        for _ in range(steps):
            i = rng.integers(0, len(x_all), batch)
            tower.step(loss, x_all[i], y_all[i])
        return float(loss(tower.params, x_all, y_all))

    spreads, finals = _sensitivity(run)
    print("digits logistic regression, std of log final loss by height:", np.round(spreads, 3))
    print("final losses:", np.round(finals, 4).tolist())
    _check_spreads(spreads)


def test_nan_gradient_stops_hd_and_towers_with_a_clear_error():
    import numpy as np
    import pytest
    from hyperopt.hd_auto import HD
    from hyperopt.optim import SGD, Adam
    from hyperopt.towers import Tower
    for opt in (HD(SGD(lr=0.1), np.ones(3), hypergrad_lr=1e-3),
                Tower(Adam(1e-2, optimizer=SGD(1e-5)), np.ones(3))):
        step = opt.step if isinstance(opt, HD) else opt.update
        step(np.ones(3))
        before = np.array(opt.params, copy=True)
        with pytest.raises(FloatingPointError, match="NaN or inf"):
            step(np.array([1.0, np.nan, 1.0]))
        np.testing.assert_array_equal(opt.params, before)
