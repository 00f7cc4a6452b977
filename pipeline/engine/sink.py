"""The lanes' way into the answer store: writes run on one worker thread, off the event loop.

A commit is awaited (a key's ticket is only settled once its answer is on disk),
but not alone: responses that arrive while a write is under way wait for the
next one, which takes them all in one transaction (group commit). The note that a
request is about to go out is not awaited at all: it rides along with the next
write, so sending never waits behind the disk. Those notes exist to show, after a
crash, which requests were in flight; the store keeps the first of them
(:meth:`AnswerStore.log_sent`), so a note that lands after its own response changes
nothing.

A write that fails (disk full, the file gone) is fatal to the run: every caller
waiting on that group, and every later one, gets the same :class:`StoreError`, and
``on_failure`` stops every lane, so nothing more is bought that could not be kept.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import anyio
import anyio.to_thread

from pipeline.errors import StoreError
from pipeline.store.base import AnswerStore, StoreWriteError
from pipeline.store.records import Columns, RequestLog, Response, Session

_EMPTY = Columns([], [], [], [], [], [])


@dataclass
class Recorded:
    """What one provider's lane has recorded this session (the progress line's figures:
    counted where every response passes, once it is on disk)."""

    requests: int = 0
    retries: int = 0
    http_429: int = 0
    credits: int = 0
    keys: int = 0
    """Lookups settled by a response (answered, refused or failed)."""

    def add(self, response: Response) -> None:
        log = response.log
        self.requests += 1
        self.retries += log.attempt > 1
        self.http_429 += log.http_status == 429
        self.credits += log.credits
        self.keys += len(response.columns.keys)


class StoreSink:
    """Serialised, grouped, thread-offloaded writes of one run's session."""

    def __init__(
        self,
        store: AnswerStore,
        session: Session,
        on_failure: Callable[[StoreError], None] | None = None,
    ) -> None:
        self.store = store
        self.session = session
        self._sent: list[tuple[str, str, int, int]] = []
        self._waiting: list[tuple[Response, anyio.Event]] = []
        self._writing = False
        self._on_failure = on_failure
        self.failure: StoreError | None = None
        """Set once a write failed: nothing is recorded after it."""
        self.recorded: defaultdict[str, Recorded] = defaultdict(Recorded)
        """Per provider, this session (read by the progress thread)."""

    def log_sent(self, request_id: str, provider: str, attempt: int, numbers: int) -> None:
        self._sent.append((request_id, provider, attempt, numbers))

    async def commit(self, log: RequestLog, columns: Columns | None) -> None:
        """Record one response (and any answers it carried); return once it is on disk."""
        if self.failure is not None:
            raise self.failure
        done = anyio.Event()
        self._waiting.append((Response(log, columns or _EMPTY), done))
        if self._writing:
            await done.wait()  # the writer in charge takes it in its next group
        else:
            self._writing = True
            try:
                while self._waiting and self.failure is None:
                    group, self._waiting = self._waiting, []
                    sent, self._sent = self._sent, []
                    responses = [response for response, _ in group]
                    try:
                        with anyio.CancelScope(shield=True):
                            await anyio.to_thread.run_sync(self._write, sent, responses)
                        for response in responses:
                            self.recorded[response.log.provider].add(response)
                    except Exception as exc:  # a bug must stop the run too, never hang it
                        self._fail(exc)
                    finally:
                        for _, event in group:
                            event.set()
            finally:
                self._writing = False
                for _, event in self._waiting:  # after a failure: nobody will write them
                    event.set()
                if self.failure is not None:
                    self._waiting = []
        if self.failure is not None:
            raise self.failure

    def _fail(self, exc: Exception) -> None:
        what = str(exc) if isinstance(exc, StoreWriteError) else f"{type(exc).__name__}: {exc}"
        self.failure = StoreError(
            f"{what}: cannot record the answers bought, so "
            "nothing more is sent; fix that, then run the same command again: it resumes "
            "and pays again at most for the requests that were in flight"
        )
        if self._on_failure is not None:
            self._on_failure(self.failure)

    async def flush(self) -> None:
        sent, self._sent = self._sent, []
        if sent and self.failure is None:
            try:
                await anyio.to_thread.run_sync(self._write, sent, [])
            except Exception as exc:
                self._fail(exc)

    def _write(self, sent: list[tuple[str, str, int, int]], responses: list[Response]) -> None:
        for request_id, provider, attempt, numbers in sent:
            self.store.log_sent(self.session, request_id, provider, attempt, numbers)
        if responses:
            self.store.commit(self.session, responses)
