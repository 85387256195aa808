"""Small tensors described exactly on the host: numpy, or one compiled call repeating numpy's arithmetic.

``describe_array`` describes one float64 array in numpy: one sort gives the range,
the histogram (``grid.histogram_grid``), the percentiles (numpy's own interpolation)
and the threshold counts, each as a binary search; the moments are numpy's sums.
``describe_columns`` describes many consecutive pieces of one block as ``Columns``, the
all-finite ones with ``kernels_describe.describe_small``, whose numbers equal
``describe_array``'s bit for bit (``tests/test_stats.py`` checks it); ``describe_arrays``
gives the same as one ``Description`` per piece. ``SortedPieces`` is ``describe_columns``
in two halves, so that the kernels' helper thread describes the pieces while the caller
goes on (a snapshot of many small tensors, ``stats.Batch``).
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Sequence
from itertools import accumulate, pairwise

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
    S_KURTOSIS,
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
    S_SKEW,
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

    With numba, compiled calls describe every all-finite piece, repeating numpy's
    arithmetic (its pairwise sums included), and ``fields.summary_columns`` derives
    their columns at once; numpy describes the rest one at a time.
    """
    return SortedPieces(block, sizes, bins).columns()


class SortedPieces:
    """``describe_columns`` in two halves, so that the helper thread can describe while the caller goes on.

    The pieces are sorted with numpy's SIMD sort (numba's is some ten times slower), those of
    one size together, as the rows of one 2-D array: one call, which releases the GIL while it
    sorts (a Python loop of 1-D sorts took it back between pieces, so that two threads sorting
    were slower than one). So each piece is copied to ``ordered`` grouped by size, and the
    pieces are split into units of about equal values, consecutive in that order. A unit is
    gathered (``kernels_describe.gather_pieces``), its rows sorted, and its pieces described
    (``kernels_describe.describe_small``); none of the three holds the GIL while it works.
    When ``share`` is set and the block holds ``SHARE_FROM`` values or more, the constructor
    hands the ``UNITS`` units to the kernels' helper thread, which takes them from the first
    while ``columns``, on the calling thread, takes them from the last; otherwise ``columns``
    takes the one unit.

    Args:
        block: the pieces, one after another (float64).
        sizes: each piece's length.
        bins: histogram bins.
        share: whether the helper thread is idle and may take part (``kernels.can_share``).
    """

    def __init__(self, block: np.ndarray, sizes: Sequence[int], bins: int = 64, share: bool = False) -> None:
        self.block, self.bins = block, bins
        self.sizes = sizes = np.asarray(sizes, np.int64)
        self._helper = None
        if not kernels.AVAILABLE:
            return
        self.starts = starts = np.zeros(sizes.size, np.int64)
        np.cumsum(sizes[:-1], out=starts[1:])
        order = np.argsort(sizes, kind="stable")  # by size, in block order within a size
        grouped = sizes[order]
        ends = np.cumsum(grouped)
        self.at = at = np.empty_like(starts)
        at[order] = ends - grouped
        self.ordered = np.empty_like(block)
        self.rows = np.zeros((sizes.size, _FIXED + bins + 1))
        self.counts = np.zeros((sizes.size, bins), np.int64)
        self.done = np.zeros(sizes.size, np.bool_)
        self._units = _units(order, grouped, ends.tolist(), UNITS if share and block.size >= SHARE_FROM else 1)
        self._claimed = [False] * len(self._units)
        self._lock = threading.Lock()
        if len(self._units) > 1:
            self._helper = kernels.helper().submit(self._drain)

    def _drain(self) -> None:
        for j in range(len(self._units)):
            self._describe(j)

    def _describe(self, j: int) -> None:
        """Gather, sort and describe unit ``j``, unless the other thread has claimed it."""
        with self._lock:
            if self._claimed[j]:
                return
            self._claimed[j] = True
        pieces, rows = self._units[j]
        block, ordered, at, sizes = self.block, self.ordered, self.at, self.sizes
        kernels_describe.gather_pieces(block, self.starts, sizes, pieces, ordered, at)
        for start, n, m in rows:
            ordered[start : start + n * m].reshape(m, n).sort()  # in place, row by row; NaN sorts last
        kernels_describe.describe_small(block, ordered, self.starts, at, sizes, pieces, self.bins, _QV_ARRAY,
                                        self.rows, self.counts, self.done)

    def columns(self) -> Columns:
        """Every piece's description, in order."""
        block, sizes, bins = self.block, self.sizes, self.bins
        if not kernels.AVAILABLE:
            starts = list(accumulate(sizes.tolist(), initial=0))[:-1]
            return Columns.of([describe_array(block[a : a + n], bins)
                               for a, n in zip(starts, sizes.tolist(), strict=True)], bins)
        for j in range(len(self._units) - 1, -1, -1):  # from the last, which the helper reaches last
            self._describe(j)
        if self._helper is not None:
            self._helper.result()
        out = Columns(sizes.size, bins)
        done = self.done
        mine = np.flatnonzero(done)
        with np.errstate(all="ignore"):  # squares beyond float64's range become inf, not a warning
            if mine.size == sizes.size:
                _put_rows(out, slice(None), self.rows, self.counts, sizes)
            elif mine.size:
                _put_rows(out, mine, self.rows[mine], self.counts[mine], sizes[mine])
        for k in np.flatnonzero(~done).tolist():
            a = int(self.starts[k])
            out.put(k, describe_array(block[a : a + int(sizes[k])], bins))
        return out


SHARE_FROM = 1 << 16
"""Values from which ``SortedPieces`` shares its pieces with the helper thread."""
UNITS = 2
"""Units of about equal values that ``SortedPieces`` splits its pieces into when it shares them.
Each unit costs the helper three calls, each of which waits for the GIL. On the 142-tensor
model (medians of ``wr.step()``, the settings alternating snapshot by snapshot in one process,
two runs): 2 units 5.16 and 5.07 ms, 4 units 5.24 and 5.15, 8 units 5.28 and 5.18; and in two
more runs, 1 unit (no sharing) 6.00 and 6.61 against 5.11 and 5.87 with 2."""


def _units(order: np.ndarray, grouped: np.ndarray, ends: list[int],
           parts: int) -> list[tuple[np.ndarray, list[tuple[int, int, int]]]]:
    """Up to ``parts`` units of about equal values, none empty: consecutive pieces of ``order``
    (the pieces grouped by size; ``grouped``: their sizes, ``ends``: where each ends in that order).

    Returns:
        Each unit's pieces, and its rows to sort: (start in ``ordered``, size, pieces) of each
        run of pieces of one size.
    """
    if not ends:
        return []
    cuts = [0, *(bisect.bisect_left(ends, ends[-1] * j / parts) for j in range(1, parts)), len(ends)]
    changes = (np.flatnonzero(grouped[1:] != grouped[:-1]) + 1).tolist()
    units = []
    for a, b in pairwise(cuts):
        if b <= a:
            continue
        bounds = [a, *changes[bisect.bisect_right(changes, a) : bisect.bisect_left(changes, b)], b]
        rows = [(ends[p] - int(grouped[p]), int(grouped[p]), q - p) for p, q in pairwise(bounds)]
        units.append((order[a:b], rows))
    return units


_FIXED = SMALL_FIELDS + _QV_ARRAY.size


def _put_rows(out: Columns, at: np.ndarray | slice, rows: np.ndarray, counts: np.ndarray, n: np.ndarray) -> None:
    """Store rows of ``kernels_describe.describe_small`` (``SMALL_ROW``, quantiles, edges) at ``at``."""
    mean, s2 = rows[:, S_MEAN], rows[:, S_S2]
    moments = Moments(n, mean, s2 / n, rows[:, S_M3], rows[:, S_M4], norm_squared(n, mean, rows[:, S_S1], s2))
    stats = summary_columns(n, moments, rows[:, S_MIN], rows[:, S_MAX], rows[:, S_ZEROS],
                            rows[:, SMALL_FIELDS:_FIXED], (rows[:, S_OUT3], rows[:, S_OUT6], rows[:, S_OUTIQR]),
                            (rows[:, S_SKEW], rows[:, S_KURTOSIS]))
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


