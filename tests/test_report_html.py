"""report.html: written beside report.json at the end of every session, its charts from
the report's figures and the run log, self-contained, and safe with hostile text.
(tests/test_report_browser.py opens it in Chromium.)"""

from __future__ import annotations

import hashlib
import re
import tomllib
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path

import pytest
from report_pages import (
    HOSTILE,
    HOSTILE_PATH,
    chart,
    embedded_charts,
    full_report,
    progress_events,
    run_twice,
)

from pipeline.console import print_summary
from pipeline.errors import EXIT_OK, EXIT_STOPPED
from pipeline.progress import RunLog
from pipeline.report import InputFigures, RunReport
from pipeline.report_charts import MAX_POINTS, OUTCOMES, charts, read_log
from pipeline.report_html import html_report_or_none, render

ROOT = Path(__file__).resolve().parent.parent
CHART_JS_SHA256 = "87364cc2b2a76a6684929e7d6b80b18a897794db38400caff1fcf1791c6925d2"
"""chart.js@4.6.1's dist/chart.umd.min.js (README, Run report)."""


def test_each_session_writes_report_html_from_its_report_and_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = run_twice(tmp_path, monkeypatch)
    assert first.summary.exit_code == EXIT_STOPPED and second.summary.exit_code == EXIT_OK
    for session in (first, second):
        report, found = session.report, embedded_charts(session.page)
        assert session.summary.report is not None
        assert session.summary.html == session.summary.report.parent / "report.html"
        outcomes = chart(found, "Rows by outcome, per provider")
        assert outcomes["data"]["labels"] == ["tcpa_authority"]
        rows = report["providers"]["tcpa_authority"]["rows"]
        assert {d["label"]: d["data"] for d in outcomes["data"]["datasets"]} == {
            status: [rows[status]] for status in OUTCOMES
        }
        reasons = chart(found, "Rejected phones, by reason")
        assert dict(zip(reasons["data"]["labels"], reasons["data"]["datasets"][0]["data"],
                        strict=True)) == report["phones"]["reasons"]  # fmt: skip
        credits = {d["label"]: d["data"] for d in chart(found, "Credits per provider: spent, "
                   "estimate, budget")["data"]["datasets"]}  # fmt: skip
        charged = report["providers"]["tcpa_authority"]["credits_charged"]
        assert credits["charged"] == [charged, charged]
        requests = chart(found, "Requests sent over time")["data"]["datasets"]
        assert requests and all(len(d["data"]) >= 2 for d in requests)
    assert first.report["providers"]["tcpa_authority"]["rows"]["skipped_budget"] > 0
    budget = chart(embedded_charts(first.page), "Credits per provider: spent, estimate, budget")
    by_label = {d["label"]: d["data"] for d in budget["data"]["datasets"]}
    assert by_label["budget (max_credits)"] == [None, 100]
    print_summary(second.summary)
    assert f"  charts: {second.summary.html}\n" in capsys.readouterr().out


def test_the_charts_from_a_full_report_and_per_provider_progress() -> None:
    found = charts(full_report(), progress_events())
    titles = [c["options"]["plugins"]["title"]["text"] for c in found]
    assert titles == [
        "Rows by contact verdict", "Rows by outcome, per provider",
        "Credits per provider: spent, estimate, budget", "Rejected phones, by reason",
        "Requests sent over time", "HTTP 429 (throttled) over time", "Retries over time",
    ]  # fmt: skip
    verdicts = chart(found, "Rows by contact verdict")["data"]
    assert verdicts["labels"] == ["ok", "do_not_contact", "review", "unchecked"]
    assert verdicts["datasets"][0]["data"] == [250, 80, 40, 30]
    credits = chart(found, "Credits per provider: spent, estimate, budget")["data"]
    assert credits["labels"] == ["tcpa_authority", HOSTILE, "all providers"]
    by_label = {d["label"]: d["data"] for d in credits["datasets"]}
    assert by_label == {
        "charged": [410, 250, 660],
        "possibly charged (no answer)": [4, 4, 8],
        "estimate (at most)": [500, 300, 800],
        "budget (max_credits)": [None, None, 1000],
    }
    retries = chart(found, "Retries over time")["data"]["datasets"]
    assert sorted(d["label"] for d in retries) == sorted(["tcpa_authority", HOSTILE])
    points = retries[0]["data"]
    # five points a session, and a gap where the second session began
    assert [p["y"] for p in points] == [1, 2, 3, 4, 5, None, 1, 2, 3, 4, 5]
    assert points[0]["x"] == 0.5 and points[6]["x"] == 10.5


def test_an_old_log_draws_one_line_of_requests_and_no_429_chart() -> None:
    events = [{"time": 100.0 + i, "event": "progress", "requests": i * 3} for i in range(2000)]
    found = charts({"providers": {}}, events)
    (requests,) = found
    (line,) = requests["data"]["datasets"]
    assert line["label"] == "all providers"
    assert len(line["data"]) == MAX_POINTS
    assert line["data"][-1] == {"x": round(1999 / 60, 3), "y": 1999 * 3}
    assert requests["options"]["scales"]["x"]["title"]["text"] == "minutes since the run began"
    overnight = [{"time": 3600.0 * i, "event": "progress", "requests": i} for i in range(9)]
    (requests,) = charts({}, overnight)
    assert [p["x"] for p in requests["data"]["datasets"][0]["data"]] == list(range(9))
    assert requests["options"]["scales"]["x"]["title"]["text"] == "hours since the run began"


def test_a_torn_log_line_is_skipped(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text('{"time": 1, "event": "progress", "requests": 2}\n{"time": 2, "ev')
    assert list(read_log(log)) == [{"time": 1, "event": "progress", "requests": 2}]
    assert list(read_log(tmp_path / "missing.jsonl")) == []


def test_the_page_asks_no_other_host_for_anything() -> None:
    page = render(full_report(), progress_events())
    markup = re.sub(r"(<script[^>]*>).*?</script>", r"\1", page, flags=re.S)
    tags = re.findall(r"<[a-zA-Z][^>]*>", markup)
    assert {re.match(r"<(\w+)", tag).group(1) for tag in tags} == {  # type: ignore[union-attr]
        "html", "head", "meta", "title", "style", "body", "h1", "span", "dl", "dt", "dd",
        "table", "thead", "tbody", "tr", "th", "td", "div", "script",
    }  # fmt: skip
    assert not [tag for tag in tags if re.search(r"\b(src|href|action|srcset)\s*=", tag, re.I)]
    assert not re.search(r"@import|url\(", markup, flags=re.I)
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    assert policy is not None and policy.group(1).startswith("default-src 'none';")
    assert "'unsafe-inline'" not in policy.group(1).split("script-src")[1]
    assert "sourceMappingURL" not in page


def test_provider_and_file_text_is_escaped() -> None:
    page = render(full_report(), progress_events())
    assert len(re.findall(r"<script\b", page)) == 3  # the data block, Chart.js, ours
    assert "<img" not in page and HOSTILE not in page and HOSTILE_PATH not in page
    assert "&lt;script&gt;window.__injected = 1&lt;/script&gt;" in page  # the table
    assert "leads&quot;&gt;&lt;img src=x" in page  # the facts
    assert "\\u003cscript\\u003ewindow.__injected = 1\\u003c/script\\u003e" in page  # charts


def test_a_report_html_that_cannot_be_written_leaves_the_run_alone(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "r1"
    (run_dir / "report.html").mkdir(parents=True)  # in the way of the file
    log = RunLog(run_dir)
    report = RunReport("r1", None, datetime.now(UTC), InputFigures("in.csv"), Path("out.csv"))
    assert html_report_or_none(run_dir, report, log) is None
    (event,) = list(read_log(log.path))
    assert event["event"] == "report_html_failed" and "IsADirectoryError" in event["error"]
    assert list(run_dir.iterdir()) == [run_dir / "report.html", log.path]


def test_a_session_that_ended_before_it_began_gets_a_page_without_charts(
    tmp_path: Path,
) -> None:
    report = RunReport("r1", None, datetime.now(UTC), InputFigures("in.csv"), Path("out.csv"),
                       exit_code=2, error="in.csv: no such file")  # fmt: skip
    path = html_report_or_none(tmp_path, report, RunLog(tmp_path))
    assert path is not None
    page = path.read_text(encoding="utf-8")
    assert embedded_charts(page) == [] and "in.csv: no such file" in page


def test_the_wheel_carries_the_page_assets() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["pipeline"]
    assets = sorted(p.relative_to(ROOT / "pipeline") for p in (ROOT / "pipeline/assets").iterdir())
    assert {a.name for a in assets} >= {"chart.umd.min.js", "chart.js-LICENSE.md", "report.js",
                                        "report.css"}  # fmt: skip
    assert all(any(fnmatch(str(a), p) for p in patterns) for a in assets)
    chart_js = (ROOT / "pipeline/assets/chart.umd.min.js").read_bytes()
    assert hashlib.sha256(chart_js).hexdigest() == CHART_JS_SHA256  # as npm published it
