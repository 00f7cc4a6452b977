"""The lanes' way into the ledger: writes run on one worker thread, off the event loop.

A commit is awaited (a key's ticket is only settled once its answer is on disk);
the note that a request is about to go out is not: it rides along with the next
commit, so sending never waits behind a write. Those notes exist to show, after a
crash, which requests were in flight; the ledger files them with INSERT OR IGNORE,
so a note that lands after its own response changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import anyio.to_thread

from pipeline.ledger import Answer, Ledger, RequestLog


class LedgerSink:
    """Serialised, thread-offloaded writes of one run's session."""

    def __init__(self, ledger: Ledger, run_id: str, session: int) -> None:
        self.ledger = ledger
        self.run_id = run_id
        self.session = session
        self._limiter = anyio.CapacityLimiter(1)
        self._sent: list[tuple[str, str, int, int]] = []

    def log_sent(self, request_id: str, provider: str, attempt: int, numbers: int) -> None:
        self._sent.append((request_id, provider, attempt, numbers))

    async def commit(self, log: RequestLog, answers: Sequence[Answer]) -> None:
        sent, self._sent = self._sent, []
        await anyio.to_thread.run_sync(self._write, sent, log, answers, limiter=self._limiter)

    async def flush(self) -> None:
        sent, self._sent = self._sent, []
        if sent:
            await anyio.to_thread.run_sync(self._write, sent, None, (), limiter=self._limiter)

    def _write(
        self,
        sent: list[tuple[str, str, int, int]],
        log: RequestLog | None,
        answers: Sequence[Answer],
    ) -> None:
        for request_id, provider, attempt, numbers in sent:
            self.ledger.log_sent(request_id, provider, self.run_id, self.session, attempt, numbers)
        if log is not None:
            self.ledger.commit(log, answers, self.run_id, self.session)
