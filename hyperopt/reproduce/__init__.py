"""The seed papers' claims, run on embedded data, published figures beside ours.

``python -m hyperopt reproduce {hd,towers,marthe,radam,hybrid,all}`` runs each
paper module of this package (``hyperopt.reproduce.<paper>``, each exposing
``run(quick, out_dir, progress) -> Report``, see `_claims`), prints one table
per paper (claim | published | source | ours | criterion | PASS/FAIL) and a
summary line, and writes a markdown page with the tables, plots and CSVs.

Layout of ``--out DIR``::

    DIR/reproductions.md          the page (`write_page`)
    DIR/reproductions/<paper>.csv  each paper's numbers
    DIR/reproductions/<paper>.png  each paper's plot

A paper whose module is missing is reported as "not available" and the others
still run; a paper module that raises is reported with its error.  A FAIL is a
result, not an error: claims that do not reproduce at this scale are printed
and written as they came out.
"""
from __future__ import annotations

import datetime
import importlib
import os
import platform
import subprocess
import sys
import textwrap
import time
import traceback
from typing import Iterable, Optional

from ._claims import Claim, Report

__all__ = ["PAPERS", "Claim", "Report", "run", "write_page", "format_report", "load_paper",
           "ASSETS", "PAGE"]

PAPERS = ("hd", "towers", "marthe", "radam", "hybrid")
PAGE = "reproductions.md"      # the page, in --out
ASSETS = "reproductions"       # the CSVs and PNGs, in --out/ASSETS

_COLUMNS = (("claim", 26), ("published", 30), ("source", 18), ("ours", 30), ("criterion", 28),
            ("result", 6))


def load_paper(paper: str):
    """The module ``hyperopt.reproduce.<paper>``, or None if it does not exist (yet).

    Only a missing module counts as "not available"; a module that exists but
    fails to import raises, so its error is seen."""
    name = f"{__name__}.{paper}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name == name:
            return None
        raise


def _targets(targets) -> list:
    if isinstance(targets, str):
        targets = [targets]
    out = []
    for t in targets:
        for p in (PAPERS if t == "all" else (t,)):
            if p not in PAPERS:
                raise ValueError(f"unknown paper {p!r}; choose from {', '.join(PAPERS)} or all")
            if p not in out:
                out.append(p)
    return out


def _wrap_row(cells, widths) -> list:
    cols = [textwrap.wrap(str(c), w) or [""] for c, w in zip(cells, widths)]
    n = max(len(c) for c in cols)
    return [" | ".join((col[i] if i < len(col) else "").ljust(w) for col, w in zip(cols, widths))
            .rstrip() for i in range(n)]


def format_report(report: Report) -> str:
    """The per-claim table of one paper, as plain text."""
    widths = [w for _, w in _COLUMNS]
    lines = _wrap_row([h for h, _ in _COLUMNS], widths)
    lines.append("-+-".join("-" * w for w in widths))
    for c in report.claims:
        result = "PASS" if c.passed else "FAIL"
        lines += _wrap_row([c.name, c.published or "(exact)", c.source, c.ours, c.criterion,
                            result], widths)
    n_pass = sum(bool(c.passed) for c in report.claims)
    lines.append(f"{report.paper}: {n_pass}/{len(report.claims)} claims pass")
    return "\n".join(lines)


def run(targets: Iterable[str] | str = "all", quick: bool = False, out_dir: str = "reproductions",
        progress: bool = True, *, page: bool = True, command: Optional[str] = None,
        stream=None) -> dict:
    """Run the papers in ``targets`` (names from `PAPERS`, or "all"), print their
    tables and a summary line to ``stream`` (stdout), and write the page.

    Returns ``{paper: Report | str}``: a `Report`, or a string saying why there is
    none ("not available: ..." for a missing module, "error: ..." for a module
    that raised)."""
    stream = sys.stdout if stream is None else stream
    papers = _targets(targets)
    assets = os.path.join(out_dir, ASSETS)
    os.makedirs(assets, exist_ok=True)
    results: dict = {}
    seconds: dict = {}
    for paper in papers:
        print(f"\n== {paper} " + "=" * max(0, 70 - len(paper)), file=stream, flush=True)
        t0 = time.perf_counter()
        try:
            module = load_paper(paper)
            if module is None:
                results[paper] = (f"not available: hyperopt/reproduce/{paper}.py is not in this "
                                  "version")
            else:
                results[paper] = module.run(quick=quick, out_dir=assets, progress=progress)
        except Exception as e:  # one paper's crash must not hide the others' results
            traceback.print_exc(file=sys.stderr)
            results[paper] = f"error: {type(e).__name__}: {' '.join(str(e).split())}"
        seconds[paper] = time.perf_counter() - t0
        r = results[paper]
        if isinstance(r, str):
            print(f"{paper}: {r}", file=stream, flush=True)
        else:
            print(r.title, file=stream)
            print(format_report(r), file=stream)
            print(f"({seconds[paper]:.0f} s; wrote {r.csv}, {r.png})", file=stream, flush=True)
    reports = [r for r in results.values() if not isinstance(r, str)]
    n_claims = sum(len(r.claims) for r in reports)
    n_pass = sum(sum(bool(c.passed) for c in r.claims) for r in reports)
    missing = [p for p, r in results.items() if isinstance(r, str)]
    summary = (f"\nsummary: {n_pass}/{n_claims} claims pass ({n_claims - n_pass} fail) in "
               f"{len(reports)} paper{'s' if len(reports) != 1 else ''}"
               + (f"; not run: {', '.join(missing)}" if missing else "")
               + f"; {sum(seconds.values()):.0f} s" + (" (quick mode)" if quick else ""))
    print(summary, file=stream, flush=True)
    if page:
        path = os.path.join(out_dir, PAGE)
        write_page(results, path, command or _default_command(papers, quick, out_dir),
                   quick=quick, seconds=seconds)
        print(f"wrote {path}", file=stream, flush=True)
    return results


def _default_command(papers, quick, out_dir) -> str:
    what = "all" if list(papers) == list(PAPERS) else " ".join(papers)
    return f"python -m hyperopt reproduce {what}" + (" --quick" if quick else "") + \
        f" --out {out_dir}"


# -- the page -----------------------------------------------------------------------

def _git(*args) -> Optional[str]:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", *args], cwd=here, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def _git_commit() -> Optional[str]:
    """``git rev-parse --short HEAD`` (markdown code), and how many files of the code
    (autodiff/, hyperopt/, benchmarks/) differ from it, so that a page run from a
    modified tree says so; None outside a repository."""
    head = (_git("rev-parse", "--short", "HEAD") or "").strip()
    if not head:
        return None
    top = (_git("rev-parse", "--show-toplevel") or "").strip()
    status = _git("-C", top, "status", "--porcelain", "--", "autodiff", "hyperopt",
                  "benchmarks") if top else None
    changed = [line for line in (status or "").splitlines() if line.strip()]
    if changed:
        return (f"`{head}` plus uncommitted changes to {len(changed)} file"
                f"{'s' if len(changed) != 1 else ''} of the code (autodiff/, hyperopt/, "
                "benchmarks/)")
    return f"`{head}`"


def _machine() -> str:
    import numpy as np
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return (f"{cpu}, {cores} cores available; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}, numpy {np.__version__}")


def _md_cell(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _claims_table(report: Report) -> list:
    lines = ["| claim | published | source | ours | criterion | result |",
             "|---|---|---|---|---|---|"]
    for c in report.claims:
        result = "**PASS**" if c.passed else "**FAIL**"
        lines.append("| " + " | ".join(_md_cell(x) for x in (
            c.name, c.published or "(exact identity)", c.source, c.ours, c.criterion)) +
            f" | {result} |")
    return lines


def write_page(reports, path: str, command: str, *, quick: bool = False,
               seconds: Optional[dict] = None, date: Optional[str] = None,
               commit: Optional[str] = "auto", machine: Optional[str] = None) -> str:
    """Write the markdown page of ``reports`` (a dict ``{paper: Report | str}`` as
    `run` returns, or a list of Reports) to ``path``; returns the text.

    The header names the command, the date, the commit (``git rev-parse --short
    HEAD``, when there is a repository, and whether the code differs from it) and
    the machine; each paper gets its
    title, the settings paragraph, the claims table, the plot and a link to the
    CSV (paths relative to the page)."""
    if not isinstance(reports, dict):
        reports = {r.paper: r for r in reports}
    seconds = seconds or {}
    date = date or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    commit = _git_commit() if commit == "auto" else (f"`{commit}`" if commit else None)
    machine = machine or _machine()
    here = os.path.dirname(os.path.abspath(path))
    done = [r for r in reports.values() if not isinstance(r, str)]
    n_claims = sum(len(r.claims) for r in done)
    n_pass = sum(sum(bool(c.passed) for c in r.claims) for r in done)
    out = ["# Reproducing the papers", "",
           "Each paper's qualitative claims, run on embedded data (scikit-learn's digits, "
           "synthetic problems) and scaled down to a small machine. Every row gives the "
           "published figure and where it is, our figure, and the pass criterion. A claim "
           "that does not reproduce at this scale is reported as such, with its numbers.", "",
           f"* command: `{command}`" + (" (quick mode: seconds per paper, not the full run)"
                                         if quick else ""),
           f"* date: {date}",
           f"* commit: {commit}" if commit else "* commit: (not in a git repository)",
           f"* machine: {machine}",
           f"* result: {n_pass}/{n_claims} claims pass in {len(done)} "
           f"paper{'s' if len(done) != 1 else ''}", ""]
    out += ["| paper | claims | pass | fail | time |", "|---|---|---|---|---|"]
    for paper, r in reports.items():
        t = f"{seconds[paper]:.0f} s" if paper in seconds else ""
        if isinstance(r, str):
            out.append(f"| {paper} | - | - | - | {_md_cell(r)} |")
        else:
            k = sum(bool(c.passed) for c in r.claims)
            out.append(f"| [{paper}](#{paper}) | {len(r.claims)} | {k} | {len(r.claims) - k} "
                       f"| {t} |")
    out.append("")
    for paper, r in reports.items():
        out += [f'<a id="{paper}"></a>', ""]
        if isinstance(r, str):
            out += [f"## {paper}", "", f"Not run ({r}).", ""]
            continue
        out += [f"## {r.title}", "", f"**Settings.** {' '.join(r.settings.split())}", ""]
        out += _claims_table(r)
        out.append("")
        if r.extra:
            out += [r.extra.strip(), ""]
        png = os.path.relpath(r.png, here).replace(os.sep, "/")
        csv = os.path.relpath(r.csv, here).replace(os.sep, "/")
        out += [f"![{paper}]({png})", "", f"Numbers: [{csv}]({csv})", ""]
    text = "\n".join(out)
    os.makedirs(here, exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return text
