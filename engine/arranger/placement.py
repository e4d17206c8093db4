"""Keeping the piano out of the melody's way, and shaping its dynamics and pedal.

Applies to every texture source (authored or POP909 donor): piano notes stay below the melody
(moved down by octaves; crossings only where a texture marks them, which none does yet), no
minor-2nd / major-7th / tritone against a sustained melody note (the note moves to the nearest
chord tone that does not clash, or is dropped), velocities follow a per-phrase arc, and the
sustain pedal is re-taken at every chord change in textures that want it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from engine.chords import chord_pitch_classes
from engine.types import ChordEvent, Note, PedalEvent

RenderedNote = tuple[int, int, int, int]  # start_16th, duration_16th, pitch, velocity
CLASH_INTERVALS = frozenset({1, 6, 11})
LOWEST_PIANO = 28
SUSTAINED_16TH = 2  # a melody note counts as sustained over a piano note from an 8th on
ARC_DEPTH = 0.18  # velocity rises by up to 18% towards the middle of a phrase


FLOOR_REACH_16TH = 4  # over a rest the piano keeps under the melody notes a beat around it


def melody_floor(pitch: np.ndarray, reach: int = FLOOR_REACH_16TH) -> np.ndarray:
    """Lowest melody pitch within ±reach steps of each 16th (−1 where the melody is far)."""
    big = np.where(pitch >= 0, pitch, 10_000)
    padded = np.pad(big, reach, constant_values=10_000)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * reach + 1)
    low = windows.min(axis=1)
    return np.where(pitch >= 0, pitch, np.where(low < 10_000, low, -1)).astype(np.int16)


def chord_at(chords: Sequence[ChordEvent], length_16th: int) -> np.ndarray:
    """Index of the chord sounding at each 16th (−1 where none)."""
    at = np.full(length_16th, -1, dtype=np.intp)
    for i, ev in enumerate(chords):
        at[max(ev.start_16th, 0) : min(ev.end_16th, length_16th)] = i
    return at


def _clashes(pitch: int, melody: np.ndarray) -> bool:
    sounding = melody[melody >= 0]
    return bool(len(sounding)) and any(
        (int(m) - pitch) % 12 in CLASH_INTERVALS for m in np.unique(sounding)
    )


def keep_clear_of_melody(
    notes: Sequence[RenderedNote], melody_pitch: np.ndarray, chords: Sequence[ChordEvent],
) -> list[RenderedNote]:
    """Below the melody, no clash with a melody note sounding over the piano note."""
    length = len(melody_pitch)
    at = chord_at(chords, length)
    out: list[RenderedNote] = []
    for start, dur, pitch, vel in notes:
        if start >= length:
            continue
        end = min(start + dur, length)
        over = melody_pitch[start:end]
        top = int(over[over >= 0].min()) if (over >= 0).any() else None
        if top is not None:
            while pitch >= top and pitch - 12 >= LOWEST_PIANO:
                pitch -= 12
            if pitch >= top:
                continue
        held = over if end - start >= SUSTAINED_16TH else over[:0]
        if len(held) and _clashes(pitch, held):
            chord = at[start]
            if chord < 0:
                continue
            tones = chord_pitch_classes(chords[chord].chord.root_pc, chords[chord].chord.quality)
            options = [
                p for p in range(pitch - 5, pitch + 6)
                if p % 12 in tones and not _clashes(p, held) and (top is None or p < top)
            ]
            if not options:
                continue
            pitch = min(options, key=lambda p: (abs(p - pitch), p))
        out.append((start, end - start, pitch, vel))
    return _dedupe(out)


def _dedupe(notes: list[RenderedNote]) -> list[RenderedNote]:
    """One note per (start, pitch): moved notes can land on a note already there."""
    seen: dict[tuple[int, int], RenderedNote] = {}
    for note in notes:
        key = (note[0], note[2])
        if key not in seen or note[1] > seen[key][1]:
            seen[key] = note
    return sorted(seen.values())


def shape_velocities(
    notes: Sequence[RenderedNote], phrase_start_16th: int, phrase_length_16th: int,
    level: float = 1.0,
) -> list[RenderedNote]:
    """A gentle arc over the phrase (peak in its middle), scaled by the phrase's `level`."""
    out = []
    for start, dur, pitch, vel in notes:
        pos = (start - phrase_start_16th) / max(phrase_length_16th, 1)
        gain = level * (1.0 - ARC_DEPTH / 2 + ARC_DEPTH * math.sin(math.pi * min(max(pos, 0), 1)))
        out.append((start, dur, pitch, max(1, min(127, round(vel * gain)))))
    return out


def to_notes(notes: Sequence[RenderedNote], ticks_per_16th: float) -> list[Note]:
    result = []
    for start, dur, pitch, vel in notes:
        tick = round(start * ticks_per_16th)
        result.append(Note(pitch, tick, max(1, round((start + dur) * ticks_per_16th) - tick), vel))
    return result


def pedal_events(
    chords: Sequence[ChordEvent], spans: Sequence[tuple[int, int]], ticks_per_16th: float,
) -> list[PedalEvent]:
    """Re-pedal at each chord change inside the pedalled (start_16th, end_16th) spans: up at
    the change, down just after it (legato pedalling), up at the end of the span."""
    events: list[PedalEvent] = []
    lift = max(1, round(ticks_per_16th / 4))
    for start, end in spans:
        inside = [ev for ev in chords if start <= ev.start_16th < end]
        for ev in inside:
            tick = round(ev.start_16th * ticks_per_16th)
            if events and events[-1].down:
                events.append(PedalEvent(tick, False))
            events.append(PedalEvent(tick + lift, True))
        if inside:
            events.append(PedalEvent(round(min(inside[-1].end_16th, end) * ticks_per_16th), False))
    return events
