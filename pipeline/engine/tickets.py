"""How keys travel through a lane: a :class:`Ticket` per submission (done once every
key is committed or dropped), segments of submissions in the lane's queue, and
:class:`Batch`es of segments going out in one request."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field


class Ticket:
    """Keys submitted together; its future is done once every one is committed or dropped."""

    def __init__(self, count: int, provider: str | None = None) -> None:
        self.remaining = count
        self.queued = count
        """Of its keys, how many still wait in the lane's queue (not yet in a request)."""
        self.provider = provider
        """The lane it was submitted to (None: a ticket settled at once)."""
        self.future: Future[None] = Future()
        if count == 0:
            self.future.set_result(None)

    def settle(self, count: int) -> None:
        self.remaining -= count
        if self.remaining <= 0 and not self.future.done():
            self.future.set_result(None)


@dataclass
class Batch:
    """Keys going out in one request, their first rows, and whose tickets they are."""

    keys: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    carry: list[str | None] = field(default_factory=list)
    parts: list[tuple[Ticket, int]] = field(default_factory=list)
    spent: int = 0
    """Credits charged for answers of earlier attempts that could not be used."""

    def settle(self) -> None:
        for ticket, count in self.parts:
            ticket.settle(count)

    def halves(self) -> tuple[Batch, Batch]:
        middle = len(self.keys) // 2
        first, second = (
            Batch(self.keys[:middle], self.rows[:middle], self.carry[:middle], spent=self.spent),
            Batch(self.keys[middle:], self.rows[middle:], self.carry[middle:]),
        )
        left = middle
        for ticket, count in self.parts:
            take = min(left, count)
            if take:
                first.parts.append((ticket, take))
            if count - take:
                second.parts.append((ticket, count - take))
            left -= take
        return first, second


@dataclass
class Segment:
    keys: list[str]
    rows: list[int]
    carry: list[str | None]
    ticket: Ticket
    start: int = 0
