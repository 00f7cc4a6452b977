"""The ledger: one SQLite file (WAL) that is the source of truth for every provider answer.

Each answer is committed the moment its response arrives, keyed by (provider,
parameters, lookup key, run). The output is a pure function of the input file and
this file: resume, dedupe, the cross-run cache and retries all read it. Runs move
between states by named transitions (start, resume, finish, stop, fail), persisted,
so a crash at any line leaves a run that the next ``run`` picks up again.

Connections are per thread (sqlite3's rule); the engine writes on one thread while
the planner and the merger read on others, which WAL allows without blocking.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from pipeline.ledger_file import (
    LEDGER_FILE,
    LedgerError,
    check_file,
    connect,
    create,
    damage,
    guarded,
    unwritable,
)

__all__ = ["LEDGER_FILE", "Ledger", "LedgerError", "RunRecord"]
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode

# Our own schema's migrations, applied in order; PRAGMA user_version records how far.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        job TEXT NOT NULL,
        config_path TEXT,
        input_path TEXT NOT NULL,
        output_path TEXT NOT NULL,
        state TEXT NOT NULL,
        session INTEGER NOT NULL,
        cache_cutoff REAL,
        started_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        exit_code INTEGER,
        stop_reason TEXT
    );
    CREATE INDEX runs_job ON runs (job, started_at);
    CREATE TABLE lookups (
        provider TEXT NOT NULL,
        params TEXT NOT NULL,
        key TEXT NOT NULL,
        run_id TEXT NOT NULL,
        session INTEGER NOT NULL,
        status TEXT NOT NULL,
        answer TEXT,
        error TEXT,
        credits INTEGER NOT NULL,
        request_id TEXT,
        first_row INTEGER,
        fetched_at REAL NOT NULL,
        PRIMARY KEY (provider, params, key, run_id)
    ) WITHOUT ROWID;
    CREATE TABLE requests (
        request_id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        session INTEGER NOT NULL,
        provider TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        numbers INTEGER NOT NULL,
        sent_at REAL NOT NULL,
        http_status INTEGER,
        outcome TEXT,
        credits INTEGER NOT NULL DEFAULT 0,
        latency_ms REAL,
        error TEXT
    );
    CREATE INDEX requests_run ON requests (run_id, provider);
    """,
    # The last --max-credits given to a session of the run (NULL: never one): it holds
    # for the run's later sessions until another replaces it.
    """
    ALTER TABLE runs ADD COLUMN max_credits INTEGER;
    """,
)

SETTLED = ("hit", "no_match", "invalid_input")
"""Lookup statuses that are answers (reusable); ``failed`` is kept for the report only."""


@dataclass(frozen=True)
class RunRecord:
    """One row of the runs table."""

    run_id: str
    job: str
    state: str
    session: int
    cache_cutoff: float | None
    started_at: float
    exit_code: int | None
    stop_reason: str | None
    config_path: str | None
    input_path: str
    output_path: str
    max_credits: int | None = None
    """The last ``--max-credits`` a session of the run was given (None: never one)."""


_RUN_COLUMNS = (
    "run_id, job, state, session, cache_cutoff, started_at, exit_code, stop_reason,"
    " config_path, input_path, output_path, max_credits"
)


class Answer(NamedTuple):
    """A settled (or failed) lookup, ready to be committed (a tuple: thousands per response)."""

    key: str
    status: str
    answer: dict[str, Any] | str | None
    """The answer as a dict, or already encoded as JSON text."""
    error: str | None
    credits: int
    first_row: int


@dataclass(frozen=True)
class Columns:
    """Answers by column (a response carries up to a thousand; no object per answer)."""

    keys: list[str]
    statuses: list[str]
    answers: list[dict[str, Any] | str | None]
    errors: list[str | None]
    credits: list[int]
    first_rows: list[int]

    @classmethod
    def of(cls, answers: list[Answer]) -> Columns:
        if not answers:
            return cls([], [], [], [], [], [])
        keys, statuses, values, errors, credits, rows = map(list, zip(*answers, strict=True))
        return cls(keys, statuses, values, errors, credits, rows)

    @classmethod
    def failed(
        cls, keys: list[str], first_rows: list[int], reason: str, credits: int = 0
    ) -> Columns:
        """Every key failed; ``credits`` (charged for answers we could not use) go on the
        first."""
        count = len(keys)
        charged = [credits] + [0] * (count - 1) if count else []
        return cls(keys, ["failed"] * count, [None] * count, [reason] * count, charged,
                   first_rows)  # fmt: skip


@dataclass(frozen=True)
class RequestLog:
    """What one HTTP request did, for the requests table."""

    request_id: str
    provider: str
    attempt: int
    numbers: int
    sent_at: float
    http_status: int | None
    outcome: str
    credits: int
    latency_ms: float | None
    error: str | None
    unanswered: bool = False
    """Sent, and no HTTP answer came back: the provider may have charged for it."""


class Response(NamedTuple):
    """One response to record: its request line and its answers."""

    log: RequestLog
    columns: Columns


class Ledger:
    """The ledger file of one state folder."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / LEDGER_FILE
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._params: dict[str, str] = {}
        try:
            # A damaged file is refused before SQLite touches it (or its -wal).
            if not check_file(self.path):
                create(self.path, self._migrate)
            self._migrate(self.conn)  # a ledger of an older phone-enrich: its new steps
        except LedgerError as exc:
            self.close()
            if str(exc).startswith(str(self.path)):
                raise
            raise LedgerError(f"{self.path}: {exc}") from None
        except (sqlite3.DatabaseError, OSError) as exc:
            self.close()
            error = damage(self.path, exc) if isinstance(exc, sqlite3.DatabaseError) else None
            raise error or LedgerError(
                f"{unwritable(self.path, exc)}: cannot use the ledger"
            ) from None

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        def version() -> int:
            found = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if found > len(_MIGRATIONS):
                raise LedgerError(
                    f"ledger schema version {found} is newer than this phone-enrich knows"
                )
            return found

        if version() == len(_MIGRATIONS):
            return
        # One write transaction for all pending steps, the version re-read inside it:
        # a crash leaves the file as it was, and a second process opening the same new
        # file waits for the first instead of creating the tables twice. (Not
        # executescript: it commits any open transaction before it runs.)
        conn.execute("BEGIN IMMEDIATE")
        try:
            for number in range(version(), len(_MIGRATIONS)):
                for statement in _MIGRATIONS[number].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back itself (e.g. damage)
                conn.execute("ROLLBACK")
            raise

    # -- runs: named transitions -------------------------------------------------

    @guarded
    def _run_row(self, where: str, args: Sequence[Any]) -> RunRecord | None:
        row = self.conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE {where}", args).fetchone()
        return RunRecord(*row) if row else None

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run with this id, if any."""
        return self._run_row("run_id = ?", (run_id,))

    @guarded
    def runs(self, limit: int = 20) -> list[RunRecord]:
        """The newest runs in this state folder, newest first."""
        rows = self.conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY started_at DESC LIMIT ?", (limit,)
        ).fetchall()
        return [RunRecord(*row) for row in rows]

    @guarded
    def failure_reasons(self, run_id: str) -> list[tuple[str, str, int]]:
        """(provider, error, lookups) of this run's failed lookups, most frequent first."""
        rows = self.conn.execute(
            "SELECT provider, coalesce(error, ''), count(*) FROM lookups"
            " WHERE run_id = ? AND status = 'failed' GROUP BY provider, error"
            " ORDER BY count(*) DESC",
            (run_id,),
        ).fetchall()
        return [(str(p), str(e), int(n)) for p, e, n in rows]

    def latest_run(self, job: str) -> RunRecord | None:
        """The newest run of this job, whatever its state."""
        return self._run_row("job = ? ORDER BY started_at DESC LIMIT 1", (job,))

    def resumable_run(self, job: str) -> RunRecord | None:
        """The newest run of this job that did not finish (crashed, stopped or failed)."""
        return self._run_row(
            "job = ? AND state != 'finished' ORDER BY started_at DESC LIMIT 1", (job,)
        )

    @guarded
    def start(
        self,
        run_id: str,
        job: str,
        *,
        config_path: str | None,
        input_path: str,
        output_path: str,
        cache_cutoff: float | None,
    ) -> RunRecord:
        """A new run, in state ``running``, session 1."""
        now = time.time()
        self.conn.execute(
            "INSERT INTO runs (run_id, job, config_path, input_path, output_path, state,"
            " session, cache_cutoff, started_at, updated_at) VALUES (?,?,?,?,?,'running',1,?,?,?)",
            (run_id, job, config_path, input_path, output_path, cache_cutoff, now, now),
        )
        record = self.get_run(run_id)
        assert record is not None
        return record

    @guarded
    def resume(self, run_id: str) -> RunRecord:
        """Pick an unfinished run up again: state ``running``, next session."""
        self.conn.execute(
            "UPDATE runs SET state = 'running', session = session + 1, updated_at = ?,"
            " exit_code = NULL, stop_reason = NULL WHERE run_id = ?",
            (time.time(), run_id),
        )
        record = self.get_run(run_id)
        assert record is not None
        return record

    @guarded
    def _end(self, run_id: str, state: str, exit_code: int, reason: str | None) -> None:
        self.conn.execute(
            "UPDATE runs SET state = ?, exit_code = ?, stop_reason = ?, updated_at = ?"
            " WHERE run_id = ?",
            (state, exit_code, reason, time.time(), run_id),
        )

    def finish(self, run_id: str, exit_code: int) -> None:
        """Every row written (exit 0, or 1 when some lookups failed)."""
        self._end(run_id, "finished", exit_code, None)

    def stop(self, run_id: str, exit_code: int, reason: str) -> None:
        """Stopped early on purpose (budget, refused key, signal): resumable."""
        self._end(run_id, "stopped", exit_code, reason)

    def fail(self, run_id: str, exit_code: int, reason: str) -> None:
        """Ended by an error; the next run of the same job resumes it."""
        self._end(run_id, "failed", exit_code, reason)

    # -- lookups -------------------------------------------------------------------

    def commit(self, log: RequestLog, answers: Iterable[Answer], run_id: str, session: int) -> None:
        """Record one response: its request line and every answer it carried, atomically."""
        self.commit_many([Response(log, Columns.of(list(answers)))], run_id, session)

    @guarded
    def commit_many(self, responses: Sequence[Response], run_id: str, session: int) -> None:
        """Record several responses in one transaction (each with all its answers).

        One transaction per group rather than per response: the lanes hand over
        whatever arrived while the previous group was being written.
        """
        now = time.time()
        conn = self.conn
        conn.execute("BEGIN")
        try:
            for response in responses:
                self._insert(conn, response, run_id, session, now)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back itself (disk full)
                conn.execute("ROLLBACK")
            raise

    def _insert(
        self, conn: sqlite3.Connection, response: Response, run_id: str, session: int, now: float
    ) -> None:
        log, cols = response
        conn.execute(
            "INSERT OR REPLACE INTO requests (request_id, run_id, session, provider, attempt,"
            " numbers, sent_at, http_status, outcome, credits, latency_ms, error)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                log.request_id,
                run_id,
                session,
                log.provider,
                log.attempt,
                log.numbers,
                log.sent_at,
                log.http_status,
                log.outcome,
                log.credits,
                log.latency_ms,
                log.error,
            ),
        )
        if not cols.keys:
            return
        dumps = _ENCODE
        answers = [a if a is None or isinstance(a, str) else dumps(a) for a in cols.answers]
        # What every row shares is written into the statement once: binding it per
        # row costs more than the insert itself at 1,000 answers a response.
        params = self._params[log.provider]
        conn.executemany(
            "INSERT OR REPLACE INTO lookups (provider, params, key, run_id, session,"
            " status, answer, error, credits, request_id, first_row, fetched_at)"
            f" VALUES ('{_quote(log.provider)}', '{_quote(params)}', ?1,"
            f" '{_quote(run_id)}', {int(session)}, ?2, ?3, ?4, ?5,"
            f" CASE WHEN ?2 = 'failed' THEN NULL ELSE '{_quote(log.request_id)}' END,"
            f" ?6, {float(now)!r})",
            zip(
                cols.keys, cols.statuses, answers, cols.errors, cols.credits, cols.first_rows,
                strict=True,
            ),
        )  # fmt: skip

    def set_params(self, provider: str, params: str) -> None:
        """The parameter signature answers of ``provider`` are filed under in this run."""
        self._params[provider] = params

    @guarded
    def log_sent(
        self, request_id: str, provider: str, run_id: str, session: int, attempt: int, numbers: int
    ) -> None:
        """A request about to go out (so a crash leaves a trace of what was in flight)."""
        self.conn.execute(
            "INSERT OR IGNORE INTO requests (request_id, run_id, session, provider, attempt,"
            " numbers, sent_at) VALUES (?,?,?,?,?,?,?)",
            (request_id, run_id, session, provider, attempt, numbers, time.time()),
        )

    @guarded
    def find(
        self,
        provider: str,
        params: str,
        keys: Sequence[str],
        run_id: str,
        cache_cutoff: float | None,
    ) -> list[tuple[str, str, int, str, str | None, str | None, int, str | None, int | None]]:
        """Every ledger row that may answer ``keys`` in this run.

        Rows: (key, run_id, session, status, answer, error, credits, request_id,
        first_row). This run's own rows come back whatever their status; earlier
        runs' only when settled and fetched at or after ``cache_cutoff`` (None: no
        cache). The caller prefers this run's row.
        """
        cache = cache_cutoff is not None
        # CROSS JOIN pins the loop order: one primary-key probe per asked key. With a
        # plain JOIN SQLite scans every row of (provider, params) and, for each, the
        # whole key list: rows x keys.
        return self.conn.execute(
            "SELECT l.key, l.run_id, l.session, l.status, l.answer, l.error, l.credits,"
            " l.request_id, l.first_row FROM json_each(?) AS k"
            " CROSS JOIN lookups AS l ON l.provider = ? AND l.params = ? AND l.key = k.value"
            " WHERE l.run_id = ? OR (? AND l.status != 'failed' AND l.fetched_at >= ?)",
            (json.dumps(list(keys)), provider, params, run_id, cache, cache_cutoff or 0.0),
        ).fetchall()

    @guarded
    def best_answers(
        self,
        provider: str,
        params: str,
        keys: Sequence[str],
        run_id: str,
        cache_cutoff: float | None,
    ) -> list[tuple[str, str, str, str | None, str | None, int, str | None, int | None]]:
        """One row per key that has any: the answer a row with that key is given.

        Rows: (key, run_id, status, answer, error, credits, request_id, first_row).
        Preference: this run's settled answer, then the newest cached one, then this
        run's failure.
        """
        cache = cache_cutoff is not None
        return self.conn.execute(
            "SELECT key, run_id, status, answer, error, credits, request_id, first_row FROM ("
            " SELECT l.*, row_number() OVER (PARTITION BY l.key ORDER BY"
            "  l.status = 'failed', l.run_id != ?, l.fetched_at DESC) AS pick"
            " FROM json_each(?) AS k"
            " CROSS JOIN lookups AS l ON l.provider = ? AND l.params = ? AND l.key = k.value"
            " WHERE l.run_id = ? OR (? AND l.status != 'failed' AND l.fetched_at >= ?)"
            ") WHERE pick = 1",
            (run_id, json.dumps(list(keys)), provider, params, run_id, cache, cache_cutoff or 0.0),
        ).fetchall()

    # -- report --------------------------------------------------------------------

    @guarded
    def lookup_counts(self, run_id: str, provider: str) -> dict[str, int]:
        """This run's own lookups of ``provider`` by status."""
        rows = self.conn.execute(
            "SELECT status, count(*) FROM lookups WHERE run_id = ? AND provider = ?"
            " GROUP BY status",
            (run_id, provider),
        ).fetchall()
        return {status: int(count) for status, count in rows}

    @guarded
    def request_totals(self, run_id: str, provider: str) -> dict[str, int]:
        """This run's requests of ``provider``: how many, retries, 429s, numbers, credits,
        and the unanswered ones with the numbers they carried.

        Unanswered: sent, and no HTTP answer came back, so the provider may have charged
        for it (it may have answered after we stopped waiting): a timeout, a connection
        dropped after sending, or one in flight when the process ended (sent, never
        recorded). A connection that could not be made sent nothing and is not one.
        """
        row = self.conn.execute(
            "SELECT count(*), coalesce(sum(attempt > 1), 0), coalesce(sum(http_status = 429), 0),"
            " coalesce(sum(CASE WHEN outcome = 'answered' THEN numbers ELSE 0 END), 0),"
            " coalesce(sum(credits), 0), coalesce(sum(unanswered), 0),"
            " coalesce(sum(CASE WHEN unanswered THEN numbers ELSE 0 END), 0)"
            " FROM (SELECT *, http_status IS NULL AND (outcome IS NULL OR (outcome = 'transient'"
            "  AND coalesce(error, '') NOT LIKE '%connection failed: Connect%')) AS unanswered"
            " FROM requests WHERE run_id = ? AND provider = ?)",
            (run_id, provider),
        ).fetchone()
        keys = ("requests", "retries", "http_429", "numbers", "credits", "unanswered",
                "unanswered_numbers")  # fmt: skip
        return {k: int(v) for k, v in zip(keys, row, strict=True)}

    @guarded
    def newest_running(self) -> str | None:
        """The run in state ``running`` that was started or resumed last, if any."""
        row = self.conn.execute(
            "SELECT run_id FROM runs WHERE state = 'running' ORDER BY updated_at DESC LIMIT 1"
        ).fetchone()
        return None if row is None else str(row[0])

    @guarded
    def providers_of_run(self, run_id: str) -> list[str]:
        """The providers this run has lookups of, by name."""
        rows = self.conn.execute(
            "SELECT DISTINCT provider FROM lookups WHERE run_id = ? ORDER BY provider", (run_id,)
        ).fetchall()
        return [str(provider) for (provider,) in rows]

    # -- budget ----------------------------------------------------------------------

    @guarded
    def budget(
        self, run_id: str, flag: int | None, configured: int | None
    ) -> tuple[int | None, str]:
        """The run's credit cap for this session, and where it comes from.

        A ``--max-credits`` (``flag``) is stored with the run and holds for its later
        sessions, whichever command starts them, until another replaces it (raising it
        is how a run stopped by its budget goes on). A run never given one has the
        config's ``run.max_credits`` as the config reads now (None: no cap).
        """
        if flag is not None:
            self.conn.execute("UPDATE runs SET max_credits = ? WHERE run_id = ?", (flag, run_id))
            return flag, "--max-credits"
        record = self.get_run(run_id)
        if record is not None and record.max_credits is not None:
            return record.max_credits, "--max-credits of an earlier session"
        return configured, "run.max_credits" if configured is not None else "none"

    @guarded
    def charged(self, run_id: str) -> int:
        """Credits this run's answered requests were charged, every session and provider."""
        row = self.conn.execute(
            "SELECT coalesce(sum(credits), 0) FROM requests WHERE run_id = ?", (run_id,)
        ).fetchone()
        return int(row[0])

    @guarded
    def credits_of_run(self, run_id: str) -> int:
        """Credits this run's own lookups cost, all providers."""
        row = self.conn.execute(
            "SELECT coalesce(sum(credits), 0) FROM lookups WHERE run_id = ?", (run_id,)
        ).fetchone()
        return int(row[0])


def _quote(text: str) -> str:
    return text.replace("'", "''")
