"""The HTML report's charts as data: Chart.js configurations built from report.json's
figures and the run log's progress events.

Everything a chart shows is decided here, in Python, so it can be tested without a
browser; the page only hands each configuration to Chart.js. Labels are data (drawn on
a canvas as text, never parsed as HTML).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

OUTCOMES = ("hit", "no_match", "invalid_input", "failed", "skipped_budget")
OUTCOME_COLORS = {
    "hit": "#2e7d32",
    "no_match": "#90a4ae",
    "invalid_input": "#f9a825",
    "failed": "#c62828",
    "skipped_budget": "#6a1b9a",
}
VERDICTS = ("ok", "do_not_contact", "review", "unchecked")
VERDICT_COLORS = {
    "ok": "#2e7d32",
    "do_not_contact": "#c62828",
    "review": "#f9a825",
    "unchecked": "#90a4ae",
}
PALETTE = ("#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#c62828", "#00838f", "#5d4037")
MAX_POINTS = 400
"""Points per line at most: an overnight log has thousands of progress events, and a
line of 400 points looks the same."""

Chart = dict[str, Any]


def _bar(title: str, labels: list[str], datasets: list[dict[str, Any]], **opts: Any) -> Chart:
    stacked = opts.pop("stacked", False)
    horizontal = opts.pop("horizontal", False)
    value_axis = "x" if horizontal else "y"
    scales: dict[str, Any] = {
        "x": {"stacked": stacked},
        "y": {"stacked": stacked},
    }
    scales[value_axis]["beginAtZero"] = True
    if opts.get("value_title"):
        scales[value_axis]["title"] = {"display": True, "text": opts["value_title"]}
    return {
        "type": "bar",
        "data": {"labels": labels, "datasets": datasets},
        "options": {
            "indexAxis": "y" if horizontal else "x",
            "plugins": {"title": {"display": True, "text": title}},
            "scales": scales,
        },
    }


def outcomes_chart(providers: dict[str, dict[str, Any]]) -> Chart | None:
    """Per provider, its rows by outcome (this session's output)."""
    if not providers:
        return None
    names = list(providers)
    datasets = [
        {
            "label": status,
            "data": [int(providers[n].get("rows", {}).get(status, 0)) for n in names],
            "backgroundColor": OUTCOME_COLORS[status],
        }
        for status in OUTCOMES
    ]
    return _bar("Rows by outcome, per provider", names, datasets, stacked=True,
                horizontal=True, value_title="rows")  # fmt: skip


def reasons_chart(phones: dict[str, Any] | None) -> Chart | None:
    """Why phones were rejected, most frequent first."""
    reasons = (phones or {}).get("reasons") or {}
    if not reasons:
        return None
    ordered = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    dataset = {"label": "rows", "data": [c for _, c in ordered], "backgroundColor": "#ef6c00"}
    return _bar("Rejected phones, by reason", [r for r, _ in ordered], [dataset],
                horizontal=True, value_title="rows")  # fmt: skip


def credits_chart(
    providers: dict[str, dict[str, Any]], budget: dict[str, Any] | None
) -> Chart | None:
    """Credits per provider beside its estimate, and the run's total beside the budget.

    ``credits_charged`` is the request log's (the whole run); requests that got no
    answer may still have cost ``credits_possibly_charged``, stacked on top.
    """
    if not providers:
        return None
    names = list(providers)
    labels = [*names, "all providers"]
    charged = [int(providers[n].get("credits_charged", 0)) for n in names]
    possibly = [int(providers[n].get("credits_possibly_charged", 0)) for n in names]
    datasets: list[dict[str, Any]] = [
        {"label": "charged", "data": [*charged, sum(charged)], "backgroundColor": "#1565c0",
         "stack": "spent"},
        {"label": "possibly charged (no answer)", "data": [*possibly, sum(possibly)],
         "backgroundColor": "#90caf9", "stack": "spent"},
    ]  # fmt: skip
    estimates = [providers[n].get("estimated_credits") for n in names]
    if any(e is not None for e in estimates):
        known = [int(e) for e in estimates if e is not None]
        datasets.append({"label": "estimate (at most)", "data": [*estimates, sum(known)],
                         "backgroundColor": "#bdbdbd", "stack": "estimate"})  # fmt: skip
    max_credits = (budget or {}).get("max_credits")
    if max_credits is not None:
        budget_data = [None] * len(names) + [int(max_credits)]
        datasets.append({"label": "budget (max_credits)", "data": budget_data,
                         "backgroundColor": "#c62828", "stack": "budget"})  # fmt: skip
    chart = _bar("Credits per provider: spent, estimate, budget", labels, datasets,
                 value_title="credits")  # fmt: skip
    chart["options"]["scales"]["x"]["stacked"] = True
    chart["options"]["scales"]["y"]["stacked"] = True
    return chart


def verdicts_chart(verdicts: dict[str, Any] | None) -> Chart | None:
    """Rows by contact verdict, when the report has them."""
    if not verdicts:
        return None
    names = [v for v in VERDICTS if v in verdicts] + sorted(set(verdicts) - set(VERDICTS))
    return {
        "type": "doughnut",
        "data": {
            "labels": names,
            "datasets": [{
                "label": "rows",
                "data": [int(verdicts[v]) for v in names],
                "backgroundColor": [VERDICT_COLORS.get(v, "#5d4037") for v in names],
            }],
        },
        "options": {"plugins": {"title": {"display": True, "text": "Rows by contact verdict"}}},
    }  # fmt: skip


def read_log(path: Path) -> Iterator[dict[str, Any]]:
    """The run log's events; a line that is not a JSON object (torn by a kill) is skipped."""
    try:
        fh = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115
    except FileNotFoundError:
        return
    with fh:
        for line in fh:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                yield event


def _thin(points: list[Any]) -> list[Any]:
    if len(points) <= MAX_POINTS:
        return points
    step = len(points) / MAX_POINTS
    kept = [points[int(i * step)] for i in range(MAX_POINTS)]
    return [*kept[:-1], points[-1]]


def _series(events: Iterable[dict[str, Any]]) -> dict[str, dict[str, list[Any]]]:
    """{figure: {line name: [{x: seconds since the log began, y}]}}; a session's first
    progress event after the previous session's last starts a new segment (a gap)."""
    series: dict[str, dict[str, list[Any]]] = {"requests": {}, "http_429": {}, "retries": {}}
    start: float | None = None
    gap = False
    for event in events:
        name, when = event.get("event"), event.get("time")
        if not isinstance(when, int | float):
            continue
        start = when if start is None else start
        x = when - start
        if name in ("run_started", "run_resumed"):
            gap = True
            continue
        if name != "progress":
            continue
        providers = event.get("providers")
        for figure, lines in series.items():
            if isinstance(providers, dict):
                values = {p: f.get(figure) for p, f in providers.items() if isinstance(f, dict)}
            else:
                values = {"all providers": event.get(figure)}
            for line, y in values.items():
                if not isinstance(y, int | float):
                    continue
                points = lines.setdefault(str(line), [])
                if gap and points:
                    points.append({"x": x, "y": None})
                points.append({"x": x, "y": y})
        gap = False
    return series


def _time_unit(series: dict[str, dict[str, list[Any]]]) -> tuple[str, float]:
    """Minutes, or hours for a run longer than three hours (an overnight run)."""
    span = max((p["x"] for lines in series.values() for ps in lines.values() for p in ps),
               default=0.0)  # fmt: skip
    return ("hours", 3600.0) if span > 3 * 3600 else ("minutes", 60.0)


def over_time_charts(events: Iterable[dict[str, Any]]) -> list[Chart]:
    """Requests, 429s and retries over time, one line per provider (or one for all
    providers from a log that has only the top-level ``requests``)."""
    titles = {
        "requests": ("Requests sent over time", "requests so far"),
        "http_429": ("HTTP 429 (throttled) over time", "429s so far"),
        "retries": ("Retries over time", "retries so far"),
    }
    out = []
    series = _series(events)
    unit, seconds = _time_unit(series)
    for figure, lines in series.items():
        if not lines:
            continue
        datasets = []
        for i, (line, points) in enumerate(sorted(lines.items())):
            color = PALETTE[i % len(PALETTE)]
            data = [{"x": round(p["x"] / seconds, 3), "y": p["y"]} for p in _thin(points)]
            datasets.append({"label": line, "data": data, "borderColor": color,
                             "backgroundColor": color, "pointRadius": 0, "borderWidth": 2,
                             "spanGaps": False})  # fmt: skip
        title, axis = titles[figure]
        out.append({
            "type": "line",
            "data": {"datasets": datasets},
            "options": {
                "parsing": True,
                "plugins": {"title": {"display": True, "text": title}},
                "scales": {
                    "x": {"type": "linear", "title": {"display": True,
                          "text": f"{unit} since the run began"}},
                    "y": {"beginAtZero": True, "title": {"display": True, "text": axis}},
                },
            },
        })  # fmt: skip
    return out


def charts(report: dict[str, Any], events: Iterable[dict[str, Any]]) -> list[Chart]:
    """Every chart the report has data for, in the page's order."""
    providers = report.get("providers") or {}
    found = [
        verdicts_chart(report.get("verdicts")),
        outcomes_chart(providers),
        credits_chart(providers, report.get("budget")),
        reasons_chart(report.get("phones")),
    ]
    return [c for c in found if c is not None] + over_time_charts(events)
