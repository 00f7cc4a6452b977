"""max_credits is a hard cap, under concurrency too; a later run with a higher cap
continues where the budget stopped, without paying for anything twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from enrich_helpers import EMULATOR_KEY, KEY_ENV, read_output, read_report, tcpa_config, write_leads

from pipeline.config import Config
from pipeline.emulators.server import Emulator
from pipeline.emulators.state import ProviderKnobs
from pipeline.errors import EXIT_OK, EXIT_STOPPED
from pipeline.run import run


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator({"tcpa_authority": ProviderKnobs(latency_ms=20, rate_limit=None)}) as em:
        monkeypatch.setenv(KEY_ENV, EMULATOR_KEY)
        yield em


def _phones(count: int) -> list[tuple[str, str]]:
    return [(f"{212 + i % 5}{480 + i % 7}{i:04d}"[:10], "2019-06-01") for i in range(count)]


def _capped(config: Config, cap: int) -> Config:
    return config.model_copy(update={"run": config.run.model_copy(update={"max_credits": cap})})


def _charged(emulator: Emulator) -> int:
    return int(emulator.state("tcpa_authority")["totals"]["credits"])


def test_the_cap_stops_the_run_and_a_higher_cap_continues_without_repaying(
    tmp_path: Path, emulator: Emulator
) -> None:
    source = write_leads(tmp_path / "in.csv", _phones(900))
    config = tcpa_config(tmp_path, emulator, source, batch_size=100, max_concurrency=4)
    stopped = run(_capped(config, 250))
    assert stopped.exit_code == EXIT_STOPPED
    assert _charged(emulator) == 250
    out = read_output(tmp_path / "out.csv")
    counts = dict(out["tcpa_status"].value_counts().iter_rows())
    assert counts.get("skipped_budget") == 650
    assert counts.get("hit", 0) + counts.get("no_match", 0) == 250
    skipped = out.filter(pl.col("tcpa_status") == "skipped_budget")
    assert all("budget reached" in error for error in skipped["tcpa_error"])
    report = read_report(stopped.report)
    assert report["budget"] == {"max_credits": 250, "spent": 250}
    assert report["credits_total"] == 250
    failed_rows = (stopped.report.parent / "failed_rows.csv").read_text().splitlines()
    assert len(failed_rows) == 1  # skipped rows are not failures

    resumed = run(_capped(config, 10_000))
    assert resumed.exit_code == EXIT_OK and resumed.run_id == stopped.run_id
    assert _charged(emulator) == 900  # the 650 left, nothing twice
    out = read_output(tmp_path / "out.csv")
    assert set(out["tcpa_status"]) <= {"hit", "no_match"}
    assert int(out["credits_total"].cast(pl.Int64).sum()) == 900


def test_the_cap_holds_with_16_requests_in_flight(tmp_path: Path, emulator: Emulator) -> None:
    source = write_leads(tmp_path / "in.csv", _phones(200))
    config = tcpa_config(tmp_path, emulator, source, batch_size=1, max_concurrency=16)
    summary = run(_capped(config, 37))
    assert summary.exit_code == EXIT_STOPPED
    log = emulator.state("tcpa_authority")["requests"]
    in_flight = max(
        sum(
            1
            for other in log
            if other["arrived_mono"] <= e["arrived_mono"] < other["responded_mono"]
        )
        for e in log
    )
    assert in_flight >= 8  # the cap was tested under real concurrency
    assert _charged(emulator) == 37
    out = read_output(tmp_path / "out.csv")
    assert int(out["credits_total"].cast(pl.Int64).sum()) == 37
    assert (out["tcpa_status"] == "skipped_budget").sum() == 200 - 37
