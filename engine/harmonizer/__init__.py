"""The AccoMontage2 harmonizer (§3.2): phrase-wise template search over the chord library."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.errors import OptionError
from engine.harmonizer.index import mode_index
from engine.harmonizer.micro import chord_table, slot_scores
from engine.harmonizer.search import (
    SearchParams,
    alternatives,
    phrase_candidates,
    run_dp,
)
from engine.library.chord_templates import NO_CHORD, ChordTemplate, TemplateLibrary
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

__all__ = ["harmonize_phrases", "phrase_styles", "progression_events"]


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
    parts: Sequence[ChordTemplate], key: Key, start_16th: int, style: Style
) -> tuple[ChordEvent, ...]:
    """Absolute chord events of a (possibly concatenated) template laid at `start_16th`, each
    coloured for the style; identical neighbours across a junction merge into one event."""
    events: list[ChordEvent] = []
    slot = 0
    for part in parts:
        for c in part.chords:
            if c.root != NO_CHORD:
                root = (key.tonic_pc + c.root) % 12
                quality = style_quality(c.quality, c.root, style)
                chord = Chord(root, quality, (root + c.bass) % 12)
                start = start_16th + 2 * slot
                if events and events[-1].chord == chord and events[-1].end_16th == start:
                    last = events.pop()
                    grown = last.duration_16th + 2 * c.slots
                    events.append(ChordEvent(chord, last.start_16th, grown))
                else:
                    events.append(ChordEvent(chord, start, 2 * c.slots))
            slot += c.slots
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


def harmonize_phrases(
    melody_pitch: np.ndarray,
    analysis: MelodyAnalysis,
    options: HarmonizeOptions,
    library: TemplateLibrary,
) -> tuple[tuple[PhraseHarmony, ...], float]:
    """Search one progression per phrase (§3.2, eq. 2–5) and keep top-k alternatives."""
    key, meter = analysis.key, analysis.meter
    release = options.variant == "release"
    params = SearchParams(options.alpha, options.beta, options.variant, options.seed)
    index = mode_index(library, meter.library_key, key.mode)
    table = chord_table(
        key.mode,
        rule="consonance" if options.variant == "ours" else "paper",
        fix_leading_tone=options.fix_leading_tone and not release,
        chromatic="truncate" if release else "rotate",
    )
    bar16 = meter.sixteenths_per_bar
    length = analysis.total_bars * bar16
    span = melody_pitch[analysis.downbeat_16th : analysis.downbeat_16th + length]
    span = np.pad(span, (0, length - len(span)), constant_values=-1)
    relative = np.where(span >= 0, (span - key.tonic_pc) % 12, -1)
    slots = slot_scores(relative, table)
    spb = index.slots_per_bar
    styles = phrase_styles(options, len(analysis.phrases))
    phrase_slots = [slots[p.start_bar * spb : p.end_bar * spb] for p in analysis.phrases]
    if options.variant == "ours":
        sounding = [
            float(np.mean(span[p.start_bar * bar16 : p.end_bar * bar16] >= 0))
            for p in analysis.phrases
        ]
        phrase_slots = borrow_for_instrumental(phrase_slots, sounding, analysis.phrases)
    candidates = [
        phrase_candidates(index, phrase_slots[i], p.bars, styles[i], params, phrase_no=i)
        for i, p in enumerate(analysis.phrases)
    ]
    result = run_dp(index, candidates, params)

    def choice(i: int, j: int, total: float) -> ProgressionChoice:
        cands = candidates[i]
        parts = cands.parts[j]
        return ProgressionChoice(
            template_ids=tuple(t.id for t in parts),
            style=STYLES[int(cands.style[j])],
            chords=progression_events(
                parts, key, analysis.bar_start_16th(analysis.phrases[i].start_bar), styles[i]
            ),
            micro=float(cands.micro[j]),
            meso=float(cands.meso[j]),
            total=total,
        )

    harmonies = []
    for i, phrase in enumerate(analysis.phrases):
        alts = alternatives(index, candidates, result, i, options.top_k, params)
        harmonies.append(PhraseHarmony(
            phrase=phrase,
            style=styles[i],
            chosen=choice(i, result.chosen[i], result.totals[i]),
            alternatives=tuple(choice(i, j, total) for j, total in alts),
        ))
    return tuple(harmonies), result.score
