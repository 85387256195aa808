"""Import TensorBoard event files into a run directory, so existing logs get a report.

Histogram summaries carry min, max, num, sum and sum of squares, so count, mean,
variance, std, min, max and norm come out exact. Skew, kurtosis, zeros and outlier
counts cannot be recovered and are left empty (null); percentiles are interpolated
from the buckets (``quantiles_exact`` false). Rows are laid out by the collector's own
summary fields (``stats.fields.partial_row``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from weightreport.errors import WeightReportError
from weightreport.runfmt.schema import FORMAT_VERSION, QUANTILES
from weightreport.runfmt.writer import RunWriter, prepare_directory
from weightreport.stats.fields import PERCENTILE_KEYS, partial_row

_GRAD = re.compile(r"(?:[./_]grads?|[./_]gradients?)$|^grads?[/.]|^gradients?[/.]", re.I)
_DBL_MAX = 1.0e300  # TensorFlow's outer bucket limits are ±DBL_MAX


def _accumulator(logdir: Path):
    try:
        from tensorboard.backend.event_processing import event_accumulator
    except ImportError:
        msg = "importing TensorBoard logs needs the tensorboard package; pip install 'weightreport[tensorboard]'"
        raise WeightReportError(msg) from None
    guidance = {event_accumulator.HISTOGRAMS: 0, event_accumulator.SCALARS: 0,
                event_accumulator.TENSORS: 0}
    acc = event_accumulator.EventAccumulator(str(logdir), size_guidance=guidance)
    acc.Reload()
    return acc


def split_tag(tag: str) -> tuple[str, str]:
    """(tensor name, kind) for a histogram tag: ``fc1.weight.grad`` → (``fc1.weight``, grad)."""
    match = _GRAD.search(tag)
    if match:
        name = (tag[: match.start()] + tag[match.end():]).strip("/.") or tag
        return name, "grad"
    return tag, "param"


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


def _stats_row(step: int, tensor: str, kind: str, h, edges, counts) -> dict:
    num = round(h.num)
    mean = h.sum / num if num else math.nan
    var = max(h.sum_squares / num - mean * mean, 0.0) if num else math.nan
    qs = _bucket_quantiles(np.array(edges), np.array(counts, dtype=float), num, h.min, h.max)
    known = {
        "numel": num, "count": num, "nan_count": 0, "inf_count": 0, "mean": mean, "var": var,
        "std": math.sqrt(var), "min": h.min, "max": h.max, "norm": math.sqrt(max(h.sum_squares, 0.0)),
        **dict(zip(PERCENTILE_KEYS, qs, strict=True)), "quantiles_exact": False,
    }
    return {"step": step, "tensor": tensor, "kind": kind, **partial_row(known)}


def _bucket_quantiles(edges, counts, num, lo, hi) -> list[float]:
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


def import_tensorboard(
    logdir: str | Path, run_dir: str | Path, name: str | None = None, bins: int = 64
) -> Path:
    """Convert the histogram and scalar summaries under ``logdir`` into a run directory.

    Args:
        logdir: a folder of TensorBoard event files (``events.out.tfevents.*``).
        run_dir: the new run directory.
        name: the run's name (default: the run directory's name).
        bins: most histogram bins kept (adjacent TensorBoard buckets are merged).

    Returns:
        The run directory.
    """
    logdir, run_dir = Path(logdir), Path(run_dir)
    if not logdir.is_dir() or not any(logdir.rglob("events.out.tfevents*")):
        msg = f"{logdir} holds no TensorBoard event files (events.out.tfevents.*); pass a log directory"
        raise WeightReportError(msg)
    acc = _accumulator(logdir)
    tags = acc.Tags()
    prepare_directory(run_dir, "error")
    writer = RunWriter(run_dir)
    steps: set[int] = set()
    for tag in sorted(tags.get("scalars", [])):
        rows = [{"step": e.step, "name": tag, "value": float(e.value)} for e in acc.Scalars(tag)]
        writer.add("scalars", rows)
    for tag in sorted(tags.get("histograms", [])):
        tensor, kind = split_tag(tag)
        for event in acc.Histograms(tag):
            h = event.histogram_value
            edges, counts = bucket_histogram(list(h.bucket_limit), list(h.bucket), h.min, h.max)
            edges, counts = merge_buckets(edges, counts, bins)
            writer.add("stats", [_stats_row(event.step, tensor, kind, h, edges, counts)])
            writer.add("histograms", [{"step": event.step, "tensor": tensor, "kind": kind,
                                       "edges": edges, "counts": counts}])
            steps.add(event.step)
    if not steps and not tags.get("scalars"):
        msg = f"{logdir} has no scalar or histogram summaries to import"
        raise WeightReportError(msg)
    all_steps = steps | {e.step for t in tags.get("scalars", []) for e in acc.Scalars(t)}
    manifest = {
        "format_version": FORMAT_VERSION, "name": name or run_dir.name, "status": "complete",
        "error": None, "last_step": max(all_steps, default=0), "snapshots": len(steps),
        "settings": {"source": "tensorboard", "logdir": logdir.name}, "model": None,
        "trajectory_indices": {}, "environment": {}, "resumed_at": [],
    }
    writer.flush(manifest)
    return run_dir
