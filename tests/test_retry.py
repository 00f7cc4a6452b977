"""``retry`` re-attempts exactly the lookups that failed, in the same run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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

from pipeline.emulators.server import Emulator
from pipeline.emulators.state import ProviderKnobs
from pipeline.errors import EXIT_LOOKUPS_FAILED, EXIT_OK, UsageError
from pipeline.run import retry, run

PHONES = ["2027771043", "3125557788", "4158830123", "6479165010", "7075276405", "9174421234"]


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator({"tcpa_authority": ProviderKnobs(latency_ms=0, rate_limit=None)}) as em:
        monkeypatch.setenv(KEY_ENV, EMULATOR_KEY)
        yield em


def test_retry_pays_for_exactly_the_failed_keys(tmp_path: Path, emulator: Emulator) -> None:
    rows = [(p, "2020-06-01") for p in PHONES] + [(PHONES[0], "2020-06-01")]  # + a duplicate
    source = write_leads(tmp_path / "in.csv", rows)
    config = tcpa_config(tmp_path, emulator, source, batch_size=3, max_attempts=1,
                         max_concurrency=1)  # fmt: skip
    emulator.queue_faults("tcpa_authority", [500])  # the first batch of three fails
    first = run(config)
    assert first.exit_code == EXIT_LOOKUPS_FAILED
    before = read_output(tmp_path / "out.csv")
    assert before["tcpa_status"].to_list().count("failed") == 4  # 3 keys, 4 rows
    requests_before = len(emulator.state("tcpa_authority")["requests"])

    again = retry(config)
    assert again.exit_code == EXIT_OK
    assert again.run_id == first.run_id and again.session == 2
    log = emulator.state("tcpa_authority")["requests"][requests_before:]
    assert [entry["numbers"] for entry in log] == [3]  # the failed keys, nothing else
    after = read_output(tmp_path / "out.csv")
    assert set(after["tcpa_status"]) <= {"hit", "no_match"}
    assert after["row_trace_id"].to_list() == before["row_trace_id"].to_list()
    settled = before["tcpa_status"] != "failed"
    assert after.filter(settled).equals(before.filter(settled))  # untouched, same request ids
    assert (
        row_credits(after) == len(PHONES) == emulator.state("tcpa_authority")["totals"]["credits"]
    )
    report = read_report(again.report)
    assert report["run_id"] == first.run_id and report["session"] == 2
    assert report["exit_code"] == EXIT_OK
    assert again.report is not None
    assert (again.report.parent / "failed_rows.csv").read_text().count("\n") == 1


def test_retry_needs_a_run_of_this_config(tmp_path: Path, emulator: Emulator) -> None:
    source = write_leads(tmp_path / "in.csv", [(PHONES[0], "2020-06-01")])
    config = tcpa_config(tmp_path, emulator, source)
    with pytest.raises(UsageError, match="no run of this input"):
        retry(config)
    run(config)
    with pytest.raises(UsageError, match="no such run"):
        retry(config, run_id="20990101T000000Z-abcdef")
