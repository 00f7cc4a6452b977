"""Synthetic *messy* leads files for trials, tests and benchmarks (``phone-enrich sample``).

Vectorized and streamed: rows are generated column-wise with polars, in chunks of at most
:data:`CHUNK_ROWS`, and appended to the output, so any number of rows fits in bounded memory.
Randomness comes from hashing the row number with per-stream seeds (``Series.hash``), so a row
does not depend on the chunk it falls in, and the file is a pure function of ``(rows, seed)``
on a given polars version (polars does not promise its hash is stable across versions).

What must be unique per row (``lead_id``, the phone numbers) is built per row. The rest (the
person, damaged phones, consent dates) is drawn from tables built once per call, which keeps
a 3M-row file to a few seconds.

The ``phone`` column: about 70% numbers that should normalize (US/CA, many formats, some with
extensions or surrounding spaces), 3% with a spreadsheet's trailing ``.0`` (restorable), and
27% damage: scientific notation, Caribbean NANP, other countries, too short, too long, invalid
area codes, blanks and text. About 20% of rows reuse one of :data:`DUPLICATE_POOL` numbers,
usually in another format. Rows with a damaged phone carry name+company or an email less
often, so that about 10% of all rows are candidates for a phone-append lookup.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.sample.draw import NULL, pick, random_frame, stream, tmp, weighted
from pipeline.sample.people import PEOPLE_POOL, people_table
from pipeline.sample.phones import (
    DAMAGE_POOL,
    FORMAT_OF_MILLE,
    NO_FORMAT,
    damage_table,
    formatted,
    phone_parts,
)

CHUNK_ROWS = 250_000
"""Rows generated and written at a time (bounds memory for any ``rows``)."""

COLUMNS = (
    "lead_id",
    "first_name",
    "last_name",
    "company",
    "domain",
    "email",
    "linkedin",
    "address",
    "zip",
    "ip",
    "phone",
    "consent_date",
    "notes",
)

DUPLICATE_POOL = 3_000
"""Size of the pool of numbers that about 20% of rows reuse."""
DUPLICATE_PER_MILLE = 200
CONSENT_GARBAGE = ("yesterday", "13/45/2021", "2021-02-30", "N/A", "00/00/0000", "last week")
NOTES = (
    "VIP, call after 5pm",
    'Said "not interested" last time',
    "Left voicemail\nCall back Tuesday",
    '=HYPERLINK("http://x","y")',
    "prefers email, not phone",
    "+1 met at trade show",
    "@sales follow up",
    "-- do not call --",
    'Multi-line,\nwith "quotes", and commas',
    "=1+2",
    "Referred by Jane",
)

CONSENT_FORMATS = (("%m/%d/%Y", 40), ("%Y-%m-%d", 25), ("%m/%d/%y", 15), ("%Y%m%d", 14))
_DATE_2015_01_01 = 16_436  # days since 1970-01-01
_DATE_SPAN_DAYS = 4_018  # 2015-01-01 ..= 2025-12-31


def write_sample(path: Path, rows: int, seed: int = 7) -> int:
    """Write ``rows`` synthetic leads to ``path`` (``.csv`` or ``.parquet``); return ``rows``.

    Streams chunks of at most :data:`CHUNK_ROWS` rows into a temp file next to ``path`` and
    renames it into place, so memory stays bounded and no reader sees a partial file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"sample output must end in .csv or .parquet, got {path.name!r}")
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tables = _Tables.build(seed)
    width = max(7, len(str(rows)))
    bounds = [(s, min(s + CHUNK_ROWS, rows)) for s in range(0, rows, CHUNK_ROWS)] or [(0, 0)]
    chunks = (_chunk(start, end, width, tables) for start, end in bounds)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if suffix == ".csv":
            with open(tmp, "wb") as fh:
                _pipelined(chunks, lambda df, first: df.write_csv(fh, include_header=first))
        else:
            import pyarrow.parquet as pq

            writers: list[Any] = []

            def write_parquet(df: pl.DataFrame, first: bool) -> None:
                table = df.to_arrow()
                if first:
                    writers.append(pq.ParquetWriter(tmp, table.schema, compression="zstd"))
                writers[0].write_table(table)

            try:
                _pipelined(chunks, write_parquet)
            finally:
                for writer in writers:
                    writer.close()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return rows


def _pipelined(chunks: Iterator[pl.DataFrame], write: Callable[[pl.DataFrame, bool], None]) -> None:
    """``write(chunk, first)`` each chunk in order, in a thread, while the next is generated.

    Both sides run mostly in polars, outside the GIL; at most two chunks are alive at a time.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: Future[None] | None = None
        for n, chunk in enumerate(chunks):
            if pending is not None:
                pending.result()
            pending = pool.submit(write, chunk, n == 0)
        if pending is not None:
            pending.result()


@dataclass(frozen=True)
class _Tables:
    seed: int
    people: pl.DataFrame  # PEOPLE_POOL rows for usable phones, then PEOPLE_POOL for the rest
    damage: pl.Series  # DAMAGE_POOL damaged phone values
    dates: pl.Series  # every day in each consent-date format

    @classmethod
    def build(cls, seed: int) -> _Tables:
        return cls(seed, people_table(seed), damage_table(seed), _date_table())


def _date_table() -> pl.Series:
    days = pl.int_range(
        _DATE_2015_01_01, _DATE_2015_01_01 + _DATE_SPAN_DAYS, dtype=pl.Int32, eager=True
    ).cast(pl.Date)
    return pl.concat([days.dt.strftime(fmt) for fmt, _ in CONSENT_FORMATS])


# -- per chunk ---------------------------------------------------------------------------------


def _chunk(start: int, end: int, width: int, tables: _Tables) -> pl.DataFrame:
    """Rows ``start..end`` (0-based) of the sample."""
    df = random_frame(end - start, tables.seed, 5, offset=start)
    r_phone, r_number, r_pick, r_consent, r_notes = (stream(s) for s in range(5))
    # A pool number's digits come from its pool index, so it repeats across rows and chunks.
    pooled = (r_pick % DUPLICATE_POOL).hash(seed=(tables.seed % 2**40) * 64 + 63)
    df = df.with_columns(
        _fmt=pl.lit(FORMAT_OF_MILLE).gather(r_phone % 1000),
        _key=pl.when(r_phone // 1000 % 1000 < DUPLICATE_PER_MILLE).then(pooled).otherwise(r_number),
    )
    fmt = tmp("fmt")
    damaged = fmt == NO_FORMAT
    area, exch, sub = phone_parts(tmp("key"))
    phone = (
        pl.when(damaged)
        .then(pl.lit(tables.damage).gather(r_pick // 2**32 % DAMAGE_POOL))
        .otherwise(formatted(area, exch, sub, fmt, r_phone // 10**6))
    )
    consent_class = r_consent % 100
    day = r_consent // 100 % _DATE_SPAN_DAYS
    date_format = weighted([w for _, w in CONSENT_FORMATS], r_consent // 10**6)
    consent_date = (
        pl.when(consent_class < 5)
        .then(NULL)
        .when(consent_class < 6)
        .then(pick(CONSENT_GARBAGE, r_consent // 100))
        .otherwise(pl.lit(tables.dates).gather(date_format * _DATE_SPAN_DAYS + day))
    )
    person = r_pick // 4096 % PEOPLE_POOL + pl.when(damaged).then(PEOPLE_POOL).otherwise(0)
    df = df.select(
        lead_id=pl.concat_str(pl.lit("L"), (tmp("i") + 1).cast(pl.String).str.zfill(width)),
        phone=phone,
        consent_date=consent_date,
        notes=pl.when(r_notes % 100 < 12).then(pick(NOTES, r_notes // 100)).otherwise(NULL),
        _person=person,
    )
    people = tables.people.select(pl.all().gather(df.get_column("_person")))
    return pl.concat([df, people], how="horizontal").select(COLUMNS)
