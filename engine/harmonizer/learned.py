"""The learned scorer inside the template DP (issue 10, item 4): the melody-conditioned chord
model's log-probabilities per 8th become one more slot table term, so every template and
concatenation is scored by the same gather as the micro term (eq. 2) — one forward pass per
harmonization. torch is imported only here, only when asked for (`--scorer learned`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.types import Key, Meter, Phrase

LOG_FLOOR = -6.0  # log-probabilities below this (p < 0.25%) all count as "very unlikely"
LEARNED_WEIGHT = 0.5  # weight of the learned term against the rule slot scores (0..1 each)


def learned_slot_scores(
    span_pitch: np.ndarray, key: Key, meter: Meter, phrases: Sequence[Phrase]
) -> np.ndarray:
    """(n_slots, chord rows) in [0, 1]: 1 + log p / |LOG_FLOOR|, clipped at the floor.

    `span_pitch`: absolute MIDI pitch per 16th (−1 rest) from phrase 1's downbeat."""
    from engine.models.chord_model import load_chord_model

    log_p = load_chord_model().slot_log_probs(
        span_pitch, key.tonic_pc, key.mode, meter.sixteenths_per_bar, meter.beat_16th,
        [(p.start_bar, p.bars) for p in phrases],
    )
    return 1.0 + np.maximum(log_p.astype(float), LOG_FLOOR) / -LOG_FLOOR


__all__ = ["LEARNED_WEIGHT", "learned_slot_scores"]
