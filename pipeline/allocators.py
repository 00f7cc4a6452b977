"""The process's two memory allocators, set up once by the command before its work
starts: freed memory an allocator keeps is still counted in the run's peak RSS.

* **polars' jemalloc** (its frames and columns) purges freed pages after a decay,
  first into "muzzy" pages (``MADV_FREE``), which stay resident, and counted, until
  the kernel needs them; polars sets that decay to 1 s. With it at 0 the pages are
  returned at once (``MADV_DONTNEED``). jemalloc reads ``_RJEM_MALLOC_CONF`` when
  polars loads, after polars' own defaults, so this must run before polars is
  imported, and a value the user set is left alone (polars' own, inherited from a
  parent process that imported it, is not the user's).
* **glibc's malloc** (Python's larger objects, SQLite's pages) gives each new thread
  an arena of its own, up to 8 per core. A run's many
  threads (stages, the engine's writers, the row count) each keep free memory in
  theirs; ``M_ARENA_MAX`` 2 bounds them (Python's GIL lets one thread allocate at a
  time anyway). Set with ``mallopt`` on Linux; elsewhere nothing is done, and an
  arena limit the user set (``MALLOC_ARENA_MAX``, ``GLIBC_TUNABLES``) is left alone.

Measured with ``bench/bench_run_memory.py``'s TCPA run on 3M rows, three runs each,
peak RSS: 594 / 583 / 579 MB as polars leaves them; glibc's arenas at 2 alone 571 / 562
/ 559; with jemalloc's muzzy decay at 0 too 531 / 541 / 521, for the same wall and CPU.
"""

from __future__ import annotations

import ctypes
import os
import sys

JEMALLOC_CONF = "muzzy_decay_ms:0"
"""Appended by jemalloc to polars' own settings (the last value of an option wins)."""
POLARS_JEMALLOC_CONF = "dirty_decay_ms:500,muzzy_decay_ms:1000"
"""What polars puts in ``_RJEM_MALLOC_CONF`` when nobody set it: a process started by
one that imported polars inherits it, and it is not the user's."""
ARENAS = 2
_M_ARENA_MAX = -8
"""glibc's ``mallopt`` parameter (malloc.h)."""


def configure() -> None:
    """Before polars is imported, and before threads start: glibc fixes its arena limit
    once it has made 8 arenas, and those made already stay."""
    if "polars" not in sys.modules:
        conf = os.environ.get("_RJEM_MALLOC_CONF")
        if not conf or conf == POLARS_JEMALLOC_CONF:  # empty: polars ignores it too
            os.environ["_RJEM_MALLOC_CONF"] = JEMALLOC_CONF
    if sys.platform.startswith("linux") and not _arenas_set_by_user():
        try:
            mallopt = ctypes.CDLL(None).mallopt  # the C library Python runs on
        except (OSError, AttributeError):
            return
        mallopt(_M_ARENA_MAX, ARENAS)


def _arenas_set_by_user() -> bool:
    """``MALLOC_ARENA_MAX`` (empty: glibc's default) or glibc's tunable for it."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    return bool(os.environ.get("MALLOC_ARENA_MAX")) or "glibc.malloc.arena_max" in tunables
