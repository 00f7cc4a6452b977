"""Plan each batch: which lookups each provider needs, and which of them must be bought.

A row's lookup key comes from its provider (:meth:`Provider.plan`). Within a batch
the keys are deduplicated, keeping the first row that asked (it will carry the
credits). A key is bought only when nothing can answer it already:

- a request for it is already under way in this session (the earlier submission's
  future answers both), or
- this run has its answer in the ledger (settled, or failed in this very session:
  a failure is retried by the next session or by ``retry``, never in a loop), or
- an earlier run answered it within the cache window.

Everything else is submitted to the engine. The planner runs on one thread, in
input order, so "first row" means the first in the file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from pipeline.engine.engine import Engine
from pipeline.engine.lane import Lookup, Ticket
from pipeline.io.reader import ROW_NUMBER
from pipeline.normalize import PHONE_COLUMNS, normalize_phones
from pipeline.providers.base import CARRY, KEY, REFUSED, Provider, carried
from pipeline.store.base import AnswerStore
from pipeline.store.records import Scope

PRUNE_EVERY = 200_000


@dataclass(frozen=True)
class RunContext:
    """Who is asking: the run, its session, and how far back the cache reaches."""

    run_id: str
    session: int
    cache_from: dict[str, float | None]
    """Per provider: answers of earlier runs fetched at or after this epoch are reused."""

    def scope(self, provider: Provider) -> Scope:
        """What the store is asked about ``provider``'s answers in this run."""
        return Scope(provider.name, provider.params(), self.run_id, self.session,
                     self.cache_from[provider.name])  # fmt: skip


@dataclass
class ProviderPlan:
    """One provider's share of a batch."""

    keys: pl.DataFrame
    """Per row: ROW_NUMBER, KEY, REFUSED, CARRY (in batch order)."""
    waits: list[Ticket]


@dataclass
class PlannedBatch:
    batch: pl.DataFrame
    plans: dict[str, ProviderPlan] = field(default_factory=dict)

    def tickets(self) -> list[Ticket]:
        """The submissions whose answers this batch needs."""
        return [ticket for plan in self.plans.values() for ticket in plan.waits]


class Planner:
    def __init__(
        self,
        providers: Sequence[Provider],
        store: AnswerStore,
        engine: Engine | None,
        context: RunContext,
        regions: tuple[str, ...] = ("US", "CA"),
    ) -> None:
        self.providers = list(providers)
        self.store = store
        self.engine = engine
        self.context = context
        self.regions = regions
        self._in_flight: dict[str, dict[str, Ticket]] = {p.name: {} for p in providers}
        self._since_prune = 0

    def plan(self, batch: pl.DataFrame) -> PlannedBatch:
        planned = PlannedBatch(batch)
        for provider in self.providers:
            plan = self._plan_one(provider, planned.batch)
            planned.plans[provider.name] = plan
            if provider.appends_phone is not None:
                planned.batch = self._with_appended_phones(provider, plan, planned.batch)
        self._since_prune += batch.height
        if self._since_prune >= PRUNE_EVERY:
            self._prune()
        return planned

    def _plan_one(self, provider: Provider, batch: pl.DataFrame) -> ProviderPlan:
        planned = provider.plan(batch.lazy())
        keys = planned.select(ROW_NUMBER, KEY, REFUSED, carried(planned)).collect(
            engine="in-memory"
        )
        firsts = (  # rows are in input order: the first row's carry goes with the key
            keys.lazy()
            .filter(pl.col(KEY).is_not_null())
            .group_by(KEY, maintain_order=True)
            .agg(pl.col(ROW_NUMBER).first(), pl.col(CARRY).first())
            .collect(engine="in-memory")
        )
        plan = ProviderPlan(keys, [])
        if firsts.is_empty():
            return plan
        in_flight = self._in_flight[provider.name]
        waits: dict[int, Ticket] = {}
        unknown: list[str] = []
        first_rows: dict[str, tuple[int, str | None]] = {}
        for key, row, carry in firsts.iter_rows():
            ticket = in_flight.get(key)
            if ticket is not None:
                waits[id(ticket)] = ticket
            else:
                unknown.append(key)
                first_rows[key] = (row, carry)
        known = self._answered(provider, unknown)
        new: list[Lookup] = []
        for key in unknown:
            if key not in known:
                row, carry = first_rows[key]
                new.append((key, row, carry))
        if new:
            assert self.engine is not None
            ticket = self.engine.submit(provider.name, new)
            waits[id(ticket)] = ticket
            for lookup in new:
                in_flight[lookup[0]] = ticket
        plan.waits = list(waits.values())
        return plan

    def _with_appended_phones(
        self, provider: Provider, plan: ProviderPlan, batch: pl.DataFrame
    ) -> pl.DataFrame:
        """The cascade: wait for the phones ``provider`` finds for this batch, normalize
        them, and put the valid ones in the row's phone columns (``phone_source =
        appended``), so the providers planned after it look them up in the same run.

        Answers already in the ledger (the cache, an earlier session of this run) are
        appended the same way as fresh ones: the output is a function of (input, ledger).
        """
        if plan.keys.get_column(KEY).null_count() == plan.keys.height:
            return batch  # no row of this batch asks this provider
        engine = self.engine
        for ticket in plan.waits:
            while not ticket.future.done() and engine is not None and engine.alive:
                engine.flush_through(ticket)
                with contextlib.suppress(TimeoutError):
                    ticket.future.result(timeout=0.2)
        from pipeline.merge import provider_columns  # merge imports this module

        column = f"{provider.prefix}_{provider.appends_phone}"
        found = provider_columns(provider, plan.keys, self.store, self.context, None)
        appended = (
            pl.DataFrame({"__pe_found": found[column]})
            .lazy()
            .pipe(normalize_phones, "__pe_found", self.regions)
            .collect(engine="in-memory")
        )
        use = appended["phone_valid"].fill_null(False)
        if not use.any():
            return batch
        updates = [
            pl.when(use).then(appended[name]).otherwise(batch[name]).alias(name)
            for name in PHONE_COLUMNS
            if name != "phone_source"
        ]
        source = pl.when(use).then(pl.lit("appended")).otherwise(batch["phone_source"])
        return batch.with_columns(*updates, source.alias("phone_source"))

    def _answered(self, provider: Provider, keys: list[str]) -> set[str]:
        """Keys the store already answers for this run (see the module docstring)."""
        return self.store.answered(self.context.scope(provider), keys)

    def _prune(self) -> None:
        """Forget finished submissions: their answers are in the ledger now."""
        self._since_prune = 0
        for name, in_flight in self._in_flight.items():
            self._in_flight[name] = {k: t for k, t in in_flight.items() if not t.future.done()}
