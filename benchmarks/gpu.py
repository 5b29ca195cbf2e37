"""GPU (cupy) step time and fraction of cuBLAS GEMM throughput.

Runs the forward-over-reverse training step of the 784-512-512-10 MLP (batch
128) with every array a cupy array, so the engine's numpy calls dispatch to
cupy and nothing leaves the device inside a step, plus the plain `grad` step.
GEMM throughput is measured in the same run with a large cupy matmul; each row
prints its achieved fraction of the FLOP floor.

    python benchmarks/gpu.py [--dtype float32] [--repeats 50]

Without cupy or a CUDA device it says so and exits 0.
"""
from __future__ import annotations

import argparse
import sys
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args(argv)
    try:
        import cupy as cp
        cp.cuda.runtime.getDeviceCount()
    except Exception as e:  # no cupy, or no device
        print(f"skipped: cupy and a CUDA device are required ({type(e).__name__}: {e})")
        return 0
    import numpy as np

    from autodiff import dual, grad
    from autodiff.ops import logsumexp

    dt = np.dtype(args.dtype)
    sizes = (784, 512, 512, 10)
    rng = cp.random.default_rng(0)
    params = [{"w": (rng.standard_normal((m, n)) / np.sqrt(m)).astype(dt), "b": cp.zeros(n, dt)}
              for m, n in zip(sizes[:-1], sizes[1:])]
    x = rng.standard_normal((args.batch, sizes[0])).astype(dt)
    y = cp.eye(10, dtype=dt)[rng.integers(0, 10, args.batch)]

    def loss(p, x, y):
        h = x
        for layer in p[:-1]:
            h = np.tanh(h @ layer["w"] + layer["b"])
        logits = h @ p[-1]["w"] + p[-1]["b"]
        return np.mean(logsumexp(logits, axis=1) - np.sum(logits * y, axis=1))

    def step(p):
        g = grad(loss)(p, x, y)
        return [{k: l[k] - 0.01 * gl[k] for k in l} for l, gl in zip(p, g)]

    def timed(fn):
        for _ in range(3):
            fn()
        cp.cuda.Device().synchronize()
        ts = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            cp.cuda.Device().synchronize()
            ts.append(time.perf_counter() - t0)
        return float(np.median(ts))

    a = rng.standard_normal((4096, 4096)).astype(dt)
    t_gemm = timed(lambda: a @ a)
    peak = 2 * 4096 ** 3 / t_gemm
    gemms = [(args.batch, m, n) for m, n in zip(sizes[:-1], sizes[1:])]
    fwd = sum(2 * b * m * n for b, m, n in gemms)
    plain_flops = fwd + fwd + sum(2 * b * m * n for b, m, n in gemms[1:])  # forward, dW, dX (not layer 1)
    k1 = [{k: dual(v, rng.standard_normal((1,) + v.shape).astype(dt)) for k, v in l.items()} for l in params]
    # K=1: each GEMM becomes 3 (1 + 2K), or 2 where the input is data (x @ W1, x^T @ delta1)
    k1_flops = 3 * plain_flops - 2 * sum(2 * b * m * n for b, m, n in gemms[:1]) * 1
    rows = [("plain grad step", lambda: step(params), plain_flops),
            ("fwd-over-rev K=1", lambda: step(k1), k1_flops)]
    print(f"{cp.cuda.runtime.getDeviceProperties(0)['name'].decode()}, {args.dtype}, "
          f"cuBLAS GEMM peak {peak / 1e12:.2f} TFLOP/s")
    for name, fn, flops in rows:
        t = timed(fn)
        print(f"{name:<20} {t * 1e3:8.3f} ms   {flops / peak / t:6.3f} of the FLOP floor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
