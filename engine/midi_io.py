"""Melody files in, song files out: the engine's only door to MIDI (mido) and MusicXML.

Reading picks the melody track, reduces it to one line and checks the limits the engine
supports; writing produces a type-1 MIDI file atomically, so a DAW never sees half a file.
"""

from __future__ import annotations

import struct
import warnings
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import mido

from engine.analysis.key import parse_key
from engine.atomic_file import atomic_output
from engine.errors import BadInputError, MidiFileError, UnsupportedMeterError
from engine.meter_sections import bar_at_tick
from engine.types import SUPPORTED_METERS, Key, Melody, Meter, Note

MIN_NOTES = 4
MAX_NOTES = 4096
MAX_BARS = 512
MIN_BPM = 20.0
MAX_BPM = 400.0
DEFAULT_TEMPO_US = 500_000  # 120 BPM, the MIDI default before any set_tempo
DRUM_CHANNEL = 9  # channel 10 in 1-based numbering
MELODY_NAME_HINTS = ("melody", "melodie", "lead", "vocal", "voice")
# Tracks whose monophonic share is within this much of the best are ranked by pitch instead.
MONOPHONY_TIE = 0.02
MUSICXML_TICKS_PER_BEAT = 480
MUSICXML_SUFFIXES = (".musicxml", ".mxl", ".xml")


class MelodyWarning(UserWarning):
    """Something was changed to make the input usable (e.g. chords reduced to the top line)."""


@dataclass
class _Source:
    """What either reader found, before the melody is chosen and checked."""

    ticks_per_beat: int
    tracks: list[tuple[str, list[Note]]] = field(default_factory=list)
    time_signatures: list[tuple[int, int, int]] = field(default_factory=list)  # tick, n, d
    tempos: list[tuple[int, int]] = field(default_factory=list)  # tick, us per quarter
    key: Key | None = None


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
    source = _read_musicxml(path) if is_musicxml else _read_midi(path)
    return _build_melody(path, source, track)


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


def _read_midi(path: Path) -> _Source:
    try:
        midi = mido.MidiFile(str(path), clip=True)
    except (OSError, EOFError, ValueError, KeyError, IndexError, struct.error) as err:
        raise MidiFileError(f"{path.name} is not a readable MIDI file ({_one_line(err)})") from err
    source = _Source(ticks_per_beat=midi.ticks_per_beat)
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


def _one_line(err: BaseException) -> str:
    """A library's error text, cut to its first line so our message stays one line."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


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


def _monophonic_share(notes: Sequence[Note]) -> float:
    """Share of sounding time with exactly one note: 1.0 for a clean melody line."""
    changes: dict[int, int] = {}
    for note in notes:
        changes[note.start_tick] = changes.get(note.start_tick, 0) + 1
        changes[note.end_tick] = changes.get(note.end_tick, 0) - 1
    sounding = one = 0
    count = 0
    previous = 0
    for tick in sorted(changes):
        span = tick - previous
        if count >= 1:
            sounding += span
        if count == 1:
            one += span
        count += changes[tick]
        previous = tick
    return one / sounding if sounding else 0.0


def _choose_track(
    path: Path, tracks: list[tuple[str, list[Note]]], wanted: str | int | None
) -> tuple[str, list[Note]]:
    if wanted is not None:
        return _track_by_request(path, tracks, wanted)
    with_notes = [t for t in tracks if t[1]]
    if not with_notes:
        raise MidiFileError(f"{path.name} has no notes (drum channel 10 is ignored)")
    named = [t for t in with_notes if any(h in t[0].lower() for h in MELODY_NAME_HINTS)]
    pool = named or with_notes
    shares = [_monophonic_share(notes) for _, notes in pool]
    best = max(shares)
    near_best = [t for t, share in zip(pool, shares, strict=True) if share >= best - MONOPHONY_TIE]
    return max(near_best, key=lambda t: sum(n.pitch for n in t[1]) / len(t[1]))


def _track_by_request(
    path: Path, tracks: list[tuple[str, list[Note]]], wanted: str | int
) -> tuple[str, list[Note]]:
    listing = ", ".join(
        f"{i}: {name!r}" + ("" if notes else " (no notes)")
        for i, (name, notes) in enumerate(tracks)
    )
    text = str(wanted).strip()
    lowered = text.lower()
    # exact name, then index (so "--track 2" is not taken for a track named "Piano 2"), then
    # a name containing the text
    chosen = next((t for t in tracks if t[0].lower() == lowered), None)
    if chosen is None and text.isdigit() and int(text) < len(tracks):
        chosen = tracks[int(text)]
    chosen = chosen or next((t for t in tracks if lowered and lowered in t[0].lower()), None)
    if chosen is None:
        raise MidiFileError(f"{path.name} has no track {wanted!r}; tracks are {listing}")
    if not chosen[1]:
        raise MidiFileError(
            f"track {chosen[0]!r} of {path.name} has no notes; tracks are {listing}"
        )
    return chosen


def reduce_to_top_line(notes: Sequence[Note], ticks_per_beat: int) -> tuple[list[Note], int]:
    """Keep the highest line: a note starting under a still-sounding higher note is dropped,
    an earlier note is cut where a kept note starts. Returns (line, number dropped).

    Overlaps shorter than a 16th (legato playing) cut the earlier note instead of dropping the
    later one, so a monophonic take played legato loses nothing.
    """
    legato = max(1, ticks_per_beat // 4)
    line: list[Note] = []
    dropped = 0
    for note in sorted(notes, key=lambda n: (n.start_tick, -n.pitch)):
        if line and line[-1].end_tick > note.start_tick:
            last = line[-1]
            same_onset = last.start_tick == note.start_tick
            if same_onset or (
                note.pitch < last.pitch and last.end_tick - note.start_tick > legato
            ):
                dropped += 1
                continue
            line[-1] = Note(last.pitch, last.start_tick, note.start_tick - last.start_tick,
                            last.velocity)
        line.append(note)
    return line, dropped


MeterMap = tuple[Meter, tuple[tuple[int, Meter], ...]]  # meter at tick 0, later changes


def _meter_map(source: _Source) -> MeterMap:
    """The meter at tick 0 and every later change (tick, meter), in order. Of several
    signatures at one tick the last counts; a signature repeating the meter is no change. An
    unsupported meter is refused with the supported list, at its bar when it is a change."""
    by_tick: dict[int, tuple[int, int]] = {0: (4, 4)}
    for tick, numerator, denominator in sorted(source.time_signatures, key=lambda s: s[0]):
        by_tick[tick] = (numerator, denominator)
    first = Meter(*by_tick.pop(0))
    changes: list[tuple[int, Meter]] = []
    for tick, signature in sorted(by_tick.items()):
        current = changes[-1][1] if changes else first
        if signature == (current.numerator, current.denominator):
            continue
        try:
            changes.append((tick, Meter(*signature)))
        except UnsupportedMeterError as err:
            bar = bar_at_tick(tick, source.ticks_per_beat, first, tuple(changes)) + 1
            raise UnsupportedMeterError(
                f"time signature {signature[0]}/{signature[1]} at bar {bar} is not supported "
                f"(supported: {supported_meter_names()})"
            ) from err
    return first, tuple(changes)


def supported_meter_names() -> str:
    return ", ".join(f"{n}/{d}" for n, d in SUPPORTED_METERS)


def _tempo_map(source: _Source) -> tuple[tuple[int, int], ...]:
    by_tick: dict[int, int] = {}
    for tick, tempo in sorted(source.tempos, key=lambda t: t[0]):
        by_tick[tick] = tempo  # the last of several at one tick is the one that sounds
    if by_tick and 0 not in by_tick:
        by_tick[0] = DEFAULT_TEMPO_US  # MIDI plays 120 BPM until the first set_tempo
    for tick, tempo in by_tick.items():
        bpm = mido.tempo2bpm(tempo)
        if not MIN_BPM <= bpm <= MAX_BPM:
            raise BadInputError(
                f"tempo {bpm:.1f} BPM at tick {tick} is outside {MIN_BPM:.0f}-{MAX_BPM:.0f} BPM"
            )
    return tuple(sorted(by_tick.items()))


def _build_melody(path: Path, source: _Source, track: str | int | None) -> Melody:
    meter, meter_changes = _meter_map(source)
    tempo_changes = _tempo_map(source)
    name, raw_notes = _choose_track(path, source.tracks, track)
    return melody_from_notes(
        raw_notes, source.ticks_per_beat, meter, tempo_changes, source.key, name, meter_changes
    )


def melody_from_notes(
    raw_notes: Sequence[Note], ticks_per_beat: int, meter: Meter,
    tempo_changes: tuple[tuple[int, int], ...], key: Key | None = None, name: str = "Melody",
    meter_changes: tuple[tuple[int, Meter], ...] = (),
) -> Melody:
    """A checked Melody from notes however they arrived (file, DAW clip): top line, limits."""
    for tick, tempo in tempo_changes:
        bpm = mido.tempo2bpm(tempo)
        if not MIN_BPM <= bpm <= MAX_BPM:
            raise BadInputError(
                f"tempo {bpm:.1f} BPM at tick {tick} is outside {MIN_BPM:.0f}-{MAX_BPM:.0f} BPM"
            )
    notes, dropped = reduce_to_top_line(raw_notes, ticks_per_beat)
    if dropped:
        warnings.warn(
            MelodyWarning(
                f"track {name!r} is polyphonic: kept the top line, dropped {dropped} of "
                f"{len(raw_notes)} notes"
            ),
            stacklevel=3,
        )
    count = len(notes)
    if count < MIN_NOTES:
        plural = "note" if count == 1 else "notes"
        raise BadInputError(
            f"melody has {count} {plural}; at least {MIN_NOTES} are needed (track {name!r})"
        )
    if count > MAX_NOTES:
        raise BadInputError(f"melody has {count} notes; at most {MAX_NOTES} are supported")
    end_tick = max(n.end_tick for n in notes)
    bars = bar_at_tick(end_tick - 1, ticks_per_beat, meter, meter_changes) + 1
    if bars > MAX_BARS:
        raise BadInputError(f"melody is {bars} bars long; at most {MAX_BARS} are supported")
    bpm = mido.tempo2bpm(tempo_changes[0][1]) if tempo_changes else 120.0
    return Melody(
        notes=tuple(notes),
        ticks_per_beat=ticks_per_beat,
        meter=meter,
        tempo_bpm=float(bpm),
        tempo_changes=tempo_changes,
        key_signature=key,
        track_name=name,
        meter_changes=meter_changes,
    )


# ---------------------------------------------------------------------------------- MusicXML


def _musicxml_root(path: Path) -> ET.Element:
    """Parse .musicxml/.xml, or the root file named by META-INF/container.xml inside a .mxl."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                container = ET.fromstring(archive.read("META-INF/container.xml"))
                rootfile = next(e for e in container.iter() if e.tag.endswith("rootfile"))
                return ET.fromstring(archive.read(rootfile.attrib["full-path"]))
        return ET.parse(path).getroot()
    except (ET.ParseError, KeyError, StopIteration, zipfile.BadZipFile, OSError) as err:
        raise MidiFileError(
            f"{path.name} is not a readable MusicXML file ({_one_line(err)})"
        ) from err


def _read_musicxml(path: Path) -> _Source:
    """Score-partwise MusicXML: one track per part; voices and chords meet in top-line reduction.

    Time is counted in Fractions of a quarter, so any <divisions> maps exactly onto 480 ticks.
    """
    root = _musicxml_root(path)
    if root.tag != "score-partwise":
        raise MidiFileError(f"{path.name}: only score-partwise MusicXML is supported")
    names = {p.get("id"): (p.findtext("part-name") or "").strip()
             for p in root.iter("score-part")}
    source = _Source(ticks_per_beat=MUSICXML_TICKS_PER_BEAT)

    def ticks(quarters: Fraction) -> int:
        return int(quarters * MUSICXML_TICKS_PER_BEAT)

    for index, part in enumerate(root.findall("part")):
        divisions = Fraction(1)
        measure_start = Fraction(0)
        notes: list[Note] = []
        tied: dict[int, int] = {}  # pitch -> index in notes of a note whose tie continues
        for measure in part.findall("measure"):
            position = measure_end = measure_start
            last_start = measure_start
            for element in measure:
                tag = element.tag
                if tag == "attributes":
                    divisions = Fraction(element.findtext("divisions") or divisions)
                    time = element.find("time")
                    if time is not None and index == 0:
                        source.time_signatures.append(
                            (ticks(measure_start), int(time.findtext("beats") or 4),
                             int(time.findtext("beat-type") or 4)))
                    key = element.find("key")
                    if key is not None and source.key is None:
                        source.key = _musicxml_key(key)
                elif tag in ("backup", "forward"):
                    step = Fraction(element.findtext("duration") or 0) / divisions
                    position += -step if tag == "backup" else step
                elif tag == "note" and element.find("grace") is None:
                    length = Fraction(element.findtext("duration") or 0) / divisions
                    start = last_start if element.find("chord") is not None else position
                    pitch = element.find("pitch")
                    if pitch is not None:
                        midi_pitch = _musicxml_pitch(pitch)
                        ties = {t.get("type") for t in element.findall("tie")}
                        if "stop" in ties and midi_pitch in tied:
                            held = notes[tied[midi_pitch]]
                            notes[tied[midi_pitch]] = Note(
                                held.pitch, held.start_tick,
                                ticks(start + length) - held.start_tick, held.velocity)
                        else:
                            notes.append(Note(midi_pitch, ticks(start),
                                              max(1, ticks(length))))
                            tied[midi_pitch] = len(notes) - 1
                        if "start" not in ties:
                            tied.pop(midi_pitch, None)
                    last_start = start
                    position = start + length
                if tag == "direction" or tag == "sound":
                    sound = element if tag == "sound" else element.find("sound")
                    if sound is not None and sound.get("tempo"):
                        source.tempos.append(
                            (ticks(position), int(round(60e6 / float(sound.get("tempo", 120))))))
                measure_end = max(measure_end, position)
            measure_start = measure_end
        name = names.get(part.get("id")) or f"Part {index + 1}"
        source.tracks.append((name, sorted(notes, key=lambda n: (n.start_tick, -n.pitch))))
    return source


def _musicxml_pitch(pitch: ET.Element) -> int:
    step = "C D EF G A B".index(pitch.findtext("step", "C"))
    alter = int(round(float(pitch.findtext("alter") or 0)))
    return 12 * (int(pitch.findtext("octave") or 4) + 1) + step + alter


def _musicxml_key(key: ET.Element) -> Key:
    fifths = int(key.findtext("fifths") or 0)
    mode = key.findtext("mode") or "major"
    major_tonic = (7 * fifths) % 12
    if mode == "minor":
        return Key((major_tonic + 9) % 12, "minor")
    return Key(major_tonic, "major")


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
