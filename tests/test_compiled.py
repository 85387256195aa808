"""torch.compile before or after the collector: activations are captured, or it says at once why not."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from weightreport import Collector, load_run
from weightreport.report.sections.activations import activations


def _train(model, compiled, path, before: bool):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(32, 8)
    if before:
        compiled(x).sum().backward()  # compiled and run before the collector exists
        wr = Collector(compiled, path, every=1, optimizer=opt)
    else:
        wr = Collector(model, path, every=1, optimizer=opt)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            opt.zero_grad()
            compiled(x).pow(2).mean().backward()
            opt.step()
            wr.step()
        wr.close()
    return [str(w.message) for w in caught if "weightreport" in str(w.message) or "Dynamo" in str(w.message)]


@pytest.mark.parametrize("before", [False, True])
def test_compiled_model(tmp_path, before):
    """Compiled after: activations recorded, no Dynamo warning. Compiled and run before: one warning, and the
    report gives that reason, not a false one."""
    torch._dynamo.reset()  # each case compiles from scratch, as a fresh process would
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    compiled = torch.compile(model, backend="eager")
    said = _train(model, compiled, tmp_path / "run", before)
    run = load_run(tmp_path / "run")
    stats = run.table("stats")
    acts = stats[stats["kind"] == "activation"]
    assert set(stats[stats["kind"] == "grad"]["tensor"]) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    if not before:
        assert set(acts["tensor"]) == {"0", "1", "2"}
        assert said == [] and run.manifest["activation_note"] is None
        return
    assert acts.empty
    assert len(said) == 1 and "Create the Collector before torch.compile" in said[0]
    note = activations(run, acts, stats.iloc[0:0]).note
    assert "compiled (torch.compile)" in note and "activations=False" not in note
    assert "no probe batch was given" in note
