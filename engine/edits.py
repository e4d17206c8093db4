"""Per-phrase edits of a harmonized or arranged song: choose an alternative progression,
re-generate with some phrases locked, re-generate or re-arrange one phrase.

Frozen values in, new ones out. Scores: an alternative's `path_score` is the whole-path score
with it swapped in (engine.harmonizer.search.alternatives), so after an edit the edited phrase's
chosen progression carries the same measure and `Harmonization.score` is that path's score.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from engine.errors import BadInputError
from engine.harmonizer import score_scale
from engine.library.chord_templates import TemplateLibrary
from engine.pipeline import _donors, arrange_sections, harmonize, voice_harmonization
from engine.types import (
    Arrangement,
    ArrangeOptions,
    Chord,
    Harmonization,
    HarmonizeOptions,
    Melody,
    MelodyAnalysis,
    PhraseHarmony,
    ProgressionChoice,
    TextureChoice,
)

# regenerate_phrase: how many candidates to rank, and how close to the best one a candidate
# must score for a non-zero seed to take it (a tenth of the α-weighted macro range, eq. 5)
REGENERATE_POOL = 12
NEAR_BEST = 0.01  # on the rules' score scale (`score_scale`)
NEAR_BEST_AT_LEAST = 3  # a seed chooses among at least this many, where the search found them

TEXTURE_CANDIDATES = 10  # how many textures `texture_candidates` lists

__all__ = [
    "MeterPart", "arrange_harmonization", "choose_alternative", "choose_texture",
    "one_meter_part", "rearrange_phrase", "regenerate", "regenerate_phrase",
    "texture_candidates",
]


@dataclass(frozen=True)
class MeterPart:
    """The one-meter stretch of a song that holds a phrase, on its own clock (the whole song
    when its meter never changes): its phrase `phrase_index` is the song's phrase asked for."""

    harmonization: Harmonization
    phrase_index: int
    offset_16th: int  # where its clock's 0 lies in the song
    first_bar: int  # the song's bar number of its first bar
    phrases: range  # the song's phrase indices it holds


def one_meter_part(harmonization: Harmonization, phrase_index: int) -> MeterPart:
    """The meter section holding the phrase (engine.meter_sections), or the whole song."""
    from engine import meter_sections as sections

    analysis = harmonization.analysis
    if not analysis.sections:
        return MeterPart(harmonization, phrase_index, 0, 0, range(len(analysis.phrases)))
    for k, piece in enumerate(sections.split_melody(harmonization.melody)):
        indices = sections.phrase_range(analysis, k)
        if phrase_index in indices:
            return MeterPart(sections.section_harmonization(harmonization, k, piece),
                             phrase_index - indices[0], piece.offset_16th,
                             analysis.sections[k].first_bar, indices)
    raise BadInputError(f"there is no phrase {phrase_index + 1}")


def _phrase(harmonization: Harmonization, phrase_index: int) -> PhraseHarmony:
    n = len(harmonization.phrases)
    if not 0 <= phrase_index < n:
        raise BadInputError(f"there is no phrase {phrase_index + 1}: the song has {n} phrases")
    return harmonization.phrases[phrase_index]


def _chord_sequence(choice: ProgressionChoice) -> tuple[Chord, ...]:
    return tuple(ev.chord for ev in choice.chords)


def _by_score(choices: list[ProgressionChoice]) -> tuple[ProgressionChoice, ...]:
    return tuple(sorted(choices, key=lambda c: -c.path_score))


def _with_phrase(
    harmonization: Harmonization, phrase_index: int, harmony: PhraseHarmony, score: float
) -> Harmonization:
    """The harmonization with one phrase replaced and the Chords track re-voiced."""
    phrases = list(harmonization.phrases)
    phrases[phrase_index] = harmony
    notes = voice_harmonization(
        harmonization.melody, harmonization.analysis, phrases, harmonization.voicing
    )
    return replace(harmonization, phrases=tuple(phrases), chord_notes=notes, score=score)


def choose_alternative(
    harmonization: Harmonization, phrase_index: int, alternative_index: int
) -> Harmonization:
    """That phrase plays `alternatives[alternative_index]`; the previous choice joins the
    alternatives (best first); other phrases' chords stay as they are."""
    harmony = _phrase(harmonization, phrase_index)
    if not 0 <= alternative_index < len(harmony.alternatives):
        raise BadInputError(
            f"phrase {phrase_index + 1} has {len(harmony.alternatives)} alternatives, "
            f"not {alternative_index + 1}"
        )
    picked = harmony.alternatives[alternative_index]
    previous = replace(harmony.chosen, path_score=harmonization.score)
    others = [a for k, a in enumerate(harmony.alternatives) if k != alternative_index]
    new = replace(harmony, chosen=picked, alternatives=_by_score([*others, previous]))
    return _with_phrase(harmonization, phrase_index, new, picked.path_score)


def regenerate(
    melody: Melody, options: HarmonizeOptions, locked: Mapping[int, ProgressionChoice],
    analysis: MelodyAnalysis | None = None, library: TemplateLibrary | None = None,
) -> Harmonization:
    """The full phrase DP (AccoMontage2 §3.2) with each locked phrase (by index) keeping exactly
    its progression and the free ones searched with the macro term to and from them counted.
    A lock that no longer fits its phrase (the analysis changed) raises BadInputError."""
    return harmonize(melody, options, library, analysis, locked=locked)


def regenerate_phrase(
    harmonization: Harmonization, phrase_index: int, options: HarmonizeOptions,
    library: TemplateLibrary | None = None,
) -> Harmonization:
    """A new progression for that phrase only, searched against its (fixed) neighbours.

    The new one differs from the current whenever any other candidate exists; seed 0 takes
    the best, another seed a random one of those within NEAR_BEST of the best, or of the best
    NEAR_BEST_AT_LEAST when fewer are that close (vary the seed per click for variety)."""
    current = _phrase(harmonization, phrase_index)
    locked = {j: ph.chosen for j, ph in enumerate(harmonization.phrases) if j != phrase_index}
    searched = harmonize(
        harmonization.melody, replace(options, top_k=max(options.top_k, REGENERATE_POOL)),
        library, harmonization.analysis, locked=locked,
    )
    harmony = searched.phrases[phrase_index]
    pool = [replace(harmony.chosen, path_score=searched.score), *harmony.alternatives]
    # prefer other chords over the same chords re-timed, which reads as no change
    sequence = _chord_sequence(current.chosen)
    fresh = ([c for c in pool if _chord_sequence(c) != sequence]
             or [c for c in pool if c.chords != current.chosen.chords])
    if not fresh:
        return harmonization
    near = [c for c in fresh
            if c.path_score >= fresh[0].path_score - NEAR_BEST * score_scale(options)]
    near = near if len(near) >= NEAR_BEST_AT_LEAST else fresh[:NEAR_BEST_AT_LEAST]
    pick = near[0]
    if options.seed:
        rng = np.random.default_rng([options.seed, phrase_index])
        pick = near[int(rng.integers(len(near)))]
    # the current progression, scored like the pool where the search found it too
    same = [c.path_score for c in pool if c.chords == current.chosen.chords]
    previous = replace(current.chosen,
                       path_score=same[0] if same else harmonization.score)
    rest = [c for c in pool if c is not pick and c.chords != current.chosen.chords]
    alternatives = _by_score([previous, *rest])[: max(options.top_k, 1)]
    new = PhraseHarmony(current.phrase, harmony.style, pick, alternatives)
    return _with_phrase(harmonization, phrase_index, new, pick.path_score)


def arrange_harmonization(
    harmonization: Harmonization, options: ArrangeOptions,
    locked_textures: Mapping[int, TextureChoice] | None = None,
) -> Arrangement:
    """The piano accompaniment for a (possibly edited) harmonization, as engine.pipeline.arrange
    makes it (the POP909 donors when imported and options.library allows); locked phrases keep
    their texture, so their piano notes are unchanged where their chords are."""
    from engine.arranger.arrange import arrange_piano

    donors = _donors() if options.library != "default" else None
    if harmonization.analysis.sections:  # the meter changes: arranged per meter section
        return arrange_sections(harmonization, options, donors, locked=locked_textures)
    return arrange_piano(harmonization, options, donors, locked=locked_textures or {})


def rearrange_phrase(
    arrangement: Arrangement, phrase_index: int, options: ArrangeOptions
) -> Arrangement:
    """A different texture for that phrase (when the library has another that fits), chosen
    with its neighbours' textures fixed; every other phrase keeps its texture."""
    from engine.arranger.arrange import arrange_piano

    n = len(arrangement.textures)
    if not 0 <= phrase_index < n:
        raise BadInputError(f"there is no phrase {phrase_index + 1}: the song has {n} phrases")
    locked = {j: t for j, t in enumerate(arrangement.textures) if j != phrase_index}
    changing = {phrase_index: arrangement.textures[phrase_index]}
    library = arrangement.textures[phrase_index].library
    if arrangement.harmonization.analysis.sections:
        # meter sections may use different libraries (POP909 donors serve the 4/4 ones only):
        # each section keeps the library its textures came from
        libraries = {t.library for t in arrangement.textures}
        donors = _donors() if "pop909" in libraries else None
        section_options = options if len(libraries) > 1 else replace(options, library=library)
        return arrange_sections(arrangement.harmonization, section_options, donors,
                                locked=locked, changing=changing)
    donors = _donors() if library == "pop909" else None
    return arrange_piano(arrangement.harmonization, replace(options, library=library), donors,
                         locked=locked, changing=changing)


def texture_candidates(
    arrangement: Arrangement, phrase_index: int, options: ArrangeOptions,
    count: int = TEXTURE_CANDIDATES,
) -> tuple[TextureChoice, ...]:
    """The arranger's candidates for that phrase, best first: every texture of the phrase's
    library (POP909 donors: the best `count`) scored as the selection Viterbi scores it
    (AccoMontage §3.3: 0.3·fitness + 0.7·transitions) with the neighbours' textures kept. The
    texture it plays now is among them; pass one to `choose_texture`."""
    from engine import meter_sections as sections
    from engine.arranger.authored import rank_textures
    from engine.arranger.donors import rank_donors
    from engine.arranger.learned import transition_for
    from engine.grid import melody_end_16th, melody_grid

    n = len(arrangement.textures)
    if not 0 <= phrase_index < n:
        raise BadInputError(f"there is no phrase {phrase_index + 1}: the song has {n} phrases")
    part = one_meter_part(arrangement.harmonization, phrase_index)
    local, i = part.harmonization, part.phrase_index
    textures = [sections.shift_texture(arrangement.textures[j], -part.first_bar)
                for j in part.phrases]
    analysis = local.analysis
    length = max(melody_end_16th(local.melody), analysis.bar_start_16th(analysis.total_bars))
    pitch, onset = melody_grid(local.melody, length)
    library = textures[i].library
    if library == "pop909":
        donors = _donors()
        if donors is None:
            raise BadInputError("the POP909 texture library is not there any more")
        ranked = rank_donors(donors, local, options, pitch, onset, textures, i,
                             transition_for(options, donors), count)
    else:
        ranked = rank_textures(local, options, pitch, onset, textures, i)[:count]
    current = arrangement.textures[phrase_index]
    out = [sections.shift_texture(t, part.first_bar) for t, _ in ranked]
    if all(t.name != current.name for t in out):  # the one playing is always listed
        out = [*out[: count - 1], current]
    return tuple(out)


def choose_texture(
    arrangement: Arrangement, phrase_index: int, texture: TextureChoice,
    options: ArrangeOptions,
) -> Arrangement:
    """That phrase plays `texture` (one of `texture_candidates`), re-rendered over its chords;
    every other phrase keeps its texture and its notes."""
    n = len(arrangement.textures)
    if not 0 <= phrase_index < n:
        raise BadInputError(f"there is no phrase {phrase_index + 1}: the song has {n} phrases")
    phrase = arrangement.harmonization.analysis.phrases[phrase_index]
    keep = dict(enumerate(arrangement.textures))
    keep[phrase_index] = replace(texture, phrase=phrase)
    if not arrangement.harmonization.analysis.sections:  # (sections: each keeps its library)
        options = replace(options, library=texture.library)
    return arrange_harmonization(arrangement.harmonization, options, keep)
