"""ReportModel + charts → PDF: charts as SVG through vl-convert (no browser), WeasyPrint layout.

Per-layer charts are printed for the layers ``print_layers`` chooses (by default
those the findings name plus the top 3 by ``LayerPicks.criterion``), so print time and
length stay bounded for large models; each section says which it printed. A per-layer
chart with nothing to show for a layer (``Chart.blank``) is one line of the section's
note instead of a chart.
"""

from __future__ import annotations

import re

from markupsafe import Markup

from weightreport.errors import WeightReportError
from weightreport.report.charts import Chart, select_layer
from weightreport.report.model import ReportModel
from weightreport.report.render.env import environment, templates_dir
from weightreport.report.render.print_layers import PdfLayers, parse_pdf_layers, printed_layers
from weightreport.runfmt.calls import call_label

LAYER_KEYS = ("tensor", "module")
RASTER_VALUES = 6000
"""A whole-network chart (``Chart.glance``: about one mark per value) whose datasets hold more
values than this prints as a PNG: WeasyPrint lays out every SVG element, and a 16,000-cell
heatmap costs it about ten seconds and 100 MB."""
RASTER_ELEMENTS = 6000
"""Any other chart whose SVG holds more drawn elements than this prints as a PNG too: a
ViT's six attention-map figures made one 19 MB SVG of 83,000 elements, which took
WeasyPrint over a minute to parse and draw."""
DRAWN = ("<path", "<rect", "<text", "<line", "<circle", "<image")
RASTER_SCALE = 2
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

    spec = {**spec, "config": {**spec.get("config", {}), "font": PRINT_FONT}}
    text = vl_convert.vegalite_to_svg(spec)
    start = text.find("<svg")
    return Markup(user_space_gradients(text[start:]))


def values_in(datasets: dict[str, list]) -> int:
    """How many values ``datasets`` hold (a record's array counts each of its elements)."""
    n = 0
    for records in datasets.values():
        for r in records:
            fields = r.values() if isinstance(r, dict) else (r,)
            n += sum(len(v) if isinstance(v, list) else 1 for v in fields)
    return n


def png(spec: dict) -> Markup:
    """A Vega-Lite spec rendered to a PNG image by vl-convert, as an ``<img>`` (2× pixels)."""
    import base64

    import vl_convert

    image = vl_convert.vegalite_to_png(spec, scale=RASTER_SCALE)
    width = int.from_bytes(image[16:20], "big") // RASTER_SCALE  # the IHDR chunk's width, in CSS pixels
    data = base64.b64encode(image).decode("ascii")
    return Markup(f'<img class="wr-raster" alt="" width="{width}" src="data:image/png;base64,{data}">')


def drawn_elements(markup: str) -> int:
    """How many elements an SVG draws (paths, rectangles, text, lines, circles, images)."""
    return sum(markup.count(tag) for tag in DRAWN)


def picture(spec: dict, glance: bool = False, datasets: dict[str, list] | None = None) -> Markup:
    """A chart for print: SVG, or a PNG when it has too many marks for WeasyPrint.

    A whole-network chart (``glance``) is judged by its data, before any SVG is made
    (``RASTER_VALUES``); any other by the SVG's drawn elements (``RASTER_ELEMENTS``).
    """
    if glance and values_in(datasets or {}) > RASTER_VALUES:
        return png(spec)
    drawn = svg(spec)
    return png(spec) if drawn_elements(drawn) > RASTER_ELEMENTS else drawn


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
            printed, notes[section.key] = printed_layers(list(getattr(section, "layers", [])), model.picks,
                                                         choice, section.key)
        for c in lst:
            if not c.layered:
                out.append({"id": c.id, "title": c.title, "wide": c.wide, "layered": False, "glance": c.glance,
                            "svg": picture(c.full_spec(), c.glance, c.datasets)})
                continue
            for layer in printed:
                if layer in c.blank:
                    blank.append(f"{call_label(layer)} · {c.title}: {c.blank[layer]}")
                    continue
                spec = select_layer(c.spec, layer)
                spec["datasets"] = _only_layer(c.datasets, layer)
                out.append({"id": f"{c.id}-{len(out)}", "title": f"{call_label(layer)} · {c.title}", "wide": c.wide,
                            "layered": False, "glance": False, "svg": picture(spec)})
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
        report=model, sections=model.sections, charts=views, selectors={s.key: None for s in model.sections},
        notes=notes, mode="pdf")
    doc = weasyprint.HTML(string=html, base_url=str(templates_dir()))
    return doc.write_pdf()
