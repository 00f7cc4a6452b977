"""``runs/<run_id>/report.html``: report.json and the run log as one page of charts.

One self-contained file, so it can be mailed or opened from disk with no network:
the charting library (Chart.js, vendored in ``pipeline/assets``), the page's script and
its CSS are inlined; nothing is fetched from any host. Provider names, file paths and
errors are untrusted text: they reach the page HTML-escaped, or as JSON inside a
``<script type="application/json">`` block with ``<``, ``>`` and ``&`` escaped, and the
charts draw them on a canvas as text.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from pipeline.progress import RunLog
from pipeline.report import RunReport
from pipeline.report_charts import OUTCOMES, charts, read_log

ASSETS = resources.files("pipeline") / "assets"
SOURCE_MAP = re.compile(r"^//# sourceMappingURL=.*$", re.M)


def _asset(name: str) -> str:
    text = (ASSETS / name).read_text(encoding="utf-8")
    # DevTools would look for the map beside the page; the page carries no map.
    return SOURCE_MAP.sub("", text)


def _script_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def _json_for_script(data: Any) -> str:
    """JSON that cannot end its ``<script>`` block or open a comment in it."""
    text = json.dumps(data, allow_nan=False, default=str)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _facts(report: dict[str, Any]) -> list[tuple[str, object]]:
    budget = report.get("budget") or {}
    facts: list[tuple[str, object]] = [
        ("run", report.get("run_id")),
        ("session", report.get("session")),
        ("config", report.get("config")),
        ("input", (report.get("input") or {}).get("path")),
        ("output", (report.get("output") or {}).get("path")),
        ("started", report.get("started_at")),
        ("finished", report.get("finished_at")),
        ("duration (this session)", _duration(report.get("duration_s"))),
        ("exit code", report.get("exit_code")),
        ("rows", _count(report.get("rows"))),
        ("credits in the rows", _count(report.get("credits_total"))),
    ]
    if budget.get("max_credits") is not None:
        facts.append(
            ("budget", f"{budget['max_credits']:,} credits ({budget.get('from')}), "
                       f"{budget.get('spent', 0):,} spent by the run")
        )  # fmt: skip
    if report.get("error"):
        facts.append(("error", report["error"]))
    return [(k, v) for k, v in facts if v is not None]


def _count(value: object) -> str | None:
    return f"{value:,}" if isinstance(value, int) else None


def _duration(seconds: object) -> str | None:
    if not isinstance(seconds, int | float):
        return None
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _providers_table(providers: dict[str, dict[str, Any]]) -> str:
    if not providers:
        return ""
    head = ["provider", *OUTCOMES, "requests", "retries", "429s", "credits", "stopped"]
    rows = []
    for name, figures in providers.items():
        by_status = figures.get("rows") or {}
        cells = [
            name, *(f"{by_status.get(s, 0):,}" for s in OUTCOMES),
            f"{figures.get('requests', 0):,}", f"{figures.get('retries', 0):,}",
            f"{figures.get('http_429', 0):,}", f"{figures.get('credits_charged', 0):,}",
            figures.get("stopped") or "",
        ]  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
    header = "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"
    return f"<table class=providers><thead>{header}</thead><tbody>{''.join(rows)}</tbody></table>"


def render(report: dict[str, Any], events: Iterable[dict[str, Any]]) -> str:
    """The page for one report.json (as a dict) and its run's log events."""
    facts = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in _facts(report))
    found = charts(report, events)
    note = "" if found else "<p class=note>No figures: the session ended before it began.</p>"
    scripts = [_asset("chart.umd.min.js"), _asset("report.js")]
    # Only these two scripts may run, and the page may fetch nothing from anywhere.
    policy = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src {' '.join(_script_hash(s) for s in scripts)}"
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{policy}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>phone-enrich run {_e(report.get("run_id"))}</title>
<style>{_asset("report.css")}</style>
</head>
<body>
<h1>phone-enrich run <span class=run-id>{_e(report.get("run_id"))}</span></h1>
<dl class=facts>{facts}</dl>
{_providers_table(report.get("providers") or {})}
{note}
<div id="charts" class="charts"></div>
<script type="application/json" id="report-charts">{_json_for_script(found)}</script>
<script>{scripts[0]}</script>
<script>{scripts[1]}</script>
</body>
</html>
"""


def write_html_report(run_dir: Path, report: RunReport) -> Path:
    """Write report.html (atomically) beside report.json and return its path."""
    events = read_log(run_dir / "log.jsonl")
    path = run_dir / "report.html"
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(render(report.as_dict(), events), encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def html_report_or_none(run_dir: Path, report: RunReport, log: RunLog) -> Path | None:
    """report.html, or None when it cannot be written.

    The page is a view of report.json and the log, which hold every figure it shows:
    a disk too full for it, or a figure it cannot draw, must not change how the run
    ended. Why it is missing goes to the run log.
    """
    try:
        return write_html_report(run_dir, report)
    except Exception as exc:  # a view only: the run's outcome stands
        log.event("report_html_failed", error=f"{type(exc).__name__}: {exc}")
        return None
