"""The benchmark scripts run end to end (tiny sizes; the numbers are not checked)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args, timeout=60):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=str(ROOT), timeout=timeout)


def test_compare_peers_runs():
    r = _run("benchmarks/compare_peers.py", "--libs", "autodiff,numpy", "--model", "small", "--dtype", "float64",
             "--repeats", "2", "--T", "5", "--hyper-repeats", "1", "--peak-size", "256", "--peak-repeats", "2")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for row in ("plain step", "fwd-over-rev K=1", "fwd-over-rev K=4", "hypergrad / step", "numpy GEMMs only"):
        assert row in out, row
    assert "autodiff vs numpy  ok" in out           # the K=1 / K=4 tangents and hypergradient agree
    assert "(3) small float64" in out               # the targets summary


def test_memory_runs():
    r = _run("benchmarks/memory.py", "--max-T", "100")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any(l.split()[:2] == ["100", "forward"] for l in lines if l.strip())
    assert any(l.split()[:2] == ["10", "reverse"] for l in lines if l.strip())
    assert any(l.split()[:2] == ["100", "reverse"] for l in lines if l.strip())


def test_profile_jit_step_runs():
    r = _run("benchmarks/profile_jit_step.py", "--model", "small", "--dtype", "float64", "--K", "1",
             "--repeats", "3")
    assert r.returncode == 0, r.stderr
    assert "matmul" in r.stdout and "GEMM (matmul)" in r.stdout
    calls = [l.split() for l in r.stdout.splitlines() if l.startswith("matmul ")]
    assert calls and float(calls[0][1]) == 13   # the minimum number of GEMMs for this step


def test_integrate_memory_runs():
    r = _run("benchmarks/integrate_memory.py", "--max-T", "100", "--reverse-max-T", "100", "--trace-max-T", "100")
    assert r.returncode == 0, r.stderr
    rows = [l.split() for l in r.stdout.splitlines() if l.strip()]
    assert any(row[:2] == ["100", "forward"] for row in rows)
    reverse = [row for row in rows if row[:2] == ["100", "reverse"]]
    assert reverse and float(reverse[0][-1]) < 1e-10   # reverse agrees with forward mode


def test_skinny_gemm_runs():
    r = _run("benchmarks/skinny_gemm.py", "--repeats", "3", timeout=180)
    assert r.returncode == 0, r.stderr
    rows = [l.split() for l in r.stdout.splitlines() if l.startswith(("h ", "h.T", "g @"))]
    assert len(rows) == 6
    # the loops agree with numpy's matmul to rounding (the last column: max relative difference)
    assert all(float(row[-1]) < (1e-13 if "float64" in row else 1e-5) for row in rows)
