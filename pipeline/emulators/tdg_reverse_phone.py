"""Emulated TDG reverse phone append (``POST /v3/lookup/phone``, header ``x-api-key``).

Body ``{"Phone": "2125550123"}``. Rules, as the emulator applies them:

* ``Phone`` is a string of exactly 10 ASCII digits (TDG asks for no spaces, dashes
  or parentheses), NANP-shaped (area code and exchange start 2-9) and not in the
  range reserved for fiction (exchange 555, line 0100-0199), as at the other
  emulators. Anything else, a body that is not a JSON object, or a missing
  ``Phone`` is a 400 "Missing required parameter(s)", free of charge.
* The answer is a pure function of the number (BLAKE2b, never Python's ``hash``):
  Canadian area codes are never found (TDG's data is US); of the rest about 68%
  answer 200 with a name and an address in the area code's state, 27% 204 (no
  record, empty body) and 5% 440 "too many results". ``trace`` is a fresh UUID per
  request, as TDG's request id is.
* Price: ``credits_per_number`` (1) for a 200; 204 and 440 cost nothing.
* Errors are ``{"message": "..."}`` (TDG runs behind an API gateway that answers
  so): 401 for a missing or unknown key, and for a key the knobs mark unauthorised
  or out of credits (TDG documents no 403); 429 and 5xx from the limiter and faults.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from typing import Any, ClassVar

from pipeline.emulators.hashing import blake64
from pipeline.emulators.nanp import CANADIAN_AREA_CODES
from pipeline.emulators.state import Prepared, ProviderApp, ProviderKnobs, Request, Response
from pipeline.emulators.tdg_common import gateway_error, json_body, phone_problem

PATH = "/v3/lookup/phone"
HIT_PERCENT, NO_RECORD_PERCENT = 68, 27
"""Of US numbers: 200 below 68, 204 below 68 + 27, else 440."""

_FIRST = ("Tom", "Maria", "James", "Aisha", "Wei", "Olivia", "Carlos", "Priya", "Noah", "Emma")
_MIDDLE = ("", "", "A", "J", "Lee", "M", "R")
_LAST = ("Smith", "Garcia", "Nguyen", "Johnson", "O'Brien", "Patel", "Kim", "Brown", "Lopez")
_STREETS = ("Main", "Oak", "Maple", "Washington", "Lake", "Hill", "Park", "Cedar", "Elm")
_STREET_TYPES = ("St", "Ave", "Rd", "Dr", "Ln", "Blvd", "Ct")
_DIRECTIONS = ("", "", "", "", "N", "S", "E", "W")
# area code -> (city, state, zip prefix, county); others pick one by area code.
_PLACES: dict[str, tuple[str, str, str, str]] = {
    "202": ("Washington", "DC", "200", "District of Columbia"),
    "206": ("Seattle", "WA", "981", "King"),
    "212": ("New York", "NY", "100", "New York"),
    "213": ("Los Angeles", "CA", "900", "Los Angeles"),
    "303": ("Denver", "CO", "802", "Denver"),
    "305": ("Miami", "FL", "331", "Miami-Dade"),
    "312": ("Chicago", "IL", "606", "Cook"),
    "404": ("Atlanta", "GA", "303", "Fulton"),
    "407": ("Orlando", "FL", "328", "Orange"),
    "415": ("San Francisco", "CA", "941", "San Francisco"),
    "602": ("Phoenix", "AZ", "850", "Maricopa"),
    "617": ("Boston", "MA", "021", "Suffolk"),
    "713": ("Houston", "TX", "770", "Harris"),
}
_FALLBACK = tuple(_PLACES.values())
_VALIDATED_FROM = date(2023, 1, 1)


def outcome(number: str) -> int:
    """The status the emulator answers for a valid number: 200, 204 or 440."""
    if number[:3] in CANADIAN_AREA_CODES:
        return 204
    pick = blake64(f"outcome:{number}") % 100
    return 200 if pick < HIT_PERCENT else 204 if pick < HIT_PERCENT + NO_RECORD_PERCENT else 440


def record(number: str) -> dict[str, Any]:
    """The ``Name`` and ``Address`` TDG has on a number that answers 200."""
    h = blake64(f"record:{number}")
    city, state, zip3, county = (
        _PLACES.get(number[:3]) or _FALLBACK[int(number[:3]) % len(_FALLBACK)]
    )
    apartment = (h >> 40) % 5 == 0
    validated = _VALIDATED_FROM + timedelta(days=(h >> 44) % 900)
    return {
        "Name": {
            "LName": _LAST[(h >> 4) % len(_LAST)],
            "FName": _FIRST[(h >> 8) % len(_FIRST)],
            "MName": _MIDDLE[(h >> 12) % len(_MIDDLE)],
        },
        "Address": {
            "House": str(1 + (h >> 16) % 9899),
            "PreDir": _DIRECTIONS[(h >> 20) % len(_DIRECTIONS)],
            "Street": _STREETS[(h >> 24) % len(_STREETS)],
            "StrType": _STREET_TYPES[(h >> 28) % len(_STREET_TYPES)],
            "PostDir": "",
            "AptType": "Apt" if apartment else None,
            "City": city,
            "State": state,
            "Zip": f"{zip3}{(h >> 32) % 100:02d}",
            "Z4": f"{(h >> 48) % 10000:04d}" if (h >> 36) % 3 else "",
            "CNTY": county,
            "Deliverable": (h >> 38) % 100 < 88,
            "ValDate": f"{validated.month}/{validated.day}/{validated.year}",
        },
    }


class TdgReversePhoneApp(ProviderApp):
    name: ClassVar[str] = "tdg_reverse_phone"
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
        problem = phone_problem(body.get("Phone"))
        if problem is not None:
            return Prepared(numbers=1, error=self.error(400, problem))
        return Prepared(numbers=1, payload=body["Phone"])

    def respond(self, prepared: Prepared) -> Response:
        number = prepared.payload
        assert isinstance(number, str)
        status = outcome(number)
        if status == 204:
            return Response(204, b"")
        if status == 440:
            return self.error(440, "Too many results. Please refine your search criteria")
        answer = {**record(number), "trace": str(uuid.uuid4())}
        return Response(200, json.dumps(answer).encode())

    def cost(self, prepared: Prepared, knobs: ProviderKnobs) -> int:
        return 0 if prepared.error is not None else knobs.credits_per_number

    def charge(self, prepared: Prepared, response: Response, knobs: ProviderKnobs) -> int:
        """Only a found record is charged."""
        return self.cost(prepared, knobs) if response.status == 200 else 0
