"""Dead and saturated units per activation kind, against the gradient autograd computes on the same batch."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from weightreport import Collector, load_run
from weightreport.collect.units import (
    DEAD_SLOPE,
    EXACT_DEAD,
    NEVER_DEAD,
    SATURATING,
    SMOOTH,
    ZERO_BELOW,
)

UNITS, BAD, BATCH = 32, 12, 64
"""32 units; the first 12 have pre-activations in the activation's dead or saturated region."""

CASES = [  # (activation, the bad region of pre-activations, what the bad units are)
    (nn.ReLU(), (-12.0, -10.0), "dead"),
    (nn.ReLU6(), (-12.0, -10.0), "dead"),
    (nn.Hardswish(), (-12.0, -10.0), "dead"),
    (nn.GELU(), (-12.0, -10.0), "dead"),
    (nn.GELU(approximate="tanh"), (-12.0, -10.0), "dead"),
    (nn.SiLU(), (-14.0, -12.0), "dead"),
    (nn.SiLU(inplace=True), (-14.0, -12.0), "dead"),
    (nn.Mish(), (-14.0, -12.0), "dead"),
    (nn.Softplus(), (-12.0, -10.0), "dead"),
    (nn.LeakyReLU(), (-12.0, -10.0), "never"),
    (nn.PReLU(), (-12.0, -10.0), "never"),
    (nn.ELU(), (-12.0, -10.0), "never"),
    (nn.SELU(), (-12.0, -10.0), "never"),
    (nn.CELU(), (-12.0, -10.0), "never"),
    (nn.Tanh(), (5.0, 8.0), "saturated"),
    (nn.Sigmoid(), (10.0, 12.0), "saturated"),
    (nn.Hardtanh(), (2.0, 3.0), "saturated"),
    (nn.Hardtanh(-2.0, 0.5), (1.0, 3.0), "saturated"),
    (nn.Hardsigmoid(), (4.0, 5.0), "saturated"),
]


def _model(act: nn.Module, lo: float, hi: float) -> nn.Sequential:
    """Linear(1 → 32) then ``act``: on inputs 0..1, units below BAD span [lo, hi], the rest [−0.5, 0.5]."""
    lin = nn.Linear(1, UNITS)
    with torch.no_grad():
        lin.weight[:BAD, 0] = hi - lo
        lin.bias[:BAD] = lo
        lin.weight[BAD:, 0] = 1.0
        lin.bias[BAD:] = -0.5
    return nn.Sequential(lin, act)


def _autograd_counts(model: nn.Sequential, x: torch.Tensor) -> tuple[int, int]:
    """(dead, saturated) units from d(output)/d(pre-activation) on the batch, by autograd."""
    z = model[0](x).detach().requires_grad_(True)
    model[1](z.clone()).backward(torch.ones(BATCH, UNITS))
    slope = z.grad.abs()
    act = model[1]
    if isinstance(act, (*EXACT_DEAD, *ZERO_BELOW, *NEVER_DEAD)):
        return int((slope == 0).all(0).sum()), 0
    if isinstance(act, tuple(SMOOTH)):
        return int((slope < DEAD_SLOPE).all(0).sum()), 0
    if isinstance(act, (nn.Hardtanh, nn.Hardsigmoid)):
        return 0, int((slope == 0).all(0).sum())
    if isinstance(act, tuple(SATURATING)):
        _centre, reach = SATURATING[type(act)]
        # the slope at the output-space threshold |y - centre| = reach
        edge = 1 - reach**2 if isinstance(act, nn.Tanh) else (0.5 + reach) * (0.5 - reach)
        return 0, int((slope <= edge).all(0).sum())
    return 0, 0


def _recorded_row(model: nn.Sequential, x: torch.Tensor, run: Path):
    """The activation row the collector records for ``model[1]`` on one step over ``x``."""
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # the captured forward sees these weights
    with Collector(model, run, every=1, optimizer=opt) as wr:
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
        wr.step()
    stats = load_run(run).table("stats")
    return stats[(stats.kind == "activation") & (stats.tensor == "1") & (stats.step == 1)].iloc[0]


@pytest.mark.parametrize(("act", "region", "expect"), CASES, ids=lambda c: repr(c) if isinstance(c, nn.Module) else None)
def test_dead_and_saturated_units_match_autograd(tmp_path, act, region, expect):
    """The collector's dead/saturated counts equal the units whose autograd slope is 0 (or below the
    documented threshold) on the whole batch; activations that never die report no dead count."""
    torch.manual_seed(0)
    model = _model(act, *region)
    x = torch.linspace(0, 1, BATCH).unsqueeze(1)
    dead, saturated = _autograd_counts(model, x)
    row = _recorded_row(model, x, tmp_path / "run")
    if expect == "dead":
        assert row.units == UNITS
        assert dead == BAD  # the region was chosen to kill exactly these units
        assert row.dead_units == dead
        assert math.isnan(row.saturated_units)
    elif expect == "saturated":
        assert row.units == UNITS
        assert saturated == BAD
        assert row.saturated_units == saturated
        assert math.isnan(row.dead_units)
    else:
        assert isinstance(act, NEVER_DEAD)
        assert dead == 0  # autograd agrees: the slope is never 0
        assert math.isnan(row.units) and math.isnan(row.dead_units) and math.isnan(row.saturated_units)


HF_CASES = ["GELUActivation", "NewGELUActivation", "GELUTanh", "FastGELUActivation", "QuickGELUActivation",
            "SiLUActivation", "MishActivation", "ReLUSquaredActivation", "models.bloom.modeling_bloom.BloomGelu"]
"""transformers' own activation modules (BERT's GELU, GPT-2's gelu_new, ...), in ``transformers.activations``
unless a model's module is named."""


@pytest.mark.parametrize("name", HF_CASES)
def test_transformers_activations_count_dead_units_as_autograd_does(tmp_path, name):
    """transformers' activation modules are recognised by class name: their dead units equal the
    units whose autograd slope through the real module is below ``DEAD_SLOPE`` (exactly 0 for ReLU²)."""
    where, _, kind = name.rpartition(".")
    act = getattr(pytest.importorskip(f"transformers.{where or 'activations'}"), kind)()
    torch.manual_seed(0)
    model = _model(act, -14.0, -12.0)
    x = torch.linspace(0, 1, BATCH).unsqueeze(1)
    z = model[0](x).detach().requires_grad_(True)
    act(z).backward(torch.ones(BATCH, UNITS))
    slope = z.grad.abs()
    gone = slope == 0 if name == "ReLUSquaredActivation" else slope < DEAD_SLOPE
    dead = int(gone.all(0).sum())
    assert dead == BAD
    row = _recorded_row(model, x, tmp_path / "run")
    assert row.units == UNITS
    assert row.dead_units == dead


TOKENS = 5
"""Token positions per sample in the features-last cases: not the 32 units, so a mix-up shows."""


def _autograd_dead_per_feature(act: nn.Module, z: torch.Tensor) -> int:
    """Units of the last dimension whose autograd slope is 0 (below ``DEAD_SLOPE`` for smooth ones) at every
    sample and token."""
    z = z.detach().requires_grad_(True)
    act(z.clone()).backward(torch.ones_like(z))
    slope = z.grad.abs().reshape(-1, z.shape[-1])
    gone = slope < DEAD_SLOPE if isinstance(act, tuple(SMOOTH)) else slope == 0
    return int(gone.all(0).sum())


def _captured_units(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Call name → the per-unit signal that ``ActivationCapture`` keeps on one armed forward of ``model``."""
    from weightreport.collect.hooks import ActivationCapture

    capture = ActivationCapture(list(model.named_children()), sample=4096, root=model)
    capture.armed = True
    try:
        model(x)
        return {name: cap.units[1] for name, cap in capture.take().items() if cap.units is not None}
    finally:
        capture.close()


class _TokenMLP(nn.Module):
    """A transformer block's MLP on (batch, tokens, features): a LayerNorm, then Linear → ``act`` → Linear."""

    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(1, elementwise_affine=False)
        self.fc1 = nn.Linear(1, UNITS)
        self.act = act
        self.fc2 = nn.Linear(UNITS, 1)
        with torch.no_grad():  # features below BAD get pre-activations in [-12, -10] at every token
            self.fc1.weight[:BAD, 0] = 2.0
            self.fc1.bias[:BAD] = -12.0
            self.fc1.weight[BAD:, 0] = 1.0
            self.fc1.bias[BAD:] = -0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x))) + self.norm(x)


@pytest.mark.parametrize("act", [nn.ReLU(), nn.GELU(approximate="tanh"), nn.SiLU()], ids=repr)
def test_features_last_units_are_the_hidden_features(tmp_path, act):
    """After a Linear on (batch, tokens, features), the units are the features, each judged over every
    token of the batch: 32 units with the 12 that autograd finds dead, not 5 token positions."""
    torch.manual_seed(0)
    model = _TokenMLP(act)
    x = torch.linspace(0, 1, BATCH * TOKENS).reshape(BATCH, TOKENS, 1)
    dead = _autograd_dead_per_feature(act, model.fc1(x))
    assert dead == BAD
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    run = tmp_path / "run"
    with Collector(model, run, every=1, optimizer=opt) as wr:
        model(x).sum().backward()
        wr.step()
    stats = load_run(run).table("stats")
    row = stats[(stats.tensor == "act") & (stats.step == 1)].iloc[0]
    assert (row.units, row.dead_units) == (UNITS, dead)


class _ConvThenNormed(nn.Module):
    """Channels-first on a 3-D output (a Conv1d's (N, C, L)), then features-last after a LayerNorm, one ReLU each."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 6, 1)
        self.relu_c = nn.ReLU()
        self.ln = nn.LayerNorm(6)
        self.relu_f = nn.ReLU()
        with torch.no_grad():
            self.conv.weight.fill_(1.0)
            self.conv.bias.copy_(torch.tensor([-50.0, -50.0, 0.0, 0.0, 0.0, 0.0]))  # channels 0 and 1 die

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu_c(self.conv(x))  # (N, 6, L)
        return self.relu_f(self.ln(h.transpose(1, 2)))  # (N, L, 6)


def test_unit_layout_follows_the_layer_before():
    """A ReLU after a Conv1d counts channels (dim 1 of (N, C, L)); one after a LayerNorm counts the last
    dimension; each count equals autograd's on the same tensor."""
    torch.manual_seed(0)
    model = _ConvThenNormed()
    x = torch.rand(4, 1, 9)  # L = 9: neither 6 nor 4
    captured = _captured_units(model, x)
    channels = captured["relu_c"]
    assert channels.shape == (6,)
    assert int((channels <= 0).sum()) == 2
    z = model.conv(x).detach().requires_grad_(True)
    nn.ReLU()(z).backward(torch.ones_like(z))
    assert int((z.grad == 0).all(2).all(0).sum()) == 2  # autograd: the same two channels pass nothing
    features = captured["relu_f"]
    assert features.shape == (6,)
    pre = model.ln(model.relu_c(model.conv(x)).transpose(1, 2))
    assert torch.equal(features, pre.clamp(min=0).reshape(-1, 6).amax(0))


def test_unit_dim_names_the_layouts_of_other_libraries():
    """transformers' Conv1D and RMSNorm-like layers are features-last, a LayerNorm2d or a norm that says it is
    channels-first is channels-first, and an activation or an unknown layer keeps the layout before it."""
    from weightreport.collect.units import CHANNELS_FIRST, FEATURES_LAST, unit_dim

    conv1d = type("Conv1D", (nn.Module,), {})()
    llama_norm = type("LlamaRMSNorm", (nn.Module,), {})()
    layer_norm_2d = type("LayerNorm2d", (nn.LayerNorm,), {})(8)
    assert unit_dim(conv1d) == unit_dim(llama_norm) == unit_dim(nn.Linear(2, 2)) == FEATURES_LAST
    assert unit_dim(nn.LSTM(2, 2)) == unit_dim(nn.MultiheadAttention(4, 2)) == FEATURES_LAST
    assert unit_dim(layer_norm_2d) == unit_dim(nn.Conv2d(1, 1, 1)) == unit_dim(nn.BatchNorm1d(2)) == CHANNELS_FIRST
    assert unit_dim(nn.AdaptiveAvgPool2d(1)) == unit_dim(nn.GroupNorm(1, 2)) == CHANNELS_FIRST
    convnext_norm = type("ConvNextLayerNorm", (nn.Module,), {})()
    assert unit_dim(convnext_norm) == FEATURES_LAST
    convnext_norm.data_format = "channels_first"
    assert unit_dim(convnext_norm) == CHANNELS_FIRST
    assert unit_dim(nn.GELU()) is None and unit_dim(nn.Sequential()) is None


@pytest.mark.parametrize("act", [nn.GELU(), nn.GELU(approximate="tanh"), nn.SiLU(), nn.Mish(), nn.Softplus(),
                                 nn.Softplus(beta=2.0, threshold=5.0)], ids=repr)
def test_smooth_slopes_are_autograds_own(act):
    """A smooth activation's per-unit largest slope equals, bit for bit, the largest gradient autograd passes
    to its input under an incoming gradient of 1 (channels first and features last)."""
    from weightreport.collect.units import FEATURES_LAST, slope

    torch.manual_seed(0)
    for x, dim in ((torch.randn(4, 6, 5, 5) * 4, 1), (torch.randn(3, 7, 9) * 4, FEATURES_LAST)):
        z = x.clone().requires_grad_(True)
        act(z).backward(torch.ones_like(z))
        g = z.grad.abs().movedim(dim, -1).reshape(-1, x.shape[dim])
        assert torch.equal(slope(act, x, dim), g.amax(0))


class _LinearBatchNormTokens(nn.Module):
    """LeViT's MLP layer: a Linear on (batch, tokens, C), a BatchNorm1d over it flattened to (batch·tokens, C),
    reshaped back, then a Hardswish whose first ``BAD`` features sit below −3 at every token."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, UNITS)
        self.bn = nn.BatchNorm1d(UNITS, affine=True)
        self.act = nn.Hardswish()
        with torch.no_grad():
            self.bn.bias[:BAD] = -8.0  # the normalised values stay within a few units of 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear(x)
        return self.act(self.bn(h.flatten(0, 1)).reshape_as(h))


def test_units_found_again_after_a_reshape():
    """Channels-first BatchNorm1d on the flattened tokens, then a reshape to (batch, tokens, C): the activation's
    units are the C features (as many as autograd finds dead), not the tokens."""
    torch.manual_seed(0)
    model = _LinearBatchNormTokens()
    x = torch.rand(BATCH, TOKENS, 1)
    signal = _captured_units(model, x)["act"]
    z = model.bn(model.linear(x).flatten(0, 1)).reshape(BATCH, TOKENS, UNITS)
    assert signal.shape == (UNITS,)
    assert int((signal <= 0).sum()) == _autograd_dead_per_feature(nn.Hardswish(), z) == BAD


def test_place_units_keeps_the_layers_place_unless_its_count_is_elsewhere():
    """The layer's place wins when its count is there (or unknown, or nowhere); the other place when only it matches."""
    from weightreport.collect.units import CHANNELS_FIRST, FEATURES_LAST, place_units

    t = torch.zeros(2, 5, 32)
    assert place_units(t, CHANNELS_FIRST, 32) == FEATURES_LAST
    assert place_units(t, CHANNELS_FIRST, 5) == CHANNELS_FIRST
    assert place_units(t, FEATURES_LAST, 5) == CHANNELS_FIRST
    assert place_units(t, FEATURES_LAST, None) == FEATURES_LAST
    assert place_units(t, CHANNELS_FIRST, 7) == CHANNELS_FIRST
    assert place_units(torch.zeros(4, 8, 8), CHANNELS_FIRST, 8) == CHANNELS_FIRST  # a tie keeps the layer's place
    # after a 2-D (N, C) output: a sequence's features, an image's channels, unless the count says otherwise
    assert place_units(torch.zeros(2, 15, 4), None, 12) == FEATURES_LAST
    assert place_units(torch.zeros(2, 16, 7, 7), None, 16 * 7 * 7) == CHANNELS_FIRST  # a generator's Linear, viewed
    assert place_units(torch.zeros(2, 16, 7, 7), None, 7) == FEATURES_LAST
    assert place_units(torch.zeros(8, 32), None, 32) == CHANNELS_FIRST


class _HeadsReshaped(nn.Module):
    """LeViT's attention: a BatchNorm1d on (batch·tokens, 12) whose output is reshaped to (batch, tokens·3, 4)
    (heads of width 4) before the activation, so the layer's count of 12 is nowhere in it."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 12)
        self.bn = nn.BatchNorm1d(12)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn(self.linear(x).flatten(0, 1))
        return self.act(h.reshape(x.shape[0], -1, 4))


def test_a_two_dimensional_layer_before_leaves_the_units_last():
    """After a 2-D (N, C) output, whose units are both first and last, a reshaped tensor keeps its units last:
    4 per head-width feature, not 15 token-head rows."""
    model = _HeadsReshaped()
    x = torch.rand(BATCH, TOKENS, 1)
    signal = _captured_units(model, x)["act"]
    out = model(x)
    assert out.shape == (BATCH, 3 * TOKENS, 4)
    assert torch.equal(signal, out.reshape(-1, 4).amax(0))


def test_wav2vec2_counts_conv_channels_and_feed_forward_features(tmp_path):
    """transformers' Wav2Vec2: its feature encoder's GELUs, after a LayerNorm over the transposed conv output,
    count the 16 conv channels; the positional conv's GELU its 32; each feed-forward GELU its 64 features."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=(16, 16, 16),
        conv_stride=(5, 2, 2), conv_kernel=(10, 3, 3), feat_extract_norm="layer", num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4, vocab_size=12))
    with Collector(model, tmp_path / "run", every=1) as wr:
        model(input_values=torch.randn(2, 1600), labels=torch.randint(1, 12, (2, 5))).loss.backward()
        wr.step()
    stats = load_run(tmp_path / "run").table("stats")
    units = dict(stats[(stats.step == 1) & stats.units.notna()][["tensor", "units"]].itertuples(index=False))
    assert units == {
        **{f"wav2vec2.feature_extractor.conv_layers.{i}.activation": 16 for i in range(3)},
        "wav2vec2.encoder.pos_conv_embed.activation": 32,
        **{f"wav2vec2.encoder.layers.{i}.feed_forward.intermediate_act_fn": 64 for i in range(2)},
    }


LARGE = [  # (activation, input of a dead or saturated unit, input of a live one)
    (nn.ReLU(), -5.0, 1.0),
    (nn.Hardswish(), -5.0, 1.0),
    (nn.GELU(), -20.0, 1.0),
    (nn.Tanh(), 8.0, 0.1),
    (nn.Hardtanh(), 3.0, 0.1),
]


@pytest.mark.parametrize(("act", "bad", "good"), LARGE, ids=lambda v: repr(v) if isinstance(v, nn.Module) else "")
def test_large_outputs_are_judged_on_the_whole_batch_where_the_first_images_leave_units_open(act, bad, good):
    """From ``HEAD_FROM`` values the signal is first taken on the batch's first sixteenth. Units that are
    dead, alive only in the last image, or NaN in the first are judged on the whole batch, so the counts
    equal autograd's; a layer whose units all fire early skips the rest."""
    from weightreport.collect import units as U

    torch.manual_seed(0)
    x = torch.randn(32, 64, 8, 8) * 0.3 + good  # 131,072 values: above HEAD_FROM
    assert x.numel() >= U.HEAD_FROM
    x[:, 3] = bad  # bad on the whole batch
    x[:, 5] = bad
    x[-1, 5, 0, 0] = good  # alive (unsaturated) only at one place of the last image
    x[0, 7, 0, 0] = math.nan  # NaN in the first image only

    def counted(inputs):
        largest = U.slope(act, inputs)
        mode, signal, reach = U.unit_signal(act, act(inputs.clone()), largest)
        value = signal.double().numpy()
        return U.count_units(mode, value, reach), signal

    (units, dead, saturated), _ = counted(x)
    z = x.clone().requires_grad_(True)
    act(z).backward(torch.ones_like(z))
    grad = z.grad.abs().transpose(0, 1).reshape(64, -1)
    if isinstance(act, nn.Tanh):
        expected = int((grad <= 1 - 0.99**2).all(1).sum())
    elif isinstance(act, nn.GELU):
        expected = int((grad < DEAD_SLOPE).all(1).sum())
    else:
        expected = int((grad == 0).all(1).sum())
    assert units == 64 and (dead if saturated is None else saturated) == expected == 1

    healthy = torch.randn(32, 64, 8, 8) * 0.3 + good
    (_, dead, saturated), signal = counted(healthy)
    assert (dead if saturated is None else saturated) == 0
    if isinstance(act, nn.ReLU):  # taken from the first two images only
        assert torch.equal(signal, U.per_unit(healthy[:2], torch.amax))
        assert not torch.equal(signal, U.per_unit(healthy, torch.amax))
