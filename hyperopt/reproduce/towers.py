"""Hyperoptimizer towers: "Gradient Descent: The Ultimate Optimizer".

Chandra, Xie, Ragan-Kelley and Meijer (NeurIPS 2022; arXiv:1909.13371) tune
an optimizer's hyperparameters online with another optimizer, and that one's
with a third, and so on (`hyperopt.towers`).  Their claims, checked here on a
tanh MLP on digits:

* robustness: the taller the tower, the less the test error depends on the
  initial step size; a stack of SGDs of height 0-3, every level starting at
  the same alpha0 from 1e-8 to 1, and the spread (max - min) of test error
  over alpha0 at each height;
* the Table-1-style comparison: SGD vs SGD / SGD, Adam vs Adam / SGD, AdaGrad
  vs AdaGrad / SGD, RMSProp vs RMSProp / SGD, each from the same initial
  hyperparameters;
* cost: the time per step against height, measured side by side in this
  process.

Towers run in the raw space (``space="raw"``: SGD on alpha itself, as in the
paper), so a hyper-step may push a step size negative or the run may diverge;
such runs are kept and reported (their test error is that of the parameters
where training stopped), not dropped.
"""
from __future__ import annotations

import math
import os
import time
import warnings

import numpy as np

from ._claims import Claim, Report
from ._common import progress_bar, tick, write_csv

PAPER = "towers"
TITLE = ("Gradient Descent: The Ultimate Optimizer (Chandra, Xie, Ragan-Kelley and Meijer, "
         "NeurIPS 2022)")
HEIGHTS = (0, 1, 2, 3)
TIME_RATIO_MAX = 1.10    # "small overhead": within 10% of height 0 at height 3


def sgd_stack(alpha0: float, height: int):
    """SGD(alpha0) / SGD(alpha0) / ... : ``height`` SGD hyper-levels above SGD, all at alpha0."""
    from ..optim import SGD

    hyper = None
    for _ in range(height):
        hyper = SGD(alpha0, optimizer=hyper)
    return SGD(alpha0, optimizer=hyper)


def _train(stack, model, params0, batches, test, on_invalid="ignore"):
    """Train with a tower; returns (test error in %, diverged, the lr path or None)."""
    from ..towers import Tower

    tower = Tower(stack, params0, space="raw", on_invalid=on_invalid)
    diverged = False
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for x, y in batches:
            try:
                tower.step(model.loss, x, y)
            except (FloatingPointError, ValueError, OverflowError):
                diverged = True
                break
        params = tower.params
        finite = all(np.all(np.isfinite(p)) for p in params.values())
        acc = model.accuracy(params, test.x, test.y) if finite else math.nan
    if not finite or math.isnan(acc):
        diverged, acc = True, 0.1   # a model with non-finite weights: chance level
    lr = np.array(tower.history[0]["lr"]) if tower.height and tower.history[0].get("lr") \
        else None
    return 100.0 * (1.0 - acc), diverged, lr


def _sgd_sgd_is_hd(model, params0, batches, rows) -> Claim:
    """A height-1 SGD tower in the raw space against `hd.SGDHD` (separate code)."""
    from autodiff import grad
    from ..hd import SGDHD
    from ..towers import Tower

    lr0, kappa = 0.01, 0.01
    from ..optim import SGD

    tower = Tower(SGD(lr0, optimizer=SGD(kappa)), params0, space="raw")
    hd = SGDHD(params0, lr=lr0, hypergrad_lr=kappa)
    g = grad(model.loss)
    lr_gap = p_gap = 0.0
    for x, y in batches:
        tower.step(model.loss, x, y)
        hd.step(g(hd.params, x, y))
        lr_gap = max(lr_gap, abs(tower.hparams[0]["lr"] - hd.lr) / abs(hd.lr))
        p_gap = max(p_gap, max(float(np.max(np.abs(tower.params[k] - hd.params[k])))
                               for k in params0))
    rows.append({"experiment": "sgd_sgd_vs_hd", "steps": len(batches), "lr_tower":
                 tower.hparams[0]["lr"], "lr_hd": hd.lr, "max_rel_lr_gap": lr_gap,
                 "max_param_gap": p_gap})
    ok = lr_gap <= 1e-12 and p_gap <= 1e-12
    return Claim(
        "SGD / SGD is hypergradient descent", "",
        "the paper's step-size hypergradient, which recovers Baydin et al.'s (2018) update",
        f"{len(batches)} steps from lr {lr0} (hyper-step {kappa}): lr {hd.lr:.10f}; largest "
        f"relative lr difference {lr_gap:.1e}, largest weight difference {p_gap:.1e}",
        "lr and weights equal to 1e-12 at every step (tower vs hyperopt.hd.SGDHD)", ok,
        exact=True, quick_ok=True)


def _good_range(grid, alphas, h, within=5.0) -> str:
    """The α0 values whose test error at height h is within ``within`` points of the
    best over the whole grid, as "lo..hi" (with a count if they are not contiguous)."""
    best = min(e for (_, _), (e, _) in grid.items())
    good = [a for a in alphas if grid[h, a][0] <= best + within]
    if not good:
        return "none"
    txt = f"{min(good):g}..{max(good):g}"
    span = [a for a in alphas if min(good) <= a <= max(good)]
    return txt if len(span) == len(good) else f"{txt} ({len(good)} of {len(span)} values)"


def _plot(path, alphas, grid, spreads, table, times, T):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(17, 4.8))
    FigureCanvasAgg(fig)
    ax1, ax2, ax3 = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.3, 1.2, 0.8]})
    for h in HEIGHTS:
        errs = [grid[h, a][0] for a in alphas]
        ax1.plot(alphas, errs, "o-", color=f"C{h}",
                 label=f"height {h}: spread {spreads[h]:.1f} points")
        div = [a for a in alphas if grid[h, a][1]]
        if div:
            ax1.plot(div, [grid[h, a][0] for a in div], "x", color=f"C{h}", ms=9)
    ax1.set_xscale("log")
    ax1.set_xlabel("initial step size α0 of every level")
    ax1.set_ylabel(f"test error after {T} steps (%)")
    ax1.set_title("SGD stacks: test error against α0 (x: diverged)")
    ax1.set_ylim(0, 100)
    ax1.legend(fontsize=8)
    names = [r["optimizer"] for r in table]
    x = np.arange(len(names))
    ax2.bar(x, [r["test_error"] for r in table],
            color=["C0" if "/" not in n else "C1" for n in names])
    for i, r in enumerate(table):
        ax2.text(i, r["test_error"], f"{r['test_error']:.1f}", ha="center", va="bottom", fontsize=8)
    ax2.set_xticks(x)
    ax2.set_xticklabels(names, fontsize=8, rotation=20)
    ax2.set_ylabel("test error (%)")
    ax2.set_title("Baselines (blue) and hyperoptimized (orange)")
    hs = sorted(times)
    ax3.plot(hs, [1e3 * times[h] for h in hs], "o-")
    for h in hs:
        ax3.text(h, 1e3 * times[h], f" {times[h] / times[0]:.2f}x", fontsize=8, va="bottom")
    ax3.set_xticks(hs)
    ax3.set_xlabel("tower height")
    ax3.set_ylabel("time per step (ms, median)")
    ax3.set_title("Cost of a step against height")
    ax3.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run(quick: bool, out_dir: str, progress: bool = True) -> Report:
    from ..data import Batcher, digits
    from ..models import MLP
    from ..optim import SGD, Adagrad, Adam, RMSprop

    os.makedirs(out_dir, exist_ok=True)
    if quick:
        sizes, T, alphas, time_steps, time_rounds = (64, 16, 10), 60, [1e-8, 1e-4, 1.0], 10, 3
    else:
        sizes, T = (64, 32, 10), 3000
        alphas = [10.0 ** k for k in range(-8, 1)]
        time_steps, time_rounds = 50, 7
    batch = 64
    split = digits(seed=0)
    model = MLP(sizes)
    params0 = model.init(seed=0)
    batcher = Batcher(len(split.train.x), batch_size=batch, seed=0)
    batches = [tuple(batcher.batch(split.train, t)) for t in range(T)]
    test = split.test
    rows = []
    pairs = [("sgd", SGD(0.01), "sgd / sgd", SGD(0.01, optimizer=SGD(0.01))),
             ("adam", Adam(1e-3), "adam / sgd", Adam(1e-3, optimizer=SGD(1e-5))),
             ("adagrad", Adagrad(1e-2), "adagrad / sgd", Adagrad(1e-2, optimizer=SGD(1e-5))),
             ("rmsprop", RMSprop(1e-2), "rmsprop / sgd", RMSprop(1e-2, optimizer=SGD(1e-5)))]
    bar = progress_bar(len(HEIGHTS) * len(alphas) + 2 * len(pairs) + 2, "towers: runs", progress)

    # 0. the identity the method rests on: SGD / SGD in the raw space is Baydin et al.'s HD
    claims = [_sgd_sgd_is_hd(model, params0, batches[:30], rows)]
    tick(bar)

    # 1. robustness to alpha0 against height
    grid = {}
    for h in HEIGHTS:
        for a in alphas:
            err, div, lr = _train(sgd_stack(a, h), model, params0, batches, test)
            grid[h, a] = (err, div)
            rows.append({"experiment": "robustness", "height": h, "alpha0": a, "test_error": err,
                         "diverged": div,
                         "final_lr": float(lr[-1]) if lr is not None and len(lr) else a})
            tick(bar)
    spreads = {h: max(grid[h, a][0] for a in alphas) - min(grid[h, a][0] for a in alphas)
               for h in HEIGHTS}
    spread_txt = " -> ".join(f"{spreads[h]:.1f}" for h in HEIGHTS)
    for h in HEIGHTS[1:]:
        claims.append(Claim(
            f"spread over α0 shrinks: height {h} vs {h - 1}",
            "spread of test error over α0 shrinks with height, roughly 77 -> 27 -> 7 -> 2 "
            "points for heights 0-3 (approximate values read off the plot, not verified here)",
            "Fig. 3 (arXiv:1909.13371: stacking more levels of SGD makes the result less "
            "sensitive to the initial hyperparameters)",
            f"spread {spreads[h]:.1f} vs {spreads[h - 1]:.1f} points (heights 0-3: "
            f"{spread_txt}); α0 within 5 points of the best error: "
            f"{_good_range(grid, alphas, h - 1)} at height {h - 1}, "
            f"{_good_range(grid, alphas, h)} at height {h}",
            f"spread(height {h}) <= 0.5 x spread(height {h - 1}) (the published drops are "
            f"3x or more at each height)", spreads[h] <= 0.5 * spreads[h - 1],
            exact=False, quick_ok=False))

    # 2. the Table-1-style comparison
    table = []
    for base_name, base, stack_name, stack in pairs:
        for name, opt in ((base_name, base), (stack_name, stack)):
            err, div, _ = _train(opt, model, params0, batches, test)
            table.append({"optimizer": name, "test_error": err, "diverged": div})
            rows.append({"experiment": "table1", "optimizer": name, "test_error": err,
                         "diverged": div})
            tick(bar)
    errs = {r["optimizer"]: r["test_error"] for r in table}
    for base_name, _, stack_name, _ in pairs:
        b, s = errs[base_name], errs[stack_name]
        claims.append(Claim(
            f"{stack_name} <= {base_name} (test error)",
            "the hyperoptimized stack matches or beats its baseline from the same initial "
            "hyperparameters; the table's MNIST test errors were not available here",
            "Table 1 (MNIST MLP)",
            f"{stack_name} {s:.1f}% vs {base_name} {b:.1f}%",
            "error(stack) <= error(baseline) + 0.3 points (one test digit)", s <= b + 0.3,
            exact=False, quick_ok=False))

    # 3. time per step against height: the heights interleaved, median over rounds
    from ..towers import Tower

    samples = {h: [] for h in HEIGHTS}
    towers = {h: Tower(sgd_stack(0.01, h), params0, space="raw", on_invalid="ignore",
                       history=False) for h in HEIGHTS}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for h in HEIGHTS:                      # warm-up
            for x, y in batches[:3]:
                towers[h].step(model.loss, x, y)
        for r in range(time_rounds):
            for h in (HEIGHTS if r % 2 == 0 else HEIGHTS[::-1]):
                t0 = time.perf_counter()
                for x, y in batches[:time_steps]:
                    towers[h].step(model.loss, x, y)
                samples[h].append((time.perf_counter() - t0) / time_steps)
    tick(bar)
    if bar is not None:
        bar.close()
    times = {h: float(np.median(samples[h])) for h in HEIGHTS}
    for h in HEIGHTS:
        rows.append({"experiment": "time_per_step", "height": h, "seconds_per_step": times[h],
                     "ratio_to_height_0": times[h] / times[0]})
    ratio = times[3] / times[0]
    claims.append(Claim(
        "time per step at height 3 close to height 0",
        "small: each added level costs little time per step (the paper's timing panel; its "
        "exact percentage was not available here)",
        "arXiv:1909.13371, higher-order hyperoptimization figure, panel (c): time per step "
        "against stack height",
        f"{1e3 * times[0]:.2f} ms at height 0, {1e3 * times[3]:.2f} ms at height 3: "
        f"{ratio:.2f}x ({100 * (ratio - 1):+.0f}%)",
        f"time(height 3) <= {TIME_RATIO_MAX:.2f} x time(height 0)", ratio <= TIME_RATIO_MAX,
        exact=False, quick_ok=False))

    csv_path = os.path.join(out_dir, f"{PAPER}.csv")
    png_path = os.path.join(out_dir, f"{PAPER}.png")
    write_csv(csv_path, rows)
    _plot(png_path, alphas, grid, spreads, table, times, T)
    settings = (
        f"Digits (1,077 training, 360 test images) instead of MNIST, a tanh MLP "
        f"{'-'.join(map(str, sizes))} (the authors' README example: 784-128-10 tanh, batch "
        f"256), batch {batch}, {T} steps "
        f"(about {T * batch / len(split.train.x):.0f} epochs), one seed, float64, the same "
        f"initial weights and batches for every run. Robustness: stacks of SGD of height 0-3 "
        f"in the raw space, every level starting at α0 in "
        f"{{{', '.join(f'{a:g}' for a in alphas)}}}; the spread is max - min of the test error "
        f"over α0 at each height. Table: SGD(0.01), Adam(0.001), AdaGrad(0.01) and "
        f"RMSprop(0.01), each alone and tuned by SGD in the raw space (SGD / SGD with a "
        f"hyper-step of 0.01; the adaptive ones with 1e-5, as in the authors' README example "
        f"Adam / SGD(1e-5)); each tuned level tunes the paper's default hyperparameters (lr; "
        f"Adam also beta1, beta2). None of these values was tuned. Runs that diverge or push a "
        f"step size out of range are kept, with the test error of the weights where they "
        f"stopped (chance level, 90%, for non-finite weights). Time per step: the four heights "
        f"(SGD stacks at 0.01) stepped in turn, {time_rounds} rounds of {time_steps} steps, "
        f"median per height; a test digit is 0.28 points of test error."
        + (" Quick mode: three α0 values, a smaller MLP and 60 steps; its numbers say "
           "nothing about the paper's claims." if quick else ""))
    return Report(PAPER, TITLE, claims, csv_path, png_path, settings)
