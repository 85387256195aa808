"""torch.distributed helpers: pieces of sharded tensors, rank-0 work, small reductions.

Under FSDP2 a parameter is a DTensor whose rank-local shard is one piece of the
whole; under DDP an activation is one rank's share of the global batch.
``local_piece`` finds a tensor's piece and whether the pieces make up the whole,
``global_offset`` where it starts, and ``describe_distributed`` describes split
tensors as wholes (the work is in ``stats.split``, which the snapshot uses directly
to make one collective per snapshot). ``on_rank_zero`` runs set-up on rank 0 and
gives every rank its outcome; ``reduce_sum``/``reduce_max``/``reduce_min`` are
element-wise reductions with one ``all_reduce`` each.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
import torch.distributed as dist

from weightreport.errors import WeightReportError
from weightreport.stats import Description, SplitStats, comm_device, describe

T = TypeVar("T")


def is_distributed() -> bool:
    """Whether torch.distributed is available, initialised, and has more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def local_piece(t: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """This rank's piece of ``t`` and whether the pieces of all ranks make up the whole.

    A DTensor sharded on any mesh dimension gives ``(t.to_local(), True)``. Where it
    is also replicated on some mesh dimension (HSDP), only the ranks at coordinate 0
    of those dimensions contribute; the others get an empty piece so that no value is
    counted twice. A fully replicated DTensor gives ``(t.to_local(), False)``; a plain
    tensor gives ``(t, False)``. ``Partial`` placements are reduced first, which is a
    collective: call this on every rank of the mesh.

    Args:
        t: a parameter, gradient or other tensor.
    """
    if type(t) is torch.Tensor:  # a plain tensor (no subclass): skip the import
        return t, False
    try:
        from torch.distributed.tensor import DTensor, Partial, Replicate, Shard
    except ImportError:  # torch built without distributed support
        return t, False
    if not isinstance(t, DTensor):
        return t, False
    placements = list(t.placements)
    if any(isinstance(p, Partial) for p in placements):
        placements = [Replicate() if isinstance(p, Partial) else p for p in placements]
        t = t.redistribute(t.device_mesh, placements)
    local = t.to_local()
    if not any(isinstance(p, Shard) for p in placements):
        return local, False
    coordinate = t.device_mesh.get_coordinate() or []
    for dim, p in enumerate(placements):
        if isinstance(p, Replicate) and coordinate[dim] != 0:
            return local.new_empty(0), True
    return local, True


def on_rank_zero(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 and give every rank its result, or its WeightReportError.

    Outside a process group this is just ``fn()``. Used at construction so that a bad
    run directory fails on every rank at once instead of leaving the others waiting.
    """
    if not is_distributed():
        return fn()
    box: list = [None, None]
    if dist.get_rank() == 0:
        try:
            box[0] = fn()
        except WeightReportError as exc:
            box[1] = str(exc)
    dist.broadcast_object_list(box, src=0)
    if box[1] is not None:
        raise WeightReportError(box[1])
    return box[0]


def _is_dtensor(t: torch.Tensor) -> bool:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # torch built without distributed support
        return False
    return isinstance(t, DTensor)


def global_offset(t: torch.Tensor) -> int | None:
    """Flat index, in the whole tensor, of this rank's first local element.

    0 for a plain tensor. For a DTensor sharded along dimension 0 only (FSDP2's
    layout) the local piece is a contiguous run of rows; for other layouts, where the
    piece is not contiguous in the whole, None.
    """
    if not _is_dtensor(t):
        return 0
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

    shape, offset = compute_local_shape_and_global_offset(t.shape, t.device_mesh, t.placements)
    if any(offset[1:]) or tuple(shape[1:]) != tuple(t.shape[1:]):
        return None
    inner = math.prod(t.shape[1:])
    return int(offset[0]) * inner if t.dim() else 0


def describe_distributed(
    pieces: Sequence[torch.Tensor],
    sharded: Sequence[bool],
    bins: int = 64,
    group=None,
) -> list[Description] | None:
    """Statistics and histograms of tensors split across the ranks of ``group``.

    Call it on every rank, with the same number and order of tensors and the same
    ``sharded`` flags. Without an initialised process group, or in a group of one,
    it is ``stats.describe``. Two collectives: ``stats.SplitStats``'s exchange
    and its ``finish`` (a snapshot, which exchanges again next time, makes one).

    Args:
        pieces: this rank's piece of each tensor (any shape and floating dtype; may
            be empty).
        sharded: per tensor, whether the whole is the union of every rank's piece
            (a shard, or one rank's share of the batch). When false the tensor is
            replicated and only rank 0's piece counts.
        bins: histogram bins per tensor.
        group: the process group (default: the world).

    Returns:
        On rank 0 of ``group``, one ``Description`` per tensor, in order, as
        ``stats.describe`` gives for the whole tensors; None on other ranks.
    """
    if len(pieces) != len(sharded):
        msg = f"got {len(pieces)} pieces but {len(sharded)} sharded flags; pass one flag per piece"
        raise ValueError(msg)
    if not is_distributed() or dist.get_world_size(group) == 1:
        return describe(list(pieces), bins)[0]
    split = SplitStats(bins, group)
    split.exchange(pieces, sharded)
    return split.finish()[1]


def reduce_sum(tensors: Sequence[torch.Tensor], group=None) -> list[torch.Tensor]:
    """Element-wise sums over the ranks of ``group``, with one ``all_reduce`` for all tensors.

    For per-channel vectors such as counts; values travel as float64, so integer
    counts stay exact up to 2**53.

    Returns:
        Tensors of the inputs' shapes, dtypes and devices, the same on every rank.
    """
    return _reduce(tensors, dist.ReduceOp.SUM, group)


def reduce_max(tensors: Sequence[torch.Tensor], group=None) -> list[torch.Tensor]:
    """Element-wise maxima over the ranks of ``group`` (one ``all_reduce``): per-channel amax."""
    return _reduce(tensors, dist.ReduceOp.MAX, group)


def reduce_min(tensors: Sequence[torch.Tensor], group=None) -> list[torch.Tensor]:
    """Element-wise minima over the ranks of ``group`` (one ``all_reduce``): per-channel amin."""
    return _reduce(tensors, dist.ReduceOp.MIN, group)


def _reduce(tensors: Sequence[torch.Tensor], op, group) -> list[torch.Tensor]:
    if not tensors or not is_distributed():
        return [t.detach().clone() for t in tensors]
    device = comm_device(group, tensors)
    packed = torch.cat([t.detach().reshape(-1).to(device, torch.float64) for t in tensors])
    dist.all_reduce(packed, op, group)
    parts = packed.split([t.numel() for t in tensors])
    return [p.reshape(t.shape).to(t.device, t.dtype) for p, t in zip(parts, tensors, strict=True)]
