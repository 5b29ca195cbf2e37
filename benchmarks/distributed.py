"""Scale-out on Dask: speed-up and parallel efficiency of W workers over 1, per-task
overhead, and peak memory per worker, side by side in one run.

Workloads (float64, SGD with momentum on the digits split of `hyperopt.data.digits`):

  hypergradient  ``hypergradient(setup, h, mode="forward", chunk_size=2, client=c)``
                 with K = 8 (one lr and one momentum per parameter leaf of an
                 MLP (64, 64, 10)): 4 tasks, each a T-step training run carrying
                 2 tangent directions;
  population     ``run_population(setup, grid(8, ...), ITERS, client=c)``: 8 short
                 tuning runs (MLP (64, 32, 10), lr and momentum, initial lr on a log
                 grid), each a task.

Each runs on a LocalCluster of 1 worker and one of W (default 2) workers, both
started with `hyperopt.distributed.connect` (single-threaded worker processes)
and kept up together; every round times the two clusters back to back, and
the figures are the median and the best (shortest) of the rounds, after one
warm-up round, which also fills jit's on-disk cache; the order alternates from
round to round.  The same work one by one in this process (no
Dask) is timed beside them.  speed-up = time(1 worker) / time(W workers);
efficiency = speed-up / W.  Wall-clock times: the load average is printed.

Per-task overhead: an empty task's round trip (many empty tasks, one worker);
the setup's pickled size and pickle+unpickle time; broadcasting it to the
workers; and, for the chunk and member tasks, the client's wall time per task
on one worker minus the time measured inside the task (its compute).

Peak memory per worker: one K = 2 chunk task at T and at 4T on one worker,
after a 150-step warm-up task (imports, the compiled step), the worker process's
peak resident set during each (VmHWM, reset before the task through
/proc/self/clear_refs) next to its resident set before.

    python benchmarks/distributed.py [--workers 2] [--T 1000] [--pop-T 400] [--pop-iters 4]
        [--rounds 5] [--quick]
"""
from __future__ import annotations

import argparse
import os
import pickle
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
# this file's name would shadow the `distributed` package: keep its folder off the path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))


def _procinfo():
    import importlib.util
    spec = importlib.util.spec_from_file_location("_procinfo", HERE / "_procinfo.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


git_head = _procinfo().git_head


def k8_hparams(model) -> dict:
    leaves = list(model.init())
    return {"lr": {k: 0.05 * (1 + 0.05 * i) for i, k in enumerate(leaves)},
            "momentum": {k: 0.9 - 0.01 * i for i, k in enumerate(leaves)}}


# -- functions that run on the workers (defined here, they travel by value) ------------

def timed_chunk(setup, h, u, names, c0, c1):
    """`chunk_task`, and the seconds it took inside the worker."""
    from hyperopt.hypergrad import chunk_task
    t0 = time.perf_counter()
    out = chunk_task(setup, h, u, names, c0, c1)
    return out, time.perf_counter() - t0


def timed_member(setup, member, wrt, iterations, tuner_kw):
    from hyperopt.population import member_task
    t0 = time.perf_counter()
    out = member_task(setup, member, wrt, iterations, tuner_kw)
    return out.tuned_eval["val_loss"], time.perf_counter() - t0


def empty(i):
    return i


def memory_chunk(setup, h, u, names, c0, c1):
    """`chunk_task` with the worker process's resident set before and its peak during
    (KiB; the peak is reset first where the kernel allows)."""
    def field(name):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
        return -1
    import gc
    from hyperopt.hypergrad import chunk_task
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    before = field("VmRSS")
    chunk_task(setup, h, u, names, c0, c1)
    return before, field("VmHWM"), reset


# -- the measurements ------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--T", type=int, default=1000, help="steps of the hypergradient's run")
    ap.add_argument("--pop-T", type=int, default=400, help="steps of a population member's run")
    ap.add_argument("--pop-iters", type=int, default=4, help="hyper-iterations per member")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--empty-tasks", type=int, default=200)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    a = ap.parse_args()
    if a.quick:
        a.T, a.pop_T, a.pop_iters, a.rounds, a.empty_tasks = 12, 8, 1, 1, 20

    import numpy as np
    from threadpoolctl import threadpool_limits

    from hyperopt.data import digits
    from hyperopt.distributed import close, connect, fresh_setup
    from hyperopt.coords import to_unconstrained as _to_u
    from hyperopt.hypergrad import Setup, hypergradient
    from hyperopt.models import MLP
    from hyperopt.optim import SGD, Adam
    from hyperopt.population import grid, run_population

    W = a.workers
    data = digits(seed=0)
    big = MLP((64, 64, 10))
    hg_setup = Setup(big, data, SGD(lr=0.05, momentum=0.9), steps=a.T, batch_size=64)
    h8 = k8_hparams(big)
    pop_setup = Setup(MLP((64, 32, 10)), data, SGD(lr=0.01, momentum=0.5), steps=a.pop_T,
                      batch_size=64)
    members = grid(8, {"lr": 0.01, "momentum": 0.5}, vary="lr")
    tuner_kw = {"mode": "forward", "hyper_optimizer": Adam(lr=0.1)}

    print(f"distributed: Python {platform.python_version()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}, git {git_head()}, "
          f"AUTODIFF_JIT_BACKEND={os.environ.get('AUTODIFF_JIT_BACKEND', '(auto)')}")
    print(f"hypergradient: K=8, chunks of 2 (4 tasks), MLP 64-64-10, T={a.T} steps of batch 64; "
          f"population: 8 members x {a.pop_iters} hyper-iterations of T={a.pop_T} steps, "
          f"MLP 64-32-10; {a.rounds} timed round(s) after a warm-up\n")

    def run_hg(client):
        t0 = time.perf_counter()
        hg = hypergradient(hg_setup, h8, chunk_size=2, client=client)
        return time.perf_counter() - t0, hg

    one_pass_setup = Setup(big, data, SGD(lr=0.05, momentum=0.9), steps=a.T, batch_size=64)

    def run_one_pass():
        t0 = time.perf_counter()
        hypergradient(one_pass_setup, h8)
        return time.perf_counter() - t0

    def run_pop(client):
        t0 = time.perf_counter()
        res = run_population(pop_setup, members, a.pop_iters, client=client, **tuner_kw)
        return time.perf_counter() - t0, res

    times = {(w, n): [] for w in ("hg", "pop") for n in (0, 1, W)}
    one_pass = []
    with threadpool_limits(limits=1, user_api="blas"):
        clients = {1: connect(workers=1), W: connect(workers=W)}
        try:
            ref_hg, local_hg, mismatch, rel = None, [], [], 0.0
            for r in range(a.rounds + 1):       # round 0: the warm-up
                t_one = run_one_pass()
                if r:
                    one_pass.append(t_one)
                for n in ((0, 1, W) if r % 2 else (W, 1, 0)):   # alternate the order
                    c = clients.get(n)
                    t_hg, hg = run_hg(c)
                    t_pop, pop = run_pop(c)
                    if r:
                        times[("hg", n)].append(t_hg)
                        times[("pop", n)].append(t_pop)
                    if n == 0:
                        local_hg.append(hg)
                    elif ref_hg is None:
                        ref_hg = hg
                    elif _flat(hg) != _flat(ref_hg):
                        mismatch.append(n)
            for hg in local_hg:   # in-process: the jit compiles after 100 steps, see the docs
                x, y = np.array(_flat(hg)), np.array(_flat(ref_hg))
                rel = max(rel, float(np.max(np.abs(x - y) / np.maximum(np.abs(y), 1e-300))))
            rows = []
            for w, name, tasks in (("hg", "hypergradient K=8, chunks of 2", 4),
                                   ("pop", "population of 8 tuning runs", 8)):
                for stat, f in (("median", statistics.median), ("best", min)):
                    t0, t1, tw = (f(times[(w, n)]) for n in (0, 1, W))
                    rows.append((f"{name} ({stat})", tasks, t0, t1, tw, t1 / tw, t1 / tw / W))
            print(f"{'workload (rounds: median / best)':44s} {'tasks':>5s} {'in-process s':>12s} "
                  f"{'1 worker s':>10s} {W:>2d} workers s {'speed-up':>9s} {'efficiency':>10s}")
            for name, tasks, t0, t1, tw, su, eff in rows:
                print(f"{name:44s} {tasks:5d} {t0:12.2f} {t1:10.2f} {tw:12.2f} {su:9.2f} "
                      f"{eff:10.2f}")
            t_one = statistics.median(one_pass)
            print(f"in-process, all 8 directions in one pass (no chunks): {t_one:.2f} s; the "
                  f"chunks of 2 on {W} workers take {rows[0][4] / t_one:.2f}x that (each chunk "
                  "reruns the primal training run)")
            print(f"every distributed hypergradient equal to the first bit for bit: "
                  f"{'yes' if not mismatch else 'NO (' + str(mismatch) + ')'}; the in-process "
                  f"ones differ from it by at most {rel:.1e} relative")
            print("(rounds, s: " + "; ".join(
                f"{w} {n}w " + " ".join(f"{t:.2f}" for t in times[(w, n)])
                for w in ("hg", "pop") for n in (0, 1, W)) + ")")

            # -- per-task overhead -------------------------------------------------------
            c1 = clients[1]
            print("\nper-task overhead (scheduling + serialization) vs the task's compute time, "
                  "1 worker:")
            c1.gather(c1.map(empty, range(10), pure=False))
            t0 = time.perf_counter()
            c1.gather(c1.map(empty, range(a.empty_tasks), pure=False))
            t_empty = (time.perf_counter() - t0) / a.empty_tasks
            print(f"  empty task: {t_empty * 1e3:.2f} ms per task ({a.empty_tasks} tasks, "
                  "submitted together, one worker)")
            clean = fresh_setup(hg_setup)
            t0 = time.perf_counter()
            blob = pickle.dumps(clean)
            pickle.loads(blob)
            t_pickle = time.perf_counter() - t0
            t0 = time.perf_counter()
            [fut] = clients[W].scatter([clean], hash=False, broadcast=True)
            t_scatter = time.perf_counter() - t0
            fut.release()
            print(f"  setup: {len(blob) / 2**20:.2f} MiB pickled (the digits split and the "
                  f"model); pickle + unpickle {t_pickle * 1e3:.1f} ms; broadcast to {W} workers "
                  f"{t_scatter * 1e3:.1f} ms (once per call)")
            u = _to_u(hg_setup, hg_setup.resolve(h8), list(h8))
            names = list(h8)
            [s1] = c1.scatter([clean], hash=False, broadcast=True)
            c1.gather([c1.submit(timed_chunk, s1, hg_setup.resolve(h8), u, names, 0, 2,
                                 pure=False)])
            t0 = time.perf_counter()
            outs = c1.gather([c1.submit(timed_chunk, s1, hg_setup.resolve(h8), u, names, c, c + 2,
                                        pure=False) for c in range(0, 8, 2)])
            wall = time.perf_counter() - t0
            inside = sum(o[1] for o in outs)
            print(f"  hypergradient chunk task: compute {inside / 4:.3f} s (inside the task), "
                  f"client wall per task {wall / 4:.3f} s, overhead "
                  f"{(wall - inside) / 4 * 1e3:.1f} ms per task "
                  f"({(wall - inside) / inside * 100:.2f}% of compute)")
            local_chunk = statistics.median(times[("hg", 0)]) / 4
            print(f"  of that compute, a fresh copy of the setup per task (recording the step, "
                  f"100 Python replays before the compiled step) costs about "
                  f"{inside / 4 - local_chunk:.3f} s: the same chunk takes {local_chunk:.3f} s "
                  "in a process that has run it before")
            s1.release()
            [p1] = c1.scatter([fresh_setup(pop_setup)], hash=False, broadcast=True)
            t0 = time.perf_counter()
            outs = c1.gather([c1.submit(timed_member, p1, m, ["lr", "momentum"], a.pop_iters,
                                        tuner_kw, pure=False) for m in members])
            wall = time.perf_counter() - t0
            inside = sum(o[1] for o in outs)
            print(f"  population member task: compute {inside / 8:.3f} s, client wall per task "
                  f"{wall / 8:.3f} s, overhead {(wall - inside) / 8 * 1e3:.1f} ms per task "
                  f"({(wall - inside) / inside * 100:.2f}% of compute)")
            p1.release()
        finally:
            for c in reversed(list(clients.values())):   # the first started is closed last:
                close(c)                                   # it restores the logging level

        # -- peak memory per worker, T and 4T ---------------------------------------------
        print("\npeak memory per worker (one chunk task, K=2: lr and momentum, MLP 64-64-10, "
              "after a warm-up task on the same worker):")
        h2 = {"lr": 0.05, "momentum": 0.9}
        c = connect(workers=1)
        try:
            for i, T in enumerate((150, a.T, 4 * a.T)):   # the first: a warm-up (imports, jit)
                s = Setup(big, data, SGD(lr=0.05, momentum=0.9), steps=T, batch_size=64)
                u2 = _to_u(s, s.resolve(h2), list(h2))
                [sf] = c.scatter([fresh_setup(s)], hash=False, broadcast=True)
                before, peak, reset = c.gather([c.submit(memory_chunk, sf, s.resolve(h2), u2,
                                                         list(h2), 0, 2, pure=False)])[0]
                sf.release()
                if i == 0:
                    continue
                print(f"  T={T:6d}: resident before {before / 1024:7.1f} MiB, peak during the "
                      f"task {peak / 1024:7.1f} MiB (+{(peak - before) / 1024:.1f} MiB)"
                      + ("" if reset else " (peak not reset: the process's lifetime peak)"))
        finally:
            close(c)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    return 0


def _flat(hg) -> list:
    """A hypergradient's value and every entry of its grads, as floats."""
    import numpy as np
    from autodiff.tree import tree_leaves
    return [hg.value] + [float(v) for g in tree_leaves(hg.grads) for v in np.ravel(g)]


if __name__ == "__main__":
    sys.exit(main())
