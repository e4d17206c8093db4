"""The chord-template builder's rules (algorithms.md §1.6): which style a progression has, and
how the templates of other meters derive from real windows. Templates are key-relative runs of
8th-note slots (`engine.library.chord_templates`).

Derived meters (source "derived"), from every real 4/4 window:
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

Style rule (`label_style`), first match wins:
1. rnb — an R&B colour chord (maj7, maj9, min9, 11, min11, 13) or a ii7–V7 motion (a min7-type
   chord followed by a dominant-type chord a fourth up).
2. dark — minor mode with a diminished-family chord (dim, dim7, hdim7), a Phrygian bII, the
   Aeolian bVI + bVII pair, or a min7 on i or iv; major mode with a borrowed minor colour (iv
   minor, bIII, bVI, bII, or a dim7).
3. pop_standard — triads only (maj, min, dim, aug, sus2, sus4) on scale roots (the roots whose
   degree code is an integer, algorithms.md §1.1).
4. pop_complex — everything else: 7ths, 9ths, add9, 6ths, chromatic roots.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

from engine.library.chord_templates import NO_CHORD, SLOTS_PER_BAR, TemplateChord
from engine.types import Style

# One 8th-note slot's chord: (root semitones above the local tonic, quality, bass above root).
SlotChord = tuple[int, str, int]

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


def triple_bar(bar: Sequence[SlotChord], meter: str) -> list[SlotChord] | None:
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
        bar = triple_bar(slots[start : start + 8], meter)
        if bar is None:
            return None
        out.extend(bar)
    return chords_from_slots(out)


# Simple meter -> the compound meter with one dotted beat per quarter beat (3 slots per 2).
COMPOUND_OF = {"4/4": "12/8", "3/4": "9/8"}


def compound_bar(bar: Sequence[SlotChord]) -> list[SlotChord] | None:
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
        bar = compound_bar(slots[start : start + per_bar])
        if bar is None:
            return None
        out.extend(bar)
    return chords_from_slots(out)
