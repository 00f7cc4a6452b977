"""The synthetic messy leads file (``pipeline.sample``): its shape, determinism and mess."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import phonenumbers
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipeline import sample
from pipeline.sample import COLUMNS, write_sample
from pipeline.sample import phones as phone_column

ROWS = 20_000


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sample")


@pytest.fixture(scope="module")
def csv_path(data_dir: Path) -> Path:
    path = data_dir / "leads.csv"
    assert write_sample(path, ROWS, seed=7) == ROWS
    return path


@pytest.fixture(scope="module")
def leads(csv_path: Path) -> pl.DataFrame:
    return pl.read_csv(csv_path, infer_schema=False)


@pytest.fixture(scope="module")
def phones(leads: pl.DataFrame) -> list[str | None]:
    return leads.get_column("phone").to_list()


def _matching(values: list[str | None], pattern: str) -> list[str]:
    rx = re.compile(pattern)
    return [v for v in values if v is not None and rx.fullmatch(v)]


def _region(value: str) -> str | None:
    """libphonenumber's region for a valid number, else None."""
    try:
        number = phonenumbers.parse(value, "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    region: str | None = phonenumbers.region_code_for_number(number)
    return region


# -- shape -------------------------------------------------------------------------------------


def test_rows_and_columns(leads: pl.DataFrame) -> None:
    assert leads.height == ROWS
    assert leads.columns == list(COLUMNS)
    assert set(leads.dtypes) == {pl.String}


def test_lead_ids_are_unique_and_sequential(leads: pl.DataFrame) -> None:
    ids = leads.get_column("lead_id")
    assert ids.n_unique() == ROWS
    assert ids.str.contains(r"^L\d{7}$").all()
    assert ids.head(3).to_list() == ["L0000001", "L0000002", "L0000003"]
    assert ids[-1] == f"L{ROWS:07d}"


def test_zero_rows_is_a_header(data_dir: Path) -> None:
    path = data_dir / "empty.csv"
    assert write_sample(path, 0) == 0
    df = pl.read_csv(path, infer_schema=False)
    assert df.height == 0
    assert df.columns == list(COLUMNS)


@pytest.mark.parametrize("name", ["leads.txt", "leads.json", "leads", "leads.csv.gz"])
def test_bad_extension_raises(data_dir: Path, name: str) -> None:
    with pytest.raises(ValueError, match=r"\.csv or \.parquet"):
        write_sample(data_dir / name, 10)
    assert not (data_dir / name).exists()


def test_no_temp_files_left(csv_path: Path) -> None:
    assert [p.name for p in csv_path.parent.iterdir() if p.name.endswith(".tmp")] == []


# -- determinism -------------------------------------------------------------------------------


def test_same_seed_same_bytes(csv_path: Path, data_dir: Path) -> None:
    again = data_dir / "again.csv"
    write_sample(again, ROWS, seed=7)
    assert again.read_bytes() == csv_path.read_bytes()


def test_other_seed_other_data(csv_path: Path, data_dir: Path, leads: pl.DataFrame) -> None:
    other = data_dir / "other.csv"
    write_sample(other, ROWS, seed=8)
    assert other.read_bytes() != csv_path.read_bytes()
    df = pl.read_csv(other, infer_schema=False)
    assert df.height == ROWS
    same_phone = (df.get_column("phone") == leads.get_column("phone")).sum()
    assert same_phone < ROWS * 0.2  # only blanks/text/pool numbers can coincide


def test_chunk_boundaries_do_not_change_a_byte(
    csv_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sample, "CHUNK_ROWS", 3_001)
    chunked = data_dir / "chunked.csv"
    write_sample(chunked, ROWS, seed=7)
    assert chunked.read_bytes() == csv_path.read_bytes()


def test_shorter_file_is_a_prefix(leads: pl.DataFrame, data_dir: Path) -> None:
    short = data_dir / "short.csv"
    write_sample(short, 1_000, seed=7)
    assert_frame_equal(pl.read_csv(short, infer_schema=False), leads.head(1_000))


# -- CSV quoting and Parquet -------------------------------------------------------------------


def test_csv_round_trips_embedded_newlines_quotes_and_formulas(
    csv_path: Path, leads: pl.DataFrame
) -> None:
    notes = leads.get_column("notes").drop_nulls()
    assert 0.05 < notes.len() / ROWS < 0.25  # mostly blank
    assert notes.str.contains("\n", literal=True).any()
    assert notes.str.contains('"', literal=True).any()
    assert notes.str.contains(",", literal=True).any()
    assert notes.str.starts_with('=HYPERLINK("').any()
    assert leads.get_column("company").str.contains(",", literal=True).any()
    # The embedded newlines make the file longer than its row count, yet it reads back whole.
    assert csv_path.read_bytes().count(b"\n") > ROWS + 1
    assert pl.read_csv(csv_path, infer_schema=False).height == ROWS


def test_parquet_has_the_same_data_as_csv(data_dir: Path, leads: pl.DataFrame) -> None:
    path = data_dir / "leads.parquet"
    assert write_sample(path, ROWS, seed=7) == ROWS
    assert_frame_equal(pl.read_parquet(path), leads)


# -- the phone column --------------------------------------------------------------------------

_US_CA = "|".join(phone_column.US_AREA_CODES + phone_column.CA_AREA_CODES)
_NUMBER = rf"(?:{_US_CA})"
_VALID_FORMATS = {
    "plain": rf"{_NUMBER}\d{{7}}",
    "parens": rf"\({_NUMBER}\) \d{{3}}-\d{{4}}",
    "dashes": rf"{_NUMBER}-\d{{3}}-\d{{4}}",
    "dots": rf"{_NUMBER}\.\d{{3}}\.\d{{4}}",
    "plus1 spaced": rf"\+1 {_NUMBER} \d{{3}} \d{{4}}",
    "1-dashes": rf"1-{_NUMBER}-\d{{3}}-\d{{4}}",
    "e164": rf"\+1{_NUMBER}\d{{7}}",
    "tel uri": rf"tel:\+1-{_NUMBER}-\d{{3}}-\d{{4}}",
    "ext x": rf"{_NUMBER}-\d{{3}}-\d{{4}} x\d{{1,4}}",
    "ext.": rf"{_NUMBER}\.\d{{3}}\.\d{{4}} ext\. \d{{1,4}}",
    "extension": rf"\({_NUMBER}\) \d{{3}}-\d{{4}} extension \d{{1,4}}",
    "hash ext": rf"{_NUMBER}\d{{7}}#\d{{1,4}}",
    "ext spaced": rf"{_NUMBER} \d{{3}} \d{{4}} ext \d{{1,4}}",
    "surrounding spaces": rf"\s+{_NUMBER}[-\d]+\s*",
}
_DAMAGE = {
    "trailing .0": rf"1?{_NUMBER}\d{{7}}\.0",
    "scientific": r"\d(\.\d{1,5})?E\+(09|10)",
    "other country": r"\+(44|61) [\d ]+",
    "too short": r"\d{3}-\d{4}",
    "too long": r"\d{12,15}",
    "bad area 1xx": r"1\d\d-\d{3}-\d{4}",
    "bad area (0xx)": r"\(0\d\d\) \d{3}-\d{4}",
    "empty string": r"",
    "spaces only": r"\s+",
    "text": r"n/a|call me|unknown",
}


@pytest.mark.parametrize("kind", list(_VALID_FORMATS))
def test_phone_has_each_valid_format(phones: list[str | None], kind: str) -> None:
    assert _matching(phones, _VALID_FORMATS[kind]), kind


@pytest.mark.parametrize("kind", list(_DAMAGE))
def test_phone_has_each_kind_of_damage(phones: list[str | None], kind: str) -> None:
    assert _matching(phones, _DAMAGE[kind]), kind


def test_phone_has_nulls(phones: list[str | None]) -> None:
    assert phones.count(None) > ROWS * 0.01


def test_phone_has_caribbean_numbers(phones: list[str | None]) -> None:
    caribbean = {"JM", "DO", "PR", "BS", "BM", "BB", "TT"}
    starts = tuple(p[:3] for p in phone_column.CARIBBEAN_PREFIXES)
    candidates = [p for p in phones if p and re.sub(r"\D", "", p)[-10:].startswith(starts)]
    regions = {_region(p) for p in candidates}
    assert regions & caribbean


def test_valid_looking_numbers_are_valid_us_ca(phones: list[str | None]) -> None:
    """Numbers in the plain formats are valid per libphonenumber, never 555 or N11-like."""
    plain = [
        p for kind in ("parens", "dashes", "e164") for p in _matching(phones, _VALID_FORMATS[kind])
    ]
    assert len(plain) > ROWS * 0.2
    for value in plain:
        assert _region(value) in ("US", "CA"), value
        national = re.sub(r"\D", "", value)[-10:]
        assert national[3] not in "01" and national[3:6] != "555", value


def test_phone_mix_proportions(phones: list[str | None]) -> None:
    checked = phones[:5_000]
    regions = Counter(_region(p) if p else None for p in checked)
    valid = (regions["US"] + regions["CA"]) / len(checked)
    assert 0.62 < valid < 0.80, regions
    dot_zero = len(_matching(checked, _DAMAGE["trailing .0"])) / len(checked)
    assert 0.01 < dot_zero < 0.06


def test_numbers_repeat_across_rows_and_formats(phones: list[str | None]) -> None:
    numbers = [
        re.sub(r"\D", "", p)[-10:]
        for kind in _VALID_FORMATS
        for p in _matching(phones, _VALID_FORMATS[kind])
    ]
    counts = Counter(numbers)
    repeated_rows = sum(c for c in counts.values() if c > 1)
    # ~20% of rows draw from a pool of 3,000 numbers; at 20k rows most pool numbers show once.
    assert 0.05 < repeated_rows / len(numbers) < 0.35, repeated_rows
    assert sum(1 for c in counts.values() if c > 1) <= sample.DUPLICATE_POOL
    assert max(counts.values()) >= 3
    # The same exact string repeats, and the same number appears in more than one format.
    exact = Counter(p for p in _matching(phones, _VALID_FORMATS["plain"]))
    assert max(exact.values()) >= 2
    forms: dict[str, set[str]] = {}
    for value in (p for p in phones if p):
        forms.setdefault(re.sub(r"\D", "", value)[-10:], set()).add(value)
    assert any(len(v) >= 3 for k, v in forms.items() if counts.get(k, 0) > 1)


# -- the other columns -------------------------------------------------------------------------


def test_consent_dates_in_four_formats_with_blanks_and_garbage(leads: pl.DataFrame) -> None:
    dates = leads.get_column("consent_date")
    values = dates.to_list()
    formats = {
        "%m/%d/%Y": r"\d\d/\d\d/\d{4}",
        "%Y-%m-%d": r"\d{4}-\d\d-\d\d",
        "%m/%d/%y": r"\d\d/\d\d/\d\d",
        "%Y%m%d": r"\d{8}",
    }
    for fmt, pattern in formats.items():
        matched = _matching(values, pattern)
        assert len(matched) > ROWS * 0.05, fmt
        parsed = pl.Series(matched).str.to_date(fmt, strict=False)
        good = parsed.drop_nulls()
        unparsed = set(pl.Series(matched).filter(parsed.is_null()).to_list())
        assert unparsed <= set(sample.CONSENT_GARBAGE), unparsed  # 13/45/2021 and the like
        assert good.dt.year().min() >= 2015 and good.dt.year().max() <= 2025  # type: ignore[operator]
    assert dates.null_count() > ROWS * 0.02
    assert {"yesterday", "13/45/2021"} <= set(values)


def test_identity_columns(leads: pl.DataFrame, phones: list[str | None]) -> None:
    for column in ("first_name", "last_name", "company", "email", "linkedin"):
        nulls = leads.get_column(column).null_count()
        assert 0 < nulls < ROWS, column
    assert leads.get_column("linkedin").str.contains(r"^[a-z]+-[a-z]+-[0-9a-f]{4}$").any()
    assert leads.get_column("email").str.contains(r"^[a-z0-9._]+@[a-z0-9.-]+\.[a-z]+$").any()
    # About 10% of rows have an unusable phone but name+company or an email (append candidates).
    head = leads.head(5_000)
    bad = pl.Series([(_region(p) if p else None) not in ("US", "CA") for p in phones[:5_000]])
    has_identity = (
        head.get_column("first_name").is_not_null()
        & head.get_column("last_name").is_not_null()
        & head.get_column("company").is_not_null()
    ) | head.get_column("email").is_not_null()
    share = (bad & has_identity).mean()
    assert share is not None and 0.06 < float(share) < 0.15  # type: ignore[arg-type]


def test_ip_zip_and_address(leads: pl.DataFrame) -> None:
    ips = leads.get_column("ip").drop_nulls().to_list()
    assert len(ips) > ROWS * 0.5
    for ip in ips[:2_000]:
        octets = [int(o) for o in ip.split(".")]
        assert len(octets) == 4 and all(0 <= o <= 255 for o in octets), ip
    zips = leads.get_column("zip").drop_nulls()
    assert zips.str.contains(r"^0\d{4}$").any()  # leading zeros kept as text
    assert zips.str.contains(r"^\d{5}-\d{4}$").any()
    assert leads.get_column("address").str.contains(", Suite ", literal=True).any()
