"""A real headless Chromium opens the report from file:// and draws every chart offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from weightreport.report.build import build_report

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-dev-shm-usage"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium through playwright (never downloaded: the system binary)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.mark.parametrize("which", ["tiny_run", "xss_run"])
def test_charts_drawn_offline(which, request, browser, tmp_path):
    """Every chart container holds an SVG, the console has no errors, and nothing is fetched."""
    html = build_report(request.getfixturevalue(which), html=tmp_path / "r.html").html
    page = browser.new_page()
    errors, requests, dialogs = [], [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(html.resolve().as_uri())
    page.wait_for_selector("body[data-charts-ready=true]", timeout=30_000)
    containers = page.query_selector_all("div.wr-chart")
    assert containers
    for el in containers:
        assert el.query_selector("svg") is not None, el.get_attribute("id")
    select = page.query_selector("section#distributions select.wr-layer")
    values = [o.get_attribute("value") for o in select.query_selector_all("option")]
    select.select_option(values[-1])
    page.wait_for_timeout(200)
    assert not errors
    assert not requests
    assert not dialogs
    assert page.query_selector("img[src=x]") is None
    page.close()


@pytest.mark.parametrize("width", [1280, 1024, 800])
def test_page_never_scrolls_sideways(width, tiny_run, browser, tmp_path):
    """Wide charts and tables scroll in their own boxes; the page itself fits the window."""
    html = build_report(tiny_run, html=tmp_path / "r.html").html
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(html.resolve().as_uri())
    page.wait_for_selector("body[data-charts-ready=true]", timeout=30_000)
    scroll, client = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    page.close()
    assert scroll <= client, f"the page is {scroll - client}px wider than a {width}px window"
