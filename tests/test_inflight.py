"""What a lane keeps in flight: what its rate needs at the latency it measures (Little's
law, with margin), at most max_concurrency; it grows and shrinks with the latency."""

from __future__ import annotations

import anyio
import pytest

from pipeline.engine.inflight import INITIAL, InFlight


def _fed(inflight: InFlight, held_s: float, count: int = 20) -> None:
    for _ in range(count):
        inflight.in_use += 1
        inflight.release(held_s)


def test_it_sizes_from_rate_and_latency_and_follows_the_latency() -> None:
    rate = 50.0  # per second
    inflight = InFlight(64, lambda: rate)
    assert inflight.limit == INITIAL  # nothing measured yet
    _fed(inflight, 0.3)
    assert inflight.limit == 31  # 50/s x 0.3 s = 15 needed; x 2 margin, + 1 at the pacer
    _fed(inflight, 0.03, count=64)  # latency fell: the old samples leave the window
    assert inflight.limit == 4  # 1.5 needed: within rate x latency x 2 + 2
    assert inflight.limit <= rate * 0.03 * 2 + 2


def test_the_ceiling_and_a_slow_lane() -> None:
    inflight = InFlight(16, lambda: 50.0)
    _fed(inflight, 2.0)
    assert inflight.limit == 16  # 100 needed: max_concurrency is the ceiling
    slow = InFlight(64, lambda: 100 / 60)  # TCPA: 100 a minute at 569 ms
    _fed(slow, 0.569)
    assert slow.limit == 3  # two requests in flight, one waiting on the pacer


def test_the_90th_percentile_not_the_mean_decides() -> None:
    inflight = InFlight(64, lambda: 10.0)
    _fed(inflight, 0.1, count=50)
    _fed(inflight, 1.0, count=14)  # 22% of the answers are slow
    assert inflight.limit == 21  # 10/s x 1.0 s x 2 + 1


@pytest.mark.anyio
async def test_acquire_waits_for_a_slot_and_a_wider_limit_lets_waiters_in() -> None:
    inflight = InFlight(8, lambda: 10.0)
    got: list[int] = []

    async def take(n: int) -> None:
        await inflight.acquire()
        got.append(n)

    async with anyio.create_task_group() as tg:
        for n in range(4):
            tg.start_soon(take, n)
        await anyio.sleep(0.05)
        assert len(got) == INITIAL and inflight.in_use == INITIAL
        inflight.release(0.5)  # 10/s x 0.5 s x 2 + 1 = 11: the ceiling, 8 slots now
        await anyio.sleep(0.05)
        assert len(got) == 4 and inflight.in_use == 3 == inflight.peak  # one went back
    assert inflight.limit == 8
