"""Layer names as axis labels: shortened from the left, never ambiguous, never cut at the end.

A chart with one row per layer (the outliers' box plot) labels each row with the layer's
name, and names of real models are long (``bert.encoder.layer.0.attention.output.dense.weight``,
50 characters). Vega cuts a label at ``labelLimit`` by dropping its end, which is the part
that tells the rows apart (``…dense.wei``). ``short_labels`` drops the start instead, at a
dot, and keeps enough of every name that no two rows read the same: ``…layer.0.attention.
output.dense.weight``. The full name stays in the chart's tooltip.
"""

from __future__ import annotations

FIT = 44
"""A name of at most this many characters is shown whole; a longer one loses its start."""
MOST = 72
"""The most characters a chart makes room for (``label_px``); a label whose shortest
unambiguous tail is longer still is cut at its end by Vega, and its tooltip holds the name."""
CHAR_PX = 5.6
"""A conservative width of one label character at Vega's default 10 px axis font (DejaVu
Sans, the PDF's font, is the widest of the fonts the labels are drawn in)."""
ELLIPSIS = "…"


def _tails(name: str) -> list[str]:
    """``name``'s dot-suffixes, shortest first (``c``, ``b.c``, ``a.b.c``)."""
    parts = name.split(".")
    return [".".join(parts[i:]) for i in range(len(parts) - 1, -1, -1)]


def _ambiguous(tail: str, name: str, names: list[str]) -> bool:
    """True when another of ``names`` is ``tail`` or ends with ``.tail``."""
    return any(o != name and (o == tail or o.endswith("." + tail)) for o in names)


def short_labels(names: list[str], fit: int = FIT) -> list[str]:
    """A label for each of ``names`` (distinct names): the name, or ``…`` and a unique tail.

    A name of at most ``fit`` characters is its own label. A longer one is labelled with
    the longest dot-suffix that fits in ``fit`` characters with the ellipsis, when no other
    name ends with it; otherwise with the shortest suffix that no other name ends with
    (longer than ``fit``, so the chart must make room: ``label_px``). A tail never starts
    at an index: it then takes the index's name along, and where that no longer fits, a
    shorter fitting tail is taken instead (a lone ``albert.encoder.albert_layer_groups.0.
    albert_layers.0.attention`` reads ``…albert_layers.0.attention`` in 35 characters, not
    47 that Vega cuts at their end and that push a probe figure out of its column). Two
    labels are never equal: a tail no other name ends with cannot be another name's tail
    or name.
    """
    out = []
    for name in names:
        if len(name) <= fit:
            out.append(name)
            continue
        tails = _tails(name)
        unique = [t for t in tails[:-1] if not _ambiguous(t, name, names)]  # the whole name: the last resort
        fitting = [t for t in unique if len(t) + 1 <= fit]
        named = [n for n in (_named_tail(t, tails) for t in fitting) if len(n) + 1 <= fit]
        if named:  # the longest that fits, named
            tail = named[-1]
        else:  # none fits once named: the name takes the room it needs
            tail = fitting[-1] if fitting else (unique[0] if unique else None)
            if tail is not None:
                tail = _named_tail(tail, tails)
        out.append(name if tail is None or tail == name else ELLIPSIS + tail)
    return out


def fit_tail(label: str, chars: int) -> str:
    """``label``, or ``…`` and its longest dot-suffix that fits in ``chars`` characters (the end of
    its last part when none does): one label on its own, where ``short_labels`` keeps a list distinct
    (a glance row's label is already short of its group, and its tooltip holds the whole name)."""
    if len(label) <= chars:
        return label
    fitting = [t for t in _tails(label)[:-1] if len(t) + 1 <= chars]
    return ELLIPSIS + (fitting[-1] if fitting else label[-(chars - 1):])


def wrap_name(label: str, fit: int) -> list[str]:
    """``label`` as lines of at most ``fit`` characters each, broken after dots, from the end:
    each line is the longest run of the name's last parts that fits, and starts at a part that
    is no index where such a break fits (``…layer.2.downsampling_layer.reduce_1x1.convolution``
    reads ``…layer.2.`` / ``downsampling_layer.`` / ``reduce_1x1.convolution``). A single part
    longer than ``fit`` is a line of its own, left to the chart to cut."""
    lines = []
    while len(label) > fit:
        dots = [i + 1 for i, c in enumerate(label) if c == "." and i + 1 < len(label)]
        breaks = [i for i in dots if len(label) - i <= fit]  # where the last line fits
        if not breaks:  # the last part alone is too long: break before it, or not at all
            at = dots[-1] if dots else 0
        else:
            named = [i for i in breaks if not label[i].isdigit()]
            at = (named or breaks)[0]
        if at == 0:
            break
        lines.insert(0, label[at:])
        label = label[:at]
    return [label, *lines]


def _named_tail(tail: str, tails: list[str]) -> str:
    """``tail``, or a longer tail when it starts at an index (``0.layers.1`` says nothing of
    what the 0 counts; ``stages.0.layers.1`` does)."""
    at = tails.index(tail)
    while tail.split(".", 1)[0].isdigit() and at + 1 < len(tails):
        at += 1
        tail = tails[at]
    return tail


def label_px(labels: list[str], most: int = MOST) -> int:
    """The axis ``labelLimit`` that shows each of ``labels`` whole (up to ``most`` characters)."""
    longest = max((len(s) for s in labels), default=0)
    return int(min(longest, most) * CHAR_PX) + 8
