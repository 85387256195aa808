"""Weight heatmaps: 2-D weights and conv kernels arranged in 2-D, pooled to ≤ 64 × 64.

Format version 1 keeps no raw weights. This section reads, in order of preference:
1. the ``heatmaps`` table (``step, tensor, rows, cols, values``: each matrix arranged by
   ``matrices.arrange_2d`` and mean-pooled by ``matrices.pool``, recorded by the
   collector at the first and the last snapshot);
2. otherwise (runs written before the table existed) ``init.pt``, the weights at step 0.
"""

from __future__ import annotations

from weightreport.report.analysis.model import Heatmap, Heatmaps
from weightreport.report.analysis.sampling import model_order
from weightreport.runfmt.matrices import MAX_CELLS, arrange_2d, pool
from weightreport.runfmt.schema import INIT_WEIGHTS, TABLES_DIR

MAX_HEATMAP_LAYERS = 64
HEATMAPS_TABLE = "heatmaps"


def _from_table(run) -> list[Heatmap]:
    df = run.table(HEATMAPS_TABLE)
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
