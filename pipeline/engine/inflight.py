"""How many requests a lane keeps in flight: what its rate needs at the latency it measures.

Little's law: to send ``rate`` requests a second when each holds its slot for ``t``
seconds (the round trip and the commit of its answers), a lane needs ``rate x t`` slots.
Too few and the lane cannot reach its rate (8 slots at 400 ms carry 20 a second at
most, less the commit); too many and nothing is gained (the pacer spaces the sends
anyway) but what a kill -9 can make us pay twice grows, since that is what is in
flight. So the lane keeps ``ceil(rate x t90 x MARGIN) + 1`` slots: ``t90`` the 90th
percentile of the recent holds, the one extra for the request waiting on the pacer
for its turn, ``max_concurrency`` the ceiling. MARGIN is 2: a slot that is not free
when the pacer's turn comes loses that turn for good (the pacer never bursts to catch
up), and holds vary on a busy machine; at 1.3, single-number lanes at 300 ms reached
0.95-0.97 of their rate, at 2 they reach 0.99 while holding 18-20 of the 31 slots.
It also keeps the kill -9 bound within rate x latency x 2 + 2. It is recomputed at
every answer, so it grows as soon as latency does and shrinks when it falls.

Before any answer has been measured, ``INITIAL`` slots: the first answers size it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

import anyio

MARGIN = 2.0
INITIAL = 2
SAMPLES = 64


class InFlight:
    """Slots of a lane, sized from its rate and measured latency, at most ``ceiling``."""

    def __init__(self, ceiling: int, rate: Callable[[], float]) -> None:
        self.ceiling = ceiling
        self._rate = rate
        self.limit = min(ceiling, INITIAL)
        self.in_use = 0
        self.peak = 0
        """The most slots held at once: the kill -9 bound this lane actually had."""
        self._holds: deque[float] = deque(maxlen=SAMPLES)
        self._freed = anyio.Event()

    async def acquire(self) -> None:
        """Wait for a free slot (cancellable: nothing is held until it returns)."""
        while self.in_use >= self.limit:
            await self._freed.wait()
        self.in_use += 1
        self.peak = max(self.peak, self.in_use)

    def release(self, held_s: float | None = None) -> None:
        """Give a slot back; ``held_s``: how long a request held it (None: not sent)."""
        self.in_use -= 1
        if held_s is not None:
            self._holds.append(held_s)
            self.limit = self.needed()
        self._freed.set()
        self._freed = anyio.Event()

    def needed(self) -> int:
        """Slots for the lane's rate at the 90th percentile of the measured holds."""
        if not self._holds:
            return min(self.ceiling, INITIAL)
        ordered = sorted(self._holds)
        t90 = ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]
        wanted = math.ceil(self._rate() * t90 * MARGIN) + 1
        return max(1, min(self.ceiling, wanted))
