"""Peak memory of a whole-run hypergradient (hyperopt.hypergradient): forward flat, reverse growing.

The run: `hyperopt.models.MLP((64, 64, 10))` (tanh) on the digits split of
`hyperopt.data.digits()` (loaded once by the parent, handed to the workers as
arrays, so no worker imports scikit-learn), SGD with lr and momentum, batch 64,
float64, jit on (the Setup default).  The hypergradient is
``hypergradient(setup, {"lr": LR, "momentum": MOMENTUM}, mode=...)``: K = 2.

  baseline  imports everything, builds the data and the Setup, runs 0 steps;
  forward   K = 2 tangents ride along the run; each step's tape is freed when
            the step ends, so the peak should not depend on T;
  reverse   one tape of the whole run (eager), swept back once: the peak grows
            with T.

Each row is a fresh subprocess reporting ru_maxrss (its peak resident set);
"net" is that minus the baseline's.  One BLAS thread per worker.  The parent
never imports numpy (a subprocess saves the data): on Linux a child's
ru_maxrss starts at its parent's peak, which would otherwise hide the
workers' own.  VmHWM is printed as a cross-check.

    python benchmarks/hypergrad_memory.py [--T 100 1000 10000 100000]
        [--reverse-T 100 300 1000 3000] [--no-numba] [--json out.json] [--quick]
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
REVERSE_T = (100, 300, 1_000, 3_000)
QUICK_FORWARD_T = (10, 40)
QUICK_REVERSE_T = (10, 40)
MARK = "@@RESULT@@ "
LR, MOMENTUM, BATCH, SIZES = 0.05, 0.9, 64, (64, 64, 10)
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


from _procinfo import git_head, slope, status_kb  # noqa: E402


def save_digits(path: str) -> dict:
    """The library's digits split, saved once for every worker (runs in its own
    subprocess: see `prepare_data`)."""
    import numpy as np

    from hyperopt.data import digits

    split = digits()
    arrays = {f"{part}_{xy}": getattr(getattr(split, part), xy)
              for part in ("train", "val", "test") for xy in ("x", "y")}
    np.savez(path, **arrays)
    return {part: len(getattr(split, part).x) for part in ("train", "val", "test")}


NO_NUMBA = False  # --no-numba: workers run with AUTODIFF_DISABLE_NUMBA=1


def child_env() -> dict:
    env = dict(os.environ)
    if NO_NUMBA:
        env["AUTODIFF_DISABLE_NUMBA"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update({v: "1" for v in THREAD_VARS})
    return env


def prepare_data(path: str) -> dict:
    """Save the data from a subprocess, so this parent never grows: on Linux a
    child's ru_maxrss starts from its parent's peak RSS at fork/exec time, so a
    parent that had loaded scikit-learn would set every worker's floor."""
    r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--save-data", path],
                       capture_output=True, text=True, env=child_env(), cwd=str(ROOT))
    for line in r.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    raise RuntimeError(f"could not build the digits split: {(r.stderr or r.stdout).strip()[-2000:]}")


def build_setup(data_path: str, steps: int):
    import numpy as np

    from hyperopt.data import Dataset, Split
    from hyperopt.hypergrad import Setup
    from hyperopt.models import MLP
    from hyperopt.optim import SGD

    d = np.load(data_path)
    split = Split(*(Dataset(d[f"{p}_x"], d[f"{p}_y"]) for p in ("train", "val", "test")), n_classes=10)
    return Setup(MLP(SIZES), split, SGD(lr=LR, momentum=MOMENTUM), steps=steps, batch_size=BATCH)


def worker(mode: str, T: int, data_path: str) -> int:
    import resource

    import numpy as np  # noqa: F401  (everything the run needs is imported here)

    import autodiff  # noqa: F401
    from hyperopt.hypergrad import hypergradient

    setup = build_setup(data_path, max(T, 1))
    out = {"mode": mode, "T": T, "rss_before_kb": status_kb("VmRSS")}
    if mode != "baseline":
        t0 = time.perf_counter()
        hg = hypergradient(setup, {"lr": LR, "momentum": MOMENTUM}, mode=mode)
        out["seconds"] = time.perf_counter() - t0
        out.update(value=hg.value, d_log_lr=float(hg.grads["lr"]),
                   d_logit_momentum=float(hg.grads["momentum"]), K=hg.K)
    out["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    out["vmhwm_kb"] = status_kb("VmHWM")  # the same peak, from this process's own address space
    out["numba_loaded"] = "numba" in sys.modules
    print(MARK + json.dumps(out), flush=True)
    return 0


def run_child(mode: str, T: int, data_path: str, timeout: float | None):
    env = child_env()
    try:
        r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", mode,
                            "--worker-T", str(T), "--data", data_path],
                           capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout} s"
    for line in r.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):]), None
    return None, f"exit {r.returncode}: {(r.stderr or r.stdout).strip()[-2000:]}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--T", type=int, nargs="+", help=f"forward-mode run lengths (default {list(FORWARD_T)})")
    ap.add_argument("--reverse-T", type=int, nargs="*",
                    help=f"reverse-mode run lengths (default {list(REVERSE_T)}; none: skip reverse)")
    ap.add_argument("--quick", action="store_true",
                    help=f"smoke test: forward T={list(QUICK_FORWARD_T)}, reverse T={list(QUICK_REVERSE_T)}")
    ap.add_argument("--no-numba", action="store_true",
                    help="run the workers with AUTODIFF_DISABLE_NUMBA=1 (the engine's numba fast paths "
                         "off), to see what numba adds to the peak")
    ap.add_argument("--timeout", type=float, default=None, help="seconds allowed per worker (default: none)")
    ap.add_argument("--json", help="write the rows to this file")
    ap.add_argument("--worker", choices=("baseline", "forward", "reverse"), help=argparse.SUPPRESS)
    ap.add_argument("--worker-T", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--save-data", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.save_data:
        print(MARK + json.dumps(save_digits(args.save_data)))
        return 0
    if args.worker:
        return worker(args.worker, args.worker_T, args.data)
    fwd_T = args.T or list(QUICK_FORWARD_T if args.quick else FORWARD_T)
    rev_T = args.reverse_T if args.reverse_T is not None else list(QUICK_REVERSE_T if args.quick else REVERSE_T)
    if min(fwd_T + rev_T) < 1:
        ap.error("run lengths must be positive")

    global NO_NUMBA
    NO_NUMBA = args.no_numba
    tmp = tempfile.TemporaryDirectory()
    data_path = os.path.join(tmp.name, "digits.npz")
    sizes = prepare_data(data_path)
    print(f"hypergrad_memory: MLP{SIZES} tanh on digits (train {sizes['train']}, val {sizes['val']}), "
          f"batch {BATCH}, SGD lr={LR} momentum={MOMENTUM}, float64, jit on (forward; reverse is eager)")
    print(f"hypergradient(setup, {{'lr', 'momentum'}}) K=2; Python {platform.python_version()}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; code at {git_head()}; "
          "one fresh process per row, 1 BLAS thread" + ("; AUTODIFF_DISABLE_NUMBA=1" if NO_NUMBA else ""))
    print("peak = ru_maxrss of the row's process; net = peak - baseline's peak (imports + data + Setup, "
          "0 steps); RSS@0 = the row's RSS just before the run starts")
    head = (f"{'mode':<9}{'T':>8}{'RSS@0 MB':>10}{'peak MB':>10}{'net MB':>9}{'time s':>9}{'ms/step':>9}"
            f"{'numba':>7}  {'val loss':>10}  {'d/dlog lr':>12}  {'d/dlogit mom':>12}")
    print(head)
    print("-" * len(head))
    plan = [("baseline", 0)] + [("forward", T) for T in fwd_T] + [("reverse", T) for T in rev_T]
    rows, failures, base = [], [], None
    for mode, T in plan:
        res, err = run_child(mode, T, data_path, args.timeout)
        if err:
            failures.append(f"{mode} T={T}: {err}")
            print(f"{mode:<9}{T:>8}  FAILED: {err.splitlines()[-1] if err else ''}", flush=True)
            if mode == "baseline":
                print(err, file=sys.stderr)
                return 1
            continue
        peak = res["maxrss_kb"] / 1024
        rss0 = f"{res['rss_before_kb'] / 1024:>10.1f}" if res.get("rss_before_kb") else f"{'?':>10}"
        if mode == "baseline":
            base = peak
            res["net_mb"] = 0.0
            print(f"{mode:<9}{T:>8}{rss0}{peak:>10.1f}{0.0:>9.1f}{'-':>9}{'-':>9}"
                  f"{'yes' if res['numba_loaded'] else 'no':>7}", flush=True)
        else:
            res["net_mb"] = peak - base
            print(f"{mode:<9}{T:>8}{rss0}{peak:>10.1f}{peak - base:>9.1f}{res['seconds']:>9.2f}"
                  f"{res['seconds'] / T * 1e3:>9.3f}{'yes' if res['numba_loaded'] else 'no':>7}  "
                  f"{res['value']:>10.6f}  {res['d_log_lr']:>12.6g}  {res['d_logit_momentum']:>12.6g}",
                  flush=True)
        res["peak_mb"] = peak
        rows.append(res)

    summary = {}
    fwd = [r for r in rows if r["mode"] == "forward"]
    if len(fwd) > 1:
        lo, hi = min(r["peak_mb"] for r in fwd), max(r["peak_mb"] for r in fwd)
        nlo, nhi = min(r["net_mb"] for r in fwd), max(r["net_mb"] for r in fwd)
        s = slope([(r["T"], r["net_mb"]) for r in fwd])
        summary["forward"] = {"peak_spread": (hi - lo) / lo, "net_spread": (nhi - nlo) / nlo if nlo > 0 else None,
                              "kb_per_step": s * 1024}
        net_spread = f"{(nhi - nlo) / nlo:.1%}" if nlo > 0 else "n/a"
        verdict = "flat within 10%" if (hi - lo) / lo <= 0.10 and nlo > 0 and (nhi - nlo) / nlo <= 0.10 \
            else "NOT flat within 10%"
        print(f"forward T={fwd[0]['T']}..{fwd[-1]['T']}: peak {lo:.1f}..{hi:.1f} MB (spread {(hi - lo) / lo:.1%}), "
              f"net {nlo:.1f}..{nhi:.1f} MB (spread {net_spread}), fitted growth {s * 1024:+.4f} kB/step: {verdict}")
    rev = [r for r in rows if r["mode"] == "reverse"]
    if len(rev) > 1:
        s = slope([(r["T"], r["net_mb"]) for r in rev])
        summary["reverse"] = {"mb_per_step": s, "net_mb_over_T": [r["net_mb"] / r["T"] for r in rev]}
        per = ", ".join(f"T={r['T']}: {r['net_mb'] / r['T']:.3f}" for r in rev)
        print(f"reverse T={rev[0]['T']}..{rev[-1]['T']}: fitted growth {s:.3f} MB/step "
              f"(net MB / T: {per})")
    # the two modes compute the same numbers: compare where both ran
    common = sorted({r["T"] for r in fwd} & {r["T"] for r in rev})
    for T in common:
        f = next(r for r in fwd if r["T"] == T)
        b = next(r for r in rev if r["T"] == T)
        err = max(abs(f[k] - b[k]) / max(abs(b[k]), 1e-300) for k in ("d_log_lr", "d_logit_momentum"))
        summary.setdefault("forward_vs_reverse", {})[T] = err
        print(f"T={T}: forward vs reverse hypergradient, max relative difference {err:.1e}"
              f" ({'ok' if err < 1e-6 else 'MISMATCH'})")
    hwm = [(r["maxrss_kb"] - r["vmhwm_kb"]) / 1024 for r in rows if r.get("vmhwm_kb")]
    if hwm:
        print(f"ru_maxrss - VmHWM over the rows: {min(hwm):+.1f} .. {max(hwm):+.1f} MB "
              "(0: the peaks are each process's own; the parent stays small, see prepare_data)")
    if failures:
        print(f"{len(failures)} row(s) failed", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary, "failures": failures,
                                               "python": platform.python_version()}, indent=1))
    tmp.cleanup()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
