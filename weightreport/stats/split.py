"""Statistics of tensors split across ranks, with one ``all_gather`` per snapshot.

Under FSDP2 a parameter is a DTensor whose rank-local shard is one piece of the
whole; under DDP an activation is one rank's share of the global batch.
``SplitStats.exchange`` describes such tensors as wholes, exactly as
``describe`` describes one tensor, at the cost of a single collective per call:

- Each rank sends, per split tensor, a row laid out as ``PIECE`` (whose fields say
  how they merge): its piece's element/NaN/Inf/finite/zero counts, min, max and
  central sums ``M2..M4`` about the piece's own mean (scaled by a power of two), and
  the piece's histogram on its own exact grid
  (``grid.histogram_grid`` of the piece's range). Every rank merges the moments in
  rank order with the pairwise formulas of Chan and Pébay, free of the cancellation
  that raw power sums suffer. The global grid's width is a power of two at least
  each piece's width and both are aligned to their widths, so every local bin lies
  inside one global bin: the summed counts equal a histogram of the whole.
- What needs the merged numbers (the values beyond 3 and 6 standard deviations from
  the global mean, and outside the IQR fences of the global histogram) is counted on
  each rank right after the exchange and rides on the *next* call's collective, as do
  the raw pieces of small tensors (up to ``describe.SMALL`` elements in all), which rank 0
  describes exactly with ``exact.describe_arrays``. So a call returns the
  descriptions of the call before it; ``finish`` sends what is still owed (one more
  collective) and returns the last call's.
- The caller's own per-rank vectors (norms, counts, per-channel maxima) ride along
  and come back summed or maxed at once.

Replicated tensors (``sharded`` false) are described by rank 0 alone with
``describe``. Counts equal the single-process ones exactly and percentiles of
large tensors are the same histogram interpolation; moments are float64 throughout
(chunks of ``_CHUNK`` elements), closer to exact than ``describe``'s float32
sums. Descriptions come back on rank 0 only, the reduced vectors on every rank.
Where a piece's grid would not nest in the global one (its range within 2**52
widths of a huge offset), that tensor is binned on the global grid with one extra
``all_reduce``: exact, at a second collective in a case no real tensor reaches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
import torch
import torch.distributed as dist

from weightreport.stats.batch import SMALL, _to_host, describe, flat
from weightreport.stats.compiled import _outside, quantiles_from_counts
from weightreport.stats.exact import describe_arrays
from weightreport.stats.fields import (
    LOCAL,
    MAX,
    MIN,
    MOMENTS,
    SUM,
    Description,
    Field,
    Moments,
    empty_description,
    iqr_fences,
    norm_squared,
    positions,
    summary,
)
from weightreport.stats.grid import Grid, histogram_grid

_CHUNK = 1 << 22
"""Elements widened to float64 at a time, which bounds the scratch memory."""

PIECE = (
    Field("numel", float, SUM, 0.0),
    Field("nan_count", float, SUM, 0.0),
    Field("inf_count", float, SUM, 0.0),
    Field("n", float, SUM, 0.0),  # finite values
    Field("min", float, MIN, math.inf),
    Field("max", float, MAX, -math.inf),
    Field("exponent", float, MOMENTS, 0.0),  # of the moments' power-of-two scale
    Field("mean", float, MOMENTS, 0.0),  # in units of the scale
    Field("m2", float, MOMENTS, 0.0),  # central sums, in units of the scale's powers
    Field("m3", float, MOMENTS, 0.0),
    Field("m4", float, MOMENTS, 0.0),
    Field("zeros", float, SUM, 0.0),
    Field("first", float, LOCAL, 0.0),  # the piece's grid
    Field("width", float, LOCAL, 0.0),
)
"""The per-tensor row each rank sends (``empty``: for a piece without finite values),
followed by the histogram's counts on the piece's grid."""
_FIELDS = len(PIECE)
_AT = positions(PIECE)
_COUNT, _NAN, _INF, _N, _LO, _HI = (_AT[k] for k in ("numel", "nan_count", "inf_count", "n", "min", "max"))
_EXP, _MEAN, _M2, _M3, _M4 = (_AT[k] for k in ("exponent", "mean", "m2", "m3", "m4"))
_ZEROS, _FIRST, _WIDTH = _AT["zeros"], _AT["first"], _AT["width"]
_SUMMED = [_AT[f.name] for f in PIECE if f.merge == SUM]
_EMPTY_ROW = [f.empty for f in PIECE]
_MEASURED = [_AT[k] for k in ("mean", "m2", "m3", "m4", "zeros")]  # ``_piece_moments``' order
if _FIRST + 1 != _WIDTH or _WIDTH + 1 != _FIELDS:
    msg = "split.PIECE must end with the piece's grid (first, width): the counts follow it"
    raise AssertionError(msg)

_OWED = 3
"""Counts each large tensor owes to the next exchange: beyond 3σ, beyond 6σ, outside the IQR fences."""


@dataclass
class _Pending:
    """A call's results that wait for the counts the next exchange brings."""

    context: object
    out: list  # one Description per tensor on rank 0 (the replicated ones done), else Nones
    split: list[int]  # positions in ``out`` of the split tensors
    merged: np.ndarray  # one merged row per split tensor
    sizes: np.ndarray  # ranks × split tensors: piece sizes, NaN and Inf included
    small: list[int]  # indices into ``split`` described whole from their pieces
    widths: list[int]  # per small tensor: the largest piece, the space each rank sends
    large: list[int] = field(default_factory=list)
    grids: list[Grid] = field(default_factory=list)
    totals: list[np.ndarray] = field(default_factory=list)
    quantiles: list[np.ndarray] = field(default_factory=list)
    owed: torch.Tensor | None = None  # this rank's part of the next exchange


class SplitStats:
    """Describes tensors split over a process group, one collective per ``exchange``.

    Call ``exchange`` and ``finish`` on every rank, with the same number and order of
    tensors, the same ``sharded`` flags and the same shapes of ``sums`` and ``maxes``.

    Args:
        bins: histogram bins per tensor.
        group: the process group (default: the world).
    """

    def __init__(self, bins: int = 64, group=None) -> None:
        self.bins = bins
        self.group = group
        self._pending: _Pending | None = None

    def exchange(self, pieces: Sequence[torch.Tensor], sharded: Sequence[bool],
                 sums: Sequence[torch.Tensor] = (), maxes: Sequence[torch.Tensor] = (),
                 context: object = None):
        """Send this call's summaries with what the previous call still owed.

        Args:
            pieces: this rank's piece of each tensor (any shape and floating dtype; may
                be empty).
            sharded: per tensor, whether the whole is the union of every rank's piece.
                When false the tensor is replicated and only rank 0's piece counts.
            sums: per-rank tensors to add up over the ranks.
            maxes: per-rank tensors to reduce by maximum.
            context: anything; it comes back with this call's descriptions.

        Returns:
            ``(done, summed, maxed)``: ``done`` is the previous call's ``(context,
            descriptions)`` (descriptions None on ranks other than 0), or None on the
            first call; ``summed`` and ``maxed`` are this call's reduced vectors as flat
            float64 arrays on every rank.
        """
        if len(pieces) != len(sharded):
            msg = f"got {len(pieces)} pieces but {len(sharded)} sharded flags; pass one flag per piece"
            raise ValueError(msg)
        rank, world = dist.get_rank(self.group), dist.get_world_size(self.group)
        out: list = [None] * len(pieces)
        replicated = [i for i, s in enumerate(sharded) if not s]
        if rank == 0 and replicated:
            for i, d in zip(replicated, describe([pieces[i] for i in replicated], self.bins)[0],
                            strict=True):
                out[i] = d
        split = [i for i, s in enumerate(sharded) if s]
        flats = [flat(pieces[i]) for i in split]
        device = comm_device(self.group, [*flats, *sums, *maxes])
        owed = self._owed(device)
        finite, rows = _local_rows(flats, self.bins)
        extras = [t.detach().reshape(-1).to(device, torch.float64) for t in [*sums, *maxes]]
        packed = torch.cat([owed, *(r.to(device) for r in rows), *extras,
                            torch.zeros(0, dtype=torch.float64, device=device)])
        everything = self._gather(packed)  # the one collective
        done = self._settle(everything[:, : owed.numel()], rank)
        everything = everything[:, owed.numel():]
        width = len(flats) * (_FIELDS + self.bins)
        per_rank = everything[:, :width].reshape(world, len(flats), _FIELDS + self.bins)
        summed, maxed = _split_extras(everything[:, width:], sums, maxes)
        self._pending = self._start(context, out, split, finite, per_rank, device)
        return done, summed, maxed

    def finish(self):
        """Send what the last ``exchange`` still owes: its ``(context, descriptions)``, or None.

        One collective where split tensors are owed counts or values, none otherwise.
        """
        if self._pending is None:
            return None
        return self._settle(self._gather(self._pending.owed), dist.get_rank(self.group))

    def abandon(self):
        """The last exchange's ``(context, descriptions)`` without its split tensors (None there).

        No collective: for a run that failed, where other ranks may never call again.
        """
        pending, self._pending = self._pending, None
        if pending is None:
            return None
        return pending.context, (pending.out if dist.get_rank(self.group) == 0 else None)

    # --- internals --------------------------------------------------------------------

    def _gather(self, packed: torch.Tensor) -> np.ndarray:
        """Every rank's ``packed`` (the same length on each) as ranks × values; no collective if empty."""
        world = dist.get_world_size(self.group)
        if not packed.numel():
            return np.zeros((world, 0))
        gathered = [torch.empty_like(packed) for _ in range(world)]
        dist.all_gather(gathered, packed, self.group)
        return _to_host(gathered).reshape(world, -1)

    def _owed(self, device) -> torch.Tensor:
        if self._pending is None:
            return torch.zeros(0, dtype=torch.float64, device=device)
        return self._pending.owed.to(device)

    def _start(self, context, out, split, finite, per_rank, device) -> _Pending:
        """Merge this call's rows; count what the next exchange must carry."""
        bins = self.bins
        merged = _merge(per_rank[:, :, :_FIELDS])
        sizes = per_rank[:, :, _COUNT].astype(np.int64)
        count, n = merged[:, _COUNT], merged[:, _N]
        small = [k for k in range(len(split)) if count[k] <= SMALL]
        pending = _Pending(context, out, split, merged, sizes, small,
                           [int(sizes[:, k].max()) for k in small])
        pending.large = [k for k in range(len(split)) if count[k] > SMALL and n[k] > 0]
        pending.grids = [histogram_grid(merged[k, _LO], merged[k, _HI], bins) for k in pending.large]
        pending.totals = [_nest(per_rank[:, k, _FIRST:], grid)
                          for k, grid in zip(pending.large, pending.grids, strict=True)]
        self._bin_unnested(pending, finite, device)
        parts = []
        for k, width in zip(small, pending.widths, strict=True):
            piece = torch.zeros(width, dtype=torch.float64, device=device)
            piece[: finite[k][1].numel()] = finite[k][1].to(device, torch.float64)
            parts.append(piece)
        for k, grid, totals in zip(pending.large, pending.grids, pending.totals, strict=True):
            q = quantiles_from_counts(totals, grid, int(n[k]))
            q = np.clip(q, merged[k, _LO], merged[k, _HI])  # as reported, fences too
            pending.quantiles.append(q)
            parts.append(_count_owed(finite[k][0], *_mean_std(merged[k]), *iqr_fences(q)).to(device))
        pending.owed = torch.cat([*parts, torch.zeros(0, dtype=torch.float64, device=device)])
        return pending

    def _bin_unnested(self, pending: _Pending, finite, device) -> None:
        """Histograms on the global grid, with one more collective, where a piece's grid did not nest."""
        missing = [j for j, t in enumerate(pending.totals) if t is None]
        if not missing:
            return
        parts = [_binned(finite[pending.large[j]][0], pending.grids[j]).to(device, torch.float64)
                 for j in missing]
        packed = torch.cat(parts)
        dist.all_reduce(packed, dist.ReduceOp.SUM, self.group)
        for j, counts in zip(missing, packed.cpu().numpy().reshape(len(missing), -1), strict=True):
            pending.totals[j] = counts

    def _settle(self, owed: np.ndarray, rank: int):
        """The pending call's ``(context, descriptions)``, from every rank's owed part (ranks × values)."""
        pending, self._pending = self._pending, None
        if pending is None:
            return None
        if rank != 0:
            return pending.context, None
        out, split, merged, bins = pending.out, pending.split, pending.merged, self.bins
        pos, blocks, wholes = 0, [], []
        for k, width in zip(pending.small, pending.widths, strict=True):
            sizes = pending.sizes[:, k]
            blocks.extend(owed[r, pos : pos + sizes[r]] for r in range(owed.shape[0]))
            wholes.append(int(sizes.sum()))
            pos += width
        block = np.concatenate([*blocks, np.zeros(0)])
        for k, d in zip(pending.small, describe_arrays(block, wholes, bins), strict=True):
            out[split[k]] = d
        counts = owed[:, pos:].sum(axis=0).reshape(len(pending.large), _OWED).astype(np.int64)
        for j, k in enumerate(pending.large):
            out[split[k]] = _description(merged[k], pending.grids[j], pending.totals[j],
                                         pending.quantiles[j], counts[j])
        for k, i in enumerate(split):
            if out[i] is None:  # large, and no finite value
                out[i] = empty_description(*_head(merged[k]), bins)
        return pending.context, out


def comm_device(group, tensors: Sequence[torch.Tensor]) -> torch.device:
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


def _split_extras(per_rank: np.ndarray, sums, maxes) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The caller's vectors (ranks × values): summed and maxed over the ranks."""
    sizes = [t.numel() for t in [*sums, *maxes]]
    cuts = np.cumsum([0, *sizes])
    parts = [per_rank[:, a:b] for a, b in pairwise(cuts)]
    return ([p.sum(axis=0) for p in parts[: len(sums)]],
            [p.max(axis=0) for p in parts[len(sums):]])


def _local_rows(flats: list[torch.Tensor], bins: int):
    """Each piece's (finite values, raw values), and the row it sends (``_FIELDS`` + ``bins``)."""
    ranges = iter(_to_host([torch.stack(torch.aminmax(x)).double() for x in flats if x.numel()]))
    finite, rows = [], []
    for raw in flats:
        x = raw
        row = list(_EMPTY_ROW)
        row[_COUNT] = float(x.numel())
        lo, hi = (float(next(ranges)), float(next(ranges))) if x.numel() else (0.0, 0.0)
        if not (math.isfinite(lo) and math.isfinite(hi)):  # rare: NaN or Inf present
            nan = int(torch.isnan(x).sum())
            x = x[torch.isfinite(x)]
            row[_NAN], row[_INF] = float(nan), float(raw.numel() - nan - x.numel())
            lo, hi = (float(v) for v in torch.aminmax(x)) if x.numel() else (0.0, 0.0)
        finite.append((x, raw))
        if not x.numel():
            rows.append(torch.tensor([*row, *[0.0] * bins], dtype=torch.float64))
            continue
        peak = max(abs(lo), abs(hi))
        exponent = min(math.frexp(peak)[1], 1023) if peak > 0 else 0  # 2**1024 overflows
        grid = histogram_grid(lo, hi, bins)
        row[_N], row[_LO], row[_HI], row[_EXP] = x.numel(), lo, hi, exponent
        row[_FIRST], row[_WIDTH] = grid.first_index, grid.width
        fixed = torch.tensor(row, dtype=torch.float64).to(x.device)
        fixed[_MEASURED] = _piece_moments(x, math.ldexp(1.0, exponent))
        rows.append(torch.cat([fixed, _binned(x, grid).double()]))
    return finite, rows


def _piece_moments(x: torch.Tensor, scale: float) -> torch.Tensor:
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
        acc = list(combine(*acc, *part))
        zeros = zeros + torch.count_nonzero(chunk == 0)
    return torch.stack([*acc[1:], zeros.double()])


def combine(na, ma, m2a, m3a, m4a, nb, mb, m2b, m3b, m4b):
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
    """The rows of all ranks (ranks × tensors × ``_FIELDS``) → one row per tensor.

    Counts are summed, min and max reduced. Each rank's moments are brought to the
    largest power-of-two scale among the ranks (so nothing overflows) and merged in
    rank order; the merged ``_MEAN.._M4`` stay at that scale, whose exponent is ``_EXP``.
    """
    out = np.zeros(per_rank.shape[1:])
    out[:, _SUMMED] = per_rank[:, :, _SUMMED].sum(axis=0)  # counts: exact in any order
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
        acc = list(combine(*acc, *part))
    out[:, _MEAN], out[:, _M2], out[:, _M3], out[:, _M4] = acc[1:]
    return out


def _nest(placed: np.ndarray, grid: Grid) -> np.ndarray | None:
    """The ranks' piece histograms (ranks × [first, width, counts...]) summed on ``grid``.

    A piece's grid has a power-of-two width no wider than the global one and starts at
    a multiple of it, so piece bin ``b`` lies inside global bin
    ``floor((first + b) * width / grid.width) - grid.first_index``, computed exactly.
    None where some piece's grid does not nest (see the module docstring).
    """
    total = np.zeros(grid.bins, dtype=np.int64)
    for first, width, *counts in placed:
        counts = np.asarray(counts, dtype=np.int64)
        used = np.flatnonzero(counts)
        if not used.size:
            continue
        if width > grid.width:
            return None
        target = np.floor((first + used) * (width / grid.width)) - grid.first_index
        if target.min() < 0 or target.max() >= grid.bins:
            return None
        np.add.at(total, target.astype(np.int64), counts[used])
    return total


def _mean_std(row: np.ndarray) -> tuple[float, float]:
    """Unscaled mean and population standard deviation of a merged row."""
    scale = math.ldexp(1.0, int(row[_EXP]))
    return row[_MEAN] * scale, math.sqrt(max(row[_M2] / row[_N], 0.0)) * scale


def _head(row: np.ndarray) -> tuple[int, int, int]:
    """numel, nan_count and inf_count of a merged row."""
    return int(row[_COUNT]), int(row[_NAN]), int(row[_INF])


def _description(row: np.ndarray, grid: Grid, counts: np.ndarray, qs: np.ndarray,
                 owed: np.ndarray) -> Description:
    """A large tensor's ``Description`` from its merged row, summed histogram and owed counts."""
    n, scale = float(row[_N]), math.ldexp(1.0, int(row[_EXP]))
    mean, m2, m3, m4 = (float(v) for v in (row[_MEAN], row[_M2] / n, row[_M3] / n, row[_M4] / n))
    if int(counts.sum()) != int(n):
        msg = f"internal error: histogram holds {int(counts.sum())} of {int(n)} values"
        raise AssertionError(msg)
    moments = Moments(n, mean, m2, m3, m4, norm_squared(n, mean, 0.0, float(row[_M2])), scale)
    stats = summary(*_head(row), moments, float(row[_LO]), float(row[_HI]), row[_ZEROS], qs, False,
                    owed, root_first=True)
    return Description(stats, grid.edges, [int(c) for c in counts])


def _binned(x: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Histogram counts of the finite values ``x`` on ``grid``, int64 on x's device."""
    counts = torch.zeros(grid.bins, dtype=torch.int64, device=x.device)
    for chunk in x.split(_CHUNK):
        c = chunk.to(torch.float64, copy=True)
        idx = torch.floor(c.div_(grid.width)).sub_(grid.first_index).long()  # exact: see grid.py
        counts += torch.bincount(idx, minlength=grid.bins)
    return counts


def _count_owed(x: torch.Tensor, mean: float, std: float, below: float, above: float) -> torch.Tensor:
    """``[beyond 3 std, beyond 6 std, outside the fences]`` of the finite values ``x``, float64."""
    below, above = (float(v) for v in _outside(below, above, x))  # rounded toward x's dtype
    counts = torch.zeros(3, dtype=torch.int64, device=x.device)
    for chunk in x.split(_CHUNK):
        a = chunk.to(torch.float64, copy=True).sub_(mean).abs_()
        counts += torch.stack([torch.count_nonzero(a > 3 * std), torch.count_nonzero(a > 6 * std),
                               torch.count_nonzero(chunk < below) + torch.count_nonzero(chunk > above)])
    return counts.double()
