"""Reading only what a report needs, and bounding series lengths.

Limits (documented in the report captions):
- scalar curves: at most ``MAX_CURVE_POINTS`` points per series, as bucket means;
- per-layer series: at most ``MAX_LAYER_POINTS`` snapshots per layer, evenly spaced
  in snapshot order and always including the first and last snapshot.

Per-snapshot tables (stats, trajectories, batchnorm) are read only at those
snapshots (``snapshot_steps`` → ``pick_steps``), plus, for stats, every row that
counted a NaN or an Inf; so a run of any length builds in bounded memory.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from weightreport.runfmt.schema import SCHEMAS, TABLES_DIR

MAX_CURVE_POINTS = 500
MAX_LAYER_POINTS = 150


def read(run, name: str, columns: Sequence[str] | None = None,
         steps: Sequence[int] | None = None, schema: pa.Schema | None = None) -> pd.DataFrame:
    """Read ``columns`` of table ``name``, optionally only rows at ``steps``.

    Parts that cannot be read are skipped with a warning, as ``load_run`` does.

    Args:
        run: a ``Run``.
        name: the table.
        columns: the columns (all when None).
        steps: keep only rows whose step is in this list (pushed down to Parquet).
        schema: the table's schema when it is not one of ``schema.SCHEMAS``.
    """
    schema = schema if schema is not None else SCHEMAS[name]
    if columns is not None:
        schema = pa.schema([schema.field(c) for c in columns])
    if steps is None and name in SCHEMAS and hasattr(run, "table"):
        return run.table(name, columns=list(schema.names))
    filters = [("step", "in", sorted({int(s) for s in steps}))] if steps is not None else None
    pieces = []
    for part in sorted((run.path / TABLES_DIR / name).glob("part-*.parquet")):
        try:
            pieces.append(pq.read_table(part, columns=list(schema.names), schema=schema, filters=filters))
        except Exception as exc:  # an unreadable part is skipped, never fatal
            warnings.warn(f"skipping unreadable part {part}: {type(exc).__name__}: {exc}",
                          UserWarning, stacklevel=2)
    table = pa.concat_tables(pieces) if pieces else schema.empty_table()
    return table.to_pandas()


def snapshot_steps(run) -> np.ndarray:
    """Every step at which the stats table has rows, reading one part's steps at a time."""
    seen: set[int] = set()
    for part in sorted((run.path / TABLES_DIR / "stats").glob("part-*.parquet")):
        try:
            steps = pq.read_table(part, columns=["step"]).column("step").to_numpy()
        except Exception:  # unreadable parts are reported when the rows are read
            continue
        seen.update(np.unique(steps).tolist())
    return np.array(sorted(seen), dtype=np.int64)


def read_stats(run, columns: Sequence[str] | None = None, limit: int = MAX_LAYER_POINTS) -> pd.DataFrame:
    """The stats table at ``limit`` evenly spaced snapshots, plus every row with NaN or Inf.

    Args:
        run: a ``Run``.
        columns: the columns to read (all when None).
        limit: snapshots kept (the first and last always are).
    """
    steps = snapshot_steps(run)
    if len(steps) <= limit:
        return read(run, "stats", columns=columns)
    kept = read(run, "stats", columns=columns, steps=pick_steps(steps, limit).tolist())
    bad = _read_filtered(run, "stats", columns,
                         [[("nan_count", ">", 0)], [("inf_count", ">", 0)]])
    if bad.empty:
        return kept
    both = pd.concat([kept, bad], ignore_index=True)
    return both.drop_duplicates(["step", "tensor", "kind"]).sort_values(
        ["step"], kind="stable").reset_index(drop=True)


def _read_filtered(run, name: str, columns, filters) -> pd.DataFrame:
    schema = SCHEMAS[name]
    if columns is not None:
        schema = pa.schema([schema.field(c) for c in columns])
    pieces = []
    for part in sorted((run.path / TABLES_DIR / name).glob("part-*.parquet")):
        try:
            pieces.append(pq.read_table(part, columns=list(schema.names), schema=schema, filters=filters))
        except Exception:  # unreadable parts are reported by the main read
            continue
    return (pa.concat_tables(pieces) if pieces else schema.empty_table()).to_pandas()


def sampled_steps(stats: pd.DataFrame) -> list[int]:
    """The snapshot steps present in a (sampled) stats table, for reading other tables alike."""
    return sorted(int(s) for s in stats["step"].unique())


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
    """``names`` sorted in the model's definition order (unknown names last, alphabetically)."""
    order: dict[str, tuple[int, int]] = {}
    for i, mod in enumerate(manifest.get("model", {}).get("modules", []) or []):
        mname = mod.get("name", "")
        order.setdefault(mname, (i, 0))
        for j, p in enumerate(mod.get("params", []) or [], start=1):
            order.setdefault(qualified(mname, p["name"]), (i, j))
    names = pd.unique(pd.Series(names, dtype=object)) if not isinstance(names, set) else names
    return sorted(set(names), key=lambda n: (order.get(n, (1 << 30, 0)), n))
