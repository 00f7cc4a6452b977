"""What the terminal shows of a run: the progress line (or JSON lines off a terminal)
and the summary at the end."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable

from pipeline.progress import Progress
from pipeline.run_lines import run_lines
from pipeline.summary import RunSummary
from pipeline.verdict import VERDICTS


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


SHORT_NAMES = {
    "tcpa_authority": "tcpa",
    "checkthatphone": "ctp",
    "tdg_reverse_phone": "tdg",
    "tdg_id_verify": "tdgid",
    "phone_enrichment": "append",
}


def progress_line(progress: Progress, width: int) -> str:
    """One line, at most ``width`` characters: what matters most first (how far, how long
    left), then each lane (the slowest first), rows, credits; what does not fit is left
    out whole, never cut in the middle."""
    share = progress.share
    head = f"{share:4.0%}" if share is not None else "  ?%"
    parts = [f"{head} ETA {_duration(progress.eta_s)} ({_duration(progress.elapsed_s)} elapsed)"]
    lanes = sorted(
        progress.providers.items(),
        key=lambda item: (item[1].done / item[1].total) if item[1].total else 0.0,
    )
    for name, lane in lanes:
        total = "?" if lane.total is None else f"{lane.total:,}"
        rate = "" if lane.rate_per_s is None else f" {lane.rate_per_s:,.1f}/s"
        throttled = f" 429x{lane.http_429:,}" if lane.http_429 else ""
        parts.append(f"{SHORT_NAMES.get(name, name)} {lane.done:,}/{total}{rate}{throttled}")
    rows_total = "?" if progress.rows_total is None else f"{progress.rows_total:,}"
    approx = "" if progress.rows_exact else "~"
    parts.append(f"rows {progress.rows:,}/{approx}{rows_total}")
    cap = "" if progress.max_credits is None else f"/{progress.max_credits:,}"
    estimate = progress.estimated_credits
    expected = "" if estimate is None else f" (session est. {estimate:,})"
    parts.append(f"{progress.credits:,}{cap} credits{expected}")
    if progress.failed:
        parts.append(f"{progress.failed:,} failed")
    line = parts[0]
    for part in parts[1:]:
        if len(line) + 3 + len(part) <= width:
            line += " | " + part
    return line[:width]


def notice_printer(quiet: bool) -> Callable[[str], None] | None:
    """A line to see before a long pause (a ledger being upgraded), on stderr: plain on a
    terminal; off one, a JSON line like the progress lines; nothing with --quiet."""
    if quiet:
        return None
    tty = sys.stderr.isatty()

    def show(line: str) -> None:
        text = f"phone-enrich: {line}" if tty else json.dumps({"event": "notice", "message": line})
        print(text, file=sys.stderr, flush=True)

    return show


def progress_printer(quiet: bool) -> Callable[[Progress], None] | None:
    """On a terminal, one line redrawn in place, as wide as the terminal; off one (cron),
    a JSON line each time, for log files; nothing with --quiet."""
    if quiet:
        return None
    tty = sys.stderr.isatty()

    def show(progress: Progress) -> None:
        if not tty:
            line = json.dumps({"event": "progress", **progress.as_dict()})
            print(line, file=sys.stderr, flush=True)
            return
        width = shutil.get_terminal_size(fallback=(80, 24)).columns - 1
        print(f"\r{progress_line(progress, width)}\x1b[K", end="", file=sys.stderr, flush=True)

    return show


def print_summary(summary: RunSummary) -> None:
    try:
        _summary_lines(summary)
    except BrokenPipeError:  # the reader left (`| head`): the run's exit code still counts
        stdout_to_devnull()


def _summary_lines(summary: RunSummary) -> None:
    print(f"run {summary.run_id}: {summary.rows:,} rows in {summary.duration_s:.1f}s")
    print(f"  valid phones: {summary.valid:,}   rejected: {summary.rows - summary.valid:,}")
    if summary.reasons:
        reasons = ", ".join(f"{name} {count:,}" for name, count in summary.reasons.items())
        print(f"  reject reasons: {reasons}")
    if summary.consent_dates:
        dates = ", ".join(f"{name} {count:,}" for name, count in summary.consent_dates.items())
        print(f"  consent dates: {dates}")
    verdicts = summary.figures.verdicts if summary.figures else None
    if verdicts:
        shown = ", ".join(f"{v} {verdicts[v]:,}" for v in VERDICTS if verdicts.get(v))
        print(f"  contact verdicts: {shown}")
    for name, figures in summary.providers.items():
        rows = figures["rows"]
        shown = ", ".join(f"{status} {count:,}" for status, count in rows.items() if count)
        print(
            f"  {name}: {shown}; {figures['requests']:,} requests, "
            f"{figures['retries']:,} retries, {figures['http_429']:,} throttled, "
            f"{figures['cache_hits']:,} cache hits, {figures['credits']:,} credits"
        )
        if unanswered := figures["unanswered_requests"]:
            print(
                f"  {name}: {unanswered:,} request{'s' if unanswered != 1 else ''} got no answer "
                f"({figures['unanswered_numbers']:,} numbers): up to "
                f"{figures['credits_possibly_charged']:,} credits may have been charged for them"
            )
        if figures["stopped"]:
            print(f"  {name} stopped: {figures['stopped']}")
    possibly = sum(f["credits_possibly_charged"] for f in summary.providers.values())
    if summary.providers:
        extra = f" (+ up to {possibly:,} possibly charged for requests that got no answer)"
        print(f"  credits: {summary.credits:,} in the rows" + (extra if possibly else ""))
    budget = summary.budget
    if budget.get("max_credits") is not None:
        held = " (what was charged, and the most that requests with no answer may have cost)"
        print(
            f"  budget: {budget['max_credits']:,} credits ({budget['from']}), "
            f"{budget['spent']:,} spent by this run in all its sessions"
            + (held if summary.providers and possibly else "")
        )
    for line in run_lines(summary):
        print(line)
    print(f"  output: {summary.output}")
    print(f"  report: {summary.report}")
    if summary.html is not None:
        print(f"  charts: {summary.html}")


def provider_table(summary: RunSummary, charged: dict[str, int]) -> str:
    """Per provider: what the rows got, and our credits beside what its emulator charged."""
    head = ("provider", "hit", "no_match", "invalid", "failed", "not_req", "requests",
            "cached", "credits", "charged")  # fmt: skip
    lines: list[tuple[str, ...]] = [head]
    for name, figures in summary.providers.items():
        rows = figures["rows"]
        lines.append((
            name, *(f"{rows[s]:,}" for s in ("hit", "no_match", "invalid_input", "failed")),
            f"{rows['not_requested']:,}", f"{figures['requests']:,}",
            f"{figures['cache_hits']:,}", f"{figures['credits']:,}",
            f"{charged.get(name, 0):,}",
        ))  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = [
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                  enumerate(zip(line, widths, strict=True)))
        for line in lines
    ]  # fmt: skip
    ours, theirs = summary.credits, sum(charged.values())
    verdict = "they match" if ours == theirs else "MISMATCH"
    text.append(f"credits in the output {ours:,}; charged by the emulators {theirs:,}: {verdict}")
    return "\n".join(text)


def stdout_to_devnull() -> None:
    """Point stdout at /dev/null, so what is still buffered has somewhere to go."""
    try:
        fileno = sys.stdout.fileno()
    except (OSError, ValueError):  # not a real file (captured in tests): nothing to do
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fileno)
    os.close(devnull)
