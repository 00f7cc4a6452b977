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
succeed (see :data:`ADAPTIVE`, measured by ``bench/bench_tdg_adaptive.py``).

TDG reports no charges; a row's credits are the configured prices. Error texts are
made from the status and the body's own ``message`` only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx
import polars as pl

from pipeline.config import Config
from pipeline.errors import ProviderError, TransientError
from pipeline.provider_config import ProviderSettings, TdgReversePhoneSettings
from pipeline.providers.base import (
    KEY,
    REFUSED,
    PacerOptions,
    Provider,
    Reply,
    classify_status,
    short_text,
)

PATH = "/v3/lookup/phone"
WHAT = "TDG reverse phone"
TOO_MANY_RESULTS = 440
TOO_MANY_TEXT = "too many results (TDG will not pick one owner for this number)"
EMPTY_200 = f"{WHAT}: HTTP 200 with neither Name nor Address"

ADAPTIVE: PacerOptions = {"decrease": 0.9, "increase": 0.0002}
"""The pacer of a TDG lane, whose limit is hidden: a gentler cut on a 429 (x0.9, not
x0.7) and a slow creep back (+0.02% of the ceiling per answer, not 2%). The engine's
default creeps back so fast that it is over the limit again within seconds (about 6%
of requests answered 429); this settles just under the limit and probes above it
about once a minute or less. Measured by ``bench/bench_tdg_adaptive.py``."""

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

    def plan(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        valid = pl.col("phone_valid").fill_null(False)
        asked = valid & pl.col("phone_region").is_in(list(self.settings.regions))
        return frame.with_columns(
            pl.when(asked).then(pl.col("phone_normalized")).alias(KEY),
            pl.lit(None, dtype=pl.String).alias(REFUSED),
        )

    def request(
        self, keys: Sequence[str], request_id: str, carry: Sequence[str | None] = ()
    ) -> httpx.Request:
        (phone,) = keys  # 10 digits (plan() made it so): no JSON escaping needed
        return httpx.Request(
            "POST",
            self._url,
            content=b'{"Phone":"' + phone.encode() + b'"}',
            headers={**self._headers, "X-Request-ID": request_id},
        )

    def parse(self, response: httpx.Response, keys: Sequence[str]) -> Reply:
        status = response.status_code
        no_match = self.settings.credits_per_no_match
        if status == 204:
            return Reply.single("no_match", None, no_match)
        if status == TOO_MANY_RESULTS:
            return Reply.single("no_match", None, no_match, too_many_results(response, WHAT))
        if status != 200:
            raise refusal(response, WHAT)
        body = json_object(response)
        name = body.get("Name") if body is not None else None
        address = body.get("Address") if body is not None else None
        if body is None:
            raise TransientError(f"{WHAT}: the answer is not the JSON TDG documents", status=200)
        if not (isinstance(name, dict) or isinstance(address, dict)):
            # Answered (and priced as a 200), with nothing in it: asking again would pay
            # again for the same nothing.
            empty = {"trace": _text(body.get("trace"))}
            return Reply.single("no_match", empty, self.settings.credits_per_hit, EMPTY_200)
        answer: dict[str, Any] = {}
        for part, names in ((name, _NAME), (address, _ADDRESS)):
            if isinstance(part, dict):
                for source in names:
                    value = part.get(source)
                    answer[source] = _flag(value) if source == "Deliverable" else _text(value)
        answer["trace"] = _text(body.get("trace"))
        return Reply.single("hit", answer, self.settings.credits_per_hit)


# -- shared with tdg_id_verify -------------------------------------------------------------


def headers(api_key: str) -> dict[str, str]:
    """What every TDG request carries (the key in ``x-api-key``)."""
    return {"x-api-key": api_key, "Content-Type": "application/json", "Accept": "application/json"}


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def message(response: httpx.Response) -> str:
    """The body's own error message (``message`` / ``Message``), else its start."""
    body = json_object(response)
    if body is not None:
        for name in ("message", "Message", "error"):
            value = body.get(name)
            if isinstance(value, str) and value.strip():
                return " ".join(value.split())[:200]
        return ""
    return short_text(response)


def too_many_results(response: httpx.Response, what: str) -> str:
    detail = message(response)
    return f"{what}: HTTP 440: {TOO_MANY_TEXT}" + (f": {detail}" if detail else "")


def refusal(response: httpx.Response, what: str) -> ProviderError:
    """The classified error of a non-answer (400, 401, 403, 429, 5xx, ...)."""
    headers = {}
    if "retry-after" in response.headers:
        headers["Retry-After"] = response.headers["retry-after"]
    detail = message(response)
    return classify_status(httpx.Response(response.status_code, headers=headers, text=detail), what)


def _text(value: object) -> str | None:
    """A field as text; blank is null (TDG sends ``""`` for what it does not have)."""
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    return text or None


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
