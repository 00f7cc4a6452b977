"""Consent dates read once per run: each distinct cell of the file is read the first
time a batch holds it, then looked up.

A file's consent dates are days in a few formats: some thousands of distinct cells,
nearly all of them in every batch of 100,000 rows. Reading each batch's distinct cells
anew (:func:`~pipeline.normalize.normalize_consent_dates`: the distinct cells, their
dates, a join back) cost 2-3x what is done here: every row is looked up among the
cells already read (one join), and only the cells not there yet are read and kept.
What is kept is bounded (:data:`KEPT_CELLS`): a file of ever new cells (timestamps,
say) is read batch by batch as before once it is full.

A text column (every CSV) is looked up by a cast to an Enum of the kept cells (a cell's
place among them, then a gather of its date): 0.6x the CPU of the hash join that looks
up other types (0.13 against 0.21 s for 3M rows in 25 batches, two threads), which
partitions the rows and sorts them back into their order.
"""

from __future__ import annotations

import threading

import polars as pl

from pipeline.normalize import CONSENT_DATE_COLUMN, dates_of_cells, normalize_consent_dates

_Lookup = tuple[pl.Enum, pl.Series]
"""The kept text cells (nulls aside) as an Enum, and their dates in its order."""

KEPT_CELLS = 200_000
"""Distinct cells kept, with their dates (a few MB)."""


_KNOWN = "__pe_known"


def _looked_up(cells: pl.LazyFrame, table: pl.DataFrame, column: str) -> pl.DataFrame:
    """``table``'s row for each of ``cells`` (in order; nulls where it has none)."""
    return cells.join(
        table.lazy(), on=column, how="left", maintain_order="left", nulls_equal=True
    ).collect()


def _enum_lookup(table: pl.DataFrame, column: str) -> _Lookup:
    """``table``'s text cells as an Enum, and their dates in the Enum's order."""
    table = table.filter(pl.col(column).is_not_null())
    return pl.Enum(table[column]), table[CONSENT_DATE_COLUMN]


def _enum_looked_up(cells: pl.Series, lookup: _Lookup) -> tuple[pl.DataFrame, pl.Series]:
    """The cells and their dates for text ``cells``, by their place in the Enum (null
    where it has none), and which of them it lacks (a null cell is not lacking: its date
    is null, as reading it gives)."""
    enum, dates = lookup
    place = cells.cast(enum, strict=False).to_physical()
    found = pl.DataFrame([cells, dates.gather(place).alias(CONSENT_DATE_COLUMN)])
    return found, place.is_null() & cells.is_not_null()


class ConsentDates:
    """Adds ``consent_date_normalized`` to batches of one input, reading ``column``.

    The reader's threads share one: what one of them read, the other finds."""

    def __init__(self, column: str, kept: int = KEPT_CELLS) -> None:
        self._column = column
        self._kept = kept
        self._known: pl.DataFrame | None = None
        """Cells read so far (``column``, of the input's type), their dates, and a
        column of true (what a cell that is not there lacks)."""
        self._lookup: _Lookup | None = None
        """``_known`` as an Enum lookup, when its cells are text."""
        self._lock = threading.Lock()
        self._off = False
        """Set once the kept cells are full and a batch is mostly new cells: a file of
        ever new cells, read batch by batch from then on."""

    def add(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        """``frame`` with the column :func:`normalize_consent_dates` adds, the same."""
        column = self._column
        dtype = frame.collect_schema()[column]
        with self._lock:
            known, lookup = self._known, self._lookup
        if dtype.is_temporal() or self._off:
            return normalize_consent_dates(frame, column)
        if known is None or known.schema[column] != dtype:
            types: list[tuple[str, pl.DataType]] = [
                (column, dtype), (CONSENT_DATE_COLUMN, pl.String()), (_KNOWN, pl.Boolean()),
            ]  # fmt: skip
            known, lookup = pl.DataFrame(schema=types), None
        # Every row looked up at once: one pass, where reading each batch's distinct
        # cells (unique, then a join) took two and the reading itself as much again.
        if lookup is not None:
            found, missing = _enum_looked_up(frame.select(column).collect()[column], lookup)
        else:
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
            kept = self._known
            if kept is not known and kept is not None:
                text = kept.schema[column] == pl.String
                self._lookup = _enum_lookup(kept, column) if text else None
