"""Notice an input that changes while a run reads it.

A file overwritten in place mid-run would be read half old, half new; a run that
finished on it would say "nothing to do" for ever after. The file's size, mtime and
inode are taken before its fingerprint and compared again before the output is put
in place: any difference and no output is written. (A file replaced by a rename is
caught too, although we would have read the old one whole: the run's fingerprint
then names content that no longer exists under that path.)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from pipeline.errors import InputError


class FileIdentity(NamedTuple):
    size: int
    mtime_ns: int
    inode: int
    device: int


def file_identity(path: Path) -> FileIdentity | None:
    """What ``path`` is now; None if it cannot be read (the reader says why)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return FileIdentity(st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


def check_unchanged(path: Path, seen: FileIdentity | None) -> None:
    """InputError (exit 2) if ``path`` is not what it was when ``seen`` was taken."""
    now = file_identity(path)
    if seen is None or now == seen:
        return
    if now is None:
        what = "was removed"
    elif now.inode != seen.inode or now.device != seen.device:
        what = "was replaced by another file"
    elif now.size != seen.size:
        what = f"changed size ({seen.size:,} -> {now.size:,} bytes)"
    else:
        what = "was modified"
    raise InputError(
        f"{path}: the input file {what} while the run read it, so no output was written "
        "(it would be neither version whole); run again once the file is complete"
    )
