"""The panel's two colour themes (dark, light): one palette each, applied to Qt's Fusion style
and to the piano roll's own painting, so both stay legible together."""

from __future__ import annotations

from dataclasses import dataclass

from PyQt6.QtGui import QColor, QPalette
from PyQt6.QtWidgets import QApplication, QWidget


@dataclass(frozen=True)
class Theme:
    name: str
    window: str
    base: str  # input fields, lists
    panel: str  # group backgrounds
    text: str
    muted: str  # secondary text
    grid: str  # beat lines
    bar: str  # bar lines
    phrase: str  # phrase boundaries
    melody: str
    piano: str
    chord_fill: str
    chord_text: str
    accent: str  # selection, buttons that matter
    locked: str
    error_fill: str
    error_text: str
    error_inline: str  # an error in the flow of a form (refused phrase string)
    ok: str
    warn: str


DARK = Theme(
    name="dark", window="#1f2329", base="#171a1f", panel="#262b33", text="#e8ebef",
    muted="#9aa4b1", grid="#2c323b", bar="#46505d", phrase="#f0b429", melody="#5ec8f2",
    piano="#8fd694", chord_fill="#323a46", chord_text="#ffffff", accent="#3d8bfd",
    locked="#f0b429", error_fill="#5c1f24", error_text="#ffe3e3",
    error_inline="#ff8a8a", ok="#5fd38d", warn="#f0b429",
)
LIGHT = Theme(
    name="light", window="#f4f5f7", base="#ffffff", panel="#e9ecf0", text="#1d2025",
    muted="#5b6572", grid="#e3e6ea", bar="#b7bec8", phrase="#c77700", melody="#0b72b9",
    piano="#2f8f46", chord_fill="#dde3ea", chord_text="#111418", accent="#1f6fe5",
    locked="#c77700", error_fill="#fde2e1", error_text="#6b1010",
    error_inline="#c42b2b", ok="#1f8a4c", warn="#b36b00",
)
THEMES = {"dark": DARK, "light": LIGHT}


def apply_theme(app: QApplication, theme: Theme) -> None:
    """Fusion style with the theme's palette. No application-wide style sheet: it would send
    every widget's painting through Qt's slower style-sheet style (measured: a full window
    repaint 2-3x slower); the few widgets that need more get their own (`local_style`)."""
    app.setStyle("Fusion")
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: theme.window, QPalette.ColorRole.WindowText: theme.text,
        QPalette.ColorRole.Base: theme.base, QPalette.ColorRole.AlternateBase: theme.panel,
        QPalette.ColorRole.Text: theme.text, QPalette.ColorRole.Button: theme.panel,
        QPalette.ColorRole.ButtonText: theme.text, QPalette.ColorRole.Highlight: theme.accent,
        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.ToolTipBase: theme.panel,
        QPalette.ColorRole.ToolTipText: theme.text, QPalette.ColorRole.PlaceholderText: theme.muted,
        QPalette.ColorRole.Link: theme.accent, QPalette.ColorRole.Mid: theme.bar,
        QPalette.ColorRole.Dark: theme.bar,
    }
    for role, colour in roles.items():
        p.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText,
                 QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(theme.muted))
    app.setStyleSheet("")
    app.setPalette(p)


def local_style(kind: str, theme: Theme) -> str:
    """The style sheet of one small widget (banner, restore offer, drag handle, notice line,
    inline phrase-string error)."""
    if kind == "banner":
        return (f"QFrame#banner {{ background: {theme.error_fill}; border-radius: 4px; }}"
                f"QFrame#banner QLabel {{ color: {theme.error_text}; }}")
    if kind == "offer":
        return (f"QFrame#offer {{ background: {theme.panel}; border: 1px solid {theme.accent};"
                " border-radius: 4px; }")
    if kind == "drag":  # dimmed when disabled: no result to drag yet
        return (f"QLabel#dragOut {{ border: 1px dashed {theme.accent}; border-radius: 4px;"
                f" padding: 3px 8px; color: {theme.text}; }}"
                f"QLabel#dragOut:disabled {{ border: 1px dotted {theme.bar};"
                f" color: {theme.muted}; }}")
    if kind == "notice":
        return f"QLabel#notice {{ color: {theme.warn}; }}"
    if kind == "phraseError":
        return f"QLabel#phraseError {{ color: {theme.error_inline}; }}"
    raise ValueError(f"no local style {kind!r}")


def muted(widget: QWidget, theme: Theme) -> None:
    """Secondary text colour for one label."""
    palette = widget.palette()
    palette.setColor(QPalette.ColorRole.WindowText, QColor(theme.muted))
    widget.setPalette(palette)


def tinted(widget: QWidget, theme: Theme, locked: bool) -> None:
    """A phrase card's background: the panel colour, tinted when the phrase is locked."""
    base = QColor(theme.panel)
    if locked:
        mark = QColor(theme.locked)
        base = QColor((base.red() * 3 + mark.red()) // 4, (base.green() * 3 + mark.green()) // 4,
                      (base.blue() * 3 + mark.blue()) // 4)
    palette = widget.palette()
    palette.setColor(QPalette.ColorRole.Window, base)
    widget.setPalette(palette)
    widget.setAutoFillBackground(True)
