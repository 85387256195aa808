"""DataFrame helpers shared by several section builders (and by ``inspect``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from weightreport.runfmt.schema import QUANTILES

PCTS = [f"p{q}" for q in QUANTILES]
"""The percentile columns of the stats table (``p1`` ... ``p99``)."""


def hist_rows(hist: pd.DataFrame, label_cols: list[str]) -> pd.DataFrame:
    """Histogram rows → one row per non-empty bin range: labels, left, right, density.

    Leading and trailing empty bins are trimmed; density is count / (total × width).
    """
    out = []
    for row in hist.itertuples(index=False):
        edges = np.asarray(row.edges, dtype=float)
        counts = np.asarray(row.counts, dtype=float)
        total = counts.sum()
        if total <= 0 or len(edges) != len(counts) + 1:
            continue
        nz = np.flatnonzero(counts)
        lo, hi = nz[0], nz[-1] + 1
        width = np.diff(edges)[lo:hi]
        part = pd.DataFrame({"left": edges[lo:hi], "right": edges[lo + 1 : hi + 1],
                             "density": counts[lo:hi] / (total * width)})
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
