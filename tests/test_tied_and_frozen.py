"""Tensors as they really are: tied weights described once, frozen ones marked."""

from __future__ import annotations

import torch
from torch import nn

from weightreport import Collector, load_run


class TiedLM(nn.Module):
    """An embedding whose weight the output layer shares, as GPT-2's wte and lm_head do."""

    def __init__(self) -> None:
        super().__init__()
        self.wte = nn.Embedding(50, 16)
        self.body = nn.Linear(16, 16)
        self.lm_head = nn.Linear(16, 50, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, ids):
        return self.lm_head(torch.relu(self.body(self.wte(ids))))


def test_a_tied_weight_is_described_once_with_its_aliases(tmp_path):
    """A shared parameter gets one set of rows, under its first name; the manifest lists its alias,
    and the element counts match model.parameters()."""
    torch.manual_seed(0)
    model = TiedLM()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ids = torch.randint(0, 50, (4, 7))
    with Collector(model, tmp_path / "run", every=1, optimizer=opt) as wr:
        for _ in range(2):
            opt.zero_grad()
            nn.functional.cross_entropy(model(ids).flatten(0, 1), ids.flatten()).backward()
            opt.step()
            wr.step()
    run = load_run(tmp_path / "run")
    stats = run.table("stats").query("step == 2 and kind == 'param'")
    assert set(stats.tensor) == {"wte.weight", "body.weight", "body.bias"}
    assert stats["numel"].sum() == sum(p.numel() for p in model.parameters())
    assert run.manifest["aliases"] == {"wte.weight": ["lm_head.weight"]}
    listed = {p["name"]: p for m in run.manifest["model"]["modules"] for p in m["params"]}
    assert listed["lm_head.weight"]["alias_of"] == "wte.weight" and "alias_of" not in listed["wte.weight"]
    assert run.manifest["model"]["total_params"] == sum(p.numel() for p in model.parameters())
    grads = run.table("stats").query("kind == 'grad'")
    assert "lm_head.weight" not in set(grads.tensor)


def test_frozen_parameters_are_recorded_and_marked(tmp_path):
    """A parameter with requires_grad=False is recorded and marked not trainable in the manifest."""
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    model[0].requires_grad_(False)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    x = torch.randn(16, 4)
    with Collector(model, tmp_path / "run", every=1, optimizer=opt) as wr:
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
        wr.step()
    run = load_run(tmp_path / "run")
    listed = {p["name"]: p for m in run.manifest["model"]["modules"] for p in m["params"]}
    assert listed["0.weight"]["trainable"] is False and listed["2.weight"]["trainable"] is True
    params = run.table("stats").query("kind == 'param' and step == 1")
    assert {"0.weight", "0.bias"} <= set(params.tensor)


def test_frozen_and_zero_initialised_tensors_raise_no_update_findings(tmp_path):
    """A frozen layer gets no update_ratio finding, and zero-initialised biases get neither update_ratio
    nor weight_norm_growth findings while they grow from zero."""
    from weightreport.cli import main

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))
    model[0].requires_grad_(False)
    for layer in (model[2], model[4]):
        nn.init.zeros_(layer.bias)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05)
    x, y = torch.randn(64, 8), torch.randn(64, 1)
    with Collector(model, tmp_path / "run", every=2, optimizer=opt) as wr:
        for _ in range(40):
            opt.zero_grad()
            nn.functional.mse_loss(model(x), y).backward()
            opt.step()
            wr.step()
    from weightreport.report.analysis.findings import run_findings

    found = run_findings(load_run(tmp_path / "run"))
    flagged = {(f.code, f.tensor) for f in found}
    assert not {t for c, t in flagged if c in ("update_ratio", "weight_norm_growth")} & {
        "0.weight", "0.bias", "2.bias", "4.bias"}, flagged
    assert main(["check", str(tmp_path / "run")]) == 0
