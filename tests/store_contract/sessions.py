"""The contract's sessions: each start, resume and end of a run kept with its time, exit
code and charges; the identity of a run's job; the newest run between two files."""

from __future__ import annotations

from pipeline.store.base import AnswerStore
from pipeline.store.records import NewRun, SessionRecord
from store_contract.helpers import EPOCH, RUN, ContractBase, FakeClock, commit, log, new_run
from store_contract.helpers import session as session_of


class SessionsContract(ContractBase):
    def test_start_opens_session_1(self, store: AnswerStore) -> None:
        store.start(new_run(RUN))
        assert store.sessions(RUN) == [SessionRecord(RUN, 1, EPOCH, None, None, 0)]
        assert store.sessions("no-such-run") == []

    def test_each_session_has_its_start_end_exit_code_and_charges(
        self, store: AnswerStore, clock: FakeClock
    ) -> None:
        store.start(new_run(RUN))
        commit(store, session_of(RUN, 1), log(credits=2), [])
        commit(store, session_of(RUN, 1), log(credits=3), [])
        clock.advance(60)
        store.stop(RUN, 3, "budget reached")
        clock.advance(1_000)  # between sessions: counts in no session
        store.resume(RUN)
        commit(store, session_of(RUN, 2), log(credits=5), [])
        clock.advance(80)
        store.fail(RUN, 70, "disk full")
        clock.advance(10)
        store.resume(RUN)
        clock.advance(5)
        store.finish(RUN, 1)

        sessions = store.sessions(RUN)
        assert sessions == [
            SessionRecord(RUN, 1, EPOCH, EPOCH + 60, 3, 5),
            SessionRecord(RUN, 2, EPOCH + 1_060, EPOCH + 1_140, 70, 5),
            SessionRecord(RUN, 3, EPOCH + 1_150, EPOCH + 1_155, 1, 0),
        ]
        assert [s.duration_s for s in sessions] == [60, 80, 5]
        assert sum(s.credits_charged for s in sessions) == store.charged(RUN) == 10

    def test_a_session_still_running_has_no_end(self, store: AnswerStore, clock: FakeClock) -> None:
        store.start(new_run(RUN))
        clock.advance(30)
        store.finish(RUN, 0)
        clock.advance(30)
        store.resume(RUN)  # a run resumed by retry, still at work
        last = store.sessions(RUN)[-1]
        assert (last.number, last.started_at, last.ended_at, last.exit_code) == (
            2, EPOCH + 60, None, None,
        )  # fmt: skip
        assert last.duration_s is None

    def test_sessions_of_one_run_only(self, store: AnswerStore) -> None:
        store.start(new_run(RUN))
        store.start(new_run("run-2", "job-b"))
        commit(store, session_of("run-2", 1), log(credits=7), [])
        store.finish("run-2", 0)
        assert store.sessions(RUN) == [SessionRecord(RUN, 1, EPOCH, None, None, 0)]
        assert store.sessions("run-2") == [SessionRecord("run-2", 1, EPOCH, EPOCH, 0, 7)]

    def test_a_run_keeps_the_identity_of_its_job(self, store: AnswerStore) -> None:
        identity = '{"fingerprint": "abc", "providers": {}}'
        store.start(NewRun(RUN, "job-a", None, "in.csv", "out.csv", None, identity))
        store.start(new_run("run-2", "job-b"))
        first, second = store.get_run(RUN), store.get_run("run-2")
        assert first is not None and first.identity == identity
        assert second is not None and second.identity is None
        assert store.resume(RUN).identity == identity

    def test_latest_run_between_two_files_whatever_its_job(
        self, store: AnswerStore, clock: FakeClock
    ) -> None:
        assert store.latest_run_between("in.csv", "out.csv") is None
        for run_id, job, source, target in (
            ("a", "job-a", "in.csv", "out.csv"),
            ("b", "job-b", "in.csv", "out.csv"),
            ("c", "job-c", "in.csv", "other.csv"),
            ("d", "job-d", "other.csv", "out.csv"),
        ):
            clock.advance(10)
            store.start(NewRun(run_id, job, None, source, target, None))
        found = store.latest_run_between("in.csv", "out.csv")
        assert found is not None and (found.run_id, found.job) == ("b", "job-b")
        assert store.latest_run_between("nope.csv", "out.csv") is None
