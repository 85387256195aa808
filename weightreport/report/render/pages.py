"""Pages beyond the run report (checkpoint inspection, run comparison), through the same
Jinja environment, chart plumbing, CSS, script and Content-Security-Policy as ``html.py``."""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup

from weightreport.inspect.model import STAT_COLUMNS, InspectModel
from weightreport.report.charts import Chart
from weightreport.report.render.env import environment
from weightreport.report.render.html import CSP, chart_context, vega_bundle


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
    selectors = {s.key: list(s.layers) if any(c.layered for c in charts.get(s.key, [])) else []
                 for s in sections}
    js = vega_bundle() if bundle is None else bundle
    return environment().get_template(template).render(
        sections=sections, charts=views, specs=specs, datasets=datasets, selectors=selectors,
        bundle=Markup(js), csp=CSP, mode="html", **context)


def render_inspect_html(model: InspectModel, charts: dict[str, list[Chart]], bundle: str | None = None) -> str:
    """The checkpoint report page."""
    sections = [
        PageSection("tensors", "Tensors", "Every floating-point tensor in file order, with its statistics. "
                    "Click a heading to sort."),
        PageSection("histograms", "Histograms", "The distribution of the selected tensor's values.",
                    tuple(model.layers)),
        PageSection("spectra", "Singular-value spectra", "The singular values of each 2-D weight "
                    "(conv kernels reshaped to out × in·k·k), largest first, on log-log axes; a straight "
                    "tail is a power law. Long spectra are drawn at log-spaced ranks.", tuple(model.matrices)),
        PageSection("quality", "Layer quality: alpha and stable rank", "Data-free measures from each "
                    "matrix's spectrum, and how to read them."),
        PageSection("traps", "Correlation traps", "Rank-one structure from a few very large elements."),
    ]
    return render_page("inspect.html", sections, charts, bundle, m=model, columns=list(STAT_COLUMNS))


def render_diff_html(diff, charts: dict[str, list[Chart]], bundle: str | None = None) -> str:
    """The run comparison page for a ``RunDiff``."""
    from weightreport.compare.diff import MAX_DIFF_STEPS, SIDE_STATS

    sections = [
        PageSection("findings", "Findings", "Findings of the candidate that the base does not have, and "
                    "the reverse (matched by code and tensor)."),
        PageSection("curves", "Training curves", "Each scalar of both runs: base grey, candidate blue; "
                    "validation dashed."),
        PageSection("layers", "Layers", "Per shared tensor, at the snapshot steps both runs share (at most "
                    f"{MAX_DIFF_STEPS}): the Wasserstein-1 distance between the two histograms and the "
                    "largest change of a percentile; then the statistics side by side.", tuple(diff.shared)),
    ]
    return render_page("diff.html", sections, charts, bundle, d=diff, side=list(SIDE_STATS))
