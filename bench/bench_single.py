"""Benchmark the single-number providers (one lookup per request) against the emulator.

    python bench/bench_single.py [rate|overhead|all] [--provider NAME ...] [--in-process]

The emulator runs in its own process (``phone-enrich emulate``), as in
bench_engine.py, so that "requests/s per process" is the pipeline's process alone;
``--in-process`` serves it from this process instead (the Emulator class), where it
takes the GIL from the engine it measures (on two cores: 400-500/s, not 700-800), and
the CPU figures below include the emulator's.
Lookups are made from synthetic input rows by the provider's own ``plan()`` and go
through the engine API (a lane and its ledger), as a run sends them.

rate      300 ms latency; the emulator allows exactly the lane's configured rate
          (``--rpm``, 3,000 a minute by default) over a rolling 6 s window
          (rate_limit = rpm / 10), so a burst shows as a 429. Defaults only: no
          max_concurrency, the lane sizes what it keeps in flight from the latency
          it measures. From the emulator's own arrival log, after one window of
          warm-up: accepted requests per 6 s window (stepped every 0.25 s), mean and
          minimum, as a ratio of the limit (target mean >= 0.98), the most in one
          window (never above the limit), the 429s (target 0) and the peak in
          flight. Then the first provider at 30 ms latency: its peak in flight must
          stay within rate x latency x 2 + 2.
overhead  zero latency, no limit, 16 in flight: requests/s through the engine (lane +
          ledger) (target >= 400), and the baseline measured in the same run: the
          same requests (the provider's own ``request()``) sent by a bare httpx loop
          with the same concurrency, no pacer, no ledger. Rounds alternate the two;
          medians are reported, with the ratio engine / baseline.

Adding a provider is one entry in SINGLES. A provider whose module or emulator is
not there yet is skipped with a note. Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_engine import emulator as emulator_process  # noqa: E402

from pipeline.config import parse_config  # noqa: E402
from pipeline.emulators.server import APPS, Emulator  # noqa: E402
from pipeline.emulators.state import ProviderKnobs  # noqa: E402
from pipeline.engine.engine import Engine  # noqa: E402
from pipeline.engine.lane import Lookup  # noqa: E402
from pipeline.ledger import Ledger  # noqa: E402
from pipeline.normalize import normalize_phones  # noqa: E402
from pipeline.provider_config import ProviderSettings  # noqa: E402
from pipeline.providers import Provider, build_providers  # noqa: E402
from pipeline.providers.base import KEY, carried  # noqa: E402
from pipeline.trace import TRACE_ID_COLUMN  # noqa: E402

EMULATOR_KEY = "emulator-key"
WINDOW_S = 6.0
LATENCY_MS = 300
LATENCY_S = LATENCY_MS / 1000
ROUND_CONCURRENCY = 16

Rows = Callable[[int, int], dict[str, list[str]]]
"""(count, offset) -> input columns for that many rows, each needing one lookup."""


def phones(count: int, offset: int) -> list[str]:
    """Distinct valid NANP numbers (exchanges 300-999 but never 555 or N11)."""
    exchanges = [e for e in range(300, 1000) if e != 555 and e % 100 != 11]
    areas = ("212", "415", "312", "617", "206", "303", "404", "512")
    out = []
    for i in range(offset, offset + count):
        line, rest = i % 10_000, i // 10_000
        exchange, area = exchanges[rest % len(exchanges)], areas[rest // len(exchanges) % 8]
        out.append(f"({area}) {exchange}-{line:04d}")
    return out


def phone_rows(count: int, offset: int) -> dict[str, list[str]]:
    return {"phone": phones(count, offset)}


def contact_rows(count: int, offset: int) -> dict[str, list[str]]:
    """No phone; half name + company, half email alone."""
    ids = range(offset, offset + count)
    return {
        "phone": [""] * count,
        "first_name": [f"Ada{i}" if i % 2 else "" for i in ids],
        "last_name": ["Lovelace" if i % 2 else "" for i in ids],
        "company": [f"Engines {i % 997}" if i % 2 else "" for i in ids],
        "email": ["" if i % 2 else f"lead{i}@firm{i % 991}.com" for i in ids],
    }


def identity_rows(count: int, offset: int) -> dict[str, list[str]]:
    """A phone and a name (TDG ID verify reads same-named columns when none is mapped)."""
    return {
        "phone": phones(count, offset),
        "FName": [f"Ada{i}" for i in range(offset, offset + count)],
        "LName": ["Lovelace"] * count,
    }


@dataclass(frozen=True)
class Single:
    name: str
    """The provider's module, config section and emulator name."""
    rows: Rows
    settings: dict[str, Any] = field(default_factory=dict)
    """Provider settings besides base_url, the key, the rate and the concurrency."""


SINGLES = [
    Single("checkthatphone", phone_rows),
    Single("phone_enrichment", contact_rows),
    Single("tdg_reverse_phone", phone_rows),
    Single("tdg_id_verify", identity_rows),
]


def available(wanted: list[str] | None) -> list[Single]:
    out = []
    for single in SINGLES:
        if wanted and single.name not in wanted:
            continue
        if importlib.util.find_spec(f"pipeline.providers.{single.name}") is None:
            print(f"{single.name}: skipped, no provider module yet")
        elif single.name not in APPS:
            print(f"{single.name}: skipped, no emulator registered yet")
        else:
            out.append(single)
    return out


# -- the emulator, in its own process ------------------------------------------------------


IN_PROCESS = False
"""Serve the emulator from this process (``--in-process``)."""


@contextmanager
def emulator(latency_ms: int, rate_limit: int | None, window_s: float = 60.0) -> Iterator[str]:
    """The emulator, every provider with these knobs; yields its URL."""
    if IN_PROCESS:
        knobs = {
            name: ProviderKnobs(
                latency_ms=latency_ms, rate_limit=rate_limit, rate_window_s=window_s
            )
            for name in APPS
        }
        with Emulator(knobs) as served:
            yield served.url
        return
    limit = "0" if rate_limit is None else str(rate_limit)
    with emulator_process(
        "--latency-ms", str(latency_ms), "--rate-limit", limit, "--rate-window-s", str(window_s)
    ) as url:
        yield url


def admin_log(url: str, name: str) -> list[dict[str, Any]]:
    state = httpx.get(f"{url}/_admin/state/{name}", timeout=60).json()
    log: list[dict[str, Any]] = state["requests"]
    return log


def check_answered(log: list[dict[str, Any]], name: str, expected: int) -> None:
    """Every lookup was sent once and answered (no 5xx, no dropped connection)."""
    statuses = [e["status"] for e in log if e["status"] != 429]
    broken = sum(1 for status in statuses if status is None or status >= 500)
    if len(statuses) != expected or broken:
        raise RuntimeError(f"{name}: {len(statuses)} requests for {expected}, {broken} failed")


def reset(url: str) -> None:
    httpx.post(url + "/_admin/reset", timeout=30).raise_for_status()


# -- the provider and its lookups -----------------------------------------------------------


def provider_for(single: Single, url: str, **settings: Any) -> tuple[Provider, ProviderSettings]:
    """The provider as a run builds it, pointed at the emulator."""
    section = {
        "base_url": f"{url}/{single.name}{APPS[single.name]().base_path}",
        "api_key_env": "BENCH_SINGLE_KEY",
        "max_attempts": 1,  # a failure would show as a missing answer, not hide in a retry
        **single.settings,
        **settings,
    }
    os.environ["BENCH_SINGLE_KEY"] = EMULATOR_KEY
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config(
            {
                "input": {"path": str(Path(tmp) / "in.csv"), "phone_column": "phone"},
                "output": {"path": str(Path(tmp) / "out.csv")},
                "run": {"state_dir": str(Path(tmp) / "state")},
                "providers": {single.name: section},
            },
            "bench",
        )
    (provider,) = build_providers(config)
    return provider, config.providers.enabled()[single.name]


def lookups(single: Single, provider: Provider, count: int, offset: int) -> list[Lookup]:
    """(key, row, carry) for ``count`` synthetic rows, by the provider's own plan()."""
    frame = pl.DataFrame(single.rows(count, offset)).with_columns(
        pl.Series(TRACE_ID_COLUMN, [f"bench-{i:09d}" for i in range(offset, offset + count)])
    )
    planned = provider.plan(normalize_phones(frame.lazy(), "phone")).collect()
    firsts = (
        planned.select(KEY, carried(planned))
        .filter(pl.col(KEY).is_not_null())
        .unique(KEY, keep="first", maintain_order=True)
        .rows()
    )
    assert len(firsts) == count, f"{single.name}: {len(firsts)} lookups from {count} rows"
    return [(key, row, carried) for row, (key, carried) in enumerate(firsts, offset)]


PEAK_IN_FLIGHT: list[int] = []
"""The most requests the lane of each drive_engine call held at once, in call order."""


def drive_engine(provider: Provider, settings: ProviderSettings, items: list[Lookup]) -> float:
    """Send ``items`` through the provider's lane; seconds until every answer is committed."""
    with tempfile.TemporaryDirectory() as state:
        ledger = Ledger(Path(state))
        ledger.start(
            "bench", "bench", config_path=None, input_path="-", output_path="-", cache_cutoff=None
        )
        ledger.set_params(provider.name, provider.params())
        started = time.perf_counter()
        with Engine([provider], {provider.name: settings}, ledger, "bench", 1) as engine:
            ticket = engine.submit(provider.name, items)
            engine.close_input()
            ticket.future.result()
            PEAK_IN_FLIGHT.append(engine.lanes[provider.name].in_flight.peak)
        elapsed = time.perf_counter() - started
        ledger.close()
    return elapsed


# -- rate: 300 ms latency, the emulator limited at exactly the configured rate -------------


def window_counts(arrivals: list[float]) -> list[int]:
    """Requests per WINDOW_S, stepped every 0.25 s, after one window of warm-up."""
    counts, low, high = [], 0, 0
    t, end = arrivals[0] + WINDOW_S, arrivals[-1]
    while t + WINDOW_S <= end:
        while arrivals[low] <= t:
            low += 1
        while high < len(arrivals) and arrivals[high] <= t + WINDOW_S:
            high += 1
        counts.append(high - low)
        t += 0.25
    return counts


def measure_rate(
    single: Single,
    url: str,
    rpm: int,
    seconds: float,
    concurrency: int | None,
    latency_s: float = LATENCY_S,
) -> tuple[float, float, int, int, float]:
    """(mean, min) per-window ratio of the limit, the most in a window, 429s, seconds."""
    reset(url)
    limit = round(rpm * WINDOW_S / 60)
    extra = {} if concurrency is None else {"max_concurrency": concurrency}
    provider, settings = provider_for(single, url, requests_per_minute=rpm, timeout_s=10, **extra)
    rate = min(rpm / 60, settings.max_concurrency / latency_s)  # what it can reach
    count = int((seconds + WINDOW_S) * rate)
    elapsed = drive_engine(provider, settings, lookups(single, provider, count, 0))
    log = admin_log(url, single.name)
    check_answered(log, single.name, count)
    arrivals = sorted(e["arrived_mono"] for e in log if e["status"] != 429)
    throttled = sum(1 for e in log if e["status"] == 429)
    counts = window_counts(arrivals)
    return sum(counts) / len(counts) / limit, min(counts) / limit, max(counts), throttled, elapsed


def bench_rate(singles: list[Single], rpm: int, seconds: float) -> bool:
    limit = round(rpm * WINDOW_S / 60)
    rate = rpm / 60
    print(
        f"rate: {LATENCY_MS} ms latency, emulator limit {limit} per {WINDOW_S:g} s = "
        f"requests_per_minute {rpm:,} ({rate:g}/s; {rate * LATENCY_S:g} in flight "
        f"on average), {seconds:g} s measured after {WINDOW_S:g} s warm-up, defaults only"
    )
    ok = True
    with emulator(LATENCY_MS, limit, WINDOW_S) as url:
        for single in singles:
            mean, low, top, throttled, elapsed = measure_rate(single, url, rpm, seconds, None)
            passed = mean >= 0.98 and throttled == 0 and top <= limit
            ok = ok and passed
            print(
                f"  {single.name}: achieved / configured rate mean {mean:.4f}, min {low:.4f}, "
                f"most in a window {top}/{limit}; 429s: {throttled}; peak in flight "
                f"{PEAK_IN_FLIGHT[-1]}; {elapsed:.1f} s  {'PASS' if passed else 'FAIL'}"
            )
    print(f"  target mean >= 0.98 of the configured rate and no 429: {'PASS' if ok else 'FAIL'}")
    fast_ms = 30
    with emulator(fast_ms, limit, WINDOW_S) as url:
        measure_rate(singles[0], url, rpm, seconds / 2, None, latency_s=fast_ms / 1000)
    bound = rate * fast_ms / 1000 * 2 + 2
    small = PEAK_IN_FLIGHT[-1] <= bound
    print(
        f"  {singles[0].name} at {fast_ms} ms: peak in flight {PEAK_IN_FLIGHT[-1]}, bound "
        f"rate x latency x 2 + 2 = {bound:g}: {'PASS' if small else 'FAIL'}"
    )
    return ok and small


# -- overhead: zero latency, no limit -------------------------------------------------------


async def _bare(provider: Provider, items: list[Lookup], concurrency: int) -> float:
    """The same requests by a bare httpx loop: no pacer, no ledger; seconds taken."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    started = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        send, receive = anyio.create_memory_object_stream[Lookup](len(items))
        for item in items:
            send.send_nowait(item)
        send.close()

        async def worker() -> None:
            async for key, _, *carry in receive:
                response = await client.send(provider.request([key], "bench", carry))
                if response.status_code == 429 or response.status_code >= 500:
                    raise RuntimeError(f"baseline: HTTP {response.status_code}")

        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(worker)
    return time.perf_counter() - started


def bench_overhead(singles: list[Single], requests: int, repeat: int) -> bool:
    print(
        f"overhead: zero latency, no limit, {ROUND_CONCURRENCY} in flight, {requests:,} "
        f"requests per round, median of {repeat} rounds"
    )
    ok = True
    with emulator(0, None) as url:
        for single in singles:
            provider, settings = provider_for(
                single, url, requests_per_minute=10**7, max_concurrency=ROUND_CONCURRENCY
            )
            items = lookups(single, provider, requests, 0)
            drive_engine(provider, settings, items[: requests // 5])  # warm up
            engine_rates, bare_rates, engine_cpu, bare_cpu = [], [], [], []
            for _ in range(repeat):  # alternate, so both see the same machine
                reset(url)
                cpu = time.process_time()
                engine_rates.append(requests / drive_engine(provider, settings, items))
                engine_cpu.append((time.process_time() - cpu) / requests * 1000)
                check_answered(admin_log(url, single.name), single.name, requests)
                cpu = time.process_time()
                bare_rates.append(requests / anyio.run(_bare, provider, items, ROUND_CONCURRENCY))
                bare_cpu.append((time.process_time() - cpu) / requests * 1000)
            engine_rate, bare_rate = statistics.median(engine_rates), statistics.median(bare_rates)
            engine_ms, bare_ms = statistics.median(engine_cpu), statistics.median(bare_cpu)
            passed = engine_rate >= 400
            ok = ok and passed
            print(
                f"  {single.name}: engine {engine_rate:,.0f} requests/s "
                f"(rounds {', '.join(f'{r:,.0f}' for r in engine_rates)}); baseline bare "
                f"httpx {bare_rate:,.0f}/s; ratio {engine_rate / bare_rate:.3f}  "
                f"{'PASS' if passed else 'FAIL'}"
            )
            print(
                f"    this process's CPU per request: engine {engine_ms:.2f} ms, baseline "
                f"{bare_ms:.2f} ms (ratio {engine_ms / bare_ms:.2f}); one core's worth: "
                f"{1000 / engine_ms:,.0f} vs {1000 / bare_ms:,.0f} requests/s"
            )
    print(f"  target >= 400 requests/s per process: {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="?", default="all", choices=["rate", "overhead", "all"])
    parser.add_argument("--provider", action="append", help="only these (repeatable)")
    parser.add_argument("--rpm", type=int, default=3000, help="rate bench requests_per_minute")
    parser.add_argument("--seconds", type=float, default=15.0, help="rate bench measured time")
    parser.add_argument("--requests", type=int, default=3000, help="overhead bench requests")
    parser.add_argument("--repeat", type=int, default=3, help="overhead bench rounds")
    parser.add_argument("--in-process", action="store_true", help="serve the emulator here")
    args = parser.parse_args()
    global IN_PROCESS
    IN_PROCESS = args.in_process
    singles = available(args.provider)
    if not singles:
        print("no provider to benchmark")
        return 1
    results = []
    if args.which in ("overhead", "all"):
        results.append(bench_overhead(singles, args.requests, args.repeat))
    if args.which in ("rate", "all"):
        results.append(bench_rate(singles, args.rpm, args.seconds))
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
