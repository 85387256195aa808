"""ReportModel + charts → PDF: charts as SVG through vl-convert (no browser), WeasyPrint layout.

Per-layer charts are printed for at most ``PRINT_LAYERS`` layers per section (the
first in model order) so print time stays bounded for large models; the PDF says so.
"""

from __future__ import annotations

import copy
import re

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


GRADIENT_USE = re.compile(r'<path d="M0,0h([\d.]+)v([\d.]+)h-[\d.]+Z" fill="url\(#([\w-]+)\)"')
GRADIENT_ENDS = re.compile(r'\b(x1|x2|y1|y2)="([\d.]+)"')


def user_space_gradients(text: str) -> str:
    """Colour-legend gradients in the user space of the rectangle they fill.

    Vega gives a gradient legend's ``linearGradient`` bounding-box units; WeasyPrint
    loses such a gradient when it scales the SVG to the page (a chart wider than A4
    printed as a dot), but draws one in user-space units at any scale.
    """
    for use in GRADIENT_USE.finditer(text):
        w, h, gid = float(use.group(1)), float(use.group(2)), use.group(3)

        def absolute(m: re.Match, w: float = w, h: float = h, gid: str = gid) -> str:
            ends = {"x1": 0.0, "x2": 1.0, "y1": 0.0, "y2": 0.0}  # SVG's defaults
            ends.update({k: float(v) for k, v in GRADIENT_ENDS.findall(m.group(1))})
            coords = " ".join(f'{k}="{v * (w if k[0] == "x" else h):g}"' for k, v in ends.items())
            return f'<linearGradient id="{gid}" gradientUnits="userSpaceOnUse" {coords}>'

        text = re.sub(rf'<linearGradient id="{re.escape(gid)}"([^>]*)>', absolute, text)
    return text


def svg(spec: dict) -> Markup:
    """A Vega-Lite spec rendered to SVG markup by vl-convert (gradients made printable)."""
    import vl_convert

    text = vl_convert.vegalite_to_svg(spec)
    start = text.find("<svg")
    return Markup(user_space_gradients(text[start:]))


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
        report=model, sections=model.sections, charts=views, selectors={s.key: [] for s in model.sections},
        notes=notes, mode="pdf")
    doc = weasyprint.HTML(string=html, base_url=str(templates_dir()))
    return doc.write_pdf()
