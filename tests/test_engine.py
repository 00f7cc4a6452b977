"""The engine's own rules, driven through an injected transport we can inspect:
full batches, flushing a partial one on demand, the pacer's spacing, rolling guard
and 429 pause, and a refused key stopping the lane."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import anyio
import httpx
import pytest

from pipeline.engine.engine import Engine
from pipeline.engine.pacer import Pacer
from pipeline.engine.stops import StopKind, StopReason
from pipeline.engine.tickets import Batch, Ticket
from pipeline.provider_config import TcpaAuthoritySettings
from pipeline.providers.tcpa_authority import TcpaAuthority
from pipeline.store.records import NewRun, Session
from pipeline.store.sqlite import SqliteStore

RUN = "run-1"


class Recorder:
    """A fake TCPA Authority: answers every number, remembers what it was sent."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.sizes: list[int] = []
        self.sent_at: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent_at.append(time.monotonic())
        data = json.loads(request.content)["Data"]
        self.sizes.append(len(data))
        if self.status != 200:
            return httpx.Response(self.status, json={"Message": "Invalid loginId"})
        answers = [{"PhoneNumber": item["PhoneNumber"], "IsReassigned": False} for item in data]
        return httpx.Response(200, json=answers)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqliteStore]:
    ledger = SqliteStore(tmp_path)
    ledger.start(NewRun(RUN, "job", config_path=None, input_path="in", output_path="out",
                        cache_cutoff=None))  # fmt: skip
    yield ledger
    ledger.close()


def engine(ledger: SqliteStore, recorder: Recorder, **settings: object) -> Engine:
    tcpa = TcpaAuthoritySettings(base_url="http://tcpa.test/v1.5", **settings)  # type: ignore[arg-type]
    provider = TcpaAuthority(tcpa, "key", has_consent_dates=True)
    session = Session(RUN, 1, {provider.name: provider.params()})
    transport = httpx.MockTransport(recorder)
    return Engine([provider], {provider.name: tcpa}, ledger, session, transport=transport)


def items(count: int, start: int = 0) -> list[tuple[str, int]]:
    return [(f"212{2000000 + i:07d}:20200101", i + 1) for i in range(start, start + count)]


def test_batches_are_full_except_the_last(ledger: SqliteStore) -> None:
    recorder = Recorder()
    with engine(ledger, recorder, batch_size=100, requests_per_minute=10**6) as e:
        first = e.submit("tcpa_authority", items(130))
        second = e.submit("tcpa_authority", items(120, start=130))
        e.close_input()
        first.future.result(timeout=10)
        second.future.result(timeout=10)
    assert recorder.sizes == [100, 100, 50]
    assert ledger.lookup_counts(RUN, "tcpa_authority") == {"hit": 250}


def test_a_partial_batch_waits_until_someone_needs_it(ledger: SqliteStore) -> None:
    recorder = Recorder()
    with engine(ledger, recorder, batch_size=100, requests_per_minute=10**6) as e:
        ticket = e.submit("tcpa_authority", items(30))
        time.sleep(0.2)
        assert recorder.sizes == [] and not ticket.future.done()
        e.flush_through(ticket)
        ticket.future.result(timeout=10)
        assert recorder.sizes == [30]
        later = e.submit("tcpa_authority", items(100, start=30))
        later.future.result(timeout=10)  # a full batch goes without asking
        assert recorder.sizes == [30, 100]


def test_requests_are_spaced_evenly(ledger: SqliteStore) -> None:
    recorder = Recorder()
    with engine(ledger, recorder, batch_size=1, requests_per_minute=600, max_concurrency=8) as e:
        ticket = e.submit("tcpa_authority", items(6))
        e.close_input()
        ticket.future.result(timeout=10)
    gaps = [b - a for a, b in zip(recorder.sent_at, recorder.sent_at[1:], strict=False)]
    # 600/min: one per 0.1 s. The slots are on a fixed schedule, so a send that a busy
    # machine wakes late is followed by a shorter gap back onto it: never a burst, and
    # never faster than the rate over the whole run.
    assert len(gaps) == 5 and min(gaps) >= 0.05, gaps
    assert recorder.sent_at[-1] - recorder.sent_at[0] >= 0.499, gaps


def test_a_refused_key_stops_the_lane_and_drops_what_is_queued(ledger: SqliteStore) -> None:
    recorder = Recorder(status=401)
    with engine(ledger, recorder, batch_size=10, requests_per_minute=10**6, max_concurrency=1) as e:
        ticket = e.submit("tcpa_authority", items(50))
        e.close_input()
        ticket.future.result(timeout=10)
        stop = e.stopped("tcpa_authority")
        assert stop is not None and stop.kind is StopKind.REFUSED and "HTTP 401" in stop.message
    assert recorder.sizes == [10]  # one refusal, then nothing more is sent
    assert ledger.lookup_counts(RUN, "tcpa_authority") == {}
    totals = ledger.request_totals(RUN, "tcpa_authority")
    assert (totals.requests, totals.credits) == (1, 0)


def test_guard_holds_a_window_of_response_times() -> None:
    async def scenario() -> tuple[float, float]:
        pacer = Pacer(600, window_s=0.3, headroom=0.0)  # 0.1 s spacing, 3 per 0.3 s
        assert pacer.limit == 3
        for _ in range(3):
            await pacer.acquire()
        with anyio.move_on_after(0.5) as scope:
            await pacer.acquire()  # three in flight fill the window: must wait
        assert scope.cancelled_caught
        released = time.monotonic()
        pacer.release(answered=True)
        await pacer.acquire()
        return released, time.monotonic()

    released, sent = anyio.run(scenario)
    assert sent - released >= 0.29  # counted until 0.3 s after its response


def test_429_pauses_the_lane_for_retry_after_and_slows_it() -> None:
    async def scenario() -> tuple[float, float, float]:
        pacer = Pacer(60_000, headroom=0.0)
        await pacer.acquire()
        pacer.release(answered=False)
        full = pacer.rate
        pacer.throttle(0.4)
        throttled = time.monotonic()
        slowed = pacer.rate
        await pacer.acquire()
        waited = time.monotonic() - throttled
        pacer.release(answered=True)
        for _ in range(20):  # each answer earns back 2% of the configured rate
            await pacer.acquire()
            pacer.release(answered=True)
        return waited, slowed / full, pacer.rate / full

    waited, slowed, recovered = anyio.run(scenario)
    assert waited >= 0.39 and slowed == pytest.approx(0.7) and recovered == pytest.approx(1.0)


def test_a_split_batch_keeps_each_key_with_its_ticket() -> None:
    first, second = Ticket(3), Ticket(2)
    carry = ["c0", None, "c2", "c3", None]
    parts = [(first, 3), (second, 2)]
    batch = Batch([f"k{i}" for i in range(5)], [1, 2, 3, 4, 5], carry, parts)
    left, right = batch.halves()
    assert (left.keys, left.rows, left.carry) == (["k0", "k1"], [1, 2], ["c0", None])
    assert (right.keys, right.rows, right.carry) == (["k2", "k3", "k4"], [3, 4, 5], carry[2:])
    assert left.parts == [(first, 2)] and right.parts == [(first, 1), (second, 2)]
    left.settle()
    assert not first.future.done()
    right.settle()
    assert first.future.done() and second.future.done()


def test_a_stop_ends_a_retry_wait_at_once_and_nothing_more_is_sent(ledger: SqliteStore) -> None:
    """A 429 asking for a minute's wait must not hold a stopped run for that minute."""

    class SlowDown(Recorder):
        def __call__(self, request: httpx.Request) -> httpx.Response:
            self.sent_at.append(time.monotonic())
            return httpx.Response(429, headers={"Retry-After": "60"}, json={"Message": "slow"})

    recorder = SlowDown()
    with engine(ledger, recorder, batch_size=10, requests_per_minute=10**6) as e:
        ticket = e.submit("tcpa_authority", items(10))
        e.close_input()
        deadline = time.monotonic() + 5
        while not recorder.sent_at:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        time.sleep(0.1)  # the lane is now in its 60 s wait
        stopped_at = time.monotonic()
        e.stop(StopReason.interrupted("stopped by SIGTERM"))
        ticket.future.result(timeout=5)
    assert time.monotonic() - stopped_at < 2
    assert len(recorder.sent_at) == 1  # the retry was dropped, not sent
    assert e.stopped("tcpa_authority") == StopReason.interrupted("stopped by SIGTERM")


def test_a_sleep_that_overruns_does_not_bring_the_next_request_closer() -> None:
    """On a busy machine a sleep ends late, and not always by the same amount. The next
    slot counts from when the request really left, so two sends are never closer than
    the interval (before: 70 ms apart at a 100 ms interval, one 429 in a tight window)."""
    now = [0.0]
    overruns = iter([0.03, 0.0, 0.03, 0.0, 0.03, 0.0])

    async def late_sleep(seconds: float) -> None:
        now[0] += seconds + next(overruns)

    pacer = Pacer(600, headroom=0.0, clock=lambda: now[0], sleep=late_sleep)

    async def scenario() -> list[float]:
        sent = []
        for _ in range(6):
            await pacer.acquire()
            sent.append(now[0])
            pacer.release(answered=True)
        return sent

    sent = anyio.run(scenario)
    gaps = [b - a for a, b in pairwise(sent)]
    assert min(gaps) >= 0.1 - 1e-9, gaps


class BrokenStore(SqliteStore):
    """A store whose second commit fails with an error that is not a write error (a bug
    in the store, say): the run must stop, not hang and not take the answers as kept."""

    commits = 0

    def commit(self, session: Session, responses: object) -> None:  # type: ignore[override]
        self.commits += 1
        if self.commits == 2:
            raise TypeError("a bug in the store")
        super().commit(session, responses)  # type: ignore[arg-type]


def test_an_unexpected_store_error_stops_the_lane_instead_of_hanging(tmp_path: Path) -> None:
    store = BrokenStore(tmp_path)
    store.start(NewRun(RUN, "job", config_path=None, input_path="in", output_path="out",
                       cache_cutoff=None))  # fmt: skip
    recorder = Recorder()
    with engine(store, recorder, batch_size=10, requests_per_minute=10**6, max_concurrency=1) as e:
        ticket = e.submit("tcpa_authority", items(50))
        e.close_input()
        ticket.future.result(timeout=10)  # settled, not hung: its rows read the store
        stop = e.stopped("tcpa_authority")
        assert stop is not None and stop.kind is StopKind.STORE
        assert "TypeError: a bug in the store" in stop.message
    assert len(recorder.sizes) == 2  # nothing sent after the failed commit
    assert store.lookup_counts(RUN, "tcpa_authority") == {"hit": 10}  # the first commit only
    store.close()
