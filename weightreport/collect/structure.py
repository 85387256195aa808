"""The model's structure for the manifest: modules, their parameters, and output shapes.

``describe_model`` lists every module of the (unwrapped) model with its own
parameters; ``OutputShapeRecorder`` fills in each module's output shape from the
first forward pass that reaches it, then removes its hooks.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn.parallel import DataParallel, DistributedDataParallel
from torch.nn.utils.parametrize import is_parametrized
from torch.nn.utils.rnn import PackedSequence
from torch.utils.hooks import RemovableHandle

_DATA_PARALLEL = (DataParallel, DistributedDataParallel)
"""Wrappers that hold the real model as ``.module``."""


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside DDP, DataParallel and ``torch.compile`` wrappers (nested or not).

    Args:
        model: a module, possibly wrapped.

    Returns:
        The innermost module, whose parameter names are the ones users know
        (``fc1.weight`` rather than ``module.fc1.weight`` or ``_orig_mod.fc1.weight``).
    """
    while True:
        compiled = getattr(model, "_orig_mod", None)
        if isinstance(compiled, nn.Module):
            model = compiled
        elif isinstance(model, _DATA_PARALLEL) and isinstance(model.module, nn.Module):
            model = model.module
        else:
            return model


PARAMETRIZATIONS = "parametrizations"
"""The child under which ``torch.nn.utils.parametrize`` keeps a module's parametrizations
(weight norm, spectral norm, orthogonal): internals, not layers the user wrote."""


def is_layer(module: nn.Module) -> bool:
    """True for a module the user wrote as one layer: no children, or only its parametrizations."""
    return all(name == PARAMETRIZATIONS for name, _ in module.named_children())


def type_name(module: nn.Module) -> str:
    """The module's class name; for a parametrized one, the class the user wrote (``Linear``,
    not torch's generated ``ParametrizedLinear``)."""
    cls = type(module)
    if is_parametrized(module) and cls.__bases__:
        cls = cls.__bases__[0]
    return cls.__name__


def in_parametrization(name: str) -> bool:
    """True for a module inside some layer's parametrizations (``fc.parametrizations.weight.0``)."""
    return PARAMETRIZATIONS in name.split(".")


def _owner(name: str) -> str:
    """The parametrized layer that a module inside its parametrizations belongs to."""
    parts = name.split(".")
    return ".".join(parts[: parts.index(PARAMETRIZATIONS)])


def is_compiled(model: nn.Module) -> bool:
    """True for a model wrapped by ``torch.compile`` (at any depth of wrappers) or compiled in place."""
    while True:
        if getattr(model, "_compiled_call_impl", None) is not None:  # nn.Module.compile()
            return True
        inner = getattr(model, "_orig_mod", None)
        if isinstance(inner, nn.Module):
            return True
        if isinstance(model, _DATA_PARALLEL) and isinstance(model.module, nn.Module):
            model = model.module
        else:
            return False


def _param_entry(name: str, param: torch.Tensor) -> dict:
    if isinstance(param, nn.parameter.UninitializedParameter):
        return {"name": name, "shape": None, "numel": 0, "trainable": bool(param.requires_grad)}
    return {"name": name, "shape": [int(s) for s in param.shape], "numel": int(param.numel()),
            "trainable": bool(param.requires_grad)}


def _numel(params) -> int:
    return sum(0 if isinstance(p, nn.parameter.UninitializedParameter) else int(p.numel())
               for p in params)


def describe_model(model: nn.Module) -> dict:
    """The manifest's ``model`` section.

    Modules are listed in ``named_modules()`` order, root first (name ``""``). Each
    lists only its own direct parameters; ``num_params`` counts its own and all its
    descendants'. A parametrized layer (weight norm, spectral norm) is one leaf: the
    modules inside its ``parametrizations`` are not listed, and their parameters
    (``fc.parametrizations.weight.original0``) are listed under the layer. A parameter
    shared by several modules (tied weights) is listed under
    each of them but counted once in every total; every listing after the first says
    ``alias_of``: the name it is recorded under. Lazy parameters not yet
    materialised have ``shape`` None and count as 0.

    Args:
        model: the model; wrappers are removed with ``unwrap``.

    Returns:
        ``{"class", "total_params", "trainable_params", "modules"}``; each module is
        ``{"name", "type", "depth", "leaf", "params", "num_params", "output_shape"}``
        with ``output_shape`` None (the collector fills it in once seen).
    """
    model = unwrap(model)
    modules = []
    first: dict[int, str] = {}  # id(parameter) → the name it was first seen under
    by_name: dict[str, dict] = {}
    for name, module in model.named_modules():
        own = []
        for p, t in module.named_parameters(recurse=False):
            qualified = f"{name}.{p}" if name else p
            entry = _param_entry(qualified, t)
            if id(t) in first:
                entry["alias_of"] = first[id(t)]  # a tied weight: described once, under its first name
            else:
                first[id(t)] = qualified
            own.append(entry)
        if in_parametrization(name):
            by_name[_owner(name)]["params"].extend(own)
            continue
        by_name[name] = {
            "name": name,
            "type": type_name(module),
            "depth": name.count(".") + 1 if name else 0,
            "leaf": is_layer(module),
            "params": own,
            "num_params": _numel(module.parameters()),
            "output_shape": None,
        }
        modules.append(by_name[name])
    params = list(model.parameters())
    return {
        "class": type(model).__name__,
        "total_params": _numel(params),
        "trainable_params": _numel(p for p in params if p.requires_grad),
        "modules": modules,
    }


def output_shape(output: object) -> list[int] | None:
    """The shape recorded for a module's output.

    Args:
        output: what the module's forward returned.

    Returns:
        The tensor's shape; for a tuple, list or mapping, the shape of its first
        top-level tensor; None for anything else (a ``PackedSequence`` included).
    """
    if isinstance(output, torch.Tensor):
        return [int(s) for s in output.shape]
    if isinstance(output, PackedSequence):
        return None
    items = output.values() if isinstance(output, Mapping) else output
    if isinstance(output, (tuple, list, Mapping)):
        for item in items:
            if isinstance(item, torch.Tensor):
                return [int(s) for s in item.shape]
    return None


class OutputShapeRecorder:
    """Records each module's output shape the first time it runs, then unhooks it.

    Every module of the unwrapped model gets a forward hook that records its
    output's shape and removes itself. The root's hook fires last in a forward pass;
    when it does, the hooks of modules that did not run are removed too, so the cost
    after the first forward is nil. Modules that never ran have no entry in ``shapes``.

    Args:
        model: the model; wrappers are removed with ``unwrap``.
    """

    def __init__(self, model: nn.Module) -> None:
        self.shapes: dict[str, list[int] | None] = {}
        self._handles: dict[str, RemovableHandle] = {}
        self._names: list[str] = []
        for name, module in unwrap(model).named_modules():
            self._names.append(name)
            self._handles[name] = module.register_forward_hook(self._hook(name))

    def _hook(self, name: str):
        def hook(module: nn.Module, args: tuple, output: object) -> None:
            if name in self.shapes:
                return
            self.shapes[name] = output_shape(output)
            if name == "":
                self.close()
            else:
                handle = self._handles.pop(name, None)
                if handle is not None:
                    handle.remove()

        return hook

    @property
    def done(self) -> bool:
        """True once every module was seen or the root's forward completed."""
        return "" in self.shapes or len(self.shapes) == len(self._names)

    def close(self) -> None:
        """Remove every hook still registered (safe to call more than once)."""
        while self._handles:
            self._handles.popitem()[1].remove()

    def __enter__(self) -> OutputShapeRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
