"""Two runs → ``RunDiff``: curves overlaid, per-layer distances, side-by-side statistics, findings.

Layers are compared by name on the tensors both runs recorded; the rest are listed.
Distances are taken at the snapshot steps both runs share (at most ``MAX_DIFF_STEPS``,
evenly spaced): the Wasserstein-1 distance between the two histograms
(``distance.wasserstein_hist``) and the quantile drift, the largest |Δ| over p1…p99.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from weightreport.compare.distance import wasserstein_hist
from weightreport.compare.distance_grid import DistanceGrid, distance_grid
from weightreport.report.analysis.findings import FINDING_BN_COLUMNS, Finding, find_all
from weightreport.report.analysis.sampling import late_steps, model_order, pick_steps, read_stats
from weightreport.report.analysis.thresholds import Thresholds
from weightreport.report.sections.curves import curves
from weightreport.runfmt.schema import QUANTILES

MAX_DIFF_STEPS = 50
PCTS = [f"p{q}" for q in QUANTILES]
SIDE_STATS = ("mean", "std", "norm")
STATS_COLUMNS = ["step", "tensor", "kind", "numel", "count", "nan_count", "inf_count", "mean", "std",
                 "min", "max", "norm", "outliers_6std", "outliers_iqr", "update_ratio", "units",
                 "dead_units", "saturated_units", *PCTS]


@dataclass
class RunDiff:
    """A comparison of a base run and a candidate run.

    Attributes:
        base, candidate: the runs' names.
        curves: ``step, value, metric, split, run`` for both runs (bucket means).
        metrics: the metrics shown.
        shared: tensors both runs recorded, in the base's model order.
        only_base, only_candidate: tensors only one run recorded.
        distances: ``tensor, step, w1, drift`` at shared snapshot steps.
        rows: per shared tensor at the last shared step: base, candidate and delta of
            ``SIDE_STATS``, plus ``w1`` and ``drift``.
        step: the last shared step (None when the runs share none).
        appeared, disappeared: findings (by code and tensor) only in the candidate / only in the base.
    """

    base: str
    candidate: str
    curves: pd.DataFrame
    metrics: list[str]
    shared: list[str]
    only_base: list[str]
    only_candidate: list[str]
    distances: pd.DataFrame
    rows: list[dict] = field(default_factory=list)
    step: int | None = None
    appeared: list[Finding] = field(default_factory=list)
    disappeared: list[Finding] = field(default_factory=list)

    @cached_property
    def grid(self) -> DistanceGrid | None:
        """The distances on the heatmap's bounded layer × step grid (None when there are none)."""
        return distance_grid(self.shared, self.distances)

    @property
    def max_w1(self) -> float:
        """The largest W1 over all shared layers and steps (0 when nothing is shared)."""
        d = self.distances["w1"].to_numpy(dtype=float) if len(self.distances) else np.zeros(0)
        d = d[np.isfinite(d)]
        return float(d.max()) if d.size else 0.0

    @property
    def max_w1_at(self) -> tuple[str, int] | None:
        """(tensor, step) of the largest W1, the first in model order and step on a tie; None when
        no distance is finite."""
        if not len(self.distances):
            return None
        w1 = self.distances["w1"].to_numpy(dtype=float)
        finite = np.isfinite(w1)
        if not finite.any():
            return None
        i = int(np.flatnonzero(finite)[np.argmax(w1[finite])])
        row = self.distances.iloc[i]
        return str(row["tensor"]), int(row["step"])


def _findings(run, stats: pd.DataFrame, scalars: pd.DataFrame, th: Thresholds | None) -> list[Finding]:
    bn = run.table("batchnorm", columns=FINDING_BN_COLUMNS, steps=late_steps(stats["step"]))
    return find_all(stats, scalars, bn, th, model_order(stats["tensor"], run.manifest), run)


def _hist(run, steps: list[int], tensors: set[str]) -> dict[tuple[str, int], tuple]:
    h = run.table("histograms", steps=steps)
    h = h[(h["kind"] == "param") & h["tensor"].isin(tensors)]
    return {(r.tensor, int(r.step)): (r.edges, r.counts) for r in h.itertuples(index=False)}


def diff_runs(base, candidate, thresholds: Thresholds | None = None) -> RunDiff:
    """Compare two ``Run``s (see the module docstring)."""
    # Bounded as the report reads them: at most MAX_LAYER_POINTS snapshots, plus NaN/Inf rows.
    sa, sb = read_stats(base, columns=STATS_COLUMNS), read_stats(candidate, columns=STATS_COLUMNS)
    ca, cb = base.table("scalars"), candidate.table("scalars")
    pa_, pb = sa[sa["kind"] == "param"], sb[sb["kind"] == "param"]
    names_a, names_b = set(pa_["tensor"]), set(pb["tensor"])
    shared = model_order(names_a & names_b, base.manifest)
    steps = sorted(set(pa_["step"]) & set(pb["step"]))
    steps = [int(s) for s in pick_steps(steps, MAX_DIFF_STEPS)] if steps else []
    ha, hb = _hist(base, steps, set(shared)), _hist(candidate, steps, set(shared))
    ia = pa_.set_index(["tensor", "step"])
    ib = pb.set_index(["tensor", "step"])
    dist = []
    for t in shared:
        for s in steps:
            if (t, s) not in ia.index or (t, s) not in ib.index:
                continue
            qa, qb = ia.loc[(t, s), PCTS].to_numpy(float), ib.loc[(t, s), PCTS].to_numpy(float)
            w1 = wasserstein_hist(*ha[(t, s)], *hb[(t, s)]) if (t, s) in ha and (t, s) in hb else np.nan
            dist.append({"tensor": t, "step": s, "w1": w1, "drift": float(np.nanmax(np.abs(qa - qb)))})
    distances = pd.DataFrame(dist, columns=["tensor", "step", "w1", "drift"])
    rows, last = [], (steps[-1] if steps else None)
    for t in shared:
        if last is None or (t, last) not in ia.index or (t, last) not in ib.index:
            continue
        row = {"tensor": t}
        for c in SIDE_STATS:
            a, b = float(ia.loc[(t, last), c]), float(ib.loc[(t, last), c])
            row.update({f"{c}_base": a, f"{c}_candidate": b, f"{c}_delta": b - a})
        d = distances[(distances["tensor"] == t) & (distances["step"] == last)]
        row["w1"] = float(d["w1"].iloc[0]) if len(d) else np.nan
        row["drift"] = float(d["drift"].iloc[0]) if len(d) else np.nan
        rows.append(row)
    cur = []
    for run, sc in ((base, ca), (candidate, cb)):
        c = curves(sc)
        if not c.empty:
            cur.append(c.data.assign(run="base" if run is base else "candidate"))
    cdf = pd.concat(cur, ignore_index=True) if cur else pd.DataFrame(columns=["step", "value", "metric", "split", "run"])
    metrics = sorted(set(cdf["metric"]), key=lambda n: (n != "loss", n.startswith("lr"), n))
    fa, fb = _findings(base, sa, ca, thresholds), _findings(candidate, sb, cb, thresholds)
    ka, kb = {(f.code, f.tensor) for f in fa}, {(f.code, f.tensor) for f in fb}
    return RunDiff(
        base=base.name, candidate=candidate.name, curves=cdf, metrics=metrics, shared=shared,
        only_base=model_order(names_a - names_b, base.manifest),
        only_candidate=model_order(names_b - names_a, candidate.manifest),
        distances=distances, rows=rows, step=last,
        appeared=[f for f in fb if (f.code, f.tensor) not in ka],
        disappeared=[f for f in fa if (f.code, f.tensor) not in kb])
