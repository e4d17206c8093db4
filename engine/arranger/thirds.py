"""Every major or minor chord sounds its third (docs/musicianship.md, issue 11, ours).

Two-note voicings and donor figures often play root and fifth only; unless the melody sings the
third, that is an open fifth, neither major nor minor. For every major/minor chord lasting at
least a beat whose third sounds in neither the piano nor the melody, one upper piano note on
the chord's fifth (else a doubled root) moves to the nearest third below it — down, so it stays
under the melody — unless that pitch already sounds there (one key, one note) or would clash
with the melody; where no note can move, the third is added under the melody at the chord's
first piano onset where it fits. The bass (the lowest note struck at an onset) is never moved.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.arranger.placement import CLASH_INTERVALS, RenderedNote
from engine.chords import chord_pitch_classes
from engine.types import ChordEvent

MIN_ADDED_16TH = 2  # an added third sounds at least an 8th, or not at all


def _third(event: ChordEvent) -> int | None:
    """The third's pitch class of a major or minor chord (None for other qualities)."""
    root = event.chord.root_pc
    tones = chord_pitch_classes(root, event.chord.quality)
    thirds = [(root + i) % 12 for i in (3, 4) if (root + i) % 12 in tones]
    if len(thirds) != 1 or (root + 7) % 12 not in tones:
        return None
    return thirds[0]


def _sounds(notes: Sequence[RenderedNote], pc: int, lo: int, hi: int) -> bool:
    return any(p % 12 == pc and s < hi and s + d > lo for s, d, p, _ in notes)


def _is_bass(notes: Sequence[RenderedNote], k: int) -> bool:
    start, _, pitch, _ = notes[k]
    return all(p >= pitch for s, _, p, _ in notes if s == start)


def _fits(notes: Sequence[RenderedNote], k: int, pitch: int, melody: np.ndarray) -> bool:
    """`pitch` for note k: above the bass, not already sounding in the piano, no clash with
    the melody over it."""
    start, duration, _, _ = notes[k]
    end = start + duration
    bass = min((p for j, (s, _, p, _) in enumerate(notes) if s == start and j != k), default=-1)
    if pitch <= bass:  # it would become the bass: another inversion, not a third added
        return False
    for j, (s, d, p, _) in enumerate(notes):
        if j != k and p == pitch and s < end and s + d > start:
            return False
    sung = melody[max(start, 0) : max(end, 0)]
    return not any((int(m) - pitch) % 12 in CLASH_INTERVALS for m in np.unique(sung[sung >= 0]))


def sound_thirds(
    notes: Sequence[RenderedNote], chords: Sequence[ChordEvent], melody_pitch: np.ndarray,
    beat_16th: int,
) -> list[RenderedNote]:
    """The piano notes with a third given to every major/minor chord that lacks one (module
    docstring); times are 16ths on the melody grid's steps."""
    out = list(notes)
    sung_pcs = np.where(melody_pitch >= 0, melody_pitch % 12, -1)
    for event in chords:
        third = _third(event)
        if third is None or event.duration_16th < beat_16th:
            continue
        lo, hi = event.start_16th, event.end_16th
        if (sung_pcs[max(lo, 0) : max(hi, 0)] == third).any() or _sounds(out, third, lo, hi):
            continue
        root, fifth = event.chord.root_pc, (event.chord.root_pc + 7) % 12
        inside = [k for k, (s, _, _, _) in enumerate(out) if lo <= s < hi and not _is_bass(out, k)]
        # the highest fifth first, then the highest doubled root; else a third of its own
        if not (_move_to_third(out, inside, fifth, third, melody_pitch)
                or _move_to_third(out, inside, root, third, melody_pitch)):
            _add_third(out, lo, hi, third, melody_pitch)
    return out


def _move_to_third(out: list[RenderedNote], inside: list[int], wanted: int, third: int,
                   melody_pitch: np.ndarray) -> bool:
    for k in sorted((k for k in inside if out[k][2] % 12 == wanted), key=lambda k: -out[k][2]):
        start, duration, pitch, velocity = out[k]
        target = pitch - ((pitch - third) % 12)
        if _fits(out, k, target, melody_pitch):
            out[k] = (start, duration, target, velocity)
            return True
    return False


def _add_third(out: list[RenderedNote], lo: int, hi: int, third: int,
               melody_pitch: np.ndarray) -> None:
    """Where no note can move (a bass alone, a single line), the third joins a piano onset in
    the chord — the first where it fits — held as long as that onset's longest note or until
    the melody would clash with it, as soft as the onset's softest note: the highest such pitch
    under the melody and above the bass."""
    for start in sorted({s for s, _, _, _ in out if lo <= s < hi}):
        struck = [(d, p, v) for s, d, p, v in out if s == start]
        duration = min(max(d for d, _, _ in struck), hi - start)
        velocity = min(v for _, _, v in struck)
        sung = melody_pitch[start : start + duration]
        ceiling = (int(sung[sung >= 0].min()) if (sung >= 0).any()
                   else max(p for _, p, _ in struck) + 12)
        target = ceiling - 1 - ((ceiling - 1 - third) % 12)
        while target > min(p for _, p, _ in struck):
            # held until the melody first clashes with it (an 8th at least)
            held = _clear_length(target, start, duration, melody_pitch)
            if held >= MIN_ADDED_16TH:
                out.append((start, held, target, velocity))
                if _fits(out, len(out) - 1, target, melody_pitch):
                    return
                out.pop()
            target -= 12


def _clear_length(pitch: int, start: int, duration: int, melody_pitch: np.ndarray) -> int:
    """How long `pitch` can sound from `start` (up to `duration`) before a melody note clashes."""
    for step in range(start, start + duration):
        sung = int(melody_pitch[step]) if 0 <= step < len(melody_pitch) else -1
        if sung >= 0 and (sung - pitch) % 12 in CLASH_INTERVALS:
            return step - start
    return duration


__all__ = ["sound_thirds"]
