"""What the two emulated TDG APIs share: their API gateway's error bodies, its reading
of a request body, and the Phone rule (ID verify refuses the phones reverse phone
refuses)."""

from __future__ import annotations

import json
from typing import Any

from pipeline.emulators.nanp import fictional, nanp_shaped, ten_digits
from pipeline.emulators.state import Request, Response

MISSING = "Missing required parameter(s)"


def phone_problem(phone: object) -> str | None:
    """Why TDG refuses a ``Phone`` value (None: it is a 10-digit NANP number)."""
    if phone is None or phone == "":
        return f"{MISSING}: Phone"
    if not isinstance(phone, str):
        return f"{MISSING}: Phone must be a string of 10 digits"
    if not ten_digits(phone):
        return f"{MISSING}: Phone must be a 10 digit numeric phone number"
    if not nanp_shaped(phone):
        return f"{MISSING}: Phone is not a North American number"
    if fictional(phone):
        return f"{MISSING}: Phone is a fictional 555-01XX number"
    return None


def gateway_error(status: int, message: str) -> Response:
    """An error as TDG's gateway sends it; a refused key is 401 (TDG documents no 403)."""
    if status == 403:
        status, message = 401, f"The user is invalid (verify your credentials): {message}"
    elif status == 401:
        message = f"The user is invalid (verify your credentials): {message}"
    return Response(status, json.dumps({"message": message}).encode())


def json_body(request: Request) -> dict[str, Any] | str:
    """The request's JSON object, or why it is not one."""
    if request.method != "POST":
        return f"method {request.method} not allowed"
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return f"{MISSING}: the body is not JSON"
    if not isinstance(body, dict):
        return f"{MISSING}: the body must be a JSON object"
    return body
