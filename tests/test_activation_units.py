"""Dead and saturated units per activation kind, against the gradient autograd computes on the same batch."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from weightreport import Collector, load_run
from weightreport.collect.units import (
    DEAD_SLOPE,
    EXACT_DEAD,
    NEVER_DEAD,
    SATURATING,
    SMOOTH,
    ZERO_BELOW,
)

UNITS, BAD, BATCH = 32, 12, 64
"""32 units; the first 12 have pre-activations in the activation's dead or saturated region."""

CASES = [  # (activation, the bad region of pre-activations, what the bad units are)
    (nn.ReLU(), (-12.0, -10.0), "dead"),
    (nn.ReLU6(), (-12.0, -10.0), "dead"),
    (nn.Hardswish(), (-12.0, -10.0), "dead"),
    (nn.GELU(), (-12.0, -10.0), "dead"),
    (nn.GELU(approximate="tanh"), (-12.0, -10.0), "dead"),
    (nn.SiLU(), (-14.0, -12.0), "dead"),
    (nn.SiLU(inplace=True), (-14.0, -12.0), "dead"),
    (nn.Mish(), (-14.0, -12.0), "dead"),
    (nn.Softplus(), (-12.0, -10.0), "dead"),
    (nn.LeakyReLU(), (-12.0, -10.0), "never"),
    (nn.PReLU(), (-12.0, -10.0), "never"),
    (nn.ELU(), (-12.0, -10.0), "never"),
    (nn.SELU(), (-12.0, -10.0), "never"),
    (nn.CELU(), (-12.0, -10.0), "never"),
    (nn.Tanh(), (5.0, 8.0), "saturated"),
    (nn.Sigmoid(), (10.0, 12.0), "saturated"),
    (nn.Hardtanh(), (2.0, 3.0), "saturated"),
    (nn.Hardtanh(-2.0, 0.5), (1.0, 3.0), "saturated"),
    (nn.Hardsigmoid(), (4.0, 5.0), "saturated"),
]


def _model(act: nn.Module, lo: float, hi: float) -> nn.Sequential:
    """Linear(1 → 32) then ``act``: on inputs 0..1, units below BAD span [lo, hi], the rest [−0.5, 0.5]."""
    lin = nn.Linear(1, UNITS)
    with torch.no_grad():
        lin.weight[:BAD, 0] = hi - lo
        lin.bias[:BAD] = lo
        lin.weight[BAD:, 0] = 1.0
        lin.bias[BAD:] = -0.5
    return nn.Sequential(lin, act)


def _autograd_counts(model: nn.Sequential, x: torch.Tensor) -> tuple[int, int]:
    """(dead, saturated) units from d(output)/d(pre-activation) on the batch, by autograd."""
    z = model[0](x).detach().requires_grad_(True)
    model[1](z.clone()).backward(torch.ones(BATCH, UNITS))
    slope = z.grad.abs()
    act = model[1]
    if isinstance(act, (*EXACT_DEAD, *ZERO_BELOW, *NEVER_DEAD)):
        return int((slope == 0).all(0).sum()), 0
    if isinstance(act, tuple(SMOOTH)):
        return int((slope < DEAD_SLOPE).all(0).sum()), 0
    if isinstance(act, (nn.Hardtanh, nn.Hardsigmoid)):
        return 0, int((slope == 0).all(0).sum())
    if isinstance(act, tuple(SATURATING)):
        _centre, reach = SATURATING[type(act)]
        # the slope at the output-space threshold |y - centre| = reach
        edge = 1 - reach**2 if isinstance(act, nn.Tanh) else (0.5 + reach) * (0.5 - reach)
        return 0, int((slope <= edge).all(0).sum())
    return 0, 0


def _recorded_row(model: nn.Sequential, x: torch.Tensor, run: Path):
    """The activation row the collector records for ``model[1]`` on one step over ``x``."""
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # the captured forward sees these weights
    with Collector(model, run, every=1, optimizer=opt) as wr:
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
        wr.step()
    stats = load_run(run).table("stats")
    return stats[(stats.kind == "activation") & (stats.tensor == "1") & (stats.step == 1)].iloc[0]


@pytest.mark.parametrize(("act", "region", "expect"), CASES, ids=lambda c: repr(c) if isinstance(c, nn.Module) else None)
def test_dead_and_saturated_units_match_autograd(tmp_path, act, region, expect):
    """The collector's dead/saturated counts equal the units whose autograd slope is 0 (or below the
    documented threshold) on the whole batch; activations that never die report no dead count."""
    torch.manual_seed(0)
    model = _model(act, *region)
    x = torch.linspace(0, 1, BATCH).unsqueeze(1)
    dead, saturated = _autograd_counts(model, x)
    row = _recorded_row(model, x, tmp_path / "run")
    if expect == "dead":
        assert row.units == UNITS
        assert dead == BAD  # the region was chosen to kill exactly these units
        assert row.dead_units == dead
        assert math.isnan(row.saturated_units)
    elif expect == "saturated":
        assert row.units == UNITS
        assert saturated == BAD
        assert row.saturated_units == saturated
        assert math.isnan(row.dead_units)
    else:
        assert isinstance(act, NEVER_DEAD)
        assert dead == 0  # autograd agrees: the slope is never 0
        assert math.isnan(row.units) and math.isnan(row.dead_units) and math.isnan(row.saturated_units)


HF_CASES = ["GELUActivation", "NewGELUActivation", "GELUTanh", "FastGELUActivation", "QuickGELUActivation",
            "SiLUActivation", "MishActivation", "ReLUSquaredActivation"]
"""transformers' own activation modules (BERT's GELU, GPT-2's gelu_new, ...)."""


@pytest.mark.parametrize("name", HF_CASES)
def test_transformers_activations_count_dead_units_as_autograd_does(tmp_path, name):
    """transformers' activation modules are recognised by class name: their dead units equal the
    units whose autograd slope through the real module is below ``DEAD_SLOPE`` (exactly 0 for ReLU²)."""
    activations = pytest.importorskip("transformers.activations")
    act = getattr(activations, name)()
    torch.manual_seed(0)
    model = _model(act, -14.0, -12.0)
    x = torch.linspace(0, 1, BATCH).unsqueeze(1)
    z = model[0](x).detach().requires_grad_(True)
    act(z).backward(torch.ones(BATCH, UNITS))
    slope = z.grad.abs()
    gone = slope == 0 if name == "ReLUSquaredActivation" else slope < DEAD_SLOPE
    dead = int(gone.all(0).sum())
    assert dead == BAD
    row = _recorded_row(model, x, tmp_path / "run")
    assert row.units == UNITS
    assert row.dead_units == dead
