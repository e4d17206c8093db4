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


def melody_grid(melody: Melody, length_16th: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pitch per 16th from tick 0 (REST where silent) and a bool onset mask.

    A later note cuts an earlier one still sounding, so the grid stays monophonic.
    """
    spans = [note_span_16th(n, melody.ticks_per_16th) for n in melody.notes]
    natural = max((end for _, end in spans), default=0)
    size = natural if length_16th is None else length_16th
    pitch = np.full(size, REST, dtype=np.int16)
    onset = np.zeros(size, dtype=bool)
    for note, (start, end) in sorted(zip(melody.notes, spans, strict=True), key=lambda x: x[1][0]):
        if start >= size:
            continue
        pitch[start : min(end, size)] = note.pitch
        onset[start] = True
    return pitch, onset


def melody_end_16th(melody: Melody) -> int:
    return max((note_span_16th(n, melody.ticks_per_16th)[1] for n in melody.notes), default=0)


def first_onset_16th(melody: Melody) -> int:
    return min((note_span_16th(n, melody.ticks_per_16th)[0] for n in melody.notes), default=0)
