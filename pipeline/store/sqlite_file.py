"""The SQLite store's file: connect to it, create it whole, refuse a damaged one untouched.

Left to itself, SQLite takes a zero-byte file for a new, empty database (every
cached answer is silently gone and the file rewritten), and answers junk with an
error that names no file. So the file is looked at before SQLite opens it, and a
new ledger is built under a temporary name and linked into place complete: a
ledger file at its path always has its header, so a zero-byte one is damage (a
failed copy, a truncation), never a file that a concurrent run is creating.
Damage deep inside a file that looks whole is only found when SQLite reads that
page; :func:`damage` turns SQLite's error then into the same one line, and
:func:`guarded` every other failure into a :class:`StoreWriteError` naming the file.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from pipeline.store.base import StoreWriteError, UnusableStoreError

LEDGER_FILE = "ledger.sqlite"
SQLITE_MAGIC = b"SQLite format 3\x00"
_DAMAGE_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


def damaged(path: Path, what: str) -> UnusableStoreError:
    """The one line for a ledger we will not use: which file, what is wrong, what to do."""
    return UnusableStoreError(
        f"{path}: {what}. Nothing was changed: restore it (and {path.name}-wal, if any) from "
        f"a backup, or move {path.name}* out of {path.parent} to start a new, empty ledger "
        "(the answers it held will be bought again)"
    )


def damage(path: Path, exc: sqlite3.DatabaseError) -> UnusableStoreError | None:
    """The error to raise for ``exc`` if it says the file is damaged, else None."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None or code & 0xFF not in _DAMAGE_CODES:
        return None
    return damaged(path, f"the ledger is damaged ({exc})")


class _OnFile(Protocol):
    path: Path


_Self = TypeVar("_Self", bound=_OnFile)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def guarded(
    method: Callable[Concatenate[_Self, _P], _R],
) -> Callable[Concatenate[_Self, _P], _R]:
    """A store method whose SQLite "malformed" or "not a database" (damage found when a
    page is read) becomes the one line of UnusableStoreError naming the file and what to
    do, and whose other failure (a full disk, a vanished file, a row refused) a
    StoreWriteError naming the file and the cause: no SQLite error leaves the store."""

    def call(self: _Self, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            error = damage(self.path, exc)
            if error is not None:
                raise error from None
            raise StoreWriteError(unwritable(self.path, exc)) from exc
        except (sqlite3.Error, OSError) as exc:
            raise StoreWriteError(unwritable(self.path, exc)) from exc

    functools.update_wrapper(call, method)
    return call


@contextlib.contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction (BEGIN IMMEDIATE: the write lock taken at once, so a
    transaction that reads before it writes never finds its snapshot stale), committed
    at the end of the block, rolled back on any exception (unless SQLite already rolled
    it back itself, as on a full disk or damage)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def check_file(path: Path) -> bool:
    """Whether a ledger file is there; UnusableStoreError if it is there but cannot be one.

    Reads the first bytes only; SQLite has not touched the file (nor its -wal, which a
    zero-byte database would have replayed onto nothing and then reset).
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(100)
    except FileNotFoundError:
        wal = path.with_name(path.name + "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            # Its changes without the file they change: a new ledger would take them.
            raise damaged(path, f"the ledger file is missing but {wal.name} is there") from None
        return False
    except IsADirectoryError:
        raise UnusableStoreError(f"{path}: is a folder, not a ledger file; move it away") from None
    if not head:
        raise damaged(path, "the ledger is empty (0 bytes): the answers it held are gone")
    if len(head) < 100 or not head.startswith(SQLITE_MAGIC):
        raise damaged(path, "not a ledger: the file is not an SQLite database")
    return True


def connect(path: Path) -> sqlite3.Connection:
    """A connection in WAL mode (the caller has checked the file)."""
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    try:
        _enter_wal(conn)
        # NORMAL in WAL mode: a commit survives a killed process (not a power cut), and
        # costs no fsync per answer.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        conn.close()  # e.g. not a database: do not leak the handle
        raise
    return conn


def _enter_wal(conn: sqlite3.Connection, attempts: int = 100) -> None:
    """Switch to WAL. Two processes opening a brand-new file race for the switch, and
    SQLite answers the loser "database is locked" at once, without its busy timeout,
    so the loser waits a moment and asks again (the winner's switch then holds)."""
    for attempt in range(attempts):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.01 + 0.01 * attempt)


def create(path: Path, build: Callable[[sqlite3.Connection], None]) -> None:
    """A new ledger at ``path``, built (``build``: the schema) under a temporary name and
    linked into place whole. If another process got there first, its file is kept."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        # A rollback journal, not WAL: a commit that cannot be written (a full disk)
        # then fails loudly here, where WAL would leave the schema in a -wal file that
        # closing folds back into the database, or silently does not.
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            build(conn)
        finally:
            conn.close()
        check = sqlite3.connect(f"file:{tmp}?mode=ro", uri=True)
        try:
            if check.execute("PRAGMA quick_check").fetchone() != ("ok",):
                raise sqlite3.DatabaseError(f"{tmp}: the new ledger did not check out")
        finally:
            check.close()
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # atomic, and never replaces a file that is there
        except FileExistsError:
            pass
        except OSError:  # a filesystem without hard links: copy into a new file
            with contextlib.suppress(FileExistsError):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                with open(fd, "wb") as out, open(tmp, "rb") as src:
                    shutil.copyfileobj(src, out)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-journal")):
            leftover.unlink(missing_ok=True)


def unwritable(path: Path, exc: OSError | sqlite3.Error) -> str:
    """Which ledger cannot be written and why, a full disk said plainly whichever layer
    noticed it; the caller says what follows for the run."""
    if _disk_full(path, exc):
        why = "no space left on device"
    elif isinstance(exc, OSError):
        why = exc.strerror or str(exc)
    else:
        why = str(exc)
    return f"{path}: {why}"


def _disk_full(path: Path, exc: OSError | sqlite3.Error) -> bool:
    if isinstance(exc, OSError):
        return exc.errno == errno.ENOSPC
    code = getattr(exc, "sqlite_errorcode", None)
    if code == sqlite3.SQLITE_FULL:
        return True
    # SQLite says only "disk I/O error" when it cannot grow its -shm file: ask the disk.
    if code is not None and code & 0xFF == sqlite3.SQLITE_IOERR:
        with contextlib.suppress(OSError):
            return shutil.disk_usage(path.parent).free < 1 << 20
    return False
