"""The contract's figures of a run: requests (and the unanswered ones), lookups by
status, failures by reason, credits charged and carried."""

from __future__ import annotations

from pipeline.store.base import AnswerStore
from pipeline.store.records import FailureCount, RequestTotals
from store_contract.helpers import (
    OTHER,
    PROVIDER,
    RUN,
    ContractBase,
    ans,
    commit,
    commit_one,
    log,
    session,
)


class TotalsContract(ContractBase):
    def test_request_totals(self, store: AnswerStore) -> None:
        assert store.request_totals(RUN, PROVIDER) == RequestTotals(0, 0, 0, 0, 0, 0, 0)
        at = session()

        def sent(request_id: str, attempt: int, numbers: int, run_id: str = RUN) -> None:
            store.log_sent(session(run_id), request_id, PROVIDER, attempt, numbers)

        def answered(request_id: str, **fields: object) -> None:
            commit(store, at, log(request_id, **fields), [])  # type: ignore[arg-type]

        sent("a", 1, 10)
        answered("a", numbers=10, credits=10)
        sent("b", 1, 5)
        answered("b", numbers=5, http_status=429, outcome="throttled", error="429")
        sent("c", 2, 5)
        answered("c", attempt=2, numbers=5, credits=5)
        sent("d", 1, 7)  # in flight when the process died: never answered
        sent("e", 3, 5)
        answered("e", attempt=3, numbers=5, http_status=None, outcome="transient")
        sent("g", 1, 4)  # a timeout (no HTTP answer): may have been charged
        answered("g", numbers=4, http_status=None, outcome="transient",
                 error="tcpa_authority: no answer within 5s")  # fmt: skip
        sent("h", 1, 9)  # the connection was never made: nothing was sent
        answered("h", numbers=9, http_status=None, outcome="transient",
                 error="tcpa_authority: connection failed: ConnectError")  # fmt: skip
        sent("i", 1, 6)  # a 502 is an answer, not charged by the contract
        answered("i", numbers=6, http_status=502, outcome="transient")
        answered("f", numbers=2, http_status=400, outcome="refused")
        sent("a", 1, 10)  # a note landing after its own response changes nothing
        # other runs and other providers do not count
        sent("x", 2, 99, run_id="other-run")
        commit(store, at, log("y", OTHER, attempt=2, numbers=50, credits=50), [])
        store.log_sent(at, "z", OTHER, 1, 3)

        assert store.request_totals(RUN, PROVIDER) == RequestTotals(
            requests=9,
            retries=2,  # c, e
            http_429=1,  # b
            numbers=15,  # a + c: only answered requests
            credits=15,
            unanswered=3,  # d (in flight when the process died), e and g (timed out)
            unanswered_numbers=7 + 5 + 4,
        )
        assert store.request_totals(RUN, OTHER) == RequestTotals(
            requests=2, retries=1, http_429=0, numbers=50, credits=50, unanswered=1,
            unanswered_numbers=3,
        )  # fmt: skip
        assert store.request_totals("other-run", PROVIDER).unanswered == 1
        assert store.charged(RUN) == 65
        assert store.charged("other-run") == 0

    def test_charged_counts_every_session_and_provider_of_the_run(self, store: AnswerStore) -> None:
        commit(store, session(RUN, 1), log(credits=4), [])
        commit(store, session(RUN, 2), log(credits=6), [])
        commit(store, session(RUN, 2), log(provider=OTHER, credits=5), [])
        commit(store, session("other-run"), log(credits=100), [])
        assert store.charged(RUN) == 15
        assert store.charged("no-such-run") == 0

    def test_lookup_counts_and_credits_are_per_run_and_provider(self, store: AnswerStore) -> None:
        at = session()
        commit(store, at, log(numbers=4), [
            ans("1", "hit", credits=2),
            ans("2", "hit", credits=2),
            ans("3", "no_match", credits=1),
            ans("4", "failed", error="x", credits=0),
        ])  # fmt: skip
        commit(store, at, log(numbers=1), [ans("5", "invalid_input", credits=0)])
        commit(store, at, log("ctp", OTHER), [ans("1", "hit", credits=7)])
        commit(store, session("other-run"), log(), [ans("9", "hit", credits=100)])

        assert store.lookup_counts(RUN, PROVIDER) == {
            "hit": 2, "no_match": 1, "failed": 1, "invalid_input": 1,
        }  # fmt: skip
        assert store.lookup_counts(RUN, OTHER) == {"hit": 1}
        assert store.lookup_counts(RUN, "nobody") == {}
        assert store.credits_of_run(RUN) == 12
        assert store.credits_of_run("other-run") == 100
        assert store.credits_of_run("no-such-run") == 0
        assert store.providers_of_run(RUN) == sorted([PROVIDER, OTHER])
        assert store.providers_of_run("other-run") == [PROVIDER]
        assert store.providers_of_run("no-such-run") == []

    def test_failure_reasons_are_this_runs_most_frequent_first(self, store: AnswerStore) -> None:
        at = session()
        commit(store, at, log(numbers=4), [
            ans("1", "failed", error="timed out", credits=0),
            ans("2", "failed", error="timed out", credits=0),
            ans("3", "failed", error="timed out", credits=0),
            ans("4", "hit"),
        ])  # fmt: skip
        commit(store, at, log(provider=OTHER, numbers=2), [
            ans("1", "failed", error="HTTP 500", credits=0),
            ans("2", "failed", error=None, credits=0),
        ])  # fmt: skip
        commit_one(store, "9", "failed", run_id="other-run")
        reasons = store.failure_reasons(RUN)
        assert reasons[0] == FailureCount(PROVIDER, "timed out", 3)
        assert sorted(reasons[1:]) == [
            FailureCount(OTHER, "", 1),
            FailureCount(OTHER, "HTTP 500", 1),
        ]
        assert store.failure_reasons("other-run") == [FailureCount(PROVIDER, "boom", 1)]
        assert store.failure_reasons("no-such-run") == []
