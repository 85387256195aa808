"""Weight heatmaps: 2-D weights and conv kernels arranged in 2-D, pooled to ≤ 64 × 64.

Format version 1 keeps no raw weights. This section reads, in order of preference:
1. a ``heatmaps`` table (proposed: ``step, tensor, rows, cols, values list<float32>``,
   each matrix arranged by ``arrange_2d`` and mean-pooled by ``pool`` to at most
   ``MAX_CELLS`` × ``MAX_CELLS``, recorded at the first and the last snapshot);
2. otherwise ``init.pt`` (the weights at step 0), which gives the first snapshot only.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from weightreport.analysis.model import Heatmap, Heatmaps
from weightreport.analysis.sampling import model_order, read
from weightreport.schema import INIT_WEIGHTS, TABLES_DIR

MAX_CELLS = 64
MAX_HEATMAP_LAYERS = 64
HEATMAPS_TABLE = "heatmaps"
HEATMAPS_SCHEMA = pa.schema([("step", pa.int64()), ("tensor", pa.string()), ("rows", pa.int64()),
                             ("cols", pa.int64()), ("values", pa.list_(pa.float32()))])


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


def _from_table(run) -> list[Heatmap]:
    df = read(run, HEATMAPS_TABLE, schema=HEATMAPS_SCHEMA, steps=None)
    maps = []
    for row in df.itertuples(index=False):
        maps.append(Heatmap(str(row.tensor), int(row.step), int(row.rows), int(row.cols),
                            [float(v) for v in row.values]))
    return maps


def _from_init(run) -> list[Heatmap]:
    file = run.path / INIT_WEIGHTS
    if not file.is_file():
        return []
    try:
        import torch

        init = torch.load(file, map_location="cpu", weights_only=True)
    except Exception:  # a damaged init.pt only costs this section
        return []
    maps = []
    for name, tensor in sorted(init.items()):
        m = arrange_2d(tensor.float().numpy())
        if m is None:
            continue
        p = pool(m)
        maps.append(Heatmap(str(name), 0, p.shape[0], p.shape[1], p.ravel().tolist()))
    return maps


def heatmaps(run) -> Heatmaps:
    """The heatmaps section, from the ``heatmaps`` table or else from ``init.pt``."""
    title = "Weight heatmaps"
    source = "table"
    has_table = (run.path / TABLES_DIR / HEATMAPS_TABLE).is_dir()
    maps = _from_table(run) if has_table else []
    if not maps:
        maps, source = _from_init(run), "init"
    if not maps:
        return Heatmaps(key="heatmaps", title=title,
                        note="This run holds no 2-D weights to draw: run format 1 keeps no raw "
                             "weights, and there is no init.pt with 2-D parameters.")
    layers = model_order({m.tensor for m in maps}, run.manifest)[:MAX_HEATMAP_LAYERS]
    keep = set(layers)
    maps = sorted((m for m in maps if m.tensor in keep), key=lambda m: (layers.index(m.tensor), m.step))
    what = ("at the first and last snapshot" if source == "table"
            else "at step 0 only (from init.pt: this run format records no later raw weights)")
    return Heatmaps(key="heatmaps", title=title, maps=maps, layers=layers,
                    caption=f"2-D weights (out × in) and conv kernels tiled as (out·kh) × (in·kw), "
                            f"mean-pooled to at most {MAX_CELLS} × {MAX_CELLS} cells, {what}. "
                            f"Colour is centred on 0.")
