"""The summary fields of one tensor, by name, and the one function that derives them.

``SUMMARY`` is the ordered definition of the per-tensor columns that every backend
fills (the exact host path, the compiled CPU path, torch ops and the split/merge
across ranks) and that the ``stats`` table stores, in this order, between its
``kind`` column and ``update_ratio`` (``tests/test_stats_fields.py`` holds the two
together). Each field says, as torchmetrics' ``add_state(..., dist_reduce_fx=...)``
does, how the ranks' values of a split tensor combine into the whole's.

Every backend reduces a tensor to ``Moments`` (count, mean and central moments in
units of a power-of-two scale, and the sum of squares) and calls ``summary``, the one
place where the moment columns (mean, std, var, skew, kurtosis, norm) are derived.
``summary_columns`` is ``summary`` for many tensors at once, on arrays, with the same
operations in the same order (``tests/test_stats_columns.py`` holds the two together).
This module imports neither torch nor numba.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from weightreport.runfmt.schema import QUANTILES

# How the ranks' values of a field combine (see ``split.py``).
SUM = "sum"
"""Added over the ranks."""
MIN = "min"
"""The smallest of the ranks' values."""
MAX = "max"
"""The largest of the ranks' values."""
MOMENTS = "moments"
"""Derived from the central moments merged pairwise in rank order (Chan et al.; Pébay)."""
HISTOGRAM = "histogram"
"""Read off the histogram summed over the ranks on the whole's grid."""
RECOUNT = "recount"
"""Counted on every rank against thresholds of the merged numbers, then added (the next exchange)."""
LOCAL = "local"
"""Not merged: it describes the rank's own piece (its grid, say)."""


@dataclass(frozen=True)
class Field:
    """One named number of a tensor's summary (or of a backend's row).

    Attributes:
        name: the column's (or the row slot's) name.
        kind: ``int``, ``float`` or ``bool``: the Python type of the value.
        merge: how the ranks' values combine (``SUM``, ``MIN``, ``MAX``, ``MOMENTS``,
            ``HISTOGRAM``, ``RECOUNT`` or ``LOCAL``).
        empty: the value for a tensor without finite values.
    """

    name: str
    kind: type
    merge: str
    empty: object = math.nan


QUANTILE_FRACTIONS = tuple(q / 100 for q in QUANTILES)
"""``QUANTILES`` as fractions, divided as ``numpy.percentile`` divides them."""
Q1 = QUANTILES.index(25)
"""The position of the first quartile in ``QUANTILES`` (and in every list of percentiles)."""
Q3 = QUANTILES.index(75)
"""The position of the third quartile."""
PERCENTILE_KEYS = tuple(f"p{q}" for q in QUANTILES)

SUMMARY: tuple[Field, ...] = (
    Field("numel", int, SUM, 0),
    Field("count", int, SUM, 0),
    Field("nan_count", int, SUM, 0),
    Field("inf_count", int, SUM, 0),
    Field("mean", float, MOMENTS),
    Field("std", float, MOMENTS),
    Field("var", float, MOMENTS),
    Field("min", float, MIN),
    Field("max", float, MAX),
    Field("skew", float, MOMENTS),
    Field("kurtosis", float, MOMENTS),
    Field("norm", float, MOMENTS),
    Field("zeros", int, SUM, 0),
    *(Field(key, float, HISTOGRAM) for key in PERCENTILE_KEYS),
    Field("quantiles_exact", bool, HISTOGRAM, True),
    Field("outliers_3std", int, RECOUNT, 0),
    Field("outliers_6std", int, RECOUNT, 0),
    Field("outliers_iqr", int, RECOUNT, 0),
)
"""The per-tensor summary columns, in the ``stats`` table's order."""

NAMES = tuple(f.name for f in SUMMARY)
"""The summary columns' names, in order."""


def positions(fields: Iterable[Field | str]) -> dict[str, int]:
    """Name → position in a row laid out as ``fields`` (names or ``Field``s), for index constants."""
    names = [f if isinstance(f, str) else f.name for f in fields]
    if len(set(names)) != len(names):
        msg = f"a row layout names a slot twice: {names}"
        raise ValueError(msg)
    return {name: i for i, name in enumerate(names)}


@dataclass(frozen=True)
class Description:
    """Everything ``describe`` knows about one tensor.

    Attributes:
        stats: the summary columns (``NAMES``, in order) of the ``stats`` table.
        edges: the histogram's ``bins + 1`` edges.
        counts: the histogram's ``bins`` int64 counts of finite values.
    """

    stats: dict
    edges: list[float]
    counts: list[int]


class Moments(NamedTuple):
    """A tensor's finite values reduced to what the moment columns derive from.

    Attributes:
        n: the number of finite values (> 0).
        mean: their mean, in units of ``scale``.
        m2, m3, m4: the central moments (means of powers of the deviations), in
            units of ``scale`` to the power.
        norm2: the sum of their squares, in units of ``scale`` squared.
        scale: a power of two (exact to multiply by).
    """

    n: int | float
    mean: float
    m2: float
    m3: float
    m4: float
    norm2: float
    scale: float = 1.0


def norm_squared(n: float, centre: float, s1: float, s2: float) -> float:
    """``Σx²`` from the sums ``s1 = Σ(x − c)`` and ``s2 = Σ(x − c)²`` about a centre ``c``."""
    return s2 + 2.0 * centre * s1 + n * centre * centre


def shifted_moments(n: int, shift: float, sums: Sequence[float], scale: float) -> Moments:
    """``Moments`` from ``S1..S4``, the sums of the first four powers of ``x / scale - shift``."""
    s1, s2, s3, s4 = sums
    delta = s1 / n
    m2 = max(s2 / n - delta * delta, 0.0)
    m3 = s3 / n - 3 * delta * s2 / n + 2 * delta**3
    m4 = s4 / n - 4 * delta * s3 / n + 6 * delta**2 * s2 / n - 3 * delta**4
    return Moments(n, shift + delta, m2, m3, m4, norm_squared(n, shift, s1, s2), scale)


def shape(m2: float, m3: float, m4: float) -> tuple[float, float]:
    """Skew and excess kurtosis (scipy's defaults) from the central moments, ``m2 > 0``.

    ``m3 / m2**1.5`` and ``m4 / m2**2 - 3``; where ``m2``'s power is beyond float64's
    range (a float64 tensor near either end of it), the same ratios divided step by
    step, rather than an OverflowError or a division by zero.
    """
    try:
        skew = m3 / m2**1.5
    except (OverflowError, ZeroDivisionError):
        skew = m3 / m2 / math.sqrt(m2)
    square = m2 * m2
    if not _TINY <= square < math.inf:
        return skew, m4 / m2 / m2 - 3.0
    return skew, m4 / square - 3.0


_TINY = sys.float_info.min
"""The smallest normal float64: below it a square has lost precision (or become 0)."""


def summary(numel: int, nan_count: int, inf_count: int, m: Moments, lo: float, hi: float,
            zeros: int, quantiles: Sequence[float], exact: bool, outliers: Sequence[int],
            root_first: bool = False) -> dict:
    """The summary columns (``NAMES``, in order) of a tensor with finite values.

    The one place where the moment columns are derived: the mean, variance and norm
    are scaled back from ``m``'s units; skew and excess kurtosis (scipy's defaults)
    do not depend on the scale and come from the scaled moments, as does the test
    ``m2 > 0`` (NaN for a constant tensor).

    Args:
        numel, nan_count, inf_count: the element counts.
        m: the finite values' moments.
        lo, hi: the finite range.
        zeros: values exactly 0.
        quantiles: the percentiles at ``QUANTILES`` (clamped here to ``[lo, hi]``).
        exact: whether the percentiles are exact (else interpolated from the histogram).
        outliers: values beyond 3σ, beyond 6σ, and outside the IQR fences.
        root_first: std as ``sqrt(m2) * scale`` (the split path's) rather than
            ``sqrt(var)``; the two agree wherever ``var`` is a normal float64 and
            differ only where it overflows or underflows.
    """
    m2, scale = m.m2, m.scale
    var = m2 * scale * scale  # inf, not OverflowError, where float64 cannot hold it
    skew, kurtosis = shape(m2, m.m3, m.m4) if m2 > 0.0 else (math.nan, math.nan)
    out3, out6, outiqr = outliers
    return {
        "numel": numel, "count": numel, "nan_count": nan_count, "inf_count": inf_count,
        "mean": m.mean * scale, "std": math.sqrt(m2) * scale if root_first else math.sqrt(var),
        "var": var, "min": lo, "max": hi, "skew": skew, "kurtosis": kurtosis,
        "norm": scale * math.sqrt(max(m.norm2, 0.0)), "zeros": int(zeros),
        **percentile_columns(quantiles, lo, hi), "quantiles_exact": exact,
        "outliers_3std": int(out3), "outliers_6std": int(out6), "outliers_iqr": int(outiqr),
    }


def summary_columns(numel: np.ndarray, m: Moments, lo: np.ndarray, hi: np.ndarray, zeros: np.ndarray,
                    quantiles: np.ndarray, outliers: Sequence[np.ndarray],
                    shapes: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    """``summary`` of many all-finite tensors with exact percentiles, as columns (``NAMES``, in order).

    Each value is what ``summary`` gives the same tensor, bit for bit: the same float64
    operations in the same order, and ``max``'s and ``min``'s choice at ties kept (the first
    argument unless the second is strictly beyond it).

    Args:
        numel: the element counts (no NaN or Inf among them).
        m: the moments, each field an array (``scale`` a number or an array).
        lo, hi: the ranges.
        zeros: values exactly 0.
        quantiles: one row of percentiles at ``QUANTILES`` per tensor.
        outliers: values beyond 3σ, beyond 6σ, and outside the IQR fences.
        shapes: skew and kurtosis, as ``shape`` gives them (NaN where ``m.m2`` is 0), taken
            per tensor where the moments are (numpy's SIMD power differs from the C library's
            in the last bit; ``kernels_describe._shape``).
    """
    k = len(numel)
    m2, scale = m.m2, m.scale
    var = m2 * scale * scale
    skew, kurtosis = shapes
    norm2 = m.norm2
    qs = np.where(lo[:, None] > quantiles, lo[:, None], quantiles)  # percentile_columns' max, then min
    qs = np.where(hi[:, None] < qs, hi[:, None], qs)
    numel = np.asarray(numel, np.int64)
    zero_counts = np.zeros(k, np.int64)
    out3, out6, outiqr = outliers
    return {
        "numel": numel, "count": numel, "nan_count": zero_counts, "inf_count": zero_counts,
        "mean": m.mean * scale, "std": np.sqrt(var), "var": var, "min": lo, "max": hi,
        "skew": skew, "kurtosis": kurtosis, "norm": scale * np.sqrt(np.where(norm2 < 0.0, 0.0, norm2)),
        "zeros": np.asarray(zeros, np.int64),
        **{key: qs[:, j] for j, key in enumerate(PERCENTILE_KEYS)},
        "quantiles_exact": np.ones(k, bool),
        "outliers_3std": np.asarray(out3, np.int64), "outliers_6std": np.asarray(out6, np.int64),
        "outliers_iqr": np.asarray(outiqr, np.int64),
    }


def percentile_columns(qs: Sequence[float], lo: float, hi: float) -> dict:
    """The ``p1 .. p99`` columns, each clamped to the finite range ``[lo, hi]``."""
    qs = [float(v) for v in qs]
    if not all(lo <= v <= hi for v in qs):  # rarely: interpolation strayed past an end (or NaN)
        qs = [min(max(v, lo), hi) for v in qs]
    return dict(zip(PERCENTILE_KEYS, qs, strict=True))


def iqr_fences(qs):
    """Tukey's fences from percentiles at ``QUANTILES`` (floats, arrays or tensors)."""
    iqr = qs[Q3] - qs[Q1]
    return qs[Q1] - 1.5 * iqr, qs[Q3] + 1.5 * iqr


_EMPTY = {f.name: f.empty for f in SUMMARY}


def empty_description(numel: int, nan_count: int, inf_count: int, bins: int) -> Description:
    """A description for a tensor with no finite values: each field's ``empty`` value."""
    stats = {**_EMPTY, "numel": numel, "count": numel, "nan_count": nan_count, "inf_count": inf_count}
    edges = [-0.5 + i / bins for i in range(bins + 1)]
    return Description(stats, edges, [0] * bins)


def from_shifted_sums(head: tuple[int, int, int], n: int, shift: float, sums: Sequence[float],
                      scale: float, lo: float, hi: float, quantiles: Sequence[float],
                      edges: list[float], counts: list[int], zeros: int,
                      outliers: Sequence[int]) -> Description:
    """A large tensor's description from the sums of the powers of ``x / scale - shift``.

    Args:
        head: numel, nan_count and inf_count.
        n: the number of finite values.
        shift: the shift, in units of ``scale`` (a power of two).
        sums: ``S1..S4``, the sums of the first four powers of ``x / scale - shift``.
        scale: the power of two.
        lo, hi: the finite range.
        quantiles: percentiles interpolated from the histogram (not exact).
        edges, counts: the histogram.
        zeros: values exactly 0.
        outliers: values beyond 3σ, beyond 6σ, and outside the IQR fences.
    """
    if sum(counts) != n:
        msg = f"internal error: histogram holds {sum(counts)} of {n} values"
        raise AssertionError(msg)
    stats = summary(*head, shifted_moments(n, shift, sums, scale), lo, hi, zeros, quantiles, False,
                    outliers)
    return Description(stats, edges, counts)


def partial_row(known: dict) -> dict:
    """The summary columns in order from what a source can tell; None (null) for the rest.

    For summaries that cannot recover every column (TensorBoard's histograms, say).
    """
    unknown = known.keys() - _EMPTY.keys()
    if unknown:
        msg = f"not summary columns: {sorted(unknown)}"
        raise ValueError(msg)
    return {name: known.get(name) for name in NAMES}


def sorted_percentiles(s) -> list[float]:
    """``numpy.percentile(s, QUANTILES)`` of sorted values, with numpy's own arithmetic.

    numpy's "linear" method: virtual index ``(n - 1) * q``, neighbours at its floor
    and the next index (both the last one at the top), then numpy's two-sided lerp.
    Python floats are IEEE doubles, so seven quantiles cost less in plain Python.
    ``tests/test_stats.py`` and ``tests/test_inspect_describe.py`` check the equality bit for bit.
    """
    n = s.size
    out = []
    for q in QUANTILE_FRACTIONS:
        virtual = (n - 1) * q
        if virtual >= n - 1:  # numpy takes the last value on both sides
            out.append(float(s[-1]))
            continue
        prev = math.floor(virtual)
        a, b = float(s[prev]), float(s[prev + 1])
        gamma = virtual - prev
        diff = b - a
        out.append(b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma)
    return out
