"""Long runs are read at a bounded number of snapshots, without losing a NaN."""

from __future__ import annotations

import torch
from torch import nn

from weightreport import Collector, load_run
from weightreport.compare.diff import diff_runs
from weightreport.report.analysis.sampling import MAX_LAYER_POINTS, read_stats


def _long_run(path):
    """400 snapshots of a 3→2 linear layer, with a NaN weight at step 123 only."""
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    with Collector(model, path, every=1, activations=False, flush_every=50) as wr:
        for step in range(1, 401):
            with torch.no_grad():
                if step == 123:
                    model.weight[0, 0] = float("nan")
                elif step == 124:
                    model.weight[0, 0] = 0.0
            wr.step(loss=1.0 / step)
    return load_run(path)


def test_long_run_is_read_at_bounded_snapshots_plus_every_nan(tmp_path):
    """A 400-snapshot run reads at most MAX_LAYER_POINTS snapshots, plus the one NaN step."""
    run = _long_run(tmp_path / "run")
    assert len(run.snapshot_steps()) == 401
    stats = read_stats(run)
    steps = set(stats["step"])
    assert len(steps) <= MAX_LAYER_POINTS + 1
    assert {0, 400, 123} <= steps
    bad = stats[(stats.step == 123) & (stats.tensor == "weight") & (stats.kind == "param")]
    assert bad["nan_count"].tolist() == [1]


def test_sampled_read_of_some_columns_keeps_the_nan_step(tmp_path):
    """Columns asked for without the NaN counts still read every part and keep the NaN step, and only
    those columns come back."""
    run = _long_run(tmp_path / "run")
    stats = read_stats(run, columns=["step", "tensor"])
    assert list(stats.columns) == ["step", "tensor"]
    assert {0, 400, 123} <= set(stats["step"])


def test_diff_of_long_runs_reads_bounded_snapshots(tmp_path, monkeypatch):
    """diff reads both runs' stats as the report does: bounded snapshots, the NaN step kept."""
    import weightreport.compare.diff as diff_module

    run = _long_run(tmp_path / "run")
    seen = []
    real = diff_module.read_stats
    monkeypatch.setattr(diff_module, "read_stats",
                        lambda r, **kw: seen.append(real(r, **kw)) or seen[-1])
    d = diff_runs(run, run)
    assert len(seen) == 2
    for stats in seen:
        assert len(set(stats["step"])) <= MAX_LAYER_POINTS + 1 and 123 in set(stats["step"])
    assert d.max_w1 == 0.0 and not d.appeared and not d.disappeared
