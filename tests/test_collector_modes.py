"""What ``Collector(mode=...)`` does with a run directory that already exists."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from weightreport import Collector, WeightReportError, load_run


def _record(path, mode="error", steps=3, scale=1.0):
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    with torch.no_grad():
        model.weight.mul_(scale)
    with Collector(model, path, every=1, mode=mode) as wr:
        for _ in range(steps):
            wr.step(loss=1.0)


def test_overwrite_replaces_an_existing_run(tmp_path):
    """mode="overwrite" deletes the old run, so only the new run's snapshots remain."""
    run = tmp_path / "run"
    _record(run, steps=5)
    with pytest.raises(WeightReportError, match="mode='overwrite'"):
        _record(run)
    _record(run, mode="overwrite", steps=2, scale=3.0)
    loaded = load_run(run)
    assert loaded.manifest["status"] == "complete"
    assert sorted(loaded.table("stats")["step"].unique()) == [0, 1, 2]
    assert sorted(loaded.table("scalars")["step"].unique()) == [1, 2]


def test_overwrite_never_deletes_a_directory_that_holds_no_run(tmp_path):
    """A non-empty directory without run.json is refused under every mode, overwrite included."""
    keep = tmp_path / "data"
    keep.mkdir()
    (keep / "precious.txt").write_text("keep me")
    with pytest.raises(WeightReportError, match="holds no run"):
        _record(keep, mode="overwrite")
    assert (keep / "precious.txt").read_text() == "keep me"


def test_unknown_mode_is_refused_with_the_choices(tmp_path):
    """An unknown mode gets one error naming the three modes."""
    with pytest.raises(WeightReportError, match='"error", "resume" or "overwrite"'):
        _record(tmp_path / "run", mode="replace")
