"""What every paper module under `hyperopt.reproduce` returns.

A paper module exposes ``run(quick: bool, out_dir: str, progress: bool) -> Report``.
It runs the paper's claims scaled down to this machine (``quick=True``: seconds,
for tests), writes ``<out_dir>/<paper>.csv`` and ``<out_dir>/<paper>.png``, and
returns the claims it checked.
"""
from __future__ import annotations

from typing import NamedTuple


class Claim(NamedTuple):
    """One claim of a paper, with the published figure beside ours.

    * ``name``: short, e.g. "final loss independent of alpha0".
    * ``published``: the paper's figure as text ("spread 77 -> 27 -> 7 -> 2 points"),
      or "" when the claim is exact (an identity) rather than a number.
    * ``source``: where the published figure is ("Fig. 3", "Table 1", "Eq. 7").
    * ``ours``: our figure as text.
    * ``criterion``: the pass criterion in words ("spread(HD) < 0.25 * spread(SGD)").
    * ``passed``: whether ours meets the criterion.
    * ``exact``: True for claims that must hold at any scale (identities); the
      quick-mode tests assert those, and any other claim marked ``quick_ok``.
    * ``quick_ok``: True when the criterion is expected to hold in quick mode too.
    """
    name: str
    published: str
    source: str
    ours: str
    criterion: str
    passed: bool
    exact: bool = False
    quick_ok: bool = False


class Report(NamedTuple):
    paper: str            # "hd", "towers", "marthe", "radam", "hybrid"
    title: str            # the paper's title, authors and venue
    claims: list          # of Claim
    csv: str              # path written
    png: str              # path written
    settings: str         # one paragraph: the scaled-down settings and why
    extra: str = ""       # optional markdown shown under the claims table (e.g. a results grid)
