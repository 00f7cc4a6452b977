"""What every part of the store contract uses: a clock to move, records to commit."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.store.base import AnswerStore
from pipeline.store.records import Answer, Columns, NewRun, RequestLog, Response, Scope, Session

PROVIDER = "tdg_reverse_phone"
OTHER = "checkthatphone"
PARAMS = "v1"
RUN = "run-1"
EPOCH = 1_700_000_000.0


class FakeClock:
    """The store's clock in the contract: it moves only when a test moves it."""

    def __init__(self, now: float = EPOCH) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ContractBase:
    """A backend's test class provides ``store``: a new, empty store of that backend on
    ``clock`` (``tmp_path`` is there for a backend that keeps files)."""

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def store(self, clock: FakeClock, tmp_path: Path) -> Iterator[AnswerStore]:
        raise NotImplementedError("a backend's test class provides the store fixture")


def session(run_id: str = RUN, number: int = 1, params: str = PARAMS, *providers: str) -> Session:
    """A session filing every provider's answers under ``params``."""
    return Session(run_id, number, {name: params for name in (providers or (PROVIDER, OTHER))})


def scope(
    run_id: str = RUN,
    number: int = 1,
    cache_from: float | None = None,
    *,
    provider: str = PROVIDER,
    params: str = PARAMS,
) -> Scope:
    return Scope(provider, params, run_id, number, cache_from)


def new_run(run_id: str = RUN, job: str = "job-a", cache_cutoff: float | None = None) -> NewRun:
    return NewRun(run_id, job, "cfg.toml", "in.csv", "out.parquet", cache_cutoff)


def log(
    request_id: str | None = None,
    provider: str = PROVIDER,
    *,
    attempt: int = 1,
    numbers: int = 1,
    http_status: int | None = 200,
    outcome: str = "answered",
    credits: int = 0,
    error: str | None = None,
    sent_at: float = EPOCH,
) -> RequestLog:
    return RequestLog(request_id or uuid.uuid4().hex, provider, attempt, numbers, sent_at,
                      http_status, outcome, credits, 12.5, error)  # fmt: skip


def ans(
    key: str,
    status: str = "hit",
    answer: dict[str, Any] | None = None,
    *,
    error: str | None = None,
    credits: int = 1,
    first_row: int = 0,
) -> Answer:
    if answer is None and status == "hit":
        answer = {"name": f"owner of {key}"}
    return Answer(key, status, answer, error, credits, first_row)


def commit(store: AnswerStore, at: Session, request: RequestLog, answers: list[Answer]) -> None:
    """One response with its answers, in a transaction of its own."""
    store.commit(at, [Response(request, Columns.of(answers))])


def commit_one(
    store: AnswerStore,
    key: str,
    status: str = "hit",
    *,
    run_id: str = RUN,
    number: int = 1,
    provider: str = PROVIDER,
    params: str = PARAMS,
    answer: dict[str, Any] | None = None,
    credits: int = 1,
) -> str:
    """One answer of ``key`` in its own response; returns the request id."""
    request_id = uuid.uuid4().hex
    error = "boom" if status == "failed" else None
    commit(store, session(run_id, number, params, provider), log(request_id, provider),
           [ans(key, status, answer, error=error, credits=credits)])  # fmt: skip
    return request_id


def best_of(store: AnswerStore, asked: Scope, keys: list[str]) -> dict[str, tuple[Any, ...]]:
    """key -> (run, status, answer text) of the best answers."""
    return {b.key: (b.run_id, b.status, b.answer) for b in store.best(asked, keys)}


def counts(store: AnswerStore, run_id: str = RUN, provider: str = PROVIDER) -> tuple[int, int]:
    """(requests, lookups) of one run and provider."""
    lookups = store.lookup_counts(run_id, provider)
    return store.request_totals(run_id, provider).requests, sum(lookups.values())
