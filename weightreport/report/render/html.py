"""ReportModel + charts → one self-contained HTML page.

The page inlines the Vega/Vega-Lite/vega-embed bundle once (``vl_convert``), every
chart spec and dataset as escaped JSON, the CSS and a small script; a
Content-Security-Policy forbids any load from elsewhere. Charts are embedded with
``ast: true`` so Vega's expression interpreter runs them without ``eval``.
"""

from __future__ import annotations

import functools

from markupsafe import Markup

from weightreport.report.charts import Chart
from weightreport.report.model import ReportModel
from weightreport.report.render.env import environment
from weightreport.report.render.picker import Picker, picker

CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "img-src data:; font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'")
BUNDLE_PLACEHOLDER = "/* vega bundle */"


@functools.lru_cache(maxsize=1)
def vega_bundle() -> str:
    """vl-convert's bundle of Vega, Vega-Lite and vega-embed (sets ``window.vegaEmbed``)."""
    import vl_convert

    bundle = vl_convert.javascript_bundle()
    return bundle.replace("</script", "<\\/script").replace("<!--", "<\\!--")


def chart_context(charts: dict[str, list[Chart]]) -> tuple[dict, dict, dict]:
    """Template views of the charts, the spec table ``{id: {spec, data}}``, and the datasets."""
    views, specs, datasets = {}, {}, {}
    for key, lst in charts.items():
        views[key] = [{"id": c.id, "title": c.title, "wide": c.wide, "layered": c.layered,
                        "glance": c.glance, "svg": None}
                      for c in lst]
        for c in lst:
            specs[c.id] = {"spec": c.spec, "data": sorted(c.datasets)}
            datasets.update(c.datasets)
    return views, specs, dict(sorted(datasets.items()))


def selectors(sections, charts: dict[str, list[Chart]]) -> dict[str, Picker | None]:
    """Per section, its layer picker (None when no chart of it follows a layer)."""
    out = {}
    for section in sections:
        layered = any(c.layered for c in charts.get(section.key, []))
        out[section.key] = picker(getattr(section, "layers", ())) if layered else None
    return out


def render_html(model: ReportModel, charts: dict[str, list[Chart]], bundle: str | None = None) -> str:
    """The report page as a string.

    Args:
        model: the analysed run.
        charts: ``section_charts(model)``.
        bundle: the JavaScript bundle to inline (default: vl-convert's; tests pass a placeholder).
    """
    views, specs, datasets = chart_context(charts)
    js = vega_bundle() if bundle is None else bundle
    return environment().get_template("base.html").render(
        report=model, sections=model.sections, charts=views, specs=specs, datasets=datasets,
        selectors=selectors(model.sections, charts),
        bundle=Markup(js), csp=CSP, mode="html")
