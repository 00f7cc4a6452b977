"""Open a report.html in headless Chromium (Debian's ``chromium``, driven by Playwright)
and say what a person would have seen: the charts drawn, console errors, requests.

Also a command: ``python tests/browser.py REPORT.html OUT.png`` takes the README's
screenshot.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser")

# Per canvas: its size, how many pixels something was painted on, and per dataset how
# many marks (bars, points, arcs) Chart.js laid out with a finite position.
CANVAS_FIGURES = """() => Array.from(document.querySelectorAll('canvas')).map((canvas) => {
  const ctx = canvas.getContext('2d');
  const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] !== 0) painted++; }
  const chart = Chart.getChart(canvas);
  const marks = chart ? chart.data.datasets.map((_, i) => chart.getDatasetMeta(i).data.filter(
    (el) => Number.isFinite(el.x) && Number.isFinite(el.y)).length) : [];
  return {title: canvas.getAttribute('aria-label'), width: canvas.width,
          height: canvas.height, painted, marks};
})"""


def chromium() -> str | None:
    """The system's Chromium, if installed."""
    for name in CHROMIUM_NAMES:
        if found := shutil.which(name):
            return found
    return None


@dataclass
class Seen:
    canvases: list[dict[str, Any]]
    console_errors: list[str]
    outside_requests: list[str]
    """Requests for anything but the report file itself (all blocked)."""
    text: str
    rendered: str | None
    injected: Any
    screenshot: bytes = field(repr=False)


def open_report(path: Path, executable: str, width: int = 1280) -> Seen:
    """Load the page from disk with every other request blocked and counted."""
    from playwright.sync_api import sync_playwright

    page_url = path.resolve().as_uri()
    errors: list[str] = []
    outside: list[str] = []

    def route(r: Any) -> None:
        if r.request.url == page_url:
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
            page.route("**/*", route)
            page.goto(page_url, wait_until="load")
            canvases = page.evaluate(CANVAS_FIGURES)
            return Seen(
                canvases=canvases,
                console_errors=errors,
                outside_requests=outside,
                text=page.inner_text("body"),
                rendered=page.get_attribute("body", "data-charts-rendered"),
                injected=page.evaluate("() => window.__injected"),
                screenshot=page.screenshot(full_page=True),
            )
        finally:
            browser.close()


def png_size(data: bytes) -> tuple[int, int]:
    """A PNG's (width, height), from its IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


if __name__ == "__main__":
    executable = os.environ.get("CHROMIUM") or chromium()
    if executable is None:
        sys.exit("no chromium: apt-get install chromium")
    seen = open_report(Path(sys.argv[1]), executable)
    if seen.console_errors or seen.outside_requests:
        sys.exit(f"console errors {seen.console_errors}, requests {seen.outside_requests}")
    Path(sys.argv[2]).write_bytes(seen.screenshot)
    print(f"{sys.argv[2]}: {png_size(seen.screenshot)}, {len(seen.canvases)} charts")
