"""Pages beyond the run report (checkpoint inspection, run comparison), through the same
Jinja environment, chart plumbing, CSS, script and Content-Security-Policy as ``html.py``.

Each page's own sections and builder live with its pipeline (``inspect/page.py``,
``compare/page.py``); this module only renders them."""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup

from weightreport.report.charts import Chart
from weightreport.report.render.env import environment
from weightreport.report.render.html import CSP, chart_context, selectors, vega_bundle


@dataclass(frozen=True)
class PageSection:
    """A section of a page: its anchor, title, caption and layer selector."""

    key: str
    title: str
    caption: str
    layers: tuple[str, ...] = ()
    empty: bool = False
    note: str = ""


def render_page(template: str, sections: list[PageSection], charts: dict[str, list[Chart]],
                bundle: str | None = None, **context) -> str:
    """Render ``template`` with the charts embedded as in the run report."""
    views, specs, datasets = chart_context(charts)
    js = vega_bundle() if bundle is None else bundle
    return environment().get_template(template).render(
        sections=sections, charts=views, specs=specs, datasets=datasets, selectors=selectors(sections, charts),
        bundle=Markup(js), csp=CSP, mode="html", **context)
