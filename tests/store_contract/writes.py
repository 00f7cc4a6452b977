"""The contract's writes: a commit files a response whole (every answer, or none of
them), a later answer of a lookup replaces the earlier, and threads may share a store."""

from __future__ import annotations

import threading

import pytest

from pipeline.store.base import AnswerStore, StoreWriteError
from pipeline.store.records import Answer, BestAnswer, Columns, Response, Session
from store_contract.helpers import (
    EPOCH,
    OTHER,
    PARAMS,
    PROVIDER,
    RUN,
    ContractBase,
    FakeClock,
    ans,
    commit,
    commit_one,
    counts,
    log,
    scope,
    session,
)

KEYS = ["2125550001", "2125550002", "2125550003"]


class WritesContract(ContractBase):
    def test_commit_files_the_request_and_every_answer(
        self, store: AnswerStore, clock: FakeClock
    ) -> None:
        clock.now = 5000.0
        request = log("req-1", numbers=3, credits=2, http_status=200)
        commit(store, session(RUN, 2), request, [
            ans(KEYS[0], "hit", {"name": {"first": "Ann"}, "score": 0.5}, first_row=4),
            ans(KEYS[1], "no_match", None, credits=1, first_row=7),
            ans(KEYS[2], "failed", None, error="timed out", credits=0, first_row=9),
        ])  # fmt: skip
        rows = sorted(store.best(scope(RUN, 2), KEYS))
        assert rows == [
            BestAnswer(KEYS[0], RUN, 2, "hit", '{"name":{"first":"Ann"},"score":0.5}', None, 1,
                       "req-1", 4, 5000.0),
            BestAnswer(KEYS[1], RUN, 2, "no_match", None, None, 1, "req-1", 7, 5000.0),
            # a failure was answered by no request
            BestAnswer(KEYS[2], RUN, 2, "failed", None, "timed out", 0, None, 9, 5000.0),
        ]  # fmt: skip
        assert store.request_totals(RUN, PROVIDER)[:5] == (1, 0, 0, 3, 2)
        assert store.charged(RUN) == 2

    def test_answers_given_as_json_text_are_kept_as_they_are(self, store: AnswerStore) -> None:
        commit(store, session(), log(), [Answer("k", "hit", '{"b":1, "a":[2]}', None, 1, 0)])
        (found,) = store.best(scope(), ["k"])
        assert found.answer == '{"b":1, "a":[2]}'

    def test_commit_with_no_answers_logs_the_request_only(self, store: AnswerStore) -> None:
        commit(store, session(), log("req-429", http_status=429, outcome="throttled"), [])
        assert counts(store) == (1, 0)
        assert store.request_totals(RUN, PROVIDER).http_429 == 1

    def test_a_commit_whose_answer_cannot_be_serialised_leaves_nothing(
        self, store: AnswerStore
    ) -> None:
        commit_one(store, "2125550000")
        before = counts(store)
        with pytest.raises(TypeError):
            commit(store, session(), log("req-bad", numbers=2),
                   [ans("2125550001"), ans("2125550002", answer={"when": object()})])  # fmt: skip
        assert counts(store) == before
        assert store.best(scope(), ["2125550001", "2125550002"]) == []

    def test_a_commit_failing_mid_transaction_is_rolled_back(self, store: AnswerStore) -> None:
        commit_one(store, "2125550000")
        before = counts(store)
        bad = Answer("2125550002", None, None, None, 1, 0)  # type: ignore[arg-type]
        with pytest.raises(StoreWriteError):
            # the request and the first lookup are written before the missing status fails
            commit(store, session(), log("req-bad", numbers=2), [ans("2125550001"), bad])
        assert counts(store) == before
        assert store.best(scope(), ["2125550001", "2125550002"]) == []
        # and the store is fine for the next one
        commit_one(store, "2125550001")
        assert counts(store) == (before[0] + 1, before[1] + 1)

    def test_a_group_of_responses_is_committed_all_or_none(self, store: AnswerStore) -> None:
        bad = Answer("k3", None, None, None, 1, 0)  # type: ignore[arg-type]
        good = Response(log("r1", numbers=2), Columns.of([ans("k1"), ans("k2")]))
        with pytest.raises(StoreWriteError):
            store.commit(session(), [good, Response(log("r2"), Columns.of([bad]))])
        assert counts(store) == (0, 0)
        store.commit(session(), [good, Response(log("r2"), Columns.of([ans("k3")]))])
        assert counts(store) == (2, 3)
        assert sorted(b.request_id or "" for b in store.best(scope(), ["k1", "k2", "k3"])) == [
            "r1", "r1", "r2",
        ]  # fmt: skip

    def test_commit_for_a_provider_the_session_has_no_params_for_writes_nothing(
        self, store: AnswerStore
    ) -> None:
        with pytest.raises(KeyError):
            commit(store, Session(RUN, 1, {PROVIDER: PARAMS}), log("req-x", provider=OTHER),
                   [ans("2125550001")])  # fmt: skip
        assert counts(store, provider=OTHER) == (0, 0)
        assert counts(store) == (0, 0)

    def test_quotes_in_provider_params_and_run_id_are_safe(self, store: AnswerStore) -> None:
        provider, run_id = "o'provider", "run'); DROP TABLE lookups; --"
        commit_one(store, "2125550001", provider=provider, params="p'1", run_id=run_id)
        rows = store.best(scope(run_id, provider=provider, params="p'1"), ["2125550001"])
        assert [(r.key, r.run_id) for r in rows] == [("2125550001", run_id)]
        assert store.lookup_counts(run_id, provider) == {"hit": 1}

    def test_a_later_commit_for_the_same_lookup_replaces_the_earlier(
        self, store: AnswerStore
    ) -> None:
        commit_one(store, "2125550001", "failed", number=1)
        first = store.best(scope(RUN, 1), ["2125550001"])
        assert [(r.session, r.status, r.error, r.request_id) for r in first] == [
            (1, "failed", "boom", None)
        ]
        assert store.lookup_counts(RUN, PROVIDER) == {"failed": 1}

        retry = commit_one(store, "2125550001", "hit", number=2, answer={"n": 1}, credits=3)
        rows = store.best(scope(RUN, 2), ["2125550001"])
        assert rows == [BestAnswer("2125550001", RUN, 2, "hit", '{"n":1}', None, 3, retry, 0,
                                   EPOCH)]  # fmt: skip
        assert store.lookup_counts(RUN, PROVIDER) == {"hit": 1}
        assert store.credits_of_run(RUN) == 3

    def test_each_run_keeps_its_own_row_for_a_lookup(
        self, store: AnswerStore, clock: FakeClock
    ) -> None:
        commit_one(store, "2125550001", "hit", run_id="a", answer={"v": "a"})
        clock.advance(1)
        commit_one(store, "2125550001", "no_match", run_id="b")
        key = ["2125550001"]
        assert store.best(scope("a", cache_from=0.0), key)[0][1:4] == ("a", 1, "hit")
        assert store.best(scope("b", cache_from=0.0), key)[0][1:4] == ("b", 1, "no_match")
        assert store.best(scope("c", cache_from=0.0), key)[0][1:4] == ("b", 1, "no_match")
        assert store.lookup_counts("a", PROVIDER) == {"hit": 1}
        assert store.lookup_counts("b", PROVIDER) == {"no_match": 1}

    def test_a_sent_note_is_counted_once_and_never_undoes_its_response(
        self, store: AnswerStore
    ) -> None:
        store.log_sent(session(), "a", PROVIDER, 1, 10)
        assert store.request_totals(RUN, PROVIDER)[:] == (1, 0, 0, 0, 0, 1, 10)
        commit(store, session(), log("a", numbers=10, credits=10), [])
        store.log_sent(session(), "a", PROVIDER, 1, 10)  # lands after its own response
        store.log_sent(session(), "a", PROVIDER, 1, 10)
        assert store.request_totals(RUN, PROVIDER)[:] == (1, 0, 0, 10, 10, 0, 0)

    def test_two_writer_threads_and_a_reader_share_one_store(self, store: AnswerStore) -> None:
        per_writer = 200
        errors: list[BaseException] = []
        done = threading.Event()
        reads = [0]

        def write(name: str) -> None:
            try:
                for i in range(per_writer):
                    commit(store, session(), log(f"{name}-{i}", numbers=2),
                           [ans(f"{name}-{i}-a"), ans(f"{name}-{i}-b", "no_match")])  # fmt: skip
            except BaseException as exc:
                errors.append(exc)

        def read() -> None:
            try:
                while not done.is_set():
                    store.best(scope(cache_from=0.0), [f"w0-{i}-a" for i in range(per_writer)])
                    store.request_totals(RUN, PROVIDER)
                    reads[0] += 1
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
        assert reads[0] > 0, "the reader never ran"
        assert store.lookup_counts(RUN, PROVIDER) == {
            "hit": 2 * per_writer,
            "no_match": 2 * per_writer,
        }
        totals = store.request_totals(RUN, PROVIDER)
        assert (totals.requests, totals.numbers) == (2 * per_writer, 4 * per_writer)
