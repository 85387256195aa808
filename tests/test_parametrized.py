"""Parametrized layers (weight norm, spectral norm) are seen as the layers the user wrote."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations

from weightreport import Collector, load_run


@pytest.mark.parametrize("wrap", [parametrizations.weight_norm, parametrizations.spectral_norm])
def test_parametrized_linear_is_one_layer(tmp_path, wrap):
    """The Linear's output is its activation; the parametrization's modules are neither activations nor rows."""
    torch.manual_seed(0)
    model = nn.Sequential(wrap(nn.Linear(6, 16)), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x = torch.randn(32, 6)
    with Collector(model, tmp_path / "run", every=1, optimizer=opt) as wr:
        for _ in range(3):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
            wr.step()
    run = load_run(tmp_path / "run")
    stats = run.table("stats")
    acts = set(stats[stats["kind"] == "activation"]["tensor"])
    assert "0" in acts and "1" in acts
    assert not any("parametrizations" in a for a in acts), acts
    modules = {m["name"]: m for m in run.manifest["model"]["modules"]}
    assert not any("parametrizations" in name for name in modules)
    assert modules["0"]["leaf"] and modules["0"]["type"] == "Linear"
    listed = {p["name"] for m in modules.values() for p in m["params"]}
    assert listed == {n for n, _ in model.named_parameters()}  # nothing lost, nothing doubled
    assert {p["name"] for p in modules["0"]["params"]} >= {n for n, _ in model.named_parameters() if n.startswith("0.")}
    assert run.manifest["model"]["total_params"] == sum(p.numel() for p in model.parameters())
    # the activation is the Linear's real output: 16 units, as many as the layer's outputs
    units = stats[(stats["tensor"] == "0") & (stats["kind"] == "activation")]
    assert int(units["numel"].iloc[-1]) == 32 * 16
