"""ReportModel pieces → Vega-Lite specs (via Altair), one function per section.

``section_charts(model)`` returns ``{section key: [Chart, ...]}``. Per-layer charts carry
a ``layer`` parameter that the HTML page's selector sets; the PDF sets it once per
printed layer with ``select_layer``.
"""

from __future__ import annotations

from weightreport.report.analysis.model import ReportModel
from weightreport.report.charts.common import Chart, Datasets, dumps, finish, select_layer
from weightreport.report.charts.layers import activation_charts, batchnorm_charts, heatmap_charts
from weightreport.report.charts.training import (
    curve_charts,
    distribution_charts,
    dynamics_charts,
    outlier_charts,
    trajectory_charts,
)

__all__ = ["Chart", "dumps", "section_charts", "select_layer"]


def section_charts(model: ReportModel) -> dict[str, list[Chart]]:
    """Every section's charts, with stable ids, keyed by section key."""
    seen: set[str] = set()
    ds = Datasets()
    out = {}
    for section, make in (
        (model.curves, curve_charts), (model.distributions, distribution_charts),
        (model.outliers, outlier_charts), (model.heatmaps, heatmap_charts),
        (model.dynamics, dynamics_charts), (model.trajectories, trajectory_charts),
        (model.activations, activation_charts), (model.batchnorm, batchnorm_charts),
    ):
        out[section.key] = finish(make(section, ds) if not section.empty else [], seen)
    return out
