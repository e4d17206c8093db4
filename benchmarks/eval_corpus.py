"""The fixed held-out evaluation corpus: POP909 songs and Nottingham tunes with their human chords.

Only songs `engine.library.datasets.is_held_out` marks are read, so nothing here overlaps a
template library or a training set. Each item carries what the harmonizer may be given (key,
phrase string, pickup) and what it is judged against (the human chord track); the corpora are
read in place from the shared data folder, never copied.

Choices made here (see `load_pop909_song` / `load_nottingham_tune` for details):
- Human chords are re-voiced in close position, pitch class pc at MIDI 48 + pc, one chord per
  annotation span: the metrics only see pitch classes, and the baseline is voiced the same way.
- Songs that modulate (POP909: several keys in analyzed_key.txt; Nottingham: several key
  signatures) are skipped: every system under test is given a single key.
- Melodies carry no key signature, so "auto" harmonization cannot read the answer off the file.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import mido

from engine.analysis.key import parse_key
from engine.analysis.meter_grid import first_downbeat
from engine.errors import BadInputError
from engine.library.datasets import is_held_out, shared_data_dir
from engine.meter_sections import phrase_spans
from engine.types import SUPPORTED_METERS, HarmonizeOptions, Key, Melody, Meter, Note, Variant

TICKS_PER_BEAT = 480
TICKS_PER_16TH = TICKS_PER_BEAT // 4
CHORD_BASE_PITCH = 48  # close position: pitch class pc is voiced at 48 + pc (C3..B3)
BASS_PITCH = 36  # the chord's bass (annotated or lowest note) an octave under it
NOTTINGHAM_PHRASE_BARS = 8
DEFAULT_POP909_LIMIT = 30
DEFAULT_NOTTINGHAM_LIMIT = 30
POP909 = "pop909"
NOTTINGHAM = "nottingham"

_PHRASE_RE = re.compile(r"([A-Za-z])(\d+)")
_CHORD_LINE_RE = re.compile(r"^(\S+)\s*\[([^\]]*)\]\s*(.*)$")


class CorpusSkip(ValueError):
    """A held-out song that cannot serve as an evaluation item; the message says why."""


@dataclass(frozen=True)
class EvalItem:
    """One held-out piece: the melody to harmonize, the facts it may be given, the human chords.

    Times are 16ths from tick 0 of `melody` (480 ticks per beat). The judged span runs from
    `downbeat_16th` (the first bar line of the given phrases) to `end_16th` (their last bar line).
    """

    dataset: str
    song_id: str
    melody: Melody
    human_chords: tuple[Note, ...]
    key: Key
    phrases: str
    pickup_16th: int
    downbeat_16th: int
    end_16th: int
    # Melody notes left out (POP909 only, see `load_pop909_song`): an instrumental intro before
    # the first vocal phrase, or a few notes after the last labelled bar line.
    dropped_notes: int = 0

    @property
    def name(self) -> str:
        return f"{self.dataset}/{self.song_id}"

    @property
    def meter(self) -> Meter:
        return self.melody.meter

    def given_options(self, variant: Variant = "ours") -> HarmonizeOptions:
        """Harmonizer options with this item's key, phrases and pickup given, as a user would."""
        return HarmonizeOptions(
            key=self.key, phrases=self.phrases, pickup_16th=self.pickup_16th, variant=variant
        )


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str


@dataclass(frozen=True)
class EvalCorpus:
    items: tuple[EvalItem, ...]
    skipped: tuple[Skipped, ...]  # every held-out song that could not be used, with the reason

    def skip_reasons(self) -> Counter[str]:
        return Counter(s.reason for s in self.skipped)


def close_voicing(
    pitch_classes: Iterable[int], start_tick: int, duration_tick: int, bass_pc: int | None = None
) -> list[Note]:
    """One chord as notes at MIDI 48 + pc, over its bass at 36 + bass_pc when one is given:
    enough for pitch-class metrics and for naming the chord (root from tones and bass)."""
    bass = [] if bass_pc is None else [Note(BASS_PITCH + bass_pc % 12, start_tick, duration_tick)]
    return bass + [
        Note(CHORD_BASE_PITCH + pc, start_tick, duration_tick)
        for pc in sorted({p % 12 for p in pitch_classes})
    ]


def held_out_ids(dataset: str, data_dir: Path | None = None) -> list[str]:
    """Sorted ids of the held-out songs of one corpus (empty when the data is absent)."""
    root = data_dir or shared_data_dir()
    if root is None:
        return []
    if dataset == POP909:
        folder = root / "pop909-structure"
        ids = [p.name for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []
    elif dataset == NOTTINGHAM:
        folder = root / "nottingham" / "melody"
        ids = [p.stem for p in folder.glob("*.mid")] if folder.is_dir() else []
    else:
        raise ValueError(f"unknown dataset {dataset!r}; use {POP909!r} or {NOTTINGHAM!r}")
    return sorted(i for i in ids if is_held_out(dataset, i))


def load_eval_corpus(
    pop909_limit: int | None = DEFAULT_POP909_LIMIT,
    nottingham_limit: int | None = DEFAULT_NOTTINGHAM_LIMIT,
    data_dir: Path | None = None,
) -> EvalCorpus:
    """Load the held-out songs and pick `limit` of each corpus (None: all of them).

    Every held-out song is read so the skip counts describe the whole split; the pick is evenly
    spaced over the sorted usable ids, so a small limit still spans the corpus (Nottingham's
    sorted names would otherwise give only jigs).
    """
    root = data_dir or shared_data_dir()
    if root is None:
        return EvalCorpus((), ())
    items: list[EvalItem] = []
    skipped: list[Skipped] = []
    loaders = (
        (POP909, pop909_limit, lambda i: load_pop909_song(root / "pop909-structure" / i)),
        (NOTTINGHAM, nottingham_limit, lambda i: load_nottingham_tune(root / "nottingham", i)),
    )
    for dataset, limit, load in loaders:
        usable: list[EvalItem] = []
        for song_id in held_out_ids(dataset, root):
            try:
                usable.append(load(song_id))
            except CorpusSkip as err:
                skipped.append(Skipped(f"{dataset}/{song_id}", str(err)))
        items += _evenly_spaced(usable, limit)
    return EvalCorpus(tuple(items), tuple(skipped))


def _evenly_spaced(items: Sequence[EvalItem], limit: int | None) -> list[EvalItem]:
    if limit is None or limit >= len(items):
        return list(items)
    return [items[k * len(items) // limit] for k in range(limit)]


# ------------------------------------------------------------------------------------ POP909


def load_pop909_song(song_dir: Path) -> EvalItem:
    """One pop909-structure song (4/4 or 3/4, bar lines every bar from step 0).

    The given phrases are human_label1.txt from the first vocal (upper-case) phrase to the last
    phrase holding melody, that one cut at the bar holding the melody's end. The harmonizer
    starts phrase 1 at the melody's first downbeat (`first_downbeat`), so the two must coincide:
    - melody notes before the half bar preceding the first vocal phrase belong to an instrumental
      intro and are dropped (an upbeat in that half bar stays: it leads into the phrase), and so
      are the few notes some songs have after the last labelled bar line;
    - if the first downbeat still differs from the first vocal bar (the singer enters late in
      the phrase's first bar, which reads as an upbeat) the song is skipped.
    Lower-case (non-vocal) phrases inside that span become upper-case letters no vocal phrase
    uses, so an instrumental `b` is not mistaken for a repeat of the vocal `B`.
    """
    song_id = song_dir.name
    key = _pop909_key(song_dir / "analyzed_key.txt")
    phrases = _pop909_phrases(song_dir / "human_label1.txt")
    total_bars = sum(bars for _, bars in phrases)
    human_chords, chord_beats = _pop909_chords(song_dir / "finalized_chord.txt")
    meter = _pop909_meter(chord_beats, total_bars)
    bar = meter.sixteenths_per_bar
    spans = _pop909_melody(song_dir / "melody.txt")
    if not spans:
        raise CorpusSkip("melody.txt has no notes")
    # A few final notes may run past the last labelled bar line: cut them there.
    labelled_end = total_bars * bar
    spans = [(start, min(end, labelled_end), pitch) for start, end, pitch in spans]
    starts = [sum(bars for _, bars in phrases[:i]) for i in range(len(phrases))]
    vocal = next((i for i, (label, _) in enumerate(phrases) if label.isupper()), None)
    if vocal is None:
        raise CorpusSkip("no vocal (upper-case) phrase in human_label1.txt")
    vocal_16th = starts[vocal] * bar
    kept = [s for s in spans if vocal_16th - bar // 2 <= s[0] < labelled_end]
    if not kept:
        raise CorpusSkip("no melody from the first vocal phrase on")
    melody = _melody(
        [_note(pitch, start, end) for start, end, pitch in kept],
        meter,
        tempo_bpm=_pop909_tempo(song_dir / "tempo.txt"),
    )
    downbeat = first_downbeat(melody, 0)
    if downbeat != vocal_16th:
        raise CorpusSkip("first vocal phrase does not start at the melody's first downbeat")
    melody_end = max(end for _, end, _ in kept)
    last = max(i for i in range(len(phrases)) if starts[i] * bar < melody_end)
    if last < vocal:
        raise CorpusSkip("no melody inside the vocal phrases")
    # The last phrase may run on past the melody's end (a held final chord, an outro): cut it at
    # the bar holding the melody's end, so the harmonizer is given exactly the melody's bars and
    # nobody is judged on chords over trailing silence.
    given = phrases[vocal : last + 1]
    melody_bars = math.ceil((melody_end - downbeat) / bar)
    given[-1] = (given[-1][0], melody_bars - sum(bars for _, bars in given[:-1]))
    return EvalItem(
        dataset=POP909,
        song_id=song_id,
        melody=melody,
        human_chords=tuple(human_chords),
        key=key,
        phrases=_upper_case_labels(given),
        pickup_16th=0,
        downbeat_16th=downbeat,
        end_16th=downbeat + sum(bars for _, bars in given) * bar,
        dropped_notes=len(spans) - len(kept),
    )


def _pop909_key(path: Path) -> Key:
    keys = {line.strip() for line in _read_lines(path) if line.strip()}
    if not keys:
        raise CorpusSkip("analyzed_key.txt is empty")
    if len(keys) > 1:
        raise CorpusSkip("modulates (several keys)")
    return _parse_key(keys.pop())


def _pop909_phrases(path: Path) -> list[tuple[str, int]]:
    text = "".join(_read_lines(path)).strip()
    phrases = [(m.group(1), int(m.group(2))) for m in _PHRASE_RE.finditer(text)]
    if not phrases or "".join(m.group(0) for m in _PHRASE_RE.finditer(text)) != text:
        raise CorpusSkip(f"unreadable phrase labels {text!r}")
    return phrases


def _pop909_melody(path: Path) -> list[tuple[int, int, int]]:
    """(start, end, pitch) in 16ths from melody.txt's (pitch, duration) pairs; pitch 0 = rest."""
    spans = []
    cursor = 0
    for line in _read_lines(path):
        fields = line.split()
        if not fields:
            continue
        try:
            pitch, duration = int(fields[0]), int(fields[1])
        except (ValueError, IndexError) as err:
            raise CorpusSkip(f"bad melody line {line!r}") from err
        if pitch > 0:
            spans.append((cursor, cursor + duration, pitch))
        cursor += duration
    return spans


def _pop909_meter(chord_beats: int, total_bars: int) -> Meter:
    """4/4, or 3/4 where the chord file's length fits 3 beats a bar better (as the library
    builder decides): the chords are bar-aligned and within two bars of the labelled length."""
    beats_per_bar = min((4, 3), key=lambda beats: abs(chord_beats - total_bars * beats))
    if abs(chord_beats - total_bars * beats_per_bar) > 2 * beats_per_bar:
        raise CorpusSkip("chord length does not match the phrase labels in 4/4 or 3/4")
    return Meter(beats_per_bar, 4)


def _pop909_chords(path: Path) -> tuple[list[Note], int]:
    """Chord notes and the length in beats of finalized_chord.txt.

    Each line is `label [tones] bass beats` (the bass pc: the root unless the label has a
    slash), laid end to end from beat 0; N = no chord."""
    notes: list[Note] = []
    beat = 0
    for line in _read_lines(path):
        match = _CHORD_LINE_RE.match(line.strip())
        if match is None:
            if line.strip():
                raise CorpusSkip(f"bad chord line {line!r}")
            continue
        label, tones, rest = match.groups()
        try:
            fields = rest.split()
            beats = int(fields[-1])
            bass = int(fields[-2]) if len(fields) > 1 else None
            pcs = [int(t) for t in tones.split(",") if t.strip()]
        except (ValueError, IndexError) as err:
            raise CorpusSkip(f"bad chord line {line!r}") from err
        if label != "N" and pcs:
            notes += close_voicing(pcs, beat * TICKS_PER_BEAT, beats * TICKS_PER_BEAT, bass)
        beat += beats
    if not notes:
        raise CorpusSkip("finalized_chord.txt has no chords")
    return notes, beat


def _pop909_tempo(path: Path) -> float:
    try:
        return float(_read_lines(path)[0].split()[0])
    except (CorpusSkip, IndexError, ValueError):
        return 120.0  # tempo only matters for listening, not for any metric


def _upper_case_labels(phrases: Sequence[tuple[str, int]]) -> str:
    """Phrase string with lower-case labels mapped to upper-case letters no vocal phrase uses."""
    used = {label for label, _ in phrases if label.isupper()}
    mapping: dict[str, str] = {}
    for label, _ in phrases:
        if label.islower() and label not in mapping:
            letter = label.upper()
            if letter in used:
                letter = next(c for c in map(chr, range(ord("A"), ord("Z") + 1)) if c not in used)
            mapping[label] = letter
            used.add(letter)
    return "".join(f"{mapping.get(label, label)}{bars}" for label, bars in phrases)


# -------------------------------------------------------------------------------- Nottingham


def load_nottingham_tune(folder: Path, name: str) -> EvalItem:
    """One Nottingham tune: melody/NAME.mid and chords/NAME.mid (one track each, bar-aligned).

    The MIDI files pad a pickup to a full bar, so bar lines fall every bar from tick 0 and the
    pickup notes sit in the second half of bar 0. The given phrases are regular 8-bar phrases
    from the first downbeat to the bar holding the melody's end, the last one shorter.

    The key signature gives the tonic of a major key (these files never mark minor); when the
    final chord is the minor triad on its relative minor, the tune is taken as minor.

    A tune whose meter changes (2/4 -> 6/8, 6/8 <-> 9/8 …) gets its 8-bar phrases per meter
    section, from the section's first bar line, as the harmonizer splits it
    (engine.meter_sections); `meter` is then the first meter, `melody.meter_changes` the rest.
    """
    melody_file = _read_midi(folder / "melody" / f"{name}.mid")
    chord_file = _read_midi(folder / "chords" / f"{name}.mid")
    scale = TICKS_PER_BEAT / melody_file.ticks_per_beat
    meter, meter_changes = _nottingham_meters(melody_file, scale)
    melody_notes = [_rescaled(n, scale) for n in _midi_notes(melody_file)]
    chord_scale = TICKS_PER_BEAT / chord_file.ticks_per_beat
    chords = _block_chords(_rescaled(n, chord_scale) for n in _midi_notes(chord_file))
    if not melody_notes or not chords:
        raise CorpusSkip("no melody or no chords")
    melody = _melody(melody_notes, meter, tempo_bpm=_midi_tempo(melody_file))
    key = _nottingham_key(melody_file, chords[-1][1])
    if meter_changes:
        return _sectioned_tune(name, replace(melody, meter_changes=meter_changes), chords, key)
    bar = meter.sixteenths_per_bar
    downbeat = first_downbeat(melody, 0)
    melody_end = math.ceil(melody.end_tick / TICKS_PER_16TH)
    bars = math.ceil((melody_end - downbeat) / bar)
    if bars < 1:
        raise CorpusSkip("no full bar of melody after the first downbeat")
    full, rest = divmod(bars, NOTTINGHAM_PHRASE_BARS)
    phrases = f"A{NOTTINGHAM_PHRASE_BARS}" * full + (f"A{rest}" if rest else "")
    return _nottingham_item(name, melody, chords, key, phrases, downbeat, downbeat + bars * bar)


def _nottingham_item(
    name: str, melody: Melody, chords: Sequence[tuple[int, frozenset[int], int, int]], key: Key,
    phrases: str, downbeat_16th: int, end_16th: int,
) -> EvalItem:
    """The evaluation item of one Nottingham tune, its chords voiced over their bass."""
    return EvalItem(
        dataset=NOTTINGHAM,
        song_id=name,
        melody=melody,
        human_chords=tuple(
            n for start, pcs, length, bass in chords
            for n in close_voicing(pcs, start, length, bass)
        ),
        key=key,
        phrases=phrases,
        pickup_16th=0,
        downbeat_16th=downbeat_16th,
        end_16th=end_16th,
    )


def _sectioned_tune(
    name: str, melody: Melody, chords: Sequence[tuple[int, frozenset[int], int, int]], key: Key
) -> EvalItem:
    """A Nottingham tune whose meter changes: regular 8-bar phrases in every meter section."""
    spans = phrase_spans(melody, 0)
    if not any(bars for _, bars in spans):
        raise CorpusSkip("no full bar of melody after the first downbeat")
    phrases = "".join(
        f"A{NOTTINGHAM_PHRASE_BARS}" * (bars // NOTTINGHAM_PHRASE_BARS)
        + (f"A{bars % NOTTINGHAM_PHRASE_BARS}" if bars % NOTTINGHAM_PHRASE_BARS else "")
        for _, bars in spans
    )
    last_start, last_bars = spans[-1]
    last_meter = melody.meter_changes[-1][1]
    return _nottingham_item(name, melody, chords, key, phrases, spans[0][0],
                            last_start + last_bars * last_meter.sixteenths_per_bar)


def _read_midi(path: Path) -> mido.MidiFile:
    if not path.is_file():
        raise CorpusSkip(f"missing {path.parent.name}/{path.name}")
    try:
        return mido.MidiFile(path)
    except (OSError, ValueError, EOFError) as err:
        raise CorpusSkip(f"unreadable {path.name}: {err}") from err


def _midi_notes(midi: mido.MidiFile) -> list[Note]:
    """Notes in file ticks; a note_on without its note_off is dropped."""
    sounding: dict[tuple[int, int], list[tuple[int, int]]] = {}
    notes = []
    tick = 0
    for msg in mido.merge_tracks(midi.tracks):
        tick += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            sounding.setdefault((msg.channel, msg.note), []).append((tick, msg.velocity))
        elif msg.type in ("note_on", "note_off") and sounding.get((msg.channel, msg.note)):
            start, velocity = sounding[(msg.channel, msg.note)].pop(0)
            if tick > start:
                notes.append(Note(msg.note, start, tick - start, velocity))
    return sorted(notes, key=lambda n: (n.start_tick, n.pitch))


def _meta(midi: mido.MidiFile, kind: str) -> list[mido.MetaMessage]:
    return [m for m in mido.merge_tracks(midi.tracks) if m.type == kind]


def _nottingham_meters(
    midi: mido.MidiFile, scale: float
) -> tuple[Meter, tuple[tuple[int, Meter], ...]]:
    """The meter at tick 0 and every later change (tick rescaled to TICKS_PER_BEAT)."""
    by_tick: dict[int, tuple[int, int]] = {}
    tick = 0
    for message in mido.merge_tracks(midi.tracks):
        tick += message.time
        if message.type == "time_signature":
            by_tick[round(tick * scale)] = (message.numerator, message.denominator)
    if not by_tick:
        raise CorpusSkip("no time signature")
    meters: list[tuple[int, Meter]] = []
    for at, signature in sorted(by_tick.items()):
        if signature not in SUPPORTED_METERS:
            raise CorpusSkip(f"unsupported meter {signature[0]}/{signature[1]}")
        if not meters or meters[-1][1] != Meter(*signature):
            meters.append((at, Meter(*signature)))
    return meters[0][1], tuple(meters[1:])


def _nottingham_key(midi: mido.MidiFile, final_chord: frozenset[int]) -> Key:
    names = {m.key for m in _meta(midi, "key_signature")}
    if len(names) != 1:
        raise CorpusSkip("modulates (several key signatures)" if names else "no key signature")
    key = _parse_key(names.pop())
    relative_minor = (key.tonic_pc + 9) % 12
    minor_tonic_triad = frozenset({relative_minor, (relative_minor + 3) % 12,
                                   (relative_minor + 7) % 12})
    if key.mode == "major" and final_chord == minor_tonic_triad:
        return Key(relative_minor, "minor")
    return key


def _midi_tempo(midi: mido.MidiFile) -> float:
    tempos = _meta(midi, "set_tempo")
    return mido.tempo2bpm(tempos[0].tempo) if tempos else 120.0


def _block_chords(notes: Iterable[Note]) -> list[tuple[int, frozenset[int], int, int]]:
    """(start tick, pitch classes, duration, bass pc) per chord: notes struck together form one
    chord, its lowest note the bass."""
    by_start: dict[int, list[Note]] = {}
    for note in notes:
        by_start.setdefault(note.start_tick, []).append(note)
    return [
        (start, frozenset(n.pitch % 12 for n in group), max(n.duration_tick for n in group),
         min(n.pitch for n in group) % 12)
        for start, group in sorted(by_start.items())
    ]


def _rescaled(note: Note, scale: float) -> Note:
    start = round(note.start_tick * scale)
    end = round(note.end_tick * scale)
    return Note(note.pitch, start, max(1, end - start), note.velocity)


# ---------------------------------------------------------------------------------- shared


def _note(pitch: int, start_16th: int, end_16th: int) -> Note:
    return Note(pitch, start_16th * TICKS_PER_16TH, (end_16th - start_16th) * TICKS_PER_16TH)


def _melody(notes: Sequence[Note], meter: Meter, tempo_bpm: float) -> Melody:
    return Melody(
        notes=tuple(notes),
        ticks_per_beat=TICKS_PER_BEAT,
        meter=meter,
        tempo_bpm=tempo_bpm,
        tempo_changes=((0, round(mido.bpm2tempo(tempo_bpm))),),
    )


def _parse_key(text: str) -> Key:
    try:
        return parse_key(text)
    except BadInputError as err:
        raise CorpusSkip(f"unreadable key {text!r}") from err


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise CorpusSkip(f"missing {path.name}") from err
