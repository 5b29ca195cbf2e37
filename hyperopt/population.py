"""Tuning populations: N independent tuning runs, in-process or as Dask tasks.

A population is a list of `Member`s, each a `Tuner` run of the same setup that
starts from its own initial hyperparameters and/or seed (`grid`: a log grid of
initial learning rates, consecutive seeds, or both).  `run_population` runs
them one by one in this process, or, given a ``distributed.Client``
(`hyperopt.distributed.connect`), as one Dask task each.  Every member is a
pure function of its inputs and trains on a fresh copy of the setup, so the
two give the same results (bit for bit with ``AUTODIFF_JIT_BACKEND=python``;
the compiled jit backend may round differently wherever it compiles).

Each member checkpoints to ``checkpoint_dir/member_NNN.npz`` after every
hyper-iteration and starts by loading that file when it exists: a member
whose worker dies is rerun by Dask from its last checkpoint, and a
population whose client was killed continues where each member stopped
(``resume=True``).  The directory must be one the workers can write and the
client can read (the same path on every machine of a cluster, e.g. a shared
file system).

A member whose run diverges is kept in the result with its history so far and
NaN losses (``error`` says why); the others go on.

`PopulationResult.rows` is the gathered history (a ``member`` and a ``seed``
column first); `summary` gives the best member and the median and spread of
the members' final validation losses (at each member's tuned hyperparameters).
`tune_population` is ``python -m hyperopt tune --population N``.
"""
from __future__ import annotations

import glob
import math
import os
import sys
import time
from typing import NamedTuple

import numpy as np

from .distributed import member_task

__all__ = ["Member", "grid", "PopulationResult", "run_population", "checkpoint_paths",
           "write_population_csv", "tune_population"]

VARY = ("lr", "seed", "both")


class Member(NamedTuple):
    """One tuning run of a population: ``hparams`` are its initial values of the tuned
    hyperparameters; ``seed`` sets the setup's batch order and initialization
    (``seed`` and ``init_seed``; the data split is the setup's), None keeps the setup's."""
    index: int
    seed: int | None
    hparams: dict


def grid(n: int, hparams: dict, *, vary: str = "lr", seed: int = 0, span: float = 10.0) -> list:
    """``n`` members around ``hparams``: ``vary="lr"``: initial learning rates on a log
    grid from ``lr / span`` to ``lr * span`` (``n = 1``: ``lr`` itself), the setup's
    seed; ``"seed"``: seeds ``seed .. seed + n - 1``, the same hyperparameters;
    ``"both"``: member i gets the i-th learning rate and seed ``seed + i``."""
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"a population needs a positive number of members, got {n!r}")
    if vary not in VARY:
        raise ValueError(f"vary must be one of {', '.join(VARY)}, got {vary!r}")
    if vary in ("lr", "both") and "lr" not in hparams:
        raise ValueError(f"vary={vary!r} varies the initial lr, which is not among the tuned "
                         f"hyperparameters ({', '.join(hparams)}); tune lr or vary the seed")
    if not span >= 1:
        raise ValueError(f"span must be at least 1, got {span!r}")
    lrs = None
    if vary in ("lr", "both"):
        lr = float(hparams["lr"])
        lrs = [lr] if n == 1 else [float(v) for v in np.geomspace(lr / span, lr * span, n)]
    members = []
    for i in range(n):
        h = dict(hparams)
        if lrs is not None:
            h["lr"] = lrs[i]
        members.append(Member(i, None if vary == "lr" else int(seed) + i, h))
    return members


def checkpoint_paths(checkpoint_dir: str | None, members: list) -> list:
    if checkpoint_dir is None:
        return [None] * len(members)
    d = os.path.abspath(checkpoint_dir)
    return [os.path.join(d, f"member_{m.index:03d}.npz") for m in members]


class PopulationResult(NamedTuple):
    members: list          # the Members
    results: list          # one hyperopt.distributed.MemberResult per member, in order
    seconds: float

    def final_losses(self) -> np.ndarray:
        """Each member's validation loss at its tuned hyperparameters (NaN: diverged)."""
        return np.array([r.tuned_eval["val_loss"] for r in self.results], dtype=float)

    @property
    def best(self) -> int:
        """The index (`Member.index`) of the member with the lowest final validation loss
        (-1: none is finite)."""
        loss = self.final_losses()
        if not np.any(np.isfinite(loss)):
            return -1
        return int(self.results[int(np.nanargmin(loss))].index)

    def summary(self) -> dict:
        """Best member and its loss; median, worst and spread (worst - best) of the
        members' final validation losses (finite ones); how many diverged."""
        loss = self.final_losses()
        ok = loss[np.isfinite(loss)]
        if not ok.size:
            return {"best_member": -1, "best": math.nan, "median": math.nan,
                    "worst": math.nan, "spread": math.nan, "diverged": len(loss)}
        return {"best_member": self.best, "best": float(ok.min()), "median": float(np.median(ok)),
                "worst": float(ok.max()), "spread": float(ok.max() - ok.min()),
                "diverged": int(len(loss) - ok.size)}

    def rows(self) -> list:
        """Every member's history, one row per hyper-iteration, ``member`` and ``seed``
        first."""
        return [{"member": r.index, "seed": r.seed, **row} for r in self.results
                for row in r.history]


def run_population(setup, members: list, iterations: int, wrt=None, *, client=None,
                   checkpoint_dir: str | None = None, resume: bool = False,
                   progress: bool = False, **tuner_kw) -> PopulationResult:
    """Run every member to ``iterations`` hyper-iterations: one by one in this process
    (``client=None``), or as Dask tasks on ``client``'s cluster.  ``wrt``: the tuned
    names (default: the first member's ``hparams``); ``tuner_kw`` go to each `Tuner`
    (``hyper_optimizer``, ``mode``, ``chunk_size``, ...).  With ``checkpoint_dir``,
    members checkpoint there; without ``resume``, the directory's old member
    checkpoints are removed first.  ``progress``: one bar for the population (members
    done; the latest member's hyper-iteration), and in-process the tuner's own bars."""
    if not members:
        raise ValueError("a population needs at least one member")
    if not isinstance(iterations, (int, np.integer)) or iterations < 1:
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
    wrt = list(members[0].hparams) if wrt is None else list(wrt)
    paths = checkpoint_paths(checkpoint_dir, members)
    if checkpoint_dir is not None:
        os.makedirs(checkpoint_dir, exist_ok=True)
        if not resume:
            for old in glob.glob(os.path.join(os.path.abspath(checkpoint_dir), "member_*.npz")):
                os.remove(old)
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(members), desc="population", unit="member", position=0)

    def done(r):
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"member {r.index} done: val_loss {r.tuned_eval['val_loss']:.4g}")

    def moved(event):
        if bar is not None:
            bar.set_postfix_str(f"member {event['member']}: it. {event['iteration']}/{iterations}")
    try:
        if client is None:
            results = []
            for m, ck in zip(members, paths):
                r = member_task(setup, m, wrt, iterations, tuner_kw, ck, progress=progress)
                results.append(r)
                done(r)
        else:
            from .distributed import run_members
            results = run_members(client, setup, members, wrt, iterations, tuner_kw, paths,
                                  on_done=done, on_progress=moved if progress else None)
    finally:
        if bar is not None:
            bar.close()
    return PopulationResult(list(members), results, time.perf_counter() - t0)


def write_population_csv(result: PopulationResult, path: str) -> None:
    from .tune import write_csv
    write_csv(result.rows(), path)


# -- the command line: python -m hyperopt tune --population N -----------------------

def _figure(result: PopulationResult, names: list, caption: str):
    """Trajectories of every member (one panel per tuned hyperparameter and the
    validation loss), the best member drawn thick with its best iteration starred."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    best = result.best
    panels = list(names) + ["val_loss"]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6), squeeze=False)
    colours = plt.cm.viridis(np.linspace(0, 0.9, max(len(result.results), 1)))
    for ax, name in zip(axes[0], panels):
        for r, colour in zip(result.results, colours):
            if not r.history:
                continue
            it = [row["iteration"] for row in r.history]
            cols = [k for k in r.history[0] if k == name or k.startswith(name + "[")]
            for col in cols:
                ys = [row[col] for row in r.history]
                if r.index == best:
                    ax.plot(it, ys, color="tab:red", lw=2.2, zorder=4,
                            label=f"best: member {best}" if col == cols[0] else None)
                    if 0 <= r.best_iteration < len(ys):
                        ax.plot([it[r.best_iteration]], [ys[r.best_iteration]], marker="*",
                                ms=13, color="tab:red", linestyle="none", zorder=5)
                else:
                    ax.plot(it, ys, color=colour, lw=0.9, alpha=0.6)
        if name in ("lr", "weight_decay", "init_scale", "eps"):
            ax.set_yscale("log")
        ax.set_xlabel("hyper-iteration")
        ax.set_ylabel("validation loss" if name == "val_loss" else name)
        ax.set_title(name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if best >= 0:
            ax.legend(fontsize=7)
    fig.text(0.5, 0.01, caption, ha="center", va="bottom", fontsize=7)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def _describe_members(members: list, vary: str) -> str:
    n = len(members)
    parts = []
    if vary in ("lr", "both"):
        lrs = [m.hparams["lr"] for m in members]
        parts.append(f"initial lr {lrs[0]:.4g}" if n == 1 else
                     f"initial lr on a log grid from {lrs[0]:.4g} to {lrs[-1]:.4g}")
    if vary in ("seed", "both"):
        parts.append(f"seed {members[0].seed}" if n == 1 else
                     f"seeds {members[0].seed}..{members[-1].seed}")
    return " and ".join(parts)


def tune_population(args, setup, names: list, start: dict) -> int:
    """``tune --population N``: run the population (in this process, on a LocalCluster
    of ``--workers`` processes, or on the cluster at ``--scheduler``), write
    population.csv, population.png and settings.json to ``--out``, print each member's
    result and the summary.  Called by `hyperopt.cli.cmd_tune` after its checks."""
    from . import cli
    from .distributed import ClusterError, close, connect
    from .optim import Adam
    out = cli._out_dir(args.out)
    try:
        members = grid(args.population, start, vary=args.vary, seed=args.seed)
    except ValueError as e:
        cli._fail("tune", str(e))
    ckdir = os.path.join(os.path.abspath(out), "members")
    csv_path = os.path.join(out, "population.csv")
    png = os.path.join(out, "population.png")
    if not args.resume and os.path.exists(csv_path):
        os.remove(csv_path)
    elif args.resume and not glob.glob(os.path.join(ckdir, "member_*.npz")):
        print(f"no member checkpoints in {ckdir}; starting from the beginning", file=sys.stderr)
    tuner_kw = {"hyper_optimizer": Adam(lr=args.hyper_lr), "mode": args.mode,
                "chunk_size": args.chunk_size}
    client = None
    try:
        if args.workers is not None or args.scheduler is not None:
            try:
                client = connect(workers=args.workers, scheduler=args.scheduler)
            except ClusterError as e:
                cli._fail("tune", str(e))
            if cli._custom(args):   # its module need not exist where the workers run
                import cloudpickle
                cloudpickle.register_pickle_by_value(sys.modules[args.model.split(":", 1)[0]])
            n = len(client.nthreads())
            where = (f"a LocalCluster of {args.workers} worker processes"
                     if args.workers is not None else
                     f"the cluster at {args.scheduler} ({n} workers)")
        else:
            where = "this process, one member after another"
        print(f"population of {len(members)} ({_describe_members(members, args.vary)}), each "
              f"tuning {', '.join(names)} of {args.optimizer} on {cli._dataset(args)} "
              f"({args.model}, {setup.n_params()} parameters), {args.steps} steps per run, "
              f"{args.hyper_iters} hyper-iterations, mode {args.mode}; running on {where}")
        res = run_population(setup, members, args.hyper_iters, names, client=client,
                             checkpoint_dir=ckdir, resume=args.resume,
                             progress=not args.no_progress, **tuner_kw)
    finally:
        close(client)
    write_population_csv(res, csv_path)
    s = res.summary()
    caption = cli._caption(args, setup, f"population of {len(members)} "
                                        f"({_describe_members(members, args.vary)}); "
                                        f"mode {args.mode}; hyper-lr {args.hyper_lr:g}")
    cli._save(_figure(res, names, caption), png)
    cli._write_settings(out, cli._settings(
        args, setup, tune=names, hyper_iters=args.hyper_iters, hyper_lr=args.hyper_lr,
        mode=args.mode, chunk_size=args.chunk_size, resume=args.resume,
        population=len(members), vary=args.vary, workers=args.workers, scheduler=args.scheduler,
        members=[{"member": m.index, "seed": r.seed, "initial": m.hparams,
                  "resumed_from": r.resumed_from, "error": r.error}
                 for m, r in zip(members, res.results)], summary=s))
    headers = ["member", "seed"] + [f"{n} (initial)" for n in names] + \
              [f"{n} (tuned)" for n in names] + ["val_loss", "test_acc", "note"]
    rows = []
    for m, r in zip(members, res.results):
        note = ("best" if r.index == s["best_member"] else
                "diverged" if r.error else "")
        if r.resumed_from and args.resume:
            note = (note + "; " if note else "") + f"resumed at it. {r.resumed_from}"
        rows.append([m.index, r.seed] + [float(np.mean(r.initial[n])) for n in names]
                    + [float(np.mean(r.tuned[n])) for n in names]
                    + [r.tuned_eval["val_loss"], r.tuned_eval["test_acc"], note])
    print()
    print(cli._table(headers, rows))
    print()
    best = "-" if s["best_member"] < 0 else str(s["best_member"])
    print(cli._table(["", "best", "median", "worst", "spread", "best member", "diverged"],
                     [["final val_loss", s["best"], s["median"], s["worst"], s["spread"], best,
                       s["diverged"]]]))
    for r in res.results:
        if r.error:
            print(f"member {r.index} diverged: {r.error}", file=sys.stderr)
    print(f"\ntime {res.seconds:.1f} s")
    print(f"wrote {csv_path}, {png}")
    return 3 if s["best_member"] < 0 else 0

