"""The cascade's middle step: phones found by stage 1 become the rows' phones.

A provider that appends phones (:attr:`Provider.appends_phone`, phone enrichment)
answers in stage 1; its column is normalized like an input phone, and where the
result is valid it replaces the row's phone columns, with ``phone_source =
appended``, so stage 2's providers look the appended phone up in the same run. An
answer from the store (the cache, an earlier session) is appended the same way as a
fresh one: the output stays a function of (input, store).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from pipeline.normalize import PHONE_COLUMNS, PHONE_SOURCE_TYPE, normalize_phones
from pipeline.providers.base import Provider

_FOUND = "__pe_found"


def with_appended_phones(
    batch: pl.DataFrame, providers: Sequence[Provider], regions: tuple[str, ...]
) -> pl.DataFrame:
    """``batch`` (with stage 1's columns) with each appending provider's valid phones
    in its phone columns, in provider order (a later provider's phone wins)."""
    for provider in providers:
        if provider.appends_phone is not None:
            batch = _appended(batch, f"{provider.prefix}_{provider.appends_phone}", regions)
    return batch


def _appended(batch: pl.DataFrame, column: str, regions: tuple[str, ...]) -> pl.DataFrame:
    if batch.get_column(column).null_count() == batch.height:
        return batch  # nothing found in this batch
    found = (
        pl.DataFrame({_FOUND: batch.get_column(column)})
        .lazy()
        .pipe(normalize_phones, _FOUND, regions)
        .collect(engine="in-memory")
    )
    use = found["phone_valid"].fill_null(False)
    if not use.any():
        return batch
    updates = [
        pl.when(use).then(found[name]).otherwise(batch[name]).alias(name)
        for name in PHONE_COLUMNS
        if name != "phone_source"
    ]
    appended = pl.lit("appended", dtype=PHONE_SOURCE_TYPE)
    source = pl.when(use).then(appended).otherwise(batch["phone_source"])
    return batch.with_columns(*updates, source.alias("phone_source"))
