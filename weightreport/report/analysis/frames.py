"""DataFrame helpers shared by several section builders."""

from __future__ import annotations

import pandas as pd

from weightreport.report.analysis.density import bin_density
from weightreport.runfmt.schema import QUANTILES

PCTS = [f"p{q}" for q in QUANTILES]
"""The percentile columns of the stats table (``p1`` ... ``p99``)."""


def hist_rows(hist: pd.DataFrame, label_cols: list[str]) -> pd.DataFrame:
    """Histogram rows → one row per non-empty bin range: labels, left, right, density.

    Leading and trailing empty bins are trimmed; density is count / (total × width) (``bin_density``).
    """
    out = []
    for row in hist.itertuples(index=False):
        bins = bin_density(row.edges, row.counts)
        if bins is None:
            continue
        left, right, density = bins
        part = pd.DataFrame({"left": left, "right": right, "density": density})
        for c in label_cols:
            part[c] = getattr(row, c)
        out.append(part)
    cols = [*label_cols, "left", "right", "density"]
    return pd.concat(out, ignore_index=True)[cols] if out else pd.DataFrame(columns=cols)


def first_last(stats: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``stats`` at each tensor's first and last step, with a ``snapshot`` column."""
    g = stats.groupby("tensor")["step"]
    first = stats[stats["step"] == g.transform("min")].assign(snapshot="first")
    last = stats[stats["step"] == g.transform("max")].assign(snapshot="last")
    return pd.concat([first, last], ignore_index=True)
