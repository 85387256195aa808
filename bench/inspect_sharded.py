"""Benchmark: ``weightreport inspect`` streaming a Llama-shaped sharded bf16 checkpoint.

    python bench/inspect_sharded.py [--layers 8] [--hidden 2048] [--intermediate 5632] [--vocab 32000] [--dir DIR]

Writes a ``save_pretrained``-style directory (one safetensors shard per layer, the
embedding and the LM head in shards of their own, ``model.safetensors.index.json``),
each tensor generated and written on its own in a child process, so that neither the
writer nor this process ever holds the model. Then inspects the directory here and
prints the time and this process's peak RSS. Target: peak ≤ 1 GB + 3 × the largest
tensor in float32 (the defaults: 0.54 B parameters, 1.1 GB on disk). The checkpoint
is deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def shapes(layers: int, hidden: int, intermediate: int, vocab: int) -> dict[str, list[tuple[str, tuple[int, ...]]]]:
    """Shard file → its tensors' names and shapes, Llama's layout."""
    out = {"embed": [("model.embed_tokens.weight", (vocab, hidden))]}
    for i in range(layers):
        p = f"model.layers.{i}"
        out[f"layer{i}"] = [
            *((f"{p}.self_attn.{n}_proj.weight", (hidden, hidden)) for n in "qkvo"),
            (f"{p}.mlp.gate_proj.weight", (intermediate, hidden)), (f"{p}.mlp.up_proj.weight", (intermediate, hidden)),
            (f"{p}.mlp.down_proj.weight", (hidden, intermediate)),
            (f"{p}.input_layernorm.weight", (hidden,)), (f"{p}.post_attention_layernorm.weight", (hidden,))]
    out["head"] = [("model.norm.weight", (hidden,)), ("lm_head.weight", (vocab, hidden))]
    n = len(out)
    return {f"model-{i + 1:05d}-of-{n:05d}.safetensors": tensors for i, tensors in enumerate(out.values())}


def write(directory: Path, layout: dict[str, list[tuple[str, tuple[int, ...]]]]) -> None:
    """Write every shard (safetensors: 8-byte header size, JSON header, raw bytes), one tensor at a time."""
    gen = torch.Generator().manual_seed(0)
    weight_map = {}
    for file, tensors in layout.items():
        header, offset = {}, 0
        for name, shape in tensors:
            nbytes = 2 * torch.Size(shape).numel()
            header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
            offset += nbytes
            weight_map[name] = file
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)
        with (directory / file).open("wb") as fh:
            fh.write(len(raw).to_bytes(8, "little") + raw)
            for _, shape in tensors:
                t = (torch.randn(shape, generator=gen) * shape[-1] ** -0.5 if len(shape) == 2
                     else 1 + 0.1 * torch.randn(shape, generator=gen)).bfloat16()
                fh.write(t.view(torch.int16).numpy().tobytes())
                del t
    total = sum(2 * torch.Size(s).numel() for ts in layout.values() for _, s in ts)
    (directory / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=1))


def _status(field: str) -> int:
    """A /proc/self/status figure in bytes (Linux)."""
    return int(re.search(field + r":\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) * 1024


def main() -> None:
    """Write the checkpoint in a child process, inspect it here, print JSON figures, delete it."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--intermediate", type=int, default=5632)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--dir", type=Path, default=None, help="where to write it (default: a temporary directory)")
    ap.add_argument("--write-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    layout = shapes(args.layers, args.hidden, args.intermediate, args.vocab)
    if args.write_only:
        write(args.dir, layout)
        return
    from weightreport.inspect.analyse import inspect_checkpoint

    inspect_checkpoint_warm = Path(tempfile.mkdtemp()) / "warm.pt"
    torch.save({"w": torch.randn(300, 200), "v": torch.randn(20000)}, inspect_checkpoint_warm)
    inspect_checkpoint(inspect_checkpoint_warm)  # compiled kernels and lazy imports out of the way
    shutil.rmtree(inspect_checkpoint_warm.parent)
    parent = Path(tempfile.mkdtemp(dir=args.dir))
    directory = parent / "llama-synthetic"
    directory.mkdir()
    try:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--write-only", "--dir", str(directory),
                        *(f"--{k}={getattr(args, k)}" for k in ("layers", "hidden", "intermediate", "vocab"))],
                       check=True)
        t1 = time.perf_counter()
        base = _status("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # the peak from here on
        result = inspect_checkpoint(directory)
        t2 = time.perf_counter()
        peak = _status("VmHWM")
        sizes = [torch.Size(s).numel() for ts in layout.values() for _, s in ts]
        largest_f32 = 4 * max(sizes)
        bound = 2**30 + 3 * largest_f32
        print(json.dumps({
            "parameters": sum(sizes), "tensors": len(result["tensors"]), "shards": len(layout),
            "checkpoint_mb": round(sum(f.stat().st_size for f in directory.iterdir()) / 2**20),
            "threads": torch.get_num_threads(), "write_s": round(t1 - t0, 1), "inspect_s": round(t2 - t1, 1),
            "rss_before_mb": round(base / 2**20), "peak_rss_mb": round(peak / 2**20),
            "peak_growth_mb": round((peak - base) / 2**20),
            "largest_tensor_f32_mb": round(largest_f32 / 2**20), "bound_mb": round(bound / 2**20),
            "within_bound": peak <= bound,
        }, indent=1))
    finally:
        shutil.rmtree(parent)


if __name__ == "__main__":
    main()
