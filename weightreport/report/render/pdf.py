"""ReportModel + charts → PDF: charts as SVG through vl-convert (no browser), WeasyPrint layout.

Per-layer charts are printed for the layers ``print_layers`` chooses (by default
those the findings name plus the top 3 by ``LayerPicks.criterion``), so print time and
length stay bounded for large models; each section says which it printed. A per-layer
chart with nothing to show for a layer (``Chart.blank``) is one line of the section's
note instead of a chart.
"""

from __future__ import annotations

from markupsafe import Markup

from weightreport.errors import WeightReportError
from weightreport.report.charts import Chart, select_layer
from weightreport.report.model import ReportModel
from weightreport.report.render.env import environment, templates_dir
from weightreport.report.render.print_layers import PdfLayers, parse_pdf_layers, printed_layers

LAYER_KEYS = ("tensor", "module")
PRINT_FONT = "DejaVu Sans"
"""The font charts are measured and printed in (print.css sets it for the page): with
vl-convert's default sans-serif, labels measured narrower than WeasyPrint draws them
are clipped at the SVG's edge."""


def _only_layer(datasets: dict[str, list], layer: str) -> dict[str, list]:
    """The datasets restricted to one layer's records (records without a layer key are kept).

    The records are shared, not copied: nothing downstream changes them, and a copy of
    every layer's data for every printed layer and chart cost gigabytes on a large model.
    """
    out = {}
    for name, values in datasets.items():
        out[name] = [r for r in values
                     if all(r.get(k, layer) == layer for k in LAYER_KEYS if isinstance(r, dict))]
    return out


def svg(spec: dict) -> Markup:
    """A Vega-Lite spec rendered to SVG markup by vl-convert."""
    import vl_convert

    spec = {**spec, "config": {**spec.get("config", {}), "font": PRINT_FONT}}
    text = vl_convert.vegalite_to_svg(spec)
    start = text.find("<svg")
    return Markup(text[start:])


def print_views(model: ReportModel, charts: dict[str, list[Chart]],
                layers: PdfLayers | None = None) -> tuple[dict, dict]:
    """Chart views with SVGs for print, and per section a note on which layers are printed.

    Args:
        model: the analysed run.
        charts: ``section_charts(model)``.
        layers: which layers get per-layer charts (the default ``PdfLayers()`` when None).
    """
    choice = layers or PdfLayers()
    views: dict = {}
    notes: dict = {s.key: "" for s in model.sections}
    for section in model.sections:
        lst = charts.get(section.key, [])
        out, blank = [], []
        printed: list[str] = []
        if any(c.layered for c in lst):
            printed, notes[section.key] = printed_layers(list(getattr(section, "layers", [])), model.picks, choice)
        for c in lst:
            if not c.layered:
                out.append({"id": c.id, "title": c.title, "wide": c.wide, "layered": False, "glance": False,
                            "svg": svg(c.full_spec())})
                continue
            for layer in printed:
                if layer in c.blank:
                    blank.append(f"{layer} · {c.title}: {c.blank[layer]}")
                    continue
                spec = select_layer(c.spec, layer)
                spec["datasets"] = _only_layer(c.datasets, layer)
                out.append({"id": f"{c.id}-{len(out)}", "title": f"{layer} · {c.title}", "wide": c.wide,
                            "layered": False, "glance": False, "svg": svg(spec)})
        if blank:
            notes[section.key] = " ".join([notes[section.key], "Not drawn: " + "; ".join(blank) + "."]).strip()
        views[section.key] = out
    return views, notes


def render_pdf(model: ReportModel, charts: dict[str, list[Chart]], layers: str | int | PdfLayers | None = None) -> bytes:
    """The report as PDF bytes (A4, page numbers, table of contents, embedded fonts).

    Args:
        model: the analysed run.
        charts: ``section_charts(model)``.
        layers: ``flagged``, ``all`` or N (flagged plus the top N; the default 3), or a ``PdfLayers``.

    Raises:
        WeightReportError: WeasyPrint is not installed, or ``layers`` is none of those.
    """
    choice = parse_pdf_layers(layers)
    try:
        import weasyprint
    except ImportError:
        msg = "PDF output needs WeasyPrint; pip install 'weightreport[pdf]'"
        raise WeightReportError(msg) from None
    views, notes = print_views(model, charts, choice)
    html = environment().get_template("print.html").render(
        report=model, sections=model.sections, charts=views, selectors={s.key: [] for s in model.sections},
        notes=notes, mode="pdf")
    doc = weasyprint.HTML(string=html, base_url=str(templates_dir()))
    return doc.write_pdf()
