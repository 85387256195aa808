"""Checkpoint inspection: safe loading, statistics that match the state dict, spectral measures."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch
from torch import nn

from weightreport import WeightReportError
from weightreport.inspect.analyse import inspect_checkpoint, write_json
from weightreport.inspect.checkpoint import load_state_dict
from weightreport.inspect.spectral import correlation_traps, fit_alpha, spectral_summary


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8, 4))


def test_inspect_matches_state_dict(tmp_path):
    """Every floating tensor of a saved model is described with its exact numbers."""
    model = _model()
    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)
    result = inspect_checkpoint(path)
    state = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
    assert [r["tensor"] for r in result["tensors"]] == list(state)
    for row in result["tensors"]:
        x = state[row["tensor"]].double().numpy().ravel()
        assert row["numel"] == x.size and row["shape"] == list(state[row["tensor"]].shape)
        assert row["mean"] == pytest.approx(x.mean(), abs=1e-12)
        assert row["max"] == x.max() and row["min"] == x.min()
        assert row["counts"] == np.histogram(x, row["edges"])[0].tolist()
    conv = next(r for r in result["tensors"] if r["tensor"] == "0.weight")
    assert conv["stable_rank"] > 1 and conv["spectral_norm"] > 0
    bias = next(r for r in result["tensors"] if r["tensor"] == "0.bias")
    assert bias["alpha"] is None


@pytest.mark.parametrize("wrapper", ["state_dict", "model"])
def test_nested_checkpoints_are_unwrapped(tmp_path, wrapper):
    """A state dict nested under a common key (with optimizer state beside it) is found."""
    model = _model()
    path = tmp_path / "ckpt.pth"
    torch.save({wrapper: model.state_dict(), "epoch": 3, "optimizer": {"lr": 0.1}}, path)
    assert list(load_state_dict(path)) == [
        k for k, v in model.state_dict().items() if v.is_floating_point()]


def test_safetensors_are_read(tmp_path):
    """A .safetensors file gives the same tensors as the state dict it was saved from."""
    safetensors = pytest.importorskip("safetensors.torch")
    model = _model()
    path = tmp_path / "model.safetensors"
    safetensors.save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    loaded = load_state_dict(path)
    state = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
    assert set(loaded) == set(state)
    for key, value in loaded.items():
        assert value.dtype == np.float32 and np.array_equal(value, state[key].numpy())


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_running(tmp_path):
    """A pickle that would run a shell command is refused and the command never runs."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2, 2), "payload": _Exploit(marker)}, path)
    with pytest.raises(WeightReportError, match="refused"):
        load_state_dict(path)
    assert not marker.exists()


def test_bad_checkpoints_get_clear_errors(tmp_path):
    """A missing file, garbage bytes and a tensor-free file each get one clear error."""
    with pytest.raises(WeightReportError, match="no such checkpoint"):
        load_state_dict(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightReportError, match="not a readable"):
        load_state_dict(junk)
    empty = tmp_path / "empty.pt"
    torch.save({"epoch": 1}, empty)
    with pytest.raises(WeightReportError, match="no floating-point tensors"):
        load_state_dict(empty)


def test_spectral_measures_against_numpy():
    """Stable rank and singular values agree with numpy's SVD."""
    torch.manual_seed(1)
    w = torch.randn(40, 30)
    summary = spectral_summary(w)
    s = np.linalg.svd(w.double().numpy(), compute_uv=False)
    assert np.allclose(summary["singular_values"], s, rtol=1e-8)
    assert summary["stable_rank"] == pytest.approx((s**2).sum() / s[0] ** 2)


def test_alpha_recovers_a_power_law():
    """The fitted exponent of samples drawn from a known power law is close to it."""
    rng = np.random.default_rng(0)
    alpha = 3.0
    samples = (1.0 - rng.random(2000)) ** (-1.0 / (alpha - 1.0))
    fitted, xmin, ks = fit_alpha(samples)
    assert fitted == pytest.approx(alpha, abs=0.2)
    assert xmin >= 1.0 and ks < 0.05


def test_correlation_trap_is_detected():
    """One huge element makes a rank-one trap; a Gaussian matrix has none."""
    torch.manual_seed(2)
    w = torch.randn(200, 100).double()
    assert correlation_traps(w) == 0
    w[3, 7] = 400.0
    assert correlation_traps(w) >= 1


def test_json_is_deterministic(tmp_path):
    """Inspecting the same checkpoint twice writes byte-identical JSON with no NaN literals."""
    path = tmp_path / "model.pt"
    torch.save(_model().state_dict(), path)
    a = write_json(inspect_checkpoint(path), tmp_path / "a.json").read_bytes()
    b = write_json(inspect_checkpoint(path), tmp_path / "b.json").read_bytes()
    assert a == b
    data = json.loads(a)
    assert {"tensor", "shape", "numel", "mean", "std", "skew", "kurtosis", "alpha",
            "stable_rank"} <= set(data["tensors"][0])
    assert not any(isinstance(v, float) and math.isnan(v) for v in data["tensors"][0].values())


def test_workers_do_not_change_the_numbers(tmp_path, monkeypatch):
    """Three threads over each group give exactly the rows, in the order, that one thread gives."""
    from weightreport.inspect import analyse

    torch.manual_seed(3)
    state = {f"l{i}.{p}": torch.randn(*((40 + i, 30) if p == "weight" else (40 + i,))) for i in range(8)
             for p in ("weight", "bias")}
    path = tmp_path / "m.pt"
    torch.save(state, path)
    monkeypatch.setattr(analyse, "WORKERS", 1)
    serial = inspect_checkpoint(path)
    monkeypatch.setattr(analyse, "WORKERS", 3)
    assert inspect_checkpoint(path) == serial
