"""One session of a run: the stages wired, the output written, the run's new state and
its report recorded, whatever ends it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.engine.budget import Budget
from pipeline.engine.stops import StopReason
from pipeline.errors import EXIT_STOPPED, Interrupted, StoreError
from pipeline.jobs import cache_from, remove_stale_temp_outputs
from pipeline.live import LiveProgress
from pipeline.opened import Opened, quietly
from pipeline.outcome import Outcome, budget_figures, note_stops, outcome_of, provider_figures
from pipeline.progress import Progress, RowCount, RunLog, Ticker
from pipeline.report import FailedRowsFile, InputFigures, RunFigures, RunReport, write_report
from pipeline.report_html import html_report_or_none
from pipeline.run_opening import RunOpened
from pipeline.run_request import RunRequest
from pipeline.run_state import RunState
from pipeline.stages.flow import AnswerWait, staged
from pipeline.stages.lookup import LookupStage
from pipeline.stages.read import ReadStage
from pipeline.stages.write import WriteStage
from pipeline.store.records import RunRecord, Session
from pipeline.summary import RunSummary

if TYPE_CHECKING:  # the engine (and httpx) only for a run with lookups
    from pipeline.engine.engine import Engine

GRACE_S = 6.0
"""After a signal, how long answers in flight may take to arrive and be recorded (the
CLI ends the process 10 s after the signal whatever happens)."""


class RunSession:
    """One session of a run: the stages wired, the output written, the run's new state
    and its report recorded, whatever ends it."""

    def __init__(
        self,
        request: RunRequest,
        opened: Opened,
        record: RunRecord,
        started: datetime,
        opening: RunOpened | None = None,
    ) -> None:
        config = request.config
        self.request = request
        self.opening = opening
        self.opened = opened
        self.record = record
        self.run_dir = Path(config.run.state_dir) / "runs" / record.run_id
        self.state = RunState(record.run_id, record.session, [p.name for p in opened.providers])
        self.state.started = started
        self.session = Session(
            record.run_id, record.session, {p.name: p.params() for p in opened.providers}
        )
        self.log = RunLog(self.run_dir)
        self.failed_rows = FailedRowsFile(self.run_dir)
        self.cap, self.cap_from = opened.store.budget(
            record.run_id, request.max_credits, config.run.max_credits
        )
        self.budget = Budget(self.cap, self._spent_so_far())
        self.engine: Engine | None = None
        source = opened.source
        rows = RowCount(source.read_path, source.format, count=bool(opened.providers))
        prices = {p.name: p.max_credits_per_key() for p in opened.providers}
        self.live = LiveProgress(self.state, self.budget, rows, prices)
        self._shown = False

    def _spent_so_far(self) -> int:
        """What the run was charged, and what its requests that got no answer may cost."""
        store, run_id = self.opened.store, self.record.run_id
        held = sum(
            store.request_totals(run_id, p.name).unanswered_numbers * p.max_credits_per_key()
            for p in self.opened.providers
        )
        return store.charged(run_id) + held

    def run(self) -> RunSummary:
        self._log_start()
        outcome = Outcome.unfinished()
        try:
            output = self._write()
            self._show(self.live.snapshot(), last=True)  # the last frame: every lookup done
            outcome = outcome_of(self.state, self.engine)
            outcome.record(self.opened.store, self.record.run_id)
        except BaseException as exc:
            outcome = Outcome.of_error(exc)
            self._record_error(exc, outcome)
            if isinstance(exc, Interrupted | KeyboardInterrupt):
                raise self._reported(exc) from None
            raise
        finally:
            summary = self._finish(outcome)
        summary.output = output
        return summary

    def _log_start(self) -> None:
        config, record = self.request.config, self.record
        self.log.event(
            "run_started" if record.session == 1 else "run_resumed",
            run_id=record.run_id, session=record.session, input=str(config.input.path),
            output=str(config.output_file), providers=list(self.state.providers),
            **(self.opening.details() if self.opening else {}),
        )  # fmt: skip
        if self.opening is not None and self.request.on_event is not None:
            self.request.on_event(self.opening)

    def _write(self) -> Path:
        config, opened = self.request.config, self.opened
        remove_stale_temp_outputs(config.output_file)
        read = ReadStage(config, opened.source, opened.seen, self.state)
        write = WriteStage(config, opened.source, opened.providers, self.failed_rows)
        schema = write.schema(read.transform)
        with ExitStack() as stack:
            self.engine = self.live.engine = self._start_engine(stack)
            first, second = self._lookup_stages()
            stack.enter_context(
                Ticker(self.live.snapshot, self._show, self.request.progress_every_s)
            )
            answers = AnswerWait(self.engine, self._guard(read))
            merged = stack.enter_context(
                staged(read.batches(), first, second, answers,
                       config.normalize.regions, self.engine)
            )  # fmt: skip
            return write.write(schema, lambda: merged, self.state, read.check_unchanged)

    def _start_engine(self, stack: ExitStack) -> Engine | None:
        providers = self.opened.providers
        if not providers:
            return None
        from pipeline.engine.engine import Engine

        engine = stack.enter_context(
            Engine(
                providers, self.request.config.providers.enabled(), self.opened.store,
                self.session, transport=self.request.transport, budget=self.budget,
                grace_s=GRACE_S,
            )
        )  # fmt: skip
        stack.enter_context(
            self.request.stop.calling(lambda why: engine.stop(StopReason.interrupted(why)))
        )
        return engine

    def _lookup_stages(self) -> tuple[LookupStage, LookupStage]:
        """Stage 1: the providers that find phones; stage 2: the rest."""
        cache = cache_from(self.record, self.request.config)
        scopes = {p.name: self.session.scope(p.name, cache[p.name]) for p in self.opened.providers}
        finders = [p for p in self.opened.providers if p.appends_phone is not None]
        others = [p for p in self.opened.providers if p.appends_phone is None]
        store = self.opened.store
        return (
            LookupStage(finders, store, self.engine, scopes, self.state),
            LookupStage(others, store, self.engine, scopes, self.state),
        )

    def _guard(self, read: ReadStage) -> Callable[[], None]:
        def guard() -> None:
            """While answers are awaited: a stop, or an input that changed (nothing more
            is then bought for a version of it that will be refused)."""
            self.request.stop.check()
            read.check_unchanged()

        return guard

    def _show(self, progress: Progress, last: bool = False) -> None:
        """A frame to the run log and the display; the last one only to a display that
        has shown one (a run over before the first tick prints no progress at all)."""
        self.log.event("progress", **progress.as_dict())
        if self.request.on_progress is not None and (self._shown or not last):
            self.request.on_progress(progress)
            self._shown = True

    def _record_error(self, exc: BaseException, outcome: Outcome) -> None:
        store, run_id = self.opened.store, self.record.run_id
        if isinstance(exc, Interrupted | KeyboardInterrupt):
            quietly(store.stop, run_id, outcome.exit_code, outcome.error or "stopped")
        else:
            quietly(store.fail, run_id, outcome.exit_code, outcome.error or "failed")

    def _reported(self, exc: BaseException) -> BaseException:
        return Interrupted(
            f"{exc}: the answers in flight were recorded and no output was written; the "
            f"same command resumes run {self.record.run_id}"
        )

    def _finish(self, outcome: Outcome) -> RunSummary:
        """The report and failed_rows.csv, whatever ended the session."""
        report = self._report(outcome)
        summary = RunSummary(self.record.run_id, report.exit_code, self.record.session,
                             figures=report)  # fmt: skip
        unwritten: list[OSError] = []
        try:
            summary.report = write_report(self.run_dir, report)
        except OSError as exc:
            unwritten.append(exc)
        summary.html = html_report_or_none(self.run_dir, report, self.log)
        self.log.event(
            "run_ended", exit_code=report.exit_code, rows=self.state.phones.rows,
            credits=report.credits, duration_s=round(report.duration_s, 3),
            stopped={n: str(why) for n, why in self.state.stops.items() if why},
            error=report.error,
        )  # fmt: skip
        try:
            summary.failed_rows = self.failed_rows.close()
        except OSError as exc:
            unwritten.append(exc)
        if unwritten and outcome.error is None:
            self._unreported(unwritten[0])
        return summary

    def _report(self, outcome: Outcome) -> RunReport:
        config, source, store = self.request.config, self.opened.source, self.opened.store
        note_stops(self.state, self.engine)
        return RunReport(
            run_id=self.record.run_id, config=self.request.config_path,
            started_at=self.state.started, session=self.record.session,
            input=InputFigures(
                str(config.input.path), source.format, source.encoding, source.replaced_bytes,
                source.line_ends, source.fingerprint,
            ),
            output=config.output_file,
            exit_code=outcome.exit_code, error=outcome.error,
            finished_at=datetime.now(UTC), duration_s=self.state.elapsed_s,
            phones=self.state.phones,
            providers=provider_figures(store, self.state, self.opened.providers, self.engine),
            budget=budget_figures(self.cap, self.cap_from, self.budget),
            run=quietly(self._run_figures),
            verdicts=self.state.verdicts,
        )  # fmt: skip

    def _run_figures(self) -> RunFigures | None:
        """The run over all its sessions, as the store has it (None: the store is gone)."""
        store, run_id = self.opened.store, self.record.run_id
        record = store.get_run(run_id)
        if record is None:
            return None
        return RunFigures.of(record, store.sessions(run_id), datetime.now(UTC).timestamp())

    def _unreported(self, exc: OSError) -> None:
        """The run ended well, but what it says of itself is missing."""
        quietly(
            self.opened.store.fail, self.record.run_id, EXIT_STOPPED,
            "its report could not be written",
        )  # fmt: skip
        raise StoreError(
            f"{self.run_dir}: {exc.strerror or exc}: the output was written but not "
            "report.json or failed_rows.csv; fix that, then run the same command again: it "
            "writes them and buys nothing"
        )
