"""``RunDiff`` → Vega-Lite charts: curves of both runs overlaid, a layer × step heatmap of the
distance, and per-layer W1 and quantile drift.

Legends keep the two channels of a curve apart: colour is the run (base grey, candidate
blue) and line style the split (training solid, validation dashed); each legend has its
own title, lists only the runs and splits that chart draws, and the split legend's lines
are drawn in a neutral dark colour, never in a run's.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from weightreport.compare.diff import RunDiff
from weightreport.report.analysis.sampling import pick_steps
from weightreport.report.charts.common import (
    FULL,
    HALF,
    HEIGHT,
    Chart,
    Datasets,
    finish,
    layer_param,
    make,
    records,
)

RUNS = {"base": "#9aa5b1", "candidate": "#1f77b4"}
SPLITS = {"training": [1, 0], "validation": [5, 3]}
MAX_HEATMAP_STEPS = 24
"""Step columns of the distance heatmap (evenly spaced over the shared steps, first and last kept)."""
ZERO, MISSING = "0 (identical)", "not comparable"
STATE_COLORS = {ZERO: "#e3e6ea", MISSING: "#ffffff"}


def curve_chart(df: pd.DataFrame, metric: str, ds: Datasets) -> alt.Chart:
    """One metric of both runs: colour by run, line style by split, one legend per channel."""
    runs = [r for r in RUNS if (df["run"] == r).any()]
    splits = [s for s in SPLITS if (df["split"] == s).any()]
    data = ds.add(records(df, ["step", "value", "split", "run"]))
    return alt.Chart(data).mark_line(strokeWidth=1.6).encode(
        x=alt.X("step:Q", title="step"), y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False),
                                                axis=alt.Axis(format="~g")),  # a flat 1e-3 is not "0"
        color=alt.Color("run:N", title="run", sort=runs,
                        scale=alt.Scale(domain=runs, range=[RUNS[r] for r in runs]),
                        legend=alt.Legend(orient="top", symbolType="stroke", symbolStrokeWidth=2.5)),
        strokeDash=alt.StrokeDash("split:N", title="split", sort=splits,
                                  scale=alt.Scale(domain=splits, range=[SPLITS[s] for s in splits]),
                                  legend=alt.Legend(orient="top", symbolType="stroke", symbolStrokeWidth=2,
                                                    symbolStrokeColor="#1d2430")),
        detail="split:N",
        tooltip=[alt.Tooltip("run:N"), alt.Tooltip("split:N"), alt.Tooltip("step:Q"),
                 alt.Tooltip("value:Q", format=".4g")],
    ).properties(width=HALF, height=HEIGHT - 40)


def heatmap_steps(d: RunDiff) -> list[int]:
    """The step columns of the distance heatmap: at most ``MAX_HEATMAP_STEPS`` of the compared steps."""
    if not len(d.distances):
        return []
    return [int(s) for s in pick_steps(d.distances["step"].to_numpy(), MAX_HEATMAP_STEPS)]


def distance_heatmap(d: RunDiff, ds: Datasets) -> Chart | None:
    """W1 per shared layer (rows, model order) and compared step (columns), on a log colour scale.

    A log scale has no place for 0, so cells whose histograms are identical are drawn in
    their own colour with their own legend entry, as are cells that could not be compared
    (a histogram missing on one side); each legend lists only what is drawn.
    """
    steps = heatmap_steps(d)
    if not steps:
        return None
    df = d.distances[d.distances["step"].isin(steps)].copy()
    w1 = df["w1"].astype(float)
    df["state"] = [ZERO if v == 0 else MISSING if pd.isna(v) else "" for v in w1]
    data = ds.add(records(df, ["tensor", "step", "w1", "drift", "state"], int_cols=("step",)))
    rows = [t for t in d.shared if t in set(df["tensor"])]
    step = 14 if len(rows) <= 60 else 9
    x = alt.X("step:O", title="step", sort=steps, axis=alt.Axis(labelAngle=0, labelOverlap=True))
    y = alt.Y("tensor:N", sort=rows, title=None,
              axis=alt.Axis(labelLimit=300, labelFontSize=11 if step >= 14 else 8))
    tip = [alt.Tooltip("tensor:N"), alt.Tooltip("step:O"), alt.Tooltip("w1:Q", format=".4g", title="W1"),
           alt.Tooltip("drift:Q", format=".4g", title="quantile drift")]
    base = alt.Chart(data).encode(x=x, y=y, tooltip=tip)
    layers = []
    if (w1 > 0).any():
        layers.append(base.transform_filter("datum.w1 > 0").mark_rect().encode(
            color=alt.Color("w1:Q", title="W1 (log)", scale=alt.Scale(type="log", scheme="viridis"),
                            legend=alt.Legend(orient="right", gradientLength=160, format=".1~e"))))
    states = [s for s in STATE_COLORS if (df["state"] == s).any()]
    if states:
        layers.append(base.transform_filter("datum.state !== ''").mark_rect(stroke="#9aa5b1", strokeWidth=0.5).encode(
            fill=alt.Fill("state:N", title=None, sort=states,
                          scale=alt.Scale(domain=states, range=[STATE_COLORS[s] for s in states]),
                          legend=alt.Legend(orient="right"))))
    chart = alt.layer(*layers).properties(width=min(FULL - 360, 44 * len(steps)), height=alt.Step(step))
    return make("Wasserstein-1 distance by layer and step", chart.resolve_scale(color="independent"), ds,
                wide=True, glance=True)


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
                x=alt.X("step:Q", title="step"), y=alt.Y(f"{col}:Q", title=col),
                tooltip=[alt.Tooltip("step:Q"), alt.Tooltip(f"{col}:Q", format=".4g")],
            ).add_params(layer_param(d.shared)).properties(width=HALF, height=HEIGHT)
            out["layers"].append(make(title, chart, ds, layered=True))
    for lst in out.values():
        finish(lst, seen)
    return out
