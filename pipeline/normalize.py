"""Vectorized phone and consent-date cleaning: polars expressions, no per-row Python.

``normalize_phones`` adds the ``phone_*`` columns to a LazyFrame, so polars' streaming
engine runs the cleaning inside the read. Validity comes from libphonenumber's
metadata (see :mod:`pipeline.phone_metadata`); each rejected row gets exactly one
reason from :data:`REJECT_REASONS`, checked in that order.
"""

from __future__ import annotations

import polars as pl

from pipeline.phone_metadata import PREFIX_LENGTH, claim_order, leading_digit_claims, region_rule

REJECT_REASONS: dict[str, str] = {
    "blank": "the phone cell is empty or only spaces",
    "scientific_notation": "a spreadsheet turned the number into e.g. 2.12E+09; digits are lost",
    "not_a_phone": "text, letters or symbols that are not part of a phone number, or no digits",
    "foreign_country_code": "an international number whose country code is not 1 (+44 ...)",
    "too_short": "fewer than 10 digits once the +1/1 prefix and the extension are taken off",
    "too_long": "more than 10 digits once the +1/1 prefix and the extension are taken off",
    "invalid_number": "10 digits that libphonenumber does not accept as a NANP number",
    "region_not_allowed": "a NANP number of a region not in [normalize] regions (phone_region)",
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


def phone_as_text(column: str, dtype: pl.DataType) -> pl.Expr:
    """The phone column as text; integral floats (from Parquet/Excel) lose their ``.0``."""
    col = pl.col(column)
    if dtype.is_float():
        integral = col.is_finite() & (col == col.floor())
        return (
            pl.when(integral)
            .then(col.cast(pl.Int64, strict=False).cast(pl.String))
            .when(col.is_finite())
            .then(col.cast(pl.String))
            .otherwise(None)
        )
    return col.cast(pl.String)


def _valid_in(region: str, national: pl.Expr) -> pl.Expr:
    rule = region_rule(region)
    if rule.type_regex is None:
        return pl.lit(False)
    return national.str.contains(rule.general_regex) & national.str.contains(rule.type_regex)


def _claiming_region(frame: pl.LazyFrame, national: pl.Expr, name: str) -> pl.LazyFrame:
    """Add column ``name``: the region libphonenumber assigns a 10-digit number to.

    Leading-digits regions are resolved by one lookup table indexed by the 4-digit
    prefix (``gather`` streams; ``replace_strict`` does not), type-checked regions
    by their patterns; then the claim order picks the first that applies.
    """
    claims = leading_digit_claims()
    runs = claim_order()
    run_of = {region: i for i, run in enumerate(runs) for region in run}
    table = [claims.get(f"{i:0{PREFIX_LENGTH}d}") for i in range(10**PREFIX_LENGTH)]
    prefix = national.str.slice(0, PREFIX_LENGTH).cast(pl.UInt32, strict=False)
    checked = [run[0] for run in runs if region_rule(run[0]).leading_digits is None]
    frame = frame.with_columns(
        pl.lit(pl.Series(table, dtype=pl.String)).gather(prefix).alias(f"{name}_ld"),
        pl.lit(pl.Series([None if r is None else run_of[r] for r in table], dtype=pl.Int8))
        .gather(prefix)
        .alias(f"{name}_ld_run"),
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
    return frame.drop(f"{name}_ld", f"{name}_ld_run", *(f"{name}_{r}" for r in checked))


def _valid_for_regions(national: pl.Expr, region: pl.Expr, regions: tuple[str, ...]) -> pl.Expr:
    """A type-checked region only claims valid numbers; a leading-digits region must be checked."""
    valid = pl.lit(False)
    for name in regions:
        in_region = region == name
        if region_rule(name).leading_digits is not None:
            in_region = in_region & _valid_in(name, national)
        valid = valid | in_region
    return valid.fill_null(False)


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
    raw = pl.col(f"{t}_text")
    valid = _valid_for_regions(national, region, regions)
    reason = (
        pl.when(raw.is_null() | (raw == ""))
        .then(pl.lit("blank"))
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
        .when(valid)
        .then(pl.lit(None, dtype=pl.String))
        .when(region.is_not_null() & ~region.is_in(list(regions)))
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
