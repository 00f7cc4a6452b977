"""The SQLite store remembers the rowids of the settled answers it has just committed
(pipeline.store.sqlite_recent), so the output's ``best`` reads them by rowid: the same
answers as by key, whatever happened to a row since, and never more than its limit."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_contract import FakeClock
from store_contract.helpers import OTHER, PROVIDER, RUN, ans, commit, log, new_run, scope, session

from pipeline.store.records import BestAnswer
from pipeline.store.sqlite import LEDGER_FILE, SqliteStore
from pipeline.store.sqlite_recent import RecentRows

KEYS = [f"k{i}" for i in range(8)]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def store(state: Path, clock: FakeClock) -> Iterator[SqliteStore]:
    opened = SqliteStore(state, clock=clock, level_limits=(2, 3))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def by_key(state: Path, asked_run: str = RUN, provider: str = PROVIDER) -> set[BestAnswer]:
    """The best answers as a store that remembers nothing finds them (by key), earlier
    runs' answers counting."""
    fresh = SqliteStore(state, recent_limit=0)
    try:
        return set(fresh.best(scope(asked_run, cache_from=1.0, provider=provider), KEYS))
    finally:
        fresh.close()


def test_answers_by_rowid_are_the_answers_by_key(
    store: SqliteStore, state: Path, clock: FakeClock
) -> None:
    store.start(new_run("earlier"))
    commit(store, session("earlier"), log(), [ans(k, "hit") for k in KEYS])
    store.finish("earlier", 0)
    store.start(new_run(RUN))
    clock.advance(1)
    commit(store, session(), log(), [ans("k0", "failed", error="boom"), ans("k1", "no_match")])
    clock.advance(1)
    # k1 answered again (the later one replaces it), k2 twice in one response (the last
    # wins), k3 failed, k4 settled then failed (the failure is dropped), k5 for another
    # provider under the same key
    commit(store, session(), log(), [ans("k1", "hit", {"v": 2}), ans("k2", "hit", {"v": 1}),
                                     ans("k2", "invalid_input"), ans("k3", "failed", error="x"),
                                     ans("k4", "hit", {"v": 4})])  # fmt: skip
    commit(store, session(), log(), [ans("k4", "failed", error="late")])
    commit(store, session(), log(provider=OTHER), [ans("k5", "hit", {"v": 5})])
    assert len(store._recent) > 0

    remembered = set(store.best(scope(cache_from=1.0), KEYS))
    assert remembered == by_key(state)
    answers = {b.key: (b.run_id, b.status, b.answer) for b in remembered}
    assert answers["k1"] == (RUN, "hit", '{"v":2}')
    assert answers["k2"] == (RUN, "invalid_input", None)
    assert answers["k4"] == (RUN, "hit", '{"v":4}')
    # this run failed k0 and k3: an earlier run's settled answer is better
    assert answers["k0"][:2] == answers["k3"][:2] == ("earlier", "hit")
    assert answers["k6"][:2] == ("earlier", "hit")  # not this run's: found by key
    # the other provider's answer is remembered under its own scope
    other = set(store.best(scope(cache_from=1.0, provider=OTHER), KEYS))
    assert other == by_key(state, provider=OTHER)
    assert {b.key for b in other if b.run_id == RUN} == {"k5"}
    assert len(store._recent) == 0  # each taken once


def test_a_row_changed_behind_the_store_is_found_by_key(store: SqliteStore, state: Path) -> None:
    store.start(new_run("earlier"))
    commit(store, session("earlier"), log(), [ans(k, "hit", {"v": "old"}) for k in KEYS[:3]])
    store.finish("earlier", 0)
    store.start(new_run(RUN))
    commit(store, session(), log(), [ans(k, "hit", {"v": "new"}) for k in KEYS[:3]])
    raw = sqlite3.connect(state / LEDGER_FILE)
    # Another process: this run's k0 taken away, k1's row given k7's key (neither found by
    # key any more), k2's made a failure.
    try:
        with raw:
            raw.execute("DELETE FROM lookups WHERE key = 'k0' AND run_id = ?", (RUN,))
            raw.execute("UPDATE lookups SET key = 'k7' WHERE key = 'k1' AND run_id = ?", (RUN,))
            for level in ("lookup_keys_new", "lookup_keys_mid", "lookup_keys"):
                raw.execute(f"DELETE FROM {level} WHERE key IN ('k0', 'k1') AND run_id = ?", (RUN,))
            raw.execute(
                "UPDATE lookups SET status = 'failed', answer = NULL WHERE key = 'k2'"
                " AND run_id = ?",
                (RUN,),
            )
    finally:
        raw.close()
    expected = by_key(state)
    found = set(store.best(scope(cache_from=1.0), KEYS))
    assert found == expected
    answers = {b.key: (b.run_id, b.answer) for b in found}
    assert [answers[k] for k in KEYS[:3]] == [("earlier", '{"v":"old"}')] * 3


def test_when_full_it_stops_remembering_and_answers_stay_right(
    state: Path, clock: FakeClock
) -> None:
    store = SqliteStore(state, clock=clock, recent_limit=3)
    try:
        store.start(new_run(RUN))
        commit(store, session(), log(), [ans(k) for k in KEYS[:2]])
        commit(store, session(), log(), [ans(k) for k in KEYS[2:4]])  # would make 4: not kept
        assert len(store._recent) == 2
        assert set(store.best(scope(), KEYS)) == by_key(state)
        assert {b.key for b in store.best(scope(), KEYS)} == set(KEYS[:4])
    finally:
        store.close()


def test_the_session_end_forgets(store: SqliteStore) -> None:
    store.start(new_run(RUN))
    commit(store, session(), log(), [ans(k) for k in KEYS])
    assert len(store._recent) == len(KEYS)
    store.stop(RUN, 130, "interrupted")
    assert len(store._recent) == 0


def test_recent_rows_take_once_the_newest_row() -> None:
    recent = RecentRows(limit=10)
    recent.filed("r", [(1, "a", 10), (1, "b", 11), (2, "a", 12)])
    recent.filed("r", [(1, "a", 13)])
    assert len(recent) == 4
    assert recent.take(1, "other-run", ["a"]) == {}
    assert recent.take(1, "r", ["a", "z"]) == {13: "a"}  # the newer row of a
    assert len(recent) == 2
    assert recent.take(1, "r", ["a"]) == {}  # taken once
    assert recent.take(2, "r", ["a", "b"]) == {12: "a"}
    assert recent.take(1, "r", ["b"]) == {11: "b"}
    assert len(recent) == 0
