"""Requests that got no answer may still have been charged: the report and the summary
count them per provider (``unanswered_requests``, their numbers, and the credits they may
have cost at the provider's highest price), beside the rows' credits, which stay what the
answers that arrived cost. Checked against what the emulator says it charged."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from enrich_helpers import EMULATOR_KEY, KEY_ENV, read_output, row_credits, write_leads

from pipeline.emulators.server import Emulator
from pipeline.emulators.state import ProviderKnobs
from pipeline.errors import EXIT_LOOKUPS_FAILED, EXIT_OK

from conftest import CliResult, reports

PRICE = 2  # credits per number, here and in the emulator: the 262 for 131


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    knobs = ProviderKnobs(latency_ms=0, rate_limit=None, credits_per_number=PRICE)
    with Emulator({"tcpa_authority": knobs}) as em:
        monkeypatch.setenv(KEY_ENV, EMULATOR_KEY)
        yield em


def _config(write_config: Callable[..., Path], tmp_path: Path, emulator: Emulator, rows: int,
            **tcpa: Any) -> Path:  # fmt: skip
    phones = [(f"{212 + i % 5}{480 + i % 7}{i:04d}"[:10], "2019-06-01") for i in range(rows)]
    source = write_leads(tmp_path / "in.csv", phones)
    return write_config(
        input={"path": str(source), "phone_column": "phone", "id_column": "id",
               "consent_date_column": "consent_date"},
        output={"path": str(tmp_path / "out.csv")},
        **{"providers.tcpa_authority": {
            "base_url": emulator.base_url("tcpa_authority"), "batch_size": 10,
            "requests_per_minute": 60_000, "timeout_s": 0.3, "credits_per_number": PRICE,
            **tcpa}},
    )  # fmt: skip


def _emulator_done(emulator: Emulator, requests: int) -> dict[str, Any]:
    """The emulator's totals once it has logged ``requests`` (a late answer is logged when
    it is sent, after the client stopped waiting)."""
    deadline = time.monotonic() + 30
    while True:
        totals: dict[str, Any] = emulator.state("tcpa_authority")["totals"]
        if totals["requests"] >= requests or time.monotonic() > deadline:
            return totals
        time.sleep(0.05)


def test_requests_that_timed_out_but_were_charged_are_reported(
    cli: Callable[..., CliResult],
    write_config: Callable[..., Path],
    tmp_path: Path,
    emulator: Emulator,
) -> None:
    # The provider answers (and charges) after 0.7 s; we wait 0.3 s: every request is
    # paid for and never answered, twice (two attempts).
    emulator.set_knobs("tcpa_authority", latency_ms=700)
    config = _config(write_config, tmp_path, emulator, 60, max_concurrency=6, max_attempts=2)
    result = cli("run", config)
    assert result.code == EXIT_LOOKUPS_FAILED
    totals = _emulator_done(emulator, 12)
    assert totals["requests"] == 12 and totals["credits"] == 12 * 10 * PRICE

    [report] = reports(tmp_path / "state")
    figures = report["providers"]["tcpa_authority"]
    assert figures["unanswered_requests"] == 12  # was 0
    assert figures["unanswered_numbers"] == 120
    assert figures["credits_possibly_charged"] == 240 == totals["credits"]
    assert figures["credits"] == 0 == report["credits_total"]  # on no row
    assert row_credits(read_output(tmp_path / "out.csv")) == 0
    assert (
        "  tcpa_authority: 12 requests got no answer (120 numbers): up to 240 credits may "
        "have been charged for them" in result.out.splitlines()
    )
    assert (
        "  credits: 0 in the rows (+ up to 240 possibly charged for requests that got no "
        "answer)" in result.out.splitlines()
    )
    assert "12 unanswered (120 numbers)" in cli("status", config).out


def test_hung_requests_count_as_unanswered_and_rows_keep_what_answers_cost(
    cli: Callable[..., CliResult],
    write_config: Callable[..., Path],
    tmp_path: Path,
    emulator: Emulator,
) -> None:
    # The emulator's timeout fault: it says nothing for hang_s, then drops the
    # connection (and charges nothing); the retry is answered.
    emulator.set_knobs("tcpa_authority", hang_s=1.0)
    emulator.queue_faults("tcpa_authority", ["timeout"] * 3)
    config = _config(write_config, tmp_path, emulator, 100, max_concurrency=1, max_attempts=3)
    result = cli("run", config)
    assert result.code == EXIT_OK
    totals = _emulator_done(emulator, 13)
    assert totals["requests"] == 13 and totals["credits"] == 100 * PRICE

    [report] = reports(tmp_path / "state")
    figures = report["providers"]["tcpa_authority"]
    assert figures["unanswered_requests"] == 3
    assert figures["unanswered_numbers"] == 30
    assert figures["credits_possibly_charged"] == 60
    assert figures["credits"] == report["credits_total"] == 200 == totals["credits"]
    assert row_credits(read_output(tmp_path / "out.csv")) == 200
    # What the provider charged beyond the rows is within what the report allows for.
    assert totals["credits"] - figures["credits"] <= figures["credits_possibly_charged"]
    assert "  credits: 200 in the rows (+ up to 60 possibly charged" in result.out


def test_the_budget_counts_what_requests_with_no_answer_may_have_cost(
    cli: Callable[..., CliResult],
    write_config: Callable[..., Path],
    tmp_path: Path,
    emulator: Emulator,
) -> None:
    # Every request is charged (20 credits) and never answered in time: were its
    # reservation given back, the lane would buy on past the cap at the provider's cost.
    emulator.set_knobs("tcpa_authority", latency_ms=700)
    config = _config(write_config, tmp_path, emulator, 60, max_concurrency=2, max_attempts=3)
    result = cli("run", config, "--max-credits", "100")
    assert result.code == 3, result.err
    time.sleep(1.0)  # the late answers of the last requests reach the emulator's log
    charged = emulator.state("tcpa_authority")["totals"]["credits"]
    assert 0 < charged <= 100
    [report] = reports(tmp_path / "state")
    assert (
        report["budget"]["spent"]
        == report["providers"]["tcpa_authority"]["credits_possibly_charged"]
    )
    assert report["budget"]["spent"] <= 100

    # The resume starts from what is held, so the cap still holds across sessions.
    again = cli("run", config, "--max-credits", "140")
    assert again.code == 3, again.err
    time.sleep(1.0)
    assert emulator.state("tcpa_authority")["totals"]["credits"] <= 140
