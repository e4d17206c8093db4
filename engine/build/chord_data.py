"""Training data for the learned chord model: melodies on the 16th grid with the human chord of
every 8th-note slot, read from POP909 (pop909-structure) and Nottingham in the span the
harmonizer searches (phrase 1's first downbeat to the last phrase's bar line).

Each human chord is named from what sounds — its pitch classes plus its bass — by
`engine.chord_names.name_chord`, the recogniser the evaluation uses, and stored as an absolute
`chord_table` row (root pitch class · 6 + triad); `ChordSong.rows` makes them key-relative.
The readers follow benchmarks/eval_corpus.py (which engine code may not import) closely enough
that training sees songs as the evaluation does:
- POP909: one key (analyzed_key.txt; modulating songs are skipped), phrases from
  human_label1.txt starting at the first vocal (upper-case) phrase, the last phrase cut at the
  bar holding the melody's end; 4/4 or 3/4 from the chord file's length; chords laid end to end
  from beat 0 (`label [tones] bass beats`).
- Nottingham: melody/NAME.mid + chords/NAME.mid, bar lines every bar from tick 0, phrase 1 at
  `first_downbeat`, regular 8-bar phrases; the key signature's major tonic, minor when the final
  chord is the relative minor triad; several key or time signatures: skipped.
Every song also carries the key `estimate_key` finds from its melody alone (no signature), so
training can show the model the detector's real mistakes.

`python3 -m engine.build.chord_data --out .train/chord_songs.npz` caches the corpus (numpy).
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.analysis.key import estimate_key, parse_key
from engine.analysis.meter_grid import first_downbeat
from engine.chord_names import name_chord
from engine.chords import TRIADS, triad_of
from engine.errors import OptionError
from engine.grid import melody_grid
from engine.library.datasets import is_held_out, shared_data_dir
from engine.library.parallel import map_songs
from engine.types import SUPPORTED_METERS, Key, Melody, Meter, Mode, Note

POP909 = "pop909"
NOTTINGHAM = "nottingham"
DATASETS = (POP909, NOTTINGHAM)
NOTTINGHAM_PHRASE_BARS = 8
TICKS_PER_BEAT = 480
TICKS_PER_16TH = TICKS_PER_BEAT // 4
NO_CHORD = 12 * len(TRIADS)  # = engine.harmonizer.micro.NO_CHORD_ROW (kept import-free)
CHORD_ROWS = NO_CHORD + 1
REST = -1

_PHRASE_RE = re.compile(r"([A-Za-z])(\d+)")
_CHORD_LINE_RE = re.compile(r"^(\S+)\s*\[([^\]]*)\]\s*(.*)$")

# A chord as read: (start 16th, end 16th, pitch classes, bass pc), on the song's own timeline.
ChordSpan = tuple[int, int, frozenset[int], int]


class SongSkip(ValueError):
    """A song that cannot serve as training data; the message says why."""


@dataclass(frozen=True)
class ChordSong:
    """One song on the harmonizer's grid: `pitch_16th` from phrase 1's downbeat (absolute MIDI,
    −1 rest), `chords` one absolute chord row per 8th (root pc · 6 + triad, NO_CHORD)."""

    dataset: str
    song_id: str
    pitch_16th: np.ndarray
    chords: np.ndarray
    key: Key
    auto_key: Key
    sixteenths_per_bar: int
    beat_16th: int
    phrases: tuple[tuple[int, int], ...]  # (start bar, bars)

    @property
    def n_slots(self) -> int:
        return len(self.chords)

    def rows(self, tonic_pc: int | None = None) -> np.ndarray:
        """`chord_table` rows relative to `tonic_pc` (default: the song's key)."""
        return relative_rows(self.chords, self.key.tonic_pc if tonic_pc is None else tonic_pc)


def relative_rows(absolute: np.ndarray, tonic_pc: int) -> np.ndarray:
    """Absolute chord rows (root pc · 6 + triad) to rows relative to `tonic_pc`."""
    absolute = np.asarray(absolute, dtype=np.int64)
    n = len(TRIADS)
    relative = ((absolute // n - tonic_pc) % 12) * n + absolute % n
    return np.where(absolute == NO_CHORD, NO_CHORD, relative)


def chord_rows_per_8th(chords: Iterable[ChordSpan], start_16th: int, n_slots: int) -> np.ndarray:
    """Absolute row of the chord sounding at the first 16th of each 8th from `start_16th`.

    Tones and bass are read as the evaluation reads its close-voiced human chords: every
    sounding chord adds its pitch classes and its bass (overlaps merge), the lowest bass is the
    bass, and `name_chord` names the set."""
    length = n_slots * 2
    tones = np.zeros((length, 12), dtype=bool)
    bass = np.full(length, 12, dtype=np.int64)  # 12: nothing sounds yet
    for begin, end, pcs, bass_pc in chords:
        lo, hi = max(begin - start_16th, 0), min(end - start_16th, length)
        if lo >= hi:
            continue
        for pc in pcs | {bass_pc}:
            tones[lo:hi, pc] = True
        bass[lo:hi] = np.minimum(bass[lo:hi], bass_pc)
    masks = tones[::2].astype(np.int64) @ (1 << np.arange(12))
    rows = np.full(n_slots, NO_CHORD, dtype=np.int16)
    for slot in np.flatnonzero(masks):
        root, quality = name_chord(int(masks[slot]), int(bass[2 * slot]) % 12)
        if root >= 0:
            rows[slot] = root * len(TRIADS) + TRIADS.index(triad_of(quality))
    return rows


def _melody(notes: Sequence[Note], meter: Meter) -> Melody:
    return Melody(notes=tuple(notes), ticks_per_beat=TICKS_PER_BEAT, meter=meter)


def _song(dataset: str, song_id: str, melody: Melody, downbeat: int, bars: Sequence[int],
          chords: Sequence[ChordSpan], key: Key) -> ChordSong:
    meter = melody.meter
    bar = meter.sixteenths_per_bar
    length = sum(bars) * bar
    pitch = melody_grid(melody, downbeat + length)[0][downbeat:].astype(np.int16)
    starts = np.cumsum([0, *bars[:-1]])
    auto_key, _ = estimate_key(melody)
    return ChordSong(
        dataset=dataset, song_id=song_id, pitch_16th=pitch,
        chords=chord_rows_per_8th(chords, downbeat, length // 2), key=key, auto_key=auto_key,
        sixteenths_per_bar=bar, beat_16th=meter.beat_16th,
        phrases=tuple((int(s), int(b)) for s, b in zip(starts, bars, strict=True)),
    )


def _parse_key(text: str) -> Key:
    try:
        return parse_key(text)
    except OptionError as err:
        raise SongSkip(f"unreadable key {text!r}") from err


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise SongSkip(f"missing {path.name}") from err


# ------------------------------------------------------------------------------------ POP909


def read_pop909_song(song_dir: Path) -> ChordSong:
    """One pop909-structure song from its first vocal phrase to the bar holding the melody's end
    (see the module docstring); unlike the evaluation, a late vocal entry is not skipped."""
    keys = {line.strip() for line in _read_lines(song_dir / "analyzed_key.txt") if line.strip()}
    if len(keys) != 1:
        raise SongSkip("modulates (several keys)" if keys else "analyzed_key.txt is empty")
    key = _parse_key(keys.pop())
    text = "".join(_read_lines(song_dir / "human_label1.txt")).strip()
    labels = [(m.group(1), int(m.group(2))) for m in _PHRASE_RE.finditer(text)]
    if not labels or "".join(f"{a}{b}" for a, b in labels) != text:
        raise SongSkip(f"unreadable phrase labels {text!r}")
    chords, chord_beats = _pop909_chords(song_dir / "finalized_chord.txt")
    total_bars = sum(bars for _, bars in labels)
    beats_per_bar = min((4, 3), key=lambda beats: abs(chord_beats - total_bars * beats))
    if abs(chord_beats - total_bars * beats_per_bar) > 2 * beats_per_bar:
        raise SongSkip("chord length does not match the phrase labels in 4/4 or 3/4")
    meter = Meter(beats_per_bar, 4)
    bar = meter.sixteenths_per_bar
    notes: list[Note] = []
    cursor = 0
    for line in _read_lines(song_dir / "melody.txt"):
        fields = line.split()
        if len(fields) < 2:
            continue
        pitch, duration = int(fields[0]), int(fields[1])
        if pitch > 0:
            notes.append(Note(pitch, cursor * TICKS_PER_16TH, duration * TICKS_PER_16TH))
        cursor += duration
    starts = [sum(b for _, b in labels[:i]) for i in range(len(labels))]
    vocal = next((i for i, (label, _) in enumerate(labels) if label.isupper()), None)
    if vocal is None:
        raise SongSkip("no vocal phrase")
    downbeat = starts[vocal] * bar
    labelled_end = total_bars * bar * TICKS_PER_16TH
    kept = [
        Note(n.pitch, n.start_tick, min(n.end_tick, labelled_end) - n.start_tick)
        for n in notes
        if (downbeat - bar // 2) * TICKS_PER_16TH <= n.start_tick < labelled_end
    ]
    if not kept:
        raise SongSkip("no melody from the first vocal phrase on")
    melody_end = max(n.end_tick for n in kept) // TICKS_PER_16TH
    last = max(i for i in range(len(labels)) if starts[i] * bar < melody_end)
    bars = [b for _, b in labels[vocal : last + 1]]
    bars[-1] = math.ceil((melody_end - downbeat) / bar) - sum(bars[:-1])
    if bars[-1] < 1:
        raise SongSkip("melody ends before its last phrase")
    return _song(POP909, song_dir.name, _melody(kept, meter), downbeat, bars, chords, key)


def _pop909_chords(path: Path) -> tuple[list[ChordSpan], int]:
    """Chord spans in 16ths and the file's length in beats (N = no chord)."""
    spans: list[ChordSpan] = []
    beat = 0
    for line in _read_lines(path):
        match = _CHORD_LINE_RE.match(line.strip())
        if match is None:
            if line.strip():
                raise SongSkip(f"bad chord line {line!r}")
            continue
        label, tones, rest = match.groups()
        try:
            bass_field, beats_field = rest.split()[-2:]
            beats, bass = int(beats_field), int(bass_field)
            pcs = frozenset(int(t) % 12 for t in tones.split(",") if t.strip())
        except (ValueError, IndexError) as err:
            raise SongSkip(f"bad chord line {line!r}") from err
        if label != "N" and pcs:
            spans.append((beat * 4, (beat + beats) * 4, pcs, bass % 12))
        beat += beats
    if not spans:
        raise SongSkip("no chords")
    return spans, beat


# -------------------------------------------------------------------------------- Nottingham


def read_nottingham_tune(folder: Path, name: str) -> ChordSong:
    """One Nottingham tune (see the module docstring)."""
    from engine.midi_io import merged_messages, open_midi_file

    try:
        melody_file = open_midi_file(folder / "melody" / f"{name}.mid")
        chord_file = open_midi_file(folder / "chords" / f"{name}.mid")
    except (OSError, ValueError, EOFError) as err:
        raise SongSkip("unreadable MIDI file") from err
    metas = merged_messages(melody_file)
    signatures = {(m.numerator, m.denominator) for m in metas if m.type == "time_signature"}
    if len(signatures) != 1 or next(iter(signatures)) not in SUPPORTED_METERS:
        raise SongSkip(f"meter {sorted(signatures)}")
    meter = Meter(*signatures.pop())
    key_names = {m.key for m in metas if m.type == "key_signature"}
    if len(key_names) != 1:
        raise SongSkip("modulates (several key signatures)" if key_names else "no key")
    melody_notes = _midi_notes(melody_file)
    chord_notes = _midi_notes(chord_file)
    if not melody_notes or not chord_notes:
        raise SongSkip("no melody or no chords")
    groups: dict[int, list[Note]] = {}
    for note in chord_notes:
        groups.setdefault(note.start_tick, []).append(note)
    chords: list[ChordSpan] = [
        (start // TICKS_PER_16TH,
         (start + max(n.duration_tick for n in group)) // TICKS_PER_16TH,
         frozenset(n.pitch % 12 for n in group), min(n.pitch for n in group) % 12)
        for start, group in sorted(groups.items())
    ]
    key = _parse_key(key_names.pop())
    relative_minor = (key.tonic_pc + 9) % 12
    if key.mode == "major" and chords[-1][2] == frozenset(
            {relative_minor, (relative_minor + 3) % 12, (relative_minor + 7) % 12}):
        key = Key(relative_minor, "minor")
    melody = _melody(melody_notes, meter)
    bar = meter.sixteenths_per_bar
    downbeat = first_downbeat(melody, 0)
    melody_end = math.ceil(melody.end_tick / TICKS_PER_16TH)
    total = math.ceil((melody_end - downbeat) / bar)
    if total < 1:
        raise SongSkip("no full bar of melody after the first downbeat")
    full, rest = divmod(total, NOTTINGHAM_PHRASE_BARS)
    bars = [NOTTINGHAM_PHRASE_BARS] * full + ([rest] if rest else [])
    return _song(NOTTINGHAM, name, melody, downbeat, bars, chords, key)


def _midi_notes(midi: Any) -> list[Note]:
    """Notes at 480 ticks a beat; a note_on without its note_off is dropped."""
    from engine.midi_io import merged_messages

    scale = TICKS_PER_BEAT / midi.ticks_per_beat
    sounding: dict[tuple[int, int], list[int]] = {}
    notes = []
    tick = 0
    for msg in merged_messages(midi):
        tick += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            sounding.setdefault((msg.channel, msg.note), []).append(tick)
        elif msg.type in ("note_on", "note_off") and sounding.get((msg.channel, msg.note)):
            start = sounding[(msg.channel, msg.note)].pop(0)
            begin, end = round(start * scale), round(tick * scale)
            if end > begin:
                notes.append(Note(msg.note, begin, end - begin))
    return sorted(notes, key=lambda n: (n.start_tick, n.pitch))


# ---------------------------------------------------------------------------------- corpus


def song_ids(dataset: str, data_dir: Path) -> list[str]:
    if dataset == POP909:
        folder = data_dir / "pop909-structure"
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    folder = data_dir / "nottingham" / "melody"
    return sorted(p.stem for p in folder.glob("*.mid")) if folder.is_dir() else []


def _read(job: tuple[str, str, str]) -> ChordSong | str:
    dataset, song_id, data_dir = job
    try:
        if dataset == POP909:
            return read_pop909_song(Path(data_dir) / "pop909-structure" / song_id)
        return read_nottingham_tune(Path(data_dir) / "nottingham", song_id)
    except SongSkip as err:
        return str(err).split("[")[0].split("'")[0].strip()
    except (ValueError, OSError) as err:  # a bad file is counted, never fatal
        return type(err).__name__


@dataclass(frozen=True)
class ChordCorpus:
    songs: tuple[ChordSong, ...]
    skipped: dict[str, dict[str, int]]  # dataset -> reason -> songs

    def split(self, held_out: bool) -> list[ChordSong]:
        return [s for s in self.songs if is_held_out(s.dataset, s.song_id) == held_out]


def read_corpus(data_dir: Path | None = None, limit: int | None = None) -> ChordCorpus:
    """Every readable song of both corpora (both splits: callers split with `is_held_out`)."""
    root = data_dir or shared_data_dir()
    if root is None:
        return ChordCorpus((), {})
    jobs = [(d, i, str(root)) for d in DATASETS for i in song_ids(d, root)[:limit]]
    songs: list[ChordSong] = []
    skipped: dict[str, Counter[str]] = {d: Counter() for d in DATASETS}
    for job, result in zip(jobs, map_songs(_read, jobs, parallel_from=64), strict=True):
        if isinstance(result, str):
            skipped[job[0]][result] += 1
        elif result.n_slots:
            songs.append(result)
    return ChordCorpus(tuple(songs), {d: dict(c) for d, c in skipped.items()})


# ------------------------------------------------------------------------------ the cache


def save_corpus(corpus: ChordCorpus, path: Path, provenance: dict[str, Any]) -> None:
    from engine.atomic_file import atomic_output

    songs = corpus.songs
    meta = [{"dataset": s.dataset, "song_id": s.song_id, "key": [s.key.tonic_pc, s.key.mode],
             "auto_key": [s.auto_key.tonic_pc, s.auto_key.mode], "bar": s.sixteenths_per_bar,
             "beat": s.beat_16th, "phrases": s.phrases} for s in songs]
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as out:
        np.savez_compressed(
            out,
            pitch=np.concatenate([s.pitch_16th for s in songs]).astype(np.int16),
            chords=np.concatenate([s.chords for s in songs]).astype(np.int16),
            slots=np.array([s.n_slots for s in songs], dtype=np.int64),
            meta=np.array(json.dumps({"songs": meta, "skipped": corpus.skipped,
                                      "provenance": provenance})),
        )


def load_corpus(path: Path) -> tuple[ChordCorpus, dict[str, Any]]:
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        pitch, chords, slots = data["pitch"], data["chords"], data["slots"]
    songs = []
    offset = 0
    for info, n in zip(meta["songs"], slots.tolist(), strict=True):
        mode: Mode = info["key"][1]
        auto_mode: Mode = info["auto_key"][1]
        songs.append(ChordSong(
            dataset=info["dataset"], song_id=info["song_id"],
            pitch_16th=pitch[2 * offset : 2 * (offset + n)],
            chords=chords[offset : offset + n],
            key=Key(info["key"][0], mode), auto_key=Key(info["auto_key"][0], auto_mode),
            sixteenths_per_bar=info["bar"], beat_16th=info["beat"],
            phrases=tuple((int(a), int(b)) for a, b in info["phrases"]),
        ))
        offset += n
    return ChordCorpus(tuple(songs), meta["skipped"]), meta["provenance"]


def main(argv: Sequence[str] | None = None) -> None:
    import time

    parser = argparse.ArgumentParser(prog="python3 -m engine.build.chord_data",
                                     description="Cache the chord-model corpus as .npz.")
    parser.add_argument("--data", type=Path, default=None, help="shared data folder")
    parser.add_argument("--out", type=Path, default=Path(".train/chord_songs.npz"))
    parser.add_argument("--limit", type=int, default=None, help="first N songs per corpus")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    corpus = read_corpus(args.data, args.limit)
    if not corpus.songs:
        parser.error("no songs read (is ../shared/data there?)")
    save_corpus(corpus, args.out, {"limit": args.limit})
    by = Counter((s.dataset, is_held_out(s.dataset, s.song_id)) for s in corpus.songs)
    print(f"{len(corpus.songs)} songs in {time.perf_counter() - started:.1f} s -> {args.out}: "
          + ", ".join(f"{d} {'held-out' if h else 'train'} {n}" for (d, h), n in sorted(by.items()))
          + f"; skipped {corpus.skipped}")


if __name__ == "__main__":
    main()
