"""Benchmark the adaptive rate of a TDG lane against a hidden limit (emulator in its own
process).

    python bench/bench_tdg_adaptive.py [--seconds 180] [--limit 60 --window-s 10]
                                       [--rpm 600] [--pacer tdg|default]
                                       [--retry-after off|on]

TDG does not publish its rate limit. The emulated reverse phone API accepts
``--limit`` requests per rolling ``--window-s`` (360 a minute by default) and
answers 429 beyond it, without a Retry-After header as TDG documents its 429
(``--retry-after on``: with the limiter's exact wait); the lane is configured at
``--rpm`` (600), well above it, and must find the limit on its own: a cut per round
trip of 429s, a pause that doubles while nothing is answered, a slow creep back on
every answer (the provider's ``pacer_options``; ``--pacer default`` runs the
engine's untuned pacer instead).

From the emulator's own log, per minute since the first request: accepted requests
(anything but a 429) as a ratio of the hidden limit, and 429s as a share of the
requests sent; from the lane, its pacing rate (sampled each second, the minute's
mean) as a ratio of the hidden limit. Targets, after the first minute: every
minute's achieved rate within 10% of the hidden limit (>= 0.90), 429s under 2% of
requests, and the pacing rate itself within 10% of the limit (0.90-1.10). The last
one is what "converged" means: an exact Retry-After lets even a lane paced far
above the limit achieve it, in bursts (send at full speed until a 429, then wait
for the window to free), which the pacing figure shows.

Exit status 1 if a target is missed. Not part of ``make test`` (it takes minutes).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_engine import KEY, emulator  # noqa: E402

from pipeline.engine.engine import Engine  # noqa: E402
from pipeline.engine.pacer import Pacer  # noqa: E402
from pipeline.engine.stops import StopReason  # noqa: E402
from pipeline.provider_config import TdgReversePhoneSettings  # noqa: E402
from pipeline.providers.tdg_reverse_phone import TdgReversePhone  # noqa: E402
from pipeline.store.records import NewRun, Session  # noqa: E402
from pipeline.store.sqlite import SqliteStore  # noqa: E402

PROVIDER = "tdg_reverse_phone"
MINUTE = 60.0


def numbers(count: int) -> list[tuple[str, int]]:
    """Distinct valid US numbers (never the fictional 555-01XX range), as lane items."""
    return [(f"212{2_000_000 + i:07d}", i + 1) for i in range(count)]


def drive(url: str, args: argparse.Namespace) -> tuple[list[float], Pacer]:
    """Run one TDG lane for ``args.seconds``; its pacing rate (req/s) sampled each second."""
    settings = TdgReversePhoneSettings(
        base_url=f"{url}/{PROVIDER}",
        requests_per_minute=args.rpm,
        max_concurrency=args.concurrency,
        max_attempts=20,
        timeout_s=10,
    )
    provider = TdgReversePhone(settings, KEY)
    options = provider.pacer_options() if args.pacer == "tdg" else {}
    pacer = Pacer(settings.requests_per_minute, **options)
    hidden = args.limit / args.window_s
    rates: list[float] = []
    with tempfile.TemporaryDirectory() as state:
        ledger = SqliteStore(Path(state))
        ledger.start(NewRun("bench", "bench", None, "-", "-", None))
        session = Session("bench", 1, {provider.name: provider.params()})
        engine = Engine([provider], {PROVIDER: settings}, ledger, session,
                        pacers={PROVIDER: pacer})  # fmt: skip
        with engine:
            # More than the lane can send in the time: it is never short of work.
            engine.submit(PROVIDER, numbers(int(args.rpm / 60 * args.seconds * 1.2) + 100))
            started = time.monotonic()
            while (elapsed := time.monotonic() - started) < args.seconds:
                time.sleep(1.0)
                rates.append(pacer.rate)
                if not args.quiet and len(rates) % 10 == 0:
                    print(f"  {elapsed:5.0f}s  pacing {pacer.rate / hidden:.3f} of the hidden "
                          f"limit, {pacer.throttled} 429s so far", flush=True)  # fmt: skip
            engine.stop(StopReason.interrupted("the benchmark is over"))
        ledger.close()
    return rates, pacer


def per_minute(log: list[dict[str, Any]], hidden: float) -> list[tuple[float, float, int]]:
    """(accepted / hidden limit, 429 share, requests) per whole minute of the log."""
    arrivals = sorted((e["arrived_mono"], e["status"]) for e in log)
    start = arrivals[0][0]
    minutes: list[tuple[float, float, int]] = []
    m = 0
    while start + (m + 1) * MINUTE <= arrivals[-1][0] + 1.0:
        lo, hi = start + m * MINUTE, start + (m + 1) * MINUTE
        statuses = [s for t, s in arrivals if lo <= t < hi]
        throttled = sum(1 for s in statuses if s == 429)
        accepted = len(statuses) - throttled
        minutes.append((accepted / (hidden * MINUTE), throttled / max(1, len(statuses)),
                        len(statuses)))  # fmt: skip
        m += 1
    return minutes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="how long the lane runs")
    parser.add_argument("--limit", type=int, default=60, help="hidden limit: requests per window")
    parser.add_argument(
        "--window-s", type=float, default=10.0, help="hidden limit's rolling window"
    )
    parser.add_argument("--rpm", type=float, default=600.0, help="the lane's requests_per_minute")
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--jitter-ms", type=float, default=100.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--pacer", choices=["tdg", "default"], default="tdg")
    parser.add_argument(
        "--retry-after",
        choices=["off", "on"],
        default="off",
        help="whether the emulator's 429s say Retry-After (TDG documents none: off)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress every 10 s")
    args = parser.parse_args()
    hidden = args.limit / args.window_s
    if hidden * 60 >= args.rpm:
        parser.error("the hidden limit must be below --rpm (that is the point)")
    knobs = ["--latency-ms", str(args.latency_ms), "--latency-jitter-ms", str(args.jitter_ms),
             "--rate-limit", str(args.limit), "--rate-window-s", str(args.window_s)]  # fmt: skip
    knobs += ["--retry-after", "never" if args.retry_after == "off" else "always"]
    print(f"TDG adaptive rate: hidden limit {args.limit} per rolling {args.window_s:g} s "
          f"({hidden * 60:g}/min), lane configured at {args.rpm:g}/min "
          f"({args.rpm / 60 / hidden:.2f}x the limit), latency {args.latency_ms:g} "
          f"+/- {args.jitter_ms:g} ms, {args.concurrency} in flight, pacer {args.pacer}, "
          f"Retry-After {args.retry_after}, "
          f"{args.seconds:g} s")  # fmt: skip
    with emulator(*knobs) as url:
        rates, pacer = drive(url, args)
        time.sleep(0.5)  # the last answers are logged
        state = httpx.get(f"{url}/_admin/state/{PROVIDER}", timeout=30).json()
    log = state["requests"]
    minutes = per_minute(log, hidden)
    total = len(log)
    throttled = sum(1 for e in log if e["status"] == 429)
    print(
        f"  {total} requests, {throttled} answered 429 ({throttled / max(1, total):.2%}); "
        f"most accepted in one window: {state['totals']['max_in_window']}/{args.limit}"
    )
    ok = True
    for m, (achieved, share, count) in enumerate(minutes):
        samples = rates[int(m * MINUTE) : int((m + 1) * MINUTE)]
        pacing = sum(samples) / len(samples) / hidden if samples else float("nan")
        verdict = ""
        if m >= 1:
            good = achieved >= 0.90 and share < 0.02 and 0.90 <= pacing <= 1.10
            ok = ok and good
            verdict = "  PASS" if good else "  FAIL"
        print(
            f"  minute {m + 1}: achieved {achieved:.3f} of the hidden limit, "
            f"429s {share:.2%} of {count} requests, lane's pacing rate {pacing:.3f} (mean)"
            f"{verdict}"
        )
    if len(minutes) < 2:
        print("  not enough minutes to judge: run with --seconds 120 or more")
        ok = False
    tail = rates[-30:]
    print(
        f"  lane's pacing rate, mean of the last 30 s: {sum(tail) / len(tail) / hidden:.3f} of "
        f"the hidden limit (ceiling {pacer.max_rate / hidden:.3f})"
    )
    print(
        "  targets after the first minute: achieved >= 0.90, 429s < 2%, pacing 0.90-1.10: "
        f"{'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
