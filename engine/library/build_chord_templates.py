"""Builds the chord-template library from the corpora (AccoMontage2 §3.1 / algorithms.md §1.6).

Owns: chord-label parsing (POP909 Harte labels, Nottingham pitch sets), key-relative bar
sequences per song, the cutting of 2/4/8-bar windows, meter derivation, de-duplication with
counts, the style rule, bar-junction counts (the c of eq. 3) and the provenance record.

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
- Derived meters (source "derived"), from every real 4/4 window:
  * 2/4: an n-bar 4/4 window is a 2n-bar 2/4 template with the same chords (8 slots = 2 x 4);
    1-, 2- and 4-bar 4/4 windows give 2-, 4- and 8-bar 2/4 templates.
  * 3/4 and 6/8 (6 slots a bar): only bars whose chords change at most at the half bar convert;
    a one-chord bar fills the 6 slots, a half-bar pair becomes 4 + 2 slots in 3/4 (the second
    chord on beat 3, the usual waltz cadence rhythm) and 3 + 3 in 6/8 (one per dotted beat).
  * 12/8 and 9/8 (compound: dotted-quarter beats of 3 slots): a bar of a simple meter whose
    chords change only on its quarter beats becomes a compound bar with one dotted beat per
    quarter (each 2-slot beat becomes 3 slots): 4/4 -> 12/8 (the shuffle-4/4 reading of 12/8
    ballads and blues), 3/4 -> 9/8 (real 3/4 windows and those derived from 4/4). 12/8 also
    comes from pairs of 6/8 bars (a 12/8 bar holds exactly two 6/8 bars: 4- and 8-bar 6/8
    windows give 2- and 4-bar 12/8 templates), so jig harmony is in it too. Real 9/8 comes
    from Nottingham's slip jigs; too few tunes alone (nine in the training split) to fill a
    library, hence the derived 3/4 material beside them.
  Junction counts of derived meters come from each song's bars converted the same way.
Windows with a no-chord slot or across a key change are dropped (counted in the provenance).
Identical (meter, mode, bars, chords) windows merge; the count is the number of windows (real
and derived ones alike) and the source the corpus that gave most of them (real beats derived).
Selection: the corpora give ~80k distinct progressions, most seen in one song only; the paper's
library had 5,762 and `load_library` slows with size, so each (meter, mode, bars) cell keeps its
best-ranked `CELL_BUDGET` templates (rank: songs, a real occurrence counting twice a derived
one, then windows), a tenth of the budget reserved for each style. Junction counts are kept
whole: they come from the full songs, not from the kept templates (9/8 and 12/8: only pairs
of bars that kept templates have, see `_junctions`).

Style rule (`label_style`), first match wins:
1. rnb — an R&B colour chord (maj7, maj9, min9, 11, min11, 13) or a ii7–V7 motion (a min7-type
   chord followed by a dominant-type chord a fourth up).
2. dark — minor mode with a diminished-family chord (dim, dim7, hdim7), a Phrygian bII, the
   Aeolian bVI + bVII pair, or a min7 on i or iv; major mode with a borrowed minor colour (iv
   minor, bIII, bVI, bII, or a dim7).
3. pop_standard — triads only (maj, min, dim, aug, sus2, sus4) on scale roots (the roots whose
   degree code is an integer, algorithms.md §1.1).
4. pop_complex — everything else: 7ths, 9ths, add9, 6ths, chromatic roots.

Run: `python -m engine.library.build_chord_templates [--data DIR] [-o PATH]`.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path
from typing import Any

from engine.errors import BadInputError
from engine.library.chord_templates import (
    DEFAULT_LIBRARY_PATH,
    NO_CHORD,
    SLOTS_PER_BAR,
    BarSignature,
    ChordTemplate,
    MeterLibrary,
    TemplateChord,
    TemplateLibrary,
    save_library,
)
from engine.library.datasets import is_held_out, shared_data_dir
from engine.types import MODES, STYLES, Mode, Style

BUILD_COMMAND = "python -m engine.library.build_chord_templates"
TEMPLATE_BARS = (2, 4, 8)
# Templates kept per (meter, mode, bars): 4/4 is the main meter and gets the most.
CELL_BUDGET: dict[str, dict[int, int]] = {
    "4/4": {2: 400, 4: 500, 8: 400},
    "2/4": {2: 120, 4: 160, 8: 120},
    "3/4": {2: 120, 4: 160, 8: 120},
    "6/8": {2: 120, 4: 160, 8: 120},
    "9/8": {2: 120, 4: 160, 8: 120},
    "12/8": {2: 120, 4: 160, 8: 120},
}

# Meters whose junction table keeps only bars of kept templates (see `_junctions`).
PRUNED_JUNCTION_METERS = frozenset({"9/8", "12/8"})

Progress = Callable[[str], None]
# A chord as read: (root pitch class, quality, bass semitones above the root).
AbsChord = tuple[int, str, int]
# One 8th-note slot's chord: (root semitones above the local tonic, quality, bass above root).
SlotChord = tuple[int, str, int]

# ---------------------------------------------------------------------------------------------
# Chord vocabulary
# ---------------------------------------------------------------------------------------------

# Interval sets (semitones above the root) of every quality name the library uses; the order is
# the tie-break preference when a pitch set matches several equally well (plainest first).
QUALITY_INTERVALS: dict[str, frozenset[int]] = {
    name: frozenset(intervals)
    for name, intervals in (
        ("maj", (0, 4, 7)), ("min", (0, 3, 7)), ("7", (0, 4, 7, 10)), ("min7", (0, 3, 7, 10)),
        ("maj7", (0, 4, 7, 11)), ("dim", (0, 3, 6)), ("aug", (0, 4, 8)), ("sus4", (0, 5, 7)),
        ("sus2", (0, 2, 7)), ("6", (0, 4, 7, 9)), ("min6", (0, 3, 7, 9)),
        ("hdim7", (0, 3, 6, 10)), ("dim7", (0, 3, 6, 9)), ("7sus4", (0, 5, 7, 10)),
        ("add9", (0, 2, 4, 7)), ("minadd9", (0, 2, 3, 7)), ("9", (0, 2, 4, 7, 10)),
        ("maj9", (0, 2, 4, 7, 11)), ("min9", (0, 2, 3, 7, 10)), ("minmaj7", (0, 3, 7, 11)),
        ("11", (0, 2, 5, 7, 10)), ("min11", (0, 2, 3, 5, 7, 10)), ("13", (0, 2, 4, 7, 9, 10)),
    )
}
TRIADS = frozenset({"maj", "min", "dim", "aug", "sus2", "sus4"})
RNB_QUALITIES = frozenset({"maj7", "maj9", "min9", "11", "min11", "13"})
MINOR_SEVENTH_FAMILY = frozenset({"min7", "min9", "min11"})
DOMINANT_FAMILY = frozenset({"7", "9", "11", "13", "7sus4"})
DIMINISHED_FAMILY = frozenset({"dim", "dim7", "hdim7"})
MINOR_FAMILY = frozenset({"min", "min7", "min6", "min9", "min11", "minadd9", "minmaj7"})
# Roots whose degree code is an integer (algorithms.md §1.1); the others are chromatic.
SCALE_ROOTS: dict[str, frozenset[int]] = {
    "major": frozenset({0, 2, 4, 5, 7, 9, 11}),
    "minor": frozenset({0, 2, 3, 5, 7, 8, 10}),
}

_NOTE_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_DEGREE_SEMITONES = {1: 0, 2: 2, 3: 4, 4: 5, 5: 7, 6: 9, 7: 11, 9: 2, 11: 5, 13: 9}


def note_name_pc(name: str) -> int:
    """Pitch class of a note name such as 'Gb', 'C#' or 'E'."""
    if not name or name[0] not in _NOTE_PC or any(ch not in "#b" for ch in name[1:]):
        raise BadInputError(f"not a note name: {name!r}")
    return (_NOTE_PC[name[0]] + name.count("#") - name[1:].count("b")) % 12


def _degree_semitones(degree: str) -> int:
    """Harte interval ('b3', '5', '#4', 'b7') as semitones above the root, mod 12."""
    match = re.fullmatch(r"([#b]*)(\d+)", degree.strip())
    if match is None or int(match.group(2)) not in _DEGREE_SEMITONES:
        raise BadInputError(f"not a chord degree: {degree!r}")
    accidentals, number = match.groups()
    shift = accidentals.count("#") - accidentals.count("b")
    return (_DEGREE_SEMITONES[int(number)] + shift) % 12


def _harte_quality(shorthand: str, extensions: frozenset[str]) -> str:
    """Map a Harte shorthand plus added degrees onto our vocabulary (nearest colour wins)."""
    ext = {e.lstrip("*") for e in extensions}
    ninth = bool(ext & {"9", "2"})
    if shorthand == "maj":
        if "b7" in ext:
            return "9" if ninth else "7"
        if "7" in ext:
            return "maj9" if ninth else "maj7"
        if "6" in ext:
            return "6"
        return "add9" if ninth else "maj"
    if shorthand == "min":
        if "b7" in ext:
            return "min9" if ninth else "min7"
        if "7" in ext:
            return "minmaj7"
        if "6" in ext:
            return "min6"
        return "minadd9" if ninth else "min"
    if shorthand == "maj6":  # 6/9 stays a 6; with b7 it is a dominant 13 (no 9)
        if "b7" in ext:
            return "13"
        return "maj7" if "7" in ext else "6"
    if shorthand == "min7":
        if ext & {"11", "4"}:
            return "min11"
        return "min9" if ninth else "min7"
    if shorthand == "maj7":
        return "maj9" if ninth or "13" in ext else "maj7"
    if shorthand in ("7", "9"):
        if "13" in ext:
            return "13"
        if shorthand == "7" and ninth:
            return "9"
        return shorthand
    if shorthand == "sus4":
        return "7sus4" if "b7" in ext else "sus4"
    if shorthand == "aug":  # aug(b7) keeps its augmented colour
        return "aug"
    direct = {
        "sus2": "sus2", "dim": "dim", "hdim7": "hdim7", "dim7": "dim7", "min6": "min6",
        "maj9": "maj9", "min9": "min9", "min11": "min11", "minmaj7": "minmaj7", "11": "11",
        "13": "13", "maj13": "maj9", "min13": "min11", "9sus4": "7sus4",
    }
    if shorthand in direct:
        return direct[shorthand]
    raise BadInputError(f"unknown chord quality {shorthand!r}")


def parse_pop909_label(label: str) -> AbsChord | None:
    """A POP909 Harte label ('B:maj7/3', 'Bb:min(9)', 'N') -> (root pc, quality, bass interval).

    None for 'N' (no chord). The bass is in semitones above the root (0 = root position). Some
    labels in the files are cut at a space ('B:sus4(b7,'); what is left is read as far as it
    goes. The chord-tone column of the files is not used: it disagrees with the labels (maj7
    and hdim7 tones are wrong there), and the label is the annotation."""
    label = "".join(ch for ch in label if ch.isprintable()).strip()  # two labels carry a \x01
    if label in ("N", "X", ""):
        return None
    if ":" not in label:
        raise BadInputError(f"chord label without quality: {label!r}")
    root_text, rest = label.split(":", 1)
    root = note_name_pc(root_text)
    bass = 0
    slash = rest.rfind("/")
    if slash > rest.rfind(")") and slash >= 0:
        bass_text = rest[slash + 1 :]
        rest = rest[:slash]
        bass = _degree_semitones(bass_text) if bass_text else 0
    shorthand, _, ext_text = rest.partition("(")
    extensions = frozenset(e.strip() for e in ext_text.rstrip(")").split(",") if e.strip())
    return root, _harte_quality(shorthand or "maj", extensions), bass


def recognise_pitch_set(pitches: Iterable[int]) -> AbsChord:
    """MIDI pitches of one chord -> (root pc, quality, bass interval) by template matching.

    Every pitch class is tried as the root against every quality's interval set; the best
    Jaccard overlap wins, ties going to a root-position reading (lowest note = root) and then
    to the plainer quality. So E-G-C reads as C/E, A-C-E-G as Am7 (not C6/A)."""
    notes = sorted(set(pitches))
    if not notes:
        raise BadInputError("an empty chord has no root")
    bass_pc = notes[0] % 12
    pcs = {n % 12 for n in notes}
    order = {name: i for i, name in enumerate(QUALITY_INTERVALS)}
    best: tuple[float, int, int] | None = None
    choice = (bass_pc, "maj")
    for root in sorted(pcs):
        rel = frozenset((pc - root) % 12 for pc in pcs)
        for name, intervals in QUALITY_INTERVALS.items():
            jaccard = len(rel & intervals) / len(rel | intervals)
            rank = (jaccard, int(root == bass_pc), -order[name])
            if best is None or rank > best:
                best, choice = rank, (root, name)
    root, quality = choice
    return root, quality, (bass_pc - root) % 12


# ---------------------------------------------------------------------------------------------
# Style rule
# ---------------------------------------------------------------------------------------------

def _has_two_five(chords: Sequence[TemplateChord]) -> bool:
    """A ii7–V7 motion: a min7-type chord, then a dominant-type chord a fourth above it."""
    return any(
        a.quality in MINOR_SEVENTH_FAMILY and b.quality in DOMINANT_FAMILY
        and a.root != NO_CHORD and b.root != NO_CHORD and (b.root - a.root) % 12 == 5
        for a, b in zip(chords, chords[1:], strict=False)
    )


def _has_dark_colour(chords: Sequence[TemplateChord], mode: str) -> bool:
    played = [c for c in chords if c.root != NO_CHORD]
    roots = {c.root for c in played}
    if mode == "minor":
        return (
            any(c.quality in DIMINISHED_FAMILY for c in played)
            or 1 in roots  # Phrygian bII
            or {8, 10} <= roots  # Aeolian bVI–bVII
            or any(c.quality == "min7" and c.root in (0, 5) for c in played)
        )
    return any(
        c.quality == "dim7"
        or c.root in (1, 8)  # bII, bVI
        or (c.root == 3 and c.quality not in MINOR_FAMILY)  # bIII major
        or (c.root == 5 and c.quality in MINOR_FAMILY)  # minor iv
        for c in played
    )


def label_style(chords: Sequence[TemplateChord], mode: str) -> Style:
    """Style of a progression by the rule in the module docstring (algorithms.md §1.6)."""
    played = [c for c in chords if c.root != NO_CHORD]
    qualities = {c.quality for c in played}
    if qualities & RNB_QUALITIES or _has_two_five(chords):
        return "rnb"
    if _has_dark_colour(chords, mode):
        return "dark"
    if qualities <= TRIADS and {c.root for c in played} <= SCALE_ROOTS[mode]:
        return "pop_standard"
    return "pop_complex"


# ---------------------------------------------------------------------------------------------
# Slots, runs and meter derivation
# ---------------------------------------------------------------------------------------------

def chords_from_slots(slots: Sequence[SlotChord]) -> tuple[TemplateChord, ...]:
    """Run-length code per-slot chords; a chord held over a bar line stays one chord."""
    return tuple(
        TemplateChord(slot[0], slot[1], slot[2], sum(1 for _ in run))
        for slot, run in groupby(slots)
    )


def slots_from_chords(chords: Sequence[TemplateChord]) -> list[SlotChord]:
    return [(c.root, c.quality, c.bass) for c in chords for _ in range(c.slots)]


def derive_duple(chords: Sequence[TemplateChord]) -> tuple[TemplateChord, ...]:
    """4/4 -> 2/4: the same chords; every 8-slot bar is two 4-slot bars (bars double)."""
    return tuple(chords)


def _triple_bar(bar: Sequence[SlotChord], meter: str) -> list[SlotChord] | None:
    """One 4/4 bar (8 slots) as a 6-slot bar, or None if it changes chord off the half bar."""
    first, second = bar[0], bar[4]
    if any(s != first for s in bar[:4]) or any(s != second for s in bar[4:]):
        return None
    if first == second:
        return [first] * 6
    split = 4 if meter == "3/4" else 3
    return [first] * split + [second] * (6 - split)


def derive_triple(chords: Sequence[TemplateChord], meter: str) -> tuple[TemplateChord, ...] | None:
    """4/4 -> 3/4 or 6/8, bar for bar (rule in the module docstring); None if a bar has more
    than one chord change or a change off the half bar."""
    if meter not in ("3/4", "6/8"):
        raise ValueError(f"derive_triple makes 3/4 or 6/8, not {meter}")
    slots = slots_from_chords(chords)
    if len(slots) % 8:
        raise ValueError(f"a 4/4 template must fill whole 8-slot bars, got {len(slots)} slots")
    out: list[SlotChord] = []
    for start in range(0, len(slots), 8):
        bar = _triple_bar(slots[start : start + 8], meter)
        if bar is None:
            return None
        out.extend(bar)
    return chords_from_slots(out)


# Simple meter -> the compound meter with one dotted beat per quarter beat (3 slots per 2).
COMPOUND_OF = {"4/4": "12/8", "3/4": "9/8"}


def _compound_bar(bar: Sequence[SlotChord]) -> list[SlotChord] | None:
    """One simple-meter bar as its compound bar (each 2-slot quarter becomes a 3-slot dotted
    quarter), or None when a chord changes off a quarter beat."""
    if len(bar) % 2 or any(bar[i] != bar[i + 1] for i in range(0, len(bar), 2)):
        return None
    return [slot for slot in bar[::2] for _ in range(3)]


def derive_compound(
    chords: Sequence[TemplateChord], meter: str
) -> tuple[TemplateChord, ...] | None:
    """4/4 -> 12/8 or 3/4 -> 9/8, bar for bar (rule in the module docstring); None if a bar
    changes chord off a quarter beat."""
    if meter not in COMPOUND_OF:
        raise ValueError(f"derive_compound reads 4/4 or 3/4, not {meter}")
    slots = slots_from_chords(chords)
    per_bar = SLOTS_PER_BAR[meter]
    if len(slots) % per_bar:
        raise ValueError(f"a {meter} template must fill whole {per_bar}-slot bars")
    out: list[SlotChord] = []
    for start in range(0, len(slots), per_bar):
        bar = _compound_bar(slots[start : start + per_bar])
        if bar is None:
            return None
        out.extend(bar)
    return chords_from_slots(out)


# ---------------------------------------------------------------------------------------------
# Songs as key-relative bar sequences
# ---------------------------------------------------------------------------------------------

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
    import mido  # only the builder reads MIDI here; `import engine` stays light

    try:
        midi = mido.MidiFile(path)
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


# ---------------------------------------------------------------------------------------------
# Collecting templates and junctions
# ---------------------------------------------------------------------------------------------

TemplateKey = tuple[str, Mode, int, tuple[TemplateChord, ...]]  # meter, mode, bars, chords
JunctionKey = tuple[str, BarSignature, BarSignature]


@dataclass
class _Support:
    """How often one template was seen: windows per source, and in which songs."""

    windows: Counter[str] = field(default_factory=Counter)  # source -> windows
    real_songs: set[str] = field(default_factory=set)
    derived_songs: set[str] = field(default_factory=set)

    def add(self, source: str, song: str) -> None:
        self.windows[source] += 1
        (self.derived_songs if source == "derived" else self.real_songs).add(song)

    @property
    def rank(self) -> tuple[int, int]:
        """Selection rank: songs it occurs in (a real occurrence in the meter counts twice a
        derived one, so real waltzes and jigs win over converted pop), then windows."""
        return 2 * len(self.real_songs) + len(self.derived_songs), sum(self.windows.values())


@dataclass
class _Tally:
    """Everything counted while reading the songs."""

    templates: dict[TemplateKey, _Support]
    junctions: dict[str, Counter[JunctionKey]]
    dropped_windows: Counter[str]

    @classmethod
    def empty(cls) -> _Tally:
        return cls(defaultdict(_Support), defaultdict(Counter), Counter())


def _window_slots(song: SongChords, start: int, size: int) -> list[SlotChord] | None:
    bars = song.bars[start : start + size]
    if len(bars) < size:
        return None
    if any(b.segment != bars[0].segment for b in bars):
        return None
    if not all(b.complete for b in bars):
        return None
    return [s for b in bars for s in b.slots if s is not None]


def _add_song(song: SongChords, tally: _Tally) -> None:
    song_ref = f"{song.corpus}:{song.song_id}"
    for start, size in song.windows:
        slots = _window_slots(song, start, size)
        if slots is None:
            bars = song.bars[start : start + size]
            reason = ("window crosses a key change"
                      if len({b.segment for b in bars}) > 1 else "window has no-chord slots")
            if size > 1:
                tally.dropped_windows[reason] += 1
            continue
        mode = song.bars[start].mode
        chords = chords_from_slots(slots)
        if size in TEMPLATE_BARS:
            tally.templates[(song.meter, mode, size, chords)].add(song.corpus, song_ref)
        for derived_key in _derived_templates(song.meter, mode, size, chords, start):
            tally.templates[derived_key].add("derived", song_ref)
    _add_junctions(song, tally)


def _derived_templates(
    meter: str, mode: Mode, size: int, chords: tuple[TemplateChord, ...], start: int
) -> Iterator[TemplateKey]:
    """The templates other meters derive from one real window (rules in the module docstring);
    `start` is the window's first bar (6/8 bars pair into 12/8 bars from an even bar)."""
    if meter == "6/8" and size % 2 == 0 and size // 2 in TEMPLATE_BARS and start % 2 == 0:
        yield "12/8", mode, size // 2, chords
    if meter == "3/4" and size in TEMPLATE_BARS:
        compound = derive_compound(chords, "3/4")
        if compound is not None:
            yield "9/8", mode, size, compound
    if meter != "4/4":
        return
    if 2 * size in TEMPLATE_BARS:
        yield "2/4", mode, 2 * size, derive_duple(chords)
    if size not in TEMPLATE_BARS:
        return
    for triple in ("3/4", "6/8"):
        derived = derive_triple(chords, triple)
        if derived is not None:
            yield triple, mode, size, derived
    waltz = derive_triple(chords, "3/4")
    for source, simple in (("4/4", chords), ("3/4", waltz)):
        compound = derive_compound(simple, source) if simple is not None else None
        if compound is not None:
            yield COMPOUND_OF[source], mode, size, compound


def _add_junctions(song: SongChords, tally: _Tally) -> None:
    """Count consecutive bar pairs (eq. 3's c) in the song's meter and in the meters derived
    from it, bars converted as their templates are."""
    for a, b in zip(song.bars, song.bars[1:], strict=False):
        if a.segment != b.segment or not (a.complete and b.complete):
            continue
        tally.junctions[song.meter][(a.mode, a.signature(), b.signature())] += 1
    if song.meter == "6/8":
        _count_converted(song.bars, tally.junctions["12/8"], pair_bars=True)
    if song.meter == "3/4":
        _count_converted(song.bars, tally.junctions["9/8"], _compound_bar)
    if song.meter != "4/4":
        return
    halves: list[tuple[Bar, BarSignature] | None] = []
    for bar in song.bars:
        sig = bar.signature() if bar.complete else None
        halves += [(bar, sig[:4]), (bar, sig[4:])] if sig else [None, None]
    for x, y in zip(halves, halves[1:], strict=False):
        if x and y and x[0].segment == y[0].segment:
            tally.junctions["2/4"][(x[0].mode, x[1], y[1])] += 1
    _count_converted(song.bars, tally.junctions["3/4"], lambda bar: _triple_bar(bar, "3/4"))
    _count_converted(song.bars, tally.junctions["6/8"], lambda bar: _triple_bar(bar, "6/8"))
    _count_converted(song.bars, tally.junctions["12/8"], _compound_bar)
    _count_converted(song.bars, tally.junctions["9/8"], _waltz_compound_bar)


def _waltz_compound_bar(bar: Sequence[SlotChord]) -> list[SlotChord] | None:
    """A 4/4 bar as 3/4 (`_triple_bar`), then as 9/8 (`_compound_bar`)."""
    triple = _triple_bar(bar, "3/4")
    return _compound_bar(triple) if triple is not None else None


def _count_converted(
    bars: Sequence[Bar], junctions: Counter[JunctionKey],
    convert: Callable[[Sequence[SlotChord]], list[SlotChord] | None] | None = None,
    pair_bars: bool = False,
) -> None:
    """Count consecutive bar pairs of a derived meter: each bar converted (`convert`), or two
    bars joined into one (`pair_bars`: 6/8 -> 12/8, from the song's first bar)."""
    joined: list[tuple[Bar, list[SlotChord] | None]] = []
    if pair_bars:
        for a, b in zip(bars[::2], bars[1::2], strict=False):
            whole = a.complete and b.complete and a.segment == b.segment
            joined.append((a, [s for s in a.slots + b.slots if s is not None] if whole else None))
    else:
        for bar in bars:
            slots = [s for s in bar.slots if s is not None] if bar.complete else None
            joined.append((bar, convert(slots) if slots and convert else None))
    for (a, a_slots), (b, b_slots) in zip(joined, joined[1:], strict=False):
        if a_slots and b_slots and a.segment == b.segment:
            key = (a.mode, tuple(s[0] for s in a_slots), tuple(s[0] for s in b_slots))
            junctions[key] += 1


def _pop909_songs(
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


def _nottingham_songs(
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


def _select(
    candidates: Sequence[tuple[TemplateKey, _Support, Style]], budget: int
) -> list[tuple[TemplateKey, _Support, Style]]:
    """Keep `budget` templates of one (meter, mode, bars) cell: the best-ranked of each style
    first (a tenth of the budget each, so rarer colours survive), then the best-ranked of the
    rest. The corpora give ~80k distinct windows, mostly seen in one song only; the paper's
    library had 5,762 and loading stays quick at this size."""
    ranked = sorted(candidates, key=lambda c: (-c[1].rank[0], -c[1].rank[1], _chords_order(c[0])))
    if len(ranked) <= budget:
        return ranked
    keep: set[int] = set()
    for style in STYLES:
        of_style = [i for i, c in enumerate(ranked) if c[2] == style]
        keep.update(of_style[: budget // 10])
    for i in range(len(ranked)):
        if len(keep) >= budget:
            break
        keep.add(i)
    return [ranked[i] for i in sorted(keep)]


def _chords_order(key: TemplateKey) -> list[tuple[int, str, int, int]]:
    return [(c.root, c.quality, c.bass, c.slots) for c in key[3]]


def _templates(tally: _Tally) -> dict[str, list[ChordTemplate]]:
    """De-duplicated, selected templates per meter, by mode and bars, best-ranked first."""
    cells: dict[tuple[str, Mode, int], list[tuple[TemplateKey, _Support, Style]]]
    cells = defaultdict(list)
    for key, support in tally.templates.items():
        cells[key[:3]].append((key, support, label_style(key[3], key[1])))
    per_meter: dict[str, list[ChordTemplate]] = {meter: [] for meter in SLOTS_PER_BAR}
    for (meter, mode, bars), candidates in sorted(cells.items()):
        for (_, _, _, chords), support, style in _select(candidates, CELL_BUDGET[meter][bars]):
            real = {s: n for s, n in support.windows.items() if s != "derived"}
            per_meter[meter].append(ChordTemplate(
                id=len(per_meter[meter]), meter=meter, mode=mode, bars=bars, chords=chords,
                count=sum(support.windows.values()), style=style,
                source=min(real, key=lambda s: (-real[s], s)) if real else "derived",
            ))
    return per_meter


def _junctions(
    meter: str, templates: Sequence[ChordTemplate], tally: _Tally
) -> dict[JunctionKey, int]:
    """Junction counts of one meter, sorted. The compound meters derived from 4/4 pop songs
    keep only pairs of bars that some kept template has: the search looks up no other pair
    (it joins templates' first and last bars, and single bars cut from 2-bar templates), and
    the whole table of converted pop bars would double the shipped file."""
    counts = tally.junctions[meter]
    if meter in PRUNED_JUNCTION_METERS:
        bars = {(t.mode, sig) for t in templates for sig in t.bar_signatures()}
        counts = Counter({key: n for key, n in counts.items()
                          if (key[0], key[1]) in bars and (key[0], key[2]) in bars})
    return dict(sorted(counts.items()))


def _template_census(per_meter: dict[str, list[ChordTemplate]]) -> dict[str, Any]:
    census: dict[str, Any] = {}
    for meter, templates in per_meter.items():
        body: dict[str, Any] = {}
        for mode in MODES:
            of_mode = [t for t in templates if t.mode == mode]
            body[mode] = {
                "by_bars": {str(b): sum(t.bars == b for t in of_mode) for b in TEMPLATE_BARS},
                "by_style": {s: sum(t.style == s for t in of_mode) for s in STYLES},
                "by_source": dict(sorted(Counter(t.source for t in of_mode).items())),
            }
        census[meter] = body
    return census


def build_library(
    data_dir: Path, progress: Progress | None = None, limit: int | None = None
) -> TemplateLibrary:
    """Read the corpora under `data_dir` and build the library (algorithms.md §1.6).

    `limit` caps the songs read per corpus (tests); held-out songs never count."""
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    tally = _Tally.empty()
    skipped: Counter[str] = Counter()
    used: Counter[str] = Counter()
    for name, songs in (("POP909", _pop909_songs(data_dir, limit, skipped, used)),
                        ("Nottingham", _nottingham_songs(data_dir, limit, skipped, used))):
        say(f"reading {name} …")
        for song in songs:
            _add_song(song, tally)
    per_meter = _templates(tally)
    meters = {
        meter: MeterLibrary(meter, tuple(templates), _junctions(meter, templates, tally))
        for meter, templates in per_meter.items()
    }
    census = _template_census(per_meter)
    provenance: dict[str, Any] = {
        "built": datetime.now(UTC).date().isoformat(),
        "build_command": BUILD_COMMAND,
        "method": "algorithms.md §1.6; windows, derivation and style rule in "
                  "engine/library/build_chord_templates.py",
        "held_out_rule": "engine.library.datasets.is_held_out: sha1('dataset:id') % 10 == 0 "
                         "(ids: POP909 folder name, Nottingham file stem); never read",
        "sources": {
            "pop909": "pop909-structure finalized_chord.txt + analyzed_key.txt + "
                      "human_label1.txt (MIT)",
            "nottingham": "nottingham chords/*.mid + melody/*.mid (GPL-3; statistics only)",
            "derived": "2/4, 3/4, 6/8, 12/8 templates converted from real 4/4 windows; 9/8 "
                       "from 3/4 ones (real and derived); 12/8 from pairs of 6/8 bars",
        },
        "songs": dict(sorted(used.items())),
        "skipped_songs": dict(sorted(skipped.items())),
        "dropped_windows": dict(sorted(tally.dropped_windows.items())),
        "distinct_progressions_seen": len(tally.templates),
        "selection": "per (meter, mode, bars) the best-ranked by songs (real x2, derived x1) "
                     f"then windows, a tenth of each budget reserved per style; {CELL_BUDGET}",
        "templates": sum(len(t) for t in per_meter.values()),
        "junctions": {m: len(meters[m].junctions) for m in SLOTS_PER_BAR},
        "census": census,
    }
    say(f"built {provenance['templates']} templates in {time.perf_counter() - started:.1f} s")
    return TemplateLibrary(meters=meters, provenance=provenance)


def _report(library: TemplateLibrary) -> str:
    lines = [f"{library.size} templates"]
    for meter, body in library.provenance["census"].items():
        for mode, stats in body.items():
            bars = " ".join(f"{b}:{n}" for b, n in stats["by_bars"].items())
            styles = " ".join(f"{s}:{n}" for s, n in stats["by_style"].items())
            lines.append(f"  {meter} {mode:5}  bars {bars}  styles {styles}")
    lines.append(f"junctions: {library.provenance['junctions']}")
    lines.append(f"songs: {library.provenance['songs']}")
    lines.append(f"skipped: {library.provenance['skipped_songs']}")
    lines.append(f"dropped windows: {library.provenance['dropped_windows']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=BUILD_COMMAND, description="Build the chord-template library from the corpora."
    )
    parser.add_argument("--data", type=Path, default=None,
                        help="corpora folder (default: $ACCOBRIDGE_SHARED_DATA or ../shared/data)")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_LIBRARY_PATH,
                        help=f"library file to write (default: {DEFAULT_LIBRARY_PATH})")
    parser.add_argument("--limit", type=int, default=None, help="songs per corpus (quick test)")
    args = parser.parse_args(argv)
    data_dir = args.data or shared_data_dir()
    if data_dir is None:
        parser.error("no corpora folder found; pass --data DIR")
    library = build_library(data_dir, progress=lambda m: print(m, file=sys.stderr),
                            limit=args.limit)
    save_library(library, args.output)
    print(_report(library))
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
