"""``weightreport inspect`` over a checkpoint series: each layer's alpha, stable rank and norm across checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from weightreport.cli import main
from weightreport.inspect.analyse import inspect_checkpoint
from weightreport.inspect.checkpoint import open_checkpoint
from weightreport.inspect.model import ALPHA_HIGH, ALPHA_LOW
from weightreport.inspect.series import inspect_series, series_members
from weightreport.inspect.series_page import (
    UNRELIABLE,
    UNRELIABLE_COLOUR,
    series_charts,
    series_model,
)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 96), nn.ReLU(), nn.Linear(96, 4))


def _train(model: nn.Module, steps: int) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(steps)
    x, y = torch.randn(64, 64, generator=gen), torch.randint(0, 4, (64,), generator=gen)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


@pytest.fixture(scope="module")
def epochs(tmp_path_factory) -> Path:
    """A directory of three epoch checkpoints whose names sort wrongly as text (epoch=10 before epoch=2)."""
    root = tmp_path_factory.mktemp("epochs")
    model = _model()
    for epoch in (1, 2, 10):
        _train(model, 20)
        torch.save(model.state_dict(), root / f"epoch={epoch}.pt")
    return root


def test_members_in_training_order(epochs):
    """Epoch numbers compare as numbers; a single checkpoint file is no series."""
    assert [p.name for p in series_members(epochs)] == ["epoch=1.pt", "epoch=2.pt", "epoch=10.pt"]
    assert series_members(epochs / "epoch=1.pt") is None


def test_series_numbers_match_numpy(epochs, tmp_path):
    """Each matrix's norm and stable rank in each checkpoint equal numpy's; alpha equals single inspect's."""
    out = tmp_path / "s.json"
    assert main(["inspect", str(epochs), "-o", str(tmp_path / "s.html"), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [c["name"] for c in result["checkpoints"]] == ["epoch=1.pt", "epoch=2.pt", "epoch=10.pt"]
    assert result["layers"] == ["0.weight", "2.weight", "4.weight"]  # biases are no matrices
    assert len(result["series"]) == 9
    for row in result["series"]:
        w = torch.load(epochs / row["checkpoint"], weights_only=True)[row["tensor"]].double().numpy()
        s = np.linalg.svd(w, compute_uv=False)
        assert row["norm"] == pytest.approx(np.linalg.norm(w), rel=1e-6)
        assert row["stable_rank"] == pytest.approx((s**2).sum() / s[0] ** 2, rel=1e-5)
        single = inspect_checkpoint(open_checkpoint(epochs / row["checkpoint"]))
        (same,) = [t for t in single["tensors"] if t["tensor"] == row["tensor"]]
        fitted = same["alpha"] if same["alpha"] == same["alpha"] else None  # NaN (no fit) is null in JSON
        assert row["alpha"] == pytest.approx(fitted) if fitted is not None else row["alpha"] is None
    assert sum(r["alpha"] is not None for r in result["series"]) >= 6  # the two wide layers are fitted
    page = (tmp_path / "s.html").read_text()
    for name in ("epoch=1.pt", "epoch=10.pt", "4.weight"):
        assert name in page


def test_named_checkpoints_and_hf_folders(tmp_path):
    """Checkpoints given one by one keep their order; save_pretrained folders (checkpoint-N/) form a series."""
    pytest.importorskip("safetensors")
    from safetensors.torch import save_file

    model = _model()
    for step in (500, 1000):
        _train(model, 10)
        folder = tmp_path / "out" / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "model.safetensors")
    assert main(["inspect", str(tmp_path / "out"), "-o", str(tmp_path / "a.html"), "--json", str(tmp_path / "a.json")]) == 0
    names = [c["name"] for c in json.loads((tmp_path / "a.json").read_text())["checkpoints"]]
    assert names == ["checkpoint-500", "checkpoint-1000"]
    given = [str(tmp_path / "out" / "checkpoint-1000"), str(tmp_path / "out" / "checkpoint-500")]
    assert main(["inspect", *given, "-o", str(tmp_path / "b.html"), "--json", str(tmp_path / "b.json")]) == 0
    names = [c["name"] for c in json.loads((tmp_path / "b.json").read_text())["checkpoints"]]
    assert names == ["checkpoint-1000", "checkpoint-500"]


def test_bad_member_one_line_exit_2(epochs, tmp_path, capsys):
    """A member that is not a checkpoint: one line, exit 2, no page written."""
    bogus = tmp_path / "notes.pt"
    bogus.write_text("not a checkpoint")
    code = main(["inspect", str(epochs / "epoch=1.pt"), str(bogus), "-o", str(tmp_path / "x.html")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "notes.pt" in err, err
    assert not (tmp_path / "x.html").exists()


class _ConvNet(nn.Module):
    """A 3 → 16 conv (its kernel a 16 × 27 matrix: 16 eigenvalues) and two linears (64 and 96 of them)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv2d(3, 16, 3)
        self.fc1 = nn.Linear(64, 128)
        self.fc2 = nn.Linear(128, 96)


@pytest.fixture(scope="module")
def conv_series(tmp_path_factory) -> Path:
    """Two checkpoints of ``_ConvNet``, the second with every weight nudged."""
    root = tmp_path_factory.mktemp("conv")
    model = _ConvNet()
    torch.save(model.state_dict(), root / "epoch=1.pt")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    torch.save(model.state_dict(), root / "epoch=2.pt")
    return root


def test_unreliable_alpha_is_flagged_coloured_and_left_out(conv_series, tmp_path):
    """An alpha from 16 eigenvalues is unreliable in the JSON, has its own cell colour and legend entry, a hollow
    point in the layer chart, and is left out of the verdict's and the checkpoints' band counts."""
    out = tmp_path / "s.json"
    assert main(["inspect", str(conv_series), "-o", str(tmp_path / "s.html"), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    for row in result["series"]:
        w = torch.load(conv_series / row["checkpoint"], weights_only=True)[row["tensor"]].double().numpy()
        evals = int(np.count_nonzero(np.linalg.svd(w.reshape(w.shape[0], -1), compute_uv=False) > 1e-9))
        assert row["alpha_evals"] == evals
        assert row["alpha_reliable"] is (evals >= 50 and row["alpha"] is not None), row
    conv = [r for r in result["series"] if r["tensor"] == "conv.weight"]
    assert len(conv) == 2 and all(r["alpha_evals"] == 16 and r["alpha_reliable"] is False for r in conv)
    assert any(r["alpha_reliable"] for r in result["series"])  # the linears' alphas count

    page = (tmp_path / "s.html").read_text()
    assert UNRELIABLE == "alpha from fewer than 50 eigenvalues: unreliable" and UNRELIABLE in page

    # The verdict and the per-checkpoint counts, against bands counted here from the JSON.
    model = series_model(inspect_series(sorted(conv_series.glob("*.pt"))))
    for c, counted in zip(result["checkpoints"], model.bands, strict=True):
        rows = [r for r in result["series"] if r["checkpoint"] == c["name"]]
        reliable = [r["alpha"] for r in rows if r["alpha_reliable"]]
        assert counted["typical"] == sum(ALPHA_LOW <= a <= ALPHA_HIGH for a in reliable)
        assert counted["light"] == sum(a > ALPHA_HIGH for a in reliable)
        assert counted["heavy"] == sum(a < ALPHA_LOW for a in reliable)
        assert counted["unreliable"] == 1
    last = [r for r in result["series"] if r["checkpoint"] == "epoch=2.pt" and r["alpha_reliable"]]
    fitted = len(last)
    assert f"of {fitted} matri{'x' if fitted == 1 else 'ces'} with a reliable alpha" in model.headline
    assert "1 more has fewer than 50 eigenvalues" in model.headline and "left out" in model.headline

    charts = series_charts(model)
    alpha = charts["glance"][0].full_spec()
    (fill,) = [lay["encoding"]["fill"] for lay in alpha["layer"] if "fill" in lay["encoding"]]
    assert fill["scale"]["range"][fill["scale"]["domain"].index(UNRELIABLE)] == UNRELIABLE_COLOUR
    (cells,) = alpha["datasets"].values()
    assert {c["tensor"] for c in cells if c["special"] == UNRELIABLE} == {"conv.weight"}
    assert all(c["special"] == "" for c in cells if c["tensor"] != "conv.weight")  # the linears are on the scale
    line = charts["layer"][0].full_spec()
    points = line["layer"][1]["encoding"]
    assert points["stroke"]["scale"]["domain"] == ["reliable", UNRELIABLE]
    assert points["fill"]["scale"]["range"] == ["#1f5fae", "#ffffff"]  # an unreliable point is hollow
    assert line["layer"][0]["transform"][-1] == {"filter": "datum.fit === 'reliable'"}  # and off the line
