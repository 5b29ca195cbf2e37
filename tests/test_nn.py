"""autodiff.nn: values against plain-numpy references written out independently
(nested loops for convolution and pooling, the gate equations for the
recurrent cells), derivatives with check_grads wrt every differentiable
argument, dtype preservation and input validation."""
import itertools

import numpy as np
import pytest

from autodiff import check_grads, dual, grad, jvp, nn


def rand(*shape):
    return np.random.standard_normal(shape)


def away_from_zero(*shape):
    """Random values with |x| >= 0.2, so relu's kink is never within a finite-difference step."""
    return np.sign(rand(*shape)) * (0.2 + np.random.random_sample(shape))


def distinct(*shape):
    """Random values whose pairwise gaps are at least 0.1 (pooling maxima have no near-ties)."""
    n = int(np.prod(shape))
    return (np.random.permutation(n) * 0.1 - 0.05 * n).reshape(shape) + 0.01 * np.random.random_sample(shape)


# -- references ---------------------------------------------------------------------------
def conv2d_ref(x, w, b, stride, padding):
    (sh, sw), (ph, pw) = stride, padding
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
    xp[:, :, ph:ph + H, pw:pw + W] = x
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    out = np.zeros((N, O, Ho, Wo))
    for n, o, i, j in itertools.product(range(N), range(O), range(Ho), range(Wo)):
        acc = 0.0 if b is None else b[o]
        for c, di, dj in itertools.product(range(C), range(kh), range(kw)):
            acc += xp[n, c, i * sh + di, j * sw + dj] * w[o, c, di, dj]
        out[n, o, i, j] = acc
    return out


def pool_ref(x, kernel, stride, reduce):
    N, C, H, W = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    Ho, Wo = (H - kh) // sh + 1, (W - kw) // sw + 1
    out = np.zeros((N, C, Ho, Wo))
    for n, c, i, j in itertools.product(range(N), range(C), range(Ho), range(Wo)):
        vals = [x[n, c, i * sh + di, j * sw + dj] for di in range(kh) for dj in range(kw)]
        out[n, c, i, j] = reduce(vals)
    return out


def sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def lstm_ref(x, h, c, p):
    H = h.shape[1]
    blocks = [(p["wx"][:, k * H:(k + 1) * H], p["wh"][:, k * H:(k + 1) * H], p["b"][k * H:(k + 1) * H])
              for k in range(4)]
    i, f, g, o = [x.dot(wx) + h.dot(wh) + b for wx, wh, b in blocks]
    c_new = sig(f) * c + sig(i) * np.tanh(g)
    return sig(o) * np.tanh(c_new), c_new


def gru_ref(x, h, p):
    H = h.shape[1]
    W = [p["wx"][:, k * H:(k + 1) * H] for k in range(3)]
    U = [p["wh"][:, k * H:(k + 1) * H] for k in range(3)]
    bx = [p["bx"][k * H:(k + 1) * H] for k in range(3)]
    bh = [p["bh"][k * H:(k + 1) * H] for k in range(3)]
    r = sig(x.dot(W[0]) + bx[0] + h.dot(U[0]) + bh[0])
    z = sig(x.dot(W[1]) + bx[1] + h.dot(U[1]) + bh[1])
    n = np.tanh(x.dot(W[2]) + bx[2] + r * (h.dot(U[2]) + bh[2]))
    return (1 - z) * n + z * h


def cross_entropy_ref(logits2d, target2d):
    """Mean over rows of -sum_k target[k] log softmax(logits)[k], row by row."""
    total = 0.0
    for row, t in zip(logits2d, target2d):
        p = np.exp(row) / np.sum(np.exp(row))
        total += -sum(tk * np.log(pk) for tk, pk in zip(t, p))
    return total / len(logits2d)


def lstm_params(n_in, H):
    return {"wx": rand(n_in, 4 * H) * 0.5, "wh": rand(H, 4 * H) * 0.5, "b": rand(4 * H) * 0.5}


def gru_params(n_in, H):
    return {"wx": rand(n_in, 3 * H) * 0.5, "wh": rand(H, 3 * H) * 0.5, "bx": rand(3 * H) * 0.5,
            "bh": rand(3 * H) * 0.5}


# -- linear -------------------------------------------------------------------------------------
def test_linear_value_and_grads():
    x, w, b = rand(2, 3, 4), rand(4, 5), rand(5)
    ref = np.array([[[sum(x[i, j, k] * w[k, m] for k in range(4)) + b[m] for m in range(5)]
                     for j in range(3)] for i in range(2)])
    np.testing.assert_allclose(nn.linear(x, w, b), ref, rtol=1e-12)
    np.testing.assert_allclose(nn.linear(x, w), ref - b, rtol=1e-12, atol=1e-12)
    check_grads(nn.linear, (x, w, b), order=2)


# -- conv2d ----------------------------------------------------------------------------------------
CONV_CASES = [  # x shape, w shape, stride, padding
    ((2, 3, 5, 5), (4, 3, 3, 3), 1, 0),
    ((1, 2, 6, 7), (3, 2, 3, 2), 2, 1),
    ((2, 1, 7, 6), (2, 1, 2, 3), (2, 1), (1, 2)),
    ((1, 2, 4, 4), (2, 2, 1, 1), 1, 0),
    ((1, 1, 5, 5), (1, 1, 5, 5), 3, 0),
]


@pytest.mark.parametrize("xs, ws, stride, padding", CONV_CASES)
def test_conv2d_matches_loop_reference(xs, ws, stride, padding):
    x, w, b = rand(*xs), rand(*ws), rand(ws[0])
    pair = lambda v: (v, v) if isinstance(v, int) else v
    ref = conv2d_ref(x, w, b, pair(stride), pair(padding))
    out = nn.conv2d(x, w, b, stride=stride, padding=padding)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(nn.conv2d(x, w, stride=stride, padding=padding),
                               conv2d_ref(x, w, None, pair(stride), pair(padding)), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("xs, ws, stride, padding", CONV_CASES[:3])
def test_conv2d_grads(xs, ws, stride, padding):
    x, w, b = rand(*xs), rand(*ws), rand(ws[0])
    check_grads(lambda x, w, b: nn.conv2d(x, w, b, stride=stride, padding=padding), (x, w, b))


def test_conv2d_second_order():
    x, w = rand(1, 2, 4, 4), rand(2, 2, 2, 2)
    check_grads(lambda x, w: np.sum(np.tanh(nn.conv2d(x, w, padding=1))), (x, w), order=2)


# -- pooling ---------------------------------------------------------------------------------------
POOL_CASES = [((2, 2, 4, 4), 2, None), ((1, 3, 5, 7), (2, 3), None), ((1, 2, 5, 5), 3, 1),
              ((2, 1, 6, 5), (3, 2), (2, 1))]


@pytest.mark.parametrize("xs, kernel, stride", POOL_CASES)
def test_pooling_matches_loop_reference(xs, kernel, stride):
    x = distinct(*xs)
    pair = lambda v: (v, v) if isinstance(v, int) else v
    k = pair(kernel)
    s = k if stride is None else pair(stride)
    np.testing.assert_allclose(nn.max_pool2d(x, kernel, stride), pool_ref(x, k, s, max), rtol=1e-14)
    np.testing.assert_allclose(nn.avg_pool2d(x, kernel, stride),
                               pool_ref(x, k, s, lambda v: sum(v) / len(v)), rtol=1e-12)


@pytest.mark.parametrize("xs, kernel, stride", POOL_CASES)
def test_pooling_grads(xs, kernel, stride):
    x = distinct(*xs)
    check_grads(lambda x: nn.max_pool2d(x, kernel, stride), (x,))
    check_grads(lambda x: nn.avg_pool2d(x, kernel, stride), (x,))


def test_max_pool_gradient_goes_to_the_maximum():
    x = np.array([[[[1.0, 5.0], [2.0, 3.0]]]])
    g = grad(lambda x: np.sum(nn.max_pool2d(x, 2)))(x)
    np.testing.assert_array_equal(g, [[[[0.0, 1.0], [0.0, 0.0]]]])


# -- activations -------------------------------------------------------------------------------------
def test_activation_values():
    x = rand(3, 4) * 3
    np.testing.assert_array_equal(nn.relu(x), np.where(x > 0, x, 0.0))
    e = np.exp(2 * x)
    np.testing.assert_allclose(nn.tanh(x), (e - 1) / (e + 1), rtol=1e-12)
    np.testing.assert_allclose(nn.sigmoid(x), 1 / (1 + np.exp(-x)), rtol=1e-12)
    np.testing.assert_allclose(nn.softplus(x), np.log(1 + np.exp(x)), rtol=1e-12)
    big = np.array([-800.0, 800.0])
    np.testing.assert_allclose(nn.softplus(big), [0.0, 800.0])
    np.testing.assert_allclose(nn.sigmoid(big), [0.0, 1.0])


@pytest.mark.parametrize("f", [nn.relu, nn.tanh, nn.sigmoid, nn.softplus])
def test_activation_grads(f):
    check_grads(f, (away_from_zero(3, 4),), order=2)


def test_relu_derivative_is_one_on_positives_zero_on_negatives():
    x = np.array([-2.0, -0.5, 0.5, 2.0])
    np.testing.assert_array_equal(grad(lambda x: np.sum(nn.relu(x)))(x), [0.0, 0.0, 1.0, 1.0])


# -- layer norm -------------------------------------------------------------------------------------------
def test_layer_norm_value():
    x, gamma, beta = rand(3, 5), rand(5), rand(5)
    ref = np.empty_like(x)
    for i, row in enumerate(x):
        ref[i] = (row - row.mean()) / np.sqrt(row.var() + 1e-5) * gamma + beta
    np.testing.assert_allclose(nn.layer_norm(x, gamma, beta), ref, rtol=1e-12)
    out = nn.layer_norm(x, eps=0.0)
    np.testing.assert_allclose(out.mean(axis=-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=-1), 1.0, rtol=1e-12)


def test_layer_norm_over_several_axes():
    x = rand(2, 3, 4)
    ref = np.stack([(s - s.mean()) / np.sqrt(s.var() + 1e-3) for s in x])
    np.testing.assert_allclose(nn.layer_norm(x, eps=1e-3, axis=(1, 2)), ref, rtol=1e-12)
    ref0 = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5)
    np.testing.assert_allclose(nn.layer_norm(x, axis=0), ref0, rtol=1e-12)


def test_layer_norm_grads():
    x, gamma, beta = rand(3, 5), rand(5), rand(5)
    check_grads(nn.layer_norm, (x, gamma, beta), order=2)
    check_grads(lambda x, g: nn.layer_norm(x, g, None, 1e-3, (1, 2)), (rand(2, 3, 4), rand(3, 4)))


# -- embedding ------------------------------------------------------------------------------------------------
def test_embedding_value_and_grad():
    table = rand(6, 3)
    ids = np.array([[0, 5, 2], [2, 2, 1]])
    ref = np.array([[table[i] for i in row] for row in ids])
    np.testing.assert_array_equal(nn.embedding(ids, table), ref)
    check_grads(lambda t: nn.embedding(ids, t), (table,))
    g = grad(lambda t: np.sum(nn.embedding(ids, t)))(table)
    np.testing.assert_array_equal(g[:, 0], [1, 1, 3, 0, 0, 1])  # rows counted as often as looked up


# -- recurrent cells ------------------------------------------------------------------------------------------
def test_lstm_cell_value_and_grads():
    x, h, c, p = rand(2, 3), rand(2, 4), rand(2, 4), lstm_params(3, 4)
    h_new, c_new = nn.lstm_cell(x, h, c, p)
    h_ref, c_ref = lstm_ref(x, h, c, p)
    np.testing.assert_allclose(h_new, h_ref, rtol=1e-12)
    np.testing.assert_allclose(c_new, c_ref, rtol=1e-12)
    check_grads(nn.lstm_cell, (x, h, c, p))


def test_lstm_cell_second_order():
    x, h, c, p = rand(2, 2), rand(2, 2), rand(2, 2), lstm_params(2, 2)
    check_grads(lambda *a: nn.lstm_cell(*a)[0], (x, h, c, p), order=2)


def test_gru_cell_value_and_grads():
    x, h, p = rand(2, 3), rand(2, 4), gru_params(3, 4)
    np.testing.assert_allclose(nn.gru_cell(x, h, p), gru_ref(x, h, p), rtol=1e-12)
    check_grads(nn.gru_cell, (x, h, p))


def test_gru_cell_second_order():
    check_grads(nn.gru_cell, (rand(2, 2), rand(2, 2), gru_params(2, 2)), order=2)


# -- losses ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("s", [0.0, 0.1, 0.7])
def test_cross_entropy_integer_labels(s):
    logits, y = rand(5, 4) * 2, np.array([0, 3, 1, 1, 2])
    target = np.array([[(1 - s) * (k == yi) + s / 4 for k in range(4)] for yi in y])
    ref = cross_entropy_ref(logits, target)
    np.testing.assert_allclose(nn.softmax_cross_entropy(logits, y, s), ref, rtol=1e-12)
    np.testing.assert_allclose(nn.softmax_cross_entropy(logits, np.eye(4)[y], s), ref, rtol=1e-12)


def test_cross_entropy_soft_labels_and_leading_axes():
    logits = rand(2, 3, 5)
    probs = np.random.random_sample((2, 3, 5))
    probs /= probs.sum(-1, keepdims=True)
    ref = cross_entropy_ref(logits.reshape(6, 5), probs.reshape(6, 5))
    np.testing.assert_allclose(nn.softmax_cross_entropy(logits, probs), ref, rtol=1e-12)
    ids = np.random.randint(0, 5, (2, 3))
    ref_ids = cross_entropy_ref(logits.reshape(6, 5), np.eye(5)[ids.reshape(6)])
    np.testing.assert_allclose(nn.softmax_cross_entropy(logits, ids), ref_ids, rtol=1e-12)


def test_cross_entropy_class_axis():
    logits, y = rand(4, 3, 2), np.random.randint(0, 4, (3, 2))  # classes on axis 0
    ref = cross_entropy_ref(np.moveaxis(logits, 0, -1).reshape(6, 4), np.eye(4)[y.reshape(6)])
    np.testing.assert_allclose(nn.softmax_cross_entropy(logits, y, axis=0), ref, rtol=1e-12)


def test_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1000.0, 0.0], [0.0, -1000.0]])
    np.testing.assert_allclose(nn.softmax_cross_entropy(logits, np.array([0, 1])), 500.0)


def test_cross_entropy_grads():
    logits, y = rand(4, 3), np.array([2, 0, 1, 1])
    check_grads(lambda l, s: nn.softmax_cross_entropy(l, y, s), (logits, np.array(0.2)), order=2)
    probs = np.random.random_sample((4, 3))
    check_grads(lambda l, p, s: nn.softmax_cross_entropy(l, p, s), (logits, probs, np.array(0.3)))
    check_grads(lambda l: nn.softmax_cross_entropy(l, y, axis=0), (rand(3, 4),))


def test_label_smoothing_as_dual_and_tape_value():
    logits, y = rand(6, 5), np.random.randint(0, 5, 6)
    f = lambda s: nn.softmax_cross_entropy(logits, y, s)
    eps = 1e-6
    fd = (f(0.2 + eps) - f(0.2 - eps)) / (2 * eps)
    val, d = jvp(f, (0.2,), (1.0,))
    np.testing.assert_allclose(val, f(0.2), rtol=1e-14)
    np.testing.assert_allclose(d, fd, rtol=1e-7)
    np.testing.assert_allclose(grad(f)(0.2), fd, rtol=1e-7)
    # the loss is affine in s: its derivative is mean(-mean_k log p) - mean(-log p_y)
    logp = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    np.testing.assert_allclose(d, np.mean(-logp.mean(1)) - np.mean(-logp[np.arange(6), y]), rtol=1e-10)


def test_mse():
    a, b = rand(3, 4), rand(3, 4)
    ref = sum((a[i, j] - b[i, j]) ** 2 for i in range(3) for j in range(4)) / 12
    np.testing.assert_allclose(nn.mse(a, b), ref, rtol=1e-12)
    check_grads(nn.mse, (a, b), order=2)


# -- nesting and dtypes ----------------------------------------------------------------------------------------------------
def test_layers_run_on_duals_with_several_tangents():
    x, w = rand(1, 2, 4, 4), rand(3, 2, 3, 3)
    tangents = rand(2, 3, 2, 3, 3)
    out = nn.conv2d(x, dual(w, tangents), padding=1)
    for k in range(2):  # conv2d is linear in w: each tangent is conv2d(x, tangent)
        np.testing.assert_allclose(out.tangents[k], nn.conv2d(x, tangents[k], padding=1), rtol=1e-12)


def test_float32_stays_float32():
    f32 = lambda *s: rand(*s).astype(np.float32)
    x, w, b = f32(2, 3, 5, 5), f32(4, 3, 3, 3), f32(4)
    ids = np.array([[1, 0], [2, 1]])
    p_l = {k: v.astype(np.float32) for k, v in lstm_params(3, 4).items()}
    p_g = {k: v.astype(np.float32) for k, v in gru_params(3, 4).items()}
    h = f32(2, 4)
    outs = {
        "linear": nn.linear(f32(2, 3), f32(3, 4), f32(4)),
        "conv2d": nn.conv2d(x, w, b, stride=2, padding=1),
        "max_pool2d": nn.max_pool2d(x, 2), "avg_pool2d": nn.avg_pool2d(x, 2),
        "relu": nn.relu(x), "tanh": nn.tanh(x), "sigmoid": nn.sigmoid(x), "softplus": nn.softplus(x),
        "layer_norm": nn.layer_norm(f32(2, 5), f32(5), f32(5)),
        "embedding": nn.embedding(ids, f32(3, 4)),
        "lstm_h": nn.lstm_cell(f32(2, 3), h, h, p_l)[0], "lstm_c": nn.lstm_cell(f32(2, 3), h, h, p_l)[1],
        "gru": nn.gru_cell(f32(2, 3), h, p_g),
        "xent": nn.softmax_cross_entropy(f32(4, 3), np.array([0, 1, 2, 0]), 0.1),
        "xent_probs": nn.softmax_cross_entropy(f32(4, 3), np.eye(3, dtype=np.float32)[[0, 1, 2, 0]], 0.1),
        "mse": nn.mse(f32(3), f32(3)),
    }
    for name, out in outs.items():
        assert np.result_type(out) == np.float32, name
    # also through both modes, with a Python-float label smoothing as the differentiated input
    logits = f32(4, 3)
    loss = lambda l, s: nn.softmax_cross_entropy(nn.layer_norm(l), np.array([0, 1, 2, 0]), s)
    g = grad(loss)(logits, 0.1)
    assert g.dtype == np.float32
    val, t = jvp(loss, (logits, 0.1), (f32(4, 3), 1.0))
    assert np.result_type(val) == np.float32 and np.result_type(t) == np.float32
    gw = grad(lambda w: np.sum(nn.conv2d(x, w, b, padding=1)))(w)
    assert gw.dtype == np.float32


# -- bad input -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, match", [
    (lambda: nn.linear(rand(2, 3), rand(4, 5)), "does not match"),
    (lambda: nn.linear(rand(2, 3), rand(3, 5), rand(4)), "b must have shape"),
    (lambda: nn.linear(rand(2, 3), rand(3)), "2-D"),
    (lambda: nn.conv2d(rand(1, 3, 5, 5), rand(2, 2, 3, 3)), "channels"),
    (lambda: nn.conv2d(rand(3, 5, 5), rand(2, 3, 3, 3)), "4-D"),
    (lambda: nn.conv2d(rand(1, 3, 5, 5), rand(2, 3, 3)), "4-D"),
    (lambda: nn.conv2d(rand(1, 3, 5, 5), rand(2, 3, 3, 3), stride=0), "stride"),
    (lambda: nn.conv2d(rand(1, 3, 5, 5), rand(2, 3, 3, 3), stride=1.5), "stride"),
    (lambda: nn.conv2d(rand(1, 3, 5, 5), rand(2, 3, 3, 3), stride=(1, 2, 3)), "stride"),
    (lambda: nn.conv2d(rand(1, 3, 5, 5), rand(2, 3, 3, 3), padding=-1), "padding"),
    (lambda: nn.conv2d(rand(1, 3, 5, 5), rand(2, 3, 3, 3), padding="same"), "padding"),
    (lambda: nn.conv2d(rand(1, 3, 2, 2), rand(2, 3, 3, 3)), "larger"),
    (lambda: nn.conv2d(rand(1, 3, 5, 5), rand(2, 3, 3, 3), rand(3)), "b must have shape"),
    (lambda: nn.max_pool2d(rand(1, 1, 4, 4), 0), "kernel"),
    (lambda: nn.max_pool2d(rand(1, 1, 4, 4), 5), "larger"),
    (lambda: nn.avg_pool2d(rand(1, 1, 4, 4), 2, stride=0), "stride"),
    (lambda: nn.avg_pool2d(rand(4, 4), 2), "4-D"),
    (lambda: nn.layer_norm(rand(2, 3), rand(4)), "gamma"),
    (lambda: nn.embedding(np.array([0.0, 1.0]), rand(3, 2)), "integers"),
    (lambda: nn.embedding(np.array([0, 3]), rand(3, 2)), r"\[0, 3\)"),
    (lambda: nn.embedding(np.array([0, 1]), rand(3)), "2-D"),
    (lambda: nn.lstm_cell(rand(2, 3), rand(2, 4), rand(2, 4), {"wx": rand(3, 16), "wh": rand(4, 16)}),
     "missing"),
    (lambda: nn.lstm_cell(rand(2, 3), rand(2, 4), rand(2, 4), lstm_params(2, 4)), "wx"),
    (lambda: nn.gru_cell(rand(2, 3), rand(2, 4), gru_params(3, 5)), "wh"),
    (lambda: nn.softmax_cross_entropy(rand(3, 4), np.array([0, 1, 4])), r"\[0, 4\)"),
    (lambda: nn.softmax_cross_entropy(rand(3, 4), np.array([0, 1])), "shape"),
    (lambda: nn.softmax_cross_entropy(rand(3, 4), rand(3, 5)), "shape"),
    (lambda: nn.softmax_cross_entropy(rand(3, 4), np.array([0, 1, 2]), 1.0), "label_smoothing"),
    (lambda: nn.softmax_cross_entropy(rand(3, 4), np.array([0, 1, 2]), -0.1), "label_smoothing"),
    (lambda: nn.softmax_cross_entropy(rand(3, 4), np.array([0, 1, 2]), np.array([0.1, 0.2])),
     "label_smoothing"),
    (lambda: nn.mse(rand(3), rand(4)), "shape"),
])
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_label_smoothing_out_of_range_is_not_checked_on_traced_values():
    # only plain numbers are range-checked: a traced smoothing is used as given
    logits, y = rand(3, 4), np.array([0, 1, 2])
    f = lambda s: nn.softmax_cross_entropy(logits, y, s)
    val, d = jvp(f, (1.5,), (1.0,))
    logp = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    nll, uniform = np.mean(-logp[np.arange(3), y]), np.mean(-logp.mean(1))
    np.testing.assert_allclose(val, -0.5 * nll + 1.5 * uniform, rtol=1e-12)
    np.testing.assert_allclose(d, uniform - nll, rtol=1e-12)


def test_layers_record_under_jit():
    """No value-dependent Python code: autodiff.jit records the layers, with the
    labels and a 0-d label smoothing as recorded inputs."""
    from autodiff import jit

    def loss(x, w, p, ids, s):
        h = nn.max_pool2d(nn.relu(nn.conv2d(x, w, padding=1)), 2)  # (2, 3, 2, 2)
        seq = nn.layer_norm(np.reshape(h, (2, 3, 4)))
        hid = np.zeros((2, 4))
        cell = np.zeros((2, 4))
        for t in range(3):
            hid, cell = nn.lstm_cell(seq[:, t], hid, cell, p)
        return nn.softmax_cross_entropy(hid, ids, s) + nn.mse(nn.embedding(ids, w[0, 0]), hid[:, :3])

    step = jit(grad(loss, argnums=(0, 1, 2, 4)))
    for _ in range(2):
        args = (rand(2, 1, 4, 4), rand(3, 1, 3, 3), lstm_params(4, 4), np.random.randint(0, 3, 2),
                np.array(np.random.random_sample() * 0.5))
        got, ref = step(*args), grad(loss, argnums=(0, 1, 2, 4))(*args)
        for a, b in zip(got[:2] + tuple(got[2].values()) + got[3:], ref[:2] + tuple(ref[2].values()) + ref[3:]):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
