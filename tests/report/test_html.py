"""The HTML report: snapshot, determinism, escaping, self-containment and size bounds."""

from __future__ import annotations

import re
from html import unescape

from conftest import XSS

from weightreport.report.build import build_report
from weightreport.report.model import analyze, section_charts
from weightreport.report.render.html import BUNDLE_PLACEHOLDER, CSP, render_html
from weightreport.report.sections import SECTION_KEYS
from weightreport.runfmt.reader import load_run


def _html(run_dir) -> str:
    model = analyze(load_run(run_dir))
    return render_html(model, section_charts(model), bundle=BUNDLE_PLACEHOLDER)


def test_snapshot(tiny_run, snapshot):
    """The page for a fixed small run matches the stored snapshot (JS bundle replaced)."""
    assert _html(tiny_run) == snapshot


def test_deterministic(tiny_run, tmp_path):
    """Two builds of the same run directory are byte-identical files."""
    a = build_report(tiny_run, html=tmp_path / "a.html").html.read_bytes()
    b = build_report(tiny_run, html=tmp_path / "b.html").html.read_bytes()
    assert a == b


def test_all_sections_present(tiny_run):
    """Every section heading and TOC anchor is in the page, and no section is an empty note."""
    html = _html(tiny_run)
    for key in SECTION_KEYS:
        assert f'id="{key}"' in html
        assert f'href="#{key}"' in html
    assert 'class="wr-note"' not in html.split('id="overview"')[1].split("Health findings")[0]


def test_escaping(xss_run):
    """A payload in run, module and tensor names appears only escaped, in HTML and in chart JSON."""
    html = _html(xss_run)
    assert XSS not in html
    assert "<img" not in html
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert "\\u003c/script\\u003e\\u003cimg" in html
    assert html.count("</script>") == 4  # specs, datasets, bundle, app script


def test_layer_selector_escaped(xss_run):
    """The layer selector lists the hostile tensor name as escaped option text."""
    html = _html(xss_run)
    options = re.findall(r"<option value=\"([^\"]*)\">", html)
    assert any("&lt;/script&gt;" in o for o in options)


def test_failed_banner_and_findings(xss_run):
    """A failed run gets a banner with its error, and NaN values become an error finding."""
    html = _html(xss_run)
    assert 'class="wr-banner failed"' in html
    assert "RuntimeError: CUDA out of memory" in html
    assert 'class="sev error"' in html


def test_running_banner_and_notes(empty_run):
    """A running run gets a banner; sections without data say why instead of drawing empty charts."""
    html = _html(empty_run)
    assert 'class="wr-banner running"' in html
    assert "no BatchNorm layers" in html
    assert "holds no 2-D weights" in html


def test_csp_and_offline(tiny_run):
    """The page carries the CSP meta tag and loads nothing by URL (no src= or href= to http)."""
    html = _html(tiny_run)
    meta = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', html)
    assert meta and unescape(meta.group(1)) == CSP
    assert "default-src 'none'" in CSP
    assert not re.search(r"(src|href)=\"?(https?:)?//", html)
    assert "<link" not in html


def test_bundle_inlined_once(tiny_run, tmp_path):
    """The real page inlines vl-convert's bundle exactly once."""
    html = build_report(tiny_run, html=tmp_path / "r.html").html.read_text(encoding="utf-8")
    assert html.count("window.vegaEmbed=") == 1
