"""A run, top to bottom: pick the run, wire the stages, write the output and the report.

    read -> normalize -> lookup (stage 1) -> renormalize -> lookup (stage 2) -> write
                                                                     -> report

Reading and normalizing run on reader threads, each lookup stage on its own thread,
the provider lanes on the engine's event loop, merging and writing here; bounded
hand-offs sit between them (:mod:`pipeline.stages.flow`). Every answer is committed
to the answer store as it arrives and the output is merged from the store, so a run
killed at any moment is resumed by running it again: same job (input + config), same
run id, next session (:class:`~pipeline.session.RunSession`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.config import Config
from pipeline.errors import EXIT_OK
from pipeline.io.changes import file_identity
from pipeline.io.reader import InputFile, open_input
from pipeline.jobs import (
    finished_run,
    identity_text,
    job_identity,
    job_key,
    nothing_to_retry,
    open_run,
    run_to_retry,
)
from pipeline.lock import state_lock
from pipeline.opened import Opened, quietly
from pipeline.outcome import early_failure
from pipeline.preflight import check_paths
from pipeline.progress import Progress
from pipeline.providers import build_providers
from pipeline.report import write_report
from pipeline.run_opening import RunOpened, opening_of
from pipeline.run_request import RunRequest
from pipeline.session import GRACE_S, RunSession
from pipeline.stages.read import check_columns
from pipeline.stopping import StopRequest
from pipeline.store import open_store
from pipeline.store.base import AnswerStore
from pipeline.store.records import RunRecord
from pipeline.summary import RunSummary

if TYPE_CHECKING:
    import httpx

__all__ = ["GRACE_S", "RunSummary", "retry", "run"]


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
    on_event: Callable[[RunOpened], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
) -> RunSummary:
    """Run (or resume) the job ``config`` describes; return its summary.

    The options are :class:`RunRequest`'s. One run per state folder at a time
    (LockedError, exit 75, otherwise). A job whose last run finished with every row
    settled is not run again unless ``force``: the summary of that run comes back with
    ``already_done`` set. Never leaves a partial output: the output is renamed into
    place only once every row is written, and the report says what happened either
    way. ``stop`` (the CLI's signal handlers) stops every lane at once: what is in
    flight is recorded, no output is written, and :class:`Interrupted` (exit 3) is
    raised; the same job resumes.
    """
    return _execute(
        RunRequest(
            config, config_path, on_progress, progress_every_s, no_cache, force, transport,
            stop or StopRequest(), max_credits, on_event=on_event, on_notice=on_notice,
        )
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
    on_event: Callable[[RunOpened], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
) -> RunSummary:
    """Re-attempt the lookups that failed in a run (default: this config's latest run),
    as a new session of that run: answers it already has are not bought again, and its
    output and report are rewritten (row trace ids do not change). The run's budget
    holds unless ``max_credits`` (``--max-credits``) replaces it. A finished run with no
    failed lookup is left as it is (no new session): its summary comes back with
    ``nothing_failed`` set."""
    return _execute(
        RunRequest(
            config, config_path, on_progress, progress_every_s, False, True, transport,
            stop or StopRequest(), max_credits, retry=True, retry_run=run_id,
            on_event=on_event, on_notice=on_notice,
        )
    )  # fmt: skip


def _execute(request: RunRequest) -> RunSummary:
    config = request.config
    with state_lock(Path(config.run.state_dir)):
        check_paths(config)  # before the first request: whatever would fail only at the end
        started = datetime.now(UTC)
        with _opened(request, started) as opened:
            if not request.force:
                done = finished_run(opened.store, opened.job, config.output_file)
                if done is not None:
                    return _already_done(config, done)
            again = None
            if request.retry:
                again = run_to_retry(opened.store, opened.job, request.retry_run, config)
                if nothing_to_retry(opened.store, again):
                    return _already_done(config, again, nothing_failed=True)
            record, opening = _pick_run(request, opened, started, again)
            request.stop.check()
            summary = RunSession(request, opened, record, started, opening).run()
            summary.opening = opening
            return summary


@contextmanager
def _opened(request: RunRequest, started: datetime) -> Iterator[Opened]:
    """Providers (a missing key fails here, before any work), the input (its identity
    read before its fingerprint) and the store; a failure here still gets a report."""
    config = request.config
    state_dir = Path(config.run.state_dir)
    source: InputFile | None = None
    store: AnswerStore | None = None
    try:
        providers = build_providers(config)
        seen = file_identity(Path(config.input.path))
        source = open_input(
            Path(config.input.path), config.input.encoding, state_dir / "tmp",
            config.input.encoding_errors,
        )  # fmt: skip
        check_columns(config, source, providers)
        store = open_store(state_dir, request.on_notice)
    except BaseException as exc:
        if source is not None:
            source.close()
        quietly(write_report, *early_failure(config, request.config_path, started, exc))
        raise
    try:
        identity = job_identity(config, source, providers)
        yield Opened(providers, source, seen, store, job_key(identity), identity)
    finally:
        source.close()
        store.close()


def _pick_run(
    request: RunRequest, opened: Opened, started: datetime, again: RunRecord | None
) -> tuple[RunRecord, RunOpened]:
    """The session's run (``again``: the run ``retry`` takes up), and how it was picked."""
    store, config = opened.store, request.config
    if again is not None:
        record = store.resume(again.run_id)
        return record, RunOpened("retry", record.run_id, record.session)
    previous = store.latest_run_between(str(config.input.path), str(config.output_file))
    record = open_run(
        store, opened.job, config, request.config_path, started, request.no_cache,
        identity_text(opened.identity),
    )  # fmt: skip
    return record, opening_of(record, previous, opened.identity)


def _already_done(config: Config, last: RunRecord, *, nothing_failed: bool = False) -> RunSummary:
    report = Path(config.run.state_dir) / "runs" / last.run_id / "report.json"
    return RunSummary(
        run_id=last.run_id,
        exit_code=EXIT_OK,
        output=config.output_file,
        report=report if report.exists() else None,
        session=last.session,
        already_done=not nothing_failed,
        nothing_failed=nothing_failed,
    )
