"""python -m hyperopt: the subcommands, bad arguments (exit 2, one line), --resume."""
import csv
import os
import signal
import subprocess
import sys
import time

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
    (["hd", "--mu", "2"], "--mu"),
    (["plan", "--K", "0"], "positive integer"),
])
def test_bad_arguments_one_line_exit_2(args, needle, capsys, tmp_path):
    assert main(args + ["--out", str(tmp_path)]) == 2
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
    args = ["-m", "hyperopt", "tune", "--steps", "40", "--hyper-iters", "5"] + FAST
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
    assert len(_rows(cut / "history.csv")) < 5
    p = subprocess.run([sys.executable, *args, "--out", str(cut), "--resume"], env=_env(),
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    assert strip(_rows(cut / "history.csv")) == strip(_rows(full / "history.csv"))
    assert len(_rows(full / "history.csv")) == 5


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
    assert main(["plan", "--steps", "50", "--K", "3", "--out", str(tmp_path)] + FAST) == 0
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
