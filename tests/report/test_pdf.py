"""The PDF: pages, section titles in the text, embedded fonts (never its bytes)."""

from __future__ import annotations

import pandas as pd
import pytest
from synthetic import Spec, write_run

from weightreport.cli import main
from weightreport.report.analysis.finding import Finding
from weightreport.report.analysis.layer_picks import CRITERION, LayerPicks, layer_picks
from weightreport.report.build import build_report
from weightreport.report.model import analyze, section_charts
from weightreport.report.render.pdf import print_views
from weightreport.report.render.print_layers import (
    MAX_FLAGGED,
    matches,
    parse_pdf_layers,
    printed_layers,
)
from weightreport.runfmt.reader import load_run

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


@pytest.fixture(scope="module")
def tiny_model(tiny_run):
    """The small run's model (its findings name conv1, fc1 and fc2) and charts."""
    model = analyze(load_run(tiny_run))
    return model, section_charts(model)


def test_every_flagged_layer_is_printed(tiny_model):
    """Each layer a finding names gets its section's per-layer charts in the PDF, and the note says why."""
    model, charts = tiny_model
    assert set(model.picks.flagged) == {"conv1", "fc1", "fc2"}
    views, notes = print_views(model, charts, parse_pdf_layers("flagged"))
    checked = 0
    for section in model.sections:
        layered = [c for c in charts.get(section.key, []) if c.layered]
        if not layered:
            continue
        titles = {v["title"] for v in views[section.key]}
        for layer in section.layers:
            if any(matches(layer, name) for name in model.picks.flagged):
                for c in layered:
                    if layer not in c.blank:
                        assert f"{layer} · {c.title}" in titles, (section.key, layer, c.title)
                        checked += 1
    assert checked >= 10
    assert "those the findings name (conv1.weight, conv1.bias, fc1.weight" in notes["dynamics"]
    assert not any(v["title"].startswith("bn1.") for v in views["dynamics"])


def test_pdf_layer_choices():
    """flagged prints only the flagged layers, N adds the top N by the ranking, all prints every layer."""
    picks = LayerPicks(flagged=("b",), ranked=("d.weight", "c", "a", "b"))
    layers = ["a", "b", "c", "d"]
    assert printed_layers(layers, picks, parse_pdf_layers("flagged"))[0] == ["b"]
    one, note = printed_layers(layers, picks, parse_pdf_layers("1"))
    assert one == ["b", "d"]
    assert note == ("Per-layer charts are printed for 2 of 4 layers: those the findings name (b) and the 1 with "
                    "the largest update-to-weight ratio at the last snapshot (d). The HTML report has a "
                    "selector for every layer.")
    assert printed_layers(layers, picks, parse_pdf_layers(2))[0] == ["b", "c", "d"]
    assert printed_layers(layers, picks, parse_pdf_layers("all")) == (layers, "")
    assert printed_layers(layers, picks, parse_pdf_layers(None))[0] == layers  # flagged plus 3 is all 4
    many = [f"l{i}" for i in range(40)]
    capped, note = printed_layers(many, LayerPicks(flagged=tuple(reversed(many)), ranked=tuple(many)),
                                  parse_pdf_layers("flagged"))
    assert capped == many[-MAX_FLAGGED:]  # the first-named (most severe) ones, in the section's order
    assert f"the {MAX_FLAGGED} of the 40 the findings name" in note and "--pdf-layers all" in note
    none, note = printed_layers(layers, LayerPicks(ranked=tuple(layers)), parse_pdf_layers("flagged"))
    assert none == [] and "No layer of this section is named by a finding" in note


@pytest.mark.parametrize("bad", ["many", "-1", "2.5", ""])
def test_bad_pdf_layers_is_one_line_and_exit_2(bad, tiny_run, tmp_path, capsys):
    """An unknown --pdf-layers value exits 2 with one line naming the choices, before anything is written."""
    out = tmp_path / "r.html"
    assert main(["build", str(tiny_run), "-o", str(out), "--pdf", "--pdf-layers", bad]) == 2
    err = capsys.readouterr().err
    assert err.startswith("weightreport: error: --pdf-layers") and err.count("\n") == 1
    assert "flagged" in err and not out.exists()


def test_ranking_is_by_final_update_ratio_and_flagged_by_severity():
    """Parameters rank by their last finite update ratio (those without one last); errors are named first."""
    params = pd.DataFrame({"tensor": ["a", "a", "b", "b", "c"], "step": [0, 10, 0, 10, 0],
                           "update_ratio": [float("nan"), 1e-4, float("nan"), 1e-2, float("nan")]})
    found = [Finding("x", "info", "a", (0,), "m", "s"), Finding("y", "error", "c", (0,), "m", "s")]
    picks = layer_picks(found, params, ["c", "b", "a"])
    assert picks.ranked == ("b", "a", "c")
    assert picks.flagged == ("c", "a")
    assert picks.criterion == CRITERION


def test_tiny_model_takes_few_pages(tmp_path):
    """A 6-parameter linear model prints on a handful of pages (it took 15, some holding one line; 8 with
    the glance and structure sections, every page holding a section or more)."""
    run = write_run(tmp_path / "linear", Spec(name="linear", layers=[("linear", "Linear", (1, 5))], snapshots=10,
                                                probes=False))
    pdf = build_report(run, html=tmp_path / "r.html", pdf=True).pdf
    assert len(pypdf.PdfReader(pdf).pages) <= 8


def test_every_layer_a_sections_findings_name_is_printed_there():
    """A section prints every layer its own findings name, past the cap; other sections keep the cap."""
    dead = [f"act{i}" for i in range(12)]
    found = [Finding("dead_units", "warning", n, (0,), "m", "s", anchor="activations") for n in dead]
    found.append(Finding("update_ratio", "error", "fc.weight", (0,), "m", "s", anchor="dynamics"))
    picks = layer_picks(found, pd.DataFrame(), [*dead, "fc.weight"])
    assert picks.anchored == {"activations": tuple(dead), "dynamics": ("fc.weight",)}
    layers = ["fc", *dead, "other"]
    printed, note = printed_layers(layers, picks, parse_pdf_layers("flagged"), "activations")
    assert printed == dead and len(dead) > MAX_FLAGGED
    assert "every one of the 12 that this section's findings name (act0" in note
    assert "none of the 1 other layers the findings name (; --pdf-layers all" not in note
    assert "none of the 1 other layers the findings name (--pdf-layers all prints every one)" in note
    elsewhere, note = printed_layers(layers, picks, parse_pdf_layers("flagged"), "dynamics")
    assert elsewhere == ["fc", *dead[:MAX_FLAGGED - 1]]
    assert "every one of the 1 that this section's findings name (fc)" in note
    assert f"the {MAX_FLAGGED - 1} of the 12 other layers the findings name" in note
