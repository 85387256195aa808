"""Which modules of a timm model compute attention weights the probe can take, and how.

timm's attention modules (``timm.layers.Attention`` in its ViT, DeiT, EVA and BEiT, Swin's
``WindowAttention``, and some twenty more) share one pattern: a ``fused_attn`` flag chooses
between ``F.scaled_dot_product_attention``, which computes no weights, and an explicit path
that computes the softmax and passes it through the module's ``attn_drop`` dropout. For the
probe pass the flag is turned off (and restored afterwards, also on error), and a hook on
``attn_drop`` takes the probabilities it is given, ``(batch, heads, target, source)``. In eval
mode that dropout returns them unchanged, so the probe's forward computes what it would
have.

Nothing here imports timm: a module is recognised by duck typing (a boolean ``fused_attn``
and an ``attn_drop`` submodule).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

FLAG, DROPOUT = "fused_attn", "attn_drop"
"""The attribute that picks the fused kernel, and the dropout the explicit path's weights pass through."""


def is_timm_attention(module: nn.Module) -> bool:
    """Whether ``module`` follows timm's pattern (``fused_attn`` flag, ``attn_drop`` dropout)."""
    return isinstance(getattr(module, FLAG, None), bool) and isinstance(getattr(module, DROPOUT, None), nn.Module)


def weights_module(module: nn.Module) -> nn.Module:
    """The submodule whose output is the attention weights once the flag is off."""
    return getattr(module, DROPOUT)


@contextmanager
def explicit_weights(modules: list[nn.Module]) -> Iterator[None]:
    """Within the block, every module computes its attention weights explicitly (flag off)."""
    flags = [(m, getattr(m, FLAG)) for m in modules]
    try:
        for m, _ in flags:
            setattr(m, FLAG, False)
        yield
    finally:
        for m, flag in flags:
            setattr(m, FLAG, flag)
