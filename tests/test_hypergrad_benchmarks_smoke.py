"""benchmarks/hypergrad_memory.py and benchmarks/hypergrad_cost.py run end to end with --quick.

Each takes about 10 s on an idle machine (the timeouts are generous because the
machine is shared).  Timings are not checked; the structure of the output is,
plus two properties the scripts measure that do not depend on noise: forward and
reverse hypergradients agree, and reverse mode's peak memory grows with T.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args, timeout=180):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=str(ROOT),
                          timeout=timeout)


def _table_rows(out: str, modes) -> list:
    """The table's rows: lines starting with a mode and then an integer (T or K)."""
    return [w for w in map(str.split, out.splitlines()) if len(w) > 2 and w[0] in modes and w[1].isdigit()]


def test_hypergrad_memory_quick(tmp_path):
    js = tmp_path / "mem.json"
    r = _run("benchmarks/hypergrad_memory.py", "--quick", "--json", str(js))
    assert r.returncode == 0, r.stderr + r.stdout
    out = r.stdout
    assert "peak MB" in out and "net MB" in out                  # the table's header
    rows = _table_rows(out, ("baseline", "forward", "reverse"))
    assert [(m, int(t)) for m, t, *_ in rows] == [("baseline", 0), ("forward", 10), ("forward", 40),
                                                   ("reverse", 10), ("reverse", 40)]
    for row in rows:
        float(row[2]), float(row[3]), float(row[4])                # RSS@0, peak, net are numbers
    assert "fitted growth" in out and "MB/step" in out
    # the two modes compute the same hypergradient
    agree = [l for l in out.splitlines() if "forward vs reverse hypergradient" in l]
    assert len(agree) == 2 and all(l.endswith("(ok)") for l in agree), agree
    data = json.loads(js.read_text())
    assert not data["failures"]
    rev = {row["T"]: row for row in data["rows"] if row["mode"] == "reverse"}
    # the tape of 40 steps needs more memory than the tape of 10 (a parent-inherited
    # ru_maxrss floor would hide this)
    assert rev[40]["peak_mb"] > rev[10]["peak_mb"] + 5, rev
    base = next(row for row in data["rows"] if row["mode"] == "baseline")
    assert all(row["net_mb"] == row["peak_mb"] - base["peak_mb"] for row in data["rows"])


def test_hypergrad_cost_quick(tmp_path):
    js = tmp_path / "cost.json"
    r = _run("benchmarks/hypergrad_cost.py", "--quick", "--json", str(js))
    assert r.returncode == 0, r.stderr + r.stdout
    out = r.stdout
    assert "plain ms/step" in out and "dual/plain" in out and "FLOP ratio" in out
    rows = _table_rows(out, ("jit", "eager"))
    table = [(m, int(k)) for m, k, *_ in rows]
    assert table == [("jit", 1), ("jit", 2), ("eager", 1), ("eager", 2)]
    assert out.count("fit: dual/plain") == 2
    data = json.loads(js.read_text())
    assert not data["failures"]
    for mode in ("jit", "eager"):
        res = data["results"][mode]["rows"]
        assert res["1"]["flop_ratio"] == pytest.approx(2.1898, abs=1e-3)
        for k in ("1", "2"):
            # a step carrying K tangents costs more than a plain one
            assert res[k]["dual_ms"] > 0 and res[k]["plain_ms"] > 0 and res[k]["ratio"] > 1.0, res[k]
