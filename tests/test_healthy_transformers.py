"""Healthy transformers trained on learnable data get no warning: no false positives.

BERT and ViT are built from transformers' configs with random init (its default std of
0.02), so that attention's query and key gradients start hundreds of times below the rest
of the model's and grow as attention learns: before growth was measured from the model's
early scale this BERT and this ViT got ``exploding_gradients`` warnings, and BERT a
``loss_spike`` warning for one hard batch. torch's own ``nn.TransformerEncoder`` solves its
task and got ``vanishing_gradients`` warnings for most of its biases, its gradients falling
with the loss, before they were judged against the loss's fall.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from weightreport import Collector, load_run
from weightreport.report.analysis.findings import at_or_above, run_findings

STEPS, BATCH = 150, 32


def _sequences(n: int = 1024, length: int = 32, vocab: int = 64) -> torch.Tensor:
    """Arithmetic sequences modulo ``vocab``: a start and a step of 1–3 (the label is the step)."""
    g = torch.Generator().manual_seed(1)
    start = torch.randint(0, vocab, (n, 1), generator=g)
    step = torch.randint(1, 4, (n, 1), generator=g)
    return (start + step * torch.arange(length)) % vocab


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's digits as 3×32×32 images."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0
    return nn.functional.interpolate(x, size=32, mode="bilinear").repeat(1, 3, 1, 1), torch.tensor(d.target)


def _bert():
    transformers = pytest.importorskip("transformers")
    model = transformers.BertForSequenceClassification(transformers.BertConfig(
        num_hidden_layers=4, hidden_size=128, num_attention_heads=4, intermediate_size=256, vocab_size=64,
        num_labels=3))
    data = _sequences()
    labels = (data[:, 1] - data[:, 0]) % 64 - 1
    return model, lambda s: {"input_ids": data[s], "labels": labels[s]}, len(data)


def _vit():
    transformers = pytest.importorskip("transformers")
    model = transformers.ViTForImageClassification(transformers.ViTConfig(
        image_size=32, patch_size=4, num_hidden_layers=4, hidden_size=128, num_attention_heads=4,
        intermediate_size=256, num_labels=10))
    x, y = _digits()
    return model, lambda s: {"pixel_values": x[s], "labels": y[s]}, len(x) // BATCH * BATCH


class _Encoder(nn.Module):
    """torch's own transformer encoder (GELU, three layers) classifying the sequences' step."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(64, 128)
        layer = nn.TransformerEncoderLayer(128, 4, 256, batch_first=True, activation="gelu")
        self.enc = nn.TransformerEncoder(layer, 3, enable_nested_tensor=False)
        self.fc = nn.Linear(128, 3)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor):
        logits = self.fc(self.enc(self.emb(input_ids)).mean(1))
        return SimpleNamespace(loss=nn.functional.cross_entropy(logits, labels))


def _encoder():
    data = _sequences()
    labels = (data[:, 1] - data[:, 0]) % 64 - 1
    return _Encoder(), lambda s: {"input_ids": data[s], "labels": labels[s]}, len(data)


@pytest.mark.parametrize("build", [_bert, _vit, _encoder], ids=["bert", "vit", "torch-encoder"])
def test_a_healthy_transformer_gets_no_warning(tmp_path, build):
    """150 steps of AdamW on learnable data: the loss falls, no finding is a warning or worse, and the
    units counted are the MLPs' 256 hidden features (BERT's pooler tanh: 128), never 32 or 65 token positions."""
    torch.manual_seed(0)
    model, batch, rows = build()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    with Collector(model, tmp_path / "run", every=10, optimizer=opt) as wr:
        for i in range(STEPS):
            start = i * BATCH % rows
            out = model(**batch(slice(start, start + BATCH)))
            opt.zero_grad()
            out.loss.backward()
            opt.step()
            losses.append(out.loss.item())
            wr.step(loss=losses[-1])
    assert sum(losses[-10:]) < 0.6 * sum(losses[:10])  # it learned
    run = load_run(tmp_path / "run")
    found = at_or_above(run_findings(run), "warning")
    assert found == [], [f.message for f in found]
    units = set(run.table("stats").units.dropna().astype(int))
    assert units == ({256, 128} if build is _bert else {256} if build is _vit else set())
