"""Whole-network charts: layer × step heatmaps and a depth profile, with module groups.

Rows are layers in model order (row 0 at the top); the left gutter holds alternating
bands and labels for the module groups, and per-row names when rows are tall enough.
Every mark that stands for a layer carries its ``tensor`` field (``templates/js/glance.js``
turns a click on one into a layer selection). Values come rounded from the section:
nothing here computes a statistic. Special cells are drawn in the fixed colours of
``special.py`` (shared with the compare, diff and series heatmaps) with a legend entry
each, and only those present: ``0`` (an exact zero on a log scale) and ``NaN/Inf``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import altair as alt
import numpy as np
import pandas as pd

from weightreport.report.charts.common import HEATMAP_DIGITS, Datasets, nums
from weightreport.report.charts.names import CHAR_PX, fit_tail
from weightreport.report.charts.special import NONFINITE, ZERO, special_legend, special_scale
from weightreport.runfmt.calls import split_call

CELLS_WIDTH = 520
GROUP_WIDTH = 190
ROW_WIDTH = 110
PANEL_WIDTH = 104
TARGET_HEIGHT = 520
MIN_ROW, MAX_ROW, LABELLED_ROW = 1.5, 12.0, 11.0
GROUP_PX = 24
LABEL_MIN_PX = 10
ROW_CHARS = math.floor((ROW_WIDTH - 10) / (CHAR_PX * 0.9))
"""The characters a row label has room for (``ROW_WIDTH`` less its margin, at 9 px type)."""
BAND = "#eef1f5"
VALUE_COLOUR = "#1f5fa8"
PANEL_LABELS = 3
"""The most decade labels a depth-profile panel has room for ("1e-12" is about 30 px)."""
SELECTED = "glance_layer"
"""The Vega parameter holding the layer selected last (``templates/js/glance.js`` sets it)."""


def decade_span(values: Sequence[float | None], labels: int = PANEL_LABELS) -> tuple[int, int, int]:
    """The decades a log panel spans (``lo``, ``hi``: exponents enclosing the positive values) and
    the label spacing ``every``: one label each ``every`` decades from ``lo``, at most ``labels``.

    Every decade keeps its tick and grid line; the labels fall evenly (1e-6, 1e-4, 1e-2), where
    Vega's overlap removal left gaps that differ (1e-4, 1e-2, 1e-1).
    """
    pos = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    if not pos:
        return -1, 0, 1
    lo, hi = math.floor(math.log10(min(pos)) + 1e-9), math.ceil(math.log10(max(pos)) - 1e-9)
    hi = max(hi, lo + 1)
    every = max(1, math.ceil((hi - lo) / max(1, labels - 1)))
    hi = lo + every * math.ceil((hi - lo) / every)  # the last decade labelled too
    return lo, hi, every


def row_px(rows: int) -> float:
    """The height of one row in pixels: the chart aims at ``TARGET_HEIGHT``, within bounds."""
    return round(min(MAX_ROW, max(MIN_ROW, TARGET_HEIGHT / max(rows, 1))), 2)


def max_groups(rows: int) -> int:
    """How many module groups a chart of ``rows`` rows can label (about one per ``GROUP_PX`` pixels)."""
    return max(1, int(row_px(rows) * rows // GROUP_PX))


def gutter(rows: int) -> tuple[float, bool]:
    """The left gutter's width, and whether each row gets its own label."""
    labelled = row_px(rows) >= LABELLED_ROW
    return GROUP_WIDTH + (ROW_WIDTH if labelled else 0), labelled


def colour_scale(scale: str, values: list) -> alt.Scale:
    """The colour scale of a signal: ``log`` (sequential), ``ratio`` (log, diverging at 1) or ``fraction``."""
    if scale == "fraction":
        return alt.Scale(domain=[0, 1], scheme="yelloworangebrown")
    if scale == "ratio":
        pos = [v for v in values if v is not None and v > 0]
        reach = max((abs(math.log10(v)) for v in pos), default=0.0)
        reach = max(reach, 0.01)
        return alt.Scale(type="log", scheme="blueorange", domain=[10 ** -reach, 10**reach], nice=False)
    return alt.Scale(type="log", scheme="viridis")


def _state(scale: str, zero: str = ZERO, flag: str = NONFINITE) -> str:
    """A cell's state in Vega (``special.special_kinds``' rule): ``v``, a special kind, or "" (no value)."""
    zero_test = f'datum.value <= 0 ? "{zero}" : ' if scale != "fraction" else ""
    return f'indexof(datum.bad, datum.b) >= 0 ? "{flag}" : datum.value === null ? "" : {zero_test}"v"'


def group_records(groups) -> list[dict]:
    """``group, start, end, shade`` per module group (``analysis.layer_grid.Group``), shades alternating."""
    return [{"group": g.label, "start": g.start, "end": g.end, "shade": i % 2} for i, g in enumerate(groups)]


def _label(name: str, group: str) -> str:
    """A row's name after its group's path, fitted to the gutter; a reused module's later call
    reads ``relu (call 2)``. A name after a path of numbered blocks keeps its block's number
    (``0.…ermediate_act_fn``), so rows under a range of blocks can be told apart."""
    module, call = split_call(name)
    if call == 1:
        module = name
    suffix = f"(call {call})" if call > 1 else ""
    if module == group:
        return suffix
    short = f"{module[len(group) + 1:] if module.startswith(group + '.') else module} {suffix}".rstrip()
    index, _, rest = short.partition(".")
    if len(short) <= ROW_CHARS or not index.isdigit() or not rest:
        return fit_tail(short, ROW_CHARS)
    return f"{index}.{fit_tail(rest, ROW_CHARS - len(index) - 1)}"



def row_records(rows: list[str], cells: pd.DataFrame, groups, count: int, flat: Sequence[str] = (),
                members: Sequence[Sequence[str]] | None = None) -> list[dict]:
    """``heatmap_chart``'s records: per row its name, index, label (the part after its group), one
    rounded value (or null) per column, its flagged columns (``bad``), and per column each ``flat`` field.

    Args:
        rows: the row names, in order.
        cells: ``tensor, bin, value, bad`` and the ``flat`` columns (``analysis.layer_grid.grid``).
        groups: the rows' module groups.
        count: the number of columns.
        flat: per-cell columns of ``cells`` to carry (the chart's ``flat`` tooltips).
        members: per row, the layers it stands for, when a row holds several (a click on the row
            selects its first, or the one a cell names in ``at``; the outline finds any of them).
    """
    index = {n: i for i, n in enumerate(rows)}
    values = np.full((len(rows), count), np.nan)
    r, b = cells["tensor"].map(index).to_numpy(np.int64), cells["bin"].to_numpy(np.int64)
    values[r, b] = cells["value"].to_numpy(dtype=float)
    bad: list[list[int]] = [[] for _ in rows]
    for ri, bi in zip(r[cells["bad"].to_numpy(bool)], b[cells["bad"].to_numpy(bool)], strict=True):
        bad[ri].append(int(bi))
    extra = {}
    for f in flat:
        column: list[list] = [[None] * count for _ in rows]
        for ri, bi, v in zip(r, b, cells[f], strict=True):
            column[ri][bi] = None if pd.isna(v) else v
        extra[f] = column
    group = {n: g.shared for g in groups for n in rows[g.start:g.end]}
    out = [{"tensor": n, "row": i, "v": nums(values[i], HEATMAP_DIGITS), "bad": sorted(bad[i]),
            "label": _label(n, group[n]), **{f: extra[f][i] for f in flat}} for i, n in enumerate(rows)]
    for rec, held in zip(out, members or (), strict=False):
        if len(held) > 1:
            rec["members"] = list(held)
    return out


def _y(rows: int, field: str = "row") -> alt.Y:
    return alt.Y(f"{field}:Q", axis=None, scale=alt.Scale(domain=[0, rows], reverse=True, nice=False, zero=False))


def gutter_layers(groups: alt.Data, rows: int, px: float, width: float, labelled: bool = False) -> list[alt.Chart]:
    """Alternate bands and labels for module groups, drawn left of the plot (negative x); the labels
    end just left of the cells, or of the row labels when each row has one."""
    y = _y(rows, "start")
    end = width - (ROW_WIDTH if labelled else 0) - 6  # where the labels end, from the gutter's left edge
    base = alt.Chart(groups)
    bands = base.mark_rect().encode(  # white bands too: every chart's gutter is ``width`` wide
        x=alt.XValue(-width), x2=alt.X2Value(-2), y=y, y2=alt.Y2("end:Q"),
        fill=alt.condition("datum.shade === 1", alt.value(BAND), alt.value("#ffffff")),
        tooltip=[alt.Tooltip("group:N", title="module")])
    labels = base.transform_filter(f"(datum.end - datum.start) * {px} >= {LABEL_MIN_PX}").transform_calculate(
        mid="(datum.start + datum.end) / 2").mark_text(
        align="right", baseline="middle", fontSize=10, limit=end - 12, color="#1d2430").encode(
        x=alt.XValue(end - width), y=_y(rows, "mid"), text=alt.Text("group:N"),
        tooltip=[alt.Tooltip("group:N", title="module")])
    return [bands, labels]


def selected_row(data: alt.Data, rows: int, width: float) -> alt.Chart:
    """An outline around the selected layer's row (none until a layer is selected)."""
    held = f"datum.tensor === {SELECTED} || (isArray(datum.members) && indexof(datum.members, {SELECTED}) >= 0)"
    return alt.Chart(data).transform_filter(held).transform_calculate(
        row2="datum.row + 1").mark_rect(fill=None, stroke="#111", strokeWidth=1.5).encode(
        x=alt.XValue(0), x2=alt.X2Value(width), y=_y(rows), y2=alt.Y2("row2:Q"))


def row_labels(data: alt.Data, rows: int) -> alt.Chart:
    """Each row's name (its ``label``, the part after its group) just left of the cells."""
    return alt.Chart(data).transform_calculate(mid="datum.row + 0.5").mark_text(
        align="right", baseline="middle", fontSize=9, limit=ROW_WIDTH - 10, color="#3b4350",
        cursor="pointer").encode(x=alt.XValue(-6), y=_y(rows, "mid"), text=alt.Text("label:N"),
        tooltip=[alt.Tooltip("tensor:N", title="layer")])


def heatmap_chart(ds: Datasets, records: list[dict], groups: list[dict], *, rows: int, scale: str,
                  legend: str, first: int, span: int, columns: list[dict], present: list[str],
                  values: list, width: float, value_title: str = "value (last in range)",
                  zero: str = ZERO, flag: str = NONFINITE, colours: Mapping[str, str] | None = None,
                  flat: Sequence[alt.Tooltip] = (), row_title: str = "layer") -> alt.LayerChart:
    """One signal's layer × step heatmap.

    Args:
        ds: the page's datasets.
        records: per row ``tensor, row, v`` (one value or null per column), ``bad`` (the
            flagged columns: NaN or Inf) and ``label`` (``row_records``).
        groups: ``group, start, end, shade`` per module group.
        rows: the number of rows.
        scale: ``log``, ``ratio`` or ``fraction``.
        legend: the colour legend's title.
        first, span: the step grid's first step and its number of steps (``StepBins``).
        columns: per column ``b`` its ``steps`` label (the snapshot, or the range of steps).
        present: the special states present (``0``, ``NaN/Inf``, or ``zero`` and ``flag``).
        values: every value on the colour scale (for a diverging scale's symmetric domain);
            none: no cell is on it, and there is no colour legend.
        width: the left gutter's width (the section's widest, so the step axes line up).
        value_title: the value's tooltip title (what a cell holds of its range).
        zero, flag: the names of a zero cell and of a flagged one on this chart.
        colours: their colours where they are not the standard kinds (``special.special_scale``).
        flat: tooltips of per-column fields of the records (lists like ``v``).
        row_title: the row's tooltip title.
    """
    px = row_px(rows)
    labelled = gutter(rows)[1]
    height = round(px * rows, 1)
    data = ds.add(records)
    w = f"{span} / {len(columns)}"
    fields = ["v", *(t.to_dict()["field"] for t in flat)]
    cells = alt.Chart(data).transform_flatten(fields, as_=["value", *fields[1:]]).transform_window(
        i="row_number()", groupby=["tensor"]).transform_calculate(b="datum.i - 1").transform_calculate(
        state=_state(scale, zero, flag), x0=f"{first} + datum.b * {w}", x1=f"{first} + (datum.b + 1) * {w}",
        row2="datum.row + 1").transform_filter('datum.state !== ""').transform_lookup(
        lookup="b", from_=alt.LookupData(data=ds.add(columns), key="b", fields=["steps"]))
    x = alt.X("x0:Q", title="step", scale=alt.Scale(domain=[first, first + span], nice=False, zero=False),
              axis=alt.Axis(labelFlush=True, tickCount=8, format="~s"))
    tips = [alt.Tooltip("tensor:N", title=row_title), alt.Tooltip("steps:N", title="steps"),
            alt.Tooltip("value:Q", format=".3g", title=value_title), *flat]
    enc = {"x": x, "x2": "x1:Q", "y": _y(rows), "y2": "row2:Q"}
    layers = gutter_layers(ds.add(groups), rows, px, width, labelled)
    if values:  # else no cell is on the scale (a self-diff is all zeros): no empty gradient legend
        layers.append(cells.transform_filter('datum.state === "v"').mark_rect(cursor="pointer").encode(
            color=alt.Color("value:Q", scale=colour_scale(scale, values), title=legend,
                            legend=alt.Legend(orient="right", gradientLength=min(200, max(80, height - 40)))),
            tooltip=tips, **enc))
    if present:
        layers.append(cells.transform_filter('datum.state !== "v"').mark_rect(cursor="pointer").encode(
            color=alt.Color("state:N", scale=special_scale(present, colours), title=None,
                            legend=special_legend(present)),
            tooltip=[*tips[:2], alt.Tooltip("state:N", title="cell"), *flat], **enc))
    if labelled:
        layers.append(row_labels(data, rows))
    layers.append(selected_row(data, rows, CELLS_WIDTH))
    return alt.layer(*layers).resolve_scale(color="independent").add_params(
        alt.param(name=SELECTED, value="")).properties(width=CELLS_WIDTH, height=height)


def profile_chart(ds: Datasets, panels: list[dict], groups: list[dict], names: list[str],
                  present: list[str]) -> alt.HConcatChart:
    """Small multiples of each signal per layer at the last snapshot, sharing the layer axis.

    Args:
        ds: the page's datasets.
        panels: per signal ``title``, ``scale`` and ``records`` (``tensor, row, step,
            value, state``: ``v``, ``0`` or ``NaN/Inf``).
        groups: the module groups of the shared axis.
        names: the shared axis's layers, in order.
        present: the special states present in any panel.
    """
    rows = len(names)
    px = row_px(rows)
    height = round(px * rows, 1)
    width = GROUP_WIDTH
    axis = ds.add([{"tensor": n, "row": i} for i, n in enumerate(names)])
    charts = []
    for n, p in enumerate(panels):
        base = alt.Chart(ds.add(p["records"])).transform_calculate(mid="datum.row + 0.5")
        y = _y(rows, "mid")
        log = p["scale"] != "fraction"
        if log:
            lo, hi, every = decade_span([r["value"] for r in p["records"] if r["state"] == "v"])
            xs = alt.Scale(type="log", domain=[10.0**lo, 10.0**hi], nice=False)
            ticks = alt.Axis(values=[10.0**e for e in range(lo, hi + 1)], format="~e", grid=True,
                             labelExpr=f"(round(log(datum.value) / LN10) - {lo}) % {every} === 0 ? datum.label : ''",
                             labelOverlap=False, labelFlush=True)
        else:
            xs = alt.Scale(domain=[0, 1])
            ticks = alt.Axis(tickCount=3, format="~%", labelSeparation=4, grid=True)
        x = alt.X("value:Q", title=None, scale=xs, axis=ticks)
        tips = [alt.Tooltip("tensor:N", title="layer"), alt.Tooltip("step:Q"),
                alt.Tooltip("value:Q", format=".3g")]
        vals = base.transform_filter('datum.state === "v"')
        layers = [] if n else gutter_layers(ds.add(groups), rows, px, width)
        layers += [vals.mark_circle(color=VALUE_COLOUR, size=14, opacity=0.9, cursor="pointer").encode(
                       x=x, y=y, tooltip=tips)]
        for state, at in ((ZERO, 0), (NONFINITE, PANEL_WIDTH)):
            if state in present:
                layers.append(base.transform_filter(f'datum.state === "{state}"').mark_square(
                    size=20, cursor="pointer").encode(
                    x=alt.XValue(at), y=y, color=alt.Color("state:N", scale=special_scale(present), title=None),
                    tooltip=[*tips[:2], alt.Tooltip("state:N", title="value")]))
        layers.append(selected_row(axis, rows, PANEL_WIDTH))
        charts.append(alt.layer(*layers).properties(
            width=PANEL_WIDTH, height=height, title=alt.TitleParams(p["title"], fontSize=11, limit=PANEL_WIDTH + 8)))
    # A few pixels right of the legend: Vega sizes the figure from the canvas's measure of its
    # labels, and Chromium's SVG drew "NaN/Inf" 2 px wider, past the figure's right edge.
    return alt.hconcat(*charts, spacing=10, padding={"left": 5, "top": 5, "bottom": 5, "right": 9}).resolve_scale(
        color="shared").add_params(alt.param(name=SELECTED, value=""))
