"""What every emulated provider shares: knobs, the provider-app interface, and the
per-provider state (rolling-window limiter, keys and credit balances, queued and
random faults, the credit ledger and the request log).

One lock per provider guards its state; nobody sleeps while holding it. API keys
never leave this module raw: everything reported is labelled ``key:`` + the first
8 hex digits of the key's SHA-256.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
import threading
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

_SKEW_S = 1.0
"""How far out of arrival order handler threads may admit requests: entries are kept
that long past the window."""

Fault = int | str
"""A queued fault: an HTTP status (500, 503, 429, 401, ...), ``"timeout"`` or ``"malformed"``."""
FAULT_WORDS = ("timeout", "malformed")
REQUEST_LOG_LIMIT = 100_000
"""The request log keeps the newest entries only; totals always count everything."""
NO_RESPONSE = "no_response"
"""``by_status`` key of requests answered by closing the connection (timeout faults)."""


@dataclass
class ProviderKnobs:
    """How one emulated provider behaves. Mutable: change it through ``set_knobs``."""

    latency_ms: float = 569.0
    latency_jitter_ms: float = 0.0
    rate_limit: int | None = 100
    rate_window_s: float = 60.0
    retry_after_header: bool | None = None
    """Whether a 429 carries Retry-After; None: as the provider documents (TDG: no)."""
    fail_5xx: float = 0.0
    fail_429: float = 0.0
    timeouts: float = 0.0
    malformed: float = 0.0
    hang_s: float = 30.0
    seed: int = 0
    keys: dict[str, int | None] = field(default_factory=lambda: {"emulator-key": None})
    unauthorised_keys: set[str] = field(default_factory=set)
    credits_per_number: int = 1


KNOB_NAMES = frozenset(f.name for f in fields(ProviderKnobs))


def _arrival(entry: dict[str, Any]) -> float:
    return float(entry["arrived_mono"])


def key_label(key: str) -> str:
    """How a key appears in anything reported: never the key itself."""
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:8]


def check_fault(fault: object) -> Fault:
    if isinstance(fault, int) and not isinstance(fault, bool) and 400 <= fault <= 599:
        return fault
    if isinstance(fault, str) and fault in FAULT_WORDS:
        return fault
    raise ValueError(f"fault {fault!r}: expected an HTTP status 400-599, 'timeout' or 'malformed'")


def coerce_knobs(values: dict[str, Any]) -> dict[str, Any]:
    """Check knob names and turn JSON-ish values (key lists) into knob values."""
    unknown = sorted(set(values) - KNOB_NAMES)
    if unknown:
        raise ValueError(f"unknown knob(s) {unknown}; known: {sorted(KNOB_NAMES)}")
    out = dict(values)
    keys = out.get("keys")
    if isinstance(keys, list | tuple | set):
        out["keys"] = {str(k): None for k in keys}
    elif keys is not None and not isinstance(keys, dict):
        raise ValueError("keys: expected a list of keys or an object of key -> balance")
    banned = out.get("unauthorised_keys")
    if banned is not None:
        out["unauthorised_keys"] = {banned} if isinstance(banned, str) else {str(k) for k in banned}
    return out


# ---------------------------------------------------------------------------- app interface


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    """The path after the provider's prefix and base path, e.g. ``/Data/TCPAAuthority``."""
    query: dict[str, str]
    headers: dict[str, str]
    """Header names lower-cased."""
    body: bytes


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"


@dataclass(slots=True)
class Prepared:
    """What an app made of a request before anything is decided."""

    numbers: int = 0
    """Lookups in the request (what a per-number price multiplies)."""
    sandbox: bool = False
    error: Response | None = None
    """The validation answer (400, 404, ...): sent only after auth and faults."""
    payload: Any = None
    """Whatever the app parsed, for :meth:`ProviderApp.respond`."""


class ProviderApp(ABC):
    """One provider's HTTP surface. The server does limits, auth, faults and the ledger."""

    name: ClassVar[str]
    """Registry name and URL prefix, e.g. ``tcpa_authority``."""
    base_path: ClassVar[str] = ""
    """Part of the client's base URL after the prefix, e.g. ``/v1.5``."""
    key_header: ClassVar[str]
    """Header carrying the API key (lower case), e.g. ``loginid`` or ``authorization``."""
    key_scheme: ClassVar[str] = ""
    """Prefix in front of the key in that header, e.g. ``Bearer ``."""
    retry_after: ClassVar[bool] = True
    """Whether its 429s carry a Retry-After header (unless the knob says otherwise)."""

    @abstractmethod
    def prepare(self, request: Request) -> Prepared:
        """Parse and validate; never raises for bad input (put it in ``error``)."""

    @abstractmethod
    def respond(self, prepared: Prepared) -> Response:
        """The success answer for a valid request."""

    @abstractmethod
    def error(self, status: int, message: str) -> Response:
        """An error answer in the provider's own shape."""

    def cost(self, prepared: Prepared, knobs: ProviderKnobs) -> int:
        """Credits the request will cost at most (checked against the balance first)."""
        return 0 if prepared.sandbox else prepared.numbers * knobs.credits_per_number

    def charge(self, prepared: Prepared, response: Response, knobs: ProviderKnobs) -> int:
        """Credits actually charged for a success answer (at most :meth:`cost`)."""
        return self.cost(prepared, knobs)

    def api_key(self, headers: dict[str, str]) -> str | None:
        value = headers.get(self.key_header)
        if value is None or not value.startswith(self.key_scheme):
            return None
        return value[len(self.key_scheme) :].strip() or None


# ---------------------------------------------------------------------------- shared state


class ProviderState:
    """Everything mutable about one emulated provider, behind one lock."""

    def __init__(self, knobs: ProviderKnobs) -> None:
        self.lock = threading.Lock()
        self.knobs = knobs
        self._labels: dict[str, str] = {}
        self.reset()

    def reset(self) -> None:
        """Forget requests, windows, ledgers and queued faults; restore balances and seeds."""
        with self.lock:
            self._window: deque[float] = deque()
            """Arrivals of accepted requests, sorted."""
            self._faults: deque[Fault] = deque()
            self._log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_LIMIT)
            self._charged: dict[str, int] = {}
            self._balances = dict(self.knobs.keys)
            self._rng = random.Random(self.knobs.seed)
            self._jitter = random.Random(self.knobs.seed + 1)
            self._totals: dict[str, Any] = {
                "requests": 0,
                "accepted": 0,
                "numbers_charged": 0,
                "credits": 0,
                "by_status": {},
                "max_in_window": 0,
            }

    def set_knobs(self, **values: Any) -> None:
        values = coerce_knobs(values)
        with self.lock:
            for name, value in values.items():
                setattr(self.knobs, name, value)
            if "keys" in values:
                self._balances = dict(self.knobs.keys)
            if "seed" in values:
                self._rng = random.Random(self.knobs.seed)
                self._jitter = random.Random(self.knobs.seed + 1)

    def queue_faults(self, faults: list[Fault]) -> None:
        checked = [check_fault(f) for f in faults]
        with self.lock:
            self._faults.extend(checked)

    def label(self, key: str) -> str:
        label = self._labels.get(key)
        if label is None:
            label = self._labels[key] = key_label(key)
        return label

    # Steps of one request, in order -------------------------------------------------------

    def admit(self, now: float) -> int | None:
        """Count the request in the rolling window, or return Retry-After seconds (a 429).

        ``now`` is the request's arrival; handler threads may get here out of arrival
        order (one still reading its body), so the window is kept sorted and a request
        counts only the accepted ones that arrived in the window before it: a later
        arrival admitted first is not held against an earlier one.
        """
        with self.lock:
            knobs, window = self.knobs, self._window
            start = now - knobs.rate_window_s
            while window and window[0] <= start - _SKEW_S:  # no arrival still to come needs it
                window.popleft()
            first, last = bisect.bisect_right(window, start), bisect.bisect_right(window, now)
            counted = last - first
            limit = knobs.rate_limit
            if limit is not None and counted >= limit:
                oldest = window[last - limit] if limit > 0 else now  # 0: refuse all
                return max(1, math.ceil(oldest + knobs.rate_window_s - now))
            window.insert(last, now)
            self._totals["accepted"] += 1
            self._totals["max_in_window"] = max(self._totals["max_in_window"], counted + 1)
            return None

    def reserve(self, key: str | None, cost: int) -> tuple[int, str] | None:
        """Check the key and hold ``cost`` credits; a denial is (status, message)."""
        with self.lock:
            if key is None or key not in self._balances:
                return 401, "missing or unknown API key"
            if key in self.knobs.unauthorised_keys:
                return 403, "this account is not authorised for this API"
            balance = self._balances[key]
            if balance is not None:
                if balance < cost:
                    return 403, f"insufficient credits: {cost} needed, {balance} left"
                self._balances[key] = balance - cost
            return None

    def settle(self, key: str, reserved: int, charged: int) -> None:
        """Give back what was held but not charged; book what was charged."""
        with self.lock:
            balance = self._balances.get(key)
            if balance is not None and reserved != charged:
                self._balances[key] = balance + reserved - charged
            if charged:
                label = self.label(key)
                self._charged[label] = self._charged.get(label, 0) + charged

    def next_fault(self) -> Fault | None:
        """The next queued fault, else a random one drawn from the knobs, else None."""
        with self.lock:
            if self._faults:
                return self._faults.popleft()
            knobs = self.knobs
            if not (knobs.fail_5xx or knobs.fail_429 or knobs.timeouts or knobs.malformed):
                return None
            draw = self._rng.random()
            for fault, p in (
                (503, knobs.fail_5xx),
                (429, knobs.fail_429),
                ("timeout", knobs.timeouts),
                ("malformed", knobs.malformed),
            ):
                if draw < p:
                    return self._rng.choice((500, 502, 503)) if fault == 503 else fault
                draw -= p
            return None

    def delay_s(self) -> float:
        """This response's latency in seconds (latency_ms ± uniform jitter)."""
        with self.lock:
            knobs = self.knobs
            jitter = knobs.latency_jitter_ms
            ms = knobs.latency_ms + (self._jitter.uniform(-jitter, jitter) if jitter else 0.0)
        return max(0.0, ms / 1000.0)

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self._log.append(entry)
            totals = self._totals
            totals["requests"] += 1
            status = NO_RESPONSE if entry["status"] is None else str(entry["status"])
            totals["by_status"][status] = totals["by_status"].get(status, 0) + 1
            if entry["credits"]:
                totals["credits"] += entry["credits"]
                totals["numbers_charged"] += entry["numbers"]

    # Reporting ------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The admin view: knobs (keys labelled), balances, log (finished requests, in
        arrival order), ledger, totals."""
        with self.lock:
            knobs = self.knobs
            shown: dict[str, Any] = {name: getattr(knobs, name) for name in sorted(KNOB_NAMES)}
            shown["keys"] = {self.label(k): v for k, v in knobs.keys.items()}
            shown["unauthorised_keys"] = sorted(self.label(k) for k in knobs.unauthorised_keys)
            return {
                "knobs": shown,
                "balances": {self.label(k): v for k, v in self._balances.items()},
                "queued_faults": list(self._faults),
                "requests": sorted((dict(e) for e in self._log), key=_arrival),
                "charged": dict(self._charged),
                "totals": {**self._totals, "by_status": dict(self._totals["by_status"])},
            }
