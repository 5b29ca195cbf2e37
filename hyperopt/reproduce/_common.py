"""Small helpers the paper modules share: progress bars, CSV rows, the jit backend."""
from __future__ import annotations

import contextlib
import csv
import os


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar of ``total`` runs, or None when progress is off."""
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, leave=False, unit="run", mininterval=0.5)


def tick(bar):
    if bar is not None:
        bar.update(1)


def write_csv(path: str, rows: list) -> None:
    """``rows`` (dicts) as a CSV whose columns are every key, in order of first use."""
    cols = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)


@contextlib.contextmanager
def jit_backend(name: str | None):
    """$AUTODIFF_JIT_BACKEND set to ``name`` (None: left alone) for the jit-ed functions
    created inside; jit reads it when a function is wrapped."""
    old = os.environ.get("AUTODIFF_JIT_BACKEND")
    if name is not None:
        os.environ["AUTODIFF_JIT_BACKEND"] = name
    try:
        yield
    finally:
        if name is not None:
            if old is None:
                del os.environ["AUTODIFF_JIT_BACKEND"]
            else:
                os.environ["AUTODIFF_JIT_BACKEND"] = old
