"""benchmarks/hd_sensitivity.py runs end to end with --quick (the numbers are not checked)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_hd_sensitivity_quick(tmp_path):
    md, png = tmp_path / "s.md", tmp_path / "s.png"
    r = subprocess.run([sys.executable, "benchmarks/hd_sensitivity.py", "--quick", "--steps", "10",
                        "--out-md", str(md), "--out-png", str(png)],
                       capture_output=True, text=True, cwd=str(ROOT), timeout=60)
    assert r.returncode == 0, r.stderr
    text = md.read_text()
    for head in ("## logreg", "## mlp", "| SGD-HD |", "| RAdam-HD |", "| Tower-3"):
        assert head in text, head
    assert "lr=0.0001" in text and "lr=1 |" in text
    assert png.stat().st_size > 1000
