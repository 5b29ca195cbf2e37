"""The main job's step against JAX: a forward hypergradient through a training loop.

The user's code is plain numpy: an MLP with tanh hidden layers and softmax
cross-entropy (batch 128, random data with a fixed seed), trained by SGD with
momentum and weight decay, T steps, each step calling `grad`.  The
hyperparameters are h = (lr for weights, lr for biases, momentum, weight decay):

  K=0  the plain training run (h plain numbers)
  K=1  d(loss after T steps)/d(lr): one tangent direction, (1, 1, 0, 0), by `jvp`
  K=4  the full Jacobian in h: 4 directions in one pass, by `jacfwd`

Ours runs the loop in Python with each step wrapped in `autodiff.jit` (numba
compiled, the default after a few calls; "replay" is the Python replay,
``jit(step, backend="python")``) or not wrapped at all ("eager").  JAX runs
``jit(jvp(scan))`` (K=4: ``jit(vmap(jvp(scan)))``), one compiled program for the
whole loop.  Each library runs in its own process with its default threads;
every figure is the median of --repeats whole runs, after a warm-up run (that
compiles), reported per training step; JAX and ours alternate for --rounds
processes each, and a ratio is the median over rounds of ours / JAX (the
machine's speed drifts between processes).  The check column is the largest
relative difference of our derivative from JAX's.

    python benchmarks/step_vs_jax.py [--model small|large|both] [--dtype float64|float32|both]
        [--K 0 1 4] [--modes jit replay eager] [--T 300] [--T-large 20] [--repeats 3] [--rounds 2]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
MODELS = {"small": (64, 128, 10), "large": (784, 512, 512, 10)}
BATCH, SEED = 128, 0
H0 = (0.05, 0.1, 0.9, 1e-4)   # lr weights, lr biases, momentum, weight decay
DIRECTIONS = {1: np.array([[1.0, 1.0, 0.0, 0.0]]), 4: np.eye(4)}
MARK = "@@RESULT@@ "


def problem(model, dtype):
    sizes = MODELS[model]
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((BATCH, sizes[0])).astype(dtype)
    y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], BATCH)]
    params = []
    for m, n in zip(sizes[:-1], sizes[1:]):
        params += [(rng.standard_normal((m, n)) / np.sqrt(m)).astype(dtype),
                   (0.1 * rng.standard_normal(n)).astype(dtype)]
    return params, x, y


# -- ours: the user's numpy code ------------------------------------------------------------------
def ours(model, dtype, K, mode, T, repeats):
    from autodiff import grad, jacfwd, jit, jvp
    from _workloads import autodiff_loss as loss   # the MLP's loss, as compare_peers.py runs it
    params, x, y = problem(model, dtype)

    def step(h, params, vel, x, y):
        lr_w, lr_b, mu, wd = h[0], h[1], h[2], h[3]
        g = grad(loss)(params, x, y)
        vel = [mu * v + gi + wd * p for v, gi, p in zip(vel, g, params)]
        return [p - (lr_w if i % 2 == 0 else lr_b) * v for i, (p, v) in enumerate(zip(params, vel))], vel

    if mode != "eager":
        step = jit(step, backend="numba" if mode == "jit" else "python")

    def train(h, steps):
        p, v = params, [np.zeros_like(a) for a in params]
        for _ in range(steps):
            p, v = step(h, p, v, x, y)
        return loss(p, x, y)

    h0 = np.array(H0, dtype=dtype)
    if K == 0:
        run = lambda steps: train(h0, steps)
    elif K == 1:
        run = lambda steps: jvp(lambda h: train(h, steps), (h0,), (DIRECTIONS[1][0].astype(dtype),))
    else:
        run = lambda steps: jacfwd(lambda h: train(h, steps))(h0)
    for _ in range(2):
        run(3)       # records (and compiles) every step program: the first step's and the others'
    out = run(T)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(T)
        times.append((time.perf_counter() - t0) / T)
    return times, _deriv(out, K)


def _deriv(out, K):
    if K == 0:
        return [float(out)]
    if K == 1:
        return [float(out[1])]
    return [float(v) for v in np.ravel(out)]


# -- JAX: one compiled program for the loop -----------------------------------------------------
def jax_run(model, dtype, K, T, repeats):
    threads = os.environ.get("BENCH_THREADS")
    if threads:
        os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={threads}")
    import jax
    jax.config.update("jax_enable_x64", dtype == "float64")
    import jax.numpy as jnp
    params, x, y = problem(model, dtype)
    params = [jnp.asarray(p) for p in params]
    x, y = jnp.asarray(x), jnp.asarray(y)

    def loss(params):
        h = x
        for i in range(0, len(params) - 2, 2):
            h = jnp.tanh(h @ params[i] + params[i + 1])
        logits = h @ params[-2] + params[-1]
        return jnp.mean(jax.nn.logsumexp(logits, axis=1) - jnp.sum(logits * y, axis=1))

    def train(h, steps):
        lr_w, lr_b, mu, wd = h[0], h[1], h[2], h[3]

        def body(carry, _):
            p, v = carry
            g = jax.grad(loss)(p)
            v = [mu * vi + gi + wd * pi for vi, gi, pi in zip(v, g, p)]
            p = [pi - (lr_w if i % 2 == 0 else lr_b) * vi for i, (pi, vi) in enumerate(zip(p, v))]
            return (p, v), None
        (p, _), _ = jax.lax.scan(body, (params, [jnp.zeros_like(a) for a in params]), None, length=steps)
        return loss(p)

    h0 = jnp.asarray(np.array(H0, dtype=dtype))
    if K == 0:
        f = jax.jit(lambda h: train(h, T))
    elif K == 1:
        d = jnp.asarray(DIRECTIONS[1][0].astype(dtype))
        f = jax.jit(lambda h: jax.jvp(lambda hh: train(hh, T), (h,), (d,)))
    else:
        f = jax.jit(lambda h: jax.vmap(lambda d: jax.jvp(lambda hh: train(hh, T), (h,), (d,))[1])(
            jnp.asarray(DIRECTIONS[4].astype(dtype))))
    out = jax.block_until_ready(f(h0))   # compiles
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f(h0))
        times.append((time.perf_counter() - t0) / T)
    if K == 0:
        d = [float(out)]
    elif K == 1:
        d = [float(out[1])]
    else:
        d = [float(v) for v in np.ravel(np.asarray(out))]
    return times, d


# -- the parent --------------------------------------------------------------------------------------
def child(lib, model, dtype, K, mode, T, repeats):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", lib, "--model", model, "--dtype", dtype,
           "--K", str(K), "--modes", mode, "--T", str(T), "--repeats", str(repeats)]
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in r.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    raise RuntimeError(f"{lib} {model} {dtype} K={K} {mode} failed:\n{r.stderr[-3000:]}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=("small", "large", "both"), default="both")
    ap.add_argument("--dtype", choices=("float64", "float32", "both"), default="both")
    ap.add_argument("--K", type=int, nargs="+", default=[0, 1, 4])
    ap.add_argument("--modes", nargs="+", default=["jit", "replay", "eager"])
    ap.add_argument("--T", type=int, default=300, help="training steps, small model (default 300)")
    ap.add_argument("--T-large", type=int, default=20, help="training steps, large model (default 20)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per process (median)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="processes per library, alternating JAX and ours; ratios are medians over rounds")
    ap.add_argument("--json")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        fn = jax_run if a.worker == "jax" else None
        if fn:
            times, d = jax_run(a.model, a.dtype, a.K[0], a.T, a.repeats)
        else:
            times, d = ours(a.model, a.dtype, a.K[0], a.modes[0], a.T, a.repeats)
        print(MARK + json.dumps({"times": times, "deriv": d}))
        return 0
    import platform
    print(f"step_vs_jax: Python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}; medians of {a.repeats} runs per figure, ms per training step")
    models = ("small", "large") if a.model == "both" else (a.model,)
    dtypes = ("float64", "float32") if a.dtype == "both" else (a.dtype,)
    rows = []
    print(f"{'model':8} {'dtype':8} {'K':>2} {'JAX ms':>9} " + " ".join(f"{m + ' ms':>10} {'/JAX':>6}" for m in a.modes)
          + f" {'check':>9}")
    for model in models:
        T = a.T if model == "small" else a.T_large
        for dtype in dtypes:
            for K in a.K:
                jms, ours_ms, worst = [], {m: [] for m in a.modes}, 0.0
                for _ in range(a.rounds):   # JAX and ours alternate: drift hits both
                    ref = child("jax", model, dtype, K, "jit", T, a.repeats)
                    jms.append(float(np.median(ref["times"])) * 1e3)
                    for mode in a.modes:
                        r = child("autodiff", model, dtype, K, mode, T, a.repeats)
                        ours_ms[mode].append(float(np.median(r["times"])) * 1e3)
                        d, e = np.array(r["deriv"]), np.array(ref["deriv"])
                        worst = max(worst, float(np.max(np.abs(d - e) / np.maximum(np.abs(e), 1e-30))))
                jm = float(np.median(jms))
                cells, row = [], {"model": model, "dtype": dtype, "K": K, "T": T, "jax_ms": jm, "rounds": a.rounds}
                for mode in a.modes:
                    ms = float(np.median(ours_ms[mode]))
                    ratio = float(np.median([o / j for o, j in zip(ours_ms[mode], jms)]))
                    row[f"{mode}_ms"], row[f"{mode}_per_jax"] = ms, ratio
                    row[f"{mode}_per_jax_rounds"] = [o / j for o, j in zip(ours_ms[mode], jms)]
                    cells.append(f"{ms:10.3f} {ratio:6.2f}")
                row["check"] = worst
                rows.append(row)
                print(f"{model:8} {dtype:8} {K:>2} {jm:9.3f} " + " ".join(cells) + f" {worst:9.1e}", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    if a.rounds > 1:
        print("ratio per round (ours / JAX), to read the spread:")
        for row in rows:
            print(f"  {row['model']:6} {row['dtype']:8} K={row['K']}: " + "; ".join(
                f"{m} " + " ".join(f"{r:.2f}" for r in row[f"{m}_per_jax_rounds"]) for m in a.modes))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
