"""Small models with one interface, for hyperparameter-optimization experiments.

Each model is a stateless object holding its architecture; parameters are a
dict of arrays (a pytree), so `autodiff.grad` differentiates them and the
optimizers in `hyperopt.optim` update them.

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

import math

import numpy as np

from autodiff import nn
from autodiff.core import primal_value
from autodiff.tree import tree_leaves

from ._checks import float_dtype

__all__ = ["Model", "LogisticRegression", "MLP", "CNN", "CharLSTM", "get_model", "MODELS"]


def _weight(rng, shape, fan_in, dtype, scale, gain=1.0):
    """N(0, 1) * gain / sqrt(fan_in) in ``dtype``, times ``scale`` (plain arithmetic).

    A float64 scale that is a numpy scalar or 0-d array (or a Dual of one) would
    promote float32 weights; the product is cast back, differentiably."""
    w = (rng.standard_normal(shape) * (gain / math.sqrt(fan_in))).astype(dtype)
    w = w * scale
    return w if np.result_type(primal_value(w)) == dtype else w.astype(dtype)


def _dtype_of(params) -> np.dtype:
    return np.result_type(primal_value(tree_leaves(params)[0]))


class Model:
    """The common interface; subclasses define ``name``, ``init`` and ``apply``."""

    name: str = "model"

    def init(self, seed: int = 0, scale=1.0, dtype=np.float64) -> dict:
        raise NotImplementedError

    def apply(self, params: dict, x):
        raise NotImplementedError

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


class LogisticRegression(Model):
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


class MLP(Model):
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


class CNN(Model):
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


class CharLSTM(Model):
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


def get_model(name: str, **kwargs) -> Model:
    """A model by registry name ("logreg", "mlp", "cnn", "lstm"), built with ``kwargs``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    return MODELS[name](**kwargs)
