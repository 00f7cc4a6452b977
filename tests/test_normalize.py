"""Phone and consent-date normalization (SPEC "Normalization").

Validity is checked against libphonenumber itself: the hypothesis tests draw many
numbers per example and normalize them in one DataFrame, then compare every row with
``phonenumbers.is_valid_number`` / ``region_code_for_number``.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import random
import re
from collections import Counter
from pathlib import Path

import normalize_reference as reference
import phonenumbers
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneMetadata
from polars.testing import assert_frame_equal

from pipeline.consent_dates import consent_date_expr, normalize_consent_dates
from pipeline.normalize import (
    CONSENT_DATE_COLUMN,
    PHONE_COLUMNS,
    PHONE_SOURCE_TYPE,
    REGION_TYPE,
    REJECT_REASON_TYPE,
    REJECT_REASONS,
    normalize_phones,
)
from pipeline.sample import write_sample
from pipeline.trace import TRACE_ID_COLUMN, trace_id_expr, trace_prefix

DEFAULT_REGIONS = ("US", "CA")
OTHER_REGIONS = ("US", "PR", "JM")
E164 = re.compile(r"^\+1[2-9][0-9]{9}$")
TEN_DIGITS = re.compile(r"^[0-9]{10}$")

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def normalize(
    values: list[object], regions: tuple[str, ...] = DEFAULT_REGIONS, dtype: pl.DataType = pl.String
) -> pl.DataFrame:
    frame = pl.DataFrame({"phone": values}, schema={"phone": dtype}).lazy()
    out = normalize_phones(frame, "phone", regions)
    assert isinstance(out, pl.LazyFrame)
    return out.collect()


def one(value: object, regions: tuple[str, ...] = DEFAULT_REGIONS) -> dict[str, object]:
    return normalize([value], regions).row(0, named=True)


def nanp(digits: str) -> phonenumbers.PhoneNumber:
    """``digits`` as a +1 number. Leading zeros must be kept: without them
    ``0003101234`` would be the 7-digit (valid) Canadian number 310-1234."""
    zeros = len(digits) - len(str(int(digits)))
    return phonenumbers.PhoneNumber(
        country_code=1,
        national_number=int(digits),
        italian_leading_zero=True if zeros else None,
        number_of_leading_zeros=zeros if zeros > 1 else None,
    )


@functools.cache
def libphonenumber(digits: str) -> tuple[bool, str | None]:
    """(is_valid_number, region_code_for_number) for a 10-digit national number."""
    number = nanp(digits)
    assert phonenumbers.national_significant_number(number) == digits
    return phonenumbers.is_valid_number(number), phonenumbers.region_code_for_number(number)


def libphonenumber_says(digits: str, regions: tuple[str, ...]) -> tuple[bool, str | None]:
    """(valid for regions, region) as libphonenumber sees a 10-digit national number."""
    valid, region = libphonenumber(digits)
    return valid and region in regions, region


def _nanp_area_codes() -> list[int]:
    """Area codes that have at least one number of some type in some NANP region,
    read from libphonenumber's metadata (independently of pipeline.phone_metadata)."""
    patterns = []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1]:
        meta = PhoneMetadata.metadata_for_region(region)
        for field in (
            "fixed_line",
            "mobile",
            "toll_free",
            "premium_rate",
            "shared_cost",
            "personal_number",
            "voip",
            "pager",
            "uan",
            "voicemail",
        ):
            desc = getattr(meta, field)
            if desc is not None and desc.national_number_pattern:
                patterns.append(f"(?:{desc.national_number_pattern})")
    any_type = re.compile("|".join(patterns))
    return sorted(
        {
            area
            for area in range(200, 1000)
            for exchange in range(200, 1000, 11)
            if any_type.fullmatch(f"{area}{exchange}0123")
        }
    )


NANP_AREA_CODES = _nanp_area_codes()
CARIBBEAN_AREA_CODES = [242, 246, 264, 268, 284, 340, 345, 441, 473, 649, 658, 664, 670, 671]
CARIBBEAN_AREA_CODES += [684, 721, 758, 767, 784, 787, 809, 829, 849, 868, 869, 876, 939]


def test_area_code_sample_is_meaningful() -> None:
    # The metadata-derived list must hold the big US/CA codes and the Caribbean ones.
    assert len(NANP_AREA_CODES) > 300
    for code in (212, 416, 604, 800, 876, 242, 787, 809):
        assert code in NANP_AREA_CODES


# --------------------------------------------------------------------------- rejects

REJECT_CASES: list[tuple[object, str]] = [
    ("", "blank"),
    ("   ", "blank"),
    (None, "blank"),
    ("\t \t", "blank"),
    ("2.12E+09", "scientific_notation"),
    ("2.12e+09", "scientific_notation"),
    ("1.2125550123E10", "scientific_notation"),
    (" 2125550123e0 ", "scientific_notation"),
    ("abc", "not_a_phone"),
    ("call me maybe", "not_a_phone"),
    ("212-555-0123 call", "not_a_phone"),
    ("---", "not_a_phone"),
    ("n/a", "not_a_phone"),
    ("+1", "not_a_phone"),
    ("212-555-0123 ext", "not_a_phone"),
    ("2125550123 x 12 x 3", "not_a_phone"),
    ("+44 20 7946 0958", "foreign_country_code"),
    ("+52 55 1234 5678", "foreign_country_code"),
    ("011 44 20 7946 0958", "foreign_country_code"),
    ("tel:+33 1 23 45 67 89", "foreign_country_code"),
    ("555-0123", "too_short"),
    ("212555012", "too_short"),
    ("+1 212 555 012", "too_short"),
    ("1", "too_short"),
    ("212555012345", "too_long"),
    ("1 212 555 0123 4", "too_long"),
    ("+1 212 555 01234", "too_long"),
    ("12125550123 0", "too_long"),
    ("0125550123", "invalid_number"),
    ("1125550123", "invalid_number"),
    ("(212) 123-0123", "invalid_number"),
    ("555-555-0123", "invalid_number"),
    ("+1 000 555 0123", "invalid_number"),
    # Caribbean area codes (claimed by leading digits) but not valid there.
    ("876-123-4567", "invalid_number"),
    ("+1 242 100 0123", "invalid_number"),
    ("1 787 055 0123", "invalid_number"),
    ("876 555 0123", "region_not_allowed"),
    ("+1 (787) 555-0123", "region_not_allowed"),
    ("242-357-0123", "region_not_allowed"),
    ("1 809 555 0123", "region_not_allowed"),
]


# Only a numeric (Parquet) cell can be inexact: FLOAT_CASES and the float32 tests cover it.
NUMERIC_ONLY = {"inexact_number"}


def test_reject_table_covers_every_reason() -> None:
    counts = Counter(reason for _, reason in REJECT_CASES)
    assert set(counts) == set(REJECT_REASONS) - NUMERIC_ONLY
    assert all(counts[reason] >= 2 for reason in set(REJECT_REASONS) - NUMERIC_ONLY), counts
    assert {reason for _, reason in FLOAT_CASES} >= NUMERIC_ONLY


@pytest.mark.parametrize(("value", "reason"), REJECT_CASES, ids=[repr(v) for v, _ in REJECT_CASES])
def test_reject_reason(value: object, reason: str) -> None:
    row = one(value)
    assert row["phone_reject_reason"] == reason
    assert row["phone_valid"] is False
    assert row["phone_normalized"] is None
    assert row["phone_e164"] is None
    assert row["phone_extension"] is None
    assert row["phone_source"] is None
    if reason != "region_not_allowed":
        assert row["phone_region"] is None


def test_reject_table_in_one_frame_keeps_row_order() -> None:
    values = [value for value, _ in REJECT_CASES]
    out = normalize(values)
    assert out["phone"].to_list() == values
    assert out["phone_reject_reason"].to_list() == [reason for _, reason in REJECT_CASES]


def test_invalid_number_and_region_examples_agree_with_libphonenumber() -> None:
    """The table's invalid numbers are invalid for libphonenumber, and its
    region_not_allowed numbers are valid numbers of a region outside US/CA."""
    out = normalize([value for value, _ in REJECT_CASES])
    for row in out.iter_rows(named=True):
        digits = re.sub(r"[^0-9]", "", str(row["phone"]))[-10:]
        if row["phone_reject_reason"] == "invalid_number":
            assert not phonenumbers.is_valid_number(nanp(digits)), row
        elif row["phone_reject_reason"] == "region_not_allowed":
            number = nanp(digits)
            assert phonenumbers.is_valid_number(number), row
            assert row["phone_region"] == phonenumbers.region_code_for_number(number)
            assert row["phone_region"] not in DEFAULT_REGIONS


def test_reject_reasons_are_documented() -> None:
    assert list(REJECT_REASONS) == [
        "blank",
        "inexact_number",
        "scientific_notation",
        "not_a_phone",
        "foreign_country_code",
        "too_short",
        "too_long",
        "invalid_number",
        "region_not_allowed",
    ]
    assert all(isinstance(text, str) and text.strip() for text in REJECT_REASONS.values())


# ------------------------------------------------------------------------- accepted

ACCEPTED_CASES: list[tuple[str, str, str | None]] = [
    ("2125550123", "2125550123", None),
    ("(212) 555-0123", "2125550123", None),
    ("212-555-0123", "2125550123", None),
    ("212.555.0123", "2125550123", None),
    ("212/555/0123", "2125550123", None),
    ("212 555 0123", "2125550123", None),
    ("(212)555-0123", "2125550123", None),
    ("212 - 555 - 0123", "2125550123", None),
    ("+1 212 555 0123", "2125550123", None),
    ("+12125550123", "2125550123", None),
    ("+1 (212) 555-0123", "2125550123", None),
    ("+1-212-555-0123", "2125550123", None),
    ("1 212 555 0123", "2125550123", None),
    ("12125550123", "2125550123", None),
    ("1-212-555-0123", "2125550123", None),
    ("1 (212) 555-0123", "2125550123", None),
    ("tel:+12125550123", "2125550123", None),
    ("TEL:2125550123", "2125550123", None),
    ("Tel: 212 555 0123", "2125550123", None),
    ("tEl:+1-212-555-0123", "2125550123", None),
    ("212-555-0123 x12", "2125550123", "12"),
    ("212-555-0123x7", "2125550123", "7"),
    ("212-555-0123 X 99", "2125550123", "99"),
    ("212-555-0123 ext 34", "2125550123", "34"),
    ("212-555-0123 EXT34", "2125550123", "34"),
    ("212-555-0123 ext.5", "2125550123", "5"),
    ("212-555-0123 Ext. 567", "2125550123", "567"),
    ("212-555-0123 extension 77", "2125550123", "77"),
    ("212-555-0123 Extension 0012", "2125550123", "0012"),
    ("212-555-0123#9", "2125550123", "9"),
    ("212-555-0123 # 901", "2125550123", "901"),
    ("+1 212 555 0123 ext. 42", "2125550123", "42"),
    ("tel:+1-212-555-0123 x 3", "2125550123", "3"),
    ("2125550123.0", "2125550123", None),
    ("12125550123.0", "2125550123", None),
    ("2125550123.00", "2125550123", None),
    ("  2125550123  ", "2125550123", None),
    ("\t(212) 555-0123 \n", "2125550123", None),
    ("011 1 212 555 0123", "2125550123", None),
    ("01112125550123", "2125550123", None),
    ("011-1-212-555-0123 x8", "2125550123", "8"),
    ("(416) 555-0123", "4165550123", None),
    ("+1 604 555 0123", "6045550123", None),
    ("1-800-555-0199", "8005550199", None),
]


@pytest.mark.parametrize(
    ("value", "national", "extension"), ACCEPTED_CASES, ids=[v for v, _, _ in ACCEPTED_CASES]
)
def test_accepted_format(value: str, national: str, extension: str | None) -> None:
    row = one(value)
    assert row["phone_valid"] is True
    assert row["phone_reject_reason"] is None
    assert row["phone_normalized"] == national
    assert row["phone_e164"] == "+1" + national
    assert row["phone_extension"] == extension
    assert row["phone_source"] == "input"
    expected_region = phonenumbers.region_code_for_number(nanp(national))
    assert row["phone_region"] == expected_region
    assert expected_region in DEFAULT_REGIONS


def test_output_columns_and_types() -> None:
    out = normalize(["2125550123", "nope"])
    # normalize_phones adds the columns (run.py puts them in PHONE_COLUMNS order).
    assert out.columns[0] == "phone"
    assert sorted(out.columns[1:]) == sorted(PHONE_COLUMNS)
    typed = {
        "phone_valid": pl.Boolean,
        "phone_reject_reason": REJECT_REASON_TYPE,
        "phone_region": REGION_TYPE,
        "phone_source": PHONE_SOURCE_TYPE,
    }
    for name in PHONE_COLUMNS:
        assert out.schema[name] == typed.get(name, pl.String), name
    # Every value a closed column can take is one of its type's.
    assert REJECT_REASON_TYPE.categories.to_list() == list(REJECT_REASONS)
    assert PHONE_SOURCE_TYPE.categories.to_list() == ["input", "appended"]
    assert not any(name.startswith("__") for name in out.columns)
    # The other columns pass through untouched.
    frame = pl.DataFrame({"id": [7, 8], "phone": ["2125550123", ""], "note": ["a", "b"]})
    out = normalize_phones(frame.lazy(), "phone").collect()
    assert out.select("id", "phone", "note").equals(frame)


# -------------------------------------------------------------------- parquet types


def test_int64_column() -> None:
    out = normalize([2125550123, 12125550123, None, 5550123, 8765550123, 0], dtype=pl.Int64)
    assert out["phone_normalized"].to_list() == [
        "2125550123",
        "2125550123",
        None,
        None,
        None,
        None,
    ]
    assert out["phone_valid"].to_list() == [True, True, False, False, False, False]
    assert out["phone_reject_reason"].to_list() == [
        None,
        None,
        "blank",
        "too_short",
        "region_not_allowed",
        "too_short",
    ]
    assert out["phone_e164"].to_list()[:2] == ["+12125550123", "+12125550123"]


def test_float64_column() -> None:
    out = normalize(
        [2125550123.0, math.nan, None, 12125550123.0, 5550123.0, 8765550123.0],
        dtype=pl.Float64,
    )
    assert out["phone_normalized"].to_list() == [
        "2125550123",
        None,
        None,
        "2125550123",
        None,
        None,
    ]
    assert out["phone_e164"].to_list() == ["+12125550123", None, None, "+12125550123", None, None]
    assert out["phone_reject_reason"].to_list() == [
        None,
        "not_a_phone",
        "blank",
        None,
        "too_short",
        "region_not_allowed",
    ]
    assert out["phone_region"].to_list() == ["US", None, None, "US", None, "JM"]


def test_parquet_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "phones.parquet"
    pl.DataFrame(
        {
            "as_int": [2125550123, None, 4165550123],
            "as_float": [2125550123.0, math.nan, 4165550123.0],
        },
        schema={"as_int": pl.Int64, "as_float": pl.Float64},
    ).write_parquet(path)
    for column in ("as_int", "as_float"):
        out = normalize_phones(pl.scan_parquet(path), column).collect()
        assert out["phone_e164"].to_list() == ["+12125550123", None, "+14165550123"], column
        reason = "blank" if column == "as_int" else "not_a_phone"
        assert out["phone_reject_reason"].to_list() == [None, reason, None], column
        assert out["phone_region"].to_list() == ["US", None, "CA"], column


# A numeric cell is a phone only if it is a non-negative whole number: NaN, infinities
# and negative numbers are not_a_phone, a float from 2^53 on (where float64 no longer
# holds every whole number) inexact_number, anything else of 16 or more digits too_long
# (even past Int64's range), never blank (only null is) and never a made-up number.
FLOAT_CASES: list[tuple[float | None, str | None]] = [
    (2125550123.0, None),
    (12125550123.0, None),
    (None, "blank"),
    (math.nan, "not_a_phone"),
    (math.inf, "not_a_phone"),
    (-math.inf, "not_a_phone"),
    (-2125550123.0, "not_a_phone"),
    (-12125550123.0, "not_a_phone"),
    (-1.0, "not_a_phone"),
    (1e20, "inexact_number"),
    (1e15, "too_long"),
    (999_999_999_999_999.0, "too_long"),
    (2.0**53 - 1, "too_long"),
    (2.0**53, "inexact_number"),
    (9.3e18, "inexact_number"),
    (2.0**63, "inexact_number"),
    (2.0**64, "inexact_number"),
    (1.7976931348623157e308, "inexact_number"),
    (212555012345.0, "too_long"),
    (0.0, "too_short"),
    (-0.0, "too_short"),
    (5550123.0, "too_short"),
    (1230123456.0, "invalid_number"),
    (8761234567.0, "invalid_number"),
    (8765550123.0, "region_not_allowed"),
]
INT_CASES: list[tuple[int | None, str | None]] = [
    (2125550123, None),
    (12125550123, None),
    (None, "blank"),
    (2**63 - 1, "too_long"),
    (-(2**63), "not_a_phone"),
    (-2125550123, "not_a_phone"),
    (-12125550123, "not_a_phone"),
    (-1, "not_a_phone"),
    (0, "too_short"),
    (212555012345, "too_long"),
    (1230123456, "invalid_number"),
    (8761234567, "invalid_number"),
    (8765550123, "region_not_allowed"),
]


def _check_numeric_cases(
    out: pl.DataFrame, cases: list[tuple[object, str | None]], what: str
) -> None:
    assert out["phone_reject_reason"].to_list() == [reason for _, reason in cases], what
    for (value, reason), row in zip(cases, out.iter_rows(named=True), strict=True):
        assert_row_invariants({**row, "phone": value}, DEFAULT_REGIONS)
        if reason is None:
            assert row["phone_normalized"] == "2125550123", (what, value)
            assert row["phone_e164"] == "+12125550123", (what, value)


def test_numeric_edge_cases_from_parquet(tmp_path: Path) -> None:
    path = tmp_path / "numeric.parquet"
    floats = pl.Series("f64", [value for value, _ in FLOAT_CASES], dtype=pl.Float64)
    ints = pl.Series("i64", [value for value, _ in INT_CASES], dtype=pl.Int64)
    pl.DataFrame([floats]).write_parquet(path)
    out = normalize_phones(pl.scan_parquet(path), "f64").collect()
    assert out.schema["f64"] == pl.Float64
    _check_numeric_cases(out, FLOAT_CASES, "Float64")
    pl.DataFrame([ints]).write_parquet(path)
    out = normalize_phones(pl.scan_parquet(path), "i64").collect()
    _check_numeric_cases(out, INT_CASES, "Int64")


def test_other_numeric_types_from_parquet(tmp_path: Path) -> None:
    path = tmp_path / "numeric.parquet"
    pl.DataFrame(
        {
            "u64": pl.Series([2**64 - 1, 2125550123, 0], dtype=pl.UInt64),
            "i32": pl.Series([-2125550, 2125550, None], dtype=pl.Int32),
            "f32": pl.Series([math.nan, -math.inf, 3e38], dtype=pl.Float32),
            "dec": pl.Series(["-2125550123.00", "2125550123.00", None], dtype=pl.Decimal(12, 2)),
        }
    ).write_parquet(path)
    want = {
        "u64": ["too_long", None, "too_short"],
        "i32": ["not_a_phone", "too_short", "blank"],
        "f32": ["not_a_phone", "not_a_phone", "inexact_number"],
        "dec": ["not_a_phone", None, "blank"],
    }
    for column, reasons in want.items():
        out = normalize_phones(pl.scan_parquet(path), column).collect()
        assert out["phone_reject_reason"].to_list() == reasons, column
        for row in out.iter_rows(named=True):
            assert_row_invariants({**row, "phone": row[column]}, DEFAULT_REGIONS)


def test_narrow_float_columns_hold_no_phone_exactly(tmp_path: Path) -> None:
    """A float32 holds every whole number only below 2^24 (float16: 2^11): a 10-digit
    phone in it is a neighbour of the number (2125550123 reads 2125550080, itself a valid
    number, someone else's), so it is inexact_number, never normalized."""
    assert one("2125550080")["phone_valid"] is True
    path = tmp_path / "narrow.parquet"
    f32 = [2125550123.0, 4165550123.0, 5550123.0, 2.0**24 - 1, 2.0**24, None, math.nan]
    f16 = [2125550123.0, 2047.0, 2048.0, 65504.0, 1.0, None, math.nan]  # 2125550123 -> inf
    pl.DataFrame(
        {"f32": pl.Series(f32, dtype=pl.Float32), "f16": pl.Series(f16, dtype=pl.Float16)}
    ).write_parquet(path)
    inexact, short = "inexact_number", "too_short"
    want = {
        "f32": [inexact, inexact, short, short, inexact, "blank", "not_a_phone"],
        "f16": ["not_a_phone", short, inexact, inexact, short, "blank", "not_a_phone"],
    }
    for column, reasons in want.items():
        out = normalize_phones(pl.scan_parquet(path), column).collect()
        assert out["phone_reject_reason"].to_list() == reasons, column
        assert out["phone_normalized"].to_list() == [None] * len(reasons), column
        for row in out.iter_rows(named=True):
            assert_row_invariants({**row, "phone": row[column]}, DEFAULT_REGIONS)


# --------------------------------------------------- agreement with libphonenumber

AREA_CODE_POOLS = [
    list(range(200, 1000)),
    NANP_AREA_CODES,
    NANP_AREA_CODES,
    CARIBBEAN_AREA_CODES,
]


def ten_digits(seed: int) -> str:
    """A 10-digit string: mostly a real area code (any of 200-999, one used in NANP
    metadata, a Caribbean one), then 7 random digits; one time in five any 10 digits.

    One integer per number keeps drawing lists of hundreds of numbers cheap."""
    pool, rest = divmod(seed, 10**10)
    if pool >= len(AREA_CODE_POOLS):
        return f"{rest:010d}"
    codes = AREA_CODE_POOLS[pool]
    area, line = divmod(rest, 10**7)
    return f"{codes[area % len(codes)]:03d}{line:07d}"


ten_digit_numbers = st.integers(0, (len(AREA_CODE_POOLS) + 1) * 10**10 - 1).map(ten_digits)
biased_numbers = st.integers(0, len(AREA_CODE_POOLS) * 10**10 - 1).map(ten_digits)


def realistic_numbers(seed: int, count: int) -> list[str]:
    """``count`` numbers drawn uniformly from the area-code pools, nine in ten with an
    exchange of 200-999 (so many are valid), from a seed hypothesis draws.

    Hypothesis favours small integers and repeats, which alone leaves most numbers
    invalid; these bulk numbers keep the comparison broad at the cost of a Random."""
    rng = random.Random(seed)
    numbers = []
    for _ in range(count):
        area = rng.choice(AREA_CODE_POOLS[rng.randrange(len(AREA_CODE_POOLS))])
        exchange = rng.randrange(200, 1000) if rng.random() < 0.9 else rng.randrange(1000)
        numbers.append(f"{area:03d}{exchange:03d}{rng.randrange(10_000):04d}")
    return numbers


seeds = st.integers(0, 2**32 - 1)
BULK = 120


def test_ten_digits_draws_from_every_pool() -> None:
    assert ten_digits(0) == "2000000000"
    assert ten_digits(799 * 10**7 + 9_999_999) == "9999999999"
    assert ten_digits(3 * 10**10 + 17 * 10**7 + 42) == f"{CARIBBEAN_AREA_CODES[17]}0000042"
    assert ten_digits(len(AREA_CODE_POOLS) * 10**10 + 123) == "0000000123"
    areas = {ten_digits(pool * 10**10 + i * 10**7)[:3] for pool in range(4) for i in range(800)}
    assert {"876", "242", "787", "809", "212", "416"} <= areas


def assert_agrees_with_libphonenumber(numbers: list[str], regions: tuple[str, ...]) -> None:
    out = normalize(numbers, regions)
    assert out["phone"].to_list() == numbers
    for row in out.iter_rows(named=True):
        digits = row["phone"]
        valid, region = libphonenumber_says(digits, regions)
        assert row["phone_valid"] is valid, (digits, regions, row, region)
        if valid:
            assert row["phone_region"] == region, (digits, row)
            assert row["phone_normalized"] == digits
            assert row["phone_e164"] == "+1" + digits
        elif digits.startswith("011"):
            # Read as the international prefix 011, not as an area code.
            assert row["phone_reject_reason"] in ("foreign_country_code", "too_short"), row
        elif libphonenumber(digits)[0]:
            # Valid where it belongs, only not allowed here.
            assert row["phone_reject_reason"] == "region_not_allowed", (digits, regions, row)
            assert row["phone_region"] == region not in regions, (digits, row)
        else:
            assert row["phone_reject_reason"] == "invalid_number", (digits, regions, row)
            assert row["phone_region"] is None, (digits, row)


REGION_SETS = [DEFAULT_REGIONS, OTHER_REGIONS]


@settings(SETTINGS, max_examples=300)
@given(
    st.lists(ten_digit_numbers, min_size=20, max_size=100),
    seeds,
    st.sampled_from(REGION_SETS),
)
def test_validity_agrees_with_libphonenumber(
    numbers: list[str], seed: int, regions: tuple[str, ...]
) -> None:
    assert_agrees_with_libphonenumber(numbers + realistic_numbers(seed, BULK), regions)


def test_realistic_numbers_are_mostly_valid_and_varied() -> None:
    numbers = realistic_numbers(7, 3000)
    assert realistic_numbers(7, 3000) == numbers
    verdicts = Counter(libphonenumber(digits) for digits in numbers)
    valid = sum(n for (ok, _), n in verdicts.items() if ok)
    assert valid > 1500, verdicts
    regions = {region for (ok, region) in verdicts if ok}
    assert {"US", "CA", "JM", "PR", "DO", "BS"} <= regions, regions


def test_validity_agrees_on_known_numbers() -> None:
    """Deterministic companions of the hypothesis test: libphonenumber's example number
    of every type of every NANP region, and a few that need care."""
    numbers = {"2125550123", "8005550199", "8001230123", "8765550123", "6585550123"}
    numbers |= {"7875550123", "9395550123", "8095550123", "8295550123", "8495550123"}
    numbers |= {"6332345678", "5222345678", "0003101234", "0000000000", "2000000000"}
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1]:
        for kind in phonenumbers.PhoneNumberType.values():
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None and len(str(example.national_number)) == 10:
                numbers.add(f"{example.national_number:010d}")
    every_region = tuple(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1])
    for regions in (*REGION_SETS, every_region, ("CA",), ("JM",)):
        assert_agrees_with_libphonenumber(sorted(numbers), regions)


SPREADSHEET = ["", "", "", ".0", ".00"]
SEPARATORS = ["", " ", "-", ".", "/", " - "]
AREA_STYLES = ["{a}{s}", "({a})", "({a}) ", "({a}){s}"]
COUNTRY = ["", "", "1", "1 ", "1-", "+1", "+1 ", "+1-", "+ 1 ", "011 1 ", "0111"]
TEL = ["", "", "tel:", "TEL:", "Tel: ", "tel: +1 "]
MARKERS = ["x", " x", " X ", "ext", " ext ", " ext.", " Ext. ", " EXTENSION ", "#", " # "]
PADS = ["", "", " ", "  ", "\t"]


def _pick(style: int, choices: list[str]) -> tuple[int, str]:
    style, index = divmod(style, len(choices))
    return style, choices[index]


def format_number(digits: str, style: int) -> tuple[str, str | None]:
    """(text, extension): ``digits`` written in the style that ``style`` encodes."""
    area, exchange, line = digits[:3], digits[3:6], digits[6:]
    style, float_tail = _pick(style, SPREADSHEET)
    style, lead = _pick(style, PADS)
    style, trail = _pick(style, PADS)
    if float_tail:  # a number a spreadsheet stored as a float
        style, country = _pick(style, ["", "1", "+1"])
        return f"{lead}{country}{digits}{float_tail}{trail}", None
    style, sep = _pick(style, SEPARATORS)
    style, area_style = _pick(style, AREA_STYLES)
    style, country = _pick(style, COUNTRY)
    style, tel = _pick(style, TEL)
    if tel.endswith("+1 "):
        country = ""
    body = area_style.format(a=area, s=sep) + f"{exchange}{sep}{line}"
    style, with_extension = divmod(style, 2)
    if not with_extension:
        return f"{lead}{tel}{country}{body}{trail}", None
    style, marker = _pick(style, MARKERS)
    style, width = divmod(style, 6)
    extension = str(style % 10 ** (width + 1)).zfill(width + 1)
    return f"{lead}{tel}{country}{body}{marker}{extension}{trail}", extension


def _formatted(digits: str, style: int) -> tuple[str, str, str | None]:
    text, extension = format_number(digits, style)
    return text, digits, extension


# (text, its 10 digits, its extension): a number written the way people do. One
# integer picks the whole style, which keeps drawing long lists cheap.
formatted = st.builds(_formatted, biased_numbers, st.integers(0, 2**62))


def random_formatted(seed: int, count: int) -> list[tuple[str, str, str | None]]:
    rng = random.Random(seed)
    return [_formatted(digits, rng.getrandbits(62)) for digits in realistic_numbers(seed, count)]


def test_format_number_covers_every_style() -> None:
    texts = [format_number("2125550123", style * 7919) for style in range(20_000)]
    joined = "\n".join(text for text, _ in texts)
    for piece in [*SEPARATORS[1:], *MARKERS, *COUNTRY[2:], *TEL[2:], "(212)", ".0\n", "\t"]:
        assert piece in joined, piece
    assert sum(ext is not None for _, ext in texts) > 5_000
    assert format_number("2125550123", 0) == ("2125550123", None)
    assert sum(text.endswith(" ") for text, _ in texts) > 1_000


@settings(SETTINGS, max_examples=150)
@given(st.lists(formatted, min_size=20, max_size=100), seeds)
def test_formatting_does_not_change_the_result(
    drawn: list[tuple[str, str, str | None]], seed: int
) -> None:
    cases = drawn + random_formatted(seed, BULK)
    texts = [text for text, _, _ in cases]
    both = normalize(texts + [digits for _, digits, _ in cases])
    fancy, plain = both.head(len(cases)), both.tail(len(cases))
    for column in (
        "phone_normalized",
        "phone_e164",
        "phone_valid",
        "phone_reject_reason",
        "phone_region",
    ):
        assert fancy[column].to_list() == plain[column].to_list(), column
    for (text, digits, extension), row in zip(cases, fancy.iter_rows(named=True), strict=True):
        if row["phone_valid"]:
            assert row["phone_normalized"] == digits, text
            assert row["phone_extension"] == extension, text
        else:
            assert row["phone_extension"] is None, text


# ------------------------------------------------------------------------ properties

PHONEISH = "0123456789 ()-.+/#xXeEt:lT"
phoneish_text = st.one_of(
    st.text(),
    st.text(alphabet=PHONEISH, max_size=25),
    st.text(alphabet="0123456789 -+()", min_size=8, max_size=16),
    st.text(alphabet="0123456789", min_size=9, max_size=12),
    formatted.map(lambda case: case[0]),
    seeds.map(lambda seed: random_formatted(seed, 1)[0][0]),  # mostly valid numbers
    st.none(),
)


def assert_row_invariants(row: dict[str, object], regions: tuple[str, ...]) -> None:
    if row["phone_valid"]:
        national = row["phone_normalized"]
        assert isinstance(national, str) and TEN_DIGITS.fullmatch(national), row
        assert row["phone_e164"] == "+1" + national, row
        assert E164.fullmatch(str(row["phone_e164"])), row
        assert row["phone_reject_reason"] is None, row
        assert row["phone_region"] in regions, row
        assert row["phone_source"] == "input", row
        extension = row["phone_extension"]
        assert extension is None or re.fullmatch(r"[0-9]+", str(extension)), row
    else:
        assert row["phone_valid"] is False, row
        assert row["phone_reject_reason"] in REJECT_REASONS, row
        assert row["phone_normalized"] is None, row
        assert row["phone_e164"] is None, row
        assert row["phone_extension"] is None, row
        assert row["phone_source"] is None, row
        if row["phone_reject_reason"] == "region_not_allowed":
            assert row["phone_region"] is not None, row
            assert row["phone_region"] not in regions, row
        else:
            assert row["phone_region"] is None, row
    value = row["phone"]
    if value is None or (isinstance(value, str) and value.strip(" \t\r\n") == ""):
        assert row["phone_reject_reason"] == "blank", row


@settings(SETTINGS, max_examples=150)
@given(st.lists(phoneish_text, min_size=10, max_size=100), st.sampled_from(REGION_SETS))
def test_every_row_is_valid_or_has_one_reason_and_is_stable(
    values: list[str | None], regions: tuple[str, ...]
) -> None:
    out = normalize(values, regions)
    assert out.height == len(values)
    assert out["phone"].to_list() == values
    for row in out.iter_rows(named=True):
        assert_row_invariants(row, regions)

    # Normalizing twice changes nothing: feed phone_e164 and phone_normalized back in.
    first = out.filter(pl.col("phone_valid"))
    again = normalize(first["phone_e164"].to_list() + first["phone_normalized"].to_list(), regions)
    assert again["phone_valid"].all()
    assert again["phone_normalized"].to_list() == first["phone_normalized"].to_list() * 2
    assert again["phone_e164"].to_list() == first["phone_e164"].to_list() * 2
    assert again["phone_region"].to_list() == first["phone_region"].to_list() * 2
    assert again["phone_extension"].null_count() == again.height


def test_normalizing_twice_on_fixed_examples() -> None:
    values = [value for value, _, _ in ACCEPTED_CASES]
    first = normalize(values)
    assert first["phone_valid"].all()
    for column in ("phone_e164", "phone_normalized"):
        again = normalize(first[column].to_list())
        assert again["phone_normalized"].to_list() == first["phone_normalized"].to_list()
        assert again["phone_e164"].to_list() == first["phone_e164"].to_list()
        assert again["phone_valid"].all()


@settings(SETTINGS, max_examples=60)
@given(
    st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(0, 10**12).map(float),
            st.sampled_from([math.nan, math.inf, -math.inf, 1e15, 2.0**63, -0.0]),
            biased_numbers.map(float),
            st.none(),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_float_column_reads_like_its_digits(
    tmp_path_factory: pytest.TempPathFactory, values: list[float | None]
) -> None:
    """A Float64 Parquet column gets what the same whole number as text gets; anything
    else gets the reason of its kind, never ``blank`` nor a phone."""
    path = tmp_path_factory.mktemp("floats") / "floats.parquet"
    pl.DataFrame({"phone": pl.Series(values, dtype=pl.Float64)}).write_parquet(path)
    out = normalize_phones(pl.scan_parquet(path), "phone").collect()
    whole = [
        None
        if v is None or not math.isfinite(v) or v < 0 or v >= 1e15 or v != int(v)
        else str(int(v))
        for v in values
    ]
    as_text = normalize([w if w is not None else "" for w in whole])
    for value, text, row, text_row in zip(
        values, whole, out.iter_rows(named=True), as_text.iter_rows(named=True), strict=True
    ):
        assert_row_invariants(row, DEFAULT_REGIONS)
        reason = row["phone_reject_reason"]
        if value is None:
            assert reason == "blank"
        elif math.isnan(value) or math.isinf(value) or value < 0:
            assert reason == "not_a_phone", value
        elif value >= 2.0**53:
            assert reason == "inexact_number", value
        elif value >= 1e15:
            assert reason == "too_long", value
        elif text is not None:
            for column in ("phone_normalized", "phone_reject_reason", "phone_region"):
                assert row[column] == text_row[column], (value, column)
        else:  # a fraction: never a phone
            assert reason not in (None, "blank"), value


# ------------------------------------------------------------------------ regions


def test_region_not_allowed_then_allowed() -> None:
    row = one("876-555-0123")
    assert row["phone_valid"] is False
    assert row["phone_reject_reason"] == "region_not_allowed"
    assert row["phone_region"] == "JM"
    assert row["phone_normalized"] is None

    row = one("876-555-0123", ("US", "CA", "JM"))
    assert row["phone_valid"] is True
    assert row["phone_reject_reason"] is None
    assert row["phone_region"] == "JM"
    assert row["phone_normalized"] == "8765550123"
    assert row["phone_e164"] == "+18765550123"


def test_region_filter_applies_to_canada_and_us_too() -> None:
    out = normalize(["416-555-0123", "212-555-0123", "787-555-0123"], OTHER_REGIONS)
    assert out["phone_valid"].to_list() == [False, True, True]
    assert out["phone_reject_reason"].to_list() == ["region_not_allowed", None, None]
    assert out["phone_region"].to_list() == ["CA", "US", "PR"]

    out = normalize(["416-555-0123", "212-555-0123"], ("CA",))
    assert out["phone_valid"].to_list() == [True, False]
    assert out["phone_region"].to_list() == ["CA", "US"]
    assert out["phone_reject_reason"].to_list() == [None, "region_not_allowed"]


# ------------------------------------------------------------------- consent dates


def _iso(days: pl.Series) -> list[str | None]:
    return days.dt.to_string("%Y-%m-%d").to_list()


DATE_CASES: list[tuple[str | None, str | None]] = [
    ("03/15/2021", "2021-03-15"),
    ("2021-03-15", "2021-03-15"),
    ("03/15/21", "2021-03-15"),
    ("20210315", "2021-03-15"),
    ("3/5/2021", "2021-03-05"),
    ("3/05/2021", "2021-03-05"),
    ("03/5/2021", "2021-03-05"),
    ("3/5/21", "2021-03-05"),
    ("2021-3-5", "2021-03-05"),
    ("12/31/99", "1999-12-31"),
    ("02/29/2020", "2020-02-29"),
    ("  03/15/2021  ", "2021-03-15"),
    ("\t2021-03-15 ", "2021-03-15"),
    (" 20210315", "2021-03-15"),
    ("02/30/2021", None),
    ("13/45/2021", None),
    ("02/29/2021", None),
    ("2021-02-30", None),
    ("2021-13-01", None),
    ("20211301", None),
    ("20210230", None),
    ("00/10/2021", None),
    ("", None),
    ("   ", None),
    (None, None),
    ("yesterday", None),
    ("n/a", None),
    ("12345678", None),
    ("2021/03/15", None),
    ("2021-03-15x", None),
    ("03/15/2021 10:00", None),
    ("/", None),
    ("-", None),
]


@pytest.mark.parametrize(("value", "iso"), DATE_CASES, ids=[repr(v) for v, _ in DATE_CASES])
def test_consent_date(value: str | None, iso: str | None) -> None:
    frame = pl.DataFrame({"consent": [value]}, schema={"consent": pl.String}).lazy()
    out = normalize_consent_dates(frame, "consent").collect()
    assert _iso(out[CONSENT_DATE_COLUMN]) == [iso]
    assert out.schema[CONSENT_DATE_COLUMN] == pl.Date


def test_consent_dates_in_one_frame() -> None:
    values = [value for value, _ in DATE_CASES]
    frame = pl.DataFrame({"consent": values}, schema={"consent": pl.String}).lazy()
    out = normalize_consent_dates(frame, "consent").collect()
    assert out["consent"].to_list() == values
    assert _iso(out[CONSENT_DATE_COLUMN]) == [iso for _, iso in DATE_CASES]


def test_date_typed_consent_column_passes_through() -> None:
    dates = [dt.date(2021, 3, 15), None, dt.date(1999, 12, 31)]
    frame = pl.DataFrame({"consent": dates}).lazy()
    out = normalize_consent_dates(frame, "consent").collect()
    assert out[CONSENT_DATE_COLUMN].to_list() == dates

    stamps = [dt.datetime(2021, 3, 15, 23, 59), None]
    out = normalize_consent_dates(pl.DataFrame({"consent": stamps}).lazy(), "consent").collect()
    assert out[CONSENT_DATE_COLUMN].to_list() == [dt.date(2021, 3, 15), None]

    expr = consent_date_expr("consent", pl.Date)
    out = pl.DataFrame({"consent": dates}).select(expr.alias("day"))
    assert out["day"].to_list() == dates


@settings(SETTINGS, max_examples=100)
@given(
    st.lists(
        st.tuples(st.dates(dt.date(1970, 1, 1), dt.date(2068, 12, 31)), st.integers(0, 5)),
        min_size=1,
        max_size=100,
    )
)
def test_consent_date_formats_round_trip(cases: list[tuple[dt.date, int]]) -> None:
    formats = ["%m/%d/%Y", "%Y-%m-%d", "%m/%d/%y", "%Y%m%d", "{m}/{d}/%Y", "{m}/{d}/%y"]
    values = []
    for day, which in cases:
        fmt = formats[which].format(m=day.month, d=day.day)
        values.append(day.strftime(fmt))
    frame = pl.DataFrame({"consent": values}).lazy()
    out = normalize_consent_dates(frame, "consent").collect()
    assert out[CONSENT_DATE_COLUMN].to_list() == [day for day, _ in cases], values


# ------------------------------------------------------------------- vectorization


def _plan_has_python(plan: str) -> bool:
    text = plan.lower()
    return any(word in text for word in ("python", "map_elements", "map_batches", "opaque"))


def test_a_python_udf_shows_in_the_plan() -> None:
    """The assertion below means something: a UDF does show up in explain()."""
    lf = pl.DataFrame({"phone": ["2125550123"]}).lazy()
    per_row = lf.with_columns(
        pl.col("phone").map_elements(lambda s: s, return_dtype=pl.String).alias("x")
    )
    batch = lf.with_columns(pl.col("phone").map_batches(lambda s: s, return_dtype=pl.String))
    assert _plan_has_python(per_row.explain())
    assert _plan_has_python(batch.explain())
    assert _plan_has_python(lf.map_batches(lambda df: df).explain())


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        (["2125550123"], pl.String),
        ([2125550123], pl.Int64),
        ([2125550123.0], pl.Float64),
    ],
    ids=["string", "int64", "float64"],
)
@pytest.mark.parametrize("regions", [DEFAULT_REGIONS, OTHER_REGIONS], ids=["US-CA", "US-PR-JM"])
def test_normalizer_is_vectorized(
    values: list[object], dtype: pl.DataType, regions: tuple[str, ...]
) -> None:
    lf = normalize_phones(
        pl.DataFrame({"phone": values}, schema={"phone": dtype}).lazy(), "phone", regions
    )
    assert isinstance(lf, pl.LazyFrame)
    plan = lf.explain()
    assert "phone_e164" in plan
    assert not _plan_has_python(plan), plan


def test_consent_dates_are_vectorized() -> None:
    for dtype, value in ((pl.String, "03/15/2021"), (pl.Date, dt.date(2021, 3, 15))):
        frame = pl.DataFrame({"consent": [value]}, schema={"consent": dtype}).lazy()
        lf = normalize_consent_dates(frame, "consent")
        assert isinstance(lf, pl.LazyFrame)
        plan = lf.explain()
        assert CONSENT_DATE_COLUMN in plan
        assert not _plan_has_python(plan), plan


# ------------------------------------------- the same output as the code it replaced
# tests/normalize_reference.py is the normalizer before the validity table and the
# masked steps; every row must come out the same, whatever the cell holds.

# Pieces that each reach a different branch: tel:, +, 011, a 1, the .0 of a spreadsheet,
# extension markers, Unicode spaces and digits, letters, scientific notation.
PIECES = [
    *"0123456789",
    "212",
    "555",
    "0123",
    "876",
    "416",
    " ",
    "-",
    "(",
    ")",
    ".",
    "/",
    "+",
    "+1",
    "1",
    "011",
    "tel:",
    "TEL: ",
    ".0",
    ".00",
    "x",
    "X",
    "#",
    " ext ",
    "ext.",
    "Extension",
    "\t",
    "\u00a0",
    "\u2003",
    "\u0663",
    "e",
    "E+09",
    "a",
    "\u017f",  # long s: folds to s in a case-insensitive regex
]
pieced = st.lists(st.sampled_from(PIECES), max_size=10).map("".join)
any_cell = st.one_of(pieced, phoneish_text)


def as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with its typed columns as the text the reference wrote (and a CSV
    output still holds): an Enum's value, a Date in ISO."""
    return frame.with_columns(
        pl.col(pl.Enum).cast(pl.String), pl.col(pl.Date).dt.to_string("%Y-%m-%d")
    )


def same_as_before(frame: pl.LazyFrame, regions: tuple[str, ...]) -> None:
    ours = normalize_phones(frame, "phone", regions).collect()
    theirs = reference.normalize_phones(frame, "phone", regions).collect()
    assert ours.columns == [*frame.collect_schema().names(), *PHONE_COLUMNS]
    assert_frame_equal(as_text(ours.select(theirs.columns)), theirs)


@settings(SETTINGS, max_examples=300)
@given(st.lists(any_cell, min_size=1, max_size=80), st.sampled_from(REGION_SETS))
def test_same_output_as_before_for_any_text(
    values: list[str | None], regions: tuple[str, ...]
) -> None:
    same_as_before(pl.LazyFrame({"phone": values}, schema={"phone": pl.String}), regions)


@settings(SETTINGS, max_examples=100)
@given(
    st.lists(
        st.one_of(
            st.integers(-(2**63), 2**63 - 1),
            st.integers(0, 2 * 10**10),
            biased_numbers.map(int),
            st.none(),
        ),
        min_size=1,
        max_size=60,
    ),
    st.sampled_from([pl.Int64, pl.Float64, pl.Float32]),
)
def test_same_output_as_before_for_numeric_columns(
    values: list[int | None], dtype: pl.DataType
) -> None:
    frame = pl.LazyFrame({"phone": values}, schema={"phone": pl.Int64})
    same_as_before(frame.with_columns(pl.col("phone").cast(dtype)), DEFAULT_REGIONS)


def _regex_spaces() -> list[str]:
    """Every character polars' regex \\s matches (Python's \\s also takes \\x1c-\\x1f),
    and those four."""
    every = pl.Series([chr(c) for c in range(0x3001)])
    return [*every.filter(every.str.contains(r"^\s$")).to_list(), *"\x1c\x1d\x1e\x1f"]


def test_same_output_as_before_with_every_space_and_case() -> None:
    """Every character the phone's shape lets through besides digits (each whitespace
    character, tel: and the extension's words in any case, the long s that folds to s)
    is taken out of the digits as the reference's [^0-9]+ takes it out."""
    spaces = _regex_spaces()
    assert len(spaces) == 25 + 4  # Unicode White_Space (all below U+3001), and \x1c-\x1f
    cells: list[str | None] = []
    for space in spaces:
        cells += [
            f"{space}212{space}555{space}0123{space}",
            f"TeL:{space}+1{space}(212){space}555-0123{space}EXTENSION{space}42",
            f"tel:{space}011{space}1{space}212{space}555{space}0123{space}x{space}7",
            f"1{space}212.555.0123{space}ExTen\u017fion.{space}12",
            f"212{space}555{space}0123{space}#{space}9",
            f"+1{space}212{space}555{space}0123{space}Ext.{space}1",
            f"2125550123.00{space}",
        ]
    frame = pl.LazyFrame({"phone": cells}, schema={"phone": pl.String})
    for regions in REGION_SETS:
        same_as_before(frame, regions)
    valid = normalize_phones(frame, "phone").collect()["phone_valid"]
    assert valid.sum() == len(cells) - 4 * 7  # a valid number, but with \x1c-\x1f


def test_same_output_as_before_on_the_sample_file(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write_sample(path, 30_000, seed=3)
    frame = pl.scan_csv(path, infer_schema=False)
    same_as_before(frame.select("phone"), DEFAULT_REGIONS)
    ours = normalize_consent_dates(frame, "consent_date").collect()
    theirs = frame.with_columns(
        reference.consent_date_expr("consent_date", pl.String).alias(CONSENT_DATE_COLUMN)
    ).collect()
    assert_frame_equal(as_text(ours), theirs)


@settings(SETTINGS, max_examples=150)
@given(
    st.lists(
        st.one_of(
            st.dates(dt.date(1900, 1, 1), dt.date(2099, 12, 31)).flatmap(
                lambda d: st.sampled_from(
                    [f"{d:%m/%d/%Y}", f"{d:%m/%d/%y}", f"{d:%Y-%m-%d}", f"{d:%Y%m%d}"]
                )
            ),
            st.text(alphabet="0123456789/- \t", max_size=12),
            st.text(max_size=12),
            st.none(),
        ),
        min_size=1,
        max_size=30,
    ).flatmap(lambda cells: st.lists(st.sampled_from(cells), min_size=1, max_size=80))
)
def test_consent_dates_read_in_steps_as_in_one_expression(cells: list[str | None]) -> None:
    """normalize_consent_dates reads each distinct cell once and joins it back: the
    rows keep their order and get what consent_date_expr (and the code before) says."""
    frame = pl.LazyFrame(
        {"n": range(len(cells)), "d": cells}, schema={"n": pl.Int64, "d": pl.String}
    )
    out = normalize_consent_dates(frame, "d").collect()
    assert out["n"].to_list() == list(range(len(cells)))
    one_expression = frame.select(consent_date_expr("d", pl.String)).collect()["d"]
    before = frame.select(reference.consent_date_expr("d", pl.String)).collect()["d"]
    assert out[CONSENT_DATE_COLUMN].to_list() == one_expression.to_list()
    assert _iso(out[CONSENT_DATE_COLUMN]) == before.to_list()


def test_trace_ids_are_the_ones_of_before() -> None:
    """The zero padding is computed another way; the ids (which a resumed run must
    find again) are unchanged, up to the last row number they can hold."""
    rows = [1, 2, 9, 10, 99_999, 3_000_000, 4_294_967_296, 10**12 - 1]  # 12 digits at most
    frame = pl.DataFrame({"r": rows}, schema={"r": pl.Int64})
    before = (pl.lit(trace_prefix("abc")) + pl.col("r").cast(pl.String).str.zfill(12)).alias("r")
    ours = frame.select(trace_id_expr("abc", "r"))[TRACE_ID_COLUMN].to_list()
    assert ours == frame.select(before)["r"].to_list()
    assert all(
        re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-\d{12}", i)
        for i in ours
    )
    index = pl.DataFrame({"x": [0, 0]}).with_row_index("r", offset=1)  # the reader's dtype
    assert index.select(trace_id_expr("abc", "r"))[TRACE_ID_COLUMN].to_list() == ours[:2]
