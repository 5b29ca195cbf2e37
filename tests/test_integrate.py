"""autodiff.integrate: accuracy, derivatives and memory of the ODE integrators.

Reference values come from closed-form solutions (and their derivatives
worked out by hand), from the closed form of the discrete maps (Euler and
RK4 on a linear problem), or from central differences, never from the code
under test.
"""
import gc
import math
import tracemalloc
from typing import NamedTuple

import numpy as np
import pytest

from autodiff import check_grads, grad, jacfwd, jvp
from autodiff.integrate import (IntegrationError, Sensitivity, _DP_A, _DP_B, _DP_C, _DP_E,
                                _dopri_step, odeint, sensitivity, symplectic)


def decay(y, t, k):
    return -k * y


def logistic(y, t):
    return y * (1 - y)


def logistic_exact(t, y0):
    return 1 / (1 + (1 / y0 - 1) * np.exp(-t))


def oscillator(y, t, w):
    """x'' = -w^2 x as a first-order system y = [x, v]."""
    return np.stack([y[1], -w ** 2 * y[0]])


def spring(q, t, w):
    return -w ** 2 * q


def pendulum(y, t, p):
    return np.stack([y[1], -p[0] * np.sin(y[0]) - p[1] * y[1]])


def oscillator_exact(t, w, x0, v0):
    """x(t), v(t) and their derivatives in w, x0, v0 (by hand from
    x = x0 cos wt + (v0 / w) sin wt)."""
    c, s = np.cos(w * t), np.sin(w * t)
    x = x0 * c + v0 / w * s
    v = -x0 * w * s + v0 * c
    dx_dw = -x0 * t * s + v0 * (t * c / w - s / w ** 2)
    dv_dw = -x0 * (s + w * t * c) - v0 * t * s
    return x, v, {"w": (dx_dw, dv_dw), "x0": (c, -w * s), "v0": (s / w, c)}


# -- order of accuracy ----------------------------------------------------------------


@pytest.mark.parametrize("method, ratio", [("euler", 2.0), ("rk4", 16.0)])
def test_first_order_methods_converge_at_their_order(method, ratio):
    exact = logistic_exact(5.0, 0.1)
    errs = [abs(odeint(logistic, 0.1, (0.0, 5.0), method=method, steps=n) - exact) for n in (50, 100, 200)]
    for coarse, fine in zip(errs, errs[1:]):
        assert ratio * 0.9 < coarse / fine < ratio * 1.1, errs


@pytest.mark.parametrize("method, ratio", [("verlet", 4.0), ("leapfrog", 4.0), ("symplectic_euler", 2.0)])
def test_symplectic_methods_converge_at_their_order(method, ratio):
    w, T = 1.3, 5.0
    x_exact, v_exact, _ = oscillator_exact(T, w, 1.0, 0.5)
    errs = []
    for n in (100, 200, 400):
        x, v = symplectic(spring, 1.0, 0.5, T / n, n, w, method=method)
        errs.append(math.hypot(x - x_exact, v - v_exact))
    for coarse, fine in zip(errs, errs[1:]):
        assert ratio * 0.9 < coarse / fine < ratio * 1.1, errs


def test_dormand_prince_tableau_orders():
    """One step on y' = y: the propagated solution has local error O(h^6), the
    embedded one O(h^5); the tableau is consistent (rows of A sum to c)."""
    for row, c in zip(_DP_A, _DP_C):
        assert math.isclose(sum(row), c, abs_tol=1e-15)
    assert math.isclose(sum(_DP_B), 1.0, abs_tol=1e-15) and abs(sum(_DP_E)) < 1e-15

    def errors(h):
        F = lambda leaves, t: [leaves[0]]
        y5, _, ks = _dopri_step(F, [1.0], [1.0], 0.0, h)
        y4 = y5[0] - h * sum(e * k[0] for e, k in zip(_DP_E, ks))
        return abs(y5[0] - math.exp(h)), abs(y4 - math.exp(h))

    (e5a, e4a), (e5b, e4b) = errors(0.4), errors(0.2)
    assert 2 ** 6 * 0.8 < e5a / e5b < 2 ** 6 * 1.2
    assert 2 ** 5 * 0.8 < e4a / e4b < 2 ** 5 * 1.2


def test_rk45_error_follows_the_tolerance():
    exact = logistic_exact(5.0, 0.1)
    errs, counts = [], []
    for rtol in (1e-5, 1e-8, 1e-11):
        ts, ys = odeint(logistic, 0.1, (0.0, 5.0), method="rk45", rtol=rtol, atol=rtol * 1e-3, save_every=1)
        assert ts[-1] == 5.0 and np.all(np.diff(ts) > 0)
        errs.append(abs(ys[-1] - exact))
        counts.append(len(ts) - 1)
        assert errs[-1] < 100 * rtol
    assert errs[0] > errs[1] > errs[2] and counts[0] < counts[1] < counts[2]
    # a 5th-order method needs about (1e3)^(1/5) ~ 4x the steps for 1e-3x the tolerance
    assert 2.5 < counts[2] / counts[1] < 6


@pytest.mark.parametrize("method, kw", [("rk4", {"steps": 200}), ("rk45", {"rtol": 1e-10})])
def test_backward_in_time_returns_to_the_start(method, kw):
    y1 = odeint(pendulum, np.array([1.0, 0.3]), (0.0, 2.0), np.array([2.0, 0.1]), method=method, **kw)
    y0 = odeint(pendulum, y1, (2.0, 0.0), np.array([2.0, 0.1]), method=method, **kw)
    np.testing.assert_allclose(y0, [1.0, 0.3], atol=1e-7)


def test_dt_that_does_not_divide_the_interval_ends_exactly_at_t1():
    ts, ys = odeint(decay, 1.0, (0.0, 1.0), 1.0, method="rk4", dt=0.3, save_every=1)
    np.testing.assert_allclose(ts, [0.0, 0.3, 0.6, 0.9, 1.0])
    assert abs(ys[-1] - math.exp(-1.0)) < 1e-4
    y = odeint(decay, 1.0, (0.0, 1.0), 1.0, method="euler", dt=0.3)
    assert math.isclose(y, 0.7 ** 3 * 0.9, rel_tol=1e-12)  # three full steps and one of 0.1


# -- derivatives against closed forms --------------------------------------------------


def test_euler_and_rk4_sensitivities_equal_the_discrete_maps_derivatives():
    """On y' = -k y, N steps of size h give y0 R(-kh)^N exactly, with R(z) =
    1 + z (Euler) or 1 + z + z^2/2 + z^3/6 + z^4/24 (RK4)."""
    k, y0, T, N = 1.7, np.array([0.8, -2.0]), 1.5, 40
    h = T / N
    for method, R, dR in [("euler", lambda z: 1 + z, lambda z: 1.0),
                          ("rk4", lambda z: 1 + z + z ** 2 / 2 + z ** 3 / 6 + z ** 4 / 24,
                           lambda z: 1 + z + z ** 2 / 2 + z ** 3 / 6)]:
        z = -k * h
        s = sensitivity(decay, y0, (0.0, T), k, method=method, steps=N)
        np.testing.assert_allclose(s.y, y0 * R(z) ** N, rtol=1e-13)
        np.testing.assert_allclose(s.dy0, np.eye(2) * R(z) ** N, rtol=1e-13)
        np.testing.assert_allclose(s.dparams, y0 * N * R(z) ** (N - 1) * dR(z) * -h, rtol=1e-12)


@pytest.mark.parametrize("method, kw, tol", [("rk4", {"steps": 400}, 1e-9),
                                             ("rk45", {"rtol": 1e-11, "atol": 1e-13}, 1e-9),
                                             ("euler", {"steps": 4000}, 2e-3)])
def test_exponential_decay_sensitivities(method, kw, tol):
    k, y0, T = 1.7, 0.8, 2.0
    s = sensitivity(decay, np.array(y0), (0.0, T), np.array(k), method=method, **kw)
    assert isinstance(s, Sensitivity)
    np.testing.assert_allclose(s.y, y0 * np.exp(-k * T), rtol=tol)
    np.testing.assert_allclose(s.dy0, np.exp(-k * T), rtol=tol)
    np.testing.assert_allclose(s.dparams, -T * y0 * np.exp(-k * T), rtol=tol)


@pytest.mark.parametrize("method, kw, tol", [("rk4", {"steps": 300}, 1e-7),
                                             ("rk45", {"rtol": 1e-11, "atol": 1e-13}, 1e-8)])
def test_harmonic_oscillator_sensitivities(method, kw, tol):
    w, x0, v0, T = 1.3, 0.7, -0.4, 3.0
    s = sensitivity(oscillator, np.array([x0, v0]), (0.0, T), np.array(w), method=method, **kw)
    x, v, d = oscillator_exact(T, w, x0, v0)
    np.testing.assert_allclose(s.y, [x, v], atol=tol)
    np.testing.assert_allclose(s.dparams, d["w"], atol=tol)
    np.testing.assert_allclose(s.dy0, np.array([d["x0"], d["v0"]]).T, atol=tol)


@pytest.mark.parametrize("method", ["verlet", "symplectic_euler"])
def test_symplectic_sensitivities(method):
    w, x0, v0, T, n = 1.3, 0.7, -0.4, 3.0, 3000
    tol = 2e-5 if method == "verlet" else 2e-3
    jac = jacfwd(lambda w, x0, v0: np.stack(symplectic(spring, x0, v0, T / n, n, w, method=method)),
                 argnums=(0, 1, 2))(np.array(w), np.array(x0), np.array(v0))
    _, _, d = oscillator_exact(T, w, x0, v0)
    for got, name in zip(jac, ("w", "x0", "v0")):
        np.testing.assert_allclose(got, d[name], atol=tol)


def test_derivative_in_the_end_time_is_the_vector_field():
    """d y(t1) / d t1 = f(y(t1), t1) up to the discretization error: t_span may carry a tangent."""
    w, y0 = 1.3, np.array([0.7, -0.4])
    for method, kw in [("rk4", {"steps": 300}), ("rk45", {"rtol": 1e-11})]:
        y, dy = jvp(lambda t1: odeint(oscillator, y0, (0.0, t1), w, method=method, **kw), (2.5,), (1.0,))
        np.testing.assert_allclose(dy, oscillator(y, 2.5, w), rtol=1e-7)
    # with dt given, only the last (shortened) Euler step depends on t1:
    # y_n = y_{n-1} + (t1 - t_{n-1}) f(y_{n-1}), so d y_n / d t1 = f(y_{n-1}) exactly
    _, ys = odeint(oscillator, y0, (0.0, 2.5), w, method="euler", dt=1e-3, save_every=1)
    _, dy = jvp(lambda t1: odeint(oscillator, y0, (0.0, t1), w, method="euler", dt=1e-3), (2.5,), (1.0,))
    assert len(ys) == 2501
    np.testing.assert_allclose(dy, oscillator(ys[-2], 2.499, w), rtol=1e-12)


def test_derivative_in_dt_of_the_symplectic_steppers():
    """With steps fixed, the end time is steps * dt, so d q / d dt = steps * v."""
    n = 2000
    (q, v), (dq, dv) = jvp(lambda dt: symplectic(spring, 0.7, -0.4, dt, n, 1.3), (1e-3,), (1.0,))
    assert math.isclose(dq, n * v, rel_tol=1e-4)
    assert math.isclose(dv, n * -1.3 ** 2 * q, rel_tol=1e-4)


# -- forward vs reverse vs finite differences -------------------------------------------


@pytest.mark.parametrize("method, kw", [("euler", {"steps": 200}), ("rk4", {"steps": 100}),
                                        ("rk45", {"rtol": 1e-11, "atol": 1e-12})])
def test_check_grads_through_odeint(method, kw):
    y0, p = np.array([1.0, 0.3]), np.array([2.0, 0.1])
    check_grads(lambda y0, p: odeint(pendulum, y0, (0.0, 3.0), p, method=method, **kw), (y0, p),
                atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("method", ["verlet", "symplectic_euler"])
def test_check_grads_through_symplectic(method):
    def run(q0, v0, w):
        q, v = symplectic(lambda q, t, w: -w[0] * np.sin(q), q0, v0, 0.05, 60, w, method=method)
        return np.concatenate([q, v])

    check_grads(run, (np.array([1.0, -0.5]), np.array([0.2, 0.0]), np.array([2.0])), atol=1e-6, rtol=1e-5)


def test_rk45_derivative_is_that_of_the_frozen_step_sequence():
    """Replaying the accepted steps as fixed Dormand-Prince steps gives a map
    whose central difference matches the rk45 tangent tightly; the finite
    difference of rk45 itself (which re-chooses steps) only to about the tolerance."""
    y0, p, dp = np.array([1.0, 0.3]), np.array([2.0, 0.1]), np.array([0.3, -1.0])
    opts = {"method": "rk45", "rtol": 1e-5, "atol": 1e-8}
    ts, _ = odeint(pendulum, y0, (0.0, 3.0), p, save_every=1, **opts)
    y, dy = jvp(lambda p: odeint(pendulum, y0, (0.0, 3.0), p, **opts), (p,), (dp,))

    def replay(p):
        F = lambda leaves, t: [pendulum(leaves[0], t, p)]
        state, k = [y0], F([y0], 0.0)
        for t, t_next in zip(ts, ts[1:]):
            state, k, _ = _dopri_step(F, state, k, t, t_next - t)
        return state[0]

    np.testing.assert_allclose(replay(p), y, rtol=1e-12)
    eps = 1e-6
    fd_frozen = (replay(p + eps * dp) - replay(p - eps * dp)) / (2 * eps)
    np.testing.assert_allclose(dy, fd_frozen, rtol=1e-8, atol=1e-9)
    fd_adaptive = (odeint(pendulum, y0, (0.0, 3.0), p + eps * dp, **opts)
                   - odeint(pendulum, y0, (0.0, 3.0), p - eps * dp, **opts)) / (2 * eps)
    np.testing.assert_allclose(dy, fd_adaptive, atol=1e-3)


def test_reverse_mode_through_rk45_and_pytree_state():
    class State(NamedTuple):
        x: np.ndarray
        v: np.ndarray

    def f(s, t, params):
        return State(s.v, -params["k"] * s.x - params["c"] * s.v)

    def loss(params, x0):
        s = odeint(f, State(x0, np.zeros(2)), (0.0, 2.0), params, method="rk45", rtol=1e-10)
        return np.sum(s.x ** 2) + np.sum(s.v)

    params, x0 = {"k": np.array([1.0, 4.0]), "c": 0.2}, np.array([1.0, -0.5])
    g = grad(loss, argnums=(0, 1))(params, x0)
    assert set(g[0]) == {"k", "c"} and g[0]["k"].shape == (2,) and np.shape(g[0]["c"]) == ()
    _, dk = jvp(lambda k: loss({"k": k, "c": 0.2}, x0), (params["k"],), (np.array([1.0, 0.0]),))
    _, dc = jvp(lambda c: loss({"k": params["k"], "c": c}, x0), (0.2,), (1.0,))
    assert math.isclose(g[0]["k"][0], dk, rel_tol=1e-9) and math.isclose(g[0]["c"], dc, rel_tol=1e-9)


def test_sensitivity_with_a_pytree_state_and_params():
    def f(y, t, p):
        return {"a": -p["k"] * y["a"], "b": p["k"] * y["a"] - p["m"] * y["b"]}

    y0, p, T = {"a": np.array(1.0), "b": np.array(0.0)}, {"k": np.array(0.5), "m": np.array(0.2)}, 2.0
    s = sensitivity(f, y0, (0.0, T), p, method="rk4", steps=200)
    k, m = 0.5, 0.2
    b = k / (m - k) * (np.exp(-k * T) - np.exp(-m * T))   # A -> B -> (out), by hand
    np.testing.assert_allclose(s.y["a"], np.exp(-k * T), rtol=1e-9)
    np.testing.assert_allclose(s.y["b"], b, rtol=1e-9)
    np.testing.assert_allclose(s.dparams["a"]["k"], -T * np.exp(-k * T), rtol=1e-9)
    np.testing.assert_allclose(s.dparams["a"]["m"], 0.0, atol=1e-15)
    np.testing.assert_allclose(s.dy0["b"]["b"], np.exp(-m * T), rtol=1e-9)
    np.testing.assert_allclose(s.dy0["b"]["a"], b, rtol=1e-9)  # linear in a0, a0 = 1
    eps = 1e-6
    fd = (odeint(f, y0, (0.0, T), {"k": k + eps, "m": m}, steps=200)["b"]
          - odeint(f, y0, (0.0, T), {"k": k - eps, "m": m}, steps=200)["b"]) / (2 * eps)
    np.testing.assert_allclose(s.dparams["b"]["k"], fd, rtol=1e-7)


def test_sensitivity_without_params():
    s = sensitivity(logistic, np.array([0.1, 0.5]), (0.0, 2.0), steps=100)
    assert s.dparams is None
    y0 = np.array([0.1, 0.5])
    e = np.exp(-2.0)   # d/dy0 of 1 / (1 + (1/y0 - 1) e^-t), by hand
    expected = e / y0 ** 2 / (1 + (1 / y0 - 1) * e) ** 2
    np.testing.assert_allclose(s.y, logistic_exact(2.0, y0), rtol=1e-7)
    np.testing.assert_allclose(s.dy0, np.diag(expected), rtol=1e-6, atol=1e-14)


# -- trajectories, dtypes ---------------------------------------------------------------


def test_save_every_subsamples_and_ends_at_the_final_state():
    y0, p = np.array([1.0, 0.3]), np.array([2.0, 0.1])
    final = odeint(pendulum, y0, (0.0, 1.0), p, steps=10)
    ts, ys = odeint(pendulum, y0, (0.0, 1.0), p, steps=10, save_every=3)
    np.testing.assert_allclose(ts, [0.0, 0.3, 0.6, 0.9, 1.0])
    assert ys.shape == (5, 2)
    np.testing.assert_array_equal(ys[0], y0)
    np.testing.assert_array_equal(ys[-1], final)
    np.testing.assert_array_equal(ys[1], odeint(pendulum, y0, (0.0, 0.3), p, steps=3))
    # a trajectory carries tangents too
    _, dys = jvp(lambda p: odeint(pendulum, y0, (0.0, 1.0), p, steps=10, save_every=3)[1], (p,),
                 (np.array([1.0, 0.0]),))
    _, dfinal = jvp(lambda p: odeint(pendulum, y0, (0.0, 1.0), p, steps=10), (p,), (np.array([1.0, 0.0]),))
    assert dys.shape == (5, 2) and np.all(dys[0] == 0)
    np.testing.assert_allclose(dys[-1], dfinal, rtol=1e-14)
    ts, qs, vs = symplectic(spring, np.zeros(3), np.ones(3), 0.1, 7, 1.0, save_every=2)
    np.testing.assert_allclose(ts, [0.0, 0.2, 0.4, 0.6, 0.7])
    assert qs.shape == vs.shape == (5, 3)
    np.testing.assert_array_equal(qs[-1], symplectic(spring, np.zeros(3), np.ones(3), 0.1, 7, 1.0)[0])


@pytest.mark.parametrize("method, kw", [("euler", {"steps": 5}), ("rk4", {"dt": 0.1}), ("rk45", {})])
def test_float32_state_stays_float32(method, kw):
    y = odeint(decay, np.ones(3, np.float32), (0.0, 1.0), 0.5, method=method, **kw)
    assert y.dtype == np.float32
    q, v = symplectic(spring, np.ones(2, np.float32), np.zeros(2, np.float32), 0.1, 5, 1.0)
    assert q.dtype == v.dtype == np.float32


# -- energy behaviour ------------------------------------------------------------------


def test_symplectic_energy_error_stays_bounded_while_euler_drifts():
    """A pendulum over ~300 periods: Verlet's and symplectic Euler's energy
    errors oscillate without growing; explicit Euler's energy grows steadily."""
    w2, q0, dt, n = 1.0, 1.0, 0.1, 20_000
    energy = lambda q, v: 0.5 * v ** 2 - w2 * np.cos(q)
    e0 = energy(q0, 0.0)
    accel = lambda q, t: -w2 * np.sin(q)
    for method, bound in (("verlet", 0.5 * dt ** 2), ("symplectic_euler", 0.5 * dt)):
        _, qs, vs = symplectic(accel, q0, 0.0, dt, n, method=method, save_every=10)
        err = np.abs(energy(qs, vs) - e0)
        tenth = len(err) // 10
        assert err.max() < bound, (method, err.max())
        assert err[-tenth:].max() < 1.5 * err[:tenth].max(), method  # no drift
    _, ys = odeint(lambda y, t: np.stack([y[1], -w2 * np.sin(y[0])]), np.array([q0, 0.0]), (0.0, n * dt),
                   method="euler", steps=n, save_every=10)
    drift = energy(ys[:, 0], ys[:, 1]) - e0
    tenth = len(drift) // 10
    assert drift[:tenth].mean() < drift[4 * tenth:5 * tenth].mean() < drift[-tenth:].mean()
    assert drift[-1] > 100 * 0.5 * dt ** 2


# -- memory -----------------------------------------------------------------------------


def _sensitivity_run(steps):
    s = sensitivity(decay, np.array([1.0]), (0.0, 1.0), np.array(2.0), method="euler", steps=steps)
    return s.dparams


def _peak(steps):
    """Peak traced memory of a run after a traced warm-up run (see tests/test_memory.py: the
    warm-up fills CPython's free lists with traced blocks, which would otherwise read as growth)."""
    gc.collect()
    tracemalloc.start()
    try:
        _sensitivity_run(1000)  # no gc.collect() after it: a full collection empties the free lists
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        d = _sensitivity_run(steps)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert np.all(np.isfinite(d))
    return peak


def test_forward_sensitivity_memory_is_flat_in_steps():
    short, long = _peak(1_000), _peak(10_000)
    assert long <= short + 20_000, f"peak grew from {short} B (1e3 steps) to {long} B (1e4 steps)"


def test_saved_trajectory_memory_grows_with_saved_points():
    """The contrast (and a check that _peak can see growth): keeping every state costs memory."""
    def peak_saving(steps):
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            jvp(lambda k: odeint(decay, np.array([1.0]), (0.0, 1.0), k, method="euler", steps=steps,
                                 save_every=1)[1], (np.array(2.0),), (np.array(1.0),))
            return tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()

    assert peak_saving(2000) > peak_saving(200) + 100_000


@pytest.mark.slow
def test_forward_sensitivity_memory_is_flat_over_1e5_steps():
    short, long = _peak(1_000), _peak(100_000)
    assert long <= short + 20_000, f"peak grew from {short} B (1e3 steps) to {long} B (1e5 steps)"


# -- errors -----------------------------------------------------------------------------


def test_clear_errors():
    y0 = np.array([1.0, 0.0])
    with pytest.raises(ValueError, match="unknown method 'rk5'.*euler, rk4, rk45"):
        odeint(oscillator, y0, (0.0, 1.0), 1.0, method="rk5", steps=10)
    with pytest.raises(ValueError, match="unknown method 'yoshida'.*verlet, leapfrog, symplectic_euler"):
        symplectic(spring, 1.0, 0.0, 0.1, 10, 1.0, method="yoshida")
    for bad in (0, -3):
        with pytest.raises(ValueError, match="steps must be a positive integer"):
            odeint(oscillator, y0, (0.0, 1.0), 1.0, steps=bad)
        with pytest.raises(ValueError, match="steps must be a positive integer"):
            symplectic(spring, 1.0, 0.0, 0.1, bad, 1.0)
        with pytest.raises(ValueError, match="dt must be positive"):
            odeint(oscillator, y0, (0.0, 1.0), 1.0, dt=bad)
        with pytest.raises(ValueError, match="dt must be positive"):
            symplectic(spring, 1.0, 0.0, float(bad), 10, 1.0)
    with pytest.raises(TypeError, match="steps must be an integer"):
        odeint(oscillator, y0, (0.0, 1.0), 1.0, steps=10.5)
    with pytest.raises(ValueError, match="exactly one of steps or dt"):
        odeint(oscillator, y0, (0.0, 1.0), 1.0)
    with pytest.raises(ValueError, match="exactly one of steps or dt"):
        odeint(oscillator, y0, (0.0, 1.0), 1.0, steps=10, dt=0.1)
    with pytest.raises(ValueError, match="rk45 chooses its own steps"):
        odeint(oscillator, y0, (0.0, 1.0), 1.0, method="rk45", steps=10)
    with pytest.raises(ValueError, match="save_every must be a positive integer"):
        odeint(oscillator, y0, (0.0, 1.0), 1.0, steps=10, save_every=0)
    with pytest.raises(ValueError, match=r"returned shape \(3,\) for a state of shape \(2,\)"):
        odeint(lambda y, t: np.zeros(3), y0, (0.0, 1.0), steps=10)
    with pytest.raises(ValueError, match=r"returned shape \(\) for a state of shape \(2,\)"):
        odeint(lambda y, t: 0.0, y0, (0.0, 1.0), method="rk45")
    with pytest.raises(ValueError, match="returned a value structured as"):
        odeint(lambda y, t: [y[1], -y[0]], y0, (0.0, 1.0), steps=10)
    with pytest.raises(ValueError, match=r"accel returned shape \(1,\) for a state of shape \(2,\)"):
        symplectic(lambda q, t: q[:1], np.ones(2), np.ones(2), 0.1, 5)
    with pytest.raises(ValueError, match="v0 must have the structure and shapes of q0"):
        symplectic(spring, np.ones(2), np.ones(3), 0.1, 5, 1.0)


def test_rk45_max_steps_and_step_underflow():
    with pytest.raises(IntegrationError, match="max_steps=5 step attempts exceeded"):
        odeint(oscillator, np.array([1.0, 0.0]), (0.0, 10.0), 1.0, method="rk45", max_steps=5)
    # y' = y^2, y(0) = 1 blows up at t = 1
    with pytest.raises(IntegrationError, match=r"step size underflow at t=(0\.99|1\.0000)"):
        odeint(lambda y, t: y ** 2, 1.0, (0.0, 2.0), method="rk45")
    # f that turns non-finite: every step is rejected until the step underflows
    with pytest.raises(IntegrationError, match="step size underflow"):
        odeint(lambda y, t: np.where(t > 0.5, np.nan, -y), np.ones(2), (0.0, 1.0), method="rk45")


# -- one calling convention: f(y, t, params), extra arguments in args= -------------------


def damped(y, t, p):
    """x'' = -w^2 x - c x' with params p = (w, c), a tuple passed as one argument."""
    w, c = p
    return np.stack([y[1], -w ** 2 * y[0] - c * y[1]])


def damped_args(y, t, w, c):
    return damped(y, t, (w, c))


def test_params_is_one_argument_in_odeint_symplectic_and_sensitivity():
    y0, p = np.array([1.0, 0.0]), (1.3, 0.2)
    ref = odeint(damped, y0, (0.0, 2.0), p, steps=200)
    # the same run with the two numbers as extra arguments, and split between params and args
    np.testing.assert_array_equal(odeint(damped_args, y0, (0.0, 2.0), args=p, steps=200), ref)
    np.testing.assert_array_equal(
        odeint(lambda y, t, w, c: damped(y, t, (w, c)), y0, (0.0, 2.0), 1.3, args=(0.2,), steps=200),
        ref)
    # sensitivity differentiates params (a tuple pytree) and passes args through untouched
    s = sensitivity(damped, y0, (0.0, 2.0), p, steps=200)
    np.testing.assert_array_equal(s.y, ref)
    s2 = sensitivity(lambda y, t, w, c: damped(y, t, (w, c)), y0, (0.0, 2.0), 1.3, args=(0.2,),
                     steps=200)
    np.testing.assert_allclose(s2.y, ref, rtol=1e-15)
    np.testing.assert_allclose(s2.dparams, s.dparams[0], rtol=1e-12)   # d y / d w
    np.testing.assert_allclose(s2.dy0, s.dy0, rtol=1e-12)
    eps = 1e-6
    fd = (odeint(damped, y0, (0.0, 2.0), (1.3, 0.2 + eps), steps=200)
          - odeint(damped, y0, (0.0, 2.0), (1.3, 0.2 - eps), steps=200)) / (2 * eps)
    np.testing.assert_allclose(s.dparams[1], fd, rtol=1e-6)
    # symplectic: accel(q, t, params), with args after it
    q, v = symplectic(lambda q, t, p: -p["w"] ** 2 * q, 1.0, 0.0, 0.01, 50, {"w": 1.3})
    q2, v2 = symplectic(lambda q, t, w, extra: -w ** 2 * q + extra, 1.0, 0.0, 0.01, 50, 1.3,
                        args=(0.0,))
    q3, v3 = symplectic(spring, 1.0, 0.0, 0.01, 50, args=(1.3,))
    assert q == q2 == q3 and v == v2 == v3


def test_a_tuple_of_arguments_in_the_place_of_params_gets_a_hint():
    y0 = np.array([1.0, 0.0])
    # the old convention, odeint(f, y0, t_span, (w, c)) for an f(y, t, w, c)
    with pytest.raises(TypeError, match=r"f\(y, t, params\) with params as one argument.*args="):
        odeint(damped_args, y0, (0.0, 1.0), (1.3, 0.2), steps=10)
    with pytest.raises(TypeError, match="accel.*args="):
        symplectic(lambda q, t, w, c: -w * q, 1.0, 0.0, 0.1, 5, (1.3, 0.2))
    with pytest.raises(TypeError, match="args must be a tuple"):
        odeint(decay, 1.0, (0.0, 1.0), args=0.5, steps=10)
    with pytest.raises(TypeError, match="args must be a tuple"):
        sensitivity(decay, np.ones(1), (0.0, 1.0), 0.5, args=0.5, steps=10)
