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
``kernels_describe.large_start`` and ``large_finish`` (with the small tensors'
``describe_small``, registered here too); the float32 block sums (``range_moments``,
``distances``, and their fusion) are always called from Python, because LLVM may
vectorise a reassociated sum differently once inlined into another kernel, and
round it differently. ``histogram`` is a scatter and cannot vectorise
its counting; it spreads consecutive elements over four sub-histograms so that
runs of equal bins do not stall on one counter.

Each kernel runs on the thread that calls it, and releases the GIL. Callers split
whole tensors between the calling thread and one ``helper()`` thread (``describe``,
``snapshot``). Splitting single arrays and numba's ``parallel=True`` loops were both
slower on two cores: the parallel loops lost their vectorisation. A parallel torch
op leaves its OpenMP workers spinning for milliseconds, so the snapshot path keeps
torch's parallel ops away from the kernels, and ``Batch`` releases the workers that
the training step left spinning (``openmp.rest_workers``) before the helper starts.

``AVAILABLE`` is False when numba is not installed; ``describe`` then uses torch ops on
the CPU too, as it does on accelerators. Set ``WEIGHTREPORT_NO_NUMBA=1`` to force
that path. numba is imported at the first kernel call, which compiles (about a
second) and caches the machine code beside this file, or in ``NUMBA_CACHE_DIR``:
reading runs and building reports never load it. ``compile_seconds`` says how long this
process has spent compiling (nothing, once the cache holds every kernel).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from weightreport.stats import compile_clock

AVAILABLE = importlib.util.find_spec("numba") is not None and not os.environ.get("WEIGHTREPORT_NO_NUMBA")
"""Whether the compiled kernels can be used. numba itself is imported, and the kernels
compiled, at the first kernel call: reading runs and building reports never load it."""

MAX_BINS = 65535
"""``histogram`` keeps bin indices in 16 bits."""

_pool: ThreadPoolExecutor | None = None
_compiled_ids: set[int] = set()  # ids of the dispatchers made here, whose compiles ``compile_clock`` times (a set,
# not a view of ``_dispatchers``: another thread may compile while ``_compile`` adds to it)


def compile_seconds() -> float:
    """Seconds this process has spent compiling these kernels; 0 before the first kernel call,
    or where numba's cache held them all (loading from it is not compiling)."""
    return compile_clock.seconds()


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


_REGISTRY: list[tuple[object, object, object]] = []
"""(function, fastmath, its first-call stand-in) of every kernel, in this module and in
``kernels_describe``."""
_dispatchers: dict[int, object] = {}  # id of a stand-in → its compiled dispatcher
_compile_lock = threading.Lock()


def _jit(fastmath):
    """Register a kernel; it is compiled, with all the others, at the first call of any."""

    def wrap(fn):
        @functools.wraps(fn)
        def first_call(*args):
            _compile()
            return _dispatchers[id(first_call)](*args)

        _REGISTRY.append((fn, fastmath, first_call))
        return first_call

    return wrap


def _compile() -> None:
    """Import numba and put every registered kernel's compiled dispatcher in place of its stand-in.

    All at once, in every module that defines kernels (also where one imported
    another's), so that kernels calling kernels see compiled callees. numba compiles
    each on its first call and caches it on disk (beside its module, or in
    ``NUMBA_CACHE_DIR``); where no cache directory is writable, each process compiles.
    """
    with _compile_lock:
        if len(_dispatchers) == len(_REGISTRY):
            return
        import numba

        compile_clock.watch(_compiled_ids)

        for fn, fastmath, stand_in in _REGISTRY:
            if id(stand_in) in _dispatchers:
                continue
            try:
                _dispatchers[id(stand_in)] = numba.njit(cache=True, fastmath=fastmath, nogil=True)(fn)
            except RuntimeError:  # no writable cache directory
                _dispatchers[id(stand_in)] = numba.njit(fastmath=fastmath, nogil=True)(fn)
            _compiled_ids.add(id(_dispatchers[id(stand_in)]))
        modules = {id(fn.__globals__): fn.__globals__ for fn, _, _ in _REGISTRY}
        for namespace in modules.values():
            for name, value in list(namespace.items()):
                if callable(value) and id(value) in _dispatchers:
                    namespace[name] = _dispatchers[id(value)]


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
    that dtype gives the answer exact arithmetic would (see ``compiled._outside``):
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


def update_squares(w, prev, init):
    """``distances(w, prev, init)`` as float64 ``[‖w − prev‖², ‖prev‖², ‖w − init‖²]``, then prev := w.

    ``init`` may be None (the initial values are unknown): the last square is NaN.
    A plain function around the compiled kernel, for its callers in Python.
    """
    d_prev, prev_sq, d_init = distances(w, prev, w if init is None else init)
    return np.array([d_prev, prev_sq, np.nan if init is None else d_init])

