"""``InspectModel`` → Vega-Lite charts: histograms, singular-value spectra, alpha and stable rank."""

from __future__ import annotations

import altair as alt
import pandas as pd

from weightreport.inspect.model import ALPHA_HIGH, ALPHA_LOW, InspectModel
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


def _layer_filter() -> str:
    return "datum.tensor === layer"


def inspect_charts(model: InspectModel) -> dict[str, list[Chart]]:
    """Charts keyed by the checkpoint page's section keys (``histograms``, ``spectra``, ``quality``)."""
    ds, seen = Datasets(), set()
    out: dict[str, list[Chart]] = {"histograms": [], "spectra": [], "quality": []}
    if not model.hist.empty:
        data = ds.add(records(model.hist, ["tensor", "left", "right", "density"]))
        hist = alt.Chart(data).transform_filter(_layer_filter()).mark_rect(color="#1f77b4", opacity=0.7).encode(
            x=alt.X("left:Q", title="value"), x2="right:Q", y=alt.Y("density:Q", title="density"),
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
        q = pd.DataFrame(model.quality)
        data = ds.add(records(q, ["tensor", "alpha", "stable_rank", "traps", "verdict"]))
        order = list(q["tensor"])
        y = alt.Y("tensor:N", sort=order, title=None, axis=alt.Axis(labelLimit=240))
        tip = [alt.Tooltip("tensor:N"), alt.Tooltip("alpha:Q", format=".3g"),
               alt.Tooltip("stable_rank:Q", format=".3g"), alt.Tooltip("traps:Q"), alt.Tooltip("verdict:N")]
        band = alt.Chart(alt.Data(values=[{"lo": ALPHA_LOW, "hi": ALPHA_HIGH}])).mark_rect(
            color="#2ca02c", opacity=0.12).encode(x="lo:Q", x2="hi:Q")
        alpha = alt.layer(band, alt.Chart(data).mark_point(filled=True, size=50, color="#1f5fae").encode(
            x=alt.X("alpha:Q", title="alpha (shaded: 2–6)", scale=alt.Scale(zero=False)), y=y, tooltip=tip),
        ).properties(width=HALF - 140, height=alt.Step(16))
        srank = alt.Chart(data).mark_bar(color="#8fb8de").encode(
            x=alt.X("stable_rank:Q", title="stable rank"), y=y, tooltip=tip,
        ).properties(width=HALF - 140, height=alt.Step(16))
        out["quality"] = [make("Power-law exponent alpha", alpha, ds), make("Stable rank", srank, ds)]
    for lst in out.values():
        finish(lst, seen)
    return out
