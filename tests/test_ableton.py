"""Ableton Live through AbletonOSC: `bridge.ableton` against the AbletonOSC test double
(tests/ableton_double.py) over real UDP sockets on 127.0.0.1 with ephemeral ports.

The engine is a fake generate function run by the real `Session`. Tests wait on events and
replies with bounded timeouts, never on sleeps; the double ticks every 5 ms except where a test
checks the real 100 ms tick.
"""

from __future__ import annotations

import copy
import queue
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ableton_double import DEFAULT_TICK_S, MAX_PACKET_BYTES, AbletonOSCDouble, FakeClip, LiveSet

from bridge.ableton import BRIDGE_TRACK_NAMES, AbletonAdapter, ClipReadError, LiveApi, LiveNote
from bridge.ableton.errors import AbletonError, AbletonPortError
from bridge.ableton.live_api import MAX_NOTES_PER_MESSAGE, SlotRef, note_chunks
from bridge.ableton.notes import compare_notes, live_notes
from bridge.ableton.osc_client import Request
from bridge.ableton.tracks import WrittenPart
from bridge.errors import ErrorCode, ReplyTimeoutError
from bridge.pedal import sustain_into_durations
from bridge.session import Session
from bridge.store import ClipStore
from bridge.types import Clip, ClipControl, ClipNote, GenerateResult, JobContext

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


def fake_generate(clip: Clip, options: Mapping[str, Any], ctx: JobContext) -> GenerateResult:
    """Chords: each melody note an octave down. Piano: `piano_notes` notes spread evenly."""
    chords = tuple(ClipNote(max(0, n.pitch - 12), n.start_beats, n.duration_beats, 70, 2)
                   for n in clip.notes)
    count = int(options.get("piano_notes", 8))
    step = clip.length_beats / count
    piano = tuple(ClipNote(36 + i % 48, i * step, step / 2, 60 + i % 40, 3) for i in range(count))
    # {"pedal": True}: the sustain pedal down over the first half of the clip
    pedal = (ClipControl(step / 4, 64, 127, 3), ClipControl(clip.length_beats / 2, 64, 0, 3))
    return GenerateResult(ctx.request_id, ctx.source, {"chords": chords, "piano": piano},
                          controls={"piano": pedal} if options.get("pedal") else {})


class Events:
    """Adapter events by request; `wait_end(id)` returns a request's events up to its end."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[str, str, object]] = queue.Queue()
        self.seen: list[tuple[str, str, object]] = []

    def __call__(self, request_id: str, kind: str, payload: object) -> None:
        self._queue.put((request_id, kind, payload))

    def next(self) -> tuple[str, str, object]:
        event = self._queue.get(timeout=WAIT_S)
        self.seen.append(event)
        return event

    def wait_end(self, request_id: str) -> list[tuple[str, object]]:
        while True:
            rid, kind, payload = self.next()
            if rid == request_id and kind == "status" and payload[0] in ENDINGS:  # type: ignore[index]
                return [(k, p) for r, k, p in self.seen if r == request_id]

    def wait_done(self, request_id: str) -> tuple[WrittenPart, ...]:
        events = self.wait_end(request_id)
        ending = events[-1][1]
        assert ending[0] == "done", events  # type: ignore[index]
        written = next(p for k, p in events if k == "written")
        assert isinstance(written, tuple)
        return written


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

    def part_notes(self, name: str, scene: int = 1) -> list[tuple[int, float, float, int]]:
        return [(p, round(s, 4), round(d, 4), round(v))
                for p, s, d, v, _ in self.double.notes(self.bridge_track(name), scene)]


def expected_notes(notes: tuple[ClipNote, ...]) -> list[tuple[int, float, float, int]]:
    return sorted((n.pitch, round(n.start_beats, 4), round(n.duration_beats, 4), n.velocity)
                  for n in notes)


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
    events = Events()
    adapter = AbletonAdapter(api, session, poll_s=0.02, on_event=events)
    try:
        yield Rig(double, api, session, adapter, events, calls)
    finally:
        adapter.close()
        session.close()
        api.close()
        double.close()


def user_tracks(rig: Rig) -> list[Any]:
    with rig.double.lock:
        return copy.deepcopy(rig.double.live.tracks[:4])


# ---- reading ------------------------------------------------------------------------------


def test_reads_the_selected_clip_with_song_hints(rig: Rig) -> None:
    clip = rig.adapter.fetch_selected_clip()
    assert clip.source == "ableton"
    assert clip.name == "Verse"
    assert clip.length_beats == 8.0  # the loop, not the 12-beat clip
    assert (clip.tempo_bpm, clip.ts_num, clip.ts_den) == (96.0, 3, 4)
    assert clip.key_hint == "A Minor"
    # Unmuted notes that start inside the loop, pitch 127 included (span 128), by start time.
    assert [(n.pitch, n.start_beats, n.duration_beats, n.velocity) for n in clip.notes] == \
        [(p, s, d, int(v)) for p, s, d, v, _ in MELODY]


def test_reads_the_region_between_markers_when_not_looping(rig: Rig) -> None:
    with rig.double.lock:
        clip = rig.double.live.tracks[0].slots[1]
        assert clip is not None
        clip.looping, clip.start_marker, clip.end_marker = False, 4.0, 10.0
    read = rig.adapter.fetch_selected_clip()
    assert read.length_beats == 6.0
    assert [(n.pitch, n.start_beats) for n in read.notes] == [(65, 0.0), (67, 0.5), (127, 2.0),
                                                              (71, 5.0)]


def test_empty_slot_is_a_clear_error(rig: Rig) -> None:
    with rig.double.lock:
        rig.double.live.selected_scene = 3
    with pytest.raises(ClipReadError, match="no clip in the selected slot") as info:
        rig.adapter.fetch_selected_clip()
    assert info.value.code == ErrorCode.BAD_INPUT


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


def test_a_bridge_track_is_not_read_as_melody(rig: Rig) -> None:
    rig.events.wait_done(rig.adapter.generate_now())
    with rig.double.lock:
        rig.double.live.selected_track = rig.bridge_track(CHORDS)
    with pytest.raises(ClipReadError, match="select your melody clip"):
        rig.adapter.fetch_selected_clip()


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


def test_writes_parts_into_new_bridge_tracks_in_the_same_scene(rig: Rig) -> None:
    before = user_tracks(rig)
    rid = rig.adapter.generate_now()
    events = rig.events.wait_end(rid)
    kinds = [k for k, _ in events]
    assert kinds[-3:] == ["result", "written", "status"] and kinds.count("result") == 1
    result = next(p for k, p in events if k == "result")
    assert isinstance(result, GenerateResult)
    assert rig.double.track_names()[4:] == [CHORDS, PIANO]  # appended, in part order
    for name, part in ((CHORDS, "chords"), (PIANO, "piano")):
        track = rig.bridge_track(name)
        clip = rig.double.clip(track, 1)
        assert clip is not None and clip.name == name and clip.length == 8.0
        assert rig.part_notes(name) == expected_notes(result.parts[part])
        assert all(rig.double.clip(track, s) is None for s in (0, 2, 3))
    assert user_tracks(rig) == before


def test_the_piano_clip_gets_the_sustain_pedal_in_its_note_lengths(rig: Rig) -> None:
    rid = rig.adapter.generate_now({"pedal": True})
    events = rig.events.wait_end(rid)
    result = next(p for k, p in events if k == "result")
    assert isinstance(result, GenerateResult) and result.controls["piano"]
    sustained = sustain_into_durations(result.parts["piano"], result.controls["piano"])
    assert sustained != result.parts["piano"]  # the pedal made a difference …
    assert rig.part_notes(PIANO) == expected_notes(sustained)  # … and Live got it
    assert rig.part_notes(CHORDS) == expected_notes(result.parts["chords"])


def test_rerun_replaces_only_bridge_owned_clips(rig: Rig) -> None:
    before = user_tracks(rig)
    rig.events.wait_done(rig.adapter.generate_now({"piano_notes": 8}))
    written = rig.events.wait_done(rig.adapter.generate_now({"piano_notes": 5}))
    assert rig.double.track_names()[4:] == [CHORDS, PIANO]  # found again, not duplicated
    assert len(rig.part_notes(PIANO)) == 5  # replaced, not appended
    assert [w.notes for w in written] == [len(MELODY), 5]
    assert user_tracks(rig) == before  # the look-alike track and every user clip untouched


def test_rerun_refinds_bridge_tracks_by_name_after_the_set_changed(rig: Rig) -> None:
    rig.events.wait_done(rig.adapter.generate_now())
    with rig.double.lock:  # the user inserts a track at the top: every index shifts by one
        live = rig.double.live
        live.tracks.insert(0, copy.deepcopy(live.tracks[1]))
        live.tracks[0].name = "New"
        live.selected_track = 1
    written = rig.events.wait_done(rig.adapter.generate_now())
    assert rig.double.track_names() == ["New", "Melody", "Drums", "AccoBridge Chords (mine)",
                                        "Vocals", CHORDS, PIANO]
    assert [w.track for w in written] == [5, 6]


def test_rerun_with_a_new_length_recreates_the_bridge_clip(rig: Rig) -> None:
    rig.events.wait_done(rig.adapter.generate_now())
    with rig.double.lock:
        clip = rig.double.live.tracks[0].slots[1]
        assert clip is not None
        clip.loop_end = 12.0
    rig.events.wait_done(rig.adapter.generate_now())
    bridge_clip = rig.double.clip(rig.bridge_track(PIANO), 1)
    assert bridge_clip is not None and bridge_clip.length == 12.0
    assert len(rig.part_notes(PIANO)) == 8


def test_long_parts_go_in_chunks_under_the_packet_cap(rig: Rig) -> None:
    written = rig.events.wait_done(rig.adapter.generate_now({"piano_notes": 700}))
    piano = next(w for w in written if w.part == "piano")
    assert (piano.notes, piano.messages) == (700, 3)
    packets = rig.double.sent_to(ADD_NOTES)
    assert len(packets) == 4  # chords: 1, piano: 256 + 256 + 188
    assert all(p.size <= MAX_PACKET_BYTES for p in packets)
    assert all(p.n_args <= 2 + 5 * MAX_NOTES_PER_MESSAGE for p in packets)
    assert rig.double.stats()["dropped_oversize_in"] == 0
    # 700 notes do not fit one reply: the verify read asked for them in time windows at once.
    assert len(rig.double.sent_to("/live/clip/get/notes")) >= 3
    assert rig.double.stats()["dropped_oversize_out"] == 0
    assert len(rig.part_notes(PIANO)) == 700


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


# ---- live mode ----------------------------------------------------------------------------


def test_live_mode_regenerates_only_when_the_notes_change(rig: Rig) -> None:
    rig.events.wait_done(rig.adapter.generate_now())
    assert rig.adapter.poll_once() is None
    with rig.double.lock:
        rig.double.live.tempo = 120.0  # not a note change
    assert rig.adapter.poll_once() is None
    assert len(rig.calls) == 1
    with rig.double.lock:
        clip = rig.double.live.tracks[0].slots[1]
        assert clip is not None
        clip.notes.append((72, 7.0, 1.0, 100.0, False))
    rid = rig.adapter.poll_once()
    assert rid is not None
    rig.events.wait_done(rid)
    assert len(rig.calls) == 2
    assert (60, 7.0, 1.0, 70) in rig.part_notes(CHORDS)
    assert rig.adapter.poll_once() is None


def test_live_mode_polls_on_its_own_thread(rig: Rig) -> None:
    first = rig.adapter.start_live()
    rig.events.wait_done(first)
    with rig.double.lock:
        clip = rig.double.live.tracks[0].slots[1]
        assert clip is not None
        clip.notes.remove(MELODY[0])
    while True:  # the poll thread notices within a few polls and generates again
        rid, kind, payload = rig.events.next()
        if rid not in ("", first) and kind == "status" and payload[0] == "done":  # type: ignore[index]
            break
    rig.adapter.stop_live()
    assert not rig.adapter.live
    assert len(rig.part_notes(CHORDS)) == len(MELODY) - 1


def test_live_mode_stops_when_the_watched_clip_is_gone(rig: Rig) -> None:
    rig.events.wait_done(rig.adapter.generate_now())
    with rig.double.lock:
        rig.double.live.tracks[0].slots[1] = None
    with pytest.raises(ClipReadError, match="is gone"):
        rig.adapter.poll_once()


def test_live_mode_reports_a_vanished_clip_and_stops(rig: Rig) -> None:
    rig.events.wait_done(rig.adapter.start_live())
    with rig.double.lock:
        rig.double.live.tracks[0].slots[1] = None
    while True:
        rid, kind, payload = rig.events.next()
        if (rid, kind) == ("", "error"):
            break
    assert payload == (ErrorCode.BAD_INPUT, "the watched clip (track 1, scene 2) is gone")
    assert not rig.adapter.live


def test_a_clip_deleted_between_two_reads_reads_as_gone(rig: Rig,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Live deletes the clip after the slot check but before its notes are read: the adapter
    must say the clip is gone, not pass on the refused follow-up query."""
    rig.events.wait_done(rig.adapter.generate_now())  # watches the clip, polls nothing
    read_notes = rig.api.clip_notes

    def delete_then_read(track: int, scene: int, **kwargs: Any) -> tuple[LiveNote, ...]:
        with rig.double.lock:
            rig.double.live.tracks[track].slots[scene] = None
        return read_notes(track, scene, **kwargs)

    monkeypatch.setattr(rig.api, "clip_notes", delete_then_read)
    with pytest.raises(ClipReadError, match=r"the watched clip \(track 1, scene 2\) is gone"):
        rig.adapter.poll_once()

# ---- the client on its own ----------------------------------------------------------------


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


def test_a_large_user_clip_is_read_in_windows(rig: Rig) -> None:
    notes = [(40 + i % 60, i * 0.0625, 0.0625, 90.0, False) for i in range(1_200)]
    with rig.double.lock:
        rig.double.live.tracks[1].slots[2] = FakeClip(notes, 75.0)
    read = rig.api.clip_notes(1, 2, span_beats=75.0)
    assert [(n.pitch, n.start_beats) for n in read] == sorted((p, s) for p, s, *_ in notes)
    # The first, whole-clip reply was too long: the double refused to send it, as macOS would,
    # and the client read that range again in smaller windows.
    assert rig.double.stats()["dropped_oversize_out"] >= 1
    assert rig.api.stats()["stray"] == 0


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


def test_live_mode_follows_the_selection_to_another_midi_clip(rig: Rig) -> None:
    """Selecting another MIDI clip moves live mode to it (its parts go to its scene); selecting
    an empty slot, an audio clip or the master keeps the clip being watched."""
    rig.events.wait_done(rig.adapter.generate_now())
    for track, scene in ((0, 3), (3, 1), ("Master", 1)):  # empty slot, audio clip, master
        with rig.double.lock:
            rig.double.live.selected_track, rig.double.live.selected_scene = track, scene
        assert rig.adapter.poll_once() is None
        assert rig.adapter.watched == SlotRef(0, 1)
    with rig.double.lock:
        rig.double.live.selected_track, rig.double.live.selected_scene = 0, 0  # "Intro"
    rid = rig.adapter.poll_once()
    assert rid is not None
    rig.events.wait_done(rid)
    assert rig.adapter.watched == SlotRef(0, 0)
    assert rig.part_notes(CHORDS, scene=0) == [(38, 0.0, 4.0, 70)]  # Intro's note, octave down
    assert rig.adapter.poll_once() is None  # nothing changed since


def test_following_the_selection_can_be_turned_off(rig: Rig) -> None:
    still = AbletonAdapter(rig.api, rig.session, poll_s=0.02, on_event=rig.events,
                           follow_selection=False)
    try:
        rig.events.wait_done(still.generate_now())
        with rig.double.lock:
            rig.double.live.selected_track, rig.double.live.selected_scene = 0, 0
        assert still.poll_once() is None
        assert still.watched == SlotRef(0, 1)
    finally:
        still.close()
