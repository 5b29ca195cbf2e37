"""Peak memory of a forward hypergradient against reverse mode over the unrolled run.

A 64-128-10 MLP (tanh, softmax cross-entropy) trains on scikit-learn's digits
(embedded, nothing is downloaded; loaded once by the parent) with SGD + momentum, batch 64 cycling
through the data, for T steps; the result is d(training loss after T steps)/d(lr).

  forward   jvp(train, (lr,), (1.0,)): a Python loop that calls grad at every
            step on Dual parameters; each step's tape is freed when it ends, so
            memory should not grow with T (T = 1e2, 1e3, 1e4, 1e5);
  reverse   grad(train)(lr): the whole unrolled run is one tape (reverse over
            the inner grads), so memory grows with T (T = 10, 100, 1000).

Each (mode, T) runs in a fresh subprocess that reports its peak resident set
(VmHWM from /proc/self/status, reset after imports and data loading via
/proc/self/clear_refs where the kernel allows it, so the peak is the run's own).

    python benchmarks/memory.py [--max-T 100000] [--json out.json]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORWARD_T = (100, 1_000, 10_000, 100_000)
REVERSE_T = (10, 100, 1_000)
MARK = "@@RESULT@@ "
LR, MOMENTUM, BATCH = 0.05, 0.9, 64


from _procinfo import peak_rss_kb, reset_peak, status_kb  # noqa: E402


def engine_state() -> str:
    """The git tree of autodiff/ plus any uncommitted changes under it (the engine may change between rows)."""
    def git(*a):
        return subprocess.run(["git", *a], capture_output=True, text=True, cwd=str(ROOT)).stdout.strip()
    try:
        dirty = [l.strip() for l in git("status", "--porcelain", "autodiff").split("\n") if l.strip()]
        return f"autodiff/ tree {git('rev-parse', '--short', 'HEAD:autodiff') or 'unknown'}" + (
            f" + uncommitted: {', '.join(dirty)}" if dirty else "")
    except OSError:
        return "unknown"


def save_digits(path: str) -> None:
    """Load digits once in the parent (importing scikit-learn takes seconds) for every worker."""
    import numpy as np
    from sklearn.datasets import load_digits

    d = load_digits()
    np.savez(path, data=d.data, target=d.target)


def worker(mode: str, T: int, data_path: str) -> int:
    engine = engine_state()
    import numpy as np

    from autodiff import grad, jvp
    from autodiff.ops import logsumexp

    d = np.load(data_path)
    n = (len(d["data"]) // BATCH) * BATCH
    x = (d["data"][:n] / 16.0).astype(np.float64)
    y = np.eye(10)[d["target"][:n]]
    batches = [(x[i:i + BATCH], y[i:i + BATCH]) for i in range(0, n, BATCH)]
    rng = np.random.default_rng(0)
    params0 = [rng.standard_normal((64, 128)) / 8.0, np.zeros(128),
               rng.standard_normal((128, 10)) / np.sqrt(128), np.zeros(10)]

    def loss(params, x, y):
        h = np.tanh(x @ params[0] + params[1])
        logits = h @ params[2] + params[3]
        return np.mean(logsumexp(logits, axis=1) - np.sum(logits * y, axis=1))

    def train(lr, steps=T):
        params, vel = params0, [np.zeros_like(p) for p in params0]
        for t in range(steps):
            xb, yb = batches[t % len(batches)]
            g = grad(loss)(params, xb, yb)
            vel = [MOMENTUM * v + gi for v, gi in zip(vel, g)]
            params = [p - lr * v for p, v in zip(params, vel)]
        return loss(params, x, y)

    rss_setup = status_kb("VmRSS")
    was_reset = reset_peak()
    t0 = time.perf_counter()
    if mode == "forward":
        value, dval = jvp(train, (LR,), (1.0,))
    else:
        value = train(LR)
        dval = grad(train)(LR)
    seconds = time.perf_counter() - t0
    peak = peak_rss_kb()
    out = {"mode": mode, "T": T, "peak_kb": peak, "setup_kb": rss_setup, "peak_reset": was_reset,
           "seconds": seconds, "loss": float(value), "dloss_dlr": float(dval), "engine": engine}
    if T <= 1000:  # a central difference through two plain runs
        eps = 1e-6
        out["fd"] = float((train(LR + eps) - train(LR - eps)) / (2 * eps))
    print(MARK + json.dumps(out))
    return 0


def run_child(mode: str, T: int, data_path: str):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", mode, "--T", str(T),
                        "--data", data_path],
                       capture_output=True, text=True, env=env, cwd=str(ROOT))
    for line in r.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):]), None
    return None, f"exit {r.returncode}: {(r.stderr or r.stdout).strip()[-2000:]}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-T", type=int, default=max(FORWARD_T), help="skip runs longer than this (default 100000)")
    ap.add_argument("--json", help="write the results to this file")
    ap.add_argument("--worker", choices=("forward", "reverse"), help=argparse.SUPPRESS)
    ap.add_argument("--T", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.T, args.data)
    if args.max_T < 1:
        ap.error("--max-T must be positive")

    head = engine_state()
    print(f"memory: 64-128-10 MLP on digits, batch {BATCH}, SGD lr={LR} momentum={MOMENTUM}, float64; "
          f"Python {platform.python_version()}; engine at {head}; one fresh process per row")
    print(f"{'T':>8}  {'mode':<9}{'peak RSS MB':>12}{'setup MB':>10}{'growth MB':>11}"
          f"{'time s':>9}{'ms/step':>9}  d loss/d lr (central difference)")
    rows, failures = [], []
    plan = [("forward", T) for T in FORWARD_T if T <= args.max_T] + \
           [("reverse", T) for T in REVERSE_T if T <= args.max_T]
    tmp = tempfile.TemporaryDirectory()
    data_path = os.path.join(tmp.name, "digits.npz")
    save_digits(data_path)
    for mode, T in plan:
        res, err = run_child(mode, T, data_path)
        if err:
            failures.append(f"{mode} T={T}: {err}")
            print(f"{T:>8}  {mode:<9} FAILED: {err}", file=sys.stderr)
            continue
        rows.append(res)
        peak, setup = res["peak_kb"] / 1024, res["setup_kb"] / 1024
        fd = f" ({res['fd']:.6g})" if "fd" in res else ""
        print(f"{T:>8}  {mode:<9}{peak:>12.1f}{setup:>10.1f}{peak - setup:>11.1f}{res['seconds']:>9.2f}"
              f"{res['seconds'] / T * 1e3:>9.3f}  {res['dloss_dlr']:.6g}{fd}", flush=True)
    changed = sorted({r["engine"] for r in rows} - {head})
    if changed:
        print("WARNING: the engine changed during this run; some rows ran at: " + "; ".join(changed))
    fwd = [r for r in rows if r["mode"] == "forward"]
    if len(fwd) > 1:
        lo, hi = min(r["peak_kb"] for r in fwd), max(r["peak_kb"] for r in fwd)
        g_lo, g_hi = (min(r["peak_kb"] - r["setup_kb"] for r in fwd) / 1024,
                      max(r["peak_kb"] - r["setup_kb"] for r in fwd) / 1024)
        print(f"forward: peak RSS from T={fwd[0]['T']} to T={fwd[-1]['T']} varies by {(hi - lo) / lo:.1%} "
              f"(target: flat within 10%); growth over setup {g_lo:.1f} to {g_hi:.1f} MB")
    rev = [r for r in rows if r["mode"] == "reverse"]
    if len(rev) > 1:
        per = (rev[-1]["peak_kb"] - rev[0]["peak_kb"]) / 1024 / (rev[-1]["T"] - rev[0]["T"])
        print(f"reverse: peak RSS grows by about {per * 1e3:.0f} kB per step "
              f"(T={rev[0]['T']} -> {rev[-1]['T']})")
    if not all(r["peak_reset"] for r in rows):
        print("note: /proc/self/clear_refs was not writable; peaks include the imports' high-water mark")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "failures": failures}, indent=1))
    tmp.cleanup()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
