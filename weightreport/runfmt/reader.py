"""Reading a run directory: ``load_run`` → ``Run``.

Reading is tolerant: a part that is truncated or corrupt is skipped with a warning
that names it, and the rest loads. Tables load when first used, and
``Run.table(name, columns=...)`` reads only the columns asked for.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from weightreport.errors import WeightReportError
from weightreport.runfmt.schema import (
    FORMAT_VERSION,
    MANIFEST,
    PART_GLOB,
    SCHEMAS,
    TABLES_DIR,
    part_name,
)


class CorruptPartWarning(UserWarning):
    """A part of a run directory could not be read and was skipped."""


class Run:
    """A run directory, read-only.

    Attributes:
        path: the run directory.
        manifest: the contents of run.json.
        tables: table name → pandas DataFrame, loaded on first access.
    """

    def __init__(self, path: Path, manifest: dict) -> None:
        self.path = path
        self.manifest = manifest
        self.tables: Mapping[str, pd.DataFrame] = _LazyTables(self)
        self._steps: np.ndarray | None = None
        self._problems: list[str] | None = None

    @property
    def name(self) -> str:
        """The run's name (from the manifest, else the directory name)."""
        return str(self.manifest.get("name") or self.path.name)

    def parts(self, table: str) -> list[Path]:
        """The part files of ``table``, in write order."""
        return sorted((self.path / TABLES_DIR / table).glob(PART_GLOB))

    def table(self, name: str, columns: Sequence[str] | None = None, steps: Sequence[int] | None = None,
              filters: list | None = None) -> pd.DataFrame:
        """Read ``name``, optionally only some ``columns`` and rows; bad parts are skipped with a warning.

        This is the one reader of parts: every consumer (the report, diff, summary and
        check) reads tables through it.

        Args:
            name: a table of the format (see ``schema.SCHEMAS``).
            columns: the columns to read (all when None).
            steps: keep only rows at these steps (pushed down to Parquet).
            filters: other row filters in pyarrow's DNF form (pushed down to Parquet).
        """
        if name not in SCHEMAS:
            msg = f"no table {name!r} in the run format; the tables are {', '.join(SCHEMAS)}"
            raise WeightReportError(msg)
        schema = SCHEMAS[name]
        if columns is not None:
            schema = pa.schema([schema.field(c) for c in columns])
        if steps is not None:
            filters = [("step", "in", sorted({int(s) for s in steps}))]
        pieces = []
        for part in self.parts(name):
            try:
                pieces.append(pq.read_table(part, columns=list(schema.names), schema=schema, filters=filters))
            except Exception as exc:  # any unreadable part is skipped, never fatal
                warnings.warn(
                    f"skipping unreadable part {part}: {type(exc).__name__}: {exc}",
                    CorruptPartWarning,
                    stacklevel=2,
                )
        table = pa.concat_tables(pieces) if pieces else schema.empty_table()
        return table.to_pandas()

    def problems(self) -> list[str]:
        """What is missing or unreadable in the run directory, one sentence each (empty when whole).

        Checks that every part's footer reads, that the stats and histograms tables
        (written together at every flush that holds a snapshot) have the same parts, and
        that the stats hold as many snapshots as run.json counts (a distributed run's last
        may lag one behind, see docs/format.md). Reads footers and the step column only,
        once: the answer is kept, as the tables are.
        """
        if self._problems is not None:
            return list(self._problems)
        found = []
        numbers: dict[str, set[int]] = {}
        for table in ("stats", "histograms"):
            numbers[table] = set()
            for part in self.parts(table):
                try:
                    pq.read_metadata(part)
                except Exception as exc:  # a truncated or corrupt footer
                    found.append(f"{part.relative_to(self.path)} is unreadable ({type(exc).__name__})")
                numbers[table].add(int(part.stem.split("-")[1]))
        for table, other in (("stats", "histograms"), ("histograms", "stats")):
            for n in sorted(numbers[other] - numbers[table]):
                found.append(f"{TABLES_DIR}/{table}/{part_name(n)} is missing ({other} has part {n})")
        expected = int(self.manifest.get("snapshots", 0) or 0)
        held = len(self.snapshot_steps())
        lag = 1 if (self.manifest.get("environment") or {}).get("world_size", 1) not in (1, None) else 0
        if expected and held < expected - lag:
            found.append(f"the stats hold {held} of the {expected} snapshots run.json counts")
        dropped = int(self.manifest.get("dropped_snapshots", 0) or 0)
        if dropped:
            found.append(f"{dropped} snapshot(s) were dropped while the run directory could not be written")
        if self.manifest.get("collector_error"):
            found.append(f"the collector stopped recording: {self.manifest['collector_error']}")
        self._problems = found
        return list(found)

    def snapshot_steps(self) -> np.ndarray:
        """Every step at which the stats table has rows, reading one part's steps at a time.

        Unreadable parts are skipped here without a warning; reading their rows warns.
        Read once, then kept (the sampled read and the integrity check both need it).
        """
        if self._steps is not None:
            return self._steps
        seen: set[int] = set()
        for part in self.parts("stats"):
            try:
                steps = pq.read_table(part, columns=["step"]).column("step").to_numpy()
            except Exception:  # unreadable parts are reported when the rows are read
                continue
            seen.update(np.unique(steps).tolist())
        self._steps = np.array(sorted(seen), dtype=np.int64)
        return self._steps


class _LazyTables(Mapping):
    """Every table of the format, each read on first access and then kept."""

    def __init__(self, run: Run) -> None:
        self._run = run
        self._cache: dict[str, pd.DataFrame] = {}

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in SCHEMAS:
            raise KeyError(name)
        if name not in self._cache:
            self._cache[name] = self._run.table(name)
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(SCHEMAS)

    def __len__(self) -> int:
        return len(SCHEMAS)


def read_manifest(path: Path) -> dict:
    """Read and check run.json in ``path``.

    Raises:
        WeightReportError: the path is missing, is not a run, or is from a newer version.
    """
    if not path.exists():
        msg = f"{path}: no such run directory; pass a directory written by weightreport.Collector"
        raise WeightReportError(msg)
    file = path / MANIFEST
    if not path.is_dir() or not file.is_file():
        msg = f"{path} is not a weightreport run (no {MANIFEST}); pass a directory written by weightreport.Collector"
        raise WeightReportError(msg)
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"{file} is unreadable ({type(exc).__name__}: {exc}); the run's manifest is damaged"
        raise WeightReportError(msg) from None
    if not isinstance(manifest, dict):
        msg = f"{file} is not a weightreport manifest (expected a JSON object)"
        raise WeightReportError(msg)
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        msg = (f"{path} uses run format {version!r}, and this weightreport reads up to "
               f"{FORMAT_VERSION}; upgrade weightreport")
        raise WeightReportError(msg)
    return manifest


def load_run(path: str | Path) -> Run:
    """Open a run directory written by ``Collector``.

    Args:
        path: the run directory.

    Returns:
        A ``Run`` whose tables load on first access.

    Raises:
        WeightReportError: the path is missing or is not a run.
    """
    path = Path(path)
    return Run(path, read_manifest(path))
