"""What one session of a run has done so far: typed figures its stages fill in.

A :class:`RunState` is made when the session starts and handed to the stages; each
figure is written by one stage only (phones by the writer, a provider's tally by the
stage that merges that provider's answers, lane stops by whoever sees them), so no
lock is needed. The report (:mod:`pipeline.report`) is built from it once, at the end.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import polars as pl

from pipeline.engine.stops import StopReason
from pipeline.normalize import CONSENT_DATE_COLUMN

STATUSES = ("hit", "no_match", "invalid_input", "failed", "skipped_budget", "not_requested")
"""What a row's ``{p}_status`` can be."""


@dataclass
class PhoneTally:
    """What the rows' phones (and consent dates) were."""

    rows: int = 0
    valid: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    consent_dates: Counter[str] = field(default_factory=Counter)

    def add(self, batch: pl.DataFrame, consent_column: str | None) -> None:
        self.rows += batch.height
        self.valid += int(batch["phone_valid"].sum())
        for reason, count in batch["phone_reject_reason"].drop_nulls().value_counts().iter_rows():
            self.reasons[reason] += count
        if consent_column:
            read = int(batch[CONSENT_DATE_COLUMN].is_not_null().sum())
            # Blank or unreadable: only the cells that were not read (few) are looked at.
            unread = pl.col(consent_column).filter(pl.col(CONSENT_DATE_COLUMN).is_null())
            text = unread.cast(pl.String).str.strip_chars()
            blank = int(batch.select((text.is_null() | (text == "")).sum()).item())
            self.consent_dates.update(
                {"read": read, "blank": blank, "unreadable": batch.height - read - blank}
            )


@dataclass
class ProviderTally:
    """What the rows of one provider ended as."""

    rows: Counter[str] = field(default_factory=Counter)
    credits: int = 0
    cache_hits: int = 0
    duplicates: int = 0

    def by_status(self) -> dict[str, int]:
        return {s: self.rows.get(s, 0) for s in STATUSES}


@dataclass
class PlanTally:
    """What a lookup stage planned for one provider this session."""

    rows: int = 0
    """Rows planned (every row, whether it asks this provider or not)."""
    keys: int = 0
    """Lookups: the distinct keys of each batch."""
    known: int = 0
    """Of them, answered without buying: by the store (this run, the cache) or by a
    submission already under way."""
    bought: int = 0
    """Submitted to be bought."""


@dataclass
class RunState:
    """One session of a run, as it goes."""

    run_id: str
    session: int
    providers: list[str]
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    clock: float = field(default_factory=time.monotonic)
    phones: PhoneTally = field(default_factory=PhoneTally)
    tallies: dict[str, ProviderTally] = field(init=False)
    plans: dict[str, PlanTally] = field(init=False)
    stops: dict[str, StopReason | None] = field(init=False)
    """Per provider: why its lane stopped sending, once it did."""
    failed_rows: int = 0
    rows_read: int = 0
    read_done: bool = False
    """Every row of the input has been read (``rows_read`` is then its row count)."""
    verdicts: Counter[str] = field(default_factory=Counter)
    """The output's rows by ``contact_verdict`` (written by the write stage)."""

    def __post_init__(self) -> None:
        self.tallies = {name: ProviderTally() for name in self.providers}
        self.plans = {name: PlanTally() for name in self.providers}
        self.stops = dict.fromkeys(self.providers)

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.clock

    @property
    def credits(self) -> int:
        """Credits on this session's rows (this run's purchases, on the first row asking)."""
        return sum(t.credits for t in self.tallies.values())

    def lane_stops(self) -> list[str]:
        """``provider: why`` for each lane that stopped."""
        return [f"{name}: {why}" for name, why in self.stops.items() if why is not None]
