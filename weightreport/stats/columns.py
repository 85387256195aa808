"""Descriptions of many tensors kept as columns: one array per summary field.

A snapshot of a model with hundreds of small tensors would otherwise build a dict of
thirty fields and two lists per tensor, and the run's writer would turn them back
into columns. ``Columns`` holds what ``fields.Description`` holds, for ``k`` tensors at
once: each field of ``fields.SUMMARY`` as a ``(k,)`` array of its kind (int64, float64
or bool), the edges as a ``(k, bins + 1)`` array and the counts as ``(k, bins)`` int64.
``exact.describe_columns`` fills one in a few array operations; tensors described one
at a time (the large ones, or those with NaN and Inf) are put in by position.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from weightreport.stats.fields import SUMMARY, Description

_DTYPES = {int: np.int64, float: np.float64, bool: np.bool_}


class Columns:
    """``k`` descriptions with ``bins`` histogram bins, as columns.

    Args:
        k: the number of tensors.
        bins: histogram bins.

    Attributes:
        stats: each summary field's name (``fields.NAMES``, in order) → a ``(k,)`` array,
            each field's ``empty`` value until a description is put in.
        edges: the histograms' edges, ``(k, bins + 1)`` float64.
        counts: the histograms' counts, ``(k, bins)`` int64.
    """

    def __init__(self, k: int, bins: int) -> None:
        self.stats = {f.name: np.full(k, f.empty, _DTYPES[f.kind]) for f in SUMMARY}
        self.edges = np.zeros((k, bins + 1))
        self.counts = np.zeros((k, bins), np.int64)

    def __len__(self) -> int:
        return len(self.counts)

    @classmethod
    def of(cls, descriptions: Sequence[Description], bins: int) -> Columns:
        """Columns holding ``descriptions``, in order."""
        out = cls(len(descriptions), bins)
        for i, d in enumerate(descriptions):
            out.put(i, d)
        return out

    def put(self, i: int, d: Description) -> None:
        """Store ``d`` as the ``i``-th description."""
        for name, value in d.stats.items():
            self.stats[name][i] = value
        self.edges[i] = d.edges
        self.counts[i] = d.counts

    def take(self, at: Sequence[int], other: Columns) -> None:
        """Store ``other``'s descriptions at positions ``at`` (one per description of ``other``)."""
        if not len(at):
            return
        at = np.asarray(at, np.int64)
        for name, col in other.stats.items():
            self.stats[name][at] = col
        self.edges[at] = other.edges
        self.counts[at] = other.counts

    def description(self, i: int) -> Description:
        """The ``i``-th description, with Python numbers (as every backend gives them)."""
        return Description({name: col[i].item() for name, col in self.stats.items()},
                           self.edges[i].tolist(), self.counts[i].tolist())

    def descriptions(self) -> list[Description]:
        """Every description, in order (``description`` of each, converted column by column)."""
        names = list(self.stats)
        rows = zip(*(col.tolist() for col in self.stats.values()), strict=True)
        return [Description(dict(zip(names, row, strict=True)), edges, counts)
                for row, edges, counts in zip(rows, self.edges.tolist(), self.counts.tolist(), strict=True)]
