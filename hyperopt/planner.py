"""Which way to compute a hypergradient: forward, reverse, or one-step HD.

Three ways to get d(validation loss)/d(K hyperparameters) through T steps of
training a model with P parameters:

* forward mode carries K tangents through the run: time ~ T x (plain step +
  K x extra per direction), memory ~ (1 + K) x one step's working set, flat
  in T.  Chunks of c < K directions trade time for memory.
* reverse mode records the run on one tape: time ~ a few plain runs,
  whatever K is, but memory ~ T x what one step leaves on the tape.
* one-step hypergradient descent (`hyperopt.hd`) adapts the hyperparameters
  online from the last step only: cheapest of all, but greedy (biased toward
  short horizons), so it is the choice only when neither exact mode fits.

`calibrate` measures a setup's plain step (time, and the bytes its gradient
tape and temporaries take, with tracemalloc) and a forward step with one
tangent; `plan` turns those into estimates for each mode and picks one.  The
memory estimates are what tracemalloc would report as the peak of the run
above what was allocated before it (the data and the model are not counted).
"""
from __future__ import annotations

import math
import os
import time
import tracemalloc
from typing import NamedTuple

import numpy as np

from autodiff import grad
from autodiff.dual import dual
from autodiff.tree import tree_leaves, tree_map

__all__ = ["Calibration", "Estimate", "Plan", "calibrate", "plan", "default_memory_budget"]

# Reverse mode: a step's tape keeps the step's activations and parameters for
# the backward sweep, and the sweep over the whole run (forward-over-reverse of
# each step's gradient, transposed) roughly doubles that working set.
REVERSE_TIME_FACTOR = 4.0     # seconds per step / plain step seconds (measured on digits: 3-5)
HD_TIME_FACTOR = 1.3          # one extra dot product and update per step


class Calibration(NamedTuple):
    """Measured on a few steps of a setup."""
    n_params: int
    param_bytes: int          # all parameters, one copy
    state_bytes: int          # the optimizer's buffers
    step_bytes: int           # peak temporaries of one plain gradient step
    step_seconds: float       # one plain (eager) step
    tangent_seconds: float    # extra seconds per tangent direction per step (forward mode)
    tape_bytes_per_step: int  # what one recorded step leaves on a tape


class Estimate(NamedTuple):
    mode: str
    seconds: float
    bytes: float
    fits: bool
    chunk_size: int | None
    note: str


class Plan(NamedTuple):
    mode: str
    reason: str
    estimates: dict
    K: int
    T: int
    memory_budget: float
    chunk_size: int | None

    def table(self) -> str:
        rows = [f"{'mode':<8} {'time':>10} {'memory':>10}  fits  note"]
        for e in self.estimates.values():
            rows.append(f"{e.mode:<8} {_secs(e.seconds):>10} {_bytes(e.bytes):>10}  "
                        f"{'yes' if e.fits else 'no ':<4}  {e.note}")
        return "\n".join(rows)


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _secs(s: float) -> str:
    if s < 120:
        return f"{s:.2f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def default_memory_budget() -> float:
    """Half of this machine's physical memory (4 GiB if that is unknown)."""
    try:
        return 0.5 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 4.0 * 2**30


def _nbytes(tree) -> int:
    return int(sum(np.asarray(x).nbytes for x in tree_leaves(tree)))


def _peak(f) -> tuple[int, float]:
    """(tracemalloc peak above the start, seconds) of one call of f."""
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    f()
    secs = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] - base
    if not tracing:
        tracemalloc.stop()
    return max(int(peak), 0), secs


def calibrate(setup, repeats: int = 3) -> Calibration:
    """Measure ``setup``'s plain step and a one-tangent forward step (eager)."""
    h = setup.resolve({})
    opt_h = {k: h[k] for k in setup.optimizer.defaults}
    params = setup.init(h)
    state = setup.optimizer.init(params)
    x, y = setup.batch(0)
    step = lambda p, s: setup._raw_step(p, s, opt_h, 0.0, x, y)
    step(params, state)  # warm caches

    step_bytes, secs = min(_peak(lambda: step(params, state)) for _ in range(repeats))

    lr1 = {**opt_h}
    key = "lr" if "lr" in lr1 else next(iter(lr1))
    lr1[key] = dual(np.asarray(lr1[key], dtype=setup.dtype), np.ones((1,), dtype=setup.dtype))
    dstep = lambda p, s: setup._raw_step(p, s, lr1, 0.0, x, y)
    p1, s1 = dstep(params, state)          # parameters that carry a tangent
    t1 = min(_peak(lambda: dstep(p1, s1))[1] for _ in range(repeats))

    # one step recorded on a tape that stays alive: its size per step
    def recorded():
        def run(lr):
            p, s = params, state
            hh = {**opt_h, key: lr}
            for t in range(2):
                p, s = setup._raw_step(p, s, hh, 0.0, x, y)
            return sum(np.sum(q) for q in tree_leaves(p))
        grad(run)(np.asarray(opt_h[key], dtype=setup.dtype))
    tape2, _ = _peak(recorded)

    return Calibration(
        n_params=int(sum(np.size(p) for p in tree_leaves(params))),
        param_bytes=_nbytes(params),
        state_bytes=_nbytes([b for b in tree_leaves(state) if np.ndim(b) > 0]),
        step_bytes=step_bytes, step_seconds=secs,
        tangent_seconds=max(t1 - secs, 0.1 * secs), tape_bytes_per_step=max(tape2 // 2, step_bytes))


def _forward_bytes(c: Calibration, k: int) -> float:
    # (1 + k) copies of: new params, new state, and one step's temporaries
    return (1 + k) * (c.param_bytes + c.state_bytes + c.step_bytes)


def plan(setup=None, *, K: int, T: int | None = None, memory_budget: float | None = None,
         time_budget: float | None = None, calibration: Calibration | None = None) -> Plan:
    """Estimate forward, reverse and one-step HD for K hyperparameters over T steps,
    and pick one.

    Exact modes come first: of forward (chunked if all K directions do not fit)
    and reverse, the faster one that fits ``memory_budget`` (bytes; default
    half the machine's memory) and ``time_budget`` (seconds, default none).
    One-step HD is picked only when no exact mode fits.
    """
    if not isinstance(K, (int, np.integer)) or K < 1:
        raise ValueError(f"K must be a positive integer, got {K!r}")
    c = calibration if calibration is not None else calibrate(setup)
    T = setup.steps if T is None else T
    if not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"T must be a positive integer, got {T!r}")
    budget = default_memory_budget() if memory_budget is None else float(memory_budget)
    if not budget > 0:
        raise ValueError(f"memory_budget must be positive, got {memory_budget!r}")
    tmax = math.inf if time_budget is None else float(time_budget)

    step_k = lambda k: c.step_seconds + k * c.tangent_seconds
    # forward: the largest chunk that fits
    chunk = K
    while chunk > 1 and _forward_bytes(c, chunk) > budget:
        chunk = max(1, chunk // 2)
    passes = math.ceil(K / chunk)
    fwd = Estimate("forward", T * passes * step_k(chunk), _forward_bytes(c, chunk),
                   _forward_bytes(c, chunk) <= budget, None if chunk == K else chunk,
                   f"{passes} pass(es) of {chunk} tangent(s); memory flat in T")
    rev_bytes = T * c.tape_bytes_per_step + 2 * (c.param_bytes + c.state_bytes + c.step_bytes)
    rev = Estimate("reverse", T * REVERSE_TIME_FACTOR * c.step_seconds, rev_bytes,
                   rev_bytes <= budget, None, "one tape of the whole run; memory grows with T")
    hd_bytes = c.param_bytes * 2 + c.state_bytes + c.step_bytes
    hd = Estimate("hd", T * HD_TIME_FACTOR * c.step_seconds, hd_bytes, hd_bytes <= budget, None,
                  "online, greedy one-step hypergradient (biased to short horizons)")
    est = {"forward": fwd, "reverse": rev, "hd": hd}

    exact = [e for e in (fwd, rev) if e.fits and e.seconds <= tmax]
    if exact:
        best = min(exact, key=lambda e: e.seconds)
        other = rev if best is fwd else fwd
        why = (f"{best.mode} is exact and fits the budget ({_bytes(best.bytes)} <= {_bytes(budget)})"
               + (f"; it is faster than {other.mode} ({_secs(best.seconds)} vs "
                  f"{_secs(other.seconds)})" if other.fits else
                  f"; {other.mode} would need {_bytes(other.bytes)}"))
        return Plan(best.mode, why, est, K, T, budget, best.chunk_size)
    why = ("no exact mode fits: forward needs "
           f"{_bytes(fwd.bytes)} / {_secs(fwd.seconds)}, reverse {_bytes(rev.bytes)} / "
           f"{_secs(rev.seconds)} (budget {_bytes(budget)}"
           + ("" if time_budget is None else f", {_secs(tmax)}") + "); one-step HD instead")
    return Plan("hd", why, est, K, T, budget, None)
