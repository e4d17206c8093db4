"""The engine's front door: melody in; analysed, harmonized and arranged song out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from engine import meter_sections as sections
from engine.analysis import analyze
from engine.errors import BadInputError, UnsupportedMeterError
from engine.grid import melody_end_16th, melody_grid
from engine.harmonizer import harmonize_phrases, phrase_styles, uses_learned_scorer
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
    PedalEvent,
    PhraseHarmony,
    ProgressionChoice,
    TextureChoice,
    Voicing,
)
from engine.voicing import voice_chords


def analyze_melody(
    melody: Melody, options: HarmonizeOptions = HarmonizeOptions()
) -> MelodyAnalysis:
    """Key, meter, pickup and phrases: the user's values where given, detected otherwise (a
    melody whose meter changes: per meter section, engine.meter_sections)."""
    if melody.meter_changes:
        return sections.analyze_sections(
            melody, key=options.key, phrases=options.phrases, pickup_16th=options.pickup_16th
        )
    return analyze(
        melody, key=options.key, phrases=options.phrases, pickup_16th=options.pickup_16th
    )


def prepare(options: HarmonizeOptions = HarmonizeOptions()) -> None:
    """Load what harmonizing with `options` needs — the template library and, for the learned
    scorer, torch and its model — so a resident app pays before its first request."""
    load_library()
    if uses_learned_scorer(options):
        from engine.harmonizer.learned import load_scorer

        load_scorer()


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
    if analysis.sections:
        return _harmonize_sections(melody, options, library, analysis, locked or {})
    pitch = _melody_pitch(melody, analysis)
    phrases, score = harmonize_phrases(pitch, analysis, options, library, locked or {})
    chord_notes = voice_harmonization(melody, analysis, phrases, options.voicing, pitch)
    return Harmonization(
        melody=melody, analysis=analysis, phrases=phrases, chord_notes=chord_notes, score=score,
        voicing=options.voicing,
    )


def _harmonize_sections(
    melody: Melody, options: HarmonizeOptions, library: TemplateLibrary,
    analysis: MelodyAnalysis, locked: Mapping[int, ProgressionChoice],
) -> Harmonization:
    """A melody whose meter changes: each meter section harmonized on its own (its phrases,
    its meter's templates, chords on its bar grid), then shifted back into the piece. The DP
    does not run across a change: no template spans two meters."""
    styles = phrase_styles(options, len(analysis.phrases))
    for i in locked:
        if not 0 <= i < len(analysis.phrases):
            raise BadInputError(
                f"cannot lock phrase {i + 1}: the melody has {len(analysis.phrases)} phrases")
    harmonies: list[PhraseHarmony] = []
    notes: list[Note] = []
    score = 0.0
    for k, piece in enumerate(sections.split_melody(melody)):
        indices = sections.phrase_range(analysis, k)
        if not indices:
            continue
        first = indices[0]
        local = replace(options, phrase_styles=styles[first : indices[-1] + 1])
        locks = {i - first: sections.shift_choice(lock, -piece.offset_16th)
                 for i, lock in locked.items() if i in indices}
        result = harmonize(piece.melody, local, library,
                           sections.section_analysis(analysis, k, piece), locks)
        first_bar = analysis.sections[k].first_bar
        harmonies += [sections.shift_harmony(ph, piece.offset_16th, first_bar)
                      for ph in result.phrases]
        notes += sections.shift_notes(result.chord_notes, piece.offset_tick)
        score += result.score
    return Harmonization(melody, analysis, tuple(harmonies), tuple(notes), score,
                         voicing=options.voicing)


def _melody_pitch(melody: Melody, analysis: MelodyAnalysis) -> np.ndarray:
    length = max(melody_end_16th(melody), analysis.bar_start_16th(analysis.total_bars))
    return melody_grid(melody, length)[0]


def voice_harmonization(
    melody: Melody, analysis: MelodyAnalysis, phrases: Sequence[PhraseHarmony],
    voicing: Voicing | None = None, melody_pitch: np.ndarray | None = None,
) -> tuple[Note, ...]:
    """The Chords-track notes for the chosen progression of every phrase (`melody_pitch`: the
    melody's grid when the caller has it already)."""
    if analysis.sections:
        return _voice_sections(melody, analysis, phrases, voicing)
    events = [ev for ph in phrases for ev in ph.chosen.chords]
    starts = frozenset(analysis.bar_start_16th(p.start_bar) for p in analysis.phrases)
    pitch = _melody_pitch(melody, analysis) if melody_pitch is None else melody_pitch
    return voice_chords(
        events, pitch, melody.ticks_per_16th,
        analysis.meter.sixteenths_per_bar, analysis.downbeat_16th, starts, voicing,
    )


def _voice_sections(
    melody: Melody, analysis: MelodyAnalysis, phrases: Sequence[PhraseHarmony],
    voicing: Voicing | None,
) -> tuple[Note, ...]:
    """`voice_harmonization` per meter section (chords re-struck at that section's bar lines)."""
    notes: list[Note] = []
    for k, piece in enumerate(sections.split_melody(melody)):
        local = sections.section_analysis(analysis, k, piece)
        first_bar = analysis.sections[k].first_bar
        mine = [sections.shift_harmony(phrases[i], -piece.offset_16th, -first_bar)
                for i in sections.phrase_range(analysis, k)]
        if mine:
            voiced = voice_harmonization(piece.melody, local, mine, voicing)
            notes += sections.shift_notes(voiced, piece.offset_tick)
    return tuple(notes)


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
        choice = ProgressionChoice((), style, inside, micro=0.0, meso=0.0,
                                   prefix_score=0.0, path_score=0.0)
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
    if harmonization.analysis.sections:
        return arrange_sections(harmonization, options, donors)
    return arrange_piano(harmonization, options, donors)


def arrange_sections(
    harmonization: Harmonization, options: ArrangeOptions, donors: object | None,
    locked: Mapping[int, TextureChoice] | None = None,
    changing: Mapping[int, TextureChoice] | None = None,
) -> Arrangement:
    """`arrange_piano` for a melody whose meter changes: each meter section arranged on its
    own (textures of its meter; POP909 donors only where it is 4/4), shifted back and joined.
    `locked`/`changing` are by phrase index of the whole piece, as for one meter."""
    from engine.arranger.arrange import arrange_piano

    analysis = harmonization.analysis
    textures: list[TextureChoice] = []
    piano: list[Note] = []
    pedal: list[PedalEvent] = []
    for k, piece in enumerate(sections.split_melody(harmonization.melody)):
        indices = sections.phrase_range(analysis, k)
        if not indices:
            continue
        first_bar = analysis.sections[k].first_bar
        part = arrange_piano(
            sections.section_harmonization(harmonization, k, piece), options, donors,
            locked=sections.section_textures(locked, indices, first_bar),
            changing=sections.section_textures(changing, indices, first_bar),
        )
        textures += [sections.shift_texture(t, first_bar) for t in part.textures]
        piano += sections.shift_notes(part.piano_notes, piece.offset_tick)
        pedal += sections.shift_pedal(part.pedal, piece.offset_tick)
    return Arrangement(harmonization, tuple(textures),
                       tuple(sorted(piano, key=lambda n: (n.start_tick, n.pitch))), tuple(pedal))


def require_one_meter(melody: Melody, where: str) -> None:
    """Refuse a melody whose meter changes where only one meter can travel (a DAW clip carries
    one time signature), naming the first change and what does take it."""
    if melody.meter_changes:
        tick, meter = melody.meter_changes[0]
        bar = sections.bar_of_tick(melody, tick) + 1
        raise UnsupportedMeterError(
            f"{where} takes one meter per clip, but this melody changes from "
            f"{melody.meter.name} to {meter.name} at bar {bar}; harmonize or arrange the file "
            "with `accobridge harmonize`/`accobridge arrange` instead"
        )


_DONORS: dict[tuple[str, float], object] = {}


def _donors() -> object | None:
    """The POP909 donor library (the user's import, else the shipped one), loaded once per file
    version (it is ~12 MB)."""
    from engine.library.pop909_textures import donor_library_path, load_donor_library

    path = donor_library_path()
    if path is None:
        return None
    try:
        key = (str(path), path.stat().st_mtime)
    except OSError:
        return None
    if key not in _DONORS:
        _DONORS.clear()
        _DONORS[key] = load_donor_library(path)
    return _DONORS[key]


__all__ = [
    "analyze_melody", "arrange", "arrange_sections", "given_chords", "harmonize", "prepare",
    "require_one_meter", "voice_harmonization",
]
