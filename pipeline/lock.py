"""One run per state folder at a time: an advisory lock (flock) on ``state_dir/lock``.

flock belongs to the open file, so the kernel drops it when the process ends, however
it ends: a run killed with -9 never leaves a stale lock behind. The file keeps the
holder's pid and start time, only to say who holds it.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import LockedError
from pipeline.preflight import prepare_state_dir

LOCK_FILE = "lock"
_TRIES = 5
"""How often a run asks for the lock, 20 ms apart, before exit 75: ``status`` may be
holding it for the microseconds of a probe (:func:`lock_is_held`)."""


@contextmanager
def state_lock(state_dir: Path) -> Iterator[None]:
    """Hold the state folder's lock for the block; LockedError (exit 75) if taken.

    A state_dir that is a file, under a file or read-only is one clear UsageError
    (exit 2) here, before anything is read or bought."""
    prepare_state_dir(state_dir)
    path = state_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        for attempt in range(_TRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt < _TRIES - 1:
                    time.sleep(0.02)
                    continue
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
                raise LockedError(
                    f"{state_dir}: another run holds the lock ({holder or 'another process'}); "
                    "try again when it ends"
                ) from None
        try:  # who holds it, for the message of a run refused the lock: nice, not needed
            os.ftruncate(fd, 0)
            os.pwrite(
                fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode(), 0
            )
        except OSError:  # a full disk: the ledger says so plainly next
            pass
        yield
    finally:
        os.close(fd)  # releases the lock


def lock_is_held(state_dir: Path) -> bool:
    """Whether a process holds the state folder's lock now (without waiting for it).

    A probe: a shared lock taken without blocking and dropped at once; the file is
    neither created nor written. The lock dies with its holder, so a run whose state
    says ``running`` while the lock is free was killed or crashed.
    """
    try:
        fd = os.open(state_dir / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # drops the probe's lock, if it got one
    return False
