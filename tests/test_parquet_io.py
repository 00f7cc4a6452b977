"""Parquet input is read in batches of a bounded size whatever its row groups, and a
normalize-only run writes every input row back as it was (order, values, types, nulls),
to Parquet (by polars or, for wide rows, by pyarrow) and to CSV."""

from __future__ import annotations

import datetime as dt
import io
import random
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from pipeline.errors import InputError
from pipeline.io.reader import ROW_NUMBER, InputFile, iter_batches, open_input

from conftest import CliResult

ROWS = 5_000


def leads(rows: int, extra_text_columns: int = 0) -> pl.DataFrame:
    """Typed columns with nulls: text (empty, unicode), numbers (NaN), dates, a category."""
    i = pl.int_range(0, rows, dtype=pl.Int64)
    columns: dict[str, pl.Expr] = {
        "id": pl.when(i % 97 == 5).then(None).otherwise(i),
        "phone": pl.when(i % 31 == 3)
        .then(None)
        .otherwise(pl.format("(212) 555-{}", (i % 10_000).cast(pl.String).str.zfill(4))),
        "score": pl.when(i % 11 == 0).then(float("nan")).otherwise(i / 7),
        "active": pl.when(i % 13 == 0).then(None).otherwise(i % 2 == 0),
        "joined": pl.date(2020, 1, 1) + pl.duration(days=i % 1_000),
        "seen": pl.datetime(2024, 5, 1, time_zone="UTC") + pl.duration(seconds=i),
        "amount": (i * 3 % 10_000).cast(pl.Decimal(10, 2)) / 100,
        "tier": pl.format("t{}", i % 4).cast(pl.Categorical),
        "note": pl.when(i % 5 == 0)
        .then(pl.lit(""))
        .when(i % 5 == 1)
        .then(None)
        .otherwise(pl.format("café ☎ {}", i)),
    }
    frame = pl.select(expr.alias(name) for name, expr in columns.items())
    if extra_text_columns:
        text = pl.format("value-{}-of-a-wide-row", pl.col("id").fill_null(-1))
        frame = frame.with_columns(text.alias(f"extra{k:03d}") for k in range(extra_text_columns))
    return frame


def write_parquet(path: Path, frame: pl.DataFrame, group_rows: int) -> Path:
    pq.write_table(frame.to_arrow(), path, row_group_size=group_rows)
    return path


def read_all(
    source: InputFile, batch_rows: int, batch_bytes: int | None = None
) -> list[pl.DataFrame]:
    bound = {} if batch_bytes is None else {"batch_bytes": batch_bytes}
    try:
        return list(iter_batches(source, lambda f: f, batch_rows, **bound))
    finally:
        source.close()


# ------------------------------------------------------------------ bounded batches


@pytest.mark.parametrize("group_rows", [37, ROWS], ids=["many-small-groups", "one-huge-group"])
def test_row_groups_are_joined_or_split_to_batch_rows(tmp_path: Path, group_rows: int) -> None:
    frame = leads(ROWS)
    path = write_parquet(tmp_path / "in.parquet", frame, group_rows)
    assert pq.read_metadata(path).num_row_groups == -(-ROWS // group_rows)
    batches = read_all(open_input(path, "auto", tmp_path / "scratch"), batch_rows=1_000)
    assert [b.height for b in batches] == [1_000] * 5
    got = pl.concat(batches)
    assert got[ROW_NUMBER].to_list() == list(range(1, ROWS + 1))
    assert_frame_equal(got.drop(ROW_NUMBER), pl.read_parquet(path))


def test_wide_rows_make_batches_of_bounded_bytes(tmp_path: Path) -> None:
    """batch_rows rows of wide rows would be far more than the byte bound: the batches
    hold fewer rows, each about the bound, and still every row in order."""
    frame = leads(ROWS, extra_text_columns=40)  # about 1.3 KB a row in Arrow
    path = write_parquet(tmp_path / "in.parquet", frame, ROWS)
    bound = 1 << 20
    batches = read_all(open_input(path, "auto", tmp_path / "scratch"), 100_000, bound)
    assert len(batches) >= 5
    for batch in batches:
        assert batch.drop(ROW_NUMBER).to_arrow().nbytes <= bound * 1.25
    assert_frame_equal(pl.concat(batches).drop(ROW_NUMBER), pl.read_parquet(path))


def test_the_default_byte_bound_applies(tmp_path: Path) -> None:
    """With the default bound (8 MB and 2 KB a column), 40,000 rows of 1.3 KB (52 MB)
    come in several batches, not in the one that batch_rows alone would allow."""
    frame = leads(40_000, extra_text_columns=40)
    path = write_parquet(tmp_path / "in.parquet", frame, 40_000)
    batches = read_all(open_input(path, "auto", tmp_path / "scratch"), batch_rows=100_000)
    assert len(batches) >= 5
    assert max(b.drop(ROW_NUMBER).to_arrow().nbytes for b in batches) <= 10 << 20
    assert sum(b.height for b in batches) == 40_000


def test_reading_holds_a_few_batches_not_the_file(tmp_path: Path) -> None:
    """Arrow memory while the file is read stays near what the batches in flight hold;
    pyarrow's default pre-buffering held every row group's columns until the end."""
    frame = leads(200_000).select("phone", "note")  # 5 MB
    path = tmp_path / "in.parquet"
    pq.write_table(frame.to_arrow(), path, row_group_size=2_500, compression="none")
    source = open_input(path, "auto", tmp_path / "scratch")
    most = 0
    for _ in iter_batches(source, lambda f: f, batch_rows=1_000, workers=1):
        most = max(most, pa.total_allocated_bytes())
    assert most < path.stat().st_size / 4, (most, path.stat().st_size)


def test_damaged_pages_are_an_input_error_naming_the_file(tmp_path: Path) -> None:
    """Bytes overwritten inside the data (the footer intact): the read either still
    succeeds or fails with one InputError that names the file; pyarrow's own errors
    (ArrowInvalid: "Index not in dictionary bounds", ...) never escape as they are."""
    path = write_parquet(tmp_path / "in.parquet", leads(ROWS), 1_000)
    original = path.read_bytes()
    outcomes = set()
    for seed in range(60):
        rnd = random.Random(seed)
        data = bytearray(original)
        at = rnd.randrange(4, len(data) - 20_000)  # the footer stays readable
        for k in range(rnd.choice([1, 8, 64, 4096])):
            data[at + k] = rnd.randrange(256)
        path.write_bytes(bytes(data))
        try:
            read_all(open_input(path, "auto", tmp_path / "scratch"), batch_rows=1_000)
            outcomes.add("read")
        except InputError as exc:
            assert str(exc).startswith(f"{path}: cannot read input: "), exc
            assert "\n" not in str(exc)
            outcomes.add("refused")
    assert outcomes == {"read", "refused"}


def test_damaged_pages_stop_the_run_with_one_line(
    tmp_path: Path, write_config: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write_parquet(tmp_path / "in.parquet", leads(ROWS), 1_000)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = bytes(4096)
    path.write_bytes(bytes(data))
    config = write_config(
        input={"path": str(path), "phone_column": "phone"},
        output={"path": str(tmp_path / "out.parquet")},
    )
    result = cli("run", config)
    assert result.code == 2, result
    assert "Traceback" not in result.err
    lines = [line for line in result.err.splitlines() if line.startswith("phone-enrich: error")]
    assert len(lines) == 1 and "in.parquet" in lines[0], result.err
    assert not (tmp_path / "out.parquet").exists()


# --------------------------------------------------------------- round trips by CLI


def run_normalize_only(
    tmp_path: Path,
    write_config: Callable[..., Path],
    cli: Callable[..., CliResult],
    source: Path,
    output: str,
) -> Path:
    out = tmp_path / output
    config = write_config(
        input={"path": str(source), "phone_column": "phone"},
        output={"path": str(out)},
        run={"state_dir": str(tmp_path / "state"), "batch_rows": 1_000},
    )
    result = cli("run", config)
    assert result.code == 0, result
    return out


LAYOUTS = [(37, 0), (ROWS, 0), (700, 40)]
LAYOUT_IDS = ["many-small-groups", "one-huge-group", "wide-rows"]


@pytest.mark.parametrize(("group_rows", "extra"), LAYOUTS, ids=LAYOUT_IDS)
def test_parquet_to_parquet_keeps_every_row(
    tmp_path: Path,
    write_config: Callable[..., Path],
    cli: Callable[..., CliResult],
    group_rows: int,
    extra: int,
) -> None:
    source = write_parquet(tmp_path / "in.parquet", leads(ROWS, extra), group_rows)
    out = run_normalize_only(tmp_path, write_config, cli, source, "out.parquet")
    expected = pl.read_parquet(source)
    got = pl.read_parquet(out)
    assert_frame_equal(got.select(expected.columns), expected)
    assert got["phone_valid"].sum() == expected["phone"].count()  # the run did normalize


@pytest.mark.parametrize(("group_rows", "extra"), LAYOUTS, ids=LAYOUT_IDS)
def test_parquet_to_csv_keeps_every_row(
    tmp_path: Path,
    write_config: Callable[..., Path],
    cli: Callable[..., CliResult],
    group_rows: int,
    extra: int,
) -> None:
    """The CSV holds each input value as polars writes it, null apart from ""."""
    frame = leads(ROWS, extra)
    source = write_parquet(tmp_path / "in.parquet", frame, group_rows)
    out = run_normalize_only(tmp_path, write_config, cli, source, "out.csv")
    expected = pl.read_csv(io.StringIO(frame.write_csv()), infer_schema=False)
    got = pl.read_csv(out, infer_schema=False).select(expected.columns)
    assert_frame_equal(got, expected)
    assert got["note"].to_list()[:3] == ["", None, "café ☎ 2"]


def test_the_fixture_has_what_the_round_trips_check() -> None:
    """Every kind of value the round trips are meant to cover is in the data."""
    frame = leads(ROWS)
    assert frame.null_count().row(0) == (52, 162, 0, 385, 0, 0, 0, 0, 1_000)
    assert frame["score"].is_nan().sum() == 455
    assert frame["amount"][1] == Decimal("0.03")
    assert frame["seen"][0] == dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    assert frame.schema["tier"] == pl.Categorical
