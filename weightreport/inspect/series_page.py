"""``build_series_report``: a checkpoint series → one HTML page (and JSON): each layer's spectra across it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd

from weightreport.inspect.page import BuiltInspection, write_inspection
from weightreport.report.charts import Chart
from weightreport.report.charts.cells import layer_heatmap
from weightreport.report.charts.common import (
    HALF,
    HEIGHT,
    Datasets,
    finish,
    layer_param,
    make,
    records,
)
from weightreport.report.charts.special import special_kinds
from weightreport.report.render.output import REPORTS_DIR
from weightreport.report.render.pages import PageSection, render_page

NO_FIT = "not fitted (too few eigenvalues)"
MEASURES = (("alpha", "alpha (power-law exponent of the spectrum's tail)", False, "viridis"),
            ("stable_rank", "stable rank ‖W‖²_F / ‖W‖²₂", True, "viridis"),
            ("norm", "Frobenius norm ‖W‖_F", True, "viridis"))


@dataclass
class SeriesModel:
    """What the series page shows.

    Attributes:
        title: the page title.
        checkpoints: ``{name, path, total_params}`` in order.
        layers: the matrices, in the first checkpoint's order.
        rows: one per layer: the first and last checkpoint's measures.
        data: ``tensor, checkpoint, position, alpha, stable_rank, spectral_norm, norm``.
    """

    title: str
    checkpoints: list[dict]
    layers: list[str]
    data: pd.DataFrame
    rows: list[dict] = field(default_factory=list)


def series_model(result: dict, title: str | None = None) -> SeriesModel:
    """``inspect_series``' result as the page's data."""
    data = pd.DataFrame(result["series"], columns=["tensor", "checkpoint", "position", "shape", "alpha",
                                                   "stable_rank", "spectral_norm", "norm"])
    for c in ("alpha", "stable_rank", "spectral_norm", "norm"):
        data[c] = pd.to_numeric(data[c], errors="coerce").astype(float)
    rows = []
    for tensor in result["layers"]:
        g = data[data["tensor"] == tensor].sort_values("position")
        first, last = g.iloc[0], g.iloc[-1]
        rows.append({"tensor": tensor, "shape": "×".join(map(str, first["shape"])), "count": len(g),
                     **{f"{k}_first": first[k] for k in ("alpha", "stable_rank", "norm")},
                     **{f"{k}_last": last[k] for k in ("alpha", "stable_rank", "norm")}})
    names = [c["name"] for c in result["checkpoints"]]
    return SeriesModel(title=title or f"{names[0]} … {names[-1]}", checkpoints=result["checkpoints"],
                       layers=list(result["layers"]), data=data, rows=rows)


def series_charts(m: SeriesModel) -> dict[str, list[Chart]]:
    """Layer × checkpoint heatmaps of each measure, and the selected layer's measures as lines."""
    ds, seen = Datasets(), set()
    out: dict[str, list[Chart]] = {"glance": [], "layer": []}
    order = [c["name"] for c in m.checkpoints]
    for key, title, log, scheme in MEASURES:
        values = m.data[key].to_numpy(float)
        special = special_kinds(values, log, unmeasured=np.isnan(values) if key == "alpha" else None,
                                unmeasured_label=NO_FIT)
        chart = layer_heatmap(ds, m.data, key, rows=m.layers, columns=order, column_field="checkpoint",
                              log=log, scheme=scheme, special=special)
        if chart is not None:
            out["glance"].append(make(title, chart, ds, wide=True))
    data = ds.add(records(m.data, ["tensor", "checkpoint", "position", "alpha", "stable_rank", "norm"],
                          int_cols=("position",)))
    for key, title, _, _ in MEASURES:  # linear: one layer's measures move little between checkpoints
        y = alt.Y(f"{key}:Q", title=key, scale=alt.Scale(zero=False), axis=alt.Axis(format="~g"))
        chart = alt.Chart(data).transform_filter("datum.tensor === layer").mark_line(
            point=alt.OverlayMarkDef(size=30, filled=True), color="#1f5fae").encode(
            x=alt.X("checkpoint:N", sort=order, title=None, axis=alt.Axis(labelAngle=-40, labelLimit=140)),
            y=y, tooltip=[alt.Tooltip("checkpoint:N"), alt.Tooltip(f"{key}:Q", format=".4g")],
        ).add_params(layer_param(m.layers)).properties(width=HALF, height=HEIGHT - 40)
        out["layer"].append(make(title, chart, ds, layered=True))
    for lst in out.values():
        finish(lst, seen)
    return out


def build_series_report(paths: list[str | Path], html: str | Path | None = None, json: str | Path | None = None,
                        title: str | None = None,
                        progress: Callable[[int, int], None] | None = None) -> BuiltInspection:
    """Inspect a checkpoint series and write its HTML page and, optionally, its JSON.

    Raises:
        WeightReportError: fewer than 2 checkpoints, one that cannot be opened, or an unwritable output.
    """
    from weightreport.inspect.series import inspect_series

    result = inspect_series(paths, progress)
    model = series_model(result, title)
    first = Path(paths[0])
    default = REPORTS_DIR / f"{(first.parent.name if first.parent.name else first.stem) or 'series'}-series.html"
    html_path = Path(html) if html is not None else default
    return write_inspection(html_path, render_series_html(model, series_charts(model)), result, json)


def render_series_html(model: SeriesModel, charts: dict[str, list[Chart]], bundle: str | None = None) -> str:
    """The series page."""
    n = len(model.checkpoints)
    sections = [
        PageSection("glance", "Every layer across the checkpoints", f"Each of the {len(model.layers)} matrices "
                    f"(rows, in the first checkpoint's order; conv kernels as out × in·k·k) in each of the {n} "
                    "checkpoints (columns, in training order): alpha, stable rank and norm. Alpha is fitted to "
                    "the tail of the eigenvalues of WᵀW, as `inspect` does; 2–6 is typical of a trained layer. "
                    "Cells with no value have their own colour."),
        PageSection("layer", "One layer", "The selected layer's measures from checkpoint to checkpoint.",
                    tuple(model.layers)),
        PageSection("layers", "First and last", "Per matrix, its measures in the first checkpoint that holds "
                    "it (top of a cell) and the last (bottom). Click a heading to sort."),
        PageSection("checkpoints", "Checkpoints", "The checkpoints in the order read."),
    ]
    return render_page("series.html", sections, charts, bundle, m=model)
