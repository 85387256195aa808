"""The diff's distances on a bounded layer × step grid, as the run report's glance bounds its heatmaps.

Rows are the shared tensors in model order. A model with more than ``MAX_HEATMAP_ROWS`` of
them gets one row per run of consecutive tensors (``layer_grid.row_blocks``: a module
where it can be, else an equal chunk), and such a row's cell holds the largest W1 among its
tensors, never their mean, so that one layer far from its counterpart stays as bright as
it is; the cell names the tensor it came from. Columns are the glance's ``StepBins`` over
the compared steps: at most ``MAX_HEATMAP_STEPS`` equal step ranges, a cell holding the
largest W1 in its range. A cell none of whose distances could be taken (a histogram
missing on one side) is flagged as not comparable. So a chart holds at most
``MAX_HEATMAP_ROWS`` × ``MAX_HEATMAP_STEPS`` cells, whatever the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from weightreport.report.analysis import layer_grid as lg

MAX_HEATMAP_STEPS = 24
"""Step columns of the distance heatmap (equal step ranges over the compared steps)."""
MAX_HEATMAP_ROWS = 240
"""Rows of the distance heatmap: at the glance's 520 px, rows of at least 2 px."""


@dataclass
class DistanceGrid:
    """The distance heatmap's cells.

    Attributes:
        rows: the row names in model order: a tensor's, or a run of tensors' (its module or
            its first and last tensor).
        members: per row, its tensors.
        bins: the step columns.
        columns: per column ``b`` its ``steps`` label (``layer_grid.column_labels``).
        cells: ``tensor`` (the row's name), ``bin, value`` (the largest W1), ``bad`` (no
            distance could be taken) and ``at`` (the tensor of the largest W1).
        tensors: how many shared tensors the rows hold.
    """

    rows: list[str]
    members: list[list[str]]
    bins: lg.StepBins
    columns: list[dict]
    cells: pd.DataFrame
    tensors: int

    @property
    def aggregated(self) -> bool:
        """True when some row holds more than one tensor (and its cells their maximum)."""
        return len(self.rows) < self.tensors


def distance_grid(shared: list[str], distances: pd.DataFrame) -> DistanceGrid | None:
    """The grid of ``RunDiff.distances`` (``tensor, step, w1``) over ``shared`` (model order); None when empty."""
    d = distances[distances["tensor"].isin(set(shared))]
    if d.empty:
        return None
    names = [t for t in shared if t in set(d["tensor"])]
    blocks = lg.row_blocks(names, set(names), MAX_HEATMAP_ROWS)
    members = [names[b.start:b.end] for b in blocks]
    rows = _unique([m[0] if len(m) == 1 else (b.label or f"{m[0]} … {m[-1]}") for b, m in zip(blocks, members,
                                                                                              strict=True)])
    row_of = {t: r for r, m in zip(rows, members, strict=True) for t in m}
    w1 = d["w1"].to_numpy(dtype=float)
    signal = pd.DataFrame({"tensor": d["tensor"].map(row_of).to_numpy(), "step": d["step"].to_numpy(np.int64),
                           "value": w1, "bad": ~np.isfinite(w1), "at": d["tensor"].to_numpy()})
    bins = lg.step_bins(signal["step"], rows=len(rows), limit=MAX_HEATMAP_STEPS)
    cells = lg.grid(signal, bins, reduce="max", keep=("at",))
    cells["bad"] = cells["bad"].astype(bool) & cells["value"].isna()  # flagged only when nothing was comparable
    return DistanceGrid(rows=rows, members=members, bins=bins, columns=lg.column_labels(bins, signal["step"]),
                        cells=cells, tensors=len(names))


def _unique(names: list[str]) -> list[str]:
    """``names`` with a repeated one numbered (a module whose tensors are not consecutive in model order)."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n} ({seen[n]})")
    return out
