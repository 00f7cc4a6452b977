"""CheckThatPhone: line type, carrier DIP, litigator filter and SMS deliverability.

POST ``/v1/lookup`` with ``{"phone", "ip"?, "litigatorFilter"?, "landlineSmsLookup"?}``
and ``Authorization: Bearer <key>``, one number per request. The answer is an
envelope ``{"success", "credits_used", "data": {...}}``; the charge is also in the
``X-Credits-Used`` header, which is the authoritative one: a row's credits are the
header's, whatever the envelope says (the envelope is the fallback when the header
is missing, then the documented price).

* ``data.action == "error"`` means the phone was refused: ``invalid_input``, never
  retried (the API says retrying gives the same error).
* Every other answered lookup is a ``hit``. An answer about another number is
  ``failed`` and not asked again (it was charged, and would likely be again); a
  garbled or ``success: false`` answer is retried, its ``X-Credits-Used`` counted.
* 401 stops the lane (bad key); 429 is retried with backoff (Retry-After honoured)
  unless its error says the monthly quota is used up, which stops the lane like an
  out-of-credits 403 elsewhere (retrying cannot help before the quota resets);
  502 and other 5xx are retried and cost nothing.

The lookup key is the normalized phone, plus ``|`` and the row's IP when
``ip_column`` is set and the row has one (the IP changes the geo answer). The
options (``litigator_filter``, ``landline_sms_lookup``) change the answer's fields
and price, so they are the :meth:`CheckThatPhone.params`: an answer bought with
other options is never reused.

The answer is stored as sent; its ``"true"`` / ``"false"`` fields are written as
Booleans and ``tzOffset`` (documented in hours behind UTC: 8 for Los Angeles) as
``ctp_utc_offset`` in minutes east of UTC (-480), TCPA Authority's unit.

``litigator_name`` is sensitive: it goes to the ledger's answer and to the
``ctp_litigator_name`` column, nowhere else. No error message is made from a
response body: only from the status and the envelope's own error text, and the
reason of an ``action == "error"`` answer has any litigator name blanked out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx
import polars as pl

from pipeline.columns import require_column
from pipeline.config import Config
from pipeline.errors import LaneStoppedError, ProviderError, TerminalError, TransientError
from pipeline.provider_config import CheckThatPhoneSettings, ProviderSettings
from pipeline.providers.base import Conversion, LookupExprs, Provider, Reply
from pipeline.providers.common import (
    FLAG,
    classify_status,
    decimal,
    json_object,
    one_line,
    phone_is_valid,
    whole,
)

PATH = "/v1/lookup"
WHAT = "CheckThatPhone"
IP_SEPARATOR = "|"
"""Between the phone and the IP in a key (phones are 10 digits, so the first ``|``)."""
GARBLED = f"{WHAT}: the answer is not the JSON envelope the API documents"
REDACTED = "[redacted]"

_STRING = pl.String()
# Answer field -> our column (after the ctp_ prefix) and type as stored, in output order.
# ``error`` becomes ``lookup_error``: ``ctp_error`` is the status column's.
_FIELDS: tuple[tuple[str, str, pl.DataType], ...] = (
    ("subscriber", "subscriber", _STRING),
    ("optDate", "opt_date", _STRING),
    ("action", "action", _STRING),
    ("deliverable", "deliverable", _STRING),
    ("error", "lookup_error", _STRING),
    ("reason", "reason", _STRING),
    ("deactivationDate", "deactivation_date", _STRING),
    ("blackList", "black_list", _STRING),
    ("nanpType", "nanp_type", _STRING),
    ("nanpCarrier", "nanp_carrier", _STRING),
    ("dip", "dip", _STRING),
    ("dipLrn", "dip_lrn", _STRING),
    ("dipPorted", "dip_ported", _STRING),
    ("dipOcn", "dip_ocn", _STRING),
    ("dipCarrier", "dip_carrier", _STRING),
    ("dipCarrierType", "dip_carrier_type", _STRING),
    ("dipCarrierSubType", "dip_carrier_sub_type", _STRING),
    ("dipMessagingLookup", "dip_messaging_lookup", _STRING),
    ("dipMessagingEnabled", "dip_messaging_enabled", _STRING),
    ("dipMessagingProvider", "dip_messaging_provider", _STRING),
    ("dipMessagingRefId", "dip_messaging_ref_id", _STRING),
    ("dipMessagingCountryCode", "dip_messaging_country_code", _STRING),
    ("litigator", "litigator", _STRING),
    ("litigator_type", "litigator_type", _STRING),
    ("litigator_name", "litigator_name", _STRING),
    ("ipResult", "ip_result", _STRING),
    ("geoCountry", "geo_country", _STRING),
    ("geoState", "geo_state", _STRING),
    ("geoCity", "geo_city", _STRING),
    ("geoMetro", "geo_metro", pl.Int64()),
    ("geoSource", "geo_source", _STRING),
    ("timezone", "timezone", _STRING),
    ("tzOffset", "utc_offset", pl.Float64()),
)
_FLAGS = ("deliverable", "lookup_error", "black_list", "dip_ported", "dip_messaging_lookup",
          "dip_messaging_enabled", "litigator")  # fmt: skip
"""Columns CheckThatPhone sends as "true" / "false" text: written as Booleans."""


def _minutes_east(hours_west: pl.Expr) -> pl.Expr:
    """``tzOffset`` (documented as hours: 8 for Los Angeles, i.e. hours behind UTC) as
    minutes east of UTC, TCPA Authority's unit: 8 -> -480, 3.5 -> -210."""
    return (hours_west * -60).round(0).cast(pl.Int64)


_CONVERSIONS: dict[str, Conversion] = {
    **dict.fromkeys(_FLAGS, FLAG),
    "utc_offset": Conversion(pl.Float64(), _minutes_east),
}
_COLUMN_TYPES = {"utc_offset": pl.Int64(), **dict.fromkeys(_FLAGS, pl.Boolean())}
_INTEGERS = frozenset(source for source, _, dtype in _FIELDS if dtype == pl.Int64)
_FLOATS = frozenset(source for source, _, dtype in _FIELDS if dtype == pl.Float64)


class CheckThatPhone(Provider):
    name: ClassVar[str] = "checkthatphone"
    prefix: ClassVar[str] = "ctp"
    fields: ClassVar[dict[str, pl.DataType]] = {
        column: _COLUMN_TYPES.get(column, dtype) for _, column, dtype in _FIELDS
    }
    sources: ClassVar[dict[str, str]] = {column: source for source, column, _ in _FIELDS}

    def __init__(self, settings: CheckThatPhoneSettings, api_key: str) -> None:
        self.settings = settings
        self._api_key = api_key
        self._url = settings.base_url + PATH
        # The body after the phone (and the IP): the options, the same for every key.
        tail = ""
        if settings.litigator_filter:
            tail += ',"litigatorFilter":true'
        if settings.landline_sms_lookup:
            tail += ',"landlineSmsLookup":true'
        self._tail = tail + "}"
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

    def __repr__(self) -> str:  # never show the key
        return f"CheckThatPhone({self.settings.base_url!r}, {self.options()!r})"

    def options(self) -> str:
        s = self.settings
        return (
            f"v1;litigatorFilter={str(s.litigator_filter).lower()}"
            f";landlineSmsLookup={str(s.landline_sms_lookup).lower()}"
        )

    def conversions(self) -> dict[str, Conversion]:
        return _CONVERSIONS

    def max_credits_per_key(self) -> int:
        s = self.settings
        return 1 + int(s.litigator_filter) + int(s.landline_sms_lookup)

    def _price(self, answer: dict[str, Any]) -> int:
        """The documented price of an answer, for when it does not say what it cost."""
        if answer.get("action") == "error":
            return 0
        s = self.settings
        landline = answer.get("nanpType") == "landline"
        return 1 + int(s.litigator_filter) + int(s.landline_sms_lookup and landline)

    def lookups(self, frame: pl.LazyFrame) -> LookupExprs:
        phone = pl.col("phone_normalized")
        key = phone
        column = self.settings.ip_column
        if column is not None:
            setting = f"providers.{self.name}.ip_column"
            require_column(column, setting, frame.collect_schema().names())
            ip = pl.col(column).cast(pl.String).str.strip_chars().str.to_lowercase()
            ip = pl.when(ip != "").then(ip)
            key = pl.concat_str([phone, ip], separator=IP_SEPARATOR, ignore_nulls=True)
        return LookupExprs(key=pl.when(phone_is_valid()).then(key))

    def request(
        self, keys: Sequence[str], request_id: str, carry: Sequence[str | None] = ()
    ) -> httpx.Request:
        (key,) = keys
        phone, _, ip = key.partition(IP_SEPARATOR)
        # The phone is 10 digits (lookups() made it so); only an IP needs JSON escaping.
        body = '{"phone":"' + phone + '"'
        if ip:
            body += ',"ip":' + json.dumps(ip)
        return httpx.Request(
            "POST",
            self._url,
            content=(body + self._tail).encode(),
            headers={**self._headers, "X-Request-ID": request_id},
        )

    def parse(self, response: httpx.Response, keys: Sequence[str]) -> Reply:
        if response.status_code != 200:
            raise refusal(response)
        envelope = json_object(response)
        if envelope is None or not isinstance(envelope.get("data"), dict):
            paid = charged(response, envelope or {})
            raise TransientError(GARBLED, status=200, credits=paid or 0)
        data = envelope["data"]
        answer = _answer(data)
        reported = charged(response, envelope)
        credits = self._price(data) if reported is None else reported
        if data.get("action") == "error":
            return Reply.single("invalid_input", answer, credits, _refused_reason(data))
        if envelope.get("success") is not True:
            raise TransientError(
                f"{WHAT}: the lookup did not complete (success false)",
                status=200,
                credits=reported or 0,
            )
        subscriber = "".join(c for c in str(data.get("subscriber") or "") if c.isdigit())
        if subscriber and subscriber[-10:] != keys[0][:10]:
            # Paid for, and asking again would likely pay for the same wrong answer.
            raise TerminalError(
                f"{WHAT}: the answer is for another number; not asked again",
                status=200,
                credits=credits,
            )
        return Reply.single("hit", answer, credits)


def charged(response: httpx.Response, envelope: dict[str, Any]) -> int | None:
    """Credits the call cost: the ``X-Credits-Used`` header, else the envelope's
    ``credits_used``, else None (unknown)."""
    header = response.headers.get("x-credits-used", "").strip()
    if header.isdecimal():
        return int(header)
    value = envelope.get("credits_used")
    number = whole(value) if isinstance(value, int | float) else None
    if number is not None and number >= 0:
        return number
    return None


def _answer(data: dict[str, Any]) -> dict[str, Any]:
    """The answer as the ledger keeps it: the documented fields, each of its column's type
    (an odd value becomes text, or null for a number that is not one), so merging can
    never fail on what a provider sent."""
    answer: dict[str, Any] = {}
    for source, _, _ in _FIELDS:
        if source not in data:
            continue
        value = data[source]
        if source in _INTEGERS:
            value = whole(value)
        elif source in _FLOATS:
            value = decimal(value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        elif value is not None and not isinstance(value, str):
            value = json.dumps(value) if isinstance(value, dict | list) else str(value)
        answer[source] = value
    return answer


def _refused_reason(data: dict[str, Any]) -> str:
    """The error text of an ``action == "error"`` answer: its reason, never a name."""
    reason = data.get("reason")
    text = one_line(reason) if isinstance(reason, str) and reason.strip() else ""
    text = _redact(text, data)
    return f"{WHAT}: action=error" + (f": {text}" if text else ": the phone was refused")


def _redact(text: str, data: dict[str, Any]) -> str:
    """``text`` without the answer's litigator name (whole, or any word of it)."""
    name = data.get("litigator_name")
    if isinstance(name, str) and name.strip():
        for part in sorted({name.strip(), *name.split()}, key=len, reverse=True):
            if len(part) > 2:
                text = text.replace(part, REDACTED)
    return text


def _error_text(response: httpx.Response) -> str:
    """The envelope's own error message, if it has one; never the rest of the body."""
    envelope = json_object(response)
    if envelope is None:
        return ""
    for name in ("error", "message"):
        value = envelope.get(name)
        if isinstance(value, dict):
            value = value.get("message")
        if isinstance(value, str) and value.strip():
            data = envelope.get("data")
            return _redact(one_line(value), data if isinstance(data, dict) else {})
    return ""


def refusal(response: httpx.Response) -> ProviderError:
    """The classified error of a non-200 answer, worded from its status and the
    envelope's error message only."""
    status = response.status_code
    detail = _error_text(response)
    if status == 429 and "quota" in detail.lower():
        return LaneStoppedError(f"{WHAT}: HTTP 429: {detail}", status=status)
    return classify_status(response, WHAT, detail)


def build(settings: ProviderSettings, api_key: str, config: Config) -> CheckThatPhone:
    """The provider for the ``[providers.checkthatphone]`` section."""
    assert isinstance(settings, CheckThatPhoneSettings)
    return CheckThatPhone(settings, api_key)
