"""A module called more than once per forward (a ResNet block's ReLU) is captured once per call."""

from __future__ import annotations

import re

import numpy as np
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from weightreport import Collector, build_report, load_run
from weightreport.report.analysis.findings import run_findings
from weightreport.report.analysis.sampling import model_order
from weightreport.runfmt.calls import call_label, call_name, split_call

C, DEAD = 6, 2
"""Channels of the basic block; its second ReLU call has its first ``DEAD`` channels dead."""


class Basic(nn.Module):
    """A ResNet BasicBlock's shape: one ``relu`` after ``conv1`` and again after the residual add."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(C, C, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(C, C, 3, padding=1)
        with torch.no_grad():
            self.conv1.bias.fill_(0.5)  # the first call is alive everywhere
            self.conv2.weight[:DEAD] = 0.0
            self.conv2.bias[:DEAD] = -50.0  # + an input in [0, 1): the second call's first channels die

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.relu(self.conv1(x)))
        return self.relu(out + x)


class Bottleneck(nn.Module):
    """A ResNet Bottleneck's shape: one ``relu`` applied to widths 3, 3 and 8."""

    def __init__(self, cin: int = 4, width: int = 3, cout: int = 8) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.conv3 = nn.Conv2d(width, cout, 1)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.conv1(x))
        out = self.relu(self.conv2(out))
        return self.relu(self.conv3(out) + self.downsample(x))


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(Basic(), nn.Flatten(), nn.Linear(C * 5 * 5, 1))


def _call_inputs(module: nn.Module) -> list[torch.Tensor]:
    """The inputs of each training-mode call of ``module``, recorded by a hook of the test's own."""
    seen: list[torch.Tensor] = []
    module.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()) if m.training else None)
    return seen


def _dead_by_autograd(act: nn.Module, z: torch.Tensor) -> int:
    """Channels where d(sum of the call's outputs)/d(its input) is exactly 0 on the whole batch."""
    z = z.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(act(z.clone()).sum(), z)
    return int((grad.abs().amax(dim=(0, 2, 3)) == 0).sum())


def _train(model: nn.Module, path, x: torch.Tensor, micro: int = 1, **options) -> None:
    with Collector(model, path, every=1, **options) as wr:
        for _ in range(micro):
            model(x).sum().backward()
        wr.step()


def _activations(path) -> dict[str, object]:
    stats = load_run(path).table("stats")
    rows = stats[(stats.kind == "activation") & (stats.step == 1)]
    return {r.tensor: r for r in rows.itertuples()}


def test_call_names_round_trip():
    """The first call keeps the module's name, later ones get ``#k``; a real module named so stays itself."""
    assert call_name("layer1.0.relu", 1) == "layer1.0.relu"
    assert call_name("layer1.0.relu", 3) == "layer1.0.relu#3"
    assert split_call("layer1.0.relu#3") == ("layer1.0.relu", 3)
    assert split_call("layer1.0.relu") == ("layer1.0.relu", 1)
    assert split_call("odd#1") == ("odd#1", 1) and split_call("odd#02") == ("odd#02", 1)
    assert split_call("odd#2", {"odd#2"}) == ("odd#2", 1)
    assert call_label("layer1.0.relu#2") == "layer1.0.relu (call 2)"
    assert call_label("fc1.weight") == "fc1.weight"


def test_second_call_dead_units_match_autograd(tmp_path):
    """Both calls of the block's ReLU get a row; the second's dead count is autograd's, the first has none."""
    model, x = _net(), torch.rand(4, C, 5, 5)
    inputs = _call_inputs(model[0].relu)
    _train(model, tmp_path / "run", x)
    assert len(inputs) == 2
    rows = _activations(tmp_path / "run")
    first, second = rows["0.relu"], rows["0.relu#2"]
    dead = [_dead_by_autograd(nn.ReLU(), z) for z in inputs]
    assert dead == [0, DEAD]
    assert (first.units, first.dead_units) == (C, dead[0])
    assert (second.units, second.dead_units) == (C, dead[1])
    np.testing.assert_allclose(second.mean, torch.relu(inputs[1]).mean().item(), rtol=1e-6)
    np.testing.assert_allclose(first.mean, torch.relu(inputs[0]).mean().item(), rtol=1e-6)


def test_bottleneck_relu_is_captured_three_times_with_its_widths(tmp_path):
    """A ReLU used three times on 3, 3 and 8 channels gives three rows with those unit counts."""
    torch.manual_seed(1)
    model = nn.Sequential(Bottleneck(), nn.Flatten(), nn.Linear(8 * 4 * 4, 1))
    x = torch.randn(5, 4, 4, 4)
    inputs = _call_inputs(model[0].relu)
    _train(model, tmp_path / "run", x)
    rows = _activations(tmp_path / "run")
    names = ["0.relu", "0.relu#2", "0.relu#3"]
    assert [n for n in model_order(list(rows), load_run(tmp_path / "run").manifest) if "relu" in n] == names
    assert [rows[n].units for n in names] == [3, 3, 8]
    assert [rows[n].numel for n in names] == [z.numel() for z in inputs]
    assert [rows[n].dead_units for n in names] == [_dead_by_autograd(nn.ReLU(), z) for z in inputs]


def test_only_the_first_forward_of_an_accumulating_step_is_captured(tmp_path):
    """Two micro-batches, an eval-mode probe and checkpointing's recomputation add no call: two rows only."""

    class Checkpointed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = _net()

        def forward(self, x):
            return checkpoint(self.body, x, use_reentrant=False)  # recomputed during backward

    model, x = Checkpointed(), torch.rand(4, C, 5, 5)
    _train(model, tmp_path / "run", x, micro=2, probe=torch.rand(2, C, 5, 5))
    relus = sorted(n for n in _activations(tmp_path / "run") if "relu" in n)
    assert relus == ["body.0.relu", "body.0.relu#2"]


def test_submodule_called_directly_is_counted_until_backward(tmp_path):
    """When the step calls a submodule, not the model (Lightning's ``self.net(x)``), the window
    closes at the first backward: a second micro-batch adds no call."""
    holder = nn.Module()
    holder.net = _net()
    x = torch.rand(4, C, 5, 5)
    with Collector(holder, tmp_path / "run", every=1) as wr:
        for _ in range(2):
            holder.net(x).sum().backward()
        wr.step()
    relus = sorted(n for n in _activations(tmp_path / "run") if "relu" in n)
    assert relus == ["net.0.relu", "net.0.relu#2"]


def test_reused_batchnorm_has_rows_per_call(tmp_path):
    """A BatchNorm applied twice gets batch statistics per call, each its own input's; gamma is judged once."""

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bn = nn.BatchNorm1d(3)
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return self.bn(self.fc(self.bn(x)))

    torch.manual_seed(2)
    model = Twice()
    with torch.no_grad():
        model.bn.weight.fill_(5e-3)  # collapsed gamma (below 0.01, yet not born at zero): one finding, not one per call
    inputs = _call_inputs(model.bn)
    x = torch.randn(16, 3) * 3 + 1
    _train(model, tmp_path / "run", x)
    run = load_run(tmp_path / "run")
    bn = run.table("batchnorm")
    bn = bn[bn.step == 1]
    for name, z in zip(["bn", "bn#2"], inputs, strict=True):
        got = bn[bn.module == name].sort_values("channel")
        np.testing.assert_allclose(got.batch_mean, z.double().mean(0).numpy(), rtol=1e-6)
        np.testing.assert_allclose(got.batch_var, z.double().var(0).numpy(), rtol=1e-5)
    stats = run.table("stats")
    assert {"bn", "bn#2"} <= set(stats[stats.kind == "bn_output"].tensor)
    collapsed = [f for f in run_findings(run) if f.code == "bn_gamma_collapse"]
    assert [f.tensor for f in collapsed] == ["bn"]


def test_unarmed_forwards_leave_the_capture_untouched(tmp_path):
    """Off cadence the hooks return at once: no window opens and no call is counted."""
    model, x = _net(), torch.rand(4, C, 5, 5)
    with Collector(model, tmp_path / "run", every=5) as wr:
        model(x).sum().backward()
        wr.step()  # step 1; step 2 is not due either
        capture = wr._capture
        assert not capture.armed
        model(x).sum().backward()
        assert capture._window == "waiting" and not capture._calls and not capture._captured


def test_findings_and_report_name_the_call(tmp_path):
    """The dead-units finding names the second call; the HTML offers both calls, in model order, labelled."""
    model, x = _net(), torch.rand(4, C, 5, 5)
    with Collector(model, tmp_path / "run", every=1) as wr:
        for _ in range(3):
            model(x).sum().backward()
            model.zero_grad()
            wr.step()
    run = load_run(tmp_path / "run")
    dead = [f for f in run_findings(run) if f.code == "dead_units"]
    assert [f.tensor for f in dead] == ["0.relu#2"]
    assert f"{DEAD} of {C} units of 0.relu (call 2)" in dead[0].message
    html = build_report(tmp_path / "run", html=tmp_path / "r.html").html.read_text(encoding="utf-8")
    section = html[html.index('data-section="activations"'):]
    options = re.findall(r'<option value="([^"]*)">([^<]*)</option>', section[:section.index("</select>")])
    values = [v for v, _ in options]
    assert values.index("0.relu#2") == values.index("0.relu") + 1
    assert dict(options)["0.relu#2"] == "0.relu (call 2)"
    assert "0.relu (call 2) dead" in html  # the dead-units chart's series
