"""``RunTables``: what the section builders read from a run, each table read once, when first asked.

Reading is bounded as ``sampling`` documents: the stats and trajectories tables at no
more than ``sampling.MAX_LAYER_POINTS`` snapshots (plus every stats row with NaN or
Inf), histograms at each tensor's first and last snapshot, the per-snapshot probe and
BatchNorm tables at their last snapshot, and the small tables whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import pandas as pd

from weightreport.report.analysis.findings import FINDING_BN_COLUMNS, Finding, find_all
from weightreport.report.analysis.sampling import late_steps, model_order, read_stats, sampled_steps
from weightreport.report.analysis.thresholds import Thresholds

BN_KINDS = ("bn_input", "bn_output")


class RunTables:
    """A run's tables for the section builders, read lazily and cached.

    Args:
        run: a ``Run`` (from ``load_run``).
        thresholds: the findings' thresholds (the defaults when None).
        stats_columns: the stats columns to read (all when None).
    """

    def __init__(self, run, thresholds: Thresholds | None = None,
                 stats_columns: Sequence[str] | None = None) -> None:
        self.run = run
        self.thresholds = thresholds
        self._stats_columns = stats_columns

    @cached_property
    def stats(self) -> pd.DataFrame:
        """The stats table at the sampled snapshots, plus every row with NaN or Inf."""
        return read_stats(self.run, columns=self._stats_columns)

    @cached_property
    def steps(self) -> list[int]:
        """The snapshot steps present in ``stats``."""
        return sampled_steps(self.stats)

    @cached_property
    def scalars(self) -> pd.DataFrame:
        """The scalars table."""
        return self.run.table("scalars")

    @cached_property
    def trajectories(self) -> pd.DataFrame:
        """The single-weight trajectories at the sampled snapshots."""
        return self.run.table("trajectories", steps=self.steps)

    def kind(self, *kinds: str) -> pd.DataFrame:
        """The ``stats`` rows of the given kinds (``param``, ``grad``, ``activation``, ...)."""
        return self.stats[self.stats["kind"].isin(list(kinds))]

    @cached_property
    def params(self) -> pd.DataFrame:
        """The ``stats`` rows of parameters."""
        return self.kind("param")

    @cached_property
    def histograms(self) -> pd.DataFrame:
        """Histogram rows at each param's first and last step and each BN tensor's last step."""
        p = self.params
        b = self.kind(*BN_KINDS)
        wanted = pd.concat([
            p[p["step"] == p.groupby("tensor")["step"].transform("min")],
            p[p["step"] == p.groupby("tensor")["step"].transform("max")],
            b[b["step"] == b.groupby(["tensor", "kind"])["step"].transform("max")],
        ])[["step", "tensor", "kind"]].drop_duplicates()
        if wanted.empty:
            return self.run.table("histograms", steps=[])
        hist = self.run.table("histograms", steps=wanted["step"].unique().tolist())
        return hist.merge(wanted, on=["step", "tensor", "kind"]).drop_duplicates(["step", "tensor", "kind"])

    def last(self, table: str, kinds: Sequence[str] = ()) -> pd.DataFrame:
        """Rows of a per-snapshot table at the last snapshot only (these tables grow large).

        The last snapshot is found from the stats table (of ``kinds`` when given); when no
        row is there, the whole table is read.
        """
        sel = self.stats[self.stats["kind"].isin(list(kinds))] if kinds else self.stats
        if not sel.empty:
            df = self.run.table(table, steps=[int(sel["step"].max())])
            if not df.empty:
                return df
        return self.run.table(table)

    @cached_property
    def order(self) -> list[str]:
        """The recorded tensors in model order."""
        return model_order(self.stats["tensor"], self.run.manifest)

    @cached_property
    def findings(self) -> list[Finding]:
        """The health findings of the run (BatchNorm read at the last quarter of the sampled snapshots)."""
        batchnorm = self.run.table("batchnorm", columns=FINDING_BN_COLUMNS, steps=late_steps(self.steps))
        return find_all(self.stats, self.scalars, batchnorm, self.thresholds, self.order, self.run)
