"""The engine: one event loop on its own thread, one lane per provider.

The rest of the pipeline is synchronous (polars batches on reader threads, the
writer's sink). The engine bridges to it with an anyio blocking portal: the
lookup stages submit keys and get a :class:`concurrent.futures.Future` per submission,
done once every key is committed to the store; the stages wait on those.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager, ExitStack
from types import TracebackType

import anyio
import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal

from pipeline.engine.budget import Budget
from pipeline.engine.lane import Lane, Lookup
from pipeline.engine.pacer import Pacer
from pipeline.engine.sink import Recorded, StoreSink
from pipeline.engine.stops import StopReason
from pipeline.engine.tickets import Ticket
from pipeline.errors import StoreError
from pipeline.provider_config import ProviderSettings
from pipeline.providers.base import Provider
from pipeline.store.base import AnswerStore
from pipeline.store.records import Session


class Engine(AbstractContextManager["Engine"]):
    """Start with ``with Engine(...) as engine:``; leaving the block waits for every lane."""

    def __init__(
        self,
        providers: Sequence[Provider],
        settings: Mapping[str, ProviderSettings],
        store: AnswerStore,
        session: Session,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        pacers: Mapping[str, Pacer] | None = None,
        grace_s: float = 10.0,
        budget: Budget | None = None,
    ) -> None:
        self._providers = list(providers)
        self._settings = settings
        self._store = store
        self._session = session
        self._transport = transport
        self._pacers = dict(pacers or {})
        self.grace_s = grace_s
        self.budget = budget or Budget(None)
        self.lanes: dict[str, Lane] = {}
        self._stack = ExitStack()
        self._portal: BlockingPortal | None = None
        self._done: Future[None] | None = None
        self._clients: list[httpx.AsyncClient] = []
        self._sink: StoreSink | None = None

    def __enter__(self) -> Engine:
        self._portal = self._stack.enter_context(start_blocking_portal())
        self._portal.call(self._setup)
        self._done = self._portal.start_task_soon(self._run_lanes)
        return self

    async def _setup(self) -> None:
        self._sink = StoreSink(self._store, self._session, on_failure=self._store_failed)
        for provider in self._providers:
            settings = self._settings[provider.name]
            limits = httpx.Limits(
                max_connections=settings.max_concurrency,
                max_keepalive_connections=settings.max_concurrency,
            )
            client = httpx.AsyncClient(
                transport=self._transport,
                limits=limits,
                timeout=settings.timeout_s,
                follow_redirects=False,
            )
            self._clients.append(client)
            self.lanes[provider.name] = Lane(
                provider,
                settings,
                client,
                self._sink,
                pacer=self._pacers.get(provider.name),
                budget=self.budget,
            )

    async def _run_lanes(self) -> None:
        try:
            async with anyio.create_task_group() as tg:
                for lane in self.lanes.values():
                    tg.start_soon(lane.run)
        finally:
            with anyio.CancelScope(shield=True):
                assert self._sink is not None
                await self._sink.flush()
                for client in self._clients:
                    await client.aclose()

    def _store_failed(self, error: StoreError) -> None:
        for lane in self.lanes.values():  # on the loop's thread already
            lane.stop(StopReason.store(str(error)))

    def recorded(self, provider: str) -> Recorded | None:
        """What ``provider``'s lane has recorded this session (None before the start)."""
        return None if self._sink is None else self._sink.recorded[provider]

    @property
    def failure(self) -> StoreError | None:
        """Why answers can no longer be recorded, once that happened: the run must end."""
        return None if self._sink is None else self._sink.failure

    @property
    def alive(self) -> bool:
        """False once the lanes have ended (finished, stopped or crashed)."""
        return self._done is not None and not self._done.done()

    @property
    def portal(self) -> BlockingPortal:
        assert self._portal is not None, "use the engine inside a with block"
        return self._portal

    def submit(self, provider: str, items: Sequence[Lookup]) -> Ticket:
        """Queue (key, first row[, carry]) lookups; the ticket is done once all are in the
        store."""
        return self.portal.call(self.lanes[provider].submit, items)

    def flush_through(self, ticket: Ticket) -> None:
        """Someone waits on ``ticket`` and no more keys are coming: send its keys now."""
        if ticket.provider is not None and not ticket.future.done():
            self.portal.call(self.lanes[ticket.provider].flush_through, ticket)

    def close_input(self) -> None:
        """Every key has been submitted; lanes send what is left and end."""
        for lane in self.lanes.values():
            self.portal.call(lane.close_input)

    def stopped(self, provider: str) -> StopReason | None:
        """Why the provider's lane stopped (its key was refused), if it did."""
        return self.lanes[provider].stopped

    def stop(self, reason: StopReason) -> None:
        """Stop every lane: nothing new is sent; requests in flight finish and commit.

        Safe from any thread but the loop's, at any time (a signal handler calls it): once
        the lanes have ended there is nothing left to stop."""
        if self._portal is None or not self.alive:
            return
        with contextlib.suppress(RuntimeError):  # the portal closed meanwhile
            for lane in self.lanes.values():
                self._portal.call(lane.stop, reason)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._done is not None:
                if exc is not None:
                    self.stop(StopReason.interrupted("the run was interrupted"))
                self.close_input()
                if exc is None:
                    self._done.result()
                else:
                    self._wind_down()
        finally:
            self._stack.close()

    def _wind_down(self) -> None:
        """After an interruption: let requests in flight answer and commit, for at most
        ``grace_s``; then cancel them (they are then recorded as unanswered)."""
        assert self._done is not None
        try:
            self._done.result(timeout=self.grace_s)
        except TimeoutError:
            self._done.cancel()
            with contextlib.suppress(BaseException):
                self._done.result(timeout=5)
        except BaseException:
            pass  # the interruption is what the caller reports
