"""Exact histogram grids: power-of-two widths, edges on multiples of the width."""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from weightreport.stats.grid import histogram_grid

finite = st.floats(min_value=-1e300, max_value=1e300, allow_nan=False, allow_infinity=False)


def _is_pow2(w: float) -> bool:
    return w > 0 and math.frexp(w)[0] == 0.5


@settings(max_examples=300, deadline=None)
@given(a=finite, b=finite, bins=st.integers(2, 256))
def test_grid_covers_the_range_with_exact_edges(a, b, bins):
    """Any range gets a grid of ``bins`` power-of-two-wide bins whose edges are exact and cover [lo, hi]."""
    lo, hi = min(a, b), max(a, b)
    grid = histogram_grid(lo, hi, bins)
    edges = grid.edges
    assert grid.bins == bins and len(edges) == bins + 1
    assert _is_pow2(grid.width)
    assert grid.first_index == math.floor(grid.first_index)
    assert edges[0] <= lo and hi < edges[-1]
    assert all(e == (grid.first_index + i) * grid.width for i, e in enumerate(edges))
    assert all(b2 > b1 for b1, b2 in itertools.pairwise(edges))


@settings(max_examples=200, deadline=None)
@given(lo=st.floats(-1e6, 1e6), span=st.floats(1e-6, 1e6), bins=st.integers(2, 128))
def test_grid_is_not_needlessly_wide(lo, span, bins):
    """The width is at most four times the range per bin, so the data spans at least a quarter of the bins."""
    grid = histogram_grid(lo, lo + span, bins)
    assert grid.width <= 4 * span / bins


@settings(max_examples=200, deadline=None)
@given(value=finite, bins=st.integers(2, 128))
def test_constant_range(value, bins):
    """A constant value gets a grid at least as wide as 1 (or the value) that contains it."""
    grid = histogram_grid(value, value, bins)
    assert grid.edges[0] <= value < grid.edges[-1]
    assert grid.width * bins >= max(abs(value), 1.0) * (1 - 1e-12)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.integers(-30, 30), bins=st.integers(2, 100))
def test_floor_binning_equals_numpy_histogram(seed, scale, bins):
    """floor(x / width) - first_index puts every float32 value in the bin numpy.histogram gives it."""
    x = (np.random.default_rng(seed).normal(size=2000) * 10.0**scale).astype(np.float32)
    grid = histogram_grid(float(x.min()), float(x.max()), bins)
    idx = (np.floor(x / np.float32(grid.width)) - np.float32(grid.first_index)).astype(np.int64)
    ours = np.bincount(idx, minlength=bins)
    theirs, _ = np.histogram(x.astype(np.float64), bins=np.asarray(grid.edges))
    assert ours.tolist() == theirs.tolist()
