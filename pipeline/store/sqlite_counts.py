"""What a run did, as the SQLite store counts it: its lookups by status, its failures,
its requests and credits (the report, ``status``, ``retry``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pipeline.store.records import FailureCount, RequestTotals
from pipeline.store.sqlite_file import guarded

# Unanswered: sent, and no HTTP answer came back, so the provider may have charged for
# it: a timeout, a connection dropped after sending, or one in flight when the process
# ended (sent, never recorded). A connection that could not be made sent nothing.
_TOTALS = (
    "SELECT count(*), coalesce(sum(attempt > 1), 0), coalesce(sum(http_status = 429), 0),"
    " coalesce(sum(CASE WHEN outcome = 'answered' THEN numbers ELSE 0 END), 0),"
    " coalesce(sum(credits), 0), coalesce(sum(unanswered), 0),"
    " coalesce(sum(CASE WHEN unanswered THEN numbers ELSE 0 END), 0)"
    " FROM (SELECT *, http_status IS NULL AND (outcome IS NULL OR (outcome = 'transient'"
    "  AND coalesce(error, '') NOT LIKE '%connection failed: Connect%')) AS unanswered"
    " FROM requests WHERE run_id = ? AND provider = ?)"
)


class RunCounts:
    """The store's per-run figures, on the store's connection (a run's lookups are found
    by the index on run_id, never by reading the whole table)."""

    path: Path

    @property
    def conn(self) -> sqlite3.Connection:
        raise NotImplementedError

    @guarded
    def lookup_counts(self, run_id: str, provider: str) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT status, count(*) FROM lookups WHERE run_id = ?"
            " AND scope IN (SELECT id FROM scopes WHERE provider = ?) GROUP BY status",
            (run_id, provider),
        ).fetchall()
        return {status: int(count) for status, count in rows}

    @guarded
    def failure_reasons(self, run_id: str) -> list[FailureCount]:
        rows = self.conn.execute(
            "SELECT s.provider, coalesce(l.error, ''), count(*) FROM lookups AS l"
            " JOIN scopes AS s ON s.id = l.scope WHERE l.run_id = ? AND l.status = 'failed'"
            " GROUP BY s.provider, l.error ORDER BY count(*) DESC",
            (run_id,),
        ).fetchall()
        return [FailureCount(str(p), str(e), int(n)) for p, e, n in rows]

    @guarded
    def request_totals(self, run_id: str, provider: str) -> RequestTotals:
        row = self.conn.execute(_TOTALS, (run_id, provider)).fetchone()
        return RequestTotals(*(int(value) for value in row))

    @guarded
    def providers_of_run(self, run_id: str) -> list[str]:
        rows = self.conn.execute(
            "SELECT DISTINCT provider FROM scopes AS s WHERE EXISTS (SELECT 1 FROM lookups"
            " WHERE run_id = ? AND scope = s.id) ORDER BY provider",
            (run_id,),
        ).fetchall()
        return [str(provider) for (provider,) in rows]

    @guarded
    def charged(self, run_id: str) -> int:
        row = self.conn.execute(
            "SELECT coalesce(sum(credits), 0) FROM requests WHERE run_id = ?", (run_id,)
        ).fetchone()
        return int(row[0])

    @guarded
    def credits_of_run(self, run_id: str) -> int:
        row = self.conn.execute(
            "SELECT coalesce(sum(credits), 0) FROM lookups WHERE run_id = ?", (run_id,)
        ).fetchone()
        return int(row[0])
