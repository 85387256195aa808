"""A checkpoint series: several checkpoints of one training run → each layer's spectra across them.

``series_members`` finds the checkpoints of a directory of epoch checkpoints (files such
as ``epoch=3.ckpt``, or ``save_pretrained`` folders such as the Trainer's
``checkpoint-500/``) in training order: names compared with their numbers as numbers.
``inspect_series`` inspects each one as ``inspect`` does, one at a time (peak memory is
one checkpoint's stream, never the series'), and keeps per matrix its alpha, stable
rank, spectral norm and Frobenius norm, and whether its alpha is reliable: fitted from at
least ``MIN_ALPHA_EVALS`` eigenvalues (``spectral.py``), as single inspect decides.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from weightreport.errors import WeightReportError
from weightreport.inspect.analyse import inspect_checkpoint
from weightreport.inspect.checkpoint import GLOBS, HF_FILES, open_checkpoint

MAX_CHECKPOINTS = 200
SERIES_KEYS = ("alpha", "stable_rank", "spectral_norm", "norm")


def natural_key(path: Path) -> tuple:
    """``epoch=10`` after ``epoch=9``: the name's digit runs compared as numbers."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", path.name))


def series_members(path: str | Path) -> list[Path] | None:
    """The checkpoints a directory holds as a series, in training order; None when it is one checkpoint.

    A directory is a series when it has no ``save_pretrained`` files of its own and holds at
    least two checkpoint files (``*.safetensors``, ``*.ckpt``, ``*.pt``, ``*.pth``, ``*.bin``)
    or ``save_pretrained`` folders.
    """
    path = Path(path)
    if not path.is_dir() or any((path / name).is_file() for name in HF_FILES):
        return None
    files = {p for g in GLOBS for p in path.glob(g) if p.is_file()}
    folders = {d for d in path.iterdir() if d.is_dir() and any((d / name).is_file() for name in HF_FILES)}
    members = sorted(files | folders, key=natural_key)
    return members if len(members) >= 2 else None


def inspect_series(paths: list[str | Path], progress: Callable[[int, int], None] | None = None) -> dict:
    """Each matrix's spectral measures and norm in every checkpoint of a series.

    Args:
        paths: 2 to ``MAX_CHECKPOINTS`` checkpoints (anything ``inspect`` opens), in order.
        progress: called with (checkpoints done, checkpoints) after each one.

    Returns:
        ``{"checkpoints": [{"name", "path", "total_params"}], "layers": [matrix names in the
        first checkpoint's order, then any new ones], "series": [{"tensor", "checkpoint",
        "position", "shape", "alpha", "alpha_evals", "alpha_reliable", "stable_rank",
        "spectral_norm", "norm"}]}``: one row per matrix and checkpoint holding it; vectors
        (biases, norms' gains) are left out. ``alpha_reliable`` is False for an alpha fitted
        from fewer than ``MIN_ALPHA_EVALS`` eigenvalues and for one that could not be fitted.

    Raises:
        WeightReportError: fewer than 2 or more than ``MAX_CHECKPOINTS`` checkpoints, or one
            that ``inspect`` cannot open.
    """
    paths = [Path(p) for p in paths]
    if not 2 <= len(paths) <= MAX_CHECKPOINTS:
        msg = f"a checkpoint series needs 2 to {MAX_CHECKPOINTS} checkpoints, got {len(paths)}"
        raise WeightReportError(msg)
    checkpoints, series, layers = [], [], {}
    names = _unique_names(paths)
    for position, (path, name) in enumerate(zip(paths, names, strict=True)):
        result = inspect_checkpoint(open_checkpoint(path))
        checkpoints.append({"name": name, "path": str(path), "total_params": result["total_params"]})
        for row in result["tensors"]:
            if row.get("stable_rank") is None:
                continue
            layers.setdefault(row["tensor"], None)
            series.append({"tensor": row["tensor"], "checkpoint": name, "position": position,
                           "shape": row["shape"], **{k: row.get(k) for k in SERIES_KEYS},
                           "alpha_evals": int(row.get("alpha_evals") or 0),
                           "alpha_reliable": bool(row.get("alpha_reliable"))})
        if progress is not None:
            progress(position + 1, len(paths))
    return {"checkpoints": checkpoints, "layers": list(layers), "series": series}


def _unique_names(paths: list[Path]) -> list[str]:
    """Each checkpoint's file or folder name; its path where two share a name."""
    names = [p.name or str(p) for p in paths]
    return [str(p) if names.count(n) > 1 else n for p, n in zip(paths, names, strict=True)]
