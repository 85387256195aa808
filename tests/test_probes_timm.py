"""The probe's attention maps of timm-style attention modules (``fused_attn`` flag, ``attn_drop``).

timm itself needs torchvision, which this project leaves out, so the module below repeats
``timm.layers.Attention``'s forward (timm 1.0): the fused path computes no weights, the
explicit one passes its softmax through ``attn_drop``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from weightreport import Collector, load_run
from weightreport.collect.probes import capture_probes


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.num_heads, self.head_dim = heads, dim // heads
        self.scale = self.head_dim ** -0.5
        self.fused_attn = True
        self.qkv = nn.Linear(dim, dim * 3)
        self.attn_drop = nn.Dropout(0.0)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if self.fused_attn:
            x = F.scaled_dot_product_attention(q, k, v)
        else:
            attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
            x = self.attn_drop(attn) @ v
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 16)
        self.blocks = nn.Sequential(Attention(16, 2), Attention(16, 2))
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        return self.head(self.blocks(self.embed(x)).mean(1))


def test_timm_attention_maps_are_the_softmax_and_the_flag_is_restored():
    """Each head's map is the attention's softmax, computed by hand; the fused flag is back on
    after the probe, and the probe leaves no hook behind."""
    torch.manual_seed(0)
    model = Tiny()
    x = torch.randn(2, 9, 4)
    rows = capture_probes(model, x, 3)
    maps = {(r["module"], r["index"]): r["values"].reshape(r["rows"], r["cols"]) for r in rows}
    assert set(maps) == {(f"blocks.{b}", h) for b in (0, 1) for h in (0, 1)}
    with torch.no_grad():
        h = model.embed(x)
        first = model.blocks[0]
        q, k, _v = first.qkv(h).reshape(2, 9, 3, 2, 8).permute(2, 0, 3, 1, 4).unbind(0)
        expected = ((q * first.scale) @ k.transpose(-2, -1)).softmax(-1)[0]
    for head in (0, 1):
        np.testing.assert_allclose(maps[("blocks.0", head)], expected[head].numpy(), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(maps[("blocks.0", head)].sum(1), 1.0, rtol=1e-5)
    assert all(m.fused_attn for m in model.blocks)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_a_run_with_timm_attention_shows_its_maps(tmp_path):
    """Through the collector, the probes table holds the attention maps, and the report draws them."""
    from weightreport.report.model import analyze, section_charts

    torch.manual_seed(0)
    model = Tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(8, 9, 4)
    with Collector(model, tmp_path / "run", every=2, probe=x[:2]) as wr:
        for _ in range(4):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
            wr.step()
    probes = load_run(tmp_path / "run").table("probes")
    assert set(probes.query("kind == 'attention'").module) == {"blocks.0", "blocks.1"}
    charts = [c for c in section_charts(analyze(load_run(tmp_path / "run")))["activations"]
              if c.title.startswith("Probe captures")]
    panels = [label for c in charts for label in c.spec["facet"]["sort"]]
    assert [p for p in panels if p.startswith("blocks.")] == [
        f"blocks.{b} · head {h}" for b in (0, 1) for h in (0, 1)], panels
