"""The panel's layout at small window sizes (pytest-qt, offscreen): with a result on screen at
1280×800, 1024×640 and 800×500, in both themes, no two visible widgets overlap, no control is
squeezed below the size its text needs, and the window is no larger than asked. And the
screenshot command: `--size`, and the user's settings and sessions left alone."""

# ruff: noqa: F811  # the window fixtures come from tests/test_panel.py and are parameters here
from __future__ import annotations

import json
import os
import subprocess
import sys
from itertools import combinations

import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QScrollArea,
    QWidget,
)

from tests.test_panel import (  # noqa: F401  # fixtures: the window, a demo file, private dirs
    ROOT,
    WAIT_MS,
    _load,
    _private_dirs,
    demo_file,
    window,
)

SIZES = [(1280, 800), (1024, 640), (800, 500)]


def _name(widget):
    return f"{type(widget).__name__}({widget.objectName() or getattr(widget, 'text', str)()!r})" \
        if isinstance(widget, QAbstractButton) else \
        f"{type(widget).__name__}({widget.objectName()!r})"


def _shown(widget):
    return [c for c in widget.children() if isinstance(c, QWidget) and c.isVisible()
            and not c.isWindow()]


def layout_problems(window):
    """Visible sibling widgets whose rectangles meet; controls narrower or lower than their
    minimum size hint (text cut); controls outside their parent (unless it scrolls)."""
    problems = []
    for parent in [window, *window.findChildren(QWidget)]:
        if not parent.isVisible() or parent.isWindow() and parent is not window:
            continue
        kids = _shown(parent)
        for a, b in combinations(kids, 2):
            if a.geometry().intersects(b.geometry()):
                problems.append(f"{_name(a)} {a.geometry()} overlaps {_name(b)} {b.geometry()} "
                                f"in {_name(parent)}")
        if isinstance(parent, QScrollArea) and parent.widget() is not None and \
                parent.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff:
            inner, port = parent.widget(), parent.viewport()
            if inner.width() > port.width():  # cut on the right, and no way to scroll there
                problems.append(f"{_name(inner)} is {inner.width()} px wide in a "
                                f"{port.width()} px column that does not scroll sideways")
        scrolled = isinstance(parent.parentWidget(), QScrollArea)
        for kid in kids:
            if isinstance(kid, QAbstractButton | QComboBox):
                hint = kid.minimumSizeHint()
                if kid.width() < hint.width() or kid.height() < hint.height():
                    problems.append(f"{_name(kid)} is {kid.size()}, needs {hint}")
            if not scrolled and not parent.rect().contains(kid.geometry()):
                problems.append(f"{_name(kid)} {kid.geometry()} sticks out of {_name(parent)} "
                                f"{parent.rect()}")
    return problems


@pytest.mark.parametrize("theme", ["dark", "light"])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_nothing_overlaps_at_small_sizes(qtbot, window, demo_file, size, theme):
    if theme != window.theme.name:
        window.apply_settings(window.settings.__class__(**{
            **window.settings.__dict__, "theme": theme}))
    window.resize(*size)
    _load(qtbot, window, demo_file)
    assert (window.width(), window.height()) == size  # the window fits what was asked
    qtbot.waitUntil(lambda: layout_problems(window) == [], timeout=5000)  # once laid out
    # the parts a producer needs are on screen: the roll, every phrase card's list, the
    # toolbar's Generate and the preset editor
    assert window.roll.visibleRegion().boundingRect().height() > 60
    assert all(card.alternatives.visibleRegion().boundingRect().height() > 40
               for card in window.phrase_strip.cards)
    assert window.toolbar.widgetForAction(window.generate_action).isVisible()
    assert window.preset_bar.editor.visibleRegion().boundingRect().height() > 40


def test_the_log_dock_keeps_the_layout_clean_when_open(qtbot, window, demo_file):
    window.resize(1024, 640)
    _load(qtbot, window, demo_file)
    window.log_action.trigger()
    qtbot.waitUntil(window.log_dock.isVisible, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: layout_problems(window) == [], timeout=5000)  # once laid out


def test_a_screenshot_run_leaves_the_users_settings_and_sessions_alone(tmp_path):
    """`panel --screenshot --demo --size`: the picture at that size; the user's settings file
    (window size included) and session store untouched, no session written. (A process of
    its own, as the command runs: its event loop quits when the picture is written.)"""
    from PyQt6.QtGui import QImage

    config, data = tmp_path / "config", tmp_path / "data"
    config.mkdir()
    (data / "sessions").mkdir(parents=True)
    settings = {"version": 2, "window_geometry": "", "theme": "light", "osc_enabled": False}
    (config / "settings.json").write_text(json.dumps(settings))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    out = tmp_path / "shots" / "panel.png"
    env = {**os.environ, "ACCOBRIDGE_CONFIG_DIR": str(config), "ACCOBRIDGE_DATA_DIR": str(data),
           "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run(
        [sys.executable, "-m", "ui.cli", "panel", "--screenshot", str(out), "--demo",
         "--size", "800x500", "--theme", "dark"], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    image = QImage(str(out))
    assert (image.width(), image.height()) == (800, 500)
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p != out}
    assert after == before


def test_a_bad_size_is_refused_by_the_command_line(capsys):
    from ui.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["panel", "--size", "big"])
    assert exit_.value.code == 2 and "WIDTHxHEIGHT" in capsys.readouterr().err
