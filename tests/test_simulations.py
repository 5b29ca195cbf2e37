"""Unchanged code through the engine: small simulations written the way
published numpy codes are written.

Each program below is plain numpy in the style of the codes people publish
and copy (explicit finite-difference stencils, N-body and SPH particle codes,
mass-spring networks): state arrays updated in place over a loop of time
steps, masked writes, ``np.roll`` on periodic grids, ``np.add.at``
scatter-adds into arrays allocated with ``np.zeros_like``.  Nothing in them
knows about autodiff.  Each is a function of a few physical parameters
``theta`` (a 1-D array) returning a small vector after ``nt`` steps, and is run

* plainly, as numpy code (the reference: the traced runs must give the same
  primal values bit for bit: differentiating does not change the run);
* under `jvp` (one random direction), `jacfwd` (all directions) and `grad`
  (reverse mode, of a fixed weighting of the outputs), each checked against
  Richardson-extrapolated central differences of the plain run,
  ``(4 D(h/2) - D(h)) / 3``, to a relative error of 1e-6;
* under `jvp` with tracemalloc over ``nt`` and ``10 nt`` steps: forward mode
  keeps nothing of past steps, so its peak memory must not grow with them.

What the programs need from the engine is that the arrays they write into are
traced.  They are whenever they are computed from the parameters (an initial
condition with a parameter in it) or allocated from a traced array with
``np.zeros_like``.  The one form that cannot work is a state array allocated
without a traced value and then written one (``u = np.ones(shape)`` then
``u[1:-1, 1:-1] = ... nu ...``; published SPH codes start with
``vel = np.zeros(pos.shape)``, which we write ``np.zeros_like(pos)``): it is
refused (the tests at the end), never silently differentiated as a constant.

The SPH program's pairwise distances go through sqrt at r = 0 (the diagonal),
with a zero tangent there: it needs the NaN-safe rules (a zero tangent times an
infinite partial contributes 0); test_the_sph_program_goes_through_sqrt_at_zero
checks that it does hit that point.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from autodiff import grad, jacfwd, jvp, vjp


# ---------------------------------------------------------------------------------------------------
# 1. Heat diffusion: an in-place five-point stencil on a 2-D grid (explicit Euler, FTCS), with
#    Dirichlet walls on three sides and a zero-flux wall on the fourth.
# ---------------------------------------------------------------------------------------------------
def heat_diffusion(theta, nt=30, nx=16, ny=16):
    """theta = (nu, amp): diffusion coefficient, height of the initial hot spot.
    Returns the temperature along the middle row, every 4th point."""
    nu, amp = theta
    dx = 2.0 / (nx - 1)
    dy = 2.0 / (ny - 1)
    dt = 0.2 * dx * dy          # stable for nu < ~1.2
    x = np.linspace(0, 2, nx)
    y = np.linspace(0, 2, ny)
    X, Y = np.meshgrid(x, y)

    u = 1.0 + amp * np.exp(-((X - 0.8) ** 2 + (Y - 1.1) ** 2) / 0.2)
    u[0, :] = 1
    u[-1, :] = 1
    u[:, 0] = 1
    u[:, -1] = u[:, -2]

    for n in range(nt):
        un = u.copy()
        u[1:-1, 1:-1] = (un[1:-1, 1:-1]
                         + nu * dt / dx ** 2 * (un[1:-1, 2:] - 2 * un[1:-1, 1:-1] + un[1:-1, 0:-2])
                         + nu * dt / dy ** 2 * (un[2:, 1:-1] - 2 * un[1:-1, 1:-1] + un[0:-2, 1:-1]))
        u[0, :] = 1
        u[-1, :] = 1
        u[:, 0] = 1
        u[:, -1] = u[:, -2]        # zero flux
    return u[ny // 2, ::4]


# ---------------------------------------------------------------------------------------------------
# 2. Gravitating particles in a reflecting box: leapfrog (kick-drift-kick), pairwise accelerations
#    with the self-interaction masked out, walls that reflect position and velocity.
# ---------------------------------------------------------------------------------------------------
_rng = np.random.default_rng(17)
NBODY_POS0 = _rng.standard_normal((16, 3))
NBODY_VEL0 = _rng.standard_normal((16, 3))
NBODY_MASS = 1.0 / 16 * np.ones((16, 1))


def get_acc(pos, mass, G, softening):
    """Acceleration on every particle from all the others (Newton, softened)."""
    x = pos[:, 0:1]
    y = pos[:, 1:2]
    z = pos[:, 2:3]
    dx = x.T - x
    dy = y.T - y
    dz = z.T - z
    inv_r3 = dx ** 2 + dy ** 2 + dz ** 2 + softening ** 2
    inv_r3[inv_r3 > 0] = inv_r3[inv_r3 > 0] ** (-1.5)   # the diagonal stays 0
    ax = G * (dx * inv_r3) @ mass
    ay = G * (dy * inv_r3) @ mass
    az = G * (dz * inv_r3) @ mass
    return np.hstack((ax, ay, az))


def nbody_box(theta, nt=30, box=4.0, dt=0.02, softening=0.0):
    """theta = (G, v0, spread): gravitational constant, initial velocity scale, size of the
    initial cluster.  Returns the kinetic energy and the centre of mass after nt steps."""
    G, v0, spread = theta
    pos = box / 2 + spread * NBODY_POS0
    vel = v0 * NBODY_VEL0
    acc = get_acc(pos, NBODY_MASS, G, softening)
    for i in range(nt):
        vel += acc * dt / 2.0
        pos += vel * dt
        for d in range(3):                    # reflect at the walls of [0, box]^3
            is_out = pos[:, d] < 0
            pos[is_out, d] *= -1
            vel[is_out, d] *= -1
            is_out = pos[:, d] > box
            pos[is_out, d] = 2 * box - pos[is_out, d]
            vel[is_out, d] *= -1
        acc = get_acc(pos, NBODY_MASS, G, softening)
        vel += acc * dt / 2.0
    kinetic = 0.5 * np.sum(NBODY_MASS * vel ** 2)
    com = np.sum(NBODY_MASS * pos, axis=0) / np.sum(NBODY_MASS)
    return np.hstack((kinetic, com))


# ---------------------------------------------------------------------------------------------------
# 3. 2-D viscous Burgers' equation on a periodic grid: first-order upwind convection and central
#    diffusion, every neighbour taken with np.roll.
# ---------------------------------------------------------------------------------------------------
def burgers_periodic(theta, nt=30, n=16):
    """theta = (nu, amp): viscosity, amplitude of the initial bump in both velocity components
    (which stay positive, so the upwind side is always the lower neighbour).
    Returns the kinetic energy and u, v at one point."""
    nu, amp = theta
    dx = dy = 2 * np.pi / n
    dt = 0.02
    x = np.arange(n) * dx
    X, Y = np.meshgrid(x, x)
    u = 1.0 + amp * np.sin(X) * np.cos(Y) ** 2 + 0.5 * amp
    v = 0.5 + amp * np.cos(X + Y) ** 2

    for it in range(nt):
        un = u.copy()
        vn = v.copy()
        lap_u = ((np.roll(un, -1, axis=1) - 2 * un + np.roll(un, 1, axis=1)) / dx ** 2
                 + (np.roll(un, -1, axis=0) - 2 * un + np.roll(un, 1, axis=0)) / dy ** 2)
        lap_v = ((np.roll(vn, -1, axis=1) - 2 * vn + np.roll(vn, 1, axis=1)) / dx ** 2
                 + (np.roll(vn, -1, axis=0) - 2 * vn + np.roll(vn, 1, axis=0)) / dy ** 2)
        u -= dt * (un * (un - np.roll(un, 1, axis=1)) / dx + vn * (un - np.roll(un, 1, axis=0)) / dy)
        v -= dt * (un * (vn - np.roll(vn, 1, axis=1)) / dx + vn * (vn - np.roll(vn, 1, axis=0)) / dy)
        u += nu * dt * lap_u
        v += nu * dt * lap_v
    energy = 0.5 * np.mean(u ** 2 + v ** 2)
    return np.hstack((energy, u[3, 5], v[3, 5]))


# ---------------------------------------------------------------------------------------------------
# 4. Smoothed-particle hydrodynamics: a "toy star" (polytrope held by a linear gravity term),
#    Gaussian kernel of the pairwise distances r = sqrt(dx^2 + dy^2 + dz^2), r = 0 on the
#    diagonal; leapfrog.
# ---------------------------------------------------------------------------------------------------
SPH_POS0 = np.random.default_rng(42).standard_normal((16, 3))


def kernel_w(x, y, z, h):
    """Gaussian smoothing kernel, 3-D."""
    r = np.sqrt(x ** 2 + y ** 2 + z ** 2)
    w = (1.0 / (h * np.sqrt(np.pi))) ** 3 * np.exp(-r ** 2 / h ** 2)
    return w


def kernel_grad_w(x, y, z, h):
    r = np.sqrt(x ** 2 + y ** 2 + z ** 2)
    n = -2 * np.exp(-r ** 2 / h ** 2) / h ** 5 / np.pi ** 1.5
    return n * x, n * y, n * z


def pairwise_separations(ri, rj):
    m, n = ri.shape[0], rj.shape[0]
    dx = ri[:, 0].reshape((m, 1)) - rj[:, 0].reshape((n, 1)).T
    dy = ri[:, 1].reshape((m, 1)) - rj[:, 1].reshape((n, 1)).T
    dz = ri[:, 2].reshape((m, 1)) - rj[:, 2].reshape((n, 1)).T
    return dx, dy, dz


def sph_density(pos, m, h):
    dx, dy, dz = pairwise_separations(pos, pos)
    return np.sum(m * kernel_w(dx, dy, dz, h), 1).reshape((pos.shape[0], 1))


def sph_acc(pos, vel, m, h, k, npoly, lmbda, nu):
    n = pos.shape[0]
    rho = sph_density(pos, m, h)
    P = k * rho ** (1 + 1 / npoly)
    dx, dy, dz = pairwise_separations(pos, pos)
    dWx, dWy, dWz = kernel_grad_w(dx, dy, dz, h)
    ax = -np.sum(m * (P / rho ** 2 + P.T / rho.T ** 2) * dWx, 1).reshape((n, 1))
    ay = -np.sum(m * (P / rho ** 2 + P.T / rho.T ** 2) * dWy, 1).reshape((n, 1))
    az = -np.sum(m * (P / rho ** 2 + P.T / rho.T ** 2) * dWz, 1).reshape((n, 1))
    a = np.hstack((ax, ay, az))
    a -= lmbda * pos          # the star's own gravity, linearized
    a -= nu * vel             # damping, to settle into equilibrium
    return a


def sph_toy_star(theta, nt=30, dt=0.04, M=2.0, npoly=1.0):
    """theta = (R, h, k, nu): star radius (also the scale of the initial cloud), smoothing
    length, pressure constant, damping.  Returns the mean density and the mean radius."""
    R, h, k, nu = theta
    n = SPH_POS0.shape[0]
    m = M / n
    lmbda = (2 * k * (1 + npoly) * np.pi ** (-3 / (2 * npoly))
             * (M * math.gamma(5 / 2 + npoly) / R ** 3 / math.gamma(1 + npoly)) ** (1 / npoly) / R ** 2)
    pos = 0.5 * R * SPH_POS0
    vel = np.zeros_like(pos)
    acc = sph_acc(pos, vel, m, h, k, npoly, lmbda, nu)
    for i in range(nt):
        vel += acc * dt / 2
        pos += vel * dt
        acc = sph_acc(pos, vel, m, h, k, npoly, lmbda, nu)
        vel += acc * dt / 2
    rho = sph_density(pos, m, h)
    mean_radius = np.mean(np.sqrt(np.sum(pos ** 2, axis=1)))
    return np.hstack((rho.mean(axis=0), mean_radius))


# ---------------------------------------------------------------------------------------------------
# 5. A mass-spring net hanging from its top row: spring forces per edge, accumulated on the nodes
#    with np.add.at into np.zeros_like(pos); gravity, linear damping, semi-implicit Euler.
# ---------------------------------------------------------------------------------------------------
def _net(n=4):
    ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    rest = np.stack([jj.ravel(), -ii.ravel()], axis=1).astype(float)
    node = np.arange(n * n).reshape(n, n)
    edges = np.concatenate([
        np.stack([node[:, :-1].ravel(), node[:, 1:].ravel()], 1),     # horizontal
        np.stack([node[:-1, :].ravel(), node[1:, :].ravel()], 1),     # vertical
        np.stack([node[:-1, :-1].ravel(), node[1:, 1:].ravel()], 1),  # diagonals
        np.stack([node[:-1, 1:].ravel(), node[1:, :-1].ravel()], 1),
    ])
    return rest, edges, node[0]


NET_REST, NET_EDGES, NET_PINNED = _net()


def spring_net(theta, nt=40, dt=0.02, g=9.81, mass=0.1):
    """theta = (k, nu, stretch): spring constant, damping rate, initial vertical stretch of the
    net.  Returns the positions of the two bottom corners."""
    k, nu, stretch = theta
    i, j = NET_EDGES[:, 0], NET_EDGES[:, 1]
    rest_len = np.sqrt(np.sum((NET_REST[j] - NET_REST[i]) ** 2, axis=1))
    pos = np.stack([NET_REST[:, 0], stretch * NET_REST[:, 1]], axis=1)
    vel = np.zeros_like(pos)
    for step in range(nt):
        d = pos[j] - pos[i]
        length = np.sqrt(np.sum(d ** 2, axis=1))
        f_ij = (k * (length - rest_len) / length)[:, None] * d     # pulls i towards j when stretched
        F = np.zeros_like(pos)
        np.add.at(F, i, f_ij)
        np.add.at(F, j, -f_ij)
        a = F / mass
        a[:, 1] -= g
        a -= nu * vel
        vel += dt * a
        vel[NET_PINNED] = 0.0
        pos += dt * vel
    return pos[[-4, -1]].ravel()


# ---------------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------------
PROGRAMS = {  # name: (program, theta, default steps, relative finite-difference step)
    "heat_diffusion": (heat_diffusion, np.array([0.7, 2.0]), 30, 1e-4),
    # walls: a difference step moves a particle across a wall (a jump in its velocity) in some
    # step once h reaches ~1e-4 over hundreds of steps; the derivative is of the run whose
    # reflections happen at the same steps, so the difference must keep them: a small h
    "nbody_box": (nbody_box, np.array([0.5, 1.3, 0.8]), 30, 1e-5),
    "burgers_periodic": (burgers_periodic, np.array([0.1, 0.4]), 30, 1e-4),
    "sph_toy_star": (sph_toy_star, np.array([0.75, 0.6, 0.1, 1.0]), 30, 1e-4),
    "spring_net": (spring_net, np.array([60.0, 0.5, 1.1]), 40, 1e-4),
}
# sqrt's partial 1/(2r) is computed, as numpy computes 1/0, on the diagonal r = 0 (and multiplied
# by its zero tangent, NaN-safely); numpy's plain run of the program does not warn there
SQRT_AT_ZERO = pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning")
NAMES = [pytest.param(n, marks=SQRT_AT_ZERO) if n == "sph_toy_star" else n for n in PROGRAMS]
REL = 1e-6
MEMORY_STEPS = 20
SLOW_FACTOR = 10


def richardson(f, theta, v, rel_step=1e-4):
    """The derivative of f at theta along v by central differences with steps h and h/2,
    extrapolated: (4 D(h/2) - D(h)) / 3 (error O(h^4))."""
    h = rel_step * np.linalg.norm(theta) / np.linalg.norm(v)

    def D(h):
        return (np.asarray(f(theta + h * v)) - np.asarray(f(theta - h * v))) / (2 * h)
    return (4 * D(h / 2) - D(h)) / 3


def assert_close(got, want, what):
    """Relative error in the max norm (entries of one output can differ in size by 1e3)."""
    got, want = np.asarray(got), np.asarray(want)
    assert np.all(np.isfinite(got)), f"{what}: not finite: {got}"
    err = np.max(np.abs(got - want)) / np.max(np.abs(want))
    assert err <= REL, f"{what}: relative error {err:.2e} > {REL:g}\n got  {got}\n want {want}"


def _program(name, factor=1):
    f, theta, steps, rel_step = PROGRAMS[name]
    return (lambda th: f(th, nt=factor * steps)), theta.copy(), rel_step


@pytest.mark.parametrize("name", NAMES)
def test_primal_of_the_traced_runs_is_the_numpy_run_bit_for_bit(name):
    f, theta, _ = _program(name)
    plain = f(theta.copy())
    assert type(plain) is np.ndarray and plain.dtype == np.float64 and np.all(np.isfinite(plain))
    v = np.random.standard_normal(theta.shape)
    out_f, _ = jvp(f, (theta.copy(),), (v,))
    out_r, _ = vjp(f, theta.copy())
    np.testing.assert_array_equal(out_f, plain)
    np.testing.assert_array_equal(out_r, plain)


@pytest.mark.parametrize("name", NAMES)
def test_jvp_matches_richardson_differences(name):
    f, theta, rel_step = _program(name)
    v = np.random.standard_normal(theta.shape) * theta   # a direction of the parameters' scale
    out, tangent = jvp(f, (theta,), (v,))
    np.testing.assert_allclose(out, f(theta), rtol=1e-13, atol=0)   # (bit for bit: see above)
    assert_close(tangent, richardson(f, theta, v, rel_step), f"{name}: jvp")


@pytest.mark.parametrize("name", NAMES)
def test_jacfwd_matches_richardson_differences(name):
    f, theta, rel_step = _program(name)
    J = jacfwd(f)(theta)
    assert J.shape == f(theta).shape + theta.shape
    for c, e in enumerate(np.eye(theta.size)):
        assert_close(J[:, c], richardson(f, theta, e, rel_step), f"{name}: jacfwd column {c}")


@pytest.mark.parametrize("name", NAMES)
def test_grad_matches_richardson_differences_and_jacfwd(name):
    f, theta, rel_step = _program(name)
    w = np.random.standard_normal(f(theta).shape)

    def weighted(th):
        return np.sum(w * f(th))
    g = grad(weighted)(theta)
    fd = np.array([richardson(weighted, theta, e, rel_step) for e in np.eye(theta.size)])
    assert_close(g, fd, f"{name}: grad")
    np.testing.assert_allclose(g, w @ jacfwd(f)(theta), rtol=1e-9, atol=1e-12 * np.abs(g).max())


@pytest.mark.parametrize("name", NAMES)
def test_forward_mode_memory_is_flat_in_the_number_of_steps(name, traced_peak):
    """tracemalloc's peak over a jvp of N and of 10 N steps: the same, up to 1.5x plus 16 KiB
    (noise: free lists, numpy's small-array cache).  A tape kept by mistake grows ~linearly."""
    f, theta, _, _ = PROGRAMS[name]
    v = np.ones_like(theta)
    jvp(lambda th: f(th, nt=10 * MEMORY_STEPS), (theta,), (v,))   # first calls fill caches: not measured
    peak = {n: traced_peak(lambda n=n: jvp(lambda th: f(th, nt=n), (theta,), (v,)))
            for n in (MEMORY_STEPS, 10 * MEMORY_STEPS)}
    assert peak[10 * MEMORY_STEPS] < 1.5 * peak[MEMORY_STEPS] + 16 * 1024, peak


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_long_runs_still_match_differences(name):
    f, theta, rel_step = _program(name, SLOW_FACTOR)
    v = np.random.standard_normal(theta.shape) * theta
    _, tangent = jvp(f, (theta,), (v,))
    assert_close(tangent, richardson(f, theta, v, rel_step), f"{name}: jvp, {SLOW_FACTOR}x steps")
    J = jacfwd(f)(theta)
    assert_close(J @ v, tangent, f"{name}: jacfwd, {SLOW_FACTOR}x steps")


@SQRT_AT_ZERO
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_the_sph_program_goes_through_sqrt_at_zero():
    """The pairwise distances' diagonal is r = sqrt(0): with a zero tangent times sqrt's infinite
    partial counted as 0 * inf = nan, every derivative of the SPH program is nan; NaN-safe
    rules (zero tangent, zero contribution) give the finite ones checked above."""
    base = pytest.importorskip("autodiff.rules.base")
    if not hasattr(base, "nan_safe"):
        pytest.skip("no NaN-safe switch in this engine")
    f, theta, _ = _program("sph_toy_star")
    with base.nan_safe(False):
        assert np.isnan(jvp(f, (theta,), (np.ones_like(theta),))[1]).all()
    assert np.isfinite(jvp(f, (theta,), (np.ones_like(theta),))[1]).all()


# ---------------------------------------------------------------------------------------------------
# The one form that cannot work: a state array allocated without a traced value, then written one
# ---------------------------------------------------------------------------------------------------
def heat_as_often_published(nu, nt=3, n=8):
    u = np.ones((n, n))                       # plain: knows nothing of nu
    u[2:5, 2:5] = 2.0
    for _ in range(nt):
        un = u.copy()
        u[1:-1, 1:-1] = un[1:-1, 1:-1] + nu * 0.1 * (un[1:-1, 2:] + un[1:-1, :-2] + un[2:, 1:-1]
                                                     + un[:-2, 1:-1] - 4 * un[1:-1, 1:-1])
    return u.sum()


def heat_allocating_from_the_parameter(nu, nt=3, n=8):
    u = np.ones_like(nu, shape=(n, n))        # the fix: allocate from a traced value
    u[2:5, 2:5] = 2.0
    for _ in range(nt):
        un = u.copy()
        u[1:-1, 1:-1] = un[1:-1, 1:-1] + nu * 0.1 * (un[1:-1, 2:] + un[1:-1, :-2] + un[2:, 1:-1]
                                                     + un[:-2, 1:-1] - 4 * un[1:-1, 1:-1])
    return u.sum()


def accumulate_into_plain(x):
    acc = np.zeros(3)
    acc += x                                  # a ufunc with out=plain
    return acc


RUNS = {"jvp": lambda f: jvp(f, (0.5,), (1.0,)), "grad": lambda f: grad(lambda x: np.sum(f(x)))(0.5)}


@pytest.mark.parametrize("mode", RUNS)
def test_writing_a_traced_value_into_a_plain_array_is_refused(mode):
    with pytest.raises(TypeError, match="drop its derivative"):
        RUNS[mode](heat_as_often_published)
    with pytest.raises(TypeError, match="zeros_like"):
        RUNS[mode](accumulate_into_plain)


@pytest.mark.parametrize("mode", RUNS)
def test_the_refusal_of_plain_idx_equals_traced_names_zeros_like(mode):
    with pytest.raises(TypeError, match="zeros_like"):
        RUNS[mode](heat_as_often_published)


def test_allocating_from_the_parameter_is_the_fix():
    value, tangent = jvp(heat_allocating_from_the_parameter, (0.5,), (1.0,))
    assert value == heat_as_often_published(0.5)
    fd = richardson(lambda t: heat_as_often_published(t[0]), np.array([0.5]), np.array([1.0]))
    assert_close(tangent, fd, "the fixed program: jvp")
    np.testing.assert_allclose(grad(heat_allocating_from_the_parameter)(0.5), tangent, rtol=1e-12)
