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
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.io.csv_chunks import record_blocks

SAMPLE_BYTES = 1 << 20


@dataclass(frozen=True)
class LaneProgress:
    """One provider's lookups: a lookup is a distinct key of a batch; one answered from
    the store (this run, the cache) or under way for an earlier row counts as done."""

    done: int
    total: int | None
    """Over the whole input: exact once every row is planned, until then projected from
    the rows planned so far onto the input's row count."""
    requests: int = 0
    """This session's recorded requests (retries included)."""
    retries: int = 0
    http_429: int = 0
    credits: int = 0
    """Charged for this session's requests."""
    rate_per_s: float | None = None
    """Lookups done per second over the last minute (None: not measured yet)."""
    eta_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["rate_per_s"] = None if self.rate_per_s is None else round(self.rate_per_s, 2)
        out["eta_s"] = None if self.eta_s is None else round(self.eta_s, 1)
        return out


@dataclass(frozen=True)
class Progress:
    """A snapshot of a running session. Scopes: ``credits`` is the run's (every session,
    what the budget counts); ``session_credits``, ``requests`` and each provider's
    figures are this session's; ``done``/``total`` are the input's lookups."""

    rows: int
    """Rows written to the output so far."""
    elapsed_s: float
    requests: int = 0
    credits: int = 0
    failed: int = 0
    rows_total: int | None = None
    """The input's rows: exact when ``rows_exact``, else estimated from its first MiB."""
    rows_exact: bool = False
    providers: dict[str, LaneProgress] = field(default_factory=dict)
    eta_s: float | None = None
    """The slowest lane's: its lookups left at its measured rate (rows, with none)."""
    session_credits: int = 0
    max_credits: int | None = None
    estimated_credits: int | None = None
    """This session's purchases over the whole input, at the most each lookup can cost:
    projected like the lookups (the ``estimate`` command's figure, as the run sees it)."""

    @property
    def share(self) -> float | None:
        """How far the run is, 0 to 1: the slowest lane's share of its lookups."""
        shares = [p.done / p.total for p in self.providers.values() if p.total]
        if shares:
            return min(1.0, min(shares))
        if self.rows_total:
            return min(1.0, self.rows / self.rows_total)
        return None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["elapsed_s"] = round(self.elapsed_s, 1)
        out["eta_s"] = None if self.eta_s is None else round(self.eta_s, 1)
        out["providers"] = {name: lane.as_dict() for name, lane in self.providers.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Progress:
        """A snapshot as :meth:`as_dict` wrote it (a run log's progress event)."""
        names = {f for f in cls.__dataclass_fields__ if f != "providers"}
        lanes = {
            name: LaneProgress(
                **{k: v for k, v in lane.items() if k in LaneProgress.__dataclass_fields__}
            )
            for name, lane in (data.get("providers") or {}).items()
        }
        return cls(**{k: v for k, v in data.items() if k in names}, providers=lanes)


def last_progress(log: Path, tail_bytes: int = 1 << 16) -> tuple[float, Progress] | None:
    """The newest progress event of a run log, and when it was written."""
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - tail_bytes))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            event = json.loads(line)
        except ValueError:
            continue  # the first line of the tail may be cut
        if isinstance(event, dict) and event.get("event") == "progress":
            fields = {k: v for k, v in event.items() if k not in ("time", "event")}
            return float(event.get("time", 0.0)), Progress.from_dict(fields)
    return None


def projected(keys: int, rows_planned: int, rows_total: int | None, read_done: bool) -> int | None:
    """The lookups of the whole input, from those of the rows planned so far."""
    if read_done:
        return keys
    if not rows_planned or not rows_total:
        return None
    return max(keys, round(keys * rows_total / rows_planned))


class RateMeter:
    """Each lane's rate of lookups done, over the last ``window_s`` seconds."""

    def __init__(
        self, window_s: float = 60.0, min_span_s: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self._window_s = window_s
        self._min_span_s = min_span_s
        self._clock = clock
        self._samples: dict[str, deque[tuple[float, int]]] = {}

    def rate(self, name: str, done: int) -> float | None:
        now = self._clock()
        samples = self._samples.setdefault(name, deque())
        samples.append((now, done))
        while len(samples) > 2 and now - samples[1][0] >= self._window_s:
            samples.popleft()  # keep one sample at least a window old
        first_at, first_done = samples[0]
        span = now - first_at
        if span < self._min_span_s:
            return None
        return (done - first_done) / span


def eta(done: int, total: int | None, rate: float | None) -> float | None:
    """Seconds left for one lane: 0 once done, None while its rate is unknown."""
    if total is None:
        return None
    left = total - done
    if left <= 0:
        return 0.0
    return left / rate if rate else None


def slowest(etas: list[float | None]) -> float | None:
    """The run's ETA: the slowest lane decides; unknown while any lane with lookups left
    has no rate yet."""
    if not etas or any(e is None for e in etas):
        return None
    return max(e for e in etas if e is not None)


def count_rows(path: Path, file_format: str) -> int | None:
    """The input's exact row count (a CSV's by polars' counting scan, which parses no
    field); None if it cannot be counted (the estimate stands).

    The scan is of the blocks the reader reads, not of the file: given a path, polars
    memory-maps it whole, and every mapped page counts in the run's RSS (a 345 MB
    spike at 3M rows of the sample file, 1.2 GB at 10M)."""
    try:
        if file_format == "parquet":
            return _parquet_rows(path)
        rows = 0
        for block in record_blocks(path):
            counted = (
                pl.scan_csv(
                    block,
                    infer_schema=False,
                    truncate_ragged_lines=True,
                    encoding="utf8-lossy",
                )
                .select(pl.len())
                .collect()
            )
            rows += int(counted.item())
        return rows
    except (OSError, ValueError, pl.exceptions.PolarsError):
        return None


class RowCount:
    """The input's row count: estimated at once, exact once a background count ends
    (with ``count``) or once every row is read (:meth:`read_all`).

    A run with lookups counts in the background: its lanes' totals are projected onto
    the count long before the input is read. A run that only normalizes does not: the
    read is the whole run, and a count would read the file a second time beside it, on
    the same cores, to be exact barely sooner."""

    def __init__(self, path: Path, file_format: str, count: bool = True) -> None:
        self.value = estimate_rows(path, file_format)
        self.exact = file_format == "parquet" and self.value is not None
        self._thread = threading.Thread(
            target=self._count, args=(path, file_format), name="phone-enrich-count", daemon=True
        )
        if count and not self.exact:
            self._thread.start()

    def _count(self, path: Path, file_format: str) -> None:
        counted = count_rows(path, file_format)
        if counted is not None:
            self.value, self.exact = counted, True

    def read_all(self, rows: int) -> None:
        """Every row is read: ``rows`` is the count."""
        self.value, self.exact = rows, True


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def estimate_rows(path: Path, file_format: str) -> int | None:
    """How many rows the input holds: exact for Parquet, estimated for CSV."""
    try:
        if file_format == "parquet":
            return _parquet_rows(path)
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
