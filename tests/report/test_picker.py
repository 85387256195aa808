"""The layer picker's groups: module paths that keep each group small, in model order."""

from __future__ import annotations

from weightreport.report.render.picker import MAX_GROUP, TOP, groups, picker


def bert_names(layers: int = 8) -> list[str]:
    """Parameter names shaped like an eight-layer BERT's (133 tensors before the classifier)."""
    names = [f"bert.embeddings.{m}.weight" for m in ("word_embeddings", "position_embeddings")]
    names += ["bert.embeddings.LayerNorm.weight", "bert.embeddings.LayerNorm.bias"]
    for i in range(layers):
        p = f"bert.encoder.layer.{i}"
        for m in ("attention.self.query", "attention.self.key", "attention.self.value",
                  "attention.output.dense", "attention.output.LayerNorm", "intermediate.dense",
                  "output.dense", "output.LayerNorm"):
            names += [f"{p}.{m}.weight", f"{p}.{m}.bias"]
    return [*names, "bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight", "classifier.bias"]


def test_bert_groups_by_encoder_layer():
    """An eight-layer BERT's tensors group as embeddings, one group per encoder layer, then the rest."""
    got = groups(bert_names())
    assert [label for label, _ in got] == (["bert.embeddings"] + [f"bert.encoder.layer.{i}" for i in range(8)]
                                           + ["bert.pooler", TOP])
    assert dict(got)["bert.encoder.layer.3"][0] == "bert.encoder.layer.3.attention.self.query.weight"
    assert dict(got)[TOP] == ("classifier.weight", "classifier.bias")


def test_groups_keep_model_order_and_every_name_once():
    """Concatenated, the groups give back the names in their order; each holds at most MAX_GROUP."""
    names = bert_names()
    got = groups(names)
    assert [n for _, members in got for n in members] == names
    assert all(len(members) <= MAX_GROUP for _, members in got)


def test_top_level_modules_before_and_after_blocks_make_two_groups():
    """A ResNet's stem and its classifier sit at the top level, before and after the blocks."""
    names = ["conv1.weight", "bn1.weight", "bn1.bias"]
    names += [f"layer{s}.{b}.conv{c}.weight" for s in (1, 2) for b in range(3) for c in (1, 2, 3, 4)]
    names += ["fc.weight", "fc.bias"]
    got = groups(names)
    labels = [label for label, _ in got]
    assert labels[0] == TOP and labels[-1] == TOP
    assert labels[1:-1] == ["layer1", "layer2"]


def test_short_lists_and_empty():
    """Up to MAX_GROUP names need no groups; no names give no picker."""
    assert groups(["a.weight", "a.bias"]) == ((None, ("a.weight", "a.bias")),)
    assert picker([]) is None
    assert picker(["x", "x", "y"]).names == ("x", "y")
