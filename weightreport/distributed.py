"""Statistics of tensors split across the ranks of a process group.

Under FSDP2 a parameter is a DTensor whose rank-local shard is one piece of the
whole; under DDP an activation is one rank's share of the global batch. The
functions here give the same ``stats.Description`` as ``stats.describe`` would on
the whole tensor, with three small collectives per call however many tensors:

1. ``all_gather`` (float64): per tensor and rank, element/NaN/Inf/finite/zero
   counts, min, max and the central sums ``M2..M4`` about the piece's own mean
   (scaled by a power of two). Every rank merges them in rank order with the
   pairwise formulas of Chan and Pébay, so mean, variance, skew and kurtosis are
   free of the cancellation that raw power sums suffer (BatchNorm gamma ≈ 1 with a
   tiny spread), and the histogram grid, a function of the global min, max and
   ``bins``, comes out the same on every rank. The caller's own per-rank vectors
   (norms, counts, per-channel maxima) ride along and are summed or maxed on the host.
2. ``all_reduce`` (SUM, float64) of every large tensor's histogram counts and of
   its values beyond 3 and 6 standard deviations from the global mean (counts are
   exact in float64 up to 2**53), and of the pieces of small tensors (up to
   ``stats.SMALL`` elements in all): each rank writes its piece into its own slot
   of a zero buffer, so the sum is the whole tensor in rank order, which rank 0
   describes exactly with ``stats.describe_arrays``.
3. ``all_reduce`` (SUM, float64) of the values outside the IQR fences, which every
   rank computes from the global histogram's p25 and p75.

Each round needs the one before: the grid needs the global range, the fences need
the global histogram. A collective is skipped when no tensor needs it, and none is
made when nothing is sharded and nothing is to be reduced. Replicated tensors
(``sharded`` false) are described by rank 0 alone, with ``stats.describe``, exactly
as in one process. Counts equal the single-process ones exactly and percentiles of
large tensors are the same histogram interpolation; moments are float64 throughout
(chunks of ``_CHUNK`` elements), so they are closer to exact than
``stats.describe``'s float32 sums, at a few times its cost per element. A -0.0 in a
small tensor's piece arrives as 0.0 (it was summed with zeros). Results come back on
rank 0 only, the reduced vectors on every rank.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import TypeVar

import numpy as np
import torch
import torch.distributed as dist

from weightreport.description import (
    Description,
    empty_description,
    moment_columns,
    percentile_columns,
)
from weightreport.errors import WeightReportError
from weightreport.grid import histogram_grid
from weightreport.stats import (
    SMALL,
    _to_host,
    describe,
    describe_arrays,
    flat,
    quantiles_from_counts,
)
from weightreport.stats import (
    _outside as stats_outside,
)

T = TypeVar("T")

_CHUNK = 1 << 22
"""Elements widened to float64 at a time, which bounds the scratch memory."""

# Round 1's per-tensor fields, in order.
_COUNT, _NAN, _INF, _N, _LO, _HI, _EXP, _MEAN, _M2, _M3, _M4, _ZEROS = range(12)
_FIELDS = 12


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
    it is ``stats.describe``.

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
    return describe_and_reduce(pieces, sharded, bins, group=group)[0]


def describe_and_reduce(
    pieces: Sequence[torch.Tensor],
    sharded: Sequence[bool],
    bins: int = 64,
    sums: Sequence[torch.Tensor] = (),
    maxes: Sequence[torch.Tensor] = (),
    group=None,
) -> tuple[list[Description] | None, list[np.ndarray], list[np.ndarray]]:
    """``describe_distributed``, plus element-wise sums and maxima that ride on its first round.

    Args:
        pieces, sharded, bins, group: as for ``describe_distributed``.
        sums: per-rank tensors to add up over the ranks (the same shapes on every rank).
        maxes: per-rank tensors to reduce by maximum (a minimum is the max of the negation).

    Returns:
        The descriptions (rank 0; None elsewhere), and the summed and maxed tensors as
        flat float64 arrays on every rank, in order.
    """
    if len(pieces) != len(sharded):
        msg = f"got {len(pieces)} pieces but {len(sharded)} sharded flags; pass one flag per piece"
        raise ValueError(msg)
    if not is_distributed() or dist.get_world_size(group) == 1:
        described, flat_extras = describe(list(pieces), bins, [*sums, *maxes])
        return described, flat_extras[: len(sums)], flat_extras[len(sums):]
    rank = dist.get_rank(group)
    out: list[Description | None] = [None] * len(pieces)
    replicated = [i for i, s in enumerate(sharded) if not s]
    if rank == 0 and replicated:
        descriptions = describe([pieces[i] for i in replicated], bins)[0]
        for i, d in zip(replicated, descriptions, strict=True):
            out[i] = d
    split = [i for i, s in enumerate(sharded) if s]
    summed: list[np.ndarray] = []
    maxed: list[np.ndarray] = []
    if split or sums or maxes:
        descriptions, summed, maxed = _describe_split(
            [flat(pieces[i]) for i in split], bins, group, list(sums), list(maxes))
        for i, d in zip(split, descriptions, strict=True):
            out[i] = d
    return (out if rank == 0 else None), summed, maxed  # type: ignore[return-value]


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
    device = _comm_device(group, tensors)
    packed = torch.cat([t.detach().reshape(-1).to(device, torch.float64) for t in tensors])
    dist.all_reduce(packed, op, group)
    parts = packed.split([t.numel() for t in tensors])
    return [p.reshape(t.shape).to(t.device, t.dtype) for p, t in zip(parts, tensors, strict=True)]


def _comm_device(group, tensors: Sequence[torch.Tensor]) -> torch.device:
    """Where the collectives' buffers live: the CPU for gloo, else the tensors' accelerator."""
    backend = str(dist.get_backend(group))
    accelerator = next((t.device for t in tensors if t.device.type != "cpu"), None)
    if backend == "gloo" or (accelerator is None and "gloo" in backend):
        return torch.device("cpu")
    if accelerator is not None:
        return accelerator
    if torch.cuda.is_available():  # NCCL, and this rank holds only CPU tensors
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# --- the sharded tensors ------------------------------------------------------------------


def _describe_split(flats: list[torch.Tensor], bins: int, group, sums: list[torch.Tensor],
                    maxes: list[torch.Tensor]):
    """Descriptions (on rank 0; placeholders elsewhere) of tensors split over ``group``,
    and the caller's vectors summed and maxed over the ranks."""
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    device = _comm_device(group, [*flats, *sums, *maxes])
    finite, rows = _local_summaries(flats)
    extras = [t.detach().reshape(-1).to(device, torch.float64) for t in [*sums, *maxes]]
    packed = torch.cat([*(r.to(device) for r in rows), *extras, torch.zeros(0, dtype=torch.float64, device=device)])
    gathered = [torch.empty_like(packed) for _ in range(world)]
    dist.all_gather(gathered, packed, group)  # round 1
    everything = _to_host(gathered).reshape(world, -1)
    width = len(flats) * _FIELDS
    per_rank = everything[:, :width].reshape(world, len(flats), _FIELDS)
    summed, maxed = _split_extras(everything[:, width:], sums, maxes)
    if not flats:
        return [], summed, maxed
    merged = _merge(per_rank)
    n, count = merged[:, _N], merged[:, _COUNT].astype(np.int64)
    small = [i for i in range(len(flats)) if count[i] <= SMALL]
    large = [i for i in range(len(flats)) if count[i] > SMALL and n[i] > 0]

    grids = [histogram_grid(merged[i, _LO], merged[i, _HI], bins) for i in large]
    local = [_binned(finite[i], grid, *_mean_std(merged[i]), device)
             for i, grid in zip(large, grids, strict=True)]
    sizes = per_rank[:, small, _COUNT].astype(np.int64)
    slots = _small_slots([flats[i] for i in small], sizes, rank, device)
    reduced = _all_sum([slots, *local], group, device)  # round 2
    totals = reduced[slots.numel():].astype(np.int64).reshape(len(large), bins + 2)
    qs, outside = [], []
    for i, grid, t in zip(large, grids, totals, strict=True):
        q = quantiles_from_counts(t[:bins], grid, int(n[i]))
        qs.append(np.clip(q, merged[i, _LO], merged[i, _HI]))  # as reported, fences too
        iqr = qs[-1][4] - qs[-1][2]
        outside.append(_outside(finite[i], qs[-1][2] - 1.5 * iqr, qs[-1][4] + 1.5 * iqr, device))
    outside = _all_sum(outside, group, device)  # round 3
    if rank != 0:
        return [None] * len(flats), summed, maxed
    out: list[Description | None] = [None] * len(flats)
    # The small tensors' wholes lie one after another in the summed slots.
    for i, d in zip(small, describe_arrays(reduced[: slots.numel()], sizes.sum(axis=0).tolist(), bins),
                    strict=True):
        out[i] = d
    for k, i in enumerate(large):
        out[i] = _description(merged[i], grids[k], totals[k], qs[k], int(outside[k]))
    for i in range(len(flats)):
        if out[i] is None:  # large, and no finite value
            out[i] = empty_description(_head(merged[i]), bins)
    return out, summed, maxed


def _split_extras(per_rank: np.ndarray, sums, maxes) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The caller's vectors from round 1 (ranks × values): summed and maxed over the ranks."""
    sizes = [t.numel() for t in [*sums, *maxes]]
    cuts = np.cumsum([0, *sizes])
    parts = [per_rank[:, a:b] for a, b in pairwise(cuts)]
    return ([p.sum(axis=0) for p in parts[: len(sums)]],
            [p.max(axis=0) for p in parts[len(sums):]])


def _local_summaries(flats: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Each piece's finite values, and its round-1 row (fields ``_COUNT`` to ``_ZEROS``)."""
    ranges = iter(_to_host([torch.stack(torch.aminmax(x)).double() for x in flats if x.numel()]))
    finite, rows = [], []
    for x in flats:
        head = [float(x.numel()), 0.0, 0.0]
        lo, hi = (float(next(ranges)), float(next(ranges))) if x.numel() else (0.0, 0.0)
        if not (math.isfinite(lo) and math.isfinite(hi)):  # rare: NaN or Inf present
            nan = int(torch.isnan(x).sum())
            keep = x[torch.isfinite(x)]
            head[1:] = [float(nan), float(x.numel() - nan - keep.numel())]
            x = keep
            lo, hi = (float(v) for v in torch.aminmax(x)) if x.numel() else (0.0, 0.0)
        finite.append(x)
        if not x.numel():
            rows.append(torch.tensor([*head, 0.0, math.inf, -math.inf, *[0.0] * 6],
                                     dtype=torch.float64))
            continue
        peak = max(abs(lo), abs(hi))
        exponent = min(math.frexp(peak)[1], 1023) if peak > 0 else 0  # 2**1024 overflows
        fixed = torch.tensor([*head, x.numel(), lo, hi, exponent], dtype=torch.float64)
        rows.append(torch.cat([fixed.to(x.device), _piecemoment_columns(x, math.ldexp(1.0, exponent))]))
    return finite, rows


def _piecemoment_columns(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``[mean, M2, M3, M4, zeros]`` of the finite values ``x / scale``, float64, on x's device.

    ``M2..M4`` are sums of powers of deviations from the mean. Each chunk is centred
    on its own mean in float64 (two passes), and chunks are merged pairwise.
    """
    acc = [torch.zeros((), dtype=torch.float64, device=x.device)] * 5  # n, mean, M2, M3, M4
    zeros = torch.zeros((), dtype=torch.int64, device=x.device)
    for chunk in x.split(_CHUNK):
        n = chunk.numel()
        d = chunk.to(torch.float64, copy=True).div_(scale)  # exact: a power of two
        m = d.mean()
        d.sub_(m)
        d2 = d * d
        s1, s2, s3, s4 = d.sum(), d2.sum(), torch.dot(d2, d), torch.dot(d2, d2)
        delta = s1 / n  # the chunk's exact centre is m + delta; correct the sums for it
        part = (torch.full_like(m, n), m + delta, s2 - n * delta**2,
                s3 - 3 * delta * s2 + 2 * n * delta**3,
                s4 - 4 * delta * s3 + 6 * delta**2 * s2 - 3 * n * delta**4)
        acc = list(_combine(*acc, *part))
        zeros = zeros + torch.count_nonzero(chunk == 0)
    return torch.stack([*acc[1:], zeros.double()])


def _combine(na, ma, m2a, m3a, m4a, nb, mb, m2b, m3b, m4b):
    """Count, mean and central sums ``M2..M4`` of two parts together (Chan et al.; Pébay 2008).

    Works elementwise on floats, numpy arrays and tensors; an empty part (n = 0 and
    zero sums) leaves the other unchanged.
    """
    n = na + nb
    safe = n + (n == 0)  # 1 where both parts are empty, so nothing divides by 0
    delta = mb - ma
    mean = ma + delta * nb / safe
    m2 = m2a + m2b + delta**2 * na * nb / safe
    m3 = (m3a + m3b + delta**3 * na * nb * (na - nb) / safe**2
          + 3 * delta * (na * m2b - nb * m2a) / safe)
    m4 = (m4a + m4b + delta**4 * na * nb * (na * na - na * nb + nb * nb) / safe**3
          + 6 * delta**2 * (na * na * m2b + nb * nb * m2a) / safe**2
          + 4 * delta * (na * m3b - nb * m3a) / safe)
    return n, mean, m2, m3, m4


def _merge(per_rank: np.ndarray) -> np.ndarray:
    """Round-1 rows of all ranks (ranks × tensors × fields) → one row per tensor.

    Counts are summed, min and max reduced. Each rank's moments are brought to the
    largest power-of-two scale among the ranks (so nothing overflows) and merged in
    rank order; the merged ``_MEAN.._M4`` stay at that scale, whose exponent is ``_EXP``.
    """
    out = np.zeros(per_rank.shape[1:])
    for f in (_COUNT, _NAN, _INF, _N, _ZEROS):
        out[:, f] = per_rank[:, :, f].sum(axis=0)
    out[:, _LO] = per_rank[:, :, _LO].min(axis=0)
    out[:, _HI] = per_rank[:, :, _HI].max(axis=0)
    has = per_rank[:, :, _N] > 0
    top = np.where(has, per_rank[:, :, _EXP], -np.inf).max(axis=0)
    out[:, _EXP] = top = np.where(np.isfinite(top), top, 0.0)
    acc = [np.zeros(per_rank.shape[1])] * 5
    for row, present in zip(per_rank, has, strict=True):
        f = np.where(present, np.ldexp(1.0, (row[:, _EXP] - top).astype(np.int64)), 0.0)
        part = (row[:, _N], row[:, _MEAN] * f, row[:, _M2] * f**2, row[:, _M3] * f**3,
                row[:, _M4] * f**4)
        acc = list(_combine(*acc, *part))
    out[:, _MEAN], out[:, _M2], out[:, _M3], out[:, _M4] = acc[1:]
    return out


def _mean_std(row: np.ndarray) -> tuple[float, float]:
    """Unscaled mean and population standard deviation of a merged row."""
    scale = math.ldexp(1.0, int(row[_EXP]))
    return row[_MEAN] * scale, math.sqrt(max(row[_M2] / row[_N], 0.0)) * scale


def _head(row: np.ndarray) -> dict:
    count = int(row[_COUNT])
    return {"numel": count, "count": count, "nan_count": int(row[_NAN]),
            "inf_count": int(row[_INF])}


def _description(row: np.ndarray, grid, totals: np.ndarray, qs: np.ndarray,
                 outside: int) -> Description:
    """A large tensor's ``Description`` from its merged row and reduced counts."""
    n, scale = float(row[_N]), math.ldexp(1.0, int(row[_EXP]))
    mean, m2, m3, m4 = (float(v) for v in (row[_MEAN], row[_M2] / n, row[_M3] / n, row[_M4] / n))
    moments = moment_columns(mean, m2, m3, m4)  # skew and kurtosis do not depend on the scale
    var = m2 * scale * scale  # inf where float64 cannot hold it, as in stats
    moments.update(mean=mean * scale, var=var, std=math.sqrt(m2) * scale)
    lo, hi = float(row[_LO]), float(row[_HI])
    counts = totals[: grid.bins]
    if int(counts.sum()) != int(n):
        msg = f"internal error: histogram holds {int(counts.sum())} of {int(n)} values"
        raise AssertionError(msg)
    stats = {
        **_head(row), **moments, "min": lo, "max": hi,
        "norm": scale * math.sqrt(max(float(row[_M2]) + n * mean * mean, 0.0)),
        "zeros": int(row[_ZEROS]), **percentile_columns(qs, lo, hi), "quantiles_exact": False,
        "outliers_3std": int(totals[grid.bins]), "outliers_6std": int(totals[grid.bins + 1]),
        "outliers_iqr": outside,
    }
    return Description(stats, grid.edges, counts.tolist())


def _binned(x: torch.Tensor, grid, mean: float, std: float, device) -> torch.Tensor:
    """``[counts..., beyond 3 std, beyond 6 std]`` of this rank's finite values, int64."""
    counts = torch.zeros(grid.bins, dtype=torch.int64, device=x.device)
    beyond = torch.zeros(2, dtype=torch.int64, device=x.device)
    for chunk in x.split(_CHUNK):
        c = chunk.to(torch.float64, copy=True)  # never modify the caller's tensor
        idx = torch.floor(c / grid.width).sub_(grid.first_index).long()  # exact: see grid.py
        counts += torch.bincount(idx, minlength=grid.bins)
        a = c.sub_(mean).abs_()
        beyond += torch.stack([torch.count_nonzero(a > 3 * std), torch.count_nonzero(a > 6 * std)])
    return torch.cat([counts, beyond]).to(device)


def _outside(x: torch.Tensor, lo: float, hi: float, device) -> torch.Tensor:
    """Values of ``x`` below ``lo`` or above ``hi``, counted exactly as ``stats`` counts them."""
    below, above = stats_outside(lo, hi, x)  # rounded toward x's dtype: no tie goes astray
    n = torch.count_nonzero(x < float(below)) + torch.count_nonzero(x > float(above))
    return n.reshape(1).to(device, torch.int64)


def _all_sum(parts: list[torch.Tensor], group, device) -> np.ndarray:
    """One ``all_reduce(SUM)`` of the parts as float64 (counts stay exact up to 2**53); none if empty."""
    if not parts:
        return np.zeros(0)
    packed = torch.cat([p.to(device, torch.float64) for p in parts])
    if packed.numel():
        dist.all_reduce(packed, dist.ReduceOp.SUM, group)
    return packed.cpu().numpy()


def _small_slots(flats: list[torch.Tensor], sizes: np.ndarray, rank: int, device) -> torch.Tensor:
    """A zero buffer for every small tensor's whole, with this rank's pieces in their slots.

    Args:
        flats: this rank's pieces (raw: NaN and Inf included).
        sizes: ranks × tensors piece sizes, from round 1.
        rank: this rank.

    Tensor ``k`` occupies ``sizes[:, k].sum()`` places, the ranks' pieces in rank
    order; summed over the ranks, every place holds its one rank's value (+ 0.0).
    """
    buf = torch.zeros(int(sizes.sum()), dtype=torch.float64, device=device)
    start = 0
    for k, x in enumerate(flats):
        mine = start + int(sizes[:rank, k].sum())
        if x.numel():
            buf[mine : mine + x.numel()] = x.to(device, torch.float64)
        start += int(sizes[:, k].sum())
    return buf
