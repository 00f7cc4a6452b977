"""The contract's answers: which rows are candidates, which is best, which keys are
answered (see :mod:`pipeline.store.base`), and that answers come back as they went in."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.store.base import AnswerStore
from pipeline.store.records import SETTLED, Answer, cache_window
from store_contract.helpers import (
    EPOCH,
    OTHER,
    PROVIDER,
    RUN,
    ContractBase,
    FakeClock,
    ans,
    best_of,
    commit,
    commit_one,
    log,
    scope,
    session,
)

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


class AnswersContract(ContractBase):
    # -- candidates --------------------------------------------------------------------

    def test_this_runs_failures_count_but_never_other_runs(
        self, store: AnswerStore, clock: FakeClock
    ) -> None:
        commit_one(store, "2125550001", "failed", run_id="earlier")
        commit_one(store, "2125550002", "failed", run_id=RUN)
        keys = ["2125550001", "2125550002"]
        for cutoff in (None, 0.0, clock() - 3600):
            rows = store.best(scope(RUN, 1, cutoff), keys)
            assert [(r.key, r.run_id, r.status) for r in rows] == [("2125550002", RUN, "failed")]

    @pytest.mark.parametrize("status", SETTLED)
    def test_other_runs_settled_answers_count_only_from_the_cutoff(
        self, store: AnswerStore, clock: FakeClock, status: str
    ) -> None:
        clock.now = 1000.0
        commit_one(store, "2125550001", status, run_id="earlier")

        def found(cutoff: float | None) -> list[str]:
            return [r.run_id for r in store.best(scope(RUN, 1, cutoff), ["2125550001"])]

        assert found(None) == []  # no cache
        assert found(0.0) == ["earlier"]
        assert found(999.0) == ["earlier"]
        assert found(1000.0) == ["earlier"]  # at the cutoff counts
        assert found(1000.001) == []
        assert found(EPOCH) == []

    def test_the_cutoff_is_a_time_before_or_after_now(
        self, store: AnswerStore, clock: FakeClock
    ) -> None:
        commit_one(store, "2125550001", "hit", run_id="earlier")
        assert len(store.best(scope(RUN, 1, clock() - 3600), ["2125550001"])) == 1
        assert store.best(scope(RUN, 1, clock() + 3600), ["2125550001"]) == []

    def test_this_runs_answers_count_whatever_the_cutoff(
        self, store: AnswerStore, clock: FakeClock
    ) -> None:
        clock.now = 5.0
        commit_one(store, "2125550001", "hit")
        commit_one(store, "2125550002", "failed")
        keys = ["2125550001", "2125550002"]
        for cutoff in (None, 0.0, 10.0, EPOCH + 3600):
            assert sorted(r.key for r in store.best(scope(RUN, 1, cutoff), keys)) == keys

    def test_different_params_never_answer_each_other(self, store: AnswerStore) -> None:
        commit_one(store, "2125550001", params="litigator=on", answer={"litigator": True})
        commit_one(store, "2125550009", run_id="earlier", params="litigator=on",
                   answer={"litigator": True})  # fmt: skip
        commit_one(store, "2125550001", params="litigator=off", answer={"litigator": None})
        keys = ["2125550001", "2125550009"]

        on = store.best(scope(RUN, 1, 0.0, params="litigator=on"), keys)
        off = store.best(scope(RUN, 1, 0.0, params="litigator=off"), keys)
        assert sorted((r.key, r.answer) for r in on) == [
            ("2125550001", '{"litigator":true}'),
            ("2125550009", '{"litigator":true}'),
        ]
        assert [(r.key, r.answer) for r in off] == [("2125550001", '{"litigator":null}')]
        assert store.best(scope(RUN, 1, 0.0, params="something-else"), keys) == []
        assert store.answered(scope(RUN, 1, 0.0, params="something-else"), keys) == set()
        assert store.lookup_counts(RUN, PROVIDER) == {"hit": 2}  # one lookup row per params

    def test_different_providers_never_answer_each_other(self, store: AnswerStore) -> None:
        commit_one(store, "2125550001", provider=OTHER)
        assert store.best(scope(RUN, 1, 0.0), ["2125550001"]) == []
        assert store.answered(scope(RUN, 1, 0.0), ["2125550001"]) == set()
        assert len(store.best(scope(RUN, 1, 0.0, provider=OTHER), ["2125550001"])) == 1

    def test_thousands_of_keys_in_one_question(self, store: AnswerStore) -> None:
        stored = [f"{2125500000 + i}" for i in range(1500)]
        commit(store, session(), log(numbers=len(stored)),
               [ans(key, first_row=i) for i, key in enumerate(stored)])  # fmt: skip
        asked = stored + [f"{3125500000 + i}" for i in range(40_000)]  # past any bound-variable cap
        rows = store.best(scope(), asked)
        assert sorted(r.key for r in rows) == sorted(stored)
        assert {r.key: r.first_row for r in rows} == {key: i for i, key in enumerate(stored)}
        assert store.answered(scope(), asked) == set(stored)

    def test_no_keys_or_unknown_keys(self, store: AnswerStore) -> None:
        commit_one(store, "2125550001")
        assert store.best(scope(RUN, 1, 0.0), []) == []
        assert store.best(scope(RUN, 1, 0.0), ["9999999999"]) == []
        assert store.answered(scope(RUN, 1, 0.0), []) == set()
        assert store.answered(scope(RUN, 1, 0.0), ["9999999999"]) == set()

    def test_answers_round_trip_through_commit_and_best(self, store: AnswerStore) -> None:
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
            by_key: dict[str, tuple[str, dict[str, Any] | None, str | None, int, int]],
            number: int,
        ) -> None:
            run_id = uuid.uuid4().hex
            request_id = uuid.uuid4().hex
            answers = [Answer(k, *fields) for k, fields in by_key.items()]
            commit(store, session(run_id, number), log(request_id, numbers=len(answers)),
                   answers)  # fmt: skip
            rows = store.best(scope(run_id, number), list(by_key))
            assert len(rows) == len(by_key)
            for row in rows:
                want_status, want_answer, want_error, want_credits, want_row = by_key[row.key]
                assert (row.run_id, row.session, row.status) == (run_id, number, want_status)
                assert (None if row.answer is None else json.loads(row.answer)) == want_answer
                assert (row.error, row.credits, row.first_row) == (
                    want_error, want_credits, want_row,
                )  # fmt: skip
                assert row.request_id == (None if row.status == "failed" else request_id)
            tally: dict[str, int] = {}
            for status, *_ in by_key.values():
                tally[status] = tally.get(status, 0) + 1
            assert store.lookup_counts(run_id, PROVIDER) == tally
            assert store.credits_of_run(run_id) == sum(f[3] for f in by_key.values())

        check()

    # -- the best answer ---------------------------------------------------------------

    def test_best_prefers_settled_then_this_run_then_the_newest(
        self, store: AnswerStore, clock: FakeClock
    ) -> None:
        def at(when: float, key: str, status: str, run_id: str = RUN, **kw: Any) -> None:
            clock.now = when
            commit_one(store, key, status, run_id=run_id, **kw)

        # k1: own hit beats a newer cached hit
        at(300.0, "k1", "hit", answer={"from": "own"})
        at(400.0, "k1", "hit", "later", answer={"from": "later"})
        # k2: own failure loses to a cached answer; the newest cached one wins
        at(300.0, "k2", "failed")
        at(100.0, "k2", "no_match", "old")
        at(200.0, "k2", "hit", "newer", answer={"from": "newer"})
        # k3: only an own failure (and another run's failure, never served)
        at(100.0, "k3", "failed", "old")
        at(300.0, "k3", "failed")
        # k4: only another run's failure
        at(100.0, "k4", "failed", "old")

        assert best_of(store, scope(RUN, 1, 0.0), ["k1", "k2", "k3", "k4"]) == {
            "k1": (RUN, "hit", '{"from":"own"}'),
            "k2": ("newer", "hit", '{"from":"newer"}'),
            "k3": (RUN, "failed", None),
        }
        # cutoff 150 hides "old" (100) only; 250 hides "newer" (200) too; None every run
        keys = ["k1", "k2", "k3"]
        assert {k: v[:2] for k, v in best_of(store, scope(RUN, 1, 150.0), keys).items()} == {
            "k1": (RUN, "hit"), "k2": ("newer", "hit"), "k3": (RUN, "failed"),
        }  # fmt: skip
        for cutoff in (250.0, None):
            assert {k: v[:2] for k, v in best_of(store, scope(RUN, 1, cutoff), keys).items()} == {
                "k1": (RUN, "hit"), "k2": (RUN, "failed"), "k3": (RUN, "failed"),
            }  # fmt: skip
        # an earlier run asking sees its own rows first, and never a later run's failure
        assert best_of(store, scope("old", 1, 0.0), ["k2", "k3", "k4"]) == {
            "k2": ("old", "no_match", None), "k3": ("old", "failed", None),
            "k4": ("old", "failed", None),
        }  # fmt: skip

    def test_among_earlier_runs_the_newest_answer_is_best(
        self, store: AnswerStore, clock: FakeClock
    ) -> None:
        for run_id, when in (("a", 100.0), ("c", 300.0), ("b", 200.0)):
            clock.now = when
            commit_one(store, "k", "hit", run_id=run_id, answer={"run": run_id})
        (found,) = store.best(scope(RUN, 1, 0.0), ["k"])
        assert (found.run_id, found.answer, found.fetched_at) == ("c", '{"run":"c"}', 300.0)
        assert store.best(scope(RUN, 1, 0.0, params="other"), ["k"]) == []

    # -- answered ----------------------------------------------------------------------

    def test_answered_settled_always_and_failed_only_in_the_same_session(
        self, store: AnswerStore
    ) -> None:
        for status in SETTLED:
            commit_one(store, status, status, number=1)
        commit_one(store, "failed", "failed", number=2)
        keys = [*SETTLED, "failed", "never"]
        assert store.answered(scope(RUN, 2), keys) == {*SETTLED, "failed"}
        # the next session (a resume, or retry) buys the failure again, never a loop
        assert store.answered(scope(RUN, 3), keys) == set(SETTLED)
        # an earlier session's view of it: not its failure either
        assert store.answered(scope(RUN, 1), keys) == set(SETTLED)

    def test_answered_never_counts_another_runs_failure(self, store: AnswerStore) -> None:
        commit_one(store, "k", "failed", run_id="earlier", number=1)
        assert store.answered(scope(RUN, 1, 0.0), ["k"]) == set()
        assert store.answered(scope("earlier", 1, 0.0), ["k"]) == {"k"}

    def test_answered_prefers_a_cached_answer_to_this_sessions_failure(
        self, store: AnswerStore, clock: FakeClock
    ) -> None:
        commit_one(store, "k", "hit", run_id="earlier")
        clock.advance(10)
        commit_one(store, "k", "failed", number=1)
        assert store.answered(scope(RUN, 2, 0.0), ["k"]) == {"k"}  # the cache answers it
        assert store.answered(scope(RUN, 2, None), ["k"]) == set()  # --no-cache: buy again

    def test_answered_follows_the_cache_window_to_its_edge(
        self, store: AnswerStore, clock: FakeClock
    ) -> None:
        day = 86_400.0
        clock.now = 10 * day
        commit_one(store, "k", "hit", run_id="earlier")
        started = 40 * day  # a run that started 30 days later

        def answered(ttl_days: float, reference: float | None = started) -> bool:
            window = cache_window(reference, ttl_days)
            return store.answered(scope(RUN, 1, window), ["k"]) == {"k"}

        assert answered(30)  # fetched exactly at the cutoff: reused
        assert answered(31)
        assert not answered(29.99)
        assert not answered(0)  # a TTL of 0 turns the cache off
        assert not answered(30, None)  # --no-cache
        assert cache_window(started, 30) == 10 * day
        assert cache_window(None, 30) is None and cache_window(started, 0) is None
