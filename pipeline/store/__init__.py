"""The answer store (:class:`AnswerStore`) and its backends; :func:`open_store` picks one.

Only this package knows how answers are kept (SQL, files, connections): the rest of
the pipeline asks an :class:`AnswerStore` and gets typed records back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipeline.store.base import AnswerStore, StoreWriteError, UnusableStoreError
from pipeline.store.sqlite import LEDGER_FILE, SqliteStore

__all__ = ["AnswerStore", "StoreWriteError", "UnusableStoreError", "has_store", "open_store"]


def open_store(state_dir: Path, on_upgrade: Callable[[str], None] | None = None) -> AnswerStore:
    """The store of a state folder, created empty if there is none yet (SQLite:
    ``state_dir/ledger.sqlite``). :class:`UnusableStoreError` if it is damaged or not
    ours: nothing is changed then. A store made by an older phone-enrich is upgraded
    first; ``on_upgrade`` gets one line saying so before it starts."""
    return SqliteStore(state_dir, on_upgrade=on_upgrade)


def has_store(state_dir: Path) -> bool:
    """Whether the state folder has a store yet (for read-only commands, which make none)."""
    return (state_dir / LEDGER_FILE).exists()
