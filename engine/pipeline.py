"""The engine's front door: melody in; analysed, harmonized and arranged song out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from engine.analysis import analyze
from engine.grid import melody_end_16th, melody_grid
from engine.harmonizer import harmonize_phrases, phrase_styles
from engine.library.chord_templates import TemplateLibrary, load_library
from engine.types import (
    Arrangement,
    ArrangeOptions,
    ChordEvent,
    Harmonization,
    HarmonizeOptions,
    Melody,
    MelodyAnalysis,
    Note,
    PhraseHarmony,
    ProgressionChoice,
    Voicing,
)
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
    locked: Mapping[int, ProgressionChoice] | None = None,
) -> Harmonization:
    """Chords for a melody (AccoMontage2 §3.2) and their voiced Chords-track notes; `locked`
    phrases (by index) keep exactly the given progression (see engine.edits)."""
    library = library or load_library()
    analysis = analysis or analyze_melody(melody, options)
    pitch = _melody_pitch(melody, analysis)
    phrases, score = harmonize_phrases(pitch, analysis, options, library, locked or {})
    chord_notes = voice_harmonization(melody, analysis, phrases, options.voicing, pitch)
    return Harmonization(
        melody=melody, analysis=analysis, phrases=phrases, chord_notes=chord_notes, score=score,
        voicing=options.voicing,
    )


def _melody_pitch(melody: Melody, analysis: MelodyAnalysis) -> np.ndarray:
    length = max(melody_end_16th(melody), analysis.bar_start_16th(analysis.total_bars))
    return melody_grid(melody, length)[0]


def voice_harmonization(
    melody: Melody, analysis: MelodyAnalysis, phrases: Sequence[PhraseHarmony],
    voicing: Voicing | None = None, melody_pitch: np.ndarray | None = None,
) -> tuple[Note, ...]:
    """The Chords-track notes for the chosen progression of every phrase (`melody_pitch`: the
    melody's grid when the caller has it already)."""
    events = [ev for ph in phrases for ev in ph.chosen.chords]
    starts = frozenset(analysis.bar_start_16th(p.start_bar) for p in analysis.phrases)
    pitch = _melody_pitch(melody, analysis) if melody_pitch is None else melody_pitch
    return voice_chords(
        events, pitch, melody.ticks_per_16th,
        analysis.meter.sixteenths_per_bar, analysis.downbeat_16th, starts, voicing,
    )


def _clip(event: ChordEvent, lo: int, hi: int) -> ChordEvent:
    start = max(event.start_16th, lo)
    return ChordEvent(event.chord, start, min(event.end_16th, hi) - start)


def given_chords(
    melody: Melody, chords: Sequence[ChordEvent],
    options: HarmonizeOptions = HarmonizeOptions(), analysis: MelodyAnalysis | None = None,
) -> Harmonization:
    """A Harmonization holding the user's own chords, split at the phrase boundaries, so the
    arranger treats them exactly like searched ones (no scores, no alternatives)."""
    analysis = analysis or analyze_melody(melody, options)
    styles = phrase_styles(options, len(analysis.phrases))
    harmonies = []
    for phrase, style in zip(analysis.phrases, styles, strict=True):
        lo = analysis.bar_start_16th(phrase.start_bar)
        hi = analysis.bar_start_16th(phrase.end_bar)
        inside = tuple(
            _clip(ev, lo, hi)
            for ev in chords
            if ev.start_16th < hi and ev.end_16th > lo
        )
        choice = ProgressionChoice((), style, inside, micro=0.0, meso=0.0, total=0.0)
        harmonies.append(PhraseHarmony(phrase, style, choice, ()))
    chord_notes = voice_harmonization(melody, analysis, harmonies, options.voicing)
    return Harmonization(melody, analysis, tuple(harmonies), chord_notes, score=0.0,
                         voicing=options.voicing)


def arrange(
    melody: Melody,
    options: ArrangeOptions = ArrangeOptions(),
    chords: Sequence[ChordEvent] | None = None,
    library: TemplateLibrary | None = None,
) -> Arrangement:
    """Chords (searched, or the user's) and a piano accompaniment (AccoMontage §3.3)."""
    from engine.arranger.arrange import arrange_piano

    if chords is None:
        harmonization = harmonize(melody, options.harmonize, library)
    else:
        harmonization = given_chords(melody, chords, options.harmonize)
    donors = _donors() if options.library != "default" else None
    return arrange_piano(harmonization, options, donors)


_DONORS: dict[tuple[str, float], object] = {}


def _donors() -> object | None:
    """The imported POP909 donor library, loaded once per file version (it is ~12 MB)."""
    from engine.library.pop909_textures import default_library_path, load_donor_library

    path = default_library_path()
    try:
        key = (str(path), path.stat().st_mtime)
    except OSError:
        return None
    if key not in _DONORS:
        _DONORS.clear()
        _DONORS[key] = load_donor_library(path)
    return _DONORS[key]


__all__ = ["analyze_melody", "arrange", "given_chords", "harmonize", "voice_harmonization"]
