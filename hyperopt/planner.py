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

`calibrate` runs the setup's own code for a few steps, eagerly, under
tracemalloc: a plain step, forward passes of 2 and 4 steps with 1 and 2
tangent directions, and reverse-mode tapes of 2 and 4 steps.  Forward memory
is modelled as base + k x (bytes per tangent), independent of T; reverse
memory as base + T x (tape bytes per step); times as T x the measured cost of
one step.  `plan` extrapolates those to the asked K and T, and picks.  The
memory estimates are what tracemalloc reports as the peak of the run above
what was allocated before it (the data and the model are not counted); the
time estimates are for eager execution (jit replay makes forward mode faster
still on small models).

Calibration has a cost of its own: a few hundred to a few thousand plain
steps' worth (about 500 + 400 K), which on a short run is more than the run.
`plan` records the seconds it spent calibrating in ``Plan.calibration_seconds``
(None when it did not calibrate).  Given ``iterations`` (the number of
hypergradients the run will compute, e.g. a tuner's hyper-iterations), it
first probes the setup cheaply (`probe`: parameter and optimizer-state sizes,
the time and traced peak of one plain step, the time of one validation loss),
estimates the run (iterations x T x a forward step) and the calibration, and
calibrates only when that costs at most ``max_calibration_share`` (10%) of
the run.  Otherwise it picks forward mode from the probe alone when forward's
rough memory, (1 + K) x (parameters + optimizer state + one step's
temporaries), fits the budget with a 4x margin and K is small enough that
reverse mode cannot be much faster; if not, it calibrates anyway.
``Plan.reason`` says which way it went and why.
"""
from __future__ import annotations

import math
import os
import time
import tracemalloc
from typing import NamedTuple

import numpy as np

from autodiff.tree import tree_leaves

__all__ = ["Calibration", "Estimate", "Plan", "Probe", "calibrate", "plan", "probe",
           "default_memory_budget", "CALIBRATION_SHARE"]

REVERSE_MARGIN = 1.5          # reverse is picked over forward only when this much faster
HD_TIME_FACTOR = 1.3          # one extra dot product and update per step
CALIBRATION_SHARE = 0.10      # calibrate only when it costs at most this share of the run
# rough costs, in plain eager steps, for the estimates made without calibrating
# (measured on the MLP and the character LSTM, within about 2x):
CAL_BASE_STEPS, CAL_STEPS_PER_TANGENT = 500.0, 400.0   # calibrate() with K directions
ROUGH_FORWARD_STEP, ROUGH_TANGENT = 1.0, 0.5           # a forward step: 1 + K/2 plain steps
ROUGH_REVERSE_STEP = 5.0                               # recording a step and sweeping it back
ROUGH_MEMORY_MARGIN = 4.0     # forward without calibration only when 4x its rough memory fits


class Calibration(NamedTuple):
    """Measured on a few steps of a setup."""
    n_params: int
    param_bytes: int          # all parameters, one copy
    state_bytes: int          # the optimizer's buffers
    step_bytes: int           # peak temporaries of one plain gradient step
    step_seconds: float       # one plain (eager) step
    tangent_seconds: float    # extra seconds per tangent direction per step (forward mode)
    forward_step_seconds: float  # a forward step's cost apart from its tangents
    tape_bytes_per_step: int  # what one recorded step leaves on a tape
    forward_base_bytes: int   # forward-mode peak = base + k x per tangent (k directions)
    forward_bytes_per_tangent: int
    reverse_base_bytes: int   # reverse-mode peak = base + T x tape bytes per step
    reverse_step_seconds: float  # recording one step and sweeping it back


class Estimate(NamedTuple):
    mode: str
    seconds: float
    bytes: float
    fits: bool
    chunk_size: int | None
    note: str


class Probe(NamedTuple):
    """What `probe` measures in a few plain steps (no tangents, no tape)."""
    n_params: int
    param_bytes: int          # all parameters, one copy
    state_bytes: int          # the optimizer's buffers
    step_bytes: int           # traced peak temporaries of one plain gradient step
    step_seconds: float       # one plain eager step
    eval_seconds: float       # one validation loss
    seconds: float            # what probing took


class Plan(NamedTuple):
    """The planner's choice.  ``calibration_seconds``: the seconds this call of
    `plan` spent calibrating (None when it did not calibrate: a calibration was
    given, or the cheap path was taken)."""
    mode: str
    reason: str
    estimates: dict
    K: int
    T: int
    memory_budget: float
    chunk_size: int | None
    calibration_seconds: float | None = None

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


def _seconds(f, repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best


def calibrate(setup, hparams: dict | None = None, repeats: int = 2) -> Calibration:
    """Measure short runs of ``setup`` differentiated w.r.t. ``hparams``
    (default: the lr), from which `plan` extrapolates.

    Memory: eager runs under tracemalloc (forward with 1 and 2 tangents,
    reverse tapes of 2 and 4 steps).  Time: without tracemalloc, as the
    difference between runs of 10 and 2 steps (which cancels the fixed costs),
    forward with the setup's own jit setting (the programs recorded here are
    reused by the real run), reverse eagerly (a tape cannot be replayed).
    """
    from dataclasses import replace
    hp = dict(hparams) if hparams else {"lr": setup.resolve({})["lr"]}
    K = sum(int(np.size(v)) for v in tree_leaves(hp))
    eager = lambda T: replace(setup, steps=T, jit=False, check_every=0, _steppers={})
    same = lambda T: replace(setup, steps=T, check_every=0)   # shares the jit programs
    h = setup.resolve(hp)
    params = setup.init(h)
    state = setup.optimizer.init(params)

    # memory (eager, traced)
    opt_h = {k: h[k] for k in setup.optimizer.defaults}
    x, y = setup.batch(0)
    step = lambda: setup._raw_step(params, state, opt_h, None, x, y)
    step()
    step_bytes = min(_peak(step)[0] for _ in range(repeats))
    fwd_mem = lambda k: min(_peak(lambda: eager(2).hypergradient(hp, chunk_size=k))[0]
                            for _ in range(repeats))
    fwd_mem(1)  # warm caches
    m1 = fwd_mem(1)
    per_dir = max((fwd_mem(2) - m1) if K >= 2 else m1 // 2, 1)
    rev_mem = lambda T: min(_peak(lambda: eager(T).hypergradient(hp, mode="reverse"))[0]
                            for _ in range(repeats))
    r2, r4 = rev_mem(2), rev_mem(4)
    tape = max((r4 - r2) // 2, 1)

    # time (untraced): per step = (run of 10 steps - run of 2 steps) / 8, best of a few
    def per_step(run, floor=1e-7):
        run(2)  # warm up (and, with jit, record)
        n = max(repeats, 3)
        return max((_seconds(lambda: run(10), n) - _seconds(lambda: run(2), n)) / 8, floor)

    plain = per_step(lambda T: same(T).train(h))
    # a chunk of k < K directions takes ceil(K / k) passes: time per pass
    f1 = per_step(lambda T: same(T).hypergradient(hp, chunk_size=1)) / K
    f2 = (per_step(lambda T: same(T).hypergradient(hp, chunk_size=2)) / math.ceil(K / 2)
          if K >= 2 else None)
    per_tangent = max((f2 - f1) if f2 is not None else f1 - plain, 0.05 * plain)
    rev_t = per_step(lambda T: eager(T).hypergradient(hp, mode="reverse"), floor=plain)
    return Calibration(
        n_params=int(sum(np.size(p) for p in tree_leaves(params))),
        param_bytes=_nbytes(params),
        state_bytes=_nbytes([b for b in tree_leaves(state) if np.ndim(b) > 0]),
        step_bytes=step_bytes, step_seconds=plain, tangent_seconds=per_tangent,
        forward_step_seconds=max(f1 - per_tangent, plain),  # never below a plain step
        tape_bytes_per_step=tape, forward_base_bytes=max(m1 - per_dir, 0),
        forward_bytes_per_tangent=per_dir, reverse_base_bytes=max(r2 - 2 * tape, 0),
        reverse_step_seconds=rev_t)


def probe(setup, hparams: dict | None = None) -> Probe:
    """Measure ``setup`` cheaply: sizes of the parameters and the optimizer state,
    the time of one plain eager step (best of two, after a warm-up step), the
    traced peak of one more, and the time of one validation loss; a handful of
    plain steps in all."""
    t_start = time.perf_counter()
    h = setup.resolve(dict(hparams) if hparams else {})
    params = setup.init(h)
    state = setup.optimizer.init(params)
    opt_h = {k: h[k] for k in setup.optimizer.defaults}
    x, y = setup.batch(0)
    step = lambda: setup._raw_step(params, state, opt_h, None, x, y)
    step()   # warm-up
    secs = _seconds(step, 2)
    step_bytes = _peak(step)[0]
    d = setup.data.val
    xv = np.asarray(d.x, dtype=setup.dtype) if np.issubdtype(np.asarray(d.x).dtype,
                                                               np.floating) else d.x
    t0 = time.perf_counter()
    setup.loss(params, xv, d.y)
    ev = time.perf_counter() - t0
    return Probe(n_params=int(sum(np.size(p) for p in tree_leaves(params))),
                 param_bytes=_nbytes(params),
                 state_bytes=_nbytes([b for b in tree_leaves(state) if np.ndim(b) > 0]),
                 step_bytes=step_bytes, step_seconds=max(secs, 1e-7), eval_seconds=ev,
                 seconds=time.perf_counter() - t_start)


def _rough_estimates(p: Probe, K: int, T: int, budget: float) -> dict:
    """Forward, reverse and HD estimated from a probe alone (no calibration)."""
    s = p.step_seconds
    fwd_bytes = (1 + K) * (p.param_bytes + p.state_bytes + p.step_bytes)
    fwd = Estimate("forward", T * s * (ROUGH_FORWARD_STEP + ROUGH_TANGENT * K) + p.eval_seconds,
                   fwd_bytes, fwd_bytes <= budget, None,
                   f"rough (not calibrated): {K} tangent(s); memory flat in T")
    rev_bytes = T * (p.step_bytes + p.param_bytes + p.state_bytes)
    rev = Estimate("reverse", T * s * ROUGH_REVERSE_STEP + p.eval_seconds, rev_bytes,
                   rev_bytes <= budget, None, "rough (not calibrated): memory grows with T")
    hd_bytes = p.param_bytes * 2 + p.state_bytes + p.step_bytes
    hd = Estimate("hd", T * HD_TIME_FACTOR * s, hd_bytes, hd_bytes <= budget, None,
                  "rough (not calibrated): online, greedy one-step hypergradient")
    return {"forward": fwd, "reverse": rev, "hd": hd}


def _forward_bytes(c: Calibration, k: int) -> float:
    return c.forward_base_bytes + k * c.forward_bytes_per_tangent


def plan(setup=None, *, K: int, T: int | None = None, memory_budget: float | None = None,
         time_budget: float | None = None, calibration: Calibration | None = None,
         hparams: dict | None = None, iterations: int | None = None,
         max_calibration_share: float = CALIBRATION_SHARE) -> Plan:
    """Estimate forward, reverse and one-step HD for K hyperparameters over T steps,
    and pick one.

    Exact modes come first: of forward (chunked if all K directions do not fit)
    and reverse, the faster one that fits ``memory_budget`` (bytes; default
    half the machine's memory) and ``time_budget`` (seconds per hypergradient,
    default none).  One-step HD is picked only when no exact mode fits.

    The estimates come from ``calibration`` if given, else from calibrating
    ``setup`` now (`calibrate`, w.r.t. ``hparams``); ``Plan.calibration_seconds``
    is the time that took.  ``iterations``, the number of hypergradients the
    run will compute (a tuner's hyper-iterations; 1 for a single
    `hypergradient`), lets the planner weigh that cost: it probes the setup
    (`probe`, a few plain steps), and when calibrating would cost more than
    ``max_calibration_share`` of the estimated run it decides from the probe
    instead (forward mode, when its rough memory fits the budget with a
    margin and K is small enough that reverse cannot be much faster), saying
    so in ``Plan.reason``.  Without ``iterations`` it always calibrates.
    """
    if not isinstance(K, (int, np.integer)) or K < 1:
        raise ValueError(f"K must be a positive integer, got {K!r}")
    if T is None:
        T = setup.steps
    if not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"T must be a positive integer, got {T!r}")
    budget = default_memory_budget() if memory_budget is None else float(memory_budget)
    if not budget > 0:
        raise ValueError(f"memory_budget must be positive, got {memory_budget!r}")
    if iterations is not None and (not isinstance(iterations, (int, np.integer))
                                   or isinstance(iterations, bool) or iterations < 1):
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
    if not max_calibration_share >= 0:
        raise ValueError(f"max_calibration_share must be >= 0, got {max_calibration_share!r}")
    tmax = math.inf if time_budget is None else float(time_budget)

    cal_seconds, cost_note = None, ""
    if calibration is not None:
        c = calibration
    else:
        if iterations is not None:
            pr = probe(setup, hparams)
            run_s = iterations * (T * pr.step_seconds * (ROUGH_FORWARD_STEP + ROUGH_TANGENT * K)
                                  + pr.eval_seconds)
            cal_s = pr.step_seconds * (CAL_BASE_STEPS + CAL_STEPS_PER_TANGENT * K)
            share = f"{max_calibration_share:.0%}"
            run_desc = (f"the run's estimated {_secs(run_s)} ({iterations} hypergradient"
                        f"{'' if iterations == 1 else 's'} of {T} steps)")
            if cal_s > max_calibration_share * run_s:
                est = _rough_estimates(pr, K, T, budget)
                fwd, rev = est["forward"], est["reverse"]
                cheap = (f"calibrating would take about {_secs(cal_s)}, more than {share} of "
                         f"{run_desc}")
                fits = ROUGH_MEMORY_MARGIN * fwd.bytes <= budget
                competitive = fwd.seconds <= REVERSE_MARGIN * rev.seconds
                if fits and competitive and fwd.seconds <= tmax:
                    why = (f"forward, chosen without calibrating: {cheap}; forward's rough memory, "
                           f"(1 + K) x (parameters + optimizer state + one step's temporaries) = "
                           f"{_bytes(fwd.bytes)}, fits the budget ({_bytes(budget)}) "
                           f"{ROUGH_MEMORY_MARGIN:g}x over, and with K={K} reverse cannot be "
                           "much faster")
                    return Plan("forward", why, est, K, T, budget, None, None)
                if not fits:
                    cost_note = (f"; calibrated although {cheap}, because forward's rough memory "
                                 f"({_bytes(fwd.bytes)}) does not fit the budget "
                                 f"{ROUGH_MEMORY_MARGIN:g}x over")
                elif not competitive:
                    cost_note = (f"; calibrated although {cheap}, because with K={K} directions "
                                 "reverse mode may be faster, which only calibration can tell")
                else:
                    cost_note = (f"; calibrated although {cheap}, because forward's rough time "
                                 f"({_secs(fwd.seconds)}) is over the time budget")
        t0 = time.perf_counter()
        c = calibrate(setup, hparams)
        cal_seconds = time.perf_counter() - t0
        if not cost_note:
            cost_note = f"; calibrating took {_secs(cal_seconds)}"
            if iterations is not None:
                cost_note += f", about {cal_seconds / max(run_s, 1e-9):.0%} of {run_desc}"
        else:
            cost_note += f" (it took {_secs(cal_seconds)})"

    step_k = lambda k: c.forward_step_seconds + k * c.tangent_seconds
    # forward: the largest chunk that fits
    chunk = K
    while chunk > 1 and _forward_bytes(c, chunk) > budget:
        chunk = max(1, chunk // 2)
    passes = math.ceil(K / chunk)
    fwd = Estimate("forward", T * passes * step_k(chunk), _forward_bytes(c, chunk),
                   _forward_bytes(c, chunk) <= budget, None if chunk == K else chunk,
                   f"{passes} pass(es) of {chunk} tangent(s); memory flat in T")
    rev_bytes = c.reverse_base_bytes + T * c.tape_bytes_per_step
    rev = Estimate("reverse", T * c.reverse_step_seconds, rev_bytes,
                   rev_bytes <= budget, None, "one tape of the whole run; memory grows with T")
    hd_bytes = c.param_bytes * 2 + c.state_bytes + c.step_bytes
    hd = Estimate("hd", T * HD_TIME_FACTOR * c.step_seconds, hd_bytes, hd_bytes <= budget, None,
                  "online, greedy one-step hypergradient (biased to short horizons)")
    est = {"forward": fwd, "reverse": rev, "hd": hd}

    exact = [e for e in (fwd, rev) if e.fits and e.seconds <= tmax]
    if exact:
        # forward's memory does not grow with T: reverse must win on time by a clear margin
        best = min(exact, key=lambda e: e.seconds * (REVERSE_MARGIN if e is rev else 1.0))
        other = rev if best is fwd else fwd
        if not other.fits:
            vs = f"; {other.mode} would need {_bytes(other.bytes)}"
        elif best.seconds <= other.seconds:
            vs = (f"; it is faster than {other.mode} ({_secs(best.seconds)} vs "
                  f"{_secs(other.seconds)} per hypergradient)")
        else:
            vs = (f"; reverse ({_secs(other.seconds)}) is not {REVERSE_MARGIN:g}x faster, and "
                  "forward's memory stays flat")
        why = (f"{best.mode} is exact and fits the budget ({_bytes(best.bytes)} <= "
               f"{_bytes(budget)})" + vs + cost_note)
        return Plan(best.mode, why, est, K, T, budget, best.chunk_size, cal_seconds)
    why = ("no exact mode fits: forward needs "
           f"{_bytes(fwd.bytes)} / {_secs(fwd.seconds)}, reverse {_bytes(rev.bytes)} / "
           f"{_secs(rev.seconds)} (budget {_bytes(budget)}"
           + ("" if time_budget is None else f", {_secs(tmax)}") + "); one-step HD instead"
           + cost_note)
    return Plan("hd", why, est, K, T, budget, None, cal_seconds)
