"""Where the answers this process has just filed are: their ``lookups`` rowids, by key.

A run's output asks the store for the best answer of each key shortly after the key
was bought and committed. That answer is the run's own settled row (a run's settled
answer beats every other candidate, see ``pick_best``, and a later settled answer of
the same key replaces it, here as in the levels). Found by its rowid, it is one read of
the ``lookups`` pages just written, in rowid order; found by its key, it is a probe of
every key level, each a random page of a B-tree that outgrows SQLite's page cache as
the ledger grows (a reader's cache is also dropped whenever another connection has
committed, which the writer does many times a second).

So the store remembers, per (scope, run), the rowid of each settled answer it
committed, until ``best`` has read it (once: a key asked again goes the long way), and
at most ``limit`` of them: when full, it stops remembering until some are taken (the
output asks for the oldest first). A remembered row is only an address: ``best`` reads
it back with its scope, key, run and status and takes the long way for any that no
longer match (a row deleted or replaced by another process).

They are kept as polars frames (key, rowid), not a dict: about 40 bytes an entry
against ~150 in Python objects.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence

import polars as pl

from pipeline.store.records import BestAnswer

RECENT_LIMIT = 100_000
"""Rowids remembered at most. The output trails the purchases by up to ~125,000 keys at
full speed (a 3M-row TCPA run at zero latency), but it asks for the oldest first and
this stops remembering when full, so 100,000 still served 99% of that run's answers
(250,000: all of them, for 20-40 MB more peak memory, measured, against ~10 MB of
frames: what polars allocates and frees around them stays resident a while)."""

_KEY, _ROW = "key", "row"
# Remembered rows, read back with what must still match.
_BY_ROWID = (
    "SELECT l.rowid, l.key, l.run_id, l.session, l.status, l.answer, l.error, l.credits,"
    " l.request_id, l.first_row, l.fetched_at FROM json_each(?1) AS r"
    " CROSS JOIN lookups AS l ON l.rowid = r.value"
    " WHERE l.scope = ?2 AND l.run_id = ?3 AND l.status != 'failed'"
)


class RecentRows:
    """Rowids of settled answers this process committed, by (scope id, run id) and key."""

    def __init__(self, limit: int = RECENT_LIMIT) -> None:
        self.limit = limit
        self._frames: dict[tuple[int, str], list[pl.DataFrame]] = {}
        self._size = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._size

    def filed(self, run_id: str, rows: Sequence[tuple[int, str, int]]) -> None:
        """(scope id, key, rowid) of settled answers just committed by run ``run_id``, in
        rowid order (a key's later row is the one its answer is now)."""
        if not rows:
            return
        scopes, keys, rowids = zip(*rows, strict=True)
        frame = pl.DataFrame(
            {"scope": scopes, _KEY: keys, _ROW: rowids},
            schema={"scope": pl.Int64, _KEY: pl.String, _ROW: pl.Int64},
        )
        with self._lock:
            if self._size + frame.height > self.limit:
                return
            for (scope,), part in frame.partition_by("scope", as_dict=True).items():
                self._frames.setdefault((int(scope), run_id), []).append(part.drop("scope"))
            self._size += frame.height

    def take(self, scope: int, run_id: str, keys: Sequence[str]) -> dict[int, str]:
        """The remembered rows of ``keys`` (rowid -> key), forgotten as they are taken."""
        with self._lock:
            frames = self._frames.pop((scope, run_id), None)
            if not frames:
                return {}
            known = pl.concat(frames) if len(frames) > 1 else frames[0]
            asked = pl.DataFrame({_KEY: keys}, schema={_KEY: pl.String})
            # The newest row of a key filed twice; the rest of the frame is kept.
            taken = known.join(asked.unique(), on=_KEY, how="semi").unique(
                _KEY, keep="last", maintain_order=True
            )
            kept = known.join(asked, on=_KEY, how="anti")
            if kept.height:
                self._frames[(scope, run_id)] = [kept]
            self._size -= known.height - kept.height
            return dict(
                zip(taken.get_column(_ROW).to_list(), taken.get_column(_KEY).to_list(), strict=True)
            )

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
            self._size = 0


def remembered(
    conn: sqlite3.Connection, recent: RecentRows, scope: int, run_id: str, keys: Sequence[str]
) -> list[BestAnswer]:
    """The best answers of those of ``keys`` that ``recent`` remembers for (``scope``,
    ``run_id``): the run's own settled answers, the best there are, read by rowid in
    order. A row that no longer matches is left out (its key goes the long way)."""
    taken = recent.take(scope, run_id, keys)
    if not taken:
        return []
    rows = conn.execute(_BY_ROWID, (json.dumps(sorted(taken)), scope, run_id))
    return [BestAnswer._make(row[1:]) for row in rows if taken[row[0]] == row[1]]
