"""Phone enrichment's error envelope beyond the contract suite: what each documented
field of a non-200 answer makes of it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pipeline.errors import BadRequestError, LaneStoppedError, TransientError
from pipeline.providers.phone_enrichment import error_for


def envelope(status: int, **fields: Any) -> httpx.Response:
    return httpx.Response(status, json={"success": False, "error": "nope", **fields})


@pytest.mark.parametrize(
    ("answer", "kind", "wait"),
    [
        (envelope(400), BadRequestError, None),
        (envelope(400, retry_after=None), BadRequestError, None),
        (envelope(400, retry_after=0), BadRequestError, None),
        (envelope(400, retry_after=7), TransientError, 7.0),  # a rate limit worded as a 400
        (envelope(400, retry_after="12"), TransientError, 12.0),
        (envelope(400, credits_required=1, credits_remaining=0), LaneStoppedError, None),
        (envelope(429, retry_after=2), TransientError, 2.0),
        (httpx.Response(422, json={"detail": []}), BadRequestError, None),
    ],
)
def test_an_error_envelope_is_classified_by_its_fields(
    answer: httpx.Response, kind: type[Exception], wait: float | None
) -> None:
    error = error_for(answer)
    assert type(error) is kind
    assert getattr(error, "retry_after", None) == wait
