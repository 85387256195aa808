"""Charts for weight heatmaps, activations (with probe captures) and BatchNorm layers."""

from __future__ import annotations

import altair as alt
import pandas as pd

from weightreport.report.analysis.model import Activations, BatchNorm, Heatmaps
from weightreport.report.charts.common import (
    HALF,
    HEATMAP_DIGITS,
    HEIGHT,
    Chart,
    Datasets,
    columnar,
    layer_param,
    make,
    nums,
)
from weightreport.report.charts.training import _hist_chart, bands_chart

SIDE_COLORS = alt.Scale(domain=["input", "output"], range=["#ff7f0e", "#1f77b4"])
MATRIX = 260
CELL = 5
MAX_UNIT_LAYERS = 8
DIVERGING = alt.Scale(scheme="blueorange", domainMid=0)


def _matrix_transforms(chart: alt.Chart) -> alt.Chart:
    """Expand ``values`` arrays into cells with ``row`` and ``col`` (row-major)."""
    return (chart.transform_flatten(["values"], as_=["value"])
            .transform_window(i="row_number()", groupby=["key"])
            .transform_calculate(row="floor((datum.i - 1) / datum.cols)", col="(datum.i - 1) % datum.cols",
                                 row2="floor((datum.i - 1) / datum.cols) + 1", col2="(datum.i - 1) % datum.cols + 1"))


def _matrix_encoding(chart: alt.Chart, scale: alt.Scale, label: str) -> alt.Chart:
    return chart.mark_rect().encode(
        x=alt.X("col:Q", title=None, axis=None, scale=alt.Scale(nice=False, zero=True)), x2="col2:Q",
        y=alt.Y("row:Q", title=None, axis=None, scale=alt.Scale(nice=False, zero=True, reverse=True)), y2="row2:Q",
        color=alt.Color("value:Q", scale=scale, title=None),
        tooltip=[alt.Tooltip(f"{label}:N"), alt.Tooltip("row:Q"), alt.Tooltip("col:Q"),
                 alt.Tooltip("value:Q", format=".3g")],
    )


def heatmap_charts(section: Heatmaps, ds: Datasets) -> list[Chart]:
    """First and last 2-D weights of the selected layer, side by side."""
    recs = [{"tensor": m.tensor, "key": f"{m.tensor}@{m.step}", "snapshot": f"step {m.step}", "step": m.step,
             "rows": m.rows, "cols": m.cols, "values": nums(m.values, HEATMAP_DIGITS)} for m in section.maps]
    base = alt.Chart(ds.add(recs)).transform_filter("datum.tensor === layer")
    # Band scales with a fixed step keep each matrix's aspect ratio (a 48 × 3 conv stack
    # is drawn tall and thin, not stretched square); 64 cells make 320 pixels.
    chart = _matrix_transforms(base).mark_rect().encode(
        x=alt.X("col:O", title=None, axis=None), y=alt.Y("row:O", title=None, axis=None),
        color=alt.Color("value:Q", scale=DIVERGING, title=None),
        tooltip=[alt.Tooltip("snapshot:N"), alt.Tooltip("row:Q"), alt.Tooltip("col:Q"),
                 alt.Tooltip("value:Q", format=".3g")],
        column=alt.Column("snapshot:N", title=None, sort=alt.SortField("step")),
    ).add_params(layer_param(section.layers)).properties(
        width=alt.Step(CELL), height=alt.Step(CELL))
    return [make("Heatmap", chart, ds, layered=True, wide=True)]


def _probe_chart(ds: Datasets, probes: pd.DataFrame) -> alt.Chart:
    recs = []
    for p in probes.itertuples(index=False):
        label = f"{p.module} · {p.kind} {int(p.index)}"
        recs.append({"key": label, "label": label, "rows": int(p.rows), "cols": int(p.cols),
                     "values": nums(p.values, HEATMAP_DIGITS)})
    order = [r["label"] for r in recs]
    chart = _matrix_encoding(_matrix_transforms(alt.Chart(ds.add(recs))),
                             alt.Scale(scheme="viridis"), "label")
    return chart.properties(width=150, height=150).facet(
        facet=alt.Facet("label:N", sort=order, title=None, header=alt.Header(labelLimit=170)),
        columns=4).resolve_scale(color="independent", x="independent", y="independent")


def activation_charts(section: Activations, ds: Datasets) -> list[Chart]:
    """Output percentile bands and dead/saturated fractions (per layer), and probe heatmaps."""
    charts = []
    if not section.bands.empty:
        charts.append(make("Activation distribution", bands_chart(
            ds, section.bands, section.layers, "output percentiles over time", "activation"), ds, layered=True))
    if not section.units.empty:
        u = section.units
        worst = (u.groupby("tensor")[["dead", "saturated"]].max().max(axis=1)
                 .sort_values(ascending=False, kind="stable").head(MAX_UNIT_LAYERS).index)
        u = u[u["tensor"].isin(set(worst))].melt(["tensor", "step"], ["dead", "saturated"], "kind", "fraction")
        u = u.dropna(subset=["fraction"])  # a ReLU has no saturated series, a tanh no dead one
        u = u.assign(series=u["tensor"] + " " + u["kind"])
        chart = alt.Chart(ds.add(columnar(u, "series", ["step", "fraction"]))).transform_flatten(
            ["step", "fraction"]).mark_line(strokeWidth=1.5).encode(
            x=alt.X("step:Q", title="step"), y=alt.Y("fraction:Q", title="fraction of units",
                                                    scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("series:N", title=None,
                            legend=alt.Legend(orient="bottom", columns=2, labelLimit=180)),
            tooltip=[alt.Tooltip("series:N"), alt.Tooltip("step:Q"), alt.Tooltip("fraction:Q", format=".1%")],
        ).properties(width=HALF, height=HEIGHT, title=f"dead / saturated units (≤ {MAX_UNIT_LAYERS} worst layers)")
        charts.append(make("Dead and saturated units", chart, ds))
    if not section.probes.empty:
        charts.append(make("Probe captures", _probe_chart(ds, section.probes), ds, wide=True))
    return charts


def batchnorm_charts(section: BatchNorm, ds: Datasets) -> list[Chart]:
    """Input vs output histogram, batch vs running statistics, gamma and beta, per BN layer."""
    layers = section.layers
    charts = []
    if not section.hist.empty:
        charts.append(make("Input vs output", _hist_chart(
            ds, section.hist, "side", SIDE_COLORS, "input vs output distribution", group="module", layers=layers),
            ds, layered=True))
    ch = section.channels
    if ch.empty:
        return charts
    cols = ["channel", "batch_mean", "running_mean", "batch_var", "running_var", "weight", "bias"]
    data = ds.add(columnar(ch, "module", cols, int_cols=("channel",)))
    base = alt.Chart(data).transform_filter("datum.module === layer").transform_flatten(cols)
    for stat in ("mean", "var"):
        pair = [f"batch_{stat}", f"running_{stat}"]
        c = base.transform_fold(pair, as_=["series", "value"]).mark_point(filled=True, size=22).encode(
            x=alt.X("channel:Q", title="channel"), y=alt.Y("value:Q", title=stat, scale=alt.Scale(zero=False)),
            color=alt.Color("series:N", title=None, scale=alt.Scale(domain=pair, range=["#ff7f0e", "#1f77b4"]),
                            legend=alt.Legend(orient="top")),
            tooltip=[alt.Tooltip("channel:Q"), alt.Tooltip("series:N"), alt.Tooltip("value:Q", format=".4g")],
        ).add_params(layer_param(layers)).properties(width=HALF, height=HEIGHT - 40,
                                                     title=f"batch vs running {stat} per channel")
        charts.append(make(f"Batch vs running {stat}", c, ds, layered=True))
    gb = base.transform_fold(["weight", "bias"], as_=["param", "value"]).transform_filter(
        "isValid(datum.value)").mark_bar(opacity=0.8).encode(
        x=alt.X("value:Q", bin=alt.Bin(maxbins=30), title="value"), y=alt.Y("count():Q", title="channels"),
        color=alt.Color("param:N", title=None, scale=alt.Scale(domain=["weight", "bias"], range=["#2ca02c", "#9467bd"]),
                        legend=alt.Legend(orient="top", labelExpr="datum.label === 'weight' ? 'gamma (weight)' : 'beta (bias)'")),
        tooltip=[alt.Tooltip("param:N"), alt.Tooltip("count():Q", title="channels")],
    ).add_params(layer_param(layers)).properties(width=HALF, height=HEIGHT - 40, title="gamma and beta across channels")
    charts.append(make("Gamma and beta", gb, ds, layered=True))
    return charts
