"""From the note tracks a score file holds to a checked Melody: which track is the melody, its
top line, the meter and tempo maps, and the limits the engine supports. Format-free: the MIDI
reader (engine.midi_io) and the MusicXML reader (engine.musicxml) fill a ScoreSource, reading
the file through `read_capped` and reporting a bad value with `bad_value`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import BadInputError, MidiFileError, UnsupportedMeterError
from engine.meter_sections import bar_at_tick
from engine.types import SUPPORTED_METERS, Key, Melody, Meter, Note

MIN_NOTES = 4
MAX_NOTES = 4096
MAX_BARS = 512
MIN_BPM = 20.0
MAX_BPM = 400.0
DEFAULT_TEMPO_US = 500_000  # 120 BPM, the MIDI default before any set_tempo
# What a melody file may hold before it is parsed or while it is read, so a hostile file costs
# milliseconds and megabytes, not minutes and gigabytes. Generous for real scores: a 512-bar
# piano MIDI file is well under 1 MB, a full orchestral MusicXML score under 16 MB.
MAX_MIDI_BYTES = 4 * 1024 * 1024
MAX_MUSICXML_BYTES = 16 * 1024 * 1024  # the XML text, also once a .mxl is inflated
MAX_FILE_NOTES = 16 * MAX_NOTES  # every track's notes, counted while reading
MAX_NAME_CHARS = 100  # longer track and part names are cut
MELODY_NAME_HINTS = ("melody", "melodie", "lead", "vocal", "voice")
# Tracks whose monophonic share is within this much of the best are ranked by pitch instead.
MONOPHONY_TIE = 0.02


class MelodyWarning(UserWarning):
    """Something was changed to make the input usable (e.g. chords reduced to the top line)."""


@dataclass
class ScoreSource:
    """What either reader found, before the melody is chosen and checked."""

    ticks_per_beat: int
    tracks: list[tuple[str, list[Note]]] = field(default_factory=list)
    time_signatures: list[tuple[int, int, int]] = field(default_factory=list)  # tick, n, d
    tempos: list[tuple[int, int]] = field(default_factory=list)  # tick, us per quarter
    key: Key | None = None


def read_capped(path: Path, limit: int, kind: str) -> bytes:
    """The file's bytes, refused unread past `limit` (the size is checked again on reading, so a
    file growing meanwhile cannot get past it)."""
    try:
        size = path.stat().st_size
        if size <= limit:
            with path.open("rb") as stream:
                data = stream.read(limit + 1)
            size = len(data)
    except OSError as err:
        raise MidiFileError(f"cannot read {path.name}: {err.strerror or err}") from err
    if size > limit:
        raise MidiFileError(
            f"{path.name} is {size:,} bytes; a {kind} file may be at most {limit:,} bytes"
        )
    return data


def bad_value(path: Path, field: str, value: object, problem: str) -> MidiFileError:
    """The one error for a value read from a file: names the file, the field and where it is
    (in `field`), the value as found (cut short, control characters escaped) and what is wrong."""
    if isinstance(value, str) and len(value) > 40:
        value = value[:40] + "..."
    return MidiFileError(f"{path.name}: {field} is {value!r}; {problem}")


def key_from_fifths(fifths: int, minor: bool) -> Key:
    """The key of a signature with `fifths` sharps (negative: flats), as MIDI and MusicXML
    write it."""
    major_tonic = (7 * fifths) % 12
    return Key((major_tonic + 9) % 12, "minor") if minor else Key(major_tonic, "major")


def one_line(err: BaseException) -> str:
    """A library's error text, cut to its first line so our message stays one line."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def monophonic_share(notes: Sequence[Note]) -> float:
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
    shares = [monophonic_share(notes) for _, notes in pool]
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


def _meter_map(source: ScoreSource) -> MeterMap:
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


def _tempo_map(source: ScoreSource) -> tuple[tuple[int, int], ...]:
    by_tick: dict[int, int] = {}
    for tick, tempo in sorted(source.tempos, key=lambda t: t[0]):
        by_tick[tick] = tempo  # the last of several at one tick is the one that sounds
    if by_tick and 0 not in by_tick:
        by_tick[0] = DEFAULT_TEMPO_US  # MIDI plays 120 BPM until the first set_tempo
    return tuple(sorted(by_tick.items()))


def _check_tempos(tempo_changes: Sequence[tuple[int, int]]) -> None:
    for tick, tempo in tempo_changes:
        if tempo <= 0:
            raise BadInputError(f"tempo of {tempo} microseconds per quarter note at tick {tick} "
                                "is not a tempo")
        bpm = tempo_bpm(tempo)
        if not MIN_BPM <= bpm <= MAX_BPM:
            raise BadInputError(
                f"tempo {bpm:.1f} BPM at tick {tick} is outside {MIN_BPM:.0f}-{MAX_BPM:.0f} BPM"
            )


def tempo_bpm(tempo_us: int) -> float:
    """Quarter notes per minute of a MIDI tempo (µs per quarter), as mido.tempo2bpm gives it."""
    return 60_000_000 / tempo_us


def build_melody(path: Path, source: ScoreSource, track: str | int | None) -> Melody:
    name, raw_notes = _choose_track(path, source.tracks, track)
    try:
        meter, meter_changes = _meter_map(source)
        return melody_from_notes(raw_notes, source.ticks_per_beat, meter, _tempo_map(source),
                                 source.key, name, meter_changes)
    except BadInputError as err:  # the same error, now naming the file
        raise type(err)(f"{path.name}: {err}") from err


def melody_from_notes(
    raw_notes: Sequence[Note], ticks_per_beat: int, meter: Meter,
    tempo_changes: tuple[tuple[int, int], ...], key: Key | None = None, name: str = "Melody",
    meter_changes: tuple[tuple[int, Meter], ...] = (),
) -> Melody:
    """A checked Melody from notes however they arrived (file, DAW clip): top line, limits."""
    _check_tempos(tempo_changes)
    for note in raw_notes:  # the grid keeps pitches as int16 and starts at tick 0
        if not 0 <= note.pitch <= 127 or note.start_tick < 0 or note.duration_tick <= 0:
            raise BadInputError(
                f"note {note.pitch} at tick {note.start_tick} lasting {note.duration_tick} "
                "ticks is not a MIDI note (pitch 0-127, tick >= 0, length > 0)"
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
    bpm = tempo_bpm(tempo_changes[0][1]) if tempo_changes else 120.0
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
