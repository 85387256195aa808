"""ReportModel + charts → PDF: charts as SVG through vl-convert (no browser), WeasyPrint layout.

Per-layer charts are printed for at most ``PRINT_LAYERS`` layers per section (the
first in model order) so print time stays bounded for large models; the PDF says so.
"""

from __future__ import annotations

import copy

from markupsafe import Markup

from weightreport.errors import WeightReportError
from weightreport.report.charts import Chart, select_layer
from weightreport.report.model import ReportModel
from weightreport.report.render.env import environment, templates_dir

PRINT_LAYERS = 4
LAYER_KEYS = ("tensor", "module")


def _only_layer(datasets: dict[str, list], layer: str) -> dict[str, list]:
    """The datasets restricted to one layer's records (records without a layer key are kept)."""
    out = {}
    for name, values in datasets.items():
        out[name] = [r for r in values
                     if all(r.get(k, layer) == layer for k in LAYER_KEYS if isinstance(r, dict))]
    return out


def svg(spec: dict) -> Markup:
    """A Vega-Lite spec rendered to SVG markup by vl-convert."""
    import vl_convert

    text = vl_convert.vegalite_to_svg(spec)
    start = text.find("<svg")
    return Markup(text[start:])


def print_views(model: ReportModel, charts: dict[str, list[Chart]]) -> tuple[dict, dict]:
    """Chart views with SVGs for print, and per section a note on which layers are printed."""
    views: dict = {}
    notes: dict = {s.key: "" for s in model.sections}
    for section in model.sections:
        lst = charts.get(section.key, [])
        layers = list(getattr(section, "layers", []))
        printed = layers[:PRINT_LAYERS]
        out = []
        if any(c.layered for c in lst) and len(layers) > len(printed):
            notes[section.key] = (f"Printed for the first {len(printed)} of {len(layers)} layers; "
                                  f"the HTML report has a selector for every layer.")
        for c in lst:
            if not c.layered:
                out.append({"id": c.id, "title": c.title, "wide": c.wide, "layered": False, "glance": False,
                            "svg": svg(c.full_spec())})
                continue
            for layer in printed:
                spec = select_layer(c.spec, layer)
                spec["datasets"] = _only_layer(copy.deepcopy(c.datasets), layer)
                out.append({"id": f"{c.id}-{len(out)}", "title": f"{layer} · {c.title}", "wide": c.wide,
                            "layered": False, "glance": False, "svg": svg(spec)})
        views[section.key] = out
    return views, notes


def render_pdf(model: ReportModel, charts: dict[str, list[Chart]]) -> bytes:
    """The report as PDF bytes (A4, page numbers, table of contents, embedded fonts).

    Raises:
        WeightReportError: WeasyPrint is not installed.
    """
    try:
        import weasyprint
    except ImportError:
        msg = "PDF output needs WeasyPrint; pip install 'weightreport[pdf]'"
        raise WeightReportError(msg) from None
    views, notes = print_views(model, charts)
    html = environment().get_template("print.html").render(
        report=model, sections=model.sections, charts=views, selectors={s.key: None for s in model.sections},
        notes=notes, mode="pdf")
    doc = weasyprint.HTML(string=html, base_url=str(templates_dir()))
    return doc.write_pdf()
