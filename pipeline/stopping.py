"""A request to stop a run, from a signal handler (or a test), safe across threads.

The run's stages look at it where they wait (a wait for answers, the reader
between batches) and the engine is told at once through a callback, so every lane
stops sending the moment the request is made, whatever thread is busy elsewhere.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pipeline.errors import Interrupted


class StopRequest:
    """Set once; ``reason`` says why (e.g. ``SIGTERM``)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[str], None]] = []
        self.reason: str | None = None

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self, reason: str) -> None:
        """Ask the run to stop; the first reason given is the one kept."""
        with self._lock:
            if self._event.is_set():
                return
            self.reason = reason
            self._event.set()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback(reason)

    def check(self) -> None:
        """Raise :class:`Interrupted` if a stop was requested."""
        if self._event.is_set():
            raise Interrupted(self.reason or "stopped")

    @contextmanager
    def calling(self, callback: Callable[[str], None]) -> Iterator[None]:
        """Call ``callback(reason)`` when a stop is requested during the block (at once
        if one already was)."""
        with self._lock:
            self._callbacks.append(callback)
            already = self.reason if self._event.is_set() else None
        try:
            if already is not None:
                callback(already)
            yield
        finally:
            with self._lock:
                self._callbacks.remove(callback)
