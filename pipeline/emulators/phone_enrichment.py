"""Emulated phone enrichment API (``POST /v1/enrich/phone``, ``Authorization: Bearer``).

One record per request: ``{"record_id", "first_name", "last_name", "company",
"email", "linkedin_id", "domain"}``. ``record_id`` is a required non-blank string;
the other fields are strings or null (trimmed; blank is missing), and the record
must hold at least one lookup method: first_name + last_name + (company or domain),
or linkedin_id, or email. Anything else is a FastAPI-style 422
``{"detail": [{"type", "loc", "msg", "input"}]}``, free of charge.

The answer is ``{"success": true, "record_id", "first_name", "last_name",
"company", "email", "linkedin_id", "phone", "processing_time_ms"}``; see
:func:`lookup`. It is a pure function of the contact fields (never of
``record_id``): the methods are tried in the documented order (name + company or
domain, then LinkedIn, then email), each finding a phone for about 65 / 55 / 40 %
of inputs, by a BLAKE2b hash of its trimmed, lower-cased inputs. Found phones are
valid NANP numbers in E.164 (real US and Canadian area codes, exchanges 200-999
but never 555 or N11). Contacts at the reserved example domains (``example.com``,
``.org``, ``.net``) are never found. A hit may also find the email or LinkedIn id
the record lacked. A found phone costs ``credits_per_number`` (knob, 1 by
default); no phone costs nothing.

Errors other than 422 use the API's envelope ``{"success": false, "error",
"details", "request_id", "credits_required", "credits_remaining",
"retry_after"}``: 401 unknown key, 403 account not authorised, **402 insufficient
credits** (``credits_required`` > ``credits_remaining``; the shared server asks
for 403, the app answers 402 Payment Required so a client can tell it from a
refused account), 429 with ``retry_after`` = :data:`RETRY_AFTER_S` in the body
(the server also stamps a ``Retry-After`` header: the limiter's exact wait, or 1
for a queued fault; a client should honour the longer), 5xx faults.
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from typing import Any, ClassVar

from pipeline.emulators.hashing import blake64
from pipeline.emulators.state import Prepared, ProviderApp, ProviderKnobs, Request, Response

PATH = "/v1/enrich/phone"
FIELDS = ("first_name", "last_name", "company", "email", "linkedin_id", "domain")
RETRY_AFTER_S = 2
"""``retry_after`` in a 429 body: longer than the 1 s the server's fault header says,
so a test can tell which one a client honoured."""
HIT_PERCENT = {"name": 65, "linkedin": 55, "email": 40}
NO_CONTACT_DOMAINS = frozenset({"example.com", "example.org", "example.net"})
AREA_CODES = (
    "212", "646", "718", "917", "415", "510", "650", "617", "781", "312", "773", "213",
    "310", "206", "303", "404", "512", "305", "702", "713", "503", "202", "416", "604",
    "514", "403",
)  # fmt: skip
COMBINATIONS = (
    "Must provide at least one of: first_name + last_name + company (or domain), "
    "linkedin_id, or email"
)
_INSUFFICIENT = re.compile(r"insufficient credits: (\d+) needed, (-?\d+) left")


def _slug(text: str, keep: str = "") -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in ascii_text.lower() if c.isalnum() or c in keep)


def phone_for(h: int) -> str:
    """A valid NANP number in E.164 from a hash."""
    area = AREA_CODES[h % len(AREA_CODES)]
    exchange = 200 + (h >> 8) % 800
    if exchange == 555 or exchange % 100 == 11:
        exchange += 1
    line = (h >> 20) % 10_000
    return f"+1{area}{exchange:03d}{line:04d}"


def _host(domain: str) -> str:
    """A domain as a mail host: ``https://www.Acme.com/about`` -> ``acme.com``."""
    host = domain.strip().lower().split("://", 1)[-1].split("/", 1)[0]
    host = host.removeprefix("www.")
    return ".".join(part for part in (_slug(p, "-") for p in host.split(".")) if part)


def _email_for(first: str, last: str, domain: str | None, company: str | None) -> str | None:
    """The work address a hit may find: ``first.last@`` the domain, else company + .com;
    None when the name or the host has nothing left in ASCII."""
    host = _host(domain) if domain else ""
    if "." not in host:
        host = (_slug(company or "") + ".com") if company and _slug(company) else ""
    local = f"{_slug(first)}.{_slug(last)}"
    return (
        f"{local}@{host}"
        if host and not local.startswith(".") and not local.endswith(".")
        else None
    )


def _domain_of(fields: dict[str, str | None]) -> str | None:
    email = fields.get("email")
    return email.rsplit("@", 1)[-1].lower() if email and "@" in email else None


def lookup_methods(fields: dict[str, str | None]) -> list[tuple[str, str]]:
    """The documented lookup methods a record's fields allow, in priority order, each
    with the text its answer is a function of."""
    first, last = fields.get("first_name"), fields.get("last_name")
    company, domain = fields.get("company"), fields.get("domain")
    methods: list[tuple[str, str]] = []
    if first and last and (company or domain):
        methods.append(("name", f"{first}|{last}|{company or ''}|{domain or ''}"))
    for method, name in (("linkedin", "linkedin_id"), ("email", "email")):
        value = fields.get(name)
        if value:
            methods.append((method, value))
    return methods


def lookup(fields: dict[str, str | None]) -> dict[str, Any]:
    """What the API finds for a record's (trimmed, blank-as-null) contact fields:
    ``phone`` (or None), ``email``, ``linkedin_id`` and ``processing_time_ms``."""
    first, last = fields.get("first_name"), fields.get("last_name")
    company, domain = fields.get("company"), fields.get("domain")
    email, linkedin = fields.get("email"), fields.get("linkedin_id")
    fictional = {(domain or "").lower(), _domain_of(fields)} & NO_CONTACT_DOMAINS
    phone, found_email, found_linkedin, spent = None, email, linkedin, 0
    for method, text in lookup_methods(fields):
        h = blake64(f"{method}:{text.lower()}")
        spent += 80 + h % 400
        if fictional or (h >> 40) % 100 >= HIT_PERCENT[method]:
            continue
        phone = phone_for(h)
        if found_email is None and first and last and (h >> 48) % 2 == 0:
            found_email = _email_for(first, last, domain, company)
        if found_linkedin is None and (h >> 52) % 2 == 0:
            who = f"{first}-{last}" if first and last else (email or "").split("@")[0]
            found_linkedin = f"{_slug(who, '-')}-{(h >> 16) % 1_000_000:06d}"
        break
    return {
        "phone": phone,
        "email": found_email,
        "linkedin_id": found_linkedin,
        "processing_time_ms": spent,
    }


def _problem(kind: str, loc: list[str | int], msg: str, value: Any) -> dict[str, Any]:
    return {"type": kind, "loc": loc, "msg": msg, "input": value}


class PhoneEnrichmentApp(ProviderApp):
    name: ClassVar[str] = "phone_enrichment"
    base_path: ClassVar[str] = ""
    key_header: ClassVar[str] = "authorization"
    key_scheme: ClassVar[str] = "Bearer "

    def error(self, status: int, message: str) -> Response:
        if status == 422:
            return self._invalid([_problem("value_error", ["body"], message, None)])
        envelope: dict[str, Any] = {
            "success": False,
            "error": message,
            "details": None,
            "request_id": uuid.uuid4().hex,
            "credits_required": None,
            "credits_remaining": None,
            "retry_after": None,
        }
        short = _INSUFFICIENT.fullmatch(message)
        if short is not None:
            status = 402
            envelope["error"] = "insufficient credits"
            envelope["details"] = message
            envelope["credits_required"] = int(short.group(1))
            envelope["credits_remaining"] = int(short.group(2))
        elif status == 429:
            envelope["retry_after"] = RETRY_AFTER_S
        return Response(status, json.dumps(envelope).encode())

    def _invalid(self, problems: list[dict[str, Any]]) -> Response:
        return Response(422, json.dumps({"detail": problems}).encode())

    def prepare(self, request: Request) -> Prepared:
        if request.path != PATH:
            return Prepared(error=Response(404, b'{"detail":"Not Found"}'))
        if request.method != "POST":
            return Prepared(error=Response(405, b'{"detail":"Method Not Allowed"}'))
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            problem = _problem("json_invalid", ["body", 0], "JSON decode error", {})
            problem["ctx"] = {"error": str(exc).split(":")[0]}
            return Prepared(error=self._invalid([problem]))
        if not isinstance(body, dict):
            msg = "Input should be a valid dictionary or object to extract fields from"
            problem = _problem("model_attributes_type", ["body"], msg, body)
            return Prepared(error=self._invalid([problem]))
        problems: list[dict[str, Any]] = []
        record_id = body.get("record_id")
        if record_id is None:
            problems.append(_problem("missing", ["body", "record_id"], "Field required", body))
        elif not isinstance(record_id, str):
            msg = "Input should be a valid string"
            problems.append(_problem("string_type", ["body", "record_id"], msg, record_id))
        elif not record_id.strip():
            msg = "String should have at least 1 character"
            problems.append(_problem("string_too_short", ["body", "record_id"], msg, record_id))
        fields: dict[str, str | None] = {}
        for name in FIELDS:
            value = body.get(name)
            if value is not None and not isinstance(value, str):
                msg = "Input should be a valid string"
                problems.append(_problem("string_type", ["body", name], msg, value))
                continue
            fields[name] = (value.strip() or None) if isinstance(value, str) else None
        if not problems and not lookup_methods(fields):
            msg = f"Value error, {COMBINATIONS}"
            problems.append(_problem("value_error", ["body"], msg, body))
        if problems:
            return Prepared(error=self._invalid(problems))
        return Prepared(numbers=1, payload=(body, fields))

    def respond(self, prepared: Prepared) -> Response:
        body, fields = prepared.payload
        found = lookup(fields)
        answer = {
            "success": True,
            "record_id": body["record_id"],
            "first_name": body.get("first_name"),
            "last_name": body.get("last_name"),
            "company": body.get("company"),
            "email": found["email"],
            "linkedin_id": found["linkedin_id"],
            "phone": found["phone"],
            "processing_time_ms": found["processing_time_ms"],
        }
        return Response(200, json.dumps(answer).encode())

    def cost(self, prepared: Prepared, knobs: ProviderKnobs) -> int:
        """At most one found phone per request; a refused request costs nothing."""
        return 0 if prepared.error is not None else knobs.credits_per_number

    def charge(self, prepared: Prepared, response: Response, knobs: ProviderKnobs) -> int:
        """A found phone is charged; no phone is free."""
        found = json.loads(response.body).get("phone") is not None
        return self.cost(prepared, knobs) if found else 0
