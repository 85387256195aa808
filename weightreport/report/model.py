"""The ReportModel, and the two passes over ``SECTIONS`` that make a report's content.

``analyze(run)`` builds every registered section's data from the run's tables (read
once, lazily, within bounded memory: see ``analysis.run_tables``); ``section_charts``
draws every section that has charts. Neither formats HTML.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from weightreport.report.analysis.layer_picks import LayerPicks, layer_picks
from weightreport.report.analysis.run_tables import RunTables
from weightreport.report.analysis.thresholds import Thresholds
from weightreport.report.charts.common import Chart, Datasets, finish
from weightreport.report.sections import SECTIONS, Section


@dataclass
class ReportModel:
    """Everything one report shows, section by section, in display order.

    A section's data is also an attribute named by its key (``model.overview``,
    ``model.outliers``), as templates read it.

    Attributes:
        title: the report's title.
        by_key: each section's data by section key, in display order.
        picks: the layers the findings name and every parameter ranked (the PDF prints
            per-layer charts for a choice of these).
    """

    title: str
    by_key: dict[str, Section]
    picks: LayerPicks = field(default_factory=LayerPicks)

    @property
    def sections(self) -> list[Section]:
        """The sections in display order."""
        return list(self.by_key.values())

    def __getattr__(self, name: str) -> Section:
        """A section's data by its key (``model.overview``)."""
        by_key = self.__dict__.get("by_key", {})
        if name in by_key:
            return by_key[name]
        raise AttributeError(name)


def analyze(run, title: str | None = None, thresholds: Thresholds | None = None) -> ReportModel:
    """Compute the ReportModel of ``run``: every registered section's data.

    Args:
        run: a ``Run`` (from ``load_run``).
        title: the report's title; the run's name when None.
        thresholds: the findings' thresholds (the defaults when None).
    """
    tables = RunTables(run, thresholds)
    by_key = {s.key: s.build(tables) for s in SECTIONS}
    return ReportModel(title=title or run.name, by_key=by_key,
                       picks=layer_picks(tables.findings, tables.params, tables.order))


def section_charts(model: ReportModel) -> dict[str, list[Chart]]:
    """Every charted section's charts, with stable ids, keyed by section key.

    Per-layer charts carry a ``layer`` parameter that the HTML page's selector sets; the
    PDF sets it once per printed layer with ``charts.select_layer``.
    """
    seen: set[str] = set()
    ds = Datasets()
    out = {}
    for s in SECTIONS:
        if s.charts is None:
            continue
        section = model.by_key[s.key]
        out[s.key] = finish(s.charts(section, ds) if not section.empty else [], seen)
    return out
