"""Shared chart plumbing: compact data, float rounding, ids, and the ``Chart`` record.

Data sizes are bounded by analysis; here data is made compact: per-layer series are
stored column-wise (one object per layer holding arrays) and expanded in the browser
by a Vega-Lite ``flatten`` transform after the layer filter, so a report does not
repeat keys for every point. Floats are rounded to ``DIGITS`` significant digits,
per-layer series to ``SERIES_DIGITS`` and heatmap cells to ``HEATMAP_DIGITS`` (the
eye cannot tell more apart, and it keeps a ResNet-50-sized report under 10 MB);
NaN and ±Inf become null.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

import altair as alt
import numpy as np
import pandas as pd

DIGITS = 6
SERIES_DIGITS = 4
HEATMAP_DIGITS = 3
FULL = 860
HALF = 380
HEIGHT = 220
LAYER = "layer"
"""Name of the Vega-Lite parameter that the HTML layer selector sets."""


@dataclass
class Chart:
    """One chart of a section.

    Attributes:
        title: a caption shown above the chart.
        spec: the Vega-Lite spec (a JSON-ready dict).
        layered: True when the chart follows the section's layer selector.
        wide: True when the chart spans the full content width.
        glance: True for a whole-network view whose marks carry a ``tensor`` field:
            clicking one selects that layer in every section (``templates/js/glance.js``).
        id: a stable id from the spec's content (set by ``finish``).
        datasets: the named datasets the spec refers to.
        blank: for a layered chart, the layers it has nothing to show for (every value 0
            or none recorded), each with the sentence to print instead (``blank_layers``).
    """

    title: str
    spec: dict
    layered: bool = False
    wide: bool = False
    glance: bool = False
    id: str = field(default="")
    datasets: dict[str, list] = field(default_factory=dict)
    blank: dict[str, str] = field(default_factory=dict)

    def full_spec(self) -> dict:
        """The spec with its datasets inlined under ``datasets`` (for validation and SVG)."""
        return {**self.spec, "datasets": dict(sorted(self.datasets.items()))} if self.datasets else self.spec


def num(value, digits: int = DIGITS):
    """A float rounded to ``digits`` significant digits; None for NaN/Inf/missing."""
    if value is None or value is pd.NA:
        return None
    v = float(value)
    if not math.isfinite(v):
        return None
    return float(f"{v:.{digits}g}")


def nums(values, digits: int = DIGITS) -> list:
    """``num`` over a sequence."""
    arr = np.asarray(values, dtype=np.float64)
    fmt = f"{{:.{digits}g}}"
    return [float(fmt.format(v)) if math.isfinite(v) else None for v in arr.tolist()]


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


class Datasets:
    """Named datasets collected while building charts; a name is a hash of the content.

    Charts refer to data by name (``{"name": ...}``); the page stores each dataset once,
    so charts that show the same data (a section's per-layer charts) share it.
    """

    def __init__(self) -> None:
        self.values: dict[str, list] = {}

    def add(self, values: list) -> alt.Data:
        """Register ``values`` and return the Altair data reference."""
        name = "d" + hashlib.sha256(dumps(values).encode("utf-8")).hexdigest()[:12]
        self.values[name] = values
        return alt.Data(name=name)


def layer_param(layers: list[str], selected: str | None = None) -> alt.Parameter:
    """The ``layer`` parameter, set by the page's selector (not bound inside the chart)."""
    return alt.param(name=LAYER, value=selected if selected is not None else (layers[0] if layers else ""))


def layer_filter() -> alt.FilterTransform:
    """Keep the rows of the selected layer."""
    return alt.FilterTransform(filter=f"datum.tensor === {LAYER}")


def to_spec(chart) -> dict:
    """An Altair chart as a plain spec dict (not validated here; the tests validate)."""
    return chart.to_dict(validate=False)


def make(title: str, chart, data: Datasets, **kw) -> Chart:
    """A ``Chart`` holding the spec and the datasets it refers to."""
    spec = to_spec(chart)
    text = dumps(spec)
    used = {n: v for n, v in data.values.items() if f'"name":"{n}"' in text}
    return Chart(title, spec, datasets=used, **kw)


def dumps(spec: dict) -> str:
    """Canonical JSON: sorted keys, no NaN, compact."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def finish(charts: list[Chart], seen: set[str]) -> list[Chart]:
    """Give each chart a stable id from its content (unique within ``seen``)."""
    for c in charts:
        base = "chart-" + hashlib.sha256(dumps(c.spec).encode("utf-8")).hexdigest()[:12]  # data names are hashes
        cid, n = base, 1
        while cid in seen:
            n += 1
            cid = f"{base}-{n}"
        seen.add(cid)
        c.id = cid
    return charts


def select_layer(spec: dict, layer: str) -> dict:
    """A copy of a layered spec with the ``layer`` parameter set to ``layer`` (for print)."""
    spec = json.loads(json.dumps(spec))
    for p in spec.get("params", []):
        if p.get("name") == LAYER:
            p["value"] = layer
    return spec
