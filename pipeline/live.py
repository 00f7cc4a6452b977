"""A running session's progress, from what its stages and lanes have counted.

Lookups move as answers are recorded (the sink counts them), not when a batch is
merged, so the figures move from the first seconds on; the total is projected from
the rows planned so far onto the input's row count, exact once the input is read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.engine.budget import Budget
from pipeline.progress import LaneProgress, Progress, RateMeter, RowCount, eta, projected, slowest
from pipeline.run_state import RunState

if TYPE_CHECKING:
    from pipeline.engine.engine import Engine


class LiveProgress:
    def __init__(
        self, state: RunState, budget: Budget, rows: RowCount, prices: dict[str, int]
    ) -> None:
        self._state = state
        self._prices = prices
        """Per provider: the most a lookup can cost."""
        self._budget = budget
        self._rows = rows
        self._meter = RateMeter()
        self.engine: Engine | None = None

    def snapshot(self) -> Progress:
        state = self._state
        if state.read_done:
            self._rows.read_all(state.rows_read)
        lanes = {name: self._lane(name) for name in state.providers}
        etas = [lane.eta_s for lane in lanes.values()]
        if not lanes and self._rows.value:
            rate = self._meter.rate("rows", state.phones.rows)
            etas = [eta(state.phones.rows, self._rows.value, rate)]
        engine = self.engine
        return Progress(
            rows=state.phones.rows,
            elapsed_s=state.elapsed_s,
            requests=sum(lane.pacer.sent for lane in engine.lanes.values()) if engine else 0,
            credits=self._budget.spent,
            failed=state.failed_rows,
            rows_total=self._rows.value,
            rows_exact=self._rows.exact,
            providers=lanes,
            eta_s=slowest(etas),
            session_credits=sum(lane.credits for lane in lanes.values()),
            max_credits=self._budget.cap,
            estimated_credits=self._estimate(lanes),
        )

    def _estimate(self, lanes: dict[str, LaneProgress]) -> int | None:
        """What this session's purchases will cost at most, over the whole input: each
        lane's share bought so far, projected like its lookups."""
        total = 0
        for name, lane in lanes.items():
            plan = self._state.plans[name]
            if lane.total is None or not plan.keys:
                return None
            total += round(plan.bought * lane.total / plan.keys) * self._prices.get(name, 1)
        return total if lanes else None

    def _lane(self, name: str) -> LaneProgress:
        plan = self._state.plans[name]
        recorded = self.engine.recorded(name) if self.engine is not None else None
        bought = recorded.keys if recorded is not None else 0
        done = plan.known + min(bought, plan.bought)
        total = projected(plan.keys, plan.rows, self._rows.value, self._state.read_done)
        rate = self._meter.rate(name, done)
        return LaneProgress(
            done=done,
            total=total,
            requests=recorded.requests if recorded else 0,
            retries=recorded.retries if recorded else 0,
            http_429=recorded.http_429 if recorded else 0,
            credits=recorded.credits if recorded else 0,
            rate_per_s=rate,
            eta_s=eta(done, total, rate),
        )
