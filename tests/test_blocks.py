"""Rows buffered as numpy columns (``runfmt.blocks``) become the same Arrow rows as dicts would."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from weightreport.runfmt.blocks import Block
from weightreport.runfmt.writer import _as_table

SCHEMA = pa.schema([("step", pa.int64()), ("tensor", pa.string()), ("value", pa.float64()),
                    ("counts", pa.list_(pa.int64()))])


def _block(step: int, names: list[str], values: list[float], nulls: list[bool]) -> Block:
    return Block({"step": np.full(len(names), step, np.int64), "tensor": names,
                  "value": np.array(values), "counts": np.arange(2 * len(names)).reshape(-1, 2) + step},
                 {"value": np.array(nulls)})


def test_blocks_dicts_and_tables_keep_their_order_and_nulls():
    """Runs of blocks (names that repeat and names that change), dict rows and an Arrow table, in buffer order."""
    rows = [_block(1, ["a", "b"], [1.0, 2.0], [False, True]), _block(2, ["a", "b"], [3.0, 4.0], [False, False]),
            _block(3, ["c"], [5.0], [True]),
            {"step": 4, "tensor": "d", "value": 6.0, "counts": [7, 8]},
            pa.table({"step": [5], "tensor": ["e"], "value": [None], "counts": [[9]]}, schema=SCHEMA),
            _block(6, ["a"], [7.0], [False])]
    got = _as_table(rows, SCHEMA).to_pylist()
    assert [(r["step"], r["tensor"], r["value"], r["counts"]) for r in got] == [
        (1, "a", 1.0, [1, 2]), (1, "b", None, [3, 4]), (2, "a", 3.0, [2, 3]), (2, "b", 4.0, [4, 5]),
        (3, "c", None, [3, 4]), (4, "d", 6.0, [7, 8]), (5, "e", None, [9]), (6, "a", 7.0, [6, 7])]


def test_a_block_alone_is_a_table_of_its_schema():
    table = _block(9, ["w"], [np.nan], [False]).table(SCHEMA)
    assert table.schema == SCHEMA and table.num_rows == 1
    assert np.isnan(table.column("value")[0].as_py())  # NaN is a value; only a null mask makes a null
