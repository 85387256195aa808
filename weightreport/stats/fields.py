"""What ``describe`` says about one tensor, and the helpers every path fills it with."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from weightreport.runfmt.schema import QUANTILES


@dataclass(frozen=True)
class Description:
    """Everything ``describe`` knows about one tensor.

    Attributes:
        stats: the statistics columns of the ``stats`` table (see docs/format.md).
        edges: the histogram's ``bins + 1`` edges.
        counts: the histogram's ``bins`` int64 counts of finite values.
    """

    stats: dict
    edges: list[float]
    counts: list[int]


def moment_columns(mean: float, m2: float, m3: float, m4: float) -> dict:
    """Mean, variance, std, skew and excess kurtosis from central moments (scipy's defaults)."""
    if m2 > 0.0:
        skew, kurt = m3 / m2**1.5, m4 / (m2 * m2) - 3.0
    else:
        skew = kurt = math.nan
    return {"mean": mean, "var": m2, "std": math.sqrt(m2), "skew": skew, "kurtosis": kurt}


_PERCENTILE_KEYS = tuple(f"p{q}" for q in QUANTILES)


def percentile_columns(qs: Sequence[float], lo: float, hi: float) -> dict:
    """The ``p1 .. p99`` columns, each clamped to the finite range ``[lo, hi]``."""
    qs = [float(v) for v in qs]
    if not all(lo <= v <= hi for v in qs):  # rarely: interpolation strayed past an end (or NaN)
        qs = [min(max(v, lo), hi) for v in qs]
    return dict(zip(_PERCENTILE_KEYS, qs, strict=True))


def empty_description(head: dict, bins: int) -> Description:
    """A description for a tensor with no finite values."""
    nan = math.nan
    stats = {
        **head, "mean": nan, "std": nan, "var": nan, "min": nan, "max": nan, "skew": nan,
        "kurtosis": nan, "norm": nan, "zeros": 0, **{f"p{q}": nan for q in QUANTILES},
        "quantiles_exact": True, "outliers_3std": 0, "outliers_6std": 0, "outliers_iqr": 0,
    }
    edges = [-0.5 + i / bins for i in range(bins + 1)]
    return Description(stats, edges, [0] * bins)


def from_shifted_sums(head: dict, n: int, shift: float, sums: Sequence[float], scale: float,
                      lo: float, hi: float, quantiles: Sequence[float], edges: list[float],
                      counts: list[int], zeros: int, outliers: Sequence[int]) -> Description:
    """A large tensor's description from the sums of the powers of ``x / scale - shift``.

    Args:
        head: the numel, count, nan_count and inf_count columns.
        n: the number of finite values.
        shift: the shift, in units of ``scale`` (a power of two).
        sums: ``S1..S4``, the sums of the first four powers of ``x / scale - shift``.
        lo, hi: the finite range.
        quantiles: percentiles interpolated from the histogram (not exact).
        edges, counts: the histogram.
        zeros: values exactly 0.
        outliers: values beyond 3σ, beyond 6σ, and outside the IQR fences.
    """
    s1, s2, s3, s4 = sums
    delta = s1 / n
    m2 = max(s2 / n - delta * delta, 0.0)
    m3 = s3 / n - 3 * delta * s2 / n + 2 * delta**3
    m4 = s4 / n - 4 * delta * s3 / n + 6 * delta**2 * s2 / n - 3 * delta**4
    moments = moment_columns((shift + delta) * scale, m2 * scale * scale, m3, m4)  # inf, not OverflowError
    if m2 > 0.0:  # the standardised moments come from the scaled sums directly
        moments["skew"], moments["kurtosis"] = m3 / m2**1.5, m4 / (m2 * m2) - 3.0
    out3, out6, outiqr = outliers
    stats = {
        **head, **moments, "min": lo, "max": hi,
        "norm": scale * math.sqrt(max(s2 + 2 * shift * s1 + n * shift * shift, 0.0)),
        "zeros": int(zeros), **percentile_columns(quantiles, lo, hi), "quantiles_exact": False,
        "outliers_3std": int(out3), "outliers_6std": int(out6), "outliers_iqr": int(outiqr),
    }
    if sum(counts) != n:
        msg = f"internal error: histogram holds {sum(counts)} of {n} values"
        raise AssertionError(msg)
    return Description(stats, edges, counts)
