"""The run directory's format: file names, table names, columns and their types.

Everything that reads or writes a run directory takes its names from here, so the
format is defined in one place. ``docs/format.md`` documents it for people.
"""

from __future__ import annotations

import pyarrow as pa

FORMAT_VERSION = 1
"""Bumped whenever a table or column changes meaning; readers refuse newer versions."""

MANIFEST = "run.json"
TABLES_DIR = "tables"
INIT_WEIGHTS = "init.pt"
PART_GLOB = "part-*.parquet"

KINDS = ("param", "grad", "activation", "bn_input", "bn_output")
STATUSES = ("running", "complete", "failed", "interrupted")
QUANTILES = (1, 5, 25, 50, 75, 95, 99)

_f64 = pa.float64()
_i64 = pa.int64()
_str = pa.string()

STAT_COLUMNS = (
    [
        ("step", _i64),
        ("tensor", _str),
        ("kind", _str),
        ("numel", _i64),
        ("count", _i64),
        ("nan_count", _i64),
        ("inf_count", _i64),
        ("mean", _f64),
        ("std", _f64),
        ("var", _f64),
        ("min", _f64),
        ("max", _f64),
        ("skew", _f64),
        ("kurtosis", _f64),
        ("norm", _f64),
        ("zeros", _i64),
    ]
    + [(f"p{q}", _f64) for q in QUANTILES]
    + [
        ("quantiles_exact", pa.bool_()),
        ("outliers_3std", _i64),
        ("outliers_6std", _i64),
        ("outliers_iqr", _i64),
        ("update_ratio", _f64),
        ("dist_from_init", _f64),
        ("units", _i64),
        ("dead_units", _i64),
        ("saturated_units", _i64),
    ]
)

SCHEMAS: dict[str, pa.Schema] = {
    "scalars": pa.schema([("step", _i64), ("name", _str), ("value", _f64)]),
    "stats": pa.schema(STAT_COLUMNS),
    "histograms": pa.schema(
        [
            ("step", _i64),
            ("tensor", _str),
            ("kind", _str),
            ("edges", pa.list_(_f64)),
            ("counts", pa.list_(_i64)),
        ]
    ),
    "trajectories": pa.schema(
        [("step", _i64), ("tensor", _str), ("index", _i64), ("value", _f64)]
    ),
    "batchnorm": pa.schema(
        [
            ("step", _i64),
            ("module", _str),
            ("channel", _i64),
            ("batch_mean", _f64),
            ("batch_var", _f64),
            ("running_mean", _f64),
            ("running_var", _f64),
            ("weight", _f64),
            ("bias", _f64),
        ]
    ),
    "heatmaps": pa.schema(
        [
            ("step", _i64),
            ("tensor", _str),
            ("rows", _i64),
            ("cols", _i64),
            ("values", pa.list_(pa.float32())),
        ]
    ),
    "probes": pa.schema(
        [
            ("step", _i64),
            ("module", _str),
            ("kind", _str),
            ("index", _i64),
            ("rows", _i64),
            ("cols", _i64),
            ("values", pa.list_(pa.float32())),
        ]
    ),
}

TABLES = tuple(SCHEMAS)


def part_name(number: int) -> str:
    """File name of the ``number``-th part of a table (1-based, zero-padded so names sort)."""
    return f"part-{number:06d}.parquet"
