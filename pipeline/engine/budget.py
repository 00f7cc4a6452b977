"""The credit cap (``run.max_credits``), shared by every lane of a run.

A lane reserves what a request can cost at most before it sends it and settles on
the answer (what was charged is spent, the rest goes back), all on the engine's one
event loop, so the cap holds however many requests are in flight. A run's spending
counts every session: a resumed run starts from what it already paid.
"""

from __future__ import annotations

from pipeline.engine.stops import StopReason


class Budget:
    def __init__(self, cap: int | None, spent: int = 0) -> None:
        self.cap = cap
        self.spent = spent
        self.reserved = 0

    def affordable(self, per_key: int, wanted: int) -> int:
        """How many of ``wanted`` keys costing at most ``per_key`` each may be sent now."""
        if self.cap is None or per_key <= 0:
            return wanted
        left = self.cap - self.spent - self.reserved
        return max(0, min(wanted, left // per_key))

    def reserve(self, amount: int) -> bool:
        if self.cap is not None and self.spent + self.reserved + amount > self.cap:
            return False
        self.reserved += amount
        return True

    def settle(self, reserved: int, charged: int) -> None:
        self.reserved -= reserved
        self.spent += charged

    def reason(self) -> StopReason:
        # No "N spent": requests in flight have not settled yet when a lane stops, and
        # the figure would disagree with the run's credits (the summary's budget line).
        return StopReason.budget(f"budget reached: max_credits {self.cap:,}")
