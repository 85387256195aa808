"""Tensor statistics and histograms against independent oracles (numpy, scipy.stats)."""

from __future__ import annotations

import importlib
import math
import warnings

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from weightreport.runfmt.schema import QUANTILES
from weightreport.stats import SMALL, describe, describe_array, describe_arrays, kernels
from weightreport.stats import compiled as stats_large
from weightreport.stats.compiled import _outside, _outside_from_counts, quantiles_from_counts
from weightreport.stats.fields import NAMES
from weightreport.stats.grid import histogram_grid
from weightreport.stats.torch_ops import device_grid, device_quantiles

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
SIZES = {"small": 1000, "large": SMALL + 23_617}  # the exact host path and the device path


@pytest.fixture(params=["compiled", "torch"])
def large_path(request, monkeypatch):
    """Run a test with the compiled CPU kernels and again with the torch ops accelerators use."""
    if request.param == "compiled" and not kernels.AVAILABLE:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(kernels, "AVAILABLE", request.param == "compiled")
    return request.param


def _finite(t: torch.Tensor) -> np.ndarray:
    x = t.detach().cpu().to(torch.float64).reshape(-1).numpy()
    return x[np.isfinite(x)]


def _scipy(fn, f: np.ndarray) -> float:
    with warnings.catch_warnings():  # scipy warns on near-constant data; the value is what we compare
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(fn(f))


def check_against_oracles(t: torch.Tensor, bins: int = 64) -> None:
    """Assert every statistic of ``describe([t])`` against numpy/scipy computed independently."""
    (d,), _ = describe([t], bins)
    s = d.stats
    x = t.detach().cpu().to(torch.float64).reshape(-1).numpy()
    f = x[np.isfinite(x)]
    small = t.numel() <= SMALL
    assert tuple(s) == NAMES  # every backend fills the summary fields, in order
    assert s["count"] == s["numel"] == t.numel()
    assert s["nan_count"] == int(np.isnan(x).sum())
    assert s["inf_count"] == int(np.isinf(x).sum())
    assert len(d.edges) == bins + 1 and len(d.counts) == bins
    assert all(type(c) is int for c in d.counts)
    assert sum(d.counts) == s["count"] - s["nan_count"] - s["inf_count"] == f.size
    if f.size == 0:
        assert d.counts == [0] * bins
        assert all(math.isnan(s[k]) for k in ("mean", "std", "var", "min", "max", "skew", "kurtosis"))
        assert s["zeros"] == s["outliers_3std"] == s["outliers_6std"] == s["outliers_iqr"] == 0
        return
    hist, _ = np.histogram(f, bins=np.asarray(d.edges))
    assert d.counts == hist.tolist()
    assert s["min"] == f.min() and s["max"] == f.max()
    assert s["zeros"] == int((f == 0).sum())
    std = float(np.std(f))
    if small:
        assert s["mean"] == pytest.approx(np.mean(f), rel=1e-12, abs=1e-12 * std)
        assert s["var"] == pytest.approx(np.var(f), rel=1e-10)
        assert s["std"] == pytest.approx(std, rel=1e-10)
        assert s["norm"] == pytest.approx(np.linalg.norm(f), rel=1e-12)
    else:
        assert s["mean"] == pytest.approx(np.mean(f), rel=1e-6, abs=1e-5 * std)
        assert s["var"] == pytest.approx(np.var(f), rel=1e-5)
        assert s["std"] == pytest.approx(std, rel=1e-5)
        assert s["norm"] == pytest.approx(np.linalg.norm(f), rel=1e-5)
    if std > 0:
        tol = {"rel": 1e-9, "abs": 1e-9} if small else {"rel": 1e-4, "abs": 1e-4}
        assert s["skew"] == pytest.approx(_scipy(scipy.stats.skew, f), **tol)
        assert s["kurtosis"] == pytest.approx(_scipy(scipy.stats.kurtosis, f), **tol)
    else:
        assert math.isnan(s["skew"]) and math.isnan(s["kurtosis"])
    exact = np.percentile(f, QUANTILES)
    width = d.edges[1] - d.edges[0]
    assert s["quantiles_exact"] is small
    for q, v in zip(QUANTILES, exact, strict=True):
        if small:
            assert s[f"p{q}"] == v
        else:
            assert abs(s[f"p{q}"] - v) <= width
    a = np.abs(f - np.mean(f))
    assert s["outliers_3std"] == int((a > 3 * std).sum())
    assert s["outliers_6std"] == int((a > 6 * std).sum())
    iqr = s["p75"] - s["p25"]
    lo, hi = s["p25"] - 1.5 * iqr, s["p75"] + 1.5 * iqr
    assert s["outliers_iqr"] == int(((f < lo) | (f > hi)).sum())


def _make(kind: str, n: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(hash((kind, n)) % 2**31)
    r = torch.randn(n, generator=g, dtype=torch.float64)
    if kind == "random":
        t = r
    elif kind == "skewed":
        t = torch.exp(r) * 3 - 1
    elif kind == "constant":
        t = torch.full((n,), 3.25, dtype=torch.float64)
    elif kind == "zeros":
        t = torch.zeros(n, dtype=torch.float64)
    elif kind == "sparse":
        t = torch.where(torch.rand(n, generator=g, dtype=torch.float64) < 0.01, r, 0.0)
    elif kind == "naninf":
        t = r.clone()
        t[::7] = math.nan
        t[3::11] = math.inf
        t[5::13] = -math.inf
    elif kind == "all_nan":
        t = torch.full((n,), math.nan, dtype=torch.float64)
    elif kind == "all_inf":
        t = torch.full((n,), -math.inf, dtype=torch.float64)
    elif kind == "huge":
        t = r * 1e30
    elif kind == "tiny":
        t = r * 1e-30
    elif kind == "offset":
        t = r + 1000.0
    elif kind == "outliers":
        t = r.clone()
        t[:: max(n // 50, 1)] = 40.0  # well separated from the bulk
    else:
        raise AssertionError(kind)
    return t.to(dtype)


KINDS = ["random", "skewed", "constant", "zeros", "sparse", "naninf", "all_nan", "all_inf",
         "huge", "tiny", "offset", "outliers"]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", KINDS)
def test_float32_statistics_match_oracles(kind, size, large_path):
    """Every statistic of a float32 tensor matches numpy/scipy on both the exact and the device path."""
    check_against_oracles(_make(kind, SIZES[size]))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("kind", ["random", "naninf", "sparse", "constant"])
def test_other_dtypes_match_oracles(kind, dtype, size, large_path):
    """float16, bfloat16 and float64 tensors are described as exactly as float32 ones."""
    check_against_oracles(_make(kind, SIZES[size], dtype))


@pytest.mark.parametrize("size", SIZES)
def test_float64_extreme_magnitudes_do_not_crash(size, large_path):
    """float64 tensors near the ends of the double range (1e300, 1e-310) are described, not crashed on."""
    for scale in (1e307, 1e300, 1e-300, 1e-310):
        t = _make("random", SIZES[size], torch.float64) * scale
        (d,), _ = describe([t])
        f = _finite(t)
        assert d.counts == np.histogram(f, bins=np.asarray(d.edges))[0].tolist()
        assert d.stats["min"] == f.min() and d.stats["max"] == f.max()
        if size == "large":  # the exact path sums as numpy does, and overflows with it at 1e307
            mean = np.mean(f / scale) * scale
            assert d.stats["mean"] == pytest.approx(mean, rel=1e-6, abs=1e-5 * scale)


def test_empty_tensor():
    """An empty tensor gets zero counts and NaN statistics, not an error."""
    (d,), _ = describe([torch.empty(0)])
    assert d.stats["count"] == 0 and sum(d.counts) == 0
    assert math.isnan(d.stats["mean"]) and len(d.edges) == 65


def test_scalar_and_multidimensional_shapes():
    """0-d and 4-d tensors are described over all their elements."""
    check_against_oracles(torch.tensor(2.5))
    check_against_oracles(torch.randn(8, 3, 5, 7, generator=torch.Generator().manual_seed(3)))
    check_against_oracles(torch.randn(32, 64, 3, 3, generator=torch.Generator().manual_seed(4)))


def test_counts_beyond_float32_integer_range(large_path):
    """Histogram counts are exact above 2**24 values in one bin, where float32 counting stalls."""
    n = 2**24 + 5
    t = torch.zeros(n)
    t[:3] = 1.0
    (d,), _ = describe([t], bins=4)
    assert sum(d.counts) == n and max(d.counts) == n - 3
    assert all(type(c) is int for c in d.counts)


def test_batched_describe_equals_one_at_a_time_and_returns_extras():
    """Describing several tensors at once gives the same rows as one at a time, and extras come back as float64."""
    g = torch.Generator().manual_seed(5)
    tensors = [torch.randn(10, generator=g), _make("naninf", 30000), torch.randn(20000, generator=g),
               torch.randn(4, 4, generator=g).half()]
    extras = [torch.tensor([1.5, 2.5]), torch.arange(3, dtype=torch.int64)]
    together, values = describe(tensors, 32, extras)
    for t, d in zip(tensors, together, strict=True):
        (alone,), _ = describe([t], 32)
        assert d.counts == alone.counts and d.edges == alone.edges
        assert d.stats == pytest.approx(alone.stats, nan_ok=True)
    assert values[0].tolist() == [1.5, 2.5] and values[1].tolist() == [0.0, 1.0, 2.0]
    assert all(v.dtype == np.float64 for v in values)


@pytest.mark.parametrize("device", DEVICES)
def test_same_counts_on_cpu_and_device(device):
    """The same tensor gives the same histogram and counts on the CPU and on ``device``."""
    for kind in ("random", "naninf", "huge", "sparse"):
        t = _make(kind, SIZES["large"])
        (cpu,), _ = describe([t])
        (dev,), _ = describe([t.to(device)])
        assert dev.counts == cpu.counts and dev.edges == cpu.edges
        for key in ("count", "nan_count", "inf_count", "zeros", "outliers_3std", "outliers_6std",
                    "outliers_iqr", "min", "max"):
            assert dev.stats[key] == cpu.stats[key], key


def test_device_quantiles_equal_host_quantiles():
    """The torch implementation of histogram quantiles equals the numpy one, number for number."""
    rng = np.random.default_rng(6)
    for _ in range(20):
        bins = int(rng.integers(2, 80))
        counts = rng.integers(0, 50, bins) * (rng.random(bins) < 0.7)
        counts[rng.integers(0, bins)] += 1
        grid = histogram_grid(-3.0, 5.0, bins)
        n = int(counts.sum())
        host = quantiles_from_counts(counts, grid, n)
        dev = device_quantiles(torch.from_numpy(counts), torch.tensor(grid.first_index, dtype=torch.float64),
                               torch.tensor(grid.width, dtype=torch.float64), torch.tensor(n)).numpy()
        np.testing.assert_allclose(dev, host, rtol=0, atol=1e-12 * grid.width * bins)


def test_histogram_quantiles_lie_within_one_bin():
    """Quantiles interpolated from the counts are within one bin width of np.percentile."""
    rng = np.random.default_rng(7)
    for dist in (rng.normal(size=5000), rng.exponential(size=5000), rng.integers(0, 5, 5000) * 1.0):
        grid = histogram_grid(float(dist.min()), float(dist.max()), 64)
        counts, _ = np.histogram(dist, bins=np.asarray(grid.edges))
        q = quantiles_from_counts(counts, grid, dist.size)
        assert np.all(np.abs(q - np.percentile(dist, QUANTILES)) <= grid.width)


@settings(max_examples=150, deadline=None)
@given(hnp.arrays(np.float32, st.integers(0, 300),
                  elements=st.floats(width=32, allow_nan=True, allow_infinity=True)))
def test_property_small_arrays(x):
    """Any float32 array, NaN, Inf and extreme values included, is described exactly on the host path."""
    check_against_oracles_or_overflow(torch.from_numpy(x.copy()))


def check_against_oracles_or_overflow(t: torch.Tensor) -> None:
    """Histogram, counts, range and zeros always exact; moments checked where float64 cannot overflow."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy overflow in x*x for |x| > 1e154
        (d,), _ = describe([t])
    f = _finite(t)
    s = d.stats
    assert sum(d.counts) == f.size == s["count"] - s["nan_count"] - s["inf_count"]
    if f.size == 0:
        return
    assert d.counts == np.histogram(f, bins=np.asarray(d.edges))[0].tolist()
    assert (s["min"], s["max"], s["zeros"]) == (f.min(), f.max(), int((f == 0).sum()))
    assert d.edges[0] <= f.min() and f.max() < d.edges[-1]
    if np.abs(f).max() < 1e150 and (f.size == 1 or np.ptp(f) > 1e-150):
        check_against_oracles(t)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(SMALL + 1, 3 * SMALL),
    exponent=st.integers(-35, 35),
    offset=st.sampled_from([0.0, 1.0, -7.0, 1000.0]),
    dist=st.sampled_from(["normal", "uniform", "lognormal", "integers"]),
    nan_fraction=st.sampled_from([0.0, 0.0, 0.01]),
    dtype=st.sampled_from([torch.float32, torch.float32, torch.float16, torch.float64]),
)
def test_property_large_tensors(seed, n, exponent, offset, dist, nan_fraction, dtype, large_path):
    """Large tensors of any scale and shape of distribution keep exact counts and one-bin quantiles."""
    rng = np.random.default_rng(seed)
    x = {"normal": rng.normal, "uniform": rng.random, "lognormal": rng.lognormal,
         "integers": lambda size: rng.integers(-4, 5, size) * 1.0}[dist](size=n)
    x = (x + offset) * 10.0**exponent
    if nan_fraction:
        x[rng.random(n) < nan_fraction] = np.nan
    t = torch.from_numpy(x).to(dtype)
    if dtype == torch.float16 and abs(exponent) > 3:
        t = torch.from_numpy(x / 10.0**exponent).to(dtype)  # keep float16 in its range
    check_against_oracles_or_overflow(t)


def test_describe_array_is_the_small_path():
    """describe_array on a float64 numpy array agrees with describe on the same tensor."""
    x = np.random.default_rng(8).normal(size=500)
    a = describe_array(x)
    (b,), _ = describe([torch.from_numpy(x)])
    assert a.counts == b.counts and a.stats == pytest.approx(b.stats)


def test_iqr_fences_use_the_reported_percentiles(large_path):
    """outliers_iqr counts against the reported (clamped) p25/p75, even when p25 is the minimum."""
    rng = np.random.default_rng(12462)  # found by hypothesis: p25 interpolates below the minimum
    t = torch.from_numpy(rng.lognormal(size=SMALL + 1) + 1.0).float()
    (d,), _ = describe([t])
    s, f = d.stats, t.numpy()
    assert s["p25"] == s["min"]
    iqr = s["p75"] - s["p25"]
    lo, hi = s["p25"] - 1.5 * iqr, s["p75"] + 1.5 * iqr
    assert s["outliers_iqr"] == int(((f < lo) | (f > hi)).sum())



def test_thresholds_compare_in_float32_as_in_exact_arithmetic():
    """Float64 thresholds rounded for float32 comparisons count what float64 comparisons count."""
    rng = np.random.default_rng(13)
    v = (rng.normal(size=20000) + 1000.0).astype(np.float32)
    wide = v.astype(np.float64)
    for below, above in rng.normal(size=(200, 2)) * 3 + 1000.0:
        b, a = _outside(below, above, v)
        assert b.dtype == a.dtype == np.float32
        assert int(((v < b) | (v > a)).sum()) == int(((wide < below) | (wide > above)).sum())
    b, a = _outside(-1e300, 1e300, v)  # beyond float32's range: nothing is outside
    assert int(((v < b) | (v > a)).sum()) == 0


def test_outliers_at_a_large_offset(large_path):
    """Values near 1000 in float32: the 3σ count matches float64 numpy (hypothesis found a miss)."""
    rng = np.random.default_rng(5550424)
    check_against_oracles(torch.from_numpy(rng.normal(size=48709) + 1000.0).float())


def _missed_by_sample(n: int) -> np.ndarray:
    """Where ``n`` values lie outside the sample that gives the moments' scale and shift."""
    missed = np.ones(n, bool)
    missed[stats_large.sample_of(np.arange(n))] = False
    assert 0 < missed.sum() < n
    return missed


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", ["outlier", "tiny_beside_zeros", "nan_between", "huge_beside_zeros"])
def test_values_the_sample_misses(case, dtype, large_path):
    """The moments' scale and shift come from a sample: values it never sees keep every number exact."""
    n = SMALL + 23_617
    x = np.random.default_rng(17).normal(size=n)
    missed = _missed_by_sample(n)
    if case == "outlier":
        x[np.flatnonzero(missed)[:3]] = [1e12, -3e11, 5e10]
    elif case == "tiny_beside_zeros":
        x = np.where(missed, x * 1e-30, 0.0)
    elif case == "huge_beside_zeros":
        x = np.where(missed, x * 1e30, 0.0)
    else:
        x[np.flatnonzero(missed)[::1000]] = np.nan
    check_against_oracles(torch.from_numpy(x).to(dtype))


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 2000), bins=st.sampled_from([2, 7, 64]),
       grain=st.sampled_from([None, 0.25, 1.0]), dtype=st.sampled_from([np.float32, np.float64]))
def test_outside_from_counts_is_exact_or_declines(seed, n, bins, grain, dtype):
    """Counts outside thresholds read off the histogram equal a comparison of every value, or are None."""
    rng = np.random.default_rng(seed)
    x = rng.standard_t(3, n)
    if grain:  # values on a lattice: thresholds fall on values and on bin edges
        x = np.round(x / grain) * grain
    x = x.astype(dtype)
    lo, hi = float(x.min()), float(x.max())
    grid = histogram_grid(lo, hi, bins)
    counts = np.histogram(x, np.asarray(grid.edges))[0].tolist()
    candidates = [*rng.choice(x, 4), *grid.edges[::3], lo - 1.0, hi + 1.0, *rng.normal(size=4) * 3]
    decided = 0
    for below, above in rng.choice(np.asarray(candidates, dtype=np.float64), (30, 2)):
        below, above = sorted((below, above))
        b, a = _outside(below, above, x)
        got = _outside_from_counts(counts, grid, lo, hi, float(b), float(a))
        if got is not None:
            decided += 1
            assert got == int(((x < b) | (x > a)).sum())
    if n == 1:
        assert decided == 30


def test_helper_thread_changes_no_number(monkeypatch):
    """Large tensors described partly on the helper thread give the same results as on one thread."""
    if not kernels.AVAILABLE:
        pytest.skip("numba is not installed")
    tensors = [_make(kind, SIZES["large"] + k) for k, kind in enumerate(("random", "naninf", "skewed", "sparse"))]
    tensors += [_make("random", 100), _make("outliers", 5000)]
    monkeypatch.setattr(kernels, "can_share", lambda: True)
    shared, _ = describe(tensors)
    monkeypatch.setattr(kernels, "can_share", lambda: False)
    alone, _ = describe(tensors)
    for a, b in zip(shared, alone, strict=True):
        assert a.counts == b.counts and a.edges == b.edges
        assert a.stats == pytest.approx(b.stats, nan_ok=True, rel=0, abs=0)


def test_device_grid_equals_host_grid():
    """The tensor-op grid is histogram_grid's, edge for edge, or says it is not (ok false)."""
    rng = np.random.default_rng(15)
    cases = [(0.0, 0.0), (3.25, 3.25), (-1e-300, 1e-300), (-5e-324, 0.0), (1.0, 1.0 + 2**-40),
             (1e30, 1e30 + 1e15), (-7.0, 1000.0), (-1e300, 1e300), (2**-1070, 2**-1060)]
    cases += [tuple(sorted(rng.normal(size=2) * 10.0 ** rng.integers(-30, 30))) for _ in range(300)]
    cases += [(float(v), float(v) + float(w)) for v, w in rng.normal(size=(100, 2)) * 1000]
    for bins in (2, 7, 64, 200):
        for lo, hi in cases:
            hi = max(lo, hi)
            first, k, ok = device_grid(torch.tensor(lo, dtype=torch.float64),
                                       torch.tensor(hi, dtype=torch.float64), bins)
            host = histogram_grid(lo, hi, bins)
            assert bool(ok), (lo, hi, bins)
            assert (float(first), math.ldexp(1.0, int(k))) == (host.first_index, host.width), (lo, hi, bins)


def test_device_grid_that_does_not_settle_falls_back_to_the_host(monkeypatch):
    """Where the device loop gives up, the tensor is described on the host, exactly."""
    import weightreport.stats.torch_ops as st

    monkeypatch.setattr(kernels, "AVAILABLE", False)  # the torch path, here on the CPU
    monkeypatch.setattr(st, "_GRID_TRIES", 0)
    t = _make("random", SIZES["large"])
    (d,), _ = describe([t])
    assert d.stats["quantiles_exact"]  # described by describe_array
    check_hist = np.histogram(_finite(t), bins=np.asarray(d.edges))[0].tolist()
    assert d.counts == check_hist


def test_one_host_transfer_per_describe(monkeypatch):
    """Small tensors, extras and every large tensor on the torch path come back in one transfer."""
    stats_module = importlib.import_module("weightreport.stats.batch")

    monkeypatch.setattr(kernels, "AVAILABLE", False)  # the accelerator's path, run on the CPU
    calls = []
    real = stats_module._to_host
    monkeypatch.setattr(stats_module, "_to_host", lambda parts: calls.append(len(parts)) or real(parts))
    tensors = [_make("random", SIZES["large"]), _make("naninf", SIZES["large"] + 1), _make("skewed", 300)]
    descriptions, extras = describe(tensors, 64, [torch.tensor([1.0, 2.0])])
    assert calls == [4]  # one extra, one small tensor, two large tensors' numbers
    assert extras[0].tolist() == [1.0, 2.0] and len(descriptions) == 3


def _same_description(a, b) -> None:
    assert a.counts == b.counts and a.edges == b.edges
    assert a.stats.keys() == b.stats.keys()
    for key, value in b.stats.items():
        assert a.stats[key] == value or (value != value and a.stats[key] != a.stats[key]), key


@settings(max_examples=150, deadline=None)
@given(st.lists(hnp.arrays(np.float64, st.integers(0, 300),
                           elements=st.floats(allow_nan=True, allow_infinity=True, width=32)),
                min_size=1, max_size=5),
       st.sampled_from([2, 7, 64]))
def test_compiled_small_path_equals_numpy_bit_for_bit(arrays, bins):
    """describe_arrays (compiled, numpy's pairwise sums reproduced) gives describe_array's numbers exactly."""
    block = np.concatenate(arrays)
    for a, d in zip(arrays, describe_arrays(block, [a.size for a in arrays], bins), strict=True):
        _same_description(d, describe_array(a.copy(), bins))


def test_compiled_small_path_on_realistic_pieces():
    """Pieces of every scale, a tie at exactly 3σ, signed zeros and 16,384 values: numpy's numbers."""
    rng = np.random.default_rng(16)
    tie = np.zeros(10)
    tie[0] = 1.0  # |x - mean| is exactly 3σ in real arithmetic
    arrays = [rng.normal(size=512), tie, np.full(7, 2.5), rng.normal(size=5000) * 1e-30 + 1.0,
              rng.lognormal(size=300) * 1e20, np.array([0.0, -0.0, 1.0]), rng.normal(size=16384),
              rng.integers(-3, 4, 1000) * 0.5, np.array([np.nan, 1.0]), np.zeros(0)]
    block = np.concatenate(arrays)
    for a, d in zip(arrays, describe_arrays(block, [a.size for a in arrays]), strict=True):
        _same_description(d, describe_array(a.copy()))


@pytest.mark.skipif(not kernels.AVAILABLE, reason="numba is not installed")
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("case", ["normal", "offset", "nan_beyond_sample", "peak_missed", "tiny", "constant"])
def test_compiled_calls_equal_the_stepwise_path(seed, case):
    """The three-call float32 path (and its declines) gives ``_describe_stepwise``'s numbers and its norms ``distances``'."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(SMALL + 1, 200_000))
    x = rng.normal(0.0, 0.02, n)
    if case == "offset":
        x += 1000.0
    elif case == "nan_beyond_sample":
        x[np.flatnonzero(_missed_by_sample(n))[0]] = np.nan
    elif case == "peak_missed":
        x[np.flatnonzero(_missed_by_sample(n))[5]] = 1e9
    elif case == "tiny":
        x *= 1e-35
    elif case == "constant":
        x[:] = 0.25
    x = x.astype(np.float32)
    prev = rng.normal(0.0, 0.02, n).astype(np.float32)
    init = rng.normal(0.0, 0.02, n).astype(np.float32)
    p1 = prev.copy()
    described, norms = stats_large._describe_compiled(torch.from_numpy(x), 64, (p1, init))
    assert described == stats_large._describe_stepwise(torch.from_numpy(x), 64)
    p2 = prev.copy()
    np.testing.assert_array_equal(norms, kernels.distances(x, p2, init))
    np.testing.assert_array_equal(p1, x)
    np.testing.assert_array_equal(p2, x)
