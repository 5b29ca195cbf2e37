"""Online hypergradient descent (hyperopt.hd): SGDHD, SGDNHD, AdamHD.

The reference implementations below are written out from the paper's
equations (Baydin et al., ICLR 2018) as plain numpy loops over one flat
parameter vector per group, independently of hyperopt.hd's pytree code.
Everything is float64.
"""
import inspect
import pickle
import re
import warnings

import numpy as np
import pytest

from autodiff import grad
from autodiff.tree import tree_map
from hyperopt.hd import (AdamHD, LearningRateWarning, SGDHD, SGDNHD, adamhd_update,
                         sgdhd_update)

# ---------------------------------------------------------------------------
# a smooth test objective on a flat vector of 10 numbers, split into pytrees
# ---------------------------------------------------------------------------

_rng = np.random.default_rng(42)
_M = _rng.standard_normal((10, 10))
A10 = _M @ _M.T / 10 + 0.5 * np.eye(10)
B10 = _rng.standard_normal(10)
THETA0 = _rng.standard_normal(10)


def flat_grad(x):
    """∇ of ½xᵀAx + bᵀx + 0.1 Σ cos x, written by hand."""
    return A10 @ x + B10 - 0.1 * np.sin(x)


# group 0 holds x[0:7] and group 1 x[7:10], each as two leaves of different shapes
def to_tree0(x):                       # 7 numbers: a (2, 3) matrix and a (1,) vector
    return {"w": x[:6].reshape(2, 3), "b": x[6:7].copy()}


def from_tree0(t):
    return np.concatenate([t["w"].ravel(), t["b"]])


def to_tree1(x):                       # 3 numbers: a (3,) vector and a () scalar array
    return [x[:2].copy(), np.array(x[2])]


def from_tree1(t):
    return np.concatenate([t[0].ravel(), np.ravel(t[1])])


SLICES = [slice(0, 7), slice(7, 10)]


def tree_grad_single(tree):
    x = np.concatenate([from_tree0(tree), np.zeros(3)])
    return to_tree0(flat_grad(x)[:7])


def tree_grads_groups(trees):
    x = np.concatenate([from_tree0(trees[0]), from_tree1(trees[1])])
    g = flat_grad(x)
    return [to_tree0(g[SLICES[0]]), to_tree1(g[SLICES[1]])]


# ---------------------------------------------------------------------------
# the paper's algorithms, one flat vector, per-group learning rates
# ---------------------------------------------------------------------------

def reference_sgd(x0, grad_fn, slices, alphas, betas, steps, mu=0.0, damp=0.0, wd=0.0,
                  nesterov=False):
    """SGD-HD / momentum / SGDN-HD.  Returns the θ and α trajectories."""
    x = x0.copy()
    alphas = list(alphas)
    dalpha_u = np.zeros_like(x)          # ∇_α u_{t-1}; zero before the first step
    v = None
    xs, lrs = [], []
    for t in range(1, steps + 1):
        g = grad_fn(x) + wd * x
        # h_t = ∇f(θ_{t-1}) · ∇_α u_{t-1}, one number for the whole group
        for k, s in enumerate(slices):
            h = np.dot(g[s], dalpha_u[s])
            alphas[k] = alphas[k] - betas[k] * h
        if mu == 0:
            direction = g
        else:
            v = g.copy() if v is None else mu * v + (1 - damp) * g
            direction = g + mu * v if nesterov else v
        alpha_vec = np.concatenate([np.full(s.stop - s.start, a) for s, a in zip(slices, alphas)])
        u = -alpha_vec * direction       # u_t = -α_t d_t
        dalpha_u = -direction            # ∇_α u_t
        x = x + u
        xs.append(x.copy())
        lrs.append(list(alphas))
    return np.array(xs), np.array(lrs)


def reference_adam(x0, grad_fn, slices, alphas, betas, steps, b1=0.9, b2=0.999, eps=1e-8,
                   wd=0.0):
    """Adam-HD (Algorithm 3 of the paper)."""
    x = x0.copy()
    alphas = list(alphas)
    m, v = np.zeros_like(x), np.zeros_like(x)
    dalpha_u = np.zeros_like(x)
    xs, lrs = [], []
    for t in range(1, steps + 1):
        g = grad_fn(x) + wd * x
        for k, s in enumerate(slices):
            h = np.dot(g[s], dalpha_u[s])
            alphas[k] = alphas[k] - betas[k] * h
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        alpha_vec = np.concatenate([np.full(s.stop - s.start, a) for s, a in zip(slices, alphas)])
        u = -alpha_vec * m_hat / (np.sqrt(v_hat) + eps)
        dalpha_u = -m_hat / (np.sqrt(v_hat) + eps)
        x = x + u
        xs.append(x.copy())
        lrs.append(list(alphas))
    return np.array(xs), np.array(lrs)


STEPS = 15
TOL = dict(rtol=1e-12, atol=1e-12)

SGD_CASES = {
    "sgd": dict(cls=SGDHD, kw={}, ref={}),
    "momentum": dict(cls=SGDHD, kw=dict(momentum=0.8), ref=dict(mu=0.8)),
    "momentum-dampening-wd": dict(cls=SGDHD,
                                  kw=dict(momentum=0.7, dampening=0.3, weight_decay=0.05),
                                  ref=dict(mu=0.7, damp=0.3, wd=0.05)),
    "nesterov": dict(cls=SGDNHD, kw=dict(momentum=0.8), ref=dict(mu=0.8, nesterov=True)),
}


@pytest.mark.parametrize("case", list(SGD_CASES))
def test_sgd_family_matches_paper_equations_single_tree(case):
    c = SGD_CASES[case]
    x0 = THETA0[:7]
    grad_fn = lambda x: flat_grad(np.concatenate([x, np.zeros(3)]))[:7]
    opt = c["cls"](to_tree0(x0), lr=0.02, hypergrad_lr=0.01, **c["kw"])
    xs, lrs = reference_sgd(x0, grad_fn, [slice(0, 7)], [0.02], [0.01], STEPS, **c["ref"])
    for t in range(STEPS):
        new = opt.step(tree_grad_single(opt.params))
        np.testing.assert_allclose(from_tree0(new), xs[t], **TOL)
        np.testing.assert_allclose(opt.lr, lrs[t][0], **TOL)
    assert abs(lrs[-1][0] - 0.02) > 1e-3         # the learning rate really moved


@pytest.mark.parametrize("case", list(SGD_CASES))
def test_sgd_family_matches_paper_equations_two_groups(case):
    c = SGD_CASES[case]
    groups = [{"params": to_tree0(THETA0[:7]), "lr": 0.02},
              {"params": to_tree1(THETA0[7:]), "lr": 0.05, "hypergrad_lr": 0.003}]
    opt = c["cls"](groups, lr=0.5, hypergrad_lr=0.01, **c["kw"])
    xs, lrs = reference_sgd(THETA0, flat_grad, SLICES, [0.02, 0.05], [0.01, 0.003], STEPS,
                            **c["ref"])
    for t in range(STEPS):
        new = opt.step(tree_grads_groups(opt.params))
        np.testing.assert_allclose(np.concatenate([from_tree0(new[0]), from_tree1(new[1])]),
                                   xs[t], **TOL)
        np.testing.assert_allclose([g["lr"] for g in opt.param_groups], lrs[t], **TOL)
    assert opt.lr == opt.param_groups[0]["lr"]
    assert isinstance(opt.params[1], list) and opt.params[1][1].shape == ()


def test_adam_matches_paper_equations_two_groups():
    groups = [{"params": to_tree0(THETA0[:7]), "lr": 0.01},
              {"params": to_tree1(THETA0[7:]), "lr": 0.03, "hypergrad_lr": 3e-4,
               "betas": (0.8, 0.99)}]
    opt = AdamHD(groups, hypergrad_lr=1e-3)
    b1 = np.array([0.9] * 7 + [0.8] * 3)          # per-coordinate betas of the two groups
    b2 = np.array([0.999] * 7 + [0.99] * 3)
    xs, lrs = reference_adam(THETA0, flat_grad, SLICES, [0.01, 0.03], [1e-3, 3e-4], STEPS,
                             b1=b1, b2=b2)
    for t in range(STEPS):
        new = opt.step(tree_grads_groups(opt.params))
        np.testing.assert_allclose(np.concatenate([from_tree0(new[0]), from_tree1(new[1])]),
                                   xs[t], **TOL)
        np.testing.assert_allclose([g["lr"] for g in opt.param_groups], lrs[t], **TOL)
    assert abs(lrs[-1][0] - 0.01) > 1e-4 and abs(lrs[-1][1] - 0.03) > 1e-5


def test_adam_matches_paper_equations_single_tree():
    x0 = THETA0[:7]
    grad_fn = lambda x: flat_grad(np.concatenate([x, np.zeros(3)]))[:7]
    opt = AdamHD(to_tree0(x0), lr=0.01, hypergrad_lr=1e-3, weight_decay=0.05)
    xs, lrs = reference_adam(x0, grad_fn, [slice(0, 7)], [0.01], [1e-3], STEPS, wd=0.05)
    for t in range(STEPS):
        new = opt.step(tree_grad_single(opt.params))
        np.testing.assert_allclose(from_tree0(new), xs[t], **TOL)
        np.testing.assert_allclose(opt.lr, lrs[t][0], **TOL)
    assert abs(lrs[-1][0] - 0.01) > 1e-4


# ---------------------------------------------------------------------------
# one global learning-rate update per group
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [SGDHD, AdamHD])
def test_lr_update_uses_the_dot_product_summed_over_all_tensors(cls):
    p0 = {"a": np.zeros(2), "b": np.zeros(3)}
    opt = cls(p0, lr=0.1, hypergrad_lr=0.01)
    g1 = {"a": np.array([1.0, 0.0]), "b": np.array([1.0, 1.0, 1.0])}
    opt.step(g1)
    d1 = opt.state[0].direction                     # -∇_α u_1, one tree
    p1 = opt.params
    g2 = {"a": np.array([2.0, 0.0]), "b": np.array([-1.0, -1.0, -1.0])}
    dot_a, dot_b = g2["a"] @ d1["a"], g2["b"] @ d1["b"]
    assert dot_a > 0 > dot_b and not np.isclose(dot_a, -dot_b)
    opt.step(g2)
    expected = 0.1 + 0.01 * (dot_a + dot_b)         # α_2 = α_1 - β h_2, h_2 = -g_2 · d_1
    assert opt.lr == pytest.approx(expected, rel=1e-15)
    for name in ("a", "b"):                         # both tensors moved with the same α_2
        d2 = opt.state[0].direction[name]
        np.testing.assert_allclose(opt.params[name], p1[name] - expected * d2, rtol=1e-15,
                                   atol=1e-15)
    assert opt.hypergrad == pytest.approx(-(dot_a + dot_b), rel=1e-15)


# ---------------------------------------------------------------------------
# lr = 0 start on a convex quadratic
# ---------------------------------------------------------------------------

def _ill_conditioned_quadratic():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    lam = np.array([0.1, 0.3, 4.0])
    a = q @ np.diag(lam) @ q.T
    theta0 = q @ np.array([3.0, 3.0, 0.1])    # little weight on the stiff direction
    return a, theta0, lam


def test_lr_zero_start_rises_then_decays_and_loss_decreases():
    a, theta0, lam = _ill_conditioned_quadratic()
    f = lambda th: 0.5 * th @ a @ th
    opt = SGDHD(theta0, lr=0.0, hypergrad_lr=0.1)
    lrs, losses = [opt.lr], [f(theta0)]
    for _ in range(120):
        opt.step(grad(f)(opt.params))
        lrs.append(opt.lr)
        losses.append(f(opt.params))
    lrs = np.array(lrs)
    assert lrs[1] == 0.0 and lrs[2] > 0              # h_1 = 0; then successive gradients agree
    peak = int(np.argmax(lrs))
    assert 0 < peak < len(lrs) - 1                   # the maximum is in the interior
    assert np.all(np.diff(lrs[1:12]) > 0)            # a rise over several steps ...
    assert lrs[-1] < 0.8 * lrs.max()                 # ... then a decay
    assert lrs.max() > 2 / lam.max() > lrs[-1]       # overshoots the stability limit, settles below
    assert losses[-1] < 1e-4 * losses[0]


# ---------------------------------------------------------------------------
# the closed-form hypergradient against the engine
# ---------------------------------------------------------------------------

def _tree_loss(p):
    w, b = p["w"], p["b"]
    z = np.tanh(w @ np.array([0.3, -0.2, 0.5]) + b)
    return np.sum(z ** 2) + 0.1 * np.sum(w ** 2) + np.sum(np.cos(b))


def _tree_params():
    rng = np.random.default_rng(3)
    return {"w": rng.standard_normal((2, 3)), "b": rng.standard_normal(2)}


def test_sgdhd_hypergradient_is_the_derivative_through_one_sgd_step():
    opt = SGDHD(_tree_params(), lr=0.05, hypergrad_lr=1e-3)
    history = []                                     # (θ_{t-1}, g_t, α_t) per step
    for t in range(8):
        theta_prev = opt.params
        g = grad(_tree_loss)(theta_prev)
        opt.step(g)
        if history:
            th, g_prev, alpha = history[-1]
            # f(θ_{t-1}) as a function of the previous step's α: θ_{t-1} = θ_{t-2} - α g_{t-1}
            dfda = grad(lambda a: _tree_loss(tree_map(lambda p, q: p - a * q, th, g_prev)))(alpha)
            assert abs(dfda) > 1e-6
            np.testing.assert_allclose(opt.hypergrad, dfda, rtol=1e-12, atol=1e-14)
        history.append((theta_prev, g, opt.lr))


@pytest.mark.parametrize("update, cls, kw", [
    (sgdhd_update, SGDHD, dict(momentum=0.9)),
    (sgdhd_update, SGDNHD, dict(momentum=0.9, nesterov=True)),
    (adamhd_update, AdamHD, dict(betas=(0.9, 0.999), eps=1e-8)),
])
def test_hypergradient_is_the_derivative_through_one_step_of_the_pure_update(update, cls, kw):
    """h_{t+1} = d f(θ_t)/d α_t, with θ_t = one step of the pure function run on a Var α."""
    class_kw = {k: v for k, v in kw.items() if k != "nesterov"}
    opt = cls(_tree_params(), lr=0.02, hypergrad_lr=1e-4, **class_kw)
    for t in range(6):
        theta_prev, state_prev = opt.params, opt.state[0]
        g = grad(_tree_loss)(theta_prev)
        opt.step(g)
        alpha_t = opt.lr

        def loss_after_step(a):   # β = 0: the step uses α = a itself
            new_params, _ = update(theta_prev, g, state_prev._replace(lr=a), hypergrad_lr=0.0, **kw)
            return _tree_loss(new_params)

        dfda = grad(loss_after_step)(alpha_t)
        opt.step(grad(_tree_loss)(opt.params))
        np.testing.assert_allclose(opt.hypergrad, dfda, rtol=1e-12, atol=1e-14)
        opt.load_state_dict(opt.state_dict())   # (harmless; exercises the round trip mid-run)


# ---------------------------------------------------------------------------
# state_dict
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda p: SGDNHD(p, lr=0.02, hypergrad_lr=0.01, weight_decay=0.01),
    lambda p: SGDHD(p, lr=0.02, hypergrad_lr=0.01, momentum=0.5, hypergrad_mode="multiplicative"),
    lambda p: AdamHD(p, hypergrad_lr=1e-3, lr_bounds=(0.0, 1.0)),
])
def test_state_dict_round_trip_is_bit_for_bit(make):
    groups = lambda: [{"params": to_tree0(THETA0[:7]), "lr": 0.01},
                      {"params": to_tree1(THETA0[7:]), "lr": 0.03, "hypergrad_lr": 1e-3}]
    opt = make(groups())
    for _ in range(5):
        opt.step(tree_grads_groups(opt.params))
    saved = pickle.loads(pickle.dumps(opt.state_dict()))
    snapshot = opt.state_dict()
    run_a = []
    for _ in range(5):
        p = opt.step(tree_grads_groups(opt.params))
        run_a.append((np.concatenate([from_tree0(p[0]), from_tree1(p[1])]),
                      [g["lr"] for g in opt.param_groups]))
    # the state dict is a copy: later steps did not change it
    np.testing.assert_array_equal(from_tree0(snapshot["param_groups"][0]["params"]),
                                  from_tree0(saved["param_groups"][0]["params"]))
    fresh = make([{"params": to_tree0(np.zeros(7)), "lr": 0.5},
                  {"params": to_tree1(np.ones(3))}])
    fresh.load_state_dict(saved)
    for x_a, lr_a in run_a:
        p = fresh.step(tree_grads_groups(fresh.params))
        np.testing.assert_array_equal(np.concatenate([from_tree0(p[0]), from_tree1(p[1])]), x_a)
        assert [g["lr"] for g in fresh.param_groups] == lr_a


def test_load_state_dict_rejects_other_shapes():
    opt = SGDHD({"w": np.zeros(3)})
    other = SGDHD({"w": np.zeros(4)})
    with pytest.raises(ValueError):
        other.load_state_dict(opt.state_dict())


# ---------------------------------------------------------------------------
# invalid learning rates, the multiplicative mode, clipping, bounds
# ---------------------------------------------------------------------------

def _oscillating(opt, steps):
    """f(θ) = 2‖θ‖² with α = 0.4: θ flips sign every step, so h > 0 and α falls."""
    lrs = []
    for _ in range(steps):
        opt.step(tree_map(lambda p: 4.0 * p, opt.params))
        lrs.append(opt.lr)
    return lrs


def test_negative_lr_warns():
    opt = SGDHD({"x": np.array([1.0, -2.0])}, lr=0.4, hypergrad_lr=1e3)
    with pytest.warns(LearningRateWarning, match="negative") as record:
        lrs = _oscillating(opt, 2)
    assert lrs[-1] < 0
    assert record[0].filename == __file__            # points at the caller of step()


def test_non_finite_lr_warns():
    # a finite hypergradient (-1e308) whose step overflows the lr to inf
    opt = SGDHD([np.ones(2)], lr=0.1, hypergrad_lr=1e3)
    opt.step([np.array([1e154, 0.0])])
    with pytest.warns(LearningRateWarning, match="non-finite"):
        opt.step([np.array([1e154, 0.0])])


def test_negative_lr_raises_and_leaves_the_optimizer_unchanged():
    opt = SGDHD({"x": np.array([1.0, -2.0])}, lr=0.4, hypergrad_lr=1e3, on_invalid="raise")
    _oscillating(opt, 1)
    before = opt.state_dict()
    with pytest.raises(ValueError, match="negative"):
        _oscillating(opt, 1)
    assert opt.lr == 0.4 and opt.state[0].step == 1
    np.testing.assert_array_equal(opt.params["x"], before["param_groups"][0]["params"]["x"])


def test_ignore_and_bounds_suppress_the_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt = SGDHD({"x": np.array([1.0, -2.0])}, lr=0.4, hypergrad_lr=1e3, on_invalid="ignore")
        assert _oscillating(opt, 2)[-1] < 0
        opt = SGDHD({"x": np.array([1.0, -2.0])}, lr=0.4, hypergrad_lr=1e3, lr_bounds=(0.0, 1.0))
        assert _oscillating(opt, 2)[-1] == 0.0


def test_multiplicative_mode_keeps_lr_positive():
    params = {"x": np.array([1.0, -2.0]), "y": np.array([[0.5]])}
    opt = SGDHD(params, lr=0.4, hypergrad_lr=0.9, hypergrad_mode="multiplicative")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lrs = _oscillating(opt, 30)
    assert all(lr > 0 for lr in lrs)
    assert lrs[0] == 0.4
    # g_2 = -0.6 g_1 exactly opposes d_1 = g_1: cos = -1, α_2 = α_1 (1 - 0.9)
    assert lrs[1] == pytest.approx(0.4 * 0.1, rel=1e-12)
    # the additive rule with the same β goes negative on the same problem
    with pytest.warns(LearningRateWarning):
        assert min(_oscillating(SGDHD(params, lr=0.4, hypergrad_lr=0.9), 3)) < 0


def test_multiplicative_rule_uses_global_norms():
    opt = SGDHD({"a": np.zeros(2), "b": np.zeros(1)}, lr=0.2, hypergrad_lr=0.5,
                hypergrad_mode="multiplicative")
    g1 = {"a": np.array([1.0, 2.0]), "b": np.array([-1.0])}
    g2 = {"a": np.array([0.5, -1.0]), "b": np.array([3.0])}
    opt.step(g1)
    opt.step(g2)
    v1 = np.array([1.0, 2.0, -1.0])
    v2 = np.array([0.5, -1.0, 3.0])
    h = -v2 @ v1
    expected = 0.2 * (1 - 0.5 * h / (np.linalg.norm(v2) * np.linalg.norm(v1) + 1e-16))
    assert opt.lr == pytest.approx(expected, rel=1e-14)


def test_hypergrad_clip_limits_each_lr_change():
    opt = SGDHD({"x": np.array([1.0, -2.0])}, lr=0.4, hypergrad_lr=1e-3, hypergrad_clip=2.0)
    lrs = [0.4] + _oscillating(opt, 10)
    steps = np.abs(np.diff(lrs))
    assert np.all(steps <= 1e-3 * 2.0 * (1 + 1e-12))
    assert steps[1] == pytest.approx(2e-3, rel=1e-12)       # h_2 = 0.6·16·5 = 48 was clipped to 2
    # multiplicative: each factor within [1 - βc, 1 + βc]
    opt = SGDHD({"x": np.array([1.0, -2.0])}, lr=0.4, hypergrad_lr=0.5, hypergrad_clip=0.2,
                hypergrad_mode="multiplicative")
    lrs = np.array([0.4] + _oscillating(opt, 10))
    ratios = lrs[1:] / lrs[:-1]
    assert np.all(ratios >= 1 - 0.5 * 0.2 - 1e-12) and np.all(ratios <= 1 + 0.5 * 0.2 + 1e-12)
    assert ratios[1] == pytest.approx(0.9, rel=1e-12)


def test_lr_bounds_are_respected():
    a, theta0, _ = _ill_conditioned_quadratic()
    f = lambda th: 0.5 * th @ a @ th
    opt = SGDHD(theta0, lr=0.0, hypergrad_lr=0.1, lr_bounds=(0.01, 0.3))
    lrs = []
    for _ in range(40):
        opt.step(grad(f)(opt.params))
        lrs.append(opt.lr)
    assert lrs[0] == 0.01                                    # clamped up from 0 at once
    assert all(0.01 <= lr <= 0.3 for lr in lrs)
    assert max(lrs) == 0.3                                   # unbounded, it reaches 0.6


# ---------------------------------------------------------------------------
# the API around the equations
# ---------------------------------------------------------------------------

def test_param_group_lr_is_live_and_writable():
    opt = SGDHD([{"params": [np.ones(2)], "lr": 0.1}, {"params": (np.ones(1),)}], lr=0.2,
                hypergrad_lr=0.0)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.2] and opt.lr == 0.1
    opt.param_groups[1]["lr"] = 0.5
    new = opt.step([[np.ones(2)], (np.ones(1),)])
    np.testing.assert_allclose(new[0][0], 0.9)
    np.testing.assert_allclose(new[1][0], 0.5)
    assert isinstance(new[1], tuple)


def test_float32_stays_float32_and_structure_is_checked():
    opt = AdamHD({"w": np.ones((2, 2), np.float32)}, lr=0.1, hypergrad_lr=1e-3)
    for _ in range(3):
        p = opt.step({"w": np.full((2, 2), 0.5, np.float32)})
    assert p["w"].dtype == np.float32
    with pytest.raises(ValueError):
        opt.step({"v": np.ones((2, 2))})
    with pytest.raises(ValueError):
        opt.step({"w": np.ones(4)})


def test_default_hypergradient_learning_rates():
    sig = lambda c: inspect.signature(c).parameters
    assert sig(SGDHD)["hypergrad_lr"].default == 1e-3
    assert sig(SGDNHD)["hypergrad_lr"].default == 1e-3
    assert sig(AdamHD)["hypergrad_lr"].default == 1e-8
    p = [np.zeros(2)]
    assert SGDHD(p).param_groups[0]["hypergrad_lr"] == 1e-3
    assert SGDNHD(p).param_groups[0]["hypergrad_lr"] == 1e-3
    assert SGDNHD(p).param_groups[0]["nesterov"] is True
    assert AdamHD(p).param_groups[0]["hypergrad_lr"] == 1e-8
    assert SGDHD(p, lr=0).lr == 0.0                          # lr = 0 is allowed


NAN = float("nan")
BAD_INPUTS = [
    (SGDHD, dict(lr=-0.1), "lr"),
    (SGDHD, dict(lr=NAN), "lr"),
    (SGDHD, dict(lr=float("inf")), "lr"),
    (AdamHD, dict(lr=-1e-3), "lr"),
    (SGDHD, dict(hypergrad_lr=-1e-3), "hypergrad_lr"),
    (SGDHD, dict(hypergrad_lr=NAN), "hypergrad_lr"),
    (AdamHD, dict(hypergrad_lr=-1e-8), "hypergrad_lr"),
    (SGDHD, dict(hypergrad_lr=1.0, hypergrad_mode="multiplicative"), "hypergrad_lr"),
    (SGDHD, dict(momentum=-0.5), "momentum"),
    (SGDHD, dict(momentum=NAN), "momentum"),
    (SGDHD, dict(dampening=1.5), "dampening"),
    (SGDHD, dict(weight_decay=-1.0), "weight_decay"),
    (AdamHD, dict(weight_decay=NAN), "weight_decay"),
    (AdamHD, dict(eps=-1e-8), "eps"),
    (AdamHD, dict(eps=NAN), "eps"),
    (AdamHD, dict(betas=(1.0, 0.999)), "betas"),
    (AdamHD, dict(betas=(0.9, -0.1)), "betas"),
    (AdamHD, dict(betas=(NAN, 0.999)), "betas"),
    (AdamHD, dict(betas=(0.9,)), "betas"),
    (SGDHD, dict(hypergrad_eps=-1.0), "hypergrad_eps"),
    (SGDHD, dict(hypergrad_clip=0.0), "hypergrad_clip"),
    (SGDHD, dict(hypergrad_clip=NAN), "hypergrad_clip"),
    (SGDHD, dict(lr_bounds=(0.5, 0.1)), "lr_bounds"),
    (SGDHD, dict(lr_bounds=(-1.0, 1.0)), "lr_bounds"),
    (SGDHD, dict(lr_bounds=(NAN, 1.0)), "lr_bounds"),
    (SGDHD, dict(hypergrad_mode="exponential"), "hypergrad_mode"),
    (SGDHD, dict(on_invalid="panic"), "on_invalid"),
    (SGDNHD, dict(momentum=0.0), "momentum"),
    (SGDHD, dict(lr=0.0, hypergrad_mode="multiplicative"), "lr"),
]


@pytest.mark.parametrize("cls, kw, name", BAD_INPUTS,
                         ids=[f"{c.__name__}-{n}-{i}" for i, (c, _, n) in enumerate(BAD_INPUTS)])
def test_bad_input_raises_value_error_naming_the_argument(cls, kw, name):
    pattern = rf"(invalid {re.escape(name)}\b|\b{re.escape(name)}\b)"
    with pytest.raises(ValueError, match=pattern) as info:
        cls([np.zeros(2)], **kw)
    if name == "lr":          # "lr" must not be matched only through "hypergrad_lr"
        assert re.search(r"(?<![\w])lr\b", str(info.value))


def test_bad_input_in_a_param_group():
    with pytest.raises(ValueError, match=r"\blr must be >= 0\b"):
        SGDHD([{"params": [np.zeros(2)]}, {"params": [np.zeros(1)], "lr": -1.0}])
    with pytest.raises(ValueError, match="unknown"):
        SGDHD([{"params": [np.zeros(2)], "learning_rate": 0.1}])


def test_nan_gradient_stops_hd_with_a_clear_error():
    import numpy as np
    from hyperopt.hd import AdamHD, SGDHD
    for opt in (SGDHD({"w": np.ones(3)}, lr=0.1), AdamHD({"w": np.ones(3)}, lr=0.1)):
        opt.step({"w": np.ones(3)})
        lr = opt.lr
        with pytest.raises(FloatingPointError, match="NaN or inf"):
            opt.step({"w": np.array([1.0, np.nan, 1.0])})
        assert opt.lr == lr and np.isfinite(opt.lr)
