"""The run report in a real browser: Debian's headless Chromium (`make chromium` installs it) loads the
reports of a pipeline with a retried step and a recovery, a 1,000-child sweep with failures and a rejected
run, from disk with no network; no console errors, nothing fetched, the timeline's bars are the records'
attempts, the sweep's run-time histogram holds every ended child once, and nothing overflows sideways at
1280 px or at 390 px. Screenshots are kept as test artefacts
(their folder is printed)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from batchdrop.report.page import render_report
from tests import report_scenarios
from tests.report_scenarios import Scenario

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

pytestmark = pytest.mark.integration  # runs with the integration tests (`make test`), not with the unit tests
CHROMIUM = Path(os.environ.get("BATCHDROP_CHROMIUM", "/usr/bin/chromium"))
FLAGS = [
    "--no-sandbox",  # as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTHS = (1280, 390)
SCENARIOS = ("pipeline", "sweep", "rejected")


def _missing(what: str) -> None:
    """A browser test cannot run: in CI that is a failure; elsewhere a skip that says what to install."""
    message = f"{what}: `make chromium` installs Debian's chromium, `make setup` the dev extras (playwright)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    if not CHROMIUM.exists() and shutil.which(str(CHROMIUM)) is None:
        _missing(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright for Python is not installed")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # a fresh profile
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
            chromium_sandbox=False,
            viewport={"width": WIDTHS[0], "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report-screenshots")
    print(f"\nreport screenshots: {folder}")
    return folder


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_report_renders_in_chromium_as_its_records_say(
    name: str, browser: BrowserContext, artefacts: Path, tmp_path: Path
) -> None:
    scenario: Scenario = report_scenarios.ALL[name]()
    file = tmp_path / f"{name}.report.html"
    file.write_text(render_report(scenario.run, scenario.jobs, scenario.children, now=scenario.now))
    page = browser.new_page()
    errors: list[str] = []
    fetched: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: fetched.append(request.url))
    try:
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(file.as_uri())
            page.wait_for_load_state("load")
            sizes: dict[str, Any] = page.evaluate(
                "() => ({scroll: document.documentElement.scrollWidth, view: window.innerWidth})"
            )
            assert sizes["scroll"] <= sizes["view"], f"{name} overflows sideways at {width} px: {sizes}"
            shown = page.evaluate(
                """() => [...document.querySelectorAll('li.bar')].map(li => ({
                    label: li.querySelector('.bar-label').textContent,
                    key: li.dataset.step + ' · attempt ' + li.dataset.attempt,
                    drawn: li.querySelector('svg.track').getBoundingClientRect().width,
                    segments: li.querySelectorAll('svg.track rect').length,
                }))"""
            )
            assert sorted(bar["key"] for bar in shown) == sorted(scenario.bar_labels)  # a bar per attempt
            assert all(bar["label"].startswith(bar["key"]) for bar in shown)
            assert all(bar["drawn"] > 50 and bar["segments"] >= 1 for bar in shown)
            page.screenshot(path=str(artefacts / f"{name}-{width}px.png"), full_page=True)
        reused = page.evaluate("() => [...document.querySelectorAll('li.reused')].map(li => li.dataset.step)")
        assert reused == [ref.step for ref in scenario.run.jobs if ref.reused_from]
        drawn = page.evaluate(
            """() => [...document.querySelectorAll('g.bucket')].map(g => ({
                children: Number(g.dataset.children),
                height: g.querySelector('rect').getBoundingClientRect().height,
            }))"""
        )
        kept = {job_id: sum(children.run_times.values()) for job_id, children in scenario.children.items()}
        assert sum(bar["children"] for bar in drawn) == sum(kept.values())  # every ended child's run time, once
        assert all(bar["height"] > 0 for bar in drawn if bar["children"])
        logs = page.evaluate(
            """() => [...document.querySelectorAll('#arrays a[href*="#logsV2:"]')]
                .map(a => a.getBoundingClientRect().width)"""
        )
        # each listed failed child whose log tracking kept links it, and the link is drawn
        assert len(logs) == sum(len(children.failed_logs) for children in scenario.children.values())
        assert all(width > 0 for width in logs)
    finally:
        page.close()
    assert errors == []
    assert set(fetched) == {file.as_uri()}  # the page itself, and nothing else
