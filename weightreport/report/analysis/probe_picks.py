"""Which probe captures the activations section draws: a bounded number, in model order.

A deep network's probe holds a map for every convolution (MobileNetV3: 52 modules,
208 panels, most of them 1 × 1 maps whose colour bar reads "0"). The section draws:
- no map with fewer than ``MIN_CELLS`` cells (smaller than 2 × 2: one value says
  nothing as a picture; a 1-D convolution's one-row strip is kept);
- at most ``MAX_PROBE_MODULES`` modules, the share of each kind of capture (feature
  maps, attention maps, hidden states) equal so that one kind does not crowd out
  another (a kind with fewer modules than its share leaves the rest to the others),
  and within a kind evenly spaced over depth, first and last included;
- those in the model's definition order (the manifest's module order).
The section's note says what was left out and by which rule.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from weightreport.report.analysis.sampling import model_order

MAX_PROBE_MODULES = 12
"""Modules whose probe captures the activations section draws (each with up to four panels:
channels or heads), so the figure stays a dozen rows at most whatever the model's depth."""
MIN_CELLS = 4
"""A map with fewer cells than this (smaller than 2 × 2) is not drawn."""
KIND_WORDS = {"feature_map": "feature maps", "attention": "attention maps", "hidden_state": "hidden states"}
"""How the note names each kind of capture."""


def shares(counts: dict[str, int], cap: int) -> dict[str, int]:
    """Split ``cap`` evenly over the kinds in ``counts``; what a small kind does not use goes to the others."""
    out, left = {}, cap
    for i, (kind, n) in enumerate(sorted(counts.items(), key=lambda kv: (kv[1], kv[0]))):
        out[kind] = min(n, left // (len(counts) - i))
        left -= out[kind]
    return out


def spread(names: list[str], k: int) -> list[str]:
    """``k`` of ``names`` evenly spaced, the first and the last included (all when ``k`` covers them)."""
    if k >= len(names):
        return list(names)
    if k <= 0:
        return []
    return [names[i] for i in np.unique(np.linspace(0, len(names) - 1, k).round().astype(np.int64))]


def pick_probes(probes: pd.DataFrame, manifest: dict,
                cap: int = MAX_PROBE_MODULES) -> tuple[pd.DataFrame, str]:
    """The probe rows to draw, in model order, and a note on what was left out (``""`` when nothing).

    Args:
        probes: ``module, kind, index, rows, cols, values`` of one step.
        manifest: the run's run.json, for the model's module order.
        cap: the most modules drawn.
    """
    if probes.empty:
        return probes, ""
    small = probes["rows"] * probes["cols"] < MIN_CELLS
    tiny = sorted(set(probes.loc[small, "module"]) - set(probes.loc[~small, "module"]))
    probes = probes[~small]
    order = model_order(probes["module"], manifest)
    kinds = probes.drop_duplicates("module").set_index("module")["kind"]
    by_kind: dict[str, list[str]] = {}
    for name in order:
        by_kind.setdefault(kinds[name], []).append(name)
    quota = shares({k: len(v) for k, v in by_kind.items()}, cap)
    kept = {name for kind, names in by_kind.items() for name in spread(names, quota[kind])}
    rank = {name: i for i, name in enumerate(order)}
    chosen = probes[probes["module"].isin(kept)]
    chosen = chosen.assign(_rank=chosen["module"].map(rank)).sort_values(
        ["_rank", "kind", "index"], kind="stable").drop(columns="_rank")
    notes = []
    if len(kept) < len(order):
        counts = "; ".join(f"{KIND_WORDS.get(k, k)}: {len(set(v) & kept)} of {len(v)}"
                           for k, v in by_kind.items())
        notes.append(f"The probe figure shows {len(kept)} of the {len(order)} modules with maps ({counts}): "
                     f"at most {cap}, shared evenly between the kinds and evenly spaced over depth within "
                     f"each, first and last included; {len(order) - len(kept)} are left out.")
    if tiny:
        notes.append(f"{len(tiny)} module(s) whose maps are smaller than 2 × 2 (such as "
                     f"{model_order(tiny, manifest)[0]}) are left out too.")
    return chosen.reset_index(drop=True), " ".join(notes)
