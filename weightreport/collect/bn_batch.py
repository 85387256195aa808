"""The per-channel batch mean and variance of a BatchNorm layer's input on a snapshot step.

Measured, not inferred from the running statistics, so they are exact at any momentum
(``None`` included): read from what the layer saved for its backward (``saved_stats``)
where that is exact enough, else measured from the input (``batch_stats``).
"""

from __future__ import annotations

import math

import torch

from weightreport.collect.units import unit_dims

SAVED_VAR_FLOOR = 1e-3
"""``saved_stats`` takes a layer's variance from BatchNorm's saved ``1/sqrt(var + eps)`` only
where every channel's ``var`` is at least this fraction of ``var + eps``: float32's rounding of
the saved value then costs the variance under 1.2e-4 of itself (6e-8 / fraction, doubled)."""


def saved_stats(out: torch.Tensor, inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Per-channel mean and unbiased variance of a BatchNorm layer's input, as the layer saved them.

    In training mode ``native_batch_norm`` computes the batch mean and ``1/sqrt(var + eps)`` and
    autograd keeps both for the backward pass (``NativeBatchNormBackward0``'s saved results), so
    the snapshot reads them instead of reducing the input a second time, which cost about 2 ms
    per layer on the reference CNN. The mean is the kernel's own; the biased variance is
    ``1/invstd² − eps`` in float64. None where the output has no such node (no grad, eval
    mode, SyncBatchNorm, cuDNN, compiled), or where a channel's variance is so far below
    ``eps`` that float32 rounding would show (``SAVED_VAR_FLOOR``): ``batch_stats`` then
    measures the input.
    """
    node = out.grad_fn
    if type(node).__name__ != "NativeBatchNormBackward0":
        return None
    try:
        if not node._saved_training:
            return None
        mean, invstd, eps = node._saved_result1, node._saved_result2, float(node._saved_eps)
    except (AttributeError, RuntimeError):  # another torch's node, or saved tensors already freed
        return None
    channels = inp.shape[1] if inp.dim() >= 2 else 0
    if mean.shape != (channels,) or invstd.shape != (channels,):
        return None
    total = invstd.double().pow(-2)  # var + eps
    var = total - eps
    if not bool((var >= SAVED_VAR_FLOOR * total).all()):
        return None
    n = inp.numel() // channels
    return mean.double(), _unbiased(var, n)


def _unbiased(var: torch.Tensor, n: int) -> torch.Tensor:
    """A float64 biased variance of ``n`` values made unbiased (NaN for a single value)."""
    return var * (n / (n - 1)) if n > 1 else torch.full_like(var, math.nan)


def batch_stats(inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and unbiased variance of a BatchNorm layer's input, measured.

    Taken from the input itself on the snapshot step, with the kernel BatchNorm uses for
    its own batch statistics (``torch.batch_norm_update_stats``, given no running buffers
    to update), so they are exact at any momentum (``None`` included) and whether or not
    the layer tracks running statistics. That kernel is 4× faster on CPU than
    ``torch.var_mean`` over the strided (0, 2, 3) dimensions, which took most of a
    snapshot step's hook time on a BatchNorm CNN. It returns the biased variance; the
    unbiased one is ``var · n / (n − 1)``. Inputs the kernel does not take (an unusual
    dtype or device) fall back to ``torch.var_mean``.
    """
    dims = unit_dims(inp) or (0,)
    x = inp.detach()
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    n = x.numel() // x.shape[1] if x.dim() >= 2 and x.shape[1] else x.numel()
    try:
        mean, var = torch.batch_norm_update_stats(x, None, None, 0.0)
        return mean.double(), _unbiased(var.double(), n)
    except (RuntimeError, NotImplementedError):
        var, mean = torch.var_mean(x, dim=dims, correction=1)
        return mean.double(), var.double()
