"""Activation and BatchNorm hooks on a small CNN, dead and saturated units, probe captures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from weightreport import Collector, load_run


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.relu = nn.ReLU()
        self.flat = nn.Flatten()
        self.fc = nn.Linear(6 * 8 * 8, 4)
        self.bn1 = nn.BatchNorm1d(4)

    def forward(self, x):
        return self.bn1(self.fc(self.flat(self.relu(self.bn(self.conv(x))))))


def test_batchnorm_rows_match_an_independent_computation(tmp_path):
    """bn_input/bn_output stats and per-channel batch mean/var match the BN input captured independently."""
    torch.manual_seed(0)
    model = SmallCNN()
    seen = {}

    def keep(module, inputs, output):
        seen.setdefault("bn", (inputs[0].detach().clone(), output.detach().clone()))

    model.bn.register_forward_hook(keep)
    x = torch.randn(10, 3, 8, 8) * 2 + 1
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with Collector(model, tmp_path / "run", every=2) as wr:
        for step in range(1, 5):
            seen.clear()
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
            if step == 4:
                buffers = (model.bn.running_mean.clone(), model.bn.running_var.clone(),
                           model.bn.weight.detach().clone(), model.bn.bias.detach().clone())
                inp, out = seen["bn"]
            wr.step()
    run = load_run(tmp_path / "run")
    bn = run.tables["batchnorm"].query("step == 4 and module == 'bn'").sort_values("channel")
    assert bn.channel.tolist() == list(range(6))
    var, mean = torch.var_mean(inp.double(), dim=(0, 2, 3), correction=1)
    np.testing.assert_allclose(bn.batch_mean, mean.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.batch_var, var.numpy(), rtol=1e-4)
    for col, value in zip(("running_mean", "running_var", "weight", "bias"), buffers, strict=True):
        np.testing.assert_allclose(bn[col], value.double().numpy(), rtol=1e-6, atol=1e-7)
    assert set(run.tables["batchnorm"].module) == {"bn", "bn1"}
    assert sorted(run.tables["batchnorm"].step.unique()) == [2, 4]
    stats = run.tables["stats"].query("step == 4")
    kinds = set(zip(stats.tensor, stats.kind, strict=True))
    assert {("bn", "bn_input"), ("bn", "bn_output"), ("bn1", "bn_input"), ("bn1", "bn_output")} <= kinds
    assert ("bn", "activation") not in kinds and ("flat", "activation") not in kinds
    row_in = stats.query("tensor == 'bn' and kind == 'bn_input'").iloc[0]
    row_out = stats.query("tensor == 'bn' and kind == 'bn_output'").iloc[0]
    assert row_in["count"] == inp.numel() and row_in["mean"] == pytest.approx(inp.double().mean().item(), rel=1e-9)
    assert row_out["std"] == pytest.approx(out.double().std(correction=0).item(), rel=1e-9)
    hist = run.tables["histograms"].query("step == 4 and tensor == 'bn' and kind == 'bn_input'").iloc[0]
    expected, _ = np.histogram(inp.double().numpy().ravel(), bins=np.asarray(hist.edges))
    assert list(hist.counts) == expected.tolist()


def test_batchnorm_without_running_stats(tmp_path):
    """A BatchNorm without running statistics or affine parameters still gets batch mean/var, with nulls."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 3), nn.BatchNorm1d(3, affine=False, track_running_stats=False))
    seen = []
    model[1].register_forward_hook(lambda m, i, o: seen.append(i[0].detach().clone()))
    with Collector(model, tmp_path / "run", every=1) as wr:
        model(torch.randn(12, 5)).sum().backward()
        wr.step()
    bn = load_run(tmp_path / "run").tables["batchnorm"].sort_values("channel")
    var, mean = torch.var_mean(seen[0].double(), dim=0, correction=1)
    np.testing.assert_allclose(bn.batch_mean, mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.batch_var, var.numpy(), rtol=1e-5)
    assert bn.running_mean.isna().all() and bn.weight.isna().all()


def test_dead_relu_units_are_counted(tmp_path):
    """Channels forced dead with a large negative bias are counted as dead_units after ReLU."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(2, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 1))
    with torch.no_grad():
        model[0].bias[:3] = -1e4
    with Collector(model, tmp_path / "run", every=1) as wr:
        model(torch.randn(6, 2, 6, 6)).sum().backward()
        wr.step()
    stats = load_run(tmp_path / "run").tables["stats"]
    relu = stats.query("tensor == '1' and kind == 'activation'").iloc[0]
    assert (relu.units, relu.dead_units) == (8, 3)
    assert np.isnan(relu.saturated_units)  # a ReLU cannot saturate: null, not 0
    conv = stats.query("tensor == '0' and kind == 'activation'").iloc[0]
    assert np.isnan(conv.units) and np.isnan(conv.dead_units)


def test_saturated_tanh_and_sigmoid_units_are_counted(tmp_path):
    """Units driven to ±1 (tanh) or 0/1 (sigmoid) on huge inputs are counted as saturated."""
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 5), nn.Sigmoid())
    with torch.no_grad():
        model[0].bias[:2] = 1e3
        model[0].bias[2] = -1e3
        model[2].bias[:4] = torch.tensor([1e3, -1e3, 1e3, -1e3])
    with Collector(model, tmp_path / "run", every=1) as wr:
        model(torch.randn(9, 4)).sum().backward()
        wr.step()
    stats = load_run(tmp_path / "run").tables["stats"].query("kind == 'activation'").set_index("tensor")
    assert (stats.loc["1", "units"], stats.loc["1", "saturated_units"]) == (6, 3)
    assert np.isnan(stats.loc["1", "dead_units"])  # a tanh cannot die: null, not 0
    assert (stats.loc["3", "units"], stats.loc["3", "saturated_units"]) == (5, 4)


def test_activation_stats_match_the_output(tmp_path):
    """An activation row describes the module's output of the snapshot step's first forward."""
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(4, 7), nn.ReLU())
    outs = []
    model[0].register_forward_hook(lambda m, i, o: outs.append(o.detach().clone()))
    with Collector(model, tmp_path / "run", every=1) as wr:
        model(torch.randn(5, 4)).sum().backward()
        model(torch.randn(5, 4))  # a second forward in the same step is not captured
        wr.step()
    row = load_run(tmp_path / "run").tables["stats"].query("tensor == '0' and kind == 'activation'").iloc[0]
    assert row["count"] == 35 and row["max"] == outs[0].max().item()
    assert row["mean"] == pytest.approx(outs[0].double().mean().item(), rel=1e-12)


def test_large_activations_are_sampled(tmp_path):
    """Activations above activation_sample are described through a sample, with numel kept."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1))
    with Collector(model, tmp_path / "run", every=1, activation_sample=1000) as wr:
        model(torch.randn(8, 1, 16, 16)).sum().backward()
        wr.step()
    row = load_run(tmp_path / "run").tables["stats"].query("kind == 'activation'").iloc[0]
    assert row["numel"] == 8 * 4 * 16 * 16 and row["count"] == 1000


class ProbeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 6, 3, padding=1)
        self.attn = nn.MultiheadAttention(6, 2, batch_first=True)
        self.lstm = nn.LSTM(6, 5, batch_first=True)
        self.head = nn.Linear(5, 1)

    def forward(self, x):
        h = self.conv(x.transpose(1, 2)).transpose(1, 2)
        h, _ = self.attn(h, h, h)
        h, _ = self.lstm(h)
        return self.head(h[:, -1])


def test_probe_captures_land_in_the_probes_table(tmp_path):
    """With probe=..., conv feature maps, attention weights per head and LSTM hidden states are recorded each snapshot."""
    torch.manual_seed(5)
    model = ProbeNet()
    probe = torch.randn(3, 7, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with Collector(model, tmp_path / "run", every=2, probe=probe) as wr:
        for _ in range(4):
            opt.zero_grad()
            model(torch.randn(8, 7, 4)).sum().backward()
            opt.step()
            wr.step()
    run = load_run(tmp_path / "run")
    probes = run.tables["probes"]
    assert sorted(probes.step.unique()) == [0, 2, 4]
    at4 = probes.query("step == 4")
    kinds = set(zip(at4.module, at4.kind, strict=True))
    assert {("conv", "feature_map"), ("attn", "attention"), ("lstm", "hidden_state")} <= kinds
    attn = at4.query("kind == 'attention'")
    assert sorted(attn["index"]) == [0, 1]
    assert all((r.rows, r.cols) == (7, 7) for r in attn.itertuples())
    for r in attn.itertuples():  # attention weights: each row sums to 1
        np.testing.assert_allclose(np.asarray(r.values).reshape(7, 7).sum(axis=1), 1.0, rtol=1e-5)
    lstm = at4.query("kind == 'hidden_state'").iloc[0]
    assert (lstm.rows, lstm.cols) == (7, 5)
    assert all(len(r.values) == r.rows * r.cols for r in at4.itertuples())
    assert run.manifest["settings"]["probe_shape"] == [3, 7, 4]
    assert model.training  # the probe's eval mode is undone
