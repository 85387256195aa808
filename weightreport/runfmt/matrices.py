"""Weights as small matrices for heatmaps: conv kernels tiled in 2-D, mean-pooled to a bound.

Pure numpy, shared by the collector (which records the ``heatmaps`` table) and the
report (which draws it).
"""

from __future__ import annotations

import numpy as np

MAX_CELLS = 64
"""Heatmaps are mean-pooled to at most this many rows and columns."""


def arrange_2d(weight: np.ndarray) -> np.ndarray | None:
    """A weight as a 2-D matrix: linear ``out × in``; conv ``(out·kh) × (in·kw)`` kernel tiles.

    Returns None for 1-D tensors. Other ranks fold trailing dimensions into columns.
    """
    w = np.asarray(weight, dtype=np.float32)
    if w.ndim < 2:
        return None
    if w.ndim == 4:
        o, i, kh, kw = w.shape
        return w.transpose(0, 2, 1, 3).reshape(o * kh, i * kw)
    return w.reshape(w.shape[0], -1)


def pool(matrix: np.ndarray, limit: int = MAX_CELLS) -> np.ndarray:
    """Mean-pool a 2-D matrix to at most ``limit`` × ``limit`` (uneven blocks at the edges)."""
    m = np.asarray(matrix, dtype=np.float64)
    for axis in (0, 1):
        n = m.shape[axis]
        if n > limit:
            bounds = np.linspace(0, n, limit + 1).round().astype(np.int64)
            sums = np.add.reduceat(m, bounds[:-1], axis=axis)
            sizes = np.diff(bounds).reshape((-1, 1) if axis == 0 else (1, -1))
            m = sums / sizes
    return m.astype(np.float32)


def heatmap_rows(step: int, params) -> list[dict]:
    """Rows of the ``heatmaps`` table: every parameter of two or more dimensions, pooled.

    Args:
        step: the step written into every row.
        params: (qualified name, parameter) pairs; a sharded DTensor is assembled whole
            first, which is a collective (call on every rank).
    """
    rows = []
    for name, p in params:
        if p.dim() < 2:
            continue
        t = p.detach()
        if hasattr(t, "full_tensor"):
            t = t.full_tensor()
        matrix = arrange_2d(t.float().cpu().numpy())
        if matrix is None:
            continue
        pooled = pool(matrix)
        rows.append({"step": step, "tensor": name, "rows": pooled.shape[0],
                     "cols": pooled.shape[1], "values": pooled.reshape(-1)})
    return rows
