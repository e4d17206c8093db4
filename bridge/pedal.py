"""The sustain pedal rendered into note lengths, for DAW paths that cannot carry control changes
(AbletonOSC writes notes only, no clip envelopes or CC)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import replace

from bridge.types import SUSTAIN_PEDAL, ClipControl, ClipNote

PEDAL_DOWN = 64  # MIDI's convention for on/off controllers: 64..127 is down


def _pedal_spans(controls: Sequence[ClipControl], release_beats: float
                 ) -> list[tuple[float, float]]:
    """(down, up) beats of each press of the sustain pedal, in time order; a press never lifted
    ends at `release_beats`. Changes at one time apply in the order given."""
    spans: list[tuple[float, float]] = []
    down: float | None = None
    changes = sorted((c for c in controls if c.controller == SUSTAIN_PEDAL),
                     key=lambda c: c.start_beats)
    for change in changes:
        if change.value >= PEDAL_DOWN and down is None:
            down = change.start_beats
        elif change.value < PEDAL_DOWN and down is not None:
            if change.start_beats > down:
                spans.append((down, change.start_beats))
            down = None
    if down is not None and release_beats > down:
        spans.append((down, release_beats))
    return spans


def sustain_into_durations(notes: Sequence[ClipNote], controls: Sequence[ClipControl]
                           ) -> tuple[ClipNote, ...]:
    """`notes` (in their order) as they sound under the sustain pedal in `controls`: a note still
    sounding when the pedal goes down, or starting while it is down, is held until the pedal
    comes up — but never past the next onset of the same pitch, and a pedal never lifted holds
    no further than the part's last note end. A note released exactly as the pedal goes down is
    not held (MIDI plays the note-off first). Other controllers are ignored."""
    if not notes:
        return ()
    spans = _pedal_spans(controls, max(n.start_beats + n.duration_beats for n in notes))
    if not spans:
        return tuple(notes)
    downs = [down for down, _ in spans]
    onsets: dict[int, list[float]] = {}
    for note in notes:
        onsets.setdefault(note.pitch, []).append(note.start_beats)
    for starts in onsets.values():
        starts.sort()
    held: list[ClipNote] = []
    for note in notes:
        end = note.start_beats + note.duration_beats
        index = bisect.bisect_left(downs, end) - 1  # the last press that began before `end`
        if index < 0 or not end < spans[index][1]:
            held.append(note)
            continue
        starts = onsets[note.pitch]
        later = bisect.bisect_right(starts, note.start_beats)
        next_onset = starts[later] if later < len(starts) else math.inf
        new_end = max(end, min(spans[index][1], next_onset))
        held.append(replace(note, duration_beats=new_end - note.start_beats)
                    if new_end > end else note)
    return tuple(held)
