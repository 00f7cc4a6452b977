"""The Data Group (TDG) ID verify: how well a row's name, address, zip, phone and email
fit together, as scores.

POST ``/v2/verify/id`` with header ``x-api-key`` and one identity per request:
``{"FName", "LName", "Address1", "Zip", "Phone", "Email"}`` (fields a row lacks are
left out). ``Phone`` is always the row's normalized phone (an appended one too);
``columns`` maps each of the other five to an input column, and a field it does not
name is read from an input column of the same name when there is one. Values are
trimmed; blank is missing.

Checked before anything is sent (else the row is ``invalid_input``, no request, no
charge): at least two of the six fields present (a row without a valid phone counts
the other five); TDG's documented limits (LName 20 characters, Address1 64, Email
100 and an ``@``, Zip 5 digits; a ZIP+4 is cut to its 5).

The 200 answer ``{"IDScores": {...}}`` becomes one column per score, typed: scores
are integers, the three counts decimals, the summaries (PASS / FAIL) and USLocation
text; ``""`` (not verified) is null, and so is a number that is not one. Statuses are
read as for reverse phone: 204 and 440 are ``no_match``; 400 ``invalid_input``; 401
(and 403) stop the lane; 429 and 5xx are retried; the lane's rate adapts to TDG's
hidden limit. TDG reports no charges: a verification costs ``credits_per_call``, a
204 or 440 ``credits_per_no_match``.

The lookup key is the JSON object of the six fields in the order above (nulls
included): two rows share an answer only when they would send the very same body.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import ClassVar

import httpx
import polars as pl

from pipeline.config import Config
from pipeline.errors import TransientError
from pipeline.provider_config import ProviderSettings, TdgIdVerifySettings
from pipeline.providers.base import LookupExprs, PacerOptions, Provider, Reply
from pipeline.providers.common import (
    decimal,
    json_object,
    mapped_columns,
    mapped_values,
    phone_is_valid,
    text,
    whole,
)
from pipeline.providers.tdg_common import ADAPTIVE, headers, unanswered

PATH = "/v2/verify/id"
WHAT = "TDG ID verify"
API_FIELDS = ("FName", "LName", "Address1", "Zip", "Phone", "Email")
"""The identity fields of a request body, in key order."""
MAPPED = tuple(field for field in API_FIELDS if field != "Phone")
MAX_LENGTH = {"LName": 20, "Address1": 64, "Email": 100}
"""TDG's documented limits, in characters."""

_INT, _FLOAT, _STRING = pl.Int64(), pl.Float64(), pl.String()
# IDScores field -> our column (after tdgid_) and type, in TDG's order.
_SCORES: tuple[tuple[str, str, pl.DataType], ...] = (
    ("ValidAddress", "valid_address", _INT),
    ("ValidPhone", "valid_phone", _INT),
    ("ValidEmail", "valid_email", _INT),
    ("ValidName", "valid_name", _INT),
    ("ValidZip", "valid_zip", _INT),
    ("Deceased", "deceased", _INT),
    ("NameToPhone", "name_to_phone", _INT),
    ("NameToEmail", "name_to_email", _INT),
    ("NameToAddress", "name_to_address", _INT),
    ("AddressToPhone", "address_to_phone", _INT),
    ("AddressToEmail", "address_to_email", _INT),
    ("PhoneToEmail", "phone_to_email", _INT),
    ("ZipToPhone", "zip_to_phone", _INT),
    ("USLocation", "us_location", _STRING),
    ("ValidPhone2", "valid_phone2", _INT),
    ("NameToPhone2", "name_to_phone2", _INT),
    ("AddressToPhone2", "address_to_phone2", _INT),
    ("Phone2ToEmail", "phone2_to_email", _INT),
    ("PhoneConfidenceScore", "phone_confidence_score", _INT),
    ("Phone2ConfidenceScore", "phone2_confidence_score", _INT),
    ("AddressConfidenceScore", "address_confidence_score", _INT),
    ("ValidCount", "valid_count", _FLOAT),
    ("LinkageCount", "linkage_count", _FLOAT),
    ("RiskFlagCount", "risk_flag_count", _FLOAT),
    ("ValidationSummary", "validation_summary", _STRING),
    ("LinkageSummary", "linkage_summary", _STRING),
    ("RiskFlagSummary", "risk_flag_summary", _STRING),
    ("IDVerifyScore", "id_verify_score", _INT),
)


class TdgIdVerify(Provider):
    name: ClassVar[str] = "tdg_id_verify"
    prefix: ClassVar[str] = "tdgid"
    fields: ClassVar[dict[str, pl.DataType]] = {column: dtype for _, column, dtype in _SCORES}
    sources: ClassVar[dict[str, str]] = {column: source for source, column, _ in _SCORES}

    def __init__(self, settings: TdgIdVerifySettings, api_key: str) -> None:
        self.settings = settings
        self._url = settings.base_url + PATH
        self._headers = headers(api_key)

    def __repr__(self) -> str:  # never show the key
        return f"TdgIdVerify({self.settings.base_url!r})"

    def options(self) -> str:
        return "v2"  # everything that changes an answer is in the key

    def max_credits_per_key(self) -> int:
        return max(self.settings.credits_per_call, self.settings.credits_per_no_match)

    def pacer_options(self) -> PacerOptions:
        return ADAPTIVE.copy()

    # -- planning ------------------------------------------------------------------------

    def input_columns(self, available: Sequence[str]) -> dict[str, str]:
        """API field -> the input column it is read from, for the fields this input has
        (Phone aside). A column named in ``columns`` must exist (else InputError)."""
        setting = f"providers.{self.name}.columns"
        return mapped_columns(setting, MAPPED, self.settings.columns, available)

    def lookups(self, frame: pl.LazyFrame) -> LookupExprs:
        values = mapped_values(self.input_columns(frame.collect_schema().names()), MAPPED)
        zip_code = values["Zip"]
        zip5 = zip_code.str.extract(r"^(\d{5})(?:-?\d{4})?$", 1)
        values["Zip"] = pl.coalesce(zip5, zip_code)
        values["Phone"] = pl.when(phone_is_valid()).then(pl.col("phone_normalized").cast(pl.String))

        present = [values[field].is_not_null().cast(pl.Int32) for field in API_FIELDS]
        count = pl.sum_horizontal(present)
        have = pl.concat_str(
            [pl.when(values[f].is_not_null()).then(pl.lit(f)) for f in API_FIELDS],
            separator=", ",
            ignore_nulls=True,
        )
        need = f"{WHAT}: needs at least two of {', '.join(API_FIELDS)}; this row has "
        refused = (
            pl.when(count == 0)
            .then(pl.lit(need + "none"))
            .when(count == 1)
            .then(pl.lit(need + "only ") + have)
        )
        for field, limit in MAX_LENGTH.items():
            too_long = values[field].str.len_chars() > limit
            refused = refused.when(too_long).then(
                pl.lit(f"{WHAT}: {field} is longer than TDG's {limit} characters")
            )
        email = values["Email"]
        no_at = email.is_not_null() & ~email.str.contains("@", literal=True)
        refused = refused.when(no_at).then(pl.lit(f"{WHAT}: Email is not an email address (no @)"))
        bad_zip = zip_code.is_not_null() & zip5.is_null()
        refused = refused.when(bad_zip).then(
            pl.lit(f"{WHAT}: Zip ") + zip_code.str.slice(0, 20) + pl.lit(" is not a 5-digit ZIP")
        )
        body = pl.struct(*(values[field].alias(field) for field in API_FIELDS))
        key = pl.when((count >= 2) & refused.is_null()).then(body.struct.json_encode())
        return LookupExprs(key=key, refused=refused)

    # -- HTTP ----------------------------------------------------------------------------

    def request(
        self, keys: Sequence[str], request_id: str, carry: Sequence[str | None] = ()
    ) -> httpx.Request:
        (key,) = keys
        sent = {name: value for name, value in json.loads(key).items() if value is not None}
        return httpx.Request(
            "POST",
            self._url,
            content=json.dumps(sent, ensure_ascii=False).encode(),
            headers={**self._headers, "X-Request-ID": request_id},
        )

    def parse(self, response: httpx.Response, keys: Sequence[str]) -> Reply:
        reply = unanswered(response, WHAT, self.settings.credits_per_no_match)
        if reply is not None:
            return reply
        body = json_object(response)
        scores = body.get("IDScores") if body is not None else None
        if not isinstance(scores, dict):
            raise TransientError(f"{WHAT}: the answer is not the JSON TDG documents", status=200)
        answer = {source: _typed(scores.get(source), dtype) for source, _, dtype in _SCORES}
        return Reply.single("hit", answer, self.settings.credits_per_call)


def _typed(value: object, dtype: pl.DataType) -> int | float | str | None:
    """A score as its column's type; blank, or a number that is not one, is null (and
    a bool is no score at all, not even as text)."""
    if dtype == pl.String:
        return None if isinstance(value, bool) else text(value)
    return whole(value) if dtype == pl.Int64 else decimal(value)


def build(settings: ProviderSettings, api_key: str, config: Config) -> TdgIdVerify:
    """The provider for the ``[providers.tdg_id_verify]`` section."""
    assert isinstance(settings, TdgIdVerifySettings)
    return TdgIdVerify(settings, api_key)
