"""The Ableton adapter end to end against the real AbletonOSC handlers: the shared harness runs
AbletonOSC (ideoforms/AbletonOSC 0ca6821) over a stand-in for Live's Python API in its own
process, on private UDP ports on 127.0.0.1, ticking every 100 ms as Live does
(tests/ableton_harness.py). The user's actions in "Live" (selecting, editing, deleting) go to
it as AbletonOSC messages, confirmed by a query in the same burst. Skipped only where
../shared is not there.

The engine is a fake generate function (tests/ableton_harness.py) run by the real `Session`.
What the harness cannot do stays on the test double (tests/test_ableton.py says which).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ableton_harness import HARNESS_MISSING, Events, Harness, fake_generate, seed_file

from bridge.ableton import BRIDGE_TRACK_NAMES, AbletonAdapter, ClipReadError, LiveApi
from bridge.ableton.live_values import SlotRef
from bridge.ableton.notes import compare_notes, live_notes
from bridge.ableton.osc_client import Request
from bridge.osc import WireValue
from bridge.pedal import sustain_into_durations
from bridge.session import Session
from bridge.store import ClipStore
from bridge.types import Clip, ClipControl, ClipNote, GenerateResult, JobContext

pytestmark = pytest.mark.skipif(HARNESS_MISSING is not None, reason=str(HARNESS_MISSING))

CHORDS, PIANO = BRIDGE_TRACK_NAMES["chords"], BRIDGE_TRACK_NAMES["piano"]
MELODY = [(60, 0.0, 1.0, 100), (62, 1.0, 1.0, 96), (64, 2.0, 2.0, 90), (65, 4.0, 0.5, 80),
          (67, 4.5, 1.5, 85), (127, 6.0, 1.0, 70)]
MUTED = (69, 7.0, 0.5, 100, True)
OUTSIDE_LOOP = (71, 9.0, 1.0, 100)
VERSE, INTRO, BEAT = SlotRef(0, 1), SlotRef(0, 0), SlotRef(1, 1)


@dataclass
class Rig:
    harness: Harness
    api: LiveApi
    session: Session
    adapter: AbletonAdapter
    events: Events
    calls: list[str]

    def user(self, *requests: Request) -> None:
        """The user acts in Live: `requests` (writes), confirmed by a query behind them."""
        self.api.ask([*requests, Request("/live/song/get/tempo")])

    def select(self, slot: SlotRef) -> None:
        self.user(Request("/live/view/set/selected_track", (slot.track,), reply=False),
                  Request("/live/view/set/selected_scene", (slot.scene,), reply=False))

    def edit(self, slot: SlotRef, address: str, *args: WireValue) -> None:
        self.user(Request(address, (slot.track, slot.scene, *args), reply=False))

    def bridge_track(self, name: str) -> int:
        names = self.api.track_names()
        assert names.count(name) == 1, names
        return names.index(name)

    def part_notes(self, name: str, scene: int = 1) -> list[tuple[int, float, float, int]]:
        return [(n.pitch, round(n.start_beats, 4), round(n.duration_beats, 4), round(n.velocity))
                for n in self.api.clip_notes(self.bridge_track(name), scene, span_beats=16.0)]

    def user_clips(self) -> list[tuple[str, tuple[float | None, ...]]]:
        """Every user track's name and clip lengths, and the notes of its clips."""
        names = self.api.track_names()
        found: list[Any] = []
        for track, name in enumerate(names):
            if name in BRIDGE_TRACK_NAMES.values():
                continue
            lengths = self.api.clip_lengths(track)
            notes = [self.api.clip_notes(track, s) for s, n in enumerate(lengths) if n]
            found.append((name, lengths, notes))
        return found


def expected_notes(notes: Sequence[ClipNote]) -> list[tuple[int, float, float, int]]:
    return sorted((n.pitch, round(n.start_beats, 4), round(n.duration_beats, 4), n.velocity)
                  for n in notes)


def melody_set(folder: Path) -> list[str]:
    """Track 1: "Intro" (scene 1) and "Verse" (scene 2, 12 beats, a muted note, one note past
    its 8-beat loop; selected); track 2: "Beat" (scene 2); tracks 3-4 MIDI, empty; track 5
    audio. 96 BPM, 3/4, A Minor."""
    verse = seed_file(folder, "Verse", [*MELODY, MUTED, OUTSIDE_LOOP], 12.0)
    intro = seed_file(folder, "Intro", [(50, 0.0, 4.0, 100)], 4.0)
    beat = seed_file(folder, "Beat", [(36, 0.0, 0.25, 120)], 8.0)
    return ["--tracks", "4", "--audio-tracks", "1", "--scenes", "4", "--tempo", "96",
            "--signature", "3/4", "--root-note", "9", "--scale-name", "Minor",
            "--seed-clip", "0", "0", str(intro), "--seed-clip", "1", "1", str(beat),
            "--seed-clip", "0", "1", str(verse)]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    with make_rig(tmp_path, melody_set(tmp_path)) as made:
        made.edit(VERSE, "/live/clip/set/loop_end", 8.0)  # the Verse's loop: 0..8 of 12 beats
        yield made


@contextmanager
def make_rig(tmp_path: Path, args: Sequence[str], *, start: bool = True, **adapter: Any
             ) -> Iterator[Rig]:
    calls: list[str] = []

    def generate(clip: Clip, options: Any, ctx: JobContext) -> GenerateResult:
        calls.append(ctx.request_id)
        return fake_generate(clip, options, ctx)

    harness = Harness(args)
    if start:
        harness.start()
    api = LiveApi("127.0.0.1", harness.port, listen_port=harness.reply_port,
                  timeout_s=adapter.pop("timeout_s", 2.0))
    session = Session(generate, ClipStore(tmp_path / "sessions"))
    events = Events()
    live = AbletonAdapter(api, session, on_event=events, **adapter)
    try:
        yield Rig(harness, api, session, live, events, calls)
    finally:
        live.close()
        session.close()
        api.close()
        harness.close()


def waiting(rig: Rig, text: str) -> str:
    """The next "waiting for …" status whose message holds `text`."""
    _, _, payload = rig.events.wait_for(lambda rid, kind, p: rid == "" and kind == "status"
                                        and p[0] == "waiting" and text in p[2])
    return str(payload[2])


def next_done(rig: Rig, after: set[str]) -> str:
    """The id of the next request, not in `after`, whose parts are in Live."""
    rid, _, _ = rig.events.wait_for(lambda rid, kind, p: rid not in after | {""}
                                    and kind == "status" and p[0] == "done")
    return rid


# ---- reading ------------------------------------------------------------------------------


def test_reads_the_selected_clip_with_song_hints(rig: Rig) -> None:
    clip = rig.adapter.fetch_selected_clip()
    assert (clip.source, clip.name, clip.length_beats) == ("ableton", "Verse", 8.0)  # the loop
    assert (clip.tempo_bpm, clip.ts_num, clip.ts_den, clip.key_hint) == (96.0, 3, 4, "A Minor")
    # Unmuted notes that start inside the loop, pitch 127 included, by start time.
    assert [(n.pitch, n.start_beats, n.duration_beats, n.velocity) for n in clip.notes] == MELODY
    assert rig.harness.errors() == []


def test_reads_the_region_between_markers_when_not_looping(rig: Rig) -> None:
    rig.edit(VERSE, "/live/clip/set/looping", False)
    rig.edit(VERSE, "/live/clip/set/end_marker", 10.0)
    rig.edit(VERSE, "/live/clip/set/start_marker", 4.0)
    read = rig.adapter.fetch_selected_clip()
    assert read.length_beats == 6.0
    assert [(n.pitch, n.start_beats) for n in read.notes] == [(65, 0.0), (67, 0.5), (127, 2.0),
                                                              (71, 5.0)]


def test_empty_slot_and_bridge_tracks_are_clear_errors(rig: Rig) -> None:
    rig.select(SlotRef(0, 3))
    with pytest.raises(ClipReadError, match="no clip in the selected slot"):
        rig.adapter.fetch_selected_clip()
    rig.select(VERSE)
    rig.events.wait_done(rig.adapter.generate_now())
    rig.select(SlotRef(rig.bridge_track(CHORDS), 1))
    with pytest.raises(ClipReadError, match="select your melody clip"):
        rig.adapter.fetch_selected_clip()
    assert rig.calls == ["ableton-1"]


def test_a_large_user_clip_is_read_in_windows_from_the_start(tmp_path: Path) -> None:
    """macOS's 9,216-byte datagram limit (--max-datagram): a 1,200-note clip is asked for in
    windows whose replies fit, so AbletonOSC never fails to send one (it used to fail on the
    whole-clip query first: a /live/error with a traceback on every read)."""
    notes = [(40 + i % 60, i * 0.0625, 0.0625, 90) for i in range(1_200)]
    seed = seed_file(tmp_path, "Dense", notes, 76.0)
    with make_rig(tmp_path, ["--tracks", "2", "--max-datagram", "9216",
                             "--seed-clip", "1", "2", str(seed)]) as rig:
        read = rig.api.clip_notes(1, 2, span_beats=76.0)
        assert [(n.pitch, n.start_beats) for n in read] == sorted((p, s) for p, s, *_ in notes)
        assert rig.adapter.start_live() is not None  # the watched clip: read every poll …
        for _ in range(3):
            assert rig.adapter.poll_once() is None
        assert rig.harness.errors() == []  # … never a reply too long
        assert rig.api.stats()["stray"] == 0


# ---- writing ------------------------------------------------------------------------------


def test_writes_parts_into_new_bridge_tracks_in_the_same_scene(rig: Rig) -> None:
    before = rig.user_clips()
    rid = rig.adapter.generate_now()
    events = rig.events.wait_end(rid)
    kinds = [k for k, _ in events]
    assert kinds[-3:] == ["result", "written", "status"] and kinds.count("result") == 1
    result = next(p for k, p in events if k == "result")
    assert rig.api.track_names()[5:] == [CHORDS, PIANO]  # appended, in part order
    for name, part in ((CHORDS, "chords"), (PIANO, "piano")):
        track = rig.bridge_track(name)
        assert rig.api.clip_lengths(track) == (None, 8.0, None, None)
        assert rig.api.ask([Request("/live/clip/get/name", (track, 1), 2)]) == [(name,)]
        assert rig.part_notes(name) == expected_notes(result.parts[part])
    assert rig.user_clips() == before
    assert rig.harness.errors() == []


def test_the_users_selection_is_given_back_after_creating_the_bridge_tracks(rig: Rig) -> None:
    """Live selects a track it creates: the selection used to stay on "AccoBridge Piano"."""
    rig.events.wait_done(rig.adapter.generate_now())
    assert rig.api.track_names()[5:] == [CHORDS, PIANO]
    assert rig.api.selection() == VERSE


def test_the_piano_clip_gets_the_sustain_pedal_in_its_note_lengths(rig: Rig) -> None:
    rid = rig.adapter.generate_now({"pedal": True})
    events = rig.events.wait_end(rid)
    result = next(p for k, p in events if k == "result")
    sustained = sustain_into_durations(result.parts["piano"], result.controls["piano"])
    assert sustained != result.parts["piano"]  # the pedal made a difference …
    assert rig.part_notes(PIANO) == expected_notes(sustained)  # … and Live got it
    assert rig.part_notes(CHORDS) == expected_notes(result.parts["chords"])


def test_rerun_replaces_only_bridge_owned_clips(rig: Rig) -> None:
    before = rig.user_clips()
    rig.events.wait_done(rig.adapter.generate_now({"piano_notes": 8}))
    written = rig.events.wait_done(rig.adapter.generate_now({"piano_notes": 5}))
    assert rig.api.track_names()[5:] == [CHORDS, PIANO]  # found again, not duplicated
    assert len(rig.part_notes(PIANO)) == 5  # replaced, not appended
    assert [w.notes for w in written] == [len(MELODY), 5]
    assert rig.user_clips() == before


def test_rerun_refinds_bridge_tracks_by_name_after_the_set_changed(rig: Rig) -> None:
    rig.events.wait_done(rig.adapter.generate_now())
    # the user inserts a track at the top: every index shifts by one
    rig.user(Request("/live/song/create_midi_track", (0,), reply=False))
    rig.select(SlotRef(1, 1))
    written = rig.events.wait_done(rig.adapter.generate_now())
    assert rig.api.track_names()[6:] == [CHORDS, PIANO]
    assert [w.track for w in written] == [6, 7]


def test_rerun_with_a_new_length_recreates_the_bridge_clip(rig: Rig) -> None:
    rig.events.wait_done(rig.adapter.generate_now())
    rig.edit(VERSE, "/live/clip/set/loop_end", 12.0)
    rig.events.wait_done(rig.adapter.generate_now())
    assert rig.api.clip_lengths(rig.bridge_track(PIANO))[1] == 12.0
    assert len(rig.part_notes(PIANO)) == 8


def test_long_parts_go_in_chunks_and_are_read_back_under_the_packet_cap(tmp_path: Path) -> None:
    with make_rig(tmp_path, [*melody_set(tmp_path), "--max-datagram", "9216"]) as rig:
        rig.edit(VERSE, "/live/clip/set/loop_end", 8.0)
        written = rig.events.wait_done(rig.adapter.generate_now({"piano_notes": 700}))
        piano = next(w for w in written if w.part == "piano")
        assert (piano.notes, piano.messages) == (700, 3)  # 256 + 256 + 188
        assert rig.harness.errors() == []  # every datagram, both ways, fitted
        assert len(rig.api.clip_notes(rig.bridge_track(PIANO), 1, expected=700)) == 700


# ---- live mode ----------------------------------------------------------------------------


def test_live_mode_regenerates_only_when_the_notes_change(rig: Rig) -> None:
    rig.events.wait_done(rig.adapter.generate_now())
    assert rig.adapter.poll_once() is None
    rig.user(Request("/live/song/set/tempo", (120.0,), reply=False))  # not a change
    assert rig.adapter.poll_once() is None
    assert len(rig.calls) == 1
    rig.edit(VERSE, "/live/clip/add/notes", 72, 7.0, 1.0, 100, False)
    rid = rig.adapter.poll_once()
    assert rid is not None
    rig.events.wait_done(rid)
    assert len(rig.calls) == 2
    assert (60, 7.0, 1.0, 70) in rig.part_notes(CHORDS)
    assert rig.adapter.poll_once() is None


def test_live_mode_regenerates_when_only_the_loop_changes(rig: Rig) -> None:
    """Moving the loop end (no note changed) changes what plays: generate again."""
    rig.events.wait_done(rig.adapter.generate_now())
    rig.edit(VERSE, "/live/clip/set/loop_end", 10.0)
    rid = rig.adapter.poll_once()
    assert rid is not None
    rig.events.wait_done(rid)
    assert (59, 9.0, 1.0, 70) in rig.part_notes(CHORDS)  # the note at 9 now plays
    assert rig.api.clip_lengths(rig.bridge_track(CHORDS))[1] == 10.0
    rig.edit(VERSE, "/live/clip/set/loop_start", 2.0)  # the start alone, too
    assert rig.adapter.poll_once() is not None


def test_an_edit_reaches_live_in_three_bursts(rig: Rig) -> None:
    """Edit → parts in Live: one poll burst sees the change (and carries the clip), one checks
    the bridge tracks, one writes both parts and reads them back. (It took 22 before: poll
    reads, a whole re-read, per-part lookups, writes and read-backs, a tick each.)"""
    rig.events.wait_done(rig.adapter.generate_now())
    bursts: list[str] = []
    exchange = rig.api.exchange

    def counted(requests: Sequence[Request], timeout_s: float | None = None) -> Any:
        bursts.append(requests[0].address)
        return exchange(requests, timeout_s)

    rig.api.exchange = counted  # type: ignore[method-assign]
    rig.edit(VERSE, "/live/clip/add/notes", 72, 7.0, 1.0, 100, False)
    bursts.clear()
    rid = rig.adapter.poll_once()
    assert rid is not None
    rig.events.wait_done(rid)
    assert len(bursts) == 3, bursts


def test_live_mode_polls_on_its_own_thread(rig: Rig) -> None:
    first = rig.adapter.start_live()
    assert first is not None
    rig.events.wait_done(first)
    rig.edit(VERSE, "/live/clip/remove/notes", 60, 1, 0.0, 1.0)  # the first note
    next_done(rig, {first})
    rig.adapter.stop_live()
    assert not rig.adapter.live
    assert len(rig.part_notes(CHORDS)) == len(MELODY) - 1


def test_live_mode_follows_the_selection_to_another_midi_clip(rig: Rig) -> None:
    """Selecting another MIDI clip moves live mode to it (its parts go to its scene); selecting
    an empty slot, an audio track or a bridge track keeps the clip being watched."""
    rig.events.wait_done(rig.adapter.generate_now())
    for slot in (SlotRef(0, 3), SlotRef(4, 1), SlotRef(rig.bridge_track(CHORDS), 1)):
        rig.select(slot)
        assert rig.adapter.poll_once() is None
        assert rig.adapter.watched == VERSE
    rig.select(INTRO)
    rid = rig.adapter.poll_once()
    assert rid is not None
    rig.events.wait_done(rid)
    assert rig.adapter.watched == INTRO
    assert rig.part_notes(CHORDS, scene=0) == [(38, 0.0, 4.0, 70)]  # Intro's note, octave down
    assert rig.adapter.poll_once() is None


def test_following_the_selection_can_be_turned_off(rig: Rig) -> None:
    still = AbletonAdapter(rig.api, rig.session, on_event=rig.events, follow_selection=False)
    try:
        rig.events.wait_done(still.generate_now())
        rig.select(INTRO)
        assert still.poll_once() is None
        assert still.watched == VERSE
    finally:
        still.close()


def test_after_the_watched_clip_is_deleted_live_mode_follows_the_next_selected_clip(
        rig: Rig) -> None:
    """The watched clip deleted: live mode waits for a selection (it used to stop for good)
    and picks up the next MIDI clip the user selects."""
    first = rig.adapter.start_live()
    assert first is not None
    rig.events.wait_done(first)
    rig.user(Request("/live/clip_slot/delete_clip", (0, 1), reply=False))
    assert "(the watched clip, track 1, scene 2, was deleted)" in waiting(rig, "a MIDI clip")
    assert rig.adapter.live and rig.adapter.watched is None
    rig.select(BEAT)
    rid = next_done(rig, {first})
    assert rig.adapter.watched == BEAT and rig.adapter.waiting_for is None
    assert rig.part_notes(CHORDS) == [(24, 0.0, 0.25, 70)]  # the Beat's note, octave down
    assert rid != first


def test_a_clip_deleted_between_the_slot_check_and_its_queries_reads_as_gone(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    rig.events.wait_done(rig.adapter.generate_now())  # watches the clip, polls nothing
    burst = rig.api.burst

    def delete_then_burst(*args: Any, **kwargs: Any) -> Any:
        rig.user(Request("/live/clip_slot/delete_clip", (0, 1), reply=False))
        return burst(*args, **kwargs)

    monkeypatch.setattr(rig.api, "burst", delete_then_burst)
    assert rig.adapter.poll_once() is None
    assert rig.adapter.watched is None
    assert "(the watched clip, track 1, scene 2, was deleted)" in (rig.adapter.waiting_for or "")


def test_live_mode_waits_for_a_clip_when_an_empty_slot_is_selected(rig: Rig) -> None:
    """`serve --ableton` with an empty slot selected: live mode says it waits for a MIDI clip
    and picks one up once the user makes it (it used to give up at start)."""
    rig.select(SlotRef(2, 2))
    assert rig.adapter.start_live() is None
    assert "no clip in the selected slot (track 3, scene 3" in (rig.adapter.waiting_for or "")
    rig.user(Request("/live/clip_slot/create_clip", (2, 2, 4.0), reply=False))
    waiting(rig, "notes in the selected clip (track 3, scene 3)")  # empty yet: nothing to do
    rig.edit(SlotRef(2, 2), "/live/clip/add/notes", 67, 0.0, 2.0, 100, False)
    next_done(rig, set())
    assert rig.adapter.watched == SlotRef(2, 2)
    assert rig.part_notes(CHORDS, scene=2) == [(55, 0.0, 2.0, 70)]


def test_live_mode_waits_for_live_to_start(tmp_path: Path) -> None:
    """`serve --ableton` before Live is up: live mode waits for Live (and says so), then picks
    up the selected clip once AbletonOSC answers."""
    with make_rig(tmp_path, melody_set(tmp_path), start=False, timeout_s=0.3) as rig:
        assert rig.adapter.start_live() is None
        assert "Live: AbletonOSC does not answer" in (rig.adapter.waiting_for or "")
        waiting(rig, "Live: AbletonOSC does not answer on 127.0.0.1:")
        rig.harness.start()
        next_done(rig, set())
        assert rig.adapter.watched == VERSE and rig.adapter.waiting_for is None
        assert len(rig.part_notes(CHORDS)) == 7  # the whole 12-beat clip: no loop set yet


def test_each_job_logs_one_short_line(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bridge.ableton")
    rid = rig.adapter.start_live()
    assert rid is not None
    rig.events.wait_done(rid)
    rig.edit(VERSE, "/live/clip/add/notes", 72, 7.0, 1.0, 100, False)
    second = next_done(rig, {rid})
    rig.adapter.stop_live()
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("bridge.ableton")]
    for request_id in (rid, second):
        mine = [line for line in lines if request_id + ":" in line]
        assert len(mine) == 1, lines
        assert "wrote chords (" in mine[0] and len(mine[0]) < 200


def test_live_gets_the_piano_notes_held_by_the_pedal(tmp_path: Path) -> None:
    def generate(clip: Clip, options: Any, ctx: JobContext) -> GenerateResult:
        """Piano: short notes on each beat, two of one pitch; the pedal down 0.125..3."""
        piano = tuple(ClipNote(pitch, float(beat), 0.25, 70, 3)
                      for beat, pitch in enumerate((48, 55, 48, 64, 67, 72, 76, 79)))
        pedal = (ClipControl(0.125, 64, 127, 3), ClipControl(3.0, 64, 0, 3))
        return GenerateResult(ctx.request_id, ctx.source, {"piano": piano},
                              controls={"piano": pedal})

    seed = seed_file(tmp_path, "Melody", [(60 + i, float(i), 1.0, 100) for i in range(8)], 8.0)
    with Harness(["--tracks", "2", "--scenes", "2", "--seed-clip", "0", "0", str(seed)]) as h:
        events = Events()
        api = LiveApi("127.0.0.1", h.port, listen_port=h.reply_port)
        session = Session(generate, ClipStore(tmp_path / "sessions"))
        adapter = AbletonAdapter(api, session, on_event=events)
        try:
            rid = adapter.generate_now()
            result = next(p for k, p in events.wait_end(rid) if k == "result")
            sustained = sustain_into_durations(result.parts["piano"], result.controls["piano"])
            # 48@0 is down at the press, 55@1, 48@2 start under it; 48@0 stops at the next 48
            assert [n.duration_beats for n in sustained] == [2.0, 2.0, 1.0, 0.25, 0.25, 0.25,
                                                             0.25, 0.25]
            track = api.track_names().index(PIANO)
            back = api.clip_notes(track, 0, span_beats=8.0, expected=len(sustained))
            assert compare_notes(live_notes(sustained), back) is None
        finally:
            adapter.close()
            session.close()
            api.close()
