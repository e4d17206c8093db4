"""Audition (ui/panel/audition.py, presenters/audition.py, transport.py): what is played, on
which channel, when; stop silences; mute/solo filter parts; a loop repeats its phrase; Play and
Space in the real window; once on a real JACK port when jackd is installed.

The output is injected: a callable that stamps and keeps each raw message. Timing is checked
against the tempo grid from the first note-on (the player's own clock starts there)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests import test_panel as panel_tests
from ui.panel.audition import (
    NO_OUTPUT,
    PREVIEW_OUTPUT,
    Mix,
    PartNote,
    Performance,
    Player,
    fluidsynth_command,
    performance_of,
    preview_soundfont,
    schedule,
)

BPM = 240.0  # a beat every 0.25 s: short tests, notes far apart compared to the tolerance
BEAT_S = 60.0 / BPM
TOLERANCE_S = 0.025  # a loaded 2-core machine: the sender sleeps to 2 ms before, then spins
WAIT_S = 10.0  # only reached when a test is about to fail
NOTE_ON, NOTE_OFF, CC = 0x90, 0x80, 0xB0


class FakePort:
    """An output that keeps (monotonic time, message) and wakes waiters on what they want."""

    def __init__(self) -> None:
        self.got: list[tuple[float, tuple[int, ...]]] = []
        self._cond = threading.Condition()

    def __call__(self, data: Sequence[int]) -> bool:
        with self._cond:
            self.got.append((time.monotonic(), tuple(data)))
            self._cond.notify_all()
        return True

    send = __call__

    def close(self) -> None:
        pass

    def wait_for(self, done: Callable[[list[tuple[float, tuple[int, ...]]]], bool],
                 timeout: float = WAIT_S) -> list[tuple[float, tuple[int, ...]]]:
        with self._cond:
            assert self._cond.wait_for(lambda: done(self.got), timeout), self.got
            return list(self.got)

    def messages(self) -> list[tuple[int, ...]]:
        with self._cond:
            return [data for _t, data in self.got]


def note_ons(got: Sequence[tuple[float, tuple[int, ...]]]) -> list[tuple[float, tuple[int, ...]]]:
    return [(t, d) for t, d in got if d[0] & 0xF0 == NOTE_ON and d[2] > 0]


def silenced(channel: int) -> Callable[[list[tuple[float, tuple[int, ...]]]], bool]:
    """Done once all-notes-off went out on `channel` (1-16)."""
    return lambda got: any(d == (CC | (channel - 1), 123, 0) for _t, d in got)


def ended(got: Sequence[tuple[float, tuple[int, ...]]]) -> bool:
    """Done once a stop's silence went out (it ends with the piano's pedal up and
    all-notes-off)."""
    return [d for _t, d in got[-2:]] == [(0xB2, 64, 0), (0xB2, 123, 0)]


def song(length: float = 4.0) -> Performance:
    """Melody on every beat, one chord, piano on every half beat, the pedal down then up."""
    beats = int(length)
    return Performance(
        {"melody": tuple(PartNote(60 + i, float(i), 0.5, 100 + i) for i in range(beats)),
         "chords": (PartNote(48, 0.0, length, 70),),
         "piano": tuple(PartNote(36 + i, i * 0.5, 0.5, 50 + i) for i in range(2 * beats))},
        {"piano": ((0.0, 64, 127), (length - 0.5, 64, 0))}, BPM, length)


@pytest.fixture
def port() -> FakePort:
    return FakePort()


@pytest.fixture
def player(port: FakePort) -> Iterator[Player]:
    player = Player(port)
    yield player
    player.close()


# ---- what is scheduled (pure) ----------------------------------------------------------------

def test_a_range_keeps_its_notes_cut_at_its_end_and_the_pedal_held_into_it() -> None:
    messages = sorted(schedule(song(), 1.0, 3.0))
    ons = [(m.beats, m.channel, m.number, m.value) for m in messages if m.kind == 2]
    assert ons[0] == (1.0, 1, 61, 101)  # the melody's second note, channel 1, its velocity
    assert {m.beats for m in messages if m.kind == 2} == {1.0, 1.5, 2.0, 2.5}
    assert max(m.beats for m in messages) == 3.0  # nothing after the range
    assert [(m.beats, m.channel, m.number, m.value) for m in messages if m.kind == 1] == \
        [(1.0, 3, 64, 127)]  # the pedal went down before the range: down from its start


def test_performance_of_the_song_tracks_is_what_save_writes() -> None:
    from engine import arrange
    from engine.demo import demo_melody
    from ui.panel.document import PanelDocument

    arrangement = arrange(demo_melody())
    doc = PanelDocument(arrangement=arrangement)
    tracks = doc.song_tracks()
    assert tracks is not None
    performance = performance_of(*tracks, 0.0)
    tpb = arrangement.harmonization.melody.ticks_per_beat
    assert [n.start_beats for n in performance.notes["chords"]] == \
        [n.start_tick / tpb for n in arrangement.harmonization.chord_notes]
    assert len(performance.notes["piano"]) == len(arrangement.piano_notes)
    assert len(performance.controls["piano"]) == len(arrangement.pedal)
    assert performance.tempo_bpm == pytest.approx(arrangement.harmonization.melody.tempo_bpm)


# ---- the player -------------------------------------------------------------------------------

def test_play_sends_each_part_on_its_channel_in_time(player: Player, port: FakePort) -> None:
    performance = song()
    player.play(performance)
    got = port.wait_for(silenced(3))
    ons = note_ons(got)
    expected = sorted((n.start_beats, channel, n.pitch, n.velocity)
                      for channel, part in ((1, "melody"), (2, "chords"), (3, "piano"))
                      for n in performance.notes[part])
    assert [((d[0] & 0x0F) + 1, d[1], d[2]) for _t, d in ons] == \
        [(channel, pitch, velocity) for _b, channel, pitch, velocity in expected]
    t0 = ons[0][0]
    late = [(beats, t - t0 - beats * BEAT_S) for (beats, *_), (t, _d) in zip(expected, ons,
                                                                          strict=True)]
    assert all(abs(off) <= TOLERANCE_S for _b, off in late), late
    messages = [d for _t, d in got]
    pedal_down = messages.index((0xB2, 64, 127))
    assert pedal_down < messages.index((0x92, 36, 50))  # pressed before the notes it holds
    assert (0xB2, 64, 0) in messages[pedal_down + 1:]
    # every note ends; at the end, pedal up then all-notes-off on each part's channel
    for _t, d in ons:
        assert (NOTE_OFF | (d[0] & 0x0F), d[1], 0) in messages
    assert messages[-6:] == [(0xB0, 64, 0), (0xB0, 123, 0), (0xB1, 64, 0), (0xB1, 123, 0),
                             (0xB2, 64, 0), (0xB2, 123, 0)]
    assert not player.playing and player.position() is None


def test_stop_sends_note_offs_pedal_up_and_all_notes_off(player: Player,
                                                         port: FakePort) -> None:
    player.play(song(64.0), 8.0)  # from bar 3
    got = port.wait_for(lambda got: len(note_ons(got)) >= 3)
    assert note_ons(got)[0][1] == (0x90, 68, 108)  # the melody note on beat 8
    position = player.position()
    assert position is not None and 8.0 <= position < 9.0
    player.stop()
    got = port.wait_for(silenced(3))
    messages = [d for _t, d in got]
    first_off = next(i for i, d in enumerate(messages)
                     if d[0] & 0xF0 == CC and d[1:] == (123, 0))
    tail = messages[first_off - 1:]
    assert (0xB0, 123, 0) in tail and (0xB1, 123, 0) in tail and (0xB2, 64, 0) in tail
    sounding = {(d[0] & 0x0F, d[1]) for d in messages if d[0] & 0xF0 == NOTE_ON} - \
        {(d[0] & 0x0F, d[1]) for d in messages[:first_off - 1] if d[0] & 0xF0 == NOTE_OFF}
    assert sounding <= {(d[0] & 0x0F, d[1]) for d in messages if d[0] & 0xF0 == NOTE_OFF}
    assert player.position() is None
    heard = len(port.messages())
    player.play(song(1.0), 0.0)  # still usable
    port.wait_for(lambda got: len(got) > heard and silenced(3)(got[heard:]))


@pytest.mark.parametrize(("mix", "channels"), [
    (Mix(muted=frozenset({"piano"})), {1, 2}),
    (Mix(soloed=frozenset({"chords"})), {2}),
    (Mix(muted=frozenset({"melody"}), soloed=frozenset({"melody", "piano"})), {1, 3}),
])
def test_mute_and_solo_choose_the_parts_heard(player: Player, port: FakePort, mix: Mix,
                                              channels: set[int]) -> None:
    player.set_mix(mix)
    player.play(song(2.0))
    got = port.wait_for(ended)
    assert {(d[0] & 0x0F) + 1 for _t, d in note_ons(got)} == channels


def test_muting_while_playing_silences_that_part_at_once(player: Player,
                                                         port: FakePort) -> None:
    player.play(song(64.0))
    port.wait_for(lambda got: len(note_ons(got)) >= 3)
    player.set_mix(Mix(muted=frozenset({"piano"})))
    got = port.wait_for(lambda got: any(d == (0xB2, 123, 0) for _t, d in got))
    cut = next(t for t, d in got if d == (0xB2, 123, 0))
    got = port.wait_for(lambda got: len(note_ons([g for g in got if g[0] > cut])) >= 2)
    assert all(d[0] != 0x92 for t, d in note_ons(got) if t > cut)


def test_a_loop_repeats_its_phrase_in_time(player: Player, port: FakePort) -> None:
    performance = song(8.0)
    player.play(performance, 0.0, loop=(4.0, 6.0))  # starts at the loop's start

    def passes(got: list[tuple[float, tuple[int, ...]]]) -> list[float]:
        return [t for t, d in note_ons(got) if d == (0x90, 64, 104)]  # the melody on beat 4

    got = port.wait_for(lambda got: len(passes(got)) >= 3)
    starts = passes(got)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(abs(gap - 2 * BEAT_S) <= TOLERANCE_S for gap in gaps), gaps
    melody = {d[1] for _t, d in note_ons(got) if d[0] == 0x90}
    assert melody == {64, 65}  # only the loop's notes, never beats 0-3 or 6-7
    position = player.position()
    assert position is not None and 4.0 <= position <= 6.0
    player.stop()
    port.wait_for(silenced(3))


# ---- the built-in preview (optional) ---------------------------------------------------------

def test_the_preview_speaks_fluidsynths_shell() -> None:
    assert fluidsynth_command([0x92, 60, 90]) == "noteon 2 60 90"
    assert fluidsynth_command([0x80, 60, 0]) == "noteoff 0 60"
    assert fluidsynth_command([0x91, 60, 0]) == "noteoff 1 60"  # a note-on of velocity 0
    assert fluidsynth_command([0xB2, 64, 127]) == "cc 2 64 127"
    assert fluidsynth_command([0xE0, 0, 64]) is None


def test_the_preview_is_offered_only_when_installed(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    import ui.panel.audition as audition

    font = tmp_path / "FluidR3_GM.sf2"
    monkeypatch.setattr(audition, "SOUNDFONTS", (font,))
    monkeypatch.setattr(audition.shutil, "which", lambda name: "/usr/bin/fluidsynth")
    assert preview_soundfont() is None  # no soundfont
    font.write_bytes(b"RIFF")
    assert preview_soundfont() == font
    monkeypatch.setattr(audition.shutil, "which", lambda name: None)
    monkeypatch.setattr(audition.importlib.util, "find_spec", lambda name: None)
    assert preview_soundfont() is None  # no FluidSynth


needs_fluidsynth = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or preview_soundfont() is None,
    reason="the built-in preview needs fluidsynth and a GM soundfont (apt-get install "
           "fluidsynth fluid-soundfont-gm)")


@needs_fluidsynth
def test_the_preview_sounds(tmp_path: Path) -> None:
    """Played through FluidSynth rendering to a file (no audio device needed): sound comes out,
    as long as the song lasts."""
    import wave

    from ui.panel.audition import FluidSynthPreview

    soundfont = preview_soundfont()
    assert soundfont is not None
    rendered = tmp_path / "preview.wav"
    preview = FluidSynthPreview(soundfont, ["-a", "file", "-o", f"audio.file.name={rendered}"])
    port = FakePort()

    def both(data: Sequence[int]) -> bool:
        port(data)
        return preview.send(data)

    player = Player(both)
    try:
        player.play(song(2.0))
        port.wait_for(ended)
    finally:
        player.close()
        preview.close()
    with wave.open(str(rendered)) as sound:
        seconds = sound.getnframes() / sound.getframerate()
        frames = sound.readframes(sound.getnframes())
    samples = memoryview(frames).cast("h")
    assert seconds >= 2 * BEAT_S
    assert max(abs(x) for x in samples) > 300  # not silence


@needs_fluidsynth
def test_a_preview_that_cannot_start_says_why() -> None:
    from ui.panel.audition import FluidSynthPreview

    soundfont = preview_soundfont()
    assert soundfont is not None
    with pytest.raises(OSError, match="FluidSynth stopped at once"):
        FluidSynthPreview(soundfont, ["-a", "no-such-driver"])


def test_the_output_list_has_the_ports_and_the_preview_when_installed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import bridge.midi.ports as ports
    import ui.panel.audition as audition

    monkeypatch.setattr(ports, "output_names", lambda api=None: ["Synth 1", "DAW in"])
    monkeypatch.setattr(audition, "preview_soundfont", lambda: None)
    assert audition.output_choices() == [NO_OUTPUT, "Synth 1", "DAW in"]
    monkeypatch.setattr(audition, "preview_soundfont", lambda: Path("/x.sf2"))
    assert audition.output_choices()[-1] == PREVIEW_OUTPUT


# ---- the real window --------------------------------------------------------------------------

# test_panel's fixtures: the real window with private config and data folders
_private_dirs = panel_tests._private_dirs
window = panel_tests.window


def _demo(qtbot, window):
    from engine.demo import demo_melody

    with qtbot.waitSignal(window.result_shown, timeout=30_000):
        window.load_melody(demo_melody(), "demo")


def test_space_plays_the_result_with_a_moving_playhead_and_stops(qtbot, window) -> None:
    from PyQt6.QtCore import Qt
    from PyQt6.QtTest import QTest

    _demo(qtbot, window)
    port = FakePort()
    window.audition.output.replace(port, "fake synth")
    QTest.keyClick(window, Qt.Key.Key_Space)
    assert window.audition.playing and window.transport.play_action.iconText().endswith("Stop")
    got = port.wait_for(lambda got: len(note_ons(got)) >= 4)
    first = window.arrangement.harmonization.melody.notes[0]
    assert next(d for _t, d in note_ons(got) if d[0] == 0x90) == \
        (0x90, first.pitch, first.velocity)
    assert {d[0] for _t, d in note_ons(got)} <= {0x90, 0x91, 0x92}
    qtbot.waitUntil(lambda: (window.roll.playhead or 0.0) > 0.2, timeout=5_000)
    QTest.keyClick(window, Qt.Key.Key_Space)
    assert not window.audition.playing
    port.wait_for(silenced(3))
    stopped_at = window.roll.playhead
    assert stopped_at is not None and stopped_at > 0.2  # Play goes on from there


def test_space_in_a_text_field_types_a_space(qtbot, window) -> None:
    from PyQt6.QtCore import Qt
    from PyQt6.QtTest import QTest

    _demo(qtbot, window)
    field = window.analysis.phrases
    field.setFocus()
    qtbot.waitUntil(field.hasFocus)
    QTest.keyClicks(field, "A8 B8")
    assert field.text() == "A8 B8" and not window.audition.playing
    window.transport.loop_box.setFocus()  # elsewhere Space plays, whatever has the focus
    QTest.keyClick(window.transport.loop_box, Qt.Key.Key_Space)
    assert window.audition.playing
    window.audition.stop()


def test_clicking_a_phrase_loops_it_and_mute_buttons_filter(qtbot, window) -> None:
    from PyQt6.QtCore import QPoint, Qt

    from ui.panel.rollpaint import CHORD_LANE, PHRASE_LANE

    _demo(qtbot, window)
    phrase = window.roll.view.phrases[1]
    x = int(window.roll.x_of((phrase.start_beats + phrase.end_beats) / 2))
    qtbot.mouseClick(window.roll, Qt.MouseButton.LeftButton,
                     pos=QPoint(x, CHORD_LANE + PHRASE_LANE // 2))
    assert window.audition.looping and window.audition.loop_index == 2
    assert window.audition.loop_span() == (phrase.start_beats, phrase.end_beats)
    assert window.transport.loop_action.isChecked()
    assert window.transport.loop_box.currentText() == "B · bars 9–16"
    window.transport.mute["piano"].click()
    window.transport.solo["chords"].click()
    assert window.audition.mix() == Mix(frozenset({"piano"}), frozenset({"chords"}))
    port = FakePort()
    window.audition.output.replace(port, "fake synth")
    window.transport.play_action.trigger()
    got = port.wait_for(lambda got: len(note_ons(got)) >= 2)
    assert {d[0] for _t, d in note_ons(got)} == {0x91}
    position = window.audition.player.position()
    assert position is not None and phrase.start_beats <= position <= phrase.end_beats
    window.transport.play_action.trigger()
    port.wait_for(silenced(3))


def test_a_failed_output_is_reported_and_the_choice_kept(qtbot, window) -> None:
    def refuse(name: str) -> object:
        raise OSError(f"no MIDI port matching {name!r}")

    window.audition._open_output = refuse
    with qtbot.waitSignal(window.error_shown, timeout=5_000) as shown:
        window.audition.choose_output("Gone synth")
    assert "Gone synth" in shown.args[0]
    assert window.audition.output.name == NO_OUTPUT
    assert window.transport.output_box.currentText() == NO_OUTPUT


# ---- a real JACK port ------------------------------------------------------------------------

def test_play_reaches_a_synth_on_a_real_jack_port() -> None:
    jack_server = pytest.importorskip("jack_server")
    if not jack_server.jackd_available():
        pytest.skip("jackd/jack_lsp not installed (apt-get install jackd2)")
    from bridge.midi.ports import MidiOutput

    name = os.environ.get(jack_server.SERVER_ENV)
    server = None if name else jack_server.start()
    try:
        with jack_server.as_default(name or server.name), jack_server.daw_client() as synth:
            synth.open_virtual("accobridge-test-daw unused out", "accobridge-test-daw synth")
            output = MidiOutput("accobridge-test-daw synth", "UNIX_JACK")
            player = Player(output.send)
            try:
                player.play(song(2.0))
                got = synth.collect(silenced(3))
            finally:
                player.close()
                output.close()
    finally:
        if server is not None:
            jack_server.stop(server)
    ons = note_ons(got)
    assert [d[0] for _t, d in ons][:3] == [0x90, 0x91, 0x92]
    assert len(ons) == 2 + 1 + 4
    t0 = ons[0][0]
    melody = [t - t0 for t, d in ons if d[0] == 0x90]
    assert melody[1] == pytest.approx(BEAT_S, abs=TOLERANCE_S)


def test_another_output_silences_the_old_one_first() -> None:
    from ui.panel.audition import Output

    old, new = FakePort(), FakePort()
    output = Output()
    output.replace(old, "old synth")
    assert output.send([0x90, 60, 100])
    output.replace(new, "new synth")
    assert old.messages()[1:] == [(0xB0, 64, 0), (0xB0, 123, 0), (0xB1, 64, 0),
                                  (0xB1, 123, 0), (0xB2, 64, 0), (0xB2, 123, 0)]
    assert output.send([0x90, 61, 100]) and new.messages() == [(0x90, 61, 100)]
    output.close()
    assert not output.send([0x90, 62, 100]) and output.name == NO_OUTPUT
