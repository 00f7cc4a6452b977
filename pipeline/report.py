"""The run's report: its schema, in one place, and the per-run folder's files.

``state_dir/runs/<run_id>/report.json`` is written at the end of every session
(whatever ended it) from a :class:`RunReport`; ``failed_rows.csv`` is written as
the rows go by (:class:`FailedRowsFile`). The keys of report.json are a contract
with the people and scripts that read it: they are named here and nowhere else.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.run_state import PhoneTally, ProviderTally
from pipeline.store.records import RequestTotals, RunRecord, SessionRecord
from pipeline.verdict import VERDICTS

FAILED_ROWS_HEADER = ("row_trace_id", "row_number", "id", "phone", "provider", "status", "error")
"""``id`` is the row's ``input.id_column`` value (blank without one), ``phone`` its phone
in E.164, else the input's own text where it has no valid one."""


@dataclass(frozen=True)
class ProviderFigures:
    """One provider's figures: the request log's (the whole run) and the rows' (this
    session's output).

    Requests that got no HTTP answer (timed out, dropped, or in flight when a process
    ended) may still have been charged: their numbers, at the provider's highest price
    per number, are ``credits_possibly_charged``, on no row.
    """

    requests: RequestTotals
    rows: ProviderTally
    lookups: dict[str, int]
    """The run's own lookups by status (the store's)."""
    max_credits_per_key: int
    stopped: str | None
    peak_in_flight: int | None = None
    """The most requests in flight at once this session: what a kill -9 could cost."""
    lookups_total: int = 0
    """This session's lookups (distinct keys of each batch), answered or bought."""
    lookups_bought: int = 0
    """Of them, the ones nothing answered yet: sent to be bought."""

    def as_dict(self) -> dict[str, Any]:
        by_status = self.rows.by_status()
        out: dict[str, Any] = {
            "requests": self.requests.requests,
            "numbers": self.requests.numbers,
            "hits": by_status["hit"],
            "no_match": by_status["no_match"],
            "invalid_input": by_status["invalid_input"],
            "failures": by_status["failed"],
            "retries": self.requests.retries,
            "http_429": self.requests.http_429,
            "cache_hits": self.rows.cache_hits,
            "duplicate_rows": self.rows.duplicates,
            "credits": self.rows.credits,
            "credits_charged": self.requests.credits,
            "unanswered_requests": self.requests.unanswered,
            "unanswered_numbers": self.requests.unanswered_numbers,
            "credits_possibly_charged": self.credits_possibly_charged,
            "lookups": self.lookups,
            "rows": by_status,
            "stopped": self.stopped,
        }
        if self.peak_in_flight is not None:
            out["peak_in_flight"] = self.peak_in_flight
        out["lookups_total"] = self.lookups_total
        out["estimated_credits"] = self.lookups_bought * self.max_credits_per_key
        return out

    @property
    def credits_possibly_charged(self) -> int:
        return self.requests.unanswered_numbers * self.max_credits_per_key


@dataclass(frozen=True)
class BudgetFigures:
    max_credits: int | None
    source: str
    """``--max-credits``, ``--max-credits of an earlier session``, ``run.max_credits`` or
    ``none``."""
    spent: int
    """Charged by the run in all its sessions, plus what unanswered requests may cost."""

    def as_dict(self) -> dict[str, Any]:
        return {"max_credits": self.max_credits, "from": self.source, "spent": self.spent}


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


@dataclass(frozen=True)
class RunFigures:
    """The run over all its sessions (the rest of the report is mostly this session's):
    when it started and finished, how long its sessions took in all, what its requests
    were charged, and each session. A run recorded before sessions were kept has None
    where a time is not known, and ``duration_complete`` false."""

    state: str
    started_at: float
    sessions: list[SessionRecord]

    @classmethod
    def of(cls, run: RunRecord, sessions: list[SessionRecord], now: float) -> RunFigures:
        """``now`` ends the run's current session if the store has no end for it yet
        (the report is written as the session ends)."""
        current = [
            SessionRecord(s.run_id, s.number, s.started_at, now, s.exit_code, s.credits_charged)
            if s.number == run.session and s.ended_at is None
            else s
            for s in sessions
        ]
        return cls(run.state, run.started_at, current)

    @property
    def finished_at(self) -> float | None:
        return self.sessions[-1].ended_at if self.sessions else None

    @property
    def duration_s(self) -> float:
        """The sessions' durations summed (the time between sessions is not counted)."""
        return sum(s.duration_s or 0.0 for s in self.sessions)

    @property
    def credits_charged(self) -> int:
        return sum(s.credits_charged for s in self.sessions)

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "sessions": len(self.sessions),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "duration_s": round(self.duration_s, 3),
            "duration_complete": all(s.duration_s is not None for s in self.sessions),
            "credits_charged": self.credits_charged,
        }

    def sessions_as_list(self) -> list[dict[str, Any]]:
        return [
            {
                "session": s.number,
                "started_at": _iso(s.started_at),
                "finished_at": _iso(s.ended_at),
                "duration_s": None if s.duration_s is None else round(s.duration_s, 3),
                "exit_code": s.exit_code,
                "credits_charged": s.credits_charged,
            }
            for s in self.sessions
        ]


@dataclass(frozen=True)
class InputFigures:
    path: str
    format: str | None = None
    encoding: str | None = None
    replaced_bytes: int = 0
    """Bytes read as U+FFFD (``encoding_errors = "replace"``)."""
    line_ends: str | None = None
    fingerprint: str | None = None


@dataclass
class RunReport:
    """report.json of one session. A session that failed before it began (bad input, a
    missing key) has no figures, only ``error``."""

    run_id: str
    config: str | None
    started_at: datetime
    input: InputFigures
    output: Path
    exit_code: int = 0
    error: str | None = None
    session: int | None = None
    finished_at: datetime | None = None
    duration_s: float = 0.0
    phones: PhoneTally | None = None
    providers: dict[str, ProviderFigures] = field(default_factory=dict)
    budget: BudgetFigures | None = None
    run: RunFigures | None = None
    """The run over all its sessions (``run`` and ``sessions`` in report.json)."""
    verdicts: Counter[str] | None = None
    """Rows of the output by ``contact_verdict``."""

    @property
    def credits(self) -> int:
        return sum(p.rows.credits for p in self.providers.values())

    def as_dict(self) -> dict[str, Any]:
        if self.phones is None:  # ended before it began
            return {
                "run_id": self.run_id,
                "config": self.config,
                "started_at": self.started_at.isoformat(),
                "input": {"path": self.input.path},
                "output": {"path": str(self.output)},
                "exit_code": self.exit_code,
                "error": self.error,
            }
        out: dict[str, Any] = {
            "run_id": self.run_id,
            "session": self.session,
            "config": self.config,
            "started_at": self.started_at.isoformat(),
            "input": {
                "path": self.input.path,
                "format": self.input.format,
                "encoding": self.input.encoding,
                "replaced_bytes": self.input.replaced_bytes,
                "line_ends": self.input.line_ends,
                "fingerprint": self.input.fingerprint,
            },
            "output": {"path": str(self.output)},
        }
        if self.error is not None:
            out["error"] = self.error
        out.update(
            finished_at=self.finished_at.isoformat() if self.finished_at else None,
            duration_s=round(self.duration_s, 3),
            exit_code=self.exit_code,
            rows=self.phones.rows,
            phones={
                "valid": self.phones.valid,
                "rejected": self.phones.rows - self.phones.valid,
                "reasons": dict(sorted(self.phones.reasons.items())),
            },
            providers={name: p.as_dict() for name, p in self.providers.items()},
            credits_total=self.credits,
            budget=self.budget.as_dict() if self.budget else None,
        )
        if self.phones.consent_dates:
            out["consent_dates"] = dict(self.phones.consent_dates)
        if self.run is not None:
            out["run"] = self.run.as_dict()
            out["sessions"] = self.run.sessions_as_list()
        if self.verdicts is not None:
            out["verdicts"] = {v: self.verdicts.get(v, 0) for v in VERDICTS}
        return out


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_report(run_dir: Path, report: RunReport) -> Path:
    """Write report.json (atomically) and return its path."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "report.json"
    _atomic_write(path, json.dumps(report.as_dict(), indent=2, sort_keys=False) + "\n")
    return path


FailedRow = tuple[str, int, str, str, str, str, str]
"""(row_trace_id, row_number, id, phone, provider, status, error)."""


class FailedRowsFile:
    """failed_rows.csv written as the run goes (a stopped lane can fail millions of rows).

    Rows go to a temp file beside it; :meth:`close` renames it into place.
    """

    def __init__(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / "failed_rows.csv"
        self._tmp = run_dir / ".failed_rows.csv.tmp"
        self._fh = open(self._tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115
        self._writer = csv.writer(self._fh, lineterminator="\n")
        self._writer.writerow(FAILED_ROWS_HEADER)
        self.count = 0

    def add(self, rows: list[FailedRow]) -> None:
        self._writer.writerows(rows)
        self.count += len(rows)

    def close(self) -> Path:
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            os.replace(self._tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):  # its buffer may be what cannot be written
                self._fh.close()
            self._tmp.unlink(missing_ok=True)
            raise
        return self.path
