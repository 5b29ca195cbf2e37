"""benchmarks/inplace_write.py runs end to end with --quick (the timings are not checked)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_inplace_write_benchmark_runs_quick():
    r = subprocess.run([sys.executable, "benchmarks/inplace_write.py", "--quick"], capture_output=True,
                       text=True, cwd=str(ROOT), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [line.split() for line in r.stdout.splitlines()]
    for mode in (["forward", "K=1"], ["forward", "K=4"], ["reverse"]):
        for form in ("write", "concatenate", "pad", "where"):
            assert any(row[:len(mode)] == mode and form in row for row in rows), (mode, form)
    assert "forms agree: ok" in r.stdout          # every form computed the same derivatives
