"""The window's actions and menu bar: the toolbar's actions, the menus (File, Edit, Generate,
Play, View, Settings) with their shortcuts, and what the keyboard's phrase and history actions
act on (the selected phrase card; the undo history)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import QApplication

if TYPE_CHECKING:
    from ui.panel.window import PanelWindow


class PanelMenus:
    """Builds and holds the window's actions. The toolbar's exist from construction (the
    window places them); `build()` makes the menu bar once the window's parts are there."""

    def __init__(self, window: PanelWindow) -> None:
        self.window = window
        self.current_phrase = 0  # the phrase Lock/Regenerate/Next/Previous act on
        self.phrase_actions: list[QAction] = []  # need a result: Lock, Regenerate, Next, …
        self.open_action = self.action(
            "&Open…", "Read a melody from a MIDI or MusicXML file (or drop one on the window)",
            QKeySequence.StandardKey.Open)
        self.generate_action = self.action(
            "&Generate", "Make chords and piano for the whole melody again (locked phrases "
            "keep their chords)", "Ctrl+G", "Ctrl+Return")
        self.send_action = self.action(
            "Send to &DAW", "Answer the DAW's clip with what is shown", "Ctrl+Shift+D")
        self.save_action = self.action(
            "&Save .mid…", "Write a MIDI file with Melody, Chords and Piano tracks",
            QKeySequence.StandardKey.Save)
        self.settings_action = self.action(
            "Se&ttings…", "Connections to the DAW (OSC, Ableton, REAPER, MIDI), live mode, "
            "theme", "Ctrl+,")

    def action(self, text: str, tip: str, *keys: QKeySequence | QKeySequence.StandardKey | str,
               slot: Callable[[], object] | None = None) -> QAction:
        """An action with its shortcuts (shown in its menu and tooltip) and a tooltip that
        says what it does."""
        action = QAction(text, self.window)
        if keys:
            action.setShortcuts([QKeySequence(k) for k in keys])
            names = ", ".join(QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText)
                              for k in keys)
            tip = f"{tip} ({names})"
        action.setToolTip(tip)
        action.setStatusTip(tip)
        if slot is not None:
            action.triggered.connect(slot)
        self.window.addAction(action)  # its shortcut works wherever the focus is in the window
        return action

    def build(self) -> None:
        """The menu bar: File, Edit, Generate, Play, View, Settings, with the usual shortcuts.
        Play/Stop and Undo/Redo are other parts' actions when the window has them
        (`play_action`; `history` with undo()/redo()/can_undo()/can_redo()); until then those
        entries are shown disabled."""
        window = self.window
        menus = window.menuBar()
        assert menus is not None
        file = menus.addMenu("&File")
        edit = menus.addMenu("&Edit")
        generate = menus.addMenu("&Generate")
        play = menus.addMenu("&Play")
        view = menus.addMenu("&View")
        settings = menus.addMenu("&Settings")
        assert file and edit and generate and play and view and settings
        self.quit_action = self.action("&Quit", "Close the panel (the DAW keeps its clips)",
                                       QKeySequence.StandardKey.Quit, slot=window.close)
        for item in (self.open_action, self.save_action, self.send_action, None,
                     self.quit_action):
            file.addSeparator() if item is None else file.addAction(item)
        self.undo_action = self.action("&Undo", "Back to the result before the last change",
                                       QKeySequence.StandardKey.Undo, slot=self.undo)
        self.redo_action = self.action("&Redo", "Forward again to the result you undid",
                                       QKeySequence.StandardKey.Redo, "Ctrl+Shift+Z",
                                       slot=self.redo)
        self.compare_action = self.action(
            "&Compare A/B", "Switch between the result shown and the one before it (or the one "
            "you marked) to hear and see the difference", "Ctrl+B", slot=self.compare_results)
        self.mark_action = self.action(
            "&Mark for A/B", "Keep the result shown as the one Compare switches to from later "
            "results",
            "Ctrl+Shift+B", slot=self.mark_result)
        for item in (self.undo_action, self.redo_action, None, self.compare_action,
                     self.mark_action):
            edit.addSeparator() if item is None else edit.addAction(item)
        edit.aboutToShow.connect(self.update_history_actions)
        window.result_shown.connect(self.update_history_actions)  # each result is a step
        self.regenerate_phrase_action = self.action(
            "&Regenerate phrase", "New chords for the selected phrase only (the others stay)",
            "Ctrl+R", slot=self.regenerate_current_phrase)
        self.lock_phrase_action = self.action(
            "&Lock phrase", "Keep (or release) the selected phrase's chords through every "
            "later generation", "Ctrl+L", slot=self.toggle_current_lock)
        self.next_phrase_action = self.action(
            "&Next phrase", "Select the next phrase card (then Up/Down and Enter choose a "
            "progression)", "Alt+Right", slot=lambda: self.select_phrase(self.current_phrase + 1))
        self.previous_phrase_action = self.action(
            "&Previous phrase", "Select the phrase card before", "Alt+Left",
            slot=lambda: self.select_phrase(self.current_phrase - 1))
        self.texture_action = self.action(
            "Choose &texture…", "Pick the piano texture of the selected phrase from the "
            "arranger's candidates, best first", "Ctrl+T", slot=self.choose_current_texture)
        self.phrase_actions = [self.regenerate_phrase_action, self.lock_phrase_action,
                               self.texture_action, self.next_phrase_action,
                               self.previous_phrase_action]
        for item in (self.generate_action, None, *self.phrase_actions):
            generate.addSeparator() if item is None else generate.addAction(item)
        # Play/Stop (Space) is the audition's action; one action, so one shortcut: a second
        # action on Space would make the shortcut ambiguous and neither would fire.
        play_action = getattr(window, "play_action", None)
        if not isinstance(play_action, QAction):
            play_action = QAction("Play/Stop", window)
            play_action.setToolTip("Hear what is shown (not available in this build)")
            play_action.setEnabled(False)
        play.addAction(play_action)
        self.menu_play_action = play_action
        log = window.log_dock.toggleViewAction()
        assert log is not None
        log.setText("&Log")
        log.setShortcut(QKeySequence("Ctrl+Shift+L"))
        log.setToolTip("Show or hide the log of the engine and the bridge (for reports)")
        view.addAction(log)
        self.log_action = log
        settings.addAction(self.settings_action)
        window.update_actions()
        self.update_history_actions()

    # ---- the history: what Undo, Redo, Compare and Mark act on ------------------------------

    def _history(self) -> Any:
        """The undo history presenter, when the panel has one (presenters/history.py)."""
        history = getattr(self.window, "history", None)
        return history if history is not None and hasattr(history, "can_undo") else None

    def update_history_actions(self) -> None:
        history = self._history()
        self.undo_action.setEnabled(history is not None and bool(history.can_undo()))
        self.redo_action.setEnabled(history is not None and bool(history.can_redo()))

    def undo(self) -> None:
        history = self._history()
        if history is not None and history.can_undo():
            history.undo()
        self.update_history_actions()

    def redo(self) -> None:
        history = self._history()
        if history is not None and history.can_redo():
            history.redo()
        self.update_history_actions()

    def compare_results(self) -> None:
        history = self._history()
        if history is not None:
            history.compare()

    def mark_result(self) -> None:
        history = self._history()
        if history is not None:
            history.mark()

    # ---- the selected phrase: what the keyboard's phrase actions act on ------------------

    def _phrase_in_focus(self) -> int | None:
        focus = QApplication.focusWidget()
        for i, card in enumerate(self.window.phrase_strip.cards):
            if focus is not None and (focus is card or card.isAncestorOf(focus)):
                return i
        return None

    def select_phrase(self, index: int) -> None:
        """Phrase `index`'s card (clamped to the song's) gets the focus: its progression list,
        so Up/Down and Enter pick an alternative."""
        strip = self.window.phrase_strip
        cards = strip.cards
        if not cards:
            return
        self.current_phrase = max(0, min(index, len(cards) - 1))
        card = cards[self.current_phrase]
        strip.ensureWidgetVisible(card)
        target = card.alternatives if card.alternatives.isEnabled() else card.lock
        target.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.window.show_status(f"Phrase {self.current_phrase + 1} of {len(cards)}")

    def _selected_card(self) -> Any:
        cards = self.window.phrase_strip.cards
        focused = self._phrase_in_focus()
        if focused is not None:
            self.current_phrase = focused
        return cards[self.current_phrase] if 0 <= self.current_phrase < len(cards) else None

    def toggle_current_lock(self) -> None:
        card = self._selected_card()
        if card is not None:
            card.lock.toggle()

    def choose_current_texture(self) -> None:
        card = self._selected_card()
        if card is not None and self.window.document.arrangement is not None:
            self.window.phrase_editor.edit_texture(card.index)

    def regenerate_current_phrase(self) -> None:
        card = self._selected_card()
        if card is not None and card.regen.isEnabled():
            self.window.generation.regenerate_phrase(card.index)
