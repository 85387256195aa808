"""The overview and training-curves sections."""

from __future__ import annotations

import numpy as np
import pandas as pd

from weightreport.report.analysis.findings import find_all
from weightreport.report.analysis.model import Curves, ModuleRow, Overview
from weightreport.report.analysis.sampling import MAX_CURVE_POINTS, bucket_means

VAL_PREFIX = "val_"


def _shape(shape) -> str:
    return "×".join(str(int(d)) for d in shape) if shape else ""


def overview(run, stats: pd.DataFrame, scalars: pd.DataFrame, findings: list | None = None) -> Overview:
    """Run identity, status, the structure table, environment and findings.

    ``findings`` are computed from ``stats`` and ``scalars`` with the default thresholds when None.
    """
    m = run.manifest
    model = m.get("model") or {}
    rows = []
    for mod in model.get("modules") or []:
        prefix = f"{mod.get('name')}." if mod.get("name") else ""
        params = ", ".join(f"{str(p.get('name')).removeprefix(prefix)} {_shape(p.get('shape'))}"
                           for p in mod.get("params") or [])
        out = mod.get("output_shape")
        rows.append(ModuleRow(name=mod.get("name") or "(root)", type=str(mod.get("type", "")),
                              depth=int(mod.get("depth", 0) or 0), params=params,
                              num_params=int(mod.get("num_params", 0) or 0),
                              output_shape=_shape(out) if out else "—"))
    settings = {str(k): "—" if v is None else str(v) for k, v in sorted((m.get("settings") or {}).items())}
    env = {str(k): str(v) for k, v in sorted((m.get("environment") or {}).items())}
    return Overview(
        key="overview", title="Overview", name=run.name, status=str(m.get("status", "complete")),
        error=m.get("error"), last_step=int(m.get("last_step", 0) or 0),
        snapshots=int(m.get("snapshots", 0) or 0), model_class=str(model.get("class", "")),
        total_params=int(model.get("total_params", 0) or 0),
        trainable_params=int(model.get("trainable_params", 0) or 0),
        modules=rows, environment=env, settings=settings, findings=find_all(stats, scalars) if findings is None else findings,
        caption="The run's identity, the model's modules in definition order, and problems found "
                "in the recorded statistics.")


def curves(scalars: pd.DataFrame) -> Curves:
    """Every scalar over steps; ``val_x`` is drawn on the same chart as ``x``."""
    if scalars.empty:
        return Curves(key="curves", title="Training curves",
                      note="No scalars were logged: pass them to Collector.step(loss=...) or log(...).")
    df = scalars[["step", "name", "value"]].copy()
    df["value"] = df["value"].astype(float)
    df = bucket_means(df, "name", MAX_CURVE_POINTS)
    val = df["name"].str.startswith(VAL_PREFIX)
    df["metric"] = np.where(val, df["name"].str.slice(len(VAL_PREFIX)), df["name"])
    df["split"] = np.where(val, "validation", "training")
    metrics = sorted(df["metric"].unique(), key=lambda n: (n != "loss", n.startswith("lr"), n))
    return Curves(key="curves", title="Training curves", data=df.reset_index(drop=True), metrics=metrics,
                  caption=f"Each scalar over steps; validation (val_*) drawn over training. Series "
                          f"longer than {MAX_CURVE_POINTS} points are shown as {MAX_CURVE_POINTS} "
                          f"bucket means.")
