"""The columnar small-tensor path against the one-tensor-at-a-time path, bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from weightreport.collect.rows import stats_tables
from weightreport.runfmt.schema import SCHEMAS
from weightreport.stats import describe_array, kernels
from weightreport.stats.columns import Columns
from weightreport.stats.exact import describe_columns
from weightreport.stats.fields import NAMES, Moments, summary, summary_columns
from weightreport.stats.grid import histogram_grid


def _bits(value) -> object:
    """A value as something ``==`` compares exactly: floats by their bits (NaN, -0.0 included)."""
    if isinstance(value, float):
        return np.float64(value).tobytes()
    return value


def _same(columns: Columns, i: int, expected) -> None:
    got = columns.description(i)
    assert got.stats.keys() == expected.stats.keys()
    for key, value in expected.stats.items():
        assert type(got.stats[key]) is type(value), key
        assert _bits(got.stats[key]) == _bits(value), key
    assert [_bits(e) for e in got.edges] == [_bits(e) for e in expected.edges]
    assert got.counts == expected.counts


def _pieces() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [
        np.zeros(0), np.array([2.5]), np.array([-0.0]), rng.normal(size=1024),
        rng.normal(size=32).astype(np.float32).astype(np.float64),  # float32 values, widened
        np.array([np.nan, 1.0, np.inf]), np.array([-np.inf]), np.array([np.nan] * 3), np.full(9, 7.0),
        np.array([0.0, -0.0, 0.0, 1.0]), rng.normal(size=300) * 1e300, rng.normal(size=50) * 1e-310,
        np.array([-1e308, 1e308]), rng.lognormal(size=777) * 1e20, rng.integers(-3, 4, 1000) * 0.5,
        rng.normal(size=16384), np.array([1.0, np.nan]), rng.normal(size=1024),
    ]


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("bins", [2, 7, 64])
def test_columns_equal_describe_array_on_every_kind_of_piece(compiled, bins, monkeypatch):
    """Empty, one-element, NaN/Inf, constant, signed-zero, extreme and float32-valued pieces: the same numbers."""
    if compiled and not kernels.AVAILABLE:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(kernels, "AVAILABLE", compiled)
    pieces = _pieces()
    with np.errstate(all="ignore"):
        columns = describe_columns(np.concatenate(pieces), [p.size for p in pieces], bins)
    assert len(columns) == len(pieces)
    for i, piece in enumerate(pieces):
        _same(columns, i, describe_array(piece.copy(), bins))


@pytest.mark.skipif(not kernels.AVAILABLE, reason="numba is not installed")
def test_pieces_shared_with_the_helper_equal_describe_array(monkeypatch):
    """Sorted and described on the helper thread, unit by unit: every piece's numbers as
    ``describe_array`` gives them."""
    import threading

    from weightreport.stats import exact, kernels_describe

    pieces = _pieces() * 5  # 90 pieces, over SHARE_FROM values
    block = np.concatenate(pieces)
    assert block.size >= exact.SHARE_FROM
    threads = set()
    real = kernels_describe.describe_small

    def traced(*args):
        threads.add(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(kernels_describe, "describe_small", traced)
    with np.errstate(all="ignore"):
        shared = exact.SortedPieces(block, [p.size for p in pieces], 64, share=True)
        shared._helper.result()  # the helper drains every unit the caller has not claimed: here, all
        columns = shared.columns()
    assert {name.split("_")[0] for name in threads} == {"weightreport-kernels"}
    for i, piece in enumerate(pieces):
        _same(columns, i, describe_array(piece.copy()))


def test_units_cover_every_piece_grouped_by_size():
    """The units take the pieces in their order by size, of about equal values, none empty;
    each unit's rows to sort are its runs of one size, where ``ordered`` holds them."""
    from weightreport.stats.exact import _units

    sizes = np.array([1024, 32] * 71 + [1024] * 142 + [5, 0], np.int64)
    order = np.argsort(sizes, kind="stable")
    grouped = sizes[order]
    ends = np.cumsum(grouped).tolist()
    units = _units(order, grouped, ends, 8)
    assert len(units) == 8
    assert np.array_equal(np.concatenate([pieces for pieces, _ in units]), order)
    values = [int(sizes[pieces].sum()) for pieces, _ in units]
    assert max(values) - min(values) <= 2 * 1024
    at = {int(k): start for k, start in zip(order, np.array(ends) - grouped, strict=True)}
    for pieces, rows in units:
        assert sum(m for _, _, m in rows) == len(pieces)
        k = 0
        for start, n, m in rows:
            run = pieces[k : k + m]
            assert (sizes[run] == n).all() and at[int(run[0])] == start
            assert [at[int(p)] for p in run] == [start + n * i for i in range(m)]
            k += m
    assert _units(np.zeros(0, np.int64), np.zeros(0, np.int64), [], 8) == []
    one = _units(np.array([0]), np.array([5]), [5], 8)
    assert len(one) == 1 and one[0][1] == [(0, 5, 1)]


@settings(max_examples=100, deadline=None)
@given(st.lists(hnp.arrays(np.float64, st.integers(0, 200),
                           elements=st.floats(allow_nan=True, allow_infinity=True)),
                min_size=0, max_size=6))
def test_columns_equal_describe_array_on_any_float64(pieces):
    """Any float64 pieces, NaN, Inf and the whole float64 range included: describe_array's numbers exactly."""
    block = np.concatenate(pieces) if pieces else np.zeros(0)
    with np.errstate(all="ignore"):
        columns = describe_columns(block, [p.size for p in pieces])
    for i, piece in enumerate(pieces):
        _same(columns, i, describe_array(piece.copy()))


@pytest.mark.skipif(not kernels.AVAILABLE, reason="numba is not installed")
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(1e-300, 1e300), st.floats(-1e300, 1e300), st.floats(-1e300, 1e300),
                          st.floats(0, 1e300), st.integers(1, 10**6)), min_size=1, max_size=8))
def test_summary_columns_equal_summary(moments):
    """``summary_columns``, given the compiled kernels' skew and kurtosis, gives ``summary``'s
    fields for each tensor, in order, bit for bit (moments up to float64's ends included)."""
    from weightreport.stats import kernels_describe

    kernels._compile()
    rng = np.random.default_rng(len(moments))
    m2 = np.array([m[0] for m in moments] + [0.0])  # and a constant tensor: skew and kurtosis NaN
    m3, m4 = np.array([m[1] for m in moments] + [0.0]), np.array([m[3] for m in moments] + [0.0])
    mean = np.array([m[2] for m in moments] + [1.0])
    n = np.array([m[4] for m in moments] + [3], np.int64)
    norm2 = np.array([m[3] - 1e299 for m in moments] + [3.0])  # some negative: clamped to 0
    lo, hi = mean - 1.0, mean + 1.0
    qs = np.sort(rng.normal(size=(n.size, 7)), axis=1) + mean[:, None]
    qs[0, 0] = np.nan
    zeros, out3, out6, outiqr = (rng.integers(0, 5, n.size) for _ in range(4))
    shapes = np.array([kernels_describe._shape(*m) for m in zip(m2.tolist(), m3.tolist(), m4.tolist(), strict=True)])
    cols = summary_columns(n, Moments(n, mean, m2, m3, m4, norm2), lo, hi, zeros.astype(float), qs,
                           (out3.astype(float), out6.astype(float), outiqr.astype(float)), tuple(shapes.T))
    assert list(cols) == list(NAMES)
    for i in range(n.size):
        m = Moments(int(n[i]), *(float(a[i]) for a in (mean, m2, m3, m4, norm2)))  # Python floats, as backends give
        one = summary(int(n[i]), 0, 0, m,
                      float(lo[i]), float(hi[i]), int(zeros[i]), qs[i].tolist(), True,
                      (int(out3[i]), int(out6[i]), int(outiqr[i])))
        assert [_bits(cols[k][i].item()) for k in NAMES] == [_bits(one[k]) for k in NAMES]


@pytest.mark.skipif(not kernels.AVAILABLE, reason="numba is not installed")
@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False), st.floats(allow_nan=False, allow_infinity=False),
       st.sampled_from([2, 3, 64, 1000]))
def test_compiled_grid_is_histogram_grid(a, b, bins):
    """The kernels' grid equals ``grid.histogram_grid`` for any finite float64 range."""
    from weightreport.stats import kernels_describe

    kernels._compile()
    lo, hi = min(a, b), max(a, b)
    with np.errstate(all="ignore"):
        grid = histogram_grid(lo, hi, bins)
        if math.isinf(hi - lo) or math.isinf(grid.width):
            return  # beyond what a finite grid can cover; describe_array is then the judge
        first, width = kernels_describe._grid(lo, hi, bins)
    assert (_bits(first), _bits(width)) == (_bits(grid.first_index), _bits(grid.width))


def test_stats_tables_rows_equal_each_description():
    """The stats and histogram rows carry each description, its numel, norms and units; empty activations and missing descriptions have no row."""
    pieces = [np.array([1.0, -2.0, 3.0]), np.zeros(0), np.array([np.nan, 4.0]), np.array([0.0, 0.5]),
              np.zeros(0), np.array([5.0])]
    kinds = ["param", "param", "grad", "activation", "activation", "activation"]
    names = ["w", "e", "w", "relu", "idle", "gone"]
    entries = [(n, k, torch.from_numpy(p), False, p.size * (10 if k == "activation" else 1))
               for n, k, p in zip(names, kinds, pieces, strict=True)]
    descriptions = [describe_array(p) for p in pieces]
    values = {("norms", "w"): np.array([4.0, 16.0, 9.0]), ("norms", "e"): np.array([np.nan, 0.0, np.nan]),
              ("units", "relu"): np.array([0.0, -1.0, 2.0])}
    missing = np.array([False, False, False, False, False, True])
    tables = stats_tables(7, entries, Columns.of(descriptions, 64), values, {"relu": ("dead", 0.0)}, missing)
    stats, hist = (tables[t].table(SCHEMAS[t]).to_pylist() for t in ("stats", "histograms"))
    assert [(r["tensor"], r["kind"]) for r in stats] == [("w", "param"), ("e", "param"), ("w", "grad"),
                                                         ("relu", "activation")]
    for row, h, i in zip(stats, hist, [0, 1, 2, 3], strict=True):
        d = descriptions[i]
        assert {k: _bits(row[k]) for k in NAMES if k != "numel"} == {
            k: _bits(v) for k, v in d.stats.items() if k != "numel"}
        assert row["numel"] == entries[i][4] and row["step"] == h["step"] == 7
        assert h["edges"] == d.edges and h["counts"] == d.counts
    assert stats[0]["update_ratio"] == 0.5 and stats[0]["dist_from_init"] == 3.0
    assert stats[1]["update_ratio"] is None and stats[1]["dist_from_init"] is None
    assert stats[2]["update_ratio"] is None and stats[2]["units"] is None
    assert (stats[3]["units"], stats[3]["dead_units"], stats[3]["saturated_units"]) == (3, 2, None)
