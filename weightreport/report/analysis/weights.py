"""Weight distributions, the statistics table, update dynamics and trajectories."""

from __future__ import annotations

import numpy as np
import pandas as pd

from weightreport.report.analysis.model import Distributions, Dynamics, StatsTable, Trajectories
from weightreport.report.analysis.sampling import MAX_LAYER_POINTS, model_order, pick_steps
from weightreport.runfmt.schema import QUANTILES

PCTS = [f"p{q}" for q in QUANTILES]
TABLE_STATS = ("mean", "var", "std", "skew", "kurtosis", "min", "max", "norm", "sparsity")
MAX_TRAJECTORY_PANELS = 24


def hist_rows(hist: pd.DataFrame, label_cols: list[str]) -> pd.DataFrame:
    """Histogram rows → one row per non-empty bin range: labels, left, right, density.

    Leading and trailing empty bins are trimmed; density is count / (total × width).
    """
    out = []
    for row in hist.itertuples(index=False):
        edges = np.asarray(row.edges, dtype=float)
        counts = np.asarray(row.counts, dtype=float)
        total = counts.sum()
        if total <= 0 or len(edges) != len(counts) + 1:
            continue
        nz = np.flatnonzero(counts)
        lo, hi = nz[0], nz[-1] + 1
        width = np.diff(edges)[lo:hi]
        part = pd.DataFrame({"left": edges[lo:hi], "right": edges[lo + 1 : hi + 1],
                             "density": counts[lo:hi] / (total * width)})
        for c in label_cols:
            part[c] = getattr(row, c)
        out.append(part)
    cols = [*label_cols, "left", "right", "density"]
    return pd.concat(out, ignore_index=True)[cols] if out else pd.DataFrame(columns=cols)


def first_last(stats: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``stats`` at each tensor's first and last step, with a ``snapshot`` column."""
    g = stats.groupby("tensor")["step"]
    first = stats[stats["step"] == g.transform("min")].assign(snapshot="first")
    last = stats[stats["step"] == g.transform("max")].assign(snapshot="last")
    return pd.concat([first, last], ignore_index=True)


def distributions(run, params: pd.DataFrame, hist: pd.DataFrame) -> Distributions:
    """Per parameter: first vs last histogram, and percentile bands over time."""
    title = "Weight distributions"
    if params.empty:
        return Distributions(key="distributions", title=title, note="No parameter snapshots were recorded.")
    layers = model_order(params["tensor"], run.manifest)
    steps = pick_steps(params["step"])
    bands = params[params["step"].isin(steps)][["tensor", "step", *PCTS]].sort_values(["tensor", "step"])
    fl = first_last(params)[["tensor", "step", "snapshot"]]
    h = hist[hist["kind"] == "param"].merge(fl, on=["tensor", "step"])
    h = h.drop_duplicates(["tensor", "snapshot"])
    return Distributions(
        key="distributions", title=title, hist=hist_rows(h, ["tensor", "snapshot", "step"]),
        bands=bands.reset_index(drop=True), layers=layers,
        caption=f"Left: the histogram at the last snapshot with the first overlaid. Right: "
                f"percentile bands (p1–p99, p5–p95, p25–p75, median) over time, at most "
                f"{MAX_LAYER_POINTS} snapshots per layer, evenly spaced.")


def stats_table(run, params: pd.DataFrame) -> StatsTable:
    """Per parameter, the summary statistics at the first and the last snapshot."""
    title = "Statistics"
    if params.empty:
        return StatsTable(key="stats", title=title, note="No parameter snapshots were recorded.")
    fl = first_last(params).assign(sparsity=lambda d: d["zeros"] / d["count"].where(d["count"] > 0))
    rows = []
    for tensor in model_order(fl["tensor"], run.manifest):
        sub = fl[fl["tensor"] == tensor].set_index("snapshot")
        row = {"tensor": tensor, "numel": int(sub["numel"].iloc[0])}
        for s in TABLE_STATS:
            row[f"{s}_first"] = float(sub.at["first", s])
            row[f"{s}_last"] = float(sub.at["last", s])
        rows.append(row)
    return StatsTable(key="stats", title=title, columns=list(TABLE_STATS), rows=rows,
                      first_step=int(fl["step"].min()), last_step=int(fl["step"].max()),
                      caption="Per parameter, each statistic at its first snapshot (top of a cell) "
                              "and its last (bottom). Sparsity is the fraction of exact zeros. "
                              "Click a column heading to sort.")


def dynamics(run, params: pd.DataFrame, grads: pd.DataFrame) -> Dynamics:
    """Update-to-weight ratio, gradient norm and distance from initialisation over time."""
    title = "Update dynamics"
    if params.empty or (params["update_ratio"].isna().all() and grads.empty):
        return Dynamics(key="dynamics", title=title,
                        note="Fewer than two parameter snapshots and no gradients: nothing moved yet.")
    p = params[["tensor", "step", "update_ratio", "dist_from_init"]]
    g = grads[["tensor", "step", "norm"]].rename(columns={"norm": "grad_norm"})
    df = p.merge(g, on=["tensor", "step"], how="outer")
    df = df[df["step"].isin(pick_steps(df["step"]))].sort_values(["tensor", "step"])
    return Dynamics(key="dynamics", title=title, data=df.reset_index(drop=True),
                    layers=model_order(df["tensor"], run.manifest),
                    caption="Update ratio ‖w_t − w_prev‖/‖w_prev‖ between snapshots (log scale; "
                            "around 1e-3 is typical), gradient L2 norm, and distance from "
                            f"initialisation ‖w_t − w_0‖; at most {MAX_LAYER_POINTS} snapshots per layer.")


def trajectories(run, traj: pd.DataFrame) -> Trajectories:
    """Single weights over steps, one panel per weight (first tensors in model order)."""
    title = "Per-weight trajectories"
    if traj.empty:
        return Trajectories(key="trajectories", title=title,
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
    return Trajectories(key="trajectories", title=title, data=df.reset_index(drop=True),
                        layers=[t for t in layers if t in set(keys["tensor"])],
                        caption=f"Exact values of single weights over steps, one panel per weight "
                                f"({shown}, in model order); at most {MAX_LAYER_POINTS} snapshots each.")
