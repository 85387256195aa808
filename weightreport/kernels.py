"""Compiled CPU kernels for the statistics of large tensors (numba).

Each kernel is one pass over a contiguous 1-D float32 or float64 array, written so
that LLVM vectorises it: sums run in short blocks of the input's own dtype, each
block's total is added in float64, and comparisons are counted as 0/1 adds of the
same type. Inner loops run over slices (``xb = x[start:start + _BLOCK]``) and index
them from 0: loops over index ranges of the whole array kept numba's bounds
arithmetic and ran five to ten times slower. numba's float min and max do not
vectorise at all (the loop around them stayed scalar, ten times slower), so
``range_moments`` takes the range on the values' bits as integers. A large tensor
takes two passes: ``range_moments``, then ``histogram`` with the threshold counts
whose thresholds the moments give; ``outside`` is a third, for the IQR fences, only
where the histogram cannot tell. For a weight, ``range_moments_distances`` fuses the
update norms into the first pass. A float32 tensor's steps around the passes run in
``large_start`` and ``large_finish``; the float32 block sums (``range_moments``,
``distances``, and their fusion) are always called from Python, because LLVM may
vectorise a reassociated sum differently once inlined into another kernel, and
round it differently. ``histogram`` is a scatter and cannot vectorise
its counting; it spreads consecutive elements over four sub-histograms so that
runs of equal bins do not stall on one counter.

Each kernel runs on the thread that calls it, and releases the GIL. Callers split
whole tensors between the calling thread and one ``helper()`` thread (``stats``,
``snapshot``). Splitting single arrays and numba's ``parallel=True`` loops were both
slower on two cores: the parallel loops lost their vectorisation, and a torch op
just before leaves its OpenMP workers spinning on the second core for about a
millisecond, so the snapshot path keeps torch's parallel ops away from the kernels.

``AVAILABLE`` is False when numba is not installed; ``stats`` then uses torch ops on
the CPU too, as it does on accelerators. Set ``WEIGHTREPORT_NO_NUMBA=1`` to force
that path. numba is imported at the first kernel call, which compiles (about a
second) and caches the machine code beside this file, or in ``NUMBA_CACHE_DIR``:
reading runs and building reports never load it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import math
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

AVAILABLE = importlib.util.find_spec("numba") is not None and not os.environ.get("WEIGHTREPORT_NO_NUMBA")
"""Whether the compiled kernels can be used. numba itself is imported, and the kernels
compiled, at the first kernel call: reading runs and building reports never load it."""

MAX_BINS = 65535
"""``histogram`` keeps bin indices in 16 bits."""

_pool: ThreadPoolExecutor | None = None


def can_share() -> bool:
    """Whether kernel work may be split with the helper thread: compiled, and torch uses 2+ threads."""
    return AVAILABLE and torch.get_num_threads() > 1


def helper() -> ThreadPoolExecutor:
    """The one helper thread for kernel work, started on first use."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="weightreport-kernels")
    return _pool


_HANDOFF_S = 0.0005
"""The interpreter's switch interval while this thread and the helper share kernel work."""


@contextlib.contextmanager
def quick_handoffs():
    """Lower Python's switch interval (5 ms by default) while the helper thread shares work.

    Between its kernels the helper needs the GIL for a few microseconds; while this
    thread runs plain Python it would wait up to the whole interval for it. Measured
    on the reference CNN: a snapshot took about 15 % less. The interval is restored
    on the way out (it is process-wide: other threads switch more often meanwhile).
    """
    old = sys.getswitchinterval()
    if old <= _HANDOFF_S:
        yield
        return
    sys.setswitchinterval(_HANDOFF_S)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def _stop_helper() -> None:
    """Join the helper thread before the process forks (DataLoader workers, for one).

    A forked child would inherit a pool whose thread does not exist, and Python 3.12
    warns about forking a process with threads. The next snapshot starts a new one.
    """
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_stop_helper)

_BLOCK = 256
"""Elements summed in the input's dtype before the block total joins a float64 sum.
Counts below 2**24 are exact in float32, and a sum of 256 squares loses little."""
_HIST_BLOCK = 2048
"""Bin indices computed per block before they are counted."""
_FLUSH_BLOCKS = 1 << 20
"""Histogram blocks (2**31 values) between flushes of the uint32 sub-histograms."""

# Reassociation lets LLVM vectorise the block sums; NaN and Inf keep their meaning
# (the caller passes finite values only, and comparisons must stay honest anyway).
_FAST = {"reassoc", "nsz", "contract"}


_REGISTRY: list[tuple[str, object, object]] = []
_compile_lock = threading.Lock()
_compiled = False


def _jit(fastmath):
    """Register a kernel; it is compiled, with all the others, at the first call of any."""

    def wrap(fn):
        _REGISTRY.append((fn.__name__, fn, fastmath))

        @functools.wraps(fn)
        def first_call(*args):
            _compile()
            return globals()[fn.__name__](*args)

        return first_call

    return wrap


def _compile() -> None:
    """Import numba and replace every registered kernel by its compiled dispatcher.

    All at once, so that kernels calling kernels see compiled callees. numba compiles
    each on its first call and caches it on disk (beside this file, or in
    ``NUMBA_CACHE_DIR``); where no cache directory is writable, each process compiles.
    """
    global _compiled
    with _compile_lock:
        if _compiled:
            return
        import numba

        for name, fn, fastmath in _REGISTRY:
            try:
                globals()[name] = numba.njit(cache=True, fastmath=fastmath, nogil=True)(fn)
            except RuntimeError:  # no writable cache directory
                globals()[name] = numba.njit(fastmath=fastmath, nogil=True)(fn)
        _compiled = True


@_jit(_FAST)
def range_moments(x, keys, inv_scale, shift):  # pragma: no cover - compiled
    """Min, max, and the sums of ``d, d², d³, d⁴`` for ``d = x * inv_scale - shift`` (float64 totals).

    ``keys`` is ``x`` viewed as signed integers of its width (``int32`` for float32).
    The range is taken on them, after a flip of the negative values' magnitude bits
    that orders the keys as their floats (``-0.0`` below ``0.0``): LLVM vectorises
    integer min/max but not numba's float ones. A NaN's key lies beyond the
    infinities', so the range is finite exactly when every value is; the sums are
    then meaningless, and the caller compacts the finite values.
    """
    zero = x.dtype.type(0)
    inv_scale = x.dtype.type(inv_scale)
    shift = x.dtype.type(shift)
    sign = keys.itemsize * 8 - 1
    flip = (keys.dtype.type(1) << sign) - 1  # every bit but the sign (numba computes in int64)
    lo = hi = keys[0] ^ ((keys[0] >> sign) & flip)
    t1 = t2 = t3 = t4 = 0.0
    for start in range(0, x.size, _BLOCK):
        xb = x[start : start + _BLOCK]
        s1 = s2 = s3 = s4 = zero
        for i in range(xb.size):
            d = xb[i] * inv_scale - shift
            d2 = d * d
            s1 += d
            s2 += d2
            s3 += d2 * d
            s4 += d2 * d2
        t1 += s1
        t2 += s2
        t3 += s3
        t4 += s4
        kb = keys[start : start + _BLOCK]  # a second loop over the block, from L1: one loop kept both scalar
        bl = bh = lo
        for i in range(kb.size):
            k = kb[i] ^ ((kb[i] >> sign) & flip)
            bl = min(bl, k)
            bh = max(bh, k)
        lo = min(lo, bl)
        hi = max(hi, bh)
    ends = np.empty(2, keys.dtype)
    ends[0] = lo ^ ((lo >> sign) & flip)  # the flip is its own inverse
    ends[1] = hi ^ ((hi >> sign) & flip)
    values = ends.view(x.dtype)
    return values[0], values[1], t1, t2, t3, t4


@_jit(_FAST)
def range_moments_distances(x, keys, inv_scale, shift, prev, init):  # pragma: no cover - compiled
    """``range_moments`` and ``distances(x, prev, init)`` in one pass over float32 ``x``.

    Returns the six numbers of the one and the three of the other, bit for bit: each
    loop is theirs, copied. Call it from Python only, as those two are: the float32
    block sums are reassociated by LLVM, and a kernel inlined into another kernel
    may be vectorised differently and round differently.
    """
    zero = x.dtype.type(0)
    inv_scale = x.dtype.type(inv_scale)
    shift = x.dtype.type(shift)
    sign = keys.itemsize * 8 - 1
    flip = (keys.dtype.type(1) << sign) - 1  # every bit but the sign (numba computes in int64)
    lo = hi = keys[0] ^ ((keys[0] >> sign) & flip)
    t1 = t2 = t3 = t4 = 0.0
    n1 = n2 = n3 = 0.0
    for start in range(0, x.size, _BLOCK):
        xb = x[start : start + _BLOCK]
        s1 = s2 = s3 = s4 = zero
        for i in range(xb.size):
            d = xb[i] * inv_scale - shift
            d2 = d * d
            s1 += d
            s2 += d2
            s3 += d2 * d
            s4 += d2 * d2
        t1 += s1
        t2 += s2
        t3 += s3
        t4 += s4
        kb = keys[start : start + _BLOCK]  # a second loop over the block, from L1: one loop kept both scalar
        bl = bh = lo
        for i in range(kb.size):
            k = kb[i] ^ ((kb[i] >> sign) & flip)
            bl = min(bl, k)
            bh = max(bh, k)
        lo = min(lo, bl)
        hi = max(hi, bh)
        pb = prev[start : start + _BLOCK]  # the update norms, from L1 (distances' loops)
        rb = init[start : start + _BLOCK]
        u1 = u2 = u3 = np.float32(0)
        for i in range(xb.size):
            a = xb[i] - pb[i]
            b = xb[i] - rb[i]
            u1 += a * a
            u2 += pb[i] * pb[i]
            u3 += b * b
        n1 += u1
        n2 += u2
        n3 += u3
        for i in range(xb.size):
            pb[i] = xb[i]
    ends = np.empty(2, keys.dtype)
    ends[0] = lo ^ ((lo >> sign) & flip)  # the flip is its own inverse
    ends[1] = hi ^ ((hi >> sign) & flip)
    values = ends.view(x.dtype)
    return values[0], values[1], t1, t2, t3, t4, n1, n2, n3


@_jit(_FAST)
def outside(x, below, above):  # pragma: no cover - compiled
    """The count of ``x < below or x > above``.

    The thresholds must already be in ``x``'s dtype, rounded so that comparing in
    that dtype gives the answer exact arithmetic would (see ``stats._outside``):
    ``below <= above``, or no value of the dtype lies between them, so that no value
    is counted twice.
    """
    zero = x.dtype.type(0)
    one = x.dtype.type(1)
    total = 0.0
    for start in range(0, x.size, _HIST_BLOCK):
        xb = x[start : start + _HIST_BLOCK]
        a = zero
        for i in range(xb.size):  # two adds, not one of an or: this form vectorises
            a += one if xb[i] < below else zero
            a += one if xb[i] > above else zero
        total += a
    return int(total)


@_jit(_FAST)
def histogram(x, inv_width, first_index, bins, below3, above3, below6, above6):  # pragma: no cover
    """Int64 counts of ``floor(x * inv_width) - first_index`` over ``bins`` bins (at most 65,535),
    and the counts of ``x < below3 or x > above3``, the same at 6σ, and of zeros.

    ``inv_width`` is a power of two and ``first_index`` an integer, both exact in
    ``x``'s dtype, so every bin index is computed without rounding (``grid.py``); the
    caller guarantees that every index is in range. The thresholds are rounded as for
    ``outside``.

    Two phases per block: the indices (and the threshold counts) are computed in a
    loop that vectorises, then the indices are counted into four interleaved
    sub-histograms.
    """
    if bins * bins <= _PAIR_CELLS:
        return _histogram_pairs(x, inv_width, first_index, bins, below3, above3, below6, above6)
    inv_width = x.dtype.type(inv_width)
    first_index = x.dtype.type(first_index)
    zero = x.dtype.type(0)
    one = x.dtype.type(1)
    idx = np.empty(_HIST_BLOCK, np.uint16)
    sub = np.zeros(4 * bins, np.uint32)  # a slice of at most 2**32 values per sub-histogram
    nb = np.uint32(bins)
    inc = np.uint32(1)
    counts = np.zeros(bins, np.int64)
    o3 = o6 = oz = 0.0
    for start in range(0, x.size, _HIST_BLOCK):
        xb = x[start : start + _HIST_BLOCK]
        m = xb.size
        a3 = a6 = az = zero  # at most 2 * _HIST_BLOCK: exact in float32
        for i in range(m):
            v = xb[i]
            idx[i] = np.uint16(np.int32(np.floor(v * inv_width) - first_index))
            a3 += one if v < below3 else zero
            a3 += one if v > above3 else zero
            a6 += one if v < below6 else zero
            a6 += one if v > above6 else zero
            az += one if v == zero else zero
        o3 += a3
        o6 += a6
        oz += az
        i = 0
        while i + 4 <= m:
            sub[np.uint32(idx[i])] += inc
            sub[nb + np.uint32(idx[i + 1])] += inc
            sub[2 * nb + np.uint32(idx[i + 2])] += inc
            sub[3 * nb + np.uint32(idx[i + 3])] += inc
            i += 4
        while i < m:
            sub[np.uint32(idx[i])] += inc
            i += 1
        if (start // _HIST_BLOCK) % _FLUSH_BLOCKS == _FLUSH_BLOCKS - 1:
            for j in range(4 * bins):  # empty the uint32 counters before they could overflow
                counts[j % bins] += np.int64(sub[j])
                sub[j] = 0
    for j in range(4 * bins):
        counts[j % bins] += np.int64(sub[j])
    return counts, int(o3), int(o6), int(oz)


_PAIR_CELLS = 4096
"""``histogram`` counts pairs of consecutive values where ``bins * bins`` is at most this
(64 bins): two sub-histograms of 4096 uint32 cells, 32 KiB, stay in L1."""


@_jit(_FAST)
def _histogram_pairs(x, inv_width, first_index, bins, below3, above3, below6, above6):  # pragma: no cover
    """``histogram`` for ``bins * bins <= _PAIR_CELLS``: one scatter per pair of values.

    Each pair of consecutive indices ``(i, j)`` is counted in cell ``i * bins + j`` of
    a pair histogram (two interleaved ones, as ``histogram`` interleaves four); its
    row sums and column sums are then the counts of the first and the second values
    of the pairs. Half the scatters, which are what the single-value histogram waits on.
    """
    inv_width = x.dtype.type(inv_width)
    first_index = x.dtype.type(first_index)
    zero = x.dtype.type(0)
    one = x.dtype.type(1)
    idx = np.empty(_HIST_BLOCK, np.uint16)
    pair = np.empty(_HIST_BLOCK // 2, np.uint16)
    cells = bins * bins
    sub = np.zeros(2 * cells, np.uint32)  # at most 2**30 pairs per cell between flushes
    inc = np.uint32(1)
    counts = np.zeros(bins, np.int64)
    o3 = o6 = oz = 0.0
    for start in range(0, x.size, _HIST_BLOCK):
        xb = x[start : start + _HIST_BLOCK]
        m = xb.size
        a3 = a6 = az = zero  # at most 2 * _HIST_BLOCK: exact in float32
        for i in range(m):
            v = xb[i]
            idx[i] = np.uint16(np.int32(np.floor(v * inv_width) - first_index))
            a3 += one if v < below3 else zero
            a3 += one if v > above3 else zero
            a6 += one if v < below6 else zero
            a6 += one if v > above6 else zero
            az += one if v == zero else zero
        o3 += a3
        o6 += a6
        oz += az
        h = m // 2
        for i in range(h):
            pair[i] = np.uint16(idx[2 * i] * bins + idx[2 * i + 1])
        i = 0
        while i + 2 <= h:
            sub[np.uint32(pair[i])] += inc
            sub[cells + np.uint32(pair[i + 1])] += inc
            i += 2
        if i < h:
            sub[np.uint32(pair[i])] += inc
        if m % 2:
            counts[idx[m - 1]] += 1
        if (start // _HIST_BLOCK) % _FLUSH_BLOCKS == _FLUSH_BLOCKS - 1:
            _add_pair_margins(sub, bins, counts)
    _add_pair_margins(sub, bins, counts)
    return counts, int(o3), int(o6), int(oz)


@_jit(_FAST)
def _add_pair_margins(sub, bins, counts):  # pragma: no cover - compiled
    """Add the row and column sums of ``_histogram_pairs``' pair histograms to ``counts``; zero them."""
    for start in range(0, sub.size, bins):
        row = sub[start : start + bins]
        total = np.int64(0)
        for b in range(bins):
            total += np.int64(row[b])
            counts[b] += np.int64(row[b])
            row[b] = 0
        counts[(start // bins) % bins] += total


@_jit(_FAST)
def distances(w, prev, init):  # pragma: no cover - compiled
    """``‖w − prev‖², ‖prev‖², ‖w − init‖²`` in one pass, copying ``w`` into ``prev`` as it goes.

    Three float32 arrays of one size. The copy is done block by block while the block
    is in cache (a separate copy afterwards cost more than the sums).
    """
    zero = np.float32(0)
    t1 = t2 = t3 = 0.0
    for start in range(0, w.size, _BLOCK):
        wb = w[start : start + _BLOCK]
        pb = prev[start : start + _BLOCK]
        rb = init[start : start + _BLOCK]
        s1 = s2 = s3 = zero
        for i in range(wb.size):
            a = wb[i] - pb[i]
            b = wb[i] - rb[i]
            s1 += a * a
            s2 += pb[i] * pb[i]
            s3 += b * b
        t1 += s1
        t2 += s2
        t3 += s3
        for i in range(wb.size):
            pb[i] = wb[i]
    return t1, t2, t3


# --- a large float32 tensor's whole description in one call ---------------------------------

LARGE_FIELDS = 8
"""Per large tensor from ``large_finish``: status, first bin index, bin width, zeros, 3σ,
6σ and IQR outliers, unused; then the quantiles, then the histogram's edges."""

_SAMPLE = 4096
"""The strided sample of a large tensor has at least this many values."""


@_jit(False)
def large_start(x):  # pragma: no cover - compiled
    """The first step of ``stats._describe_stepwise`` for float32 ``x``: the scale and shift of its sample.

    Returns:
        (scale, shift), or (0, 0) where a value of the sample is not finite or the
        scale is beyond float32's exact range (the caller then describes ``x`` step by step).
    """
    n = x.size
    step = max(1, n // _SAMPLE)
    peak = 0.0
    for i in range(0, n, step):
        v = abs(np.float64(x[i]))
        if not v <= _FLOAT32_MAX:  # NaN or Inf
            return 0.0, 0.0
        peak = max(peak, v)
    scale = _scale_of(peak)
    if not _LOW_UNIT <= scale <= _HIGH_UNIT:
        return 0.0, 0.0
    return scale, _sample_shift(x, step, scale)


@_jit(False)
def large_finish(x, bins, quantiles, lo, hi, scale, s1, s2, shift):  # pragma: no cover - compiled
    """The steps of ``stats._describe_stepwise`` after the first pass, for all-finite float32 ``x``.

    With the same arithmetic: the check of the sample's scale against the range, the
    grid of ``grid.histogram_grid``, the thresholds of ``stats._outside``,
    ``histogram``, the percentiles of ``stats.quantiles_from_counts``, and the IQR
    count of ``stats._outside_from_counts`` (``outside`` where it cannot tell). The
    moments' sums are not computed here: reassociated float32 sums must come from
    kernels called from Python (see ``range_moments_distances``).

    Returns:
        One float64 row (``LARGE_FIELDS`` fields, the quantiles, the ``bins + 1``
        edges) and the int64 counts. Its status field is 0 where the row is complete,
        1 where the caller must describe ``x`` step by step (the sample misjudged the
        peak, or the grid needs float64).
    """
    nq = quantiles.size
    n = x.size
    out = np.zeros(LARGE_FIELDS + nq + bins + 1)
    top = _scale_of(max(-lo, hi))
    if not scale <= top <= scale * _SCALE_SLACK:  # the sample misjudged the peak
        out[0] = 1
        return out, np.zeros(bins, np.int64)
    first, width = _grid(lo, hi, bins)
    if abs(first) + bins >= _EXACT_FLOAT32 or not _LOW_UNIT <= width <= _HIGH_UNIT:
        out[0] = 1
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
    iqr = qs[4] - qs[2]
    fence_lo, fence_hi = _thresholds(qs[2] - 1.5 * iqr, qs[4] + 1.5 * iqr)
    outiqr = _outside_counted(counts, cum, first, width, lo, hi, np.float64(fence_lo), np.float64(fence_hi))
    if outiqr < 0:  # a fence falls in an occupied bin: count exactly
        outiqr = outside(x, fence_lo, fence_hi)
    out[1], out[2], out[3], out[4], out[5], out[6] = first, width, zeros, out3, out6, outiqr
    edges = out[LARGE_FIELDS + nq :]
    for i in range(bins + 1):  # (first_index + arange(bins + 1)) * width
        edges[i] = (first + np.float64(i)) * width
    return out, counts


_FLOAT32_MAX = float(np.finfo(np.float32).max)
_LOW_UNIT, _HIGH_UNIT = 2.0**-100, 2.0**100  # units (powers of two) that float32 arithmetic keeps exact
_SCALE_SLACK = 2.0**24  # as stats._SCALE_SLACK
_EXACT_FLOAT32 = 2**24
_EXACT_EDGE = 2.0**52


@_jit(False)
def _scale_of(peak):  # pragma: no cover - compiled
    """``stats._scale_of``: the power of two at or just above ``peak`` (1 for 0)."""
    return math.ldexp(1.0, min(math.frexp(peak)[1], 1023)) if peak > 0 else 1.0


@_jit(False)
def _sample_shift(x, step, scale):  # pragma: no cover - compiled
    """``stats._range_moments``' shift: numpy's float64 sum of ``x[::step] / scale`` over its size, in float32."""
    m = (x.size + step - 1) // step
    scaled = np.empty(m)
    s = np.float32(scale)
    for j in range(m):
        scaled[j] = np.float64(x[j * step] / s)  # divided in float32, as numpy divides the sample
    return np.float64(np.float32(_np_sum(scaled) / m))


@_jit(False)
def _pow2_at_least(x):  # pragma: no cover - compiled
    mantissa, exponent = math.frexp(x)
    return math.ldexp(1.0, exponent - 1) if mantissa == 0.5 else math.ldexp(1.0, exponent)


@_jit(False)
def _grid(lo, hi, bins):  # pragma: no cover - compiled
    """``grid.histogram_grid``'s first index and width, for a float32 range (its integers kept in floats)."""
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
    """``stats._outside`` for float32: ``below`` rounded up and ``above`` down to float32."""
    b, a = np.float32(below), np.float32(above)
    if np.float64(b) < below:
        b = np.nextafter(b, np.float32(np.inf))
    if np.float64(a) > above:
        a = np.nextafter(a, np.float32(-np.inf))
    return b, a


@_jit(False)
def _value_at(rank, counts, cum, first, width, bins):  # pragma: no cover - compiled
    """``stats.quantiles_from_counts``' value of the value at ``rank``."""
    b = min(np.searchsorted(cum, rank, side="right"), bins - 1)
    before = cum[b - 1] if b > 0 else 0
    inside = min(max((rank - before + 0.5) / max(counts[b], 1), 0.0), 1.0)
    return (first + b + inside) * width


@_jit(False)
def _outside_counted(counts, cum, first, width, lo, hi, below, above):  # pragma: no cover - compiled
    """``stats._outside_from_counts``, with -1 for its None."""
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

SMALL_FIELDS = 11
"""Per small tensor: mean, m2, m3, m4, norm, zeros, 3σ, 6σ and IQR outliers, min and max;
then the quantiles, then the histogram's edges."""


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
def _pairwise(a, lo, n):  # pragma: no cover - compiled
    """numpy's ``pairwise_sum`` of ``a[lo:lo + n]``: the same additions in the same order.

    numpy recurses (halves rounded down to a multiple of 8, blocks of at most 128);
    this walks the same tree with explicit stacks, because numba's on-disk cache
    crashed on reloading a recursive function.
    """
    if n <= 128:
        return _block_sum(a, lo, n)
    los = np.empty(64, np.int64)
    ns = np.empty(64, np.int64)
    stage = np.zeros(64, np.int64)
    vals = np.empty(64)
    top, vtop = 0, 0
    los[0], ns[0] = lo, n
    while top >= 0:
        m = ns[top]
        if m <= 128:
            vals[vtop] = _block_sum(a, los[top], m)
            vtop += 1
            top -= 1
            continue
        half = m // 2
        half -= half % 8
        if stage[top] == 0:  # first the left half
            stage[top] = 1
            los[top + 1], ns[top + 1], stage[top + 1] = los[top], half, 0
            top += 1
        elif stage[top] == 1:  # then the right half
            stage[top] = 2
            los[top + 1], ns[top + 1], stage[top + 1] = los[top] + half, m - half, 0
            top += 1
        else:  # left + right, as numpy adds them
            vals[vtop - 2] = vals[vtop - 2] + vals[vtop - 1]
            vtop -= 1
            top -= 1
    return vals[0]


@_jit(False)
def _np_sum(a):  # pragma: no cover - compiled
    """``numpy.add.reduce(a)`` for a 1-D float64 array: the identity 0.0 plus the pairwise sum."""
    return 0.0 + _pairwise(a, 0, a.size)


@_jit(False)
def describe_small(block, ordered, starts, sizes, firsts, widths, bins, quantiles):  # pragma: no cover - compiled
    """Exact statistics of each all-finite piece ``block[start:start + size]`` (float64), as numpy gives them.

    ``ordered`` holds each piece sorted (numpy's SIMD sort is some twenty times
    faster than numba's); ``firsts`` and ``widths`` give each piece's grid of ``bins``
    bins (``grid.histogram_grid``), whose edges are computed here as ``Grid.edges``
    computes them. Returns one float64 row per piece (``SMALL_FIELDS`` fields, the
    quantiles, the edges) and one int64 row of histogram counts. Every number is
    computed with the operations, in the order, of ``stats._describe_array``'s numpy
    code, so the two agree bit for bit.
    """
    nq = quantiles.size
    out = np.zeros((sizes.size, SMALL_FIELDS + nq + bins + 1))
    hist = np.zeros((sizes.size, bins), np.int64)
    for k in range(sizes.size):
        n = sizes[k]
        f = block[starts[k] : starts[k] + n]
        s = ordered[starts[k] : starts[k] + n]
        row = out[k]
        qs = np.empty(nq)
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
        iqr = qs[4] - qs[2]
        fence_lo, fence_hi = qs[2] - 1.5 * iqr, qs[4] + 1.5 * iqr
        edges = row[SMALL_FIELDS + nq :]
        for i in range(bins + 1):  # (first_index + arange(bins + 1)) * width
            edges[i] = (firsts[k] + np.float64(i)) * widths[k]
        below = np.searchsorted(s, edges)
        mean = _np_sum(f) / n
        d = f - mean
        d2 = d * d
        s1, s2 = _np_sum(d), _np_sum(d2)
        m3, m4 = _np_sum(d2 * d) / n, _np_sum(d2 * d2) / n
        std = math.sqrt(s2 / n)
        out3 = 0
        out6 = 0
        for i in range(n):
            a = abs(d[i])
            out3 += a > 3 * std
            out6 += a > 6 * std
        zeros = np.searchsorted(s, 0.0, side="right") - np.searchsorted(s, 0.0)
        outiqr = np.searchsorted(s, fence_lo) + n - np.searchsorted(s, fence_hi, side="right")
        row[0], row[1], row[2], row[3] = mean, s2 / n, m3, m4
        row[4] = math.sqrt(max(s2 + 2.0 * mean * s1 + n * mean * mean, 0.0))
        row[5], row[6], row[7], row[8] = zeros, out3, out6, outiqr
        row[9], row[10] = s[0], s[n - 1]
        row[SMALL_FIELDS : SMALL_FIELDS + nq] = qs
        for i in range(bins):
            hist[k, i] = below[i + 1] - below[i]
    return out, hist
