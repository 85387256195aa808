"""Run → ``Summary``: the pieces of the ReportModel a pull-request comment shows.

The summary reuses two registered report sections, built as the report builds them:
the overview (status and findings) and the statistics table (per-layer first/last
statistics); it adds the key scalars (first, last, best) and reads only the stats
columns those need.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from weightreport.report.analysis.finding import SEVERITIES
from weightreport.report.analysis.findings import FINDING_STATS_COLUMNS
from weightreport.report.analysis.run_tables import RunTables
from weightreport.report.analysis.thresholds import Thresholds
from weightreport.report.sections import overview, stats
from weightreport.report.sections.overview import Overview
from weightreport.report.sections.stats import StatsTable

SUMMARY_STATS_COLUMNS = sorted({*FINDING_STATS_COLUMNS, "var", "skew", "kurtosis", "zeros"})
LOWER_IS_BETTER = ("loss", "err", "perplexity", "ppl", "mse", "mae")


@dataclass(frozen=True)
class ScalarRow:
    """One scalar: its first, last and best value (best is None for learning rates)."""

    name: str
    first: float
    last: float
    best: float | None
    best_step: int | None
    goal: str


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
        """The summary as JSON-ready data: run, status, verdict, counts, findings, scalars, layers."""
        o = self.overview
        return {
            "run": o.name, "status": o.status, "error": o.error, "last_step": o.last_step,
            "snapshots": o.snapshots, "verdict": self.verdict, "counts": dict(self.counts),
            "report": self.report,
            "findings": [dataclasses.asdict(f) for f in o.findings],
            "scalars": [dataclasses.asdict(s) for s in self.scalars],
            "layers": list(self.stats.rows),
            "overhead": o.overhead, "config": o.config or None, "run_info": o.info or None, "problems": o.problems,
        }


def goal(name: str) -> str:
    """``min`` for losses and errors, ``none`` for learning rates, ``max`` otherwise."""
    base = name.removeprefix("val_").lower()
    if base.startswith("lr"):
        return "none"
    return "min" if any(k in base for k in LOWER_IS_BETTER) else "max"


def key_scalars(scalars: pd.DataFrame) -> list[ScalarRow]:
    """First, last and best of every scalar, losses first, then validation, then the rest."""
    rows = []
    for name, g in scalars.groupby("name", sort=True):
        g = g.sort_values("step", kind="stable")
        v = g["value"].to_numpy(dtype=float)
        finite = np.isfinite(v)
        if not finite.any():
            rows.append(ScalarRow(str(name), float(v[0]), float(v[-1]), None, None, goal(name)))
            continue
        aim = goal(str(name))
        best = best_step = None
        if aim != "none":
            idx = np.flatnonzero(finite)
            pick = idx[np.argmin(v[idx])] if aim == "min" else idx[np.argmax(v[idx])]
            best, best_step = float(v[pick]), int(g["step"].iloc[pick])
        rows.append(ScalarRow(str(name), float(v[0]), float(v[-1]), best, best_step, aim))
    return sorted(rows, key=lambda r: scalar_order(r.name))


def scalar_order(name: str) -> tuple:
    """The sort key that lists scalars as summaries show them: losses, then the others, learning rates last."""
    return ("loss" not in name, goal(name) == "none", name.startswith("val_"), name)


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
    return Summary(overview=overview.SECTION.build(tables), stats=stats.SECTION.build(tables),
                   scalars=key_scalars(tables.scalars), report=report or str(default_html(run.name)),
                   counts=counts)
