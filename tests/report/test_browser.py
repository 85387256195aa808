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


@pytest.fixture(scope="module")
def big_page(big_run, browser, tmp_path_factory):
    """The big run's report open at 1280 px wide, every chart drawn."""
    html = build_report(big_run, html=tmp_path_factory.mktemp("big") / "r.html").html
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(html.resolve().as_uri())
    page.wait_for_selector("body[data-charts-ready=true]", timeout=60_000)
    yield page
    page.close()
    assert not errors


def test_overview_ends_within_first_screen(big_page):
    """On a 200-tensor run the overview ends within 1,000 px of the top at 1280 px wide (the next section's chart fits the first two screens)."""
    bottom = big_page.eval_on_selector("#overview", "e => e.getBoundingClientRect().bottom + window.scrollY")
    assert bottom <= 1000, f"the overview ends at {bottom:.0f}px"


def test_filter_box_hides_rows(big_page):
    """Typing in the statistics table's filter box leaves only the rows holding that text, and says how many."""
    box = big_page.query_selector("#stats input.wr-filter")
    box.fill("layer4.1")
    visible = big_page.eval_on_selector_all("#stats table.wr-stats tbody tr:not([hidden]) td.name",
                                            "cells => cells.map(c => c.textContent)")
    assert len(visible) == 6 * 2 and all(v.startswith("layer4.1.") for v in visible)
    total = big_page.eval_on_selector_all("#stats table.wr-stats tbody tr", "rows => rows.length")
    assert big_page.inner_text("#stats .wr-filter-count") == f"12 of {total} rows"
    box.fill("")
    assert big_page.eval_on_selector_all("#stats table.wr-stats tbody tr[hidden]", "rows => rows.length") == 0


def test_structure_filter_shows_full_paths(big_page):
    """Filtered, the structure table shows each module's full path instead of its indented last name."""
    big_page.fill("#structure input.wr-filter", "layer2.3.bn")
    shown = big_page.eval_on_selector_all("#structure tbody tr:not([hidden]) td.name", "cells => cells.map(c => c.innerText)")
    assert shown == ["layer2.3.bn1", "layer2.3.bn2", "layer2.3.bn3"]
    big_page.fill("#structure input.wr-filter", "")


def test_group_link_selects_the_layer(big_page):
    """Clicking a grouped finding's named layer selects it in the section its chart is in."""
    link = big_page.query_selector_all('#overview tr[data-code="dead_units"][data-severity="warning"] a.wr-layer-link')[1]
    layer = link.get_attribute("data-layer")
    link.click()
    assert big_page.eval_on_selector('select.wr-layer[data-section="activations"]', "s => s.value") == layer
