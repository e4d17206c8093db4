"""The panel's main window: what arrived (roll + analysis), how to steer it (preset, per-phrase
choices, locks), where it goes (send to DAW, save, drag out), and how things stand
(connections, progress, errors, log).

The GUI thread only arranges widgets and submits requests; the engine runs on the session's
worker (`ui.panel.link`), files are read and written on `Background` threads.
"""

from __future__ import annotations

import gc
import logging
import tempfile
import threading
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from PyQt6.QtCore import QByteArray, QMimeData, Qt, QTimer, QUrl, pyqtSignal
from PyQt6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent
from PyQt6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from bridge.store import ClipStore
from bridge.types import Clip, GenerateResult
from engine.types import (
    Arrangement,
    ArrangeOptions,
    HarmonizeOptions,
    Melody,
    Meter,
    ProgressionChoice,
)
from ui.panel.jobs import PANEL_SOURCE, PanelOutcome, PanelRequest, clip_from_melody
from ui.panel.link import EngineLink
from ui.panel.roll import PianoRoll
from ui.panel.rollview import RollView, view_of_clip, view_of_melody, with_locks
from ui.panel.theme import THEMES, apply_theme, local_style, muted
from ui.panel.widgets import (
    AnalysisEditor,
    Background,
    ConnectionList,
    DragOut,
    ErrorBanner,
    LogPanel,
    PhraseStrip,
    QtLogHandler,
    RestoreOffer,
)

logger = logging.getLogger("accobridge.panel")

MIDI_SUFFIXES = (".mid", ".midi", ".musicxml", ".mxl", ".xml")
PROGRESS_DELAY_MS = 300  # show progress for anything that takes longer (issue 6)
PREPARED_CARDS = 8  # phrase cards made in idle turns before any result (a 64-bar song's 8)
PREPARE_EVERY_MS = 40


def warm_up() -> None:
    """The heavy imports and loads, done once after the window shows (on a background thread)
    so the first generation does not pay for them."""
    import engine.edits  # noqa: F401
    from engine.arranger import arrange  # noqa: F401
    from engine.midi_io import read_melody  # noqa: F401
    from engine.pipeline import prepare

    prepare()  # the template library, and torch with the learned chord scorer (≈ 1.5 s)
    # Everything loaded so far lives as long as the panel: move it out of the collector's
    # reach, so that a full (generation 2) collection no longer scans the template library
    # and the Qt wrappers. Measured: full collections stopped every thread for 60-140 ms
    # (the GUI's included) before; see benchmarks/panel_latency.py.
    gc.freeze()


class PanelWindow(QMainWindow):
    """The resident window. Signals for tests and the screenshot: `result_shown` (a new result
    is on screen), `error_shown(message)`, `saved(path)`, `engine_ready`, `clip_loaded`."""

    result_shown = pyqtSignal()
    error_shown = pyqtSignal(str)
    saved = pyqtSignal(str)
    engine_ready = pyqtSignal()
    clip_loaded = pyqtSignal()
    settings_saved = pyqtSignal()
    restore_offered = pyqtSignal()

    def __init__(self, settings: Any, *, settings_file: Path | None = None,
                 presets: Any = None, store: ClipStore | None = None,
                 start_services: bool = True, offer_restore: bool = True,
                 theme: str | None = None) -> None:
        super().__init__()
        from ui.presets import PresetStore

        self.settings = settings
        self.settings_file = settings_file
        self.presets = presets if presets is not None else PresetStore()
        self.theme = THEMES.get(str(theme or getattr(settings, "theme", "dark")), THEMES["dark"])
        self.link = EngineLink(store, debounce_s=getattr(settings, "debounce_ms", 150) / 1000)
        self.background = Background(self)
        # the document
        self.source = PANEL_SOURCE
        self.clip: Clip | None = None
        self.melody: Melody | None = None
        self.arrangement: Arrangement | None = None
        self.view: RollView | None = None  # the arrangement's roll view (without lock marks)
        self.restored: GenerateResult | None = None
        self.locked: dict[int, ProgressionChoice] = {}
        self.phrase_styles: dict[int, str] = {}
        self.latest_request: str | None = None
        self._temp_dir = tempfile.TemporaryDirectory(prefix="accobridge-panel-")
        self._closed = False
        self._fill_generation = 0  # latest _show_arrangement; older card refills stop
        self._regenerations = 0  # "Regenerate phrase" clicks: the seed of the next one
        self._settings_lock = threading.Lock()  # one settings write at a time
        self._settings_to_write: Any = None  # the newest settings snapshot to write
        self._restorable: tuple[str, Clip, GenerateResult | None] | None = None
        self._build()
        self._apply_theme()
        self._load_presets(getattr(settings, "preset", None))
        self._wire()
        geometry = getattr(settings, "window_geometry", "")
        if geometry:
            self._restore_geometry(str(geometry))
        else:
            self.resize(1280, 800)
        if start_services:
            self.restart_services()
        if offer_restore:
            self._offer_restore()

    # ---- layout -------------------------------------------------------------------------

    def _build(self) -> None:
        self.setWindowTitle("AccoBridge")
        self.setAcceptDrops(True)
        bar = QToolBar("Main")
        bar.setMovable(False)
        self.addToolBar(bar)
        self.open_action = QAction("Open…", self)
        self.generate_action = QAction("Generate", self)
        self.send_action = QAction("Send to DAW", self)
        self.save_action = QAction("Save .mid…", self)
        self.settings_action = QAction("Settings…", self)
        bar.addAction(self.open_action)
        bar.addAction(self.generate_action)
        bar.addAction(self.send_action)
        bar.addAction(self.save_action)
        self.drag_out = DragOut(self.export_mime)
        bar.addWidget(self.drag_out)
        bar.addSeparator()
        bar.addWidget(QLabel(" Preset "))
        self.preset_box = QComboBox()
        self.preset_box.setMinimumWidth(170)
        bar.addWidget(self.preset_box)
        self.save_preset_button = QPushButton("Save as…")
        self.delete_preset_button = QPushButton("Delete")
        bar.addWidget(self.save_preset_button)
        bar.addWidget(self.delete_preset_button)
        bar.addSeparator()
        self.live_box = QCheckBox("Live mode")
        self.live_box.setToolTip("Generate again automatically whenever the DAW clip changes")
        self.live_box.setChecked(bool(getattr(self.settings, "live_mode", True)))
        bar.addWidget(self.live_box)
        bar.addAction(self.settings_action)

        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(6, 4, 6, 2)
        self.banner = ErrorBanner()
        self.offer = RestoreOffer()
        outer.addWidget(self.banner)
        outer.addWidget(self.offer)
        split = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        self.analysis = AnalysisEditor()
        self.connections = ConnectionList()
        self.log_panel = LogPanel()
        left_layout.addWidget(self.analysis)
        left_layout.addWidget(self.connections)
        left_layout.addWidget(QLabel("Log"))
        left_layout.addWidget(self.log_panel, 1)
        left.setMinimumWidth(300)
        left.setMaximumWidth(380)
        right = QSplitter(Qt.Orientation.Vertical)
        self.roll = PianoRoll()
        roll_scroll = QScrollArea()
        roll_scroll.setWidgetResizable(True)
        roll_scroll.setWidget(self.roll)
        self.title = QLabel("No clip yet")
        self.title.setObjectName("muted")
        roll_box = QWidget()
        roll_layout = QVBoxLayout(roll_box)
        roll_layout.setContentsMargins(0, 0, 0, 0)
        roll_layout.addWidget(self.title)
        roll_layout.addWidget(roll_scroll, 1)
        self.phrase_strip = PhraseStrip()
        self.phrase_strip.setMinimumHeight(200)
        right.addWidget(roll_box)
        right.addWidget(self.phrase_strip)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([320, 960])
        outer.addWidget(split, 1)
        self.setCentralWidget(central)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setRange(0, 100)
        self.progress.hide()
        self.status_label = QLabel("Starting…")
        status = self.statusBar()
        assert status is not None
        status.addWidget(self.status_label, 1)
        status.addPermanentWidget(self.progress)
        self._progress_timer = QTimer(self)
        self._progress_timer.setSingleShot(True)
        self._progress_timer.timeout.connect(self.progress.show)
        self._edit_timer = QTimer(self)  # analysis edits: debounced, latest wins
        self._edit_timer.setSingleShot(True)
        self._edit_timer.setInterval(int(getattr(self.settings, "debounce_ms", 150)))
        self._edit_timer.timeout.connect(self.generate)
        self._prepare_timer = QTimer(self)  # phrase cards made ahead, one per idle turn
        self._prepare_timer.setInterval(PREPARE_EVERY_MS)
        self._prepare_timer.timeout.connect(self._prepare_cards)
        self._prepare_timer.start()
        self.log_handler = QtLogHandler()
        self.log_handler.signal.record.connect(self.log_panel.add)
        logging.getLogger().addHandler(self.log_handler)
        if logging.getLogger().level > logging.INFO or logging.getLogger().level == 0:
            logging.getLogger().setLevel(logging.INFO)
        self._update_actions()

    def _wire(self) -> None:
        self.open_action.triggered.connect(self.choose_file)
        self.generate_action.triggered.connect(self.generate)
        self.send_action.triggered.connect(self.send_to_daw)
        self.save_action.triggered.connect(self.choose_save_file)
        self.settings_action.triggered.connect(self.open_settings)
        self.preset_box.currentIndexChanged.connect(self._preset_changed)
        self.save_preset_button.clicked.connect(self.save_preset_as)
        self.delete_preset_button.clicked.connect(self.delete_preset)
        self.live_box.toggled.connect(self._live_toggled)
        self.analysis.edited.connect(self._analysis_edited)
        self.offer.restore.connect(self.restore_last)
        self.phrase_strip.alternative_chosen.connect(self.choose_alternative)
        self.phrase_strip.regenerate.connect(self.regenerate_phrase)
        self.phrase_strip.lock_changed.connect(self.set_locked)
        self.phrase_strip.style_changed.connect(self.set_phrase_style)
        self.link.outcome.connect(self._on_outcome)
        self.link.failed.connect(self._on_failed)
        self.link.status.connect(self._on_status)
        self.link.clip_arrived.connect(self._on_daw_clip)
        self.link.connections_changed.connect(self._show_connections)

    def _apply_theme(self) -> None:
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, self.theme)
        self.banner.setStyleSheet(local_style("banner", self.theme))
        self.offer.setStyleSheet(local_style("offer", self.theme))
        self.drag_out.setStyleSheet(local_style("drag", self.theme))
        for label in self.findChildren(QLabel):
            if label.objectName() == "muted":
                muted(label, self.theme)
        self.roll.set_theme(self.theme)
        self._show_connections()
        if self.arrangement is not None:
            self._show_arrangement()

    def _restore_geometry(self, geometry: str) -> None:
        """`Settings.window_geometry`: QWidget.saveGeometry() as base64."""
        if not self.restoreGeometry(QByteArray.fromBase64(geometry.encode("ascii"))):
            self.resize(1280, 800)

    # ---- start-up -----------------------------------------------------------------------

    def start_warm_up(self) -> None:
        """Load the engine in the background after the window shows (progress if slow)."""
        self.status_label.setText("Loading the engine…")
        self.progress.setRange(0, 0)
        self._progress_timer.start(PROGRESS_DELAY_MS)
        self.background.run(warm_up, self._warm, self._warm_failed)

    def _warm(self, _value: object) -> None:
        logger.info("engine loaded")
        self._end_progress()
        self.status_label.setText("Ready")
        self.engine_ready.emit()

    def _warm_failed(self, err: Exception) -> None:
        self._end_progress()
        self.report_error("The engine could not be loaded", err)

    def _offer_restore(self) -> None:
        """Look for the newest stored clip on the I/O thread (it reads every session file),
        then offer it."""
        store, session = self.link.store, self.link.session

        def newest() -> tuple[str, Clip, GenerateResult | None] | None:
            found: tuple[float, str] | None = None
            for source in store.sources():
                try:
                    stamp = store.clip_path(source).stat().st_mtime
                except OSError:
                    continue
                if found is None or stamp > found[0]:
                    found = (stamp, source)
            if found is None:
                return None
            clip, result = session.last(found[1])
            return None if clip is None else (found[1], clip, result)

        def offer(restorable: tuple[str, Clip, GenerateResult | None] | None) -> None:
            if restorable is None or self.clip is not None:
                return  # nothing stored, or the user has moved on already
            self._restorable = restorable
            source, clip, result = restorable
            what = "with its chords and piano" if result is not None else "(no result yet)"
            self.offer.offer(f"Last session: “{clip.name}” from {source}, {len(clip.notes)} "
                             f"notes {what}. Restore it?")
            self.restore_offered.emit()

        self.background.run(newest, offer,
                            lambda err: logger.warning("last session not read: %s", err))

    def restore_last(self) -> None:
        """Show the stored clip and result (no engine run; Generate makes them editable)."""
        if self._restorable is None:
            return
        source, clip, result = self._restorable
        self.source = source
        self._set_clip(clip, None)
        if result is not None:
            self.restored = result
            self.roll.set_view(view_of_clip(clip, result))
            self.phrase_strip.clear("Restored result: press Generate to edit phrases.")
            self._update_actions()
            self.result_shown.emit()
        logger.info("restored the last clip from %s", source)

    # ---- clips in ---------------------------------------------------------------------------

    def choose_file(self) -> None:
        start = getattr(self.settings, "last_export_dir", None) or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a melody", start, "Melody (*.mid *.midi *.musicxml *.mxl *.xml)")
        if path:
            self.load_file(Path(path))

    def load_file(self, path: Path) -> None:
        """Read a melody file on a background thread, then generate for it."""
        def read() -> Melody:
            from engine.midi_io import read_melody  # mido's import, too, off the GUI thread
            from engine.pipeline import require_one_meter

            melody = read_melody(path)
            require_one_meter(melody, "the panel")  # its clip and roll carry one meter
            return melody

        self.status_label.setText(f"Reading {path.name}…")
        self.background.run(read,
                            lambda melody: self.load_melody(melody, path.stem),
                            lambda err: self.report_error(f"Could not open {path.name}", err))

    def load_melody(self, melody: Melody, name: str) -> None:
        """Make `melody` the panel's clip (saved as the panel's last clip) and generate."""
        logger.info("loaded “%s”: %d notes, %s", name, len(melody.notes), melody.meter.name)
        self.source = PANEL_SOURCE
        self._set_clip(clip_from_melody(melody, PANEL_SOURCE, name), melody)
        self.generate()

    def load_clip(self, clip: Clip, generate: bool = True) -> None:
        """Make a bridge clip (beats) the panel's clip, e.g. one typed in by a test or a tool."""
        self.source = PANEL_SOURCE
        self._set_clip(replace(clip, source=PANEL_SOURCE), None)
        if generate:
            self.generate()

    def _set_clip(self, clip: Clip, melody: Melody | None) -> None:
        self.clip, self.melody = clip, melody
        self.arrangement = self.restored = self.view = None
        self.locked.clear()
        self.phrase_styles.clear()
        self.analysis.reset(f"{clip.ts_num}/{clip.ts_den}")
        self.title.setText(f"{clip.name} — {len(clip.notes)} notes, {clip.ts_num}/{clip.ts_den}, "
                           f"{clip.tempo_bpm:.0f} BPM · from {self.source}")
        if melody is not None:
            self.roll.set_view(view_of_melody(melody))
        else:
            self.roll.set_view(view_of_clip(clip))
        self.phrase_strip.clear("Generating…")
        self.banner.hide()
        self._update_actions()
        self.clip_loaded.emit()

    def _on_daw_clip(self, source: str, clip: object) -> None:
        if not isinstance(clip, Clip):
            return
        logger.info("clip “%s” arrived from %s (%d notes)", clip.name, source, len(clip.notes))
        if not self.live_box.isChecked():
            self.source = source
            self._set_clip(clip, None)
            self.phrase_strip.clear("Live mode is off: press Generate, then Send to DAW.")

    def dragEnterEvent(self, event: QDragEnterEvent | None) -> None:  # noqa: N802  # Qt's name
        if event is not None and self._dropped_file(event.mimeData()) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent | None) -> None:  # noqa: N802  # Qt's name
        if event is None:
            return
        path = self._dropped_file(event.mimeData())
        if path is not None:
            event.acceptProposedAction()
            self.load_file(path)

    @staticmethod
    def _dropped_file(mime: QMimeData | None) -> Path | None:
        if mime is None or not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile() and url.toLocalFile().lower().endswith(MIDI_SUFFIXES):
                return Path(url.toLocalFile())
        return None

    # ---- options ------------------------------------------------------------------------

    def current_preset(self) -> Any:
        return self.preset_box.currentData()

    def arrange_options(self) -> ArrangeOptions:
        """The preset's options with the analysis edits and per-phrase styles on top."""
        key_text = self.analysis.key_choice()
        key = None
        if key_text is not None:
            from engine.analysis.key import parse_key

            tonic, mode = key_text.split(" ")
            key = parse_key(tonic, mode)
        count = len(self.arrangement.harmonization.phrases) if self.arrangement else 0
        count = max([count] + [i + 1 for i in self.phrase_styles])
        styles = tuple(self.phrase_styles.get(i) for i in range(count))
        preset = self.current_preset()
        options = ArrangeOptions(HarmonizeOptions())
        if preset is not None:
            options = preset.arrange_options(options)
        return replace(options, harmonize=replace(
            options.harmonize, key=key, phrases=self.analysis.phrases_choice(),
            pickup_16th=self.analysis.pickup_choice(),
            phrase_styles=styles,  # type: ignore[arg-type]  # values come from STYLES
        ))

    def send_parts(self) -> tuple[str, ...]:
        preset = self.current_preset()
        parts = tuple(getattr(preset, "send_parts", ()) or ("chords", "piano"))
        return parts

    def _request_melody(self) -> Melody | None:
        """The melody with the meter the analysis editor says (None: read it from the clip)."""
        num, den = self.analysis.meter_choice()
        melody = self.melody
        if melody is None:
            clip = self.clip
            if clip is None or (clip.ts_num, clip.ts_den) == (num, den):
                return None
            from ui.panel.jobs import clip_melody

            melody = clip_melody(clip)
        if (melody.meter.numerator, melody.meter.denominator) != (num, den):
            melody = replace(melody, meter=Meter(num, den))
        return melody

    # ---- requests -----------------------------------------------------------------------

    def generate(self) -> None:
        """Harmonize and arrange the clip (locked phrases keep their chords); latest wins."""
        if self.clip is None:
            return
        try:
            request = PanelRequest("generate", self.arrange_options(),
                                   melody=self._request_melody(),
                                   locked=MappingProxyType(dict(self.locked)),
                                   parts=self.send_parts())
        except ValueError as err:  # a bad meter or key from the editor
            self.report_error(str(err), err)
            return
        self._submit(request, "Generating…")

    def choose_alternative(self, phrase: int, alternative: int) -> None:
        if self.arrangement is None:
            return
        self._submit(PanelRequest("choose", self.arrange_options(), arrangement=self.arrangement,
                                  phrase_index=phrase, alternative_index=alternative,
                                  locked=MappingProxyType(dict(self.locked)),
                                  parts=self.send_parts()),
                     f"Phrase {phrase + 1}: alternative {alternative + 1}…")

    def regenerate_phrase(self, phrase: int) -> None:
        """A new progression for this phrase only; each click draws among the near-best ones
        (a new seed per click, else two clicks would toggle between the two best)."""
        if self.arrangement is None:
            return
        self._regenerations += 1
        options = self.arrange_options()
        options = replace(options, harmonize=replace(
            options.harmonize, seed=options.harmonize.seed + self._regenerations))
        self._submit(PanelRequest("regenerate_phrase", options,
                                  arrangement=self.arrangement, phrase_index=phrase,
                                  locked=MappingProxyType(dict(self.locked)),
                                  parts=self.send_parts()),
                     f"Regenerating phrase {phrase + 1}…")

    def set_locked(self, phrase: int, locked: bool) -> None:
        if self.arrangement is None:
            return
        if locked:
            self.locked[phrase] = self.arrangement.harmonization.phrases[phrase].chosen
        else:
            self.locked.pop(phrase, None)
        self._show_arrangement()

    def set_phrase_style(self, phrase: int, style: object) -> None:
        if style is None:
            self.phrase_styles.pop(phrase, None)
        else:
            self.phrase_styles[phrase] = str(style)
        if phrase not in self.locked:
            self.regenerate_phrase(phrase)

    def _submit(self, request: PanelRequest, message: str) -> None:
        clip = self.clip
        if clip is None:
            return
        panel_clip = clip if clip.source == PANEL_SOURCE else replace(clip, source=PANEL_SOURCE)
        try:
            self.latest_request = self.link.submit(panel_clip, request)
        except RuntimeError as err:
            self.report_error("The engine is not running", err)
            return
        self.status_label.setText(message)
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self._progress_timer.start(PROGRESS_DELAY_MS)

    def _end_progress(self) -> None:
        self._progress_timer.stop()
        self.progress.hide()

    def _on_status(self, source: str, request_id: str, state: str, progress: float,
                   message: str) -> None:
        if source == PANEL_SOURCE and request_id != self.latest_request:
            return  # an older request's news
        if state == "running":
            self.progress.setValue(int(progress * 100))
            if source != PANEL_SOURCE:
                self.status_label.setText(f"{source}: {message}")
        elif state in ("done", "failed", "cancelled", "superseded") and source == PANEL_SOURCE:
            self._end_progress()

    def _on_outcome(self, outcome: object) -> None:
        if not isinstance(outcome, PanelOutcome):
            return
        if outcome.source == PANEL_SOURCE:
            if outcome.request_id != self.latest_request:
                logger.debug("dropping stale result %s", outcome.request_id)
                return
        else:
            if not self.live_box.isChecked():
                return
            if self.clip is None or self.source != outcome.source or \
                    self.clip.notes != outcome.clip.notes:
                self.source = outcome.source
                self._set_clip(outcome.clip, outcome.arrangement.harmonization.melody)
            self.status_label.setText(f"{outcome.source}: sent to the DAW")
        self._end_progress()
        self.arrangement = outcome.arrangement
        self.view = outcome.view
        self.restored = None
        a = outcome.arrangement.harmonization.analysis
        self.analysis.show_analysis(a.key.name, a.key_confidence, a.key_source, a.pickup_16th,
                                    a.phrase_string)
        logger.info("%s: %s, %s, phrases %s, %d chords, %d piano notes", outcome.request_id,
                    a.key.name, a.meter.name, a.phrase_string,
                    len(outcome.arrangement.harmonization.chords),
                    len(outcome.arrangement.piano_notes))
        if outcome.source == PANEL_SOURCE:
            self.status_label.setText(
                f"{a.key.name}, {a.meter.name}, phrases {a.phrase_string}: "
                f"{len(outcome.arrangement.harmonization.chords)} chords, "
                f"{len(outcome.arrangement.piano_notes)} piano notes")
        self._update_actions()
        self._show_arrangement(then=self.result_shown.emit)

    def _on_failed(self, source: str, request_id: str, code: int, message: str) -> None:
        if source == PANEL_SOURCE and request_id != self.latest_request:
            return
        self._end_progress()
        who = "" if source == PANEL_SOURCE else f" (clip from {source})"
        self.report_error(f"Could not generate{who}: {message}", None,
                          f"request {request_id}, error code {code}\n{message}")

    def _show_arrangement(self, then: Callable[[], None] | None = None) -> None:
        """Roll and phrase cards for the current arrangement, then `then()`. Cards are refilled
        in place one per event-loop turn (a newer call abandons the rest), so the loop never
        waits for all of them at once; for a new phrase structure they are filled hidden and
        then shown together (the cards are made ahead of time, see `_prepare_cards`)."""
        arrangement = self.arrangement
        if arrangement is None or self.view is None:
            return
        self.roll.set_view(with_locks(self.view, self.locked))
        harmonization = arrangement.harmonization
        key = harmonization.analysis.key
        self._fill_generation += 1
        generation = self._fill_generation
        strip = self.phrase_strip
        fresh = len(strip.cards) != len(harmonization.phrases)
        if fresh:  # a new structure: fill the cards hidden, then show them all at once
            strip.clear()
        todo = list(enumerate(harmonization.phrases))

        def fill_next() -> None:
            if generation != self._fill_generation:
                return  # a newer result is being shown
            if todo:
                i, harmony = todo.pop(0)
                card = strip.card(i)
                card.show_harmony(harmony, key, self.phrase_styles.get(i), i in self.locked,
                                  self.theme, harmonization.score)
                if fresh:
                    strip.lay_out(card)
                QTimer.singleShot(0, fill_next)
                return
            if fresh:
                strip.show_cards(len(harmonization.phrases))
            if then is not None:
                then()

        fill_next()

    def _prepare_cards(self) -> None:
        """One more hidden phrase card, so the first results only fill and show cards (making
        one and its first show took 8-13 ms of the GUI thread each, in one turn)."""
        if not self.phrase_strip.prepare(PREPARED_CARDS):
            self._prepare_timer.stop()

    def _analysis_edited(self) -> None:
        # A new structure renumbers phrases: locks and per-phrase styles no longer apply.
        analysis = self.arrangement.harmonization.analysis if self.arrangement else None
        meter = (analysis.meter.numerator, analysis.meter.denominator) if analysis else None
        if (self.analysis.phrases_choice() is not None or self.analysis.pickup_choice() is not None
                or (meter is not None and meter != self.analysis.meter_choice())):
            if self.locked:
                logger.info("phrase structure edited: phrase locks released")
            self.locked.clear()
            self.phrase_styles.clear()
        self._edit_timer.start()

    def _preset_changed(self) -> None:
        preset = self.current_preset()
        self.delete_preset_button.setEnabled(preset is not None and not preset.factory)
        self.link.set_daw_request(PanelRequest("generate", self.arrange_options(),
                                               parts=self.send_parts()))
        if preset is not None and self.settings is not None:
            self._save_settings(preset=preset.name)
        if self.clip is not None:
            self.generate()

    # ---- results out --------------------------------------------------------------------

    def _song_tracks(self) -> tuple[Melody, list[tuple[str, int, Any]], dict[str, Any]] | None:
        """(melody, tracks, controls) for write_song from what is on screen."""
        from engine.types import Note

        arrangement = self.arrangement
        if arrangement is not None:
            harmonization = arrangement.harmonization
            pedal = [(round(p.tick), 64, 127 if p.down else 0) for p in arrangement.pedal]
            return (harmonization.melody,
                    [("Chords", 2, harmonization.chord_notes),
                     ("Piano", 3, arrangement.piano_notes)], {"Piano": pedal})
        if self.restored is not None and self.clip is not None:
            from ui.panel.jobs import clip_melody

            melody = self.melody or clip_melody(self.clip)
            tpb = melody.ticks_per_beat
            tracks = [
                (name.capitalize(), channel, [
                    Note(n.pitch, round(n.start_beats * tpb), max(1, round(n.duration_beats * tpb)),
                         n.velocity) for n in self.restored.parts.get(name, ())])
                for name, channel in (("chords", 2), ("piano", 3))
            ]
            return melody, tracks, {}
        return None

    def write_midi(self, path: Path) -> None:
        """Type 1, tracks Melody/Chords/Piano (engine.midi_io.write_song, atomic)."""
        from engine.midi_io import write_song

        song = self._song_tracks()
        if song is None:
            raise ValueError("nothing to save yet: open a clip and generate first")
        melody, tracks, controls = song
        write_song(path, melody, tracks, controls=controls)

    def choose_save_file(self) -> None:
        start = getattr(self.settings, "last_export_dir", None) or str(Path.home())
        name = (self.clip.name if self.clip else "accobridge") + "-accobridge.mid"
        path, _ = QFileDialog.getSaveFileName(self, "Save MIDI", str(Path(start) / name),
                                              "MIDI (*.mid)")
        if path:
            self.save_midi(Path(path))

    def save_midi(self, path: Path) -> None:
        """Write the file on a background thread; `saved(path)` when it is there."""
        def done(_value: object) -> None:
            self.status_label.setText(f"Saved {path}")
            self._save_settings(last_export_dir=str(path.parent))
            self.saved.emit(str(path))

        self.background.run(lambda: self.write_midi(path), done,
                            lambda err: self.report_error(f"Could not save {path.name}", err))

    def export_mime(self) -> QMimeData | None:
        """The drag-out payload: a temporary .mid as a file URL (written now, ~ms)."""
        if self._song_tracks() is None:
            self.report_error("Nothing to drag yet: open a clip and generate first", None)
            return None
        name = (self.clip.name if self.clip else "accobridge").replace("/", "_")
        path = Path(self._temp_dir.name) / f"{name}-accobridge.mid"
        try:
            self.write_midi(path)
        except (OSError, ValueError) as err:
            self.report_error("Could not write the MIDI file to drag", err)
            return None
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path))])
        return mime

    def send_to_daw(self) -> None:
        """Answer the DAW clip with what the panel shows, through that adapter's result path."""
        if self.arrangement is None or self.clip is None:
            return
        source = self.source
        if source == PANEL_SOURCE:
            self.report_error("This clip was opened from a file: no DAW is waiting for it", None,
                              "Send to DAW answers the clip a DAW sent (Ableton, REAPER, an OSC "
                              "client or the MIDI input). For a file, use Save .mid or drag "
                              "the .mid onto a track.")
            return
        request = PanelRequest("replay", self.arrange_options(), arrangement=self.arrangement,
                               locked=MappingProxyType(dict(self.locked)),
                               parts=self.send_parts(), clip_notes=self.clip.notes)
        if self.link.send_to_daw(source, request):
            self.status_label.setText(f"Sending to {source}…")
        else:
            self.report_error(f"{source} has not sent a clip since the panel started", None,
                              "A restored clip cannot be answered: send it from the DAW again "
                              "(or save/drag the .mid).")

    # ---- presets ------------------------------------------------------------------------

    def _load_presets(self, wanted: str | None) -> None:
        self.preset_box.blockSignals(True)
        self.preset_box.clear()
        for preset in self.presets.presets():
            label = preset.name + ("" if preset.factory else "  (yours)")
            self.preset_box.addItem(label, preset)
            self.preset_box.setItemData(self.preset_box.count() - 1, preset.description,
                                        Qt.ItemDataRole.ToolTipRole)
        index = 0
        for i in range(self.preset_box.count()):
            if self.preset_box.itemData(i).name == wanted:
                index = i
        self.preset_box.setCurrentIndex(index)
        self.preset_box.blockSignals(False)
        preset = self.current_preset()
        self.delete_preset_button.setEnabled(preset is not None and not preset.factory)
        for problem in getattr(self.presets, "problems", ()):
            logger.warning("preset: %s", problem)
        self.link.set_daw_request(PanelRequest("generate", self.arrange_options(),
                                               parts=self.send_parts()))

    def save_preset_as(self, name: str | None = None) -> None:
        from ui.presets import PresetError

        preset = self.current_preset()
        if preset is None:
            return
        if not name:
            text, ok = QInputDialog.getText(self, "Save preset", "Name of the new preset:")
            if not ok or not text.strip():
                return
            name = text.strip()
        try:
            saved = self.presets.save_as(preset, name)
        except (PresetError, OSError) as err:
            self.report_error(f"Could not save the preset “{name}”", err)
            return
        self._load_presets(getattr(saved, "name", name))
        logger.info("saved preset %s", name)

    def delete_preset(self, confirm: bool = True) -> None:
        from ui.presets import PresetError

        preset = self.current_preset()
        if preset is None or preset.factory:
            return
        if confirm and QMessageBox.question(
                self, "Delete preset", f"Delete your preset “{preset.name}”?") != \
                QMessageBox.StandardButton.Yes:
            return
        try:
            self.presets.delete(preset.name)
        except (PresetError, OSError) as err:
            self.report_error(f"Could not delete the preset “{preset.name}”", err)
            return
        self._load_presets(None)
        self._preset_changed()

    # ---- settings and connections -------------------------------------------------------

    def restart_services(self) -> None:
        self.link.gate.debounce_s = getattr(self.settings, "debounce_ms", 150) / 1000
        self.link.start_services(self.settings.service_config(), self.live_box.isChecked())

    def _show_connections(self) -> None:
        self.connections.show_statuses(self.link.connections(), self.theme)

    def _live_toggled(self, on: bool) -> None:
        self._save_settings(live_mode=on)
        self.restart_services()

    def open_settings(self) -> None:
        from ui.panel.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings, self)
        if dialog.exec():
            try:
                settings = dialog.result_settings()
            except ValueError as err:  # SettingsError: a value outside its range
                self.report_error("Settings not changed", err)
                return
            self.apply_settings(settings)

    def apply_settings(self, settings: Any) -> None:
        """New settings: saved, theme applied, adapters restarted."""
        self.settings = settings
        self._save_settings()
        self.theme = THEMES.get(getattr(settings, "theme", "dark"), THEMES["dark"])
        self._apply_theme()
        self._edit_timer.setInterval(int(getattr(settings, "debounce_ms", 150)))
        self.live_box.blockSignals(True)
        self.live_box.setChecked(bool(getattr(settings, "live_mode", True)))
        self.live_box.blockSignals(False)
        self.restart_services()
        self._show_connections()

    def _save_settings(self, wait: bool = False, **changes: Any) -> None:
        """Apply `changes` and write the settings file on a background thread (an atomic write
        with fsync: tens of ms on a busy disk, never on the GUI thread; the newest settings
        win). `wait`: write now (closing). `settings_saved` when the file is written."""
        from ui.settings import save_settings

        if self.settings is None:
            return
        try:
            if changes:
                self.settings = replace(self.settings, **changes)
        except (TypeError, ValueError) as err:  # SettingsError: a value out of range
            logger.warning("settings not changed: %s", err)
            return
        snapshot, path = self.settings, self.settings_file
        self._settings_to_write = snapshot

        def write() -> bool:
            with self._settings_lock:
                if self._settings_to_write is not snapshot:
                    return False  # a newer snapshot is on its way
                save_settings(snapshot, path)
                return True

        def failed(err: Exception) -> None:
            logger.warning("settings not saved: %s", err)

        if wait:
            try:
                write()
            except (OSError, TypeError, ValueError) as err:
                failed(err)
            return
        self.background.run(write, lambda wrote: self.settings_saved.emit() if wrote else None,
                            failed)

    # ---- errors -------------------------------------------------------------------------

    def report_error(self, message: str, err: BaseException | None, details: str = "") -> None:
        """Non-modal: the banner says what happened; the window stays usable."""
        if err is not None:
            text = str(err) or type(err).__name__
            message = f"{message}: {text}"
            details = details or "".join(traceback.format_exception(err))
        self.status_label.setText("Error")
        self.banner.show_error(message, details)
        logger.warning("%s", message)
        self.error_shown.emit(message)

    def _update_actions(self) -> None:
        has_result = self.arrangement is not None or self.restored is not None
        self.generate_action.setEnabled(self.clip is not None)
        self.save_action.setEnabled(has_result)
        self.send_action.setEnabled(self.arrangement is not None and self.source != PANEL_SOURCE)
        self.send_action.setToolTip("Answer the DAW's clip with what is shown" if
                                    self.source != PANEL_SOURCE else
                                    "Only for clips a DAW sent; save or drag files instead")
        self.drag_out.setEnabled(has_result)

    # ---- closing ------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent | None) -> None:  # noqa: N802  # Qt's name
        geometry = bytes(self.saveGeometry().toBase64().data()).decode("ascii")
        self._save_settings(wait=True, window_geometry=geometry)
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the adapters and the engine worker; detach the log handler. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._prepare_timer.stop()
        logging.getLogger().removeHandler(self.log_handler)
        self.background.close()
        self.roll.close_renderer()
        self.link.close()
        self._temp_dir.cleanup()

