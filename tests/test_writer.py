"""The atomic writer and the formula guard, driven directly."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from pipeline.errors import OutputError
from pipeline.io.writer import formula_safe, write_batches

SCHEMA = pl.Schema({"a": pl.String, "n": pl.Int64})


def frames(count: int, fail_at: int | None = None) -> Iterator[pl.DataFrame]:
    for i in range(count):
        if i == fail_at:
            raise RuntimeError(f"producer failed at batch {i}")
        yield pl.DataFrame({"a": [f"row{i}"], "n": [i]}, schema=SCHEMA)


@pytest.mark.parametrize("name", ["out.csv", "out.parquet"])
def test_batches_land_in_order(tmp_path: Path, name: str) -> None:
    path = tmp_path / "sub" / name
    write_batches(path, SCHEMA, lambda: frames(5))
    read = pl.read_csv(path) if name.endswith(".csv") else pl.read_parquet(path)
    assert read["n"].to_list() == [0, 1, 2, 3, 4]
    assert read["a"].to_list() == [f"row{i}" for i in range(5)]
    assert [p.name for p in path.parent.iterdir()] == [name]


@pytest.mark.parametrize("name", ["out.csv", "out.parquet"])
def test_a_failing_producer_leaves_no_output_and_its_own_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("old")
    with pytest.raises(RuntimeError, match="producer failed at batch 3"):
        write_batches(path, SCHEMA, lambda: frames(5, fail_at=3))
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == [name]


@pytest.mark.parametrize("name", ["out.csv", "out.parquet"])
def test_a_producer_failing_before_its_first_batch_leaves_no_temp_file(
    tmp_path: Path, name: str
) -> None:
    """polars' sinks create their file on a task of their own, which can finish after
    the sink has raised (then after the temp file was removed): about 1 in 10 failures
    right at the start left a temp file behind. No sink starts before a first batch."""
    for attempt in range(100):
        path = tmp_path / f"{attempt}-{name}"
        with pytest.raises(RuntimeError, match="producer failed at batch 0"):
            write_batches(path, SCHEMA, lambda: frames(5, fail_at=0))
    time.sleep(0.1)  # what a late task would have created by now
    assert list(tmp_path.iterdir()) == []


def test_unknown_extension_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"\.csv or \.parquet"):
        write_batches(tmp_path / "out.xlsx", SCHEMA, lambda: frames(1))


def test_formula_guard() -> None:
    values = [
        "=SUM(A1)",
        "+cmd|' /C calc'!A0",
        "-2+3",
        "@x",
        "\tx",
        "+12125550123",
        "-5",
        "ok",
        None,
    ]
    guarded = pl.DataFrame({"t": values}).select(formula_safe("t"))["t"].to_list()
    assert guarded == [
        "'=SUM(A1)",
        "'+cmd|' /C calc'!A0",
        "'-2+3",
        "'@x",
        "'\tx",
        "+12125550123",
        "-5",
        "ok",
        None,
    ]


def test_guarded_columns_in_csv_only(tmp_path: Path) -> None:
    schema = pl.Schema({"mine": pl.String, "theirs": pl.String})

    def batch() -> Iterator[pl.DataFrame]:
        yield pl.DataFrame({"mine": ["=1+1"], "theirs": ["=2+2"]}, schema=schema)

    write_batches(tmp_path / "o.csv", schema, batch, safe_columns=("theirs",))
    assert pl.read_csv(tmp_path / "o.csv").row(0) == ("=1+1", "'=2+2")
    write_batches(tmp_path / "o.parquet", schema, batch, safe_columns=("theirs",))
    assert pl.read_parquet(tmp_path / "o.parquet").row(0) == ("=1+1", "=2+2")


# ------------------------------------------------------- wide rows: pyarrow row groups


def wide_frames(count: int, rows: int, columns: int = 60) -> Iterator[pl.DataFrame]:
    """Frames of typed columns plus ``columns`` text columns of 30 characters."""
    for b in range(count):
        i = pl.int_range(b * rows, (b + 1) * rows, dtype=pl.Int64)
        yield pl.select(
            pl.when(i % 7 == 0).then(None).otherwise(i).alias("n"),
            (pl.date(2024, 1, 1) + pl.duration(days=i % 365)).alias("day"),
            pl.format("t{}", i % 3).cast(pl.Categorical).alias("tier"),
            *(
                pl.format("row {} column {} ..........", i, k).alias(f"w{k:02d}")
                for k in range(columns)
            ),
        )


def test_wide_rows_are_written_in_row_groups_of_about_the_bound(tmp_path: Path) -> None:
    """Rows so wide that polars' 120,000-row groups would hold far more than the bound
    (one group for the whole file, held until the end) go out in bounded row groups,
    every row and type as it was."""
    schema = next(wide_frames(1, 1)).schema
    path = tmp_path / "out.parquet"
    bound = 1 << 20  # 100 rows are about 0.3 MB in Arrow
    write_batches(path, schema, lambda: wide_frames(30, 100), row_group_bytes=bound)
    meta = pq.read_metadata(path)
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sum(sizes) == 3_000
    assert len(sizes) >= 5
    assert max(sizes) <= 500
    assert_frame_equal(pl.read_parquet(path), pl.concat(wide_frames(30, 100)))
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]


def test_one_batch_larger_than_the_bound_is_split_in_even_groups(tmp_path: Path) -> None:
    schema = next(wide_frames(1, 1)).schema
    path = tmp_path / "out.parquet"
    write_batches(path, schema, lambda: wide_frames(1, 2_000), row_group_bytes=1 << 20)
    meta = pq.read_metadata(path)
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sum(sizes) == 2_000 and len(sizes) >= 4
    assert max(sizes) - min(sizes) <= 1  # no stub group at the end
    assert_frame_equal(pl.read_parquet(path), next(wide_frames(1, 2_000)))


def test_a_failing_producer_leaves_no_output_on_the_row_group_path(tmp_path: Path) -> None:
    """The pyarrow path (any row is "wide" against a 1-byte bound) keeps the contract:
    no file, the old output untouched, the producer's own error (an OSError stays one)."""
    path = tmp_path / "out.parquet"
    path.write_text("old")

    def failing() -> Iterator[pl.DataFrame]:
        yield from frames(3)
        raise FileNotFoundError("the producer's own error")

    with pytest.raises(FileNotFoundError, match="the producer's own error"):
        write_batches(path, SCHEMA, failing, row_group_bytes=1)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]


@pytest.mark.parametrize("row_group_bytes", [1, 64 << 20], ids=["pyarrow", "polars"])
def test_no_batches_make_an_empty_file_with_the_schema(
    tmp_path: Path, row_group_bytes: int
) -> None:
    path = tmp_path / "out.parquet"
    write_batches(path, SCHEMA, lambda: frames(0), row_group_bytes=row_group_bytes)
    read = pl.read_parquet(path)
    assert read.height == 0 and read.schema == SCHEMA
