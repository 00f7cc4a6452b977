"""Wire the stages of one run: read -> normalize -> write -> report.

The read and the normalization are one lazy polars query streamed in batches, so
the cleaning runs inside polars' streaming engine; each batch then gets its
trace ids and is appended to the output's temp file. Nothing is renamed into place
until every row is written, and the report says what happened either way.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from pipeline.config import Config
from pipeline.errors import (
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_STOPPED,
    InputError,
    PipelineError,
    UsageError,
)
from pipeline.io.reader import ROW_NUMBER, InputFile, iter_batches, open_input, output_schema
from pipeline.io.writer import write_batches
from pipeline.normalize import (
    CONSENT_DATE_COLUMN,
    PHONE_COLUMNS,
    normalize_consent_dates,
    normalize_phones,
)
from pipeline.report import write_failed_rows, write_report
from pipeline.trace import TRACE_ID_COLUMN, trace_id_expr

CREDITS_TOTAL = "credits_total"
Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


@dataclass(frozen=True)
class Progress:
    """A snapshot for progress display."""

    rows: int
    elapsed_s: float


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
    duration_s: float = 0.0


def new_run_id(now: datetime) -> str:
    """Sortable and unique: UTC time plus a little randomness."""
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def added_columns(config: Config) -> list[str]:
    """The columns a run appends after the input's own, in output order."""
    columns = [TRACE_ID_COLUMN, *PHONE_COLUMNS]
    if config.input.consent_date_column:
        columns.append(CONSENT_DATE_COLUMN)
    columns.append(CREDITS_TOTAL)
    return columns


def _check_columns(config: Config, source: InputFile) -> None:
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
    clashes = [c for c in added_columns(config) if c in source.columns]
    if clashes:
        raise InputError(
            f"{source.path}: already has column {clashes[0]!r}, which the output adds "
            "(is this a phone-enrich output?); rename or drop it"
        )


def _pipeline(config: Config) -> Callable[[pl.LazyFrame], pl.LazyFrame]:
    """Per-batch work that does not depend on where the batch sits in the file."""

    def transform(frame: pl.LazyFrame) -> pl.LazyFrame:
        frame = normalize_phones(frame, config.input.phone_column, config.normalize.regions)
        if config.input.consent_date_column:
            frame = normalize_consent_dates(frame, config.input.consent_date_column)
        return frame.with_columns(pl.lit(0, dtype=pl.Int64).alias(CREDITS_TOTAL))

    return transform


def _finisher(config: Config, source: InputFile) -> Callable[[Frame], Frame]:
    """Trace ids (from the file-wide row numbers) and the output's column order."""
    columns = [*source.columns, *added_columns(config)]

    def finish(frame: Frame) -> Frame:
        with_ids = frame.with_columns(trace_id_expr(source.fingerprint, ROW_NUMBER))
        return with_ids.select(columns)

    return finish


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
) -> RunSummary:
    """Run one job described by ``config``; return its summary (never a partial output)."""
    started = datetime.now(UTC)
    clock = time.monotonic()
    state_dir = Path(config.run.state_dir)
    summary = RunSummary(run_id=new_run_id(started), exit_code=EXIT_OK)
    run_dir = state_dir / "runs" / summary.run_id
    input_path = Path(config.input.path)
    output_path = Path(config.output.path)
    if input_path.exists() and output_path.exists() and input_path.samefile(output_path):
        raise UsageError(f"{output_path}: output.path is the input file; choose another path")
    report: dict[str, Any] = {
        "run_id": summary.run_id,
        "config": config_path,
        "started_at": started.isoformat(),
        "input": {"path": str(input_path)},
        "output": {"path": str(output_path)},
    }
    source: InputFile | None = None
    try:
        source = open_input(input_path, config.input.encoding, state_dir / "tmp")
        report["input"].update(
            format=source.format, encoding=source.encoding, fingerprint=source.fingerprint
        )
        _check_columns(config, source)
        transform = _pipeline(config)
        finish = _finisher(config, source)

        def batches() -> Iterator[pl.DataFrame]:
            assert source is not None
            last_report = clock
            for batch in iter_batches(source, transform, config.run.batch_rows):
                _tally(batch, config, summary)
                yield finish(batch)
                now = time.monotonic()
                if on_progress is not None and now - last_report >= progress_every_s:
                    on_progress(Progress(summary.rows, now - clock))
                    last_report = now

        schema = output_schema(source, lambda frame: finish(transform(frame)))
        write_batches(output_path, schema, batches)
        summary.output = output_path
    except BaseException as exc:
        summary.exit_code = _exit_code_of(exc)
        report["error"] = str(exc) or type(exc).__name__
        raise
    finally:
        if source is not None:
            source.close()
        summary.duration_s = time.monotonic() - clock
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
            providers={},
            credits_total=0,
        )
        if summary.consent_dates:
            report["consent_dates"] = summary.consent_dates
        summary.report = write_report(run_dir, report)
        write_failed_rows(run_dir, [])
    return summary
