"""Memory and time of simulation sensitivities: forward mode (flat) vs reverse mode (growing).

A damped, driven pendulum (non-chaotic regime)

    theta'' = -w0^2 sin(theta) - c theta' + A cos(W t)

is integrated with fixed-step RK4 (dt = 1e-3) for T steps, and we ask for the
derivatives of the final state with respect to the initial state (2 numbers)
and the parameters w0^2, c, A, W (4 numbers):

  forward   autodiff.integrate.sensitivity: one pass carrying all 6 tangent
            directions (the full 2x6 Jacobian); nothing of the past steps is
            kept, so memory should not grow with T (T = 1e2 .. 1e5);
  reverse   grad of u . y(T) (u a fixed vector) over the unrolled run: the tape
            records every step, so memory grows with T (T = 1e2 .. 1e4).

Each (mode, T) runs in a fresh subprocess.  It reports the peak resident set
of the timed run (VmHWM from /proc/self/status, reset just before the run via
/proc/self/clear_refs where the kernel allows it) and, for T up to
--trace-max-T, the tracemalloc peak of a second run (after a traced warm-up
run that fills CPython's free lists, as in tests/test_memory.py).  The
"check" column is max |u . J_forward - grad_reverse| where both exist.

    python benchmarks/integrate_memory.py [--max-T 100000] [--reverse-max-T 10000]
                                          [--trace-max-T 10000] [--json [PATH]]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORWARD_T = (100, 1_000, 10_000, 100_000)
REVERSE_T = (100, 1_000, 10_000)
MARK = "@@RESULT@@ "
DT = 1e-3
Y0 = (0.8, 0.0)
PARAMS = {"w0sq": 1.0, "c": 0.5, "A": 0.5, "W": 0.7}
U = (1.0, -0.5)  # the reverse-mode loss is U . y(T)


from _procinfo import peak_rss_kb, reset_peak, status_kb  # noqa: E402


def worker(mode: str, T: int, trace: bool) -> int:
    import numpy as np

    from autodiff import grad
    from autodiff.integrate import odeint, sensitivity

    def pendulum(y, t, p):
        return np.stack([y[1], -p["w0sq"] * np.sin(y[0]) - p["c"] * y[1] + p["A"] * np.cos(p["W"] * t)])

    y0 = np.array(Y0)
    params = {k: np.array(v) for k, v in PARAMS.items()}
    u = np.array(U)
    span = lambda n: (0.0, n * DT)

    def run(n):
        if mode == "forward":
            s = sensitivity(pendulum, y0, span(n), params, method="rk4", steps=n)
            # u . J for the check against reverse mode
            return s.y, np.concatenate([u @ s.dy0] + [np.atleast_1d(u @ s.dparams[k]) for k in PARAMS])

        def loss(y0, p):
            return u @ odeint(pendulum, y0, span(n), p, method="rk4", steps=n)

        g0, gp = grad(loss, argnums=(0, 1))(y0, params)
        return None, np.concatenate([g0] + [np.atleast_1d(gp[k]) for k in PARAMS])

    # a short untimed run first, so one-off costs (numba caches, first dispatch) stay out
    run(10)
    gc.collect()
    rss_setup = status_kb("VmRSS")
    was_reset = reset_peak()
    t0 = time.perf_counter()
    y, uJ = run(T)
    seconds = time.perf_counter() - t0
    peak = peak_rss_kb()
    out = {"mode": mode, "T": T, "peak_kb": peak, "setup_kb": rss_setup, "peak_reset": was_reset,
           "seconds": seconds, "uJ": uJ.tolist()}
    if y is not None:
        out["y"] = y.tolist()
    if trace:
        del y, uJ
        gc.collect()
        tracemalloc.start()
        try:
            run(min(T, 1000))  # warm-up, no gc.collect() after it (it would empty the free lists)
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            run(T)
            out["traced_peak_b"] = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
    print(MARK + json.dumps(out))
    return 0


def run_child(mode: str, T: int, trace: bool):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", mode, "--T", str(T)]
    if trace:
        cmd.append("--trace")
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(ROOT))
    for line in r.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):]), None
    return None, f"exit {r.returncode}: {(r.stderr or r.stdout).strip()[-2000:]}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-T", type=int, default=max(FORWARD_T), help="skip forward runs longer than this")
    ap.add_argument("--reverse-max-T", type=int, default=max(REVERSE_T), help="skip reverse runs longer than this")
    ap.add_argument("--trace-max-T", type=int, default=10_000,
                    help="tracemalloc peaks for runs up to this many steps (tracing is ~5x slower)")
    ap.add_argument("--json", nargs="?", const="-", metavar="PATH",
                    help="also write the results as JSON to PATH (stdout without PATH)")
    ap.add_argument("--worker", choices=("forward", "reverse"), help=argparse.SUPPRESS)
    ap.add_argument("--T", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.T, args.trace)
    if args.max_T < 1:
        ap.error("--max-T must be positive")

    print(f"integrate_memory: driven damped pendulum, RK4, dt={DT}, d y(T) / d (y0, 4 params), float64; "
          f"Python {platform.python_version()}; one fresh process per row")
    print(f"{'T':>8}  {'mode':<9}{'peak RSS MB':>12}{'growth MB':>11}{'traced MB':>11}"
          f"{'time s':>9}{'ms/step':>9}  check")
    plan = [("forward", T) for T in FORWARD_T if T <= args.max_T] + \
           [("reverse", T) for T in REVERSE_T if T <= min(args.max_T, args.reverse_max_T)]
    rows, failures, by_key = [], [], {}
    for mode, T in plan:
        res, err = run_child(mode, T, T <= args.trace_max_T)
        if err:
            failures.append(f"{mode} T={T}: {err}")
            print(f"{T:>8}  {mode:<9} FAILED: {err}", file=sys.stderr)
            continue
        rows.append(res)
        by_key[(mode, T)] = res
        check = ""
        other = by_key.get(("forward", T)) if mode == "reverse" else None
        if other is not None:
            res["check"] = max(abs(a - b) for a, b in zip(res["uJ"], other["uJ"]))
            check = f"{res['check']:.1e}"
        peak, growth = res["peak_kb"] / 1024, (res["peak_kb"] - res["setup_kb"]) / 1024
        traced = f"{res['traced_peak_b'] / 2**20:>11.3f}" if "traced_peak_b" in res else f"{'-':>11}"
        print(f"{T:>8}  {mode:<9}{peak:>12.1f}{growth:>11.1f}{traced}{res['seconds']:>9.2f}"
              f"{res['seconds'] / T * 1e3:>9.3f}  {check}", flush=True)
    fwd = [r for r in rows if r["mode"] == "forward"]
    if len(fwd) > 1:
        lo, hi = min(r["peak_kb"] for r in fwd), max(r["peak_kb"] for r in fwd)
        print(f"forward: peak RSS from T={fwd[0]['T']} to T={fwd[-1]['T']} varies by {(hi - lo) / lo:.1%}")
        tr = [r for r in fwd if "traced_peak_b" in r]
        if len(tr) > 1:
            print(f"forward: tracemalloc peak {tr[0]['traced_peak_b'] / 1e3:.1f} kB (T={tr[0]['T']}) to "
                  f"{tr[-1]['traced_peak_b'] / 1e3:.1f} kB (T={tr[-1]['T']})")
    rev = [r for r in rows if r["mode"] == "reverse"]
    if len(rev) > 1:
        per = (rev[-1]["peak_kb"] - rev[0]["peak_kb"]) / (rev[-1]["T"] - rev[0]["T"])
        print(f"reverse: peak RSS grows by about {per:.1f} kB per step (T={rev[0]['T']} -> {rev[-1]['T']})")
    if not all(r["peak_reset"] for r in rows):
        print("note: /proc/self/clear_refs was not writable; peaks include the imports' high-water mark")
    if args.json:
        text = json.dumps({"rows": rows, "failures": failures}, indent=1)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
