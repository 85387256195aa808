"""inspect's spectra in numpy: float64 eigenvalues, float32 trap counts that equal float64's, non-finite matrices."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from weightreport.inspect.analyse import inspect_checkpoint
from weightreport.inspect.spectral import correlation_traps, esd, spectral_summary


def _traps_float64(w: np.ndarray, seed: int = 0, margin: float = 1.1) -> int:
    """The trap count with the same shuffle, every eigenvalue computed in float64."""
    shuffled = w.astype(np.float32)
    np.random.default_rng(seed).shuffle(shuffled.reshape(-1))
    s = shuffled.astype(np.float64)
    n, m = s.shape
    eigs = np.linalg.eigvalsh((s.T @ s if n >= m else s @ s.T) / max(n, m))
    edge = float(np.var(w)) * (1 + math.sqrt(min(n, m) / max(n, m))) ** 2
    return int(np.count_nonzero(eigs > margin * edge))


def test_float32_trap_counts_equal_float64():
    """Over 60 matrices (tall, wide, 0 to 6 planted spikes, scales 1e-30 to 1e30) the float32 count is float64's."""
    rng = np.random.default_rng(0)
    counts = []
    for k in range(60):
        shape = [(200, 100), (100, 300), (384, 384), (50, 20)][k % 4]
        w = rng.standard_normal(shape)
        for _ in range(k % 7):
            w[rng.integers(shape[0]), rng.integers(shape[1])] = rng.choice([-1, 1]) * rng.uniform(10, 60)
        w *= [1.0, 1e-30, 1e30][k % 3]
        counts.append(correlation_traps(w))
        assert counts[-1] == _traps_float64(w), k
    assert min(counts) == 0 and max(counts) >= 3  # both answers of the shortcut are exercised


def test_esd_matches_the_float64_svd():
    """The eigenvalues are those of numpy's float64 SVD, for a tall, a wide and a conv-shaped weight."""
    rng = np.random.default_rng(1)
    for w in (rng.standard_normal((300, 120)), rng.standard_normal((64, 500)), rng.standard_normal((16, 8, 3, 3))):
        m = w.reshape(w.shape[0], -1)
        s = np.linalg.svd(m, compute_uv=False)
        assert np.allclose(esd(m)[::-1], s**2 / max(m.shape), rtol=1e-10, atol=1e-14)
        summary = spectral_summary(w.astype(np.float32))
        assert summary["stable_rank"] == pytest.approx((s**2).sum() / s[0] ** 2, rel=1e-6)


def test_a_matrix_with_nan_or_inf_has_no_spectrum_and_is_still_described(tmp_path):
    """A weight holding NaN or Inf gets no spectrum (eigvalsh used to raise) and its statistics count them."""
    w = torch.randn(60, 50)
    w[1, 2], w[3, 4] = float("nan"), float("inf")
    assert spectral_summary(w) is None
    path = tmp_path / "bad.pt"
    torch.save({"w": w, "ok": torch.randn(60, 50)}, path)
    rows = {t["tensor"]: t for t in inspect_checkpoint(path)["tensors"]}
    assert rows["w"]["alpha"] is None and rows["w"]["nan_count"] == 1 and rows["w"]["inf_count"] == 1
    assert rows["ok"]["alpha"] is not None
