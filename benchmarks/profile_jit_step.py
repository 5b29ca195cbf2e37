"""Where a replayed (`autodiff.jit`) training step spends its time, by numpy function.

A jit-ed step replays generated straight-line code whose calls go to numpy
functions bound as constants of the program (``k0``, ``k1``, ...).  This script
records the forward-over-reverse step of benchmarks/compare_peers.py's MLPs
(user code: `grad` of the loss, SGD with momentum, K tangents), then swaps each
constant for a timing wrapper and replays the step ``--repeats`` times.  It
prints, per numpy function, the calls per step and milliseconds per step, and
the share of GEMMs (matmul) against elementwise work; the time not spent in a
wrapped call (reductions, reshapes, the replay's own Python) is "other".

    python benchmarks/profile_jit_step.py --model large --dtype float32 --K 1
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _workloads import autodiff_step, make_problem, step_flops  # noqa: E402


def build(model: str, dtype: str, K: int):
    from autodiff import dual, jit
    prob = make_problem(model, dtype, k4=max(K, 1))
    x, y = prob["x"], prob["y"]
    tp, tv = (prob["t1p"], prob["t1v"]) if K == 1 else (prob["t4p"], prob["t4v"])
    if K == 0:
        p, v = prob["params"], prob["vel"]
    else:
        p = [dual(a, t[:K] if K > 1 else t[0]) for a, t in zip(prob["params"], tp)]
        v = [dual(a, t[:K] if K > 1 else t[0]) for a, t in zip(prob["vel"], tv)]
    js = jit(autodiff_step)
    js(p, v, x, y)
    js(p, v, x, y)
    (prog,) = js.programs.values()
    return js, prog, (p, v, x, y), prob["sizes"]


def _name(f) -> str:
    return getattr(f, "__name__", None) or type(f).__name__


def profile(js, prog, args, repeats: int):
    g = prog.replay.__globals__
    consts = {k: v for k, v in g.items() if k[:1] == "k" and k[1:].isdigit() and callable(v)}
    stats = collections.defaultdict(lambda: [0, 0.0])
    clock = time.perf_counter

    def wrap(f, name):
        def timed(*a, **kw):
            t0 = clock()
            r = f(*a, **kw)
            s = stats[name]
            s[0] += 1
            s[1] += clock() - t0
            return r
        return timed

    def run(n):
        t0 = clock()
        for _ in range(n):
            js(*args)
        return (clock() - t0) / n

    plain = min(run(max(repeats // 3, 1)) for _ in range(3))   # unwrapped step time
    saved = dict(consts)
    try:
        for k, f in consts.items():
            g[k] = wrap(f, _name(f))
        wrapped = run(repeats)
    finally:
        g.update(saved)
    return plain, wrapped, {k: (n / repeats, t / repeats) for k, (n, t) in stats.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="large", choices=("small", "large"))
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--K", type=int, default=1, choices=(0, 1, 2, 3, 4))
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args(argv)
    js, prog, call_args, sizes = build(args.model, args.dtype, args.K)
    plain, wrapped, rows = profile(js, prog, call_args, args.repeats)
    gemm_mflop = step_flops(sizes, k=args.K) / 1e6
    print(f"profile_jit_step: {args.model} MLP {sizes}, batch 128, {args.dtype}, K={args.K}, "
          f"1 BLAS thread, {args.repeats} replays; {len(prog.replay.source.splitlines())} "
          f"lines of replayed code, {gemm_mflop:.1f} MFLOP of GEMMs")
    print(f"step: {plain * 1e3:.2f} ms unwrapped, {wrapped * 1e3:.2f} ms with the timers\n")
    print(f"{'numpy function':<22} {'calls/step':>10} {'ms/step':>9} {'share':>7}")
    total = sum(t for _, t in rows.values())
    groups = collections.defaultdict(float)
    for name, (n, t) in sorted(rows.items(), key=lambda kv: -kv[1][1]):
        print(f"{name:<22} {n:>10.0f} {t * 1e3:>9.3f} {t / wrapped:>7.1%}")
        groups["GEMM (matmul)" if name == "matmul" else "elementwise and other calls"] += t
    print(f"{'(not in a call)':<22} {'':>10} {(wrapped - total) * 1e3:>9.3f} "
          f"{(wrapped - total) / wrapped:>7.1%}")
    print()
    for k, t in groups.items():
        print(f"{k:<28} {t * 1e3:8.2f} ms  {t / wrapped:6.1%}")
    gemm = groups.get("GEMM (matmul)", 0.0)
    if gemm:
        print(f"GEMM throughput inside the step: {gemm_mflop / 1e3 / gemm:.1f} GFLOP/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
