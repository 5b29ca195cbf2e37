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

The checkpoint is an ``.npz`` archive, not a pickle: the arrays of the
tuner's state (the unconstrained hyperparameters and the hyper-optimizer's
state, in their own dtypes) plus one JSON document ``meta`` holding the
format name and version, the settings the run was started with (model,
data, optimizer, steps, ...: a resume with other settings is refused naming
the ones that differ), the history (floats written by ``repr``, which
round-trips them exactly) and the planner's choice.  It is read with
``np.load(..., allow_pickle=False)``, so loading a checkpoint never executes
code; a file that is not one raises `CheckpointError`.

The result reports the best *evaluated* hyperparameters: the history row
with the lowest validation loss (``best_iteration`` is its index), so the
tuned values are always a row of the history.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import time
from typing import Any, NamedTuple

import numpy as np

from autodiff.core import primal_value
from autodiff.tree import tree_flatten, tree_leaves, tree_map, tree_unflatten

from .coords import columns, from_unconstrained, to_unconstrained, unflatten_like
from .hypergrad import HypergradientError, Setup, hypergradient
from .optim import Adam, Optimizer

__all__ = ["Tuner", "TuneResult", "CheckpointError", "CheckpointMismatch",
           "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION"]

CHECKPOINT_FORMAT = "hyperopt.tune checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a readable checkpoint of this format (truncated, overwritten,
    another format or version)."""


class CheckpointMismatch(CheckpointError):
    """A checkpoint written by a run with other settings.

    ``differences``: ``{setting: (value in the checkpoint, value now)}``."""

    def __init__(self, message: str, differences: dict | None = None):
        super().__init__(message)
        self.differences = dict(differences or {})


class TuneResult(NamedTuple):
    history: list          # one dict per hyper-iteration (see Tuner.row_keys)
    initial: dict          # hyperparameters at iteration 0
    tuned: dict            # those with the lowest validation loss seen
    best_iteration: int
    initial_eval: dict     # {"val_loss", "val_acc", "test_loss", "test_acc"}
    tuned_eval: dict
    seconds: float
    peak_bytes: int        # peak resident memory of this process so far (ru_maxrss)
    calibration_seconds: float = 0.0  # the planner's calibration (mode="auto"), in this process


class Tuner:
    """Hypergradient descent on whole training runs.

    ``hparams``: the starting values (the setup's defaults fill the rest);
    ``wrt``: the names to tune (default: all of ``hparams``).  With
    ``mode="auto"``, ``iterations`` (the hyper-iterations you will run, if
    known) lets the planner skip its calibration when that would cost more
    than a tenth of the run.
    """

    def __init__(self, setup: Setup, hparams: dict, wrt=None, *,
                 hyper_optimizer: Optimizer | None = None, mode: str = "auto",
                 chunk_size: int | None = None, max_hypergrad_norm: float | None = 10.0,
                 memory_budget: float | None = None, iterations: int | None = None):
        self.setup = setup
        self.h0 = setup.resolve(hparams)
        self.wrt = list(hparams) if wrt is None else list(wrt)
        if not self.wrt:
            raise ValueError("nothing to tune: give hparams or wrt")
        for k in self.wrt:
            if k not in self.h0:
                raise ValueError(f"unknown hyperparameter {k!r}; this setup has {sorted(self.h0)}")
        setup.check_tunable(self.wrt)
        self.hyper_optimizer = hyper_optimizer if hyper_optimizer is not None else Adam(lr=0.05)
        if max_hypergrad_norm is not None and not max_hypergrad_norm > 0:
            raise ValueError(f"max_hypergrad_norm must be positive, got {max_hypergrad_norm!r}")
        self.max_norm = max_hypergrad_norm
        self.chunk_size = chunk_size
        self.memory_budget = memory_budget
        self.mode = self.requested_mode = mode
        self.calibration_seconds = 0.0
        if mode == "auto":
            from .planner import plan
            K = sum(int(np.size(x)) for x in tree_leaves({k: self.h0[k] for k in self.wrt}))
            t0 = time.perf_counter()
            self.plan = plan(setup, K=K, memory_budget=memory_budget,
                             hparams={k: self.h0[k] for k in self.wrt}, iterations=iterations)
            self.calibration_seconds = _calibration_seconds(self.plan, time.perf_counter() - t0)
            self.mode = "forward" if self.plan.mode == "hd" else self.plan.mode
            if self.plan.chunk_size is not None and chunk_size is None:
                self.chunk_size = self.plan.chunk_size
        else:
            self.plan = None
        self.u = to_unconstrained(setup, self.h0, self.wrt)
        self.opt_state = self.hyper_optimizer.init(self.u)
        self.iteration = 0
        self.history: list[dict] = []
        self._calibration_unreported = self.calibration_seconds

    # -- one hyper-iteration ----------------------------------------------------
    def hparams(self) -> dict:
        return {**self.h0, **{k: tree_map(lambda a: np.asarray(primal_value(a)), v)
                              for k, v in from_unconstrained(self.setup, self.u).items()}}

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
            row.update(columns(k, h[k]))
        row.update({"val_loss": hg.value, "val_acc": hg.accuracy})
        for k in self.wrt:
            row.update(columns(f"d_{k}", hg.grads[k]))
        row.update({"hypergrad_norm": norm, "clipped": scale < 1.0, "seconds": hg.seconds,
                    "calibration_seconds": self._calibration_unreported, "mode": hg.mode})
        self._calibration_unreported = 0.0   # the first row this process writes carries it
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
    def settings(self) -> dict:
        """What must match for a checkpoint to be resumed by this tuner, as
        ``{setting: description}`` (strings; floats in full precision)."""
        s = self.setup
        out = {"model": _describe(s.model), "model parameters": _params_digest(s),
               "data": _data_digest(s.data), "optimizer": repr(s.optimizer),
               "steps": str(s.steps), "batch_size": str(s.batch_size), "seed": str(s.seed),
               "init_seed": str(s.init_seed), "dtype": str(np.dtype(s.dtype)),
               "hyper_optimizer": repr(self.hyper_optimizer), "mode": self.requested_mode,
               "max_hypergrad_norm": repr(self.max_norm), "tuned": ", ".join(self.wrt)}
        for k, v in self.h0.items():
            if v is None or isinstance(v, (bool, str)):
                continue
            vals = list(columns(k, v).values())
            out[f"initial {k}"] = repr(vals[0]) if len(vals) == 1 else repr(vals)
        return out

    def fingerprint(self) -> str:
        """A digest of `settings`."""
        return hashlib.sha256(json.dumps(self.settings(), sort_keys=True).encode()).hexdigest()

    def save(self, path: str) -> None:
        """Write the tuner's state to ``path`` atomically (an .npz archive, see the module
        docstring; the name is used as given)."""
        u_leaves = tree_flatten(self.u)[0]
        s_leaves = tree_flatten(self.opt_state)[0]
        arrays, kinds = {}, []
        for i, leaf in enumerate(u_leaves + s_leaves):
            kinds.append(_leaf_kind(leaf))
            arrays[f"leaf_{i}"] = np.asarray(primal_value(leaf))
        meta = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
                "settings": self.settings(), "iteration": self.iteration,
                "n_hyperparameter_leaves": len(u_leaves), "leaf_kinds": kinds,
                "history": self.history, "mode": self.mode, "chunk_size": self.chunk_size}
        arrays["meta"] = np.array(json.dumps(meta, default=_json_default))
        tmp = f"{path}.tmp.{os.getpid()}"
        try:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def load(self, path: str) -> None:
        """Restore the state saved by `save`.  Raises `CheckpointError` for a file that
        is not a readable checkpoint, `CheckpointMismatch` (naming the settings that
        differ) for one written with other settings."""
        meta, arrays = _read_checkpoint(path)
        theirs, ours = meta.get("settings", {}), self.settings()
        diffs = {k: (theirs.get(k, "(not set)"), ours.get(k, "(not set)"))
                 for k in list(ours) + [k for k in theirs if k not in ours]
                 if theirs.get(k) != ours.get(k)}
        if diffs:
            shown = "; ".join(f"{k}: {a} in the checkpoint, {b} now" for k, (a, b) in diffs.items())
            raise CheckpointMismatch(
                f"{path} was written by a run with other settings ({shown}); rerun with the same "
                "arguments, or without --resume to start again", diffs)
        u_leaves, u_def = tree_flatten(self.u)
        s_leaves, s_def = tree_flatten(self.opt_state)
        kinds = meta.get("leaf_kinds", [])
        n_u = meta.get("n_hyperparameter_leaves")
        try:
            stored = [_restore_leaf(arrays[f"leaf_{i}"], kinds[i]) for i in range(len(kinds))]
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise CheckpointError(f"{path} is damaged (its arrays do not match its index: "
                                  f"{type(e).__name__}: {e}); rerun without --resume") from None
        template = u_leaves + s_leaves
        if n_u != len(u_leaves) or len(stored) != len(template) or any(
                np.shape(a) != np.shape(primal_value(b)) for a, b in zip(stored, template)):
            raise CheckpointError(f"{path} holds a state of another structure than this tuner's "
                                  f"({len(stored)} arrays, expected {len(template)}); rerun "
                                  "without --resume")
        self.u = tree_unflatten(u_def, stored[:n_u])
        self.opt_state = tree_unflatten(s_def, stored[n_u:])
        self.iteration = int(meta["iteration"])
        self.history = list(meta["history"])
        # the planner's choice is part of the run: keep it, so the resumed run is the same
        self.mode, self.chunk_size = meta["mode"], meta["chunk_size"]

    # -- the loop ----------------------------------------------------------------
    def run(self, iterations: int, *, progress: bool = False, checkpoint: str | None = None,
            resume: bool = False, on_row=None) -> TuneResult:
        """Hyper-iterate until ``iterations`` are done in total (counting resumed ones;
        a checkpoint that already holds as many runs none), then evaluate the best row
        of the history and the first."""
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
        best = self.best_iteration()
        tuned = self._h_at(best)
        tuned_eval = self.evaluate(tuned)
        initial_eval = tuned_eval if best == 0 else self.evaluate(self._h_at(0))
        return TuneResult(list(self.history), self._h_at(0), tuned, best, initial_eval,
                          tuned_eval, time.perf_counter() - t0, int(peak),
                          self.calibration_seconds)

    def best_iteration(self) -> int:
        """The history row with the lowest validation loss (the first of ties; NaN last)."""
        if not self.history:
            raise ValueError("no history yet")
        loss = lambda i: self.history[i]["val_loss"]
        return min(range(len(self.history)),
                   key=lambda i: (math.isnan(loss(i)), loss(i) if not math.isnan(loss(i)) else 0))

    def _h_at(self, i: int) -> dict:
        """The hyperparameters of history row i (its columns, back in h0's structure)."""
        row, h = self.history[i], dict(self.h0)
        for k in self.wrt:
            leaves, treedef = tree_flatten(self.h0[k])
            flat = np.array([row[c] for c in columns(k, self.h0[k])])
            h[k] = tree_map(lambda a: float(a) if np.ndim(a) == 0 else a,
                            unflatten_like(flat, leaves, treedef))
        return h


def _calibration_seconds(plan, planning_seconds: float) -> float:
    """The seconds the planner spent calibrating: what the Plan records
    (``calibration_seconds``, None when it did not calibrate), or, from a planner
    that records nothing, the whole planning call."""
    if hasattr(plan, "calibration_seconds"):
        return float(plan.calibration_seconds or 0.0)
    return float(planning_seconds)


# -- checkpoint helpers ------------------------------------------------------------

def _leaf_kind(leaf) -> str:
    """How to give a stored array back its exact Python/numpy type."""
    leaf = primal_value(leaf)
    if isinstance(leaf, np.generic):   # before float: np.float64 is a float subclass
        return "scalar"
    if isinstance(leaf, bool):
        return "bool"
    if isinstance(leaf, int):
        return "int"
    if isinstance(leaf, float):
        return "float"
    if isinstance(leaf, np.ndarray):
        return "array"
    raise TypeError(f"cannot checkpoint a state leaf of type {type(leaf).__name__}")


def _restore_leaf(a: np.ndarray, kind: str):
    if kind == "bool":
        return bool(a)
    if kind == "int":
        return int(a)
    if kind == "float":
        return float(a)
    if kind == "scalar":
        return a[()]
    if kind == "array":
        return np.array(a)
    raise ValueError(f"unknown leaf kind {kind!r}")


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"{type(x).__name__} is not JSON-serializable")


def _read_checkpoint(path: str) -> tuple[dict, dict]:
    """``(meta, arrays)`` of a checkpoint file, or `CheckpointError` saying what it is."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise CheckpointError(f"cannot read the checkpoint {path}: {e.strerror or e}") from None
    if magic[:1] == b"\x80":
        raise CheckpointError(f"{path} is a pickle (an older checkpoint format, no longer read "
                              "because loading a pickle can run code); rerun without --resume")
    if magic != b"PK\x03\x04":
        raise CheckpointError(f"{path} is not a checkpoint (not an .npz archive: it starts with "
                              f"{magic!r}); rerun without --resume")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"][()]))
            arrays = {k: z[k] for k in z.files if k != "meta"}
    except Exception as e:  # a damaged archive fails in many ways (zip, zlib, json, ...)
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or damaged: "
                              f"{type(e).__name__}: {e}); rerun without --resume") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is an .npz archive but not a {CHECKPOINT_FORMAT}; "
                              "rerun without --resume")
    if meta.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} is a checkpoint of format version {meta.get('version')!r}; "
                              f"this version reads version {CHECKPOINT_VERSION}; rerun without "
                              "--resume")
    return meta, arrays


def _describe(model) -> str:
    """A model's repr, unless it is object's default one (which holds an address)."""
    r = repr(model)
    if " at 0x" in r:
        r = f"{type(model).__module__}.{type(model).__qualname__}"
    return r


def _digest(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(primal_value(a))
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _params_digest(setup: Setup) -> str:
    leaves = tree_leaves(setup.model.init(seed=setup.init_seed, dtype=setup.dtype))
    n = int(sum(np.size(primal_value(p)) for p in leaves))
    return f"{n} (initial values sha256 {_digest(leaves)})"


def _data_digest(data) -> str:
    parts = [np.asarray(a) for d in data[:3] for a in (d.x, d.y)]
    return (f"{len(data[0].x)} train, {len(data[1].x)} val, {len(data[2].x)} test examples "
            f"(sha256 {_digest(parts)})")


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
            w.writerow({k: repr(float(v)) if isinstance(v, float) else v for k, v in row.items()})
    os.replace(tmp, path)
