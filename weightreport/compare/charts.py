"""``RunDiff`` → Vega-Lite charts: curves of both runs overlaid, per-layer W1 and quantile drift."""

from __future__ import annotations

import altair as alt

from weightreport.compare.diff import RunDiff
from weightreport.report.charts.common import (
    HALF,
    HEIGHT,
    Chart,
    Datasets,
    finish,
    layer_param,
    make,
    records,
)

RUN_COLORS = alt.Scale(domain=["base", "candidate"], range=["#9aa5b1", "#1f77b4"])


def diff_charts(d: RunDiff) -> dict[str, list[Chart]]:
    """Charts keyed by the comparison page's section keys (``curves``, ``layers``)."""
    ds, seen = Datasets(), set()
    out: dict[str, list[Chart]] = {"curves": [], "layers": []}
    for metric in d.metrics:
        df = d.curves[d.curves["metric"] == metric]
        data = ds.add(records(df, ["step", "value", "split", "run"]))
        chart = alt.Chart(data).mark_line(strokeWidth=1.6).encode(
            x=alt.X("step:Q", title="step"), y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)),
            color=alt.Color("run:N", scale=RUN_COLORS, title=None, legend=alt.Legend(orient="top")),
            strokeDash=alt.StrokeDash("split:N", title=None, legend=alt.Legend(orient="top")),
            detail="split:N",
            tooltip=[alt.Tooltip("run:N"), alt.Tooltip("split:N"), alt.Tooltip("step:Q"),
                     alt.Tooltip("value:Q", format=".4g")],
        ).properties(width=HALF, height=HEIGHT - 40)
        out["curves"].append(make(metric, chart, ds))
    if len(d.distances):
        data = ds.add(records(d.distances, ["tensor", "step", "w1", "drift"], int_cols=("step",)))
        for col, title in (("w1", "Wasserstein-1 distance"), ("drift", "quantile drift (max |Δ| over p1…p99)")):
            chart = alt.Chart(data).transform_filter("datum.tensor === layer").mark_line(
                point=alt.OverlayMarkDef(size=14), color="#1f5fae").encode(
                x=alt.X("step:Q", title="step"), y=alt.Y(f"{col}:Q", title=col),
                tooltip=[alt.Tooltip("step:Q"), alt.Tooltip(f"{col}:Q", format=".4g")],
            ).add_params(layer_param(d.shared)).properties(width=HALF, height=HEIGHT)
            out["layers"].append(make(title, chart, ds, layered=True))
    for lst in out.values():
        finish(lst, seen)
    return out
