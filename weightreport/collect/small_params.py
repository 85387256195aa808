"""The small parameters' update norms and trajectory values, from a snapshot's host block.

In one process a snapshot brings every small tensor (up to ``stats.SMALL`` elements) to
the host as one float64 block, parameters first (``stats.Batch``). The small
parameters' three squares (‖w − prev‖², ‖prev‖², ‖w − w₀‖²) and their trajectory
values are then one compiled pass over the front of that block (``kernels_segments.segment_squares``;
numpy's ten passes without numba), however many parameters there are. A compiled call per
parameter had cost about 5 µs each: on a model of 142 small tensors, most of a snapshot's
norms; numpy's passes took 0.33 ms, the one pass 0.09 ms.

The sums are in float64 over the exactly widened values (the large weights' kernels
sum float32 blocks; both are far inside the tests' tolerance of a float64 oracle). The
first snapshot gives ``[‖w‖², NaN, ‖w − w₀‖²]``, as ``SnapshotTaker._norms`` does
without previous weights; a missing initial value makes the last square NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from weightreport.stats import kernels, kernels_segments


class SmallParams:
    """The small parameters at the front of a snapshot's host block.

    Args:
        layout: (name, size) of every parameter whose piece is in the block's front, in
            the block's order (empty ones included: they hold no place but no row either).
        init: name → initial values (flat float32, any device); a name missing: unknown.
        trajectories: name → recorded flat indices.
    """

    def __init__(self, layout: Sequence[tuple[str, int]], init: Mapping[str, torch.Tensor],
                 trajectories: Mapping[str, Sequence[int]]) -> None:
        starts, at = [], 0
        self.names: list[str] = []
        for name, size in layout:
            if size:
                self.names.append(name)
                starts.append(at)
            at += size
        self.size = at
        """Elements at the block's front that are these parameters."""
        self.members = frozenset(self.names)
        self._starts = np.asarray(starts, np.int64)
        self._init = np.concatenate([
            init[name].detach().cpu().double().numpy().reshape(-1) if name in init else np.full(size, np.nan)
            for name, size in layout if size]) if self.names else np.empty(0)
        self._prev: np.ndarray | None = None
        recorded = [(name, start) for name, start in zip(self.names, starts, strict=True) if trajectories.get(name)]
        self._traj_names = [name for name, _ in recorded]
        self._traj_at = np.concatenate([start + np.asarray(trajectories[name], np.int64)
                                        for name, start in recorded]) if recorded else np.empty(0, np.int64)
        ends = np.cumsum([len(trajectories[name]) for name in self._traj_names]).tolist()
        self._traj_pieces = list(zip([0, *ends], ends, strict=False))  # each one's slice of the values

    def values(self, block: np.ndarray) -> dict[tuple[str, str], np.ndarray]:
        """{("norms", name): the three squares, ("trajectory", name): values} from this
        snapshot's block; the previous weights then become these."""
        if not self.names:
            return {}
        w = block[: self.size]
        first = self._prev is None
        if first:
            self._prev = np.empty_like(w)
        if kernels.AVAILABLE:  # one pass, a third of numpy's ten
            squares = np.empty((len(self.names), 3))
            kernels_segments.segment_squares(w, self._prev, self._init, self._starts, first, squares)
        else:
            squares = self._numpy_squares(w, first)
        out: dict[tuple[str, str], np.ndarray] = {
            ("norms", name): row for name, row in zip(self.names, squares, strict=True)}
        if self._traj_names:
            values = w[self._traj_at]  # views of it, not np.split: that cost 2 µs a parameter
            out.update((("trajectory", name), values[a:b])
                       for name, (a, b) in zip(self._traj_names, self._traj_pieces, strict=True))
        return out

    def _numpy_squares(self, w: np.ndarray, first: bool) -> np.ndarray:
        """``kernels_segments.segment_squares`` in numpy (without numba)."""
        sums = np.add.reduceat  # each parameter's segment (none is empty), from its start
        with np.errstate(over="ignore", invalid="ignore"):  # inf and NaN weights give inf and NaN squares
            d_init = sums(np.square(w - self._init), self._starts)
            if first:
                d_prev, prev = sums(np.square(w), self._starts), np.full(len(self.names), np.nan)
            else:
                d_prev, prev = sums(np.square(w - self._prev), self._starts), sums(np.square(self._prev), self._starts)
            np.copyto(self._prev, w)
        return np.stack([d_prev, prev, d_init], axis=1)
