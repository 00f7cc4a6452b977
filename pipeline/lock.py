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


@contextmanager
def state_lock(state_dir: Path) -> Iterator[None]:
    """Hold the state folder's lock for the block; LockedError (exit 75) if taken.

    A state_dir that is a file, under a file or read-only is one clear UsageError
    (exit 2) here, before anything is read or bought."""
    prepare_state_dir(state_dir)
    path = state_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            raise LockedError(
                f"{state_dir}: another run holds the lock ({holder}); try again when it ends"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
