"""Reads one POP909 song (MIDI + beat/chord/key files, optionally its pop909-structure labels)
onto the bar-aligned 16th grid of pop909-structure. The texture-library importer and benchmarks
read POP909 through here; nothing is kept in the repository.

The grid (why it is not simply "MIDI beat 0"):
- MIDI seconds -> 16ths: `beat_midi.txt` gives the time of every beat; a time maps to its
  fractional beat index by linear interpolation between beats (extrapolated with the first/last
  beat interval outside them), times 4 sixteenths per beat, rounded.
- pop909-structure re-aligned the bars by hand ("deleted the wrong offsets" in its README): its
  16th 0 is a bar line that need not be the first downbeat `beat_midi.txt` flags, and in about a
  fifth of the songs it dropped a few beats inside the song too (mostly two beats: a 2/4 bar of
  the original that broke the 4/4 bar grid). So the MIDI grid is matched to `melody.txt`: every
  structure melody onset votes for the offsets (MIDI 16th − structure 16th) at which the MIDI
  MELODY track has an onset of the same pitch, and a small Viterbi over the structure notes picks
  a non-decreasing, piecewise-constant offset (a switch costs `SWITCH_PENALTY` notes' worth;
  `pop909_alignment`).
  Each offset change is a seam: MIDI time between the two offsets is dropped (it is the deleted
  beats); the seam is placed on a bar line in the melody gap, a phrase boundary if there is one.
  Checked over the corpus: 883 of the 903 songs then agree with `melody.txt` on >= 95% of the
  onsets (within one 16th; with one global offset only 719 did), 15 fall below `MIN_ALIGNMENT`
  and are refused with that figure in the message; shifting the aligned accompaniment by a beat
  either way fits the chord file worse in all but 17 songs (the importer drops those).
- Without the structure folder the grid starts at the first downbeat `beat_midi.txt` flags (which
  can be half a bar off), chords come from `chord_midi.txt` sampled at each beat and the key from
  `key_audio.txt`; there are no phrases.

Other facts of the data, checked over the corpus:
- Meter: column 2 of `beat_midi.txt` flags every 2nd beat in 4/4 songs (column 3 every 4th, the
  bar) and every 3rd beat in 29 waltz-time songs (3/4). Nothing else occurs. Two of those 29
  (328, 624) have 4-beat bars by their chord file and labels; the chord-length check refuses them.
- Accompaniment = PIANO + BRIDGE, as in AccoMontage §3.3 (the BRIDGE track is the secondary
  melody/counter-line, played by the piano in the arrangements); `bridge` is also kept alone.
- Sustain pedal: CC64 is in the PIANO track of 827 of the 903 songs, the BRIDGE track of 197
  and the MELODY track of 78. `pedal` is the union of the PIANO and BRIDGE pedal-down spans
  (the accompaniment's pedal); the MELODY's is ignored.
- `finalized_chord.txt`: the number after the tone list is the BASS pitch class (it differs from
  the label's root on slash chords); chroma and root come from the label, like the chord-template
  builder (the tone column is wrong for some 7th chords), falling back to the tone list.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.build.pop909_alignment import (
    NOTE_COLUMNS,
    AlignmentSegment,
    align_to_structure,
    notes_on_grid,
    spans_on_grid,
)
from engine.errors import BadInputError, MidiFileError
from engine.library.chord_labels import (
    QUALITY_INTERVALS,
    note_name_pc,
    parse_pop909_label,
)
from engine.midi_io import open_midi_file
from engine.types import Key, Meter, Phrase

MELODY_TRACK = "MELODY"
BRIDGE_TRACK = "BRIDGE"
PIANO_TRACK = "PIANO"
SUSTAIN_CONTROL = 64
MIN_ALIGNMENT = 0.9  # share of melody.txt onsets matched, below which a song is refused
# The chord file may run this many bars longer or shorter than the labelled phrases.
CHORD_SLACK_BARS = 2

_PHRASE_RE = re.compile(r"([A-Za-z])(\d+)")
_KEY_RE = re.compile(r"([A-G][#b]?):(maj|min)")


@dataclass(frozen=True, eq=False)
class Pop909Song:
    """One POP909 song on the structure's bar grid: 16th 0 is its first bar line.

    Note arrays are int32 rows (onset_16th, pitch, duration_16th, velocity) sorted by onset;
    notes before 16th 0 or in beats the structure deleted are dropped. Chords are per beat of
    the structure's chord file (`finalized_chord.txt`): root and bass pitch class (-1 = no chord)
    and a (beats, 12) bool chroma."""

    song_id: str
    meter: Meter
    melody: np.ndarray
    piano: np.ndarray  # PIANO + BRIDGE, the accompaniment of AccoMontage §3.3
    bridge: np.ndarray
    pedal: np.ndarray  # (n, 2) int32 sustain-down spans (start_16th, end_16th)
    chord_roots: np.ndarray  # (beats,) int8
    chord_bass: np.ndarray  # (beats,) int8
    chord_chroma: np.ndarray  # (beats, 12) bool
    phrases: tuple[Phrase, ...]  # human_label1.txt; empty without the structure folder
    keys: tuple[Key, ...]  # in order of appearance (several when the song modulates)
    structure_melody: np.ndarray  # melody.txt as note rows (velocity 0); empty without it
    alignment: tuple[AlignmentSegment, ...]
    alignment_match: float  # share of melody.txt onsets matched; nan without the structure

    @property
    def beats_per_bar(self) -> int:
        return self.meter.numerator

    @property
    def bar_16th(self) -> int:
        return self.meter.sixteenths_per_bar

    @property
    def length_16th(self) -> int:
        """End of the last melody or piano note."""
        ends = [int((a[:, 0] + a[:, 2]).max()) for a in (self.melody, self.piano) if len(a)]
        return max(ends, default=0)


# ------------------------------------------------------------------------------------- reading


def read_pop909_song(song_dir: Path, structure_dir: Path | None = None) -> Pop909Song:
    """Read POP909 `song_dir` (NNN/NNN.mid, beat_midi.txt, …) and, when `structure_dir` is given,
    the pop909-structure folder of the same song (a folder holding NNN/, or NNN/ itself).

    Raises MidiFileError for an unreadable MIDI file and BadInputError (naming the file) for
    missing or inconsistent annotation files."""
    song_dir = Path(song_dir)
    song_id = song_dir.name
    beat_times, beats_per_bar, downbeats = _read_beats(song_dir / "beat_midi.txt")
    meter = Meter(beats_per_bar, 4)
    tracks, pedals = _read_midi(song_dir / f"{song_id}.mid")
    pedal_sec = _union(
        np.concatenate([pedals.get(name, np.zeros((0, 2))) for name in (PIANO_TRACK, BRIDGE_TRACK)])
    )
    for name in (MELODY_TRACK, PIANO_TRACK):
        if name not in tracks:
            raise MidiFileError(f"{song_dir / f'{song_id}.mid'}: no {name} track")
    to_16th = _BeatGrid(beat_times)
    midi_melody = _notes_16th(tracks[MELODY_TRACK], to_16th)
    midi_piano = _notes_16th(tracks[PIANO_TRACK], to_16th)
    midi_bridge = _notes_16th(tracks.get(BRIDGE_TRACK, np.zeros((0, 4))), to_16th)

    if structure_dir is None:
        first_bar = int(downbeats[0]) * 4 if len(downbeats) else 0
        alignment: tuple[AlignmentSegment, ...] = (AlignmentSegment(0, first_bar),)
        match = float("nan")
        phrases: tuple[Phrase, ...] = ()
        structure_melody = np.zeros((0, NOTE_COLUMNS), dtype=np.int32)
        keys = _read_keys(song_dir / "key_audio.txt")
        roots, bass, chroma = _chords_from_midi_labels(
            song_dir / "chord_midi.txt", beat_times, first_bar // 4
        )
    else:
        folder = Path(structure_dir)
        if folder.name != song_id:
            folder = folder / song_id
        phrases = _read_phrases(folder / "human_label1.txt")
        structure_melody = _read_structure_melody(folder / "melody.txt")
        keys = _read_keys(folder / "analyzed_key.txt")
        roots, bass, chroma = _read_finalized_chords(folder / "finalized_chord.txt")
        _check_chord_length(folder, len(roots), phrases, beats_per_bar)
        bar_16th = meter.sixteenths_per_bar
        boundaries = {p.start_bar * bar_16th for p in phrases}
        alignment, match = align_to_structure(
            midi_melody[:, :2], structure_melody[:, :3], bar_16th, boundaries
        )
        if match < MIN_ALIGNMENT:
            raise BadInputError(
                f"{song_dir / f'{song_id}.mid'}: the MELODY track agrees with "
                f"{folder / 'melody.txt'} on only {match:.1%} of the onsets "
                f"(at least {MIN_ALIGNMENT:.0%} needed)"
            )

    # merged again on the grid: rounding can make neighbouring spans touch
    pedal = _union(spans_on_grid(to_16th(pedal_sec), alignment)) if len(pedal_sec) else pedal_sec
    song = Pop909Song(
        song_id=song_id,
        meter=meter,
        melody=notes_on_grid(midi_melody, alignment),
        piano=notes_on_grid(np.concatenate([midi_piano, midi_bridge]), alignment),
        bridge=notes_on_grid(midi_bridge, alignment),
        pedal=pedal.astype(np.int32).reshape(-1, 2),
        chord_roots=roots,
        chord_bass=bass,
        chord_chroma=chroma,
        phrases=phrases,
        keys=keys,
        structure_melody=structure_melody,
        alignment=alignment,
        alignment_match=match,
    )
    for value in vars(song).values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return song


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError as err:
        raise BadInputError(f"{path}: file not found") from err
    except OSError as err:
        raise BadInputError(f"{path}: cannot be read ({err.strerror or err})") from err


def _read_beats(path: Path) -> tuple[np.ndarray, int, np.ndarray]:
    """beat_midi.txt -> (beat times in seconds, beats per bar, indices of the bar downbeats)."""
    rows: list[list[float]] = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            values = [float(x) for x in line.split()]
        except ValueError as err:
            raise BadInputError(f"{path}:{number}: not a number in {line.strip()!r}") from err
        if len(values) != 3:
            raise BadInputError(f"{path}:{number}: expected 3 columns, got {len(values)}")
        rows.append(values)
    if len(rows) < 4:
        raise BadInputError(f"{path}: only {len(rows)} beats")
    table = np.array(rows)
    times = table[:, 0]
    if np.any(np.diff(times) <= 0):
        raise BadInputError(f"{path}: beat times do not increase")
    flagged = np.flatnonzero(table[:, 1] > 0.5)
    spacing = np.diff(flagged)
    if len(spacing) == 0:
        raise BadInputError(f"{path}: no downbeats flagged")
    periods, counts = np.unique(spacing, return_counts=True)
    period = int(periods[np.argmax(counts)])
    if period == 2:  # 4/4: column 2 flags half bars, column 3 the bars
        return times, 4, np.flatnonzero(table[:, 2] > 0.5)
    if period == 3:
        return times, 3, flagged
    raise BadInputError(f"{path}: downbeats every {period} beats (only 4/4 and 3/4 are read)")


def _read_midi(path: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per track name (upper case): notes as float rows (start s, end s, pitch, velocity) and
    sustain pedal-down spans (start s, end s)."""
    if not path.is_file():
        raise MidiFileError(f"{path}: file not found")
    try:
        midi = open_midi_file(path, clip=True)
    except (OSError, EOFError, ValueError, KeyError, IndexError, struct.error) as err:
        text = str(err).strip().splitlines()
        reason = text[0] if text else type(err).__name__
        raise MidiFileError(f"{path}: not a readable MIDI file ({reason})") from err
    if midi.ticks_per_beat <= 0:
        raise MidiFileError(f"{path}: SMPTE timing is not supported")
    seconds = _tempo_map(midi)
    tracks: dict[str, np.ndarray] = {}
    pedals: dict[str, np.ndarray] = {}
    for track in midi.tracks:
        rows: list[tuple[int, int, int, int]] = []
        sounding: dict[tuple[int, int], tuple[int, int]] = {}
        down_since: dict[int, int] = {}
        spans: list[tuple[int, int]] = []
        tick = 0
        for message in track:
            tick += message.time
            kind = message.type
            if kind == "note_on" or kind == "note_off":
                key = (message.channel, message.note)
                if key in sounding:
                    start, velocity = sounding.pop(key)
                    rows.append((start, tick, message.note, velocity))
                if kind == "note_on" and message.velocity > 0:
                    sounding[key] = (tick, message.velocity)
            elif kind == "control_change" and message.control == SUSTAIN_CONTROL:
                if message.value >= 64:
                    down_since.setdefault(message.channel, tick)
                elif message.channel in down_since:
                    spans.append((down_since.pop(message.channel), tick))
        rows.extend((s, tick, key[1], v) for key, (s, v) in sounding.items())
        spans.extend((s, tick) for s in down_since.values())
        name = track.name.strip().upper()
        for found, table in ((tracks, np.array(rows, dtype=np.float64).reshape(-1, 4)),
                             (pedals, np.array(spans, dtype=np.float64).reshape(-1, 2))):
            if len(table):
                table[:, :2] = seconds(table[:, :2])
                found[name] = np.concatenate([found[name], table]) if name in found else table
    return tracks, pedals


def _union(spans: np.ndarray) -> np.ndarray:
    """Overlapping (start, end) spans merged, sorted."""
    merged: list[list[float]] = []
    for start, end in spans[np.argsort(spans[:, 0], kind="stable")].tolist():
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return np.array(merged, dtype=np.float64).reshape(-1, 2)


def _tempo_map(midi: Any) -> _Seconds:  # a mido.MidiFile
    changes: list[tuple[int, int]] = []
    for track in midi.tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type == "set_tempo":
                changes.append((tick, message.tempo))
    changes.sort()
    if not changes or changes[0][0] > 0:
        changes.insert(0, (0, 500_000))
    return _Seconds(
        np.array([t for t, _ in changes], dtype=np.float64),
        np.array([u for _, u in changes], dtype=np.float64) / 1e6 / midi.ticks_per_beat,
    )


class _Seconds:
    """Tick -> seconds through a tempo map (piecewise linear)."""

    def __init__(self, ticks: np.ndarray, seconds_per_tick: np.ndarray) -> None:
        self.ticks = ticks
        self.rate = seconds_per_tick
        self.start = np.concatenate([[0.0], np.cumsum(np.diff(ticks) * seconds_per_tick[:-1])])

    def __call__(self, ticks: np.ndarray) -> np.ndarray:
        k = np.searchsorted(self.ticks, ticks, side="right") - 1
        return self.start[k] + (ticks - self.ticks[k]) * self.rate[k]


class _BeatGrid:
    """Seconds -> fractional MIDI 16ths through the beat times (4 sixteenths per beat)."""

    def __init__(self, beat_times: np.ndarray) -> None:
        self.times = beat_times
        self.first = beat_times[1] - beat_times[0]
        self.last = beat_times[-1] - beat_times[-2]

    def __call__(self, seconds: np.ndarray) -> np.ndarray:
        times = self.times
        beat = np.interp(seconds, times, np.arange(len(times), dtype=np.float64))
        before, after = seconds < times[0], seconds > times[-1]
        beat[before] = (seconds[before] - times[0]) / self.first
        beat[after] = len(times) - 1 + (seconds[after] - times[-1]) / self.last
        return beat * 4.0


def _notes_16th(table: np.ndarray, to_16th: _BeatGrid) -> np.ndarray:
    """(start s, end s, pitch, velocity) rows -> int note rows on the MIDI grid, every note at
    least one 16th long."""
    if len(table) == 0:
        return np.zeros((0, NOTE_COLUMNS), dtype=np.int64)
    onset = np.rint(to_16th(table[:, 0])).astype(np.int64)
    end = np.rint(to_16th(table[:, 1])).astype(np.int64)
    return np.stack([onset, table[:, 2].astype(np.int64), np.maximum(end - onset, 1),
                     table[:, 3].astype(np.int64)], axis=1)


# ------------------------------------------------------------------------ annotation files


def _read_phrases(path: Path) -> tuple[Phrase, ...]:
    """human_label1.txt ('i4A4B8…') -> consecutive phrases from bar 0."""
    text = _read_text(path).strip()
    parts = _PHRASE_RE.findall(text)
    if not parts or _PHRASE_RE.sub("", text).strip():
        raise BadInputError(f"{path}: unreadable phrase labels {text[:40]!r}")
    phrases: list[Phrase] = []
    bar = 0
    for letter, count in parts:
        bars = int(count)
        if bars <= 0:
            raise BadInputError(f"{path}: phrase {letter}{count} has no bars")
        phrases.append(Phrase(letter, bar, bars))
        bar += bars
    return tuple(phrases)


def _read_structure_melody(path: Path) -> np.ndarray:
    """melody.txt (pitch, duration in 16ths; pitch 0 = rest) -> note rows with velocity 0."""
    rows: list[tuple[int, int, int, int]] = []
    position = 0
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            pitch, duration = (int(x) for x in line.split())
        except ValueError as err:
            raise BadInputError(f"{path}:{number}: expected 'pitch duration'") from err
        if duration <= 0 or not 0 <= pitch < 128:
            raise BadInputError(f"{path}:{number}: pitch {pitch} / duration {duration}")
        if pitch > 0:
            rows.append((position, pitch, duration, 0))
        position += duration
    if not rows:
        raise BadInputError(f"{path}: no melody notes")
    return np.array(rows, dtype=np.int32)


def _read_keys(path: Path) -> tuple[Key, ...]:
    """analyzed_key.txt / key_audio.txt: every 'Tonic:maj|min' in order, neighbours merged."""
    keys: list[Key] = []
    for tonic, mode in _KEY_RE.findall(_read_text(path)):
        key = Key(note_name_pc(tonic), "major" if mode == "maj" else "minor")
        if not keys or keys[-1] != key:
            keys.append(key)
    return tuple(keys)


def _label_chord(label: str) -> tuple[int, int, np.ndarray] | None:
    """A Harte label -> (root pc, bass pc, chroma), None for no chord; BadInputError if unread."""
    chord = parse_pop909_label(label)
    if chord is None:
        return None
    root, quality, bass = chord
    chroma = np.zeros(12, dtype=bool)
    chroma[[(root + i) % 12 for i in QUALITY_INTERVALS[quality]]] = True
    chroma[(root + bass) % 12] = True
    return root, (root + bass) % 12, chroma


def _read_finalized_chords(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """finalized_chord.txt lines 'B:maj/3 [3, 6, 11] 3 2' (label, tones, bass pc, beats) ->
    per-beat roots, basses and chroma."""
    roots: list[int] = []
    basses: list[int] = []
    chromas: list[np.ndarray] = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        label, bracket, rest = line.partition(" [")
        tones_text, _, tail = rest.partition("]")
        fields = tail.split()
        try:
            beats = int(fields[-1])
            tones = [int(t) for t in tones_text.split(",") if t.strip()]
            bass_field = int(fields[0]) if len(fields) > 1 else -1
        except (ValueError, IndexError) as err:
            raise BadInputError(f"{path}:{number}: unreadable chord line {line.strip()!r}") from err
        if not bracket or beats <= 0 or any(not 0 <= t < 12 for t in tones):
            raise BadInputError(f"{path}:{number}: unreadable chord line {line.strip()!r}")
        try:
            chord = _label_chord(label)
        except BadInputError:
            chord = None
            if tones:  # an unknown label: trust the tone list and the bass column
                chroma = np.zeros(12, dtype=bool)
                chroma[tones] = True
                bass = bass_field if 0 <= bass_field < 12 else tones[0]
                chord = (bass, bass, chroma)
        if chord is None:
            root, bass, chroma = -1, -1, np.zeros(12, dtype=bool)
        else:
            root, bass, chroma = chord
        roots.extend([root] * beats)
        basses.extend([bass] * beats)
        chromas.extend([chroma] * beats)
    if not roots:
        raise BadInputError(f"{path}: no chords")
    return (np.array(roots, dtype=np.int8), np.array(basses, dtype=np.int8),
            np.array(chromas, dtype=bool))


def _check_chord_length(
    folder: Path, beats: int, phrases: Sequence[Phrase], beats_per_bar: int
) -> None:
    bars = sum(p.bars for p in phrases)
    if abs(beats - bars * beats_per_bar) > CHORD_SLACK_BARS * beats_per_bar:
        raise BadInputError(
            f"{folder / 'finalized_chord.txt'} lasts {beats} beats but "
            f"{folder / 'human_label1.txt'} has {bars} bars of {beats_per_bar} beats"
        )


def _chords_from_midi_labels(
    path: Path, beat_times: np.ndarray, first_beat: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """chord_midi.txt (start s, end s, label) sampled at the middle of every beat from
    `first_beat` on (the no-structure fallback)."""
    n_beats = max(0, len(beat_times) - first_beat)
    spans: list[tuple[float, float, tuple[int, int, np.ndarray] | None]] = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            start, end = float(fields[0]), float(fields[1])
            chord = _label_chord(fields[2])
        except (ValueError, IndexError, BadInputError) as err:
            raise BadInputError(f"{path}:{number}: unreadable chord line {line.strip()!r}") from err
        spans.append((start, end, chord))
    roots = np.full(n_beats, -1, dtype=np.int8)
    basses = np.full(n_beats, -1, dtype=np.int8)
    chroma = np.zeros((n_beats, 12), dtype=bool)
    if not spans:
        return roots, basses, chroma
    starts = np.array([s for s, _, _ in spans])
    beats = np.arange(first_beat, first_beat + n_beats, dtype=np.float64) + 0.5
    times = np.interp(beats, np.arange(len(beat_times)), beat_times)
    which = np.searchsorted(starts, times, side="right") - 1
    for b, k in enumerate(which):
        chord = spans[k][2] if k >= 0 and times[b] < spans[k][1] else None
        if chord is not None:
            roots[b], basses[b], chroma[b] = chord
    return roots, basses, chroma
