"""One provider's lane: batch the keys it is given, pace and bound the requests, retry
what is worth retrying, split refused batches, and commit every answer as it arrives.

Errors are classified once, by class (:mod:`pipeline.errors`), and handled in one
place (:meth:`Lane._exchange`): transient ones are retried with exponential backoff
and full jitter (Retry-After honoured, 429 also slows the pacer), a refused batch is
halved until the bad keys stand alone (each becomes ``invalid_input``), terminal
ones fail their keys, and a refused key (401/403) stops the lane for the run.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import anyio
import httpx

from pipeline.engine.pacer import Pacer
from pipeline.engine.sink import LedgerSink
from pipeline.errors import (
    BadRequestError,
    LaneStoppedError,
    ProviderError,
    TerminalError,
    TransientError,
)
from pipeline.ledger import Answer, RequestLog
from pipeline.provider_config import ProviderSettings
from pipeline.providers.base import Provider

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

    def settle(self, count: int = 1) -> None:
        self.remaining -= count
        if self.remaining <= 0 and not self.future.done():
            self.future.set_result(None)


@dataclass(frozen=True)
class Pending:
    key: str
    first_row: int
    ticket: Ticket


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
    ) -> None:
        self.provider = provider
        self.settings = settings
        self.client = client
        self.sink = sink
        self.pacer = pacer or Pacer(settings.requests_per_minute)
        self.batch_size = provider.batch_size
        self.stopped: str | None = None
        self._rng = rng or random.Random()
        self._queue: deque[Pending] = deque()
        self._input_done = False
        self._flush_for: Ticket | None = None
        self._wake = anyio.Event()
        self._slots = anyio.Semaphore(settings.max_concurrency)
        self._timeout = httpx.Timeout(settings.timeout_s).as_dict()

    # -- called by the planner (through the portal) ---------------------------------

    def submit(self, items: Sequence[tuple[str, int]]) -> Ticket:
        """Queue lookups (key, first row); the ticket is done when all are committed."""
        ticket = Ticket(len(items), self)
        if self.stopped is not None:
            ticket.queued = 0
            ticket.settle(len(items))
        else:
            self._queue.extend(Pending(key, row, ticket) for key, row in items)
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

    # -- the lane itself -----------------------------------------------------------

    async def run(self) -> None:
        """Dispatch batches until the input is done and every request has finished."""
        async with anyio.create_task_group() as tg:
            while True:
                if self.stopped is not None:
                    self._drop_queue()
                if self._ready():
                    await self._slots.acquire()
                    await self.pacer.acquire()
                    batch = self._take()
                    if not batch:  # the lane stopped while we waited for a slot
                        self.pacer.release(answered=False)
                        self._slots.release()
                        continue
                    tg.start_soon(self._exchange, batch, 1, True)
                elif self._input_done and not self._queue:
                    break
                else:
                    self._wake = anyio.Event()
                    await self._wake.wait()

    def _ready(self) -> bool:
        queued = len(self._queue)
        if queued >= self.batch_size:
            return True
        if queued == 0:
            return False
        if self._input_done:
            return True
        waiting = self._flush_for
        return waiting is not None and waiting.queued > 0

    def _take(self) -> list[Pending]:
        count = min(self.batch_size, len(self._queue))
        batch = [self._queue.popleft() for _ in range(count)]
        for item in batch:
            item.ticket.queued -= 1
        return batch

    def _drop_queue(self) -> None:
        while self._queue:
            item = self._queue.popleft()
            item.ticket.queued -= 1
            item.ticket.settle()

    def stop(self, reason: str) -> None:
        """Refuse everything from now on; queued keys are left for a later run."""
        if self.stopped is None:
            self.stopped = reason
        self._drop_queue()
        self._wake.set()

    async def _exchange(self, batch: list[Pending], attempt: int, holding: bool) -> None:
        """Send ``batch`` once (acquiring a slot unless ``holding`` one) and act on the result."""
        if not holding:
            await self._slots.acquire()
            await self.pacer.acquire()
        try:
            if self.stopped is not None:
                self.pacer.release(answered=False)
                for item in batch:
                    item.ticket.settle()
                return
            await self._attempt(batch, attempt)
        finally:
            self._slots.release()

    async def _attempt(self, batch: list[Pending], attempt: int) -> None:
        keys = [item.key for item in batch]
        request_id = uuid.uuid4().hex
        request = self.provider.request(keys, request_id)
        request.extensions["timeout"] = self._timeout
        name = self.provider.name
        self.sink.log_sent(request_id, name, attempt, len(keys))
        sent_at = time.time()
        started = time.monotonic()
        status: int | None = None
        try:
            try:
                response = await self.client.send(request)
                status = response.status_code
                reply = self.provider.parse(response, keys)
            except httpx.TimeoutException:
                raise TransientError(
                    f"{name}: no answer within {self.settings.timeout_s:g}s"
                ) from None
            except httpx.TransportError as exc:
                raise TransientError(f"{name}: connection failed: {type(exc).__name__}") from None
        except ProviderError as error:
            self.pacer.release(answered=False)
            latency = (time.monotonic() - started) * 1000
            log = RequestLog(
                request_id, name, attempt, len(keys), sent_at, status,
                _outcome_name(error), 0, latency, str(error),
            )  # fmt: skip
            await self._handle(error, batch, attempt, log)
            return
        self.pacer.release(answered=True)
        latency = (time.monotonic() - started) * 1000
        log = RequestLog(
            request_id, name, attempt, len(keys), sent_at, status, "answered",
            reply.credits, latency, None,
        )  # fmt: skip
        by_key = {item.key: item for item in batch}
        answers = [
            Answer(o.key, o.status, o.answer, o.error, o.credits, by_key[o.key].first_row)
            for o in reply.outcomes
        ]
        await self.sink.commit(log, answers)
        self._settle(batch)

    async def _handle(
        self, error: ProviderError, batch: list[Pending], attempt: int, log: RequestLog
    ) -> None:
        if isinstance(error, TransientError):
            if error.status == 429:
                self.pacer.throttle(error.retry_after)
            if attempt < self.settings.max_attempts:
                await self.sink.commit(log, [])
                ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1))
                delay = self._rng.uniform(0, ceiling)  # "full jitter"
                if error.retry_after is not None:
                    delay = max(delay, error.retry_after)
                self._slots.release()
                try:
                    await anyio.sleep(delay)
                finally:
                    await self._slots.acquire()
                # _exchange's finally releases the slot we just took back
                await self._retry(batch, attempt + 1)
                return
            reason = f"gave up after {attempt} attempts: {error}"
            await self.sink.commit(log, self._failed(batch, reason))
        elif isinstance(error, BadRequestError) and len(batch) > 1:
            await self.sink.commit(log, [])
            half = len(batch) // 2
            self._slots.release()
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._exchange, batch[:half], 1, False)
                    tg.start_soon(self._exchange, batch[half:], 1, False)
            finally:
                await self._slots.acquire()
            return
        elif isinstance(error, BadRequestError):
            item = batch[0]
            refused = Answer(item.key, "invalid_input", None, str(error), 0, item.first_row)
            await self.sink.commit(log, [refused])
        elif isinstance(error, LaneStoppedError):
            await self.sink.commit(log, [])
            self.stop(str(error))
        else:
            assert isinstance(error, TerminalError | ProviderError)
            await self.sink.commit(log, self._failed(batch, str(error)))
        self._settle(batch)

    async def _retry(self, batch: list[Pending], attempt: int) -> None:
        await self.pacer.acquire()
        if self.stopped is not None:
            self.pacer.release(answered=False)
            self._settle(batch)
            return
        await self._attempt(batch, attempt)

    @staticmethod
    def _failed(batch: list[Pending], reason: str) -> list[Answer]:
        return [Answer(item.key, "failed", None, reason, 0, item.first_row) for item in batch]

    @staticmethod
    def _settle(batch: list[Pending]) -> None:
        for item in batch:
            item.ticket.settle()


def _outcome_name(error: ProviderError) -> str:
    if isinstance(error, TransientError):
        return "throttled" if error.status == 429 else "transient"
    if isinstance(error, BadRequestError):
        return "refused"
    if isinstance(error, LaneStoppedError):
        return "unauthorised"
    return "terminal"
