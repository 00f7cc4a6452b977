"""How a session ended, and the figures its report gives: built from the run's state
and the store, in one place.

A session ends in one of four ways: every row settled (exit 0), some lookups failed
(exit 1, ``retry`` takes them up), a lane stopped (budget, refused key: exit 3,
resumable), or an error ended it (its exit code; resumable). The store records the
run's new state accordingly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.config import Config
from pipeline.engine.budget import Budget
from pipeline.errors import (
    EXIT_INTERNAL,
    EXIT_LOOKUPS_FAILED,
    EXIT_OK,
    EXIT_STOPPED,
    PipelineError,
)
from pipeline.jobs import new_run_id
from pipeline.providers.base import Provider
from pipeline.report import BudgetFigures, InputFigures, ProviderFigures, RunReport
from pipeline.run_state import RunState
from pipeline.store.base import AnswerStore

if TYPE_CHECKING:
    from pipeline.engine.engine import Engine


def exit_code_of(exc: BaseException) -> int:
    if isinstance(exc, PipelineError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_STOPPED
    return EXIT_INTERNAL


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    error: str | None = None
    """What ended the session, when an error did."""
    stop_reason: str | None = None
    """``provider: why`` of each lane that stopped, when one did."""

    @classmethod
    def unfinished(cls) -> Outcome:
        return cls(EXIT_INTERNAL, "the session ended before it finished")

    @classmethod
    def of_error(cls, exc: BaseException) -> Outcome:
        return cls(exit_code_of(exc), str(exc) or type(exc).__name__)

    def record(self, store: AnswerStore, run_id: str) -> None:
        """The run's new state, for a session that wrote its output."""
        if self.stop_reason is not None:
            store.stop(run_id, self.exit_code, self.stop_reason)
        else:
            store.finish(run_id, self.exit_code)


def note_stops(state: RunState, engine: Engine | None) -> None:
    """Why each lane stopped, as the engine says now (a lane may stop after the last
    batch merged)."""
    if engine is not None:
        for name in state.stops:
            state.stops[name] = engine.stopped(name)


def outcome_of(state: RunState, engine: Engine | None) -> Outcome:
    """How a session that wrote every row ended."""
    note_stops(state, engine)
    reasons = state.lane_stops()
    if reasons:
        return Outcome(EXIT_STOPPED, stop_reason="; ".join(reasons))
    return Outcome(EXIT_LOOKUPS_FAILED if state.failed_rows else EXIT_OK)


def provider_figures(
    store: AnswerStore, state: RunState, providers: list[Provider], engine: Engine | None
) -> dict[str, ProviderFigures]:
    """Each provider's figures: the store's for the whole run, the rows' for this session."""
    figures: dict[str, ProviderFigures] = {}
    for provider in providers:
        name = provider.name
        stop = state.stops[name]
        figures[name] = ProviderFigures(
            requests=store.request_totals(state.run_id, name),
            rows=state.tallies[name],
            lookups=store.lookup_counts(state.run_id, name),
            max_credits_per_key=provider.max_credits_per_key(),
            stopped=None if stop is None else str(stop),
            peak_in_flight=engine.lanes[name].in_flight.peak if engine is not None else None,
            lookups_total=state.plans[name].keys,
            lookups_bought=state.plans[name].bought,
        )
    return figures


def budget_figures(cap: int | None, source: str, budget: Budget) -> BudgetFigures:
    return BudgetFigures(max_credits=cap, source=source, spent=budget.spent)


def early_failure(
    config: Config, config_path: str | None, started: datetime, exc: BaseException
) -> tuple[Path, RunReport]:
    """Where and what to report for a run that failed before it began (bad input, a
    missing key): it has a run id of its own and no figures."""
    run_id = new_run_id(started)
    report = RunReport(
        run_id=run_id,
        config=config_path,
        started_at=started,
        input=InputFigures(str(config.input.path)),
        output=config.output_file,
        exit_code=exit_code_of(exc),
        error=str(exc) or type(exc).__name__,
    )
    return Path(config.run.state_dir) / "runs" / run_id, report
