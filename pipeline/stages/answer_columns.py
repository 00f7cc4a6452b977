"""A provider's output columns for a batch, from the best answers the store has.

This is where "the output is a pure function of (input, store)" is kept: a row's
provider columns depend only on its lookup key and the best answer the store holds
for that key (:meth:`AnswerStore.best`), never on which request happened to carry it.
Credits land on the row that first asked for a lookup this run paid for; duplicates
and answers reused from earlier runs carry 0.
"""

from __future__ import annotations

import polars as pl

from pipeline.engine.stops import StopReason
from pipeline.io.reader import ROW_NUMBER as ROW
from pipeline.providers.base import Provider
from pipeline.run_state import ProviderTally
from pipeline.store.records import SETTLED, BestAnswer

CHECKED_AT_TYPE = pl.Datetime("ms", "UTC")
"""``{p}_checked_at``: when the row's answer was bought (an earlier run's, for an answer
from the cache), so a verdict shows how old its evidence is."""
CREDITS_TOTAL = "credits_total"
"""Every provider's credits on the row, summed."""
NOT_SENT = "not looked up: the run ended before this lookup was sent"
KEY = "__pe_key"
"""A row's lookup key (null: the row asks this provider nothing)."""
REFUSED = "__pe_refused"
"""Why a row is ``invalid_input`` before any call (null: it is not)."""
_CACHED = "__pe_cached"
_DUPE = "__pe_dupe"
_ANSWER_SCHEMA = {
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
        f"{p}_checked_at": CHECKED_AT_TYPE,
        **provider.answer_columns(),
    }


def text_columns(provider: Provider) -> list[str]:
    """Columns holding provider (or error) text: made formula-safe in CSV output."""
    return [name for name, dtype in status_columns(provider).items() if dtype == pl.String]


def answer_columns(
    provider: Provider,
    keys: pl.DataFrame,
    answers: list[BestAnswer],
    run_id: str,
    stopped: StopReason | None,
    tally: ProviderTally,
) -> pl.DataFrame:
    """``provider``'s columns for the rows of ``keys`` (ROW, KEY, REFUSED, in batch order),
    counted into ``tally``."""
    found_rows = pl.DataFrame(answers, schema=_ANSWER_SCHEMA, orient="row")
    joined = keys.join(found_rows, on=KEY, how="left", maintain_order="left")
    frame = joined.with_columns(*_status_exprs(provider, run_id, stopped))
    frame = _with_answer_fields(provider, frame)
    columns = frame.select(ROW, *status_columns(provider), _CACHED, _DUPE)
    _count(provider, columns, tally)
    return columns.drop(ROW, _CACHED, _DUPE)


def _status_exprs(provider: Provider, run_id: str, stopped: StopReason | None) -> list[pl.Expr]:
    p = provider.prefix
    unsent = stopped.unsent_status if stopped is not None else "failed"
    key, found, refused = pl.col(KEY), pl.col("__pe_status"), pl.col(REFUSED)
    status = (
        pl.when(refused.is_not_null()).then(pl.lit("invalid_input"))
        .when(key.is_null()).then(pl.lit("not_requested"))
        .when(found.is_null()).then(pl.lit(unsent))
        .otherwise(found)
    )  # fmt: skip
    error = (
        pl.when(refused.is_not_null()).then(refused)
        .when(key.is_null()).then(None)
        .when(found.is_null()).then(pl.lit(str(stopped) if stopped else NOT_SENT))
        .otherwise(pl.col("__pe_error"))
    )  # fmt: skip
    ours = pl.col("__pe_run") == pl.lit(run_id)
    first = pl.col(ROW) == pl.col("__pe_first")
    credits = pl.when(ours & first).then(pl.col("__pe_credits")).otherwise(0).fill_null(0)
    fetched_ms = (pl.col("__pe_fetched") * 1000).round(0).cast(pl.Int64)
    checked = pl.when(refused.is_null() & found.is_in(SETTLED)).then(fetched_ms)
    return [
        status.alias(f"{p}_status"),
        error.alias(f"{p}_error"),
        credits.cast(pl.Int64).alias(f"{p}_credits"),
        pl.col("__pe_request").alias(f"{p}_request_id"),
        checked.cast(CHECKED_AT_TYPE).alias(f"{p}_checked_at"),
        (found.is_in(SETTLED) & ~ours).alias(_CACHED),
        (ours & ~first & found.is_not_null()).alias(_DUPE),
    ]


def _with_answer_fields(provider: Provider, frame: pl.DataFrame) -> pl.DataFrame:
    """The answer's fields (JSON in the store) as typed columns, plus the derived ones."""
    p = provider.prefix
    key = pl.col(KEY)
    derived = provider.derived(key)
    conversions = provider.conversions()
    answer_fields = {
        provider.sources.get(name, name): conversions[name].stored if name in conversions else dtype
        for name, dtype in provider.fields.items()
        if name not in derived
    }
    settled = pl.col("__pe_status").is_in(["hit", "no_match"])
    decoded = pl.col("__pe_answer").str.json_decode(pl.Struct(answer_fields))
    frame = frame.with_columns(
        pl.when(settled).then(decoded).alias("__pe_decoded"),
        *[pl.when(key.is_not_null()).then(expr).alias(name) for name, expr in derived.items()],
    ).unnest("__pe_decoded")
    frame = frame.with_columns(
        how.convert(pl.col(source)).cast(provider.fields[name]).alias(source)
        for name, how in conversions.items()
        for source in [provider.sources.get(name, name)]
    )
    return frame.rename(
        {provider.sources.get(name, name) if name not in derived else name: f"{p}_{name}"
         for name in provider.fields}
    )  # fmt: skip


def _count(provider: Provider, columns: pl.DataFrame, tally: ProviderTally) -> None:
    p = provider.prefix
    for status, count in columns[f"{p}_status"].value_counts().iter_rows():
        tally.rows[status] += count
    tally.credits += int(columns[f"{p}_credits"].sum())
    tally.cache_hits += int(columns[_CACHED].sum())
    tally.duplicates += int(columns[_DUPE].sum())
