"""TensorBoard histogram buckets → weightreport histograms and stats rows.

Histogram summaries carry min, max, num, sum and sum of squares, so count, mean,
variance, std, min, max and norm come out exact. Skew, kurtosis, zeros and the outlier
counts cannot be recovered and are left empty (null; the outliers finding skips them);
percentiles are interpolated from the buckets (``quantiles_exact`` false). Rows are laid
out by the collector's own summary fields (``stats.fields.partial_row``).
"""

from __future__ import annotations

import math

import numpy as np

from weightreport.runfmt.schema import QUANTILES
from weightreport.stats.fields import PERCENTILE_KEYS, partial_row

_DBL_MAX = 1.0e300  # TensorFlow's outer bucket limits are ±DBL_MAX


def bucket_histogram(limits: list[float], counts: list[float], lo: float, hi: float):
    """Edges and integer counts from TensorBoard buckets (right limits, first open-ended).

    Returns:
        (edges, counts) with ``len(edges) == len(counts) + 1``.
    """
    limits = [float(v) for v in limits]
    counts = [round(float(c)) for c in counts]
    if counts and counts[0] == 0 and len(limits) > 1:
        edges, counts = limits, counts[1:]
    else:
        edges = [min(lo, limits[0]) if limits else lo, *limits]
    if edges[-1] >= _DBL_MAX:
        edges[-1] = max(hi, edges[-2]) if len(edges) > 1 else hi
    if edges[0] <= -_DBL_MAX:
        edges[0] = min(lo, edges[1])
    return edges, counts


def merge_buckets(edges: list[float], counts: list[int], most: int) -> tuple[list[float], list[int]]:
    """Merge runs of adjacent buckets so at most ``most`` remain; counts stay exact."""
    group = max(1, math.ceil(len(counts) / most))
    if group == 1:
        return edges, counts
    merged = [sum(counts[i : i + group]) for i in range(0, len(counts), group)]
    return [*edges[:-1:group], edges[-1]], merged


def stats_row(step: int, tensor: str, kind: str, h, edges, counts) -> dict:
    """A stats row with the moments a HistogramProto ``h`` holds exactly, and bucket percentiles."""
    num = round(h.num)
    mean = h.sum / num if num else math.nan
    var = max(h.sum_squares / num - mean * mean, 0.0) if num else math.nan
    qs = bucket_quantiles(np.array(edges), np.array(counts, dtype=float), num, h.min, h.max)
    known = {
        "numel": num, "count": num, "nan_count": 0, "inf_count": 0, "mean": mean, "var": var,
        "std": math.sqrt(var), "min": h.min, "max": h.max, "norm": math.sqrt(max(h.sum_squares, 0.0)),
        **dict(zip(PERCENTILE_KEYS, qs, strict=True)), "quantiles_exact": False,
    }
    return {"step": step, "tensor": tensor, "kind": kind, **partial_row(known)}


def bucket_quantiles(edges, counts, num, lo, hi) -> list[float]:
    """The ``QUANTILES`` percentiles interpolated within buckets, clamped to [lo, hi]."""
    if num == 0 or counts.sum() == 0:
        return [math.nan] * len(QUANTILES)
    cum = np.cumsum(counts)
    out = []
    for q in QUANTILES:
        rank = q / 100 * (cum[-1] - 1)
        b = min(int(np.searchsorted(cum, rank, side="right")), len(counts) - 1)
        before = cum[b - 1] if b else 0.0
        frac = min(max((rank - before + 0.5) / max(counts[b], 1.0), 0.0), 1.0)
        out.append(min(max(edges[b] + frac * (edges[b + 1] - edges[b]), lo), hi))
    return out
