"""Progress while a run works: live figures every few seconds, and the run's own log.

A ticker thread takes a snapshot (rows written, requests sent, credits spent,
failed rows, an ETA) every ``every_s`` seconds and hands it to the display (the
CLI's progress line or JSON line) and to ``runs/<run_id>/log.jsonl``. Nothing here
sees provider answers or keys, so no secret and no litigator name can reach a log.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

SAMPLE_BYTES = 1 << 20


@dataclass(frozen=True)
class Progress:
    """A snapshot for progress display."""

    rows: int
    elapsed_s: float
    requests: int = 0
    credits: int = 0
    failed: int = 0
    rows_total: int | None = None
    """The input's rows, estimated for CSV (from the first MiB's line length)."""

    @property
    def eta_s(self) -> float | None:
        if not self.rows_total or not self.rows or self.elapsed_s <= 0:
            return None
        left = max(0, self.rows_total - self.rows)
        return left / (self.rows / self.elapsed_s)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["elapsed_s"] = round(self.elapsed_s, 1)
        eta = self.eta_s
        out["eta_s"] = None if eta is None else round(eta, 1)
        return out


def estimate_rows(path: Path, file_format: str) -> int | None:
    """How many rows the input holds: exact for Parquet, estimated for CSV."""
    try:
        if file_format == "parquet":
            return int(pq.ParquetFile(path).metadata.num_rows)
        size = path.stat().st_size
        with open(path, "rb") as fh:
            sample = fh.read(SAMPLE_BYTES)
    except (OSError, ValueError):
        return None
    lines = sample.count(b"\n")
    if lines <= 1:
        return None
    if len(sample) < SAMPLE_BYTES:
        return lines - 1 if sample.endswith(b"\n") else lines
    return max(0, round(size / (len(sample) / lines)) - 1)


class RunLog:
    """``runs/<run_id>/log.jsonl``: one JSON object per event, appended as it happens."""

    def __init__(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / "log.jsonl"
        self._lock = threading.Lock()
        self.broken: OSError | None = None
        """The write that failed (a full disk): the log stops there, the run does not."""

    def event(self, name: str, **fields: Any) -> None:
        line = json.dumps({"time": round(time.time(), 3), "event": name, **fields}, default=str)
        with self._lock:
            if self.broken is not None:
                return
            try:
                with open(self.path, "a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as exc:
                self.broken = exc


class Ticker:
    """Calls ``report(snapshot())`` every ``every_s`` seconds until stopped."""

    def __init__(
        self, snapshot: Callable[[], Progress], report: Callable[[Progress], None], every_s: float
    ) -> None:
        self._snapshot = snapshot
        self._report = report
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._work, name="phone-enrich-progress", daemon=True
        )

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _work(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                self._report(self._snapshot())
            except OSError:  # a full disk or a closed terminal must not end the progress
                continue
