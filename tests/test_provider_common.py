"""What every provider shares (``pipeline.providers.common``): one meaning per HTTP
status, one reading of a number in an answer, one message for a column the input
lacks, and the lookup expressions each provider returns."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import httpx
import polars as pl
import pytest

from pipeline.consent_dates import consent_date_expr
from pipeline.errors import (
    BadRequestError,
    InputError,
    LaneStoppedError,
    ProviderError,
    TerminalError,
    TransientError,
)
from pipeline.normalize import CONSENT_DATE_COLUMN
from pipeline.provider_config import (
    CheckThatPhoneSettings,
    PhoneEnrichmentSettings,
    TcpaAuthoritySettings,
    TdgIdVerifySettings,
    TdgReversePhoneSettings,
)
from pipeline.providers.base import Provider
from pipeline.providers.checkthatphone import CheckThatPhone
from pipeline.providers.common import decimal, number, text, whole
from pipeline.providers.phone_enrichment import PhoneEnrichment
from pipeline.providers.tcpa_authority import TcpaAuthority
from pipeline.providers.tdg_id_verify import TdgIdVerify
from pipeline.providers.tdg_reverse_phone import TdgReversePhone

BASE = "https://api.example.test"

PROVIDERS: dict[str, Callable[[], Provider]] = {
    "tcpa_authority": lambda: TcpaAuthority(
        TcpaAuthoritySettings(base_url=BASE), "k", has_consent_dates=False
    ),
    "tdg_reverse_phone": lambda: TdgReversePhone(TdgReversePhoneSettings(base_url=BASE), "k"),
    "tdg_id_verify": lambda: TdgIdVerify(TdgIdVerifySettings(base_url=BASE), "k"),
    "checkthatphone": lambda: CheckThatPhone(CheckThatPhoneSettings(base_url=BASE), "k"),
    "phone_enrichment": lambda: PhoneEnrichment(
        PhoneEnrichmentSettings(base_url=BASE), "k", id_column=None
    ),
}


def _refused(provider: Provider, status: int, **headers: str) -> ProviderError:
    response = httpx.Response(status, content=b"", headers=headers)
    with pytest.raises(ProviderError) as caught:
        provider.parse(response, ["2124233757"])
    return caught.value


@pytest.mark.parametrize("name", sorted(PROVIDERS))
@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, LaneStoppedError),
        (403, LaneStoppedError),
        (404, LaneStoppedError),
        (405, LaneStoppedError),
        (400, BadRequestError),
        (422, BadRequestError),
        (408, TransientError),
        (500, TransientError),
        (503, TransientError),
        (429, TransientError),
        (418, TerminalError),
    ],
)
def test_a_status_means_the_same_at_every_provider(
    name: str, status: int, kind: type[ProviderError]
) -> None:
    error = _refused(PROVIDERS[name](), status, **{"Retry-After": "3"})
    assert type(error) is kind and error.status == status
    assert f"HTTP {status}" in str(error)
    if status in (404, 405):
        assert "is base_url right?" in str(error)
    if isinstance(error, TransientError):
        assert error.retry_after == 3


def test_numbers_in_an_answer() -> None:
    sent: list[object] = [3, 2.5, " 12 ", "1e3", "x", "", None, True, [1], {}]
    assert [number(v) for v in sent] == [3, 2.5, 12.0, 1000.0] + [None] * 6
    assert [number(v) for v in (math.nan, math.inf, "nan", "-inf")] == [None] * 4
    assert number(2**70) == 2**70  # an integer stays exact
    assert [whole(v) for v in (3, 3.0, "3", "3.5", 3.5, False)] == [3, 3, 3, None, None, None]
    assert [decimal(v) for v in (3, "2.5", 10**400, "x")] == [3.0, 2.5, None, None]
    scalars: list[object] = [" a ", "", "  ", 5, 1.5, True, None, {}, []]
    assert [text(v) for v in scalars] == ["a", None, None, "5", "1.5", "true", None, None, None]


NORMALIZED = pl.LazyFrame({"phone_normalized": ["2124233757"], "phone_valid": [True]})


@pytest.mark.parametrize(
    ("make", "setting"),
    [
        (
            lambda: CheckThatPhone(CheckThatPhoneSettings(base_url=BASE, ip_column="ip"), "k"),
            "providers.checkthatphone.ip_column = 'ip'",
        ),
        (
            lambda: PhoneEnrichment(
                PhoneEnrichmentSettings(base_url=BASE, columns={"email": "ip"}), "k", id_column=None
            ),
            "providers.phone_enrichment.columns.email = 'ip'",
        ),
        (
            lambda: TdgIdVerify(TdgIdVerifySettings(base_url=BASE, columns={"Email": "ip"}), "k"),
            "providers.tdg_id_verify.columns.Email = 'ip'",
        ),
    ],
)
def test_a_column_the_input_lacks_is_named_with_its_setting_and_the_columns_there_are(
    make: Callable[[], Provider], setting: str
) -> None:
    with pytest.raises(InputError) as caught:
        make().lookups(NORMALIZED)
    assert str(caught.value) == (
        f"{setting}, but the input has no column 'ip'; it has: phone_normalized, phone_valid"
    )


def test_lookups_are_expressions_over_the_batch() -> None:
    """A provider returns expressions; which columns they land in is the planner's."""
    frame = pl.LazyFrame(
        {
            "phone_normalized": ["2124233757", "2124225838", None],
            "phone_valid": [True, True, False],
            "phone_region": ["US", "CA", None],
            "email": [None, None, "ada@example.org"],
            "row_trace_id": ["t1", "t2", "t3"],
        }
    )
    reverse = PROVIDERS["tdg_reverse_phone"]().lookups(frame)
    assert reverse.refused is None and reverse.carry is None
    assert frame.select(reverse.key).collect().to_series().to_list() == ["2124233757", None, None]

    enrich = PROVIDERS["phone_enrichment"]().lookups(frame)
    assert enrich.refused is None and enrich.carry is not None
    rows = frame.select(key=enrich.key, carry=enrich.carry).collect().to_dicts()
    assert [r["carry"] for r in rows] == [None, None, "t3"]  # the row_trace_id by default
    assert rows[2]["key"] is not None and json.loads(rows[2]["key"])["email"] == "ada@example.org"


def test_tcpa_keys_are_the_iso_date_less_its_dashes() -> None:
    """The key's date is what it was when consent dates were ISO text (the ledger holds
    such keys), for any year the reading gives, a year before 1 included."""
    tcpa = TcpaAuthority(TcpaAuthoritySettings(base_url=BASE), "k", has_consent_dates=True)
    cells = ["2024-01-31", "0001-01-01", None, "-0001-01-01"]
    frame = pl.LazyFrame(
        {"phone_normalized": ["2124233757"] * 4, "phone_valid": [True] * 4, "d": cells}
    ).select(
        "phone_normalized",
        "phone_valid",
        consent_date_expr("d", pl.String).alias(CONSENT_DATE_COLUMN),
    )
    days = frame.select(pl.col(CONSENT_DATE_COLUMN).dt.year()).collect().to_series().to_list()
    assert days == [2024, 1, None, -1]
    keys = frame.select(tcpa.lookups(frame).key).collect().to_series().to_list()
    # (no date and no default_consent_date: no key)
    assert keys == ["2124233757:20240131", "2124233757:00010101", None, "2124233757:00010101"]


def test_derived_columns_read_the_key_they_are_given() -> None:
    tcpa = PROVIDERS["tcpa_authority"]()
    keys = pl.DataFrame({"k": ["2124233757:20240131", None]})
    derived = tcpa.derived(pl.col("k"))
    assert keys.select(**derived)["consent_date"].to_list() == ["2024-01-31", None]
    assert PROVIDERS["checkthatphone"]().derived(pl.col("k")) == {}
