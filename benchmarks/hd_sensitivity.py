"""Sensitivity of (hyper)optimizers to the initial learning rate, on sklearn's digits.

For logistic regression (64 -> 10 softmax) and an MLP (64-32-10, tanh), every method
is trained from each initial lr for ``--steps`` minibatch steps (batch 64, the same
deterministic batch sequence for all runs), with gradients from `autodiff.grad`.
Reported per (model, method, initial lr): the final training loss on the full
training set and the validation error.  A run whose loss becomes non-finite (or
raises) is recorded as nan.

Methods: SGD, SGD-HD, SGDN (Nesterov 0.9), SGDN-HD, Adam, Adam-HD, RAdam, RAdam-HD
(``HD(RAdam(lr))``), and towers of height 2 and 3 (SGD tuned by Adam levels, as in
Chandra et al.; the default unconstrained space: log lr, logit betas).  Hypergradient
rates are the paper's defaults: 1e-3 for SGD-HD / SGDN-HD, 1e-8 for Adam-HD and RAdam-HD.

    PYTHONPATH=. python benchmarks/hd_sensitivity.py [--steps N] [--lrs 1e-3,1e-1] [--quick]
"""
import argparse
import math
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from autodiff import grad  # noqa: E402
from hyperopt.reproduce.workload import (BATCH, METHODS, MODELS, batch_indices,  # noqa: E402,F401
                                        load_data, make_loss)

DEFAULT_LRS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
QUICK_LRS = (1e-4, 1e-2, 1.0)


# -- one run ---------------------------------------------------------------------------


def _finite_tree(p) -> bool:
    return all(np.all(np.isfinite(np.asarray(v))) for v in p.values())


def run_one(model, method, lr, data, batches):
    """Final (train loss, val error) of one run; (nan, nan) if it diverges or raises."""
    Xtr, Ytr, _, Xva, _, yva = data
    init_fn, logits_fn = MODELS[model]
    loss_fn = make_loss(logits_fn)
    grad_fn = grad(loss_fn)
    params = init_fn(np.random.default_rng(0))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            runner = METHODS[method](lr, params)
            for idx in batches:
                params = runner.step(loss_fn, grad_fn, Xtr[idx], Ytr[idx])
                if not _finite_tree(params):
                    return math.nan, math.nan
            train_loss = float(loss_fn(params, Xtr, Ytr))
            val_err = float(np.mean(np.argmax(logits_fn(params, Xva), axis=1) != yva))
        except (FloatingPointError, OverflowError, ValueError, ZeroDivisionError,
                np.linalg.LinAlgError, ArithmeticError):
            return math.nan, math.nan
    if not math.isfinite(train_loss):
        return math.nan, math.nan
    return train_loss, val_err


# -- output ----------------------------------------------------------------------------

def _lr_label(lr: float) -> str:
    return f"{lr:g}"


def markdown_table(model, results, lrs) -> str:
    head = "| method | " + " | ".join(f"lr={_lr_label(lr)}" for lr in lrs) + " |"
    sep = "|---|" + "---|" * len(lrs)
    rows = [head, sep]
    for method in METHODS:
        cells = []
        for lr in lrs:
            loss, err = results[(model, method, lr)]
            cells.append("nan" if not math.isfinite(loss) else f"{loss:.3f} / {100 * err:.1f}%")
        rows.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def plot(results, lrs, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(MODELS), figsize=(6 * len(MODELS), 4.5))
    for ax, model in zip(np.atleast_1d(axes), MODELS):
        for method in METHODS:
            ys = [results[(model, method, lr)][0] for lr in lrs]
            ax.plot(lrs, ys, marker="o", label=method)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("initial learning rate")
        ax.set_ylabel("final training loss")
        ax.set_title(model)
        ax.grid(True, which="both", alpha=0.3)
    np.atleast_1d(axes)[-1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=None, help="training steps per run (default 300)")
    ap.add_argument("--lrs", type=str, default=None, help="comma-separated initial lrs")
    ap.add_argument("--quick", action="store_true", help="50 steps, 3 lrs")
    ap.add_argument("--out-md", default="benchmarks/hd_sensitivity.md")
    ap.add_argument("--out-png", default="docs/hd_sensitivity.png")
    a = ap.parse_args(argv)
    steps = a.steps if a.steps is not None else (50 if a.quick else 300)
    if a.lrs:
        lrs = tuple(float(s) for s in a.lrs.split(","))
    else:
        lrs = QUICK_LRS if a.quick else DEFAULT_LRS

    data = load_data(0)
    batches = batch_indices(len(data[0]), steps, seed=0)
    results = {}
    t0 = time.perf_counter()
    for model in MODELS:
        for method in METHODS:
            for lr in lrs:
                results[(model, method, lr)] = run_one(model, method, lr, data, batches)
    elapsed = time.perf_counter() - t0

    parts = [f"# Sensitivity to the initial learning rate (digits, {steps} steps, batch {BATCH})",
             "",
             "Cells: final training loss (full training set) / validation error. `nan`: diverged.",
             "Hypergradient rates: 1e-3 (SGD-HD, SGDN-HD), 1e-8 (Adam-HD, RAdam-HD); towers: SGD tuned",
             "by Adam(0.01) levels in the unconstrained space (log lr, logit betas).",
             f"Generated by `benchmarks/hd_sensitivity.py` in {elapsed:.0f} s.", ""]
    for model in MODELS:
        parts += [f"## {model}", "", markdown_table(model, results, lrs), ""]
    text = "\n".join(parts)
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(a.out_md)), exist_ok=True)
    with open(a.out_md, "w") as f:
        f.write(text)
    plot(results, lrs, a.out_png)
    print(f"wrote {a.out_md} and {a.out_png}")


if __name__ == "__main__":
    main()
