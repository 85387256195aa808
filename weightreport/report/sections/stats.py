"""The statistics section: per parameter, each summary statistic at the first and last snapshot."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from weightreport.report.analysis.frames import first_last
from weightreport.report.analysis.run_tables import RunTables
from weightreport.report.analysis.sampling import model_order
from weightreport.report.sections.base import Section, SectionType

KEY, TITLE = "stats", "Statistics"
TABLE_STATS = ("mean", "var", "std", "skew", "kurtosis", "min", "max", "norm", "sparsity")


@dataclass
class StatsTable(Section):
    """Per tensor, first against last snapshot; ``rows`` are dicts keyed by column."""

    columns: list[str] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    first_step: int = 0
    last_step: int = 0


def stats_table(run, params: pd.DataFrame) -> StatsTable:
    """Per parameter, the summary statistics at the first and the last snapshot."""
    if params.empty:
        return StatsTable(key=KEY, title=TITLE, note="No parameter snapshots were recorded.")
    fl = first_last(params).assign(sparsity=lambda d: d["zeros"] / d["count"].where(d["count"] > 0))
    rows = []
    for tensor in model_order(fl["tensor"], run.manifest):
        sub = fl[fl["tensor"] == tensor].set_index("snapshot")
        row = {"tensor": tensor, "numel": int(sub["numel"].iloc[0])}
        for s in TABLE_STATS:
            row[f"{s}_first"] = float(sub.at["first", s])
            row[f"{s}_last"] = float(sub.at["last", s])
        rows.append(row)
    return StatsTable(key=KEY, title=TITLE, columns=list(TABLE_STATS), rows=rows,
                      first_step=int(fl["step"].min()), last_step=int(fl["step"].max()),
                      caption="Per parameter, each statistic at its first snapshot (top of a cell) "
                              "and its last (bottom). Sparsity is the fraction of exact zeros. "
                              "Click a column heading to sort.")


def build(t: RunTables) -> StatsTable:
    """The statistics table of ``t``'s parameters."""
    return stats_table(t.run, t.params)


SECTION = SectionType(KEY, TITLE, build)
