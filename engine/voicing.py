"""Voicing engine: turns chord events into the notes of the Chords track.

Ours, not the release's (which replays a random library member's MIDI notes, algorithms.md
§1.5): the style colours each chord (triads for Pop-standard, 7ths/9ths/sus for Pop-complex and
R&B, minor colours for Dark), then the upper voices take the inversion that moves least from
the previous chord while staying below the melody, over a bass on the chord's bass note.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from engine.chords import INTERVALS, TRIAD_OF
from engine.types import ChordEvent, Note, Style, Voicing, VoicingRegister

BASS_RANGE = (34, 46)
UPPER_LOWEST = 50  # below ~D3 close voicings turn muddy
UPPER_HIGHEST = 76
REGISTER_CENTRE = 58.0  # mean pitch the upper voices gravitate to (moved by the register)
# × (semitones away from it)²: next to nothing near the centre, where voice leading (1.5 per
# semitone of motion) rules, but growing with the distance so that a long run of small steps
# one way (round the circle of fifths) turns back instead of drifting out of the register
REGISTER_PULL = 0.1
MELODY_GAP = 1  # top voice at least a semitone below the lowest melody note over the chord
VELOCITY_BASS = 74
VELOCITY_UPPER = 64
PHRASE_ACCENT = 6
# Where the upper voices sit per Voicing.register: the range moves a fifth down or up, so "low"
# reads as warm close voicings around F3, "high" as bright ones around G4 (melody permitting).
REGISTER_SHIFT: dict[VoicingRegister, int] = {"low": -7, "middle": 0, "high": 7}


def style_quality(quality: str, degree: int, style: Style) -> str:
    """Colour a chord for the style; `degree` = root semitones above the tonic."""
    triad = TRIAD_OF.get(quality, quality)
    if style == "pop_standard":
        return triad
    if style == "dark":
        # keep it minor and unresolved: no major-7th brightness, added 9ths and 7ths on minors
        if triad == "min":
            return "minadd9" if degree == 0 else "min7"
        return {"maj7": "maj", "maj9": "maj", "9": "7", "6": "maj"}.get(quality, quality)
    if style == "pop_complex":
        if quality != triad:
            return quality
        if triad == "maj":
            return "7" if degree == 7 else ("maj7" if degree in (0, 5, 3, 8) else "add9")
        if triad == "min":
            return "min7"
        if triad == "sus4" and degree == 7:
            return "7sus4"
        return quality
    # rnb: lush extensions everywhere
    upgrade = {"maj": "maj9", "maj7": "maj9", "7": "9", "min": "min9", "min7": "min9",
               "add9": "maj9", "minadd9": "min9", "sus4": "7sus4"}
    if triad == "maj" and degree == 7:
        return "9"
    return upgrade.get(quality, quality)


def _upper_pcs(quality: str, root_pc: int) -> tuple[int, ...]:
    pcs = sorted({(root_pc + i) % 12 for i in INTERVALS.get(quality, (0, 4, 7))})
    if len(pcs) > 4:  # drop the fifth first, as pianists do
        fifth = (root_pc + 7) % 12
        if fifth in pcs:
            pcs.remove(fifth)
    return tuple(pcs)


@lru_cache(maxsize=1024)
def _candidate_voicings(pcs: tuple[int, ...], shift: int = 0) -> tuple[tuple[int, ...], ...]:
    """Close-position stacks of the pitch classes, every inversion, every usable octave of the
    range moved by `shift` semitones."""
    lowest, highest = UPPER_LOWEST + shift, UPPER_HIGHEST + shift
    out: list[tuple[int, ...]] = []
    for rot in range(len(pcs)):
        order = pcs[rot:] + pcs[:rot]
        for base in range(lowest - 12, highest):
            if base % 12 != order[0]:
                continue
            notes = [base]
            for pc in order[1:]:
                nxt = notes[-1] + 1
                while nxt % 12 != pc:
                    nxt += 1
                notes.append(nxt)
            if notes[0] >= lowest - 5 and notes[-1] <= highest:
                out.append(tuple(notes))
    return tuple(out)


def _choose(
    cands: tuple[tuple[int, ...], ...], prev: tuple[int, ...] | None, ceiling: int,
    shift: int = 0,
) -> tuple[int, ...]:
    """Least voice movement from `prev` (and centre of gravity kept), below `ceiling`; a pull
    towards the register's centre stops a long run of small steps drifting out of it."""
    centre = REGISTER_CENTRE + shift
    prev_mean = sum(prev) / len(prev) if prev else centre

    def cost(notes: tuple[int, ...]) -> float:
        c = 4.0 * max(0, notes[-1] - ceiling) + 1.5 * max(0, UPPER_LOWEST + shift - notes[0])
        mean = sum(notes) / len(notes)
        if prev:
            c += abs(mean - prev_mean) * 1.5 + sum(
                min(abs(n - p) for p in prev) for n in notes
            ) / len(notes) + REGISTER_PULL * (mean - centre) ** 2
        else:
            c += abs(mean - prev_mean) * 0.5
        return c

    return min(cands, key=cost)


def voice_chords(
    events: Sequence[ChordEvent], melody_pitch: np.ndarray, ticks_per_16th: float,
    bar_16th: int, downbeat_16th: int, phrase_starts_16th: frozenset[int] = frozenset(),
    voicing: Voicing | None = None,
) -> tuple[Note, ...]:
    """Notes of the Chords track for events already coloured by `style_quality`.

    Chords longer than a bar are re-struck on each bar line so the part reads (and loops) well
    in a DAW; the bass walks to the nearest octave of the next bass note. `voicing` moves the
    upper voices' register and can leave the bass out."""
    voicing = voicing or Voicing()
    shift = REGISTER_SHIFT[voicing.register]
    notes: list[Note] = []
    prev_upper: tuple[int, ...] | None = None
    prev_bass = 40
    for event in events:
        span = melody_pitch[event.start_16th : event.end_16th]
        sounding = span[span >= 0]
        ceiling = int(sounding.min()) - MELODY_GAP if len(sounding) else UPPER_HIGHEST + shift
        pcs = _upper_pcs(event.chord.quality, event.chord.root_pc)
        upper = _choose(_candidate_voicings(pcs, shift), prev_upper, ceiling, shift)
        bass_choices = [p for p in range(BASS_RANGE[0], BASS_RANGE[1] + 1)
                        if p % 12 == event.chord.bass_pc]
        bass = min(bass_choices, key=lambda p: abs(p - prev_bass))
        prev_upper, prev_bass = upper, bass
        # strike points: the event start and every bar line inside it
        bars_before = -(-(event.start_16th - downbeat_16th) // bar_16th)  # ceil
        first_bar_line = downbeat_16th + bars_before * bar_16th
        strikes = [event.start_16th] + [
            t for t in range(first_bar_line, event.end_16th, bar_16th) if t > event.start_16th
        ]
        for n, start in enumerate(strikes):
            end = strikes[n + 1] if n + 1 < len(strikes) else event.end_16th
            accent = PHRASE_ACCENT if start in phrase_starts_16th else 0
            start_tick = int(round(start * ticks_per_16th))
            length = max(1, int(round(end * ticks_per_16th)) - start_tick)
            if voicing.bass:
                notes.append(Note(bass, start_tick, length, VELOCITY_BASS + accent))
            notes.extend(Note(p, start_tick, length, VELOCITY_UPPER + accent) for p in upper)
    return tuple(notes)
