"""Arranging with POP909 donor phrases (AccoMontage §3.3.1–3.3.2, algorithms.md §2.2).

Per query phrase, every donor of the same length is scored by the paper's fitness
0.5·rhythm + 0.5·chord (rhythm: cosine of per-16th [onset, hold, rest] melody flags; chord:
cosine of per-beat chroma DFT coefficients 1–6 at the best of 12 transpositions), with the
density/polyphony prefilter on every phrase. Transitions use texture continuity (cosine of the
onset profile of one donor's last two bars and the next donor's first two); a donor may not
follow itself or an earlier phrase of its own song. Same-label phrases reuse one donor. The
chosen donor is re-harmonized note by note to the target chords (`reharmonize`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from engine.arranger.placement import RenderedNote, chord_at
from engine.arranger.plugins import (
    RULE_BASED_REHARMONIZER,
    DonorPhrase,
    Reharmonizer,
    TextureContinuity,
    TransitionScorer,
    reharmonize_all,
)
from engine.arranger.selection import (
    lock_indices,
    pin,
    prefilter,
    rank_between,
    share_by_label,
    viterbi,
)
from engine.errors import BadInputError, LibraryError
from engine.types import (
    ArrangeOptions,
    ChordEvent,
    Harmonization,
    TextureChoice,
)

BEAM = 256  # donors per phrase kept (by fitness) for the transition search
RHYTHM_WEIGHT = 0.5
HARMONY_WEIGHT = 0.5
EDGE_BARS = 2
DONOR_BAR_16TH = 16
_FEATURES: dict[int, DonorFeatures] = {}
_PHASE = np.exp(-2j * np.pi * np.outer(np.arange(1, 7), np.arange(12)) / 12)  # (6, 12)


@dataclass(frozen=True, eq=False)
class DonorFeatures:
    """Selection features of every donor, computed once per loaded library."""

    bars: np.ndarray
    song: np.ndarray
    phrase_index: np.ndarray
    density_level: np.ndarray
    polyphony_level: np.ndarray
    by_bars: dict[int, np.ndarray]  # bar count -> donor indices
    rhythm: dict[int, np.ndarray]  # bar count -> (n, 16·bars·3) unit-normalised melody flags
    # bar count -> (n, 4·bars·6·2) real and imaginary parts of the per-beat chroma DFT
    harmony: dict[int, np.ndarray]
    harmony_norm: dict[int, np.ndarray]  # bar count -> (n,) norm of each donor's DFT features
    head: np.ndarray  # (n, 32) unit onset profile of the first two bars
    tail: np.ndarray  # (n, 32) unit onset profile of the last two bars


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def chroma_dft(chroma: np.ndarray) -> np.ndarray:
    """DFT coefficients 1–6 of per-beat chroma vectors (…, 12) → (…, 6) complex."""
    return np.fft.fft(chroma, axis=-1)[..., 1:7]


def donor_features(donors: Any) -> DonorFeatures:
    cached = _FEATURES.get(id(donors))
    if cached is not None:
        return cached
    n = len(donors.bars)
    bars = np.asarray(donors.bars, dtype=np.intp)
    edge = EDGE_BARS * DONOR_BAR_16TH
    # onset profiles of every donor's first and last two bars, from the flat note table
    owner = np.repeat(np.arange(n), np.diff(donors.note_offsets))
    onsets = np.asarray(donors.notes[:, 0], dtype=np.intp)
    tail_start = np.maximum(bars * DONOR_BAR_16TH - edge, 0)[owner]
    head, tail = np.zeros((n, edge)), np.zeros((n, edge))
    in_head = onsets < edge
    np.add.at(head, (owner[in_head], onsets[in_head]), 1.0)
    rel = onsets - tail_start
    in_tail = (rel >= 0) & (rel < edge)
    np.add.at(tail, (owner[in_tail], rel[in_tail]), 1.0)
    by_bars: dict[int, np.ndarray] = {}
    rhythm: dict[int, np.ndarray] = {}
    harmony: dict[int, np.ndarray] = {}
    harmony_norm: dict[int, np.ndarray] = {}
    for b in sorted(set(bars.tolist())):
        group = donors.group(b)
        by_bars[b] = np.asarray(group.indices)
        rhythm[b] = _unit(np.asarray(group.melody_flags, dtype=float))
        dft = chroma_dft(np.asarray(group.chroma, dtype=float)).reshape(len(group.indices), -1)
        harmony[b] = np.concatenate([dft.real, dft.imag], axis=1)
        harmony_norm[b] = np.linalg.norm(harmony[b], axis=1)
    features = DonorFeatures(
        bars=bars, song=np.asarray(donors.song), phrase_index=np.asarray(donors.phrase_index),
        density_level=np.asarray(donors.density_level),
        polyphony_level=np.asarray(donors.polyphony_level),
        by_bars=by_bars, rhythm=rhythm, harmony=harmony, harmony_norm=harmony_norm,
        head=_unit(head), tail=_unit(tail),
    )
    _FEATURES[id(donors)] = features
    return features


def melody_flags(pitch: np.ndarray, onset: np.ndarray) -> np.ndarray:
    """Per-16th [onset, hold, rest] of the query melody (§2.1's melody roll, reduced)."""
    rest = pitch < 0
    return np.stack([onset & ~rest, ~onset & ~rest, rest], axis=1).astype(float)


def beat_chroma(chords: Sequence[ChordEvent], start_16th: int, beats: int) -> np.ndarray:
    """(beats, 12) chroma of the target chord at each beat of a phrase."""
    from engine.chords import chord_pitch_classes

    at = chord_at(chords, start_16th + beats * 4)
    out = np.zeros((beats, 12))
    for b in range(beats):
        i = at[start_16th + 4 * b]
        if i >= 0:
            chord = chords[i].chord
            out[b, sorted(chord_pitch_classes(chord.root_pc, chord.quality))] = 1
    return out


def _fitness(
    feats: DonorFeatures, bars: int, flags: np.ndarray, chroma: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(donor indices, fitness, best transposition) for one phrase of `bars` bars."""
    idx = feats.by_bars[bars]
    rhythm = feats.rhythm[bars] @ _unit(flags.reshape(-1))
    query = np.conj(chroma_dft(chroma))  # (beats, 6)
    # Rolling a donor's chroma by s multiplies its coefficient k by e^{−2πi·k·s/12}, so the
    # cosine at every shift is Re Σ d·conj(q)·phase — one real matrix product for all 12.
    weights = query[:, :, None] * _PHASE[None, :, :]  # (beats, 6, 12)
    weights = weights.reshape(-1, 12)
    stacked = np.concatenate([weights.real, -weights.imag], axis=0)  # (beats·6·2, 12)
    norm = np.linalg.norm(query) * feats.harmony_norm[bars]
    harmony = (feats.harmony[bars] @ stacked) / np.where(norm > 0, norm, 1.0)[:, None]
    best_shift = np.argmax(harmony, axis=1)
    fit = RHYTHM_WEIGHT * rhythm + HARMONY_WEIGHT * harmony[np.arange(len(idx)), best_shift]
    return idx, fit, best_shift


def donor_name(feats: DonorFeatures, d: int) -> str:
    """A donor's TextureChoice name: "song:phrase" (song number as POP909 writes it)."""
    return f"{int(feats.song[d]):03d}:{int(feats.phrase_index[d])}"


def arrange_with_donors(
    donors: Any, harmonization: Harmonization, options: ArrangeOptions,
    pitch: np.ndarray, onset: np.ndarray,
    transition: TransitionScorer | None = None,
    reharmonizer: Reharmonizer = RULE_BASED_REHARMONIZER,
    locked: Mapping[int, TextureChoice] | None = None,
    changing: Mapping[int, TextureChoice] | None = None,
) -> tuple[list[list[RenderedNote]], list[TextureChoice], list[bool]]:
    """Donor per phrase (Viterbi), re-harmonized; `transition` defaults to texture continuity.
    `locked` phrases keep their donor and transposition, `changing` ones get another donor."""
    analysis = harmonization.analysis
    if analysis.meter.sixteenths_per_bar != DONOR_BAR_16TH:
        raise LibraryError(
            f"POP909 donors are 4/4 phrases; for {analysis.meter.name} use --library default"
        )
    feats = donor_features(donors)
    locked, changing = locked or {}, changing or {}
    by_name = ({donor_name(feats, d): d for d in range(len(feats.bars))}
               if locked or changing else {})
    lock = lock_indices({i: c.name for i, c in locked.items()}, by_name, "POP909 donor library")
    leave = lock_indices({i: c.name for i, c in changing.items()}, by_name,
                         "POP909 donor library")
    score_transition = transition or TextureContinuity(feats.head, feats.tail)
    chords = harmonization.chords
    phrases = analysis.phrases
    candidates, fitness, shifts = [], [], []
    for i, phrase in enumerate(phrases):
        bars = _donor_bars(feats, phrase.bars)
        idx, fit, shift = _phrase_fitness(feats, harmonization, options, pitch, onset, i)
        if i in lock:
            keep = np.nonzero(idx == lock[i])[0]
            if not len(keep):
                raise BadInputError(
                    f"phrase {i + 1}'s locked donor {locked[i].name} is not a {bars}-bar "
                    "phrase; the phrase structure changed since it was locked: unlock it"
                )
            shift = shift.copy()
            shift[keep] = locked[i].transpose
        else:
            drop = np.nonzero(idx == leave.get(i, -1))[0]
            fit = pin(fit, drop=int(drop[0]) if len(drop) else None)
            keep = np.argsort(-fit, kind="stable")[:BEAM]
            keep = keep[np.isfinite(fit[keep])]
        candidates.append(idx[keep])
        fitness.append(fit[keep])
        shifts.append(shift[keep])
    transitions = [_transitions(feats, score_transition, a, b)
                   for a, b in zip(candidates, candidates[1:], strict=False)]
    path, _ = viterbi(fitness, transitions)
    picked = share_by_label(
        [(int(candidates[i][j]), int(shifts[i][j]), float(fitness[i][j]))
         for i, j in enumerate(path)],
        [(p.label, p.bars) for p in phrases], lock, leave,
    )
    requests: list[DonorPhrase] = []
    choices: list[TextureChoice] = []
    for i, phrase in enumerate(phrases):
        d, transpose, fit_value = picked[i]
        requests.append(DonorPhrase(
            donors.phrase_notes(d), donors.beat_chroma(d), donors.beat_roots(d), transpose,
            analysis.bar_start_16th(phrase.start_bar),
            phrase.bars * analysis.meter.sixteenths_per_bar,
        ))
        if i in locked:
            choices.append(replace(locked[i], phrase=phrase))
            continue
        choices.append(TextureChoice(
            phrase=phrase, library="pop909", name=donor_name(feats, d),
            density_level=int(feats.density_level[d]),
            polyphony_level=int(feats.polyphony_level[d]),
            transpose=transpose, fitness=fit_value,
        ))
    # one call for the whole song: a learned re-harmonizer batches every phrase's segments
    rendered = reharmonize_all(reharmonizer, requests, chords)
    return rendered, choices, [True] * len(phrases)


def _phrase_fitness(
    feats: DonorFeatures, harmonization: Harmonization, options: ArrangeOptions,
    pitch: np.ndarray, onset: np.ndarray, phrase_index: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(donor indices, fitness with the prefilter, best transposition) for one phrase."""
    analysis = harmonization.analysis
    phrase = analysis.phrases[phrase_index]
    bars = _donor_bars(feats, phrase.bars)
    start = analysis.bar_start_16th(phrase.start_bar)
    span = slice(start, start + bars * DONOR_BAR_16TH)
    flags = melody_flags(_fit(pitch[span], bars * 16, -1), _fit(onset[span], bars * 16, 0))
    idx, fit, shift = _fitness(feats, bars, flags,
                               beat_chroma(harmonization.chords, start, bars * 4))
    fit = (fit + prefilter(feats.density_level[idx], options.density)
           + prefilter(feats.polyphony_level[idx], options.polyphony))
    return idx, fit, shift


def _transitions(
    feats: DonorFeatures, score: TransitionScorer, before: np.ndarray, after: np.ndarray
) -> np.ndarray:
    """E between two phrases' donors; a donor never follows itself or a later phrase of its
    own song (−inf)."""
    same_song = feats.song[before][:, None] == feats.song[after][None, :]
    backwards = feats.phrase_index[before][:, None] >= feats.phrase_index[after][None, :]
    return np.where(same_song & backwards, -np.inf, score(before, after))


def rank_donors(
    donors: Any, harmonization: Harmonization, options: ArrangeOptions, pitch: np.ndarray,
    onset: np.ndarray, current: Sequence[TextureChoice], phrase_index: int,
    transition: TransitionScorer | None = None, count: int = BEAM,
) -> list[tuple[TextureChoice, float]]:
    """The `count` donors that fit phrase `phrase_index` best, best first, scored as the
    Viterbi scores them with the neighbouring phrases keeping their `current` donors
    (`rank_between`); each at its best transposition."""
    feats = donor_features(donors)
    score_transition = transition or TextureContinuity(feats.head, feats.tail)
    idx, fit, shift = _phrase_fitness(feats, harmonization, options, pitch, onset, phrase_index)
    by_name = {donor_name(feats, d): d for d in range(len(feats.bars))}
    i = phrase_index
    before = by_name.get(current[i - 1].name) if i > 0 else None
    after = by_name.get(current[i + 1].name) if i + 1 < len(current) else None
    score = rank_between(
        fit,
        None if before is None else _transitions(feats, score_transition,
                                                 np.array([before]), idx)[0],
        None if after is None else _transitions(feats, score_transition,
                                                idx, np.array([after]))[:, 0])
    order = [j for j in np.argsort(-score, kind="stable")[:count].tolist()
             if np.isfinite(score[j])]
    phrase = harmonization.analysis.phrases[i]
    return [(TextureChoice(phrase=phrase, library="pop909", name=donor_name(feats, int(idx[j])),
                           density_level=int(feats.density_level[idx[j]]),
                           polyphony_level=int(feats.polyphony_level[idx[j]]),
                           transpose=int(shift[j]), fitness=float(fit[j])), float(score[j]))
            for j in order]


def _donor_bars(feats: DonorFeatures, bars: int) -> int:
    """Donors of the phrase's length; else the nearest longer (cut), else the longest (tiled)."""
    if bars in feats.by_bars:
        return bars
    longer = [b for b in feats.by_bars if b > bars]
    return min(longer) if longer else max(feats.by_bars)


def _fit(values: np.ndarray, length: int, fill: int) -> np.ndarray:
    if len(values) >= length:
        return values[:length]
    return np.concatenate([values, np.full(length - len(values), fill, dtype=values.dtype)])
