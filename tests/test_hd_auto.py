"""hyperopt.hd_auto.HD: hypergradient descent derived by forward mode through any optimizer.

The closed forms of hyperopt.hd (SGDHD, SGDNHD, AdamHD) are the reference
where they exist; elsewhere the hypergradient is checked against a central
finite difference of the previous update.
"""
import math
import pickle
import warnings

import numpy as np
import pytest

from autodiff import grad
from autodiff.ops import logsumexp
from autodiff.tree import tree_flatten
from hyperopt.hd import AdamHD, LearningRateWarning, SGDHD
from hyperopt.hd_auto import HD, hd_init
from hyperopt.optim import SGD, Adam, AdamW, Adagrad, RAdam, RMSprop
from hyperopt.towers import HyperparameterWarning, describe, tower_update

TOL = 1e-12


def _gradient_sequence(n=15, seed=0):
    """A fixed sequence of gradients for a two-leaf parameter tree."""
    rng = np.random.default_rng(seed)
    base = {"w": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    # correlated from step to step, so the hypergradient is not noise
    return [{k: v + 0.3 * rng.standard_normal(v.shape) for k, v in base.items()}
            for _ in range(n)]


def _params0(seed=1):
    rng = np.random.default_rng(seed)
    return {"w": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}


def _max_diff(a, b):
    la, lb = tree_flatten(a)[0], tree_flatten(b)[0]
    return max(float(np.max(np.abs(x - y))) for x, y in zip(la, lb))


SGD_VARIANTS = [dict(), dict(momentum=0.9), dict(momentum=0.9, nesterov=True),
                dict(momentum=0.5, dampening=0.3)]


@pytest.mark.parametrize("kw", SGD_VARIANTS, ids=["plain", "momentum", "nesterov", "dampening"])
def test_sgd_equals_closed_form_on_fixed_gradients(kw):
    p0 = _params0()
    auto = HD(SGD(0.05, **kw), p0, hypergrad_lr=2e-3)
    ref = SGDHD(p0, lr=0.05, hypergrad_lr=2e-3, **kw)
    for g in _gradient_sequence(15):
        auto.step(g)
        ref.step(g)
        assert _max_diff(auto.params, ref.params) <= TOL
        assert abs(auto.hparams["lr"] - ref.lr) <= TOL
        assert abs(auto.hypergrad["lr"] - ref.hypergrad) <= TOL * max(1.0, abs(ref.hypergrad))
    assert abs(ref.lr - 0.05) > 1e-3  # the learning rate did move


def test_adam_equals_closed_form_on_fixed_gradients():
    p0 = _params0()
    auto = HD(Adam(0.02, betas=(0.8, 0.99), eps=1e-6), p0, hypergrad_lr=1e-4)
    ref = AdamHD(p0, lr=0.02, betas=(0.8, 0.99), eps=1e-6, hypergrad_lr=1e-4)
    for g in _gradient_sequence(15):
        auto.step(g)
        ref.step(g)
        assert _max_diff(auto.params, ref.params) <= TOL
        assert abs(auto.hparams["lr"] - ref.lr) <= TOL
    assert abs(ref.lr - 0.02) > 1e-4


# -- a small model with gradients from autodiff.grad ---------------------------------

def _data(seed=0, n=60, d=5, c=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = np.eye(c)[rng.integers(0, c, n)]
    return x, y


def _logreg(params, x, y):
    z = x @ params["w"] + params["b"]
    return np.mean(logsumexp(z, axis=1) - np.sum(z * y, axis=1))


@pytest.mark.parametrize("make", [
    lambda p: (HD(SGD(0.3, momentum=0.9, nesterov=True), p, hypergrad_lr=1e-2),
               SGDHD(p, lr=0.3, momentum=0.9, nesterov=True, hypergrad_lr=1e-2)),
    lambda p: (HD(SGD(0.3, momentum=0.5), p, hypergrad_lr=1e-2),
               SGDHD(p, lr=0.3, momentum=0.5, hypergrad_lr=1e-2)),
    lambda p: (HD(Adam(0.01), p, hypergrad_lr=1e-5), AdamHD(p, lr=0.01, hypergrad_lr=1e-5)),
], ids=["nesterov", "momentum", "adam"])
def test_equals_closed_form_on_a_model(make):
    x, y = _data()
    p0 = {"w": np.zeros((5, 3)), "b": np.zeros(3)}
    auto, ref = make(p0)
    for t in range(30):
        xb, yb = x[(2 * t) % 50:(2 * t) % 50 + 10], y[(2 * t) % 50:(2 * t) % 50 + 10]
        auto.step(grad(_logreg)(auto.params, xb, yb))
        ref.step(grad(_logreg)(ref.params, xb, yb))
    assert _max_diff(auto.params, ref.params) <= TOL
    assert abs(auto.hparams["lr"] - ref.lr) <= TOL
    assert abs(ref.lr - ref.param_groups[0]["lr"]) == 0


def test_weight_decay_in_the_loss_equals_closed_form_weight_decay():
    """The closed form's h uses the L2-regularized gradient; HD's uses the gradient
    it is given, so the L2 term belongs in the loss (or in the gradients)."""
    wd = 0.1
    p0 = _params0()
    auto = HD(SGD(0.05, momentum=0.9), p0, hypergrad_lr=2e-3)
    ref = SGDHD(p0, lr=0.05, momentum=0.9, weight_decay=wd, hypergrad_lr=2e-3)
    for g in _gradient_sequence(12):
        auto.step({k: g[k] + wd * auto.params[k] for k in g})
        ref.step(g)
    assert _max_diff(auto.params, ref.params) <= TOL
    assert abs(auto.hparams["lr"] - ref.lr) <= TOL


# -- any optimizer, any hyperparameters ------------------------------------------------

def _fd_hypergrad(opt, names, values, g_prev, state_prev, params_prev, g_now, eps=1e-6):
    """g_now · ∂update(g_prev, state_prev, params_prev; α)/∂α_name by central differences."""
    out = {}
    for name in names:
        def p_at(v):
            h = dict(values)
            h[name] = v
            return opt.update(g_prev, state_prev, params_prev, h)[0]
        hi, lo = p_at(values[name] + eps), p_at(values[name] - eps)
        out[name] = sum(float(np.vdot(g_now[k], (hi[k] - lo[k]) / (2 * eps))) for k in g_now)
    return out


@pytest.mark.parametrize("opt,names", [
    (RAdam(0.01, betas=(0.9, 0.99)), ("lr", "betas")),
    (AdamW(0.01, weight_decay=0.05), ("lr", "beta1", "weight_decay")),
    (RMSprop(0.01, momentum=0.5), ("lr", "momentum", "alpha")),
    (Adagrad(0.1), ("lr", "eps")),
], ids=["radam", "adamw", "rmsprop", "adagrad"])
def test_hypergradient_of_any_optimizer_matches_finite_differences(opt, names):
    p0 = _params0()
    hd = HD(opt, p0, hypergrad_lr=0.0, wrt=names)   # β = 0: α stays put
    assert hd.K == len(hd.hparams)
    gs = _gradient_sequence(8)
    for t, g in enumerate(gs[:-1]):
        prev_state, prev_params, prev_values = hd.state.opt_states[0], hd.params, hd.hparams
        hd.step(g)
        fd = _fd_hypergrad(opt, prev_values.keys(), prev_values, g, prev_state, prev_params,
                           gs[t + 1])
        hd_next = HD(opt, p0, hypergrad_lr=0.0, wrt=names)
        hd_next.load_state_dict(hd.state_dict())
        hd_next.step(gs[t + 1])
        for name, v in fd.items():
            assert math.isclose(hd_next.hypergrad[name], v, rel_tol=1e-5, abs_tol=1e-8), \
                (t, name, hd_next.hypergrad[name], v)


@pytest.mark.parametrize("opt,beta", [(RAdam(1e-2), 1e-6), (AdamW(1e-2), 1e-6),
                                      (RMSprop(1e-3), 1e-7)], ids=["radam", "adamw", "rmsprop"])
def test_radam_adamw_rmsprop_hd_train(opt, beta):
    x, y = _data(1)
    p = {"w": np.zeros((5, 3)), "b": np.zeros(3)}
    hd = HD(opt, p, hypergrad_lr=beta)
    first = _logreg(p, x, y)
    for _ in range(60):
        hd.step(grad(_logreg)(hd.params, x, y))
    assert _logreg(hd.params, x, y) < first
    assert hd.hparams["lr"] != opt.defaults["lr"]
    assert describe(hd) == f"{opt.name} / sgd"


def test_unconstrained_space_is_the_chain_rule_of_the_raw_one():
    """With β = 0 both runs coincide; h in the unconstrained space is h_raw · dα/du."""
    p0 = _params0()
    raw = HD(Adam(0.02, betas=(0.8, 0.99)), p0, hypergrad_lr=0.0, wrt=("lr", "betas"))
    unc = HD(Adam(0.02, betas=(0.8, 0.99)), p0, hypergrad_lr=0.0, wrt=("lr", "betas"),
             space="unconstrained")
    for g in _gradient_sequence(5):
        raw.step(g)
        unc.step(g)
    assert _max_diff(raw.params, unc.params) <= TOL
    hr, hu = raw.hypergrad, unc.hypergrad
    assert math.isclose(hu["lr"], hr["lr"] * 0.02, rel_tol=1e-9)              # α = exp u
    assert math.isclose(hu["beta1"], hr["beta1"] * 0.8 * 0.2, rel_tol=1e-9)   # β = sigmoid u
    assert math.isclose(hu["beta2"], hr["beta2"] * 0.99 * 0.01, rel_tol=1e-9)


def test_unconstrained_keeps_the_lr_positive_where_raw_warns():
    p0 = _params0()
    gs = _gradient_sequence(6)
    gs = [gs[0], {k: -v for k, v in gs[0].items()}] * 3      # alternating: h > 0, α falls
    raw = HD(SGD(0.01), p0, hypergrad_lr=1.0)
    with pytest.warns(HyperparameterWarning, match="'lr'.*space='unconstrained'"):
        for g in gs:
            raw.step(g)
    assert raw.hparams["lr"] < 0
    assert issubclass(HyperparameterWarning, LearningRateWarning)
    unc = HD(SGD(0.01), p0, hypergrad_lr=1.0, space="unconstrained")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for g in gs:
            unc.step(g)
    assert 0 < unc.hparams["lr"] < 0.01


def test_on_invalid_raise_leaves_the_optimizer_unchanged():
    p0 = _params0()
    g = _gradient_sequence(1)[0]
    hd = HD(SGD(0.01), p0, hypergrad_lr=1.0, on_invalid="raise")
    hd.step(g)
    before = hd.state_dict()
    with pytest.raises(ValueError, match="'lr'"):
        hd.step({k: -v for k, v in g.items()})
    after = hd.state_dict()
    assert after["step"] == before["step"] == 1
    assert _max_diff(after["params"], before["params"]) == 0
    assert hd.hparams["lr"] == 0.01


def test_per_parameter_equals_independent_runs_on_each_leaf():
    """A separable loss: per-leaf learning rates evolve as two separate SGD-HD runs."""
    p0 = _params0()
    gs = _gradient_sequence(12)
    hd = HD(SGD(0.05, momentum=0.5), p0, hypergrad_lr=2e-3, per_parameter=True)
    assert hd.K == 2
    refs = {k: SGDHD(p0[k], lr=0.05, momentum=0.5, hypergrad_lr=2e-3) for k in p0}
    for g in gs:
        hd.step(g)
        for k in p0:
            refs[k].step(g[k])
    for k in p0:
        assert np.max(np.abs(hd.params[k] - refs[k].params)) <= TOL
        assert abs(hd.hparams["lr"][k] - refs[k].lr) <= TOL
    assert hd.hparams["lr"]["w"] != hd.hparams["lr"]["b"]


def test_hypergrad_lr_per_name():
    p0 = _params0()
    hd = HD(SGD(0.05, momentum=0.5), p0, hypergrad_lr={"lr": 1e-3, "momentum": 0.0},
            wrt=("lr", "momentum"))
    for g in _gradient_sequence(5):
        hd.step(g)
    assert hd.hparams["momentum"] == 0.5 and hd.hparams["lr"] != 0.05
    assert hd.hypergrad["momentum"] != 0.0


def test_float32_stays_float32():
    p0 = {k: v.astype(np.float32) for k, v in _params0().items()}
    for space in ("raw", "unconstrained"):
        hd = HD(Adam(0.01), p0, hypergrad_lr=1e-6, wrt=("lr", "betas"), space=space)
        for g in _gradient_sequence(3):
            hd.step({k: v.astype(np.float32) for k, v in g.items()})
        assert all(v.dtype == np.float32 for v in hd.params.values())
        assert all(t.dtype == np.float32 for t in hd.state.tangents)


def test_state_dict_round_trip_pickles_and_resumes_exactly():
    p0 = _params0()
    gs = _gradient_sequence(10)
    a = HD(RAdam(0.01), p0, hypergrad_lr=1e-5, wrt=("lr", "beta1"))
    for g in gs[:5]:
        a.step(g)
    saved = pickle.loads(pickle.dumps(a.state_dict()))
    for g in gs[5:]:
        a.step(g)
    b = HD(RAdam(0.01), hypergrad_lr=1e-5, wrt=("lr", "beta1")).init(p0)
    b.load_state_dict(saved)
    for g in gs[5:]:
        b.step(g)
    assert _max_diff(a.params, b.params) == 0 and a.hparams == b.hparams
    c = HD(RAdam(0.01), p0, hypergrad_lr=1e-5, wrt=("lr",))
    with pytest.raises(ValueError, match="state dict"):
        c.load_state_dict(saved)


def test_pure_functions_and_lazy_init():
    p0 = _params0()
    spec, state = hd_init(SGD(0.05), p0, hypergrad_lr=2e-3)
    hd = HD(SGD(0.05), hypergrad_lr=2e-3)
    with pytest.raises(RuntimeError, match="init"):
        hd.step(_gradient_sequence(1)[0])
    hd.init(p0)
    for g in _gradient_sequence(4):
        state = tower_update(spec, g, state)
        hd.step(g)
    assert _max_diff(state.params, hd.params) == 0


@pytest.mark.parametrize("kwargs,match", [
    (dict(hypergrad_lr=-1.0), "hypergrad_lr"),
    (dict(hypergrad_lr=float("nan")), "hypergrad_lr"),
    (dict(hypergrad_lr={"lr": -1e-3}), "hypergrad_lr"),
    (dict(hypergrad_lr={"momentum": 1e-3}), "momentum"),
    (dict(hypergrad_lr=1e-3, wrt=("lr", "gamma")), "gamma"),
    (dict(hypergrad_lr=1e-3, space="log"), "space"),
    (dict(hypergrad_lr=1e-3, on_invalid="maybe"), "on_invalid"),
    (dict(hypergrad_lr=1e-3, wrt=("momentum",), space="unconstrained"), "momentum"),
])
def test_bad_arguments_raise_value_error_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HD(SGD(0.1), _params0(), **kwargs)


def test_bad_optimizer_values_raise_value_error_naming_them():
    with pytest.raises(ValueError, match="lr"):
        HD(SGD(-0.1), hypergrad_lr=1e-3)
    with pytest.raises(ValueError, match="momentum"):
        HD(SGD(0.1, momentum=float("nan")), hypergrad_lr=1e-3)
    opt = Adam(0.1)
    opt.defaults["beta1"] = 1.5          # changed after construction: validated again
    with pytest.raises(ValueError, match="beta1"):
        HD(opt, _params0(), hypergrad_lr=1e-3, wrt=("betas",))
    with pytest.raises(ValueError, match="hyper-optimizer"):
        HD(Adam(0.1, optimizer=SGD(1e-3)), hypergrad_lr=1e-3)
    with pytest.raises(TypeError):
        HD(SGD(0.1))                     # hypergrad_lr has no default
