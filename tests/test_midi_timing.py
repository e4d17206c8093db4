"""The MIDI port path as a producer meets it (issue 14, item 7), on a real JACK dummy server:
record-then-next-pass and the loop mode, the meter of takes (`serve --meter`, the panel's
analysis editor), a JACK xrun costing at most a bar, nothing sent at or after Stop.

The server, the fake engine and the scenario retry (only when jackd logged missed cycles) are
test_midi_ports'. The xrun is real: a helper JACK client feeding "AccoBridge In" is stopped
(SIGSTOP) for 150 ms, so the bridge's input client misses its cycles and loses the DAW's clock
ticks meanwhile, as a client does in an xrun.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import jack_server
import pytest
from jack_server import fit_ticks, song
from test_midi_ports import BPM, MELODY, WAIT, FakeEngine, Reports, needs_jack, run_scenario
from test_midi_ports import engine as engine  # fixtures: the fake engine, its session,
from test_midi_ports import jack as jack  # the module's JACK server
from test_midi_ports import session as session

from benchmarks.midi_jitter import perform_stalling, staller
from bridge.midi.adapter import MidiAdapter
from bridge.session import Session
from ui.services import BridgeServices, ServiceConfig

Received = list[tuple[float, tuple[int, ...]]]


def note_ons(received: Received, since: float = 0.0) -> Received:
    return [(t, d) for t, d in received if t >= since and d[0] in (0x91, 0x92) and d[2] > 0]


def silenced(since: float) -> Callable[[Received], bool]:
    """Done once Stop's all-notes-off reached the DAW on both parts' channels."""
    return lambda got: sum(1 for t, d in got if t >= since and d[0] in (0xB1, 0xB2)
                           and d[1] == 123) >= 2


def record(daw: jack_server.Daw, engine: FakeEngine, reports: Reports, beats: float,
           melody: list[tuple[int, float, float]]) -> None:
    """Pass 1: the DAW plays `melody` with its clock and stops; the take becomes a result."""
    daw.perform(song(BPM, time.monotonic() + 0.3, beats, melody))
    engine.clips.get(timeout=WAIT)
    reports.wait("result")
    daw.drain()


# ---- nothing at or after Stop -----------------------------------------------------------------

@needs_jack
def test_a_note_due_at_stop_is_not_sent(
    jack: jack_server.JackServer, session: Session, engine: FakeEngine,
) -> None:
    """The DAW stops just before beat 2 (the last tick is 2 ticks short of it), where the piano
    has a note (and nothing else is due): it must not sound. Before the fix the sender,
    already spinning towards the note's deadline when Stop came, sent it and cut it a moment
    later; a 40 ms spin makes
    "Stop came while spinning" certain, the 30 ms between Stop and the note leave a loaded
    machine the time to hand the Stop over (a Stop that reaches the bridge after a note's
    deadline cannot hold that note back)."""
    def scenario() -> None:
        reports = Reports()
        adapter = MidiAdapter(session, api="UNIX_JACK", on_report=reports, spin_s=0.040)
        try:
            with jack_server.daw_client() as daw:
                daw.connect()
                record(daw, engine, reports, 4.0, MELODY[:4])  # piano at beats 0, 1, 2, 3
                for _ in range(3):  # a starved DAW double may stop late: then play it again
                    script = song(BPM, time.monotonic() + 0.3, 2.0 - 1 / 24)
                    sent = daw.perform(script)
                    received = daw.collect(silenced(sent[-1] - 0.01))
                    tick0, spt = fit_ticks(sent[:-1], script[:-1])
                    if tick0 + 48 * spt - sent[-1] >= 0.015:  # Stop left >= 15 ms early
                        break
                    daw.drain()
        finally:
            adapter.close()
        pitches = sorted((d[0] & 0x0F, d[1]) for _, d in note_ons(received, sent[0]))
        assert pitches == [(1, 48), (1, 52), (1, 55), (2, 48), (2, 52)], received

    run_scenario(jack, scenario)


# ---- an xrun costs a bar at most ------------------------------------------------------------

@needs_jack
def test_a_jack_xrun_costs_at_most_a_bar(
    jack: jack_server.JackServer, session: Session, engine: FakeEngine,
) -> None:
    """150 ms without input (7 ticks lost) in bar 1: from bar 2 on the parts are in time again.
    Before the fix the gap read as a paused clock and the rest of the take ran 7 ticks late."""
    tolerance = 3 * jack.period_s + 0.002  # as test_capture_generate_and_stream_in_time

    def scenario() -> None:
        reports = Reports()
        adapter = MidiAdapter(session, api="UNIX_JACK", on_report=reports)
        try:
            with jack_server.daw_client() as daw, staller(jack.name) as stalled:
                daw.connect()
                record(daw, engine, reports, 8.0, MELODY)
                t0 = time.monotonic() + 0.3
                script = song(BPM, t0, 8.5)
                stall_at = t0 + 1.5 * 60 / BPM
                sent = perform_stalling(daw, script, (stall_at, stall_at + 0.150), stalled)
                received = daw.collect(silenced(sent[-1] - 0.01))
                lost = adapter.lost_ticks
        finally:
            adapter.close()
        tick0, spt = fit_ticks(sent, script)
        bar_2 = tick0 + 4 * 24 * spt
        late = [(d[0] & 0x0F, d[1], round((t - planned(d, tick0, spt)) * 1e3, 1))
                for t, d in note_ons(received, bar_2 - 0.01)]
        assert len(late) == 3 + 3, (lost, received)  # the bar's triad, three piano notes
        assert all(abs(ms) <= tolerance * 1e3 for _, _, ms in late), (lost, late)
        assert lost >= 5, lost

    run_scenario(jack, scenario)


def planned(data: tuple[int, ...], tick0: float, spt: float) -> float:
    """When the fake engine's result plays note-on `data` of bar 2 (see MELODY)."""
    beats = {(1, 48): 4.0, (1, 52): 4.0, (1, 55): 4.0, (2, 59): 4.5, (2, 57): 5.0, (2, 55): 6.0}
    return tick0 + beats[data[0] & 0x0F, data[1]] * 24 * spt


# ---- the meter of takes -------------------------------------------------------------------

@needs_jack
def test_takes_are_captured_in_the_meter_serve_or_the_panel_gives(
    jack: jack_server.JackServer, session: Session, engine: FakeEngine,
) -> None:
    """`serve --meter 3/4`: a take of 5 beats is two 3/4 bars (before the fix: 4/4, 8 beats,
    chords every 4 beats). The panel's editor then sets 2/4 for the next take."""
    def scenario() -> None:
        config = ServiceConfig(osc_enabled=False, midi=True, midi_meter="3/4")
        with BridgeServices(session, config) as services, jack_server.daw_client() as daw:
            services.start(strict=True)
            daw.connect()
            daw.perform(song(BPM, time.monotonic() + 0.2, 5.0, MELODY[:4]))
            clip = engine.clips.get(timeout=WAIT)
            assert (clip.ts_num, clip.ts_den, clip.length_beats) == (3, 4, 6.0)
            services.set_midi_meter("2/4")
            daw.perform(song(BPM, time.monotonic() + 0.2, 3.0, MELODY[:3]))
            clip = engine.clips.get(timeout=WAIT)
            assert (clip.ts_num, clip.ts_den, clip.length_beats) == (2, 4, 4.0)
        with pytest.raises(ValueError, match="5/4"):
            services.set_midi_meter("5/4")

    run_scenario(jack, scenario)


# ---- record, then the next pass; the loop mode ------------------------------------------------

def looped_song(bpm: float, t0: float, loop_beats: float, passes: int,
                notes: list[tuple[int, float, float]]) -> list[tuple[float, list[int]]]:
    """A DAW looping a region from beat 0: Start, the clock, `notes` on every pass, a Song
    Position Pointer back to 0 half a tick before each pass, Stop at the end."""
    spt = 60.0 / bpm / 24
    loop_ticks = round(loop_beats * 24)
    script: list[tuple[float, list[int]]] = [(t0 - spt / 2, [0xFA])]
    script += [(t0 + k * spt, [0xF8]) for k in range(passes * loop_ticks)]
    for n in range(passes):
        start = t0 + n * loop_ticks * spt
        if n:
            script.append((start - spt / 2, [0xF2, 0, 0]))
        script += [item for pitch, on, off in notes
                   for item in ((start + on * 24 * spt + 0.001, [0x90, pitch, 100]),
                                (start + off * 24 * spt + 0.001, [0x80, pitch, 0]))]
    script.append((t0 + (passes * loop_ticks - 0.5) * spt, [0xFC]))
    return sorted(script, key=lambda item: item[0])


@needs_jack
@pytest.mark.parametrize("end_on", ["stop", "loop"])
def test_the_first_pass_records_and_the_next_passes_play(
    jack: jack_server.JackServer, session: Session, engine: FakeEngine, end_on: str,
) -> None:
    """A one-bar loop played three times with the melody on every pass. Pass 1 is recorded and
    answers nothing; from then on the parts play, in time with the loop start. In "stop" mode
    every pass is a new take; in "loop" mode the first pass is the take (one loop long) and
    later passes are not recorded."""
    tolerance = 3 * jack.period_s + 0.002

    def scenario() -> None:
        reports = Reports()
        adapter = MidiAdapter(session, api="UNIX_JACK", end_on=end_on, on_report=reports)
        try:
            with jack_server.daw_client() as daw:
                daw.connect()
                t0 = time.monotonic() + 0.3
                script = looped_song(BPM, t0, 4.0, 3, MELODY[:4])
                sent = daw.perform(script)
                received = daw.collect(silenced(sent[-1] - 0.01))
        finally:
            adapter.close()
        clips = []
        with contextlib.suppress(Exception):
            while True:
                clips.append(engine.clips.get_nowait())
        assert [c.length_beats for c in clips] == [4.0] * (1 if end_on == "loop" else 3)
        tick0, spt = fit_ticks(sent, script)
        pass_2, pass_3 = tick0 + 96 * spt, tick0 + 192 * spt
        assert note_ons(received, sent[0]) == note_ons(received, pass_2 - 0.01)  # pass 1: none
        third = note_ons(received, pass_3 - 0.01)
        onsets = {(1, 48): 0.0, (1, 52): 0.0, (1, 55): 0.0, (2, 48): 0.0, (2, 52): 1.0,
                  (2, 55): 2.0, (2, 60): 3.0}
        late = sorted((d[0] & 0x0F, d[1], round((t - pass_3 - onsets[d[0] & 0x0F, d[1]]
                                                   * 24 * spt) * 1e3, 1)) for t, d in third)
        assert [(c, p) for c, p, _ in late] == sorted(onsets), received
        assert all(abs(ms) <= tolerance * 1e3 for _, _, ms in late), late

    run_scenario(jack, scenario)
