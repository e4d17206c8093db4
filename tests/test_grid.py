"""The 16th-note grid: the vectorised note spans agree with the per-note rule."""

import numpy as np
import pytest

from engine.grid import (
    REST,
    first_onset_16th,
    melody_end_16th,
    melody_grid,
    note_span_16th,
    note_spans_16th,
)
from engine.types import Melody, Meter, Note


def _random_melody(seed: int) -> Melody:
    rng = np.random.default_rng(seed)
    tpb = int(rng.choice([96, 100, 120, 384, 480]))
    notes = tuple(
        Note(int(rng.integers(40, 90)), int(rng.integers(0, 20_000)),
             int(rng.integers(1, 2_000)), 80)
        for _ in range(int(rng.integers(1, 60)))
    )
    return Melody(notes, tpb, Meter(4, 4))


@pytest.mark.parametrize("seed", range(20))
def test_note_spans_match_the_per_note_rule(seed):
    melody = _random_melody(seed)  # odd resolutions: many ticks fall on half 16ths
    starts, ends = note_spans_16th(melody)
    expected = [note_span_16th(n, melody.ticks_per_16th) for n in melody.notes]
    assert list(zip(starts.tolist(), ends.tolist(), strict=True)) == expected
    assert first_onset_16th(melody) == min(s for s, _ in expected)
    assert melody_end_16th(melody) == max(e for _, e in expected)


def test_grid_keeps_the_later_note_and_empty_melodies_are_empty():
    melody = Melody((Note(60, 0, 480, 80), Note(64, 240, 480, 80)), 480, Meter(4, 4))
    pitch, onset = melody_grid(melody)
    assert pitch.tolist() == [60, 60, 64, 64, 64, 64]
    assert np.flatnonzero(onset).tolist() == [0, 2]
    empty = Melody((), 480, Meter(4, 4))
    assert melody_end_16th(empty) == first_onset_16th(empty) == 0
    assert melody_grid(empty, 4)[0].tolist() == [REST] * 4
