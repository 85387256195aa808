"""Small tensors described exactly on the host: numpy, or one compiled call repeating numpy's arithmetic.

``describe_array`` describes one float64 array in numpy: one sort gives the range,
the histogram (``grid.histogram_grid``), the percentiles (numpy's own interpolation)
and the threshold counts, each as a binary search; the moments are numpy's sums.
``describe_columns`` describes many consecutive pieces of one block as ``Columns``, the
all-finite ones in one call of ``kernels_describe.describe_small``, whose numbers equal
``describe_array``'s bit for bit (``tests/test_stats.py`` checks it); ``describe_arrays``
gives the same as one ``Description`` per piece.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import accumulate

import numpy as np

from weightreport.stats import kernels, kernels_describe
from weightreport.stats.columns import Columns
from weightreport.stats.fields import (
    QUANTILE_FRACTIONS,
    Description,
    Moments,
    empty_description,
    iqr_fences,
    norm_squared,
    sorted_percentiles,
    summary,
    summary_columns,
)
from weightreport.stats.grid import histogram_grid
from weightreport.stats.kernels_describe import (
    S_M3,
    S_M4,
    S_MAX,
    S_MEAN,
    S_MIN,
    S_OUT3,
    S_OUT6,
    S_OUTIQR,
    S_S1,
    S_S2,
    S_ZEROS,
    SMALL_FIELDS,
)

_sum = np.add.reduce
_QV_ARRAY = np.asarray(QUANTILE_FRACTIONS)


def describe_array(x: np.ndarray, bins: int = 64) -> Description:
    """Exact statistics and histogram of a 1-D float64 array, in numpy.

    Args:
        x: the values (NaN and ±Inf allowed).
        bins: histogram bins.
    """
    with np.errstate(all="ignore"):  # squares beyond float64's range become inf, not a warning
        return _describe_array(x, bins)


def describe_arrays(block: np.ndarray, sizes: Sequence[int], bins: int = 64) -> list[Description]:
    """``describe_array`` of each consecutive piece of ``block`` (``sizes`` long), bit for bit."""
    return describe_columns(block, sizes, bins).descriptions()


def describe_columns(block: np.ndarray, sizes: Sequence[int], bins: int = 64) -> Columns:
    """``describe_array`` of each consecutive piece of ``block`` (``sizes`` long), as columns, bit for bit.

    With numba, one compiled call describes every all-finite piece, repeating
    numpy's arithmetic (its pairwise sums included), and ``fields.summary_columns``
    derives their columns at once; numpy describes the rest one at a time.
    """
    if not kernels.AVAILABLE:
        starts = list(accumulate(sizes, initial=0))[:-1]
        return Columns.of([describe_array(block[a : a + n], bins) for a, n in zip(starts, sizes, strict=True)],
                          bins)
    sizes = np.asarray(sizes, np.int64)
    starts = np.zeros(sizes.size, np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    ordered = block.copy()
    for a, b in zip(starts.tolist(), (starts + sizes).tolist(), strict=True):
        ordered[a:b].sort()  # in place, numpy's SIMD sort; NaN sorts last
    rows, counts, done = kernels_describe.describe_small(block, ordered, starts, sizes, bins, _QV_ARRAY)
    out = Columns(sizes.size, bins)
    mine = np.flatnonzero(done)
    with np.errstate(all="ignore"):  # squares beyond float64's range become inf, not a warning
        if mine.size == sizes.size:
            _put_rows(out, slice(None), rows, counts, sizes)
        elif mine.size:
            _put_rows(out, mine, rows[mine], counts[mine], sizes[mine])
    for k in np.flatnonzero(~done).tolist():
        a = int(starts[k])
        out.put(k, describe_array(block[a : a + int(sizes[k])], bins))
    return out


_FIXED = SMALL_FIELDS + _QV_ARRAY.size


def _put_rows(out: Columns, at: np.ndarray | slice, rows: np.ndarray, counts: np.ndarray, n: np.ndarray) -> None:
    """Store rows of ``kernels_describe.describe_small`` (``SMALL_ROW``, quantiles, edges) at ``at``."""
    mean, s2 = rows[:, S_MEAN], rows[:, S_S2]
    moments = Moments(n, mean, s2 / n, rows[:, S_M3], rows[:, S_M4], norm_squared(n, mean, rows[:, S_S1], s2))
    stats = summary_columns(n, moments, rows[:, S_MIN], rows[:, S_MAX], rows[:, S_ZEROS],
                            rows[:, SMALL_FIELDS:_FIXED], (rows[:, S_OUT3], rows[:, S_OUT6], rows[:, S_OUTIQR]))
    for name, col in stats.items():
        out.stats[name][at] = col
    out.edges[at] = rows[:, _FIXED:]
    out.counts[at] = counts


def _describe_array(x: np.ndarray, bins: int) -> Description:
    finite = np.isfinite(x)
    all_finite = bool(finite.all())
    nan_count = 0 if all_finite else int(np.isnan(x).sum())
    f = x if all_finite else x[finite]
    inf_count = int(x.size - nan_count - f.size)
    if f.size == 0:
        return empty_description(x.size, nan_count, inf_count, bins)
    # One sort gives the range, the histogram, the percentiles and the counts
    # against fixed thresholds, each as a binary search.
    s = np.sort(f)
    n = s.size
    lo, hi = float(s[0]), float(s[-1])
    grid = histogram_grid(lo, hi, bins)
    edges = grid.edges
    qs = sorted_percentiles(s)
    fence_lo, fence_hi = iqr_fences(qs)
    # Values below each edge (the last is n), below the low fence and below 0; then
    # values up to the high fence and up to 0.
    at = np.searchsorted(s, [*edges, fence_lo, 0.0])
    below = at.tolist()
    upto_hi, upto_zero = np.searchsorted(s, [fence_hi, 0.0], side="right").tolist()
    counts = np.diff(at[: bins + 1]).tolist()
    # Sums as numpy.mean and numpy.var compute them (np.add.reduce, without the method
    # wrappers), so ties at k·std fall the same way; ufuncs, not np.dot: BLAS threads
    # would spin against torch's on the same cores.
    mean = float(_sum(f)) / n
    d = f - mean
    d2 = d * d
    s2 = float(_sum(d2))
    m2 = s2 / n
    s1 = float(_sum(d))
    m3, m4 = float(_sum(d2 * d)) / n, float(_sum(d2 * d2)) / n
    std = math.sqrt(m2)
    a = np.abs(d)
    outliers = (int(np.count_nonzero(a > 3 * std)), int(np.count_nonzero(a > 6 * std)),
                below[bins + 1] + n - upto_hi)
    moments = Moments(n, mean, m2, m3, m4, norm_squared(n, mean, s1, s2))
    stats = summary(x.size, nan_count, inf_count, moments, lo, hi, upto_zero - below[bins + 2], qs,
                    True, outliers)
    return Description(stats, edges, counts)


