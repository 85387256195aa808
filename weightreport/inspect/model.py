"""``inspect_checkpoint``'s result → ``InspectModel``: tables and chart data, no HTML."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from weightreport.inspect.layers import KINDS, layer_kind, model_order
from weightreport.inspect.spectral import MIN_ALPHA_EVALS
from weightreport.report.analysis.density import bin_density

MAX_SPECTRUM_POINTS = 200
"""Singular values drawn per layer: all of a small layer, log-spaced ranks of a large one."""
ALPHA_LOW, ALPHA_HIGH = 2.0, 6.0
BANDS = ("heavy", "typical", "light")
"""The alpha bands of a reliable fit: below ``ALPHA_LOW``, between, above ``ALPHA_HIGH``."""
STAT_COLUMNS = ("mean", "std", "min", "max", "skew", "kurtosis", "norm")


@dataclass
class InspectModel:
    """Everything the checkpoint report shows, as plain rows (no DataFrames: the page loads no pandas).

    Attributes:
        title: the page title.
        checkpoint: the file name.
        total_params: the number of floating-point elements.
        rows: per tensor, in model order: ``tensor, shape, numel, kind`` and ``STAT_COLUMNS``.
        hist: rows ``tensor, left, right, density``: each tensor's non-empty bin range, in model order.
        spectra: rows ``tensor, rank, singular`` for matrices (log-spaced ranks when long; zeros left out).
        quality: per matrix, in model order: ``tensor, shape, kind, depth`` (its index),
            ``alpha, alpha_sigma, evals, tail, reliable, band`` (one of ``BANDS``, or
            ``unreliable`` / ``no fit``), ``stable_rank, spectral_norm, traps, verdict`` and its
            short form ``label``.
        layers: every tensor, in model order; ``matrices``: those with a spectrum.
        reordered: True when the stored order was text order and the page re-ordered it.
    """

    title: str
    checkpoint: str
    total_params: int
    rows: list[dict] = field(default_factory=list)
    hist: list[dict] = field(default_factory=list)
    spectra: list[dict] = field(default_factory=list)
    quality: list[dict] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)
    matrices: list[str] = field(default_factory=list)
    reordered: bool = False

    @property
    def traps(self) -> list[dict]:
        """The matrices with at least one correlation trap."""
        return [q for q in self.quality if q["traps"]]

    @property
    def bands(self) -> dict[str, int]:
        """How many matrices fall in each alpha band (``BANDS``, then ``unreliable``, ``no fit``)."""
        counts = dict.fromkeys((*BANDS, "unreliable", "no fit"), 0)
        for q in self.quality:
            counts[q["band"]] += 1
        return counts

    @property
    def headline(self) -> str:
        """The page's verdict in one or two plain sentences."""
        if not self.quality:
            return "No 2-D or convolution weights in this checkpoint: there is no spectrum to read."
        text = bands_sentence(self.bands)
        traps = len(self.traps)
        text += (f" {traps} matri{'x has' if traps == 1 else 'ces have'} correlation traps." if traps
                 else " No correlation traps.")
        return text

    @property
    def unreliable(self) -> list[dict]:
        """The matrices whose alpha came from too few eigenvalues to mean anything."""
        return [q for q in self.quality if q["band"] == "unreliable"]

    @property
    def kinds(self) -> list[str]:
        """The layer kinds present among the matrices, in ``KINDS`` order."""
        present = {q["kind"] for q in self.quality}
        return [k for k in KINDS if k in present]

    @property
    def min_evals(self) -> int:
        """The fewest eigenvalues a reliable alpha needs."""
        return MIN_ALPHA_EVALS


def bands_sentence(b: dict[str, int]) -> str:
    """How many matrices fall in each alpha band (``InspectModel.bands``), the unreliable left out and said so."""
    fitted = sum(b[k] for k in BANDS)
    text = (f"Of {fitted} matri{'x' if fitted == 1 else 'ces'} with a reliable alpha, "
            f"{b['typical']} {'is' if b['typical'] == 1 else 'are'} typical (alpha {ALPHA_LOW:g}–{ALPHA_HIGH:g}), "
            f"{b['light']} light-tailed (alpha > {ALPHA_HIGH:g}: possibly under-trained) and "
            f"{b['heavy']} heavy-tailed (alpha < {ALPHA_LOW:g}).")
    if b["unreliable"]:
        n = b["unreliable"]
        text += (f" {n} more {'has' if n == 1 else 'have'} fewer than {MIN_ALPHA_EVALS} eigenvalues, too "
                 "few for alpha to mean anything, and " + ("is" if n == 1 else "are") + " left out.")
    if b["no fit"]:
        text += f" {b['no fit']} could not be fitted."
    return text


def alpha_band(alpha: float, reliable: bool, evals: int) -> str:
    """The band of an alpha (one of ``BANDS``), ``unreliable`` or ``no fit``."""
    if not reliable:
        return "unreliable" if evals < MIN_ALPHA_EVALS else "no fit"
    if alpha < ALPHA_LOW:
        return "heavy"
    if alpha > ALPHA_HIGH:
        return "light"
    return "typical"


def band_label(band: str, evals: int) -> str:
    """A table cell's short reading of a band (the long one is ``alpha_verdict``)."""
    if band == "unreliable":
        return f"unreliable: {evals} eigenvalue{'s' if evals != 1 else ''}"
    return {"typical": "typical", "light": f"light tail (> {ALPHA_HIGH:g})",
            "heavy": f"heavy tail (< {ALPHA_LOW:g})", "no fit": "no fit"}[band]


def alpha_verdict(alpha: float, reliable: bool = True, evals: int = MIN_ALPHA_EVALS) -> str:
    """A plain-language reading of alpha (WeightWatcher's rule of thumb), unless it is unreliable."""
    band = alpha_band(alpha, reliable and bool(np.isfinite(alpha)), evals)
    if band == "unreliable":
        return f"unreliable: only {evals} eigenvalue{'s' if evals != 1 else ''} (fewer than {MIN_ALPHA_EVALS})"
    return {"no fit": "no power-law fit (degenerate spectrum)",
            "heavy": "heavy tail: possibly over-fitted to something",
            "light": "light tail: possibly under-trained",
            "typical": "typical of a well-trained layer"}[band]


def spectrum_ranks(n: int, limit: int = MAX_SPECTRUM_POINTS) -> np.ndarray:
    """At most ``limit`` ranks (0-based) of ``n``, log-spaced, first and last kept."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.round(np.logspace(0, np.log10(n), limit)).astype(np.int64) - 1)


def inspect_model(result: dict, title: str | None = None) -> InspectModel:
    """Build the ``InspectModel`` of ``inspect_checkpoint(path)``'s result."""
    rows, hist, spectra, quality = [], [], [], []
    stored = result["tensors"]
    reordered = bool(result.get("names_sorted", False))
    order = model_order([t["tensor"] for t in stored], [t["shape"] for t in stored], reordered)
    for t in (stored[i] for i in order):
        shape = "×".join(str(d) for d in t["shape"]) or "scalar"
        kind = layer_kind(t["tensor"], t["shape"])
        rows.append({"tensor": t["tensor"], "shape": shape, "numel": t["numel"], "kind": kind,
                     **{c: t.get(c) for c in STAT_COLUMNS}})
        bins = bin_density(t["edges"], t["counts"])
        if bins is not None:
            hist.extend({"tensor": t["tensor"], "left": a, "right": b, "density": d}
                        for a, b, d in zip(*(x.tolist() for x in bins), strict=True))
        sv = t.get("singular_values")
        if sv:
            sv = np.asarray(sv, dtype=float)
            ranks = spectrum_ranks(sv.size)
            keep = sv[ranks] > 0
            spectra.extend({"tensor": t["tensor"], "rank": r, "singular": v}
                           for r, v in zip((ranks[keep] + 1).tolist(), sv[ranks][keep].tolist(), strict=True))
            alpha = float("nan") if t["alpha"] is None else float(t["alpha"])
            evals = int(t.get("alpha_evals") or 0)
            reliable = bool(t.get("alpha_reliable")) and bool(np.isfinite(alpha))
            sigma = t.get("alpha_sigma")
            quality.append({"tensor": t["tensor"], "shape": shape, "kind": kind, "depth": len(quality),
                            "alpha": alpha, "alpha_sigma": float("nan") if sigma is None else float(sigma),
                            "evals": evals, "tail": int(t.get("alpha_tail") or 0), "reliable": reliable,
                            "band": alpha_band(alpha, reliable, evals),
                            "stable_rank": t["stable_rank"], "spectral_norm": t["spectral_norm"],
                            "traps": int(t["correlation_traps"] or 0),
                            "verdict": alpha_verdict(alpha, reliable, evals),
                            "label": band_label(alpha_band(alpha, reliable, evals), evals)})
    return InspectModel(title=title or result["checkpoint"], checkpoint=result["checkpoint"],
                        total_params=int(result["total_params"]), rows=rows, hist=hist, spectra=spectra,
                        quality=quality, layers=[r["tensor"] for r in rows],
                        matrices=[q["tensor"] for q in quality], reordered=reordered)
