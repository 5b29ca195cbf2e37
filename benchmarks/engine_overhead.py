"""Engine overhead on a 64-128-10 MLP gradient step (batch 128, float64).

Measured side by side in one process, interleaved, medians over many repeats:
  * autodiff `grad` against a hand-written numpy gradient;
  * forward-over-reverse with K=1 (the step of a forward hypergradient: the
    parameters are Duals, `grad` runs on them) against `grad`;
  * the same with K=4 tangent directions (what `jacfwd` over 4 hyperparameters does);
  * the same three steps under `jit` (recorded once, replayed).
Each step is the gradient plus an SGD update.

    python benchmarks/engine_overhead.py [--repeats 200]
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from autodiff import dual, grad, jit
from autodiff.ops import logsumexp


def loss(params, x, y):
    h = np.tanh(x @ params["w1"] + params["b1"])
    logits = h @ params["w2"] + params["b2"]
    return np.mean(logsumexp(logits, axis=1) - np.sum(logits * y, axis=1))


def numpy_grad(params, x, y):
    """The same loss's gradient, written by hand."""
    a = x @ params["w1"] + params["b1"]
    h = np.tanh(a)
    logits = h @ params["w2"] + params["b2"]
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    dlogits = (p - y) / x.shape[0]
    dh = dlogits @ params["w2"].T
    da = dh * (1.0 - h * h)
    return {"w1": x.T @ da, "b1": da.sum(0), "w2": h.T @ dlogits, "b2": dlogits.sum(0)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 64))
    y = np.eye(10)[rng.integers(0, 10, 128)]
    params = {"w1": rng.standard_normal((64, 128)) / 8, "b1": np.zeros(128),
              "w2": rng.standard_normal((128, 10)) / 11, "b2": np.zeros(10)}
    lr = 0.1

    def duals(k):
        return {n: dual(v, rng.standard_normal((k,) + v.shape)) for n, v in params.items()}

    p1, p4 = duals(1), duals(4)
    g_ref, g_ad = numpy_grad(params, x, y), grad(loss)(params, x, y)
    assert all(np.allclose(g_ref[n], g_ad[n], rtol=1e-12, atol=1e-14) for n in params)

    def step(fn, p):
        def run():
            g = fn(p, x, y)
            return {n: p[n] - lr * g[n] for n in p}
        return run

    cases = {
        "numpy (hand-written)": step(numpy_grad, params),
        "autodiff grad": step(grad(loss), params),
        "fwd-over-rev K=1": step(grad(loss), p1),
        "fwd-over-rev K=4": step(grad(loss), p4),
    }
    jitted = jit(lambda p, x, y: (lambda g: {n: p[n] - lr * g[n] for n in p})(grad(loss)(p, x, y)))
    cases["jit grad"] = lambda: jitted(params, x, y)
    cases["jit fwd-over-rev K=1"] = lambda: jitted(p1, x, y)
    cases["jit fwd-over-rev K=4"] = lambda: jitted(p4, x, y)
    times = {name: [] for name in cases}
    for run in cases.values():  # warm up
        run()
    for _ in range(args.repeats):
        for name, run in cases.items():
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
    med = {name: float(np.median(t)) for name, t in times.items()}

    print(f"64-128-10 MLP, batch 128, float64; {args.repeats} interleaved repeats; "
          f"numpy {np.__version__}, Python {platform.python_version()}")
    print(f"{'step':<24}{'median ms':>10}")
    for name, m in med.items():
        print(f"{name:<24}{m * 1e3:>10.3f}")
    print()
    print(f"grad / hand-written numpy:      {med['autodiff grad'] / med['numpy (hand-written)']:.2f}x")
    print(f"fwd-over-rev K=1 / grad:        {med['fwd-over-rev K=1'] / med['autodiff grad']:.2f}x")
    print(f"fwd-over-rev K=4 / grad:        {med['fwd-over-rev K=4'] / med['autodiff grad']:.2f}x")
    print(f"jit K=1 / eager K=1:            {med['jit fwd-over-rev K=1'] / med['fwd-over-rev K=1']:.2f}x")
    print(f"jit K=1 / hand-written numpy grad: {med['jit fwd-over-rev K=1'] / med['numpy (hand-written)']:.2f}x")


if __name__ == "__main__":
    main()
