"""Where the answers this process has just filed are: the window of ``lookups`` rowids
its recent commits wrote, per (scope, run).

A run's output asks the store for the best answer of each key shortly after the key
was bought and committed. That answer is the run's own settled row (a run's settled
answer beats every other candidate, see ``pick_best``; of two of the run's own, the
later). Found by its key, it is a probe of every key level, each a random page of a
B-tree that outgrows SQLite's page cache as the ledger grows (a reader's cache is also
emptied whenever another connection has committed, which the writer does many times a
second). Found in the window, it is one pass over the pages just written, in rowid
order, asking each row whether its key is among those wanted.

So the store remembers, per (scope, run), the rowid ranges of the settled answers it
committed, each with how many of them nobody has read yet, and nothing per key (a
dict or frame of keys measured 20-40 MB more peak memory). The window runs from the
oldest range still unread to the newest, so every answer the run filed after the
oldest one in the window is in it, and the last in rowid order is the newest: a
key found there has its best answer. Ranges are forgotten from the oldest end, once
read (the output asks for the oldest first) or when the window would hold more than
``limit`` answers; a key not found in the window goes the long way. Each row is read
back with its scope, run and status.
"""

from __future__ import annotations

import bisect
import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline.store.records import BestAnswer

RECENT_LIMIT = 150_000
"""Settled answers a window holds at most: more than the ~125,000 keys the output
trails the purchases by at full speed (a 3M-row TCPA run at zero latency). A window is
read whole at each ``best``, so a larger one costs reading time, not memory."""

_IN_WINDOW = (
    "SELECT l.rowid, l.key, l.run_id, l.session, l.status, l.answer, l.error, l.credits,"
    " l.request_id, l.first_row, l.fetched_at FROM lookups AS l"
    " WHERE l.rowid BETWEEN ?1 AND ?2 AND l.scope = ?3 AND l.run_id = ?4"
    " AND l.status != 'failed' AND l.key IN (SELECT value FROM json_each(?5))"
    " ORDER BY l.rowid"
)


@dataclass
class _Window:
    starts: list[int] = field(default_factory=list)
    """Each range's first rowid, oldest first."""
    ends: list[int] = field(default_factory=list)
    unread: list[int] = field(default_factory=list)
    """Of each range's settled answers, how many no ``best`` has found yet."""
    size: int = 0
    """Settled answers in the window."""


class RecentRows:
    """Rowid windows of the settled answers this process committed, by (scope, run)."""

    def __init__(self, limit: int = RECENT_LIMIT) -> None:
        self.limit = limit
        self._windows: dict[tuple[int, str], _Window] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Settled answers in the windows."""
        return sum(window.size for window in self._windows.values())

    def filed(self, run_id: str, rows: Sequence[tuple[int, int]]) -> None:
        """(scope id, rowid) of the settled answers one commit of run ``run_id`` wrote,
        in rowid order."""
        if self.limit <= 0 or not rows:
            return
        ranges: dict[int, list[int]] = {}
        for scope, rowid in rows:
            seen = ranges.get(scope)
            if seen is None:
                ranges[scope] = [rowid, rowid, 1]
            else:
                seen[1] = rowid
                seen[2] += 1
        with self._lock:
            for scope, (start, end, count) in ranges.items():
                window = self._windows.setdefault((scope, run_id), _Window())
                window.starts.append(start)
                window.ends.append(end)
                window.unread.append(count)
                window.size += count
                while window.size > self.limit:
                    self._forget_oldest(window)

    @staticmethod
    def _forget_oldest(window: _Window) -> None:
        window.size -= window.unread.pop(0)
        del window.starts[0], window.ends[0]

    def span(self, scope: int, run_id: str) -> tuple[int, int] | None:
        """The rowids (first, last) of the window of (``scope``, ``run_id``), if any."""
        with self._lock:
            window = self._windows.get((scope, run_id))
            if window is None or not window.starts:
                return None
            return window.starts[0], window.ends[-1]

    def read(self, scope: int, run_id: str, rowids: Sequence[int]) -> None:
        """``rowids`` were found in the window: fewer unread, and the oldest ranges
        with none left forgotten."""
        with self._lock:
            window = self._windows.get((scope, run_id))
            if window is None:
                return
            for rowid in rowids:
                at = bisect.bisect_right(window.starts, rowid) - 1
                if at >= 0 and rowid <= window.ends[at] and window.unread[at] > 0:
                    window.unread[at] -= 1
                    window.size -= 1
            while window.starts and window.unread[0] == 0:
                self._forget_oldest(window)

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()


def remembered(
    conn: sqlite3.Connection, recent: RecentRows, scope: int, run_id: str, keys: Sequence[str]
) -> list[BestAnswer]:
    """The best answers of those of ``keys`` this run filed in the window of (``scope``,
    ``run_id``): its own settled answers, the last of a key in rowid order."""
    span = recent.span(scope, run_id)
    if span is None:
        return []
    rows = conn.execute(_IN_WINDOW, (*span, scope, run_id, json.dumps(list(keys))))
    found: dict[str, BestAnswer] = {}
    rowids: list[int] = []
    for row in rows:
        rowids.append(row[0])
        found[row[1]] = BestAnswer._make(row[1:])
    recent.read(scope, run_id, rowids)
    return list(found.values())
