"""Naming the chord that sounds: root and quality from its pitch classes and its bass.

One recogniser for every chord track judged by the ear-level checks (docs/evaluation.md): the
human chords, ours, the paper's variants, any model. It reads only what sounds — the pitch
classes and the lowest note — so every system is named the same way whatever produced it.
"""

from __future__ import annotations

from functools import lru_cache

from engine.chords import INTERVALS

# Qualities tried, simplest first (ties go to the earlier one). Ninth chords are left out: a
# ninth reads as an added tone of the triad under it, which names the same root.
RECOGNISED: tuple[str, ...] = (
    "maj", "min", "sus4", "sus2", "dim", "aug", "7", "min7", "maj7", "hdim7", "dim7", "6",
    "min6", "7sus4",
)
SUS_QUALITIES = frozenset({"sus2", "sus4", "7sus4"})
MISSING_WEIGHT = 0.6  # a template tone that does not sound
EXTRA_WEIGHT = 0.4  # a sounding tone the template lacks
BASS_BONUS = 0.5  # root position is the common reading (C6 vs Am7/C: the bass decides)


@lru_cache(maxsize=8192)
def name_chord(pitch_class_mask: int, bass_pc: int) -> tuple[int, str]:
    """(root pc, quality) of a sounding chord; `pitch_class_mask` has bit pc set for each
    sounding pitch class, `bass_pc` is the lowest note's (−1: unknown). (−1, "") for silence.

    Score per (root, quality): tones present − 0.6 · tones missing − 0.4 · extra tones, + 0.5
    when the root is the bass; a single pitch class (a bare bass, an octave) is its own root."""
    present = {pc for pc in range(12) if pitch_class_mask >> pc & 1}
    if not present:
        return -1, ""
    if len(present) == 1:
        return next(iter(present)), "maj"
    best = (-1e9, -1, "")
    for quality in RECOGNISED:
        for root in range(12):
            tones = {(root + i) % 12 for i in INTERVALS[quality]}
            hits = len(tones & present)
            if hits < 2:
                continue
            score = (hits - MISSING_WEIGHT * len(tones - present)
                     - EXTRA_WEIGHT * len(present - tones) + BASS_BONUS * (root == bass_pc))
            if score > best[0] + 1e-9:
                best = (score, root, quality)
    return best[1], best[2]


__all__ = ["RECOGNISED", "SUS_QUALITIES", "name_chord"]
