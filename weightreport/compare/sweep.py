"""2–50 runs → ``Sweep``: one row per run, their curves, each shared layer's final state per run, findings.

Each run is read as ``weightreport summary`` reads it (``summary_of``: status, config,
key scalars, findings) plus its sampled parameter statistics, from which each layer's
final update ratio and its weight norm relative to the first snapshot are taken.
Layers are compared by name on the tensors every run recorded; the others are listed
per run. Runs are kept in the order given.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from weightreport.errors import WeightReportError
from weightreport.report.analysis.finding import SEVERITIES, Finding, scaled
from weightreport.report.analysis.metrics import ScalarRow, key_scalars, scalar_order
from weightreport.report.analysis.run_tables import RunTables
from weightreport.report.analysis.sampling import model_order
from weightreport.report.analysis.summary import SUMMARY_STATS_COLUMNS
from weightreport.report.analysis.thresholds import Thresholds
from weightreport.report.sections import overview
from weightreport.report.sections.curves import curves

MIN_RUNS, MAX_RUNS = 2, 50
MISSING = "—"
FINAL_COLUMNS = ("update_ratio", "norm_ratio")


@dataclass
class SweepRun:
    """One run of a sweep, as its summary sees it.

    Attributes:
        label: the name shown (the run's name; its path when two runs share a name).
        path: the run directory as given.
        status, last_step, snapshots: from run.json and the tables.
        config: the flat config (dotted key → value as text).
        scalars: first, last and best of every scalar.
        findings: every finding; ``counts`` per severity and ``by_code`` per code.
    """

    label: str
    path: str
    status: str
    last_step: int
    snapshots: int
    config: dict[str, str]
    scalars: list[ScalarRow]
    findings: list[Finding]
    counts: dict[str, int] = field(default_factory=dict)
    by_code: dict[str, int] = field(default_factory=dict)

    def scalar(self, name: str) -> ScalarRow | None:
        """The scalar called ``name``, or None when this run did not log it."""
        return next((s for s in self.scalars if s.name == name), None)


@dataclass
class Sweep:
    """A comparison of several runs.

    Attributes:
        runs: the runs, in the order given.
        config_keys: the config keys whose values differ between runs.
        metrics: every scalar any run logged (losses first), for the table and the curves.
        curves: ``step, value, metric, split, run`` for every run (bucket means).
        shared: tensors every run recorded, in the first run's model order.
        not_shared: per run label, its tensors that some other run lacks.
        finals: ``tensor, run, update_ratio, norm_ratio, measured`` per shared tensor and run
            at its last snapshot (see ``_finals``).
        codes: the ``(code, severity)`` pairs found in any run, worst first.
    """

    runs: list[SweepRun]
    config_keys: list[str]
    metrics: list[str]
    curves: pd.DataFrame
    shared: list[str]
    not_shared: dict[str, list[str]]
    finals: pd.DataFrame
    codes: list[tuple[str, str]]

    def code_count(self, run: SweepRun, code: str, severity: str) -> int:
        """How many findings of ``code`` at ``severity`` ``run`` has."""
        return sum(f.code == code and f.severity == severity for f in run.findings)

    def to_dict(self) -> dict:
        """The sweep as JSON-ready data (every run's config, scalars, counts and findings)."""
        return {
            "runs": [{"label": r.label, "path": r.path, "status": r.status, "last_step": r.last_step,
                      "snapshots": r.snapshots, "config": r.config, "counts": r.counts, "by_code": r.by_code,
                      "scalars": [dataclasses.asdict(s) for s in r.scalars],
                      "findings": [dataclasses.asdict(f) for f in r.findings]} for r in self.runs],
            "config_keys": self.config_keys,
            "metrics": self.metrics,
            "shared_tensors": self.shared,
            "not_shared": self.not_shared,
            "finals": self.finals.to_dict("records"),
        }


def _finals(tables: RunTables, label: str) -> pd.DataFrame:
    """Per tensor at its last snapshot: the update ratio, and ‖w‖ over its first norm with a scale.

    A tensor born near zero (a bias at 0) has no scale to grow from: its norm ratio counts
    from its first snapshot with RMS ≥ ``NEAR_ZERO_RMS`` and is missing (``measured``
    False) when it never reached one, as the report's norm-growth check does.
    """
    params = tables.params
    rows = []
    for tensor, g in params.sort_values("step", kind="stable").groupby("tensor", sort=False):
        norms = g["norm"].to_numpy(dtype=float)
        has_scale = scaled(g).to_numpy()
        ref = norms[has_scale.argmax()] if has_scale.any() else np.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = norms[-1] / ref
        rows.append({"tensor": str(tensor), "run": label, "update_ratio": float(g["update_ratio"].iloc[-1]),
                     "norm_ratio": float(ratio), "measured": bool(has_scale.any())})
    return pd.DataFrame(rows, columns=["tensor", "run", *FINAL_COLUMNS, "measured"])


def _labels(runs) -> list[str]:
    names = [r.name for r in runs]
    repeated = {n for n, c in Counter(names).items() if c > 1}
    return [str(r.path) if r.name in repeated else r.name for r in runs]


def _differing(configs: list[dict[str, str]]) -> list[str]:
    keys = sorted({k for c in configs for k in c})
    return [k for k in keys if len({c.get(k, MISSING) for c in configs}) > 1]


def sweep_runs(runs, thresholds: Thresholds | None = None) -> Sweep:
    """Compare ``Run``s (see the module docstring).

    Raises:
        WeightReportError: fewer than 2 or more than 50 runs.
    """
    runs = list(runs)
    if not MIN_RUNS <= len(runs) <= MAX_RUNS:
        msg = (f"compare needs {MIN_RUNS} to {MAX_RUNS} runs, got {len(runs)}"
               + ("; for one run use `weightreport build`" if len(runs) == 1 else ""))
        raise WeightReportError(msg)
    out, curve_parts, finals, names = [], [], [], []
    for run, label in zip(runs, _labels(runs), strict=True):
        tables = RunTables(run, thresholds, stats_columns=SUMMARY_STATS_COLUMNS)
        o = overview.SECTION.build(tables)
        findings = list(tables.findings)
        out.append(SweepRun(
            label=label, path=str(run.path), status=o.status, last_step=int(o.last_step), snapshots=int(o.snapshots),
            config=dict(o.config), scalars=key_scalars(tables.scalars), findings=findings,
            counts={s: sum(f.severity == s for f in findings) for s in SEVERITIES},
            by_code=dict(sorted(Counter(f.code for f in findings).items()))))
        c = curves(tables.scalars)
        if not c.empty:
            curve_parts.append(c.data.assign(run=label))
        finals.append(_finals(tables, label))
        names.append((label, set(tables.params["tensor"]) if not tables.params.empty else set(), run.manifest))
    shared_set = set.intersection(*(n for _, n, _ in names))
    shared = model_order(shared_set, names[0][2])
    not_shared = {label: model_order(n - shared_set, manifest) for label, n, manifest in names if n - shared_set}
    cdf = (pd.concat(curve_parts, ignore_index=True) if curve_parts
           else pd.DataFrame(columns=["step", "value", "metric", "split", "run"]))
    fdf = pd.concat(finals, ignore_index=True)
    fdf = fdf[fdf["tensor"].isin(shared_set)].reset_index(drop=True)
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    codes = sorted({(f.code, f.severity) for r in out for f in r.findings}, key=lambda cs: (rank[cs[1]], cs[0]))
    return Sweep(runs=out, config_keys=_differing([r.config for r in out]),
                 metrics=sorted({s.name for r in out for s in r.scalars}, key=scalar_order), curves=cdf, shared=shared, not_shared=not_shared,
                 finals=fdf, codes=codes)
