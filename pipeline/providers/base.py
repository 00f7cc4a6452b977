"""What every provider module implements: turn lookups into an HTTP request, and a
response into results or one classified error. Nothing more.

The engine owns everything around the call: pacing, concurrency, batching,
retries, splitting a refused batch, the ledger and the credits. A provider never
sends anything itself; it builds an :class:`httpx.Request` and reads an
:class:`httpx.Response`, so a test can drive it with any transport.

A lookup is named by its *key*: a string that encodes every input that changes the
answer (for TCPA Authority the number and the consent date). Two rows with the same
key get the same answer, so the key is what the ledger files answers under and
what dedupe compares; the provider decodes its own keys when it builds a request.
"""

from __future__ import annotations

import hashlib
import posixpath
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, TypedDict
from urllib.parse import urlsplit

import polars as pl

if TYPE_CHECKING:  # a provider builds requests and reads responses; it never sends
    import httpx

_DEFAULT_PORTS = {"http": 80, "https": 443}


def answer_scope(base_url: str, api_key: str) -> str:
    """Where and as whom answers are bought: ``base_url`` normalized (scheme and host
    lower case, no default port, no trailing or doubled slash) and a fingerprint of the
    key. The fingerprint is a salted SHA-256 cut to 64 bits: stable, so the cache
    works across runs, and not the key, which never reaches the ledger."""
    parts = urlsplit(base_url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # IPv6
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{parts.port}"
    path = posixpath.normpath("/" + parts.path).strip("/")  # no ., .., // or trailing /
    endpoint = f"{scheme}://{host}/{path}" + (f"?{parts.query}" if parts.query else "")
    account = hashlib.sha256(b"phone-enrich/account/v1\0" + api_key.encode()).hexdigest()[:16]
    return f"{endpoint} account={account}"


class LookupExprs(NamedTuple):
    """What a provider asks of each row, as expressions over a normalized batch.

    The provider says *what* to compute; the lookup stage decides what to call the columns
    it computes them into, so no provider knows the pipeline's internal column names.
    """

    key: pl.Expr
    """The row's lookup key (null: the row asks nothing, ``not_requested``)."""
    refused: pl.Expr | None = None
    """Why the row is ``invalid_input`` before any call (null, or None: not refused)."""
    carry: pl.Expr | None = None
    """What a request carries besides the key, taken from the first row that asks
    (phone enrichment's ``record_id``). It is not part of the lookup's identity: rows
    with the same key share one answer whatever they carry."""


@dataclass(frozen=True)
class Reply:
    """What one answered request gave back, by column: one entry per key asked, in the
    order asked (a response can carry a thousand answers; no object per answer)."""

    statuses: list[str]
    """``hit``, ``no_match`` or ``invalid_input`` per key."""
    answers: list[dict[str, Any] | str | None]
    """As the provider sent it (a dict, or already encoded as JSON text);
    :attr:`Provider.sources` says which field is which column."""
    credits: list[int]
    """What each key cost, as the provider reports it or the config prices it."""
    errors: list[str | None] | None = None

    @classmethod
    def single(
        cls,
        status: str,
        answer: dict[str, Any] | str | None,
        credits: int,
        error: str | None = None,
    ) -> Reply:
        """The reply of a provider that answers one key per request."""
        return cls([status], [answer], [credits], [error])

    def error_list(self) -> list[str | None]:
        return self.errors if self.errors is not None else [None] * len(self.statuses)


class Conversion(NamedTuple):
    """How an answer field the store keeps in one type becomes its column's type (the
    ``"true"`` / ``"false"`` text a provider sends, as a Boolean)."""

    stored: pl.DataType
    """The field's type in the stored answer (JSON)."""
    convert: Callable[[pl.Expr], pl.Expr]
    """The stored value -> the column's value (of its :attr:`Provider.fields` type)."""


class PacerOptions(TypedDict, total=False):
    """What a provider may tune in its lane's pacer (see :class:`~pipeline.engine.pacer.Pacer`)."""

    window_s: float
    headroom: float
    decrease: float
    increase: float
    floor: float
    pause_s: float
    pause_cap_s: float


class Provider(ABC):
    """One provider API, mapped to and from HTTP."""

    name: ClassVar[str]
    """Config section and ledger name, e.g. ``tcpa_authority``."""
    prefix: ClassVar[str]
    """Output column prefix, e.g. ``tcpa``."""
    fields: ClassVar[dict[str, pl.DataType]]
    """Output columns (without the prefix) filled from an answer, and their types."""
    sources: ClassVar[dict[str, str]] = {}
    """Output column (without the prefix) -> the answer field it comes from, where the
    names differ (``is_reassigned`` <- ``IsReassigned``)."""

    batch_size: int = 1
    """Keys per request; more than one only for providers that take batches."""
    appends_phone: ClassVar[str | None] = None
    """For a provider that finds phones (the cascade): the field (a :attr:`fields` name)
    holding the E.164 phone it found. Such a provider runs first; a valid phone it
    finds becomes the row's phone for the providers after it."""
    scope: str = ""
    """Where and as whom answers are bought: the normalized ``base_url`` and a
    fingerprint of the API key (:func:`answer_scope`), set by ``build_providers``."""

    @abstractmethod
    def options(self) -> str:
        """The settings that change answers (sandbox, options), as a stable string."""

    def params(self) -> str:
        """What answers are filed under besides the key: the options, the endpoint and
        the account (:attr:`scope`).

        Answers are filed under (provider, params, key): a lookup made with other
        params is a different lookup and is never reused for this one. So an
        emulator's or a sandbox's answers never serve a production run, nor one
        account's answers another's.
        """
        return f"{self.options()}@{self.scope}"

    @abstractmethod
    def lookups(self, frame: pl.LazyFrame) -> LookupExprs:
        """The lookup of each row of a normalized batch (``frame`` is given for its
        schema: which columns the input has).

        Rows with a null key and a null reason are not sent (``not_requested``);
        rows with a reason are ``invalid_input`` without a call.
        """

    @abstractmethod
    def request(
        self, keys: Sequence[str], request_id: str, carry: Sequence[str | None] = ()
    ) -> httpx.Request:
        """The HTTP request that looks ``keys`` up (at most :attr:`batch_size`); ``carry``
        has each key's :attr:`LookupExprs.carry` value, for a provider that has one."""

    @abstractmethod
    def parse(self, response: httpx.Response, keys: Sequence[str]) -> Reply:
        """Results for ``keys`` (in that order) from ``response``, or raise a classified
        error."""

    def max_credits_per_key(self) -> int:
        """The most one key can cost (what the budget reserves before sending it)."""
        return 1

    def pacer_options(self) -> PacerOptions:
        """Keyword arguments for this lane's :class:`~pipeline.engine.pacer.Pacer` (e.g. a
        gentler backoff for a provider that hides its limit)."""
        return {}

    def derived(self, key: pl.Expr) -> dict[str, pl.Expr]:
        """Answer columns computed from the lookup ``key`` rather than the answer."""
        return {}

    def conversions(self) -> dict[str, Conversion]:
        """Columns (:attr:`fields` names) whose answer field the store keeps in another
        type. Converted when the columns are made, not when the answer is stored, so
        answers stored by an earlier version read the same."""
        return {}

    def answer_columns(self) -> dict[str, pl.DataType]:
        """The output columns this provider adds after its status columns."""
        return {f"{self.prefix}_{name}": dtype for name, dtype in self.fields.items()}
