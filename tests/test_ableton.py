"""Ableton Live through AbletonOSC: what the real-handler harness (tests/test_ableton_harness.py,
where the adapter's end-to-end tests live) cannot show, against the AbletonOSC test double
(tests/ableton_double.py) over real UDP sockets on 127.0.0.1 with ephemeral ports:

- an audio clip (the harness's stub Live cannot hold one), the master track selected (it cannot
  be selected over OSC), Nil clip names and loop points, an older AbletonOSC without the scale
  handlers (the vendored one has them), a lost add/notes datagram (the double drops it), and
  the tick timing of the double itself;
- the client alone: note chunks, Live's merge rule, timeouts and a taken reply port.

The engine is a fake generate function run by the real `Session`. Tests wait on events and
replies with bounded timeouts, never on sleeps; the double ticks every 5 ms except where a test
checks the real 100 ms tick.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ableton_double import DEFAULT_TICK_S, AbletonOSCDouble, FakeClip, LiveSet
from ableton_harness import Events, fake_generate

from bridge.ableton import BRIDGE_TRACK_NAMES, AbletonAdapter, ClipReadError, LiveApi, LiveNote
from bridge.ableton.errors import AbletonError, AbletonPortError
from bridge.ableton.note_transfer import note_chunks
from bridge.ableton.notes import compare_notes, live_notes
from bridge.ableton.osc_client import Request
from bridge.errors import ErrorCode, ReplyTimeoutError
from bridge.session import Session
from bridge.store import ClipStore
from bridge.types import Clip, ClipNote, GenerateResult, JobContext

TICK_S = 0.005
WAIT_S = 10.0  # only reached when a test is about to fail
CHORDS, PIANO = BRIDGE_TRACK_NAMES["chords"], BRIDGE_TRACK_NAMES["piano"]
ENDINGS = {"done", "failed", "superseded", "cancelled"}
ADD_NOTES = "/live/clip/add/notes"

MELODY = [(60, 0.0, 1.0, 100.0, False), (62, 1.0, 1.0, 96.0, False), (64, 2.0, 2.0, 90.0, False),
          (65, 4.0, 0.5, 80.0, False), (67, 4.5, 1.5, 85.0, False), (127, 6.0, 1.0, 70.0, False)]
MUTED = (69, 7.0, 0.5, 100.0, True)
OUTSIDE_LOOP = (71, 9.0, 1.0, 100.0, False)


def melody_set() -> LiveSet:
    """Melody (MIDI, clip in scene 2), Drums (a user clip in scene 2), a user track whose name
    only resembles the bridge's (with a clip in scene 2), Vocals (audio clip in scene 2)."""
    live = LiveSet(num_scenes=4, tempo=96.0, signature_numerator=3, signature_denominator=4,
                   root_note=9, scale_name="Minor", selected_track=0, selected_scene=1)
    melody = live.add_track("Melody")
    live.tracks[melody].slots[1] = FakeClip([*MELODY, MUTED, OUTSIDE_LOOP], 12.0, name="Verse",
                                            loop_start=0.0, loop_end=8.0)
    live.tracks[melody].slots[0] = FakeClip([(50, 0.0, 4.0, 100.0, False)], 4.0, name="Intro")
    drums = live.add_track("Drums")
    live.tracks[drums].slots[1] = FakeClip([(36, 0.0, 0.25, 120.0, False)], 8.0, name="Beat")
    lookalike = live.add_track("AccoBridge Chords (mine)")
    live.tracks[lookalike].slots[1] = FakeClip([(48, 0.0, 8.0, 60.0, False)], 8.0, name="Mine")
    vocals = live.add_track("Vocals", midi=False)
    live.tracks[vocals].slots[1] = FakeClip([], 8.0, name="Take 1", is_midi=False)
    return live


@dataclass
class Rig:
    double: AbletonOSCDouble
    api: LiveApi
    session: Session
    adapter: AbletonAdapter
    events: Events
    calls: list[str]

    def bridge_track(self, name: str) -> int:
        names = self.double.track_names()
        assert names.count(name) == 1, names
        return names.index(name)


def connect(double: AbletonOSCDouble, **kwargs: Any) -> LiveApi:
    api = LiveApi("127.0.0.1", double.port, listen_port=0, tick_s=TICK_S, **kwargs)
    double.reply_port = api.listen_port
    return api


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    calls: list[str] = []

    def generate(clip: Clip, options: Mapping[str, Any], ctx: JobContext) -> GenerateResult:
        calls.append(ctx.request_id)
        return fake_generate(clip, options, ctx)

    double = AbletonOSCDouble(melody_set(), tick_s=TICK_S)
    api = connect(double)
    session = Session(generate, ClipStore(tmp_path / "sessions"))
    events = Events(WAIT_S)
    adapter = AbletonAdapter(api, session, poll_s=0.02, on_event=events)
    try:
        yield Rig(double, api, session, adapter, events, calls)
    finally:
        adapter.close()
        session.close()
        api.close()
        double.close()


# ---- reading ------------------------------------------------------------------------------


def test_audio_clip_is_a_clear_error(rig: Rig) -> None:
    with rig.double.lock:
        rig.double.live.selected_track = 3
    with pytest.raises(ClipReadError, match="audio clip"):
        rig.adapter.generate_now()
    assert rig.calls == []


def test_master_track_selected_is_a_clear_error(rig: Rig) -> None:
    with rig.double.lock:
        rig.double.live.selected_track = "Master"
    with pytest.raises(ClipReadError, match="master or a return track") as info:
        rig.adapter.fetch_selected_clip()
    assert "is not in list" in str(info.value)  # AbletonOSC's own text is kept


def test_nil_values_read_as_absent(rig: Rig) -> None:
    with rig.double.lock:
        live = rig.double.live
        live.root_note = live.scale_name = None  # Live 12 with no scale: Nil
        live.nil_properties = {"clip.name", "clip.loop_start"}
    clip = rig.adapter.fetch_selected_clip()
    assert clip.key_hint is None
    assert clip.name == "Melody"  # the track's name stands in
    assert clip.length_beats == 12.0  # no loop start: the whole clip
    assert rig.api.clip_lengths(1) == (None, 8.0, None, None)  # Nil for empty slots


def test_older_abletonosc_without_scale_handlers(rig: Rig) -> None:
    with rig.double.lock:
        rig.double.live.scale_api = False  # "Unknown OSC address" for root_note/scale_name
    clip = rig.adapter.fetch_selected_clip()
    assert clip.key_hint is None
    assert rig.api.root_note() is None and rig.api.scale_name() is None
    assert rig.api.tempo() == 96.0  # the errors were accounted for, nothing left behind
    assert rig.api.stats()["stray"] == 0
    errors = rig.double.stats()["errors_sent"]
    assert rig.adapter.fetch_selected_clip().key_hint is None
    assert rig.double.stats()["errors_sent"] == errors  # unknown addresses are not asked again


# ---- writing ------------------------------------------------------------------------------


def test_verify_detects_a_lost_chunk(rig: Rig) -> None:
    rig.double.drop_incoming(ADD_NOTES, after=2)  # chords 1 + piano 1 pass, piano's 2nd lost
    rid = rig.adapter.generate_now({"piano_notes": 700})
    events = rig.events.wait_end(rid)
    errors = [p for k, p in events if k == "error"]
    assert len(errors) == 1 and isinstance(errors[0], tuple)
    code, message = errors[0]
    assert code == ErrorCode.DAW_WRITE_FAILED == 4
    assert PIANO in message and "read back 444" in message
    assert events[-1][1][0] == "failed"  # type: ignore[index]
    assert "result" not in [k for k, _ in events]


def test_note_chunks_respect_both_limits() -> None:
    notes = [LiveNote(60 + i % 12, i * 0.1, 0.1, 100.0) for i in range(1_000)]
    chunks = note_chunks(3, 2, notes)
    assert [len(c) for c in chunks] == [2 + 5 * 256] * 3 + [2 + 5 * 232]
    assert all(c[:2] == (3, 2) for c in chunks)


def test_live_notes_merges_what_live_would_merge() -> None:
    notes = live_notes((ClipNote(60, 0.0, 2.0, 90), ClipNote(60, 0.0, 1.0, 80),
                        ClipNote(60, 1.0, 1.0, 70), ClipNote(64, 0.0, 1.0, 200)))
    assert notes == [LiveNote(60, 0.0, 1.0, 90.0), LiveNote(60, 1.0, 1.0, 70.0),
                     LiveNote(64, 0.0, 1.0, 127.0)]
    assert compare_notes(notes, notes) is None
    assert "missing" in (compare_notes(notes, notes[:2]) or "")


def test_live_error_is_a_clear_error(rig: Rig) -> None:
    with pytest.raises(AbletonError, match="list index out of range") as info:
        rig.api.track_name(99)
    assert "/live/track/get/name" in str(info.value)
    with pytest.raises(AbletonError, match="already has one"):
        rig.api.create_clip(0, 1, 4.0)  # Live refuses: the slot holds the melody


def test_silent_live_times_out() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        api = LiveApi("127.0.0.1", silent.getsockname()[1], listen_port=0, timeout_s=0.2,
                      tick_s=TICK_S)
        try:
            with pytest.raises(ReplyTimeoutError, match="AbletonOSC did not answer") as info:
                api.tempo()
            assert info.value.code == ErrorCode.TIMEOUT
        finally:
            api.close()


def test_reply_port_in_use_is_a_clear_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        with pytest.raises(AbletonPortError, match="only one AbletonOSC client"):
            LiveApi("127.0.0.1", 11000, listen_port=taken.getsockname()[1])


def test_typed_helpers(rig: Rig) -> None:
    api = rig.api
    assert (api.selected_track(), api.selected_scene()) == (0, 1)
    assert (api.tempo(), api.signature()) == (96.0, (3, 4))
    assert (api.root_note(), api.scale_name()) == (9, "Minor")
    assert (api.num_tracks(), api.num_scenes()) == (4, 4)
    assert (api.has_clip(0, 1), api.has_clip(0, 3)) == (True, False)
    assert (api.is_midi_clip(0, 1), api.is_midi_clip(3, 1)) == (True, False)
    assert api.clip_length(0, 1) == 12.0
    info = api.clip_info(0, 1)
    assert (info.looping, info.region_start_beats, info.region_end_beats) == (True, 0.0, 8.0)
    assert [n.pitch for n in api.clip_notes(0, 1)][-1] == 127  # pitch span 0..128
    (default,) = api.ask([Request("/live/clip/get/notes", (0, 1), 2)])  # AbletonOSC's range
    assert default is not None and 127 not in default[0::5]


def test_replies_are_matched_by_their_indices(rig: Rig) -> None:
    replies = rig.api.ask([Request("/live/clip/get/name", (t, s), 2)
                           for t, s in ((1, 1), (0, 0), (0, 1))])
    assert replies == [("Beat",), ("Intro",), ("Verse",)]


def test_the_double_keeps_abletonoscs_tick() -> None:
    """Default 100 ms tick: a burst is handled in one tick; an error ends the tick, and the
    rest of the burst waits for the next one (the client still collects it)."""
    live = melody_set()
    with AbletonOSCDouble(live) as double:
        assert DEFAULT_TICK_S == 0.1
        api = LiveApi("127.0.0.1", double.port, listen_port=0)
        double.reply_port = api.listen_port
        try:
            info = api.song_info(selection=True)
            assert (info.selected_track, info.selected_scene) == (0, 1)
            ticks = {r.tick for r in double.received}
            assert len(ticks) == 1, double.received
            outcome = api.exchange([Request("/live/track/get/name", (99,), 1),
                                    Request("/live/song/get/tempo")])
            assert outcome.errors == ("Error handling OSC message: list index out of range",)
            assert outcome.replies[1] == (96.0,)
            bad, tempo = double.received[-2:]
            assert tempo.tick == bad.tick + 1
        finally:
            api.close()


def test_closing_stops_the_adapter_thread(rig: Rig) -> None:
    rig.adapter.start_live()
    rig.adapter.close()
    rig.adapter.close()  # idempotent
    assert not rig.adapter.live
    assert not any(t.name == "ableton-adapter" and t.is_alive() for t in threading.enumerate()
                   if t is not threading.current_thread())
    with pytest.raises(RuntimeError, match="closed"):
        rig.adapter.generate_now()


