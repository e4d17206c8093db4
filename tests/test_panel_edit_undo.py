"""Editing a result by hand and undoing it, driven through the real window (pytest-qt,
offscreen): a clicked chord replaced by a typed symbol or a suggestion re-arranges its phrase and
is kept as a lock; a texture picked from the list re-renders only its phrase; undo/redo (Ctrl+Z,
Ctrl+Shift+Z) and A/B compare bring back earlier results exactly."""

from __future__ import annotations

from dataclasses import replace

import pytest
from PyQt6.QtCore import QPointF, Qt
from PyQt6.QtWidgets import QApplication

from engine.chords import chord_pitch_classes
from engine.types import Chord
from tests import test_panel as panel_tests

# test_panel's fixtures: the real window with private config and data folders, the demo .mid
WAIT_MS = panel_tests.WAIT_MS
_private_dirs = panel_tests._private_dirs
window = panel_tests.window
demo_file = panel_tests.demo_file


@pytest.fixture
def loaded(qtbot, window, demo_file):
    """The window with the demo melody arranged (two 8-bar phrases)."""
    with qtbot.waitSignal(window.result_shown, timeout=WAIT_MS):
        window.files.load_file(demo_file)
    return window


def _shown(qtbot, window, action):
    with qtbot.waitSignal(window.result_shown, timeout=WAIT_MS):
        action()
    return window.arrangement


def _click_chord(qtbot, window, index):
    """A real click on chord `index` in the roll's chord lane; the edit dialog opens."""
    chord = window.roll.view.chords[index]
    x = window.roll.x_of(chord.start_beats + chord.length_beats / 2)
    qtbot.mouseClick(window.roll, Qt.MouseButton.LeftButton, pos=QPointF(x, 10).toPoint())
    qtbot.waitUntil(lambda: window.phrase_editor.dialog is not None, timeout=WAIT_MS)
    return window.phrase_editor.dialog


def _piano_between(arrangement, lo_16th, hi_16th):
    per = arrangement.harmonization.melody.ticks_per_16th
    return [n for n in arrangement.piano_notes if lo_16th * per <= n.start_tick < hi_16th * per]


def _phrase_span(arrangement, i):
    analysis = arrangement.harmonization.analysis
    p = analysis.phrases[i]
    return analysis.bar_start_16th(p.start_bar), analysis.bar_start_16th(p.end_bar)


def _fits(note, chord, per_16th):
    """A chord tone, or a note of an 8th or less a step from one (passing, neighbour)."""
    tones = chord_pitch_classes(chord.root_pc, chord.quality) | {chord.bass_pc}
    pc = note.pitch % 12
    near = any(min((pc - t) % 12, (t - pc) % 12) <= 2 for t in tones)
    return pc in tones or (note.duration_tick <= 2 * per_16th and near)


def test_a_typed_chord_re_arranges_its_phrase_is_locked_and_undo_restores_the_result(
        qtbot, loaded):
    window = loaded
    before = window.arrangement
    event = before.harmonization.phrases[0].chosen.chords[1]
    dialog = _click_chord(qtbot, window, 1)
    assert dialog.symbol.text() == event.chord.symbol(before.harmonization.analysis.key)
    # a symbol that is no chord: said inline, nothing sent, the dialog stays
    dialog.symbol.setText("Hm7")
    qtbot.keyClick(dialog.symbol, Qt.Key.Key_Return)
    assert dialog.error.isVisible() and "not a chord symbol" in dialog.error.text()
    assert window.phrase_editor.dialog is dialog and window.arrangement is before
    dialog.symbol.setText("Dm7")
    after = _shown(qtbot, window, lambda: qtbot.keyClick(dialog.symbol, Qt.Key.Key_Return))
    new = Chord(2, "min7", 2)
    assert after.harmonization.phrases[0].chosen.chords[1] == replace(event, chord=new)
    assert after.harmonization.phrases[1] == before.harmonization.phrases[1]
    # the piano re-arranged around it: its notes there fit Dm7; phrase 2 is untouched
    inside = _piano_between(after, event.start_16th, event.end_16th)
    per = after.harmonization.melody.ticks_per_16th
    assert inside and all(_fits(n, new, per) for n in inside)
    assert inside != _piano_between(before, event.start_16th, event.end_16th)
    assert after.textures == before.textures
    assert _piano_between(after, *_phrase_span(after, 1)) == \
        _piano_between(before, *_phrase_span(before, 1))
    # kept as a lock, shown on the roll and the card
    assert window.document.locked[0].chords == after.harmonization.phrases[0].chosen.chords
    assert window.roll.view.phrases[0].locked
    assert window.roll.view.chords[1].symbol == "Dm7"
    # Ctrl+Z: exactly the result before, without the lock; Ctrl+Shift+Z: the edit again
    window.activateWindow()  # the dialog had the focus; the shortcuts work in the window
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=WAIT_MS)
    undone = _shown(qtbot, window, lambda: qtbot.keyClick(
        window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier))
    assert undone is before and window.document.locked == {}
    assert window.roll.view.chords[1].symbol == event.chord.symbol(
        before.harmonization.analysis.key)
    assert not window.history.can_undo() and window.history.can_redo()
    redo = window.redo_action.shortcuts()[0][0]  # Ctrl+Shift+Z, or Ctrl+Y where that is usual
    redone = _shown(qtbot, window, lambda: qtbot.keyClick(window, redo.key(),
                                                          redo.keyboardModifiers()))
    assert redone is after and 0 in window.document.locked


def test_a_suggested_chord_is_used_and_its_lock_survives_a_later_generate(qtbot, loaded):
    window = loaded
    before = window.arrangement
    dialog = _click_chord(qtbot, window, 2)
    box = dialog.suggestions
    qtbot.waitUntil(lambda: box.count() > 1 and box.item(0).data(Qt.ItemDataRole.UserRole)
                    is not None, timeout=WAIT_MS)
    current = before.harmonization.phrases[0].chosen.chords[2].chord
    row = next(r for r in range(box.count())
               if box.item(r).data(Qt.ItemDataRole.UserRole) != current)
    picked = box.item(row).data(Qt.ItemDataRole.UserRole)
    rect = box.visualItemRect(box.item(row))
    after = _shown(qtbot, window, lambda: qtbot.mouseClick(
        box.viewport(), Qt.MouseButton.LeftButton, pos=rect.center()))
    edited = after.harmonization.phrases[0].chosen.chords
    assert edited[2].chord == picked
    # Generate (another seed, another style): the edited phrase keeps its chords
    window.document.phrase_styles[1] = "dark"
    again = _shown(qtbot, window, window.generate)
    assert again.harmonization.phrases[0].chosen.chords == edited
    assert again.harmonization.phrases[1].style == "dark"


def test_a_texture_picked_from_the_list_re_renders_only_that_phrase(qtbot, loaded):
    window = loaded
    before = window.arrangement
    window.phrase_editor.edit_texture(1)
    dialog = window.phrase_editor.dialog
    assert not dialog.chord_part.isVisibleTo(dialog)  # the texture list alone
    box = dialog.textures
    qtbot.waitUntil(lambda: box.count() > 1 and box.item(0).data(Qt.ItemDataRole.UserRole)
                    is not None, timeout=WAIT_MS)
    playing = before.textures[1].name
    assert box.currentItem().data(Qt.ItemDataRole.UserRole).name == playing
    row = next(r for r in range(box.count())
               if box.item(r).data(Qt.ItemDataRole.UserRole).name != playing)
    picked = box.item(row).data(Qt.ItemDataRole.UserRole)
    rect = box.visualItemRect(box.item(row))
    after = _shown(qtbot, window, lambda: qtbot.mouseClick(
        box.viewport(), Qt.MouseButton.LeftButton, pos=rect.center()))
    assert after.textures[1].name == picked.name and after.textures[0] == before.textures[0]
    assert after.harmonization == before.harmonization
    assert _piano_between(after, *_phrase_span(after, 0)) == \
        _piano_between(before, *_phrase_span(before, 0))
    assert _piano_between(after, *_phrase_span(after, 1)) != \
        _piano_between(before, *_phrase_span(before, 1))


def test_a_b_compare_and_a_liked_progression_is_never_lost_after_regenerate(qtbot, loaded):
    window = loaded
    history = window.history
    liked = window.arrangement
    second = _shown(qtbot, window, lambda: window.regenerate_phrase(0))
    assert second is not liked
    # A/B: the result before, then back
    assert _shown(qtbot, window, history.compare) is liked and history.comparing
    assert _shown(qtbot, window, history.compare) is second and not history.comparing
    # undo to the liked one, regenerate again: the liked one and `second` both stay reachable
    assert _shown(qtbot, window, history.undo) is liked
    history.mark()
    third = _shown(qtbot, window, lambda: window.regenerate_phrase(0))
    assert third not in (liked, second)
    assert _shown(qtbot, window, history.compare) is liked  # the marked one
    assert _shown(qtbot, window, history.compare) is third
    assert _shown(qtbot, window, history.undo) is liked
    assert _shown(qtbot, window, history.redo) is third  # the newest made from it
    assert [e.outcome.arrangement for e in history.entries] == [liked, second, third]


def test_undo_drops_a_result_still_on_its_way(qtbot, loaded):
    window = loaded
    history = window.history
    first = window.arrangement
    second = _shown(qtbot, window, lambda: window.regenerate_phrase(1))
    arrived = []  # connected after the window: the window has seen each one first
    window.link.outcome.connect(lambda outcome: arrived.append(outcome.request_id))
    window.regenerate_phrase(1)  # on its way when undo comes
    pending = window.generation.latest_request
    assert _shown(qtbot, window, history.undo) is first
    qtbot.waitUntil(lambda: pending in arrived, timeout=WAIT_MS)
    assert window.arrangement is first and history.can_redo()
    assert history.entries[-1].outcome.arrangement is second


def test_compare_and_texture_have_keys_in_the_menus(qtbot, loaded):
    """Ctrl+B compares A/B, Ctrl+Shift+Z redoes, Ctrl+T opens the selected phrase's textures."""
    window = loaded
    liked = window.arrangement
    second = _shown(qtbot, window, lambda: window.regenerate_phrase(0))
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=WAIT_MS)
    assert _shown(qtbot, window, lambda: qtbot.keyClick(
        window, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)) is liked
    assert _shown(qtbot, window, lambda: qtbot.keyClick(
        window, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)) is second
    assert _shown(qtbot, window, window.history.undo) is liked
    assert _shown(qtbot, window, lambda: qtbot.keyClick(
        window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier
        | Qt.KeyboardModifier.ShiftModifier)) is second
    window.select_phrase(1)
    qtbot.keyClick(window, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.phrase_editor.dialog is not None, timeout=WAIT_MS)
    from PyQt6.QtWidgets import QLabel

    dialog = window.phrase_editor.dialog
    assert "Phrase 2: texture" in [label.text() for label in dialog.findChildren(QLabel)]
    assert not dialog.chord_part.isVisibleTo(dialog)  # the texture list alone
