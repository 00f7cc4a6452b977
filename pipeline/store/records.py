"""What goes into the answer store and what comes out of it: typed rows, no positions.

Everything here is plain data, shared by every backend and by the code that asks
them (the planner, the merge, the report, ``status``, ``estimate``, ``retry``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple


class RunState(StrEnum):
    """Where a run stands in the store. Moves by :class:`AnswerStore`'s transitions:
    start -> running; finish -> finished; stop -> stopped; fail -> failed; resume ->
    running again (next session). A run killed outright stays ``running``: the lock
    tells whether a process still works on it."""

    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"


SETTLED = ("hit", "no_match", "invalid_input")
"""Lookup statuses that are answers (reusable across runs); ``failed`` is kept for the
run that had it (the report, ``retry``) and never reused."""

DAY_S = 86_400


def cache_window(reference: float | None, ttl_days: int) -> float | None:
    """The oldest fetch time an earlier run's answer may have to be reused by a run that
    started at ``reference`` (None: ``--no-cache``), ``ttl_days`` (0: no cache)."""
    if reference is None or ttl_days <= 0:
        return None
    return reference - ttl_days * DAY_S


@dataclass(frozen=True)
class RunRecord:
    """One run, as the store keeps it."""

    run_id: str
    job: str
    state: str
    session: int
    cache_cutoff: float | None
    """The run's start (the reference of every provider's cache window), None with
    ``--no-cache``."""
    started_at: float
    exit_code: int | None
    stop_reason: str | None
    config_path: str | None
    input_path: str
    output_path: str
    max_credits: int | None = None
    """The last ``--max-credits`` a session of the run was given (None: never one)."""


@dataclass(frozen=True)
class NewRun:
    """What :meth:`AnswerStore.start` records of a new run."""

    run_id: str
    job: str
    config_path: str | None
    input_path: str
    output_path: str
    cache_cutoff: float | None


@dataclass(frozen=True)
class Scope:
    """Who asks for answers of one provider: under which parameters (endpoint, account,
    options), for which run and session, and how far back earlier runs' answers count."""

    provider: str
    params: str
    run_id: str
    session: int
    cache_from: float | None
    """Earlier runs' settled answers fetched at or after this epoch count (None: none)."""


class BestAnswer(NamedTuple):
    """The answer a row with ``key`` is given (see :meth:`AnswerStore.best`)."""

    key: str
    run_id: str
    session: int
    status: str
    answer: str | None
    """JSON text of the provider's fields (None unless settled)."""
    error: str | None
    credits: int
    request_id: str | None
    first_row: int | None
    fetched_at: float


class Answer(NamedTuple):
    """A settled (or failed) lookup, ready to be committed (a tuple: thousands per response)."""

    key: str
    status: str
    answer: dict[str, Any] | str | None
    """The answer as a dict, or already encoded as JSON text."""
    error: str | None
    credits: int
    first_row: int


@dataclass(frozen=True)
class Columns:
    """Answers by column (a response carries up to a thousand; no object per answer)."""

    keys: list[str]
    statuses: list[str]
    answers: list[dict[str, Any] | str | None]
    errors: list[str | None]
    credits: list[int]
    first_rows: list[int]

    @classmethod
    def of(cls, answers: list[Answer]) -> Columns:
        if not answers:
            return cls([], [], [], [], [], [])
        keys, statuses, values, errors, credits, rows = map(list, zip(*answers, strict=True))
        return cls(keys, statuses, values, errors, credits, rows)

    @classmethod
    def failed(
        cls, keys: list[str], first_rows: list[int], reason: str, credits: int = 0
    ) -> Columns:
        """Every key failed; ``credits`` (charged for answers we could not use) go on the
        first."""
        count = len(keys)
        charged = [credits] + [0] * (count - 1) if count else []
        return cls(keys, ["failed"] * count, [None] * count, [reason] * count, charged,
                   first_rows)  # fmt: skip


@dataclass(frozen=True)
class RequestLog:
    """What one HTTP request did."""

    request_id: str
    provider: str
    attempt: int
    numbers: int
    sent_at: float
    http_status: int | None
    outcome: str
    credits: int
    latency_ms: float | None
    error: str | None
    unanswered: bool = False
    """Sent, and no HTTP answer came back: the provider may have charged for it."""


class Response(NamedTuple):
    """One response to record: its request line and its answers."""

    log: RequestLog
    columns: Columns


@dataclass(frozen=True)
class Session:
    """One session of one run, as the engine writes it: answers of each provider are
    filed under that provider's parameters (:meth:`Provider.params`)."""

    run_id: str
    number: int
    params: Mapping[str, str]

    def scope(self, provider: str, cache_from: float | None) -> Scope:
        return Scope(provider, self.params[provider], self.run_id, self.number, cache_from)


class RequestTotals(NamedTuple):
    """One run's requests of one provider."""

    requests: int
    retries: int
    http_429: int
    numbers: int
    """Numbers carried by requests that were answered."""
    credits: int
    """Credits the provider charged (every session)."""
    unanswered: int
    """Sent, and no HTTP answer came back (timed out, dropped, or in flight when a
    process ended): the provider may have charged for them. A connection that could not
    be made sent nothing and is not one."""
    unanswered_numbers: int


class FailureCount(NamedTuple):
    """How many of a run's lookups of ``provider`` failed with ``error``."""

    provider: str
    error: str
    lookups: int
