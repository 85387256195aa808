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
from contextlib import contextmanager, nullcontext

import numpy as np

MIN_ALPHA_EVALS = 50
"""An alpha fitted from fewer eigenvalues than this is unreliable (see the module docstring)."""
MAX_SIDE = 4096
"""Larger matrices are described through their first MAX_SIDE rows and columns."""


def as_matrix(t) -> np.ndarray | None:
    """A 2-D float64 copy of a weight (a numpy array, or anything ``np.asarray`` takes): linear
    weights as they are, conv kernels as (out, in·k…); None for vectors and matrices with a side of 1."""
    a = np.asarray(t)
    if a.ndim < 2:
        return None
    w = a.reshape(a.shape[0], -1)
    if min(w.shape) < 2:
        return None
    return w[:MAX_SIDE, :MAX_SIDE].astype(np.float64)  # cut before widening: a large embedding is never copied whole


SERIAL_SIDE = 1024
"""Gram matrices up to this side are formed and decomposed on one BLAS thread (see ``esd``)."""
_controller = None


@contextmanager
def one_blas_thread(serial: bool = True):
    """Run numpy's BLAS and LAPACK on one thread inside the block when ``serial`` (with threadpoolctl).

    The limit is the process's: nested blocks, and blocks on several threads inside one
    outer block, all keep it at one. Without threadpoolctl the block runs on BLAS's own
    thread count.
    """
    global _controller
    if not serial:
        yield
        return
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _controller = False
        else:
            _controller = ThreadpoolController()
    with _controller.limit(limits=1, user_api="blas") if _controller else nullcontext():
        yield


def _gram(w: np.ndarray) -> np.ndarray:
    """The smaller Gram matrix of ``w``: ``WᵀW`` for a tall (or square) ``W``, else ``WWᵀ``."""
    n, m = w.shape
    return w.T @ w if n >= m else w @ w.T


def esd(w: np.ndarray) -> np.ndarray:
    """Eigenvalues of ``WᵀW / N`` (float64), ascending.

    A small Gram matrix (side ≤ ``SERIAL_SIDE``) is formed and decomposed on one
    thread: the decomposition gains nothing from more at that size, and on a busy
    machine the threads' spinning made a 384-wide matrix's ``eigvalsh`` two to three
    times slower.
    """
    w = np.asarray(w, dtype=np.float64)
    with one_blas_thread(min(w.shape) <= SERIAL_SIDE):
        gram = _gram(w)
        gram /= max(w.shape)
        eig = np.linalg.eigvalsh(gram)
    return np.maximum(eig, 0.0)


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


def correlation_traps(w, seed: int = 0, margin: float = 1.1) -> int:
    """Eigenvalues of the randomly permuted matrix beyond ``margin`` × the MP edge.

    The elements are shuffled (numpy's ``default_rng(seed)``), and the shuffled matrix's
    Gram matrix is formed in float32: the count only asks which eigenvalues pass a
    threshold 10 % beyond the bulk's edge, and float32 moves an eigenvalue by about
    1e-6 of the largest, so only one that close to the threshold could be counted
    differently (``tests/test_inspect_spectral.py`` checks the counts against float64).
    Most matrices have no trap: a Cholesky factorisation of ``threshold·I − Gram``
    exists exactly when no eigenvalue exceeds the threshold, and costs a quarter of
    the eigenvalues; only where it fails are the eigenvalues computed and counted.
    """
    w = np.asarray(w)
    n, m = w.shape
    var = float(np.var(w, dtype=np.float64))
    ratio = min(n, m) / max(n, m)
    threshold = margin * var * (1.0 + math.sqrt(ratio)) ** 2 * max(n, m)  # on the Gram's scale (× N)
    top = float(np.max(np.abs(w)))
    if 2.0**-40 <= top <= 2.0**40:
        shuffled = w.astype(np.float32)  # a copy, shuffled in place
    else:  # scaled by a power of two (exact) so that float32 neither overflows nor underflows
        exponent = math.frexp(top)[1] if top > 0 else 0
        shuffled = np.ldexp(w, -exponent).astype(np.float32)
        threshold = math.ldexp(threshold, -2 * exponent)
    np.random.default_rng(seed).shuffle(shuffled.reshape(-1))
    with one_blas_thread(min(n, m) <= SERIAL_SIDE):
        gram = _gram(shuffled)
        shifted = -gram
        shifted.flat[:: shifted.shape[0] + 1] += np.float32(threshold)
        try:
            np.linalg.cholesky(shifted)
        except np.linalg.LinAlgError:
            pass
        else:
            return 0
        eigs = np.linalg.eigvalsh(gram.astype(np.float64))
    return int(np.count_nonzero(eigs > threshold))


def spectral_summary(t) -> dict | None:
    """Singular-value measures of a weight (a numpy array, or anything ``np.asarray`` takes).

    None when it is not a matrix, or holds NaN or ±Inf (it has no spectrum; its
    statistics count them).
    """
    w = as_matrix(t)
    if w is None or not np.isfinite(w).all():
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
