"""liqstress/signals/ as a package: one pure module per signal family, matching the sections of
docs/signals.md, with every public name re-exported by the package (docs/architecture.md)."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from liqstress import signals as sg

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "liqstress" / "signals"
FAMILY_FILES = sorted(p for p in PKG.glob("*.py") if p.name not in ("__init__.py", "common.py"))
#: The only liqstress modules a signal module may import (the core's shared labels).
ALLOWED_CORE = {"liqstress.labels"}

#: Names imported from liqstress.signals elsewhere when the package was split; they must keep
#: working (the scan below finds new ones).
USED_BEFORE_SPLIT = {
    "Breadth", "CLUSTER_BUCKET_PCT", "COMPONENTS", "CascadeDetector", "CascadeState",
    "Concentration", "DEFAULT_CONFIG", "DEFAULT_WEIGHTS", "DIVERGENCE_MIN_POINTS", "Deleveraging",
    "Divergence", "Imbalance", "NEAR_EXTREME_PCT", "NearExtreme", "SPIKE_FACTOR", "SPIKE_MIN_USD",
    "SpikeResult", "StressConfig", "StressIndex", "StressInputs", "TOP_LEVELS", "breadth",
    "bucket_bounds", "bucket_index", "classify_deleveraging", "concentration", "divergence",
    "imbalance", "imbalance_by_window", "long_share", "near_extreme_share", "normalised_slope",
    "price_clusters", "ramp", "range_pct", "spike", "stress_components", "stress_index",
    "top_levels", "venue_usd",
}


def _module_name(path: Path) -> str:
    return f"liqstress.signals.{path.stem}"


def _imports(module: str, source: str) -> set[str]:
    """Every module ``source`` imports, at any depth, relative imports resolved."""
    package = module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                out.add(".".join(base + ([node.module] if node.module else [])))
            else:
                out.add(node.module or "")
    return out


@pytest.mark.parametrize("path", sorted(PKG.glob("*.py")), ids=lambda p: p.name)
def test_signal_modules_are_pure(path: Path) -> None:
    """Standard library, liqstress.labels and sibling signal modules only."""
    module = "liqstress.signals" if path.name == "__init__.py" else _module_name(path)
    bad = set()
    for name in _imports(module + (".__init__" if path.name == "__init__.py" else ""),
                         path.read_text()):
        top = name.split(".")[0]
        if top == "liqstress":
            if not (name in ALLOWED_CORE or name == "liqstress.signals"
                    or name.startswith("liqstress.signals.")):
                bad.add(name)
        elif top not in sys.stdlib_module_names:
            bad.add(name)
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_importing_signals_loads_only_the_standard_library() -> None:
    code = ("import sys; before = set(sys.modules); import liqstress.signals; "
            "print(' '.join(sorted({m.split('.')[0] for m in set(sys.modules) - before})))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout.split()
    assert sorted(set(out) - set(sys.stdlib_module_names)) == ["liqstress"]
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, liqstress.signals; "
         "print(' '.join(m for m in sys.modules if m.startswith('liqstress')))"],
        check=True, capture_output=True, text=True).stdout.split()
    assert {m for m in loaded if not m.startswith("liqstress.signals")} <= {"liqstress",
                                                                             *ALLOWED_CORE}


def test_every_family_module_is_registered() -> None:
    assert sorted(m.__name__ for m in sg.FAMILIES.values()) == sorted(
        _module_name(p) for p in FAMILY_FILES)
    assert list(sg.FAMILIES) == list(range(1, len(FAMILY_FILES) + 1))


@pytest.mark.parametrize("path", FAMILY_FILES, ids=lambda p: p.stem)
def test_module_all_lists_its_public_definitions(path: Path) -> None:
    """``__all__`` of a family module is exactly what it defines at top level (not imports)."""
    tree = ast.parse(path.read_text())
    defined: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defined.add(node.target.id)
    public = {n for n in defined if not n.startswith("_")}
    module = importlib.import_module(_module_name(path))
    assert set(module.__all__) == public


def test_package_reexports_every_public_name() -> None:
    names = {n for m in sg.FAMILIES.values() for n in m.__all__}
    assert set(sg.__all__) == names
    assert len(sg.__all__) == len(names), "a name is defined in two family modules"
    for module in sg.FAMILIES.values():
        for name in module.__all__:
            assert getattr(sg, name) is getattr(module, name), name


def test_no_module_shadows_a_name() -> None:
    """``sg.imbalance`` is the function: no submodule is named like a public name."""
    stems = {p.stem for p in PKG.glob("*.py")}
    assert not stems & set(sg.__all__)


def _used_names() -> set[str]:
    """Names taken from liqstress.signals anywhere in the repository outside the package:
    ``from liqstress.signals import X`` / ``from .signals import X`` and ``sg.X`` where ``sg``
    is ``liqstress.signals`` imported under any alias."""
    used: set[str] = set()
    for folder in ("liqstress", "agents", "streams", "tests", "bench", "scripts"):
        for path in (ROOT / folder).rglob("*.py"):
            if PKG in path.parents or path == Path(__file__).resolve():
                continue
            tree = ast.parse(path.read_text())
            aliases: set[str] = set()
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom):
                    mod = node.module or ""
                    if mod in ("liqstress.signals", "signals") and (mod != "signals"
                                                                     or node.level):
                        used.update(a.name for a in node.names)
                    elif mod == "liqstress" or (node.level and not mod):
                        aliases.update(a.asname or a.name for a in node.names
                                       if a.name == "signals")
                elif isinstance(node, ast.Import):
                    aliases.update(a.asname for a in node.names
                                   if a.name == "liqstress.signals" and a.asname)
            for node in ast.walk(tree):
                if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                        and node.value.id in aliases):
                    used.add(node.attr)
    return used


def test_names_used_elsewhere_still_resolve() -> None:
    scanned = _used_names()
    assert {"imbalance", "CascadeDetector", "NearExtreme", "range_pct"} <= scanned  # scan works
    used = scanned | USED_BEFORE_SPLIT
    missing = sorted(n for n in used if not hasattr(sg, n))
    assert not missing
    assert used <= set(sg.__all__)


def test_doc_sections_name_their_modules() -> None:
    """Each numbered section of docs/signals.md is one family and names its module."""
    text = (ROOT / "docs" / "signals.md").read_text()
    headings = re.findall(r"^## (\d+)\. .*\(`signals/(\w+)\.py`\)$", text, re.M)
    assert {int(n): stem for n, stem in headings} == {
        n: m.__name__.rpartition(".")[2] for n, m in sg.FAMILIES.items()}
    for path in FAMILY_FILES:
        assert f"docs/signals.md section {_section(path)}" in (path.read_text())


def _section(path: Path) -> int:
    return next(n for n, m in sg.FAMILIES.items() if m.__name__ == _module_name(path))


def test_index_components_come_from_the_registry() -> None:
    assert sg.COMPONENTS == tuple(c.name for c in sg.COMPONENT_SPECS)
    assert sg.DEFAULT_WEIGHTS == {c.name: c.weight for c in sg.COMPONENT_SPECS}
    assert set(sg.DEFAULT_RAMPS) == {c.name for c in sg.COMPONENT_SPECS if c.ramp is not None}
    # every component is missing when no input is there
    assert all(v is None for v in sg.stress_components(sg.StressInputs()).values())
