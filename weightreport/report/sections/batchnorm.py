"""The BatchNorm section: input vs output, batch vs running statistics, gamma and beta."""

from __future__ import annotations

from dataclasses import dataclass, field

import altair as alt
import numpy as np
import pandas as pd

from weightreport.report.analysis.frames import hist_rows
from weightreport.report.analysis.run_tables import BN_KINDS, RunTables
from weightreport.report.analysis.sampling import model_order
from weightreport.report.charts.axes import integer_axis, value_axis
from weightreport.report.charts.common import (
    HALF,
    HEIGHT,
    Chart,
    Datasets,
    columnar,
    layer_param,
    make,
)
from weightreport.report.charts.figures import hist_chart
from weightreport.report.sections.base import Section, SectionType

KEY, TITLE = "batchnorm", "BatchNorm"
SIDE_COLORS = alt.Scale(domain=["input", "output"], range=["#ff7f0e", "#1f77b4"])


@dataclass
class BatchNorm(Section):
    """BatchNorm input vs output, running vs batch statistics, and gamma/beta.

    Attributes:
        hist: ``module, side ("input"/"output"), left, right, density`` at the last snapshot.
        channels: ``module, channel, batch_mean, running_mean, batch_var, running_var,
            weight, bias`` at the last snapshot.
    """

    hist: pd.DataFrame = field(default_factory=pd.DataFrame)
    channels: pd.DataFrame = field(default_factory=pd.DataFrame)
    layers: list[str] = field(default_factory=list)
    step: int = 0


def batchnorm(run, bn_hist: pd.DataFrame, bn: pd.DataFrame) -> BatchNorm:
    """Input vs output histograms, running vs batch statistics and gamma/beta per channel."""
    if bn_hist.empty and bn.empty:
        return BatchNorm(key=KEY, title=TITLE, note="The model has no BatchNorm layers (or none ran at a snapshot).")
    step = int(bn["step"].max()) if not bn.empty else int(bn_hist["step"].max())
    h = bn_hist[bn_hist["step"] == bn_hist.groupby("tensor")["step"].transform("max")] if not bn_hist.empty else bn_hist
    h = h.assign(side=np.where(h["kind"] == "bn_input", "input", "output"), module=h["tensor"])
    channels = bn[bn["step"] == bn.groupby("module")["step"].transform("max")] if not bn.empty else bn
    mods = set(channels["module"]) | set(h["module"])
    return BatchNorm(
        key=KEY, title=TITLE, hist=hist_rows(h, ["module", "side"]),
        channels=channels.drop(columns="step").sort_values(["module", "channel"]).reset_index(drop=True),
        layers=model_order(mods, run.manifest), step=step,
        caption="At the last snapshot: the layer's input against its output distribution; per "
                "channel, the batch mean and variance of the input against the running estimates; "
                "and the learned scale (gamma) and shift (beta).")


def build(t: RunTables) -> BatchNorm:
    """The BatchNorm layers of ``t``'s run at their last snapshot."""
    hist = t.histograms
    return batchnorm(t.run, hist[hist["kind"].isin(list(BN_KINDS))], t.last("batchnorm", BN_KINDS))


def batchnorm_charts(section: BatchNorm, ds: Datasets) -> list[Chart]:
    """Input vs output histogram, batch vs running statistics, gamma and beta, per BN layer."""
    layers = section.layers
    charts = []
    if not section.hist.empty:
        charts.append(make("Input vs output", hist_chart(
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
            x=alt.X("channel:Q", title="channel", axis=integer_axis("channel", scale="x")),
            y=alt.Y("value:Q", title=stat, scale=alt.Scale(zero=False), axis=value_axis(stat)),
            color=alt.Color("series:N", title=None, scale=alt.Scale(domain=pair, range=["#ff7f0e", "#1f77b4"]),
                            legend=alt.Legend(orient="top")),
            tooltip=[alt.Tooltip("channel:Q"), alt.Tooltip("series:N"), alt.Tooltip("value:Q", format=".4g")],
        ).add_params(layer_param(layers)).properties(width=HALF, height=HEIGHT - 40,
                                                     title=f"batch vs running {stat} per channel")
        charts.append(make(f"Batch vs running {stat}", c, ds, layered=True))
    gb = base.transform_fold(["weight", "bias"], as_=["param", "value"]).transform_filter(
        "isValid(datum.value)").mark_bar(opacity=0.8).encode(
        x=alt.X("value:Q", bin=alt.Bin(maxbins=30), title="value", axis=value_axis("value")), y=alt.Y("count():Q", title="channels", axis=integer_axis("channels")),
        color=alt.Color("param:N", title=None, scale=alt.Scale(domain=["weight", "bias"], range=["#2ca02c", "#9467bd"]),
                        legend=alt.Legend(orient="top", labelExpr="datum.label === 'weight' ? 'gamma (weight)' : 'beta (bias)'")),
        tooltip=[alt.Tooltip("param:N"), alt.Tooltip("count():Q", title="channels")],
    ).add_params(layer_param(layers)).properties(width=HALF, height=HEIGHT - 40, title="gamma and beta across channels")
    charts.append(make("Gamma and beta", gb, ds, layered=True))
    return charts


SECTION = SectionType(KEY, TITLE, build, batchnorm_charts)
