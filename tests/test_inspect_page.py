"""The inspect page leads with its verdict: layer kinds, model order, unreliable alphas, layout."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
import torch
from torch import nn

from weightreport.cli import main
from weightreport.inspect.analyse import inspect_checkpoint
from weightreport.inspect.charts import inspect_charts
from weightreport.inspect.layers import layer_kind, model_order
from weightreport.inspect.model import inspect_model
from weightreport.inspect.page import render_inspect_html
from weightreport.inspect.spectral import MIN_ALPHA_EVALS
from weightreport.report.render.env import break_at_dots
from weightreport.report.render.html import BUNDLE_PLACEHOLDER


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    """A small random-init BERT saved by save_pretrained as sharded safetensors (names stored sorted)."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=120, hidden_size=64, num_hidden_layers=12, num_attention_heads=4,
                                  intermediate_size=128, max_position_embeddings=64)
    model = transformers.BertModel(cfg)
    out = tmp_path_factory.mktemp("bert") / "bert-tiny"
    model.save_pretrained(out, safe_serialization=True, max_shard_size="200KB")
    assert list(out.glob("*.index.json")), "the checkpoint should be sharded"
    return out


@pytest.fixture(scope="module")
def bert_page(bert_dir):
    """The BERT checkpoint's page and model (built once for the module)."""
    return _page(bert_dir)


class _Layout(HTMLParser):
    """Records, in document order, each chart div and each table with its body's row count."""

    def __init__(self):
        super().__init__()
        self.events: list[tuple[str, int]] = []
        self._rows: list[int] = []
        self._in_body = False

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class") or ""
        if tag == "div" and "wr-chart" in cls.split():
            self.events.append(("chart", 0))
        elif tag == "table":
            self._rows.append(0)
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body and self._rows:
            self._rows[-1] += 1

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        elif tag == "table" and self._rows:
            self.events.append(("table", self._rows.pop()))


def _page(path) -> tuple[str, object]:
    model = inspect_model(inspect_checkpoint(path))
    return render_inspect_html(model, inspect_charts(model), bundle=BUNDLE_PLACEHOLDER), model


def test_first_chart_precedes_every_long_table(bert_page):
    """On a BERT checkpoint the first chart comes before any table of more than 20 rows, which scrolls."""
    page, model = bert_page
    layout = _Layout()
    layout.feed(page)
    kinds = [k for k, _ in layout.events]
    assert "chart" in kinds
    first_chart = kinds.index("chart")
    long_tables = [i for i, (k, n) in enumerate(layout.events) if k == "table" and n > 20]
    assert long_tables, "the BERT page should have long tables"
    assert first_chart < min(long_tables)
    assert page.count('class="wr-scroll wr-tall"') >= 2  # the quality and tensors tables are bounded
    assert len(model.rows) > 20


def test_bert_layer_kinds(bert_page):
    """Every BERT matrix gets its kind: q, k, v, o, MLP (both matrices), embedding, other for the pooler."""
    _, model = bert_page
    kind = {q["tensor"]: q["kind"] for q in model.quality}
    for i in range(12):
        block = f"encoder.layer.{i}."
        assert kind[block + "attention.self.query.weight"] == "attention q"
        assert kind[block + "attention.self.key.weight"] == "attention k"
        assert kind[block + "attention.self.value.weight"] == "attention v"
        assert kind[block + "attention.output.dense.weight"] == "attention o"
        assert kind[block + "intermediate.dense.weight"] == "MLP"
        assert kind[block + "output.dense.weight"] == "MLP"
    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        assert kind[f"embeddings.{name}.weight"] == "embedding"
    assert kind["pooler.dense.weight"] == "other"
    assert set(kind.values()) == {"attention q", "attention k", "attention v", "attention o", "MLP",
                                  "embedding", "other"}


def test_sorted_names_are_put_in_model_order(bert_page):
    """safetensors stores names sorted (layer.10 before layer.2): the page puts blocks in numeric order."""
    _, model = bert_page
    assert model.reordered
    blocks = [int(n.split(".")[2]) for n in model.matrices if n.startswith("encoder.layer.")]
    assert blocks == sorted(blocks) and blocks[0] == 0 and blocks[-1] == 11
    assert model.matrices[0].startswith("embeddings.") and model.matrices[-1] == "pooler.dense.weight"
    block0 = [n.split(".", 3)[3] for n in model.matrices if n.startswith("encoder.layer.0.")]
    assert block0 == ["attention.self.query.weight", "attention.self.key.weight", "attention.self.value.weight",
                      "attention.output.dense.weight", "intermediate.dense.weight", "output.dense.weight"]
    assert [q["depth"] for q in model.quality] == list(range(len(model.quality)))


def test_state_dict_order_is_kept():
    """Names not stored sorted (a torch.save'd state dict) keep their stored order."""
    names = ["conv1.weight", "layer2.weight", "layer10.weight", "fc.weight"]
    assert model_order(names, [(4, 4)] * 4, sorted_storage=False) == [0, 1, 2, 3]


def test_kinds_of_other_families():
    """GPT-2, LLaMA and torch's MultiheadAttention names, and conv kernels by shape."""
    assert layer_kind("h.3.attn.c_attn.weight", (64, 192)) == "attention qkv"
    assert layer_kind("h.3.attn.c_proj.weight", (64, 64)) == "attention o"
    assert layer_kind("h.3.mlp.c_proj.weight", (256, 64)) == "MLP"
    assert layer_kind("transformer.wte.weight", (500, 64)) == "embedding"
    assert layer_kind("model.layers.0.self_attn.q_proj.weight", (64, 64)) == "attention q"
    assert layer_kind("model.layers.0.mlp.gate_proj.weight", (64, 64)) == "MLP"
    assert layer_kind("encoder.layers.0.self_attn.in_proj_weight", (192, 64)) == "attention qkv"
    assert layer_kind("features.0.weight", (16, 3, 3, 3)) == "conv"
    assert layer_kind("classifier.weight", (10, 64)) == "other"


def _small_conv(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.Flatten(), nn.Linear(256, 96))
    path = tmp_path / "convnet.pt"
    torch.save(model.state_dict(), path)
    return path


def test_alpha_from_few_eigenvalues_is_unreliable(tmp_path):
    """An untrained 16×27 conv's alpha (16 eigenvalues) is flagged, not counted as typical, and explained."""
    path = _small_conv(tmp_path)
    page, model = _page(path)
    conv = next(q for q in model.quality if q["tensor"] == "0.weight")
    assert conv["shape"] == "16×3×3×3" and conv["evals"] == 16 < MIN_ALPHA_EVALS
    assert conv["kind"] == "conv"
    assert not conv["reliable"] and conv["band"] == "unreliable"
    assert conv["verdict"].startswith("unreliable") and "typical" not in conv["verdict"]
    linear = next(q for q in model.quality if q["tensor"] == "2.weight")
    assert linear["evals"] == 96 and linear["reliable"]
    bands = model.bands
    assert bands["unreliable"] == 1
    assert bands["typical"] + bands["light"] + bands["heavy"] == 1  # the linear layer only
    assert "1 more has fewer than 50 eigenvalues" in model.headline
    assert "only 16 eigenvalues (fewer than 50)" in page
    assert "Left out: alpha from too few eigenvalues" in page


def test_json_carries_the_reliability_flag(tmp_path, capsys):
    """inspect --json writes alpha_reliable, the eigenvalue count and the tail size of every matrix."""
    path = _small_conv(tmp_path)
    js = tmp_path / "m.json"
    assert main(["inspect", str(path), "-o", str(tmp_path / "m.html"), "--json", str(js)]) == 0
    capsys.readouterr()
    tensors = {t["tensor"]: t for t in json.loads(js.read_text())["tensors"]}
    assert tensors["0.weight"]["alpha_reliable"] is False and tensors["0.weight"]["alpha_evals"] == 16
    assert tensors["2.weight"]["alpha_reliable"] is True and tensors["2.weight"]["alpha_evals"] == 96
    assert 0 < tensors["2.weight"]["alpha_tail"] <= 96
    assert tensors["0.bias"]["alpha_reliable"] is None  # not a matrix


def test_names_break_only_after_dots():
    """The dots filter escapes the name and offers a break after each dot, nowhere inside a word."""
    out = str(break_at_dots("embeddings.word_embeddings.<b>weight"))
    assert out == "embeddings.<wbr>word_embeddings.<wbr>&lt;b&gt;weight"
    assert out.replace("<wbr>", "").replace("&lt;", "<").replace("&gt;", ">") == "embeddings.word_embeddings.<b>weight"
