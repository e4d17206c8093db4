"""The corpora as the chord-template builder reads them: each song a sequence of key-relative
bars (8th-note slots) with the windows the builder may cut (algorithms.md §1.6).

Sources (held-out songs, `engine.library.datasets.is_held_out`, are never read):
- POP909 via `pop909-structure/NNN`: `finalized_chord.txt` (bar-aligned chords, durations in
  beats), `analyzed_key.txt` (one key, or the song's keys in order when it modulates: the key
  change is placed at the phrase boundary that fits the chords best, see `_assign_keys`),
  `human_label1.txt` (phrases). The meter comes from the chord length against the labelled bars:
  4 beats a bar (most songs) or 3 (two dozen waltz-time songs); anything else is skipped.
  Windows: every phrase gives its 8-bar windows (phrase length a multiple of 8, offsets 0, 8, …),
  its 4-bar windows at offsets 0, 4, … and 2-bar windows at even offsets.
- Nottingham `chords/NAME.mid` + `melody/NAME.mid`. Bar lines lie at multiples of the bar from
  tick 0; a tune with a pickup starts with a padded partial bar, so bar 0 of the template grid is
  the first bar line at or after the first onset. Windows: 8 bars at offsets 0, 4, 8, …; 4 bars
  at 0, 4, …; 2 bars at 0, 2, … 2/2 tunes join 4/4 (same 8-slot bar); other meters, meter
  changes and unreadable files are skipped and counted. mido reports every signature as major
  (the ABC modes were flattened to signatures), so the mode is read from the chords of each key
  segment, see `_nottingham_key`.
Windows with a no-chord slot or across a key change are dropped by the builder.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.build.template_rules import MINOR_FAMILY, SCALE_ROOTS, SlotChord
from engine.errors import BadInputError
from engine.library.chord_labels import (
    AbsChord,
    note_name_pc,
    parse_pop909_label,
    recognise_pitch_set,
)
from engine.library.chord_templates import NO_CHORD, SLOTS_PER_BAR, BarSignature
from engine.library.datasets import is_held_out
from engine.types import Mode


@dataclass(frozen=True)
class Bar:
    """One bar of a song: per-slot chords relative to the local key (None = no chord)."""

    slots: tuple[SlotChord | None, ...]
    mode: Mode
    segment: int  # key segment; windows and junctions never cross a key change

    @property
    def complete(self) -> bool:
        return all(s is not None for s in self.slots)

    def signature(self) -> BarSignature:
        return tuple(NO_CHORD if s is None else s[0] for s in self.slots)


@dataclass(frozen=True)
class SongChords:
    corpus: str
    song_id: str
    meter: str
    bars: tuple[Bar, ...]
    windows: tuple[tuple[int, int], ...]  # (first bar, bars); 1-bar ones only feed 2/4


@dataclass(frozen=True)
class _AbsKey:
    tonic: int
    mode: Mode


class _Skip(Exception):
    """A song the builder leaves out; the message is the counted reason."""


def _relative(chord: AbsChord | None, key: _AbsKey) -> SlotChord | None:
    if chord is None:
        return None
    root, quality, bass = chord
    return ((root - key.tonic) % 12, quality, bass)


def _make_bars(
    slots: Sequence[AbsChord | None], per_bar: int, bar_keys: Sequence[int],
    keys: Sequence[_AbsKey],
) -> tuple[Bar, ...]:
    bars = []
    for index, key_index in enumerate(bar_keys):
        key = keys[key_index]
        chunk = slots[index * per_bar : (index + 1) * per_bar]
        bars.append(Bar(tuple(_relative(c, key) for c in chunk), key.mode, key_index))
    return tuple(bars)


def _phrase_windows(start: int, length: int, meter: str) -> Iterator[tuple[int, int]]:
    """Windows of one labelled phrase: 8 bars at multiples of 8 (length a multiple of 8),
    4 bars at multiples of 4, 2 bars at even offsets, 1 bar everywhere (4/4 -> 2/4 only)."""
    if length % 8 == 0:
        yield from ((start + off, 8) for off in range(0, length - 7, 8))
    yield from ((start + off, 4) for off in range(0, length - 3, 4))
    yield from ((start + off, 2) for off in range(0, length - 1, 2))
    if meter == "4/4":
        yield from ((start + off, 1) for off in range(length))


def _grid_windows(length: int, meter: str) -> Iterator[tuple[int, int]]:
    """Windows of an unlabelled tune from its first full bar: 8 bars every 4 (tunes move in
    4-bar phrases), 4 bars every 4, 2 bars every 2, 1 bar everywhere (4/4 -> 2/4 only)."""
    for size, hop in ((8, 4), (4, 4), (2, 2)):
        yield from ((off, size) for off in range(0, length - size + 1, hop))
    if meter == "4/4":
        yield from ((off, 1) for off in range(length))


# ---------------------------------------------------------------------------------------------
# POP909 (pop909-structure)
# ---------------------------------------------------------------------------------------------

_KEY_RE = re.compile(r"([A-G][#b]?):(maj|min)")
_PHRASE_RE = re.compile(r"([A-Za-z])(\d+)")


def parse_pop909_keys(text: str) -> list[_AbsKey]:
    """analyzed_key.txt: one key, or several in order of appearance (also run together, as in
    'G:majE:maj'); repeated neighbours collapse."""
    keys: list[_AbsKey] = []
    for tonic, mode in _KEY_RE.findall(text):
        key = _AbsKey(note_name_pc(tonic), "major" if mode == "maj" else "minor")
        if not keys or keys[-1] != key:
            keys.append(key)
    return keys


def parse_phrase_labels(text: str) -> list[tuple[str, int]]:
    """'i4A4B8' -> [('i', 4), ('A', 4), ('B', 8)]."""
    text = text.strip()
    phrases = [(letter, int(n)) for letter, n in _PHRASE_RE.findall(text)]
    if not phrases or _PHRASE_RE.sub("", text).strip() or any(n <= 0 for _, n in phrases):
        raise _Skip("unreadable phrase labels")
    return phrases


def _key_fit(chord: AbsChord | None, key: _AbsKey) -> float:
    """How well one slot's chord sits in a key: a scale root scores 1, plus .5 for a tonic
    chord of the key's own mode (this separates relative major and minor)."""
    if chord is None:
        return 0.0
    root, quality, _ = chord
    rel = (root - key.tonic) % 12
    scale = SCALE_ROOTS[key.mode] | ({7, 11} if key.mode == "minor" else set())
    fit = 1.0 if rel in scale else 0.0
    if rel == 0 and (quality in MINOR_FAMILY) == (key.mode == "minor"):
        fit += 0.5
    return fit


def _assign_keys(
    phrase_slots: Sequence[Sequence[AbsChord | None]], keys: Sequence[_AbsKey]
) -> list[int]:
    """Key index per phrase for a modulating song: analyzed_key.txt lists the keys in order
    but not where they change, so split the phrases into len(keys) consecutive runs that
    maximise the summed chord/key fit (a small DP; pop modulations fall on phrase lines)."""
    n, k = len(phrase_slots), len(keys)
    if k == 1:
        return [0] * n
    if k > n:
        raise _Skip("more keys than phrases")
    fit = [[sum(_key_fit(c, key) for c in slots) for key in keys] for slots in phrase_slots]
    best = [[-math.inf] * k for _ in range(n)]
    back = [[0] * k for _ in range(n)]
    best[0][0] = fit[0][0]
    for i in range(1, n):
        for j in range(k):
            stay = best[i - 1][j]
            move = best[i - 1][j - 1] if j else -math.inf
            back[i][j] = j if stay >= move else j - 1
            best[i][j] = max(stay, move) + fit[i][j]
    path = [k - 1]
    for i in range(n - 1, 0, -1):
        path.append(back[i][path[-1]])
    return path[::-1]


def _pop909_song(folder: Path) -> SongChords:
    chords: list[tuple[AbsChord | None, int]] = []
    for line in (folder / "finalized_chord.txt").read_text().splitlines():
        if not line.strip():
            continue
        label, _, rest = line.partition(" [")
        try:
            beats = int(rest.rpartition("]")[2].split()[-1])
            chords.append((parse_pop909_label(label), beats))
        except (BadInputError, ValueError, IndexError) as err:
            raise _Skip("unreadable chord line") from err
    phrases = parse_phrase_labels((folder / "human_label1.txt").read_text())
    keys = parse_pop909_keys((folder / "analyzed_key.txt").read_text())
    if not keys:
        raise _Skip("no key")
    total_beats = sum(beats for _, beats in chords)
    total_bars = sum(n for _, n in phrases)
    # The chord file is bar-aligned and a few beats longer or shorter than the labelled bars;
    # allow two bars of slack, and read 3 beats a bar when that fits and 4 does not.
    meter = min(("4/4", "3/4"), key=lambda m: abs(total_beats - total_bars * int(m[0])))
    beats_per_bar = int(meter[0])
    if abs(total_beats - total_bars * beats_per_bar) > 2 * beats_per_bar:
        raise _Skip("chord length does not match the phrase labels in 4/4 or 3/4")
    slots: list[AbsChord | None] = []
    for chord, beats in chords:
        slots.extend([chord] * (2 * beats))
    per_bar = SLOTS_PER_BAR[meter]
    n_bars = min(total_bars, len(slots) // per_bar)
    spans: list[tuple[int, int]] = []
    start = 0
    for _, length in phrases:
        if start + length <= n_bars:
            spans.append((start, length))
        start += length
    phrase_key = _assign_keys(
        [slots[s * per_bar : (s + n) * per_bar] for s, n in spans], keys
    )
    bar_keys = [0] * n_bars
    for (s, n), key_index in zip(spans, phrase_key, strict=True):
        bar_keys[s : s + n] = [key_index] * n
    # Bars after the last whole phrase keep the last key (they only feed junctions).
    tail = spans[-1][0] + spans[-1][1] if spans else 0
    bar_keys[tail:] = [phrase_key[-1] if phrase_key else 0] * (n_bars - tail)
    windows = tuple(w for s, n in spans for w in _phrase_windows(s, n, meter))
    return SongChords(
        "pop909", folder.name, meter, _make_bars(slots, per_bar, bar_keys, keys), windows
    )


# ---------------------------------------------------------------------------------------------
# Nottingham
# ---------------------------------------------------------------------------------------------

NOTTINGHAM_METERS = {
    "4/4": "4/4", "2/2": "4/4", "2/4": "2/4", "3/4": "3/4", "6/8": "6/8", "9/8": "9/8",
    "12/8": "12/8",
}


@dataclass(frozen=True)
class _MidiFacts:
    ticks_per_beat: int
    time_signatures: tuple[tuple[int, int], ...]
    key_signatures: tuple[tuple[int, str], ...]  # (tick, mido key name)
    chords: tuple[tuple[int, int, tuple[int, ...]], ...]  # (onset tick, end tick, pitches)
    first_onset: int | None


def _read_midi(path: Path) -> _MidiFacts:
    from engine.midi_io import open_midi_file  # only the builder reads MIDI files here

    try:
        midi = open_midi_file(path)
    except (OSError, ValueError, EOFError) as err:
        raise _Skip("unreadable MIDI file") from err
    meters: list[tuple[int, int]] = []
    keys: list[tuple[int, str]] = []
    groups: dict[int, list[tuple[int, int]]] = defaultdict(list)
    # Tracks are walked one by one on absolute ticks (mido's merge_tracks copies every message,
    # which was most of the build time).
    for track in midi.tracks:
        tick = 0
        sounding: dict[int, int] = {}
        for msg in track:
            tick += msg.time
            if msg.type == "time_signature":
                meters.append((msg.numerator, msg.denominator))
            elif msg.type == "key_signature":
                keys.append((tick, msg.key))
            elif msg.type == "note_on" and msg.velocity > 0:
                sounding[msg.note] = tick
            elif msg.type in ("note_on", "note_off") and msg.note in sounding:
                groups[sounding.pop(msg.note)].append((msg.note, tick))
    keys.sort(key=lambda k: k[0])
    chords = tuple(
        (onset, max(end for _, end in notes), tuple(sorted(p for p, _ in notes)))
        for onset, notes in sorted(groups.items())
    )
    return _MidiFacts(
        midi.ticks_per_beat, tuple(dict.fromkeys(meters)), tuple(keys), chords,
        chords[0][0] if chords else None,
    )


def _nottingham_key(signature: str, segment: Sequence[AbsChord | None]) -> _AbsKey:
    """Tonic and mode of one key-signature segment. In this corpus mido names every signature
    as a major key, so: last chord a minor triad -> minor on its root (Aeolian, Dorian
    endings); else first chord minor -> minor on its root (tunes ending on V or bVII); else
    first and last chord the same major chord -> major on it (Mixolydian tunes); else the
    signature's own key."""
    signature_key = _AbsKey(
        note_name_pc(signature.removesuffix("m")), "minor" if signature.endswith("m") else "major"
    )
    played = [c for c in segment if c is not None]
    if not played:
        return signature_key
    first, last = played[0], played[-1]
    if last[1] == "min":
        return _AbsKey(last[0], "minor")
    if first[1] == "min":
        return _AbsKey(first[0], "minor")
    if first[0] == last[0] and first[1] == last[1] == "maj":
        return _AbsKey(first[0], "major")
    return signature_key


def _nottingham_song(chords_path: Path, melody_path: Path) -> SongChords:
    facts = _read_midi(chords_path)
    melody = _read_midi(melody_path) if melody_path.exists() else None
    meters = set(facts.time_signatures) | set(melody.time_signatures if melody else ())
    if len(meters) != 1:
        raise _Skip("no time signature" if not meters else "meter changes within the tune")
    numerator, denominator = meters.pop()
    meter = NOTTINGHAM_METERS.get(f"{numerator}/{denominator}")
    if meter is None:
        raise _Skip(f"meter {numerator}/{denominator} has no library")
    if not facts.chords:
        raise _Skip("no chords")
    tpb = facts.ticks_per_beat
    slot_ticks = tpb / 2  # an 8th note
    bar_ticks = tpb * 4 * numerator // denominator
    per_bar = SLOTS_PER_BAR[meter]
    n_bars = math.ceil(max(end for _, end, _ in facts.chords) / bar_ticks)
    slots: list[AbsChord | None] = [None] * (n_bars * per_bar)
    for onset, end, pitches in facts.chords:
        chord = recognise_pitch_set(pitches)
        first, last = round(onset / slot_ticks), round(end / slot_ticks)
        slots[first:last] = [chord] * (last - first)
    # A pickup is a padded partial bar 0: start at the first bar line at or after the first
    # onset of melody or chords.
    first_onset = min(
        t for t in (facts.first_onset, melody.first_onset if melody else None) if t is not None
    )
    first_bar = -(-first_onset // bar_ticks)
    signatures = (melody.key_signatures if melody and melody.key_signatures
                  else facts.key_signatures)
    if not signatures:
        raise _Skip("no key signature")
    # Key-signature segments on the bar grid (a change mid-bar takes effect at the next bar).
    seg_starts = sorted({-(-tick // bar_ticks) for tick, _ in signatures} | {0})
    seg_names = []
    for seg_start in seg_starts:
        current = [name for tick, name in signatures if -(-tick // bar_ticks) <= seg_start]
        seg_names.append(current[-1] if current else signatures[0][1])
    bounds = [*seg_starts[1:], n_bars]
    try:
        keys = [
            _nottingham_key(name, slots[s * per_bar : e * per_bar])
            for name, s, e in zip(seg_names, seg_starts, bounds, strict=True)
        ]
    except BadInputError as err:
        raise _Skip("unreadable key signature") from err
    bar_keys = [max(i for i, s in enumerate(seg_starts) if s <= b) for b in range(n_bars)]
    bars = _make_bars(slots, per_bar, bar_keys, keys)[first_bar:]
    windows = tuple(_grid_windows(len(bars), meter))
    return SongChords("nottingham", chords_path.stem, meter, bars, windows)


def pop909_songs(
    data_dir: Path, limit: int | None, skipped: Counter[str], used: Counter[str]
) -> Iterator[SongChords]:
    root = data_dir / "pop909-structure"
    if not root.is_dir():
        skipped["pop909: pop909-structure folder missing"] += 1
        return
    folders = sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit())
    taken = 0
    for folder in folders:
        if limit is not None and taken >= limit:
            break
        if is_held_out("pop909", folder.name):
            used["pop909 held out"] += 1
            continue
        try:
            song = _pop909_song(folder)
        except _Skip as err:
            skipped[f"pop909: {err}"] += 1
            continue
        except OSError:
            skipped["pop909: missing annotation file"] += 1
            continue
        taken += 1
        used[f"pop909 {song.meter}"] += 1
        yield song


def nottingham_songs(
    data_dir: Path, limit: int | None, skipped: Counter[str], used: Counter[str]
) -> Iterator[SongChords]:
    root = data_dir / "nottingham"
    if not (root / "chords").is_dir():
        skipped["nottingham: chords folder missing"] += 1
        return
    taken = 0
    for chords_path in sorted((root / "chords").glob("*.mid")):
        if limit is not None and taken >= limit:
            break
        if is_held_out("nottingham", chords_path.stem):
            used["nottingham held out"] += 1
            continue
        try:
            song = _nottingham_song(chords_path, root / "melody" / chords_path.name)
        except _Skip as err:
            skipped[f"nottingham: {err}"] += 1
            continue
        taken += 1
        used[f"nottingham {song.meter}"] += 1
        yield song
