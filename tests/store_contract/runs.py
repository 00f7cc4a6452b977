"""The contract's runs: records, transitions, which run to resume, the budget."""

from __future__ import annotations

import pytest

from pipeline.store.base import AnswerStore, StoreWriteError
from pipeline.store.records import NewRun, RunState
from store_contract.helpers import EPOCH, RUN, ContractBase, FakeClock, new_run


class RunsContract(ContractBase):
    def test_start_records_a_running_run(self, store: AnswerStore, clock: FakeClock) -> None:
        record = store.start(NewRun(RUN, "job-a", None, "in.csv", "out.csv", 123.5))
        assert record == store.get_run(RUN)
        assert (record.run_id, record.job, record.state, record.session) == (
            RUN, "job-a", "running", 1,
        )  # fmt: skip
        assert (record.config_path, record.input_path, record.output_path) == (
            None, "in.csv", "out.csv",
        )  # fmt: skip
        assert record.cache_cutoff == 123.5
        assert record.started_at == EPOCH == clock()
        assert record.exit_code is None and record.stop_reason is None
        assert record.max_credits is None
        assert store.get_run("no-such-run") is None

    def test_a_run_id_is_unique(self, store: AnswerStore) -> None:
        store.start(new_run(RUN))
        with pytest.raises(StoreWriteError):
            store.start(new_run(RUN))

    def test_transitions_set_state_exit_code_and_reason(
        self, store: AnswerStore, clock: FakeClock
    ) -> None:
        store.start(new_run(RUN))
        store.stop(RUN, 3, "budget reached")
        run = store.get_run(RUN)
        assert run is not None
        assert (run.state, run.exit_code, run.stop_reason, run.session) == (
            RunState.STOPPED, 3, "budget reached", 1,
        )  # fmt: skip

        clock.advance(60)
        resumed = store.resume(RUN)
        assert resumed == store.get_run(RUN)
        assert (resumed.state, resumed.exit_code, resumed.stop_reason, resumed.session) == (
            RunState.RUNNING, None, None, 2,
        )  # fmt: skip
        assert resumed.started_at == run.started_at

        store.fail(RUN, 70, "disk full")
        run = store.get_run(RUN)
        assert run is not None
        assert (run.state, run.exit_code, run.stop_reason) == ("failed", 70, "disk full")

        assert store.resume(RUN).session == 3
        store.finish(RUN, 1)
        run = store.get_run(RUN)
        assert run is not None
        assert (run.state, run.exit_code, run.stop_reason, run.session) == ("finished", 1, None, 3)

    def test_resumable_run_is_the_newest_unfinished_run_of_the_job(
        self, store: AnswerStore, clock: FakeClock
    ) -> None:
        assert store.resumable_run("job-a") is None
        for run_id, job, when in (("old", "job-a", 100.0), ("new", "job-a", 200.0),
                                  ("other-job", "job-b", 300.0)):  # fmt: skip
            clock.now = when
            store.start(new_run(run_id, job))

        def resumable(job: str = "job-a") -> str | None:
            run = store.resumable_run(job)
            return None if run is None else run.run_id

        assert resumable() == "new"  # running: crashed as far as a new process can tell
        store.stop("new", 3, "SIGTERM")
        assert resumable() == "new"
        store.fail("new", 70, "boom")
        assert resumable() == "new"
        store.finish("new", 0)
        assert resumable() == "old"
        store.finish("old", 1)
        assert resumable() is None
        assert resumable("job-b") == "other-job"
        store.finish("other-job", 0)
        assert resumable("job-b") is None

    def test_resumable_run_follows_start_order_without_help(
        self, store: AnswerStore, clock: FakeClock
    ) -> None:
        store.start(new_run("first"))
        clock.advance(0.002)
        store.start(new_run("second"))
        run = store.resumable_run("job-a")
        assert run is not None and run.run_id == "second"
        store.finish("second", 0)
        run = store.resumable_run("job-a")
        assert run is not None and run.run_id == "first"

    def test_latest_run_is_the_newest_whatever_its_state(
        self, store: AnswerStore, clock: FakeClock
    ) -> None:
        assert store.latest_run("job-a") is None
        store.start(new_run("first"))
        clock.advance(1)
        store.start(new_run("second"))
        store.start(new_run("elsewhere", "job-b"))
        store.finish("second", 0)
        latest = store.latest_run("job-a")
        assert latest is not None and (latest.run_id, latest.state) == ("second", "finished")

    def test_runs_are_listed_newest_first_up_to_the_limit(
        self, store: AnswerStore, clock: FakeClock
    ) -> None:
        assert store.runs() == []
        for number in range(5):
            clock.advance(1)
            store.start(new_run(f"r{number}", f"job-{number % 2}"))
        assert [r.run_id for r in store.runs()] == ["r4", "r3", "r2", "r1", "r0"]
        assert [r.run_id for r in store.runs(2)] == ["r4", "r3"]

    def test_newest_running_is_the_run_started_or_resumed_last(
        self, store: AnswerStore, clock: FakeClock
    ) -> None:
        assert store.newest_running() is None
        store.start(new_run("a"))
        clock.advance(1)
        store.start(new_run("b"))
        assert store.newest_running() == "b"
        store.stop("b", 3, "SIGTERM")
        assert store.newest_running() == "a"
        clock.advance(1)
        store.stop("a", 3, "SIGTERM")
        store.resume("b")
        clock.advance(1)
        store.resume("a")
        assert store.newest_running() == "a"
        store.finish("a", 0)
        store.finish("b", 0)
        assert store.newest_running() is None

    def test_a_budget_flag_is_kept_for_later_sessions_until_replaced(
        self, store: AnswerStore
    ) -> None:
        store.start(new_run(RUN))
        assert store.budget(RUN, None, None) == (None, "none")
        assert store.budget(RUN, None, 500) == (500, "run.max_credits")
        assert store.budget(RUN, 40, 500) == (40, "--max-credits")
        record = store.get_run(RUN)
        assert record is not None and record.max_credits == 40
        store.stop(RUN, 3, "budget reached")
        store.resume(RUN)
        assert store.budget(RUN, None, 500) == (40, "--max-credits of an earlier session")
        assert store.budget(RUN, 90, None) == (90, "--max-credits")
        assert store.budget(RUN, None, None) == (90, "--max-credits of an earlier session")
        # another run of the store has none of it
        store.start(new_run("other"))
        assert store.budget("other", None, 7) == (7, "run.max_credits")
