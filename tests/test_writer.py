"""The atomic writer and the formula guard, driven directly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

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
