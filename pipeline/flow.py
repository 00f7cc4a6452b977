"""Overlap the stages: read+plan on one thread, fetch on the engine's, merge+write here.

The planner thread walks the input batches in order, submits what must be bought,
and hands each planned batch over through a bounded queue (so memory stays bounded
while the engine works ahead). The writer's side takes them in order, waits until
the ledger holds every answer its rows need, and merges.

Lanes send full batches only, except when someone waits on keys that sit in a
partial one and no more keys can come to fill it (the planner is blocked on a full
queue, or the input is done): then the merger asks that lane to send those keys
now. Batches stay full while the planner is ahead, and nothing deadlocks.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator

import polars as pl

from pipeline.engine.engine import Engine
from pipeline.plan import PlannedBatch, Planner

_DONE = object()
_POLL_S = 0.2
_WAIT_S = 0.05


class PlannerThread:
    """Runs ``planner`` over ``batches`` on a thread; iterate over it for planned batches."""

    def __init__(
        self,
        batches: Iterator[pl.DataFrame],
        planner: Planner,
        engine: Engine | None,
        depth: int = 4,
    ) -> None:
        self._batches = batches
        self._planner = planner
        self._engine = engine
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._cancelled = threading.Event()
        self._blocked = threading.Event()
        self._thread = threading.Thread(target=self._work, name="phone-enrich-planner", daemon=True)

    def __enter__(self) -> PlannerThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._cancelled.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):  # unblock a planner waiting on a full queue
                self._queue.get_nowait()
            self._thread.join(timeout=_POLL_S)

    @property
    def blocked(self) -> bool:
        """True while the planner waits for room in the queue (or has no more input)."""
        return self._blocked.is_set()

    def _put(self, item: object) -> bool:
        while not self._cancelled.is_set():
            try:
                self._queue.put_nowait(item)
                return True
            except queue.Full:
                self._blocked.set()
                try:
                    self._queue.put(item, timeout=_POLL_S)
                    return True
                except queue.Full:
                    continue
                finally:
                    self._blocked.clear()
        return False

    def _work(self) -> None:
        try:
            for batch in self._batches:
                if self._cancelled.is_set():
                    return
                planned = self._planner.plan(batch)
                if not self._put(planned):
                    return
            if self._engine is not None:
                self._engine.close_input()
            self._blocked.set()  # no more keys will come to fill a lane's batch
            self._put(_DONE)
        except BaseException as exc:  # handed to the consumer, who re-raises it
            self._put(exc)

    def __iter__(self) -> Iterator[PlannedBatch]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, PlannedBatch)
            yield item


def merged_batches(
    planner: PlannerThread,
    engine: Engine | None,
    merge: Callable[[PlannedBatch], pl.DataFrame],
    guard: Callable[[], None],
) -> Iterator[pl.DataFrame]:
    """Each planned batch, once the ledger holds its answers, merged.

    While it waits, every few hundredths of a second: the engine's
    :class:`~pipeline.errors.StoreError` as soon as an answer could not be recorded, and
    whatever ``guard`` raises (a stop was requested, the input changed): the output is
    then abandoned, the lanes stop, and the run resumes from the ledger."""
    for batch in planner:
        for ticket in batch.tickets():
            while True:
                _check(engine, guard)
                try:
                    ticket.future.result(timeout=_WAIT_S)
                    break
                except TimeoutError:
                    if engine is not None and planner.blocked:
                        engine.flush_through(ticket)
        _check(engine, guard)
        yield merge(batch)


def _check(engine: Engine | None, guard: Callable[[], None]) -> None:
    if engine is not None and engine.failure is not None:
        raise engine.failure
    guard()
