"""Consent dates read once per run: each distinct cell of the file is read the first
time a batch holds it, then looked up.

A file's consent dates are days in a few formats: some thousands of distinct cells,
nearly all of them in every batch of 100,000 rows. Reading each batch's distinct cells
anew (:func:`~pipeline.normalize.normalize_consent_dates`: the distinct cells, their
dates, a join back) cost 2-3x what is done here: every row is looked up among the
cells already read (one join), and only the cells not there yet are read and kept.
What is kept is bounded (:data:`KEPT_CELLS`): a file of ever new cells (timestamps,
say) is read batch by batch as before once it is full.
"""

from __future__ import annotations

import threading

import polars as pl

from pipeline.normalize import CONSENT_DATE_COLUMN, dates_of_cells, normalize_consent_dates

KEPT_CELLS = 200_000
"""Distinct cells kept, with their dates (a few MB)."""


_KNOWN = "__pe_known"


def _looked_up(cells: pl.LazyFrame, table: pl.DataFrame, column: str) -> pl.DataFrame:
    """``table``'s row for each of ``cells`` (in order; nulls where it has none)."""
    return cells.join(
        table.lazy(), on=column, how="left", maintain_order="left", nulls_equal=True
    ).collect()


class ConsentDates:
    """Adds ``consent_date_normalized`` to batches of one input, reading ``column``.

    The reader's threads share one: what one of them read, the other finds."""

    def __init__(self, column: str, kept: int = KEPT_CELLS) -> None:
        self._column = column
        self._kept = kept
        self._known: pl.DataFrame | None = None
        """Cells read so far (``column``, of the input's type), their dates, and a
        column of true (what a cell that is not there lacks)."""
        self._lock = threading.Lock()
        self._off = False
        """Set once the kept cells are full and a batch is mostly new cells: a file of
        ever new cells, read batch by batch from then on."""

    def add(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        """``frame`` with the column :func:`normalize_consent_dates` adds, the same."""
        column = self._column
        dtype = frame.collect_schema()[column]
        known = self._known
        if dtype.is_temporal() or self._off:
            return normalize_consent_dates(frame, column)
        if known is None or known.schema[column] != dtype:
            types: list[tuple[str, pl.DataType]] = [
                (column, dtype), (CONSENT_DATE_COLUMN, pl.String()), (_KNOWN, pl.Boolean()),
            ]  # fmt: skip
            known = pl.DataFrame(schema=types)
        # Every row looked up at once: one pass, where reading each batch's distinct
        # cells (unique, then a join) took two and the reading itself as much again.
        found = _looked_up(frame.select(column), known, column)
        missing = found[_KNOWN].is_null()
        if missing.any():
            cells = found.filter(missing).select(column).unique()
            read = dates_of_cells(cells.lazy(), column).collect()
            self._remember(read, share_new=int(missing.sum()) / max(1, found.height))
            later = _looked_up(found.lazy().select(column), read, column)[CONSENT_DATE_COLUMN]
            found = found.with_columns(pl.col(CONSENT_DATE_COLUMN).fill_null(later))
        return pl.concat([frame, found.lazy().select(CONSENT_DATE_COLUMN)], how="horizontal")

    def _remember(self, read: pl.DataFrame, share_new: float) -> None:
        column = self._column
        read = read.with_columns(pl.lit(True).alias(_KNOWN))
        with self._lock:
            known = self._known
            if known is None or known.schema != read.schema:
                self._known = read.head(self._kept)
            elif known.height < self._kept:
                # The other thread may have read some of them meanwhile: kept once.
                fresh = read.join(known, on=column, how="anti", nulls_equal=True)
                self._known = pl.concat([known, fresh.head(self._kept - known.height)])
            elif share_new > 0.5:
                self._off = True
