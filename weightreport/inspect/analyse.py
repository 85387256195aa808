"""``weightreport inspect``: a weight report from a bare checkpoint, with no training.

``inspect_checkpoint`` opens the checkpoint (``checkpoint.py``) and streams it: each
small group of tensors is read, described exactly (``describe.py``: the summary fields
of the collector's statistics, with numpy's numbers), given the spectral measures of
every 2-D or conv weight (``spectral.py``), and dropped before the next group is read.
Peak memory is a small multiple of the largest tensor (or of ``GROUP_BYTES``), never
the checkpoint's size. All of it is numpy: torch is imported only to read a pickled
checkpoint, and numba never. The tensors of a group are taken by ``WORKERS`` threads
(numpy's sorts and LAPACK release the GIL), each on one BLAS thread; a tensor read
alone (a large one) keeps BLAS's threads to itself. The rows come back in order, and
every number is computed on one thread: the result does not depend on the workers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from weightreport.inspect.checkpoint import GROUP_BYTES, Checkpoint, Entry, open_checkpoint
from weightreport.inspect.describe import describe_values
from weightreport.inspect.spectral import one_blas_thread, spectral_summary

SPECTRAL_KEYS = ("spectral_norm", "stable_rank", "alpha", "alpha_xmin", "alpha_ks", "alpha_evals",
                 "alpha_tail", "alpha_sigma", "alpha_reliable", "correlation_traps")

Progress = Callable[[int, int], None]
"""``progress(bytes_done, bytes_total)``: called once before the first tensor and after each group."""
WORKERS = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
"""Threads that describe the tensors of one group side by side."""


def inspect_checkpoint(path: str | Path | Checkpoint, bins: int = 64, progress: Progress | None = None,
                       budget: int = GROUP_BYTES) -> dict:
    """Statistics, histograms and spectral measures of every tensor in a checkpoint.

    Args:
        path: a checkpoint file (``.safetensors``, ``.pt``, ``.pth``, ``.bin``, ``.ckpt``),
            a shard index (``*.index.json``), a ``save_pretrained`` directory, or an
            already opened ``Checkpoint``.
        bins: histogram bins.
        progress: called with (bytes read, total bytes) as the tensors are read.
        budget: the most widened bytes read at once (a larger tensor is read alone).

    Returns:
        ``{"checkpoint": name, "tensors": [{"tensor", "shape", "dtype", "numel", <stats>,
        "edges", "counts", "alpha", "alpha_reliable", "stable_rank", ...}], "total_params",
        "names_sorted"}``; ``dtype`` is the stored one; the spectral keys are None for
        tensors that are not matrices; ``names_sorted`` is True when every file stores its
        names in text order (safetensors does), so the page re-orders them (``layers.py``).
    """
    ck = path if isinstance(path, Checkpoint) else open_checkpoint(path)
    entries = ck.entries
    total, done = sum(e.nbytes for e in entries), 0
    if progress is not None:
        progress(0, total)
    rows = []
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="weightreport-inspect") if WORKERS > 1 else nullcontext() as pool:
        for group in ck.groups(budget):
            if pool is not None and len(group) > 1:
                with one_blas_thread():
                    rows.extend(pool.map(lambda item: _row(*item, bins), group))
            else:
                rows.extend(_row(entry, t, bins) for entry, t in group)
            done += sum(entry.nbytes for entry, _ in group)
            del group
            if progress is not None:
                progress(done, total)
    names_sorted = len(entries) > 2 and all(
        all(a.name <= b.name for a, b in zip(s.entries, s.entries[1:], strict=False)) for s in ck.sources)
    return {"checkpoint": ck.name, "tensors": rows, "total_params": sum(e.numel for e in entries),
            "names_sorted": names_sorted}


def _row(entry: Entry, t: np.ndarray, bins: int) -> dict:
    """One tensor's row: its statistics, histogram and (for a matrix) spectral measures."""
    desc = describe_values(t, bins)
    row = {"tensor": entry.name, "shape": list(entry.shape), "dtype": entry.dtype, **desc.stats,
           "edges": desc.edges, "counts": desc.counts}
    spectral = spectral_summary(t)
    for key in SPECTRAL_KEYS:
        row[key] = spectral[key] if spectral else None
    row["singular_values"] = spectral["singular_values"] if spectral else None
    return row


def write_json(result: dict, out: str | Path) -> Path:
    """Write ``inspect_checkpoint``'s result as deterministic JSON."""
    from weightreport.runfmt.writer import dump_json

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump_json(result) + "\n", encoding="utf-8")
    return out
