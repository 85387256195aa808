"""Reading only what a report needs, and bounding series lengths.

Limits (documented in the report captions):
- scalar curves: at most ``MAX_CURVE_POINTS`` points per series, as bucket means;
- per-layer series: at most ``MAX_LAYER_POINTS`` snapshots per layer, evenly spaced
  in snapshot order and always including the first and last snapshot.

Per-snapshot tables (stats, trajectories, batchnorm) are read only at those
snapshots (``Run.snapshot_steps`` → ``pick_steps``), plus, for stats, every row that
counted a NaN or an Inf; so a run of any length builds in bounded memory. All reading
goes through ``Run.table``, the one reader of parts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from weightreport.runfmt.calls import split_call

MAX_CURVE_POINTS = 500
MAX_LAYER_POINTS = 150
FILTER_COLUMNS = ("step", "nan_count", "inf_count")
"""The stats columns ``read_stats`` filters on."""


def read_stats(run, columns: Sequence[str] | None = None, limit: int = MAX_LAYER_POINTS) -> pd.DataFrame:
    """The stats table at ``limit`` evenly spaced snapshots, plus every row with NaN or Inf.

    Args:
        run: a ``Run``.
        columns: the columns to read (all when None).
        limit: snapshots kept (the first and last always are).
    """
    steps = run.snapshot_steps()
    if len(steps) <= limit:
        return run.table("stats", columns=columns)
    kept = pick_steps(steps, limit).tolist()
    # One read: the kept snapshots, or any row that counted a NaN or an Inf (filters OR'ed);
    # the filters' columns are read even when not asked for (else every part fails to filter).
    wanted = None if columns is None else [*columns, *(c for c in FILTER_COLUMNS if c not in columns)]
    rows = run.table("stats", columns=wanted, filters=[
        [("step", "in", kept)], [("nan_count", ">", 0)], [("inf_count", ">", 0)]])
    rows = rows.sort_values(["step"], kind="stable").reset_index(drop=True)
    return rows if columns is None else rows[list(columns)]


def sampled_steps(stats: pd.DataFrame) -> list[int]:
    """The snapshot steps present in a (sampled) stats table, for reading other tables alike."""
    return sorted(int(s) for s in stats["step"].unique())


def late_steps(steps: Sequence[int] | np.ndarray) -> list[int]:
    """The last quarter (at least one) of the sorted unique ``steps``: where the BatchNorm checks look.

    The checks and the readers both take it from the stats table's snapshots, so a
    BatchNorm table read only at these steps gives the same findings as one read whole
    (on a ResNet-50-sized run the whole read was most of the findings' time).
    """
    uniq = np.unique(np.asarray(steps, dtype=np.int64))
    return uniq[-max(1, len(uniq) // 4):].tolist() if len(uniq) else []


def pick_steps(steps: Sequence[int] | np.ndarray, limit: int = MAX_LAYER_POINTS) -> np.ndarray:
    """At most ``limit`` of the sorted unique ``steps``, evenly spaced, first and last kept."""
    uniq = np.unique(np.asarray(steps, dtype=np.int64))
    if len(uniq) <= limit:
        return uniq
    return uniq[np.unique(np.linspace(0, len(uniq) - 1, limit).round().astype(np.int64))]


def bucket_means(df: pd.DataFrame, by: str, limit: int = MAX_CURVE_POINTS) -> pd.DataFrame:
    """Downsample each ``by`` series of ``step, value`` to at most ``limit`` bucket means.

    Buckets are equal ranges of steps; a bucket's point is at its mean step. NaN and
    infinite values are dropped before averaging (findings report them).
    """
    out = []
    for key, g in df.groupby(by, sort=True):
        g = g[np.isfinite(g["value"])].sort_values("step")
        if len(g) > limit:
            lo, hi = g["step"].iloc[0], g["step"].iloc[-1]
            bucket = ((g["step"] - lo) * limit // max(1, hi - lo + 1)).to_numpy()
            g = g.groupby(bucket).agg(step=("step", "mean"), value=("value", "mean")).reset_index(drop=True)
            g["step"] = g["step"].round(1)
        g = g[["step", "value"]].copy()
        g[by] = key
        out.append(g)
    if not out:
        return pd.DataFrame(columns=["step", "value", by])
    return pd.concat(out, ignore_index=True)


def qualified(module: str, param: str) -> str:
    """A parameter's qualified name, whether the manifest gives it qualified or short."""
    if not module or param.startswith(module + "."):
        return param
    return f"{module}.{param}"


def model_order(names, manifest: dict) -> list[str]:
    """``names`` sorted in the model's definition order (unknown names last, alphabetically).

    A reused module's later calls (``layer1.0.relu#2``, ``runfmt.calls``) follow the module,
    in call order, before its parameters.
    """
    order: dict[str, tuple[int, int, int]] = {}
    for i, mod in enumerate(manifest.get("model", {}).get("modules", []) or []):
        mname = mod.get("name", "")
        order.setdefault(mname, (i, 0, 1))
        for j, p in enumerate(mod.get("params", []) or [], start=1):
            order.setdefault(qualified(mname, p["name"]), (i, j, 0))

    def key(name: str) -> tuple:
        if name in order:
            return order[name], name
        module, call = split_call(name, order)
        place = order.get(module) if call > 1 else None
        return ((place[0], 0, call) if place is not None else (1 << 30, 0, 0)), name

    names = pd.unique(pd.Series(names, dtype=object)) if not isinstance(names, set) else names
    return sorted(set(names), key=key)
