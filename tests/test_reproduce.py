"""`python -m hyperopt reproduce`: the runner, the page, the CLI, and the quick-mode
claims of the hd and radam papers (the exact identities, and those marked quick_ok)."""
import os
import subprocess
import sys

import pytest

from hyperopt import reproduce
from hyperopt.cli import main
from hyperopt.reproduce import Claim, Report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """hd and radam in quick mode, through the runner (the page included)."""
    out = str(tmp_path_factory.mktemp("reproduce"))
    results = reproduce.run(["hd", "radam"], quick=True, out_dir=out, progress=False)
    return out, results


@pytest.mark.parametrize("paper", ["hd", "radam"])
def test_quick_claims(quick, paper):
    out, results = quick
    report = results[paper]
    assert isinstance(report, Report), report
    assert report.paper == paper and report.claims and report.settings
    for c in report.claims:
        assert isinstance(c, Claim)
        assert c.source and c.ours and c.criterion, c
        if c.exact or c.quick_ok:
            assert c.passed, f"{paper}: {c.name}: {c.ours} (criterion {c.criterion})"
    assert any(c.exact for c in report.claims)
    for path in (report.csv, report.png):
        assert os.path.dirname(path) == os.path.join(out, reproduce.ASSETS)
        assert os.path.getsize(path) > 0


def test_quick_page(quick):
    out, results = quick
    text = open(os.path.join(out, reproduce.PAGE)).read()
    assert "--quick" in text
    for paper in ("hd", "radam"):
        assert f"![{paper}](reproductions/{paper}.png)" in text
        assert f"(reproductions/{paper}.csv)" in text
        assert results[paper].title in text


def test_cli_reproduce(tmp_path):
    out = tmp_path / "tmp"
    p = subprocess.run([sys.executable, "-m", "hyperopt", "reproduce", "hd", "--quick", "--out",
                        str(out), "--no-progress"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    assert "published" in p.stdout and "criterion" in p.stdout
    assert "PASS" in p.stdout and "summary:" in p.stdout
    assert (out / "reproductions" / "hd.csv").stat().st_size > 0
    assert (out / "reproductions" / "hd.png").stat().st_size > 0
    assert (out / "reproductions.md").exists()


@pytest.mark.parametrize("argv", [["reproduce", "nosuchpaper"], ["reproduce"],
                                  ["reproduce", "hd", "--model", "mlp"]])
def test_cli_bad_usage(argv, capsys, tmp_path):
    assert main(argv + ["--out", str(tmp_path)]) == 2
    assert "error" in capsys.readouterr().err


def test_missing_paper_module(monkeypatch, tmp_path):
    """A paper whose module is not there is "not available"; the others still run.
    A module that fails on a missing dependency is an error, not "not available"."""
    import importlib
    real = importlib.import_module

    def fake(name, *a, **kw):
        if name == "hyperopt.reproduce.hybrid":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        if name == "hyperopt.reproduce.towers":
            raise ModuleNotFoundError("No module named 'nodep'", name="nodep")
        if name == "hyperopt.reproduce.marthe":
            class Stub:
                @staticmethod
                def run(quick, out_dir, progress=True):
                    png, csv = os.path.join(out_dir, "m.png"), os.path.join(out_dir, "m.csv")
                    return Report("marthe", "Stub", [Claim("c", "", "Eq. 1", "1", "= 1", True,
                                                           exact=True)], csv, png, "s")
            return Stub
        return real(name, *a, **kw)

    monkeypatch.setattr(reproduce.importlib, "import_module", fake)
    res = reproduce.run(["hybrid", "towers", "marthe"], quick=True, out_dir=str(tmp_path),
                        progress=False)
    assert res["hybrid"].startswith("not available")
    assert res["towers"].startswith("error") and "nodep" in res["towers"]
    assert isinstance(res["marthe"], Report)
    page = (tmp_path / reproduce.PAGE).read_text()
    assert "not available" in page and "[marthe](#marthe)" in page


def test_write_page(tmp_path):
    assets = tmp_path / "reproductions"
    assets.mkdir()
    r = Report("radam", "A Paper (Someone; 2020)",
               [Claim("first", "3.1", "Table 2", "3.0", "|ours − 3.1| ≤ 0.2", True),
                Claim("second | piped", "", "Eq. 4", "differs", "identical", False, exact=True)],
               str(assets / "radam.csv"), str(assets / "radam.png"), "Settings here.",
               "extra markdown")
    path = tmp_path / "reproductions.md"
    text = reproduce.write_page({"radam": r, "hybrid": "not available: missing"}, str(path),
                                "python -m hyperopt reproduce all --out X", date="2026-01-01",
                                commit="abc1234", machine="a test machine")
    assert path.read_text() == text
    for s in ("`python -m hyperopt reproduce all --out X`", "2026-01-01", "`abc1234`",
              "a test machine", "## A Paper (Someone; 2020)", "**Settings.** Settings here.",
              "| first | 3.1 | Table 2 | 3.0 | |ours − 3.1| ≤ 0.2 | **PASS** |".replace(
                  "|ours − 3.1|", "\\|ours − 3.1\\|"),
              "second \\| piped", "(exact identity)", "**FAIL**", "extra markdown",
              "![radam](reproductions/radam.png)", "[reproductions/radam.csv]",
              "1/2 claims pass", "not available: missing"):
        assert s in text, s


def test_format_report_and_targets():
    r = Report("hd", "T", [Claim("a", "p", "s", "o", "c", True), Claim("b", "", "s", "o", "c",
                                                                        False)], "x", "y", "z")
    text = reproduce.format_report(r)
    assert "PASS" in text and "FAIL" in text and "hd: 1/2 claims pass" in text
    assert reproduce._targets(["all"]) == list(reproduce.PAPERS)
    assert reproduce._targets(["radam", "hd", "radam"]) == ["radam", "hd"]
    with pytest.raises(ValueError):
        reproduce._targets(["nope"])


FULL = pytest.mark.skipif(not os.environ.get("HYPEROPT_REPRODUCE_FULL"), reason="the full reproductions take minutes per paper: HYPEROPT_REPRODUCE_FULL=1")


@FULL
@pytest.mark.slow
def test_full_run(tmp_path):
    """The full run of every paper that is there (minutes per paper)."""
    assert main(["reproduce", "all", "--out", str(tmp_path), "--no-progress"]) == 0
    assert (tmp_path / reproduce.PAGE).exists()
    for paper in ("hd", "radam"):
        assert (tmp_path / reproduce.ASSETS / f"{paper}.png").exists()
