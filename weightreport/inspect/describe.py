"""Exact statistics and histogram of one checkpoint tensor, in numpy, in memory bounded by its size.

``describe_values`` fills the summary fields of ``stats.fields.SUMMARY`` with the
arithmetic of the collector's exact host path (``stats.exact.describe_array``), so its
numbers match numpy's: one sort gives the range, the histogram
(``grid.histogram_grid``), the percentiles (numpy's linear interpolation) and the
counts against fixed thresholds, each as a binary search; the moments are numpy's
float64 sums of the deviations from the mean. It differs in what it holds at once:

- the sort is of the values in their own dtype (float32 stays float32: widening is
  exact and keeps the order), and a float64 threshold is rounded to float32 in the
  direction that keeps each count exact (``_count``);
- the moments are summed over ``CHUNK`` values at a time, widened to float64 chunk by
  chunk. A tensor of at most ``CHUNK`` values is one chunk, and its numbers equal
  ``describe_array``'s bit for bit; a longer one's sums are added chunk by chunk,
  which rounds them differently (a few ulps in the mean and the moments).

So a tensor of n float32 values needs its sort (4n bytes) and a few chunks beside
itself, never the 40n bytes of float64 temporaries ``describe_array`` makes, and no
compiled kernels: ``inspect`` loads neither numba nor torch for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from weightreport.stats.fields import (
    Description,
    Moments,
    empty_description,
    iqr_fences,
    norm_squared,
    sorted_percentiles,
    summary,
)
from weightreport.stats.grid import histogram_grid

CHUNK = 2**18
"""Values widened to float64 at a time for the moments (2 MiB a temporary)."""

_sum = np.add.reduce


def describe_values(x: np.ndarray, bins: int = 64) -> Description:
    """Exact statistics and histogram of a float32 or float64 array of any shape.

    Args:
        x: the values (NaN and ±Inf allowed; they are counted, never dropped).
        bins: histogram bins.
    """
    with np.errstate(all="ignore"):  # squares beyond float64's range become inf, not a warning
        return _describe(np.ascontiguousarray(x).reshape(-1), bins)


def _describe(x: np.ndarray, bins: int) -> Description:
    if x.size == 0:
        return empty_description(0, 0, 0, bins)
    s = np.sort(x)  # NaN sorts last and -inf first: the ends tell whether every value is finite
    f = x
    nan_count = 0
    if not (math.isfinite(s[0]) and math.isfinite(s[-1])):
        nan_count = int(np.count_nonzero(np.isnan(s)))
        start = int(np.searchsorted(s, -np.inf, side="right"))  # past every -inf
        stop = int(np.searchsorted(s, np.inf, side="left"))  # before every +inf and NaN
        s = s[start:stop]
        f = x[np.isfinite(x)]
    n = s.size
    inf_count = x.size - nan_count - n
    if n == 0:
        return empty_description(x.size, nan_count, inf_count, bins)
    lo, hi = float(s[0]), float(s[-1])
    edges = histogram_grid(lo, hi, bins).edges
    qs = sorted_percentiles(s)
    fence_lo, fence_hi = iqr_fences(qs)
    # Values below each edge (the last is n), below the low fence and below 0; then
    # values up to the high fence and up to 0.
    below = _count(s, [*edges, fence_lo, 0.0], "left")
    upto_hi, upto_zero = _count(s, [fence_hi, 0.0], "right")
    counts = np.diff(below[: bins + 1]).tolist()
    del s
    mean, sums, beyond = _moments(f, n)
    s1, s2, s3, s4 = sums
    m2 = s2 / n
    moments = Moments(n, mean, m2, s3 / n, s4 / n, norm_squared(n, mean, s1, s2))
    outliers = (*beyond, below[bins + 1] + n - upto_hi)
    stats = summary(x.size, nan_count, inf_count, moments, lo, hi, upto_zero - below[bins + 2], qs, True,
                    outliers)
    return Description(stats, edges, counts)


def _moments(f: np.ndarray, n: int) -> tuple[float, tuple[float, float, float, float], tuple[int, int]]:
    """The mean, ``Σd, Σd², Σd³, Σd⁴`` of the deviations ``d`` from it, and the counts of ``|d|`` beyond 3 and 6 std.

    Sums as ``numpy.mean`` and ``numpy.var`` compute them (``np.add.reduce`` over float64),
    so that ties at k·std fall as they do in ``describe_array``; ufuncs, not ``np.dot``.
    """
    if n <= CHUNK:
        f = f.astype(np.float64, copy=False)
        mean = float(_sum(f)) / n
        d = f - mean
        d2 = d * d
        sums = float(_sum(d)), float(_sum(d2)), float(_sum(d2 * d)), float(_sum(d2 * d2))
        std = math.sqrt(sums[1] / n)
        a = np.abs(d)
        return mean, sums, (int(np.count_nonzero(a > 3 * std)), int(np.count_nonzero(a > 6 * std)))
    chunks = range(0, n, CHUNK)
    mean = math.fsum(float(_sum(f[i : i + CHUNK].astype(np.float64, copy=False))) for i in chunks) / n
    t1 = t2 = t3 = t4 = 0.0
    for i in chunks:
        d = f[i : i + CHUNK].astype(np.float64, copy=False) - mean
        d2 = d * d
        t1 += float(_sum(d))
        t2 += float(_sum(d2))
        t3 += float(_sum(d2 * d))
        t4 += float(_sum(d2 * d2))
    std = math.sqrt(t2 / n)
    out3 = out6 = 0
    for i in chunks:
        a = np.abs(f[i : i + CHUNK].astype(np.float64, copy=False) - mean)
        out3 += int(np.count_nonzero(a > 3 * std))
        out6 += int(np.count_nonzero(a > 6 * std))
    return mean, (t1, t2, t3, t4), (out3, out6)


def _count(s: np.ndarray, thresholds: Sequence[float], side: str) -> list[int]:
    """How many sorted values lie below (``side="left"``) or at or below (``"right"``) each float64 threshold.

    Exact for float32 values without widening them: a threshold that float32 cannot
    hold is rounded to its nearest float32 ``t32``, and as no float32 lies between the
    two, ``x < t`` is ``x < t32`` when it was rounded up and ``x ≤ t32`` when it was
    rounded down (and ``x ≤ t`` the same way round).
    """
    t = np.asarray(thresholds, dtype=np.float64)
    if s.dtype == np.float64:
        return np.searchsorted(s, t, side=side).tolist()
    with np.errstate(over="ignore"):  # beyond float32's range: ±inf, which counts the same
        t32 = t.astype(s.dtype)
    left, right = np.searchsorted(s, t32, side="left"), np.searchsorted(s, t32, side="right")
    if side == "left":
        return np.where(t32 < t, right, left).tolist()
    return np.where(t32 > t, left, right).tolist()


