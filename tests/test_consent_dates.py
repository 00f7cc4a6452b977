"""Consent dates read once per run (pipeline.consent_dates): every batch gets what
reading it alone gives, whatever was read before, up to the bound and past it, from two
threads at once."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from pipeline.consent_dates import ConsentDates, normalize_consent_dates
from pipeline.normalize import CONSENT_DATE_COLUMN

CELLS = st.one_of(
    st.dates(dt.date(1990, 1, 1), dt.date(2030, 12, 31)).flatmap(
        lambda d: st.sampled_from(
            [f"{d:%m/%d/%Y}", f"{d:%m/%d/%y}", f" {d:%Y-%m-%d}", f"{d:%Y%m%d}"]
        )
    ),
    st.text(alphabet="0123456789/- ", max_size=10),
    st.none(),
)
BATCHES = st.lists(st.lists(CELLS, max_size=40), min_size=1, max_size=6)


def _frame(cells: list[str | None]) -> pl.LazyFrame:
    return pl.LazyFrame(
        {"n": range(len(cells)), "d": cells}, schema={"n": pl.Int64, "d": pl.String}
    )


@settings(max_examples=120, deadline=None)
@given(batches=BATCHES, kept=st.sampled_from([0, 3, 1_000]))
def test_each_batch_reads_as_if_alone(batches: list[list[str | None]], kept: int) -> None:
    dates = ConsentDates("d", kept=kept)
    for cells in batches:
        frame = _frame(cells)
        assert_frame_equal(
            dates.add(frame).collect(), normalize_consent_dates(frame, "d").collect()
        )


def test_cells_read_once_are_kept_up_to_the_bound() -> None:
    dates = ConsentDates("d", kept=3)
    dates.add(_frame(["01/02/2021", "01/02/2021", None, "x"])).collect()
    known = dates._known
    assert known is not None and sorted(known["d"].to_list(), key=str) == sorted(
        ["01/02/2021", None, "x"], key=str
    )
    out = dates.add(_frame(["x", "2021-05-06", "01/02/2021"])).collect()
    assert out[CONSENT_DATE_COLUMN].dt.to_string("%Y-%m-%d").to_list() == [
        None,
        "2021-05-06",
        "2021-01-02",
    ]
    assert dates._known is not None and dates._known.height == 3  # full: not kept


def test_two_threads_share_what_they_read() -> None:
    days = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(400)]
    batches = [[f"{d:%m/%d/%Y}" for d in days[i : i + 150]] for i in range(0, 400, 50)]
    dates = ConsentDates("d")
    with ThreadPoolExecutor(2) as pool:
        outs = list(pool.map(lambda cells: dates.add(_frame(cells)).collect(), batches * 3))
    for cells, out in zip(batches * 3, outs, strict=True):
        assert out[CONSENT_DATE_COLUMN].dt.to_string("%Y-%m-%d").to_list() == [
            dt.datetime.strptime(c, "%m/%d/%Y").date().isoformat() for c in cells
        ]
    assert dates._known is not None and dates._known.height == 400  # each cell kept once


def test_typed_and_numeric_columns() -> None:
    stamps = pl.LazyFrame({"d": [dt.date(2021, 3, 15), None]})
    assert ConsentDates("d").add(stamps).collect()[CONSENT_DATE_COLUMN].dt.to_string(
        "%Y-%m-%d"
    ).to_list() == [
        "2021-03-15",
        None,
    ]
    numbers = pl.LazyFrame({"d": [20210315, None, 20210230, 20210315]})
    dates = ConsentDates("d")
    for _ in range(2):
        out = dates.add(numbers).collect()
        assert out[CONSENT_DATE_COLUMN].dt.to_string("%Y-%m-%d").to_list() == [
            "2021-03-15",
            None,
            None,
            "2021-03-15",
        ]


def test_a_file_of_ever_new_cells_is_read_batch_by_batch_once_the_bound_is_full() -> None:
    dates = ConsentDates("d", kept=4)
    days = [f"{dt.date(2021, 1, 1) + dt.timedelta(days=i):%m/%d/%Y}" for i in range(20)]
    for start in range(0, 20, 4):
        cells = days[start : start + 4]
        out = (
            dates.add(_frame(cells))
            .collect()[CONSENT_DATE_COLUMN]
            .dt.to_string("%Y-%m-%d")
            .to_list()
        )
        assert out == [dt.datetime.strptime(c, "%m/%d/%Y").date().isoformat() for c in cells]
    assert dates._off and dates._known is not None and dates._known.height == 4


def _kept(dates: ConsentDates) -> list[str]:
    assert dates._lookup is not None  # text: looked up by code, not by the join
    return sorted(dates._lookup.kept.cast(pl.String).to_list())


def test_text_cells_are_looked_up_by_their_codes() -> None:
    dates = ConsentDates("d")
    first = ["01/02/2021", None, "x", "2021-05-06"]
    dates.add(_frame(first)).collect()
    assert _kept(dates) == sorted(["01/02/2021", "x", "2021-05-06"])
    assert dates._lookup is not None and dates._lookup.by_code.height == 3
    out = dates.add(_frame(["2021-05-06", None, "x", "01/02/2021", "03/04/2022"])).collect()
    assert out[CONSENT_DATE_COLUMN].dt.to_string("%Y-%m-%d").to_list() == [
        "2021-05-06",
        None,
        None,
        "2021-01-02",
        "2022-03-04",
    ]
    assert "03/04/2022" in _kept(dates)


def test_a_cell_keeps_its_code_between_casts() -> None:
    # What the lookup rests on (pl.Categories is marked unstable in polars 2): a cell
    # cast again gets the code it got, and a new cell a new one.
    dates = ConsentDates("d")
    dates.add(_frame(["01/02/2021", "x"])).collect()
    lookup = dates._lookup
    assert lookup is not None
    again = pl.Series(["x", "01/02/2021", "new"]).cast(lookup.dtype).to_physical().to_list()
    first = lookup.kept.to_physical().to_list()
    assert again[:2] == first[::-1] and again[2] not in first


def test_codes_of_cells_not_kept_are_let_go() -> None:
    # The bound is full: the cells of later batches are read and get codes, but are not
    # kept; once twice the bound in codes were given, the categories are made anew.
    dates = ConsentDates("d", kept=4)
    days = [f"{dt.date(2021, 1, 1) + dt.timedelta(days=i):%m/%d/%Y}" for i in range(12)]
    dates.add(_frame(days[:4])).collect()
    old = dates._lookup
    for start in range(4, 12):  # one new cell a batch: never mostly new, never off
        cells = [*days[:3], days[start]]
        out = (
            dates.add(_frame(cells))
            .collect()[CONSENT_DATE_COLUMN]
            .dt.to_string("%Y-%m-%d")
            .to_list()
        )
        assert out == [dt.datetime.strptime(c, "%m/%d/%Y").date().isoformat() for c in cells]
    assert not dates._off and dates._lookup is not None and dates._lookup is not old
    assert _kept(dates) == sorted(days[:4])
    assert dates._lookup.by_code.height == 4  # the kept cells' codes only
