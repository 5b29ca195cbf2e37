"""Hypergradient descent (Baydin et al., ICLR 2018), on logistic regression on digits.

Claims checked (see `run`):

* SGD-HD's final training loss hardly depends on the initial learning rate
  α0 ∈ {0, 1e-5, 1e-4, 1e-3}, while plain SGD's spreads widely;
* SGD-HD ends at or below SGD at every α0 of a grid from 0 to 1;
* Adam-HD started from α0 = 0 (one global learning rate) lands near the best
  Adam of a learning-rate grid;
* iterations to reach a training-loss threshold, for SGD, SGD-HD, SGDN,
  SGDN-HD, Adam and Adam-HD at several α0 (the HD variant should need no more
  than its base optimizer);
* β = 0 (``hypergrad_lr=0``) reproduces the plain optimizer: bit-identical
  parameters for SGD, SGD with Nesterov momentum and Adam (the HD optimizers
  take their directions from `hyperopt.optim`).

The data, model, loss and batch sequence are `hyperopt.reproduce.workload`'s
(``benchmarks/hd_sensitivity.py`` runs it too): sklearn's digits (80/20
train/validation split), a 64 -> 10 softmax regression from zero weights,
minibatches of 64 drawn by epoch permutations.
"""
from __future__ import annotations

import csv
import math
import os
import warnings

import numpy as np

from . import workload
from ._claims import Claim, Report

TITLE = ("Online Learning Rate Adaptation with Hypergradient Descent (Baydin, Cornish, "
         "Martínez Rubio, Schmidt, Wood; ICLR 2018)")

# the hypergradient step sizes of the authors' logistic-regression runs (run.sh in
# gbaydin/hypergradient-descent): 1e-3 for SGD-HD and SGDN-HD, 1e-7 for Adam-HD
BETA = {"SGD-HD": 1e-3, "SGDN-HD": 1e-3, "Adam-HD": 1e-7}
BASE = {"SGD-HD": "SGD", "SGDN-HD": "SGDN", "Adam-HD": "Adam"}
METHODS = ("SGD", "SGD-HD", "SGDN", "SGDN-HD", "Adam", "Adam-HD")
THRESHOLD = 0.3          # training-loss threshold of the iterations table
EVAL_EVERY = 5           # full training loss every EVAL_EVERY steps

# Published figures: the authors' own logistic-regression results on MNIST
# (PyTorch reimplementation; α0 = 1e-3, β = 1e-3 / 1e-7 for Adam-HD; 10 epochs of
# batch 128), the training loss averaged over epoch 10 ("LossEpoch" in the last row
# of results/logreg/+1e-03_+1e-03/{sgd,sgd_hd,sgdn,sgdn_hd}.csv and
# results/logreg/+1e-03_+1e-07/{adam,adam_hd}.csv).
PUBLISHED_EPOCH10 = {"SGD": 0.3957, "SGD-HD": 0.2934, "SGDN": 0.2893, "SGDN-HD": 0.2612,
                     "Adam": 0.2590, "Adam-HD": 0.2583}
REPO = "gbaydin/hypergradient-descent"


def _make(method: str, alpha0: float, params, beta=None):
    """A runner with ``.step(loss_fn, grad_fn, x, y)`` and ``.lr()`` (the lr in use)."""
    from hyperopt.hd import AdamHD, SGDHD, SGDNHD
    from hyperopt.optim import SGD, Adam
    b = workload
    beta = BETA.get(method) if beta is None else beta
    if method == "SGD":
        r = b.Pure(SGD(alpha0), params)
    elif method == "SGDN":
        r = b.Pure(SGD(alpha0, momentum=0.9, nesterov=True), params)
    elif method == "Adam":
        r = b.Pure(Adam(alpha0), params)
    elif method == "SGD-HD":
        r = b.Stateful(SGDHD(params, lr=alpha0, hypergrad_lr=beta), params)
    elif method == "SGDN-HD":
        r = b.Stateful(SGDNHD(params, lr=alpha0, hypergrad_lr=beta, momentum=0.9), params)
    elif method == "Adam-HD":
        r = b.Stateful(AdamHD(params, lr=alpha0, hypergrad_lr=beta), params)
    else:
        raise ValueError(method)
    r.lr = (lambda: float(np.mean(r.opt.lr))) if hasattr(r.opt, "param_groups") else \
        (lambda: alpha0)
    return r


class _Task:
    def __init__(self, steps: int):
        b = workload
        self.data = b.load_data(0)
        self.batches = b.batch_indices(len(self.data[0]), steps, seed=0)
        self.loss = b.make_loss(b.logits_logreg)
        self.logits = b.logits_logreg
        self.init = b.init_logreg
        from autodiff import grad
        self.grad = grad(self.loss)
        self.steps = steps
        self.cache = {}

    def train_loss(self, p) -> float:
        return float(self.loss(p, self.data[0], self.data[1]))

    def run(self, method: str, alpha0: float, beta=None, steps=None) -> dict:
        """One run: the training loss every EVAL_EVERY steps, the lr per step, the
        final validation loss/accuracy and parameters; a diverged run ends in nan."""
        key = (method, alpha0, beta, steps)
        if key in self.cache:
            return self.cache[key]
        Xtr, Ytr, _, Xva, Yva, yva = self.data
        steps = self.steps if steps is None else steps
        params = self.init(np.random.default_rng(0))
        runner = _make(method, alpha0, params, beta)
        losses, lrs, evals = [self.train_loss(params)], [], [0]
        diverged = False
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            for t, idx in enumerate(self.batches[:steps], 1):
                try:
                    params = runner.step(self.loss, self.grad, Xtr[idx], Ytr[idx])
                    lr = runner.lr()
                except (FloatingPointError, OverflowError, ValueError, ArithmeticError):
                    diverged = True
                    break
                lrs.append(lr)
                if t % EVAL_EVERY == 0 or t == steps:
                    val = self.train_loss(params)
                    if not math.isfinite(val):
                        diverged = True
                        break
                    losses.append(val)
                    evals.append(t)
        if diverged:
            out = {"losses": losses, "evals": evals, "lrs": lrs, "final": math.nan,
                   "val_loss": math.nan, "val_acc": math.nan, "params": None, "diverged": True}
        else:
            z = self.logits(params, Xva)
            out = {"losses": losses, "evals": evals, "lrs": lrs, "final": losses[-1],
                   "val_loss": float(self.loss(params, Xva, Yva)),
                   "val_acc": float(np.mean(np.argmax(z, axis=1) == yva)), "params": params,
                   "diverged": False}
        self.cache[key] = out
        return out


def _steps_to(run: dict, threshold: float):
    for t, v in zip(run["evals"], run["losses"]):
        if v <= threshold:
            return t
    return None


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and math.isnan(x):
        return "diverged"
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def _a(a: float) -> str:
    return "0" if a == 0 else f"{a:g}"


def _beta_zero(task: _Task, steps: int) -> list:
    """β = 0 against the plain optimizer, from the same start and batches."""
    out = []
    for hd, base in (("SGD-HD", "SGD"), ("SGDN-HD", "SGDN"), ("Adam-HD", "Adam")):
        a0 = 1e-2 if base == "Adam" else 1e-1
        r_hd = task.run(hd, a0, beta=0.0, steps=steps)
        r_b = task.run(base, a0, steps=steps)
        p, q = r_hd["params"], r_b["params"]
        if p is None or q is None:
            out.append((hd, base, a0, None, None))
            continue
        same = all(np.array_equal(p[k], q[k]) for k in q)
        scale = max(float(np.max(np.abs(q[k]))) for k in q) or 1.0
        rel = max(float(np.max(np.abs(p[k] - q[k]))) for k in q) / scale
        out.append((hd, base, a0, same, rel))
    return out


def run(quick: bool = False, out_dir: str = "reproductions", progress: bool = True) -> Report:
    os.makedirs(out_dir, exist_ok=True)
    steps = 100 if quick else 1000
    sens = (0.0, 1e-5, 1e-4, 1e-3)
    grid = (0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0) if not quick else (0.0, 1e-3, 1e-1, 1.0)
    adam_grid = ((1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1) if not quick
                 else (1e-3, 1e-2, 1e-1))
    table_a0 = (1e-4, 1e-3, 1e-2, 1e-1) if not quick else (1e-3, 1e-1)
    beta0_steps = 300 if not quick else 50
    task = _Task(steps)

    jobs = [(m, a) for m in ("SGD", "SGD-HD") for a in sorted(set(sens) | set(grid))]
    jobs += [("Adam", a) for a in adam_grid] + [("Adam-HD", 0.0)]
    jobs += [(m, a) for m in METHODS for a in table_a0]
    jobs = list(dict.fromkeys(jobs))
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(jobs) + 6, desc="hd", unit="run", leave=False, mininterval=0.5)
    for m, a in jobs:
        task.run(m, a)
        if bar is not None:
            bar.update(1)
    b0 = _beta_zero(task, beta0_steps)
    if bar is not None:
        bar.update(6)
        bar.close()

    claims = []
    # 1. insensitivity to α0
    fin = {(m, a): task.run(m, a)["final"] for m, a in jobs}
    spread = {m: (max(fin[(m, a)] for a in sens) - min(fin[(m, a)] for a in sens))
              for m in ("SGD", "SGD-HD")}
    ok = all(math.isfinite(v) for v in spread.values()) and spread["SGD-HD"] <= 0.25 * spread["SGD"]
    claims.append(Claim(
        "SGD-HD final loss nearly independent of α0 ∈ {0, 1e-5, 1e-4, 1e-3}",
        "\"much less sensitive to the choice of the initial learning rate\"; numbers not "
        "available here",
        f"README of {REPO}; paper abstract",
        "spread of final training loss: SGD-HD " + _fmt(spread["SGD-HD"]) + " vs SGD "
        + _fmt(spread["SGD"]) + " (" + ", ".join(
            f"α0={_a(a)}: {fin[('SGD-HD', a)]:.3f}/{fin[('SGD', a)]:.3f}" for a in sens) + ")",
        "spread(SGD-HD) ≤ 0.25 × spread(SGD)", ok))
    # 2. SGD-HD at or below SGD on the whole grid
    worse = [a for a in grid if not (fin[("SGD-HD", a)] <= fin[("SGD", a)] + 1e-3)]
    claims.append(Claim(
        "SGD-HD ends at or below SGD at every α0 from 0 to 1",
        f"MNIST logreg, α0=1e-3, epoch-10 training loss: SGD {PUBLISHED_EPOCH10['SGD']} → "
        f"SGD-HD {PUBLISHED_EPOCH10['SGD-HD']}; \"better than, or in the worst case the same "
        "as\" the baseline",
        f"{REPO} results/logreg/+1e-03_+1e-03/sgd*.csv (last row); README",
        "; ".join(f"α0={_a(a)}: {_fmt(fin[('SGD-HD', a)])} vs {_fmt(fin[('SGD', a)])}"
                  for a in grid),
        "loss(SGD-HD) ≤ loss(SGD) + 0.001 at every α0 (a diverged SGD-HD fails)",
        not worse, quick_ok=True))
    # 3. Adam-HD from α0 = 0 near the best tuned Adam
    adam = {a: fin[("Adam", a)] for a in adam_grid}
    finite = {a: v for a, v in adam.items() if math.isfinite(v)}
    best_a = min(finite, key=finite.get)
    best, worst = finite[best_a], max(finite.values())
    hd0 = fin[("Adam-HD", 0.0)]
    ok3 = math.isfinite(hd0) and hd0 <= best + 0.25 * (worst - best)
    hd0_lr = task.run("Adam-HD", 0.0)["lrs"][-1] if task.run("Adam-HD", 0.0)["lrs"] else 0.0
    claims.append(Claim(
        "Adam-HD from α0 = 0 lands near the best tuned Adam",
        "\"even starting with a zero learning rate works\"; numbers not available here",
        f"README of {REPO}",
        f"Adam-HD(α0=0, β=1e-7): {_fmt(hd0)} (final lr {hd0_lr:.2g}); best Adam {best:.3f} "
        f"(lr {best_a:g}), worst {worst:.3f}",
        "loss(Adam-HD, α0=0) ≤ best + 0.25 × (worst − best) over the Adam lr grid",
        ok3))
    # 4. iterations to the threshold
    cells, wins = 0, 0
    rows = []
    for m in METHODS:
        row = [m]
        for a in table_a0:
            row.append(_steps_to(task.run(m, a), THRESHOLD))
        rows.append(row)
    losers = []
    for hd, base in BASE.items():
        for a in table_a0:
            s_hd = _steps_to(task.run(hd, a), THRESHOLD)
            s_b = _steps_to(task.run(base, a), THRESHOLD)
            cells += 1
            if s_hd is not None and (s_b is None or s_hd <= s_b) or (s_hd is None and s_b is None):
                wins += 1
            else:
                losers.append(f"{hd} α0={_a(a)}")
    claims.append(Claim(
        f"HD reaches training loss {THRESHOLD} in no more iterations than its base optimizer",
        "HD moves the loss trajectory \"closer to the optimum\" at every α0; the poster's "
        "iterations table is an image: its numbers were not available here",
        f"ICLR 2018 poster ({REPO} poster/); paper text",
        f"{wins}/{cells} (optimizer, α0) cells" + (f"; slower: {', '.join(losers)}" if losers else
                                                   "") + " (table below)",
        "HD ≤ base in every cell (both never reaching it: a tie)", wins == cells))
    # 5. β = 0 is the plain optimizer
    for hd, base, a0, same, rel in b0:
        claims.append(Claim(
            f"β = 0: {hd} is {base} exactly",
            "", "Algorithm 6 (β = 0 gives Adam)" if base == "Adam" else
            "Algorithms 4-5 (β = 0 gives the base algorithm)",
            "bit-identical parameters after "
            f"{beta0_steps} steps (α0={a0:g})" if same else
            f"differ after {beta0_steps} steps: max rel. diff {rel:.1e}"
            if rel is not None else "a run diverged",
            "every parameter bit-identical", bool(same), exact=True))

    # -- outputs --------------------------------------------------------------------
    csv_path = os.path.join(out_dir, "hd.csv")
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "alpha0", "beta", "steps", "final_train_loss", "val_loss", "val_acc",
                    f"steps_to_{THRESHOLD}", "final_lr", "diverged"])
        for m, a in jobs:
            r = task.run(m, a)
            w.writerow([m, a, BETA.get(m, ""), steps, r["final"], r["val_loss"], r["val_acc"],
                        _steps_to(r, THRESHOLD) or "", r["lrs"][-1] if r["lrs"] else "",
                        r["diverged"]])
    curves_path = os.path.join(out_dir, "hd_curves.csv")
    with open(curves_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "alpha0", "step", "train_loss", "lr"])
        for m, a in jobs:
            r = task.run(m, a)
            for t, v in zip(r["evals"], r["losses"]):
                if t % (10 * EVAL_EVERY) == 0 or t == r["evals"][-1]:
                    w.writerow([m, a, t, v, r["lrs"][t - 1] if t >= 1 else a])
    png_path = os.path.join(out_dir, "hd.png")
    _plot(task, sens, grid, adam_grid, png_path, steps)

    head = "| method | " + " | ".join(f"α0={_a(a)}" for a in table_a0) + \
        " | published MNIST, α0=1e-3: epoch-10 training loss |"
    lines = [f"Iterations to reach training loss {THRESHOLD} (full training set, checked "
             f"every {EVAL_EVERY} steps; '-': not within {steps} steps):", "", head,
             "|---|" + "---|" * (len(table_a0) + 1)]
    for row in rows:
        lines.append(f"| {row[0]} | " + " | ".join(_fmt(c) for c in row[1:]) +
                     f" | {PUBLISHED_EPOCH10[row[0]]:.4f} |")
    lines += ["", f"The published column is the authors' MNIST logistic regression (10 epochs of "
              f"batch 128, α0 = 1e-3), the training loss averaged over epoch 10, from the last "
              f"row of their result files ({REPO}, results/logreg/). The poster's "
              "iterations-to-threshold table could not be read here (it is an image)."]
    settings = (
        f"Logistic regression (64 → 10 softmax, zero initialization) on scikit-learn's digits "
        f"(1,438 training / 359 validation images), the data, model and batches of "
        f"benchmarks/hd_sensitivity.py; {steps} steps of minibatch 64 (about "
        f"{steps * 64 // 1438} epochs; the paper ran 10 epochs of MNIST, 4,690 steps, which "
        f"this small set does not need). Hypergradient steps are the authors' logistic-"
        f"regression values (β = 1e-3 for SGD-HD and SGDN-HD, 1e-7 for Adam-HD, from their "
        f"run.sh), Nesterov momentum 0.9, Adam's defaults. 'Final loss' is the loss on the "
        f"whole training set after the last step. α0 grids: {', '.join(map(_a, grid))} (SGD); "
        f"{', '.join(map(_a, adam_grid))} (Adam). β = 0 checks run {beta0_steps} steps. "
        f"hd.csv holds one row per run; hd_curves.csv the loss and lr every "
        f"{10 * EVAL_EVERY} steps." + (" Quick mode: fewer steps and grid points." if quick
                                       else ""))
    return Report("hd", TITLE, claims, csv_path, png_path, settings, "\n".join(lines))


def _plot(task, sens, grid, adam_grid, path, steps):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, a in enumerate(sens):
        for m, ls in (("SGD", "--"), ("SGD-HD", "-")):
            r = task.run(m, a)
            ax.plot(r["evals"], r["losses"], ls, color=colors[i % len(colors)],
                    label=f"{m} α0={_a(a)}")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.set_title("SGD (dashed) vs SGD-HD (solid)")
    ax.legend(fontsize=6, ncol=2)
    ax = axes[1]
    for i, a in enumerate(sens):
        r = task.run("SGD-HD", a)
        ax.plot(np.arange(1, len(r["lrs"]) + 1), r["lrs"], color=colors[i % len(colors)],
                label=f"SGD-HD α0={_a(a)}")
    r = task.run("Adam-HD", 0.0)
    ax.plot(np.arange(1, len(r["lrs"]) + 1), r["lrs"], "k:", label="Adam-HD α0=0")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate α_t")
    ax.set_yscale("symlog", linthresh=1e-5)
    ax.set_title("learning-rate trajectories")
    ax.legend(fontsize=6)
    ax = axes[2]
    xs = [a if a > 0 else 1e-6 for a in grid]
    for m, mk in (("SGD", "o--"), ("SGD-HD", "s-")):
        ax.plot(xs, [task.run(m, a)["final"] for a in grid], mk, label=m)
    ax.plot(adam_grid, [task.run("Adam", a)["final"] for a in adam_grid], "^-", label="Adam")
    ax.axhline(task.run("Adam-HD", 0.0)["final"], color="k", ls=":", label="Adam-HD from α0=0")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("α0 (0 plotted at 1e-6)")
    ax.set_ylabel(f"final training loss ({steps} steps)")
    ax.set_title("final loss vs initial learning rate")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
