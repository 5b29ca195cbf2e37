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
``python -m hyperopt tune --population N`` runs one (`hyperopt.cli`).
"""
from __future__ import annotations

import glob
import math
import os
import time
import uuid
from dataclasses import replace
from typing import Any, Callable, NamedTuple

import numpy as np

from .distributed import one_line, pack_setup, task_setup

__all__ = ["Member", "grid", "PopulationResult", "run_population", "checkpoint_paths",
           "write_population_csv", "MemberResult", "member_task", "run_members"]

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


class MemberResult(NamedTuple):
    """What one population member's task returns (plain data, picklable).

    ``history``: the tuner's rows; ``tuned`` / ``initial``: hyperparameters;
    ``tuned_eval`` / ``initial_eval``: ``{"val_loss", "val_acc", "test_loss",
    "test_acc"}`` (NaN for a member that diverged); ``resumed_from``: the
    hyper-iteration its checkpoint held when the task started (0: from
    scratch); ``error``: why it stopped (a diverged run), else None."""
    index: int
    seed: int
    history: list
    initial: dict
    tuned: dict
    best_iteration: int
    initial_eval: dict
    tuned_eval: dict
    seconds: float
    resumed_from: int
    error: Any = None


def member_task(setup, member, wrt: list, iterations: int, tuner_kw: dict,
                checkpoint: str | None = None, progress: bool = False,
                topic: str | None = None) -> MemberResult:
    """Run one population member (`hyperopt.population.Member`) to ``iterations``
    hyper-iterations: a `Tuner` on a fresh copy of ``setup`` with the member's seed and
    initial hyperparameters, resuming from ``checkpoint`` when it exists and saving it
    after every hyper-iteration.  ``topic``: log each row's iteration as a Dask event
    (the population's progress bar).  A run that diverges is returned with ``error``."""
    from .tune import Tuner
    t0 = time.perf_counter()
    s = task_setup(setup)
    if member.seed is not None:
        s = replace(s, seed=int(member.seed), init_seed=int(member.seed), _steppers={})
    tuner = Tuner(s, dict(member.hparams), list(wrt), **{"iterations": iterations, **tuner_kw})
    if checkpoint is not None and os.path.exists(checkpoint):
        tuner.load(checkpoint)
    resumed_from = tuner.iteration
    on_row = None
    if topic is not None:
        from distributed import get_worker
        worker = get_worker()
        on_row = lambda row: worker.log_event(   # noqa: E731
            topic, {"member": int(member.index), "iteration": int(row["iteration"]) + 1})
    nan = {k: math.nan for k in ("val_loss", "val_acc", "test_loss", "test_acc")}
    try:
        res = tuner.run(iterations, progress=progress, checkpoint=checkpoint, on_row=on_row)
    except FloatingPointError as e:   # HypergradientError: this member's run diverged
        h = tuner.hparams()
        return MemberResult(member.index, s.seed, list(tuner.history), h, h, -1, nan, nan,
                            time.perf_counter() - t0, resumed_from, one_line(e))
    return MemberResult(member.index, s.seed, res.history, res.initial, res.tuned,
                        res.best_iteration, res.initial_eval, res.tuned_eval,
                        time.perf_counter() - t0, resumed_from)


def run_members(client, setup, members: list, wrt: list, iterations: int, tuner_kw: dict,
                checkpoints: list, on_done: Callable | None = None,
                on_progress: Callable | None = None) -> list:
    """`member_task` for every member, as Dask tasks; the results in member order.
    ``on_done(result)`` is called as each finishes, ``on_progress({"member", "iteration"})``
    after each hyper-iteration of any member (from Dask's event stream)."""
    from distributed import as_completed
    token = uuid.uuid4().hex[:12]
    topic = f"hyperopt-population-{token}" if on_progress is not None else None
    if topic is not None:
        client.subscribe_topic(topic, lambda event: on_progress(event[1]))
    [remote_setup] = client.scatter([pack_setup(setup)], hash=False, broadcast=True)
    futures = {client.submit(member_task, remote_setup, m, list(wrt), iterations, tuner_kw, ck,
                             False, topic, pure=False,
                             key=f"population-member-{m.index}-{token}"): m.index
               for m, ck in zip(members, checkpoints)}
    results = {}
    try:
        for fut in as_completed(list(futures)):
            r = fut.result()
            results[futures[fut]] = r
            fut.release()
            if on_done is not None:
                on_done(r)
    finally:
        if topic is not None:
            client.unsubscribe_topic(topic)
        for f in futures:
            f.release()
        remote_setup.release()
    return [results[m.index] for m in members]


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

def style_history_axis(ax, name: str) -> None:
    """A trajectory panel of a tuning history: log scale for scale-like
    hyperparameters, integer hyper-iterations, labels."""
    from matplotlib.ticker import MaxNLocator
    if name in ("lr", "weight_decay", "init_scale", "eps"):
        ax.set_yscale("log")
    ax.set_xlabel("hyper-iteration")
    ax.set_ylabel("validation loss" if name == "val_loss" else name)
    ax.set_title(name)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _figure(result: PopulationResult, names: list, caption: str):
    """Trajectories of every member (one panel per tuned hyperparameter and the
    validation loss), the best member drawn thick with its best iteration starred."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
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
        style_history_axis(ax, name)
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
