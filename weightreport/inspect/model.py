"""``inspect_checkpoint``'s result → ``InspectModel``: tables and chart data, no HTML."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from weightreport.report.analysis.frames import hist_rows

MAX_SPECTRUM_POINTS = 200
"""Singular values drawn per layer: all of a small layer, log-spaced ranks of a large one."""
ALPHA_LOW, ALPHA_HIGH = 2.0, 6.0
STAT_COLUMNS = ("mean", "std", "min", "max", "skew", "kurtosis", "norm")


@dataclass
class InspectModel:
    """Everything the checkpoint report shows.

    Attributes:
        title: the page title.
        checkpoint: the file name.
        total_params: the number of floating-point elements.
        rows: per tensor: ``tensor, shape, numel`` and ``STAT_COLUMNS``.
        hist: ``tensor, left, right, density`` (non-empty bins).
        spectra: ``tensor, rank, singular`` for matrices (log-spaced ranks when long).
        quality: per matrix: ``tensor, shape, alpha, stable_rank, spectral_norm, traps, verdict``.
        layers: every tensor, in file order; ``matrices``: those with a spectrum.
    """

    title: str
    checkpoint: str
    total_params: int
    rows: list[dict] = field(default_factory=list)
    hist: pd.DataFrame = field(default_factory=pd.DataFrame)
    spectra: pd.DataFrame = field(default_factory=pd.DataFrame)
    quality: list[dict] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)
    matrices: list[str] = field(default_factory=list)

    @property
    def traps(self) -> list[dict]:
        """The matrices with at least one correlation trap."""
        return [q for q in self.quality if q["traps"]]


def alpha_verdict(alpha: float) -> str:
    """A plain-language reading of alpha (WeightWatcher's rule of thumb)."""
    if not np.isfinite(alpha):
        return "too few eigenvalues to fit"
    if alpha < ALPHA_LOW:
        return "heavy tail: possibly over-fitted to something"
    if alpha > ALPHA_HIGH:
        return "light tail: possibly under-trained"
    return "typical of a well-trained layer"


def spectrum_ranks(n: int, limit: int = MAX_SPECTRUM_POINTS) -> np.ndarray:
    """At most ``limit`` ranks (0-based) of ``n``, log-spaced, first and last kept."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.round(np.logspace(0, np.log10(n), limit)).astype(np.int64) - 1)


def inspect_model(result: dict, title: str | None = None) -> InspectModel:
    """Build the ``InspectModel`` of ``inspect_checkpoint(path)``'s result."""
    rows, hists, spectra, quality = [], [], [], []
    for t in result["tensors"]:
        shape = "×".join(str(d) for d in t["shape"]) or "scalar"
        rows.append({"tensor": t["tensor"], "shape": shape, "numel": t["numel"],
                     **{c: t.get(c) for c in STAT_COLUMNS}})
        hists.append({"tensor": t["tensor"], "edges": t["edges"], "counts": t["counts"]})
        sv = t.get("singular_values")
        if sv:
            sv = np.asarray(sv, dtype=float)
            ranks = spectrum_ranks(sv.size)
            keep = sv[ranks] > 0
            spectra.append(pd.DataFrame({"tensor": t["tensor"], "rank": ranks[keep] + 1,
                                         "singular": sv[ranks][keep]}))
            alpha = float("nan") if t["alpha"] is None else float(t["alpha"])
            quality.append({"tensor": t["tensor"], "shape": shape, "alpha": alpha,
                            "stable_rank": t["stable_rank"], "spectral_norm": t["spectral_norm"],
                            "traps": int(t["correlation_traps"] or 0), "verdict": alpha_verdict(alpha)})
    hist = hist_rows(pd.DataFrame(hists), ["tensor"]) if hists else pd.DataFrame()
    spec = (pd.concat(spectra, ignore_index=True) if spectra
            else pd.DataFrame(columns=["tensor", "rank", "singular"]))
    return InspectModel(title=title or result["checkpoint"], checkpoint=result["checkpoint"],
                        total_params=int(result["total_params"]), rows=rows, hist=hist, spectra=spec,
                        quality=quality, layers=[r["tensor"] for r in rows],
                        matrices=[q["tensor"] for q in quality])
