"""Join the ledger's answers back onto every row of a batch.

This is where "the output is a pure function of (input, ledger)" is kept: a row's
provider columns depend only on its key and what the ledger holds for that key
(:meth:`AnswerStore.best`), never on which request happened to carry it. Credits
land on the row that first asked for a lookup this run paid for; duplicates and
answers reused from earlier runs carry 0.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import polars as pl

from pipeline.engine.budget import BUDGET_REACHED
from pipeline.io.reader import ROW_NUMBER
from pipeline.plan import PlannedBatch, RunContext
from pipeline.providers.base import KEY, REFUSED, Provider
from pipeline.store.base import AnswerStore

STATUSES = ("hit", "no_match", "invalid_input", "failed", "skipped_budget", "not_requested")
NOT_SENT = "not looked up: the run ended before this lookup was sent"

_ANSWER_SCHEMA = {  # the fields of a BestAnswer, in order
    KEY: pl.String,
    "__pe_run": pl.String,
    "__pe_session": pl.Int64,
    "__pe_status": pl.String,
    "__pe_answer": pl.String,
    "__pe_error": pl.String,
    "__pe_credits": pl.Int64,
    "__pe_request": pl.String,
    "__pe_first": pl.Int64,
    "__pe_fetched": pl.Float64,
}


def status_columns(provider: Provider) -> dict[str, pl.DataType]:
    """Every output column of ``provider``, in order, with its type."""
    p = provider.prefix
    return {
        f"{p}_status": pl.String(),
        f"{p}_error": pl.String(),
        f"{p}_credits": pl.Int64(),
        f"{p}_request_id": pl.String(),
        **provider.answer_columns(),
    }


def text_columns(provider: Provider) -> list[str]:
    """Columns holding provider (or error) text: made formula-safe in CSV output."""
    return [name for name, dtype in status_columns(provider).items() if dtype == pl.String]


@dataclass
class ProviderTally:
    """What the rows of one provider ended as, for the report."""

    rows: Counter[str] = field(default_factory=Counter)
    credits: int = 0
    cache_hits: int = 0
    duplicates: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "rows": {s: self.rows.get(s, 0) for s in STATUSES},
            "credits": self.credits,
            "cache_hits": self.cache_hits,
            "duplicate_rows": self.duplicates,
        }


def merge(
    planned: PlannedBatch,
    providers: list[Provider],
    store: AnswerStore,
    context: RunContext,
    stopped: dict[str, str | None],
    tallies: dict[str, ProviderTally],
) -> pl.DataFrame:
    """``planned.batch`` with every provider's columns and ``credits_total`` filled in."""
    batch = planned.batch
    added: list[pl.Series] = []
    credits_total = pl.Series("credits_total", [0] * batch.height, dtype=pl.Int64)
    for provider in providers:
        plan = planned.plans[provider.name]
        columns = provider_columns(provider, plan.keys, store, context, stopped[provider.name])
        _tally(provider, columns, tallies[provider.name])
        credits_total = credits_total + columns[f"{provider.prefix}_credits"]
        added.extend(columns.drop(ROW_NUMBER, "__pe_cached", "__pe_dupe").get_columns())
    return batch.with_columns(*added, credits_total.alias("credits_total"))


def _answers(
    provider: Provider, keys: pl.Series, store: AnswerStore, ctx: RunContext
) -> pl.DataFrame:
    unique = keys.drop_nulls().unique().to_list()
    rows = store.best(ctx.scope(provider), unique) if unique else []
    return pl.DataFrame(rows, schema=_ANSWER_SCHEMA, orient="row")


def provider_columns(
    provider: Provider,
    keys: pl.DataFrame,
    store: AnswerStore,
    ctx: RunContext,
    stopped: str | None,
) -> pl.DataFrame:
    p = provider.prefix
    unsent = "skipped_budget" if (stopped or "").startswith(BUDGET_REACHED) else "failed"
    answers = _answers(provider, keys[KEY], store, ctx)
    joined = keys.join(answers, on=KEY, how="left", maintain_order="left")
    key = pl.col(KEY)
    found = pl.col("__pe_status")
    status = (
        pl.when(pl.col(REFUSED).is_not_null())
        .then(pl.lit("invalid_input"))
        .when(key.is_null())
        .then(pl.lit("not_requested"))
        .when(found.is_null())
        .then(pl.lit(unsent))
        .otherwise(found)
    )
    error = (
        pl.when(pl.col(REFUSED).is_not_null())
        .then(pl.col(REFUSED))
        .when(key.is_null())
        .then(None)
        .when(found.is_null())
        .then(pl.lit(stopped or NOT_SENT))
        .otherwise(pl.col("__pe_error"))
    )
    ours = pl.col("__pe_run") == pl.lit(ctx.run_id)
    first = pl.col(ROW_NUMBER) == pl.col("__pe_first")
    credits = pl.when(ours & first).then(pl.col("__pe_credits")).otherwise(0).fill_null(0)
    derived_names = provider.derived()
    answer_fields = {
        provider.sources.get(name, name): dtype
        for name, dtype in provider.fields.items()
        if name not in derived_names
    }
    decoded = pl.col("__pe_answer").str.json_decode(pl.Struct(answer_fields))
    settled = found.is_in(["hit", "no_match"])
    derived = [
        pl.when(key.is_not_null()).then(expr).alias(name)
        for name, expr in provider.derived().items()
    ]
    frame = joined.with_columns(
        status.alias(f"{p}_status"),
        error.alias(f"{p}_error"),
        credits.cast(pl.Int64).alias(f"{p}_credits"),
        pl.col("__pe_request").alias(f"{p}_request_id"),
        pl.when(settled).then(decoded).alias("__pe_decoded"),
        *derived,
        (found.is_in(["hit", "no_match", "invalid_input"]) & ~ours).alias("__pe_cached"),
        (ours & ~first & found.is_not_null()).alias("__pe_dupe"),
    ).unnest("__pe_decoded")
    frame = frame.rename(
        {provider.sources.get(name, name) if name not in derived_names else name: f"{p}_{name}"
         for name in provider.fields}
    )  # fmt: skip
    return frame.select(ROW_NUMBER, *status_columns(provider), "__pe_cached", "__pe_dupe")


def _tally(provider: Provider, columns: pl.DataFrame, tally: ProviderTally) -> None:
    p = provider.prefix
    for status, count in columns[f"{p}_status"].value_counts().iter_rows():
        tally.rows[status] += count
    tally.credits += int(columns[f"{p}_credits"].sum())
    tally.cache_hits += int(columns["__pe_cached"].sum())
    tally.duplicates += int(columns["__pe_dupe"].sum())
