"""What the terminal says of a run across its sessions: which run a session works on
(new, resumed, what changed), the run's totals over all its sessions at the end, and
what to do when some lookups failed."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime

from pipeline.errors import EXIT_LOOKUPS_FAILED
from pipeline.run_opening import RunOpened
from pipeline.summary import RunSummary


def event_printer(quiet: bool) -> Callable[[RunOpened], None] | None:
    """On a terminal, the line ("resuming run X (session 2)") as the session starts.
    Off one (cron) stderr stays for errors and progress: the summary and the run log
    say it; nothing with --quiet."""
    if quiet or not sys.stderr.isatty():
        return None

    def show(event: RunOpened) -> None:
        print(event.message, file=sys.stderr, flush=True)

    return show


def _clock(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _when(iso: str | None) -> str:
    if iso is None:
        return "?"
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def run_lines(summary: RunSummary) -> list[str]:
    """The run's totals over all its sessions, each session when there was more than one,
    and, after an exit 1, the command that takes the failed lookups up again."""
    figures = summary.figures
    run = figures.run if figures is not None else None
    lines: list[str] = []
    opening = summary.opening
    if opening is not None and (opening.kind != "new" or opening.previous_run is not None):
        lines.append(f"  {opening.message}")
    if run is not None:
        data, sessions = run.as_dict(), run.sessions_as_list()
        known = "" if data["duration_complete"] else " (sessions of unknown length not counted)"
        lines.append(
            f"  whole run: {len(sessions)} session{'s' if len(sessions) != 1 else ''}, started "
            f"{_when(data['started_at'])}, {_clock(data['duration_s'])} at work{known}"
            f", {data['credits_charged']:,} credits charged in all"
        )
        if len(sessions) > 1:
            for one in sessions:
                took = "?" if one["duration_s"] is None else _clock(one["duration_s"])
                code = "?" if one["exit_code"] is None else one["exit_code"]
                lines.append(
                    f"    session {one['session']}: {_when(one['started_at'])}, {took}, "
                    f"exit {code}, {one['credits_charged']:,} credits charged"
                )
    if summary.exit_code == EXIT_LOOKUPS_FAILED:
        config = (figures.config if figures is not None else None) or "CONFIG"
        command = summary.retry_with or f"phone-enrich retry {config}"
        failed = sum(f["rows"].get("failed", 0) for f in summary.providers.values())
        what = f"{failed:,} rows have lookups that failed" if failed else "some lookups failed"
        lines.append(f"  {what}: run `{command}` to try them again")
    return lines
