"""Tests for the probe's attention maps of Hugging Face models (transformers 5: BERT, GPT-2, ViT)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

transformers = pytest.importorskip("transformers")

from weightreport import Collector, load_run  # noqa: E402  (after the importorskip)
from weightreport.collect.hf_attention import attention_modules, attention_note  # noqa: E402
from weightreport.collect.probes import capture_probes  # noqa: E402

TOKENS = 50


def bert(impl: str = "eager", cls=None) -> nn.Module:
    torch.manual_seed(0)
    cfg = transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=37, vocab_size=TOKENS, max_position_embeddings=16,
                                  attn_implementation=impl)
    return (cls or transformers.BertModel)(cfg)


def gpt2(impl: str = "eager") -> nn.Module:
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=TOKENS, n_positions=16,
                                  bos_token_id=0, eos_token_id=0, attn_implementation=impl)
    return transformers.GPT2LMHeadModel(cfg)


def albert(impl: str = "eager") -> nn.Module:
    """ALBERT shares one layer's weights between its layers: one attention module, run per layer."""
    torch.manual_seed(0)
    cfg = transformers.AlbertConfig(hidden_size=32, embedding_size=16, num_hidden_layers=2, num_attention_heads=2,
                                    intermediate_size=37, vocab_size=TOKENS, max_position_embeddings=16,
                                    attn_implementation=impl)
    return transformers.AlbertModel(cfg)


def tokens() -> torch.Tensor:
    return torch.randint(0, TOKENS, (2, 7), generator=torch.Generator().manual_seed(1))


def hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def own_attentions(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The oracle: the model's own ``output_attentions=True`` output, on a copy (it installs lasting hooks)."""
    twin = copy.deepcopy(model).eval()
    with torch.no_grad():
        return twin(x, output_attentions=True).attentions


def heads(rows: list[dict], module: str) -> list[np.ndarray]:
    return [r["values"].reshape(r["rows"], r["cols"]) for r in rows if r["module"] == module]


@pytest.mark.parametrize(("build", "names"), [
    (bert, ["encoder.layer.0.attention.self", "encoder.layer.1.attention.self"]),
    (gpt2, ["transformer.h.0.attn", "transformer.h.1.attn"]),
    (albert, ["encoder.albert_layer_groups.0.albert_layers.0.attention",
              "encoder.albert_layer_groups.0.albert_layers.0.attention#2"]),
])
def test_every_layer_has_per_head_maps_equal_to_the_models_own_attentions(build, names):
    """Each layer's attention module gives one row per head: the first sample's weights, rows summing to 1.
    ALBERT's one shared attention module gives them for each of its calls, one per layer."""
    model, x = build(), tokens()
    config, before = model.config.to_dict(), hooks(model)
    notes: list[str] = []
    rows = capture_probes(model, x, 3, notes=notes)
    assert notes == []
    assert sorted({r["module"] for r in rows}) == names
    assert all(r["kind"] == "attention" for r in rows)
    expected = own_attentions(model, x)
    assert len(expected) == len(names)
    for name, weights in zip(names, expected, strict=True):
        maps = heads(rows, name)
        assert len(maps) == 2 and all(m.shape == (7, 7) for m in maps)
        np.testing.assert_allclose(np.stack(maps).sum(-1), 1.0, rtol=1e-5)
        np.testing.assert_allclose(np.stack(maps), weights[0].numpy(), rtol=1e-5, atol=1e-7)
    # the model is left as it was: same config, no hooks, transformers' own capture not switched on
    assert model.config.to_dict() == config and model.config.output_attentions is False
    assert hooks(model) == before
    assert not getattr(model, "_output_capturing_hooks_installed", False)



def test_t5_maps_its_weights_at_the_end_of_its_output():
    """T5 declares its weights at index -1 of its attention layers' outputs (after the position
    bias): every encoder and decoder self-attention layer gives its heads' maps, equal to the
    model's own, and cross-attention too; no note."""
    torch.manual_seed(0)
    cfg = transformers.T5Config(vocab_size=TOKENS, d_model=32, d_ff=37, num_layers=2, num_heads=2, d_kv=16,
                                decoder_start_token_id=0, attn_implementation="eager")
    model, x = transformers.T5ForConditionalGeneration(cfg), tokens()
    notes: list[str] = []
    rows = capture_probes(model, {"input_ids": x, "labels": x}, 0, notes=notes)
    assert notes == []
    self_attn = [f"{side}.block.{b}.layer.0" for side in ("encoder", "decoder") for b in (0, 1)]
    assert {r["module"] for r in rows} == {*self_attn, "decoder.block.0.layer.1", "decoder.block.1.layer.1"}
    twin = copy.deepcopy(model).eval()
    with torch.no_grad():
        own = twin(input_ids=x, labels=x, output_attentions=True)
    for name, weights in zip(self_attn, [*own.encoder_attentions, *own.decoder_attentions], strict=True):
        np.testing.assert_allclose(np.stack(heads(rows, name)), weights[0].numpy(), rtol=1e-5, atol=1e-7)


def test_eager_attention_without_weights_is_not_told_to_use_eager():
    """An eager model whose attention gave no weights gets a note that does not advise eager."""
    model = bert()
    note = attention_note(model, ["encoder.layer.0.attention.self"])
    assert "eager attention but returned no weights" in note and 'attn_implementation="eager"' not in note

def test_gpt2_maps_are_causal():
    """GPT-2's maps have nothing above the diagonal: a token attends to itself and earlier ones only."""
    rows = capture_probes(gpt2(), tokens(), 0)
    for m in heads(rows, "transformer.h.0.attn"):
        assert np.triu(m, 1).max() == 0.0 and m[np.tril_indices(len(m))].min() > 0.0


def test_vit_and_a_wrapped_backbone_are_found_in_model_order():
    """ViT's attention modules, and BERT held inside a plain module, are the ones transformers records."""
    torch.manual_seed(0)
    vit = transformers.ViTModel(transformers.ViTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
        image_size=8, patch_size=4, attn_implementation="eager"))
    assert [n for n, _, _ in attention_modules(vit)] == ["layers.0.attention", "layers.1.attention"]
    rows = capture_probes(vit, torch.randn(2, 3, 8, 8), 0)
    attn = [r for r in rows if r["kind"] == "attention"]
    assert [(r["module"], r["index"], r["rows"]) for r in attn] == [
        ("layers.0.attention", 0, 5), ("layers.0.attention", 1, 5),
        ("layers.1.attention", 0, 5), ("layers.1.attention", 1, 5)]  # 4 patches and the CLS token

    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = bert()
            self.head = nn.Linear(32, 3)

        def forward(self, x):
            return self.head(self.backbone(x).last_hidden_state[:, 0])

    found = attention_modules(Classifier())
    assert [(n, at) for n, _, at in found] == [("backbone.encoder.layer.0.attention.self", 1),
                                               ("backbone.encoder.layer.1.attention.self", 1)]
    assert {r["module"] for r in capture_probes(Classifier(), tokens(), 0)} == {n for n, _, _ in found}


def test_sdpa_attention_gives_a_one_line_note_and_no_maps():
    """Fused sdpa returns no weights (and transformers 5 does not fall back to eager): a note names the modules."""
    model, x = bert("sdpa"), tokens()
    assert own_attentions(model, x) == ()  # what transformers itself returns for output_attentions=True
    config = model.config.to_dict()
    notes: list[str] = []
    rows = capture_probes(model, x, 0, notes=notes)
    assert rows == [] and len(notes) == 1
    assert "\n" not in notes[0] and "sdpa" in notes[0] and 'attn_implementation="eager"' in notes[0]
    assert "2 attention module(s) (encoder.layer.0.attention.self, encoder.layer.1.attention.self)" in notes[0]
    assert model.config.to_dict() == config


def test_a_transformers_4_style_model_is_named_in_a_note():
    """A model with an HF-like config but no declared attention outputs is said to be uncaptured, not skipped silently."""

    class LegacySelfAttention(nn.Module):
        def forward(self, x):
            return (x,)

    class Legacy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = transformers.BertConfig(output_attentions=False)
            self.attn = LegacySelfAttention()

        def forward(self, x):
            return self.attn(x)[0]

    notes: list[str] = []
    assert capture_probes(Legacy(), torch.randn(2, 3), 0, notes=notes) == []
    assert notes == [attention_note(Legacy(), [])]
    assert "(attn)" in notes[0] and "transformers 5" in notes[0]
    assert attention_note(nn.Linear(2, 2), []) is None


def test_collector_records_the_probe_note_in_run_json(tmp_path):
    """A collector with an sdpa BERT's probe writes the note to run.json (probe_note); an eager one writes None."""
    for impl, run_dir in (("sdpa", tmp_path / "sdpa"), ("eager", tmp_path / "eager")):
        model = bert(impl, transformers.BertForSequenceClassification)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        with Collector(model, run_dir, every=1, probe={"input_ids": tokens()}) as wr:
            loss = model(input_ids=tokens(), labels=torch.tensor([0, 1])).loss
            loss.backward()
            opt.step()
            wr.step(loss=loss.item())
        run = load_run(run_dir)
        note = run.manifest["probe_note"]
        probes = run.tables["probes"]
        if impl == "sdpa":
            assert "sdpa" in note and "bert.encoder.layer.0.attention.self" in note
            assert (probes["kind"] != "attention").all()
        else:
            assert note is None
            assert set(probes.loc[probes["kind"] == "attention", "module"]) == {
                "bert.encoder.layer.0.attention.self", "bert.encoder.layer.1.attention.self"}
