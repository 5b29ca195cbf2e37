"""The command line: ``python -m hyperopt {tune,hd,compare,plan,reproduce}``.

``tune`` (the default) tunes hyperparameters with whole-run hypergradients,
on embedded digits unless told otherwise; ``hd`` runs one online method
(SGD-HD, SGDN-HD, Adam-HD, RTHO, MARTHE, or a constant learning rate) for
one training run; ``compare`` runs fixed schedules and the online methods side
by side, all with the same inner optimizer; ``plan`` prints the mode
planner's estimates.  Each writes its results (CSV), a plot (PNG, captioned
with the settings) and ``settings.json`` (every setting of the run, defaults
resolved) to ``--out``.

Every option is either honoured or refused: a subcommand lists only the
options that apply to it, and an option that does not apply to the chosen
model, method or mode (``--hidden`` with ``--model logreg``, ``--mu`` with
a method other than marthe, ``--chunk-size`` without ``--mode forward``, ...)
is an error naming both.  Defaults that depend on other choices (momentum,
Adam's beta1, the hypergradient step) are resolved after parsing, so a value
the user gives is never replaced.

``--model package.module:Factory`` trains your own model and ``--data
file.npz|file.csv`` your own data (see ``tune --help``).

Bad arguments and bad files get one line on stderr and exit code 2; a run
that diverges gets one line and exit code 3.
"""
from __future__ import annotations

import argparse
import glob
import importlib
import inspect
import json
import math
import os
import sys
import textwrap
import time

import numpy as np

MODELS = ("logreg", "mlp", "cnn", "lstm")
OPTIMIZERS = ("sgd", "adam")
HD_METHODS = ("sgd", "adam", "sgdhd", "sgdnhd", "adamhd", "rtho", "marthe")
# the inner optimizer a method runs; None: --optimizer's (sgd unless given)
METHOD_OPTIMIZER = {"sgd": "sgd", "sgdhd": "sgd", "sgdnhd": "sgd", "adam": "adam",
                    "adamhd": "adam", "rtho": None, "marthe": None}
# the hypergradient step (beta) of each method, unless --hyper-lr is given
HYPER_LR = {"sgdhd": 1e-3, "sgdnhd": 1e-3, "adamhd": 1e-7, "rtho": 1e-2, "marthe": 1e-2}
# what `tune --tune` offers, per inner optimizer (momentum is Adam's beta1 with adam)
TUNABLE = {"sgd": ("lr", "momentum", "weight_decay", "init_scale", "label_smoothing"),
           "adam": ("lr", "beta1", "beta2", "eps", "weight_decay", "init_scale",
                    "label_smoothing")}
HIDDEN_MODELS = ("mlp", "lstm")
LR_DEFAULT = 0.01


class UsageError(Exception):
    """A bad argument or input file: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def __init__(self, *a, **kw):
        kw.setdefault("allow_abbrev", False)   # --mode must not quietly mean --model
        super().__init__(*a, **kw)

    def error(self, message):  # one line, exit 2 (argparse prints usage too)
        raise UsageError(f"{self.prog}: error: {message}")


def _fail(cmd: str, message: str):
    raise UsageError(f"python -m hyperopt {cmd}: error: {message}")


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


def _model_name(s: str) -> str:
    if s in MODELS or (":" in s and all(s.split(":", 1))):
        return s
    raise argparse.ArgumentTypeError(f"invalid choice: {s!r} (choose from {', '.join(MODELS)}, "
                                     "or package.module:Factory for your own model)")


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


# -- the parser ----------------------------------------------------------------------

_MODEL_HELP = """\
your own model and data:
  --model package.module:Factory imports package.module (from the current
  directory or the Python path) and calls Factory with those of the keyword
  arguments n_features (int: features per example), n_classes (int, or None
  for a float target) and input_shape (tuple: one example's shape) that it
  declares, or with none. The object it returns needs
    init(seed, scale, dtype) -> params (a dict/list/tuple of arrays; multiply
        the initial weights by scale with plain arithmetic),
    loss(params, x, y[, label_smoothing]) -> one number, written with numpy,
  and optionally accuracy(params, x, y) -> float ('-' is printed without it).
  --data file.npz (arrays X and y, or x and y) or file.csv (numbers only; an
  optional header row; the last column is the target unless --target says)
  is split 60/20/20 into train/val/test by --seed, stratified by class when y
  holds integer labels. Without --data, the model gets the digits (64
  features, 10 classes). The built-in logreg, mlp and cnn train on --data too
  (integer class labels; X of shape (N, features), or (N, C, H, W) for cnn).
"""


def _add_model_options(p, command: str):
    p.add_argument("--model", default="mlp", type=_model_name, metavar="MODEL",
                   help="logreg, mlp, cnn or lstm (default mlp; logreg, mlp and cnn train on "
                        "digits unless --data is given, lstm is a character language model on "
                        "the shipped Shakespeare text), or package.module:Factory for your own "
                        "model (see the end of this help)")
    p.add_argument("--data", default=None, metavar="FILE",
                   help="your own data: an .npz with arrays X and y, or a numeric .csv whose "
                        "last column is the target (default: the model's built-in data)")
    p.add_argument("--target", default=None, metavar="COLUMN",
                   help="with --data file.csv: the target column, a header name or a 0-based "
                        "index (negative from the end; default the last column)")
    p.add_argument("--hidden", type=_positive_int, default=None,
                   help="hidden units of --model mlp or lstm (default 64)")
    p.add_argument("--optimizer", default=None, choices=OPTIMIZERS,
                   help="inner optimizer: sgd (with momentum) or adam (default sgd" +
                        (", or the one --method implies)" if command == "hd" else ")"))
    p.add_argument("--steps", type=_positive_int, default=1000,
                   help="training steps per run (default 1000)")
    p.add_argument("--batch-size", type=_positive_int, default=64, help="default 64")
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"),
                   help="parameters and inputs (default float64)")


def _add_run_options(p, momentum_help: str):
    p.add_argument("--lr", type=_finite(0.0, lo_open=True), default=None,
                   help=f"(initial) learning rate (default {LR_DEFAULT})")
    p.add_argument("--momentum", type=_finite(0.0, 1.0, hi_open=True), default=None,
                   help=momentum_help)
    p.add_argument("--seed", type=_nonneg_int, default=0,
                   help="data split, batches and initialization (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-jit", action="store_true",
                   help="run training steps eagerly (slower; the same results)")


def _add_output_options(p, out: str):
    p.add_argument("--out", default=out, help=f"output folder (default {out})")
    p.add_argument("--threads", type=_positive_int, default=1,
                   help="BLAS threads (default 1: these models are small, and a second BLAS "
                        "thread on a busy machine costs more than it gives)")


def _wrap(text: str) -> str:
    return textwrap.fill(text, 79)


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="python -m hyperopt",
                 description="Hypergradient-based hyperparameter optimization on embedded data "
                             "or your own. Without a subcommand: tune.")
    sub = ap.add_subparsers(dest="command", parser_class=_Parser, metavar="{tune,hd,compare,plan,reproduce}")
    fmt = argparse.RawDescriptionHelpFormatter

    t = sub.add_parser("tune", help="tune hyperparameters with whole-run hypergradients",
                       formatter_class=fmt, epilog=_MODEL_HELP,
                       description=_wrap(
                           "Tune hyperparameters by gradient descent on the validation loss "
                           "after a whole training run, differentiated in forward mode (memory "
                           "flat in the number of steps) or reverse mode (--mode; auto lets the "
                           "planner pick). Writes history.csv (one row per hyper-iteration), "
                           "trajectories.png, settings.json and a checkpoint (checkpoint.npz) "
                           "to --out."))
    _add_model_options(t, "tune")
    _add_run_options(t, "initial SGD momentum (default 0.5), or Adam's beta1 with --optimizer "
                        "adam (default 0.9)")
    t.add_argument("--tune", default="lr,momentum",
                   help="comma-separated hyperparameters to tune (default lr,momentum). With "
                        f"sgd: {', '.join(TUNABLE['sgd'])}; with adam: "
                        f"{', '.join(TUNABLE['adam'])} (momentum means beta1)")
    t.add_argument("--hyper-iters", type=_positive_int, default=25,
                   help="hyper-iterations in total, counting those a --resume finds done "
                        "(default 25)")
    t.add_argument("--hyper-lr", type=_finite(0.0, lo_open=True), default=0.1,
                   help="Adam step on the unconstrained hyperparameters (default 0.1)")
    t.add_argument("--mode", default="auto", choices=("auto", "forward", "reverse"),
                   help="how to differentiate the run (default auto: the planner decides, "
                        "after a short calibration whose time is reported)")
    t.add_argument("--chunk-size", type=_positive_int, default=None,
                   help="with --mode forward: tangent directions per forward pass (default "
                        "all in one pass)")
    t.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in --out (same settings required) up to "
                        "--hyper-iters in total")
    t.add_argument("--population", type=_positive_int, default=None, metavar="N",
                   help="run N tuning runs (members) instead of one; each checkpoints to "
                        "--out/members, and population.csv (a member column), population.png "
                        "and a summary are written (default: one run)")
    t.add_argument("--vary", default=None, choices=("lr", "seed", "both"),
                   help="with --population: what differs between members: lr (initial learning "
                        "rates on a log grid from --lr/10 to --lr*10; the default), seed (seeds "
                        "--seed, --seed+1, ...: batches and initialization) or both")
    t.add_argument("--workers", type=_positive_int, default=None, metavar="W",
                   help="with --population: run the members on a Dask LocalCluster of W worker "
                        "processes on this machine (default: one by one in this process)")
    t.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="with --population: run the members on the running Dask cluster whose "
                        "scheduler is at ADDRESS (tcp://host:8786); --out must be a folder the "
                        "workers share")
    _add_output_options(t, "runs/tune")

    h = sub.add_parser("hd", help="one training run with an online hypergradient method",
                       formatter_class=fmt, epilog=_MODEL_HELP,
                       description=_wrap("One training run whose learning rate is adapted online: "
                                   "sgdhd, sgdnhd (SGD, Nesterov) and adamhd (Baydin et al.'s "
                                   "hypergradient descent), rtho and marthe (Franceschi et al., "
                                   "Donini et al.: tangents through the run, with the inner "
                                   "optimizer of --optimizer), or sgd / adam (a constant "
                                   "learning rate, the baseline). Writes METHOD.csv (the "
                                   "learning rate per step), METHOD.png, results.csv and "
                                   "settings.json to --out."))
    _add_model_options(h, "hd")
    _add_run_options(h, "SGD momentum (default 0, 0.9 for sgdnhd), or Adam's beta1 for adam, "
                        "adamhd and --optimizer adam (default 0.9)")
    h.add_argument("--method", default="marthe", choices=HD_METHODS,
                   help="default marthe; sgd, sgdhd and sgdnhd run SGD, adam and adamhd run "
                        "Adam, rtho and marthe run --optimizer")
    h.add_argument("--hyper-lr", type=_finite(0.0), default=None,
                   help="hypergradient step: default 1e-3 (sgdhd, sgdnhd), 1e-7 (adamhd), 1e-2 "
                        "(rtho, marthe); not for sgd / adam")
    h.add_argument("--mu", default=None,
                   help="marthe only: mu in [0, 1] or 'adaptive' (default adaptive)")
    _add_output_options(h, "runs/hd")

    c = sub.add_parser("compare", help="fixed schedules vs online methods on one task",
                       formatter_class=fmt, epilog=_MODEL_HELP,
                       description=_wrap("One training run each of a constant learning rate, step "
                                   "decay, cosine annealing, hypergradient descent (sgdhd with "
                                   "sgd, adamhd with adam), RTHO and MARTHE, all with the same "
                                   "inner optimizer (--optimizer), learning rate and momentum, "
                                   "from the same initialization and batches. Writes lr.csv "
                                   "(the learning rate per step), lr.png, results.csv and "
                                   "settings.json to --out."))
    _add_model_options(c, "compare")
    _add_run_options(c, "SGD momentum (default 0), or Adam's beta1 with --optimizer adam "
                        "(default 0.9)")
    _add_output_options(c, "runs/compare")

    p = sub.add_parser("plan", help="the mode planner's time and memory estimates",
                       formatter_class=fmt, epilog=_MODEL_HELP,
                       description=_wrap(
                           "Calibrate a few steps of the training run and estimate the time and "
                           "memory of a hypergradient in forward mode, reverse mode and one-step "
                           "HD for K hyperparameters; print the planner's choice and why. Writes "
                           "plan.csv and settings.json to --out."))
    _add_model_options(p, "plan")
    p.add_argument("--K", type=_positive_int, default=2, help="number of hyperparameters "
                                                              "(default 2)")
    p.add_argument("--memory-budget", type=_finite(0.0, lo_open=True), default=None,
                   help="bytes (default: half of this machine's memory)")
    _add_output_options(p, "runs/plan")
    p.set_defaults(lr=None, momentum=None, seed=0, no_progress=True, no_jit=False)

    from .reproduce import ASSETS, PAGE, PAPERS
    r = sub.add_parser("reproduce", help="run the seed papers' claims, published figures beside "
                                         "ours",
                       description=_wrap(
                           "Run each paper's qualitative claims on embedded data, scaled down to "
                           "this machine (minutes per paper; --quick: seconds), and print per "
                           "claim the published figure and its source, ours, the pass criterion "
                           f"and PASS/FAIL. Writes {PAGE} to --out and each paper's CSV and PNG "
                           f"to --out/{ASSETS}/. Papers: hd (Baydin et al., hypergradient "
                           "descent), towers (Chandra et al., hyperoptimizer stacks), marthe "
                           "(Donini et al., RTHO/MARTHE), radam (Liu et al., RAdam), hybrid "
                           "(forward-over-reverse hypergradients). Exit code 0 when the papers "
                           "ran, failed claims included; 1 if a paper raised an error."))
    r.add_argument("targets", nargs="+", choices=PAPERS + ("all",), metavar="PAPER",
                   help=f"one or more of {', '.join(PAPERS)}, or all")
    r.add_argument("--quick", action="store_true",
                   help="seconds per paper (the test-suite scale), not the full run")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_output_options(r, "reproductions")
    return ap


# -- resolving the arguments ---------------------------------------------------------

def _custom(args) -> bool:
    return args.model not in MODELS


def _check_model_options(args) -> None:
    """Options that do not apply to the chosen model or data."""
    if not hasattr(args, "model"):   # reproduce: no model options
        return
    cmd, m = args.command, args.model
    if args.hidden is not None and m not in HIDDEN_MODELS:
        why = ("is built by its factory" if _custom(args) else "has no hidden layer size to set")
        _fail(cmd, f"--hidden applies to --model mlp and lstm; --model {m} {why}")
    if args.data is not None and m == "lstm":
        _fail(cmd, "--data does not apply to --model lstm (a character model of the shipped "
                   "text); use --model logreg, mlp, cnn or package.module:Factory")
    if args.target is not None and (args.data is None or
                                    not str(args.data).lower().endswith(".csv")):
        _fail(cmd, "--target applies to --data file.csv only (it names the target column)")
    if args.hidden is None:
        args.hidden = 64


def _resolve_tune(args) -> None:
    args.optimizer = args.optimizer or "sgd"
    if args.momentum is None:
        args.momentum = 0.9 if args.optimizer == "adam" else 0.5
    args.lr = LR_DEFAULT if args.lr is None else args.lr
    if args.chunk_size is not None and args.mode != "forward":
        _fail("tune", f"--chunk-size applies to --mode forward only, not --mode {args.mode}"
                      + (" (the planner picks the chunk size)" if args.mode == "auto" else
                         " (one tape: no tangent directions to chunk)"))
    if args.population is None:
        for opt, given in (("--workers", args.workers), ("--scheduler", args.scheduler),
                           ("--vary", args.vary)):
            if given is not None:
                _fail("tune", f"{opt} applies to --population N only" + (
                    " (what differs between the members)" if opt == "--vary" else
                    " (the members run as Dask tasks); one tuning run uses this process"))
    elif args.workers is not None and args.scheduler is not None:
        _fail("tune", "give --workers (a LocalCluster on this machine) or --scheduler (a "
                      "running cluster), not both")
    args.vary = args.vary or "lr"


def _resolve_hd(args) -> None:
    method, given = args.method, args.optimizer
    implied = METHOD_OPTIMIZER[method]
    if given is not None and implied is not None and given != implied:
        use = {("sgdhd", "adam"): "adamhd", ("sgdnhd", "adam"): "adamhd",
               ("adamhd", "sgd"): "sgdhd or sgdnhd", ("sgd", "adam"): "adam",
               ("adam", "sgd"): "sgd"}[(method, given)]
        _fail("hd", f"--method {method} runs {implied.upper() if implied == 'sgd' else 'Adam'}, "
                    f"not --optimizer {given}; use --method {use} for {given}")
    args.optimizer = implied or given or "sgd"
    if args.momentum is None:
        args.momentum = 0.9 if (args.optimizer == "adam" or method == "sgdnhd") else 0.0
    elif method == "sgdnhd" and args.momentum == 0:
        _fail("hd", "--method sgdnhd (Nesterov momentum) needs --momentum > 0, got 0")
    args.lr = LR_DEFAULT if args.lr is None else args.lr
    if method in ("sgd", "adam"):
        if args.hyper_lr is not None:
            _fail("hd", f"--hyper-lr does not apply to --method {method} (a constant learning "
                        "rate: no hypergradient step)")
    elif args.hyper_lr is None:
        args.hyper_lr = HYPER_LR[method]
    if args.mu is not None and method != "marthe":
        _fail("hd", f"--mu applies to --method marthe only, not {method}"
                    + (" (rtho is mu = 1)" if method == "rtho" else ""))
    if method == "marthe":
        mu = "adaptive" if args.mu is None else args.mu
        if mu != "adaptive":
            try:
                mu = float(mu)
            except ValueError:
                mu = math.nan
            if not 0.0 <= mu <= 1.0:
                _fail("hd", f"--mu must be in [0, 1] or 'adaptive', got {args.mu!r}")
        args.mu = mu


def _resolve_compare(args) -> None:
    args.optimizer = args.optimizer or "sgd"
    if args.momentum is None:
        args.momentum = 0.9 if args.optimizer == "adam" else 0.0
    args.lr = LR_DEFAULT if args.lr is None else args.lr


def _resolve_plan(args) -> None:
    args.optimizer = args.optimizer or "sgd"
    args.momentum = 0.9 if args.optimizer == "adam" else 0.5
    args.lr = LR_DEFAULT


# -- data and models -----------------------------------------------------------------

def _load_data(args):
    """``(split, description)``: the model's data, or --data's."""
    from .data import Dataset, digits, load_split, text
    cmd = args.command
    dtype = np.dtype(args.dtype)
    if args.model == "lstm":
        return text(seq_len=16, seed=args.seed), "the Shakespeare text"
    if args.data is None:
        return digits(seed=args.seed, images=args.model == "cnn", dtype=dtype), "digits"
    try:
        split = load_split(args.data, seed=args.seed, target=args.target)
    except ValueError as e:
        _fail(cmd, f"--data: {e}")
    X, y = split.train
    name = os.path.basename(str(args.data))
    shape = (f"{X.shape[1]} features" if X.ndim == 2 else
             f"shape {'x'.join(map(str, X.shape[1:]))}")
    kind = (f"{split.n_classes} classes" if split.n_classes is not None
            else "a float target")
    desc = f"{name} ({sum(len(d.x) for d in split)} examples of {shape}, {kind})"
    if not _custom(args):
        if split.n_classes is None:
            _fail(cmd, f"--data {name}: y holds non-integer values {np.asarray(y).dtype} (a "
                       f"regression target?); --model {args.model} is a classifier of integer "
                       "labels 0..C-1: use --model package.module:Factory with a regression loss")
        want = 4 if args.model == "cnn" else 2
        if X.ndim != want:
            _fail(cmd, f"--data {name}: --model {args.model} needs X of shape "
                       + ("(N, C, H, W) (images)" if want == 4 else "(N, features)")
                       + f", got (N, {', '.join(map(str, X.shape[1:]))})"
                       + ("; flatten it, or use --model cnn for images" if want == 2 and X.ndim == 4
                          else ""))
        # the built-in models compute in --dtype
        split = split._replace(**{f: Dataset(np.asarray(d.x, dtype=dtype), d.y)
                                  for f, d in zip(split._fields, split)})
    return split, desc


class _UserModel:
    """A model given as ``--model package.module:Factory``, adapted to `Setup`:
    ``loss`` takes label_smoothing even where the model's does not (the CLI then
    never sets it), and ``accuracy`` is NaN (printed '-') where the model has none."""

    def __init__(self, spec: str, model, kwargs: dict):
        self.spec, self.model, self.kwargs = spec, model, kwargs
        self.takes_smoothing = _takes_fourth_argument(model.loss)
        self.has_accuracy = callable(getattr(model, "accuracy", None))

    def init(self, seed=0, scale=1.0, dtype=np.float64):
        return self.model.init(seed, scale, dtype)

    def loss(self, params, x, y, label_smoothing=0.0):
        if self.takes_smoothing:
            return self.model.loss(params, x, y, label_smoothing)
        return self.model.loss(params, x, y)

    def accuracy(self, params, x, y) -> float:
        return float(self.model.accuracy(params, x, y)) if self.has_accuracy else math.nan

    def apply(self, params, x):
        return self.model.apply(params, x)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{self.spec}({args})"


def _takes_fourth_argument(fn) -> bool:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    if any(p.kind is p.VAR_POSITIONAL for p in params) or any(p.name == "label_smoothing"
                                                              for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 4


def _user_model(args, split) -> _UserModel:
    cmd, spec = args.command, args.model
    module_name, attr = spec.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # ModuleNotFoundError, or the module's own error while importing
        what = (f"no module named {module_name!r} on the Python path (the current directory "
                "or PYTHONPATH)" if isinstance(e, ModuleNotFoundError) and e.name and
                module_name.startswith(e.name) else f"importing it raised "
                f"{type(e).__name__}: {e}")
        _fail(cmd, f"--model {spec}: {what}")
    factory = module
    for part in attr.split("."):
        if not hasattr(factory, part):
            _fail(cmd, f"--model {spec}: module {module_name!r} has no attribute {attr!r}")
        factory = getattr(factory, part)
    if not callable(factory):
        _fail(cmd, f"--model {spec}: {attr} is a {type(factory).__name__}, not a class or "
                   "function to call")
    X = split.train.x
    offered = {"n_features": int(np.prod(X.shape[1:])), "n_classes": split.n_classes,
               "input_shape": tuple(int(d) for d in X.shape[1:])}
    try:
        declared = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        declared = {}
    kwargs = {k: v for k, v in offered.items() if k in declared}
    try:
        model = factory(**kwargs)
    except Exception as e:
        _fail(cmd, f"--model {spec}: {attr}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) "
                   f"raised {type(e).__name__}: {e}")
    missing = [m for m in ("init", "loss") if not callable(getattr(model, m, None))]
    if missing:
        _fail(cmd, f"--model {spec}: {attr}() returned a {type(model).__name__}, which has no "
                   f"{' and no '.join(missing)} method; a model needs init(seed, scale, dtype) "
                   "and loss(params, x, y) (accuracy(params, x, y) is optional)")
    return _UserModel(spec, model, kwargs)


def _probe(args, setup) -> None:
    """Run a custom model's methods once, so a model that does not fit gets one line."""
    cmd, spec = args.command, args.model
    step = "init(seed, scale, dtype)"
    try:
        params = setup.init(setup.resolve({}))
        step = "loss(params, x, y) on a training batch"
        x, y = setup.batch(0)
        setup.loss(params, x, y)
        step = "accuracy(params, x, y) on the validation set"
        setup.evaluate(params, "val")
    except Exception as e:
        _fail(cmd, f"--model {spec}: {step} raised {type(e).__name__}: {e}")


def _optimizer(name: str, lr: float, momentum: float):
    from .optim import SGD, Adam
    if name == "sgd":
        return SGD(lr=lr, momentum=momentum)
    return Adam(lr=lr, betas=(momentum, 0.999))


def _setup(args):
    from .hypergrad import Setup
    from .models import CNN, MLP, CharLSTM, LogisticRegression
    cmd = args.command
    data, args.data_description = _load_data(args)
    n_train = len(data.train.x)
    if args.batch_size > n_train:
        _fail(cmd, f"--batch-size {args.batch_size} is larger than the training set "
                   f"({n_train} examples of {args.data_description})")
    if _custom(args):
        model = _user_model(args, data)
    elif args.model == "lstm":
        model = CharLSTM(len(data.vocab), embed=16, hidden=args.hidden)
    else:
        X = data.train.x
        n_in, n_classes = int(np.prod(X.shape[1:])), int(data.n_classes)
        model = {"logreg": lambda: LogisticRegression(n_in, n_classes),
                 "mlp": lambda: MLP((n_in, args.hidden, n_classes)),
                 "cnn": lambda: CNN(in_shape=X.shape[1:], n_classes=n_classes)}[args.model]()
    opt = _optimizer(args.optimizer, args.lr, args.momentum)
    setup = Setup(model, data, opt, steps=args.steps, batch_size=args.batch_size,
                  seed=args.seed, init_seed=args.seed, dtype=np.dtype(args.dtype),
                  jit=not args.no_jit)
    if _custom(args):
        _probe(args, setup)
    return setup


def _dataset(args) -> str:
    return getattr(args, "data_description", None) or (
        "the Shakespeare text" if args.model == "lstm" else "digits")


def _model_label(args, setup) -> str:
    m = setup.model
    if args.model == "mlp":
        return f"mlp {'-'.join(map(str, m.sizes))}"
    if args.model == "lstm":
        return f"lstm (hidden {m.hidden})"
    return args.model


def _momentum_label(args) -> str:
    return f"{'beta1' if args.optimizer == 'adam' else 'momentum'} {args.momentum:g}"


def _caption(args, setup, extra: str = "") -> str:
    return (f"{_model_label(args, setup)} on {_dataset(args)}; {args.optimizer} (lr "
            f"{args.lr:g}, {_momentum_label(args)}); {args.steps} steps of batch "
            f"{args.batch_size}; seed {args.seed}; {args.dtype}" + (f"; {extra}" if extra else ""))


def _settings(args, setup, **extra) -> dict:
    """Every setting of the run, defaults resolved, read back from what was built."""
    s = {"command": args.command, "model": repr(setup.model), "parameters": setup.n_params(),
         "data": _dataset(args), "optimizer": repr(setup.optimizer),
         "steps": setup.steps, "batch_size": setup.batch_size, "seed": setup.seed,
         "dtype": str(np.dtype(setup.dtype)), "jit": bool(setup.jit), "threads": args.threads,
         "progress": not args.no_progress}
    s.update(extra)
    return s


def _write_settings(out: str, settings: dict) -> str:
    path = os.path.join(out, "settings.json")
    with open(path, "w") as f:
        json.dump(settings, f, indent=1, default=str)
        f.write("\n")
    return path


def _fmt(v) -> str:
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def _table(headers, rows) -> str:
    cells = [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = lambda r: "  ".join(str(c).rjust(w) for c, w in zip(r, widths))
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])


def _write_rows(path: str, headers, rows) -> None:
    import csv
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(headers)
        for r in rows:
            w.writerow([repr(float(c)) if isinstance(c, float) else c for c in r])


# -- tune -------------------------------------------------------------------------

def cmd_tune(args) -> int:
    from .optim import Adam
    from .tune import Tuner, write_csv
    _resolve_tune(args)
    offered = list(TUNABLE[args.optimizer])
    requested = [s.strip() for s in args.tune.split(",") if s.strip()]
    alias = {"momentum": "beta1"} if args.optimizer == "adam" else {}
    names = list(dict.fromkeys(alias.get(n, n) for n in requested))
    setup = _setup(args)
    if isinstance(setup.model, _UserModel) and not setup.model.takes_smoothing:
        offered.remove("label_smoothing")
    bad = [n for n in names if n not in offered]
    if bad or not names:
        other = [n for n in bad if n in TUNABLE["adam" if args.optimizer == "sgd" else "sgd"]]
        _fail("tune", f"cannot tune {', '.join(bad) or repr(args.tune)} with --optimizer "
                      f"{args.optimizer}" + (f" ({', '.join(other)}: the other optimizer's)"
                                             if other else "")
                      + (" (label_smoothing: the model's loss takes no label_smoothing)"
                         if "label_smoothing" in bad and "label_smoothing" not in offered
                         else "")
                      + f"; choose from {', '.join(offered)}")
    start = {n: setup.defaults[n] for n in names}
    for n in ("momentum", "beta1"):
        if n in start and start[n] == 0:
            _fail("tune", f"cannot tune {n} starting at --momentum 0, the closed end of its range "
                          "[0, 1): give --momentum > 0, or leave it out of --tune")
    if "weight_decay" in start and start["weight_decay"] == 0:
        start["weight_decay"] = 1e-4   # 0 is the closed end of its range: start inside
    if "label_smoothing" in start and start["label_smoothing"] == 0:
        start["label_smoothing"] = 0.01
    if args.chunk_size is not None and args.chunk_size > len(names):
        _fail("tune", f"--chunk-size {args.chunk_size} is more than the {len(names)} tangent "
                      f"direction(s) tuned ({', '.join(names)}): it would change nothing")
    if args.population is not None:
        return _tune_population(args, setup, names, start)
    out = _out_dir(args.out)
    tuner = Tuner(setup, start, names, hyper_optimizer=Adam(lr=args.hyper_lr), mode=args.mode,
                  chunk_size=args.chunk_size, iterations=args.hyper_iters)
    ckpt = os.path.join(out, "checkpoint.npz")
    legacy = os.path.join(out, "checkpoint.pkl")
    csv_path = os.path.join(out, "history.csv")
    resumed = False
    if args.resume:
        if os.path.exists(ckpt):
            tuner.load(ckpt)   # CheckpointError: one line, exit 2 (main)
            resumed = True
        else:
            note = (f" ({legacy} is from an older version, in a format no longer read)"
                    if os.path.exists(legacy) else "")
            print(f"no checkpoint in {out}; starting from the beginning{note}", file=sys.stderr)
    else:
        for stale in (ckpt, csv_path):
            if os.path.exists(stale):
                os.remove(stale)
    done, total = tuner.iteration, args.hyper_iters
    why = (" (from the checkpoint)" if resumed else
           f"\n({tuner.plan.reason})" if tuner.plan is not None else "")
    print(f"tuning {', '.join(names)} of {args.optimizer} on {_dataset(args)} ({args.model}, "
          f"{setup.n_params()} parameters), {args.steps} steps per run, "
          f"{max(total, done)} hyper-iterations, mode {tuner.mode}" + why)
    if resumed:
        todo = (f"running {total - done} more to reach --hyper-iters {total} (the total)"
                if total > done else
                f"--hyper-iters {total} is the total and {done} are done: nothing to run; "
                f"reporting the {done} done")
        print(f"resuming from {ckpt} at hyper-iteration {done}: {todo}")
    res = tuner.run(total, progress=not args.no_progress, checkpoint=ckpt,
                    on_row=lambda row: write_csv(tuner.history, csv_path))
    write_csv(res.history, csv_path)
    cal = res.calibration_seconds
    settings = _settings(args, setup, tune=names, hyper_iters=total, hyper_lr=args.hyper_lr,
                         hyper_optimizer=repr(tuner.hyper_optimizer), mode=args.mode,
                         mode_used=tuner.mode, chunk_size=tuner.chunk_size, resume=args.resume,
                         initial={n: float(np.mean(v)) for n, v in res.initial.items()
                                  if n in names})
    _write_settings(out, settings)
    png = os.path.join(out, "trajectories.png")
    caption = _caption(args, setup, f"mode {tuner.mode}; hyper-lr {args.hyper_lr:g}")
    _save(_figure_tune(res, names, caption), png)

    rows = []
    for n in names:
        a, b = res.initial[n], res.tuned[n]
        rows.append([n, float(np.mean(a)), float(np.mean(b))])
    for key in ("val_loss", "val_acc", "test_loss", "test_acc"):
        rows.append([key, res.initial_eval[key], res.tuned_eval[key]])
    print()
    print(_table(["", "initial", f"tuned (it. {res.best_iteration})"], rows))
    calib = f" + {cal:.1f} s planner calibration (--mode auto)" if cal else ""
    print(f"\ntime {res.seconds:.1f} s{calib}, peak RSS {res.peak_bytes / 2**20:.0f} MiB")
    print(f"wrote {csv_path}, {png}")
    return 0


def _tune_population(args, setup, names: list, start: dict) -> int:
    """``tune --population N``: run the population (in this process, on a LocalCluster
    of ``--workers`` processes, or on the cluster at ``--scheduler``), write
    population.csv, population.png and settings.json to ``--out``, print each member's
    result and the summary.  Called by `cmd_tune` after its checks."""
    from .distributed import ClusterError, close, connect
    from .optim import Adam
    from .population import _describe_members, _figure, grid, run_population, write_population_csv
    out = _out_dir(args.out)
    try:
        members = grid(args.population, start, vary=args.vary, seed=args.seed)
    except ValueError as e:
        _fail("tune", str(e))
    ckdir = os.path.join(os.path.abspath(out), "members")
    csv_path = os.path.join(out, "population.csv")
    png = os.path.join(out, "population.png")
    if not args.resume and os.path.exists(csv_path):
        os.remove(csv_path)
    elif args.resume and not glob.glob(os.path.join(ckdir, "member_*.npz")):
        print(f"no member checkpoints in {ckdir}; starting from the beginning", file=sys.stderr)
    tuner_kw = {"hyper_optimizer": Adam(lr=args.hyper_lr), "mode": args.mode,
                "chunk_size": args.chunk_size}
    client = None
    try:
        if args.workers is not None or args.scheduler is not None:
            try:
                client = connect(workers=args.workers, scheduler=args.scheduler)
            except ClusterError as e:
                _fail("tune", str(e))
            if _custom(args):   # its module need not exist where the workers run
                import cloudpickle
                cloudpickle.register_pickle_by_value(sys.modules[args.model.split(":", 1)[0]])
            n = len(client.nthreads())
            where = (f"a LocalCluster of {args.workers} worker processes"
                     if args.workers is not None else
                     f"the cluster at {args.scheduler} ({n} workers)")
        else:
            where = "this process, one member after another"
        print(f"population of {len(members)} ({_describe_members(members, args.vary)}), each "
              f"tuning {', '.join(names)} of {args.optimizer} on {_dataset(args)} "
              f"({args.model}, {setup.n_params()} parameters), {args.steps} steps per run, "
              f"{args.hyper_iters} hyper-iterations, mode {args.mode}; running on {where}")
        res = run_population(setup, members, args.hyper_iters, names, client=client,
                             checkpoint_dir=ckdir, resume=args.resume,
                             progress=not args.no_progress, **tuner_kw)
    finally:
        close(client)
    write_population_csv(res, csv_path)
    s = res.summary()
    caption = _caption(args, setup, f"population of {len(members)} "
                                        f"({_describe_members(members, args.vary)}); "
                                        f"mode {args.mode}; hyper-lr {args.hyper_lr:g}")
    _save(_figure(res, names, caption), png)
    _write_settings(out, _settings(
        args, setup, tune=names, hyper_iters=args.hyper_iters, hyper_lr=args.hyper_lr,
        mode=args.mode, chunk_size=args.chunk_size, resume=args.resume,
        population=len(members), vary=args.vary, workers=args.workers, scheduler=args.scheduler,
        members=[{"member": m.index, "seed": r.seed, "initial": m.hparams,
                  "resumed_from": r.resumed_from, "error": r.error}
                 for m, r in zip(members, res.results)], summary=s))
    headers = ["member", "seed"] + [f"{n} (initial)" for n in names] + \
              [f"{n} (tuned)" for n in names] + ["val_loss", "test_acc", "note"]
    rows = []
    for m, r in zip(members, res.results):
        note = ("best" if r.index == s["best_member"] else
                "diverged" if r.error else "")
        if r.resumed_from and args.resume:
            note = (note + "; " if note else "") + f"resumed at it. {r.resumed_from}"
        rows.append([m.index, r.seed] + [float(np.mean(r.initial[n])) for n in names]
                    + [float(np.mean(r.tuned[n])) for n in names]
                    + [r.tuned_eval["val_loss"], r.tuned_eval["test_acc"], note])
    print()
    print(_table(headers, rows))
    print()
    best = "-" if s["best_member"] < 0 else str(s["best_member"])
    print(_table(["", "best", "median", "worst", "spread", "best member", "diverged"],
                     [["final val_loss", s["best"], s["median"], s["worst"], s["spread"], best,
                       s["diverged"]]]))
    for r in res.results:
        if r.error:
            print(f"member {r.index} diverged: {r.error}", file=sys.stderr)
    print(f"\ntime {res.seconds:.1f} s")
    print(f"wrote {csv_path}, {png}")
    return 3 if s["best_member"] < 0 else 0


def _figure_tune(res, names, caption: str):
    """The trajectories figure: one panel per tuned hyperparameter and the validation
    loss, the best (reported) iteration marked, the settings as a caption."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from .population import style_history_axis
    it = [r["iteration"] for r in res.history]
    best = res.best_iteration
    panels = names + ["val_loss"]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6), squeeze=False)
    for j, (ax, name) in enumerate(zip(axes[0], panels)):
        cols = [k for k in res.history[0] if k == name or k.startswith(name + "[")]
        for col in cols:
            ys = [r[col] for r in res.history]
            ax.plot(it, ys, marker="o", ms=3, label=col if len(cols) > 1 else None)
            ax.plot([best], [ys[best]], linestyle="none", marker="*", ms=13, color="tab:red",
                    zorder=5, label=f"best: it. {best}" if col == cols[0] else None)
        style_history_axis(ax, name)
        ax.legend(fontsize=7)
    fig.text(0.5, 0.01, caption, ha="center", va="bottom", fontsize=7)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def _save(fig, path: str) -> None:
    import matplotlib.pyplot as plt
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- hd / compare -------------------------------------------------------------------

def _run_online(setup, method: str, lr: float, momentum: float, hyper_lr, mu, progress: bool):
    """One run of ``method`` with ``setup``'s optimizer (built from --optimizer, --lr
    and --momentum): (lr per step, final val loss, val acc, test acc, description)."""
    from autodiff import grad
    from .hd import AdamHD, SGDHD, SGDNHD
    from .online import Online
    if method in ("rtho", "marthe"):
        mu_v = 1.0 if method == "rtho" else mu
        on = Online(setup, {"lr": lr}, ("lr",), mu=mu_v, hypergrad_lr=hyper_lr,
                    max_hypergrad_norm=10.0)
        r = on.run(progress=progress)
        desc = f"{method}(mu={mu_v!r}, hyper_lr={hyper_lr!r}) on {setup.optimizer!r}"
        return [row["lr"] for row in r.history], r.val_loss, r.val_acc, r.test_acc, desc
    if method in ("sgd", "adam"):   # the baseline: a constant lr, the setup's own training loop
        final = setup.train(progress=progress)
        lrs = [lr] * setup.steps
        desc = repr(setup.optimizer)
    else:
        init = setup.init(setup.resolve({}))
        if method == "adamhd":
            opt = AdamHD(init, lr=lr, betas=(momentum, 0.999), hypergrad_lr=hyper_lr)
        else:
            opt = {"sgdhd": SGDHD, "sgdnhd": SGDNHD}[method](init, lr=lr, hypergrad_lr=hyper_lr,
                                                             momentum=momentum)
        desc = repr(opt)
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
        setup.check_finite(final, setup.steps)
    vl, va = setup.evaluate(final, "val")
    _, ta = setup.evaluate(final, "test")
    return lrs, float(vl), va, ta, desc


def cmd_hd(args) -> int:
    _resolve_hd(args)
    setup = _setup(args)
    out = _out_dir(args.out)
    method = args.method
    t0 = time.perf_counter()
    lrs, vl, va, ta, desc = _run_online(setup, method, args.lr, args.momentum, args.hyper_lr,
                                        args.mu, not args.no_progress)
    secs = time.perf_counter() - t0
    _write_series(os.path.join(out, f"{method}.csv"), {method: lrs})
    extra = "" if method in ("sgd", "adam") else f"hyper-lr {args.hyper_lr:g}"
    if method == "marthe":
        extra += f"; mu {args.mu}"
    caption = _caption(args, setup, f"{method}" + (f" ({extra})" if extra else ""))
    _save(_figure_lrs({method: lrs}, caption), os.path.join(out, f"{method}.png"))
    headers = ["method", "initial lr", "final lr", "val loss", "val acc", "test acc", "time"]
    row = [method, args.lr, lrs[-1], vl, va, ta]
    _write_rows(os.path.join(out, "results.csv"), headers[:-1] + ["seconds"], [row + [secs]])
    _write_settings(out, _settings(args, setup, method=method, run=desc, lr=args.lr,
                                   momentum=args.momentum, hyper_lr=args.hyper_lr, mu=args.mu))
    print(f"{method} on {_dataset(args)} ({_model_label(args, setup)}), {args.optimizer} with "
          f"{_momentum_label(args)}, {args.steps} steps")
    print(_table(headers, [row + [f"{secs:.1f} s"]]))
    print(f"wrote {out}/{method}.csv, {method}.png, results.csv, settings.json")
    return 0


def cmd_compare(args) -> int:
    from dataclasses import replace
    from .schedules import CosineWarmRestarts, ScheduledState, StepDecay, scheduled
    _resolve_compare(args)
    setup = _setup(args)
    out = _out_dir(args.out)
    hd_method = "adamhd" if args.optimizer == "adam" else "sgdhd"
    print(f"compare on {_dataset(args)} ({_model_label(args, setup)}): every row trains with "
          f"{args.optimizer} ({_momentum_label(args)}), starting lr {args.lr:g}, {args.steps} "
          f"steps of batch {args.batch_size}, seed {args.seed}")
    rows, series, notes, runs = [], {}, [], {}
    base = setup.optimizer
    schedules = (("constant", base),
                 ("step decay", scheduled(base, StepDecay(max(args.steps // 3, 1), 0.3))),
                 ("cosine", scheduled(base, CosineWarmRestarts(args.steps))))
    jobs = [(name, opt, None) for name, opt in schedules] + \
           [(m, None, HYPER_LR[m]) for m in (hd_method, "rtho", "marthe")]
    for name, opt, beta in jobs:
        t0 = time.perf_counter()
        try:
            if opt is not None:
                s = replace(setup, optimizer=opt, _steppers={})
                # the lr that update t uses (a schedule's value at the start of the step)
                lrs = [float(np.mean(opt.lr_at(ScheduledState(t, None)))) if hasattr(opt, "lr_at")
                       else args.lr for t in range(args.steps)]
                params = s.train({}, progress=not args.no_progress)
                vl, va = s.evaluate(params, "val")
                _, ta = s.evaluate(params, "test")
                vl, runs[name] = float(vl), repr(opt)
            else:
                lrs, vl, va, ta, runs[name] = _run_online(
                    setup, name, args.lr, args.momentum, beta, "adaptive", not args.no_progress)
        except FloatingPointError as e:   # HypergradientError too: this row diverged
            notes.append(f"{name}: diverged: {' '.join(str(e).split())}")
            rows.append([name, math.nan, math.nan, math.nan, time.perf_counter() - t0])
            series[name] = []
            continue
        rows.append([name, vl, va, ta, time.perf_counter() - t0])
        series[name] = lrs
    _write_series(os.path.join(out, "lr.csv"), series)
    _write_rows(os.path.join(out, "results.csv"),
                ["schedule", "val loss", "val acc", "test acc", "seconds"], rows)
    _write_settings(out, _settings(args, setup, lr=args.lr, momentum=args.momentum, rows=runs))
    caption = "every row: " + _caption(args, setup)
    _save(_figure_lrs({k: v for k, v in series.items() if v}, caption),
          os.path.join(out, "lr.png"))
    shown = [r[:4] + [f"{r[4]:.1f} s"] for r in rows]
    for r in shown:
        if all(isinstance(c, float) and math.isnan(c) for c in r[1:4]):
            r[1:4] = ["diverged", "-", "-"]
    print(_table(["schedule", "val loss", "val acc", "test acc", "time"], shown))
    for n in notes:
        print(n, file=sys.stderr)
    print(f"wrote {out}/lr.csv, lr.png, results.csv, settings.json")
    return 3 if len(notes) == len(jobs) else 0


def _write_series(path: str, series: dict) -> None:
    import csv
    names = list(series)
    n = max([len(v) for v in series.values()] + [0])
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step"] + names)
        for t in range(n):
            w.writerow([t + 1] + [repr(series[k][t]) if t < len(series[k]) else "" for k in names])


def _figure_lrs(series: dict, caption: str):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for k, v in series.items():
        ax.plot(np.arange(1, len(v) + 1), v, label=k)
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("learning rate")
    if series:
        ax.legend(fontsize=8)
    fig.text(0.5, 0.01, caption, ha="center", va="bottom", fontsize=6)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


# -- plan ---------------------------------------------------------------------------

def cmd_plan(args) -> int:
    from .planner import plan
    from .tune import _calibration_seconds
    _resolve_plan(args)
    setup = _setup(args)
    out = _out_dir(args.out)
    t0 = time.perf_counter()
    p = plan(setup, K=args.K, memory_budget=args.memory_budget)
    cal = _calibration_seconds(p, time.perf_counter() - t0)
    print(f"{_model_label(args, setup)} on {_dataset(args)}: {setup.n_params()} parameters, "
          f"{args.optimizer}, K={args.K} hyperparameters, T={args.steps} steps of batch "
          f"{args.batch_size}, {args.dtype}, memory budget {p.memory_budget / 2**20:.0f} MiB\n")
    print(p.table())
    print(f"\nchoice: {p.mode} -- {p.reason}")
    print(f"calibration {cal:.1f} s")
    _write_rows(os.path.join(out, "plan.csv"),
                ["mode", "seconds", "bytes", "fits", "chunk_size", "note"],
                [[e.mode, float(e.seconds), float(e.bytes), bool(e.fits),
                  "" if e.chunk_size is None else e.chunk_size, e.note]
                 for e in p.estimates.values()])
    _write_settings(out, _settings(args, setup, K=args.K, memory_budget=p.memory_budget,
                                   choice=p.mode, chunk_size=p.chunk_size,
                                   calibration_seconds=cal))
    print(f"wrote {out}/plan.csv, settings.json")
    return 0


def cmd_reproduce(args) -> int:
    from . import reproduce
    out = _out_dir(args.out)
    targets = list(dict.fromkeys(args.targets))
    command = "python -m hyperopt reproduce " + " ".join(targets) + \
        (" --quick" if args.quick else "") + f" --out {args.out}"
    results = reproduce.run(targets, quick=args.quick, out_dir=out,
                            progress=not args.no_progress, command=command)
    return 1 if any(isinstance(r, str) and r.startswith("error") for r in results.values()) else 0


COMMANDS = {"tune": cmd_tune, "hd": cmd_hd, "compare": cmd_compare, "plan": cmd_plan,
            "reproduce": cmd_reproduce}


def _one_line(s: str) -> str:
    return " ".join(str(s).split())


def main(argv=None) -> int:
    from .tune import CheckpointError
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["tune"] + argv
    cmd = argv[0] if argv[0] in COMMANDS else None
    try:
        args, extra = build_parser().parse_known_args(argv)
        if extra:
            opts = list(dict.fromkeys(a for a in extra if a.startswith("-"))) or extra
            raise UsageError(f"python -m hyperopt {args.command}: error: {args.command} does not "
                             f"take {' '.join(opts)} (see python -m hyperopt {args.command} "
                             "--help)")
        cmd = args.command
        _check_model_options(args)
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=args.threads, user_api="blas"):
            return COMMANDS[args.command](args)
    except UsageError as e:
        print(_one_line(e), file=sys.stderr)
        return 2
    except CheckpointError as e:
        print(f"python -m hyperopt {cmd}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except FloatingPointError as e:   # HypergradientError: the run diverged
        print(f"python -m hyperopt {cmd}: the run diverged: {_one_line(e)}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted" + ("; rerun with --resume to continue from the last checkpoint"
                               if cmd == "tune" else ""), file=sys.stderr)
        return 130
