"""The answer store in one SQLite file (WAL) in the state folder: ``ledger.sqlite``.

Connections are per thread (sqlite3's rule); the engine writes on one thread while
the planner and the merger read on others, which WAL allows without blocking. A
commit is one transaction, so a crash at any line leaves whole responses only. The
schema and its migrations are in :mod:`~pipeline.store.sqlite_schema`; opening,
creating and refusing the file in :mod:`~pipeline.store.sqlite_file`; how an answer is
found by its key (levels merged as they fill) in :mod:`~pipeline.store.sqlite_keys`,
and just after it was filed in :mod:`~pipeline.store.sqlite_recent`."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipeline.store.base import AnswerStore, StoreWriteError, UnusableStoreError, pick_best
from pipeline.store.records import (
    BestAnswer,
    NewRun,
    Response,
    RunRecord,
    Scope,
    Session,
    SessionRecord,
)
from pipeline.store.sqlite_counts import RunCounts
from pipeline.store.sqlite_file import (
    LEDGER_FILE,
    check_file,
    connect,
    create,
    damage,
    guarded,
    immediate,
    unwritable,
)
from pipeline.store.sqlite_keys import CANDIDATES, MID_LIMIT, NEW_LIMIT, KeyLevels, file_keys
from pipeline.store.sqlite_recent import RECENT_LIMIT, RecentRows, remembered
from pipeline.store.sqlite_schema import migrate

__all__ = ["LEDGER_FILE", "SqliteStore"]
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
_RUN_COLUMNS = (
    "run_id, job, state, session, cache_cutoff, started_at, exit_code, stop_reason,"
    " config_path, input_path, output_path, max_credits, identity"
)


class SqliteStore(RunCounts, AnswerStore):
    """The store file of one state folder. ``clock`` stamps runs, requests and answers
    (tests move it; a run uses the wall clock)."""

    def __init__(
        self,
        state_dir: Path,
        *,
        clock: Callable[[], float] = time.time,
        on_upgrade: Callable[[str], None] | None = None,
        level_limits: tuple[int, int] = (NEW_LIMIT, MID_LIMIT),
        recent_limit: int = RECENT_LIMIT,
    ) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / LEDGER_FILE
        self.location = str(self.path)
        self._clock = clock
        self._local = threading.local()
        self._all: dict[threading.Thread, sqlite3.Connection] = {}
        self._lock = threading.Lock()
        self._scopes: dict[tuple[str, str], int] = {}
        """(provider, params) -> its id in scopes, once committed (ids never change)."""
        self._levels = KeyLevels(*level_limits)
        self._recent = RecentRows(recent_limit)
        try:
            # A damaged file is refused before SQLite touches it (or its -wal).
            if not check_file(self.path):
                create(self.path, migrate)
            # A ledger of an older phone-enrich: its new steps (``on_upgrade`` is told).
            migrate(self.conn, None if on_upgrade is None else self._naming(on_upgrade))
        except UnusableStoreError as exc:
            self.close()
            if str(exc).startswith(str(self.path)):
                raise
            raise UnusableStoreError(f"{self.path}: {exc}") from None
        except (sqlite3.DatabaseError, OSError) as exc:
            self.close()
            error = damage(self.path, exc) if isinstance(exc, sqlite3.DatabaseError) else None
            raise error or UnusableStoreError(
                f"{unwritable(self.path, exc)}: cannot use the ledger"
            ) from None

    def _naming(self, say: Callable[[str], None]) -> Callable[[str], None]:
        return lambda line: say(f"{self.path}: {line}")

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
            with self._lock:
                self._close_orphans()
                self._all[threading.current_thread()] = conn
        return conn

    def _close_orphans(self) -> None:
        """Close the connections of threads that have ended. The engine's writes run on
        a pool whose idle threads retire and are replaced: kept open, their connections
        (each with its own page cache) would pile up for as long as the run lasts."""
        for thread in [t for t in self._all if not t.is_alive()]:
            self._all.pop(thread).close()

    def close(self) -> None:
        with self._lock:
            for conn in self._all.values():
                conn.close()
            self._all.clear()
        self._local = threading.local()

    # -- runs --------------------------------------------------------------------------

    @guarded
    def _run_row(self, where: str, args: Sequence[Any]) -> RunRecord | None:
        row = self.conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE {where}", args).fetchone()
        return RunRecord(*row) if row else None

    def get_run(self, run_id: str) -> RunRecord | None:
        return self._run_row("run_id = ?", (run_id,))

    @guarded
    def runs(self, limit: int = 20) -> list[RunRecord]:
        rows = self.conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY started_at DESC LIMIT ?", (limit,)
        ).fetchall()
        return [RunRecord(*row) for row in rows]

    def latest_run(self, job: str) -> RunRecord | None:
        return self._run_row("job = ? ORDER BY started_at DESC LIMIT 1", (job,))

    def resumable_run(self, job: str) -> RunRecord | None:
        return self._run_row(
            "job = ? AND state != 'finished' ORDER BY started_at DESC LIMIT 1", (job,)
        )

    @guarded
    def newest_running(self) -> str | None:
        row = self.conn.execute(
            "SELECT run_id FROM runs WHERE state = 'running' ORDER BY updated_at DESC LIMIT 1"
        ).fetchone()
        return None if row is None else str(row[0])

    def latest_run_between(self, input_path: str, output_path: str) -> RunRecord | None:
        return self._run_row(
            "input_path = ? AND output_path = ? ORDER BY started_at DESC LIMIT 1",
            (input_path, output_path),
        )

    @guarded
    def start(self, run: NewRun) -> RunRecord:
        now = self._clock()
        self._together(
            ("INSERT INTO runs (run_id, job, config_path, input_path, output_path, state,"
             " session, cache_cutoff, started_at, updated_at, identity)"
             " VALUES (?,?,?,?,?,'running',1,?,?,?,?)",
             (run.run_id, run.job, run.config_path, run.input_path, run.output_path,
              run.cache_cutoff, now, now, run.identity)),
            ("INSERT INTO sessions (run_id, session, started_at) VALUES (?, 1, ?)",
             (run.run_id, now)),
        )  # fmt: skip
        record = self.get_run(run.run_id)
        assert record is not None
        return record

    @guarded
    def resume(self, run_id: str) -> RunRecord:
        now = self._clock()
        self._together(
            ("UPDATE runs SET state = 'running', session = session + 1, updated_at = ?,"
             " exit_code = NULL, stop_reason = NULL WHERE run_id = ?", (now, run_id)),
            ("INSERT OR REPLACE INTO sessions (run_id, session, started_at)"
             " SELECT run_id, session, ? FROM runs WHERE run_id = ?", (now, run_id)),
        )  # fmt: skip
        record = self.get_run(run_id)
        assert record is not None
        return record

    @guarded
    def _end(self, run_id: str, state: str, exit_code: int, reason: str | None) -> None:
        self._merge_due(force=True)  # the next session starts with an empty newest level
        self._recent.clear()
        now = self._clock()
        self._together(
            ("UPDATE runs SET state = ?, exit_code = ?, stop_reason = ?, updated_at = ?"
             " WHERE run_id = ?", (state, exit_code, reason, now, run_id)),
            ("UPDATE sessions SET ended_at = ?, exit_code = ? WHERE run_id = ?"
             " AND session = (SELECT session FROM runs WHERE run_id = ?)",
             (now, exit_code, run_id, run_id)),
        )  # fmt: skip

    def _together(self, *statements: tuple[str, Sequence[Any]]) -> None:
        """Statements in one transaction: the run and its session change together."""
        with immediate(self.conn) as conn:
            for sql, args in statements:
                conn.execute(sql, args)

    @guarded
    def sessions(self, run_id: str) -> list[SessionRecord]:
        record = self.get_run(run_id)
        if record is None:
            return []
        known = {
            int(number): (started, ended, code)
            for number, started, ended, code in self.conn.execute(
                "SELECT session, started_at, ended_at, exit_code FROM sessions WHERE run_id = ?",
                (run_id,),
            )
        }
        charged = dict(
            self.conn.execute(
                "SELECT session, coalesce(sum(credits), 0) FROM requests WHERE run_id = ?"
                " GROUP BY session",
                (run_id,),
            ).fetchall()
        )
        return [
            SessionRecord(
                run_id, number, *known.get(number, (None, None, None)), int(charged.get(number, 0))
            )
            for number in range(1, record.session + 1)
        ]

    def finish(self, run_id: str, exit_code: int) -> None:
        self._end(run_id, "finished", exit_code, None)

    def stop(self, run_id: str, exit_code: int, reason: str) -> None:
        self._end(run_id, "stopped", exit_code, reason)

    def fail(self, run_id: str, exit_code: int, reason: str) -> None:
        self._end(run_id, "failed", exit_code, reason)

    @guarded
    def budget(
        self, run_id: str, flag: int | None, configured: int | None
    ) -> tuple[int | None, str]:
        if flag is not None:
            self.conn.execute("UPDATE runs SET max_credits = ? WHERE run_id = ?", (flag, run_id))
            return flag, "--max-credits"
        record = self.get_run(run_id)
        if record is not None and record.max_credits is not None:
            return record.max_credits, "--max-credits of an earlier session"
        return configured, "run.max_credits" if configured is not None else "none"

    # -- writes ------------------------------------------------------------------------

    @guarded
    def log_sent(
        self, session: Session, request_id: str, provider: str, attempt: int, numbers: int
    ) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO requests (request_id, run_id, session, provider, attempt,"
            " numbers, sent_at) VALUES (?,?,?,?,?,?,?)",
            (request_id, session.run_id, session.number, provider, attempt, numbers,
             self._clock()),
        )  # fmt: skip

    @guarded
    def commit(self, session: Session, responses: Sequence[Response]) -> None:
        """One transaction for the group: the lanes hand over whatever arrived while the
        previous group was being written."""
        now = self._clock()
        conn = self.conn
        scopes = {
            name: self._filed_scope(conn, name, session.params[name])
            for name in {response.log.provider for response in responses if response.columns.keys}
        }
        with immediate(conn):  # it reads the last rowid before it writes
            after = int(conn.execute("SELECT coalesce(max(rowid), 0) FROM lookups").fetchone()[0])
            for response in responses:
                self._insert(conn, response, session, scopes, now)
            statuses = [s for response in responses for s in response.columns.statuses]
            failed = statuses.count("failed")
            file_keys(conn, after, len(statuses) - failed, failed)
            filed = conn.execute(
                "SELECT scope, rowid FROM lookups WHERE rowid > ? AND status != 'failed'", (after,)
            ).fetchall()  # in rowid order: the table's own
        self._recent.filed(session.run_id, filed)  # once the transaction is committed
        self._levels.added(len(statuses) - failed)
        self._merge_due()

    def _merge_due(self, *, force: bool = False) -> None:
        """Only an optimisation (every key is in some level): a merge that fails (a disk
        too full for its WAL) must not make a commit that is on disk look failed; it is
        tried again once another level's worth of keys has come."""
        try:
            self._guarded_merge(force)
        except StoreWriteError:
            self._levels.postpone()

    @guarded
    def _guarded_merge(self, force: bool) -> None:
        self._levels.merge_due(self.conn, force=force)

    def _known_scope(self, conn: sqlite3.Connection, provider: str, params: str) -> int | None:
        """The id of (provider, params) in scopes; None if no answer was ever filed under
        it. Asked outside a transaction, so an id kept here is committed."""
        found = self._scopes.get((provider, params))
        if found is None:
            row = conn.execute(
                "SELECT id FROM scopes WHERE provider = ? AND params = ?", (provider, params)
            ).fetchone()
            if row is None:
                return None
            found = self._scopes[(provider, params)] = int(row[0])
        return found

    def _filed_scope(self, conn: sqlite3.Connection, provider: str, params: str) -> int:
        """The id of (provider, params), made if missing in a transaction of its own,
        before the answers' (a scope with no answer is harmless)."""
        found = self._known_scope(conn, provider, params)
        if found is None:
            conn.execute(
                "INSERT OR IGNORE INTO scopes (provider, params) VALUES (?, ?)", (provider, params)
            )
            found = self._known_scope(conn, provider, params)
            assert found is not None
        return found

    @staticmethod
    def _insert(
        conn: sqlite3.Connection,
        response: Response,
        session: Session,
        scopes: dict[str, int],
        now: float,
    ) -> None:
        log, cols = response
        conn.execute(
            "INSERT OR REPLACE INTO requests (request_id, run_id, session, provider, attempt,"
            " numbers, sent_at, http_status, outcome, credits, latency_ms, error)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (log.request_id, session.run_id, session.number, log.provider, log.attempt,
             log.numbers, log.sent_at, log.http_status, log.outcome, log.credits,
             log.latency_ms, log.error),
        )  # fmt: skip
        if not cols.keys:
            return
        dumps = _ENCODE
        answers = [a if a is None or isinstance(a, str) else dumps(a) for a in cols.answers]
        # What every row shares is written into the statement once: binding it per
        # row costs more than the insert itself at 1,000 answers a response.
        conn.executemany(
            "INSERT OR REPLACE INTO lookups (scope, key, run_id, session,"
            " status, answer, error, credits, request_id, first_row, fetched_at)"
            f" VALUES ({int(scopes[log.provider])}, ?1,"
            f" '{_quote(session.run_id)}', {int(session.number)}, ?2, ?3, ?4, ?5,"
            f" CASE WHEN ?2 = 'failed' THEN NULL ELSE '{_quote(log.request_id)}' END,"
            f" ?6, {float(now)!r})",
            zip(
                cols.keys, cols.statuses, answers, cols.errors, cols.credits, cols.first_rows,
                strict=True,
            ),
        )  # fmt: skip

    # -- answers -----------------------------------------------------------------------

    def best(self, scope: Scope, keys: Sequence[str]) -> list[BestAnswer]:
        return self._best(scope, keys, recent=True)

    def candidates_known(self, scope: Scope, keys: Sequence[str]) -> list[BestAnswer]:
        return self._best(scope, keys, recent=False)  # mostly new keys: not in the window

    @guarded
    def _best(self, scope: Scope, keys: Sequence[str], *, recent: bool) -> list[BestAnswer]:
        if not keys:
            return []
        scope_id = self._known_scope(self.conn, scope.provider, scope.params)
        if scope_id is None:
            return []
        found = remembered(self.conn, self._recent, scope_id, scope.run_id, keys) if recent else []
        if found:
            got = {answer.key for answer in found}
            if not (keys := [key for key in keys if key not in got]):
                return found
        cache = scope.cache_from is not None
        rows = self.conn.execute(  # in key order: probes of a level walk its pages in order
            CANDIDATES,
            (json.dumps(sorted(keys)), scope_id, scope.run_id, cache, scope.cache_from or 0.0),
        )
        # BestAnswers made as rows are read (no list of plain rows first: half the GC work)
        return [*found, *pick_best(list(map(BestAnswer._make, rows)), scope.run_id)]


def _quote(text: str) -> str:
    return text.replace("'", "''")
