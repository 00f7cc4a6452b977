"""The per-run folder: ``state_dir/runs/<run_id>/report.json`` and ``failed_rows.csv``."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.ledger import Ledger
    from pipeline.merge import ProviderTally
    from pipeline.providers.base import Provider

FAILED_ROWS_HEADER = ("row_trace_id", "row_number", "provider", "status", "error")


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


def write_report(run_dir: Path, report: dict[str, Any]) -> Path:
    """Write report.json (atomically) and return its path."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "report.json"
    _atomic_write(path, json.dumps(report, indent=2, sort_keys=False) + "\n")
    return path


def write_failed_rows(run_dir: Path, rows: list[tuple[str, int, str, str, str]]) -> Path:
    """Write failed_rows.csv: one line per lookup that failed (header only if none)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "failed_rows.csv"
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(FAILED_ROWS_HEADER)
    writer.writerows(rows)
    _atomic_write(path, text.getvalue())
    return path


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

    def add(self, rows: list[tuple[str, int, str, str, str]]) -> None:
        self._writer.writerows(rows)
        self.count += len(rows)

    def close(self) -> Path:
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            os.replace(self._tmp, self.path)
        except BaseException:
            self.discard()
            raise
        return self.path

    def discard(self) -> None:
        with contextlib.suppress(OSError):  # its buffer may be what cannot be written
            self._fh.close()
        self._tmp.unlink(missing_ok=True)


def provider_report(
    ledger: Ledger, run_id: str, provider: Provider, tally: ProviderTally, stopped: str | None
) -> dict[str, Any]:
    """One provider's figures for report.json: the request log's and the rows'.

    Requests that got no HTTP answer (timed out, dropped, or in flight when a process
    ended) may still have been charged: their numbers, at the provider's highest price
    per number, are ``credits_possibly_charged``, on no row (the rows' credits stay what
    the answers that arrived cost).
    """
    totals = ledger.request_totals(run_id, provider.name)
    rows = tally.as_dict()
    by_status = rows["rows"]
    assert isinstance(by_status, dict)
    return {
        "requests": totals["requests"],
        "numbers": totals["numbers"],
        "hits": by_status["hit"],
        "no_match": by_status["no_match"],
        "invalid_input": by_status["invalid_input"],
        "failures": by_status["failed"],
        "retries": totals["retries"],
        "http_429": totals["http_429"],
        "cache_hits": tally.cache_hits,
        "duplicate_rows": tally.duplicates,
        "credits": tally.credits,
        "credits_charged": totals["credits"],
        "unanswered_requests": totals["unanswered"],
        "unanswered_numbers": totals["unanswered_numbers"],
        "credits_possibly_charged": totals["unanswered_numbers"] * provider.max_credits_per_key(),
        "lookups": ledger.lookup_counts(run_id, provider.name),
        "rows": by_status,
        "stopped": stopped,
    }
