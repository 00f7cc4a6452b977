"""The ``phone-enrich`` command: parse arguments, call the library, map errors to exits.

Bad usage, config or input prints one ``phone-enrich: error: ...`` line and exits 2;
no traceback. Anything unexpected is a bug: it prints the traceback and exits 70.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, TypeVar

from pipeline.config import Config, load_config
from pipeline.errors import EXIT_INTERNAL, EXIT_STOPPED, Interrupted, PipelineError, UsageError
from pipeline.progress import Progress
from pipeline.run import RunSummary, run
from pipeline.stopping import StopRequest


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise UsageError(message)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _progress_printer(quiet: bool) -> Callable[[Progress], None] | None:
    """On a terminal, one line redrawn in place with a bar; off one (cron), a JSON line
    each time, for log files; nothing with --quiet."""
    if quiet:
        return None
    tty = sys.stderr.isatty()

    def show(progress: Progress) -> None:
        if not tty:
            line = json.dumps({"event": "progress", **progress.as_dict()})
            print(line, file=sys.stderr, flush=True)
            return
        total = progress.rows_total
        share = min(1.0, progress.rows / total) if total else 0.0
        bar = "#" * int(share * 20) + "-" * (20 - int(share * 20))
        line = (
            f"[{bar}] {progress.rows:,}/{total or 0:,} rows | {progress.requests:,} requests"
            f" | {progress.credits:,} credits | {progress.failed:,} failed"
            f" | {_duration(progress.elapsed_s)} elapsed, ETA {_duration(progress.eta_s)}"
        )
        print(f"\r{line}\x1b[K", end="", file=sys.stderr, flush=True)

    return show


def _print_summary(summary: RunSummary) -> None:
    try:
        _summary_lines(summary)
    except BrokenPipeError:  # the reader left (`| head`): the run's exit code still counts
        _stdout_to_devnull()


def _summary_lines(summary: RunSummary) -> None:
    print(f"run {summary.run_id}: {summary.rows:,} rows in {summary.duration_s:.1f}s")
    print(f"  valid phones: {summary.valid:,}   rejected: {summary.rows - summary.valid:,}")
    if summary.reasons:
        reasons = ", ".join(f"{name} {count:,}" for name, count in summary.reasons.items())
        print(f"  reject reasons: {reasons}")
    if summary.consent_dates:
        dates = ", ".join(f"{name} {count:,}" for name, count in summary.consent_dates.items())
        print(f"  consent dates: {dates}")
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
    print(f"  output: {summary.output}")
    print(f"  report: {summary.report}")


Result = TypeVar("Result")
HARD_STOP_S = 9.5
"""After the first SIGINT/SIGTERM, the process ends by this time whatever is still busy."""
SAME_PRESS_S = 0.5
"""A second signal sooner than this after the first is the same stop, not a second one."""


def _stoppable(work: Callable[[StopRequest], Result]) -> Result:
    """Run ``work`` on a thread while this (main) thread handles SIGINT and SIGTERM.

    Python runs signal handlers on the main thread only, between bytecodes; a run's
    main thread would sit inside polars' writer for hours and never get to them. So the
    run goes on a worker thread and the main thread only waits and listens. The first
    signal asks the run to stop (every lane stops sending at once, answers in flight are
    recorded, exit 3); a second one, or the run not ending within ``HARD_STOP_S``, ends
    the process at once (still exit 3: what was recorded stays recorded).
    """
    stop = StopRequest()
    outcome: list[Result] = []
    failure: list[BaseException] = []
    deadline: list[float] = []

    def target() -> None:
        try:
            outcome.append(work(stop))
        except BaseException as exc:
            failure.append(exc)

    def handler(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        now = time.monotonic()
        if stop.requested:
            # One stop can arrive twice (coreutils `timeout` signals the child, then its
            # group): only a Ctrl-C pressed again, a moment later, ends at once.
            if signum == signal.SIGINT and now > deadline[0] - HARD_STOP_S + SAME_PRESS_S:
                _end_now(f"{name} again: stopped at once; answers still in flight are lost")
            return
        deadline.append(now + HARD_STOP_S)
        stop.request(f"stopped by {name}")

    worker = threading.Thread(target=target, name="phone-enrich-run", daemon=True)
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        worker.start()
        while worker.is_alive():
            worker.join(0.1)
            if deadline and time.monotonic() > deadline[0] and worker.is_alive():
                _end_now(f"{stop.reason}: the run did not end within {HARD_STOP_S:g}s; ended")
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    if failure:
        raise failure[0]
    return outcome[0]


def _end_now(message: str) -> NoReturn:
    print(f"\nphone-enrich: {message}", file=sys.stderr, flush=True)
    os._exit(EXIT_STOPPED)  # the kernel releases the lock; the ledger keeps its commits


def _cmd_run(args: argparse.Namespace) -> int:
    from pipeline.inbox import is_inbox, run_inbox

    config = load_config(
        args.config, input_path=args.input, output_path=args.output, max_credits=args.max_credits
    )
    if not is_inbox(config):
        return _run_one(args, config)

    def warn(line: str) -> None:  # a refused file: on stderr, even with --quiet
        print(f"phone-enrich: error: {line}", file=sys.stderr, flush=True)

    result = run_inbox(config, lambda one: _run_one(args, one), warn)
    if not result.files:
        print(f"inbox {config.input.path}: no files")
    if result.refused:
        names = ", ".join(str(r.path) for r in result.refused)
        count = f"{len(result.refused)} of {result.files} files"
        warn(f"inbox {config.input.path}: {count} refused: {names}")
    return result.exit_code


def _run_one(args: argparse.Namespace, config: Config) -> int:
    tty = not args.quiet and sys.stderr.isatty()
    try:
        summary = _stoppable(
            lambda stop: run(
                config,
                config_path=args.config,
                on_progress=_progress_printer(args.quiet),
                no_cache=args.no_cache,
                force=args.force,
                stop=stop,
                max_credits=args.max_credits,
            )
        )
    finally:
        if tty:
            print(file=sys.stderr)  # end the progress line
    if summary.already_done:
        print(
            f"{config.input.path}: run {summary.run_id} already enriched it with this config "
            f"(every row settled): nothing to do. Output: {summary.output}; "
            "--force runs it again."
        )
        return summary.exit_code
    if not args.quiet:
        _print_summary(summary)
    return summary.exit_code


def _cmd_retry(args: argparse.Namespace) -> int:
    from pipeline.run import retry

    if args.max_credits is not None and args.max_credits < 0:
        raise UsageError(f"--max-credits {args.max_credits}: expected a whole number, 0 or more")
    config = load_config(args.config)
    summary = _stoppable(
        lambda stop: retry(
            config,
            run_id=args.run,
            config_path=args.config,
            on_progress=_progress_printer(args.quiet),
            stop=stop,
            max_credits=args.max_credits,
        )
    )
    if not args.quiet:
        _print_summary(summary)
    return summary.exit_code


def _cmd_estimate(args: argparse.Namespace) -> int:
    from pipeline.estimate import estimate

    config = load_config(args.config, input_path=args.input)
    result = estimate(config)
    print(f"estimate for {config.input.path} (no calls made)")
    print(f"  rows: {result.rows:,}   valid phones: {result.valid_phones:,}")
    for name, p in result.providers.items():
        print(
            f"  {name}: {p.rows_sent:,} rows to look up, {p.unique_keys:,} unique keys, "
            f"{p.cached:,} already answered, {p.to_buy:,} to buy in {p.requests:,} requests, "
            f"{p.credits:,} credits, {p.minutes:,.1f} min at the configured rate"
        )
    print(f"  credits: {result.credits:,}   time: {result.minutes:,.1f} min")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from pipeline.status import status_lines

    for line in status_lines(load_config(args.config), args.run):
        print(line)
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    from pipeline.sample import write_sample

    if args.rows < 0:
        raise UsageError(f"--rows {args.rows}: expected a whole number of rows, 0 or more")
    try:
        written = write_sample(Path(args.out), args.rows, seed=args.seed)
    except ValueError as exc:
        raise UsageError(f"--out {args.out}: {exc}") from None
    print(f"wrote {written:,} rows to {args.out}")
    return 0


def _cmd_emulate(args: argparse.Namespace) -> int:
    from pipeline.emulators.command import serve

    return serve(args)


def _cmd_demo(args: argparse.Namespace) -> int:
    from pipeline.demo import DEMO_CONFIG, run_demo

    result = _stoppable(lambda stop: run_demo(on_progress=_progress_printer(args.quiet), stop=stop))
    summary = result.summary
    print(f"demo: enriched {result.sample} with {DEMO_CONFIG} against the local emulators")
    _print_summary(summary)
    print(_provider_table(summary, result.charged))
    return summary.exit_code


def _provider_table(summary: RunSummary, charged: dict[str, int]) -> str:
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="phone-enrich",
        description="Enrich CSV/Parquet files of US/Canada phone numbers, safely and resumably.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = commands.add_parser("run", help="normalize and enrich an input file")
    p.add_argument("config", help="TOML config file")
    p.add_argument("--input", help="input file (overrides input.path)")
    p.add_argument("--output", help="output file, .csv or .parquet (overrides output.path)")
    p.add_argument("--max-credits", type=int, help="credit cap for this run (run.max_credits)")
    p.add_argument(
        "--no-cache", action="store_true", help="buy every lookup again, ignoring earlier runs"
    )
    p.add_argument(
        "--force", action="store_true", help="run even if this job already finished cleanly"
    )
    p.add_argument("--quiet", action="store_true", help="no progress or summary")
    p.set_defaults(handler=_cmd_run)

    p = commands.add_parser("retry", help="re-attempt the lookups that failed in a run")
    p.add_argument("config", help="TOML config file")
    p.add_argument("--run", help="the run to retry (default: this config's latest run)")
    p.add_argument(
        "--max-credits", type=int,
        help="credit cap for the run, replacing the one it has (default: the run's own)",
    )  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress or summary")
    p.set_defaults(handler=_cmd_retry)

    p = commands.add_parser("estimate", help="rows, lookups, requests, credits, time: no calls")
    p.add_argument("config", help="TOML config file")
    p.add_argument("--input", help="input file (overrides input.path)")
    p.set_defaults(handler=_cmd_estimate)

    p = commands.add_parser("status", help="runs of the config's state folder, and their figures")
    p.add_argument("config", help="TOML config file")
    p.add_argument("--run", help="one run in detail (default: the newest runs)")
    p.set_defaults(handler=_cmd_status)

    p = commands.add_parser("sample", help="write a synthetic messy input file")
    p.add_argument("--rows", type=int, required=True, help="number of rows")
    p.add_argument("--out", required=True, help="output file, .csv or .parquet")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.set_defaults(handler=_cmd_sample)

    p = commands.add_parser("emulate", help="serve the local provider emulators until stopped")
    from pipeline.emulators.command import add_arguments as emulate_arguments

    emulate_arguments(p)
    p.set_defaults(handler=_cmd_emulate)

    p = commands.add_parser("demo", help="run configs/demo.toml on sample_data/")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(handler=_cmd_demo)
    return parser


EXIT_BROKEN_PIPE = 141
"""What a shell reports for a command whose reader went away mid-output (128 + SIGPIPE)."""


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null, so what is still buffered has somewhere to go."""
    try:
        fileno = sys.stdout.fileno()
    except (OSError, ValueError):  # not a real file (captured in tests): nothing to do
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fileno)
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``phone-enrich`` and ``python -m pipeline``; returns the exit code."""
    code: int | None = None
    try:
        args = build_parser().parse_args(argv)
        handler: Callable[[argparse.Namespace], int] = args.handler
        code = handler(args)
        sys.stdout.flush()  # a reader that left shows here, while we can still be quiet
        return code
    except BrokenPipeError:
        # `phone-enrich status CONFIG | head -3`: the reader has what it wanted. Quiet,
        # and no second error when Python flushes stdout on its way out.
        _stdout_to_devnull()
        return EXIT_BROKEN_PIPE if code is None else code
    except Interrupted as exc:
        print(f"phone-enrich: {exc}", file=sys.stderr)
        return exc.exit_code
    except PipelineError as exc:
        print(f"phone-enrich: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("phone-enrich: interrupted", file=sys.stderr)
        return EXIT_STOPPED
    except Exception:
        traceback.print_exc()
        print("phone-enrich: internal error (a bug): please report it", file=sys.stderr)
        return EXIT_INTERNAL
