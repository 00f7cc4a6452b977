"""The ledger, driven directly: schema, runs, atomic commits, lookups, cache, report sums."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.ledger import LEDGER_FILE, SETTLED, Answer, Ledger, LedgerError, RequestLog

PROVIDER = "tdg_reverse_phone"
PARAMS = "v1"
RUN = "run-1"


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = Ledger(tmp_path / "state")
    opened.set_params(PROVIDER, PARAMS)
    try:
        yield opened
    finally:
        opened.close()


def log(
    request_id: str | None = None,
    provider: str = PROVIDER,
    *,
    attempt: int = 1,
    numbers: int = 1,
    http_status: int | None = 200,
    outcome: str = "answered",
    credits: int = 0,
    error: str | None = None,
) -> RequestLog:
    return RequestLog(
        request_id or uuid.uuid4().hex,
        provider,
        attempt,
        numbers,
        time.time(),
        http_status,
        outcome,
        credits,
        12.5,
        error,
    )


def ans(
    key: str,
    status: str = "hit",
    answer: dict[str, Any] | None = None,
    *,
    error: str | None = None,
    credits: int = 1,
    first_row: int = 0,
) -> Answer:
    if answer is None and status == "hit":
        answer = {"name": f"owner of {key}"}
    return Answer(key, status, answer, error, credits, first_row)


def commit_one(
    ledger: Ledger,
    key: str,
    status: str = "hit",
    *,
    run_id: str = RUN,
    session: int = 1,
    provider: str = PROVIDER,
    answer: dict[str, Any] | None = None,
    credits: int = 1,
) -> str:
    request_id = uuid.uuid4().hex
    error = "boom" if status == "failed" else None
    ledger.commit(
        log(request_id, provider),
        [ans(key, status, answer, error=error, credits=credits)],
        run_id,
        session,
    )
    return request_id


def keys_of(rows: list[tuple[Any, ...]]) -> list[str]:
    return sorted(row[0] for row in rows)


def set_fetched_at(ledger: Ledger, run_id: str, when: float) -> None:
    ledger.conn.execute("UPDATE lookups SET fetched_at = ? WHERE run_id = ?", (when, run_id))


def table_counts(ledger: Ledger) -> tuple[int, int]:
    row = ledger.conn.execute(
        "SELECT (SELECT count(*) FROM requests), (SELECT count(*) FROM lookups)"
    ).fetchone()
    return int(row[0]), int(row[1])


def start(ledger: Ledger, run_id: str, job: str = "job-a") -> None:
    ledger.start(
        run_id,
        job,
        config_path="cfg.toml",
        input_path="in.csv",
        output_path="out.parquet",
        cache_cutoff=None,
    )


# -- schema and file ----------------------------------------------------------------


def test_a_fresh_file_gets_schema_version_2(tmp_path: Path) -> None:
    state = tmp_path / "deep" / "state"
    ledger = Ledger(state)
    try:
        assert ledger.path == state / LEDGER_FILE
        assert ledger.path.is_file()
        assert ledger.conn.execute("PRAGMA user_version").fetchone() == (2,)
        tables = {
            name
            for (name,) in ledger.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        assert tables == {"runs", "lookups", "requests"}
    finally:
        ledger.close()


def test_reopening_is_a_no_op(tmp_path: Path) -> None:
    first = Ledger(tmp_path)
    first.set_params(PROVIDER, PARAMS)
    start(first, RUN)
    request_id = commit_one(first, "2125550123")
    schema = first.conn.execute(
        "SELECT type, name, sql FROM sqlite_master ORDER BY name"
    ).fetchall()
    first.close()

    again = Ledger(tmp_path)
    try:
        assert again.conn.execute("PRAGMA user_version").fetchone() == (2,)
        assert (
            again.conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
            == schema
        )
        run = again.get_run(RUN)
        assert run is not None and run.state == "running"
        rows = again.find(PROVIDER, PARAMS, ["2125550123"], RUN, None)
        assert [(r[0], r[3], r[7]) for r in rows] == [("2125550123", "hit", request_id)]
    finally:
        again.close()


def test_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    Ledger(tmp_path).close()
    raw = sqlite3.connect(tmp_path / LEDGER_FILE)
    raw.execute("PRAGMA user_version = 3")
    raw.close()
    with pytest.raises(LedgerError, match="version 3 is newer") as caught:
        Ledger(tmp_path)
    assert str(tmp_path / LEDGER_FILE) in str(caught.value)


def test_a_file_that_is_not_sqlite_is_refused_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / LEDGER_FILE
    junk = b"lead_id,phone\n1,2125550123\n" * 200
    path.write_bytes(junk)
    with pytest.raises(LedgerError) as caught:
        Ledger(tmp_path)
    assert str(path) in str(caught.value)
    assert "not an SQLite database" in str(caught.value)
    assert caught.value.exit_code == 2
    assert path.read_bytes() == junk


def test_a_failed_migration_changes_nothing(tmp_path: Path) -> None:
    # Someone else's SQLite file at our path, with a clashing table: the migration
    # fails part way and must leave neither our other tables nor a version behind.
    raw = sqlite3.connect(tmp_path / LEDGER_FILE)
    raw.execute("CREATE TABLE requests (x)")
    raw.commit()
    raw.close()
    with pytest.raises(LedgerError, match="already exists") as caught:
        Ledger(tmp_path)
    assert str(tmp_path / LEDGER_FILE) in str(caught.value)
    raw = sqlite3.connect(tmp_path / LEDGER_FILE)
    try:
        assert raw.execute("PRAGMA user_version").fetchone() == (0,)
        names = [n for (n,) in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert names == ["requests"]
    finally:
        raw.close()


def open_at_once(state: Path, count: int) -> list[BaseException]:
    """Open ``count`` Ledgers of one folder from as many threads at the same moment."""
    barrier = threading.Barrier(count)
    opened: list[Ledger] = []
    errors: list[BaseException] = []

    def open_it() -> None:
        barrier.wait()
        try:
            opened.append(Ledger(state))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for each in opened:
        each.close()
    return errors


def test_openers_of_a_fresh_file_at_the_same_time_all_succeed(tmp_path: Path) -> None:
    for attempt in range(5):
        state = tmp_path / str(attempt)
        assert open_at_once(state, 3) == []
        check = Ledger(state)
        try:
            assert check.conn.execute("PRAGMA user_version").fetchone() == (2,)
        finally:
            check.close()


def test_wal_mode_is_on_for_every_connection(ledger: Ledger) -> None:
    assert ledger.conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert ledger.conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    seen: list[Any] = []
    thread = threading.Thread(
        target=lambda: seen.append(ledger.conn.execute("PRAGMA journal_mode").fetchone())
    )
    thread.start()
    thread.join()
    assert seen == [("wal",)]
    # and it is the file's persistent mode, not just this connection's
    raw = sqlite3.connect(ledger.path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        raw.close()
    commit_one(ledger, "2125550123")
    assert ledger.path.with_name(LEDGER_FILE + "-wal").is_file()


def test_connections_are_per_thread_and_close_closes_them_all(ledger: Ledger) -> None:
    main = ledger.conn
    assert ledger.conn is main
    other: list[sqlite3.Connection] = []
    thread = threading.Thread(target=lambda: other.append(ledger.conn))
    thread.start()
    thread.join()
    assert other[0] is not main
    ledger.close()
    for conn in (main, other[0]):
        with pytest.raises(sqlite3.ProgrammingError):
            conn.execute("SELECT 1")
    # usable again afterwards: a fresh connection for this thread
    assert ledger.conn is not main
    assert ledger.conn.execute("PRAGMA user_version").fetchone() == (2,)


# -- runs -------------------------------------------------------------------------


def test_start_records_a_running_run(ledger: Ledger) -> None:
    before = time.time()
    record = ledger.start(
        RUN,
        "job-a",
        config_path=None,
        input_path="in.csv",
        output_path="out.csv",
        cache_cutoff=123.5,
    )
    assert record == ledger.get_run(RUN)
    assert (record.run_id, record.job, record.state, record.session) == (
        RUN,
        "job-a",
        "running",
        1,
    )
    assert (record.config_path, record.input_path, record.output_path) == (
        None,
        "in.csv",
        "out.csv",
    )
    assert record.cache_cutoff == 123.5
    assert before <= record.started_at <= time.time()
    assert record.exit_code is None and record.stop_reason is None
    assert ledger.get_run("no-such-run") is None


def test_a_run_id_is_unique(ledger: Ledger) -> None:
    start(ledger, RUN)
    with pytest.raises(sqlite3.IntegrityError):
        start(ledger, RUN)


def test_transitions_set_state_exit_code_and_reason(ledger: Ledger) -> None:
    start(ledger, RUN)
    ledger.stop(RUN, 3, "budget reached")
    run = ledger.get_run(RUN)
    assert run is not None
    assert (run.state, run.exit_code, run.stop_reason, run.session) == (
        "stopped",
        3,
        "budget reached",
        1,
    )

    resumed = ledger.resume(RUN)
    assert resumed == ledger.get_run(RUN)
    assert (resumed.state, resumed.exit_code, resumed.stop_reason, resumed.session) == (
        "running",
        None,
        None,
        2,
    )
    assert resumed.started_at == run.started_at

    ledger.fail(RUN, 70, "disk full")
    run = ledger.get_run(RUN)
    assert run is not None
    assert (run.state, run.exit_code, run.stop_reason) == ("failed", 70, "disk full")

    assert ledger.resume(RUN).session == 3
    ledger.finish(RUN, 1)
    run = ledger.get_run(RUN)
    assert run is not None
    assert (run.state, run.exit_code, run.stop_reason, run.session) == ("finished", 1, None, 3)


def test_resumable_run_is_the_newest_unfinished_run_of_the_job(ledger: Ledger) -> None:
    assert ledger.resumable_run("job-a") is None
    start(ledger, "old", "job-a")
    start(ledger, "new", "job-a")
    start(ledger, "other-job", "job-b")
    times = {"old": 100.0, "new": 200.0, "other-job": 300.0}
    for run_id, when in times.items():
        ledger.conn.execute("UPDATE runs SET started_at = ? WHERE run_id = ?", (when, run_id))

    def resumable(job: str = "job-a") -> str | None:
        run = ledger.resumable_run(job)
        return None if run is None else run.run_id

    assert resumable() == "new"  # running: crashed as far as a new process can tell
    ledger.stop("new", 3, "SIGTERM")
    assert resumable() == "new"
    ledger.fail("new", 70, "boom")
    assert resumable() == "new"
    ledger.finish("new", 0)
    assert resumable() == "old"
    ledger.finish("old", 1)
    assert resumable() is None
    assert resumable("job-b") == "other-job"
    ledger.finish("other-job", 0)
    assert resumable("job-b") is None


def test_resumable_run_follows_start_order_without_help(ledger: Ledger) -> None:
    start(ledger, "first")
    time.sleep(0.002)
    start(ledger, "second")
    run = ledger.resumable_run("job-a")
    assert run is not None and run.run_id == "second"
    ledger.finish("second", 0)
    run = ledger.resumable_run("job-a")
    assert run is not None and run.run_id == "first"


# -- commit -----------------------------------------------------------------------


def test_commit_files_the_request_and_every_answer(ledger: Ledger) -> None:
    request = log("req-1", numbers=3, credits=2, http_status=200)
    ledger.commit(
        request,
        [
            ans("2125550001", "hit", {"name": {"first": "Ann"}, "score": 0.5}, first_row=4),
            ans("2125550002", "no_match", None, credits=1, first_row=7),
            ans("2125550003", "failed", None, error="timed out", credits=0, first_row=9),
        ],
        RUN,
        2,
    )
    rows = sorted(
        ledger.find(PROVIDER, PARAMS, ["2125550001", "2125550002", "2125550003"], RUN, None)
    )
    assert rows == [
        ("2125550001", RUN, 2, "hit", '{"name":{"first":"Ann"},"score":0.5}', None, 1, "req-1", 4),
        ("2125550002", RUN, 2, "no_match", None, None, 1, "req-1", 7),
        # a failure was answered by no request
        ("2125550003", RUN, 2, "failed", None, "timed out", 0, None, 9),
    ]
    stored = ledger.conn.execute(
        "SELECT request_id, run_id, session, provider, attempt, numbers, sent_at, http_status,"
        " outcome, credits, latency_ms, error FROM requests"
    ).fetchall()
    assert stored == [
        ("req-1", RUN, 2, PROVIDER, 1, 3, request.sent_at, 200, "answered", 2, 12.5, None)
    ]


def test_commit_with_no_answers_logs_the_request_only(ledger: Ledger) -> None:
    ledger.commit(log("req-429", http_status=429, outcome="throttled"), [], RUN, 1)
    assert table_counts(ledger) == (1, 0)


def test_a_commit_whose_answer_cannot_be_serialised_leaves_nothing(ledger: Ledger) -> None:
    commit_one(ledger, "2125550000")
    before = table_counts(ledger)
    with pytest.raises(TypeError):
        ledger.commit(
            log("req-bad", numbers=2),
            [ans("2125550001"), ans("2125550002", answer={"when": object()})],
            RUN,
            1,
        )
    assert table_counts(ledger) == before
    assert ledger.find(PROVIDER, PARAMS, ["2125550001", "2125550002"], RUN, None) == []


def test_a_commit_failing_mid_transaction_is_rolled_back(ledger: Ledger) -> None:
    commit_one(ledger, "2125550000")
    before = table_counts(ledger)
    bad = Answer("2125550002", None, None, None, 1, 0)  # type: ignore[arg-type]
    with pytest.raises(sqlite3.IntegrityError):
        # the request row and the first lookup are written before the NOT NULL fails
        ledger.commit(log("req-bad", numbers=2), [ans("2125550001"), bad], RUN, 1)
    assert table_counts(ledger) == before
    assert (
        ledger.conn.execute("SELECT 1 FROM requests WHERE request_id = 'req-bad'").fetchall() == []
    )
    assert not ledger.conn.in_transaction
    # and the connection is fine for the next one
    commit_one(ledger, "2125550001")
    assert table_counts(ledger) == (before[0] + 1, before[1] + 1)


def test_commit_without_set_params_writes_nothing(ledger: Ledger) -> None:
    with pytest.raises(KeyError):
        ledger.commit(log("req-x", provider="checkthatphone"), [ans("2125550001")], RUN, 1)
    assert table_counts(ledger) == (0, 0)
    assert not ledger.conn.in_transaction


def test_quotes_in_provider_and_run_id_are_safe(ledger: Ledger) -> None:
    provider, run_id = "o'provider", "run'); DROP TABLE lookups; --"
    ledger.set_params(provider, "p'1")
    commit_one(ledger, "2125550001", provider=provider, run_id=run_id)
    rows = ledger.find(provider, "p'1", ["2125550001"], run_id, None)
    assert [(r[0], r[1]) for r in rows] == [("2125550001", run_id)]
    assert ledger.lookup_counts(run_id, provider) == {"hit": 1}


def test_a_later_commit_for_the_same_lookup_replaces_the_earlier(ledger: Ledger) -> None:
    commit_one(ledger, "2125550001", "failed", session=1)
    first = ledger.find(PROVIDER, PARAMS, ["2125550001"], RUN, None)
    assert [(r[2], r[3], r[5], r[7]) for r in first] == [(1, "failed", "boom", None)]
    assert ledger.lookup_counts(RUN, PROVIDER) == {"failed": 1}

    retry = commit_one(ledger, "2125550001", "hit", session=2, answer={"n": 1}, credits=3)
    rows = ledger.find(PROVIDER, PARAMS, ["2125550001"], RUN, None)
    assert rows == [("2125550001", RUN, 2, "hit", '{"n":1}', None, 3, retry, 0)]
    assert ledger.lookup_counts(RUN, PROVIDER) == {"hit": 1}
    assert ledger.credits_of_run(RUN) == 3


def test_each_run_keeps_its_own_row_for_a_lookup(ledger: Ledger) -> None:
    commit_one(ledger, "2125550001", "hit", run_id="a", answer={"v": "a"})
    commit_one(ledger, "2125550001", "no_match", run_id="b")
    rows = ledger.find(PROVIDER, PARAMS, ["2125550001"], "b", 0.0)
    assert sorted((r[1], r[3], r[4]) for r in rows) == [
        ("a", "hit", '{"v":"a"}'),
        ("b", "no_match", None),
    ]


# -- find -------------------------------------------------------------------------


def test_find_returns_this_runs_failures_but_not_other_runs(ledger: Ledger) -> None:
    commit_one(ledger, "2125550001", "failed", run_id="earlier")
    commit_one(ledger, "2125550002", "failed", run_id=RUN)
    keys = ["2125550001", "2125550002"]
    for cutoff in (None, 0.0, time.time() - 3600):
        rows = ledger.find(PROVIDER, PARAMS, keys, RUN, cutoff)
        assert [(r[0], r[1], r[3]) for r in rows] == [("2125550002", RUN, "failed")]


@pytest.mark.parametrize("status", SETTLED)
def test_find_serves_other_runs_settled_rows_only_from_the_cutoff(
    ledger: Ledger, status: str
) -> None:
    commit_one(ledger, "2125550001", status, run_id="earlier")
    set_fetched_at(ledger, "earlier", 1000.0)

    def found(cutoff: float | None) -> list[str]:
        return [r[1] for r in ledger.find(PROVIDER, PARAMS, ["2125550001"], RUN, cutoff)]

    assert found(None) == []  # no cache
    assert found(0.0) == ["earlier"]
    assert found(999.0) == ["earlier"]
    assert found(1000.0) == ["earlier"]  # at the cutoff counts
    assert found(1000.001) == []
    assert found(time.time()) == []


def test_find_cutoff_relative_to_now(ledger: Ledger) -> None:
    commit_one(ledger, "2125550001", "hit", run_id="earlier")
    keys = ["2125550001"]
    assert len(ledger.find(PROVIDER, PARAMS, keys, RUN, time.time() - 3600)) == 1
    assert ledger.find(PROVIDER, PARAMS, keys, RUN, time.time() + 3600) == []


def test_find_returns_this_runs_rows_whatever_the_cutoff(ledger: Ledger) -> None:
    commit_one(ledger, "2125550001", "hit")
    commit_one(ledger, "2125550002", "failed")
    set_fetched_at(ledger, RUN, 5.0)
    keys = ["2125550001", "2125550002"]
    for cutoff in (None, 0.0, 10.0, time.time() + 3600):
        assert keys_of(ledger.find(PROVIDER, PARAMS, keys, RUN, cutoff)) == keys


def test_different_params_never_answer_each_other(ledger: Ledger) -> None:
    ledger.set_params(PROVIDER, "litigator=on")
    commit_one(ledger, "2125550001", answer={"litigator": True})
    commit_one(ledger, "2125550009", run_id="earlier", answer={"litigator": True})
    ledger.set_params(PROVIDER, "litigator=off")
    commit_one(ledger, "2125550001", answer={"litigator": None})
    keys = ["2125550001", "2125550009"]

    on = ledger.find(PROVIDER, "litigator=on", keys, RUN, 0.0)
    off = ledger.find(PROVIDER, "litigator=off", keys, RUN, 0.0)
    assert sorted((r[0], r[4]) for r in on) == [
        ("2125550001", '{"litigator":true}'),
        ("2125550009", '{"litigator":true}'),
    ]
    assert [(r[0], r[4]) for r in off] == [("2125550001", '{"litigator":null}')]
    assert ledger.find(PROVIDER, "something-else", keys, RUN, 0.0) == []
    # one lookup row per params
    assert ledger.lookup_counts(RUN, PROVIDER) == {"hit": 2}


def test_different_providers_never_answer_each_other(ledger: Ledger) -> None:
    ledger.set_params("checkthatphone", PARAMS)
    commit_one(ledger, "2125550001", provider="checkthatphone")
    assert ledger.find(PROVIDER, PARAMS, ["2125550001"], RUN, 0.0) == []
    assert len(ledger.find("checkthatphone", PARAMS, ["2125550001"], RUN, 0.0)) == 1


def test_find_with_thousands_of_keys(ledger: Ledger) -> None:
    stored = [f"{2125500000 + i}" for i in range(1500)]
    ledger.commit(
        log(numbers=len(stored)),
        [ans(key, first_row=i) for i, key in enumerate(stored)],
        RUN,
        1,
    )
    asked = stored + [f"{3125500000 + i}" for i in range(40_000)]  # past any bound-variable cap
    rows = ledger.find(PROVIDER, PARAMS, asked, RUN, None)
    assert keys_of(rows) == sorted(stored)
    assert {r[0]: r[8] for r in rows} == {key: i for i, key in enumerate(stored)}


def test_find_probes_by_key_instead_of_scanning(ledger: Ledger) -> None:
    # A plan that scans the provider's rows for every asked key does rows x keys
    # work; one primary-key probe per key does a few dozen VM steps per key. Count
    # SQLite's VM instructions (deterministic), not seconds (noisy).
    stored = [f"{2125500000 + i}" for i in range(2_000)]
    ledger.commit(log(numbers=len(stored)), [ans(key) for key in stored], RUN, 1)
    steps = [0]

    def count() -> int:
        steps[0] += 100
        return 0

    ledger.conn.set_progress_handler(count, 100)
    try:
        rows = ledger.find(PROVIDER, PARAMS, stored, RUN, 0.0)
        find_steps, steps[0] = steps[0], 0
        best = ledger.best_answers(PROVIDER, PARAMS, stored, RUN, 0.0)
        best_steps = steps[0]
    finally:
        ledger.conn.set_progress_handler(None, 0)
    assert len(rows) == len(best) == len(stored)
    assert find_steps < 100 * len(stored), find_steps  # a scan took ~8,000 per key
    assert best_steps < 300 * len(stored), best_steps


def test_find_with_no_keys_or_unknown_keys(ledger: Ledger) -> None:
    commit_one(ledger, "2125550001")
    assert ledger.find(PROVIDER, PARAMS, [], RUN, 0.0) == []
    assert ledger.find(PROVIDER, PARAMS, ["9999999999"], RUN, 0.0) == []


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
lookup_keys = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1, max_size=20
)


def test_answers_round_trip_through_commit_and_find(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.set_params(PROVIDER, PARAMS)

    @settings(max_examples=60, deadline=None)
    @given(
        st.dictionaries(
            lookup_keys,
            st.tuples(
                st.sampled_from([*SETTLED, "failed"]),
                st.none() | st.dictionaries(st.text(max_size=10), json_values, max_size=6),
                st.none() | st.text(max_size=30),
                st.integers(min_value=0, max_value=10**9),
                st.integers(min_value=0, max_value=10**9),
            ),
            min_size=1,
            max_size=8,
        ),
        st.integers(min_value=1, max_value=50),
    )
    def check(
        by_key: dict[str, tuple[str, dict[str, Any] | None, str | None, int, int]], session: int
    ) -> None:
        run_id = uuid.uuid4().hex
        request_id = uuid.uuid4().hex
        answers = [Answer(k, *fields) for k, fields in by_key.items()]
        ledger.commit(log(request_id, numbers=len(answers)), answers, run_id, session)
        rows = ledger.find(PROVIDER, PARAMS, list(by_key), run_id, None)
        assert len(rows) == len(by_key)
        for key, row_run, row_session, status, text, error, credits, req, first_row in rows:
            want_status, want_answer, want_error, want_credits, want_row = by_key[key]
            assert (row_run, row_session, status) == (run_id, session, want_status)
            assert (None if text is None else json.loads(text)) == want_answer
            assert (error, credits, first_row) == (want_error, want_credits, want_row)
            assert req == (None if status == "failed" else request_id)
        counts: dict[str, int] = {}
        for status, *_ in by_key.values():
            counts[status] = counts.get(status, 0) + 1
        assert ledger.lookup_counts(run_id, PROVIDER) == counts
        assert ledger.credits_of_run(run_id) == sum(f[3] for f in by_key.values())

    try:
        check()
    finally:
        ledger.close()


# -- best_answers -----------------------------------------------------------------


def test_best_answers_prefers_own_settled_then_newest_cached_then_own_failure(
    ledger: Ledger,
) -> None:
    # k1: own hit beats a newer cached hit
    commit_one(ledger, "k1", "hit", answer={"from": "own"})
    commit_one(ledger, "k1", "hit", run_id="later", answer={"from": "later"})
    # k2: own failure loses to a cached answer; the newest cached one wins
    commit_one(ledger, "k2", "failed")
    commit_one(ledger, "k2", "no_match", run_id="old")
    commit_one(ledger, "k2", "hit", run_id="newer", answer={"from": "newer"})
    # k3: only an own failure (and another run's failure, never served)
    commit_one(ledger, "k3", "failed", run_id="old")
    commit_one(ledger, "k3", "failed")
    # k4: only another run's failure
    commit_one(ledger, "k4", "failed", run_id="old")
    set_fetched_at(ledger, RUN, 300.0)
    set_fetched_at(ledger, "old", 100.0)
    set_fetched_at(ledger, "newer", 200.0)
    set_fetched_at(ledger, "later", 400.0)

    best = {
        r[0]: (r[1], r[2], r[3])
        for r in ledger.best_answers(PROVIDER, PARAMS, ["k1", "k2", "k3", "k4"], RUN, 0.0)
    }
    assert best == {
        "k1": (RUN, "hit", '{"from":"own"}'),
        "k2": ("newer", "hit", '{"from":"newer"}'),
        "k3": (RUN, "failed", None),
    }
    # cutoff 150 hides "old" (100) only; 250 hides "newer" (200) too; None hides every run
    best = {
        r[0]: (r[1], r[2])
        for r in ledger.best_answers(PROVIDER, PARAMS, ["k1", "k2", "k3"], RUN, 150.0)
    }
    assert best == {"k1": (RUN, "hit"), "k2": ("newer", "hit"), "k3": (RUN, "failed")}
    best = {
        r[0]: (r[1], r[2])
        for r in ledger.best_answers(PROVIDER, PARAMS, ["k1", "k2", "k3"], RUN, 250.0)
    }
    assert best == {"k1": (RUN, "hit"), "k2": (RUN, "failed"), "k3": (RUN, "failed")}
    best = {
        r[0]: (r[1], r[2])
        for r in ledger.best_answers(PROVIDER, PARAMS, ["k1", "k2", "k3"], RUN, None)
    }
    assert best == {"k1": (RUN, "hit"), "k2": (RUN, "failed"), "k3": (RUN, "failed")}


# -- report sums ------------------------------------------------------------------


def test_request_totals(ledger: Ledger) -> None:
    assert ledger.request_totals(RUN, PROVIDER) == {
        "requests": 0,
        "retries": 0,
        "http_429": 0,
        "numbers": 0,
        "credits": 0,
        "unanswered": 0,
        "unanswered_numbers": 0,
    }

    def sent(request_id: str, attempt: int, numbers: int, run_id: str = RUN) -> None:
        ledger.log_sent(request_id, PROVIDER, run_id, 1, attempt, numbers)

    sent("a", 1, 10)
    ledger.commit(log("a", numbers=10, credits=10), [], RUN, 1)
    sent("b", 1, 5)
    ledger.commit(
        log("b", numbers=5, http_status=429, outcome="throttled", error="429"), [], RUN, 1
    )
    sent("c", 2, 5)
    ledger.commit(log("c", attempt=2, numbers=5, credits=5), [], RUN, 1)
    sent("d", 1, 7)  # in flight when the process died: never answered
    sent("e", 3, 5)
    ledger.commit(log("e", attempt=3, numbers=5, http_status=None, outcome="transient"), [], RUN, 1)
    sent("g", 1, 4)  # a timeout (no HTTP answer): may have been charged
    timeout = "tcpa_authority: no answer within 5s"
    ledger.commit(log("g", numbers=4, http_status=None, outcome="transient", error=timeout),
                  [], RUN, 1)  # fmt: skip
    sent("h", 1, 9)  # the connection was never made: nothing was sent
    refused = "tcpa_authority: connection failed: ConnectError"
    ledger.commit(log("h", numbers=9, http_status=None, outcome="transient", error=refused),
                  [], RUN, 1)  # fmt: skip
    sent("i", 1, 6)  # a 502 is an answer, not charged by the contract
    ledger.commit(log("i", numbers=6, http_status=502, outcome="transient"), [], RUN, 1)
    ledger.commit(log("f", numbers=2, http_status=400, outcome="refused"), [], RUN, 1)
    sent("a", 1, 10)  # a note landing after its own response changes nothing
    # other runs and other providers do not count
    sent("x", 2, 99, run_id="other-run")
    ledger.commit(log("y", "checkthatphone", attempt=2, numbers=50, credits=50), [], RUN, 1)
    ledger.log_sent("z", "checkthatphone", RUN, 1, 1, 3)

    assert ledger.request_totals(RUN, PROVIDER) == {
        "requests": 9,
        "retries": 2,  # c, e
        "http_429": 1,  # b
        "numbers": 15,  # a + c: only answered requests
        "credits": 15,
        "unanswered": 3,  # d (in flight when the process died), e and g (timed out)
        "unanswered_numbers": 7 + 5 + 4,
    }
    assert ledger.request_totals(RUN, "checkthatphone") == {
        "requests": 2,
        "retries": 1,
        "http_429": 0,
        "numbers": 50,
        "credits": 50,
        "unanswered": 1,
        "unanswered_numbers": 3,
    }
    assert ledger.request_totals("other-run", PROVIDER)["unanswered"] == 1


def test_lookup_counts_and_credits_are_per_run_and_provider(ledger: Ledger) -> None:
    ledger.set_params("checkthatphone", PARAMS)
    ledger.commit(
        log(numbers=4),
        [
            ans("1", "hit", credits=2),
            ans("2", "hit", credits=2),
            ans("3", "no_match", credits=1),
            ans("4", "failed", error="x", credits=0),
        ],
        RUN,
        1,
    )
    ledger.commit(log(numbers=1), [ans("5", "invalid_input", credits=0)], RUN, 1)
    ledger.commit(log("ctp", "checkthatphone"), [ans("1", "hit", credits=7)], RUN, 1)
    ledger.commit(log(), [ans("9", "hit", credits=100)], "other-run", 1)

    assert ledger.lookup_counts(RUN, PROVIDER) == {
        "hit": 2,
        "no_match": 1,
        "failed": 1,
        "invalid_input": 1,
    }
    assert ledger.lookup_counts(RUN, "checkthatphone") == {"hit": 1}
    assert ledger.lookup_counts(RUN, "nobody") == {}
    assert ledger.credits_of_run(RUN) == 12
    assert ledger.credits_of_run("other-run") == 100
    assert ledger.credits_of_run("no-such-run") == 0


# -- concurrency and durability ---------------------------------------------------


def test_two_writer_threads_and_a_reader_do_not_lock(ledger: Ledger) -> None:
    per_writer = 200
    errors: list[BaseException] = []
    done = threading.Event()
    snapshots: list[tuple[int, int]] = []

    def write(name: str) -> None:
        try:
            for i in range(per_writer):
                ledger.commit(
                    log(f"{name}-{i}", numbers=2),
                    [ans(f"{name}-{i}-a"), ans(f"{name}-{i}-b", "no_match")],
                    RUN,
                    1,
                )
        except BaseException as exc:
            errors.append(exc)

    def read() -> None:
        try:
            while not done.is_set():
                # one statement, one snapshot: a request is never seen without its answers
                snapshots.append(table_counts(ledger))
                ledger.find(PROVIDER, PARAMS, [f"w0-{i}-a" for i in range(per_writer)], RUN, 0.0)
                ledger.request_totals(RUN, PROVIDER)
        except BaseException as exc:
            errors.append(exc)

    writers = [threading.Thread(target=write, args=(f"w{n}",)) for n in range(2)]
    reader = threading.Thread(target=read)
    reader.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    reader.join()

    assert errors == []
    assert snapshots, "the reader never ran"
    assert all(lookups == 2 * requests for requests, lookups in snapshots)
    assert snapshots == sorted(snapshots)  # never goes backwards
    assert table_counts(ledger) == (2 * per_writer, 4 * per_writer)
    assert ledger.lookup_counts(RUN, PROVIDER) == {
        "hit": 2 * per_writer,
        "no_match": 2 * per_writer,
    }
    totals = ledger.request_totals(RUN, PROVIDER)
    assert (totals["requests"], totals["numbers"]) == (2 * per_writer, 4 * per_writer)


def test_a_commit_survives_the_process_being_killed(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import os, sys, time
        from pathlib import Path
        from pipeline.ledger import Answer, Ledger, RequestLog

        ledger = Ledger(Path(sys.argv[1]))
        ledger.start("r1", "job", config_path=None, input_path="in.csv",
                     output_path="out.csv", cache_cutoff=None)
        ledger.set_params("p", "v1")
        ledger.log_sent("req-1", "p", "r1", 1, 1, 2)
        ledger.log_sent("req-2", "p", "r1", 1, 1, 1)
        ledger.commit(
            RequestLog("req-1", "p", 1, 2, time.time(), 200, "answered", 3, 1.0, None),
            [Answer("2125550001", "hit", {"a": 1}, None, 3, 0),
             Answer("2125550002", "no_match", None, None, 0, 5)],
            "r1", 1,
        )
        os.kill(os.getpid(), 9)
        """
    )
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=repo,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -9, done.stderr.decode()
    # never checkpointed: the answers live only in the WAL
    assert (tmp_path / (LEDGER_FILE + "-wal")).stat().st_size > 0

    ledger = Ledger(tmp_path)
    try:
        run = ledger.resumable_run("job")
        assert run is not None and (run.run_id, run.state) == ("r1", "running")
        rows = sorted(ledger.find("p", "v1", ["2125550001", "2125550002"], "r1", None))
        assert rows == [
            ("2125550001", "r1", 1, "hit", '{"a":1}', None, 3, "req-1", 0),
            ("2125550002", "r1", 1, "no_match", None, None, 0, "req-1", 5),
        ]
        assert ledger.request_totals("r1", "p") == {
            "requests": 2,
            "retries": 0,
            "http_429": 0,
            "numbers": 2,
            "credits": 3,
            "unanswered": 1,
            "unanswered_numbers": 1,
        }
    finally:
        ledger.close()


def test_processes_creating_a_new_ledger_at_once_all_open_it(tmp_path: Path) -> None:
    # A new ledger is built under a temporary name and linked into place whole, so no
    # opener meets the zero-byte file SQLite starts from (one is refused as damage).
    code = (
        "import sys, time; from pathlib import Path; from pipeline.ledger import Ledger\n"
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
        "ledger = Ledger(Path(sys.argv[1]))\n"
        "print(len(ledger.runs()))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    for attempt in range(3):
        state = tmp_path / str(attempt)
        start_at = str(time.time() + 1.5)
        command = [sys.executable, "-c", code, str(state), start_at]
        procs = [
            subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
            )
            for _ in range(8)
        ]
        outputs = [proc.communicate(timeout=60) for proc in procs]
        results = [(p.returncode, *out) for p, out in zip(procs, outputs, strict=True)]
        assert results == [(0, "0\n", "")] * 8
        names = {p.name for p in state.iterdir()}  # (-wal/-shm: if the last two closed at once)
        assert LEDGER_FILE in names and not [n for n in names if n.endswith(".tmp")]
