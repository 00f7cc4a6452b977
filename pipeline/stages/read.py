"""The read stage: the input, batch by batch, normalized, each row with its trace id.

Batches are parsed and normalized on reader threads (:func:`iter_batches`); every
batch first checks that the input is still the file the run fingerprinted, so a file
replaced under a run stops the buying at the next batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl

from pipeline.columns import missing_column
from pipeline.config import Config
from pipeline.consent_dates import ConsentDates
from pipeline.errors import InputError
from pipeline.io.changes import FileIdentity, check_unchanged
from pipeline.io.reader import ROW_NUMBER, InputFile, iter_batches
from pipeline.normalize import normalize_phones
from pipeline.providers.base import Provider
from pipeline.run_state import RunState
from pipeline.stages.answer_columns import CREDITS_TOTAL
from pipeline.stages.write import added_columns
from pipeline.trace import trace_id_expr

Transform = Callable[[pl.LazyFrame], pl.LazyFrame]


def normalizer(config: Config) -> Transform:
    """Per-batch work that does not depend on where the batch sits in the file (the
    consent dates it has read are kept for the next batches: the same dates)."""

    column = config.input.consent_date_column
    dates = ConsentDates(column) if column else None

    def transform(frame: pl.LazyFrame) -> pl.LazyFrame:
        frame = normalize_phones(frame, config.input.phone_column, config.normalize.regions)
        if dates is not None:
            frame = dates.add(frame)
        return frame.with_columns(pl.lit(0, dtype=pl.Int64).alias(CREDITS_TOTAL))

    return transform


def check_columns(config: Config, source: InputFile, providers: list[Provider]) -> None:
    """The configured columns are in the input, and none of ours is already there."""
    wanted = {
        "input.phone_column": config.input.phone_column,
        "input.id_column": config.input.id_column,
        "input.consent_date_column": config.input.consent_date_column,
    }
    for key, column in wanted.items():
        if column is not None and column not in source.columns:
            raise missing_column(column, key, source.columns, where=str(source.path))
    clashes = [c for c in added_columns(config, providers) if c in source.columns]
    if clashes:
        raise InputError(
            f"{source.path}: already has column {clashes[0]!r}, which the output adds "
            "(is this a phone-enrich output?); rename or drop it"
        )


class ReadStage:
    def __init__(
        self, config: Config, source: InputFile, seen: FileIdentity | None, state: RunState
    ) -> None:
        self._config = config
        self._state = state
        self._source = source
        self._seen = seen
        self.transform = normalizer(config)

    def check_unchanged(self) -> None:
        """InputError if the input is no longer the file the run began with."""
        check_unchanged(Path(self._config.input.path), self._seen)

    def batches(self) -> Iterator[pl.DataFrame]:
        # Trace ids before the lookups: a provider may send one (phone enrichment's
        # record_id when the input has no id column).
        trace = trace_id_expr(self._source.fingerprint, ROW_NUMBER)
        for batch in iter_batches(self._source, self.transform, self._config.run.batch_rows):
            self.check_unchanged()  # stop buying early
            self._state.rows_read += batch.height
            yield batch.with_columns(trace)
        self._state.read_done = True
