"""The outer loop: tune hyperparameters with whole-run hypergradients.

Each hyper-iteration trains the model from scratch with the current
hyperparameters, takes d(validation loss)/d(hyperparameters) through the
whole run (`hyperopt.hypergrad.hypergradient`), and steps a hyper-optimizer
(Adam by default) on their unconstrained values (log lr, logit momentum, ...),
so no step can leave a hyperparameter's range.  Hypergradients are clipped
to ``max_hypergrad_norm``; a non-finite one raises `HypergradientError` with
the iteration and the hyperparameters that produced it.

A `Tuner` checkpoints after every hyper-iteration (atomically: a temporary
file renamed over the old one), and ``resume`` continues from the last
checkpoint to exactly the result an uninterrupted run gives: each training
run is a pure function of the hyperparameters, and the checkpoint holds the
hyper-optimizer's state and the history as exact binary floats.
"""
from __future__ import annotations

import csv
import hashlib
import math
import os
import pickle
import time
from typing import Any, NamedTuple

import numpy as np

from autodiff.core import primal_value
from autodiff.tree import tree_flatten, tree_leaves, tree_map, tree_unflatten

from .hypergrad import (HypergradientError, Setup, _from_u, _scalarize, _to_u, hypergradient,
                        unflatten_like)
from .optim import Adam, Optimizer

__all__ = ["Tuner", "TuneResult", "CheckpointMismatch"]


class CheckpointMismatch(ValueError):
    """A checkpoint written by a run with other settings."""


class TuneResult(NamedTuple):
    history: list          # one dict per hyper-iteration (see Tuner.row_keys)
    initial: dict          # hyperparameters at iteration 0
    tuned: dict            # those with the lowest validation loss seen
    best_iteration: int
    initial_eval: dict     # {"val_loss", "val_acc", "test_loss", "test_acc"}
    tuned_eval: dict
    seconds: float
    peak_bytes: int        # peak resident memory of this process so far (ru_maxrss)


class Tuner:
    """Hypergradient descent on whole training runs.

    ``hparams``: the starting values (the setup's defaults fill the rest);
    ``wrt``: the names to tune (default: all of ``hparams``).
    """

    def __init__(self, setup: Setup, hparams: dict, wrt=None, *,
                 hyper_optimizer: Optimizer | None = None, mode: str = "auto",
                 chunk_size: int | None = None, max_hypergrad_norm: float | None = 10.0,
                 memory_budget: float | None = None):
        self.setup = setup
        self.h0 = setup.resolve(hparams)
        self.wrt = list(hparams) if wrt is None else list(wrt)
        if not self.wrt:
            raise ValueError("nothing to tune: give hparams or wrt")
        for k in self.wrt:
            if k not in self.h0:
                raise ValueError(f"unknown hyperparameter {k!r}; this setup has {sorted(self.h0)}")
        self.hyper_optimizer = hyper_optimizer if hyper_optimizer is not None else Adam(lr=0.05)
        if max_hypergrad_norm is not None and not max_hypergrad_norm > 0:
            raise ValueError(f"max_hypergrad_norm must be positive, got {max_hypergrad_norm!r}")
        self.max_norm = max_hypergrad_norm
        self.chunk_size = chunk_size
        self.memory_budget = memory_budget
        self.mode = self.requested_mode = mode
        if mode == "auto":
            from .planner import plan
            K = sum(int(np.size(x)) for x in tree_leaves({k: self.h0[k] for k in self.wrt}))
            self.plan = plan(setup, K=K, memory_budget=memory_budget,
                             hparams={k: self.h0[k] for k in self.wrt})
            self.mode = "forward" if self.plan.mode == "hd" else self.plan.mode
            if self.plan.chunk_size is not None and chunk_size is None:
                self.chunk_size = self.plan.chunk_size
        else:
            self.plan = None
        self.u = _to_u(setup, self.h0, self.wrt)
        self.opt_state = self.hyper_optimizer.init(self.u)
        self.iteration = 0
        self.history: list[dict] = []

    # -- one hyper-iteration ----------------------------------------------------
    def hparams(self) -> dict:
        return {**self.h0, **{k: tree_map(lambda a: np.asarray(primal_value(a)), v)
                              for k, v in _from_u(self.setup, self.u).items()}}

    def step(self, progress: bool = False) -> dict:
        """One hypergradient and one hyper-optimizer step; the history row."""
        h = self.hparams()
        hg = hypergradient(self.setup, h, self.wrt, mode=self.mode, chunk_size=self.chunk_size,
                           progress=progress)
        flat, treedef = tree_flatten(hg.grads)
        norm = math.sqrt(sum(float(np.sum(np.square(g))) for g in flat))
        if not math.isfinite(norm):
            raise HypergradientError(
                f"the hypergradient is not finite at hyper-iteration {self.iteration} "
                f"(hyperparameters {self._show(h)}); the run diverged or its tangents exploded")
        scale = 1.0 if self.max_norm is None or norm <= self.max_norm else self.max_norm / norm
        row = {"iteration": self.iteration}
        for k in self.wrt:
            row.update(_scalarize(k, h[k]))
        row.update({"val_loss": hg.value, "val_acc": hg.accuracy})
        for k in self.wrt:
            row.update(_scalarize(f"d_{k}", hg.grads[k]))
        row.update({"hypergrad_norm": norm, "clipped": scale < 1.0, "seconds": hg.seconds,
                    "mode": hg.mode})
        grads = tree_unflatten(treedef, [g * scale for g in flat])
        self.u, self.opt_state = self.hyper_optimizer.update(grads, self.opt_state, self.u)
        self.history.append(row)
        self.iteration += 1
        return row

    @staticmethod
    def _show(h) -> str:
        return ", ".join(f"{k}={v:.4g}" for k, v in
                         ((k, float(np.mean(primal_value(v)))) for k, v in h.items()
                          if np.ndim(primal_value(v)) == 0 and not isinstance(v, (bool, str))))

    def evaluate(self, hparams: dict) -> dict:
        params = self.setup.train(hparams)
        val_loss, val_acc = self.setup.evaluate(params, "val")
        test_loss, test_acc = self.setup.evaluate(params, "test")
        return {"val_loss": float(val_loss), "val_acc": val_acc,
                "test_loss": float(test_loss), "test_acc": test_acc}

    # -- checkpoints -----------------------------------------------------------
    def fingerprint(self) -> str:
        """What must match for a checkpoint to be resumed by this tuner."""
        s = self.setup
        desc = repr((type(s.model).__name__, getattr(s.model, "__dict__", None), repr(s.optimizer),
                     s.steps, s.batch_size, s.seed, s.init_seed, str(s.dtype), len(s.data.train.x),
                     float(np.sum(s.data.train.x)), repr(self.hyper_optimizer),
                     self.requested_mode, self.max_norm, self.wrt,
                     {k: _scalarize(k, v) for k, v in self.h0.items()
                      if not isinstance(v, (bool, str))}))
        return hashlib.sha256(desc.encode()).hexdigest()

    def save(self, path: str) -> None:
        """Write the tuner's state to ``path`` atomically."""
        blob = pickle.dumps({"fingerprint": self.fingerprint(), "iteration": self.iteration,
                             "u": self.u, "opt_state": self.opt_state, "history": self.history,
                             "mode": self.mode, "chunk_size": self.chunk_size})
        tmp = f"{path}.tmp.{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def load(self, path: str) -> None:
        with open(path, "rb") as f:
            d = pickle.load(f)
        if d.get("fingerprint") != self.fingerprint():
            raise CheckpointMismatch(f"{path} was written by a run with different settings; "
                                     "rerun with the same arguments, or without --resume")
        self.iteration, self.u, self.opt_state = d["iteration"], d["u"], d["opt_state"]
        self.history = d["history"]
        # the planner's choice is part of the run: keep it, so the resumed run is the same
        self.mode, self.chunk_size = d["mode"], d["chunk_size"]

    # -- the loop ----------------------------------------------------------------
    def run(self, iterations: int, *, progress: bool = False, checkpoint: str | None = None,
            resume: bool = False, on_row=None) -> TuneResult:
        """Hyper-iterate until ``iterations`` are done (counting resumed ones)."""
        if not isinstance(iterations, (int, np.integer)) or iterations < 0:
            raise ValueError(f"iterations must be a non-negative integer, got {iterations!r}")
        if resume and checkpoint and os.path.exists(checkpoint):
            self.load(checkpoint)
        t0 = time.perf_counter()
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=iterations, initial=min(self.iteration, iterations),
                       desc="hyper-iterations", unit="it")
        try:
            while self.iteration < iterations:
                row = self.step(progress=progress)
                if checkpoint:
                    self.save(checkpoint)
                if on_row is not None:
                    on_row(row)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(val_loss=f"{row['val_loss']:.4f}")
        finally:
            if bar is not None:
                bar.close()
        peak = _peak_rss_bytes()
        if not self.history:
            raise ValueError("no hyper-iterations were run (iterations=0)")
        final_h = self.hparams()
        final = self.evaluate(final_h)
        best = min(range(len(self.history)), key=lambda i: self.history[i]["val_loss"])
        if final["val_loss"] < self.history[best]["val_loss"]:
            tuned, best_it, tuned_eval = final_h, len(self.history), final
        else:
            tuned = self._h_at(best)
            best_it = best
            tuned_eval = self.evaluate(tuned)
        initial_eval = self.evaluate(self._h_at(0))
        return TuneResult(list(self.history), self._h_at(0), tuned, best_it, initial_eval,
                          tuned_eval, time.perf_counter() - t0, int(peak))

    def _h_at(self, i: int) -> dict:
        """The hyperparameters of history row i (its columns, back in h0's structure)."""
        row, h = self.history[i], dict(self.h0)
        for k in self.wrt:
            leaves, treedef = tree_flatten(self.h0[k])
            flat = np.array([row[c] for c in _scalarize(k, self.h0[k])])
            h[k] = tree_map(lambda a: float(a) if np.ndim(a) == 0 else a,
                            unflatten_like(flat, leaves, treedef))
        return h


def _peak_rss_bytes() -> int:
    import resource
    import sys
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r if sys.platform == "darwin" else r * 1024)


def write_csv(history: list, path: str) -> None:
    """Every hyper-iteration as one CSV row (floats in full precision)."""
    if not history:
        return
    keys = list(history[0])
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for row in history:
            w.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    os.replace(tmp, path)
