"""The transport bar over the roll: Play/Stop (Space), loop (the whole song or one phrase),
mute/solo per part, the output audition plays through, and the roll's view (voicing lane,
zoom, fit). It is the audition presenter's view: it shows state and hands every intent on;
`attach_audition` wires it into the window."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QToolBar, QToolButton, QWidget

from ui.panel.audition import NO_OUTPUT, PARTS
from ui.panel.presenters.audition import WHOLE_SONG, AuditionPresenter
from ui.panel.roll import ZOOM_STEP, PianoRoll

PLAY, STOP = "▶ Play", "■ Stop"
PLAYHEAD_MS = 30  # how often the playhead moves while playing
RESULT_SETTLE_MS = 150  # a new result is played once no newer one came for this long
FOLLOW_AT = 0.1  # a playhead leaving the visible roll is brought back this far from the left


class OutputBox(QComboBox):
    """The output chooser; `opening` fires as its list opens (the ports are listed again)."""

    opening = pyqtSignal()

    def showPopup(self) -> None:  # noqa: N802  # Qt's name
        self.opening.emit()
        super().showPopup()


class TransportBar(QToolBar):
    """Controls that do not fit (a narrow window) go to the bar's » menu."""

    def __init__(self, roll: PianoRoll, parent: QWidget | None = None) -> None:
        super().__init__("Audition", parent)
        self.roll = roll
        self.setObjectName("transport")
        self.setMovable(False)
        self.setFloatable(False)
        self.play_action = QAction("Play/Stop", self)  # the menu's text; the button's:
        self.play_action.setIconText(PLAY)
        self.play_action.setCheckable(True)
        self.play_action.setShortcut(QKeySequence(Qt.Key.Key_Space))
        self.play_action.setToolTip("Play from the playhead, or stop there (Space). Click the "
                                    "roll to move the playhead")
        self.addAction(self.play_action)
        self.loop_action = QAction("Loop", self)
        self.loop_action.setCheckable(True)
        self.loop_action.setShortcut(QKeySequence("Ctrl+Shift+Space"))
        self.loop_action.setToolTip("Play the range chosen beside it again and again "
                                    "(Ctrl+Shift+Space); click a phrase's label on the roll to "
                                    "loop that phrase")
        self.addAction(self.loop_action)
        self.loop_box = QComboBox()
        self.loop_box.addItem(WHOLE_SONG)
        self.loop_box.setToolTip("What Loop repeats: the whole song or one phrase (\"A · "
                                 "bars 1–8\")")
        self.loop_box.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.loop_box.setMinimumContentsLength(15)
        self.addWidget(self.loop_box)
        self.addSeparator()
        self.mute: dict[str, QToolButton] = {}
        self.solo: dict[str, QToolButton] = {}
        for part in PARTS:
            self.addWidget(self._part_controls(part))
        self.addSeparator()
        self.output_box = OutputBox()
        self.output_box.addItem(NO_OUTPUT)
        self.output_box.setToolTip("Where Play sends the parts (melody on MIDI channel 1, chords "
                                   "2, piano 3): a synth or a DAW track's MIDI input, or the "
                                   "built-in preview when FluidSynth is installed")
        self.output_box.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.output_box.setMinimumContentsLength(14)
        self.addWidget(self.output_box)
        self.addSeparator()
        self.voicings_action = QAction("Voicings", self)
        self.voicings_action.setCheckable(True)
        self.voicings_action.setToolTip("Show the Chords track's notes (the voicings sent to "
                                        "the DAW) in a lane of their own")
        self.zoom_in_action = QAction("+", self)
        self.zoom_in_action.setShortcut(QKeySequence.StandardKey.ZoomIn)
        self.zoom_in_action.setToolTip("Zoom in on the roll (Ctrl+wheel over the roll, Ctrl++)")
        self.zoom_out_action = QAction("−", self)
        self.zoom_out_action.setShortcut(QKeySequence.StandardKey.ZoomOut)
        self.zoom_out_action.setToolTip("Zoom out (Ctrl+wheel over the roll, Ctrl+-)")
        self.fit_action = QAction("Fit", self)
        self.fit_action.setShortcut(QKeySequence("Ctrl+0"))
        self.fit_action.setToolTip("Fit the whole song to the width of the roll (Ctrl+0)")
        self.view_actions = [self.voicings_action, self.zoom_out_action, self.zoom_in_action,
                             self.fit_action]
        for action in self.view_actions:
            self.addAction(action)
        self.timer = QTimer(self)
        self.timer.setInterval(PLAYHEAD_MS)
        self._wired = False

    def _part_controls(self, part: str) -> QWidget:
        box = QWidget()
        layout = QHBoxLayout(box)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.setSpacing(1)
        layout.addWidget(QLabel(part.capitalize()))
        for kind, text, tip in (("mute", "M", "Mute the {}"), ("solo", "S", "Solo the {}: only "
                                                               "soloed parts are heard")):
            button = QToolButton()
            button.setText(text)
            button.setCheckable(True)
            button.setToolTip(tip.format(part))
            button.setAccessibleName(f"{kind.capitalize()} {part}")
            button.setObjectName(f"{kind}_{part}")
            layout.addWidget(button)
            (self.mute if kind == "mute" else self.solo)[part] = button
        return box

    # ---- wiring -------------------------------------------------------------------------

    def bind(self, presenter: AuditionPresenter) -> None:
        """Hand every intent to `presenter` (once)."""
        if self._wired:
            return
        self._wired = True
        self.play_action.triggered.connect(lambda _on: presenter.toggle())
        self.loop_action.toggled.connect(presenter.set_looping)
        self.loop_box.activated.connect(presenter.choose_loop)
        for part in PARTS:
            self.mute[part].toggled.connect(lambda on, p=part: presenter.set_muted(p, on))
            self.solo[part].toggled.connect(lambda on, p=part: presenter.set_soloed(p, on))
        self.output_box.opening.connect(presenter.refresh_outputs)
        self.output_box.activated.connect(
            lambda i: presenter.choose_output(self.output_box.itemText(i)))
        self.timer.timeout.connect(presenter.tick)
        self.voicings_action.toggled.connect(self.roll.set_voicings)
        self.zoom_in_action.triggered.connect(lambda: self.roll.zoom_by(ZOOM_STEP))
        self.zoom_out_action.triggered.connect(lambda: self.roll.zoom_by(1 / ZOOM_STEP))
        self.fit_action.triggered.connect(self.roll.fit)
        self.roll.zoom_changed.connect(self._show_zoom)
        self.roll.seek.connect(presenter.seek)
        self.roll.phrase_clicked.connect(presenter.loop_phrase)
        self._show_zoom()

    def _show_zoom(self) -> None:
        self.fit_action.setEnabled(not self.roll.fitted)

    # ---- the presenter's view -------------------------------------------------------------

    def show_playing(self, playing: bool) -> None:
        if self.play_action.isChecked() != playing:
            self.play_action.setChecked(playing)
        text = STOP if playing else PLAY
        if self.play_action.iconText() != text:  # each change relays the bar out
            self.play_action.setIconText(text)
        if playing:
            self.timer.start()
        else:
            self.timer.stop()

    def show_playhead(self, beats: float | None) -> None:
        self.roll.set_playhead(beats)
        if beats is not None and self.timer.isActive():
            first, last = self.roll.visible_beats()
            if not first <= beats <= last:  # page along with playback
                self.roll.scroll_to_beat(beats, FOLLOW_AT)

    def show_loop(self, choices: Sequence[str], index: int,
                  span: tuple[float, float] | None) -> None:
        box = self.loop_box
        if [box.itemText(i) for i in range(box.count())] != list(choices):
            box.clear()
            box.addItems(list(choices))
        box.setCurrentIndex(index)
        if self.loop_action.isChecked() != (span is not None):
            self.loop_action.blockSignals(True)
            self.loop_action.setChecked(span is not None)
            self.loop_action.blockSignals(False)
        self.roll.set_loop(span)

    def show_outputs(self, names: Sequence[str], current: str) -> None:
        box = self.output_box
        if [box.itemText(i) for i in range(box.count())] != list(names):
            box.clear()
            box.addItems(list(names))
        box.setCurrentIndex(max(0, box.findText(current)))

    def show_status(self, text: str) -> None:
        window: Any = self.window()
        if hasattr(window, "show_status"):
            window.show_status(text)

    def report_error(self, message: str, err: BaseException | None, details: str = "") -> None:
        window: Any = self.window()
        if hasattr(window, "report_error"):
            window.report_error(message, err, details)


def attach_audition(window: Any) -> AuditionPresenter:
    """The audition presenter for `window` (a `PanelWindow` with `transport`, `roll`,
    `phrase_strip`, `document` and `background`), wired: results and clips reach it, the
    phrase strip scrolls with the roll."""
    transport: TransportBar = window.transport
    presenter = AuditionPresenter(transport, window.document, window.background.run)
    transport.bind(presenter)
    # Results that come quickly one after another (a burst of edits) are played once they
    # settle, latest wins: each new schedule costs the player's thread a few ms, and with one
    # per result the GUI thread's largest stall while generating grew from ~30 to ~50 ms.
    settled = QTimer(transport)
    settled.setSingleShot(True)
    settled.setInterval(RESULT_SETTLE_MS)
    settled.timeout.connect(presenter.document_changed)
    window.result_shown.connect(settled.start)
    window.clip_loaded.connect(presenter.clip_changed)
    window.phrase_strip.follow(window.roll)
    return presenter
