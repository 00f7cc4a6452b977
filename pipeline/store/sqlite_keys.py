"""The SQLite store's key index of settled answers, in levels (a small LSM tree).

A settled answer (hit, no_match, invalid_input) is found by (scope, key, run_id) in one
of three WITHOUT ROWID tables that hold the key and the rowid of its row in
``lookups``: a commit adds its answers' keys to the newest level, which stays small
enough to be cached; once a level is full its keys are merged into the next, in key
order, in one transaction. A random key in one large index dirties an index page of
its own once the index is much larger than a commit, so with one index an answer cost
more as the ledger grew; merged in key order, each page of a large level is written
once per merge, however many keys land in it. A failed lookup is not in the levels: it
is found by ``lookups_failed`` (a partial unique index of the few failed rows), and
deleted when its run answers the key again; a failure filed after the same run's
settled answer is dropped (the paid answer is kept). A run never buys again a key it
has settled (its own settled answer is always the best, see ``pick_best``), so the
store does not look in the large levels for one at every commit: a second settled
answer replaces the first at once if the first is in the newest level, else at the
merge that brings them together (the older row is deleted there). Until then both
are found and the newer is the best. Level entries hold ``lookups`` rowids: back the
ledger up by copying the file (or SQLite's backup API), not by a ``.dump``, which
renumbers the rows.
"""

from __future__ import annotations

import sqlite3

from pipeline.store.sqlite_file import immediate

NEW, MID, OLD = "lookup_keys_new", "lookup_keys_mid", "lookup_keys"
LEVELS = (NEW, MID, OLD)
"""Newest first; a key is in at most one of them."""

NEW_LIMIT = 100_000
"""Keys in the newest level before they are merged into the middle one."""
MID_LIMIT = 1_000_000
"""Keys in the middle level before they are merged into the oldest, unless the oldest
holds more than four times as many: a merge writes most pages of the level it goes
into, so into a large one it waits until it has many keys to bring."""


def level_table(name: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {name} (scope INTEGER NOT NULL, key TEXT NOT NULL,"
        " run_id TEXT NOT NULL, row INTEGER NOT NULL, PRIMARY KEY (scope, key, run_id))"
        " WITHOUT ROWID"
    )


# The candidates of the asked keys, in BestAnswer's field order: the settled ones from
# each level (found by key, then their row by rowid), the failed ones from
# lookups_failed. CROSS JOIN pins the loop order: one probe of each index per asked key
# (INDEXED BY: an error, never a silent scan, if the index could not serve).
_SETTLED = (
    "SELECT l.key, l.run_id, l.session, l.status, l.answer, l.error, l.credits,"
    " l.request_id, l.first_row, l.fetched_at FROM json_each(?1) AS k"
    " CROSS JOIN {level} AS x ON x.scope = ?2 AND x.key = k.value"
    " CROSS JOIN lookups AS l ON l.rowid = x.row"
    " WHERE x.run_id = ?3 OR (?4 AND l.fetched_at >= ?5)"
)
_FAILED = (
    "SELECT l.key, l.run_id, l.session, l.status, l.answer, l.error, l.credits,"
    " l.request_id, l.first_row, l.fetched_at FROM json_each(?1) AS k"
    " CROSS JOIN lookups AS l INDEXED BY lookups_failed"
    " ON l.scope = ?2 AND l.key = k.value AND l.status = 'failed' WHERE l.run_id = ?3"
)
# Oldest level first: pick_best keeps the last of equal candidates, so a key answered
# twice by one run (until the merge that deletes the older) gives the newer row.
CANDIDATES = " UNION ALL ".join(
    [*(_SETTLED.format(level=level) for level in reversed(LEVELS)), _FAILED]
)
"""Parameters: the keys as a JSON list, scope id, run id, whether earlier runs' answers
count, the oldest fetch time they may have."""


def file_keys(conn: sqlite3.Connection, after: int, settled: int, failed: int) -> None:
    """In the commit's transaction, once its rows (rowid > ``after``: ``settled`` settled
    and ``failed`` failed ones) are in ``lookups``: delete the failed rows their run has
    now settled and the new failures of keys their run has settled (the paid answer
    stays), then add the settled rows' keys to the newest level, where an answer the
    newest level held for the same key and run gives way (its row deleted). Each step
    runs only when the commit has rows it can concern: the common commit, all new keys,
    is one probe of the failures' index and one insert per key."""
    if settled:
        conn.execute(
            "DELETE FROM lookups WHERE rowid IN (SELECT f.rowid FROM lookups AS n"
            " CROSS JOIN lookups AS f INDEXED BY lookups_failed ON f.scope = n.scope"
            " AND f.key = n.key AND f.run_id = n.run_id AND f.status = 'failed'"
            " WHERE n.rowid > ? AND n.status != 'failed')",
            (after,),
        )
    if failed:  # failures are few: looking them up in every level costs little
        known = " OR ".join(
            f"EXISTS (SELECT 1 FROM {level} AS x WHERE x.scope = n.scope AND x.key = n.key"
            " AND x.run_id = n.run_id)"
            for level in LEVELS
        )
        conn.execute(
            "DELETE FROM lookups WHERE rowid IN (SELECT n.rowid FROM lookups AS n"
            f" WHERE n.rowid > ? AND n.status = 'failed' AND ({known}))",
            (after,),
        )
    if not settled:
        return
    filed = conn.execute(
        f"INSERT OR IGNORE INTO {NEW} (scope, key, run_id, row) SELECT scope, key, run_id,"
        " rowid FROM lookups WHERE rowid > ? AND status != 'failed'",
        (after,),
    ).rowcount
    if filed < settled:  # a key the newest level held, or one twice in this commit
        _replace_in_newest(conn, after)


def _replace_in_newest(conn: sqlite3.Connection, after: int) -> None:
    """The commit's settled rows replace what the newest level held for their keys (the
    rows it pointed at are deleted), the last of a key the commit has twice winning."""
    older = conn.execute(
        f"SELECT x.row FROM lookups AS n CROSS JOIN {NEW} AS x ON x.scope = n.scope"
        " AND x.key = n.key AND x.run_id = n.run_id"
        " WHERE n.rowid > ?1 AND n.status != 'failed' AND x.row <= ?1",
        (after,),
    ).fetchall()
    conn.execute(
        f"INSERT OR REPLACE INTO {NEW} (scope, key, run_id, row) SELECT scope, key, run_id,"
        " rowid FROM lookups WHERE rowid > ? AND status != 'failed' ORDER BY rowid",
        (after,),
    )
    conn.executemany("DELETE FROM lookups WHERE rowid = ?", older)
    conn.execute(
        "DELETE FROM lookups WHERE rowid > ?1 AND status != 'failed'"
        f" AND rowid NOT IN (SELECT row FROM {NEW} WHERE row > ?1)",
        (after,),
    )


class KeyLevels:
    """When the levels are merged: their limits, and about how many keys the two small
    ones hold (counted at the first commit, then kept up to date by the store)."""

    def __init__(self, new_limit: int = NEW_LIMIT, mid_limit: int = MID_LIMIT) -> None:
        self.limits = (new_limit, mid_limit)
        self.new: int | None = None
        self.mid = 0
        self._due_at = (new_limit, mid_limit)
        """The small levels' sizes at which they are merged (further after a failure)."""

    def added(self, keys: int) -> None:
        if self.new is not None:
            self.new += keys

    def postpone(self) -> None:
        """A merge failed: try again after another newest level's worth of keys."""
        new_limit, mid_limit = self.limits
        self._due_at = ((self.new or 0) + new_limit, self.mid + mid_limit)

    def merge_due(self, conn: sqlite3.Connection, *, force: bool = False) -> None:
        """Merge the newest level into the middle one when it is full (or ``force``),
        then the middle one into the oldest when that is due; each merge one
        transaction, after the answers' commit."""
        if self.new is None:
            self.new, self.mid = (_count(conn, level) for level in (NEW, MID))
        new_due, mid_due = self._due_at
        if self.new >= new_due or (force and self.new > 0):
            _merge(conn, NEW, MID)
            self.new, self.mid = 0, self.mid + self.new
            self._due_at = (self.limits[0], mid_due)
        if self.mid >= mid_due and self.mid * 4 >= _about_old(conn, self.new + self.mid):
            _merge(conn, MID, OLD)
            self.mid = 0
            self._due_at = self.limits


def _count(conn: sqlite3.Connection, level: str) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {level}").fetchone()[0])


def _about_old(conn: sqlite3.Connection, in_small_levels: int) -> int:
    """About how many keys the oldest level holds, without counting them (a count reads
    the whole level): every row of ``lookups`` not in the small levels, the highest
    rowid standing for the number of rows."""
    rows = int(conn.execute("SELECT coalesce(max(rowid), 0) FROM lookups").fetchone()[0])
    return max(0, rows - in_small_levels)


def _merge(conn: sqlite3.Connection, source: str, target: str) -> None:
    """``source``'s keys into ``target`` in key order (a WITHOUT ROWID table is read in
    key order), then ``source`` emptied. A key already in ``target`` (none, unless a run
    settled a key twice) takes the newer row, and the older row is deleted."""
    with immediate(conn):
        size = _count(conn, source)
        moved = conn.execute(f"INSERT OR IGNORE INTO {target} SELECT * FROM {source}").rowcount
        if moved < size:  # a key both levels hold (see the module's text): the newer wins
            conn.execute(
                f"DELETE FROM lookups WHERE rowid IN (SELECT t.row FROM {source} AS s"
                f" CROSS JOIN {target} AS t ON t.scope = s.scope AND t.key = s.key"
                " AND t.run_id = s.run_id AND t.row != s.row)"
            )
            conn.execute(f"INSERT OR REPLACE INTO {target} SELECT * FROM {source}")
        conn.execute(f"DELETE FROM {source}")
