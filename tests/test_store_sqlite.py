"""The SQLite store: the store contract, then what only a file has (its schema and
migrations, WAL, connections per thread, damage, a failed write). Processes:
``test_store_sqlite_processes.py``."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from store_contract import FakeClock, StoreContract
from store_contract.helpers import PARAMS, PROVIDER, RUN, ans, commit, commit_one, log, scope
from store_contract.helpers import session as session_of

from pipeline.store import has_store, open_store
from pipeline.store.base import StoreWriteError, UnusableStoreError
from pipeline.store.records import NewRun
from pipeline.store.sqlite import LEDGER_FILE, SqliteStore
from pipeline.store.sqlite_keys import LEVELS
from pipeline.store.sqlite_schema import MIGRATIONS

REPO = Path(__file__).resolve().parents[1]


class TestSqliteStoreContract(StoreContract):
    @pytest.fixture
    def store(self, clock: FakeClock, tmp_path: Path) -> Iterator[SqliteStore]:
        opened = SqliteStore(tmp_path / "state", clock=clock)
        try:
            yield opened
        finally:
            opened.close()


class TestSqliteStoreContractByKeyOnly(StoreContract):
    """The same contract with no answer remembered by its rowid (sqlite_recent): every
    answer found by its key in the levels, as after a restart."""

    @pytest.fixture
    def store(self, clock: FakeClock, tmp_path: Path) -> Iterator[SqliteStore]:
        opened = SqliteStore(tmp_path / "state", clock=clock, recent_limit=0)
        try:
            yield opened
        finally:
            opened.close()


class TestSqliteStoreContractMergingOften(StoreContract):
    """The same contract with the key index's levels merged every two and three keys:
    each rule holds whichever level a key is in."""

    @pytest.fixture
    def store(self, clock: FakeClock, tmp_path: Path) -> Iterator[SqliteStore]:
        opened = SqliteStore(tmp_path / "state", clock=clock, level_limits=(2, 3))
        try:
            yield opened
        finally:
            opened.close()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "state")
    try:
        yield opened
    finally:
        opened.close()


def table_counts(ledger: SqliteStore) -> tuple[int, int]:
    row = ledger.conn.execute(
        "SELECT (SELECT count(*) FROM requests), (SELECT count(*) FROM lookups)"
    ).fetchone()
    return int(row[0]), int(row[1])


# -- schema and file ----------------------------------------------------------------


def test_open_store_makes_a_sqlite_file_in_the_state_folder(tmp_path: Path) -> None:
    state = tmp_path / "deep" / "state"
    assert not has_store(state)
    store = open_store(state)
    try:
        assert isinstance(store, SqliteStore) and has_store(state)
        assert store.location == str(state / LEDGER_FILE)
    finally:
        store.close()


def test_runs_are_stamped_by_the_wall_clock_and_a_run_id_is_a_primary_key(
    ledger: SqliteStore,
) -> None:
    before = time.time()
    record = ledger.start(NewRun(RUN, "job", None, "in.csv", "out.csv", None))
    assert before <= record.started_at <= time.time()
    with pytest.raises(StoreWriteError, match="UNIQUE constraint failed") as caught:
        ledger.start(NewRun(RUN, "job", None, "in.csv", "out.csv", None))
    assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)


def test_a_fresh_file_gets_the_newest_schema_version(tmp_path: Path) -> None:
    state = tmp_path / "deep" / "state"
    with SqliteStore(state) as ledger:
        assert isinstance(ledger, SqliteStore)
        assert ledger.path == state / LEDGER_FILE
        assert ledger.path.is_file()
        assert ledger.conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
        tables = {
            name
            for (name,) in ledger.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        assert tables == {"runs", "lookups", "requests", "sessions", "scopes", *LEVELS}


def test_reopening_is_a_no_op(tmp_path: Path) -> None:
    first = SqliteStore(tmp_path)
    first.start(NewRun(RUN, "job-a", "cfg.toml", "in.csv", "out.parquet", None))
    request_id = commit_one(first, "2125550123")
    schema = first.conn.execute(
        "SELECT type, name, sql FROM sqlite_master ORDER BY name"
    ).fetchall()
    first.close()

    again = SqliteStore(tmp_path)
    try:
        assert again.conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
        assert (
            again.conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
            == schema
        )
        run = again.get_run(RUN)
        assert run is not None and run.state == "running"
        rows = again.best(scope(), ["2125550123"])
        assert [(r.key, r.status, r.request_id) for r in rows] == [
            ("2125550123", "hit", request_id)
        ]
    finally:
        again.close()


def test_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    SqliteStore(tmp_path).close()
    raw = sqlite3.connect(tmp_path / LEDGER_FILE)
    newer = len(MIGRATIONS) + 1
    raw.execute(f"PRAGMA user_version = {newer}")
    raw.close()
    with pytest.raises(UnusableStoreError, match=f"version {newer} is newer") as caught:
        SqliteStore(tmp_path)
    assert str(tmp_path / LEDGER_FILE) in str(caught.value)


def test_a_file_that_is_not_sqlite_is_refused_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / LEDGER_FILE
    junk = b"lead_id,phone\n1,2125550123\n" * 200
    path.write_bytes(junk)
    with pytest.raises(UnusableStoreError) as caught:
        SqliteStore(tmp_path)
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
    with pytest.raises(UnusableStoreError, match="already exists") as caught:
        SqliteStore(tmp_path)
    assert str(tmp_path / LEDGER_FILE) in str(caught.value)
    raw = sqlite3.connect(tmp_path / LEDGER_FILE)
    try:
        assert raw.execute("PRAGMA user_version").fetchone() == (0,)
        names = [n for (n,) in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert names == ["requests"]
    finally:
        raw.close()


def test_damage_found_by_a_query_is_one_line_naming_the_file(tmp_path: Path) -> None:
    with SqliteStore(tmp_path) as ledger:
        for number in range(200):
            ledger.start(NewRun(f"run-{number}", "job", None, "in.csv", "out.csv", None))
    size = (tmp_path / LEDGER_FILE).stat().st_size
    with open(tmp_path / LEDGER_FILE, "r+b") as fh:  # the header page stays
        fh.seek(4096)
        fh.write(b"\xab" * (size - 4096))
    ledger = SqliteStore(tmp_path)
    try:
        with pytest.raises(UnusableStoreError) as caught:
            ledger.runs()
    finally:
        ledger.close()
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / LEDGER_FILE}: the ledger is damaged (")
    assert "Nothing was changed: restore it" in message and "\n" not in message


def test_a_write_that_fails_is_one_line_naming_the_file_and_writes_nothing(
    ledger: SqliteStore,
) -> None:
    commit_one(ledger, "2125550000")
    ledger.conn.execute("PRAGMA query_only = ON")  # as a read-only file or mount would
    with pytest.raises(StoreWriteError) as caught:
        commit(ledger, session_of(), log("req-1", numbers=1), [ans("2125550001")])
    assert str(caught.value) == f"{ledger.path}: attempt to write a readonly database"
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    assert caught.value.exit_code == 3
    with pytest.raises(StoreWriteError, match="readonly"):
        ledger.start(NewRun(RUN, "job", None, "in.csv", "out.csv", None))
    assert not ledger.conn.in_transaction
    ledger.conn.execute("PRAGMA query_only = OFF")
    assert table_counts(ledger) == (1, 1)


def open_at_once(state: Path, count: int) -> list[BaseException]:
    """Open ``count`` stores of one folder from as many threads at the same moment."""
    barrier = threading.Barrier(count)
    opened: list[SqliteStore] = []
    errors: list[BaseException] = []

    def open_it() -> None:
        barrier.wait()
        try:
            opened.append(SqliteStore(state))
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
        with SqliteStore(state) as check:
            assert isinstance(check, SqliteStore)
            assert check.conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)


def test_wal_mode_is_on_for_every_connection(ledger: SqliteStore) -> None:
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


def test_connections_are_per_thread_and_close_closes_them_all(ledger: SqliteStore) -> None:
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
    assert ledger.conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)


def test_a_new_connection_closes_those_of_threads_that_have_ended(ledger: SqliteStore) -> None:
    # The engine's writes run on a pool whose threads retire and are replaced: their
    # connections must not pile up for the whole run.
    main = ledger.conn
    opened: list[sqlite3.Connection] = []

    def open_one() -> None:
        opened.append(ledger.conn)

    first = threading.Thread(target=open_one)
    first.start()
    first.join()
    opened[0].execute("SELECT 1")  # still open: nothing new asked for one yet
    second = threading.Thread(target=open_one)
    second.start()
    second.join()
    with pytest.raises(sqlite3.ProgrammingError):  # closed when the second was opened
        opened[0].execute("SELECT 1")
    assert opened[1].execute("SELECT 1").fetchone() == (1,)
    assert main.execute("PRAGMA user_version").fetchone() == (
        len(MIGRATIONS),
    )  # a live thread's stays


# -- commit, as rows in the file -------------------------------------------------------


def test_commit_files_the_request_row_as_it_came(ledger: SqliteStore) -> None:
    request = log("req-1", numbers=3, credits=2, http_status=200)
    commit(ledger, session_of(RUN, 2), request, [ans("2125550001")])
    stored = ledger.conn.execute(
        "SELECT request_id, run_id, session, provider, attempt, numbers, sent_at, http_status,"
        " outcome, credits, latency_ms, error FROM requests"
    ).fetchall()
    assert stored == [
        ("req-1", RUN, 2, PROVIDER, 1, 3, request.sent_at, 200, "answered", 2, 12.5, None)
    ]


def test_a_commit_failing_mid_transaction_leaves_no_transaction_open(ledger: SqliteStore) -> None:
    commit_one(ledger, "2125550000")
    before = table_counts(ledger)
    bad = ans("2125550002")._replace(status=None)  # type: ignore[arg-type]
    with pytest.raises(StoreWriteError, match="NOT NULL") as caught:
        # the request row and the first lookup are written before the NOT NULL fails
        commit(ledger, session_of(), log("req-bad", numbers=2), [ans("2125550001"), bad])
    assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)
    assert table_counts(ledger) == before
    assert (
        ledger.conn.execute("SELECT 1 FROM requests WHERE request_id = 'req-bad'").fetchall() == []
    )
    assert not ledger.conn.in_transaction
    with pytest.raises(KeyError):
        commit(ledger, session_of(RUN, 1, PARAMS, "nobody"), log(provider="x"), [ans("1")])
    assert not ledger.conn.in_transaction
    commit_one(ledger, "2125550001")
    assert table_counts(ledger) == (before[0] + 1, before[1] + 1)


def test_best_probes_by_key_instead_of_scanning(ledger: SqliteStore) -> None:
    # A plan that scans the provider's rows for every asked key does rows x keys
    # work; one primary-key probe per key does a few dozen VM steps per key. Count
    # SQLite's VM instructions (deterministic), not seconds (noisy).
    stored = [f"{2125500000 + i}" for i in range(2_000)]
    commit(ledger, session_of(), log(numbers=len(stored)), [ans(key) for key in stored])
    steps = [0]

    def count() -> int:
        steps[0] += 100
        return 0

    ledger.conn.set_progress_handler(count, 100)
    try:
        best = ledger.best(scope(cache_from=0.0), stored)
    finally:
        ledger.conn.set_progress_handler(None, 0)
    assert len(best) == len(stored)
    assert steps[0] < 100 * len(stored), steps[0]  # a scan took ~8,000 per key


def test_two_writers_and_a_reader_see_a_request_with_all_its_answers(
    ledger: SqliteStore,
) -> None:
    per_writer = 200
    errors: list[BaseException] = []
    done = threading.Event()
    snapshots: list[tuple[int, int]] = []

    def write(name: str) -> None:
        try:
            for i in range(per_writer):
                commit(ledger, session_of(), log(f"{name}-{i}", numbers=2),
                       [ans(f"{name}-{i}-a"), ans(f"{name}-{i}-b", "no_match")])  # fmt: skip
        except BaseException as exc:
            errors.append(exc)

    def read() -> None:
        try:
            while not done.is_set():
                # one statement, one snapshot: a request is never seen without its answers
                snapshots.append(table_counts(ledger))
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
