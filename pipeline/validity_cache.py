"""The validity table as polars Series, built once and kept in a cache folder.

Building the table (:mod:`pipeline.validity_table`) costs about 0.15 s of CPU and
turning it into Series a little more: for a run that only normalizes, a tenth of what
normalizing itself costs. The Series are therefore written, once, to an Arrow IPC file
(about 1 MB; 2 ms to read) under :func:`cache_dir`, named after a key that changes with
anything the table is made from: libphonenumber's NANP rules as read from the
installed ``phonenumbers`` (its version and the patterns themselves), and the code that
builds it. A key that does not match is a file that is not read, so a cached table is
the table this process would build. A cache that cannot be read or written (a
read-only home, a damaged file) costs the build, nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

import phonenumbers
import polars as pl

from pipeline.phone_metadata import region_rules
from pipeline.validity_table import KEY_DIGITS, validity_table

CACHE_ENV = "PHONE_ENRICH_CACHE_DIR"
"""An environment variable naming the cache folder (default: the user's cache folder)."""

_LEVEL = "level"
_BUILT_FROM = ("validity_table.py", "phone_metadata.py", "validity_cache.py")
"""The sources the table's key covers, beside this module."""


def cache_dir() -> Path:
    """``$PHONE_ENRICH_CACHE_DIR``, else ``$XDG_CACHE_HOME/phone-enrich``, else
    ``~/.cache/phone-enrich``."""
    named = os.environ.get(CACHE_ENV)
    if named:
        return Path(named)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "phone-enrich"


def table_key() -> str:
    """What the table is made from, hashed: the rules (libphonenumber's metadata, read
    now) and the code that turns them into a table."""
    digest = hashlib.sha256(f"{phonenumbers.__version__}\n{KEY_DIGITS}\n".encode())
    digest.update(repr(region_rules()).encode())
    here = Path(__file__).parent
    for name in _BUILT_FROM:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:32]


def _built() -> tuple[pl.Series, ...]:
    """The table's levels as Series, each in the narrowest type that holds it: the
    lookups are random reads."""
    levels = validity_table().levels
    widest = max(max(level) for level in levels)
    dtype = pl.UInt8 if widest < 2**8 else pl.UInt16 if widest < 2**16 else pl.UInt32
    return tuple(pl.Series(_LEVEL, level, dtype=pl.UInt32).cast(dtype) for level in levels)


def _read(path: Path) -> tuple[pl.Series, ...] | None:
    try:
        frame = pl.read_ipc(path)
        levels = tuple(frame[_LEVEL][i].alias(_LEVEL) for i in range(frame.height))
    except (OSError, pl.exceptions.PolarsError, IndexError, KeyError):
        return None
    if not levels or len(levels[0]) != 10**KEY_DIGITS:
        return None
    return levels


def _write(path: Path, levels: tuple[pl.Series, ...]) -> None:
    """Write the file whole or not at all (a temp file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            frame = pl.DataFrame({_LEVEL: pl.Series(_LEVEL, list(levels))})
            frame.write_ipc(fh, compression="zstd")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def table_series(folder: Path | None = None) -> tuple[pl.Series, ...]:
    """The levels of :func:`~pipeline.validity_table.validity_table` as Series, read
    from the cache in ``folder`` (default :func:`cache_dir`) when it holds them, built
    (and stored there) otherwise."""
    try:
        path = (folder or cache_dir()) / f"validity-{table_key()}.arrow"
    except (OSError, RuntimeError):  # no sources to hash (a zipped install), no home
        return _built()
    levels = _read(path) if path.is_file() else None
    if levels is None:
        levels = _built()
        with contextlib.suppress(OSError):  # next time, then
            _write(path, levels)
    return levels
