"""The summary fields: one ordered definition that the schema, every backend and the importers agree on."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

import weightreport
from weightreport.integrations.tensorboard import _stats_row
from weightreport.runfmt.schema import QUANTILES, STAT_COLUMNS
from weightreport.stats import SMALL, describe_array, describe_arrays, kernels, split
from weightreport.stats.compiled import _describe_compiled, _describe_stepwise
from weightreport.stats.fields import (
    NAMES,
    SUM,
    SUMMARY,
    Moments,
    empty_description,
    iqr_fences,
    positions,
    summary,
)
from weightreport.stats.grid import histogram_grid
from weightreport.stats.torch_ops import TorchDescription

_ARROW = {int: pa.int64(), float: pa.float64(), bool: pa.bool_()}


def test_fields_are_the_schemas_stat_columns():
    """The stats table stores exactly the summary fields, in order and with their types, between kind and update_ratio."""
    names = [name for name, _ in STAT_COLUMNS]
    start = names.index("kind") + 1
    stored = STAT_COLUMNS[start : start + len(SUMMARY)]
    assert [name for name, _ in stored] == list(NAMES)
    assert [t for _, t in stored] == [_ARROW[f.kind] for f in SUMMARY]
    assert names[start + len(SUMMARY)] == "update_ratio"


def _split_description(x: torch.Tensor):
    """The split path's description of ``x`` cut into three ranks' pieces, without a process group."""
    cuts = [0, x.numel() // 3, x.numel() // 2, x.numel()]
    rows = [split._local_rows([x[a:b]], 64)[1][0].numpy() for a, b in itertools.pairwise(cuts)]
    per_rank = np.stack(rows)[:, None, :]
    row = split._merge(per_rank[:, :, : split._FIELDS])[0]
    grid = histogram_grid(row[split._LO], row[split._HI], 64)
    totals = split._nest(per_rank[:, 0, split._FIRST :], grid)
    qs = np.clip(split.quantiles_from_counts(totals, grid, int(row[split._N])), row[split._LO], row[split._HI])
    return split._description(row, grid, totals, qs, np.array([0, 0, 0]))


def test_every_backend_fills_the_fields_in_order():
    """Exact numpy, compiled small, compiled large (fused and stepwise), torch, split and empty all give the fields' names in order."""
    rng = np.random.default_rng(0)
    small = rng.normal(size=500)
    large = torch.from_numpy(rng.normal(size=SMALL + 1000).astype(np.float32))
    queued = TorchDescription(large, 64)
    got = {
        "exact": describe_array(small),
        "compiled small": describe_arrays(small, [small.size])[0],
        "stepwise": _describe_stepwise(large.double(), 64),
        "torch": queued.finish(queued.values.numpy()),
        "split": _split_description(large),
        "empty": empty_description(3, 2, 1, 64),
    }
    if kernels.AVAILABLE:
        got["compiled large"] = _describe_compiled(large, 64)[0]
    for backend, d in got.items():
        assert tuple(d.stats) == NAMES, backend


def test_tensorboard_rows_follow_the_fields():
    """An imported TensorBoard row holds every summary field in order, null where a histogram cannot tell."""
    h = types.SimpleNamespace(num=4.0, sum=2.0, sum_squares=3.0, min=-1.0, max=1.5)
    row = _stats_row(7, "fc.weight", "param", h, [-1.0, 0.0, 1.0, 2.0], [1, 2, 1])
    assert tuple(row) == ("step", "tensor", "kind", *NAMES)
    assert row["skew"] is row["kurtosis"] is row["zeros"] is row["outliers_iqr"] is None
    assert row["mean"] == 0.5 and row["quantiles_exact"] is False


def test_split_rows_carry_every_summed_count():
    """Each summary count that ranks add up is a summed slot of the split path's row (``count`` is ``numel``)."""
    summed = {f.name for f in SUMMARY if f.merge == SUM} - {"count"}
    assert summed <= {f.name for f in split.PIECE if f.merge == SUM}


@pytest.mark.parametrize("exponent", [-200, -40, 0, 40, 200])
def test_columns_do_not_depend_on_the_moments_units(exponent):
    """Moments handed over in units of a power of two give the same columns as unscaled ones, bit for bit."""
    scale = math.ldexp(1.0, exponent)
    plain = Moments(10, 0.75, 2.5, 0.5, 9.0, 31.25)
    k = 1.0 / scale
    scaled = Moments(10, 0.75 * k, 2.5 * k**2, 0.5 * k**3, 9.0 * k**4, 31.25 * k**2, scale)
    for root_first in (False, True):
        a = summary(10, 0, 0, plain, -1.0, 4.0, 1, [0.0] * len(QUANTILES), False, (0, 0, 0), root_first)
        b = summary(10, 0, 0, scaled, -1.0, 4.0, 1, [0.0] * len(QUANTILES), False, (0, 0, 0), root_first)
        assert a == b


def test_quartiles_and_fences_come_from_the_quantile_list():
    """Tukey's fences read p25 and p75 by their positions in QUANTILES, for lists and tensors alike."""
    qs = [float(q) for q in QUANTILES]
    assert iqr_fences(qs) == (25 - 1.5 * 50, 75 + 1.5 * 50)
    lo, hi = iqr_fences(torch.tensor(qs, dtype=torch.float64))
    assert (float(lo), float(hi)) == iqr_fences(qs)


def test_positions_refuses_a_slot_named_twice():
    """A row layout that names a slot twice is refused, so index constants cannot alias."""
    assert positions(["a", "b"]) == {"a": 0, "b": 1}
    with pytest.raises(ValueError, match="twice"):
        positions(["a", "b", "a"])


def test_fields_and_grid_import_without_torch_or_numba():
    """Importing weightreport.stats.fields and weightreport.stats.grid loads neither torch nor numba."""
    root = str(Path(weightreport.__file__).parent)
    code = (
        "import sys, types\n"
        f"pkg = types.ModuleType('weightreport'); pkg.__path__ = [{root!r}]\n"
        "sys.modules['weightreport'] = pkg  # skip the package's own imports (the collector's torch)\n"
        "import weightreport.stats.fields, weightreport.stats.grid\n"
        "print('torch' in sys.modules, 'numba' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
