"""The training-curves section: every scalar over steps, validation drawn over training."""

from __future__ import annotations

from dataclasses import dataclass, field

import altair as alt
import numpy as np
import pandas as pd

from weightreport.report.analysis.run_tables import RunTables
from weightreport.report.analysis.sampling import MAX_CURVE_POINTS, bucket_means
from weightreport.report.charts.axes import domain_pad, log_axis, step_x, value_axis
from weightreport.report.charts.common import HALF, HEIGHT, Chart, Datasets, make, records
from weightreport.report.sections.base import Section, SectionType

KEY, TITLE = "curves", "Training curves"
VAL_PREFIX = "val_"
SPLITS = {"training": "#1f77b4", "validation": "#ff7f0e"}
"""Each split's colour, in legend order."""
MAX_POINTED = 60
"""Series of at most this many points are drawn with a point at each."""


@dataclass
class Curves(Section):
    """Scalars over steps: ``step, name, value, metric, split`` (split is train or val)."""

    data: pd.DataFrame = field(default_factory=pd.DataFrame)
    metrics: list[str] = field(default_factory=list)


def curves(scalars: pd.DataFrame) -> Curves:
    """Every scalar over steps; ``val_x`` is drawn on the same chart as ``x``."""
    if scalars.empty:
        return Curves(key=KEY, title=TITLE,
                      note="No scalars were logged: pass them to Collector.step(loss=...) or log(...).")
    df = scalars[["step", "name", "value"]].copy()
    df["value"] = df["value"].astype(float)
    df = bucket_means(df, "name", MAX_CURVE_POINTS)
    val = df["name"].str.startswith(VAL_PREFIX)
    df["metric"] = np.where(val, df["name"].str.slice(len(VAL_PREFIX)), df["name"])
    df["split"] = np.where(val, "validation", "training")
    metrics = sorted(df["metric"].unique(), key=lambda n: (n != "loss", n.startswith("lr"), n))
    return Curves(key=KEY, title=TITLE, data=df.reset_index(drop=True), metrics=metrics,
                  caption=f"Each scalar over steps; validation (val_*) drawn over training. Series "
                          f"longer than {MAX_CURVE_POINTS} points are shown as {MAX_CURVE_POINTS} "
                          f"bucket means.")


def build(t: RunTables) -> Curves:
    """The curves of ``t``'s scalars."""
    return curves(t.scalars)


def curve_charts(section: Curves, ds: Datasets) -> list[Chart]:
    """One line chart per metric, training and validation overlaid.

    The legend lists only the splits the metric has; a split of one point is drawn as a
    point (a line needs two); a constant metric gets a padded axis (``axes.domain_pad``).
    """
    charts = []
    for metric in section.metrics:
        df = section.data[section.data["metric"] == metric]
        data = ds.add(records(df, ["step", "value", "split", "name"]))
        log = metric.startswith("lr") and bool((df["value"] > 0).all()) and df["value"].nunique() > 1
        scale = alt.Scale(type="log") if log else alt.Scale(zero=False)
        splits = [s for s in SPLITS if s in set(df["split"])]
        color = alt.Color("split:N", title=None, scale=alt.Scale(domain=splits, range=[SPLITS[s] for s in splits]),
                          legend=alt.Legend(orient="top") if len(splits) > 1 else None)
        base = alt.Chart(data)
        x = step_x()
        y = alt.Y("value:Q", title=metric, scale=scale, axis=log_axis(metric) if log else value_axis(metric))
        tooltip = [alt.Tooltip("name:N"), alt.Tooltip("step:Q"), alt.Tooltip("value:Q", format=".4g")]
        line = base.mark_line(strokeWidth=1.6).encode(x=x, y=y, color=color, tooltip=tooltip)
        lone = base.transform_filter("isValid(datum.value)").transform_joinaggregate(
            n="count()", groupby=["split"])
        lone = lone if len(df) <= MAX_POINTED else lone.transform_filter("datum.n === 1")
        points = lone.mark_point(filled=True, size=24).encode(x=x, y=y, color=color, tooltip=tooltip)
        chart = alt.layer(line, points, domain_pad(base, "value", metric, log=log, scale=scale)).properties(
            width=HALF, height=HEIGHT - 40)
        charts.append(make(metric, chart, ds))
    return charts


SECTION = SectionType(KEY, TITLE, build, curve_charts)
