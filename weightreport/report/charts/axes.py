"""Axes that never mislead: number labels that fit, padded constant domains, zeros on log scales.

Every section's value axes use ``value_axis`` (tick labels in Vega's step-aware fixed
notation, switched to exponent notation below 1e-3 and from 1e5, so ticks never repeat
and tiny values never turn into a row of zeros). ``domain_pad`` adds an invisible mark
that widens a constant series' domain so the axis gets at least two ticks (a constant
learning rate of 0.01 would otherwise get one tick, labelled "0"). ``log_zero_layers``
draws the zeros of a series on a log scale, which cannot place them, as markers on a
dashed floor line labelled "0", one decade below the smallest positive value.
"""

from __future__ import annotations

import altair as alt

_DECIMALS = "(indexof(datum.label, '.') < 0 ? 0 : length(datum.label) - indexof(datum.label, '.') - 1)"
NUMBER_LABELS = (
    "datum.label === '' || indexof(datum.label, 'e') >= 0 ? datum.label : datum.value === 0 ? '0' : "
    "abs(datum.value) < 1e-3 || abs(datum.value) >= 1e5 ? "
    f"format(datum.value, '.' + clamp({_DECIMALS} + floor(log(abs(datum.value)) / LN10), 0, 6) + '~e') "
    ": datum.label")
"""A Vega ``labelExpr``: the default label (as many decimals as the tick step needs), or,
for magnitudes below 1e-3 or from 1e5, the same precision in exponent notation."""

_MANTISSA = "(datum.value / pow(10, floor(log(datum.value) / LN10 + 1e-9)))"
_DECADES = "(log(domain('{scale}')[1] / domain('{scale}')[0]) / LN10)"
_LOG_SHOWN = (f"abs({_MANTISSA} - 1) < 1e-6 || {_DECADES} < 1 || ({_DECADES} <= 2.05 && "
              f"(abs({_MANTISSA} - 2) < 1e-6 || abs({_MANTISSA} - 5) < 1e-6))")
LOG_LABELS = f"datum.value > 0 && ({_LOG_SHOWN}) ? ({NUMBER_LABELS}) : ''"
"""A Vega ``labelExpr`` for a log axis (``{scale}``: its scale's name): labels only at the
powers of ten, and at 2 and 5 times them when the axis spans two decades or less (a log
axis gets a tick at each of 1–9 × 10^k while it spans fewer decades than it has room for
ticks: nine labels a decade crowd into one another). Every tick keeps its grid line."""

ZERO_COLOR = "#d62728"
LOG_FLOOR_DEFAULT = 1e-12
"""Where a log axis puts zeros when a layer has no positive value to measure from."""


def value_axis(title: str | None = None, **kw) -> alt.Axis:
    """A quantitative axis whose tick labels fit (``NUMBER_LABELS``)."""
    return alt.Axis(title=title, labelExpr=NUMBER_LABELS, **kw)


def step_x(**kw) -> alt.X:
    """The x encoding of a chart over training steps.

    Vega flushes the last label of a quantitative x axis inside the plot (``labelFlush``) after
    it has removed overlapping labels, so on a 380-pixel chart of 300 steps "280" and "300" ran
    together as "280300". Labels centred on their ticks never overlap: the axis removes those
    that would.
    """
    return alt.X("step:Q", title="step", axis=alt.Axis(labelFlush=False), **kw)


def log_axis(title: str | None = None, scale: str = "y", **kw) -> alt.Axis:
    """A log-scale axis labelled at powers of ten (and 2 and 5 times them over a short span).

    Args:
        title: the axis title.
        scale: the name Vega gives the axis's scale (``y`` in a single or layered chart).
    """
    return alt.Axis(title=title, labelExpr=LOG_LABELS.replace("{scale}", scale), **kw)


def integer_axis(title: str | None = None, scale: str = "y", **kw) -> alt.Axis:
    """A quantitative axis of whole numbers (channel indices, counts): integer ticks only.

    Vega asks d3 for about one tick per 40 px, and d3 steps a short range in fractions
    (channel 0, 0.5, 1 of a 2-channel layer, labelled "0, 1, 1" in integer format);
    ``tickMinStep`` does not prevent it (Vega asks for span + 1 ticks, which is still a
    step of 0.5). Asking for at most span ticks makes d3's step at least 1, hence whole;
    a label off a whole number is blank all the same.

    Args:
        title: the axis title.
        scale: the axis's scale name, ``x`` or ``y`` in a single or layered chart.
    """
    room = "width" if scale == "x" else "height"
    count = f"max(1, min(ceil({room} / 40), floor(span(domain('{scale}')))))"
    return alt.Axis(title=title, tickCount=alt.ExprRef(count), format="d",
                    labelExpr="datum.value % 1 === 0 ? datum.label : ''", **kw)


def domain_pad(base: alt.Chart, field: str, title: str | None, log: bool = False,
               groupby: list[str] | None = None, scale: alt.Scale | None = None) -> alt.Chart:
    """An invisible rule that widens the y domain of ``field`` when all its values are equal.

    Args:
        base: the chart's data and transforms (already filtered to one layer).
        field: the plotted field.
        title: the y axis title (repeated so layered axes keep one title).
        log: pad by a factor of 3 each way (log scale) instead of 10% (or 1 around zero).
        groupby: fields to pad within (facets); None pads over all rows.
        scale: the y scale of the chart this is layered with.
    """
    value = f"datum.{field} > 0 ? datum.{field} : null" if log else f"datum.{field}"
    agg = base.transform_calculate(pad_v=value).transform_aggregate(
        pad_lo="min(pad_v)", pad_hi="max(pad_v)", groupby=groupby or [])
    if log:
        lo, hi = "datum.pad_lo / 3", "datum.pad_hi * 3"
    else:
        lo = "datum.pad_lo === 0 ? 0 : datum.pad_lo - abs(datum.pad_lo) * 0.1"
        hi = "datum.pad_hi === 0 ? 1 : datum.pad_hi + abs(datum.pad_hi) * 0.1"
    padded = agg.transform_filter("isValid(datum.pad_lo) && datum.pad_lo === datum.pad_hi").transform_calculate(
        pad_y=lo, pad_y2=hi)
    return padded.mark_rule(opacity=0).encode(
        y=alt.Y("pad_y:Q", title=title, scale=scale or alt.Scale(type="log" if log else "linear")), y2=alt.Y2("pad_y2:Q"))


def log_zero_layers(base: alt.Chart, x: alt.X, title: str | None) -> list[alt.Chart]:
    """Markers for the zeros of ``value`` on a log scale, on a dashed floor line labelled "0".

    ``base`` holds ``value`` rows (already one layer's); the floor is one decade below the
    smallest positive value (``LOG_FLOOR_DEFAULT`` when there is none). Nothing is drawn
    when no value is 0.
    """
    floor = (f"isValid(datum.zero_min) ? pow(10, floor(log(datum.zero_min) / LN10) - 1) "
             f": {LOG_FLOOR_DEFAULT}")
    withfloor = base.transform_calculate(zero_pos="datum.value > 0 ? datum.value : null").transform_joinaggregate(
        zero_min="min(zero_pos)").transform_calculate(zero_at=floor)
    zeros = withfloor.transform_filter("datum.value === 0")
    y = alt.Y("zero_at:Q", title=title, scale=alt.Scale(type="log"))
    marks = zeros.mark_point(shape="diamond", filled=True, size=36, color=ZERO_COLOR).encode(
        x=x, y=y, tooltip=[alt.Tooltip("series:N"), alt.Tooltip("step:Q"), alt.Tooltip("value:Q", format=".4g")])
    line = zeros.transform_aggregate(zero_at="min(zero_at)").mark_rule(
        strokeDash=[3, 3], color="#9aa5b1").encode(y=y)
    label = zeros.transform_aggregate(zero_at="min(zero_at)").mark_text(
        text="0", align="left", dx=4, color=ZERO_COLOR, fontSize=11).encode(y=y, x=alt.XValue("width"))
    return [line, marks, label]


def blank_note(base: alt.Chart, noun: str = "layer") -> alt.Chart:
    """A sentence across the plot when none of ``value`` is recorded, or every one is 0."""
    counted = base.transform_calculate(
        blank_nz="isValid(datum.value) && datum.value !== 0 ? 1 : 0",
        blank_ok="isValid(datum.value) ? 1 : 0").transform_aggregate(
        blank_nz="sum(blank_nz)", blank_ok="sum(blank_ok)").transform_filter("datum.blank_nz === 0")
    return counted.transform_calculate(
        blank_text=f"datum.blank_ok === 0 ? 'nothing was recorded for this {noun}' "
                   f": 'every value is 0 for this {noun}'").mark_text(
        fontSize=12, color="#5b6675").encode(
        text=alt.Text("blank_text:N"), x=alt.XValue({"expr": "width / 2"}), y=alt.YValue({"expr": "height / 2"}))
