"""The Data Group (TDG) reverse phone append: the name and address behind a number.

POST ``/v3/lookup/phone`` with ``{"Phone": "2125550123"}`` (10 digits) and header
``x-api-key``, one number per request. Rows are looked up when their phone is valid
and its region is one of ``regions`` (U.S. only by default: TDG documents U.S.
numbers); the others are ``not_requested``. Statuses, as TDG documents them:

* 200: ``{"Name": {LName, FName, MName}, "Address": {House, PreDir, Street,
  StrType, PostDir, AptType, City, State, Zip, Z4, CNTY, Deliverable, ValDate},
  "trace"}``: a ``hit``, ``credits_per_hit``. ``trace`` (TDG's id of the request,
  for support) is kept as ``tdg_trace``.
* 204 (no record) and 440 (too many results to name one): ``no_match``, at
  ``credits_per_no_match``; a 440 says so in ``tdg_error``.
* 400 (missing parameter): the number was refused, ``invalid_input``, never retried.
* 401 (bad key), and 403 though TDG documents none: the lane stops, the run exits 3.
* 429 and 500 (and other 5xx, timeouts, a 200 that is not JSON): retried with
  backoff, Retry-After honoured when TDG sends one.
* A 200 JSON object with neither ``Name`` nor ``Address``: ``no_match`` at
  ``credits_per_hit`` (a 200 is what TDG charges as a hit), not retried.

TDG does not publish its rate limit, so ``requests_per_minute`` is a ceiling: the
lane's pacer lowers its rate on every 429 and earns it back slowly while answers
succeed (see :data:`~pipeline.providers.tdg_common.ADAPTIVE`, measured by
``bench/bench_tdg_adaptive.py``).

TDG reports no charges; a row's credits are the configured prices. Error texts are
made from the status and the body's own ``message`` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import httpx
import polars as pl

from pipeline.config import Config
from pipeline.errors import TransientError
from pipeline.provider_config import ProviderSettings, TdgReversePhoneSettings
from pipeline.providers.base import LookupExprs, PacerOptions, Provider, Reply
from pipeline.providers.common import json_object, phone_is_valid, text
from pipeline.providers.tdg_common import ADAPTIVE, headers, unanswered

PATH = "/v3/lookup/phone"
WHAT = "TDG reverse phone"
EMPTY_200 = f"{WHAT}: HTTP 200 with neither Name nor Address"

_STRING = pl.String()
# Answer field (flattened out of Name / Address) -> our column (after tdg_) and type.
_FIELDS: tuple[tuple[str, str, pl.DataType], ...] = (
    ("FName", "first_name", _STRING),
    ("MName", "middle_name", _STRING),
    ("LName", "last_name", _STRING),
    ("House", "house", _STRING),
    ("PreDir", "pre_dir", _STRING),
    ("Street", "street", _STRING),
    ("StrType", "street_type", _STRING),
    ("PostDir", "post_dir", _STRING),
    ("AptType", "apt_type", _STRING),
    ("City", "city", _STRING),
    ("State", "state", _STRING),
    ("Zip", "zip", _STRING),
    ("Z4", "zip4", _STRING),
    ("CNTY", "county", _STRING),
    ("Deliverable", "deliverable", pl.Boolean()),
    ("ValDate", "validation_date", _STRING),
    ("trace", "trace", _STRING),
)
_NAME = ("LName", "FName", "MName")
_ADDRESS = tuple(source for source, _, _ in _FIELDS if source not in _NAME and source != "trace")


class TdgReversePhone(Provider):
    name: ClassVar[str] = "tdg_reverse_phone"
    prefix: ClassVar[str] = "tdg"
    fields: ClassVar[dict[str, pl.DataType]] = {column: dtype for _, column, dtype in _FIELDS}
    sources: ClassVar[dict[str, str]] = {column: source for source, column, _ in _FIELDS}

    def __init__(self, settings: TdgReversePhoneSettings, api_key: str) -> None:
        self.settings = settings
        self._url = settings.base_url + PATH
        self._headers = headers(api_key)

    def __repr__(self) -> str:  # never show the key
        return f"TdgReversePhone({self.settings.base_url!r})"

    def options(self) -> str:
        return "v3"  # no setting changes an answer

    def max_credits_per_key(self) -> int:
        return max(self.settings.credits_per_hit, self.settings.credits_per_no_match)

    def pacer_options(self) -> PacerOptions:
        return ADAPTIVE.copy()

    def lookups(self, frame: pl.LazyFrame) -> LookupExprs:
        asked = phone_is_valid() & pl.col("phone_region").is_in(list(self.settings.regions))
        return LookupExprs(key=pl.when(asked).then(pl.col("phone_normalized")))

    def request(
        self, keys: Sequence[str], request_id: str, carry: Sequence[str | None] = ()
    ) -> httpx.Request:
        (phone,) = keys  # 10 digits (lookups() made it so): no JSON escaping needed
        return httpx.Request(
            "POST",
            self._url,
            content=b'{"Phone":"' + phone.encode() + b'"}',
            headers={**self._headers, "X-Request-ID": request_id},
        )

    def parse(self, response: httpx.Response, keys: Sequence[str]) -> Reply:
        reply = unanswered(response, WHAT, self.settings.credits_per_no_match)
        if reply is not None:
            return reply
        body = json_object(response)
        name = body.get("Name") if body is not None else None
        address = body.get("Address") if body is not None else None
        if body is None:
            raise TransientError(f"{WHAT}: the answer is not the JSON TDG documents", status=200)
        if not (isinstance(name, dict) or isinstance(address, dict)):
            # Answered (and priced as a 200), with nothing in it: asking again would pay
            # again for the same nothing.
            empty = {"trace": text(body.get("trace"))}
            return Reply.single("no_match", empty, self.settings.credits_per_hit, EMPTY_200)
        answer: dict[str, Any] = {}
        for part, names in ((name, _NAME), (address, _ADDRESS)):
            if isinstance(part, dict):
                for source in names:
                    value = part.get(source)
                    answer[source] = _flag(value) if source == "Deliverable" else text(value)
        answer["trace"] = text(body.get("trace"))
        return Reply.single("hit", answer, self.settings.credits_per_hit)


def _flag(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return {"true": True, "false": False, "y": True, "n": False}.get(value.strip().lower())
    return None


def build(settings: ProviderSettings, api_key: str, config: Config) -> TdgReversePhone:
    """The provider for the ``[providers.tdg_reverse_phone]`` section."""
    assert isinstance(settings, TdgReversePhoneSettings)
    return TdgReversePhone(settings, api_key)
