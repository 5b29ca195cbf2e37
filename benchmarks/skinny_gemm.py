"""The small model's skinny GEMMs: OpenBLAS (numpy's matmul) against numba loops.

The 64-128-10 step spends most of its compiled time in 13 GEMMs; nine are
"skinny" (the 10-wide output layer), where OpenBLAS's packing and dispatch cost
more than the arithmetic.  This script times, for each skinny shape of that step,
numpy's matmul against two numba loops, interleaved in one process, and prints
the ratios:

* "dot": one dot product per output entry over the contiguous inner axis (the
  right operand transposed once), the loop numba vectorizes by itself;
* "4x2": the same with a register block of 4 rows x 2 columns of the output
  (8 accumulators), which reuses each loaded operand 2-4 times.

Both loops may reassociate the sums (fastmath "reassoc"), as BLAS does, so they
agree with numpy to rounding, not bit for bit.

    python benchmarks/skinny_gemm.py [--repeats 3000]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # the kernels are single-threaded too

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

FM = {"reassoc", "contract", "nsz"}


@njit(fastmath=FM, cache=True)
def gemm_dot(a, bt, c):
    """c = a @ bt.T, one dot product per entry."""
    m, k = a.shape
    n = bt.shape[0]
    zero = c.dtype.type(0)
    for i in range(m):
        for j in range(n):
            s = zero
            for p in range(k):
                s += a[i, p] * bt[j, p]
            c[i, j] = s


@njit(fastmath=FM, cache=True)
def gemm_4x2(a, bt, c):
    """c = a @ bt.T with 4x2 register blocks (m % 4 == 0 and n % 2 == 0)."""
    m, k = a.shape
    n = bt.shape[0]
    zero = c.dtype.type(0)
    for i in range(0, m, 4):
        for j in range(0, n, 2):
            s00 = s01 = s10 = s11 = s20 = s21 = s30 = s31 = zero
            for p in range(k):
                b0 = bt[j, p]
                b1 = bt[j + 1, p]
                a0 = a[i, p]
                a1 = a[i + 1, p]
                a2 = a[i + 2, p]
                a3 = a[i + 3, p]
                s00 += a0 * b0
                s01 += a0 * b1
                s10 += a1 * b0
                s11 += a1 * b1
                s20 += a2 * b0
                s21 += a2 * b1
                s30 += a3 * b0
                s31 += a3 * b1
            c[i, j] = s00
            c[i, j + 1] = s01
            c[i + 1, j] = s10
            c[i + 1, j + 1] = s11
            c[i + 2, j] = s20
            c[i + 2, j + 1] = s21
            c[i + 3, j] = s30
            c[i + 3, j + 1] = s31


def _time(f, repeats: int) -> float:
    f()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeats):
            f()
        best = min(best, (time.perf_counter() - t0) / repeats)
    return best * 1e6


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3000)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"skinny_gemm: numpy {np.__version__}, 1 thread, best of 3 x {args.repeats} calls, µs per GEMM")
    print(f"{'shape (m x k x n)':34s} {'dtype':8s} {'numpy':>7s} {'dot':>7s} {'4x2':>7s} {'4x2/numpy':>10s} {'max rel diff':>13s}")
    for dt in (np.float64, np.float32):
        for label, m, k, n in (("h @ W2 (128 x 128 x 10)", 128, 128, 10),
                               ("h.T @ g (128 x 128 x 10, A^T)", 128, 128, 10),
                               ("g @ W2.T (128 x 10 x 128)", 128, 10, 128)):
            a = rng.standard_normal((m, k)).astype(dt)
            b = rng.standard_normal((k, n)).astype(dt)
            if "h.T" in label:          # numpy takes the transposed view as it is
                a_np = np.ascontiguousarray(a.T).T
            else:
                a_np = a
            bt = np.ascontiguousarray(b.T)
            c = np.empty((m, n), dt)
            ref = a_np @ b
            gemm_4x2(np.ascontiguousarray(a_np), bt, c)
            diff = float(np.max(np.abs(c - ref)) / np.max(np.abs(ref)))
            t_np = _time(lambda: np.matmul(a_np, b), args.repeats)
            t_dot = _time(lambda: gemm_dot(np.ascontiguousarray(a_np), np.ascontiguousarray(b.T), c),
                          args.repeats)
            t_blk = _time(lambda: gemm_4x2(np.ascontiguousarray(a_np), np.ascontiguousarray(b.T), c),
                          args.repeats)
            print(f"{label:34s} {np.dtype(dt).name:8s} {t_np:7.1f} {t_dot:7.1f} {t_blk:7.1f} "
                  f"{t_blk / t_np:10.2f} {diff:13.1e}")
    print("(dot and 4x2 include making their operands contiguous, as a compiled step would)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
