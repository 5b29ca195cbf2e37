"""Bad input to hyperopt gives a clear message naming the argument, not a failure deep inside.

* a model loss of shape (1,) or (1, 1) is taken as the number it holds (the
  same hypergradient as a 0-d loss); a loss with more than one element raises
  ValueError naming model.loss (or Tower.step's loss_fn) and the shape;
* a non-float dtype raises ValueError naming dtype (Setup, model init, data);
* eps=0 on a zero second moment raises FloatingPointError naming eps at the
  step where 0/0 happens, leaving the optimizer unchanged, in every Adam-like
  optimizer (optim, hd, towers / hd_auto, and Setup's jit-ed runs).
"""
import copy
import warnings

import numpy as np
import pytest

from autodiff import grad
from hyperopt.data import digits, synthetic_classification, synthetic_regression
from hyperopt.hd import AdamHD, adamhd_init, adamhd_update
from hyperopt.hd_auto import HD
from hyperopt.hypergrad import HypergradientError, Setup, hypergradient
from hyperopt.models import CNN, MLP, CharLSTM, LogisticRegression
from hyperopt.online import MARTHE
from hyperopt.optim import SGD, Adagrad, Adam, AdamW, RAdam, RMSprop
from hyperopt.towers import Tower


@pytest.fixture(scope="module")
def data():
    return digits(seed=0)


class ShapedLoss(LogisticRegression):
    """Logistic regression whose loss is reshaped to ``shape`` (one element)."""

    def __init__(self, shape):
        super().__init__(64, 10)
        self.shape = shape

    def loss(self, params, x, y, label_smoothing=0.0):
        return np.reshape(super().loss(params, x, y, label_smoothing), self.shape)


class PerExampleLoss(LogisticRegression):
    """A loss left unreduced: one value per example."""

    def loss(self, params, x, y, label_smoothing=0.0):
        from autodiff.ops import log_softmax
        logp = log_softmax(self.apply(params, x), axis=-1)
        return -np.take_along_axis(logp, y[:, None], axis=-1)[:, 0]


def _setup(data, model, opt=None, **kw):
    kw.setdefault("steps", 4)
    kw.setdefault("batch_size", 16)
    return Setup(model, data, opt if opt is not None else SGD(lr=0.1, momentum=0.5), **kw)


# -- 1. the shape of the model's loss ------------------------------------------------

@pytest.mark.parametrize("shape", [(1,), (1, 1)])
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_single_element_loss_gives_the_0d_hypergradient(data, shape, mode):
    h = {"lr": 0.1, "momentum": 0.5}
    ref = hypergradient(_setup(data, ShapedLoss(())), h, mode=mode)
    got = hypergradient(_setup(data, ShapedLoss(shape)), h, mode=mode)
    assert got.value == ref.value
    for k in h:
        np.testing.assert_allclose(got.grads[k], ref.grads[k], rtol=1e-12, atol=0)
    loss, acc = _setup(data, ShapedLoss(shape)).evaluate(_setup(data, ShapedLoss(())).train())
    assert np.shape(loss) == () and float(loss) == ref.value


@pytest.mark.parametrize("jit", [True, False])
def test_single_element_loss_in_online_runs(data, jit):
    ref = MARTHE(_setup(data, ShapedLoss(()), jit=jit), {"lr": 0.1}, mu=0.5).run()
    got = MARTHE(_setup(data, ShapedLoss((1,)), jit=jit), {"lr": 0.1}, mu=0.5).run()
    assert got.val_loss == ref.val_loss
    assert got.hparams["lr"] == ref.hparams["lr"]


def test_setup_loss_is_0d(data):
    s = _setup(data, ShapedLoss((1, 1)))
    params = s.init(s.resolve({}))
    x, y = s.batch(0)
    assert np.shape(s.loss(params, x, y)) == ()
    assert np.shape(s.loss(params, x, y, 0.1)) == ()
    g = grad(s.loss)(params, x, y)                 # what the cli's hd baseline differentiates
    assert g["w"].shape == (64, 10)


LOSS_MESSAGE = (r"model\.loss \(PerExampleLoss\.loss\) must return a scalar \(one element\), "
                r"got shape \(16,\); reduce it with np\.mean")


@pytest.mark.parametrize("jit", [True, False])
def test_per_example_loss_is_refused_with_its_shape(data, jit):
    s = _setup(data, PerExampleLoss(), jit=jit)
    with pytest.raises(ValueError, match=LOSS_MESSAGE):
        s.train()
    for mode in ("forward", "reverse"):
        with pytest.raises(ValueError, match=LOSS_MESSAGE):
            hypergradient(s, {"lr": 0.1}, mode=mode)
    with pytest.raises(ValueError, match=LOSS_MESSAGE):
        MARTHE(s, {"lr": 0.1}).run()
    with pytest.raises(ValueError, match=r"model\.loss .* got shape \(\d+,\)"):
        s.evaluate(s.init(s.resolve({})))


def test_tower_step_loss_shapes():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3))
    y = rng.standard_normal(8)
    p0 = {"w": np.zeros(3)}

    def loss0(p, x, y):
        return np.mean((x @ p["w"] - y) ** 2)

    def loss1(p, x, y):
        return np.reshape(loss0(p, x, y), (1,))

    def per_example(p, x, y):
        return (x @ p["w"] - y) ** 2

    a = Tower(Adam(0.01, optimizer=SGD(1e-4)), p0)
    b = Tower(Adam(0.01, optimizer=SGD(1e-4)), p0)
    for _ in range(3):
        assert a.step(loss0, x, y) == b.step(loss1, x, y)
    np.testing.assert_array_equal(a.params["w"], b.params["w"])
    assert a.hparams == b.hparams

    before = b.state_dict()
    with pytest.raises(ValueError, match=r"Tower\.step: loss_fn \(.*per_example\) must return a "
                                         r"scalar \(one element\), got shape \(8,\)"):
        b.step(per_example, x, y)
    assert b.state.step == 3
    np.testing.assert_array_equal(b.params["w"], before["params"]["w"])


# -- 2. dtype -------------------------------------------------------------------------

BAD_DTYPES = [np.int64, np.int32, bool, np.float16, np.complex128, object, "foo"]


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=str)
def test_setup_refuses_non_float_dtypes(data, dtype):
    with pytest.raises(ValueError, match=r"^dtype must be float32 or float64"):
        _setup(data, MLP((64, 8, 10)), dtype=dtype)


def test_setup_dtype_message_names_the_dtype(data):
    with pytest.raises(ValueError, match=r"dtype must be float32 or float64 .*got int64$"):
        _setup(data, MLP((64, 8, 10)), dtype=np.int64)


@pytest.mark.parametrize("dtype,expected", [(np.float32, np.float32), ("float32", np.float32),
                                            ("float64", np.float64), (float, np.float64),
                                            (">f8", np.float64)])
def test_setup_accepts_float32_and_float64(data, dtype, expected):
    s = _setup(data, MLP((64, 8, 10)), dtype=dtype, jit=False)
    assert s.dtype == np.dtype(expected)
    params = s.train()
    assert all(p.dtype == np.dtype(expected) for p in params.values())


@pytest.mark.parametrize("model", [LogisticRegression(), MLP(), CNN(), CharLSTM(5)],
                         ids=lambda m: type(m).__name__)
def test_model_init_refuses_non_float_dtypes(model):
    name = type(model).__name__
    with pytest.raises(ValueError, match=rf"{name}\.init: dtype must be float32 or float64"
                                         r".*got int64"):
        model.init(dtype=np.int64)
    params = model.init(dtype=np.float32)
    assert all(p.dtype == np.float32 for p in params.values())


@pytest.mark.parametrize("loader", [digits, synthetic_classification, synthetic_regression],
                         ids=lambda f: f.__name__)
def test_data_loaders_refuse_non_float_dtypes(loader):
    with pytest.raises(ValueError, match=rf"{loader.__name__}: dtype must be float32 or float64"):
        loader(dtype=np.int32)


def test_cli_dtype_choices(capsys):
    from hyperopt.cli import main
    assert main(["plan", "--dtype", "int64"]) == 2
    assert "--dtype" in capsys.readouterr().err


# -- 3. eps = 0 on a zero second moment -------------------------------------------------

P0 = {"a": np.array([1.0, -2.0]), "b": np.array([0.5, 0.25, -1.0])}
ZERO = {"a": np.zeros(2), "b": np.zeros(3)}
HALF_ZERO = {"a": np.array([0.3, -0.1]), "b": np.array([0.2, 0.0, 0.4])}  # b[1] dead


def _same(x, y):
    for k in x:
        np.testing.assert_array_equal(x[k], y[k])


def test_adamhd_eps0_raises_at_the_step_and_leaves_the_state():
    opt = AdamHD({k: v.copy() for k, v in P0.items()}, lr=0.01, eps=0)
    before = opt.state_dict()
    with pytest.raises(FloatingPointError, match=r"AdamHD: eps=0\.0 with a zero second-moment "
                                                 r"estimate .* gives 0/0 .*leaf 0 at step 1; use "
                                                 r"eps > 0"):
        opt.step(ZERO)
    _same(opt.params, P0)
    assert opt.lr == 0.01 and opt.state[0].step == 0
    _same(opt.state[0].exp_avg_sq, before["state"][0]["exp_avg_sq"])
    # the leaf named is the one with a dead entry
    with pytest.raises(FloatingPointError, match=r"eps=0\.0 .*leaf 1 at step 1"):
        opt.step(HALF_ZERO)
    _same(opt.params, P0)
    # with gradients that are not 0, eps=0 is fine (torch allows it too)
    g = {"a": np.array([0.3, -0.1]), "b": np.array([0.2, 0.1, 0.4])}
    p = opt.step(g)
    assert all(np.all(np.isfinite(v)) for v in p.values())
    np.testing.assert_allclose(p["a"], P0["a"] - 0.01 * np.sign(g["a"]), rtol=1e-12)


def test_adamhd_pure_update_eps0():
    state = adamhd_init(P0, 0.01)
    with pytest.raises(FloatingPointError, match=r"AdamHD: eps=0\.0 "):
        adamhd_update(P0, ZERO, state, eps=0.0)
    p, s = adamhd_update(P0, ZERO, state, eps=1e-8)           # the default: no 0/0
    _same(p, P0)


def test_adamhd_eps0_no_nan_gradient_misattribution():
    """Before: step 1 silently made the parameters nan and step 2 blamed the gradient."""
    opt = AdamHD({k: v.copy() for k, v in P0.items()}, eps=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")               # no RuntimeWarning from a 0/0 either
        with pytest.raises(FloatingPointError, match="eps"):
            opt.step(ZERO)
    assert all(np.all(np.isfinite(v)) for v in opt.params.values())


OPTIMIZERS = [
    ("Adam", lambda: Adam(0.01, eps=0), 1),
    ("AdamW", lambda: AdamW(0.01, eps=0), 1),
    ("Adam", lambda: Adam(0.01, eps=0, amsgrad=True), 1),
    ("RMSprop", lambda: RMSprop(0.01, eps=0), 1),
    ("RMSprop", lambda: RMSprop(0.01, eps=0, centered=True, momentum=0.5), 1),
    ("Adagrad", lambda: Adagrad(0.01, eps=0), 1),
    ("RAdam", lambda: RAdam(0.01, eps=0), 6),    # the rectified step (and its eps) starts at 6
]


@pytest.mark.parametrize("name,make,step", OPTIMIZERS,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(OPTIMIZERS)])
def test_optim_eps0_raises_at_the_step(name, make, step):
    opt = make()
    params, state = P0, opt.init(P0)
    for _ in range(step - 1):
        params, state = opt.update(HALF_ZERO, state, params)
        assert all(np.all(np.isfinite(v)) for v in params.values())
    saved = copy.deepcopy((params, state))
    with pytest.raises(FloatingPointError, match=rf"^{name}: eps=0 with a zero .* gives 0/0 in the "
                                                 rf"update of parameter leaf 1 at step {step}; "
                                                 r"use eps > 0"):
        opt.update(HALF_ZERO, state, params)
    # pure: nothing the caller holds has changed, and the next step can be retried
    _same(params, saved[0])
    assert state.step == saved[1].step
    for f in state._fields[1:]:
        if getattr(state, f) is not None:
            _same(getattr(state, f), getattr(saved[1], f))


@pytest.mark.parametrize("make", [lambda: Adam(0.01, eps=0), lambda: RMSprop(0.01, eps=0),
                                  lambda: Adagrad(0.01, eps=0, initial_accumulator_value=0.1)])
def test_optim_eps0_without_a_zero_moment_is_fine(make):
    opt = make()
    g = {"a": np.array([0.3, -0.1]), "b": np.array([0.2, 1e-3, 0.4])}
    params, state = P0, opt.init(P0)
    for _ in range(5):
        params, state = opt.update(g, state, params)
    assert all(np.all(np.isfinite(v)) for v in params.values())
    # and the same numbers as with a tiny eps, to first order
    ref = {"eps": 1e-300}
    p2, s2 = P0, opt.init(P0)
    for _ in range(5):
        p2, s2 = opt.update(g, s2, p2, ref)
    for k in params:
        np.testing.assert_allclose(params[k], p2[k], rtol=1e-12)


@pytest.mark.parametrize("make", [lambda: Adam(0.01, eps=0, optimizer=SGD(1e-5)),
                                  lambda: RMSprop(0.01, eps=0, optimizer=SGD(1e-5))])
def test_tower_eps0_raises_at_the_step_and_leaves_the_tower(make):
    stack = make()
    tower = Tower(stack, P0)
    before = tower.state_dict()
    with pytest.raises(FloatingPointError, match=rf"{type(stack).__name__}: eps=0 .* leaf 1 at "
                                                 r"step 1"):
        tower.update(HALF_ZERO)
    assert tower.state.step == 0 and tower.state.tangents is None
    _same(tower.params, before["params"])
    assert tower.state.hparams == before["hparams"]


def test_hd_auto_eps0_raises_at_the_step():
    hd = HD(Adam(0.01, eps=0), P0, hypergrad_lr=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")       # no HyperparameterWarning blaming the lr afterwards
        with pytest.raises(FloatingPointError, match=r"Adam: eps=0 .* step 1"):
            hd.step(HALF_ZERO)
    assert hd.state.step == 0
    _same(hd.params, P0)


@pytest.mark.parametrize("jit", [True, False])
def test_setup_eps0_names_eps_at_the_step(data, jit):
    """Digits has pixels that are 0 in every image: their weights' gradients are exactly 0.
    Before, a jit-ed run blamed the learning rate ("diverged") at the next check."""
    s = _setup(data, LogisticRegression(), Adam(0.01, eps=0.0), jit=jit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # the jit-ed step's own 0/0
        with pytest.raises(FloatingPointError, match=r"Adam: eps=0\.0 .* step 1;") as e:
            s.train()
        assert not isinstance(e.value, HypergradientError)
        with pytest.raises(FloatingPointError, match=r"Adam: eps=0\.0 .* step 1;"):
            MARTHE(s, {"lr": 0.01}).run()


def test_setup_eps0_still_jits(data):
    """The 0/0 check looks at concrete values only, so it cannot stop jit from recording."""
    d = synthetic_classification(n=200, n_features=10, seed=0)
    runs = {}
    for jit in (True, False):
        s = Setup(MLP((10, 8, 3)), d, Adam(0.01, eps=0.0), steps=6, batch_size=16, jit=jit)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            runs[jit] = s.train()
    for k in runs[True]:
        np.testing.assert_allclose(runs[True][k], runs[False][k], rtol=1e-10, atol=1e-12)
