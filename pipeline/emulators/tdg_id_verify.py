"""Emulated TDG ID verify (``POST /v2/verify/id``, header ``x-api-key``).

Body ``{"FName", "LName", "Address1", "Zip", "Phone", "Email"}``: strings or null
(trimmed; blank is missing). A 400 "Missing required parameter(s)", free of charge,
for: a body that is not a JSON object, a field that is not a string, fewer than two
fields present, LName over 20 characters, Address1 over 64, Email over 100 or without
an ``@``, a Zip that is not 5 digits, a Phone that reverse phone would refuse (not 10
digits, not NANP-shaped, fictional 555-01XX).

The answer is a pure function of the fields (BLAKE2b of the trimmed, lower-cased
values, never Python's ``hash``): about 5% answer 204 (no record); the rest 200
``{"IDScores": {...}}`` with every documented score as a string. A score about a
field, or a pair of fields, that was not sent is ``""``; the Phone2 scores are always
``""``. Emails at the reserved example domains never verify. ``ValidCount`` is the
sum of the Valid* scores / 100, cut to one decimal (the documented sample's 85 + 100
gives ``"1.8"``); ``LinkageCount`` counts the linkages at 100; ``RiskFlagCount`` is 1
for a deceased name (``Deceased: "0"``). Summaries: validation PASS from a count of
2, linkage PASS from 1, risk PASS at 0.

Price: ``credits_per_number`` (1) per 200; 204 costs nothing. Errors, keys and
faults as for reverse phone (``{"message"}``, a refused key is 401).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pipeline.emulators.hashing import blake64
from pipeline.emulators.nanp import CANADIAN_AREA_CODES
from pipeline.emulators.state import Prepared, ProviderApp, ProviderKnobs, Request, Response
from pipeline.emulators.tdg_common import MISSING, gateway_error, json_body, phone_problem

PATH = "/v2/verify/id"
FIELDS = ("FName", "LName", "Address1", "Zip", "Phone", "Email")
MAX_LENGTH = {"LName": 20, "Address1": 64, "Email": 100}
NO_RECORD_PERCENT = 5
NO_CONTACT_DOMAINS = frozenset({"example.com", "example.org", "example.net"})
# (score, the fields it needs, percent of 100s, what it is otherwise)
_VALID: tuple[tuple[str, tuple[str, ...], int, str], ...] = (
    ("ValidAddress", ("Address1",), 70, "85"),
    ("ValidPhone", ("Phone",), 85, "0"),
    ("ValidEmail", ("Email",), 75, "0"),
    ("ValidName", ("Name",), 85, "50"),
    ("ValidZip", ("Zip",), 90, "0"),
)
_LINKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("NameToPhone", ("Name", "Phone")),
    ("NameToEmail", ("Name", "Email")),
    ("NameToAddress", ("Name", "Address1")),
    ("AddressToPhone", ("Address1", "Phone")),
    ("AddressToEmail", ("Address1", "Email")),
    ("PhoneToEmail", ("Phone", "Email")),
    ("ZipToPhone", ("Zip", "Phone")),
)
_PHONE2 = ("ValidPhone2", "NameToPhone2", "AddressToPhone2", "Phone2ToEmail")
ORDER = (
    "ValidAddress", "ValidPhone", "ValidEmail", "ValidName", "ValidZip", "Deceased",
    "NameToPhone", "NameToEmail", "NameToAddress", "AddressToPhone", "AddressToEmail",
    "PhoneToEmail", "ZipToPhone", "USLocation", *_PHONE2, "PhoneConfidenceScore",
    "Phone2ConfidenceScore", "AddressConfidenceScore", "ValidCount", "LinkageCount",
    "RiskFlagCount", "ValidationSummary", "LinkageSummary", "RiskFlagSummary", "IDVerifyScore",
)  # fmt: skip
"""The scores in the order TDG's documented sample lists them."""


def problem(fields: dict[str, str | None]) -> str | None:
    """Why TDG refuses these (trimmed, blank-as-null) fields, or None."""
    present = [name for name in FIELDS if fields.get(name)]
    if len(present) < 2:
        return f"{MISSING}: at least two of {', '.join(FIELDS)}"
    for name, limit in MAX_LENGTH.items():
        value = fields.get(name)
        if value and len(value) > limit:
            return f"{MISSING}: {name} is longer than {limit} characters"
    email = fields.get("Email")
    if email and "@" not in email:
        return f"{MISSING}: Email is not an email address"
    zip_code = fields.get("Zip")
    if zip_code and not (len(zip_code) == 5 and zip_code.isascii() and zip_code.isdigit()):
        return f"{MISSING}: Zip must be a 5 digit numeric USPS zip code"
    phone = fields.get("Phone")
    return phone_problem(phone) if phone else None


def found(fields: dict[str, str | None]) -> bool:
    """Whether TDG has any record for these fields (False: a 204)."""
    return blake64("found:" + _canonical(fields)) % 100 >= NO_RECORD_PERCENT


def scores(fields: dict[str, str | None]) -> dict[str, str]:
    """The ``IDScores`` for fields that :func:`problem` accepts."""
    h = blake64("scores:" + _canonical(fields))
    have = {name for name in FIELDS if fields.get(name)}
    if have & {"FName", "LName"}:
        have.add("Name")
    email = fields.get("Email") or ""
    fictional = email.rsplit("@", 1)[-1].lower() in NO_CONTACT_DOMAINS
    out: dict[str, str] = {}
    valid_sum = 0
    for bit, (score, needs, percent, otherwise) in enumerate(_VALID):
        if not set(needs) <= have:
            out[score] = ""
            continue
        good = (h >> (4 * bit)) % 100 < percent and not (score == "ValidEmail" and fictional)
        out[score] = "100" if good else otherwise
        valid_sum += int(out[score])
    alive = "Name" not in have or (h >> 24) % 100 >= 2
    out["Deceased"] = "" if "Name" not in have else "100" if alive else "0"
    links = 0
    for bit, (score, pair) in enumerate(_LINKS):
        if not set(pair) <= have:
            out[score] = ""
            continue
        linked = (h >> (28 + 3 * bit)) % 100 < 60 and not (fictional and "Email" in pair)
        out[score] = "100" if linked else "0"
        links += linked
    phone = fields.get("Phone")
    out["USLocation"] = "" if not phone else "N" if phone[:3] in CANADIAN_AREA_CODES else "Y"
    for score in _PHONE2:
        out[score] = ""
    out["PhoneConfidenceScore"] = str((h >> 52) % 101) if phone else ""
    out["Phone2ConfidenceScore"] = ""
    address_score = blake64("address:" + _canonical(fields)) % 101
    out["AddressConfidenceScore"] = str(address_score) if "Address1" in have else ""
    risks = int(out["Deceased"] == "0")
    valid_count = valid_sum // 10 / 10
    out["ValidCount"] = f"{valid_count:g}"
    out["LinkageCount"] = str(links)
    out["RiskFlagCount"] = str(risks)
    out["ValidationSummary"] = "PASS" if valid_count >= 2 else "FAIL"
    out["LinkageSummary"] = "PASS" if links >= 1 else "FAIL"
    out["RiskFlagSummary"] = "PASS" if risks == 0 else "FAIL"
    out["IDVerifyScore"] = str(min(100, int(valid_count * 20) + 10 * links) if not risks else 0)
    return {score: out[score] for score in ORDER}


def _canonical(fields: dict[str, str | None]) -> str:
    return "|".join((fields.get(name) or "").lower() for name in FIELDS)


class TdgIdVerifyApp(ProviderApp):
    name: ClassVar[str] = "tdg_id_verify"
    key_header: ClassVar[str] = "x-api-key"
    retry_after: ClassVar[bool] = False  # TDG documents its 429 without one

    def error(self, status: int, message: str) -> Response:
        return gateway_error(status, message)

    def prepare(self, request: Request) -> Prepared:
        if request.path != PATH:
            return Prepared(error=self.error(404, f"no such resource: {request.path}"))
        body = json_body(request)
        if isinstance(body, str):
            status = 405 if body.startswith("method") else 400
            return Prepared(numbers=1, error=self.error(status, body))
        fields: dict[str, str | None] = {}
        for name in FIELDS:
            value = body.get(name)
            if value is not None and not isinstance(value, str):
                return Prepared(numbers=1, error=self.error(400, f"{name} must be a string"))
            fields[name] = (value.strip() or None) if isinstance(value, str) else None
        refused = problem(fields)
        if refused is not None:
            return Prepared(numbers=1, error=self.error(400, refused))
        return Prepared(numbers=1, payload=fields)

    def respond(self, prepared: Prepared) -> Response:
        fields: dict[str, str | None] = prepared.payload
        if not found(fields):
            return Response(204, b"")
        answer: dict[str, Any] = {"IDScores": scores(fields)}
        return Response(200, json.dumps(answer).encode())

    def cost(self, prepared: Prepared, knobs: ProviderKnobs) -> int:
        return 0 if prepared.error is not None else knobs.credits_per_number

    def charge(self, prepared: Prepared, response: Response, knobs: ProviderKnobs) -> int:
        """Only a verification answered with scores is charged."""
        return self.cost(prepared, knobs) if response.status == 200 else 0
