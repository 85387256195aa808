"""The activations section's probe figure: bounded, in model order, with a note on what it leaves out."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from synthetic import Spec, small_spec, write_run

from weightreport import Collector
from weightreport.report.analysis.probe_picks import MAX_PROBE_MODULES, shares, spread
from weightreport.report.build import build_report
from weightreport.report.model import analyze, section_charts
from weightreport.report.sections.activations import activations
from weightreport.runfmt.reader import load_run

CONVS, TINY, ATTN = 40, 8, 3
"""The synthetic net: 40 convolutions (the last 8 with 1 × 1 maps), then 3 attention modules."""


def _panels(model) -> list[str]:
    """The probe figures' panel labels, in the order drawn."""
    charts = [c for c in section_charts(model)["activations"] if c.title.startswith("Probe captures")]
    return [label for c in charts for label in c.spec["facet"]["sort"]]


@pytest.fixture(scope="module")
def deep_run(tmp_path_factory):
    """A MobileNet-like run: many conv probe modules, some of 1 × 1 maps, and a few attention modules."""
    layers = [(f"features.{i}", "Conv2d", (4, 4, 3, 3)) for i in range(CONVS)]
    layers += [(f"blocks.{i}.attn", "MultiheadAttention", (24, 8)) for i in range(ATTN)]
    maps = [(f"features.{i}", "feature_map", 4, *((8, 8) if i < CONVS - TINY else (1, 1))) for i in range(CONVS)]
    maps += [(f"blocks.{i}.attn", "attention", 2, 6, 6) for i in range(ATTN)]
    spec = Spec(name="deep", layers=layers, snapshots=2, heatmaps=False, probe_maps=maps)
    return write_run(tmp_path_factory.mktemp("runs") / "deep", spec)


def test_shares_and_spread():
    """The cap is split evenly over kinds, a small kind's rest goes to the others; picks keep first and last."""
    assert shares({"feature_map": 100, "attention": 3}, 12) == {"feature_map": 9, "attention": 3}
    assert shares({"a": 20, "b": 20, "c": 20}, 12) == {"a": 4, "b": 4, "c": 4}
    assert shares({"a": 2, "b": 1}, 12) == {"a": 2, "b": 1}
    assert spread(list("abcdefghij"), 4) == ["a", "d", "g", "j"]
    assert spread(list("abc"), 5) == ["a", "b", "c"]


def test_deep_probe_figure_is_bounded_in_model_order_and_noted(deep_run):
    """At most the cap of modules, in the model's order, no 1 × 1 map, and the note counts what was left out."""
    model = analyze(load_run(deep_run))
    panels = _panels(model)
    modules = list(dict.fromkeys(p.split(" · ")[0] for p in panels))
    assert len(modules) <= MAX_PROBE_MODULES
    order = [f"features.{i}" for i in range(CONVS)] + [f"blocks.{i}.attn" for i in range(ATTN)]
    assert modules == sorted(modules, key=order.index)  # model order, not text order
    kept_convs = [m for m in modules if m.startswith("features.")]
    assert kept_convs[0] == "features.0" and kept_convs[-1] == f"features.{CONVS - TINY - 1}"
    assert not any(int(m.split(".")[1]) >= CONVS - TINY for m in kept_convs)  # the 1 × 1 maps are gone
    assert [m for m in modules if m.endswith("attn")] == [f"blocks.{i}.attn" for i in range(ATTN)]
    assert len(kept_convs) == MAX_PROBE_MODULES - ATTN  # the attention maps keep their share
    assert sum(p.startswith("features.0 ") for p in panels) == 4  # four channels per module
    titles = [c.title for c in section_charts(model)["activations"] if c.title.startswith("Probe")]
    assert titles == ["Probe captures (modules 1–6 of 12)", "Probe captures (modules 7–12 of 12)"]
    notes = " ".join(model.by_key["activations"].probe_notes)
    shown, drawable = MAX_PROBE_MODULES, CONVS - TINY + ATTN
    assert f"{shown} of the {drawable} modules with maps" in notes
    assert f"{drawable - shown} are left out" in notes and "evenly spaced over depth" in notes
    assert f"{TINY} module(s) whose maps are smaller than 2 × 2 (such as features.{CONVS - TINY})" in notes


def test_a_tiny_bert_run_draws_its_attention_maps(tmp_path):
    """A real tiny BERT trained with a probe: the HTML report has a panel per layer and head."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                                  vocab_size=50, max_position_embeddings=16, attn_implementation="eager")
    net = transformers.BertForSequenceClassification(cfg)
    ids = torch.randint(0, 50, (2, 7), generator=torch.Generator().manual_seed(1))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    with Collector(net, tmp_path / "bert", every=1, probe={"input_ids": ids}) as wr:
        for _ in range(2):
            loss = net(input_ids=ids, labels=torch.tensor([0, 1])).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            wr.step(loss=loss.item())
    panels = _panels(analyze(load_run(tmp_path / "bert")))
    assert panels == [f"bert.encoder. · layer.{layer}.attention.self · head {head}"  # two lines fit a panel
                      for layer in range(2) for head in range(2)]
    html = build_report(tmp_path / "bert", html=tmp_path / "bert.html").html.read_text(encoding="utf-8")
    assert all(p in html for p in panels)


def test_the_collectors_probe_note_is_said_in_the_section(tmp_path):
    """run.json's probe_note is one line of the activations section, beside the maps or in the empty note."""
    note = "no attention maps for 2 attention module(s) (a, b): its attention implementation (sdpa) computes no weights"
    run_dir = write_run(tmp_path / "run", small_spec())
    manifest = json.loads((run_dir / "run.json").read_text())
    manifest["probe_note"] = note
    manifest["settings"]["probe_shape"] = [2, 7]
    (run_dir / "run.json").write_text(json.dumps(manifest))
    run = load_run(run_dir)
    assert analyze(run).by_key["activations"].probe_notes == ["N" + note[1:] + "."]
    empty = activations(run, pd.DataFrame(), pd.DataFrame())  # no activations and no maps at all
    assert empty.empty and f"the probe gave no maps ({note})." in empty.note
