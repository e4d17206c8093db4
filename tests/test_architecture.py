"""The dependency rules of style.md, checked on every module's imports by any means (import
statements, relative imports, `importlib.import_module` / `__import__`):
- engine imports neither Qt, OSC, ports, bridge nor ui;
- bridge imports neither torch nor Qt nor ui, and reaches the engine only by its front door;
- ui reaches the engine only by its front door (`engine/__init__.py`);
- one module imports `mido` (engine/midi_io.py), one `pythonosc` (bridge/osc.py), one
  `rtmidi` (bridge/midi/ports.py);
- the offline builders and trainers (engine/build) are imported by nothing that runs in the
  product (the front door names them lazily for the CLI's `library` commands).
The checker is tested on small offending sources first, so a rule that stops catching fails."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "bridge", "ui")
FORBIDDEN = {
    "engine": {"PyQt6", "pythonosc", "rtmidi", "bridge", "ui"},
    "bridge": {"torch", "PyQt6", "ui"},
    "ui": set(),
}
FRONT_DOOR_ONLY = {"bridge", "ui"}  # may import `engine`, never `engine.<anything>`
ONE_IMPORTER = {"mido": "engine.midi_io", "pythonosc": "bridge.osc", "rtmidi": "bridge.midi.ports"}
OFFLINE = "engine.build"
DYNAMIC = "<computed module name>"
# the front door's own lazy loader: its table is checked below
DYNAMIC_ALLOWED = {"engine"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str | None, level: int, importer: str, is_package: bool) -> str:
    """The absolute name of `from <level dots><module> import …` written in `importer`."""
    if level == 0:
        return module or ""
    package = importer.split(".") if is_package else importer.split(".")[:-1]
    base = package[: len(package) - (level - 1)] if level - 1 <= len(package) else []
    return ".".join([*base, module] if module else base)


def imported_modules(source: str, importer: str, is_package: bool = False) -> set[str]:
    """Every module `source` imports, as absolute dotted names (an imported name that may be a
    submodule counts as one: `from engine import harmonizer` gives `engine.harmonizer`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module, node.level, importer, is_package)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in ("import_module", "__import__"):
                arg = node.args[0] if node.args else None
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.add(arg.value)
                else:
                    found.add(DYNAMIC)
    return found


def violations(package: str, importer: str, modules: set[str],
               submodules: set[str]) -> list[str]:
    """What `importer` (in `package`) may not import. `submodules`: the engine's real module
    names, so `from engine import Note` (a name) is told from `from engine import pipeline`."""
    bad: list[str] = []
    reported: set[str] = set()
    for name in sorted(modules):
        if name.rsplit(".", 1)[0] in reported:
            continue  # `from engine.types import Key`: engine.types says it already
        top = name.split(".")[0]
        before = len(bad)
        if name == DYNAMIC:
            if importer not in DYNAMIC_ALLOWED:
                bad.append(f"{importer}: a computed import")
        elif top in FORBIDDEN[package]:
            bad.append(f"{importer} imports {name}")
        elif (package in FRONT_DOOR_ONLY and name.startswith("engine.")
              and (name in submodules or name.count(".") >= 2)):
            bad.append(f"{importer} reaches into {name} (use the engine's front door)")
        if name.startswith(OFFLINE) and not importer.startswith(OFFLINE) and importer != "engine":
            bad.append(f"{importer} imports the offline {name}")
        for library, owner in ONE_IMPORTER.items():
            if top == library and importer != owner:
                bad.append(f"{importer} imports {library} (only {owner} may)")
        if len(bad) > before:
            reported.add(name)
    return bad


def _engine_submodules() -> set[str]:
    return {module_name(p) for p in (ROOT / "engine").rglob("*.py")} - {"engine"}


def _tree_violations() -> list[str]:
    submodules = _engine_submodules()
    bad = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            importer = module_name(path)
            modules = imported_modules(path.read_text(encoding="utf-8"), importer,
                                       path.name == "__init__.py")
            bad += violations(package, importer, modules, submodules)
    return bad


# --- the checker catches each kind of offence -------------------------------------------------

SUBMODULES = {"engine.pipeline", "engine.harmonizer", "engine.harmonizer.search",
              "engine.types"}


@pytest.mark.parametrize(("package", "importer", "source", "needle"), [
    ("engine", "engine.x", "import PyQt6.QtCore", "imports PyQt6.QtCore"),
    ("engine", "engine.x", "import importlib\nimportlib.import_module('PyQt6')", "PyQt6"),
    ("engine", "engine.x", "m = __import__('bridge.osc')", "imports bridge.osc"),
    ("engine", "engine.x", "from ..ui import cli", "imports ui"),
    ("engine", "engine.x", "from importlib import import_module\nimport_module(name)",
     "computed import"),
    ("engine", "engine.x", "def f():\n    import pythonosc", "imports pythonosc"),
    ("bridge", "bridge.x", "import torch", "imports torch"),
    ("bridge", "bridge.x", "from PyQt6 import QtCore", "imports PyQt6"),
    ("bridge", "bridge.x", "from engine.harmonizer import search", "reaches into"),
    ("bridge", "bridge.x", "from engine import pipeline", "reaches into engine.pipeline"),
    ("ui", "ui.x", "from engine.pipeline import harmonize", "reaches into engine.pipeline"),
    ("ui", "ui.x", "import engine.types", "reaches into engine.types"),
    ("ui", "ui.x", "__import__('engine.pipeline')", "reaches into"),
    ("ui", "ui.x", "import mido", "only engine.midi_io may"),
    ("bridge", "bridge.server", "from pythonosc import udp_client", "only bridge.osc may"),
    ("bridge", "bridge.midi.watchdog", "import rtmidi", "only bridge.midi.ports may"),
    ("engine", "engine.pipeline", "from engine.build import chord_templates", "offline"),
])
def test_the_checker_catches(package: str, importer: str, source: str, needle: str) -> None:
    found = violations(package, importer, imported_modules(source, importer), SUBMODULES)
    assert any(needle in v for v in found), found


@pytest.mark.parametrize(("package", "importer", "source"), [
    ("ui", "ui.x", "from engine import Note, harmonize, ArrangeOptions"),
    ("bridge", "bridge.x", "from engine import Note\nfrom bridge.types import Clip"),
    ("engine", "engine.midi_io", "import mido"),
    ("bridge", "bridge.osc", "from pythonosc.osc_message import OscMessage"),
    ("bridge", "bridge.midi.ports", "import rtmidi"),
    ("engine", "engine.harmonizer.search", "from . import micro\nfrom ..types import Key"),
    ("engine", "engine.build.train_vae", "from engine.build import provenance"),
])
def test_the_checker_lets_pass(package: str, importer: str, source: str) -> None:
    assert violations(package, importer, imported_modules(source, importer), SUBMODULES) == []


def test_relative_imports_resolve_from_the_importing_package() -> None:
    assert "engine.types" in imported_modules("from ..types import Key",
                                              "engine.harmonizer.search")
    assert "engine.harmonizer.micro" in imported_modules("from . import micro",
                                                         "engine.harmonizer", is_package=True)


# --- the tree keeps the rules -----------------------------------------------------------------

def test_the_tree_keeps_the_dependency_rules() -> None:
    assert _tree_violations() == []


def test_nothing_imports_ui_but_ui() -> None:
    offenders = [
        module_name(p) for pkg in ("engine", "bridge") for p in (ROOT / pkg).rglob("*.py")
        if any(m.split(".")[0] == "ui" for m in imported_modules(p.read_text(encoding="utf-8"),
                                                                  module_name(p)))
    ]
    assert offenders == []


def test_the_front_door_loads_only_engine_modules() -> None:
    import engine

    lazy = engine._LAZY
    assert lazy and all(module.startswith("engine.") for module, _ in lazy.values())
    assert set(lazy) <= set(engine.__all__)
    for name in lazy:  # every door opens
        assert callable(getattr(engine, name)), name


def test_harmonize_path_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, engine.pipeline, engine.midi_io, ui.cli; "
        "print('torch' in sys.modules, 'PyQt6' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.split() == ["False", "False"]
