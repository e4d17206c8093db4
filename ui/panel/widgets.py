"""The panel's smaller widgets: error banner, notice line, restore offer, analysis editor (with
its phrase-string check), preset bar and preset editor, connection list, log panel and the
drag-out handle. They show state and emit intents; the window's presenters
decide what to run. (The phrase cards are in `ui.panel.phrases`.)"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

from PyQt6.QtCore import QMimeData, QObject, QPoint, Qt, pyqtSignal
from PyQt6.QtGui import QDrag, QMouseEvent
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine import Key, Melody, MelodyAnalysis
from ui.panel.document import AnalysisEdits
from ui.panel.theme import Theme
from ui.presets import PRESET_CONTROLS
from ui.services import ConnectionStatus

METERS = ("4/4", "3/4", "6/8", "2/4", "2/2", "9/8", "12/8")
KEY_NAMES = tuple(Key(pc, mode).name for mode in ("major", "minor") for pc in range(12))
PHRASE_GROUP = re.compile(r"([A-Za-z])(\d+)")
MAX_PHRASE_BARS = 64  # engine.analysis.phrases.MAX_PHRASE_BARS


def phrase_string_problem(text: str, total_bars: int | None = None,
                          last_onset_bar: int | None = None) -> str | None:
    """What is wrong with a typed phrase string (None: nothing), checked in the panel before
    it is used: a structure edit releases the phrase locks, so a string the engine would
    refuse must never get that far. The engine's rule (engine.analysis.parse_phrase_string):
    letter + bar count per phrase, 1-64 bars each, adding up to the melody's bars (fewer
    when no note starts in the bars left out)."""
    compact = re.sub(r"\s+", "", text)
    bars, position = 0, 0
    while position < len(compact):
        match = PHRASE_GROUP.match(compact, position)
        if match is None:
            return (f"“{compact[position:]}” is not a phrase: each is a letter and its bar "
                    "count, e.g. A8A8B8B8")
        count = int(match.group(2))
        if not 1 <= count <= MAX_PHRASE_BARS:
            return f"{match.group(0)}: a phrase has 1–{MAX_PHRASE_BARS} bars"
        bars, position = bars + count, match.end()
    if total_bars is not None and compact:
        short_but_covered = last_onset_bar is not None and last_onset_bar < bars < total_bars
        if bars != total_bars and not short_but_covered:
            return f"these phrases cover {bars} bars; the melody has {total_bars}"
    return None


def phrase_bars(melody: Melody, analysis: MelodyAnalysis) -> tuple[int, int]:
    """(bars from the first downbeat to the melody's end, bar of the last note onset), as the
    engine counts them for a phrase string."""
    from engine import melody_end_16th

    bar = analysis.meter.sixteenths_per_bar
    downbeat = analysis.downbeat_16th
    total = max(1, -(-(melody_end_16th(melody) - downbeat) // bar))
    last_onset = max((round(n.start_tick / melody.ticks_per_16th) for n in melody.notes),
                     default=downbeat)
    return total, (last_onset - downbeat) // bar


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
        self.toggle.setToolTip("Show the full text: the engine's message or the traceback")
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setToolTip("Hide this message; it comes back with the next error")
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


class Notice(QLabel):
    """One line about the clip on show that is not an error: e.g. notes the melody lost
    (chords in a melody track: the engine keeps the top line). Cleared with the next clip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("notice")
        self.setWordWrap(True)
        self.hide()

    def say(self, text: str) -> None:
        self.setText(f"⚠ {text}")
        self.setToolTip(text)
        self.show()

    def clear_notice(self) -> None:
        self.clear()
        self.hide()


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
        self.restore_button.setToolTip("Show the stored clip with the chords and piano it had")
        self.dismiss_button = QPushButton("Dismiss")
        self.dismiss_button.setToolTip("Start empty; the stored clip stays on disk")
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
        self.phrase_error = QLabel()
        self.phrase_error.setObjectName("phraseError")
        self.phrase_error.setWordWrap(True)
        self.phrase_error.hide()
        self.key.setToolTip("The key the chords are chosen in; Auto uses the detected key")
        self.meter.setToolTip("Bar length the melody is read in: changes where the bar lines "
                              "and phrases fall")
        self.pickup.setToolTip("Length of the upbeat before the first full bar, in 16ths")
        self.phrases.setToolTip("Phrase structure: a letter and its bar count per phrase "
                                "(same letter = similar phrase). A new structure releases "
                                "the phrase locks; empty = detected")
        form.addRow("Key", self.key)
        form.addRow("", self.detected)
        form.addRow("Meter", self.meter)
        form.addRow("Pickup", self.pickup)
        form.addRow("Phrases", self.phrases)
        form.addRow("", self.phrase_error)
        self._quiet = False
        # what the last analysis found, for checking a typed phrase string's bar count
        self._bars: tuple[int, int] | None = None  # (total bars, bar of the last onset)
        self._analysed: tuple[tuple[int, int], int] | None = None  # (meter, pickup)
        self.key.currentIndexChanged.connect(self._changed)
        self.meter.currentIndexChanged.connect(self._changed)
        self.pickup.valueChanged.connect(self._changed)
        self.phrases.editingFinished.connect(self._phrases_done)
        self._last_phrases = ""

    def _changed(self) -> None:
        if not self._quiet:
            self.edited.emit()

    def _phrases_done(self) -> None:
        """A typed structure is used only once it is known to fit: a refused one stays in the
        field with the reason under it, and changes nothing (the locks stay)."""
        text = self.phrases.text().strip()
        problem = phrase_string_problem(text, *self._bars_to_check())
        self.phrase_error.setText(problem or "")
        self.phrase_error.setVisible(problem is not None)
        if problem is None and text != self._last_phrases:
            self._last_phrases = text
            self._changed()

    def _bars_to_check(self) -> tuple[int | None, int | None]:
        """The bars a phrase string must cover, when the meter and pickup are still those the
        last analysis counted them in (else the engine has the last word)."""
        if self._bars is None or self._analysed is None:
            return None, None
        meter, pickup = self._analysed
        num, den = self.meter.currentText().split("/")
        if (int(num), int(den)) != meter or self.pickup.value() not in (-1, pickup):
            return None, None
        return self._bars

    def phrase_problem(self) -> str | None:
        """The inline error under the phrase field (None when the field is accepted)."""
        return self.phrase_error.text() if self.phrase_error.isVisibleTo(self) else None

    def reset(self, meter: str) -> None:
        """A new clip: every field back to Auto, the meter to the clip's."""
        self._quiet = True
        self.key.setCurrentIndex(0)
        self.pickup.setValue(-1)
        self.phrases.clear()
        self._last_phrases = ""
        self.phrase_error.hide()
        self._bars = self._analysed = None
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

    def show_bars(self, melody: Melody, analysis: MelodyAnalysis) -> None:
        """The bar count a typed phrase string is checked against (the analysed melody's)."""
        self._bars = phrase_bars(melody, analysis)
        self._analysed = ((analysis.meter.numerator, analysis.meter.denominator),
                          analysis.pickup_16th)

    def edits(self) -> AnalysisEdits:
        """What the user set; None (Auto, an empty field) leaves a value to the analysis."""
        num, den = self.meter.currentText().split("/")
        return AnalysisEdits(
            key=None if self.key.currentIndex() == 0 else self.key.currentText(),
            meter=(int(num), int(den)),
            pickup_16th=None if self.pickup.value() < 0 else self.pickup.value(),
            phrases=self._last_phrases or None)  # the last accepted structure


class PresetBar(QWidget):
    """The preset selector (in the toolbar) and the preset editor (`editor`, a group of
    producer-named controls with Save, Save as…, Rename…, Delete): the preset presenter's
    view. Edits are emitted as field changes (`edited`); the presenter makes the new preset."""

    edited = pyqtSignal(dict)  # keyword arguments for dataclasses.replace(preset, ...)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.box = QComboBox()
        self.box.setMinimumWidth(150)
        self.box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.box.setToolTip("The sound to generate with: chord style, how busy and full the "
                            "piano plays, where the chords sit. Edit it in the Preset panel")
        label = QLabel(" Preset ")
        label.setBuddy(self.box)
        layout.addWidget(label)
        layout.addWidget(self.box)
        self.editor = QGroupBox("Preset")
        form = QFormLayout(self.editor)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.controls: dict[str, QComboBox | QCheckBox] = {}
        for control in PRESET_CONTROLS:
            widget: QComboBox | QCheckBox
            if control.field == "colours":
                widget = QCheckBox(control.label)
                widget.toggled.connect(lambda on, c=control: self._edit(c, on))
                form.addRow(widget)
            else:
                widget = QComboBox()
                # narrow columns: the box may be narrower than its longest choice
                widget.setSizeAdjustPolicy(
                    QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
                widget.setMinimumContentsLength(8)
                for text, value in control.choices:
                    widget.addItem(text, value)
                widget.activated.connect(
                    lambda i, c=control, w=widget: self._edit(c, w.itemData(i)))
                form.addRow(control.label, widget)
            widget.setToolTip(control.tip)
            self.controls[control.field] = widget
        self.store_button = QPushButton("Save")
        self.store_button.setToolTip("Keep these settings in your preset")
        self.save_button = QPushButton("Save as…")
        self.save_button.setToolTip("Keep these settings as a new preset of yours (factory "
                                    "presets cannot be changed)")
        self.rename_button = QPushButton("Rename…")
        self.rename_button.setToolTip("Give your preset another name")
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Remove your preset (asks first); factory presets stay")
        buttons = QGridLayout()  # two by two: fits a narrow column
        buttons.setSpacing(4)
        for i, button in enumerate((self.store_button, self.save_button, self.rename_button,
                                    self.delete_button)):
            button.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Fixed)
            buttons.addWidget(button, i // 2, i % 2)
        form.addRow(buttons)
        self._preset: Any = None

    def _edit(self, control: Any, value: Any) -> None:
        if self._preset is not None and control.value_of(self._preset) != value:
            self.edited.emit(control.change(self._preset, value))

    def show_presets(self, presets: Sequence[Any], index: int) -> None:
        self.box.blockSignals(True)  # a new list is no user's choice
        self.box.clear()
        for i, preset in enumerate(presets):
            self.box.addItem(_preset_label(preset), preset)
            self.box.setItemData(i, preset.description, Qt.ItemDataRole.ToolTipRole)
        self.box.setCurrentIndex(index)
        self.box.blockSignals(False)

    def show_preset(self, preset: Any, index: int, modified: bool) -> None:
        self._preset = preset
        if 0 <= index < self.box.count():
            self.box.setItemText(index, _preset_label(preset) + (" • edited" if modified
                                                                 else ""))
        for control in PRESET_CONTROLS:
            widget = self.controls[control.field]
            widget.blockSignals(True)
            value = control.value_of(preset)
            if isinstance(widget, QCheckBox):
                widget.setChecked(bool(value))
            else:
                widget.setCurrentIndex(max(0, widget.findData(value)))
            widget.blockSignals(False)
        self.editor.setTitle(f"Preset: {preset.name}" + (" (edited)" if modified else ""))
        self.store_button.setEnabled(modified and not preset.factory)
        self.rename_button.setEnabled(not preset.factory)
        self.delete_button.setEnabled(not preset.factory)
        self.save_button.setDefault(modified and preset.factory)

    def ask_preset_name(self, title: str, default: str = "") -> str | None:
        text, ok = QInputDialog.getText(self, title, "Name of the preset:", text=default)
        return text.strip() if ok and text.strip() else None

    def confirm_delete(self, name: str) -> bool:
        return QMessageBox.question(self, "Delete preset", f"Delete your preset “{name}”?") == \
            QMessageBox.StandardButton.Yes


def _preset_label(preset: Any) -> str:
    return preset.name + ("" if preset.factory else "  (yours)")


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
        colours = {"connected": theme.ok, "listening": theme.ok, "waiting": theme.warn,
                   "error": "#e5484d", "off": theme.muted}
        words = {"connected": "connected", "listening": "listening", "waiting":
                 "not connected yet", "error": "problem", "off": "off"}
        for status in statuses:
            text = (f"<span style='color:{colours[status.state]}'>●</span> "
                    f"<b>{status.name}</b>: {words[status.state]}")
            if status.state != "off":
                detail = status.detail if len(status.detail) <= 90 else status.detail[:88] + "…"
                text += f" <span style='color:{theme.muted}'>({_escape(detail)})</span>"
            label = QLabel(text)
            label.setWordWrap(True)
            label.setToolTip(status.hint or status.detail)
            if status.hint and status.state in ("waiting", "listening", "error"):
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
        self._make_mime = make_mime
        self._press: QPoint | None = None
        self.setEnabled(False)

    def setEnabled(self, enabled: bool) -> None:  # noqa: N802  # Qt's name
        """Disabled looks disabled (the style sheet's :disabled) and says why."""
        super().setEnabled(enabled)
        self.setToolTip("Drag onto a DAW track or the desktop to drop a .mid with Melody, "
                        "Chords and Piano tracks" if enabled else
                        "Nothing to drag yet: open a melody and generate first")
        self.setCursor(Qt.CursorShape.OpenHandCursor if enabled else Qt.CursorShape.ArrowCursor)

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
