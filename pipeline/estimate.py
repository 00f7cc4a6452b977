"""``phone-enrich estimate``: what a run would do, without a single call.

It reads and normalizes the input as a run does, asks each provider for its lookup
keys, dedupes them over the whole file, and asks the answer store which are already
answered (this job's unfinished run, or the cache). What is left is what a run
would buy: requests (keys / batch size, rounded up per lane), credits (each key at
the most it can cost: exact for TCPA Authority, an upper bound where hits and
misses are priced differently) and the time at the configured rates.

Phones that the phone-enrichment provider will find are not known beforehand, so
the other providers' figures do not count them.

No API key is needed. Answers are filed under the account that bought them (a
fingerprint of its key), so a provider whose key is set is looked up as a run would;
one whose key is not set counts nothing as already answered (``key_missing``): its
figures are what a run would buy with an account that has no answers yet.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipeline.config import Config
from pipeline.io.reader import ROW_NUMBER, iter_batches, open_input
from pipeline.jobs import job_id
from pipeline.provider_config import has_api_key
from pipeline.providers import Provider, build_providers
from pipeline.stages.read import check_columns, normalizer
from pipeline.store import has_store, open_store
from pipeline.store.records import Scope, cache_window
from pipeline.trace import trace_id_expr

FIND_CHUNK = 50_000


@dataclass
class ProviderEstimate:
    rows_sent: int = 0
    """Rows with a lookup key (the rest are not_requested or refused up front)."""
    refused: int = 0
    unique_keys: int = 0
    cached: int = 0
    """Keys the ledger already answers (this job's run, or earlier runs within the TTL)."""
    to_buy: int = 0
    requests: int = 0
    credits: int = 0
    minutes: float = 0.0
    key_missing: str | None = None
    """The environment variable of a key that is not set: nothing counted as cached."""


@dataclass
class Estimate:
    rows: int = 0
    valid_phones: int = 0
    providers: dict[str, ProviderEstimate] = field(default_factory=dict)

    @property
    def credits(self) -> int:
        return sum(p.credits for p in self.providers.values())

    @property
    def minutes(self) -> float:
        """Lanes run side by side: the slowest one sets the time."""
        return max((p.minutes for p in self.providers.values()), default=0.0)


def estimate(config: Config, on_notice: Callable[[str], None] | None = None) -> Estimate:
    providers = build_providers(config, require_keys=False)
    state_dir = Path(config.run.state_dir)
    source = open_input(
        Path(config.input.path),
        config.input.encoding,
        state_dir / "tmp",
        config.input.encoding_errors,
    )
    try:
        check_columns(config, source, providers)
        result = Estimate(providers={p.name: ProviderEstimate() for p in providers})
        keys: dict[str, list[pl.Series]] = {p.name: [] for p in providers}
        transform = normalizer(config)
        trace = trace_id_expr(source.fingerprint, ROW_NUMBER)
        for batch in iter_batches(source, transform, config.run.batch_rows):
            batch = batch.with_columns(trace)
            result.rows += batch.height
            result.valid_phones += int(batch["phone_valid"].sum())
            for provider in providers:
                asks = provider.lookups(batch.lazy())
                figures = result.providers[provider.name]
                if asks.refused is not None:
                    figures.refused += int(batch.select(asks.refused.is_not_null().sum()).item())
                present = batch.select(asks.key).to_series().drop_nulls()
                figures.rows_sent += present.len()
                keys[provider.name].append(present.unique())
        _price(config, source_job=job_id(config, source, providers), providers=providers,
               keys=keys, result=result, on_notice=on_notice)  # fmt: skip
        return result
    finally:
        source.close()


def _price(
    config: Config,
    source_job: str,
    providers: list[Provider],
    keys: dict[str, list[pl.Series]],
    result: Estimate,
    on_notice: Callable[[str], None] | None,
) -> None:
    state_dir = Path(config.run.state_dir)
    store = open_store(state_dir, on_notice) if has_store(state_dir) else None
    try:
        unfinished = store.resumable_run(source_job) if store else None
        reference = unfinished.cache_cutoff if unfinished else time.time()
        run_id = unfinished.run_id if unfinished else "(estimate)"
        session = unfinished.session + 1 if unfinished else 1  # the session a run would be
        settings = config.providers.enabled()
        for provider in providers:
            figures = result.providers[provider.name]
            series = keys[provider.name]
            unique = pl.concat(series).unique() if series else pl.Series([], dtype=pl.String)
            figures.unique_keys = unique.len()
            cutoff = cache_window(reference, settings[provider.name].cache_ttl_days)
            scope = Scope(provider.name, provider.params(), run_id, session, cutoff)
            if not has_api_key(settings[provider.name]):
                figures.key_missing = settings[provider.name].api_key_env
            elif store is not None and figures.unique_keys:
                as_list = unique.to_list()
                for start in range(0, len(as_list), FIND_CHUNK):
                    chunk = as_list[start : start + FIND_CHUNK]
                    figures.cached += len(store.answered(scope, chunk))
            figures.to_buy = figures.unique_keys - figures.cached
            figures.requests = math.ceil(figures.to_buy / provider.batch_size)
            figures.credits = figures.to_buy * provider.max_credits_per_key()
            rpm = settings[provider.name].requests_per_minute
            figures.minutes = figures.requests / rpm
    finally:
        if store is not None:
            store.close()
