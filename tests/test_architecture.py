"""The package's layout: the direction of imports between its parts, and what each side loads."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import weightreport

PACKAGE = Path(weightreport.__file__).parent

ALLOWED = {
    "runfmt": set(),
    "stats": {"runfmt"},
    "collect": {"stats", "runfmt"},
    "report": {"runfmt"},
    "compare": {"report", "runfmt"},
    "inspect": {"stats", "report", "runfmt"},
    "integrations": {"collect", "stats", "report", "runfmt"},
}
"""What each subpackage may import besides itself, ``errors`` and the package root.

The two pipelines: collect → stats and runfmt (training side); report → runfmt only (the
report never imports the collector or the statistics engine). The root modules (``cli``,
``demo``) tie the parts together and may import any of them."""

NEUTRAL = {"errors", ""}
"""Modules every part may import: the error class and the package root (lazy exports, version)."""

MAX_ROOT_MODULES = 8
MAX_LINES = 500


def _part(module: str) -> str:
    """The part a dotted module belongs to: its subpackage, or the root module's name."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports() -> dict[str, set[str]]:
    """Module → the weightreport modules it imports anywhere in its source (top level or inside functions)."""
    graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        package = module if rel.name == "__init__" else module.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join([*base, node.module] if node.module else base)
                else:
                    target = node.module or ""
                found.add(target)
                found.update(f"{target}.{a.name}" for a in node.names)  # `from pkg import module`
        graph[module] = {m for m in found if m == "weightreport" or m.startswith("weightreport.")}
    return graph


def _is_module(dotted: str) -> bool:
    path = PACKAGE.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_imports_follow_the_pipelines():
    """No module imports against the direction collect → stats → runfmt or report → runfmt."""
    bad = []
    for module, targets in _imports().items():
        own = _part(module)
        if own not in ALLOWED:  # a root module (cli, demo, errors, __main__) may import anything
            continue
        for target in targets:
            if not _is_module(target):
                continue  # a name imported from a module, not a module
            other = _part(target) if target != "weightreport" else ""
            if other != own and other not in NEUTRAL and other not in ALLOWED[own]:
                bad.append(f"{module} imports {target}")
    assert not bad, "imports against the pipelines' direction:\n" + "\n".join(sorted(bad))


def test_no_loop_between_subpackages():
    """The graph of imports between subpackages has no cycle."""
    edges: dict[str, set[str]] = {}
    for module, targets in _imports().items():
        own = _part(module)
        if own not in ALLOWED:
            continue
        for target in targets:
            other = _part(target)
            if other in ALLOWED and other != own and _is_module(target):
                edges.setdefault(own, set()).add(other)

    def visit(node: str, trail: tuple[str, ...]) -> None:
        for nxt in sorted(edges.get(node, ())):
            assert nxt not in trail, "import loop: " + " → ".join([*trail, nxt])
            visit(nxt, (*trail, nxt))

    for start in sorted(edges):
        visit(start, (start,))


def test_the_tree_shows_the_pipelines():
    """At most eight modules sit at the package root, and no module exceeds 500 lines."""
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root) <= MAX_ROOT_MODULES, root
    for name in ALLOWED:
        assert (PACKAGE / name / "__init__.py").is_file(), name
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, long


def test_all_lists_every_public_name_and_each_loads():
    """``weightreport.__all__`` names exactly the lazy exports, and each resolves to an object."""
    exported = set(weightreport._EXPORTS) | {"__version__"}
    assert set(weightreport.__all__) == exported
    for name in weightreport.__all__:
        assert getattr(weightreport, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        weightreport.nope  # noqa: B018 - the attribute access is the test


def _loaded_after(code: str) -> set[str]:
    """The top-level modules loaded in a fresh interpreter after running ``code``."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


REPORT_SIDE = {"altair", "jinja2", "vl_convert", "weasyprint"}


def test_the_collector_loads_no_report_machinery():
    """``from weightreport import Collector`` loads no altair, jinja2, vl_convert or weasyprint."""
    loaded = _loaded_after("from weightreport import Collector")
    assert "torch" in loaded  # the probe itself works
    assert not loaded & REPORT_SIDE


def test_help_loads_no_library():
    """``weightreport --help`` imports neither torch, numpy, pandas nor the report machinery (its time is in bench/startup.py)."""
    loaded = _loaded_after("import contextlib, io\nfrom weightreport.cli import main\n"
                           "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
                           "    main(['--help'])")
    assert "argparse" in loaded
    assert not loaded & {"torch", "numba", "numpy", "pandas", "pyarrow", *REPORT_SIDE}
