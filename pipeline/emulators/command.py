"""``phone-enrich emulate``: serve every provider emulator until SIGINT/SIGTERM.

Knobs given on the command line apply to every provider. ``--key KEY`` adds an API
key with unlimited credits, ``--key KEY=N`` one with N credits; without ``--key``
the only key is ``emulator-key``.
"""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from pipeline.emulators.state import ProviderKnobs
from pipeline.errors import UsageError

DEFAULT_PORT = 8787
RETRY_AFTER: dict[str, bool | None] = {"documented": None, "always": True, "never": False}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = ProviderKnobs()
    options: list[tuple[str, type, object, str]] = [
        ("--latency-ms", float, d.latency_ms, "average response time in ms"),
        ("--latency-jitter-ms", float, d.latency_jitter_ms, "uniform +/- jitter on the latency"),
        ("--rate-limit", int, d.rate_limit, "accepted requests per rolling window (0: unlimited)"),
        ("--rate-window-s", float, d.rate_window_s, "the rolling window in seconds"),
        ("--fail-5xx", float, d.fail_5xx, "probability of a 5xx per request"),
        ("--fail-429", float, d.fail_429, "probability of a 429 per request"),
        ("--timeouts", float, d.timeouts, "probability of a hang, then a dropped connection"),
        ("--malformed", float, d.malformed, "probability of a garbled 200 body"),
        ("--hang-s", float, d.hang_s, "how long a timeout fault hangs, in seconds"),
        ("--seed", int, d.seed, "seed of the random faults"),
    ]
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; 0: any free)",
    )
    for flag, kind, default, text in options:
        parser.add_argument(flag, type=kind, default=default, help=f"{text} (default {default})")
    parser.add_argument(
        "--retry-after",
        choices=list(RETRY_AFTER),
        default="documented",
        help="whether 429s carry a Retry-After header (default: as each provider "
        "documents; TDG's do not)",
    )
    parser.add_argument(
        "--key",
        action="append",
        metavar="KEY[=CREDITS]",
        help="an accepted API key, optionally with a credit balance (repeatable; "
        "default: emulator-key, unlimited)",
    )


def _keys(values: list[str] | None) -> dict[str, int | None]:
    if not values:
        return dict(ProviderKnobs().keys)
    keys: dict[str, int | None] = {}
    for value in values:
        key, sep, credits = value.rpartition("=")
        if sep and credits.isdigit() and key:
            keys[key] = int(credits)
        else:
            keys[value] = None
    return keys


def knobs_from_args(args: argparse.Namespace) -> ProviderKnobs:
    for name in ("fail_5xx", "fail_429", "timeouts", "malformed"):
        p = getattr(args, name)
        if not 0.0 <= p <= 1.0:
            raise UsageError(f"--{name.replace('_', '-')} {p}: expected a probability 0..1")
    if args.rate_limit is not None and args.rate_limit < 0:
        raise UsageError(f"--rate-limit {args.rate_limit}: expected 0 (unlimited) or more")
    if args.rate_window_s <= 0:
        raise UsageError(f"--rate-window-s {args.rate_window_s}: expected more than 0")
    return ProviderKnobs(
        latency_ms=max(0.0, args.latency_ms),
        latency_jitter_ms=max(0.0, args.latency_jitter_ms),
        rate_limit=args.rate_limit or None,
        rate_window_s=args.rate_window_s,
        retry_after_header=RETRY_AFTER[args.retry_after],
        fail_5xx=args.fail_5xx,
        fail_429=args.fail_429,
        timeouts=args.timeouts,
        malformed=args.malformed,
        hang_s=max(0.0, args.hang_s),
        seed=args.seed,
        keys=_keys(args.key),
    )


def serve(args: argparse.Namespace) -> int:
    from pipeline.emulators.server import APPS, Emulator

    knobs = {name: knobs_from_args(args) for name in APPS}  # one mutable copy each
    emulator = Emulator(knobs, port=args.port)
    try:
        emulator.start()
    except OSError as exc:
        raise UsageError(
            f"--port {args.port}: cannot listen on 127.0.0.1: {exc.strerror}"
        ) from None
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        bases = "  ".join(f"{name}={emulator.base_url(name)}" for name in emulator.providers)
        print(f"emulating on {emulator.url}  {bases}", flush=True)
        while not stop.wait(0.2):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        emulator.stop()
    return 0
