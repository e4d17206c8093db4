"""Melody analysis: key and mode, the bar grid (pickup, first downbeat) and phrase structure.

Everything the release needs typed in (algorithms.md §3) is estimated here; values the user
gives always win.
"""

from __future__ import annotations

from engine.analysis.key import estimate_key, parse_key
from engine.analysis.meter_grid import detect_pickup, first_downbeat
from engine.analysis.phrases import parse_phrase_string, segment_phrases, total_bars
from engine.errors import BadInputError, OptionError
from engine.grid import note_spans_16th
from engine.types import Key, Melody, MelodyAnalysis

__all__ = [
    "analyze",
    "detect_pickup",
    "estimate_key",
    "first_downbeat",
    "parse_key",
    "parse_phrase_string",
    "segment_phrases",
]


def analyze(
    melody: Melody,
    key: Key | None = None,
    phrases: str | None = None,
    pickup_16th: int | None = None,
) -> MelodyAnalysis:
    """Key, bar grid and phrases of `melody`; `key`, `phrases` and `pickup_16th` override."""
    if not melody.notes:
        raise BadInputError("the melody has no notes to analyse")
    meter = melody.meter
    bar = meter.sixteenths_per_bar
    if pickup_16th is None:
        pickup_16th = detect_pickup(melody)
    elif not 0 <= pickup_16th < bar:
        raise OptionError(
            f"pickup must be 0-{bar - 1} sixteenths (a {meter.name} bar is {bar} sixteenths), "
            f"got {pickup_16th}"
        )
    downbeat = first_downbeat(melody, pickup_16th)
    if key is None:
        key_found, confidence = estimate_key(melody, pickup_16th)
    else:
        key_found, confidence = key, 1.0
    if phrases is None:
        found = segment_phrases(melody, downbeat, key_found)
    else:
        last_onset = int(note_spans_16th(melody)[0].max())
        found = parse_phrase_string(
            phrases, total_bars(melody, downbeat), (last_onset - downbeat) // bar
        )
    return MelodyAnalysis(
        key=key_found,
        key_confidence=confidence,
        meter=meter,
        pickup_16th=pickup_16th,
        downbeat_16th=downbeat,
        phrases=found,
        key_source="detected" if key is None else "user",
        phrase_source="detected" if phrases is None else "user",
    )
