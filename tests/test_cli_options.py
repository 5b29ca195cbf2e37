"""Every subcommand x every option of `python -m hyperopt`: the option changes the run,
or it is refused with exit code 2 and one line naming it.

Each case is a tiny run (a few steps) compared with the same run without the
option.  "results" means the results files (CSV, timing columns left out)
differ; "settings" means settings.json differs (for options that change how
a run is done, not what it computes: --no-jit, --threads, --chunk-size, and
all of plan's, whose results are timings); "refused" means exit code 2 and one
line on stderr.  Options a subcommand does not list are refused by the parser;
those cases are generated from the parser itself, and a meta-test checks that
every (subcommand, option) pair is covered, so a new option cannot slip in
without a test.
"""
import csv
import json
import os
import sys
import textwrap

import numpy as np
import pytest

from hyperopt.cli import build_parser, main

from test_cli import USER_MODEL

TIMING = {"seconds", "calibration_seconds", "time"}
BASE = {
    "tune": ["tune", "--steps", "4", "--hyper-iters", "2", "--mode", "forward", "--no-progress"],
    "hd": ["hd", "--method", "sgdhd", "--steps", "4", "--no-progress"],
    "compare": ["compare", "--steps", "4", "--no-progress"],
    "plan": ["plan", "--steps", "4"],
}
COMMANDS = tuple(BASE)

MODEL_SRC = USER_MODEL  # the user model of test_cli.py (softmax regression, plus a regressor)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A model module on sys.path, and .npz / .csv data files."""
    d = tmp_path_factory.mktemp("user")
    (d / "cli_options_model.py").write_text(textwrap.dedent(MODEL_SRC))
    sys.path.insert(0, str(d))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 6))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1).astype(np.int64)
    np.savez(d / "data.npz", X=X, y=y)
    with open(d / "data.csv", "w") as f:
        f.write("a,b,c,d,e,f,k,label\n")   # k: another integer target (for --target k)
        for xi, yi in zip(X, y):
            f.write(",".join(f"{v:.6f}" for v in xi) + f",{int(xi[3] > 0)},{yi}\n")
    yield {"npz": str(d / "data.npz"), "csv": str(d / "data.csv"),
           "model": "cli_options_model:Model"}
    sys.path.remove(str(d))
    sys.modules.pop("cli_options_model", None)


# (subcommand, extra base args, the option's args, expectation)
# values written {npz}, {csv}, {model} are filled from the `files` fixture
CASES = [
    # -- tune
    ("tune", [], ["--model", "logreg"], "results"),
    ("tune", [], ["--model", "cnn"], "results"),
    ("tune", [], ["--model", "lstm", "--hidden", "8"], "results"),
    ("tune", [], ["--model", "{model}"], "results"),
    ("tune", [], ["--data", "{npz}"], "results"),
    ("tune", ["--model", "lstm"], ["--data", "{npz}"], "refused"),
    ("tune", ["--data", "{csv}"], ["--target", "k"], "results"),
    ("tune", [], ["--target", "a"], "refused"),
    ("tune", ["--data", "{npz}"], ["--target", "0"], "refused"),
    ("tune", [], ["--hidden", "8"], "results"),
    ("tune", ["--model", "logreg"], ["--hidden", "8"], "refused"),
    ("tune", ["--model", "cnn"], ["--hidden", "8"], "refused"),
    ("tune", ["--model", "{model}"], ["--hidden", "8"], "refused"),
    ("tune", [], ["--optimizer", "adam"], "results"),
    ("tune", [], ["--steps", "5"], "results"),
    ("tune", [], ["--batch-size", "32"], "results"),
    ("tune", [], ["--batch-size", "100000"], "refused"),
    ("tune", [], ["--dtype", "float32"], "results"),
    ("tune", [], ["--lr", "0.05"], "results"),
    ("tune", [], ["--momentum", "0.1"], "results"),
    ("tune", ["--optimizer", "adam"], ["--momentum", "0.5"], "results"),
    ("tune", [], ["--momentum", "0"], "refused"),           # tuned from the closed end
    ("tune", ["--tune", "lr"], ["--momentum", "0"], "results"),
    ("tune", [], ["--seed", "1"], "results"),
    ("tune", [], ["--no-progress"], "quiet"),
    ("tune", [], ["--no-jit"], "settings"),
    ("tune", [], ["--out", "{other}"], "out"),
    ("tune", [], ["--threads", "2"], "settings"),
    ("tune", [], ["--tune", "lr"], "results"),
    ("tune", [], ["--tune", "lr,weight_decay"], "results"),
    ("tune", ["--optimizer", "adam"], ["--tune", "lr,beta2"], "results"),
    ("tune", [], ["--tune", "beta2"], "refused"),
    ("tune", [], ["--tune", "dampening"], "refused"),
    ("tune", [], ["--tune", "example_weights"], "refused"),
    ("tune", [], ["--hyper-iters", "3"], "results"),
    ("tune", [], ["--hyper-iters", "0"], "refused"),
    ("tune", [], ["--hyper-lr", "0.5"], "results"),
    ("tune", [], ["--mode", "reverse"], "results"),
    ("tune", [], ["--mode", "auto"], "settings"),
    ("tune", [], ["--chunk-size", "1"], "settings"),
    ("tune", [], ["--chunk-size", "3"], "refused"),          # more than K = 2
    ("tune", ["--mode", "reverse"], ["--chunk-size", "1"], "refused"),
    ("tune", ["--mode", "auto"], ["--chunk-size", "1"], "refused"),
    ("tune", [], ["--population", "2"], "results"),
    ("tune", [], ["--population", "0"], "refused"),
    ("tune", ["--population", "2"], ["--vary", "seed"], "results"),
    ("tune", [], ["--vary", "seed"], "refused"),              # without --population
    ("tune", [], ["--workers", "2"], "refused"),              # without --population
    ("tune", [], ["--scheduler", "tcp://127.0.0.1:8786"], "refused"),
    # --population with --workers / --scheduler: tests/test_distributed.py
    # --resume: test_resume_is_honoured below
    # -- hd
    ("hd", [], ["--model", "logreg"], "results"),
    ("hd", [], ["--model", "cnn"], "results"),
    ("hd", [], ["--model", "lstm", "--hidden", "8"], "results"),
    ("hd", [], ["--model", "{model}"], "results"),
    ("hd", [], ["--data", "{npz}"], "results"),
    ("hd", ["--data", "{csv}"], ["--target", "k"], "results"),
    ("hd", [], ["--target", "b"], "refused"),
    ("hd", [], ["--hidden", "8"], "results"),
    ("hd", ["--model", "logreg"], ["--hidden", "8"], "refused"),
    ("hd", [], ["--optimizer", "adam"], "refused"),          # sgdhd runs SGD
    ("hd", ["--method", "marthe"], ["--optimizer", "adam"], "results"),
    ("hd", ["--method", "rtho"], ["--optimizer", "adam"], "results"),
    ("hd", ["--method", "adamhd"], ["--optimizer", "sgd"], "refused"),
    ("hd", ["--method", "sgd"], ["--optimizer", "adam"], "refused"),
    ("hd", [], ["--steps", "5"], "results"),
    ("hd", [], ["--batch-size", "32"], "results"),
    ("hd", [], ["--batch-size", "100000"], "refused"),
    ("hd", [], ["--dtype", "float32"], "results"),
    ("hd", [], ["--lr", "0.05"], "results"),
    ("hd", [], ["--momentum", "0.5"], "results"),
    ("hd", ["--method", "adamhd"], ["--momentum", "0.5"], "results"),   # Adam's beta1
    ("hd", ["--method", "sgdnhd"], ["--momentum", "0.3"], "results"),   # not replaced by 0.9
    ("hd", ["--method", "sgdnhd"], ["--momentum", "0"], "refused"),
    ("hd", ["--method", "marthe"], ["--momentum", "0.5"], "results"),
    ("hd", [], ["--seed", "1"], "results"),
    ("hd", [], ["--no-progress"], "quiet"),
    ("hd", ["--method", "marthe"], ["--no-jit"], "settings"),
    ("hd", [], ["--out", "{other}"], "out"),
    ("hd", [], ["--threads", "2"], "settings"),
    ("hd", [], ["--method", "sgdnhd"], "results"),
    ("hd", [], ["--method", "adamhd"], "results"),
    ("hd", [], ["--method", "rtho"], "results"),
    ("hd", [], ["--method", "marthe"], "results"),
    ("hd", [], ["--method", "sgd"], "results"),
    ("hd", [], ["--method", "adam"], "results"),
    ("hd", [], ["--hyper-lr", "0.05"], "results"),
    ("hd", ["--method", "marthe"], ["--hyper-lr", "0.1"], "results"),
    ("hd", ["--method", "sgd"], ["--hyper-lr", "0.1"], "refused"),
    ("hd", ["--method", "adam"], ["--hyper-lr", "0.1"], "refused"),
    ("hd", ["--method", "marthe"], ["--mu", "0.5"], "results"),
    ("hd", [], ["--mu", "0.5"], "refused"),
    ("hd", ["--method", "rtho"], ["--mu", "0.5"], "refused"),
    # -- compare
    ("compare", [], ["--model", "logreg"], "results"),
    ("compare", [], ["--model", "{model}"], "results"),
    ("compare", [], ["--model", "lstm", "--hidden", "8"], "results"),
    ("compare", [], ["--data", "{npz}"], "results"),
    ("compare", ["--data", "{csv}"], ["--target", "k"], "results"),
    ("compare", [], ["--target", "a"], "refused"),
    ("compare", [], ["--hidden", "8"], "results"),
    ("compare", ["--model", "cnn"], ["--hidden", "8"], "refused"),
    ("compare", [], ["--optimizer", "adam"], "results"),
    ("compare", [], ["--steps", "5"], "results"),
    ("compare", [], ["--batch-size", "32"], "results"),
    ("compare", [], ["--dtype", "float32"], "results"),
    ("compare", [], ["--lr", "0.05"], "results"),
    ("compare", [], ["--momentum", "0.5"], "results"),
    ("compare", [], ["--seed", "1"], "results"),
    ("compare", [], ["--no-progress"], "quiet"),
    ("compare", [], ["--no-jit"], "settings"),
    ("compare", [], ["--out", "{other}"], "out"),
    ("compare", [], ["--threads", "2"], "settings"),
    # -- plan: its results are timings, so settings.json is what is compared
    ("plan", [], ["--model", "logreg"], "settings"),
    ("plan", [], ["--model", "{model}"], "settings"),
    ("plan", [], ["--data", "{npz}"], "settings"),
    ("plan", ["--data", "{csv}"], ["--target", "k"], "settings"),
    ("plan", [], ["--target", "a"], "refused"),
    ("plan", [], ["--hidden", "8"], "settings"),
    ("plan", ["--model", "logreg"], ["--hidden", "8"], "refused"),
    ("plan", [], ["--optimizer", "adam"], "settings"),
    ("plan", [], ["--steps", "5"], "settings"),
    ("plan", [], ["--batch-size", "32"], "settings"),
    ("plan", [], ["--dtype", "float32"], "settings"),
    ("plan", [], ["--out", "{other}"], "out"),
    ("plan", [], ["--threads", "2"], "settings"),
    ("plan", [], ["--K", "3"], "settings"),
    ("plan", [], ["--memory-budget", "1e6"], "settings"),
]


def _options(sub) -> dict:
    """{option string: takes a value} of a subcommand's parser (help left out)."""
    out = {}
    for a in sub._actions:
        for s in a.option_strings:
            if s.startswith("--") and s != "--help":
                out[s] = a.nargs != 0
    return out


def _subparsers() -> dict:
    ap = build_parser()
    action = next(a for a in ap._actions if a.__class__.__name__ == "_SubParsersAction")
    return {name: action.choices[name] for name in COMMANDS}


SUBPARSERS = _subparsers()
OPTIONS = {cmd: _options(p) for cmd, p in SUBPARSERS.items()}
ALL_OPTIONS = sorted(set().union(*OPTIONS.values()))
DEDICATED = {("tune", "--resume"): "test_resume_is_honoured"}


def _fill(args, files, other):
    return [a.format(other=other, **files) for a in args]


def _snapshot(out):
    """The results (CSV files, timing columns left out) and the settings of a run."""
    results, settings = {}, {}
    for name in sorted(os.listdir(out)):
        path = os.path.join(out, name)
        if name.endswith(".csv"):
            with open(path) as f:
                results[name] = [{k: v for k, v in r.items() if k not in TIMING}
                                 for r in csv.DictReader(f)]
        elif name == "settings.json":
            with open(path) as f:
                settings = json.load(f)
            # timings, and what the planner makes of them, vary from run to run
            noisy = {"calibration_seconds", "choice"} | (
                {"chunk_size"} if settings["command"] == "plan" else set())
            settings = {k: v for k, v in settings.items() if k not in noisy}
    return results, settings


def _run(args, out, capsys):
    rc = main(args + ["--out", str(out)])
    cap = capsys.readouterr()
    snap = _snapshot(out) if rc == 0 else None
    return rc, cap.out, cap.err, snap


_BASE_RUNS = {}


def _base(cmd, extra, files, tmp_path_factory, capsys, progress=False):
    key = (cmd, tuple(extra), progress)
    if key not in _BASE_RUNS:
        args = BASE[cmd] + _fill(extra, files, "")
        if progress:
            args = [a for a in args if a != "--no-progress"]
        out = tmp_path_factory.mktemp(f"base_{cmd}")
        _BASE_RUNS[key] = _run(args, out, capsys)
        assert _BASE_RUNS[key][0] == 0, _BASE_RUNS[key][2]
    return _BASE_RUNS[key]


def _id(case):
    cmd, extra, opt, expect = case
    text = f"{cmd}{''.join(' ' + e for e in extra)}|{' '.join(opt)}|{expect}"
    return text.replace("{", "").replace("}", "")


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_option_changes_the_run_or_is_refused(case, files, tmp_path, tmp_path_factory, capsys):
    cmd, extra, opt, expect = case
    other = str(tmp_path / "other")
    option_args = _fill(opt, files, other)
    if expect == "quiet":   # the base run shows progress bars; with the option it does not
        _, _, err, _ = _base(cmd, extra, files, tmp_path_factory, capsys, progress=True)
        assert err.strip(), "the base run showed no progress bars"
        rc, _, err, _ = _base(cmd, extra, files, tmp_path_factory, capsys)
        assert rc == 0 and not err.strip(), err
        return
    args = BASE[cmd] + _fill(extra, files, other) + option_args
    if expect == "out":
        rc = main(args)
        capsys.readouterr()
        assert rc == 0 and os.path.exists(os.path.join(other, "settings.json"))
        return
    rc, stdout, err, snap = _run(args, tmp_path / "run", capsys)
    if expect == "refused":
        assert rc == 2, (rc, stdout, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "error" in lines[0], err
        assert opt[0] in lines[0] or opt[0].lstrip("-") in lines[0], lines[0]
        return
    assert rc == 0, err
    _, _, _, base = _base(cmd, extra, files, tmp_path_factory, capsys)
    if expect == "results":
        assert snap[0] != base[0], f"{' '.join(opt)} did not change the results of {cmd}"
    else:
        assert snap[1] != base[1], f"{' '.join(opt)} did not change the settings of {cmd}"


@pytest.mark.parametrize("cmd,option", [(c, o) for c in COMMANDS for o in ALL_OPTIONS
                                        if o not in OPTIONS[c]])
def test_options_a_subcommand_does_not_take_are_refused(cmd, option, capsys, tmp_path):
    takes_value = next(OPTIONS[c][option] for c in COMMANDS if option in OPTIONS[c])
    args = [cmd, option] + (["1"] if takes_value else []) + ["--out", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{cmd} does not take {option}" in err, err


def test_every_subcommand_option_pair_is_covered():
    covered = {(c, o) for c, _, opt, _ in CASES for o in opt if o.startswith("--")}
    covered |= set(DEDICATED)
    missing = [(c, o) for c in COMMANDS for o in OPTIONS[c] if (c, o) not in covered]
    assert not missing, f"options without a test: {missing}"


def test_resume_is_honoured(tmp_path, capsys):
    out = str(tmp_path / "r")
    args = BASE["tune"] + ["--out", out]
    assert main(args) == 0
    capsys.readouterr()
    assert main([a if a != "2" else "3" for a in args] + ["--resume"]) == 0
    text = capsys.readouterr().out
    assert "resuming from" in text and "at hyper-iteration 2" in text and "1 more" in text
    with open(os.path.join(out, "history.csv")) as f:
        assert [r["iteration"] for r in csv.DictReader(f)] == ["0", "1", "2"]
