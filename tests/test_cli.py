"""python -m hyperopt: the subcommands, bad arguments (exit 2, one line), --resume."""
import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from hyperopt.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--hidden", "16", "--no-progress"]


def _env():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_tune_writes_table_csv_and_plot(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["tune", "--steps", "30", "--hyper-iters", "2", "--out", str(out)] + FAST) == 0
    text = capsys.readouterr().out
    for word in ("initial", "tuned", "val_loss", "test_acc", "peak RSS", "lr", "momentum"):
        assert word in text
    rows = _rows(out / "history.csv")
    assert [int(r["iteration"]) for r in rows] == [0, 1]
    assert {"lr", "momentum", "val_loss", "d_lr", "d_momentum"} <= set(rows[0])
    assert (out / "trajectories.png").stat().st_size > 10_000


def test_no_subcommand_means_tune(tmp_path, capsys):
    assert main(["--steps", "10", "--hyper-iters", "1", "--out", str(tmp_path)] + FAST) == 0
    assert "tuned" in capsys.readouterr().out


@pytest.mark.parametrize("args,needle", [
    (["tune", "--model", "resnet"], "invalid choice"),
    (["tune", "--steps", "-5"], "positive integer"),
    (["tune", "--lr", "nan"], "finite"),
    (["tune", "--lr", "-0.1"], "must be >"),
    (["tune", "--momentum", "1.0"], "must be <"),
    (["tune", "--tune", "lr,colour"], "cannot tune"),
    (["tune", "--tune", "dampening"], "cannot tune dampening"),
    (["tune", "--tune", "example_weights"], "cannot tune example_weights"),
    (["tune", "--optimizer", "adam", "--tune", "lr,dampening"], "cannot tune dampening"),
    (["tune", "--hyper-iters", "0"], "--hyper-iters: expected a positive integer"),
    (["tune", "--batch-size", "100000"], "larger than the training set (1077 examples"),
    (["tune", "--model", "logreg", "--hidden", "8"], "--hidden applies to --model mlp and lstm"),
    (["tune", "--chunk-size", "2", "--mode", "reverse"], "--chunk-size applies to --mode forward"),
    (["tune", "--method", "sgdhd"], "tune does not take --method"),
    (["tune", "--mode", "forward", "--momentum", "0"], "cannot tune momentum starting at"),
    (["hd", "--mu", "2"], "--mu"),
    (["hd", "--method", "sgdhd", "--optimizer", "adam"], "use --method adamhd"),
    (["hd", "--method", "adamhd", "--optimizer", "sgd"], "--method adamhd runs Adam, not "
                                                         "--optimizer sgd"),
    (["hd", "--method", "sgd", "--hyper-lr", "0.1"], "--hyper-lr does not apply to --method sgd"),
    (["hd", "--method", "rtho", "--mu", "0.5"], "--mu applies to --method marthe only"),
    (["hd", "--method", "sgdnhd", "--momentum", "0"], "needs --momentum > 0"),
    (["hd", "--mode", "forward"], "hd does not take --mode"),   # not an abbreviation of --model
    (["compare", "--mu", "0.5"], "compare does not take --mu"),
    (["plan", "--K", "0"], "positive integer"),
    (["plan", "--lr", "0.1"], "plan does not take --lr"),
    (["tune", "--target", "y"], "--target applies to --data file.csv"),
    (["tune", "--data", "nowhere.npz"], "no such file"),
    (["tune", "--data", "data.txt"], "expected a .npz or .csv file"),
    (["tune", "--model", "lstm", "--data", "x.npz"], "--data does not apply to --model lstm"),
])
def test_bad_arguments_one_line_exit_2(args, needle, capsys, tmp_path):
    assert main(args + ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err


def test_tune_offers_only_what_it_can_tune(capsys, tmp_path):
    for opt, offered in (("sgd", "lr, momentum, weight_decay, init_scale, label_smoothing"),
                         ("adam", "lr, beta1, beta2, eps, weight_decay, init_scale, "
                                  "label_smoothing")):
        assert main(["tune", "--optimizer", opt, "--tune", "colour", "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert f"choose from {offered}" in err
        assert "dampening" not in err and "example_weights" not in err


def _tune_once(out, *extra):
    args = ["tune", "--steps", "10", "--hyper-iters", "2", "--mode", "forward", "--out", str(out)]
    assert main(args + FAST + list(extra)) == 0


@pytest.mark.parametrize("damage", ["other settings", "truncated", "text", "pickle"])
def test_bad_checkpoints_one_line_exit_2(damage, tmp_path, capsys):
    _tune_once(tmp_path)
    capsys.readouterr()
    ck = tmp_path / "checkpoint.npz"
    extra = []
    if damage == "other settings":
        extra = ["--steps", "11", "--lr", "0.02"]
    elif damage == "truncated":
        ck.write_bytes(ck.read_bytes()[:len(ck.read_bytes()) // 2])
    elif damage == "text":
        ck.write_text("this is not a checkpoint\n")
    else:
        import pickle
        ck.write_bytes(pickle.dumps({"iteration": 1}))
    args = ["tune", "--steps", "10", "--hyper-iters", "3", "--mode", "forward", "--resume",
            "--out", str(tmp_path)] + FAST
    for i, a in enumerate(extra[::2]):   # replace, not repeat, the changed settings
        if a in args:
            args[args.index(a) + 1] = extra[2 * i + 1]
        else:
            args += [a, extra[2 * i + 1]]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "rerun" in err, err
    needle = {"other settings": "steps: 10 in the checkpoint, 11 now",
              "truncated": "truncated or damaged", "text": "not a checkpoint",
              "pickle": "is a pickle"}[damage]
    assert needle in err, err
    if damage == "other settings":
        assert "initial lr: 0.01 in the checkpoint, 0.02 now" in err


def test_a_leftover_pickle_checkpoint_is_noted_and_ignored(tmp_path, capsys):
    (tmp_path / "checkpoint.pkl").write_bytes(b"\x80\x04old")
    _tune_once(tmp_path, "--resume")
    err = capsys.readouterr().err
    assert "starting from the beginning" in err and "checkpoint.pkl" in err
    assert len(_rows(tmp_path / "history.csv")) == 2


def test_resume_says_where_it_resumes_and_hyper_iters_is_the_total(tmp_path, capsys):
    _tune_once(tmp_path)
    first = capsys.readouterr().out
    args = ["tune", "--steps", "10", "--mode", "forward", "--resume", "--out", str(tmp_path)] + FAST
    assert main(args + ["--hyper-iters", "1"]) == 0        # fewer than done: nothing to run
    text = capsys.readouterr().out
    assert "at hyper-iteration 2" in text and "nothing to run" in text
    assert "2 hyper-iterations" in text and "1 hyper-iterations" not in text
    table = lambda t: t[t.index("initial"):t.index("time ")]
    assert table(text) == table(first)     # the same report as the finished run's
    assert len(_rows(tmp_path / "history.csv")) == 2
    assert main(args + ["--hyper-iters", "3"]) == 0
    text = capsys.readouterr().out
    assert "at hyper-iteration 2: running 1 more to reach --hyper-iters 3" in text
    assert [int(r["iteration"]) for r in _rows(tmp_path / "history.csv")] == [0, 1, 2]


def test_the_tuned_column_is_the_best_row_of_history_csv(tmp_path, capsys):
    assert main(["tune", "--steps", "20", "--hyper-iters", "4", "--hyper-lr", "0.3", "--mode",
                 "forward", "--out", str(tmp_path)] + FAST) == 0
    text = capsys.readouterr().out
    rows = _rows(tmp_path / "history.csv")
    best = min(range(len(rows)), key=lambda i: float(rows[i]["val_loss"]))
    assert f"tuned (it. {best})" in text
    lr_line = next(l for l in text.splitlines() if l.split()[:1] == ["lr"])
    assert float(lr_line.split()[2]) == pytest.approx(float(rows[best]["lr"]), rel=1e-3)
    loss_line = next(l for l in text.splitlines() if l.split()[:1] == ["val_loss"])
    assert float(loss_line.split()[2]) == pytest.approx(float(rows[best]["val_loss"]), rel=1e-3)


def test_calibration_time_is_reported(tmp_path, capsys):
    _tune_once(tmp_path / "fwd")
    assert "planner calibration" not in capsys.readouterr().out
    rows = _rows(tmp_path / "fwd" / "history.csv")
    assert all(float(r["calibration_seconds"]) == 0 for r in rows)
    assert main(["tune", "--steps", "10", "--hyper-iters", "2", "--out", str(tmp_path / "auto")]
                + FAST) == 0
    text = capsys.readouterr().out
    rows = _rows(tmp_path / "auto" / "history.csv")
    cal = float(rows[0]["calibration_seconds"])
    assert float(rows[1]["calibration_seconds"]) == 0
    assert (f"+ {cal:.1f} s planner calibration (--mode auto)" in text) == (cal > 0)
    assert main(["plan", "--steps", "10", "--hidden", "16", "--out", str(tmp_path)]) == 0
    assert "calibration " in capsys.readouterr().out


def test_a_diverging_run_is_one_line_and_exit_3(tmp_path):
    p = subprocess.run([sys.executable, "-m", "hyperopt", "tune", "--lr", "1e12", "--steps", "60",
                        "--hyper-iters", "1", "--mode", "forward", "--out", str(tmp_path)] + FAST,
                       capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=300)
    assert p.returncode == 3, p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "diverged" in p.stderr and "exploded at step" in p.stderr


def test_every_subcommand_has_a_description():
    from hyperopt.cli import build_parser
    ap = build_parser()
    sub = next(a for a in ap._actions if a.__class__.__name__ == "_SubParsersAction")
    for name in ("tune", "hd", "compare", "plan"):
        assert len(sub.choices[name].description or "") > 80, name
        assert "--out" in sub.choices[name].format_help()


def test_plots_have_axis_labels_a_best_marker_and_a_caption(tmp_path, capsys, monkeypatch):
    import hyperopt.cli as cli
    figs = {}
    real_save = cli._save

    def save(fig, path):
        figs[os.path.basename(path)] = fig
        real_save(fig, path)
    monkeypatch.setattr(cli, "_save", save)
    _tune_once(tmp_path / "t")
    assert main(["hd", "--method", "sgdhd", "--steps", "10", "--out", str(tmp_path / "h")]
                + FAST) == 0
    assert main(["compare", "--optimizer", "adam", "--steps", "10", "--out", str(tmp_path / "c")]
                + FAST) == 0
    capsys.readouterr()
    assert set(figs) == {"trajectories.png", "sgdhd.png", "lr.png"}
    for name, fig in figs.items():
        caption = " ".join(t.get_text() for t in fig.texts)
        for word in ("mlp", "steps", "seed 0", "digits"):
            assert word in caption, (name, caption)
        for ax in fig.axes:
            assert ax.get_xlabel() and ax.get_ylabel(), name
    assert "adam" in " ".join(t.get_text() for t in figs["lr.png"].texts)
    assert "mode forward" in " ".join(t.get_text() for t in figs["trajectories.png"].texts)
    for ax in figs["trajectories.png"].axes:   # the best iteration is marked on every panel
        assert any(line.get_marker() == "*" for line in ax.get_lines())
        assert "best: it." in " ".join(t.get_text() for t in ax.get_legend().get_texts())


def test_compare_uses_one_inner_optimizer_for_every_row(tmp_path, capsys):
    import json
    assert main(["compare", "--optimizer", "adam", "--steps", "10", "--out", str(tmp_path)]
                + FAST) == 0
    out = capsys.readouterr().out
    assert "every row trains with adam (beta1 0.9)" in out
    assert "adamhd" in out and "sgdhd" not in out
    runs = json.loads((tmp_path / "settings.json").read_text())["rows"]
    assert set(runs) == {"constant", "step decay", "cosine", "adamhd", "rtho", "marthe"}
    for name, desc in runs.items():
        assert "Adam" in desc and "SGD" not in desc, (name, desc)
        assert "betas" not in desc or "0.9" in desc


# -- your own model and data -----------------------------------------------------------

USER_MODEL = """
import numpy as np


class Model:
    def __init__(self, n_features, n_classes):
        self.n_features, self.n_classes = n_features, n_classes

    def init(self, seed, scale, dtype):
        rng = np.random.default_rng(seed)
        w = rng.standard_normal((self.n_features, self.n_classes)) / np.sqrt(self.n_features)
        return {"w": w.astype(dtype) * scale, "b": np.zeros(self.n_classes, dtype)}

    def loss(self, params, x, y):
        z = x @ params["w"] + params["b"]
        z = z - np.max(z, axis=1, keepdims=True)
        logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
        return -np.mean(logp[np.arange(len(y)), y])

    def accuracy(self, params, x, y):
        return float(np.mean(np.argmax(x @ params["w"] + params["b"], axis=1) == y))


class Regressor:           # no accuracy, a float target, built with no arguments
    def init(self, seed, scale, dtype):
        rng = np.random.default_rng(seed)
        return {"w": (rng.standard_normal(4) * 0.1).astype(dtype) * scale}

    def loss(self, params, x, y):
        return np.mean((x @ params["w"] - y) ** 2)


def broken():
    return object()


def raises():
    raise RuntimeError("no GPU here")


NOT_CALLABLE = 3
"""


@pytest.fixture
def user_files(tmp_path, monkeypatch):
    mod = tmp_path / "mods"
    mod.mkdir()
    (mod / "user_model_for_cli.py").write_text(USER_MODEL)
    (mod / "user_model_syntax_error.py").write_text("def broken(:\n")
    monkeypatch.syspath_prepend(str(mod))
    rng = np.random.default_rng(1)
    X = rng.standard_normal((240, 4))
    y = (X[:, 0] - X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 0.8)
    np.savez(tmp_path / "cls.npz", X=X, y=y)
    np.savez(tmp_path / "reg.npz", x=X, y=X @ np.array([1.0, -2.0, 0.5, 0.0]))
    np.savez(tmp_path / "misnamed.npz", features=X, labels=y)
    yield tmp_path
    for m in ("user_model_for_cli", "user_model_syntax_error"):
        sys.modules.pop(m, None)


def test_tune_your_own_model_on_your_own_npz(user_files, capsys):
    out = user_files / "run"
    assert main(["tune", "--model", "user_model_for_cli:Model", "--data",
                 str(user_files / "cls.npz"), "--steps", "20", "--hyper-iters", "2",
                 "--mode", "forward", "--no-progress", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "cls.npz (240 examples of 4 features, 3 classes)" in text
    assert "user_model_for_cli:Model, 15 parameters" in text
    rows = _rows(out / "history.csv")
    assert len(rows) == 2 and float(rows[0]["val_acc"]) > 0
    import json
    s = json.loads((out / "settings.json").read_text())
    assert s["model"] == "user_model_for_cli:Model(n_features=4, n_classes=3)"


def test_a_regression_model_without_accuracy(user_files, capsys):
    out = user_files / "reg"
    assert main(["hd", "--method", "marthe", "--model", "user_model_for_cli:Regressor",
                 "--data", str(user_files / "reg.npz"), "--steps", "20", "--batch-size", "16",
                 "--no-progress", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "a float target" in text
    lines = text.splitlines()
    row = lines[next(i for i, l in enumerate(lines) if l.startswith("------")) + 1]
    assert row.split()[0] == "marthe" and row.split()[4:6] == ["-", "-"], row  # no accuracy
    # label_smoothing is not offered to tune for a loss that does not take it
    assert main(["tune", "--model", "user_model_for_cli:Regressor", "--data",
                 str(user_files / "reg.npz"), "--tune", "label_smoothing", "--out", str(out)]) == 2
    assert "takes no label_smoothing" in capsys.readouterr().err


def test_builtin_models_on_a_csv(user_files, capsys):
    csv_path = user_files / "d.csv"
    rng = np.random.default_rng(2)
    X = rng.standard_normal((150, 3))
    with open(csv_path, "w") as f:
        f.write("# a comment line\nlabel,u,v,w\n")
        for xi in X:
            f.write(f"{int(xi[0] > 0)},{xi[0]:.5f},{xi[1]:.5f},{xi[2]:.5f}\n")
    assert main(["tune", "--model", "logreg", "--data", str(csv_path), "--target", "label",
                 "--steps", "20", "--hyper-iters", "2", "--mode", "forward", "--batch-size", "16",
                 "--no-progress", "--out", str(user_files / "csvrun")]) == 0
    text = capsys.readouterr().out
    assert "d.csv (150 examples of 3 features, 2 classes)" in text
    # the default target is the last column, a float here: a classifier refuses it
    assert main(["tune", "--data", str(csv_path), "--out", str(user_files / "x")]) == 2
    assert "non-integer" in capsys.readouterr().err


@pytest.mark.parametrize("spec,needle", [
    ("no_such_module_xyz:Model", "no module named 'no_such_module_xyz'"),
    ("user_model_for_cli:Nope", "has no attribute 'Nope'"),
    ("user_model_for_cli:NOT_CALLABLE", "not a class or function"),
    ("user_model_for_cli:broken", "has no init and no loss method"),
    ("user_model_for_cli:raises", "raises() raised RuntimeError: no GPU here"),
    ("user_model_syntax_error:broken", "importing it raised SyntaxError"),
    ("user_model_for_cli:", "invalid choice"),
])
def test_bad_user_models_one_line_exit_2(spec, needle, user_files, capsys):
    assert main(["tune", "--model", spec, "--out", str(user_files / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("make,needle", [
    (lambda d: d / "misnamed.npz", "expected arrays named X and y (or x and y); found features"),
    (lambda d: _write(d / "t.npz", "hello"), "not an .npz file"),
    (lambda d: _write(d / "bad.csv", "1,2,0\n3,oops,1\n"),
     "line 2, column 2: 'oops' is not a number"),
    (lambda d: _write(d / "ragged.csv", "1,2,0\n3,1\n"),
     "line 2: 2 columns, expected 3"),
])
def test_bad_data_files_one_line_exit_2(make, needle, user_files, capsys):
    path = make(user_files)
    assert main(["tune", "--data", str(path), "--out", str(user_files / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    p = subprocess.run([sys.executable, "-m", "hyperopt", "tune", "--out", str(blocker / "sub")],
                       capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=120)
    assert p.returncode == 2
    assert "cannot write to output folder" in p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path):
    # (8 hyper-iterations: the kill after the second must land before the run ends, even
    # when the run is fast and the poll is slow)
    args = ["-m", "hyperopt", "tune", "--steps", "40", "--hyper-iters", "8"] + FAST
    full, cut = tmp_path / "full", tmp_path / "cut"
    subprocess.run([sys.executable, *args, "--out", str(full)], check=True, env=_env(), cwd=ROOT,
                   capture_output=True, timeout=600)
    # start again, kill it (SIGKILL: no clean-up) once two hyper-iterations are checkpointed
    proc = subprocess.Popen([sys.executable, *args, "--out", str(cut)], env=_env(), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            hist = cut / "history.csv"
            if hist.exists() and len(_rows(hist)) >= 2:
                break
            if proc.poll() is not None:
                pytest.fail("the run finished before it could be killed")
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert len(_rows(cut / "history.csv")) < 8
    p = subprocess.run([sys.executable, *args, "--out", str(cut), "--resume"], env=_env(),
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    timing = ("seconds", "calibration_seconds")
    strip = lambda rows: [{k: v for k, v in r.items() if k not in timing} for r in rows]
    assert strip(_rows(cut / "history.csv")) == strip(_rows(full / "history.csv"))
    assert len(_rows(full / "history.csv")) == 8


@pytest.mark.parametrize("method", ["sgdhd", "marthe", "rtho"])
def test_hd_methods(method, tmp_path, capsys):
    assert main(["hd", "--method", method, "--steps", "40", "--out", str(tmp_path)] + FAST) == 0
    assert method in capsys.readouterr().out
    rows = _rows(tmp_path / f"{method}.csv")
    assert len(rows) == 40 and all(float(r[method]) > 0 for r in rows)


def test_compare_and_plan(tmp_path, capsys):
    assert main(["compare", "--steps", "30", "--out", str(tmp_path)] + FAST) == 0
    out = capsys.readouterr().out
    for name in ("constant", "step decay", "cosine", "sgdhd", "rtho", "marthe"):
        assert name in out
    assert (tmp_path / "lr.png").exists()
    assert main(["plan", "--steps", "50", "--K", "3", "--hidden", "16", "--out",
                 str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "choice:" in out and "reverse" in out and "forward" in out


def test_tune_the_character_lstm(tmp_path, capsys):
    args = ["tune", "--model", "lstm", "--optimizer", "adam", "--lr", "0.01", "--momentum", "0.9",
            "--hidden", "8", "--steps", "6", "--hyper-iters", "1", "--mode", "forward",
            "--no-progress", "--out", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Shakespeare" in out and "beta1" in out
    assert len(_rows(tmp_path / "history.csv")) == 1
