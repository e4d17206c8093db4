"""Keeping the piano out of the melody's way, and shaping its dynamics and pedal.

Applies to every texture source (authored or POP909 donor): piano notes stay below the melody
(moved down by octaves; crossings only where a texture marks them, which none does yet), no
minor-2nd / major-7th / tritone against a sustained melody note (the note moves to the nearest
chord tone that does not clash, or is dropped), velocities follow a per-phrase arc, and the
sustain pedal is re-taken at every chord change in textures that want it. Then, on the whole
piano part: nothing before the first downbeat, the figure stops at the melody's last note on a
held final chord, one key sounds one note at a time, and velocities sit under the melody's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from engine.chords import INTERVALS, chord_pitch_classes
from engine.types import Chord, ChordEvent, Note, PedalEvent

RenderedNote = tuple[int, int, int, int]  # start_16th, duration_16th, pitch, velocity
CLASH_INTERVALS = frozenset({1, 6, 11})
LOWEST_PIANO = 28
SUSTAINED_16TH = 2  # a melody note counts as sustained over a piano note from an 8th on
ARC_DEPTH = 0.18  # velocity rises by up to 18% towards the middle of a phrase
# The piano's mean velocity this far under the melody's (docs/musicianship.md: 10–20; POP909's
# human piano +17), and no note this loud unless the melody has one.
UNDER_MELODY = 13
LOUD = 110
FINAL_BASS_LOWEST = 36  # the final chord's root sits in C2..B2 (lower when the voicing is low)


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


CONTOUR_SMOOTH_16TH = 8  # the melody's shape, averaged over half a 4/4 bar either side
MIN_CONTOUR_RANGE = 3  # semitones: a flatter phrase has no shape to follow (the plain arc)


def melody_contour(
    melody_pitch: np.ndarray, start_16th: int, length_16th: int
) -> np.ndarray | None:
    """The phrase's shape as −0.5..0.5 per 16th: where its melody climbs (towards its climax)
    and where it settles, smoothed; rests hold the last note; None for a flat phrase."""
    span = np.asarray(melody_pitch[start_16th : start_16th + length_16th], dtype=float)
    if not len(span) or not (span >= 0).any():
        return None
    sounding = np.flatnonzero(span >= 0)
    filled = np.interp(np.arange(len(span)), sounding, span[sounding])  # rests held/bridged
    if filled.max() - filled.min() < MIN_CONTOUR_RANGE:
        return None
    kernel = np.ones(2 * CONTOUR_SMOOTH_16TH + 1) / (2 * CONTOUR_SMOOTH_16TH + 1)
    smooth = np.convolve(np.pad(filled, CONTOUR_SMOOTH_16TH, mode="edge"), kernel, "valid")
    low, high = smooth.min(), smooth.max()
    if high - low < 1e-9:
        return None
    return (smooth - low) / (high - low) - 0.5


def shape_velocities(
    notes: Sequence[RenderedNote], phrase_start_16th: int, phrase_length_16th: int,
    level: float = 1.0, contour: np.ndarray | None = None,
) -> list[RenderedNote]:
    """Dynamics that follow the phrase (docs/musicianship.md): louder towards the melody's
    climax and softer where it settles (`melody_contour`); a gentle arc peaking mid-phrase
    where the melody has no shape. Scaled by the phrase's `level`."""
    out = []
    for start, dur, pitch, vel in notes:
        step = start - phrase_start_16th
        if contour is not None and 0 <= step < len(contour):
            gain = level * (1.0 + ARC_DEPTH * float(contour[step]))
        else:
            pos = step / max(phrase_length_16th, 1)
            gain = level * (1.0 - ARC_DEPTH / 2
                            + ARC_DEPTH * math.sin(math.pi * min(max(pos, 0), 1)))
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


def one_key_one_note(notes: Sequence[RenderedNote]) -> list[RenderedNote]:
    """Never strike a pitch that is still sounding: an earlier note is cut at the new onset;
    of two notes on the same pitch and 16th only the longer (then louder) one is kept."""
    out: list[RenderedNote] = []
    sounding: dict[int, int] = {}  # pitch -> index in `out` of its latest note
    for note in sorted(notes, key=lambda n: (n[0], n[2], -n[1], -n[3])):
        start, _, pitch, _ = note
        last = sounding.get(pitch)
        if last is not None:
            held = out[last]
            if held[0] == start:
                continue
            if held[0] + held[1] > start:
                out[last] = (held[0], start - held[0], pitch, held[3])
        sounding[pitch] = len(out)
        out.append(note)
    return out


def piano_velocity(melody_velocities: Sequence[int]) -> int:
    """The piano's mean velocity for this melody: UNDER_MELODY under the melody's mean."""
    return max(1, round(float(np.mean(melody_velocities))) - UNDER_MELODY)


def under_the_melody(
    notes: Sequence[RenderedNote], melody_velocities: Sequence[int]
) -> list[RenderedNote]:
    """Scale velocities so their mean is `piano_velocity`; accents keep their relative shape
    but stay under LOUD (or the melody's loudest note, when the melody is that loud)."""
    if not notes or not melody_velocities:
        return list(notes)
    loudest = max(melody_velocities)
    cap = loudest if loudest >= LOUD else LOUD - 1
    gain = piano_velocity(melody_velocities) / float(np.mean([n[3] for n in notes]))
    return [(s, d, p, max(1, min(cap, round(v * gain)))) for s, d, p, v in notes]


def held_pedal(start_16th: int, end_16th: int, ticks_per_16th: float) -> list[PedalEvent]:
    """Pedal down just after `start` (legato, as at a chord change) and up at `end`."""
    lift = max(1, round(ticks_per_16th / 4))
    return [PedalEvent(round(start_16th * ticks_per_16th) + lift, True),
            PedalEvent(round(end_16th * ticks_per_16th), False)]


def from_first_downbeat(
    notes: Sequence[RenderedNote], downbeat_16th: int
) -> list[RenderedNote]:
    """No accompaniment under a pickup: notes starting before phrase 1's first bar line go."""
    return [n for n in notes if n[0] >= downbeat_16th]


def third_pc(chord: Chord) -> int | None:
    """The chord's third (None for sus, power and 11th chords, which have none)."""
    thirds = [i for i in INTERVALS.get(chord.quality, INTERVALS["maj"]) if i in (3, 4)]
    return (chord.root_pc + thirds[0]) % 12 if thirds else None


def final_voicing(chord: Chord, melody_pitch: int) -> list[int]:
    """Root in the bass and a close voicing in the octave under the melody's last note: every
    chord tone that does not clash with it, the melody's own pitch class left to the melody
    unless it is the third (the piano always sounds the third)."""
    third = third_pc(chord)
    tones = chord_pitch_classes(chord.root_pc, chord.quality)
    upper = [
        p for p in range(melody_pitch - 12, melody_pitch)
        if p % 12 in tones and (p - melody_pitch) % 12 not in CLASH_INTERVALS
        and (p % 12 != melody_pitch % 12 or p % 12 == third)
    ]
    bass = FINAL_BASS_LOWEST + (chord.root_pc - FINAL_BASS_LOWEST) % 12
    while bass >= min(upper, default=melody_pitch) and bass - 12 >= LOWEST_PIANO:
        bass -= 12
    return [bass] + [p for p in upper if p > bass]


def end_on_final_chord(
    notes: Sequence[RenderedNote], last_onset_16th: int, hold_until_16th: int,
    chord: Chord | None, melody_pitch: int, velocity: int,
) -> list[RenderedNote]:
    """Stop the figure at the melody's last onset: later notes go, notes sounding over it are
    cut there, and the final chord (final_voicing) is struck there and held to `hold_until`."""
    out = [
        (s, min(d, last_onset_16th - s), p, v) for s, d, p, v in notes if s < last_onset_16th
    ]
    if chord is not None:
        held = hold_until_16th - last_onset_16th
        out += [(last_onset_16th, held, p, velocity) for p in final_voicing(chord, melody_pitch)]
    return out
