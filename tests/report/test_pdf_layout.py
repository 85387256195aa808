"""The PDF's layout on runs of real size: pages packed, nothing off the page, no heading alone.

One run of about 40 tensors (the synthetic ResNet-50's first 24 modules) is printed whole;
the whole synthetic ResNet-50 (161 tensors: full-height glance heatmaps) only its overview
and glance sections. The PDF is read with pypdf: each page's text, and where on the page
each piece of text is drawn.
"""

from __future__ import annotations

import math
import re

import pytest
from synthetic import resnet50_spec, write_run

from weightreport.report.build import build_report
from weightreport.report.model import ReportModel, analyze, section_charts
from weightreport.report.render.pdf import render_pdf
from weightreport.report.sections.glance import SIGNALS
from weightreport.runfmt.reader import load_run

pypdf = pytest.importorskip("pypdf")
pytest.importorskip("weasyprint")


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> list:
    """The pages of the cut ResNet-50's PDF, each with its text (pypdf reads a page's charts'
    drawing operators too, so each page is read once)."""
    spec = resnet50_spec(snapshots=3)
    spec.layers, spec.heatmaps, spec.probes = spec.layers[:24], False, False
    root = tmp_path_factory.mktemp("layout")
    pdf = build_report(write_run(root / "resnet-cut", spec), html=root / "r.html", pdf=True).pdf
    return [Page(p) for p in pypdf.PdfReader(pdf).pages]


class Page:
    """A PDF page's text, and where each run of text starts (in points from the left)."""

    def __init__(self, page) -> None:
        self.width = float(page.mediabox.width)
        self.starts: list[tuple[float, str]] = []

        def visit(text, cm, tm, font, size):
            if text.strip():
                self.starts.append((cm[0] * tm[4] + cm[2] * tm[5] + cm[4], text.strip()))

        self.text = page.extract_text(visitor_text=visit)


def _text(page: Page) -> str:
    return page.text


@pytest.fixture(scope="module")
def glance_pages(tmp_path_factory) -> list[Page]:
    """The pages of the overview and glance sections of the whole synthetic ResNet-50's PDF."""
    spec = resnet50_spec(snapshots=3)
    spec.heatmaps = spec.probes = False
    model = analyze(load_run(write_run(tmp_path_factory.mktemp("glance") / "resnet", spec)))
    charts = section_charts(model)
    short = ReportModel(model.title, {k: model.by_key[k] for k in ("overview", "glance")}, model.picks)
    out = tmp_path_factory.mktemp("glance-pdf") / "glance.pdf"
    out.write_bytes(render_pdf(short, charts))
    return [Page(p) for p in pypdf.PdfReader(out).pages]


def test_glance_heatmaps_share_pages(glance_pages):
    """The whole-network heatmaps of 161 rows take two a page, not one each (the first shares its page with the section's head)."""
    titles = [s.title for s in SIGNALS]
    per_page = [sum(t in _text(p) for t in titles) for p in glance_pages]
    shown = sum(per_page)
    assert shown >= 4, per_page
    assert sum(1 for n in per_page if n) <= math.ceil(shown / 2) + 1, per_page
    assert max(per_page) >= 2, per_page


def test_no_section_heading_is_left_alone_on_a_page(pages):
    """The page where a section with per-layer charts starts also holds its first chart (its grid used to move whole to the next page)."""
    for heading, first in (("Weight distributions", "· Histogram"), ("Update dynamics", "· Update ratio")):
        (start,) = [i for i, p in enumerate(pages) if re.search(rf"\d+\. {heading}\b", _text(p))]
        assert first in _text(pages[start]), (heading, start)


def test_statistics_table_fits_the_page(pages):
    """Every column of the statistics table, sparsity last, is drawn inside the page (it ran off at "max")."""
    stats = [p for p in pages if "sparsity" in _text(p) and "kurtosis" in _text(p)]
    assert stats
    for page in stats:
        runs = page.starts  # a table row's cells are runs of their own; the header row is one run
        assert len(runs) > 100
        off = [(x, t) for x, t in runs if x > page.width - 10]
        assert not off, off[:5]
