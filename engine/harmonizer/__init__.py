"""The AccoMontage2 harmonizer (§3.2): phrase-wise template search over the chord library."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from engine.chords import triad_of
from engine.errors import BadInputError, OptionError
from engine.harmonizer.colour import MelodyPitchClasses, colours_for_melody
from engine.harmonizer.index import ModeIndex, mode_index
from engine.harmonizer.learned import LEARNED_WEIGHT, learned_slot_scores
from engine.harmonizer.micro import (
    NO_CHORD_ROW,
    STRONG_BEAT_CLASH,
    chord_row,
    chord_table,
    micro_scores,
    slot_scores,
    strong_beat_clashes,
)
from engine.harmonizer.search import (
    PhraseCandidates,
    SearchParams,
    SearchResult,
    alternatives,
    local_score,
    only,
    phrase_candidates,
    prefix_scores,
    run_dp,
    with_extra,
)
from engine.harmonizer.structure import (
    phrase_edges,
    repeat_bonus,
    repeated_bars,
    roots_and_triads,
    structure_bonus,
)
from engine.library.chord_templates import NO_CHORD, ChordTemplate, TemplateChord, TemplateLibrary
from engine.types import (
    STYLES,
    Chord,
    ChordEvent,
    HarmonizeOptions,
    Key,
    MelodyAnalysis,
    Phrase,
    PhraseHarmony,
    ProgressionChoice,
    Style,
)
from engine.voicing import style_quality

__all__ = [
    "harmonize_phrases", "melody_slot_scores", "phrase_styles", "progression_events", "score_scale",
    "uses_learned_scorer",
]


def uses_learned_scorer(options: HarmonizeOptions) -> bool:
    """The learned scorer serves ours only; the paper's and the release's variants never."""
    return options.scorer == "learned" and options.variant == "ours"


def score_scale(options: HarmonizeOptions) -> float:
    """How many times wider than the rules' 0..1 the slot scores are: 1 + the learned
    scorer's weight when it is on (`--scorer learned`, variant ours), else 1. Score gaps that
    mean "near-equal" (seed jitter, the panel's near-best pool) scale with it."""
    return 1.0 + (LEARNED_WEIGHT if uses_learned_scorer(options) else 0.0)


def phrase_styles(options: HarmonizeOptions, n_phrases: int) -> tuple[Style, ...]:
    """The style of each phrase: the per-phrase override where given, else the global one."""
    if options.style not in STYLES:
        raise OptionError(f"unknown style {options.style!r} (choose from {', '.join(STYLES)})")
    if len(options.phrase_styles) > n_phrases:
        raise OptionError(
            f"{len(options.phrase_styles)} phrase styles given but the melody has "
            f"{n_phrases} phrases"
        )
    styles: list[Style] = []
    for i in range(n_phrases):
        override = options.phrase_styles[i] if i < len(options.phrase_styles) else None
        if override is not None and override not in STYLES:
            raise OptionError(f"unknown style {override!r} for phrase {i + 1}")
        styles.append(override or options.style)
    return tuple(styles)


def progression_events(
    parts: Sequence[ChordTemplate], key: Key, start_16th: int, style: Style,
    melody: MelodyPitchClasses | None = None,
) -> tuple[ChordEvent, ...]:
    """Absolute chord events of a (possibly concatenated) template laid at `start_16th`, each
    coloured for the style — and, given the melody, for the melody over it
    (`colour.colour_for_melody`); identical neighbours across a junction merge into one event."""
    placed: list[tuple[TemplateChord, int]] = []  # each sounding chord and its start
    slot = 0
    for part in parts:
        for c in part.chords:
            if c.root != NO_CHORD:
                placed.append((c, start_16th + 2 * slot))
            slot += c.slots
    if melody is not None and placed:
        starts = np.array([start for _, start in placed])
        heard = melody.histograms(starts, starts + 2 * np.array([c.slots for c, _ in placed]))
        qualities = colours_for_melody([(c.quality, c.root) for c, _ in placed], key.mode,
                                       style, heard, [k == len(placed) - 1 for k in
                                                      range(len(placed))])
    else:
        qualities = [style_quality(c.quality, c.root, style) for c, _ in placed]
    events: list[ChordEvent] = []
    for (c, start), quality in zip(placed, qualities, strict=True):
        root = (key.tonic_pc + c.root) % 12
        # a sus chord never stands on its own third (a Dsus4/F♯ is a clash): root position
        bass = 0 if triad_of(quality) in ("sus2", "sus4") and c.bass in (3, 4) else c.bass
        chord = Chord(root, quality, (root + bass) % 12)
        if events and events[-1].chord == chord and events[-1].end_16th == start:
            last = events.pop()
            events.append(ChordEvent(chord, last.start_16th, last.duration_16th + 2 * c.slots))
        else:
            events.append(ChordEvent(chord, start, 2 * c.slots))
    return tuple(events)


INSTRUMENTAL_SOUNDING = 0.2  # a phrase sounding less than this is an intro/interlude/outro
MELODIC_SOUNDING = 0.4


def borrow_for_instrumental(
    phrase_slots: list[np.ndarray], sounding: Sequence[float], phrases: Sequence[Phrase]
) -> list[np.ndarray]:
    """Ours, beyond the paper: a phrase with (almost) no melody scores every template alike,
    so the search would settle on the first one (in practice a static tonic). Intros and
    interludes usually vamp on the changes of a sung phrase, so such a phrase is scored
    against the nearest sung phrase of the same length (else the nearest, tiled to fit)."""
    melodic = [i for i, s in enumerate(sounding) if s >= MELODIC_SOUNDING]
    if not melodic:
        return phrase_slots
    out = list(phrase_slots)
    for i, share in enumerate(sounding):
        if share >= INSTRUMENTAL_SOUNDING:
            continue
        same = [j for j in melodic if phrases[j].bars == phrases[i].bars]
        donor = min(same or melodic, key=lambda j: (abs(j - i), j))
        reps = -(-len(phrase_slots[i]) // len(phrase_slots[donor]))
        out[i] = np.concatenate([phrase_slots[donor]] * reps)[: len(phrase_slots[i])]
    return out


def _check_lock(
    lock: ProgressionChoice, i: int, analysis: MelodyAnalysis
) -> None:
    """A locked progression must lie inside its phrase as the analysis now has it."""
    phrase = analysis.phrases[i]
    lo, hi = analysis.bar_start_16th(phrase.start_bar), analysis.bar_start_16th(phrase.end_bar)
    bar16 = analysis.meter.sixteenths_per_bar
    outside = [ev for ev in lock.chords if ev.start_16th < lo or ev.end_16th > hi]
    # a searched progression fills its phrase to the last bar; a shorter one was for a shorter
    # phrase (the phrase structure changed since it was locked)
    short = bool(lock.template_ids and lock.chords) and lock.chords[-1].end_16th <= hi - bar16
    if outside or short:
        first = min(ev.start_16th for ev in lock.chords)
        last = max(ev.end_16th for ev in lock.chords)
        raise BadInputError(
            f"phrase {i + 1}'s locked chords span 16ths {first}-{last} but the phrase now spans "
            f"{lo}-{hi} (bars {phrase.start_bar + 1}-{phrase.end_bar}); the key, pickup or "
            "phrase structure changed since it was locked: unlock phrase "
            f"{i + 1} or restore the analysis"
        )


def _with_lock(
    index: ModeIndex, cands: PhraseCandidates, slot_table: np.ndarray, lock: ProgressionChoice,
    key: Key, start_16th: int, params: SearchParams,
) -> PhraseCandidates:
    """The phrase's candidates plus the locked progression, scored on the current melody
    (micro, eq. 2) with its bar signatures for the macro term (eq. 4) to its neighbours."""
    n_slots = len(slot_table)
    roots = [NO_CHORD] * n_slots
    rows = [NO_CHORD_ROW] * n_slots
    for ev in lock.chords:  # a slot is an 8th note: two 16ths
        degree = (ev.chord.root_pc - key.tonic_pc) % 12
        for k in range((ev.start_16th - start_16th) // 2, -(-(ev.end_16th - start_16th) // 2)):
            if 0 <= k < n_slots:
                roots[k], rows[k] = degree, chord_row(degree, ev.chord.quality)
    micro = float(micro_scores(slot_table, np.array([rows], dtype=np.intp))[0])
    meso = lock.meso if len(lock.template_ids) > 1 else 1.0  # eq. 3: 1 for a single template
    spb = index.slots_per_bar
    first = index.bar_ids.get(tuple(roots[:spb]), index.unknown_bar)
    last = index.bar_ids.get(tuple(roots[-spb:]), index.unknown_bar)
    tonic_share = sum(1 for r in roots if r == 0) / n_slots
    local = local_score(micro, meso, params, 0.0, tonic_share)
    return with_extra(cands, micro, meso, local, first, last, STYLES.index(lock.style),
                      np.array(rows, dtype=np.intp))


def melody_slot_scores(
    melody_pitch: np.ndarray, analysis: MelodyAnalysis, options: HarmonizeOptions
) -> tuple[np.ndarray, np.ndarray]:
    """(slots, relative): the score of every chord row (`micro.chord_row`) in every 8th-note
    slot from phrase 1's downbeat — eq. 2's table (ours: less the strong-beat clash, plus the
    learned scorer's term) — and the melody per 16th as semitones above the tonic (−1: rest).
    The search gathers its candidates' micro scores from these; chord suggestions rank rows."""
    key, meter = analysis.key, analysis.meter
    release = options.variant == "release"
    table = chord_table(
        key.mode,
        rule="quality" if options.variant == "ours" else "paper",
        fix_leading_tone=options.fix_leading_tone and not release,
        chromatic="truncate" if release else "rotate",
    )
    length = analysis.total_bars * meter.sixteenths_per_bar
    span = melody_pitch[analysis.downbeat_16th : analysis.downbeat_16th + length]
    span = np.pad(span, (0, length - len(span)), constant_values=-1)
    relative = np.where(span >= 0, (span - key.tonic_pc) % 12, -1)
    slots = slot_scores(relative, table)
    if options.variant == "ours":
        slots = slots - STRONG_BEAT_CLASH * strong_beat_clashes(relative, meter.beat_16th)
    if uses_learned_scorer(options):
        slots = slots + LEARNED_WEIGHT * learned_slot_scores(span, key, meter, analysis.phrases)
    return slots, relative


def harmonize_phrases(
    melody_pitch: np.ndarray,
    analysis: MelodyAnalysis,
    options: HarmonizeOptions,
    library: TemplateLibrary,
    locked: Mapping[int, ProgressionChoice] | None = None,
) -> tuple[tuple[PhraseHarmony, ...], float]:
    """Search one progression per phrase (§3.2, eq. 2–5) and keep top-k alternatives.

    A `locked` phrase keeps exactly its given progression: the DP sees it as that phrase's only
    candidate, so the free phrases are searched with the macro term to and from it counted;
    its alternatives are still listed (ranked against its chosen neighbours)."""
    if not 0.0 <= options.tonic_balance <= 1.0:
        raise OptionError(f"tonic_balance must lie in 0..1, got {options.tonic_balance}")
    locked = locked or {}
    for i in locked:
        if not 0 <= i < len(analysis.phrases):
            raise BadInputError(
                f"cannot lock phrase {i + 1}: the melody has {len(analysis.phrases)} phrases"
            )
        _check_lock(locked[i], i, analysis)
    key, meter = analysis.key, analysis.meter
    # the style penalty, the seed jitter, the repeat term and the tonic close of a tune ending
    # on do/mi grow with the slot scores' range to keep their say (the other cadence terms and
    # the opening do not: the model has learnt where tunes close, and scaling them up lost
    # cadences it had right)
    slot_scale = score_scale(options)
    params = SearchParams(options.alpha, options.beta, options.variant, options.seed,
                          options.tonic_balance, slot_scale)
    index = mode_index(library, meter.library_key, key.mode)
    bar16 = meter.sixteenths_per_bar
    slots, relative = melody_slot_scores(melody_pitch, analysis, options)
    spb = index.slots_per_bar
    styles = phrase_styles(options, len(analysis.phrases))
    phrase_slots = [slots[p.start_bar * spb : p.end_bar * spb] for p in analysis.phrases]
    if options.variant == "ours":
        sounding = [
            float(np.mean(relative[p.start_bar * bar16 : p.end_bar * bar16] >= 0))
            for p in analysis.phrases
        ]
        phrase_slots = borrow_for_instrumental(phrase_slots, sounding, analysis.phrases)
    candidates = [
        phrase_candidates(index, phrase_slots[i], p.bars, styles[i], params, phrase_no=i)
        for i, p in enumerate(analysis.phrases)
    ]
    structured = options.variant == "ours" and options.musical_structure
    if structured:
        edges = phrase_edges(relative, analysis.phrases, bar16, key.mode, meter.beat_16th)
        candidates = [c.plus(structure_bonus(c.rows, e, key.mode, spb, slot_scale))
                      for c, e in zip(candidates, edges, strict=True)]
    starts = [analysis.bar_start_16th(p.start_bar) for p in analysis.phrases]
    for i, lock in locked.items():
        candidates[i] = _with_lock(index, candidates[i], phrase_slots[i], lock, key, starts[i],
                                   params)

    def search() -> SearchResult:
        return run_dp(index, [
            only(c, len(c) - 1) if i in locked else c for i, c in enumerate(candidates)
        ], params)

    searched = search()
    first_of = repeated_bars(relative, bar16, analysis.total_bars) if structured else None
    if first_of is not None and (first_of != np.arange(len(first_of))).any():
        # repeats (structure.py): a second pass rewards each repeated bar for the roots its
        # first hearing got in the first pass
        chosen_roots = roots_and_triads(np.concatenate([
            (candidates[i].rows[-1] if i in locked else candidates[i].rows[j])
            for i, j in enumerate(searched.chosen)
        ]))[0]
        candidates = [
            c if i in locked else c.plus(slot_scale * repeat_bonus(
                c.rows, p.start_bar, first_of, chosen_roots, spb,
                ends_tune=i == len(analysis.phrases) - 1))
            for i, (c, p) in enumerate(zip(candidates, analysis.phrases, strict=True))
        ]
        searched = search()
    # back to indices into the full candidate lists (a locked phrase's lock is its last)
    result = SearchResult(
        chosen=tuple(len(candidates[i]) - 1 if i in locked else j
                     for i, j in enumerate(searched.chosen)),
        totals=searched.totals, score=searched.score, prefixes=searched.prefixes,
    )

    # the melody picks each chord's colour (ours); the paper's variants keep the style rule
    colour_pitch = (MelodyPitchClasses(melody_pitch, key.tonic_pc)
                    if options.melody_colours and options.variant == "ours" else None)

    def choice(i: int, j: int, prefix: np.ndarray, path: float) -> ProgressionChoice:
        if i in locked and j == len(candidates[i]) - 1:
            return replace(locked[i], prefix_score=float(prefix[j]), path_score=path)
        cands = candidates[i]
        parts = cands.parts[j]
        return ProgressionChoice(
            template_ids=tuple(t.id for t in parts),
            style=STYLES[int(cands.style[j])],
            chords=progression_events(parts, key, starts[i], styles[i], colour_pitch),
            micro=float(cands.micro[j]),
            meso=float(cands.meso[j]),
            prefix_score=float(prefix[j]),
            path_score=path,
        )

    harmonies = []
    for i, phrase in enumerate(analysis.phrases):
        prefix = prefix_scores(index, candidates, result, i, params)
        chosen = choice(i, result.chosen[i], prefix, result.score)
        # a locked phrase's own template may also be among its candidates: list it once
        alts = [choice(i, j, prefix, path) for j, path in
                alternatives(index, candidates, result, i, options.top_k + 1, params)]
        alts = [a for a in alts if a.chords != chosen.chords][: options.top_k]
        harmonies.append(PhraseHarmony(
            phrase=phrase, style=styles[i], chosen=chosen, alternatives=tuple(alts),
        ))
    return tuple(harmonies), result.score
