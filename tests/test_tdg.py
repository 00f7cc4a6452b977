"""The Data Group providers beyond the contract suite: how each answer is read, what is
sent, what a run keeps (TDG's trace), and the adaptive pacer their lanes use, driven
by an injected clock (no timing: the machine is noisy)."""

from __future__ import annotations

import json
import re
import uuid
from itertools import pairwise
from pathlib import Path
from typing import Any

import anyio
import httpx
import polars as pl
import pytest

from pipeline.config import parse_config
from pipeline.emulators.server import Emulator
from pipeline.emulators.state import ProviderKnobs
from pipeline.engine.engine import Engine
from pipeline.engine.pacer import Pacer
from pipeline.errors import (
    BadRequestError,
    ConfigError,
    InputError,
    LaneStoppedError,
    TerminalError,
    TransientError,
)
from pipeline.provider_config import TdgIdVerifySettings, TdgReversePhoneSettings
from pipeline.providers.tdg_common import ADAPTIVE
from pipeline.providers.tdg_id_verify import TdgIdVerify
from pipeline.providers.tdg_reverse_phone import TdgReversePhone
from pipeline.run import run
from pipeline.store.records import NewRun, Session
from pipeline.store.sqlite import SqliteStore

SECRET = "tdg-secret-key-123"
BASE = "https://api.tdg1.test"


def reverse_phone(**settings: Any) -> TdgReversePhone:
    return TdgReversePhone(TdgReversePhoneSettings(base_url=BASE, **settings), SECRET)


def answered(status: int, body: Any = None, **headers: str) -> httpx.Response:
    content = b"" if body is None else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers=headers)


DOCUMENTED = {  # TDG's own sample response
    "Name": {"LName": "Smith", "FName": "Tom", "MName": ""},
    "Address": {
        "House": "123", "PreDir": "", "Street": "Main", "StrType": "St.", "PostDir": "",
        "AptType": None, "City": "Anytown", "State": "FL", "Zip": "34786", "Z4": "",
        "CNTY": "", "Deliverable": True, "ValDate": "5/1/2025",
    },
    "trace": "c31c2d88-2d57-4dcf-ac12-f5d4e139a8871",
}  # fmt: skip


# -- reverse phone: requests and answers ---------------------------------------------------


def test_reverse_phone_request_is_the_documented_post() -> None:
    request = reverse_phone().request(["2125550123"], "req-1")
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}/v3/lookup/phone"
    assert json.loads(request.content) == {"Phone": "2125550123"}
    assert request.headers["x-api-key"] == SECRET
    assert request.headers["x-request-id"] == "req-1"
    assert SECRET not in repr(reverse_phone())


def test_reverse_phone_reads_the_documented_sample() -> None:
    reply = reverse_phone().parse(answered(200, DOCUMENTED), ["2125550123"])
    assert reply.statuses == ["hit"] and reply.credits == [1] and reply.error_list() == [None]
    answer = reply.answers[0]
    assert isinstance(answer, dict)
    assert answer["LName"] == "Smith" and answer["FName"] == "Tom" and answer["MName"] is None
    assert answer["Street"] == "Main" and answer["StrType"] == "St." and answer["Zip"] == "34786"
    assert answer["Deliverable"] is True and answer["ValDate"] == "5/1/2025"
    assert answer["trace"] == DOCUMENTED["trace"]
    assert answer["PreDir"] is None and answer["AptType"] is None  # blank is null


def test_reverse_phone_no_match_and_too_many_results() -> None:
    provider = reverse_phone(credits_per_no_match=1)
    none = provider.parse(httpx.Response(204), ["2125550123"])
    assert (none.statuses, none.credits, none.error_list()) == (["no_match"], [1], [None])
    body = {"message": "Too many results. Please refine your search criteria"}
    many = provider.parse(answered(440, body), ["2125550123"])
    assert many.statuses == ["no_match"] and many.credits == [1]
    (error,) = many.error_list()
    assert error is not None and "HTTP 440" in error and "too many results" in error


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, BadRequestError),
        (401, LaneStoppedError),
        (403, LaneStoppedError),
        (429, TransientError),
        (500, TransientError),
        (503, TransientError),
        (404, LaneStoppedError),  # a wrong base_url
        (405, LaneStoppedError),
        (409, TerminalError),
    ],
)
def test_reverse_phone_errors_are_classified(status: int, kind: type[Exception]) -> None:
    response = answered(status, {"message": "nope"}, **{"Retry-After": "3"})
    with pytest.raises(kind) as caught:
        reverse_phone().parse(response, ["2125550123"])
    assert f"HTTP {status}: nope" in str(caught.value)
    if isinstance(caught.value, TransientError) and status == 429:
        assert caught.value.retry_after == 3


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'"Name"'])
def test_a_200_that_is_not_a_json_object_is_transient(body: bytes) -> None:
    with pytest.raises(TransientError, match="not the JSON TDG documents"):
        reverse_phone().parse(httpx.Response(200, content=body), ["2125550123"])


@pytest.mark.parametrize("body", [{}, {"Name": "x", "trace": "t-1"}, {"Name": None, "Address": []}])
def test_a_200_with_neither_name_nor_address_is_a_paid_no_match_not_asked_again(
    body: dict[str, Any],
) -> None:
    """TDG answered (a 200, priced as a hit) with nothing: retrying would pay again."""
    reply = reverse_phone(credits_per_hit=3, credits_per_no_match=1).parse(
        answered(200, body), ["2125550123"]
    )
    assert reply.statuses == ["no_match"] and reply.credits == [3]
    assert reply.answers == [{"trace": body.get("trace")}]
    assert reply.error_list() == ["TDG reverse phone: HTTP 200 with neither Name nor Address"]


# -- a run against the emulator -----------------------------------------------------------


def _run(tmp_path: Path, emulator: Emulator, provider: str, rows: list[dict[str, str]],
         **settings: Any) -> pl.DataFrame:  # fmt: skip
    columns = sorted({name for row in rows for name in row})
    frame = pl.DataFrame({c: [row.get(c, "") for row in rows] for c in columns})
    frame.write_csv(tmp_path / "in.csv")
    config = parse_config(
        {
            "input": {"path": str(tmp_path / "in.csv"), "phone_column": "phone"},
            "output": {"path": str(tmp_path / "out.csv")},
            "run": {"state_dir": str(tmp_path / "state")},
            "providers": {
                provider: {
                    "base_url": emulator.base_url(provider),
                    "requests_per_minute": 60_000,
                    **settings,
                }
            },
        },
        "test",
    )
    summary = run(config)
    assert summary.exit_code == 0
    return pl.read_csv(tmp_path / "out.csv", infer_schema=False)


def test_a_run_keeps_tdg_trace_and_never_shows_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    knobs = ProviderKnobs(latency_ms=0, rate_limit=None, keys={SECRET: None})
    monkeypatch.setenv("TDG_API_KEY", SECRET)
    with Emulator({"tdg_reverse_phone": knobs}) as emulator:
        out = _run(tmp_path, emulator, "tdg_reverse_phone",
                   [{"phone": "212-423-3757"}, {"phone": "212-422-5838"}])  # fmt: skip
        state = emulator.state("tdg_reverse_phone")
    traces = out["tdg_trace"].to_list()
    assert all(t is not None and uuid.UUID(t) for t in traces) and len(set(traces)) == 2
    assert SECRET not in json.dumps(state)
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert re.fullmatch(r"key:[0-9a-f]{8}", next(iter(state["charged"])))


# -- ID verify -----------------------------------------------------------------------------


def id_verify(**settings: Any) -> TdgIdVerify:
    return TdgIdVerify(TdgIdVerifySettings(base_url=BASE, **settings), SECRET)


def test_id_verify_sends_only_the_fields_a_row_has() -> None:
    key = json.dumps({"FName": "Ada", "LName": None, "Address1": None, "Zip": "10001",
                      "Phone": "2124233757", "Email": None})  # fmt: skip
    request = id_verify().request([key], "req-2")
    assert str(request.url) == f"{BASE}/v2/verify/id"
    assert json.loads(request.content) == {"FName": "Ada", "Zip": "10001", "Phone": "2124233757"}
    assert request.headers["x-api-key"] == SECRET and SECRET not in repr(id_verify())


def test_id_verify_lookups_map_columns_and_read_same_named_ones() -> None:
    frame = pl.LazyFrame(
        {
            "surname": ["Lovelace", "Hopper", None],
            "FName": ["Ada", "", "Alan"],  # not mapped: read from its own name
            "zip": ["10001-2345", "1234", None],
            "phone_normalized": ["2124233757", "2124225838", None],
            "phone_valid": [True, True, False],
        }
    )
    asked = id_verify(columns={"LName": "surname", "Zip": "zip"}).lookups(frame)
    assert asked.refused is not None and asked.carry is None
    planned = frame.select(key=asked.key, refused=asked.refused).collect().to_dicts()
    first = json.loads(planned[0]["key"])
    assert first == {"FName": "Ada", "LName": "Lovelace", "Address1": None, "Zip": "10001",
                     "Phone": "2124233757", "Email": None}  # fmt: skip
    assert planned[1]["key"] is None and "Zip 1234 is not a 5-digit ZIP" in planned[1]["refused"]
    assert planned[2]["key"] is None and planned[2]["refused"].endswith("this row has only FName")


def test_id_verify_a_mapped_column_the_input_lacks_is_a_clear_input_error() -> None:
    frame = pl.LazyFrame({"phone_normalized": ["2124233757"], "phone_valid": [True]})
    with pytest.raises(InputError, match=r"LName = 'surname', but the input has no column"):
        id_verify(columns={"LName": "surname"}).lookups(frame)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"Phone": "phone"}, "Phone cannot be mapped: it is always the row's normalized phone"),
        ({"FirstName": "first"}, "unknown field 'FirstName'"),
        ({"FName": " "}, "expected the name of an input column"),
    ],
)
def test_id_verify_bad_columns_are_named_in_the_config_error(
    columns: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_config(
            {
                "input": {"path": "in.csv", "phone_column": "phone"},
                "output": {"path": "out.csv"},
                "providers": {"tdg_id_verify": {"columns": columns}},
            },
            "test.toml",
        )
    assert "tdg_id_verify" in str(caught.value) and "columns" in str(caught.value)


@pytest.mark.parametrize(
    ("regions", "message"),
    [(["MX"], "regions.0' has value 'MX': Input should be 'US' or 'CA'"), ([], "at least 1")],
)
def test_reverse_phone_regions_are_checked(regions: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(
            {
                "input": {"path": "in.csv", "phone_column": "phone"},
                "output": {"path": "out.csv"},
                "providers": {"tdg_reverse_phone": {"regions": regions}},
            },
            "test.toml",
        )


def test_id_verify_types_the_documented_scores() -> None:
    documented = {  # TDG's own sample, with one odd value
        "ValidAddress": "85", "ValidPhone": "0", "ValidEmail": "", "ValidName": "100",
        "Deceased": "100", "USLocation": "", "ValidCount": "1.8", "LinkageCount": "0",
        "ValidationSummary": "FAIL", "IDVerifyScore": "76", "ValidZip": "n/a",
    }  # fmt: skip
    reply = id_verify(credits_per_call=2).parse(answered(200, {"IDScores": documented}), ["k"])
    assert reply.statuses == ["hit"] and reply.credits == [2]
    answer = reply.answers[0]
    assert isinstance(answer, dict)
    assert answer["ValidAddress"] == 85 and answer["ValidEmail"] is None
    assert answer["ValidCount"] == 1.8 and answer["ValidationSummary"] == "FAIL"
    assert answer["IDVerifyScore"] == 76 and answer["ValidZip"] is None
    assert answer["Phone2ConfidenceScore"] is None  # absent is null too
    with pytest.raises(TransientError):
        id_verify().parse(answered(200, {"Name": {}}), ["k"])
    none = id_verify(credits_per_no_match=1).parse(httpx.Response(204), ["k"])
    assert none.statuses == ["no_match"] and none.credits == [1]


# -- the adaptive pacer --------------------------------------------------------------------


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def tdg_pacer(clock: Clock, requests_per_minute: float = 600) -> Pacer:
    return Pacer(requests_per_minute, **reverse_phone().pacer_options(), clock=clock)


def exchange(pacer: Pacer, clock: Clock, *, throttled: bool = False) -> None:
    """One request 100 s later (its slot is due, even at the floor rate, so acquire never
    sleeps); then its answer or a 429."""

    async def once() -> None:
        clock.now += 100.0
        await pacer.acquire()
        pacer.release(answered=not throttled)
        if throttled:
            pacer.throttle(None)

    anyio.run(once)


def test_both_tdg_lanes_adapt_the_same_way() -> None:
    options = reverse_phone().pacer_options()
    assert options == id_verify().pacer_options() == ADAPTIVE
    assert options is not ADAPTIVE  # a copy: a lane cannot change another's


def test_a_429_cuts_the_rate_and_answers_earn_it_back_never_above_the_ceiling() -> None:
    clock = Clock()
    pacer = tdg_pacer(clock)
    ceiling = pacer.max_rate
    assert ceiling == pytest.approx(600 / 60 * 0.99)  # the configured rate is the ceiling
    exchange(pacer, clock, throttled=True)
    assert pacer.rate == pytest.approx(ceiling * ADAPTIVE["decrease"])
    exchange(pacer, clock, throttled=True)
    cut = ceiling * ADAPTIVE["decrease"] ** 2
    assert pacer.rate == pytest.approx(cut)
    seen = []
    for _ in range(2000):
        exchange(pacer, clock)
        seen.append(pacer.rate)
    step = ADAPTIVE["increase"] * ceiling
    assert seen[0] == pytest.approx(cut + step) and seen[99] == pytest.approx(cut + 100 * step)
    assert all(later >= earlier for earlier, later in pairwise(seen))
    assert max(seen) == ceiling and seen[-1] == ceiling  # back at the ceiling, never above
    back = next(i for i, rate in enumerate(seen) if rate == ceiling) + 1
    assert back == pytest.approx((ceiling - cut) / step, abs=1)  # ~950 answers, not ~10


def test_a_run_of_429s_never_takes_the_rate_below_its_floor() -> None:
    clock = Clock()
    pacer = tdg_pacer(clock)
    for _ in range(200):
        exchange(pacer, clock, throttled=True)
    assert pacer.rate == pytest.approx(0.02 * pacer.max_rate)
    assert pacer.throttled == 200


def test_429s_of_requests_already_in_flight_cut_the_rate_once() -> None:
    """Eight requests sent together hit a full window: one cut, not eight; a request sent
    after the cut that is refused again is news, and cuts again. TDG sends no Retry-After,
    so the lane pauses 0.5 s, doubling with each cut until a request is answered."""
    clock = Clock()
    pacer = tdg_pacer(clock)
    ceiling = pacer.max_rate

    async def burst(size: int) -> None:
        for _ in range(size):
            clock.now += 100.0
            await pacer.acquire()
        for _ in range(size):
            pacer.release(answered=False)
            pacer.throttle(None)

    anyio.run(burst, 8)
    assert pacer.throttled == 8
    assert pacer.rate == pytest.approx(ceiling * ADAPTIVE["decrease"])
    assert pacer.paused_until == clock.now + 0.5
    anyio.run(burst, 3)  # all three sent after the cut: the first cuts, the rest were in flight
    assert pacer.throttled == 11
    assert pacer.rate == pytest.approx(ceiling * ADAPTIVE["decrease"] ** 2)
    assert pacer.paused_until == clock.now + 1.0
    exchange(pacer, clock, throttled=True)
    assert pacer.rate == pytest.approx(ceiling * ADAPTIVE["decrease"] ** 3)
    assert pacer.paused_until == clock.now + 2.0
    exchange(pacer, clock)  # answered: the next 429 pauses 0.5 s again
    exchange(pacer, clock, throttled=True)
    assert pacer.paused_until == clock.now + 0.5


def test_a_retry_after_sets_the_pause() -> None:
    clock = Clock()
    pacer = tdg_pacer(clock)
    clock.now += 100.0
    anyio.run(pacer.acquire)
    pacer.release(answered=False)
    pacer.throttle(7.0)  # what the provider says, whatever the streak
    assert pacer.paused_until == clock.now + 7.0


def test_a_tdg_lane_slows_on_429_and_recovers_as_answers_arrive(tmp_path: Path) -> None:
    """The provider's pacer options reach its lane: three 429s, then every number answered."""
    sent: list[str] = []

    def tdg(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content)["Phone"])
        if len(sent) <= 3:
            return httpx.Response(429, json={"message": "Too Many Requests"})
        return httpx.Response(204)

    settings = TdgReversePhoneSettings(
        base_url=BASE, requests_per_minute=60_000, max_concurrency=1, max_attempts=3
    )
    provider = TdgReversePhone(settings, SECRET)
    ledger = SqliteStore(tmp_path)
    ledger.start(NewRun("run", "job", config_path=None, input_path="in", output_path="out",
                        cache_cutoff=None))  # fmt: skip
    session = Session("run", 1, {provider.name: provider.params()})
    transport = httpx.MockTransport(tdg)
    items = [(f"212423{3700 + i:04d}", i + 1) for i in range(10)]
    with Engine([provider], {provider.name: settings}, ledger, session,
                transport=transport) as engine:  # fmt: skip
        ticket = engine.submit(provider.name, items)
        engine.close_input()
        ticket.future.result(timeout=30)
        pacer = engine.lanes[provider.name].pacer
    assert ledger.lookup_counts("run", provider.name) == {"no_match": 10}
    ledger.close()
    assert len(sent) == 13 and pacer.throttled == 3
    ceiling = pacer.max_rate
    expected = ceiling * (ADAPTIVE["decrease"] ** 3 + 10 * ADAPTIVE["increase"])
    assert pacer.rate == pytest.approx(expected)  # three cuts, then ten steps back
    assert pacer.rate < ceiling
