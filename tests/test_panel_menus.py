"""The panel's keyboard face, driven through the real window (pytest-qt, offscreen): the menu
bar and its shortcuts, the tab order, choosing an alternative with the arrows and Enter, phrase
actions on the selected phrase, tooltips that explain."""

# ruff: noqa: F811  # the window fixtures come from tests/test_panel.py and are parameters here
from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QKeySequence
from PyQt6.QtWidgets import QApplication

from tests.test_panel import (  # noqa: F401  # fixtures: the window, a demo file, private dirs
    WAIT_MS,
    _load,
    _private_dirs,
    demo_file,
    window,
)


def _menus(window):
    return {m.title().replace("&", ""): m for m in
            (a.menu() for a in window.menuBar().actions()) if m is not None}


def _shortcuts(action):
    return {s.toString() for s in action.shortcuts()}


def _focus(qtbot, window):
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=WAIT_MS)


def test_the_menu_bar_holds_every_action_with_the_usual_shortcuts(window):
    menus = _menus(window)
    assert list(menus) == ["File", "Edit", "Generate", "Play", "View", "Settings"]
    texts = {name: [a.text().replace("&", "") for a in menu.actions() if not a.isSeparator()]
             for name, menu in menus.items()}
    assert texts["File"] == ["Open…", "Save .mid…", "Send to DAW", "Quit"]
    assert texts["Edit"] == ["Undo", "Redo", "Compare A/B", "Mark for A/B"]
    assert texts["Generate"] == ["Generate", "Regenerate phrase", "Lock phrase",
                                 "Choose texture…", "Next phrase", "Previous phrase"]
    assert len(texts["Play"]) == 1  # Play/Stop: the audition's own action when it is there
    assert menus["Play"].actions() == [getattr(window, "play_action", window.menu_play_action)]
    assert texts["View"] == ["Log"] and texts["Settings"] == ["Settings…"]
    assert "Ctrl+O" in _shortcuts(window.open_action)
    assert "Ctrl+S" in _shortcuts(window.save_action)
    assert {"Ctrl+G", "Ctrl+Return"} <= _shortcuts(window.generate_action)
    assert "Ctrl+L" in _shortcuts(window.lock_phrase_action)
    assert "Ctrl+Z" in _shortcuts(window.undo_action)
    assert "Ctrl+Shift+Z" in _shortcuts(window.redo_action)
    assert "Ctrl+B" in _shortcuts(window.compare_action)
    assert "Ctrl+T" in _shortcuts(window.texture_action)
    assert _shortcuts(window.quit_action) and _shortcuts(window.redo_action)


def test_tooltips_say_what_a_control_does_not_its_name(window):
    controls = [window.open_action, window.generate_action, window.send_action,
                window.save_action, window.settings_action, window.lock_phrase_action,
                window.regenerate_phrase_action, window.next_phrase_action]
    for action in controls:
        name = action.text().replace("&", "").rstrip("…").lower()
        tip = action.toolTip()
        assert len(tip) > len(name) + 15 and not tip.lower().startswith(name), tip
    for widget in (window.live_box, window.preset_box, window.drag_out,
                   *window.preset_bar.controls.values(), window.analysis.phrases):
        assert len(widget.toolTip()) > 30, widget


def test_ctrl_g_generates_and_ctrl_o_opens(qtbot, window, demo_file, monkeypatch):
    _load(qtbot, window, demo_file)
    _focus(qtbot, window)
    before = window.generation.latest_request
    with qtbot.waitSignal(window.result_shown, timeout=WAIT_MS):
        qtbot.keyClick(window, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    assert window.generation.latest_request != before
    asked = []
    monkeypatch.setattr(window, "choose_file", lambda: asked.append("open"))
    window.open_action.triggered.disconnect()
    window.open_action.triggered.connect(window.choose_file)
    qtbot.keyClick(window, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    assert asked == ["open"]


def test_tab_reaches_open_generate_save_and_settings(qtbot, window, demo_file):
    _load(qtbot, window, demo_file)
    _focus(qtbot, window)
    bar = window.toolbar
    buttons = {bar.widgetForAction(a): name for a, name in (
        (window.open_action, "open"), (window.generate_action, "generate"),
        (window.save_action, "save"), (window.settings_action, "settings"))}
    first = bar.widgetForAction(window.open_action)
    first.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(first.hasFocus, timeout=WAIT_MS)
    reached = ["open"]
    for _ in range(12):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        name = buttons.get(QApplication.focusWidget())
        if name:
            reached.append(name)
    assert reached[:4] == ["open", "generate", "save", "settings"]


def test_an_alternative_is_chosen_with_the_arrows_and_enter(qtbot, window, demo_file):
    before = _load(qtbot, window, demo_file)
    _focus(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)  # next phrase
    card = window.phrase_strip.cards[1]
    qtbot.waitUntil(card.alternatives.hasFocus, timeout=WAIT_MS)
    assert window.current_phrase == 1
    wanted = before.harmonization.phrases[1].alternatives[1]
    qtbot.keyClick(card.alternatives, Qt.Key.Key_Down)
    qtbot.keyClick(card.alternatives, Qt.Key.Key_Down)
    assert card.alternatives.currentRow() == 2  # moving chooses nothing yet
    with qtbot.waitSignal(window.result_shown, timeout=WAIT_MS):
        qtbot.keyClick(card.alternatives, Qt.Key.Key_Return)
    after = window.arrangement.harmonization
    assert after.phrases[1].chosen.chords == wanted.chords
    assert after.phrases[0].chosen.chords == before.harmonization.phrases[0].chosen.chords
    qtbot.waitUntil(lambda: card.alternatives.currentRow() == 0, timeout=WAIT_MS)
    qtbot.keyClick(window, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    assert window.current_phrase == 0


def test_ctrl_l_locks_the_selected_phrase_and_ctrl_r_regenerates_it(qtbot, window, demo_file):
    before = _load(qtbot, window, demo_file)
    _focus(qtbot, window)
    window.select_phrase(1)
    qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert set(window.document.locked) == {1}
    qtbot.waitUntil(lambda: "locked" in window.phrase_strip.cards[1].title.text(),
                    timeout=WAIT_MS)
    qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)  # and back
    assert window.document.locked == {}
    window.select_phrase(0)
    with qtbot.waitSignal(window.result_shown, timeout=WAIT_MS):
        qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    after = window.arrangement.harmonization
    assert after.phrases[0].chosen.chords != before.harmonization.phrases[0].chosen.chords
    assert after.phrases[1].chosen.chords == before.harmonization.phrases[1].chosen.chords


def test_phrase_actions_wait_for_a_result(window):
    assert not any(a.isEnabled() for a in window.phrase_actions)


def test_undo_and_redo_reach_the_history_when_there_is_one(qtbot, window, monkeypatch):
    calls = []

    class History:
        def can_undo(self):
            return True

        def can_redo(self):
            return False

        def undo(self):
            calls.append("undo")

        def redo(self):
            calls.append("redo")

    monkeypatch.setattr(window, "history", History(), raising=False)
    _menus(window)["Edit"].aboutToShow.emit()  # the menu shows what can be done now
    window.undo_action.trigger()
    window.redo_action.trigger()
    assert calls == ["undo"]
    assert window.undo_action.isEnabled() and not window.redo_action.isEnabled()


def test_the_log_dock_opens_and_closes_from_the_view_menu(qtbot, window):
    assert window.log_dock.isHidden()
    window.log_action.trigger()
    assert window.log_dock.isVisible()
    window.log_action.trigger()
    assert window.log_dock.isHidden()


def test_play_stop_is_in_the_play_menu_on_space_when_audition_is_there(window):
    play = window.menu_play_action
    assert play in _menus(window)["Play"].actions()
    if play.isEnabled():  # the audition's own action: one action, so one Space shortcut
        assert QKeySequence(Qt.Key.Key_Space) in play.shortcuts()
