"""The per-weight trajectories section: exact values of single weights over steps."""

from __future__ import annotations

from dataclasses import dataclass, field

import altair as alt
import pandas as pd

from weightreport.report.analysis.run_tables import RunTables
from weightreport.report.analysis.sampling import MAX_LAYER_POINTS, model_order, pick_steps
from weightreport.report.charts.common import Chart, Datasets, columnar, make
from weightreport.report.sections.base import Section, SectionType

KEY, TITLE = "trajectories", "Per-weight trajectories"
MAX_TRAJECTORY_PANELS = 24


@dataclass
class Trajectories(Section):
    """``tensor, index, step, value`` for the recorded single weights; one panel per weight."""

    data: pd.DataFrame = field(default_factory=pd.DataFrame)
    layers: list[str] = field(default_factory=list)


def trajectories(run, traj: pd.DataFrame) -> Trajectories:
    """Single weights over steps, one panel per weight (first tensors in model order)."""
    if traj.empty:
        return Trajectories(key=KEY, title=TITLE,
                            note="No single-weight trajectories were recorded (trajectory_limit=0).")
    layers = model_order(traj["tensor"], run.manifest)
    keys = traj[["tensor", "index"]].drop_duplicates()
    keys = keys.assign(order=keys["tensor"].map({t: i for i, t in enumerate(layers)}))
    keys = keys.sort_values(["order", "index"]).head(MAX_TRAJECTORY_PANELS)
    df = traj.merge(keys[["tensor", "index"]], on=["tensor", "index"])
    df = df[df["step"].isin(pick_steps(df["step"]))]
    df = df.assign(order=df["tensor"].map({t: i for i, t in enumerate(layers)}))
    df = df.sort_values(["order", "index", "step"]).drop(columns="order")
    n_all = len(traj[["tensor", "index"]].drop_duplicates())
    shown = f"the first {len(keys)} of {n_all} recorded weights" if n_all > len(keys) else f"all {n_all} recorded weights"
    return Trajectories(key=KEY, title=TITLE, data=df.reset_index(drop=True),
                        layers=[t for t in layers if t in set(keys["tensor"])],
                        caption=f"Exact values of single weights over steps, one panel per weight "
                                f"({shown}, in model order); at most {MAX_LAYER_POINTS} snapshots each.")


def build(t: RunTables) -> Trajectories:
    """The trajectories recorded in ``t``'s run."""
    return trajectories(t.run, t.trajectories)


def trajectory_charts(section: Trajectories, ds: Datasets) -> list[Chart]:
    """Small multiples: one panel per recorded weight."""
    df = section.data.assign(panel=lambda d: d["tensor"] + "[" + d["index"].astype(str) + "]")
    order = list(dict.fromkeys(df["panel"]))  # analysis gives the panels in model order
    data = ds.add(columnar(df, "panel", ["step", "value"]))
    chart = alt.Chart(data).transform_flatten(["step", "value"]).mark_line(color="#1f77b4", strokeWidth=1.5).encode(
        x=alt.X("step:Q", title="step"),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False), axis=alt.Axis(format=".3~g")),
        tooltip=[alt.Tooltip("panel:N", title="weight"), alt.Tooltip("step:Q"), alt.Tooltip("value:Q", format=".5g")],
    ).properties(width=125, height=100).facet(
        facet=alt.Facet("panel:N", sort=order, title=None, header=alt.Header(labelLimit=160)),
        columns=min(5, len(order))).resolve_scale(y="independent").resolve_axis(x="independent")
    return [make("Trajectories", chart, ds, wide=True)]


SECTION = SectionType(KEY, TITLE, build, trajectory_charts)
