"""Large CPU tensors through the compiled kernels, and the counting both paths share.

``_describe_compiled`` describes one large CPU tensor (and a weight's update norms)
with ``kernels`` and ``kernels_describe``: a float32 tensor in three compiled calls
around its two passes, anything else (float64, NaN or Inf, a sample that missed the
peak) step by step in ``_describe_stepwise``. ``quantiles_from_counts`` interpolates
percentiles from a histogram; ``_outside`` rounds the IQR and σ thresholds toward the
compared values' dtype so that counts equal exact arithmetic; ``_outside_from_counts``
reads a fence's count off the histogram where no occupied bin straddles it. The
distributed path (``split``) uses the same functions, so every path counts alike.
See ``describe`` for the maths.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from itertools import accumulate

import numpy as np
import torch

from weightreport.stats import kernels, kernels_describe
from weightreport.stats.fields import (
    QUANTILE_FRACTIONS,
    Description,
    empty_description,
    from_shifted_sums,
    iqr_fences,
)
from weightreport.stats.grid import EXACT_INT, Grid, histogram_grid
from weightreport.stats.kernels_describe import (
    _FLOAT32_MAX,
    _SCALE_SLACK,
    L_OUT3,
    L_OUT6,
    L_OUTIQR,
    L_STATUS,
    L_ZEROS,
    LARGE_FIELDS,
    RUN,
    SAMPLE,
)

_QF = np.array(QUANTILE_FRACTIONS)


def quantiles_from_counts(counts: np.ndarray | list[int], grid: Grid, n: int) -> np.ndarray:
    """Percentiles interpolated from histogram counts, each within one bin of exact.

    The values of a bin are taken as spread evenly over it; rank positions are
    numpy's linear ones, ``q * (n - 1)``. Plain Python over the bins' cumulative
    counts: for seven quantiles that is several times faster than numpy's calls.
    """
    c = counts if isinstance(counts, list) else [int(v) for v in counts]
    cum = list(accumulate(c))
    last = grid.bins - 1

    def value_at(rank: int) -> float:
        b = min(bisect_right(cum, rank), last)
        before = cum[b - 1] if b > 0 else 0
        inside = min(max((rank - before + 0.5) / max(c[b], 1), 0.0), 1.0)
        return (grid.first_index + b + inside) * grid.width

    out = []
    for q in QUANTILE_FRACTIONS:
        pos = q * (n - 1)
        below = math.floor(pos)
        lo_v, hi_v = value_at(below), value_at(math.ceil(pos))
        out.append(lo_v + (hi_v - lo_v) * (pos - below))
    return np.array(out)


# --- large tensors: on their device -------------------------------------------------------


def _describe_compiled(x: torch.Tensor, bins: int,
                       distances: tuple[np.ndarray, np.ndarray | None] | None = None,
                       ) -> tuple[Description, np.ndarray | None]:
    """One large CPU tensor described with the compiled kernels, and its update norms.

    A float32 tensor takes three kernel calls, each without the GIL: the sample's
    scale and shift, the range and moments (with the norms), and the rest
    (``kernels_describe.large_finish``). The rare tensor they decline (NaN or Inf, a scale or
    grid beyond float32's exact range) and other dtypes take ``_describe_stepwise``,
    whose steps they repeat with the same arithmetic.

    Args:
        x: a 1-D contiguous CPU tensor.
        bins: histogram bins.
        distances: a float32 tensor's previous values and initial values (or None),
            as float32 arrays: its update norms are fused into the first pass.

    Returns:
        The description, and where ``distances`` is given ``‖x − prev‖², ‖prev‖²,
        ‖x − init‖²`` (float64; NaN for a missing ``init``), after which ``prev``
        holds ``x``.
    """
    a = x.numpy()
    if a.dtype != np.float32:
        return _describe_stepwise(x, bins), None
    norms = None
    scale, shift = kernels_describe.large_start(a)
    if distances is not None:
        prev, init = distances
        if scale:
            lo, hi, *sums, d1, d2, d3 = kernels.range_moments_distances(
                a, a.view(np.int32), 1.0 / scale, shift, prev, a if init is None else init)
            norms = np.array([d1, d2, np.nan if init is None else d3])
        else:
            norms = kernels.update_squares(a, prev, init)
    elif scale:
        lo, hi, *sums = kernels.range_moments(a, a.view(np.int32), 1.0 / scale, shift)
    if not scale or not (math.isfinite(lo) and math.isfinite(hi)):  # NaN, Inf, or a scale far from 1
        return _describe_stepwise(x, bins), norms
    row, counts = kernels_describe.large_finish(a, bins, _QF, lo, hi, scale, sums[0], sums[1], shift)
    if row[L_STATUS]:
        return _describe_stepwise(x, bins), norms
    values = row.tolist()
    n = a.size
    edges_at = LARGE_FIELDS + _QF.size
    return from_shifted_sums((n, 0, 0), n, shift, sums, scale, lo, hi, values[LARGE_FIELDS:edges_at],
                             values[edges_at:], counts.tolist(), values[L_ZEROS],
                             (values[L_OUT3], values[L_OUT6], values[L_OUTIQR])), norms


def _describe_stepwise(x: torch.Tensor, bins: int) -> Description:
    """One large CPU tensor described with the compiled kernels, step by step in Python.

    Two passes, three where it must: range and moments together (the scale and shift
    come from a sample); the histogram with the 3σ, 6σ and zero counts, whose
    thresholds the moments give; and the IQR fences, which need the histogram's
    percentiles, counted from the histogram alone unless a fence falls in an
    occupied bin. Where NaN or Inf occur, the finite values are compacted and the
    first pass repeated.
    """
    a = x.numpy()
    numel = a.size
    head = (numel, 0, 0)
    peak = float(np.abs(sample_of(a)).max())
    first = _range_moments(a, peak) if math.isfinite(peak) else None
    if first is None:  # rare: compact the finite values
        nan_count = int(np.isnan(a).sum())
        a = a[np.isfinite(a)]
        head = (numel, nan_count, numel - nan_count - a.size)
        if a.size == 0:
            return empty_description(*head, bins)
        first = _range_moments(a, float(np.abs(sample_of(a)).max()))
    lo, hi, scale, shift, sums = first
    if not scale <= _scale_of(max(-lo, hi)) <= scale * _SCALE_SLACK:  # the sample misjudged the peak
        _, _, scale, shift, sums = _range_moments(a, max(-lo, hi))
    n = a.size
    grid = histogram_grid(lo, hi, bins)
    delta = sums[0] / n
    mean = (shift + delta) * scale
    sigma = math.sqrt(max(sums[1] / n - delta * delta, 0.0)) * scale
    h, pre = _exact_for(a, grid.width, abs(grid.first_index) + grid.bins >= EXACT_INT)
    below3, above3 = _outside(mean - 3 * sigma, mean + 3 * sigma, h)
    below6, above6 = _outside(mean - 6 * sigma, mean + 6 * sigma, h)
    counts, out3, out6, zeros = kernels.histogram(h, 1.0 / (grid.width * pre), grid.first_index, grid.bins,
                                                  below3 * pre, above3 * pre, below6 * pre, above6 * pre)
    counts = counts.tolist()
    qs = np.clip(quantiles_from_counts(counts, grid, n), lo, hi)
    fence_lo, fence_hi = iqr_fences(qs)
    below, above = _outside(fence_lo, fence_hi, a)
    outiqr = _outside_from_counts(counts, grid, lo, hi, float(below), float(above))
    if outiqr is None:  # a fence falls in an occupied bin: count exactly
        outiqr = kernels.outside(a, below, above)
    return from_shifted_sums(head, n, shift, sums, scale, lo, hi, qs, grid.edges, counts,
                             zeros, (out3, out6, outiqr))


def sample_of(a: np.ndarray) -> np.ndarray:
    """The sample that gives a large tensor's scale and shift: at least ``SAMPLE`` values, in runs.

    Every ``step``-th run of ``RUN`` consecutive values, the last partial run left out;
    the whole array where it has fewer than ``RUN`` values. Runs, not single values at
    a stride: right after a training step a value one per cache line costs a miss each.
    On the reference CNN the sample took 0.9 ms of the snapshot's kernel time as 4,096
    single values, 0.6 ms as 64 runs of 64, and ``wr.step()`` after a real step took
    0.1–0.25 ms less (of 8.7 ms). ``kernels_describe.large_start`` takes the same values,
    in this order.
    """
    runs = a.size // RUN
    if runs == 0:
        return a
    return a[: runs * RUN].reshape(runs, RUN)[:: max(1, runs // (SAMPLE // RUN))].reshape(-1)


_KEYS = {np.dtype(np.float32): np.int32, np.dtype(np.float64): np.int64}


def _scale_of(peak: float) -> float:
    """The power of two at or just above ``peak`` (1 for 0): dividing by it is exact."""
    return math.ldexp(1.0, min(math.frexp(peak)[1], 1023)) if peak > 0 else 1.0


def _exact_for(a: np.ndarray, unit: float, wide: bool = False) -> tuple[np.ndarray, float]:
    """``a`` ready for exact arithmetic in units of the power of two ``unit``: ``(b, pre)``, ``b = a * pre``.

    float32 values are widened where ``unit`` is far from 1 (or ``wide``); float64
    values whose ``1 / unit`` would overflow (subnormal units) are premultiplied by
    2**600. Both exact; both rare.
    """
    b, pre = a, 1.0
    if a.dtype == np.float32 and (wide or not 2.0**-100 <= unit <= 2.0**100):
        b = a.astype(np.float64)
    if not math.isfinite(1.0 / unit):
        b, pre = b * 2.0**600, 2.0**600
    return b, pre


def _range_moments(a: np.ndarray, peak: float) -> tuple[float, float, float, float, tuple] | None:
    """Min, max, scale, shift and shifted sums ``S1..S4`` in one pass; None where a value is not finite.

    The scale is the power of two of ``peak`` (a sample's, first); the shift, in
    units of the scale, is the sample's mean rounded to the array's dtype, as the
    kernel subtracts it in that dtype.
    """
    scale = _scale_of(peak)
    b, pre = _exact_for(a, scale)
    sample = sample_of(b)
    shift = float(b.dtype.type(np.sum(sample / (scale * pre), dtype=np.float64) / sample.size))  # no overflow
    lo, hi, *sums = kernels.range_moments(b, b.view(_KEYS[b.dtype]), 1.0 / (scale * pre), shift)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return lo / pre, hi / pre, scale, shift, sums


def _outside_from_counts(counts: list[int], grid: Grid, lo: float, hi: float,
                         below: float, above: float) -> int | None:
    """The count of ``v < below or v > above`` from the histogram alone, or None where it cannot tell.

    Bin edges are exact, so every value of a bin lies on one side of a threshold,
    except in the bin that holds the threshold: None where that bin is occupied (and
    the threshold is not its lower edge). ``below <= above`` or, rounded apart by
    ``_outside``, with no value of the dtype between them: no value counts twice.
    """
    total = 0
    if below > hi:
        total += sum(counts)
    elif below > lo:
        k = int(math.floor(below / grid.width) - grid.first_index)
        if counts[k] and (grid.first_index + k) * grid.width != below:
            return None
        total += sum(counts[:k])
    if above < lo:
        total += sum(counts)
    elif above < hi:
        k = int(math.floor(above / grid.width) - grid.first_index)
        if counts[k]:
            return None
        total += sum(counts[k + 1 :])
    return total


def _outside(below, above, like):
    """Thresholds for counting ``v < below or v > above`` exactly in ``like``'s dtype.

    Comparing a float32 value with a float64 threshold rounded to nearest can go
    either way at the rounding boundary. Rounding ``below`` up and ``above`` down to
    the comparison dtype gives exactly the answer of comparing in real arithmetic.
    ``like`` is the float32 or float64 array or tensor to be compared.
    """
    below, above = float(below), float(above)
    if like.dtype == (np.float64 if isinstance(like, np.ndarray) else torch.float64):
        return np.float64(below), np.float64(above)
    if abs(below) < _FLOAT32_MAX and abs(above) < _FLOAT32_MAX:  # no overflow (nor errstate's cost)
        b, a = np.float32(below), np.float32(above)
    else:
        with np.errstate(over="ignore"):  # beyond float32's range a threshold becomes ±inf, as it should
            b, a = np.float32(below), np.float32(above)
    if float(b) < below:  # compare as float64: numpy would round a Python float to float32
        b = np.nextafter(b, np.float32(np.inf))
    if float(a) > above:
        a = np.nextafter(a, np.float32(-np.inf))
    return b, a
