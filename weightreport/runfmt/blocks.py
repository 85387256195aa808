"""Rows buffered as columns, turned into Arrow once per flush rather than once per snapshot.

A snapshot's stats, histograms, trajectories and batchnorm rows are a few dozen columns.
Building an Arrow array costs a few microseconds per column whatever its length, and
right after a training step, with the caches cold, a snapshot's Arrow tables cost the
reference CNN's collector 0.9 ms of its 10 (0.2 ms when warm). A ``Block`` keeps each
column as the numpy array (or list of names) it was computed as; ``blocks_table`` joins the
blocks of one flush column by column and builds each Arrow array once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain

import numpy as np
import pyarrow as pa

Column = np.ndarray | Sequence
"""A column's values: a 1-D numpy array of numbers or booleans, a 2-D one for a list
column (one list of equal length per row), or a list of Python values (names)."""


class Block:
    """Rows of one table as columns.

    Args:
        columns: each column of the table's schema → its values, all of one length.
        nulls: column → a boolean array, True where the row's value is null (scalar columns
            only: a list column's rows are never null).
    """

    __slots__ = ("columns", "nulls", "rows")

    def __init__(self, columns: Mapping[str, Column], nulls: Mapping[str, np.ndarray] | None = None) -> None:
        self.columns = dict(columns)
        self.nulls = dict(nulls or {})
        self.rows = len(next(iter(self.columns.values()))) if self.columns else 0

    def __len__(self) -> int:
        return self.rows

    def table(self, schema: pa.Schema) -> pa.Table:
        """This block as an Arrow table of ``schema``."""
        return blocks_table([self], schema)


def blocks_table(blocks: Sequence[Block], schema: pa.Schema) -> pa.Table:
    """One Arrow table of ``schema`` from ``blocks``, in order: each column joined, then built once."""
    arrays = []
    for field in schema:
        parts = [b.columns[field.name] for b in blocks]
        mask = None
        if any(field.name in b.nulls for b in blocks):
            mask = np.concatenate([b.nulls.get(field.name, np.zeros(len(b), bool)) for b in blocks])
        arrays.append(_array(parts, field.type, mask))
    return pa.table(arrays, schema=schema)


def _array(parts: list[Column], kind: pa.DataType, mask: np.ndarray | None) -> pa.Array:
    if pa.types.is_list(kind):  # 2-D arrays: one list per row
        rows = np.concatenate(parts) if len(parts) > 1 else parts[0]
        width = rows.shape[1]
        offsets = pa.array(np.arange(0, rows.size + 1, width, dtype=np.int32))
        return pa.ListArray.from_arrays(offsets, pa.array(rows.reshape(-1), kind.value_type))
    if all(isinstance(p, np.ndarray) for p in parts):
        values = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return pa.array(values, kind, mask=mask)
    if mask is not None:
        return pa.array(list(chain.from_iterable(parts)), kind, mask=mask)
    # Names: every snapshot of a run repeats the same ones; each distinct run of them is built once.
    arrays: list[pa.Array] = []
    last = None
    for p in parts:
        if p is not last and p != last:
            last = p
            built = pa.array(p, kind)
        arrays.append(built)
    return pa.concat_arrays(arrays) if len(arrays) > 1 else arrays[0]
