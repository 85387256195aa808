"""inspect's own exact describer: the collector's exact host path's numbers, numpy's percentiles, counts exact in float32."""

from __future__ import annotations

import math

import numpy as np
import pytest

from weightreport.inspect.describe import CHUNK, _count, describe_values
from weightreport.stats.exact import describe_array
from weightreport.stats.fields import PERCENTILE_KEYS
from weightreport.stats.grid import histogram_grid

QS = (1, 5, 25, 50, 75, 95, 99)


def _same(a, b, rel=0.0):
    """Two summaries agree: exactly, or floats within ``rel``; NaN matches NaN."""
    assert a.keys() == b.keys()
    for key, x in a.items():
        y = b[key]
        if isinstance(x, float) and math.isnan(x):
            assert math.isnan(y), key
        elif rel and isinstance(x, float):
            assert x == pytest.approx(y, rel=rel, abs=1e-300), key
        else:
            assert x == y, key


def _cases():
    rng = np.random.default_rng(0)
    heavy = rng.standard_t(2, 5000) * 0.02
    special = rng.standard_normal(3000)
    special[[3, 5]] = np.nan
    special[7], special[9], special[10:20] = np.inf, -np.inf, 0.0
    return {"gaussian": rng.standard_normal(1000) * 3 + 1, "heavy tail": heavy, "special values": special,
            "one value": np.array([2.5]), "constant": np.full(40, -1.25), "all nan": np.full(9, np.nan),
            "subnormal": np.array([1e-40, -1e-42, 3.0, 0.0]), "ties": np.repeat([0.1, 0.2, 0.3], 50)}


@pytest.mark.parametrize("name", list(_cases()))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_equals_the_exact_host_path_bit_for_bit(name, dtype):
    """Up to CHUNK values, every field, edge and count equals stats.exact.describe_array of the float64 widening."""
    x = _cases()[name].astype(dtype)
    got, want = describe_values(x), describe_array(x.astype(np.float64))
    _same(got.stats, want.stats)
    assert got.edges == want.edges and got.counts == want.counts
    assert got.stats["quantiles_exact"] is True


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunked_moments_agree_and_the_rest_is_exact(dtype):
    """Past CHUNK values the moments agree to 1e-12 and every count, percentile and the range stay exact."""
    rng = np.random.default_rng(1)
    x = (rng.standard_t(3, 3 * CHUNK + 17 * 1000) * 0.05 + 0.01).astype(dtype)
    x[::1001] = 0.0
    got, want = describe_values(x.reshape(-1, 8)), describe_array(x.astype(np.float64))
    _same(got.stats, want.stats, rel=1e-12)
    for key in ("min", "max", "zeros", "outliers_iqr", *PERCENTILE_KEYS):
        assert got.stats[key] == want.stats[key], key
    assert got.edges == want.edges and got.counts == want.counts


def test_percentiles_and_histogram_match_numpy():
    """The percentiles are numpy.percentile's, the counts numpy.histogram's, and NaN/Inf are counted, not dropped."""
    x = _cases()["special values"].astype(np.float32)
    got = describe_values(x)
    finite = x[np.isfinite(x)].astype(np.float64)
    assert [got.stats[k] for k in PERCENTILE_KEYS] == np.percentile(finite, QS).tolist()
    assert got.counts == np.histogram(finite, got.edges)[0].tolist()
    assert (got.stats["nan_count"], got.stats["inf_count"], got.stats["numel"]) == (2, 2, x.size)
    assert got.stats["mean"] == pytest.approx(finite.mean(), rel=1e-12)


def test_float32_counts_are_exact_against_float64_thresholds():
    """Counting float32 values below or up to a float64 threshold float32 cannot hold gives the widened count."""
    rng = np.random.default_rng(2)
    s = np.sort(rng.standard_normal(20000).astype(np.float32))
    wide = s.astype(np.float64)
    near = [float(v) for v in s[::997]]
    thresholds = [t + d for t in near for d in (-1e-12, 0.0, 1e-12)] + [1e300, -1e300, 0.0]
    for side in ("left", "right"):
        assert _count(s, thresholds, side) == np.searchsorted(wide, thresholds, side=side).tolist(), side


def test_grid_edges_cover_every_value():
    """The histogram holds every finite value on the exact grid of its range."""
    x = np.random.default_rng(3).standard_normal(CHUNK + 5).astype(np.float32) * 1e-3
    got = describe_values(x)
    assert sum(got.counts) == x.size
    assert got.edges == histogram_grid(float(x.min()), float(x.max()), 64).edges
