"""A snapshot's ``stats`` and ``histograms`` tables, built as columns from its descriptions.

One row per described tensor, in the snapshot's order: its summary fields
(``stats.Columns``), its update ratio and distance from init (parameters), and its dead
or saturated units (activations that can have them). A tensor without a description
(a split tensor of an abandoned snapshot) has no row, nor has an activation that no
rank saw in this snapshot. Arrays all the way: no dict per tensor, so a snapshot of
hundreds of small tensors costs a few array operations, and the writer buffers the
columns (``runfmt.blocks``) rather than Python objects the garbage collector must walk,
and builds their Arrow arrays once per flush.
"""

from __future__ import annotations

import numpy as np

from weightreport.collect.units import count_units
from weightreport.runfmt.blocks import Block
from weightreport.stats.columns import Columns

_WEIGHTS = ("param", "grad")
"""Kinds that have a row even when they hold no values."""


def stats_tables(step: int, entries, columns: Columns, values: dict, units: dict,
                 missing: np.ndarray | None = None) -> dict[str, Block]:
    """The ``stats`` and ``histograms`` rows of one snapshot, as blocks ({} when no tensor has a row).

    Args:
        step: the step written into every row.
        entries: (name, kind, piece, sharded, numel) of every tensor, in order.
        columns: their descriptions, in the same order.
        values: the snapshot's host values by (what, name): ``("norms", name)``, the three
            squares of a parameter (``SnapshotTaker._norms``); ``("units", name)``, an
            activation's per-unit signal; ``("numel", "kind:name")``, an activation's size
            summed over ranks.
        units: module → (mode, reach) of the activations whose units are counted.
        missing: True where a tensor has no description (its row is left out).
    """
    k = len(entries)
    names = [e[0] for e in entries]
    kinds = [e[1] for e in entries]
    numel = np.array([e[4] for e in entries], np.int64)
    if "numel" in (what for what, _ in values):  # under torch.distributed: activation sizes summed over ranks
        numel = np.array([_numel(e, values) for e in entries], np.int64)
    keep = np.array([kind in _WEIGHTS for kind in kinds], bool) | (columns.stats["count"] > 0)
    if missing is not None:
        keep &= ~missing
    at = np.flatnonzero(keep)
    if not at.size:
        return {}
    ratio, ratio_null = np.full(k, np.nan), np.ones(k, bool)
    dist0, dist0_null = np.full(k, np.nan), np.ones(k, bool)
    params = [i for i, kind in enumerate(kinds) if kind == "param"]
    if params:  # np.sqrt and math.sqrt both round correctly; squares are >= 0 or NaN
        diff, prev, dist = np.sqrt(np.array([values[("norms", names[i])] for i in params])).T
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio[params] = diff / prev
        ratio_null[params] = np.isnan(diff) | (prev == 0)
        dist0[params] = dist
        dist0_null[params] = np.isnan(dist)
    counted = np.zeros((3, k), np.int64)
    counted_null = np.ones((3, k), bool)
    for i, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        if kind == "activation" and ("units", name) in values:
            mode, reach = units[name]
            for j, n in enumerate(count_units(mode, values[("units", name)], reach)):
                if n is not None:
                    counted[j, i], counted_null[j, i] = n, False
    every = at.size == k
    if every:
        at = slice(None)
    tensor = names if every else [names[i] for i in at.tolist()]
    kind = kinds if every else [kinds[i] for i in at.tolist()]
    steps = np.full(len(tensor), step, np.int64)
    stats = {"step": steps, "tensor": tensor, "kind": kind,
             **{name: col[at] for name, col in columns.stats.items()},
             "numel": numel[at], "update_ratio": ratio[at], "dist_from_init": dist0[at]}
    nulls = {"update_ratio": ratio_null[at], "dist_from_init": dist0_null[at]}
    for j, column in enumerate(("units", "dead_units", "saturated_units")):
        stats[column], nulls[column] = counted[j, at], counted_null[j, at]
    histograms = {"step": steps, "tensor": tensor, "kind": kind,
                  "edges": columns.edges[at], "counts": columns.counts[at]}
    return {"stats": Block(stats, nulls), "histograms": Block(histograms)}


def _numel(entry, values: dict) -> int:
    """The tensor's size: an activation's summed over ranks where they were summed."""
    name, kind, _piece, _sharded, numel = entry
    summed = values.get(("numel", f"{kind}:{name}"))
    return numel if summed is None else int(summed[0])
