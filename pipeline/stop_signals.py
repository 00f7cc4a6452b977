"""SIGINT and SIGTERM for a command that runs a job: the job works on a thread, the
main thread listens (Python runs signal handlers on the main thread only)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import NoReturn, TypeVar

from pipeline.errors import EXIT_STOPPED
from pipeline.stopping import StopRequest

Result = TypeVar("Result")
HARD_STOP_S = 9.5
"""After the first SIGINT/SIGTERM, the process ends by this time whatever is still busy."""
SAME_PRESS_S = 0.5
"""A second signal sooner than this after the first is the same stop, not a second one."""


def stoppable(work: Callable[[StopRequest], Result]) -> Result:
    """Run ``work`` on a thread while this (main) thread handles SIGINT and SIGTERM.

    Python runs signal handlers on the main thread only, between bytecodes; a run's
    main thread would sit inside polars' writer for hours and never get to them. So the
    run goes on a worker thread and the main thread only waits and listens. The first
    signal asks the run to stop (every lane stops sending at once, answers in flight are
    recorded, exit 3); a second one, or the run not ending within ``HARD_STOP_S``, ends
    the process at once (still exit 3: what was recorded stays recorded).
    """
    stop = StopRequest()
    outcome: list[Result] = []
    failure: list[BaseException] = []
    deadline: list[float] = []

    def target() -> None:
        try:
            outcome.append(work(stop))
        except BaseException as exc:
            failure.append(exc)

    def handler(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        now = time.monotonic()
        if stop.requested:
            # One stop can arrive twice (coreutils `timeout` signals the child, then its
            # group): only a Ctrl-C pressed again, a moment later, ends at once.
            if signum == signal.SIGINT and now > deadline[0] - HARD_STOP_S + SAME_PRESS_S:
                end_now(f"{name} again: stopped at once; answers still in flight are lost")
            return
        deadline.append(now + HARD_STOP_S)
        stop.request(f"stopped by {name}")

    worker = threading.Thread(target=target, name="phone-enrich-run", daemon=True)
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        worker.start()
        while worker.is_alive():
            worker.join(0.1)
            if deadline and time.monotonic() > deadline[0] and worker.is_alive():
                end_now(f"{stop.reason}: the run did not end within {HARD_STOP_S:g}s; ended")
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    if failure:
        raise failure[0]
    return outcome[0]


def end_now(message: str) -> NoReturn:
    print(f"\nphone-enrich: {message}", file=sys.stderr, flush=True)
    os._exit(EXIT_STOPPED)  # the kernel releases the lock; the ledger keeps its commits
