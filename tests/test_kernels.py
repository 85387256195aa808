"""The compiled CPU kernels against numpy, one by one (``describe`` tests cover them in use)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from weightreport.stats import kernels
from weightreport.stats.grid import histogram_grid

pytestmark = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba is not installed")


def _printed_by(code: str) -> list[str]:
    """The words ``code`` prints, run in a fresh Python process (its own imports and threads)."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


def _keys(x: np.ndarray) -> np.ndarray:
    return x.view(np.int32 if x.dtype == np.float32 else np.int64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 255, 256, 257, 70_001])
def test_range_moments_match_numpy(dtype, n):
    """Min and max equal numpy's; sums of the shifted powers equal numpy's float64 sums to float32 accuracy."""
    x = np.random.default_rng(n).normal(2.0, 0.5, n).astype(dtype)
    lo, hi, *got = kernels.range_moments(x, _keys(x), 0.25, 0.5)
    assert (lo, hi) == (x.min(), x.max())
    d = x.astype(np.float64) * 0.25 - 0.5
    want = [d.sum(), (d**2).sum(), (d**3).sum(), (d**4).sum()]
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_range_of_signs_zeros_and_extremes(dtype):
    """The integer-key range orders negatives, signed zeros, subnormals and the largest finite values as floats do."""
    info = np.finfo(dtype)
    rng = np.random.default_rng(3)
    cases = [
        [-0.0, 0.0], [0.0, -0.0], [-3.0, -2.0, -7.5], [info.smallest_subnormal, -info.smallest_subnormal],
        [info.max, -info.max, 1.0], [5.0], rng.normal(size=1000) * 1e-30, rng.standard_cauchy(777),
    ]
    for values in cases:
        x = np.asarray(values, dtype=dtype)
        lo, hi, *_ = kernels.range_moments(x, _keys(x), 1.0, 0.0)
        assert lo == x.min() and hi == x.max()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, -np.nan, np.inf, -np.inf])
def test_range_is_not_finite_where_a_value_is_not(dtype, bad):
    """A NaN of either sign or an infinity anywhere makes the range non-finite (the caller then compacts)."""
    for where in (0, 255, 256, 999):
        x = np.random.default_rng(where).normal(size=1000).astype(dtype)
        x[where] = bad
        lo, hi, *_ = kernels.range_moments(x, _keys(x), 1.0, 0.0)
        assert not (np.isfinite(lo) and np.isfinite(hi))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [3, 2048, 2049, 100_003])
@pytest.mark.parametrize("bins", [2, 7, 64, 65, 300])
def test_histogram_equals_numpy_histogram(dtype, n, bins):
    """Counts on an exact grid equal numpy.histogram's with the same edges, bin for bin (counted by pairs up
    to 64 bins, one by one above); the threshold and zero counts beside them equal numpy's."""
    rng = np.random.default_rng(n)
    x = np.concatenate([rng.standard_t(3, n), [0.0, -0.0]]).astype(dtype)
    x[::17] = 0.0
    grid = histogram_grid(float(x.min()), float(x.max()), bins)
    t = [dtype(v) for v in (-1.5, 1.4, -3.0, 2.9)]
    got, out3, out6, zeros = kernels.histogram(x, 1.0 / grid.width, grid.first_index, grid.bins, *t)
    assert got.dtype == np.int64
    assert got.tolist() == np.histogram(x, np.asarray(grid.edges))[0].tolist()
    assert out3 == int(((x < t[0]) | (x > t[1])).sum())
    assert out6 == int(((x < t[2]) | (x > t[3])).sum())
    assert zeros == int((x == 0).sum())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_outside_matches_numpy(dtype):
    """Counts outside a pair of thresholds, ties with a threshold not counted, as numpy counts them."""
    x = np.random.default_rng(1).normal(size=50_001).astype(dtype)
    x[::100] = dtype(-0.7)
    for below, above in ((-0.7, 0.6), (-1.5, 1.4), (5.0, 6.0), (-np.inf, np.inf)):
        b, a = dtype(below), dtype(above)
        assert kernels.outside(x, b, a) == int(((x < b) | (x > a)).sum())


def test_distances_and_the_copy_into_prev():
    """‖w − prev‖², ‖prev‖², ‖w − init‖² match numpy, and prev holds w afterwards."""
    rng = np.random.default_rng(2)
    w, prev, init = (rng.normal(size=10_007).astype(np.float32) for _ in range(3))
    old = prev.astype(np.float64)
    got = kernels.distances(w, prev, init)
    wd = w.astype(np.float64)
    want = [((wd - old) ** 2).sum(), (old**2).sum(), ((wd - init) ** 2).sum()]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert np.array_equal(prev, w)


def test_kernels_compile_without_a_writable_cache():
    """Where numba finds no cache directory it compiles per process instead of failing at import."""
    from numba.core import caching

    if not hasattr(getattr(caching, "CacheImpl", None), "_locator_classes"):
        pytest.skip("numba's cache locators moved; nothing to simulate")
    code = (
        "from numba.core import caching\n"
        "caching.CacheImpl._locator_classes = []\n"
        "import numpy as np\n"
        "from weightreport.stats import kernels\n"
        "print(kernels.outside(np.ones(10, np.float32), np.float32(2), np.float32(3)))\n"
    )
    assert _printed_by(code) == ["10"]


def test_helper_thread_is_joined_before_fork():
    """Forking (DataLoader workers) leaves no helper thread behind, and the next use starts one."""
    code = (
        "import os, threading\n"
        "from weightreport.stats import kernels\n"
        "kernels.helper().submit(int).result()\n"
        "assert any(t.name.startswith('weightreport-kernels') for t in threading.enumerate())\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "print(any(t.name.startswith('weightreport-kernels') for t in threading.enumerate()))\n"
        "print(kernels.helper().submit(int, '7').result())\n"
    )
    assert _printed_by(code) == ["False", "7"]


def test_reading_and_reporting_do_not_load_numba():
    """Importing the package, the report builder and the CLI leaves numba unloaded until a kernel runs."""
    code = (
        "import sys\n"
        "import weightreport, weightreport.report.build, weightreport.cli\n"
        "print('numba' in sys.modules)\n"
        "import numpy as np\n"
        "from weightreport.stats import kernels\n"
        "kernels.outside(np.ones(3, np.float32), np.float32(0), np.float32(2))\n"
        "print('numba' in sys.modules)\n"
    )
    assert _printed_by(code) == ["False", "True"]


@pytest.mark.parametrize("n", [257, 70_001, 1_179_648])
def test_fused_norms_equal_range_moments_and_distances(n):
    """``range_moments_distances`` gives ``range_moments`` and ``distances`` bit for bit, and copies into prev."""
    rng = np.random.default_rng(n)
    x = (rng.normal(0.001, 0.02, n)).astype(np.float32)
    prev = (x + rng.normal(0, 1e-3, n)).astype(np.float32)
    init = rng.normal(0, 0.02, n).astype(np.float32)
    p1, p2 = prev.copy(), prev.copy()
    want = (*kernels.range_moments(x, _keys(x), 32.0, 0.001), *kernels.distances(x, p1, init))
    got = kernels.range_moments_distances(x, _keys(x), 32.0, 0.001, p2, init)
    assert got == want
    assert (p2 == x).all() and (p1 == p2).all()


def test_quick_handoffs_restores_the_switch_interval():
    """The switch interval is lowered inside ``quick_handoffs`` and restored after it, also after an error."""
    before = sys.getswitchinterval()
    with kernels.quick_handoffs():
        assert sys.getswitchinterval() <= 0.0005
    assert sys.getswitchinterval() == before
    with pytest.raises(ZeroDivisionError), kernels.quick_handoffs():
        1 / 0  # noqa: B018 - the error is the point
    assert sys.getswitchinterval() == before


def test_compiled_grid_equals_histogram_grid():
    """``kernels_describe._grid`` (the compiled large path's copy) gives ``grid.histogram_grid``'s first index and width."""
    from weightreport.stats import kernels_describe

    rng = np.random.default_rng(21)
    cases = [(0.0, 0.0), (3.25, 3.25), (-1.0, 1.0), (1.0, 1.0 + 2**-20), (-7.0, 1000.0), (1e30, 1e30 + 1e24),
             (-3e38, 3e38), (1e-38, 2e-38), (-1e-45, 0.0)]
    cases += [tuple(sorted(rng.normal(size=2) * 10.0 ** rng.integers(-30, 30))) for _ in range(300)]
    cases += [(float(v), float(v) + abs(float(w))) for v, w in rng.normal(size=(100, 2)) * 1000]
    for bins in (2, 7, 64, 200):
        for lo, hi in cases:
            lo, hi = float(np.float32(lo)), float(np.float32(max(lo, hi)))
            host = histogram_grid(lo, hi, bins)
            assert kernels_describe._grid(lo, hi, bins) == (host.first_index, host.width), (lo, hi, bins)
