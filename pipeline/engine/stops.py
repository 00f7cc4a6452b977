"""Why a lane stopped sending: typed, so what follows from it is decided by kind, never
by reading a message.

A lane stops for the rest of its session when the budget is spent, when the provider
refuses our key or our quota, when answers can no longer be recorded, or when the run
is asked to stop (a signal, an input that changed). Rows whose lookups were never sent
end as ``skipped_budget`` after a budget stop, ``failed`` after any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class StopKind(StrEnum):
    BUDGET = "budget"
    """``max_credits`` reached: raise it (``--max-credits``) and run again."""
    REFUSED = "refused"
    """The provider refused the key, the account or the endpoint (401/403/402/404...)."""
    STORE = "store"
    """Answers could not be recorded (disk full, store gone)."""
    INTERRUPTED = "interrupted"
    """The run was asked to stop (SIGINT/SIGTERM) or ended by an error elsewhere."""


@dataclass(frozen=True)
class StopReason:
    kind: StopKind
    message: str
    """One line for people: what happened, with the figures that matter."""

    def __str__(self) -> str:
        return self.message

    @property
    def unsent_status(self) -> str:
        """The status of a row whose lookup this stop kept from being sent."""
        return "skipped_budget" if self.kind is StopKind.BUDGET else "failed"

    @classmethod
    def budget(cls, message: str) -> StopReason:
        return cls(StopKind.BUDGET, message)

    @classmethod
    def refused(cls, message: str) -> StopReason:
        return cls(StopKind.REFUSED, message)

    @classmethod
    def store(cls, message: str) -> StopReason:
        return cls(StopKind.STORE, message)

    @classmethod
    def interrupted(cls, message: str) -> StopReason:
        return cls(StopKind.INTERRUPTED, message)
