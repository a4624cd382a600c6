"""The HTML report in a real headless Chromium (Debian's ``chromium``, driven by Playwright for Python): no console
errors, the right number of nodes, edges and bars, details on click, times on hover, and a 2,000-item run ready in
under 2 s. Screenshots go to the test's tmp path, and to ``.ci-artifacts/`` when ``CI`` is set.

Without a browser the tests skip locally and FAIL in CI (``.ci/run`` installs Chromium).
"""

from __future__ import annotations

from collections.abc import Iterator
import os
from pathlib import Path
import shutil
from typing import Any

from plugin_helpers import lean_inner_runs
import pytest
from report_helpers import known_report
from report_helpers import large_report

from pytest_orchestrator.reporting.report import write_report


CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / ".ci-artifacts"
READY = "window.__orchestrateReport && window.__orchestrateReport.ready"


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the browser tests (.ci/run installs chromium and playwright)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed")
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"no browser at {CHROMIUM}")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Page:
    """A page with the report loaded, and the console errors and page errors it produced."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.page = browser.new_page(viewport={"width": 1600, "height": 1100})
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(path.as_uri())
        self.page.wait_for_function(READY)

    def count(self, selector: str) -> int:
        return int(self.page.locator(selector).count())

    def shot(self, path: Path) -> None:
        self.page.screenshot(path=str(path), full_page=True)
        if os.environ.get("CI"):
            ARTIFACTS.mkdir(exist_ok=True)
            shutil.copy(path, ARTIFACTS / path.name)


def test_known_run_draws_every_node_edge_and_attempt(browser: Any, tmp_path: Path) -> None:
    report = known_report()
    page = Page(browser, write_report(report, tmp_path / "known.html"))
    assert page.count("#dag g.node") == 7
    assert page.count("#dag path.edge") == 7
    assert page.count("#gantt rect.bar") == 7  # one bar per timed attempt; retries are bars of their own
    assert page.count("#gantt rect.bar.retry") == 2  # unit #1 and integration #1
    assert page.count("#gantt .skipmark") == 2  # package and publish, skipped because of integration
    assert page.count("#gantt .tomark") == 1  # lint timed out
    assert page.count("#dag g.node.crit") == len(report["critical_path"]) == 4
    assert page.count("#dag path.edge.crit") == 3
    assert page.count("#dag g.cluster") == 3  # the stages build, test, deploy
    page.shot(tmp_path / "report-known.png")
    assert page.errors == []


def test_clicking_a_node_shows_its_details(browser: Any, tmp_path: Path) -> None:
    report = known_report()
    ids = [i["id"] for i in report["items"]]
    page = Page(browser, write_report(report, tmp_path / "known.html"))
    details = page.page.locator("#details-body")

    page.page.click(f'#dag g.node[data-i="{ids.index("integration")}"]')
    assert "ConnectionError: db down" in details.inner_text()
    assert details.locator("table tr").count() == 1 + 2 * 2  # header, then each attempt and its error
    assert page.count("#dag g.node.sel") == 1 and page.count("#gantt rect.bar.sel") == 2

    page.page.click(f'#dag g.node[data-i="{ids.index("publish")}"]')
    text = details.inner_text()
    assert "dependency 'package' was skipped" in text and "ROOT CAUSE" in text.upper() and "integration" in text

    page.page.click(f'#dag g.node[data-i="{ids.index("build")}"]')
    assert "compiled 12 modules" in details.inner_text()  # the output tail
    page.shot(tmp_path / "report-details.png")
    assert page.errors == []


def test_hovering_a_bar_shows_its_times(browser: Any, tmp_path: Path) -> None:
    page = Page(browser, write_report(known_report(), tmp_path / "known.html"))
    page.page.hover("#gantt rect.bar.retry >> nth=0")
    tip = page.page.locator("#tip")
    assert tip.is_visible()
    assert "attempt 1 of 2" in tip.inner_text() and "→" in tip.inner_text()
    assert page.errors == []


def test_a_2000_item_run_is_ready_and_interactive_within_2_seconds(browser: Any, tmp_path: Path) -> None:
    report = large_report(2000)
    page = Page(browser, write_report(report, tmp_path / "large.html"))
    # from the start of navigation to the page's script having run (parsing, layout of the SVG, wiring)
    ready_ms = page.page.evaluate("window.__orchestrateReport.renderedAt")
    assert page.count("#dag g.node") == 2000
    timed = sum(1 for i in report["items"] for a in i["attempts"] if a["start"] is not None)
    assert page.count("#gantt rect.bar") == timed
    click_ms = page.page.evaluate(
        """() => { const t = performance.now();
                   const node = document.querySelector('#dag g.node[data-i="1500"]');
                   node.dispatchEvent(new MouseEvent('click', {bubbles: true}));
                   document.body.getBoundingClientRect();
                   return performance.now() - t; }"""
    )
    assert report["items"][1500]["name"] in page.page.locator("#details-body").inner_text()
    page.shot(tmp_path / "report-large.png")
    assert page.errors == []
    assert ready_ms < 2000, f"the 2,000-item report took {ready_ms:.0f} ms to be ready"
    assert ready_ms + click_ms < 2000, f"ready in {ready_ms:.0f} ms, then a click took {click_ms:.0f} ms"


REAL_SUITE = """
import time
import pytest

N = []

def test_build():
    time.sleep(0.2)

@pytest.mark.depends("test_build")
def test_broken():
    assert False, "disk full"

@pytest.mark.depends("test_broken")
def test_deploy():
    pass

@pytest.mark.retry(max_attempts=2, initial_delay=0)
def test_flaky():
    N.append(1)
    assert len(N) >= 2
"""


def test_a_real_pytest_session_report(
    browser: Any, pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page of ``pytest --orchestrate --orchestrate-report x.html``: every item, its attempts, its details."""
    lean_inner_runs(monkeypatch)
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_real=REAL_SUITE)
    result = pytester.runpytest_subprocess(
        "--orchestrate", "-p", "no:cacheprovider", "-p", "no:randomly", "--orchestrate-report", "session.html"
    )
    assert result.ret == 1
    page = Page(browser, pytester.path / "session.html")
    assert page.count("#dag g.node") == 4
    assert page.count("#dag path.edge") == 2
    assert page.count("#gantt rect.bar") == 4  # build, broken, flaky twice
    assert page.count("#gantt rect.bar.retry") == 1
    assert page.count("#gantt .skipmark") == 1  # deploy, skipped because broken failed
    page.page.click("#dag g.node[data-i='1']")
    assert "disk full" in page.page.locator("#details-body").inner_text()
    page.shot(tmp_path / "report-pytest-session.png")
    assert page.errors == []
