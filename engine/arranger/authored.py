"""Arranging with the embedded, authored texture library (ours; AccoMontage §3.3 adapted).

Authored textures carry no donor melody, so the paper's melody-rhythm fitness becomes a fit
to the phrase: the requested density/polyphony levels (prefilter, every phrase), the phrase's
chord style, and — with nothing requested — levels that answer the melody: the song's density
level from how many notes the melody sings per second (a slow, sparse line gets a moving
accompaniment, a fast busy one a lighter texture), each phrase one level busier or lighter
than the song where its melody is sparser or busier than the song's; the polyphony level from
the melody's register (a high line leaves room for fuller chords under it). Before this every
song's typical phrase asked for the same middle levels, so one texture served 60% of the
held-out pieces (issue 11). Transitions reward continuity of the groove
(neighbouring levels), and a new section (a new phrase label) answers with a new texture of a
neighbouring level, so the groove is consistent within phrases and contrasts across them;
phrases with the same label reuse one texture.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from engine.arranger.placement import RenderedNote, melody_floor
from engine.arranger.selection import (
    lock_indices,
    pin,
    prefilter,
    rank_between,
    share_by_label,
    viterbi,
)
from engine.arranger.texture_format import load_default_textures
from engine.arranger.texture_render import render_texture
from engine.arranger.textures import Texture, texture_meter
from engine.errors import LibraryError
from engine.types import ArrangeOptions, Harmonization, Meter, Phrase, Style, TextureChoice

STYLE_FIT = 0.3
LEVEL_DISTANCE = 0.15  # per level away from the melody-derived target when nothing is requested
SAME_TEXTURE = 0.2  # within a repeated label: keep the groove
SECTION_CHANGE = 0.15  # at a new label: a different texture …
SECTION_STEP = 1  # … up to this many levels away on each axis costs nothing
LEVEL_STEP = 0.1  # transition cost per level of change
DEFAULT_LEVEL = 2
# Song density level by melody notes per second: below 1.3 → 3, below 2.2 → 2, else 1 (the
# held-out POP909 songs sing 1.1–2.3 a second, the Nottingham tunes 2.5–3.8 at 120 BPM).
NOTES_PER_SECOND_CUTS = (1.3, 2.2)
# Song polyphony level by the melody's median pitch: below G4 → 1, below C♯5 → 2, else 3.
REGISTER_CUTS = (67, 73)


def textures_for(meter: Meter) -> tuple[Texture, ...]:
    """The authored textures playable in this meter (2/4 and 2/2 use the 4/4 patterns)."""
    key = texture_meter(meter)
    return tuple(t for t in load_default_textures() if t.meter == key)


def melody_targets(
    melody_onset: np.ndarray, phrases: Sequence[Phrase], downbeat_16th: int, bar_16th: int,
    tempo_bpm: float = 120.0,
) -> list[int]:
    """Density level answering each phrase's melody: the song's level from the melody's notes
    per second, each phrase moved by its onsets per 16th against the song's mean."""
    rates = []
    for p in phrases:
        lo = downbeat_16th + p.start_bar * bar_16th
        span = melody_onset[lo : lo + p.bars * bar_16th]
        rates.append(float(span.mean()) if len(span) else 0.0)
    mean = float(np.mean(rates)) if rates else 0.0
    spread = float(np.std(rates)) or 1.0
    per_second = mean * tempo_bpm / 15.0  # 16ths per second = BPM · 4 / 60
    song = 3 - int(np.searchsorted(NOTES_PER_SECOND_CUTS, per_second, side="right"))
    return [int(np.clip(round(song - (r - mean) / spread), 0, 4)) for r in rates]


def register_target(melody_pitch: np.ndarray) -> int:
    """Polyphony level answering the melody's register (its median sounding pitch)."""
    sung = melody_pitch[melody_pitch >= 0]
    if not sung.size:
        return DEFAULT_LEVEL
    return 1 + int(np.searchsorted(REGISTER_CUTS, float(np.median(sung)), side="right"))


def select_textures(
    textures: Sequence[Texture], phrases: Sequence[Phrase], styles: Sequence[Style],
    targets: Sequence[int], density: int | None, polyphony: int | None,
    locked: Mapping[int, int] | None = None, changing: Mapping[int, int] | None = None,
    polyphony_target: int = DEFAULT_LEVEL,
) -> list[Texture]:
    """One texture per phrase; `locked` phrases keep the given texture index and `changing`
    ones must leave theirs, the transitions to their neighbours counted as usual."""
    locked, changing = locked or {}, changing or {}
    fitness, transitions = selection_scores(textures, phrases, styles, targets, density,
                                            polyphony, polyphony_target)
    for i in range(len(fitness)):
        fitness[i] = pin(fitness[i], keep=locked.get(i), drop=changing.get(i))
    path, _ = viterbi(fitness, transitions)
    return share_by_label([textures[j] for j in path], [p.label for p in phrases], locked,
                          changing)


def selection_scores(
    textures: Sequence[Texture], phrases: Sequence[Phrase], styles: Sequence[Style],
    targets: Sequence[int], density: int | None, polyphony: int | None,
    polyphony_target: int = DEFAULT_LEVEL,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The Viterbi's inputs (selection.py): each phrase's fitness of every texture, and the
    transition matrix between each pair of neighbouring phrases."""
    density_levels = np.array([t.density_level for t in textures])
    polyphony_levels = np.array([t.polyphony_level for t in textures])
    fitness = []
    for style, target in zip(styles, targets, strict=True):
        fit = prefilter(density_levels, density) + prefilter(polyphony_levels, polyphony)
        fit = fit + STYLE_FIT * np.array([style in t.styles for t in textures])
        if density is None:
            fit = fit - LEVEL_DISTANCE * np.abs(density_levels - target)
        if polyphony is None:
            fit = fit - LEVEL_DISTANCE * np.abs(polyphony_levels - polyphony_target)
        fitness.append(fit)
    d_change = np.abs(density_levels[:, None] - density_levels[None, :])
    p_change = np.abs(polyphony_levels[:, None] - polyphony_levels[None, :])
    same = np.eye(len(textures))
    keep = SAME_TEXTURE * same - LEVEL_STEP * (d_change + p_change)
    contrast = (SECTION_CHANGE * (1 - same)
                - LEVEL_STEP * (np.maximum(d_change - SECTION_STEP, 0)
                                + np.maximum(p_change - SECTION_STEP, 0)))
    transitions = [
        keep if before.label == after.label else contrast
        for before, after in zip(phrases, phrases[1:], strict=False)
    ]
    return fitness, transitions


def arrange_with_textures(
    harmonization: Harmonization, options: ArrangeOptions, pitch: np.ndarray, onset: np.ndarray,
    locked: Mapping[int, TextureChoice] | None = None,
    changing: Mapping[int, TextureChoice] | None = None,
) -> tuple[list[list[RenderedNote]], list[TextureChoice], list[bool]]:
    """Rendered notes, the choice and whether to pedal, per phrase, from authored textures;
    `locked` phrases keep their texture, `changing` ones get another."""
    locked, changing = locked or {}, changing or {}
    analysis = harmonization.analysis
    meter, bar16 = analysis.meter, analysis.meter.sixteenths_per_bar
    textures, targets, styles = _selection_inputs(harmonization, onset)
    phrases = analysis.phrases
    by_name = {t.name: j for j, t in enumerate(textures)}
    what = f"{meter.name} texture library"
    chosen = select_textures(
        textures, phrases, styles, targets, options.density, options.polyphony,
        lock_indices({i: c.name for i, c in locked.items()}, by_name, what),
        lock_indices({i: c.name for i, c in changing.items()}, by_name, what),
        polyphony_target=register_target(pitch[analysis.downbeat_16th:]),
    )
    floor = melody_floor(pitch)
    rendered: list[list[RenderedNote]] = []
    choices: list[TextureChoice] = []
    for i, (phrase, texture) in enumerate(zip(phrases, chosen, strict=True)):
        start = analysis.bar_start_16th(phrase.start_bar)
        rendered.append(list(render_texture(texture, harmonization.chords, start,
                                            phrase.bars * bar16, meter, floor)))
        if i in locked:
            choices.append(replace(locked[i], phrase=phrase))
            continue
        choices.append(TextureChoice(
            phrase=phrase, library="default", name=texture.name,
            density_level=texture.density_level, polyphony_level=texture.polyphony_level,
        ))
    return rendered, choices, [t.pedal for t in chosen]


def _selection_inputs(
    harmonization: Harmonization, onset: np.ndarray
) -> tuple[tuple[Texture, ...], list[int], list[Style]]:
    """The meter's textures, each phrase's density target and chord style."""
    analysis = harmonization.analysis
    textures = textures_for(analysis.meter)
    if not textures:
        raise LibraryError(f"no authored textures for {analysis.meter.name}")
    targets = melody_targets(onset, analysis.phrases, analysis.downbeat_16th,
                             analysis.meter.sixteenths_per_bar, harmonization.melody.tempo_bpm)
    return textures, targets, [ph.style for ph in harmonization.phrases]


def rank_textures(
    harmonization: Harmonization, options: ArrangeOptions, pitch: np.ndarray,
    onset: np.ndarray, current: Sequence[TextureChoice], phrase_index: int,
) -> list[tuple[TextureChoice, float]]:
    """Every texture for phrase `phrase_index`, best first, scored as the Viterbi scores it
    with the neighbouring phrases keeping their `current` textures (`rank_between`)."""
    analysis = harmonization.analysis
    textures, targets, styles = _selection_inputs(harmonization, onset)
    fitness, transitions = selection_scores(
        textures, analysis.phrases, styles, targets, options.density, options.polyphony,
        register_target(pitch[analysis.downbeat_16th:]))
    by_name = {t.name: j for j, t in enumerate(textures)}
    i = phrase_index
    before = by_name.get(current[i - 1].name) if i > 0 else None
    after = by_name.get(current[i + 1].name) if i + 1 < len(current) else None
    score = rank_between(fitness[i],
                         None if before is None else transitions[i - 1][before],
                         None if after is None else transitions[i][:, after])
    phrase = analysis.phrases[i]
    return [(TextureChoice(phrase=phrase, library="default", name=textures[j].name,
                           density_level=textures[j].density_level,
                           polyphony_level=textures[j].polyphony_level), float(score[j]))
            for j in np.argsort(-score, kind="stable").tolist()]
