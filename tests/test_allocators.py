"""The command sets up polars' jemalloc and glibc's malloc before its work starts
(pipeline/allocators.py), in a fresh process as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The command's entry point, then what polars handed to jemalloc, and how many malloc
# arenas eight new threads made (glibc's malloc_info lists one <heap> per arena).
_PROBE = """
import ctypes, os, sys, tempfile, threading
if sys.argv[1] == "command":
    from pipeline.cli import main
    main(["--version"])
import polars
print(os.environ.get("_RJEM_MALLOC_CONF"))
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
start = threading.Barrier(8)
def allocate():
    start.wait()
    libc.malloc(4096)  # a thread's first malloc takes (or makes) its arena
threads = [threading.Thread(target=allocate) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
with tempfile.TemporaryFile() as fh:
    libc.fdopen.restype = ctypes.c_void_p
    stream = libc.fdopen(os.dup(fh.fileno()), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fclose(ctypes.c_void_p(stream))
    fh.seek(0)
    print(fh.read().count(b"<heap nr="))
"""


def _probe(how: str = "command", **env: str) -> tuple[str, int]:
    ours = ("_RJEM_MALLOC_CONF", "MALLOC_ARENA_MAX", "GLIBC_TUNABLES")
    clean = {k: v for k, v in os.environ.items() if k not in ours}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, how], cwd=ROOT, env={**clean, **env},
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    conf, heaps = done.stdout.splitlines()[-2:]
    return conf, int(heaps)


def test_jemalloc_returns_freed_pages_at_once_and_glibc_keeps_two_arenas() -> None:
    conf, heaps = _probe()
    # polars' own defaults first; jemalloc keeps the last value of an option
    assert conf == "dirty_decay_ms:500,muzzy_decay_ms:1000,muzzy_decay_ms:0"
    assert heaps == 2  # the main arena and one more, shared by the eight threads


def test_what_the_user_set_is_left_alone() -> None:
    conf, heaps = _probe(_RJEM_MALLOC_CONF="dirty_decay_ms:100", MALLOC_ARENA_MAX="4")
    assert conf == "dirty_decay_ms:500,muzzy_decay_ms:1000,dirty_decay_ms:100"
    assert heaps == 4


def test_settings_that_are_not_the_users_are_replaced() -> None:
    # polars' own, inherited from a parent that imported polars; empty values
    conf, heaps = _probe(_RJEM_MALLOC_CONF="dirty_decay_ms:500,muzzy_decay_ms:1000")
    assert conf.endswith(",muzzy_decay_ms:0")
    conf, heaps = _probe(_RJEM_MALLOC_CONF="", MALLOC_ARENA_MAX="")
    assert (conf, heaps) == ("dirty_decay_ms:500,muzzy_decay_ms:1000,muzzy_decay_ms:0", 2)


def test_an_arena_limit_set_as_a_glibc_tunable_is_left_alone() -> None:
    _, heaps = _probe(GLIBC_TUNABLES="glibc.malloc.arena_max=4")
    assert heaps == 4


def test_without_the_command_polars_and_glibc_keep_their_defaults() -> None:
    conf, heaps = _probe("polars only")
    assert conf == "dirty_decay_ms:500,muzzy_decay_ms:1000"
    assert heaps > 2  # a new arena per thread, up to 8 per core
