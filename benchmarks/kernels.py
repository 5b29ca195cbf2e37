"""The fused elementwise dual kernels (autodiff.backend.numba_cpu) against the numpy composition.

Side by side in one run, medians of interleaved repeats:
  * every elementwise op at 1e6 elements, K = 1 and 4, float64 and float32:
    the numpy composition (``y = f(x); ty = f'(x)[None] * t``, the rule's
    formula) against the fused kernels ("fused": one numba pass; "hybrid":
    numpy's SIMD ufunc for y, one numba pass for f' and all K tangents);
  * parallel=True (prange) against the serial kernels, on 2 cores;
  * mul and div with both tangents;
  * each kernel's first-call compile time, in a fresh process with an empty
    numba cache, and its load time from the cache in a second process.

    python benchmarks/kernels.py [--repeats 15] [--n 1000000]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

from autodiff.backend import numba_cpu as nc

DOMAIN = {"log": (0.05, 3), "sqrt": (0.05, 3), "arcsin": (-0.95, 0.95), "arccos": (-0.95, 0.95),
          "arctanh": (-0.95, 0.95), "log1p": (-0.9, 2), "tan": (-1.4, 1.4)}


def timeit(fns: dict, repeats: int) -> dict:
    """Median seconds of each callable, calls interleaved so drift hits all alike."""
    for f in fns.values():
        f()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}


def ms(s):
    return f"{s * 1e3:.2f}"


def table(header, rows):
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
    print()


def bench_unary(n, repeats):
    print(f"## Elementwise ops, {n:.0e} elements (ms, median of {repeats})\n")
    print("`numpy`: the composition `y = f(x); ty = f'(x)[None] * t`. `default`: the strategy "
          "`unary_jvp` picks (UNARY_STRATEGY); speedup = numpy / default.\n")
    rng = np.random.default_rng(0)
    rows, short = [], []
    for name in nc.UNARY_OPS:
        lo, hi = DOMAIN.get(name, (-3, 3))
        for dtype in (np.float64, np.float32):
            for K in (1, 4):
                x = np.asarray(rng.uniform(lo, hi, n), dtype)
                t = np.asarray(rng.standard_normal((K, n)), dtype)
                fns = {"numpy": lambda: nc.unary_jvp_reference(name, x, t),
                       "fused": lambda: nc.unary_jvp(name, x, t, strategy="fused")}
                if name in nc._HYBRID:
                    fns["hybrid"] = lambda: nc.unary_jvp(name, x, t, strategy="hybrid")
                r = timeit(fns, repeats)
                default = nc.UNARY_STRATEGY[name][dtype is np.float32]
                sp = r["numpy"] / r[default]
                rows.append([name, np.dtype(dtype).name, K, ms(r["numpy"]), ms(r["fused"]),
                             ms(r["hybrid"]) if "hybrid" in r else "-", default, f"{sp:.2f}x"])
                if sp < 2:
                    short.append((name, np.dtype(dtype).name, K, sp))
    table(["op", "dtype", "K", "numpy", "fused", "hybrid", "default", "speedup"], rows)
    return short


def bench_unary_small(repeats):
    n = 128 * 128
    print(f"## Engine-sized arrays: {n} elements (128x128), float64 (us, median of {repeats * 20})\n")
    rng = np.random.default_rng(1)
    rows = []
    for name in ("exp", "tanh", "log", "sqrt", "abs"):
        lo, hi = DOMAIN.get(name, (-3, 3))
        for K in (1, 4):
            x = rng.uniform(lo, hi, n)
            t = rng.standard_normal((K, n))
            r = timeit({"numpy": lambda: nc.unary_jvp_reference(name, x, t),
                        "kernel": lambda: nc.unary_jvp(name, x, t)}, repeats * 20)
            rows.append([name, K, f"{r['numpy'] * 1e6:.1f}", f"{r['kernel'] * 1e6:.1f}",
                         f"{r['numpy'] / r['kernel']:.2f}x"])
    table(["op", "K", "numpy", "default kernel", "speedup"], rows)


def bench_parallel(n, repeats):
    """prange versions of two kernels, built here from the module's own loops."""
    import numba
    from numba import njit, prange

    B = nc._B

    @njit(parallel=True, error_model="numpy")
    def fused_tanh_par(x, t, y, ty):
        n = x.size
        one = x.dtype.type(1)
        for b in prange((n + B - 1) // B):
            buf = np.empty(B, x.dtype)
            s = b * B
            m = min(B, n - s)
            nc._fused_block(nc._f_tanh, nc._d_tanh, x[s:s + m], y[s:s + m], buf, m, one)
            nc._scale_block(buf, t, ty, s, m)

    @njit(parallel=True, error_model="numpy")
    def tangent_tanh_par(x, y, t, ty):
        n = x.size
        one = x.dtype.type(1)
        for b in prange((n + B - 1) // B):
            buf = np.empty(B, x.dtype)
            s = b * B
            m = min(B, n - s)
            nc._deriv_block(nc._d_tanh, x[s:s + m], y[s:s + m], buf, m, one)
            nc._scale_block(buf, t, ty, s, m)

    rng = np.random.default_rng(2)
    K = 4
    x = rng.uniform(-3, 3, n)
    t = rng.standard_normal((K, n))
    y, ty = np.tanh(x), np.empty((K, n))
    op = nc._OPCODE["tanh"]
    print(f"## parallel=True vs serial (tanh, float64, {n:.0e} elements, K={K}; ms, "
          f"{numba.get_num_threads()} threads)\n")
    fused_tanh_par(x, t, y, ty)
    tangent_tanh_par(x, y, t, ty)
    r = timeit({"fused serial": lambda: nc._unary_fused_kernel(op, x, t, y, ty),
                "fused parallel": lambda: fused_tanh_par(x, t, y, ty),
                "tangent pass serial": lambda: nc._unary_tangent_kernel(op, x, y, t, ty),
                "tangent pass parallel": lambda: tangent_tanh_par(x, y, t, ty)}, repeats)
    table(["kernel", "serial", "parallel", "parallel speedup"],
          [[k, ms(r[f"{k} serial"]), ms(r[f"{k} parallel"]),
            f"{r[f'{k} serial'] / r[f'{k} parallel']:.2f}x"] for k in ("fused", "tangent pass")])
    print(f"threading layer used: {numba.threading_layer()}\n")


def bench_binary(n, repeats):
    print(f"## mul and div with both tangents, {n:.0e} elements (ms)\n")
    rng = np.random.default_rng(3)
    rows, short = [], []
    for name in nc.BINARY_OPS:
        for dtype in (np.float64, np.float32):
            for K in (1, 4):
                a = np.asarray(rng.standard_normal(n), dtype)
                b = np.asarray(rng.uniform(0.5, 2, n), dtype)
                ta, tb = (np.asarray(rng.standard_normal((K, n)), dtype) for _ in range(2))
                r = timeit({"numpy": lambda: nc.binary_jvp_reference(name, a, ta, b, tb),
                            "kernel": lambda: nc.binary_jvp(name, a, ta, b, tb)}, repeats)
                sp = r["numpy"] / r["kernel"]
                rows.append([name, np.dtype(dtype).name, K, ms(r["numpy"]), ms(r["kernel"]), f"{sp:.2f}x"])
                if sp < 2:
                    short.append((name, np.dtype(dtype).name, K, sp))
    table(["op", "dtype", "K", "numpy", "kernel", "speedup"], rows)
    return short


COMPILE_SNIPPET = r"""
import json, time
t0 = time.perf_counter()
import numba
t_numba = time.perf_counter() - t0
import numpy as np
from autodiff.backend import numba_cpu as nc
out = {"import numba": t_numba}
for dtype in (np.float64, np.float32):
    d = np.dtype(dtype).name
    x = np.full(8, 0.5, dtype); t = np.ones((2, 8), dtype); y = np.empty(8, dtype)
    ty = np.empty((2, 8), dtype)
    calls = [
        ("unary fused (17 ops)", lambda: nc._unary_fused_kernel(1, x, t, y, ty)),
        ("unary tangent pass (11 ops)", lambda: nc._unary_tangent_kernel(1, x, y, t, ty)),
        ("mul", lambda: nc.binary_jvp("mul", x, t, x, t)),
        ("div", lambda: nc.binary_jvp("div", x, t, x, t)),
    ]
    for name, f in calls:
        t0 = time.perf_counter(); f(); out[f"{name} [{d}]"] = time.perf_counter() - t0
print(json.dumps(out))
"""


def bench_compile():
    print("## First-call compile time per kernel (s; fresh process, empty NUMBA_CACHE_DIR), "
          "and load time from the cache (second process)\n")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache,
                   PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
        runs = []
        for _ in range(2):
            res = subprocess.run([sys.executable, "-c", COMPILE_SNIPPET], env=env,
                                 capture_output=True, text=True, check=True)
            runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
    rows = [[k, f"{runs[0][k]:.2f}", f"{runs[1][k]:.3f}"] for k in runs[0]]
    rows.append(["total", f"{sum(runs[0].values()):.2f}", f"{sum(runs[1].values()):.3f}"])
    table(["kernel [dtype]", "cold compile", "cached load"], rows)
    print("(the first kernel compiled in a process also pays numba's one-time initialization)\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--n", type=int, default=10 ** 6)
    args = ap.parse_args(argv)

    import numba
    print(f"# Fused dual kernels: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, python {platform.python_version()}, numpy {np.__version__}, "
          f"numba {numba.__version__} (SVML: {numba.config.USING_SVML})\n")
    print(f"load average at start: {os.getloadavg()}\n")
    short = bench_unary(args.n, args.repeats)
    bench_unary_small(args.repeats)
    bench_parallel(args.n, args.repeats)
    short += bench_binary(args.n, args.repeats)
    bench_compile()
    print(f"load average at end: {os.getloadavg()}\n")
    print("## Below the 2x target\n")
    for name, dtype, K, sp in short:
        print(f"* {name} {dtype} K={K}: {sp:.2f}x")


if __name__ == "__main__":
    main()
