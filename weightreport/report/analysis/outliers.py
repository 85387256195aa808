"""The outliers section.

The run format keeps no raw weights, so the "top outliers" are built from what is
exact: (1) each parameter's min and max at the last snapshot, with their z-score
against that snapshot's mean and std (the element index is unknown); (2) the
recorded single-weight trajectories, whose values and indices are exact, with
|z| > 3 at any snapshot. Histograms are not used for the table: their tails give
ranges, not values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from weightreport.report.analysis.model import Outliers
from weightreport.report.analysis.sampling import MAX_LAYER_POINTS, model_order, pick_steps

TOP_OUTLIERS = 20
MAX_BOXES = 40
TRAJECTORY_Z = 3.0


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
    m = m[m["z"].abs() > TRAJECTORY_Z]
    if m.empty:
        return pd.DataFrame(columns=["tensor", "index", "step", "value", "z", "source"])
    m = m.assign(absz=m["z"].abs()).sort_values(["absz", "step"], ascending=[False, True])
    m = m.drop_duplicates(["tensor", "index"])
    return m[["tensor", "index", "step", "value", "z"]].assign(
        index=lambda d: d["index"].astype("Int64"), source="recorded trajectory")


def outliers(run, params: pd.DataFrame, traj: pd.DataFrame) -> Outliers:
    """Outlier counts over time, the top outliers, and box summaries at the last snapshot."""
    title = "Outliers"
    if params.empty:
        return Outliers(key="outliers", title=title, note="No parameter snapshots were recorded.")
    layers = model_order(params["tensor"], run.manifest)
    cols = ["tensor", "step", "outliers_3std", "outliers_6std", "outliers_iqr"]
    counts = params[params["step"].isin(pick_steps(params["step"]))][cols].sort_values(["tensor", "step"])
    last = params[params["step"] == params.groupby("tensor")["step"].transform("max")]
    top = pd.concat([x for x in (_extremes(last), _from_trajectories(params, traj)) if not x.empty],
                    ignore_index=True)
    top = top[np.isfinite(top["z"].astype(float))]
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
        key="outliers", title=title, counts=counts.reset_index(drop=True), top=top, boxes=boxes,
        layers=layers,
        caption=f"Counts of values beyond 3σ, beyond 6σ and outside the 1.5 IQR fences over time "
                f"(at most {MAX_LAYER_POINTS} snapshots per layer). The table ranks by |z|: each "
                f"layer's min or max at the last snapshot (exact value, index not recorded) and "
                f"recorded single weights with |z| > {TRAJECTORY_Z:g} (exact value and index). "
                f"Boxes show p25–p75 with the median, whiskers p1–p99, and dots min and max at the "
                f"last snapshot, for {n_boxes} layer(s) with the largest |z|.")
