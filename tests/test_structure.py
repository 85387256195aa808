"""Tests for weightreport.collect.structure: the manifest's model section and output shapes."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.nn.utils.rnn import pack_padded_sequence

from weightreport.collect.structure import OutputShapeRecorder, describe_model, output_shape, unwrap


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Sequential(nn.Linear(8, 3), nn.Tanh()))


class Tied(nn.Module):
    """A tiny language model whose output head shares the embedding's weight."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, x):
        return self.head(self.embed(x))


class CompiledStub(nn.Module):
    """Stands in for torch.compile's OptimizedModule, which keeps the model as ``_orig_mod``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self._orig_mod = model

    def forward(self, *args):
        return self._orig_mod(*args)


def fake_ddp(model: nn.Module) -> DistributedDataParallel:
    """A real DistributedDataParallel instance without a process group (only ``.module`` set)."""
    ddp = DistributedDataParallel.__new__(DistributedDataParallel)
    nn.Module.__init__(ddp)
    ddp.module = model
    return ddp


def no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_describe_mlp_lists_modules_in_order_with_own_params():
    """Every module appears in named_modules order with its type, depth, leaf flag and own parameters."""
    d = describe_model(mlp())
    assert d["class"] == "Sequential"
    assert d["total_params"] == d["trainable_params"] == 4 * 8 + 8 + 8 * 3 + 3
    mods = {m["name"]: m for m in d["modules"]}
    assert [m["name"] for m in d["modules"]] == ["", "0", "1", "2", "2.0", "2.1"]
    assert [m["depth"] for m in d["modules"]] == [0, 1, 1, 1, 2, 2]
    assert [m["leaf"] for m in d["modules"]] == [False, True, True, False, True, True]
    assert mods[""]["params"] == [] and mods["2"]["params"] == []
    assert mods["2.0"]["params"] == [
        {"name": "2.0.weight", "shape": [3, 8], "numel": 24, "trainable": True},
        {"name": "2.0.bias", "shape": [3], "numel": 3, "trainable": True},
    ]
    assert mods["2"]["num_params"] == 27 and mods[""]["num_params"] == d["total_params"]
    assert all(m["output_shape"] is None for m in d["modules"])
    assert mods["0"]["type"] == "Linear" and mods["1"]["type"] == "ReLU"


def test_tied_weights_counted_once_but_listed_under_each_owner():
    """A shared parameter is listed by both modules that hold it and counted once in totals."""
    d = describe_model(Tied())
    mods = {m["name"]: m for m in d["modules"]}
    assert d["total_params"] == 40 and mods[""]["num_params"] == 40
    assert mods["embed"]["params"][0]["name"] == "embed.weight"
    assert mods["head"]["params"][0]["name"] == "head.weight"
    assert sum(p["numel"] for m in d["modules"] for p in m["params"]) == 80


def test_frozen_parameters_are_not_trainable():
    """Parameters with requires_grad=False count in total_params but not in trainable_params."""
    model = mlp()
    model[0].requires_grad_(False)
    d = describe_model(model)
    assert d["total_params"] - d["trainable_params"] == 4 * 8 + 8
    first = next(m for m in d["modules"] if m["name"] == "0")
    assert [p["trainable"] for p in first["params"]] == [False, False]


def test_lazy_parameters_do_not_crash():
    """An unmaterialised lazy parameter is described with shape None and zero elements."""
    d = describe_model(nn.Sequential(nn.LazyLinear(3)))
    assert d["modules"][1]["params"][0] == {"name": "0.weight", "shape": None, "numel": 0,
                                            "trainable": True}
    assert d["total_params"] == 0


@pytest.mark.parametrize("wrap", [fake_ddp, nn.DataParallel, CompiledStub,
                                  lambda m: CompiledStub(fake_ddp(m))],
                         ids=["ddp", "dataparallel", "compiled", "compiled-ddp"])
def test_unwrap_removes_wrappers_and_names_are_the_inner_models(wrap):
    """DDP, DataParallel and torch.compile wrappers (also nested) are removed before describing."""
    model = mlp()
    wrapped = wrap(model)
    assert unwrap(wrapped) is model
    d = describe_model(wrapped)
    assert d["class"] == "Sequential"
    assert d["modules"][1]["params"][0]["name"] == "0.weight"


def test_unwrap_keeps_a_model_whose_submodule_is_called_module():
    """A plain model with an attribute named ``module`` is not mistaken for a wrapper."""
    model = nn.Module()
    model.module = nn.Linear(2, 2)
    model.other = nn.Linear(2, 2)
    assert unwrap(model) is model


def test_recorder_records_first_forward_and_removes_all_hooks():
    """After one forward every module has its output shape and no hook is left behind."""
    model = mlp()
    rec = OutputShapeRecorder(model)
    assert not rec.done and not no_hooks(model)
    model(torch.randn(5, 4))
    assert rec.done and no_hooks(model)
    assert rec.shapes == {"": [5, 3], "0": [5, 8], "1": [5, 8], "2": [5, 3], "2.0": [5, 3],
                          "2.1": [5, 3]}
    model(torch.randn(7, 4))
    assert rec.shapes[""] == [5, 3]


def test_recorder_root_forward_removes_hooks_of_modules_that_never_ran():
    """A module the forward skips has no shape, and its hook is removed when the root finishes."""

    class Skips(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used = nn.Linear(2, 2)
            self.unused = nn.Linear(2, 2)

        def forward(self, x):
            return self.used(x)

    model = Skips()
    rec = OutputShapeRecorder(model)
    model(torch.randn(1, 2))
    assert rec.done and no_hooks(model)
    assert "unused" not in rec.shapes and rec.shapes["used"] == [1, 2]


def test_recorder_done_only_when_root_ran_or_all_seen():
    """Running a submodule alone records it and removes its hook, but the recorder is not done."""
    model = mlp()
    rec = OutputShapeRecorder(model)
    model[0](torch.randn(2, 4))
    assert not rec.done and rec.shapes == {"0": [2, 8]}
    assert not model[0]._forward_hooks and model._forward_hooks


def test_recorder_close_removes_hooks_and_uses_unwrapped_names():
    """close() removes every hook; shapes are keyed by the unwrapped model's names."""
    model = mlp()
    rec = OutputShapeRecorder(fake_ddp(model))
    rec.close()
    assert no_hooks(model)
    rec.close()
    with OutputShapeRecorder(CompiledStub(model)) as rec2:
        model(torch.randn(1, 4))
    assert "2.0" in rec2.shapes and no_hooks(model)


def test_recorder_tuple_outputs_use_the_first_tensor():
    """An LSTM's (output, (h, c)) is recorded as the output sequence's shape."""
    model = nn.Sequential()
    model.add_module("rnn", nn.LSTM(3, 5, batch_first=True, bidirectional=True))
    rec = OutputShapeRecorder(model)
    model.rnn(torch.randn(2, 7, 3))
    assert rec.shapes["rnn"] == [2, 7, 10]


@pytest.mark.parametrize(("output", "expected"), [
    (torch.zeros(2, 3), [2, 3]),
    ((torch.zeros(4), torch.zeros(1)), [4]),
    ([None, torch.zeros(1, 2)], [1, 2]),
    ({"logits": torch.zeros(3, 1)}, [3, 1]),
    (("text", 3), None),
    (None, None),
    (pack_padded_sequence(torch.zeros(2, 3, 1), [3, 2], batch_first=True), None),
])
def test_output_shape_of_various_outputs(output, expected):
    """Tensors give their shape, containers their first tensor's, anything else None."""
    assert output_shape(output) == expected
