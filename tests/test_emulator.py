"""The provider emulator over real sockets: answers, validation, auth, limits, faults,
ledger, latency, admin, and the ``emulate`` command."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.emulators import Emulator, ProviderKnobs, key_label
from pipeline.emulators.nanp import CANADIAN_AREA_CODES, fictional, nanp_shaped
from pipeline.emulators.server import APPS
from pipeline.emulators.state import Request
from pipeline.emulators.tcpa_authority import parse_date, reassigned_on

TCPA = "tcpa_authority"
PATH = "/Data/TCPAAuthority"
KEY = "emulator-key"
FIELDS = [
    "PhoneNumber",
    "IsReassigned",
    "IsValid",
    "LineType",
    "Carrier",
    "Locale",
    "Region",
    "Country",
    "TZ",
    "UTCOffset",
]
DOC_EXAMPLE = {
    "PhoneNumber": "7075276405",
    "IsReassigned": False,
    "IsValid": True,
    "LineType": "Landline",
    "Carrier": "AT&T California",
    "Locale": "Santa Rosa",
    "Region": "CA",
    "Country": "US",
    "TZ": "America/Los_Angeles",
    "UTCOffset": "-420",
}


def fast(**overrides: Any) -> ProviderKnobs:
    values: dict[str, Any] = {"latency_ms": 0.0, "rate_limit": None, **overrides}
    return ProviderKnobs(**values)


def numbers(count: int, seed: int = 1) -> list[str]:
    """Distinct NANP-shaped numbers, none in the fictional 555-01xx range."""
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < count:
        area, exchange = rng.randint(200, 999), rng.randint(200, 999)
        n = f"{area}{exchange}{rng.randint(0, 9999):04d}"
        if not (n[3:6] == "555" and n[6:8] == "01"):
            out[n] = None
    return list(out)


def batch(phones: list[str], when: str = "20210209", sandbox: bool = False) -> dict[str, Any]:
    return {"Data": [{"PhoneNumber": p, "Date": when} for p in phones], "UseSandbox": sandbox}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator({TCPA: fast()}) as emulator:
        yield emulator


def client(emulator: Emulator, key: str | None = KEY, **kwargs: Any) -> httpx.Client:
    headers = {"loginId": key} if key is not None else {}
    # verify=False: plain HTTP anyway, and it skips loading CA certificates (~35 ms a client)
    return httpx.Client(base_url=emulator.base_url(TCPA), headers=headers, verify=False, **kwargs)


def post(emulator: Emulator, body: Any, key: str | None = KEY) -> httpx.Response:
    with client(emulator, key) as c:
        if isinstance(body, bytes):
            return c.post(PATH, content=body)
        return c.post(PATH, json=body)


def totals(emulator: Emulator) -> dict[str, Any]:
    result: dict[str, Any] = emulator.state(TCPA)["totals"]
    return result


# ------------------------------------------------------------------------------- answers


def test_documented_example_and_base_url(emu: Emulator) -> None:
    assert emu.base_url(TCPA) == f"{emu.url}/tcpa_authority/v1.5"
    with client(emu) as c:
        got = c.get(PATH, params={"phoneNumber": "7075276405", "date": "20210209"})
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("application/json")
    assert got.json() == DOC_EXAMPLE


def test_get_and_post_agree_and_answers_are_deterministic(emu: Emulator) -> None:
    phones = numbers(1000)
    first = post(emu, batch(phones))
    assert first.status_code == 200
    answers = first.json()
    assert [a["PhoneNumber"] for a in answers] == phones  # request order
    assert all(list(a) == FIELDS for a in answers)
    with Emulator({TCPA: fast()}) as other:
        assert post(other, batch(phones)).json() == answers
    with client(emu) as c:
        for phone, answer in list(zip(phones, answers, strict=True))[:25]:
            got = c.get(PATH, params={"phoneNumber": phone, "date": "20210209"})
            assert got.json() == answer


def test_answer_fields_look_like_the_provider(emu: Emulator) -> None:
    phones = numbers(1000, seed=2)
    answers = post(emu, batch(phones)).json()
    line_types = {a["LineType"] for a in answers}
    assert line_types <= {"Wireless", "VoIP", "Landline", "Paging", "Unknown"}
    assert {"Wireless", "VoIP", "Landline"} <= line_types
    assert {a["IsReassigned"] for a in answers} == {True, False, None}
    for a in answers:
        assert a["Country"] == ("CA" if a["PhoneNumber"][:3] in CANADIAN_AREA_CODES else "US")
        assert isinstance(a["IsValid"], bool)
        assert a["IsValid"] == (a["LineType"] != "Unknown")
        if not a["IsValid"]:
            assert a["IsReassigned"] is None
        assert a["TZ"].count("/") >= 1 and int(a["UTCOffset"]) < 0
    assert any(a["Carrier"][:1] in "=+-@" and a["Carrier"] for a in answers)
    nulls = sum(a["IsReassigned"] is None for a in answers)
    assert 50 <= nulls <= 200  # ~8% null plus ~4% invalid


def test_is_reassigned_depends_on_the_consent_date(emu: Emulator) -> None:
    phones = numbers(1000, seed=3)
    early = post(emu, batch(phones, "2005-01-01")).json()
    middle = post(emu, batch(phones, "06/15/2018")).json()
    late = post(emu, batch(phones, "01/01/25")).json()
    flipped = [
        e["PhoneNumber"]
        for e, m in zip(early, middle, strict=True)
        if e["IsReassigned"] is True and m["IsReassigned"] is False
    ]
    assert flipped
    assert not any(a["IsReassigned"] for a in late)  # every reassignment is before 2025
    for e, m, la in zip(early, middle, late, strict=True):
        assert (
            (e["IsReassigned"] is None)
            == (m["IsReassigned"] is None)
            == (la["IsReassigned"] is None)
        )
        if m["IsReassigned"]:
            assert e["IsReassigned"]  # monotonic in the date
        moved = reassigned_on(m["PhoneNumber"])
        if m["IsReassigned"] is not None:
            assert m["IsReassigned"] == (moved is not None and moved > date(2018, 6, 15))
        assert {k: v for k, v in e.items() if k != "IsReassigned"} == {
            k: v for k, v in la.items() if k != "IsReassigned"
        }


@pytest.mark.parametrize("when", ["02/09/2021", "2021-02-09", "02/09/21", "20210209", "2/9/2021"])
def test_date_formats_are_equivalent(emu: Emulator, when: str) -> None:
    phones = numbers(50, seed=4)
    assert post(emu, batch(phones, when)).json() == post(emu, batch(phones)).json()


def test_sandbox_answers_differently_and_costs_nothing(emu: Emulator) -> None:
    phones = numbers(200, seed=5)
    live = post(emu, batch(phones)).json()
    sandbox = post(emu, batch(phones, sandbox=True)).json()
    assert sandbox != live
    assert sandbox == post(emu, batch(phones, sandbox=True)).json()
    with client(emu) as c:
        got = c.get(
            PATH, params={"phoneNumber": phones[0], "date": "20210209", "useSandbox": "true"}
        )
    assert got.json() == sandbox[0]
    state = emu.state(TCPA)
    assert state["totals"]["credits"] == 200
    assert [r["credits"] for r in state["requests"]] == [200, 0, 0, 0]
    assert [r["sandbox"] for r in state["requests"]] == [False, True, True, True]


# ---------------------------------------------------------------------------- validation

TOMORROW = (date.today() + timedelta(days=1)).strftime("%Y%m%d")
GOOD = {"PhoneNumber": "7075276405", "Date": "20210209"}
BAD_BODIES: list[tuple[str, Any, str]] = [
    ("not json", b"{Data: nope", "JSON"),
    ("no Data", {"data": [GOOD]}, "Data"),
    ("Data not a list", {"Data": GOOD}, "Data"),
    ("Data empty", {"Data": []}, "Data"),
    ("Data too long", {"Data": [GOOD] * 1001}, "1001"),
    ("item not an object", {"Data": ["7075276405"]}, "Data[0]"),
    ("sandbox not a bool", {"Data": [GOOD], "UseSandbox": "yes"}, "UseSandbox"),
    ("9 digits", {"Data": [{**GOOD, "PhoneNumber": "707527640"}]}, "PhoneNumber"),
    ("11 digits", {"Data": [{**GOOD, "PhoneNumber": "17075276405"}]}, "PhoneNumber"),
    ("letters", {"Data": [{**GOOD, "PhoneNumber": "707527640x"}]}, "PhoneNumber"),
    ("punctuation", {"Data": [{**GOOD, "PhoneNumber": "707-527-64"}]}, "PhoneNumber"),
    ("not a string", {"Data": [{**GOOD, "PhoneNumber": 7075276405}]}, "PhoneNumber"),
    ("no number", {"Data": [{"Date": "20210209"}]}, "PhoneNumber"),
    ("area code 1xx", {"Data": [{**GOOD, "PhoneNumber": "1075276405"}]}, "North American"),
    ("exchange 0xx", {"Data": [{**GOOD, "PhoneNumber": "7070276405"}]}, "North American"),
    ("exchange 1xx", {"Data": [{**GOOD, "PhoneNumber": "7071276405"}]}, "North American"),
    ("fictional", {"Data": [{**GOOD, "PhoneNumber": "2125550142"}]}, "fictional"),
    ("no date", {"Data": [{"PhoneNumber": "7075276405"}]}, "Date"),
    ("odd date format", {"Data": [{**GOOD, "Date": "2021/02/09"}]}, "Date"),
    ("no such day", {"Data": [{**GOOD, "Date": "20210230"}]}, "Date"),
    ("future date", {"Data": [{**GOOD, "Date": TOMORROW}]}, "future"),
]


@pytest.mark.parametrize(
    ("body", "named"), [c[1:] for c in BAD_BODIES], ids=[c[0] for c in BAD_BODIES]
)
def test_bad_posts_are_400_and_free(emu: Emulator, body: Any, named: str) -> None:
    got = post(emu, body)
    assert got.status_code == 400
    assert named in got.json()["Message"]
    assert totals(emu)["credits"] == 0


def test_one_bad_number_fails_the_whole_batch(emu: Emulator) -> None:
    phones = numbers(999, seed=6)
    phones.insert(500, "2025550199")
    got = post(emu, batch(phones))
    assert got.status_code == 400
    assert got.json()["Message"].startswith("Data[500].PhoneNumber")
    assert totals(emu)["credits"] == 0
    assert post(emu, batch(phones[:500])).status_code == 200  # the client splits and retries
    assert post(emu, batch(["2025550200", "2025550099"])).status_code == 200  # just outside


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"date": "20210209"}, "phoneNumber"),
        ({"phoneNumber": "7075276405"}, "date"),
        ({"phoneNumber": "707527640", "date": "20210209"}, "phoneNumber"),
        ({"phoneNumber": "7075276405", "date": "9 Feb 2021"}, "date"),
        ({"phoneNumber": "7075276405", "date": TOMORROW}, "future"),
    ],
)
def test_bad_gets_are_400(emu: Emulator, params: dict[str, str], named: str) -> None:
    with client(emu) as c:
        got = c.get(PATH, params=params)
    assert got.status_code == 400
    assert named in got.json()["Message"]


def test_unknown_paths_are_404(emu: Emulator) -> None:
    with client(emu) as c:
        assert c.post("/Data/Nope", json=batch(["7075276405"])).status_code == 404
    assert httpx.get(f"{emu.url}/nope/v1.5{PATH}", verify=False).status_code == 404
    assert httpx.get(f"{emu.url}/tcpa_authority/v2{PATH}", verify=False).status_code == 404


# ---------------------------------------------------------------------------------- auth


def test_missing_or_unknown_key_is_401(emu: Emulator) -> None:
    assert post(emu, batch(["7075276405"]), key=None).status_code == 401
    got = post(emu, batch(["7075276405"]), key="not-a-key")
    assert got.status_code == 401
    assert "Message" in got.json()
    assert totals(emu)["credits"] == 0


def test_unauthorised_key_and_insufficient_credits_are_403() -> None:
    knobs = fast(keys={"rich": None, "poor": 5, "banned": None}, unauthorised_keys={"banned"})
    with Emulator({TCPA: knobs}) as emu:
        banned = post(emu, batch(["7075276405"]), key="banned")
        assert banned.status_code == 403
        assert "not authorised" in banned.json()["Message"]
        short = post(emu, batch(numbers(6)), key="poor")
        assert short.status_code == 403
        assert "insufficient credits" in short.json()["Message"]
        assert emu.state(TCPA)["balances"][key_label("poor")] == 5  # unchanged
        assert post(emu, batch(numbers(6), sandbox=True), key="poor").status_code == 200  # free
        assert post(emu, batch(numbers(5)), key="poor").status_code == 200
        state = emu.state(TCPA)
        assert state["balances"][key_label("poor")] == 0
        assert state["charged"] == {key_label("poor"): 5}
        assert post(emu, batch(["7075276405"]), key="poor").status_code == 403
        assert post(emu, batch(["7075276405"]), key="rich").status_code == 200


def test_credit_balance_holds_under_concurrency() -> None:
    with Emulator({TCPA: fast(keys={"k": 10})}) as emu:
        statuses = parallel(emu, 20, key="k")
        assert sorted(statuses) == [200] * 10 + [403] * 10
        state = emu.state(TCPA)
        assert state["balances"][key_label("k")] == 0
        assert state["totals"]["credits"] == 10


def parallel(emu: Emulator, count: int, key: str = KEY) -> list[int]:
    statuses: list[int] = []
    lock = threading.Lock()

    phones = numbers(count)
    limits = httpx.Limits(max_connections=count)

    def one(c: httpx.Client, phone: str) -> None:
        status = c.get(PATH, params={"phoneNumber": phone, "date": "20210209"}).status_code
        with lock:
            statuses.append(status)

    with client(emu, key, limits=limits) as c:
        threads = [threading.Thread(target=one, args=(c, phone)) for phone in phones]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return statuses


# ------------------------------------------------------------------------- rate limiting


def test_rolling_window_limits_and_recovers() -> None:
    with Emulator({TCPA: fast(rate_limit=5, rate_window_s=1.0)}) as emu, client(emu) as c:
        params = {"phoneNumber": "7075276405", "date": "20210209"}
        first = time.monotonic()
        assert [c.get(PATH, params=params).status_code for _ in range(5)] == [200] * 5
        limited = c.get(PATH, params=params)
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "1"
        assert "Message" in limited.json()
        state = emu.state(TCPA)
        assert state["totals"]["requests"] == 6
        assert state["totals"]["accepted"] == 5
        assert state["totals"]["credits"] == 5
        assert state["requests"][-1]["accepted"] is False
        assert state["requests"][-1]["credits"] == 0
        time.sleep(max(0.0, first + 1.05 - time.monotonic()))
        assert c.get(PATH, params=params).status_code == 200
        state = emu.state(TCPA)
        assert state["totals"]["max_in_window"] == 5
        assert state["totals"]["by_status"] == {"200": 6, "429": 1}


def test_a_provider_that_does_not_say_retry_after() -> None:
    knobs = fast(rate_limit=1, rate_window_s=60.0, retry_after_header=False)
    with Emulator({TCPA: knobs}) as emu, client(emu) as c:
        params = {"phoneNumber": "7075276405", "date": "20210209"}
        assert c.get(PATH, params=params).status_code == 200
        limited = c.get(PATH, params=params)
        assert limited.status_code == 429 and "Retry-After" not in limited.headers
        emu.queue_faults(TCPA, [429])
        emu.set_knobs(TCPA, rate_limit=None)
        faulted = c.get(PATH, params=params)
        assert faulted.status_code == 429 and "Retry-After" not in faulted.headers
        assert c.get(PATH, params=params).status_code == 200


def test_tdg_429s_carry_no_retry_after_as_documented_unless_the_knob_says() -> None:
    tdg = "tdg_reverse_phone"
    with Emulator({tdg: fast(rate_limit=0)}) as emu, client(emu) as c:
        url = f"{emu.base_url(tdg)}/v3/lookup/phone"
        headers = {"x-api-key": "emulator-key"}
        refused = c.post(url, json={"Phone": "2124237300"}, headers=headers)
        assert refused.status_code == 429 and "Retry-After" not in refused.headers
        emu.set_knobs(tdg, retry_after_header=True)
        refused = c.post(url, json={"Phone": "2124237300"}, headers=headers)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1


def test_limiter_is_exact_under_concurrency() -> None:
    with Emulator({TCPA: fast(rate_limit=10, rate_window_s=60.0)}) as emu:
        assert sorted(parallel(emu, 30)) == [200] * 10 + [429] * 20
        assert totals(emu)["accepted"] == 10


# -------------------------------------------------------------------------------- faults


def test_queued_faults_come_in_order_and_are_never_charged() -> None:
    with Emulator({TCPA: fast(hang_s=0.4)}) as emu:
        emu.queue_faults(TCPA, [500, 429, "timeout", "malformed", 503, 401])
        body = batch(numbers(3))
        assert post(emu, body).status_code == 500
        limited = post(emu, body)
        assert (limited.status_code, limited.headers["Retry-After"]) == (429, "1")
        with client(emu, timeout=0.2) as c, pytest.raises(httpx.ReadTimeout):
            c.post(PATH, json=body)
        garbled = post(emu, body)
        assert garbled.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(garbled.content)
        assert post(emu, body).status_code == 503
        assert post(emu, body).status_code == 401  # even with a good key
        assert post(emu, body).status_code == 200
        deadline = time.monotonic() + 2.0
        while totals(emu)["requests"] < 7 and time.monotonic() < deadline:
            time.sleep(0.02)  # the timed-out request is logged once the hang ends
        state = emu.state(TCPA)
        faults = [r["fault"] for r in state["requests"]]
        assert faults == ["500", "429", "timeout", "malformed", "503", "401", None]
        assert [r["credits"] for r in state["requests"]] == [0] * 6 + [3]
        assert state["totals"]["credits"] == 3
        assert state["totals"]["by_status"]["no_response"] == 1


def test_timeout_fault_drops_the_connection_after_hang_s() -> None:
    with Emulator({TCPA: fast(hang_s=0.2)}) as emu:
        emu.queue_faults(TCPA, ["timeout"])
        started = time.monotonic()
        with client(emu, timeout=5.0) as c, pytest.raises(httpx.RemoteProtocolError):
            c.post(PATH, json=batch(["7075276405"]))
        assert 0.15 <= time.monotonic() - started < 2.0


def test_random_faults_follow_the_seed() -> None:
    def statuses(seed: int) -> list[int]:
        knobs = fast(fail_5xx=0.3, fail_429=0.2, seed=seed)
        with Emulator({TCPA: knobs}) as emu, client(emu) as c:
            params = {"phoneNumber": "7075276405", "date": "20210209"}
            return [c.get(PATH, params=params).status_code for _ in range(40)]

    first = statuses(11)
    assert first == statuses(11)
    assert {200, 429} <= set(first) and set(first) & {500, 502, 503}
    assert 10 <= first.count(200) <= 32


# ----------------------------------------------------------------------- ledger, latency


def test_ledger_per_key_and_totals() -> None:
    with Emulator({TCPA: fast(keys={"alpha": None, "beta": 100})}) as emu:
        with client(emu, "alpha") as c:
            c.post(PATH, json=batch(numbers(3)), headers={"X-Request-ID": "req-1"})
        post(emu, batch(numbers(2)), key="beta")
        post(emu, batch(numbers(4), sandbox=True), key="beta")
        post(emu, batch(["0000000000"]), key="beta")
        state = emu.state(TCPA)
        assert state["charged"] == {key_label("alpha"): 3, key_label("beta"): 2}
        assert state["balances"] == {key_label("alpha"): None, key_label("beta"): 98}
        first = state["requests"][0]
        assert first["request_id"] == "req-1" and first["key"] == key_label("alpha")
        assert first["numbers"] == 3 and first["method"] == "POST"
        assert first["path"] == "/tcpa_authority/v1.5/Data/TCPAAuthority"
        assert first["arrived_mono"] <= first["responded_mono"]
        assert abs(first["arrived"] - time.time()) < 60
        assert state["totals"] == {
            "requests": 4,
            "accepted": 4,
            "numbers_charged": 5,
            "credits": 5,
            "by_status": {"200": 3, "400": 1},
            "max_in_window": 4,
        }


def test_latency_knob_is_respected() -> None:
    with Emulator({TCPA: fast(latency_ms=200.0)}) as emu, client(emu) as c:
        started = time.monotonic()
        assert c.get(PATH, params={"phoneNumber": "7075276405", "date": "20210209"}).is_success
        assert time.monotonic() - started >= 0.18
        entry = emu.state(TCPA)["requests"][0]
        assert entry["responded_mono"] - entry["arrived_mono"] >= 0.18


def test_start_and_stop_are_fast_even_with_open_connections() -> None:
    started = time.monotonic()
    emu = Emulator({TCPA: fast()}).start()
    with client(emu) as c:
        assert c.get(PATH, params={"phoneNumber": "7075276405", "date": "20210209"}).is_success
        emu.stop()  # a keep-alive connection is still open
    assert time.monotonic() - started < 0.5


# --------------------------------------------------------------------------------- admin


def test_admin_state_never_shows_a_raw_key() -> None:
    secrets = ["sekrit-alpha-7f3a", "sekrit-banned-91c2", "sekrit-unknown-0d4e"]
    knobs = fast(keys={secrets[0]: 50, secrets[1]: None}, unauthorised_keys={secrets[1]})
    with Emulator({TCPA: knobs}) as emu:
        for key in secrets:
            post(emu, batch(["7075276405"]), key=key)
        text = httpx.get(f"{emu.url}/_admin/state", verify=False).text
        whole = json.loads(text)
        assert set(whole["providers"]) == set(APPS)  # every mounted provider
        assert whole["providers"][TCPA] == emu.state(TCPA)
        assert httpx.get(f"{emu.url}/_admin/state/{TCPA}", verify=False).json() == emu.state(TCPA)
        for key in secrets:
            assert key not in text
            assert key not in json.dumps(emu.state(TCPA))
        keys = [r["key"] for r in whole["providers"][TCPA]["requests"]]
        assert keys == [key_label(k) for k in secrets]
        assert [r["status"] for r in whole["providers"][TCPA]["requests"]] == [200, 403, 401]


def test_admin_endpoints_reset_knobs_and_faults(emu: Emulator) -> None:
    admin = httpx.Client(base_url=f"{emu.url}/_admin", verify=False)
    with admin:
        assert post(emu, batch(["7075276405"])).status_code == 200
        got = admin.post(f"/knobs/{TCPA}", json={"keys": ["fresh"]})
        assert got.json() == {"ok": True}
        assert post(emu, batch(["7075276405"]), key=KEY).status_code == 401
        assert post(emu, batch(["7075276405"]), key="fresh").status_code == 200
        assert admin.post(f"/knobs/{TCPA}", json={"rate_limit": 1}).status_code == 200
        assert post(emu, batch(["7075276405"]), key="fresh").status_code == 429
        admin.post("/reset")
        state = emu.state(TCPA)
        assert state["requests"] == [] and state["charged"] == {}
        assert state["totals"]["requests"] == 0
        assert state["knobs"]["rate_limit"] == 1  # knobs survive a reset
        assert admin.post(f"/faults/{TCPA}", json=[503]).status_code == 200
        assert emu.state(TCPA)["queued_faults"] == [503]
        assert post(emu, batch(["7075276405"]), key="fresh").status_code == 503
        assert admin.post(f"/knobs/{TCPA}", json={"nope": 1}).status_code == 400
        assert admin.post(f"/faults/{TCPA}", json=["explode"]).status_code == 400
        assert admin.post(f"/faults/{TCPA}", content=b"[").status_code == 400
        assert admin.post("/knobs/nope", json={}).status_code == 404
        assert admin.get("/nope").status_code == 404


def test_python_api_set_knobs_and_reset_restores_balances() -> None:
    with Emulator({TCPA: fast(keys={"k": 3})}) as emu:
        assert post(emu, batch(numbers(3)), key="k").status_code == 200
        assert emu.state(TCPA)["balances"][key_label("k")] == 0
        emu.reset()
        assert emu.state(TCPA)["balances"][key_label("k")] == 3
        emu.set_knobs(TCPA, credits_per_number=2)
        assert post(emu, batch(numbers(2)), key="k").status_code == 403
        assert post(emu, batch(numbers(1)), key="k").status_code == 200
        assert emu.state(TCPA)["charged"] == {key_label("k"): 2}
        with pytest.raises(ValueError):
            emu.set_knobs(TCPA, bogus=1)
        with pytest.raises(ValueError):
            emu.queue_faults(TCPA, [200])
        with pytest.raises(KeyError):
            emu.state("nope")


# ------------------------------------------------------------------------------- command


def test_emulate_command_serves_until_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    args = ["--port", "0", "--latency-ms", "0", "--rate-limit", "0", "--key", "cli-key=7"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "emulate", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        base = next(w.split("=", 1)[1] for w in line.split() if w.startswith(f"{TCPA}="))
        assert base.startswith("http://127.0.0.1:") and base.endswith("/tcpa_authority/v1.5")
        headers = {"loginId": "cli-key"}
        got = httpx.post(base + PATH, json=batch(["7075276405"]), headers=headers, verify=False)
        assert got.json() == [DOC_EXAMPLE]
        url = base.removesuffix("/tcpa_authority/v1.5")
        state = httpx.get(f"{url}/_admin/state/{TCPA}", verify=False).json()
        assert state["balances"] == {key_label("cli-key"): 6}
        assert state["knobs"]["rate_limit"] is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(1950, 1, 1), max_value=date.today()))
def test_every_date_format_reads_the_same_day(day: date) -> None:
    texts = [
        f"{day:%m/%d/%Y}",
        f"{day:%Y-%m-%d}",
        f"{day:%Y%m%d}",
        f"{day.month}/{day.day}/{day.year}",
    ]
    if day.year < 2050:
        texts.append(f"{day:%m/%d/%y}")
    assert {parse_date(t) for t in texts} == {day.toordinal()}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2021",
        "2021-2-09",
        "02/30/2021",
        "13/01/2021",
        "2021/02/09",
        "02/09/2021 ",
        "0\uff12/09/2021",  # a full-width digit
        "02/009/2021",
        "2021-02-0x",
        "20211301",
    ],
)
def test_unreadable_dates(text: str) -> None:
    assert parse_date(text) is None


@pytest.mark.parametrize(
    ("phone", "refused"),
    [
        ("2125550142", "fictional"),  # 555-0100 .. 555-0199: reserved for fiction
        ("1075276405", "area code 1xx"),
        ("7070276405", "exchange 0xx"),
        ("2125550200", None),  # just outside the fictional range
        ("2125550099", None),
    ],
)
def test_every_emulator_applies_the_one_nanp_rule(phone: str, refused: str | None) -> None:
    """TCPA Authority, CheckThatPhone, TDG reverse phone and ID verify refuse the same
    numbers (one rule, in ``pipeline.emulators.nanp``), each in its API's own words."""
    tcpa = {"Data": [{"PhoneNumber": phone, "Date": "20200101"}]}
    bodies: dict[str, tuple[str, dict[str, Any]]] = {
        "tcpa_authority": ("/Data/TCPAAuthority", tcpa),
        "checkthatphone": ("/v1/lookup", {"phone": phone}),
        "tdg_reverse_phone": ("/v3/lookup/phone", {"Phone": phone}),
        "tdg_id_verify": ("/v2/verify/id", {"Phone": phone, "FName": "Ada"}),
    }
    assert (fictional(phone) or not nanp_shaped(phone)) == (refused is not None)
    for name, (path, body) in bodies.items():
        app = APPS[name]()
        request = Request("POST", path, {}, {}, json.dumps(body).encode())
        prepared = app.prepare(request)
        if name == "checkthatphone":  # a refused phone is a 200 with action "error"
            lookup = prepared.payload
            said = lookup.problem if lookup.number is None else None
        else:
            said = None if prepared.error is None else prepared.error.body.decode()
        assert (said is not None) == (refused is not None), (name, said)


def test_the_rolling_window_counts_by_arrival_whatever_order_threads_admit_in() -> None:
    """A handler thread still reading its body admits its request after one that arrived
    later: the later one is not held against it (a spurious 429 at a window held
    exactly at its limit, as a lane at the configured rate holds it)."""
    from pipeline.emulators.state import ProviderKnobs, ProviderState

    state = ProviderState(ProviderKnobs(rate_limit=2, rate_window_s=1.0))
    assert state.admit(0.5) is None
    assert state.admit(1.001) is None  # arrived second, admitted first
    assert state.admit(1.000) is None  # in (0.0, 1.0]: only 0.5 before it
    assert state.admit(1.002) is not None  # 1.000 and 1.001 in its window: full
    assert state.admit(1.6) is not None  # 0.5 has left; 1.000 and 1.001 still fill it
    assert state.admit(2.002) is None  # both have left
