"""engine.midi_io: melody reading (track choice, polyphony, meters, tempo, limits) and atomic
song writing. Every file is built here with mido; no data files are needed."""

from __future__ import annotations

import os
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path

import mido
import pytest

from engine.errors import BadInputError, MidiFileError, UnsupportedMeterError
from engine.melody_source import MelodyWarning
from engine.midi_io import read_melody, write_song
from engine.types import Key, Meter, Note

TPB = 480
SCALE = (60, 62, 64, 65, 67, 69, 71, 72)

# (pitch, start_tick, duration_tick, channel)
NoteSpec = tuple[int, int, int, int]


def line(pitches: Sequence[int], length: int = TPB, channel: int = 0) -> list[NoteSpec]:
    """One note after another, each `length` ticks."""
    return [(p, i * length, length, channel) for i, p in enumerate(pitches)]


def chords(roots: Sequence[int], length: int = TPB * 4, channel: int = 0) -> list[NoteSpec]:
    """Block triads: a clearly polyphonic accompaniment track."""
    return [
        (root + offset, i * length, length, channel)
        for i, root in enumerate(roots)
        for offset in (0, 4, 7)
    ]


def midi_track(
    name: str | None, notes: Sequence[NoteSpec], metas: Sequence[mido.MetaMessage] = ()
) -> mido.MidiTrack:
    # a meta's `time` is read as its absolute tick here
    events: list[tuple[int, int, mido.Message | mido.MetaMessage]] = [
        (m.time, 0, m) for m in metas
    ]
    for pitch, start, length, channel in notes:
        events.append((start, 2, mido.Message("note_on", note=pitch, velocity=80,
                                              channel=channel)))
        events.append((start + length, 1, mido.Message("note_off", note=pitch, velocity=0,
                                                       channel=channel)))
    track = mido.MidiTrack()
    if name is not None:
        track.append(mido.MetaMessage("track_name", name=name))
    now = 0
    for tick, _, message in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(message.copy(time=tick - now))
        now = tick
    return track


def save(
    path: Path,
    tracks: Sequence[tuple[str | None, Sequence[NoteSpec]]],
    metas: Sequence[mido.MetaMessage] = (),
    file_type: int = 1,
) -> Path:
    """A MIDI file: `metas` go in a note-less conductor track (type 1) or the only track."""
    midi = mido.MidiFile(type=file_type, ticks_per_beat=TPB)
    if file_type == 0:
        merged = [n for _, notes in tracks for n in notes]
        midi.tracks.append(midi_track(tracks[0][0], merged, metas))
    else:
        midi.tracks.append(midi_track("Conductor", [], metas))
        for name, notes in tracks:
            midi.tracks.append(midi_track(name, notes))
    midi.save(path)
    return path


def time_signature(n: int, d: int, tick: int = 0) -> mido.MetaMessage:
    return mido.MetaMessage("time_signature", numerator=n, denominator=d, time=tick)


# ------------------------------------------------------------------------------ track choice


def test_track_named_like_a_melody_wins(tmp_path: Path) -> None:
    path = save(tmp_path / "song.mid", [
        ("Strings", line([84, 86, 88, 89, 91])),  # higher and just as monophonic
        ("Lead Vocal", line(SCALE)),
    ])
    melody = read_melody(path)
    assert melody.track_name == "Lead Vocal"
    assert [n.pitch for n in melody.notes] == list(SCALE)


def test_most_monophonic_track_then_highest_wins(tmp_path: Path) -> None:
    path = save(tmp_path / "song.mid", [
        ("Piano", chords([48, 53, 55, 48])),
        ("Bass", line([36, 38, 40, 41, 43])),
        ("Flute", line([72, 74, 76, 77, 79])),
    ])
    assert read_melody(path).track_name == "Flute"


def test_drum_channel_is_ignored(tmp_path: Path) -> None:
    path = save(tmp_path / "song.mid", [
        ("Drums", line([90, 91, 92, 93, 94], channel=9)),
        ("Synth", line(SCALE)),
    ])
    assert read_melody(path).track_name == "Synth"


@pytest.mark.parametrize("wanted", ["bass", "BASS", "Bas", "2", 2])
def test_track_override_by_name_or_index(tmp_path: Path, wanted: str | int) -> None:
    path = save(tmp_path / "song.mid", [
        ("Melody", line(SCALE)),
        ("Bass", line([36, 38, 40, 41, 43])),
        ("Piano 2", line([48, 50, 52, 53])),  # "2" is track index 2, not this name
    ])
    melody = read_melody(path, track=wanted)
    assert melody.track_name == "Bass"
    assert melody.notes[0].pitch == 36


def test_unknown_track_lists_the_tracks(tmp_path: Path) -> None:
    path = save(tmp_path / "song.mid", [("Melody", line(SCALE)), ("Bass", line([36] * 5))])
    with pytest.raises(MidiFileError, match="no track 'Guitar'") as info:
        read_melody(path, track="Guitar")
    assert "'Melody'" in str(info.value) and "'Bass'" in str(info.value)
    assert "\n" not in str(info.value)


def test_polyphonic_track_is_reduced_to_the_top_line_with_a_warning(tmp_path: Path) -> None:
    # A tune in thirds: upper voice is the melody, each beat also has a lower third.
    upper = line([64, 65, 67, 69, 67, 65])
    lower = [(p - 4, start, length, ch) for p, start, length, ch in upper]
    path = save(tmp_path / "song.mid", [("Melody", upper + lower)])
    with pytest.warns(MelodyWarning, match="dropped 6 of 12 notes"):
        melody = read_melody(path)
    assert [n.pitch for n in melody.notes] == [64, 65, 67, 69, 67, 65]


def test_overlap_cut_without_dropping_and_legato_kept(tmp_path: Path) -> None:
    # A long high note under which a short low note starts is dropped; a slight legato overlap
    # onto a lower note only shortens the earlier note.
    notes = [
        (72, 0, TPB * 2, 0), (60, TPB, TPB // 2, 0),  # 60 lies under the held 72
        (71, TPB * 2, TPB + 30, 0), (67, TPB * 3, TPB, 0),  # 30-tick legato overlap
        (65, TPB * 4, TPB, 0), (64, TPB * 5, TPB, 0),
    ]
    path = save(tmp_path / "song.mid", [("Melody", notes)])
    with pytest.warns(MelodyWarning, match="dropped 1 of 6"):
        melody = read_melody(path)
    assert [n.pitch for n in melody.notes] == [72, 71, 67, 65, 64]
    assert melody.notes[1].duration_tick == TPB  # cut where 67 starts
    assert all(
        a.end_tick <= b.start_tick for a, b in zip(melody.notes, melody.notes[1:], strict=False)
    )


def test_monophonic_input_gives_no_warning(tmp_path: Path) -> None:
    path = save(tmp_path / "song.mid", [("Melody", line(SCALE))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_melody(path)


def test_type0_file_is_split_by_channel(tmp_path: Path) -> None:
    path = save(tmp_path / "song.mid", [
        ("All", chords([48, 53, 55, 48], channel=1)),
        ("All", line(SCALE, channel=0)),
    ], file_type=0)
    melody = read_melody(path)
    assert [n.pitch for n in melody.notes] == list(SCALE)
    assert "channel 1" in melody.track_name
    with pytest.warns(MelodyWarning):
        chord_line = read_melody(path, track="channel 2")
    assert [n.pitch for n in chord_line.notes] == [55, 60, 62, 55]  # top of each triad


def test_note_pairing_rules(tmp_path: Path) -> None:
    """velocity-0 note_on ends a note; a repeated note_on closes the open one; an unclosed note
    ends at the track end; a zero-length note keeps one tick."""
    track = mido.MidiTrack([
        mido.Message("note_on", note=60, velocity=80, time=0),
        mido.Message("note_on", note=60, velocity=0, time=480),
        mido.Message("note_on", note=62, velocity=80, time=0),
        mido.Message("note_on", note=62, velocity=80, time=480),  # re-strike closes the first
        mido.Message("note_off", note=62, velocity=0, time=480),
        mido.Message("note_on", note=64, velocity=80, time=0),
        mido.Message("note_off", note=64, velocity=0, time=0),  # zero length
        mido.Message("note_on", note=65, velocity=80, time=480),  # never closed
        mido.MetaMessage("end_of_track", time=960),
    ])
    midi = mido.MidiFile(type=1, ticks_per_beat=TPB)
    midi.tracks.append(track)
    midi.save(tmp_path / "pairs.mid")
    notes = read_melody(tmp_path / "pairs.mid").notes
    assert [(n.pitch, n.start_tick, n.duration_tick) for n in notes] == [
        (60, 0, 480), (62, 480, 480), (62, 960, 480), (64, 1440, 1), (65, 1920, 960),
    ]


# ------------------------------------------------------------------------------- meter, tempo


@pytest.mark.parametrize("meter", [(4, 4), (2, 4), (2, 2), (3, 4), (6, 8), (9, 8), (12, 8)])
def test_supported_meters_are_read(tmp_path: Path, meter: tuple[int, int]) -> None:
    path = save(tmp_path / "m.mid", [("Melody", line(SCALE))], [time_signature(*meter)])
    melody = read_melody(path)
    assert (melody.meter.numerator, melody.meter.denominator) == meter


def test_missing_time_signature_means_four_four(tmp_path: Path) -> None:
    path = save(tmp_path / "m.mid", [("Melody", line(SCALE))])
    assert read_melody(path).meter.name == "4/4"


@pytest.mark.parametrize("meter", [(5, 4), (7, 8), (3, 2), (6, 4)])
def test_unsupported_meters_list_the_supported_ones(tmp_path: Path, meter: tuple[int, int]) -> None:
    path = save(tmp_path / "m.mid", [("Melody", line(SCALE))], [time_signature(*meter)])
    with pytest.raises(UnsupportedMeterError, match=f"{meter[0]}/{meter[1]}") as info:
        read_melody(path)
    assert all(name in str(info.value)
               for name in ("4/4", "2/4", "2/2", "3/4", "6/8", "9/8", "12/8"))


def test_meter_changes_are_read_as_a_meter_map(tmp_path: Path) -> None:
    change = 8 * 4 * TPB
    metas = [time_signature(4, 4), time_signature(3, 4, tick=change),
             time_signature(3, 4, tick=change + 3 * TPB)]  # a repeat is no change
    path = save(tmp_path / "m.mid", [("Melody", line(SCALE * 6))], metas)
    melody = read_melody(path)
    assert melody.meter == Meter(4, 4)
    assert melody.meter_changes == ((change, Meter(3, 4)),)


@pytest.mark.parametrize("meter", [(5, 4), (7, 8)])
def test_unsupported_meter_change_names_its_bar_and_the_supported_ones(
    tmp_path: Path, meter: tuple[int, int]
) -> None:
    metas = [time_signature(4, 4), time_signature(6, 8, tick=8 * 4 * TPB),
             time_signature(*meter, tick=8 * 4 * TPB + 2 * 3 * TPB)]  # 2 bars of 6/8
    path = save(tmp_path / "m.mid", [("Melody", line(SCALE * 6))], metas)
    with pytest.raises(UnsupportedMeterError,
                       match=f"time signature {meter[0]}/{meter[1]} at bar 11 ") as info:
        read_melody(path)
    assert all(name in str(info.value)
               for name in ("4/4", "2/4", "2/2", "3/4", "6/8", "9/8", "12/8"))


def test_tempo_map_and_key_signature_are_kept(tmp_path: Path) -> None:
    metas = [
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(90)),
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100), time=4 * TPB),
        mido.MetaMessage("key_signature", key="Em"),
    ]
    path = save(tmp_path / "m.mid", [("Melody", line(SCALE))], metas)
    melody = read_melody(path)
    assert melody.tempo_bpm == pytest.approx(90)
    assert melody.tempo_changes == ((0, mido.bpm2tempo(90)), (4 * TPB, mido.bpm2tempo(100)))
    assert melody.key_signature == Key(4, "minor")
    assert melody.ticks_per_beat == TPB


def test_no_tempo_means_120(tmp_path: Path) -> None:
    melody = read_melody(save(tmp_path / "m.mid", [("Melody", line(SCALE))]))
    assert melody.tempo_bpm == 120.0
    assert melody.tempo_changes == ()


@pytest.mark.parametrize("bpm", [10, 1000])
def test_absurd_tempo_is_named(tmp_path: Path, bpm: int) -> None:
    metas = [mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))]
    path = save(tmp_path / "m.mid", [("Melody", line(SCALE))], metas)
    with pytest.raises(BadInputError, match=f"tempo {bpm}.0 BPM"):
        read_melody(path)


# ------------------------------------------------------------------------------- bad files


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MidiFileError, match="file not found"):
        read_melody(tmp_path / "nope.mid")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.mid").write_bytes(b"")
    with pytest.raises(MidiFileError, match="empty"):
        read_melody(tmp_path / "empty.mid")


@pytest.mark.parametrize("content", [b"this is not midi at all", b"MThd\x00\x00\x00\x06\x00"])
def test_corrupt_bytes(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "bad.mid").write_bytes(content)
    with pytest.raises(MidiFileError, match="not a readable MIDI file"):
        read_melody(tmp_path / "bad.mid")


def test_truncated_file(tmp_path: Path) -> None:
    path = save(tmp_path / "m.mid", [("Melody", line(SCALE * 4))])
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(MidiFileError):
        read_melody(path)


def test_no_notes(tmp_path: Path) -> None:
    path = save(tmp_path / "m.mid", [("Melody", [])])
    with pytest.raises(MidiFileError, match="no notes"):
        read_melody(path)


def test_one_note_is_too_few(tmp_path: Path) -> None:
    path = save(tmp_path / "m.mid", [("Melody", line([60]))])
    with pytest.raises(BadInputError, match="melody has 1 note; at least 4 are needed"):
        read_melody(path)


def test_too_many_notes(tmp_path: Path) -> None:
    path = save(tmp_path / "m.mid", [("Melody", line([60, 62] * 5000, length=60))])
    with pytest.raises(BadInputError, match="10000 notes; at most 4096"):
        read_melody(path)


def test_too_many_bars(tmp_path: Path) -> None:
    notes = line([60, 62, 64, 65], length=TPB * 4 * 200)  # 800 bars of whole-bar-ish notes
    path = save(tmp_path / "m.mid", [("Melody", notes)])
    with pytest.raises(BadInputError, match="800 bars long; at most 512"):
        read_melody(path)


# -------------------------------------------------------------------------------- MusicXML


MUSICXML = """<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="3.1">
  <part-list><score-part id="P1"><part-name>Voice</part-name></score-part></part-list>
  <part id="P1">
    <measure number="0">
      <attributes><divisions>2</divisions><key><fifths>1</fifths><mode>minor</mode></key>
        <time><beats>3</beats><beat-type>4</beat-type></time></attributes>
      <direction><sound tempo="90"/></direction>
      <note><pitch><step>B</step><octave>4</octave></pitch><duration>2</duration></note>
    </measure>
    <measure number="1">
      <note><pitch><step>E</step><octave>5</octave></pitch><duration>2</duration></note>
      <note><chord/><pitch><step>G</step><octave>4</octave></pitch><duration>2</duration></note>
      <note><pitch><step>F</step><alter>1</alter><octave>5</octave></pitch><duration>1</duration>
      </note>
      <note><rest/><duration>1</duration></note>
      <note><pitch><step>G</step><octave>5</octave></pitch><duration>2</duration>
        <tie type="start"/></note>
    </measure>
    <measure number="2">
      <note><pitch><step>G</step><octave>5</octave></pitch><duration>4</duration>
        <tie type="stop"/></note>
      <note><pitch><step>E</step><octave>5</octave></pitch><duration>2</duration></note>
    </measure>
  </part>
</score-partwise>
"""


def test_musicxml_notes_rests_ties_chords_key_tempo(tmp_path: Path) -> None:
    (tmp_path / "tune.musicxml").write_text(MUSICXML)
    with pytest.warns(MelodyWarning):  # the chord tone under E5 is dropped
        melody = read_melody(tmp_path / "tune.musicxml")
    q = melody.ticks_per_beat
    assert [(n.pitch, n.start_tick, n.duration_tick) for n in melody.notes] == [
        (71, 0, q), (76, q, q), (78, 2 * q, q // 2), (79, 3 * q, 3 * q), (76, 6 * q, q),
    ]
    assert melody.meter.name == "3/4"
    assert melody.key_signature == Key(4, "minor")
    assert melody.tempo_bpm == pytest.approx(90)
    assert melody.track_name == "Voice"


def test_compressed_musicxml(tmp_path: Path) -> None:
    container = (
        '<?xml version="1.0"?><container><rootfiles>'
        '<rootfile full-path="score/tune.xml"/></rootfiles></container>'
    )
    with zipfile.ZipFile(tmp_path / "tune.mxl", "w") as archive:
        archive.writestr("META-INF/container.xml", container)
        archive.writestr("score/tune.xml", MUSICXML)
    with pytest.warns(MelodyWarning):
        assert len(read_melody(tmp_path / "tune.mxl").notes) == 5


def test_corrupt_musicxml(tmp_path: Path) -> None:
    (tmp_path / "bad.musicxml").write_text("<score-partwise><part>")
    with pytest.raises(MidiFileError, match="not a readable MusicXML"):
        read_melody(tmp_path / "bad.musicxml")


# ---------------------------------------------------------------------------------- writing


def read_back(path: Path) -> tuple[mido.MidiFile, list[list[tuple[int, mido.Message]]]]:
    midi = mido.MidiFile(path)
    absolute = []
    for track in midi.tracks:
        tick, events = 0, []
        for message in track:
            tick += message.time
            events.append((tick, message))
        absolute.append(events)
    return midi, absolute


def notes_of(events: list[tuple[int, mido.Message]]) -> list[tuple[int, int, int, int]]:
    """(pitch, start, duration, channel) pairs rebuilt from written on/off events."""
    open_at: dict[int, int] = {}
    found = []
    for tick, message in events:
        if message.type == "note_on" and message.velocity > 0:
            open_at[message.note] = tick
        elif message.type in ("note_off", "note_on"):
            start = open_at.pop(message.note)
            found.append((message.note, start, tick - start, message.channel))
    return sorted(found, key=lambda n: (n[1], n[0]))


def test_write_song_round_trip(tmp_path: Path) -> None:
    metas = [
        time_signature(3, 4),
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(84)),
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(96), time=3 * TPB * 2),
        mido.MetaMessage("key_signature", key="Bb"),
    ]
    source = save(tmp_path / "in.mid", [("Lead", line(SCALE, length=TPB // 2))], metas)
    melody = read_melody(source)
    chord_notes = [Note(48, 0, 3 * TPB), Note(52, 0, 3 * TPB), Note(55, 3 * TPB, 3 * TPB)]
    out = tmp_path / "out.mid"
    write_song(out, melody, [("Chords", 2, chord_notes)])

    midi, events = read_back(out)
    assert midi.type == 1 and midi.ticks_per_beat == TPB
    assert [t.name for t in midi.tracks] == ["Melody", "Chords"]
    assert {m.channel for _, m in events[0] if m.type == "note_on"} == {0}
    assert {m.channel for _, m in events[1] if m.type == "note_on"} == {1}
    tempos = [(tick, m.tempo) for tick, m in events[0] if m.type == "set_tempo"]
    assert tempos == list(melody.tempo_changes)
    signature = next(m for _, m in events[0] if m.type == "time_signature")
    assert (signature.numerator, signature.denominator) == (3, 4)
    assert next(m.key for _, m in events[0] if m.type == "key_signature") == "Bb"
    assert [(p, s, d) for p, s, d, _ in notes_of(events[0])] == [
        (n.pitch, n.start_tick, n.duration_tick) for n in melody.notes
    ]
    assert [(p, s, d) for p, s, d, _ in notes_of(events[1])] == [
        (n.pitch, n.start_tick, n.duration_tick) for n in chord_notes
    ]
    assert any(m.type == "program_change" and m.program == 0 for _, m in events[1])
    again = read_melody(out, track="Melody")
    assert again.notes == melody.notes and again.meter == melody.meter
    assert again.tempo_changes == melody.tempo_changes


def test_note_off_precedes_note_on_at_the_same_tick(tmp_path: Path) -> None:
    melody = read_melody(save(tmp_path / "in.mid", [("Melody", line(SCALE))]))
    repeated = [Note(60, 0, TPB), Note(60, TPB, TPB), Note(64, 0, 2 * TPB)]
    write_song(tmp_path / "out.mid", melody, [("Piano", 3, repeated)])
    _, events = read_back(tmp_path / "out.mid")
    at_beat = [m.type for t, m in events[1] if t == TPB and m.type.startswith("note")]
    assert at_beat == ["note_off", "note_on"]
    assert {m.channel for _, m in events[1] if m.type.startswith("note")} == {2}


def test_write_without_tempo_map_uses_tempo_bpm(tmp_path: Path) -> None:
    melody = read_melody(save(tmp_path / "in.mid", [("Melody", line(SCALE))]))
    write_song(tmp_path / "out.mid", melody, [])
    _, events = read_back(tmp_path / "out.mid")
    assert [m.tempo for _, m in events[0] if m.type == "set_tempo"] == [mido.bpm2tempo(120)]


def test_atomic_write_leaves_nothing_and_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    melody = read_melody(save(tmp_path / "in.mid", [("Melody", line(SCALE))]))
    out = tmp_path / "song.mid"
    out.write_bytes(b"previous take")

    def failing_save(self: mido.MidiFile, filename: object = None, file: object = None) -> None:
        assert file is not None
        file.write(b"MThd half written")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(mido.MidiFile, "save", failing_save)
    with pytest.raises(MidiFileError, match="disk full"):
        write_song(out, melody, [("Chords", 2, [Note(48, 0, TPB)])])
    assert out.read_bytes() == b"previous take"
    assert sorted(os.listdir(tmp_path)) == ["in.mid", "song.mid"]


def test_bad_note_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    melody = read_melody(save(tmp_path / "in.mid", [("Melody", line(SCALE))]))
    with pytest.raises(BadInputError, match="pitch 200"):
        write_song(tmp_path / "out.mid", melody, [("Chords", 2, [Note(200, 0, TPB)])])
    with pytest.raises(BadInputError, match="channel 17"):
        write_song(tmp_path / "out.mid", melody, [("Chords", 17, [Note(60, 0, TPB)])])
    assert sorted(os.listdir(tmp_path)) == ["in.mid"]


def test_successful_write_leaves_no_temp_file(tmp_path: Path) -> None:
    melody = read_melody(save(tmp_path / "in.mid", [("Melody", line(SCALE))]))
    write_song(tmp_path / "out.mid", melody, [("Chords", 2, [Note(48, 0, TPB)])])
    write_song(tmp_path / "out.mid", melody, [("Chords", 2, [Note(50, 0, TPB)])])
    assert sorted(os.listdir(tmp_path)) == ["in.mid", "out.mid"]


def test_missing_folder(tmp_path: Path) -> None:
    melody = read_melody(save(tmp_path / "in.mid", [("Melody", line(SCALE))]))
    with pytest.raises(MidiFileError, match="does not exist"):
        write_song(tmp_path / "nope" / "out.mid", melody, [])
