"""Wire the stages of one run: read -> normalize -> plan -> fetch -> merge -> write -> report.

Reading and normalizing run on reader threads, planning on its own thread, the
provider lanes on the engine's event loop, merging and writing here; bounded
queues sit between them. Every answer is committed to the ledger as it arrives and
the output is merged from the ledger, so a run killed at any moment is resumed by
running it again: same job (input + config), same run id, next session.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import polars as pl

from pipeline.config import Config
from pipeline.engine.budget import Budget
from pipeline.engine.engine import Engine
from pipeline.errors import (
    EXIT_INTERNAL,
    EXIT_LOOKUPS_FAILED,
    EXIT_OK,
    EXIT_STOPPED,
    InputError,
    Interrupted,
    PipelineError,
    StoreError,
    UsageError,
)
from pipeline.flow import PlannerThread, merged_batches
from pipeline.io.changes import FileIdentity, check_unchanged, file_identity
from pipeline.io.reader import ROW_NUMBER, InputFile, iter_batches, open_input, output_schema
from pipeline.io.writer import write_batches
from pipeline.jobs import cache_from, job_id, new_run_id, open_run, remove_stale_temp_outputs
from pipeline.ledger import Ledger, RunRecord
from pipeline.ledger_file import LedgerError, unwritable
from pipeline.lock import state_lock
from pipeline.merge import ProviderTally, merge, status_columns, text_columns
from pipeline.normalize import (
    CONSENT_DATE_COLUMN,
    PHONE_COLUMNS,
    normalize_consent_dates,
    normalize_phones,
)
from pipeline.plan import PlannedBatch, Planner, RunContext
from pipeline.preflight import check_paths
from pipeline.progress import Progress, RunLog, Ticker, estimate_rows
from pipeline.providers import Provider, build_providers
from pipeline.report import FailedRowsFile, provider_report, write_report
from pipeline.stopping import StopRequest
from pipeline.trace import TRACE_ID_COLUMN, trace_id_expr

CREDITS_TOTAL = "credits_total"
Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)
T = TypeVar("T")
GRACE_S = 6.0
"""After a signal, how long answers in flight may take to arrive and be recorded (the
CLI ends the process 10 s after the signal whatever happens)."""


@dataclass
class RunSummary:
    """What a run did; the CLI prints it and turns ``exit_code`` into the exit status."""

    run_id: str
    exit_code: int
    rows: int = 0
    valid: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    consent_dates: dict[str, int] = field(default_factory=dict)
    output: Path | None = None
    report: Path | None = None
    failed_rows: Path | None = None
    duration_s: float = 0.0
    session: int = 1
    credits: int = 0
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)
    already_done: bool = False
    """Nothing was run: the same job already finished with every row settled."""


def added_columns(config: Config, providers: list[Provider]) -> list[str]:
    """The columns a run appends after the input's own, in output order."""
    columns = [TRACE_ID_COLUMN, *PHONE_COLUMNS]
    if config.input.consent_date_column:
        columns.append(CONSENT_DATE_COLUMN)
    for provider in providers:
        columns.extend(status_columns(provider))
    columns.append(CREDITS_TOTAL)
    return columns


def check_columns(config: Config, source: InputFile, providers: list[Provider]) -> None:
    wanted = {
        "input.phone_column": config.input.phone_column,
        "input.id_column": config.input.id_column,
        "input.consent_date_column": config.input.consent_date_column,
    }
    for key, column in wanted.items():
        if column is not None and column not in source.columns:
            shown = ", ".join(source.columns[:12]) + (", ..." if len(source.columns) > 12 else "")
            raise InputError(
                f"{source.path}: no column {column!r} (set by {key}); the file has: {shown}"
            )
    clashes = [c for c in added_columns(config, providers) if c in source.columns]
    if clashes:
        raise InputError(
            f"{source.path}: already has column {clashes[0]!r}, which the output adds "
            "(is this a phone-enrich output?); rename or drop it"
        )


def normalizer(config: Config) -> Callable[[pl.LazyFrame], pl.LazyFrame]:
    """Per-batch work that does not depend on where the batch sits in the file."""

    def transform(frame: pl.LazyFrame) -> pl.LazyFrame:
        frame = normalize_phones(frame, config.input.phone_column, config.normalize.regions)
        if config.input.consent_date_column:
            frame = normalize_consent_dates(frame, config.input.consent_date_column)
        return frame.with_columns(pl.lit(0, dtype=pl.Int64).alias(CREDITS_TOTAL))

    return transform


def _finisher(
    config: Config, source: InputFile, providers: list[Provider]
) -> Callable[[Frame], Frame]:
    """Trace ids (from the file-wide row numbers) and the output's column order."""
    columns = [*source.columns, *added_columns(config, providers)]

    def finish(frame: Frame) -> Frame:
        if TRACE_ID_COLUMN not in frame.collect_schema().names():
            frame = frame.with_columns(trace_id_expr(source.fingerprint, ROW_NUMBER))
        return frame.select(columns)

    return finish


def _output_schema(
    source: InputFile,
    transform: Callable[[pl.LazyFrame], pl.LazyFrame],
    finish: Callable[[pl.LazyFrame], pl.LazyFrame],
    providers: list[Provider],
) -> pl.Schema:
    """The output's columns and types: the input's, ours, each provider's."""

    def with_providers(frame: pl.LazyFrame) -> pl.LazyFrame:
        frame = transform(frame)
        empty = [
            pl.lit(None, dtype=dtype).alias(name)
            for provider in providers
            for name, dtype in status_columns(provider).items()
        ]
        return finish(frame.with_columns(empty))

    return output_schema(source, with_providers)


def _tally(batch: pl.DataFrame, config: Config, summary: RunSummary) -> None:
    summary.rows += batch.height
    summary.valid += int(batch["phone_valid"].sum())
    reasons = Counter(summary.reasons)
    for reason, count in batch["phone_reject_reason"].drop_nulls().value_counts().iter_rows():
        reasons[reason] += count
    summary.reasons = dict(sorted(reasons.items()))
    if config.input.consent_date_column:
        raw = batch[config.input.consent_date_column].cast(pl.String).str.strip_chars()
        blank = int((raw.is_null() | (raw == "")).sum())
        read = int(batch[CONSENT_DATE_COLUMN].is_not_null().sum())
        dates = Counter(summary.consent_dates)
        dates.update({"read": read, "blank": blank, "unreadable": batch.height - read - blank})
        summary.consent_dates = dict(dates)


def _exit_code_of(exc: BaseException) -> int:
    if isinstance(exc, PipelineError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_STOPPED
    return EXIT_INTERNAL


def run(
    config: Config,
    *,
    config_path: str | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    progress_every_s: float = 2.0,
    no_cache: bool = False,
    force: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
    stop: StopRequest | None = None,
    max_credits: int | None = None,
) -> RunSummary:
    """Run (or resume) the job ``config`` describes; return its summary.

    One run per state folder at a time (LockedError, exit 75, otherwise). A job
    whose last run finished with every row settled is not run again unless
    ``force``: the summary of that run comes back with ``already_done`` set.
    Never leaves a partial output: the output is renamed into place only once
    every row is written, and the report says what happened either way.

    ``stop`` (set by the CLI's signal handlers) stops every lane at once: what is in
    flight is recorded, no output is written, and :class:`Interrupted` (exit 3) is
    raised; the same job resumes. ``max_credits`` is ``--max-credits``: stored with the
    run (:meth:`Ledger.budget`).
    """
    with state_lock(Path(config.run.state_dir)):
        return _locked_run(
            config, config_path, on_progress, progress_every_s, no_cache, force, transport,
            None, stop or StopRequest(), max_credits,
        )  # fmt: skip


def retry(
    config: Config,
    *,
    run_id: str | None = None,
    config_path: str | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    progress_every_s: float = 2.0,
    transport: httpx.AsyncBaseTransport | None = None,
    stop: StopRequest | None = None,
    max_credits: int | None = None,
) -> RunSummary:
    """Re-attempt the lookups that failed in a run (default: this config's latest run),
    as a new session of that run: answers it already has are not bought again, and its
    output and report are rewritten (row trace ids do not change). The run's budget
    holds unless ``max_credits`` (``--max-credits``) replaces it."""
    with state_lock(Path(config.run.state_dir)):
        return _locked_run(
            config, config_path, on_progress, progress_every_s, False, True, transport,
            run_id or "", stop or StopRequest(), max_credits,
        )  # fmt: skip


def _locked_run(
    config: Config,
    config_path: str | None,
    on_progress: Callable[[Progress], None] | None,
    progress_every_s: float,
    no_cache: bool,
    force: bool,
    transport: httpx.AsyncBaseTransport | None,
    retry_of: str | None,
    stop: StopRequest,
    max_credits: int | None,
) -> RunSummary:
    check_paths(config)  # before the first request: whatever would fail only at the end
    started = datetime.now(UTC)
    clock = time.monotonic()
    state_dir = Path(config.run.state_dir)
    input_path = Path(config.input.path)
    source: InputFile | None = None
    try:
        providers = build_providers(config)  # a missing key fails here, before any work
        seen = file_identity(input_path)  # before the fingerprint is taken
        source = open_input(
            input_path, config.input.encoding, state_dir / "tmp", config.input.encoding_errors
        )
        check_columns(config, source, providers)
        ledger = Ledger(state_dir)
    except BaseException as exc:
        if source is not None:
            source.close()
        _report_early_failure(state_dir, started, config_path, config, exc)
        raise
    try:
        done = None if force else _already_done(ledger, config, source, providers)
        if done is not None:
            return done
        again = (
            None if retry_of is None else _run_to_retry(ledger, config, source, providers, retry_of)
        )
        stop.check()
        return _run_job(
            config, config_path, source, ledger, providers, started, clock,
            on_progress, progress_every_s, no_cache, transport, again, stop, seen,
            max_credits,
        )  # fmt: skip
    finally:
        source.close()
        ledger.close()


def _run_to_retry(
    ledger: Ledger, config: Config, source: InputFile, providers: list[Provider], run_id: str
) -> RunRecord:
    job = job_id(config, source, providers)
    if not run_id:
        latest = ledger.latest_run(job)
        if latest is None:
            raise UsageError(
                f"{config.input.path}: no run of this input with this config to retry; use run"
            )
        return latest
    record = ledger.get_run(run_id)
    if record is None:
        raise UsageError(f"--run {run_id}: no such run in {config.run.state_dir}")
    if record.job != job:
        raise UsageError(
            f"--run {run_id}: that run enriched another input or config "
            f"({record.input_path} -> {record.output_path}); pass the config it ran with"
        )
    return record


def _already_done(
    ledger: Ledger, config: Config, source: InputFile, providers: list[Provider]
) -> RunSummary | None:
    """The last run of this very job, if it settled every row and its output is there."""
    last = ledger.latest_run(job_id(config, source, providers))
    output = config.output_file
    if last is None or last.state != "finished" or last.exit_code != EXIT_OK:
        return None
    if not output.exists():
        return None
    report = Path(config.run.state_dir) / "runs" / last.run_id / "report.json"
    return RunSummary(
        run_id=last.run_id,
        exit_code=EXIT_OK,
        output=output,
        report=report if report.exists() else None,
        session=last.session,
        already_done=True,
    )


def _report_early_failure(
    state_dir: Path, started: datetime, config_path: str | None, config: Config, exc: BaseException
) -> None:
    """A run that failed before it began (bad input, missing key) still gets a report."""
    run_id = new_run_id(started)
    _quietly(
        write_report,
        state_dir / "runs" / run_id,
        {
            "run_id": run_id,
            "config": config_path,
            "started_at": started.isoformat(),
            "input": {"path": str(config.input.path)},
            "output": {"path": str(config.output_file)},
            "exit_code": _exit_code_of(exc),
            "error": str(exc) or type(exc).__name__,
        },
    )


def _run_job(
    config: Config,
    config_path: str | None,
    source: InputFile,
    ledger: Ledger,
    providers: list[Provider],
    started: datetime,
    clock: float,
    on_progress: Callable[[Progress], None] | None,
    progress_every_s: float,
    no_cache: bool,
    transport: httpx.AsyncBaseTransport | None,
    again: RunRecord | None,
    stop: StopRequest,
    seen: FileIdentity | None,
    max_credits: int | None,
) -> RunSummary:
    try:
        if again is not None:
            record = ledger.resume(again.run_id)
        else:
            job = job_id(config, source, providers)
            record = open_run(ledger, job, config, config_path, started, no_cache)
    except (OSError, sqlite3.OperationalError) as exc:  # nothing bought yet
        raise LedgerError(f"{unwritable(ledger.path, exc)}: cannot start the run") from None
    run_id = record.run_id
    summary = RunSummary(run_id=run_id, exit_code=EXIT_OK, session=record.session)
    run_dir = Path(config.run.state_dir) / "runs" / run_id
    output_path = config.output_file
    context = RunContext(run_id, record.session, cache_from(record, config))
    for provider in providers:
        ledger.set_params(provider.name, provider.params())
    tallies = {p.name: ProviderTally() for p in providers}
    stopped: dict[str, str | None] = {p.name: None for p in providers}
    report: dict[str, Any] = {
        "run_id": run_id,
        "session": record.session,
        "config": config_path,
        "started_at": started.isoformat(),
        "input": {
            "path": str(config.input.path),
            "format": source.format,
            "encoding": source.encoding,
            "replaced_bytes": source.replaced_bytes,  # encoding_errors = "replace"
            "line_ends": source.line_ends,
            "fingerprint": source.fingerprint,
        },
        "output": {"path": str(output_path)},
    }
    failed_rows = FailedRowsFile(run_dir)
    log = RunLog(run_dir)
    log.event(
        "run_started" if record.session == 1 else "run_resumed",
        run_id=run_id, session=record.session, input=str(config.input.path),
        output=str(output_path), providers=[p.name for p in providers],
    )  # fmt: skip
    cap, cap_from = ledger.budget(run_id, max_credits, config.run.max_credits)
    # Spent so far: what was charged, and what requests that got no answer may have cost.
    held = sum(
        ledger.request_totals(run_id, p.name)["unanswered_numbers"] * p.max_credits_per_key()
        for p in providers
    )
    budget = Budget(cap, ledger.charged(run_id) + held)
    engine: Engine | None = None
    try:
        remove_stale_temp_outputs(output_path)
        transform = normalizer(config)
        finish = _finisher(config, source, providers)
        with ExitStack() as stack:
            if providers:
                engine = stack.enter_context(
                    Engine(
                        providers,
                        config.providers.enabled(),
                        ledger,
                        run_id,
                        record.session,
                        transport=transport,
                        budget=budget,
                        grace_s=GRACE_S,
                    )
                )
                stack.enter_context(stop.calling(engine.stop))
            planner = Planner(providers, ledger, engine, context, config.normalize.regions)

            def merge_one(planned: PlannedBatch) -> pl.DataFrame:
                if engine is not None:
                    stopped.update({p.name: engine.stopped(p.name) for p in providers})
                return merge(planned, providers, ledger, context, stopped, tallies)

            rows_total = estimate_rows(source.read_path, source.format)

            def snapshot() -> Progress:
                sent = sum(lane.pacer.sent for lane in engine.lanes.values()) if engine else 0
                return Progress(
                    summary.rows, time.monotonic() - clock, sent, budget.spent,
                    failed_rows.count, rows_total,
                )  # fmt: skip

            def report_progress(progress: Progress) -> None:
                log.event("progress", **progress.as_dict())
                if on_progress is not None:
                    on_progress(progress)

            stack.enter_context(Ticker(snapshot, report_progress, progress_every_s))

            def guard() -> None:
                """While answers are awaited: a stop, or an input that changed (then
                nothing more is bought for a version of it that will be refused)."""
                stop.check()
                check_unchanged(Path(config.input.path), seen)

            def batches() -> Iterator[pl.DataFrame]:
                # Trace ids before planning: a provider may send one (phone
                # enrichment's record_id when the input has no id column).
                trace = trace_id_expr(source.fingerprint, ROW_NUMBER)

                def reader() -> Iterator[pl.DataFrame]:
                    for batch in iter_batches(source, transform, config.run.batch_rows):
                        check_unchanged(Path(config.input.path), seen)  # stop buying early
                        yield batch.with_columns(trace)

                with PlannerThread(reader(), planner, engine) as planned:
                    for batch in merged_batches(planned, engine, merge_one, guard):
                        _tally(batch, config, summary)
                        out = finish(batch)
                        failed_rows.add(_failures(out, batch, providers))
                        yield out

            schema = _output_schema(source, transform, finish, providers)
            safe = tuple(c for p in providers for c in text_columns(p))
            write_batches(
                output_path, schema, batches, safe_columns=safe,
                before_commit=lambda: check_unchanged(Path(config.input.path), seen),
            )  # fmt: skip
        summary.output = output_path
        if engine is not None:  # a lane may have stopped after the last batch merged
            stopped.update({p.name: engine.stopped(p.name) for p in providers})
        reasons = [f"{name}: {why}" for name, why in stopped.items() if why]
        if reasons:
            summary.exit_code = EXIT_STOPPED
            ledger.stop(run_id, EXIT_STOPPED, "; ".join(reasons))
        elif failed_rows.count:
            summary.exit_code = EXIT_LOOKUPS_FAILED
            ledger.finish(run_id, EXIT_LOOKUPS_FAILED)
        else:
            ledger.finish(run_id, EXIT_OK)
    except BaseException as exc:
        summary.exit_code = _exit_code_of(exc)
        report["error"] = str(exc) or type(exc).__name__
        if isinstance(exc, Interrupted | KeyboardInterrupt):
            _quietly(ledger.stop, run_id, EXIT_STOPPED, report["error"])
            raise Interrupted(
                f"{report['error']}: the answers in flight were recorded and no output was"
                f" written; the same command resumes run {run_id}"
            ) from None
        _quietly(ledger.fail, run_id, summary.exit_code, report["error"])
        raise
    finally:
        summary.duration_s = time.monotonic() - clock
        summary.providers = {
            p.name: provider_report(ledger, run_id, p, tallies[p.name], stopped[p.name])
            for p in providers
        }
        if engine is not None:  # what a kill -9 could have cost this session, at most
            for name, lane in engine.lanes.items():
                summary.providers[name]["peak_in_flight"] = lane.in_flight.peak
        summary.credits = sum(t.credits for t in tallies.values())
        report.update(
            finished_at=datetime.now(UTC).isoformat(),
            duration_s=round(summary.duration_s, 3),
            exit_code=summary.exit_code,
            rows=summary.rows,
            phones={
                "valid": summary.valid,
                "rejected": summary.rows - summary.valid,
                "reasons": summary.reasons,
            },
            providers=summary.providers,
            credits_total=summary.credits,
            budget={"max_credits": cap, "from": cap_from, "spent": budget.spent},
        )
        summary.budget = report["budget"]
        if summary.consent_dates:
            report["consent_dates"] = summary.consent_dates
        unwritten: list[OSError] = []
        try:
            summary.report = write_report(run_dir, report)
        except OSError as exc:
            unwritten.append(exc)
        log.event(
            "run_ended", exit_code=summary.exit_code, rows=summary.rows,
            credits=summary.credits, duration_s=round(summary.duration_s, 3),
            stopped={name: why for name, why in stopped.items() if why},
            error=report.get("error"),
        )  # fmt: skip
        try:
            summary.failed_rows = failed_rows.close()
        except OSError as exc:
            unwritten.append(exc)
    if unwritten:  # the run ended well, but what it says of itself is missing
        _quietly(ledger.fail, run_id, EXIT_STOPPED, "its report could not be written")
        raise StoreError(
            f"{run_dir}: {unwritten[0].strerror or unwritten[0]}: the output was written but "
            "not report.json or failed_rows.csv; fix that, then run the same command again: "
            "it writes them and buys nothing"
        )
    return summary


def _quietly(action: Callable[..., T], *args: Any) -> T | None:
    """Bookkeeping on the way out of a failed run (a full disk, a vanished store): not
    worth hiding the error that ended the run behind a second one."""
    try:
        return action(*args)
    except (OSError, sqlite3.Error):
        return None


def _failures(
    out: pl.DataFrame, batch: pl.DataFrame, providers: list[Provider]
) -> list[tuple[str, int, str, str, str]]:
    rows: list[tuple[str, int, str, str, str]] = []
    for provider in providers:
        status = f"{provider.prefix}_status"
        failed = out[status] == "failed"
        if not failed.any():
            continue
        picked = pl.DataFrame(
            {
                "trace": out[TRACE_ID_COLUMN].filter(failed),
                "row": batch[ROW_NUMBER].filter(failed),
                "error": out[f"{provider.prefix}_error"].filter(failed),
            }
        )
        rows.extend(
            (trace, row, provider.name, "failed", error or "")
            for trace, row, error in picked.iter_rows()
        )
    return rows
