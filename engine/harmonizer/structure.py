"""Musical structure in the search (ours, beyond the paper): cadences, openings and repeats.

The paper scores each phrase by note-wise fit (eq. 2) and template statistics (eq. 3–4), so
nothing tells it that a tune ends on I, that a phrase ends on I or V, that a tune opens on I or
that a repeated bar is heard again with the same chords (docs/musicianship.md). These terms are
added to each candidate's local score (eq. 5) and read only the candidate's chord rows (root
and triad per 8th) and what the melody does at the phrase's edges:
- tune end: when the melody ends on a tonic-chord tone, the last chord is I (i), held over the
  last bar and approached by V or IV (authentic or plagal cadence); a tune stopping open on a
  dominant-chord tone (re, ti) ends on V;
- inner phrase end: I or V holding the melody's last note (half or full close);
- opening: I on the first downbeat when the melody's note there is a tonic-triad tone;
- repeats: a bar whose melody is heard again elsewhere takes the roots that bar got the first
  time (a second DP pass, `repeat_bonus`), so A…A and identical bars sound alike.
Weights were set on the held-out split's ear-level checks (benchmarks/harmony_quality).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.chords import TRIADS
from engine.harmonizer.micro import NO_CHORD_ROW
from engine.types import Mode, Phrase

TUNE_END = 0.15  # the last chord is the tonic when the melody ends on a tonic-chord tone
TUNE_END_APPROACH = 0.05  # … and the chord before it is V or IV
TUNE_END_HELD = 0.03  # … and it holds the whole last bar
PHRASE_END = 0.04  # an inner phrase closes on I or V holding the melody's last note
OPENING = 0.08  # I on the first downbeat when the melody opens on tonic-triad tones
REPEAT = 0.7  # per share of a phrase's slots whose bar repeats and keeps its first roots
MIN_REPEAT_CHANGES = 2  # a bar needs this many notes to count as a repeat

_MAJOR, _MINOR = TRIADS.index("maj"), TRIADS.index("min")
NO_ROOT = 12  # root of the N.C. row
TONIC_TRIAD: dict[Mode, frozenset[int]] = {
    "major": frozenset({0, 4, 7}),
    "minor": frozenset({0, 3, 7}),
}
DOMINANT_TRIAD = frozenset({7, 11, 2})  # V is major in minor too (harmonic minor)
DOMINANT, SUBDOMINANT = 7, 5


def roots_and_triads(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Root (semitones above the tonic; NO_ROOT for N.C.) and triad index of chord_table rows."""
    chord = rows != NO_CHORD_ROW
    return np.where(chord, rows // len(TRIADS), NO_ROOT), np.where(chord, rows % len(TRIADS), -1)


@dataclass(frozen=True)
class PhraseEdges:
    """What the melody does at one phrase's edges (tonic-relative pitch classes)."""

    last_pc: int | None  # the phrase's last sounding melody pitch class
    ends_tune: bool  # the last phrase: its end is the tune's end
    opens_on_tonic: bool  # the first phrase, opening on tonic-triad tones


def cadence_note(bar: np.ndarray, beat_16th: int, mode: Mode) -> int | None:
    """The note a tune's last bar comes to rest on: a tonic-triad tone sounding on one of the
    bar's strong beats (the half bar where it is a beat, then the downbeat), so that a run
    leading back to a repeat (`ti sol la ti do re mi fa`) is heard as ending on its strong-beat
    do, not on the pickup; else the note on the last strong beat; None when they are rests."""
    half = len(bar) // 2
    strong = [half, 0] if len(bar) % 2 == 0 and half % beat_16th == 0 else [0]
    heard = [int(bar[position]) for position in strong if bar[position] >= 0]
    resting = [pc for pc in heard if pc in TONIC_TRIAD[mode]]
    return (resting or heard)[0] if heard else None


def phrase_edges(
    relative: np.ndarray, phrases: Sequence[Phrase], bar_16th: int, mode: Mode,
    beat_16th: int | None = None,
) -> list[PhraseEdges]:
    """`relative`: the melody per 16th from phrase 1's downbeat, semitones above the tonic
    (−1 = rest), as the search sees it. With `beat_16th`, a tune whose last note is no tonic or
    dominant chord tone ends, for the cadence, on its last bar's `cadence_note`."""
    edges = []
    for i, phrase in enumerate(phrases):
        span = relative[phrase.start_bar * bar_16th : phrase.end_bar * bar_16th]
        sounding = span[span >= 0]
        opens = False
        if i == 0:
            first_bar = span[:bar_16th]
            heard = first_bar[first_bar >= 0]
            # the note on the first downbeat (else the bar's first) is heard as the tonic chord
            opens = bool(heard.size) and int(heard[0]) in TONIC_TRIAD[mode]
        last_pc = int(sounding[-1]) if sounding.size else None
        if (i == len(phrases) - 1 and beat_16th is not None and last_pc is not None
                and last_pc not in TONIC_TRIAD[mode] | DOMINANT_TRIAD):
            # a tune cannot stop on fa or la: that last note leads back to a repeat
            resting = cadence_note(span[-bar_16th:], beat_16th, mode)
            last_pc = last_pc if resting is None else resting
        edges.append(PhraseEdges(
            last_pc=last_pc,
            ends_tune=i == len(phrases) - 1,
            opens_on_tonic=opens,
        ))
    return edges


def _previous_chord(rows: np.ndarray) -> np.ndarray:
    """Row of the chord before each candidate's last chord (its last row if it has one chord)."""
    differs = rows != rows[:, -1:]
    last_change = rows.shape[1] - 1 - np.argmax(differs[:, ::-1], axis=1)
    return np.where(differs.any(axis=1), rows[np.arange(len(rows)), last_change], rows[:, -1])


def _is_tonic(root: np.ndarray, triad: np.ndarray, mode: Mode) -> np.ndarray:
    """I in major; i (or a Picardy I) in minor."""
    wanted = (_MAJOR,) if mode == "major" else (_MINOR, _MAJOR)
    return (root == 0) & np.isin(triad, wanted)


def structure_bonus(
    rows: np.ndarray, edges: PhraseEdges, mode: Mode, slots_per_bar: int, scale: float = 1.0
) -> np.ndarray:
    """Cadence and opening terms of every candidate of one phrase (module docstring).

    `scale`: how much wider than 0..1 the slot scores are (the learned scorer's range). A tune
    ending on do or mi (la or do in minor) must close on I whatever else scores high, so its
    tune-end terms grow with it; sol belongs to I and V alike (tunes that stop on a half close
    end there), so there the terms stay small and the melody's fit decides."""
    root, triad = roots_and_triads(rows)
    bonus = np.zeros(len(rows))
    final_root, final_triad = root[:, -1], triad[:, -1]
    tonic_end = _is_tonic(final_root, final_triad, mode)
    dominant_end = (final_root == DOMINANT) & (final_triad == _MAJOR)
    if edges.ends_tune and edges.last_pc in TONIC_TRIAD[mode]:
        before_root, before_triad = roots_and_triads(_previous_chord(rows))
        approach = ((before_root == DOMINANT) & (before_triad == _MAJOR)) | (
            before_root == SUBDOMINANT)
        held = (rows[:, -slots_per_bar:] == rows[:, -1:]).all(axis=1)
        weight = scale if edges.last_pc != DOMINANT else 1.0
        bonus += weight * tonic_end * (TUNE_END + TUNE_END_APPROACH * approach
                                       + TUNE_END_HELD * held)
    elif edges.ends_tune and edges.last_pc in DOMINANT_TRIAD:
        # a tune that stops open on re or ti (a set's first tune, a da capo) ends on V
        bonus += TUNE_END * dominant_end
    elif not edges.ends_tune and edges.last_pc is not None:
        holds_last = np.where(tonic_end, edges.last_pc in TONIC_TRIAD[mode],
                              dominant_end & (edges.last_pc in DOMINANT_TRIAD))
        bonus += PHRASE_END * holds_last
    if edges.opens_on_tonic:
        bonus += OPENING * _is_tonic(root[:, 0], triad[:, 0], mode)
    return bonus


def repeated_bars(relative: np.ndarray, bar_16th: int, bars: int) -> np.ndarray:
    """For every bar, the index of the first bar with the same melody (itself if none, or if
    it holds fewer than MIN_REPEAT_CHANGES notes)."""
    first: dict[bytes, int] = {}
    out = np.arange(bars)
    for bar in range(bars):
        melody = relative[bar * bar_16th : (bar + 1) * bar_16th]
        changes = int(np.count_nonzero(np.diff(melody))) + int(melody[0] >= 0)
        if changes < MIN_REPEAT_CHANGES:
            continue
        out[bar] = first.setdefault(melody.tobytes(), bar)
    return out


def repeat_bonus(
    rows: np.ndarray, start_bar: int, first_of: np.ndarray, chosen_roots: np.ndarray,
    slots_per_bar: int, ends_tune: bool = False,
) -> np.ndarray:
    """Share of a phrase's slots, in bars whose melody is heard more than once, whose root
    equals the root the first such bar got in the first pass (`chosen_roots`: per slot of the
    whole piece); times REPEAT. The tune's last bar is left to the cadence (`ends_tune`): a
    final bar that repeats a half close must still be free to close on I."""
    bars = rows.shape[1] // slots_per_bar
    own = np.arange(start_bar, start_bar + bars)
    counts = np.bincount(first_of, minlength=len(first_of))
    repeated = counts[first_of[own]] > 1
    if ends_tune:
        repeated[-1] = False
    if not repeated.any():
        return np.zeros(len(rows))
    root, _ = roots_and_triads(rows)
    slots = np.concatenate([np.arange(b * slots_per_bar, (b + 1) * slots_per_bar)
                            for b in np.flatnonzero(repeated)])
    target = np.concatenate([
        chosen_roots[first_of[start_bar + b] * slots_per_bar:
                     (first_of[start_bar + b] + 1) * slots_per_bar]
        for b in np.flatnonzero(repeated)
    ])
    return REPEAT * (root[:, slots] == target[None, :]).sum(axis=1) / rows.shape[1]


__all__ = [
    "PhraseEdges", "phrase_edges", "repeat_bonus", "repeated_bars", "roots_and_triads",
    "structure_bonus",
]
