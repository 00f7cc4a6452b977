"""Progress while a run works, and the run's JSON-lines log: figures that move, the
start and the end, and never a key."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from enrich_helpers import EMULATOR_KEY, KEY_ENV, tcpa_config, write_leads

from pipeline.console import progress_line
from pipeline.emulators.server import Emulator
from pipeline.emulators.state import ProviderKnobs
from pipeline.progress import (
    LaneProgress,
    Progress,
    RateMeter,
    RowCount,
    count_rows,
    estimate_rows,
    eta,
    projected,
    slowest,
)
from pipeline.run import run

SECRET = "progress-secret-key-42"


def test_progress_and_log_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    knobs = ProviderKnobs(latency_ms=30, rate_limit=None, keys={SECRET: None})
    phones = [(f"{212 + i % 5}{480 + i % 7}{i:04d}"[:10], "2019-06-01") for i in range(60)]
    source = write_leads(tmp_path / "in.csv", phones)
    seen: list[Progress] = []
    with Emulator({"tcpa_authority": knobs}) as emulator:
        monkeypatch.setenv(KEY_ENV, SECRET)
        config = tcpa_config(tmp_path, emulator, source, batch_size=2, max_concurrency=1)
        summary = run(config, on_progress=seen.append, progress_every_s=0.05)
    assert summary.exit_code == 0
    assert len(seen) >= 3
    assert [p.requests for p in seen] == sorted(p.requests for p in seen)
    assert seen[-1].requests > seen[0].requests
    assert all(p.rows_total == 60 for p in seen)
    assert summary.report is not None
    log_text = (summary.report.parent / "log.jsonl").read_text()
    assert SECRET not in log_text
    events = [json.loads(line) for line in log_text.splitlines()]
    assert events[0]["event"] == "run_started" and events[0]["providers"] == ["tcpa_authority"]
    assert events[-1]["event"] == "run_ended" and events[-1]["exit_code"] == 0
    assert events[-1]["credits"] == 60
    progress = [e for e in events if e["event"] == "progress"]
    assert len(progress) >= 3 and {"rows", "requests", "credits", "failed", "eta_s"} <= set(
        progress[0]
    )
    lanes = [e["providers"]["tcpa_authority"] for e in progress]
    assert {"done", "total", "requests", "retries", "http_429", "credits", "rate_per_s"} <= set(
        lanes[0]
    )
    assert [lane["done"] for lane in lanes] == sorted(lane["done"] for lane in lanes)
    # 60 rows, every phone distinct: 60 lookups; the last frame is the whole of them.
    assert lanes[-1]["done"] == lanes[-1]["total"] == 60 and progress[-1]["rows"] == 60
    assert seen[-1].share == 1.0 and seen[-1].eta_s == 0.0
    # Every lookup bought, one credit each: the estimate is the whole input's 60.
    assert seen[-1].estimated_credits == 60 and progress[-1]["estimated_credits"] == 60


def test_eta_from_each_lane_rate_the_slowest_decides() -> None:
    now = [0.0]
    meter = RateMeter(window_s=60.0, min_span_s=3.0, clock=lambda: now[0])
    assert meter.rate("a", 0) is None  # one sample: no rate yet
    now[0] = 2.0
    assert meter.rate("a", 20) is None  # too short a span to say
    now[0] = 10.0
    rate = meter.rate("a", 100)
    assert rate == pytest.approx(10.0)
    assert eta(100, 1_000, rate) == pytest.approx(90.0)
    assert eta(1_000, 1_000, None) == 0.0  # done needs no rate
    assert eta(10, None, 5.0) is None and eta(10, 20, None) is None
    assert slowest([90.0, 30.0, 0.0]) == 90.0
    assert slowest([90.0, None]) is None  # a lane with work left and no rate yet
    # The window forgets old samples: the rate follows the last minute only.
    for second in range(11, 200):
        now[0] = float(second)
        rate = meter.rate("a", 100 + (second - 10) * 2)
    assert rate == pytest.approx(2.0)


def test_lookups_of_the_whole_input_are_projected_from_the_rows_planned() -> None:
    assert projected(keys=400, rows_planned=1_000, rows_total=10_000, read_done=False) == 4_000
    assert projected(keys=400, rows_planned=1_000, rows_total=None, read_done=False) is None
    assert projected(keys=4_123, rows_planned=10_000, rows_total=9_000, read_done=True) == 4_123
    assert projected(keys=0, rows_planned=0, rows_total=10, read_done=False) is None


def test_the_progress_line_fits_the_terminal_and_leaves_whole_parts_out() -> None:
    lanes = {
        name: LaneProgress(done=1_234, total=200_000, requests=99, http_429=2, rate_per_s=16.5)
        for name in (
            "phone_enrichment", "tcpa_authority", "checkthatphone", "tdg_reverse_phone",
            "tdg_id_verify",
        )
    }  # fmt: skip
    frame = Progress(
        rows=100_000, elapsed_s=3_700, rows_total=204_454, rows_exact=True, providers=lanes,
        eta_s=5_000, credits=12_345, max_credits=50_000, estimated_credits=41_000,
    )  # fmt: skip
    for width in (40, 79, 120, 400):
        line = progress_line(frame, width)
        assert len(line) <= width
        assert line.startswith("  1% ETA 1:23:20 (1:01:40 elapsed)")
        assert " | " not in line or line.split(" | ")[-1] in line  # whole parts only
    wide = progress_line(frame, 400)
    assert "tcpa 1,234/200,000 16.5/s 429x2" in wide and "rows 100,000/204,454" in wide
    assert "12,345/50,000 credits (session est. 41,000)" in wide
    assert "rows" not in progress_line(frame, 79)  # lanes before rows


def test_the_exact_row_count_of_a_csv(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text('id,note\n1,"two\nlines"\n2,plain\n3,"x"\n')
    assert count_rows(path, "csv") == 3  # a quoted line end is not a row


def test_a_run_that_only_normalizes_does_not_read_the_file_twice(tmp_path: Path) -> None:
    """Without lookups the read is the run: the row count is the estimate until every
    row is read, then the rows read (no background count beside the read)."""
    path = tmp_path / "big.csv"
    path.write_text("id,phone\n" + "".join(f"{i:06d},2125550123\n" for i in range(200_000)))
    rows = RowCount(path, "csv", count=False)
    time.sleep(0.2)
    assert not rows.exact and rows.value is not None and abs(rows.value - 200_000) < 2_000
    rows.read_all(200_000)
    assert rows.exact and rows.value == 200_000
    counted = RowCount(path, "csv")
    for _ in range(100):
        if counted.exact:
            break
        time.sleep(0.05)
    assert counted.exact and counted.value == 200_000


def test_rows_of_a_large_csv_are_estimated_from_its_first_mebibyte(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("id,phone\n" + "".join(f"{i:06d},2125550123\n" for i in range(200_000)))
    guess = estimate_rows(path, "csv")
    assert guess is not None and abs(guess - 200_000) < 2_000
    small = tmp_path / "small.csv"
    small.write_text("id,phone\n1,2\n2,3\n")
    assert estimate_rows(small, "csv") == 2


def test_the_eta_is_there_early_and_roughly_right_on_a_steady_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fixed latency, one request at a time: a steady lane. From 20% of the lookups on, the
    ETA is within wide bounds of the time that was really left (the tight figures belong
    to a benchmark: this machine is shared)."""
    knobs = ProviderKnobs(latency_ms=150, rate_limit=None, keys={SECRET: None})
    phones = [(f"212{480 + i // 1000}{i % 1000:04d}", "2019-06-01") for i in range(200)]
    source = write_leads(tmp_path / "in.csv", phones)
    frames: list[tuple[float, Progress]] = []
    with Emulator({"tcpa_authority": knobs}) as emulator:
        monkeypatch.setenv(KEY_ENV, SECRET)
        config = tcpa_config(tmp_path, emulator, source, batch_size=5, max_concurrency=1)
        summary = run(
            config,
            on_progress=lambda p: frames.append((time.monotonic(), p)),
            progress_every_s=0.25,
        )
    ended = time.monotonic()
    assert summary.exit_code == 0
    lanes = [p.providers["tcpa_authority"] for _, p in frames]
    assert all(lane.total == 200 for lane in lanes)  # a small file: its rows are exact
    assert lanes[-1].done == 200 and frames[-1][1].share == 1.0
    timed = [(at, p) for at, p in frames if p.eta_s is not None and p.eta_s > 0]
    first_at = frames[0][0] - frames[0][1].elapsed_s  # the run's start
    assert timed and timed[0][0] - first_at < 5.0  # an ETA within seconds of the start
    checked = 0
    for at, p in timed:
        if p.share is not None and p.share >= 0.2 and ended - at > 1.0:
            left = ended - at
            assert p.eta_s is not None and 0.4 * left <= p.eta_s <= 2.5 * left, (p.share, left)
            checked += 1
    assert checked >= 3


def test_the_report_gives_each_provider_its_lookups_and_estimated_credits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    phones = [(f"212{480 + i // 1000}{i % 1000:04d}", "2019-06-01") for i in range(30)]
    phones += phones[:10]  # duplicates: one lookup each, bought once
    source = write_leads(tmp_path / "in.csv", phones)
    with Emulator({"tcpa_authority": ProviderKnobs(latency_ms=0, rate_limit=None)}) as em:
        monkeypatch.setenv(KEY_ENV, EMULATOR_KEY)
        first = run(tcpa_config(tmp_path, em, source))
        again = run(tcpa_config(tmp_path, em, source, output="again.csv"))
    assert first.providers["tcpa_authority"]["lookups_total"] == 30
    assert first.providers["tcpa_authority"]["estimated_credits"] == 30  # 1 credit a number
    # A new run of another output: every lookup answered by the cache, none to buy.
    assert again.providers["tcpa_authority"]["lookups_total"] == 30
    assert again.providers["tcpa_authority"]["estimated_credits"] == 0
