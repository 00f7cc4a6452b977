"""Emulated DNCScrub TCPA Authority (``/v1.5/Data/TCPAAuthority``, header ``loginId``).

GET ``?phoneNumber=&date=[&useSandbox=true]`` answers one JSON object; POST
``{"Data": [{"PhoneNumber", "Date"}, ...], "UseSandbox": false}`` (1 to 1,000
items) answers a JSON array in request order. Any bad item makes the whole request
a 400 ``{"Message": "..."}`` that names the item and what is wrong with it.

Rules, as the emulator applies them:

* ``PhoneNumber`` is a string of exactly 10 ASCII digits, NANP-shaped (area code
  and exchange start with 2-9).
* **Fictional numbers are refused** (400): exchange 555 with line 0100-0199, e.g.
  ``2125550100`` .. ``2125550199`` (the range reserved for fiction).
* ``Date`` is MM/DD/YYYY, YYYY-MM-DD, MM/DD/YY (00-49 is 20xx) or YYYYMMDD, a real
  calendar date, not after today.

Answers are a pure function of (number, consent date, sandbox), from CRC-32 of the
number mixed by a 64-bit multiply (never Python's ``hash``). About 4% of numbers
are invalid (``IsValid: false``, ``LineType: Unknown``, empty carrier,
``IsReassigned: null``), about 8% more answer ``IsReassigned: null``, and about a
third have a "reassigned on" date in 2012-2024: ``IsReassigned`` is true iff that
date is after the consent date (see :func:`reassigned_on`). Locale/Region/TZ come
from a small table of real area codes, else a stable pick by area code within the
country (``CA`` for Canadian area codes). ``UTCOffset`` is the daylight-time offset
in minutes, fixed per zone (the documented example says ``-420`` for California).
Carriers include ``+Mobile Carrier``, ``=Cellular Co``, ``@Home Telecom`` and
``-Dash Paging`` to exercise formula guards. The sandbox answers from another hash
stream and costs nothing. ``7075276405`` answers exactly the documented example.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any, ClassVar

from pipeline.emulators.hashing import crc_mix
from pipeline.emulators.nanp import CANADIAN_AREA_CODES, country, fictional, nanp_shaped, ten_digits
from pipeline.emulators.state import Prepared, ProviderApp, Request, Response

PATH = "/Data/TCPAAuthority"
MAX_BATCH = 1000
FORMATS = "MM/DD/YYYY, YYYY-MM-DD, MM/DD/YY or YYYYMMDD"

_ZONES = {
    "E": ("America/New_York", "-240"),
    "C": ("America/Chicago", "-300"),
    "M": ("America/Denver", "-360"),
    "AZ": ("America/Phoenix", "-420"),
    "P": ("America/Los_Angeles", "-420"),
    "AK": ("America/Anchorage", "-480"),
    "HI": ("Pacific/Honolulu", "-600"),
    "TOR": ("America/Toronto", "-240"),
    "MTL": ("America/Toronto", "-240"),
    "WPG": ("America/Winnipeg", "-300"),
    "REG": ("America/Regina", "-360"),
    "EDM": ("America/Edmonton", "-360"),
    "VAN": ("America/Vancouver", "-420"),
    "HFX": ("America/Halifax", "-180"),
    "NFL": ("America/St_Johns", "-150"),
}
# area code: (locale, region, zone)
_KNOWN: dict[str, tuple[str, str, str]] = {
    "201": ("Jersey City", "NJ", "E"), "202": ("Washington", "DC", "E"),
    "206": ("Seattle", "WA", "P"), "212": ("New York", "NY", "E"),
    "213": ("Los Angeles", "CA", "P"), "214": ("Dallas", "TX", "C"),
    "303": ("Denver", "CO", "M"), "305": ("Miami", "FL", "E"),
    "312": ("Chicago", "IL", "C"), "404": ("Atlanta", "GA", "E"),
    "415": ("San Francisco", "CA", "P"), "503": ("Portland", "OR", "P"),
    "602": ("Phoenix", "AZ", "AZ"), "617": ("Boston", "MA", "E"),
    "702": ("Las Vegas", "NV", "P"), "707": ("Santa Rosa", "CA", "P"),
    "713": ("Houston", "TX", "C"), "808": ("Honolulu", "HI", "HI"),
    "907": ("Anchorage", "AK", "AK"), "916": ("Sacramento", "CA", "P"),
    "416": ("Toronto", "ON", "TOR"), "514": ("Montreal", "QC", "MTL"),
    "604": ("Vancouver", "BC", "VAN"), "403": ("Calgary", "AB", "EDM"),
    "204": ("Winnipeg", "MB", "WPG"), "306": ("Regina", "SK", "REG"),
    "902": ("Halifax", "NS", "HFX"), "709": ("St. John's", "NL", "NFL"),
}  # fmt: skip
_US_FALLBACK = [v for k, v in _KNOWN.items() if k not in CANADIAN_AREA_CODES]
_CA_FALLBACK = [v for k, v in _KNOWN.items() if k in CANADIAN_AREA_CODES]

# (line type, carrier, weight) per country; weights sum to 100.
_LINES = {
    "US": [
        ("Wireless", "AT&T Wireless", 18), ("Wireless", "Verizon Wireless", 18),
        ("Wireless", "T-Mobile USA", 14), ("Wireless", "+Mobile Carrier", 5),
        ("VoIP", "Bandwidth.com CLEC", 8), ("VoIP", "=Cellular Co", 4),
        ("VoIP", "Twilio", 6), ("Landline", "AT&T California", 8),
        ("Landline", "Lumen (CenturyLink)", 8), ("Landline", "@Home Telecom", 5),
        ("Paging", "-Dash Paging", 2), ("Unknown", "", 4),
    ],
    "CA": [
        ("Wireless", "Rogers Communications", 22), ("Wireless", "Bell Mobility", 20),
        ("Wireless", "TELUS Mobility", 14), ("Wireless", "+Mobile Carrier", 4),
        ("VoIP", "Fongo", 8), ("VoIP", "=Cellular Co", 4), ("Landline", "Bell Canada", 14),
        ("Landline", "@Home Telecom", 8), ("Paging", "-Dash Paging", 2), ("Unknown", "", 4),
    ],
}  # fmt: skip


def _fragment(line: str, carrier: str) -> str:
    valid = "true" if line != "Unknown" else "false"
    return f'"IsValid":{valid},"LineType":{json.dumps(line)},"Carrier":{json.dumps(carrier)},'


# Index 0..99 of a hash -> the line/carrier JSON fragment; invalid ones last.
_MIDS: dict[str, list[str]] = {
    nation: [_fragment(line, carrier) for line, carrier, w in rows for _ in range(w)]
    for nation, rows in _LINES.items()
}
_INVALID_FROM = 96  # fragments 96..99 are the "Unknown"/invalid ones (weight 4)


def _location(area: str) -> tuple[str, str]:
    place = country(area)
    fallback = _CA_FALLBACK if place == "CA" else _US_FALLBACK
    locale, region, zone = _KNOWN.get(area) or fallback[int(area) % len(fallback)]
    tz, offset = _ZONES[zone]
    fields = {"Locale": locale, "Region": region, "Country": place, "TZ": tz}
    text = ",".join(f'"{k}":{json.dumps(v)}' for k, v in fields.items())
    return place, f'{text},"UTCOffset":"{offset}"}}'


_LOCATIONS = {f"{a:03d}": _location(f"{a:03d}") for a in range(200, 1000)}
_REASSIGN_FROM = date(2012, 1, 1).toordinal()
_REASSIGN_SPAN = date(2024, 12, 31).toordinal() - _REASSIGN_FROM
_EXAMPLE = "7075276405"
_SANDBOX = 0x5EED


def profile(number: str, sandbox: bool = False) -> tuple[str, int | None, str]:
    """(answer-fragment, reassigned-on ordinal or -1 for null or None, location) of a number."""
    h = crc_mix(number, _SANDBOX if sandbox else 0) >> 16
    nation, location = _LOCATIONS[number[:3]]
    pick = h % 100
    mid = _MIDS[nation][pick]
    if number == _EXAMPLE and not sandbox:
        return _fragment("Landline", "AT&T California"), None, location
    if pick >= _INVALID_FROM or (h >> 8) % 100 < 8:
        return mid, -1, location
    if (h >> 16) % 100 < 35:
        return mid, _REASSIGN_FROM + (h >> 24) % (_REASSIGN_SPAN + 1), location
    return mid, None, location


def reassigned_on(number: str, sandbox: bool = False) -> date | None:
    """When the emulator says ``number`` was reassigned (None: never or unknown)."""
    ordinal = profile(number, sandbox)[1]
    return date.fromordinal(ordinal) if ordinal is not None and ordinal > 0 else None


def parse_date(text: str) -> int | None:
    """Ordinal of a consent date in one of the four documented formats, else None."""
    n = len(text)
    digits = text.replace("/", "").replace("-", "")
    if not (digits.isascii() and digits.isdigit()):
        return None
    try:
        if n == 8 and digits == text:
            y, m, d = int(text[:4]), int(text[4:6]), int(text[6:])
        elif n == 10 and text[4] == "-" and text[7] == "-":
            y, m, d = int(text[:4]), int(text[5:7]), int(text[8:])
        elif "/" in text:
            parts = text.split("/")
            if len(parts) != 3 or len(parts[2]) not in (2, 4) or max(map(len, parts[:2])) > 2:
                return None
            m, d, y = (int(p) for p in parts)
            if len(parts[2]) == 2:
                y += 2000 if y < 50 else 1900
        else:
            return None
        return date(y, m, d).toordinal()
    except ValueError:
        return None


class TcpaAuthorityApp(ProviderApp):
    name: ClassVar[str] = "tcpa_authority"
    base_path: ClassVar[str] = "/v1.5"
    key_header: ClassVar[str] = "loginid"

    def __init__(self) -> None:
        self._dates: dict[str, int | None] = {}

    def error(self, status: int, message: str) -> Response:
        return Response(status, json.dumps({"Message": message}).encode())

    def _bad(self, message: str) -> Prepared:
        return Prepared(error=self.error(400, message))

    def _date(self, text: object) -> int | None:
        if not isinstance(text, str):
            return None
        cache = self._dates  # shared by the server's threads: never read after a check
        found = cache.get(text, -1)
        if found == -1:
            found = parse_date(text)
            if len(cache) > 10_000:
                cache.clear()
            cache[text] = found
        return found

    def prepare(self, request: Request) -> Prepared:
        if request.path != PATH:
            return Prepared(error=self.error(404, f"no such resource: {request.path}"))
        if request.method == "GET":
            query = {k.lower(): v for k, v in request.query.items()}
            sandbox = query.get("usesandbox", "false").lower() == "true"
            items: Any = [{"PhoneNumber": query.get("phonenumber"), "Date": query.get("date")}]
            where = {"PhoneNumber": "phoneNumber", "Date": "date"}
        elif request.method == "POST":
            try:
                body = json.loads(request.body)
            except (ValueError, UnicodeDecodeError):
                return self._bad("The request body is not valid JSON.")
            if not isinstance(body, dict) or "Data" not in body:
                return self._bad('Data is required: {"Data": [{"PhoneNumber", "Date"}]}.')
            items, sandbox = body["Data"], body.get("UseSandbox", False)
            if not isinstance(sandbox, bool):
                return self._bad("UseSandbox must be true or false.")
            if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
                size = len(items) if isinstance(items, list) else type(items).__name__
                return self._bad(f"Data must be a list of 1 to {MAX_BATCH} items (got {size}).")
            where = {}
        else:
            return Prepared(error=self.error(405, f"method {request.method} not allowed"))
        prepared = Prepared(numbers=len(items), sandbox=sandbox)
        today = date.today().toordinal()
        lookups: list[tuple[str, int]] = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                prepared.error = self.error(400, f"Data[{i}] must be an object.")
                return prepared
            number, when = item.get("PhoneNumber"), item.get("Date")
            ordinal = self._date(when)
            field, problem = "PhoneNumber", _number_problem(number)
            if problem is None:
                field = "Date"
                if ordinal is None:
                    problem = "missing" if when is None else f"{when!r} is not a date in {FORMATS}"
                elif ordinal > today:
                    problem = f"{when!r} is in the future"
            if problem is not None or ordinal is None or not isinstance(number, str):
                at = "" if where else f"Data[{i}]."
                prepared.error = self.error(400, f"{at}{where.get(field, field)}: {problem}.")
                return prepared
            lookups.append((number, ordinal))
        prepared.payload = (bool(where), lookups)
        return prepared

    def respond(self, prepared: Prepared) -> Response:
        single, lookups = prepared.payload
        sandbox = prepared.sandbox
        parts = []
        for number, consent in lookups:
            mid, moved, location = profile(number, sandbox)
            flag = "null" if moved == -1 else "true" if moved and moved > consent else "false"
            parts.append(f'{{"PhoneNumber":"{number}","IsReassigned":{flag},{mid}{location}')
        text = parts[0] if single else "[" + ",".join(parts) + "]"
        return Response(200, text.encode())


def _number_problem(number: object) -> str | None:
    if not isinstance(number, str):
        return "missing" if number is None else f"{number!r} must be a string of 10 digits"
    if not ten_digits(number):
        return f"{number!r} is not a 10-digit phone number (no leading 1 or +)"
    if not nanp_shaped(number):
        return f"{number!r} is not a North American number (area code and exchange start 2-9)"
    if fictional(number):
        return f"{number!r} is a fictional number (555-0100 to 555-0199)"
    return None
