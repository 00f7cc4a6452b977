"""A ledger written by the phone-enrich of before the answer store opens and resumes.

``tests/fixtures/ledger_v2`` holds a ledger that code made (see its README): an early
run that finished, and a run of ``leads.csv`` stopped by its budget with two failed
lookups. Run again with a bigger budget, the same job resumes that run (session 2),
buys exactly what it lacked (the keys never bought, and the two failures) and writes
the whole output.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from enrich_helpers import read_output, read_report
from fixtures.ledger_v2.make import BASE, KEY, KEY_ENVS, PORT, config, knobs

from pipeline.emulators.server import Emulator
from pipeline.errors import EXIT_OK
from pipeline.run import run
from pipeline.run_opening import RunOpened
from pipeline.store.records import SessionRecord
from pipeline.store.sqlite import LEDGER_FILE, SqliteStore
from pipeline.store.sqlite_schema import MIGRATIONS

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "ledger_v2"
EARLY_RUN = "20261202T022050Z-ac0fb4"
STOPPED_RUN = "20261202T022050Z-7987c3"
PROVIDERS = ("tcpa_authority", "checkthatphone")
STATUS = {"tcpa_authority": "tcpa_status", "checkthatphone": "ctp_status"}


def _lookups(ledger: Path, where: str = "1") -> dict[str, dict[str, str]]:
    """provider -> key -> status, of the ledger's lookups that match ``where``. Read as
    immutable: no -wal or -shm appears next to the committed fixture."""
    conn = sqlite3.connect(f"file:{ledger}?mode=ro&immutable=1", uri=True)
    try:
        rows = conn.execute(f"SELECT provider, key, status FROM lookups WHERE {where}").fetchall()
    finally:
        conn.close()
    found: dict[str, dict[str, str]] = {name: {} for name in PROVIDERS}
    for provider, key, status in rows:
        found[provider][key] = status
    return found


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    shutil.rmtree(BASE, ignore_errors=True)
    (BASE / "state").mkdir(parents=True)
    shutil.copyfile(FIXTURE / "leads.csv", BASE / "leads.csv")
    shutil.copyfile(FIXTURE / "ledger.sqlite", BASE / "state" / "ledger.sqlite")
    for env in KEY_ENVS:
        monkeypatch.setenv(env, KEY)
    with Emulator(knobs(), port=PORT) as started:
        yield started
    shutil.rmtree(BASE, ignore_errors=True)


def test_the_fixture_is_what_its_readme_says() -> None:
    early = _lookups(FIXTURE / "ledger.sqlite", f"run_id = '{EARLY_RUN}'")
    stopped = _lookups(FIXTURE / "ledger.sqlite", f"run_id = '{STOPPED_RUN}'")
    assert {name: len(keys) for name, keys in early.items()} == {
        "tcpa_authority": 11, "checkthatphone": 11,
    }  # fmt: skip
    assert sorted(stopped["checkthatphone"].values()).count("failed") == 2
    assert {name: len(keys) for name, keys in stopped.items()} == {
        "tcpa_authority": 19, "checkthatphone": 13,
    }  # fmt: skip
    # The stopped run bought none of the early run's keys: it took them from the cache.
    assert all(not set(early[name]) & set(stopped[name]) for name in PROVIDERS)


def test_a_ledger_of_the_previous_version_resumes_and_buys_only_what_it_lacked(
    emulator: Emulator,
) -> None:
    ledger = BASE / "state" / "ledger.sqlite"
    before = _lookups(FIXTURE / "ledger.sqlite")
    settled = {
        name: {key for key, status in keys.items() if status != "failed"}
        for name, keys in before.items()
    }
    failed = {
        name: {key for key, status in keys.items() if status == "failed"}
        for name, keys in before.items()
    }

    events: list[RunOpened] = []
    summary = run(
        config(emulator, BASE / "leads.csv", BASE / "out.csv"), max_credits=10_000,
        on_event=events.append,
    )  # fmt: skip

    assert summary.exit_code == EXIT_OK
    assert [e.message for e in events] == [f"resuming run {STOPPED_RUN} (session 2)"]
    assert (summary.run_id, summary.session) == (STOPPED_RUN, 2)
    bought = _lookups(ledger, f"run_id = '{STOPPED_RUN}' AND session = 2")
    charged = {name: emulator.state(name)["totals"] for name in PROVIDERS}
    # Exactly the keys the fixture lacked: the failed ones again, none it had settled.
    assert {name: len(keys) for name, keys in bought.items()} == {
        "tcpa_authority": 6, "checkthatphone": 14,
    }  # fmt: skip
    for name in PROVIDERS:
        assert not set(bought[name]) & settled[name]
        assert failed[name] <= set(bought[name])
        assert set(bought[name].values()) <= {"hit", "no_match"}
        assert charged[name]["numbers_charged"] == len(bought[name])
        assert charged[name]["credits"] == len(bought[name])
    assert charged["checkthatphone"]["requests"] == 14

    out = read_output(BASE / "out.csv")
    assert out.height == 40
    valid = out.filter(pl.col("phone_valid") == "true")
    assert valid.height == 38
    assert set(valid["tcpa_status"]) <= {"hit", "no_match"}
    assert set(valid["ctp_status"]) == {"hit"}
    invalid = out.filter(pl.col("phone_valid") != "true")
    assert set(invalid["tcpa_status"]) == set(invalid["ctp_status"]) == {"not_requested"}
    report = read_report(summary.report)
    assert report["budget"] == {"max_credits": 10_000, "from": "--max-credits", "spent": 50}
    assert report["credits_total"] == 50  # this run's own: 30 in session 1, 20 now
    # Session 1, recorded before sessions were kept, has what the old ledger knew.
    first, second = report["sessions"]
    assert (first["started_at"], first["finished_at"]) == (
        "2026-12-02T02:20:50.853524+00:00",
        "2026-12-02T02:20:51.175718+00:00",
    )
    assert (first["session"], first["exit_code"], first["credits_charged"]) == (1, 3, 30)
    assert (second["session"], second["exit_code"], second["credits_charged"]) == (2, 0, 20)
    assert report["run"]["started_at"] == first["started_at"]
    assert report["run"]["credits_charged"] == 50 and report["run"]["duration_complete"]


def test_runs_of_a_previous_version_have_the_sessions_that_are_known(tmp_path: Path) -> None:
    shutil.copyfile(FIXTURE / "ledger.sqlite", tmp_path / "ledger.sqlite")
    conn = sqlite3.connect(f"file:{FIXTURE / 'ledger.sqlite'}?mode=ro&immutable=1", uri=True)
    try:
        runs = {
            run_id: (started, updated)
            for run_id, started, updated in conn.execute(
                "SELECT run_id, started_at, updated_at FROM runs"
            )
        }
        charged = dict(conn.execute("SELECT run_id, sum(credits) FROM requests GROUP BY run_id"))
    finally:
        conn.close()
    with SqliteStore(tmp_path) as store:
        for run_id, exit_code in ((EARLY_RUN, 0), (STOPPED_RUN, 3)):
            started, ended = runs[run_id]
            assert store.sessions(run_id) == [
                SessionRecord(run_id, 1, started, ended, exit_code, charged[run_id])
            ]
            record = store.get_run(run_id)
            assert record is not None and record.identity is None


def test_a_run_of_several_sessions_from_a_previous_version(tmp_path: Path) -> None:
    """Session 1 started with the run; the last one's end and exit code are the run's, or,
    while it runs, its start; the sessions between are not known."""
    raw = sqlite3.connect(tmp_path / LEDGER_FILE)
    for step in MIGRATIONS[:2]:
        raw.executescript(step)
    raw.execute("PRAGMA user_version = 2")
    raw.executemany(
        "INSERT INTO runs (run_id, job, input_path, output_path, state, session, started_at,"
        " updated_at, exit_code) VALUES (?, 'job', 'in.csv', 'out.csv', ?, ?, ?, ?, ?)",
        [("ended", "finished", 3, 100.0, 500.0, 1), ("running", "running", 2, 100.0, 300.0, None)],
    )
    raw.execute(
        "INSERT INTO requests (request_id, run_id, session, provider, attempt, numbers,"
        " sent_at, credits) VALUES ('r1', 'ended', 2, 'tcpa_authority', 1, 4, 200.0, 4)"
    )
    raw.commit()
    raw.close()
    with SqliteStore(tmp_path) as store:
        assert store.sessions("ended") == [
            SessionRecord("ended", 1, 100.0, None, None, 0),
            SessionRecord("ended", 2, None, None, None, 4),
            SessionRecord("ended", 3, None, 500.0, 1, 0),
        ]
        assert store.sessions("running") == [
            SessionRecord("running", 1, 100.0, None, None, 0),
            SessionRecord("running", 2, 300.0, None, None, 0),
        ]
