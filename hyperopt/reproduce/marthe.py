"""MARTHE / RTHO: online learning-rate schedules from discounted hypergradients.

Donini, Franceschi, Majumder, Pontil and Frasconi, "MARTHE: Scheduling the
Learning Rate via Online Hypergradients" (IJCAI 2020; arXiv:1910.08525).
MARTHE carries the tangent ``Z_t = mu A_t Z_{t-1} + B_t`` of the training
state with respect to the learning rate and steps the learning rate along
``<grad E_val(w_t), Z_t>``: mu = 1 is RTHO (Franceschi et al., 2017), mu = 0
the one-step hypergradient of HD (Baydin et al., 2018) with the validation
loss in place of the next minibatch's.  Checked here on digits
(`hyperopt.online`):

* mu = 1 with the hyper-learning rate beta = 0: the tangent's hypergradient
  is the derivative of the validation loss after the run with respect to the
  learning rate (central differences, float64);
* mu = 0: the learning-rate trajectory is HD on the validation loss,
  recomputed here independently with plain reverse-mode gradients;
* the schedule comparison (MARTHE, RTHO, HD, exponential decay, fixed lr):
  test accuracy and the ordering, whatever it is;
* the shape of the schedule MARTHE learns.
"""
from __future__ import annotations

import math
import os
import time

import numpy as np

from ._claims import Claim, Report
from ._common import jit_backend, progress_bar, tick, write_csv

PAPER = "marthe"
TITLE = ("MARTHE: Scheduling the Learning Rate via Online Hypergradients (Donini, Franceschi, "
         "Majumder, Pontil and Frasconi, IJCAI 2020)")
FD_STEP = 1e-5      # central differences in log lr
FD_TOL = 1e-6
HD_TOL = 1e-9       # relative, the mu = 0 learning-rate trajectory against the independent HD


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


# -- claim 1: mu = 1, beta = 0 is the derivative of the validation loss ---------------

def _tangent_vs_fd(setup, h: dict):
    from ..hypergrad import val_loss_of
    from ..online import RTHO

    res = RTHO(setup, h, wrt=("lr",), hypergrad_lr=0.0).run()
    tangent = res.history[-1]["h0"]               # d E_val(w_T) / d log lr
    lr = float(h["lr"])
    up = float(val_loss_of(setup, {**h, "lr": np.float64(lr * math.exp(FD_STEP))})[0])
    down = float(val_loss_of(setup, {**h, "lr": np.float64(lr * math.exp(-FD_STEP))})[0])
    fd = (up - down) / (2 * FD_STEP)
    return tangent, fd


# -- claim 2: mu = 0 is HD on the validation loss, computed independently --------------

def _hd_val_reference(setup, lr0: float, beta: float, steps: int) -> np.ndarray:
    """Plain SGD whose log lr takes a step -beta * h_t after every training step, with
    h_t = d E_val(w_t) / d log lr through that step only: w_t = w_{t-1} - lr g_t makes
    h_t = -lr <grad E_val(w_t), g_t>.  Written from the definition, with reverse-mode
    gradients of the plain (non-dual) losses; returns the lr used at each step."""
    from autodiff import grad

    loss = setup.loss
    g_train = grad(lambda p, x, y: loss(p, x, y))
    g_val = grad(lambda p, x, y: loss(p, x, y))
    xv = np.asarray(setup.data.val.x, dtype=setup.dtype)
    yv = setup.data.val.y
    w = setup.init({"init_scale": 1.0})
    u = math.log(lr0)
    lrs = []
    for t in range(steps):
        lr = math.exp(u)
        lrs.append(lr)
        x, y = setup.batch(t)
        g = g_train(w, x, y)
        w = {k: w[k] - lr * g[k] for k in w}
        gv = g_val(w, xv, yv)
        h = -lr * sum(float(np.vdot(gv[k], g[k])) for k in w)
        u = u - beta * h
    return np.array(lrs)


# -- claim 3: the schedule comparison ---------------------------------------------------

def _baseline(setup, h: dict):
    params = setup.train(h)
    val_loss, val_acc = setup.evaluate(params, "val")
    test_loss, test_acc = setup.evaluate(params, "test")
    return float(val_loss), val_acc, float(test_loss), test_acc


def _rtho_shape(results: dict) -> str:
    """RTHO's schedule in the same words, for comparison (first seed)."""
    r = results.get("RTHO", {})
    if "peak_lr" not in r:
        return ""
    return (f" (RTHO, first seed: peak {r['peak_lr']:.3g} at step {r['peak_step']}, "
            f"final {r['final_lr']:.3g})")


def _compare(model, split, seed, T, batch, lr0, beta, clip, fixed_grid, exp_grid, decays,
             rows, bar, progress):
    """One seed of the schedule comparison: (results, lr paths, validation curves, mu path)."""
    from ..hypergrad import Setup
    from ..online import MARTHE
    from ..optim import SGD
    from ..schedules import ExponentialDecay, scheduled

    setup = Setup(model, split, SGD(lr=lr0), steps=T, batch_size=batch, seed=seed,
                  init_seed=seed)
    results, paths, val_curves = {}, {}, {}
    online = {"MARTHE": dict(mu="adaptive"), "RTHO": dict(mu=1.0), "HD": dict(mu=0.0)}
    mu_path = np.zeros(T)
    for name, kw in online.items():
        t0 = time.perf_counter()
        try:
            res = MARTHE(setup, {"lr": lr0}, hypergrad_lr=beta, max_hypergrad_norm=clip,
                         **kw).run(progress=progress)
        except FloatingPointError as e:     # HypergradientError: report it, do not hide it
            results[name] = {"val_acc": math.nan, "test_acc": math.nan, "note": str(e)[:200]}
            tick(bar)
            continue
        p = np.array([lr0] + [r["lr"] for r in res.history[:-1]])
        paths[name] = p
        val_curves[name] = [r["val_loss"] for r in res.history]
        if name == "MARTHE":
            mu_path = np.array([r["mu"] for r in res.history])
        results[name] = {"val_acc": res.val_acc, "test_acc": res.test_acc,
                         "test_loss": res.test_loss, "final_lr": float(p[-1]),
                         "peak_lr": float(p.max()), "peak_step": int(p.argmax()) + 1,
                         "seconds": time.perf_counter() - t0,
                         "setting": f"lr0={lr0}, beta={beta}"}
        tick(bar)
    best = None
    for lr in fixed_grid:       # fixed lr: the best of a small grid on the validation set
        r = _baseline(setup, {"lr": np.float64(lr)})
        rows.append({"experiment": "baseline", "seed": seed, "method": "fixed lr", "lr": lr,
                     "val_acc": r[1], "test_acc": r[3]})
        if best is None or r[1] > best[1][1]:
            best = (lr, r)
        tick(bar)
    results["fixed lr"] = {"val_acc": best[1][1], "test_acc": best[1][3], "test_loss": best[1][2],
                           "final_lr": best[0], "setting": f"lr={best[0]} (best of {fixed_grid})"}
    paths["fixed lr"] = np.full(T, best[0])
    exp_setup = Setup(model, split, scheduled(SGD(lr=lr0), ExponentialDecay(0.999)), steps=T,
                      batch_size=batch, seed=seed, init_seed=seed)
    best = None
    for lr in exp_grid:
        for d in decays:
            gamma = d ** (1.0 / T)
            r = _baseline(exp_setup, {"lr": np.float64(lr), "gamma": np.float64(gamma)})
            rows.append({"experiment": "baseline", "seed": seed, "method": "exponential decay",
                         "lr": lr, "decay": d, "gamma": gamma, "val_acc": r[1], "test_acc": r[3]})
            if best is None or r[1] > best[2][1]:
                best = (lr, d, r)
            tick(bar)
    lr, d, r = best
    results["exponential decay"] = {"val_acc": r[1], "test_acc": r[3], "test_loss": r[2],
                                    "final_lr": lr * d,
                                    "setting": f"lr={lr}, x{d} over the run (best of "
                                               f"{exp_grid} x {decays})"}
    paths["exponential decay"] = lr * (d ** (1.0 / T)) ** np.arange(T)
    for name, r in results.items():
        rows.append({"experiment": "comparison", "seed": seed, "method": name, **r})
    for name, p in paths.items():
        # every step to 100, then every 25th and the last (the plot has them all)
        rows += [{"experiment": "schedule", "seed": seed, "method": name, "step": t + 1,
                  "lr": float(v)} for t, v in enumerate(p)
                 if t < 100 or (t + 1) % 25 == 0 or t == len(p) - 1]
    return results, paths, val_curves, mu_path


COLORS = {"MARTHE": "C3", "RTHO": "C2", "HD": "C0", "exponential decay": "C1", "fixed lr": "C7"}


def _plot(path: str, paths: dict, val_curves: dict, results: dict, mu_path, T: int) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(16, 4.6))
    FigureCanvasAgg(fig)
    ax1, ax2, ax3 = fig.subplots(1, 3)
    steps = np.arange(1, T + 1)
    for name, p in paths.items():
        ax1.plot(steps, p, color=COLORS[name], label=name, lw=1.6 if name == "MARTHE" else 1.1)
    ax1.set_yscale("log")
    ax1.set_xlabel("training step")
    ax1.set_ylabel("learning rate (log scale)")
    ax1.set_title("Learning-rate schedules")
    ax1.legend(fontsize=8, loc="center right", framealpha=0.9)
    axm = ax1.twinx()
    axm.plot(steps, mu_path, ".", ms=1.5, color="C3", alpha=0.3)
    axm.set_ylabel("MARTHE's adaptive mu (dots)", color="C3")
    axm.set_ylim(-0.05, 1.05)
    k = max(1, T // 50)
    for name, v in val_curves.items():
        v = np.asarray(v)
        if len(v) >= k:
            ax2.plot(steps[k - 1:], np.convolve(v, np.ones(k) / k, mode="valid"),
                     color=COLORS[name], label=name)
    ax2.set_yscale("log")
    ax2.set_xlabel("training step")
    ax2.set_ylabel(f"validation loss (mean of the last {k} steps)")
    ax2.set_title("Validation loss during the online runs")
    ax2.legend(fontsize=8)
    names = list(results)
    acc = [100 * results[n]["test_acc"] for n in names]
    ax3.bar(range(len(names)), acc, color=[COLORS[n] for n in names])
    for i, a in enumerate(acc):
        ax3.text(i, a, f"{a:.1f}", ha="center", va="bottom", fontsize=8)
    ax3.set_xticks(range(len(names)))
    ax3.set_xticklabels(names, fontsize=8, rotation=15)
    lo = min(acc)
    ax3.set_ylim(max(0.0, lo - 5), 100)
    ax3.set_ylabel("test accuracy (%)")
    ax3.set_title("Digits test accuracy after the run (this seed)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run(quick: bool, out_dir: str, progress: bool = True) -> Report:
    from ..data import digits

    os.makedirs(out_dir, exist_ok=True)
    if quick:
        sizes, check_T, T, seeds = (64, 16, 10), 30, 30, [0]
        fixed_grid, exp_grid, decays = [0.1, 0.3], [0.3], [0.1]
    else:
        sizes, check_T, T, seeds = (64, 32, 10), 100, 3000, [0, 1, 2]
        fixed_grid, exp_grid, decays = [0.03, 0.1, 0.3, 1.0], [0.3, 1.0], [0.1, 0.01]
    split = digits(seed=0)
    with jit_backend("python" if quick else None):   # quick: no numba compile in a test
        return _run(quick, out_dir, progress, split, sizes, check_T, T, seeds, fixed_grid,
                    exp_grid, decays)


def _run(quick, out_dir, progress, split, sizes, check_T, T, seeds, fixed_grid, exp_grid,
         decays) -> Report:
    from ..hypergrad import Setup
    from ..models import MLP
    from ..online import MARTHE
    from ..optim import SGD

    batch, lr0, beta, clip = 32, 0.1, 0.1, 1.0
    model = MLP(sizes)
    n_runs = 2 + len(seeds) * (3 + len(fixed_grid) + len(exp_grid) * len(decays))
    bar = progress_bar(n_runs, "marthe: runs", progress)
    rows, claims = [], []

    # 1. mu = 1, beta = 0: the tangent against central differences (SGD with momentum,
    #    so the tangent goes through the momentum buffer too)
    h_check = {"lr": 0.1, "momentum": 0.5}
    setup_check = Setup(model, split, SGD(**h_check), steps=check_T, batch_size=batch)
    tangent, fd = _tangent_vs_fd(setup_check, h_check)
    rel = _rel(tangent, fd)
    rows.append({"experiment": "tangent_vs_fd", "T": check_T, "tangent": tangent,
                 "finite_difference": fd, "rel_diff": rel})
    claims.append(Claim(
        "mu = 1, beta = 0: tangent = d(val loss)/d(log lr)", "",
        "the paper's hypergradient (mu = 1 is RTHO, the exact tangent of the run so far); "
        "authors' README (awslabs/adatune): mu = 1 behaves as RTHO",
        f"tangent {tangent:.10g}, central differences {fd:.10g}: relative difference {rel:.1e}",
        f"relative difference <= {FD_TOL:g} (central differences in log lr, step {FD_STEP:g}, "
        "float64)", rel <= FD_TOL, exact=True, quick_ok=True))
    tick(bar)

    # 2. mu = 0: the lr trajectory is HD on the validation loss
    setup_hd = Setup(model, split, SGD(lr=lr0), steps=check_T, batch_size=batch)
    res0 = MARTHE(setup_hd, {"lr": lr0}, mu=0.0, hypergrad_lr=beta).run()
    # the lr used at step t is the one before that step's hyper-update
    ours = np.array([lr0] + [r["lr"] for r in res0.history[:-1]])
    ref = _hd_val_reference(setup_hd, lr0, beta, check_T)
    worst = float(np.max(np.abs(ours - ref) / np.abs(ref)))
    rows += [{"experiment": "mu0_vs_hd_val", "step": t + 1, "lr_online": a, "lr_reference": b}
             for t, (a, b) in enumerate(zip(ours, ref))]
    claims.append(Claim(
        "mu = 0: the lr trajectory is HD on the validation loss", "",
        "the paper (mu = 0 gives HD, Baydin et al. 2018); authors' README (awslabs/adatune): "
        "mu = 0 is HD with the outer gradient on the validation set",
        f"{check_T} steps, lr {ref[0]:.4g} -> {ref[-1]:.6g}; largest relative difference "
        f"from the independent computation {worst:.1e}",
        f"relative difference <= {HD_TOL:g} at every step", worst <= HD_TOL,
        exact=True, quick_ok=True))
    tick(bar)

    # 3. the schedule comparison: plain SGD; per seed, the same data order and initial
    #    weights for every method
    per_seed = []
    for seed in seeds:
        per_seed.append(_compare(model, split, seed, T, batch, lr0, beta, clip, fixed_grid,
                                 exp_grid, decays, rows, bar, progress))
    if bar is not None:
        bar.close()
    results, paths, val_curves, mu_path = per_seed[0]
    methods = list(results)
    mean_acc = {}
    for n in methods:
        accs = [r[0][n]["test_acc"] for r in per_seed]
        if not any(math.isnan(a) for a in accs):
            mean_acc[n] = float(np.mean(accs))
        rows.append({"experiment": "comparison_mean", "method": n, "seeds": len(seeds),
                     "mean_test_acc": float(np.mean(accs)), "test_accs": " ".join(
                         f"{a:.4f}" for a in accs)})
    order = sorted(mean_acc, key=lambda n: -mean_acc[n])
    ordering = " >= ".join(f"{n} {100 * mean_acc[n]:.1f}%" for n in order)
    failed = [n for n in methods if n not in mean_acc]
    if failed:
        notes = {n: next((r[0][n].get("note") for r in per_seed if r[0][n].get("note")), "")
                 for n in failed}
        ordering += "; failed: " + ", ".join(f"{n} ({notes[n]})" for n in failed)
    marthe_acc = mean_acc.get("MARTHE", math.nan)
    top = max(mean_acc.values())
    claims.append(Claim(
        "MARTHE's test accuracy >= the other schedules'",
        "MARTHE compares favourably with HD, RTHO and fixed/decaying schedules in final test "
        "accuracy (CIFAR-10 / VGG-11 and CIFAR-100 / ResNet-18); the table's numbers were not "
        "available here",
        "the paper's experiments: results table (arXiv:1910.08525)",
        f"digits test accuracy, mean of {len(seeds)} seed{'s' * (len(seeds) > 1)}: {ordering}",
        "MARTHE within 0.5 points of the best method",
        bool(marthe_acc >= top - 0.005), exact=False, quick_ok=False))
    shapes, n_ok = [], 0
    for seed, (res, _, _, _) in zip(seeds, per_seed):
        m = res["MARTHE"]
        if "peak_lr" not in m:
            shapes.append(f"seed {seed}: failed")
            continue
        ok = m["peak_lr"] >= 1.2 * lr0 and m["final_lr"] <= 0.5 * m["peak_lr"]
        n_ok += ok
        shapes.append(f"seed {seed}: peak {m['peak_lr']:.3g} at step {m['peak_step']}, "
                      f"final {m['final_lr']:.3g}")
    claims.append(Claim(
        "MARTHE's schedule rises, then decays",
        "the learned schedules rise early in training, then decay (the authors note that the "
        "shape is not imposed and varies with the run)",
        "Fig. 3 (arXiv:1910.08525, learned schedules)",
        f"from lr {lr0:g} over {T} steps: " + "; ".join(shapes) + _rtho_shape(per_seed[0][0]),
        "peak >= 1.2 x the initial lr and final <= 0.5 x the peak, in most seeds",
        n_ok > len(seeds) / 2, exact=False, quick_ok=False))

    csv_path = os.path.join(out_dir, f"{PAPER}.csv")
    png_path = os.path.join(out_dir, f"{PAPER}.png")
    write_csv(csv_path, rows)
    _plot(png_path, paths, val_curves, results, mu_path, T)
    settings = (
        f"Digits, a tanh MLP {'-'.join(map(str, sizes))}, plain SGD, batch {batch}, float64; "
        f"the paper trains VGG-11 on CIFAR-10 and ResNet-18 on CIFAR-100 for hundreds of epochs "
        f"on a GPU, which does not fit here. Identities: {check_T} steps (the mu = 1 check with "
        f"SGD lr 0.1, momentum 0.5, so the tangent runs through the momentum buffer; the mu = 0 "
        f"check with plain SGD from lr {lr0}, beta = {beta}). Comparison: {T} steps "
        f"(about {T * batch / len(split.train.x):.0f} epochs of the 1,077 training digits); the "
        f"online methods (MARTHE with adaptive mu, RTHO mu = 1, HD mu = 0) all start at lr "
        f"{lr0}, take one hyper-step per training step on log lr with beta = {beta} (fixed: "
        f"alpha = 0) and hypergradients clipped to norm {clip}, the validation gradient on the "
        f"whole validation split; these values were set once, not tuned per method. The fixed "
        f"lr and exponential-decay baselines take the best of a small grid on validation "
        f"accuracy (fixed {fixed_grid}; exponential from {exp_grid} decaying by {decays} over "
        f"the run), per seed. Seeds {seeds} set the data order and the initial weights; test "
        f"accuracy is on the 360 held-out digits (a digit is 0.28 points), averaged over the "
        f"seeds; the plot shows seed {seeds[0]}."
        + (" Quick mode: a smaller MLP, shorter runs and grids." if quick else ""))
    return Report(PAPER, TITLE, claims, csv_path, png_path, settings)
