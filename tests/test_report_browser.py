"""report.html in a real browser (headless Chromium): every chart drawn, no console
error, no request for anything but the file itself, hostile text shown as text.

Never skipped: ``make test`` installs Debian's ``chromium`` when it is missing, and
without it these tests fail, saying so.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import Seen, chromium, open_report, png_size
from report_pages import HOSTILE, HOSTILE_PATH, run_twice, write_full_page

EXECUTABLE = chromium()


@pytest.fixture(autouse=True)
def _browser_present() -> None:
    assert EXECUTABLE is not None, "no chromium: `make test` installs it (apt-get install chromium)"


def _look(path: Path, tmp_path: Path) -> Seen:
    assert EXECUTABLE is not None, "no chromium: apt-get install chromium"
    seen = open_report(path, EXECUTABLE)
    (tmp_path / f"{path.stem}.png").write_bytes(seen.screenshot)
    return seen


def _assert_drawn(seen: Seen, titles: list[str]) -> None:
    assert seen.console_errors == []
    assert seen.outside_requests == []
    assert seen.rendered == str(len(titles))
    assert [c["title"] for c in seen.canvases] == titles
    for canvas in seen.canvases:
        area = canvas["width"] * canvas["height"]
        assert area > 100_000, canvas
        assert canvas["painted"] > area // 50, canvas  # bars, lines, axes: not a blank box
        assert sum(canvas["marks"]) > 0, canvas
    width, height = png_size(seen.screenshot)
    assert width == 1280 and height > 900  # the full page, the charts below the table


def test_a_real_runs_report_renders_in_chromium(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, second = run_twice(tmp_path, monkeypatch)
    assert second.summary.html is not None
    seen = _look(second.summary.html, tmp_path)
    _assert_drawn(seen, [
        "Rows by outcome, per provider", "Credits per provider: spent, estimate, budget",
        "Rejected phones, by reason", "Requests sent over time",
        "HTTP 429 (throttled) over time", "Retries over time",
    ])  # fmt: skip
    assert second.summary.run_id in seen.text


def test_every_chart_renders_and_hostile_text_stays_text(tmp_path: Path) -> None:
    seen = _look(write_full_page(tmp_path / "report.html"), tmp_path)
    _assert_drawn(seen, [
        "Rows by contact verdict", "Rows by outcome, per provider",
        "Credits per provider: spent, estimate, budget", "Rejected phones, by reason",
        "Requests sent over time", "HTTP 429 (throttled) over time", "Retries over time",
    ])  # fmt: skip
    assert seen.injected is None  # neither the <script> nor the onerror ran
    assert HOSTILE in seen.text and HOSTILE_PATH in seen.text
