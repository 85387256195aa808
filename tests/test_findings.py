"""The findings engine: each code is triggered by tables built to show it; a healthy run raises none."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from findings_data import ORDER, STEPS, healthy, where
from torch import nn

from weightreport import Collector
from weightreport.errors import WeightReportError
from weightreport.report.analysis.findings import CODES, at_or_above, find_all, run_findings
from weightreport.report.analysis.sampling import late_steps
from weightreport.report.analysis.thresholds import Thresholds, load_thresholds
from weightreport.runfmt.reader import load_run


def _find(t, thresholds=None):
    return find_all(t.stats, t.scalars, t.batchnorm, thresholds, ORDER)


def _codes(t, thresholds=None):
    return {(f.code, f.severity, f.tensor) for f in _find(t, thresholds)}


def test_healthy_tables_have_no_findings():
    """The healthy baseline gives no finding at all, so every other test shows one problem."""
    assert _find(healthy()) == []


def test_nan_inf_is_an_error():
    """NaN elements in a weight and a NaN loss are both errors, with the step range."""
    t = healthy()
    t.stats.loc[where(t.stats, tensor="fc1.weight", kind="param", step=150), "nan_count"] = 4
    t.scalars.loc[t.scalars.index[-1], "value"] = np.nan
    found = [f for f in _find(t) if f.code == "nan_inf"]
    assert {(f.severity, f.tensor) for f in found} == {("error", "fc1.weight"), ("error", "val_loss")}
    weight = next(f for f in found if f.tensor == "fc1.weight")
    assert weight.step_range == (150, 150) and weight.values["nan"] == 4 and weight.anchor == "stats"


def test_exploding_gradients_over_time():
    """A gradient norm that grows 1e5-fold is an exploding-gradients error."""
    t = healthy()
    mask = where(t.stats, tensor="fc2.weight", kind="grad")
    t.stats.loc[mask, "norm"] = np.logspace(0, 6, mask.sum())
    (f,) = [f for f in _find(t) if f.code == "exploding_gradients"]
    assert f.severity == "error" and f.tensor == "fc2.weight" and f.values["growth"] > 1e4
    assert f.message and f.suggestion and f.anchor == "dynamics"


def test_a_gradient_catching_up_is_not_exploding():
    """A gradient that grows 500-fold from far below the model's to its early scale (as
    attention's query and key do from a small initialisation) is no finding; growth to far
    above that scale is, and the message gives both growths."""
    t = healthy()
    mask = where(t.stats, tensor="fc2.weight", kind="grad")
    t.stats.loc[mask, "norm"] = np.logspace(-3, np.log10(0.5), mask.sum())  # RMS 5e-5 → 0.025; fc1's 0.03
    assert not [f for f in _find(t) if f.code == "exploding_gradients"]
    t.stats.loc[mask, "norm"] = np.logspace(-3, 3, mask.sum())  # → RMS 50, 1,600× fc1's
    (f,) = [f for f in _find(t) if f.code == "exploding_gradients"]
    assert f.tensor == "fc2.weight" and f.values["growth"] > 1e4
    assert "from the scale of the model's early gradients" in f.message


def test_the_whole_model_s_gradients_growing_are_exploding():
    """When every gradient grows 1000-fold, the model's typical gradient grew too: each is exploding."""
    t = healthy()
    mask = t.stats["kind"] == "grad"
    growth = np.interp(t.stats.loc[mask, "step"], [t.stats["step"].min(), t.stats["step"].max()], [0, 3])
    t.stats.loc[mask, "norm"] *= 10.0**growth
    found = {(f.tensor, f.code) for f in _find(t) if f.code == "exploding_gradients"}
    assert found == {("fc1.weight", "exploding_gradients"), ("fc2.weight", "exploding_gradients")}


def test_vanishing_gradients_over_time():
    """A gradient norm that decays 1e-5-fold is a vanishing-gradients warning."""
    t = healthy()
    mask = where(t.stats, tensor="fc2.weight", kind="grad")
    t.stats.loc[mask, "norm"] = np.logspace(0, -6, mask.sum())
    assert ("vanishing_gradients", "warning", "fc2.weight") in _codes(t)


def test_gradients_that_fall_with_the_loss_are_not_vanishing():
    """A task solved to a loss 10,000× below its start takes every gradient 1,000× down with it: no
    finding. A gradient falling 1,000× further than the loss did still is one."""
    t = healthy()
    loss = t.scalars["name"] == "loss"
    t.scalars.loc[loss, "value"] = np.logspace(0, -4, loss.sum())
    mask = t.stats["kind"] == "grad"
    fall = np.interp(t.stats.loc[mask, "step"], [t.stats["step"].min(), t.stats["step"].max()], [0, -3])
    t.stats.loc[mask, "norm"] *= 10.0**fall
    assert not [f for f in _find(t) if f.code == "vanishing_gradients"]
    fc2 = where(t.stats, tensor="fc2.weight", kind="grad")
    t.stats.loc[fc2, "norm"] = np.logspace(0, -9, fc2.sum())
    (f,) = [f for f in _find(t) if f.code == "vanishing_gradients"]
    assert f.tensor == "fc2.weight" and "while the training loss fell to" in f.message


def test_vanishing_gradients_across_depth():
    """A first layer whose gradient RMS is 1e-5 of the last layer's is vanishing across depth."""
    t = healthy()
    t.stats.loc[where(t.stats, tensor="fc1.weight", kind="grad"), "norm"] = 1e-5
    (f,) = [f for f in _find(t) if f.code == "vanishing_gradients"]
    assert f.tensor == "fc1.weight" and f.values["ratio"] < 1e-3


def test_exploding_gradients_across_depth():
    """A first layer whose gradient RMS is 1e4 times the last layer's is exploding across depth."""
    t = healthy()
    t.stats.loc[where(t.stats, tensor="fc1.weight", kind="grad"), "norm"] = 1e4
    assert ("exploding_gradients", "warning", "fc1.weight") in _codes(t)


@pytest.mark.parametrize(("ratio", "severity"), [(10.0, "warning"), (1e-9, "info")])
def test_update_ratio_far_from_1e_3(ratio, severity):
    """Per-step update ratios of 1.0 (warning) and 1e-10 (info) are both reported."""
    t = healthy()
    mask = where(t.stats, tensor="fc2.weight", kind="param") & (t.stats["step"] > 0)
    t.stats.loc[mask, "update_ratio"] = ratio
    (f,) = [f for f in _find(t) if f.code == "update_ratio"]
    assert f.severity == severity and f.values["median_ratio"] == pytest.approx(ratio / 10)


def test_outliers_by_z_score_and_iqr():
    """Values beyond 6σ warn, with their count; a large IQR-fence fraction alone is an info."""
    t = healthy()
    t.stats.loc[where(t.stats, tensor="fc1.weight", kind="param", step=200), ["outliers_6std", "max"]] = [3, 1.2]
    t.stats.loc[where(t.stats, tensor="fc2.weight", kind="param", step=200), "outliers_iqr"] = 80
    found = {f.tensor: f for f in _find(t) if f.code == "outliers"}
    assert found["fc1.weight"].severity == "warning"
    assert found["fc1.weight"].values["outliers_6std"] == 3
    assert found["fc1.weight"].values["max_abs_z"] == pytest.approx(12.0)
    assert found["fc1.weight"].message.startswith("fc1.weight has 3 value(s) beyond 6σ")
    assert found["fc2.weight"].severity == "info"
    assert found["fc2.weight"].values["iqr_fraction"] == pytest.approx(0.2)
    assert found["fc2.weight"].message.startswith("20.0% of fc2.weight's values")
    assert "0 value" not in found["fc2.weight"].message


def _laplace_row(values: np.ndarray) -> dict:
    """The outlier columns of one tensor, computed directly with numpy (the oracle)."""
    mean, std = values.mean(), values.std()
    q1, q3 = np.quantile(values, [0.25, 0.75])
    fence = 1.5 * (q3 - q1)
    return {"count": values.size, "numel": values.size, "mean": mean, "std": std, "min": values.min(),
            "max": values.max(), "outliers_6std": int((np.abs(values - mean) > 6 * std).sum()),
            "outliers_iqr": int(((values < q1 - fence) | (values > q3 + fence)).sum())}


@pytest.mark.parametrize(("planted", "expected"), [(0, set()), (400, {"warning"})])
def test_trained_weights_heavy_tails_are_no_outliers(planted, expected):
    """A Laplace-distributed tensor (as trained weights often are) is no finding; planted 30σ values warn."""
    rng = np.random.default_rng(1)
    values = rng.laplace(0.0, 0.05, 1_000_000)
    values[:planted] = 30 * values.std()
    row = _laplace_row(values)
    t = healthy()
    mask = where(t.stats, tensor="fc1.weight", kind="param", step=200)
    for col, v in row.items():
        t.stats.loc[mask, col] = v
    assert row["outliers_6std"] > 0 and row["outliers_iqr"] / row["count"] > 0.05  # the old rule warned here
    found = [f for f in _find(t) if f.code == "outliers"]
    assert {f.severity for f in found} == expected


@pytest.mark.parametrize(("z_count", "max_z", "warns"), [
    (1, 6.9, False),  # GPT-2's c_attn.bias after 400 healthy steps: a Laplace tail's luck 8 % of the time
    (2, 7.5, False),
    (3, 7.5, True),  # three beyond 6σ: a Laplace tail of 384 values shows that once in 13,000 times
    (1, 12.0, True),  # one exploding unit, further out than a Laplace tail of 384 reaches (9.1σ)
])
def test_a_small_tensors_values_beyond_6_sigma_warn_beyond_chance(z_count, max_z, warns):
    """In a 384-value bias the count beyond 6σ is mostly chance: it warns only when a Laplace-like
    tail of that size would show as many, or one as far out, less than once in a thousand times."""
    t = healthy()
    mask = where(t.stats, tensor="fc2.weight", kind="param", step=200)
    t.stats.loc[mask, ["count", "numel", "mean", "std", "min", "outliers_6std", "outliers_iqr"]] = (
        [384, 384, 0.0, 0.1, -0.3, z_count, 10])
    t.stats.loc[mask, "max"] = max_z * 0.1
    found = [f for f in _find(t) if f.code == "outliers" and f.tensor == "fc2.weight"]
    assert [f.severity for f in found] == (["warning"] if warns else [])
    if warns:
        assert found[0].message.startswith(f"fc2.weight has {z_count} value(s) beyond 6σ")
        assert ("further out than" in found[0].message) == (z_count == 1)



def test_outliers_there_from_the_first_snapshot_come_from_the_initialisation():
    """A value at 100σ at step 0 that is still there at the end was put there by the initialisation
    (timm's truncated normal clamps a draw of −inf to −2): the message and the advice say so. One
    that appears during training gets the training advice."""
    for since in (0, 100):
        t = healthy()
        mask = where(t.stats, tensor="fc1.weight", kind="param") & (t.stats["step"] >= since)
        t.stats.loc[mask, ["std", "min", "outliers_6std"]] = [0.02, -2.0, 1]
        (f,) = [f for f in _find(t) if f.code == "outliers" and f.tensor == "fc1.weight"]
        from_init = "it was there at the first snapshot (step 0, largest |z| = 100.0), so it comes from the initialisation"
        assert (from_init in f.message) == (since == 0)
        assert f.suggestion.startswith("Check how the tensor is initialised") == (since == 0)

def test_the_poisson_tail_matches_scipy():
    """``_poisson_tail`` is P(X ≥ count) of a Poisson distribution (scipy's ``sf(count − 1)``)."""
    from scipy.stats import poisson

    from weightreport.report.analysis.checks_tensors import _poisson_tail, laplace_reach

    for mean in (1e-3, 0.079, 0.41, 1.0, 5.0, 206.0, 5000.0):
        for count in {1, 2, 3, 5, int(mean) + 1, int(2 * mean) + 1, int(3 * mean) + 3}:
            if count > mean:
                assert _poisson_tail(count, mean) == pytest.approx(poisson.sf(count - 1, mean), rel=1e-9, abs=1e-300)
    # the largest of n Laplace values passes laplace_reach(n) with probability about 1e-3
    n, z = 384, laplace_reach(384)
    assert 1 - (1 - math.exp(-z * math.sqrt(2))) ** n == pytest.approx(1e-3, rel=1e-3)


@pytest.mark.parametrize(("count", "severity"), [(10, "warning"), (30, "error")])
def test_dead_units_by_fraction(count, severity):
    """10 of 32 dead ReLU units is a warning and 30 of 32 an error."""
    t = healthy()
    t.stats.loc[where(t.stats, tensor="relu1", step=200), "dead_units"] = count
    assert ("dead_units", severity, "relu1") in _codes(t)


def test_saturated_units_by_fraction():
    """A tanh layer with 16 of 32 units saturated is a warning."""
    t = healthy()
    t.stats.loc[where(t.stats, tensor="tanh1", step=200), "saturated_units"] = 16
    (f,) = [f for f in _find(t) if f.code == "saturated_units"]
    assert f.severity == "warning" and f.values["fraction"] == 0.5 and f.anchor == "activations"


def test_bn_drift():
    """Running means five running-std away from the batch means are BatchNorm drift."""
    t = healthy()
    t.batchnorm["running_mean"] += 5.0
    (f,) = [f for f in _find(t) if f.code == "bn_drift"]
    assert f.tensor == "bn1" and f.values["mean_shift"] == pytest.approx(5.0, rel=0.1)


def test_bn_drift_by_variance():
    """A running variance ten times the batch variance is BatchNorm drift."""
    t = healthy()
    t.batchnorm["running_var"] *= 10
    assert ("bn_drift", "warning", "bn1") in _codes(t)


def test_bn_checks_read_only_the_late_snapshots():
    """The BatchNorm checks give the same findings from the table read at ``late_steps`` as from the whole
    table, and drift in the early snapshots only is not late drift."""
    t = healthy()
    t.batchnorm["running_mean"] += 5.0
    t.batchnorm.loc[t.batchnorm["step"] == 200, "weight"] = 1e-4
    whole = _find(t)
    t.batchnorm = t.batchnorm[t.batchnorm["step"].isin(late_steps(t.stats["step"]))]
    assert {f.code for f in whole} >= {"bn_drift", "bn_gamma_collapse"} and _find(t) == whole
    early = healthy()
    early.batchnorm.loc[early.batchnorm["step"] < 100, "running_mean"] += 5.0
    assert "bn_drift" not in {f.code for f in _find(early)}


def test_bn_gamma_collapse():
    """Half the channels' gamma near zero at the last snapshot is gamma collapse."""
    t = healthy()
    last = t.batchnorm["step"] == 200
    t.batchnorm.loc[last & (t.batchnorm["channel"] < 4), "weight"] = 1e-4
    (f,) = [f for f in _find(t) if f.code == "bn_gamma_collapse"]
    assert f.values["collapsed"] == 4 and f.values["fraction"] == 0.5
    assert "from the start" not in f.message and "weight decay" in f.suggestion


def test_a_gamma_started_small_is_switched_off_by_its_initialisation():
    """A gamma drawn from N(0, 0.02) (transformers' MobileViT) with half its channels below 0.01 at the
    end is a warning that says the initialisation put them there, and advises starting at 1."""
    t = _born_at_zero(healthy(), 8, 0.5)
    t.stats.loc[t.stats["tensor"] == "block.bn.weight", "tensor"] = "bn1.weight"
    t.stats.loc[(t.stats["tensor"] == "bn1.weight") & (t.stats["step"] == 0), "norm"] = 0.02 * np.sqrt(8)
    t.batchnorm.loc[(t.batchnorm["step"] == 200) & (t.batchnorm["channel"] < 4), "weight"] = 1e-3
    (f,) = [f for f in _find(t) if f.code == "bn_gamma_collapse"]
    assert f.severity == "warning" and f.values["collapsed"] == 4
    assert "and were from the start: γ started at an RMS of 0.02, where torch starts it at 1" in f.message
    assert f.suggestion.startswith("Initialise BatchNorm weights at 1")


def test_a_gamma_born_at_zero_has_not_collapsed():
    """A residual block's last BatchNorm, its gamma zero-initialised on purpose and still near zero
    on half its channels, has not collapsed; the same gamma born at 1 has."""
    for born, collapsed in ((0.0, False), (1.0, True)):
        t = _born_at_zero(healthy(), 8, 0.5)
        t.stats.loc[t.stats["tensor"] == "block.bn.weight", "tensor"] = "bn1.weight"
        t.stats.loc[(t.stats["tensor"] == "bn1.weight") & (t.stats["step"] == 0), "norm"] = born * np.sqrt(8)
        t.batchnorm.loc[(t.batchnorm["step"] == 200) & (t.batchnorm["channel"] < 4), "weight"] = 1e-3
        assert ("bn_gamma_collapse" in {f.code for f in _find(t)}) == collapsed


def test_overfitting():
    """Validation loss rising from its best while training loss keeps falling is overfitting."""
    t = healthy()
    val = t.scalars["name"] == "val_loss"
    steps = t.scalars.loc[val, "step"].to_numpy()
    t.scalars.loc[val, "value"] = 1.0 - 0.006 * steps + 0.00004 * steps**2
    (f,) = [f for f in _find(t) if f.code == "overfitting"]
    assert f.values["val_last"] > f.values["val_best"] and f.values["gap_last"] > f.values["gap_best"]
    assert f.step_range[1] == 200 and f.anchor == "curves"


def test_plateau():
    """A loss that stays at 2.3 is a plateau (underfitting)."""
    t = healthy()
    loss = t.scalars["name"] == "loss"
    t.scalars.loc[loss, "value"] = 2.3 + 0.01 * np.sin(np.arange(loss.sum()))
    (f,) = [f for f in _find(t) if f.code == "plateau"]
    assert f.severity == "warning" and "barely fell" in f.message and "lower" in f.message


def test_rising_loss_is_said_to_rise():
    """A loss that rose by half is not called "barely moved … lower"."""
    t = healthy()
    loss = t.scalars["name"] == "loss"
    t.scalars.loc[loss, "value"] = np.linspace(1.0, 1.5, loss.sum())
    (f,) = [f for f in _find(t) if f.code == "plateau"]
    assert "rose" in f.message and "higher" in f.message and "lower" not in f.message
    assert f.values["improvement"] < 0 and "lower the learning rate" in f.suggestion


def test_plateau_waits_for_a_running_run():
    """A run still being written is not judged a plateau: its loss may yet fall."""
    from types import SimpleNamespace

    t = healthy()
    loss = t.scalars["name"] == "loss"
    t.scalars.loc[loss, "value"] = 2.3
    done = SimpleNamespace(manifest={"status": "complete"}, problems=list)
    running = SimpleNamespace(manifest={"status": "running"}, problems=list)
    assert "plateau" in {f.code for f in find_all(t.stats, t.scalars, t.batchnorm, None, ORDER, done)}
    assert "plateau" not in {f.code for f in find_all(t.stats, t.scalars, t.batchnorm, None, ORDER, running)}


def test_loss_spike():
    """A single jump of the loss to 5 at step 150 is a loss spike at that step."""
    t = healthy()
    t.scalars.loc[where(t.scalars, name="loss", step=150), "value"] = 5.0
    (f,) = [f for f in _find(t) if f.code == "loss_spike"]
    assert f.steps == (150,) and f.values["worst"] == 5.0 and f.severity == "warning"
    assert f.values["climbed"] >= 0.5 and "of the loss's descent" in f.message


def test_a_small_loss_spike_is_an_info():
    """A jump that climbs back a third of the loss's descent and falls straight back (a hard batch
    near convergence) is an info, so that ``check --fail-on warning`` passes; half of the descent,
    or a third that stays up over the next ten values, is a warning; a burst of four high values is not
    the loss staying up."""
    t = healthy()
    loss = t.scalars[t.scalars["name"] == "loss"].sort_values("step")
    values = loss["value"].to_numpy()
    descent = float(values[:5].max() - values.min())
    at = where(t.scalars, name="loss", step=150)
    before = float(np.median(loss[loss["step"] < 150]["value"].to_numpy()[-20:]))
    for share, severity in ((0.33, "info"), (0.6, "warning")):
        t.scalars.loc[at, "value"] = before + share * descent
        (f,) = [f for f in _find(t) if f.code == "loss_spike"]
        assert f.severity == severity and abs(f.values["climbed"] - share) < 0.01
    t.scalars.loc[at, "value"] = before + 0.33 * descent  # a third of the way back ...
    later = loss["step"][loss["step"] > 150].to_numpy()
    for stay, severity in ((3, "info"), (10, "warning")):  # ... then a burst of four, or it stays up
        t.scalars.loc[(t.scalars["name"] == "loss") & t.scalars["step"].isin(later[:stay]), "value"] = (
            before + 0.3 * descent)
        (f,) = [f for f in _find(t) if f.code == "loss_spike"]
        stayed = "stayed up over the next 10 recorded values after step 150" in f.message
        assert f.severity == severity and stayed == (stay == 10)


def test_weight_norm_growth():
    """A weight norm growing 100-fold and still growing is reported."""
    t = healthy()
    mask = where(t.stats, tensor="fc1.weight", kind="param")
    t.stats.loc[mask, "norm"] = 3.0 * np.logspace(0, 2, mask.sum())
    (f,) = [f for f in _find(t) if f.code == "weight_norm_growth"]
    assert f.values["growth"] == pytest.approx(100.0) and f.step_range == (100, 200)


def _born_at_zero(t, numel: int, last_rms: float):
    """``t`` with a weight (bias or gamma) that starts at zero and drifts linearly to ``last_rms``."""
    rows = t.stats[where(t.stats, tensor="fc1.weight", kind="param")].copy()
    rows["tensor"], rows["numel"], rows["count"] = "block.bn.weight", numel, numel
    rows["norm"] = np.linspace(0.0, last_rms, len(rows)) * np.sqrt(numel)
    t.stats = pd.concat([t.stats, rows], ignore_index=True)
    return t


def test_a_weight_born_at_zero_grows_from_the_models_scale():
    """A weight born at zero (a residual block's last gamma) drifting steadily to an RMS of 0.06
    doubles over any second half and is 6× the RMS floor, but no blow-up beside peers at 0.1: no
    finding. Drifting to 10× its peers' scale and still growing, it is one, measured from that scale."""
    assert not [f for f in _find(_born_at_zero(healthy(), 56, 0.06)) if f.code == "weight_norm_growth"]
    (f,) = [f for f in _find(_born_at_zero(healthy(), 56, 1.0)) if f.code == "weight_norm_growth"]
    assert f.tensor == "block.bn.weight" and f.values["growth"] == pytest.approx(1.0 / 0.1)
    assert "started near zero" in f.message and "the model's early scale (RMS 0.1)" in f.message


def _small_init(t, last_rms: float):
    """``t`` with three LayerNorm gammas at 1 (the model's early scale becomes 1) and an embedding
    started at N(0, 0.02) that drifts linearly to ``last_rms``, as Adam moves it."""
    rows = t.stats[where(t.stats, tensor="fc1.weight", kind="param")].copy()
    tables = [t.stats]
    for k in range(3):
        ln = rows.copy()
        ln["tensor"], ln["numel"], ln["count"], ln["norm"] = f"ln{k}.weight", 64, 64, 8.0
        tables.append(ln)
    emb = rows.copy()
    emb["tensor"], emb["numel"], emb["count"] = "wte.weight", 4096, 4096
    emb["norm"] = np.linspace(0.02, last_rms, len(emb)) * 64.0
    t.stats = pd.concat([*tables, emb], ignore_index=True)
    return t


def test_a_weight_started_far_below_its_peers_grows_from_a_tenth_of_their_scale():
    """An embedding started at RMS 0.02 beside gammas at 1, drifting to 0.18 under Adam (a tiny
    ALBERT's tied word embeddings in 300 healthy steps), grew 9× and is still growing 1.8× over
    the second half, but only 1.8× a tenth of its peers' scale: no finding. Drifting to 2.0, 20×
    that tenth and still growing, it is one, measured from there."""
    assert not [f for f in _find(_small_init(healthy(), 0.18)) if f.code == "weight_norm_growth"]
    (f,) = [f for f in _find(_small_init(healthy(), 2.0)) if f.code == "weight_norm_growth"]
    assert f.tensor == "wte.weight" and f.values["growth"] == pytest.approx(2.0 / 0.1)
    assert "started at RMS 0.02, far below the model's early scale (RMS 1)" in f.message
    assert "20× the norm of its size at 0.1× that scale" in f.message


def _gemma_like():
    """Tables of a model whose weights all start at RMS 0.02 and whose three RMSNorm weights are
    offsets from 1, born at zero (Gemma), all drifting linearly under Adam: the norms' to an RMS of
    0.23, the tied embedding from 0.02 to 0.114. The manifest says which modules normalise."""
    t = healthy()
    t.stats.loc[t.stats["kind"] == "param", "norm"] = 0.02 * np.sqrt(t.stats["numel"])
    rows = t.stats[where(t.stats, tensor="fc1.weight", kind="param")].copy()
    tables, modules = [t.stats], [{"name": "fc1", "type": "Linear", "params": [{"name": "fc1.weight"}]},
                                  {"name": "fc2", "type": "Linear", "params": [{"name": "fc2.weight"}]}]
    for k in range(3):
        ln = rows.copy()
        ln["tensor"], ln["numel"], ln["count"] = f"layers.{k}.norm.weight", 64, 64
        ln["norm"] = np.linspace(0.0, 0.23, len(ln)) * 8.0
        tables.append(ln)
        modules.append({"name": f"layers.{k}.norm", "type": "GemmaRMSNorm",
                        "params": [{"name": f"layers.{k}.norm.weight"}]})
    emb = rows.copy()
    emb["tensor"], emb["numel"], emb["count"] = "embed.weight", 4096, 4096
    emb["norm"] = np.linspace(0.02, 0.114, len(emb)) * 64.0
    t.stats = pd.concat([*tables, emb], ignore_index=True)
    modules.append({"name": "embed", "type": "Embedding", "params": [{"name": "embed.weight"}]})
    return t, SimpleNamespace(manifest={"status": "complete", "model": {"modules": modules}}, problems=list)


def test_offset_gammas_born_at_zero_grow_from_a_gammas_scale():
    """Gemma's RMSNorm weights (offsets from a gain of 1) born at zero beside weights at 0.02 are judged
    from a gamma's scale, 1, and count at it in the model's scale: their drift to 0.23 and the tied
    embedding's to 0.114 are no finding. Without the manifest's module types they would be four."""
    t, run = _gemma_like()
    flagged = {f.tensor for f in _find(t) if f.code == "weight_norm_growth"}
    assert flagged == {"layers.0.norm.weight", "layers.1.norm.weight", "layers.2.norm.weight", "embed.weight"}
    found = find_all(t.stats, t.scalars, t.batchnorm, None, ORDER, run)
    assert not [f for f in found if f.code == "weight_norm_growth"]
    t.stats.loc[where(t.stats, tensor="layers.0.norm.weight"), "norm"] *= 50  # to an RMS of 11.5: a blow-up
    found = find_all(t.stats, t.scalars, t.batchnorm, None, ORDER, run)
    assert [f.tensor for f in found if f.code == "weight_norm_growth"] == ["layers.0.norm.weight"]


def test_every_code_is_covered():
    """Every code in CODES is produced by some check above (the list has no dead entries)."""
    assert len(CODES) == 16 and len(set(CODES)) == 16


def test_thresholds_change_findings():
    """Raising a threshold silences a finding, and ``ignore`` drops a code."""
    t = healthy()
    t.stats.loc[where(t.stats, tensor="relu1", step=200), "dead_units"] = 10
    assert _codes(t, Thresholds(dead_fraction=0.5)) == set()
    assert _codes(t, Thresholds(ignore=("dead_units",))) == set()


def test_at_or_above():
    """Filtering by level keeps errors for 'error' and errors plus warnings for 'warning'."""
    t = healthy()
    t.stats.loc[where(t.stats, tensor="relu1", step=200), "dead_units"] = 10
    t.stats.loc[where(t.stats, tensor="fc1.weight", kind="param", step=150), "nan_count"] = 1
    found = _find(t)
    assert [f.code for f in at_or_above(found, "error")] == ["nan_inf"]
    assert [f.code for f in at_or_above(found, "warning")] == ["nan_inf", "dead_units"]


def test_pyproject_table_is_found_upward(tmp_path, monkeypatch):
    """A [tool.weightreport] table in a parent's pyproject.toml sets the thresholds."""
    (tmp_path / "pyproject.toml").write_text("[tool.weightreport]\ndead_fraction = 0.5\nignore = ['plateau']\n")
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    th = load_thresholds()
    assert th.dead_fraction == 0.5 and th.ignore == ("plateau",) and th.spike_window == 20


def test_config_file_and_errors(tmp_path):
    """--config files are read at top level or under [tool.weightreport]; bad keys and files are refused."""
    flat = tmp_path / "flat.toml"
    flat.write_text("depth_ratio = 10\nspike_window = 5\n")
    assert load_thresholds(flat).depth_ratio == 10.0 and load_thresholds(flat).spike_window == 5
    nested = tmp_path / "nested.toml"
    nested.write_text("[tool.weightreport]\nbn_gamma_min = 0.1\n")
    assert load_thresholds(nested).bn_gamma_min == 0.1
    bad = tmp_path / "bad.toml"
    bad.write_text("dead_fractoin = 0.5\n")
    with pytest.raises(WeightReportError, match="unknown threshold"):
        load_thresholds(bad)
    bad.write_text("dead_fraction = 'x'\n")
    with pytest.raises(WeightReportError, match="must be a number"):
        load_thresholds(bad)
    bad.write_text("dead_fraction = \n")
    with pytest.raises(WeightReportError, match="not valid TOML"):
        load_thresholds(bad)
    with pytest.raises(WeightReportError, match="no such configuration"):
        load_thresholds(tmp_path / "missing.toml")


def test_no_pyproject_gives_defaults(tmp_path):
    """Without any pyproject.toml above, the thresholds are the documented defaults."""
    assert load_thresholds(start=tmp_path) == Thresholds()


def _train(run_dir, lr=0.05, steps=150):
    torch.manual_seed(0)
    x = torch.randn(512, 10)
    y = (x[:, :3].sum(1) > 0).long()
    model = nn.Sequential(nn.Linear(10, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 2))
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    with Collector(model, run_dir, every=10, optimizer=opt, bins=32) as wr:
        for i in range(steps):
            idx = torch.arange(i * 64, i * 64 + 64) % 512
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            wr.step(loss=loss.item())
            if i % 10 == 9:
                with torch.no_grad():
                    model.eval()
                    wr.log(val_loss=nn.functional.cross_entropy(model(x[:128]), y[:128]).item())
                    model.train()
    return run_dir


def test_healthy_training_has_no_errors(tmp_path):
    """A small MLP with BatchNorm trained normally gives no error finding from its real run directory."""
    run = load_run(_train(tmp_path / "healthy"))
    found = run_findings(run)
    assert at_or_above(found, "error") == []
    assert {f.code for f in found} <= {"update_ratio", "outliers"}


def test_diverging_training_is_an_error(tmp_path):
    """The same model at a learning rate of 1e4 diverges and gives a nan_inf or exploding error."""
    run = load_run(_train(tmp_path / "diverged", lr=1e4, steps=60))
    assert {f.code for f in at_or_above(run_findings(run), "error")} & {"nan_inf", "exploding_gradients"}


def test_steps_column_kept_small():
    """Listed steps are at most five, while the step range spans all steps seen."""
    t = healthy()
    t.stats.loc[where(t.stats, tensor="fc1.weight", kind="param"), "nan_count"] = 1
    (f,) = [f for f in _find(t) if f.code == "nan_inf"]
    assert len(f.steps) == 5 and f.step_range == (int(STEPS[0]), int(STEPS[-1]))
