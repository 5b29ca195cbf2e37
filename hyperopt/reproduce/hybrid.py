"""The hybrid forward-over-reverse hypergradient: this library's own design claims.

Running the reverse-mode gradient tape of every training step on dual numbers
gives d(validation loss after T steps)/d(hyperparameters) in one forward pass
whose memory does not depend on T (docs/design.md, "The one idea").  Checked
here, on a quadratic (linear least squares) and on a digits MLP:

* forward mode equals reverse mode over the unrolled run (1e-8 relative), and
  both equal central finite differences of the validation loss;
* the forward pass's peak allocation at T = 10,000 steps is within 1.5x of
  its peak at T = 100 (quick mode: 2,000 against 100), while reverse mode's
  grows with T.

Peaks are measured in this process with `tracemalloc` (numpy reports its
array buffers to it), after a warm-up run that has recorded and compiled the
jit-ed step, so only the run's own allocations count.
"""
from __future__ import annotations

import os
import time
import tracemalloc
import warnings

import numpy as np

from ._claims import Claim, Report
from ._common import jit_backend, progress_bar, write_csv

PAPER = "hybrid"
TITLE = ("Hybrid forward-over-reverse hypergradients: the reverse tape run on dual numbers "
         "(this library's design, docs/design.md)")
SOURCE = "this library's design (docs/design.md)"
FD_REL_STEP = 1e-4     # central differences: relative step in each hyperparameter
FD_TOL = 1e-6          # relative tolerance, finite differences against forward mode
FWD_REV_TOL = 1e-8     # relative tolerance, forward against reverse mode
MEM_RATIO = 1.5


class Quadratic:
    """Linear least squares: loss(w) = mean((x @ w - y)^2) / 2, a quadratic in w."""

    name = "quadratic"

    def __init__(self, n_features: int):
        self.n_features = n_features

    def init(self, seed: int = 0, scale=1.0, dtype=np.float64):
        rng = np.random.default_rng(seed)
        return {"w": (0.1 * rng.standard_normal(self.n_features)).astype(dtype) * scale}

    def loss(self, params, x, y):
        r = x @ params["w"] - y
        return 0.5 * np.mean(r * r)


def _quadratic_data(seed: int = 0):
    from ..data import Split

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((300, 10))
    y = x @ rng.standard_normal(10) + 0.1 * rng.standard_normal(300)
    return Split.from_arrays(x, y, val=0.2, test=0.2, seed=seed)


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def _central_fd(setup, h: dict, name: str) -> float:
    """d(validation loss)/d(h[name]) by central differences with steps d and d/2
    (d = FD_REL_STEP * h[name]), Richardson-extrapolated: (4 D(d/2) - D(d)) / 3, whose
    truncation error is O(d^4) instead of O(d^2)."""
    from ..hypergrad import val_loss_of

    def central(step):
        # numpy scalars: inputs of the jit-ed step, not constants that force a new recording
        up = float(val_loss_of(setup, {**h, name: np.float64(h[name] + step)})[0])
        down = float(val_loss_of(setup, {**h, name: np.float64(h[name] - step)})[0])
        return (up - down) / (2 * step)

    d = FD_REL_STEP * abs(float(h[name]))
    return (4 * central(d / 2) - central(d)) / 3


def _agreement(label: str, setup, h: dict):
    """Forward, reverse and finite differences for every hyperparameter in ``h``."""
    from ..hypergrad import hypergradient

    fwd = hypergradient(setup, h, mode="forward")
    rev = hypergradient(setup, h, mode="reverse")
    rows = []
    for name in h:
        f, r = float(fwd.natural[name]), float(rev.natural[name])
        fd = _central_fd(setup, h, name)
        rows.append({"experiment": "agreement", "problem": label, "hyperparameter": name,
                     "T": setup.steps, "forward": f, "reverse": r, "finite_difference": fd,
                     "rel_fwd_rev": _rel(f, r), "rel_fwd_fd": _rel(f, fd),
                     "forward_seconds": fwd.seconds, "reverse_seconds": rev.seconds})
    return rows


def _peak_bytes(fn) -> int:
    """Peak bytes allocated (Python objects and numpy buffers) while ``fn()`` runs."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def _memory(label: str, setup, h: dict, forward_T: list, reverse_T: list, bar):
    from ..hypergrad import hypergradient
    from autodiff.jit import COMPILE_AFTER

    rows = []
    # warm-up: record the step (and, with numba, let jit compile it after COMPILE_AFTER
    # replays), so no run below pays for recording or compiling inside the measurement
    setup.steps = 5 if os.environ.get("AUTODIFF_JIT_BACKEND") == "python" else COMPILE_AFTER + 20
    hypergradient(setup, h, mode="forward")
    for mode, Ts in (("forward", forward_T), ("reverse", reverse_T)):
        for T in Ts:
            setup.steps = T
            t0 = time.perf_counter()
            peak = _peak_bytes(lambda: hypergradient(setup, h, mode=mode))
            rows.append({"experiment": "memory", "problem": label, "mode": mode, "T": T,
                         "peak_bytes": peak, "seconds": time.perf_counter() - t0})
            if bar is not None:
                bar.update(1)
    return rows


def _plot(path: str, agree: list, mem: list, mem_label: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.5))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    labels = [f"{r['problem']}\n{r['hyperparameter']}" for r in agree]
    x = np.arange(len(agree))
    tiny = 1e-17  # exact agreement drawn at the floor of the log axis
    ax1.bar(x - 0.2, [max(r["rel_fwd_rev"], tiny) for r in agree], 0.4,
            label="forward vs reverse")
    ax1.bar(x + 0.2, [max(r["rel_fwd_fd"], tiny) for r in agree], 0.4,
            label="forward vs central differences")
    ax1.axhline(FWD_REV_TOL, color="C0", ls="--", lw=1, label=f"tolerance {FWD_REV_TOL:g}")
    ax1.axhline(FD_TOL, color="C1", ls="--", lw=1, label=f"tolerance {FD_TOL:g}")
    ax1.set_yscale("log")
    ax1.set_xticks(x)
    ax1.set_xticklabels(labels, fontsize=8)
    ax1.set_ylabel("relative difference")
    ax1.set_title("Hypergradient d(val loss)/d(hyperparameter)")
    ax1.legend(fontsize=8)
    for mode, marker in (("forward", "o-"), ("reverse", "s-")):
        pts = sorted((r["T"], r["peak_bytes"]) for r in mem if r["mode"] == mode)
        if pts:
            ax2.plot([p[0] for p in pts], [p[1] / 2**20 for p in pts], marker, label=f"{mode} mode")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("training steps T")
    ax2.set_ylabel("peak allocation during the hypergradient (MiB)")
    ax2.set_title(f"Peak memory against T ({mem_label})")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run(quick: bool, out_dir: str, progress: bool = True) -> Report:
    from ..data import digits
    from ..hypergrad import Setup
    from ..models import MLP
    from ..optim import SGD

    os.makedirs(out_dir, exist_ok=True)
    if quick:
        quad_T, digits_T, digits_sizes = 30, 20, (64, 8, 10)
        mem_sizes, fwd_T, rev_T = (64, 32, 10), [100, 1_000], [10, 40]
    else:
        quad_T, digits_T, digits_sizes = 100, 100, (64, 32, 10)
        mem_sizes, fwd_T, rev_T = (64, 64, 10), [100, 1_000, 10_000], [25, 100, 400]
    h = {"lr": 0.05, "momentum": 0.9}
    bar = progress_bar(2 + len(fwd_T) + len(rev_T), "hybrid: checks", progress)

    quad = Setup(Quadratic(10), _quadratic_data(), SGD(lr=0.05, momentum=0.9), steps=quad_T,
                 batch_size=32)
    split = digits(seed=0)
    dig = Setup(MLP(digits_sizes), split, SGD(lr=0.05, momentum=0.9), steps=digits_T,
                batch_size=64)
    agree = []
    # quick mode replays jit-ed steps in Python: no numba compile (seconds each) in a test
    with warnings.catch_warnings(), jit_backend("python" if quick else None):
        warnings.simplefilter("ignore", RuntimeWarning)
        problems = ((f"quadratic (T={quad_T})", quad), (f"digits MLP (T={digits_T})", dig))
        for label, setup in problems:
            agree += _agreement(label, setup, h)
            if bar is not None:
                bar.update(1)
        mem_label = f"digits MLP {'-'.join(map(str, mem_sizes))}, batch 64, K=2"
        mem_setup = Setup(MLP(mem_sizes), split, SGD(lr=0.05, momentum=0.9), steps=100,
                          batch_size=64)
        mem = _memory(mem_label, mem_setup, h, fwd_T, rev_T, bar)
    if bar is not None:
        bar.close()

    claims = []
    for problem in dict.fromkeys(r["problem"] for r in agree):
        rows = [r for r in agree if r["problem"] == problem]
        worst_rev = max(r["rel_fwd_rev"] for r in rows)
        worst_fd = max(r["rel_fwd_fd"] for r in rows)
        vals = ", ".join(f"d/d{r['hyperparameter']} = {r['forward']:.10g}" for r in rows)
        claims.append(Claim(
            f"forward = reverse, {problem}", "forward and reverse hypergradients agree to rounding",
            SOURCE, f"{vals}; largest relative difference {worst_rev:.1e}",
            f"relative difference <= {FWD_REV_TOL:g}", worst_rev <= FWD_REV_TOL,
            exact=True, quick_ok=True))
        fds = ", ".join(f"d/d{r['hyperparameter']}: FD {r['finite_difference']:.10g}" for r in rows)
        claims.append(Claim(
            f"forward = central differences, {problem}",
            "the hypergradient is the derivative of the validation loss", SOURCE,
            f"{fds}; largest relative difference {worst_fd:.1e}",
            f"relative difference <= {FD_TOL:g} (central differences, relative steps "
            f"{FD_REL_STEP:g} and {FD_REL_STEP / 2:g}, Richardson-extrapolated, float64)",
            worst_fd <= FD_TOL, exact=True, quick_ok=True))
    fwd = {r["T"]: r["peak_bytes"] for r in mem if r["mode"] == "forward"}
    t_lo, t_hi = min(fwd), max(fwd)
    ratio = fwd[t_hi] / fwd[t_lo]
    claims.append(Claim(
        f"forward-mode memory flat in T ({t_hi:,} vs {t_lo:,} steps)",
        "memory O((1+K)P), independent of T", SOURCE,
        f"peak {fwd[t_hi] / 2**10:.0f} KiB at T={t_hi:,} vs {fwd[t_lo] / 2**10:.0f} KiB at "
        f"T={t_lo:,}: ratio {ratio:.2f}",
        f"peak(T={t_hi:,}) <= {MEM_RATIO} x peak(T={t_lo:,})", ratio <= MEM_RATIO,
        exact=False, quick_ok=True))
    rev = {r["T"]: r["peak_bytes"] for r in mem if r["mode"] == "reverse"}
    r_lo, r_hi = min(rev), max(rev)
    rratio = rev[r_hi] / rev[r_lo]
    claims.append(Claim(
        f"reverse-mode memory grows with T ({r_hi} vs {r_lo} steps)",
        "reverse over the unrolled run needs O(T P)", SOURCE,
        f"peak {rev[r_hi] / 2**20:.1f} MiB at T={r_hi} vs {rev[r_lo] / 2**20:.1f} MiB at "
        f"T={r_lo}: ratio {rratio:.1f} for {r_hi / r_lo:.0f}x the steps",
        f"peak(T={r_hi}) >= {r_hi / r_lo / 2:.0f} x peak(T={r_lo}) "
        "(at least half of linear growth)",
        rratio >= r_hi / r_lo / 2, exact=False, quick_ok=True))

    csv_path = os.path.join(out_dir, f"{PAPER}.csv")
    png_path = os.path.join(out_dir, f"{PAPER}.png")
    write_csv(csv_path, agree + mem)
    _plot(png_path, agree, mem, mem_label)
    settings = (
        f"Hyperparameters: SGD lr = 0.05 and momentum = 0.9 (K = 2 directions), float64, jit on. "
        f"Agreement: a linear least-squares problem (10 features, 180 training rows, batch 32, "
        f"T = {quad_T}) and a tanh MLP {'-'.join(map(str, digits_sizes))} on digits (batch 64, "
        f"T = {digits_T}); reverse mode records the whole run on one tape, so T stays short. "
        f"Finite differences are central, with steps of {FD_REL_STEP:g} and "
        f"{FD_REL_STEP / 2:g} times each hyperparameter, Richardson-extrapolated (truncation "
        f"error O(step^4)): plain central differences were not enough, since the validation "
        f"loss after 100 steps with momentum 0.9 is strongly curved in the momentum (their "
        f"error there is about 1e-6 at a step of 1e-5 and 1e-4 at 1e-4), while the "
        f"extrapolated ones agree with forward mode to about 1e-9 on these losses; a "
        f"{FD_TOL:g} tolerance leaves a margin of 100x or more, and a wrong derivative rule "
        f"(an error of 1e-3 or more) cannot pass. "
        f"Memory: the workload of benchmarks/hypergrad_memory.py at a smaller or equal size "
        f"({mem_label}); forward mode at T = {', '.join(f'{t:,}' for t in fwd_T)}, reverse "
        f"mode at T = {', '.join(map(str, rev_T))}; each peak is tracemalloc's (Python objects "
        f"and numpy buffers) over one hypergradient call in this process, after a warm-up run "
        f"that records (in full mode also compiles) the jit-ed step. Quick mode runs the "
        f"jit-ed step as a Python replay (no numba compile inside a test); there the peak "
        f"grows by about 90 KiB over the first 2,000 steps and then stays put (a bounded "
        f"cache of the replay), which is why quick mode uses a larger model than the 64-8-10 "
        f"of its agreement checks. The benchmark script measures the "
        f"process's resident set instead, in fresh subprocesses, up to T = 100,000."
        + (" Quick mode: the smaller sizes and T above, seconds in all." if quick else ""))
    return Report(PAPER, TITLE, claims, csv_path, png_path, settings)
