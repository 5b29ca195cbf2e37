"""Cost of the NaN-safe guard (autodiff.rules.base.NAN_SAFE): guarded vs plain products.

The guard multiplies a singular partial d by a (co)tangent t as
``t * where(t == 0, 0, d)`` (`nansafe_mul`) instead of ``t * d``: one compare
and one select more over the K x N tangent.  Only the rules marked `singular`
(sqrt, pow in the base, log, log1p, div, arcsin, arccos, arctanh) pay it.
Both measurements toggle `NAN_SAFE` in one process and interleave the two
modes, alternating which runs first; a ratio is the median of the per-round
ratios (guarded / plain), a time the median over rounds.

(a) Rules on plain float64 arrays of N = 1e3 and 1e5 elements, inputs away
    from singular points (the guard costs the same wherever it is):
      jvp rule  the rules' tangent terms alone, K = 1 and 4 tangent directions;
      dual op   the whole forward application P.op(Dual) (primal + rules), with
                the numba kernels off (for N >= 16384 they would bypass the
                rules: see the note in tests/test_nan_safe.py);
      vjp rule  the rules' cotangents alone (K does not apply).
    Ops: sqrt(x); x ** 0.5 (pow, partial in the base); log(x); x / y with
    both x and y carrying tangents (div, both partials singular).

(b) The forward hypergradient of ``python -m hyperopt tune``'s default setup
    (mlp 64-64-10 on digits, sgd with the CLI's default lr and momentum,
    batch 64, float64; K = 2 directions: lr and momentum), fewer steps:
    ``hyperopt.hypergrad.hypergradient(setup, h, mode="forward")``.  With jit
    (the default) a recorded program keeps the mode it was recorded in, so
    each mode gets its own Setup, recorded under that mode; eager runs share
    one Setup.  The guarded ops on that path: log (in log-softmax) and div.

The script re-runs itself with glibc's malloc thresholds fixed
(MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ = 256 MiB) unless
--default-malloc: otherwise glibc's dynamic mmap threshold decides, from the
history of frees, whether a fresh 0.8-3.2 MB temporary costs page faults, and
the N = 1e5 timings jump by 5-10x between configurations for reasons that have
nothing to do with the guard.  One BLAS thread.

    python benchmarks/nan_safe_cost.py [--repeats 7] [--T 200] [--skip-a] [--skip-b]
        [--clock cpu|wall] [--default-malloc]
"""
from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    from _procinfo import one_thread_fixed_malloc
    one_thread_fixed_malloc(256 << 20)

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import autodiff  # noqa: E402,F401
from autodiff import primitives as P  # noqa: E402
from autodiff.backend import set_kernels  # noqa: E402
from autodiff.dual import Dual  # noqa: E402
from autodiff.rules import base  # noqa: E402

from _procinfo import git_head  # noqa: E402

CLOCK = {"cpu": time.process_time, "wall": time.perf_counter}


def _sample(fn, n, clock):
    t0 = clock()
    for _ in range(n):
        fn()
    return (clock() - t0) / n


def ab(fn, repeats, clock, target=0.02):
    """Median seconds per call of fn() with NAN_SAFE off and on, and the median
    per-round ratio on / off; the modes alternate which runs first."""
    base.NAN_SAFE = True
    fn()
    t1 = time.perf_counter()
    fn()
    n = max(3, int(target / max(time.perf_counter() - t1, 1e-7)))
    off, on = [], []
    for r in range(repeats):
        for mode in ((False, True) if r % 2 == 0 else (True, False)):
            base.NAN_SAFE = mode
            (on if mode else off).append(_sample(fn, n, clock))
    base.NAN_SAFE = True
    return statistics.median(off), statistics.median(on), statistics.median(b / a for a, b in zip(off, on))


# -- (a) rules ------------------------------------------------------------------------------
def _ops(N, rng):
    x = rng.uniform(0.5, 2.0, N)
    y = rng.uniform(0.5, 2.0, N)
    return {  # name: (primitive, args, which args carry tangents)
        "sqrt": (P.sqrt, (x,), (0,)),
        "x**0.5": (P.pow, (x, 0.5), (0,)),
        "log": (P.log, (x,), (0,)),
        "x/y": (P.div, (x, y), (0, 1)),
    }


def bench_rules(repeats, clock):
    rng = np.random.default_rng(0)
    rows = []
    before = set_kernels(False)
    try:
        for N in (1000, 100000):
            for name, (prim, args, diff) in _ops(N, rng).items():
                ans = prim(*args)
                g = rng.standard_normal(N)
                for K in (1, 4):
                    ts = {i: rng.standard_normal((K, N)) for i in diff}

                    def jvp_rule(prim=prim, args=args, ans=ans, ts=ts):
                        return [prim.jvps[i](t, ans, *args) for i, t in ts.items()]

                    duals = tuple(Dual(a, ts[i]) if i in ts else a for i, a in enumerate(args))

                    def dual_op(prim=prim, duals=duals):
                        return prim(*duals)

                    rows.append((name, N, K, "jvp rule", *ab(jvp_rule, repeats, clock)))
                    rows.append((name, N, K, "dual op", *ab(dual_op, repeats, clock)))

                def vjp_rule(prim=prim, args=args, ans=ans, g=g, diff=diff):
                    return [prim.vjps[i](g, ans, *args) for i in diff]

                rows.append((name, N, "-", "vjp rule", *ab(vjp_rule, repeats, clock)))
    finally:
        set_kernels(before)
    return rows


# -- (b) the forward hypergradient of `python -m hyperopt tune` -------------------------------
def _tune_setup(T, jit):
    from hyperopt import cli
    argv = ["tune", "--steps", str(T)] + ([] if jit else ["--no-jit"])
    args = cli.build_parser().parse_args(argv)
    cli._check_model_options(args)   # what `python -m hyperopt` does before the command
    cli._resolve_tune(args)
    setup = cli._setup(args)
    return setup, {"lr": args.lr, "momentum": args.momentum}, args


def bench_hypergrad(T, repeats, clock):
    from hyperopt.hypergrad import hypergradient
    results, desc = [], None
    for jit in (True, False):
        setups = {}
        for mode in (False, True):  # one Setup per mode under jit: a program keeps its recording's mode
            if jit or not setups:
                base.NAN_SAFE = mode
                setups[mode] = _tune_setup(T, jit)
                hypergradient(setups[mode][0], setups[mode][1], mode="forward")  # warm-up, records
            else:
                setups[mode] = setups[False]
        base.NAN_SAFE = True
        s, h, args = setups[True]
        desc = (f"mlp {'-'.join(map(str, s.model.sizes))} on digits, {args.optimizer} lr={args.lr:g} "
                f"momentum={args.momentum:g}, batch {args.batch_size}, {args.dtype}, T={T} steps, "
                f"K=2 (lr, momentum)")
        off, on, values = [], [], {}
        for r in range(repeats):
            for mode in ((False, True) if r % 2 == 0 else (True, False)):
                base.NAN_SAFE = mode
                st, hp, _ = setups[mode]
                t0 = clock()
                hg = hypergradient(st, hp, mode="forward")
                (on if mode else off).append((clock() - t0) / T)
                values[mode] = hg
        base.NAN_SAFE = True
        same = _same(values[False], values[True])
        results.append(("jit" if jit else "eager", statistics.median(off), statistics.median(on),
                        statistics.median(b / a for a, b in zip(off, on)), same))
    return desc, results


def _same(a, b):
    try:
        fa = np.concatenate([np.ravel(np.asarray(v, float)) for v in _leaves(a)])
        fb = np.concatenate([np.ravel(np.asarray(v, float)) for v in _leaves(b)])
        return bool(np.allclose(fa, fb, rtol=1e-12, atol=0))
    except Exception:  # noqa: BLE001 - the comparison is a courtesy
        return None


def _leaves(hg):
    return [hg.value] + [hg.grads[k] for k in sorted(hg.grads)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7, help="interleaved rounds (default 7)")
    ap.add_argument("--T", type=int, default=200, help="training steps of the hypergradient run (default 200)")
    ap.add_argument("--clock", choices=tuple(CLOCK), default="cpu",
                    help="process CPU time (default; leaves out time descheduled on a shared machine) or wall")
    ap.add_argument("--skip-a", action="store_true", help="skip the rule microbenchmark")
    ap.add_argument("--skip-b", action="store_true", help="skip the hypergradient run")
    ap.add_argument("--default-malloc", action="store_true",
                    help="keep glibc's dynamic malloc thresholds (see the module docstring)")
    args = ap.parse_args(argv)
    clock = CLOCK[args.clock]
    print(f"nan_safe_cost: guarded (NAN_SAFE=True) vs plain (False), {args.repeats} interleaved rounds, "
          f"clock {args.clock}; numpy {np.__version__}, Python {platform.python_version()}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, 1 BLAS thread; code at {git_head()}; malloc "
          + ("default" if args.default_malloc else "thresholds 256 MiB"))
    if not args.skip_a:
        rows = bench_rules(args.repeats, clock)
        print("\n(a) rules on float64 arrays (numba kernels off); microseconds per call")
        print(f"{'op':7} {'N':>7} {'K':>2}  {'what':9} {'plain us':>10} {'guarded us':>11} {'ratio':>7}")
        for name, N, K, what, off, on, ratio in rows:
            print(f"{name:7} {N:>7} {K!s:>2}  {what:9} {off * 1e6:10.2f} {on * 1e6:11.2f} {ratio:7.3f}")
    if not args.skip_b:
        desc, res = bench_hypergrad(args.T, args.repeats, clock)
        print(f"\n(b) forward hypergradient, `python -m hyperopt tune` setup: {desc}; ms per training step")
        print(f"{'step':6} {'plain ms':>9} {'guarded ms':>11} {'ratio':>7}  same hypergradient")
        for mode, off, on, ratio, same in res:
            print(f"{mode:6} {off * 1e3:9.3f} {on * 1e3:11.3f} {ratio:7.3f}  {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
