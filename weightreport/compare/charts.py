"""``RunDiff`` → Vega-Lite charts: curves of both runs overlaid, a layer × step heatmap of the
distance (the run report's glance heatmap, over ``RunDiff.grid``), and per-layer W1 and
quantile drift.

Legends keep the two channels of a curve apart: colour is the run (base grey, candidate
blue) and line style the split (training solid, validation dashed); each legend has its
own title, lists only the runs and splits that chart draws, and the split legend's lines
are drawn in a neutral dark colour, never in a run's.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from weightreport.compare.diff import RunDiff
from weightreport.report.analysis.layer_grid import module_groups
from weightreport.report.charts.axes import step_x
from weightreport.report.charts.common import (
    HALF,
    HEATMAP_DIGITS,
    HEIGHT,
    Chart,
    Datasets,
    finish,
    layer_param,
    make,
    nums,
    records,
)
from weightreport.report.charts.layer_grid import (
    group_records,
    gutter,
    heatmap_chart,
    max_groups,
    row_records,
)
from weightreport.report.charts.special import SPECIAL_COLOURS, UNMEASURED
from weightreport.report.charts.special import ZERO as SPECIAL_ZERO

RUNS = {"base": "#9aa5b1", "candidate": "#1f77b4"}
SPLITS = {"training": [1, 0], "validation": [5, 3]}
ZERO, MISSING = "0 (identical)", "not comparable"
STATE_COLOURS = {ZERO: SPECIAL_COLOURS[SPECIAL_ZERO], MISSING: SPECIAL_COLOURS[UNMEASURED]}


def curve_chart(df: pd.DataFrame, metric: str, ds: Datasets) -> alt.Chart:
    """One metric of both runs: colour by run, line style by split, one legend per channel."""
    runs = [r for r in RUNS if (df["run"] == r).any()]
    splits = [s for s in SPLITS if (df["split"] == s).any()]
    data = ds.add(records(df, ["step", "value", "split", "run"]))
    return alt.Chart(data).mark_line(strokeWidth=1.6).encode(
        x=step_x(), y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False),
                            axis=alt.Axis(format="~g")),  # a flat 1e-3 is not "0"
        color=alt.Color("run:N", title="run", sort=runs,
                        scale=alt.Scale(domain=runs, range=[RUNS[r] for r in runs]),
                        legend=alt.Legend(orient="top", symbolType="stroke", symbolStrokeWidth=2.5)),
        strokeDash=alt.StrokeDash("split:N", title="split", sort=splits,
                                  scale=alt.Scale(domain=splits, range=[SPLITS[s] for s in splits]),
                                  legend=alt.Legend(orient="top", symbolType="stroke", symbolStrokeWidth=2,
                                                    symbolStrokeColor="#1d2430")),
        detail=alt.Detail("split:N"),
        tooltip=[alt.Tooltip("run:N"), alt.Tooltip("split:N"), alt.Tooltip("step:Q"),
                 alt.Tooltip("value:Q", format=".4g")],
    ).properties(width=HALF, height=HEIGHT - 40)


def distance_heatmap(d: RunDiff, ds: Datasets) -> Chart | None:
    """W1 per shared layer (rows, model order) and step range (columns), on a log colour scale.

    The glance's heatmap (``report.charts.layer_grid``) over ``RunDiff.grid``: module groups
    in the left gutter, at most ``MAX_HEATMAP_ROWS`` rows (a row of several tensors holds
    their largest distance, and its tooltip names the tensor) and ``MAX_HEATMAP_STEPS``
    columns. A log scale has no place for 0, so cells whose histograms are identical have
    their own colour and legend entry, as do cells that could not be compared; each legend
    lists only what is drawn.
    """
    g = d.grid
    if g is None:
        return None
    firsts = [m[0] for m in g.members]  # a row's module groups are its first tensor's
    groups = module_groups(firsts, set(d.shared), max_groups(len(g.rows)))
    flat = ("at",) if g.aggregated else ()
    records = row_records(g.rows, g.cells, groups, g.bins.count, flat=flat, members=g.members)
    valued = g.cells["value"].dropna().to_numpy(float)
    present = ([ZERO] if (valued <= 0).any() else []) + ([MISSING] if g.cells["bad"].any() else [])
    tip = "W1, the largest among its tensors and steps" if g.aggregated else "W1 (largest in range)"
    chart = heatmap_chart(ds, records, group_records(groups), rows=len(g.rows), scale="log", legend="W1 (log)",
                          first=g.bins.first, span=g.bins.span, columns=g.columns, present=present,
                          values=nums(valued[valued > 0], HEATMAP_DIGITS), width=gutter(len(g.rows))[0],
                          value_title=tip, zero=ZERO, flag=MISSING, colours=STATE_COLOURS,
                          flat=[alt.Tooltip(f"{f}:N", title="largest in") for f in flat],
                          row_title="layers" if g.aggregated else "layer")
    title = ("Wasserstein-1 distance by layer group and step (max over each row's tensors)" if g.aggregated
             else "Wasserstein-1 distance by layer and step")
    return make(title, chart, ds, wide=True, glance=True)


def diff_charts(d: RunDiff) -> dict[str, list[Chart]]:
    """Charts keyed by the comparison page's section keys (``curves``, ``distances``, ``layers``)."""
    ds, seen = Datasets(), set()
    out: dict[str, list[Chart]] = {"curves": [], "distances": [], "layers": []}
    for metric in d.metrics:
        out["curves"].append(make(metric, curve_chart(d.curves[d.curves["metric"] == metric], metric, ds), ds))
    if len(d.distances):
        heat = distance_heatmap(d, ds)
        if heat is not None:
            out["distances"].append(heat)
        data = ds.add(records(d.distances, ["tensor", "step", "w1", "drift"], int_cols=("step",)))
        for col, title in (("w1", "Wasserstein-1 distance"), ("drift", "quantile drift (max |Δ| over p1…p99)")):
            chart = alt.Chart(data).transform_filter("datum.tensor === layer").mark_line(
                point=alt.OverlayMarkDef(size=14), color="#1f5fae").encode(
                x=step_x(), y=alt.Y(f"{col}:Q", title=col),
                tooltip=[alt.Tooltip("step:Q"), alt.Tooltip(f"{col}:Q", format=".4g")],
            ).add_params(layer_param(d.shared)).properties(width=HALF, height=HEIGHT)
            out["layers"].append(make(title, chart, ds, layered=True))
    for lst in out.values():
        finish(lst, seen)
    return out
