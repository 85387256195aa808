"""``weightreport inspect``: a weight report from a bare checkpoint, with no training.

``inspect_checkpoint`` opens the checkpoint (``checkpoint.py``) and streams it: each
small group of tensors is read, described exactly (``describe.py``: the summary fields
of the collector's statistics, with numpy's numbers), given the spectral measures of
every 2-D or conv weight (``spectral.py``), and dropped before the next group is read.
Peak memory is a small multiple of the largest tensor (or of ``GROUP_BYTES``), never
the checkpoint's size. All of it is numpy: torch is imported only to read a pickled
checkpoint, and numba never.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from weightreport.inspect.checkpoint import GROUP_BYTES, Checkpoint, open_checkpoint
from weightreport.inspect.describe import describe_values
from weightreport.inspect.spectral import spectral_summary

SPECTRAL_KEYS = ("spectral_norm", "stable_rank", "alpha", "alpha_xmin", "alpha_ks", "alpha_evals",
                 "alpha_tail", "alpha_sigma", "alpha_reliable", "correlation_traps")

Progress = Callable[[int, int], None]
"""``progress(bytes_done, bytes_total)``: called once before the first tensor and after each group."""


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
    for group in ck.groups(budget):
        for entry, t in group:
            desc = describe_values(t, bins)
            row = {"tensor": entry.name, "shape": list(entry.shape), "dtype": entry.dtype, **desc.stats,
                   "edges": desc.edges, "counts": desc.counts}
            spectral = spectral_summary(t)
            for key in SPECTRAL_KEYS:
                row[key] = spectral[key] if spectral else None
            row["singular_values"] = spectral["singular_values"] if spectral else None
            rows.append(row)
            done += entry.nbytes
        del group, t
        if progress is not None:
            progress(done, total)
    names_sorted = len(entries) > 2 and all(
        all(a.name <= b.name for a, b in zip(s.entries, s.entries[1:], strict=False)) for s in ck.sources)
    return {"checkpoint": ck.name, "tensors": rows, "total_params": sum(e.numel for e in entries),
            "names_sorted": names_sorted}


def write_json(result: dict, out: str | Path) -> Path:
    """Write ``inspect_checkpoint``'s result as deterministic JSON."""
    from weightreport.runfmt.writer import dump_json

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump_json(result) + "\n", encoding="utf-8")
    return out
