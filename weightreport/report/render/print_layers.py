"""Which layers the PDF prints per-layer charts for: ``--pdf-layers flagged|all|N``.

A PDF cannot follow a layer selector, and every layer of a large model would make it
hundreds of pages long. It prints each layered chart for the layers the findings name
(``flagged``: in the section that holds a finding's chart, every layer it names; in the
others at most ``MAX_FLAGGED``, the most severe findings' first, as a run where every
layer has a finding would print them all in every section), plus the top ``N`` by
``LayerPicks.criterion`` (default 3), or for every layer (``all``); each section says
which it printed and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from weightreport.errors import WeightReportError
from weightreport.report.analysis.layer_picks import LayerPicks
from weightreport.runfmt.calls import call_label

FLAGGED, ALL = "flagged", "all"
DEFAULT_TOP = 3
MAX_FLAGGED = 8
"""At most this many flagged layers per section (``all`` prints every one)."""
MAX_NAMED = 6
"""A section's note names at most this many printed layers."""


@dataclass(frozen=True)
class PdfLayers:
    """The PDF's choice of layers.

    Attributes:
        every: print every layer (``all``).
        top: besides the flagged layers, print this many of the top-ranked ones.
    """

    every: bool = False
    top: int = DEFAULT_TOP


def parse_pdf_layers(value: str | int | PdfLayers | None) -> PdfLayers:
    """``flagged``, ``all`` or a count N (flagged plus the top N); None is the default (flagged plus 3).

    Raises:
        WeightReportError: anything else (a negative or non-integer count, another word).
    """
    if value is None:
        return PdfLayers()
    if isinstance(value, PdfLayers):
        return value
    text = str(value).strip().lower()
    if text == ALL:
        return PdfLayers(every=True)
    if text == FLAGGED:
        return PdfLayers(top=0)
    if text.isdigit():
        return PdfLayers(top=int(text))
    msg = (f"--pdf-layers must be 'flagged', 'all' or a whole number N (the flagged layers plus the "
           f"top N), not {value!r}")
    raise WeightReportError(msg)


def matches(layer: str, name: str) -> bool:
    """True when a section's ``layer`` is ``name``, its module, or one of its parameters.

    Sections list tensors (``fc1.weight``) or modules (``bn1``, activations); findings and
    the ranking name either.
    """
    return layer == name or name.rpartition(".")[0] == layer or layer.rpartition(".")[0] == name


def _named(names: list[str]) -> str:
    shown = ", ".join(call_label(n) for n in names[:MAX_NAMED])
    return shown + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")


def printed_layers(layers: list[str], picks: LayerPicks, choice: PdfLayers,
                   section: str = "") -> tuple[list[str], str]:
    """The layers of one section to print, in the section's order, and a sentence saying why.

    Every layer named by a warning or an error whose chart is in this section
    (``LayerPicks.anchored``) is printed, however many: the PDF must show what each problem
    is about. The layers
    other findings name are capped at ``MAX_FLAGGED`` (counting those first), the most
    severe findings' first.

    Args:
        layers: the section's layers, in its order.
        picks: the model's flagged and ranked layers.
        choice: the ``--pdf-layers`` choice.
        section: the section's key (its findings' ``anchor``).
    """
    if choice.every or not layers:
        return list(layers), ""
    named = list(dict.fromkeys(la for n in picks.flagged for la in layers if matches(la, n)))
    own = {la for n in picks.anchored.get(section, ()) for la in layers if matches(la, n)}
    mine = [la for la in named if la in own]
    others = [la for la in named if la not in own]
    kept = others[:max(0, MAX_FLAGGED - len(mine))]
    flagged = mine + kept
    top: list[str] = []
    for name in picks.ranked:
        if len(top) >= choice.top:
            break
        top += [la for la in layers if matches(la, name) and la not in flagged and la not in top]
    top = top[:choice.top] if choice.top else []
    keep = set(flagged) | set(top)
    printed = [la for la in layers if la in keep]
    if len(printed) == len(layers):
        return printed, ""
    why = []
    if len(others) > len(kept) and mine:
        why.append(f"every one of the {len(mine)} that this section's findings name ({_named(mine)})")
        why.append(f"the {len(kept)} of the {len(others)} other layers the findings name with the most severe "
                   f"findings ({_named(kept)}; --pdf-layers all prints every one)" if kept else
                   f"none of the {len(others)} other layers the findings name (--pdf-layers all prints "
                   f"every one)")
    elif len(named) > len(flagged):
        why.append(f"the {len(flagged)} of the {len(named)} the findings name with the most severe findings "
                   f"({_named(flagged)}; --pdf-layers all prints every one)")
    elif flagged:
        why.append(f"those the findings name ({_named(flagged)})")
    if top:
        why.append(f"the {len(top)} with {picks.criterion} ({_named(top)})")
    if not why:
        among = f" or among the {choice.top} with {picks.criterion}" if choice.top else ""
        return [], (f"No layer of this section is named by a finding{among}, so its per-layer charts are "
                    f"not printed (--pdf-layers all prints them); the HTML report has a selector for "
                    f"every one of its {len(layers)} layers.")
    return printed, (f"Per-layer charts are printed for {len(printed)} of {len(layers)} layers: "
                     f"{' and '.join(why)}. The HTML report has a selector for every layer.")
