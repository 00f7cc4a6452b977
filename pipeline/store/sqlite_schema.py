"""The SQLite store's schema: its migrations, applied in order, and how they are applied.

``PRAGMA user_version`` records how many have run. The SQL of a step never changes
once released: a ledger written by an older phone-enrich runs only its missing steps.
"""

from __future__ import annotations

import sqlite3

from pipeline.store.base import UnusableStoreError

MIGRATIONS: tuple[str, ...] = (
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
    # Each session of a run (its start, its end, its exit code), and what made the run's
    # job (JSON), so a new run can name what changed. Runs recorded before keep what is
    # known: session 1 started with the run; the last session's end and exit code are
    # the run's (its start too, while it is still running: a resume set updated_at).
    """
    CREATE TABLE sessions (
        run_id TEXT NOT NULL,
        session INTEGER NOT NULL,
        started_at REAL,
        ended_at REAL,
        exit_code INTEGER,
        PRIMARY KEY (run_id, session)
    );
    INSERT INTO sessions (run_id, session, started_at, ended_at, exit_code)
        SELECT run_id, 1, started_at,
            CASE WHEN session = 1 AND state != 'running' THEN updated_at END,
            CASE WHEN session = 1 THEN exit_code END
        FROM runs;
    INSERT INTO sessions (run_id, session, started_at, ended_at, exit_code)
        SELECT run_id, session, CASE WHEN state = 'running' THEN updated_at END,
            CASE WHEN state != 'running' THEN updated_at END, exit_code
        FROM runs WHERE session > 1;
    ALTER TABLE runs ADD COLUMN identity TEXT;
    """,
)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the file to the newest schema; refuse one newer than this code knows."""

    def version() -> int:
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if found > len(MIGRATIONS):
            raise UnusableStoreError(
                f"ledger schema version {found} is newer than this phone-enrich knows"
            )
        return found

    if version() == len(MIGRATIONS):
        return
    # One write transaction for all pending steps, the version re-read inside it: a
    # crash leaves the file as it was, and a second process opening the same new file
    # waits for the first instead of creating the tables twice. (Not executescript: it
    # commits any open transaction before it runs.)
    conn.execute("BEGIN IMMEDIATE")
    try:
        for number in range(version(), len(MIGRATIONS)):
            for statement in MIGRATIONS[number].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back itself (e.g. damage)
            conn.execute("ROLLBACK")
        raise
