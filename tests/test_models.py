"""hyperopt.models: shapes, parameter counts, gradients of the loss wrt the
parameters, the derivative of the loss wrt the init scale, dtypes, and that a
few SGD steps train each model."""
import numpy as np
import pytest

from autodiff import check_grads, dual, grad, jvp, nn
from autodiff.core import primal_value
from hyperopt.models import (CNN, MLP, CharLSTM, Classifier, LogisticRegression, Model,
                             check_model, get_model)


def tiny(name):
    """A small model of each kind and a batch for it: (model, x, y)."""
    rng = np.random.default_rng(7)
    if name == "logreg":
        return LogisticRegression(n_in=5, n_classes=3), rng.standard_normal((4, 5)), rng.integers(0, 3, 4)
    if name == "mlp":
        return MLP(sizes=(5, 6, 4, 3)), rng.standard_normal((4, 5)), rng.integers(0, 3, 4)
    if name == "mlp-relu":
        return MLP(sizes=(5, 6, 3), activation="relu"), rng.standard_normal((4, 5)), rng.integers(0, 3, 4)
    if name == "cnn":
        return (CNN(in_shape=(1, 4, 4), channels=2, n_classes=3), rng.standard_normal((3, 1, 4, 4)),
                rng.integers(0, 3, 3))
    if name == "lstm":
        return CharLSTM(vocab_size=5, embed=3, hidden=4), rng.integers(0, 5, (2, 3)), rng.integers(0, 5, (2, 3))
    raise KeyError(name)


NAMES = ["logreg", "mlp", "mlp-relu", "cnn", "lstm"]


def test_default_shapes_and_param_counts():
    x = np.random.standard_normal((7, 64))
    m = LogisticRegression()
    p = m.init()
    assert m.apply(p, x).shape == (7, 10) and m.n_params(p) == 64 * 10 + 10

    m = MLP()
    p = m.init()
    assert {k: v.shape for k, v in p.items()} == {"w0": (64, 128), "b0": (128,), "w1": (128, 10), "b1": (10,)}
    assert m.apply(p, x).shape == (7, 10) and m.n_params(p) == 64 * 128 + 128 + 128 * 10 + 10

    m = CNN()
    p = m.init()
    assert m.apply(p, x.reshape(7, 1, 8, 8)).shape == (7, 10)
    np.testing.assert_array_equal(m.apply(p, x), m.apply(p, x.reshape(7, 1, 8, 8)))  # flat input accepted
    assert m.n_params(p) == 8 * 9 + 8 + 8 * 4 * 4 * 10 + 10

    m = CharLSTM(vocab_size=11)
    p = m.init()
    ids = np.random.randint(0, 11, (3, 5))
    assert m.apply(p, ids).shape == (3, 5, 11)
    assert m.n_params(p) == 11 * 16 + 16 * 256 + 64 * 256 + 256 + 64 * 11 + 11


def test_models_compute_what_they_say():
    """Each model's logits against the same computation written out directly."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 64))
    m = MLP(sizes=(64, 8, 10), activation="relu")
    p = m.init(seed=1)
    ref = np.maximum(x @ p["w0"] + p["b0"], 0) @ p["w1"] + p["b1"]
    np.testing.assert_allclose(m.apply(p, x), ref, rtol=1e-12)

    m = CharLSTM(vocab_size=6, embed=3, hidden=5)
    p = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in m.init(seed=2).items()}
    ids = rng.integers(0, 6, (2, 4))
    sig = lambda v: 1 / (1 + np.exp(-v))
    H = 5
    logits = np.zeros((2, 4, 6))
    for b in range(2):
        h, c = np.zeros(H), np.zeros(H)
        for t in range(4):
            z = p["embed"][ids[b, t]] @ p["wx"] + h @ p["wh"] + p["b"]
            i, f, g, o = z[:H], z[H:2 * H], z[2 * H:3 * H], z[3 * H:]
            c = sig(f) * c + sig(i) * np.tanh(g)
            h = sig(o) * np.tanh(c)
            logits[b, t] = h @ p["w_out"] + p["b_out"]
    np.testing.assert_allclose(m.apply(p, ids), logits, rtol=1e-12)
    y = rng.integers(0, 6, (2, 4))
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.mean([logp[b, t, y[b, t]] for b in range(2) for t in range(4)])
    np.testing.assert_allclose(m.loss(p, ids, y), nll, rtol=1e-12)


def test_init_is_seeded_and_scaled():
    m = MLP(sizes=(6, 5, 3))
    a, b, c = m.init(seed=0), m.init(seed=0), m.init(seed=1)
    np.testing.assert_array_equal(a["w0"], b["w0"])
    assert not np.allclose(a["w0"], c["w0"])
    s = m.init(seed=0, scale=0.5)
    np.testing.assert_allclose(s["w0"], 0.5 * a["w0"], rtol=1e-15)
    np.testing.assert_array_equal(s["b0"], 0.0)


def test_init_statistics():
    w = LogisticRegression(n_in=400, n_classes=300).init(seed=0)["w"]
    assert abs(w.std() * np.sqrt(400) - 1) < 0.02  # N(0, 1/fan_in)


@pytest.mark.parametrize("name", NAMES)
def test_loss_grads_wrt_params(name):
    model, x, y = tiny(name)
    params = model.init(seed=1)
    check_grads(lambda p: model.loss(p, x, y, label_smoothing=0.1), (params,))


@pytest.mark.parametrize("name", NAMES)
def test_loss_derivative_wrt_init_scale(name):
    model, x, y = tiny(name)
    f = lambda s: model.loss(model.init(seed=2, scale=s), x, y)
    val, d = jvp(f, (1.3,), (1.0,))
    np.testing.assert_allclose(val, f(1.3), rtol=1e-13)
    eps = 1e-6
    fd = (f(1.3 + eps) - f(1.3 - eps)) / (2 * eps)
    np.testing.assert_allclose(d, fd, rtol=1e-6, atol=1e-9)
    assert abs(d) > 1e-6  # the scale matters


def test_loss_derivative_wrt_label_smoothing():
    model, x, y = tiny("mlp")
    params = model.init()
    f = lambda s: model.loss(params, x, y, label_smoothing=s)
    d = jvp(f, (0.1,), (1.0,))[1]
    np.testing.assert_allclose(d, (f(0.1 + 1e-6) - f(0.1 - 1e-6)) / 2e-6, rtol=1e-6)
    np.testing.assert_allclose(f(0.1), nn.softmax_cross_entropy(model.apply(params, x), y, 0.1), rtol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_sgd_reduces_loss(name):
    model, x, y = tiny(name)
    params = model.init(seed=0)
    loss0 = model.loss(params, x, y)
    step = grad(model.loss)
    for _ in range(20):
        g = step(params, x, y)
        params = {k: params[k] - 0.3 * g[k] for k in params}
    assert model.loss(params, x, y) < 0.7 * loss0


@pytest.mark.parametrize("name", NAMES)
def test_float32(name):
    model, x, y = tiny(name)
    params = model.init(dtype=np.float32)
    assert all(v.dtype == np.float32 for v in params.values())
    x = x.astype(np.float32) if x.dtype.kind == "f" else x
    assert np.result_type(model.apply(params, x)) == np.float32
    assert np.result_type(model.loss(params, x, y, 0.1)) == np.float32
    g = grad(model.loss)(params, x, y)
    assert all(v.dtype == np.float32 for v in g.values())
    assert all(v.dtype == np.float64 for v in model.init(dtype=np.float64).values())
    # a float64 numpy scale, plain or carrying a tangent, does not promote the weights
    for scale in (np.float64(0.5), np.array(0.5), dual(np.array(0.5), np.ones(1))):
        assert all(np.result_type(primal_value(v)) == np.float32
                   for v in model.init(dtype=np.float32, scale=scale).values())
    d = jvp(lambda s: model.loss(model.init(dtype=np.float32, scale=s), x, y), (np.array(0.5),),
            (np.array(1.0),))[1]
    assert np.result_type(d) == np.float32 and np.isfinite(d)


@pytest.mark.parametrize("name", NAMES)
def test_accuracy(name):
    model, x, y = tiny(name)
    params = model.init(seed=3)
    logits = model.apply(params, x)
    expected = np.mean(np.argmax(logits, -1) == y)
    acc = model.accuracy(params, x, y)
    assert type(acc) is float and acc == expected
    # on boxed parameters it reads the primal values
    boxed = {k: dual(v, np.ones((1,) + v.shape)) for k, v in params.items()}
    assert model.accuracy(boxed, x, y) == expected
    perfect = np.argmax(primal_value(logits), -1)
    assert model.accuracy(params, x, perfect) == 1.0


def test_get_model():
    assert isinstance(get_model("logreg"), LogisticRegression)
    m = get_model("mlp", sizes=(4, 3), activation="relu")
    assert isinstance(m, MLP) and m.sizes == (4, 3) and m.activation == "relu"
    assert isinstance(get_model("cnn"), CNN)
    assert isinstance(get_model("lstm", vocab_size=9), CharLSTM)
    for name in ("logreg", "mlp", "cnn", "lstm"):
        kwargs = {"vocab_size": 3} if name == "lstm" else {}
        assert get_model(name, **kwargs).name == name
    with pytest.raises(ValueError, match="resnet") as err:
        get_model("resnet")
    assert all(name in str(err.value) for name in ("logreg", "mlp", "cnn", "lstm"))


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="activation"):
        MLP(activation="gelu")
    with pytest.raises(ValueError, match="sizes"):
        MLP(sizes=(10,))
    with pytest.raises(ValueError, match="shape"):
        CNN().apply(CNN().init(), np.zeros((2, 1, 7, 7)))
    with pytest.raises(ValueError, match="B, T"):
        CharLSTM(vocab_size=4).apply(CharLSTM(vocab_size=4).init(), np.zeros(3, int))


@pytest.mark.parametrize("name", ["cnn", "lstm"])
def test_hypergradient_through_training_steps(name):
    """Forward over reverse: d(loss after two SGD steps)/d(init scale, lr), each step's
    grad running on Duals, against central differences."""
    model, x, y = tiny(name)

    def trained_loss(scale, lr):
        params = model.init(seed=4, scale=scale)
        for _ in range(2):
            g = grad(model.loss)(params, x, y, 0.05)
            params = {k: params[k] - lr * g[k] for k in params}
        return model.loss(params, x, y)

    for tangent in [(1.0, 0.0), (0.0, 1.0)]:
        d = jvp(trained_loss, (0.8, 0.5), tangent)[1]
        eps = 1e-6
        fd = (trained_loss(0.8 + eps * tangent[0], 0.5 + eps * tangent[1])
              - trained_loss(0.8 - eps * tangent[0], 0.5 - eps * tangent[1])) / (2 * eps)
        np.testing.assert_allclose(d, fd, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_loss_gradient_under_jit(name):
    """The models have no value-dependent Python code, so autodiff.jit can record them."""
    from autodiff import jit
    model, x, y = tiny(name)
    step = jit(grad(model.loss))
    for seed in (5, 6):  # the second call replays the recorded program on new values
        params = model.init(seed=seed)
        g, ref = step(params, x, y, 0.1), grad(model.loss)(params, x, y, 0.1)
        for k in ref:
            np.testing.assert_allclose(g[k], ref[k], rtol=1e-12, atol=1e-14)


# -- the Model protocol ------------------------------------------------------------

def test_builtin_models_follow_the_protocol_with_every_optional_part():
    for name in NAMES:
        model = tiny(name)[0]
        assert isinstance(model, Model) and isinstance(model, Classifier)
        info = check_model(model)
        assert info == (type(model).__name__, "keyword", "keyword", True, True, True, True)


def test_check_model_detects_the_optional_parts():
    class Minimal:
        def init(self, seed):
            return {"w": np.zeros(3)}

        def loss(self, params, x, y):
            return np.sum(params["w"])

    class Varargs:
        def init(self, seed, **kwargs):
            return {"w": np.zeros(3)}

        def loss(self, params, x, y, *args):
            return np.sum(params["w"])

        def accuracy(self, params, x, y):
            return 1.0

    class Kwargs(Varargs):
        def loss(self, params, x, y, **kwargs):
            return np.sum(params["w"])

    class Misplaced(Varargs):   # a 4th positional argument that is not label smoothing
        def loss(self, params, x, y, weights=None, *args):
            return np.sum(params["w"])

    assert isinstance(Minimal(), Model)
    m = check_model(Minimal())
    assert (m.label_smoothing, m.init_scale, m.init_dtype, m.accuracy, m.apply) == \
        (None, False, False, False, False)
    v = check_model(Varargs())
    assert (v.label_smoothing, v.init_scale, v.init_dtype, v.accuracy) == ("positional", True, True, True)
    assert check_model(Kwargs()).label_smoothing == "keyword"
    assert check_model(Misplaced()).label_smoothing is None
    # an init taking its seed only positionally
    from types import SimpleNamespace
    ns = SimpleNamespace(init=lambda s, /: {}, loss=lambda p, x, y: 0.0)
    assert check_model(ns).init_seed == "positional"


def test_check_model_names_what_is_missing():
    class OnlyInit:
        def init(self, seed, scale=1.0, dtype=np.float64):
            return {}

    class Subclass(Model):   # explicit subclass of the protocol, loss not written
        def init(self, seed, scale=1.0, dtype=np.float64):
            return {}

    class BadInit:
        def init(self):
            return {}

        def loss(self, params, x, y):
            return 0.0

    for model, match in ((OnlyInit(), r"OnlyInit has no loss\(\) method"),
                         (Subclass(), r"Subclass does not implement the loss\(\) method"),
                         (BadInit(), r"BadInit.init\(\) cannot be called as init\(seed\)"),
                         (object(), r"object has no init\(\) method")):
        with pytest.raises(TypeError, match=match + ".*Model protocol: init"):
            check_model(model)
    assert not isinstance(OnlyInit(), Model)


def test_init_with_required_scale_and_dtype_follows_the_protocol():
    from hyperopt.models import check_model

    class M:
        def init(self, seed, scale, dtype):
            return {"w": np.ones(2, dtype) * scale}

        def loss(self, params, x, y):
            return np.sum(params["w"])

    info = check_model(M())
    assert info.init_scale and info.init_dtype and info.label_smoothing is None
