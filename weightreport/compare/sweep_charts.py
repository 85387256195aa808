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
from weightreport.report.charts.axes import step_x
from weightreport.report.charts.cells import layer_heatmap
from weightreport.report.charts.common import HALF, HEIGHT, Chart, Datasets, finish, make, records
from weightreport.report.charts.special import special_kinds

NO_SCALE = "no scale (RMS < 1e-3 throughout)"
GLANCE = (("update_ratio", "final update ratio ‖Δw‖/‖w‖", "viridis", None),
          ("norm_ratio", "final weight norm / first snapshot's (1: unchanged)", "blueorange", 1.0))


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
    enc = dict(x=step_x(),
               y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False), axis=alt.Axis(format="~g")),
               color=alt.Color("run:N", scale=colors, title=None,
                               legend=alt.Legend(orient="bottom", columns=min(4, len(colors.domain)),
                                                 labelLimit=110, symbolLimit=0)),
               detail=alt.Detail("split:N"),
               tooltip=[alt.Tooltip("run:N"), alt.Tooltip("split:N"), alt.Tooltip("step:Q"),
                        alt.Tooltip("value:Q", format=".4g")])
    base = alt.Chart(data).encode(**enc)
    line = base.mark_line(strokeWidth=1.4).encode(strokeDash=dash)
    points = base.transform_filter("datum.points === 1").mark_point(size=30, filled=True)  # a lone point is drawn
    chart = alt.layer(line, points).properties(width=HALF, height=HEIGHT - 40)
    return make(metric, chart, ds)


def _heatmap(sweep: Sweep, column: str, title: str, scheme: str, mid: float | None,
             ds: Datasets) -> Chart | None:
    f = sweep.finals
    if f.empty or not np.isfinite(f[column].to_numpy(float)).any():
        return None
    unmeasured = ~f["measured"].to_numpy(bool) if column == "norm_ratio" else None
    kinds = special_kinds(f[column].to_numpy(float), log=True, unmeasured=unmeasured,
                          unmeasured_label=NO_SCALE)
    chart = layer_heatmap(ds, f, column, rows=sweep.shared, columns=[r.label for r in sweep.runs],
                          scheme=scheme, mid=mid, special=kinds)
    return make(title, chart, ds, wide=True) if chart is not None else None


def sweep_charts(sweep: Sweep) -> dict[str, list[Chart]]:
    """Charts keyed by the comparison page's section keys (``curves``, ``glance``)."""
    ds, seen = Datasets(), set()
    colors = run_scale([r.label for r in sweep.runs])
    out: dict[str, list[Chart]] = {"curves": [], "glance": []}
    for metric in sweep.metrics:
        if (sweep.curves["metric"] == metric).any():
            out["curves"].append(_curve(sweep, metric, ds, colors))
    for column, title, scheme, mid in GLANCE:
        chart = _heatmap(sweep, column, title, scheme, mid, ds)
        if chart is not None:
            out["glance"].append(chart)
    for lst in out.values():
        finish(lst, seen)
    return out
