"""The panel's smaller widgets: error banner, restore offer, analysis editor, preset bar,
connection list,
log panel and the drag-out handle. They show state and emit intents; the window's presenters
decide what to run. (The phrase cards are in `ui.panel.phrases`.)"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from PyQt6.QtCore import QMimeData, QObject, QPoint, Qt, pyqtSignal
from PyQt6.QtGui import QDrag, QMouseEvent
from PyQt6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine import Key
from ui.panel.document import AnalysisEdits
from ui.panel.theme import Theme
from ui.services import ConnectionStatus

METERS = ("4/4", "3/4", "6/8", "2/4", "2/2", "9/8", "12/8")
KEY_NAMES = tuple(Key(pc, mode).name for mode in ("major", "minor") for pc in range(12))


class ErrorBanner(QFrame):
    """A non-modal strip above the roll: one line saying what went wrong, details on demand."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        row = QHBoxLayout()
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.toggle = QToolButton()
        self.toggle.setText("Details")
        self.toggle.setCheckable(True)
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setToolTip("Dismiss")
        row.addWidget(self.message, 1)
        row.addWidget(self.toggle)
        row.addWidget(self.close_button)
        layout.addLayout(row)
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setMaximumHeight(110)
        self.details.hide()
        layout.addWidget(self.details)
        self.toggle.toggled.connect(self.details.setVisible)
        self.close_button.clicked.connect(self.hide)
        self.hide()

    def show_error(self, message: str, details: str = "") -> None:
        self.message.setText(message)
        self.details.setPlainText(details or message)
        self.toggle.setChecked(False)
        self.show()


class RestoreOffer(QFrame):
    """"Restore the last session?" — shown on start when the store holds a clip."""

    restore = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("offer")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        self.message = QLabel()
        self.restore_button = QPushButton("Restore")
        self.dismiss_button = QPushButton("Dismiss")
        layout.addWidget(self.message, 1)
        layout.addWidget(self.restore_button)
        layout.addWidget(self.dismiss_button)
        self.restore_button.clicked.connect(self.restore.emit)
        self.restore_button.clicked.connect(self.hide)
        self.dismiss_button.clicked.connect(self.hide)
        self.hide()

    def offer(self, text: str) -> None:
        self.message.setText(text)
        self.show()


class AnalysisEditor(QGroupBox):
    """Key/mode (with the detector's confidence), meter, pickup and phrase structure. Every
    edit emits `edited`; "Auto" (or an empty field) hands the value back to the analysis."""

    edited = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Analysis", parent)
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.key = QComboBox()
        self.key.addItem("Auto")
        self.key.addItems(KEY_NAMES)
        self.detected = QLabel("–")
        self.detected.setObjectName("muted")
        self.detected.setWordWrap(True)
        self.meter = QComboBox()
        self.meter.addItems(METERS)
        self.pickup = QSpinBox()
        self.pickup.setRange(-1, 63)
        self.pickup.setSpecialValueText("Auto")
        self.pickup.setSuffix(" 16ths")
        self.pickup.setValue(-1)
        self.phrases = QLineEdit()
        self.phrases.setPlaceholderText("auto, e.g. A8A8B8B8")
        form.addRow("Key", self.key)
        form.addRow("", self.detected)
        form.addRow("Meter", self.meter)
        form.addRow("Pickup", self.pickup)
        form.addRow("Phrases", self.phrases)
        self._quiet = False
        self.key.currentIndexChanged.connect(self._changed)
        self.meter.currentIndexChanged.connect(self._changed)
        self.pickup.valueChanged.connect(self._changed)
        self.phrases.editingFinished.connect(self._phrases_done)
        self._last_phrases = ""

    def _changed(self) -> None:
        if not self._quiet:
            self.edited.emit()

    def _phrases_done(self) -> None:
        text = self.phrases.text().strip()
        if text != self._last_phrases:
            self._last_phrases = text
            self._changed()

    def reset(self, meter: str) -> None:
        """A new clip: every field back to Auto, the meter to the clip's."""
        self._quiet = True
        self.key.setCurrentIndex(0)
        self.pickup.setValue(-1)
        self.phrases.clear()
        self._last_phrases = ""
        if meter in METERS:
            self.meter.setCurrentText(meter)
        self.detected.setText("–")
        self._quiet = False

    def show_analysis(self, key: str, confidence: float, source: str, pickup_16th: int,
                      phrases: str) -> None:
        word = "given" if source == "user" else "detected"
        self.detected.setText(f"{word}: {key} · confidence {confidence:.2f}\n"
                              f"pickup {pickup_16th} 16ths · phrases {phrases}")
        self.phrases.setPlaceholderText(f"auto ({phrases})")

    def edits(self) -> AnalysisEdits:
        """What the user set; None (Auto, an empty field) leaves a value to the analysis."""
        num, den = self.meter.currentText().split("/")
        return AnalysisEdits(
            key=None if self.key.currentIndex() == 0 else self.key.currentText(),
            meter=(int(num), int(den)),
            pickup_16th=None if self.pickup.value() < 0 else self.pickup.value(),
            phrases=self.phrases.text().strip() or None)


class PresetBar(QWidget):
    """The preset selector with "Save as…" and "Delete": the preset presenter's view."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.box = QComboBox()
        self.box.setMinimumWidth(170)
        self.save_button = QPushButton("Save as…")
        self.delete_button = QPushButton("Delete")
        for widget in (QLabel(" Preset "), self.box, self.save_button, self.delete_button):
            layout.addWidget(widget)

    def show_presets(self, presets: Sequence[Any], index: int) -> None:
        self.box.blockSignals(True)  # a new list is no user's choice
        self.box.clear()
        for i, preset in enumerate(presets):
            self.box.addItem(preset.name + ("" if preset.factory else "  (yours)"), preset)
            self.box.setItemData(i, preset.description, Qt.ItemDataRole.ToolTipRole)
        self.box.setCurrentIndex(index)
        self.box.blockSignals(False)

    def show_deletable(self, deletable: bool) -> None:
        self.delete_button.setEnabled(deletable)

    def ask_preset_name(self) -> str | None:
        text, ok = QInputDialog.getText(self, "Save preset", "Name of the new preset:")
        return text.strip() if ok and text.strip() else None

    def confirm_delete(self, name: str) -> bool:
        return QMessageBox.question(self, "Delete preset", f"Delete your preset “{name}”?") == \
            QMessageBox.StandardButton.Yes


class ConnectionList(QGroupBox):
    """Each connection with a coloured state and, when not connected, what to do about it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Connections", parent)
        self._layout = QVBoxLayout(self)
        self._layout.setSpacing(4)
        self.labels: list[QLabel] = []

    def show_statuses(self, statuses: Sequence[ConnectionStatus], theme: Theme) -> None:
        for label in self.labels:
            self._layout.removeWidget(label)
            label.deleteLater()
        self.labels = []
        colours = {"connected": theme.ok, "waiting": theme.warn, "error": "#e5484d",
                   "off": theme.muted}
        words = {"connected": "connected", "waiting": "not connected yet", "error": "problem",
                 "off": "off"}
        for status in statuses:
            text = (f"<span style='color:{colours[status.state]}'>●</span> "
                    f"<b>{status.name}</b>: {words[status.state]}")
            if status.state != "off":
                detail = status.detail if len(status.detail) <= 90 else status.detail[:88] + "…"
                text += f" <span style='color:{theme.muted}'>({_escape(detail)})</span>"
            label = QLabel(text)
            label.setWordWrap(True)
            label.setToolTip(status.hint or status.detail)
            if status.hint and status.state in ("waiting", "error"):
                label.setText(text + f"<br><span style='color:{theme.muted}'>"
                              f"{_escape(status.hint)}</span>")
            self._layout.addWidget(label)
            self.labels.append(label)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class LogSignal(QObject):
    record = pyqtSignal(str)


class QtLogHandler(logging.Handler):
    """Python logging → the log panel, from any thread (the signal queues to the GUI)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.signal = LogSignal()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                            "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(RuntimeError):  # the widget is gone (shutting down)
            self.signal.record.emit(self.format(record))


class LogPanel(QPlainTextEdit):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(2000)
        self.setPlaceholderText("log")

    def add(self, line: str) -> None:
        self.appendPlainText(line)


class DragOut(QLabel):
    """Drag this onto a DAW track: a type-1 .mid (Melody/Chords/Piano) as a file URL."""

    def __init__(self, make_mime: Callable[[], QMimeData | None],
                 parent: QWidget | None = None) -> None:
        super().__init__("⇲ Drag .mid", parent)
        self.setObjectName("dragOut")
        self.setToolTip("Drag onto a DAW track or the desktop: Melody, Chords and Piano tracks")
        self._make_mime = make_mime
        self._press: QPoint | None = None

    def mousePressEvent(self, event: QMouseEvent | None) -> None:  # noqa: N802  # Qt's name
        if event is not None and event.button() == Qt.MouseButton.LeftButton:
            self._press = event.position().toPoint()

    def mouseMoveEvent(self, event: QMouseEvent | None) -> None:  # noqa: N802  # Qt's name
        if event is None or self._press is None:
            return
        if (event.position().toPoint() - self._press).manhattanLength() < 6:
            return
        self._press = None
        mime = self._make_mime()
        if mime is None:
            return
        drag = QDrag(self)
        drag.setMimeData(mime)
        drag.exec(Qt.DropAction.CopyAction)
