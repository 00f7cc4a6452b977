"""Phone enrichment: find a phone for a contact from name + company/domain, a LinkedIn
id or an email.

POST ``/v1/enrich/phone`` with ``Authorization: Bearer <key>`` and one record per
request: ``{"record_id", "first_name", "last_name", "company", "email",
"linkedin_id", "domain"}`` (fields a row lacks are left out). A 200 answers
``phone`` in E.164, or null: a phone is a ``hit``, null a ``no_match``. The API
does not report charges, so a hit costs ``credits_per_hit`` and a miss
``credits_per_no_match`` (1 and 0 by default).

Who is looked up: rows whose phone is missing or invalid (``phone_valid`` false or
null) and that have first_name + last_name + (company or domain), or a linkedin_id,
or an email. ``columns`` maps each API field to an input column; a field it does not
name is read from an input column of the same name when there is one. Values are
trimmed, and a blank value is a missing one. Every other row is ``not_requested``.

``record_id`` is the row's ``input.id_column`` value when that is set and not blank,
else its ``row_trace_id``. The lookup key is the JSON object of the six contact
fields (in the order above, nulls included), without the record_id: the answer is a
function of the contact, and a record_id that differs between rows, files or runs
(a row_trace_id changes with the file) must not buy the same contact twice. The
record_id travels beside the key (:attr:`~pipeline.providers.base.LookupExprs.carry`): a request
carries the id of the first row that asked, and ``append_record_id`` is the id the
answer was bought under (from the ledger, so a cached answer shows the earlier one).

Errors carry ``{error, details, request_id, credits_required, credits_remaining,
retry_after}``, except 422, which is FastAPI's ``{"detail": [{loc, msg, type}]}``:

* 422 and 400: the record was refused, ``invalid_input`` (never retried), unless a
  400 carries a ``retry_after``: that is a rate limit, retried like a 429;
* 401, 403, and 402 or any body with ``credits_required > credits_remaining``
  (insufficient credits): the lane stops, the run exits 3 and resumes later;
* 429, 5xx, 408: retried; the wait is the longer of the body's ``retry_after``
  and the ``Retry-After`` header.

An answer whose ``record_id`` is not the one sent is refused outright (``failed``,
not retried): it would put another contact's phone on the row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx
import polars as pl

from pipeline.config import Config
from pipeline.errors import LaneStoppedError, ProviderError, TerminalError, TransientError
from pipeline.provider_config import PhoneEnrichmentSettings, ProviderSettings
from pipeline.providers.base import LookupExprs, Provider, Reply
from pipeline.providers.common import (
    decimal,
    json_object,
    mapped_columns,
    mapped_values,
    one_line,
    phone_is_valid,
    retry_after,
    short_text,
    status_error,
    text_column,
)
from pipeline.trace import TRACE_ID_COLUMN

PATH = "/v1/enrich/phone"
WHAT = "Phone enrichment"
API_FIELDS = ("first_name", "last_name", "company", "email", "linkedin_id", "domain")
"""The contact fields of a request body (after ``record_id``), in key order."""
GARBLED = f"{WHAT}: the answer is not the JSON the API documents"

# Answer field -> type; the column is ``append_`` + the field, in this order.
_ANSWER: dict[str, pl.DataType] = {
    "phone": pl.String(),
    "email": pl.String(),
    "linkedin_id": pl.String(),
    "processing_time_ms": pl.Int64(),
}


class PhoneEnrichment(Provider):
    name: ClassVar[str] = "phone_enrichment"
    prefix: ClassVar[str] = "append"
    fields: ClassVar[dict[str, pl.DataType]] = {**_ANSWER, "record_id": pl.String()}
    """The answer's fields, then the record_id it was bought under (kept in the answer)."""
    appends_phone: ClassVar[str | None] = "phone"

    def __init__(
        self, settings: PhoneEnrichmentSettings, api_key: str, *, id_column: str | None
    ) -> None:
        self.settings = settings
        self._api_key = api_key
        self._id_column = id_column
        self._url = settings.base_url + PATH

    def __repr__(self) -> str:  # never show the key
        return f"PhoneEnrichment({self.settings.base_url!r})"

    def options(self) -> str:
        # Everything that changes an answer is in the key (the contact fields).
        return "v2"

    def max_credits_per_key(self) -> int:
        return max(self.settings.credits_per_hit, self.settings.credits_per_no_match)

    # -- planning ------------------------------------------------------------------------

    def input_columns(self, available: Sequence[str]) -> dict[str, str]:
        """API field -> the input column it is read from, for the fields this input has.

        A column named in ``columns`` must exist (else :class:`InputError`); a field it
        does not name is read from a same-named column when there is one.
        """
        setting = f"providers.{self.name}.columns"
        return mapped_columns(setting, API_FIELDS, self.settings.columns, available)

    def lookups(self, frame: pl.LazyFrame) -> LookupExprs:
        values = mapped_values(self.input_columns(frame.collect_schema().names()), API_FIELDS)
        record_id = pl.col(TRACE_ID_COLUMN).cast(pl.String)
        if self._id_column is not None:
            record_id = pl.coalesce(text_column(pl.col(self._id_column)), record_id)

        present = {field: value.is_not_null() for field, value in values.items()}
        by_name = present["first_name"] & present["last_name"]
        by_name = by_name & (present["company"] | present["domain"])
        enough = by_name | present["linkedin_id"] | present["email"]
        contact = pl.struct(*(v.alias(f) for f, v in values.items()))
        asks = ~phone_is_valid() & enough
        return LookupExprs(
            key=pl.when(asks).then(contact.struct.json_encode()),
            carry=pl.when(asks).then(record_id),
        )

    # -- HTTP ----------------------------------------------------------------------------

    def request(
        self, keys: Sequence[str], request_id: str, carry: Sequence[str | None] = ()
    ) -> httpx.Request:
        (key,) = keys
        record_id = carry[0] if carry else None
        if not record_id:
            raise ValueError(f"{WHAT}: a request needs the row's record_id (the carry)")
        contact = {name: value for name, value in json.loads(key).items() if value is not None}
        sent = {"record_id": record_id, **contact}
        return httpx.Request(
            "POST",
            self._url,
            content=json.dumps(sent, ensure_ascii=False).encode(),
            headers={
                "Authorization": f"Bearer {self._api_key}",
                "X-Request-ID": request_id,
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )

    def parse(self, response: httpx.Response, keys: Sequence[str]) -> Reply:
        if response.status_code != 200:
            raise error_for(response)
        body = json_object(response)
        if body is None:
            raise TransientError(GARBLED, status=200)
        if body.get("success") is False:
            raise TerminalError(f"{WHAT}: HTTP 200 but success is false: {_message(body)}")
        phone = body.get("phone")
        if phone is not None and not isinstance(phone, str):
            raise TransientError(f"{GARBLED} (phone = {phone!r:.40})", status=200)
        answer: dict[str, Any] = {field: _typed(body.get(field), dtype)
                                  for field, dtype in _ANSWER.items()}  # fmt: skip
        sent = _sent_record_id(response)
        answer["record_id"] = sent
        found = answer["phone"] is not None
        price = self.settings.credits_per_hit if found else self.settings.credits_per_no_match
        echoed = body.get("record_id")
        if echoed is not None and str(echoed) != sent:
            raise TerminalError(
                f"{WHAT}: answered record_id {str(echoed)[:40]!r} for {sent!r}; "
                "not trusting the answer",
                status=200,
                credits=price,  # priced as what it says it is: we cannot know better
            )
        return Reply.single("hit" if found else "no_match", answer, price)


# -- helpers -------------------------------------------------------------------------------


def _typed(value: object, dtype: pl.DataType) -> Any:
    """An answer field as its column's type. Only ``phone`` must be right (checked
    before); an odd email, LinkedIn id or timing must not throw away a paid phone, so a
    number is rounded and anything else that is not text becomes null."""
    if dtype == pl.Int64:
        number = _amount(value)
        return None if number is None else round(number)
    return value if isinstance(value, str) and value != "" else None


def _amount(value: object) -> float | None:
    """A count the API sends (credits, seconds, milliseconds): a number not below 0."""
    number = decimal(value)
    return number if number is not None and number >= 0 else None


def _message(body: dict[str, Any]) -> str:
    """The error envelope's own words, or FastAPI's ``detail`` list, on one short line."""
    detail = body.get("detail")
    if isinstance(detail, list):
        parts = []
        for item in detail[:5]:
            if isinstance(item, dict):
                loc = item.get("loc")
                where = ".".join(str(p) for p in loc) if isinstance(loc, list) else ""
                parts.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
        text = "; ".join(parts)
    elif isinstance(detail, str):
        text = detail
    else:
        error, details = body.get("error"), body.get("details")
        text = str(error) if error is not None else ""
        if details not in (None, "", error):
            extra = details if isinstance(details, str) else json.dumps(details, default=str)
            text = f"{text} ({extra})" if text else extra
    return one_line(text)


def _insufficient_credits(
    body: dict[str, Any] | None,
) -> tuple[float | None, float | None] | None:
    """(required, remaining) when the envelope says the account is out of credits."""
    if body is None:
        return None
    required = _amount(body.get("credits_required"))
    remaining = _amount(body.get("credits_remaining"))
    short = required is not None and remaining is not None and required > remaining
    if short or "insufficient credit" in str(body.get("error") or "").lower():
        return required, remaining
    return None


def error_for(response: httpx.Response) -> ProviderError:
    """The classified error of a non-200 answer (see the module docstring)."""
    status = response.status_code
    body = json_object(response)
    text = _message(body) if body is not None else short_text(response)
    message = f"{WHAT}: HTTP {status}" + (f": {text}" if text else "")
    if body is not None and isinstance(body.get("request_id"), str):
        message += f" [request_id {body['request_id'][:64]}]"
    credits = _insufficient_credits(body)
    if credits is not None:
        required, remaining = credits
        need = "?" if required is None else f"{required:g}"
        left = "?" if remaining is None else f"{remaining:g}"
        return LaneStoppedError(
            f"{message} (out of credits: {need} required, {left} remaining)", status=status
        )
    if status == 402:
        return LaneStoppedError(message, status=status)
    said = _body_wait(body)
    waits = [w for w in (retry_after(response), said) if w is not None]
    wait = max(waits, default=None)
    if status == 400 and said:
        # A 400 that says when to retry (the envelope's retry_after is "for rate limit
        # errors") is a rate limit worded as a 400, not a refused record.
        return TransientError(message, status=status, retry_after=wait)
    return status_error(status, message, wait)


def _sent_record_id(response: httpx.Response) -> str:
    """The record_id of the request ``response`` answers (this module built its body)."""
    record_id: str = json.loads(response.request.content)["record_id"]
    return record_id


def _body_wait(body: dict[str, Any] | None) -> float | None:
    return None if body is None else _amount(body.get("retry_after"))


def build(settings: ProviderSettings, api_key: str, config: Config) -> PhoneEnrichment:
    """The provider for the ``[providers.phone_enrichment]`` section."""
    assert isinstance(settings, PhoneEnrichmentSettings)
    return PhoneEnrichment(settings, api_key, id_column=config.input.id_column)
