"""The outliers section: counts over time, the top outliers and box summaries.

The run format keeps no raw weights, so the "top outliers" are built from what is
exact: (1) each parameter's min and max at the last snapshot, with their z-score
against that snapshot's mean and std (the element index is unknown); (2) the
recorded single-weight trajectories, whose values and indices are exact, at any
snapshot. Only values with |z| > ``OUTLIER_Z`` (3, the stats engine's ``outliers_3std``
rule) are listed. Histograms are not used for the table: their tails give ranges, not
values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import altair as alt
import numpy as np
import pandas as pd

from weightreport.report.analysis.run_tables import RunTables
from weightreport.report.analysis.sampling import MAX_LAYER_POINTS, model_order, pick_steps
from weightreport.report.charts.axes import value_axis
from weightreport.report.charts.common import (
    FULL,
    Chart,
    Datasets,
    blank_layers,
    columnar,
    make,
    records,
)
from weightreport.report.charts.figures import series_chart
from weightreport.report.charts.names import label_px, short_labels
from weightreport.report.sections.base import Section, SectionType

KEY, TITLE = "outliers", "Outliers"
TOP_OUTLIERS = 20
MAX_BOXES = 40
OUTLIER_Z = 3.0
"""A value is an outlier beyond this many standard deviations from its tensor's mean
(the rule the stats engine counts as ``outliers_3std``)."""
COUNT_COLUMNS = ["outliers_3std", "outliers_6std", "outliers_iqr"]


@dataclass
class Outliers(Section):
    """Outlier counts over time, the top outliers, and box-and-whisker summaries.

    Attributes:
        counts: ``tensor, step, outliers_3std, outliers_6std, outliers_iqr`` downsampled.
        top: ``tensor, index, step, value, z, source``, only |z| > ``OUTLIER_Z``.
        boxes: ``tensor, min, p1, p25, p50, p75, p99, max`` at the last snapshot.
    """

    counts: pd.DataFrame = field(default_factory=pd.DataFrame)
    top: pd.DataFrame = field(default_factory=pd.DataFrame)
    boxes: pd.DataFrame = field(default_factory=pd.DataFrame)
    layers: list[str] = field(default_factory=list)
    threshold: float = OUTLIER_Z
    no_counts: str = ""
    """Why the counts chart is left out (every count is 0), or ``""`` when it is drawn."""


def _extremes(last: pd.DataFrame) -> pd.DataFrame:
    std = last["std"].where(last["std"] > 0)
    z_max = (last["max"] - last["mean"]) / std
    z_min = (last["min"] - last["mean"]) / std
    use_max = z_max.abs().fillna(0) >= z_min.abs().fillna(0)
    return pd.DataFrame({
        "tensor": last["tensor"], "index": pd.array([pd.NA] * len(last), dtype="Int64"),
        "step": last["step"], "value": np.where(use_max, last["max"], last["min"]),
        "z": np.where(use_max, z_max, z_min), "source": "min/max at last snapshot"})


def _from_trajectories(params: pd.DataFrame, traj: pd.DataFrame) -> pd.DataFrame:
    if traj.empty:
        return pd.DataFrame(columns=["tensor", "index", "step", "value", "z", "source"])
    m = traj.merge(params[["tensor", "step", "mean", "std"]], on=["tensor", "step"])
    m = m[m["std"] > 0]
    m = m.assign(z=(m["value"] - m["mean"]) / m["std"])
    m = m[m["z"].abs() > OUTLIER_Z]
    if m.empty:
        return pd.DataFrame(columns=["tensor", "index", "step", "value", "z", "source"])
    m = m.assign(absz=m["z"].abs()).sort_values(["absz", "step"], ascending=[False, True])
    m = m.drop_duplicates(["tensor", "index"])
    return m[["tensor", "index", "step", "value", "z"]].assign(
        index=lambda d: d["index"].astype("Int64"), source="recorded trajectory")


def outliers(run, params: pd.DataFrame, traj: pd.DataFrame) -> Outliers:
    """Outlier counts over time, the top outliers, and box summaries at the last snapshot."""
    if params.empty:
        return Outliers(key=KEY, title=TITLE, note="No parameter snapshots were recorded.")
    layers = model_order(params["tensor"], run.manifest)
    counts = params[params["step"].isin(pick_steps(params["step"]))][["tensor", "step", *COUNT_COLUMNS]]
    counts = counts.sort_values(["tensor", "step"])
    no_counts = ""
    if not (counts[COUNT_COLUMNS].fillna(0) != 0).any().any():
        no_counts = (f"No value lay beyond 3σ or 6σ, or outside the 1.5·IQR fences, at any of the "
                     f"{counts['step'].nunique()} snapshots shown, in any layer.")
        counts = counts.iloc[0:0]
    last = params[params["step"] == params.groupby("tensor")["step"].transform("max")]
    top = pd.concat([x for x in (_extremes(last), _from_trajectories(params, traj)) if not x.empty],
                    ignore_index=True)
    top = top[np.isfinite(top["z"].astype(float)) & (top["z"].astype(float).abs() > OUTLIER_Z)]
    top = top.assign(absz=top["z"].abs()).sort_values(["absz", "tensor"], ascending=[False, True])
    top = top.head(TOP_OUTLIERS).drop(columns="absz").reset_index(drop=True)
    boxes = last.assign(absz=((last["max"] - last["mean"]).abs().combine((last["min"] - last["mean"]).abs(), max)
                              / last["std"].where(last["std"] > 0)).fillna(0))
    boxes = boxes.sort_values(["absz", "tensor"], ascending=[False, True]).head(MAX_BOXES)
    order = {t: i for i, t in enumerate(layers)}
    boxes = boxes.assign(o=boxes["tensor"].map(order)).sort_values("o")
    boxes = boxes[["tensor", "min", "p1", "p25", "p50", "p75", "p99", "max"]].reset_index(drop=True)
    n_boxes = len(boxes)
    return Outliers(
        key=KEY, title=TITLE, counts=counts.reset_index(drop=True), top=top, boxes=boxes,
        layers=layers, no_counts=no_counts,
        caption=f"Counts of values beyond 3σ, beyond 6σ and outside the 1.5 IQR fences over time "
                f"(at most {MAX_LAYER_POINTS} snapshots per layer). The table ranks by |z|: each "
                f"layer's min or max at the last snapshot (exact value, index not recorded) and "
                f"recorded single weights (exact value and index), listing only |z| > {OUTLIER_Z:g}. "
                f"Boxes show p25–p75 with the median, whiskers p1–p99, and dots min and max at the "
                f"last snapshot, for {n_boxes} layer(s) with the largest |z| (a long name loses its start, "
                f"shown as …; the tooltip and the Statistics table give every name in full).")


def build(t: RunTables) -> Outliers:
    """The outliers of ``t``'s parameters and recorded trajectories."""
    return outliers(t.run, t.params, t.trajectories)


def outlier_charts(section: Outliers, ds: Datasets) -> list[Chart]:
    """Outlier counts over time (per layer) and box-and-whisker summaries (all shown layers)."""
    charts = []
    if not section.counts.empty:
        cols = COUNT_COLUMNS
        counts = series_chart(ds.add(columnar(section.counts, "tensor", ["step", *cols])), cols, section.layers,
                              cols, "outlier counts over time", y_title="count", whole=True)
        charts.append(make("Outlier counts", counts, ds, layered=True,
                           blank=blank_layers(section.counts, cols)))
    b = section.boxes
    labels = short_labels(list(b["tensor"]))
    limit = label_px(labels)
    data = ds.add(records(b.assign(label=labels), ["tensor", "label", "min", "p1", "p25", "p50", "p75", "p99", "max"]))
    y = alt.Y("label:N", sort=labels, title=None, axis=alt.Axis(labelLimit=limit))
    base = alt.Chart(data)
    tip = [alt.Tooltip("tensor:N")] + [alt.Tooltip(f"{c}:Q", format=".4g") for c in
                                      ("min", "p1", "p25", "p50", "p75", "p99", "max")]
    boxes = alt.layer(
        base.mark_rule(color="#555").encode(y=y, x=alt.X("p1:Q", title="value", axis=value_axis("value")), x2=alt.X2("p99:Q"), tooltip=tip),
        base.mark_bar(size=10, color="#8fb8de").encode(y=y, x=alt.X("p25:Q"), x2=alt.X2("p75:Q"), tooltip=tip),
        base.mark_tick(color="#0b3d91", thickness=2, size=12).encode(y=y, x=alt.X("p50:Q"), tooltip=tip),
        base.mark_point(color="#d62728", size=18, filled=True).encode(y=y, x=alt.X("min:Q"), tooltip=tip),
        base.mark_point(color="#d62728", size=18, filled=True).encode(y=y, x=alt.X("max:Q"), tooltip=tip),
    ).properties(width=FULL - limit - 20, height=alt.Step(16), title="last snapshot: p1–p99, p25–p75, median, min/max")
    return [*charts, make("Box and whisker", boxes, ds, wide=True)]


SECTION = SectionType(KEY, TITLE, build, outlier_charts)
