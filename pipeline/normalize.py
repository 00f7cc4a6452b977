"""Vectorized phone cleaning: polars expressions, no per-row Python.

``normalize_phones`` adds the ``phone_*`` columns to a LazyFrame, so polars' streaming
engine runs the cleaning inside the read. Validity comes from libphonenumber's
metadata, read into a lookup table by leading digits (see
:mod:`pipeline.validity_table`); each rejected row gets exactly one reason from
:data:`REJECT_REASONS`, checked in that order.
"""

from __future__ import annotations

import functools
from typing import Any, cast

import polars as pl

from pipeline.phone_metadata import NANP_REGIONS, NATIONAL_LENGTH
from pipeline.validity_cache import table_series
from pipeline.validity_table import KEY_DIGITS

REJECT_REASONS: dict[str, str] = {
    "blank": "the phone cell is empty or only spaces",
    "inexact_number": (
        "a numeric (Parquet) cell that cannot hold the number exactly: any 10-digit number "
        "in a float32 (or float16) column, a float64 of 2^53 or more; it may be another "
        "person's number, so it is never sent"
    ),
    "scientific_notation": "a spreadsheet turned the number into e.g. 2.12E+09; digits are lost",
    "not_a_phone": (
        "text, letters or symbols that are not part of a phone number, or no digits; "
        "in a numeric (Parquet) column also a negative number, NaN or infinity"
    ),
    "foreign_country_code": "an international number whose country code is not 1 (+44 ...)",
    "too_short": "fewer than 10 digits once the +1/1 prefix and the extension are taken off",
    "too_long": (
        "more than 10 digits once the +1/1 prefix and the extension are taken off "
        "(a numeric cell from 1e15 up to 2^53 included)"
    ),
    "invalid_number": "10 digits that libphonenumber does not accept as a NANP number",
    "region_not_allowed": (
        "a number valid in a NANP region that is not in [normalize] regions (phone_region)"
    ),
}
"""Every reason a phone can be rejected for, in the order they are checked."""

PHONE_COLUMNS = (
    "phone_normalized",
    "phone_e164",
    "phone_valid",
    "phone_reject_reason",
    "phone_extension",
    "phone_region",
    "phone_source",
)
CONSENT_DATE_COLUMN = "consent_date_normalized"

PHONE_SOURCES = ("input", "appended")
"""Every value of ``phone_source``: the row's own phone, or one a provider appended."""

# The columns whose values are a closed set are typed as such (an Enum, in Parquet a
# dictionary-encoded text column that names its values in the schema), and the consent
# date is a Date. In CSV they are the same text. Made as such, not cast: each row's value
# is gathered by its code, so the writer finds the dictionary ready instead of hashing
# every row's text (3M narrow rows: 0.2 s less CPU to write; a normalize-only run 0.91x).
REJECT_REASON_TYPE = pl.Enum(list(REJECT_REASONS))
REGION_TYPE = pl.Enum(list(NANP_REGIONS))
PHONE_SOURCE_TYPE = pl.Enum(list(PHONE_SOURCES))

_TMP = "__pe_"
_SCIENTIFIC = r"^[+-]?\d+(?:\.\d+)?[eE][+-]?\d+$"
# A spreadsheet's float: its zeros after the point captured.
_SPREADSHEET_ZEROS = r"^\+?\d+\.(0+)$"
# What a phone may look like: an optional tel:, digits and dialling punctuation, then
# an extension.
_SHAPE = r"(?i)^(?:tel:\s*)?[0-9\s().+\-/]*?(?:\s*(?:ext(?:ension)?\.?|x|#)\s*[0-9]+)?$"
# The extension's digits, in a cell of the shape that is not plain (so has a trailing
# extension: x, ext, ext., extension or #, then its digits): the cell's trailing
# digits, as no character of the marker is a digit. A whole match, no group: no
# captures to resolve (0.6x the cost of the group of the extension's whole regex).
_EXTENSION_DIGITS = r"[0-9]+$"
# The shape without an extension.
_PLAIN_SHAPE = r"(?i)^(?:tel:\s*)?[0-9\s().+\-/]*$"
# International: a + or 011 first (after tel:).
_INTL = r"(?i)^(?:tel:\s*)?(?:\+|011)"
_INTL_011 = r"(?i)^(?:tel:\s*)?011"
# Every character other than an ASCII digit that a cell of the phone's shape may hold:
# the dialling punctuation, every whitespace character (what the regex \s matches:
# Unicode White_Space), and the letters of tel: and of the extension's words as (?i)
# matches them (ASCII either case, and the long s that case-folds to s). Taken out one
# character each with one Aho-Corasick pass, they leave the digits, for 0.8x the cost of
# the regex [^0-9]+ (each of whose matches is a forward then a reverse search).
_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000"
)  # fmt: skip
_NOT_DIGITS = (*"().+-/#:", *"telxnsio", "\u017f", *_WHITESPACE)


# Below this every integral float is exact and fits an Int64; at or above it a float
# phone has at least 16 digits (too long) however it is written.
_FLOAT_LIMIT = 1e15


def exact_limit(dtype: pl.DataType) -> float | None:
    """The magnitude from which a float type no longer holds every whole number: 2 to the
    power of its significand's bits. A cell at or past it may be a neighbour of the number
    that was stored (2125550123 as float32 reads 2125550080). None for non-float types
    (integers and decimals are exact)."""
    if dtype == pl.Float16:
        return 2.0**11
    if dtype == pl.Float32:
        return 2.0**24
    if dtype == pl.Float64:
        return 2.0**53
    return None


def phone_as_text(column: str, dtype: pl.DataType) -> pl.Expr:
    """The phone column as text; integral floats (from Parquet/Excel) lose their ``.0``.

    Only null is null: NaN, infinities and huge floats keep a text (``NaN``, ``inf``,
    ``1e+20``) so that :func:`_numeric_reason` rejects them rather than ``blank``.
    """
    col = pl.col(column)
    if dtype.is_float():
        integral = col.is_finite() & (col.abs() < _FLOAT_LIMIT) & (col == col.floor())
        return (
            pl.when(integral)
            .then(col.cast(pl.Int64, strict=False).cast(pl.String))
            .otherwise(col.cast(pl.String))
        )
    return col.cast(pl.String)


def first_of(*cases: tuple[pl.Expr, pl.Expr]) -> pl.Expr:
    """``when(c1).then(v1).when(c2).then(v2)...``: the value of the first condition
    that holds, null if none does."""
    (when, value), *rest = cases
    chain: Any = pl.when(when).then(value)
    for when, value in rest:
        chain = chain.when(when).then(value)
    return cast(pl.Expr, chain)


def matches(masked: pl.Expr, pattern: str) -> pl.Expr:
    """Whether ``pattern`` matches, False where ``masked`` is null. Unlike
    ``str.contains``, ``str.find`` skips null rows: a check masked to the few rows that
    need it costs little on the others."""
    return masked.str.find(pattern).is_not_null()


_CODE = {reason: code for code, reason in enumerate(REJECT_REASONS, start=1)}
"""Each reject reason as a small integer (0: accepted), so that the checks below pick
a number per row and the text is looked up once, at the end."""


def _code(reason: str) -> pl.Expr:
    return pl.lit(_CODE[reason], dtype=pl.UInt8)


def _numeric_reason(column: str, dtype: pl.DataType) -> pl.Expr | None:
    """The reject reasons only a numeric (Parquet) cell can earn (as codes), checked
    before the text ones: a negative number, NaN or infinity is ``not_a_phone``, a float
    past :func:`exact_limit` ``inexact_number`` (before ``too_long``: the digits
    themselves are not known), a float of ``_FLOAT_LIMIT`` or more ``too_long``. None
    for text."""
    col = pl.col(column)
    limit = exact_limit(dtype)
    if limit is not None:
        return (
            pl.when(~col.is_finite() | (col < 0))
            .then(_code("not_a_phone"))
            .when(col >= limit)
            .then(_code("inexact_number"))
            .when(col >= _FLOAT_LIMIT)
            .then(_code("too_long"))
        )
    if dtype.is_signed_integer() or dtype.is_decimal():
        return pl.when(col < 0).then(_code("not_a_phone"))
    return None


@functools.cache
def _tables() -> tuple[pl.Series, ...]:
    """The validity table's levels as polars Series, once per process (read from the
    cache folder, see :mod:`pipeline.validity_cache`)."""
    return table_series()


def _valid_region(national: pl.Expr) -> pl.Expr:
    """0, or 1 + the index in NANP_REGIONS of the region libphonenumber finds the
    10-digit ``national`` valid in (null where ``national`` is null).

    One lookup by the first KEY_DIGITS digits, then one per deeper level of the table
    for the few prefixes it leaves undecided (see :mod:`pipeline.validity_table`).
    """
    number = national.cast(pl.UInt64, strict=False)
    first, *deeper = _tables()
    entry = pl.lit(first).gather(number // 10 ** (NATIONAL_LENGTH - KEY_DIGITS))
    for depth, level in enumerate(deeper, start=KEY_DIGITS + 1):
        digit = number // 10 ** (NATIONAL_LENGTH - depth) % 10
        entry = pl.lit(level).gather(entry.cast(pl.UInt64) * 10 + digit)
    return entry


_REGION_NAMES = pl.Series([None, *NANP_REGIONS], dtype=REGION_TYPE)
_REASON_NAMES = pl.Series([None, *REJECT_REASONS], dtype=REJECT_REASON_TYPE)


def normalize_phones(
    frame: pl.LazyFrame, column: str, regions: tuple[str, ...] = ("US", "CA")
) -> pl.LazyFrame:
    """Add the ``phone_*`` columns for ``column`` (any dtype) to ``frame``.

    Cost matters here (every row of every file goes through it), so: one regex
    decides the shape of the whole cell (tel: prefix, dialling characters, extension);
    the checks and rewrites that only some rows need (the shape with an extension,
    scientific notation, a spreadsheet's ``.0``, a leading 011) run on those rows only,
    the others masked to null, which ``str.find`` and ``str.extract`` skip; each
    intermediate is computed once; validity is a table lookup.
    """
    dtype = frame.collect_schema()[column]
    steps, temporary = _phone_steps(column, dtype, tuple(regions))
    for columns in steps:
        frame = frame.with_columns(columns)
    return frame.drop(temporary)


_Steps = tuple[tuple[tuple[pl.Expr, ...], ...], tuple[str, ...]]


@functools.cache
def _phone_steps(column: str, dtype: pl.DataType, regions: tuple[str, ...]) -> _Steps:
    """The columns :func:`normalize_phones` adds, step by step (each step's columns
    read those of the steps before), and the names of the intermediate ones. Built once
    for all the batches of a run: building them took 0.6 ms of CPU a batch."""
    t = f"{_TMP}phone"
    steps: list[tuple[pl.Expr, ...]] = []
    temporary: list[str] = []

    def step(**columns: pl.Expr) -> None:
        # Each intermediate is computed once, then read as a column: an expression
        # used twice would be evaluated twice.
        steps.append(tuple(expr.alias(f"{t}_{name}") for name, expr in columns.items()))
        temporary.extend(f"{t}_{name}" for name in columns)

    def c(name: str) -> pl.Expr:
        return pl.col(f"{t}_{name}")

    step(raw=phone_as_text(column, dtype).str.strip_chars())
    raw = c("raw")
    numeric = _numeric_reason(column, dtype)
    blank = raw.is_null() | (raw.str.len_bytes() == 0)
    # Most cells have no extension: the shape without one settles them; only the rest
    # are matched against the whole shape.
    step(plain=raw.str.contains(_PLAIN_SHAPE), blank=blank)
    plain = c("plain")
    shape = plain | matches(pl.when(~plain).then(raw), _SHAPE)
    step(shape=shape)
    # Scientific notation never has a phone's shape: only rows that fail it are tried.
    scientific = matches(pl.when(~c("shape")).then(raw), _SCIENTIFIC)
    early = first_of(
        (c("blank"), _code("blank")),
        *([] if numeric is None else [(numeric.is_not_null(), numeric)]),
        (scientific, _code("scientific_notation")),
        (~c("shape"), _code("not_a_phone")),
    )
    step(early=early)
    step(live=pl.when(c("early").is_null()).then(raw))
    live = c("live")  # the text of rows still to decide, null elsewhere
    # A spreadsheet's 2125550123.0 ends in 0; the regex only runs on those that do.
    ends_in_0 = pl.when(live.str.ends_with("0")).then(live)
    step(
        # (live cells have the shape: no other character is left in them)
        all=live.str.replace_many(
            _NOT_DIGITS, [""] * len(_NOT_DIGITS), ascii_case_insensitive=True
        ),
        intl=live.str.contains(_INTL),
        ext=pl.when(~plain).then(live).str.extract(_EXTENSION_DIGITS, 0),
        zeros=ends_in_0.str.extract(_SPREADSHEET_ZEROS, 1),
    )
    every, intl = c("all"), c("intl")
    step(
        skip=pl.when(matches(pl.when(intl).then(live), _INTL_011)).then(3).otherwise(0),
        # The digits after the number's: the extension's, a spreadsheet's .0 zeros.
        tail=c("ext").str.len_bytes().fill_null(0) + c("zeros").str.len_bytes().fill_null(0),
    )
    # The number's digits are every[skip : end]: less a leading 011 and the tail.
    skip = c("skip")
    step(end=every.str.len_bytes() - c("tail"))
    end = c("end")
    count = end - skip
    # The number's first digit is a 1 (after a 011, which only an international has:
    # its digits start 011, never 1).
    first_is_1 = every.str.starts_with("1") | ((skip == 3) & every.str.starts_with("0111"))
    step(count=count, one=(count >= 1) & first_is_1)
    count, has_one = c("count"), c("one")
    # Digits left once a country code 1 (required after +, optional without) is taken off.
    national_len = pl.when(has_one & (intl | (count == 11))).then(count - 1).otherwise(count)
    step(len=national_len)
    length = c("len")
    step(national=pl.when(length == 10).then(every).str.slice(end - 10, 10))
    national = c("national")
    step(region=_valid_region(national))
    region = c("region")
    allowed = [NANP_REGIONS.index(r) + 1 for r in regions if r in NANP_REGIONS]
    reason = (
        pl.when(c("early").is_not_null())
        .then(c("early"))
        .when(length == 0)
        .then(_code("not_a_phone"))
        .when(intl & ~has_one)
        .then(_code("foreign_country_code"))
        .when(length < 10)
        .then(_code("too_short"))
        .when(length > 10)
        .then(_code("too_long"))
        .when(region.is_in(allowed))
        .then(pl.lit(0, dtype=pl.UInt8))
        .when(region > 0)
        .then(_code("region_not_allowed"))
        .otherwise(_code("invalid_number"))
    )
    step(reason=reason)
    code = c("reason")
    ok = code == 0
    shown = ok | (code == _CODE["region_not_allowed"])
    steps.append(
        (
            pl.when(ok).then(national).alias("phone_normalized"),
            pl.format("+1{}", pl.when(ok).then(national)).alias("phone_e164"),
            ok.alias("phone_valid"),
            pl.lit(_REASON_NAMES).gather(code).alias("phone_reject_reason"),
            pl.when(ok).then(c("ext")).alias("phone_extension"),
            pl.lit(_REGION_NAMES).gather(pl.when(shown).then(region)).alias("phone_region"),
            # (a literal under a mask: a tenth of the cost of gathering from a Series)
            pl.when(ok).then(pl.lit("input", dtype=PHONE_SOURCE_TYPE)).alias("phone_source"),
        )
    )
    return tuple(steps), tuple(temporary)
