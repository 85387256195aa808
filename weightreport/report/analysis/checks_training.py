"""Checks on how training went over time: overfitting, plateau and loss spikes in the loss
curves, and weight norms that keep growing. Each is a pure ``Inputs → [Finding]``,
declared with ``@check``; they run after ``checks_tensors``' checks."""

from __future__ import annotations

import math

import numpy as np

from weightreport.report.analysis.finding import (
    EARLY_SCALE_QUANTILE,
    LOSS,
    NEAR_ZERO_RMS,
    VAL_LOSS,
    Finding,
    Inputs,
    check,
    finding,
    first_rms,
    scaled,
    series,
)

GROWTH_FLOOR_RMS = 1e-2
"""Norm growth is measured from a norm of at least this RMS, so that tensors born near zero
(biases, ViT's N(0, 1e-6) ones) are no finding while they grow to an ordinary scale."""
SMALL_INIT_SHARE = 0.1
"""... and from at least this share of the model's early scale (``_model_scale``): a tensor
started far below its peers (transformers' embeddings at N(0, 0.02) beside LayerNorm gammas at
1) reaching a tenth of their scale has grown into an ordinary one, not blown up."""
GAMMA_SCALE = 1.0
"""A normalisation layer's weight born at zero grows from at least this RMS, a gamma's own scale:
it is a zero-initialised gamma beside peers at 1 (timm's residual blocks), or an offset that the
layer adds to 1 (Gemma's RMSNorm multiplies by ``1 + weight``), never a weight with no scale."""
MIN_POINTS = 10


@check("overfitting", anchor="curves")
def check_overfitting(data: Inputs) -> list[Finding]:
    """Validation loss rising from its best while the training loss falls and the gap grows."""
    th = data.thresholds
    val, train = series(data.scalars, VAL_LOSS), series(data.scalars, LOSS)
    if len(val) < 4 or len(train) < 4:
        return []
    best = int(val["value"].idxmin())
    v_best, v_last = float(val["value"].iloc[best]), float(val["value"].iloc[-1])
    if best == len(val) - 1 or v_best <= 0 or v_last < v_best * (1 + th.overfit_rise):
        return []
    window = max(1, len(train) // 20)
    smooth = train["value"].rolling(window, min_periods=1).mean().to_numpy()
    t_best = float(np.interp(val["step"].iloc[best], train["step"], smooth))
    t_last = float(np.interp(val["step"].iloc[-1], train["step"], smooth))
    gap_best, gap_last = v_best - t_best, v_last - t_last
    if t_last >= t_best or gap_last <= 0 or gap_last < th.overfit_gap_growth * max(gap_best, 1e-12):
        return []
    s0, s1 = int(val["step"].iloc[best]), int(val["step"].iloc[-1])
    return [finding(
        "overfitting", "warning", "", [s0, s1],
        f"validation loss rose {v_last / v_best - 1:.0%} from its best ({v_best:.4g} at step {s0}) to "
        f"{v_last:.4g} while training loss fell ({t_best:.4g} → {t_last:.4g}); the gap grew "
        f"from {gap_best:.3g} to {gap_last:.3g}",
        "Stop earlier (keep the best checkpoint), add regularisation (weight decay, dropout, "
        "augmentation) or use more data.", "curves",
        val_best=v_best, val_last=v_last, train_at_best=t_best, train_last=t_last,
        gap_best=gap_best, gap_last=gap_last)]


@check("plateau", anchor="curves")
def check_plateau(data: Inputs) -> list[Finding]:
    """The training loss of a finished run barely falling from its start (underfitting), or rising.

    A run still being written (status ``running``) is not judged: its loss may yet fall.
    """
    loss = series(data.scalars, LOSS)
    if len(loss) < MIN_POINTS or data.manifest.get("status") == "running":
        return []
    k = max(1, len(loss) // 10)
    start, end = float(loss["value"].iloc[:k].mean()), float(loss["value"].iloc[-k:].mean())
    if start == 0 or not (math.isfinite(start) and math.isfinite(end)):
        return []
    improvement = (start - end) / abs(start)
    if improvement >= data.thresholds.plateau_improvement:
        return []
    values = dict(start=start, end=end, improvement=improvement)
    where = f"{start:.4g} over the first 10% of steps and {end:.4g} over the last 10%"
    if improvement < 0:
        return [finding(
            "plateau", "warning", "", loss["step"],
            f"the training loss rose: {where} ({-improvement:.1%} higher)",
            "Training is not converging: lower the learning rate, check the labels and the loss, "
            "or clip gradients.", "curves", **values)]
    return [finding(
        "plateau", "warning", "", loss["step"],
        f"the training loss barely fell: {where} (only {improvement:.1%} lower)",
        "The model is underfitting: raise the learning rate, train longer, check the labels and "
        "the loss, or use a larger model.", "curves", **values)]


START = 5
"""A loss's start is the largest of its first this many values (it can halve within five
steps, so a median of them, or of a longer window, would start it partway down)."""


def _descent(values: np.ndarray) -> float:
    """How far a loss came down: its start (``START``) less its minimum (≥ 0)."""
    return max(float(np.max(values[:START])) - float(values.min()), 0.0)


STAY = 10
"""A loss stays up after a spike when the median of this many values after it is above all
of the values before it (``_persists``)."""


def _persists(values: np.ndarray, i: int, window: int) -> bool:
    """Whether the loss stays up after a spike at ``i``: the median of the next ``STAY`` values
    is above every one of the ``window`` values before the spike. A hard batch, or a burst of
    a few near convergence, falls back within the range the loss had just shown: a tiny BERT
    at step 341 of 400 jumped to 0.29 and its next three values had a median of 0.16, above
    the 20 before (at most 0.13), but the next ten had one of 0.07. A spike fewer than
    ``STAY`` values before the end cannot be seen to stay up."""
    after = values[i + 1 : i + 1 + STAY]
    return after.size == STAY and float(np.median(after)) > float(np.max(values[max(0, i - window):i]))


def spikes(values: np.ndarray, window: int, factor: float, relative: float, range_frac: float) -> np.ndarray:
    """Indices of values far above the median of the ``window`` values before them.

    A spike is more than ``factor`` robust deviations (1.4826 · MAD) above that median,
    more than ``relative`` × |median| above it, and more than ``range_frac`` × the
    series' descent (``_descent``) above it.
    """
    n = values.size
    lo = max(5, window // 2)
    if n <= lo:
        return np.empty(0, dtype=np.int64)
    descent = _descent(values)
    hits = []
    for i in range(lo, n):
        prev = values[max(0, i - window):i]
        med = float(np.median(prev))
        mad = 1.4826 * float(np.median(np.abs(prev - med)))
        jump = values[i] - med
        if (jump > factor * max(mad, 1e-12 * abs(med), 1e-300) and jump > relative * abs(med)
                and jump > range_frac * descent):
            hits.append(i)
    return np.asarray(hits, dtype=np.int64)


@check("loss_spike", anchor="curves")
def check_loss_spike(data: Inputs) -> list[Finding]:
    """Sudden jumps of the training loss above its recent median: a warning where one climbs back
    ``spike_warning`` of the loss's descent or more, or where the loss stays up after it
    (``_persists``), else an info (a single hard batch)."""
    th = data.thresholds
    loss = series(data.scalars, LOSS)
    if len(loss) < MIN_POINTS:
        return []
    values = loss["value"].to_numpy(dtype=float)
    idx = spikes(values, th.spike_window, th.spike_factor, th.spike_relative, th.spike_range)
    if idx.size == 0:
        return []
    worst = int(idx[np.argmax(values[idx])])
    descent = _descent(values)
    before = {i: float(np.median(values[max(0, i - th.spike_window):i])) for i in idx.tolist()}
    share = max(values[i] - b for i, b in before.items()) / descent if descent > 0 else math.inf
    stays = [i for i in before if _persists(values, i, th.spike_window)]
    severity = "warning" if share >= th.spike_warning or stays else "info"
    climbed = f", climbing back {share:.0%} of the loss's descent" if math.isfinite(share) else ""
    if stays:
        at = int(loss["step"].iloc[stays[0]])
        climbed += f"; it stayed up over the next {STAY} recorded values after step {at}"
    return [finding(
        "loss_spike", severity, "", loss["step"].iloc[idx],
        f"the training loss jumped {idx.size} time(s) far above its recent median; the largest "
        f"reached {values[worst]:.4g} at step {int(loss['step'].iloc[worst])}{climbed}",
        "Lower the learning rate or add warm-up, clip gradients, and look for bad batches at "
        "those steps.", "curves", spikes=int(idx.size), worst=float(values[worst]),
        climbed=float(share))]


@check("weight_norm_growth", anchor="stats")
def check_weight_norm_growth(data: Inputs) -> list[Finding]:
    """Weight norms growing many-fold and still growing at the end. Frozen parameters are left out; a
    weight near zero counts from the first snapshot whose RMS reaches ``NEAR_ZERO_RMS``, and growth is
    measured from at least an RMS of ``GROWTH_FLOOR_RMS`` (a bias born at zero growing to 0.02 is
    no blow-up).

    A weight born at zero (its first recorded RMS below ``NEAR_ZERO_RMS``) has no scale of its own:
    its growth counts from the model's scale at its first snapshot (``_model_scale``). Drifting away
    from zero at a steady pace, its norm doubles over any second half, and 5× a floor far below
    its peers is soon passed: timm's RegNetX-200MF zero-initialises the last BatchNorm gamma of each
    block, and in 200 healthy steps of AdamW one grew to an RMS of 0.06 (its peers' gammas are 1),
    6× the floor and still doubling. A normalisation layer's weight born at zero grows from at least
    ``GAMMA_SCALE``: Gemma stores its RMSNorm weights as offsets from 1, all zero at first, in a
    model whose other tensors start at 0.02, and 300 healthy steps moved three of them to an RMS
    of 0.12–0.23, 6–11× that scale.

    Every other weight counts from at least ``SMALL_INIT_SHARE`` of that scale. Under Adam a
    weight moves about the learning rate per element per step whatever its size, so one started
    far below its peers drifts up at a steady pace: a tiny ALBERT's word embeddings (RMS 0.02,
    tied to the output layer beside LayerNorm gammas at 1) reached 0.18 in 300 healthy steps of
    AdamW at 1e-3, 9× their start and still growing 1.33× over the second half, and BART's
    shared embeddings 0.12; from 0.1 they grew 1.8× and 1.2×."""
    th, out, frozen, gammas = data.thresholds, [], data.frozen, data.gammas
    p = data.stats[(data.stats["kind"] == "param") & np.isfinite(data.stats["norm"])].sort_values(["tensor", "step"])
    start = first_rms(data.stats)
    model = _model_scale(start.drop(list(frozen), errors="ignore"), gammas)
    for tensor, g in p.groupby("tensor", sort=True):
        if tensor in frozen:
            continue
        born_at_zero = start[tensor] < NEAR_ZERO_RMS
        g = g[scaled(g)]
        if len(g) < 3:
            continue
        norms = g["norm"].to_numpy(dtype=float)
        size = math.sqrt(max(float(g["numel"].iloc[0]), 1.0))
        scale = model * (1.0 if born_at_zero else SMALL_INIT_SHARE)
        if born_at_zero and tensor in gammas:
            scale = max(scale, GAMMA_SCALE)
        floor = max(GROWTH_FLOOR_RMS, scale) * size
        first, mid, last = max(norms[0], floor), max(norms[len(norms) // 2], floor), norms[-1]
        if first <= 0 or mid <= 0:
            continue
        growth, late = last / first, last / mid
        if growth >= th.weight_norm_growth and late >= th.weight_norm_late_growth:
            if born_at_zero and first == floor:
                at = "a gamma's scale" if scale > model else "the model's early scale"
                grew = (f", which started near zero, grew to {last:.3g}, {growth:.3g}× the norm of its size at "
                        f"{at} (RMS {scale:.3g}),")
            elif first == floor > norms[0]:
                grew = (f", which started at RMS {norms[0] / size:.3g}, far below the model's early scale "
                        f"(RMS {model:.3g}), grew to {last:.3g}, {growth:.3g}× the norm of its size at "
                        f"{SMALL_INIT_SHARE:g}× that scale,")
            else:
                grew = f" grew {growth:.3g}× ({first:.3g} → {last:.3g})"
            out.append(finding(
                "weight_norm_growth", "warning", tensor, g["step"].iloc[len(norms) // 2:],
                f"the norm of {tensor}{grew} and was still growing {late:.3g}× over the second half",
                "Add weight decay, lower the learning rate, or normalise the layer.", "stats",
                measure="growth", first_norm=first, last_norm=last, growth=growth, late_growth=late))
    return out


def _model_scale(start, gammas: set[str]) -> float:
    """The model's weight scale at its first snapshot, from each tensor's first RMS (``first_rms``):
    nine tensors in ten (of those not born at zero) start at or below this per-element RMS
    (``EARLY_SCALE_QUANTILE``, as for gradients). In a network with BatchNorm or LayerNorm it is
    their gammas' 1; in a plain MLP its largest layers' 1/√fan_in. A normalisation layer's weight
    born at zero counts at ``GAMMA_SCALE``: Gemma's RMSNorm weights are offsets, 0 for a gain of 1."""
    start = start.where(~(start.index.isin(list(gammas)) & (start < NEAR_ZERO_RMS)), GAMMA_SCALE)
    starts = start[start >= NEAR_ZERO_RMS]
    return float(np.quantile(starts, EARLY_SCALE_QUANTILE)) if len(starts) else 0.0
