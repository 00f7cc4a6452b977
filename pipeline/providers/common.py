"""What every provider module needs besides its own API mapping: one table for what an
HTTP status means, one way to read a JSON object or a number out of an answer, and the
expressions that read a batch's columns.

Written once so that two providers never disagree on, say, whether a 408 is retried or
whether ``"12"`` is a number; a provider module keeps only what its API documents
differently.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import polars as pl

from pipeline.columns import missing_column
from pipeline.errors import (
    BadRequestError,
    LaneStoppedError,
    ProviderError,
    TerminalError,
    TransientError,
)
from pipeline.providers.base import Conversion

DETAIL_CHARS = 200
"""How much of a provider's own error text goes into a message."""

WRONG_ADDRESS = (404, 405)
"""Statuses no provider documents: the API is not at base_url, and every request would
get the same."""

# -- statuses --------------------------------------------------------------------------------


def status_error(status: int, message: str, retry_after: float | None = None) -> ProviderError:
    """The error class for a non-success status that means the same at every provider;
    ``message`` is already worded, ``retry_after`` is the wait a retry must honour."""
    if status == 429:
        return TransientError(message, status=status, retry_after=retry_after)
    if status in (401, 403):
        return LaneStoppedError(message, status=status)
    if status in WRONG_ADDRESS:
        return wrong_address(message, status)
    if status in (400, 422):
        return BadRequestError(message, status=status)
    if status >= 500 or status == 408:
        return TransientError(message, status=status, retry_after=retry_after)
    return TerminalError(message, status=status)


def classify_status(
    response: httpx.Response, what: str, detail: str | None = None
) -> ProviderError:
    """:func:`status_error` for ``response``, worded ``<what>: HTTP <status>: <detail>``.

    ``detail`` is the provider's own error text when it has a way to find it (never
    a response body it does not trust); by default the start of the body.
    """
    status = response.status_code
    said = short_text(response) if detail is None else one_line(detail)
    message = f"{what}: HTTP {status}" + (f": {said}" if said else "")
    return status_error(status, message, retry_after(response))


def wrong_address(message: str, status: int) -> LaneStoppedError:
    return LaneStoppedError(f"{message} (is base_url right?)", status=status)


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the ``Retry-After`` header asks for (delta or HTTP date), if any."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


# -- reading an answer -----------------------------------------------------------------------


def one_line(text: str, limit: int = DETAIL_CHARS) -> str:
    """``text`` on one line, whitespace runs made one space, cut to ``limit``."""
    return " ".join(text.split())[:limit]


def short_text(response: httpx.Response, limit: int = DETAIL_CHARS) -> str:
    """The start of a response body, on one line, for an error message."""
    try:
        text = response.text
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        return ""
    return one_line(text, limit)


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The body as a JSON object; None when it is not one (not JSON, or a list...)."""
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError, httpx.ResponseNotRead):
        return None
    return body if isinstance(body, dict) else None


def number(value: object) -> int | float | None:
    """A JSON value as a finite number: a number as sent (an integer stays exact) or text
    that reads as one; None for anything else (null, a bool, blank, NaN, infinity)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, float) and math.isfinite(value):
        return value
    return None


def whole(value: object) -> int | None:
    """:func:`number` as an integer; None when it has a fraction."""
    found = number(value)
    if found is None or isinstance(found, int):
        return found
    return int(found) if found.is_integer() else None


def decimal(value: object) -> float | None:
    """:func:`number` as a float (None for an integer too large for one)."""
    found = number(value)
    if found is None:
        return None
    try:
        return float(found)
    except OverflowError:
        return None


def text(value: object) -> str | None:
    """A scalar as trimmed text (a bool as ``true`` / ``false``); blank, null, an object
    or a list is None."""
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    trimmed = str(value).strip()
    return trimmed or None


# -- reading a batch -------------------------------------------------------------------------

NULL_TEXT = pl.lit(None, dtype=pl.String)


def phone_is_valid() -> pl.Expr:
    """Whether the row's normalized phone is one to look up (null counts as not)."""
    return pl.col("phone_valid").fill_null(False)


def text_column(column: pl.Expr) -> pl.Expr:
    """The column as trimmed text, blank as null."""
    value = column.cast(pl.String).str.strip_chars()
    return pl.when(value.str.len_bytes() > 0).then(value)


def mapped_columns(
    setting: str,
    fields: Sequence[str],
    configured: Mapping[str, str],
    available: Sequence[str],
) -> dict[str, str]:
    """API field -> the input column it is read from, for the fields this input has.

    A column named in ``configured`` (the ``setting`` table, e.g.
    ``providers.tdg_id_verify.columns``) must exist; a field it does not name is read
    from a same-named column when there is one.
    """
    have = set(available)
    mapped: dict[str, str] = {}
    for field in fields:
        column = configured.get(field)
        if column is not None:
            if column not in have:
                raise missing_column(column, f"{setting}.{field}", available)
            mapped[field] = column
        elif field in have:
            mapped[field] = field
    return mapped


def mapped_values(mapped: Mapping[str, str], fields: Sequence[str]) -> dict[str, pl.Expr]:
    """Each field's value (:func:`text_column` of its column), null where unmapped."""
    return {
        field: text_column(pl.col(mapped[field])) if field in mapped else NULL_TEXT
        for field in fields
    }


# -- typing an answer's columns ---------------------------------------------------------------


def text_flag(value: pl.Expr) -> pl.Expr:
    """``"true"`` / ``"false"`` text (any case, trimmed) as a Boolean; anything else null."""
    word = value.str.strip_chars().str.to_lowercase()
    return pl.when(word == "true").then(True).when(word == "false").then(False)


def text_minutes(value: pl.Expr) -> pl.Expr:
    """Whole minutes sent as text (``"-420"``) as an integer; null if not a number."""
    return value.str.strip_chars().cast(pl.Float64, strict=False).round(0).cast(pl.Int64)


FLAG = Conversion(pl.String(), text_flag)
"""A field sent as ``"true"`` / ``"false"`` text, kept so, written as a Boolean."""
