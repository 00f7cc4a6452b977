"""Map a function over an iterator on a few threads, keeping order, bounded ahead.

Parsing and normalizing a batch is polars work that releases the GIL, so two
threads use both cores even on batches too small for polars to split. At most
``depth`` results wait at any time, which bounds memory; an exception in a worker
is re-raised when its result's turn comes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(
    fn: Callable[[T], R], items: Iterator[T], workers: int = 2, depth: int = 4
) -> Iterator[R]:
    """Yield ``fn(item)`` for each item, in order, computed up to ``depth`` items ahead."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="phone-enrich") as pool:
        pending: deque[Future[R]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= depth:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
