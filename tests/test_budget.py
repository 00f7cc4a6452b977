"""max_credits is a hard cap, under concurrency too; a later run with a higher cap
continues where the budget stopped, without paying for anything twice."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from enrich_helpers import (
    EMULATOR_KEY,
    KEY_ENV,
    read_output,
    read_report,
    row_credits,
    tcpa_config,
    write_leads,
)

from pipeline.config import Config
from pipeline.emulators.server import Emulator
from pipeline.emulators.state import ProviderKnobs
from pipeline.errors import EXIT_OK, EXIT_STOPPED
from pipeline.run import run
from pipeline.store.sqlite import LEDGER_FILE
from pipeline.store.sqlite_schema import MIGRATIONS

from conftest import CliResult, reports


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
    assert report["budget"] == {"max_credits": 250, "from": "run.max_credits", "spent": 250}
    assert report["credits_total"] == 250
    assert stopped.report is not None
    failed_rows = (stopped.report.parent / "failed_rows.csv").read_text().splitlines()
    assert len(failed_rows) == 1  # skipped rows are not failures

    resumed = run(_capped(config, 10_000))
    assert resumed.exit_code == EXIT_OK and resumed.run_id == stopped.run_id
    assert _charged(emulator) == 900  # the 650 left, nothing twice
    out = read_output(tmp_path / "out.csv")
    assert set(out["tcpa_status"]) <= {"hit", "no_match"}
    assert int(out["credits_total"].cast(pl.Int64).sum()) == 900


def test_the_cap_holds_with_16_requests_in_flight(tmp_path: Path, emulator: Emulator) -> None:
    # The lane sizes what it keeps in flight from rate x latency (engine/inflight.py): at
    # 20 ms an in-process emulator on a busy machine answered before 8 were out. At 150 ms
    # the rate (1,000/s) needs far more than the ceiling of 16 as soon as answers come.
    emulator.set_knobs("tcpa_authority", latency_ms=150)
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


# -- the budget is stored with the run: every session, whichever command starts it ------


def _cli_config(write_config: Callable[..., Path], tmp_path: Path, emulator: Emulator,
                **run: Any) -> Path:  # fmt: skip
    source = write_leads(tmp_path / "in.csv", _phones(900))
    return write_config(
        input={"path": str(source), "phone_column": "phone", "id_column": "id",
               "consent_date_column": "consent_date"},
        output={"path": str(tmp_path / "out.csv")},
        run={"state_dir": str(tmp_path / "state"), **run},
        **{"providers.tcpa_authority": {
            "base_url": emulator.base_url("tcpa_authority"), "batch_size": 100,
            "max_concurrency": 4, "requests_per_minute": 60_000}},
    )  # fmt: skip


def _budget_lines(out: str) -> tuple[str, str]:
    lines = out.splitlines()
    credits = next(line for line in lines if line.startswith("  credits:"))
    budget = next(line for line in lines if line.startswith("  budget:"))
    return credits, budget


def test_a_command_line_budget_holds_for_retry_and_run_until_a_new_one_replaces_it(
    cli: Callable[..., CliResult],
    write_config: Callable[..., Path],
    tmp_path: Path,
    emulator: Emulator,
) -> None:
    # The config allows far more: the flag given to the run is what holds.
    config = _cli_config(write_config, tmp_path, emulator, max_credits=100_000)
    first = cli("run", config, "--max-credits", "250")
    assert first.code == EXIT_STOPPED
    assert _charged(emulator) == 250

    again = cli("retry", config)  # was: bought the 650 left, past the budget
    assert again.code == EXIT_STOPPED
    assert _charged(emulator) == 250
    assert _budget_lines(first.out) == (
        "  credits: 250 in the rows",
        "  budget: 250 credits (--max-credits), 250 spent by this run in all its sessions",
    )
    # The lane's stop line names the cap only: what it had spent when it stopped, before
    # the requests in flight settled, disagreed with the credits line ("0 spent" here).
    assert "  tcpa_authority stopped: budget reached: max_credits 250" in first.out.splitlines()
    assert _budget_lines(again.out) == (
        "  credits: 250 in the rows",
        "  budget: 250 credits (--max-credits of an earlier session), "
        "250 spent by this run in all its sessions",
    )
    assert cli("run", config).code == EXIT_STOPPED  # a plain run: the same
    assert _charged(emulator) == 250
    [report] = reports(tmp_path / "state")  # one run, three sessions
    assert report["session"] == 3
    assert report["budget"] == {
        "max_credits": 250, "from": "--max-credits of an earlier session", "spent": 250,
    }  # fmt: skip
    assert report["credits_total"] == 250

    negative = cli("retry", config, "--max-credits", "-5")
    assert negative.code == 2
    assert (
        negative.err
        == "phone-enrich: error: --max-credits -5: expected a whole number, 0 or more\n"
    )
    raised = cli("retry", config, "--max-credits", "600")  # raising it resumes past it
    assert raised.code == EXIT_STOPPED
    assert _charged(emulator) == 600
    assert _budget_lines(raised.out) == (
        "  credits: 600 in the rows",
        "  budget: 600 credits (--max-credits), 600 spent by this run in all its sessions",
    )
    assert cli("run", config).code == EXIT_STOPPED and _charged(emulator) == 600
    assert "budget: 600 credits (--max-credits, kept for the run)" in cli("status", config).out

    done = cli("run", config, "--max-credits", "5000")
    assert done.code == EXIT_OK
    assert _charged(emulator) == 900  # nothing twice
    assert _budget_lines(done.out)[0] == "  credits: 900 in the rows"
    assert row_credits(read_output(tmp_path / "out.csv")) == 900
    [report] = reports(tmp_path / "state")
    assert report["budget"] == {"max_credits": 5000, "from": "--max-credits", "spent": 900}
    assert report["credits_total"] == 900


def test_without_a_flag_the_config_budget_holds_as_the_config_reads_now(
    cli: Callable[..., CliResult],
    write_config: Callable[..., Path],
    tmp_path: Path,
    emulator: Emulator,
) -> None:
    config = _cli_config(write_config, tmp_path, emulator, max_credits=300)
    assert cli("run", config).code == EXIT_STOPPED
    assert cli("retry", config).code == EXIT_STOPPED
    assert _charged(emulator) == 300
    # Raised in the file (the budget is not part of the job): the same run goes on.
    config = _cli_config(write_config, tmp_path, emulator, max_credits=700)
    result = cli("run", config)
    assert result.code == EXIT_STOPPED and _charged(emulator) == 700
    assert _budget_lines(result.out)[1] == (
        "  budget: 700 credits (run.max_credits), 700 spent by this run in all its sessions"
    )
    [report] = reports(tmp_path / "state")
    assert report["session"] == 3


def test_a_ledger_of_the_previous_version_opens_and_its_stopped_run_resumes(
    cli: Callable[..., CliResult],
    write_config: Callable[..., Path],
    tmp_path: Path,
    emulator: Emulator,
) -> None:
    config = _cli_config(write_config, tmp_path, emulator, max_credits=200)
    assert cli("run", config).code == EXIT_STOPPED
    # Back to schema 1 (what the previous phone-enrich wrote): no budget column (and
    # nothing of the steps after it: no sessions table, no job identity).
    ledger_path = tmp_path / "state" / LEDGER_FILE
    raw = sqlite3.connect(ledger_path)
    raw.execute("DROP TABLE sessions")
    raw.execute("ALTER TABLE runs DROP COLUMN identity")
    raw.execute("ALTER TABLE runs DROP COLUMN max_credits")
    raw.execute("PRAGMA user_version = 1")
    raw.commit()
    raw.close()

    resumed = cli("run", config, "--max-credits", "500")
    assert resumed.code == EXIT_STOPPED and _charged(emulator) == 500
    [report] = reports(tmp_path / "state")
    assert report["session"] == 2 and report["budget"]["max_credits"] == 500
    raw = sqlite3.connect(ledger_path)
    try:
        assert raw.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
        assert raw.execute("SELECT max_credits, session FROM runs").fetchall() == [(500, 2)]
    finally:
        raw.close()
