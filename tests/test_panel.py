"""The panel window driven for real (pytest-qt, offscreen): load a clip, change preset, pick an
alternative, lock, regenerate, export; DAW clips in live mode; errors in the banner."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import mido
import pytest
from PyQt6.QtCore import QMimeData, QPointF, Qt, QUrl
from PyQt6.QtGui import QDropEvent

from bridge.store import ClipStore
from bridge.types import ChordSymbol, Clip, ClipNote, GenerateResult
from engine.demo import demo_melody
from engine.midi_io import write_song
from ui.panel.jobs import PANEL_SOURCE, PanelOutcome, clip_from_melody
from ui.panel.rollview import RollView
from ui.panel.window import PanelWindow

ROOT = Path(__file__).resolve().parents[1]
WAIT_MS = 30_000


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path, monkeypatch):
    # no user presets, settings, sessions or POP909 donors from the machine running the tests
    monkeypatch.setenv("ACCOBRIDGE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("ACCOBRIDGE_DATA_DIR", str(tmp_path / "data"))


def _settings(**changes):
    from ui.settings import Settings

    return replace(Settings(), **changes)


@pytest.fixture
def window(qtbot, tmp_path):
    win = PanelWindow(_settings(live_mode=True, osc_enabled=False),
                      settings_file=tmp_path / "settings.json",
                      store=ClipStore(tmp_path / "sessions"), start_services=False,
                      offer_restore=False)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.shutdown()


@pytest.fixture
def demo_file(tmp_path):
    path = tmp_path / "demo.mid"
    write_song(path, demo_melody(), [])
    return path


def _load(qtbot, window, path):
    with qtbot.waitSignal(window.result_shown, timeout=WAIT_MS):
        window.files.load_file(path)
    return window.arrangement


def _generate(qtbot, window, action):
    with qtbot.waitSignal(window.result_shown, timeout=WAIT_MS):
        action()
    return window.arrangement


def _phrase_chords(arrangement, i):
    return arrangement.harmonization.phrases[i].chosen.chords


def _preset_with_other_style(window, style):
    """A preset in the selector whose style differs from `style` (a user preset if needed)."""
    for i in range(window.preset_box.count()):
        preset = window.preset_box.itemData(i)
        if preset.style != style:
            return i, preset
    base = window.preset_list.current
    other = "dark" if style != "dark" else "rnb"
    window.presets.save_as(replace(base, style=other), "test other style")
    window.preset_list.load(base.name)
    for i in range(window.preset_box.count()):
        if window.preset_box.itemData(i).style == other:
            return i, window.preset_box.itemData(i)
    raise AssertionError("could not make a preset with another style")


def _track_notes(path, name):
    song = mido.MidiFile(path)
    for track in song.tracks:
        if track.name == name:
            now, on, notes = 0, {}, []
            for msg in track:
                now += msg.time
                if msg.type == "note_on" and msg.velocity > 0:
                    on[msg.note] = now
                elif msg.type in ("note_off", "note_on") and msg.note in on:
                    notes.append((msg.note, on.pop(msg.note), now))
            return sorted(notes, key=lambda n: (n[1], n[0]))
    raise AssertionError(f"no track {name!r} in {[t.name for t in song.tracks]}")


# ---- loading and showing -----------------------------------------------------------------


def test_a_loaded_file_shows_its_chords_over_the_roll_and_the_piano_below(qtbot, window,
                                                                        demo_file):
    arrangement = _load(qtbot, window, demo_file)
    harmonization = arrangement.harmonization
    key = harmonization.analysis.key
    shown = [(c.start_beats, c.symbol) for c in window.roll.view.chords]
    assert shown == [(ev.start_16th / 4, ev.chord.symbol(key)) for ev in harmonization.chords]
    assert len(window.roll.view.piano) == len(arrangement.piano_notes) > 0
    assert [p.label for p in window.roll.view.phrases] == ["A", "B"]
    assert len(window.phrase_strip.cards) == 2
    assert "F major" in window.analysis.detected.text()
    # the clip and its own result are the panel's last request in the store
    stored = window.link.store.load(PANEL_SOURCE)
    assert stored.clip.notes == clip_from_melody(demo_melody(), PANEL_SOURCE, "demo").notes
    assert stored.result.request_id == stored.request_id
    assert [c.symbol for c in stored.result.chords] == [c.symbol for c in window.roll.view.chords]


def test_changing_the_preset_regenerates_in_its_style(qtbot, window, demo_file):
    before = _load(qtbot, window, demo_file)
    index, preset = _preset_with_other_style(window, before.harmonization.phrases[0].style)
    after = _generate(qtbot, window, lambda: window.preset_box.setCurrentIndex(index))
    assert [p.style for p in after.harmonization.phrases] == [preset.style] * 2


def test_a_clicked_alternative_is_the_chords_in_the_exported_file(qtbot, window, demo_file):
    before = _load(qtbot, window, demo_file)
    alternative = before.harmonization.phrases[0].alternatives[1]
    card = window.phrase_strip.cards[0]
    item = card.alternatives.item(2)  # row 0 is the chosen progression, then 1., 2. …
    rect = card.alternatives.visualItemRect(item)
    after = _generate(qtbot, window, lambda: qtbot.mouseClick(
        card.alternatives.viewport(), Qt.MouseButton.LeftButton, pos=rect.center()))
    assert _phrase_chords(after, 0) == alternative.chords
    assert _phrase_chords(after, 1) == _phrase_chords(before, 1)
    # drag-export: the QDrag payload is a file URL of a type-1 .mid with named tracks
    mime = window.export_mime()
    assert mime is not None and mime.urls()[0].isLocalFile()
    path = Path(mime.urls()[0].toLocalFile())
    song = mido.MidiFile(path)
    assert song.type == 1
    assert [t.name for t in song.tracks] == ["Melody", "Chords", "Piano"]
    chords = _track_notes(path, "Chords")
    per_16th = demo_melody().ticks_per_beat // 4
    for event in alternative.chords:  # the lowest note struck with each chord is its bass
        struck = [pitch for pitch, start, _ in chords if start == event.start_16th * per_16th]
        assert struck and min(struck) % 12 == event.chord.bass_pc
    assert len(_track_notes(path, "Piano")) == len(after.piano_notes)


def test_a_locked_phrase_keeps_its_chords_through_another_preset(qtbot, window, demo_file):
    before = _load(qtbot, window, demo_file)
    window.phrase_strip.cards[0].lock.setChecked(True)
    assert window.roll.view.phrases[0].locked
    index, preset = _preset_with_other_style(window, before.harmonization.phrases[0].style)
    after = _generate(qtbot, window, lambda: window.preset_box.setCurrentIndex(index))
    assert _phrase_chords(after, 0) == _phrase_chords(before, 0)
    assert after.harmonization.phrases[1].style == preset.style
    assert window.phrase_strip.cards[0].lock.isChecked()
    # "Generate" again keeps it too
    again = _generate(qtbot, window, window.generate_action.trigger)
    assert _phrase_chords(again, 0) == _phrase_chords(before, 0)


def test_regenerate_phrase_changes_only_that_phrase(qtbot, window, demo_file):
    before = _load(qtbot, window, demo_file)
    after = _generate(qtbot, window, window.phrase_strip.cards[1].regen.click)
    assert _phrase_chords(after, 0) == _phrase_chords(before, 0)
    assert after.harmonization.phrases[1].chosen != before.harmonization.phrases[1].chosen


def test_a_phrase_style_override_applies_to_that_phrase(qtbot, window, demo_file):
    before = _load(qtbot, window, demo_file)
    card = window.phrase_strip.cards[1]
    style = "dark" if before.harmonization.phrases[1].style != "dark" else "rnb"
    after = _generate(qtbot, window,
                      lambda: card.style_box.setCurrentIndex(card.style_box.findData(style)))
    assert after.harmonization.phrases[1].style == style
    assert _phrase_chords(after, 0) == _phrase_chords(before, 0)


def test_analysis_edits_regenerate(qtbot, window, demo_file):
    _load(qtbot, window, demo_file)
    after = _generate(qtbot, window, lambda: window.analysis.key.setCurrentText("D minor"))
    assert after.harmonization.analysis.key.name == "D minor"
    assert after.harmonization.analysis.key_source == "user"
    window.analysis.phrases.setText("A4A4B4B4")
    after = _generate(qtbot, window, window.analysis.phrases.editingFinished.emit)
    assert after.harmonization.analysis.phrase_string == "A4A4B4B4"
    assert len(window.phrase_strip.cards) == 4


def test_a_meter_edit_rebars_the_melody_and_releases_locks(qtbot, window, demo_file):
    _load(qtbot, window, demo_file)
    window.phrase_strip.cards[0].lock.setChecked(True)
    after = _generate(qtbot, window, lambda: window.analysis.meter.setCurrentText("3/4"))
    assert after.harmonization.analysis.meter.name == "3/4"
    assert window.document.locked == {}
    assert window.roll.view.bar_beats == 3.0


def test_send_to_daw_is_refused_for_a_file(qtbot, window, demo_file):
    _load(qtbot, window, demo_file)
    assert not window.send_action.isEnabled()
    with qtbot.waitSignal(window.error_shown, timeout=WAIT_MS) as blocker:
        window.daw.send()
    assert "file" in blocker.args[0]


def test_save_writes_the_shown_parts(qtbot, window, demo_file, tmp_path):
    arrangement = _load(qtbot, window, demo_file)
    target = tmp_path / "song.mid"
    with qtbot.waitSignal(window.saved, timeout=WAIT_MS):
        window.files.save_midi(target)
    chords = _track_notes(target, "Chords")
    assert sorted((s, p) for p, s, _ in chords) == sorted(
        (n.start_tick, n.pitch) for n in arrangement.harmonization.chord_notes)
    assert window.settings.last_export_dir == str(target.parent)


def test_a_dropped_file_is_loaded(qtbot, window, demo_file):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(demo_file))])
    drop = QDropEvent(QPointF(400, 300), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.result_shown, timeout=WAIT_MS):
        window.dropEvent(drop)
    assert drop.isAccepted()
    assert window.document.clip is not None and window.document.clip.name == "demo"


# ---- bad input: the banner, and the window goes on ---------------------------------------


def test_a_broken_midi_file_shows_the_banner_and_the_window_stays_usable(qtbot, window, tmp_path,
                                                                          demo_file):
    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02garbage")
    with qtbot.waitSignal(window.error_shown, timeout=WAIT_MS) as blocker:
        window.files.load_file(broken)
    assert "broken.mid" in blocker.args[0]
    assert window.banner.isVisible()
    assert "Traceback" in window.banner.details.toPlainText()
    _load(qtbot, window, demo_file)
    assert window.roll.view.chords


def test_an_empty_clip_shows_the_banner(qtbot, window, demo_file):
    empty = Clip("test", "empty", 16.0, 120.0, 4, 4, ())
    with qtbot.waitSignal(window.error_shown, timeout=WAIT_MS) as blocker:
        window.files.load_clip(empty)
    assert "Could not generate" in blocker.args[0]
    assert window.banner.isVisible()
    _load(qtbot, window, demo_file)


def test_progress_shows_only_for_work_longer_than_300_ms(qtbot, window, demo_file):
    _load(qtbot, window, demo_file)
    window.generate()
    assert window._progress_timer.isActive()
    assert window._progress_timer.interval() == 300
    assert not window.progress.isVisible()  # not yet: most generations end sooner
    with qtbot.waitSignal(window.result_shown, timeout=WAIT_MS):
        pass
    assert not window._progress_timer.isActive() and not window.progress.isVisible()
    window.start_warm_up()  # the engine load: a busy indicator if it takes long
    assert window.progress.maximum() == 0 and window._progress_timer.isActive()
    with qtbot.waitSignal(window.engine_ready, timeout=WAIT_MS):
        pass
    assert not window.progress.isVisible()


def test_a_stale_result_is_not_shown(qtbot, window, demo_file):
    arrangement = _load(qtbot, window, demo_file)
    old = PanelOutcome(PANEL_SOURCE, "panel-0", window.document.clip,
                       replace(arrangement, piano_notes=()),
                       GenerateResult("panel-0", PANEL_SOURCE, {}), RollView())
    window.link.outcome.emit(old)
    qtbot.wait(0)  # let the queued signal through (processes events, no timing assumption)
    assert window.arrangement is arrangement


# ---- DAW clips, live mode, send to DAW ---------------------------------------------------


class _DawClient:
    """Records what an adapter's on_event hears (called on the engine's threads)."""

    def __init__(self):
        self.events = []

    def on_event(self, kind, payload):
        self.events.append((kind, payload))

    def results(self):
        return [p for k, p in self.events if k == "result"]

    def states(self):
        return [p[0] for k, p in self.events if k == "status"]


def _daw_clip(melody, source="osc:test"):
    return clip_from_melody(melody, source, "daw clip")


def test_daw_clips_in_live_mode_are_debounced_latest_wins(qtbot, window):
    window.link.gate.debounce_s = 1.0  # room for a loaded machine between the two submits
    client = _DawClient()
    first = _daw_clip(demo_melody())
    shifted = replace(first, notes=tuple(replace(n, pitch=n.pitch + 2) for n in first.notes))
    with qtbot.waitSignal(window.result_shown, timeout=WAIT_MS):
        window.link.gate.submit("osc:test", "r1", first, {}, client.on_event)
        window.link.gate.submit("osc:test", "r2", shifted, {}, client.on_event)
    qtbot.waitUntil(lambda: "done" in client.states(), timeout=WAIT_MS)
    assert client.states()[0] == "superseded"  # r1 never reached the engine
    (result,) = client.results()
    assert result.request_id == "r2"
    assert window.document.source == "osc:test"
    assert window.document.clip.notes == shifted.notes
    assert [c.symbol for c in result.chords] == [c.symbol for c in window.roll.view.chords]


def test_send_to_daw_answers_with_the_chosen_alternative(qtbot, window):
    client = _DawClient()
    with qtbot.waitSignal(window.result_shown, timeout=WAIT_MS):
        window.link.gate.submit("osc:test", "r1", _daw_clip(demo_melody()), {}, client.on_event)
    before = window.arrangement
    alternative = before.harmonization.phrases[0].alternatives[0]
    after = _generate(qtbot, window, lambda: window.choose_alternative(0, 0))
    assert _phrase_chords(after, 0) == alternative.chords
    window.send_action.trigger()
    qtbot.waitUntil(lambda: len(client.results()) == 2, timeout=WAIT_MS)
    sent = client.results()[-1]
    key = after.harmonization.analysis.key
    assert [c.symbol for c in sent.chords] == [ev.chord.symbol(key)
                                               for ev in after.harmonization.chords]
    assert len(sent.parts["piano"]) == len(after.piano_notes)


def test_with_live_mode_off_a_daw_clip_waits_for_the_user(qtbot, window):
    window.live_box.setChecked(False)
    client = _DawClient()
    with qtbot.waitSignal(window.clip_loaded, timeout=WAIT_MS):
        window.link.gate.submit("osc:test", "r1", _daw_clip(demo_melody()), {}, client.on_event)
    assert window.arrangement is None and window.document.source == "osc:test"
    _generate(qtbot, window, window.generate_action.trigger)
    assert client.results() == []  # nothing went to the DAW on its own
    window.send_action.trigger()
    qtbot.waitUntil(lambda: len(client.results()) == 1, timeout=WAIT_MS)
    assert client.results()[0].request_id == "r1"


# ---- restore, settings, connections, log ---------------------------------------------------


def _restore_offer(qtbot, tmp_path, store):
    win = PanelWindow(_settings(osc_enabled=False), settings_file=tmp_path / "s.json", store=store,
                      start_services=False)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.restore_offered, timeout=WAIT_MS):
        pass  # the store is read on the I/O thread; the offer comes back as a signal
    return win


def test_the_last_session_is_offered_and_restored(qtbot, tmp_path):
    store = ClipStore(tmp_path / "sessions")
    clip = _daw_clip(demo_melody(), source="ableton")
    stored = GenerateResult("ableton-7", "ableton",
                            {"chords": (ClipNote(53, 0.0, 4.0, 90, 2),), "piano": ()},
                            (ChordSymbol(0.0, 4.0, "F"), ChordSymbol(4.0, 4.0, "Bb")))
    store.save_pair("ableton", clip, stored)
    win = _restore_offer(qtbot, tmp_path, store)
    assert win.offer.isVisible() and "daw clip" in win.offer.message.text()
    with qtbot.waitSignal(win.result_shown, timeout=WAIT_MS):
        win.offer.restore_button.click()
    assert [c.symbol for c in win.roll.view.chords] == ["F", "Bb"]
    assert len(win.roll.view.melody) == len(clip.notes)
    mime = win.export_mime()
    assert mime is not None
    assert _track_notes(Path(mime.urls()[0].toLocalFile()), "Chords") == [(53, 0, 1920)]
    # Generate makes it editable; Ableton has not sent it since this start: no answer to give
    with qtbot.waitSignal(win.result_shown, timeout=WAIT_MS):
        win.generate_action.trigger()
    assert win.send_action.isEnabled()
    with qtbot.waitSignal(win.error_shown, timeout=WAIT_MS) as blocker:
        win.send_action.trigger()
    assert "ableton has not sent a clip" in blocker.args[0]
    win.shutdown()


def _old_pair_then(store, newer_clip):
    """The store as a session leaves it: an older request of "ableton" done (F, Bb), then a
    newer one started with `newer_clip`."""
    old = _daw_clip(demo_melody(), source="ableton")
    result = GenerateResult("ableton-1", "ableton",
                            {"chords": (ClipNote(53, 0.0, 4.0, 90, 2),), "piano": ()},
                            (ChordSymbol(0.0, 4.0, "F"), ChordSymbol(4.0, 4.0, "Bb")))
    store.save_pair("ableton", old, result)
    store.save_clip("ableton", "ableton-2", newer_clip)
    return old


def test_a_killed_job_restores_its_melody_not_generated_never_with_older_chords(qtbot,
                                                                               tmp_path):
    """Issue 13: after a killed job the panel showed the new melody with the old clip's
    chords and piano."""
    store = ClipStore(tmp_path / "sessions")
    newer = replace(_daw_clip(demo_melody(), source="ableton"), name="take 2",
                    notes=_daw_clip(demo_melody()).notes[:5])
    _old_pair_then(store, newer)  # … and the process died while ableton-2 ran
    win = _restore_offer(qtbot, tmp_path, store)
    assert "take 2" in win.offer.message.text() and "not generated" in win.offer.message.text()
    with qtbot.waitSignal(win.clip_loaded, timeout=WAIT_MS):
        win.offer.restore_button.click()
    assert len(win.roll.view.melody) == 5
    assert win.roll.view.chords == () and win.roll.view.piano == ()
    assert win.document.restored is None
    win.shutdown()


def test_a_failed_job_restores_the_pair_before_it(qtbot, tmp_path):
    store = ClipStore(tmp_path / "sessions")
    old = _old_pair_then(store, replace(_daw_clip(demo_melody(), source="ableton"),
                                        name="take 2"))
    store.discard("ableton", "ableton-2")  # what the session does when the engine refuses it
    win = _restore_offer(qtbot, tmp_path, store)
    assert "daw clip" in win.offer.message.text() and "chords and piano" in \
        win.offer.message.text()
    with qtbot.waitSignal(win.result_shown, timeout=WAIT_MS):
        win.offer.restore_button.click()
    assert len(win.roll.view.melody) == len(old.notes)
    assert [c.symbol for c in win.roll.view.chords] == ["F", "Bb"]
    win.shutdown()


def test_an_unreadable_session_file_never_stops_the_offer(qtbot, tmp_path):
    store = ClipStore(tmp_path / "sessions")
    _old_pair_then(store, _daw_clip(demo_melody(), source="ableton"))
    store.discard("ableton", "ableton-2")
    os.mkfifo(store.path("osc:x", "r", True))  # newer, and would block a plain open()
    store.path("osc:y", "r", True).write_text('{"schema": 3, "clip": ' + "[" * 900 +
                                              "]" * 900 + "}")
    win = _restore_offer(qtbot, tmp_path, store)
    assert "daw clip" in win.offer.message.text()
    win.shutdown()


def _free_udp_port():
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_settings_changes_restart_the_adapters_and_persist(qtbot, window, tmp_path):
    from ui.settings import load_settings

    port = _free_udp_port()
    with qtbot.waitSignal(window.settings_saved, timeout=WAIT_MS):
        window.apply_settings(replace(window.settings, osc_enabled=True, osc_port=port,
                                      theme="light"))
    osc = {s.name: s for s in window.link.connections()}["OSC API"]
    assert osc.state == "listening" and f"127.0.0.1:{port}" in osc.detail
    assert window.link.services.server is not None
    assert "OSC API" in window.connections.labels[0].text()
    saved, _ = load_settings(tmp_path / "settings.json")
    assert saved.theme == "light" and saved.osc_port == port
    window.apply_settings(replace(window.settings, osc_enabled=False))
    osc = {s.name: s for s in window.link.connections()}["OSC API"]
    assert osc.state == "off" and osc.hint


def test_the_settings_dialog_edits_a_copy(qtbot, window):
    from ui.panel.settings_dialog import SettingsDialog

    dialog = SettingsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    dialog.reaper.setChecked(True)
    dialog.reaper_folder.setText("/tmp/spool")
    dialog.midi_end.setText("bars:8")
    dialog.theme.setCurrentText("light")
    dialog.debounce.setValue(300)
    new = dialog.result_settings()
    assert (new.reaper_spool, new.midi_end, new.theme, new.debounce_ms) == \
        ("/tmp/spool", "bars:8", "light", 300)
    assert window.settings.theme == "dark"  # the window's own copy is untouched
    dialog.midi_end.setText("whenever")
    with pytest.raises(ValueError, match="midi_end"):
        dialog.result_settings()


def test_a_taken_port_is_a_status_with_a_hint_not_a_crash(qtbot, window):
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        window.apply_settings(replace(window.settings, osc_enabled=True, osc_port=port))
    osc = {s.name: s for s in window.link.connections()}["OSC API"]
    assert osc.state == "error" and str(port) in osc.detail and "port" in osc.hint


def test_log_records_reach_the_log_panel(qtbot, window):
    logging.getLogger("bridge.test").warning("a clip went missing")
    qtbot.waitUntil(lambda: "a clip went missing" in window.log_panel.toPlainText(),
                    timeout=WAIT_MS)


def test_preset_save_as_and_delete(qtbot, window):
    base = window.preset_list.current
    window.preset_list.save_as("my test preset")
    assert window.preset_list.current.name == "my test preset"
    assert not window.preset_list.current.factory
    assert window.preset_bar.delete_button.isEnabled()
    window.preset_list.delete(confirm=False)
    names = [window.preset_box.itemData(i).name for i in range(window.preset_box.count())]
    assert "my test preset" not in names and base.name in names


def test_the_delete_button_asks_first(qtbot, window, monkeypatch):
    window.preset_list.save_as("my test preset")
    asked = []
    monkeypatch.setattr(window.preset_bar, "confirm_delete",
                        lambda name: asked.append(name) or False)
    window.preset_bar.delete_button.click()
    assert asked == ["my test preset"]
    assert window.preset_list.current.name == "my test preset"  # the user said no


# ---- honest state (issue 15 item 6) -------------------------------------------------------


def _lock(qtbot, window, phrase):
    card = window.phrase_strip.cards[phrase]
    card.lock.click()
    qtbot.waitUntil(lambda: "locked" in card.title.text(), timeout=WAIT_MS)


def test_a_mistyped_phrase_string_is_refused_inline_and_keeps_the_locks(qtbot, window,
                                                                        demo_file):
    before = _load(qtbot, window, demo_file)
    _lock(qtbot, window, 0)
    request = window.generation.latest_request
    field = window.analysis.phrases
    field.setFocus()
    qtbot.keyClicks(field, "A8A9")
    qtbot.keyClick(field, Qt.Key.Key_Return)
    assert "cover 17 bars" in window.analysis.phrase_problem()
    assert window.analysis.phrase_error.isVisible()
    assert set(window.document.locked) == {0}  # the lock is kept, and so says the card
    assert "locked" in window.phrase_strip.cards[0].title.text()
    assert not window._edit_timer.isActive() and window.generation.latest_request == request
    assert window.analysis.edits().phrases is None  # the refused string is never sent
    field.clear()
    qtbot.keyClicks(field, "A8x")  # not a phrase at all
    qtbot.keyClick(field, Qt.Key.Key_Return)
    assert "not a phrase" in window.analysis.phrase_problem()
    field.clear()
    bars = sum(p.phrase.bars for p in before.harmonization.phrases)
    qtbot.keyClicks(field, f"A{bars // 2}B{bars - bars // 2}")  # a structure that fits
    with qtbot.waitSignal(window.result_shown, timeout=WAIT_MS):
        qtbot.keyClick(field, Qt.Key.Key_Return)
    assert window.analysis.phrase_problem() is None
    assert window.document.locked == {}  # a new structure renumbers the phrases: released


def test_the_error_banner_clears_when_a_good_result_arrives(qtbot, window, demo_file):
    _load(qtbot, window, demo_file)
    window.report_error("Could not generate: something went wrong", None)
    assert window.banner.isVisible()
    _generate(qtbot, window, window.generate)
    assert not window.banner.isVisible()


def test_the_highlight_follows_the_chosen_progression_after_a_click(qtbot, window, demo_file):
    before = _load(qtbot, window, demo_file)
    card = window.phrase_strip.cards[0]
    rect = card.alternatives.visualItemRect(card.alternatives.item(2))
    _generate(qtbot, window, lambda: qtbot.mouseClick(
        card.alternatives.viewport(), Qt.MouseButton.LeftButton, pos=rect.center()))
    qtbot.waitUntil(lambda: card.alternatives.currentRow() == 0, timeout=WAIT_MS)
    key = before.harmonization.analysis.key
    chosen = before.harmonization.phrases[0].alternatives[1]
    first = card.alternatives.item(0)
    assert first.text().startswith("●")
    assert chosen.chords[0].chord.symbol(key) in first.text()


def test_alternatives_are_ranked_with_a_fit_bar_and_whole_on_hover(qtbot, window, demo_file):
    arrangement = _load(qtbot, window, demo_file)
    harmony = arrangement.harmonization.phrases[0]
    key = arrangement.harmonization.analysis.key
    rows = window.phrase_strip.cards[0].alternatives
    texts = [rows.item(i).text() for i in range(rows.count())]
    assert all("■" in t and "#" in t for t in texts)
    assert not any(f"{s:.3f}" in t for t, s in zip(texts, [arrangement.harmonization.score] + [
        a.path_score for a in harmony.alternatives], strict=True))  # no raw scores
    ranks = [int(t.split("#")[1].split()[0]) for t in texts]
    assert sorted(ranks)[0] == 1 and max(ranks) <= len(texts)
    symbols = []
    for ev in harmony.chosen.chords:
        symbol = ev.chord.symbol(key)
        if not symbols or symbols[-1] != symbol:
            symbols.append(symbol)
    assert " ".join(symbols) in rows.item(0).toolTip()  # every chord, however many
    assert " ".join(symbols) in texts[0]  # never cut by the panel (the list elides)


def test_a_locked_card_shows_the_locked_chords_style(qtbot, window, demo_file):
    before = _load(qtbot, window, demo_file)
    style = before.harmonization.phrases[0].chosen.style
    _lock(qtbot, window, 0)
    index, preset = _preset_with_other_style(window, style)
    after = _generate(qtbot, window, lambda: window.preset_box.setCurrentIndex(index))
    qtbot.waitUntil(lambda: "locked chords" in window.phrase_strip.cards[0].style_box.itemText(0),
                    timeout=WAIT_MS)
    from ui.panel.phrases import STYLE_NAMES

    locked_card, free_card = window.phrase_strip.cards
    assert locked_card.style_box.currentText() == f"{STYLE_NAMES[style]} (locked chords)"
    assert not locked_card.style_box.isEnabled()
    assert after.harmonization.phrases[1].style == preset.style
    assert STYLE_NAMES[preset.style] in free_card.style_box.currentText()


def test_the_disabled_drag_handle_looks_disabled(qtbot, window, demo_file):
    drag = window.drag_out
    assert not drag.isEnabled() and "generate first" in drag.toolTip()
    disabled = drag.grab().toImage()
    _load(qtbot, window, demo_file)
    assert drag.isEnabled() and "Drag onto a DAW track" in drag.toolTip()
    enabled = drag.grab().toImage()
    assert disabled != enabled


def test_the_osc_api_says_listening_until_a_client_says_hello(qtbot, window):
    import time

    from bridge.client import BridgeClient

    port = _free_udp_port()
    window.apply_settings(replace(window.settings, osc_enabled=True, osc_port=port))

    def osc_label():
        return next(label.text() for label in window.connections.labels if "OSC API" in
                    label.text())

    assert "listening" in osc_label() and ": connected" not in osc_label()
    with BridgeClient("127.0.0.1", port) as client:
        client.hello(time.monotonic() + 10)
    qtbot.waitUntil(lambda: ": connected" in osc_label(), timeout=WAIT_MS)
    assert "1 client said hello" in osc_label()


def _polyphonic_file(tmp_path):
    from engine import Note

    melody = demo_melody()
    chords = [Note(n.pitch - 4, n.start_tick, n.duration_tick, n.velocity)
              for n in melody.notes[:10]]
    path = tmp_path / "chords-in-melody.mid"
    write_song(path, replace(melody, notes=tuple(sorted(
        melody.notes + tuple(chords), key=lambda n: (n.start_tick, -n.pitch)))), [])
    return path


def test_chords_dropped_from_a_melody_file_are_said_in_the_panel(qtbot, window, tmp_path):
    _load(qtbot, window, _polyphonic_file(tmp_path))
    assert window.notice.isVisible()
    assert "dropped 10" in window.notice.text() and "top line" in window.notice.text()


def test_chords_dropped_from_a_daw_clip_are_said_in_the_panel(qtbot, window, demo_file):
    melody = demo_melody()
    clip = clip_from_melody(melody, "osc:test", "clip")
    extra = tuple(replace(n, pitch=n.pitch - 5) for n in clip.notes[:6])
    with qtbot.waitSignal(window.result_shown, timeout=WAIT_MS):
        window.files.load_clip(replace(clip, notes=clip.notes + extra))
    assert window.notice.isVisible() and "6 of" in window.notice.text()
    _load(qtbot, window, demo_file)  # a clean melody: no notice
    assert not window.notice.isVisible()


# ---- process-level ----------------------------------------------------------------------


def test_building_the_window_imports_neither_torch_nor_the_engine_pipeline():
    code = ("import sys; import ui.panel.window, ui.panel.app; "
            "print('torch' in sys.modules, 'engine.pipeline' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.slow
@pytest.mark.parametrize("theme", ["dark", "light"])
def test_screenshot_command_renders_the_demo(tmp_path, theme):
    from PyQt6.QtGui import QImage

    out = tmp_path / f"panel-{theme}.png"
    env = {"ACCOBRIDGE_CONFIG_DIR": str(tmp_path / "cfg"),
           "ACCOBRIDGE_DATA_DIR": str(tmp_path / "data"), "QT_QPA_PLATFORM": "offscreen"}
    import os

    proc = subprocess.run(
        [sys.executable, "-m", "ui.cli", "panel", "--screenshot", str(out), "--demo",
         "--theme", theme], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True,
        timeout=180)
    assert proc.returncode == 0, proc.stderr
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1280, 800)


def test_without_a_display_the_panel_says_so_instead_of_aborting(tmp_path):
    import os

    if sys.platform in ("darwin", "win32"):
        pytest.skip("these platforms always have a display")
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(ACCOBRIDGE_CONFIG_DIR=str(tmp_path / "cfg"), ACCOBRIDGE_DATA_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "ui.cli", "panel"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("accobridge: error: no display")
