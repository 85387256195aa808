"""Compiled whole-tensor descriptions (numba): a large float32 tensor's steps around its
passes, and small tensors exactly as numpy describes them.

``large_start`` and ``large_finish`` run a large float32 tensor's arithmetic before and
after the passes of ``kernels`` (the sample's scale and shift; the grid, thresholds,
histogram, percentiles and IQR count), so that ``compiled`` spends no Python per step.
``describe_small`` describes many small tensors in one call and repeats numpy's own
arithmetic (pairwise sums, ``np.percentile``'s interpolation, ``grid.histogram_grid``),
so its numbers equal ``exact.describe_array``'s bit for bit. The kernels are registered
with ``kernels._jit``: compiled at the first call of any, numba imported only then.
"""

from __future__ import annotations

import math

import numpy as np

from weightreport.stats.fields import Q1, Q3, positions
from weightreport.stats.grid import EXACT_EDGE, EXACT_INT
from weightreport.stats.kernels import _jit, histogram, outside

# --- a large float32 tensor's whole description in one call ---------------------------------

LARGE_ROW = ("status", "first", "width", "zeros", "outliers_3std", "outliers_6std", "outliers_iqr")
"""The fixed slots of ``large_finish``'s row (status 0: complete; 1: describe step by step),
followed by the quantiles, then the histogram's edges."""
LARGE_FIELDS = len(LARGE_ROW)
_LARGE_AT = positions(LARGE_ROW)
L_STATUS, L_FIRST, L_WIDTH, L_ZEROS = (_LARGE_AT[k] for k in ("status", "first", "width", "zeros"))
L_OUT3, L_OUT6, L_OUTIQR = (_LARGE_AT[k] for k in ("outliers_3std", "outliers_6std", "outliers_iqr"))

SAMPLE = 4096
"""The sample of a large tensor (``compiled.sample_of``) has at least this many values."""
RUN = 64
"""The sample takes runs of this many consecutive values (four 64-byte cache lines of float32)."""


@_jit(False)
def large_start(x):  # pragma: no cover - compiled
    """The first step of ``compiled._describe_stepwise`` for float32 ``x``: the scale and shift of its sample.

    Returns:
        (scale, shift), or (0, 0) where a value of the sample is not finite or the
        scale is beyond float32's exact range (the caller then describes ``x`` step by step).
    """
    runs = x.size // RUN
    if runs == 0:
        return 0.0, 0.0
    step = max(1, runs // (SAMPLE // RUN))
    peak = 0.0
    for j in range(0, runs, step):
        for i in range(j * RUN, (j + 1) * RUN):
            v = abs(np.float64(x[i]))
            if not v <= _FLOAT32_MAX:  # NaN or Inf
                return 0.0, 0.0
            peak = max(peak, v)
    scale = _scale_of(peak)
    if not _LOW_UNIT <= scale <= _HIGH_UNIT:
        return 0.0, 0.0
    return scale, _sample_shift(x, runs, step, scale)


@_jit(False)
def large_finish(x, bins, quantiles, lo, hi, scale, s1, s2, shift):  # pragma: no cover - compiled
    """The steps of ``compiled._describe_stepwise`` after the first pass, for all-finite float32 ``x``.

    With the same arithmetic: the check of the sample's scale against the range, the
    grid of ``grid.histogram_grid``, the thresholds of ``compiled._outside``,
    ``histogram``, the percentiles of ``compiled.quantiles_from_counts``, and the IQR
    count of ``compiled._outside_from_counts`` (``outside`` where it cannot tell). The
    moments' sums are not computed here: reassociated float32 sums must come from
    kernels called from Python (see ``range_moments_distances``).

    Returns:
        One float64 row (``LARGE_ROW``, the quantiles, the ``bins + 1``
        edges) and the int64 counts. Its status slot is 0 where the row is complete,
        1 where the caller must describe ``x`` step by step (the sample misjudged the
        peak, or the grid needs float64).
    """
    nq = quantiles.size
    n = x.size
    out = np.zeros(LARGE_FIELDS + nq + bins + 1)
    top = _scale_of(max(-lo, hi))
    if not scale <= top <= scale * _SCALE_SLACK:  # the sample misjudged the peak
        out[L_STATUS] = 1
        return out, np.zeros(bins, np.int64)
    first, width = _grid(lo, hi, bins)
    if abs(first) + bins >= _EXACT_FLOAT32 or not _LOW_UNIT <= width <= _HIGH_UNIT:
        out[L_STATUS] = 1
        return out, np.zeros(bins, np.int64)
    delta = s1 / n
    mean = (shift + delta) * scale
    sigma = math.sqrt(max(s2 / n - delta * delta, 0.0)) * scale
    b3, a3 = _thresholds(mean - 3 * sigma, mean + 3 * sigma)
    b6, a6 = _thresholds(mean - 6 * sigma, mean + 6 * sigma)
    counts, out3, out6, zeros = histogram(x, 1.0 / width, first, bins, b3, a3, b6, a6)
    qs = out[LARGE_FIELDS : LARGE_FIELDS + nq]
    cum = np.cumsum(counts)
    for j in range(nq):
        pos = quantiles[j] * (n - 1)
        below = math.floor(pos)
        lo_v = _value_at(below, counts, cum, first, width, bins)
        hi_v = _value_at(math.ceil(pos), counts, cum, first, width, bins)
        qs[j] = min(max(lo_v + (hi_v - lo_v) * (pos - below), lo), hi)
    iqr = qs[Q3] - qs[Q1]  # fields.iqr_fences
    fence_lo, fence_hi = _thresholds(qs[Q1] - 1.5 * iqr, qs[Q3] + 1.5 * iqr)
    outiqr = _outside_counted(counts, cum, first, width, lo, hi, np.float64(fence_lo), np.float64(fence_hi))
    if outiqr < 0:  # a fence falls in an occupied bin: count exactly
        outiqr = outside(x, fence_lo, fence_hi)
    out[L_FIRST], out[L_WIDTH], out[L_ZEROS] = first, width, zeros
    out[L_OUT3], out[L_OUT6], out[L_OUTIQR] = out3, out6, outiqr
    edges = out[LARGE_FIELDS + nq :]
    for i in range(bins + 1):  # (first_index + arange(bins + 1)) * width
        edges[i] = (first + np.float64(i)) * width
    return out, counts


_FLOAT32_MAX = float(np.finfo(np.float32).max)
_LOW_UNIT, _HIGH_UNIT = 2.0**-100, 2.0**100  # units (powers of two) that float32 arithmetic keeps exact
_SCALE_SLACK = 2.0**24
"""The moments' scale may lie this far below the peak's power of two: shifted values up
to 2**24 keep a block's float32 sum of fourth powers far from overflow."""
_EXACT_FLOAT32 = EXACT_INT
_EXACT_EDGE = float(EXACT_EDGE)


@_jit(False)
def _scale_of(peak):  # pragma: no cover - compiled
    """``compiled._scale_of``: the power of two at or just above ``peak`` (1 for 0)."""
    return math.ldexp(1.0, min(math.frexp(peak)[1], 1023)) if peak > 0 else 1.0


@_jit(False)
def _sample_shift(x, runs, step, scale):  # pragma: no cover - compiled
    """``compiled._range_moments``' shift: numpy's float64 sum of ``sample_of(x) / scale`` over its size, in float32."""
    taken = (runs + step - 1) // step
    scaled = np.empty(taken * RUN)
    s = np.float32(scale)
    k = 0
    for j in range(0, runs, step):
        for i in range(j * RUN, (j + 1) * RUN):
            scaled[k] = np.float64(x[i] / s)  # divided in float32, as numpy divides the sample
            k += 1
    return np.float64(np.float32(_np_sum(scaled) / scaled.size))


@_jit(False)
def _pow2_at_least(x):  # pragma: no cover - compiled
    mantissa, exponent = math.frexp(x)
    return math.ldexp(1.0, exponent - 1) if mantissa == 0.5 else math.ldexp(1.0, exponent)


@_jit(False)
def _grid(lo, hi, bins):  # pragma: no cover - compiled
    """``grid.histogram_grid``'s first index and width for a finite range (its integers kept in floats).

    The same arithmetic: the integers stay below 2**52, where float64 holds them exactly
    (``tests/test_stats_columns.py`` checks the two on float32 and float64 ranges).
    """
    if hi == lo:
        width = _pow2_at_least(max(abs(lo), 1.0) / bins)
    else:
        width = _pow2_at_least((hi - lo) / bins)
    while True:
        first = np.floor(lo / width) + 0.0  # + 0.0: a Python int has no -0
        if first * width > lo:
            first -= 1.0
        if (first + bins) * width > hi and abs(first) + bins < _EXACT_EDGE:
            break
        width *= 2.0
    used = np.floor(hi / width) - first + 1.0
    spare = bins - used
    if spare > 1 and abs(first) + bins < _EXACT_FLOAT32:
        first -= np.floor(spare / 2.0)
    return first, width


@_jit(False)
def _thresholds(below, above):  # pragma: no cover - compiled
    """``compiled._outside`` for float32: ``below`` rounded up and ``above`` down to float32."""
    b, a = np.float32(below), np.float32(above)
    if np.float64(b) < below:
        b = np.nextafter(b, np.float32(np.inf))
    if np.float64(a) > above:
        a = np.nextafter(a, np.float32(-np.inf))
    return b, a


@_jit(False)
def _value_at(rank, counts, cum, first, width, bins):  # pragma: no cover - compiled
    """``compiled.quantiles_from_counts``' value of the value at ``rank``."""
    b = min(np.searchsorted(cum, rank, side="right"), bins - 1)
    before = cum[b - 1] if b > 0 else 0
    inside = min(max((rank - before + 0.5) / max(counts[b], 1), 0.0), 1.0)
    return (first + b + inside) * width


@_jit(False)
def _outside_counted(counts, cum, first, width, lo, hi, below, above):  # pragma: no cover - compiled
    """``compiled._outside_from_counts``, with -1 for its None."""
    total = 0
    whole = cum[-1]
    if below > hi:
        total += whole
    elif below > lo:
        k = int(np.floor(below / width) - first)
        if counts[k] and (first + k) * width != below:
            return -1
        total += cum[k - 1] if k > 0 else 0
    if above < lo:
        total += whole
    elif above < hi:
        k = int(np.floor(above / width) - first)
        if counts[k]:
            return -1
        total += whole - cum[k]
    return total


# --- small tensors: exact, numpy's arithmetic reproduced -----------------------------------

SMALL_ROW = ("mean", "s1", "s2", "m3", "m4", "skew", "kurtosis", "zeros", "outliers_3std", "outliers_6std",
             "outliers_iqr", "min", "max")
"""The fixed slots of ``describe_small``'s rows: the mean, the sums of the deviations from it
and of their squares, the third and fourth central moments, skew and kurtosis, the counts,
the range; then the quantiles, then the histogram's edges."""
SMALL_FIELDS = len(SMALL_ROW)
_SMALL_AT = positions(SMALL_ROW)
S_MEAN, S_S1, S_S2, S_M3, S_M4 = (_SMALL_AT[k] for k in ("mean", "s1", "s2", "m3", "m4"))
S_ZEROS, S_OUT3, S_OUT6, S_OUTIQR = (_SMALL_AT[k] for k in ("zeros", "outliers_3std", "outliers_6std",
                                                      "outliers_iqr"))
S_MIN, S_MAX = _SMALL_AT["min"], _SMALL_AT["max"]
S_SKEW, S_KURTOSIS = _SMALL_AT["skew"], _SMALL_AT["kurtosis"]
_TINY = np.finfo(np.float64).tiny


@_jit(False)
def _shape(m2, m3, m4):  # pragma: no cover - compiled
    """``fields.shape`` (NaN, NaN where ``m2`` is not > 0), bit for bit: numba's power is the C
    library's, as Python's is; where Python raises (the power overflows, or underflows to 0),
    the same fallback."""
    if not m2 > 0.0:
        return np.nan, np.nan
    power = m2**1.5
    skew = m3 / power if 0.0 < power < np.inf else m3 / m2 / math.sqrt(m2)
    square = m2 * m2
    if not _TINY <= square < np.inf:
        return skew, m4 / m2 / m2 - 3.0
    return skew, m4 / square - 3.0


@_jit(False)
def _block_sum(a, lo, n):  # pragma: no cover - compiled
    """numpy's pairwise sum of at most 128 values: eight accumulators, then the rest."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    m = n - (n % 8)
    while i < m:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@_jit(False)
def _powers(v):  # pragma: no cover - compiled
    """``(d, d², d²·d, d²·d²)`` for ``d = v``, as ``exact._describe_array``'s numpy temporaries compute them."""
    v2 = v * v
    return v, v2, v2 * v, v2 * v2


@_jit(False)
def _add_powers(s, v):  # pragma: no cover - compiled
    """Each of ``_powers(v)`` added to its running sum in ``s``."""
    v2 = v * v
    return s[0] + v, s[1] + v2, s[2] + v2 * v, s[3] + v2 * v2


@_jit(False)
def _block_powers(f, lo, n, mean, out):  # pragma: no cover - compiled
    """``_block_sum`` of each of ``_powers(f - mean)``, at once, into ``out[:4]``.

    Each sum equals numpy's of its temporary: the same powers, added in ``_block_sum``'s
    order (eight running sums of each kept in registers, as tuples).
    """
    if n < 8:
        s = (0.0, 0.0, 0.0, 0.0)
        for i in range(n):
            s = _add_powers(s, f[lo + i] - mean)
        out[0], out[1], out[2], out[3] = s
        return
    s0, s1 = _powers(f[lo] - mean), _powers(f[lo + 1] - mean)
    s2, s3 = _powers(f[lo + 2] - mean), _powers(f[lo + 3] - mean)
    s4, s5 = _powers(f[lo + 4] - mean), _powers(f[lo + 5] - mean)
    s6, s7 = _powers(f[lo + 6] - mean), _powers(f[lo + 7] - mean)
    i = 8
    m = n - (n % 8)
    while i < m:
        s0, s1 = _add_powers(s0, f[lo + i] - mean), _add_powers(s1, f[lo + i + 1] - mean)
        s2, s3 = _add_powers(s2, f[lo + i + 2] - mean), _add_powers(s3, f[lo + i + 3] - mean)
        s4, s5 = _add_powers(s4, f[lo + i + 4] - mean), _add_powers(s5, f[lo + i + 5] - mean)
        s6, s7 = _add_powers(s6, f[lo + i + 6] - mean), _add_powers(s7, f[lo + i + 7] - mean)
        i += 8
    for q in range(4):
        out[q] = ((s0[q] + s1[q]) + (s2[q] + s3[q])) + ((s4[q] + s5[q]) + (s6[q] + s7[q]))
    while i < n:
        s = _add_powers((out[0], out[1], out[2], out[3]), f[lo + i] - mean)
        out[0], out[1], out[2], out[3] = s
        i += 1


@_jit(False)
def _pairwise(a, lo, n, mean, powers, stack, vals):  # pragma: no cover - compiled
    """numpy's ``pairwise_sum`` of ``a[lo:lo + n]`` (``powers`` False: the sum in ``vals[0, 0]``), or of
    each of the four powers of ``_block_powers`` (``powers`` True: ``vals[0, :4]``), in numpy's order.

    numpy recurses (halves rounded down to a multiple of 8, blocks of at most 128);
    this walks the same tree with an explicit stack, because numba's on-disk cache
    crashed on reloading a recursive function. ``stack`` (int64, 64 × 3) and ``vals``
    (64 × 4) are the caller's scratch, so that a call allocates nothing.
    """
    width = 4 if powers else 1
    top, vtop = 0, 0
    stack[0, 0], stack[0, 1], stack[0, 2] = lo, n, 0
    while top >= 0:
        m = stack[top, 1]
        if m <= 128:
            if powers:
                _block_powers(a, stack[top, 0], m, mean, vals[vtop])
            else:
                vals[vtop, 0] = _block_sum(a, stack[top, 0], m)
            vtop += 1
            top -= 1
            continue
        half = m // 2
        half -= half % 8
        if stack[top, 2] == 0:  # first the left half
            stack[top, 2] = 1
            stack[top + 1, 0], stack[top + 1, 1], stack[top + 1, 2] = stack[top, 0], half, 0
            top += 1
        elif stack[top, 2] == 1:  # then the right half
            stack[top, 2] = 2
            stack[top + 1, 0], stack[top + 1, 1], stack[top + 1, 2] = stack[top, 0] + half, m - half, 0
            top += 1
        else:  # left + right, as numpy adds them
            for q in range(width):
                vals[vtop - 2, q] = vals[vtop - 2, q] + vals[vtop - 1, q]
            vtop -= 1
            top -= 1


@_jit(False)
def _np_sum(a):  # pragma: no cover - compiled
    """``numpy.add.reduce(a)`` for a 1-D float64 array: the identity 0.0 plus the pairwise sum."""
    vals = np.empty((64, 4))
    _pairwise(a, 0, a.size, 0.0, False, np.empty((64, 3), np.int64), vals)
    return 0.0 + vals[0, 0]


@_jit(False)
def _below_each(s, edges):  # pragma: no cover - compiled
    """``np.searchsorted(s, edges)`` for sorted ``s`` without NaN and ascending ``edges``: one merge walk.

    Each count is the number of values strictly below its edge, as the binary searches
    give it; walking both in order costs ``len(s) + len(edges)`` steps, not a search each.
    A grid at the ends of float64's range can have an infinite or NaN edge (``0 * inf``):
    there the binary searches themselves answer.
    """
    for i in range(edges.size):
        if not np.isfinite(edges[i]):
            return np.searchsorted(s, edges)
    out = np.empty(edges.size, np.int64)
    j = 0
    n = s.size
    for i in range(edges.size):
        e = edges[i]
        while j < n and s[j] < e:
            j += 1
        out[i] = j
    return out


@_jit(False)
def describe_small(block, ordered, starts, at, sizes, pieces, bins, quantiles, out, hist, done):  # pragma: no cover - compiled
    """Exact statistics of the all-finite ``pieces`` (indices), each ``block[start:start + size]``
    (float64), as numpy gives them.

    ``ordered`` holds each piece sorted (numpy's SIMD sort is some twenty times
    faster than numba's) at ``at[k]``; NaN sorts last and -Inf first, so its
    ends tell whether a piece is all finite. Each piece's grid of ``bins`` bins is
    ``grid.histogram_grid``'s (``_grid``), its edges computed as ``Grid.edges``
    computes them. Every number is computed with the operations, in the order, of
    ``exact._describe_array``'s numpy code, so the two agree bit for bit.

    The pieces are described into their rows of the zeroed outputs: ``out``, one float64
    row per piece (``SMALL_ROW``, the quantiles, the edges), ``hist``, one int64 row of
    histogram counts, and ``done``, whether the piece was described: empty pieces and
    pieces with NaN or Inf are left (rows of zeros) to ``exact.describe_array``. Calls on
    disjoint pieces may run at once, on two threads.
    """
    nq = quantiles.size
    stack = np.empty((64, 3), np.int64)  # _pairwise's scratch, for every piece
    vals = np.empty((64, 4))
    for k in pieces:
        n = sizes[k]
        if n == 0:
            continue
        f = block[starts[k] : starts[k] + n]
        s = ordered[at[k] : at[k] + n]
        lo, hi = s[0], s[n - 1]
        if not (np.isfinite(lo) and np.isfinite(hi)):
            continue
        done[k] = True
        first, width = _grid(lo, hi, bins)
        row = out[k]
        qs = row[SMALL_FIELDS : SMALL_FIELDS + nq]
        for j in range(nq):
            virtual = (n - 1) * quantiles[j]
            if virtual >= n - 1:
                qs[j] = s[n - 1]
                continue
            prev = int(np.floor(virtual))
            a, b = s[prev], s[prev + 1]
            gamma = virtual - prev
            diff = b - a
            qs[j] = b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma
        iqr = qs[Q3] - qs[Q1]  # fields.iqr_fences
        fence_lo, fence_hi = qs[Q1] - 1.5 * iqr, qs[Q3] + 1.5 * iqr
        edges = row[SMALL_FIELDS + nq :]
        for i in range(bins + 1):  # (first_index + arange(bins + 1)) * width
            edges[i] = (first + np.float64(i)) * width
        below = _below_each(s, edges)
        _pairwise(f, 0, n, 0.0, False, stack, vals)
        mean = (0.0 + vals[0, 0]) / n  # numpy.add.reduce's identity, then the pairwise sum
        _pairwise(f, 0, n, mean, True, stack, vals)  # f - mean, d * d, d2 * d, d2 * d2, summed
        s1, s2 = 0.0 + vals[0, 0], 0.0 + vals[0, 1]
        m3, m4 = (0.0 + vals[0, 2]) / n, (0.0 + vals[0, 3]) / n
        std = math.sqrt(s2 / n)
        out3 = 0
        out6 = 0
        t3, t6 = 3 * std, 6 * std
        for i in range(n):
            a = abs(f[i] - mean)
            out3 += a > t3
            out6 += a > t6
        zeros = np.searchsorted(s, 0.0, side="right") - np.searchsorted(s, 0.0)
        outiqr = np.searchsorted(s, fence_lo) + n - np.searchsorted(s, fence_hi, side="right")
        row[S_MEAN], row[S_S1], row[S_S2], row[S_M3], row[S_M4] = mean, s1, s2, m3, m4
        row[S_SKEW], row[S_KURTOSIS] = _shape(s2 / n, m3, m4)
        row[S_ZEROS], row[S_OUT3], row[S_OUT6], row[S_OUTIQR] = zeros, out3, out6, outiqr
        row[S_MIN], row[S_MAX] = lo, hi
        for i in range(bins):
            hist[k, i] = below[i + 1] - below[i]


@_jit(False)
def gather_pieces(block, starts, sizes, pieces, ordered, at):  # pragma: no cover - compiled
    """Copy each of ``pieces`` from ``block[starts[k]:]`` to ``ordered[at[k]:]``, ``sizes[k]`` values."""
    for k in pieces:
        a, b = starts[k], at[k]
        for i in range(sizes[k]):
            ordered[b + i] = block[a + i]
