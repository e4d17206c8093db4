"""The chord chart: a JSON-ready summary of a harmonization for files, the panel and the bridge.

Positions are given both as 16ths from the file start and as 1-based bar/beat numbers counted
from the first downbeat (beat = the meter's felt beat: dotted quarter in 6/8, 9/8, 12/8). When
the meter changes, bars count on through the piece, each bar in its own meter (bar lines
restart at every change), and beats are those of the meter sounding there.
"""

from __future__ import annotations

from typing import Any

from engine.types import (
    Arrangement,
    ChordEvent,
    Harmonization,
    MelodyAnalysis,
    ProgressionChoice,
)

CHART_SCHEMA = 1


def _position(analysis: MelodyAnalysis, start_16th: int) -> tuple[int, float]:
    section = analysis.section_at(start_16th)
    offset = start_16th - section.start_16th
    bar16 = section.meter.sixteenths_per_bar
    return section.first_bar + offset // bar16 + 1, (offset % bar16) / section.meter.beat_16th + 1


def _event(analysis: MelodyAnalysis, ev: ChordEvent) -> dict[str, Any]:
    bar, beat = _position(analysis, ev.start_16th)
    return {
        "symbol": ev.chord.symbol(analysis.key),
        "root": ev.chord.root_pc,
        "quality": ev.chord.quality,
        "bass": ev.chord.bass_pc,
        "bar": bar,
        "beat": round(beat, 3),
        "start_16th": ev.start_16th,
        "duration_16th": ev.duration_16th,
    }


def _choice(analysis: MelodyAnalysis, choice: ProgressionChoice) -> dict[str, Any]:
    return {
        "chords": [_event(analysis, ev) for ev in choice.chords],
        "style": choice.style,
        "template_ids": list(choice.template_ids),
        "scores": {
            "micro": round(choice.micro, 4), "meso": round(choice.meso, 4),
            "prefix": round(choice.prefix_score, 4), "path": round(choice.path_score, 4),
        },
    }


def harmonization_chart(result: Harmonization) -> dict[str, Any]:
    a = result.analysis
    return {
        "schema": CHART_SCHEMA,
        "key": {"tonic": a.key.pitch_name(a.key.tonic_pc), "mode": a.key.mode,
                "name": a.key.name, "confidence": round(a.key_confidence, 3),
                "source": a.key_source},
        "meter": a.meter.name,
        # every meter of the piece from its first bar (one entry when the meter never changes)
        "meters": [
            {"bar": s.first_bar + 1, "meter": s.meter.name, "start_16th": s.start_16th}
            for s in a.sections or (a.section_at(a.downbeat_16th),)
        ],
        "pickup_16th": a.pickup_16th,
        "downbeat_16th": a.downbeat_16th,
        "phrase_string": a.phrase_string,
        "phrase_source": a.phrase_source,
        "score": round(result.score, 4),
        "phrases": [
            {
                "index": i,
                "label": ph.phrase.label,
                "start_bar": ph.phrase.start_bar + 1,
                "bars": ph.phrase.bars,
                "meter": a.section_of_bar(ph.phrase.start_bar).meter.name,
                "style": ph.style,
                "chosen": _choice(a, ph.chosen),
                "alternatives": [_choice(a, alt) for alt in ph.alternatives],
            }
            for i, ph in enumerate(result.phrases)
        ],
    }


def arrangement_chart(result: Arrangement) -> dict[str, Any]:
    """The harmonization chart plus the texture chosen for each phrase."""
    chart = harmonization_chart(result.harmonization)
    for phrase, texture in zip(chart["phrases"], result.textures, strict=True):
        phrase["texture"] = {
            "library": texture.library,
            "name": texture.name,
            "density_level": texture.density_level,
            "polyphony_level": texture.polyphony_level,
            "transpose": texture.transpose,
            "fitness": round(texture.fitness, 4),
        }
    return chart
