"""The normalizer as it was before the validity table (pipeline/normalize.py at
ae1055a), kept verbatim as an oracle: the differential tests check that the faster
code gives the same output on every row. Validity there is libphonenumber's patterns
matched per row by polars' regex engine; see pipeline.validity_table for the table.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from pipeline.phone_metadata import (
    PREFIX_LENGTH,
    RegionRule,
    claim_order,
    leading_digit_claims,
    region_rule,
)

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

_TMP = "__pe_"
_SCIENTIFIC = r"^[+-]?\d+(?:\.\d+)?[eE][+-]?\d+$"
_SPREADSHEET_FLOAT = r"^(\+?\d+)\.0+$"
_TEL = r"(?i)^tel:\s*"
# A trailing extension: x, ext, ext., extension or #, then its digits.
_EXTENSION = r"(?i)\s*(?:ext(?:ension)?\.?|x|#)\s*(\d+)$"
# What a phone may look like: digits and dialling punctuation, then an extension.
_PHONE_SHAPE = r"(?i)^[0-9\s().+\-/]*?(?:\s*(?:ext(?:ension)?\.?|x|#)\s*[0-9]+)?$"


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


def _numeric_reason(column: str, dtype: pl.DataType) -> pl.Expr | None:
    """The reject reasons only a numeric (Parquet) cell can earn, checked before the
    text ones: a negative number, NaN or infinity is ``not_a_phone``, a float past
    :func:`exact_limit` ``inexact_number`` (before ``too_long``: the digits themselves
    are not known), a float of ``_FLOAT_LIMIT`` or more ``too_long``. None for text."""
    col = pl.col(column)
    limit = exact_limit(dtype)
    if limit is not None:
        return (
            pl.when(~col.is_finite() | (col < 0))
            .then(pl.lit("not_a_phone"))
            .when(col >= limit)
            .then(pl.lit("inexact_number"))
            .when(col >= _FLOAT_LIMIT)
            .then(pl.lit("too_long"))
        )
    if dtype.is_signed_integer() or dtype.is_decimal():
        return pl.when(col < 0).then(pl.lit("not_a_phone"))
    return None


def _valid_in(region: str, national: pl.Expr) -> pl.Expr:
    rule = region_rule(region)
    if rule.type_regex is None:
        return pl.lit(False)
    return national.str.contains(rule.general_regex) & national.str.contains(rule.type_regex)


def _claiming_region(frame: pl.LazyFrame, national: pl.Expr, name: str) -> pl.LazyFrame:
    """Add column ``name``, the region libphonenumber assigns a 10-digit number to
    (``region_code_for_number``), and ``{name}_valid``, whether the number is valid in
    that region (``is_valid_number``).

    Leading-digits regions are resolved by one lookup table indexed by the 4-digit
    prefix (``gather`` streams; ``replace_strict`` does not), type-checked regions
    by their patterns; then the claim order picks the first that applies. A
    type-checked region only claims numbers valid in it; a leading-digits region
    claims every number with its prefix, so its patterns are looked up by prefix too
    and each such row is matched against its own region's patterns.
    """
    claims = leading_digit_claims()
    runs = claim_order()
    run_of = {region: i for i, run in enumerate(runs) for region in run}
    table = [claims.get(f"{i:0{PREFIX_LENGTH}d}") for i in range(10**PREFIX_LENGTH)]
    prefix = national.str.slice(0, PREFIX_LENGTH).cast(pl.UInt32, strict=False)
    checked = [run[0] for run in runs if region_rule(run[0]).leading_digits is None]

    def by_prefix(values: list[str | None] | list[int | None], dtype: pl.DataType) -> pl.Expr:
        return pl.lit(pl.Series(values, dtype=dtype)).gather(prefix)

    def patterns(regex: Callable[[RegionRule], str | None]) -> pl.Expr:
        return by_prefix([None if r is None else regex(region_rule(r)) for r in table], pl.String())

    # Null where the prefix has no leading-digits region, or the region has no
    # 10-digit type (then the number is not valid there).
    ld_valid = national.str.contains(patterns(lambda rule: rule.general_regex)) & (
        national.str.contains(patterns(lambda rule: rule.type_regex))
    )
    frame = frame.with_columns(
        by_prefix(table, pl.String()).alias(f"{name}_ld"),
        by_prefix([None if r is None else run_of[r] for r in table], pl.Int8()).alias(
            f"{name}_ld_run"
        ),
        ld_valid.fill_null(False).alias(f"{name}_ld_valid"),
        *(_valid_in(region, national).alias(f"{name}_{region}") for region in checked),
    )
    region = pl.lit(None, dtype=pl.String)
    for index, run in reversed(list(enumerate(runs))):
        if run[0] in checked:
            cond, value = pl.col(f"{name}_{run[0]}"), pl.lit(run[0])
        else:
            cond, value = pl.col(f"{name}_ld_run") == index, pl.col(f"{name}_ld")
        region = pl.when(cond).then(value).otherwise(region)
    frame = frame.with_columns(region.alias(name))
    claimed = pl.col(name)
    # Claimed by the leading-digits region: valid if its patterns match; claimed by a
    # type-checked region: valid (that is how it claimed); claimed by none: invalid.
    valid = (
        pl.when(claimed == pl.col(f"{name}_ld"))
        .then(pl.col(f"{name}_ld_valid"))
        .otherwise(claimed.is_not_null())
    )
    frame = frame.with_columns(valid.alias(f"{name}_valid"))
    return frame.drop(
        f"{name}_ld", f"{name}_ld_run", f"{name}_ld_valid", *(f"{name}_{r}" for r in checked)
    )


def normalize_phones(
    frame: pl.LazyFrame, column: str, regions: tuple[str, ...] = ("US", "CA")
) -> pl.LazyFrame:
    """Add the ``phone_*`` columns for ``column`` (any dtype) to ``frame``."""
    dtype = frame.collect_schema()[column]
    t = f"{_TMP}phone"
    text = phone_as_text(column, dtype).str.strip_chars()
    cleaned = text.str.replace(_SPREADSHEET_FLOAT, "${1}").str.replace(_TEL, "")
    frame = frame.with_columns(
        text.alias(f"{t}_text"),
        cleaned.alias(f"{t}_clean"),
        cleaned.str.extract(_EXTENSION, 1).alias(f"{t}_ext"),
    )
    clean, ext = pl.col(f"{t}_clean"), pl.col(f"{t}_ext")
    all_digits = clean.str.replace_all(r"[^0-9]+", "")
    from_011 = clean.str.starts_with("011")
    frame = frame.with_columns(
        (clean.str.starts_with("+") | from_011).alias(f"{t}_intl"),
        ~clean.str.contains(_PHONE_SHAPE).alias(f"{t}_symbols"),
        # The number's digits: all digits less the extension's and a leading 011.
        all_digits.str.slice(
            pl.when(from_011).then(3).otherwise(0),
            all_digits.str.len_bytes()
            - ext.str.len_bytes().fill_null(0)
            - pl.when(from_011).then(3).otherwise(0),
        ).alias(f"{t}_digits"),
    )
    digits, intl = pl.col(f"{t}_digits"), pl.col(f"{t}_intl")
    count = digits.str.len_bytes()
    has_one = digits.str.starts_with("1")
    # Digits left once a country code 1 (required after +, optional without) is taken off.
    national_len = pl.when(has_one & (intl | (count == 11))).then(count - 1).otherwise(count)
    frame = frame.with_columns(
        pl.when(national_len == 10)
        .then(digits.str.slice(-10))
        .otherwise(None)
        .alias(f"{t}_national"),
        national_len.alias(f"{t}_len"),
    )
    national = pl.col(f"{t}_national")
    frame = _claiming_region(frame, national, f"{t}_region")
    region = pl.col(f"{t}_region")
    # Valid in the region that claims it (libphonenumber's is_valid_number).
    valid_there = pl.col(f"{t}_region_valid")
    raw = pl.col(f"{t}_text")
    numeric = _numeric_reason(column, dtype)
    if numeric is None:
        numeric = pl.lit(None, dtype=pl.String)
    reason = (
        pl.when(raw.is_null() | (raw == ""))
        .then(pl.lit("blank"))
        .when(numeric.is_not_null())
        .then(numeric)
        .when(raw.str.contains(_SCIENTIFIC))
        .then(pl.lit("scientific_notation"))
        .when(pl.col(f"{t}_symbols") | (pl.col(f"{t}_len") == 0))
        .then(pl.lit("not_a_phone"))
        .when(intl & ~has_one)
        .then(pl.lit("foreign_country_code"))
        .when(pl.col(f"{t}_len") < 10)
        .then(pl.lit("too_short"))
        .when(pl.col(f"{t}_len") > 10)
        .then(pl.lit("too_long"))
        .when(valid_there & region.is_in(list(regions)))
        .then(pl.lit(None, dtype=pl.String))
        .when(valid_there)
        .then(pl.lit("region_not_allowed"))
        .otherwise(pl.lit("invalid_number"))
    )
    frame = frame.with_columns(reason.alias("phone_reject_reason"))
    ok = pl.col("phone_reject_reason").is_null()
    frame = frame.with_columns(
        pl.when(ok).then(national).alias("phone_normalized"),
        pl.when(ok).then(pl.lit("+1") + national).alias("phone_e164"),
        ok.alias("phone_valid"),
        pl.col("phone_reject_reason"),
        pl.when(ok).then(pl.col(f"{t}_ext")).alias("phone_extension"),
        pl.when(ok | (pl.col("phone_reject_reason") == "region_not_allowed"))
        .then(region)
        .alias("phone_region"),
        pl.when(ok).then(pl.lit("input")).alias("phone_source"),
    )
    temporary = [c for c in frame.collect_schema().names() if c.startswith(t)]
    return frame.drop(temporary)


def consent_date_expr(column: str, dtype: pl.DataType) -> pl.Expr:
    """The consent date as ISO ``YYYY-MM-DD`` text, or null when it cannot be read."""
    col = pl.col(column)
    if dtype.is_temporal():
        return col.cast(pl.Date, strict=False).dt.to_string("%Y-%m-%d")
    text = col.cast(pl.String).str.strip_chars()
    # Tell the formats apart by where the separators stand (cheaper than regexes);
    # to_date then rejects anything that is not a real date.
    slash_yy = text.str.slice(-3, 1) == "/"
    slash_yyyy = text.str.slice(-5, 1) == "/"
    digits_only = (text.str.len_bytes() == 8) & ~text.str.contains("[^0-9]")
    return (
        pl.when(slash_yy)
        .then(text.str.to_date("%m/%d/%y", strict=False))
        .when(slash_yyyy)
        .then(text.str.to_date("%m/%d/%Y", strict=False))
        .when(text.str.contains("-", literal=True))
        .then(text.str.to_date("%Y-%m-%d", strict=False))
        .when(digits_only)
        .then(text.str.to_date("%Y%m%d", strict=False))
        .dt.to_string("%Y-%m-%d")
    )


def normalize_consent_dates(frame: pl.LazyFrame, column: str) -> pl.LazyFrame:
    """Add ``consent_date_normalized`` (ISO) read from ``column``."""
    dtype = frame.collect_schema()[column]
    return frame.with_columns(consent_date_expr(column, dtype).alias(CONSENT_DATE_COLUMN))
