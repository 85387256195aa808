"""TensorBoard event files become a run directory with exact moments and counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from weightreport import WeightReportError, load_run
from weightreport.integrations.tensorboard import (
    bucket_histogram,
    import_tensorboard,
    merge_buckets,
    split_tag,
)

SummaryWriter = pytest.importorskip("torch.utils.tensorboard").SummaryWriter


@pytest.fixture
def logdir(tmp_path):
    """A TensorBoard log with weight and gradient histograms and a loss curve."""
    torch.manual_seed(0)
    writer = SummaryWriter(str(tmp_path / "tb"))
    values = {}
    for step in range(3):
        w = torch.randn(1000) + step
        g = torch.randn(50) * 0.01
        values[step] = (w, g)
        writer.add_histogram("fc1.weight", w, step)
        writer.add_histogram("fc1.weight.grad", g, step)
        writer.add_scalar("loss", 1.0 / (step + 1), step)
    writer.close()
    return tmp_path / "tb", values


def test_import_gives_exact_moments(logdir, tmp_path):
    """Count, mean, std, min, max and norm equal numpy's on the logged tensors."""
    path, values = logdir
    run = load_run(import_tensorboard(path, tmp_path / "run"))
    stats = run.tables["stats"]
    for step, (w, g) in values.items():
        for kind, t in (("param", w), ("grad", g)):
            row = stats[(stats.step == step) & (stats.kind == kind)].iloc[0]
            x = t.double().numpy()
            assert row.tensor == "fc1.weight"
            assert row["count"] == x.size
            assert row["mean"] == pytest.approx(x.mean(), rel=1e-6, abs=1e-9)
            assert row["std"] == pytest.approx(x.std(), rel=1e-5)
            assert row["min"] == pytest.approx(x.min())
            assert row["max"] == pytest.approx(x.max())
            assert row["norm"] == pytest.approx(np.linalg.norm(x), rel=1e-6)
            assert row["p50"] == pytest.approx(np.percentile(x, 50), abs=(x.max() - x.min()) / 10)


def test_import_keeps_every_count(logdir, tmp_path):
    """Each imported histogram has integer counts summing to the element count, at most 64 bins."""
    path, _ = logdir
    run = load_run(import_tensorboard(path, tmp_path / "run"))
    for _, row in run.tables["histograms"].iterrows():
        assert len(row.edges) == len(row.counts) + 1 <= 65
        assert list(np.diff(row.edges) > 0) == [True] * len(row.counts)
        assert sum(int(c) for c in row.counts) == (1000 if row.kind == "param" else 50)
    scalars = run.tables["scalars"]
    assert scalars.value.tolist() == pytest.approx([1.0, 0.5, 1 / 3])
    assert run.manifest["status"] == "complete"


def test_split_tag_recognises_gradients():
    """Gradient tags in the common spellings map to the parameter's name and kind grad."""
    assert split_tag("fc1.weight.grad") == ("fc1.weight", "grad")
    assert split_tag("grads/fc1.weight") == ("fc1.weight", "grad")
    assert split_tag("fc1.weight_grad") == ("fc1.weight", "grad")
    assert split_tag("fc1.weight") == ("fc1.weight", "param")


def test_bucket_conversion_and_merge_preserve_counts():
    """TensorBoard buckets become edges and counts; merging keeps the total and the outer edges."""
    edges, counts = bucket_histogram([0.0, 1.0, 2.0, 3.0], [0, 2, 3, 4], 0.1, 2.9)
    assert edges == [0.0, 1.0, 2.0, 3.0] and counts == [2, 3, 4]
    edges, counts = bucket_histogram([1.0, 1.0e308], [5, 6], -2.0, 4.0)
    assert edges == [-2.0, 1.0, 4.0] and counts == [5, 6]
    merged_edges, merged = merge_buckets(list(range(11)), [1] * 10, 4)
    assert merged == [3, 3, 3, 1] and merged_edges == [0, 3, 6, 9, 10]


def test_import_refuses_bad_input(tmp_path):
    """A folder without event files, and an existing run, get a clear error."""
    with pytest.raises(WeightReportError, match="no TensorBoard event files"):
        import_tensorboard(tmp_path, tmp_path / "run")
