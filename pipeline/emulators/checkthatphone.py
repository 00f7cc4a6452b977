"""Emulated CheckThatPhone (``POST /v1/lookup``, ``Authorization: Bearer <key>``).

Body ``{"phone", "ip"?, "litigatorFilter"?, "landlineSmsLookup"?}``; the answer is
the envelope ``{"success", "credits_used", "data": {...}}`` with the same charge in
the ``X-Credits-Used`` header. Errors are envelopes too: ``{"success": false,
"credits_used": 0, "error": {"status", "message"}}``.

Rules, as the emulator applies them:

* ``phone``: non-digits are stripped; 10 digits, or 11 with a leading 1, NANP-shaped
  (area code and exchange start 2-9), and not in the range reserved for fiction
  (exchange 555, line 0100-0199). Anything else (missing, not a string, too short)
  answers 200 with ``action: "error"``, ``success: false`` and costs nothing.
* ``ip`` (optional, a string): ``ipResult`` is ``valid-v4``, ``valid-v6`` or
  ``invalid``; a valid one makes the geo fields come from the IP (``geoSource: "ip"``).
* ``litigatorFilter`` / ``landlineSmsLookup``: true or false (anything else is a 400).
  The litigator fields and the ``dipMessaging*`` fields appear only when asked for.
* Price: ``credits_per_number`` (1) per lookup, +1 with the litigator filter, +1 for
  the landline SMS lookup on a landline (``nanpType: "landline"``).
* 401 for a missing or unknown key (and for a key the knobs mark unauthorised: the
  API documents no 403). A key out of credits gets 429 "monthly quota used up",
  as the free tier does. 429 (rate limit) and 5xx faults are never charged.

Answers are a pure function of (number, ip, options), from CRC-32 of the number
mixed by a 64-bit multiply (never Python's ``hash``): about 62% mobile, 23%
landline, 15% ``not-mobile`` (VoIP); about 20% ported (``dipLrn`` differs); 2% DIP
errors; 6% litigators (two thirds with a name on record); 2% blacklisted; 3%
deactivated in the 45 days before 2025-12-15; 30% of landlines SMS-enabled.
Carriers include ``+Mobile Carrier``, ``=Cellular Co``, ``@Home Telecom`` to
exercise formula guards. ``8182925409`` answers the documented example's DIP fields.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

from pipeline.emulators.hashing import crc_mix
from pipeline.emulators.nanp import CANADIAN_AREA_CODES, country, fictional, nanp_shaped
from pipeline.emulators.state import Prepared, ProviderApp, ProviderKnobs, Request, Response

PATH = "/v1/lookup"
EXAMPLE = "8182925409"

# (nanpCarrier, dipCarrier, dipOcn, dipCarrierSubType) per line type.
_CARRIERS: dict[str, list[tuple[str, str, str, str]]] = {
    "mobile": [
        ("verizon", "Verizon Wireless", "6006", "WIRELESS"),
        ("att", "AT&T Mobility", "6010", "WIRELESS"),
        ("tmobile", "T-Mobile USA", "6529", "PCS"),
        ("mint", "Mint Mobile", "8761", "WRSL"),
        ("+mobile", "+Mobile Carrier", "4242", "WIRELESS"),
    ],
    "landline": [
        ("att", "AT&T California", "9740", "ILEC"),
        ("lumen", "Lumen (CenturyLink)", "9636", "RBOC"),
        ("frontier", "Frontier Communications", "0421", "ILEC"),
        ("@home", "@Home Telecom", "7777", "CLEC"),
    ],
    "not-mobile": [
        ("bandwidth", "Bandwidth.com CLEC", "981E", "IPES"),
        ("twilio", "Twilio", "7382", "IPES"),
        ("=cellular", "=Cellular Co", "5150", "IPES"),
    ],
}
_CARRIER_TYPE = {"mobile": "mobile", "landline": "landline", "not-mobile": "landline"}
_LITIGATOR_TYPES = ("litigator", "plaintiff", "agitator")
# Fictional names (the emulator's stand-in for the sensitive litigator_name field).
LITIGATOR_NAMES = (
    "Jonah Q. Placeholder",
    "Marta Fictitia",
    "Elmer Testcase",
    "Priya Samplewood",
    "Gus Nobodyson",
)
_MESSAGING = (
    ("Google (Grand Central) - SVR", "us_google"),
    ("Twilio Landline Texting", "us_twilio"),
    ("Zipwhip", "us_zipwhip"),
)
# area code -> (state, city, metro/DMA, zone); zone -> (IANA name, tzOffset as documented:
# hours behind UTC in standard time, e.g. 8 for Los Angeles).
_ZONES = {
    "E": ("America/New_York", 5.0), "C": ("America/Chicago", 6.0),
    "M": ("America/Denver", 7.0), "AZ": ("America/Phoenix", 7.0),
    "P": ("America/Los_Angeles", 8.0), "AK": ("America/Anchorage", 9.0),
    "HI": ("Pacific/Honolulu", 10.0), "TOR": ("America/Toronto", 5.0),
    "VAN": ("America/Vancouver", 8.0), "EDM": ("America/Edmonton", 7.0),
    "NFL": ("America/St_Johns", 3.5),
}  # fmt: skip
_PLACES: dict[str, tuple[str, str, int, str]] = {
    "202": ("DC", "Washington", 511, "E"), "212": ("NY", "New York", 501, "E"),
    "213": ("CA", "Los Angeles", 803, "P"), "312": ("IL", "Chicago", 602, "C"),
    "305": ("FL", "Miami", 528, "E"), "303": ("CO", "Denver", 751, "M"),
    "404": ("GA", "Atlanta", 524, "E"), "415": ("CA", "San Francisco", 807, "P"),
    "503": ("OR", "Portland", 820, "P"), "602": ("AZ", "Phoenix", 753, "AZ"),
    "617": ("MA", "Boston", 506, "E"), "713": ("TX", "Houston", 618, "C"),
    "808": ("HI", "Honolulu", 744, "HI"), "818": ("CA", "Glendale", 803, "P"),
    "907": ("AK", "Anchorage", 743, "AK"), "951": ("CA", "Riverside", 803, "P"),
    "416": ("ON", "Toronto", 0, "TOR"), "604": ("BC", "Vancouver", 0, "VAN"),
    "403": ("AB", "Calgary", 0, "EDM"), "709": ("NL", "St. John's", 0, "NFL"),
}  # fmt: skip
_US_PLACES = [v for k, v in _PLACES.items() if k not in CANADIAN_AREA_CODES]
_CA_PLACES = [v for k, v in _PLACES.items() if k in CANADIAN_AREA_CODES]
_OPT_BASE = datetime(2026, 1, 1)
_DEACTIVATION_END = date(2025, 12, 15)


def _mix(text: str, seed: int = 0) -> int:
    return crc_mix(text, seed) >> 8


def phone_problem(phone: object) -> tuple[str | None, str | None]:
    """(the 10-digit number, None) for an acceptable phone, else (None, the reason)."""
    if phone is None:
        return None, "Missing phone number"
    if not isinstance(phone, str):
        return None, "Invalid phone number: expected a string"
    digits = "".join(c for c in phone if c.isascii() and c.isdigit())
    if len(digits) == 11 and digits[0] == "1":
        digits = digits[1:]
    if len(digits) != 10:
        return None, "Invalid phone number: expected 10 or 11 digits"
    if not nanp_shaped(digits):
        return None, "Invalid phone number: not a North American number"
    if fictional(digits):
        return None, "Invalid phone number: a fictional 555-01XX number"
    return digits, None


def line_type(number: str) -> str:
    """The ``nanpType`` the emulator answers for a valid 10-digit number."""
    if number == EXAMPLE:
        return "mobile"
    pick = _mix(number) % 100
    return "mobile" if pick < 62 else "landline" if pick < 85 else "not-mobile"


def price(number: str | None, litigator: bool, sms: bool, base: int = 1) -> int:
    """Credits one lookup costs (0 for a refused phone)."""
    if number is None:
        return 0
    return base + int(litigator) + int(sms and line_type(number) == "landline")


def _ip_result(ip: str | None) -> tuple[str | None, int | None]:
    if ip is None:
        return None, None
    try:
        parsed = ipaddress.ip_address(ip.strip())
    except ValueError:
        return "invalid", None
    return f"valid-v{parsed.version}", _mix(parsed.compressed, 7)


def answer(number: str, ip: str | None, litigator_filter: bool, sms: bool) -> dict[str, Any]:
    """The ``data`` object for a valid number (a pure function of its arguments)."""
    h = _mix(number)
    kind = line_type(number)
    carriers = _CARRIERS[kind]
    nanp, carrier, ocn, subtype = carriers[(h >> 7) % len(carriers)]
    ported = (h >> 8) % 100 < 20
    dip = "error" if (h >> 12) % 100 < 2 else "success"
    if number == EXAMPLE:  # the documented example's carrier fields
        nanp, carrier, ocn, subtype = "verizon", "AT&T", "6010", "WIRELESS"
        ported, dip = False, "success"
    if ported:  # routed through another carrier's switch: the LRN differs
        nanp = _CARRIERS[kind][(h >> 9) % len(carriers)][0]
        lrn = f"{number[:3]}{2 + (h >> 40) % 8}{(h >> 20) % 100:02d}{(h >> 28) % 10000:04d}"
        if lrn == number:
            lrn = number[:6] + f"{(int(number[6:]) + 1) % 10000:04d}"
    else:
        lrn = number
    data: dict[str, Any] = {
        "subscriber": number,
        "optDate": (_OPT_BASE + timedelta(milliseconds=(h >> 16) % (86_400_000 * 140))).isoformat(
            timespec="milliseconds"
        )
        + "Z",
    }
    if dip == "success":
        dip_fields = {
            "dip": "success", "dipLrn": lrn, "dipPorted": "true" if ported else "false",
            "dipOcn": ocn, "dipCarrier": carrier, "dipCarrierType": _CARRIER_TYPE[kind],
            "dipCarrierSubType": subtype,
        }  # fmt: skip
    else:
        dip_fields = {
            "dip": "error", "dipLrn": "", "dipPorted": "false", "dipOcn": "",
            "dipCarrier": "", "dipCarrierType": "undefined", "dipCarrierSubType": "undefined",
        }  # fmt: skip
    enabled = kind == "landline" and (h >> 44) % 100 < 30
    messaging: dict[str, Any] = {}
    if sms:
        provider, ref = _MESSAGING[(h >> 46) % len(_MESSAGING)] if enabled else ("", "")
        messaging = {
            "dipMessagingLookup": "true" if kind == "landline" else "false",
            "dipMessagingEnabled": "true" if enabled else "false",
            "dipMessagingProvider": provider,
            "dipMessagingRefId": ref,
            "dipMessagingCountryCode": "US" if enabled else "",
        }
    is_litigator = number != EXAMPLE and (h >> 16) % 100 < 6
    litigation: dict[str, Any] = {}
    if litigator_filter:
        litigation["litigator"] = "true" if is_litigator else "false"
        if is_litigator:
            litigation["litigator_type"] = _LITIGATOR_TYPES[(h >> 22) % 3]
            if (h >> 24) % 3:
                litigation["litigator_name"] = LITIGATOR_NAMES[(h >> 26) % len(LITIGATOR_NAMES)]
    blacklisted = number != EXAMPLE and (h >> 30) % 100 < 2
    deactivated = None
    if number != EXAMPLE and (h >> 34) % 100 < 3:
        deactivated = (_DEACTIVATION_END - timedelta(days=(h >> 38) % 45)).isoformat()
    if litigator_filter and is_litigator:
        action, reason = "unsubscribe", "Associated with TCPA Litigator DO NOT CONTACT"
    elif blacklisted:
        action, reason = "unsubscribe", "Blacklisted Subscriber"
    elif deactivated is not None:
        action = "unsubscribe"
        reason = f"Number deactivated by carrier id {ocn} on {deactivated}"
    elif kind != "mobile" and not (sms and enabled):
        action, reason = "unsubscribe", "Not a valid mobile number"
    else:
        action, reason = "send", ""
    data.update(
        action=action,
        deliverable="true" if action == "send" else "false",
        error="false",
        reason=reason,
        deactivationDate=deactivated or "",
        blackList="true" if blacklisted or (litigator_filter and is_litigator) else "false",
        nanpType=kind,
        nanpCarrier=nanp,
        **dip_fields,
        **messaging,
        **litigation,
    )
    ip_result, ip_hash = _ip_result(ip)
    area = number[:3]
    where = country(number)
    places = _CA_PLACES if where == "CA" else _US_PLACES
    place = _PLACES.get(area) or places[int(area) % len(places)]
    source = "area-code"
    if ip_hash is not None:  # a valid IP: the geo fields come from it
        place, source = places[ip_hash % len(places)], "ip"
    if ip_result is not None:
        data["ipResult"] = ip_result
    state, city, metro, zone = place
    timezone, offset = _ZONES[zone]
    data.update(
        geoCountry=where, geoState=state, geoCity=city, geoMetro=metro, geoSource=source,
        timezone=timezone, tzOffset=offset,
    )  # fmt: skip
    return data


def refused(reason: str) -> dict[str, Any]:
    """The ``data`` of an ``action: "error"`` answer."""
    return {
        "subscriber": "",
        "action": "error",
        "deliverable": "false",
        "error": "true",
        "reason": reason,
    }


class CheckThatPhoneApp(ProviderApp):
    name: ClassVar[str] = "checkthatphone"
    key_header: ClassVar[str] = "authorization"
    key_scheme: ClassVar[str] = "Bearer "

    def error(self, status: int, message: str) -> Response:
        if status == 403 and message.startswith("insufficient credits"):
            status, message = 429, f"monthly quota used up ({message}); upgrade your plan"
        elif status == 403:  # the API documents no 403: a key it will not serve is invalid
            status, message = 401, f"invalid API key: {message}"
        failure = {"status": status, "message": message}
        body = {"success": False, "credits_used": 0, "error": failure}
        return Response(status, json.dumps(body).encode(), headers={"X-Credits-Used": "0"})

    def _bad(self, message: str) -> Prepared:
        return Prepared(numbers=1, error=self.error(400, message))

    def prepare(self, request: Request) -> Prepared:
        if request.path != PATH:
            return Prepared(error=self.error(404, f"no such resource: {request.path}"))
        if request.method != "POST":
            return Prepared(error=self.error(405, f"method {request.method} not allowed"))
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return self._bad("The request body is not valid JSON.")
        if not isinstance(body, dict):
            return self._bad('The request body must be a JSON object: {"phone": "..."}.')
        flags = []
        for name in ("litigatorFilter", "landlineSmsLookup"):
            value = body.get(name, False)
            if not isinstance(value, bool):
                return self._bad(f"{name} must be true or false.")
            flags.append(value)
        ip = body.get("ip")
        if ip is not None and not isinstance(ip, str):
            return self._bad("ip must be a string.")
        number, problem = phone_problem(body.get("phone"))
        return Prepared(numbers=1, payload=_Lookup(number, problem, ip or None, flags[0], flags[1]))

    def cost(self, prepared: Prepared, knobs: ProviderKnobs) -> int:
        lookup = prepared.payload
        if not isinstance(lookup, _Lookup):
            return 0
        lookup.price = price(lookup.number, lookup.litigator, lookup.sms, knobs.credits_per_number)
        return lookup.price

    def charge(self, prepared: Prepared, response: Response, knobs: ProviderKnobs) -> int:
        return int(response.headers.get("X-Credits-Used", "0"))

    def respond(self, prepared: Prepared) -> Response:
        lookup = prepared.payload
        assert isinstance(lookup, _Lookup)
        credits = 0
        if lookup.number is None:
            data = refused(lookup.problem or "Invalid phone number")
        else:
            data = answer(lookup.number, lookup.ip, lookup.litigator, lookup.sms)
            credits = price(lookup.number, lookup.litigator, lookup.sms)
            if lookup.price is not None:
                credits = lookup.price
        body = {"success": lookup.number is not None, "credits_used": credits, "data": data}
        return Response(200, json.dumps(body).encode(), headers={"X-Credits-Used": str(credits)})


@dataclass(slots=True)
class _Lookup:
    number: str | None
    problem: str | None
    ip: str | None
    litigator: bool
    sms: bool
    price: int | None = None
    """Set by ``cost`` (it knows the knobs' base price)."""
