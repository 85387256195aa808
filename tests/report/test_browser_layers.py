"""The layer pickers in a real headless Chromium: every layer of every section, drawn right.

One run with more than 120 tensors (the synthetic ResNet-50 cut to its first stages, four
snapshots, heatmaps and probes on). Every option of every picker is chosen once; after each
choice every section must show the chosen layer or its counterpart (a parameter's module,
a module's weight) or say that it has none, and every chart on the page must fit its box:
its SVG no wider than its container and the size a fresh drawing of its layer has, every
label and mark inside the SVG, no label cut short with "…", and no console error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from synthetic import resnet50_spec, write_run

from weightreport.report.build import build_report

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-dev-shm-usage"]
BATCH = 40
"""Choices checked per ``page.evaluate`` call (one call per choice would cost a round trip each)."""

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")

# Helpers installed in the page: choose a layer in a section's picker, wait until every
# chart is drawn, then describe each section's picker and check every displayed chart.
HELPERS = """() => {
  const specs = JSON.parse(document.getElementById("wr-specs").textContent);
  const data = JSON.parse(document.getElementById("wr-data").textContent);
  const host = document.createElement("div");
  host.style.cssText = "position:absolute;left:-30000px;top:0;width:1000px";
  document.body.append(host);
  const expected = new Map();  // "id|layer" -> [width, height] of a fresh drawing
  const audited = new Map();  // "id|layer" -> the view last checked for it (unchanged since: skipped)
  const frame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));
  async function settle() {
    await window.wrChartsReady;
    for (const view of window.wrViews.values()) await view.runAsync();
    await frame(); await frame();
  }
  function layerOf(el) {
    const view = window.wrViews.get(el.id);
    return view && el.hasAttribute("data-layered") ? view.signal("layer") : null;
  }
  async function freshSize(el, layer) {
    const key = el.id + "|" + layer;
    if (!expected.has(key)) {
      const entry = specs[el.id];
      const spec = JSON.parse(JSON.stringify(entry.spec));
      for (const p of spec.params || []) if (p.name === "layer") p.value = layer;
      spec.datasets = {};
      for (const name of entry.data) spec.datasets[name] = data[name];
      const div = document.createElement("div");
      host.append(div);
      const result = await window.vegaEmbed(div, spec, {actions: false, ast: true, renderer: "svg"});
      const svg = div.querySelector("svg");
      expected.set(key, [svg.getAttribute("width"), svg.getAttribute("height")]);
      result.finalize(); div.remove();
    }
    return expected.get(key);
  }
  function displayed(el) { return el.getClientRects().length > 0; }
  async function audit() {
    const problems = [];
    for (const el of document.querySelectorAll("div.wr-chart")) {
      if (!displayed(el)) continue;
      const where = el.closest("section").id + "/" + el.id;
      const seen = el.id + "|" + layerOf(el), view = window.wrViews.get(el.id);
      if (view && audited.get(seen) === view) continue;
      audited.set(seen, view);
      const svg = el.querySelector("svg");
      if (!svg) { problems.push(where + ": no SVG"); continue; }
      const box = svg.getBoundingClientRect();
      const w = parseFloat(svg.getAttribute("width")), h = parseFloat(svg.getAttribute("height"));
      if (Math.abs(box.width - w) > 1 || Math.abs(box.height - h) > 1)
        problems.push(`${where}: the SVG is drawn ${box.width}x${box.height}, not its own ${w}x${h}`);
      if (w > el.clientWidth + 1) problems.push(`${where}: ${w}px wide in a ${el.clientWidth}px box`);
      if (el.hasAttribute("data-layered")) {
        const layer = layerOf(el);
        const [fw, fh] = await freshSize(el, layer);
        if (String(w) !== fw || String(h) !== fh)
          problems.push(`${where} (${layer}): ${w}x${h}, but drawn afresh it is ${fw}x${fh}`);
      }
      for (const item of svg.querySelectorAll("g.mark-text text, g.mark-rect path, g.mark-line path, "
                                              + "g.mark-area path, g.mark-symbol path, g.mark-rule line")) {
        if (item.closest("[opacity='0']") || getComputedStyle(item).opacity === "0") continue;
        const r = item.getBoundingClientRect();
        if (r.width === 0 && r.height === 0) continue;
        const text = item.tagName === "text" ? item.textContent : item.tagName;
        if (r.left < box.left - 1 || r.top < box.top - 1 || r.right > box.right + 1 || r.bottom > box.bottom + 1)
          problems.push(`${where}: "${text}" lies outside its chart`);
        if (item.tagName === "text" && text.endsWith("\\u2026")) problems.push(`${where}: "${text}" is cut short`);
      }
    }
    return problems;
  }
  function state() {
    const out = {};
    for (const select of document.querySelectorAll("select.wr-layer")) {
      const section = document.getElementById(select.dataset.section);
      const charts = Array.from(section.querySelectorAll("div.wr-chart[data-layered]"));
      out[select.dataset.section] = {
        value: select.value,
        shown: charts.filter(displayed).map(layerOf),
        hidden: charts.filter((el) => !displayed(el)).length,
        note: Array.from(section.querySelectorAll(".wr-layer-note")).filter(displayed)
          .map((n) => n.textContent.trim()).join(" "),
      };
    }
    return out;
  }
  async function pick(section, layer) {
    const select = document.querySelector(`select.wr-layer[data-section="${section}"]`);
    select.value = layer;
    select.dispatchEvent(new Event("change", {bubbles: true}));
    await settle();
  }
  window.wrTest = {settle, audit, state, pick};
}"""

WALK = """async (choices) => {
  const out = [];
  for (const [section, layer] of choices) {
    await wrTest.pick(section, layer);
    out.push({section, layer, state: wrTest.state(), problems: await wrTest.audit()});
  }
  return out;
}"""


def counterpart(name: str, options: list[str]) -> str | None:
    """What a section offering ``options`` should show for ``name`` (None: it has no data for it)."""
    if name in options:
        return name
    parent = name.rpartition(".")[0]
    if parent in options:
        return parent
    children = [o for o in options if o.startswith(name + ".") and "." not in o[len(name) + 1:]]
    if f"{name}.weight" in children:
        return f"{name}.weight"
    return children[0] if children else None


@pytest.fixture(scope="module")
def big_report(tmp_path_factory) -> Path:
    """The report of a run with 124 tensors: the synthetic ResNet-50's stem, layer1 and layer2."""
    spec = resnet50_spec(snapshots=4)
    spec.layers = spec.layers[:62]
    spec.heatmaps = spec.probes = True
    spec.nan_tensor = "layer1.0.conv2.weight"
    root = tmp_path_factory.mktemp("big")
    return build_report(write_run(root / "resnet-cut", spec), html=root / "r.html").html


@pytest.fixture(scope="module")
def page(big_report):
    """The big report open at 1280 px in headless Chromium, helpers installed, console errors collected."""
    sync_api = pytest.importorskip("playwright.sync_api")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        pg = browser.new_page(viewport={"width": 1280, "height": 1000})
        pg.errors = []
        pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: pg.errors.append(str(e)))
        pg.goto(big_report.resolve().as_uri())
        pg.wait_for_selector("body[data-charts-ready=true]", timeout=60_000)
        pg.evaluate(HELPERS)
        yield pg
        browser.close()


def options(page) -> dict[str, list[str]]:
    """Every picker's layers, by section."""
    return page.evaluate("""() => Object.fromEntries(Array.from(document.querySelectorAll("select.wr-layer"),
        (s) => [s.dataset.section, Array.from(s.options, (o) => o.value)]))""")


def check_state(state: dict, chosen: str, offered: dict[str, list[str]]) -> list[str]:
    """What is wrong with the pickers and layered charts after ``chosen`` was chosen."""
    wrong = []
    for section, s in state.items():
        want = counterpart(chosen, offered[section])
        if want is None:
            if s["shown"] or not s["note"]:
                wrong.append(f"{section}: has no data for {chosen} but shows {s['shown']} / says {s['note']!r}")
        elif s["value"] != want or any(layer != want for layer in s["shown"]) or s["hidden"]:
            wrong.append(f"{section}: should show {want} for {chosen}; picker {s['value']}, charts {s['shown']}")
    return wrong


def test_every_layer_of_every_picker_draws_right(page):
    """Each option of each section's picker selects it everywhere and every chart fits its box."""
    offered = options(page)
    assert sum(len(v) for k, v in offered.items() if k == "distributions") >= 120
    assert {"distributions", "outliers", "heatmaps", "dynamics", "trajectories", "activations",
            "batchnorm"} <= set(offered)
    first = page.evaluate("wrTest.audit()")
    assert not first, first
    # Each distinct layer once, picked in every picker that offers it: the page's state depends
    # only on the layer chosen, so the later picks of one layer must change nothing. A module
    # comes right after its first parameter, whose state it shares but for its own sections.
    modules = {n for k, v in offered.items() if k in ("activations", "batchnorm") for n in v}
    names = []
    for n in offered["distributions"]:
        names += [n, *([n.rpartition(".")[0]] if n.rpartition(".")[0] in modules else [])]
    names = list(dict.fromkeys(names + [n for section in offered.values() for n in section]))
    choices = [(section, n) for n in names for section, opts in offered.items() if n in opts]
    for start in range(0, len(choices), BATCH):
        for r in page.evaluate(WALK, choices[start:start + BATCH]):
            wrong = r["problems"] + check_state(r["state"], r["layer"], offered)
            assert not wrong, f"after choosing {r['layer']} in {r['section']}: {wrong[:6]}"
    assert not page.errors


def test_finding_link_and_event_select_everywhere(page):
    """A finding's link and a dispatched wr-select-layer event each select their layer in every section."""
    offered = options(page)
    link = page.locator("a.wr-see[data-layer='layer1.0.conv2.weight']").first
    link.click()
    page.evaluate("wrTest.settle()")
    wrong = check_state(page.evaluate("wrTest.state()"), "layer1.0.conv2.weight", offered)
    assert not wrong, wrong
    page.evaluate("""async () => {
        document.dispatchEvent(new CustomEvent("wr-select-layer", {detail: {layer: "layer2.1.bn2"}}));
        await wrTest.settle(); }""")
    state = page.evaluate("wrTest.state()")
    wrong = check_state(state, "layer2.1.bn2", offered)
    assert not wrong, wrong
    assert state["batchnorm"]["value"] == "layer2.1.bn2"
    assert state["distributions"]["value"] == "layer2.1.bn2.weight"
    assert state["heatmaps"]["shown"] == [] and state["heatmaps"]["note"]
    assert not page.evaluate("wrTest.audit()")
    page.evaluate("""async () => {
        document.dispatchEvent(new CustomEvent("wr-select-layer", {detail: {layer: "no.such.layer"}}));
        await wrTest.settle(); }""")
    assert page.evaluate("wrTest.state()") == state, "a layer no section has must change nothing"
    assert not page.errors


def test_filter_and_step_buttons(page):
    """Typing in a picker's filter narrows it to the matches and shows the first; ‹ › step; Escape restores."""
    offered = options(page)
    page.locator("section#distributions input.wr-pick-filter").fill("LAYER2.1 conv2")
    page.wait_for_function("""() => document.querySelector('section#activations select.wr-layer').value
                              === 'layer2.1.conv2'""", timeout=10_000)  # after the filter's short delay
    page.evaluate("wrTest.settle()")
    assert options(page)["distributions"] == ["layer2.1.conv2.weight", "layer2.1.conv2.bias"]
    assert page.locator("section#distributions .wr-count").text_content() == "(2 of 124 layers)"
    assert not check_state(page.evaluate("wrTest.state()"), "layer2.1.conv2.weight", offered)
    page.locator("section#distributions button.wr-step[data-step='1']").click()
    page.evaluate("wrTest.settle()")
    assert not check_state(page.evaluate("wrTest.state()"), "layer2.1.conv2.bias", offered)
    page.locator("section#distributions input.wr-pick-filter").press("Escape")
    assert options(page)["distributions"] == offered["distributions"]
    page.locator("section#outliers button.wr-step[data-step='-1']").click()
    page.evaluate("wrTest.settle()")
    assert not check_state(page.evaluate("wrTest.state()"), "layer2.1.conv2.weight", offered)
    assert not page.evaluate("wrTest.audit()")
    assert not page.errors
