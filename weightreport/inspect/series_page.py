"""``build_series_report``: a checkpoint series → one HTML page (and JSON): each layer's spectra across it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd

from weightreport.inspect.model import BANDS, alpha_band, bands_sentence
from weightreport.inspect.page import BuiltInspection, write_inspection
from weightreport.inspect.spectral import MIN_ALPHA_EVALS
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
UNRELIABLE = f"alpha from fewer than {MIN_ALPHA_EVALS} eigenvalues: unreliable"
"""The name of an unreliable alpha's cells and points, in the words of single inspect's verdict."""
UNRELIABLE_COLOUR = "#e8c39e"
"""Its own colour in the alpha heatmap: off the value scale, and unlike the grey of a missing value."""
RELIABLE, LINE_COLOUR = "reliable", "#1f5fae"
FIT_COLOURS = {RELIABLE: LINE_COLOUR, UNRELIABLE: "#9aa5b1"}
FIT_FILLS = {RELIABLE: LINE_COLOUR, UNRELIABLE: "#ffffff"}
MEASURES = (("alpha", "alpha (power-law exponent of the spectrum's tail)", False, "viridis"),
            ("stable_rank", "stable rank ‖W‖²_F / ‖W‖²₂", True, "viridis"),
            ("norm", "Frobenius norm ‖W‖_F", True, "viridis"))
COUNTED = (*BANDS, "unreliable", "no fit")


@dataclass
class SeriesModel:
    """What the series page shows.

    Attributes:
        title: the page title.
        checkpoints: ``{name, path, total_params}`` in order.
        layers: the matrices, in the first checkpoint's order.
        rows: one per layer: the first and last checkpoint's measures, and ``unreliable``
            (its alpha is unreliable in the first or the last).
        data: ``tensor, checkpoint, position, alpha, alpha_evals, alpha_reliable, band, fit,
            stable_rank, spectral_norm, norm``; ``band`` as single inspect's (``model.alpha_band``),
            ``fit`` ``reliable``, ``UNRELIABLE`` or ``NO_FIT``.
        bands: per checkpoint, in order: its ``name, path, total_params`` and how many of its
            matrices fall in each band (``COUNTED``: the alpha bands of a reliable fit, then ``unreliable``, ``no fit``).
    """

    title: str
    checkpoints: list[dict]
    layers: list[str]
    data: pd.DataFrame
    rows: list[dict] = field(default_factory=list)
    bands: list[dict] = field(default_factory=list)

    @property
    def unreliable(self) -> list[dict]:
        """``tensor, shape, evals`` of each matrix whose alpha is unreliable in some checkpoint."""
        d = self.data[self.data["band"] == "unreliable"]
        firsts = d.groupby("tensor", sort=False).first()
        return [{"tensor": t, "shape": "×".join(map(str, firsts.loc[t, "shape"])),
                 "evals": int(firsts.loc[t, "alpha_evals"])} for t in self.layers if t in firsts.index]

    @property
    def min_evals(self) -> int:
        """The fewest eigenvalues a reliable alpha needs."""
        return MIN_ALPHA_EVALS

    @property
    def headline(self) -> str:
        """The series' verdict: the bands of the last checkpoint and of the first, unreliable alphas left out."""
        if not self.layers:
            return "No 2-D or convolution weights in these checkpoints: there is no spectrum to read."
        first, last = self.bands[0], self.bands[-1]
        text = bands_sentence(last)
        text = f"In the last checkpoint ({last['name']}), {text[0].lower()}{text[1:]}"
        fitted = sum(first[k] for k in BANDS)
        return (f"{text} In the first ({first['name']}), of {fitted} with a reliable alpha: {first['typical']} "
                f"typical, {first['light']} light-tailed and {first['heavy']} heavy-tailed.")


def series_model(result: dict, title: str | None = None) -> SeriesModel:
    """``inspect_series``' result as the page's data."""
    data = pd.DataFrame(result["series"], columns=["tensor", "checkpoint", "position", "shape", "alpha",
                                                   "alpha_evals", "alpha_reliable", "stable_rank",
                                                   "spectral_norm", "norm"])
    for c in ("alpha", "stable_rank", "spectral_norm", "norm"):
        data[c] = pd.to_numeric(data[c], errors="coerce").astype(float)
    data["alpha_evals"] = data["alpha_evals"].fillna(0).astype(int)
    data["alpha_reliable"] = data["alpha_reliable"].fillna(False).astype(bool) & np.isfinite(data["alpha"])
    data["band"] = [alpha_band(a, r, e) for a, r, e in
                    zip(data["alpha"], data["alpha_reliable"], data["alpha_evals"], strict=True)]
    data["fit"] = np.where(data["alpha_reliable"], RELIABLE, np.where(data["band"] == "unreliable", UNRELIABLE, NO_FIT))
    rows = []
    for tensor in result["layers"]:
        g = data[data["tensor"] == tensor].sort_values("position")
        first, last = g.iloc[0], g.iloc[-1]
        rows.append({"tensor": tensor, "shape": "×".join(map(str, first["shape"])), "count": len(g),
                     "unreliable": bool(first["band"] == "unreliable" or last["band"] == "unreliable"),
                     **{f"{k}_first": first[k] for k in ("alpha", "stable_rank", "norm")},
                     **{f"{k}_last": last[k] for k in ("alpha", "stable_rank", "norm")}})
    names = [c["name"] for c in result["checkpoints"]]
    counts = data.groupby(["checkpoint", "band"]).size()
    bands = [{**c, **{b: int(counts.get((c["name"], b), 0)) for b in COUNTED}} for c in result["checkpoints"]]
    return SeriesModel(title=title or f"{names[0]} … {names[-1]}", checkpoints=result["checkpoints"],
                       layers=list(result["layers"]), data=data, rows=rows, bands=bands)


def alpha_kinds(data: pd.DataFrame) -> np.ndarray:
    """Per row, the alpha heatmap's special kind: ``NO_FIT``, ``UNRELIABLE``, or "" (on the scale)."""
    kinds = special_kinds(data["alpha"].to_numpy(float), False, unmeasured=data["fit"].eq(NO_FIT).to_numpy(),
                          unmeasured_label=NO_FIT)
    return np.where(data["fit"].eq(UNRELIABLE).to_numpy(), UNRELIABLE, kinds)


def series_charts(m: SeriesModel) -> dict[str, list[Chart]]:
    """Layer × checkpoint heatmaps of each measure, and the selected layer's measures as lines."""
    ds, seen = Datasets(), set()
    out: dict[str, list[Chart]] = {"glance": [], "layer": []}
    order = [c["name"] for c in m.checkpoints]
    for key, title, log, scheme in MEASURES:
        alpha = key == "alpha"
        special = alpha_kinds(m.data) if alpha else special_kinds(m.data[key].to_numpy(float), log)
        tips = [alt.Tooltip("alpha_evals:Q", title="eigenvalues"), alt.Tooltip("fit:N", title="alpha fit")]
        chart = layer_heatmap(ds, m.data, key, rows=m.layers, columns=order, column_field="checkpoint",
                              log=log, scheme=scheme, special=special, tooltip=tips if alpha else (),
                              colours={UNRELIABLE: UNRELIABLE_COLOUR})
        if chart is not None:
            out["glance"].append(make(title, chart, ds, wide=True))
    data = ds.add(records(m.data, ["tensor", "checkpoint", "position", "alpha", "alpha_evals", "fit",
                                   "stable_rank", "norm"], int_cols=("position", "alpha_evals")))
    for key, title, _, _ in MEASURES:  # linear: one layer's measures move little between checkpoints
        out["layer"].append(make(title, layer_line(m, data, key), ds, layered=True))
    for lst in out.values():
        finish(lst, seen)
    return out


def layer_line(m: SeriesModel, data: alt.Data, key: str) -> alt.TopLevelMixin:
    """The selected layer's ``key`` from checkpoint to checkpoint.

    An unreliable alpha is a hollow grey point, named in the legend, and the line joins
    the reliable ones only: a line through a handful of eigenvalues' fits would read as a trend.
    """
    order = [c["name"] for c in m.checkpoints]
    x = alt.X("checkpoint:N", sort=order, title=None, axis=alt.Axis(labelAngle=-40, labelLimit=140))
    y = alt.Y(f"{key}:Q", title=key, scale=alt.Scale(zero=False), axis=alt.Axis(format="~g"))
    tip = [alt.Tooltip("checkpoint:N"), alt.Tooltip(f"{key}:Q", format=".4g")]
    base = alt.Chart(data).transform_filter("datum.tensor === layer")
    if key != "alpha":
        return base.mark_line(point=alt.OverlayMarkDef(size=30, filled=True), color=LINE_COLOUR).encode(
            x=x, y=y, tooltip=tip).add_params(layer_param(m.layers)).properties(width=HALF, height=HEIGHT - 40)
    fits = [f for f in FIT_COLOURS if m.data["fit"].eq(f).any()]
    legend = alt.Legend(orient="bottom", labelLimit=340) if len(fits) > 1 else None
    # Fill and stroke encode the fit alike, so their legends merge into one: filled blue, hollow grey.
    stroke = alt.Stroke("fit:N", title="alpha fit", sort=fits, legend=legend,
                        scale=alt.Scale(domain=fits, range=[FIT_COLOURS[f] for f in fits]))
    fill = alt.Fill("fit:N", title="alpha fit", sort=fits, legend=legend,
                    scale=alt.Scale(domain=fits, range=[FIT_FILLS[f] for f in fits]))
    line = base.transform_filter(f"datum.fit === '{RELIABLE}'").mark_line(color=LINE_COLOUR).encode(x=x, y=y)
    points = base.transform_filter("isValid(datum.alpha)").mark_point(size=40, strokeWidth=1.5, opacity=1).encode(
        x=x, y=y, stroke=stroke, fill=fill,
        tooltip=[*tip, alt.Tooltip("alpha_evals:Q", title="eigenvalues"), alt.Tooltip("fit:N", title="alpha fit")])
    return alt.layer(line, points).add_params(layer_param(m.layers)).properties(width=HALF, height=HEIGHT - 40)


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
                    f"An alpha fitted from fewer than {MIN_ALPHA_EVALS} eigenvalues is unreliable: its cell has "
                    "its own colour and it is left out of the counts. Cells with no value have their own colour."),
        PageSection("layer", "One layer", "The selected layer's measures from checkpoint to checkpoint; an "
                    "unreliable alpha is a hollow grey point, off the line.", tuple(model.layers)),
        PageSection("layers", "First and last", "Per matrix, its measures in the first checkpoint that holds "
                    "it (top of a cell) and the last (bottom). Click a heading to sort."),
        PageSection("checkpoints", "Checkpoints", "The checkpoints in the order read, and how many of each "
                    "one's matrices fall in each alpha band; an unreliable alpha is counted in none of them."),
    ]
    return render_page("series.html", sections, charts, bundle, m=model)
