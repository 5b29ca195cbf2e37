# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · Differentiating through simulations
#
# A simulation is a loop: start from an initial state, apply a time-stepping
# rule a few hundred or thousand times, read off an outcome. The integrators in
# `autodiff.integrate` (Euler, RK4, Dormand–Prince, velocity Verlet) are written
# in plain numpy, so dual numbers (notebook 01) flow through them like through
# any other code. The outcome then comes back with its derivatives with respect
# to whatever carried a tangent in: physical parameters, initial conditions,
# even the length of the last time step. As in notebook 03, forward mode keeps
# nothing of the past steps, so its memory does not grow with their number.
#
# Three problems, each with derivatives checked against something independent:
#
# 1. **Parameter fitting.** Recover a damped oscillator's frequency, damping
#    and initial displacement from a noisy trajectory by Gauss–Newton, with the
#    Jacobian of the residuals from forward mode through RK4.
# 2. **An event: hitting the ground.** Find the launch angle that maximizes a
#    projectile's range under quadratic air drag. The landing time depends on
#    the angle; we differentiate it with the implicit function theorem.
# 3. **Chaos.** In the Lorenz system the derivative of the final state with
#    respect to the initial state grows like $e^{\lambda T}$; we measure the
#    Lyapunov exponent $\lambda$ from it and look at what this means for
#    long-horizon hypergradients (notebooks 03 and 06).
# 4. **Code as written.** A finite-difference stencil in the style of
#    published numpy codes, which updates its grid in place, differentiated
#    without changing a line.

# %%
import time

import numpy as np
import matplotlib.pyplot as plt
from scipy.integrate import solve_ivp  # independent references, for checks only
from scipy.optimize import curve_fit

from autodiff import Dual, dual, grad, jacfwd, jvp, stop_gradient
from autodiff.integrate import odeint

notebook_start = time.perf_counter()

# %% [markdown]
# ## 1. Fitting a damped oscillator to noisy data
#
# The model is $\ddot x + 2\zeta\omega\,\dot x + \omega^2 x = 0$ with
# $x(0) = x_0$, $\dot x(0) = 0$: natural frequency $\omega$, damping ratio
# $\zeta$. As a first-order system in the state $(x, v)$ it is
# $\dot x = v$, $\dot v = -2\zeta\omega v - \omega^2 x$. We integrate it with
# RK4 (200 steps over 10 time units) and keep every second state, which gives
# the model's prediction at the 101 observation times.
#
# For $\zeta < 1$ there is a closed form,
# $x(t) = x_0 e^{-\zeta\omega t}\bigl(\cos\omega_d t + \tfrac{\zeta\omega}{\omega_d}\sin\omega_d t\bigr)$
# with $\omega_d = \omega\sqrt{1-\zeta^2}$. We use it only to make the data
# and to check the integrator; the fit itself sees only the simulation.

# %%
def oscillator(state, t, params):
    # odeint calls f(y, t, params), params as one argument: here the tuple (omega, zeta)
    x, v = state
    omega, zeta = params
    return (v, -2 * zeta * omega * v - omega**2 * x)


T_OBS, STEPS, EVERY = 10.0, 200, 2
t_obs = np.linspace(0.0, T_OBS, STEPS // EVERY + 1)


def simulate(theta):
    """x at the observation times for theta = (omega, zeta, x0); theta may be Duals."""
    omega, zeta, x0 = theta[0], theta[1], theta[2]
    ts, (xs, vs) = odeint(oscillator, (x0, 0.0), (0.0, T_OBS), (omega, zeta),
                          method="rk4", steps=STEPS, save_every=EVERY)
    return xs


def closed_form(theta, t):
    omega, zeta, x0 = theta
    wd = omega * np.sqrt(1 - zeta**2)
    return x0 * np.exp(-zeta * omega * t) * (np.cos(wd * t) + zeta * omega / wd * np.sin(wd * t))


theta_true = np.array([2.0, 0.1, 1.0])  # omega, zeta, x0
integration_error = np.max(np.abs(simulate(theta_true) - closed_form(theta_true, t_obs)))
print(f"RK4 vs closed form, max error over the trajectory: {integration_error:.1e}")
assert integration_error < 1e-5

noise = 0.05
rng = np.random.default_rng(7)
x_data = closed_form(theta_true, t_obs) + noise * rng.standard_normal(t_obs.size)

# %% [markdown]
# The fit minimizes $L(\theta) = \tfrac12\lVert r(\theta)\rVert^2$ over the residuals
# $r(\theta) = x_{\text{sim}}(t_i; \theta) - x_i^{\text{data}}$. There are 3
# parameters and 101 residuals, so forward mode is the natural choice:
# `jacfwd` carries 3 tangents through the 200 RK4 steps in one pass and returns
# the whole $101 \times 3$ Jacobian $J$. That gives both the gradient
# $\nabla L = J^\top r$ and the Gauss–Newton approximation $J^\top J$ of the
# Hessian.
#
# First the derivatives, checked at the initial guess: the Jacobian against
# central finite differences, and $J^\top r$ against reverse mode (`grad`
# records all 200 steps on its tape and sweeps it backward: same number,
# memory linear in the number of steps).

# %%
def residuals(theta):
    return simulate(theta) - x_data


def loss(theta):
    r = residuals(theta)
    return 0.5 * np.sum(r * r)


theta_init = np.array([1.6, 0.3, 0.7])
J = jacfwd(residuals)(theta_init)
h = 1e-6
J_fd = np.stack([(residuals(theta_init + h * e) - residuals(theta_init - h * e)) / (2 * h)
                 for e in np.eye(3)], axis=1)
grad_fwd = J.T @ residuals(theta_init)
grad_rev = grad(loss)(theta_init)
print("Jacobian shape", J.shape)
print(f"Jacobian, forward mode vs finite differences: max difference {np.abs(J - J_fd).max():.1e} "
      f"(entries up to {np.abs(J).max():.2f})")
print("gradient  J^T r:", grad_fwd, "  reverse mode:", grad_rev)
assert np.abs(J - J_fd).max() < 1e-7 * np.abs(J).max()
assert np.allclose(grad_fwd, grad_rev, rtol=1e-12, atol=1e-12)

# %% [markdown]
# Now the fit: Levenberg–Marquardt, i.e. Gauss–Newton steps
# $\delta = -(J^\top J + \lambda\,\mathrm{diag}\,J^\top J)^{-1} J^\top r$, with the
# damping $\lambda$ raised when a step would increase the loss and lowered when
# it succeeds. (Plain gradient descent gets there too, but with its step
# size limited by the stiffest direction it takes hundreds of iterations, each
# a full simulation with tangents; Gauss–Newton takes about ten.)

# %%
theta = theta_init.copy()
damping = 1e-2
losses_fit = [loss(theta)]
start = time.perf_counter()
for iteration in range(50):
    r, J = residuals(theta), jacfwd(residuals)(theta)
    g, H = J.T @ r, J.T @ J
    while True:
        delta = np.linalg.solve(H + damping * np.diag(np.diag(H)), -g)
        if loss(theta + delta) < losses_fit[-1]:
            theta, damping = theta + delta, damping * 0.3
            break
        damping *= 10
    losses_fit.append(loss(theta))
    if np.linalg.norm(delta) < 1e-10 * np.linalg.norm(theta):
        break
print(f"{iteration + 1} iterations, {time.perf_counter() - start:.1f} s; "
      f"loss {losses_fit[0]:.3f} -> {losses_fit[-1]:.5f}")

# %% [markdown]
# How close should the answer be? With Gaussian noise of known size $s$,
# the least-squares estimate has covariance about $s^2 (J^\top J)^{-1}$ at the
# optimum: the standard errors come from the same Jacobian. We ask every
# parameter to lie within 4 standard errors of the truth, the residuals to
# have the size of the noise, and the result to agree with an independent fit
# of the *closed form* by `scipy.optimize.curve_fit` (which uses its own
# finite differences): the two differ only by RK4's discretization error.

# %%
J = jacfwd(residuals)(theta)
std_err = noise * np.sqrt(np.diag(np.linalg.inv(J.T @ J)))
rms = np.sqrt(2 * losses_fit[-1] / (t_obs.size - 3))
theta_scipy, _ = curve_fit(lambda t, *p: closed_form(p, t), t_obs, x_data, p0=theta_init)
for name, est, se, true, ref in zip(("omega", "zeta", "x0"), theta, std_err, theta_true, theta_scipy):
    print(f"{name:>5}: fitted {est:.5f} ± {se:.5f}   truth {true:.5f}   "
          f"({(est - true) / se:+.2f} standard errors)   closed-form fit {ref:.5f}")
print(f"residual RMS {rms:.4f} (noise {noise})")
assert np.all(np.abs(theta - theta_true) < 4 * std_err)
assert np.all(std_err < [0.01, 0.01, 0.03])  # and the data do pin them down
assert 0.8 * noise < rms < 1.2 * noise
assert np.allclose(theta, theta_scipy, rtol=0, atol=1e-4)

# %%
t_fine = np.linspace(0, T_OBS, 400)
fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [2.2, 1]})
ax.plot(t_obs, x_data, ".", color="0.5", label="data (noise 0.05)")
ax.plot(t_obs, simulate(theta_init), "--", color="tab:orange", label="initial guess")
ax.plot(t_obs, simulate(theta), color="tab:blue", label="fit")
ax.plot(t_fine, closed_form(theta_true, t_fine), ":", color="k", lw=1, label="truth")
ax.set(xlabel="t", ylabel="x(t)", title="damped oscillator: data and fits")
ax.legend(fontsize=8)
ax2.semilogy(losses_fit, "o-")
ax2.set(xlabel="Levenberg–Marquardt iteration", ylabel="loss", title="convergence")
fig.tight_layout()

# %% [markdown]
# ## 2. Launch angle under air drag: differentiating through an event
#
# A projectile leaves the ground at speed $v_0 = 50$ m/s and angle $\theta$:
#
# $$\dot{\mathbf r} = \mathbf v, \qquad \dot{\mathbf v} = -g\,\hat{\mathbf y} - k\,\lvert\mathbf v\rvert\,\mathbf v .$$
#
# With $k = g / v_t^2$ for a terminal speed $v_t = 35$ m/s (roughly a
# baseball), $k \approx 0.008$/m. The range is $x$ at the landing time $t^*$,
# where $y(t^*) = 0$, and $t^*$ itself depends on $\theta$. That is the part
# that needs care: a loop "step until $y < 0$" has an integer number of steps,
# whose derivative is zero, and reading off $x$ at the last grid point would
# make the range a staircase in $\theta$.
#
# What we do, explicitly:
#
# 1. Fixed RK4 steps of $\Delta t = 0.1$ while the *next* state is still above
#    the ground. This decision looks only at primal values (`stop_gradient`).
# 2. From the last state above ground, one partial RK4 step of length $\tau$,
#    with $\tau$ chosen so that the height after it is zero:
#    $y_{\text{step}}(\tau, \theta) = 0$. `odeint` accepts a step length that
#    carries a tangent.
# 3. $\tau$ comes from Newton's method, $\tau \leftarrow \tau - y/\partial_\tau y$,
#    run **on dual numbers** ($\partial_\tau y$ comes from a `jvp` in $\tau$).
#    Once the primal has converged, $y = 0$, and the last update leaves $\tau$
#    with exactly the tangent of the implicit function theorem,
#    $$\frac{d\tau}{d\theta} = -\frac{\partial y/\partial\theta}{\partial y/\partial\tau},$$
#    whatever tangent $\tau$ had before.
#
# The range $R(\theta)$ is then a smooth function of $\theta$ (the partial step
# equals a full step when a crossing moves past a grid point), and it is
# exactly the function the simulation computes, so its derivatives can be
# checked by finite differences. Nested `jvp` gives $R''$ for Newton's method
# on the angle.

# %%
G, V0, DT = 9.81, 50.0, 0.1
K_DRAG = G / 35.0**2


def projectile(state, t, k):
    x, y, vx, vy = state
    speed = np.sqrt(vx * vx + vy * vy)
    return (vx, vy, -k * speed * vx, -G - k * speed * vy)


def rk4_step(state, t, length, k):
    return odeint(projectile, state, (t, t + length), k, method="rk4", steps=1)


def flight(angle, k, path=None):
    """(range, flight time) for a launch angle in radians; both may carry tangents.
    Appends the states to ``path`` if given (for plotting)."""
    state = (0.0, 0.0, V0 * np.cos(angle), V0 * np.sin(angle))
    t = 0.0
    while True:                                   # 1. whole steps while above ground
        nxt = rk4_step(state, t, DT, k)
        if stop_gradient(nxt[1]) < 0:
            break
        state, t = nxt, t + DT
        if path is not None:
            path.append([stop_gradient(c) for c in state])
    height = lambda tau: rk4_step(state, t, tau, k)[1]
    y0, y1 = stop_gradient(state[1]), stop_gradient(nxt[1])
    tau = DT * y0 / (y0 - y1)                     # linear interpolation as the start
    for _ in range(30):                           # 3. Newton on dual numbers
        y, dy_dtau = jvp(height, (tau,), (1.0,))
        update = y / dy_dtau
        tau = tau - update
        if abs(stop_gradient(update)) < 1e-14 * DT:
            break
    else:
        raise RuntimeError("Newton's method for the landing time did not converge")
    landing = rk4_step(state, t, tau, k)          # 2. the partial step
    if path is not None:
        path.append([stop_gradient(c) for c in landing])
    return landing[0], t + tau


def range_derivatives(angle, k):
    """R, dR/dangle, d2R/dangle2 by nested forward mode."""
    first = lambda a: jvp(lambda b: flight(b, k)[0], (a,), (1.0,))
    (R, dR), (_, d2R) = jvp(first, (angle,), (1.0,))
    return R, dR, d2R


# %% [markdown]
# **Without drag** there are closed forms, $R = v_0^2\sin 2\theta / g$ and
# $t^* = 2 v_0 \sin\theta / g$, and RK4 is exact on this problem (the
# trajectory is a quadratic polynomial in $t$; RK4 integrates polynomials up
# to degree 4 exactly), so the simulation, the landing time and every
# derivative must match the closed forms to rounding error.

# %%
a = np.deg2rad(30.0)
(R, t_land), (dR, dt_land) = jvp(lambda b: flight(b, 0.0), (a,), (1.0,))
_, _, d2R = range_derivatives(a, 0.0)
exact = {"R": V0**2 * np.sin(2 * a) / G, "dR": 2 * V0**2 * np.cos(2 * a) / G,
         "d2R": -4 * V0**2 * np.sin(2 * a) / G,
         "t*": 2 * V0 * np.sin(a) / G, "dt*": 2 * V0 * np.cos(a) / G}
ours = {"R": R, "dR": dR, "d2R": d2R, "t*": t_land, "dt*": dt_land}
for key in exact:
    print(f"{key:>4} at 30°: simulation {ours[key]:.12f}   closed form {exact[key]:.12f}")
    assert np.isclose(ours[key], exact[key], rtol=1e-11), key

# %% [markdown]
# The landing time's derivative is right too, so the event is handled
# correctly. Newton's method on the angle, $\theta \leftarrow \theta - R'/R''$,
# from 35°:

# %%
def best_angle(k, start_deg=35.0):
    angle = np.deg2rad(start_deg)
    for _ in range(20):
        R, dR, d2R = range_derivatives(angle, k)
        angle = angle - dR / d2R
        if abs(dR / d2R) < 1e-12:
            return angle, range_derivatives(angle, k)
    raise RuntimeError("Newton's method for the angle did not converge")


start = time.perf_counter()
angle_vac, (R_vac, dR_vac, _) = best_angle(0.0)
angle_drag, (R_drag, dR_drag, d2R_drag) = best_angle(K_DRAG)
print(f"Newton on the angle, with and without drag: {time.perf_counter() - start:.1f} s")
print(f"no drag:   best angle {np.rad2deg(angle_vac):.10f}°, range {R_vac:.3f} m")
print(f"with drag: best angle {np.rad2deg(angle_drag):.4f}°, range {R_drag:.3f} m, "
      f"R' there {dR_drag:.1e}")
assert abs(np.rad2deg(angle_vac) - 45.0) < 1e-8
assert np.isclose(R_vac, V0**2 / G, rtol=1e-12)
assert np.rad2deg(angle_drag) < 44.0 and d2R_drag < 0  # below 45°, and a maximum

# %% [markdown]
# With drag the optimum is about 38.7°: the ball spends less time in the air
# on a flatter path, so drag steals less of its horizontal speed.
#
# Checks of the drag case: $R'$ and $R''$ against central finite differences at
# 30°; and the range near the optimum recomputed by an independent integrator,
# SciPy's adaptive `solve_ivp` with its own event location, at tight
# tolerances. Its range at our optimum should match ours (RK4 with
# $\Delta t = 0.1$ is accurate to about $10^{-6}$ relative here), and be larger
# than at half a degree on either side.

# %%
_, dR30, d2R30 = range_derivatives(a, K_DRAG)
h = 1e-5
dR30_fd = (flight(a + h, K_DRAG)[0] - flight(a - h, K_DRAG)[0]) / (2 * h)
d2R30_fd = (range_derivatives(a + h, K_DRAG)[1] - range_derivatives(a - h, K_DRAG)[1]) / (2 * h)
print(f"R'  at 30°: forward mode {dR30:.9f}   finite difference {dR30_fd:.9f}")
print(f"R'' at 30°: forward mode {d2R30:.9f}   finite difference {d2R30_fd:.9f}")
assert np.isclose(dR30, dR30_fd, rtol=1e-7)
assert np.isclose(d2R30, d2R30_fd, rtol=1e-6)


def scipy_range(angle, k):
    ground = lambda t, s: s[1] if t > 0 else 1.0
    ground.terminal, ground.direction = True, -1
    rhs = lambda t, s: projectile(s, t, k)
    sol = solve_ivp(rhs, (0, 100), [0, 0, V0 * np.cos(angle), V0 * np.sin(angle)],
                    method="DOP853", rtol=1e-12, atol=1e-10, events=ground)
    return sol.y_events[0][0][0]


ref = {d: scipy_range(angle_drag + np.deg2rad(d), K_DRAG) for d in (-0.5, 0.0, 0.5)}
print(f"SciPy range at the optimum {ref[0.0]:.6f} m (ours {R_drag:.6f}); "
      f"at -0.5° {ref[-0.5]:.6f}, at +0.5° {ref[0.5]:.6f}")
assert np.isclose(ref[0.0], R_drag, rtol=1e-6)
assert ref[0.0] > max(ref[-0.5], ref[0.5])

# %% [markdown]
# Trajectories at a few angles, and the range against the angle (plain
# simulations on a grid, no derivatives), whose maximum must agree with Newton's.

# %%
angles_deg = np.linspace(10, 80, 71)
ranges = {k: np.array([flight(np.deg2rad(d), k)[0] for d in angles_deg]) for k in (0.0, K_DRAG)}
for k, best in ((0.0, angle_vac), (K_DRAG, angle_drag)):
    grid_best = angles_deg[np.argmax(ranges[k])]
    assert abs(grid_best - np.rad2deg(best)) <= 0.5, (grid_best, np.rad2deg(best))

fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
for d, color in ((30.0, "tab:green"), (np.rad2deg(angle_drag), "tab:red"), (45.0, "tab:blue"),
                 (60.0, "tab:purple")):
    for k, style in ((0.0, ":"), (K_DRAG, "-")):
        path = [[0.0, 0.0]]
        flight(np.deg2rad(d), k, path)
        path = np.array([p[:2] for p in path])
        ax.plot(path[:, 0], path[:, 1], style, color=color,
                label=f"{d:.1f}°" if k else None)
ax.set(xlabel="x (m)", ylabel="y (m)", title="trajectories (dotted: no drag)", ylim=(0, None))
ax.legend(fontsize=8)
ax2.plot(angles_deg, ranges[0.0], ":", label="no drag")
ax2.plot(angles_deg, ranges[K_DRAG], label=f"drag, terminal speed 35 m/s")
for best, R_best in ((angle_vac, R_vac), (angle_drag, R_drag)):
    ax2.plot(np.rad2deg(best), R_best, "ko")
    ax2.annotate(f"{np.rad2deg(best):.1f}°", (np.rad2deg(best), R_best),
                 textcoords="offset points", xytext=(4, 6), fontsize=8)
ax2.set(xlabel="launch angle (degrees)", ylabel="range (m)", title="range vs angle")
ax2.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# ## 3. Chaos: sensitivities that grow exponentially
#
# The Lorenz system with the classic parameters $\sigma = 10$, $\rho = 28$,
# $\beta = 8/3$:
#
# $$\dot x = \sigma(y - x), \qquad \dot y = x(\rho - z) - y, \qquad \dot z = xy - \beta z .$$
#
# Its solutions settle onto the butterfly-shaped attractor and then wander on
# it chaotically: two nearby starts separate like $e^{\lambda t}$, with the
# largest Lyapunov exponent $\lambda \approx 0.906$ (a value found in the
# literature by long, careful computations; e.g. Sprott, *Chaos and
# Time-Series Analysis*, 2003). The sensitivity matrix
# $J(T) = \partial\mathbf s(T) / \partial\mathbf s(0)$ grows the same way,
# $\lVert J(T)\rVert \sim e^{\lambda T}$, so $\lambda$ is the slope of
# $\log\lVert J(T)\rVert$ against $T$.
#
# We compute $J$ by forward mode for 8 trajectories at once. The state is a
# tuple of three arrays of length 8 (one entry per trajectory), and we make it
# dual by hand with 3 tangent directions: direction $j$ perturbs coordinate $j$
# of *every* trajectory. The trajectories do not interact, so tangent $j$ of
# trajectory $i$ is column $j$ of that trajectory's $J$: 8 Jacobians for the
# price of 3 tangents (the batching trick of notebook 03). We integrate in
# segments of 0.5 time units and record $\log\lVert J\rVert$ after each; only the
# current state and its tangents are kept, so memory stays flat however long
# we run.

# %%
SIGMA, RHO, BETA = 10.0, 28.0, 8.0 / 3.0
DT_L = 0.02


def lorenz(state, t, rho):
    x, y, z = state
    return (SIGMA * (y - x), x * (rho - z) - y, x * y - BETA * z)


n_traj = 8
rng = np.random.default_rng(1)
start_states = (rng.normal(0, 1, n_traj), rng.normal(0, 1, n_traj), 25 + rng.normal(0, 1, n_traj))
on_attractor = odeint(lorenz, start_states, (0.0, 10.0), RHO, method="rk4", dt=DT_L)  # burn-in

state = tuple(dual(c, np.outer(np.eye(3)[j], np.ones(n_traj))) for j, c in enumerate(on_attractor))
SEGMENT, T_MAX = 0.5, 30.0
times, jacobians = [0.0], [np.broadcast_to(np.eye(3), (n_traj, 3, 3))]
start = time.perf_counter()
for i in range(int(round(T_MAX / SEGMENT))):
    state = odeint(lorenz, state, (i * SEGMENT, (i + 1) * SEGMENT), RHO, method="rk4", dt=DT_L)
    # state[c].tangents[j, i] = d state_c(t) / d state_j(0) for trajectory i
    jacobians.append(np.stack([c.tangents for c in state]).transpose(2, 0, 1))
    times.append((i + 1) * SEGMENT)
print(f"{T_MAX / DT_L:.0f} RK4 steps with 3 tangents, 8 trajectories: {time.perf_counter() - start:.1f} s")
times, jacobians = np.array(times), np.array(jacobians)  # (time, trajectory, 3, 3)
log_norms = np.log(np.linalg.norm(jacobians, ord=2, axis=(2, 3)))  # largest singular value

# %% [markdown]
# Two checks of these Jacobians before we use them.
#
# * **Liouville's formula.** The divergence of the Lorenz vector field is the
#   constant $-(\sigma + 1 + \beta)$, so volumes shrink at that rate and
#   $\det J(t) = e^{-(\sigma + 1 + \beta)\,t}$ exactly, for every trajectory:
#   a closed form for a quantity that mixes all nine entries. RK4's Jacobian
#   obeys it up to the discretization error, which must shrink about 16-fold
#   when the step is halved (RK4 is of order 4).
# * **Finite differences** for trajectory 0: plain simulations from the
#   perturbed starts $\mathbf s_0 \pm h\,\mathbf e_j$ (all six in one batch),
#   compared with forward mode at every recorded time.

# %%
k1 = np.searchsorted(times, 1.0)
half_step = tuple(dual(c, np.outer(np.eye(3)[j], np.ones(n_traj))) for j, c in enumerate(on_attractor))
half_step = odeint(lorenz, half_step, (0.0, 1.0), RHO, method="rk4", dt=DT_L / 2)
J_half = np.stack([c.tangents for c in half_step]).transpose(2, 0, 1)
err = {dt: np.abs(np.log(np.linalg.det(jac)) + (SIGMA + 1 + BETA)).max()
       for dt, jac in ((DT_L, jacobians[k1]), (DT_L / 2, J_half))}
print(f"Liouville: log det J(1) should be {-(SIGMA + 1 + BETA):.6f}; largest error over the "
      f"trajectories {err[DT_L]:.1e} with dt = {DT_L}, {err[DT_L / 2]:.1e} with dt = {DT_L / 2}")
assert err[DT_L] < 1e-2 and err[DT_L] > 10 * err[DT_L / 2]

def lorenz_fd(h):
    """Central-difference J(t) of trajectory 0 at the recorded times, step h."""
    s0 = np.array([c[0] for c in on_attractor])
    starts = np.concatenate([s0[:, None] + h * np.eye(3), s0[:, None] - h * np.eye(3)], axis=1)
    _, runs = odeint(lorenz, tuple(starts), (0.0, T_MAX), RHO, method="rk4", dt=DT_L,
                     save_every=int(round(SEGMENT / DT_L)))
    runs = np.stack(runs, axis=1)                       # (time, coordinate, run)
    return (runs[:, :, :3] - runs[:, :, 3:]) / (2 * h)  # (time, 3, 3)


fd_error = {h: np.abs(lorenz_fd(h) - jacobians[:, 0]).max(axis=(1, 2))
            / np.abs(jacobians[:, 0]).max(axis=(1, 2)) for h in (1e-6, 1e-9)}
print(f"J(1) of trajectory 0, forward mode vs finite differences (h = 1e-6): "
      f"relative difference {fd_error[1e-6][k1]:.1e}")
assert fd_error[1e-6][k1] < 1e-6

# %% [markdown]
# Now the exponent: a straight-line fit of the mean $\log\lVert J\rVert$ (largest
# singular value) against $t$, skipping the first 5 time units, where the
# growth has not yet lined up with the most unstable direction. Each
# trajectory's own slope gives a spread for the estimate.
#
# For contrast, the damped oscillator of part 1 ($\omega = 2$, $\zeta = 0.1$):
# there the same sensitivity *decays*. Its eigenvalues are
# $-\zeta\omega \pm i\omega_d$, so $\lVert J(t)\rVert$ shrinks like $e^{-\zeta\omega t}$ on
# average (it also wobbles, since $J$ rotates).

# %%
fit = times >= 5.0
lyapunov, offset = np.polyfit(times[fit], log_norms[fit].mean(axis=1), 1)
per_trajectory = np.array([np.polyfit(times[fit], log_norms[fit, i], 1)[0] for i in range(n_traj)])
print(f"largest Lyapunov exponent: {lyapunov:.3f} (trajectories: {np.round(per_trajectory, 3)}, "
      f"spread {per_trajectory.std():.3f}); literature value 0.906")
assert 0.8 < lyapunov < 1.0
assert np.all((0.6 < per_trajectory) & (per_trajectory < 1.2))

omega, zeta = theta_true[:2]
osc_state = tuple(dual(c, np.eye(2)[j]) for j, c in enumerate((1.0, 0.0)))
osc_times, osc_log_norms = [0.0], [0.0]
for i in range(60):
    osc_state = odeint(oscillator, osc_state, (i * SEGMENT, (i + 1) * SEGMENT), (omega, zeta),
                       method="rk4", dt=DT_L)
    J_osc = np.stack([c.tangents for c in osc_state]).reshape(2, 2)
    osc_times.append((i + 1) * SEGMENT)
    osc_log_norms.append(np.log(np.linalg.norm(J_osc, ord=2)))
osc_rate = np.polyfit(osc_times, osc_log_norms, 1)[0]
print(f"damped oscillator: slope of log||J|| {osc_rate:.4f}, -zeta*omega = {-zeta * omega:.4f}")
assert np.isclose(osc_rate, -zeta * omega, rtol=0.1)

# %% [markdown]
# Finite differences agreed at $t = 1$. At long horizons forward mode still
# computes the derivative exactly (the derivative of the discrete map we run),
# but that derivative describes an ever smaller neighbourhood: a perturbation
# of size $h$ is amplified by about $e^{\lambda t}$, and once it reaches order
# one the nonlinearity bends it, near $t \approx \ln(1/h)/\lambda$: about 15
# for $h = 10^{-6}$, 23 for $h = 10^{-9}$. From there on a difference quotient
# measures where a *different* trajectory happens to be, not a derivative
# (the right-hand plot below). The smaller step buys time but pays in
# round-off: its floor of a few $10^{-6}$ is the V-curve of notebook 02.

# %%
for h, err in fd_error.items():
    t_fail = times[np.argmax(err > 0.1)]
    print(f"h = {h:g}: finite differences first off by more than 10% at t = {t_fail}; "
          f"ln(1/h)/lambda = {np.log(1 / h) / lyapunov:.1f}")
    assert abs(t_fail - np.log(1 / h) / lyapunov) < 4
assert np.all(fd_error[1e-6][times <= 5] < 1e-3) and np.all(fd_error[1e-6][times >= 25] > 0.5)
assert np.argmax(fd_error[1e-9] > 0.1) > np.argmax(fd_error[1e-6] > 0.1)  # smaller h: later

fig, (ax, ax_fd) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1.6, 1]})
for i in range(n_traj):
    ax.plot(times, log_norms[:, i], color="tab:red", lw=0.6, alpha=0.5)
ax.plot(times, log_norms.mean(axis=1), color="tab:red", lw=2, label="Lorenz, 8 trajectories and mean")
ax.plot(times[fit], offset + lyapunov * times[fit], "k--", lw=1,
        label=f"fit: slope {lyapunov:.3f} (literature 0.906)")
ax.plot(osc_times, osc_log_norms, color="tab:blue", label=f"damped oscillator (slope {osc_rate:.3f})")
ax.axhline(np.log(1e12), color="0.5", ls=":", lw=1)
ax.text(0.5, np.log(1e12) + 0.5, "max_tangent_norm = 1e12", color="0.4", fontsize=8)
ax.set(xlabel="t", ylabel="log ||d state(t) / d state(0)||",
       title="sensitivity to the initial state: chaotic vs damped")
ax.legend(fontsize=8, loc="center right")
for h, err in fd_error.items():
    ax_fd.semilogy(times[1:], err[1:], label=f"h = {h:g}")
ax_fd.set(xlabel="t", ylabel="relative difference", title="finite differences vs forward mode")
ax_fd.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# ### What this means for long-horizon hypergradients
#
# A training run is a dynamical system too: $s_t = \Phi_t(s_{t-1}, \lambda)$ for
# the parameters and optimizer state $s$ and hyperparameters $\lambda$. The
# forward-mode hypergradient of notebooks 03 and 06 propagates the tangent
#
# $$Z_t = \frac{\partial s_t}{\partial\lambda} = A_t Z_{t-1} + B_t, \qquad
# A_t = \frac{\partial\Phi_t}{\partial s}, \quad B_t = \frac{\partial\Phi_t}{\partial\lambda},$$
#
# which is exactly what the dual numbers above did through each RK4 step. If
# the products $A_t \cdots A_1$ grow like $e^{\lambda t}$, as here, so does $Z_t$.
# A training run can be in that regime (large learning rates, the edge of
# stability); a contracting run, like the damped oscillator, forgets its past
# and its tangent stays bounded.
#
# Exploding tangents are not a numerical accident: the derivative is correct,
# it is the quantity that is not useful. The classic example (Lea, Allen &
# Haine, *Tellus* 2000) is the time average $\langle z\rangle_T$ of the
# Lorenz system as a function of $\rho$. Averaged over a long run it depends
# smoothly on $\rho$, with slope about 1; but the derivative of $\langle z\rangle_T$
# along one trajectory grows without bound as $T$ grows.
#
# MARTHE (Donini et al., 2020; `hyperopt.online`) discounts the past:
# $Z_t = \mu\,A_t Z_{t-1} + B_t$ with $0 \le \mu \le 1$. The terms from $s$ steps
# back are scaled by $\mu^s$, so the tangent stays bounded when
# $\mu\,e^{\lambda\,\Delta t} < 1$ per step; $\mu = 1$ is the exact derivative,
# $\mu = 0$ keeps one step. We do exactly that, as `hyperopt.online` does: the
# state carries the tangent $d/d\rho$; before every RK4 step of
# $\Delta t = 0.02$ we multiply it by $\mu$, and the step adds $B_t$. Four values of $\mu$ ride along in one batch, one per array
# entry (all from the same start). With $\lambda\,\Delta t \approx 0.018$ the
# threshold is $\mu \approx e^{-0.018} \approx 0.982$.

# %%
mus = np.array([1.0, 0.99, 0.97, 0.9])
T_HYPER = 40.0
n_steps = int(round(T_HYPER / DT_L))
s_start = odeint(lorenz, (1.0, 1.0, 25.0), (0.0, 10.0), RHO, method="rk4", dt=DT_L)
z_state = tuple(dual(np.full(mus.size, c), np.zeros(mus.size)) for c in s_start)
rho = dual(np.full(mus.size, RHO), np.ones(mus.size))  # tangent d/d rho
z_sum, tangent_norms, z_mean_grad = 0.0, [], []
start = time.perf_counter()
for i in range(n_steps):
    z_state = tuple(Dual(c.primal, mus * c.tangents, c.tag) for c in z_state)  # mu * Z_{t-1}
    z_state = odeint(lorenz, z_state, (i * DT_L, (i + 1) * DT_L), rho, method="rk4", steps=1)
    z_sum = z_sum + z_state[2].tangent
    tangent_norms.append(np.sqrt(sum(c.tangent**2 for c in z_state)))
    z_mean_grad.append(z_sum / (i + 1))  # d <z>_T / d rho, discounted
print(f"{n_steps} steps: {time.perf_counter() - start:.1f} s")
hyper_times = DT_L * np.arange(1, n_steps + 1)
tangent_norms, z_mean_grad = np.array(tangent_norms), np.array(z_mean_grad)
for mu, norm, est in zip(mus, tangent_norms[-1], z_mean_grad[-1]):
    print(f"mu = {mu:<5} mu*exp(lambda dt) = {mu * np.exp(lyapunov * DT_L):.3f}   "
          f"|Z| at T={T_HYPER:.0f}: {norm:9.3g}   d<z>/d rho estimate: {est:10.4g}")

# %% [markdown]
# The undiscounted tangent is the exact derivative, so it must agree with a
# finite difference over a short horizon (here $T = 1$, plain runs at
# $\rho \pm 10^{-6}$). For reference, the slope of the long-time average:
# finite differences of $\langle z\rangle$ between $\rho = 26$ and $\rho = 30$,
# each averaged over 8 trajectories of 100 time units (plain runs, no
# derivatives; this difference is large enough that the chaos averages out).

# %%
def z_mean(rho_values, T, states):
    """<z> over (0, T] for each entry of rho_values; states: the start, one entry each."""
    _, traj = odeint(lorenz, states, (0.0, T), rho_values, method="rk4", dt=DT_L, save_every=1)
    return traj[2][1:].mean(axis=0)


at_t1 = int(round(1.0 / DT_L)) - 1
h = 1e-6
fd_short = np.diff(z_mean(np.array([RHO - h, RHO + h]), 1.0,
                          tuple(np.full(2, c) for c in s_start)))[0] / (2 * h)
print(f"d<z>_1/d rho: forward mode {z_mean_grad[at_t1, 0]:.8f}   finite difference {fd_short:.8f}")
assert np.isclose(z_mean_grad[at_t1, 0], fd_short, rtol=1e-6)

rng = np.random.default_rng(2)
rhos = np.repeat([26.0, 30.0], 8)
starts = tuple(c + rng.normal(0, 1, rhos.size) for c in (0.0, 0.0, 25.0))
starts = odeint(lorenz, starts, (0.0, 10.0), rhos, method="rk4", dt=DT_L)  # burn-in
z_long = z_mean(rhos, 100.0, starts)
slope_long = (z_long[8:].mean() - z_long[:8].mean()) / 4.0
print(f"slope of the long-time average <z> in rho: {slope_long:.3f}")

# %% [markdown]
# The assertions behind the next picture: without discounting, and with
# $\mu = 0.99$ (just above the threshold), the tangent explodes, past the
# `max_tangent_norm` default of $10^{12}$ for $\mu = 1$; with $\mu = 0.97$ and
# $0.9$ it stays bounded, and the estimate is of the right sign and size,
# though biased low: discounting drops the slow, long-range part of the
# response along with the exploding part. That is the trade MARTHE makes:
# a finite, somewhat biased hypergradient instead of an exact, useless one.

# %%
assert 0.8 < slope_long < 1.2
assert tangent_norms[-1, 0] > 1e12 and abs(z_mean_grad[-1, 0]) > 1e5
assert tangent_norms[-1, 1] > 1e4 * tangent_norms[-1, 2]
assert np.all(tangent_norms[:, 2:] < 1e3)
assert np.all((0.3 * slope_long < z_mean_grad[-1, 2:]) & (z_mean_grad[-1, 2:] < slope_long))
first_alarm = hyper_times[np.argmax(tangent_norms[:, 0] > 1e12)]
print(f"mu = 1: the tangent passes 1e12 at t = {first_alarm:.1f}")

fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
for j, mu in enumerate(mus):
    ax.semilogy(hyper_times, tangent_norms[:, j], label=f"mu = {mu}")
    ax2.plot(hyper_times, z_mean_grad[:, j], label=f"mu = {mu}")
ax.axhline(1e12, color="0.5", ls=":", lw=1)
ax.text(0.5, 2e12, "max_tangent_norm", color="0.4", fontsize=8)
ax.set(xlabel="t", ylabel="|Z_t| = |d state / d rho|", title="discounted tangents")
ax.legend(fontsize=8)
ax2.axhline(slope_long, color="k", ls="--", lw=1, label="long-average slope (finite diff.)")
ax2.set(xlabel="T", ylabel="d<z>_T / d rho", ylim=(-3, 4), title="estimates of d<z>/d rho")
ax2.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# In the library the same guard is built in: `hyperopt.hypergrad.Setup` checks
# the tangents every `check_every` steps and raises `HypergradientError`,
# naming the step, when their norm passes `max_tangent_norm` ($10^{12}$ by
# default) or stops being finite, instead of returning a meaningless number.
# Its message suggests the remedies this section illustrates: a smaller
# learning rate (make the training dynamics contract), a shorter horizon
# (truncation, $\mu = 0$ beyond a window), or MARTHE with $\mu < 1$.
#
# **Takeaways**
#
# * Plain-numpy integrators plus dual numbers give derivatives of a
#   simulation's outcome with respect to parameters, initial conditions and
#   step lengths, in memory that does not grow with the number of steps.
#   With a few inputs (3 parameters, 1 angle, 3 initial coordinates), forward
#   mode is the right tool; `jacfwd` gives the Jacobian for Gauss–Newton.
# * Events need an explicit treatment: locate them on primal values, then
#   make the event time differentiable, here by one Newton step on dual
#   numbers (the implicit function theorem).
# * What you differentiate is the discrete simulation: derivatives agree
#   with finite differences of the same code, and with the true physics only
#   as far as the integrator does (checked here against closed forms,
#   Liouville's formula and SciPy).
# * In a chaotic system, derivatives over long horizons grow like
#   $e^{\lambda T}$: exact, but useless for optimization. The same happens to
#   long-horizon hypergradients of unstable training runs; discounting
#   ($\mu < 1$) or truncating the horizon trades a little bias for a usable
#   number.

# %% [markdown]
# ## 4. Differentiating an in-place numpy simulation as written
#
# The integrators above return new arrays at every step. Most simulation code
# one finds (course notes, papers' supplementary code) does not: it allocates
# its grid once and overwrites it, slice by slice, every time step. Here is
# the 2-D heat equation $u_t = \nu\,(u_{xx} + u_{yy})$ on $[0, 2]^2$ in that
# style: the explicit five-point stencil (forward Euler in time, central
# differences in space), a hot spot of height `amp` as the initial condition,
# the walls held at temperature 1. Nothing in it knows about autodiff.

# %%
def heat(nu, amp, nt=200, nx=41, ny=41):
    dx = 2 / (nx - 1)
    dy = 2 / (ny - 1)
    dt = 0.2 * dx * dy  # stable while nu * dt / dx**2 <= 1/4
    x = np.linspace(0, 2, nx)
    y = np.linspace(0, 2, ny)
    X, Y = np.meshgrid(x, y)

    u = 1.0 + amp * np.exp(-((X - 0.8)**2 + (Y - 1.1)**2) / 0.1)  # initial hot spot
    u[0, :] = 1
    u[-1, :] = 1
    u[:, 0] = 1
    u[:, -1] = 1

    for n in range(nt):
        un = u.copy()
        u[1:-1, 1:-1] = (un[1:-1, 1:-1]
                         + nu * dt / dx**2 * (un[1:-1, 2:] - 2 * un[1:-1, 1:-1] + un[1:-1, 0:-2])
                         + nu * dt / dy**2 * (un[2:, 1:-1] - 2 * un[1:-1, 1:-1] + un[0:-2, 1:-1]))
        u[0, :] = 1
        u[-1, :] = 1
        u[:, 0] = 1
        u[:, -1] = 1
    return u


# %% [markdown]
# The outcome is the whole temperature field after 200 steps, so its
# derivative in a parameter is a field too. `jvp` with the tangent $(1, 0)$
# on $(\nu, \text{amp})$ gives $\partial u / \partial\nu$ in one pass;
# `jacfwd` gives both $\partial u / \partial\nu$ and $\partial u / \partial\,\text{amp}$
# in one pass with two tangents. We check them against finite differences of
# the plain run (central differences at steps $h$ and $h/2$, combined by
# Richardson extrapolation, $(4 D_{h/2} - D_h)/3$, whose error is
# $O(h^4)$), and the primal field against the plain numpy run, bit for bit:
# carrying tangents does not change the simulation.

# %%
nu0, amp0 = 0.5, 2.0
start = time.perf_counter()
u_end, du_dnu = jvp(heat, (nu0, amp0), (1.0, 0.0))
du_dnu_jac, du_damp = jacfwd(heat, argnums=(0, 1))(nu0, amp0)
print(f"jvp and jacfwd through 200 in-place steps on a 41 x 41 grid: {time.perf_counter() - start:.2f} s")


def richardson(f, x, h):
    d = lambda h: (f(x + h) - f(x - h)) / (2 * h)
    return (4 * d(h / 2) - d(h)) / 3


fd_nu = richardson(lambda s: heat(s, amp0), nu0, 1e-4)
fd_amp = richardson(lambda s: heat(nu0, s), amp0, 1e-4)
for name, ours, ref in (("du/dnu, jvp", du_dnu, fd_nu), ("du/dnu, jacfwd", du_dnu_jac, fd_nu),
                        ("du/damp, jacfwd", du_damp, fd_amp)):
    rel = np.abs(ours - ref).max() / np.abs(ref).max()
    print(f"{name:>16} vs finite differences: relative difference {rel:.1e}")
    assert rel < 1e-6
assert np.array_equal(u_end, heat(nu0, amp0))  # the primal run is numpy's, bit for bit

fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
for ax, field, title in zip(axes, (u_end, du_dnu, du_damp), ("u after 200 steps", "du / d nu", "du / d amp")):
    if field is u_end:
        im = ax.imshow(field, origin="lower", extent=(0, 2, 0, 2), cmap="inferno")
    else:  # derivatives: a diverging colour map centred on 0
        lim = np.abs(field).max()
        im = ax.imshow(field, origin="lower", extent=(0, 2, 0, 2), cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set(title=title, xlabel="x", ylabel="y")
    fig.colorbar(im, ax=ax, shrink=0.85)
fig.tight_layout()

# %% [markdown]
# More diffusion lowers the peak and warms its surroundings (the blue centre
# and the faint red ring of $\partial u/\partial\nu$); a higher initial spot
# raises the field where its heat has spread so far, and only there.
#
# **Why the in-place writes work.** A dual number is an array like any other
# to this code, and, like an ndarray, it is mutable. `u[1:-1, 1:-1] = rhs`
# writes the primal values of `rhs` into `u`'s primal and its tangents into
# `u`'s tangents, at the same positions; `u.copy()` copies both; `u[0, :] = 1`
# writes a constant, whose derivative is zero. Slices, reshapes and transposes
# are views that write through to `u`, as in numpy. Reverse mode (`grad`)
# records each write on its tape as a new value (`u` with `rhs` written in),
# keeping the old one for the backward sweep, so it works too, at the
# usual cost of memory that grows with the number of steps; forward mode
# keeps nothing.
#
# **What `np.zeros_like(traced)` does.** Code that allocates its arrays from
# its inputs, `F = np.zeros_like(pos)`, gets an array of the same kind as the
# input: a dual number (zero tangent) when the input is one, an ndarray
# otherwise. Writes into it (`F[i] += f`, `np.add.at(F, i, f)`, `out=F`) then
# carry derivatives. `empty_like`, `ones_like`, `full_like` and `.copy()` do
# the same.
#
# **The one thing that cannot work.** An array allocated *without* a traced
# value is a plain ndarray, and numpy gives a library no say in what happens
# when something is written into one. So `acc = np.zeros(n); acc[i] = traced`
# cannot keep the derivative; it raises a `TypeError` instead of dropping the
# derivative silently. The fix is to allocate from a traced value:
# `np.zeros_like(traced, shape=n)` (or `np.zeros_like(x)` for an `x` of the
# right shape that carries the derivative).
#
# `heat` itself meets this rule through its initial condition: `u` is
# computed from `amp`, so `u` is traced whenever `amp` is. That is why we
# pass both parameters to `jvp`, `amp` with a zero tangent. Fixing `amp` as
# a plain Python number and differentiating in `nu` alone leaves `u` a plain
# array, and the first stencil write raises:

# %%
def deposit(x):
    acc = np.zeros(4)
    acc[1:3] = x**2
    return acc


def deposit_fixed(x):
    acc = np.zeros_like(x, shape=4)
    acc[1:3] = x**2
    return acc


for what, run in (("acc = np.zeros(4); acc[1:3] = traced", lambda: jvp(deposit, (0.5,), (1.0,))),
                  ("heat in nu alone, amp a plain float",
                   lambda: jvp(lambda nu: heat(nu, amp0, nt=2), (nu0,), (1.0,)))):
    try:
        run()
        raise AssertionError("a write of a traced value into a plain array must raise")
    except TypeError as err:
        print(f"{what}:\n  TypeError: {str(err).split(';')[0]}")

value, derivative = jvp(deposit_fixed, (0.5,), (1.0,))
print("with np.zeros_like(x, shape=4):", value, derivative)
assert np.array_equal(derivative, [0.0, 1.0, 1.0, 0.0])  # d(x^2)/dx at 0.5
u_nu_only, du_dnu_only = jvp(lambda nu: heat(nu, np.zeros_like(nu) + amp0), (nu0,), (1.0,))
assert np.array_equal(du_dnu_only, du_dnu)

# %% [markdown]
# The last line is the same fix applied to `heat` from outside: give `amp`
# the trace of `nu` (`np.zeros_like(nu) + amp0`) and `heat` runs unchanged
# with only `nu` differentiated. The test module `tests/test_simulations.py`
# runs five such programs written without autodiff in mind (this stencil,
# gravitating particles reflected at walls with masked writes, a periodic
# Burgers solver with `np.roll`, an SPH star whose kernel takes square roots
# of zero distances, a mass-spring net that scatters its forces with
# `np.add.at`) through `jvp`, `jacfwd` and `grad`, against finite
# differences, and checks that forward mode's memory stays flat in the
# number of steps.

# %%
print(f"notebook ran in {time.perf_counter() - notebook_start:.1f} s")
