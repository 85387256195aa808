"""Charts for training curves, weight distributions, outliers, dynamics and trajectories."""

from __future__ import annotations

import altair as alt
import pandas as pd

from weightreport.report.analysis.model import (
    Curves,
    Distributions,
    Dynamics,
    Outliers,
    Trajectories,
)
from weightreport.report.charts.common import (
    FULL,
    HALF,
    HEIGHT,
    Chart,
    Datasets,
    columnar,
    layer_filter,
    layer_param,
    make,
    records,
)

PCTS = ["p1", "p5", "p25", "p50", "p75", "p95", "p99"]
SPLIT_COLORS = alt.Scale(domain=["training", "validation"], range=["#1f77b4", "#ff7f0e"])
SNAPSHOT_COLORS = alt.Scale(domain=["first", "last"], range=["#9aa5b1", "#1f77b4"])


def curve_charts(section: Curves, ds: Datasets) -> list[Chart]:
    """One line chart per metric, training and validation overlaid."""
    charts = []
    for metric in section.metrics:
        df = section.data[section.data["metric"] == metric]
        data = ds.add(records(df, ["step", "value", "split", "name"]))
        log = metric.startswith("lr") and bool((df["value"] > 0).all()) and df["value"].nunique() > 1
        y = alt.Y("value:Q", title=metric, scale=alt.Scale(type="log") if log else alt.Scale(zero=False))
        chart = alt.Chart(data).mark_line(point=len(df) <= 60, strokeWidth=1.6).encode(
            x=alt.X("step:Q", title="step"), y=y,
            color=alt.Color("split:N", scale=SPLIT_COLORS, title=None, legend=alt.Legend(orient="top")),
            tooltip=[alt.Tooltip("name:N"), alt.Tooltip("step:Q"), alt.Tooltip("value:Q", format=".4g")],
        ).properties(width=HALF, height=HEIGHT - 40)
        charts.append(make(metric, chart, ds))
    return charts


def _hist_chart(ds: Datasets, hist: pd.DataFrame, color_field: str, scale: alt.Scale, title: str,
                group: str = "tensor", layers: list[str] | None = None) -> alt.Chart:
    data = ds.add(records(hist, [group, color_field, "left", "right", "density"]))
    chart = alt.Chart(data).mark_rect(opacity=0.55).encode(
        x=alt.X("left:Q", title="value"), x2="right:Q", y=alt.Y("density:Q", title="density"),
        y2=alt.datum(0),
        color=alt.Color(f"{color_field}:N", scale=scale, title=None, legend=alt.Legend(orient="top")),
        tooltip=[alt.Tooltip(f"{color_field}:N"), alt.Tooltip("left:Q", format=".4g", title="from"),
                 alt.Tooltip("right:Q", format=".4g", title="to"), alt.Tooltip("density:Q", format=".4g")],
    ).properties(width=HALF, height=HEIGHT, title=title)
    if layers is not None:
        chart = chart.add_params(layer_param(layers)).transform_filter(f"datum.{group} === layer")
    return chart


def bands_chart(ds: Datasets, df: pd.DataFrame, layers: list[str], title: str, y_title: str = "value") -> alt.Chart:
    """Percentile bands (p1–p99, p5–p95, p25–p75) and the median over steps, per layer."""
    data = ds.add(columnar(df, "tensor", ["step", *PCTS]))
    base = alt.Chart(data).transform_filter(layer_filter().filter).transform_flatten(["step", *PCTS])
    x = alt.X("step:Q", title="step")
    bands = [base.mark_area(opacity=op, color="#1f77b4").encode(
        x=x, y=alt.Y(f"{lo}:Q", title=y_title, scale=alt.Scale(zero=False)), y2=f"{hi}:Q")
        for lo, hi, op in (("p1", "p99", 0.15), ("p5", "p95", 0.2), ("p25", "p75", 0.3))]
    median = base.mark_line(color="#0b3d91", strokeWidth=1.5).encode(
        x=x, y="p50:Q", tooltip=[alt.Tooltip("step:Q")] + [alt.Tooltip(f"{p}:Q", format=".4g") for p in PCTS])
    return alt.layer(*bands, median).add_params(layer_param(layers)).properties(
        width=HALF, height=HEIGHT, title=title)


def distribution_charts(section: Distributions, ds: Datasets) -> list[Chart]:
    """Last-vs-first histogram and percentile bands, both following the layer selector."""
    hist = _hist_chart(ds, section.hist, "snapshot", SNAPSHOT_COLORS, "histogram: first vs last snapshot",
                       layers=section.layers)
    bands = bands_chart(ds, section.bands, section.layers, "percentiles over time")
    return [make("Histogram", hist, ds, layered=True),
            make("Distribution over time", bands, ds, layered=True)]


def _series_chart(data: alt.Data, all_cols: list[str], layers: list[str], cols: list[str], title: str,
                  log: bool = False, y_title: str = "value") -> alt.Chart:
    """Lines of ``cols`` over steps for the selected layer; ``data`` is ``columnar`` with ``all_cols``."""
    scale = alt.Scale(type="log") if log else alt.Scale(zero=False)
    base = (alt.Chart(data).transform_filter(layer_filter().filter).transform_flatten(["step", *all_cols])
            .transform_fold(cols, as_=["series", "value"]))
    if log:
        base = base.transform_filter("datum.value > 0")
    chart = base.mark_line(point=alt.OverlayMarkDef(size=12), strokeWidth=1.5).encode(
        x=alt.X("step:Q", title="step"), y=alt.Y("value:Q", title=y_title, scale=scale),
        color=alt.Color("series:N", title=None, legend=alt.Legend(orient="top") if len(cols) > 1 else None),
        tooltip=[alt.Tooltip("series:N"), alt.Tooltip("step:Q"), alt.Tooltip("value:Q", format=".4g")],
    )
    return chart.add_params(layer_param(layers)).properties(width=HALF, height=HEIGHT, title=title)


def outlier_charts(section: Outliers, ds: Datasets) -> list[Chart]:
    """Outlier counts over time (per layer) and box-and-whisker summaries (all shown layers)."""
    cols = ["outliers_3std", "outliers_6std", "outliers_iqr"]
    counts = _series_chart(ds.add(columnar(section.counts, "tensor", ["step", *cols])), cols, section.layers,
                           cols, "outlier counts over time", y_title="count")
    b = section.boxes
    data = ds.add(records(b, ["tensor", "min", "p1", "p25", "p50", "p75", "p99", "max"]))
    order = list(b["tensor"])
    y = alt.Y("tensor:N", sort=order, title=None, axis=alt.Axis(labelLimit=220))
    base = alt.Chart(data)
    tip = [alt.Tooltip("tensor:N")] + [alt.Tooltip(f"{c}:Q", format=".4g") for c in
                                      ("min", "p1", "p25", "p50", "p75", "p99", "max")]
    boxes = alt.layer(
        base.mark_rule(color="#555").encode(y=y, x=alt.X("p1:Q", title="value"), x2="p99:Q", tooltip=tip),
        base.mark_bar(size=10, color="#8fb8de").encode(y=y, x="p25:Q", x2="p75:Q", tooltip=tip),
        base.mark_tick(color="#0b3d91", thickness=2, size=12).encode(y=y, x="p50:Q", tooltip=tip),
        base.mark_point(color="#d62728", size=18, filled=True).encode(y=y, x="min:Q", tooltip=tip),
        base.mark_point(color="#d62728", size=18, filled=True).encode(y=y, x="max:Q", tooltip=tip),
    ).properties(width=FULL - 240, height=alt.Step(16), title="last snapshot: p1–p99, p25–p75, median, min/max")
    return [make("Outlier counts", counts, ds, layered=True),
            make("Box and whisker", boxes, ds, wide=True)]


def dynamics_charts(section: Dynamics, ds: Datasets) -> list[Chart]:
    """Update ratio (log), gradient norm, and distance from init for the selected layer."""
    cols = ["update_ratio", "grad_norm", "dist_from_init"]
    data, layers = ds.add(columnar(section.data, "tensor", ["step", *cols])), section.layers
    return [
        make("Update ratio", _series_chart(data, cols, layers, ["update_ratio"], "update-to-weight ratio",
                                           log=True, y_title="‖Δw‖ / ‖w‖"), ds, layered=True),
        make("Gradient norm", _series_chart(data, cols, layers, ["grad_norm"], "gradient L2 norm",
                                            y_title="‖g‖"), ds, layered=True),
        make("Distance from init", _series_chart(data, cols, layers, ["dist_from_init"],
                                                 "distance from initialisation", y_title="‖w − w₀‖"),
             ds, layered=True),
    ]


def trajectory_charts(section: Trajectories, ds: Datasets) -> list[Chart]:
    """Small multiples: one panel per recorded weight."""
    df = section.data.assign(panel=lambda d: d["tensor"] + "[" + d["index"].astype(str) + "]")
    order = list(dict.fromkeys(df["panel"]))  # analysis gives the panels in model order
    data = ds.add(columnar(df, "panel", ["step", "value"]))
    chart = alt.Chart(data).transform_flatten(["step", "value"]).mark_line(color="#1f77b4", strokeWidth=1.5).encode(
        x=alt.X("step:Q", title="step"),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False), axis=alt.Axis(format=".3~g")),
        tooltip=[alt.Tooltip("panel:N", title="weight"), alt.Tooltip("step:Q"), alt.Tooltip("value:Q", format=".5g")],
    ).properties(width=125, height=100).facet(
        facet=alt.Facet("panel:N", sort=order, title=None, header=alt.Header(labelLimit=160)),
        columns=min(5, len(order))).resolve_scale(y="independent").resolve_axis(x="independent")
    return [make("Trajectories", chart, ds, wide=True)]
