"""``Collector(config=...)``: hyperparameters of every accepted kind round-trip through run.json."""

from __future__ import annotations

import argparse
import dataclasses
import enum
from pathlib import Path

import pytest
import torch
from torch import nn

from weightreport import Collector, WeightReportError, load_run
from weightreport.collect.config import config_dict, non_default_fields


class Optim(enum.Enum):
    ADAM = "adam"


@dataclasses.dataclass
class Settings:
    lr: float = 0.01
    layers: tuple = (64, 32)
    out: Path = Path("runs")
    optim: Optim = Optim.ADAM


class WithToDict:
    def to_dict(self):
        return {"batch": 32}


def _record(path, config):
    model = nn.Linear(3, 1)
    with Collector(model, path, every=1, config=config) as wr:
        wr.step(loss=1.0)
    return load_run(path).manifest["config"]


@pytest.mark.parametrize(("config", "expected"), [
    ({"lr": 0.1, "nested": {"depth": 2}}, {"lr": 0.1, "nested": {"depth": 2}}),
    (Settings(), {"lr": 0.01, "layers": [64, 32], "out": "runs", "optim": "adam"}),
    (argparse.Namespace(lr=0.5, name="x"), {"lr": 0.5, "name": "x"}),
    (WithToDict(), {"batch": 32}),
    (None, None),
])
def test_config_round_trips(tmp_path, config, expected):
    """A mapping, a dataclass, a Namespace and a to_dict() object are stored in run.json as given."""
    assert _record(tmp_path / "run", config) == expected


def test_values_json_cannot_hold_are_kept_as_repr(tmp_path):
    """A value JSON cannot hold is stored as its repr, never dropped; NaN too, and 0-d tensors as numbers."""
    device = torch.device("cpu")
    stored = _record(tmp_path / "run", {"device": device, "nan": float("nan"), "t": torch.tensor(3.5),
                                        "fn": len})
    assert stored == {"device": repr(device), "nan": "nan", "t": 3.5, "fn": repr(len)}


def test_resume_keeps_the_config(tmp_path):
    """A resumed run without a config keeps the one it was started with."""
    _record(tmp_path / "run", {"lr": 0.1})
    model = nn.Linear(3, 1)
    with Collector(model, tmp_path / "run", mode="resume") as wr:
        wr.step()
    assert load_run(tmp_path / "run").manifest["config"] == {"lr": 0.1}


def test_a_config_of_the_wrong_kind_is_refused_at_construction(tmp_path):
    """A config that is no mapping, dataclass or Namespace fails at once with one line."""
    with pytest.raises(WeightReportError, match="config must be a mapping"):
        Collector(nn.Linear(3, 1), tmp_path / "run", config=[("lr", 0.1)])
    assert config_dict({1: "a"}) == {"1": "a"}


def test_non_default_fields_keep_only_what_was_changed():
    """non_default_fields lists the fields whose value differs from the declared default."""
    assert non_default_fields(Settings(lr=0.5)) == {"lr": 0.5}
    assert non_default_fields(Settings()) == {}
