"""Our pacer beside aiolimiter's AsyncLimiter, against the same rolling-window emulator.

    python bench/bench_pacer.py [--seconds 30] [--rounds 1] [--latency-ms 400]

The emulator (its own process) accepts 100 requests per rolling 6 s and answers in
``--latency-ms``; every variant is configured for exactly that limit (1,000 a minute)
and drives the same TCPA requests from 16 workers for ``--seconds`` after a 6 s
warm-up. Variants, in alternating order each round:

  pacer        pipeline.engine.pacer.Pacer, as a lane uses it (even spacing at 99%, the
               rolling guard, a 429 slows it and honours Retry-After);
  aiolimiter   AsyncLimiter(100, 6): "100 per 6 s" as its documentation writes it (a
               leaky bucket of 100: it lets a burst of 100 through, then drips);
  aiolimiter-1 AsyncLimiter(1, 0.06): the same rate with a bucket of one, i.e. evenly
               spaced; a worker that gets a 429 waits its Retry-After.

From the emulator's own log: accepted requests per 6 s window (stepped every 0.25 s,
after the warm-up), mean and minimum as a share of the 100 allowed ("fill"), and the
429s. Target for the pacer (what the engine relies on): fill >= 0.98, no 429.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
from aiolimiter import AsyncLimiter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_engine import KEY, emulator, keys  # noqa: E402

from pipeline.engine.pacer import Pacer  # noqa: E402
from pipeline.provider_config import TcpaAuthoritySettings  # noqa: E402
from pipeline.providers.tcpa_authority import TcpaAuthority  # noqa: E402

LIMIT = 100
WINDOW_S = 6.0
RPM = LIMIT * 60 / WINDOW_S
WORKERS = 16


@dataclass
class Gate:
    """What a worker does before a request and after its answer."""

    acquire: Callable[[], Awaitable[None]]
    answered: Callable[[int, float | None], Awaitable[None]]


def pacer_gate() -> Gate:
    pacer = Pacer(RPM)

    async def answered(status: int, retry_after: float | None) -> None:
        pacer.release(answered=status != 429)
        if status == 429:
            pacer.throttle(retry_after)

    return Gate(pacer.acquire, answered)


def limiter_gate(max_rate: float, period: float) -> Gate:
    limiter = AsyncLimiter(max_rate, period)

    async def answered(status: int, retry_after: float | None) -> None:
        if status == 429:  # it knows nothing of 429s: the worker waits as told
            await anyio.sleep(retry_after or 1.0)

    return Gate(limiter.acquire, answered)


VARIANTS: dict[str, Callable[[], Gate]] = {
    "pacer": pacer_gate,
    "aiolimiter": lambda: limiter_gate(LIMIT, WINDOW_S),
    "aiolimiter-1": lambda: limiter_gate(1, WINDOW_S / LIMIT),
}


async def drive(url: str, gate: Gate, seconds: float) -> None:
    tcpa = TcpaAuthoritySettings(
        base_url=f"{url}/tcpa_authority/v1.5", requests_per_minute=RPM, batch_size=1
    )
    provider = TcpaAuthority(tcpa, KEY, has_consent_dates=True)
    numbers = iter(keys(10**6))
    end = time.monotonic() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        while time.monotonic() < end:
            await gate.acquire()
            key, _ = next(numbers)
            request = provider.request([key], uuid.uuid4().hex, [None])
            response = await client.send(request)
            retry = response.headers.get("Retry-After")
            await gate.answered(response.status_code, float(retry) if retry else None)

    limits = httpx.Limits(max_connections=WORKERS, max_keepalive_connections=WORKERS)
    async with (
        httpx.AsyncClient(limits=limits, timeout=30) as client,
        anyio.create_task_group() as tg,
    ):
        for _ in range(WORKERS):
            tg.start_soon(worker, client)


def measure(url: str, variant: str, seconds: float) -> tuple[float, float, int, int]:
    """(mean fill, min fill, most in a window, 429s) of one variant's run."""
    httpx.post(url + "/_admin/reset", timeout=30).raise_for_status()
    anyio.run(drive, url, VARIANTS[variant](), seconds + WINDOW_S)
    log = httpx.get(url + "/_admin/state/tcpa_authority", timeout=60).json()["requests"]
    accepted = sorted(e["arrived_mono"] for e in log if e["status"] != 429)
    throttled = sum(1 for e in log if e["status"] == 429)
    counts, low, high = [], 0, 0
    t = accepted[0] + WINDOW_S  # after one window of warm-up
    while t + WINDOW_S <= accepted[-1]:
        while accepted[low] <= t:
            low += 1
        while high < len(accepted) and accepted[high] <= t + WINDOW_S:
            high += 1
        counts.append(high - low)
        t += 0.25
    return statistics.mean(counts) / LIMIT, min(counts) / LIMIT, max(counts), throttled


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--latency-ms", type=int, default=400)
    args = parser.parse_args()
    print(
        f"pacer vs aiolimiter: emulator limit {LIMIT} per rolling {WINDOW_S:g} s, "
        f"{args.latency_ms} ms latency, {WORKERS} workers, {args.seconds:g} s measured "
        f"after {WINDOW_S:g} s, {args.rounds} round(s) in alternating order"
    )
    results: dict[str, list[tuple[float, float, int, int]]] = {v: [] for v in VARIANTS}
    knobs = ["--latency-ms", str(args.latency_ms), "--rate-limit", str(LIMIT),
             "--rate-window-s", str(WINDOW_S), "--retry-after", "always"]  # fmt: skip
    with emulator(*knobs) as url:
        for number in range(args.rounds):
            order = list(VARIANTS) if number % 2 == 0 else list(reversed(VARIANTS))
            for variant in order:
                results[variant].append(measure(url, variant, args.seconds))
    ok = True
    for variant, runs in results.items():
        mean = statistics.median(r[0] for r in runs)
        low = min(r[1] for r in runs)
        top = max(r[2] for r in runs)
        throttled = max(r[3] for r in runs)
        verdict = ""
        if variant == "pacer":
            passed = mean >= 0.98 and throttled == 0 and top <= LIMIT
            ok = passed
            verdict = "  PASS" if passed else "  FAIL"
        print(
            f"  {variant:13} fill mean {mean:.3f}, min {low:.3f}, most in a window "
            f"{top}/{LIMIT}, 429s {throttled}{verdict}"
        )
    print(f"  target for the pacer: fill >= 0.98, no 429: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
