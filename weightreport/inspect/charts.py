"""``InspectModel`` → Vega-Lite charts: alpha and stable rank by depth, histograms, singular-value spectra."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from weightreport.inspect.model import ALPHA_HIGH, ALPHA_LOW, InspectModel
from weightreport.report.charts.common import (
    FULL,
    HEIGHT,
    Chart,
    Datasets,
    finish,
    layer_param,
    make,
    records,
)


def _layer_filter() -> str:
    return "datum.tensor === layer"


def inspect_charts(model: InspectModel) -> dict[str, list[Chart]]:
    """Charts keyed by the checkpoint page's section keys (``summary``, ``histograms``, ``spectra``)."""
    ds, seen = Datasets(), set()
    out: dict[str, list[Chart]] = {"summary": [], "histograms": [], "spectra": []}
    if not model.hist.empty:
        data = ds.add(records(model.hist, ["tensor", "left", "right", "density"]))
        hist = alt.Chart(data).transform_filter(_layer_filter()).mark_rect(color="#1f77b4", opacity=0.7).encode(
            x=alt.X("left:Q", title="value"), x2=alt.X2("right:Q"), y=alt.Y("density:Q", title="density"),
            y2=alt.datum(0),
            tooltip=[alt.Tooltip("left:Q", format=".4g", title="from"), alt.Tooltip("right:Q", format=".4g", title="to"),
                     alt.Tooltip("density:Q", format=".4g")],
        ).add_params(layer_param(model.layers)).properties(width=FULL - 120, height=HEIGHT)
        out["histograms"] = [make("Histogram of the selected tensor", hist, ds, layered=True, wide=True)]
    if model.matrices:
        data = ds.add(records(model.spectra, ["tensor", "rank", "singular"], int_cols=("rank",)))
        spec = alt.Chart(data).transform_filter(_layer_filter()).mark_line(
            point=alt.OverlayMarkDef(size=14), color="#0b3d91", strokeWidth=1.5).encode(
            x=alt.X("rank:Q", title="rank (log)", scale=alt.Scale(type="log", nice=False)),
            y=alt.Y("singular:Q", title="singular value (log)", scale=alt.Scale(type="log")),
            tooltip=[alt.Tooltip("rank:Q"), alt.Tooltip("singular:Q", format=".4g")],
        ).add_params(layer_param(model.matrices)).properties(width=FULL - 120, height=HEIGHT + 40)
        out["spectra"] = [make("Singular values by rank (log-log)", spec, ds, layered=True, wide=True)]
        out["summary"] = depth_charts(model, ds)
    for lst in out.values():
        finish(lst, seen)
    return out


KIND_COLORS = {"embedding": "#8c564b", "attention q": "#1f77b4", "attention k": "#17becf",
               "attention v": "#2ca02c", "attention o": "#9467bd", "attention qkv": "#393b79",
               "MLP": "#ff7f0e", "conv": "#d62728", "other": "#7f7f7f"}
"""One colour per ``layers.KINDS`` entry, the same on every page."""
FIT_SHAPES = {"reliable": "circle", "unreliable": "triangle-down"}


def depth_charts(model: InspectModel, ds: Datasets) -> list[Chart]:
    """Alpha (the 2–6 band shaded) and stable rank of every matrix against its depth, coloured by kind.

    Depth is the matrix's index in model order. An alpha from too few eigenvalues is drawn as
    an open triangle and labelled unreliable; one that could not be fitted is not drawn.
    """
    q = pd.DataFrame(model.quality)
    q["fit"] = np.where(q["reliable"], "reliable", "unreliable")
    data = ds.add(records(q, ["depth", "tensor", "kind", "shape", "alpha", "alpha_sigma", "evals",
                              "stable_rank", "traps", "verdict", "fit"], int_cols=("depth", "evals", "traps")))
    kinds = model.kinds
    color = alt.Color("kind:N", title="layer kind", sort=kinds,
                      scale=alt.Scale(domain=kinds, range=[KIND_COLORS[k] for k in kinds]),
                      legend=alt.Legend(orient="top", columns=5))
    x = alt.X("depth:Q", title="depth (matrix index in model order)",
              scale=alt.Scale(domain=[-0.5, max(len(q) - 0.5, 0.5)], nice=False), axis=alt.Axis(tickMinStep=1))
    tip = [alt.Tooltip("tensor:N"), alt.Tooltip("kind:N"), alt.Tooltip("shape:N"),
           alt.Tooltip("alpha:Q", format=".3g"), alt.Tooltip("alpha_sigma:Q", format=".2g", title="± σ"),
           alt.Tooltip("evals:Q", title="eigenvalues"), alt.Tooltip("stable_rank:Q", format=".3g"),
           alt.Tooltip("traps:Q"), alt.Tooltip("verdict:N")]
    drawn = q[np.isfinite(q["alpha"].astype(float))]
    fits = [f for f in FIT_SHAPES if (drawn["fit"] == f).any()]  # a legend only for what is drawn
    shape = alt.Shape("fit:N", title="alpha fit", sort=fits,
                      scale=alt.Scale(domain=fits, range=[FIT_SHAPES[f] for f in fits]),
                      legend=alt.Legend(orient="top") if len(fits) > 1 else None)
    band = alt.Chart(alt.Data(values=[{"lo": ALPHA_LOW, "hi": ALPHA_HIGH}])).mark_rect(
        color="#2ca02c", opacity=0.12).encode(y=alt.Y("lo:Q"), y2=alt.Y2("hi:Q"))
    points = alt.Chart(data).mark_point(size=60, filled=True, opacity=0.85).encode(
        x=x, y=alt.Y("alpha:Q", title="alpha (shaded: 2–6, typical)", scale=alt.Scale(zero=False)),
        color=color, shape=shape, tooltip=tip).transform_filter("isValid(datum.alpha)")
    alpha = alt.layer(band, points).properties(width=FULL - 160, height=HEIGHT)
    srank = alt.Chart(data).mark_point(size=60, filled=True, opacity=0.85).encode(
        x=x, y=alt.Y("stable_rank:Q", title="stable rank (log)", scale=alt.Scale(type="log")),
        color=color, tooltip=tip).transform_filter("isValid(datum.stable_rank) && datum.stable_rank > 0",
    ).properties(width=FULL - 160, height=HEIGHT - 40)
    return [make("Alpha by depth", alpha, ds, wide=True, glance=True),
            make("Stable rank by depth", srank, ds, wide=True, glance=True)]
