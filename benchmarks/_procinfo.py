"""Small helpers the benchmark scripts share: process memory, git state, a slope."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def status_kb(field: str) -> int | None:
    """A field of /proc/self/status (VmRSS: current resident set, VmHWM: its peak) in KiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_kb() -> int:
    """The process's peak resident set (VmHWM; ru_maxrss where /proc is missing), KiB."""
    hwm = status_kb("VmHWM")
    if hwm is not None:
        return hwm
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss   # KiB on Linux


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def slope(points):
    """Least-squares slope of y on x."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else float("nan")


def git_head() -> str:
    """The short HEAD, and whether autodiff/ or hyperopt/ have uncommitted changes."""
    try:
        r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=str(ROOT))
        dirty = subprocess.run(["git", "status", "--porcelain", "autodiff", "hyperopt"], capture_output=True,
                               text=True, cwd=str(ROOT)).stdout.strip()
        return r.stdout.strip() + (" (autodiff/ or hyperopt/ modified)" if dirty else "")
    except OSError:
        return "unknown"


def one_thread_fixed_malloc(trim_threshold: int) -> None:
    """One BLAS/OpenMP thread, and glibc's malloc thresholds fixed (mmap at
    256 MiB, trim at ``trim_threshold``) by re-executing the script, unless
    --default-malloc is given: otherwise glibc's dynamic mmap threshold decides
    from the history of frees whether a fresh large temporary costs page faults.
    Call before numpy is imported."""
    import sys
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(v, "1")
    fixed = {"MALLOC_MMAP_THRESHOLD_": str(256 << 20), "MALLOC_TRIM_THRESHOLD_": str(trim_threshold)}
    if "--default-malloc" not in sys.argv and any(os.environ.get(k) != v for k, v in fixed.items()):
        os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, **fixed})
