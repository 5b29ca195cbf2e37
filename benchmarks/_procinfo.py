"""Small helpers the benchmark scripts share: process memory, git state, a slope."""
from __future__ import annotations

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
