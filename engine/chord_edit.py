"""Changing one chord of a result: a typed chord symbol read into a `Chord`, the chords that fit
a chord's span of the melody best (the harmonizer's own slot scores), and the phrase with that
chord swapped in, kept as its progression so a lock holds it through later generations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from engine.chords import TRIADS
from engine.edits import _by_score, _phrase, _with_phrase, one_meter_part
from engine.errors import BadInputError
from engine.harmonizer import melody_slot_scores
from engine.harmonizer.colour import SCALES, MelodyPitchClasses, chord_tones, colours_for_melody
from engine.harmonizer.micro import chord_row
from engine.library.chord_templates import TemplateLibrary
from engine.types import (
    QUALITY_SUFFIX,
    Chord,
    ChordEvent,
    Harmonization,
    HarmonizeOptions,
    PhraseHarmony,
)

SUGGESTIONS = 8

_NOTE_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ACCIDENTAL = {"#": 1, "♯": 1, "b": -1, "♭": -1}
# How people write each quality, beside the suffix we print (`QUALITY_SUFFIX`); matched after
# brackets and spaces are taken out, and case matters only where it does on lead sheets (M/m).
_ALIASES: dict[str, str] = {
    "M": "maj", "maj": "maj", "major": "maj", "min": "min", "-": "min", "minor": "min",
    "°": "dim", "o": "dim", "+": "aug", "#5": "aug", "sus": "sus4", "dom7": "7",
    "M7": "maj7", "Maj7": "maj7", "ma7": "maj7", "Δ": "maj7", "Δ7": "maj7", "min7": "min7",
    "-7": "min7", "ø": "hdim7", "ø7": "hdim7", "min7b5": "hdim7", "-7b5": "hdim7",
    "°7": "dim7", "o7": "dim7", "min6": "min6", "-6": "min6", "M9": "maj9", "Maj9": "maj9",
    "min9": "min9", "-9": "min9", "7sus": "7sus4", "add2": "add9", "2": "add9",
    "minadd9": "minadd9", "madd2": "minadd9", "mM7": "minmaj7", "minmaj7": "minmaj7",
    "-maj7": "minmaj7", "min11": "min11", "-11": "min11",
}
_QUALITY_OF = {**{suffix.replace("(", "").replace(")", ""): q
                  for q, suffix in QUALITY_SUFFIX.items()}, **_ALIASES}
_SYMBOL = re.compile(r"([A-Ga-g])([#b♯♭]*)([^/]*)(?:/([A-Ga-g])([#b♯♭]*))?")
EXAMPLES = "e.g. C, F#m7, Bbmaj7, Dsus4, G7/B"


@dataclass(frozen=True)
class ChordSuggestion:
    """A chord that fits a span of the melody, with how well: its mean slot score there."""

    chord: Chord
    score: float


def _pitch_class(letter: str, accidentals: str) -> int:
    return (_NOTE_PC[letter.upper()] + sum(_ACCIDENTAL[a] for a in accidentals)) % 12


def parse_chord_symbol(text: str) -> Chord:
    """A lead-sheet chord symbol ("C", "F#m7", "Bb/D", "Cm(add9)", "G7sus4", "Eø") as a
    `Chord`; every symbol `Chord.symbol` prints reads back to the same chord. A symbol it does
    not know raises BadInputError saying what was wrong, with examples."""
    symbol = "".join(text.split())
    match = _SYMBOL.fullmatch(symbol)
    if not symbol or match is None:
        raise BadInputError(
            f"{text.strip()!r} is not a chord symbol: start with a note A-G ({EXAMPLES})"
        )
    letter, accidentals, suffix, bass_letter, bass_accidentals = match.groups()
    root = _pitch_class(letter, accidentals)
    written = suffix.replace("(", "").replace(")", "")
    quality = _QUALITY_OF.get(written) or _QUALITY_OF.get(written.lower())
    if quality is None:
        known = ", ".join(s or "(major)" for s in QUALITY_SUFFIX.values())
        raise BadInputError(
            f"{text.strip()!r}: unknown chord quality {suffix!r} (known: {known}; {EXAMPLES})"
        )
    bass = root if bass_letter is None else _pitch_class(bass_letter, bass_accidentals)
    return Chord(root, quality, bass)


def _event(harmony: PhraseHarmony, phrase_index: int, event_index: int) -> ChordEvent:
    events = harmony.chosen.chords
    if not 0 <= event_index < len(events):
        raise BadInputError(
            f"phrase {phrase_index + 1} has {len(events)} chords, not {event_index + 1}"
        )
    return events[event_index]


def suggest_chords(
    harmonization: Harmonization, phrase_index: int, event_index: int,
    options: HarmonizeOptions, count: int = SUGGESTIONS,
) -> tuple[ChordSuggestion, ...]:
    """The chords that fit chord `event_index` of the phrase's progression best, best first.

    Every (root, triad) is scored as the search scores a template over those 8th-note slots:
    the mean of its slot scores (AccoMontage2 eq. 2's note-wise table; with variant ours less
    the strong-beat clash and plus the learned scorer's term, `melody_slot_scores`), then
    coloured for the melody over the span like a searched chord (`colours_for_melody`)."""
    harmony = _phrase(harmonization, phrase_index)
    event = _event(harmony, phrase_index, event_index)
    part = one_meter_part(harmonization, phrase_index)
    local, offset = part.harmonization, part.offset_16th
    analysis = local.analysis
    key = analysis.key
    pitch = _melody_pitch(local)
    slots, _ = melody_slot_scores(pitch, analysis, options)
    first = (event.start_16th - offset - analysis.downbeat_16th) // 2
    last = -(-(event.end_16th - offset - analysis.downbeat_16th) // 2)
    span = slots[max(first, 0): max(last, first + 1)]
    triads = [(degree, triad) for degree in range(12) for triad in TRIADS]
    # (rounded: the rules' table often ties, and those ties must not hang on the last bit)
    scores = [round(float(span[:, chord_row(d, t)].mean()), 9) if len(span) else 0.0
              for d, t in triads]
    # equal scores: chords of the key first, plainer triads first
    in_key = [chord_tones(t) <= {(pc - d) % 12 for pc in SCALES[key.mode]} for d, t in triads]
    order = sorted(range(len(triads)), key=lambda j: (-scores[j], not in_key[j], j))
    heard = MelodyPitchClasses(pitch, key.tonic_pc).histogram(
        event.start_16th - offset, event.end_16th - offset)
    picked = [triads[j] for j in order[: 3 * count]]  # colouring may make two alike
    colours = colours_for_melody([(t, d) for d, t in picked], key.mode, harmony.style,
                                 np.tile(heard, (len(picked), 1)),
                                 [event_index == len(harmony.chosen.chords) - 1] * len(picked))
    out: list[ChordSuggestion] = []
    for (degree, _), quality, j in zip(picked, colours, order, strict=False):
        root = (key.tonic_pc + degree) % 12
        chord = Chord(root, quality, root)
        if len(out) < count and all(s.chord != chord for s in out):
            out.append(ChordSuggestion(chord, scores[j]))
    return tuple(out)


def _melody_pitch(harmonization: Harmonization) -> np.ndarray:
    from engine.pipeline import _melody_pitch as grid

    return grid(harmonization.melody, harmonization.analysis)


def replace_chord(
    harmonization: Harmonization, phrase_index: int, event_index: int, chord: Chord,
    options: HarmonizeOptions, library: TemplateLibrary | None = None,
) -> Harmonization:
    """Chord `event_index` of the phrase's progression becomes `chord` (same start and length,
    exactly as given: no colour is added); the other phrases keep their chords.

    The edited progression is scored by the DP with every phrase locked (AccoMontage2 eq. 5 with
    the macro term to its neighbours), so `Harmonization.score` is the path's; the phrase's
    alternatives are the search's against its neighbours, with the progression before the edit
    among them. Lock the returned `chosen` to keep the edit through later generations."""
    from engine.pipeline import harmonize

    harmony = _phrase(harmonization, phrase_index)
    event = _event(harmony, phrase_index, event_index)
    events = list(harmony.chosen.chords)
    events[event_index] = replace(event, chord=chord)
    edited = replace(harmony.chosen, chords=tuple(events))
    locked = {j: ph.chosen for j, ph in enumerate(harmonization.phrases)}
    locked[phrase_index] = edited
    searched = harmonize(
        harmonization.melody, replace(options, voicing=harmonization.voicing), library,
        harmonization.analysis, locked=locked,
    )
    found = searched.phrases[phrase_index]
    previous = replace(harmony.chosen, path_score=harmonization.score)
    others = [a for a in found.alternatives if a.chords not in (previous.chords, edited.chords)]
    alternatives = _by_score([previous, *others])[: max(options.top_k, 1)]
    new = PhraseHarmony(harmony.phrase, harmony.style, found.chosen, alternatives)
    return _with_phrase(harmonization, phrase_index, new, searched.score)


__all__ = ["ChordSuggestion", "parse_chord_symbol", "replace_chord", "suggest_chords"]
