"""A run across its sessions, through the CLI against the emulators: the report and the
summary give the whole run and each session; the terminal says which run a session
works on (new, resumed, what changed since the last run of the same files); an exit 1
says to retry, and a retry with nothing failed changes nothing."""

from __future__ import annotations

import io
import json
import re
import shlex
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from enrich_helpers import EMULATOR_KEY, write_leads

from pipeline.emulators.server import Emulator
from pipeline.emulators.state import ProviderKnobs
from pipeline.errors import EXIT_LOOKUPS_FAILED, EXIT_OK, EXIT_STOPPED
from pipeline.report import RunFigures
from pipeline.run_opening import job_changes
from pipeline.store.records import RunRecord, SessionRecord
from pipeline.store.sqlite import SqliteStore

from conftest import CliResult, reports

PHONES = ["2027771043", "3125557788", "4158830123", "6479165010", "7075276405", "9174421234"]
KEY_ENVS = ("DNCSCRUB_LOGIN_ID", "CHECKTHATPHONE_API_KEY")


def _knobs() -> dict[str, ProviderKnobs]:
    return {
        name: ProviderKnobs(latency_ms=0, rate_limit=None)
        for name in ("tcpa_authority", "checkthatphone")
    }


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    for env in KEY_ENVS:
        monkeypatch.setenv(env, EMULATOR_KEY)
    with Emulator(_knobs()) as em:
        yield em


@pytest.fixture
def leads(tmp_path: Path) -> Path:
    return write_leads(tmp_path / "leads.csv", [(p, "2020-06-01") for p in PHONES])


@pytest.fixture
def config_for(
    write_config: Callable[..., Path], tmp_path: Path, leads: Path
) -> Callable[..., Path]:
    def make(tcpa_url: str, ctp_url: str | None = None, **tcpa: Any) -> Path:
        sections: dict[str, dict[str, Any]] = {
            "input": {
                "path": str(leads),
                "id_column": "id",
                "consent_date_column": "consent_date",
            },
            "output": {"path": str(tmp_path / "out.csv")},
            "providers.tcpa_authority": {
                "base_url": tcpa_url,
                "requests_per_minute": 60_000,
                "max_concurrency": 1,
                **tcpa,
            },
        }
        if ctp_url is not None:
            sections["providers.checkthatphone"] = {
                "base_url": ctp_url, "requests_per_minute": 60_000,
            }  # fmt: skip
        return write_config(**sections)

    return make


class Terminal(io.StringIO):
    """stderr as a terminal: the CLI then says which run a session works on there."""

    def isatty(self) -> bool:
        return True


def run_id_of(result: CliResult) -> str:
    """The run the summary printed is of."""
    found = re.match(r"run (\S+): ", result.out)
    assert found is not None, result.out
    return found.group(1)


def opened(state: Path, run_id: str) -> dict[str, Any]:
    """The start of the run's newest session, as its run log has it."""
    lines = (state / "runs" / run_id / "log.jsonl").read_text(encoding="utf-8").splitlines()
    events = [e for e in map(json.loads, lines) if e["event"] in ("run_started", "run_resumed")]
    last: dict[str, Any] = events[-1]
    return last


def test_a_failed_run_says_retry_and_the_retry_reports_every_session(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], emulator: Emulator,
    tmp_path: Path,
) -> None:  # fmt: skip
    config = config_for(emulator.base_url("tcpa_authority"), batch_size=3, max_attempts=1)
    emulator.queue_faults("tcpa_authority", [500])  # the first batch of three fails

    first = cli("run", config)
    assert first.code == EXIT_LOOKUPS_FAILED
    (report,) = reports(tmp_path / "state")
    run_id = report["run_id"]
    assert opened(tmp_path / "state", run_id)["message"] == f"new run {run_id}"
    assert first.err == ""  # not a terminal: stderr stays for errors (and progress)
    assert f"3 rows have lookups that failed: run `phone-enrich retry {config}` to try them " \
        "again" in first.out  # fmt: skip
    assert report["run"]["sessions"] == 1 and len(report["sessions"]) == 1

    again = cli("retry", config)
    assert again.code == EXIT_OK
    said = f"resuming run {run_id} (session 2) to retry its failed lookups"
    assert opened(tmp_path / "state", run_id)["message"] == said
    assert f"\n  {said}\n" in again.out
    (report,) = reports(tmp_path / "state")
    whole, sessions = report["run"], report["sessions"]
    assert report["session"] == 2 and "duration_s" in report  # this session's, as before
    assert [(s["session"], s["exit_code"]) for s in sessions] == [(1, 1), (2, 0)]
    assert whole["sessions"] == 2 and whole["state"] == "finished"
    assert whole["started_at"] == sessions[0]["started_at"]
    assert whole["finished_at"] == sessions[1]["finished_at"]
    assert whole["duration_complete"] is True
    assert whole["duration_s"] == pytest.approx(sum(s["duration_s"] for s in sessions), abs=2e-3)
    assert all(s["duration_s"] > 0 for s in sessions)
    charged = emulator.state("tcpa_authority")["totals"]["credits"]
    assert [s["credits_charged"] for s in sessions] == [3, 3]
    assert whole["credits_charged"] == charged == len(PHONES)
    assert "whole run: 2 sessions" in again.out
    assert (
        "session 1:" in again.out
        and "session 2:" in again.out
        and "phone-enrich retry" not in again.out
    )

    # Nothing failed now: retry says so, and leaves every file and the store as they are.
    run_dir = tmp_path / "state" / "runs" / run_id
    files = [tmp_path / "out.csv", *(run_dir / n for n in ("report.json", "log.jsonl",
                                                            "failed_rows.csv"))]  # fmt: skip
    before = [(p.read_bytes(), p.stat().st_mtime_ns) for p in files]
    requests = emulator.state("tcpa_authority")["totals"]["requests"]
    nothing = cli("retry", config)
    assert nothing.code == EXIT_OK
    assert nothing.out.strip() == (
        f"run {run_id}: no lookup failed, nothing to retry; its output "
        f"({tmp_path / 'out.csv'}) and report are left as they are"
    )
    assert nothing.err == ""
    assert [(p.read_bytes(), p.stat().st_mtime_ns) for p in files] == before
    assert emulator.state("tcpa_authority")["totals"]["requests"] == requests
    with SqliteStore(tmp_path / "state") as store:
        assert len(store.sessions(run_id)) == 2


def test_a_stopped_run_resumes_and_says_which_session(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], emulator: Emulator,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    config = config_for(emulator.base_url("tcpa_authority"), batch_size=1)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert cli("run", config, "--max-credits", "2").code == EXIT_STOPPED
    (report,) = reports(tmp_path / "state")
    run_id = report["run_id"]
    assert terminal.getvalue().startswith(f"new run {run_id}\n")
    terminal.seek(0)
    terminal.truncate()
    resumed = cli("run", config, "--max-credits", "100")
    assert resumed.code == EXIT_OK
    assert terminal.getvalue().startswith(f"resuming run {run_id} (session 2)\n")
    assert f"\n  resuming run {run_id} (session 2)\n" in resumed.out
    (report,) = reports(tmp_path / "state")
    logged = opened(tmp_path / "state", run_id)
    assert {key: logged[key] for key in ("event", "run_id", "session", "kind", "previous_run",
                                         "changes", "message")} == {
        "event": "run_resumed", "run_id": run_id, "session": 2, "kind": "resumed",
        "previous_run": None, "changes": [], "message": f"resuming run {run_id} (session 2)",
    }  # fmt: skip
    assert [(s["exit_code"], s["credits_charged"]) for s in report["sessions"]] == [(3, 2), (0, 4)]
    assert report["run"]["credits_charged"] == 6 == report["budget"]["spent"]
    assert "whole run: 2 sessions" in resumed.out


def test_a_new_run_names_what_changed_since_the_last_run_of_the_same_files(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], emulator: Emulator,
    leads: Path, tmp_path: Path,
) -> None:  # fmt: skip
    tcpa, ctp = emulator.base_url("tcpa_authority"), emulator.base_url("checkthatphone")

    def new_run(config: Path) -> tuple[str, str]:
        result = cli("run", config)
        assert result.code == EXIT_OK, result.err
        run_id = run_id_of(result)
        event = opened(tmp_path / "state", run_id)
        assert (event["event"], event["kind"], event["session"]) == ("run_started", "new", 1)
        if event["previous_run"] is not None:  # the summary says it too
            assert f"\n  {event['message']}\n" in result.out
        return run_id, event["message"]

    first, message = new_run(config_for(tcpa))
    assert message == f"new run {first}"

    write_leads(leads, [(p, "2020-06-01") for p in [*PHONES, "2125550123"]])
    second, message = new_run(config_for(tcpa))
    assert message == f"new run {second}: the input file's content changed since run {first}"

    third, message = new_run(config_for(tcpa, ctp))
    assert message == f"new run {third}: provider checkthatphone enabled since run {second}"

    with Emulator(_knobs()) as elsewhere:
        fourth, message = new_run(config_for(elsewhere.base_url("tcpa_authority"), ctp))
    assert message == (
        f"new run {fourth}: providers.tcpa_authority.base_url changed since run {third}"
    )
    again = cli("run", config_for(tcpa, ctp, batch_size=10, default_consent_date="2020-01-01"))
    assert again.code == EXIT_OK
    event = opened(tmp_path / "state", run_id_of(again))
    assert event["previous_run"] == fourth and event["changes"] == [
        "providers.tcpa_authority.base_url changed",
        "providers.tcpa_authority.batch_size changed",
        "providers.tcpa_authority.default_consent_date changed",
    ]


def test_job_changes_names_each_setting() -> None:
    before: dict[str, Any] = {
        "input": "/data/in.csv", "fingerprint": "aa", "output": "/data/out.csv",
        "columns": {"phone_column": "phone", "id_column": None},
        "normalize": {"regions": ["US", "CA"]},
        "providers": {"tcpa_authority": ["sandbox=False", {"base_url": "https://a"}],
                      "tdg_reverse_phone": ["", {"base_url": "https://t"}]},
    }  # fmt: skip
    assert job_changes(before, before) == []
    after: dict[str, Any] = {
        **before, "output": "/data/other.csv",
        "columns": {"phone_column": "mobile", "id_column": "id"},
        "normalize": {"regions": ["US"]},
        "providers": {"tcpa_authority": ["sandbox=True", {"base_url": "https://a"}],
                      "checkthatphone": ["", {"base_url": "https://c"}]},
    }  # fmt: skip
    assert job_changes(before, after) == [
        "input.id_column changed",
        "input.phone_column changed",
        "normalize.regions changed",
        "the output path changed",
        "provider checkthatphone enabled",
        "provider tdg_reverse_phone disabled",
        "providers.tcpa_authority options changed",
    ]


def test_the_whole_run_counts_what_is_known_of_sessions_recorded_before() -> None:
    """A run from before sessions were kept: times not known are null, the known
    durations are summed and ``duration_complete`` says the sum is partial; the current
    session ends at the report."""
    record = RunRecord("old", "job", "running", 3, None, 100.0, None, None, None, "i", "o")
    figures = RunFigures.of(
        record,
        [SessionRecord("old", 1, 100.0, None, None, 4), SessionRecord("old", 2, None, 250.0, 3, 0),
         SessionRecord("old", 3, 300.0, None, None, 6)],
        now=330.0,
    )  # fmt: skip
    assert figures.as_dict() == {
        "state": "running", "sessions": 3, "started_at": "1970-01-01T00:01:40+00:00",
        "finished_at": "1970-01-01T00:05:30+00:00", "duration_s": 30.0,
        "duration_complete": False, "credits_charged": 10,
    }  # fmt: skip
    assert [(s["started_at"], s["finished_at"], s["duration_s"], s["exit_code"])
            for s in figures.sessions_as_list()] == [
        ("1970-01-01T00:01:40+00:00", None, None, None),
        (None, "1970-01-01T00:04:10+00:00", None, 3),
        ("1970-01-01T00:05:00+00:00", "1970-01-01T00:05:30+00:00", 30.0, None),
    ]  # fmt: skip


def test_the_retry_hint_is_a_command_that_retries_the_run(
    cli: Callable[..., CliResult], config_for: Callable[..., Path], emulator: Emulator,
    tmp_path: Path,
) -> None:  # fmt: skip
    other = write_leads(tmp_path / "other leads.csv", [(p, "2020-06-01") for p in PHONES])
    config = config_for(emulator.base_url("tcpa_authority"), batch_size=3, max_attempts=1)
    emulator.queue_faults("tcpa_authority", [500])
    first = cli("run", config, "--input", other)
    assert first.code == EXIT_LOOKUPS_FAILED
    (hint,) = re.findall(r"run `(phone-enrich retry [^`]+)` to try them again", first.out)
    assert hint == f"phone-enrich retry {config} --input '{other}'"
    again = cli(*shlex.split(hint)[1:])
    assert again.code == EXIT_OK
    event = opened(tmp_path / "state", run_id_of(again))
    assert (event["kind"], event["session"]) == ("retry", 2)
    assert json.loads((tmp_path / "state" / "runs" / event["run_id"] / "report.json")
                      .read_text(encoding="utf-8"))["input"]["path"] == str(other)  # fmt: skip
