"""The engine's front door: melody in, analysed and harmonized (later: arranged) song out."""

from __future__ import annotations

from engine.analysis import analyze
from engine.grid import melody_end_16th, melody_grid
from engine.harmonizer import harmonize_phrases
from engine.library.chord_templates import TemplateLibrary, load_library
from engine.types import Harmonization, HarmonizeOptions, Melody, MelodyAnalysis
from engine.voicing import voice_chords


def analyze_melody(
    melody: Melody, options: HarmonizeOptions = HarmonizeOptions()
) -> MelodyAnalysis:
    """Key, meter, pickup and phrases: the user's values where given, detected otherwise."""
    return analyze(
        melody, key=options.key, phrases=options.phrases, pickup_16th=options.pickup_16th
    )


def harmonize(
    melody: Melody,
    options: HarmonizeOptions = HarmonizeOptions(),
    library: TemplateLibrary | None = None,
    analysis: MelodyAnalysis | None = None,
) -> Harmonization:
    """Chords for a melody (AccoMontage2 §3.2) and their voiced Chords-track notes."""
    library = library or load_library()
    analysis = analysis or analyze_melody(melody, options)
    bar16 = analysis.meter.sixteenths_per_bar
    length = max(melody_end_16th(melody), analysis.bar_start_16th(analysis.total_bars))
    pitch, _ = melody_grid(melody, length)
    phrases, score = harmonize_phrases(pitch, analysis, options, library)
    events = [ev for ph in phrases for ev in ph.chosen.chords]
    starts = frozenset(analysis.bar_start_16th(p.start_bar) for p in analysis.phrases)
    chord_notes = voice_chords(
        events, pitch, melody.ticks_per_16th, bar16, analysis.downbeat_16th, starts
    )
    return Harmonization(
        melody=melody, analysis=analysis, phrases=phrases, chord_notes=chord_notes, score=score
    )


__all__ = ["analyze_melody", "harmonize"]
