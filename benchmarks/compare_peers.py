"""This engine against hand-written numpy, JAX and PyTorch (torch.func), per FLOP.

Workloads (see benchmarks/_workloads.py), on an MLP with tanh hidden layers and
softmax cross-entropy, batch 128, random data with a fixed seed:

  plain   a training step: grad of the loss + SGD-with-momentum update
  k1      the same step with params and momentum buffer carrying 1 tangent
          (forward-over-reverse; JAX: jit(jvp(step)); torch: func.jvp(step))
  k4      4 tangent directions in one batched pass (JAX/torch: vmap of jvp)
  hyper   d(loss after T steps)/d(lr) by forward mode over the unrolled loop,
          reported per step (JAX: jit(jvp(fori_loop)); the others: a Python loop)

Each library runs in its own subprocess (their thread pools slow each other
when mixed); the parent measures the GEMM peak (a large square numpy matmul of
the same dtype) before and after, so every row shows its fraction of the FLOP
floor = (exact GEMM FLOPs of the workload) / peak.  Libraries that are not
installed are skipped, and the output says so.

    python benchmarks/compare_peers.py [--model small|large|both] [--dtype float64|float32|both]
        [--repeats 30] [--libs autodiff,numpy,jax,torch] [--T 1000] [--json out.json]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _thread_env_from_argv(argv):
    """--threads N must act before numpy (and BLAS) loads, here and in the workers."""
    for i, a in enumerate(argv):
        n = a.split("=", 1)[1] if a.startswith("--threads=") else (argv[i + 1] if a == "--threads" and i + 1 < len(argv) else None)
        if n is not None and n.isdigit() and int(n) > 0:
            for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BENCH_THREADS"):
                os.environ[var] = n   # BENCH_THREADS: _workloads.run_jax sizes XLA's pool by it


_thread_env_from_argv(sys.argv)
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import _workloads as W  # noqa: E402

LIBS = ("autodiff", "autodiff-jit", "numpy", "jax", "torch")
WORKLOADS = ("plain", "k1", "k4", "hyper")
MARK = "@@RESULT@@ "
LABEL = {"plain": "plain step", "k1": "fwd-over-rev K=1", "k4": "fwd-over-rev K=4", "hyper": "hypergrad / step"}


# -- the worker: one library, one model, one dtype ----------------------------------------
def worker(args) -> int:
    prob = W.make_problem(args.model, args.dtype)
    cfg = {"only": tuple(args.workloads.split(",")), "repeats": args.repeats, "T": args.T,
           "hyper_repeats": args.hyper_repeats, "check": bool(args.check_out)}
    engine = git_state(with_head=False) if args.worker == "autodiff" else None   # the engine may change between runs
    times, check = W.RUNNERS[args.worker](prob, cfg)
    if args.check_out:
        np.savez(args.check_out, **check)
    print(MARK + json.dumps({"lib": args.worker, "version": W.library_version(args.worker), "times": times,
                             "engine": engine}))
    return 0


# -- the parent ------------------------------------------------------------------------------
def gemm_peak(dtype: str, n: int, repeats: int) -> dict:
    """GFLOP/s of an n x n matmul by wall and by CPU time, one sample per repeat (after a warm-up)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n)).astype(dtype), rng.standard_normal((n, n)).astype(dtype)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)
    samples = {"wall": [], "cpu": []}
    for _ in range(repeats):
        wall, cpu = W._timed(lambda: np.matmul(a, b, out=out))
        samples["wall"].append(2.0 * n ** 3 / wall / 1e9)
        samples["cpu"].append(2.0 * n ** 3 / max(cpu, 1e-9) / 1e9)
    return samples


def run_child(lib, model, dtype, args, check_out, workloads):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", lib, "--model", model,
           "--dtype", dtype, "--repeats", str(args.repeats), "--T", str(args.T_for(model)),
           "--hyper-repeats", str(args.hyper_repeats), "--workloads", ",".join(workloads)]
    if check_out:
        cmd += ["--check-out", check_out]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(ROOT))
    for line in r.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):]), None
    return None, f"exit {r.returncode}: {(r.stderr or r.stdout).strip()[-2000:]}"


def compare_checks(ref, other) -> dict:
    """max |other - ref| and max |ref| for each output group present in both."""
    out = {}
    for group in ("plain_p", "k1_p", "k1_t", "k4_t", "hyper_val", "hyper_d"):
        keys = [k for k in ref.files if k.startswith(group) and k in other.files]
        if not keys:
            continue
        diff = max(float(np.max(np.abs(ref[k].astype(np.float64) - other[k].astype(np.float64)))) for k in keys)
        scale = max(float(np.max(np.abs(ref[k].astype(np.float64)))) for k in keys)
        out[group] = (diff, scale)
    return out


def flops_of(workload, sizes, T):
    if workload == "plain":
        return W.step_flops(sizes, W.BATCH, 0)
    if workload == "k1":
        return W.step_flops(sizes, W.BATCH, 1)
    if workload == "k4":
        return W.step_flops(sizes, W.BATCH, 4)
    return W.hyper_flops(sizes, T, W.BATCH) / T


def git_state(with_head: bool = True) -> str:
    """The engine's identity: the git tree of autodiff/ plus any uncommitted changes under it
    (commits elsewhere in the repository do not change it)."""
    def git(*a):
        return subprocess.run(["git", *a], capture_output=True, text=True, cwd=str(ROOT)).stdout.strip()
    try:
        tree = git("rev-parse", "--short", "HEAD:autodiff")
        dirty = [l.strip() for l in git("status", "--porcelain", "autodiff").split("\n") if l.strip()]
        head = f" (HEAD {git('rev-parse', '--short', 'HEAD')})" if with_head else ""
        return (f"autodiff/ tree {tree}" + head +
                (f" + uncommitted engine changes: {', '.join(dirty)}" if dirty else ", no uncommitted changes"))
    except OSError:
        return "unknown"


def fmt_ratio(x):
    return "" if x is None or not np.isfinite(x) else f"{x:.2f}x"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=("small", "large", "both"), default="both")
    ap.add_argument("--dtype", choices=("float64", "float32", "both"), default="both")
    ap.add_argument("--repeats", type=int, default=30, help="interleaved repeats of each step (default 30)")
    ap.add_argument("--libs", default=",".join(LIBS), help="comma-separated subset of " + ",".join(LIBS))
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help="subset of " + ",".join(WORKLOADS))
    ap.add_argument("--T", type=int, default=1000, help="training steps of the hypergradient (default 1000; 0 skips it)")
    ap.add_argument("--T-large", type=int, default=None, help="T for the large model (default: --T)")
    ap.add_argument("--hyper-repeats", type=int, default=3, help="timed hypergradient runs (default 3)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every library's subprocess this many times, in rotating order, pooling samples")
    ap.add_argument("--peak-size", type=int, default=2048, help="n of the n x n GEMM-peak matmul")
    ap.add_argument("--peak-repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None,
                    help="compute threads in every process (OPENBLAS/OMP/MKL_NUM_THREADS; JAX: its pools "
                         "are created under a CPU affinity of this many cores); default: each library's own")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="what the table's times, floor fractions and ratios use: wall time, or the process's CPU "
                         "time (robust on a shared machine; meaningful with --threads 1); both are recorded")
    ap.add_argument("--no-check", action="store_true", help="skip the cross-library correctness check")
    ap.add_argument("--json", help="write all results to this file")
    ap.add_argument("--worker", choices=LIBS, help=argparse.SUPPRESS)
    ap.add_argument("--check-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.hyper_repeats < 1 or args.T < 0 or args.rounds < 1:
        ap.error("--repeats, --hyper-repeats and --rounds must be positive, --T non-negative")
    if args.clock == "cpu" and args.threads != 1 and not args.worker:
        print("note: --clock cpu sums the CPU time of all threads; it reads as single-core time only "
              "with --threads 1")
    if args.worker:
        if args.model == "both" or args.dtype == "both":
            ap.error("a worker runs one model and one dtype")
        return worker(args)

    args.T_for = lambda m: args.T_large if (m == "large" and args.T_large is not None) else args.T
    libs = [l.strip() for l in args.libs.split(",") if l.strip()]
    bad = [l for l in libs if l not in LIBS]
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    badw = [w for w in workloads if w not in WORKLOADS]
    if bad or badw or not libs:
        ap.error(f"unknown libs {bad} or workloads {badw}")
    if args.T == 0 and "hyper" in workloads:
        workloads.remove("hyper")
    missing = [l for l in libs if importlib.util.find_spec(W.IMPORT_NAMES[l]) is None]
    for l in missing:
        print(f"skipping {l}: not installed")
    libs = [l for l in libs if l not in missing]
    models = ("small", "large") if args.model == "both" else (args.model,)
    dtypes = ("float64", "float32") if args.dtype == "both" else (args.dtype,)

    print(f"compare_peers: Python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}; engine at {git_state()}")
    print("threads: " + (f"{args.threads} per process (OPENBLAS/OMP/MKL_NUM_THREADS; XLA's pool sized by "
                         "CPU affinity at start-up)" if args.threads else "each library's default"))
    print(f"repeats {args.repeats} (interleaved, medians), hypergradient T={args.T}"
          + (f" (large model: T={args.T_large})" if args.T_large is not None else "")
          + f" x {args.hyper_repeats} runs, rounds {args.rounds}; each library in its own subprocess; "
          f"clock: {args.clock}{' (process CPU time)' if args.clock == 'cpu' else ''}")
    results = {"argv": sys.argv[1:] if argv is None else list(argv), "python": platform.python_version(),
               "numpy": np.__version__, "engine": git_state(), "threads": args.threads, "clock": args.clock, "blocks": []}
    failures = []
    versions = {}
    engines = set()
    engine0 = git_state(with_head=False)
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            sizes = W.MODELS[model]
            for dtype in dtypes:
                load0 = os.getloadavg()[0]
                before = gemm_peak(dtype, args.peak_size, args.peak_repeats)
                samples = {}   # (lib, workload) -> list of seconds
                checks = {}
                for rnd in range(args.rounds):
                    order = libs[rnd % len(libs):] + libs[:rnd % len(libs)]
                    for lib in order:
                        ck = os.path.join(tmp, f"{lib}_{model}_{dtype}.npz") if (rnd == 0 and not args.no_check) else None
                        res, err = run_child(lib, model, dtype, args, ck, workloads)
                        if err:
                            failures.append(f"{lib} {model} {dtype}: {err}")
                            print(f"!! {lib} failed on {model} {dtype}: {err}", file=sys.stderr)
                            continue
                        versions[lib] = res["version"]
                        if res.get("engine") and res["engine"] != engine0:
                            engines.add(res["engine"])
                            print(f"!! the engine changed during this run: {lib} {model} {dtype} ran at "
                                  f"{res['engine']}", file=sys.stderr)
                        for w, t in res["times"].items():
                            for clock in ("wall", "cpu"):
                                samples.setdefault((lib, w, clock), []).extend(t[clock])
                        if ck:
                            checks[lib] = ck
                after = gemm_peak(dtype, args.peak_size, args.peak_repeats)
                block = report_block(model, dtype, sizes, args.T_for(model), before, after,
                                     samples, libs, workloads, checks, (load0, os.getloadavg()[0]), args.clock)
                results["blocks"].append(block)
    results["versions"] = versions
    results["engine_changed_to"] = sorted(engines)
    if engines:
        print("\nWARNING: the engine changed during this run; autodiff rows ran at: " + "; ".join(sorted(engines)))
    results["failures"] = failures
    print_targets(results["blocks"])
    print("library versions: " + ", ".join(f"{k} {v}" for k, v in versions.items())
          + f"; load average at the end {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
        print(f"wrote {args.json}")
    if failures:
        print(f"{len(failures)} library run(s) failed", file=sys.stderr)
        return 1
    return 0


def report_block(model, dtype, sizes, T, before, after, samples, libs, workloads, checks, loads, clock):
    name = "-".join(map(str, sizes))
    other = "cpu" if clock == "wall" else "wall"
    peak = float(np.median(before[clock] + after[clock]))
    print()
    print(f"== {model} MLP {name}, batch {W.BATCH}, {dtype}: GEMM peak {peak:.1f} GFLOP/s by {clock} time "
          f"(median of {len(before[clock]) + len(after[clock])} square matmuls; before "
          f"{np.median(before[clock]):.1f}, after {np.median(after[clock]):.1f}; by {other} time "
          f"{np.median(before[other] + after[other]):.1f}); load average {loads[0]:.2f} -> {loads[1]:.2f} ==")
    med = {k: float(np.median(v)) for k, v in samples.items()}
    plain_flops = flops_of("plain", sizes, T)
    rows = []
    print(f"{'workload':<20}{'lib':<17}{'median ms':>10}{f'({other})':>9}{'floor ms':>10}{'of floor':>10}"
          f"{'/plain':>9}{'/jax':>8}")
    for w in workloads:
        fl = flops_of(w, sizes, T)
        floor = fl / (peak * 1e9)
        head = f"{LABEL[w]}" + (f" (T={T})" if w == "hyper" else "")
        print(f"-- {head}: {fl / 1e6:.2f} MFLOP of GEMMs, {fl / plain_flops:.2f}x the plain step's; "
              f"floor {floor * 1e3:.3f} ms")
        row_libs = list(libs) + (["gemm-only"] if ("numpy", "gemm_" + w, clock) in med else [])
        for lib in row_libs:
            lw = ("numpy", "gemm_" + w) if lib == "gemm-only" else (lib, w)
            if lw + (clock,) not in med:
                continue
            t, t_other = med[lw + (clock,)], med[lw + (other,)]
            pkey = (("numpy", "gemm_plain") if lib == "gemm-only" else (lib, "plain")) + (clock,)
            rel_plain = t / med[pkey] if pkey in med else None
            jkey = ("jax", w, clock)
            rel_jax = t / med[jkey] if jkey in med and lib != "gemm-only" else None
            row = {"model": model, "dtype": dtype, "workload": w, "lib": lib, "median_ms": t * 1e3,
                   "median_wall_ms": med[lw + ("wall",)] * 1e3, "median_cpu_ms": med[lw + ("cpu",)] * 1e3,
                   "n": len(samples[lw + (clock,)]), "gemm_flops": fl, "floor_ms": floor * 1e3,
                   "floor_fraction": floor / t, "per_plain": rel_plain, "per_jax": rel_jax,
                   "flop_ratio": fl / plain_flops}
            rows.append(row)
            label = "numpy GEMMs only" if lib == "gemm-only" else lib
            print(f"{'':<20}{label:<17}{t * 1e3:>10.3f}{t_other * 1e3:>9.3f}{floor * 1e3:>10.3f}{floor / t:>10.1%}"
                  f"{fmt_ratio(rel_plain):>9}{fmt_ratio(rel_jax):>8}")
    check_rows = {}
    if "numpy" in checks:
        ref = np.load(checks["numpy"])
        refs = [("numpy", ref)] + ([("jax", np.load(checks["jax"]))] if "jax" in checks else [])
        print("check (max |difference| / max |reference|) of the updated params, their K=1 and K=4 tangents, "
              "and the hypergradient:")
        # (relative, absolute) tolerances: one step's outputs, and the hypergradient after T steps
        f32 = dtype == "float32"
        tols = {"step": (1e-4, 0.0) if f32 else (1e-9, 0.0), "hyper": (1e-2, 1e-6) if f32 else (1e-6, 1e-12)}
        for lib, path in checks.items():
            for rname, r in refs:
                if lib == rname or (lib == "numpy" and rname == "jax"):
                    continue
                c = compare_checks(r, np.load(path))
                check_rows[f"{lib} vs {rname}"] = c
                txt = ", ".join(f"{g} {d:.1e}/{s:.1e}" for g, (d, s) in c.items())
                bad = [g for g, (d, s) in c.items()
                       if d > tols["hyper" if g.startswith("hyper") else "step"][0] * s
                       + tols["hyper" if g.startswith("hyper") else "step"][1]]
                flag = "DIFFERS" if bad else "ok"
                print(f"  {lib:>8} vs {rname:<6} {flag:<8}{txt}")
    return {"model": model, "dtype": dtype, "sizes": list(sizes), "T": T, "clock": clock, "peak_gflops": peak,
            "load": loads, "peak_before": before, "peak_after": after, "rows": rows, "checks": check_rows,
            "samples_ms": {f"{l}/{w}/{c}": [s * 1e3 for s in v] for (l, w, c), v in samples.items()}}


def print_targets(blocks):
    """The issue's speed targets, for the autodiff rows."""
    def row(b, lib, w):
        return next((r for r in b["rows"] if r["lib"] == lib and r["workload"] == w), None)

    lines = []
    for b in blocks:
        tag = f"{b['model']} {b['dtype']}"
        k1, k4, pl = row(b, "autodiff", "k1"), row(b, "autodiff", "k4"), row(b, "autodiff", "plain")
        if k1 and b["model"] == "large":
            ok = k1["floor_fraction"] >= 0.8
            lines.append(f"(1) {tag}: K=1 step at {k1['floor_fraction']:.1%} of the FLOP floor (target >= 80%): "
                         f"{'met' if ok else 'missed'}")
            if k1["per_jax"] is not None:
                lines.append(f"(1) {tag}: K=1 step {k1['per_jax']:.2f}x JAX's jitted jvp-of-grad (target <= 1.00x): "
                             f"{'met' if k1['per_jax'] <= 1.0 else 'missed'}")
        if k1 and b["model"] == "small" and k1["per_jax"] is not None:
            lines.append(f"(2) {tag}: K=1 step {k1['per_jax']:.2f}x JAX's jit time (target <= 2.00x): "
                         f"{'met' if k1['per_jax'] <= 2.0 else 'missed'}")
        if k4 and pl:
            ratio, fr = k4["median_ms"] / pl["median_ms"], k4["flop_ratio"]
            lines.append(f"(3) {tag}: K=4/plain time ratio {ratio:.2f}x vs FLOP ratio {fr:.2f}x: "
                         f"{ratio / fr:.2f}x of it (target <= 1.10x): {'met' if ratio / fr <= 1.1 else 'missed'}")
    if lines:
        print()
        print("targets (issue 3), autodiff rows:")
        for l in lines:
            print("  " + l)


if __name__ == "__main__":
    sys.exit(main())
