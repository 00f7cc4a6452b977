"""``phone-enrich status``: what the answer store says about the runs of a state folder.

Read-only and lock-free (the store lets it read while a run writes), so it can be
asked while a run is going. A run's state says ``running`` from its start until it
ends; one killed (-9, OOM, a power cut) never ends, so the lock, which dies with its
holder, says whether it still runs: the state folder's lock free, it is shown as
``interrupted``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pipeline.config import Config
from pipeline.console import progress_line
from pipeline.errors import UsageError
from pipeline.lock import lock_is_held
from pipeline.progress import last_progress
from pipeline.store import has_store, open_store
from pipeline.store.base import AnswerStore
from pipeline.store.records import RunRecord


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _progress(run_dir: Path) -> str:
    report = run_dir / "report.json"
    if not report.exists():
        return "no report yet"
    data = json.loads(report.read_text(encoding="utf-8"))
    return f"{data.get('rows', 0):,} rows, {data.get('credits_total', 0):,} credits in rows"


def _describe(
    store: AnswerStore, run: RunRecord, state_dir: Path, detail: bool, live: str | None
) -> list[str]:
    code = "" if run.exit_code is None else f", exit {run.exit_code}"
    state = run.state
    if state == "running" and run.run_id != live:
        state = "interrupted"
    lines = [
        f"{run.run_id}  {state} (session {run.session}{code})  started {_when(run.started_at)}",
        f"  input {run.input_path} -> output {run.output_path}",
        f"  charged {store.charged(run.run_id):,} credits; "
        + _progress(state_dir / "runs" / run.run_id),
    ]
    if state == "interrupted":
        lines.append(
            "  interrupted: its process ended without finishing it (killed or crashed); "
            "the same command resumes it"
        )
    if run.stop_reason:
        lines.append(f"  stopped: {run.stop_reason}")
    latest = last_progress(state_dir / "runs" / run.run_id / "log.jsonl")
    if latest is not None:
        at, progress = latest
        lines.append(f"  progress of session {run.session} at {_when(at)}:")
        lines.append("    " + progress_line(progress, 200))
    if run.max_credits is not None:
        lines.append(f"  budget: {run.max_credits:,} credits (--max-credits, kept for the run)")
    if detail:
        for provider in store.providers_of_run(run.run_id):
            by_status = store.lookup_counts(run.run_id, provider)
            shown = ", ".join(f"{s} {n:,}" for s, n in sorted(by_status.items()))
            totals = store.request_totals(run.run_id, provider)
            unanswered = totals.unanswered
            # While a run goes, its requests in flight have no answer yet either.
            word = "in flight or unanswered" if state == "running" else "unanswered"
            lines.append(
                f"  {provider}: lookups {shown}; {totals.requests:,} requests, "
                f"{totals.retries:,} retries, {totals.http_429:,} throttled"
                + (
                    f", {unanswered:,} {word} ({totals.unanswered_numbers:,} numbers)"
                    if unanswered
                    else ""
                )
            )
        for provider, error, count in store.failure_reasons(run.run_id)[:10]:
            lines.append(f"  failed {count:,} x {provider}: {error}")
    return lines


def status_lines(
    config: Config,
    run_id: str | None = None,
    limit: int = 10,
    on_notice: Callable[[str], None] | None = None,
) -> list[str]:
    """Lines describing the state folder's newest runs, or one run in detail
    (``on_notice``: as :func:`~pipeline.store.open_store`'s ``on_upgrade``)."""
    state_dir = Path(config.run.state_dir)
    if not has_store(state_dir):
        return [f"{state_dir}: no runs yet"]
    with open_store(state_dir, on_notice) as store:
        live = _live_run(store, state_dir)
        if run_id is not None:
            run = store.get_run(run_id)
            if run is None:
                raise UsageError(f"--run {run_id}: no such run in {state_dir}")
            return _describe(store, run, state_dir, True, live)
        runs = store.runs(limit)
        if not runs:
            return [f"{state_dir}: no runs yet"]
        lines: list[str] = []
        for index, run in enumerate(runs):
            lines.extend(_describe(store, run, state_dir, index == 0, live))
        return lines


def _live_run(store: AnswerStore, state_dir: Path) -> str | None:
    """The run whose process is going now, if any: one run at a time holds the lock, so
    with the lock held it is the newest one (re)started; with it free, none."""
    if not lock_is_held(state_dir):
        return None
    return store.newest_running()
