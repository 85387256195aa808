"""W1 between histograms with different edges, against scipy and a direct numerical integral."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from weightreport.compare.distance import hist_cdf, wasserstein_hist


def _numeric(ea, ca, eb, cb, n=400_001):
    x = np.linspace(min(ea[0], eb[0]), max(ea[-1], eb[-1]), n)
    return np.trapezoid(np.abs(hist_cdf(ea, ca, x) - hist_cdf(eb, cb, x)), x)


def test_matches_a_direct_integral():
    """On random histograms with unrelated edges, W1 equals a fine numerical integral of |F_a − F_b|."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        ea = np.sort(rng.normal(0, 1, 9))
        eb = np.sort(rng.normal(0.3, 2, 14))
        ca, cb = rng.integers(0, 50, 8), rng.integers(0, 50, 13)
        ca[0] += 1
        cb[0] += 1
        assert wasserstein_hist(ea, ca, eb, cb) == pytest.approx(_numeric(ea, ca, eb, cb), rel=1e-4, abs=1e-7)


def test_matches_scipy_on_samples():
    """Histograms of two normal samples give the W1 that scipy computes from the samples themselves."""
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 200_000), rng.normal(0.5, 1.5, 200_000)
    ca, ea = np.histogram(a, bins=np.arange(-6, 6.0001, 0.0625))
    cb, eb = np.histogram(b, bins=np.arange(-8, 9.0001, 0.125))
    assert wasserstein_hist(ea, ca, eb, cb) == pytest.approx(wasserstein_distance(a, b), abs=5e-3)


def test_shift_and_identity():
    """A histogram against itself is 0 (empty ones too), against a copy shifted by s exactly s."""
    e, c = np.array([0.0, 1.0, 2.0, 4.0]), np.array([1, 3, 2])
    assert wasserstein_hist(e, c, e, c) == 0.0
    assert wasserstein_hist(e, c, e + 0.7, c) == pytest.approx(0.7)
    assert np.isnan(wasserstein_hist(e, [0, 0, 0], e, c))
    assert wasserstein_hist(e, [0, 0, 0], e, [0, 0, 0]) == 0.0
