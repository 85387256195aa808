"""``Sweep`` → Vega-Lite charts: every run's curves overlaid, and each shared layer's final state per run.

Run colours come from one categorical scale over the run labels in the order given
(``tableau10`` up to 10 runs, ``tableau20`` up to 20, then a repeating ``category20``
with the run named in every tooltip). The layer × run heatmaps use a log colour scale;
a cell whose value is 0, or is not finite, cannot sit on it and is drawn in its own
colour with its own legend entry instead of being dropped; so is a norm ratio that has
no scale to count from (a tensor whose RMS stayed below 1e-3, such as a bias at 0).
"""

from __future__ import annotations

import altair as alt
import numpy as np

from weightreport.compare.sweep import Sweep
from weightreport.report.charts.common import HALF, HEIGHT, Chart, Datasets, finish, make, records

FULL_WIDTH = 760
SPECIAL = {"zero": ("0", "#3b3b3b"), "nonfinite": ("NaN or Inf", "#d62728"),
           "unmeasured": ("no scale (RMS < 1e-3 throughout)", "#d9dde3")}
GLANCE = (("update_ratio", "final update ratio ‖Δw‖/‖w‖", "viridis"),
          ("norm_ratio", "final weight norm / first snapshot's", "blueorange"))


def run_scale(labels: list[str]) -> alt.Scale:
    """One colour per run, in the order given."""
    scheme = "tableau10" if len(labels) <= 10 else "tableau20" if len(labels) <= 20 else "category20"
    return alt.Scale(domain=labels, scheme=scheme)


def _curve(sweep: Sweep, metric: str, ds: Datasets, colors: alt.Scale) -> Chart:
    df = sweep.curves[sweep.curves["metric"] == metric]
    df = df.assign(points=df.groupby(["run", "split"])["step"].transform("size"))
    splits = sorted(set(df["split"]))
    data = ds.add(records(df, ["step", "value", "split", "run", "points"], int_cols=("step", "points")))
    dash = (alt.StrokeDash("split:N", title=None, scale=alt.Scale(domain=splits, range=[[1, 0], [5, 3]][:len(splits)]),
                           legend=alt.Legend(orient="top")) if len(splits) > 1 else alt.value([1, 0]))
    enc = dict(x=alt.X("step:Q", title="step"),
               y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False), axis=alt.Axis(format="~g")),
               color=alt.Color("run:N", scale=colors, title=None,
                               legend=alt.Legend(orient="bottom", columns=min(4, len(colors.domain)),
                                                 labelLimit=110, symbolLimit=0)),
               detail="split:N",
               tooltip=[alt.Tooltip("run:N"), alt.Tooltip("split:N"), alt.Tooltip("step:Q"),
                        alt.Tooltip("value:Q", format=".4g")])
    base = alt.Chart(data).encode(**enc)
    line = base.mark_line(strokeWidth=1.4).encode(strokeDash=dash)
    points = base.transform_filter("datum.points === 1").mark_point(size=30, filled=True)  # a lone point is drawn
    chart = alt.layer(line, points).properties(width=HALF, height=HEIGHT - 40)
    return make(metric, chart, ds)


def _heatmap(sweep: Sweep, column: str, title: str, scheme: str, ds: Datasets) -> Chart | None:
    f = sweep.finals
    if f.empty or not np.isfinite(f[column].to_numpy(float)).any():
        return None
    labels = [r.label for r in sweep.runs]
    v = f[column].to_numpy(float)
    unmeasured = ~f["measured"].to_numpy(bool) if column == "norm_ratio" else np.zeros(len(f), bool)
    special = np.where(unmeasured, SPECIAL["unmeasured"][0],
                       np.where(~np.isfinite(v), SPECIAL["nonfinite"][0], np.where(v == 0, SPECIAL["zero"][0], "")))
    recs = records(f.assign(special=special), ["tensor", "run", column, "special"])
    present = [SPECIAL[k] for k in SPECIAL if SPECIAL[k][0] in set(special)]
    n = len(sweep.shared)
    row = max(3, min(14, 900 // max(n, 1)))
    col = max(10, min(36, FULL_WIDTH // max(len(labels), 1)))
    y = alt.Y("tensor:N", sort=sweep.shared, title=None,
              axis=alt.Axis(labelLimit=260, labelFontSize=10) if row >= 9 else None)
    x = alt.X("run:N", sort=labels, title=None, axis=alt.Axis(labelAngle=-40, labelLimit=140))
    tip = [alt.Tooltip("tensor:N"), alt.Tooltip("run:N"), alt.Tooltip(f"{column}:Q", format=".3g")]
    base = alt.Chart(ds.add(recs)).encode(x=x, y=y, tooltip=tip)
    cells = base.transform_filter("datum.special === ''").mark_rect().encode(
        color=alt.Color(f"{column}:Q", title=None, scale=alt.Scale(type="log", scheme=scheme),
                        legend=alt.Legend(orient="right", format=".1e")))
    layers = [cells]
    if present:
        layers.append(base.transform_filter("datum.special !== ''").mark_rect().encode(
            fill=alt.Fill("special:N", title=None, legend=alt.Legend(orient="right"),
                          scale=alt.Scale(domain=[p[0] for p in present], range=[p[1] for p in present]))))
    chart = alt.layer(*layers).resolve_scale(color="independent").properties(
        width=alt.Step(col), height=alt.Step(row))
    return make(title, chart, ds, wide=True)


def sweep_charts(sweep: Sweep) -> dict[str, list[Chart]]:
    """Charts keyed by the comparison page's section keys (``curves``, ``glance``)."""
    ds, seen = Datasets(), set()
    colors = run_scale([r.label for r in sweep.runs])
    out: dict[str, list[Chart]] = {"curves": [], "glance": []}
    for metric in sweep.metrics:
        if (sweep.curves["metric"] == metric).any():
            out["curves"].append(_curve(sweep, metric, ds, colors))
    for column, title, scheme in GLANCE:
        chart = _heatmap(sweep, column, title, scheme, ds)
        if chart is not None:
            out["glance"].append(chart)
    for lst in out.values():
        finish(lst, seen)
    return out
