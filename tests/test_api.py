"""The public API's contracts: argnums, pytrees, has_aux, output shapes, errors
that name the problem, conversions that refuse, dtypes, primal fidelity,
broadcasting and freeing the tape."""
import collections
import gc
import re
import weakref

import numpy as np
import pytest

import autodiff as ad
from autodiff import Dual, dual, grad, hvp, jacfwd, jacrev, jvp, stop_gradient, value_and_grad, vjp
from autodiff.core import Primitive
from autodiff.tape import Var
from autodiff.tree import tree_flatten, tree_structure


@pytest.fixture
def rng():
    return np.random.default_rng(2024)


def assert_tree_allclose(a, b, **kw):
    la, da = tree_flatten(a)
    lb, db = tree_flatten(b)
    assert da == db, f"{da} != {db}"
    for x, y in zip(la, lb):
        assert not isinstance(x, ad.Dual) and not isinstance(x, Var)
        np.testing.assert_allclose(x, y, **kw)


# -- argnums --------------------------------------------------------------------------------

def f3(x, y, z):
    return np.sum(x * y ** 2 + np.sin(z) * x)


def test_argnums_int_tuple_negative(rng):
    x, y, z = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal(3)
    gx = y ** 2 + np.sin(z)
    gy = 2 * x * y
    gz = np.cos(z) * x
    np.testing.assert_allclose(grad(f3)(x, y, z), gx, rtol=1e-14)
    np.testing.assert_allclose(grad(f3, argnums=1)(x, y, z), gy, rtol=1e-14)
    np.testing.assert_allclose(grad(f3, argnums=-1)(x, y, z), gz, rtol=1e-14)
    g = grad(f3, argnums=(2, 0))(x, y, z)
    assert isinstance(g, tuple) and len(g) == 2
    np.testing.assert_allclose(g[0], gz, rtol=1e-14)
    np.testing.assert_allclose(g[1], gx, rtol=1e-14)
    g = grad(f3, argnums=(-2,))(x, y, z)
    assert isinstance(g, tuple) and len(g) == 1
    np.testing.assert_allclose(g[0], gy, rtol=1e-14)
    v, g = value_and_grad(f3, argnums=(0, -1))(x, y, z)
    assert v == f3(x, y, z)
    np.testing.assert_allclose(g[1], gz, rtol=1e-14)
    J = jacfwd(f3, argnums=-2)(x, y, z)
    np.testing.assert_allclose(J, gy, rtol=1e-14)
    J = jacrev(f3, argnums=(0, 1))(x, y, z)
    np.testing.assert_allclose(J[0], gx, rtol=1e-14)
    np.testing.assert_allclose(J[1], gy, rtol=1e-14)


def test_argnums_out_of_range(rng):
    x = rng.standard_normal(3)
    with pytest.raises(ValueError, match="argnums"):
        grad(f3, argnums=3)(x, x, x)
    with pytest.raises(ValueError, match="argnums"):
        grad(f3, argnums=-4)(x, x, x)


def test_kwargs_are_not_differentiated(rng):
    x = rng.standard_normal(3)
    g = grad(lambda x, scale=1.0: np.sum(x * x) * scale)(x, scale=3.0)
    np.testing.assert_allclose(g, 6 * x, rtol=1e-14)


# -- pytrees --------------------------------------------------------------------------------

NT = collections.namedtuple("NT", "a b")


def tree_fn(p):
    return (np.sum(p["x"][0] * 2.0) + np.sum(p["x"][1][0] ** 2) + p["nt"].a ** 3
            + np.sum(np.sin(p["nt"].b["c"])))


@pytest.fixture
def tree(rng):
    return {"x": [rng.standard_normal(2), (rng.standard_normal(3), None)],
            "nt": NT(np.float64(rng.standard_normal()), {"c": rng.standard_normal((2, 2))}),
            "n": None}


def tree_grad(p):
    return {"x": [np.full(2, 2.0), (2 * p["x"][1][0], None)],
            "nt": NT(3 * p["nt"].a ** 2, {"c": np.cos(p["nt"].b["c"])}), "n": None}


def test_pytree_grad(tree):
    g = grad(tree_fn)(tree)
    assert tree_structure(g) == tree_structure(tree)
    assert isinstance(g["nt"], NT) and isinstance(g["x"], list) and isinstance(g["x"][1], tuple)
    assert g["n"] is None and g["x"][1][1] is None
    assert_tree_allclose(g, tree_grad(tree), rtol=1e-14)


def test_pytree_vjp(tree):
    out, pullback = vjp(tree_fn, tree)
    assert out == tree_fn(tree)
    (g,) = pullback(2.0)
    expect = tree_grad(tree)
    assert_tree_allclose(g, ad.tree.tree_map(lambda e: 2.0 * e, expect), rtol=1e-14)


def test_pytree_jvp(tree, rng):
    t = ad.tree.tree_map(lambda x: rng.standard_normal(np.shape(x)), tree)
    out, out_dot = jvp(tree_fn, (tree,), (t,))
    assert out == tree_fn(tree)
    expect = sum(np.sum(a * b) for a, b in zip(tree_flatten(tree_grad(tree))[0], tree_flatten(t)[0]))
    np.testing.assert_allclose(out_dot, expect, rtol=1e-13)


def test_pytree_jacfwd_jacrev(tree):
    for jac in (jacfwd, jacrev):
        J = jac(tree_fn)(tree)
        assert tree_structure(J) == tree_structure(tree)
        assert_tree_allclose(J, tree_grad(tree), rtol=1e-14)


def test_pytree_outputs(rng):
    x = rng.standard_normal(3)
    f = lambda x: {"s": np.sum(x), "pair": (x * 2.0, [np.sin(x)])}
    out, out_dot = jvp(f, (x,), (np.ones(3),))
    assert tree_structure(out) == tree_structure(out_dot) == tree_structure(f(x))
    np.testing.assert_allclose(out_dot["pair"][1][0], np.cos(x), rtol=1e-15)
    out, pullback = vjp(f, x)
    (g,) = pullback({"s": 1.0, "pair": (np.ones(3), [np.ones(3)])})
    np.testing.assert_allclose(g, 1.0 + 2.0 + np.cos(x), rtol=1e-15)
    with pytest.raises(ValueError, match="structure"):
        pullback({"s": 1.0})
    with pytest.raises(ValueError, match=r"shape \(2,\).*\(3,\)"):
        pullback({"s": 1.0, "pair": (np.ones(2), [np.ones(3)])})
    J = jacfwd(f)(x)
    np.testing.assert_allclose(J["pair"][0], 2 * np.eye(3))
    np.testing.assert_allclose(jacrev(f)(x)["pair"][1][0], np.diag(np.cos(x)))


def test_pytree_tangent_structure_mismatch(tree):
    with pytest.raises(ValueError, match="structure"):
        jvp(tree_fn, (tree,), ({"x": tree["x"]},))


# -- has_aux ------------------------------------------------------------------------------------

def aux_fn(x):
    h = np.tanh(x)
    return np.sum(h * h), {"h": h, "n": 3}


def test_has_aux_grad_value_and_grad_vjp(rng):
    x = rng.standard_normal(4)
    g, aux = grad(aux_fn, has_aux=True)(x)
    np.testing.assert_allclose(g, 2 * np.tanh(x) * (1 - np.tanh(x) ** 2), rtol=1e-14)
    # aux comes back as plain values: nothing of the closed tape escapes
    assert type(aux["h"]) is np.ndarray and aux["n"] == 3
    np.testing.assert_array_equal(aux["h"], np.tanh(x))
    (v, aux2), g2 = value_and_grad(aux_fn, has_aux=True)(x)
    assert v == aux_fn(x)[0]
    assert type(aux2["h"]) is np.ndarray
    np.testing.assert_array_equal(g2, g)
    out, pullback, aux3 = vjp(aux_fn, x, has_aux=True)
    assert out == v and type(aux3["h"]) is np.ndarray
    np.testing.assert_array_equal(pullback(1.0)[0], g)


# -- output shapes accepted by grad -----------------------------------------------------------

@pytest.mark.parametrize("shape", [(), (1,), (1, 1)])
def test_grad_accepts_single_element_outputs(shape, rng):
    x = rng.standard_normal(3)
    g = grad(lambda x: np.reshape(np.sum(x ** 3), shape))(x)
    np.testing.assert_allclose(g, 3 * x ** 2, rtol=1e-14)
    v, _ = value_and_grad(lambda x: np.reshape(np.sum(x ** 3), shape))(x)
    assert np.shape(v) == shape


def test_grad_rejects_non_scalar_output(rng):
    x = rng.standard_normal(2)
    with pytest.raises(TypeError, match=r"single-element output, got shape \(2,\).*vjp or jacrev"):
        grad(lambda x: x * 2.0)(x)
    with pytest.raises(TypeError, match="single-element output"):
        grad(lambda x: (np.sum(x), np.sum(x)))(x)


def test_grad_of_constant_is_zero(rng):
    x = rng.standard_normal(3)
    g = grad(lambda x: 3.0)(x)
    np.testing.assert_array_equal(g, np.zeros(3))
    g = grad(lambda x, y: np.sum(y), argnums=0)(x, x)
    np.testing.assert_array_equal(g, np.zeros(3))


# -- shape mismatches and dtypes ---------------------------------------------------------------

def test_jvp_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"tangent shape \(3,\).*primal shape \(2,\)"):
        jvp(lambda x: x, (np.ones(2),), (np.ones(3),))
    with pytest.raises(ValueError, match=r"\(2, 1\).*\(2,\)"):
        jvp(lambda x: x, (np.ones(2),), (np.ones((2, 1)),))
    with pytest.raises(ValueError, match="primals.*tangents"):
        jvp(lambda x, y: x, (np.ones(2), np.ones(2)), (np.ones(2),))


@pytest.mark.parametrize("tshape", [(3,), (2, 3), (2, 2, 3), ()])
def test_dual_shape_mismatch_names_both_shapes(tshape):
    with pytest.raises(ValueError, match=rf"tangent shape {re.escape(str(tshape))} .*primal shape \(2,\)"):
        dual(np.ones(2), np.ones(tshape))


def test_dual_k_directions():
    d = dual(np.ones(2), np.ones(2))
    assert d.K == 1 and d.tangent.shape == (2,) and d.tangents.shape == (1, 2)
    d = dual(np.ones(2), np.ones((3, 2)))
    assert d.K == 3 and d.tangent.shape == (3, 2)
    d = dual(2.0, 1.0)
    assert d.primal == 2.0 and d.tangent == 1.0
    assert isinstance(d, Dual)


@pytest.mark.parametrize("x", [3, np.arange(3), np.array([True, False])])
def test_integer_inputs_to_grad_raise(x):
    with pytest.raises(TypeError, match="floating-point"):
        grad(lambda x: np.sum(x * 2.0))(x)
    if isinstance(x, np.ndarray):  # (a Python int literal given to dual() is taken as a float)
        with pytest.raises(TypeError, match="integer and boolean"):
            dual(x, np.zeros(np.shape(x)))


def test_integer_and_bool_leaves_in_jvp(rng):
    """Integer and boolean arrays carry no tangent: a zero tangent is accepted,
    a nonzero one raises (it would be dropped).  A Python int is a number and
    is promoted to float, as `dual` does."""
    x = rng.standard_normal(2)
    n = np.array([1, 2])
    f = lambda x, n, b, k: x * n + (1.0 if b else 0.0) * k
    out, t = jvp(f, (x, n, True, 3), (np.ones(2), np.array([0, 0]), False, 7))
    np.testing.assert_array_equal(out, x * n + 3)
    np.testing.assert_array_equal(t, n + 7.0)  # the Python int 3 got its tangent 7
    out, t = jvp(lambda p: p["x"] * p["i"], ({"x": x, "i": 4},), ({"x": np.ones(2), "i": 9},))
    np.testing.assert_array_equal(t, 4.0 + 9.0 * x)
    with pytest.raises(TypeError, match="integer or boolean primal"):
        jvp(f, (x, n, True, 3), (np.ones(2), np.array([5, 5]), False, 7))
    with pytest.raises(TypeError, match="integer or boolean primal"):
        jvp(lambda b: b * 2.0, (np.array([True, False]),), (np.array([True, False]),))
    # jvp of a function of integers alone, with zero tangents: zero tangent, not an error
    out, t = jvp(lambda n: n * 2, (n,), (np.zeros(2, dtype=int),))
    np.testing.assert_array_equal(t, np.zeros(2))


def test_jvp_promotes_a_python_int_primal():
    assert jvp(lambda lr: lr * 2.0, (1,), (1.0,)) == (2.0, 2.0)


def test_grad_with_integer_argument_not_in_argnums(rng):
    x = rng.standard_normal(3)
    g = grad(lambda x, i: np.sum(x[i] ** 2))(x, np.array([0, 2]))
    np.testing.assert_allclose(g, [2 * x[0], 0.0, 2 * x[2]], rtol=1e-15)


# -- missing rules raise NotImplementedError naming the op -----------------------------------------

UNSUPPORTED = {
    "median": lambda x: np.median(x),
    "put": lambda x: np.put(x, [0], 1.0),
    "multiply.at": lambda x: np.multiply.at(x, [0], 2.0),
    "percentile": lambda x: np.percentile(x, 50),
    "arctan2": lambda x: np.arctan2(x, x + 1.0),
}


@pytest.mark.parametrize("name", UNSUPPORTED)
def test_unsupported_numpy_function_on_dual(name):
    with pytest.raises(NotImplementedError, match=name.replace(".", r"\.")):
        UNSUPPORTED[name](dual(np.array([3.0, 1.0, 2.0]), np.ones(3)))


@pytest.mark.parametrize("name", UNSUPPORTED)
def test_unsupported_numpy_function_on_tape(name):
    with pytest.raises(NotImplementedError, match=name.replace(".", r"\.")):
        grad(lambda x: np.sum(UNSUPPORTED[name](x)))(np.array([3.0, 1.0, 2.0]))


def test_add_at_into_plain_array_with_dual_values_raises():
    with pytest.raises((NotImplementedError, TypeError), match=r"add\.at|derivative"):
        np.add.at(np.zeros(3), [0, 0], dual(np.ones(2), np.ones(2)))


def test_sort_is_supported():
    x = np.array([3.0, 1.0, 2.0])
    out, t = jvp(np.sort, (x,), (np.array([10.0, 20.0, 30.0]),))
    np.testing.assert_array_equal(out, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(t, [20.0, 30.0, 10.0])
    g = grad(lambda x: np.sum(np.sort(x) * np.array([1.0, 2.0, 3.0])))(x)
    np.testing.assert_array_equal(g, [3.0, 1.0, 2.0])


def test_primitive_without_vjp_rule_names_op_and_argument():
    myop = Primitive("myop", np.sin)
    myop.jvps = (lambda t, ans, x: t * np.cos(x),)
    out, t = jvp(myop, (1.0,), (1.0,))
    assert out == np.sin(1.0) and np.isclose(t, np.cos(1.0))
    with pytest.raises(NotImplementedError, match=r"myop.*argument 0"):
        grad(lambda x: myop(x))(1.0)
    # it fails when recorded, even if the output does not depend on it
    with pytest.raises(NotImplementedError, match=r"myop.*argument 0"):
        grad(lambda x: np.sum(x) + 0.0 * np.sum(myop(x)))(np.ones(2))
    # forward-over-reverse needs the vjp rule too
    with pytest.raises(NotImplementedError, match="myop"):
        hvp(lambda x: myop(x), 1.0, 1.0)


def test_primitive_without_jvp_rule_names_op_and_argument():
    op2 = Primitive("op2_no_jvp", np.add)
    op2.jvps = (lambda t, ans, x, y: t, None)
    op2.vjps = (lambda g, ans, x, y: g, None)
    assert jvp(lambda x: op2(x, 1.0), (1.0,), (2.0,))[1] == 2.0
    with pytest.raises(NotImplementedError, match=r"op2_no_jvp.*argument 1"):
        jvp(lambda y: op2(1.0, y), (1.0,), (1.0,))
    with pytest.raises(NotImplementedError, match=r"op2_no_jvp.*argument 1"):
        grad(lambda y: op2(1.0, y))(1.0)


def test_unsupported_kwargs_raise():
    d = dual(np.ones(3), np.ones(3))
    with pytest.raises((NotImplementedError, TypeError)):
        np.sum(d, where=np.array([True, False, True]))
    with pytest.raises((NotImplementedError, TypeError)):
        np.add(d, 1.0, where=np.array([True, False, True]))


# -- conversions that would drop the derivative are refused ---------------------------------------

def _boxes():
    """(description, maker) pairs: f(maker_value) runs the check inside each kind of trace."""
    def in_dual(check):
        check(dual(np.array([1.0, 2.0]), np.ones(2)))

    def in_tape(check):
        grad(lambda x: (check(x), np.sum(x))[1])(np.array([1.0, 2.0]))

    def in_jvp(check):
        jvp(lambda x: (check(x), np.sum(x))[1], (np.array([1.0, 2.0]),), (np.ones(2),))

    def in_fwd_over_rev(check):
        jvp(grad(lambda x: (check(x), np.sum(x * x))[1]), (np.array([1.0, 2.0]),), (np.ones(2),))

    return {"dual": in_dual, "tape": in_tape, "jvp": in_jvp, "fwd_over_rev": in_fwd_over_rev}


BOXES = _boxes()

REFUSED = {
    "asarray": (lambda x: np.asarray(x), r"np\.stack"),
    "array_of_list": (lambda x: np.array([x[0], x[1]]), r"np\.stack"),
    "array": (lambda x: np.array(x), r"np\.stack"),
    "float": (lambda x: float(x[0]), r"\.primal|stop_gradient"),
    "item": (lambda x: x[0].item(), r"\.primal|stop_gradient"),
    "int": (lambda x: int(x[0]), r"\.primal|stop_gradient"),
    "tolist": (lambda x: x.tolist(), r"\.primal|stop_gradient"),
    "np_float64": (lambda x: np.float64(x[0]), r"np\.stack|\.primal|stop_gradient"),
}


@pytest.mark.parametrize("box", BOXES)
@pytest.mark.parametrize("conv", REFUSED)
def test_conversions_are_refused(conv, box):
    f, fix = REFUSED[conv]

    def check(x):
        with pytest.raises(TypeError, match=fix):
            f(x)
    BOXES[box](check)


@pytest.mark.parametrize("box", BOXES)
def test_the_named_fixes_work(box):
    def check(x):
        y = np.stack([x[0], x[1]])
        assert isinstance(y, type(x)) and y.shape == (2,)
        assert type(x.primal) is not type(x)  # .primal exists on every box
        assert type(stop_gradient(x)) is np.ndarray
        assert float(stop_gradient(x[0])) == 1.0
    BOXES[box](check)


@pytest.mark.parametrize("box", BOXES)
def test_writes_into_plain_arrays_are_refused(box):
    def check(x):
        a = np.zeros(2)
        with pytest.raises(TypeError, match="zeros_like"):
            a += x
        with pytest.raises(TypeError, match="zeros_like"):
            np.sin(x, out=np.zeros(2))
        np.testing.assert_array_equal(a, np.zeros(2))
        y = x.copy()
        y[0] = 5.0  # a traced array is writable, like an ndarray
        assert stop_gradient(y)[0] == 5.0 and stop_gradient(x)[0] == 1.0
    BOXES[box](check)


# -- comparisons, bool, argmax, where: on the primal -------------------------------------------------

@pytest.mark.parametrize("box", BOXES)
def test_comparisons_act_on_primal(box):
    def check(x):
        for r in (x > 1.5, x < 1.5, x >= 2.0, x <= 1.0, x == 2.0, x != 2.0, 1.5 < x, np.greater(x, 1.5)):
            assert type(r) is np.ndarray and r.dtype == bool
        np.testing.assert_array_equal(x > 1.5, [False, True])
        np.testing.assert_array_equal(x == 2.0, [False, True])
        assert bool(x[1] > x[0]) and bool(x[0])
        assert np.argmax(x) == 1 and np.argmin(x) == 0 and x.argmax() == 1 and x.argmin() == 0
        np.testing.assert_array_equal(np.argsort(x), [0, 1])
        assert not bool(x[0] - 1.0)
    BOXES[box](check)


def relu_branchy(x):
    return x if x > 0 else 0.1 * x


def test_branching_code_differentiates():
    assert grad(relu_branchy)(2.0) == 1.0
    assert grad(relu_branchy)(-2.0) == 0.1
    assert jvp(relu_branchy, (-2.0,), (1.0,))[1] == 0.1
    x = np.array([0.5, -1.0, 3.0, 2.0])
    g = grad(lambda x: x[np.argmax(x)] * 2.0 + np.where(x > 0, x, 0.01 * x).sum())(x)
    np.testing.assert_allclose(g, [1.0, 0.01, 3.0, 1.0])
    t = jvp(lambda x: np.where(x > 0, x ** 2, -x), (x,), (np.ones(4),))[1]
    np.testing.assert_allclose(t, [1.0, -1.0, 6.0, 4.0])
    # the condition may itself be a box: it is used through its primal
    g = grad(lambda x: np.sum(np.where(x, x, 0.0) * x))(np.array([0.0, 2.0]))
    np.testing.assert_allclose(g, [0.0, 4.0])


# -- float32 stays float32 ------------------------------------------------------------------------

def mlp32(p, X, Y):
    h = np.tanh(X @ p["W1"] + p["b1"]) * 0.5 + 0.1
    logits = h @ p["W2"]
    lse = ad.ops.logsumexp(logits, axis=1, keepdims=True)
    sm = ad.ops.softmax(logits, axis=1)
    return (np.mean(np.sum(Y * (lse - logits), axis=1)) + 1e-3 * np.sum(p["W1"] ** 2)
            + np.mean(sm ** 2) / 3.0 + 2.0 + np.sqrt(np.mean(h * h)) + np.exp(-np.max(h)) - np.var(h))


@pytest.fixture
def mlp_f32(rng):
    f32 = np.float32
    p = {"W1": rng.standard_normal((4, 8)).astype(f32), "b1": np.zeros(8, f32),
         "W2": rng.standard_normal((8, 3)).astype(f32)}
    X = rng.standard_normal((5, 4)).astype(f32)
    Y = np.eye(3, dtype=f32)[[0, 1, 2, 0, 1]]
    return p, X, Y


def _all_f32(tree):
    leaves = tree_flatten(tree)[0]
    assert leaves
    for l in leaves:
        assert np.result_type(l) == np.float32, np.result_type(l)


def test_float32_in_float32_out(mlp_f32):
    p, X, Y = mlp_f32
    assert mlp32(p, X, Y).dtype == np.float32
    _all_f32(grad(mlp32)(p, X, Y))
    v, g = value_and_grad(mlp32, argnums=(0, 1))(p, X, Y)
    _all_f32((v, g))
    out, t = jvp(mlp32, (p, X, Y), (p, X, Y))
    _all_f32((out, t))
    _all_f32(hvp(lambda p: mlp32(p, X, Y), p, p))
    _all_f32(jacfwd(mlp32)(p, X, Y))
    _all_f32(jacrev(mlp32)(p, X, Y))
    _all_f32(jacfwd(lambda X: np.tanh(X @ p["W1"]) / 3.0)(X))
    d = mlp32(p, dual(X, np.ones((2,) + X.shape, np.float32)), Y)
    _all_f32((d.primal, d.tangents))


def test_float32_scalars_and_python_constants():
    x = np.float32(0.7)
    for f in (lambda x: x * 2.0 + 1.0, lambda x: 1.0 / (1.0 + np.exp(-x)), lambda x: x ** 2.5,
              lambda x: np.maximum(x, 0.1) - 3.0, lambda x: np.where(x > 0, x, 0.5)):
        assert np.result_type(f(x)) == np.float32
        assert np.result_type(grad(f)(x)) == np.float32
        out, t = jvp(f, (x,), (np.float32(1.0),))
        assert np.result_type(out) == np.float32 and np.result_type(t) == np.float32
        assert np.result_type(grad(grad(f))(x)) == np.float32


def test_float32_tangents_of_other_dtype_are_cast():
    out, t = jvp(lambda x: x * 2.0, (np.ones(2, np.float32),), (np.ones(2, np.float64),))
    assert t.dtype == np.float32
    assert dual(np.ones(2, np.float32), np.ones(2)).tangents.dtype == np.float32


# Python floats stay weakly typed: a hyperparameter given as a Python float must not upcast a
# float32 run when it is differentiated (the plain run f(0.1, p32) is float32)

def train32(lr, p, steps=3):
    for _ in range(steps):
        g = grad(lambda p: np.sum(np.tanh(p) ** 2) + np.mean(p * 0.5))(p)
        p = p - lr * g
    return np.sum(p ** 2)


def test_python_float_hyperparameter_keeps_float32_run(rng):
    p = rng.standard_normal(5).astype(np.float32)
    plain = train32(0.1, p)
    assert plain.dtype == np.float32
    out, t = jvp(train32, (0.1, p), (1.0, np.zeros(5, np.float32)))
    assert out.dtype == np.float32 and t.dtype == np.float32 and out == plain
    out, t = jvp(lambda lr: train32(lr, p), (0.1,), (1.0,))
    assert out.dtype == np.float32 and t.dtype == np.float32 and out == plain
    d = train32(dual(0.1, 1.0), p)
    assert d.primal.dtype == np.float32 and d.tangents.dtype == np.float32 and d.primal == plain
    d = train32(dual(0.1, np.ones(3)), p)  # K = 3 directions on a scalar
    assert d.tangents.shape == (3,) and d.tangents.dtype == np.float32
    v, g = value_and_grad(train32)(0.1, p)
    assert v.dtype == np.float32 and v == plain
    np.testing.assert_allclose(g, t, rtol=1e-5)
    J = jacfwd(train32)(0.1, p)
    np.testing.assert_allclose(J, t, rtol=1e-5)
    eps = 1e-3
    fd = (train32(0.1 + eps, p.astype(np.float64)) - train32(0.1 - eps, p.astype(np.float64))) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-3)


def test_python_float_inputs_through_shape_ops():
    # derivative rules may ask a differentiated input for .shape/.dtype: a Python float must work
    f = lambda s: np.sum(np.stack([s, s * 2.0]) * np.reshape(s, (1,))) + np.sum(s) + np.max(s)
    expect = 2 * 3.0 * 2.0 + 1.0 + 1.0  # d/ds (3 s^2 + 2 s)
    assert grad(f)(2.0) == expect
    assert jvp(f, (2.0,), (1.0,))[1] == expect
    assert hvp(f, 2.0, 1.0) == 6.0
    assert jacrev(f)(2.0) == expect and jacfwd(f)(2.0) == expect


def test_cotangents_have_their_primals_dtype():
    x32 = np.ones(2, np.float32)
    out, pullback = vjp(lambda x: np.sum(x * 2.0), x32)
    assert pullback(1.0)[0].dtype == np.float32  # a float64 cotangent does not upcast
    assert pullback(np.float64(1.0))[0].dtype == np.float32
    g = grad(lambda x: np.sum(x * np.ones(2, np.float64)))(x32)  # a float64 constant
    assert g.dtype == np.float32
    t = jvp(lambda x: x * 2.0, (x32,), (np.ones(2),))[1]
    assert t.dtype == np.float32


def test_python_ints_stay_ints_in_jvp(rng):
    x = rng.standard_normal(3)
    out, t = jvp(lambda x, n: x[:n] * 2.0, (x, 2), (np.ones(3), 0))
    np.testing.assert_array_equal(t, [2.0, 2.0])
    seen = []
    jvp(lambda x, n: (seen.append(type(n)), x)[1], (x, 2), (np.ones(3), 0))
    assert seen == [int]


# -- differentiating does not change the run -------------------------------------------------------

def mlp_loss(p, X, Y):
    h = np.tanh(X @ p["W1"] + p["b1"])
    logits = h @ p["W2"]
    m = np.max(logits, axis=1, keepdims=True)
    lse = np.log(np.sum(np.exp(logits - m), axis=1, keepdims=True)) + m
    return np.mean(np.sum(Y * (lse - logits), axis=1)) + 1e-3 * np.sum(p["W1"] ** 2)


def train(lr, p, X, Y, steps=3):
    for _ in range(steps):
        g = grad(mlp_loss)(p, X, Y)
        p = {k: p[k] - lr * g[k] for k in p}
    return mlp_loss(p, X, Y), p


def test_primal_of_taped_and_dual_runs_is_bit_identical(rng):
    p = {"W1": rng.standard_normal((4, 8)), "b1": rng.standard_normal(8) * 0.1,
         "W2": rng.standard_normal((8, 3))}
    X = rng.standard_normal((5, 4))
    Y = np.eye(3)[[0, 1, 2, 0, 1]]
    plain, p_plain = train(0.1, p, X, Y)
    # one step's forward pass, taped / dual
    assert value_and_grad(mlp_loss)(p, X, Y)[0] == mlp_loss(p, X, Y)
    assert jvp(mlp_loss, (p, X, Y), (p, X, Y))[0] == mlp_loss(p, X, Y)
    assert vjp(mlp_loss, p, X, Y)[0] == mlp_loss(p, X, Y)
    # the whole training run with a dual learning rate (forward hypergradient)
    d, p_dual = train(dual(np.float64(0.1), np.float64(1.0)), p, X, Y)
    assert d.primal == plain
    for k in p:
        np.testing.assert_array_equal(p_dual[k].primal, p_plain[k])
    # with K = 2 tangents on the learning rate and the data
    d2, _ = train(0.1, p, dual(X, np.stack([X, -X])), Y)
    assert d2.primal == plain
    # reverse over the unrolled run, and jvp over it
    v, g_lr = value_and_grad(lambda lr: train(lr, p, X, Y)[0])(0.1)
    assert v == plain
    out, t_lr = jvp(lambda lr: train(lr, p, X, Y)[0], (0.1,), (1.0,))
    assert out == plain
    np.testing.assert_allclose(t_lr, g_lr, rtol=1e-12)
    np.testing.assert_allclose(d.tangent, g_lr, rtol=1e-12)
    # the hypergradient is right
    eps = 1e-6
    fd = (train(0.1 + eps, p, X, Y)[0] - train(0.1 - eps, p, X, Y)[0]) / (2 * eps)
    np.testing.assert_allclose(g_lr, fd, rtol=1e-6)


# -- broadcasting ---------------------------------------------------------------------------------

def test_broadcast_gradients_are_summed_to_input_shape(rng):
    a, b = rng.standard_normal((3, 1)), rng.standard_normal(4)
    c, d = np.float64(0.7), rng.standard_normal((1, 4))
    e = rng.standard_normal((2, 1, 1))
    f = lambda a, b, c, d, e: np.sum((a * b + c * d) * e)
    ga, gb, gc, gd, ge = grad(f, argnums=(0, 1, 2, 3, 4))(a, b, c, d, e)
    s = np.sum(e)
    np.testing.assert_allclose(ga, s * np.sum(b) * np.ones((3, 1)), rtol=1e-13)
    np.testing.assert_allclose(gb, s * np.sum(a) * np.ones(4), rtol=1e-13)
    np.testing.assert_allclose(gc, s * 3 * np.sum(d), rtol=1e-13)
    np.testing.assert_allclose(gd, s * 3 * c * np.ones((1, 4)), rtol=1e-13)
    np.testing.assert_allclose(ge, np.full((2, 1, 1), np.sum(a * b + c * d)), rtol=1e-13)
    assert (ga.shape, gb.shape, np.shape(gc), gd.shape, ge.shape) == ((3, 1), (4,), (), (1, 4), (2, 1, 1))
    # the same through every operator that broadcasts, against jacrev/jacfwd
    g = lambda a, b: np.sum(np.maximum(a, b) - a / (b * b + 1.0) + a ** 2 * b - np.where(a > b, a, b) + a @ b[:, :1].T)
    a, b = rng.standard_normal((3, 1)), rng.standard_normal((3, 3))
    ga, gb = grad(g, argnums=(0, 1))(a, b)
    assert ga.shape == (3, 1) and gb.shape == (3, 3)
    Ja, Jb = jacfwd(g, argnums=(0, 1))(a, b)
    np.testing.assert_allclose(ga, Ja, rtol=1e-13)
    np.testing.assert_allclose(gb, Jb, rtol=1e-13)


def test_broadcast_with_k_tangents(rng):
    x = rng.standard_normal((3, 1))
    T = rng.standard_normal((2, 3, 1))
    y = rng.standard_normal((1, 4))
    out = dual(x, T) * y + np.sin(dual(x, T))
    assert out.tangents.shape == (2, 3, 4)
    for k in range(2):
        np.testing.assert_allclose(out.tangents[k], T[k] * y + np.cos(x) * T[k], rtol=1e-15)


# -- the tape is freed -------------------------------------------------------------------------------

def _watch(refs):
    def f(x):
        refs.append(weakref.ref(x._trace))
        h = np.tanh(x @ x.T)
        refs.append(weakref.ref(stop_gradient(h)))  # an intermediate on the tape
        return np.sum(h * h), {"h": h}
    return f


def test_tape_released_after_grad(rng):
    x = rng.standard_normal((20, 5))
    refs = []
    g = grad(lambda x: _watch(refs)(x)[0])(x)
    gc.collect()
    assert len(refs) == 2 and all(r() is None for r in refs)
    assert g.shape == x.shape


def test_tape_released_after_grad_with_aux(rng):
    refs = []
    g, aux = grad(_watch(refs), has_aux=True)(rng.standard_normal((20, 5)))
    gc.collect()
    assert refs[0]() is None, "the trace outlived grad"
    assert type(aux["h"]) is np.ndarray


def test_tape_released_after_vjp_fn_dropped(rng):
    refs = []
    out, pullback = vjp(lambda x: _watch(refs)(x)[0], rng.standard_normal((20, 5)))
    gc.collect()
    assert refs[0]() is not None  # the pullback still needs it
    pullback(1.0)
    pullback(1.0)  # and can be called twice
    del pullback
    gc.collect()
    assert all(r() is None for r in refs)


def test_tape_released_in_forward_over_reverse_loop(rng):
    refs = []
    p = dual(rng.standard_normal((20, 5)), rng.standard_normal((2, 20, 5)))
    for _ in range(3):
        p = p - 0.01 * grad(lambda x: _watch(refs)(x)[0])(p)
    gc.collect()
    assert len(refs) == 6 and all(r() is None for r in refs)


def test_python_float_hyperparameter_stays_weak_through_arithmetic():
    """lr * 2.0 on a Python-float Dual is still weak: float32 params stay float32."""
    import autodiff as ad
    p = np.ones(3, dtype=np.float32)
    out, dout = ad.jvp(lambda lr: p - (lr * 2.0 + 1.0) / 3.0 * p, (0.1,), (1.0,))
    assert out.dtype == np.float32 and dout.dtype == np.float32
    g = ad.grad(lambda lr: np.sum(p * (lr * lr)))(0.5)
    np.testing.assert_allclose(g, 2 * 0.5 * 3)


def test_stack_mixes_python_numbers_and_boxes():
    """np.stack([1.0, x]) on a Dual or tape value (ops.expand_dims took .shape of a float)."""
    from autodiff import check_grads
    f = lambda x: np.sum(np.stack([1.0, x, 2.0 * x]) ** 2)
    check_grads(f, (np.float64(0.7),), order=2)
    assert grad(f)(0.7) == pytest.approx(2 * 0.7 + 8 * 0.7)


# -- basis_tangents ----------------------------------------------------------------------------------
def _stacked(t_tree, n):
    """The tangents of a basis_tangents tree as an (n directions, entries) matrix."""
    from autodiff.tree import tree_leaves
    return np.concatenate([np.reshape(t, (n, -1)) for t in tree_leaves(t_tree)], axis=1)


def test_basis_tangents_is_the_identity_over_the_entries():
    from autodiff import basis_tangents
    tree = {"a": np.zeros((2, 3), np.float32), "b": [0.5, np.ones(4)], "c": None}
    t = basis_tangents(tree)
    assert t["a"].shape == (11, 2, 3) and t["a"].dtype == np.float32
    assert np.shape(t["b"][0]) == (11,) and t["b"][0].dtype == np.float64 and t["c"] is None
    assert np.array_equal(_stacked(t, 11), np.eye(11))


def test_basis_tangents_chunks_tile_the_identity():
    from autodiff import basis_tangents
    rng = np.random.default_rng(3)
    tree = [rng.standard_normal(s) for s in [(3,), (), (2, 2), (5,)]]
    parts = [_stacked(basis_tangents(tree, lo, min(lo + 4, 13)), min(lo + 4, 13) - lo) for lo in range(0, 13, 4)]
    assert np.array_equal(np.concatenate(parts, axis=0), np.eye(13))


def test_basis_tangents_sparse_and_offset():
    from autodiff import basis_tangents
    tree = [np.zeros(3), np.zeros(2)]
    t = basis_tangents(tree, 3, 5, sparse=True)
    assert t[0] is None and np.array_equal(t[1], np.eye(2))
    # entries numbered from 2: direction 2 is entry 0 of the first leaf, in a space of 6 directions
    t = basis_tangents(tree, 0, 6, offset=2)
    assert np.array_equal(np.concatenate([t[0], t[1]], axis=1), np.eye(6, 5, k=-2))


def test_basis_tangents_seed_duals_to_the_jacobian():
    from autodiff import basis_tangents, dual, jacfwd
    rng = np.random.default_rng(4)
    w, b = rng.standard_normal((3, 2)), rng.standard_normal(2)
    f = lambda w, b: np.tanh(np.ones(3) @ w + b) ** 2
    tw, tb = basis_tangents((w, b))
    y = f(dual(w, tw), dual(b, tb))
    jw, jb = jacfwd(f, argnums=(0, 1))(w, b)
    assert np.array_equal(y.tangents.T, np.concatenate([jw.reshape(2, 6), jb], axis=1))


def test_basis_tangents_bad_range():
    from autodiff import basis_tangents
    with pytest.raises(ValueError, match="start <= stop"):
        basis_tangents([np.zeros(2)], 3, 1)
