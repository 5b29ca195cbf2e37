"""What the first hypergradient of a fresh process costs with jit's compiled steps.

A forward hypergradient d(loss after T steps)/d(lr) of the 64-128-10 MLP
(user code as in benchmarks/step_vs_jax.py, each step `jit`-ed with the numba
backend, K=1) runs three times in a fresh process: the first run records and
compiles (or loads) the step programs (the first step's own program, which
runs once per hypergradient, compiles or loads in the second), the third is
warm.  Three cases, each
in its own process:

  cold cache   an empty $AUTODIFF_CACHE_DIR: the first run compiles
  warm cache   the directory the previous case filled: the first run loads
  python       jit(backend="python"): no numba at all (the reference)

It prints, per case, the first run, the warm run and the difference (what a
fresh process pays), and the seconds spent importing numba.

    python benchmarks/jit_cold_start.py [--T 200] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MARK = "@@RESULT@@ "


def worker(backend: str, T: int) -> dict:
    t_start = time.perf_counter()
    import numpy as np
    sys.path.insert(0, HERE)
    from step_vs_jax import problem
    from _workloads import autodiff_loss as loss
    from autodiff import grad, jit, jvp
    params, x, y = problem("small", "float64")

    def step(lr, params, vel, x, y):
        g = grad(loss)(params, x, y)
        vel = [0.9 * v + gi for v, gi in zip(vel, g)]
        return [p - lr * v for p, v in zip(params, vel)], vel

    jstep = jit(step, backend=backend)

    def hypergradient():
        def train(lr):
            p, v = params, [np.zeros_like(a) for a in params]
            for _ in range(T):
                p, v = jstep(lr, p, v, x, y)
            return loss(p, x, y)
        return jvp(train, (np.float64(0.05),), (1.0,))

    t0 = time.perf_counter()
    first = hypergradient()
    t1 = time.perf_counter()
    hypergradient()          # (the first step's program, run once per hypergradient, compiles here)
    t2 = time.perf_counter()
    second = hypergradient()
    t3 = time.perf_counter()
    assert np.allclose(first[1], second[1], rtol=1e-12)
    return {"first": t1 - t0, "second": t2 - t1, "warm": t3 - t2, "setup": t0 - t_start,
            "numba_loaded": "numba" in sys.modules}


def run(backend, T, cache):
    env = dict(os.environ, AUTODIFF_CACHE_DIR=cache,
               PYTHONPATH=os.path.dirname(HERE) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, __file__, "--worker", backend, "--T", str(T)], env=env,
                       capture_output=True, text=True)
    for line in r.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    raise RuntimeError(r.stderr[-3000:])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--T", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        print(MARK + json.dumps(worker(a.worker, a.T)))
        return 0
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import numba"], check=True)
    numba_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import numpy"], check=True)
    numba_import -= time.perf_counter() - t0
    print(f"jit_cold_start: T={a.T}, 64-128-10 MLP, K=1; importing numba costs about {numba_import:.2f} s "
          f"(a fresh process importing numba minus one importing numpy)")
    print(f"{'case':12} {'first s':>8} {'second s':>8} {'warm s':>8} {'extra s':>8}  (extra: first - warm)")
    for rep in range(a.repeats):
        with tempfile.TemporaryDirectory() as cache:
            for name, backend in (("cold cache", "numba"), ("warm cache", "numba"), ("python", "python")):
                r = run(backend, a.T, cache)
                print(f"{name:12} {r['first']:8.3f} {r['second']:8.3f} {r['warm']:8.3f} {r['first'] - r['warm']:8.3f}",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
