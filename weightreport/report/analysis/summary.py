"""Run → ``Summary``: the pieces of the ReportModel a pull-request comment shows.

The summary reuses two registered report sections, built as the report builds them:
the overview (status and findings) and the statistics table (per-layer first/last
statistics), whose key scalars (first, last, best) it shows too, and reads only
the stats columns those need.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from weightreport.report.analysis.finding import SEVERITIES
from weightreport.report.analysis.findings import FINDING_STATS_COLUMNS
from weightreport.report.analysis.metrics import ScalarRow
from weightreport.report.analysis.run_tables import RunTables
from weightreport.report.analysis.thresholds import Thresholds
from weightreport.report.sections import overview, stats
from weightreport.report.sections.overview import Overview
from weightreport.report.sections.stats import StatsTable

SUMMARY_STATS_COLUMNS = sorted({*FINDING_STATS_COLUMNS, "var", "skew", "kurtosis", "zeros"})


@dataclass
class Summary:
    """What ``weightreport summary`` prints, as plain data.

    Attributes:
        overview: the report's overview (status, findings).
        stats: the report's per-layer statistics table.
        scalars: the key scalars.
        report: the path of the full HTML report.
        counts: findings per severity.
    """

    overview: Overview
    stats: StatsTable
    scalars: list[ScalarRow]
    report: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        """``error``, ``warning``, ``info`` (the worst finding's severity) or ``ok``."""
        for sev in SEVERITIES:
            if self.counts.get(sev):
                return sev
        return "ok"

    def to_dict(self) -> dict:
        """The summary as JSON-ready data: run, status, verdict, counts, every finding, the findings
        grouped by code and severity (``FindingGroup.to_dict``), scalars, layers."""
        o = self.overview
        return {
            "run": o.name, "status": o.status, "error": o.error, "last_step": o.last_step,
            "snapshots": o.snapshots, "verdict": self.verdict, "counts": dict(self.counts),
            "report": self.report,
            "findings": [dataclasses.asdict(f) for f in o.findings],
            "groups": [g.to_dict() for g in o.groups],
            "scalars": [dataclasses.asdict(s) for s in self.scalars],
            "layers": list(self.stats.rows),
            "overhead": o.overhead, "config": o.config or None, "run_info": o.info or None, "problems": o.problems,
        }


def summarize(run, thresholds: Thresholds | None = None, report: str | None = None) -> Summary:
    """The ``Summary`` of a ``Run``.

    Args:
        run: a ``Run``.
        thresholds: the findings' thresholds (the defaults when None).
        report: the full HTML report's path to point to (default ``reports/<run name>.html``).
    """
    from weightreport.report.build import default_html

    tables = RunTables(run, thresholds, stats_columns=SUMMARY_STATS_COLUMNS)
    counts = {sev: sum(f.severity == sev for f in tables.findings) for sev in SEVERITIES}
    brief = overview.SECTION.build(tables)
    return Summary(overview=brief, stats=stats.SECTION.build(tables), scalars=brief.metrics,
                   report=report or str(default_html(run.name)), counts=counts)
