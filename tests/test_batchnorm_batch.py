"""BatchNorm batch statistics are measured from the layer's input, exact at any momentum."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from weightreport import Collector, load_run


@pytest.mark.parametrize("momentum", [0.1, 0.01, None])
@pytest.mark.parametrize("track", [True, False])
def test_batch_mean_and_var_equal_a_direct_computation(tmp_path, momentum, track):
    """At momentum 0.1, 0.01 and None (with and without running statistics), batch_mean and
    batch_var equal the input's per-channel mean and unbiased variance, computed in float64."""
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(8, momentum=momentum, track_running_stats=track)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), bn, nn.ReLU())
    with torch.no_grad():
        model[0].bias.add_(torch.linspace(-3, 3, 8))  # channels with very different means
    seen = []
    bn.register_forward_hook(lambda m, i, o: seen.append(i[0].detach().double().clone()))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with Collector(model, tmp_path / "run", every=5) as wr:
        for _ in range(15):  # many batches, so that momentum=None's average has moved far
            x = torch.randn(6, 3, 10, 10) * 1e-3 + 0.5  # a tiny batch variance
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
            wr.step()
    rows = load_run(tmp_path / "run").table("batchnorm").query("step == 15").sort_values("channel")
    var, mean = torch.var_mean(seen[-1], dim=(0, 2, 3), correction=1)
    np.testing.assert_allclose(rows.batch_mean, mean.numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(rows.batch_var, var.numpy(), rtol=1e-4)  # float32 reduction of ~1e-6 variances
    assert (rows.batch_var > 0).all()


@pytest.mark.parametrize("scale, saved", [(1.0, True), (1e-3, True), (1e-5, False)])
def test_saved_statistics_or_a_measurement(scale, saved):
    """The layer's own saved mean and 1/sqrt(var + eps) give the statistics where the variance
    is not far below eps; below it (and without autograd's node) the input is measured.
    Either way they equal a float64 computation."""
    from weightreport.collect import bn_batch

    torch.manual_seed(0)
    conv, bn = nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)
    inp = conv(torch.randn(6, 3, 10, 10) * scale + 0.5)
    out = bn(inp)
    found = bn_batch.saved_stats(out, inp)
    assert (found is not None) == saved
    var, mean = torch.var_mean(inp.detach().double(), dim=(0, 2, 3), correction=1)
    mean_got, var_got = found or bn_batch.batch_stats(inp)
    np.testing.assert_allclose(mean_got.numpy(), mean.numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(var_got.numpy(), var.numpy(), rtol=1.2e-4)
    with torch.no_grad():
        assert bn_batch.saved_stats(bn(inp), inp) is None  # no node to read: measured instead


class BatchNormAct2d(nn.BatchNorm2d):
    """timm's layer of that name, reduced: a BatchNorm that applies its own activation child."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(super().forward(x))


def test_a_batchnorm_with_its_own_activation_is_recorded(tmp_path):
    """A BatchNorm with children (timm's BatchNormAct2d, in EfficientNet, MobileNetV3 and RegNet)
    is no leaf, yet it is watched as the BatchNorm it is: its batch statistics equal a direct
    computation, its input and output are recorded, and its ``act`` child counts dead units."""
    from weightreport.report.build import build_report

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), BatchNormAct2d(8), nn.Flatten(), nn.Linear(8 * 64, 2))
    seen = []
    model[1].register_forward_hook(lambda m, i, o: seen.append(i[0].detach().double().clone()))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with Collector(model, tmp_path / "run", every=5) as wr:
        for _ in range(10):
            opt.zero_grad()
            model(torch.randn(6, 3, 10, 10)).pow(2).mean().backward()
            opt.step()
            wr.step()
    run = load_run(tmp_path / "run")
    rows = run.table("batchnorm").query("step == 10").sort_values("channel")
    var, mean = torch.var_mean(seen[-1], dim=(0, 2, 3), correction=1)
    np.testing.assert_allclose(rows.batch_mean, mean.numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(rows.batch_var, var.numpy(), rtol=1e-5)
    last = run.table("stats").query("step == 10")
    assert {("1", "bn_input"), ("1", "bn_output"), ("1.act", "activation")} <= set(zip(last.tensor, last.kind, strict=True))
    assert last.query("tensor == '1.act'").units.iloc[0] == 8
    html = build_report(tmp_path / "run", tmp_path / "report.html", pdf=False).html.read_text()
    assert "The model has no BatchNorm layers" not in html
