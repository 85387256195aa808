"""The PDF: pages, section titles in the text, embedded fonts (never its bytes)."""

from __future__ import annotations

import pytest

from weightreport.report.build import build_report

pypdf = pytest.importorskip("pypdf")
pytest.importorskip("weasyprint")

TITLES = ("Overview", "Training curves", "Weight distributions", "Statistics", "Outliers",
          "Weight heatmaps", "Update dynamics", "Per-weight trajectories", "Activations", "BatchNorm")


@pytest.fixture(scope="module")
def pdf(tiny_run, tmp_path_factory):
    """The PDF of the small run."""
    out = tmp_path_factory.mktemp("pdf")
    return build_report(tiny_run, html=out / "r.html", pdf=True).pdf


def test_pages_and_titles(pdf):
    """The PDF has a TOC page plus pages for the sections, and every section title is in its text."""
    reader = pypdf.PdfReader(pdf)
    assert len(reader.pages) >= 6
    text = "\n".join(p.extract_text() for p in reader.pages)
    for title in TITLES:
        assert title in text
    assert "page 1 of" in text


def test_fonts_embedded(pdf):
    """Every font the PDF uses carries an embedded font file."""
    reader = pypdf.PdfReader(pdf)
    fonts = {}
    for page in reader.pages:
        for font in (page["/Resources"].get("/Font") or {}).values():
            font = font.get_object()
            desc = font.get("/FontDescriptor")
            if desc is None and "/DescendantFonts" in font:
                desc = font["/DescendantFonts"][0].get_object().get("/FontDescriptor")
            desc = desc.get_object() if desc is not None else {}
            fonts[font.get("/BaseFont")] = any(k in desc for k in ("/FontFile", "/FontFile2", "/FontFile3"))
    assert fonts
    assert all(fonts.values()), fonts


def test_links_land_on_named_destinations(pdf):
    """The TOC's and the findings table's links point at destinations the PDF defines."""
    reader = pypdf.PdfReader(pdf)
    named = set(reader.named_destinations)
    dests = [a.get_object().get("/Dest") for page in reader.pages
             for a in (page.get("/Annots") or []) if a.get_object().get("/Subtype") == "/Link"]
    dests = [str(d) for d in dests if d is not None]
    assert {key for key in ("overview", "curves", "batchnorm")} <= set(dests)
    assert set(dests) <= named, set(dests) - named
