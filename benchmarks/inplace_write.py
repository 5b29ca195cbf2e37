"""In-place writes into traced arrays vs the same computation written functionally.

The program: T explicit steps of the 1-D heat equation on N points with
Dirichlet ends, u_{t+1}[i] = u_t[i] + c (u_t[i+1] - 2 u_t[i] + u_t[i-1]),
from an initial condition that carries the derivative directions:
u_0 = base + theta @ B for K parameters theta (B: K smooth bumps).  The
output is w . u_T.  Four ways to write one step, the same arithmetic:

  write        u[1:-1] = u[1:-1] + c * (u[2:] - 2 * u[1:-1] + u[:-2])
  concatenate  u = np.concatenate([u[:1], <the same interior>, u[-1:]])
  pad          u = np.pad(<the same interior>, 1)        (the ends are 0)
  where        u = np.where(interior, u + c * (np.roll(u, -1) - 2 u + np.roll(u, 1)), u)

Modes: forward K=1 (`jvp` along one direction of theta), forward K=4
(`jacfwd` over 4 parameters: one pass with 4 tangents), reverse (`grad` of
w . u_T in the 4 parameters: the tape records the T steps, a write as an
``index_update``).  For each (mode, N) the four forms run interleaved in one
process, in a rotating order, over ``--repeats`` rounds; a time is the median
over rounds of the seconds per step, a ratio the median of the per-round
ratios form / write.  The forms' answers are compared (they must agree to
1e-12 relative; the primal is the same arithmetic, so bit for bit is expected).

As benchmarks/nan_safe_cost.py, the script re-runs itself with glibc's malloc
thresholds fixed unless --default-malloc (mmap threshold 256 MiB; trim
threshold 4 GiB, so that the heap is never given back: a reverse run at
N = 1e5 holds 230-310 MiB, depending on the form, and with a 256 MiB trim
threshold the run after the largest paid ~65,000 page faults, measured, 3x its
time), and uses one BLAS thread.

    python benchmarks/inplace_write.py [--repeats 15] [--T 50] [--sizes 1000 100000]
        [--modes fwd1 fwd4 rev] [--clock cpu|wall] [--quick] [--default-malloc]
"""
from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    from _procinfo import one_thread_fixed_malloc
    one_thread_fixed_malloc(4 << 30)

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from autodiff import grad, jacfwd, jvp  # noqa: E402

from _procinfo import git_head  # noqa: E402

CLOCK = {"cpu": time.process_time, "wall": time.perf_counter}
C = 0.2  # c = nu dt / dx^2, stable below 0.5
K_MAX = 4
MODES = {"fwd1": "forward K=1", "fwd4": "forward K=4", "rev": "reverse"}


# -- one step, four ways ----------------------------------------------------------------------
def step_write(u):
    u[1:-1] = u[1:-1] + C * (u[2:] - 2 * u[1:-1] + u[:-2])
    return u


def step_concatenate(u):
    return np.concatenate([u[:1], u[1:-1] + C * (u[2:] - 2 * u[1:-1] + u[:-2]), u[-1:]])


def step_pad(u):
    return np.pad(u[1:-1] + C * (u[2:] - 2 * u[1:-1] + u[:-2]), 1)


def make_step_where(n):
    interior = np.ones(n, dtype=bool)
    interior[[0, -1]] = False

    def step_where(u):
        return np.where(interior, u + C * (np.roll(u, -1) - 2 * u + np.roll(u, 1)), u)
    return step_where


def problem(n, rng):
    x = np.linspace(0.0, 1.0, n)
    base = np.sin(np.pi * x) * (1 + 0.3 * rng.standard_normal(n))
    B = np.stack([np.exp(-((x - c) / 0.1) ** 2) for c in np.linspace(0.2, 0.8, K_MAX)])
    base[[0, -1]] = 0.0
    B[:, [0, -1]] = 0.0        # the ends stay 0: np.pad's fill
    w = rng.standard_normal(n)
    return base, B, w


def make_program(step, T, base, B, w):
    def run(theta):
        u = base + theta @ B[:theta.shape[0]]
        for _ in range(T):
            u = step(u)
        return np.sum(w * u)
    return run


# -- timing -----------------------------------------------------------------------------------
def _once(fn, clock):
    t0 = clock()
    out = fn()
    return clock() - t0, out


def interleaved(fns, repeats, clock):
    """{name: [seconds per call, one per round]} and the last answers; the order of the
    forms rotates every round."""
    names = list(fns)
    times = {k: [] for k in names}
    answers = {}
    for k in names:
        answers[k] = fns[k]()           # warm-up (first calls compile numba kernels, fill caches)
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for k in order:
            dt, answers[k] = _once(fns[k], clock)
            times[k].append(dt)
    return times, answers


def _flat(a):
    if isinstance(a, tuple):
        return np.concatenate([np.ravel(x) for x in a])
    return np.ravel(np.asarray(a, dtype=float))


def run_case(mode, n, T, repeats, clock, rng):
    base, B, w = problem(n, rng)
    steps = {"write": step_write, "concatenate": step_concatenate, "pad": step_pad,
             "where": make_step_where(n)}
    fns = {}
    for name, step in steps.items():
        prog = make_program(step, T, base, B, w)
        if mode == "forward K=1":
            theta, v = np.array([1.0]), np.array([1.0])
            fns[name] = lambda prog=prog, theta=theta, v=v: jvp(prog, (theta,), (v,))
        elif mode == "forward K=4":
            theta = np.ones(K_MAX)
            fns[name] = lambda prog=prog, theta=theta: jacfwd(prog)(theta)
        else:
            theta = np.ones(K_MAX)
            fns[name] = lambda prog=prog, theta=theta: grad(prog)(theta)
    plain_times, plain_answer = interleaved({"numpy": lambda: make_program(step_write, T, base, B, w)(
        np.ones(K_MAX))}, max(1, repeats // 2), clock)
    times, answers = interleaved(fns, repeats, clock)
    ref = _flat(answers["write"])
    scale = np.abs(ref).max()
    agree = {k: float(np.abs(_flat(a) - ref).max() / scale) for k, a in answers.items()}
    medians = {k: statistics.median(v) / T for k, v in times.items()}
    ratios = {k: statistics.median(b / a for a, b in zip(times["write"], v)) for k, v in times.items()}
    return medians, ratios, agree, statistics.median(plain_times["numpy"]) / T


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default 15; --quick: 2)")
    ap.add_argument("--T", type=int, default=None, help="time steps per run (default 50; --quick: 5)")
    ap.add_argument("--sizes", type=int, nargs="+", default=None,
                    help="grid sizes N (default 1000 100000; --quick: 100 1000)")
    ap.add_argument("--clock", choices=tuple(CLOCK), default="cpu",
                    help="process CPU time (default; leaves out time descheduled on a shared machine) or wall")
    ap.add_argument("--modes", nargs="+", choices=tuple(MODES), default=list(MODES),
                    help="which modes to run (default all): fwd1 = jvp, fwd4 = jacfwd over 4, rev = grad")
    ap.add_argument("--quick", action="store_true", help="smoke test: N = 100, 1000; T = 5; 2 rounds")
    ap.add_argument("--default-malloc", action="store_true",
                    help="keep glibc's dynamic malloc thresholds (see the module docstring)")
    args = ap.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 15)
    T = args.T or (5 if args.quick else 50)
    sizes = args.sizes or ([100, 1000] if args.quick else [1000, 100000])
    clock = CLOCK[args.clock]
    print(f"inplace_write: 1-D heat stencil, T={T} steps, {repeats} interleaved rounds, clock {args.clock}; "
          f"numpy {np.__version__}, Python {platform.python_version()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f}, 1 BLAS thread; code at {git_head()}; malloc "
          + ("default" if args.default_malloc else "mmap threshold 256 MiB, trim threshold 4 GiB"))
    print("microseconds per time step (median over rounds); ratio = form / write (median per-round ratio); "
          "agree = max |answer - write's| / max |write's|")
    print(f"{'mode':12} {'N':>7} {'form':12} {'us/step':>10} {'ratio':>7} {'agree':>9}   plain numpy us/step")
    rng = np.random.default_rng(0)
    worst = 0.0
    for mode in (MODES[m] for m in args.modes):
        for n in sizes:
            medians, ratios, agree, plain = run_case(mode, n, T, repeats, clock, rng)
            for k in medians:
                worst = max(worst, agree[k])
                print(f"{mode:12} {n:>7} {k:12} {medians[k] * 1e6:10.1f} {ratios[k]:7.3f} {agree[k]:9.1e}"
                      + (f"   {plain * 1e6:.1f}" if k == "write" else ""))
    ok = worst <= 1e-12
    print(f"forms agree: {'ok' if ok else 'NO'} (worst {worst:.1e})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
