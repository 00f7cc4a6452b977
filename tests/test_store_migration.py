"""Ledgers written by earlier phone-enrich versions open and resume.

``tests/fixtures/ledger_v2`` holds a ledger written before the answer store (schema 2),
``tests/fixtures/ledger_v3`` one of schema 3 (lookups keyed by provider and params, not
yet by scope id); see their READMEs. Each has an early run that finished, and a run of
``leads.csv`` stopped by its budget with two failed lookups. Opened by today's code,
every answer is kept as it was; run again with a bigger budget, the same job resumes
that run (session 2), buys exactly what it lacked (the keys never bought, and the two
failures) and writes the whole output.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl
import pytest
from enrich_helpers import read_output, read_report
from fixtures.ledger_v2 import make as make_v2
from fixtures.ledger_v3 import make as make_v3

from pipeline.emulators.server import Emulator
from pipeline.errors import EXIT_OK
from pipeline.run import run
from pipeline.run_opening import RunOpened
from pipeline.store.records import SessionRecord
from pipeline.store.sqlite import LEDGER_FILE, SqliteStore
from pipeline.store.sqlite_schema import MIGRATIONS, SCOPED_LOOKUPS

from conftest import CliResult

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PROVIDERS = ("tcpa_authority", "checkthatphone")
STATUS = {"tcpa_authority": "tcpa_status", "checkthatphone": "ctp_status"}
# Every column of a lookup, as every schema can give it (schema 4 files its provider
# and params under a scope id).
_ROWS = {
    "provider": "SELECT provider, params, key, run_id, session, status, answer, error,"
    " credits, request_id, first_row, fetched_at FROM lookups",
    "scope": "SELECT s.provider, s.params, l.key, l.run_id, l.session, l.status, l.answer,"
    " l.error, l.credits, l.request_id, l.first_row, l.fetched_at FROM lookups AS l"
    " JOIN scopes AS s ON s.id = l.scope",
}


@dataclass(frozen=True)
class Fixture:
    """A ledger an earlier version wrote, and the job that resumes it (``make``)."""

    name: str
    make: ModuleType
    early_run: str
    stopped_run: str
    early: dict[str, int]
    """Lookups of the early run, by provider."""
    stopped: dict[str, int]
    """Lookups of the stopped run, by provider (CheckThatPhone's two failures among them)."""

    @property
    def folder(self) -> Path:
        return FIXTURES / self.name

    @property
    def base(self) -> Path:
        return Path(self.make.BASE)


V2 = Fixture(
    "ledger_v2", make_v2, "20261202T022050Z-ac0fb4", "20261202T022050Z-7987c3",
    {"tcpa_authority": 11, "checkthatphone": 11}, {"tcpa_authority": 19, "checkthatphone": 13},
)  # fmt: skip
V3 = Fixture(
    "ledger_v3", make_v3, "20261202T064616Z-8a582a", "20261202T064617Z-9c56f3",
    {"tcpa_authority": 11, "checkthatphone": 11}, {"tcpa_authority": 20, "checkthatphone": 12},
)  # fmt: skip
EARLY_RUN, STOPPED_RUN = V2.early_run, V2.stopped_run


def _rows(ledger: Path, where: str = "1") -> list[tuple[Any, ...]]:
    """Every lookup of the ledger that matches ``where`` (run_id, session, status: no
    other table has them), whole and sorted. Read as immutable: no -wal or -shm appears
    next to a committed fixture."""
    conn = sqlite3.connect(f"file:{ledger}?mode=ro&immutable=1", uri=True)
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(lookups)")}
        sql = _ROWS["scope" if "scope" in columns else "provider"]
        return sorted(conn.execute(f"{sql} WHERE {where}").fetchall())
    finally:
        conn.close()


def _lookups(ledger: Path, where: str = "1") -> dict[str, dict[str, str]]:
    """provider -> key -> status, of the ledger's lookups that match ``where``."""
    found: dict[str, dict[str, str]] = {name: {} for name in PROVIDERS}
    for provider, _, key, _, _, status, *_ in _rows(ledger, where):
        found[provider][key] = status
    return found


@pytest.fixture(params=[V2, V3], ids=lambda fixture: fixture.name)
def fixture(request: pytest.FixtureRequest) -> Fixture:
    found: Fixture = request.param
    return found


@pytest.fixture
def emulator(fixture: Fixture, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    base = fixture.base
    shutil.rmtree(base, ignore_errors=True)
    (base / "state").mkdir(parents=True)
    shutil.copyfile(fixture.folder / "leads.csv", base / "leads.csv")
    shutil.copyfile(fixture.folder / "ledger.sqlite", base / "state" / "ledger.sqlite")
    for env in fixture.make.KEY_ENVS:
        monkeypatch.setenv(env, fixture.make.KEY)
    with Emulator(fixture.make.knobs(), port=fixture.make.PORT) as started:
        yield started
    shutil.rmtree(base, ignore_errors=True)


def test_the_fixture_is_what_its_readme_says(fixture: Fixture) -> None:
    ledger = fixture.folder / "ledger.sqlite"
    early = _lookups(ledger, f"run_id = '{fixture.early_run}'")
    stopped = _lookups(ledger, f"run_id = '{fixture.stopped_run}'")
    assert {name: len(keys) for name, keys in early.items()} == fixture.early
    assert sorted(stopped["checkthatphone"].values()).count("failed") == 2
    assert {name: len(keys) for name, keys in stopped.items()} == fixture.stopped
    # The stopped run bought none of the early run's keys: it took them from the cache.
    assert all(not set(early[name]) & set(stopped[name]) for name in PROVIDERS)


def test_opening_keeps_every_answer_as_it_was(fixture: Fixture, tmp_path: Path) -> None:
    shutil.copyfile(fixture.folder / "ledger.sqlite", tmp_path / LEDGER_FILE)
    SqliteStore(tmp_path).close()
    conn = sqlite3.connect(tmp_path / LEDGER_FILE)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # so immutable reads see it all
        assert conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
    finally:
        conn.close()
    before = _rows(fixture.folder / "ledger.sqlite")
    assert len(before) == sum(fixture.early.values()) + sum(fixture.stopped.values())
    assert _rows(tmp_path / LEDGER_FILE) == before


def test_an_upgrade_is_said_once_before_it_starts(fixture: Fixture, tmp_path: Path) -> None:
    """A long upgrade prints nothing else: the line comes first, names the file, the
    versions and the lookups kept; a ledger already upgraded, or a new one, says nothing."""
    ledger = tmp_path / "state" / LEDGER_FILE
    ledger.parent.mkdir()
    shutil.copyfile(fixture.folder / "ledger.sqlite", ledger)
    old = 2 if fixture is V2 else 3
    seen: list[tuple[str, int]] = []

    def told(line: str) -> None:  # the file as it is when the line is given
        conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
        try:
            seen.append((line, conn.execute("PRAGMA user_version").fetchone()[0]))
        finally:
            conn.close()

    SqliteStore(ledger.parent, on_upgrade=told).close()
    lookups = sum(fixture.early.values()) + sum(fixture.stopped.values())
    assert seen == [(
        f"{ledger}: upgrading the ledger from schema version {old} to {len(MIGRATIONS)} "
        f"({lookups:,} lookups kept): once, a moment; nothing is lost if it is stopped",
        old,
    )]  # fmt: skip
    SqliteStore(ledger.parent, on_upgrade=told).close()
    SqliteStore(tmp_path / "new", on_upgrade=told).close()
    assert len(seen) == 1


def test_status_says_the_upgrade_on_stderr(
    cli: Callable[..., CliResult], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    """Through the CLI (stderr not a terminal here: a JSON line, as progress is)."""
    state = tmp_path / "state"
    state.mkdir()
    shutil.copyfile(V3.folder / "ledger.sqlite", state / LEDGER_FILE)
    config = write_config(
        input={"path": str(V3.folder / "leads.csv"), "phone_column": "phone"},
        output={"path": str(tmp_path / "out.csv")},
    )
    first = cli("status", config)
    assert first.code == 0 and V3.stopped_run in first.out
    notice = json.loads(first.err)
    assert notice["event"] == "notice"
    upgrading = f"upgrading the ledger from schema version 3 to {len(MIGRATIONS)} (54 lookups"
    assert notice["message"].startswith(f"{state / LEDGER_FILE}: {upgrading}")
    again = cli("status", config)
    assert again.code == 0 and again.err == ""


def test_the_scope_step_is_idempotent(tmp_path: Path) -> None:
    """Run again on a file it already changed (its version set back), the step leaves
    the rows, the tables and the indexes as they were."""
    shutil.copyfile(V3.folder / "ledger.sqlite", tmp_path / LEDGER_FILE)
    SqliteStore(tmp_path).close()

    def schema_and_rows() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        conn = sqlite3.connect(tmp_path / LEDGER_FILE)
        try:
            schema = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name")
            return schema.fetchall(), sorted(conn.execute(f"{_ROWS['scope']}").fetchall())
        finally:
            conn.close()

    migrated = schema_and_rows()
    names = {name for _, name, _ in migrated[0]}
    # Step 5 replaced step 4's key index with the levels: set back to 3, step 4 makes
    # it again and step 5 copies its keys (the same) and drops it again.
    assert {"lookup_keys", "lookups_failed"} <= names and "lookups_key" not in names
    conn = sqlite3.connect(tmp_path / LEDGER_FILE)
    conn.execute("PRAGMA user_version = 3")
    conn.close()
    SqliteStore(tmp_path).close()
    assert schema_and_rows() == migrated
    assert "CREATE UNIQUE INDEX IF NOT EXISTS lookups_key" in SCOPED_LOOKUPS


def test_a_ledger_of_a_previous_version_resumes_and_buys_only_what_it_lacked(
    fixture: Fixture, emulator: Emulator
) -> None:
    base, make = fixture.base, fixture.make
    ledger = base / "state" / "ledger.sqlite"
    before = _lookups(fixture.folder / "ledger.sqlite")
    settled = {
        name: {key for key, status in keys.items() if status != "failed"}
        for name, keys in before.items()
    }
    failed = {
        name: {key for key, status in keys.items() if status == "failed"}
        for name, keys in before.items()
    }

    events: list[RunOpened] = []
    notices: list[str] = []
    summary = run(
        make.config(emulator, base / "leads.csv", base / "out.csv"), max_credits=10_000,
        on_event=events.append, on_notice=notices.append,
    )  # fmt: skip

    assert summary.exit_code == EXIT_OK
    stopped = fixture.stopped_run
    assert [e.message for e in events] == [f"resuming run {stopped} (session 2)"]
    assert len(notices) == 1 and notices[0].startswith(f"{ledger}: upgrading the ledger")
    assert (summary.run_id, summary.session) == (stopped, 2)
    conn = sqlite3.connect(ledger)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # so immutable reads see it all
    conn.close()
    bought = _lookups(ledger, f"run_id = '{stopped}' AND session = 2")
    charged = {name: emulator.state(name)["totals"] for name in PROVIDERS}
    # Exactly the keys the fixture lacked: the failed ones again, none it had settled.
    # The leads hold 36 distinct numbers and TCPA keys, all valid.
    assert {name: len(keys) for name, keys in bought.items()} == {
        name: 36 - len(settled[name]) for name in PROVIDERS
    }
    # Every answer the fixture held is still there, the two failures replaced.
    kept = _rows(ledger, f"NOT (run_id = '{stopped}' AND session = 2)")
    assert kept == [row for row in _rows(fixture.folder / "ledger.sqlite") if row[5] != "failed"]
    for name in PROVIDERS:
        assert not set(bought[name]) & settled[name]
        assert failed[name] <= set(bought[name])
        assert set(bought[name].values()) <= {"hit", "no_match"}
        assert charged[name]["numbers_charged"] == len(bought[name])
        assert charged[name]["credits"] == len(bought[name])
    assert charged["checkthatphone"]["requests"] == len(bought["checkthatphone"])

    out = read_output(base / "out.csv")
    assert out.height == 40
    valid = out.filter(pl.col("phone_valid") == "true")
    assert valid.height == 38
    assert set(valid["tcpa_status"]) <= {"hit", "no_match"}
    assert set(valid["ctp_status"]) == {"hit"}
    invalid = out.filter(pl.col("phone_valid") != "true")
    assert set(invalid["tcpa_status"]) == set(invalid["ctp_status"]) == {"not_requested"}
    report = read_report(summary.report)
    now = sum(len(keys) for keys in bought.values())
    spent = 30 + now
    assert report["budget"] == {"max_credits": 10_000, "from": "--max-credits", "spent": spent}
    assert report["credits_total"] == spent  # this run's own: 30 in session 1, the rest now
    first, second = report["sessions"]
    if fixture is V2:  # session 1, recorded before sessions were kept: what the ledger knew
        assert (first["started_at"], first["finished_at"]) == (
            "2026-12-02T02:20:50.853524+00:00",
            "2026-12-02T02:20:51.175718+00:00",
        )
    assert (first["session"], first["exit_code"], first["credits_charged"]) == (1, 3, 30)
    assert (second["session"], second["exit_code"], second["credits_charged"]) == (2, 0, now)
    assert report["run"]["started_at"] == first["started_at"]
    assert report["run"]["credits_charged"] == spent and report["run"]["duration_complete"]


def test_runs_of_a_previous_version_have_the_sessions_that_are_known(tmp_path: Path) -> None:
    v2 = V2.folder / "ledger.sqlite"
    shutil.copyfile(v2, tmp_path / "ledger.sqlite")
    conn = sqlite3.connect(f"file:{v2}?mode=ro&immutable=1", uri=True)
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
