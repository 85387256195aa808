"""What ``describe`` says about one tensor, and the helpers every path fills it with."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from weightreport.schema import QUANTILES


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


def percentile_columns(qs: Sequence[float], lo: float, hi: float) -> dict:
    """The ``p1 .. p99`` columns, each clamped to the finite range ``[lo, hi]``."""
    return {f"p{q}": min(max(float(v), lo), hi) for q, v in zip(QUANTILES, qs, strict=True)}


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
