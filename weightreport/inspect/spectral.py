"""Data-free quality measures of a 2-D weight matrix, from its singular values.

- The empirical spectral density (ESD) is that of the eigenvalues of ``WᵀW / N``
  (N the larger dimension), computed from the smaller Gram matrix.
- ``stable_rank`` = ‖W‖_F² / ‖W‖_2², a smooth count of the significant directions.
- ``alpha``: the exponent of a power law ``p(λ) ∝ λ^-alpha`` fitted to the ESD's tail
  as WeightWatcher does: for every candidate ``xmin`` the maximum-likelihood alpha
  ``1 + n / Σ ln(λ_i / xmin)``, keeping the ``xmin`` whose fit has the smallest
  Kolmogorov-Smirnov distance. Well-trained layers tend to have alpha in 2-6;
  above 6 suggests under-training, below 2 over-fitting to something.
- Reliability: the fit needs eigenvalues. WeightWatcher skips a layer with fewer than
  ``min_evals`` = 10 of them and notes that the fit really wants 50 (its
  ``MIN_NUM_EVALS`` comment). With fewer than ``MIN_ALPHA_EVALS`` = 50 eigenvalues the
  fitted tail is a handful of points: a Gaussian random, untrained 16 × 27 matrix then
  fits an alpha inside 2-6 about nine times in ten, so the number cannot tell a trained
  layer from noise. Such an alpha is reported with ``alpha_reliable`` False, and with the
  count of eigenvalues (``alpha_evals``) and of tail points (``alpha_tail``) it came from;
  ``alpha_sigma`` = (alpha - 1) / sqrt(tail) is the fit's standard error (Clauset et al.).
- Correlation traps: the matrix's elements are randomly permuted, which should leave
  a Marchenko-Pastur bulk; eigenvalues of the permuted matrix well beyond the bulk's
  edge come from a few unusually large elements (rank-one "traps").
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import torch

MIN_ALPHA_EVALS = 50
"""An alpha fitted from fewer eigenvalues than this is unreliable (see the module docstring)."""
MAX_SIDE = 4096
"""Larger matrices are described through their first MAX_SIDE rows and columns."""


def as_matrix(t: torch.Tensor) -> torch.Tensor | None:
    """A 2-D float64 view of a weight: linear weights as they are, conv kernels as
    (out, in·k…); None for vectors and matrices with a side of 1."""
    if t.dim() < 2:
        return None
    w = t.detach().reshape(t.shape[0], -1)
    if min(w.shape) < 2:
        return None
    return w[:MAX_SIDE, :MAX_SIDE].double()  # cut before widening: a large embedding is never copied whole


SERIAL_SIDE = 1024
"""Gram matrices up to this side are decomposed on one thread (see ``esd``)."""


@contextmanager
def _one_thread(serial: bool):
    """Run torch on one intra-op thread inside the block when ``serial``, then restore the count."""
    before = torch.get_num_threads()
    if not serial or before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def esd(w: torch.Tensor) -> np.ndarray:
    """Eigenvalues of ``WᵀW / N``, ascending.

    A small Gram matrix (side ≤ ``SERIAL_SIDE``) is decomposed on one thread: the
    decomposition gains nothing from more at that size, and on a busy machine the extra
    threads' spinning made ``inspect`` of all-MiniLM-L6-v2 (384-wide) three times slower.
    """
    n, m = w.shape
    with _one_thread(min(n, m) <= SERIAL_SIDE):
        gram = w.T @ w if n >= m else w @ w.T
        eig = torch.linalg.eigvalsh(gram / max(n, m)).clamp(min=0.0)
    return eig.numpy()


def fit_alpha(eigs: np.ndarray, min_tail: int = 5) -> tuple[float, float, float]:
    """(alpha, xmin, KS distance) of the power-law fit to the tail of ``eigs``."""
    lam = np.sort(eigs[eigs > 1e-12 * max(eigs.max(initial=0.0), 1e-300)])
    if lam.size < min_tail + 1:
        return math.nan, math.nan, math.nan
    best = (math.nan, math.nan, math.inf)
    logs = np.log(lam)
    for i in range(lam.size - min_tail):
        tail_logs = logs[i:] - logs[i]
        total = tail_logs.sum()
        if total <= 0:
            continue
        n = lam.size - i
        alpha = 1.0 + n / total
        emp = np.arange(n) / n
        fit = 1.0 - np.exp(-(alpha - 1.0) * tail_logs)
        dist = float(np.max(np.abs(emp - fit)))
        if dist < best[2]:
            best = (alpha, float(lam[i]), dist)
    return best


def correlation_traps(w: torch.Tensor, seed: int = 0, margin: float = 1.1) -> int:
    """Eigenvalues of the randomly permuted matrix beyond ``margin`` × the MP edge."""
    n, m = w.shape
    gen = torch.Generator().manual_seed(seed)
    flat = w.reshape(-1)
    shuffled = flat[torch.randperm(flat.numel(), generator=gen)].reshape(n, m)
    eigs = esd(shuffled)
    var = float(flat.var(unbiased=False))
    ratio = min(n, m) / max(n, m)
    edge = var * (1.0 + math.sqrt(ratio)) ** 2
    return int(np.count_nonzero(eigs > margin * edge))


def spectral_summary(t: torch.Tensor) -> dict | None:
    """Singular-value measures of a weight, or None when it is not a matrix."""
    w = as_matrix(t)
    if w is None:
        return None
    eigs = esd(w)
    n = max(w.shape)
    singular = np.sqrt(eigs[::-1] * n)
    top = singular[0]
    alpha, xmin, ks = fit_alpha(eigs)
    evals = int(np.count_nonzero(eigs > 1e-12 * max(float(eigs.max(initial=0.0)), 1e-300)))
    tail = int(np.count_nonzero(eigs >= xmin)) if math.isfinite(xmin) else 0
    return {
        "rows": int(w.shape[0]), "cols": int(w.shape[1]),
        "spectral_norm": float(top),
        "stable_rank": float((singular**2).sum() / top**2) if top > 0 else math.nan,
        "alpha": alpha, "alpha_xmin": xmin, "alpha_ks": ks,
        "alpha_evals": evals, "alpha_tail": tail,
        "alpha_sigma": (alpha - 1.0) / math.sqrt(tail) if tail else math.nan,
        "alpha_reliable": bool(math.isfinite(alpha) and evals >= MIN_ALPHA_EVALS),
        "correlation_traps": correlation_traps(w),
        "singular_values": singular.tolist(),
    }
