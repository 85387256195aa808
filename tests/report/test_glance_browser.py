"""In a real headless Chromium, hovering a glance cell shows its numbers and clicking it selects its layer."""

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
    """One headless Chromium for the module's pages (Playwright's sync API allows one driver at a time)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


def _open(browser, html: Path):
    """``html`` drawn in a new page, with every wr-select-layer event recorded in ``window.selected``."""
    p = browser.new_page(viewport={"width": 1280, "height": 900})
    p.goto(html.resolve().as_uri())
    p.wait_for_selector("body[data-charts-ready=true]", timeout=30_000)
    p.evaluate("window.selected = []; document.addEventListener('wr-select-layer', "
               "(e) => window.selected.push(e.detail.layer))")
    return p


@pytest.fixture(scope="module")
def page(browser, tiny_run, tmp_path_factory):
    """The tiny run's report, drawn."""
    p = _open(browser, build_report(tiny_run, html=tmp_path_factory.mktemp("glance") / "r.html").html)
    yield p
    p.close()


def _mark(page, chart: int, label: str):
    """The first mark of the ``chart``-th glance chart whose ARIA label contains ``label``."""
    charts = page.query_selector_all("section#glance div.wr-chart[data-glance]")
    marks = [m for m in charts[chart].query_selector_all("path[aria-label]") if label in m.get_attribute("aria-label")]
    assert marks, label
    marks[0].scroll_into_view_if_needed()
    box = marks[0].bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def test_clicking_a_heatmap_row_selects_that_layer(page):
    """A click on a cell of fc1.weight's row dispatches wr-select-layer with "fc1.weight"."""
    page.evaluate("window.selected = []")
    page.mouse.click(*_mark(page, 0, "layer: fc1.weight;"))
    page.wait_for_timeout(200)
    assert page.evaluate("window.selected") == ["fc1.weight"]
    assert page.eval_on_selector('select.wr-layer[data-section="dynamics"]', "s => s.value") == "fc1.weight"
    outlined = page.evaluate("Array.from(document.querySelectorAll('div.wr-chart[data-glance]'))"
                             ".map((el) => window.wrViews.get(el.id).signal('glance_layer'))")
    assert outlined == ["fc1.weight"] * 6  # every whole-network chart outlines the selected row


def test_clicking_an_output_row_dispatches_the_module_name(page):
    """A module-output heatmap dispatches the module's name, as its data has it."""
    page.evaluate("window.selected = []")
    page.mouse.click(*_mark(page, 3, "layer: fc2;"))
    page.wait_for_timeout(200)
    assert page.evaluate("window.selected") == ["fc2"]


def test_clicking_a_profile_mark_selects_that_layer(page):
    """A point of the depth profile selects its layer too."""
    page.evaluate("window.selected = []")
    page.mouse.click(*_mark(page, 5, "layer: bn1.bias;"))
    page.wait_for_timeout(200)
    assert page.evaluate("window.selected") == ["bn1.bias"]


def test_hovering_a_cell_shows_layer_steps_and_value(page):
    """The tooltip of a heatmap cell names the layer, the column's steps and the value."""
    page.mouse.move(*_mark(page, 1, "layer: conv1.weight;"))
    page.wait_for_selector("#vg-tooltip-element.visible", timeout=5_000)
    text = page.inner_text("#vg-tooltip-element")
    assert "conv1.weight" in text and "steps" in text and "value" in text


@pytest.fixture(scope="module")
def diff_page(browser, tmp_path_factory):
    """A diff of two 320-tensor runs (rows of several tensors), drawn."""
    from synthetic import Spec, write_run

    from weightreport.compare.page import build_diff

    root = tmp_path_factory.mktemp("wide-diff")
    layers = [(f"enc.layer.{i}.{m}", "Linear", (6, 6)) for i in range(20)
              for m in ("q", "k", "v", "o", "up", "down", "x", "y")]
    spec = Spec(name="wide", layers=layers, snapshots=12, heatmaps=False, probes=False)
    a, b = write_run(root / "a", spec, seed=0), write_run(root / "b", spec, seed=1)
    p = _open(browser, build_diff(a, b, root / "diff.html").path)
    yield p
    p.close()


def test_clicking_a_row_of_several_tensors_selects_the_one_its_cell_names(diff_page):
    """A diff heatmap row that holds several tensors selects, on a click, the tensor its cell names
    ("largest in"), and the heatmap outlines the row that holds it."""
    chart = diff_page.query_selector("div.wr-chart[data-glance]")
    cells = [m for m in chart.query_selector_all("path[aria-label]")
             if "largest in: " in (m.get_attribute("aria-label") or "")]
    assert cells
    label = cells[len(cells) // 2].get_attribute("aria-label")
    named = label.split("largest in: ")[1].split(";")[0].strip()
    cells[len(cells) // 2].scroll_into_view_if_needed()
    box = cells[len(cells) // 2].bounding_box()
    diff_page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    diff_page.wait_for_timeout(300)
    assert diff_page.evaluate("window.selected") == [named]
    view = f"window.wrViews.get({chart.get_attribute('id')!r})"
    assert diff_page.evaluate(f"{view}.signal('glance_layer')") == named
    outlined = diff_page.evaluate(
        "(root) => { const walk = (n) => (n.marktype === 'rect' ? (n.items || []).filter((i) => i.stroke === '#111')"
        ".length : 0) + (n.items || []).reduce((c, i) => c + (i.items ? walk(i) : 0), 0); return walk(root); }",
        diff_page.evaluate_handle(f"{view}.scenegraph().root"))
    assert outlined == 1  # the one row holding the named tensor
