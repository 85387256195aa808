"""``InspectModel`` → Vega-Lite charts: alpha and stable rank by depth, histograms, singular-value spectra.

The specs are written as plain dicts (``report/charts/specs.py``), the same ones Altair's
``to_dict`` gave (``tests/test_inspect_charts.py`` holds them frozen): the checkpoint page
loads neither Altair nor pandas, about a second of a MiniLM inspection's start-up.
"""

from __future__ import annotations

import math

from weightreport.inspect.model import ALPHA_HIGH, ALPHA_LOW, InspectModel
from weightreport.report.charts.specs import (
    FULL,
    HEIGHT,
    LAYER,
    Chart,
    Datasets,
    finish,
    layer_param_spec,
    make,
    row_records,
    top_level,
)

LAYER_FILTER = {"filter": f"datum.tensor === {LAYER}"}
"""Keep the rows of the selected layer."""


def _q(field: str, **kw) -> dict:
    """A quantitative field's channel definition."""
    return {"field": field, "type": "quantitative", **kw}


def _n(field: str, **kw) -> dict:
    """A nominal field's channel definition."""
    return {"field": field, "type": "nominal", **kw}


def inspect_charts(model: InspectModel) -> dict[str, list[Chart]]:
    """Charts keyed by the checkpoint page's section keys (``summary``, ``histograms``, ``spectra``)."""
    ds, seen = Datasets(), set()
    out: dict[str, list[Chart]] = {"summary": [], "histograms": [], "spectra": []}
    if model.hist:
        hist = top_level({
            "data": ds.add(row_records(model.hist, ["tensor", "left", "right", "density"])),
            "mark": {"type": "rect", "color": "#1f77b4", "opacity": 0.7},
            "encoding": {"x": _q("left", title="value"), "x2": {"field": "right"},
                         "y": _q("density", title="density"), "y2": {"datum": 0},
                         "tooltip": [_q("left", format=".4g", title="from"), _q("right", format=".4g", title="to"),
                                     _q("density", format=".4g")]},
            "transform": [LAYER_FILTER], "params": [layer_param_spec(model.layers)],
            "width": FULL - 120, "height": HEIGHT})
        out["histograms"] = [make("Histogram of the selected tensor", hist, ds, layered=True, wide=True)]
    if model.matrices:
        spec = top_level({
            "data": ds.add(row_records(model.spectra, ["tensor", "rank", "singular"], int_cols=("rank",))),
            "mark": {"type": "line", "point": {"size": 14}, "color": "#0b3d91", "strokeWidth": 1.5},
            "encoding": {"x": _q("rank", title="rank (log)", scale={"type": "log", "nice": False}),
                         "y": _q("singular", title="singular value (log)", scale={"type": "log"}),
                         "tooltip": [_q("rank"), _q("singular", format=".4g")]},
            "transform": [LAYER_FILTER], "params": [layer_param_spec(model.matrices)],
            "width": FULL - 120, "height": HEIGHT + 40})
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
POINT = {"type": "point", "size": 60, "filled": True, "opacity": 0.85}


def depth_charts(model: InspectModel, ds: Datasets) -> list[Chart]:
    """Alpha (the 2–6 band shaded) and stable rank of every matrix against its depth, coloured by kind.

    Depth is the matrix's index in model order. An alpha from too few eigenvalues is drawn as
    an open triangle and labelled unreliable; one that could not be fitted is not drawn.
    """
    q = [{**row, "fit": "reliable" if row["reliable"] else "unreliable"} for row in model.quality]
    data = ds.add(row_records(q, ["depth", "tensor", "kind", "shape", "alpha", "alpha_sigma", "evals",
                                  "stable_rank", "traps", "verdict", "fit"], int_cols=("depth", "evals", "traps")))
    kinds = model.kinds
    color = _n("kind", title="layer kind", sort=kinds,
               scale={"domain": kinds, "range": [KIND_COLORS[k] for k in kinds]},
               legend={"orient": "top", "columns": 5})
    x = _q("depth", title="depth (matrix index in model order)",
           scale={"domain": [-0.5, max(len(q) - 0.5, 0.5)], "nice": False}, axis={"tickMinStep": 1})
    tip = [_n("tensor"), _n("kind"), _n("shape"), _q("alpha", format=".3g"),
           _q("alpha_sigma", format=".2g", title="± σ"), _q("evals", title="eigenvalues"),
           _q("stable_rank", format=".3g"), _q("traps"), _n("verdict")]
    drawn = {row["fit"] for row in q if math.isfinite(float(row["alpha"]))}
    fits = [f for f in FIT_SHAPES if f in drawn]  # a legend only for what is drawn
    shape = _n("fit", title="alpha fit", sort=fits, scale={"domain": fits, "range": [FIT_SHAPES[f] for f in fits]},
               legend={"orient": "top"} if len(fits) > 1 else None)
    band = {"data": {"values": [{"lo": ALPHA_LOW, "hi": ALPHA_HIGH}]},
            "mark": {"type": "rect", "color": "#2ca02c", "opacity": 0.12},
            "encoding": {"y": _q("lo"), "y2": {"field": "hi"}}}
    points = {"data": data, "mark": POINT,
              "encoding": {"x": x, "y": _q("alpha", title="alpha (shaded: 2–6, typical)", scale={"zero": False}),
                           "color": color, "shape": shape, "tooltip": tip},
              "transform": [{"filter": "isValid(datum.alpha)"}]}
    alpha = top_level({"layer": [band, points], "width": FULL - 160, "height": HEIGHT})
    srank = top_level({
        "data": data, "mark": POINT,
        "encoding": {"x": x, "y": _q("stable_rank", title="stable rank (log)", scale={"type": "log"}),
                     "color": color, "tooltip": tip},
        "transform": [{"filter": "isValid(datum.stable_rank) && datum.stable_rank > 0"}],
        "width": FULL - 160, "height": HEIGHT - 40})
    return [make("Alpha by depth", alpha, ds, wide=True, glance=True),
            make("Stable rank by depth", srank, ds, wide=True, glance=True)]
