"""The model structure section: the module tree, with each module's type, parameters and output shape.

A ResNet-50 has about 250 modules, so the section sits at the end of the report, and its
table shows each module by the last part of its name, indented by depth (the full path
is kept for the tooltip and the filter box).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from weightreport.report.analysis.run_tables import RunTables
from weightreport.report.sections.base import Section, SectionType

KEY, TITLE = "structure", "Model structure"
SOURCE_NAMES = {"tensorboard": "TensorBoard"}
"""How run.json's ``source`` kind is named in the report."""


@dataclass
class ModuleRow:
    """One row of the model structure table.

    Attributes:
        name: the module's full dotted path (``(root)`` for the model itself).
        short: the last part of that path, shown indented by ``depth``.
        type: the module's class name.
        depth: its depth in the module tree (0 for the model).
        params: its own parameters and their shapes (``weight 64×3×7×7, bias 64``).
        num_params: its parameter count, its children's included.
        output_shape: its output's shape (``—`` when not recorded).
    """

    name: str
    short: str
    type: str
    depth: int
    params: str
    num_params: int
    output_shape: str


@dataclass
class Structure(Section):
    """The model's modules in definition order, and the parameter totals."""

    model_class: str = ""
    total_params: int = 0
    trainable_params: int | None = 0
    modules: list[ModuleRow] = field(default_factory=list)
    source: str | None = None


def _shape(shape) -> str:
    return "×".join(str(int(d)) for d in shape) if shape else ""


def module_rows(manifest: dict) -> list[ModuleRow]:
    """The manifest's modules as table rows, in definition order."""
    rows = []
    for mod in (manifest.get("model") or {}).get("modules") or []:
        name = str(mod.get("name") or "")
        prefix = f"{name}." if name else ""
        params = ", ".join(f"{str(p.get('name')).removeprefix(prefix)} {_shape(p.get('shape'))}"
                           for p in mod.get("params") or [])
        out = mod.get("output_shape")
        rows.append(ModuleRow(name=name or "(root)", short=name.rsplit(".", 1)[-1] if name else "(root)",
                              type=str(mod.get("type", "")), depth=int(mod.get("depth", 0) or 0),
                              params=params, num_params=int(mod.get("num_params", 0) or 0),
                              output_shape=_shape(out) if out else "—"))
    return rows


def build(t: RunTables) -> Structure:
    """The structure of ``t``'s model, from its run.json."""
    m = t.run.manifest
    model = m.get("model") or {}
    source = m.get("source")
    source = source.get("kind") if isinstance(source, dict) else source
    rows = module_rows(m)
    return Structure(
        key=KEY, title=TITLE, model_class=str(model.get("class") or ""),
        total_params=int(model.get("total_params", 0) or 0),
        trainable_params=None if model.get("trainable_params") is None else int(model["trainable_params"]),
        modules=rows, source=SOURCE_NAMES.get(str(source), str(source)) if source else None,
        caption=f"The model's {len(rows)} modules in definition order, each indented under its parent "
                "(hover a name for its full path); a module's count includes its children's parameters.")


SECTION = SectionType(KEY, TITLE, build)
