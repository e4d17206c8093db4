"""The chord-quality vocabulary shared by the library, the micro score and the voicing engine."""

from __future__ import annotations

INTERVALS: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6), "aug": (0, 4, 8),
    "sus2": (0, 2, 7), "sus4": (0, 5, 7), "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10), "hdim7": (0, 3, 6, 10), "dim7": (0, 3, 6, 9), "6": (0, 4, 7, 9),
    "min6": (0, 3, 7, 9), "9": (0, 4, 10, 14), "maj9": (0, 4, 11, 14), "min9": (0, 3, 10, 14),
    "7sus4": (0, 5, 7, 10), "add9": (0, 4, 7, 14), "minadd9": (0, 3, 7, 14),
    "minmaj7": (0, 3, 7, 11), "11": (0, 7, 10, 14, 17), "min11": (0, 3, 10, 14, 17),
    "13": (0, 4, 10, 14, 21),
}
TRIAD_OF: dict[str, str] = {
    "7": "maj", "maj7": "maj", "6": "maj", "9": "maj", "maj9": "maj", "add9": "maj",
    "11": "maj", "13": "maj", "min7": "min", "min6": "min", "min9": "min", "minadd9": "min",
    "minmaj7": "min", "min11": "min", "hdim7": "dim", "dim7": "dim", "7sus4": "sus4",
}
TRIADS: tuple[str, ...] = ("maj", "min", "dim", "aug", "sus2", "sus4")


def triad_of(quality: str) -> str:
    """The triad a quality reduces to (unknown names count as major)."""
    triad = TRIAD_OF.get(quality, quality)
    return triad if triad in TRIADS else "maj"


def chord_pitch_classes(root_pc: int, quality: str) -> frozenset[int]:
    return frozenset((root_pc + i) % 12 for i in INTERVALS.get(quality, INTERVALS["maj"]))
