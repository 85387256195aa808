"""The weight-heatmaps section: 2-D weights and conv kernels arranged in 2-D, pooled to ≤ 64 × 64.

Format version 1 keeps no raw weights. This section reads, in order of preference:
1. the ``heatmaps`` table (``step, tensor, rows, cols, values``: each matrix arranged by
   ``matrices.arrange_2d`` and mean-pooled by ``matrices.pool``, recorded by the
   collector at the first and the last snapshot);
2. otherwise (runs written before the table existed) ``init.pt``, the weights at step 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import altair as alt

from weightreport.report.analysis.run_tables import RunTables
from weightreport.report.analysis.sampling import model_order
from weightreport.report.charts.common import (
    HEATMAP_DIGITS,
    Chart,
    Datasets,
    layer_param,
    make,
    nums,
)
from weightreport.report.charts.figures import matrix_transforms
from weightreport.report.sections.base import Section, SectionType
from weightreport.runfmt.matrices import MAX_CELLS, arrange_2d, pool
from weightreport.runfmt.schema import INIT_WEIGHTS, TABLES_DIR

KEY, TITLE = "heatmaps", "Weight heatmaps"
MAX_HEATMAP_LAYERS = 64
HEATMAPS_TABLE = "heatmaps"
CELL = 5
TITLE_CHAR_PX = 7
"""An upper bound on the width of one character of a column title at 11 px."""
DIVERGING = alt.Scale(scheme="blueorange", domainMid=0)


@dataclass
class Heatmap:
    """One 2-D weight matrix, pooled to at most 64 × 64, at one step."""

    tensor: str
    step: int
    rows: int
    cols: int
    values: list[float]


@dataclass
class Heatmaps(Section):
    """2-D weights and conv kernels as heatmaps, first and last snapshot when recorded."""

    maps: list[Heatmap] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)


def _from_table(run) -> list[Heatmap]:
    df = run.table(HEATMAPS_TABLE)
    maps = []
    for row in df.itertuples(index=False):
        maps.append(Heatmap(str(row.tensor), int(row.step), int(row.rows), int(row.cols),
                            [float(v) for v in row.values]))
    return maps


def _from_init(run) -> list[Heatmap]:
    file = run.path / INIT_WEIGHTS
    if not file.is_file():
        return []
    try:
        import torch

        init = torch.load(file, map_location="cpu", weights_only=True)
    except Exception:  # a damaged init.pt only costs this section
        return []
    maps = []
    for name, tensor in sorted(init.items()):
        m = arrange_2d(tensor.float().numpy())
        if m is None:
            continue
        p = pool(m)
        maps.append(Heatmap(str(name), 0, p.shape[0], p.shape[1], p.ravel().tolist()))
    return maps


def heatmaps(run) -> Heatmaps:
    """The heatmaps section, from the ``heatmaps`` table or else from ``init.pt``."""
    source = "table"
    has_table = (run.path / TABLES_DIR / HEATMAPS_TABLE).is_dir()
    maps = _from_table(run) if has_table else []
    if not maps:
        maps, source = _from_init(run), "init"
    if not maps:
        return Heatmaps(key=KEY, title=TITLE,
                        note="This run holds no 2-D weights to draw: run format 1 keeps no raw "
                             "weights, and there is no init.pt with 2-D parameters.")
    layers = model_order({m.tensor for m in maps}, run.manifest)[:MAX_HEATMAP_LAYERS]
    keep = set(layers)
    maps = sorted((m for m in maps if m.tensor in keep), key=lambda m: (layers.index(m.tensor), m.step))
    what = ("at the first and last snapshot" if source == "table"
            else "at step 0 only (from init.pt: this run format records no later raw weights)")
    return Heatmaps(key=KEY, title=TITLE, maps=maps, layers=layers,
                    caption=f"2-D weights (out × in) and conv kernels tiled as (out·kh) × (in·kw), "
                            f"mean-pooled to at most {MAX_CELLS} × {MAX_CELLS} cells, {what}. "
                            f"Colour is centred on 0.")


def build(t: RunTables) -> Heatmaps:
    """The heatmaps of ``t``'s run."""
    return heatmaps(t.run)


def heatmap_charts(section: Heatmaps, ds: Datasets) -> list[Chart]:
    """First and last 2-D weights of the selected layer, side by side."""
    recs = [{"tensor": m.tensor, "key": f"{m.tensor}@{m.step}", "snapshot": f"step {m.step}", "step": m.step,
             "rows": m.rows, "cols": m.cols, "values": nums(m.values, HEATMAP_DIGITS)} for m in section.maps]
    base = alt.Chart(ds.add(recs)).transform_filter("datum.tensor === layer")
    # A narrow matrix (a 24 × 3 conv stack is 15 pixels wide) is narrower than its title:
    # titles start at their column's left edge and the gap between columns holds the
    # longest, so "step 0" and "step 345" never run together.
    longest = max((len(r["snapshot"]) for r in recs), default=0)
    # Band scales with a fixed step keep each matrix's aspect ratio (a 48 × 3 conv stack
    # is drawn tall and thin, not stretched square); 64 cells make 320 pixels.
    chart = matrix_transforms(base).mark_rect().encode(
        x=alt.X("col:O", title=None, axis=None), y=alt.Y("row:O", title=None, axis=None),
        color=alt.Color("value:Q", scale=DIVERGING, title=None),
        tooltip=[alt.Tooltip("snapshot:N"), alt.Tooltip("row:Q"), alt.Tooltip("col:Q"),
                 alt.Tooltip("value:Q", format=".3g")],
        column=alt.Column("snapshot:N", title=None, sort=alt.SortField("step"),
                          header=alt.Header(labelAnchor="start", labelAlign="left", labelFontSize=11),
                          spacing=max(20, TITLE_CHAR_PX * longest + 12)),
    ).add_params(layer_param(section.layers)).properties(
        width=alt.Step(CELL), height=alt.Step(CELL))
    return [make("Heatmap", chart, ds, layered=True, wide=True)]


SECTION = SectionType(KEY, TITLE, build, heatmap_charts)
