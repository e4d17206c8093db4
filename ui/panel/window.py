"""The panel's main window: what arrived (roll + analysis), how to steer it (preset, per-phrase
choices, locks), where it goes (send to DAW, save, drag out), and how things stand
(connections, progress, errors, log).

The window wires its widgets (placed by `ui.panel.layout`) and actions (`ui.panel.menus`),
shows the document and hands every intent to a presenter (`ui.panel.presenters`): it is their
view. The engine runs on the session's worker
(`ui.panel.link`), files are read and written on the `Background` thread.
"""

from __future__ import annotations

import gc
import logging
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QByteArray, QMimeData, QTimer, QUrl, pyqtSignal
from PyQt6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PyQt6.QtWidgets import (
    QApplication,
    QFileDialog,
    QLabel,
    QMainWindow,
)

from bridge.store import ClipStore
from engine import Arrangement, Melody
from ui.panel.background import Background
from ui.panel.chord_edit import PhraseEditor
from ui.panel.document import AnalysisEdits, PanelDocument
from ui.panel.jobs import PANEL_SOURCE, PanelOutcome
from ui.panel.layout import PanelLayout
from ui.panel.link import EngineLink
from ui.panel.menus import PanelMenus
from ui.panel.presenters.daw import DawPresenter
from ui.panel.presenters.files import FilePresenter, melody_file
from ui.panel.presenters.generation import GenerationPresenter
from ui.panel.presenters.history import HistoryPresenter
from ui.panel.presenters.presets import PresetPresenter
from ui.panel.presenters.settings import SettingsPresenter
from ui.panel.rollview import view_of_clip, view_of_melody, with_locks
from ui.panel.theme import THEMES, apply_theme, local_style, muted
from ui.panel.transport import attach_audition
from ui.panel.widgets import (
    PresetBar,
    QtLogHandler,
)

logger = logging.getLogger("accobridge.panel")

PROGRESS_DELAY_MS = 300  # show progress for anything that takes longer (issue 6)
PREPARED_CARDS = 8  # phrase cards made in idle turns before any result (a 64-bar song's 8)
PREPARE_EVERY_MS = 40
CONNECTIONS_EVERY_MS = 2000  # a client's hello reaches no signal: the list is re-read this often


def warm_up() -> None:
    """The heavy imports and loads, done once after the window shows (on a background thread)
    so the first generation does not pay for them."""
    import engine

    for name in ("arrange", "arrange_harmonization", "load_melody"):
        getattr(engine, name)  # the front door loads their modules now, not on first use
    engine.prepare()  # the template library, and torch with the learned chord scorer (≈ 1.5 s)
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

        self.presets = presets if presets is not None else PresetStore()
        self.theme = THEMES.get(str(theme or getattr(settings, "theme", "dark")), THEMES["dark"])
        self.link = EngineLink(store, debounce_s=getattr(settings, "debounce_ms", 150) / 1000)
        self.background = Background(self)
        self.document = PanelDocument()
        # the presenters, each with this window as its view
        self.prefs = SettingsPresenter(settings, settings_file, self.background.run,
                                       self.settings_saved.emit)
        self.preset_bar = PresetBar()
        self.preset_box = self.preset_bar.box
        self.preset_list = PresetPresenter(self.presets, self.preset_bar, self,
                                           lambda: self.daw.update_request(),
                                           self._preset_chosen)
        self.generation = GenerationPresenter(self.link, self.document, self.preset_list, self)
        self.daw = DawPresenter(self.link, self.document, self.generation, self)
        self.files = FilePresenter(self.document, self.link, self.prefs, self.generation,
                                   self.background.run, self)
        self.history = HistoryPresenter(self.document, self.generation, self)
        self.phrase_editor = PhraseEditor(self, self.document, self.generation,
                                          self.background.run)
        self._closed = False
        self.menus = PanelMenus(self)  # the actions; the menu bar once the parts are built
        menus = self.menus
        self.open_action, self.generate_action = menus.open_action, menus.generate_action
        self.send_action, self.save_action = menus.send_action, menus.save_action
        self.settings_action = menus.settings_action
        self._build()
        self._apply_theme()
        self.preset_list.load(getattr(settings, "preset", None))
        self._wire()
        self._build_menus()
        geometry = getattr(settings, "window_geometry", "")
        if geometry:
            self._restore_geometry(str(geometry))
        else:
            self.resize(1280, 800)
        if start_services:
            self.restart_services()
        if offer_restore:
            self.files.look_for_last_session()

    @property
    def settings(self) -> Any:
        return self.prefs.settings

    @property
    def arrangement(self) -> Arrangement | None:
        """What is shown (the benchmarks and tests watch it)."""
        return self.document.arrangement

    # ---- layout -------------------------------------------------------------------------

    def _build(self) -> None:
        self.setWindowTitle("AccoBridge")
        self.setAcceptDrops(True)
        parts = PanelLayout(self)
        self.toolbar, self.drag_out, self.live_box = parts.toolbar, parts.drag_out, parts.live_box
        self.banner, self.offer, self.notice = parts.banner, parts.offer, parts.notice
        self.analysis, self.connections = parts.analysis, parts.connections
        self.left_column, self.log_dock, self.log_panel = \
            parts.left_column, parts.log_dock, parts.log_panel
        self.roll, self.title, self.phrase_strip = parts.roll, parts.title, parts.phrase_strip
        self.transport, self.play_action = parts.transport, parts.play_action
        self.progress, self.status_label = parts.progress, parts.status_label
        self._progress_timer = QTimer(self)
        self._progress_timer.setSingleShot(True)
        self._progress_timer.timeout.connect(self.progress.show)
        self._edit_timer = QTimer(self)  # analysis edits: debounced, latest wins
        self._edit_timer.setSingleShot(True)
        self._edit_timer.setInterval(int(getattr(self.settings, "debounce_ms", 150)))
        self._edit_timer.timeout.connect(self.generation.generate)
        self.phrase_strip.prepare_ahead(PREPARED_CARDS, PREPARE_EVERY_MS)
        self._connections_timer = QTimer(self)
        self._connections_timer.setInterval(CONNECTIONS_EVERY_MS)
        self._connections_timer.timeout.connect(self._show_connections)
        self._connections_timer.start()
        self._shown_connections: object = None
        self.log_handler = QtLogHandler()
        self.log_handler.signal.record.connect(self.log_panel.add)
        logging.getLogger().addHandler(self.log_handler)
        if logging.getLogger().level > logging.INFO or logging.getLogger().level == 0:
            logging.getLogger().setLevel(logging.INFO)
        self.update_actions()

    def _build_menus(self) -> None:
        """The menu bar (`PanelMenus`); its actions also on the window, where the app, tests
        and benchmarks reach them."""
        menus = self.menus
        menus.build()
        self.quit_action, self.log_action = menus.quit_action, menus.log_action
        self.undo_action, self.redo_action = menus.undo_action, menus.redo_action
        self.compare_action, self.mark_action = menus.compare_action, menus.mark_action
        self.regenerate_phrase_action = menus.regenerate_phrase_action
        self.lock_phrase_action = menus.lock_phrase_action
        self.next_phrase_action = menus.next_phrase_action
        self.previous_phrase_action = menus.previous_phrase_action
        self.texture_action = menus.texture_action
        self.phrase_actions = menus.phrase_actions
        self.menu_play_action = menus.menu_play_action

    @property
    def current_phrase(self) -> int:
        """The phrase Lock/Regenerate/Next/Previous act on."""
        return self.menus.current_phrase

    def select_phrase(self, index: int) -> None:
        self.menus.select_phrase(index)

    def _wire(self) -> None:
        generation = self.generation
        self.open_action.triggered.connect(self.choose_file)
        self.generate_action.triggered.connect(generation.generate)
        self.send_action.triggered.connect(self.daw.send)
        self.save_action.triggered.connect(self.choose_save_file)
        self.settings_action.triggered.connect(self.open_settings)
        self.preset_box.currentIndexChanged.connect(self.preset_list.choose)
        self.preset_bar.edited.connect(lambda changes: self.preset_list.edit(**changes))
        self.preset_bar.store_button.clicked.connect(lambda: self.preset_list.save())
        self.preset_bar.save_button.clicked.connect(lambda: self.preset_list.save_as())
        self.preset_bar.rename_button.clicked.connect(lambda: self.preset_list.rename())
        self.preset_bar.delete_button.clicked.connect(lambda: self.preset_list.delete())
        self.live_box.toggled.connect(self._live_toggled)
        self.analysis.edited.connect(self._analysis_edited)
        self.offer.restore.connect(self.files.restore_last)
        self.phrase_strip.alternative_chosen.connect(generation.choose_alternative)
        self.phrase_strip.regenerate.connect(generation.regenerate_phrase)
        self.phrase_strip.lock_changed.connect(generation.set_locked)
        self.phrase_strip.style_changed.connect(generation.set_phrase_style)
        self.roll.chord_clicked.connect(self.phrase_editor.chord_clicked)
        self.history.add_listener(self.menus.update_history_actions)  # Ctrl+Z works once enabled
        self.link.outcome.connect(self._on_outcome)
        self.link.failed.connect(generation.on_failed)
        self.link.status.connect(generation.on_status)
        self.link.clip_arrived.connect(self.daw.clip_arrived)
        self.link.connections_changed.connect(self._show_connections)
        self.audition = attach_audition(self)

    def _apply_theme(self) -> None:
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, self.theme)
        self.banner.setStyleSheet(local_style("banner", self.theme))
        self.offer.setStyleSheet(local_style("offer", self.theme))
        self.drag_out.setStyleSheet(local_style("drag", self.theme))
        self.notice.setStyleSheet(local_style("notice", self.theme))
        self.analysis.phrase_error.setStyleSheet(local_style("phraseError", self.theme))
        self._shown_connections = None  # redrawn in the new colours
        for label in self.findChildren(QLabel):
            if label.objectName() == "muted":
                muted(label, self.theme)
        self.roll.set_theme(self.theme)
        self._show_connections()
        self._show_arrangement()

    def _restore_geometry(self, geometry: str) -> None:
        """`Settings.window_geometry`: QWidget.saveGeometry() as base64."""
        if not self.restoreGeometry(QByteArray.fromBase64(geometry.encode("ascii"))):
            self.resize(1280, 800)

    # ---- the public face: what the app, tests and benchmarks drive --------------------------

    def start_warm_up(self) -> None:
        """Load the engine in the background after the window shows (progress if slow)."""
        self.status_label.setText("Loading the engine…")
        self.progress.setRange(0, 0)
        self._progress_timer.start(PROGRESS_DELAY_MS)
        self.background.run(warm_up, self._warm, self._warm_failed)

    def _warm(self, _value: object) -> None:
        logger.info("engine loaded")
        self.end_progress()
        self.status_label.setText("Ready")
        self.engine_ready.emit()

    def _warm_failed(self, err: Exception) -> None:
        self.end_progress()
        self.report_error("The engine could not be loaded", err)

    def load_melody(self, melody: Melody, name: str) -> None:
        self.files.load_melody(melody, name)

    def generate(self) -> None:
        self.generation.generate()

    def choose_alternative(self, phrase: int, alternative: int) -> None:
        self.generation.choose_alternative(phrase, alternative)

    def regenerate_phrase(self, phrase: int) -> None:
        self.generation.regenerate_phrase(phrase)

    def restart_services(self) -> None:
        self.daw.restart_services(self.settings)

    def apply_settings(self, settings: Any) -> None:
        """New settings: saved, theme applied, adapters restarted."""
        self.prefs.replace(settings)
        self.theme = THEMES.get(getattr(settings, "theme", "dark"), THEMES["dark"])
        self._apply_theme()
        self._edit_timer.setInterval(int(getattr(settings, "debounce_ms", 150)))
        self.live_box.blockSignals(True)
        self.live_box.setChecked(bool(getattr(settings, "live_mode", True)))
        self.live_box.blockSignals(False)
        self.restart_services()
        self._show_connections()

    def export_mime(self) -> QMimeData | None:
        """The drag-out payload: a temporary .mid as a file URL."""
        path = self.files.drag_file()
        if path is None:
            return None
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path))])
        return mime

    # ---- dialogs and drops ------------------------------------------------------------------

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a melody", self.files.start_folder(),
            "Melody (*.mid *.midi *.musicxml *.mxl *.xml)")
        if path:
            self.files.load_file(Path(path))

    def choose_save_file(self) -> None:
        start = Path(self.files.start_folder()) / self.files.save_name()
        path, _ = QFileDialog.getSaveFileName(self, "Save MIDI", str(start), "MIDI (*.mid)")
        if path:
            self.files.save_midi(Path(path))

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

    def dragEnterEvent(self, event: QDragEnterEvent | None) -> None:  # noqa: N802  # Qt's name
        if event is not None and _dropped_file(event.mimeData()) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent | None) -> None:  # noqa: N802  # Qt's name
        if event is None:
            return
        path = _dropped_file(event.mimeData())
        if path is not None:
            event.acceptProposedAction()
            self.files.load_file(path)

    # ---- the presenters' view -----------------------------------------------------------

    def show_status(self, text: str) -> None:
        self.status_label.setText(text)

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

    def live(self) -> bool:
        return self.live_box.isChecked()

    def analysis_edits(self) -> AnalysisEdits:
        return self.analysis.edits()

    def start_progress(self) -> None:
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self._progress_timer.start(PROGRESS_DELAY_MS)

    def set_progress(self, fraction: float) -> None:
        self.progress.setValue(int(fraction * 100))

    def end_progress(self) -> None:
        self._progress_timer.stop()
        self.progress.hide()

    def show_clip(self, placeholder: str = "Generating…") -> None:
        doc = self.document
        clip = doc.clip
        assert clip is not None
        self.analysis.reset(f"{clip.ts_num}/{clip.ts_den}")
        self.title.setText(f"{clip.name} — {len(clip.notes)} notes, {clip.ts_num}/{clip.ts_den}, "
                           f"{clip.tempo_bpm:.0f} BPM · from {doc.source}")
        self.roll.set_view(view_of_melody(doc.melody) if doc.melody is not None
                           else view_of_clip(clip))
        self.phrase_strip.clear(placeholder)
        self.banner.hide()
        self.notice.clear_notice()
        self.update_actions()
        self.clip_loaded.emit()

    def show_restored(self) -> None:
        clip, result = self.document.clip, self.document.restored
        assert clip is not None and result is not None
        self.roll.set_view(view_of_clip(clip, result))
        self.phrase_strip.clear("Restored result: press Generate to edit phrases.")
        self.update_actions()
        self.result_shown.emit()

    def offer_restore(self, text: str) -> None:
        self.offer.offer(text)
        self.restore_offered.emit()

    def file_saved(self, path: Path) -> None:
        self.saved.emit(str(path))

    def show_notice(self, text: str) -> None:
        self.notice.say(text)

    def show_result(self, outcome: PanelOutcome) -> None:
        harmonization = outcome.arrangement.harmonization
        a = harmonization.analysis
        self.analysis.show_analysis(a.key.name, a.key_confidence, a.key_source, a.pickup_16th,
                                    a.phrase_string)
        self.analysis.show_bars(harmonization.melody, a)
        self.banner.hide()  # a good result: the last error no longer describes what is shown
        dropped = _dropped_notes(outcome)
        if dropped:
            self.notice.say(dropped)
        self.update_actions()
        self._show_arrangement(then=self.result_shown.emit)

    def show_locks(self) -> None:
        self._show_arrangement()

    def _show_arrangement(self, then: Callable[[], None] | None = None) -> None:
        """Roll and phrase cards for the document's arrangement, then `then()`."""
        doc = self.document
        if doc.arrangement is None or doc.view is None:
            return
        self.roll.set_view(with_locks(doc.view, doc.locked))
        self.phrase_strip.show_phrases(doc.arrangement.harmonization, doc.phrase_styles,
                                       doc.locked, self.theme, then)

    # ---- signals to presenters ----------------------------------------------------------

    def _on_outcome(self, outcome: object) -> None:
        if not isinstance(outcome, PanelOutcome):
            return
        if outcome.source == PANEL_SOURCE:
            if self.generation.is_stale(outcome):
                return
        elif not self.daw.accepts(outcome):
            return
        self.generation.take(outcome)

    def _analysis_edited(self) -> None:
        self.generation.analysis_edited()
        self._edit_timer.start()  # debounced: the latest edit generates

    def _preset_chosen(self, preset: Any) -> None:
        self.daw.update_request()
        if preset is not None:
            self.prefs.save(preset=preset.name)
        self.generation.generate()  # nothing without a clip

    def _live_toggled(self, on: bool) -> None:
        self.prefs.save(live_mode=on)
        self.restart_services()

    def _show_connections(self) -> None:
        statuses = self.link.connections()
        if statuses != self._shown_connections:
            self._shown_connections = statuses
            self.connections.show_statuses(statuses, self.theme)

    def update_actions(self) -> None:
        doc = self.document
        self.generate_action.setEnabled(doc.clip is not None)
        self.save_action.setEnabled(doc.has_result)
        self.send_action.setEnabled(doc.arrangement is not None and doc.from_daw)
        self.send_action.setToolTip("Answer the DAW's clip with what is shown" if doc.from_daw
                                    else "Only for clips a DAW sent; save or drag files instead")
        self.drag_out.setEnabled(doc.has_result)
        phrases = doc.arrangement is not None
        for action in self.menus.phrase_actions:
            action.setEnabled(phrases)

    # ---- closing ------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent | None) -> None:  # noqa: N802  # Qt's name
        geometry = bytes(self.saveGeometry().toBase64().data()).decode("ascii")
        self.prefs.save(wait=True, window_geometry=geometry)
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the adapters and the engine worker; detach the log handler. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.phrase_strip.stop_preparing()
        self._connections_timer.stop()
        logging.getLogger().removeHandler(self.log_handler)
        self.background.close()
        self.roll.close_renderer()
        self.audition.close()
        self.link.close()
        self.files.close()


def _dropped_notes(outcome: PanelOutcome) -> str:
    """What the engine's top-line reduction took from a clip (its MelodyWarning, which the
    worker does not pass on): notes of the clip that are not in the melody it harmonized."""
    clip = outcome.clip
    sent = sum(1 for n in clip.notes
               if n.start_beats < clip.length_beats or clip.length_beats <= 0)
    kept = len(outcome.arrangement.harmonization.melody.notes)
    if kept >= sent:
        return ""
    return (f"“{clip.name}” has chords or overlapping notes: the melody is its top line "
            f"({sent - kept} of {sent} notes left out)")


def _dropped_file(mime: QMimeData | None) -> Path | None:
    if mime is None or not mime.hasUrls():
        return None
    return melody_file(url.toLocalFile() for url in mime.urls() if url.isLocalFile())
