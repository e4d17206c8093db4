"""The simple baseline harmonizer the quality benchmark measures ours against.

Per span, the diatonic triad of the key that covers most melody duration with chord tones. The
span is half a bar in 4/4 and 2/2 (a half note) and a whole bar in 2/4, 3/4 and 6/8 (a half note,
a dotted half, two dotted quarters): every meter then changes chord at most every 8–12 16ths,
about the rate of the human chords. Spans are laid on the bar grid (pickup_16th + k · span).
"""

from __future__ import annotations

import numpy as np

from benchmarks.eval_corpus import close_voicing
from engine.grid import REST, first_onset_16th, melody_end_16th, melody_grid
from engine.types import Key, Melody, Meter, Note

TRIPLE_METERS = ("3/4", "6/8")
# (root offset from the tonic, triad intervals), in tie-break order: I, IV, V first, then the
# others. Minor uses the harmonic-minor V and natural-minor III, VI, VII, as most tunes do.
_MAJOR = (4, 7)
_MINOR = (3, 7)
_DIMINISHED = (3, 6)
DIATONIC_TRIADS: dict[str, tuple[tuple[int, tuple[int, int]], ...]] = {
    "major": (
        (0, _MAJOR), (5, _MAJOR), (7, _MAJOR), (9, _MINOR), (2, _MINOR), (4, _MINOR),
        (11, _DIMINISHED),
    ),
    "minor": (
        (0, _MINOR), (5, _MINOR), (7, _MAJOR), (8, _MAJOR), (3, _MAJOR), (10, _MAJOR),
        (2, _DIMINISHED),
    ),
}


def span_16th(meter: Meter) -> int:
    """Chord span of the baseline: half a bar in 4/4 and 2/2, a bar in 2/4, 3/4 and 6/8."""
    bar = meter.sixteenths_per_bar
    return bar if meter.name in TRIPLE_METERS or meter.name == "2/4" else bar // 2


def diatonic_triads(key: Key) -> list[frozenset[int]]:
    """The key's seven triads as pitch-class sets, tie-break order first."""
    return [
        frozenset({(key.tonic_pc + root) % 12, *((key.tonic_pc + root + i) % 12 for i in ivs)})
        for root, ivs in DIATONIC_TRIADS[key.mode]
    ]


def baseline_chords(melody: Melody, key: Key, pickup_16th: int = 0) -> tuple[Note, ...]:
    """Close-voiced baseline chords from the span holding the first onset to the melody's end.

    A span without melody keeps the previous chord (nothing to choose by); the first chord
    falls back to the tonic triad.
    """
    if not melody.notes:
        return ()
    span = span_16th(melody.meter)
    end = melody_end_16th(melody)
    pitch, _ = melody_grid(melody, end)
    triads = diatonic_triads(key)
    # triad_of_pc[t, pc]: pitch class pc is a chord tone of triad t
    triad_of_pc = np.array([[pc in triad for pc in range(12)] for triad in triads])
    start = pickup_16th + (first_onset_16th(melody) - pickup_16th) // span * span
    notes: list[Note] = []
    previous = triads[0]
    for span_start in range(start, end, span):
        lo, hi = max(span_start, 0), min(span_start + span, end)
        sounding = pitch[lo:hi]
        sounding = sounding[sounding != REST] % 12
        if sounding.size:
            coverage = triad_of_pc[:, sounding].sum(axis=1)
            previous = triads[int(np.argmax(coverage))]  # argmax keeps the first of ties
        ticks = melody.ticks_per_16th
        notes += close_voicing(previous, round(lo * ticks), round((hi - lo) * ticks))
    return tuple(notes)
