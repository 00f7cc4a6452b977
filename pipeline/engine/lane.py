"""One provider's lane: batch the keys it is given, pace and bound the requests, retry
what is worth retrying, split refused batches, and commit every answer as it arrives.

Errors are classified once, by class (:mod:`pipeline.errors`), and acted on in one
place (:meth:`Lane._exchange`): transient ones are retried with exponential backoff
and full jitter (Retry-After honoured, 429 also slows the pacer), a refused batch is
halved until the bad keys stand alone (each becomes ``invalid_input``), terminal
ones fail their keys, and a refused key (401/403) stops the lane for the run.

Keys travel in lists (segments of a submission, batches of segments), never one
object per key: at a thousand keys a request that is most of the engine's cost.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import anyio
import httpx
from anyio.abc import TaskGroup

from pipeline.engine.budget import Budget
from pipeline.engine.inflight import InFlight
from pipeline.engine.pacer import Pacer
from pipeline.engine.sink import LedgerSink
from pipeline.errors import (
    BadRequestError,
    LaneStoppedError,
    ProviderError,
    StoreError,
    TransientError,
)
from pipeline.ledger import Columns, RequestLog
from pipeline.provider_config import ProviderSettings
from pipeline.providers.base import Provider, Reply

Lookup = tuple[str, int] | tuple[str, int, str | None]
"""What the planner submits: a key, the first row that asked, and optionally what the
request carries for it (:data:`~pipeline.providers.base.CARRY`)."""

BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0


class Ticket:
    """Keys submitted together; its future is done once every one is committed or dropped."""

    def __init__(self, count: int, lane: Lane | None = None) -> None:
        self.remaining = count
        self.queued = count
        """Of its keys, how many still wait in the lane's queue (not yet in a request)."""
        self.lane = lane
        self.future: Future[None] = Future()
        if count == 0:
            self.future.set_result(None)

    def settle(self, count: int) -> None:
        self.remaining -= count
        if self.remaining <= 0 and not self.future.done():
            self.future.set_result(None)


@dataclass
class Batch:
    """Keys going out in one request, their first rows, and whose tickets they are."""

    keys: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    carry: list[str | None] = field(default_factory=list)
    parts: list[tuple[Ticket, int]] = field(default_factory=list)
    spent: int = 0
    """Credits charged for answers of earlier attempts that could not be used."""

    def settle(self) -> None:
        for ticket, count in self.parts:
            ticket.settle(count)

    def halves(self) -> tuple[Batch, Batch]:
        middle = len(self.keys) // 2
        first, second = (
            Batch(self.keys[:middle], self.rows[:middle], self.carry[:middle], spent=self.spent),
            Batch(self.keys[middle:], self.rows[middle:], self.carry[middle:]),
        )
        left = middle
        for ticket, count in self.parts:
            take = min(left, count)
            if take:
                first.parts.append((ticket, take))
            if count - take:
                second.parts.append((ticket, count - take))
            left -= take
        return first, second


@dataclass
class _Segment:
    keys: list[str]
    rows: list[int]
    carry: list[str | None]
    ticket: Ticket
    start: int = 0


class Lane:
    """Runs inside the engine's event loop; the planner talks to it through the portal."""

    def __init__(
        self,
        provider: Provider,
        settings: ProviderSettings,
        client: httpx.AsyncClient,
        sink: LedgerSink,
        *,
        pacer: Pacer | None = None,
        rng: random.Random | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.provider = provider
        self.settings = settings
        self.client = client
        self.sink = sink
        self.pacer = pacer or Pacer(settings.requests_per_minute, **provider.pacer_options())
        self.batch_size = provider.batch_size
        self.stopped: str | None = None
        self._rng = rng or random.Random()
        self.budget = budget or Budget(None)
        self._per_key = provider.max_credits_per_key()
        self._queue: deque[_Segment] = deque()
        self._queued = 0
        self._input_done = False
        self._flush_for: Ticket | None = None
        self._wake = anyio.Event()
        self._halt = anyio.Event()
        """Set when the lane stops: what waits to retry gives up its wait at once."""
        self.in_flight = InFlight(settings.max_concurrency, lambda: self.pacer.rate)
        self._timeout = httpx.Timeout(settings.timeout_s).as_dict()
        self._tg: TaskGroup | None = None

    # -- called by the planner (through the portal) ---------------------------------

    def submit(self, items: Sequence[Lookup]) -> Ticket:
        """Queue lookups (key, first row[, carry]); the ticket is done when all are
        committed."""
        ticket = Ticket(len(items), self)
        if self.stopped is not None or not items:
            ticket.queued = 0
            ticket.settle(len(items))
            return ticket
        keys = [item[0] for item in items]
        rows = [item[1] for item in items]
        carry = [item[2] if len(item) > 2 else None for item in items]
        self._queue.append(_Segment(keys, rows, carry, ticket))
        self._queued += len(keys)
        self._wake.set()
        return ticket

    def flush_through(self, ticket: Ticket) -> None:
        """Send ``ticket``'s keys now, in a partial batch if need be: someone waits on them
        and no more keys are coming to fill the batch."""
        if ticket.queued > 0:
            self._flush_for = ticket
            self._wake.set()

    def close_input(self) -> None:
        """No more keys will come: send what is queued, then end."""
        self._input_done = True
        self._wake.set()

    def stop(self, reason: str) -> None:
        """Refuse everything from now on; queued keys are left for a later run."""
        if self.stopped is None:
            self.stopped = reason
        self._drop_queue()
        self._wake.set()
        self._halt.set()

    # -- the lane itself -----------------------------------------------------------

    async def run(self) -> None:
        """Dispatch batches until the input is done and every request has finished."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            while True:
                if self.stopped is not None:
                    self._drop_queue()
                if self._ready():
                    turn = await self._take_turn()
                    if turn is None:
                        continue  # stopped while waiting: the queue is dropped above
                    batch = self._take()
                    if not batch.keys:  # the lane stopped while we waited for a slot
                        self.pacer.release(answered=False)
                        self.in_flight.release()
                        continue
                    tg.start_soon(self._exchange, batch, turn)
                elif self._input_done and not self._queued:
                    break
                else:
                    self._wake = anyio.Event()
                    await self._wake.wait()

    async def _take_turn(self) -> float | None:
        """A request slot, then the pacer's next turn: when it came; None, holding
        neither, if the lane stops first (a stop must not sit out a 429's pause)."""
        if self.stopped is not None:
            return None
        held = [False, False]  # slot, turn
        async with anyio.create_task_group() as tg:

            async def halt() -> None:
                await self._halt.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(halt)
            await self.in_flight.acquire()
            held[0] = True
            await self.pacer.acquire()
            held[1] = True
            tg.cancel_scope.cancel()
        if held[1]:
            return time.monotonic()
        if held[0]:
            self.in_flight.release()
        return None

    def _ready(self) -> bool:
        if self._queued >= self.batch_size:
            return True
        if self._queued == 0:
            return False
        if self._input_done:
            return True
        waiting = self._flush_for
        return waiting is not None and waiting.queued > 0

    def _take(self) -> Batch:
        batch = Batch()
        want = self.budget.affordable(self._per_key, min(self.batch_size, self._queued))
        if want == 0 and self._queued:
            self.stop(self.budget.reason())
            return batch
        while want and self._queue:
            segment = self._queue[0]
            end = min(len(segment.keys), segment.start + want)
            taken = end - segment.start
            batch.keys.extend(segment.keys[segment.start : end])
            batch.rows.extend(segment.rows[segment.start : end])
            batch.carry.extend(segment.carry[segment.start : end])
            batch.parts.append((segment.ticket, taken))
            segment.ticket.queued -= taken
            segment.start = end
            want -= taken
            if end == len(segment.keys):
                self._queue.popleft()
        self._queued -= len(batch.keys)
        return batch

    def _drop_queue(self) -> None:
        while self._queue:
            segment = self._queue.popleft()
            left = len(segment.keys) - segment.start
            segment.ticket.queued -= left
            segment.ticket.settle(left)
        self._queued = 0

    async def _exchange(self, batch: Batch, turn: float | None) -> None:
        """Send ``batch`` until it is answered, refused, given up on or the lane stops.

        ``turn``: when the caller got this batch's slot and pacer turn (None: get them).
        A request slot is held until the answer is committed: so at most what the lane
        keeps in flight (:class:`InFlight`, sized from its rate and latency) is ever paid
        for but not yet in the ledger, which bounds what a kill -9 can make us pay twice.
        """
        attempt = 1
        while True:
            if turn is None:
                turn = await self._take_turn()
                if turn is None:
                    batch.settle()  # the lane stopped before the retry went out
                    return
            try:
                retry_in = await self._once(batch, attempt)
            except StoreError:  # the engine stopped every lane; the keys wait for a resume
                batch.settle()
                return
            finally:
                self.in_flight.release(time.monotonic() - turn)
                turn = None
            if retry_in is None:
                return
            with anyio.move_on_after(retry_in):  # without a slot: others may go meanwhile
                await self._halt.wait()  # a stop ends the wait (the retry is then dropped)
            attempt += 1

    async def _once(self, batch: Batch, attempt: int) -> float | None:
        """One attempt and what follows from it; seconds to wait before retrying, or None."""
        if self.stopped is not None:
            self.pacer.release(answered=False)
            batch.settle()
            return None
        reserve = self._per_key * len(batch.keys)
        if not self.budget.reserve(reserve):
            self.pacer.release(answered=False)
            self.stop(self.budget.reason())
            batch.settle()  # not sent: its rows are skipped_budget
            return None
        log, reply, error = await self._attempt(batch, attempt)
        # A request that got no answer may have been charged all the same: its
        # reservation stays spent, so the cap holds whatever the provider billed.
        self.budget.settle(reserve, reserve if log.unanswered else log.credits)
        if reply is not None:
            columns = Columns(
                batch.keys, reply.statuses, reply.answers, reply.error_list(),
                _plus(reply.credits, batch.spent), batch.rows,
            )  # fmt: skip
            await self.sink.commit(log, columns)
        elif isinstance(error, TransientError) and attempt < self.settings.max_attempts:
            batch.spent += error.credits
            await self.sink.commit(log, None)
            ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1))
            delay = self._rng.uniform(0, ceiling)  # "full jitter"
            if error.retry_after is not None:
                delay = max(delay, error.retry_after)
            return delay
        elif isinstance(error, BadRequestError) and len(batch.keys) > 1:
            batch.spent += error.credits
            await self.sink.commit(log, None)
            assert self._tg is not None
            for half in batch.halves():
                self._tg.start_soon(self._exchange, half, None)
            return None
        elif isinstance(error, BadRequestError):
            refused = Columns(batch.keys, ["invalid_input"], [None], [str(error)],
                              [batch.spent + error.credits], batch.rows)  # fmt: skip
            await self.sink.commit(log, refused)
        elif isinstance(error, LaneStoppedError):
            self.stop(str(error))  # before the slot goes to the next request
            spent = batch.spent + error.credits  # paid for: filed, so credits reconcile
            paid = Columns.failed(batch.keys, batch.rows, str(error), spent) if spent else None
            await self.sink.commit(log, paid)
        else:
            reason = str(error)
            if isinstance(error, TransientError):
                reason = f"gave up after {attempt} attempts: {error}"
            spent = batch.spent + (error.credits if error is not None else 0)
            await self.sink.commit(log, Columns.failed(batch.keys, batch.rows, reason, spent))
        batch.settle()
        return None

    async def _attempt(
        self, batch: Batch, attempt: int
    ) -> tuple[RequestLog, Reply | None, ProviderError | None]:
        """One HTTP request: its log line, and the reply or the classified error."""
        keys = batch.keys
        request_id = uuid.uuid4().hex
        request = self.provider.request(keys, request_id, batch.carry)
        request.extensions["timeout"] = self._timeout
        name = self.provider.name
        self.sink.log_sent(request_id, name, attempt, len(keys))
        sent_at = time.time()
        started = time.monotonic()
        status: int | None = None
        sent = True  # as far as we know: only a connection never made sent nothing
        try:
            try:
                response = await self.client.send(request)
                status = response.status_code
                reply = self.provider.parse(response, keys)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                sent = False
                raise TransientError(f"{name}: connection failed: {type(exc).__name__}") from None
            except httpx.TimeoutException:
                raise TransientError(
                    f"{name}: no answer within {self.settings.timeout_s:g}s"
                ) from None
            except httpx.TransportError as exc:
                raise TransientError(f"{name}: connection failed: {type(exc).__name__}") from None
        except ProviderError as error:
            self.pacer.release(answered=False)
            if isinstance(error, TransientError) and error.status == 429:
                self.pacer.throttle(error.retry_after)
            latency = (time.monotonic() - started) * 1000
            log = RequestLog(
                request_id, name, attempt, len(keys), sent_at, status,
                _outcome_name(error), error.credits, latency, str(error),
                unanswered=sent and status is None,
            )  # fmt: skip
            return log, None, error
        self.pacer.release(answered=True)
        latency = (time.monotonic() - started) * 1000
        log = RequestLog(
            request_id, name, attempt, len(keys), sent_at, status, "answered",
            sum(reply.credits), latency, None,
        )  # fmt: skip
        return log, reply, None


def _plus(credits: list[int], spent: int) -> list[int]:
    """``credits`` with ``spent`` added to the first key's (it carries the request)."""
    return [credits[0] + spent, *credits[1:]] if spent and credits else credits


def _outcome_name(error: ProviderError) -> str:
    if isinstance(error, TransientError):
        return "throttled" if error.status == 429 else "transient"
    if isinstance(error, BadRequestError):
        return "refused"
    if isinstance(error, LaneStoppedError):
        return "unauthorised"
    return "terminal"
