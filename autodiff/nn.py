"""Neural-network layers as pure functions written in plain numpy.

Every function here is ordinary numpy code (``x @ w``, ``np.pad``, strided
slicing, ``np.einsum``, ``np.maximum``, reductions), so it runs unchanged on
ndarrays, `Dual` values, tape values and any nesting of them, and it keeps
float32 inputs float32.  Nothing here has its own derivative rule: the layers
are composites of the primitives, differentiated like any user code.

Shapes follow the usual conventions: dense layers take ``(..., in)`` and
weights ``(in, out)``; images are ``(N, C, H, W)`` and convolution kernels
``(O, C, kh, kw)`` (cross-correlation, as in torch and every deep-learning
library); recurrent cells take ``(B, in)`` inputs and ``(B, H)`` states.

Recurrent cell parameters (dicts of arrays):

* `lstm_cell`: ``"wx"`` (in, 4H), ``"wh"`` (H, 4H), ``"b"`` (4H,); the four
  blocks of 4H are the gates in the order input, forget, cell, output
  (i, f, g, o), as in torch.
* `gru_cell`: ``"wx"`` (in, 3H), ``"wh"`` (H, 3H), ``"bx"`` (3H,), ``"bh"``
  (3H,); the three blocks are reset, update, new (r, z, n), as in torch.
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from . import ops
from .core import primal_value

__all__ = ["linear", "conv2d", "max_pool2d", "avg_pool2d", "relu", "tanh", "sigmoid", "softplus",
           "layer_norm", "embedding", "lstm_cell", "gru_cell", "softmax_cross_entropy", "mse"]

Array = Any  # an ndarray, a Dual or a tape value


# -- helpers ------------------------------------------------------------------------------
def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _pair(v, name: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= minimum, as a pair of Python ints."""
    pair = (v, v) if _is_int(v) else tuple(v) if isinstance(v, (tuple, list)) else None
    if pair is None or len(pair) != 2 or not all(_is_int(p) for p in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    if any(p < minimum for p in pair):
        raise ValueError(f"{name} must be >= {minimum}, got {v!r}")
    return int(pair[0]), int(pair[1])


def _check_ndim(x, ndim: int, name: str, what: str):
    if np.ndim(x) != ndim:
        raise ValueError(f"{name} must be {ndim}-D {what}, got shape {np.shape(x)}")


def _windows(x, kernel, stride, fname):
    """The kh*kw strided views of x (N, C, H, W) that a kernel position reads:
    a list of (N, C, Ho, Wo) arrays, row-major over the kernel positions."""
    (kh, kw), (sh, sw) = kernel, stride
    H, W = x.shape[2], x.shape[3]
    if kh > H or kw > W:
        raise ValueError(f"{fname}: kernel {kernel} is larger than the (padded) input {(H, W)}")
    ho, wo = (H - kh) // sh + 1, (W - kw) // sw + 1
    return [x[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
            for i in range(kh) for j in range(kw)]


# -- dense and convolutional layers ----------------------------------------------------------
def linear(x: Array, w: Array, b: Array | None = None) -> Array:
    """``x @ w + b`` for x of shape (..., in), w of shape (in, out), b of shape (out,)."""
    if np.ndim(w) != 2:
        raise ValueError(f"linear: w must be 2-D (in, out), got shape {np.shape(w)}")
    if np.ndim(x) < 1 or np.shape(x)[-1] != np.shape(w)[0]:
        raise ValueError(f"linear: x of shape {np.shape(x)} does not match w of shape {np.shape(w)} "
                         f"(x's last axis must equal w's first)")
    y = x @ w
    if b is not None:
        if np.shape(b) != (np.shape(w)[1],):
            raise ValueError(f"linear: b must have shape {(np.shape(w)[1],)}, got {np.shape(b)}")
        y = y + b
    return y


def conv2d(x: Array, w: Array, b: Array | None = None, stride=1, padding=0) -> Array:
    """2-D cross-correlation: x (N, C, H, W), w (O, C, kh, kw), b (O,) -> (N, O, Ho, Wo).

    ``stride`` and ``padding`` are ints or (height, width) pairs; padding is
    with zeros; Ho = (H + 2 ph - kh) // sh + 1.  Built as im2col: the kh*kw
    strided views of the padded input are stacked and contracted with the
    kernel in one einsum.
    """
    _check_ndim(x, 4, "conv2d: x", "(N, C, H, W)")
    _check_ndim(w, 4, "conv2d: w", "(O, C, kh, kw)")
    stride = _pair(stride, "conv2d: stride", 1)
    ph, pw = _pair(padding, "conv2d: padding", 0)
    O, C, kh, kw = w.shape
    if x.shape[1] != C:
        raise ValueError(f"conv2d: x has {x.shape[1]} channels but w expects {C} "
                         f"(x shape {x.shape}, w shape {w.shape})")
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.stack(_windows(x, (kh, kw), stride, "conv2d"), axis=2)  # (N, C, kh*kw, Ho, Wo)
    y = np.einsum("ncphw,ocp->nohw", cols, np.reshape(w, (O, C, kh * kw)))
    if b is not None:
        if np.shape(b) != (O,):
            raise ValueError(f"conv2d: b must have shape {(O,)}, got {np.shape(b)}")
        y = y + np.reshape(b, (1, O, 1, 1))
    return y


def _pool(x, kernel, stride, fname):
    _check_ndim(x, 4, f"{fname}: x", "(N, C, H, W)")
    kernel = _pair(kernel, f"{fname}: kernel", 1)
    stride = kernel if stride is None else _pair(stride, f"{fname}: stride", 1)
    return np.stack(_windows(x, kernel, stride, fname), axis=0)  # (kh*kw, N, C, Ho, Wo)


def max_pool2d(x: Array, kernel, stride=None) -> Array:
    """Max over kernel windows of x (N, C, H, W); stride defaults to kernel, no padding
    (trailing rows/columns that do not fill a window are dropped).  Tied maxima
    share the derivative equally."""
    return np.max(_pool(x, kernel, stride, "max_pool2d"), axis=0)


def avg_pool2d(x: Array, kernel, stride=None) -> Array:
    """Mean over kernel windows of x (N, C, H, W); stride defaults to kernel, no padding."""
    return np.mean(_pool(x, kernel, stride, "avg_pool2d"), axis=0)


# -- activations ---------------------------------------------------------------------------------
def relu(x: Array) -> Array:
    """max(x, 0); its derivative at exactly 0 is 1/2 (maximum splits ties)."""
    return np.maximum(x, 0.0)


def tanh(x: Array) -> Array:
    return np.tanh(x)


def sigmoid(x: Array) -> Array:
    return ops.sigmoid(x)


def softplus(x: Array) -> Array:
    return ops.softplus(x)


# -- normalization and lookup ------------------------------------------------------------------
def layer_norm(x: Array, gamma: Array | None = None, beta: Array | None = None, eps: float = 1e-5,
               axis=-1) -> Array:
    """(x - mean) / sqrt(var + eps) * gamma + beta, statistics over ``axis`` (int or tuple).

    gamma and beta broadcast against x (usually the shape of the normalized axes)."""
    axes = ops.normalize_axes(axis, np.ndim(x))
    mu = np.mean(x, axis=axes, keepdims=True)
    d = x - mu
    var = np.mean(d * d, axis=axes, keepdims=True)
    y = d / np.sqrt(var + eps)
    for name, p in (("gamma", gamma), ("beta", beta)):
        if p is not None:
            try:
                np.broadcast_shapes(np.shape(p), np.shape(x))
            except ValueError:
                raise ValueError(f"layer_norm: {name} of shape {np.shape(p)} does not broadcast "
                                 f"against x of shape {np.shape(x)}") from None
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return y


def _int_ids(ids, n: int, fname: str) -> np.ndarray:
    ids = primal_value(ids)
    ids = ids if hasattr(ids, "dtype") else np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{fname}: ids must be integers, got dtype {ids.dtype}")
    # the range check reads values, so it runs on numpy arrays only (not while autodiff.jit
    # records, where an id past the end still fails in the indexing itself)
    if isinstance(ids, np.ndarray) and ids.size and (ids.min() < 0 or ids.max() >= n):
        raise ValueError(f"{fname}: ids must lie in [0, {n}), got values in [{ids.min()}, {ids.max()}]")
    return ids


def embedding(ids, table: Array) -> Array:
    """Rows of ``table`` (V, E) picked by integer ``ids`` of any shape -> ids.shape + (E,)."""
    _check_ndim(table, 2, "embedding: table", "(vocab, dim)")
    return table[_int_ids(ids, table.shape[0], "embedding")]


# -- recurrent cells ---------------------------------------------------------------------------------
def _cell_params(params, keys, fname, n_gates, x, h):
    missing = [k for k in keys if k not in params]
    if missing:
        raise ValueError(f"{fname}: params is missing {missing} (needs {list(keys)})")
    H = np.shape(h)[-1]
    wx, wh = params["wx"], params["wh"]
    if np.shape(wh) != (H, n_gates * H):
        raise ValueError(f"{fname}: wh must have shape {(H, n_gates * H)} for hidden size {H}, "
                         f"got {np.shape(wh)}")
    if np.ndim(wx) != 2 or np.shape(wx)[1] != n_gates * H or np.shape(x)[-1] != np.shape(wx)[0]:
        raise ValueError(f"{fname}: wx must have shape {(np.shape(x)[-1], n_gates * H)}, got {np.shape(wx)}")
    return H


def lstm_cell(x: Array, h: Array, c: Array, params: dict) -> tuple[Array, Array]:
    """One LSTM step.  x (B, in), h and c (B, H); params "wx" (in, 4H), "wh" (H, 4H), "b" (4H,).

    Gates (i, f, g, o) = split(x @ wx + h @ wh + b); i, f, o are sigmoids and g
    a tanh; c' = f c + i g and h' = o tanh(c').  Returns (h', c')."""
    H = _cell_params(params, ("wx", "wh", "b"), "lstm_cell", 4, x, h)
    z = x @ params["wx"] + h @ params["wh"] + params["b"]
    i, f, g, o = (z[..., k * H:(k + 1) * H] for k in range(4))
    c = ops.sigmoid(f) * c + ops.sigmoid(i) * np.tanh(g)
    return ops.sigmoid(o) * np.tanh(c), c


def gru_cell(x: Array, h: Array, params: dict) -> Array:
    """One GRU step (torch's equations).  x (B, in), h (B, H); params "wx" (in, 3H),
    "wh" (H, 3H), "bx" (3H,), "bh" (3H,), blocks in the order (r, z, n):

        r = sigmoid(x Wr + bxr + h Ur + bhr)
        z = sigmoid(x Wz + bxz + h Uz + bhz)
        n = tanh(x Wn + bxn + r * (h Un + bhn))
        h' = (1 - z) * n + z * h
    """
    H = _cell_params(params, ("wx", "wh", "bx", "bh"), "gru_cell", 3, x, h)
    gx = x @ params["wx"] + params["bx"]
    gh = h @ params["wh"] + params["bh"]
    part = lambda a, k: a[..., k * H:(k + 1) * H]
    r = ops.sigmoid(part(gx, 0) + part(gh, 0))
    z = ops.sigmoid(part(gx, 1) + part(gh, 1))
    n = np.tanh(part(gx, 2) + r * part(gh, 2))
    return (1.0 - z) * n + z * h


# -- losses -------------------------------------------------------------------------------------------------
def _is_plain_number(v) -> bool:
    return isinstance(v, numbers.Real) or (isinstance(v, np.ndarray) and v.ndim == 0)


def softmax_cross_entropy(logits: Array, labels, label_smoothing=0.0, axis: int = -1) -> Array:
    """Mean cross-entropy between softmax(logits) along ``axis`` and the labels.

    ``labels`` are integer class ids of logits' shape without ``axis``, or
    probabilities (one-hot or soft) of logits' shape.  With label smoothing s
    the target is (1 - s) * labels + s / K; s may be a Dual or tape value (it
    is differentiated like any input) and is checked to lie in [0, 1) when it
    is a plain number.  The mean is over every position but the class axis.
    """
    if _is_plain_number(label_smoothing):
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"softmax_cross_entropy: label_smoothing must be in [0, 1), got {label_smoothing!r}")
        label_smoothing = float(label_smoothing)  # weakly typed: float32 logits stay float32
    elif getattr(label_smoothing, "ndim", None) != 0:  # a traced (Dual, tape, jit-recorded) scalar passes
        raise ValueError(f"softmax_cross_entropy: label_smoothing must be a scalar, got {label_smoothing!r}")
    if np.ndim(logits) < 1:
        raise ValueError("softmax_cross_entropy: logits must have a class axis")
    ax = ops.normalize_axes(axis, np.ndim(logits))[0]
    K = np.shape(logits)[ax]
    logp = ops.log_softmax(logits, axis=ax)
    smoothing_off = isinstance(label_smoothing, float) and label_smoothing == 0.0

    label_dtype = getattr(labels, "dtype", None)
    if label_dtype is None:
        labels = np.asarray(labels)
        label_dtype = labels.dtype
    if np.issubdtype(label_dtype, np.integer):
        ids = _int_ids(labels, K, "softmax_cross_entropy")
        expected = np.shape(logits)[:ax] + np.shape(logits)[ax + 1:]
        if ids.shape != expected:
            raise ValueError(f"softmax_cross_entropy: integer labels must have shape {expected} "
                             f"(logits {np.shape(logits)} without axis {ax}), got {ids.shape}")
        picked = np.squeeze(np.take_along_axis(logp, np.expand_dims(ids, ax), axis=ax), axis=ax)
        per_position = -picked
        if not smoothing_off:
            uniform = -np.mean(logp, axis=ax)
            per_position = (1.0 - label_smoothing) * per_position + label_smoothing * uniform
    else:
        if np.shape(labels) != np.shape(logits):
            raise ValueError(f"softmax_cross_entropy: probability labels must have logits' shape "
                             f"{np.shape(logits)}, got {np.shape(labels)}")
        target = labels if smoothing_off else (1.0 - label_smoothing) * labels + label_smoothing / K
        per_position = -np.sum(target * logp, axis=ax)
    return np.mean(per_position)


def mse(pred: Array, target: Array) -> Array:
    """Mean squared error over every element; shapes must match."""
    if np.shape(pred) != np.shape(target):
        raise ValueError(f"mse: pred of shape {np.shape(pred)} and target of shape {np.shape(target)} differ")
    d = pred - target
    return np.mean(d * d)
