"""Typed, consistent output columns: the providers' "true"/"false" text as Booleans, UTC
offsets as integer minutes east of UTC, when each answer was bought (kept for an
answer from the cache), and failed_rows.csv naming the row's id and phone."""

from __future__ import annotations

import csv
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pipeline.config import Config, parse_config
from pipeline.demo import DEMO_KEY
from pipeline.emulators import Emulator, ProviderKnobs
from pipeline.emulators.checkthatphone import answer as ctp_answer
from pipeline.errors import EXIT_LOOKUPS_FAILED, EXIT_OK
from pipeline.run import run

# 818 is Glendale (Los Angeles time) to both emulators; 8182925409 is CheckThatPhone's
# documented example, 7075276405 TCPA Authority's. 709 is Newfoundland (UTC-3:30).
PHONES = ["8182925409", "7075276405", "7092345678"]
CTP_FLAGS = [
    "ctp_deliverable", "ctp_lookup_error", "ctp_black_list", "ctp_dip_ported",
    "ctp_dip_messaging_lookup", "ctp_dip_messaging_enabled", "ctp_litigator",
]  # fmt: skip
NAMES = ("tcpa_authority", "checkthatphone")


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("DNCSCRUB_LOGIN_ID", "CHECKTHATPHONE_API_KEY", "PHONE_ENRICHMENT_API_KEY"):
        monkeypatch.setenv(variable, DEMO_KEY)


def _input(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["id", "phone", "consent", "email"], *rows])
    return path


def _config(
    tmp_path: Path, emulator: Emulator, source: Path, output: str, **providers: dict[str, Any]
) -> Config:
    return parse_config(
        {
            "input": {
                "path": str(source),
                "phone_column": "phone",
                "id_column": "id",
                "consent_date_column": "consent",
            },
            "output": {"path": str(tmp_path / output)},
            "run": {"state_dir": str(tmp_path / "state")},
            "providers": {
                name: {"base_url": emulator.base_url(name), **settings}
                for name, settings in providers.items()
            },
        },
        "test config",
    )


def _checkers(**tcpa: Any) -> dict[str, dict[str, Any]]:
    return {
        "tcpa_authority": tcpa,
        "checkthatphone": {"litigator_filter": True, "landline_sms_lookup": True},
    }


def _fast(*names: str, **knobs: Any) -> dict[str, ProviderKnobs]:
    return {name: ProviderKnobs(latency_ms=0, rate_limit=None, **knobs) for name in names}


def test_flags_offsets_and_checked_at_are_typed_in_parquet_and_csv(tmp_path: Path) -> None:
    source = _input(tmp_path / "in.csv", [[f"R{i}", p, "2021-02-09", ""] for i, p in
                                          enumerate(PHONES)])  # fmt: skip
    before = datetime.now(UTC).replace(microsecond=0)
    with Emulator(_fast(*NAMES)) as emulator:
        for output in ("out.parquet", "out.csv"):
            config = _config(tmp_path, emulator, source, output, **_checkers())
            assert run(config, force=True).exit_code == EXIT_OK
    after = datetime.now(UTC)

    parquet = pl.read_parquet(tmp_path / "out.parquet")
    schema = parquet.schema
    for column in [*CTP_FLAGS, "tcpa_is_reassigned", "tcpa_is_valid"]:
        assert schema[column] == pl.Boolean, column
    assert schema["ctp_utc_offset"] == schema["tcpa_utc_offset"] == pl.Int64
    for column in ("ctp_checked_at", "tcpa_checked_at"):
        assert schema[column] == pl.Datetime("ms", "UTC"), column
        assert all(before <= when <= after for when in parquet[column]), column
    assert "ctp_tz_offset" not in schema

    example = parquet.row(0, named=True)  # CheckThatPhone's documented example
    assert (example["ctp_deliverable"], example["ctp_dip_ported"]) == (True, False)
    assert example["ctp_litigator"] is False and example["ctp_lookup_error"] is False
    assert example["ctp_dip_messaging_lookup"] is False  # a mobile: the add-on did not apply
    # tzOffset is documented in hours (8 for Los Angeles); minutes east of UTC, as TCPA's
    # UTCOffset ("-420" in its documented example).
    sent = [ctp_answer(phone, None, True, True)["tzOffset"] for phone in PHONES]
    assert sent[0] == 8 and sent[2] == 3.5
    assert parquet["ctp_utc_offset"].to_list() == [round(-60 * hours) for hours in sent]
    assert parquet["tcpa_utc_offset"][1] == -420
    assert parquet["tcpa_utc_offset"][2] == -150  # Newfoundland, half an hour off
    assert parquet.row(1, named=True)["tcpa_is_reassigned"] is False  # TCPA's example

    text = pl.read_csv(tmp_path / "out.csv", infer_schema=False)
    for column in [*CTP_FLAGS, "tcpa_is_valid"]:
        assert set(text[column].drop_nulls()) <= {"true", "false"}, column
    assert text["ctp_deliverable"][0] == "true" and text["ctp_dip_ported"][0] == "false"
    assert text["ctp_utc_offset"][0] == "-480" and text["ctp_utc_offset"][2] == "-210"
    checked = text["ctp_checked_at"].str.to_datetime(time_zone="UTC")
    # The CSV run answered from the Parquet run's purchase: the same moment, to the ms.
    assert checked.to_list() == parquet["ctp_checked_at"].to_list()
    assert set(text["ctp_credits"]) == {"0"}


def test_an_answer_from_the_cache_keeps_when_it_was_bought(tmp_path: Path) -> None:
    source = _input(tmp_path / "in.csv", [["R1", PHONES[0], "2021-02-09", ""]])
    with Emulator(_fast(*NAMES)) as emulator:
        first = run(_config(tmp_path, emulator, source, "first.parquet", **_checkers()))
        time.sleep(0.05)
        second_started = datetime.now(UTC)
        second = run(_config(tmp_path, emulator, source, "second.parquet", **_checkers()))
        charged = sum(emulator.state("checkthatphone")["charged"].values())
    assert first.exit_code == second.exit_code == EXIT_OK and first.run_id != second.run_id
    bought = pl.read_parquet(tmp_path / "first.parquet").row(0, named=True)
    reused = pl.read_parquet(tmp_path / "second.parquet").row(0, named=True)
    assert reused["ctp_credits"] == 0 and charged == bought["ctp_credits"] > 0
    for p in ("ctp", "tcpa"):
        assert reused[f"{p}_checked_at"] == bought[f"{p}_checked_at"] < second_started, p


def test_checked_at_is_empty_without_an_answer(tmp_path: Path) -> None:
    source = _input(tmp_path / "in.csv", [["R1", PHONES[0], "", ""], ["R2", "", "", ""]])
    with Emulator(_fast(*NAMES)) as emulator:
        assert run(_config(tmp_path, emulator, source, "out.parquet", **_checkers())).exit_code == 0
    out = pl.read_parquet(tmp_path / "out.parquet")
    assert out["tcpa_status"].to_list() == ["invalid_input", "not_requested"]  # no date, phone
    assert out["tcpa_checked_at"].to_list() == [None, None]
    assert out["ctp_checked_at"][0] is not None and out["ctp_checked_at"][1] is None


def test_failed_rows_name_the_rows_id_and_phone(tmp_path: Path) -> None:
    source = _input(
        tmp_path / "in.csv",
        [
            ["R1", "(818) 292-5409", "2021-02-09", ""],
            ["R2", "(212) 1", "2021-02-09", "ada@example.com"],
        ],
    )
    names = ("checkthatphone", "phone_enrichment")
    with Emulator(_fast(*names, fail_5xx=1.0)) as emulator:
        config = _config(
            tmp_path, emulator, source, "out.csv",
            checkthatphone={"max_attempts": 1},
            phone_enrichment={"max_attempts": 1},
        )  # fmt: skip
        summary = run(config)
    assert summary.exit_code == EXIT_LOOKUPS_FAILED
    assert summary.failed_rows is not None
    with open(summary.failed_rows, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted((r["row_number"], r["id"], r["phone"], r["provider"]) for r in rows) == [
        ("1", "R1", "+18182925409", "checkthatphone"),
        ("2", "R2", "(212) 1", "phone_enrichment"),  # no valid phone: the input's text
    ]
    assert all(r["row_trace_id"] and r["error"] and r["status"] == "failed" for r in rows)
