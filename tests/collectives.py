"""Counting the torch.distributed collectives a piece of code calls (for the distributed tests)."""

from __future__ import annotations

import torch.distributed as dist

COLLECTIVES = ("all_gather", "all_reduce", "gather", "broadcast", "all_gather_into_tensor",
               "reduce", "reduce_scatter_tensor", "broadcast_object_list", "all_gather_object",
               "barrier")


def count_collectives(fn):
    """Run ``fn`` and return its result and the names of the collectives it called, in order."""
    calls, originals = [], {n: getattr(dist, n) for n in COLLECTIVES}

    def counting(name):
        def call(*args, **kwargs):
            calls.append(name)
            return originals[name](*args, **kwargs)
        return call

    for n in COLLECTIVES:
        setattr(dist, n, counting(n))
    try:
        return fn(), calls
    finally:
        for n, f in originals.items():
            setattr(dist, n, f)
