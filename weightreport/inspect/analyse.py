"""``weightreport inspect``: a weight report from a bare checkpoint, with no training.

``inspect_checkpoint`` reads the checkpoint safely (``checkpoint.py``), describes
every tensor with the collector's own statistics (``stats.describe``) and adds the
spectral measures of every 2-D or conv weight (``spectral.py``).
"""

from __future__ import annotations

from pathlib import Path

from weightreport.inspect.checkpoint import load_state_dict
from weightreport.inspect.spectral import spectral_summary
from weightreport.runfmt.writer import dump_json
from weightreport.stats import describe

SPECTRAL_KEYS = ("spectral_norm", "stable_rank", "alpha", "alpha_xmin", "alpha_ks",
                 "correlation_traps")


def inspect_checkpoint(path: str | Path, bins: int = 64) -> dict:
    """Statistics, histograms and spectral measures of every tensor in a checkpoint.

    Args:
        path: the checkpoint (``.safetensors``, ``.pt``, ``.pth``, ``.bin``).
        bins: histogram bins.

    Returns:
        ``{"checkpoint": file name, "tensors": [{"tensor", "shape", "numel", <stats>,
        "edges", "counts", "alpha", "stable_rank", ...}]}``; the spectral keys are
        None for tensors that are not matrices.
    """
    path = Path(path)
    tensors = load_state_dict(path)
    descriptions, _ = describe(list(tensors.values()), bins)
    rows = []
    for (name, t), desc in zip(tensors.items(), descriptions, strict=True):
        row = {"tensor": name, "shape": list(t.shape), **desc.stats,
               "edges": desc.edges, "counts": desc.counts}
        spectral = spectral_summary(t)
        for key in SPECTRAL_KEYS:
            row[key] = spectral[key] if spectral else None
        row["singular_values"] = spectral["singular_values"] if spectral else None
        rows.append(row)
    return {"checkpoint": path.name, "tensors": rows,
            "total_params": sum(t.numel() for t in tensors.values())}


def write_json(result: dict, out: str | Path) -> Path:
    """Write ``inspect_checkpoint``'s result as deterministic JSON."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump_json(result) + "\n", encoding="utf-8")
    return out
