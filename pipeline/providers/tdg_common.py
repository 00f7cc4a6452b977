"""What the two TDG APIs (reverse phone, ID verify) share: their gateway's headers and
error bodies, the statuses that answer "no record", and the pacing of a lane whose
rate limit TDG does not publish.
"""

from __future__ import annotations

import httpx

from pipeline.errors import ProviderError
from pipeline.providers.base import PacerOptions, Reply
from pipeline.providers.common import classify_status, json_object, one_line, short_text

TOO_MANY_RESULTS = 440
TOO_MANY_TEXT = "too many results (TDG will not pick one owner for this number)"

ADAPTIVE: PacerOptions = {"decrease": 0.9, "increase": 0.0002}
"""The pacer of a TDG lane, whose limit is hidden: a gentler cut on a 429 (x0.9, not
x0.7) and a slow creep back (+0.02% of the ceiling per answer, not 2%). The engine's
default creeps back so fast that it is over the limit again within seconds (about 6%
of requests answered 429); this settles just under the limit and probes above it
about once a minute or less. Measured by ``bench/bench_tdg_adaptive.py``."""


def headers(api_key: str) -> dict[str, str]:
    """What every TDG request carries (the key in ``x-api-key``)."""
    return {"x-api-key": api_key, "Content-Type": "application/json", "Accept": "application/json"}


def message(response: httpx.Response) -> str:
    """The body's own error message (``message`` / ``Message``), else its start."""
    body = json_object(response)
    if body is not None:
        for name in ("message", "Message", "error"):
            value = body.get(name)
            if isinstance(value, str) and value.strip():
                return one_line(value)
        return ""
    return short_text(response)


def too_many_results(response: httpx.Response, what: str) -> str:
    detail = message(response)
    return f"{what}: HTTP 440: {TOO_MANY_TEXT}" + (f": {detail}" if detail else "")


def refusal(response: httpx.Response, what: str) -> ProviderError:
    """The classified error of a non-answer (400, 401, 403, 429, 5xx, ...)."""
    return classify_status(response, what, message(response))


def unanswered(response: httpx.Response, what: str, no_match_credits: int) -> Reply | None:
    """The reply to a response that is not a 200: ``no_match`` for 204 (no record) and
    440 (too many to name one); any other status raises its classified error. None for
    a 200, which the API's own mapping reads."""
    status = response.status_code
    if status == 204:
        return Reply.single("no_match", None, no_match_credits)
    if status == TOO_MANY_RESULTS:
        return Reply.single("no_match", None, no_match_credits, too_many_results(response, what))
    if status != 200:
        raise refusal(response, what)
    return None
