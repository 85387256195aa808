"""Long runs are read at a bounded number of snapshots, without losing a NaN."""

from __future__ import annotations

import torch
from torch import nn

from weightreport import Collector, load_run
from weightreport.analysis.sampling import MAX_LAYER_POINTS, read_stats, snapshot_steps


def test_long_run_is_read_at_bounded_snapshots_plus_every_nan(tmp_path):
    """A 400-snapshot run reads at most MAX_LAYER_POINTS snapshots, plus the one NaN step."""
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    with Collector(model, tmp_path / "run", every=1, activations=False, flush_every=50) as wr:
        for step in range(1, 401):
            with torch.no_grad():
                if step == 123:
                    model.weight[0, 0] = float("nan")
                elif step == 124:
                    model.weight[0, 0] = 0.0
            wr.step(loss=1.0 / step)
    run = load_run(tmp_path / "run")
    assert len(snapshot_steps(run)) == 401
    stats = read_stats(run)
    steps = set(stats["step"])
    assert len(steps) <= MAX_LAYER_POINTS + 1
    assert {0, 400, 123} <= steps
    bad = stats[(stats.step == 123) & (stats.tensor == "weight") & (stats.kind == "param")]
    assert bad["nan_count"].tolist() == [1]
