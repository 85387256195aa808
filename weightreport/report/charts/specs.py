"""Vega-Lite specs as plain data: the ``Chart`` record, named datasets, rounding, canonical JSON, ids.

Nothing here imports Altair or pandas, so a page whose charts are written as plain dicts
(the checkpoint page, ``inspect/charts.py``) loads neither. ``common.py`` re-exports all of
it for the run report's Altair charts, and adds the Altair and DataFrame helpers.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from numbers import Real

import numpy as np

DIGITS = 6
SERIES_DIGITS = 4
HEATMAP_DIGITS = 3
FULL = 860
HALF = 380
HEIGHT = 220
LAYER = "layer"
"""Name of the Vega-Lite parameter that the HTML layer selector sets."""
SCHEMA_URL = "https://vega.github.io/schema/vega-lite/v6.4.1.json"
"""The ``$schema`` of every top-level spec: the installed Altair's (a test keeps the two equal)."""
VIEW_CONFIG = {"view": {"continuousHeight": 300, "continuousWidth": 300}}
"""The ``config`` Altair gives every top-level spec (its default view size)."""


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


def _is_na(value) -> bool:
    """True for None and for pandas' ``NA`` (checked only when pandas is loaded: else no value is it)."""
    if value is None:
        return True
    pd = sys.modules.get("pandas")
    return pd is not None and value is pd.NA


def num(value, digits: int = DIGITS):
    """A float rounded to ``digits`` significant digits; None for NaN/Inf/missing."""
    if _is_na(value):
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


def _is_number(value) -> bool:
    """True for a real number that is not a bool (None counts: a missing number)."""
    kind = type(value)
    if kind is float or kind is int or value is None:  # the common cases, without the slower ABC check
        return True
    return isinstance(value, Real) and not isinstance(value, bool | np.bool_)


def row_records(rows: Sequence[dict], cols: list[str], int_cols: tuple[str, ...] = ()) -> list[dict]:
    """Records of ``cols`` from plain row dicts, as ``common.records`` makes them from a DataFrame.

    ``int_cols`` become integers (None where missing); a column of numbers (None or NaN
    where missing) is rounded by ``nums``; any other column becomes text.
    """
    columns = []
    for c in cols:
        values = [r[c] for r in rows]
        if c in int_cols:
            columns.append([None if v is None or v != v else int(v) for v in values])  # v != v: NaN
        elif all(_is_number(v) for v in values):
            columns.append(nums([math.nan if v is None else v for v in values]))
        else:
            columns.append([str(v) for v in values])
    return [dict(zip(cols, row, strict=True)) for row in zip(*columns, strict=True)]


class Datasets:
    """Named datasets collected while building charts; a name is a hash of the content.

    Charts refer to data by name (``{"name": ...}``); the page stores each dataset once,
    so charts that show the same data (a section's per-layer charts) share it.
    """

    def __init__(self) -> None:
        self.values: dict[str, list] = {}

    def register(self, values: list) -> str:
        """Register ``values`` and return their name."""
        name = "d" + hashlib.sha256(dumps(values).encode("utf-8")).hexdigest()[:12]
        self.values[name] = values
        return name

    def add(self, values: list) -> dict:
        """Register ``values`` and return the spec's data reference, ``{"name": ...}``."""
        return {"name": self.register(values)}


def layer_param_spec(layers: list[str], selected: str | None = None) -> dict:
    """The ``layer`` parameter as a spec dict, set by the page's selector (not bound inside the chart)."""
    return {"name": LAYER, "value": selected if selected is not None else (layers[0] if layers else "")}


def top_level(spec: dict) -> dict:
    """``spec`` as a top-level spec: with ``$schema`` and ``config`` as Altair's ``to_dict`` adds them."""
    return {"$schema": SCHEMA_URL, "config": VIEW_CONFIG, **spec}


def make(title: str, chart, data: Datasets, **kw) -> Chart:
    """A ``Chart`` holding the spec (a dict, or an Altair chart's ``to_dict``) and the datasets it refers to.

    A dict is copied (through its JSON), so parts it shares with other specs are not shared in the charts.
    """
    if isinstance(chart, dict):
        text = dumps(chart)
        spec = json.loads(text)
    else:
        spec = chart.to_dict(validate=False)
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
