"""When a lane may send its next request: even spacing, a rolling-window guard, 429s.

*Spacing.* Requests leave at a fixed interval, so whatever window the provider
measures by (second, minute, rolling) sees the configured rate and never a burst.
Slots follow an ideal schedule: a send that the event loop makes a little late
does not push every later slot back, and an idle lane earns no credit for a burst.
The interval carries a small headroom (1% by default): spacing alone, at exactly
the limit, lets a few milliseconds of jitter put limit + 1 requests in one window.

*Guard.* At most ``limit`` requests may be counted within any ``window_s``. A
request counts from the moment it is sent until ``window_s`` after its *response*
arrived: the provider stamps it on arrival, which is certainly no later than its
response, so this count can never be lower than the provider's. Requests still in
flight count too. This bounds the window even when spacing slips (a stalled loop,
a burst of retries), at the cost of ``latency / window_s`` of throughput at most.

*Backoff.* A 429 pauses the lane until its Retry-After and cuts the rate
(multiplicative decrease); each answered request earns a little of it back
(additive increase), never above the configured rate. One cut per round trip: the
requests already in flight when the rate was cut were sent at the old rate, so their
429s say nothing new and do not cut it again (as TCP counts one loss per window).
Without that, eight requests in flight that hit a full window cut the rate eight
times over (x0.9**8 = 0.43). A provider that sends no Retry-After (TDG) gets a pause
of 0.5 s, doubling (up to 30 s) with each cut while nothing is answered: a rolling
window stays full for a while after it is hit, and probing it at the lane's pace
would cut the rate on every round trip until it emptied. Providers
that publish their limit rarely see a 429; those that hide it (TDG) settle just
under it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable

import anyio

Clock = Callable[[], float]


class Pacer:
    """Hands out send slots for one lane; ``acquire`` before sending, ``release`` after."""

    def __init__(
        self,
        requests_per_minute: float,
        *,
        window_s: float = 60.0,
        headroom: float = 0.01,
        decrease: float = 0.7,
        increase: float = 0.02,
        floor: float = 0.02,
        pause_s: float = 0.5,
        pause_cap_s: float = 30.0,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.max_rate = requests_per_minute / 60.0 * (1.0 - headroom)
        self.rate = self.max_rate
        self.limit = max(1, int(requests_per_minute * window_s / 60.0))
        self.window_s = window_s
        self._decrease = decrease
        self._increase = increase * self.max_rate
        self._floor = floor * self.max_rate
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._paused_until = 0.0
        self._answered: deque[float] = deque()  # response times within the window
        self._in_flight = 0
        self._completed = 0
        self._recovering_until = 0  # a 429 of a request sent before this count: no cut
        self._pause_s = pause_s
        self._pause_cap_s = pause_cap_s
        self._streak = 0  # cuts since the last answered request
        self._lock = anyio.Lock()
        self._released = anyio.Event()
        self.sent = 0
        self.throttled = 0

    @property
    def paused_until(self) -> float:
        """The clock time before which no request leaves (after a 429)."""
        return self._paused_until

    def _guard_free_at(self, now: float) -> float | None:
        """When the rolling guard allows another send; None: wait for a response."""
        while self._answered and self._answered[0] <= now - self.window_s:
            self._answered.popleft()
        counted = len(self._answered) + self._in_flight
        if counted < self.limit:
            return now
        excess = counted - self.limit  # the oldest (excess + 1) must leave the window
        if excess < len(self._answered):
            return self._answered[excess] + self.window_s
        return None

    async def acquire(self) -> None:
        """Wait for this lane's next slot, then count one request as in flight."""
        async with self._lock:
            while True:
                now = self._clock()
                guard = self._guard_free_at(now)
                if guard is None:
                    self._released = anyio.Event()
                    await self._released.wait()
                    continue
                slot = max(self._next, self._paused_until, guard, now)
                if slot > now:
                    await self._sleep(slot - now)
                    now = self._clock()
                    guard = self._guard_free_at(now)
                    if self._paused_until > slot or guard is None or guard > now:
                        continue  # a 429 or the guard moved the goalposts while we slept
                # The next slot counts from when this request really leaves: a sleep that
                # overran (a busy machine) must not bring the next one closer than the
                # interval, or the provider's window sees two requests one interval apart
                # less the overrun.
                self._next = max(slot, now) + 1.0 / self.rate
                self._in_flight += 1
                self.sent += 1
                return

    def release(self, *, answered: bool) -> None:
        """The request's response arrived (or it failed without one)."""
        self._in_flight -= 1
        self._completed += 1
        self._answered.append(self._clock())
        if answered:
            self._streak = 0
        if answered and self.rate < self.max_rate:
            self.rate = min(self.max_rate, self.rate + self._increase)
        self._released.set()

    def throttle(self, retry_after: float | None) -> None:
        """The provider said 429 (after ``release``): pause the lane and slow down."""
        self.throttled += 1
        now = self._clock()
        # Requests complete roughly in the order they were sent: while fewer have
        # completed than had been sent at the last cut, this 429 is one of those.
        if self._completed > self._recovering_until:
            self.rate = max(self._floor, self.rate * self._decrease)
            self._recovering_until = self.sent
            self._streak += 1
        if retry_after is not None:
            pause = retry_after
        else:  # the provider does not say: 0.5 s, doubling while nothing is answered
            pause = min(self._pause_cap_s, self._pause_s * 2 ** max(0, self._streak - 1))
        self._paused_until = max(self._paused_until, now + pause)
        self._next = max(self._next, self._paused_until)
