"""Progress while a run works, and the run's JSON-lines log: figures that move, the
start and the end, and never a key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from enrich_helpers import KEY_ENV, tcpa_config, write_leads

from pipeline.emulators.server import Emulator
from pipeline.emulators.state import ProviderKnobs
from pipeline.progress import Progress, estimate_rows
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


def test_eta_from_the_rate_so_far() -> None:
    halfway = Progress(rows=500, elapsed_s=10.0, rows_total=1_000)
    assert halfway.eta_s == pytest.approx(10.0)
    assert Progress(rows=0, elapsed_s=1.0, rows_total=10).eta_s is None


def test_rows_of_a_large_csv_are_estimated_from_its_first_mebibyte(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("id,phone\n" + "".join(f"{i:06d},2125550123\n" for i in range(200_000)))
    guess = estimate_rows(path, "csv")
    assert guess is not None and abs(guess - 200_000) < 2_000
    small = tmp_path / "small.csv"
    small.write_text("id,phone\n1,2\n2,3\n")
    assert estimate_rows(small, "csv") == 2
