"""Reading checkpoints safely: safetensors, or ``torch.load(weights_only=True)``.

A checkpoint never runs code: pickles that name anything beyond tensors and plain
containers are refused by torch's weights-only unpickler, and that refusal becomes
a ``WeightReportError``.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path

import torch

from weightreport.errors import WeightReportError

NESTED_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network", "weights")
"""Keys under which training scripts commonly nest the model's state dict."""


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The floating-point tensors of a checkpoint, by qualified name, in file order.

    Args:
        path: a ``.safetensors`` file, or a ``.pt``/``.pth``/``.bin``/``.ckpt`` state dict
            (possibly nested under ``state_dict``, ``model``, ...).

    Raises:
        WeightReportError: the file is missing, unreadable, unsafe or holds no tensors.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"{path}: no such checkpoint file; pass a .safetensors, .pt, .pth or .bin file"
        raise WeightReportError(msg)
    raw = _load_safetensors(path) if path.suffix == ".safetensors" else _load_torch(path)
    tensors = {k: v for k, v in _flatten(raw).items() if v.is_floating_point()}
    if not tensors:
        msg = f"{path} holds no floating-point tensors; is it a model checkpoint?"
        raise WeightReportError(msg)
    return tensors


def _load_safetensors(path: Path) -> dict:
    try:
        from safetensors.torch import load_file
    except ImportError:
        msg = "reading .safetensors needs the safetensors package; pip install safetensors"
        raise WeightReportError(msg) from None
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:
        msg = f"{path} is not a readable safetensors file ({type(exc).__name__}: {exc})"
        raise WeightReportError(msg) from None


def _load_torch(path: Path) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        blocked = [line.strip() for line in text.splitlines() if "GLOBAL" in line]
        if blocked:
            msg = (f"{path} was refused: loading it would run code ({blocked[0][:160]}); "
                   "re-save it as a plain state dict or .safetensors")
        else:
            msg = f"{path} is not a readable PyTorch checkpoint (the weights-only unpickler rejected it)"
        raise WeightReportError(msg) from None
    except Exception as exc:
        msg = f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})"
        raise WeightReportError(msg) from None


def _flatten(obj: object, prefix: str = "") -> dict[str, torch.Tensor]:
    """Tensors of a (possibly nested) checkpoint; a known wrapper key is unwrapped first."""
    if isinstance(obj, Mapping):
        for key in NESTED_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and any(isinstance(v, torch.Tensor) for v in inner.values()):
                return _flatten(inner, prefix)
        out: dict[str, torch.Tensor] = {}
        for key, value in obj.items():
            name = f"{prefix}{key}"
            if isinstance(value, torch.Tensor):
                out[name] = value
            elif isinstance(value, Mapping):
                out.update(_flatten(value, name + "."))
        return out
    if isinstance(obj, torch.Tensor):
        return {prefix.rstrip(".") or "tensor": obj}
    return {}
