"""Traced arrays are as mutable as ndarrays: in-place writes, augmented
assignment, out=, ufunc.at, copyto, fill, and views that write through.

Each program runs three ways on the same inputs: plain numpy (the reference
for the values, mutations and aliasing included), forward mode (jvp, jacfwd)
and reverse mode (grad / vjp); derivatives are checked against central
differences by check_grads, to second order.
"""
import copy

import numpy as np
import pytest

from autodiff import check_grads, dual, grad, hvp, jacfwd, jacrev, jvp, vjp
from autodiff.core import primal_value
from autodiff.dual import Dual
from autodiff.tape import Var


def stencil(u0):
    u = u0.copy()
    for _ in range(3):
        u_prev = u.copy()
        u[1:-1] = u_prev[1:-1] + 0.1 * (u_prev[2:] - 2 * u_prev[1:-1] + u_prev[:-2])
    return u


def masked_writes(x):
    y = x.copy()
    y[y > 0] = y[y > 0] ** 1.5
    y *= 2.0
    y -= 1.0
    y /= 1.5
    y **= 2
    return y


def scatter(x):
    z = np.zeros_like(x)
    np.add.at(z, np.array([0, 2, 0, 1]), x[:4] * 2.0)
    np.subtract.at(z, np.array([3, 3]), x[4:6])
    return z


def write_through_view(x):
    u = x.copy()
    v = u[1:-1]
    v[...] = 0.5 * v
    v[0] += 1.0
    return u


def augmented_slices(x):
    u = x * 1.0
    u[1:] += u[:-1] * 0.5
    u[::2] *= 3.0
    u[-1] -= u[0]
    return u


def out_arguments(x):
    z = np.empty_like(x)
    np.multiply(x, x, out=z)
    np.add(z, 1.0, out=z)
    np.sin(z, out=(z,))
    return z


def fancy_repeats(x):
    z = np.zeros_like(x)
    z[np.array([0, 1, 0])] = x[:3] * np.array([1.0, 2.0, 3.0])   # the last write to 0 wins, as in numpy
    return z


def reflect(pos):
    pos = pos.copy()
    is_out = pos > 0.5
    pos[is_out] *= -1
    pos[np.array([0, 3]), ] *= 2.0
    return pos


def views_held_across_writes(x):
    u = x * 1.0
    left = u[:-1]
    r = u.reshape(2, 4)
    u[0] = 3.0 * u[1]
    r[1, 1] = left[2] * 2.0
    t = u.reshape(4, 2).T
    t[0, 1] += 1.0
    return np.concatenate([left * u[1:], r.ravel() ** 2, (t * u.reshape(4, 2).T).ravel()])


def copyto_fill(x):
    z = np.ones_like(x)
    np.copyto(z, x * 2.0, where=x > 0)
    w = np.empty_like(x)
    w.fill(x[0])
    f = np.full_like(x, 0.5)
    f[2:4] = x[2:4]
    return z * w + f


def two_dimensional(a):
    g = a.copy()
    g[1:-1, 1:-1] = 0.25 * (a[:-2, 1:-1] + a[2:, 1:-1] + a[1:-1, :-2] + a[1:-1, 2:])
    g[:, 0] = g[:, 1]
    g[0] = g[1]
    return g


def check_second_order(f, x):
    """First order three ways; second order by forward-over-forward,
    forward-over-reverse and reverse-over-reverse (reverse-over-forward through
    a write into a Dual is refused: see test_reverse_over_forward_writes_are_refused)."""
    check_grads(f, (x,), order=1)
    rng = np.random.default_rng(0)
    v, u = rng.standard_normal(x.shape), rng.standard_normal(np.shape(f(x)))
    jv = lambda x: jvp(f, (x,), (v,))[1]
    jtu = lambda x: vjp(f, x)[1](u)[0]
    check_grads(jv, (x,), order=1, modes=("fwd",))
    check_grads(jtu, (x,), order=1)


PROGRAMS = [stencil, masked_writes, scatter, write_through_view, augmented_slices, out_arguments, fancy_repeats,
            reflect, views_held_across_writes, copyto_fill]


def _input(f):
    rng = np.random.default_rng(1)
    if f is two_dimensional:
        return rng.standard_normal((5, 4))
    x = rng.standard_normal(8)
    return np.where(np.abs(x - 0.5) < 0.05, 0.3, x)  # away from reflect's threshold


@pytest.mark.parametrize("f", PROGRAMS + [two_dimensional], ids=lambda f: f.__name__)
def test_values_equal_numpy_and_derivatives_agree_three_ways(f):
    x = _input(f)
    expected = f(x.copy())
    out_f, _ = jvp(f, (x.copy(),), (np.ones_like(x),))
    out_r = vjp(f, x.copy())[0]
    np.testing.assert_array_equal(out_f, expected)    # the primal run is numpy's, bit for bit
    np.testing.assert_array_equal(out_r, expected)
    check_second_order(f, x)
    np.testing.assert_allclose(jacfwd(f)(x), jacrev(f)(x), rtol=1e-12, atol=1e-12)


def test_the_function_does_not_mutate_its_input_unless_numpy_would():
    x = np.arange(8.0)
    for f in PROGRAMS:
        before = x.copy()
        jvp(f, (x,), (np.ones(8),))
        grad(lambda x: np.sum(f(x)))(x)
        np.testing.assert_array_equal(x, before)


def test_a_dual_is_mutable_with_numpys_view_semantics():
    u = dual(np.arange(6.0), np.eye(6))
    v = u[1:-1]
    v[...] = 0.0
    assert isinstance(v, Dual)
    np.testing.assert_array_equal(u.primal, [0, 0, 0, 0, 0, 5])
    np.testing.assert_array_equal(u.tangents.sum(axis=1), [1, 0, 0, 0, 0, 1])
    w = u.reshape(2, 3)
    w[1, 2] = dual(7.0, np.full(6, 2.0))
    assert u.primal[5] == 7.0 and (u.tangents[:, 5] == 2.0).all()


def test_a_write_into_a_result_does_not_reach_the_values_it_was_computed_from():
    x = dual(np.arange(4.0), np.ones(4))
    y = x + 0.0            # y's tangent is x's tangent itself until y is written
    v = y[1:]              # a view taken before the write keeps seeing y
    y[0] = dual(10.0, 5.0)
    v[0] = dual(20.0, 6.0)
    np.testing.assert_array_equal(x.tangent, np.ones(4))
    np.testing.assert_array_equal(x.primal, np.arange(4.0))
    np.testing.assert_array_equal(y.primal, [10, 20, 2, 3])
    np.testing.assert_array_equal(y.tangent, [5, 6, 1, 1])
    np.testing.assert_array_equal(v.tangent, [6, 1, 1])


def test_allocation_from_a_traced_value_gives_a_traced_value():
    def f(x):
        outs = [np.zeros_like(x), np.ones_like(x), np.empty_like(x), np.full_like(x, 2.0), x.copy(),
                np.copy(x), copy.deepcopy(x)]
        for o in outs:
            assert type(o) is type(x) and o.shape == x.shape
        outs[2][...] = 0.0
        for o in outs[:4]:
            o[1] = x[0] * 3.0
        return sum(np.sum(o) for o in outs)
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(grad(f)(x), jacfwd(f)(x))
    check_second_order(f, x)
    assert np.zeros_like(dual(np.ones(2), np.ones(2)), dtype=int).dtype == int  # no derivative: plain


def test_writing_a_traced_value_into_a_plain_array_is_refused_with_the_fix():
    def f(x):
        acc = np.zeros(3)
        acc += x
        return acc
    for transform in (lambda f: grad(lambda x: np.sum(f(x))), lambda f: jacfwd(f)):
        with pytest.raises(TypeError, match="zeros_like"):
            transform(f)(np.ones(3))

    def g(x):
        acc = np.zeros(3)
        np.add.at(acc, [0, 0], x[:2])
        return acc
    with pytest.raises(TypeError, match="zeros_like"):
        jacfwd(g)(np.ones(3))


def test_reverse_mode_writes_keep_the_tape_right_for_values_read_before_the_write():
    def f(x):
        u = x * 1.0
        a = u * u          # reads u before the write
        u[0] = 0.0
        return np.sum(a) + np.sum(u ** 3)
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(grad(f)(x), 2 * x + np.array([0.0, 3 * 4.0, 3 * 9.0]))
    check_second_order(f, x)


def test_forward_over_reverse_through_in_place_writes():
    def loss(w):
        u = np.zeros_like(w)
        u[1:] = w[:-1] * w[1:]
        u[0] += w[0]
        return np.sum(u ** 2)
    w, v = np.array([0.5, -1.0, 2.0]), np.array([1.0, 0.5, -0.3])
    fd = (grad(loss)(w + 1e-6 * v) - grad(loss)(w - 1e-6 * v)) / 2e-6
    np.testing.assert_allclose(hvp(loss, w, v), fd, atol=1e-6)


def test_inner_derivatives_cannot_be_written_into_outer_arrays():
    x = dual(np.zeros(2), np.ones(2))

    def inner(y):
        x[0] = y
        return y
    with pytest.raises(TypeError, match="inner differentiation"):
        jvp(inner, (1.0,), (1.0,))


def test_scalar_elements_rebind_like_numpy_scalars():
    def f(x):
        u = x.copy()
        s = u[0]
        s += 1.0           # a numpy scalar: rebinds, u is unchanged
        u[1] = s
        return u
    x = np.array([1.0, 2.0])
    np.testing.assert_array_equal(vjp(f, x)[0], f(x))
    check_second_order(f, x)


def test_reverse_over_forward_writes_are_refused():
    def f(x):
        u = x * 1.0
        a = u * u
        u[0] = 0.0
        return np.sum(a) + np.sum(u ** 3)
    v = np.array([0.3, -0.2, 0.5])
    with pytest.raises(NotImplementedError, match="jvp of grad"):
        grad(lambda x: jvp(f, (x,), (v,))[1])(np.array([1.0, 2.0, 3.0]))


def test_writes_replay_under_jit():
    from autodiff import jit

    def step(u):
        v = u.copy()
        v[1:-1] = u[1:-1] + 0.1 * (u[2:] - 2 * u[1:-1] + u[:-2])
        v[0] += v[-1]
        z = np.zeros_like(v)
        np.add.at(z, np.array([0, 1, 0]), v[:3])
        z[np.array([2, 2])] = v[:2] * 3.0
        return v + z

    jitted, loss = jit(step), lambda y: np.sum(step(y) ** 2)
    jitted_grad = jit(grad(loss))
    rng = np.random.default_rng(0)
    for _ in range(3):   # the recording call, then replays
        x, v = rng.standard_normal(6), rng.standard_normal(6)
        d = dual(x, rng.standard_normal((2, 6)))
        a, b = jitted(d), step(d)
        np.testing.assert_array_equal(a.primal, b.primal)
        np.testing.assert_array_equal(a.tangents, b.tangents)
        np.testing.assert_array_equal(jitted_grad(x), grad(loss)(x))
        np.testing.assert_array_equal(jvp(jitted_grad, (x,), (v,))[1], jvp(grad(loss), (x,), (v,))[1])


def test_nested_write_that_a_live_view_could_not_follow_is_refused():
    def f(x):
        u = x.copy()
        v = u[1:]
        u[0] = u[0] ** 3     # the value's tangent carries the outer jvp's derivative
        return np.sum(v * v) + u[0]
    x, t = np.array([1.0, 2.0, 3.0]), np.ones(3)
    with pytest.raises(NotImplementedError, match="live views"):
        jvp(lambda x: jvp(f, (x,), (t,))[1], (x,), (t,))

    def g(x):                # without the view: exact
        u = x.copy()
        u[0] = u[0] ** 3
        return np.sum(u * u)
    check_grads(lambda x: jvp(g, (x,), (t,))[1], (x,), order=1, modes=("fwd",))
