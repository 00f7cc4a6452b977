"""The SQLite store's schema: its migrations, applied in order, and how they are applied.

``PRAGMA user_version`` records how many have run. The SQL of a step never changes
once released: a ledger written by an older phone-enrich runs only its missing steps.
A step is SQL, or a function for one that must look at the file first.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from pipeline.store.base import UnusableStoreError
from pipeline.store.sqlite_file import immediate
from pipeline.store.sqlite_keys import LEVELS, OLD, level_table

Step = str | Callable[[sqlite3.Connection], None]


def _scoped_lookups(conn: sqlite3.Connection) -> None:
    """Step 4 (:data:`SCOPED_LOOKUPS`). Idempotent: lookups that already have the new
    layout (a file whose version was set back, or a step run twice) are left as they are,
    and the indexes are made only if missing."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(lookups)")}
    statements = SCOPED_LOOKUPS.split(";")
    if "scope" in columns:
        statements = [s for s in statements if "IF NOT EXISTS" in s]
    for statement in statements:
        if statement.strip():
            conn.execute(statement)


# Each (provider, params) once, in scopes: a lookup names it by a small integer instead
# of carrying the params text (endpoint and account, ~70 bytes) in its row and its key.
# The rows go in arrival order (a rowid table: a commit appends to a few pages) and a
# narrow unique index finds them by key. The old primary key held the whole row in key
# order, so once the table outgrew the cache a commit of a thousand random keys wrote a
# thousand 4 KB pages of ~8 rows each, splitting them as they filled. Store alone, one
# thread, 2M lookups: 7-8 s of CPU per 100,000 against ~4 s; a whole 3M-row TCPA run:
# 181 s of CPU against 143 s, a ledger of 813 MB against 940 MB. A random key still
# dirties an index page of its own once the index is much larger than a commit, so the
# cost of an answer still grows with the ledger (README, "A run as the ledger grows").
# The index on (run_id, scope) serves a run's counts (report, status) without reading
# the whole table. The copy keeps the old key order: the new index is built from
# sorted keys (2M lookups: 22 s).
SCOPED_LOOKUPS = """
    CREATE TABLE scopes (
        id INTEGER PRIMARY KEY,
        provider TEXT NOT NULL,
        params TEXT NOT NULL,
        UNIQUE (provider, params)
    );
    INSERT INTO scopes (provider, params)
        SELECT DISTINCT provider, params FROM lookups ORDER BY provider, params;
    CREATE TABLE lookups_by_scope (
        scope INTEGER NOT NULL,
        key TEXT NOT NULL,
        run_id TEXT NOT NULL,
        session INTEGER NOT NULL,
        status TEXT NOT NULL,
        answer TEXT,
        error TEXT,
        credits INTEGER NOT NULL,
        request_id TEXT,
        first_row INTEGER,
        fetched_at REAL NOT NULL
    );
    INSERT INTO lookups_by_scope (scope, key, run_id, session, status, answer, error,
                                  credits, request_id, first_row, fetched_at)
        SELECT s.id, l.key, l.run_id, l.session, l.status, l.answer, l.error, l.credits,
               l.request_id, l.first_row, l.fetched_at
        FROM lookups AS l JOIN scopes AS s ON s.provider = l.provider AND s.params = l.params
        ORDER BY s.id, l.key, l.run_id;
    DROP TABLE lookups;
    ALTER TABLE lookups_by_scope RENAME TO lookups;
    CREATE UNIQUE INDEX IF NOT EXISTS lookups_key ON lookups (scope, key, run_id);
    CREATE INDEX IF NOT EXISTS lookups_run ON lookups (run_id, scope);
    """


def _levelled_keys(conn: sqlite3.Connection) -> None:
    """Step 5: the key index of settled answers in levels (see
    :mod:`pipeline.store.sqlite_keys`), failed ones in a partial index of their own.
    Idempotent: what exists is kept; the keys are copied only while ``lookups_key``
    (dropped in the same transaction) is there."""
    for level in LEVELS:
        conn.execute(level_table(level))
    conn.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS lookups_failed ON lookups (scope, key, run_id)"
        " WHERE status = 'failed'"
    )
    indexes = {row[1] for row in conn.execute("PRAGMA index_list(lookups)")}
    if "lookups_key" in indexes:
        # Read in table order and sorted once (NOT INDEXED): through the key index each
        # row would be a random read. Sorted, the level is written page after page.
        conn.execute(
            f"INSERT OR REPLACE INTO {OLD} (scope, key, run_id, row)"
            " SELECT scope, key, run_id, rowid FROM lookups NOT INDEXED"
            " WHERE status != 'failed' ORDER BY scope, key, run_id"
        )
        conn.execute("DROP INDEX lookups_key")


MIGRATIONS: tuple[Step, ...] = (
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
    _scoped_lookups,
    _levelled_keys,
)


SECONDS_A_MILLION = {4: 11.0, 5: 2.5}
"""About how long a step (by the version it makes) takes a million lookups on a 2-core
machine (step 4 copied 2M in 22 s; step 5 sorted the keys of 3M into a level in
6.6 s); the others are quick. Said before a long upgrade, which prints nothing else."""


def migrate(conn: sqlite3.Connection, on_upgrade: Callable[[str], None] | None = None) -> None:
    """Bring the file to the newest schema; refuse one newer than this code knows.
    ``on_upgrade`` is told, before it starts, that a ledger with lookups in it is being
    upgraded (it may take a while; a brand-new file is not told)."""

    def version() -> int:
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if found > len(MIGRATIONS):
            raise UnusableStoreError(
                f"ledger schema version {found} is newer than this phone-enrich knows"
            )
        return found

    found = version()
    if found == len(MIGRATIONS):
        return
    if found > 0 and on_upgrade is not None:
        on_upgrade(_upgrade_notice(conn, found))
    # One write transaction for all pending steps, the version re-read inside it: a
    # crash leaves the file as it was, and a second process opening the same new file
    # waits for the first instead of creating the tables twice. (Not executescript: it
    # commits any open transaction before it runs.)
    with immediate(conn):
        for number in range(version(), len(MIGRATIONS)):
            step = MIGRATIONS[number]
            if callable(step):
                step(conn)
            else:
                for statement in step.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")


def _upgrade_notice(conn: sqlite3.Connection, found: int) -> str:
    lookups = int(conn.execute("SELECT count(*) FROM lookups").fetchone()[0])
    pending = range(found + 1, len(MIGRATIONS) + 1)
    seconds = lookups * sum(SECONDS_A_MILLION.get(step, 0.0) for step in pending) / 1e6
    took = f"about {seconds:.0f} s" if seconds >= 1 else "a moment"
    return (
        f"upgrading the ledger from schema version {found} to {len(MIGRATIONS)} "
        f"({lookups:,} lookups kept): once, {took}; nothing is lost if it is stopped"
    )
