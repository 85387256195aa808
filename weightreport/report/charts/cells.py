"""A layer × column heatmap (layers as rows in model order; runs, checkpoints or steps as columns)
whose cells that cannot sit on the colour scale are drawn, not dropped.

A log colour scale has no place for 0, and no scale has one for NaN, Inf or a value that
was never measured: each such cell gets its own fixed colour and legend entry
(``special.py``, shared with the run report's glance), and the legend lists only the
kinds present. Rows shrink with the number of layers (3–14 px); below 9 px the layer
names move to the tooltip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import altair as alt
import numpy as np
import pandas as pd

from weightreport.report.charts.common import Datasets, records
from weightreport.report.charts.special import (
    present_kinds,
    special_kinds,
    special_legend,
    special_scale,
)

WIDTH = 760
MAX_HEIGHT = 900


def layer_heatmap(ds: Datasets, df: pd.DataFrame, value: str, *, rows: Sequence[str], columns: Sequence[str],
                  row_field: str = "tensor", column_field: str = "run", log: bool = True,
                  scheme: str = "viridis", mid: float | None = None, special: np.ndarray | None = None,
                  tooltip: Sequence[alt.Tooltip] = (),
                  colours: Mapping[str, str] | None = None) -> alt.LayerChart | None:
    """Cells of ``value`` at (``row_field``, ``column_field``), rows and columns in the given orders.

    Args:
        ds: the page's datasets.
        df: one row per cell.
        value: the column coloured.
        rows, columns: the orders of the rows (layers) and the columns.
        log: a log colour scale (0 and negatives become the special kind ``0``).
        scheme: the Vega colour scheme.
        mid: the value at a diverging scheme's centre (1 for a ratio), or None.
        special: per row of ``df``, its special kind (``special_kinds``); computed when None.
        tooltip: extra tooltip fields.
        colours: the colours of the page's own special kinds (``special.special_scale``).

    Returns:
        The chart, or None when no cell has a value the scale can show and none is special.
    """
    if df.empty:
        return None
    kinds = special if special is not None else special_kinds(df[value].to_numpy(float), log)
    data = df.assign(special=kinds)
    present = present_kinds(kinds)
    row = max(3, min(14, MAX_HEIGHT // max(len(rows), 1)))
    col = max(10, min(36, WIDTH // max(len(columns), 1)))
    fields = list(dict.fromkeys([row_field, column_field, value, "special",
                                 *(t.to_dict()["field"] for t in tooltip)]))
    base = alt.Chart(ds.add(records(data, fields))).encode(
        x=alt.X(f"{column_field}:N", sort=list(columns), title=None,
                axis=alt.Axis(labelAngle=-40, labelLimit=140)),
        y=alt.Y(f"{row_field}:N", sort=list(rows), title=None,
                axis=alt.Axis(labelLimit=260, labelFontSize=10) if row >= 9 else None),
        tooltip=[alt.Tooltip(f"{row_field}:N"), alt.Tooltip(f"{column_field}:N"),
                 alt.Tooltip(f"{value}:Q", format=".4g"), *tooltip],
    )
    layers = []
    if (kinds == "").any():
        extra = {} if mid is None else {"domainMid": mid}
        scale = (alt.Scale(type="log", scheme=scheme, **extra) if log
                 else alt.Scale(scheme=scheme, zero=False, **extra))
        layers.append(base.transform_filter("datum.special === ''").mark_rect().encode(
            color=alt.Color(f"{value}:Q", title=None, scale=scale, legend=alt.Legend(orient="right", format=".2~g"))))
    if present:
        layers.append(base.transform_filter("datum.special !== ''").mark_rect().encode(
            fill=alt.Fill("special:N", title=None, legend=special_legend(present),
                          scale=special_scale(present, colours))))
    if not layers:
        return None
    return alt.layer(*layers).properties(width=alt.Step(col), height=alt.Step(row))
