"""Run → ReportModel: every statistic the report shows, computed once, with no HTML.

``analyze(run)`` reads only what the report needs: the stats, trajectories and
batchnorm tables at no more than ``sampling.MAX_LAYER_POINTS`` snapshots (plus every
stats row with NaN or Inf), histograms at each tensor's first and last snapshot, and
the small tables; so memory stays bounded however long the run.
"""

from __future__ import annotations

import pandas as pd

from weightreport.report.analysis.activations import activations, batchnorm
from weightreport.report.analysis.findings import FINDING_BN_COLUMNS, Finding, find_all
from weightreport.report.analysis.heatmaps import heatmaps
from weightreport.report.analysis.model import ReportModel, Section
from weightreport.report.analysis.outliers import outliers
from weightreport.report.analysis.overview import curves, overview
from weightreport.report.analysis.sampling import model_order, read_stats, sampled_steps
from weightreport.report.analysis.thresholds import Thresholds
from weightreport.report.analysis.weights import distributions, dynamics, stats_table, trajectories

__all__ = ["Finding", "ReportModel", "Section", "analyze", "find_all"]


def _histograms(run, stats: pd.DataFrame) -> pd.DataFrame:
    """Histogram rows at each param's first and last step and each BN tensor's last step."""
    p = stats[stats["kind"] == "param"]
    b = stats[stats["kind"].isin(["bn_input", "bn_output"])]
    wanted = pd.concat([
        p[p["step"] == p.groupby("tensor")["step"].transform("min")],
        p[p["step"] == p.groupby("tensor")["step"].transform("max")],
        b[b["step"] == b.groupby(["tensor", "kind"])["step"].transform("max")],
    ])[["step", "tensor", "kind"]].drop_duplicates()
    if wanted.empty:
        return run.table("histograms", steps=[])
    hist = run.table("histograms", steps=wanted["step"].unique().tolist())
    return hist.merge(wanted, on=["step", "tensor", "kind"]).drop_duplicates(["step", "tensor", "kind"])


def _last(run, table: str, stats: pd.DataFrame, kinds: list[str]) -> pd.DataFrame:
    """Rows of a per-snapshot table at the last snapshot only (these tables grow large).

    The last snapshot is found from the stats table (of ``kinds`` when given); when no
    row is there, the whole table is read.
    """
    sel = stats[stats["kind"].isin(kinds)] if kinds else stats
    if not sel.empty:
        df = run.table(table, steps=[int(sel["step"].max())])
        if not df.empty:
            return df
    return run.table(table)


def analyze(run, title: str | None = None, thresholds: Thresholds | None = None) -> ReportModel:
    """Compute the ReportModel of ``run``.

    Args:
        run: a ``Run`` (from ``load_run``).
        title: the report's title; the run's name when None.
        thresholds: the findings' thresholds (the defaults when None).
    """
    stats = read_stats(run)
    steps = sampled_steps(stats)
    scalars = run.table("scalars")
    traj = run.table("trajectories", steps=steps)
    hist = _histograms(run, stats)
    params = stats[stats["kind"] == "param"]
    grads = stats[stats["kind"] == "grad"]
    acts = stats[stats["kind"] == "activation"]
    found = find_all(stats, scalars, run.table("batchnorm", columns=FINDING_BN_COLUMNS, steps=steps), thresholds,
                     model_order(stats["tensor"], run.manifest))
    return ReportModel(
        title=title or run.name,
        overview=overview(run, stats, scalars, found),
        curves=curves(scalars),
        distributions=distributions(run, params, hist),
        stats=stats_table(run, params),
        outliers=outliers(run, params, traj),
        heatmaps=heatmaps(run),
        dynamics=dynamics(run, params, grads),
        trajectories=trajectories(run, traj),
        activations=activations(run, acts, _last(run, "probes", stats, [])),
        batchnorm=batchnorm(run, hist[hist["kind"].isin(["bn_input", "bn_output"])],
                            _last(run, "batchnorm", stats, ["bn_input", "bn_output"])),
    )
