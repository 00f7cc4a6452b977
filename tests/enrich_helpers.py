"""Shared helpers for runs against the emulators: inputs, configs, reading outputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.config import Config, parse_config
from pipeline.emulators.server import Emulator

KEY_ENV = "DNCSCRUB_LOGIN_ID"
EMULATOR_KEY = "emulator-key"


def write_leads(path: Path, rows: list[tuple[str, str]]) -> Path:
    """A CSV of (phone, consent_date) rows with an ``id`` column."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "phone", "consent_date"])
        for number, (phone, when) in enumerate(rows, 1):
            writer.writerow([f"L{number:05d}", phone, when])
    return path


def tcpa_config(
    tmp_path: Path,
    emulator: Emulator,
    source: Path,
    *,
    output: str = "out.csv",
    state: str = "state",
    **tcpa: Any,
) -> Config:
    settings: dict[str, Any] = {
        "base_url": emulator.base_url("tcpa_authority"),
        "requests_per_minute": 60_000,
        "max_concurrency": 4,
        "timeout_s": 5,
    }
    settings.update(tcpa)
    return parse_config(
        {
            "input": {
                "path": str(source),
                "phone_column": "phone",
                "id_column": "id",
                "consent_date_column": "consent_date",
            },
            "output": {"path": str(tmp_path / output)},
            "run": {"state_dir": str(tmp_path / state)},
            "providers": {"tcpa_authority": settings},
        },
        "test config",
    )


def read_output(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False)


def read_report(report: Path | None) -> dict[str, Any]:
    assert report is not None
    loaded: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    return loaded


def row_credits(frame: pl.DataFrame) -> int:
    return int(frame["credits_total"].cast(pl.Int64).sum())
