"""What a section's layer picker offers: its layers in model order, grouped by module path.

A ResNet-50 or an eight-layer BERT has 130 to 200 tensors; a flat list of that many long
names is hard to scan, so the picker's ``<select>`` groups them (``<optgroup>``) by the
shortest module path whose subtree holds at most ``MAX_GROUP`` of them: a BERT's
``bert.encoder.layer.3``, a ResNet's ``layer2.1``. A module whose names are only its own
(``conv1.weight``, ``conv1.bias``) stays in its parent's group instead of making a group
of two. Groups follow model order, so a module path can head two groups (the model's top
level before and after its blocks). The page's script (``templates/js/layers.js``) adds
the type-to-filter box and keeps every section's picker on one chosen layer.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_GROUP = 24
"""The most layers a group may hold while it can still be split by module path."""
TOP = "top level"
"""The label of the group of names directly under the model."""


@dataclass(frozen=True)
class Picker:
    """A section's layer picker.

    Attributes:
        names: every layer, in model order.
        groups: ``(label, names)`` runs of consecutive layers sharing a module path; a
            label is None when the list is short enough to need no groups.
    """

    names: tuple[str, ...]
    groups: tuple[tuple[str | None, tuple[str, ...]], ...]


def _assign(names: list[str], depth: int, prefix: str, out: dict[str, str]) -> None:
    """Give each of ``names`` (all under ``prefix``, ``depth`` path parts deep) its group."""
    if len(names) <= MAX_GROUP:
        for n in names:
            out[n] = prefix
        return
    children: dict[str, list[str]] = {}
    for n in names:
        parts = n.split(".")
        children.setdefault(parts[depth] if len(parts) > depth else "", []).append(n)
    if len(children) == 1 and "" not in children:  # one path part in common: go one deeper
        (part, kids), = children.items()
        _assign(kids, depth + 1, f"{prefix}.{part}" if prefix else part, out)
        return
    for part, kids in children.items():
        if not part or all(len(n.split(".")) <= depth + 2 for n in kids):  # one module's own names
            for n in kids:
                out[n] = prefix
        else:
            _assign(kids, depth + 1, f"{prefix}.{part}" if prefix else part, out)


def groups(names: list[str]) -> tuple[tuple[str | None, tuple[str, ...]], ...]:
    """``names`` (in model order) as runs of consecutive names sharing a group."""
    if len(names) <= MAX_GROUP:
        return ((None, tuple(names)),) if names else ()
    key: dict[str, str] = {}
    _assign(list(names), 0, "", key)
    runs: list[tuple[str, list[str]]] = []
    for n in names:
        label = key[n] or TOP
        if runs and runs[-1][0] == label:
            runs[-1][1].append(n)
        else:
            runs.append((label, [n]))
    return tuple((label, tuple(members)) for label, members in runs)


def picker(names) -> Picker | None:
    """The picker offering ``names`` (in model order), or None when there are none."""
    names = list(dict.fromkeys(str(n) for n in names))
    return Picker(tuple(names), groups(names)) if names else None
