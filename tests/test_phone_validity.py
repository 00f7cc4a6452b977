"""The normalizer against libphonenumber itself, plus each reject reason and date format."""

from __future__ import annotations

import random
import re
from pathlib import Path

import normalize_reference as reference
import phonenumbers
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.consent_dates import consent_date_expr
from pipeline.normalize import REJECT_REASONS, normalize_phones
from pipeline.phone_metadata import NANP_REGIONS, region_rule, region_rules
from pipeline.validity_table import ANSWERS, KEY_DIGITS, _Dfa, validity_table


def _area_code_is_used(code: int) -> bool:
    number = phonenumbers.PhoneNumber(country_code=1, national_number=int(f"{code}2345678"))
    return phonenumbers.is_valid_number(number)


# Area codes that libphonenumber accepts somewhere in NANP (US, CA and the Caribbean).
NANP_AREA_CODES = [str(code) for code in range(200, 1000) if _area_code_is_used(code)]


def normalize(values: list[object], regions: tuple[str, ...] = ("US", "CA")) -> pl.DataFrame:
    return normalize_phones(pl.DataFrame({"p": values}).lazy(), "p", regions).collect()


def nanp(digits: str) -> phonenumbers.PhoneNumber:
    """``digits`` as a +1 number, leading zeros kept (``0003101234`` is not 310-1234)."""
    zeros = len(digits) - len(str(int(digits)))
    number = phonenumbers.PhoneNumber(
        country_code=1,
        national_number=int(digits),
        italian_leading_zero=True if zeros else None,
        number_of_leading_zeros=zeros if zeros > 1 else None,
    )
    assert phonenumbers.national_significant_number(number) == digits
    return number


def expected(digits: str, regions: tuple[str, ...]) -> tuple[bool, str | None]:
    number = nanp(digits)
    region = phonenumbers.region_code_for_number(number)
    return phonenumbers.is_valid_number(number) and region in regions, region


TEN_DIGITS = st.one_of(
    st.from_regex(r"\A[0-9]{10}\Z"),
    st.builds(
        lambda a, rest: a + rest, st.sampled_from(NANP_AREA_CODES), st.from_regex(r"\A[0-9]{7}\Z")
    ),
)


@pytest.mark.parametrize("regions", [("US", "CA"), ("US", "PR", "JM"), ("CA",)])
@settings(max_examples=60, deadline=None)
@given(numbers=st.lists(TEN_DIGITS, min_size=50, max_size=200))
def test_validity_and_region_agree_with_libphonenumber(
    numbers: list[str], regions: tuple[str, ...]
) -> None:
    out = normalize(list(numbers), regions)
    for digits, valid, region in zip(numbers, out["phone_valid"], out["phone_region"], strict=True):
        want_valid, want_region = expected(digits, regions)
        assert valid == want_valid, digits
        if valid:
            assert region == want_region, digits


# Caribbean area codes are claimed by their leading digits whether or not the rest is
# valid there: with a random exchange and line many such numbers are invalid.
LEADING_DIGIT_AREA_CODES = [
    code
    for code in NANP_AREA_CODES
    if phonenumbers.region_code_for_number(nanp(code + "2345678")) not in ("US", "CA")
]
REGION_SUBSETS = st.sets(st.sampled_from(NANP_REGIONS), min_size=1).map(
    lambda regions: tuple(sorted(regions))
)


@settings(max_examples=150, deadline=None)
@given(
    numbers=st.lists(
        st.one_of(
            TEN_DIGITS,
            st.builds(
                lambda a, rest: a + rest,
                st.sampled_from(LEADING_DIGIT_AREA_CODES),
                st.from_regex(r"\A[0-9]{7}\Z"),
            ),
        ),
        min_size=20,
        max_size=150,
    ),
    regions=REGION_SUBSETS,
)
def test_reject_reason_of_ten_digits_agrees_with_libphonenumber(
    numbers: list[str], regions: tuple[str, ...]
) -> None:
    """``region_not_allowed`` only for a number valid in the region that claims it,
    ``invalid_number`` for one valid nowhere, for any set of allowed regions."""
    out = normalize(list(numbers), regions)
    for digits, row in zip(numbers, out.iter_rows(named=True), strict=True):
        number = nanp(digits)
        valid = phonenumbers.is_valid_number(number)
        region = phonenumbers.region_code_for_number(number)
        reason = row["phone_reject_reason"]
        if digits.startswith("011"):  # read as the international prefix 011
            assert reason in ("foreign_country_code", "too_short"), (digits, row)
        elif valid and region in regions:
            assert reason is None and row["phone_region"] == region, (digits, regions, row)
        elif valid:
            assert reason == "region_not_allowed", (digits, regions, row)
            assert row["phone_region"] == region, (digits, regions, row)
            assert phonenumbers.is_valid_number_for_region(number, region)
        else:
            assert reason == "invalid_number", (digits, regions, region, row)
            assert row["phone_region"] is None, (digits, row)


def test_invalid_caribbean_number_is_invalid_not_region_not_allowed() -> None:
    # The brief's examples: valid Canadian but only US allowed; Caribbean prefixes
    # whose rest is invalid there.
    out = normalize(["416-555-0123", "416-123-4567", "876-123-4567", "876-555-0123"], ("US",))
    assert out["phone_reject_reason"].to_list() == [
        "region_not_allowed",
        "invalid_number",
        "invalid_number",
        "region_not_allowed",
    ]
    assert out["phone_region"].to_list() == ["CA", None, None, "JM"]


FORMATS = [
    "{a}{b}{c}",
    "({a}) {b}-{c}",
    "{a}-{b}-{c}",
    "{a}.{b}.{c}",
    "+1 {a} {b} {c}",
    "1-{a}-{b}-{c}",
    "+1{a}{b}{c}",
    "tel:+1-{a}-{b}-{c}",
    "TEL:{a}{b}{c}",
    "  {a} {b} {c}  ",
    "011 1 {a} {b} {c}",
    "{a}{b}{c}.0",
]
EXTENSIONS = ["", " x12", " ext 7", " ext. 301", " extension 45", "#9", " X 8"]


@settings(max_examples=80, deadline=None)
@given(
    area=st.sampled_from(NANP_AREA_CODES),
    rest=st.from_regex(r"\A[2-9][0-9]{6}\Z"),
    fmt=st.sampled_from(FORMATS),
    ext=st.sampled_from(EXTENSIONS),
)
def test_formats_normalize_to_the_same_ten_digits(area: str, rest: str, fmt: str, ext: str) -> None:
    digits = area + rest
    text = fmt.format(a=area, b=rest[:3], c=rest[3:])
    if fmt.endswith(".0") and ext:
        ext = ""
    row = normalize([text + ext], tuple(NANP_REGIONS)).row(0, named=True)
    want_valid, _ = expected(digits, tuple(NANP_REGIONS))
    assert row["phone_valid"] == want_valid
    if want_valid:
        assert row["phone_normalized"] == digits
        assert row["phone_e164"] == "+1" + digits
        assert row["phone_extension"] == (("".join(ch for ch in ext if ch.isdigit())) or None)
    else:
        assert row["phone_reject_reason"] == "invalid_number"


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.text(max_size=25), st.text("0123456789 +-().x#e", max_size=25)), max_size=40
    )
)
def test_every_row_is_valid_e164_or_has_one_reason_and_normalizing_twice_changes_nothing(
    values: list[str],
) -> None:
    out = normalize(list(values))
    for row in out.iter_rows(named=True):
        if row["phone_valid"]:
            assert row["phone_reject_reason"] is None
            assert row["phone_e164"] == "+1" + row["phone_normalized"]
            assert len(row["phone_normalized"]) == 10
        else:
            assert row["phone_reject_reason"] in REJECT_REASONS
            assert row["phone_normalized"] is None and row["phone_e164"] is None
    valid = out.filter(pl.col("phone_valid"))
    again = normalize(valid["phone_e164"].to_list())
    assert again["phone_normalized"].to_list() == valid["phone_normalized"].to_list()


REASON_CASES = {
    "blank": ["", "   ", None],
    "scientific_notation": ["2.12346E+09", "2.1e9"],
    "not_a_phone": ["n/a", "call me", "1-800-FLOWERS", "x123", "212*555*0123"],
    "foreign_country_code": ["+44 20 7946 0958", "011 44 20 7946 0958", "+61 2 9876 5432"],
    "too_short": ["345-6789", "+1 212 345 678", "12"],
    "too_long": ["212345678901234", "22123456789", "+1 212 345 67890"],
    "invalid_number": ["123-456-7890", "(011) 234-5678", "212-123-4567", "876-123-4567"],
    "region_not_allowed": ["876-234-5678", "+1 242 345 6789"],
}


def test_every_reason_is_covered_here() -> None:
    # inexact_number: only a float cell can earn it (tests/test_normalize.py)
    assert set(REASON_CASES) == set(REJECT_REASONS) - {"inexact_number"}


@pytest.mark.parametrize(
    ("value", "reason"), [(v, r) for r, values in REASON_CASES.items() for v in values]
)
def test_reject_reason(value: str | None, reason: str) -> None:
    row = normalize([value]).row(0, named=True)
    assert row["phone_reject_reason"] == reason
    assert row["phone_valid"] is False


def test_region_not_allowed_names_the_region_and_can_be_allowed() -> None:
    assert normalize(["876-234-5678"])["phone_region"].to_list() == ["JM"]
    row = normalize(["876-234-5678"], ("US", "CA", "JM")).row(0, named=True)
    assert row["phone_valid"] and row["phone_region"] == "JM"


def test_numeric_columns_from_parquet() -> None:
    ints = normalize_phones(pl.DataFrame({"p": [2123456789, None, 12]}).lazy(), "p").collect()
    assert ints["phone_normalized"].to_list() == ["2123456789", None, None]
    floats = pl.DataFrame({"p": [2123456789.0, float("nan"), None, 2123456789.5]})
    out = normalize_phones(floats.lazy(), "p").collect()
    assert out["phone_normalized"].to_list() == ["2123456789", None, None, None]
    assert out["phone_reject_reason"].to_list() == [None, "not_a_phone", "blank", "too_long"]


def test_numeric_extremes_from_a_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "extremes.parquet"
    pl.DataFrame(
        {
            "f": [1e20, float("inf"), float("-inf"), float("nan"), -2123456789.0, None],
            "i": [2**63 - 1, -(2**63), 10**15, -2123456789, -1, None],
        },
        schema={"f": pl.Float64, "i": pl.Int64},
    ).write_parquet(path)
    out = normalize_phones(pl.scan_parquet(path), "f").collect()
    assert out["phone_reject_reason"].to_list() == [
        "inexact_number",  # past 2^53 a float64 no longer holds every whole number
        "not_a_phone",
        "not_a_phone",
        "not_a_phone",
        "not_a_phone",
        "blank",
    ]
    assert out["phone_normalized"].null_count() == out.height
    out = normalize_phones(pl.scan_parquet(path), "i").collect()
    assert out["phone_reject_reason"].to_list() == [
        "too_long",
        "not_a_phone",
        "too_long",
        "not_a_phone",
        "not_a_phone",
        "blank",
    ]
    assert out["phone_normalized"].null_count() == out.height


def test_the_plan_has_no_python_udf() -> None:
    plan = normalize_phones(pl.LazyFrame({"p": ["1"]}), "p").explain()
    udf = (
        pl.LazyFrame({"p": ["1"]})
        .with_columns(pl.col("p").map_elements(lambda v: v[::-1], return_dtype=pl.String))
        .explain()
    )
    assert "python" in udf.lower()  # what a per-row Python step looks like in a plan
    assert "python" not in plan.lower() and "map_" not in plan.lower()


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("01/02/2021", "2021-01-02"),
        ("1/2/2021", "2021-01-02"),
        ("2021-03-04", "2021-03-04"),
        ("2021-3-4", "2021-03-04"),
        ("5/6/21", "2021-05-06"),
        ("12/31/99", "1999-12-31"),
        ("20210708", "2021-07-08"),
        (" 02/29/2020 ", "2020-02-29"),
        ("02/30/2021", None),
        ("13/45/2021", None),
        ("2021078", None),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_consent_dates(text: str | None, iso: str | None) -> None:
    frame = pl.DataFrame({"d": [text]}, schema={"d": pl.String})
    day = frame.select(consent_date_expr("d", pl.String))["d"]
    assert day.dtype == pl.Date
    assert day.dt.to_string("%Y-%m-%d").to_list() == [iso]


def test_consent_date_typed_column() -> None:
    import datetime as dt

    frame = pl.DataFrame({"d": [dt.date(2021, 1, 2), None]})
    days = frame.select(consent_date_expr("d", pl.Date))["d"].to_list()
    assert days == [dt.date(2021, 1, 2), None]


# --- The validity table (pipeline.validity_table) ------------------------------------


def test_validity_is_a_lookup_not_libphonenumbers_patterns_per_row() -> None:
    """The normalizer finds validity in a table built once, not by matching each row
    against libphonenumber's patterns (1,500 characters of regex for the US alone)."""
    plan = normalize_phones(pl.LazyFrame({"p": ["2125550123"]}), "p").explain()
    for rule in region_rules():
        for pattern in (rule.general_pattern, rule.type_pattern):
            if pattern is not None and len(pattern) > 30:
                assert pattern[:30] not in plan, rule.region


def test_table_agrees_with_libphonenumber_on_numbers_by_prefix() -> None:
    """Numbers of every area code libphonenumber knows, with many exchanges, and every
    number under the prefixes the table leaves to a deeper level: the table's region is
    libphonenumber's (region_code_for_number where is_valid_number, else none)."""
    table = validity_table()
    rng = random.Random(15)
    numbers = [
        f"{area}{exchange:03d}{rng.randrange(10_000):04d}"
        for area in NANP_AREA_CODES
        for exchange in range(0, 1000, 37)
    ]
    numbers += [f"{rng.randrange(10**10):010d}" for _ in range(3_000)]
    assert len(table.levels) > 1  # the deeper level is exercised below
    deeper = [p for p in range(10**KEY_DIGITS) if table.levels[0][p] >= ANSWERS]
    numbers += [f"{p:06d}{d}{rng.randrange(1000):03d}" for p in deeper for d in range(10)]
    for digits in numbers:
        number = nanp(digits)
        want = phonenumbers.region_code_for_number(number)
        assert table.lookup(digits) == (want if phonenumbers.is_valid_number(number) else None), (
            digits
        )


def test_table_agrees_with_the_patterns_on_every_6_digit_prefix() -> None:
    """Every NPA-NXX (with a random line) and every 7-digit prefix under the ones the
    table leaves undecided at 6 digits: the same region as libphonenumber's patterns
    matched by a regex engine (the code the table replaced, tests/normalize_reference)."""
    rng = random.Random(7)
    table = validity_table()
    deeper = [p for p in range(10**KEY_DIGITS) if table.levels[0][p] >= ANSWERS]
    numbers = [f"{p:06d}{rng.randrange(10_000):04d}" for p in range(10**KEY_DIGITS)]
    numbers += [f"{p:06d}{d}{line:03d}" for p in deeper for d in range(10) for line in (0, 999)]
    regions = tuple(NANP_REGIONS)
    frame = pl.LazyFrame({"p": numbers})
    ours = normalize_phones(frame, "p", regions).select("phone_region").collect()
    theirs = reference.normalize_phones(frame, "p", regions).select("phone_region").collect()
    assert ours["phone_region"].to_list() == theirs["phone_region"].to_list()


def _accepts(automaton: _Dfa, text: str) -> bool:
    state = automaton.start
    for char in text:
        state = automaton.step(state, int(char))
    return automaton.accepts(state)


@pytest.mark.parametrize("region", NANP_REGIONS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_automata_accept_what_the_patterns_match(region: str, data: st.DataObject) -> None:
    """The digit automata the table is built from read each region's patterns as
    Python's re does (libphonenumber's engine): on strings the pattern matches, and on
    any digit strings."""
    rule = region_rule(region)
    for pattern in (rule.general_pattern, rule.type_pattern):
        if pattern is None:
            continue
        automaton, regex = _Dfa(pattern), re.compile(pattern, re.ASCII)
        matching = data.draw(st.from_regex(regex, fullmatch=True))
        assert _accepts(automaton, matching), (region, matching)
        for text in data.draw(st.lists(st.text("0123456789", max_size=12), max_size=50)):
            assert _accepts(automaton, text) == bool(regex.fullmatch(text)), (region, text)


@pytest.mark.parametrize("pattern", [r"(?=2)\d{10}", r"\w{10}", r"(a)\1"])
def test_a_construct_the_automata_do_not_know_is_refused(pattern: str) -> None:
    # A newer libphonenumber might use one: better to stop than to guess.
    with pytest.raises(RuntimeError, match="unsupported"):
        _Dfa(pattern)
