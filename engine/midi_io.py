"""Melody files in, song files out: the engine's only door to MIDI files and to mido. MusicXML
is read by engine.musicxml; choosing and checking the melody is engine.melody_source.

Reading walks a melody file's bytes here, bounded and checked (see _MidiReader), then picks the
melody track, reduces it to one line and checks the limits the engine supports; writing
produces a type-1 MIDI file with mido, atomically, so a DAW never sees half a file.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import mido

from engine.atomic_file import atomic_output
from engine.errors import BadInputError, MidiFileError
from engine.melody_source import (
    MAX_FILE_NOTES,
    MAX_MIDI_BYTES,
    MAX_NAME_CHARS,
    ScoreSource,
    bad_value,
    build_melody,
    key_from_fifths,
    read_capped,
)
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


# Reading walks the file's bytes here rather than through mido.MidiFile, which trusts the header
# and chunk lengths (a lying length asks for gigabytes) and parses a whole track before anything
# can be counted. Every length is checked against the bytes left, notes are counted as they are
# read, and each value the melody uses is checked where it is read.
_DATA_BYTES = {0x8: 2, 0x9: 2, 0xA: 2, 0xB: 2, 0xC: 1, 0xD: 1, 0xE: 2}  # by status nibble
_SYSTEM_DATA_BYTES = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0, 0xF8: 0, 0xFA: 0, 0xFB: 0, 0xFC: 0,
                      0xFE: 0}
_META_END_OF_TRACK, _META_TRACK_NAME = 0x2F, 0x03
_META_TEMPO, _META_TIME_SIGNATURE, _META_KEY_SIGNATURE = 0x51, 0x58, 0x59
NoteEvent = tuple[int, int, int, int]  # tick, channel, pitch, velocity (0: the note ends)


class _Corrupt(Exception):
    """The file's structure is broken here; _read_midi words it as 'not a readable MIDI file'."""


class _MidiReader:
    """One pass over the bytes of a standard MIDI file, filling a ScoreSource."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.path, self.data = path, data
        self.notes_read = 0

    def read(self) -> ScoreSource:
        data = self.data
        if data[:4] != b"MThd":
            raise _Corrupt("no MThd header at the start")
        if len(data) < 14:
            raise _Corrupt("the header is cut short")
        length, kind, track_count, division = struct.unpack(">LHHH", data[4:14])
        if not 6 <= length <= len(data) - 8:
            raise _Corrupt(f"header length {length:,} does not fit the file's {len(data):,} "
                           "bytes")
        if kind > 2:
            raise _Corrupt(f"header format {kind} is not 0, 1 or 2")
        if division & 0x8000:
            raise MidiFileError(f"{self.path.name} uses SMPTE timing, which is not supported")
        if division == 0:
            raise bad_value(self.path, "the header's ticks per beat", 0, "it must be 1 or more")
        source = ScoreSource(ticks_per_beat=division)
        position, index = 8 + length, 0
        while index < track_count:
            if position + 8 > len(data):
                raise _Corrupt(f"the header promises {track_count} tracks, the file ends after "
                               f"{index}")
            chunk, size = struct.unpack(">4sL", data[position : position + 8])
            position += 8
            if size > len(data) - position:
                raise _Corrupt(f"track {index} says {size:,} bytes, {len(data) - position:,} "
                               "are left")
            if chunk == b"MTrk":  # other chunk types are skipped, as the standard says
                self._track(source, index, position, position + size, kind)
                index += 1
            position += size
        return source

    def _varlen(self, position: int, end: int, index: int) -> tuple[int, int]:
        """A variable-length quantity (at most 4 bytes) at `position`, and where it ends."""
        value = 0
        for offset in range(4):
            if position + offset >= end:
                raise _Corrupt(f"track {index} ends inside a length or delta time")
            byte = self.data[position + offset]
            value = (value << 7) | (byte & 0x7F)
            if byte < 0x80:
                return value, position + offset + 1
        raise _Corrupt(f"track {index} has a length or delta time longer than 4 bytes at byte "
                       f"{position}")

    def _track(self, source: ScoreSource, index: int, position: int, end: int,
               kind: int) -> None:
        data = self.data
        name = ""
        by_channel: dict[int, list[NoteEvent]] = {}
        tick, running = 0, 0
        while position < end:
            delta, position = self._varlen(position, end, index)
            tick += delta
            if position >= end:
                raise _Corrupt(f"track {index} ends inside an event")
            status = data[position]
            if status >= 0x80:
                position += 1
            elif running:
                status = running
            else:
                raise _Corrupt(f"track {index} has data without a status byte at byte "
                               f"{position}")
            if status == 0xFF:
                if position >= end:
                    raise _Corrupt(f"track {index} ends inside an event")
                meta = data[position]
                length, position = self._varlen(position + 1, end, index)
                payload = data[position : position + length]
                if len(payload) < length:
                    raise _Corrupt(f"track {index} ends inside a meta event")
                position += length
                if meta == _META_END_OF_TRACK:
                    break
                if meta == _META_TRACK_NAME and not name:
                    name = payload.decode("latin-1")[:MAX_NAME_CHARS].strip()
                else:
                    self._meta(source, meta, payload, f"at tick {tick} of track {index}", tick)
                continue
            if status >= 0xF0:  # sysex and system messages: skipped
                if status in (0xF0, 0xF7):
                    length, position = self._varlen(position, end, index)
                elif status in _SYSTEM_DATA_BYTES:
                    length = _SYSTEM_DATA_BYTES[status]
                else:
                    raise _Corrupt(f"track {index} has the undefined status byte "
                                   f"0x{status:02X} at byte {position - 1}")
                running, position = 0, position + length
                if position > end:
                    raise _Corrupt(f"track {index} ends inside an event")
                continue
            running = status
            size = _DATA_BYTES[status >> 4]
            values = data[position : position + size]
            if len(values) < size:
                raise _Corrupt(f"track {index} ends inside an event")
            position += size
            channel = status & 0x0F
            if status >> 4 not in (0x8, 0x9) or channel == DRUM_CHANNEL:
                continue
            pitch, velocity = min(values[0], 127), min(values[1], 127)  # as mido's clip=True
            if status >> 4 == 0x8:
                velocity = 0
            elif velocity:
                self.notes_read += 1
                if self.notes_read > MAX_FILE_NOTES:
                    raise MidiFileError(
                        f"{self.path.name} holds more than {MAX_FILE_NOTES:,} notes (stopped "
                        f"reading at tick {tick} of track {index}); a melody file may hold at "
                        f"most {MAX_FILE_NOTES:,}"
                    )
            by_channel.setdefault(channel, []).append((tick, channel, pitch, velocity))
        name = name or f"Track {index}"
        if kind == 0 and len(by_channel) > 1:
            for channel in sorted(by_channel):
                notes = _pair_notes(by_channel[channel], tick)
                source.tracks.append((f"{name} channel {channel + 1}", notes))
        else:
            events = sorted((ev for evs in by_channel.values() for ev in evs),
                            key=lambda ev: ev[0])
            source.tracks.append((name, _pair_notes(events, tick)))

    def _meta(self, source: ScoreSource, meta: int, payload: bytes, where: str,
              tick: int) -> None:
        """The meta events the melody uses, each checked as it is read."""
        if meta == _META_TEMPO:
            tempo = int.from_bytes(payload[:3], "big")
            if len(payload) != 3 or tempo == 0:
                raise bad_value(self.path, f"set_tempo {where}", payload.hex(" "),
                                "a tempo is 3 bytes of microseconds per quarter note, not 0")
            source.tempos.append((tick, tempo))
        elif meta == _META_TIME_SIGNATURE:
            if len(payload) < 2 or payload[1] > 6:
                raise bad_value(self.path, f"time_signature {where}", payload.hex(" "),
                                "it must be a numerator and a denominator of 1-64")
            source.time_signatures.append((tick, payload[0], 2 ** payload[1]))
        elif meta == _META_KEY_SIGNATURE and source.key is None:
            fifths = int.from_bytes(payload[:1], "big", signed=True)
            if len(payload) != 2 or not -7 <= fifths <= 7 or payload[1] > 1:
                raise bad_value(self.path, f"key_signature {where}", payload.hex(" "),
                                "a key is -7..7 sharps and 0 (major) or 1 (minor)")
            source.key = key_from_fifths(fifths, minor=payload[1] == 1)


def _read_midi(path: Path) -> ScoreSource:
    data = read_capped(path, MAX_MIDI_BYTES, "MIDI")
    try:
        return _MidiReader(path, data).read()
    except _Corrupt as err:
        raise MidiFileError(f"{path.name} is not a readable MIDI file ({err})") from err


def _pair_notes(events: Iterable[NoteEvent], end_tick: int) -> list[Note]:
    """Match note starts and ends per (channel, pitch); velocity 0 ends a note.

    A note_on for a pitch still sounding closes the earlier note there; notes never closed end
    at the track end; zero-length notes get one tick so they survive.
    """
    open_notes: dict[tuple[int, int], tuple[int, int]] = {}
    notes: list[Note] = []

    def close(key: tuple[int, int], tick: int) -> None:
        start, velocity = open_notes.pop(key)
        notes.append(Note(key[1], start, max(1, tick - start), velocity))

    for tick, channel, pitch, velocity in events:
        key = (channel, pitch)
        if key in open_notes:
            close(key, tick)
        if velocity > 0:
            open_notes[key] = (tick, velocity)
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
