"""The random draws a sample is made of: independent streams of u64s per row, hashed
from the row number, so a row never depends on the chunk it falls in."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

NULL = pl.lit(None, dtype=pl.String)


def strings(values: Sequence[str | None]) -> pl.Series:
    return pl.Series(list(values), dtype=pl.String)


def pick(values: Sequence[str], r: pl.Expr) -> pl.Expr:
    """One of ``values``, chosen by the random u64 ``r``."""
    return pl.lit(strings(values)).gather(r % len(values))


def weighted(weights: Sequence[int], r: pl.Expr) -> pl.Expr:
    """An index into ``weights`` (u32), drawn with those weights by the random u64 ``r``."""
    table = pl.Series([i for i, w in enumerate(weights) for _ in range(w)], dtype=pl.UInt32)
    return pl.lit(table).gather(r % len(table))


def digits(r: pl.Expr, n: int) -> pl.Expr:
    """``n`` zero-padded pseudo-random digits from ``r``."""
    modulus: int = 10**n
    return (r % modulus).cast(pl.String).str.zfill(n)


def random_frame(n: int, seed: int, streams: int, offset: int = 0) -> pl.DataFrame:
    """``_i`` (row numbers ``offset..offset+n``) and ``_r0..`` (independent random u64s)."""
    idx = pl.int_range(offset, offset + n, dtype=pl.UInt64, eager=True)
    base = (seed % 2**40) * 64
    return pl.DataFrame({"_i": idx} | {f"_r{s}": idx.hash(seed=base + s) for s in range(streams)})


def stream(number: int) -> pl.Expr:
    """The random stream ``number`` of a :func:`random_frame`."""
    return pl.col(f"_r{number}")


def tmp(name: str) -> pl.Expr:
    """A working column (``_name``), dropped before the row is written."""
    return pl.col(f"_{name}")
