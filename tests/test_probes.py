"""Tests for weightreport.collect.probes: feature maps, attention weights and hidden states of a probe."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.nn.utils.rnn import pack_padded_sequence

from weightreport.collect.probes import capture_probes
from weightreport.errors import WeightReportError
from weightreport.runfmt.schema import SCHEMAS


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU(inplace=True),
        nn.Conv2d(12, 4, 3, stride=2), nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2),
    )


def matrix(row: dict) -> np.ndarray:
    return row["values"].reshape(row["rows"], row["cols"])


def by(rows: list[dict], module: str) -> list[dict]:
    return [r for r in rows if r["module"] == module]


def no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


class Seq2Seq(nn.Module):
    """Cross-attention called positionally with need_weights=False, as some callers do."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.attn = nn.MultiheadAttention(8, 2)

    def forward(self, q, kv):
        return self.attn(q, kv, kv, None, False)[0]


class Packed(nn.Module):
    """An LSTM fed a PackedSequence of unsorted lengths."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.rnn = nn.LSTM(3, 4, batch_first=True)

    def forward(self, x, lengths):
        out, _ = self.rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        return out


def test_rows_fit_the_probes_schema():
    """Every row has the table's columns, float32 values of rows*cols, and converts to Arrow."""
    rows = capture_probes(cnn(), torch.randn(2, 3, 8, 8), 7)
    assert rows
    for r in rows:
        assert set(r) == set(SCHEMAS["probes"].names)
        assert r["step"] == 7 and r["values"].dtype == np.float32
        assert r["values"].shape == (r["rows"] * r["cols"],)
    pa.Table.from_pylist(rows, schema=SCHEMAS["probes"])


def test_feature_maps_are_first_sample_first_channels_before_inplace_relu():
    """Conv rows are the first sample's first channels, copied before an in-place ReLU overwrote them."""
    model, x = cnn(), torch.randn(2, 3, 8, 8)
    rows = capture_probes(model, x, 0)
    first = by(rows, "0")
    assert [r["index"] for r in first] == list(range(8))
    model.eval()
    with torch.no_grad():
        expected = model[0](x)[0]
    for r in first:
        assert r["kind"] == "feature_map" and (r["rows"], r["cols"]) == (8, 8)
        np.testing.assert_allclose(matrix(r), expected[r["index"]].numpy(), rtol=1e-6)
    assert any((r["values"] < 0).any() for r in first)
    assert [r["index"] for r in by(rows, "3")] == [0, 1, 2, 3]
    assert len(by(capture_probes(model, x, 0, max_channels=3), "0")) == 3


def test_large_feature_maps_are_pooled_keeping_aspect():
    """A 98 x 48 map is average-pooled to at most 32 x 32 with its aspect ratio roughly kept."""
    torch.manual_seed(0)
    model = nn.Conv2d(1, 1, 3)
    x = torch.randn(1, 1, 100, 50)
    (row,) = capture_probes(model, x, 0)
    assert (row["rows"], row["cols"]) == (32, 16)
    with torch.no_grad():
        expected = F.adaptive_avg_pool2d(model(x), (32, 16))[0, 0]
    np.testing.assert_allclose(matrix(row), expected.numpy(), rtol=1e-5, atol=1e-6)
    (small,) = capture_probes(model, x, 0, fmap_side=10)
    assert max(small["rows"], small["cols"]) <= 10


def test_conv1d_and_conv3d_feature_maps():
    """Conv1d gives one row of at most 256 columns; Conv3d is averaged over depth, then bounded."""
    torch.manual_seed(0)
    conv1 = nn.Conv1d(2, 3, 1)
    rows = capture_probes(conv1, torch.randn(2, 2, 1000), 0)
    assert len(rows) == 3 and all((r["rows"], r["cols"]) == (1, 256) for r in rows)
    rows = capture_probes(conv1, torch.randn(2, 2, 20), 0)
    assert all((r["rows"], r["cols"]) == (1, 20) for r in rows)
    conv3, x = nn.Conv3d(1, 2, 1), torch.randn(1, 1, 4, 40, 40)
    rows = capture_probes(conv3, x, 0)
    assert [(r["rows"], r["cols"]) for r in rows] == [(32, 32), (32, 32)]
    with torch.no_grad():
        expected = F.adaptive_avg_pool2d(conv3(x)[0].mean(dim=1), (32, 32))
    np.testing.assert_allclose(matrix(rows[1]), expected[1].numpy(), rtol=1e-5, atol=1e-6)


def test_nan_is_kept_and_capture_is_deterministic():
    """A NaN in the probe stays NaN in its cell only, and two captures are identical."""
    model = nn.Conv2d(1, 1, 1)
    x = torch.randn(1, 1, 5, 5)
    x[0, 0, 0, 0] = float("nan")
    (row,) = capture_probes(model, x, 0)
    assert np.isnan(row["values"][0]) and np.isfinite(row["values"][1:]).all()
    (again,) = capture_probes(model, x, 0)
    np.testing.assert_array_equal(row["values"], again["values"])


@pytest.mark.parametrize("batch_first", [True, False])
def test_encoder_layer_attention_per_head_rows_sum_to_one(batch_first):
    """A TransformerEncoderLayer's self-attention gives one stochastic target x source matrix per head."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 4, 32, batch_first=batch_first)
    x = torch.randn(2, 10, 16) if batch_first else torch.randn(10, 2, 16)
    rows = capture_probes(layer, x, 0)
    assert [(r["module"], r["kind"], r["index"]) for r in rows] == [
        ("self_attn", "attention", h) for h in range(4)]
    layer.eval()
    with torch.no_grad():
        _, w = layer.self_attn(x, x, x, need_weights=True, average_attn_weights=False)
    for r in rows:
        assert (r["rows"], r["cols"]) == (10, 10)
        np.testing.assert_allclose(matrix(r).sum(axis=1), 1.0, rtol=1e-5)
        np.testing.assert_allclose(matrix(r), w[0, r["index"]].numpy(), rtol=1e-5, atol=1e-6)


def test_fast_path_is_off_during_the_probe_and_restored_after():
    """The MHA fast path is disabled inside the probe forward and its old value restored."""
    seen = []
    layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
    layer.register_forward_pre_hook(lambda m, a: seen.append(torch.backends.mha.get_fastpath_enabled()))
    before = torch.backends.mha.get_fastpath_enabled()
    capture_probes(layer, torch.randn(1, 3, 8), 0)
    assert seen == [False] and torch.backends.mha.get_fastpath_enabled() == before


def test_encoder_with_padding_mask_avoids_the_nested_fast_path():
    """A TransformerEncoder given a padding mask (dict probe) yields every layer's heads, warning-free."""
    torch.manual_seed(0)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 4, 32, batch_first=True), 2,
                                enable_nested_tensor=True)
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[1, 6:] = True
    rows = capture_probes(enc, {"src": torch.randn(2, 10, 16), "src_key_padding_mask": mask}, 0)
    assert [(r["module"], r["index"]) for r in rows] == [
        (f"layers.{i}.self_attn", h) for i in range(2) for h in range(4)]


def test_bare_cross_attention_with_positional_need_weights_false():
    """Attention called positionally with need_weights=False still gives target x source per head."""
    model = Seq2Seq()
    rows = capture_probes(model, (torch.randn(5, 3, 8), torch.randn(7, 3, 8)), 0)
    assert [(r["index"], r["rows"], r["cols"]) for r in rows] == [(0, 5, 7), (1, 5, 7)]
    for r in rows:
        np.testing.assert_allclose(matrix(r).sum(axis=1), 1.0, rtol=1e-5)


def test_long_attention_is_pooled_and_row_sums_scale():
    """128 x 192 weights pool to 64 x 64; with even source bins each row sums to 64/192."""
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 1, batch_first=True)
    rows = capture_probes(mha, (torch.randn(1, 128, 8), torch.randn(1, 192, 8), torch.randn(1, 192, 8)), 0)
    (r,) = rows
    assert (r["rows"], r["cols"]) == (64, 64)
    np.testing.assert_allclose(matrix(r).sum(axis=1), 64 / 192, rtol=1e-5)


@pytest.mark.parametrize(("rnn", "batch_first"), [
    (nn.LSTM(3, 5, bidirectional=True, batch_first=True), True),
    (nn.GRU(3, 5, batch_first=False), False),
    (nn.RNN(3, 5, num_layers=2, batch_first=True, bidirectional=True), True),
])
def test_recurrent_hidden_states_are_the_first_samples_output(rnn, batch_first):
    """LSTM/GRU/RNN rows are the first sample's output sequence, time x hidden (both directions)."""
    x = torch.randn(2, 6, 3) if batch_first else torch.randn(6, 2, 3)
    (row,) = capture_probes(rnn, x, 0)
    rnn.eval()
    with torch.no_grad():
        out, _ = rnn(x)
    expected = out[0] if batch_first else out[:, 0]
    assert (row["kind"], row["index"], row["module"]) == ("hidden_state", 0, "")
    assert (row["rows"], row["cols"]) == tuple(expected.shape)
    np.testing.assert_allclose(matrix(row), expected.numpy(), rtol=1e-5, atol=1e-6)


def test_long_and_unbatched_hidden_states():
    """A 300-step, 100-wide output pools to 64 x 64; an unbatched input is taken whole."""
    torch.manual_seed(0)
    lstm = nn.LSTM(2, 50, bidirectional=True)
    (row,) = capture_probes(lstm, torch.randn(300, 1, 2), 0)
    assert (row["rows"], row["cols"]) == (64, 64)
    (row,) = capture_probes(lstm, torch.randn(9, 2), 0, max_side=128)
    assert (row["rows"], row["cols"]) == (9, 100)


def test_packed_sequence_is_unpacked_to_the_first_samples_length():
    """A PackedSequence output is unpacked; the first (shorter, unsorted) sample keeps its own length."""
    (row,) = capture_probes(Packed(), (torch.randn(2, 6, 3), torch.tensor([4, 6])), 0)
    assert (row["module"], row["rows"], row["cols"]) == ("rnn", 4, 4)


def test_training_flags_and_hooks_restored_and_bn_untouched():
    """Mixed training flags come back exactly, BatchNorm running stats are untouched, hooks are gone."""
    model = cnn().train()
    model[1].eval()
    user_hook = model[0].register_forward_hook(lambda m, a, o: None)
    flags = [m.training for m in model.modules()]
    running = model[1].running_mean.clone()
    capture_probes(model, torch.randn(2, 3, 8, 8), 0)
    assert [m.training for m in model.modules()] == flags
    assert torch.equal(model[1].running_mean, running)
    assert list(model[0]._forward_hooks) == [user_hook.id]
    user_hook.remove()
    assert no_hooks(model)


def test_bad_probe_raises_one_line_error_and_restores_state():
    """A probe the model rejects raises WeightReportError naming the problem; flags, hooks, fast path restored."""
    layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True).train()
    model = nn.Sequential(layer, nn.Conv1d(3, 3, 1))
    before = torch.backends.mha.get_fastpath_enabled()
    with pytest.raises(WeightReportError) as info:
        capture_probes(model, torch.randn(1, 3, 5), 0)
    assert str(info.value) == ("probe batch failed in model forward: AssertionError: was expecting "
                               "embedding dimension of 8, but got 5; pass a batch the model accepts")
    assert all(m.training for m in model.modules()) and no_hooks(model)
    assert torch.backends.mha.get_fastpath_enabled() == before


def test_wrapped_model_uses_inner_names_and_plain_models_give_no_rows():
    """A DDP-wrapped model's rows carry the inner names; a model without probed layers gives none."""
    model = cnn()
    ddp = DistributedDataParallel.__new__(DistributedDataParallel)
    nn.Module.__init__(ddp)
    ddp.module = model
    assert {r["module"] for r in capture_probes(ddp, [torch.randn(1, 3, 8, 8)], 0)} == {"0", "3"}
    assert capture_probes(nn.Linear(2, 2), torch.randn(1, 2), 0) == []


def test_shared_conv_gives_a_capture_per_call():
    """A convolution applied twice gives its first call's feature maps under its name and its second's
    under ``conv#2``, each equal to that call's output."""
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 1, 1)

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = conv

        def forward(self, x):
            return self.conv(self.conv(x) + 100)

    x = torch.randn(1, 1, 4, 4)
    first, second = capture_probes(Twice(), x, 0)
    assert (first["module"], second["module"]) == ("conv", "conv#2")
    with torch.no_grad():
        np.testing.assert_allclose(matrix(first), conv(x)[0, 0].numpy(), rtol=1e-6)
        np.testing.assert_allclose(matrix(second), conv(conv(x) + 100)[0, 0].numpy(), rtol=1e-6)


def test_multiline_error_message_is_cut_to_its_first_line():
    """Only the first line of the model's exception message goes into the error."""

    class Raises(nn.Module):
        def forward(self, x):
            msg = "shapes do not match\nlong details"
            raise ValueError(msg)

    with pytest.raises(WeightReportError) as info:
        capture_probes(Raises(), torch.zeros(1), 0)
    assert str(info.value) == ("probe batch failed in model forward: ValueError: shapes do not "
                               "match; pass a batch the model accepts")
