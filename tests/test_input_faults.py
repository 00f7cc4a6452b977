"""Input faults that lost or bent data silently (issue 12, items 5, 8, 9 and 10):
classic-Mac line ends, a stray CR, float phone columns that cannot hold the number,
one bad byte in a UTF-8 file, and empty CSV cells read as "" where readers see null."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from enrich_helpers import EMULATOR_KEY, KEY_ENV, read_output, tcpa_config

from pipeline.emulators.server import Emulator
from pipeline.emulators.state import ProviderKnobs
from pipeline.errors import EXIT_OK
from pipeline.run import run

from conftest import CliResult, reports


@pytest.fixture
def config_for(write_config: Callable[..., Path], tmp_path: Path) -> Callable[..., Path]:
    def make(source: Path, output: str = "out.csv", **extra: Any) -> Path:
        return write_config(
            input={"path": str(source), "phone_column": "phone", **extra},
            output={"path": str(tmp_path / output)},
        )

    return make


def one_error_line(result: CliResult) -> str:
    """The run's single error line (exit 2, no traceback)."""
    assert result.code == 2, result
    assert "Traceback" not in result.err
    (line,) = [ln for ln in result.err.splitlines() if ln.startswith("phone-enrich: error")]
    return line


def last_report(tmp_path: Path) -> dict[str, Any]:
    return reports(tmp_path / "state")[-1]


# ------------------------------------------------------ 8. inexact numeric phones


def float_leads(path: Path, phones: list[float | None], dtype: pl.DataType) -> Path:
    pl.DataFrame(
        {
            "id": [f"L{i:05d}" for i in range(1, len(phones) + 1)],
            "phone": pl.Series(phones, dtype=dtype),
            "consent_date": ["2021-02-09"] * len(phones),
        }
    ).write_parquet(path)
    return path


def test_float32_phone_column_is_inexact_not_a_neighbours_number(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], tmp_path: Path
) -> None:
    """2125550123 stored as float32 reads 2125550080: it used to come out valid."""
    source = float_leads(tmp_path / "in.parquet", [2125550123.0, 3125557788.0, None], pl.Float32)
    assert pl.read_parquet(source)["phone"].cast(pl.Int64).to_list()[0] == 2125550080
    result = cli("run", config_for(source, output="out.parquet"))
    assert result.code == 0, result.err
    out = pl.read_parquet(tmp_path / "out.parquet")
    assert out["phone_reject_reason"].to_list() == ["inexact_number", "inexact_number", "blank"]
    assert out["phone_normalized"].to_list() == [None, None, None]
    assert out["phone_valid"].to_list() == [False, False, False]
    assert last_report(tmp_path)["phones"]["reasons"] == {"inexact_number": 2, "blank": 1}


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator({"tcpa_authority": ProviderKnobs(latency_ms=0, rate_limit=None)}) as em:
        monkeypatch.setenv(KEY_ENV, EMULATOR_KEY)
        yield em


def test_inexact_numbers_are_never_sent(tmp_path: Path, emulator: Emulator) -> None:
    """float32 phones (all inexact) and a float64 past 2^53 reach no provider; the exact
    float64 phones do."""
    narrow = float_leads(tmp_path / "f32.parquet", [2027771043.0, 3125557788.0], pl.Float32)
    summary = run(tcpa_config(tmp_path, emulator, narrow, output="f32.csv", state="s1"))
    assert summary.exit_code == EXIT_OK
    state = emulator.state("tcpa_authority")
    assert state["totals"]["requests"] == 0 and state["requests"] == []
    out = read_output(tmp_path / "f32.csv")
    assert out["phone_reject_reason"].to_list() == ["inexact_number"] * 2
    assert out["tcpa_status"].to_list() == ["not_requested"] * 2

    phones = [2027771043.0, 2.0**53 + 2, 3125557788.0]
    wide = float_leads(tmp_path / "f64.parquet", phones, pl.Float64)
    summary = run(tcpa_config(tmp_path, emulator, wide, output="f64.csv", state="s2"))
    assert summary.exit_code == EXIT_OK
    state = emulator.state("tcpa_authority")
    assert sum(entry["numbers"] for entry in state["requests"]) == 2  # the exact two
    out = read_output(tmp_path / "f64.csv")
    assert out["phone_reject_reason"].to_list() == [None, "inexact_number", None]
    assert out["tcpa_status"].to_list()[1] == "not_requested"
    assert out["tcpa_status"].to_list()[0] in ("hit", "no_match")


# --------------------------------------------------- 10. empty vs null cells


def test_empty_cells_keep_what_a_reader_sees(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], tmp_path: Path
) -> None:
    """An unquoted empty field (and a short row's missing one) is null, a quoted "" is "",
    in Parquet output as polars reads the input; CSV output writes them back the same
    way. It used to turn every empty cell into "" (and write it quoted)."""
    source = tmp_path / "in.csv"
    source.write_bytes(b'id,phone,name,note\n1,,"",\n2,2125550123,Ann,""\n3,3135550123\n')
    assert cli("run", config_for(source, output="out.parquet")).code == 0
    out = pl.read_parquet(tmp_path / "out.parquet")
    seen = pl.read_csv(source, infer_schema=False)
    assert out.select(seen.columns).equals(seen)
    assert out["name"].to_list() == ["", "Ann", None]
    assert out["note"].to_list() == [None, "", None]
    assert out["phone_reject_reason"].to_list() == ["blank", None, None]

    assert cli("run", config_for(source, output="out.csv")).code == 0
    written = (tmp_path / "out.csv").read_bytes().splitlines()
    assert [line.split(b",")[:4] for line in written[1:]] == [
        [b"1", b"", b'""', b""],
        [b"2", b"2125550123", b"Ann", b'""'],
        [b"3", b"3135550123", b"", b""],
    ]
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as fh:
        assert [row[:4] for row in csv.reader(fh)][1:] == [
            ["1", "", "", ""],
            ["2", "2125550123", "Ann", ""],
            ["3", "3135550123", "", ""],
        ]
