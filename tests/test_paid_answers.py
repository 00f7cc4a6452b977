"""Answers that were charged but cannot be used: their credits are counted (on the row,
in the report, against the budget), and an answer that would only be bought again the
same way is not asked again. Driven through a whole run with an injected transport."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.config import parse_config
from pipeline.errors import TerminalError
from pipeline.provider_config import PhoneEnrichmentSettings
from pipeline.providers.phone_enrichment import PhoneEnrichment
from pipeline.run import run

GARBLED_ONCE = "2124225838"  # a garbled body (charged), then a good answer
ELSEWHERE = "2124210000"  # the answer is about another number (charged)
FINE = "2124352542"


def _ctp_answer(phone: str) -> dict[str, Any]:
    return {"success": True, "credits_used": 1, "data": {"subscriber": phone, "action": "send"}}


def _run(tmp_path: Path, handler: Any, provider: str, settings: dict[str, Any],
         rows: list[dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> Any:  # fmt: skip
    source = tmp_path / "in.csv"
    with open(source, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    config = parse_config(
        {
            "input": {"path": str(source), "phone_column": "phone"},
            "output": {"path": str(tmp_path / "out.csv")},
            "run": {"state_dir": str(tmp_path / "state")},
            "providers": {
                provider: {"base_url": "https://api.test", "max_attempts": 3, **settings}
            },
        },
        "test config",
    )
    for section in config.providers.enabled().values():
        monkeypatch.setenv(section.api_key_env, "test-key")
    summary = run(config, transport=httpx.MockTransport(handler))
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as fh:
        out = {row["phone"]: row for row in csv.DictReader(fh)}
    report = json.loads(Path(summary.report or "").read_text())
    return summary, out, report


def test_checkthatphone_charges_for_unusable_answers_are_counted_and_not_bought_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: Counter[str] = Counter()

    def ctp(request: httpx.Request) -> httpx.Response:
        phone = json.loads(request.content)["phone"]
        asked[phone] += 1
        paid = {"X-Credits-Used": "1"}
        if phone == GARBLED_ONCE and asked[phone] == 1:
            return httpx.Response(200, content=b"<html>oops", headers=paid)
        if phone == ELSEWHERE:
            return httpx.Response(200, json=_ctp_answer("2125550000"), headers=paid)
        return httpx.Response(200, json=_ctp_answer(phone), headers=paid)

    rows = [{"phone": p} for p in (GARBLED_ONCE, ELSEWHERE, FINE)]
    summary, out, report = _run(tmp_path, ctp, "checkthatphone", {}, rows, monkeypatch)

    assert asked == {GARBLED_ONCE: 2, ELSEWHERE: 1, FINE: 1}  # the wrong answer: asked once
    assert out[GARBLED_ONCE]["ctp_status"] == "hit"
    assert out[GARBLED_ONCE]["ctp_credits"] == "2"  # the garbled answer was paid for too
    assert out[ELSEWHERE]["ctp_status"] == "failed"
    assert "another number" in out[ELSEWHERE]["ctp_error"]
    assert out[ELSEWHERE]["ctp_subscriber"] == ""  # a wrong answer is never written
    assert out[ELSEWHERE]["ctp_credits"] == "1"
    assert out[FINE]["ctp_credits"] == "1"
    figures = report["providers"]["checkthatphone"]
    assert figures["credits"] == figures["credits_charged"] == sum(asked.values()) == 4
    assert sum(int(row["credits_total"]) for row in out.values()) == 4
    assert summary.exit_code == 1  # a failed row: `retry` may ask again, by choice


def test_phone_enrichment_keeps_a_paid_phone_despite_odd_side_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The doc types email and linkedin_id as "any" and processing_time_ms as an
    integer; a float timing or a non-text email must not throw away a found phone."""
    asked: list[dict[str, Any]] = []

    def enrich(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        asked.append(body)
        return httpx.Response(200, json={
            "success": True, "record_id": body["record_id"], "phone": "+12124225838",
            "email": {"work": "a@b.example"}, "linkedin_id": 42, "processing_time_ms": 12.7,
        })  # fmt: skip

    rows = [{"phone": "", "email": "ada@engines.example"}]
    summary, out, report = _run(tmp_path, enrich, "phone_enrichment", {}, rows, monkeypatch)

    assert len(asked) == 1
    (row,) = out.values()
    assert row["append_status"] == "hit" and row["append_phone"] == "+12124225838"
    assert row["phone_source"] == "appended" and row["phone_e164"] == "+12124225838"
    assert row["append_processing_time_ms"] == "13"
    assert row["append_email"] == row["append_linkedin_id"] == ""
    assert row["append_credits"] == "1" and report["providers"]["phone_enrichment"]["credits"] == 1
    assert summary.exit_code == 0


@pytest.mark.parametrize(("phone", "price"), [("+12124225838", 5), (None, 2)])
def test_an_answer_for_another_record_is_refused_but_priced(phone: str | None, price: int) -> None:
    provider = PhoneEnrichment(
        PhoneEnrichmentSettings(base_url="https://api.test", credits_per_hit=5,
                                credits_per_no_match=2),
        "test-key", id_column=None,
    )  # fmt: skip
    key = json.dumps({"first_name": None, "email": "ada@engines.example"})
    request = provider.request([key], "req-1", ["R1"])
    assert json.loads(request.content) == {"record_id": "R1", "email": "ada@engines.example"}
    response = httpx.Response(
        200, json={"success": True, "record_id": "R2", "phone": phone}, request=request
    )
    with pytest.raises(TerminalError, match="answered record_id 'R2' for 'R1'") as caught:
        provider.parse(response, [key])
    assert caught.value.credits == price
