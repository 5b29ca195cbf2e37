"""Nested differentiation: tagging (perturbation confusion), higher derivatives
in every mix of forward and reverse mode, Hessians, Jacobians, K-direction
Duals and chunked jacfwd."""
import itertools

import numpy as np
import pytest

from autodiff import dual, grad, hvp, jacfwd, jacrev, jvp
from autodiff.tree import tree_flatten, tree_unflatten


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def d_fwd(f):
    """x -> f'(x) for a scalar f, by forward mode."""
    return lambda x: jvp(f, (x,), (np.ones_like(x),))[1]


def d_rev(f):
    """x -> f'(x) for a scalar f, by reverse mode."""
    return grad(f)


MODES = {"f": d_fwd, "r": d_rev}


def fd_jacobian(f, x, eps=1e-6):
    """Central-difference Jacobian of f at x: shape f(x).shape + x.shape."""
    x = np.asarray(x, dtype=np.float64)
    cols = []
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = eps
        e = e.reshape(x.shape)
        cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * eps))
    out_shape = np.shape(cols[0])
    return np.moveaxis(np.stack(cols), 0, -1).reshape(out_shape + x.shape)


# -- perturbation confusion: d/dx [x * d/dy (x + y)] at x=2, y=1 must be 1 -----------------
# With the two derivatives confused, the inner derivative also picks up x's perturbation
# (d/dy (x + y) "sees" dx as dy), giving x * 2, whose derivative is 2 -- the wrong answer.

def test_confusion_rev_rev():
    assert grad(lambda x: x * grad(lambda y: x + y)(1.0))(2.0) == 1.0  # confused: 2.0


def test_confusion_fwd_fwd():
    inner = lambda x: jvp(lambda y: x + y, (1.0,), (1.0,))[1]
    assert jvp(lambda x: x * inner(x), (2.0,), (1.0,))[1] == 1.0  # confused: 2.0


def test_confusion_fwd_over_rev():
    assert jvp(lambda x: x * grad(lambda y: x + y)(1.0), (2.0,), (1.0,))[1] == 1.0  # confused: 2.0


def test_confusion_rev_over_fwd():
    inner = lambda x: jvp(lambda y: x + y, (1.0,), (1.0,))[1]
    assert grad(lambda x: x * inner(x))(2.0) == 1.0  # confused: 2.0


@pytest.mark.parametrize("outer,inner", list(itertools.product("fr", repeat=2)))
def test_confusion_inner_closes_over_outer(outer, inner):
    # d/dx [ d/dy (x*y*y) at y=x ] = d/dx [2 x^2] = 4x = 8 at x=2.
    # Confused (x's perturbation seen as y's): d/dy(x*y*y) becomes y*y + 2xy = 3x^2 -> 6x = 12.
    D_out, D_in = MODES[outer], MODES[inner]
    r = D_out(lambda x: D_in(lambda y: x * y * y)(x))(2.0)
    assert np.allclose(r, 8.0, rtol=1e-14)


@pytest.mark.parametrize("modes", ["".join(m) for m in itertools.product("fr", repeat=3)])
def test_confusion_three_levels(modes):
    # d/dx [ x * d/dy [ y * d/dz (x + y + z) ] ] = d/dx [x * 1] = 1 (inner derivatives are 1).
    D1, D2, D3 = (MODES[m] for m in modes)
    r = D1(lambda x: x * D2(lambda y: y * D3(lambda z: x + y + z)(1.0))(1.5))(2.0)
    assert r == 1.0


# -- Hessian-vector products against explicit Hessians -----------------------------------

def f_vec(x):
    return np.sum(np.sin(x) * np.exp(0.3 * x[::-1])) + np.sum(x * x) ** 1.5 + np.prod(np.tanh(x) + 2.0)


def test_hvp_vector_function_against_explicit_hessian(rng):
    x = rng.standard_normal(5)
    v = rng.standard_normal(5)
    H_fwd = jacfwd(grad(f_vec))(x)
    H_fd = fd_jacobian(grad(f_vec), x, eps=1e-5)
    assert H_fwd.shape == (5, 5)
    np.testing.assert_allclose(H_fwd, H_fwd.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(H_fwd, H_fd, rtol=1e-6, atol=1e-7)
    Hv = jvp(grad(f_vec), (x,), (v,))[1]
    np.testing.assert_allclose(Hv, H_fwd @ v, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(Hv, H_fd @ v, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(hvp(f_vec, x, v), H_fwd @ v, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(jacrev(grad(f_vec))(x), H_fwd, rtol=1e-12, atol=1e-12)


def mlp_loss(params, X, y):
    h = np.tanh(X @ params["W1"] + params["b1"])
    logits = h @ params["W2"] + params["b2"]
    m = np.max(logits, axis=1, keepdims=True)
    lse = np.log(np.sum(np.exp(logits - m), axis=1, keepdims=True)) + m
    return np.mean(np.sum(y * (lse - logits), axis=1)) + 1e-2 * np.sum(params["W1"] ** 2)


@pytest.fixture
def mlp(rng):
    params = {"W1": rng.standard_normal((4, 3)), "b1": rng.standard_normal(3) * 0.1,
              "W2": rng.standard_normal((3, 2)), "b2": rng.standard_normal(2) * 0.1}
    X = rng.standard_normal((6, 4))
    y = np.eye(2)[rng.integers(0, 2, size=6)]
    return params, X, y


def _flat(tree):
    leaves, treedef = tree_flatten(tree)
    shapes = [np.shape(l) for l in leaves]

    def unflat(theta):
        parts, i = [], 0
        for s in shapes:
            n = int(np.prod(s))
            parts.append(np.reshape(theta[i:i + n], s))
            i += n
        return tree_unflatten(treedef, parts)

    return np.concatenate([np.ravel(l) for l in leaves]), unflat


def test_hvp_mlp_params_dict(mlp, rng):
    params, X, y = mlp
    v = {k: rng.standard_normal(np.shape(p)) for k, p in params.items()}
    theta, unflat = _flat(params)
    v_flat, _ = _flat(v)
    loss_flat = lambda th: mlp_loss(unflat(th), X, y)

    H = jacfwd(grad(loss_flat))(theta)
    H_fd = fd_jacobian(grad(loss_flat), theta, eps=1e-5)
    assert H.shape == (theta.size, theta.size)
    np.testing.assert_allclose(H, H.T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(H, H_fd, rtol=1e-6, atol=1e-7)

    Hv = jvp(grad(mlp_loss), (params, X, y), (v, np.zeros_like(X), np.zeros_like(y)))[1]
    assert set(Hv) == set(params)
    for k in params:
        assert Hv[k].shape == params[k].shape
    Hv_flat, _ = _flat(Hv)
    np.testing.assert_allclose(Hv_flat, H @ v_flat, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(Hv_flat, H_fd @ v_flat, rtol=1e-5, atol=1e-6)
    Hv2, _ = _flat(hvp(lambda p: mlp_loss(p, X, y), params, v))
    np.testing.assert_allclose(Hv2, H @ v_flat, rtol=1e-10, atol=1e-12)


# -- second derivatives: grad o grad == jvp o jvp ----------------------------------------

SCALAR_FUNCS = {
    "sin_exp": (lambda x: np.sin(x) * np.exp(x), lambda x: 2 * np.cos(x) * np.exp(x)),
    "rational": (lambda x: x ** 3 / (1 + x ** 2), None),
    "tanh_log1p": (lambda x: np.tanh(np.log1p(x * x)), None),
}


@pytest.mark.parametrize("name", SCALAR_FUNCS)
def test_second_derivative_rev_rev_equals_fwd_fwd(name, rng):
    f, d2 = SCALAR_FUNCS[name]
    for x in rng.uniform(-2, 2, size=5):
        rr = grad(grad(f))(x)
        ff = d_fwd(d_fwd(f))(x)
        fr = d_fwd(grad(f))(x)
        rf = grad(d_fwd(f))(x)
        np.testing.assert_allclose(rr, ff, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(fr, ff, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(rf, ff, rtol=1e-12, atol=1e-14)
        eps = 1e-5
        fd = (grad(f)(x + eps) - grad(f)(x - eps)) / (2 * eps)
        np.testing.assert_allclose(ff, fd, rtol=1e-6, atol=1e-8)
        if d2 is not None:
            np.testing.assert_allclose(ff, d2(x), rtol=1e-12, atol=1e-14)


# -- third derivatives in every combination ------------------------------------------------

THIRD = {
    "sin": (np.sin, lambda x: -np.cos(x)),
    "exp2x": (lambda x: np.exp(2 * x), lambda x: 8 * np.exp(2 * x)),
}


@pytest.mark.parametrize("modes", ["".join(m) for m in itertools.product("fr", repeat=3)])
@pytest.mark.parametrize("name", THIRD)
def test_third_derivative(name, modes, rng):
    f, d3 = THIRD[name]
    D = f
    for m in modes:
        D = MODES[m](D)
    for x in rng.uniform(-1.5, 1.5, size=3):
        np.testing.assert_allclose(D(x), d3(x), rtol=1e-12, atol=1e-14)


def test_third_derivative_of_vector_function_elementwise(rng):
    # the same through arrays: the third derivative of sum(sin(x)) along e_i is -cos(x_i)
    x = rng.standard_normal(4)
    ones = np.ones(4)
    d1 = lambda x: jvp(lambda z: np.sin(z), (x,), (ones,))[1]
    d2 = lambda x: jvp(d1, (x,), (ones,))[1]
    d3 = grad(lambda x: np.sum(d2(x)))
    np.testing.assert_allclose(d3(x), -np.cos(x), rtol=1e-13, atol=1e-15)


# -- Jacobians: forward vs reverse vs finite differences -----------------------------------

VEC_FUNCS = {
    "R4_to_R3": (lambda x: np.stack([np.sin(x[0] * x[1]), np.exp(x[2]) - x[3], x @ x]), (4,)),
    "matrix": (lambda X: np.tanh(X.T @ np.arange(6.0).reshape(2, 3) / 5.0), (2, 3)),
    "softmax": (lambda x: np.exp(x - np.max(x)) / np.sum(np.exp(x - np.max(x))), (5,)),
    "reductions": (lambda X: np.concatenate([np.mean(X, axis=0), np.max(X, axis=1), np.cumsum(X[0])]), (3, 4)),
    "scalar_out": (lambda X: np.sum(X ** 2 * np.cos(X)), (2, 2)),
    "broadcast": (lambda x: x[:, None] * np.sqrt(x[None, :] ** 2 + 1.0), (3,)),
}


@pytest.mark.parametrize("name", VEC_FUNCS)
def test_jacfwd_jacrev_fd(name, rng):
    f, shape = VEC_FUNCS[name]
    x = rng.standard_normal(shape)
    out_shape = np.shape(f(x))
    Jf, Jr = jacfwd(f)(x), jacrev(f)(x)
    assert Jf.shape == out_shape + shape
    assert Jr.shape == out_shape + shape
    np.testing.assert_allclose(Jf, Jr, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(Jf, fd_jacobian(f, x), rtol=1e-6, atol=1e-7)


def test_jacobians_several_argnums(rng):
    f = lambda a, b, c: np.tanh(a @ b) * c
    a, b, c = rng.standard_normal((2, 3)), rng.standard_normal((3, 4)), rng.standard_normal(4)
    Jf = jacfwd(f, argnums=(0, 2))(a, b, c)
    Jr = jacrev(f, argnums=(0, 2))(a, b, c)
    assert isinstance(Jf, tuple) and len(Jf) == 2
    assert Jf[0].shape == (2, 4, 2, 3) and Jf[1].shape == (2, 4, 4)
    for jf, jr in zip(Jf, Jr):
        np.testing.assert_allclose(jf, jr, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(Jf[0], fd_jacobian(lambda a: f(a, b, c), a), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(Jf[1], fd_jacobian(lambda c: f(a, b, c), c), rtol=1e-6, atol=1e-7)


def test_hvp_equals_jacfwd_grad_times_v(rng):
    f = lambda x: np.sum(np.log1p(np.exp(x @ x.T))) + np.sum(np.sin(x) ** 3)
    x, v = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    H = jacfwd(grad(f))(x)
    assert H.shape == (3, 2, 3, 2)
    expect = np.tensordot(H, v, axes=2)
    np.testing.assert_allclose(hvp(f, x, v), expect, rtol=1e-12, atol=1e-12)


# -- K tangent directions in one pass ------------------------------------------------------

def k_func(x):
    W = np.arange(12.0).reshape(4, 3) / 10.0
    h = np.tanh(x @ W)
    h = np.concatenate([h, np.maximum(h, 0.1) * x[:3]])
    h = np.where(h > 0, h, 0.01 * h)
    return np.stack([np.sum(h ** 2), np.mean(np.exp(h)), np.max(h) * x[1:3].sum(), h[::2] @ h[1::2]])


@pytest.mark.parametrize("K", [1, 2, 5])
def test_k_direction_dual_equals_k_jvps(K, rng):
    x = rng.standard_normal(4)
    T = rng.standard_normal((K, 4))
    out = k_func(dual(x, T))
    assert out.K == K
    assert out.tangents.shape == (K, 4)
    np.testing.assert_array_equal(out.primal, k_func(x))
    for k in range(K):
        y, t = jvp(k_func, (x,), (T[k],))
        np.testing.assert_allclose(out.tangents[k], t, rtol=1e-13, atol=1e-14)
    if K > 1:
        np.testing.assert_allclose(out.tangent, out.tangents)


def test_k_direction_dual_matrix_input(rng):
    f = lambda X: np.sum(np.sin(X) @ X.T, axis=0) / (1.0 + np.sum(X * X))
    X = rng.standard_normal((3, 2))
    T = rng.standard_normal((4, 3, 2))
    out = f(dual(X, T))
    for k in range(4):
        np.testing.assert_allclose(out.tangents[k], jvp(f, (X,), (T[k],))[1], rtol=1e-13, atol=1e-14)


def test_k_direction_dual_through_grad_gives_hessian_columns(rng):
    # forward-over-reverse with K directions: grad(f) of a K-Dual carries H @ T[k]
    x = rng.standard_normal(5)
    T = rng.standard_normal((3, 5))
    g = grad(f_vec)(dual(x, T))
    H = jacfwd(grad(f_vec))(x)
    np.testing.assert_allclose(g.primal, grad(f_vec)(x), rtol=0, atol=0)
    np.testing.assert_allclose(g.tangents, T @ H.T, rtol=1e-12, atol=1e-12)


# -- chunked jacfwd -----------------------------------------------------------------------

@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 100])
def test_jacfwd_chunked_equals_unchunked(chunk_size, rng):
    f = lambda x: np.tanh(x[:, None] * x[None, ::-1]).sum(axis=1) + np.cumsum(x) ** 2
    x = rng.standard_normal(7)
    J = jacfwd(f)(x)
    np.testing.assert_array_equal(jacfwd(f, chunk_size=chunk_size)(x), J)


@pytest.mark.parametrize("chunk_size", [1, 2, 3])
def test_jacfwd_chunked_pytree_across_leaves(chunk_size, rng):
    # chunks that straddle leaf boundaries, several argnums and a pytree output
    f = lambda p, s: {"u": np.sin(p["a"]) * np.sum(p["b"] ** 2) * s, "v": p["b"] @ p["b"].T * s}
    p = {"a": rng.standard_normal(2), "b": rng.standard_normal((2, 2))}
    s = 1.7
    J = jacfwd(f, argnums=(0, 1))(p, s)
    Jc = jacfwd(f, argnums=(0, 1), chunk_size=chunk_size)(p, s)
    for a, b in zip(tree_flatten(J)[0], tree_flatten(Jc)[0]):
        np.testing.assert_array_equal(a, b)
    assert J["u"][0]["b"].shape == (2, 2, 2)
    assert J["v"][0]["b"].shape == (2, 2, 2, 2)
    assert np.shape(J["v"][1]) == (2, 2)
    Jr = jacrev(f, argnums=(0, 1))(p, s)
    for a, b in zip(tree_flatten(J)[0], tree_flatten(Jr)[0]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
