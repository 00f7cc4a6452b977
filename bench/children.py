"""What the memory and speed benchmarks share: a program run as a child and measured
(wall time, CPU time and peak RSS from ``os.wait4``), its output's rows counted by
another child, and a config's paths written as TOML strings.

Linux's peak RSS of a child starts from its parent's: ``exec`` keeps the high-water
mark of the memory it replaces, which a child made by ``vfork`` shares with this
process (a child of a parent that once held 700 MB reports 700 MB for
``python -c pass``). So a benchmark never reads data itself: it counts rows in a child.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

COUNT_CODE = (
    "import sys, polars as pl; p = sys.argv[1]; "
    "lf = pl.scan_parquet(p) if p.endswith('.parquet') else pl.scan_csv(p, infer_schema=False); "
    "print(lf.select(pl.len()).collect().item())"
)


class BenchError(Exception):
    pass


@dataclass(frozen=True)
class Measure:
    seconds: float
    cpu_seconds: float
    """User + system time of the child."""
    peak_rss_mb: float


def run_measured(cmd: list[str], log: Path, cwd: Path = ROOT) -> Measure:
    """Run ``cmd`` as a child in ``cwd`` (``-m pipeline`` is the one under it); its wall
    time, CPU time and peak RSS. Raises if it exits non-zero."""
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, tell Popen
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise BenchError(f"exit {proc.returncode}: {' '.join(cmd)}\n{tail}")
    # Linux reports ru_maxrss in KiB (macOS in bytes).
    rss_bytes = usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024
    return Measure(seconds, usage.ru_utime + usage.ru_stime, rss_bytes / 2**20)


def count_rows(path: Path) -> int:
    """The rows in ``path`` (Parquet or CSV), counted by a child (see the module's note)."""
    out = subprocess.run(
        [PYTHON, "-c", COUNT_CODE, str(path)], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise BenchError(f"counting the rows of {path}: {out.stderr[-3000:]}")
    return int(out.stdout)


def toml_str(path: Path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def verdict(ok: bool, what: str) -> bool:
    print(f"{'PASS' if ok else 'FAIL'}  {what}")
    return ok
