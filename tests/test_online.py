"""RTHO and MARTHE: the limits mu=0 (HD with the validation gradient) and mu=1
(RTHO), checked against hand-written recursions; tangents through optimizer
state checked against the whole-run forward hypergradient."""
import numpy as np
import pytest

from hyperopt.data import digits, synthetic_regression
from hyperopt.hypergrad import HypergradientError, Setup, hypergradient
from hyperopt.models import MLP
from hyperopt.online import MARTHE, RTHO, Online
from hyperopt.optim import SGD, Adam


class LeastSquares:
    """mean((x w - y)^2): gradient and Hessian in closed form for the references."""

    def init(self, seed=0, scale=1.0, dtype=np.float64):
        return {"w": scale * np.random.default_rng(seed).standard_normal(8).astype(dtype) * 0.1}

    def loss(self, params, x, y, label_smoothing=0.0):
        return np.mean((x @ params["w"] - y) ** 2)

    def accuracy(self, params, x, y):
        return 0.0


@pytest.fixture(scope="module")
def reg_data():
    d = synthetic_regression(n=300, n_features=8, noise=0.5, seed=1)
    scale = np.std(d.train.y)   # keep the targets O(1)
    from hyperopt.data import Dataset, Split
    f = lambda s: Dataset(s.x, s.y / scale)
    return Split(f(d.train), f(d.val), f(d.test))


@pytest.fixture(scope="module")
def digit_data():
    return digits(seed=0)


def ls_setup(data, **kw):
    return Setup(LeastSquares(), data, SGD(lr=0.02), steps=kw.pop("steps", 40), batch_size=16, **kw)


def _grad_ls(w, x, y):
    return 2.0 / len(x) * x.T @ (x @ w - y)


def test_mu_zero_is_hd_with_the_validation_gradient(reg_data):
    setup = ls_setup(reg_data)
    beta, lr0 = 0.05, 0.02
    res = Online(setup, {"lr": lr0}, mu=0.0, hypergrad_lr=beta, space="raw").run()
    # reference: lr_t = lr_{t-1} - beta * grad E_val(w_t) . (-g_t)
    w, lr = setup.init(setup.resolve({}))["w"].copy(), lr0
    xv, yv = reg_data.val
    lrs = []
    for t in range(setup.steps):
        x, y = setup.batch(t)
        g = _grad_ls(w, x, y)
        w = w - lr * g
        lr = lr - beta * (_grad_ls(w, xv, yv) @ -g)
        lrs.append(lr)
    np.testing.assert_allclose([r["lr"] for r in res.history], lrs, rtol=1e-12)
    assert len(set(lrs)) > 10   # the lr really moved


def test_mu_one_is_rtho(reg_data):
    setup = ls_setup(reg_data)
    beta, lr0 = 0.05, 0.02
    rtho = RTHO(setup, {"lr": lr0}, hypergrad_lr=beta, space="raw").run()
    marthe = MARTHE(setup, {"lr": lr0}, mu=1.0, hypergrad_lr=beta, space="raw").run()
    # reference: Z_t = (I - lr H_t) Z_{t-1} - g_t;  lr_t = lr_{t-1} - beta grad E_val(w_t) . Z_t
    w, lr = setup.init(setup.resolve({}))["w"].copy(), lr0
    Z = np.zeros_like(w)
    xv, yv = reg_data.val
    lrs = []
    for t in range(setup.steps):
        x, y = setup.batch(t)
        g = _grad_ls(w, x, y)
        H = 2.0 / len(x) * x.T @ x
        Z = (np.eye(len(w)) - lr * H) @ Z - g
        w = w - lr * g
        lr = lr - beta * (_grad_ls(w, xv, yv) @ Z)
        lrs.append(lr)
    np.testing.assert_allclose([r["lr"] for r in rtho.history], lrs, rtol=1e-11)
    np.testing.assert_allclose([r["lr"] for r in marthe.history], lrs, rtol=1e-11)
    # and 0 < mu < 1 is neither
    mid = MARTHE(setup, {"lr": lr0}, mu=0.5, hypergrad_lr=beta, space="raw").run()
    assert abs(mid.history[-1]["lr"] - lrs[-1]) > 1e-9


def test_rtho_delta_updates_every_delta_steps(reg_data):
    setup = ls_setup(reg_data, steps=12)
    res = RTHO(setup, {"lr": 0.02}, hypergrad_lr=0.05, delta=4, space="raw").run()
    lrs = [r["lr"] for r in res.history]
    changes = [i for i in range(1, len(lrs)) if lrs[i] != lrs[i - 1]]
    assert changes == [3, 7, 11]   # row i holds the lr after step i + 1: updates at 4, 8, 12
    assert lrs[:3] == [0.02] * 3


@pytest.mark.parametrize("opt,h", [(SGD(lr=0.05, momentum=0.7), {"lr": 0.05, "momentum": 0.7}),
                                   (Adam(lr=0.01), {"lr": 0.01, "beta1": 0.9})],
                         ids=["sgd-momentum", "adam"])
def test_tangents_flow_through_optimizer_state(digit_data, opt, h):
    """RTHO with beta = 0 never moves the hyperparameters, so its last Z_T is the
    whole run's tangent: <grad E_val, Z_T> must equal the forward hypergradient."""
    setup = Setup(MLP((64, 12, 10)), digit_data, opt, steps=15, batch_size=32)
    res = RTHO(setup, h, wrt=list(h), hypergrad_lr=0.0).run()
    hg = hypergradient(setup, h)
    last = res.history[-1]
    for j, k in enumerate(h):
        np.testing.assert_allclose(last[f"h{j}"], hg.grads[k], rtol=1e-9)


def test_adaptive_mu_stays_in_range_and_moves(digit_data):
    setup = Setup(MLP((64, 12, 10)), digit_data, SGD(lr=0.05), steps=40, batch_size=32)
    on = MARTHE(setup, {"lr": 0.05}, mu="adaptive", hypergrad_lr=1e-2)
    res = on.run()
    mus = [r["mu"] for r in res.history]
    assert all(0.0 <= m <= 1.0 for m in mus)
    assert len(set(mus)) > 5


def test_adaptive_beta_follows_hypergradient_products(reg_data):
    setup = ls_setup(reg_data, steps=10)
    res = MARTHE(setup, {"lr": 0.02}, mu=0.5, hypergrad_lr=0.05, alpha=0.1, space="raw").run()
    h = [r["h0"] for r in res.history]
    beta = 0.05
    for t in range(1, len(h)):
        beta = max(beta + 0.1 * h[t] * h[t - 1], 0.0)
        assert res.history[t]["beta"] == pytest.approx(beta, rel=1e-12)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow is the point
def test_guards_floor_log_space_and_a_clear_error(reg_data):
    setup = ls_setup(reg_data, steps=30)
    # raw coordinates: a big step drives the lr down to the floor, never below
    nat = Online(setup, {"lr": 0.6}, mu=0.0, hypergrad_lr=0.05, space="raw", floor=1e-3).run()
    assert min(r["lr"] for r in nat.history) == 1e-3
    # log coordinates with clipped hypergradients: from the edge of stability with a large
    # hyper-lr, the lr stays positive and finite and the run converges
    log = Online(setup, {"lr": 0.9}, mu=0.0, hypergrad_lr=0.5, max_hypergrad_norm=1.0).run()
    assert all(0 < r["lr"] < 1 for r in log.history)
    assert log.val_loss < 1e-3 * np.mean(reg_data.val.y ** 2)
    # the same in raw coordinates blows up, and says where, instead of returning NaN
    with pytest.raises(HypergradientError, match="stopped being finite at step"):
        Online(setup, {"lr": 0.9}, mu=0.0, hypergrad_lr=0.5, space="raw").run()


def test_hypergradient_clipping_bounds_each_step(reg_data):
    setup = ls_setup(reg_data, steps=20)
    res = Online(setup, {"lr": 0.02}, mu=0.9, hypergrad_lr=0.1, max_hypergrad_norm=0.01).run()
    u = np.log([0.02] + [r["lr"] for r in res.history])
    assert np.max(np.abs(np.diff(u))) <= 0.1 * 0.01 * (1 + 1e-9)
    assert any(r["hypergrad_norm"] > 0.01 for r in res.history)   # clipping was active


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow is the point
def test_exploding_tangent_is_diagnosed(reg_data):
    setup = ls_setup(reg_data, steps=200, check_every=5, max_tangent_norm=1e6)
    with pytest.raises(HypergradientError, match="exploded at step"):
        RTHO(setup, {"lr": 1.5}, hypergrad_lr=0.0, space="raw").run()


@pytest.mark.parametrize("kw,match", [({"mu": 1.5}, "mu"), ({"mu": "fast"}, "mu"),
                                      ({"hypergrad_lr": -1.0}, "hypergrad_lr"),
                                      ({"hypergrad_lr": float("nan")}, "hypergrad_lr"),
                                      ({"delta": 0}, "delta"), ({"space": "cubic"}, "space"),
                                      ({"wrt": ("nonsense",)}, "nonsense")])
def test_bad_arguments(reg_data, kw, match):
    with pytest.raises(ValueError, match=match):
        Online(ls_setup(reg_data), {"lr": 0.02}, **kw)
