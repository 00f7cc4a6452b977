"""The write stage: every batch, in input order, into the output file, and the rows
whose lookups failed into ``failed_rows.csv``.

The output appears only once every row is written (:func:`write_batches` writes a
temp file and renames it), after a last check that the input did not change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl

from pipeline.config import Config
from pipeline.io.reader import ROW_NUMBER, InputFile, output_schema
from pipeline.io.writer import write_batches
from pipeline.normalize import CONSENT_DATE_COLUMN, PHONE_COLUMNS
from pipeline.providers.base import Provider
from pipeline.report import FailedRow, FailedRowsFile
from pipeline.run_state import RunState
from pipeline.stages.answer_columns import CREDITS_TOTAL, status_columns, text_columns
from pipeline.trace import TRACE_ID_COLUMN
from pipeline.verdict import REASONS_COLUMN, VERDICT_COLUMN, VERDICT_TYPE, judged

VERDICT_COLUMNS = (VERDICT_COLUMN, REASONS_COLUMN)


def added_columns(config: Config, providers: list[Provider]) -> list[str]:
    """The columns a run appends after the input's own, in output order."""
    columns = [TRACE_ID_COLUMN, *PHONE_COLUMNS]
    if config.input.consent_date_column:
        columns.append(CONSENT_DATE_COLUMN)
    for provider in providers:
        columns.extend(status_columns(provider))
    columns.append(CREDITS_TOTAL)
    columns.extend(VERDICT_COLUMNS)
    return columns


class WriteStage:
    def __init__(
        self,
        config: Config,
        source: InputFile,
        providers: list[Provider],
        failed_rows: FailedRowsFile,
    ) -> None:
        self._config = config
        self._source = source
        self._providers = providers
        self._failed_rows = failed_rows
        self._columns = [*source.columns, *added_columns(config, providers)]

    def schema(self, transform: Callable[[pl.LazyFrame], pl.LazyFrame]) -> pl.Schema:
        """The output's columns and types: the input's, ours, each provider's."""

        def with_providers(frame: pl.LazyFrame) -> pl.LazyFrame:
            empty = [
                pl.lit(None, dtype=dtype).alias(name)
                for provider in self._providers
                for name, dtype in status_columns(provider).items()
            ]
            trace = pl.lit(None, dtype=pl.String).alias(TRACE_ID_COLUMN)  # from the read
            verdict = [
                pl.lit(None, dtype=VERDICT_TYPE).alias(VERDICT_COLUMN),
                pl.lit(None, dtype=pl.String).alias(REASONS_COLUMN),
            ]
            return transform(frame).with_columns(trace, *empty, *verdict).select(self._columns)

        return output_schema(self._source, with_providers)

    def write(
        self,
        schema: pl.Schema,
        batches: Callable[[], Iterator[pl.DataFrame]],
        state: RunState,
        before_commit: Callable[[], None],
    ) -> Path:
        """Write the output; count the rows' phones and failed lookups into ``state``."""
        consent = self._config.input.consent_date_column
        output = self._config.output_file

        def rows() -> Iterator[pl.DataFrame]:
            for merged in batches():
                batch, verdicts = judged(merged, self._config.verdict)
                state.verdicts.update(verdicts)
                state.phones.add(batch, consent)
                self._failed_rows.add(self._failures(batch))
                state.failed_rows = self._failed_rows.count
                yield batch.select(self._columns)

        safe = tuple(c for p in self._providers for c in text_columns(p))
        write_batches(output, schema, rows, safe_columns=safe, before_commit=before_commit)
        return output

    def _failures(self, batch: pl.DataFrame) -> list[FailedRow]:
        """The failed lookups, each with the row's id (``id_column``) and phone (E.164,
        else the input's text) so a person can find the row without the output."""
        id_column = self._config.input.id_column
        record = pl.col(id_column).cast(pl.String) if id_column else pl.lit(None, pl.String)
        raw = pl.col(self._config.input.phone_column).cast(pl.String)
        phone = pl.coalesce(pl.col("phone_e164"), raw).alias("__pe_phone")
        rows: list[FailedRow] = []
        for provider in self._providers:
            p = provider.prefix
            failed = batch.filter(pl.col(f"{p}_status") == "failed")
            rows.extend(
                (trace, row, record_id or "", number or "", provider.name, "failed", error or "")
                for trace, row, record_id, number, error in failed.select(
                    TRACE_ID_COLUMN, ROW_NUMBER, record.alias("__pe_id"), phone, f"{p}_error"
                ).iter_rows()
            )
        return rows
