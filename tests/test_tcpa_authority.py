"""TCPA Authority end to end against its emulator: every status code the API documents,
what lands in the output, and credits reconciled against the emulator's ledger."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
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
from hypothesis import given
from hypothesis import strategies as st

from pipeline.emulators.server import Emulator
from pipeline.emulators.state import ProviderKnobs
from pipeline.errors import EXIT_LOOKUPS_FAILED, EXIT_OK, EXIT_STOPPED
from pipeline.provider_config import TcpaAuthoritySettings
from pipeline.providers.tcpa_authority import TcpaAuthority
from pipeline.run import run
from pipeline.store.sqlite import SqliteStore

NUMBERS = [
    "2027771043",
    "3125557788",
    "4158830123",
    "6479165010",
    "7075276405",
    "9174421234",
    "5036610111",
    "6179870987",
]


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    knobs = ProviderKnobs(latency_ms=0, rate_limit=None)
    with Emulator({"tcpa_authority": knobs}) as em:
        monkeypatch.setenv(KEY_ENV, EMULATOR_KEY)
        yield em


def _get(emulator: Emulator, phone: str, when: str) -> dict[str, object]:
    url = emulator.base_url("tcpa_authority") + "/Data/TCPAAuthority"
    response = httpx.get(
        url, params={"phoneNumber": phone, "date": when}, headers={"loginId": EMULATOR_KEY}
    )
    assert response.status_code == 200
    answer: dict[str, object] = response.json()
    return answer


def _charged(emulator: Emulator) -> int:
    return int(emulator.state("tcpa_authority")["totals"]["credits"])


def test_answers_land_on_every_row_with_credits_on_the_first(
    tmp_path: Path, emulator: Emulator
) -> None:
    rows = [
        ("(202) 777-1043", "02/09/2021"),
        ("312.555.7788", "2019-05-01"),
        ("+1 202 777 1043", "20210209"),  # same key as row 1: a duplicate
        ("202-777-1043", "01/01/15"),  # same number, another date: another lookup
        ("not a phone", "2020-01-01"),
        ("7075276405", ""),  # valid, but no consent date and no default
        ("4158830123", "12/31/2099"),  # a consent date in the future
    ]
    source = write_leads(tmp_path / "in.csv", rows)
    summary = run(tcpa_config(tmp_path, emulator, source, batch_size=1000))
    assert summary.exit_code == EXIT_OK
    out = read_output(tmp_path / "out.csv")
    assert out["tcpa_status"].to_list()[4:] == ["not_requested", "invalid_input", "invalid_input"]
    assert "consent date" in out["tcpa_error"][5] and "future" in out["tcpa_error"][6]
    assert out["tcpa_consent_date"].to_list()[:4] == [
        "2021-02-09",
        "2019-05-01",
        "2021-02-09",
        "2015-01-01",
    ]
    log = emulator.state("tcpa_authority")["requests"]
    assert [entry["request_id"] for entry in log] == [out["tcpa_request_id"][0]]
    assert log[0]["numbers"] == 3
    charged = _charged(emulator)
    for index in range(4):
        row = out.row(index, named=True)
        expected = _get(emulator, row["phone_normalized"], row["tcpa_consent_date"])
        assert row["tcpa_status"] == ("no_match" if expected["IsReassigned"] is None else "hit")
        assert row["tcpa_phone_number"] == expected["PhoneNumber"]
        assert row["tcpa_carrier"].lstrip("'") == expected["Carrier"]
        assert row["tcpa_line_type"] == expected["LineType"]
        assert row["tcpa_tz"] == expected["TZ"]
        assert row["tcpa_utc_offset"] == expected["UTCOffset"]
        reassigned = expected["IsReassigned"]
        shown = None if reassigned is None else str(reassigned).lower()
        assert row["tcpa_is_reassigned"] == shown
    assert out["tcpa_credits"].to_list() == ["1", "1", "0", "1", "0", "0", "0"]
    assert out["tcpa_request_id"][0] == out["tcpa_request_id"][2]
    report = read_report(summary.report)
    tcpa = report["providers"]["tcpa_authority"]
    assert (tcpa["requests"], tcpa["numbers"], tcpa["credits"]) == (1, 3, 3)
    assert tcpa["duplicate_rows"] == 1 and tcpa["cache_hits"] == 0
    assert tcpa["peak_in_flight"] == 1  # one request: what a kill -9 could have cost
    assert row_credits(out) == report["credits_total"] == charged == 3


def test_documented_example_number(tmp_path: Path, emulator: Emulator) -> None:
    source = write_leads(tmp_path / "in.csv", [("707-527-6405", "02/09/2021")])
    assert run(tcpa_config(tmp_path, emulator, source)).exit_code == EXIT_OK
    row = read_output(tmp_path / "out.csv").row(0, named=True)
    assert row["tcpa_is_reassigned"] == "false" and row["tcpa_is_valid"] == "true"
    assert (row["tcpa_line_type"], row["tcpa_carrier"]) == ("Landline", "AT&T California")
    assert (row["tcpa_locale"], row["tcpa_region"], row["tcpa_country"]) == (
        "Santa Rosa",
        "CA",
        "US",
    )
    assert (row["tcpa_tz"], row["tcpa_utc_offset"]) == ("America/Los_Angeles", "-420")


def test_http_400_splits_the_batch_until_the_bad_numbers_stand_alone(
    tmp_path: Path, emulator: Emulator
) -> None:
    # 212-555-01xx is the range reserved for fiction: valid to libphonenumber,
    # refused by the provider with a 400 for the whole batch.
    phones = [*NUMBERS[:3], "2125550150", *NUMBERS[3:6], "3125550199", *NUMBERS[6:]]
    source = write_leads(tmp_path / "in.csv", [(p, "2020-06-01") for p in phones])
    summary = run(tcpa_config(tmp_path, emulator, source, batch_size=1000))
    assert summary.exit_code == EXIT_OK
    out = read_output(tmp_path / "out.csv")
    refused = out.filter(pl.col("tcpa_status") == "invalid_input")
    assert refused["phone_normalized"].to_list() == ["2125550150", "3125550199"]
    assert all("HTTP 400" in error for error in refused["tcpa_error"])
    assert refused["tcpa_credits"].to_list() == ["0", "0"]
    assert out.filter(pl.col("tcpa_status").is_in(["hit", "no_match"])).height == len(NUMBERS)
    statuses = emulator.state("tcpa_authority")["totals"]["by_status"]
    assert statuses["400"] >= 3 and statuses["200"] >= 2
    report = read_report(summary.report)
    assert row_credits(out) == report["credits_total"] == _charged(emulator) == len(NUMBERS)
    assert report["providers"]["tcpa_authority"]["invalid_input"] == 2


@pytest.mark.parametrize(
    ("setup", "status"),
    [
        ("unknown key", 401),
        ("not authorised", 403),
        ("out of credits", 403),
    ],
)
def test_refused_key_stops_the_run_with_exit_3_and_resumes_once_fixed(
    tmp_path: Path,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    setup: str,
    status: int,
) -> None:
    if setup == "unknown key":
        monkeypatch.setenv(KEY_ENV, "not-a-key")
    elif setup == "not authorised":
        emulator.set_knobs("tcpa_authority", unauthorised_keys={EMULATOR_KEY})
    else:
        emulator.set_knobs("tcpa_authority", keys={EMULATOR_KEY: 2})
    source = write_leads(tmp_path / "in.csv", [(p, "2020-06-01") for p in NUMBERS])
    config = tcpa_config(tmp_path, emulator, source, batch_size=4, max_concurrency=1)
    stopped = run(config)
    assert stopped.exit_code == EXIT_STOPPED
    out = read_output(tmp_path / "out.csv")
    assert set(out["tcpa_status"]) == {"failed"}
    assert all(f"HTTP {status}" in error for error in out["tcpa_error"])
    assert _charged(emulator) == 0
    report = read_report(stopped.report)
    assert report["exit_code"] == EXIT_STOPPED
    assert f"HTTP {status}" in report["providers"]["tcpa_authority"]["stopped"]
    assert stopped.report is not None
    failed_rows = (stopped.report.parent / "failed_rows.csv").read_text().splitlines()
    assert len(failed_rows) == 1 + len(NUMBERS)

    monkeypatch.setenv(KEY_ENV, EMULATOR_KEY)
    emulator.set_knobs("tcpa_authority", unauthorised_keys=set(), keys={EMULATOR_KEY: None})
    resumed = run(config)
    assert resumed.exit_code == EXIT_OK
    assert resumed.run_id == stopped.run_id and resumed.session == 2
    out = read_output(tmp_path / "out.csv")
    assert set(out["tcpa_status"]) <= {"hit", "no_match"}
    assert row_credits(out) == _charged(emulator) == len(NUMBERS)


def test_transient_faults_are_retried_and_never_paid(tmp_path: Path, emulator: Emulator) -> None:
    emulator.queue_faults("tcpa_authority", [500, "malformed", 503, "timeout"])
    emulator.set_knobs("tcpa_authority", hang_s=2.0)
    source = write_leads(tmp_path / "in.csv", [(p, "2020-06-01") for p in NUMBERS])
    config = tcpa_config(
        tmp_path, emulator, source, batch_size=1000, timeout_s=0.3, max_concurrency=1
    )
    summary = run(config)
    assert summary.exit_code == EXIT_OK
    out = read_output(tmp_path / "out.csv")
    assert set(out["tcpa_status"]) <= {"hit", "no_match"}
    totals = read_report(summary.report)["providers"]["tcpa_authority"]
    assert (totals["requests"], totals["retries"], totals["numbers"]) == (5, 4, len(NUMBERS))
    deadline = time.monotonic() + 5  # the hung request is logged when its hang ends
    while len(log := emulator.state("tcpa_authority")["requests"]) < 5:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    log.sort(key=lambda entry: entry["arrived_mono"])
    assert [entry["fault"] for entry in log] == ["500", "malformed", "503", "timeout", None]
    answered = [entry for entry in log if entry["status"] == 200 and entry["fault"] is None]
    assert [entry["request_id"] for entry in answered] == [out["tcpa_request_id"][0]]
    assert len({entry["request_id"] for entry in log}) == len(log)  # one id per attempt
    assert row_credits(out) == _charged(emulator) == len(NUMBERS)


def test_429_honours_retry_after(tmp_path: Path, emulator: Emulator) -> None:
    emulator.queue_faults("tcpa_authority", [429])  # answered with Retry-After: 1
    source = write_leads(tmp_path / "in.csv", [(p, "2020-06-01") for p in NUMBERS])
    summary = run(tcpa_config(tmp_path, emulator, source, max_concurrency=1))
    assert summary.exit_code == EXIT_OK
    log = emulator.state("tcpa_authority")["requests"]
    assert [entry["status"] for entry in log] == [429, 200]
    assert log[1]["arrived_mono"] - log[0]["responded_mono"] >= 0.95
    assert read_report(summary.report)["providers"]["tcpa_authority"]["http_429"] == 1


def test_gives_up_after_max_attempts_and_exits_1(tmp_path: Path, emulator: Emulator) -> None:
    emulator.queue_faults("tcpa_authority", [500, 502])
    source = write_leads(tmp_path / "in.csv", [(p, "2020-06-01") for p in NUMBERS])
    summary = run(tcpa_config(tmp_path, emulator, source, max_attempts=2))
    assert summary.exit_code == EXIT_LOOKUPS_FAILED
    out = read_output(tmp_path / "out.csv")
    assert set(out["tcpa_status"]) == {"failed"}
    assert all("gave up after 2 attempts" in e and "502" in e for e in out["tcpa_error"])
    assert summary.failed_rows is not None
    lines = summary.failed_rows.read_text().splitlines()
    assert lines[0] == "row_trace_id,row_number,id,phone,provider,status,error"
    assert [line.split(",")[1:6] for line in lines[1:]] == [
        [str(n), f"L{n:05d}", f"+1{phone}", "tcpa_authority", "failed"]
        for n, phone in enumerate(NUMBERS, 1)
    ]
    assert _charged(emulator) == 0 and row_credits(out) == 0

    again = run(tcpa_config(tmp_path, emulator, source, max_attempts=2))
    assert again.exit_code == EXIT_OK and again.run_id != summary.run_id
    assert row_credits(read_output(tmp_path / "out.csv")) == _charged(emulator) == len(NUMBERS)


def test_sandbox_sends_usesandbox_costs_nothing_and_is_never_reused_live(
    tmp_path: Path, emulator: Emulator
) -> None:
    source = write_leads(tmp_path / "in.csv", [(p, "2020-06-01") for p in NUMBERS])
    sandbox = run(tcpa_config(tmp_path, emulator, source, sandbox=True))
    assert sandbox.exit_code == EXIT_OK
    out = read_output(tmp_path / "out.csv")
    assert row_credits(out) == 0 and _charged(emulator) == 0
    assert [entry["sandbox"] for entry in emulator.state("tcpa_authority")["requests"]] == [True]
    live = run(tcpa_config(tmp_path, emulator, source))
    assert read_report(live.report)["providers"]["tcpa_authority"]["cache_hits"] == 0
    assert _charged(emulator) == len(NUMBERS)


def test_default_consent_date_fills_rows_without_one(tmp_path: Path, emulator: Emulator) -> None:
    source = write_leads(tmp_path / "in.csv", [(NUMBERS[0], ""), (NUMBERS[1], "garbage")])
    summary = run(tcpa_config(tmp_path, emulator, source, default_consent_date="03/04/2019"))
    assert summary.exit_code == EXIT_OK
    out = read_output(tmp_path / "out.csv")
    assert out["tcpa_consent_date"].to_list() == ["2019-03-04", "2019-03-04"]
    assert set(out["tcpa_status"]) <= {"hit", "no_match"}


def test_cache_reuses_answers_within_ttl_at_zero_credits(
    tmp_path: Path, emulator: Emulator
) -> None:
    source = write_leads(tmp_path / "in.csv", [(p, "2020-06-01") for p in NUMBERS])
    first = run(tcpa_config(tmp_path, emulator, source, output="first.csv"))
    second = run(tcpa_config(tmp_path, emulator, source, output="second.csv"))
    assert second.run_id != first.run_id
    one, two = read_output(tmp_path / "first.csv"), read_output(tmp_path / "second.csv")
    answers = [c for c in one.columns if c.startswith("tcpa_") and c != "tcpa_credits"]
    assert one.select(answers).equals(two.select(answers))  # request ids included: reused
    assert row_credits(two) == 0 and _charged(emulator) == len(NUMBERS)
    report = read_report(second.report)["providers"]["tcpa_authority"]
    assert (report["cache_hits"], report["requests"], report["credits"]) == (len(NUMBERS), 0, 0)

    # Age the answers past the TTL: the next run buys them again.
    with sqlite3.connect(tmp_path / "state" / "ledger.sqlite") as conn:
        conn.execute("UPDATE lookups SET fetched_at = ?", (time.time() - 3 * 86_400,))
    third = run(tcpa_config(tmp_path, emulator, source, output="third.csv", cache_ttl_days=2))
    assert read_report(third.report)["providers"]["tcpa_authority"]["cache_hits"] == 0
    assert row_credits(read_output(tmp_path / "third.csv")) == len(NUMBERS)
    fourth = run(tcpa_config(tmp_path, emulator, source, output="fourth.csv"))
    assert row_credits(read_output(tmp_path / "fourth.csv")) == 0  # third's answers are fresh
    fifth = run(tcpa_config(tmp_path, emulator, source, output="fifth.csv"), no_cache=True)
    assert row_credits(read_output(tmp_path / "fifth.csv")) == len(NUMBERS)
    assert _charged(emulator) == 3 * len(NUMBERS)
    del fourth, fifth


def test_no_429_at_the_configured_rate(tmp_path: Path, emulator: Emulator) -> None:
    # 10 requests per rolling 1 s window, configured at exactly that rate.
    emulator.set_knobs("tcpa_authority", rate_limit=10, rate_window_s=1.0, latency_ms=20)
    source = write_leads(tmp_path / "in.csv", [(p, "2020-06-01") for p in NUMBERS * 4])
    phones = [f"{p[:6]}{i:04d}" for i, p in enumerate(NUMBERS * 4)]
    source = write_leads(tmp_path / "in.csv", [(p, "2020-06-01") for p in phones])
    summary = run(tcpa_config(tmp_path, emulator, source, batch_size=1, requests_per_minute=600))
    assert summary.exit_code == EXIT_OK
    totals = emulator.state("tcpa_authority")["totals"]
    assert totals["by_status"] == {"200": len(phones)}
    assert totals["max_in_window"] <= 10


def test_the_api_key_never_lands_in_state_outputs_or_logs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    secret = "S3CRET-login-7f1e2d"
    knobs = ProviderKnobs(latency_ms=0, rate_limit=None, keys={secret: None})
    with Emulator({"tcpa_authority": knobs}) as emulator:
        monkeypatch.setenv(KEY_ENV, secret)
        emulator.queue_faults("tcpa_authority", [500])
        phones = [*NUMBERS, "2125550150"]
        source = write_leads(tmp_path / "in.csv", [(p, "2020-06-01") for p in phones])
        summary = run(tcpa_config(tmp_path, emulator, source))
        assert summary.exit_code == EXIT_OK
        admin = httpx.get(emulator.url + "/_admin/state").text
        monkeypatch.setenv(KEY_ENV, "wrong")
        run(tcpa_config(tmp_path, emulator, source, output="again.csv"), no_cache=True)
    captured = capfd.readouterr()
    assert secret not in captured.out + captured.err + admin + repr(summary)
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "in.csv"]
    assert any(p.name == "ledger.sqlite" for p in files)
    for path in files:
        assert secret.encode() not in path.read_bytes(), path
    ledger = SqliteStore(tmp_path / "state")
    try:
        dumped = "\n".join(ledger.conn.iterdump())
    finally:
        ledger.close()
    assert secret not in dumped


@given(
    numbers=st.lists(st.from_regex(r"[2-9][0-9]{9}", fullmatch=True), min_size=1, max_size=30),
    when=st.dates(min_value=date(2000, 1, 1), max_value=date(2025, 1, 1)),
    sandbox=st.booleans(),
)
def test_the_request_body_is_the_documented_json(
    numbers: list[str], when: date, sandbox: bool
) -> None:
    settings = TcpaAuthoritySettings(sandbox=sandbox)
    provider = TcpaAuthority(settings, "secret", has_consent_dates=True)
    keys = [f"{number}:{when:%Y%m%d}" for number in numbers]
    request = provider.request(keys, "abc123")
    assert json.loads(request.content) == {
        "Data": [{"PhoneNumber": n, "Date": f"{when:%Y%m%d}"} for n in numbers],
        "UseSandbox": sandbox,
    }
    assert request.headers["loginId"] == "secret" and request.headers["X-Request-ID"] == "abc123"
    assert str(request.url) == "https://dataapi.dncscrub.com/v1.5/Data/TCPAAuthority"
