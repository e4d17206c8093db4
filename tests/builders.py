"""Small hand-made inputs for tests: template libraries and melodies built in code."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.grid import REST
from engine.library.chord_templates import (
    ChordTemplate,
    MeterLibrary,
    TemplateChord,
    TemplateLibrary,
)
from engine.types import Style


def template(
    bars: int, chords: Sequence[tuple[int, str, int]], count: int = 1, mode: str = "major",
    style: Style = "pop_standard", meter: str = "4/4",
) -> ChordTemplate:
    """chords: (root semitones above tonic, quality, slots)."""
    return ChordTemplate(
        id=0, meter=meter, mode=mode, bars=bars,  # type: ignore[arg-type]
        chords=tuple(TemplateChord(r, q, 0, s) for r, q, s in chords),
        count=count, style=style, source="test",
    )


def library(templates: Sequence[ChordTemplate], meter: str = "4/4") -> TemplateLibrary:
    """A library whose junction counts come from the templates' own consecutive bars."""
    numbered = [
        ChordTemplate(i, t.meter, t.mode, t.bars, t.chords, t.count, t.style, t.source)
        for i, t in enumerate(templates)
    ]
    junctions: dict = {}
    for t in numbered:
        sigs = t.bar_signatures()
        for a, b in zip(sigs, sigs[1:], strict=False):
            junctions[(t.mode, a, b)] = junctions.get((t.mode, a, b), 0) + t.count
    return TemplateLibrary({meter: MeterLibrary(meter, tuple(numbered), junctions)})


def melody_grids(notes: Sequence[tuple[int, int, int]], length: int) -> tuple[np.ndarray,
                                                                            np.ndarray]:
    """Melody (pitch, start, length in 16ths) notes → the pitch and onset grids of
    `engine.grid.melody_grid`."""
    pitch = np.full(length, REST, dtype=np.int16)
    onset = np.zeros(length, dtype=bool)
    for p, start, dur in notes:
        pitch[start : start + dur] = p
        onset[start] = True
    return pitch, onset
