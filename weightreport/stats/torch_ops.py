"""Statistics of a large tensor with torch ops only, so an accelerator never waits for the host.

``TorchDescription(x, bins)`` queues everything ``describe`` reports for one
tensor: counts, range, the histogram grid, moments, histogram, percentiles and
outlier counts, as one float64 vector (``values``, laid out as ``VALUES``) on the
tensor's device. Nothing
is read back until the caller's single transfer of every tensor's vector; then
``finish`` turns the numbers into a ``Description``.

Three passes, each over chunks of ``CHUNK`` elements (widened to float64, which
bounds the scratch memory):
1. finite/NaN/zero counts, min, max and the sum of the finite values;
2. the sums of powers of deviations from that mean, and the histogram: the grid is
   ``grid.histogram_grid`` computed with tensor ops (``device_grid``), bin indices are
   exact float64 arithmetic, and counts are int64 ``scatter_add_`` (``bincount`` would
   read its length back from the device);
3. values beyond mean ± 3σ and 6σ and outside the IQR fences, compared in float64,
   which holds every float32, float16 and bfloat16 value exactly.

The grid loop widens the bin width a few times at most; where the host's loop would
need more (float64 values with a relative spread below about 2**-45), ``finish``
returns None and ``describe`` describes that tensor on the host: a second
transfer, for that tensor only.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from weightreport.stats.fields import (
    QUANTILE_FRACTIONS,
    Description,
    empty_description,
    from_shifted_sums,
    iqr_fences,
    positions,
)
from weightreport.stats.grid import EXACT_EDGE, EXACT_INT, Grid

CHUNK = 1 << 24
"""Elements widened to float64 at a time (128 MiB of scratch)."""

_GRID_TRIES = 6
"""Widenings of the bin width tried on the device; ``histogram_grid`` rarely needs two."""

_QF = torch.tensor(QUANTILE_FRACTIONS, dtype=torch.float64)

VALUES = ("numel", "nan_count", "n", "min", "max", "first", "width", "ok", "shift", "s1", "s2", "s3",
          "s4", "zeros", "outliers_3std", "outliers_6std", "outliers_iqr")
"""The fixed slots of a tensor's ``values``, followed by the quantiles, then the histogram's counts.
``ok``: whether the device's grid settled; ``shift``: the moments' centre (the mean of
``x / scale``); ``s1..s4``: the sums of the powers of ``x / scale - shift``."""
_AT = positions(VALUES)
_FIELDS = len(VALUES)
_NUMEL, _NAN, _N, _LO, _HI = (_AT[k] for k in ("numel", "nan_count", "n", "min", "max"))
_FIRST, _WIDTH, _OK, _SHIFT, _ZEROS = (_AT[k] for k in ("first", "width", "ok", "shift", "zeros"))
_SUMS = [_AT[k] for k in ("s1", "s2", "s3", "s4")]
_OUTLIERS = [_AT[k] for k in ("outliers_3std", "outliers_6std", "outliers_iqr")]


def _pow2(k: torch.Tensor) -> torch.Tensor:
    """``2.0 ** k`` for an integer-valued float64 tensor in [-1074, 1023], built from its bits.

    Exact by construction, subnormals included: no ``pow`` implementation to trust.
    """
    kk = k.long()
    normal = (kk + 1023).clamp(1, 2046) << 52
    subnormal = torch.ones_like(kk) << (kk + 1074).clamp(0, 51)
    return torch.where(kk >= -1022, normal, subnormal).view(torch.float64)


def _times_pow2(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``x * 2**k`` exactly, in two steps so that neither factor overflows (|k| ≤ 2100)."""
    half = torch.floor(k / 2)
    return x * _pow2(half) * _pow2(k - half)


def _exponent_at_least(x: torch.Tensor) -> torch.Tensor:
    """The exponent ``k`` of the smallest power of two ``>= x`` (float64; 0 for x = 0)."""
    mantissa, exponent = torch.frexp(x)
    exponent = exponent.double()
    return torch.where(mantissa == 0.5, exponent - 1, exponent)


def device_grid(lo: torch.Tensor, hi: torch.Tensor, bins: int):
    """``grid.histogram_grid(lo, hi, bins)`` with tensor ops: (first index, width exponent, ok).

    ``ok`` is false where the host's loop would widen the bins more than
    ``_GRID_TRIES`` times; the caller must not use the grid then.
    """
    span = torch.where(hi == lo, torch.clamp(lo.abs(), min=1.0) / bins, (hi - lo) / bins)
    k = _exponent_at_least(span)
    first_found, k_found = torch.zeros_like(lo), torch.zeros_like(lo)
    settled = torch.zeros_like(lo, dtype=torch.bool)
    for _ in range(_GRID_TRIES):
        width = _pow2(k)
        first = torch.floor(lo / width)
        first = torch.where(first * width > lo, first - 1, first)
        done = ((first + bins) * width > hi) & (first.abs() + bins < EXACT_EDGE) & ~settled
        first_found = torch.where(done, first, first_found)
        k_found = torch.where(done, k, k_found)
        settled = settled | done
        k = k + 1
    width = _pow2(k_found)
    used = torch.floor(hi / width) - first_found + 1
    spare = bins - used
    centre = (spare > 1) & (first_found.abs() + bins < EXACT_INT)
    first_found = torch.where(centre, first_found - torch.floor(spare / 2), first_found)
    return first_found, k_found, settled


def device_quantiles(counts: torch.Tensor, first: torch.Tensor, width: torch.Tensor,
                     n: torch.Tensor) -> torch.Tensor:
    """``compiled.quantiles_from_counts`` with tensor ops (``first``, ``width``, ``n``: 0-d tensors)."""
    bins = counts.numel()
    q = _QF.to(counts.device)
    cum = torch.cumsum(counts, 0).double()
    pos = q * (n.double() - 1)
    below, above = torch.floor(pos), torch.ceil(pos)

    def value_at(rank: torch.Tensor) -> torch.Tensor:
        b = torch.searchsorted(cum, rank, right=True).clamp(max=bins - 1)
        before = torch.where(b > 0, cum[(b - 1).clamp(min=0)], torch.zeros_like(rank))
        inside = ((rank - before + 0.5) / counts[b].double().clamp(min=1.0)).clamp(0.0, 1.0)
        return (first + b.double() + inside) * width

    lo_v, hi_v = value_at(below), value_at(above)
    return lo_v + (hi_v - lo_v) * (pos - below)


class TorchDescription:
    """One large tensor's statistics, queued on its device (see the module docstring).

    Args:
        x: a 1-D floating tensor (half types are widened chunk by chunk).
        bins: histogram bins.
    """

    def __init__(self, x: torch.Tensor, bins: int) -> None:
        self.bins = bins
        self.values = self._compute(x, bins)

    @staticmethod
    def _compute(x: torch.Tensor, bins: int) -> torch.Tensor:
        dev = x.device
        f64 = {"dtype": torch.float64, "device": dev}
        chunks = x.split(CHUNK)
        # Pass 1: counts, range and the sum of the finite values.
        n = torch.zeros((), dtype=torch.int64, device=dev)
        nan = torch.zeros_like(n)
        zeros = torch.zeros_like(n)
        lo, hi, total = (torch.tensor(math.inf, **f64), torch.tensor(-math.inf, **f64),
                         torch.zeros((), **f64))
        for c in chunks:
            c = c.double()
            finite = torch.isfinite(c)
            n += finite.sum()
            nan += torch.isnan(c).sum()
            zeros += (c == 0).sum()
            lo = torch.minimum(lo, torch.where(finite, c, math.inf).amin())
            hi = torch.maximum(hi, torch.where(finite, c, -math.inf).amax())
            total += torch.where(finite, c * 2.0**-512, 0.0).sum()  # cannot overflow near 1e308
        has = n > 0
        lo_safe, hi_safe = torch.where(has, lo, 0.0), torch.where(has, hi, 0.0)
        first, k, ok = device_grid(lo_safe, hi_safe, bins)
        width = _pow2(k)
        # Moments of x / scale, a power of two at the magnitude of the largest value.
        peak = torch.maximum(lo_safe.abs(), hi_safe.abs())
        e = torch.clamp(torch.frexp(peak)[1].double(), max=1023.0)  # 2**1024 overflows
        nd = torch.clamp(n, min=1).double()
        mean0 = _times_pow2(total, 512 - e) / nd  # the mean of x / 2**e
        sums = torch.zeros(4, **f64)
        counts = torch.zeros(bins + 1, dtype=torch.int64, device=dev)  # the last: non-finite
        for c in chunks:
            c = c.double()
            finite = torch.isfinite(c)
            d = torch.where(finite, _times_pow2(c, -e) - mean0, 0.0)
            d2 = d * d
            sums += torch.stack([d.sum(), d2.sum(), (d2 * d).sum(), (d2 * d2).sum()])
            idx = torch.floor(_times_pow2(c, -k)) - first
            idx = torch.where(finite, idx, float(bins)).clamp_(0, bins).long()
            counts.scatter_add_(0, idx, torch.ones_like(idx))
        delta = sums[0] / nd
        mean_s = mean0 + delta
        sigma_s = torch.sqrt(torch.clamp(sums[1] / nd - delta * delta, min=0.0))
        mean, sigma = _times_pow2(mean_s, e), _times_pow2(sigma_s, e)
        qs = device_quantiles(counts[:bins], first, width, n)
        qs = torch.minimum(torch.maximum(qs, lo_safe), hi_safe)
        bounds = torch.stack([mean - 3 * sigma, mean + 3 * sigma, mean - 6 * sigma, mean + 6 * sigma,
                              *iqr_fences(qs)])
        outside = torch.zeros(3, dtype=torch.int64, device=dev)
        for c in chunks:
            c = c.double()  # NaN compares false; ±Inf is excluded below
            finite = torch.isfinite(c)
            outside += torch.stack([
                (((c < bounds[2 * j]) | (c > bounds[2 * j + 1])) & finite).sum() for j in range(3)])
        slots = {"numel": torch.tensor(float(x.numel()), **f64), "nan_count": nan.double(),
                 "n": n.double(), "min": lo, "max": hi, "first": first, "width": width,
                 "ok": ok.double(), "shift": mean0, "zeros": zeros.double()}
        slots.update(zip(("s1", "s2", "s3", "s4"), sums, strict=True))
        slots.update(zip(("outliers_3std", "outliers_6std", "outliers_iqr"), outside.double(), strict=True))
        head = torch.stack([slots[k] for k in VALUES])
        return torch.cat([head, qs, counts[:bins].double()])

    def finish(self, values: np.ndarray) -> Description | None:
        """The ``Description`` from this tensor's transferred ``values``.

        None where the grid needed more widening than the device loop tries: the caller
        then describes the tensor on the host.
        """
        numel, nan, n = int(values[_NUMEL]), int(values[_NAN]), int(values[_N])
        head = (numel, nan, numel - nan - n)
        if n == 0:
            return empty_description(*head, self.bins)
        if not values[_OK]:
            return None
        lo, hi = float(values[_LO]), float(values[_HI])
        scale = math.ldexp(1.0, min(math.frexp(max(abs(lo), abs(hi)))[1], 1023))
        nq = _QF.numel()
        grid = Grid(first_index=float(values[_FIRST]), width=float(values[_WIDTH]), bins=self.bins)
        return from_shifted_sums(
            head, n, float(values[_SHIFT]), values[_SUMS].tolist(), scale, lo, hi,
            values[_FIELDS : _FIELDS + nq], grid.edges, values[_FIELDS + nq :].astype(np.int64).tolist(),
            int(values[_ZEROS]), values[_OUTLIERS].tolist())
