"""Cost of one forward-hypergradient training step over one plain step, for K = 1, 2, 4, 8.

The run: `hyperopt.models.MLP((64, 64, 10))` (tanh; params w0 (64, 64), b0,
w1 (64, 10), b1: 4 leaves) on the digits split of `hyperopt.data.digits()`
(loaded once by the parent), SGD with momentum, batch 64, float64.  The K
hyperparameters (all SGD's own, so every K runs the same model and optimizer):

  K=1  lr
  K=2  lr, momentum
  K=4  lr per parameter leaf (a pytree {w0, b0, w1, b1}: one lr per layer's
       weight and bias)
  K=8  lr per leaf and momentum per leaf

  plain  ``setup.train(h)`` then ``setup.evaluate`` (the validation loss), h
         plain floats;
  dual   ``hypergradient(setup, h, mode="forward")``: the same run with K
         tangents on every parameter and momentum buffer, then the same loss.

Both are timed as (one T-step run) / T on a Setup that has already run once
(jit records each step signature on its first call), with plain and dual runs
interleaved for every K in each round; the reported times are medians over the
rounds, the ratio is the median of the per-round dual/plain ratios.  jit on
and jit off (eager) each run in a fresh subprocess with one BLAS thread.  The
default clock is process CPU time (the machine is shared: it leaves out time
spent descheduled); wall-time ratios are printed beside it.

FLOP expectation (GEMMs only; elementwise work and Python overhead are not
counted): a dense layer's plain step is 3 GEMMs (forward X W, dW = X^T dZ,
dX = dZ W^T; the first layer skips dX, its input is data).  With K tangents a
GEMM whose two operands both carry tangents becomes 1 + 2K GEMMs; one with a
data operand (the first layer's X W and X^T dZ) becomes 1 + K.  With
u_i = 2 B n_i n_{i+1}: plain = 2 u_0 + 3 (u_1 + ...),
dual(K) = (2 + 2K) u_0 + 3 (1 + 2K)(u_1 + ...).

    python benchmarks/hypergrad_cost.py [--T 300] [--repeats 5] [--K 1 2 4 8] [--clock cpu|wall]
        [--modes jit eager] [--json out.json] [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARK = "@@RESULT@@ "
LR, MOMENTUM, BATCH, SIZES = 0.05, 0.9, 64, (64, 64, 10)
KS = (1, 2, 4, 8)
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
HPARAMS_DOC = {1: "lr", 2: "lr, momentum", 4: "lr per leaf", 8: "lr + momentum per leaf"}


from _procinfo import git_head, slope  # noqa: E402


def gemm_flops(sizes=SIZES, batch=BATCH, K=0) -> float:
    """GEMM FLOPs of one training step of an MLP with K tangents (K=0: plain)."""
    u = [2.0 * batch * m * n for m, n in zip(sizes[:-1], sizes[1:])]
    return (2 + 2 * K) * u[0] + 3 * (1 + 2 * K) * sum(u[1:])


def hparams_for(K: int, leaves) -> dict:
    """K hyperparameters of SGD (see the module docstring); leaf values differ slightly."""
    lr_tree = {k: LR * (1 + 0.05 * i) for i, k in enumerate(leaves)}
    mom_tree = {k: MOMENTUM - 0.01 * i for i, k in enumerate(leaves)}
    if K == 1:
        return {"lr": LR}
    if K == 2:
        return {"lr": LR, "momentum": MOMENTUM}
    if K == len(leaves):
        return {"lr": lr_tree}
    if K == 2 * len(leaves):
        return {"lr": lr_tree, "momentum": mom_tree}
    raise ValueError(f"K={K}: this benchmark knows K in 1, 2, {len(leaves)}, {2 * len(leaves)}")


def save_digits(path: str) -> dict:
    import numpy as np

    from hyperopt.data import digits

    split = digits()
    np.savez(path, **{f"{p}_{xy}": getattr(getattr(split, p), xy)
                      for p in ("train", "val", "test") for xy in ("x", "y")})
    return {p: len(getattr(split, p).x) for p in ("train", "val", "test")}


def worker(use_jit: bool, Ks, T: int, repeats: int, data_path: str) -> int:
    import numpy as np

    from hyperopt.data import Dataset, Split
    from hyperopt.hypergrad import Setup, hypergradient
    from hyperopt.models import MLP
    from hyperopt.optim import SGD

    d = np.load(data_path)
    split = Split(*(Dataset(d[f"{p}_x"], d[f"{p}_y"]) for p in ("train", "val", "test")), n_classes=10)
    model = MLP(SIZES)
    leaves = list(model.init())
    setups, hps = {}, {}
    for K in Ks:  # one Setup (and jit cache) per K
        setups[K] = Setup(model, split, SGD(lr=LR, momentum=MOMENTUM), steps=T, batch_size=BATCH, jit=use_jit)
        hps[K] = hparams_for(K, leaves)

    def plain(K):
        s = setups[K]
        t0, c0 = time.perf_counter(), time.process_time()
        loss, _ = s.evaluate(s.train(hps[K]))
        return (time.perf_counter() - t0, time.process_time() - c0), float(loss)

    def dual(K):
        t0, c0 = time.perf_counter(), time.process_time()
        hg = hypergradient(setups[K], hps[K], mode="forward")
        dt = (time.perf_counter() - t0, time.process_time() - c0)
        if hg.K != K:
            raise AssertionError(f"asked for K={K} hyperparameters, hypergradient has K={hg.K}")
        return dt, hg.value

    out = {"jit": use_jit, "T": T, "repeats": repeats, "K": {}}
    for K in Ks:  # warm-up: records the jit programs (plain, first dual step, later dual steps)
        _, lp = plain(K)
        _, ld = dual(K)
        if abs(lp - ld) > 1e-9 * max(1.0, abs(lp)):
            raise AssertionError(f"K={K}: the plain run's loss {lp} differs from the dual run's {ld}")
        out["K"][K] = {"plain_s": [], "dual_s": [], "plain_cpu_s": [], "dual_cpu_s": []}
    for r in range(repeats):
        order = list(Ks) if r % 2 == 0 else list(reversed(Ks))
        for K in order:
            first, second = (plain, dual) if (r + K) % 2 == 0 else (dual, plain)
            a, b = first(K)[0], second(K)[0]
            p, q = (a, b) if first is plain else (b, a)
            out["K"][K]["plain_s"].append(p[0])
            out["K"][K]["dual_s"].append(q[0])
            out["K"][K]["plain_cpu_s"].append(p[1])
            out["K"][K]["dual_cpu_s"].append(q[1])
    print(MARK + json.dumps(out), flush=True)
    return 0


def run_child(use_jit: bool, Ks, T, repeats, data_path, timeout):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update({v: "1" for v in THREAD_VARS})
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "jit" if use_jit else "eager",
           "--T", str(T), "--repeats", str(repeats), "--data", data_path, "--K", *map(str, Ks)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout} s"
    for line in r.stdout.splitlines():
        if line.startswith(MARK):
            res = json.loads(line[len(MARK):])
            res["K"] = {int(k): v for k, v in res["K"].items()}
            return res, None
    return None, f"exit {r.returncode}: {(r.stderr or r.stdout).strip()[-2000:]}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--T", type=int, default=None, help="steps per timed run (default 300; --quick: 10)")
    ap.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default 5; --quick: 1)")
    ap.add_argument("--K", type=int, nargs="+", default=None, help=f"default {list(KS)} (--quick: 1 2)")
    ap.add_argument("--modes", nargs="+", choices=("jit", "eager"), default=["jit", "eager"])
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="process CPU time (default: leaves out time descheduled on a shared machine) "
                         "or wall time; the other is recorded too")
    ap.add_argument("--quick", action="store_true", help="smoke test: T=10, 1 round, K=1, 2")
    ap.add_argument("--timeout", type=float, default=None, help="seconds allowed per worker (default: none)")
    ap.add_argument("--json", help="write the results to this file")
    ap.add_argument("--worker", choices=("jit", "eager"), help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    T = args.T or (10 if args.quick else 300)
    repeats = args.repeats or (1 if args.quick else 5)
    Ks = args.K or ([1, 2] if args.quick else list(KS))
    if args.worker:
        return worker(args.worker == "jit", Ks, T, repeats, args.data)
    if T < 1 or repeats < 1:
        ap.error("--T and --repeats must be positive")
    for K in Ks:
        if K not in KS:
            ap.error(f"K must be among {list(KS)}")

    tmp = tempfile.TemporaryDirectory()
    data_path = os.path.join(tmp.name, "digits.npz")
    sizes = save_digits(data_path)
    plain_flops = gemm_flops()
    print(f"hypergrad_cost: MLP{SIZES} tanh on digits (train {sizes['train']}), batch {BATCH}, SGD lr={LR} "
          f"momentum={MOMENTUM}, float64; T={T} steps per timed run, {repeats} interleaved rounds (medians); "
          f"clock: {args.clock}")
    print(f"Python {platform.python_version()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
          f"code at {git_head()}; each mode in a fresh process, 1 BLAS thread")
    print(f"GEMM FLOPs per plain step: {plain_flops / 1e6:.3f} MFLOP; per extra tangent: "
          f"{(gemm_flops(K=1) - plain_flops) / 1e6:.3f} MFLOP "
          f"({(gemm_flops(K=1) - plain_flops) / plain_flops:.2f}x plain)")
    head = (f"{'mode':<6}{'K':>3}  {'hyperparameters':<23}{'plain ms/step':>14}{'dual ms/step':>13}"
            f"{'dual/plain':>11}{'min..max':>13}{'FLOP ratio':>11}{'+/tangent':>10}")
    print(head)
    print("-" * len(head))
    results, failures = {}, []
    for mode in args.modes:
        res, err = run_child(mode == "jit", Ks, T, repeats, data_path, args.timeout)
        if err:
            failures.append(f"{mode}: {err}")
            print(f"{mode:<6} FAILED: {err}", flush=True)
            continue
        rows = {}
        sfx = "_cpu_s" if args.clock == "cpu" else "_s"
        for K in Ks:
            d = res["K"][K]
            ratios = [q / p for p, q in zip(d["plain" + sfx], d["dual" + sfx])]
            wall = statistics.median(q / p for p, q in zip(d["plain_s"], d["dual_s"]))
            rows[K] = {"plain_ms": statistics.median(d["plain" + sfx]) / T * 1e3,
                       "dual_ms": statistics.median(d["dual" + sfx]) / T * 1e3,
                       "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
                       "ratio_wall": wall, "flop_ratio": gemm_flops(K=K) / plain_flops, **d}
        prev = None
        for K in Ks:
            r = rows[K]
            marg = f"{(r['ratio'] - prev[1]) / (K - prev[0]):>10.2f}" if prev else f"{'':>10}"
            print(f"{mode:<6}{K:>3}  {HPARAMS_DOC[K]:<23}{r['plain_ms']:>14.3f}{r['dual_ms']:>13.3f}"
                  f"{r['ratio']:>10.2f}x{r['ratio_min']:>7.2f}..{r['ratio_max']:<4.2f}"
                  f"{r['flop_ratio']:>10.2f}x{marg}", flush=True)
            prev = (K, r["ratio"])
        if args.clock == "cpu":
            print(f"{mode:<6}by wall time, dual/plain: " + ", ".join(
                f"K={K} {rows[K]['ratio_wall']:.2f}x" for K in Ks), flush=True)
        fit = slope([(K, rows[K]["ratio"]) for K in Ks]) if len(Ks) > 1 else float("nan")
        intercept = statistics.mean(rows[K]["ratio"] for K in Ks) - fit * statistics.mean(Ks) \
            if len(Ks) > 1 else float("nan")
        print(f"{mode:<6}fit: dual/plain = {intercept:.2f} + {fit:.2f} K   "
              f"(FLOP expectation: 1.00 + {(gemm_flops(K=1) - plain_flops) / plain_flops:.2f} K)", flush=True)
        results[mode] = {"rows": rows, "fit_intercept": intercept, "fit_per_tangent": fit}
    if "jit" in results and "eager" in results:
        for K in Ks:
            j, e = results["jit"]["rows"][K], results["eager"]["rows"][K]
            print(f"K={K}: eager/jit  plain {e['plain_ms'] / j['plain_ms']:.2f}x, dual {e['dual_ms'] / j['dual_ms']:.2f}x")
    print("+/tangent: increase of dual/plain per extra tangent from the previous K; FLOP ratio: GEMM FLOPs "
          "of a K-tangent step over a plain one (the first step has no tangents yet; negligible here)")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "failures": failures, "T": T,
                                               "repeats": repeats, "Ks": Ks,
                                               "python": platform.python_version()}, indent=1))
    tmp.cleanup()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
