"""The process's two memory allocators, set up once by the command before its work
starts: freed memory an allocator keeps is still counted in the run's peak RSS.

* **polars' jemalloc** (its frames and columns) purges freed pages after a decay,
  first into "muzzy" pages (``MADV_FREE``), which stay resident, and counted, until
  the kernel needs them; polars sets that decay to 1 s. With it at 0 the pages are
  returned at once (``MADV_DONTNEED``). jemalloc reads ``_RJEM_MALLOC_CONF`` when
  polars loads, after polars' own defaults, so this must run before polars is
  imported, and a value the user set is left alone.
* **glibc's malloc** (Python's larger objects, SQLite's pages) gives a thread that
  finds the others' arenas busy an arena of its own, up to 8 per core. A run's many
  threads (stages, the engine's writers, the row count) each keep free memory in
  theirs; ``M_ARENA_MAX`` 2 bounds them (Python's GIL lets one thread allocate at a
  time anyway). Set with ``mallopt`` on Linux; elsewhere nothing is done, and a
  ``MALLOC_ARENA_MAX`` the user set is left alone.

Measured with ``bench/bench_run_memory.py``'s TCPA run on 3M rows, three runs each,
peak RSS: 594 / 583 / 579 MB as polars leaves them; jemalloc's muzzy decay at 0
549 / 574 / 568; glibc's arenas at 2 571 / 562 / 559; both 539 / 554 / 543, for the
same wall and CPU.
"""

from __future__ import annotations

import ctypes
import os
import sys

JEMALLOC_CONF = "muzzy_decay_ms:0"
"""Appended by jemalloc to polars' own ``dirty_decay_ms:500,muzzy_decay_ms:1000``."""
ARENAS = 2
_M_ARENA_MAX = -8
"""glibc's ``mallopt`` parameter (malloc.h)."""


def configure() -> None:
    """Before polars is imported, and before threads start."""
    if "polars" not in sys.modules:
        os.environ.setdefault("_RJEM_MALLOC_CONF", JEMALLOC_CONF)
    if sys.platform.startswith("linux") and "MALLOC_ARENA_MAX" not in os.environ:
        try:
            mallopt = ctypes.CDLL(None).mallopt  # the C library Python runs on
        except (OSError, AttributeError):
            return
        mallopt(_M_ARENA_MAX, ARENAS)
