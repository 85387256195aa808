"""A histogram's counts → the densities of its non-empty bin range (numpy only, no pandas).

Shared by the run report's histogram rows (``frames.hist_rows``) and the checkpoint page
(``inspect/model.py``), which loads no pandas.
"""

from __future__ import annotations

import numpy as np


def bin_density(edges, counts) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The ``left`` and ``right`` edges and the density of every bin from the first non-empty one to the last.

    Leading and trailing empty bins are trimmed; density is count / (total × width).
    None when there is nothing to draw: no counts, or edges that do not bound the bins.
    """
    edges = np.asarray(edges, dtype=float)
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    if total <= 0 or len(edges) != len(counts) + 1:
        return None
    nz = np.flatnonzero(counts)
    lo, hi = nz[0], nz[-1] + 1
    width = np.diff(edges)[lo:hi]
    return edges[lo:hi], edges[lo + 1 : hi + 1], counts[lo:hi] / (total * width)
