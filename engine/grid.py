"""The 16th-note melody grid every analysis and score works on (AccoMontage2 §3.1)."""

from __future__ import annotations

import numpy as np

from engine.types import Melody, Note

REST = -1


def note_span_16th(note: Note, ticks_per_16th: float) -> tuple[int, int]:
    """Quantised (start, end) of a note in 16ths; every note keeps at least one step."""
    start = int(round(note.start_tick / ticks_per_16th))
    end = max(start + 1, int(round(note.end_tick / ticks_per_16th)))
    return start, end


def note_spans_16th(melody: Melody) -> tuple[np.ndarray, np.ndarray]:
    """`note_span_16th` of every note at once (numpy rounds halves to even, as `round` does)."""
    if not melody.notes:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    ticks = np.array([(n.start_tick, n.start_tick + n.duration_tick) for n in melody.notes],
                     dtype=float)
    spans = np.rint(ticks / melody.ticks_per_16th).astype(np.int64)
    starts = spans[:, 0]
    return starts, np.maximum(starts + 1, spans[:, 1])


def melody_grid(melody: Melody, length_16th: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pitch per 16th from tick 0 (REST where silent) and a bool onset mask.

    A later note cuts an earlier one still sounding, so the grid stays monophonic.
    """
    starts, ends = note_spans_16th(melody)
    natural = int(ends.max(initial=0))
    size = natural if length_16th is None else length_16th
    pitch = np.full(size, REST, dtype=np.int16)
    onset = np.zeros(size, dtype=bool)
    for i in np.argsort(starts, kind="stable").tolist():
        start, end = int(starts[i]), int(ends[i])
        if start >= size:
            continue
        pitch[start : min(end, size)] = melody.notes[i].pitch
        onset[start] = True
    return pitch, onset


def melody_end_16th(melody: Melody) -> int:
    return int(note_spans_16th(melody)[1].max(initial=0))


def first_onset_16th(melody: Melody) -> int:
    return int(note_spans_16th(melody)[0].min()) if melody.notes else 0
