"""Models for hyperparameter-optimization experiments: the `Model` protocol and
four built-in classifiers.

Your own model
--------------
`hyperopt.hypergrad.Setup` (and so `hypergradient`, `Tuner`, the planner,
RTHO and MARTHE) trains any object that follows the `Model` protocol; no base
class is needed.  Two methods are required:

* ``init(seed, scale=1.0, dtype=np.float64)`` returns the initial parameters,
  a pytree (dict, list, tuple or NamedTuple of float arrays).  ``scale``
  multiplies the standard initialization by plain arithmetic
  (``w = scale * w0``, never ``np.asarray(scale)`` or ``float(scale)``), so it
  may arrive as a `Dual` and the hyperparameter ``init_scale`` gets its
  derivative.  ``dtype`` is the dtype the setup computes in.
* ``loss(params, x, y)`` returns the mean loss on a batch: one number (shape
  () or (1,)), written in numpy on ``params``.  It is both the training loss
  and, on the validation split and without label smoothing, the objective
  the hyperparameters are tuned against.

Optional parts are detected, not assumed:

* a ``label_smoothing`` parameter of ``loss`` (or ``*args`` / ``**kwargs``):
  the setup then passes ``label_smoothing`` when it is tuned or nonzero.  Tuning
  ``label_smoothing`` (or setting it nonzero) for a loss without one is a
  ValueError, never a silent zero hypergradient.
* an ``init`` without a ``scale`` (or ``dtype``) parameter is called without
  it; ``init_scale`` then cannot be tuned or set (ValueError), and the
  parameters must already be of the setup's dtype (ValueError otherwise).
* ``accuracy(params, x, y)`` -> float, computed on primal values.  Without
  it, `Setup.evaluate` reports the accuracy as ``nan`` (so does
  ``Hypergradient.accuracy`` and the tuner's ``val_acc`` / ``test_acc``).
* ``apply(params, x)`` -> logits: needed only for ``example_weights``
  (data hyper-cleaning weights a per-example softmax cross-entropy of the
  logits).

`check_model(model)` checks an object against the protocol (TypeError naming
what is missing) and reports which optional parts it has (`ModelInfo`).

A minimal model (least squares, no label smoothing, no accuracy)::

    class Linear:
        def __init__(self, n_in):
            self.n_in = n_in

        def init(self, seed, scale=1.0, dtype=np.float64):
            rng = np.random.default_rng(seed)
            w = rng.standard_normal(self.n_in).astype(dtype) / np.sqrt(self.n_in)
            return {"w": scale * w, "b": np.zeros((), dtype)}

        def loss(self, params, x, y):
            return np.mean((x @ params["w"] + params["b"] - y) ** 2)

The built-in models
-------------------
Each is a stateless `Classifier` holding its architecture; parameters are a
dict of arrays, so `autodiff.grad` differentiates them and the optimizers in
`hyperopt.optim` update them.

    model = get_model("mlp", sizes=(64, 128, 10))
    params = model.init(seed=0, scale=1.0)          # scale may be a Dual
    loss = model.loss(params, x, y, label_smoothing=0.1)

* ``init(seed=0, scale=1.0, dtype=np.float64)``: the standard initialization
  (weights N(0, 1) / sqrt(fan_in), times sqrt(2) before a relu; biases zero),
  with every weight multiplied by ``scale`` by plain arithmetic, so the init
  scale can be a hyperparameter with a tangent attached.  ``dtype`` is
  float32 or float64 (anything else raises ValueError).
* ``apply(params, x)``: logits.
* ``loss(params, x, y, label_smoothing=0.0)``: mean softmax cross-entropy
  against integer labels (`autodiff.nn.softmax_cross_entropy`).
* ``accuracy(params, x, y)``: a Python float, computed on primal values.
* ``n_params(params)``: the number of scalars in params.
"""
from __future__ import annotations

import inspect
import math
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from autodiff import nn
from autodiff.core import primal_value
from autodiff.tree import tree_leaves

from ._checks import float_dtype

__all__ = ["Model", "ModelInfo", "check_model", "Classifier", "LogisticRegression", "MLP", "CNN",
           "CharLSTM", "get_model", "MODELS"]


@runtime_checkable
class Model(Protocol):
    """What `hyperopt.hypergrad.Setup` needs of a model: ``init`` and ``loss``.

    Any object with these two methods is a model (no base class needed;
    ``isinstance(obj, Model)`` checks that both exist).  Optional parts
    (detected by `check_model`): a ``label_smoothing`` parameter of ``loss``,
    ``accuracy(params, x, y)``, ``apply(params, x)``.  See the module
    docstring for the details and a minimal example.
    """

    def init(self, seed: int, scale: Any = 1.0, dtype: Any = np.float64) -> Any:
        """The initial parameters (a pytree of float arrays of ``dtype``), with the
        standard initialization multiplied by ``scale`` by plain arithmetic (it
        may be a Dual)."""
        ...

    def loss(self, params: Any, x: Any, y: Any) -> Any:
        """The mean loss on the batch ``(x, y)``: one number, differentiable in
        ``params`` (numpy code on the parameters)."""
        ...


class ModelInfo(NamedTuple):
    """What `check_model` found out about a model."""
    name: str                    # the model's class name, for messages
    init_seed: str               # how init takes the seed: "keyword" (seed=...) or "positional"
    label_smoothing: str | None  # how loss takes it: "keyword", "positional", or None (it does not)
    init_scale: bool             # init takes ``scale``
    init_dtype: bool             # init takes ``dtype``
    accuracy: bool               # has accuracy(params, x, y)
    apply: bool                  # has apply(params, x) (logits; needed for example_weights)


PROTOCOL = ("the hyperopt.models.Model protocol: init(seed, scale=1.0, dtype=np.float64) -> "
            "params (a pytree), loss(params, x, y) -> one number; optional: a label_smoothing "
            "parameter of loss, accuracy(params, x, y), apply(params, x)")


def _signature(fn):
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):   # some builtins and C callables have none
        return None


def _binds(sig, *args, **kwargs) -> bool:
    if sig is None:
        return True
    try:
        sig.bind(*args, **kwargs)
        return True
    except TypeError:
        return False


def _implemented(model, name: str) -> bool:
    """Whether ``model.name`` is a callable other than the protocol's own stub (a class
    that subclasses `Model` explicitly inherits the stubs)."""
    fn = getattr(model, name, None)
    if not callable(fn):
        return False
    stub = getattr(Model, name, None)
    return stub is None or getattr(fn, "__func__", fn) is not stub


def check_model(model) -> ModelInfo:
    """Check ``model`` against the `Model` protocol and detect its optional parts.

    Raises TypeError naming the missing method (``init`` or ``loss``), or the
    one whose signature cannot take the protocol's arguments (init(seed),
    loss(params, x, y)).  ``loss`` takes ``label_smoothing`` if it has a
    parameter of that name, ``*args`` or ``**kwargs``; ``init`` takes
    ``scale`` / ``dtype`` if it has a parameter of that name or ``**kwargs``.
    A signature that cannot be inspected is taken to follow the protocol in
    full.
    """
    name = type(model).__name__
    for method in ("init", "loss"):
        if not _implemented(model, method):
            what = "has no" if getattr(model, method, None) is None else "does not implement the"
            hint = ("; for the softmax cross-entropy and accuracy of apply(params, x)'s logits, "
                    "subclass hyperopt.models.Classifier" if method == "loss"
                    and _implemented(model, "apply") else "")
            raise TypeError(f"{name} {what} {method}() method; a model must follow {PROTOCOL}"
                            + hint)
    init_sig, loss_sig = _signature(model.init), _signature(model.loss)
    # scale and dtype are passed whenever init names them, so they need no defaults
    passed = {k: None for k in ("scale", "dtype") if init_sig is not None and k in init_sig.parameters}
    seed_kw = init_sig is None or _binds(init_sig, seed=0, **passed)
    for method, sig, ok in (("init", init_sig, seed_kw or _binds(init_sig, 0, **passed)),
                            ("loss", loss_sig, _binds(loss_sig, None, None, None))):
        if not ok:
            raise TypeError(f"{name}.{method}{sig} cannot be called as {method}("
                            f"{'seed' if method == 'init' else 'params, x, y'}); "
                            f"a model must follow {PROTOCOL}")

    def takes(sig, arg: str, var_positional: bool) -> str | None:
        if sig is None:
            return "keyword" if arg != "label_smoothing" else "positional"
        ps = sig.parameters
        if arg in ps and ps[arg].kind is not inspect.Parameter.VAR_POSITIONAL \
                and ps[arg].kind is not inspect.Parameter.VAR_KEYWORD:
            return "positional" if ps[arg].kind is inspect.Parameter.POSITIONAL_ONLY else "keyword"
        kinds = {p.kind for p in ps.values()}
        if var_positional and inspect.Parameter.VAR_POSITIONAL in kinds:
            return "positional"
        if inspect.Parameter.VAR_KEYWORD in kinds:
            return "keyword"
        return None

    smoothing = takes(loss_sig, "label_smoothing", True)
    if smoothing == "positional" and loss_sig is not None:
        # passed 4th (params, x, y, label_smoothing): it must land in *args or in a
        # positional-only parameter named label_smoothing, not in another parameter
        positional = [p.name for p in loss_sig.parameters.values()
                      if p.kind in (inspect.Parameter.POSITIONAL_ONLY,
                                    inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        if len(positional) > 3 and positional[3] != "label_smoothing":
            smoothing = None
    return ModelInfo(name, "keyword" if seed_kw else "positional", smoothing,
                     takes(init_sig, "scale", False) is not None,
                     takes(init_sig, "dtype", False) is not None,
                     _implemented(model, "accuracy"), _implemented(model, "apply"))


def _weight(rng, shape, fan_in, dtype, scale, gain=1.0):
    """N(0, 1) * gain / sqrt(fan_in) in ``dtype``, times ``scale`` (plain arithmetic).

    A float64 scale that is a numpy scalar or 0-d array (or a Dual of one) would
    promote float32 weights; the product is cast back, differentiably."""
    w = (rng.standard_normal(shape) * (gain / math.sqrt(fan_in))).astype(dtype)
    w = w * scale
    return w if np.result_type(primal_value(w)) == dtype else w.astype(dtype)


def _dtype_of(params) -> np.dtype:
    return np.result_type(primal_value(tree_leaves(params)[0]))


class Classifier(Model):
    """The base of the built-in models (a `Model` with the optional parts):
    subclasses define ``name``, ``init`` and ``apply`` (logits); ``loss`` is the
    softmax cross-entropy with label smoothing and ``accuracy`` the argmax
    accuracy, both of ``apply``'s logits."""

    name: str = "model"

    def init(self, seed: int = 0, scale=1.0, dtype=np.float64) -> dict:
        raise NotImplementedError(f"{type(self).__name__} must define init")

    def apply(self, params: dict, x):
        raise NotImplementedError(f"{type(self).__name__} must define apply")

    def loss(self, params: dict, x, y, label_smoothing=0.0):
        return nn.softmax_cross_entropy(self.apply(params, x), y, label_smoothing)

    def accuracy(self, params: dict, x, y) -> float:
        logits = primal_value(self.apply(params, x))
        y = np.asarray(primal_value(y))
        return float(np.mean(np.argmax(logits, axis=-1) == y))

    @staticmethod
    def n_params(params: dict) -> int:
        return int(sum(np.size(primal_value(p)) for p in tree_leaves(params)))

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class LogisticRegression(Classifier):
    """Multinomial logistic regression: x (N, n_in) -> logits (N, n_classes).
    params: "w" (n_in, n_classes), "b" (n_classes,)."""

    name = "logreg"

    def __init__(self, n_in: int = 64, n_classes: int = 10):
        self.n_in, self.n_classes = n_in, n_classes

    def init(self, seed: int = 0, scale=1.0, dtype=np.float64) -> dict:
        dtype = float_dtype(dtype, f"{type(self).__name__}.init: dtype")
        rng = np.random.default_rng(seed)
        return {"w": _weight(rng, (self.n_in, self.n_classes), self.n_in, dtype, scale),
                "b": np.zeros(self.n_classes, dtype)}

    def apply(self, params, x):
        return nn.linear(x, params["w"], params["b"])


_ACTIVATIONS = {"tanh": (nn.tanh, 1.0), "relu": (nn.relu, math.sqrt(2.0))}  # (function, init gain)


class MLP(Classifier):
    """Fully connected net: x (N, sizes[0]) -> logits (N, sizes[-1]), ``activation``
    ("tanh" or "relu") between layers.  params: "w0", "b0", "w1", "b1", ...
    with "wi" of shape (sizes[i], sizes[i+1])."""

    name = "mlp"

    def __init__(self, sizes=(64, 128, 10), activation: str = "tanh"):
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"MLP: sizes needs at least two positive sizes, got {sizes}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"MLP: activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        self.sizes, self.activation = sizes, activation

    def init(self, seed: int = 0, scale=1.0, dtype=np.float64) -> dict:
        dtype = float_dtype(dtype, f"{type(self).__name__}.init: dtype")
        rng = np.random.default_rng(seed)
        gain = _ACTIVATIONS[self.activation][1]
        params = {}
        for i, (m, n) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            params[f"w{i}"] = _weight(rng, (m, n), m, dtype, scale, gain if i > 0 else 1.0)
            params[f"b{i}"] = np.zeros(n, dtype)
        return params

    def apply(self, params, x):
        act = _ACTIVATIONS[self.activation][0]
        n = len(self.sizes) - 1
        for i in range(n):
            x = nn.linear(x, params[f"w{i}"], params[f"b{i}"])
            if i < n - 1:
                x = act(x)
        return x


class CNN(Classifier):
    """conv (kernel x kernel, ``channels`` filters, same padding) -> relu -> max pool
    ``pool`` -> linear to ``n_classes``, for images of shape ``in_shape`` (C, H, W)
    (default one-channel 8x8 digits).  x is (N, C, H, W), or (N, C*H*W) flat.
    params: "conv_w" (channels, C, kernel, kernel), "conv_b" (channels,),
    "w" (channels * H//pool * W//pool, n_classes), "b" (n_classes,)."""

    name = "cnn"

    def __init__(self, in_shape=(1, 8, 8), channels: int = 8, kernel: int = 3, pool: int = 2,
                 n_classes: int = 10):
        if kernel % 2 != 1:
            raise ValueError(f"CNN: kernel must be odd (same padding), got {kernel}")
        self.in_shape, self.channels, self.kernel = tuple(in_shape), channels, kernel
        self.pool, self.n_classes = pool, n_classes
        C, H, W = self.in_shape
        self._n_flat = channels * (H // pool) * (W // pool)

    def init(self, seed: int = 0, scale=1.0, dtype=np.float64) -> dict:
        dtype = float_dtype(dtype, f"{type(self).__name__}.init: dtype")
        rng = np.random.default_rng(seed)
        C, k = self.in_shape[0], self.kernel
        return {"conv_w": _weight(rng, (self.channels, C, k, k), C * k * k, dtype, scale),
                "conv_b": np.zeros(self.channels, dtype),
                "w": _weight(rng, (self._n_flat, self.n_classes), self._n_flat, dtype, scale, math.sqrt(2.0)),
                "b": np.zeros(self.n_classes, dtype)}

    def apply(self, params, x):
        if np.ndim(x) == 2:
            x = np.reshape(x, (np.shape(x)[0],) + self.in_shape)
        if tuple(np.shape(x)[1:]) != self.in_shape:
            raise ValueError(f"CNN: expected x of shape (N, {', '.join(map(str, self.in_shape))}), "
                             f"got {np.shape(x)}")
        h = nn.conv2d(x, params["conv_w"], params["conv_b"], padding=self.kernel // 2)
        h = nn.max_pool2d(nn.relu(h), self.pool)
        h = np.reshape(h, (np.shape(h)[0], -1))
        return nn.linear(h, params["w"], params["b"])


class CharLSTM(Classifier):
    """Character-level LSTM language model: x int ids (B, T) -> logits (B, T, vocab_size),
    by unrolling `autodiff.nn.lstm_cell` from zero states; ``loss(params, x, y)``
    is the mean cross-entropy over all B*T positions, y (B, T) the next characters.
    params: "embed" (vocab_size, embed), "wx" (embed, 4 hidden), "wh" (hidden,
    4 hidden), "b" (4 hidden,) (gates i, f, g, o), "w_out" (hidden, vocab_size),
    "b_out" (vocab_size,)."""

    name = "lstm"

    def __init__(self, vocab_size: int, embed: int = 16, hidden: int = 64):
        self.vocab_size, self.embed, self.hidden = vocab_size, embed, hidden

    def init(self, seed: int = 0, scale=1.0, dtype=np.float64) -> dict:
        dtype = float_dtype(dtype, f"{type(self).__name__}.init: dtype")
        rng = np.random.default_rng(seed)
        V, E, H = self.vocab_size, self.embed, self.hidden
        return {"embed": _weight(rng, (V, E), 1, dtype, scale),
                "wx": _weight(rng, (E, 4 * H), E, dtype, scale),
                "wh": _weight(rng, (H, 4 * H), H, dtype, scale),
                "b": np.zeros(4 * H, dtype),
                "w_out": _weight(rng, (H, V), H, dtype, scale),
                "b_out": np.zeros(V, dtype)}

    def apply(self, params, x):
        x = primal_value(x)
        x = x if hasattr(x, "ndim") else np.asarray(x)
        if x.ndim != 2:
            raise ValueError(f"CharLSTM: x must be integer ids of shape (B, T), got shape {x.shape}")
        emb = nn.embedding(x, params["embed"])  # (B, T, E)
        B, T = x.shape
        h = c = np.zeros((B, self.hidden), _dtype_of(params))
        cell = {k: params[k] for k in ("wx", "wh", "b")}
        hs = []
        for t in range(T):
            h, c = nn.lstm_cell(emb[:, t], h, c, cell)
            hs.append(h)
        return nn.linear(np.stack(hs, axis=1), params["w_out"], params["b_out"])


MODELS = {"logreg": LogisticRegression, "mlp": MLP, "cnn": CNN, "lstm": CharLSTM}


def get_model(name: str, **kwargs) -> Classifier:
    """A model by registry name ("logreg", "mlp", "cnn", "lstm"), built with ``kwargs``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    return MODELS[name](**kwargs)
