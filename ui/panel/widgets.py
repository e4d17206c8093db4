"""The panel's smaller widgets: error banner, restore offer, analysis editor, per-phrase strip,
connection list, log panel and the drag-out handle. They show state and emit intents; the main
window decides what to run."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from PyQt6.QtCore import QMimeData, QObject, QPoint, Qt, pyqtSignal
from PyQt6.QtGui import QDrag, QMouseEvent
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.types import STYLES, Key, PhraseHarmony
from ui.panel.theme import Theme, tinted
from ui.services import ConnectionStatus

STYLE_NAMES = {"pop_standard": "Pop standard", "pop_complex": "Pop complex", "dark": "Dark",
               "rnb": "R&B"}
METERS = ("4/4", "3/4", "6/8", "2/4", "2/2", "9/8", "12/8")
KEY_NAMES = tuple(Key(pc, mode).name for mode in ("major", "minor") for pc in range(12))


class Background(QObject):
    """Runs short blocking calls (file read/write, settings, imports) off the GUI thread, one
    after another on one long-lived thread, and hands each value or error back on the GUI
    thread. (Starting a thread per call made the GUI thread wait for it to start: tens of ms
    on a loaded machine.)"""

    done = pyqtSignal(int, object)
    failed = pyqtSignal(int, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._next = 0
        self._handlers: dict[int, tuple[Callable[[Any], None], Callable[[Exception], None]]] = {}
        self._calls: queue.SimpleQueue[tuple[int, Callable[[], Any]] | None] = \
            queue.SimpleQueue()
        self.done.connect(self._on_done)
        self.failed.connect(self._on_failed)
        self._thread = threading.Thread(target=self._run, name="accobridge-panel-io",
                                        daemon=True)
        self._thread.start()

    def run(self, work: Callable[[], Any], on_done: Callable[[Any], None],
            on_error: Callable[[Exception], None]) -> int:
        self._next += 1
        token = self._next
        self._handlers[token] = (on_done, on_error)
        self._calls.put((token, work))
        return token

    def close(self) -> None:
        self._calls.put(None)

    def _run(self) -> None:
        while True:
            call = self._calls.get()
            if call is None:
                return
            token, work = call
            try:
                value = work()
            except Exception as err:  # handed to the GUI thread, shown in the banner
                self.failed.emit(token, err)
            else:
                self.done.emit(token, value)

    def _on_done(self, token: int, value: object) -> None:
        handlers = self._handlers.pop(token, None)
        if handlers is not None:
            handlers[0](value)

    def _on_failed(self, token: int, error: object) -> None:
        handlers = self._handlers.pop(token, None)
        if handlers is not None and isinstance(error, Exception):
            handlers[1](error)


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

    # values: None = leave it to the analysis
    def key_choice(self) -> str | None:
        return None if self.key.currentIndex() == 0 else self.key.currentText()

    def pickup_choice(self) -> int | None:
        return None if self.pickup.value() < 0 else self.pickup.value()

    def phrases_choice(self) -> str | None:
        return self.phrases.text().strip() or None

    def meter_choice(self) -> tuple[int, int]:
        num, den = self.meter.currentText().split("/")
        return int(num), int(den)


class PhraseCard(QFrame):
    """One phrase: style override, top-k alternatives with scores (click one to choose it),
    regenerate this phrase only, lock. `show_harmony` refills it in place after each result."""

    style_changed = pyqtSignal(int, object)  # phrase index, style or None
    alternative_chosen = pyqtSignal(int, int)  # phrase index, alternative index
    regenerate = pyqtSignal(int)
    lock_changed = pyqtSignal(int, bool)

    def __init__(self, index: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.index = index
        self.setObjectName("phraseCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumWidth(280)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 6)
        head = QHBoxLayout()
        self.title = QLabel()
        self.lock = QCheckBox("Lock")
        self.lock.setToolTip("Keep this phrase's chords when everything is generated again")
        head.addWidget(self.title, 1)
        head.addWidget(self.lock)
        layout.addLayout(head)
        row = QHBoxLayout()
        self.style_box = QComboBox()
        self.style_box.addItem("Preset style", None)
        for s in STYLES:
            self.style_box.addItem(STYLE_NAMES[s], s)
        self.regen = QPushButton("Regenerate")
        self.regen.setToolTip("New chords for this phrase only (the others stay)")
        self.style_box.setToolTip("Chord style for this phrase (overrides the preset's)")
        row.addWidget(self.style_box, 1)
        row.addWidget(self.regen)
        layout.addLayout(row)
        self.alternatives = QListWidget()
        self.alternatives.setMinimumHeight(96)
        layout.addWidget(self.alternatives, 1)
        self.lock.toggled.connect(lambda on: self.lock_changed.emit(self.index, on))
        self.regen.clicked.connect(lambda: self.regenerate.emit(self.index))
        self.style_box.currentIndexChanged.connect(
            lambda _: self.style_changed.emit(self.index, self.style_box.currentData()))
        self.alternatives.itemClicked.connect(self._clicked)
        self._tint: tuple[str, bool] | None = None

    def show_harmony(self, harmony: PhraseHarmony, key: Key, style_override: str | None,
                     locked: bool, theme: Theme, path_score: float) -> None:
        """`path_score`: the whole path's score (eq. 5) with the chosen progressions, the
        measure each alternative's score is given in (that path with it swapped in)."""
        for widget in (self.lock, self.style_box):
            widget.blockSignals(True)
        # Only what changed is touched: each setter relayouts or repaints, and a palette
        # change travels to every child widget.
        p = harmony.phrase
        _set_text(self.title, f"<b>Phrase {p.label}</b> · bars {p.start_bar + 1}–{p.end_bar}"
                  + (" · <b>locked</b>" if locked else ""))
        first = ("Preset's style" if style_override is not None else
                 f"{STYLE_NAMES.get(harmony.style, harmony.style)} (preset)")
        if self.style_box.itemText(0) != first:
            self.style_box.setItemText(0, first)
        self.lock.setChecked(locked)
        index = max(0, self.style_box.findData(style_override)) if style_override else 0
        if self.style_box.currentIndex() != index:
            self.style_box.setCurrentIndex(index)
        rows = [(f"● {_progression(harmony.chosen.chords, key)}   {path_score:.3f}",
                 "the chosen progression (whole-path score)")]
        rows += [(f"{i + 1}. {_progression(alt.chords, key)}   {alt.path_score:.3f}",
                  f"{STYLE_NAMES.get(alt.style, alt.style)}; whole-path score with this "
                  "progression; click to use it") for i, alt in enumerate(harmony.alternatives)]
        if self.alternatives.count() != len(rows):  # else relabel: no items made or deleted
            self.alternatives.clear()
            for i in range(len(rows)):
                fresh = QListWidgetItem()
                fresh.setData(Qt.ItemDataRole.UserRole, i - 1)  # -1: the chosen one
                self.alternatives.addItem(fresh)
        for i, (text, tip) in enumerate(rows):
            row = self.alternatives.item(i)
            if row is not None and row.text() != text:
                row.setText(text)
                row.setToolTip(tip)
        self.alternatives.setEnabled(not locked)
        self.regen.setEnabled(not locked)
        if self._tint != (theme.name, locked):
            self._tint = (theme.name, locked)
            tinted(self, theme, locked)
        for widget in (self.lock, self.style_box):
            widget.blockSignals(False)

    def _clicked(self, item: QListWidgetItem) -> None:
        alternative = item.data(Qt.ItemDataRole.UserRole)
        if isinstance(alternative, int) and alternative >= 0:
            self.alternative_chosen.emit(self.index, alternative)


def _set_text(label: QLabel, text: str) -> None:
    if label.text() != text:
        label.setText(text)


def _progression(chords: Sequence[Any], key: Key) -> str:
    symbols: list[str] = []
    for ev in chords:
        symbol = ev.chord.symbol(key)
        if not symbols or symbols[-1] != symbol:
            symbols.append(symbol)
    text = " ".join(symbols[:8])
    return text + (" …" if len(symbols) > 8 else "")


class PhraseStrip(QScrollArea):
    """The phrase cards side by side (scrolls sideways for long songs). Card `i` always shows
    phrase `i`, and cards are kept, hidden, when a song has fewer phrases: a card's creation and
    first show are the costliest GUI-thread work in the panel (8-13 ms each), so they happen
    once per card, ahead of time where possible (`prepare`), never again for each result. The
    cards' intents are re-emitted by the strip with the phrase index."""

    style_changed = pyqtSignal(int, object)  # phrase index, style or None
    alternative_chosen = pyqtSignal(int, int)  # phrase index, alternative index
    regenerate = pyqtSignal(int)
    lock_changed = pyqtSignal(int, bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.cards: list[PhraseCard] = []  # the cards on show, card i = phrase i
        self._made: list[PhraseCard] = []  # every card made so far, shown or not
        self._inner = QWidget()
        self._layout = QHBoxLayout(self._inner)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self.placeholder = QLabel("Phrases appear here after the first result.")
        self.placeholder.setObjectName("muted")
        self._layout.addWidget(self.placeholder)
        self.setWidget(self._inner)

    def prepare(self, count: int) -> bool:
        """Make one more hidden card if fewer than `count` exist; False when there are enough.
        Called from idle timer turns, one card per turn."""
        if len(self._made) >= count:
            return False
        self._make()
        return True

    def card(self, index: int) -> PhraseCard:
        """Phrase `index`'s card (made now if it does not exist yet), shown or not."""
        while len(self._made) <= index:
            self._make()
        return self._made[index]

    def lay_out(self, card: PhraseCard) -> None:
        """Do a hidden card's layout for its new content now (shown and hidden again in the
        same turn, so nothing is painted): showing it later is then cheap. (Showing 8 freshly
        filled cards at once took 10-20 ms of the GUI thread in one turn.)"""
        if card.isHidden():
            card.show()
            card.hide()

    def show_cards(self, count: int) -> None:
        """Show the first `count` cards together: one layout and one paint of the strip (one
        card at a time relaid and repainted the strip for each, 5-6 ms a card)."""
        while len(self._made) < count:
            self._make()
        self.setUpdatesEnabled(False)
        for card in self._made[len(self.cards):count]:
            card.show()
        for card in self._made[count:len(self.cards)]:
            card.hide()
        self.cards = self._made[:count]
        self.placeholder.setVisible(not self.cards)
        self.setUpdatesEnabled(True)

    def clear(self, placeholder: str = "") -> None:
        """Hide every card (they wait for the next song) and show the placeholder."""
        for card in self.cards:
            card.hide()
        self.cards = []
        self.placeholder.show()
        if placeholder:
            self.placeholder.setText(placeholder)

    def _make(self) -> None:
        index = len(self._made)
        card = PhraseCard(index)
        card.style_box.view()  # Qt makes the popup's view on first use: now, not on show
        self._layout.addWidget(card, 1)
        # A widget's first show (polish, fonts, layout set-up) costs far more than any later
        # one: pay it here, hidden again in the same turn so nothing is painted.
        card.show()
        card.hide()
        card.style_changed.connect(self.style_changed)
        card.alternative_chosen.connect(self.alternative_chosen)
        card.regenerate.connect(self.regenerate)
        card.lock_changed.connect(self.lock_changed)
        self._made.append(card)


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
