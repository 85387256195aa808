"""A finding's message and advice fit the layer it is about."""

from __future__ import annotations

import pandas as pd

from weightreport.report.analysis.findings import FINDING_STATS_COLUMNS, find_all


class _Run:
    """Just what the checks read of a run: its manifest and its problems."""

    def __init__(self, types: dict[str, str]) -> None:
        self.manifest = {"status": "complete", "model": {"modules": [
            {"name": n, "type": t, "params": []} for n, t in types.items()]}}

    def problems(self) -> list[str]:
        return []


def _dead(layer: str) -> pd.DataFrame:
    row = dict.fromkeys(FINDING_STATS_COLUMNS, 0.0)
    row.update(step=10, tensor=layer, kind="activation", numel=64, count=64, units=32, dead_units=16,
               saturated_units=float("nan"))
    return pd.DataFrame([row])


def test_dead_unit_advice_follows_the_activation():
    """A GELU layer is told about inputs far below zero, not to switch to GELU; a ReLU layer is told to try LeakyReLU/GELU."""
    scalars = pd.DataFrame(columns=["step", "name", "value"])
    (gelu,) = [f for f in find_all(_dead("act"), scalars, run=_Run({"act": "GELU"})) if f.code == "dead_units"]
    assert "slope below 1e-3" in gelu.message and "GELU" not in gelu.suggestion
    (relu,) = [f for f in find_all(_dead("act"), scalars, run=_Run({"act": "ReLU"})) if f.code == "dead_units"]
    assert "never positive" in relu.message and "LeakyReLU/GELU" in relu.suggestion
    for hf in ("GELUActivation", "NewGELUActivation", "QuickGELUActivation"):  # transformers' own modules
        (f,) = [f for f in find_all(_dead("act"), scalars, run=_Run({"act": hf})) if f.code == "dead_units"]
        assert "slope below 1e-3" in f.message and "GELU" not in f.suggestion, hf
