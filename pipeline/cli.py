"""The ``phone-enrich`` command: parse arguments, call the library, map errors to exits.

Bad usage, config or input prints one ``phone-enrich: error: ...`` line and exits 2;
no traceback. Anything unexpected is a bug: it prints the traceback and exits 70.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import shlex
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import allocators
from pipeline.cli_help import help_of, main_epilog, package_version
from pipeline.errors import (
    EXIT_INTERNAL,
    EXIT_STOPPED,
    EXIT_USAGE,
    Interrupted,
    PipelineError,
    UsageError,
)

# The rest of the program (polars, pydantic: 0.2 s) is imported by the command that
# needs it, so that `run` starts reading its input first (see _sniff_early).
if TYPE_CHECKING:
    from pipeline.config import Config


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise UsageError(message)


def _sniff_early(args: argparse.Namespace) -> None:
    """Start the pass over the input file that fingerprints it (the config's input, as
    the TOML has it) on a thread, before the imports it would otherwise wait for; the
    run takes it up if nothing differs (:func:`~pipeline.io.encoding.sniff_soon`).
    Anything unusual (no such file, a folder, Parquet, a config that does not parse) is
    left to the run to find and report."""
    import tomllib

    try:
        with open(args.config, "rb") as fh:
            given = tomllib.load(fh).get("input", {})
        path = Path(args.input or given["path"])
        # (a named encoding is spelled as the config resolves it: only auto is sure to match)
        errors = given.get("encoding_errors", "strict")
        if given.get("encoding", "auto") != "auto" or errors not in ("strict", "replace"):
            return
        with open(path, "rb") as fh:
            if path.suffix.lower() == ".parquet" or fh.read(4) == b"PAR1":
                return
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return
    from pipeline.io.encoding import sniff_soon

    sniff_soon(path, "auto", errors)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """No garbage collection while the program's modules are imported: they make
    objects that live to the end, yet the 0.2 s of imports set off a hundred collections
    that look through them again and again (15-20 ms). Frozen once imported, they are
    not looked at again (the first time only: a process that runs more, such as the
    tests, freezes nothing else)."""
    was, fresh = gc.isenabled(), "pipeline.run" not in sys.modules
    gc.disable()
    try:
        yield
    finally:
        if fresh:
            gc.freeze()
        if was:
            gc.enable()


def _cmd_run(args: argparse.Namespace) -> int:
    _sniff_early(args)
    with _no_gc():
        from pipeline import console, run, run_lines, stop_signals  # noqa: F401  (_run_one's)
        from pipeline.config import load_config
        from pipeline.inbox import is_inbox, run_inbox

    config = load_config(
        args.config, input_path=args.input, output_path=args.output, max_credits=args.max_credits
    )
    if not is_inbox(config):
        return _run_one(args, config, _retry_command(args))

    def warn(line: str) -> None:  # a refused file: on stderr, even with --quiet
        print(f"phone-enrich: error: {line}", file=sys.stderr, flush=True)

    # A file of an inbox is retried by running the inbox again: its failures are bought
    # again (a failed answer is never reused), the rest comes from the cache.
    again = f"phone-enrich run {shlex.quote(args.config)}"
    result = run_inbox(config, lambda one: _run_one(args, one, again), warn)
    if not result.files:
        print(f"inbox {config.input.path}: no files")
    if result.refused:
        names = ", ".join(str(r.path) for r in result.refused)
        count = f"{len(result.refused)} of {result.files} files"
        warn(f"inbox {config.input.path}: {count} refused: {names}")
    return result.exit_code


def _retry_command(args: argparse.Namespace) -> str:
    """``retry`` with the same config and the same --input/--output as this run."""
    given = (("--input", args.input), ("--output", args.output))
    extra = "".join(f" {flag} {shlex.quote(value)}" for flag, value in given if value)
    return f"phone-enrich retry {shlex.quote(args.config)}{extra}"


def _run_one(args: argparse.Namespace, config: Config, retry_with: str) -> int:
    from pipeline.console import notice_printer, print_summary, progress_printer
    from pipeline.run import run
    from pipeline.run_lines import event_printer
    from pipeline.stop_signals import stoppable

    tty = not args.quiet and sys.stderr.isatty()
    try:
        summary = stoppable(
            lambda stop: run(
                config,
                config_path=args.config,
                on_progress=progress_printer(args.quiet),
                no_cache=args.no_cache,
                force=args.force,
                stop=stop,
                max_credits=args.max_credits,
                on_event=event_printer(args.quiet),
                on_notice=notice_printer(args.quiet),
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
    summary.retry_with = retry_with
    if not args.quiet:
        print_summary(summary)
    return summary.exit_code


def _cmd_retry(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.console import notice_printer, print_summary, progress_printer
    from pipeline.run import retry
    from pipeline.run_lines import event_printer
    from pipeline.stop_signals import stoppable

    if args.max_credits is not None and args.max_credits < 0:
        raise UsageError(f"--max-credits {args.max_credits}: expected a whole number, 0 or more")
    config = load_config(args.config, input_path=args.input, output_path=args.output)
    summary = stoppable(
        lambda stop: retry(
            config,
            run_id=args.run,
            config_path=args.config,
            on_progress=progress_printer(args.quiet),
            stop=stop,
            max_credits=args.max_credits,
            on_event=event_printer(args.quiet),
            on_notice=notice_printer(args.quiet),
        )
    )
    if summary.nothing_failed:
        print(
            f"run {summary.run_id}: no lookup failed, nothing to retry; its output "
            f"({summary.output}) and report are left as they are"
        )
        return summary.exit_code
    summary.retry_with = _retry_command(args)
    if not args.quiet:
        print_summary(summary)
    return summary.exit_code


def _cmd_estimate(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.console import notice_printer
    from pipeline.estimate import estimate

    config = load_config(args.config, input_path=args.input)
    result = estimate(config, notice_printer(False))
    print(f"estimate for {config.input.path} (no calls made)")
    print(f"  rows: {result.rows:,}   valid phones: {result.valid_phones:,}")
    for name, p in result.providers.items():
        print(
            f"  {name}: {p.rows_sent:,} rows to look up, {p.unique_keys:,} unique keys, "
            f"{p.cached:,} already answered, {p.to_buy:,} to buy in {p.requests:,} requests, "
            f"{p.credits:,} credits, {p.minutes:,.1f} min at the configured rate"
        )
        if p.key_missing:
            print(
                f"    ({p.key_missing} is not set: answers already bought with the key are "
                "not counted, every key is priced as to buy)"
            )
    print(f"  credits: {result.credits:,}   time: {result.minutes:,.1f} min")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.console import notice_printer
    from pipeline.status import status_lines

    for line in status_lines(load_config(args.config), args.run, on_notice=notice_printer(False)):
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


def _cmd_init(args: argparse.Namespace) -> int:
    from pipeline.init_config import parse_providers, write_config_file

    providers = parse_providers(args.providers)
    write_config_file(Path(args.path), providers)
    print(f"wrote {args.path} ({', '.join(providers) or 'no provider: normalize only'})")
    print("  next: set input.path and output.path in it, export each provider's api_key_env,")
    print(f"  then `phone-enrich estimate {args.path}` and `phone-enrich run {args.path}`")
    return 0


def _cmd_emulate(args: argparse.Namespace) -> int:
    from pipeline.emulators.command import serve

    return serve(args)


def _cmd_demo(args: argparse.Namespace) -> int:
    from pipeline.console import print_summary, progress_printer, provider_table
    from pipeline.demo import DEMO_CONFIG, run_demo
    from pipeline.stop_signals import stoppable

    result = stoppable(lambda stop: run_demo(on_progress=progress_printer(args.quiet), stop=stop))
    summary = result.summary
    print(f"demo: enriched {result.sample} with {DEMO_CONFIG} against the local emulators")
    print_summary(summary)
    print(provider_table(summary, result.charged))
    return summary.exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="phone-enrich",
        description="Enrich CSV/Parquet files of US/Canada phone numbers, safely and resumably.",
        epilog=main_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = commands.add_parser(
        "init", help="write a commented config to start from", **help_of("init")
    )
    p.add_argument(
        "path",
        nargs="?",
        default="phone-enrich.toml",
        help="where to write it (default phone-enrich.toml; never overwritten)",
    )
    p.add_argument("--providers", help="comma-separated providers to configure (default: none)")
    p.set_defaults(handler=_cmd_init)

    p = commands.add_parser("run", help="normalize and enrich an input file", **help_of("run"))
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

    p = commands.add_parser(
        "retry", help="re-attempt the lookups that failed in a run", **help_of("retry")
    )
    p.add_argument("config", help="TOML config file")
    p.add_argument("--run", help="the run to retry (default: this config's latest run)")
    p.add_argument("--input", help="input file (overrides input.path), as the run was given")
    p.add_argument("--output", help="output file (overrides output.path), as the run was given")
    p.add_argument(
        "--max-credits", type=int,
        help="credit cap for the run, replacing the one it has (default: the run's own)",
    )  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress or summary")
    p.set_defaults(handler=_cmd_retry)

    p = commands.add_parser(
        "estimate", help="rows, lookups, requests, credits, time: no calls", **help_of("estimate")
    )
    p.add_argument("config", help="TOML config file")
    p.add_argument("--input", help="input file (overrides input.path)")
    p.set_defaults(handler=_cmd_estimate)

    p = commands.add_parser(
        "status", help="runs of the config's state folder, and their figures", **help_of("status")
    )
    p.add_argument("config", help="TOML config file")
    p.add_argument("--run", help="one run in detail (default: the newest runs)")
    p.set_defaults(handler=_cmd_status)

    p = commands.add_parser(
        "sample", help="write a synthetic messy input file", **help_of("sample")
    )
    p.add_argument("--rows", type=int, required=True, help="number of rows")
    p.add_argument("--out", required=True, help="output file, .csv or .parquet")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.set_defaults(handler=_cmd_sample)

    p = commands.add_parser(
        "emulate", help="serve the local provider emulators until stopped", **help_of("emulate")
    )
    from pipeline.emulators.command import add_arguments as emulate_arguments

    emulate_arguments(p)
    p.set_defaults(handler=_cmd_emulate)

    p = commands.add_parser("demo", help="run configs/demo.toml on sample_data/", **help_of("demo"))
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(handler=_cmd_demo)
    return parser


EXIT_BROKEN_PIPE = 141
"""What a shell reports for a command whose reader went away mid-output (128 + SIGPIPE)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``phone-enrich`` and ``python -m pipeline``; returns the exit code."""
    code: int | None = None
    allocators.configure()  # before polars is imported
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as done:  # --help, --version: printed, nothing else to do
            return done.code if isinstance(done.code, int) else EXIT_USAGE
        handler: Callable[[argparse.Namespace], int] = args.handler
        code = handler(args)
        sys.stdout.flush()  # a reader that left shows here, while we can still be quiet
        return code
    except BrokenPipeError:
        # `phone-enrich status CONFIG | head -3`: the reader has what it wanted. Quiet,
        # and no second error when Python flushes stdout on its way out.
        from pipeline.console import stdout_to_devnull

        stdout_to_devnull()
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
