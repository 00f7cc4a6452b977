"""A lookup stage: which lookups a batch needs from its providers, buying the ones
nothing answers yet, and the batch with those providers' columns once answered.

A row's lookup key comes from its provider (:meth:`Provider.lookups`). Within a batch
the keys are deduplicated, keeping the first row that asked (it will carry the
credits). A key is bought only when nothing can answer it already: a request for it
is under way in this session (that submission's ticket answers both), or the store
answers it (:meth:`AnswerStore.answered`: this run's answer, a failure of this very
session, or an earlier run's within the cache window). Batches are planned in input
order, on one thread per stage, so "first row" means the first in the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from pipeline.engine.tickets import Ticket
from pipeline.io.reader import ROW_NUMBER as ROW
from pipeline.providers.base import Provider
from pipeline.run_state import RunState
from pipeline.stages.answer_columns import CREDITS_TOTAL, KEY, REFUSED, answer_columns
from pipeline.store.base import AnswerStore
from pipeline.store.records import Scope

if TYPE_CHECKING:
    from pipeline.engine.engine import Engine
    from pipeline.engine.lane import Lookup as Submission

_CARRY = "__pe_carry"
PRUNE_EVERY = 200_000
"""Rows between two clean-ups of the finished submissions this stage remembers."""


@dataclass(frozen=True)
class Share:
    """One provider's share of a batch: its key per row, and the submissions whose
    answers those keys wait for."""

    provider: Provider
    keys: pl.DataFrame
    """Per row, in batch order: ROW, KEY, REFUSED."""
    tickets: list[Ticket]


@dataclass(frozen=True)
class Pending:
    """A batch whose lookups are submitted, waiting for their answers."""

    batch: pl.DataFrame
    shares: list[Share]

    @property
    def tickets(self) -> list[Ticket]:
        return [ticket for share in self.shares for ticket in share.tickets]


class LookupStage:
    """The lookups of some providers, side by side, for batch after batch."""

    def __init__(
        self,
        providers: Sequence[Provider],
        store: AnswerStore,
        engine: Engine | None,
        scopes: dict[str, Scope],
        state: RunState,
    ) -> None:
        self.providers = list(providers)
        self._state = state
        self._store = store
        self._engine = engine
        self._scopes = scopes
        self._under_way: dict[str, dict[str, Ticket]] = {p.name: {} for p in providers}
        self._since_prune = 0

    def submit(self, batch: pl.DataFrame) -> Pending:
        """Plan ``batch``'s lookups and submit what must be bought."""
        shares = [self._submit_one(provider, batch) for provider in self.providers]
        self._since_prune += batch.height
        if self._since_prune >= PRUNE_EVERY:
            self._prune()
        return Pending(batch, shares)

    def merge(self, pending: Pending) -> pl.DataFrame:
        """The batch with every provider's columns, once its tickets are done."""
        state = self._state
        columns: list[pl.Series] = []
        credits = pl.col(CREDITS_TOTAL)
        for share in pending.shares:
            provider = share.provider
            scope = self._scopes[provider.name]
            unique = share.keys.get_column(KEY).drop_nulls().unique().to_list()
            answers = self._store.best(scope, unique) if unique else []
            if self._engine is not None:
                state.stops[provider.name] = self._engine.stopped(provider.name)
            added = answer_columns(
                provider, share.keys, answers, scope.run_id, state.stops[provider.name],
                state.tallies[provider.name],
            )  # fmt: skip
            columns.extend(added.get_columns())
            credits = credits + added.get_column(f"{provider.prefix}_credits")
        return pending.batch.with_columns(columns).with_columns(credits.alias(CREDITS_TOTAL))

    def _submit_one(self, provider: Provider, batch: pl.DataFrame) -> Share:
        asks = provider.lookups(batch.lazy())
        none = pl.lit(None, dtype=pl.String)
        keys = batch.select(
            ROW,
            asks.key.alias(KEY),
            (none if asks.refused is None else asks.refused).alias(REFUSED),
            (none if asks.carry is None else asks.carry).alias(_CARRY),
        )
        firsts = (  # rows are in input order: the first row's carry goes with the key
            keys.lazy()
            .filter(pl.col(KEY).is_not_null())
            .group_by(KEY, maintain_order=True)
            .agg(pl.col(ROW).first(), pl.col(_CARRY).first())
            .collect(engine="in-memory")
        )
        tickets = self._tickets(provider, firsts) if not firsts.is_empty() else []
        self._state.plans[provider.name].rows += batch.height
        return Share(provider, keys.drop(_CARRY), tickets)

    def _tickets(self, provider: Provider, firsts: pl.DataFrame) -> list[Ticket]:
        under_way = self._under_way[provider.name]
        waits: dict[int, Ticket] = {}
        fresh: list[Submission] = []
        for key, row, carry in firsts.iter_rows():
            ticket = under_way.get(key)
            if ticket is not None:
                waits[id(ticket)] = ticket
            else:
                fresh.append((key, row, carry))
        answered = self._store.answered(self._scopes[provider.name], [f[0] for f in fresh])
        to_buy = [lookup for lookup in fresh if lookup[0] not in answered]
        tally = self._state.plans[provider.name]
        tally.keys += firsts.height
        tally.known += firsts.height - len(to_buy)
        tally.bought += len(to_buy)
        if to_buy:
            assert self._engine is not None, "lookups to buy with no engine"
            ticket = self._engine.submit(provider.name, to_buy)
            waits[id(ticket)] = ticket
            for lookup in to_buy:
                under_way[lookup[0]] = ticket
        return list(waits.values())

    def _prune(self) -> None:
        """Forget finished submissions: their answers are in the store now."""
        self._since_prune = 0
        for name, under_way in self._under_way.items():
            self._under_way[name] = {k: t for k, t in under_way.items() if not t.future.done()}
