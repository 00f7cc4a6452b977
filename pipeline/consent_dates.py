"""Consent dates: how a cell is read (:func:`consent_date_expr`), and read once per run:
each distinct cell of the file is read the first time a batch holds it, then looked up.

``consent_date_normalized`` is a Date (in a CSV output ``YYYY-MM-DD``), read in
``MM/DD/YYYY``, ``MM/DD/YY``, ``YYYY-MM-DD`` or ``YYYYMMDD``; null when the cell is none
of them or not a real day.

A file's consent dates are days in a few formats: some thousands of distinct cells,
nearly all of them in every batch of 100,000 rows. Reading each batch's distinct cells
anew (:func:`normalize_consent_dates`: the distinct cells, their dates, a join back)
cost 2-3x what is done here: every row is looked up among the cells already read (one
join), and only the cells not there yet are read and kept.
What is kept is bounded (:data:`KEPT_CELLS`): a file of ever new cells (timestamps,
say) is read batch by batch as before once it is full.

A text column (every CSV) is looked up by a cast to a Categorical (a cell's code, then
a gather of its date by code): 0.6x the CPU of the hash join that looks up other types
(0.13 against 0.21 s for 3M rows in 25 batches, two threads), which partitions the rows
and sorts them back into their order. The Categorical has categories of its own for the
run, which polars keeps between casts: an Enum of the kept cells, as before, had its
mapping built anew at every cast (1.5 ms a batch for 16,000 kept cells, growing with
them).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import polars as pl

from pipeline.normalize import CONSENT_DATE_COLUMN, first_of, matches

_TEXT = "__pe_date"
_KIND = "__pe_date_kind"


def _date_formats(text: pl.Expr) -> list[tuple[pl.Expr, str]]:
    """Which format a consent date is read with, told apart by where the separators
    stand (cheaper than regexes): the first condition that holds picks the format, and
    to_date then rejects anything that is not a real date."""
    return [
        (text.str.slice(-3, 1) == "/", "%m/%d/%y"),
        (text.str.slice(-5, 1) == "/", "%m/%d/%Y"),
        (text.str.contains("-", literal=True), "%Y-%m-%d"),
        # (the regex runs on 8-character cells only)
        (matches(pl.when(text.str.len_bytes() == 8).then(text), "^[0-9]*$"), "%Y%m%d"),
    ]


def consent_date_expr(column: str, dtype: pl.DataType) -> pl.Expr:
    """The consent date as a Date, or null when it cannot be read.

    One expression; :func:`normalize_consent_dates` computes the same in steps."""
    col = pl.col(column)
    if dtype.is_temporal():
        return col.cast(pl.Date, strict=False)
    text = col.cast(pl.String).str.strip_chars()
    formats = _date_formats(text)
    return first_of(*((when, text.str.to_date(fmt, strict=False)) for when, fmt in formats))


def normalize_consent_dates(frame: pl.LazyFrame, column: str) -> pl.LazyFrame:
    """Add ``consent_date_normalized`` (a Date) read from ``column``.

    The same as :func:`consent_date_expr`, for less: a file holds few distinct consent
    dates (days, in a few formats), so each distinct cell is read once and joined back
    onto its rows (:func:`dates_of_cells`, :func:`with_dates`). A run reads a file's
    distinct cells once for all its batches (:class:`ConsentDates`)."""
    dtype = frame.collect_schema()[column]
    if dtype.is_temporal():
        return frame.with_columns(consent_date_expr(column, dtype).alias(CONSENT_DATE_COLUMN))
    return with_dates(frame, dates_of_cells(frame.select(column).unique(), column), column)


def dates_of_cells(cells: pl.LazyFrame, column: str) -> pl.LazyFrame:
    """``column`` (distinct cells of a text or numeric column) and each one's
    ``consent_date_normalized``. Read in steps: each cell's format is settled once and
    each format parses only its own cells (to_date skips the others, null to it)."""
    cells = cells.with_columns(pl.col(column).cast(pl.String).str.strip_chars().alias(_TEXT))
    text = pl.col(_TEXT)
    formats = _date_formats(text)
    kind = first_of(*((when, pl.lit(i, dtype=pl.UInt8)) for i, (when, _) in enumerate(formats)))
    cells = cells.with_columns(kind.alias(_KIND))
    dates = [
        pl.when(pl.col(_KIND) == index).then(text).str.to_date(fmt, strict=False)
        for index, (_, fmt) in enumerate(formats)
    ]
    return cells.select(column, pl.coalesce(dates).alias(CONSENT_DATE_COLUMN))


def with_dates(frame: pl.LazyFrame, dates: pl.LazyFrame, column: str) -> pl.LazyFrame:
    """``frame`` with ``consent_date_normalized`` from ``dates`` (a cell's date, for
    every cell of ``column`` in ``frame``)."""
    # Joined onto the date column alone, then put beside the frame: a join of the whole
    # frame would copy every one of its columns.
    read = frame.select(column).join(
        dates, on=column, how="left", maintain_order="left", nulls_equal=True
    )
    return pl.concat([frame, read.select(CONSENT_DATE_COLUMN)], how="horizontal")


KEPT_CELLS = 200_000
"""Distinct cells kept, with their dates (a few MB)."""


_KNOWN = "__pe_known"
_CODE = "__pe_code"


_CODES_PER_KEPT = 2
"""Codes given (kept cells and others) past which the categories are made anew: every
cell cast gets a code and polars keeps it, so a file whose new cells are not kept (the
bound is full) would otherwise grow them without end."""


def _own_categorical() -> pl.Categorical:
    """A Categorical with categories of its own (``pl.Categories`` is marked unstable
    in polars 2: a test checks that a cell's code stays the same between casts)."""
    return pl.Categorical(pl.Categories.random())


@dataclass(frozen=True)
class _Lookup:
    """The kept text cells by their codes in a Categorical of the run's own categories."""

    dtype: pl.Categorical
    """Every text cell cast to it gets a code that stays the same while the categories
    live: cells not kept get codes too, past or between the kept cells' ones."""
    by_code: pl.DataFrame
    """Row ``i``: the date of the kept cell of code ``i`` and true in ``_KNOWN``; nulls
    for other codes."""
    kept: pl.Series
    """The kept cells as ``dtype``. Polars keeps a mapping of categories only while some
    data uses it (:class:`pl.Categories` holds a weak reference)."""


def _looked_up(cells: pl.LazyFrame, table: pl.DataFrame, column: str) -> pl.DataFrame:
    """``table``'s row for each of ``cells`` (in order; nulls where it has none)."""
    return cells.join(
        table.lazy(), on=column, how="left", maintain_order="left", nulls_equal=True
    ).collect()


def _code_lookup(table: pl.DataFrame, column: str, dtype: pl.Categorical) -> _Lookup:
    """``table``'s text cells (and their dates) by their codes in ``dtype``."""
    table = table.filter(pl.col(column).is_not_null())
    kept = table[column].cast(dtype)
    codes = kept.to_physical()
    size = int(codes.max()) + 1 if codes.len() else 0  # type: ignore[arg-type]
    dates = pl.repeat(None, size, dtype=pl.Date, eager=True)
    known = pl.repeat(None, size, dtype=pl.Boolean, eager=True)
    by_code = pl.DataFrame(
        [
            dates.scatter(codes, table[CONSENT_DATE_COLUMN]).alias(CONSENT_DATE_COLUMN),
            known.scatter(codes, True).alias(_KNOWN),
        ]
    )
    return _Lookup(dtype, by_code, kept)


def _code_looked_up(cells: pl.Series, lookup: _Lookup) -> tuple[pl.DataFrame, pl.Series, int]:
    """The cells and their dates for text ``cells``, by their codes (null for a cell
    that is not kept); which of them it lacks (a null cell is not lacking: its date is
    null, as reading it gives); the highest code they have."""
    codes = cells.cast(lookup.dtype).to_physical()
    code = pl.col(_CODE)
    place = pl.when(code < lookup.by_code.height).then(code)  # codes past it: not kept
    by_code = [pl.lit(s).gather(place).alias(s.name) for s in lookup.by_code.get_columns()]
    found = pl.DataFrame([cells, codes.alias(_CODE)]).select(cells.name, *by_code)
    top = codes.max()
    missing = found[_KNOWN].is_null() & cells.is_not_null()
    return found.drop(_KNOWN), missing, -1 if top is None else int(top)  # type: ignore[arg-type]


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
        """``_known`` by code, when its cells are text."""
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
                (column, dtype), (CONSENT_DATE_COLUMN, pl.Date()), (_KNOWN, pl.Boolean()),
            ]  # fmt: skip
            known, lookup = pl.DataFrame(schema=types), None
        # Every row looked up at once: one pass, where reading each batch's distinct
        # cells (unique, then a join) took two and the reading itself as much again.
        if lookup is not None:
            text = frame.select(column).collect()[column]
            found, missing, top = _code_looked_up(text, lookup)
            if top >= _CODES_PER_KEPT * self._kept:
                self._renew(lookup)
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
                dtype = self._lookup.dtype if self._lookup else _own_categorical()
                self._lookup = _code_lookup(kept, column, dtype) if text else None

    def _renew(self, lookup: _Lookup) -> None:
        """The kept cells by their codes in new categories: the cells that were not
        kept no longer hold codes (nor memory)."""
        with self._lock:
            if self._lookup is lookup and self._known is not None:
                self._lookup = _code_lookup(self._known, self._column, _own_categorical())
