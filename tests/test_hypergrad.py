"""Whole-run hypergradients: forward = reverse (1e-8) = central differences (1e-5)."""

import numpy as np
import pytest

from hyperopt import transforms
from hyperopt.data import digits
from hyperopt.hypergrad import HypergradientError, Setup, hypergradient
from hyperopt.models import MLP, LogisticRegression
from hyperopt.optim import SGD, Adam
from hyperopt.schedules import ExponentialDecay, scheduled


@pytest.fixture(scope="module")
def data():
    return digits(seed=0)


def small_setup(data, opt, steps=12, model=None, **kw):
    return Setup(model or MLP((64, 12, 10)), data, opt, steps=steps, batch_size=32, **kw)


def fd_unconstrained(setup, h, name, index=None, eps=1e-5):
    """Central difference of the validation loss in the unconstrained coordinate."""
    c = setup.constraints[name]
    u = transforms.forward(c, np.array(h[name], dtype=float))

    def f(du):
        uu = np.array(u, dtype=float)
        if index is None:
            uu = uu + du
        else:
            uu = uu.copy()
            uu[index] += du
        hh = {**h, name: transforms.inverse(c, uu)}
        params = setup.train(hh, jit=False)
        return float(setup.evaluate(params)[0])

    return (f(eps) - f(-eps)) / (2 * eps)


CASES = [
    ("sgd-momentum", lambda: SGD(lr=0.1, momentum=0.6), {"lr": 0.1, "momentum": 0.6}),
    ("sgd-wd", lambda: SGD(lr=0.1, momentum=0.3, weight_decay=1e-3),
     {"lr": 0.1, "weight_decay": 1e-3}),
    ("adam-betas", lambda: Adam(lr=0.01), {"lr": 0.01, "beta1": 0.9, "beta2": 0.99}),
    ("init-and-smoothing", lambda: SGD(lr=0.1, momentum=0.5),
     {"lr": 0.1, "init_scale": 1.3, "label_smoothing": 0.05}),
]


@pytest.mark.parametrize("name,make_opt,h", CASES, ids=[c[0] for c in CASES])
def test_forward_reverse_and_finite_differences_agree(data, name, make_opt, h):
    setup = small_setup(data, make_opt())
    fwd = hypergradient(setup, h, mode="forward")
    rev = hypergradient(setup, h, mode="reverse")
    assert fwd.value == pytest.approx(rev.value, rel=1e-12)
    for k in h:
        np.testing.assert_allclose(fwd.grads[k], rev.grads[k], rtol=1e-8, atol=1e-12)
        fd = fd_unconstrained(setup, setup.resolve(h), k)
        np.testing.assert_allclose(fwd.grads[k], fd, rtol=1e-5, atol=1e-9)


def test_natural_coordinates_are_the_chain_rule(data):
    setup = small_setup(data, SGD(lr=0.1, momentum=0.5))
    hg = hypergradient(setup, {"lr": 0.1, "momentum": 0.5})
    # d/dlr = d/dlog(lr) / lr;  d/dm = d/dlogit(m) / (m (1 - m))
    assert hg.natural["lr"] == pytest.approx(hg.grads["lr"] / 0.1, rel=1e-12)
    assert hg.natural["momentum"] == pytest.approx(hg.grads["momentum"] / 0.25, rel=1e-12)


def test_per_layer_learning_rates_and_chunking(data):
    setup = small_setup(data, SGD(lr=0.1, momentum=0.5))
    params = setup.init(setup.resolve({}))
    lr_tree = {k: 0.1 * (1 + 0.1 * i) for i, k in enumerate(params)}   # one lr per leaf
    K = len(lr_tree)
    full = hypergradient(setup, {"lr": lr_tree})
    chunked = hypergradient(setup, {"lr": lr_tree}, chunk_size=3)
    rev = hypergradient(setup, {"lr": lr_tree}, mode="reverse")
    assert full.K == K
    for leaf in lr_tree:
        a = full.grads["lr"][leaf]
        np.testing.assert_allclose(chunked.grads["lr"][leaf], a, rtol=1e-12)
        np.testing.assert_allclose(rev.grads["lr"][leaf], a, rtol=1e-8)
    assert len({float(full.grads["lr"][k]) for k in lr_tree}) == K   # K different numbers
    # one leaf against a finite difference
    leaf = next(iter(lr_tree))
    eps = 1e-5

    def f(d):
        tree = dict(lr_tree)
        tree[leaf] = float(np.exp(np.log(tree[leaf]) + d))
        return float(setup.evaluate(setup.train({"lr": tree}, jit=False))[0])

    fd = (f(eps) - f(-eps)) / (2 * eps)
    np.testing.assert_allclose(full.grads["lr"][leaf], fd, rtol=1e-5)


def test_schedule_parameter(data):
    opt = scheduled(SGD(lr=0.2, momentum=0.5), ExponentialDecay(0.95))
    setup = small_setup(data, opt)
    h = {"lr": 0.2, "gamma": 0.95}
    fwd = hypergradient(setup, h)
    rev = hypergradient(setup, h, mode="reverse")
    np.testing.assert_allclose(fwd.grads["gamma"], rev.grads["gamma"], rtol=1e-8)
    np.testing.assert_allclose(fwd.grads["gamma"], fd_unconstrained(setup, setup.resolve(h), "gamma"),
                               rtol=1e-5)


def test_data_hyper_cleaning_one_weight_per_example(data):
    """K = one weight per training example: reverse mode in one sweep, forward in chunks."""
    from hyperopt.data import Dataset, Split
    small = Split(Dataset(data.train.x[:96], data.train.y[:96]), data.val, data.test)
    setup = Setup(LogisticRegression(), small, SGD(lr=0.5), steps=6, batch_size=32)
    w = np.full(96, 0.5) + 0.3 * np.random.default_rng(0).random(96)
    rev = hypergradient(setup, {"example_weights": w}, mode="reverse")
    fwd = hypergradient(setup, {"example_weights": w}, mode="forward", chunk_size=32)
    assert rev.K == 96
    np.testing.assert_allclose(fwd.grads["example_weights"], rev.grads["example_weights"],
                               rtol=1e-8, atol=1e-14)
    for i in (0, 40, 95):
        fd = fd_unconstrained(setup, setup.resolve({"example_weights": w}), "example_weights", i)
        np.testing.assert_allclose(rev.grads["example_weights"][i], fd, rtol=1e-5, atol=1e-10)


@pytest.mark.parametrize("make_opt,h", [
    (lambda: SGD(lr=0.1, momentum=0.5), {"lr": 0.1, "momentum": 0.5}),
    (lambda: Adam(lr=0.01), {"lr": 0.01, "beta1": 0.9})], ids=["sgd", "adam"])
def test_jit_and_eager_runs_agree(data, make_opt, h):
    """Bit for bit: both run on an int-array step counter, and the eager step gets
    0-d arrays where the jit-ed one does (tests/test_float32_runs.py: float32 too)."""
    a = hypergradient(small_setup(data, make_opt(), jit=True), h)
    b = hypergradient(small_setup(data, make_opt(), jit=False), h)
    assert a.value == b.value
    for k in h:
        assert np.array_equal(a.grads[k], b.grads[k]), k
    pa = small_setup(data, make_opt(), jit=True).train(h)
    pb = small_setup(data, make_opt(), jit=False).train(h)
    assert all(np.array_equal(pa[k], pb[k]) for k in pa)


class LeastSquares:
    """A linear model with squared loss: too large an lr diverges geometrically."""

    def init(self, seed=0, scale=1.0, dtype=np.float64):
        return {"w": scale * np.zeros(20, dtype=dtype)}

    def loss(self, params, x, y, label_smoothing=0.0):
        return np.mean((x @ params["w"] - y) ** 2)

    def accuracy(self, params, x, y):
        return 0.0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow is the point
def test_divergent_run_raises_with_the_step():
    from hyperopt.data import synthetic_regression
    setup = Setup(LeastSquares(), synthetic_regression(n=200, n_features=20), SGD(lr=5.0),
                  steps=400, batch_size=32, check_every=10, max_tangent_norm=np.inf)
    with pytest.raises(HypergradientError, match="stopped being finite at step"):
        hypergradient(setup, {"lr": 5.0})


def test_tangent_explosion_diagnostic(data):
    setup = small_setup(data, SGD(lr=0.1, momentum=0.5), steps=20, check_every=5,
                        max_tangent_norm=1e-3)
    with pytest.raises(HypergradientError, match="tangent .* exploded at step 5"):
        hypergradient(setup, {"lr": 0.1})


@pytest.mark.parametrize("bad,match", [({"lr": -0.1}, "outside its range"),
                                       ({"lr": float("nan")}, "outside its range"),
                                       ({"lrr": 0.1}, "unknown hyperparameter"),
                                       ({"example_weights": np.ones(3) / 2}, "one weight per")])
def test_bad_hyperparameters(data, bad, match):
    setup = small_setup(data, SGD(lr=0.1))
    with pytest.raises(ValueError, match=match):
        hypergradient(setup, bad)


def test_bad_options(data):
    setup = small_setup(data, SGD(lr=0.1))
    with pytest.raises(ValueError, match="mode"):
        hypergradient(setup, {"lr": 0.1}, mode="sideways")
    with pytest.raises(ValueError, match="chunk_size"):
        hypergradient(setup, {"lr": 0.1}, chunk_size=0)
    with pytest.raises(ValueError, match="steps"):
        Setup(MLP(), data, SGD(lr=0.1), steps=0)


def test_forward_memory_is_flat_in_the_number_of_steps(data, traced_peak):
    """Peak traced memory of a forward hypergradient: 30 vs 300 steps within 10%."""
    make = lambda T: small_setup(data, SGD(lr=0.05, momentum=0.5), steps=T, jit=False,
                                 check_every=0)
    h = {"lr": 0.05, "momentum": 0.5}
    hypergradient(make(600), h)   # warm caches and free lists
    short = min(traced_peak(lambda: hypergradient(make(30), h)) for _ in range(2))
    long = min(traced_peak(lambda: hypergradient(make(300), h)) for _ in range(2))
    assert long < 1.1 * short, (short, long)
    # reverse mode, for contrast, grows with T
    r_short = traced_peak(lambda: hypergradient(make(10), h, mode="reverse"))
    r_long = traced_peak(lambda: hypergradient(make(40), h, mode="reverse"))
    assert r_long > 2.5 * r_short, (r_short, r_long)


# -- your own model: the Model protocol ------------------------------------------------

class Linear:
    """A model written from scratch: least squares on a linear function, with neither
    label smoothing nor accuracy."""

    def __init__(self, n_in):
        self.n_in = n_in

    def init(self, seed, scale=1.0, dtype=np.float64):
        rng = np.random.default_rng(seed)
        w = rng.standard_normal(self.n_in).astype(dtype) / np.sqrt(self.n_in)
        return {"w": scale * w, "b": np.zeros((), dtype)}

    def loss(self, params, x, y):
        return np.mean((x @ params["w"] + params["b"] - y) ** 2)


def regression(n=240, n_in=6, seed=0):
    from hyperopt.data import Dataset, Split
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, n_in))
    y = x @ rng.standard_normal(n_in) + 0.5 + 0.1 * rng.standard_normal(n)
    parts = [Dataset(x[i::3], y[i::3]) for i in range(3)]
    return Split(*parts)


def linear_setup(model=None, steps=15, **kw):
    return Setup(model or Linear(6), regression(), SGD(lr=0.05, momentum=0.5), steps=steps,
                 batch_size=16, **kw)


@pytest.mark.parametrize("jit", [True, False])
def test_your_own_model_forward_reverse_and_finite_differences(jit):
    from hyperopt.models import Model, check_model
    model = Linear(6)
    assert isinstance(model, Model)
    info = check_model(model)
    assert info.label_smoothing is None and not info.accuracy and info.init_scale
    setup = linear_setup(model, jit=jit)
    h = {"lr": 0.05, "momentum": 0.5, "init_scale": 0.7}
    fwd = hypergradient(setup, h, mode="forward")
    rev = hypergradient(setup, h, mode="reverse")
    assert fwd.value == pytest.approx(rev.value, rel=1e-12)
    assert np.isnan(fwd.accuracy) and np.isnan(rev.accuracy)   # no accuracy method: nan
    for k in h:
        np.testing.assert_allclose(fwd.grads[k], rev.grads[k], rtol=1e-8, atol=1e-14)
        fd = fd_unconstrained(setup, setup.resolve(h), k)
        np.testing.assert_allclose(fwd.grads[k], fd, rtol=1e-5, atol=1e-10)
    assert abs(fwd.grads["lr"]) > 1e-4
    loss, acc = setup.evaluate(setup.train(h), "test")
    assert np.isfinite(float(loss)) and np.isnan(acc)
    assert setup.n_params() == 7


def test_your_own_model_is_tuned():
    from hyperopt.tune import Tuner
    setup = linear_setup(steps=10)
    res = Tuner(setup, {"lr": 0.02}, mode="forward", hyper_optimizer=Adam(lr=0.3)).run(4)
    assert res.tuned["lr"] > 0.02
    assert res.tuned_eval["val_loss"] < res.initial_eval["val_loss"]
    assert np.isnan(res.tuned_eval["val_acc"]) and np.isnan(res.history[0]["val_acc"])


def test_a_model_missing_init_or_loss_is_refused_when_the_setup_is_built():
    class NoLoss:
        def init(self, seed, scale=1.0, dtype=np.float64):
            return {"w": np.zeros(6)}

    class NoInit:
        def loss(self, params, x, y):
            return 0.0

    class WrongLoss(Linear):
        def loss(self, params, batch):
            return 0.0

    for model, match in ((NoLoss(), r"NoLoss has no loss\(\) method"),
                         (NoInit(), r"NoInit has no init\(\) method"),
                         (WrongLoss(6), r"WrongLoss.loss\(params, batch\) cannot be called as "
                                        r"loss\(params, x, y\)")):
        with pytest.raises(TypeError, match=match + r".*hyperopt.models.Model protocol"):
            linear_setup(model)


def test_a_hyperparameter_the_model_does_not_use_is_an_error():
    from hyperopt.tune import Tuner
    setup = linear_setup()
    # tuning label smoothing of a loss without it: an error naming the model and the hyperparameter
    for mode in ("forward", "reverse"):
        with pytest.raises(ValueError, match="Linear does not use label_smoothing"):
            hypergradient(setup, {"lr": 0.05, "label_smoothing": 0.1}, mode=mode)
    with pytest.raises(ValueError, match="cannot tune label_smoothing: model Linear"):
        hypergradient(setup, {"lr": 0.05}, wrt=["lr", "label_smoothing"])
    with pytest.raises(ValueError, match="label_smoothing=0.1: model Linear"):
        setup.train({"label_smoothing": 0.1})
    with pytest.raises(ValueError, match="Linear does not use label_smoothing"):
        Tuner(setup, {"lr": 0.05, "label_smoothing": 0.05}, mode="forward")
    # label_smoothing at its default (0) is fine: the loss is called without it
    assert np.isfinite(float(setup.evaluate(setup.train({"label_smoothing": 0.0}))[0]))

    # init_scale when init has no scale parameter
    class NoScale(Linear):
        def init(self, seed, dtype=np.float64):
            return super().init(seed, 1.0, dtype)

    no_scale = linear_setup(NoScale(6))
    with pytest.raises(ValueError, match="cannot tune init_scale: model NoScale does not use"):
        hypergradient(no_scale, {"init_scale": 1.0})
    with pytest.raises(ValueError, match="init_scale=2: model NoScale"):
        no_scale.train({"init_scale": 2.0})
    assert hypergradient(no_scale, {"lr": 0.05}).grads["lr"] != 0

    # example weights need logits (apply)
    with pytest.raises(ValueError, match="Linear has no apply"):
        hypergradient(setup, {"example_weights": np.full(80, 0.5)}, mode="reverse")


class SmoothedLinear(Linear):
    """A loss taking label_smoothing through *args (a made-up penalty, to be differentiable)."""

    def loss(self, params, x, y, *args):
        smoothing = args[0] if args else 0.0
        return np.mean((x @ params["w"] + params["b"] - y) ** 2) + smoothing * np.sum(params["w"] ** 2)


def test_label_smoothing_reaches_a_loss_that_takes_it():
    calls = []

    class Keyword(Linear):
        def loss(self, params, x, y, label_smoothing=0.0):
            calls.append(label_smoothing)
            return SmoothedLinear.loss(self, params, x, y, label_smoothing)

    for model in (SmoothedLinear(6), Keyword(6)):
        setup = linear_setup(model, steps=8)
        h = {"lr": 0.05, "label_smoothing": 0.2}
        fwd = hypergradient(setup, h)
        rev = hypergradient(setup, h, mode="reverse")
        np.testing.assert_allclose(fwd.grads["label_smoothing"], rev.grads["label_smoothing"],
                                   rtol=1e-8)
        fd = fd_unconstrained(setup, setup.resolve(h), "label_smoothing")
        np.testing.assert_allclose(fwd.grads["label_smoothing"], fd, rtol=1e-5)
    # not passed when it is neither tuned nor nonzero (the validation loss never gets it)
    calls.clear()
    setup = linear_setup(Keyword(6), steps=3, jit=False)
    setup.evaluate(setup.train({}))
    assert calls == [0.0] * 4   # the default of Keyword.loss, never a value from the setup


def test_a_hypergradient_that_is_exactly_zero_is_reported():
    class ZeroInit(Linear):   # init_scale multiplies zeros: it cannot matter
        def init(self, seed, scale=1.0, dtype=np.float64):
            return {"w": scale * np.zeros(self.n_in, dtype), "b": np.zeros((), dtype)}

    setup = linear_setup(ZeroInit(6))
    with pytest.warns(RuntimeWarning, match="'init_scale' is exactly zero"):
        hg = hypergradient(setup, {"lr": 0.05, "init_scale": 1.0})
    assert hg.grads["init_scale"] == 0 and hg.grads["lr"] != 0


def test_an_init_without_dtype_must_return_the_setups_dtype():
    class NoDtype(Linear):
        def init(self, seed, scale=1.0):
            return super().init(seed, scale, np.float64)

    assert linear_setup(NoDtype(6)).n_params() == 7     # float64: as the setup computes
    with pytest.raises(ValueError, match="NoDtype.init.* takes no dtype and returned float64 "
                                         "parameters, but the setup computes in float32"):
        linear_setup(NoDtype(6), dtype=np.float32).train()
