"""The SQLite store remembers the rowid window of the settled answers it has just
committed (pipeline.store.sqlite_recent), so the output's ``best`` finds them there: the
same answers as by key, whatever happened to a row since, never more than its limit."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_contract import FakeClock
from store_contract.helpers import OTHER, PROVIDER, RUN, ans, commit, log, new_run, scope, session

from pipeline.store.records import BestAnswer, Columns, Response
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
    clock.advance(1)
    store.commit(  # one transaction, two providers: each one's rows inside the other's window
        session(),
        [
            Response(log(), Columns.of([ans("k6", "hit", {"v": "mine"}), ans("k7")])),
            Response(log(provider=OTHER), Columns.of([ans("k6", "hit", {"v": "other"})])),
            Response(log(), Columns.of([ans("k7", "hit", {"v": 7})])),
        ],
    )
    assert len(store._recent) > 0

    remembered = set(store.best(scope(cache_from=1.0), KEYS))
    assert remembered == by_key(state)
    answers = {b.key: (b.run_id, b.status, b.answer) for b in remembered}
    assert answers["k1"] == (RUN, "hit", '{"v":2}')
    assert answers["k2"] == (RUN, "invalid_input", None)
    assert answers["k4"] == (RUN, "hit", '{"v":4}')
    # this run failed k0 and k3: an earlier run's settled answer is better
    assert answers["k0"][:2] == answers["k3"][:2] == ("earlier", "hit")
    assert answers["k6"] == (RUN, "hit", '{"v":"mine"}')
    assert answers["k7"] == (RUN, "hit", '{"v":7}')
    # the other provider's answer is remembered under its own scope
    other = set(store.best(scope(cache_from=1.0, provider=OTHER), KEYS))
    assert other == by_key(state, provider=OTHER)
    assert {b.key: b.answer for b in other if b.run_id == RUN} == {
        "k5": '{"v":5}',
        "k6": '{"v":"other"}',
    }
    # Each found once; k1's first answer, replaced (its row deleted), is never found:
    # its range stays unread until the limit pushes it out.
    assert len(store._recent) == 1


def test_a_row_changed_behind_the_store_is_found_by_key(store: SqliteStore, state: Path) -> None:
    store.start(new_run("earlier"))
    commit(store, session("earlier"), log(), [ans(k, "hit", {"v": "old"}) for k in KEYS[:3]])
    store.finish("earlier", 0)
    store.start(new_run(RUN))
    commit(store, session(), log(), [ans(k, "hit", {"v": "new"}) for k in KEYS[:3]])
    raw = sqlite3.connect(state / LEDGER_FILE)
    # Another process: this run's k0 and k1 taken away (k1 given a row of another scope),
    # k2's made a failure.
    try:
        with raw:
            raw.execute("DELETE FROM lookups WHERE key = 'k0' AND run_id = ?", (RUN,))
            raw.execute("DELETE FROM lookups WHERE key = 'k1' AND run_id = ?", (RUN,))
            for level in ("lookup_keys_new", "lookup_keys_mid", "lookup_keys"):
                raw.execute(f"DELETE FROM {level} WHERE key IN ('k0', 'k1') AND run_id = ?", (RUN,))
            # and a row of this run for k1 that is not its answer (another scope's)
            raw.execute(
                "INSERT INTO lookups (scope, key, run_id, session, status, answer, credits,"
                " fetched_at) VALUES (99, 'k1', ?, 1, 'hit', '{}', 0, 0)",
                (RUN,),
            )
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


def test_when_full_it_forgets_the_oldest_and_answers_stay_right(
    state: Path, clock: FakeClock
) -> None:
    store = SqliteStore(state, clock=clock, recent_limit=3)
    try:
        store.start(new_run(RUN))
        commit(store, session(), log(), [ans(k) for k in KEYS[:2]])
        commit(store, session(), log(), [ans(k) for k in KEYS[2:4]])  # 4 > 3: the first out
        assert len(store._recent) == 2
        assert set(store.best(scope(), KEYS)) == by_key(state)
        assert {b.key for b in store.best(scope(), KEYS)} == set(KEYS[:4])
    finally:
        store.close()


def test_before_buying_the_window_is_not_read(store: SqliteStore) -> None:
    store.start(new_run(RUN))
    commit(store, session(), log(), [ans(k) for k in KEYS[:3]])
    assert store.answered(scope(), KEYS) == set(KEYS[:3])  # found by key
    assert len(store._recent) == 3  # still unread: the output will read them
    assert {b.key for b in store.best(scope(), KEYS)} == set(KEYS[:3])
    assert len(store._recent) == 0


def test_the_session_end_forgets(store: SqliteStore) -> None:
    store.start(new_run(RUN))
    commit(store, session(), log(), [ans(k) for k in KEYS])
    assert len(store._recent) == len(KEYS)
    store.stop(RUN, 130, "interrupted")
    assert len(store._recent) == 0


def test_a_window_forgets_its_oldest_ranges_once_read() -> None:
    recent = RecentRows(limit=10)
    recent.filed("r", [(1, 10), (1, 11), (2, 12)])  # one commit, two scopes
    recent.filed("r", [(1, 20), (1, 21)])
    assert len(recent) == 5
    assert recent.span(1, "r") == (10, 21)
    assert recent.span(2, "r") == (12, 12)
    assert recent.span(1, "other run") is None
    recent.read(1, "r", [20])  # the newer range first: the window keeps its start
    assert recent.span(1, "r") == (10, 21)
    recent.read(1, "r", [10, 11, 10])  # read twice counts once the range is done
    assert recent.span(1, "r") == (20, 21)
    recent.read(1, "r", [21])
    assert recent.span(1, "r") is None
    assert len(recent) == 1
    recent.filed("r", [(2, 30), (2, 31)])
    recent.filed("r", [(2, 40)] * 9)  # over the limit: the oldest ranges are forgotten
    assert recent.span(2, "r") == (40, 40)
    assert len(recent) == 9


def test_in_the_window_the_run_s_own_last_answer_wins(store: SqliteStore, state: Path) -> None:
    store.start(new_run(RUN))
    store.start(new_run("other"))
    # k0 answered, with two more keys: the newest level (limit 2) is merged, so k0's
    # second answer cannot replace the first at once and both rows stay until a merge
    commit(store, session(), log(), [ans("k0", "no_match"), ans("k1"), ans("k2")])
    commit(store, session("other"), log(), [ans(k, "hit", {"v": "other run"}) for k in KEYS[:4]])
    commit(store, session(), log(), [ans("k0", "hit", {"v": "second"})])
    raw = sqlite3.connect(state / LEDGER_FILE)
    try:
        rows = raw.execute("SELECT run_id, status FROM lookups WHERE key = 'k0' ORDER BY rowid")
        assert rows.fetchall() == [(RUN, "no_match"), ("other", "hit"), (RUN, "hit")]
    finally:
        raw.close()
    # k3, only the other run's (inside this run's window), does not count without a cache
    found = {b.key: (b.run_id, b.answer) for b in store.best(scope(), ["k0", "k3"])}
    assert found == {"k0": (RUN, '{"v":"second"}')}
