"""The panel with real adapters: Ableton Live (the AbletonOSC test double) in live mode writes
the parts into Live and "Send to DAW" carries a chosen alternative; a REAPER spool clip waits in
manual mode until the user sends."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest
from ableton_double import AbletonOSCDouble, FakeClip, LiveSet

from bridge.store import ClipStore
from engine.demo import demo_melody
from ui.panel.window import PanelWindow

WAIT_MS = 60_000


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCOBRIDGE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("ACCOBRIDGE_DATA_DIR", str(tmp_path / "data"))


def _demo_set() -> LiveSet:
    melody = demo_melody()
    tpb = melody.ticks_per_beat
    notes = [(n.pitch, n.start_tick / tpb, n.duration_tick / tpb, 90.0, False)
             for n in melody.notes]
    live = LiveSet(num_scenes=2, tempo=96.0, selected_track=0, selected_scene=0)
    track = live.add_track("Lead")
    live.tracks[track].slots[0] = FakeClip(notes, 64.0, name="Demo")
    return live


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _written(double, name):
    names = double.track_names()
    if name not in names:
        return []
    return sorted((p, round(s * 480)) for p, s, _d, _v, _m in double.notes(names.index(name), 0))


def _expected(notes):
    return sorted((n.pitch, n.start_tick) for n in notes)


def test_live_mode_writes_into_live_and_send_carries_the_chosen_alternative(qtbot, tmp_path):
    from ui.settings import Settings

    double = AbletonOSCDouble(_demo_set())
    reply_port = _free_udp_port()
    double.reply_port = reply_port
    settings = replace(Settings(), osc_enabled=False, ableton=True, live_mode=True,
                       ableton_send_port=double.port, ableton_reply_port=reply_port)
    try:
        window = PanelWindow(settings, settings_file=tmp_path / "settings.json",
                             store=ClipStore(tmp_path / "sessions"), offer_restore=False)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitUntil(lambda: window.arrangement is not None, timeout=WAIT_MS)
        assert window.document.source == "ableton"
        first = window.arrangement
        qtbot.waitUntil(lambda: _written(double, "AccoBridge Chords")
                        == _expected(first.harmonization.chord_notes), timeout=WAIT_MS)
        status = {s.name: s for s in window.link.connections()}["Ableton Live"]
        assert status.state == "connected"

        alternative = first.harmonization.phrases[0].alternatives[0]
        with qtbot.waitSignal(window.result_shown, timeout=WAIT_MS):
            window.choose_alternative(0, 0)
        chosen = window.arrangement
        assert chosen.harmonization.phrases[0].chosen.chords == alternative.chords
        assert _expected(chosen.harmonization.chord_notes) != \
            _expected(first.harmonization.chord_notes)
        window.send_action.trigger()
        qtbot.waitUntil(lambda: _written(double, "AccoBridge Chords")
                        == _expected(chosen.harmonization.chord_notes), timeout=WAIT_MS)
        # the piano part is written after the chords: wait for it too (asserting at once raced
        # with that write whenever the two results' piano parts differed in size)
        qtbot.waitUntil(lambda: _written(double, "AccoBridge Piano")
                        == _expected(chosen.piano_notes), timeout=WAIT_MS)
        window.shutdown()
    finally:
        double.close()


def test_reaper_clip_waits_in_manual_mode_and_send_writes_the_result_file(qtbot, tmp_path):
    from bridge.reaper.spool_format import (
        SpoolResult,
        clip_file_name,
        format_clip,
        parse,
        result_file_name,
    )
    from ui.panel.jobs import clip_from_melody
    from ui.settings import Settings

    folder = tmp_path / "spool"
    settings = replace(Settings(), osc_enabled=False, live_mode=False, reaper_spool=str(folder))
    window = PanelWindow(settings, settings_file=tmp_path / "settings.json",
                         store=ClipStore(tmp_path / "sessions"), offer_restore=False)
    qtbot.addWidget(window)
    window.show()
    try:
        clip = clip_from_melody(demo_melody(), "reaper", "take")
        temporary = folder / "clip-1.tmp"  # written, then renamed, as AccoBridge.lua does
        with qtbot.waitSignal(window.clip_loaded, timeout=WAIT_MS):
            temporary.write_text(format_clip(1, clip), encoding="utf-8")
            temporary.rename(folder / clip_file_name(1))
        assert window.document.source == "reaper" and window.arrangement is None
        with qtbot.waitSignal(window.result_shown, timeout=WAIT_MS):
            window.generate_action.trigger()
        with qtbot.waitSignal(window.result_shown, timeout=WAIT_MS):
            window.choose_alternative(1, 0)
        shown = window.arrangement
        assert not (folder / result_file_name(1)).exists()  # nothing went back on its own
        window.send_action.trigger()
        qtbot.waitUntil((folder / result_file_name(1)).exists, timeout=WAIT_MS)
        document = parse((folder / result_file_name(1)).read_text(encoding="utf-8"))
        assert isinstance(document, SpoolResult)
        key = shown.harmonization.analysis.key
        assert [c.symbol for c in document.result.chords] == \
            [ev.chord.symbol(key) for ev in shown.harmonization.chords]
    finally:
        window.shutdown()
