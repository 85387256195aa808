"""Histogram grids whose binning is exact arithmetic.

A grid's bin width is a power of two and its first edge is a whole multiple of
the width. Then ``floor(x / width) - first_index`` is computed without rounding
in float32 or float64 (dividing by a power of two only moves the exponent), so
every value lands in the bin that ``numpy.histogram(x, edges)`` would give it,
and CPU and CUDA agree to the last count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

EXACT_INT = 2**24  # float32 holds every integer below this exactly
EXACT_EDGE = 2**52  # float64 holds every integer below this exactly


@dataclass(frozen=True)
class Grid:
    """A histogram grid: ``bins`` bins of ``width`` starting at ``first_index * width``.

    Attributes:
        first_index: index of the first edge on the infinite grid of multiples of width.
        width: a power of two.
        bins: number of bins.
    """

    first_index: float
    width: float
    bins: int

    @cached_property
    def edges(self) -> list[float]:
        """The ``bins + 1`` edges, each exactly ``(first_index + i) * width``."""
        return ((self.first_index + np.arange(self.bins + 1)) * self.width).tolist()


def _pow2_at_least(x: float) -> float:
    """Smallest power of two that is >= x (x > 0)."""
    mantissa, exponent = math.frexp(x)  # x = mantissa * 2**exponent, 0.5 <= mantissa < 1
    return math.ldexp(1.0, exponent - 1) if mantissa == 0.5 else math.ldexp(1.0, exponent)


def histogram_grid(lo: float, hi: float, bins: int) -> Grid:
    """The exact grid of ``bins`` bins that covers ``[lo, hi]``, centred on the data.

    Args:
        lo: smallest finite value.
        hi: largest finite value (>= lo).
        bins: number of bins (>= 2).

    Returns:
        A grid whose last edge is strictly above ``hi``, so every value in
        ``[lo, hi]`` falls in one of the bins.
    """
    if hi == lo:
        # A constant tensor: a grid about as wide as the value itself (at least 1), as
        # numpy's histogram widens an empty range.
        width = _pow2_at_least(max(abs(lo), 1.0) / bins)
    else:
        width = _pow2_at_least((hi - lo) / bins)
    while True:
        first = math.floor(lo / width)
        if first * width > lo:  # lo / width underflowed to -0.0 (a tiny negative lo, a huge width)
            first -= 1
        # Edges are (first + i) * width in float64: keep first + bins an exact integer.
        if (first + bins) * width > hi and abs(first) + bins < EXACT_EDGE:
            break
        width *= 2.0
    used = math.floor(hi / width) - first + 1
    spare = bins - used
    if spare > 1 and abs(first) + bins < EXACT_INT:
        first -= spare // 2  # centre the data; only where the shifted index stays exact
    return Grid(first_index=float(first), width=width, bins=bins)
