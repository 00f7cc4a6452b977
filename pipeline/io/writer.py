"""Write output batches atomically: a temp file beside the target, renamed at the end.

A failed run therefore never leaves a partial output under the real name. The
batches are handed to polars' own streaming sinks through an IO-source plugin:
they run while Python prepares the next batch. Polars fills a Parquet row group
with up to about 120,000 rows whatever their width, and keeps a few KB for every
column chunk it wrote until the file is closed: for rows of thousands of columns
that is the whole file in one row group (1.7 GB of memory for a 244 MB file), or
with smaller groups several MB a group. Such rows go to pyarrow instead
(:func:`write_row_groups`): row groups of about :data:`ROW_GROUP_BYTES`, and about
0.8 KB kept for each column chunk (4 MB a group of 5,000 columns, twice that while
the footer is written at the close).

CSV output makes text that *we* add formula-safe (a leading ``= + - @`` or tab/CR
gets a ``'`` unless the value is a plain number such as ``+12125550123``); the
input's own columns are written exactly as they were read.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import polars as pl
from polars.io.plugins import register_io_source

from pipeline.errors import OutputError, PipelineError
from pipeline.io.arrow import is_arrow_error

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

ROW_GROUP_BYTES = 64 << 20
"""A Parquet row group written by pyarrow holds about this many bytes (Arrow's size in
memory): a bigger group is held longer, a smaller one adds a footer entry for every
column (about 0.8 KB each in memory until the file is closed)."""

POLARS_GROUP_ROWS = 122_880
"""Polars' Parquet sink puts up to about this many rows in a row group (85,000-120,000
measured, depending on the batches), whatever their width."""

ZSTD_LEVEL = 1
"""Parquet output is zstd at level 1: on a 3M-row, 16-column output 19% less CPU to
write than level 3 (polars' and pyarrow's default) for a file 1.5% larger (65 vs
66 MB); the output is a working file, read once or twice, written on every run."""

_FORMULA_START = r"^[=+\-@\t\r]"
_PLAIN_NUMBER = r"^[+-]?\d+(?:\.\d+)?$"


def formula_safe(column: str) -> pl.Expr:
    """``column`` with spreadsheet formulas neutralised by a leading apostrophe."""
    col = pl.col(column)
    risky = col.str.contains(_FORMULA_START) & ~col.str.contains(_PLAIN_NUMBER)
    return pl.when(risky).then(pl.lit("'") + col).otherwise(col).alias(column)


def output_format(path: Path) -> Literal["csv", "parquet"]:
    """The format an output path asks for, by its extension."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".parquet":
        return "parquet"
    raise OutputError(f"{path}: output must end in .csv or .parquet")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_batches(
    path: Path,
    schema: pl.Schema,
    batches: Callable[[], Iterator[pl.DataFrame]],
    safe_columns: tuple[str, ...] = (),
    before_commit: Callable[[], None] | None = None,
    row_group_bytes: int = ROW_GROUP_BYTES,
) -> None:
    """Stream the batches ``batches()`` yields (all of ``schema``) into ``path``.

    ``before_commit`` runs once the temp file is complete, before it is renamed into
    place; an exception from it leaves ``path`` as it was.
    Nothing appears at ``path`` unless every batch was written; an exception raised
    while producing batches is re-raised as it was, after the temp file is removed.
    Parquet rows so wide that polars' row groups would hold more than
    ``row_group_bytes`` are written by pyarrow in row groups of about that size.
    """
    fmt = output_format(path)
    failure: list[BaseException] = []

    def produced() -> Iterator[pl.DataFrame]:
        try:
            yield from batches()
        except GeneratorExit:  # the writer stopped early: its own error says why
            raise
        except BaseException as exc:
            failure.append(exc)
            raise

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create the output folder: {exc.strerror}") from None
    try:
        frames = produced()
        # No writer starts before the first batch: polars' sinks create their file on a
        # task of their own, which can finish after the sink has raised, so a failure
        # right at the start (a bad input, mostly) left a temp file created after it was
        # removed (29 of 300 such failures). The first batch's width also picks the
        # Parquet writer.
        first = next(frames, None)
        if first is not None:
            frames = itertools.chain([first], frames)
        if fmt == "csv":
            present = [c for c in safe_columns if c in schema]
            guarded = _polars_source(frames, schema).with_columns(formula_safe(c) for c in present)
            guarded.sink_csv(tmp)
        elif first is not None and _row_bytes(first) * POLARS_GROUP_ROWS > row_group_bytes:
            write_row_groups(tmp, schema, frames, row_group_bytes)
        else:
            _polars_source(frames, schema).sink_parquet(tmp, compression_level=ZSTD_LEVEL)
        _fsync(tmp)
        if before_commit is not None:
            before_commit()
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if failure:
            raise failure[0] from None
        if isinstance(exc, PipelineError):
            raise
        if isinstance(exc, OSError | pl.exceptions.PolarsError) or is_arrow_error(exc):
            raise OutputError(f"{path}: cannot write output: {exc}") from None
        raise


def _polars_source(frames: Iterator[pl.DataFrame], schema: pl.Schema) -> pl.LazyFrame:
    """``frames`` as a LazyFrame that polars' streaming sinks pull from."""

    def source(
        with_columns: list[str] | None,
        predicate: pl.Expr | None,
        n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        for frame in frames:
            yield frame if with_columns is None else frame.select(with_columns)

    return register_io_source(source, schema=schema)


def _row_bytes(frame: pl.DataFrame) -> float:
    return frame.estimated_size() / max(1, frame.height)


def write_row_groups(
    path: Path,
    schema: pl.Schema,
    frames: Iterator[pl.DataFrame],
    row_group_bytes: int = ROW_GROUP_BYTES,
) -> None:
    """Write ``frames`` to one Parquet file in row groups of about ``row_group_bytes``.

    Each frame becomes Arrow as it comes (a polars frame of thousands of columns costs
    MBs whatever its rows, so none is kept); a row group is written once complete.
    """
    import pyarrow.parquet as pq

    arrow_schema = pl.DataFrame(schema=schema).to_arrow().schema
    with pq.ParquetWriter(
        path, arrow_schema, compression="zstd", compression_level=ZSTD_LEVEL
    ) as writer:
        held: list[pa.RecordBatch] = []
        size = 0
        for frame in frames:
            batches = frame.to_arrow().to_batches()
            del frame  # not kept alive while the next one is made
            held.extend(batches)
            size += sum(batch.nbytes for batch in batches)
            if size >= row_group_bytes:
                _write_group(writer, held, size, row_group_bytes)
                held, size = [], 0
        if held:
            _write_group(writer, held, size, row_group_bytes)


def _write_group(
    writer: pq.ParquetWriter, held: list[pa.RecordBatch], size: int, row_group_bytes: int
) -> None:
    import pyarrow as pa

    table = pa.Table.from_batches(held)
    # One group (``held`` is the bound and at most a batch more); a batch far larger
    # than a group is split evenly. Each group costs about 0.8 KB a column in memory
    # until the file is closed, and twice that while the footer is written.
    groups = max(1, size // row_group_bytes)
    writer.write_table(table, row_group_size=-(-table.num_rows // groups))
