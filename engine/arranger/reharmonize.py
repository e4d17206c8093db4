"""Rule-based re-harmonization of a donor texture to new chords (ours; the learned chord/texture
VAE of engine/models sits behind the same interface, algorithms.md §2.3).

Each donor note is re-expressed relative to the donor chord sounding at its beat — bass, root,
third, fifth, seventh, ninth or other — and re-realised as that role of the target chord,
at the octave nearest the original note, so rhythm, register and voicing shape survive while
the harmony changes. A note ringing past a target chord change is cut there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.arranger.placement import RenderedNote, chord_at
from engine.chords import INTERVALS, chord_pitch_classes, triad_of
from engine.types import ChordEvent

BASS_CEILING = 55  # a lowest-at-its-onset note below G3 is the donor's bass line
SHORT_16TH = 2  # ninths this short stay ninths (passing colour); longer ones resolve


def _third(quality: str) -> int:
    return {"min": 3, "dim": 3, "sus2": 2, "sus4": 5}.get(triad_of(quality), 4)


def _fifth(quality: str) -> int:
    return {"dim": 6, "aug": 8}.get(triad_of(quality), 7)


def _seventh(quality: str) -> int | None:
    upper = [i % 12 for i in INTERVALS.get(quality, ()) if i % 12 in (9, 10, 11)]
    return upper[0] if upper else None


def target_pitch_class(interval: int | None, chord: ChordEvent, duration: int, pc: int) -> int:
    """The target chord's version of a donor note with `interval` above its chord root."""
    root, quality = chord.chord.root_pc, chord.chord.quality
    tones = chord_pitch_classes(root, quality)
    if interval in (0,):
        return root
    if interval in (3, 4):
        return (root + _third(quality)) % 12
    if interval in (6, 7, 8):
        return (root + _fifth(quality)) % 12
    if interval in (9, 10, 11):
        seventh = _seventh(quality)
        return (root + seventh) % 12 if seventh is not None else root
    if interval == 2 and duration <= SHORT_16TH:
        return (root + 2) % 12
    return min(tones, key=lambda t: (min((t - pc) % 12, (pc - t) % 12), t))


def _nearest(pitch: int, pc: int) -> int:
    below = pitch - ((pitch - pc) % 12)
    return below if pitch - below <= (below + 12) - pitch else below + 12


def reharmonize_notes(
    notes: np.ndarray, source_chroma: np.ndarray, source_roots: np.ndarray, shift: int,
    chords: Sequence[ChordEvent], start_16th: int, length_16th: int,
) -> list[RenderedNote]:
    """Donor notes (rows onset_16th, pitch, duration_16th, velocity, phrase-relative) laid on
    `chords` from `start_16th`, tiled or cut to `length_16th`, transposed by `shift`.

    `source_roots` holds the root pc per donor beat (−1 for no chord); `source_chroma`
    the donor's chord pitch classes per beat (unused by the rules beyond the root, kept for the
    learned re-harmonizer's interface)."""
    del source_chroma
    shift = shift - 12 if shift > 6 else shift  # transpose by the smaller move
    donor_length = len(source_roots) * 4
    at = chord_at(chords, start_16th + length_16th)
    out: list[RenderedNote] = []
    if not len(notes) or donor_length == 0:
        return out
    lowest_at: dict[int, int] = {}
    for onset, pitch, _, _ in notes:
        lowest_at[int(onset)] = min(lowest_at.get(int(onset), 128), int(pitch))
    for offset in range(0, length_16th, donor_length):
        for onset, pitch, duration, velocity in notes:
            t = int(onset) + offset
            if t >= length_16th or int(onset) >= donor_length:
                continue
            absolute = start_16th + t
            chord_index = at[absolute]
            if chord_index < 0:
                continue
            target = chords[chord_index]
            moved = int(pitch) + shift
            root = int(source_roots[int(onset) // 4])
            if int(pitch) == lowest_at[int(onset)] and moved < BASS_CEILING:
                pc = target.chord.bass_pc
            else:
                interval = (moved - root - shift) % 12 if root >= 0 else None
                pc = target_pitch_class(interval, target, int(duration), moved % 12)
            end = min(absolute + int(duration), target.end_16th, start_16th + length_16th)
            if end > absolute:
                out.append((absolute, end - absolute, _nearest(moved, pc), int(velocity)))
    return out
