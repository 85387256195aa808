"""SmallParams: the small parameters' squares and trajectory values from a host block, against numpy."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from weightreport.collect.small_params import SmallParams
from weightreport.stats import kernels


@pytest.fixture(autouse=True, params=["compiled", "numpy"])
def path(request, monkeypatch):
    """Every test on both paths: the compiled pass, and numpy's without numba."""
    if request.param == "compiled" and not kernels.AVAILABLE:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(kernels, "AVAILABLE", request.param == "compiled")
    return request.param


def _squares(w, prev, init):
    return [float(np.sum((w - prev) ** 2)), float(np.sum(prev**2)), float(np.sum((w - init) ** 2))]


def test_squares_and_trajectories_match_numpy_through_snapshots():
    """First snapshot [‖w‖², NaN, ‖w − w₀‖²], later ones the three squares; an empty parameter holds no place."""
    rng = np.random.default_rng(0)
    layout = [("a", 5), ("empty", 0), ("b", 3)]
    init = {"a": torch.from_numpy(rng.standard_normal(5).astype(np.float32)),
            "b": torch.from_numpy(rng.standard_normal(3).astype(np.float32))}
    small = SmallParams(layout, init, {"a": [0, 4], "b": [2]})
    assert small.names == ["a", "b"] and small.size == 8
    tail = rng.standard_normal(4)  # other small tensors after the parameters in the block
    blocks = [np.concatenate([rng.standard_normal(8), tail]) for _ in range(3)]
    w0 = {n: init[n].double().numpy() for n in init}
    first = small.values(blocks[0])
    a, b = blocks[0][:5], blocks[0][5:8]
    assert first[("norms", "a")][0] == pytest.approx(np.sum(a**2), rel=1e-12)
    assert math.isnan(first[("norms", "a")][1])
    assert first[("norms", "b")][2] == pytest.approx(np.sum((b - w0["b"]) ** 2), rel=1e-12)
    for before, now in itertools.pairwise(blocks):
        got = small.values(now)
        for name, lo, hi in (("a", 0, 5), ("b", 5, 8)):
            np.testing.assert_allclose(got[("norms", name)], _squares(now[lo:hi], before[lo:hi], w0[name]),
                                       rtol=1e-12)
        assert got[("trajectory", "a")].tolist() == [now[0], now[4]]
        assert got[("trajectory", "b")].tolist() == [now[7]]
        assert ("trajectory", "empty") not in got and ("norms", "empty") not in got


def test_missing_init_and_nan_weights_give_nan_squares():
    """An unknown initial value makes the last square NaN; a NaN weight makes its parameter's squares NaN only."""
    small = SmallParams([("x", 2), ("y", 2)], {"y": torch.zeros(2)}, {})
    small.values(np.array([1.0, 2.0, 3.0, 4.0]))
    got = small.values(np.array([1.0, np.nan, 3.0, 5.0]))
    assert all(math.isnan(v) for v in got[("norms", "x")][[0, 2]])
    assert got[("norms", "y")].tolist() == [1.0, 25.0, 34.0]
    assert not any(key[0] == "trajectory" for key in got)
