"""Parquet input in batches of a bounded size, whatever its row groups and its width.

Two readers, each used where it holds little:

- **pyarrow streams** the file (``iter_batches``): it keeps the current page of every
  column decoded and some 30 KB of reader state a column, and reads a row group of any
  length in one pass. For a few dozen columns that is a few MB.
- **polars reads slices** (``scan_parquet(...).slice(...)``) where that state would be
  large: thousands of columns (a 240 MB file of 5,000 columns in one row group held
  1.1 GB streamed, 0.4 GB sliced). Each slice is read a column at a time and nothing is
  kept between slices; the price is that a slice decodes its columns' pages from where
  they start, and parses the footer again.

Either way the batches have the types that ``pl.from_arrow`` gives pyarrow's reading
(what the pipeline always read): polars reads slices only of a file for which its own
schema is that one (it is not for date64 or INT96 columns, for instance).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import polars.selectors as cs
import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_BATCH_BYTES = 8 << 20
"""A Parquet batch holds at most ``batch_rows`` rows and about this many bytes (about as
many rows as a 4 MB CSV block), plus :data:`PARQUET_BYTES_PER_COLUMN` for each column:
``batch_rows`` rows of a file with thousands of columns could be the whole file."""

PARQUET_AHEAD = 2
"""Batches of a file streamed by pyarrow prepared ahead of the one being used (CSV: 4).
Each is decoded already, and with its result it weighs several times its size: 3M rows
of the 13-column sample peaked at 455 MB (7.2-7.5 s) with two ahead, 582 MB (6.6-7.0 s)
with four."""

PARQUET_BYTES_PER_COLUMN = 1 << 10
"""Each batch pays a fixed cost for each column (the read, every step after), in time and
in memory: with thousands of columns, batches of a few dozen rows would pay it over and
over. Measured on 5,000 columns (a 250 MB file to Parquet): 1 KB a column 25.8 s and
854 MB, 2 KB 20.7 s and 892 MB, 4 KB 18.3 s and 974 MB (streamed by pyarrow)."""

STREAM_STATE_BYTES = 128 << 20
"""pyarrow streams a file when what it would hold for its columns, about, is at most this
(:func:`stream_state`); a wider file is read in slices by polars."""

READ_PART_BYTES = 16 << 20
"""polars reads a slice a run of columns at a time, each run about this much compressed
data in a row group: it fetches every column chunk the slice touches before decoding
them, and a slice of one row group of 5,000 columns touches the whole group (240 MB
compressed: 364 MB of memory at once, 159 MB in runs of 250 columns, and faster)."""

_STATE_PER_COLUMN = 32 << 10
"""pyarrow's reader state for a column besides its page: 5,000 columns of 7 KB pages
held 55 MB in Arrow's pool and about 100 MB more in the C++ heap."""

_PAGE_BYTES = 1 << 20
"""Writers cut a column's data into pages of about 1 MB (pyarrow, polars, Spark)."""

_SAMPLE_BYTES = 1 << 20
"""About this much of the file's first rows is read to measure what a row takes."""


def parquet_batch_bytes(columns: int) -> int:
    """The bytes a Parquet batch holds at most, about, for a file of ``columns`` columns."""
    return PARQUET_BATCH_BYTES + PARQUET_BYTES_PER_COLUMN * columns


@dataclass(frozen=True)
class _Layout:
    """What the footer tells about reading the file (the footer itself is not kept: for
    thousands of columns in many row groups it weighs 10x its size on disk in memory)."""

    rows: int
    columns: int
    stated_row_bytes: float
    stream_state: int
    schema: pl.Schema
    """The types of the columns as ``pl.from_arrow`` gives pyarrow's read of them."""
    parts: list[list[str]]
    """The top-level columns in runs of about :data:`READ_PART_BYTES` of compressed data
    in the largest row group: what polars fetches for one read."""


def _layout(path: Path) -> _Layout:
    meta = pq.read_metadata(path)
    groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
    stated = max((g.total_byte_size / g.num_rows for g in groups if g.num_rows), default=1.0)
    largest = max(groups, key=lambda g: g.total_byte_size, default=None)
    arrow = meta.schema.to_arrow_schema()
    empty = pl.from_arrow(arrow.empty_table())
    assert isinstance(empty, pl.DataFrame)
    parts = _parts(arrow, largest)
    state = stream_state(largest)
    return _Layout(meta.num_rows, meta.num_columns, stated, state, empty.schema, parts)


def stream_state(group: pq.RowGroupMetaData | None) -> int:
    """About the bytes pyarrow holds while it streams ``group``: for each column its
    current page decoded (the column's data, up to a page) and its reader's own state."""
    if group is None:
        return 0
    pages = (group.column(j).total_uncompressed_size for j in range(group.num_columns))
    pages_bytes = sum(min(int(size), _PAGE_BYTES) for size in pages)
    return pages_bytes + _STATE_PER_COLUMN * int(group.num_columns)


def _parts(schema: pa.Schema, group: pq.RowGroupMetaData | None) -> list[list[str]]:
    """The schema's columns in order, cut in runs of about READ_PART_BYTES of ``group``'s
    compressed column chunks (a nested column's leaves count for it)."""
    parts: list[list[str]] = [[]]
    size = leaf = 0
    for field in schema:
        leaves = _leaf_count(field.type)
        if group is not None:
            chunks = range(leaf, leaf + leaves)
            chunk = sum(int(group.column(j).total_compressed_size) for j in chunks)
            if parts[-1] and size + chunk > READ_PART_BYTES:
                parts.append([])
                size = 0
            size += chunk
        leaf += leaves
        parts[-1].append(field.name)
    return parts


def _leaf_count(dtype: pa.DataType) -> int:
    """The Parquet columns (leaves) an Arrow type is stored in."""
    if isinstance(dtype, pa.StructType):
        return sum(_leaf_count(dtype.field(i).type) for i in range(dtype.num_fields))
    if isinstance(dtype, pa.MapType):
        return _leaf_count(dtype.key_type) + _leaf_count(dtype.item_type)
    if isinstance(dtype, pa.ListType | pa.LargeListType | pa.FixedSizeListType):
        return _leaf_count(dtype.value_type)
    return 1


def _scan(path: Path) -> pl.LazyFrame:
    """The file for polars to read slices of. polars parses the footer once, for the
    schema, and keeps it in the scan for every slice (5,000 columns in 1,000-row groups,
    a 500 MB file: 4.0 s to read it all against 6.3 s parsing it for each slice)."""
    return pl.scan_parquet(path, glob=False, hive_partitioning=False)


def reads_alike(scan: pl.LazyFrame, layout: _Layout) -> bool:
    """Whether polars reads the file with the types ``pl.from_arrow`` gives pyarrow's."""
    try:
        return dict(scan.collect_schema()) == dict(layout.schema)
    except pl.exceptions.PolarsError:
        return False


class ParquetReading:
    """How a file is read: streamed by pyarrow or sliced by polars, and in what sizes.

    Both read on the thread that iterates over :meth:`units`, one batch at a time: a
    slice of a long row group of thousands of columns briefly decodes a page of every
    column, and two such reads at once on the workers held twice that."""

    def __init__(self, path: Path) -> None:
        _use_releasing_pool()
        self.path = path
        self._layout = _layout(path)
        self._scan: pl.LazyFrame | None = None
        if self._layout.stream_state > STREAM_STATE_BYTES:
            scan = _scan(path)
            if reads_alike(scan, self._layout):
                self._scan = scan
                _release_freed_heap()

    @property
    def sliced(self) -> bool:
        """Whether polars reads the file in slices (else pyarrow streams it)."""
        return self._scan is not None

    @property
    def ahead(self) -> int:
        """Batches to prepare ahead of the one in use: with thousands of columns each
        batch pays some 1 KB a column besides its rows (5,000 columns: 5 MB), and
        its preparation is little work, so one; otherwise two (:data:`PARQUET_AHEAD`)."""
        return 1 if self.sliced else PARQUET_AHEAD

    def units(
        self, batch_rows: int, batch_bytes: int | None = None
    ) -> Iterator[pa.Table | pl.DataFrame]:
        """The file's rows in order, as tables pyarrow read or frames polars read, each
        of ``batch_rows`` rows or about ``batch_bytes`` (:func:`parquet_batch_bytes` by
        default), whichever is fewer, whatever the row groups."""
        layout = self._layout
        if layout.rows == 0:
            return
        budget = batch_bytes if batch_bytes is not None else parquet_batch_bytes(layout.columns)
        if self._scan is not None:
            yield from _slices(self._scan, layout, batch_rows, budget)
        else:
            yield from _streamed(self.path, batch_rows, budget)


def parquet_units(
    path: Path, batch_rows: int, batch_bytes: int | None = None
) -> Iterator[pa.Table | pl.DataFrame]:
    """:meth:`ParquetReading.units` of ``path``."""
    return ParquetReading(path).units(batch_rows, batch_bytes)


def _slices(
    scan: pl.LazyFrame, layout: _Layout, batch_rows: int, budget: int
) -> Iterator[pl.DataFrame]:
    """Slices of about ``budget`` bytes of polars memory; a row's size is the larger of
    what the first rows take and the footer's figure (encoded, before decoding)."""

    def read(offset: int, length: int) -> pl.DataFrame:
        if len(layout.parts) == 1:
            return scan.slice(offset, length).collect(engine="in-memory")
        pieces = [
            scan.select(cs.by_name(part)).slice(offset, length).collect(engine="in-memory")
            for part in layout.parts
        ]
        return pl.concat(pieces, how="horizontal")

    sample_rows = max(1, min(4096, int(_SAMPLE_BYTES / max(layout.stated_row_bytes, 1.0))))
    first = read(0, sample_rows)
    measured = frame_bytes(first) / max(1, first.height)
    del first
    row_bytes = max(layout.stated_row_bytes, measured, 1.0)
    rows = max(1, min(batch_rows, int(budget / row_bytes)))
    for offset in range(0, layout.rows, rows):
        yield read(offset, min(rows, layout.rows - offset))


def frame_bytes(frame: pl.DataFrame) -> int:
    """About the memory ``frame`` holds: polars' estimate leaves out the 16-byte view that
    every text or binary value has besides its bytes (a column of 4-character values
    takes 20 bytes a row, not 4)."""
    views = sum(1 for dtype in frame.schema.dtypes() if dtype in (pl.String, pl.Binary))
    return int(frame.estimated_size()) + 16 * views * frame.height


def _streamed(path: Path, batch_rows: int, budget: int) -> Iterator[pa.Table]:
    """pyarrow's stream cut into tables of about ``budget`` bytes: large row groups are
    read a part at a time, small ones joined (pyarrow runs on across row groups by
    itself, except where a column is dictionary-encoded).

    pyarrow reads ahead only when asked to, and its defaults ask: ``pre_buffer`` fetches
    the column chunks of every row group the reader will visit (for a reader over the
    whole file, the whole file, held until the end), and without a read buffer a column
    chunk is read whole (one row group of 10M rows is the whole file again). With
    neither, pyarrow holds a small buffer and the current page of each column.
    """
    meta = pq.read_metadata(path)
    buffer = max(4 << 10, min(64 << 10, (16 << 20) // max(1, meta.num_columns)))
    file = pq.ParquetFile(path, metadata=meta, pre_buffer=False, buffer_size=buffer)
    rows = max(1, min(batch_rows, int(budget / _arrow_row_bytes(file))))
    held: list[pa.RecordBatch] = []
    count = 0
    for batch in file.iter_batches(batch_size=rows):
        while batch.num_rows:
            take = min(batch.num_rows, rows - count)
            held.append(batch.slice(0, take))
            batch = batch.slice(take)
            count += take
            if count == rows:
                yield pa.Table.from_batches(held)
                held, count = [], 0
    if held:
        yield pa.Table.from_batches(held)


def _arrow_row_bytes(file: pq.ParquetFile) -> float:
    """Bytes a row takes in Arrow: the larger of what the first rows measure and the
    file's own figure (uncompressed before decoding: dictionary-encoded text grows when
    decoded, and a row group further on may hold longer values)."""
    meta = file.metadata
    groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
    stated = max((g.total_byte_size / g.num_rows for g in groups if g.num_rows), default=1.0)
    sample_rows = max(1, min(4096, int(_SAMPLE_BYTES / max(stated, 1.0))))
    first = next(file.iter_batches(batch_size=sample_rows), None)
    measured = first.nbytes / first.num_rows if first is not None and first.num_rows else 0.0
    return max(stated, measured, 1.0)


def _release_freed_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc only).

    pyarrow parses the whole footer to tell the schema and the row groups (here, in
    ``open_input`` and for the progress estimate): for thousands of columns in many row
    groups, 10x its size on disk (118 MB for a 500 MB file), freed at once but kept by
    glibc's heap for the rest of the run. pyarrow's metadata objects refer to each
    other (a footer and its schema), so the garbage collector frees them first."""
    gc.collect()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim, or it trims by itself
        return
    trim(0)


_pool_chosen = False


def _use_releasing_pool() -> None:
    """Make Arrow allocate from jemalloc (the system allocator where pyarrow was built
    without it), once per process.

    Arrow's default, mimalloc, keeps more of what the batches freed: a normalize-only
    run on 3M rows of Parquet peaked at 473-489 MB with it, 434-453 MB with jemalloc.
    """
    global _pool_chosen
    if _pool_chosen:
        return
    _pool_chosen = True
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(0)
    except NotImplementedError:
        pa.set_memory_pool(pa.system_memory_pool())
