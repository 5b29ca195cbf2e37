"""The command line: ``python -m hyperopt {tune,hd,compare,plan}``.

``tune`` (the default) tunes hyperparameters with whole-run forward
hypergradients, on embedded digits unless told otherwise; ``hd`` runs one
online method (SGD-HD, Adam-HD, RTHO, MARTHE) for one training run;
``compare`` runs fixed schedules and the online methods side by side;
``plan`` prints the mode planner's estimates.  Each writes a CSV and a PNG to
``--out``.  Bad arguments get a one-line error and exit code 2.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

MODELS = ("logreg", "mlp", "cnn", "lstm")
OPTIMIZERS = ("sgd", "adam")


class UsageError(Exception):
    """A bad argument: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage too)
        raise UsageError(f"{self.prog}: error: {message}")


# -- argument checks -----------------------------------------------------------------

def _int_at_least(lo: int):
    what = "a positive integer" if lo == 1 else "a non-negative integer"

    def parse(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            v = lo - 1
        if v < lo:
            raise argparse.ArgumentTypeError(f"expected {what}, got {s!r}")
        return v
    return parse


_positive_int, _nonneg_int = _int_at_least(1), _int_at_least(0)


def _finite(lo=None, hi=None, lo_open=False, hi_open=False):
    def parse(s: str) -> float:
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {s!r}")
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {s!r}")
        if lo is not None and (v < lo or (lo_open and v == lo)):
            raise argparse.ArgumentTypeError(f"must be {'>' if lo_open else '>='} {lo}, got {s}")
        if hi is not None and (v > hi or (hi_open and v == hi)):
            raise argparse.ArgumentTypeError(f"must be {'<' if hi_open else '<='} {hi}, got {s}")
        return v
    return parse


def _out_dir(path: str) -> str:
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".write-test-{os.getpid()}")
        with open(probe, "w") as f:
            f.write("")
        os.remove(probe)
    except OSError as e:
        raise UsageError(f"python -m hyperopt: error: cannot write to output folder {path!r}: "
                         f"{e.strerror or e}")
    return path


def _common(p: argparse.ArgumentParser, steps: int, lr: float, momentum: float, out: str):
    p.add_argument("--model", default="mlp", choices=MODELS,
                   help="model (default mlp; logreg, mlp and cnn train on digits, lstm is a "
                        "character language model on the shipped Shakespeare text)")
    p.add_argument("--hidden", type=_positive_int, default=64,
                   help="hidden units of the MLP or LSTM (default 64)")
    p.add_argument("--optimizer", default="sgd", choices=OPTIMIZERS,
                   help="inner optimizer (default sgd with momentum)")
    p.add_argument("--steps", type=_positive_int, default=steps,
                   help=f"training steps per run (default {steps})")
    p.add_argument("--batch-size", type=_positive_int, default=64, help="default 64")
    p.add_argument("--lr", type=_finite(0.0, lo_open=True), default=lr,
                   help=f"initial learning rate (default {lr})")
    p.add_argument("--momentum", type=_finite(0.0, 1.0, hi_open=True), default=momentum,
                   help=f"initial momentum, or Adam's beta1 (default {momentum})")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="data split, batches and init")
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    p.add_argument("--out", default=out, help=f"output folder (default {out})")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-jit", action="store_true", help="run training steps eagerly")
    p.add_argument("--threads", type=_positive_int, default=1,
                   help="BLAS threads (default 1: these models are small, and a second BLAS "
                        "thread on a busy machine costs more than it gives)")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="python -m hyperopt",
                 description="Hypergradient-based hyperparameter optimization on embedded data.")
    sub = ap.add_subparsers(dest="command", parser_class=_Parser)

    t = sub.add_parser("tune", help="tune hyperparameters with whole-run forward hypergradients",
                       description="Tune hyperparameters by gradient descent on the validation "
                                   "loss after a whole training run (forward mode: memory flat "
                                   "in the number of steps).")
    _common(t, steps=1000, lr=0.01, momentum=0.5, out="runs/tune")
    t.add_argument("--tune", default="lr,momentum",
                   help="comma-separated hyperparameters to tune (default lr,momentum; also "
                        "weight_decay, init_scale, label_smoothing, beta2)")
    t.add_argument("--hyper-iters", type=_nonneg_int, default=25,
                   help="hyper-iterations (default 25)")
    t.add_argument("--hyper-lr", type=_finite(0.0, lo_open=True), default=0.1,
                   help="Adam step on the unconstrained hyperparameters (default 0.1)")
    t.add_argument("--mode", default="auto", choices=("auto", "forward", "reverse"),
                   help="how to differentiate the run (default: the planner decides)")
    t.add_argument("--chunk-size", type=_positive_int, default=None,
                   help="tangent directions per forward pass")
    t.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in --out")

    h = sub.add_parser("hd", help="one training run with an online hypergradient method")
    _common(h, steps=1000, lr=0.01, momentum=0.0, out="runs/hd")
    h.add_argument("--method", default="marthe",
                   choices=("sgd", "sgdhd", "sgdnhd", "adamhd", "rtho", "marthe"))
    h.add_argument("--hyper-lr", type=_finite(0.0), default=None,
                   help="hypergradient step (default: per method)")
    h.add_argument("--mu", default="adaptive", help="MARTHE's mu in [0, 1] or 'adaptive'")

    c = sub.add_parser("compare", help="fixed schedules vs online methods on one task")
    _common(c, steps=1000, lr=0.01, momentum=0.0, out="runs/compare")

    p = sub.add_parser("plan", help="the mode planner's time and memory estimates")
    _common(p, steps=1000, lr=0.01, momentum=0.5, out="runs/plan")
    p.add_argument("--K", type=_positive_int, default=2, help="number of hyperparameters")
    p.add_argument("--memory-budget", type=_finite(0.0, lo_open=True), default=None,
                   help="bytes (default: half of this machine's memory)")
    return ap


# -- building a setup ------------------------------------------------------------

def _setup(args, steps=None):
    from .data import digits, text
    from .hypergrad import Setup
    from .models import CNN, MLP, CharLSTM, LogisticRegression
    from .optim import SGD, Adam
    dtype = np.dtype(args.dtype)
    if args.model == "lstm":
        data = text(seq_len=16, seed=args.seed)
        model = CharLSTM(len(data.vocab), embed=16, hidden=args.hidden)
    else:
        data = digits(seed=args.seed, images=args.model == "cnn", dtype=dtype)
        model = {"logreg": lambda: LogisticRegression(64, 10),
                 "mlp": lambda: MLP((64, args.hidden, 10)),
                 "cnn": lambda: CNN()}[args.model]()
    if args.optimizer == "sgd":
        opt = SGD(lr=args.lr, momentum=args.momentum)
    else:
        opt = Adam(lr=args.lr, betas=(args.momentum if args.momentum > 0 else 0.9, 0.999))
    return Setup(model, data, opt, steps=steps or args.steps, batch_size=args.batch_size,
                 seed=args.seed, init_seed=args.seed, dtype=dtype, jit=not args.no_jit)


def _dataset(args) -> str:
    return "the Shakespeare text" if args.model == "lstm" else "digits"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _table(headers, rows) -> str:
    cells = [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = lambda r: "  ".join(str(c).rjust(w) for c, w in zip(r, widths))
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])


# -- tune -------------------------------------------------------------------------

def cmd_tune(args) -> int:
    from .optim import Adam
    from .tune import Tuner, write_csv
    names = [s.strip() for s in args.tune.split(",") if s.strip()]
    setup = _setup(args)
    alias = {"momentum": "beta1" if args.optimizer == "adam" else "momentum"}
    names = [alias.get(n, n) for n in names]
    known = setup.defaults
    bad = [n for n in names if n not in known or setup.constraints.get(n, "x") == "x"]
    if bad or not names:
        raise UsageError(f"python -m hyperopt tune: error: cannot tune {bad or names}; "
                         f"choose from {sorted(k for k in known if k in setup.constraints)}")
    out = _out_dir(args.out)
    start = {n: setup.defaults[n] for n in names}
    if "weight_decay" in start and start["weight_decay"] == 0:
        start["weight_decay"] = 1e-4   # 0 is the closed end of its range: start inside
    if "label_smoothing" in start and start["label_smoothing"] == 0:
        start["label_smoothing"] = 0.01
    tuner = Tuner(setup, start, names, hyper_optimizer=Adam(lr=args.hyper_lr), mode=args.mode,
                  chunk_size=args.chunk_size)
    ckpt = os.path.join(out, "checkpoint.pkl")
    csv_path = os.path.join(out, "history.csv")
    if args.resume and not os.path.exists(ckpt):
        print(f"no checkpoint in {out}; starting from the beginning", file=sys.stderr)
    elif not args.resume and os.path.exists(ckpt):
        os.remove(ckpt)
    print(f"tuning {', '.join(names)} of {args.optimizer} on {_dataset(args)} ({args.model}, "
          f"{setup.n_params()} parameters), {args.steps} steps per run, "
          f"{args.hyper_iters} hyper-iterations, mode {tuner.mode}"
          + (f" ({tuner.plan.reason})" if tuner.plan is not None else ""))
    res = tuner.run(args.hyper_iters, progress=not args.no_progress, checkpoint=ckpt,
                    resume=args.resume, on_row=lambda row: write_csv(tuner.history, csv_path))
    write_csv(res.history, csv_path)
    png = os.path.join(out, "trajectories.png")
    _plot_tune(res, names, png)

    rows = []
    for n in names:
        a, b = res.initial[n], res.tuned[n]
        rows.append([n, float(np.mean(a)), float(np.mean(b))])
    for key in ("val_loss", "val_acc", "test_loss", "test_acc"):
        rows.append([key, res.initial_eval[key], res.tuned_eval[key]])
    print()
    print(_table(["", "initial", f"tuned (it. {res.best_iteration})"], rows))
    print(f"\ntime {res.seconds:.1f} s, peak RSS {res.peak_bytes / 2**20:.0f} MiB")
    print(f"wrote {csv_path}, {png}")
    return 0


def _plot_tune(res, names, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    it = [r["iteration"] for r in res.history]
    panels = names + ["val_loss"]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2))
    for ax, name in zip(np.atleast_1d(axes), panels):
        cols = [k for k in res.history[0] if k == name or k.startswith(name + "[")]
        for col in cols:
            ax.plot(it, [r[col] for r in res.history], marker="o", ms=3, label=col)
        if name in ("lr", "weight_decay", "init_scale"):
            ax.set_yscale("log")
        ax.set_xlabel("hyper-iteration")
        ax.set_title(name)
        if len(cols) > 1:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- hd / compare -------------------------------------------------------------------

def _run_online(setup, method: str, lr: float, momentum: float, hyper_lr, mu, progress: bool):
    """One run; (lr per step, final val loss, val acc, test acc)."""
    from autodiff import grad
    from .hd import AdamHD, SGDHD, SGDNHD
    from .online import Online
    if method in ("rtho", "marthe"):
        mu_v = 1.0 if method == "rtho" else (mu if mu == "adaptive" else float(mu))
        beta = hyper_lr if hyper_lr is not None else 1e-2
        on = Online(setup, {"lr": lr}, ("lr",), mu=mu_v, hyper_lr=beta, max_hypergrad_norm=10.0)
        r = on.run(progress=progress)
        return [row["lr"] for row in r.history], r.val_loss, r.val_acc, r.test_acc
    if method == "sgd":   # the baseline: a constant lr, the setup's own training loop
        from dataclasses import replace
        from .optim import SGD
        final = replace(setup, optimizer=SGD(lr=lr, momentum=momentum), _steppers={}).train(
            progress=progress)
        lrs = [lr] * setup.steps
    else:
        cls = {"sgdhd": SGDHD, "sgdnhd": SGDNHD, "adamhd": AdamHD}[method]
        beta = hyper_lr if hyper_lr is not None else (1e-7 if method == "adamhd" else 1e-3)
        kw = {} if method == "adamhd" else {"momentum": max(momentum, 0.9 if method == "sgdnhd"
                                                                    else 0.0)}
        opt = cls(setup.init(setup.resolve({})), lr=lr, hypergrad_lr=beta, **kw)
        lrs = []
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=setup.steps, desc=method, unit="step", leave=False, mininterval=0.5)
        for t in range(setup.steps):
            x, y = setup.batch(t)
            opt.step(grad(setup.loss)(opt.params, x, y))
            lrs.append(float(np.mean(opt.lr)))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        final = opt.params
    vl, va = setup.evaluate(final, "val")
    _, ta = setup.evaluate(final, "test")
    return lrs, float(vl), va, ta


def cmd_hd(args) -> int:
    mu = args.mu
    if mu != "adaptive":
        try:
            mu = float(mu)
        except ValueError:
            mu = math.nan
        if not 0.0 <= mu <= 1.0:
            raise UsageError(f"python -m hyperopt hd: error: --mu must be in [0, 1] or "
                             f"'adaptive', got {args.mu!r}")
    out = _out_dir(args.out)
    setup = _setup(args)
    t0 = time.perf_counter()
    lrs, vl, va, ta = _run_online(setup, args.method, args.lr, args.momentum, args.hyper_lr, mu,
                                  not args.no_progress)
    secs = time.perf_counter() - t0
    _write_series(os.path.join(out, f"{args.method}.csv"), {args.method: lrs})
    _plot_lrs({args.method: lrs}, os.path.join(out, f"{args.method}.png"))
    print(_table(["method", "initial lr", "final lr", "val loss", "val acc", "test acc", "time"],
                 [[args.method, args.lr, lrs[-1], vl, va, ta, f"{secs:.1f} s"]]))
    print(f"wrote {out}/{args.method}.csv and .png")
    return 0


def cmd_compare(args) -> int:
    from .optim import SGD
    from .schedules import CosineWarmRestarts, ScheduledState, StepDecay, scheduled
    out = _out_dir(args.out)
    setup = _setup(args)
    rows, series = [], {}
    base = SGD(lr=args.lr, momentum=args.momentum)
    for name, opt in (("constant", base),
                      ("step decay", scheduled(base, StepDecay(max(args.steps // 3, 1), 0.3))),
                      ("cosine", scheduled(base, CosineWarmRestarts(args.steps)))):
        t0 = time.perf_counter()
        from dataclasses import replace
        s = replace(setup, optimizer=opt, _steppers={})
        # the lr that update t uses (a schedule's value at the start of the step)
        sched_lr = [float(np.mean(opt.lr_at(ScheduledState(t, None)))) if hasattr(opt, "lr_at")
                    else args.lr for t in range(args.steps)]
        params = s.train({}, progress=not args.no_progress)
        vl, va = s.evaluate(params, "val")
        _, ta = s.evaluate(params, "test")
        rows.append([name, float(vl), va, ta, f"{time.perf_counter() - t0:.1f} s"])
        series[name] = sched_lr
    for method in ("sgdhd", "rtho", "marthe"):
        t0 = time.perf_counter()
        lrs, vl, va, ta = _run_online(setup, method, args.lr, args.momentum, None, "adaptive",
                                      not args.no_progress)
        rows.append([method, vl, va, ta, f"{time.perf_counter() - t0:.1f} s"])
        series[method] = lrs
    _write_series(os.path.join(out, "lr.csv"), series)
    _plot_lrs(series, os.path.join(out, "lr.png"))
    print(_table(["schedule", "val loss", "val acc", "test acc", "time"], rows))
    print(f"wrote {out}/lr.csv, {out}/lr.png")
    return 0


def _write_series(path: str, series: dict) -> None:
    import csv
    names = list(series)
    n = max(len(v) for v in series.values())
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step"] + names)
        for t in range(n):
            w.writerow([t + 1] + [repr(series[k][t]) if t < len(series[k]) else "" for k in names])


def _plot_lrs(series: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for k, v in series.items():
        ax.plot(np.arange(1, len(v) + 1), v, label=k)
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("learning rate")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- plan ---------------------------------------------------------------------------

def cmd_plan(args) -> int:
    from .planner import plan
    setup = _setup(args)
    p = plan(setup, K=args.K, memory_budget=args.memory_budget)
    print(f"{args.model} on {_dataset(args)}: {setup.n_params()} parameters, K={args.K} hyperparameters, "
          f"T={args.steps} steps, memory budget {p.memory_budget / 2**20:.0f} MiB\n")
    print(p.table())
    print(f"\nchoice: {p.mode} -- {p.reason}")
    return 0


COMMANDS = {"tune": cmd_tune, "hd": cmd_hd, "compare": cmd_compare, "plan": cmd_plan}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["tune"] + argv
    try:
        args = build_parser().parse_args(argv)
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=args.threads, user_api="blas"):
            return COMMANDS[args.command](args)
    except UsageError as e:
        print(str(e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun with --resume to continue from the last checkpoint",
              file=sys.stderr)
        return 130
