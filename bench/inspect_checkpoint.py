"""Benchmark: ``weightreport inspect`` on a synthetic ~30M-parameter transformer state dict.

    python bench/inspect_checkpoint.py [--layers 6] [--width 640]

Saves a state dict shaped like a small transformer encoder (embedding, per block four
width × width attention matrices and a width × 4·width MLP pair, LayerNorms), then times
in one process: loading plus statistics plus spectral measures (``inspect_checkpoint``),
and the whole command (HTML and JSON written). Target: a few seconds on a laptop CPU.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import torch


def state_dict(layers: int, width: int, vocab: int = 8192) -> dict[str, torch.Tensor]:
    """A transformer-shaped state dict with random weights (seeded)."""
    gen = torch.Generator().manual_seed(0)
    sd = {"embed.weight": torch.randn(vocab, width, generator=gen) * 0.02}
    for i in range(layers):
        p = f"blocks.{i}"
        for name in ("q", "k", "v", "o"):
            sd[f"{p}.attn.{name}.weight"] = torch.randn(width, width, generator=gen) / width**0.5
            sd[f"{p}.attn.{name}.bias"] = torch.zeros(width)
        sd[f"{p}.mlp.fc1.weight"] = torch.randn(4 * width, width, generator=gen) / width**0.5
        sd[f"{p}.mlp.fc1.bias"] = torch.zeros(4 * width)
        sd[f"{p}.mlp.fc2.weight"] = torch.randn(width, 4 * width, generator=gen) / (4 * width) ** 0.5
        sd[f"{p}.mlp.fc2.bias"] = torch.zeros(width)
        for ln in ("ln1", "ln2"):
            sd[f"{p}.{ln}.weight"] = torch.ones(width)
            sd[f"{p}.{ln}.bias"] = torch.zeros(width)
    return sd


def main() -> None:
    """Write the checkpoint, time inspection and the full command, print JSON figures."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--width", type=int, default=640)
    args = ap.parse_args()
    from weightreport.inspect.analyse import inspect_checkpoint
    from weightreport.inspect.page import build_inspect_report

    with tempfile.TemporaryDirectory() as tmp:
        ck = Path(tmp) / "model.pt"
        sd = state_dict(args.layers, args.width)
        params = sum(t.numel() for t in sd.values())
        torch.save(sd, ck)
        del sd
        t0 = time.perf_counter()
        inspect_checkpoint(ck)
        t1 = time.perf_counter()
        built = build_inspect_report(ck, html=Path(tmp) / "model.html", json=Path(tmp) / "model.json")
        t2 = time.perf_counter()
        print(json.dumps({
            "parameters": params, "tensors": 1 + 16 * args.layers,
            "threads": torch.get_num_threads(),
            "inspect_s": round(t1 - t0, 2), "command_s": round(t2 - t1, 2),
            "html_mb": round(built.html.stat().st_size / 2**20, 2),
            "json_mb": round(built.json.stat().st_size / 2**20, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }, indent=1))


if __name__ == "__main__":
    main()
