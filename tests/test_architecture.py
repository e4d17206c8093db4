"""The dependency rules of style.md: engine knows no Qt/OSC/ports, bridge no torch/Qt,
nothing imports ui. Walks every module's import statements."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "engine": {"PyQt6", "pythonosc", "rtmidi", "bridge", "ui"},
    "bridge": {"torch", "PyQt6", "ui"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_dependency_direction(package):
    bad = {
        str(p.relative_to(ROOT)): sorted(_imports(p) & FORBIDDEN[package])
        for p in (ROOT / package).rglob("*.py")
    }
    assert {k: v for k, v in bad.items() if v} == {}


def test_nothing_imports_ui():
    # benchmarks drive the whole product like the CLI does, so they may use ui's wiring
    offenders = [
        str(p.relative_to(ROOT))
        for pkg in ("engine", "bridge")
        for p in (ROOT / pkg).rglob("*.py")
        if "ui" in _imports(p)
    ]
    assert offenders == []


def test_harmonize_path_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, engine.pipeline, engine.midi_io, ui.cli; "
        "print('torch' in sys.modules, 'PyQt6' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.split() == ["False", "False"]
