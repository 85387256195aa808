"""Chart builders shared by several sections: histograms, percentile bands, per-layer
series and matrix cells (each returns an Altair chart; sections wrap it with ``make``)."""

from __future__ import annotations

import altair as alt
import pandas as pd

from weightreport.report.charts.axes import (
    blank_note,
    domain_pad,
    integer_axis,
    log_axis,
    log_zero_layers,
    step_x,
    value_axis,
)
from weightreport.report.charts.common import (
    HALF,
    HEIGHT,
    Datasets,
    columnar,
    layer_filter,
    layer_param,
    records,
)

PCTS = ["p1", "p5", "p25", "p50", "p75", "p95", "p99"]
MAX_POINTED = 60
"""A series of at most this many values has a point at each; a longer one only at isolated values."""


def hist_chart(ds: Datasets, hist: pd.DataFrame, color_field: str, scale: alt.Scale, title: str,
               group: str = "tensor", layers: list[str] | None = None) -> alt.Chart:
    """Histogram bars coloured by ``color_field``; per layer of ``group`` when ``layers`` is given."""
    data = ds.add(records(hist, [group, color_field, "left", "right", "density"]))
    chart = alt.Chart(data).mark_rect(opacity=0.55).encode(
        x=alt.X("left:Q", title="value", axis=value_axis("value")), x2=alt.X2("right:Q"),
        y=alt.Y("density:Q", title="density", axis=value_axis("density")),
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
    x = step_x()
    scale = alt.Scale(zero=False)
    bands = [base.mark_area(opacity=op, color="#1f77b4").encode(
        x=x, y=alt.Y(f"{lo}:Q", title=y_title, scale=scale, axis=value_axis(y_title)), y2=f"{hi}:Q")
        for lo, hi, op in (("p1", "p99", 0.15), ("p5", "p95", 0.2), ("p25", "p75", 0.3))]
    median = base.mark_line(color="#0b3d91", strokeWidth=1.5).encode(
        x=x, y=alt.Y("p50:Q"), tooltip=[alt.Tooltip("step:Q")] + [alt.Tooltip(f"{p}:Q", format=".4g") for p in PCTS])
    lone = base.transform_filter("isValid(datum.p50)").transform_joinaggregate(n="count()").transform_filter(
        "datum.n === 1").mark_point(filled=True, size=30, color="#0b3d91").encode(x=x, y=alt.Y("p50:Q"))
    pad = domain_pad(base, "p50", y_title, scale=scale)
    return alt.layer(*bands, median, lone, pad).add_params(layer_param(layers)).properties(
        width=HALF, height=HEIGHT, title=title)


def series_chart(data: alt.Data, all_cols: list[str], layers: list[str], cols: list[str], title: str,
                 log: bool = False, y_title: str = "value", whole: bool = False) -> alt.Chart:
    """Lines of ``cols`` over steps for the selected layer; ``data`` is ``columnar`` with ``all_cols``.

    Missing values break the lines (nothing bridges a gap). On a log scale (``log``) a zero
    breaks the line too and is drawn as a marker on a floor line labelled "0"
    (``axes.log_zero_layers``) and the axis is labelled at powers of ten (``axes.log_axis``);
    a constant series gets a padded domain (``axes.domain_pad``). ``whole``: the values are
    counts, and the axis has integer ticks only.
    """
    scale = alt.Scale(type="log") if log else alt.Scale(zero=False)
    base = (alt.Chart(data).transform_filter(layer_filter().filter).transform_flatten(["step", *all_cols])
            .transform_fold(cols, as_=["series", "value"]))
    x = step_x()
    color = alt.Color("series:N", title=None, scale=alt.Scale(domain=cols),
                      legend=alt.Legend(orient="top") if len(cols) > 1 else None)
    plotted = base.transform_calculate(shown="datum.value > 0 ? datum.value : null") if log else base
    field = "shown" if log else "value"
    axis = log_axis(y_title) if log else integer_axis(y_title) if whole else value_axis(y_title)
    y = alt.Y(f"{field}:Q", title=y_title, scale=scale, axis=axis)
    tooltip = [alt.Tooltip("series:N"), alt.Tooltip("step:Q"), alt.Tooltip("value:Q", format=".4g")]
    line = plotted.mark_line(strokeWidth=1.5).encode(x=x, y=y, color=color, tooltip=tooltip)
    # A point at every value of a short series, and at an isolated value of a long one
    # (between gaps no line is drawn through it); 150 points a series would bury the line.
    points = plotted.transform_window(
        window=[alt.WindowFieldDef(op="lag", field=field, **{"as": "prev"}),
                alt.WindowFieldDef(op="lead", field=field, **{"as": "next"})],
        groupby=["series"], sort=[alt.SortField("step")]).transform_joinaggregate(
        n=f"valid({field})", groupby=["series"]).transform_filter(
        f"isValid(datum.{field}) && (datum.n <= {MAX_POINTED} || (!isValid(datum.prev) && !isValid(datum.next)))")
    parts = [line, points.mark_point(size=12, filled=True).encode(x=x, y=y, color=color, tooltip=tooltip),
             domain_pad(base, "value", y_title, log=log, scale=scale), blank_note(base)]
    if log:
        parts += log_zero_layers(base, x, y_title)
    return alt.layer(*parts).add_params(layer_param(layers)).properties(width=HALF, height=HEIGHT, title=title)


def matrix_transforms(chart: alt.Chart) -> alt.Chart:
    """Expand ``values`` arrays into cells with ``row`` and ``col`` (row-major)."""
    return (chart.transform_flatten(["values"], as_=["value"])
            .transform_window(i="row_number()", groupby=["key"])
            .transform_calculate(row="floor((datum.i - 1) / datum.cols)", col="(datum.i - 1) % datum.cols",
                                 row2="floor((datum.i - 1) / datum.cols) + 1", col2="(datum.i - 1) % datum.cols + 1"))
