"""Buffered, atomic writing of a run directory: Parquet parts and the manifest.

Rows are buffered per table and written as one part per table at each flush. A
part is written under a temporary name and renamed, so every part that exists is
whole: a process killed at any moment loses only what was still buffered.

A flush can write in the background (``flush(..., background=True)``): the tables are
built and run.json encoded at once, and a short-lived thread writes the files, which
pyarrow does without the GIL, while training goes on. The next flush first waits for it
(``settle``) and raises its OSError, with the rows it could not write buffered again.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
from itertools import groupby
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from weightreport.errors import WeightReportError
from weightreport.runfmt.blocks import Block, blocks_table
from weightreport.runfmt.schema import MANIFEST, PART_GLOB, SCHEMAS, TABLES_DIR, part_name


def dump_json(obj: object, indent: int | None = 1) -> str:
    """Deterministic JSON: sorted keys, NaN and Inf written as null; ``indent=None``: on one
    line, by json's C encoder (indented output takes its Python one, several times slower).

    The object is encoded as it is first; only one that holds a NaN or Inf, or a key json
    cannot sort, is copied with those replaced (``_json_safe``). The copy had cost 3.7 of the
    5 ms of a 142-tensor model's manifest, written at every flush.
    """
    try:
        return json.dumps(obj, sort_keys=True, indent=indent, allow_nan=False)
    except (ValueError, TypeError):
        return json.dumps(_json_safe(obj), sort_keys=True, indent=indent, allow_nan=False)


def _json_safe(obj: object) -> object:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


MODES = ("error", "resume", "overwrite")
"""What ``Collector(mode=...)`` does with an existing run directory."""


def prepare_directory(path: Path, mode: str) -> bool:
    """Check that ``path`` can hold a new run (or, with mode "resume", holds one).

    Args:
        path: the run directory.
        mode: "error" (refuse an existing run), "resume" (continue it) or "overwrite"
            (delete an existing run and start afresh; a directory that holds no run is
            never deleted).

    Returns:
        True when an existing run is being resumed.

    Raises:
        WeightReportError: the path is unusable, or holds a run and mode is "error".
    """
    if mode not in MODES:
        msg = f'mode must be "error", "resume" or "overwrite", not {mode!r}'
        raise WeightReportError(msg)
    if path.exists() and not path.is_dir():
        msg = f"{path} is a file, not a directory; choose another run directory"
        raise WeightReportError(msg)
    existing = (path / MANIFEST).is_file()
    if existing and mode == "error":
        msg = (f"{path} already holds a run; pass mode='resume' to continue it, "
               "mode='overwrite' to replace it, or choose a new directory")
        raise WeightReportError(msg)
    if existing and mode == "overwrite":
        try:
            shutil.rmtree(path)
        except OSError as exc:
            msg = f"cannot delete the old run in {path}: {exc.strerror or exc}; delete it by hand"
            raise WeightReportError(msg) from None
        existing = False
    if not existing and path.is_dir() and any(path.iterdir()):
        msg = f"{path} is not empty and holds no run; choose an empty or new directory"
        raise WeightReportError(msg)
    try:
        (path / TABLES_DIR).mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        msg = f"cannot write to run directory {path}: {exc.strerror or exc}; check its permissions"
        raise WeightReportError(msg) from None
    return existing


class RunWriter:
    """Buffers table rows and writes them as Parquet parts.

    Args:
        path: the run directory (already prepared).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._rows: dict[str, list[dict]] = {name: [] for name in SCHEMAS}
        self._next_part = self._last_part() + 1
        self._pending: tuple[threading.Thread, _Write] | None = None  # a background write

    def _last_part(self) -> int:
        last = 0
        for table in SCHEMAS:
            for part in (self.path / TABLES_DIR / table).glob(PART_GLOB):
                try:
                    last = max(last, int(part.stem.split("-")[1]))
                except (IndexError, ValueError):
                    continue
        return last

    def add(self, table: str, rows: list[dict] | pa.Table | Block) -> None:
        """Buffer rows for ``table``: dicts keyed by column (missing columns are null), an
        Arrow table with the table's schema, or a ``Block`` of its columns (cheapest for
        many rows: its Arrow arrays are built once per flush)."""
        if isinstance(rows, (pa.Table, Block)):
            self._rows[table].append(rows)
        else:
            self._rows[table].extend(rows)

    @property
    def buffered(self) -> int:
        """Rows waiting to be written."""
        return sum(len(r) if isinstance(r, (pa.Table, Block)) else 1
                   for rows in self._rows.values() for r in rows)

    def flush(self, manifest: dict, final: bool = True, background: bool = False) -> None:
        """Write every buffered table as a new part, then the manifest.

        Args:
            manifest: run.json's content.
            final: whether this is the run's last flush, whose run.json is written indented,
                for people to read; a flush during training writes it on one line, which costs
                less than half as much (1.5 against 3.4 ms for a 142-tensor model's manifest).
            background: return once the tables are built and run.json encoded, and write the
                files on a thread; the next ``flush`` or ``settle`` waits for it and raises
                its error.

        Raises:
            OSError: a write failed (this one, or the background write before it); rows not
                yet written stay buffered, and the next flush writes them as parts of a
                fresh number.
        """
        self.settle()
        job = _Write(self.path, self._next_part, dump_json(manifest, indent=1 if final else None))
        self._next_part += 1  # a retry after a failure takes the next number, never this one
        for table, rows in self._rows.items():
            if rows:
                job.parts.append((table, _as_table(rows, SCHEMAS[table])))
                self._rows[table] = []
        if not background:
            try:
                job.run()
            finally:  # a KeyboardInterrupt mid-write leaves the rows buffered too
                self._settle(job)
            return
        thread = threading.Thread(target=job.run, name="weightreport-writer")
        self._pending = (thread, job)
        thread.start()

    def settle(self) -> None:
        """Wait for a background write; raise its error, with the rows it did not write buffered again.

        Raises:
            OSError: the background write failed.
        """
        if self._pending is None:
            return
        thread, job = self._pending
        self._pending = None
        thread.join()
        self._settle(job)

    def _settle(self, job: _Write) -> None:
        for table, data in job.parts[job.written:]:
            self._rows[table].insert(0, data)  # before anything buffered since, so rows stay in order
        if job.error is not None:
            raise job.error


class _Write:
    """One flush's files: its parts in order, then run.json. Run on the caller's thread or another;
    an error stops it, and ``written`` says how many parts were written before."""

    def __init__(self, path: Path, number: int, manifest: str) -> None:
        self.path, self.number, self.manifest = path, number, manifest
        self.parts: list[tuple[str, pa.Table]] = []
        self.written = 0
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            for table, data in self.parts:
                folder = self.path / TABLES_DIR / table
                folder.mkdir(parents=True, exist_ok=True)
                _write_part(data, folder / part_name(self.number), ENCODINGS[table])
                self.written += 1
            atomic_write_bytes(self.path / MANIFEST, self.manifest.encode())
        except Exception as exc:  # handed to the thread that settles this write
            self.error = exc


def _write_part(data: pa.Table, part: Path, encodings: dict[str, str]) -> None:
    tmp = part.with_name(f".{part.name}.tmp")
    try:
        # No dictionary pages: on a snapshot's parts they made files larger and
        # the write a third slower (the repeated names compress as well without).
        pq.write_table(data, tmp, compression="zstd", use_dictionary=False, column_encoding=encodings)
        os.replace(tmp, part)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _encodings(schema: pa.Schema) -> dict[str, str]:
    """Parquet encodings by leaf column: integers delta-packed, floats byte-stream-split.

    Steps, counts and histogram counts change little from one row to the next, and a float's
    bytes compress better grouped by position. On the parts of ten snapshots of a 142-tensor
    model the write took 14.6 against 18.7 ms, and the files 535 against 763 KB (the
    histograms' 73 against 223 KB). Both are standard Parquet encodings; pyarrow has read them
    since long before the version this package requires.
    """
    chosen: dict[str, str] = {}

    def visit(path: str, kind: pa.DataType) -> None:
        if pa.types.is_list(kind):
            visit(f"{path}.list.element", kind.value_type)
        elif pa.types.is_integer(kind):
            chosen[path] = "DELTA_BINARY_PACKED"
        elif pa.types.is_floating(kind):
            chosen[path] = "BYTE_STREAM_SPLIT"

    for column in schema:
        visit(column.name, column.type)
    return chosen


ENCODINGS = {table: _encodings(schema) for table, schema in SCHEMAS.items()}
"""Each table's Parquet encodings (``_encodings``)."""


def _as_table(rows: list, schema: pa.Schema) -> pa.Table:
    """One Arrow table from buffered dict rows, Arrow tables and blocks, in order (each run
    of dicts or of blocks built as one table)."""
    pieces = []
    for kind, run in groupby(rows, type):
        if kind is pa.Table:
            pieces.extend(run)
        elif kind is Block:
            pieces.append(blocks_table(list(run), schema))
        else:
            pieces.append(_from_dicts(list(run), schema))
    return pa.concat_tables(pieces)


def _from_dicts(dicts: list[dict], schema: pa.Schema) -> pa.Table:
    """An Arrow table from dict rows (a missing key is null), built column by column:
    about 25 % faster than ``Table.from_pylist`` on a snapshot's stats rows."""
    return pa.Table.from_pydict({name: [row.get(name) for row in dicts] for name in schema.names},
                                schema=schema)
