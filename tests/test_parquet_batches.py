"""Which reader takes a Parquet file, and that polars' slices give what pyarrow's stream
gave: every row in order, the same values and types, in batches of a bounded size."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal
from test_parquet_io import ROWS, leads, write_parquet

from pipeline.errors import InputError
from pipeline.io import parquet_batches
from pipeline.io.parquet_batches import frame_bytes, parquet_units
from pipeline.io.reader import ROW_NUMBER, iter_batches, open_input

from conftest import CliResult


def old_read(path: Path) -> pl.DataFrame:
    """What the reader always gave: pyarrow's read, converted by polars."""
    frame = pl.from_arrow(pq.read_table(path))
    assert isinstance(frame, pl.DataFrame)
    return frame


def as_frame(unit: pa.Table | pl.DataFrame) -> pl.DataFrame:
    frame = unit if isinstance(unit, pl.DataFrame) else pl.from_arrow(unit)
    assert isinstance(frame, pl.DataFrame)
    return frame


@pytest.fixture
def always_sliced(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any file is "too wide to stream", so polars slices it (where its types agree)."""
    monkeypatch.setattr(parquet_batches, "STREAM_STATE_BYTES", 0)


def wide_file(path: Path, rows: int, columns: int, group_rows: int) -> Path:
    """A phone column and ``columns`` short text and integer columns, alternating."""
    i = pl.int_range(0, rows, dtype=pl.Int64)
    phone = pl.format("(212) 555-{}", (i % 10_000).cast(pl.String).str.zfill(4))
    values = [
        (pl.format("v{}", (i * k) % 500) if k % 2 else (i * k) % 1_000).alias(f"c{k:04d}")
        for k in range(1, columns)
    ]
    frame = pl.select(phone.alias("phone"), *values)
    return write_parquet(path, frame, group_rows)


# ------------------------------------------------------------------ which reader


def test_a_narrow_file_is_streamed_by_pyarrow(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "in.parquet", leads(ROWS), ROWS)
    units = list(parquet_units(path, batch_rows=1_000))
    assert units and all(isinstance(u, pa.Table) for u in units)


def test_thousands_of_columns_are_sliced_by_polars(tmp_path: Path) -> None:
    """5,000 columns in one row group: pyarrow would hold a page and some 30 KB for each
    (over 128 MB); polars reads slices, with the types and values pyarrow gave."""
    path = wide_file(tmp_path / "wide.parquet", rows=300, columns=5_000, group_rows=300)
    units = list(parquet_units(path, batch_rows=100))
    assert all(isinstance(u, pl.DataFrame) for u in units)
    assert [u.num_rows if isinstance(u, pa.Table) else u.height for u in units] == [100] * 3
    assert_frame_equal(pl.concat(as_frame(u) for u in units), old_read(path))


# ------------------------------------------------------- slices are the old stream


@pytest.mark.usefixtures("always_sliced")
@pytest.mark.parametrize(
    ("group_rows", "extra"),
    [(37, 0), (ROWS, 0), (700, 40)],
    ids=["many-small-groups", "one-huge-group", "wide-rows"],
)
def test_slices_give_every_row_value_and_type(tmp_path: Path, group_rows: int, extra: int) -> None:
    """Nulls, NaN, empty text, unicode, dates, zoned datetimes, decimals, a category."""
    path = write_parquet(tmp_path / "in.parquet", leads(ROWS, extra), group_rows)
    units = list(parquet_units(path, batch_rows=1_000))
    assert all(isinstance(u, pl.DataFrame) for u in units)
    assert_frame_equal(pl.concat(as_frame(u) for u in units), old_read(path))


@pytest.mark.usefixtures("always_sliced")
def test_slices_hold_about_the_byte_bound(tmp_path: Path) -> None:
    """A bound far below batch_rows' worth: each slice holds about the bound, counted
    with the 16-byte view of every text value, and all rows come, in order."""
    path = write_parquet(tmp_path / "in.parquet", leads(ROWS, extra_text_columns=40), ROWS)
    bound = 1 << 20
    units = [as_frame(u) for u in parquet_units(path, batch_rows=100_000, batch_bytes=bound)]
    assert len(units) >= 5
    for unit in units:
        assert frame_bytes(unit) <= bound * 1.25
    assert_frame_equal(pl.concat(units), old_read(path))


@pytest.mark.usefixtures("always_sliced")
def test_a_slice_is_read_in_runs_of_columns_and_put_back_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Columns are fetched a run at a time (here about 1 KB of compressed data each):
    the frame has every column in the file's order, nested ones whole."""
    monkeypatch.setattr(parquet_batches, "READ_PART_BYTES", 1 << 10)
    frame = leads(2_000).with_columns(
        pairs=pl.struct(a=pl.col("id"), b=pl.col("note")),
        tags=pl.concat_list(pl.col("tier").cast(pl.String), pl.col("phone")),
    )
    path = write_parquet(tmp_path / "in.parquet", frame, 2_000)
    layout = parquet_batches._layout(path)
    assert len(layout.parts) > 3
    assert [name for part in layout.parts for name in part] == frame.columns
    units = [as_frame(u) for u in parquet_units(path, batch_rows=700)]
    assert [u.height for u in units] == [700, 700, 600]
    assert_frame_equal(pl.concat(units), old_read(path))


def test_frame_bytes_counts_the_views_of_text() -> None:
    frame = pl.DataFrame({"t": ["v123"] * 1_000, "n": list(range(1_000))})
    assert frame.estimated_size() == 4_000 + 8_000
    assert frame_bytes(frame) == 4_000 + 16 * 1_000 + 8_000


# ------------------------------------------------ types polars would read otherwise


@pytest.mark.usefixtures("always_sliced")
@pytest.mark.parametrize("kind", ["date64", "int96"])
def test_types_polars_reads_otherwise_stay_with_pyarrow(tmp_path: Path, kind: str) -> None:
    """polars reads a date64 column as a datetime, and INT96 timestamps with the zone
    and unit of the stored Arrow schema, where pyarrow (the old reader) gives a date
    and naive nanoseconds: such files are streamed, types as before."""
    day = dt.date(2024, 5, 1)
    when = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC)
    path = tmp_path / "in.parquet"
    if kind == "date64":
        table = pa.table({"phone": ["2125550123"], "d": pa.array([day], pa.date64())})
        pq.write_table(table, path)
    else:
        table = pa.table(
            {"phone": ["2125550123"], "t": pa.array([when], pa.timestamp("ms", "UTC"))}
        )
        pq.write_table(table, path, use_deprecated_int96_timestamps=True)
    layout = parquet_batches._layout(path)
    assert not parquet_batches.reads_alike(parquet_batches._scan(path), layout)
    units = list(parquet_units(path, batch_rows=1_000))
    assert all(isinstance(u, pa.Table) for u in units)
    got = pl.concat(as_frame(u) for u in units)
    assert_frame_equal(got, old_read(path))
    assert got.schema == (
        {"phone": pl.String, "d": pl.Date}
        if kind == "date64"
        else {"phone": pl.String, "t": pl.Datetime("ns")}
    )


# --------------------------------------------------------------- errors, end to end


@pytest.mark.usefixtures("always_sliced")
def test_damaged_pages_on_the_sliced_path_are_one_input_error(tmp_path: Path) -> None:
    """Bytes overwritten inside the data: the read still succeeds or fails with one
    InputError naming the file; polars' errors (a panic among them) never escape."""
    path = write_parquet(tmp_path / "in.parquet", leads(ROWS), 1_000)
    original = path.read_bytes()
    outcomes = set()
    for seed in range(30):
        data = bytearray(original)
        at = 4 + (seed * 7_919) % (len(data) - 24_000)
        width = [1, 8, 64, 4096][seed % 4]
        data[at : at + width] = bytes((seed + k) % 256 for k in range(width))
        path.write_bytes(bytes(data))
        source = open_input(path, "auto", tmp_path / "scratch")
        try:
            list(iter_batches(source, lambda f: f, batch_rows=1_000))
            outcomes.add("read")
        except InputError as exc:
            assert str(exc).startswith(f"{path}: cannot read input: "), exc
            assert "\n" not in str(exc)
            outcomes.add("refused")
        finally:
            source.close()
    assert "refused" in outcomes


def test_a_wide_file_runs_through_to_parquet_and_csv(
    tmp_path: Path, write_config: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    """A real run on 5,000 columns (sliced by polars, written by pyarrow in row groups):
    every input column comes back as it was, in order, and the phones were normalized."""
    source = wide_file(tmp_path / "wide.parquet", rows=400, columns=5_000, group_rows=150)
    expected = old_read(source)
    for name in ("out.parquet", "out.csv"):
        config = write_config(
            input={"path": str(source), "phone_column": "phone"},
            output={"path": str(tmp_path / name)},
            run={"state_dir": str(tmp_path / "state"), "batch_rows": 1_000},
        )
        result = cli("run", config)
        assert result.code == 0, result
        if name.endswith(".parquet"):
            got = pl.read_parquet(tmp_path / name)
            assert_frame_equal(got.select(expected.columns), expected)
        else:
            got = pl.read_csv(tmp_path / name, infer_schema=False)
            assert_frame_equal(got.select(expected.columns), expected.cast(pl.String))
        assert [c for c in got.columns if c in expected.columns] == expected.columns
        assert got["phone_valid"].cast(pl.String).to_list() == ["true"] * 400
    assert ROW_NUMBER not in got.columns
