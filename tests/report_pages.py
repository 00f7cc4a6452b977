"""Report pages for the report.html tests: one from a real run against the emulator
(budget stop, throttling, a resume), and one built from a report.json with every
figure the page can draw and untrusted text where text can go."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from enrich_helpers import EMULATOR_KEY, KEY_ENV, tcpa_config, write_leads

from pipeline.emulators.server import Emulator
from pipeline.emulators.state import ProviderKnobs
from pipeline.report_html import render
from pipeline.run import run
from pipeline.summary import RunSummary

HOSTILE = "<script>window.__injected = 1</script>"
HOSTILE_PATH = 'leads"><img src=x onerror="window.__injected = 2">.csv'


@dataclass(frozen=True)
class Session:
    summary: RunSummary
    report: dict[str, Any]
    page: str
    """report.html as this session left it (the next session of the run rewrites it)."""


def _session(summary: RunSummary) -> Session:
    assert summary.report is not None and summary.html is not None
    report = json.loads(summary.report.read_text(encoding="utf-8"))
    return Session(summary, report, summary.html.read_text(encoding="utf-8"))


def run_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Session, Session]:
    """A run stopped by its budget with 429s on the way, then resumed to the end."""
    knobs = ProviderKnobs(latency_ms=5, rate_limit=None, fail_429=0.2, seed=7)
    phones = [(f"{212 + i % 5}{480 + i % 7}{i:04d}"[:10], "2019-06-01") for i in range(240)]
    phones += [("not a phone", ""), ("", "")]
    source = write_leads(tmp_path / "in.csv", phones)
    with Emulator({"tcpa_authority": knobs}) as emulator:
        monkeypatch.setenv(KEY_ENV, EMULATOR_KEY)
        config = tcpa_config(tmp_path, emulator, source, batch_size=20, max_concurrency=2)
        capped = config.model_copy(
            update={"run": config.run.model_copy(update={"max_credits": 100})}
        )
        first = _session(run(capped, progress_every_s=0.02))
        second = _session(run(config, progress_every_s=0.02))
    return first, second


def full_report() -> dict[str, Any]:
    """A report.json with every figure the page draws (verdicts, estimates, a budget)."""
    provider = {
        "requests": 120, "retries": 9, "http_429": 7, "credits_charged": 410,
        "credits_possibly_charged": 4, "estimated_credits": 500, "stopped": None,
        "rows": {"hit": 300, "no_match": 60, "invalid_input": 12, "failed": 3,
                 "skipped_budget": 25, "not_requested": 0},
    }  # fmt: skip
    other = {**provider, "estimated_credits": 300, "credits_charged": 250}
    return {
        "run_id": "20261202T000000Z-abcdef", "session": 2, "config": "config.toml",
        "started_at": "2026-12-02T00:00:00+00:00", "finished_at": "2026-12-02T01:00:00+00:00",
        "input": {"path": HOSTILE_PATH}, "output": {"path": "out.csv"},
        "duration_s": 3600.0, "exit_code": 0, "rows": 400,
        "phones": {"valid": 360, "rejected": 40, "reasons": {"blank": 25, "too_short": 15}},
        "providers": {"tcpa_authority": provider, HOSTILE: other},
        "credits_total": 660, "budget": {"max_credits": 1000, "from": "--max-credits",
                                         "spent": 664},
        "verdicts": {"ok": 250, "do_not_contact": 80, "review": 40, "unchecked": 30},
    }  # fmt: skip


def progress_events() -> list[dict[str, Any]]:
    """Two sessions of progress events in the per-provider schema."""
    events: list[dict[str, Any]] = []
    for session, start in ((1, 0.0), (2, 600.0)):
        events.append({"time": start, "event": "run_started" if session == 1 else "run_resumed"})
        for tick in range(1, 6):
            per = {"done": tick * 10, "total": 100, "requests": tick * 12, "retries": tick,
                   "http_429": tick // 2, "credits": tick * 40, "rate_per_s": 2.0}  # fmt: skip
            events.append({
                "time": start + tick * 30, "event": "progress", "elapsed_s": tick * 30.0,
                "rows": tick * 40, "rows_total": 400, "eta_s": 60.0, "credits": tick * 80,
                "providers": {"tcpa_authority": per, HOSTILE: per},
            })  # fmt: skip
    return events


def write_full_page(path: Path) -> Path:
    path.write_text(render(full_report(), progress_events()), encoding="utf-8")
    return path


def embedded_charts(page: str) -> list[dict[str, Any]]:
    """The chart configurations a page hands to Chart.js."""
    (block,) = re.findall(r'<script type="application/json" id="report-charts">(.*?)</script>',
                          page, flags=re.S)  # fmt: skip
    charts: list[dict[str, Any]] = json.loads(block)
    return charts


def chart(charts: list[dict[str, Any]], title: str) -> dict[str, Any]:
    (found,) = [c for c in charts if c["options"]["plugins"]["title"]["text"] == title]
    return found
