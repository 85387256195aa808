"""Rows for the ``probes`` table: what the model does with one fixed probe batch.

``capture_probes`` runs the probe through the model once, in eval mode without
gradients, with temporary hooks on convolutions (feature maps), multi-head attention
(weights per head: ``nn.MultiheadAttention``, the attention modules a Hugging Face
model declares, see ``hf_attention``, and timm's, see ``timm_attention``) and recurrent
layers (hidden states). Each capture is the first probe sample only, average-pooled at
once into small row-major float32 matrices (copies, so later in-place ops cannot change
them).

Every call of a module in the probe's forward is captured, named as the activations'
calls are (``runfmt.calls``): ALBERT runs one shared attention module once per layer,
and each call attends differently, so ``…attention`` is the first layer's maps and
``…attention#2`` the second's. Pooling in the hook keeps each call's capture small
(at most ``max_channels`` matrices of ``max_side``²) whatever the sequence length.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from weightreport.collect.hf_attention import WEIGHTS_AT, attention_modules, attention_note
from weightreport.collect.structure import unwrap
from weightreport.collect.timm_attention import explicit_weights, is_timm_attention, weights_module
from weightreport.errors import WeightReportError
from weightreport.runfmt.calls import call_name

CONV_DIMS: dict[type, int] = {
    nn.Conv1d: 1, nn.ConvTranspose1d: 1,
    nn.Conv2d: 2, nn.ConvTranspose2d: 2,
    nn.Conv3d: 3, nn.ConvTranspose3d: 3,
}
"""Convolution type → spatial dimensions; their outputs become ``feature_map`` rows."""
LENGTH_FACTOR = 4
"""A 1-D feature map is pooled to at most ``LENGTH_FACTOR * max_side`` columns."""
OWN_OUTPUT = None
"""An attention target's weights position when the hooked module's output is the weights
themselves (timm's ``attn_drop``); not an int, for -1 is a position (T5's weights come last)."""
_NEED_WEIGHTS, _AVERAGE_WEIGHTS = 4, 6
"""Positions of ``need_weights`` and ``average_attn_weights`` in ``MultiheadAttention.forward``."""


def _conv_dims(module: nn.Module) -> int | None:
    for conv, dims in CONV_DIMS.items():
        if isinstance(module, conv):
            return dims
    return None


def _kind_of(module: nn.Module) -> str | None:
    if _conv_dims(module) is not None:
        return "feature_map"
    if isinstance(module, nn.MultiheadAttention):
        return "attention"
    if isinstance(module, nn.RNNBase):
        return "hidden_state"
    return None


def _targets(model: nn.Module) -> list[tuple[str, str, nn.Module, int | None]]:
    """``(name, kind, module to hook, position of the weights in an attention output)`` in model
    order. A timm attention module is hooked at its ``attn_drop``, whose output is the weights."""
    hf = {name: at for name, _, at in attention_modules(model)}
    found = []
    for name, module in model.named_modules():
        if is_timm_attention(module) and name not in hf:
            found.append((name, "attention", weights_module(module), OWN_OUTPUT))
        elif (kind := _kind_of(module)) is not None or name in hf:
            found.append((name, "attention" if name in hf else kind, module, hf.get(name, WEIGHTS_AT)))
    return found


def _first_sample(kind: str, module: nn.Module, output: object, at: int | None = WEIGHTS_AT) -> torch.Tensor | None:
    """The first probe sample's part of ``output`` (a view; the hook copies it), or None.

    ``at`` is where an attention module's output tuple holds its weights.
    """
    if kind == "feature_map":
        if not isinstance(output, torch.Tensor):
            return None
        batched = output.dim() == _conv_dims(module) + 2
        return output[0] if batched else output
    if kind == "attention" and at is OWN_OUTPUT:
        first = output
    elif not isinstance(output, (tuple, list)) or not output:
        return None
    else:
        first = output[0] if kind == "hidden_state" else (output[at] if -len(output) <= at < len(output) else None)
    if kind == "attention":  # (batch, heads, target, source), or (heads, target, source) unbatched
        if not isinstance(first, torch.Tensor) or first.dim() not in (3, 4):
            return None
        return first[0] if first.dim() == 4 else first
    if isinstance(first, PackedSequence):
        padded, lengths = pad_packed_sequence(first, batch_first=True)
        return padded[0, : int(lengths[0])]
    if not isinstance(first, torch.Tensor) or first.dim() not in (2, 3):
        return None
    if first.dim() == 2:  # unbatched: (time, features)
        return first
    return first[0] if module.batch_first else first[:, 0]


def _fit(rows: int, cols: int, max_rows: int, max_cols: int) -> tuple[int, int]:
    return min(rows, max_rows), min(cols, max_cols)


def _fit_aspect(rows: int, cols: int, side: int) -> tuple[int, int]:
    """At most ``side`` × ``side``, scaled down evenly so the aspect ratio roughly holds."""
    if rows <= side and cols <= side:
        return rows, cols
    scale = side / max(rows, cols)
    return max(1, min(side, round(rows * scale))), max(1, min(side, round(cols * scale)))


def _pool(planes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Average-pool ``(n, rows, cols)`` planes to ``size``; NaN and Inf propagate into their cell."""
    if tuple(planes.shape[-2:]) == size:
        return planes
    return F.adaptive_avg_pool2d(planes, size)


def _matrices(kind: str, module: nn.Module, sample: torch.Tensor, *, max_channels: int,
              max_side: int, fmap_side: int) -> torch.Tensor:
    """The ``(index, rows, cols)`` float32 matrices for one captured sample."""
    x = sample.float()
    if kind == "feature_map":
        x = x[:max_channels]
        dims = _conv_dims(module)
        if dims == 1:
            x = x.unsqueeze(1)
            return _pool(x, (1, min(x.shape[-1], LENGTH_FACTOR * max_side)))
        if dims == 3:
            x = x.mean(dim=1)
        return _pool(x, _fit_aspect(x.shape[-2], x.shape[-1], fmap_side))
    if kind == "hidden_state":
        x = x.reshape(x.shape[0], -1).unsqueeze(0)
    return _pool(x, _fit(x.shape[-2], x.shape[-1], max_side, max_side))


def _force_weights(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Forward pre-hook: make ``MultiheadAttention`` return per-head weights."""
    args, kwargs = list(args), dict(kwargs)
    for position, key, value in ((_NEED_WEIGHTS, "need_weights", True),
                                 (_AVERAGE_WEIGHTS, "average_attn_weights", False)):
        if len(args) > position:
            args[position] = value
        else:
            kwargs[key] = value
    return tuple(args), kwargs


def _get_fastpath() -> bool | None:
    get = getattr(getattr(torch.backends, "mha", None), "get_fastpath_enabled", None)
    return bool(get()) if get is not None else None


def _set_fastpath(value: bool | None) -> None:
    setter = getattr(getattr(torch.backends, "mha", None), "set_fastpath_enabled", None)
    if value is not None and setter is not None:
        setter(value)


def _device_of(model: nn.Module) -> torch.device | None:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return None


def _to(value: object, device: torch.device | None) -> object:
    if device is not None and isinstance(value, torch.Tensor) and value.device != device:
        return value.to(device)
    return value


def _call(model: nn.Module, probe: object) -> object:
    device = _device_of(model)
    if isinstance(probe, Mapping):
        return model(**{k: _to(v, device) for k, v in probe.items()})
    if isinstance(probe, (tuple, list)):
        return model(*(_to(v, device) for v in probe))
    return model(_to(probe, device))


def capture_probes(model: nn.Module, probe: object, step: int, *, max_channels: int = 8,
                   max_side: int = 64, fmap_side: int = 32, notes: list[str] | None = None) -> list[dict]:
    """Run one forward of ``probe`` and return the ``probes`` table's rows.

    The model runs in eval mode under ``torch.no_grad()``; every module's training
    flag, the MHA fast-path setting, timm attention's ``fused_attn`` flags (off for the
    pass) and the model's hooks are restored afterwards, also on error. A Hugging Face
    model's config is never touched (its attention modules are hooked directly). Tensors in the
    probe are moved to the device of the model's first parameter. A module that runs several
    times gives rows for each call, the k-th (k ≥ 2) named ``<module>#<k>``.

    Args:
        model: the model; wrappers are removed with ``unwrap``.
        probe: a tensor (``model(probe)``), a tuple or list (``model(*probe)``) or a
            mapping (``model(**probe)``).
        step: the step written into every row.
        max_channels: feature maps kept per convolution (the first channels).
        max_side: bound on the rows and columns of attention and hidden-state matrices.
        fmap_side: bound on the sides of 2-D and 3-D feature maps (aspect kept roughly).
        notes: when given, a line saying which attention modules gave no weights (fused
            ``sdpa`` attention, an old transformers) is appended to it.

    Returns:
        Dicts with ``step, module, kind, index, rows, cols, values`` (a 1-D float32
        array of ``rows * cols`` values, row-major), in module order, then call, then index.

    Raises:
        WeightReportError: the model's forward raised on the probe.
    """
    model = unwrap(model)
    targets = _targets(model)
    captured: dict[str, list[torch.Tensor]] = {}  # module → its calls' matrices, in call order
    weightless: set[str] = set()

    def keep(name: str, kind: str, at: int | None):
        def hook(module: nn.Module, args: tuple, output: object) -> None:
            sample = _first_sample(kind, module, output, at)
            if sample is not None:
                mats = _matrices(kind, module, sample.detach(), max_channels=max_channels,
                                 max_side=max_side, fmap_side=fmap_side)
                captured.setdefault(name, []).append(mats.clone())
            elif kind == "attention":
                weightless.add(name)

        return hook

    flags = [(module, module.training) for module in model.modules()]
    fastpath = _get_fastpath()
    handles = []
    try:
        for name, kind, module, at in targets:
            if isinstance(module, nn.MultiheadAttention):
                handles.append(module.register_forward_pre_hook(_force_weights, with_kwargs=True))
            handles.append(module.register_forward_hook(keep(name, kind, at)))
        _set_fastpath(False)
        model.eval()
        explicit = [m for m in model.modules() if is_timm_attention(m)]
        with torch.no_grad(), explicit_weights(explicit):
            try:
                _call(model, probe)
            except Exception as exc:
                detail = str(exc).strip().splitlines()
                msg = (f"probe batch failed in model forward: {type(exc).__name__}: "
                       f"{detail[0] if detail else ''}; pass a batch the model accepts")
                raise WeightReportError(msg) from exc
    finally:
        for handle in handles:
            handle.remove()
        _set_fastpath(fastpath)
        for module, flag in flags:
            module.training = flag

    if notes is not None and (note := attention_note(
            model, [name for name, *_ in targets if name in weightless and name not in captured])) is not None:
        notes.append(note)
    rows = []
    for name, kind, _, _ in targets:
        for call, mats in enumerate(captured.get(name, ()), start=1):
            values = mats.cpu().numpy().astype(np.float32, copy=False)
            for index, mat in enumerate(values):
                rows.append({"step": int(step), "module": call_name(name, call), "kind": kind, "index": index,
                             "rows": int(mat.shape[0]), "cols": int(mat.shape[1]),
                             "values": mat.reshape(-1).copy()})
    return rows
