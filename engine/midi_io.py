"""Melody files in, song files out: the engine's only door to MIDI (mido). MusicXML is read by
engine.musicxml; choosing and checking the melody is engine.melody_source.

Reading picks the melody track, reduces it to one line and checks the limits the engine
supports; writing produces a type-1 MIDI file atomically, so a DAW never sees half a file.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import mido

from engine.analysis.key import parse_key
from engine.atomic_file import atomic_output
from engine.errors import BadInputError, MidiFileError
from engine.melody_source import ScoreSource, build_melody, one_line
from engine.musicxml import MUSICXML_SUFFIXES, read_musicxml
from engine.types import Key, Melody, Note

DRUM_CHANNEL = 9  # channel 10 in 1-based numbering


# ----------------------------------------------------------------------------------- reading


def read_melody(path: str | Path, track: str | int | None = None) -> Melody:
    """Read the melody of a MIDI or MusicXML file.

    `track` picks the track by name (exact, then substring, case-insensitive) or by 0-based
    index; otherwise a melody-named track wins, else the most monophonic, highest one.
    """
    path = Path(path)
    if not path.exists():
        raise MidiFileError(f"file not found: {path}")
    if not path.is_file():
        raise MidiFileError(f"not a file: {path}")
    if path.stat().st_size == 0:
        raise MidiFileError(f"file is empty: {path}")
    is_musicxml = path.suffix.lower() in MUSICXML_SUFFIXES
    source = read_musicxml(path) if is_musicxml else _read_midi(path)
    return build_melody(path, source, track)


def read_note_tracks(path: str | Path) -> tuple[int, list[tuple[str, list[Note]]]]:
    """Every note track of a MIDI file (drums skipped) with the file's ticks per beat; for
    inputs that are not a melody, such as a chord track given to the arranger."""
    path = Path(path)
    if not path.is_file():
        raise MidiFileError(f"file not found: {path}")
    if path.stat().st_size == 0:
        raise MidiFileError(f"file is empty: {path}")
    source = _read_midi(path)
    tracks = [(name, notes) for name, notes in source.tracks if notes]
    if not tracks:
        raise MidiFileError(f"{path.name} has no notes")
    return source.ticks_per_beat, tracks


def open_midi_file(path: str | Path, clip: bool = False) -> mido.MidiFile:
    """The file as mido parses it, for the offline corpus readers (engine.build) that walk its
    tracks themselves; this module stays the one that imports mido."""
    return mido.MidiFile(str(path), clip=clip)


def merged_messages(midi: mido.MidiFile) -> list[mido.Message]:
    """Every track's messages in time order, `time` in delta ticks (mido.merge_tracks)."""
    return list(mido.merge_tracks(midi.tracks))


def _read_midi(path: Path) -> ScoreSource:
    try:
        midi = mido.MidiFile(str(path), clip=True)
    except (OSError, EOFError, ValueError, KeyError, IndexError, struct.error) as err:
        raise MidiFileError(f"{path.name} is not a readable MIDI file ({one_line(err)})") from err
    source = ScoreSource(ticks_per_beat=midi.ticks_per_beat)
    if midi.ticks_per_beat <= 0:
        raise MidiFileError(f"{path.name} uses SMPTE timing, which is not supported")
    for index, midi_track in enumerate(midi.tracks):
        name = midi_track.name.strip() or f"Track {index}"
        by_channel: dict[int, list[tuple[int, mido.Message]]] = {}
        tick = 0
        for message in midi_track:
            tick += message.time
            if message.type == "set_tempo":
                source.tempos.append((tick, message.tempo))
            elif message.type == "time_signature":
                source.time_signatures.append((tick, message.numerator, message.denominator))
            elif message.type == "key_signature" and source.key is None:
                source.key = parse_key(message.key)
            elif message.type in ("note_on", "note_off"):
                by_channel.setdefault(message.channel, []).append((tick, message))
        by_channel.pop(DRUM_CHANNEL, None)
        if midi.type == 0 and len(by_channel) > 1:
            for channel in sorted(by_channel):
                notes = _pair_notes(by_channel[channel], tick)
                source.tracks.append((f"{name} channel {channel + 1}", notes))
        else:
            events = sorted(
                (ev for evs in by_channel.values() for ev in evs), key=lambda ev: ev[0]
            )
            source.tracks.append((name, _pair_notes(events, tick)))
    return source


def _pair_notes(events: Iterable[tuple[int, mido.Message]], end_tick: int) -> list[Note]:
    """Match note_on/note_off per (channel, pitch); velocity-0 note_on ends a note.

    A note_on for a pitch still sounding closes the earlier note there; notes never closed end
    at the track end; zero-length notes get one tick so they survive.
    """
    open_notes: dict[tuple[int, int], tuple[int, int]] = {}
    notes: list[Note] = []

    def close(key: tuple[int, int], tick: int) -> None:
        start, velocity = open_notes.pop(key)
        notes.append(Note(key[1], start, max(1, tick - start), velocity))

    for tick, message in events:
        key = (message.channel, message.note)
        if key in open_notes:
            close(key, tick)
        if message.type == "note_on" and message.velocity > 0:
            open_notes[key] = (tick, message.velocity)
    for key in list(open_notes):
        close(key, max(end_tick, open_notes[key][0]))
    notes.sort(key=lambda n: (n.start_tick, -n.pitch))
    return notes


# ----------------------------------------------------------------------------------- writing

_MAJOR_SIGNATURES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MINOR_SIGNATURES = ("Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm")


def _key_signature_name(key: Key) -> str:
    table = _MAJOR_SIGNATURES if key.mode == "major" else _MINOR_SIGNATURES
    return table[key.tonic_pc]


def _note_messages(notes: Sequence[Note], channel: int) -> list[tuple[int, int, mido.Message]]:
    """(tick, order, message) for each note; order puts note_off before note_on at one tick."""
    events: list[tuple[int, int, mido.Message]] = []
    for note in notes:
        if not 0 <= note.pitch <= 127:
            raise BadInputError(f"note pitch {note.pitch} is outside MIDI's 0-127")
        if note.start_tick < 0 or note.duration_tick <= 0:
            raise BadInputError(
                f"note at tick {note.start_tick} with length {note.duration_tick} cannot be "
                "written (start must be >= 0, length > 0)"
            )
        velocity = min(127, max(1, note.velocity))
        events.append((note.start_tick, 2, mido.Message(
            "note_on", channel=channel, note=note.pitch, velocity=velocity)))
        events.append((note.end_tick, 1, mido.Message(
            "note_off", channel=channel, note=note.pitch, velocity=0)))
    return events


def _track(name: str, events: list[tuple[int, int, mido.Message]]) -> mido.MidiTrack:
    """Sort absolute-time events (metas first at a tick, then offs, then ons) into delta time."""
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
    now = 0
    for tick, _, message in sorted(events, key=lambda e: (e[0], e[1], getattr(e[2], "note", 0))):
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


Controls = Mapping[str, Sequence[tuple[int, int, int]]]  # track name -> (tick, cc, value)


def build_song(
    melody: Melody, tracks: Sequence[tuple[str, int, Sequence[Note]]],
    controls: Controls | None = None,
) -> mido.MidiFile:
    """The type-1 file `write_song` saves: Melody track (with the tempo map) then `tracks`."""
    song = mido.MidiFile(type=1, ticks_per_beat=melody.ticks_per_beat)
    meta: list[tuple[int, int, mido.Message | mido.MetaMessage]] = [
        (tick, 0, mido.MetaMessage("time_signature", numerator=meter.numerator,
                                   denominator=meter.denominator))
        for tick, meter in ((0, melody.meter), *melody.meter_changes)
    ]
    if melody.key_signature is not None:
        meta.append((0, 0, mido.MetaMessage(
            "key_signature", key=_key_signature_name(melody.key_signature))))
    tempos = melody.tempo_changes or ((0, mido.bpm2tempo(melody.tempo_bpm)),)
    meta += [(tick, 0, mido.MetaMessage("set_tempo", tempo=tempo)) for tick, tempo in tempos]
    meta.append((0, 0, mido.Message("program_change", channel=0, program=0)))
    song.tracks.append(_track("Melody", meta + _note_messages(melody.notes, 0)))
    for name, channel, notes in tracks:
        if not 1 <= channel <= 16:
            raise BadInputError(f"track {name!r}: MIDI channel {channel} is outside 1-16")
        program = [(0, 0, mido.Message("program_change", channel=channel - 1, program=0))]
        # control changes sort with the note-offs: a pedal lift lands before a new note-on
        ccs = [
            (tick, 1, mido.Message("control_change", channel=channel - 1, control=cc, value=v))
            for tick, cc, v in (controls or {}).get(name, ())
        ]
        song.tracks.append(_track(name, program + ccs + _note_messages(notes, channel - 1)))
    return song


def write_song(
    path: str | Path, melody: Melody, tracks: Sequence[tuple[str, int, Sequence[Note]]],
    controls: Controls | None = None,
) -> None:
    """Write melody + accompaniment tracks as one type-1 MIDI file, atomically.

    The file is written to a temporary name in the target folder and renamed over `path`, so an
    existing file is either replaced whole or left untouched, and no temp file survives failure.
    """
    path = Path(path)
    song = build_song(melody, tracks, controls)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise MidiFileError(f"cannot write {path}: folder {folder} does not exist")
    try:
        with atomic_output(path, make_parents=False) as stream:
            song.save(file=stream)
    except OSError as err:
        raise MidiFileError(f"cannot write {path}: {err}") from err
