"""Checks on the recorded tensors: non-finite values, gradients, updates, outliers,
units and BatchNorm. Each is a pure function ``Inputs → [Finding]``, declared with
``@check`` (registered in definition order; this module's checks run first)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from weightreport.report.analysis.finding import (
    EARLY_SCALE_QUANTILE,
    LOSS,
    NEAR_ZERO_RMS,
    Finding,
    Inputs,
    at_last,
    check,
    finding,
    first_rms,
    scaled,
    series,
)
from weightreport.report.analysis.sampling import late_steps
from weightreport.runfmt.calls import call_label, split_call


def _early_late(g: pd.DataFrame, col: str) -> tuple[float, float]:
    """Median of ``col`` over the first quarter and over the last quarter of the rows."""
    q = max(1, len(g) // 4)
    return float(g[col].iloc[:q].median()), float(g[col].iloc[-q:].median())


@check("nan_inf", anchor=("stats", "curves"))
def check_nan_inf(data: Inputs) -> list[Finding]:
    """NaN or Inf elements in any recorded tensor, and non-finite scalars."""
    stats, scalars = data.stats, data.scalars
    out = []
    bad = stats[(stats["nan_count"] > 0) | (stats["inf_count"] > 0)]
    for (tensor, kind), g in bad.groupby(["tensor", "kind"], sort=True):
        nan, inf = int(g["nan_count"].max()), int(g["inf_count"].max())
        out.append(finding(
            "nan_inf", "error", tensor, g["step"],
            f"{kind} of {call_label(tensor) if kind not in ('param', 'grad') else tensor} holds non-finite "
            f"values (up to {nan} NaN and {inf} Inf) "
            f"at {len(g)} snapshot(s)",
            "Lower the learning rate, clip gradients, or check the inputs and the loss for "
            "divisions by zero and log(0).", "stats", measure="nonfinite", nan=nan, inf=inf,
            nonfinite=nan + inf, snapshots=len(g)))
    if len(scalars):
        bad_s = scalars[~np.isfinite(scalars["value"].to_numpy(dtype=float))]
        for name, g in bad_s.groupby("name", sort=True):
            out.append(finding(
                "nan_inf", "error", name, g["step"],
                f"scalar {name} is NaN or infinite at {len(g)} step(s)",
                "Training diverged: lower the learning rate or add gradient clipping.", "curves",
                measure="steps_bad", steps_bad=len(g)))
    return out


def _grads(data: Inputs) -> pd.DataFrame:
    g = data.stats[(data.stats["kind"] == "grad") & np.isfinite(data.stats["norm"])]
    return g.sort_values(["tensor", "step"])


def _loss_fall(scalars: pd.DataFrame) -> float:
    """The training loss's median over its last quarter of points over that of its first, at most
    1 (1 without a positive loss): gradients may fall as far as the loss itself did."""
    loss = series(scalars, LOSS)
    if len(loss) < 4:
        return 1.0
    early, late = _early_late(loss, "value")
    return min(late / early, 1.0) if early > 0 and late > 0 else 1.0


@check("exploding_gradients", "vanishing_gradients", anchor="dynamics")
def check_gradients_over_time(data: Inputs) -> list[Finding]:
    """Gradient norms growing far above, or falling far below, their early values.

    Growth is measured from the tensor's early median, or from the scale of the model's early
    gradients (``EARLY_SCALE_QUANTILE``, per element) where the tensor's own started below it. From a
    small initialisation (transformers' std of 0.02) attention's query and key gradients start
    10–400 times below the model's median, because the attention is uniform, and the
    embeddings' while the loss sits at chance; they grow as the model starts to learn. In
    four healthy runs of BERT and ViT (``tests/test_healthy_transformers.py``) they grew up to
    4,600× from their own start, but 55× at most from the model's early scale. A gradient
    that explodes outgrows both.

    A gradient vanishes when it falls ``vanishing_drop`` times further than the training
    loss did (``_loss_fall``): near a cross-entropy loss of 0 the gradients shrink with it,
    and a transformer that solved its task (loss 1.1 → 2e-4) had every gradient 1,000× below
    its start.
    """
    th, out = data.thresholds, []
    tensors = [(tensor, g, *_early_late(g, "norm"), math.sqrt(max(float(g["numel"].iloc[-1]), 1.0)))
               for tensor, g in _grads(data).groupby("tensor", sort=True)]
    # The scale of the model's early gradients: nine tensors in ten start at or below it, per element.
    starts = [early / size for _tensor, _g, early, _late, size in tensors]
    scale = float(np.quantile(starts, EARLY_SCALE_QUANTILE)) if starts else 0.0
    fall = _loss_fall(data.scalars)
    for tensor, g, early, late, size in tensors:
        if len(g) < 4 or early <= 0:
            continue
        growth = late / early
        base = max(early, scale * size)  # the early norm it grows from
        grown = late / base
        if grown >= th.exploding_growth:
            sev = "error" if grown >= th.exploding_growth_error else "warning"
            hit = g[g["norm"] >= th.exploding_growth * base]["step"]
            start = (f"from its early median ({early:.3g} → {late:.3g})" if base == early else
                     f"from its early median ({early:.3g} → {late:.3g}), {grown:.3g}× from the scale of "
                     f"the model's early gradients")
            out.append(finding(
                "exploding_gradients", sev, tensor, hit,
                f"the gradient norm of {tensor} grew {growth:.3g}× {start}",
                "Clip gradients (torch.nn.utils.clip_grad_norm_), lower the learning rate, or add "
                "normalisation.", "dynamics", measure="growth", early_norm=early, late_norm=late, growth=growth))
        elif growth <= th.vanishing_drop * fall:
            hit = g[g["norm"] <= th.vanishing_drop * fall * early]["step"]
            loss_note = f", while the training loss fell to {fall:.3g}× its start" if fall < 1 else ""
            out.append(finding(
                "vanishing_gradients", "warning", tensor, hit,
                f"the gradient norm of {tensor} fell to {growth:.3g}× its early median "
                f"({early:.3g} → {late:.3g}){loss_note}",
                "Check for saturated activations or dead units; residual connections, "
                "normalisation or a better initialisation keep gradients flowing.", "dynamics",
                measure="growth", worse="lower", early_norm=early, late_norm=late, growth=growth))
    return out


@check("exploding_gradients", "vanishing_gradients", anchor="dynamics")
def check_gradients_across_depth(data: Inputs) -> list[Finding]:
    """The first weight layer's gradient RMS far above or below the last layer's."""
    g = at_last(_grads(data))
    g = g[g["tensor"].str.endswith("weight") & (g["numel"] > 1)]
    if len(g) < 2:
        return []
    rank = {name: i for i, name in enumerate(data.order)}
    g = g.assign(rank=g["tensor"].map(lambda n: rank.get(n, 1 << 30)),
                 rms=g["norm"] / np.sqrt(g["numel"].astype(float))).sort_values(["rank", "tensor"])
    first, last = g.iloc[0], g.iloc[-1]
    if not (first["rms"] > 0 and last["rms"] > 0):
        return []
    ratio = float(first["rms"] / last["rms"])
    th = data.thresholds.depth_ratio
    if ratio >= th:
        code, word = "exploding_gradients", "larger"
        hint = "Lower the learning rate or add normalisation; check the initialisation's gain."
    elif ratio <= 1 / th:
        code, word = "vanishing_gradients", "smaller"
        hint = ("Use residual connections, normalisation, ReLU-family activations or a "
                "variance-preserving initialisation (Kaiming/Xavier).")
    else:
        return []
    steps = [int(first["step"])]
    return [finding(
        code, "warning", str(first["tensor"]), steps,
        f"across depth, the gradient RMS of the first layer {first['tensor']} is {ratio:.3g}× that of "
        f"the last, {last['tensor']} ({first['rms']:.3g} vs {last['rms']:.3g}): {word} by far",
        hint, "dynamics", measure="ratio", worse="higher" if ratio > 1 else "lower",
        first_rms=float(first["rms"]), last_rms=float(last["rms"]), ratio=ratio)]


@check("update_ratio", anchor="dynamics")
def check_update_ratio(data: Inputs) -> list[Finding]:
    """Median per-step update-to-weight ratio far from about 1e-3 (frozen parameters are left out, and a
    weight near zero counts only from the first snapshot whose RMS reaches ``NEAR_ZERO_RMS``)."""
    th, out, frozen = data.thresholds, [], data.frozen
    p = data.stats[data.stats["kind"] == "param"].sort_values(["tensor", "step"])
    for tensor, g in p.groupby("tensor", sort=True):
        if tensor in frozen:  # not trained on purpose: no update is expected
            continue
        gap = g["step"].diff()
        ratio = g["update_ratio"].where(scaled(g).shift(1, fill_value=False))  # relative to a real scale
        per_step = (ratio / gap.where(gap > 0)).to_numpy(dtype=float)
        per_step = per_step[np.isfinite(per_step)]
        if per_step.size < 2:
            continue
        med = float(np.median(per_step))
        if med > th.update_ratio_high:
            sev, msg = "warning", "high"
            hint = "Lower the learning rate (or this layer's): updates this large rewrite the weights."
        elif med < th.update_ratio_low:
            sev, msg = "info", "low"
            hint = ("Raise the learning rate, or check that this layer is meant to train; a bias just "
                    "before BatchNorm gets no gradient and can be dropped (bias=False).")
        else:
            continue
        out.append(finding(
            "update_ratio", sev, tensor, g["step"].iloc[1:],
            f"the median update-to-weight ratio of {tensor} is {med:.3g} per step, too {msg} "
            f"(about 1e-3 is typical)", hint, "dynamics", measure="median_ratio",
            worse="higher" if msg == "high" else "lower", median_ratio=med,
            low=th.update_ratio_low, high=th.update_ratio_high))
    return out


LAPLACE_BEYOND_6SD = math.exp(-6 * math.sqrt(2))
"""The fraction of a Laplace distribution beyond 6σ (2.1e-4). Trained weights are heavy-tailed,
often close to Laplace, so that many values beyond 6σ is their normal tail, not outliers."""
TAIL_ALLOWANCE = 2.0
"""Values beyond 6σ warn above this many times a Laplace tail's count: a large tensor that is
Laplace-distributed sits at 1× (give or take its sampling noise), never near 2×."""
TAIL_CHANCE = 1e-3
"""... and only where a Laplace tail of the tensor's size would show as many values beyond 6σ,
or one as far out as its largest, less often than this. A small tensor's count is mostly
chance: a 384-value attention bias with one value at 6.9σ (GPT-2, 400 healthy steps) is what
a Laplace tail of its size shows 8 % of the time."""


def _poisson_tail(count: int, mean: float) -> float:
    """P(X ≥ count) for X ~ Poisson(mean), where count > mean: the series of the regularised
    lower incomplete gamma function P(count, mean), summed in float64."""
    if count <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    term, total, k = 1.0, 1.0, count
    while term > 1e-17 * total:
        k += 1
        term *= mean / k
        total += term
    return min(1.0, math.exp(count * math.log(mean) - mean - math.lgamma(count + 1)) * total)


def laplace_reach(n: float) -> float:
    """The |z| that the largest of ``n`` Laplace values exceeds with probability ``TAIL_CHANCE``:
    P(|x| > zσ) = exp(−z√2) for each, so about n·exp(−z√2) for the largest."""
    return (math.log(max(n, 1.0)) - math.log(TAIL_CHANCE)) / math.sqrt(2)
GAUSSIAN_BEYOND_IQR, LAPLACE_BEYOND_IQR = 0.007, 0.0625
"""The fractions of a Gaussian and of a Laplace distribution beyond the 1.5·IQR fences."""


@check("outliers", anchor="outliers")
def check_outliers(data: Inputs) -> list[Finding]:
    """Values beyond 6σ, more than a Laplace tail has (warning); or tails heavier than it (info).

    A tensor is warned about when it holds more values beyond 6σ than ``outlier_z_count``, and
    either more than twice as many as a Laplace distribution of its size would
    (``TAIL_ALLOWANCE`` × ``LAPLACE_BEYOND_6SD`` of its values) and more than its chance
    would give (``TAIL_CHANCE``), or its largest value lies further out than a Laplace tail of
    its size reaches but by that chance (``laplace_reach``). A tensor of at least
    ``outlier_min_numel`` values whose fraction beyond the 1.5·IQR fences exceeds
    ``outlier_iqr_fraction`` (default 0.1, above a Laplace's 0.0625) gets an info.

    Where the tensor's first snapshot already met the same test, the outliers come from its
    initialisation, not from training, and the message and the advice say so: timm's
    ``trunc_normal_(std=0.02, a=-2, b=2)`` turns a uniform draw of exactly −1 into −inf and
    clamps it to −2, and one of a Swin's 1.8M-value qkv weights sat at 84σ from step 0.
    """
    th, out = data.thresholds, []
    p = data.stats[data.stats["kind"] == "param"]
    if p.empty:
        return []
    p = p[p["outliers_6std"].notna() & p["outliers_iqr"].notna()]  # an imported run may not know them
    first = {row.tensor: row for row in p.sort_values("step").drop_duplicates("tensor").itertuples()}
    for row in at_last(p).sort_values("tensor").itertuples():
        z_count, iqr = int(row.outliers_6std), int(row.outliers_iqr)
        frac = iqr / row.count if row.count > 0 and row.count >= th.outlier_min_numel else 0.0
        flagged, many, z, expected, tail, reach = _beyond_chance(row, th)
        values = dict(outliers_6std=z_count, outliers_iqr=iqr, iqr_fraction=frac, max_abs_z=z,
                      laplace_6std=tail, laplace_reach=reach)
        if flagged:
            than = (f"more than twice the {expected:.1f} that a heavy, Laplace-like tail of {int(row.count)} "
                    "values would have" if many else
                    f"further out than a heavy, Laplace-like tail of {int(row.count)} values reaches "
                    f"(|z| = {reach:.1f}) but once in {1 / TAIL_CHANCE:,.0f} times")
            start = first[row.tensor]
            hint = "Look for a few exploding units; weight decay or gradient clipping keeps them bounded."
            from_init, _many, start_z, *_ = _beyond_chance(start, th)
            if start.step < row.step and from_init:
                they = ("they were", "they come") if z_count > 1 else ("it was", "it comes")
                than += (f"; {they[0]} there at the first snapshot (step {start.step}, "
                         f"largest |z| = {start_z:.1f}), so {they[1]} from the initialisation")
                hint = "Check how the tensor is initialised: training did not put these values there."
            out.append(finding(
                "outliers", "warning", row.tensor, [row.step],
                f"{row.tensor} has {z_count} value(s) beyond 6σ at the last snapshot (largest |z| = {z:.1f}), "
                f"{than}", hint, "outliers", measure="max_abs_z", **values))
        elif frac > th.outlier_iqr_fraction:
            out.append(finding(
                "outliers", "info", row.tensor, [row.step],
                f"{frac:.1%} of {row.tensor}'s values lie beyond the 1.5·IQR fences at the last snapshot "
                f"(a Gaussian puts {GAUSSIAN_BEYOND_IQR:.1%} there, a Laplace {LAPLACE_BEYOND_IQR:.1%}): "
                "tails heavier than trained weights usually have",
                "Check the outliers section for a few units that carry most of the weight; weight decay "
                "keeps tails in check.", "outliers", measure="iqr_fraction", **values))
    return out


def _max_abs_z(row) -> float:
    """The largest |z| of a stats row's values, from its range, mean and std."""
    return max(abs(row.max - row.mean), abs(row.min - row.mean)) / row.std if row.std > 0 else math.inf


def _beyond_chance(row, th) -> tuple[bool, bool, float, float, float, float]:
    """Whether a stats row's values beyond 6σ are a warning (``check_outliers``), whether by their
    number, its largest |z|, the Laplace count expected beyond 6σ, twice that, and its reach."""
    z_count = int(row.outliers_6std)
    expected = LAPLACE_BEYOND_6SD * row.count
    tail = TAIL_ALLOWANCE * expected
    z, reach = _max_abs_z(row), laplace_reach(row.count)
    many = z_count > tail and _poisson_tail(z_count, expected) < TAIL_CHANCE
    return z_count > th.outlier_z_count and (many or z > reach), many, z, expected, tail, reach


def _module_types(data: Inputs) -> dict[str, str]:
    """Module name → its type's name, from the manifest."""
    return {str(m.get("name")): str(m.get("type", "")) for m in (data.manifest.get("model") or {}).get("modules") or []}


def _type_of(name: str, types: dict[str, str]) -> str:
    """The module type of a recorded module name or of a reused module's later call (``relu#2``)."""
    return types.get(split_call(name, types)[0], "")


SMOOTH_KINDS = ("GELU", "SiLU", "Mish", "Softplus", "GELUActivation", "NewGELUActivation", "GELUTanh",
                "PytorchGELUTanh", "FastGELUActivation", "AccurateGELUActivation", "QuickGELUActivation",
                "SiLUActivation", "MishActivation")
"""Activations whose units die where the slope falls below 1e-3 (``collect.units.SMOOTH``, and
transformers' own modules for them, ``collect.units.TRANSFORMERS``)."""
DEAD_WORDS = {"Hardswish": "dead (always 0: inputs below −3)",
              **dict.fromkeys(SMOOTH_KINDS, "dead (slope below 1e-3)")}
"""How a dead unit is described, by module type; any other type: "dead (never positive)"."""
DEAD_HINTS = {
    "exact": "Lower the learning rate, use LeakyReLU/GELU, or check the initialisation.",
    "smooth": "Its inputs sit far below zero, where the slope vanishes: normalise them (BatchNorm, "
              "LayerNorm), check the initialisation and the biases, or lower the learning rate.",
}


def _units(data: Inputs, col: str, code: str, warn: float, err: float, word, hint) -> list[Finding]:
    """Findings for layers whose fraction of ``col`` units reaches ``warn``; ``word`` and ``hint``
    are functions of the layer's module type, so the message and the advice fit the layer."""
    act = data.stats[(data.stats["kind"] == "activation") & data.stats["units"].notna() & (data.stats["units"] > 0)]
    act = act[act[col].notna()]
    if act.empty:
        return []
    act = act.assign(frac=act[col] / act["units"])
    types, out = _module_types(data), []
    for row in at_last(act).sort_values("tensor").itertuples():
        if row.frac < warn:
            continue
        kind = _type_of(row.tensor, types)
        hit = act[(act["tensor"] == row.tensor) & (act["frac"] >= warn)]["step"]
        out.append(finding(
            code, "error" if row.frac >= err else "warning", row.tensor, hit,
            f"{int(getattr(row, col))} of {int(row.units)} units of {call_label(row.tensor, types)} ({row.frac:.0%}) "
            f"are {word(kind)} on the whole batch at the last snapshot", hint(kind), "activations",
            measure="fraction", fraction=row.frac, units=int(row.units), count=int(getattr(row, col))))
    return out


@check("dead_units", anchor="activations")
def check_dead_units(data: Inputs) -> list[Finding]:
    """Layers that can die (ReLU, GELU, ...) whose fraction of dead units reaches the threshold."""
    th = data.thresholds

    def word(kind: str) -> str:
        return DEAD_WORDS.get(kind, "dead (never positive)")

    def hint(kind: str) -> str:
        return DEAD_HINTS["smooth" if kind in SMOOTH_KINDS else "exact"]

    return _units(data, "dead_units", "dead_units", th.dead_fraction, th.dead_fraction_error, word, hint)


@check("saturated_units", anchor="activations")
def check_saturated_units(data: Inputs) -> list[Finding]:
    """tanh, sigmoid and clamping layers whose fraction of saturated units reaches the threshold."""
    th = data.thresholds

    def hint(kind: str) -> str:
        if kind in ("Hardtanh", "Hardsigmoid"):
            return "Normalise the layer's input (BatchNorm/LayerNorm) or lower the learning rate."
        return ("Normalise the layer's input (BatchNorm/LayerNorm), lower the learning rate, or "
                "use a non-saturating activation.")

    return _units(data, "saturated_units", "saturated_units", th.saturated_fraction,
                  th.saturated_fraction_error, lambda kind: "saturated", hint)


@check("bn_drift", anchor="batchnorm")
def check_bn_drift(data: Inputs) -> list[Finding]:
    """Running statistics far from the batch statistics over the last quarter of the run's snapshots
    (``late_steps`` of the stats table's steps, where the readers read the BatchNorm table)."""
    bn, th, out = data.batchnorm, data.thresholds, []
    bn = bn[bn["running_mean"].notna() & bn["running_var"].notna() & bn["batch_mean"].notna()
            & bn["step"].isin(late_steps(data.stats["step"]))]
    if bn.empty:
        return []
    for module, late in bn.groupby("module", sort=True):
        rstd = np.sqrt(late["running_var"].clip(lower=0) + 1e-5)
        shift = ((late["batch_mean"] - late["running_mean"]).abs() / rstd).groupby(late["step"]).median()
        ratio = (late["batch_var"] / late["running_var"].where(late["running_var"] > 0)).groupby(late["step"]).median()
        m, r = float(shift.median()), float(ratio.median())
        if not (m > th.bn_drift_mean or r > th.bn_drift_var_ratio or r < 1 / th.bn_drift_var_ratio):
            continue
        out.append(finding(
            "bn_drift", "warning", str(module), late["step"],
            f"the running statistics of {call_label(str(module))} differ from its batch statistics: batch means "
            f"are {m:.3g} running std from the running means, batch variance is {r:.3g}× the running "
            f"variance (median over channels, last snapshots)",
            "Eval-mode outputs will differ from training: use a larger batch, a smaller BatchNorm "
            "momentum, or recompute the statistics (torch.optim.swa_utils.update_bn).", "batchnorm",
            measure="mean_shift", mean_shift=m, var_ratio=r))
    return out


SMALL_GAMMA_START = 10.0
"""A gamma whose first RMS is below this many times ``bn_gamma_min`` started switched off in part."""


@check("bn_gamma_collapse", anchor="batchnorm")
def check_bn_gamma_collapse(data: Inputs) -> list[Finding]:
    """BatchNorm layers whose gamma has collapsed towards zero on many channels (a reused layer's
    later calls share its gamma, so only its own rows are read).

    A gamma born at zero (its ``weight``'s first recorded RMS below ``NEAR_ZERO_RMS``) is left out:
    a residual block's last BatchNorm starts at γ = 0 on purpose, so that the block starts as the
    identity (timm's ResNets and RegNets by default). After 200 healthy steps of AdamW at 1e-3, a
    timm ResNet-50 still had 40–98 % of those channels below 0.01, growing; a collapse is a gamma
    that falls there from a scale of its own.

    A gamma that started small but not at zero (first RMS below ``SMALL_GAMMA_START`` × the
    threshold) is still a warning, for its channels are as switched off, but the message says the
    initialisation put them there and the advice is to start at 1: transformers' MobileViT draws
    every BatchNorm weight from N(0, 0.02), and after 200 steps of AdamW 27–83 % of the channels
    of 30 of its layers were below 0.01."""
    bn, th, out = data.batchnorm, data.thresholds, []
    types = _module_types(data)
    start = first_rms(data.stats)
    born = set(start.index[start < NEAR_ZERO_RMS])
    own = {n for n in bn["module"].unique()
           if split_call(str(n), types)[1] == 1 and f"{n}.weight" not in born}  # per name, not per row
    bn = bn[bn["weight"].notna() & bn["module"].isin(own)]
    if bn.empty:
        return []
    for module, g in at_last(bn, "module").groupby("module", sort=True):
        small = int((g["weight"].abs() < th.bn_gamma_min).sum())
        frac = small / len(g)
        if frac < th.bn_gamma_fraction:
            continue
        began = start.get(f"{module}.weight", math.nan)
        if began < SMALL_GAMMA_START * th.bn_gamma_min:
            why = (f", and were from the start: γ started at an RMS of {began:.3g}, where torch starts it "
                   f"at 1")
            advice = "Initialise BatchNorm weights at 1 (torch's default, nn.init.ones_), not near zero."
        else:
            why, advice = "", "Exclude BatchNorm weights from weight decay, or lower the learning rate."
        out.append(finding(
            "bn_gamma_collapse", "warning", str(module), g["step"],
            f"{small} of {len(g)} channels of {module} ({frac:.0%}) have |γ| below "
            f"{th.bn_gamma_min:g} at the last snapshot: those channels are switched off{why}",
            advice, "batchnorm",
            measure="fraction", fraction=frac, collapsed=small, median_abs_gamma=float(g["weight"].abs().median())))
    return out
