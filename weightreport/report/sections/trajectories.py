"""The per-weight trajectories section: exact values of single weights over steps.

The collector records up to ``trajectory_limit`` elements of every parameter (16 by
default) at every snapshot. The section keeps all of them, each at no more than
``MAX_TRAJECTORY_POINTS`` snapshots, and draws the chosen layer's weights as a grid of small
panels titled by the element's index in the tensor's shape (``[3, 1, 0, 2]``), the layer
being the one in the section's picker.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import altair as alt
import numpy as np
import pandas as pd

from weightreport.report.analysis.run_tables import RunTables
from weightreport.report.analysis.sampling import model_order, pick_steps, qualified
from weightreport.report.charts.axes import value_axis
from weightreport.report.charts.common import (
    SERIES_DIGITS,
    Chart,
    Datasets,
    layer_filter,
    layer_param,
    make,
    nums,
)
from weightreport.report.sections.base import Section, SectionType

KEY, TITLE = "trajectories", "Per-weight trajectories"
MAX_TRAJECTORY_PANELS = 32
"""The most recorded weights drawn per layer (the first by flat index)."""
MAX_TRAJECTORY_POINTS = 100
"""Snapshots kept per weight (evenly spaced, exact values): a 150-pixel panel shows no more."""
COLUMNS, PANEL_WIDTH, PANEL_HEIGHT = 4, 150, 80
"""The grid: four panels a row fit the report's 860-pixel column with their own y-axes."""


@dataclass
class Trajectories(Section):
    """``tensor, index, label, step, value`` for the recorded single weights, in model order.

    Attributes:
        data: one row per weight and kept snapshot; ``label`` is the element's index in
            its tensor's shape (``[3, 1, 0, 2]``).
        layers: the tensors with recorded weights, in model order.
    """

    data: pd.DataFrame = field(default_factory=pd.DataFrame)
    layers: list[str] = field(default_factory=list)


def shapes(manifest: dict) -> dict[str, tuple[int, ...]]:
    """Each parameter's shape by qualified name, from the manifest's modules."""
    out: dict[str, tuple[int, ...]] = {}
    for mod in manifest.get("model", {}).get("modules", []) or []:
        for p in mod.get("params", []) or []:
            if p.get("shape") is not None:
                out.setdefault(qualified(mod.get("name", ""), p["name"]), tuple(int(d) for d in p["shape"]))
    return out


def index_label(flat: int, shape: tuple[int, ...] | None) -> str:
    """An element's index in its tensor's shape, as ``[3, 1, 0, 2]`` (the flat index if unknown)."""
    if shape and 0 <= flat < int(np.prod(shape)):
        return "[" + ", ".join(str(int(i)) for i in np.unravel_index(flat, shape)) + "]"
    return f"[{flat}]"


def trajectories(run, traj: pd.DataFrame) -> Trajectories:
    """Every recorded single weight over steps (at most ``MAX_TRAJECTORY_PANELS`` per layer)."""
    if traj.empty:
        return Trajectories(key=KEY, title=TITLE,
                            note="No single-weight trajectories were recorded (trajectory_limit=0).")
    layers = model_order(traj["tensor"], run.manifest)
    keys = traj[["tensor", "index"]].drop_duplicates().sort_values(["tensor", "index"])
    per_layer = keys.groupby("tensor")["index"].size()
    kept = keys.groupby("tensor", sort=False).head(MAX_TRAJECTORY_PANELS)
    df = traj.merge(kept, on=["tensor", "index"]).drop_duplicates(["tensor", "index", "step"], keep="last")
    df = df[df["step"].isin(pick_steps(df["step"], MAX_TRAJECTORY_POINTS))]
    order = {t: i for i, t in enumerate(layers)}
    df = df.assign(order=df["tensor"].map(order)).sort_values(["order", "index", "step"]).drop(columns="order")
    known = shapes(run.manifest)
    labels = {(t, i): index_label(int(i), known.get(t)) for t, i in kept.itertuples(index=False)}
    df = df.assign(label=[labels[(t, i)] for t, i in zip(df["tensor"], df["index"], strict=True)])
    most = int(per_layer.max())
    capped = (f"; layers with more than {MAX_TRAJECTORY_PANELS} show their first {MAX_TRAJECTORY_PANELS}"
              if most > MAX_TRAJECTORY_PANELS else "")
    return Trajectories(key=KEY, title=TITLE, data=df.reset_index(drop=True), layers=layers,
                        caption=f"Exact values of single weights over steps: all {len(keys)} recorded weights "
                                f"of {len(layers)} tensors (up to {most} per tensor{capped}), each panel titled by "
                                f"the weight's index in its tensor; at most {MAX_TRAJECTORY_POINTS} snapshots each.")


def build(t: RunTables) -> Trajectories:
    """The trajectories recorded in ``t``'s run."""
    return trajectories(t.run, t.trajectories)


def _records(section: Trajectories) -> tuple[list[dict], list[dict]]:
    """Per weight ``tensor, index, label, value[]``; per tensor its ``step[]`` (shared by its weights)."""
    df = section.data
    steps = {str(t): np.sort(s) for t, s in df.groupby("tensor", sort=False)["step"].unique().items()}
    weights = []
    for (tensor, index), g in df.groupby(["tensor", "index"], sort=False):
        at, values = g["step"].to_numpy(), g["value"].to_numpy(dtype=np.float64)
        ref = steps[str(tensor)]
        if not np.array_equal(at, ref):  # a weight missing a snapshot its tensor's others have
            values = pd.Series(values, index=at).reindex(ref).to_numpy()
        weights.append({"tensor": str(tensor), "index": int(index), "label": str(g["label"].iloc[0]),
                        "value": nums(values, SERIES_DIGITS)})
    return weights, [{"tensor": t, "step": [int(v) for v in s]} for t, s in steps.items()]


def trajectory_charts(section: Trajectories, ds: Datasets) -> list[Chart]:
    """Small multiples of the chosen layer's recorded weights, one panel per weight."""
    weights, steps = _records(section)
    per_layer = int(section.data.groupby("tensor")["index"].nunique().max())
    # The layer filter, the steps' lookup and the flatten belong to the facet (the top
    # level): inside the panel spec they would leave a header for every layer's weights.
    chart = (alt.Chart(ds.add(weights)).mark_line(color="#1f77b4", strokeWidth=1.5).encode(
        x=alt.X("step:Q", title="step", axis=alt.Axis(tickCount=4, labelFlush=True)),
        # no format: the labels take their precision from the tick step (".3~g" showed 1, 1, 1
        # near 1), in exponent notation below 1e-3 (a bias kept near 0 had labels 10 digits
        # long, and four panels of them no longer fit the page)
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False), axis=value_axis(None, tickCount=4)),
        tooltip=[alt.Tooltip("label:N", title="index"), alt.Tooltip("step:Q"), alt.Tooltip("value:Q", format=".5g")],
    ).properties(width=PANEL_WIDTH, height=PANEL_HEIGHT).facet(
        facet=alt.Facet("label:N", sort=alt.SortField("index"), title=None,
                        header=alt.Header(labelLimit=0, labelFontSize=11)),
        columns=min(COLUMNS, per_layer)).resolve_scale(y="independent").resolve_axis(x="independent")
             .transform_filter(layer_filter().filter)
             .transform_lookup(lookup="tensor", from_=alt.LookupData(data=ds.add(steps), key="tensor",
                                                                     fields=["step"]))
             .transform_flatten(["step", "value"])
             .add_params(layer_param(section.layers)))
    return [make("Trajectories", chart, ds, layered=True, wide=True)]


SECTION = SectionType(KEY, TITLE, build, trajectory_charts)
