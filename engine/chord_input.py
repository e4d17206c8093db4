"""Chords given by the user as a MIDI file (`accobridge arrange --chords CHORDS.mid`).

The chord file is read on an 8th-note grid: wherever the set of sounding notes changes, the new
set is named by template matching (root, quality, bass) and identical neighbours merge.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import MidiFileError
from engine.library.chord_labels import recognise_pitch_set
from engine.midi_io import read_note_tracks
from engine.types import Chord, ChordEvent, Note

CHORD_TRACK_HINTS = ("chord", "harmony", "comp")
SLOT_16TH = 2


def _chord_notes(path: Path) -> tuple[int, list[Note]]:
    ticks_per_beat, tracks = read_note_tracks(path)
    named = [notes for name, notes in tracks if any(h in name.lower() for h in CHORD_TRACK_HINTS)]
    chosen = named[0] if named else [n for _, notes in tracks for n in notes]
    return ticks_per_beat, chosen


def read_chord_events(path: str | Path, length_16th: int) -> tuple[ChordEvent, ...]:
    """Chord events (16ths from tick 0) of the chord track in `path`, up to `length_16th`."""
    ticks_per_beat, notes = _chord_notes(Path(path))
    per_16th = ticks_per_beat / 4
    slots = -(-length_16th // SLOT_16TH)
    sounding: list[set[int]] = [set() for _ in range(slots)]
    for note in notes:
        first = int(round(note.start_tick / per_16th / SLOT_16TH))
        last = int(round(note.end_tick / per_16th / SLOT_16TH))
        for slot in range(max(first, 0), min(max(last, first + 1), slots)):
            sounding[slot].add(note.pitch)
    events: list[ChordEvent] = []
    for slot, pitches in enumerate(sounding):
        if len({p % 12 for p in pitches}) < 2:
            continue  # a lone note (or silence) names no chord: the previous one holds
        root, quality, bass = recognise_pitch_set(pitches)
        chord = Chord(root, quality, (root + bass) % 12)
        start = slot * SLOT_16TH
        if events and events[-1].chord == chord:  # same chord again, held or re-struck: merge
            held = events.pop()
            events.append(ChordEvent(chord, held.start_16th, start + SLOT_16TH - held.start_16th))
        else:
            events.append(ChordEvent(chord, start, SLOT_16TH))
    if not events:
        raise MidiFileError(f"{Path(path).name} holds no chords (no two notes sound together)")
    return _fill_gaps(events, length_16th)


def _fill_gaps(events: list[ChordEvent], length_16th: int) -> tuple[ChordEvent, ...]:
    """Each chord lasts until the next one starts (a held harmony), the last to the end."""
    starts = np.array([ev.start_16th for ev in events] + [length_16th])
    return tuple(
        ChordEvent(ev.chord, ev.start_16th, int(max(starts[i + 1] - ev.start_16th, SLOT_16TH)))
        for i, ev in enumerate(events)
    )
