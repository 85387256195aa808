"""Shared chart plumbing for Altair charts: compact data from DataFrames, the Altair data
reference and layer parameter; the rest (the ``Chart`` record, ``Datasets``, rounding, ids,
canonical JSON) is plain data in ``specs.py`` and re-exported here.

Data sizes are bounded by analysis; here data is made compact: per-layer series are
stored column-wise (one object per layer holding arrays) and expanded in the browser
by a Vega-Lite ``flatten`` transform after the layer filter, so a report does not
repeat keys for every point. Floats are rounded to ``DIGITS`` significant digits,
per-layer series to ``SERIES_DIGITS`` and heatmap cells to ``HEATMAP_DIGITS`` (the
eye cannot tell more apart, and it keeps a ResNet-50-sized report under 10 MB);
NaN and ±Inf become null.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from weightreport.report.charts import specs
from weightreport.report.charts.specs import (
    DIGITS,
    FULL,
    HALF,
    HEATMAP_DIGITS,
    HEIGHT,
    LAYER,
    SERIES_DIGITS,
    Chart,
    dumps,
    finish,
    make,
    num,
    nums,
    select_layer,
)

__all__ = ["DIGITS", "FULL", "HALF", "HEATMAP_DIGITS", "HEIGHT", "LAYER", "SERIES_DIGITS", "Chart", "Datasets",
           "blank_layers", "columnar", "dumps", "finish", "ints", "layer_filter", "layer_param", "make", "num",
           "nums", "records", "select_layer"]


def ints(values) -> list:
    """Integers (None where missing)."""
    return [None if pd.isna(v) else int(v) for v in values]


def columnar(df: pd.DataFrame, group: str, cols: list[str], int_cols: tuple[str, ...] = ("step",),
             digits: int = SERIES_DIGITS) -> list[dict]:
    """One record per ``group`` value holding each of ``cols`` as an array, groups sorted."""
    out = []
    for key, g in df.groupby(group, sort=True):
        rec = {group: str(key)}
        for c in cols:
            rec[c] = ints(g[c]) if c in int_cols else nums(g[c], digits)
        out.append(rec)
    return out


def records(df: pd.DataFrame, cols: list[str], int_cols: tuple[str, ...] = ()) -> list[dict]:
    """Row records with rounded floats (for small data)."""
    columns = []
    for c in cols:
        s = df[c]
        if c in int_cols:
            columns.append(ints(s))
        elif pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            columns.append(nums(s.astype(float)))
        else:
            columns.append([str(v) for v in s])
    return [dict(zip(cols, row, strict=True)) for row in zip(*columns, strict=True)]


def blank_layers(df: pd.DataFrame, cols: list[str], group: str = "tensor") -> dict[str, str]:
    """The values of ``group`` whose ``cols`` are all 0 or missing, each with a sentence saying so."""
    out = {}
    for key, g in df.groupby(group, sort=True):
        values = g[cols].to_numpy(dtype=np.float64)
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            out[str(key)] = "nothing was recorded for this layer"
        elif not finite.any():
            out[str(key)] = "every value is 0 for this layer"
    return out


class Datasets(specs.Datasets):
    """``specs.Datasets`` whose ``add`` returns Altair's data reference, for ``alt.Chart(data)``."""

    def add(self, values: list) -> alt.Data:
        """Register ``values`` and return the Altair data reference."""
        return alt.Data(name=self.register(values))


def layer_param(layers: list[str], selected: str | None = None) -> alt.Parameter:
    """The ``layer`` parameter, set by the page's selector (not bound inside the chart)."""
    return alt.param(**specs.layer_param_spec(layers, selected))


def layer_filter() -> alt.FilterTransform:
    """Keep the rows of the selected layer."""
    return alt.FilterTransform(filter=f"datum.tensor === {LAYER}")


