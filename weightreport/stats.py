"""Statistics and histograms of tensors, computed where the tensors live.

``describe(tensors, bins)`` is the whole job for one snapshot. Small tensors (up to
``SMALL`` elements: biases, norms, a small layer's weights) travel to the host in
one batched transfer, together with every large tensor's range, and are described
there in float64 with numpy, exactly. Large tensors are described on their own
device; their numbers come back in a second batched transfer. On the CPU the
"device" is the host, so scalars are read directly instead of being kept as
zero-dimensional tensors.

The maths for a large tensor ``x`` with ``n`` finite values:
- ``x`` is scaled by a power of two ``s`` (exact) so that powers cannot overflow,
  centred on its float32 mean ``c``, and the centred sums ``S1..S4`` are BLAS dot
  products; the host corrects for ``S1`` in float64.
- Histogram counts come from ``bincount`` on exact bin indices (see ``grid.py``), so
  they are int64, never float32 (which stops counting at 2**24).
- Percentiles are interpolated from the histogram's cumulative counts, within one
  bin of the exact value; small tensors get exact ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from weightreport.grid import Grid, histogram_grid
from weightreport.schema import QUANTILES

SMALL = 16384
"""Tensors up to this many elements are described exactly on the host."""

_QF = np.array([q / 100.0 for q in QUANTILES])


@dataclass(frozen=True)
class Description:
    """Everything ``describe`` knows about one tensor.

    Attributes:
        stats: the statistics columns of the ``stats`` table (see docs/format.md).
        edges: the histogram's ``bins + 1`` edges.
        counts: the histogram's ``bins`` int64 counts of finite values.
    """

    stats: dict
    edges: list[float]
    counts: list[int]


def flat(t: torch.Tensor) -> torch.Tensor:
    """A detached 1-D float view or copy of ``t`` (half types widened to float32)."""
    t = t.detach()
    if t.dtype not in (torch.float32, torch.float64):
        t = t.float()
    return t.reshape(-1)


def describe(
    tensors: Sequence[torch.Tensor], bins: int = 64, extras: Sequence[torch.Tensor] = ()
) -> tuple[list[Description], list[np.ndarray]]:
    """Statistics and a histogram for each tensor, with two batched host transfers.

    Args:
        tensors: tensors of any shape and floating dtype, on any devices.
        bins: histogram bins per tensor.
        extras: other tensors the caller needs on the host (norms, trajectory values,
            per-channel vectors); they ride along with the first transfer.

    Returns:
        One ``Description`` per tensor, in order, and each extra as a flat float64 array.
    """
    flats = [flat(t) for t in tensors]
    small = [i for i, x in enumerate(flats) if x.numel() <= SMALL]
    large = [i for i, x in enumerate(flats) if x.numel() > SMALL]
    ranges = [torch.stack(torch.aminmax(flats[i])).double() for i in large]
    extra_flats = [flat(e).double() for e in extras]
    host = _to_host(extra_flats + [flats[i].double() for i in small] + ranges)
    out: list[Description | None] = [None] * len(flats)
    extra_values = []
    pos = 0
    for e in extra_flats:
        extra_values.append(host[pos : pos + e.numel()])
        pos += e.numel()
    for i in small:
        size = flats[i].numel()
        out[i] = describe_array(host[pos : pos + size], bins)
        pos += size
    pending = []
    for i in large:
        lo, hi = float(host[pos]), float(host[pos + 1])
        pos += 2
        pending.append((i, _LargeTensor(flats[i], lo, hi, bins)))
    values = _to_host([p.values for _, p in pending if p.values is not None])
    pos = 0
    for i, p in pending:
        size = 0 if p.values is None else p.values.numel()
        out[i] = p.finish(values[pos : pos + size])
        pos += size
    return out, extra_values  # type: ignore[return-value]


def _to_host(parts: Sequence[torch.Tensor]) -> np.ndarray:
    """Concatenate 1-D float64 tensors and bring them to the host, one transfer per device."""
    if not parts:
        return np.empty(0)
    devices = {p.device for p in parts}
    if len(devices) == 1:
        return torch.cat(parts).cpu().numpy()
    return np.concatenate([p.cpu().numpy() for p in parts])  # model spread over devices


# --- small tensors: exact, on the host ---------------------------------------------------


def describe_array(x: np.ndarray, bins: int = 64) -> Description:
    """Exact statistics and histogram of a 1-D float64 array, in numpy.

    Args:
        x: the values (NaN and ±Inf allowed).
        bins: histogram bins.
    """
    with np.errstate(all="ignore"):  # squares beyond float64's range become inf, not a warning
        return _describe_array(x, bins)


def _describe_array(x: np.ndarray, bins: int) -> Description:
    finite = np.isfinite(x)
    nan_count = int(np.isnan(x).sum())
    f = x if finite.all() else x[finite]
    head = {"numel": x.size, "count": x.size, "nan_count": nan_count,
            "inf_count": int(x.size - nan_count - f.size)}
    if f.size == 0:
        return _empty(head, bins)
    lo, hi = float(f.min()), float(f.max())
    grid = histogram_grid(lo, hi, bins)
    idx = (np.floor(f / grid.width) - grid.first_index).astype(np.int64)
    counts = np.bincount(idx, minlength=bins)
    mean = float(f.mean())
    d = f - mean
    d2 = d * d
    m2 = float(d2.sum()) / f.size  # as numpy.var sums, so ties at k·std fall the same way
    # ufunc sums, not np.dot: BLAS threads would spin against torch's on the same cores
    m3, m4 = float((d2 * d).sum()) / f.size, float((d2 * d2).sum()) / f.size
    qs = np.percentile(f, _QF * 100.0)
    std = math.sqrt(m2)
    a = np.abs(d)
    iqr = qs[4] - qs[2]
    stats = {
        **head, **_moments(mean, m2, m3, m4), "min": lo, "max": hi,
        "norm": float(np.sqrt((f * f).sum())), "zeros": int(np.count_nonzero(f == 0)),
        **_percentiles(qs, lo, hi), "quantiles_exact": True,
        "outliers_3std": int(np.count_nonzero(a > 3 * std)),
        "outliers_6std": int(np.count_nonzero(a > 6 * std)),
        "outliers_iqr": int(np.count_nonzero((f < qs[2] - 1.5 * iqr) | (f > qs[4] + 1.5 * iqr))),
    }
    return Description(stats, grid.edges, counts.tolist())


def _moments(mean: float, m2: float, m3: float, m4: float) -> dict:
    """Mean, variance, std, skew and excess kurtosis from central moments (scipy's defaults)."""
    if m2 > 0.0:
        skew, kurt = m3 / m2**1.5, m4 / (m2 * m2) - 3.0
    else:
        skew = kurt = math.nan
    return {"mean": mean, "var": m2, "std": math.sqrt(m2), "skew": skew, "kurtosis": kurt}


def _percentiles(qs: Sequence[float], lo: float, hi: float) -> dict:
    return {f"p{q}": min(max(float(v), lo), hi) for q, v in zip(QUANTILES, qs, strict=True)}


def _empty(head: dict, bins: int) -> Description:
    """A description for a tensor with no finite values."""
    nan = math.nan
    stats = {
        **head, "mean": nan, "std": nan, "var": nan, "min": nan, "max": nan, "skew": nan,
        "kurtosis": nan, "norm": nan, "zeros": 0, **{f"p{q}": nan for q in QUANTILES},
        "quantiles_exact": True, "outliers_3std": 0, "outliers_6std": 0, "outliers_iqr": 0,
    }
    edges = [-0.5 + i / bins for i in range(bins + 1)]
    return Description(stats, edges, [0] * bins)


def quantiles_from_counts(counts: np.ndarray, grid: Grid, n: int) -> np.ndarray:
    """Percentiles interpolated from histogram counts, each within one bin of exact.

    The values of a bin are taken as spread evenly over it; rank positions are
    numpy's linear ones, ``q * (n - 1)``.
    """
    cum = np.cumsum(counts)
    pos = _QF * (n - 1)
    below, above = np.floor(pos), np.ceil(pos)

    def value_at(rank: np.ndarray) -> np.ndarray:
        b = np.minimum(np.searchsorted(cum, rank, side="right"), grid.bins - 1)
        before = np.where(b > 0, cum[np.maximum(b - 1, 0)], 0)
        inside = np.clip((rank - before + 0.5) / np.maximum(counts[b], 1), 0.0, 1.0)
        return (grid.first_index + b + inside) * grid.width

    lo_v, hi_v = value_at(below), value_at(above)
    return lo_v + (hi_v - lo_v) * (pos - below)


# --- large tensors: on their device -------------------------------------------------------


class _LargeTensor:
    """The device work for one large tensor, queued until the snapshot's transfer.

    On the CPU, scalars are read as they are computed (reading is free there); on an
    accelerator they stay zero-dimensional tensors until ``values`` is transferred.
    """

    def __init__(self, x: torch.Tensor, lo: float, hi: float, bins: int) -> None:
        self.numel = x.numel()
        self.bins = bins
        self.head = {"numel": self.numel, "count": self.numel, "nan_count": 0, "inf_count": 0}
        self.values: torch.Tensor | None = None
        self.exact: Description | None = None
        if not (math.isfinite(lo) and math.isfinite(hi)):
            # Rare: NaN or Inf present. Count them and compact the finite values.
            finite = x[torch.isfinite(x)]
            nan_count = int(torch.isnan(x).sum())
            self.head.update(nan_count=nan_count, inf_count=self.numel - nan_count - finite.numel())
            if finite.numel() == 0:
                self.exact = _empty(self.head, bins)
                return
            x = finite
            lo, hi = (float(v) for v in torch.aminmax(x))
        self.lo, self.hi = lo, hi
        self.grid = histogram_grid(lo, hi, bins)
        peak = max(abs(lo), abs(hi))
        self.scale = math.ldexp(1.0, math.frexp(peak)[1]) if peak > 0 else 1.0
        self.n = x.numel()
        self.values = self._compute(x)

    def _compute(self, x: torch.Tensor) -> torch.Tensor:
        on_cpu = x.device.type == "cpu"
        read = float if on_cpu else (lambda t: t)
        n, grid = self.n, self.grid
        if max(self.scale, grid.width) > 2.0**100 or min(self.scale, grid.width) < 2.0**-100:
            x = x.double()  # keep the power-of-two scalings exact far from 1
        ws = workspace(x)
        d = _div_pow2(x, self.scale, ws.get("d", x))
        shift = read(d.sum()) / n
        d.sub_(shift)
        d2 = torch.mul(d, d, out=ws.get("d2", x))
        s1, s2 = read(d.sum()), read(d2.sum())  # cascade sums: more accurate than a BLAS dot
        s3, s4 = read(torch.dot(d2, d)), read(torch.dot(d2, d2))
        delta = s1 / n
        if on_cpu:
            sigma = max(s2 / n - delta * delta, 0.0) ** 0.5
        else:
            sigma = torch.clamp(s2 / n - delta * delta, min=0.0).sqrt()
        a = torch.sub(d, delta, out=d2).abs_()
        out3 = ws.count(a, ">", 3.0 * sigma)
        out6 = ws.count(a, ">", 6.0 * sigma)
        u = _div_pow2(x, grid.width, d).floor_().sub_(grid.first_index)
        idx = ws.get("idx", x, torch.int32)
        idx.copy_(u)
        counts = torch.bincount(idx, minlength=grid.bins)
        # The fences use the percentiles as reported: clamped to [min, max].
        if on_cpu:
            qs = torch.from_numpy(quantiles_from_counts(counts.numpy(), grid, n)).clamp(self.lo, self.hi)
            fence_lo, fence_hi = float(qs[2] - 1.5 * (qs[4] - qs[2])), float(qs[4] + 1.5 * (qs[4] - qs[2]))
        else:
            qs = _device_quantiles(counts, grid, n).clamp(self.lo, self.hi)
            fence_lo, fence_hi = qs[2] - 1.5 * (qs[4] - qs[2]), qs[4] + 1.5 * (qs[4] - qs[2])
        outiqr = ws.count(x, ">", fence_hi) + ws.count(x, "<", fence_lo)
        zeros = ws.count(x, "==", 0.0)
        scalars = [shift, s1, s2, s3, s4, zeros, out3, out6, outiqr]
        head = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=x.device)
                            for v in scalars])
        return torch.cat([head, qs.to(x.device, torch.float64), counts.double()])

    def finish(self, values: np.ndarray) -> Description:
        """Turn this tensor's transferred numbers into a ``Description`` (float64)."""
        if self.exact is not None:
            return self.exact
        nq = len(QUANTILES)
        shift, s1, s2, s3, s4, zeros, out3, out6, outiqr = values[:9].tolist()
        qs = values[9 : 9 + nq]
        counts = values[9 + nq :].astype(np.int64)
        n = self.n
        delta = s1 / n
        m2 = max(s2 / n - delta * delta, 0.0)
        m3 = s3 / n - 3 * delta * s2 / n + 2 * delta**3
        m4 = s4 / n - 4 * delta * s3 / n + 6 * delta**2 * s2 / n - 3 * delta**4
        scale = self.scale
        moments = _moments((shift + delta) * scale, m2 * scale * scale, m3, m4)  # inf, not OverflowError
        if m2 > 0.0:  # the standardised moments come from the scaled sums directly
            moments["skew"], moments["kurtosis"] = m3 / m2**1.5, m4 / (m2 * m2) - 3.0
        norm = scale * math.sqrt(max(s2 + 2 * shift * s1 + n * shift * shift, 0.0))
        stats = {
            **self.head, **moments, "min": self.lo, "max": self.hi, "norm": norm,
            "zeros": int(zeros), **_percentiles(qs, self.lo, self.hi),
            "quantiles_exact": False, "outliers_3std": int(out3),
            "outliers_6std": int(out6), "outliers_iqr": int(outiqr),
        }
        if int(counts.sum()) != n:
            msg = f"internal error: histogram holds {int(counts.sum())} of {n} values"
            raise AssertionError(msg)
        return Description(stats, self.grid.edges, counts.tolist())


def _div_pow2(x: torch.Tensor, p: float, out: torch.Tensor) -> torch.Tensor:
    """``x / p`` for a power of two ``p``, exactly, also where ``1 / p`` overflows (p < 2**-1024)."""
    inv = 1.0 / p
    if math.isfinite(inv):
        return torch.mul(x, inv, out=out)
    return torch.mul(x, 2.0**600, out=out).mul_(1.0 / (p * 2.0**600))


class _Workspace:
    """Scratch buffers kept between snapshots, so large temporaries are not re-faulted.

    Fresh multi-megabyte allocations cost a page fault per 4 KiB on first touch, which
    on the CPU outweighs the arithmetic itself.
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple, torch.Tensor] = {}

    def get(self, name: str, like: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        """A 1-D buffer with ``like``'s size and device, and ``dtype`` (default ``like``'s)."""
        dtype = dtype or like.dtype
        key = (name, like.device, dtype)
        buf = self._buffers.get(key)
        if buf is None or buf.numel() < like.numel():
            buf = torch.empty(like.numel(), dtype=dtype, device=like.device)
            self._buffers[key] = buf
        return buf[: like.numel()]

    def count(self, t: torch.Tensor, op: str, threshold):
        """Elements of ``t`` that compare true against ``threshold``.

        numpy on the CPU (several times faster there than torch's boolean kernels),
        torch on an accelerator (a device scalar, no synchronisation).
        """
        if t.device.type == "cpu":
            mask = self.get("mask", t, torch.bool).numpy()
            _NP_OPS[op](t.numpy(), threshold, out=mask)
            return int(np.count_nonzero(mask))
        return torch.count_nonzero(_TORCH_OPS[op](t, threshold))


_NP_OPS = {">": np.greater, "<": np.less, "==": np.equal}
_TORCH_OPS = {">": torch.gt, "<": torch.lt, "==": torch.eq}
_WORKSPACES: dict[torch.device, _Workspace] = {}


def workspace(x: torch.Tensor) -> _Workspace:
    """The scratch buffers of ``x``'s device."""
    return _WORKSPACES.setdefault(x.device, _Workspace())


def _device_quantiles(counts: torch.Tensor, grid: Grid, n: int) -> torch.Tensor:
    """``quantiles_from_counts`` with torch ops, so an accelerator need not synchronise."""
    dev = counts.device
    q = torch.from_numpy(_QF).to(dev)
    cum = torch.cumsum(counts, 0).double()
    pos = q * (n - 1)
    below, above = torch.floor(pos), torch.ceil(pos)

    def value_at(rank: torch.Tensor) -> torch.Tensor:
        b = torch.searchsorted(cum, rank, right=True).clamp(max=grid.bins - 1)
        before = torch.where(b > 0, cum[(b - 1).clamp(min=0)], torch.zeros_like(rank))
        inside = ((rank - before + 0.5) / counts[b].double().clamp(min=1.0)).clamp(0.0, 1.0)
        return (grid.first_index + b.double() + inside) * grid.width

    lo_v, hi_v = value_at(below), value_at(above)
    return lo_v + (hi_v - lo_v) * (pos - below)
