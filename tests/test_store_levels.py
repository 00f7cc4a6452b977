"""The SQLite store's key index in levels (pipeline.store.sqlite_keys): settled answers'
keys in the newest level, merged in key order when a level is full and at the end of
each session; failed lookups found by their own index and deleted once their run
answers the key; a ledger of schema 4 gets the levels with every answer kept."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_contract import FakeClock
from store_contract.helpers import (
    PROVIDER,
    RUN,
    ans,
    commit,
    commit_one,
    log,
    new_run,
    scope,
    session,
)

from pipeline.store.sqlite import LEDGER_FILE, SqliteStore
from pipeline.store.sqlite_keys import LEVELS, MID, NEW, OLD
from pipeline.store.sqlite_schema import MIGRATIONS


def levels(state: Path) -> dict[str, str]:
    """key -> the level it is in (a key in two levels is asserted against)."""
    raw = sqlite3.connect(state / LEDGER_FILE)
    try:
        found: dict[str, str] = {}
        for level in LEVELS:
            for (key,) in raw.execute(f"SELECT key FROM {level} ORDER BY key"):
                assert key not in found, f"{key} in {found[key]} and {level}"
                found[str(key)] = level
        dangling = raw.execute(
            " UNION ALL ".join(
                f"SELECT row FROM {level} WHERE row NOT IN (SELECT rowid FROM lookups)"
                for level in LEVELS
            )
        ).fetchall()
        assert dangling == []
        return found
    finally:
        raw.close()


def rows_of(state: Path, key: str) -> list[tuple[str, int]]:
    raw = sqlite3.connect(state / LEDGER_FILE)
    try:
        return [
            (str(status), int(session))
            for status, session in raw.execute(
                "SELECT status, session FROM lookups WHERE key = ? ORDER BY rowid", (key,)
            )
        ]
    finally:
        raw.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def store(state: Path, clock: FakeClock) -> Iterator[SqliteStore]:
    """A store with the default level limits (nothing merged before a session ends)."""
    opened = SqliteStore(state, clock=clock)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def small(state: Path, clock: FakeClock) -> Iterator[SqliteStore]:
    opened = SqliteStore(state, clock=clock, level_limits=(3, 5))
    opened.start(new_run())
    try:
        yield opened
    finally:
        opened.close()


def test_keys_wait_in_the_newest_level_and_are_merged_when_it_is_full(
    small: SqliteStore, state: Path
) -> None:
    commit_one(small, "2125550103")
    commit_one(small, "2125550101", "no_match")
    assert levels(state) == {"2125550103": NEW, "2125550101": NEW}
    commit_one(small, "2125550102")  # the third fills it
    assert levels(state) == dict.fromkeys(["2125550101", "2125550102", "2125550103"], MID)
    for key in ["2125550104", "2125550105", "2125550106"]:
        commit_one(small, key)  # three more: the middle level holds 6 >= 5, and the
    # oldest (empty) is not more than four times as large: all go there
    assert set(levels(state).values()) == {OLD}
    commit_one(small, "2125550107")
    assert levels(state)["2125550107"] == NEW
    found = small.best(scope(), [f"212555010{i}" for i in range(1, 8)])
    assert sorted((b.key, b.status) for b in found) == [
        (f"212555010{i}", "no_match" if i == 1 else "hit") for i in range(1, 8)
    ]
    assert small.lookup_counts(RUN, PROVIDER) == {"hit": 6, "no_match": 1}


def test_the_middle_level_waits_while_the_oldest_is_much_larger(
    state: Path, clock: FakeClock
) -> None:
    store = SqliteStore(state, clock=clock, level_limits=(1, 2))
    try:
        store.start(new_run())
        for i in range(12):
            commit_one(store, f"21255501{i:02d}")
        where = levels(state)
        # 2 keys went to the oldest level first, then 2 more (4 <= 2 x 4), then the
        # middle level waits until it holds a quarter of the oldest's.
        assert sum(level == OLD for level in where.values()) >= 4
        assert sum(level == MID for level in where.values()) >= 2
        assert len(where) == 12
    finally:
        store.close()


def test_the_end_of_a_session_merges_the_newest_level(small: SqliteStore, state: Path) -> None:
    commit_one(small, "2125550101")
    assert levels(state) == {"2125550101": NEW}
    small.stop(RUN, 3, "stopped by a test")
    assert levels(state) == {"2125550101": MID}


def test_a_failed_lookup_is_in_no_level_and_goes_once_its_run_answers_it(
    state: Path, clock: FakeClock
) -> None:
    key = "2125550101"
    store = SqliteStore(state, clock=clock, level_limits=(2, 4))
    try:
        store.start(new_run())
        commit_one(store, key, "failed", credits=0)
        commit_one(store, "2125550199")
        commit_one(store, "2125550198")  # the settled keys move on; the failure stays
        assert levels(state) == {"2125550199": MID, "2125550198": MID}
        assert [b.status for b in store.best(scope(), [key])] == ["failed"]
        store.fail(RUN, 3, "the provider was down")
        store.resume(RUN)
        clock.advance(60)
        commit_one(store, key, "hit", number=2, credits=1)
        assert rows_of(state, key) == [("hit", 2)]
        assert levels(state)[key] == NEW
        assert [(b.status, b.session) for b in store.best(scope(number=2), [key])] == [("hit", 2)]
        assert store.lookup_counts(RUN, PROVIDER) == {"hit": 3}
        assert store.failure_reasons(RUN) == []
        assert store.credits_of_run(RUN) == 3
    finally:
        store.close()


def test_a_key_failed_twice_by_its_run_keeps_the_newer_failure(
    store: SqliteStore, state: Path, clock: FakeClock
) -> None:
    key = "2125550101"
    store.start(new_run())
    commit_one(store, key, "failed", credits=0)
    store.fail(RUN, 3, "down")
    store.resume(RUN)
    commit_one(store, key, "failed", number=2, credits=0)
    assert rows_of(state, key) == [("failed", 2)]
    assert store.lookup_counts(RUN, PROVIDER) == {"failed": 1}
    assert levels(state) == {}


def test_another_runs_failure_is_kept_beside_this_runs_answer(
    store: SqliteStore, state: Path, clock: FakeClock
) -> None:
    key = "2125550101"
    store.start(new_run("run-a"))
    commit_one(store, key, "failed", run_id="run-a", credits=0)
    store.start(new_run("run-b"))
    commit_one(store, key, "hit", run_id="run-b")
    assert rows_of(state, key) == [("failed", 1), ("hit", 1)]
    assert store.lookup_counts("run-a", PROVIDER) == {"failed": 1}


def test_keys_left_in_the_newest_level_by_a_killed_run_are_found_and_merged_later(
    state: Path, clock: FakeClock
) -> None:
    first = SqliteStore(state, clock=clock)
    first.start(new_run())
    commit_one(first, "2125550101")
    first.close()  # as a killed process leaves it: no end recorded
    assert levels(state) == {"2125550101": NEW}
    again = SqliteStore(state, clock=clock, level_limits=(2, 100))
    try:
        again.resume(RUN)
        assert [b.status for b in again.best(scope(number=2), ["2125550101"])] == ["hit"]
        commit_one(again, "2125550102", number=2)  # the limit counts what was left too
        assert levels(state) == {"2125550101": MID, "2125550102": MID}
    finally:
        again.close()


def test_a_ledger_of_schema_4_gets_the_levels_and_keeps_every_answer(
    state: Path, clock: FakeClock
) -> None:
    store = SqliteStore(state, clock=clock)
    store.start(new_run())
    commit_one(store, "2125550102")
    commit_one(store, "2125550101", "no_match")
    commit_one(store, "2125550103", "failed", credits=0)
    store.finish(RUN, 0)
    store.close()
    # Back to schema 4: no levels, no failed index, the one key index.
    raw = sqlite3.connect(state / LEDGER_FILE, isolation_level=None)
    for level in LEVELS:
        raw.execute(f"DROP TABLE {level}")
    raw.execute("DROP INDEX lookups_failed")
    raw.execute("CREATE UNIQUE INDEX lookups_key ON lookups (scope, key, run_id)")
    raw.execute("PRAGMA user_version = 4")
    raw.close()

    for _ in range(2):  # the step is idempotent: run again on its own result
        again = SqliteStore(state, clock=clock)
        try:
            assert again.conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
            indexes = {row[1] for row in again.conn.execute("PRAGMA index_list(lookups)")}
            assert "lookups_failed" in indexes and "lookups_key" not in indexes
            assert levels(state) == {"2125550101": OLD, "2125550102": OLD}
            found = again.best(scope(), ["2125550101", "2125550102", "2125550103"])
            assert sorted((b.key, b.status) for b in found) == [
                ("2125550101", "no_match"),
                ("2125550102", "hit"),
                ("2125550103", "failed"),
            ]
        finally:
            again.close()
        raw = sqlite3.connect(state / LEDGER_FILE)
        raw.execute("PRAGMA user_version = 4")
        raw.close()


def test_the_upgrade_notice_adds_up_the_pending_steps_only() -> None:
    """Step 4 copies every lookup (~11 s a million), step 5 sorts the keys only (~2.5 s): a ledger
    of schema 4 is not told it will wait for the copy it already had."""
    from pipeline.store.sqlite_schema import _upgrade_notice

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE lookups (x)")
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000000)"
        " INSERT INTO lookups SELECT i FROM n"
    )
    assert "2,000,000 lookups kept): once, about 5 s;" in _upgrade_notice(conn, 4)
    assert "once, about 27 s;" in _upgrade_notice(conn, 3)


def test_a_second_settled_answer_of_a_run_replaces_the_first(
    store: SqliteStore, state: Path, clock: FakeClock
) -> None:
    """The engine never buys again a key its run settled; were it to, the newer answer
    is the best at once, and the older row is deleted: at once while it is in the
    newest level, else at the merge that meets it (here the session's end)."""
    key = "2125550101"
    store.start(new_run())
    commit_one(store, key, "hit")
    clock.advance(1)
    commit_one(store, key, "no_match")  # both in the newest level: replaced at once
    assert rows_of(state, key) == [("no_match", 1)]
    assert store.lookup_counts(RUN, PROVIDER) == {"no_match": 1}
    store.stop(RUN, 3, "stopped")  # merged into the middle level
    store.resume(RUN)
    clock.advance(1)
    commit_one(store, key, "hit", number=2, credits=5)
    assert [(b.status, b.session) for b in store.best(scope(number=2), [key])] == [("hit", 2)]
    store.finish(RUN, 0)  # the merge that meets the two
    assert rows_of(state, key) == [("hit", 2)]
    assert store.lookup_counts(RUN, PROVIDER) == {"hit": 1}
    assert store.credits_of_run(RUN) == 5
    assert levels(state) == {key: MID}


def test_a_failure_after_its_runs_settled_answer_leaves_the_paid_answer(
    store: SqliteStore, state: Path, clock: FakeClock
) -> None:
    key = "2125550101"
    store.start(new_run())
    commit_one(store, key, "hit")
    store.stop(RUN, 3, "stopped")
    store.resume(RUN)
    commit_one(store, key, "failed", number=2, credits=0)
    assert rows_of(state, key) == [("hit", 1)]
    assert store.lookup_counts(RUN, PROVIDER) == {"hit": 1}
    assert store.failure_reasons(RUN) == []


def test_equal_fetch_times_pick_the_greater_run_id_whatever_the_level(
    store: SqliteStore, state: Path, clock: FakeClock
) -> None:
    key = "2125550101"
    for run in ("a", "b"):
        store.start(new_run(run))
    commit_one(store, key, run_id="a", answer={"from": "a"})
    store.stop("a", 3, "stopped")  # a's key now in the middle level, b's in the newest
    commit_one(store, key, run_id="b", answer={"from": "b"})
    [picked] = store.best(scope("c", cache_from=0.0), [key])
    assert picked.run_id == "b"


def test_a_merge_that_fails_leaves_the_commit_done_and_is_tried_later(
    state: Path, clock: FakeClock
) -> None:
    """A nearly full disk: the commit fits, the merge after it (its own transaction,
    more pages) does not. The commit returns normally (its answers are on disk); the
    merge waits for another level's worth of keys."""
    store = SqliteStore(state, clock=clock, level_limits=(2_000, 10**9))
    try:
        store.start(new_run())
        many = [ans(f"{i:010d}") for i in range(1_999)]
        commit(store, session(), log(), many)
        pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
        store.conn.execute(f"PRAGMA max_page_count = {pages + 4}")
        commit(store, session(), log(), [ans("0000001999")])  # the 2,000th: no error
        assert [b.key for b in store.best(scope(), ["0000001999"])] == ["0000001999"]
        where = levels(state)
        assert len(where) == 2_000 and set(where.values()) == {NEW}
        store.conn.execute("PRAGMA max_page_count = 1073741823")
        store.finish(RUN, 0)  # the session's end merges (room again)
        assert set(levels(state).values()) == {MID}
    finally:
        store.close()


def test_a_failed_merge_waits_for_another_levels_worth_of_keys() -> None:
    """Not at every commit: each attempt on a full disk would write the level's pages
    again before failing."""
    from pipeline.store.sqlite_keys import KeyLevels

    levels_ = KeyLevels(100, 1_000)
    levels_.new, levels_.mid = 150, 0
    levels_.postpone()  # the merge at 150 failed: next at 250
    conn = sqlite3.connect(":memory:")
    for level in LEVELS:
        conn.execute(
            f"CREATE TABLE {level} (scope, key, run_id, row, PRIMARY KEY (scope, key, run_id))"
        )
    conn.execute("CREATE TABLE lookups (x)")
    conn.isolation_level = None
    levels_.added(50)
    levels_.merge_due(conn)
    assert (levels_.new, levels_.mid) == (200, 0)  # not yet
    levels_.added(50)
    levels_.merge_due(conn)
    assert (levels_.new, levels_.mid) == (0, 250)  # merged at 250
    levels_.added(100)
    levels_.merge_due(conn)
    assert (levels_.new, levels_.mid) == (0, 350)  # back to every 100


def test_a_key_twice_in_one_commit_keeps_its_last_answer(
    store: SqliteStore, state: Path, clock: FakeClock
) -> None:
    key = "2125550101"
    store.start(new_run())
    commit(store, session(), log(), [ans(key, "hit"), ans("2125550102"), ans(key, "no_match")])
    assert rows_of(state, key) == [("no_match", 1)]
    assert levels(state) == {key: NEW, "2125550102": NEW}
    assert store.lookup_counts(RUN, PROVIDER) == {"hit": 1, "no_match": 1}
    commit(store, session(), log(), [ans(key, "hit"), ans("2125550103")])  # replaces
    assert rows_of(state, key) == [("hit", 1)]
    assert store.lookup_counts(RUN, PROVIDER) == {"hit": 3}
